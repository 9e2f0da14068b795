//! The guarded stop ladder: SIGTERM, a grace period, then SIGKILL, for processes identified by
//! pid *and* start time.
//!
//! Each target is pinned with a pidfd before its identity is re-checked, so the signal can only
//! reach the process that was confirmed: if the pid were reused in between, the start time would
//! differ and nothing is sent. Waiting for exits polls the pidfds (an event), not the clock.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};
use serde::Serialize;

use super::procs::{ProcId, current_uid, read_identity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Ended after SIGINT, within its grace period (the first step of a job's stop ladder).
    Interrupted,
    /// Ended after SIGTERM, within the grace period.
    Terminated,
    /// Ignored SIGTERM and was ended by SIGKILL.
    Killed,
    /// Still alive after SIGKILL (e.g. stuck in uninterruptible I/O).
    Survived,
    /// Already gone before any signal.
    AlreadyGone,
    /// The pid now belongs to another process (start time differs): not signalled.
    PidReused,
    /// Owned by another user and that was not explicitly allowed: not signalled.
    OtherUser,
    /// The kernel refused the signal (EPERM).
    PermissionDenied,
    /// Its owner changed since it was confirmed (a setuid): not signalled.
    OwnerChanged,
    /// It could not be pinned (no pidfd support before Linux 5.3, a seccomp filter, out of
    /// file descriptors): not signalled, since it could not be identified with certainty.
    NotPinned,
}

impl Fate {
    /// What happened, in words (the TUI and the CLI print the same).
    pub fn describe(self) -> &'static str {
        match self {
            Fate::Interrupted => "ended by SIGINT",
            Fate::Terminated => "ended by SIGTERM",
            Fate::Killed => "ignored SIGTERM, ended by SIGKILL",
            Fate::Survived => "SURVIVED SIGKILL",
            Fate::AlreadyGone => "already gone",
            Fate::PidReused => "pid now belongs to another process: not signalled",
            Fate::OtherUser => "another user's: not signalled",
            Fate::PermissionDenied => "permission denied",
            Fate::OwnerChanged => "owner changed since confirmation: not signalled",
            Fate::NotPinned => "could not be pinned with a pidfd: not signalled",
        }
    }

    /// Whether this outcome needs the user's attention.
    pub fn is_problem(self) -> bool {
        !matches!(
            self,
            Fate::Interrupted
                | Fate::Terminated
                | Fate::Killed
                | Fate::AlreadyGone
                | Fate::PidReused
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PidOutcome {
    pub pid: u32,
    pub start_ticks: u64,
    pub fate: Fate,
    /// The error behind `not_pinned` / `permission_denied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LadderReport {
    pub outcomes: Vec<PidOutcome>,
    /// Whether SIGKILL had to be sent to anything.
    pub escalated: bool,
    pub elapsed_ms: u64,
}

impl LadderReport {
    /// Confirmed processes that are still alive now, whatever the reason (not signalled,
    /// refused, or survived SIGKILL): checked against the machine, not inferred from the fates.
    pub fn still_alive(&self) -> Vec<u32> {
        self.outcomes
            .iter()
            .filter(|o| {
                super::procs::is_alive(ProcId {
                    pid: o.pid,
                    start_ticks: o.start_ticks,
                })
            })
            .map(|o| o.pid)
            .collect()
    }

    pub fn fate(&self, pid: u32) -> Option<Fate> {
        self.outcomes.iter().find(|o| o.pid == pid).map(|o| o.fate)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub id: ProcId,
    pub uid: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct LadderOptions {
    /// How long SIGTERM gets before SIGKILL.
    pub grace: Duration,
    /// How long to wait for the kernel to finish off SIGKILLed processes.
    pub kill_wait: Duration,
    /// Signal processes of other users (only meaningful as root, after an extra confirmation).
    pub allow_other_users: bool,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            grace: Duration::from_secs(10),
            kill_wait: Duration::from_secs(5),
            allow_other_users: false,
        }
    }
}

/// A verified handle on one process.
struct Pinned {
    id: ProcId,
    fd: OwnedFd,
    exited: bool,
}

/// Opens a pidfd and then re-checks the start time and the owner; see the module comment for
/// why the order makes this race-free.
fn pin(t: &Target) -> Result<OwnedFd, (Fate, Option<String>)> {
    let id = t.id;
    let pid = Pid::from_raw(id.pid as i32).ok_or((Fate::AlreadyGone, None))?;
    let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Err((Fate::AlreadyGone, None)),
        Err(e) => return Err((Fate::NotPinned, Some(format!("pidfd_open: {e}")))),
    };
    match read_identity(id.pid) {
        Some(now) if now == id => {}
        Some(_) => return Err((Fate::PidReused, None)),
        None => return Err((Fate::AlreadyGone, None)),
    }
    match super::procs::read_uid(id.pid) {
        Some(uid) if uid == t.uid => Ok(fd),
        Some(_) => Err((Fate::OwnerChanged, None)),
        None => Err((Fate::AlreadyGone, None)),
    }
}

fn send(p: &Pinned, sig: Signal) -> Result<(), (Fate, Option<String>)> {
    match rustix::process::pidfd_send_signal(p.fd.as_fd(), sig) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::SRCH) => Err((Fate::AlreadyGone, None)),
        Err(rustix::io::Errno::PERM) => Err((Fate::PermissionDenied, Some("EPERM".into()))),
        Err(e) => Err((Fate::NotPinned, Some(format!("pidfd_send_signal: {e}")))),
    }
}

/// Blocks until every pinned process has exited or `deadline` passes.
fn wait_exits(pinned: &mut [Pinned], deadline: Instant) {
    loop {
        let pending: Vec<usize> = (0..pinned.len()).filter(|&i| !pinned[i].exited).collect();
        if pending.is_empty() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds: Vec<PollFd> = pending
            .iter()
            .map(|&i| PollFd::new(&pinned[i].fd, PollFlags::IN))
            .collect();
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let n = rustix::event::poll(&mut fds, Some(&ts)).unwrap_or(0);
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        for (k, &i) in pending.iter().enumerate() {
            if ready[k] {
                pinned[i].exited = true;
            }
        }
        if n == 0 && Instant::now() >= deadline {
            return;
        }
    }
}

/// Runs the ladder on `targets`: SIGTERM, `opts.grace`, SIGKILL. Blocking: call it from a
/// blocking thread.
pub fn stop(targets: &[Target], opts: LadderOptions) -> LadderReport {
    ladder(targets, &[(Signal::TERM, opts.grace)], opts)
}

/// Sends each polite signal of `steps` in turn to the targets still alive, waiting its grace
/// period for them to exit, then SIGKILLs the rest (waiting `opts.kill_wait`). Blocking.
pub fn ladder(
    targets: &[Target],
    steps: &[(Signal, Duration)],
    opts: LadderOptions,
) -> LadderReport {
    let started = Instant::now();
    let me = current_uid();
    let mut outcomes = Vec::new();
    let mut pinned = Vec::new();
    for t in targets {
        let verdict = if t.uid != me && !opts.allow_other_users {
            Err((Fate::OtherUser, None))
        } else {
            pin(t)
        };
        match verdict {
            Ok(fd) => pinned.push(Pinned {
                id: t.id,
                fd,
                exited: false,
            }),
            Err((fate, error)) => outcomes.push(outcome(t.id, fate, error)),
        }
    }
    // Per pinned process: the step whose signal it was last sent (None: refused or gone).
    let mut last_sent: Vec<Option<Signal>> = vec![None; pinned.len()];
    let mut refused: Vec<(usize, (Fate, Option<String>))> = Vec::new();
    let mut gone_before = vec![false; pinned.len()];
    for &(sig, grace) in steps {
        let step_start = Instant::now();
        for (i, p) in pinned.iter_mut().enumerate() {
            if p.exited {
                continue;
            }
            match send(p, sig) {
                Ok(()) => last_sent[i] = Some(sig),
                Err((Fate::AlreadyGone, _)) => {
                    p.exited = true;
                    gone_before[i] = last_sent[i].is_none();
                }
                // Refused ones are not waited for: they were not signalled.
                Err(e) => {
                    p.exited = true;
                    refused.push((i, e));
                }
            }
        }
        wait_exits(&mut pinned, step_start + grace);
    }
    let mut escalated = false;
    for (i, p) in pinned.iter().enumerate() {
        if !p.exited {
            escalated = true;
            if send(p, Signal::KILL).is_ok() {
                last_sent[i] = Some(Signal::KILL);
            }
        }
    }
    wait_exits(&mut pinned, Instant::now() + opts.kill_wait);
    for (i, p) in pinned.iter().enumerate() {
        let (fate, error) = if let Some((_, (f, e))) = refused.iter().find(|(j, _)| *j == i) {
            (*f, e.clone())
        } else if !p.exited {
            (Fate::Survived, None)
        } else if gone_before[i] {
            (Fate::AlreadyGone, None)
        } else {
            match last_sent[i] {
                Some(Signal::KILL) => (Fate::Killed, None),
                Some(Signal::INT) => (Fate::Interrupted, None),
                _ => (Fate::Terminated, None),
            }
        };
        outcomes.push(outcome(p.id, fate, error));
    }
    outcomes.sort_by_key(|o| o.pid);
    LadderReport {
        outcomes,
        escalated,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Waits until each of `ids` has exited (pidfd poll, no signal sent) or `timeout` passes;
/// returns those still alive. A pid that cannot be pinned or was reused counts as exited.
pub fn wait_for_exit(ids: &[ProcId], timeout: Duration) -> Vec<ProcId> {
    let deadline = Instant::now() + timeout;
    let mut pinned = Vec::new();
    // Processes that exist but cannot be pinned (no pidfd support, a seccomp filter, out of
    // fds): watched by polling /proc instead, never assumed gone.
    let mut polled = Vec::new();
    for &id in ids {
        let Some(pid) = Pid::from_raw(id.pid as i32) else {
            continue;
        };
        match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) if read_identity(id.pid) == Some(id) => pinned.push(Pinned {
                id,
                fd,
                exited: false,
            }),
            Ok(_) | Err(rustix::io::Errno::SRCH) => {}
            Err(_) if super::procs::is_alive(id) => polled.push(id),
            Err(_) => {}
        }
    }
    wait_exits(&mut pinned, deadline);
    while !polled.is_empty() && Instant::now() < deadline {
        polled.retain(|&id| super::procs::is_alive(id));
        if !polled.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pinned
        .into_iter()
        .filter(|p| !p.exited && super::procs::is_alive(p.id))
        .map(|p| p.id)
        .chain(polled.into_iter().filter(|&id| super::procs::is_alive(id)))
        .collect()
}

fn outcome(id: ProcId, fate: Fate, error: Option<String>) -> PidOutcome {
    PidOutcome {
        pid: id.pid,
        start_ticks: id.start_ticks,
        fate,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn spawn_sleep() -> (std::process::Child, ProcId) {
        let child = Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let id = read_identity(child.id()).unwrap();
        (child, id)
    }

    #[test]
    fn sigterm_ends_a_cooperative_process() {
        let (mut child, id) = spawn_sleep();
        let report = stop(
            &[Target {
                id,
                uid: current_uid(),
            }],
            LadderOptions::default(),
        );
        assert_eq!(report.fate(id.pid), Some(Fate::Terminated));
        assert!(!report.escalated);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc_sigterm()));
    }

    fn libc_sigterm() -> i32 {
        Signal::TERM.as_raw()
    }

    #[test]
    fn a_reused_pid_is_never_signalled() {
        let (mut child, id) = spawn_sleep();
        let stale = ProcId {
            pid: id.pid,
            start_ticks: id.start_ticks.wrapping_sub(1),
        };
        let report = stop(
            &[Target {
                id: stale,
                uid: current_uid(),
            }],
            LadderOptions::default(),
        );
        assert_eq!(report.fate(id.pid), Some(Fate::PidReused));
        // The real process must be untouched.
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn other_users_need_explicit_permission() {
        let (mut child, id) = spawn_sleep();
        let report = stop(
            &[Target {
                id,
                uid: current_uid().wrapping_add(4242),
            }],
            LadderOptions::default(),
        );
        assert_eq!(report.fate(id.pid), Some(Fate::OtherUser));
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_job_ladder_starts_with_sigint_and_escalates() {
        let (mut child, id) = spawn_sleep();
        let report = ladder(
            &[Target {
                id,
                uid: current_uid(),
            }],
            &[
                (Signal::INT, Duration::from_secs(5)),
                (Signal::TERM, Duration::from_secs(5)),
            ],
            LadderOptions::default(),
        );
        assert_eq!(report.fate(id.pid), Some(Fate::Interrupted));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(Signal::INT.as_raw()));

        // A process ignoring SIGINT and SIGTERM is killed after both grace periods.
        let mut stubborn = Command::new("python3")
            .args([
                "-c",
                "import signal,sys,time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(300)",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(stubborn.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let id = read_identity(stubborn.id()).unwrap();
        let report = ladder(
            &[Target {
                id,
                uid: current_uid(),
            }],
            &[
                (Signal::INT, Duration::from_millis(200)),
                (Signal::TERM, Duration::from_millis(200)),
            ],
            LadderOptions::default(),
        );
        assert_eq!(report.fate(id.pid), Some(Fate::Killed));
        assert!(report.escalated);
        assert_eq!(
            stubborn.wait().unwrap().signal(),
            Some(Signal::KILL.as_raw())
        );
    }
}
