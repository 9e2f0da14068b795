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
use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    // Stopped before it started (a stop while the job was still starting).
    if let Some(req) = journal::read_stop_request(job_dir)
        && req.kind != StopKind::SaveNow
    {
        return Err(format!(
            "stopped by request ({}) before it started",
            req.kind.label()
        ));
    }
    let plan = &j.plan;
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .current_dir(&plan.cwd)
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    // SAFETY: sigaction is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            reset_signal_dispositions();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", plan.program.display()))?;
    let pid = child.id();
    // Reaped by the wait loop below, not through the handle.
    std::mem::forget(child);
    j.launcher = read_identity(pid);
    j.pgid = Some(pid);
    j.started = Some(journal::now_unix());
    j.state = JobState::Running;
    // The job runs now: whatever happens to the journal, it stays supervised (the next write
    // is tried at every tick).
    if let Err(e) = j.write(job_dir) {
        eprintln!("dpgui supervisor: cannot write the journal: {e}");
    }
    Ok(pid)
}

/// Ignored signals survive exec: a launch from `nohup` or a script with `&` would leave SIGINT
/// ignored in every rank and waste the first step of a stop. Back to the defaults. Called
/// between fork and exec: async-signal-safe calls only.
pub fn reset_signal_dispositions() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGCHLD,
        Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_DFL installs no handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

fn spawn_reaper() -> mpsc::Receiver<Reaped> {
    use rustix::process::{WaitOptions, wait};
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        loop {
            match wait(WaitOptions::empty()) {
                Ok(Some((pid, status))) => {
                    let _ = tx.send(Reaped::Child {
                        pid: pid.as_raw_nonzero().get(),
                        code: status.exit_status(),
                        signal: status.terminating_signal(),
                    });
                }
                Ok(None) | Err(rustix::io::Errno::INTR) => {}
                // Only "no children" means the job's tree is gone.
                Err(rustix::io::Errno::CHILD) => {
                    let _ = tx.send(Reaped::NoChildrenLeft);
                    return;
                }
                Err(e) => {
                    eprintln!("dpgui supervisor: wait failed: {e}");
                    std::thread::sleep(TICK);
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

/// Whether `pid`'s environment carries this job's tag.
fn has_tag(pid: u32, id: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("{}={id}", super::JOB_TAG_VAR);
    env.split(|b| *b == 0).any(|kv| kv == want.as_bytes())
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

/// diffusion-pipe's run dir name for a UTC time: `%Y%m%d_%H-%M-%S`.
pub fn run_dir_name_at(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix);
    let d: String = humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    format!("{}_{}-{}-{}", &d[..8], &d[8..10], &d[10..12], &d[12..14])
}

/// The run dir a job started at `started` created: the newest whose name (its creation time)
/// is not older than the job. For readers that cannot wait for the supervisor's next write.
pub fn run_dir_since(output_dir: &Path, started: u64) -> Option<PathBuf> {
    let floor = run_dir_name_at(started.saturating_sub(2));
    list_run_dirs(output_dir)
        .into_iter()
        .rev()
        .find(|n| *n >= floor)
        .map(|n| output_dir.join(n))
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
            // The pid comes from log text: trust it only if that process carries our tag
            // (a rank that already exited, or a pid reused since, is recorded without identity).
            let start_ticks = read_identity(pid)
                .filter(|_| has_tag(pid, &j.id))
                .map(|i| i.start_ticks);
            j.ranks.push(RankRecord {
                local_rank,
                pid,
                start_ticks,
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
    // Set once the reaper has no child left (or died): from then on the job's end is the
    // moment no process carrying its tag is left (some may live outside our tree).
    let mut children_gone = false;
    loop {
        if children_gone {
            std::thread::sleep(TICK);
        } else {
            match reaped.recv_timeout(TICK) {
                Ok(Reaped::Child { pid, code, signal }) => {
                    if pid as u32 == runner_pid {
                        j.exit_code = code;
                        j.exit_signal = signal;
                        // Shown while the rest of the job lingers (ranks stuck in a collective);
                        // replaced by the verdict at the end.
                        j.reason = Some(format!(
                            "the launcher exited ({}); waiting for the job's other processes",
                            match (code, signal) {
                                (_, Some(sig)) => format!("signal {sig}"),
                                (Some(c), _) => format!("code {c}"),
                                _ => "?".into(),
                            }
                        ));
                        dirty = true;
                    }
                }
                Ok(Reaped::NoChildrenLeft) => children_gone = true,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    eprintln!(
                        "dpgui supervisor: the reaper thread ended; watching by process scan"
                    );
                    children_gone = true;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        // A later, harsher request (save-and-stop, then stop) replaces the earlier one.
        if let Some(req) = journal::read_stop_request(job_dir)
            && req.kind != StopKind::SaveNow
            && j.stop
                .as_ref()
                .is_none_or(|cur| harsher(req.kind, cur.kind))
        {
            j.stop = Some(req);
            j.state = JobState::Stopping;
            dirty = true;
        }
        let before = j.progress.clone();
        if w.poll(&mut j) {
            dirty = true;
        }
        let all_gone = children_gone && {
            let table = crate::system::procs::ProcessScanner::new().scan();
            super::store::job_processes(&table, &j).is_empty()
        };
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

/// Whether stop request `a` goes further than `b`.
fn harsher(a: StopKind, b: StopKind) -> bool {
    let rank = |k| match k {
        StopKind::SaveNow => 0,
        StopKind::SaveAndStop => 1,
        StopKind::Stop => 2,
        StopKind::Kill => 3,
    };
    rank(a) > rank(b)
}

/// The final state, judged from what the ranks printed (the runner's exit code alone proves
/// nothing: it returns 0 when launch.py is killed) and from what a stop asked for.
pub fn judge_end(judge: &RunJudge, progress: &Progress, j: &Journal) -> (JobState, String) {
    let code = j.exit_code;
    let outcome = judge.outcome(code);
    let failure = |outcome: Outcome| match outcome {
        Outcome::Failed { reason } => reason,
        _ => match (code, j.exit_signal) {
            (_, Some(sig)) => {
                format!("the launcher was ended by signal {sig} and no rank reported success")
            }
            (Some(c), _) => {
                format!("the launcher exited with code {c} and no rank reported success")
            }
            _ => "the job's processes ended without reporting success".into(),
        },
    };
    match (outcome, j.stop.as_ref().map(|s| s.kind)) {
        (Outcome::Succeeded, _) if progress.manual_quit => (
            JobState::Stopped,
            "saved a checkpoint and stopped (save_quit)".into(),
        ),
        (Outcome::Succeeded, _) => (JobState::Succeeded, "training complete".into()),
        // Asked to save and stop, but it ended without `Manually quitting`: no checkpoint
        // can be assumed.
        (o, Some(StopKind::SaveAndStop)) => (
            JobState::Failed,
            format!(
                "asked to save and stop, but it ended without saving: {}",
                failure(o)
            ),
        ),
        (_, Some(kind)) => (
            JobState::Stopped,
            format!("stopped by request ({})", kind.label()),
        ),
        (o, None) => (JobState::Failed, failure(o)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_found_by_their_creation_time() {
        assert_eq!(run_dir_name_at(1_764_443_190), "20251129_19-06-30");
        let out = tempfile::tempdir().unwrap();
        for n in ["20251129_19-00-00", "20251129_19-06-31", "notes"] {
            std::fs::create_dir(out.path().join(n)).unwrap();
        }
        assert_eq!(
            run_dir_since(out.path(), 1_764_443_190),
            Some(out.path().join("20251129_19-06-31"))
        );
        assert_eq!(run_dir_since(out.path(), 1_764_443_300), None);
    }

    #[test]
    fn rank_log_names_and_run_dir_names() {
        assert_eq!(rank_of_log("20261129153501_rank3.log"), Some(3));
        assert_eq!(rank_of_log("20261129153501_rank.log"), None);
        assert_eq!(rank_of_log("rank0.txt"), None);
        assert!(is_run_dir_name("20261129_15-35-01"));
        assert!(!is_run_dir_name("20261129_15-35-0x"));
        assert!(!is_run_dir_name("epoch1"));
    }

    fn judged(
        launcher: &[&str],
        rank0: &[&str],
        stop: Option<StopKind>,
        exit: i32,
    ) -> (JobState, String) {
        let mut judge = RunJudge::default();
        let mut progress = Progress::default();
        for l in launcher {
            judge.feed_launcher(l);
        }
        for l in rank0 {
            judge.feed_rank(0, l);
            progress.feed(l);
        }
        let mut j = journal::sample("t");
        j.exit_code = Some(exit);
        j.stop = stop.map(|kind| journal::StopRequest { kind, at: 0 });
        judge_end(&judge, &progress, &j)
    }

    #[test]
    fn the_end_is_judged_by_the_ranks_and_by_what_was_asked() {
        let spawned = "[2026-11-29 15:55:47,363] [INFO] [launch.py:272:main] process 11 spawned with command: ['python', '-u', 'train.py', '--local_rank=0']";
        let ok =
            "[2026-11-29 15:55:54,372] [INFO] [launch.py:367:main] Process 11 exits successfully.";
        assert_eq!(
            judged(&[spawned, ok], &["TRAINING COMPLETE!"], None, 0).0,
            JobState::Succeeded
        );
        // Save and stop that did save.
        let (state, why) = judged(
            &[spawned, ok],
            &["Manually quitting"],
            Some(StopKind::SaveAndStop),
            0,
        );
        assert_eq!(state, JobState::Stopped);
        assert!(why.contains("saved a checkpoint"), "{why}");
        // Save and stop that ended without saving is a failure: no checkpoint to resume from.
        let (state, why) = judged(&[spawned], &[], Some(StopKind::SaveAndStop), 0);
        assert_eq!(state, JobState::Failed);
        assert!(
            why.starts_with("asked to save and stop, but it ended without saving"),
            "{why}"
        );
        // A stop is a stop, whatever the exit code.
        assert_eq!(
            judged(&[spawned], &[], Some(StopKind::Stop), 0).0,
            JobState::Stopped
        );
        // The runner exiting 0 with no rank success (launch.py killed) is not success.
        let (state, why) = judged(&[spawned], &[], None, 0);
        assert_eq!(state, JobState::Failed, "{why}");
    }

    #[test]
    fn a_harsher_stop_request_replaces_a_gentler_one() {
        assert!(harsher(StopKind::Stop, StopKind::SaveAndStop));
        assert!(harsher(StopKind::Kill, StopKind::Stop));
        assert!(!harsher(StopKind::SaveAndStop, StopKind::Kill));
    }
}
