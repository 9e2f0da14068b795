//! `dpgui dataset DATASET.toml [--config TRAIN.toml] [--gpus N] [--json] [--rescan]`: the
//! Datasets tab's report without the terminal UI.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::datasets::report::{self, DatasetReport, Training, scan_all, target};
use crate::datasets::{ScanCache, ScanControl, Severity};
use crate::settings::Settings;

fn escaped(s: &str) -> String {
    crate::units::escape_controls(s, false).into_owned()
}

/// The GPU count for steps per epoch: `--gpus`, else the GPUs NVML sees, else 1.
fn gpu_count(gpus: Option<u64>) -> u64 {
    if let Some(n) = gpus {
        return n.max(1);
    }
    crate::system::gpu::sample_once()
        .names()
        .map_or(1, |n| n.len().max(1) as u64)
}

/// `dpgui dataset`: exit 0, or 1 when a directory has an error-level problem, 2 when the
/// config cannot be read.
pub fn dataset(
    settings: &Settings,
    path: &Path,
    config: Option<&Path>,
    gpus: Option<u64>,
    json: bool,
    rescan: bool,
) -> color_eyre::Result<i32> {
    let base = std::path::absolute(&settings.diffusion_pipe)
        .unwrap_or_else(|_| settings.diffusion_pipe.clone());
    let t = match target(&base, path, config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dpgui dataset: {}", escaped(&e));
            return Ok(2);
        }
    };
    let training = match &t.training {
        Some((p, text)) => match Training::read(p, text, gpu_count(gpus), &base) {
            Some(tr) => Some(tr),
            None => {
                eprintln!(
                    "dpgui dataset: {}: no batch settings could be read (does it parse? `dpgui lint` says where)",
                    escaped(&p.display().to_string())
                );
                return Ok(2);
            }
        },
        None => None,
    };
    let cache = Some(ScanCache::open_default().reuse(!rescan));
    let control = Arc::new(ScanControl::foreground());
    let live = !json && std::io::stderr().is_terminal();
    let scans = std::thread::scope(|s| {
        // Dropping `done` ends the progress line at once (no sleep to wait out).
        let (done, ended) = std::sync::mpsc::channel::<()>();
        if live {
            let control = control.clone();
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    ended.recv_timeout(Duration::from_millis(100))
                {
                    let (d, n) = control.counts();
                    eprint!("\rscanning: {d}/{n} files\x1b[K");
                }
                eprint!("\r\x1b[K");
            });
        }
        let out = scan_all(&t.plan, cache.as_ref(), &control);
        drop(done);
        out
    });
    let r = report::assemble(&t.plan, scans, training);
    if json {
        super::print_json(&report::to_json(&r))?;
    } else {
        print_text(&r)?;
    }
    // Exit 1 where diffusion-pipe would stop (or a directory cannot be read).
    let errors = r.health() >= report::Health::Fatal;
    // The process ends next: its exit frees the report's 100,000 names at once, where dropping
    // them one by one costs the command a few percent of its time.
    std::mem::forget(r);
    Ok(if errors { 1 } else { 0 })
}

fn print_text(r: &DatasetReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(c) = &r.config {
        writeln!(out, "dataset config: {}", escaped(&c.display().to_string()))?;
    }
    for d in &r.config_errors {
        writeln!(out, "  {}", escaped(&super::lint::format_diagnostic(d)))?;
    }
    for (i, d) in r.directories.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "[[directory]] {}", escaped(&d.path_label()))?;
        match &d.scan {
            Err(e) => {
                writeln!(out, "  cannot scan: {}", escaped(e))?;
                continue;
            }
            Ok(s) => {
                use crate::datasets::problems::plural;
                writeln!(
                    out,
                    "  {}, {}, {}; {} into buckets (num_repeats {})",
                    plural(d.images, "image", "images"),
                    plural(d.videos, "video", "videos"),
                    plural(d.captions, "caption", "captions"),
                    plural(d.trained, "goes", "go"),
                    d.planned.effective.num_repeats
                )?;
                if d.videos > 0 {
                    writeln!(
                        out,
                        "  video frames: {}",
                        report::describe_probe(&s.video_probe)
                    )?;
                }
                for c in &s.caches {
                    writeln!(out, "  {}", escaped(&report::describe_cache(c)))?;
                }
            }
        }
        for p in &d.problems {
            let word = match p.severity {
                Severity::Fatal => "error",
                Severity::Warning => "warning",
                Severity::Info => "note",
            };
            writeln!(out, "  {word}[{}]: {}", p.kind, escaped(&p.message))?;
            for f in p.files.iter().take(5) {
                writeln!(out, "    {}", escaped(f))?;
            }
            if p.files.len() > 5 {
                writeln!(out, "    … and {} more", p.files.len() - 5)?;
            }
        }
        let rows: Vec<_> = r
            .table
            .rows
            .iter()
            .filter(|row| row.per_directory.get(i).copied().unwrap_or(0) > 0)
            .collect();
        if !rows.is_empty() {
            writeln!(out, "  buckets (items after num_repeats):")?;
            for row in rows {
                writeln!(
                    out,
                    "    ar {:>6.3}  {:>5}x{:<5} frames {:>3}  {:>6}",
                    row.bucket.ar,
                    row.bucket.width,
                    row.bucket.height,
                    row.bucket.frames,
                    row.per_directory[i]
                )?;
            }
        }
    }
    writeln!(out)?;
    let (items, dropped) = r.bucket_totals();
    writeln!(
        out,
        "size buckets: {} ({} items, rounded to multiples of {})",
        r.table.rows.len(),
        items,
        r.multiple
    )?;
    match &r.training {
        Some(t) => {
            writeln!(
                out,
                "training config: {} ({} GPU(s), model {})",
                escaped(&t.config.display().to_string()),
                t.gpus,
                if t.model.model_type.is_empty() {
                    "?"
                } else {
                    t.model.model_type.as_str()
                }
            )?;
            for row in r.table.rows.iter().filter(|r| r.dropped > 0) {
                writeln!(
                    out,
                    "  {}x{}x{}: {} items, global batch {}: {} dropped{}",
                    row.bucket.width,
                    row.bucket.height,
                    row.bucket.frames,
                    row.items,
                    row.global_batch.unwrap_or(0),
                    row.dropped,
                    if row.used == 0 {
                        " (the whole bucket)"
                    } else {
                        ""
                    }
                )?;
            }
            match r.global_batch_size() {
                Some(g) => writeln!(out, "global batch size: {g}")?,
                None => writeln!(out, "global batch size: differs per bucket")?,
            }
            writeln!(
                out,
                "steps per epoch: {} ({} of {} items dropped by the cut to whole batches)",
                r.table.steps_per_epoch.unwrap_or(0),
                dropped,
                items
            )?;
        }
        None => writeln!(
            out,
            "steps per epoch: give --config TRAIN.toml (batch sizes) and --gpus N"
        )?,
    }
    Ok(())
}
