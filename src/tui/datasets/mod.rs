//! The Datasets tab (tab 2): the dataset configs of the workspace (and directories added by
//! hand), each scanned in the background the way diffusion-pipe will read it: counts, problems,
//! size buckets, steps per epoch, caches; a media browser with the caption beside each file
//! (editable) and an image preview.
//!
//! Keys only change state and return commands; the runtime (`run`) scans, reads and writes.

pub mod preview;
pub mod run;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Command, Level, State, Tab};
use super::config::editor::Editor;
use crate::datasets::ScanControl;
use crate::datasets::report::DatasetReport;

/// An immutable value shared with the runtime: equal when it is the same object.
#[derive(Debug)]
pub struct Same<T>(pub Arc<T>);

impl<T> Clone for Same<T> {
    fn clone(&self) -> Self {
        Same(self.0.clone())
    }
}

impl<T> PartialEq for Same<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> std::ops::Deref for Same<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    /// A dataset config (named by training configs of the workspace, or found there).
    Config(PathBuf),
    /// A directory added by hand (`a`): diffusion-pipe's defaults, no resolutions.
    Directory(PathBuf),
}

impl SourceKey {
    pub fn path(&self) -> &Path {
        match self {
            SourceKey::Config(p) | SourceKey::Directory(p) => p,
        }
    }
}

/// A dataset found by the runtime: where it is and which training configs name it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub key: SourceKey,
    pub training: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub key: SourceKey,
    /// Training configs that name this dataset config; `training_sel` picks the one whose
    /// batch sizes give the steps per epoch (None: no training config).
    pub training: Vec<PathBuf>,
    pub training_sel: Option<usize>,
    pub report: Option<Same<DatasetReport>>,
    /// A scan under way (progress, cancel).
    pub scan: Option<Same<ScanControl>>,
    /// Why the last scan could not run (unreadable config, cancelled...).
    pub error: Option<String>,
    pub scanned_at: Option<std::time::SystemTime>,
    /// What the report was made from (`run::changed` compares it).
    pub fingerprint: run::Fingerprint,
}

impl Source {
    fn new(spec: SourceSpec) -> Self {
        let training_sel = (!spec.training.is_empty()).then_some(0);
        Source {
            key: spec.key,
            training: spec.training,
            training_sel,
            report: None,
            scan: None,
            error: None,
            scanned_at: None,
            fingerprint: Vec::new(),
        }
    }

    pub fn training_config(&self) -> Option<&PathBuf> {
        self.training.get(self.training_sel?)
    }

    pub fn name(&self) -> String {
        let p = self.key.path();
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    }
}

/// What the tab shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum View {
    #[default]
    List,
    /// One `[[directory]]` of the selected dataset: buckets and problems.
    Directory { dir: usize, problem: usize },
    /// Media of a directory (all, or the files of one problem) with captions and a preview.
    Browser(Box<Browser>),
    /// The caches of the selected dataset's directories.
    Cache { row: usize },
}

/// The media browser.
#[derive(Debug, Clone, PartialEq)]
pub struct Browser {
    pub dir: usize,
    /// The directory on disk.
    pub path: PathBuf,
    /// File names shown (all media, or those of one problem).
    pub files: Vec<String>,
    /// What the list is (e.g. "all media", "missing_caption").
    pub title: String,
    pub selected: usize,
    /// The caption of the selected file as on disk (None: no caption file).
    pub caption: Option<CaptionText>,
    /// Editing the caption.
    pub edit: Option<Editor>,
    /// Esc with unsaved caption edits: asking save / discard.
    pub confirm_discard: bool,
    pub show_preview: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaptionText {
    pub path: PathBuf,
    /// Err: why it cannot be shown (too big, binary, unreadable).
    pub text: Result<String, String>,
    /// Where it comes from when not a .txt beside the file (captions.json).
    pub from_json: bool,
    /// The caption file exists (else `text` is empty and a save creates it).
    pub exists: bool,
}

impl Browser {
    pub fn file(&self) -> Option<PathBuf> {
        self.files.get(self.selected).map(|n| self.path.join(n))
    }
}

/// Confirmations the tab asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    DeleteCache {
        dir: PathBuf,
        name: String,
        bytes: u64,
    },
    /// Typing a directory to add.
    AddDirectory(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetsState {
    pub sources: Vec<Source>,
    pub loaded: bool,
    pub selected: usize,
    pub view: View,
    pub ask: Option<Ask>,
    /// GPU count for steps per epoch (None: the GPUs detected, else 1).
    pub gpus: Option<u64>,
    /// The preview of the browser's current file.
    pub preview: Option<preview::PreviewState>,
    /// Ctrl-C was pressed once with an unsaved caption: the next one quits without saving.
    pub quit_asked: bool,
}

impl DatasetsState {
    pub fn current(&self) -> Option<&Source> {
        self.sources.get(self.selected)
    }

    fn current_mut(&mut self) -> Option<&mut Source> {
        self.sources.get_mut(self.selected)
    }

    pub fn report(&self) -> Option<&DatasetReport> {
        self.current()?.report.as_deref()
    }

    /// GPU count used for the steps per epoch.
    pub fn gpu_count(&self, detected: Option<usize>) -> u64 {
        self.gpus
            .unwrap_or_else(|| detected.map_or(1, |n| n.max(1) as u64))
    }
}

/// Requests for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetsCmd {
    /// Find the workspace's datasets (from the Config tab's file list and added directories).
    Discover,
    /// Scan a source (in the background); `rescan` ignores the scan cache.
    Scan {
        key: SourceKey,
        training: Option<PathBuf>,
        gpus: u64,
        rescan: bool,
    },
    /// Read the caption of a browsed file.
    LoadCaption {
        dir: PathBuf,
        file: String,
    },
    SaveCaption {
        path: PathBuf,
        text: String,
        expected: Option<String>,
    },
    DeleteCache {
        dir: PathBuf,
        name: String,
    },
    /// Decode an image for the preview.
    Preview {
        path: PathBuf,
    },
    AddDirectory(PathBuf),
    RemoveDirectory(PathBuf),
}

/// Results from the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetsEvent {
    Sources(Vec<SourceSpec>),
    ScanStarted {
        key: SourceKey,
        control: Same<ScanControl>,
    },
    Scanned {
        key: SourceKey,
        result: Result<Same<DatasetReport>, String>,
        fingerprint: run::Fingerprint,
    },
    Caption(CaptionText),
    /// The path and the text written.
    CaptionSaved(Result<(PathBuf, String), String>),
    CacheDeleted(Result<(PathBuf, String, u64), String>),
    Preview(preview::PreviewState),
    Error(String),
}

fn cmd(c: DatasetsCmd) -> Command {
    Command::Datasets(c)
}

fn scan_cmd(s: &State, i: usize, rescan: bool) -> Option<Command> {
    let src = s.datasets.sources.get(i)?;
    Some(cmd(DatasetsCmd::Scan {
        key: src.key.clone(),
        training: src.training_config().cloned(),
        gpus: s.datasets.gpu_count(detected_gpus(s)),
        rescan,
    }))
}

/// GPUs NVML sees (None: no NVML).
pub fn detected_gpus(s: &State) -> Option<usize> {
    s.env
        .gpu
        .as_ref()
        .and_then(|g| g.snapshot.as_ref())
        .and_then(|g| g.names())
        .map(|n| n.len())
}

/// Entering the tab: find the datasets the first time.
pub fn entered(s: &mut State) -> Vec<Command> {
    if s.datasets.loaded {
        return vec![];
    }
    vec![cmd(DatasetsCmd::Discover)]
}

pub fn event(s: &mut State, e: DatasetsEvent) -> Vec<Command> {
    let d = &mut s.datasets;
    match e {
        DatasetsEvent::Sources(specs) => {
            let keep = d.current().map(|c| c.key.clone());
            let mut old: Vec<Source> = std::mem::take(&mut d.sources);
            d.sources = specs
                .into_iter()
                .map(|spec| match old.iter().position(|o| o.key == spec.key) {
                    Some(i) => {
                        let mut o = old.swap_remove(i);
                        if o.training != spec.training {
                            o.training_sel = (!spec.training.is_empty()).then_some(0);
                            o.training = spec.training;
                        }
                        o
                    }
                    None => Source::new(spec),
                })
                .collect();
            d.selected = keep
                .and_then(|k| d.sources.iter().position(|s| s.key == k))
                .unwrap_or(0);
            d.loaded = true;
            clamp_view(d);
            // Scan what has not been scanned: cached scans make this cheap after the first time.
            let todo: Vec<usize> = (0..d.sources.len())
                .filter(|&i| d.sources[i].report.is_none() && d.sources[i].scan.is_none())
                .collect();
            todo.into_iter()
                .filter_map(|i| scan_cmd(s, i, false))
                .collect()
        }
        DatasetsEvent::ScanStarted { key, control } => {
            if let Some(src) = d.sources.iter_mut().find(|x| x.key == key) {
                src.scan = Some(control);
            }
            vec![]
        }
        DatasetsEvent::Scanned {
            key,
            result,
            fingerprint,
        } => {
            if let Some(src) = d.sources.iter_mut().find(|x| x.key == key) {
                src.scan = None;
                src.fingerprint = fingerprint;
                match result {
                    Ok(r) => {
                        src.report = Some(r);
                        src.error = None;
                        src.scanned_at = Some(std::time::SystemTime::now());
                    }
                    Err(e) => src.error = Some(e),
                }
            }
            clamp_view(d);
            vec![]
        }
        DatasetsEvent::Caption(c) => {
            if let View::Browser(b) = &mut d.view
                && b.files
                    .get(b.selected)
                    .is_some_and(|f| caption_matches(&b.path, f, &c.path))
            {
                b.caption = Some(c);
            }
            vec![]
        }
        DatasetsEvent::CaptionSaved(r) => {
            match r {
                Ok((p, saved)) => {
                    let mut note = "";
                    if let View::Browser(b) = &mut d.view
                        && b.caption.as_ref().is_some_and(|c| c.path == p)
                    {
                        b.caption = Some(CaptionText {
                            path: p.clone(),
                            text: Ok(saved.clone()),
                            from_json: false,
                            exists: true,
                        });
                        b.confirm_discard = false;
                        // Keys typed after Ctrl-S and before this answer stay in the editor.
                        if b.edit.as_ref().is_some_and(|e| e.text() == saved) {
                            b.edit = None;
                        } else if b.edit.is_some() {
                            note = " (newer typing not saved yet)";
                        }
                    }
                    d.quit_asked = false;
                    s.status = Some((Level::Info, format!("saved {}{note}", p.display())));
                }
                Err(e) => s.status = Some((Level::Error, e)),
            }
            vec![]
        }
        DatasetsEvent::CacheDeleted(r) => match r {
            Ok((dir, name, bytes)) => {
                s.status = Some((
                    Level::Info,
                    format!(
                        "deleted {} ({})",
                        dir.join("cache").join(&name).display(),
                        crate::units::format_bytes(bytes)
                    ),
                ));
                let i = s.datasets.selected;
                scan_cmd(s, i, false).into_iter().collect()
            }
            Err(e) => {
                s.status = Some((Level::Error, e));
                vec![]
            }
        },
        DatasetsEvent::Preview(p) => {
            if let View::Browser(b) = &d.view
                && b.file().as_deref() == Some(p.path.as_path())
            {
                d.preview = Some(p);
            }
            vec![]
        }
        DatasetsEvent::Error(e) => {
            s.status = Some((Level::Error, e));
            vec![]
        }
    }
}

/// Whether a caption loaded from `caption` is the one of `file` in `dir`: its `.txt`, the
/// directory's captions.json, or for a member of an archive ("archive.tar/member") the archive
/// itself (named when there is no captions.json).
fn caption_matches(dir: &Path, file: &str, caption: &Path) -> bool {
    if let Some((archive, _)) = file.split_once('/') {
        return caption == dir.join("captions.json") || caption == dir.join(archive);
    }
    same_stem_dir(&dir.join(file), caption)
}

fn same_stem_dir(media: &Path, caption: &Path) -> bool {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    media.parent() == caption.parent()
        && (name(media).map(|m| crate::trainer::dataset::files::caption_name(&m)) == name(caption)
            || name(caption).as_deref() == Some("captions.json"))
}

/// Keeps indexes valid after a rescan changed the report.
fn clamp_view(d: &mut DatasetsState) {
    let problems: Vec<usize> = d.report().map_or(vec![], |r| {
        r.directories.iter().map(|x| x.problems.len()).collect()
    });
    match &mut d.view {
        View::Directory { dir, problem } => match problems.get(*dir) {
            None => d.view = View::List,
            Some(n) => *problem = (*problem).min(n.saturating_sub(1)),
        },
        // A caption being edited stays open whatever a rescan found: the browser knows its path.
        View::Browser(b) if b.dir >= problems.len() && b.edit.is_none() => d.view = View::List,
        _ => {}
    }
}

/// Whether the tab takes this key before the global keys (text being typed, Esc to go back).
pub fn wants_key(s: &State, k: &KeyEvent) -> bool {
    if s.tab != Tab::Datasets {
        return false;
    }
    let d = &s.datasets;
    if d.ask.is_some() {
        return true;
    }
    match &d.view {
        View::Browser(b) if b.edit.is_some() || b.confirm_discard => true,
        View::List => false,
        _ => matches!(k.code, KeyCode::Esc | KeyCode::Tab | KeyCode::BackTab),
    }
}

/// A caption edit that is not saved yet.
pub fn unsaved_caption(s: &State) -> bool {
    let View::Browser(b) = &s.datasets.view else {
        return false;
    };
    let Some(ed) = &b.edit else {
        return false;
    };
    let on_disk = b.caption.as_ref().and_then(|c| c.text.clone().ok());
    ed.text() != on_disk.unwrap_or_default()
}

/// Leaving the tab (a key or a click on another tab) with an unsaved caption: stay and say so.
pub fn guard_leave(s: &mut State) -> bool {
    if !unsaved_caption(s) {
        return false;
    }
    s.status = Some((
        Level::Warn,
        "unsaved caption: Ctrl-S saves it, Esc asks whether to discard it".into(),
    ));
    true
}

/// Writes an unsaved caption to the recovery folder (the dashboard ends without asking: SIGHUP,
/// SIGTERM, a fatal error); returns where.
pub fn keep_unsaved(s: &State, state_dir: &Path) -> Option<PathBuf> {
    if !unsaved_caption(s) {
        return None;
    }
    let View::Browser(b) = &s.datasets.view else {
        return None;
    };
    let (ed, c) = (b.edit.as_ref()?, b.caption.as_ref()?);
    let dest = super::config::files::recovery_path(state_dir, &c.path);
    if let Some(dir) = dest.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    crate::atomic::replace_atomic(&dest, ed.text().as_bytes())
        .ok()
        .map(|_| dest)
}

/// Ctrl-C with an unsaved caption: ask (s save, d discard) instead of quitting; a second
/// Ctrl-C quits without saving.
pub fn guard_quit(s: &mut State) -> bool {
    if !unsaved_caption(s) || s.datasets.quit_asked {
        return false;
    }
    s.tab = Tab::Datasets;
    s.datasets.quit_asked = true;
    if let View::Browser(b) = &mut s.datasets.view {
        b.confirm_discard = true;
    }
    s.status = Some((
        Level::Warn,
        "unsaved caption: s save, d discard (Ctrl-C again quits without saving)".into(),
    ));
    true
}

pub fn key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    if let Some(ask) = s.datasets.ask.clone() {
        return ask_key(s, ask, k);
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match s.datasets.view.clone() {
        View::List => list_key(s, k),
        View::Directory { dir, problem } => dir_key(s, dir, problem, k),
        View::Browser(_) => browser_key(s, k, ctrl),
        View::Cache { row } => cache_key(s, row, k),
    }
}

fn ask_key(s: &mut State, ask: Ask, k: KeyEvent) -> Vec<Command> {
    match ask {
        Ask::DeleteCache { dir, name, .. } => {
            s.datasets.ask = None;
            if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                return vec![cmd(DatasetsCmd::DeleteCache { dir, name })];
            }
            s.status = Some((Level::Info, "cache kept".into()));
            vec![]
        }
        Ask::AddDirectory(mut text) => match k.code {
            KeyCode::Esc => {
                s.datasets.ask = None;
                vec![]
            }
            KeyCode::Enter => {
                s.datasets.ask = None;
                let t = text.trim();
                if t.is_empty() {
                    return vec![];
                }
                let p = expand_home(t);
                vec![cmd(DatasetsCmd::AddDirectory(p))]
            }
            KeyCode::Backspace => {
                text.pop();
                s.datasets.ask = Some(Ask::AddDirectory(text));
                vec![]
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                text.push(c);
                s.datasets.ask = Some(Ask::AddDirectory(text));
                vec![]
            }
            _ => vec![],
        },
    }
}

fn expand_home(t: &str) -> PathBuf {
    match (t.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if t == "~" => dirs::home_dir().unwrap_or_else(|| PathBuf::from(t)),
        _ => PathBuf::from(t),
    }
}

fn list_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let detected = detected_gpus(s);
    let d = &mut s.datasets;
    let n = d.sources.len();
    match k.code {
        KeyCode::Up | KeyCode::Char('k') => d.selected = d.selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => {
            d.selected = (d.selected + 1).min(n.saturating_sub(1))
        }
        KeyCode::Home | KeyCode::Char('g') => d.selected = 0,
        KeyCode::End | KeyCode::Char('G') => d.selected = n.saturating_sub(1),
        KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => {
            if d.report().is_some_and(|r| !r.directories.is_empty()) {
                d.view = View::Directory { dir: 0, problem: 0 };
            } else if let Some(src) = d.current() {
                let why = src
                    .error
                    .clone()
                    .unwrap_or_else(|| "not scanned yet".into());
                s.status = Some((Level::Warn, format!("{}: {why}", src.name())));
            }
        }
        KeyCode::Char('r') => {
            return scan_cmd(s, s.datasets.selected, false)
                .into_iter()
                .collect();
        }
        KeyCode::Char('f') => return scan_cmd(s, s.datasets.selected, true).into_iter().collect(),
        KeyCode::Char('x') => cancel(s),
        KeyCode::Char('a') => d.ask = Some(Ask::AddDirectory(String::new())),
        KeyCode::Char('d') => {
            if let Some(SourceKey::Directory(p)) = d.current().map(|c| c.key.clone()) {
                return vec![cmd(DatasetsCmd::RemoveDirectory(p))];
            }
            s.status = Some((
                Level::Info,
                "only directories added with `a` can be removed; dataset configs come from the workspace".into(),
            ));
        }
        KeyCode::Char('t') => {
            if let Some(src) = d.current_mut() {
                let n = src.training.len();
                // None (no training config) is the last choice of the cycle.
                src.training_sel = match src.training_sel {
                    _ if n == 0 => None,
                    None => Some(0),
                    Some(i) if i + 1 < n => Some(i + 1),
                    Some(_) => None,
                };
                return scan_cmd(s, s.datasets.selected, false)
                    .into_iter()
                    .collect();
            }
        }
        KeyCode::Char('+') | KeyCode::Char('-') => {
            let cur = d.gpu_count(detected);
            let next = if k.code == KeyCode::Char('+') {
                (cur * 2).min(64)
            } else {
                (cur / 2).max(1)
            };
            s.datasets.gpus = Some(next);
            return scan_cmd(s, s.datasets.selected, false)
                .into_iter()
                .collect();
        }
        KeyCode::Char('c') if d.report().is_some() => d.view = View::Cache { row: 0 },
        KeyCode::Char('e') => {
            if let Some(SourceKey::Config(p)) = d.current().map(|c| c.key.clone()) {
                return super::app::switch_tab(s, Tab::Config)
                    .into_iter()
                    .chain([Command::Config(super::config::ConfigCmd::Open {
                        path: p,
                        role: super::config::Role::Main,
                    })])
                    .collect();
            }
        }
        _ => {}
    }
    vec![]
}

fn cancel(s: &mut State) {
    if let Some(src) = s.datasets.current()
        && let Some(c) = &src.scan
    {
        c.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        s.status = Some((
            Level::Info,
            format!("cancelling the scan of {}", src.name()),
        ));
    }
}

fn dir_key(s: &mut State, dir: usize, problem: usize, k: KeyEvent) -> Vec<Command> {
    let Some(r) = s.datasets.report() else {
        s.datasets.view = View::List;
        return vec![];
    };
    let ndirs = r.directories.len();
    let Some(d) = r.directories.get(dir) else {
        s.datasets.view = View::List;
        return vec![];
    };
    let nprob = d.problems.len();
    let path = d.planned.path.clone();
    match k.code {
        KeyCode::Esc | KeyCode::Left | KeyCode::Char('h') | KeyCode::Backspace => {
            s.datasets.view = View::List
        }
        KeyCode::Up | KeyCode::Char('k') => {
            s.datasets.view = View::Directory {
                dir,
                problem: problem.saturating_sub(1),
            }
        }
        KeyCode::Down | KeyCode::Char('j') => {
            s.datasets.view = View::Directory {
                dir,
                problem: (problem + 1).min(nprob.saturating_sub(1)),
            }
        }
        KeyCode::Tab | KeyCode::Char(']') => {
            s.datasets.view = View::Directory {
                dir: (dir + 1) % ndirs.max(1),
                problem: 0,
            }
        }
        KeyCode::BackTab | KeyCode::Char('[') => {
            s.datasets.view = View::Directory {
                dir: (dir + ndirs.max(1) - 1) % ndirs.max(1),
                problem: 0,
            }
        }
        KeyCode::Enter => {
            let Some(p) = d.problems.get(problem) else {
                return vec![];
            };
            let files = p.files.clone();
            let title = p.kind.to_string();
            return open_browser(s, dir, path, files, title);
        }
        KeyCode::Char('m') => {
            let files = d
                .scan
                .as_ref()
                .map(|sc| sc.media.iter().map(|m| m.name.clone()).collect())
                .unwrap_or_default();
            return open_browser(s, dir, path, files, "all media".into());
        }
        KeyCode::Char('c') => s.datasets.view = View::Cache { row: 0 },
        KeyCode::Char('r') => {
            return scan_cmd(s, s.datasets.selected, false)
                .into_iter()
                .collect();
        }
        KeyCode::Char('x') => cancel(s),
        _ => {}
    }
    vec![]
}

fn open_browser(
    s: &mut State,
    dir: usize,
    path: Option<PathBuf>,
    files: Vec<String>,
    title: String,
) -> Vec<Command> {
    let Some(path) = path else {
        return vec![];
    };
    // Problems about the directory itself (a subdirectory) name no media to browse.
    if files.is_empty() {
        s.status = Some((Level::Info, "no files to show".into()));
        return vec![];
    }
    s.datasets.view = View::Browser(Box::new(Browser {
        dir,
        path,
        files,
        title,
        selected: 0,
        caption: None,
        edit: None,
        confirm_discard: false,
        show_preview: true,
    }));
    s.datasets.preview = None;
    load_selected(s)
}

/// Commands to show the browser's current file: its caption and its preview.
fn load_selected(s: &mut State) -> Vec<Command> {
    let View::Browser(b) = &mut s.datasets.view else {
        return vec![];
    };
    b.caption = None;
    let Some(file) = b.files.get(b.selected).cloned() else {
        return vec![];
    };
    let mut out = vec![cmd(DatasetsCmd::LoadCaption {
        dir: b.path.clone(),
        file: file.clone(),
    })];
    if b.show_preview {
        out.push(cmd(DatasetsCmd::Preview {
            path: b.path.join(&file),
        }));
    }
    s.datasets.preview = None;
    out
}

fn browser_key(s: &mut State, k: KeyEvent, ctrl: bool) -> Vec<Command> {
    let View::Browser(b) = &mut s.datasets.view else {
        return vec![];
    };
    if b.confirm_discard {
        match k.code {
            KeyCode::Char('s') => return save_caption(s),
            KeyCode::Char('d') => {
                b.edit = None;
                b.confirm_discard = false;
                s.datasets.quit_asked = false;
                s.status = Some((Level::Info, "caption edit discarded".into()));
            }
            _ => b.confirm_discard = false,
        }
        return vec![];
    }
    if let Some(ed) = b.edit.as_mut() {
        if ctrl && k.code == KeyCode::Char('s') {
            return save_caption(s);
        }
        if k.code == KeyCode::Esc {
            let on_disk = b
                .caption
                .as_ref()
                .and_then(|c| c.text.clone().ok())
                .unwrap_or_default();
            if ed.text() == on_disk {
                b.edit = None;
            } else {
                b.confirm_discard = true;
            }
            return vec![];
        }
        ed.textarea().input(k);
        return vec![];
    }
    let n = b.files.len();
    // The usual list keys, and p/n for previous/next file.
    let code = match k.code {
        KeyCode::Char('p') => KeyCode::Up,
        KeyCode::Char('n') => KeyCode::Down,
        c => c,
    };
    if let Some(i) = crate::tui::keys::list_move(b.selected, n, code) {
        b.selected = i;
        return load_selected(s);
    }
    match k.code {
        KeyCode::Esc | KeyCode::Backspace | KeyCode::Char('h') | KeyCode::Left => {
            let dir = b.dir;
            s.datasets.view = View::Directory { dir, problem: 0 };
            s.datasets.preview = None;
            return vec![];
        }
        KeyCode::Char('v') => {
            b.show_preview = !b.show_preview;
            if !b.show_preview {
                s.datasets.preview = None;
                return vec![];
            }
        }
        KeyCode::Char('e') | KeyCode::Enter => {
            match &b.caption {
                Some(c) if c.from_json => {
                    s.status = Some((
                        Level::Warn,
                        "this caption comes from captions.json: edit that file".into(),
                    ));
                }
                Some(CaptionText { text: Err(e), .. }) => {
                    s.status = Some((Level::Warn, format!("cannot edit the caption: {e}")));
                }
                // A missing caption file is created by the save.
                Some(CaptionText { text: Ok(t), .. }) => b.edit = Some(caption_editor(t)),
                None => s.status = Some((Level::Info, "the caption is still loading".into())),
            }
            return vec![];
        }
        _ => return vec![],
    }
    load_selected(s)
}

/// Captions are long lines: wrapped at words.
fn caption_editor(text: &str) -> Editor {
    let mut ed = Editor::from_text(text);
    ed.textarea()
        .set_wrap_mode(ratatui_textarea::WrapMode::Word);
    ed
}

fn save_caption(s: &mut State) -> Vec<Command> {
    let View::Browser(b) = &mut s.datasets.view else {
        return vec![];
    };
    let (Some(ed), Some(c)) = (b.edit.as_ref(), b.caption.as_ref()) else {
        return vec![];
    };
    b.confirm_discard = false;
    vec![cmd(DatasetsCmd::SaveCaption {
        path: c.path.clone(),
        text: ed.text(),
        expected: c.text.clone().ok().filter(|_| c.exists),
    })]
}

/// Rows of the cache view: (directory, cache entry).
pub fn cache_rows(r: &DatasetReport) -> Vec<(PathBuf, &crate::datasets::CacheInfo)> {
    r.directories
        .iter()
        .filter_map(|d| Some((d.planned.path.clone()?, d.scan.as_ref().ok()?)))
        .flat_map(|(p, sc)| sc.caches.iter().map(move |c| (p.clone(), c)))
        .collect()
}

fn cache_key(s: &mut State, row: usize, k: KeyEvent) -> Vec<Command> {
    let Some(r) = s.datasets.report() else {
        s.datasets.view = View::List;
        return vec![];
    };
    let rows = cache_rows(r);
    let n = rows.len();
    match k.code {
        KeyCode::Esc | KeyCode::Left | KeyCode::Char('h') => s.datasets.view = View::List,
        KeyCode::Up | KeyCode::Char('k') => {
            s.datasets.view = View::Cache {
                row: row.saturating_sub(1),
            }
        }
        KeyCode::Down | KeyCode::Char('j') => {
            s.datasets.view = View::Cache {
                row: (row + 1).min(n.saturating_sub(1)),
            }
        }
        KeyCode::Char('D') | KeyCode::Delete => {
            if let Some((dir, c)) = rows.get(row) {
                s.datasets.ask = Some(Ask::DeleteCache {
                    dir: dir.clone(),
                    name: c.name.clone(),
                    bytes: c.bytes,
                });
            }
        }
        _ => {}
    }
    vec![]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_caption_is_matched_to_the_file_it_belongs_to() {
        let d = Path::new("/data/ds");
        assert!(caption_matches(d, "cat.png", Path::new("/data/ds/cat.txt")));
        assert!(caption_matches(
            d,
            "cat.png",
            Path::new("/data/ds/captions.json")
        ));
        assert!(!caption_matches(
            d,
            "cat.png",
            Path::new("/data/ds/dog.txt")
        ));
        assert!(!caption_matches(
            d,
            "cat.png",
            Path::new("/elsewhere/cat.txt")
        ));
        // Members of an archive: captions.json, or the archive named when there is none.
        let m = "shard.tar/imgs/red.png";
        assert!(caption_matches(d, m, Path::new("/data/ds/captions.json")));
        assert!(caption_matches(d, m, Path::new("/data/ds/shard.tar")));
        assert!(!caption_matches(d, m, Path::new("/data/ds/red.txt")));
        assert!(!caption_matches(d, m, Path::new("/data/ds/other.tar")));
    }
}
