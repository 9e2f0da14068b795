//! The Jobs tab's state and keys: the job list, the launch dialog, and the job view (one log
//! pane per rank plus the launcher's). Keys only change state and return commands; the runtime
//! does the I/O (pre-flight, launch, stop, reading logs through `JobLogs::poll`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::jobs::journal::{JobState, StopKind};
use crate::jobs::launch::Finding;
use crate::jobs::store::JobView;
use crate::system::tail::{TailOptions, Tailer};
use crate::trainer::launch::{JobOptions, Resume};
use crate::trainer::progress::{Failure, LineEvent, Progress, parse_line};

use super::app::{Command, Level, Overlay, State};

/// Shared, lockable state that is not `Clone` (open files): equal when it is the same object.
#[derive(Debug, Default)]
pub struct Shared<T>(pub Arc<Mutex<T>>);

impl<T> Shared<T> {
    pub fn new(v: T) -> Self {
        Shared(Arc::new(Mutex::new(v)))
    }
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // A panic while drawing must not make every later frame panic too.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// One log pane.
#[derive(Debug)]
pub struct Pane {
    /// None: the launcher's log.
    pub rank: Option<u32>,
    pub tailer: Tailer,
    /// Lines scrolled up from the bottom; 0 with `follow` = the newest lines.
    pub scroll: usize,
    pub follow: bool,
    /// The line of the current search hit (buffer index).
    pub hit: Option<usize>,
    pub error: Option<String>,
}

impl Pane {
    fn new(rank: Option<u32>, path: PathBuf) -> Self {
        Pane {
            rank,
            tailer: Tailer::new(path, TailOptions::default()),
            scroll: 0,
            follow: true,
            hit: None,
            error: None,
        }
    }

    pub fn title(&self) -> String {
        match self.rank {
            Some(r) => format!("rank {r}"),
            None => "launcher".into(),
        }
    }

    pub fn scroll_by(&mut self, delta: isize) {
        let max = self.tailer.buffer().len().saturating_sub(1) as isize;
        self.scroll = (self.scroll as isize + delta).clamp(0, max) as usize;
        self.follow = self.scroll == 0;
    }
}

/// The open job's logs and what they say.
#[derive(Debug)]
pub struct JobLogs {
    pub job_id: String,
    pub dir: PathBuf,
    /// Ranks in order, the launcher last.
    pub panes: Vec<Pane>,
    /// Rank 0's progress: the history read once at open, then every new line.
    pub progress: Progress,
    pub history_loaded: bool,
    /// Rank 0's log, once its pane exists and its history has not been asked for yet: the
    /// runtime reads it (`progress::scan_history`) and calls `set_history`.
    pub history_request: Option<PathBuf>,
    /// Recognised failures from any pane, first of each kind.
    pub failures: Vec<(Option<u32>, Failure)>,
    /// Steps seen live before the history scan finished (merged when it arrives).
    pending_live: Vec<String>,
}

impl JobLogs {
    pub fn open(job_id: &str, dir: &Path) -> Self {
        let mut logs = JobLogs {
            job_id: job_id.to_string(),
            dir: dir.to_path_buf(),
            panes: vec![Pane::new(
                None,
                dir.join(crate::jobs::journal::LAUNCHER_LOG),
            )],
            progress: Progress::default(),
            history_loaded: false,
            history_request: None,
            failures: Vec::new(),
            pending_live: Vec::new(),
        };
        logs.discover();
        logs
    }

    /// Rank logs appear a few seconds after launch: add panes for new ones.
    fn discover(&mut self) {
        let (_, ranks) = crate::cli::jobs::log_files(&self.dir);
        for (rank, path) in ranks {
            if !self.panes.iter().any(|p| p.rank == Some(rank)) {
                let at = self
                    .panes
                    .iter()
                    .position(|p| p.rank.is_none_or(|r| r > rank))
                    .unwrap_or(self.panes.len());
                if rank == 0 {
                    self.history_request = Some(path.clone());
                }
                self.panes.insert(at, Pane::new(Some(rank), path));
            }
        }
    }

    pub fn rank0_log(&self) -> Option<PathBuf> {
        self.panes
            .iter()
            .find(|p| p.rank == Some(0))
            .map(|p| p.tailer.path().to_path_buf())
    }

    /// Reads what every log gained. Returns whether anything changed. I/O: the runtime calls it.
    pub fn poll(&mut self) -> bool {
        let before = self.panes.len();
        self.discover();
        let mut changed = self.panes.len() != before;
        let history_loaded = self.history_loaded;
        for pane in &mut self.panes {
            let rank = pane.rank;
            let progress = &mut self.progress;
            let failures = &mut self.failures;
            let pending = &mut self.pending_live;
            let res = pane.tailer.poll(&mut |line| {
                if let Some(LineEvent::Failure(f)) = parse_line(line)
                    && failures.len() < 16
                    && !failures.iter().any(|(_, g)| g.kind == f.kind)
                {
                    failures.push((rank, f));
                }
                if rank == Some(0) {
                    if history_loaded {
                        progress.feed(line);
                    } else if pending.len() < 100_000 {
                        pending.push(line.to_string());
                    }
                }
            });
            match res {
                Ok(n) => {
                    changed |= n > 0;
                    pane.error = None;
                }
                Err(e) => {
                    changed |= pane.error.is_none();
                    pane.error = Some(e.to_string());
                }
            }
            if pane.follow {
                pane.scroll = 0;
            }
        }
        changed
    }

    /// The history of rank 0 arrived: it replaces what was gathered, then the lines seen since.
    pub fn set_history(&mut self, history: Progress) {
        let last = history.step;
        self.progress = history;
        for line in std::mem::take(&mut self.pending_live) {
            // Lines the history already counted are skipped by their step number.
            if let Some(LineEvent::Step { step, .. }) = parse_line(&line)
                && last.is_some_and(|l| step <= l)
            {
                continue;
            }
            self.progress.feed(&line);
        }
        self.history_loaded = true;
    }

    /// Seconds since each rank pane last grew.
    pub fn silence(&self, rank: u32, now: Instant) -> Option<u64> {
        self.panes
            .iter()
            .find(|p| p.rank == Some(rank))
            .and_then(|p| p.tailer.last_growth())
            .map(|t| now.saturating_duration_since(t).as_secs())
    }
}

/// Steps of the launch dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchStep {
    Config,
    Gpus,
    Options,
    Review,
}

/// The toggles of the launch dialog, in display order.
pub const OPTION_LABELS: &[&str] = &[
    "resume from the latest run",
    "regenerate cache (--regenerate_cache)",
    "cache only (--cache_only)",
    "trust cache (--trust_cache)",
    "reset dataloader (--reset_dataloader)",
    "reset optimizer (--reset_optimizer)",
    "NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1 (consumer GPUs)",
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
];

pub fn option_value(o: &JobOptions, i: usize) -> bool {
    match i {
        0 => o.resume != Resume::No,
        1 => o.regenerate_cache,
        2 => o.cache_only,
        3 => o.trust_cache,
        4 => o.reset_dataloader,
        5 => o.reset_optimizer,
        6 => o.disable_nccl_p2p_ib,
        7 => o.expandable_segments,
        _ => false,
    }
}

fn toggle_option(o: &mut JobOptions, i: usize) {
    match i {
        0 => {
            o.resume = if o.resume == Resume::No {
                Resume::Latest
            } else {
                Resume::No
            }
        }
        1 => o.regenerate_cache ^= true,
        2 => o.cache_only ^= true,
        3 => o.trust_cache ^= true,
        4 => o.reset_dataloader ^= true,
        5 => o.reset_optimizer ^= true,
        6 => o.disable_nccl_p2p_ib ^= true,
        7 => o.expandable_segments ^= true,
        _ => {}
    }
}

/// The pre-flight as the dialog shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub findings: Vec<Finding>,
    pub failed: bool,
    pub command: Option<String>,
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LaunchDialog {
    pub step: LaunchStep,
    /// Candidate configs (workspace, dpgui's config dir, recent jobs).
    pub configs: Vec<PathBuf>,
    pub config_sel: usize,
    /// A path being typed (`/` or `e` in the config step).
    pub typing: Option<String>,
    pub config: Option<PathBuf>,
    /// (GPU id, ticked). Without NVIDIA GPUs: CPU ranks 0..n.
    pub gpus: Vec<(u32, bool)>,
    pub gpu_sel: usize,
    pub options: JobOptions,
    pub option_sel: usize,
    /// None while the pre-flight runs.
    pub review: Option<Review>,
    pub starting: bool,
}

impl LaunchDialog {
    pub fn new(configs: Vec<PathBuf>, gpu_count: Option<usize>) -> Self {
        let n = gpu_count.filter(|&n| n > 0).unwrap_or(2);
        LaunchDialog {
            step: LaunchStep::Config,
            configs,
            config_sel: 0,
            typing: None,
            config: None,
            gpus: (0..n as u32).map(|i| (i, i == 0)).collect(),
            gpu_sel: 0,
            options: JobOptions::default(),
            option_sel: 0,
            review: None,
            starting: false,
        }
    }

    pub fn ticked(&self) -> Vec<u32> {
        self.gpus.iter().filter(|g| g.1).map(|g| g.0).collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobsState {
    pub list: Vec<JobView>,
    pub loaded: bool,
    pub selected: usize,
    pub logs: Option<Shared<JobLogs>>,
    /// Focused pane in the job view, and whether it fills the view.
    pub focus: usize,
    pub zoom: bool,
    /// A search being typed in the job view.
    pub search: Option<String>,
    /// The last search, for n / N.
    pub last_search: Option<String>,
    pub launch: Option<LaunchDialog>,
    /// `dpgui attach JOB`: open this job once the list has it.
    pub attach: Option<String>,
}

impl JobsState {
    pub fn selected_job(&self) -> Option<&JobView> {
        self.list
            .get(self.selected.min(self.list.len().saturating_sub(1)))
    }

    /// The job shown in the job view (or selected in the list).
    pub fn current_job(&self) -> Option<&JobView> {
        match &self.logs {
            Some(l) => {
                let id = l.lock().job_id.clone();
                self.list.iter().find(|j| j.journal.id == id)
            }
            None => self.selected_job(),
        }
    }
}

/// Candidate configs for the launch dialog: recent jobs' configs first, then `*.toml` files in
/// the current directory and in dpgui's config dir (not dpgui's own config.toml).
pub fn config_candidates(list: &[JobView], cwd: &Path, config_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for j in list {
        if !out.contains(&j.journal.config) && j.journal.config.is_file() {
            out.push(j.journal.config.clone());
        }
    }
    for dir in [cwd, config_dir] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                    .filter(|p| p != &crate::paths::config_file())
                    .filter(|p| looks_like_main_config(p))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        for p in found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// A main config names its dataset config and output dir (a dataset config has neither).
fn looks_like_main_config(p: &Path) -> bool {
    std::fs::read_to_string(p)
        .map(|t| t.contains("output_dir") && t.contains("dataset"))
        .unwrap_or(false)
}

fn stop_needs_confirm(kind: StopKind) -> bool {
    matches!(
        kind,
        StopKind::Stop | StopKind::Kill | StopKind::SaveAndStop
    )
}

fn ask_stop(s: &mut State, kind: StopKind) -> Vec<Command> {
    let Some(job) = s.jobs.current_job() else {
        s.status = Some((Level::Warn, "no job selected".into()));
        return vec![];
    };
    if job.state.ended() {
        s.status = Some((
            Level::Warn,
            format!("job {} has already ended ({})", job.id(), job.state.label()),
        ));
        return vec![];
    }
    // Without a recorded run dir the stop looks for it in output_dir (the supervisor records
    // it at its next tick); only a job without output_dir has nowhere to save.
    if matches!(kind, StopKind::SaveAndStop | StopKind::SaveNow)
        && job.journal.run_dir.is_none()
        && job.journal.output_dir.is_none()
    {
        s.status = Some((
            Level::Warn,
            format!(
                "job {} has no run dir yet (starting or caching): nothing to save; x stops it",
                job.id()
            ),
        ));
        return vec![];
    }
    let id = job.id().to_string();
    if stop_needs_confirm(kind) {
        s.overlay = Overlay::ConfirmJobStop {
            job: id,
            kind,
            pids: job.processes.len(),
        };
        vec![]
    } else {
        vec![Command::StopJob { job: id, kind }]
    }
}

/// Keys of the Jobs tab (overlays were handled before).
pub fn key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    if s.jobs.launch.is_some() {
        return launch_key(s, k);
    }
    if s.jobs.logs.is_some() {
        return view_key(s, k);
    }
    let n = s.jobs.list.len();
    match k.code {
        KeyCode::Down | KeyCode::Char('j') => {
            s.jobs.selected = (s.jobs.selected + 1).min(n.saturating_sub(1))
        }
        KeyCode::Up | KeyCode::Char('k') => s.jobs.selected = s.jobs.selected.saturating_sub(1),
        KeyCode::Home | KeyCode::Char('g') => s.jobs.selected = 0,
        KeyCode::End | KeyCode::Char('G') => s.jobs.selected = n.saturating_sub(1),
        KeyCode::Enter | KeyCode::Char('l') => {
            if let Some(j) = s.jobs.selected_job() {
                return vec![Command::OpenJob {
                    id: j.id().to_string(),
                    dir: j.dir.clone(),
                }];
            }
        }
        KeyCode::Char('n') | KeyCode::Char('a') => return vec![Command::NewLaunch],
        KeyCode::Char('s') => return ask_stop(s, StopKind::SaveAndStop),
        KeyCode::Char('c') => return ask_stop(s, StopKind::SaveNow),
        KeyCode::Char('x') => return ask_stop(s, StopKind::Stop),
        KeyCode::Char('K') => return ask_stop(s, StopKind::Kill),
        _ => {}
    }
    vec![]
}

fn view_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let Some(logs) = s.jobs.logs.clone() else {
        return vec![];
    };
    let mut l = logs.lock();
    let panes = l.panes.len().max(1);
    s.jobs.focus = s.jobs.focus.min(panes - 1);
    // Typing a search.
    if let Some(q) = s.jobs.search.as_mut() {
        match k.code {
            KeyCode::Esc => s.jobs.search = None,
            KeyCode::Backspace => {
                q.pop();
            }
            KeyCode::Enter => {
                let q = s.jobs.search.take().unwrap_or_default();
                if !q.is_empty() {
                    s.jobs.last_search = Some(q);
                    search(s, &mut l, false);
                }
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => q.push(c),
            _ => {}
        }
        return vec![];
    }
    let page = (s.size.height as isize / 2).max(1);
    let pane = &mut l.panes[s.jobs.focus];
    match k.code {
        KeyCode::Esc | KeyCode::Char('h') | KeyCode::Backspace => {
            drop(l);
            s.jobs.logs = None;
            s.jobs.zoom = false;
            return vec![];
        }
        KeyCode::Tab | KeyCode::Right => s.jobs.focus = (s.jobs.focus + 1) % panes,
        KeyCode::BackTab | KeyCode::Left => s.jobs.focus = (s.jobs.focus + panes - 1) % panes,
        KeyCode::Char('L') => s.jobs.focus = panes - 1,
        KeyCode::Char('z') | KeyCode::Enter => s.jobs.zoom ^= true,
        KeyCode::Up | KeyCode::Char('k') => pane.scroll_by(1),
        KeyCode::Down | KeyCode::Char('j') => pane.scroll_by(-1),
        KeyCode::PageUp => pane.scroll_by(page),
        KeyCode::PageDown => pane.scroll_by(-page),
        KeyCode::Home | KeyCode::Char('g') => pane.scroll_by(isize::MAX / 2),
        KeyCode::End | KeyCode::Char('G') | KeyCode::Char('f') => {
            pane.scroll = 0;
            pane.follow = true;
        }
        KeyCode::Char('/') => s.jobs.search = Some(String::new()),
        KeyCode::Char('n') => search(s, &mut l, false),
        KeyCode::Char('N') => search(s, &mut l, true),
        KeyCode::Char('s') => {
            drop(l);
            return ask_stop(s, StopKind::SaveAndStop);
        }
        KeyCode::Char('c') => {
            drop(l);
            return ask_stop(s, StopKind::SaveNow);
        }
        KeyCode::Char('x') => {
            drop(l);
            return ask_stop(s, StopKind::Stop);
        }
        KeyCode::Char('K') => {
            drop(l);
            return ask_stop(s, StopKind::Kill);
        }
        _ => {}
    }
    vec![]
}

/// Moves the focused pane to the next (or previous) line matching the last search.
fn search(s: &mut State, l: &mut JobLogs, backwards: bool) {
    let Some(q) = s.jobs.last_search.clone() else {
        s.status = Some((Level::Info, "type / to search this pane".into()));
        return;
    };
    let pane = &mut l.panes[s.jobs.focus];
    let len = pane.tailer.buffer().len();
    if len == 0 {
        return;
    }
    // Start next to the current hit, or at the line at the bottom of the view.
    let current = pane
        .hit
        .unwrap_or_else(|| len.saturating_sub(1 + pane.scroll));
    let from = if backwards {
        current.checked_sub(1).unwrap_or(usize::MAX)
    } else {
        current + 1
    };
    match pane.tailer.buffer().search(&q, from, backwards) {
        Some(i) => {
            pane.hit = Some(i);
            pane.scroll = len - 1 - i;
            pane.follow = false;
            s.status = Some((Level::Info, format!("`{q}`: line {}", i + 1)));
        }
        None => {
            pane.hit = None;
            s.status = Some((Level::Warn, format!("`{q}` not found in this pane")));
        }
    }
}

fn launch_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let Some(d) = s.jobs.launch.as_mut() else {
        return vec![];
    };
    if let Some(t) = d.typing.as_mut() {
        match k.code {
            KeyCode::Esc => d.typing = None,
            KeyCode::Backspace => {
                t.pop();
            }
            KeyCode::Enter if d.step == LaunchStep::Options => {
                // Extra environment: KEY=VALUE pairs separated by spaces.
                let text = d.typing.take().unwrap_or_default();
                match text
                    .split_whitespace()
                    .map(crate::trainer::launch::parse_env)
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(env) => d.options.extra_env = env,
                    Err(e) => {
                        d.typing = Some(text);
                        s.status = Some((Level::Warn, e));
                    }
                }
            }
            KeyCode::Enter => {
                let path = PathBuf::from(d.typing.take().unwrap_or_default().trim());
                if !path.as_os_str().is_empty() {
                    d.config = Some(crate::jobs::launch::absolute(&path));
                    d.step = LaunchStep::Gpus;
                }
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => t.push(c),
            _ => {}
        }
        return vec![];
    }
    if k.code == KeyCode::Esc {
        if d.step == LaunchStep::Review && !d.starting {
            d.step = LaunchStep::Options;
            d.review = None;
            // Dropping the pre-flight releases the port it claimed.
            return vec![Command::CancelLaunch];
        }
        s.jobs.launch = None;
        return vec![Command::CancelLaunch];
    }
    match d.step {
        LaunchStep::Config => match k.code {
            KeyCode::Down | KeyCode::Char('j') => {
                d.config_sel = (d.config_sel + 1).min(d.configs.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => d.config_sel = d.config_sel.saturating_sub(1),
            KeyCode::Char('/') | KeyCode::Char('e') => d.typing = Some(String::new()),
            KeyCode::Enter | KeyCode::Tab => {
                if let Some(c) = d.configs.get(d.config_sel) {
                    d.config = Some(c.clone());
                    d.step = LaunchStep::Gpus;
                } else {
                    d.typing = Some(String::new());
                }
            }
            _ => {}
        },
        LaunchStep::Gpus => match k.code {
            KeyCode::Down | KeyCode::Char('j') => {
                d.gpu_sel = (d.gpu_sel + 1).min(d.gpus.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => d.gpu_sel = d.gpu_sel.saturating_sub(1),
            KeyCode::Char(' ') => {
                if let Some(g) = d.gpus.get_mut(d.gpu_sel) {
                    g.1 ^= true;
                }
            }
            KeyCode::Char('a') => {
                let all = d.gpus.iter().all(|g| g.1);
                d.gpus.iter_mut().for_each(|g| g.1 = !all);
            }
            KeyCode::BackTab => d.step = LaunchStep::Config,
            KeyCode::Enter | KeyCode::Tab => {
                if d.ticked().is_empty() {
                    s.status = Some((Level::Warn, "tick at least one GPU (space)".into()));
                } else {
                    d.step = LaunchStep::Options;
                }
            }
            _ => {}
        },
        LaunchStep::Options => match k.code {
            KeyCode::Down | KeyCode::Char('j') => {
                d.option_sel = (d.option_sel + 1).min(OPTION_LABELS.len() - 1)
            }
            KeyCode::Up | KeyCode::Char('k') => d.option_sel = d.option_sel.saturating_sub(1),
            KeyCode::Char(' ') => toggle_option(&mut d.options, d.option_sel),
            KeyCode::Char('v') => {
                let current: Vec<String> = d
                    .options
                    .extra_env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                d.typing = Some(current.join(" "));
            }
            KeyCode::BackTab => d.step = LaunchStep::Gpus,
            KeyCode::Enter | KeyCode::Tab => {
                let Some(config) = d.config.clone() else {
                    d.step = LaunchStep::Config;
                    return vec![];
                };
                d.step = LaunchStep::Review;
                d.review = None;
                return vec![Command::Preflight {
                    config,
                    gpus: d.ticked(),
                    options: d.options.clone(),
                }];
            }
            _ => {}
        },
        LaunchStep::Review => match k.code {
            KeyCode::Enter | KeyCode::Char('y')
                if d.review.as_ref().is_some_and(|r| !r.failed) && !d.starting =>
            {
                d.starting = true;
                return vec![Command::Launch];
            }
            KeyCode::Char('e') => {
                let pgid = d
                    .review
                    .as_ref()
                    .and_then(|r| r.findings.iter().find_map(|f| f.leftover_pgids.first()))
                    .copied();
                match pgid {
                    Some(pgid) => return show_leftover(s, pgid),
                    None => {
                        s.status = Some((
                            Level::Info,
                            "no leftover process group holds the selected GPUs".into(),
                        ))
                    }
                }
            }
            KeyCode::Char('r') if !d.starting => {
                if let Some(config) = d.config.clone() {
                    d.review = None;
                    return vec![
                        Command::CancelLaunch,
                        Command::Preflight {
                            config,
                            gpus: d.ticked(),
                            options: d.options.clone(),
                        },
                    ];
                }
            }
            _ => {}
        },
    }
    vec![]
}

/// Shows a leftover group in the Environment tab, where `x` ends it with the guarded stop (the
/// launch dialog stays open in the Jobs tab; re-check with `r` afterwards).
fn show_leftover(s: &mut State, pgid: u32) -> Vec<Command> {
    use super::app::{Panel, Tab};
    let idx = s
        .env
        .inventory
        .as_ref()
        .and_then(|inv| inv.leftovers.iter().position(|g| g.pgid == pgid));
    s.tab = Tab::Environment;
    s.env.focus = Panel::Leftovers.index();
    if let Some(i) = idx {
        s.env.selected[Panel::Leftovers.index()] = i;
    }
    s.status = Some((
        Level::Info,
        format!("leftover group {pgid}: x ends it (confirmation first); 4 returns to the launch"),
    ));
    vec![]
}

/// Whether a job is in a state where its logs still grow.
pub fn is_live(state: JobState) -> bool {
    matches!(
        state,
        JobState::Starting | JobState::Running | JobState::Stopping | JobState::Lost
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::journal;
    use crate::tui::app::{AppInfo, Event, Tab, update};
    use crossterm::event::{KeyEventKind, KeyEventState};

    fn press(s: &mut State, code: KeyCode) -> Vec<Command> {
        update(
            s,
            Event::Key(KeyEvent {
                code,
                modifiers: KeyModifiers::NONE,
                kind: KeyEventKind::Press,
                state: KeyEventState::NONE,
            }),
        )
    }

    fn view(id: &str, state: JobState, run_dir: bool) -> JobView {
        let mut j = journal::sample(id);
        j.state = state;
        j.ended = state.ended();
        j.run_dir = run_dir.then(|| PathBuf::from("/out/20260101_00-00-00"));
        JobView {
            journal: j,
            dir: PathBuf::from("/state/jobs").join(id),
            state,
            lost: None,
            processes: vec![],
        }
    }

    fn jobs_state(list: Vec<JobView>) -> State {
        let mut s = State::new(AppInfo::default());
        s.tab = Tab::Jobs;
        update(&mut s, Event::Jobs(list));
        s
    }

    #[test]
    fn the_list_opens_a_job_and_asks_before_stopping_it() {
        let mut s = jobs_state(vec![
            view("a", JobState::Running, true),
            view("b", JobState::Succeeded, true),
        ]);
        assert_eq!(press(&mut s, KeyCode::Char('j')), vec![]);
        assert_eq!(s.jobs.selected, 1);
        // An ended job cannot be stopped: a message, no dialog.
        press(&mut s, KeyCode::Char('x'));
        assert_eq!(s.overlay, Overlay::None);
        assert!(s.status.as_ref().unwrap().1.contains("already ended"));
        press(&mut s, KeyCode::Char('k'));
        assert_eq!(
            press(&mut s, KeyCode::Enter),
            vec![Command::OpenJob {
                id: "a".into(),
                dir: PathBuf::from("/state/jobs/a")
            }]
        );
        for (key, kind) in [
            ('x', StopKind::Stop),
            ('K', StopKind::Kill),
            ('s', StopKind::SaveAndStop),
        ] {
            assert_eq!(press(&mut s, KeyCode::Char(key)), vec![]);
            assert!(
                matches!(&s.overlay, Overlay::ConfirmJobStop { job, kind: k, .. } if job == "a" && *k == kind),
                "{key}: {:?}",
                s.overlay
            );
            assert_eq!(press(&mut s, KeyCode::Char('n')), vec![]);
            assert_eq!(s.overlay, Overlay::None);
        }
        press(&mut s, KeyCode::Char('x'));
        assert_eq!(
            press(&mut s, KeyCode::Char('y')),
            vec![Command::StopJob {
                job: "a".into(),
                kind: StopKind::Stop
            }]
        );
        assert!(matches!(s.overlay, Overlay::JobStopping { .. }));
        // Save-now needs no confirmation but a run dir.
        s.overlay = Overlay::None;
        assert_eq!(
            press(&mut s, KeyCode::Char('c')),
            vec![Command::StopJob {
                job: "a".into(),
                kind: StopKind::SaveNow
            }]
        );
        let mut no_out = view("c", JobState::Running, false);
        no_out.journal.output_dir = None;
        let mut s = jobs_state(vec![no_out]);
        assert_eq!(press(&mut s, KeyCode::Char('c')), vec![]);
        assert!(s.status.as_ref().unwrap().1.contains("no run dir yet"));
    }

    #[test]
    fn the_launch_dialog_walks_config_gpus_options_review() {
        let mut s = jobs_state(vec![]);
        assert_eq!(press(&mut s, KeyCode::Char('n')), vec![Command::NewLaunch]);
        update(
            &mut s,
            Event::LaunchDialog(Box::new(LaunchDialog::new(
                vec![PathBuf::from("/c/a.toml"), PathBuf::from("/c/b.toml")],
                Some(4),
            ))),
        );
        // Typing a path: q and digits are text, not quit / tab switch.
        press(&mut s, KeyCode::Char('/'));
        for c in "/q/1.toml".chars() {
            assert_eq!(press(&mut s, KeyCode::Char(c)), vec![]);
        }
        assert!(!s.quit);
        assert_eq!(s.tab, Tab::Jobs);
        press(&mut s, KeyCode::Esc);
        assert_eq!(s.jobs.launch.as_ref().unwrap().typing, None);
        press(&mut s, KeyCode::Down);
        press(&mut s, KeyCode::Enter);
        let d = s.jobs.launch.as_ref().unwrap();
        assert_eq!(d.step, LaunchStep::Gpus);
        assert_eq!(d.config.as_deref(), Some(Path::new("/c/b.toml")));
        // GPU 0 is ticked by default; untick it, tick 2 and 3.
        press(&mut s, KeyCode::Char(' '));
        press(&mut s, KeyCode::Enter);
        assert!(
            s.status
                .as_ref()
                .unwrap()
                .1
                .contains("tick at least one GPU")
        );
        for _ in 0..2 {
            press(&mut s, KeyCode::Down);
        }
        press(&mut s, KeyCode::Char(' '));
        press(&mut s, KeyCode::Down);
        press(&mut s, KeyCode::Char(' '));
        press(&mut s, KeyCode::Tab);
        assert_eq!(s.jobs.launch.as_ref().unwrap().step, LaunchStep::Options);
        press(&mut s, KeyCode::Char(' ')); // resume from the latest run
        press(&mut s, KeyCode::Char('v'));
        for c in "A=1 bad".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        assert!(
            s.status
                .as_ref()
                .unwrap()
                .1
                .contains("`bad` is not KEY=VALUE")
        );
        for _ in 0..3 {
            press(&mut s, KeyCode::Backspace);
        }
        for c in "B=x".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        let cmds = press(&mut s, KeyCode::Enter);
        assert_eq!(
            cmds,
            vec![Command::Preflight {
                config: PathBuf::from("/c/b.toml"),
                gpus: vec![2, 3],
                options: JobOptions {
                    resume: Resume::Latest,
                    extra_env: vec![("A".into(), "1".into()), ("B".into(), "x".into())],
                    ..Default::default()
                }
            }]
        );
        // Nothing to confirm until the pre-flight answered, nor when it failed.
        assert_eq!(press(&mut s, KeyCode::Enter), vec![]);
        let review = |failed| Review {
            findings: vec![],
            failed,
            command: Some("deepspeed ...".into()),
            cwd: None,
            env: vec![],
            port: Some(29510),
        };
        update(&mut s, Event::Review(Box::new(review(true))));
        assert_eq!(press(&mut s, KeyCode::Enter), vec![]);
        update(&mut s, Event::Review(Box::new(review(false))));
        assert_eq!(press(&mut s, KeyCode::Enter), vec![Command::Launch]);
        assert!(s.jobs.launch.as_ref().unwrap().starting);
        update(&mut s, Event::Launched(Ok("job-1".into())));
        assert!(s.jobs.launch.is_none());
        assert!(s.status.as_ref().unwrap().1.contains("job-1 started"));
    }

    #[test]
    fn esc_in_the_review_releases_the_claimed_port() {
        let mut s = jobs_state(vec![]);
        let mut d = LaunchDialog::new(vec![], None);
        d.step = LaunchStep::Review;
        d.config = Some("/c.toml".into());
        update(&mut s, Event::LaunchDialog(Box::new(d)));
        assert_eq!(press(&mut s, KeyCode::Esc), vec![Command::CancelLaunch]);
        assert_eq!(s.jobs.launch.as_ref().unwrap().step, LaunchStep::Options);
        assert_eq!(press(&mut s, KeyCode::Esc), vec![Command::CancelLaunch]);
        assert!(s.jobs.launch.is_none());
    }

    #[test]
    fn the_job_view_cycles_panes_searches_and_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ranks")).unwrap();
        std::fs::write(dir.path().join("launcher.log"), "spawned\n").unwrap();
        let lines: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("ranks/20260101000000_rank0.log"), &lines).unwrap();
        std::fs::write(dir.path().join("ranks/20260101000000_rank1.log"), &lines).unwrap();
        let mut s = jobs_state(vec![view("a", JobState::Running, true)]);
        let logs = JobLogs::open("a", dir.path());
        assert_eq!(
            logs.panes.iter().map(|p| p.rank).collect::<Vec<_>>(),
            vec![Some(0), Some(1), None]
        );
        assert!(
            logs.history_request.is_some(),
            "rank 0's history is asked for"
        );
        update(&mut s, Event::JobOpened(Shared::new(logs)));
        // Tab moves between panes here instead of switching tabs.
        press(&mut s, KeyCode::Tab);
        assert_eq!((s.tab, s.jobs.focus), (Tab::Jobs, 1));
        press(&mut s, KeyCode::BackTab);
        assert_eq!(s.jobs.focus, 0);
        press(&mut s, KeyCode::Char('/'));
        for c in "line 1".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        {
            let l = s.jobs.logs.as_ref().unwrap().lock();
            let p = &l.panes[0];
            let hit = p.hit.expect("found");
            assert!(p.tailer.buffer().line(hit).unwrap().contains("line 1"));
            assert!(!p.follow, "a hit stops following");
        }
        press(&mut s, KeyCode::Char('G'));
        assert!(s.jobs.logs.as_ref().unwrap().lock().panes[0].follow);
        press(&mut s, KeyCode::Char('z'));
        assert!(s.jobs.zoom);
        press(&mut s, KeyCode::Esc);
        assert!(s.jobs.logs.is_none());
        assert_eq!(s.tab, Tab::Jobs);
    }

    #[test]
    fn history_and_live_lines_are_merged_without_double_counting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ranks")).unwrap();
        let log = dir.path().join("ranks/20260101000000_rank0.log");
        let step = |n: u64| format!("steps: {n} loss: 0.5 iter time (s): 1.0 samples/sec: 1.0\n");
        std::fs::write(&log, step(1) + &step(2)).unwrap();
        let mut l = JobLogs::open("a", dir.path());
        // Lines appended before the history scan finished...
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all((step(3) + &step(4)).as_bytes()).unwrap();
        l.poll();
        // ...and a history scan that already saw step 3.
        let mut history = Progress::default();
        for n in 1..=3 {
            history.feed(step(n).trim_end());
        }
        l.set_history(history);
        let steps: Vec<u64> = l.progress.losses.iter().map(|p| p.0).collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
        f.write_all(step(5).as_bytes()).unwrap();
        l.poll();
        assert_eq!(l.progress.step, Some(5));
    }
}
