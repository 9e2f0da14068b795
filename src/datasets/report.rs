//! A dataset config's report: every `[[directory]]` scanned, its problems, and the size buckets
//! diffusion-pipe will build from it (with a training config: batches and steps per epoch).
//! Shared by `dpgui dataset` and the Datasets tab.
//!
//! `plan` reads the config (the linter's parser), the caller scans each directory (in the
//! background in the dashboard), and `assemble` puts scans and bucket maths together.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use std::sync::Arc;

use super::{
    CacheInfo, Caption, DirectoryScan, MediaKind, Problem, ScanCache, ScanControl, ScanRequest,
    Severity, VideoProbe,
};
use crate::trainer::dataset::buckets::{
    self, BucketRow, BucketRules, BucketTable, DirectoryPlacements, Medium, ModelFacts, Placement,
};
use crate::trainer::lint::BatchSettings;
use crate::trainer::lint::{self, ConfigKind, DatasetConfig, EffectiveDirectory};

/// One `[[directory]]` of a dataset config, with its effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDirectory {
    /// As written in the config (None: the entry has no usable `path`).
    pub value: Option<String>,
    /// Resolved the way diffusion-pipe resolves it (relative to its working directory).
    pub path: Option<PathBuf>,
    pub effective: EffectiveDirectory,
}

impl PlannedDirectory {
    pub fn request(&self, base: &Path) -> Option<ScanRequest> {
        let path = self.path.clone()?;
        let opt = |v: &Option<String>| v.as_deref().map(|v| lint::resolve(base, v));
        Some(ScanRequest {
            path,
            mask_path: opt(&self.effective.mask_path),
            control_path: opt(&self.effective.control_path),
            default_mask_file: opt(&self.effective.default_mask_file),
        })
    }
}

/// What a dataset report is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The dataset config (None: a directory added on its own, with default settings).
    pub config: Option<PathBuf>,
    pub dataset: DatasetConfig,
    pub directories: Vec<PlannedDirectory>,
    /// Where relative paths are resolved (diffusion-pipe's working directory: the checkout).
    pub base: PathBuf,
    /// The linter's errors in the dataset config (diffusion-pipe would stop on each).
    pub config_errors: Vec<lint::Diagnostic>,
}

/// Reads a dataset config. `base` = diffusion-pipe's working directory (the checkout root),
/// against which it resolves relative paths.
pub fn plan(config: &Path, text: &str, base: &Path) -> Result<Plan, String> {
    let dataset = lint::parse_dataset(text).map_err(|e| {
        format!(
            "{}:{}:{}: {}",
            config.display(),
            e.line,
            e.column,
            e.message
        )
    })?;
    let directories = dataset
        .directories
        .iter()
        .map(|d| {
            let effective = d.effective(&dataset);
            let value = effective.path.clone();
            PlannedDirectory {
                path: value.as_deref().map(|v| lint::resolve(base, v)),
                value,
                effective,
            }
        })
        .collect();
    // The same rules the Config tab checks, errors only: the problems below are the files'.
    let config_errors = lint::lint_dataset(config, text, base, &lint::RealFs)
        .into_iter()
        .filter(|d| d.severity == lint::Severity::Error)
        .collect();
    Ok(Plan {
        config: Some(config.to_path_buf()),
        dataset,
        directories,
        base: base.to_path_buf(),
        config_errors,
    })
}

/// A directory the user added on its own: diffusion-pipe's defaults, no buckets (a dataset
/// config says which resolutions to train at).
pub fn plan_directory(dir: &Path) -> Plan {
    let dataset = DatasetConfig::default();
    let mut effective = lint::DirectoryConfig::default().effective(&dataset);
    effective.path = Some(dir.display().to_string());
    Plan {
        config: None,
        directories: vec![PlannedDirectory {
            value: effective.path.clone(),
            path: Some(dir.to_path_buf()),
            effective,
        }],
        dataset,
        base: dir.to_path_buf(),
        config_errors: Vec::new(),
    }
}

/// What the command was pointed at, made into a plan and an optional training config.
pub struct Target {
    pub plan: Plan,
    pub training: Option<(PathBuf, String)>,
}

/// `path` may be a dataset config, a training config (its `dataset` is used and it becomes the
/// training config unless `--config` names another) or a directory (default settings).
pub fn target(base: &Path, path: &Path, config: Option<&Path>) -> Result<Target, String> {
    let mut training = match config {
        Some(c) => Some((c.to_path_buf(), crate::cli::lint::read_config(c)?)),
        None => None,
    };
    if path.is_dir() {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return Ok(Target {
            plan: plan_directory(&abs),
            training,
        });
    }
    let text = crate::cli::lint::read_config(path)?;
    let (dataset_path, dataset_text) = match lint::config_kind(&text) {
        ConfigKind::Main => {
            let main = crate::trainer::config::read_main(&text);
            let Some(ds) = main.dataset else {
                return Err(format!(
                    "{}: a training config without `dataset = ...`: name the dataset config there",
                    path.display()
                ));
            };
            let ds = lint::resolve(base, &ds);
            let t = crate::cli::lint::read_config(&ds)
                .map_err(|e| format!("the dataset config named by {}: {e}", path.display()))?;
            if training.is_none() {
                training = Some((path.to_path_buf(), text));
            }
            (ds, t)
        }
        _ => (path.to_path_buf(), text),
    };
    let plan = plan(&dataset_path, &dataset_text, base)?;
    Ok(Target { plan, training })
}

/// Scans every directory of the plan in order; `progress` is called with (directory index,
/// control) while a scan runs, from another thread.
pub fn scan_all(
    plan: &Plan,
    cache: Option<&ScanCache>,
    control: &Arc<ScanControl>,
) -> Vec<Result<crate::datasets::DirectoryScan, String>> {
    plan.directories
        .iter()
        .map(|d| {
            if control.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err("cancelled".to_string());
            }
            match d.request(&plan.base) {
                Some(req) => super::scan_directory(&req, control, cache).map_err(|e| e.to_string()),
                None => Err("this [[directory]] has no `path`".to_string()),
            }
        })
        .collect()
}

/// The training side: what the buckets are batched by.
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    pub config: PathBuf,
    pub model: ModelFacts,
    pub batch: BatchSettings,
    pub gpus: u64,
}

impl Training {
    /// Reads a training config's batch settings and model; None when it has none to read.
    /// `base`: where diffusion-pipe resolves relative paths (Wan's config.json is read to tell
    /// Wan 2.2 5B apart).
    pub fn read(config: &Path, text: &str, gpus: u64, base: &Path) -> Option<Training> {
        let batch = lint::batch_settings(text)?;
        let mut model = ModelFacts::from_settings(&batch).unwrap_or_default();
        for candidate in model.wan_config_candidates() {
            let p = lint::resolve(base, &candidate.to_string_lossy());
            if let Ok(meta) = std::fs::metadata(&p)
                && meta.is_file()
                && meta.len() < (1 << 20)
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                model.wan_checkpoint_type = buckets::wan_checkpoint_type(&text);
                break;
            }
        }
        Some(Training {
            config: config.to_path_buf(),
            model,
            batch,
            gpus: gpus.max(1),
        })
    }
}

/// How video frame counts are read, in a sentence.
pub fn describe_probe(p: &VideoProbe) -> String {
    match p {
        VideoProbe::Ffprobe { path, version } => {
            format!("read with {} ({version})", path.display())
        }
        VideoProbe::Unavailable => {
            "unknown: ffprobe is not installed (apt install ffmpeg)".to_string()
        }
    }
}

/// A cache directory in a sentence.
pub fn describe_cache(c: &CacheInfo) -> String {
    let mut s = format!(
        "cache/{}: {} in {} files",
        c.name,
        crate::units::format_bytes(c.bytes),
        c.files
    );
    if c.symlink {
        s.push_str(" (a symlink)");
    }
    if c.stale {
        s.push_str(&format!(
            "; {} input(s) changed since it was written: run with --regenerate_cache",
            c.newer_count
        ));
    }
    s
}

/// One directory's part of the report.
#[derive(Debug, Clone)]
pub struct DirectoryReport {
    pub planned: PlannedDirectory,
    /// Err: why the directory could not be scanned (missing, not a directory, unreadable).
    pub scan: Result<DirectoryScan, String>,
    pub images: usize,
    pub videos: usize,
    pub captions: usize,
    /// Media that go into buckets.
    pub trained: usize,
    pub problems: Vec<Problem>,
}

impl DirectoryReport {
    pub fn path_label(&self) -> String {
        match (&self.planned.path, &self.planned.value) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(v)) => v.clone(),
            (None, None) => "(no path)".into(),
        }
    }

    pub fn health(&self) -> Health {
        if self.scan.is_err() {
            return Health::Broken;
        }
        match self.problems.iter().map(|p| p.severity).min() {
            None => Health::Ok,
            Some(Severity::Info) => Health::Notes,
            Some(Severity::Warning) => Health::Warnings,
            Some(Severity::Fatal) => Health::Fatal,
        }
    }
}

/// A dataset's or directory's overall state, for the list: worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Ok,
    /// Only things worth knowing.
    Notes,
    /// Training data lost or changed (skipped media, dropped buckets).
    Warnings,
    /// diffusion-pipe would stop.
    Fatal,
    /// A directory could not be scanned.
    Broken,
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct DatasetReport {
    pub config: Option<PathBuf>,
    /// The linter's errors in the dataset config (`dpgui lint` shows them with fixes).
    pub config_errors: Vec<lint::Diagnostic>,
    pub directories: Vec<DirectoryReport>,
    pub table: BucketTable,
    pub training: Option<Training>,
    /// The rounding multiple used for bucket sizes.
    pub multiple: u32,
}

impl DatasetReport {
    pub fn health(&self) -> Health {
        let config = if self.config_errors.is_empty() {
            Health::Ok
        } else {
            Health::Fatal
        };
        self.directories
            .iter()
            .map(DirectoryReport::health)
            .chain([config])
            .max()
            .unwrap_or(Health::Ok)
    }

    pub fn totals(&self) -> (usize, usize, usize) {
        self.directories.iter().fold((0, 0, 0), |a, d| {
            (a.0 + d.images, a.1 + d.videos, a.2 + d.captions)
        })
    }

    /// Items (after num_repeats) and those dropped by the cut to whole batches.
    pub fn bucket_totals(&self) -> (u64, u64) {
        self.table
            .rows
            .iter()
            .fold((0, 0), |a, r| (a.0 + r.items, a.1 + r.dropped))
    }

    /// The global batch size when every bucket has the same one (the usual case).
    pub fn global_batch_size(&self) -> Option<u64> {
        let mut sizes = self.table.rows.iter().filter_map(|r| r.global_batch);
        let first = sizes.next()?;
        sizes.all(|s| s == first).then_some(first)
    }
}

/// Whether a medium reaches a bucket, and as what. `model`: None when no training config is
/// known; videos then keep their own frame rate.
fn medium(
    m: &super::MediaEntry,
    skip_empty_caption: bool,
    model: Option<&ModelFacts>,
) -> Option<Medium> {
    let h = m.header.as_ref().ok()?;
    if h.animated || (skip_empty_caption && m.caption == Caption::Missing) {
        return None;
    }
    if matches!(m.caption, Caption::Unreadable { .. }) {
        return None;
    }
    match m.kind {
        MediaKind::Image => Some(Medium::image(h.width, h.height)),
        MediaKind::Video => {
            let (frames, fps) = (h.source_frames?, h.fps?);
            let model_fps = match model {
                Some(m) => m.fps(),
                None => Some(fps),
            };
            Medium::video(h.width, h.height, frames, fps, model_fps)
        }
    }
}

fn has_caption_file(c: &Caption) -> bool {
    !matches!(c, Caption::Missing)
}

/// Whether a placement lands in a row of the table.
fn in_row(p: &Placement, row: &BucketRow) -> bool {
    match *p {
        Placement::Bucket { ar, frames } => {
            (ar - row.bucket.ar).abs() < 1e-9 && frames == row.bucket.frames
        }
        Placement::Size {
            width,
            height,
            frames,
        } => {
            width == row.bucket.width && height == row.bucket.height && frames == row.bucket.frames
        }
        Placement::TooShort { .. } | Placement::Unplaceable => false,
    }
}

/// Puts the scans (in the plan's directory order) and the bucket maths together.
pub fn assemble(
    plan: &Plan,
    scans: Vec<Result<DirectoryScan, String>>,
    training: Option<Training>,
) -> DatasetReport {
    let model = training
        .as_ref()
        .map(|t| t.model.clone())
        .unwrap_or_default();
    let model_known = training.as_ref().map(|t| &t.model);
    let mut rules = Vec::new();
    let mut placed: Vec<Vec<Placement>> = Vec::new();
    let mut placed_names: Vec<Vec<String>> = Vec::new();
    let mut directories = Vec::new();
    for (planned, scan) in plan.directories.iter().zip(scans) {
        let eff = &planned.effective;
        let mut problems = Vec::new();
        let (mut images, mut videos, mut captions) = (0, 0, 0);
        let mut p = Vec::new();
        let mut names = Vec::new();
        let dir_rules = BucketRules::new(eff);
        if let Ok(s) = &scan {
            problems = super::problems(s, eff.skip_empty_caption);
            for m in &s.media {
                match m.kind {
                    MediaKind::Image => images += 1,
                    MediaKind::Video => videos += 1,
                }
                if has_caption_file(&m.caption) {
                    captions += 1;
                }
                if let Some(md) = medium(m, eff.skip_empty_caption, model_known) {
                    p.push(dir_rules.place(md));
                    names.push(m.name.clone());
                }
            }
            captions += s.orphan_captions.len();
        }
        // The names of the media whose placement is `pred`.
        let named = |pred: &dyn Fn(&Placement) -> bool| -> Vec<String> {
            p.iter()
                .zip(&names)
                .filter(|(pl, _)| pred(pl))
                .map(|(_, n)| n.clone())
                .collect()
        };
        let too_short = named(&|pl| matches!(pl, Placement::TooShort { .. }));
        if !too_short.is_empty() {
            problems.push(Problem {
                severity: Severity::Warning,
                kind: "video_too_short",
                message: format!(
                    "{} video(s) shorter than every frame bucket above 1 ({:?}): diffusion-pipe skips them",
                    too_short.len(),
                    eff.frame_buckets
                ),
                files: too_short,
            });
        }
        let unplaceable = named(&|pl| matches!(pl, Placement::Unplaceable));
        if !unplaceable.is_empty() {
            problems.push(Problem {
                severity: Severity::Fatal,
                kind: "unplaceable",
                message: format!(
                    "{} file(s) fit no bucket: {}",
                    unplaceable.len(),
                    dir_rules
                        .problem()
                        .unwrap_or("they have no size (diffusion-pipe stops on them)")
                ),
                files: unplaceable,
            });
        }
        if let (Some(m), Ok(s)) = (model_known, &scan)
            && m.fps().is_none()
            && videos > 0
        {
            problems.push(Problem {
                severity: Severity::Warning,
                kind: "videos_ignored",
                message: format!(
                    "{videos} video(s): the model `{}` trains on images only, diffusion-pipe skips them",
                    m.model_type
                ),
                files: s
                    .media
                    .iter()
                    .filter(|x| x.kind == MediaKind::Video)
                    .map(|x| x.name.clone())
                    .collect(),
            });
        }
        let trained = p
            .iter()
            .filter(|pl| matches!(pl, Placement::Bucket { .. } | Placement::Size { .. }))
            .count();
        rules.push(dir_rules);
        placed.push(p);
        placed_names.push(names);
        directories.push(DirectoryReport {
            planned: planned.clone(),
            scan,
            images,
            videos,
            captions,
            trained,
            problems,
        });
    }
    let dirs: Vec<DirectoryPlacements> = rules
        .iter()
        .zip(&placed)
        .zip(&plan.directories)
        .map(|((r, p), d)| DirectoryPlacements::new(r, d.effective.num_repeats, p))
        .collect();
    let table = buckets::tabulate(&dirs, &model, training.as_ref().map(|t| (&t.batch, t.gpus)));
    // Buckets cut to nothing: every item in them is lost for this epoch.
    for row in table.rows.iter().filter(|r| r.items > 0 && r.used == 0) {
        for (i, d) in directories.iter_mut().enumerate() {
            if row.per_directory.get(i).copied().unwrap_or(0) == 0 {
                continue;
            }
            let files: Vec<String> = placed[i]
                .iter()
                .zip(&placed_names[i])
                .filter(|(pl, _)| in_row(pl, row))
                .map(|(_, n)| n.clone())
                .collect();
            d.problems.push(Problem {
                severity: Severity::Warning,
                kind: "bucket_dropped",
                message: format!(
                    "bucket {}x{}x{} (ar {:.3}) holds {} item(s), fewer than the global batch {}: diffusion-pipe drops it completely",
                    row.bucket.width,
                    row.bucket.height,
                    row.bucket.frames,
                    row.bucket.ar,
                    row.items,
                    row.global_batch.unwrap_or(0)
                ),
                files,
            });
        }
    }
    DatasetReport {
        config: plan.config.clone(),
        config_errors: plan.config_errors.clone(),
        directories,
        table,
        multiple: buckets::size_multiple(&model),
        training,
    }
}

/// The JSON of `dpgui dataset --json` (documented in the README).
pub fn to_json(r: &DatasetReport) -> Value {
    let directories: Vec<Value> = r
        .directories
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let buckets: Vec<Value> = r
                .table
                .rows
                .iter()
                .filter(|row| row.per_directory.get(i).copied().unwrap_or(0) > 0)
                .map(|row| {
                    let items = row.per_directory[i];
                    json!({
                        "ar": round3(row.bucket.ar),
                        "width": row.bucket.width,
                        "height": row.bucket.height,
                        "frames": row.bucket.frames,
                        "resolution": row.resolution,
                        "items": items,
                        // A bucket cut to nothing loses all of this directory's items in it;
                        // a partial cut drops random items (the remainder is in the totals).
                        "dropped": if row.used == 0 { items } else { 0 },
                    })
                })
                .collect();
            let problems: Vec<Value> = d
                .problems
                .iter()
                .map(|p| {
                    json!({
                        "kind": p.kind,
                        "severity": p.severity,
                        "message": p.message,
                        "files": p.files,
                    })
                })
                .collect();
            json!({
                "path": d.path_label(),
                "error": d.scan.as_ref().err(),
                "images": d.images,
                "videos": d.videos,
                "captions": d.captions,
                "trained": d.trained,
                "num_repeats": d.planned.effective.num_repeats,
                "archives": d.scan.as_ref().map(|s| s.archives.as_slice()).unwrap_or_default(),
                "problems": problems,
                "buckets": buckets,
            })
        })
        .collect();
    let all: Vec<Value> = r
        .table
        .rows
        .iter()
        .map(|row| {
            json!({
                "ar": round3(row.bucket.ar),
                "width": row.bucket.width,
                "height": row.bucket.height,
                "frames": row.bucket.frames,
                "resolution": row.resolution,
                "items": row.items,
                "global_batch": row.global_batch,
                "used": row.used,
                "dropped": row.dropped,
            })
        })
        .collect();
    let config_errors: Vec<Value> = r
        .config_errors
        .iter()
        .map(|d| json!({"line": d.line, "column": d.column, "code": d.code, "message": d.message, "fix": d.fix}))
        .collect();
    let mut out = json!({
        "config": r.config.as_ref().map(|p| p.display().to_string()),
        "config_errors": config_errors,
        "directories": directories,
        "buckets": all,
        "size_multiple": r.multiple,
    });
    if let Some(t) = &r.training {
        out["training_config"] = json!(t.config.display().to_string());
        out["model_type"] = json!(t.model.model_type);
        out["gpus"] = json!(t.gpus);
        out["global_batch_size"] = json!(r.global_batch_size());
        out["steps_per_epoch"] = json!(r.table.steps_per_epoch);
    }
    out
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
