//! Application state and `update`: the only place keys and machine data change the state.
//! `update` is pure: it returns commands for the runtime instead of doing I/O, so every key is
//! unit-tested without a terminal.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use crate::jobs::journal::StopKind;
use crate::jobs::stop::StopReport;
use crate::jobs::store::JobView;
use crate::system::checks::Check;
use crate::system::gpu::GpuFeed;
use crate::system::inventory::{FreeReport, Inventory, LeftoverGroup};
use crate::trainer::launch::JobOptions;
use crate::trainer::progress::Progress;
use crate::tui::config::{self, After, ConfigCmd, ConfigEvent, ConfigOverlay, ConfigState};
use crate::tui::datasets::{self, DatasetsCmd, DatasetsEvent, DatasetsState};
use crate::tui::hub::{self, HubCmd, HubEvent, HubState};
use crate::tui::jobs::{self, JobLogs, JobsState, LaunchDialog, Review, Shared};
use crate::tui::views;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Environment,
    Datasets,
    Config,
    Jobs,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Environment, Tab::Datasets, Tab::Config, Tab::Jobs];
    pub fn title(self) -> &'static str {
        match self {
            Tab::Environment => "Environment",
            Tab::Datasets => "Datasets",
            Tab::Config => "Config",
            Tab::Jobs => "Jobs",
        }
    }
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Gpus,
    Ports,
    Leftovers,
    Checks,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Gpus, Panel::Ports, Panel::Leftovers, Panel::Checks];
    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    Details,
    /// Confirm ending a process group; `second` is the extra step for other users' processes.
    ConfirmStop {
        group: Box<LeftoverGroup>,
        second: bool,
    },
    Stopping {
        pgid: u32,
        pids: usize,
    },
    StopResult(Box<FreeReport>),
    /// Confirm a stop of a dpgui job.
    ConfirmJobStop {
        job: String,
        kind: StopKind,
        pids: usize,
    },
    JobStopping {
        job: String,
        kind: StopKind,
    },
    JobStopResult(Box<StopReport>),
    /// The Config tab's dialogs (unsaved changes, changed on disk, new, rename, delete, path
    /// picker...).
    Config(Box<ConfigOverlay>),
    /// Hugging Face downloads and the hub cache (F6, from every tab; state in `State::hub`).
    Downloads,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppInfo {
    pub version: &'static str,
    pub theme: String,
    pub refresh_secs: f64,
    pub stop_grace_secs: f64,
    pub job_interrupt_grace_secs: f64,
    pub job_terminate_grace_secs: f64,
    pub is_root: bool,
    pub config_file: String,
    /// Problems in config.toml, shown once in the status line and in the checks panel.
    pub config_problems: Vec<String>,
}

impl Default for AppInfo {
    fn default() -> Self {
        AppInfo {
            version: env!("CARGO_PKG_VERSION"),
            theme: "dark".into(),
            refresh_secs: 1.0,
            stop_grace_secs: 10.0,
            job_interrupt_grace_secs: 15.0,
            job_terminate_grace_secs: 10.0,
            is_root: false,
            config_file: "~/.config/dpgui/config.toml".into(),
            config_problems: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvState {
    pub gpu: Option<GpuFeed>,
    pub inventory: Option<Inventory>,
    pub checks: Option<Vec<Check>>,
    pub probe_running: bool,
    pub focus: usize,
    pub selected: [usize; 4],
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub tab: Tab,
    pub overlay: Overlay,
    pub env: EnvState,
    pub jobs: JobsState,
    pub config: ConfigState,
    pub datasets: DatasetsState,
    /// Hugging Face downloads (they outlive tab switches).
    pub hub: HubState,
    pub status: Option<(Level, String)>,
    pub info: AppInfo,
    pub size: Rect,
    pub quit: bool,
    /// Frozen "now" for deterministic rendering in tests; None = the real clock.
    pub clock: Option<std::time::SystemTime>,
}

impl State {
    pub fn new(info: AppInfo) -> Self {
        let status = (!info.config_problems.is_empty()).then(|| {
            (
                Level::Warn,
                format!("{}: {}", info.config_file, info.config_problems[0]),
            )
        });
        State {
            tab: Tab::Environment,
            overlay: Overlay::None,
            env: EnvState::default(),
            jobs: JobsState::default(),
            config: ConfigState::default(),
            datasets: DatasetsState::default(),
            hub: HubState::default(),
            status,
            info,
            size: Rect::new(0, 0, 80, 24),
            quit: false,
            clock: None,
        }
    }

    pub fn now(&self) -> std::time::SystemTime {
        self.clock.unwrap_or_else(std::time::SystemTime::now)
    }

    pub fn focus(&self) -> Panel {
        Panel::ALL[self.env.focus % Panel::ALL.len()]
    }

    /// Number of selectable rows in each panel.
    pub fn rows(&self, panel: Panel) -> usize {
        match panel {
            Panel::Gpus => views::environment::gpu_rows(self).len(),
            Panel::Ports => views::environment::port_rows(self).len(),
            Panel::Leftovers => self.env.inventory.as_ref().map_or(0, |i| i.leftovers.len()),
            Panel::Checks => self.env.checks.as_ref().map_or(0, |c| c.len()),
        }
    }

    pub fn selected(&self, panel: Panel) -> usize {
        let n = self.rows(panel);
        self.env.selected[panel.index()].min(n.saturating_sub(1))
    }

    fn move_sel(&mut self, delta: isize) {
        let p = self.focus();
        let n = self.rows(p) as isize;
        let cur = self.selected(p) as isize;
        self.env.selected[p.index()] = (cur + delta).clamp(0, (n - 1).max(0)) as usize;
    }

    /// NVML gives pids only: name their user and command from the latest process scan.
    fn enrich_gpu(&mut self) {
        let (Some(feed), Some(inv)) = (self.env.gpu.as_mut(), self.env.inventory.as_ref()) else {
            return;
        };
        if let Some(snap) = feed.snapshot.as_mut() {
            crate::system::inventory::enrich_gpu_with(snap, &|pid| {
                inv.gpu_procs.get(&pid).cloned()
            });
        }
    }

    /// The group a stop from the current selection would end.
    pub fn selected_group(&self) -> Result<LeftoverGroup, String> {
        let inv = self
            .env
            .inventory
            .as_ref()
            .ok_or("still scanning processes")?;
        match self.focus() {
            Panel::Leftovers => inv
                .leftovers
                .get(self.selected(Panel::Leftovers))
                .cloned()
                .ok_or_else(|| "no leftover training processes".into()),
            Panel::Ports => {
                let rows = views::environment::port_rows(self);
                let Some(row) = rows.get(self.selected(Panel::Ports)) else {
                    return Err("no port selected".into());
                };
                let Some(h) = row.holder.as_ref() else {
                    return Err(match &row.blocked {
                        Some(why) => format!(
                            "port {}: {why}; no process to end was found (`ss -tanp` lists connections)",
                            row.port
                        ),
                        None => format!("port {} is free", row.port),
                    });
                };
                let Some(pgid) = h.pgid else {
                    return Err(format!(
                        "port {} is held by uid {} and its pid is not visible: run dpgui as root to see and end it",
                        row.port, h.uid
                    ));
                };
                if h.job_live {
                    return Err(format!(
                        "pid {} belongs to the running dpgui job {}: stop it from the Jobs tab",
                        h.pid.unwrap_or(0),
                        h.job.clone().unwrap_or_default()
                    ));
                }
                inv.group(pgid)
                    .cloned()
                    .ok_or_else(|| format!("process group {pgid} is gone"))
            }
            Panel::Gpus => {
                let rows = views::environment::gpu_rows(self);
                match rows.get(self.selected(Panel::Gpus)) {
                    // Only pids confirmed local (holding /dev/nvidia*): NVML reports host pids,
                    // which in a container can name an unrelated local process.
                    Some(views::environment::GpuRow::Process { pid, .. })
                        if inv.gpu_procs.contains_key(pid) =>
                    {
                        inv.group_of_pid(*pid)
                            .cloned()
                            .ok_or_else(|| format!("pid {pid} is not visible from here"))
                    }
                    Some(views::environment::GpuRow::Process { pid, .. }) => Err(format!(
                        "pid {pid} is not a process visible here (another user or PID namespace)"
                    )),
                    _ => Err("select a process row (under a GPU) to end it".into()),
                }
            }
            Panel::Checks => Err("select a leftover group or a port holder to end it".into()),
        }
    }
}

/// Requests for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Quit,
    Refresh,
    RunChecks,
    Stop {
        group: Box<LeftoverGroup>,
        allow_other_users: bool,
    },
    StopJob {
        job: String,
        kind: StopKind,
    },
    OpenJob {
        id: String,
        dir: std::path::PathBuf,
    },
    /// Open the launch dialog (the runtime lists the candidate configs).
    NewLaunch,
    /// Open the launch dialog with this config chosen (from the Config tab).
    NewLaunchWith(std::path::PathBuf),
    /// The Config tab's file I/O and linting.
    Config(ConfigCmd),
    /// The Datasets tab's scans and file I/O.
    Datasets(DatasetsCmd),
    /// Hugging Face listings, downloads and the hub cache.
    Hub(HubCmd),
    /// Run the pre-flight (claims a port until launched or cancelled).
    Preflight {
        config: std::path::PathBuf,
        gpus: Vec<u32>,
        options: JobOptions,
    },
    /// Drop a pending pre-flight (releases its port).
    CancelLaunch,
    /// Start the job the last pre-flight checked.
    Launch,
}

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Gpu(GpuFeed),
    Inventory(Box<Inventory>),
    ChecksStarted,
    Checks(Vec<Check>),
    StopDone(Box<FreeReport>),
    Jobs(Vec<JobView>),
    JobOpened(Shared<JobLogs>),
    History(String, Box<Progress>),
    LaunchDialog(Box<LaunchDialog>),
    Review(Box<Review>),
    /// The job id, or why it could not start.
    Launched(Result<String, String>),
    JobStopDone(Result<Box<StopReport>, String>),
    Config(ConfigEvent),
    Datasets(DatasetsEvent),
    Hub(HubEvent),
}

pub fn update(s: &mut State, ev: Event) -> Vec<Command> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => key(s, k),
        Event::Key(_) => vec![],
        Event::Mouse(m) => mouse(s, m),
        Event::Resize(w, h) => {
            s.size = Rect::new(0, 0, w, h);
            vec![]
        }
        Event::Config(e) => config::event(s, e),
        Event::Datasets(e) => datasets::event(s, e),
        Event::Hub(e) => hub::event(s, e),
        Event::Gpu(feed) => {
            s.env.gpu = Some(feed);
            s.enrich_gpu();
            vec![]
        }
        Event::Inventory(inv) => {
            s.env.inventory = Some(*inv);
            s.enrich_gpu();
            vec![]
        }
        Event::ChecksStarted => {
            s.env.probe_running = true;
            vec![]
        }
        Event::Checks(c) => {
            s.env.probe_running = false;
            s.env.checks = Some(c);
            vec![]
        }
        Event::StopDone(r) => {
            s.status = Some((
                if r.all_gone() {
                    Level::Info
                } else {
                    Level::Error
                },
                r.headline(),
            ));
            s.overlay = Overlay::StopResult(r);
            vec![Command::Refresh]
        }
        Event::Jobs(list) => {
            s.jobs.list = list;
            s.jobs.loaded = true;
            s.jobs.selected = s.jobs.selected.min(s.jobs.list.len().saturating_sub(1));
            if let Some(q) = s.jobs.attach.take() {
                match s
                    .jobs
                    .list
                    .iter()
                    .position(|j| j.id() == q || j.id().starts_with(&q))
                {
                    Some(i) => {
                        s.jobs.selected = i;
                        s.tab = Tab::Jobs;
                        let j = &s.jobs.list[i];
                        return vec![Command::OpenJob {
                            id: j.id().to_string(),
                            dir: j.dir.clone(),
                        }];
                    }
                    None => s.status = Some((Level::Error, format!("no job `{q}`"))),
                }
            }
            vec![]
        }
        Event::JobOpened(logs) => {
            s.jobs.logs = Some(logs);
            s.jobs.focus = 0;
            s.jobs.zoom = false;
            vec![]
        }
        Event::History(id, p) => {
            if let Some(l) = &s.jobs.logs {
                let mut l = l.lock();
                if l.job_id == id {
                    l.set_history(*p);
                }
            }
            vec![]
        }
        Event::LaunchDialog(d) => {
            s.jobs.launch = Some(*d);
            s.tab = Tab::Jobs;
            vec![]
        }
        Event::Review(r) => {
            if let Some(d) = s.jobs.launch.as_mut() {
                d.review = Some(*r);
            }
            vec![]
        }
        Event::Launched(Ok(id)) => {
            s.jobs.launch = None;
            s.status = Some((Level::Info, format!("job {id} started")));
            vec![Command::Refresh]
        }
        Event::Launched(Err(e)) => {
            if let Some(d) = s.jobs.launch.as_mut() {
                d.starting = false;
            }
            s.status = Some((Level::Error, format!("launch failed: {e}")));
            vec![]
        }
        Event::JobStopDone(r) => {
            if let Ok(r) = &r
                && r.kind == StopKind::SaveAndStop
                && s.overlay == Overlay::None
            {
                // The save finished while the user did something else: say so, no popup.
                s.status = Some((
                    if r.clean() { Level::Info } else { Level::Error },
                    r.headline(),
                ));
                return vec![Command::Refresh];
            }
            match r {
                Ok(r) => {
                    s.status = Some((
                        if r.clean() || r.kind == StopKind::SaveNow || r.ladder.is_none() {
                            Level::Info
                        } else {
                            Level::Error
                        },
                        r.headline(),
                    ));
                    s.overlay = if r.ladder.is_some() {
                        Overlay::JobStopResult(r)
                    } else {
                        Overlay::None
                    };
                }
                Err(e) => {
                    s.overlay = Overlay::None;
                    s.status = Some((Level::Error, e));
                }
            }
            vec![Command::Refresh]
        }
    }
}

/// Whether the Jobs tab takes this key before the global keys: text being typed, or keys the
/// job view and the launch dialog give their own meaning (Tab cycles panes / steps, Esc goes
/// back).
fn jobs_first(s: &State, k: &KeyEvent) -> bool {
    if s.tab != Tab::Jobs || s.overlay != Overlay::None {
        return false;
    }
    let typing =
        s.jobs.search.is_some() || s.jobs.launch.as_ref().is_some_and(|d| d.typing.is_some());
    let open = s.jobs.logs.is_some() || s.jobs.launch.is_some();
    typing || (open && matches!(k.code, KeyCode::Tab | KeyCode::BackTab | KeyCode::Esc))
}

/// Switches tabs; leaving the Config tab with unsaved changes asks first.
pub fn switch_tab(s: &mut State, t: Tab) -> Vec<Command> {
    if t == s.tab {
        return vec![];
    }
    if s.tab == Tab::Config {
        return config::leave(s, After::Tab(t));
    }
    if s.tab == Tab::Datasets && datasets::guard_leave(s) {
        return vec![];
    }
    s.tab = t;
    if t == Tab::Datasets {
        return datasets::entered(s);
    }
    if t == Tab::Config {
        // The workspace may have changed since it was listed.
        return vec![Command::Config(ConfigCmd::Scan)];
    }
    vec![]
}

fn key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    // The downloads' quit question holds for the very next key only.
    if k.code != KeyCode::Char('q') {
        s.hub.quit_asked = false;
    }
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        // Only a second, deliberate Ctrl-C on the quit question quits without saving: a held key
        // repeats, and a guard opened by a tab switch or a file switch is not a quit question.
        let asked_quit = matches!(&s.overlay, Overlay::Config(o)
            if matches!(**o, ConfigOverlay::Unsaved { then: After::Quit }));
        if s.config.dirty() && asked_quit && k.kind == KeyEventKind::Repeat {
            return vec![];
        }
        if k.kind != KeyEventKind::Repeat && datasets::guard_quit(s) {
            return vec![];
        }
        if s.config.dirty() && !asked_quit {
            let cmds = config::leave(s, After::Quit);
            s.status = Some((
                Level::Warn,
                "unsaved changes: s save, d discard, Esc cancel (Ctrl-C again quits without saving)"
                    .into(),
            ));
            return cmds;
        }
        if matches!(s.overlay, Overlay::Stopping { .. }) {
            s.status = Some((
                Level::Warn,
                "quitting once the stop under way has finished (SIGKILL follows the grace period)"
                    .into(),
            ));
        }
        s.quit = true;
        return vec![Command::Quit];
    }
    // Overlays take keys first.
    match &s.overlay {
        Overlay::Config(_) => return config::overlay_key(s, k),
        Overlay::Downloads => return hub::overlay_key(s, k),
        Overlay::Help | Overlay::Details | Overlay::StopResult(_) => {
            if matches!(
                k.code,
                KeyCode::Esc
                    | KeyCode::Enter
                    | KeyCode::Char('q')
                    | KeyCode::Char('?')
                    | KeyCode::F(1)
            ) {
                s.overlay = Overlay::None;
            }
            return vec![];
        }
        Overlay::Stopping { .. } | Overlay::JobStopping { .. } => return vec![],
        Overlay::JobStopResult(_) => {
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char('?')
            ) {
                s.overlay = Overlay::None;
            }
            return vec![];
        }
        Overlay::ConfirmJobStop { job, kind, .. } => {
            if k.kind == KeyEventKind::Repeat {
                return vec![];
            }
            let (job, kind) = (job.clone(), *kind);
            match k.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    s.overlay = Overlay::JobStopping {
                        job: job.clone(),
                        kind,
                    };
                    return vec![Command::StopJob { job, kind }];
                }
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                    s.overlay = Overlay::None;
                    s.status = Some((Level::Info, "nothing was done".into()));
                }
                _ => {}
            }
            return vec![];
        }
        Overlay::ConfirmStop { group, second } => {
            let (group, second) = (group.clone(), *second);
            // A held or bouncing key must not answer a safety question twice.
            if k.kind == KeyEventKind::Repeat {
                return vec![];
            }
            let confirm = match (group.other_user, second) {
                // Another user's processes: the second step wants a capital Y.
                (true, true) => matches!(k.code, KeyCode::Char('Y')),
                _ => matches!(k.code, KeyCode::Char('y') | KeyCode::Enter),
            };
            match k.code {
                _ if confirm && (!group.other_user || second) => {
                    s.overlay = Overlay::Stopping {
                        pgid: group.pgid,
                        pids: group.members.len(),
                    };
                    return vec![Command::Stop {
                        group,
                        allow_other_users: second,
                    }];
                }
                _ if confirm => {
                    s.overlay = Overlay::ConfirmStop {
                        group,
                        second: true,
                    };
                }
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => {
                    s.overlay = Overlay::None;
                    s.status = Some((Level::Info, "nothing was signalled".into()));
                }
                _ => {}
            }
            return vec![];
        }
        Overlay::None => {}
    }
    if k.code == KeyCode::F(1) {
        s.overlay = Overlay::Help;
        return vec![];
    }
    // Downloads run in the background: their window opens from anywhere, even while typing.
    if k.code == KeyCode::F(6) {
        return hub::open(s);
    }
    if jobs_first(s, &k) {
        return jobs::key(s, k);
    }
    if config::takes_first(s, &k) {
        return config::key(s, k);
    }
    if datasets::wants_key(s, &k) {
        return datasets::key(s, k);
    }
    match k.code {
        KeyCode::Char('q') => {
            if hub::guard_quit(s) {
                return vec![];
            }
            return config::leave(s, After::Quit);
        }
        KeyCode::Char('?') => s.overlay = Overlay::Help,
        KeyCode::Char(c @ '1'..='4') => {
            return switch_tab(s, Tab::ALL[(c as u8 - b'1') as usize]);
        }
        KeyCode::Tab => return switch_tab(s, Tab::ALL[(s.tab.index() + 1) % 4]),
        KeyCode::BackTab => return switch_tab(s, Tab::ALL[(s.tab.index() + 3) % 4]),
        KeyCode::Char('R') | KeyCode::F(5) => {
            s.status = Some((Level::Info, "refreshing".into()));
            if s.tab == Tab::Config {
                return vec![Command::Refresh, Command::Config(ConfigCmd::Scan)];
            }
            if s.tab == Tab::Datasets {
                return vec![Command::Refresh, Command::Datasets(DatasetsCmd::Discover)];
            }
            return vec![Command::Refresh];
        }
        KeyCode::Esc => s.status = None,
        _ if s.tab == Tab::Environment => return env_key(s, k),
        _ if s.tab == Tab::Jobs => return jobs::key(s, k),
        _ if s.tab == Tab::Config => return config::key(s, k),
        _ if s.tab == Tab::Datasets => return datasets::key(s, k),
        _ => {}
    }
    vec![]
}

fn env_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    match k.code {
        KeyCode::Down | KeyCode::Char('j') => s.move_sel(1),
        KeyCode::Up | KeyCode::Char('k') => s.move_sel(-1),
        KeyCode::PageDown => s.move_sel(10),
        KeyCode::PageUp => s.move_sel(-10),
        KeyCode::Home | KeyCode::Char('g') => s.move_sel(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => s.move_sel(isize::MAX / 2),
        KeyCode::Right | KeyCode::Char('l') => s.env.focus = (s.env.focus + 1) % 4,
        KeyCode::Left | KeyCode::Char('h') => s.env.focus = (s.env.focus + 3) % 4,
        KeyCode::Enter if s.rows(s.focus()) > 0 => s.overlay = Overlay::Details,
        KeyCode::Char('r') => {
            if s.env.probe_running {
                s.status = Some((Level::Info, "the environment checks are running".into()));
            } else {
                s.env.probe_running = true;
                return vec![Command::RunChecks];
            }
        }
        KeyCode::Char('x') => match s.selected_group() {
            Ok(group) => {
                if let Some(why) = &group.blocked {
                    s.status = Some((Level::Error, format!("refused: {why}")));
                } else if group.other_user && !s.info.is_root {
                    s.status = Some((
                        Level::Error,
                        format!(
                            "process group {} belongs to another user: only root can end it (run dpgui as root)",
                            group.pgid
                        ),
                    ));
                } else {
                    s.overlay = Overlay::ConfirmStop {
                        group: Box::new(group),
                        second: false,
                    };
                }
            }
            Err(msg) => s.status = Some((Level::Warn, msg)),
        },
        _ => {}
    }
    vec![]
}

fn mouse(s: &mut State, m: MouseEvent) -> Vec<Command> {
    if s.overlay != Overlay::None {
        if let MouseEventKind::Down(MouseButton::Left) = m.kind
            && matches!(
                s.overlay,
                Overlay::Help
                    | Overlay::Details
                    | Overlay::StopResult(_)
                    | Overlay::JobStopResult(_)
            )
        {
            s.overlay = Overlay::None;
        }
        return vec![];
    }
    let pos = Position::new(m.column, m.row);
    let frame = views::frame_layout(s.size);
    match m.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if let Some(i) = views::tab_at(frame.tabs, pos) {
                return switch_tab(s, Tab::ALL[i]);
            }
            if s.tab == Tab::Config
                && let Some(h) = views::config::hit(s, frame.body, pos)
            {
                return config::click(s, h);
            }
            if s.tab == Tab::Environment
                && let Some((panel, row)) = views::environment::hit(s, frame.body, pos)
            {
                s.env.focus = panel.index();
                if let Some(r) = row {
                    s.env.selected[panel.index()] = r;
                }
            }
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp if s.tab == Tab::Environment => {
            if let Some((panel, _)) = views::environment::hit(s, frame.body, pos) {
                s.env.focus = panel.index();
                s.move_sel(if m.kind == MouseEventKind::ScrollDown {
                    1
                } else {
                    -1
                });
            }
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp if s.tab == Tab::Config => {
            if let Some(h) = views::config::hit(s, frame.body, pos) {
                config::wheel(s, h, m.kind == MouseEventKind::ScrollDown);
            }
        }
        _ => {}
    }
    vec![]
}
