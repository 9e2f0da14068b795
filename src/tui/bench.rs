//! Support for `benches/` (hidden subcommands): the job view's log path measured in isolation.
//!
//! [`tail_latency`] (`dpgui __bench-tail JOB_DIR --seconds N`, driven by `benches/tail.sh`) does
//! per tick exactly what the dashboard does with a job view open: `JobLogs::poll` every
//! `LOG_POLL` (100 ms), rank 0's history scanned on a worker thread and handed over with
//! `set_history`, and the whole Jobs view drawn (200x60, into a `TestBackend` instead of a
//! terminal). The bench's writer puts ` ts=<CLOCK_MONOTONIC ns> seq=<n>` in every line; each
//! line the tailers handed over in a tick is measured right after the frame that shows it was
//! drawn, so a line's latency is "written until on screen".

use std::path::Path;
use std::time::{Duration, Instant};

use color_eyre::eyre::eyre;
use memchr::memmem;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use crate::jobs::journal::Journal;
use crate::jobs::store::JobView;
use crate::system::gpu::{GpuFeed, GpuHistory, fake_gpus};
use crate::tui::app::{AppInfo, State, Tab};
use crate::tui::jobs::{JobLogs, Shared};
use crate::tui::theme::Theme;
use crate::tui::views;

/// The dashboard's log poll period (`LOG_POLL` in `tui/mod.rs`).
const TICK: Duration = Duration::from_millis(100);
const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
/// Latency histogram: 50 µs buckets up to 10 s (the last bucket holds everything above).
const BUCKET_US: u64 = 50;
const BUCKETS: usize = 200_000;

/// CLOCK_MONOTONIC in ns: the clock the writer stamps its lines with (Python's
/// `time.monotonic_ns`), so latencies compare across the two processes.
struct Mono;

impl Mono {
    fn new() -> color_eyre::Result<Self> {
        Ok(Mono)
    }

    fn now_ns(&self) -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    }
}

/// utime + stime of this process (all threads), in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks as f64 / procfs::ticks_per_second() as f64
}

/// A `/proc/self/status` value in KiB (VmRSS, VmHWM).
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The number after `key` (e.g. ` ts=`) in `line`.
fn number_after(line: &[u8], key: &memmem::Finder) -> Option<u64> {
    let at = key.find(line)? + key.needle().len();
    let digits = line[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max_us: u64,
    over_250ms: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            n: 0,
            max_us: 0,
            over_250ms: 0,
        }
    }

    fn add(&mut self, us: u64) {
        self.counts[((us / BUCKET_US) as usize).min(BUCKETS - 1)] += 1;
        self.n += 1;
        self.max_us = self.max_us.max(us);
        self.over_250ms += u64::from(us > 250_000);
    }

    /// The q-quantile in ms (bucket upper edge).
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let want = ((self.n as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ((i as u64 + 1) * BUCKET_US).min(self.max_us) as f64 / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }
}

/// Times of one phase of a tick, in µs.
#[derive(Default)]
struct Phase {
    all: Vec<u32>,
}

impl Phase {
    fn add(&mut self, d: Duration) {
        self.all.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    fn summary(&mut self) -> serde_json::Value {
        self.all.sort_unstable();
        let q = |q: f64| -> f64 {
            if self.all.is_empty() {
                return 0.0;
            }
            let i = ((self.all.len() as f64 * q).ceil() as usize).clamp(1, self.all.len()) - 1;
            self.all[i] as f64 / 1000.0
        };
        serde_json::json!({
            "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0), "n": self.all.len(),
        })
    }
}

/// Follows `job_dir`'s logs as the job view does for `duration` and prints a JSON report: lines
/// seen and missing (sequence gaps), latency written → drawn (max / p99 / p50), CPU of this
/// process as a share of one core, peak RSS, frames drawn, and per-tick poll and draw times.
pub fn tail_latency(job_dir: &Path, duration: Duration) -> color_eyre::Result<i32> {
    let mono = Mono::new()?;
    let cpu0 = cpu_secs();
    let id = job_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bench".into());

    // The state the dashboard has with this job's view open on a machine with 8 GPUs.
    let mut s = State::new(AppInfo::default());
    s.size = Rect::new(0, 0, WIDTH, HEIGHT);
    s.tab = Tab::Jobs;
    s.jobs.loaded = true;
    let snap = fake_gpus(8);
    let mut history = GpuHistory::new(crate::system::gpu::DEFAULT_HISTORY_LEN);
    history.push(&snap);
    s.env.gpu = Some(GpuFeed {
        snapshot: Some(snap),
        history,
        samples: 1,
    });
    if let Ok(journal) = Journal::read(job_dir) {
        s.jobs.list = vec![JobView {
            state: journal.state,
            journal,
            dir: job_dir.to_path_buf(),
            lost: None,
            processes: vec![],
        }];
    }
    let logs = Shared::new(JobLogs::open(&id, job_dir));
    s.jobs.logs = Some(logs.clone());
    let theme = Theme::builtin("dark").ok_or_else(|| eyre!("no dark theme"))?;
    let mut term = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    term.draw(|f| views::draw(f, &s, &theme))?;

    let ts_key = memmem::Finder::new(b" ts=");
    let seq_key = memmem::Finder::new(b" seq=");
    let mut hist = Histogram::new();
    let mut worst_tick_lines = 0u64;
    // Per rank: the next sequence number expected, lines seen, lines missing.
    let mut next_seq = [None::<u64>; 64];
    let mut seen = [0u64; 64];
    let mut missing = [0u64; 64];
    let mut unstamped = 0u64;
    let mut evicted_unseen = 0u64;
    let mut frames = 1u64;
    let mut ticks = 0u64;
    let (mut poll_t, mut draw_t, mut tick_t) =
        (Phase::default(), Phase::default(), Phase::default());
    let mut late_ticks = 0u64;
    let mut bookkeeping = Duration::ZERO;
    let mut rss_timeline: Vec<(f64, u64)> = Vec::new();
    let mut history_thread: Option<std::thread::JoinHandle<crate::trainer::progress::Progress>> =
        None;
    let mut history_ms = None;

    let start = Instant::now();
    let mut next = start + TICK;
    let mut next_rss = start;
    let mut before: Vec<(Option<u32>, u64)> = Vec::new();
    while start.elapsed() < duration {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > TICK / 2 {
            late_ticks += 1;
        }
        // tokio's interval with MissedTickBehavior::Skip: the next tick on the grid after now.
        next += TICK;
        while next <= Instant::now() {
            next += TICK;
        }
        ticks += 1;
        let t0 = Instant::now();
        let mut l = logs.lock();
        before.clear();
        before.extend(
            l.panes
                .iter()
                .map(|p| (p.rank, p.tailer.buffer().total_lines())),
        );
        let changed = l.poll();
        // As the runtime: rank 0's history on a blocking thread, handed over when done.
        if let Some(path) = l.history_request.take() {
            history_thread = Some(std::thread::spawn(move || {
                crate::trainer::progress::scan_history(&path).unwrap_or_default()
            }));
        }
        if history_thread.as_ref().is_some_and(|h| h.is_finished())
            && let Some(h) = history_thread.take()
        {
            let p = h.join().map_err(|_| eyre!("history scan panicked"))?;
            l.set_history(p);
            history_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
        }
        let t1 = Instant::now();
        poll_t.add(t1 - t0);
        drop(l);
        if changed {
            term.draw(|f| views::draw(f, &s, &theme))?;
            frames += 1;
        }
        let t2 = Instant::now();
        draw_t.add(t2 - t1);
        tick_t.add(t2 - t0);
        let shown_ns = mono.now_ns();

        // Bookkeeping (not part of what the dashboard does): every line handed over this tick.
        let l = logs.lock();
        let mut tick_lines = 0u64;
        for pane in &l.panes {
            let Some(rank) = pane.rank else { continue };
            // A pane that appeared during this poll: everything it holds is new.
            let b = before
                .iter()
                .find(|(r, _)| *r == pane.rank)
                .map_or(0, |(_, n)| *n);
            let buf = pane.tailer.buffer();
            let new = buf.total_lines().saturating_sub(b);
            let kept = (new as usize).min(buf.len());
            evicted_unseen += new - kept as u64;
            let r = (rank as usize).min(63);
            for i in buf.len() - kept..buf.len() {
                let line = buf.line(i).unwrap_or_default().as_bytes();
                let (Some(ts), Some(seq)) =
                    (number_after(line, &ts_key), number_after(line, &seq_key))
                else {
                    unstamped += 1;
                    continue;
                };
                hist.add(shown_ns.saturating_sub(ts) / 1000);
                seen[r] += 1;
                tick_lines += 1;
                if let Some(want) = next_seq[r]
                    && seq > want
                {
                    missing[r] += seq - want;
                }
                next_seq[r] = Some(seq + 1);
            }
        }
        drop(l);
        worst_tick_lines = worst_tick_lines.max(tick_lines);
        if Instant::now() >= next_rss {
            rss_timeline.push((start.elapsed().as_secs_f64(), status_kib("VmRSS")));
            next_rss += Duration::from_secs(1);
        }
        bookkeeping += t2.elapsed();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;

    let expected = std::fs::read_to_string(job_dir.join("writer.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let ranks: Vec<serde_json::Value> = (0..64)
        .filter(|&r| seen[r] > 0 || missing[r] > 0)
        .map(|r| serde_json::json!({"rank": r, "seen": seen[r], "missing": missing[r], "last_seq": next_seq[r].map(|s| s - 1)}))
        .collect();
    let rss_mib: Vec<serde_json::Value> = rss_timeline
        .iter()
        .map(|(t, k)| serde_json::json!([(t * 10.0).round() / 10.0, *k as f64 / 1024.0]))
        .collect();
    let l = logs.lock();
    let ring_lines: usize = l.panes.iter().map(|p| p.tailer.buffer().len()).sum();
    let report = serde_json::json!({
        "job_dir": job_dir.display().to_string(),
        "seconds": wall,
        "size": format!("{WIDTH}x{HEIGHT}"),
        "panes": l.panes.len(),
        "lines_seen": hist.n,
        "lines_missing": missing.iter().sum::<u64>(),
        "lines_evicted_before_measured": evicted_unseen,
        "lines_unstamped": unstamped,
        "writer": expected,
        "ranks": ranks,
        "latency_ms": {
            "p50": hist.quantile_ms(0.5),
            "p99": hist.quantile_ms(0.99),
            "p999": hist.quantile_ms(0.999),
            "max": hist.max_us as f64 / 1000.0,
            "over_250ms": hist.over_250ms,
        },
        "cpu_s": cpu,
        "cpu_pct_one_core": 100.0 * cpu / wall,
        "bookkeeping_s": bookkeeping.as_secs_f64(),
        "cpu_pct_one_core_without_bookkeeping": 100.0 * (cpu - bookkeeping.as_secs_f64()).max(0.0) / wall,
        "vm_hwm_mib": status_kib("VmHWM") as f64 / 1024.0,
        "vm_rss_end_mib": status_kib("VmRSS") as f64 / 1024.0,
        "rss_mib_every_s": rss_mib,
        "frames": frames,
        "ticks": ticks,
        "late_ticks": late_ticks,
        "max_lines_one_tick": worst_tick_lines,
        "ring_lines_end": ring_lines,
        "progress_step": l.progress.step,
        "progress_loss_points": l.progress.losses.len(),
        "history_loaded_ms": history_ms,
        "poll": poll_t.summary(),
        "draw": draw_t.summary(),
        "tick": tick_t.summary(),
    });
    println!("{report}");
    Ok(0)
}

/// Frame timing of one phase: how late each frame started against a 30 fps schedule, and how
/// long it took to draw.
fn frame_stats(late: &Histogram, draw: &Histogram, frames: u64, secs: f64) -> serde_json::Value {
    serde_json::json!({
        "frames": frames,
        "fps": frames as f64 / secs.max(1e-9),
        "late_p50_ms": late.quantile_ms(0.5),
        "late_p99_ms": late.quantile_ms(0.99),
        "late_max_ms": late.max_us as f64 / 1000.0,
        "draw_p50_ms": draw.quantile_ms(0.5),
        "draw_p99_ms": draw.quantile_ms(0.99),
    })
}

/// `dpgui __bench-scan-ui DATASET.toml`: the Datasets tab drawn at the dashboard's frame rate
/// (30 fps, `FRAME` in `tui/mod.rs`) for `idle` seconds, then again while the dataset is
/// scanned afresh, one scan after another for at least `idle` seconds, on the tab's own
/// background scan (`datasets::run::scan`: the same workers, the same progress polling).
/// Prints both phases' frame rate and frame lateness as JSON: the scans must not slow the UI.
pub fn scan_ui(dataset: &Path, idle: Duration) -> color_eyre::Result<i32> {
    use crate::tui::app::{Event, update};
    use crate::tui::datasets::{DatasetsEvent, SourceKey, SourceSpec, run};

    const FRAME: Duration = Duration::from_millis(33);
    let theme = Theme::builtin("dark").ok_or_else(|| eyre!("no dark theme"))?;
    let mut term = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    let mut s = State::new(AppInfo::default());
    s.size = Rect::new(0, 0, WIDTH, HEIGHT);
    s.tab = Tab::Datasets;
    let key = SourceKey::Config(std::path::absolute(dataset)?);
    let _ = update(
        &mut s,
        Event::Datasets(DatasetsEvent::Sources(vec![SourceSpec {
            key: key.clone(),
            training: vec![],
        }])),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let send: run::Send = std::sync::Arc::new(move |e| {
        let _ = tx.send(e);
    });

    // One phase: draw on schedule until `until` says stop; events are applied before each frame.
    let mut phase = |s: &mut State, until: &mut dyn FnMut(&State, Duration) -> bool| {
        let (mut late, mut draw) = (Histogram::new(), Histogram::new());
        let start = Instant::now();
        let mut next = start;
        let mut frames = 0u64;
        while !until(s, start.elapsed()) {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            let began = Instant::now();
            late.add(began.saturating_duration_since(next).as_micros() as u64);
            while let Ok(e) = rx.try_recv() {
                let _ = update(s, Event::Datasets(e));
            }
            let t0 = Instant::now();
            term.draw(|f| views::draw(f, s, &theme))?;
            draw.add(t0.elapsed().as_micros() as u64);
            frames += 1;
            next += FRAME;
            // A slow frame does not make the next ones rush to catch up (MissedTickBehavior::Skip).
            if next < Instant::now() {
                next = Instant::now();
            }
        }
        Ok::<_, color_eyre::Report>((late, draw, frames, start.elapsed().as_secs_f64()))
    };

    let (li, di, fi, si) = phase(&mut s, &mut |_, t| t >= idle)?;
    let base = std::env::current_dir()?;
    let scan_start = Instant::now();
    let mut scans = 0u32;
    // A scan is under way from `run::scan` until its Scanned event has been applied: the
    // source's `scanned_at` changes then.
    let mut running: Option<Option<std::time::SystemTime>> = None;
    let (ls, ds, fs, ss) = phase(&mut s, &mut |s, t| {
        let Some(src) = s.datasets.current() else {
            return true;
        };
        if src.error.is_some() {
            return true;
        }
        if running.is_some_and(|at| src.scanned_at != at) {
            running = None;
        }
        if running.is_none() {
            if t >= idle {
                return true;
            }
            // A new scan: the control shows up with its ScanStarted event.
            running = Some(src.scanned_at);
            run::scan(key.clone(), None, 1, true, base.clone(), send.clone());
            scans += 1;
        }
        false
    })?;
    let scan_secs = scan_start.elapsed().as_secs_f64() / f64::from(scans.max(1));
    let files: usize = s.datasets.report().map_or(0, |r| {
        r.directories.iter().map(|d| d.images + d.videos).sum()
    });
    println!(
        "{}",
        serde_json::json!({
            "files": files,
            "scans": scans,
            "scan_secs": scan_secs,
            "idle": frame_stats(&li, &di, fi, si),
            "scanning": frame_stats(&ls, &ds, fs, ss),
            "error": s.datasets.current().and_then(|c| c.error.clone()),
        })
    );
    Ok(0)
}
