//! The job supervisor: `dpgui __supervise <job dir>`, started detached in its own session by a
//! launch, so closing the TUI, a lost SSH connection or `kill -9` of the TUI never touches the
//! job.
//!
//! It starts the DeepSpeed runner in a process group of its own with output to files, becomes
//! the child subreaper (ranks orphaned by a dying runner are reparented to it, so it reaps them
//! and knows when the last process of the job is gone), follows the launcher and rank logs to
//! judge the outcome, discovers the run dir, and keeps the journal current. The journal is ended
//! only when no process of the job is left.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitStatus, waitpid};

use super::journal::{
    self, JobState, Journal, LAUNCHER_LOG, ProgressSummary, RANKS_DIR, RankRecord, StopKind,
};
use crate::system::procs::read_identity;
use crate::system::tail::{TailOptions, Tailer};
use crate::trainer::progress::{LineEvent, Outcome, Progress, RunJudge, parse_line};

/// File descriptor on which the launching process hands over the port lock.
pub const PORT_LOCK_FD: i32 = 3;

/// How often logs and the run dir are looked at while the job runs.
const TICK: Duration = Duration::from_millis(500);
/// Least time between two journal writes for progress alone.
const PROGRESS_WRITE_EVERY: Duration = Duration::from_secs(2);

enum Reaped {
    Child {
        pid: i32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    NoChildrenLeft,
}

/// Entry point of the hidden subcommand. Writes one handshake line on stdout (`ok <pid>` or
/// `error <message>`), then runs until the job's last process is gone. Returns the exit code.
pub fn run(job_dir: &Path) -> i32 {
    // The port lock must not leak into the trainer: mark it close-on-exec (it stays held here).
    // SAFETY: fd 3 is either the lock handed over by the launcher or not open at all; borrowing
    // it for one fcntl call does not take ownership.
    let lock_fd = unsafe { BorrowedFd::borrow_raw(PORT_LOCK_FD) };
    let _ = rustix::io::fcntl_setfd(lock_fd, rustix::io::FdFlags::CLOEXEC);

    let mut j = match Journal::read(job_dir) {
        Ok(j) => j,
        Err(e) => {
            handshake(&format!("error cannot read the job journal: {e}"));
            return 2;
        }
    };
    match start(job_dir, &mut j) {
        Ok(pid) => {
            handshake(&format!("ok {pid}"));
            detach_stdout();
            supervise(job_dir, j, pid)
        }
        Err(reason) => {
            j.finish(JobState::Failed, Some(reason.clone()));
            let _ = j.write(job_dir);
            handshake(&format!("error {reason}"));
            1
        }
    }
}

fn handshake(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.replace('\n', " "));
    let _ = out.flush();
}

/// After the handshake nobody reads stdout: point it at /dev/null so a later write cannot raise
/// SIGPIPE.
fn detach_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

/// Spawns the runner; returns its pid.
fn start(job_dir: &Path, j: &mut Journal) -> Result<u32, String> {
    let me = read_identity(std::process::id());
    j.supervisor = me;
    j.boot_id = journal::boot_id();
    // Orphaned ranks come to us, so we can reap them and see the job's real end.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become the child subreaper: {e}"))?;
    let ranks = job_dir.join(RANKS_DIR);
    std::fs::create_dir_all(&ranks).map_err(|e| format!("{}: {e}", ranks.display()))?;
    let log_path = job_dir.join(LAUNCHER_LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let plan = &j.plan;
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .current_dir(&plan.cwd)
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", plan.program.display()))?;
    let pid = child.id();
    // Reaped by the waitpid loop below, not through the handle.
    std::mem::forget(child);
    j.launcher = read_identity(pid);
    j.pgid = Some(pid);
    j.started = Some(journal::now_unix());
    j.state = JobState::Running;
    j.write(job_dir)
        .map_err(|e| format!("cannot write the journal: {e}"))?;
    Ok(pid)
}

fn spawn_reaper() -> mpsc::Receiver<Reaped> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        loop {
            match waitpid(None, None) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    let _ = tx.send(Reaped::Child {
                        pid: pid.as_raw(),
                        code: Some(code),
                        signal: None,
                    });
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    let _ = tx.send(Reaped::Child {
                        pid: pid.as_raw(),
                        code: None,
                        signal: Some(sig as i32),
                    });
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    let _ = tx.send(Reaped::NoChildrenLeft);
                    return;
                }
            }
        }
    });
    rx
}

/// Everything followed while the job runs.
struct Watch {
    launcher: Tailer,
    ranks: BTreeMap<u32, Tailer>,
    judge: RunJudge,
    progress: Progress,
    ranks_dir: PathBuf,
    run_dirs_before: Vec<String>,
}

fn small_tail() -> TailOptions {
    // The supervisor only needs each line once, not a scrollback.
    TailOptions {
        max_lines: 16,
        ..TailOptions::default()
    }
}

/// `20261129153501_rank3.log` → 3.
pub fn rank_of_log(name: &str) -> Option<u32> {
    name.strip_suffix(".log")?
        .rsplit_once("_rank")?
        .1
        .parse()
        .ok()
}

/// diffusion-pipe's run dir names: UTC `%Y%m%d_%H-%M-%S`.
pub fn is_run_dir_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 17
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'_',
            11 | 14 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

pub fn list_run_dirs(output_dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(output_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_run_dir_name(n))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Watch {
    fn poll(&mut self, j: &mut Journal) -> bool {
        let mut changed = false;
        let judge = &mut self.judge;
        let mut spawned = Vec::new();
        let _ = self.launcher.poll(&mut |line| {
            judge.feed_launcher(line);
            if let Some(LineEvent::Spawned { pid, local_rank }) = parse_line(line) {
                spawned.push((pid, local_rank));
            }
        });
        for (pid, local_rank) in spawned {
            j.ranks.push(RankRecord {
                local_rank,
                pid,
                start_ticks: read_identity(pid).map(|i| i.start_ticks),
                log: None,
            });
            changed = true;
        }
        if let Ok(rd) = std::fs::read_dir(&self.ranks_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(rank) = rank_of_log(&name)
                    && !self.ranks.contains_key(&rank)
                {
                    self.ranks.insert(rank, Tailer::new(e.path(), small_tail()));
                    if let Some(r) = j.ranks.iter_mut().find(|r| r.local_rank == Some(rank)) {
                        r.log = Some(e.path());
                    }
                    changed = true;
                }
            }
        }
        for (&rank, t) in self.ranks.iter_mut() {
            let progress = &mut self.progress;
            let judge = &mut self.judge;
            let _ = t.poll(&mut |line| {
                judge.feed_rank(rank, line);
                if rank == 0 {
                    progress.feed(line);
                }
            });
        }
        if j.run_dir.is_none()
            && let Some(out) = &j.output_dir
        {
            let now = list_run_dirs(out);
            if let Some(new) = now.iter().rev().find(|n| !self.run_dirs_before.contains(n)) {
                j.run_dir = Some(out.join(new));
                changed = true;
            }
        }
        let summary = summarize(&self.progress, j.epochs, j.max_steps);
        if summary != j.progress {
            j.progress = summary;
        }
        changed
    }
}

/// The journal's view of a run's progress.
pub fn summarize(p: &Progress, epochs: Option<u64>, max_steps: Option<u64>) -> ProgressSummary {
    let total = p.total_steps(epochs, max_steps);
    ProgressSummary {
        epoch: p.epoch,
        step: p.step,
        total_steps: total,
        steps_per_epoch: p.steps_per_epoch,
        loss: p.loss,
        iter_time: p.iter_time,
        eta_secs: p.eta(total).map(|d| d.as_secs()),
        complete: p.complete,
        saved: p.saved.clone(),
        phase: p.caching.clone(),
    }
}

fn supervise(job_dir: &Path, mut j: Journal, runner_pid: u32) -> i32 {
    let reaped = spawn_reaper();
    let run_dirs_before = match (&j.options.resume, &j.output_dir) {
        (_, None) => Vec::new(),
        (crate::trainer::launch::Resume::No, Some(out)) => list_run_dirs(out),
        // A resumed run continues in an existing run dir: the named one, or the latest.
        (crate::trainer::launch::Resume::Dir(d), Some(out)) => {
            j.run_dir = Some(out.join(d));
            Vec::new()
        }
        (crate::trainer::launch::Resume::Latest, Some(out)) => {
            j.run_dir = list_run_dirs(out).pop().map(|d| out.join(d));
            Vec::new()
        }
    };
    let mut w = Watch {
        launcher: Tailer::new(job_dir.join(LAUNCHER_LOG), small_tail()),
        ranks: BTreeMap::new(),
        judge: RunJudge::default(),
        progress: Progress::default(),
        ranks_dir: job_dir.join(RANKS_DIR),
        run_dirs_before,
    };
    let mut last_write = Instant::now();
    let mut dirty = false;
    loop {
        let mut all_gone = false;
        match reaped.recv_timeout(TICK) {
            Ok(Reaped::Child { pid, code, signal }) => {
                if pid as u32 == runner_pid {
                    j.exit_code = code;
                    j.exit_signal = signal;
                    dirty = true;
                }
            }
            Ok(Reaped::NoChildrenLeft) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                all_gone = true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if j.stop.is_none()
            && let Some(req) = journal::read_stop_request(job_dir)
            && req.kind != StopKind::SaveNow
        {
            j.stop = Some(req);
            j.state = JobState::Stopping;
            dirty = true;
        }
        let before = j.progress.clone();
        if w.poll(&mut j) {
            dirty = true;
        }
        if all_gone {
            // One last read: the final lines were written before the processes exited.
            w.poll(&mut j);
            let (state, reason) = judge_end(&w.judge, &w.progress, &j);
            j.finish(state, Some(reason));
            if let Err(e) = j.write(job_dir) {
                eprintln!("dpgui supervisor: cannot write the final journal: {e}");
                return 1;
            }
            return 0;
        }
        let progressed = j.progress != before;
        if dirty || (progressed && last_write.elapsed() >= PROGRESS_WRITE_EVERY) {
            if let Err(e) = j.write(job_dir) {
                eprintln!("dpgui supervisor: cannot write the journal: {e}");
            }
            last_write = Instant::now();
            dirty = false;
        }
    }
}

/// The final state, judged from what the ranks printed (the runner's exit code alone proves
/// nothing: it returns 0 when launch.py is killed) and from what a stop asked for.
pub fn judge_end(judge: &RunJudge, progress: &Progress, j: &Journal) -> (JobState, String) {
    let code = j.exit_code;
    match judge.outcome(code) {
        Outcome::Succeeded if progress.manual_quit => (
            JobState::Stopped,
            "saved a checkpoint and stopped (save_quit)".into(),
        ),
        Outcome::Succeeded => (JobState::Succeeded, "training complete".into()),
        outcome => match j.stop.as_ref().map(|s| s.kind) {
            Some(kind) => (
                JobState::Stopped,
                format!("stopped by request ({})", kind.label()),
            ),
            None => match outcome {
                Outcome::Failed { reason } => (JobState::Failed, reason),
                _ => (
                    JobState::Failed,
                    match (code, j.exit_signal) {
                        (_, Some(sig)) => format!(
                            "the launcher was ended by signal {sig} and no rank reported success"
                        ),
                        (Some(c), _) => format!(
                            "the launcher exited with code {c} and no rank reported success"
                        ),
                        _ => "the job's processes ended without reporting success".into(),
                    },
                ),
            },
        },
    }
}

/// The raw fd number the launcher passes the lock on (for the spawn side).
pub fn lock_fd_of(file: &std::fs::File) -> i32 {
    file.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_log_names_and_run_dir_names() {
        assert_eq!(rank_of_log("20261129153501_rank3.log"), Some(3));
        assert_eq!(rank_of_log("20261129153501_rank.log"), None);
        assert_eq!(rank_of_log("rank0.txt"), None);
        assert!(is_run_dir_name("20261129_15-35-01"));
        assert!(!is_run_dir_name("20261129_15-35-0x"));
        assert!(!is_run_dir_name("epoch1"));
    }
}
