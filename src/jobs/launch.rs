//! Launching a job: pre-flight checks (each failure one sentence with its fix), the port claim,
//! then the detached supervisor (see `supervisor`), handed the port lock.

use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::journal::{self, JobState, Journal, ProgressSummary, RANKS_DIR, SUPERVISOR_LOG};
use super::port::{self, PortLock, PortRefusal};
use super::supervisor::{PORT_LOCK_FD, list_run_dirs};
use crate::settings::Settings;
use crate::system::gpu::GpuSnapshot;
use crate::system::inventory::Inventory;
use crate::system::python;
use crate::trainer::config::{self, MainConfig};
use crate::trainer::launch::{JobOptions, LaunchInput, LaunchPlan, Resume, plan};
use crate::trainer::lint;

/// What the user asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchRequest {
    pub config: PathBuf,
    pub gpus: Vec<u32>,
    /// None: chosen from the configured range.
    pub port: Option<u16>,
    pub options: JobOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Leftover process groups that hold a selected GPU (ended from the Environment tab).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leftover_pgids: Vec<u32>,
}

fn ok(message: String) -> Finding {
    Finding {
        severity: Severity::Ok,
        message,
        fix: None,
        leftover_pgids: vec![],
    }
}

fn warn(message: String, fix: Option<String>) -> Finding {
    Finding {
        severity: Severity::Warn,
        message,
        fix,
        leftover_pgids: vec![],
    }
}

fn fail(message: String, fix: impl Into<String>) -> Finding {
    Finding {
        severity: Severity::Fail,
        message,
        fix: Some(fix.into()),
        leftover_pgids: vec![],
    }
}

/// The pre-flight result: findings, and when nothing failed the exact command.
#[derive(Debug)]
pub struct Preflight {
    pub findings: Vec<Finding>,
    pub config_path: PathBuf,
    pub config: MainConfig,
    pub output_dir: Option<PathBuf>,
    pub cpu_ranks: bool,
    pub venv_bin: Option<PathBuf>,
    /// Held until the supervisor takes it over (or dropped for a dry run).
    pub port: Option<PortLock>,
    /// The command with a placeholder job dir (the real one is made at start).
    pub plan: Option<LaunchPlan>,
}

impl Preflight {
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Fail)
    }
}

/// Where the machine stands, read by the caller (the TUI has it already; the CLI samples it).
pub struct MachineFacts<'a> {
    pub gpu: &'a GpuSnapshot,
    /// To name leftover groups holding a selected GPU.
    pub inventory: Option<&'a Inventory>,
    pub hostfile_exists: bool,
    pub path_var: Option<String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Absolute path without resolving symlinks (the user's spelling stays recognisable).
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Runs every check; claims the port when the rest allows. Blocking (reads files, binds ports).
pub fn preflight(
    req: &LaunchRequest,
    settings: &Settings,
    m: &MachineFacts,
    state_dir: &Path,
) -> Preflight {
    let mut f = Vec::new();
    let config_path = absolute(&req.config);
    let checkout = absolute(&settings.diffusion_pipe);

    // The config, through the linter: every error diffusion-pipe would hit after minutes of
    // model loading, now (the dataset configs it references included).
    let mut cfg = MainConfig::default();
    match std::fs::read_to_string(&config_path) {
        Err(e) => f.push(fail(
            format!("cannot read config {}: {e}", config_path.display()),
            "check the path given with --config",
        )),
        Ok(text) => {
            cfg = config::read_main(&text);
            let report = lint::lint_main(&config_path, &text, &checkout, &lint::RealFs, None);
            let mut errors = 0;
            for d in &report.diagnostics {
                let msg = format!("{}:{}: {}", d.file.display(), d.line.max(1), d.message);
                match d.severity {
                    lint::Severity::Error => {
                        errors += 1;
                        f.push(fail(
                            msg,
                            d.fix.clone().unwrap_or_else(|| "see `dpgui lint`".into()),
                        ));
                    }
                    lint::Severity::Warning => f.push(warn(msg, d.fix.clone())),
                    lint::Severity::Info => {}
                }
            }
            if errors == 0 {
                f.push(ok(format!(
                    "config {} passes the linter; model type {}",
                    config_path.display(),
                    cfg.model_type.as_deref().unwrap_or("?")
                )));
            }
        }
    }

    // The checkout and the interpreter.
    if !checkout.join("train.py").is_file() {
        f.push(fail(
            format!(
                "no diffusion-pipe checkout at {} (train.py missing)",
                checkout.display()
            ),
            "git clone --recurse-submodules https://github.com/tdrussell/diffusion-pipe there, \
             or set diffusion_pipe in config.toml / --diffusion-pipe",
        ));
    }
    let py = python::locate_python(settings.python.as_deref(), m.env, Some(&checkout));
    let venv_bin = match &py.path {
        None => {
            f.push(fail(
                format!(
                    "no Python interpreter found{}",
                    py.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ),
                "create a venv with Python 3.12+ and set python in config.toml or --python",
            ));
            None
        }
        Some(p) => {
            let bin = p.parent().map(Path::to_path_buf).unwrap_or_default();
            if bin.join("deepspeed").is_file() {
                f.push(ok(format!(
                    "launcher {} (Python {})",
                    bin.join("deepspeed").display(),
                    py.source.describe()
                )));
            } else {
                f.push(fail(
                    format!("no `deepspeed` launcher next to {}", p.display()),
                    format!(
                        "{} -m pip install deepspeed=={}",
                        p.display(),
                        crate::trainer::pin::pin().deepspeed
                    ),
                ));
            }
            Some(bin)
        }
    };

    // The GPUs.
    let mut cpu_ranks = false;
    if req.gpus.is_empty() {
        f.push(fail(
            "no GPU selected".into(),
            "choose GPUs, e.g. --gpus 0 or --gpus 0,1",
        ));
    } else if m.gpu.driver_version.is_none() {
        cpu_ranks = true;
        f.push(warn(
            format!(
                "no NVIDIA GPU usable ({}): the {} rank(s) will run on the CPU",
                m.gpu.error.as_deref().unwrap_or("NVML unavailable"),
                req.gpus.len()
            ),
            Some("fine for tests; real training needs the NVIDIA driver and a GPU".into()),
        ));
    } else {
        let n = m.gpu.gpus.len();
        for &id in &req.gpus {
            match m.gpu.gpu(id) {
                None => f.push(fail(
                    format!("GPU {id} does not exist (this machine has {n})"),
                    format!("choose GPUs among 0..{}", n.saturating_sub(1)),
                )),
                Some(g) if !g.processes.is_empty() => {
                    let mut pgids = Vec::new();
                    let holders: Vec<String> = g
                        .processes
                        .iter()
                        .map(|p| {
                            let mem = p
                                .used_memory_bytes
                                .map(crate::units::format_bytes)
                                .unwrap_or_else(|| "n/a".into());
                            let left = m.inventory.and_then(|inv| inv.group_of_pid(p.pid));
                            if let Some(l) = left {
                                pgids.push(l.pgid);
                            }
                            format!(
                                "pid {} ({}){}",
                                p.pid,
                                mem,
                                left.map(|l| format!(", leftover group {}", l.pgid))
                                    .unwrap_or_default()
                            )
                        })
                        .collect();
                    pgids.sort_unstable();
                    pgids.dedup();
                    let fix = if pgids.is_empty() {
                        "make sure the GPU has room, or choose another".to_string()
                    } else {
                        format!(
                            "end the leftover group(s) from the Environment tab (x) or with `dpgui ports --free {}`",
                            pgids[0]
                        )
                    };
                    let mut w = warn(
                        format!("GPU {id} is in use: {}", holders.join(", ")),
                        Some(fix),
                    );
                    w.leftover_pgids = pgids;
                    f.push(w);
                }
                Some(_) => {}
            }
        }
    }
    if !req.gpus.is_empty() && !config::stages_fit(req.gpus.len(), cfg.pipeline_stages) {
        f.push(fail(
            format!(
                "pipeline_stages = {} does not divide the {} selected GPU(s)",
                cfg.pipeline_stages,
                req.gpus.len()
            ),
            "select a multiple of pipeline_stages GPUs, or change pipeline_stages",
        ));
    }
    if m.hostfile_exists {
        f.push(fail(
            format!(
                "{} exists: the DeepSpeed runner would switch to multi-node mode",
                crate::system::checks::HOSTFILE
            ),
            "move /job/hostfile away for single-machine training",
        ));
    }

    // Resume.
    let output_dir = config::resolve_output_dir(&cfg, &checkout);
    match (&req.options.resume, &output_dir) {
        (Resume::No, _) | (_, None) => {}
        (Resume::Latest, Some(out)) => match list_run_dirs(out).pop() {
            None => f.push(fail(
                format!("nothing to resume: no run dir in {}", out.display()),
                "start without --resume",
            )),
            Some(d) if !out.join(&d).join("latest").exists() => f.push(warn(
                format!("the latest run dir {d} has no resumable checkpoint (no `latest` file)"),
                Some("set checkpoint_every_n_epochs or _minutes so runs can be resumed".into()),
            )),
            Some(d) => f.push(ok(format!("resuming from {}", out.join(d).display()))),
        },
        (Resume::Dir(d), Some(out)) => {
            if !out.join(d).is_dir() {
                f.push(fail(
                    format!("run dir {} does not exist", out.join(d).display()),
                    "name a directory of output_dir, or resume from the latest",
                ));
            }
        }
    }

    // Other jobs that have not ended: their output_dir and their port are taken.
    let active: Vec<super::store::JobView> = super::store::list(state_dir, None)
        .into_iter()
        .filter(|v| !v.journal.ended)
        .collect();
    if let Some(out) = &output_dir
        && let Some(other) = active
            .iter()
            .find(|v| v.journal.output_dir.as_ref() == Some(out))
    {
        let msg = format!(
            "job {} ({}) already writes into output_dir {}: two runs in one output_dir cannot be \
             told apart, and --resume picks the latest",
            other.id(),
            other.state.label(),
            out.display()
        );
        let fix = "wait for it or stop it, or give this config another output_dir";
        f.push(if other.supervised() {
            fail(msg, fix)
        } else {
            warn(msg, Some(fix.into()))
        });
    }
    let avoid: Vec<u16> = active.iter().map(|v| v.journal.port).collect();

    // The port, last: only claimed when everything else passed.
    let mut lock = None;
    if !f.iter().any(|x| x.severity == Severity::Fail) {
        match req.port {
            Some(p) => match port::claim(p) {
                Ok(l) => {
                    f.push(ok(format!("port {p} is free on IPv4 and IPv6")));
                    lock = Some(l);
                }
                Err(PortRefusal::Locked) => f.push(fail(
                    format!("port {p} is being claimed by another dpgui launch"),
                    "use --port auto, or another port",
                )),
                Err(PortRefusal::InUse) => {
                    let holder = m
                        .inventory
                        .and_then(|inv| inv.port(p))
                        .map(|s| format!(": {}", s.summary()))
                        .unwrap_or_default();
                    f.push(fail(
                        format!("port {p} is in use{holder}"),
                        "use --port auto, or free it from the Environment tab / `dpgui ports`",
                    ));
                }
            },
            None => match port::choose(settings.port_range, &avoid) {
                Ok(l) => {
                    f.push(ok(format!(
                        "port {} chosen (free on IPv4 and IPv6, range {}-{})",
                        l.port, settings.port_range.0, settings.port_range.1
                    )));
                    lock = Some(l);
                }
                Err(e) => f.push(fail(e, "widen port_range in config.toml")),
            },
        }
    }

    let plan = match (&lock, &venv_bin) {
        (Some(l), Some(bin)) => Some(plan(&LaunchInput {
            venv_bin: bin,
            checkout: &checkout,
            config: &config_path,
            gpus: &req.gpus,
            port: l.port,
            job_id: "<job id>",
            ranks_dir: &state_dir.join("jobs").join("<job id>").join(RANKS_DIR),
            options: &req.options,
            cpu_ranks,
            path_var: m.path_var.as_deref(),
        })),
        _ => None,
    };
    Preflight {
        findings: f,
        config_path,
        config: cfg,
        output_dir,
        cpu_ranks,
        venv_bin,
        port: lock,
        plan,
    }
}

/// A started job.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub id: String,
    pub job_dir: PathBuf,
    pub port: u16,
    pub supervisor_pid: u32,
    pub launcher_pid: u32,
    pub plan: LaunchPlan,
}

/// A new job id: UTC time plus 32 random bits (ids are matched in process environments, so
/// they must not repeat across users or state dirs), created exclusively as a directory.
fn new_job_dir(jobs: &Path) -> std::io::Result<(String, PathBuf)> {
    std::fs::create_dir_all(jobs)?;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // 2026-11-29T18:55:01Z -> 20261129-185501
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    let base = format!("{}-{}", &digits[..8], &digits[8..14]);
    for _ in 0..16 {
        let id = format!("{base}-{:08x}", random_u32()?);
        let dir = jobs.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not find a free job id"))
}

fn random_u32() -> std::io::Result<u32> {
    use std::io::Read;
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Starts the job: job dir, journal, detached supervisor (which takes over the port lock).
/// Returns once the supervisor has started the launcher, or with its error.
pub fn start(
    pre: Preflight,
    req: &LaunchRequest,
    state_dir: &Path,
    supervisor_exe: &Path,
    path_var: Option<&str>,
) -> Result<Started, String> {
    if pre.failed() {
        return Err("pre-flight checks failed".into());
    }
    let lock = pre.port.ok_or("no port claimed")?;
    let bin = pre.venv_bin.ok_or("no Python environment")?;
    let jobs = super::jobs_dir(state_dir);
    let (id, job_dir) = new_job_dir(&jobs)
        .map_err(|e| format!("cannot create a job dir in {}: {e}", jobs.display()))?;
    let ranks_dir = job_dir.join(RANKS_DIR);
    let plan = plan(&LaunchInput {
        venv_bin: &bin,
        checkout: &pre.plan.as_ref().map(|p| p.cwd.clone()).unwrap_or_default(),
        config: &pre.config_path,
        gpus: &req.gpus,
        port: lock.port,
        job_id: &id,
        ranks_dir: &ranks_dir,
        options: &req.options,
        cpu_ranks: pre.cpu_ranks,
        path_var,
    });
    let j = Journal {
        id: id.clone(),
        config: pre.config_path.clone(),
        model_type: pre.config.model_type.clone(),
        gpus: req.gpus.clone(),
        port: lock.port,
        cpu_ranks: pre.cpu_ranks,
        options: req.options.clone(),
        plan: plan.clone(),
        output_dir: pre.output_dir.clone(),
        epochs: pre.config.epochs,
        max_steps: pre.config.max_steps,
        created: journal::now_unix(),
        boot_id: journal::boot_id(),
        state: JobState::Starting,
        supervisor: None,
        launcher: None,
        pgid: None,
        started: None,
        ranks: vec![],
        run_dir: None,
        progress: ProgressSummary::default(),
        stop: None,
        exit_code: None,
        exit_signal: None,
        ended: false,
        ended_at: None,
        reason: None,
    };
    j.write(&job_dir)
        .map_err(|e| format!("cannot write the journal in {}: {e}", job_dir.display()))?;
    let result = spawn_supervisor(&job_dir, lock, supervisor_exe);
    match result {
        Ok(launcher_pid) => Ok(Started {
            supervisor_pid: Journal::read(&job_dir)
                .ok()
                .and_then(|j| j.supervisor)
                .map(|s| s.pid)
                .unwrap_or(0),
            id,
            job_dir,
            port: plan_port(&plan),
            launcher_pid,
            plan,
        }),
        Err(e) => {
            // Unless the supervisor recorded itself (then it owns the journal), the job never
            // started: say so in the journal instead of leaving it "starting" for ever.
            if let Ok(mut cur) = Journal::read(&job_dir)
                && cur.supervisor.is_none()
                && !cur.ended
            {
                cur.finish(JobState::Failed, Some(format!("did not start: {e}")));
                let _ = cur.write(&job_dir);
            }
            Err(e)
        }
    }
}

/// How long the launching side waits for the supervisor to say it started the launcher.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the supervisor detached and waits for its handshake line; returns the launcher pid.
fn spawn_supervisor(job_dir: &Path, lock: PortLock, supervisor_exe: &Path) -> Result<u32, String> {
    // Claimed long ago in a dialog? Still free now, with the claim still held?
    if !crate::system::ports::port_is_free(lock.port) {
        return Err(format!(
            "port {} was taken since the pre-flight; check again (r)",
            lock.port
        ));
    }
    let sup_log = std::fs::File::create(job_dir.join(SUPERVISOR_LOG))
        .map_err(|e| format!("cannot create the supervisor log: {e}"))?;

    let lock_raw = lock.file.as_raw_fd();
    let mut cmd = Command::new(supervisor_exe);
    cmd.arg("__supervise")
        .arg(job_dir)
        // Not the user's working directory: the job must not keep a mount busy.
        .current_dir(job_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(sup_log);
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl, close_range, sigaction)
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: no controlling terminal, so a closed SSH session (SIGHUP) or the
            // TUI's process group being killed never reaches the job.
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            // Hand the port lock over on a fixed fd, without close-on-exec.
            let src = std::os::fd::BorrowedFd::borrow_raw(lock_raw);
            if lock_raw == PORT_LOCK_FD {
                rustix::io::fcntl_setfd(src, rustix::io::FdFlags::empty())?;
            } else {
                let new = nix::unistd::dup2_raw(src, PORT_LOCK_FD).map_err(std::io::Error::from)?;
                std::mem::forget(new);
            }
            // Any other inherited fd (a terminal the user's shell left open, a driver handle)
            // would stay open for the job's whole life: none passes exec but the lock.
            close_from(PORT_LOCK_FD + 1);
            super::supervisor::reset_signal_dispositions();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "could not start the supervisor {}: {e}",
            supervisor_exe.display()
        )
    })?;
    // The supervisor holds the lock now.
    drop(lock);
    let out = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = out.map(|o| std::io::BufReader::new(o).read_line(&mut line));
        let _ = tx.send((read.is_some_and(|r| r.is_ok()), line));
        // Reap it whenever it ends, so a long-lived TUI does not collect zombies.
        let _ = child.wait();
    });
    let (ok, line) = rx.recv_timeout(HANDSHAKE_TIMEOUT).map_err(|_| {
        format!(
            "the supervisor did not answer within {}s (see {})",
            HANDSHAKE_TIMEOUT.as_secs(),
            job_dir.join(SUPERVISOR_LOG).display()
        )
    })?;
    match (ok, line.trim().split_once(' ')) {
        (true, Some(("ok", pid))) => Ok(pid.parse().unwrap_or(0)),
        (_, Some(("error", msg))) => Err(msg.to_string()),
        _ => {
            let log = std::fs::read_to_string(job_dir.join(SUPERVISOR_LOG)).unwrap_or_default();
            Err(format!(
                "the supervisor ended without starting the job{}",
                if log.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", log.trim())
                }
            ))
        }
    }
}

/// Marks every fd from `first` up close-on-exec, so none survives into the supervisor (between
/// fork and exec: async-signal-safe syscalls only). Marking instead of closing keeps the
/// standard library's own exec-error pipe working.
fn close_from(first: i32) {
    const CLOSE_RANGE_CLOEXEC: nix::libc::c_uint = 1 << 2;
    // SAFETY: close_range and fcntl only change descriptor flags of this (forked) process.
    unsafe {
        if nix::libc::syscall(
            nix::libc::SYS_close_range,
            first as nix::libc::c_uint,
            nix::libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            // Before Linux 5.11: one by one, up to a sane limit.
            for fd in first..4096 {
                nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC);
            }
        }
    }
}

fn plan_port(p: &LaunchPlan) -> u16 {
    p.args
        .iter()
        .find_map(|a| a.strip_prefix("--master_port="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
