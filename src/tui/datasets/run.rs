//! The Datasets tab's I/O, run by the dashboard's runtime: finding the workspace's datasets,
//! scans on blocking threads (progress and cancel through `ScanControl`), captions, caches and
//! preview decoding. Results come back as `DatasetsEvent`s through `send`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CaptionText, DatasetsCmd, DatasetsEvent, Same, SourceKey, SourceSpec};
use crate::datasets::report::{self, Training};
use crate::datasets::{ScanCache, ScanControl};
use crate::trainer::lint;
use crate::tui::config::{FileEntry, Kind};

/// Captions bigger than this are not loaded into the editor (a caption is a line or a few).
const CAPTION_MAX: u64 = 1 << 20;

pub type Send = Arc<dyn Fn(DatasetsEvent) + std::marker::Send + Sync>;

fn added_file(state_dir: &Path) -> PathBuf {
    state_dir.join("datasets.json")
}

/// Directories added by hand, persisted across runs.
pub fn load_added(state_dir: &Path) -> Vec<PathBuf> {
    std::fs::read(added_file(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<PathBuf>>(&b).ok())
        .unwrap_or_default()
}

fn store_added(state_dir: &Path, dirs: &[PathBuf]) -> Result<(), String> {
    let _ = std::fs::create_dir_all(state_dir);
    let bytes = serde_json::to_vec_pretty(dirs).map_err(|e| e.to_string())?;
    crate::atomic::replace_atomic(&added_file(state_dir), &bytes)
        .map_err(|e| format!("cannot remember the directory: {e}"))
}

/// The datasets of the workspace: the dataset configs the training configs name (with those
/// training configs), the dataset configs found on their own, and the directories added.
pub fn discover(files: &[FileEntry], base: &Path, added: &[PathBuf]) -> Vec<SourceSpec> {
    let mut specs: Vec<SourceSpec> = Vec::new();
    let mut add = |key: SourceKey, training: Option<PathBuf>| {
        let spec = match specs.iter_mut().find(|s| s.key == key) {
            Some(s) => s,
            None => {
                specs.push(SourceSpec {
                    key,
                    training: vec![],
                });
                specs.last_mut().expect("just pushed")
            }
        };
        if let Some(t) = training
            && !spec.training.contains(&t)
        {
            spec.training.push(t);
        }
    };
    for f in files {
        match f.kind {
            Kind::Main => {
                let Ok(text) = crate::cli::lint::read_config(&f.path) else {
                    continue;
                };
                if let Some(ds) = crate::trainer::config::read_main(&text).dataset {
                    let p = lint::resolve(base, &ds);
                    let p = std::path::absolute(&p).unwrap_or(p);
                    add(SourceKey::Config(p), Some(f.path.clone()));
                }
            }
            Kind::Dataset => add(SourceKey::Config(f.path.clone()), None),
            Kind::Unknown => {}
        }
    }
    for d in added {
        add(SourceKey::Directory(d.clone()), None);
    }
    specs
}

/// Scans one source on a blocking thread; the control is handed back at once for progress.
pub fn scan(
    key: SourceKey,
    training: Option<PathBuf>,
    gpus: u64,
    rescan: bool,
    base: PathBuf,
    send: Send,
) {
    let control = Arc::new(ScanControl::new());
    send(DatasetsEvent::ScanStarted {
        key: key.clone(),
        control: Same(control.clone()),
    });
    std::thread::Builder::new()
        .name("dataset-scan".into())
        .spawn(move || {
            let (result, fingerprint) =
                match scan_blocking(&key, training.as_deref(), gpus, rescan, &base, &control) {
                    Ok((r, f)) => (Ok(Same(Arc::new(r))), f),
                    Err(e) => (Err(e), Vec::new()),
                };
            send(DatasetsEvent::Scanned {
                key,
                result,
                fingerprint,
            });
        })
        .map_err(|e| tracing::error!("cannot start a scan thread: {e}"))
        .ok();
}

fn scan_blocking(
    key: &SourceKey,
    training: Option<&Path>,
    gpus: u64,
    rescan: bool,
    base: &Path,
    control: &Arc<ScanControl>,
) -> Result<(report::DatasetReport, Fingerprint), String> {
    let t = report::target(base, key.path(), training)?;
    // Taken before the scan: a change while it runs triggers another one.
    let fingerprint = fingerprint(&t.plan, t.training.as_ref().map(|(p, _)| p.as_path()));
    let training = match &t.training {
        Some((p, text)) => Training::read(p, text, gpus, base),
        None => None,
    };
    let cache = Some(ScanCache::open_default().reuse(!rescan));
    let scans = report::scan_all(&t.plan, cache.as_ref(), control);
    if control.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err("scan cancelled (r scans again)".into());
    }
    Ok((report::assemble(&t.plan, scans, training), fingerprint))
}

/// `captions.json` bigger than this is not read for the browser (diffusion-pipe's are a few MB).
const CAPTIONS_JSON_MAX: u64 = 64 << 20;

/// The caption diffusion-pipe would use for `dir/file`: while `captions.json` exists it is the
/// only source (diffusion-pipe then ignores every .txt); else `stem.txt` (named as
/// diffusion-pipe names it: `files::caption_name`). Symlinked or special caption files are shown
/// as not editable here.
///
/// A member of a `.tar` archive ("archive.tar/dir/a.png": top-level names hold no '/') is
/// captioned from captions.json by its path in the archive, never from a .txt.
pub fn load_caption(dir: &Path, file: &str) -> CaptionText {
    let member = file.split_once('/');
    let key = member.map_or(file, |(_, m)| m);
    let json = dir.join("captions.json");
    if let Ok(m) = std::fs::metadata(&json) {
        let text = if !m.is_file() {
            Err("captions.json is not a regular file".to_string())
        } else if m.len() > CAPTIONS_JSON_MAX {
            Err(format!(
                "captions.json is {}: not read here",
                crate::units::format_bytes(m.len())
            ))
        } else {
            match std::fs::read(&json)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string()))
            {
                Err(e) => Err(format!("captions.json does not parse ({e}): diffusion-pipe stops on it")),
                Ok(v) => match v.get(key) {
                    None | Some(serde_json::Value::Null) => Err(
                        "no entry in captions.json (diffusion-pipe ignores .txt files while it exists)"
                            .to_string(),
                    ),
                    Some(serde_json::Value::Array(a)) => Ok(a
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")),
                    Some(other) => Ok(other.to_string()),
                },
            }
        };
        return CaptionText {
            path: json,
            text,
            from_json: true,
            exists: true,
        };
    }
    if let Some((archive, member)) = member {
        return CaptionText {
            path: dir.join(archive),
            text: Err(format!(
                "inside {archive}: diffusion-pipe takes a member's caption only from captions.json \
                 (key \"{member}\"), which this directory does not have"
            )),
            from_json: false,
            exists: false,
        };
    }
    let path = dir.join(crate::trainer::dataset::files::caption_name(file));
    let text = match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CaptionText {
                path,
                text: Ok(String::new()),
                from_json: false,
                exists: false,
            };
        }
        Err(e) => Err(format!("cannot read: {e}")),
        Ok(m) if m.file_type().is_symlink() => {
            Err("a symlink: edit the file it points to, not through the dataset".into())
        }
        Ok(m) if !m.is_file() => Err("not a regular file".into()),
        Ok(m) if m.len() > CAPTION_MAX => Err(format!(
            "{} is too big to be a caption",
            crate::units::format_bytes(m.len())
        )),
        Ok(_) => match std::fs::read(&path) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(b) if b.contains(&0) => Err("binary content".into()),
            Ok(b) => String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()),
        },
    };
    CaptionText {
        path,
        text,
        from_json: false,
        exists: true,
    }
}

/// Saves a caption atomically (no backup file in the dataset); refuses when the file changed
/// since it was read, when it cannot be read to check, or when it became a symlink.
pub fn save_caption(
    path: &Path,
    text: &str,
    expected: Option<&str>,
) -> Result<(PathBuf, String), String> {
    let now = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot check {}: {e}", path.display())),
        Ok(m) if !m.is_file() => {
            return Err(format!(
                "{} is not a regular file now: not written",
                path.display()
            ));
        }
        Ok(_) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot check {}: {e}", path.display()))?,
        ),
    };
    let changed = match (expected, now.as_deref()) {
        (Some(exp), Some(now)) => exp != now,
        // Created by someone else since it was found missing.
        (None, Some(_)) => true,
        // Deleted since it was read: writing it again is what the user asked for.
        (_, None) => false,
    };
    if changed {
        return Err(format!(
            "{} changed on disk since it was read: not overwritten (Esc, then open the file again)",
            path.display()
        ));
    }
    crate::atomic::replace_atomic(path, text.as_bytes())
        .map_err(|e| format!("cannot save {}: {e}", path.display()))?;
    Ok((path.to_path_buf(), text.to_string()))
}

/// Runs a command that answers at once (small files), or starts a background one.
pub fn run(c: DatasetsCmd, files: &[FileEntry], base: &Path, state_dir: &Path, send: Send) {
    match c {
        DatasetsCmd::Discover => {
            let added = load_added(state_dir);
            send(DatasetsEvent::Sources(discover(files, base, &added)));
        }
        DatasetsCmd::Scan {
            key,
            training,
            gpus,
            rescan,
        } => scan(key, training, gpus, rescan, base.to_path_buf(), send),
        // Off the UI thread: a caption on a slow or hung filesystem must not freeze the screen.
        DatasetsCmd::LoadCaption { dir, file } => {
            std::thread::spawn(move || send(DatasetsEvent::Caption(load_caption(&dir, &file))));
        }
        DatasetsCmd::SaveCaption {
            path,
            text,
            expected,
        } => {
            std::thread::spawn(move || {
                send(DatasetsEvent::CaptionSaved(save_caption(
                    &path,
                    &text,
                    expected.as_deref(),
                )))
            });
        }
        DatasetsCmd::DeleteCache { dir, name } => {
            std::thread::spawn(move || {
                let r = crate::datasets::delete_cache(&dir, &name)
                    .map(|bytes| (dir.clone(), name.clone(), bytes))
                    .map_err(|e| {
                        format!(
                            "cannot delete {}: {e}",
                            dir.join("cache").join(&name).display()
                        )
                    });
                send(DatasetsEvent::CacheDeleted(r));
            });
        }
        DatasetsCmd::Preview { path } => {
            std::thread::spawn(move || send(DatasetsEvent::Preview(super::preview::decode(&path))));
        }
        DatasetsCmd::AddDirectory(p) => {
            let p = std::path::absolute(&p).unwrap_or(p);
            if !p.is_dir() {
                send(DatasetsEvent::Error(format!(
                    "{} is not a directory",
                    p.display()
                )));
                return;
            }
            let mut added = load_added(state_dir);
            if !added.contains(&p) {
                added.push(p);
            }
            if let Err(e) = store_added(state_dir, &added) {
                send(DatasetsEvent::Error(e));
            }
            send(DatasetsEvent::Sources(discover(files, base, &added)));
        }
        DatasetsCmd::RemoveDirectory(p) => {
            let mut added = load_added(state_dir);
            added.retain(|a| a != &p);
            if let Err(e) = store_added(state_dir, &added) {
                send(DatasetsEvent::Error(e));
            }
            send(DatasetsEvent::Sources(discover(files, base, &added)));
        }
    }
}

/// Modification times of what a report was made from: the configs, each directory (files
/// added, removed or replaced by an atomic save) and its cache directory.
pub fn fingerprint(plan: &report::Plan, training: Option<&Path>) -> Fingerprint {
    let mut paths: Vec<PathBuf> = plan.config.iter().cloned().collect();
    paths.extend(training.map(Path::to_path_buf));
    for d in &plan.directories {
        if let Some(p) = &d.path {
            paths.push(p.clone());
            paths.push(p.join("cache"));
            paths.push(p.join("captions.json"));
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, t)
        })
        .collect()
}

pub type Fingerprint = Vec<(PathBuf, Option<std::time::SystemTime>)>;

/// The directories of the dataset on screen that inotify watches (its `[[directory]]` paths
/// and their `cache/`).
pub fn watched_dirs(s: &crate::tui::app::State) -> Vec<PathBuf> {
    s.datasets.current().map_or_else(Vec::new, |src| {
        src.fingerprint
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.is_dir())
            .cloned()
            .collect()
    })
}

/// The dashboard's watch tick: watches the dataset on screen, and rescans it once a tick has
/// passed with no new event after a change (a captioning tool rewriting files one after
/// another gets one rescan, not one per file), or when the modification-time poll sees a change.
/// `pending`: a change seen and not rescanned for yet.
pub fn watch_tick(
    s: &crate::tui::app::State,
    watcher: &mut super::watch::Watcher,
    pending: &mut bool,
) -> Option<DatasetsCmd> {
    if watcher.watch(&watched_dirs(s)) {
        *pending = false;
    }
    if watcher.poll() {
        *pending = true;
        return None;
    }
    let cmd = changed(s, *pending);
    if cmd.is_some() {
        *pending = false;
    }
    cmd
}

/// A rescan of the dataset on screen when what it was made from changed since (`force`: a
/// change inotify saw, which modification times may not show).
pub fn changed(s: &crate::tui::app::State, force: bool) -> Option<DatasetsCmd> {
    let src = s.datasets.current()?;
    if src.scan.is_some() || src.report.is_none() || src.fingerprint.is_empty() {
        return None;
    }
    let now: Fingerprint = src
        .fingerprint
        .iter()
        .map(|(p, _)| {
            (
                p.clone(),
                std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            )
        })
        .collect();
    if now == src.fingerprint && !force {
        return None;
    }
    tracing::debug!(dataset = %src.key.path().display(), "files changed: rescanning");
    Some(DatasetsCmd::Scan {
        key: src.key.clone(),
        training: src.training_config().cloned(),
        gpus: s.datasets.gpu_count(super::detected_gpus(s)),
        rescan: false,
    })
}
