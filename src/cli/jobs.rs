//! `dpgui launch`, `jobs`, `stop`, `logs`: the Jobs tab without the terminal UI.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{ask, print_json, shown};
use crate::jobs::journal::{JobState, LAUNCHER_LOG, RANKS_DIR, StopKind};
use crate::jobs::launch::{self, Finding, LaunchRequest, MachineFacts, Severity};
use crate::jobs::stop::{self, StopOptions};
use crate::jobs::store::{self, JobView};
use crate::settings::Settings;
use crate::system::inventory;
use crate::system::procs::{ProcessScanner, format_age};

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn print_findings(findings: &[Finding]) {
    for f in findings {
        let icon = match f.severity {
            Severity::Ok => "✓",
            Severity::Warn => "!",
            Severity::Fail => "✗",
        };
        eprintln!("{icon} {}", f.message);
        if let Some(fix) = &f.fix
            && f.severity != Severity::Ok
        {
            eprintln!("    fix: {fix}");
        }
    }
}

#[derive(Serialize)]
struct LaunchJson<'a> {
    dry_run: bool,
    ok: bool,
    id: Option<&'a str>,
    job_dir: Option<&'a Path>,
    port: Option<u16>,
    argv: Option<Vec<String>>,
    cwd: Option<&'a Path>,
    env: Option<&'a [(String, String)]>,
    findings: &'a [Finding],
    error: Option<&'a str>,
}

/// `dpgui launch`
pub fn launch(
    settings: &Settings,
    req: LaunchRequest,
    dry_run: bool,
    json: bool,
) -> color_eyre::Result<i32> {
    let state_dir = crate::paths::state_dir();
    let snap = super::gpu_snapshot();
    let (inv, _) = inventory::scan(
        &mut ProcessScanner::new(),
        &mut inventory::PortScanner::default(),
        &settings.watched_ports,
        Some(&snap),
        &state_dir,
    );
    let path_var = std::env::var("PATH").ok();
    let facts = MachineFacts {
        gpu: &snap,
        inventory: Some(&inv),
        hostfile_exists: Path::new(crate::system::checks::HOSTFILE).exists(),
        path_var: path_var.clone(),
        env: &env_lookup,
    };
    let pre = launch::preflight(&req, settings, &facts, &state_dir);
    let findings = pre.findings.clone();
    if pre.failed() || dry_run {
        let plan = pre.plan.clone();
        if json {
            print_json(&LaunchJson {
                dry_run,
                ok: !pre.failed(),
                id: None,
                job_dir: None,
                port: pre.port.as_ref().map(|p| p.port),
                argv: plan.as_ref().map(|p| p.argv()),
                cwd: plan.as_ref().map(|p| p.cwd.as_path()),
                env: plan.as_ref().map(|p| p.env.as_slice()),
                findings: &findings,
                error: pre.failed().then_some("pre-flight checks failed"),
            })?;
        } else {
            print_findings(&findings);
            if let Some(p) = &plan {
                println!("command: {}", p.display());
                println!("cwd:     {}", p.cwd.display());
                for (k, v) in &p.env {
                    println!("env:     {k}={}", shown(std::slice::from_ref(v)));
                }
                println!(
                    "(dry run: nothing started; the job id and its ranks dir are made at launch)"
                );
            } else {
                eprintln!("not launched: fix the ✗ items above");
            }
        }
        return Ok(if pre.failed() { 1 } else { 0 });
    }
    let exe = std::env::current_exe()?;
    match launch::start(pre, &req, &state_dir, &exe, path_var.as_deref()) {
        Ok(s) => {
            if json {
                print_json(&LaunchJson {
                    dry_run: false,
                    ok: true,
                    id: Some(&s.id),
                    job_dir: Some(&s.job_dir),
                    port: Some(s.port),
                    argv: Some(s.plan.argv()),
                    cwd: Some(&s.plan.cwd),
                    env: Some(&s.plan.env),
                    findings: &findings,
                    error: None,
                })?;
            } else {
                print_findings(&findings);
                eprintln!("command: {}", s.plan.display());
                eprintln!(
                    "started: port {}, logs in {} (`dpgui logs {} --follow`)",
                    s.port,
                    s.job_dir.display(),
                    s.id
                );
                println!("{}", s.id);
            }
            Ok(0)
        }
        Err(e) => {
            if json {
                print_json(&LaunchJson {
                    dry_run: false,
                    ok: false,
                    id: None,
                    job_dir: None,
                    port: None,
                    argv: None,
                    cwd: None,
                    env: None,
                    findings: &findings,
                    error: Some(&e),
                })?;
            } else {
                print_findings(&findings);
                eprintln!("dpgui: launch failed: {e}");
            }
            Ok(1)
        }
    }
}

/// One job in `dpgui jobs --json` (documented in the README).
#[derive(Debug, Serialize)]
pub struct JobJson {
    pub id: String,
    pub state: JobState,
    /// Why it is lost, failed or stopped.
    pub reason: Option<String>,
    pub config: PathBuf,
    pub model_type: Option<String>,
    pub gpus: Vec<u32>,
    pub port: u16,
    pub pgid: Option<u32>,
    pub supervisor_pid: Option<u32>,
    pub run_dir: Option<PathBuf>,
    pub epoch: Option<u64>,
    pub step: Option<u64>,
    pub total_steps: Option<u64>,
    pub loss: Option<f64>,
    pub eta_secs: Option<u64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub processes: usize,
    pub job_dir: PathBuf,
}

pub fn job_json(v: &JobView) -> JobJson {
    let j = &v.journal;
    JobJson {
        id: j.id.clone(),
        state: v.state,
        reason: v.lost.clone().or_else(|| j.reason.clone()),
        config: j.config.clone(),
        model_type: j.model_type.clone(),
        gpus: j.gpus.clone(),
        port: j.port,
        pgid: j.pgid,
        supervisor_pid: j.supervisor.map(|s| s.pid),
        run_dir: j.run_dir.clone(),
        epoch: j.progress.epoch,
        step: j.progress.step,
        total_steps: j.progress.total_steps,
        loss: j.progress.loss.filter(|l| l.is_finite()),
        eta_secs: j.progress.eta_secs.filter(|_| !v.state.ended()),
        exit_code: j.exit_code,
        exit_signal: j.exit_signal,
        started: j.started.map(inventory::rfc3339),
        ended: j.ended_at.map(inventory::rfc3339),
        processes: v.processes.len(),
        job_dir: v.dir.clone(),
    }
}

/// `dpgui jobs`
pub fn jobs(json: bool) -> color_eyre::Result<i32> {
    let state_dir = crate::paths::state_dir();
    let table = ProcessScanner::new().scan();
    let list = store::list(&state_dir, Some(&table));
    if json {
        print_json(&list.iter().map(job_json).collect::<Vec<_>>())?;
        return Ok(0);
    }
    if list.is_empty() {
        println!("no jobs yet; start one with `dpgui launch --config FILE --gpus 0`");
        return Ok(0);
    }
    println!(
        "{:<20} {:<10} {:<22} {:<7} {:<6} {:>5} {:>13} {:>8} {:>8}",
        "ID", "STATE", "CONFIG", "GPUS", "PORT", "EPOCH", "STEP", "LOSS", "ETA"
    );
    let now = crate::jobs::journal::now_unix();
    for v in &list {
        let j = &v.journal;
        let p = &j.progress;
        let gpus: Vec<String> = j.gpus.iter().map(u32::to_string).collect();
        let step = match (p.step, p.total_steps) {
            (Some(s), Some(t)) => format!("{s}/{t}"),
            (Some(s), None) => s.to_string(),
            _ => "-".into(),
        };
        let eta = p
            .eta_secs
            .filter(|_| !v.state.ended())
            .map(|s| format_age(Duration::from_secs(s)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:<10} {:<22} {:<7} {:<6} {:>5} {:>13} {:>8} {:>8}",
            j.id,
            v.state.label(),
            crate::units::ellipsize(&v.config_name(), 22),
            gpus.join(","),
            j.port,
            p.epoch.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
            step,
            p.loss
                .map(|l| format!("{l:.4}"))
                .unwrap_or_else(|| "-".into()),
            eta
        );
        let why = v.lost.clone().or_else(|| j.reason.clone());
        if let Some(w) = why.filter(|_| v.state != JobState::Succeeded) {
            let age = j
                .ended_at
                .map(|e| {
                    format!(
                        " ({} ago)",
                        format_age(Duration::from_secs(now.saturating_sub(e)))
                    )
                })
                .unwrap_or_default();
            println!("    {w}{age}");
        }
    }
    Ok(0)
}

/// `dpgui stop`
pub fn stop_job(
    settings: &Settings,
    query: &str,
    kind: StopKind,
    yes: bool,
    json: bool,
) -> color_eyre::Result<i32> {
    let state_dir = crate::paths::state_dir();
    let table = ProcessScanner::new().scan();
    let view = match store::find(&state_dir, query, Some(&table)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("dpgui: {e}");
            return Ok(2);
        }
    };
    if kind == StopKind::Kill && !yes {
        eprintln!(
            "Kill job {} with SIGKILL: no checkpoint is saved. Processes:",
            view.id()
        );
        for p in &view.processes {
            eprintln!(
                "  pid {:<8} {}",
                p.pid,
                shown(std::slice::from_ref(&p.command))
            );
        }
        if !std::io::stdin().is_terminal() {
            eprintln!("dpgui: not a terminal; pass --yes to confirm");
            return Ok(2);
        }
        if !ask("Kill it?") {
            eprintln!("nothing done");
            return Ok(1);
        }
    }
    let opts = StopOptions {
        interrupt_grace: settings.job_interrupt_grace,
        terminate_grace: settings.job_terminate_grace,
        ..StopOptions::default()
    };
    if kind == StopKind::SaveAndStop && !json {
        eprintln!(
            "asked job {} to save a checkpoint and stop; waiting (Ctrl-C stops waiting, not the job)...",
            view.id()
        );
    }
    let mut resample = || {
        let s = super::gpu_snapshot();
        Some(s)
    };
    match stop::stop(&view, kind, opts, &mut resample) {
        Ok(r) => {
            if json {
                print_json(&r)?;
            } else {
                println!("{}", r.headline());
                if let Some(l) = &r.ladder {
                    for o in &l.outcomes {
                        println!("  pid {:<8} {}", o.pid, o.fate.describe());
                    }
                }
                if let Some(s) = r.final_state {
                    println!("  job state: {}", s.label());
                }
            }
            Ok(if kind == StopKind::SaveNow || r.clean() {
                0
            } else {
                1
            })
        }
        Err(e) => {
            eprintln!("dpgui: {e}");
            Ok(1)
        }
    }
}

/// The log files of a job: the launcher's, then each rank's (rank number, path).
pub fn log_files(job_dir: &Path) -> (PathBuf, Vec<(u32, PathBuf)>) {
    let mut ranks: Vec<(u32, PathBuf)> = std::fs::read_dir(job_dir.join(RANKS_DIR))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    crate::jobs::supervisor::rank_of_log(&name).map(|r| (r, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    ranks.sort();
    (job_dir.join(LAUNCHER_LOG), ranks)
}

/// `dpgui logs`
pub fn logs(
    query: &str,
    rank: Option<u32>,
    launcher: bool,
    follow: bool,
) -> color_eyre::Result<i32> {
    let state_dir = crate::paths::state_dir();
    let view = match store::find(&state_dir, query, None) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("dpgui: {e}");
            return Ok(2);
        }
    };
    let (launcher_log, ranks) = log_files(&view.dir);
    let path = if launcher {
        launcher_log
    } else {
        let want = rank.unwrap_or(0);
        match ranks.iter().find(|(r, _)| *r == want) {
            Some((_, p)) => p.clone(),
            None if rank.is_none() => launcher_log,
            None => {
                eprintln!(
                    "dpgui: job {} has no log for rank {want} (ranks with logs: {:?})",
                    view.id(),
                    ranks.iter().map(|(r, _)| r).collect::<Vec<_>>()
                );
                return Ok(2);
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // Copy whatever is there (bytes as written: a log may hold any bytes).
        if let Ok(mut f) = std::fs::File::open(&path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < pos {
                pos = 0; // truncated
            }
            f.seek(SeekFrom::Start(pos))?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                pos += n as u64;
            }
            out.flush()?;
        }
        if !follow {
            return Ok(0);
        }
        // Follow until the job has ended and its supervisor wrote the last state.
        let ended = crate::jobs::journal::Journal::read(&view.dir)
            .map(|j| j.ended)
            .unwrap_or(true);
        if ended {
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len <= pos {
                return Ok(0);
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
