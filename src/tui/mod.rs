//! The dashboard: a tokio loop that `select!`s terminal events and machine feeds, feeds them to
//! `app::update`, runs the returned commands, and redraws only when something changed.

pub mod app;
pub mod bench;
pub mod config;
pub mod datasets;
pub mod hub;
pub mod jobs;
pub mod keys;
pub mod theme;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use crossterm::execute;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::jobs::launch::LaunchRequest;
use crate::settings::Settings;
use crate::system::gpu::{self, GpuFeed, NvmlBackend};
use crate::system::inventory;
use crate::system::procs::ProcessScanner;
use crate::system::{checks, python, signals};
use app::{AppInfo, Command, Event, State};
use theme::Theme;

/// Everything the runtime needs, resolved by `main`.
pub struct Options {
    pub settings: Settings,
    pub theme: Theme,
    pub theme_name: String,
    /// Replaces NVML (tests and demos).
    pub gpu_backend: Option<Box<dyn gpu::GpuBackend>>,
    pub exit_after_first_frame: bool,
    /// Open the Jobs tab on this job (`dpgui attach`).
    pub attach: Option<String>,
}

/// Minimum time between two frames (~30 fps): bursts of events coalesce into one draw.
const FRAME: Duration = Duration::from_millis(33);

/// How often a running dataset scan's progress is redrawn.
const SCAN_POLL: Duration = Duration::from_millis(200);

/// How often the dataset on screen is checked for changed files (inotify events, and the
/// modification times of its directories where inotify cannot watch). A change is rescanned
/// after one check with no new event.
const DATASET_WATCH: Duration = Duration::from_secs(1);

/// The Config tab re-lints this long after the last keystroke.
const LINT_DEBOUNCE: Duration = Duration::from_millis(150);

/// How often the download queue is read while a download is queued or running.
const HUB_POLL: Duration = Duration::from_millis(250);

pub async fn run(opts: Options) -> color_eyre::Result<()> {
    // SIGTERM or a hang-up (the SSH connection dropped) ends the app through the normal path,
    // so the terminal is restored whenever there is still one to restore. The handlers are in
    // place before raw mode: a signal that comes with the first frame is queued, not fatal.
    use tokio::signal::unix::{SignalKind, signal};
    let signals = Signals {
        term: signal(SignalKind::terminate())?,
        hup: signal(SignalKind::hangup())?,
    };
    let mut terminal = ratatui::init();
    // Mouse capture is undone on every exit path, including a panic (hook below).
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        prev(info);
    }));
    let result = event_loop(&mut terminal, opts, signals).await;
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    result
}

struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    opts: Options,
    signals: Signals,
) -> color_eyre::Result<()> {
    let Signals {
        term: mut sigterm,
        hup: mut sighup,
    } = signals;
    let settings = Arc::new(opts.settings);
    let theme = opts.theme;
    let size = terminal.size()?;
    let mut state = State::new(AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        theme: opts.theme_name.clone(),
        refresh_secs: settings.refresh.as_secs_f64(),
        stop_grace_secs: settings.stop_grace.as_secs_f64(),
        job_interrupt_grace_secs: settings.job_interrupt_grace.as_secs_f64(),
        job_terminate_grace_secs: settings.job_terminate_grace.as_secs_f64(),
        is_root: crate::system::procs::current_uid() == 0,
        config_file: settings.config_file.display().to_string(),
        config_problems: settings
            .problems
            .iter()
            .map(|p| format!("line {}: {}", p.line, p.message))
            .collect(),
    });
    state.size = ratatui::layout::Rect::new(0, 0, size.width, size.height);
    state.config.dirs = settings.config_dirs.clone();
    state.config.base =
        std::path::absolute(&settings.diffusion_pipe).unwrap_or(settings.diffusion_pipe.clone());
    state.jobs.attach = opts.attach.clone();
    // Hugging Face: the hub's own variables, as Python's huggingface_hub reads them.
    let mut hub_rt = hub::Runtime::new(crate::hub::HubConfig::from_process_env());
    state.hub.sources = settings.hub_sources.clone();
    state.hub.cache_dir = hub_rt.config().cache_dir.clone();
    state.hub.offline = hub_rt.config().offline;
    let recovery = crate::paths::state_dir().join("recovery");
    let kept = std::fs::read_dir(&recovery).map_or(0, |rd| rd.flatten().count());
    if kept > 0 && state.status.is_none() {
        state.status = Some((
            app::Level::Warn,
            format!(
                "{kept} file(s) with edits unsaved when dpgui last ended without asking are kept in {} (o opens one)",
                recovery.display()
            ),
        ));
    }
    if opts.attach.is_some() {
        state.tab = app::Tab::Jobs;
    }
    // First frame before any scan: the user sees the dashboard at once.
    terminal.draw(|f| views::draw(f, &state, &theme))?;
    tracing::info!("first frame drawn");
    if opts.exit_after_first_frame {
        return Ok(());
    }
    // Ask the terminal for its graphics protocol now: the answer is read from stdin, which the
    // event stream below takes over.
    datasets::preview::init(&settings.image_protocol);

    let backend = opts
        .gpu_backend
        .unwrap_or_else(|| Box::new(NvmlBackend::new()));
    let (mut gpu_rx, gpu_handle) =
        gpu::spawn_sampler(backend, settings.refresh, gpu::DEFAULT_HISTORY_LEN);

    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    // The Datasets tab's results: sent from scan threads and from the loop itself.
    let (dtx, mut drx) = mpsc::unbounded_channel::<datasets::DatasetsEvent>();
    let dsend: datasets::run::Send = Arc::new(move |e| {
        let _ = dtx.send(e);
    });
    let (htx, mut hrx) = mpsc::unbounded_channel::<hub::HubEvent>();
    let hsend: hub::Send = Arc::new(move |e| {
        let _ = htx.send(e);
    });
    let mut hub_tick = tokio::time::interval(HUB_POLL);
    hub_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut scan_tick = tokio::time::interval(SCAN_POLL);
    scan_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dataset_watch = datasets::watch::Watcher::new();
    let mut dataset_changed = false;
    let mut watch_tick = tokio::time::interval(DATASET_WATCH);
    watch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (refresh_tx, refresh_rx) = watch::channel(0u64);
    spawn_inventory(settings.clone(), gpu_rx.clone(), refresh_rx, tx.clone());
    let mut checks_task = Some(spawn_checks(settings.clone(), gpu_rx.clone(), tx.clone()));

    let mut events = EventStream::new();
    let mut dirty = false;
    let mut last_draw = Instant::now();
    let mut refreshes = 0u64;
    // A stop that is under way when the user quits (or the SSH connection drops) is finished
    // first: abandoning it between SIGTERM and SIGKILL would leave what ignored SIGTERM running.
    let mut stop_task: Option<tokio::task::JoinHandle<()>> = None;
    // The last pre-flight of the launch dialog: it holds the port it claimed until launched.
    let mut pending: Option<Box<(crate::jobs::launch::Preflight, LaunchRequest)>> = None;
    let mut log_tick = tokio::time::interval(LOG_POLL);
    log_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // When the Config tab's buffers are linted next (a pause after the last keystroke).
    let mut lint_at: Option<tokio::time::Instant> = None;
    // The Config tab's file list, ready before the tab is first shown.
    for c in config_io(&mut state, &settings, config::ConfigCmd::Scan) {
        tracing::debug!(?c, "ignored command after the first scan");
    }
    loop {
        let wait = if dirty {
            FRAME.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let ev = tokio::select! {
            Some(e) = events.next() => match e? {
                crossterm::event::Event::Key(k) => Some(Event::Key(k)),
                crossterm::event::Event::Mouse(m) => Some(Event::Mouse(m)),
                crossterm::event::Event::Resize(w, h) => Some(Event::Resize(w, h)),
                _ => None,
            },
            r = gpu_rx.changed() => match r {
                Ok(()) => Some(Event::Gpu(gpu_rx.borrow_and_update().clone())),
                // The sampler thread only ends early by panicking: the app must not go on half alive.
                Err(_) => return Err(color_eyre::eyre::eyre!("the GPU sampler thread crashed (see the log)")),
            },
            Some(e) = rx.recv() => match e {
                Fatal(msg) => {
                    config::keep_unsaved(&state.config, &crate::paths::state_dir());
                    datasets::keep_unsaved(&state, &crate::paths::state_dir());
                    return Err(color_eyre::eyre::eyre!(msg));
                }
                Ui(e) => Some(e),
                Checked(p) => {
                    let review = review_of(&p.0);
                    pending = Some(p);
                    Some(Event::Review(Box::new(review)))
                }
            },
            Some(e) = drx.recv() => Some(Event::Datasets(e)),
            Some(e) = hrx.recv() => Some(Event::Hub(e)),
            _ = hub_tick.tick(), if state.hub.active() => hub_rt.poll().map(Event::Hub),
            // A scan under way: redraw its progress.
            _ = scan_tick.tick(), if state.datasets.sources.iter().any(|s| s.scan.is_some()) => {
                dirty = true;
                None
            },
            // Files changed under the dataset on screen: scan it again (cached, incremental).
            _ = watch_tick.tick(), if state.tab == app::Tab::Datasets => {
                if let Some(c) = datasets::run::watch_tick(&state, &mut dataset_watch, &mut dataset_changed) {
                    datasets::run::run(c, &state.config.files, &state.config.base, &crate::paths::state_dir(), dsend.clone());
                }
                None
            },
            _ = log_tick.tick(), if state.jobs.logs.is_some() => {
                if poll_logs(&state, &tx) {
                    dirty = true;
                }
                None
            },
            _ = tokio::time::sleep_until(lint_at.unwrap_or_else(tokio::time::Instant::now)), if lint_at.is_some() => {
                lint_at = None;
                config::lint(&state.config).map(Event::Config)
            },
            _ = tokio::time::sleep(wait), if dirty => None,
            // No one to ask: unsaved edits go to recovery files (the next start says where).
            _ = sigterm.recv() => {
                config::keep_unsaved(&state.config, &crate::paths::state_dir());
                datasets::keep_unsaved(&state, &crate::paths::state_dir());
                break;
            }
            _ = sighup.recv() => {
                config::keep_unsaved(&state.config, &crate::paths::state_dir());
                datasets::keep_unsaved(&state, &crate::paths::state_dir());
                break;
            }
        };
        if let Some(ev) = ev {
            let redraw_now = matches!(ev, Event::Key(_) | Event::Mouse(_) | Event::Resize(..));
            // Commands run in order; what they answer at once (the Config tab's file I/O) is
            // fed back to `update`, and the commands that yields run after.
            let mut queue: std::collections::VecDeque<Command> = app::update(&mut state, ev).into();
            while let Some(cmd) = queue.pop_front() {
                match cmd {
                    Command::Quit => {}
                    Command::Refresh => {
                        refreshes += 1;
                        let _ = refresh_tx.send(refreshes);
                        gpu_handle.refresh_now();
                    }
                    Command::RunChecks => {
                        if checks_task.as_ref().is_none_or(|t| t.is_finished()) {
                            checks_task =
                                Some(spawn_checks(settings.clone(), gpu_rx.clone(), tx.clone()));
                        }
                    }
                    Command::StopJob { job, kind } => {
                        let (settings, tx) = (settings.clone(), tx.clone());
                        let waits_for_save = kind == crate::jobs::journal::StopKind::SaveAndStop;
                        let task = tokio::spawn(async move {
                            let run = tokio::task::spawn_blocking(move || {
                                stop_job(&settings, &job, kind)
                            });
                            let msg = match run.await {
                                Ok(r) => Ui(Event::JobStopDone(r.map(Box::new))),
                                Err(e) => Fatal(format!("stopping the job crashed: {e}")),
                            };
                            let _ = tx.send(msg).await;
                        });
                        // A save can take minutes and needs no signal from us: quitting does
                        // not wait for it (the supervisor records the end).
                        if !waits_for_save {
                            stop_task = Some(task);
                        }
                    }
                    Command::OpenJob { id, dir } => {
                        let logs = jobs::JobLogs::open(&id, &dir);
                        for c in app::update(&mut state, Event::JobOpened(jobs::Shared::new(logs)))
                        {
                            tracing::debug!(?c, "ignored command after opening a job");
                        }
                        poll_logs(&state, &tx);
                    }
                    Command::NewLaunch | Command::NewLaunchWith(_) => {
                        let cwd = std::env::current_dir().unwrap_or_default();
                        let mut configs = jobs::config_candidates(
                            &state.jobs.list,
                            &cwd,
                            &crate::paths::config_dir(),
                        );
                        let count = state
                            .env
                            .gpu
                            .as_ref()
                            .and_then(|g| g.snapshot.as_ref())
                            .and_then(|s| s.names())
                            .map(|n| n.len());
                        let chosen = match &cmd {
                            Command::NewLaunchWith(p) => Some(p.clone()),
                            _ => None,
                        };
                        if let Some(p) = &chosen {
                            configs.retain(|c| c != p);
                            configs.insert(0, p.clone());
                        }
                        let mut d = jobs::LaunchDialog::new(configs, count);
                        if let Some(p) = chosen {
                            // From the Config tab: the config is chosen, the GPUs come next.
                            d.config = Some(p);
                            d.step = jobs::LaunchStep::Gpus;
                        }
                        let _ = app::update(&mut state, Event::LaunchDialog(Box::new(d)));
                    }
                    Command::Config(config::ConfigCmd::Lint { debounce }) => {
                        let delay = if debounce {
                            LINT_DEBOUNCE
                        } else {
                            Duration::ZERO
                        };
                        lint_at = Some(tokio::time::Instant::now() + delay);
                    }
                    Command::Config(c) => queue.extend(config_io(&mut state, &settings, c)),
                    Command::Hub(c) => {
                        for e in hub_rt.run(c, &hsend) {
                            queue.extend(app::update(&mut state, Event::Hub(e)));
                        }
                    }
                    Command::Datasets(c) => datasets::run::run(
                        c,
                        &state.config.files,
                        &state.config.base,
                        &crate::paths::state_dir(),
                        dsend.clone(),
                    ),
                    Command::Preflight {
                        config,
                        gpus,
                        options,
                    } => {
                        pending = None;
                        let req = LaunchRequest {
                            config,
                            gpus,
                            port: None,
                            options,
                        };
                        let snap = state
                            .env
                            .gpu
                            .as_ref()
                            .and_then(|g| g.snapshot.clone())
                            .unwrap_or_else(|| gpu::no_nvml_snapshot("no GPU sample yet"));
                        let inv = state.env.inventory.clone();
                        let (settings, tx) = (settings.clone(), tx.clone());
                        tokio::spawn(async move {
                            let run = tokio::task::spawn_blocking(move || {
                                let env = |k: &str| std::env::var(k).ok();
                                let facts = crate::jobs::launch::MachineFacts {
                                    gpu: &snap,
                                    inventory: inv.as_ref(),
                                    hostfile_exists: std::path::Path::new(checks::HOSTFILE)
                                        .exists(),
                                    path_var: std::env::var("PATH").ok(),
                                    env: &env,
                                };
                                let pre = crate::jobs::launch::preflight(
                                    &req,
                                    &settings,
                                    &facts,
                                    &crate::paths::state_dir(),
                                );
                                Box::new((pre, req))
                            });
                            let msg = match run.await {
                                Ok(p) => Checked(p),
                                Err(e) => Fatal(format!("the pre-flight crashed: {e}")),
                            };
                            let _ = tx.send(msg).await;
                        });
                    }
                    Command::CancelLaunch => pending = None,
                    Command::Launch => {
                        let Some(p) = pending.take() else {
                            let _ = app::update(
                                &mut state,
                                Event::Launched(Err("run the pre-flight again (r)".into())),
                            );
                            continue;
                        };
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let run = tokio::task::spawn_blocking(move || {
                                let (pre, req) = *p;
                                let exe = std::env::current_exe()
                                    .map_err(|e| format!("cannot find dpgui's own binary: {e}"))?;
                                let path_var = std::env::var("PATH").ok();
                                crate::jobs::launch::start(
                                    pre,
                                    &req,
                                    &crate::paths::state_dir(),
                                    &exe,
                                    path_var.as_deref(),
                                )
                                .map(|s| s.id)
                            });
                            let msg = match run.await {
                                Ok(r) => Ui(Event::Launched(r)),
                                Err(e) => Fatal(format!("the launch crashed: {e}")),
                            };
                            let _ = tx.send(msg).await;
                        });
                    }
                    Command::Stop {
                        group,
                        allow_other_users,
                    } => {
                        let opts = signals::LadderOptions {
                            grace: settings.stop_grace,
                            allow_other_users,
                            ..Default::default()
                        };
                        let tx = tx.clone();
                        stop_task = Some(tokio::spawn(async move {
                            let job =
                                tokio::task::spawn_blocking(move || {
                                    inventory::free_group(&group, opts, &mut || {
                                        Some(gpu::sample_once())
                                    })
                                });
                            let msg = match job.await {
                                Ok(report) => {
                                    tracing::info!(?report, "stop finished");
                                    Ui(Event::StopDone(Box::new(report)))
                                }
                                Err(e) => Fatal(format!("ending processes crashed: {e}")),
                            };
                            let _ = tx.send(msg).await;
                        }));
                    }
                }
            }
            if state.quit {
                break;
            }
            dirty = true;
            if !redraw_now && last_draw.elapsed() < FRAME {
                continue;
            }
        }
        if dirty {
            terminal.draw(|f| views::draw(f, &state, &theme))?;
            last_draw = Instant::now();
            dirty = false;
        }
    }
    if let Some(task) = stop_task.filter(|t| !t.is_finished()) {
        tracing::info!("quit during a stop: finishing it first");
        let _ = terminal.draw(|f| {
            views::draw(f, &state, &theme);
        });
        let _ = task.await;
    }
    gpu_handle.stop();
    Ok(())
}

/// Runs a Config tab command's file I/O (quick: small files) and feeds the result to `update`;
/// returns the commands that yields.
fn config_io(state: &mut State, settings: &Settings, c: config::ConfigCmd) -> Vec<Command> {
    let job_configs = state
        .jobs
        .list
        .iter()
        .map(|j| j.journal.config.clone())
        .collect();
    let own = crate::paths::config_file();
    let ctx = config::Ctx {
        dirs: &settings.config_dirs,
        state_dir: &crate::paths::state_dir(),
        own_config: &own,
        job_configs,
    };
    let scan = c == config::ConfigCmd::Scan;
    let mut out = match config::run(c, &ctx) {
        Some(e) => app::update(state, Event::Config(e)),
        None => vec![],
    };
    // Each refresh of the list also looks whether an open file changed on disk.
    if scan {
        for e in config::disk_check(&state.config) {
            out.extend(app::update(state, Event::Config(e)));
        }
    }
    out
}

/// What background tasks send: an event for `update`, a pre-flight result (kept by the loop:
/// it holds a port lock), or a failure that must end the app.
enum Msg {
    Ui(Event),
    Checked(Box<(crate::jobs::launch::Preflight, LaunchRequest)>),
    Fatal(String),
}
use Msg::{Checked, Fatal, Ui};

/// How often the open job's logs are read (the issue asks for every line within 250 ms).
const LOG_POLL: Duration = Duration::from_millis(100);

/// Reads what the open job's logs gained; asks for rank 0's history once its log exists.
fn poll_logs(state: &State, tx: &mpsc::Sender<Msg>) -> bool {
    let Some(logs) = &state.jobs.logs else {
        return false;
    };
    let mut l = logs.lock();
    let changed = l.poll();
    if let Some(path) = l.history_request.take() {
        let (id, tx) = (l.job_id.clone(), tx.clone());
        tokio::spawn(async move {
            let scan = tokio::task::spawn_blocking(move || {
                crate::trainer::progress::scan_history(&path).unwrap_or_default()
            });
            if let Ok(p) = scan.await {
                let _ = tx.send(Ui(Event::History(id, Box::new(p)))).await;
            }
        });
    }
    changed
}

/// The pre-flight as the launch dialog shows it.
fn review_of(p: &crate::jobs::launch::Preflight) -> jobs::Review {
    jobs::Review {
        findings: p.findings.clone(),
        failed: p.failed(),
        command: p.plan.as_ref().map(|p| p.display()),
        cwd: p.plan.as_ref().map(|p| p.cwd.display().to_string()),
        env: p.plan.as_ref().map(|p| p.env.clone()).unwrap_or_default(),
        port: p.port.as_ref().map(|l| l.port),
    }
}

/// A stop from the TUI (blocking; runs on a blocking thread).
fn stop_job(
    settings: &Settings,
    job: &str,
    kind: crate::jobs::journal::StopKind,
) -> Result<crate::jobs::stop::StopReport, String> {
    let table = ProcessScanner::new().scan();
    let view = crate::jobs::store::find(&crate::paths::state_dir(), job, Some(&table))?;
    let opts = crate::jobs::stop::StopOptions {
        interrupt_grace: settings.job_interrupt_grace,
        terminate_grace: settings.job_terminate_grace,
        ..Default::default()
    };
    crate::jobs::stop::stop(&view, kind, opts, &mut || Some(gpu::sample_once()))
}

/// Scans processes and ports each time the GPU sampler publishes (so both share one clock), or
/// when a refresh is asked for. The scan itself runs on a blocking thread.
fn spawn_inventory(
    settings: Arc<Settings>,
    mut gpu_rx: watch::Receiver<GpuFeed>,
    mut refresh_rx: watch::Receiver<u64>,
    tx: mpsc::Sender<Msg>,
) {
    tokio::spawn(async move {
        // The scanners keep state between refreshes (caches); they move into each blocking
        // scan and come back with its result.
        let mut scanners = Some((
            ProcessScanner::new(),
            inventory::PortScanner::default(),
            crate::system::host::HostSampler::default(),
        ));
        let state_dir: PathBuf = crate::paths::state_dir();
        let mut forced = false;
        loop {
            let snap = gpu_rx.borrow().snapshot.clone();
            let (s, st) = (settings.clone(), state_dir.clone());
            let (mut procs, mut ports, mut host) = scanners.take().expect("returned by each scan");
            let scan = tokio::task::spawn_blocking(move || {
                if forced {
                    procs.force_full();
                    ports.force_full();
                }
                let (mut inv, table) =
                    inventory::scan(&mut procs, &mut ports, &s.watched_ports, snap.as_ref(), &st);
                inv.host = Some(host.sample());
                let jobs = crate::jobs::store::list(&st, Some(&table));
                (inv, jobs, (procs, ports, host))
            });
            let msg = match scan.await {
                Ok((inv, jobs, back)) => {
                    scanners = Some(back);
                    if tx.send(Ui(Event::Jobs(jobs))).await.is_err() {
                        return;
                    }
                    Ui(Event::Inventory(Box::new(inv)))
                }
                Err(e) => {
                    let _ = tx
                        .send(Fatal(format!("the process scanner crashed: {e}")))
                        .await;
                    return;
                }
            };
            if tx.send(msg).await.is_err() {
                return;
            }
            forced = tokio::select! {
                r = gpu_rx.changed() => if r.is_err() { return } else { false },
                r = refresh_rx.changed() => if r.is_err() { return } else { true },
            };
        }
    });
}

/// Environment checks in two steps: everything that is quick first (the probe shows as
/// pending), then again with the Python probe's result.
fn spawn_checks(
    settings: Arc<Settings>,
    mut gpu_rx: watch::Receiver<GpuFeed>,
    tx: mpsc::Sender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = tx.send(Ui(Event::ChecksStarted)).await;
        // The NCCL advice depends on the GPU names: wait for the first sample (it is quick).
        let gpu_names = match gpu_rx.wait_for(|f| f.snapshot.is_some()).await {
            Ok(feed) => feed.snapshot.as_ref().and_then(|s| s.names()),
            Err(_) => None,
        };
        let facts = checks::CheckFacts::read(
            settings.python.as_deref(),
            &settings.diffusion_pipe,
            gpu_names,
        );
        let eval = |probe: Option<&python::ProbeResult>| {
            let mut c = facts.evaluate(probe);
            c.extend(checks::config_checks(&settings));
            c
        };
        let _ = tx.send(Ui(Event::Checks(eval(None)))).await;
        // Checks resets the "probing" mark: set it again until the probe answers.
        let _ = tx.send(Ui(Event::ChecksStarted)).await;
        let result = facts.probe(settings.probe_timeout).await;
        let _ = tx.send(Ui(Event::Checks(eval(result.as_ref())))).await;
    })
}
