//! Hugging Face downloads in the dashboard: the queue as last polled, the window that shows it
//! (F6, from every tab) with the hub cache as its second page, and the runtime's side that owns
//! the `Downloader`. Downloads queued from the Config tab's hub dialog carry a [`WriteBack`]:
//! when one is done its local path goes into the config key it was asked for.
//!
//! As elsewhere, keys and events only change state and return commands; `Runtime` does the I/O.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use super::app::{Command, Level, Overlay, State};
use super::config::hub::{self as dialog, WriteBack};
use super::config::pathkey::{self, PathLoc, Seg};
use super::config::{ConfigOverlay, files};
use crate::hub::{
    self, CacheKey, CachedRepo, Downloader, HubConfig, HubError, HubSource, JobId, JobState,
    JobStatus, RepoListing, Request,
};
use crate::units::format_bytes;

/// The two pages of the downloads window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    #[default]
    Downloads,
    Cache,
}

/// The downloads window's own state (kept while it is closed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    pub page: Page,
    pub sel: usize,
    /// Jobs whose files are shown.
    pub expanded: Vec<JobId>,
    pub cache_sel: usize,
    /// A repo (its type and id) whose deletion from the cache waits for y.
    pub confirm: Option<CacheKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubState {
    /// Known-good sources (settings.hub_sources: the configured ones, then the built-in ones).
    pub sources: Vec<HubSource>,
    pub cache_dir: PathBuf,
    pub offline: bool,
    /// The queue as last polled, oldest first.
    pub jobs: Vec<JobStatus>,
    /// Where each queued job's local path goes once it is done.
    pub writes: Vec<(JobId, WriteBack)>,
    /// The cache view (None: not scanned yet).
    pub cache: Option<Result<Vec<CachedRepo>, String>>,
    pub scanning: bool,
    pub view: View,
    /// `q` was pressed once with downloads running (the next `q` quits).
    pub quit_asked: bool,
}

impl Default for HubState {
    fn default() -> Self {
        HubState {
            sources: hub::default_sources(),
            cache_dir: PathBuf::new(),
            offline: false,
            jobs: Vec::new(),
            writes: Vec::new(),
            cache: None,
            scanning: false,
            view: View::default(),
            quit_asked: false,
        }
    }
}

/// `q` with downloads queued or running: say what quitting does to them and wait for a second
/// `q` (any other key in between asks again). False: nothing to ask, quit.
pub fn guard_quit(s: &mut State) -> bool {
    let n = s.hub.jobs.iter().filter(|j| !j.state.finished()).count();
    if n == 0 || s.hub.quit_asked {
        return false;
    }
    s.hub.quit_asked = true;
    s.status = Some((
        Level::Warn,
        format!(
            "{n} download{} running: q again quits and stops {} (what was fetched is kept; the next try resumes), F6 shows {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" },
            if n == 1 { "it" } else { "them" },
        ),
    ));
    true
}

impl HubState {
    /// A job is queued or running: the runtime polls the queue.
    pub fn active(&self) -> bool {
        self.jobs.iter().any(|j| !j.state.finished())
    }

    /// The status line's summary while downloads run, e.g.
    /// "⇣ 2 downloads 1.2 GiB/6.0 GiB 85 MiB/s ETA 1m".
    pub fn summary(&self) -> Option<String> {
        let active: Vec<&JobStatus> = self.jobs.iter().filter(|j| !j.state.finished()).collect();
        if active.is_empty() {
            return None;
        }
        let n = active.len();
        let (done, total) = active
            .iter()
            .fold((0, 0), |(d, t), j| (d + j.done, t + j.total));
        let rate: f64 = active.iter().map(|j| j.rate).sum();
        let mut s = format!("⇣ {n} download{}", if n == 1 { "" } else { "s" });
        if total > 0 {
            s.push_str(&format!(" {}/{}", format_bytes(done), format_bytes(total)));
        }
        if rate > 0.0 {
            s.push_str(&format!(" {}/s", format_bytes(rate as u64)));
            // The queue runs one job at a time: what is left over the current rate.
            s.push_str(&format!(
                " ETA {}",
                eta(total.saturating_sub(done) as f64 / rate)
            ));
        }
        Some(s)
    }

    fn selected_job(&self) -> Option<&JobStatus> {
        self.jobs
            .get(self.view.sel.min(self.jobs.len().saturating_sub(1)))
    }

    fn selected_repo(&self) -> Option<&CachedRepo> {
        let list = self.cache.as_ref()?.as_ref().ok()?;
        list.get(self.view.cache_sel.min(list.len().saturating_sub(1)))
    }
}

/// "41s", "3m", "1h02m": short, for the status line and the list.
pub fn eta(secs: f64) -> String {
    let s = if secs.is_finite() {
        secs.max(0.0).round() as u64
    } else {
        0
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s.div_ceil(60)),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Requests for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum HubCmd {
    /// List a repo's files for the hub dialog.
    List {
        repo: String,
        revision: String,
    },
    Download {
        request: Request,
        write: Option<WriteBack>,
    },
    Cancel(JobId),
    Retry(JobId),
    ClearFinished,
    ScanCache,
    /// Delete a repo from the hub cache (asked for and confirmed).
    Delete(CacheKey),
    /// Write a finished download's path into a config on disk (it is not open).
    Write {
        config: PathBuf,
        loc: PathLoc,
        value: PathBuf,
    },
}

/// Results from the runtime.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Listed {
        repo: String,
        result: Result<RepoListing, HubError>,
    },
    Queued {
        repo: String,
        result: Result<JobId, String>,
        write: Option<WriteBack>,
    },
    Retried {
        old: JobId,
        new: Option<JobId>,
    },
    /// A snapshot of the queue.
    Jobs(Vec<JobStatus>),
    Cache(Result<Vec<CachedRepo>, String>),
    Deleted {
        repo: CacheKey,
        result: Result<u64, String>,
    },
    Written {
        config: PathBuf,
        key: String,
        value: PathBuf,
        result: Result<(), String>,
    },
}

fn cmd(c: HubCmd) -> Command {
    Command::Hub(c)
}

fn info(s: &mut State, m: impl Into<String>) {
    s.status = Some((Level::Info, m.into()));
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// F6: the downloads window (its cache page is scanned again when it opens on it).
pub fn open(s: &mut State) -> Vec<Command> {
    s.overlay = Overlay::Downloads;
    s.hub.view.confirm = None;
    if s.hub.view.page == Page::Cache {
        return scan(s);
    }
    vec![]
}

fn scan(s: &mut State) -> Vec<Command> {
    s.hub.scanning = true;
    vec![cmd(HubCmd::ScanCache)]
}

/// Keys of the downloads window.
pub fn overlay_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let h = &mut s.hub;
    if let Some(repo) = h.view.confirm.take() {
        // A held key must not answer the question; anything but y keeps the repo.
        if k.kind != KeyEventKind::Repeat && k.code == KeyCode::Char('y') {
            info(s, format!("deleting {} from the hub cache…", repo.label()));
            return vec![cmd(HubCmd::Delete(repo))];
        }
        info(s, "nothing was deleted");
        return vec![];
    }
    match k.code {
        KeyCode::Esc | KeyCode::F(6) | KeyCode::Char('q') => {
            s.overlay = Overlay::None;
            return vec![];
        }
        KeyCode::Left | KeyCode::Right | KeyCode::Char('c') => {
            h.view.page = match h.view.page {
                Page::Downloads => Page::Cache,
                Page::Cache => Page::Downloads,
            };
            if h.view.page == Page::Cache {
                return scan(s);
            }
            return vec![];
        }
        _ => {}
    }
    match h.view.page {
        Page::Downloads => downloads_key(s, k),
        Page::Cache => cache_key(s, k),
    }
}

fn downloads_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let h = &mut s.hub;
    if let Some(i) = super::keys::list_move(h.view.sel, h.jobs.len(), k.code) {
        h.view.sel = i;
        return vec![];
    }
    if k.code == KeyCode::Char('C') {
        // What is cleared will never write its path: a failed job's key stays as it is.
        let finished: Vec<JobId> = h
            .jobs
            .iter()
            .filter(|j| j.state.finished())
            .map(|j| j.id)
            .collect();
        h.writes.retain(|(id, _)| !finished.contains(id));
        return vec![cmd(HubCmd::ClearFinished)];
    }
    let Some(j) = h.selected_job() else {
        if matches!(k.code, KeyCode::Char('x' | 'r')) {
            info(
                s,
                "no downloads: F4 on a path key in the Config editor starts one",
            );
        }
        return vec![];
    };
    let (id, state, repo) = (j.id, j.state, j.request.repo.clone());
    match k.code {
        KeyCode::Enter | KeyCode::Tab => {
            if let Some(i) = h.view.expanded.iter().position(|e| *e == id) {
                h.view.expanded.remove(i);
            } else {
                h.view.expanded.push(id);
            }
        }
        KeyCode::Char('x') | KeyCode::Delete => {
            if state.finished() {
                info(s, format!("{repo}: already ended"));
            } else {
                info(
                    s,
                    format!("cancelling {repo}: the partial file stays, r resumes it"),
                );
                return vec![cmd(HubCmd::Cancel(id))];
            }
        }
        KeyCode::Char('r') => {
            if state.finished() {
                return vec![cmd(HubCmd::Retry(id))];
            }
            info(s, format!("{repo} is still running"));
        }
        _ => {}
    }
    vec![]
}

fn cache_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let h = &mut s.hub;
    let n = h
        .cache
        .as_ref()
        .and_then(|c| c.as_ref().ok())
        .map_or(0, Vec::len);
    if let Some(i) = super::keys::list_move(h.view.cache_sel, n, k.code) {
        h.view.cache_sel = i;
        return vec![];
    }
    match k.code {
        KeyCode::Char('r') => return scan(s),
        KeyCode::Char('D') | KeyCode::Delete => {
            let Some(repo) = h.selected_repo().map(CachedRepo::key) else {
                info(s, "nothing in the hub cache to delete");
                return vec![];
            };
            // dpgui downloads models only: a dataset of the same id is not the one downloading.
            if repo.kind == "model"
                && h.jobs
                    .iter()
                    .any(|j| !j.state.finished() && j.request.repo == repo.repo)
            {
                s.status = Some((
                    Level::Warn,
                    format!(
                        "{} is downloading: cancel it first (← downloads, x)",
                        repo.repo
                    ),
                ));
                return vec![];
            }
            h.view.confirm = Some(repo);
        }
        _ => {}
    }
    vec![]
}

/// Results from the runtime.
pub fn event(s: &mut State, e: HubEvent) -> Vec<Command> {
    match e {
        HubEvent::Listed { repo, result } => {
            if let Overlay::Config(o) = &mut s.overlay
                && let ConfigOverlay::Hub(d) = o.as_mut()
            {
                d.listed(&repo, result);
            }
        }
        HubEvent::Queued {
            repo,
            result,
            write,
        } => match result {
            Ok(id) => {
                if let Some(w) = write {
                    s.hub.writes.push((id, w));
                }
                info(
                    s,
                    format!("queued the download of {repo} (F6 shows the downloads)"),
                );
            }
            Err(e) => s.status = Some((Level::Error, format!("cannot download {repo}: {e}"))),
        },
        HubEvent::Retried { old, new } => match new {
            Some(new) => {
                for (id, _) in s.hub.writes.iter_mut().filter(|(id, _)| *id == old) {
                    *id = new;
                }
                info(s, "queued again: it resumes where it stopped");
            }
            None => info(s, "that download is gone or still running"),
        },
        HubEvent::Jobs(jobs) => return jobs_polled(s, jobs),
        HubEvent::Cache(c) => {
            s.hub.scanning = false;
            let n = c.as_ref().map_or(0, Vec::len);
            s.hub.view.cache_sel = s.hub.view.cache_sel.min(n.saturating_sub(1));
            s.hub.cache = Some(c);
        }
        HubEvent::Deleted { repo, result } => {
            let repo = repo.label();
            match result {
                Ok(freed) => info(
                    s,
                    format!(
                        "deleted {repo} from the hub cache ({} freed)",
                        format_bytes(freed)
                    ),
                ),
                Err(e) => s.status = Some((Level::Error, format!("{repo} not deleted: {e}"))),
            }
            return scan(s);
        }
        HubEvent::Written {
            config,
            key,
            value,
            result,
        } => match result {
            Ok(()) => info(
                s,
                format!("{}: {key} = '{}'", file_name(&config), value.display()),
            ),
            Err(e) => {
                s.status = Some((
                    Level::Error,
                    format!(
                        "downloaded to {}, but {} was not changed: {e}",
                        value.display(),
                        file_name(&config)
                    ),
                ))
            }
        },
    }
    vec![]
}

/// A new snapshot of the queue: downloads that have just ended say so, and a finished one's
/// path goes where it was asked for.
fn jobs_polled(s: &mut State, jobs: Vec<JobStatus>) -> Vec<Command> {
    let before: Vec<(JobId, JobState)> = s.hub.jobs.iter().map(|j| (j.id, j.state)).collect();
    let was = |id: JobId| before.iter().find(|(i, _)| *i == id).map(|(_, st)| *st);
    let mut out = Vec::new();
    for j in &jobs {
        let ended_now = j.state.finished() && !was(j.id).is_some_and(JobState::finished);
        if !ended_now {
            continue;
        }
        match (j.state, &j.error) {
            (JobState::Failed, Some(e)) => {
                s.status = Some((
                    Level::Error,
                    format!(
                        "download of {} failed: {e}{}",
                        j.request.repo,
                        if e.resumable() {
                            " (F6, r resumes)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            (JobState::Done, _) => {
                let write = s
                    .hub
                    .writes
                    .iter()
                    .position(|(id, _)| *id == j.id)
                    .map(|i| s.hub.writes.remove(i).1);
                match (write, &j.local_path) {
                    (Some(w), Some(local)) => out.extend(write_back(s, &w, local)),
                    (Some(w), None) => {
                        s.status = Some((
                            Level::Error,
                            format!(
                                "{} downloaded without a local path: {} not changed",
                                j.request.repo,
                                w.loc.name()
                            ),
                        ))
                    }
                    (None, local) => info(
                        s,
                        format!(
                            "downloaded {}{}",
                            j.request.repo,
                            local
                                .as_ref()
                                .map(|p| format!(" to {}", p.display()))
                                .unwrap_or_default()
                        ),
                    ),
                }
            }
            _ => {}
        }
    }
    // Jobs gone from the queue (cleared) will never write.
    s.hub
        .writes
        .retain(|(id, _)| jobs.iter().any(|j| j.id == *id));
    s.hub
        .view
        .expanded
        .retain(|id| jobs.iter().any(|j| j.id == *id));
    s.hub.view.sel = s.hub.view.sel.min(jobs.len().saturating_sub(1));
    s.hub.jobs = jobs;
    out
}

/// Puts `local` into the key: the open buffer when that config is open, else the file.
fn write_back(s: &mut State, w: &WriteBack, local: &Path) -> Vec<Command> {
    let value = local.display().to_string();
    match dialog::write_into_buffer(s, w, &value) {
        Some(Ok(out)) => {
            info(
                s,
                format!(
                    "{} = '{value}' (downloaded; Ctrl-S saves {})",
                    w.loc.name(),
                    file_name(&w.config)
                ),
            );
            out
        }
        Some(Err(e)) => {
            s.status = Some((
                Level::Error,
                format!(
                    "downloaded to {value}, but {} was not set: {e}",
                    w.loc.name()
                ),
            ));
            vec![]
        }
        None => vec![cmd(HubCmd::Write {
            config: w.config.clone(),
            loc: w.loc.clone(),
            value: local.to_path_buf(),
        })],
    }
}

// ---------------------------------------------------------------------------------------------
// The runtime's side

/// Where events from background threads go.
pub type Send = Arc<dyn Fn(HubEvent) + std::marker::Send + Sync>;

/// Sets `loc` in the config file on disk to `value`, comments intact, atomically.
pub fn write_config(config: &Path, loc: &PathLoc, value: &Path) -> Result<(), String> {
    // Plain `table.key` paths go through the hub module's writer; array elements
    // (`text_encoders[0].path`) need the editor's segment walk.
    let plain = loc
        .segs
        .iter()
        .all(|s| matches!(s, Seg::Key(k) if !k.contains('.')));
    if plain {
        return hub::write_path_into_config(config, &loc.name(), value).map_err(|e| e.to_string());
    }
    let v = value
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", value.display()))?;
    let text = files::read_config(config)?;
    let new = pathkey::set_string(&text, loc, v)?;
    files::save_atomic(config, new.as_bytes(), &|_| {})
        .map_err(|e| format!("{}: {e}", config.display()))
}

/// Owns the download queue (started on first use) and the hub settings.
pub struct Runtime {
    cfg: HubConfig,
    downloader: Option<Downloader>,
}

impl Runtime {
    pub fn new(cfg: HubConfig) -> Runtime {
        Runtime {
            cfg,
            downloader: None,
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// The queue now (None before the first download).
    pub fn poll(&self) -> Option<HubEvent> {
        self.downloader.as_ref().map(|d| HubEvent::Jobs(d.jobs()))
    }

    /// Blocks until job `id` has ended or `timeout` has passed; whether it ended (tools and
    /// tests; the dashboard polls instead).
    pub fn wait_ended(&self, id: JobId, timeout: std::time::Duration) -> bool {
        self.downloader
            .as_ref()
            .and_then(|d| d.wait_timeout(id, timeout))
            .is_some_and(|j| j.state.finished())
    }

    fn downloader(&mut self) -> Result<&Downloader, String> {
        if self.downloader.is_none() {
            self.downloader = Some(Downloader::new(self.cfg.clone()).map_err(|e| e.to_string())?);
        }
        Ok(self.downloader.as_ref().expect("set above"))
    }

    /// Does a command: quick ones answer at once (returned, in order), the others (the
    /// network, the cache scan, a delete) on a thread of their own, through `send`.
    pub fn run(&mut self, c: HubCmd, send: &Send) -> Vec<HubEvent> {
        match c {
            HubCmd::List { repo, revision } => {
                let (cfg, send) = (self.cfg.clone(), send.clone());
                spawn("dpgui-hub-list", move || {
                    let result = hub::list_files_blocking(&cfg, &repo, &revision);
                    send(HubEvent::Listed { repo, result });
                });
                vec![]
            }
            HubCmd::Download { request, write } => {
                let repo = request.repo.clone();
                match self.downloader() {
                    Ok(d) => {
                        let id = d.enqueue(request);
                        vec![
                            HubEvent::Queued {
                                repo,
                                result: Ok(id),
                                write,
                            },
                            HubEvent::Jobs(d.jobs()),
                        ]
                    }
                    Err(e) => vec![HubEvent::Queued {
                        repo,
                        result: Err(e),
                        write,
                    }],
                }
            }
            HubCmd::Cancel(id) => match &self.downloader {
                Some(d) => {
                    d.cancel(id);
                    vec![HubEvent::Jobs(d.jobs())]
                }
                None => vec![],
            },
            HubCmd::Retry(id) => match &self.downloader {
                Some(d) => {
                    let new = d.retry(id);
                    vec![HubEvent::Retried { old: id, new }, HubEvent::Jobs(d.jobs())]
                }
                None => vec![],
            },
            HubCmd::ClearFinished => match &self.downloader {
                Some(d) => {
                    d.clear_finished();
                    vec![HubEvent::Jobs(d.jobs())]
                }
                None => vec![],
            },
            HubCmd::ScanCache => {
                let (dir, send) = (self.cfg.cache_dir.clone(), send.clone());
                spawn("dpgui-hub-scan", move || {
                    send(HubEvent::Cache(hub::scan(&dir).map_err(|e| e.to_string())));
                });
                vec![]
            }
            HubCmd::Delete(repo) => {
                let (dir, send) = (self.cfg.cache_dir.clone(), send.clone());
                spawn("dpgui-hub-delete", move || {
                    let result = hub::delete_repo(&dir, &repo).map_err(|e| e.to_string());
                    send(HubEvent::Deleted { repo, result });
                });
                vec![]
            }
            HubCmd::Write { config, loc, value } => {
                let result = write_config(&config, &loc, &value);
                vec![HubEvent::Written {
                    key: loc.name(),
                    config,
                    value,
                    result,
                }]
            }
        }
    }
}

/// Runs `f` on a named thread; a thread that cannot start runs `f` here (it still answers).
fn spawn(name: &str, f: impl FnOnce() + std::marker::Send + 'static) {
    let f = std::sync::Mutex::new(Some(f));
    let f = Arc::new(f);
    let g = f.clone();
    let started = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(f) = g.lock().ok().and_then(|mut o| o.take()) {
                f()
            }
        });
    if started.is_err()
        && let Some(f) = f.lock().ok().and_then(|mut o| o.take())
    {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Dest, Selection};

    fn job(id: JobId, state: JobState, done: u64, total: u64, rate: f64) -> JobStatus {
        JobStatus {
            id,
            request: Request {
                repo: "o/n".into(),
                revision: "main".into(),
                selection: Selection::All,
                dest: Dest::Cache,
            },
            state,
            files: Vec::new(),
            commit: None,
            total,
            done,
            fetched: done,
            rate,
            eta_secs: None,
            local_path: None,
            error: None,
        }
    }

    #[test]
    fn eta_is_short() {
        assert_eq!(eta(0.4), "0s");
        assert_eq!(eta(59.4), "59s");
        // Minutes round up: "1m" left means at most a minute.
        assert_eq!(eta(61.0), "2m");
        assert_eq!(eta(3600.0 + 5.0 * 60.0), "1h05m");
        assert_eq!(eta(f64::INFINITY), "0s");
        assert_eq!(eta(-3.0), "0s");
    }

    #[test]
    fn the_summary_counts_only_what_still_runs() {
        let mut h = HubState::default();
        assert_eq!(h.summary(), None);
        h.jobs = vec![
            job(1, JobState::Done, 9 << 30, 9 << 30, 0.0),
            job(2, JobState::Running, 1 << 30, 4 << 30, (64 << 20) as f64),
            job(3, JobState::Queued, 0, 2 << 30, 0.0),
        ];
        assert!(h.active());
        // 1 GiB of 6 GiB at 64 MiB/s: 5120 MiB / 64 MiB/s = 80 s → "2m".
        assert_eq!(
            h.summary().as_deref(),
            Some("⇣ 2 downloads 1.0 GiB/6.0 GiB 64 MiB/s ETA 2m")
        );
        h.jobs.truncate(1);
        assert!(!h.active());
        assert_eq!(h.summary(), None);
    }
}
