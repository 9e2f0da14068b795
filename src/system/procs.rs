//! A snapshot of the machine's processes, read from /proc.
//!
//! A process is identified by pid *and* start time (`ProcId`): pids are reused, so nothing is ever
//! signalled on the strength of a pid alone. Command lines are cached per identity because they
//! never change for a given process, which keeps a 1 s refresh cheap.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A process identity that survives pid reuse: the kernel start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProcId {
    pub pid: u32,
    pub start_ticks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcInfo {
    pub id: ProcId,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub uid: u32,
    pub user: String,
    pub comm: String,
    pub cmdline: Vec<String>,
    /// Wall-clock start time (seconds since the epoch).
    pub started_unix: u64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// `DPGUI_JOB_ID` from the environment, when readable: the tag dpgui puts on its jobs.
    pub job_tag: Option<String>,
    /// Kernel threads have no command line and never matter here.
    pub kernel_thread: bool,
}

impl ProcInfo {
    pub fn pid(&self) -> u32 {
        self.id.pid
    }

    /// The command line as one display string (arguments joined by spaces).
    pub fn command(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }

    pub fn age(&self, now: SystemTime) -> Duration {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Duration::from_secs(now.saturating_sub(self.started_unix))
    }
}

/// Facts needed to turn kernel tick counts into wall-clock times.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub boot_time_unix: u64,
    pub ticks_per_second: u64,
}

impl Clock {
    pub fn read() -> Self {
        Clock {
            boot_time_unix: procfs::boot_time_secs().unwrap_or(0),
            ticks_per_second: procfs::ticks_per_second().max(1),
        }
    }

    pub fn started_unix(&self, start_ticks: u64) -> u64 {
        self.boot_time_unix + start_ticks / self.ticks_per_second
    }
}

/// All processes visible to this user at one moment.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    pub procs: HashMap<u32, ProcInfo>,
    pub taken_at: Option<SystemTime>,
}

impl ProcessTable {
    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    /// The process with this pid if it is still the same process (same start time).
    pub fn get_id(&self, id: ProcId) -> Option<&ProcInfo> {
        self.procs.get(&id.pid).filter(|p| p.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProcInfo> {
        self.procs.values()
    }

    pub fn parent(&self, p: &ProcInfo) -> Option<&ProcInfo> {
        self.procs.get(&p.ppid)
    }

    /// Members of a process group, sorted by pid.
    pub fn group(&self, pgid: u32) -> Vec<&ProcInfo> {
        let mut v: Vec<_> = self.procs.values().filter(|p| p.pgid == pgid).collect();
        v.sort_by_key(|p| p.id.pid);
        v
    }

    /// Whether the process was reparented: its parent is init, or a parent younger than itself
    /// (a subreaper that adopted it). Session leaders with ppid 1 are daemons by design.
    pub fn reparented(&self, p: &ProcInfo) -> bool {
        if p.ppid == 1 {
            return p.sid != p.id.pid && p.id.pid != 1;
        }
        match self.parent(p) {
            Some(parent) => parent.id.start_ticks > p.id.start_ticks,
            None => p.ppid != 0,
        }
    }
}

/// Reads the process table, reusing cached command lines and user names.
#[derive(Debug, Default)]
pub struct ProcessScanner {
    cmdlines: HashMap<ProcId, (Vec<String>, Option<String>)>,
    users: HashMap<u32, String>,
    clock: Option<Clock>,
}

impl ProcessScanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn user_name(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| user_name(uid))
            .clone()
    }

    /// Scans /proc. Processes that vanish mid-scan or are unreadable are skipped, never an error.
    pub fn scan(&mut self) -> ProcessTable {
        let mut table = ProcessTable {
            procs: HashMap::new(),
            taken_at: Some(SystemTime::now()),
        };
        let Ok(all) = procfs::process::all_processes() else {
            return table;
        };
        for proc in all.flatten() {
            if let Some(info) = self.read(&proc) {
                table.procs.insert(info.id.pid, info);
            }
        }
        // Forget identities that are gone so the cache stays the size of the table.
        if self.cmdlines.len() > table.procs.len() + 64 {
            self.cmdlines.retain(|id, _| table.get_id(*id).is_some());
        }
        table
    }

    /// Reads only `pids` and their ancestors: enough to describe a few processes (who holds a
    /// port) without paying for a walk over every process on a busy machine.
    pub fn scan_pids(&mut self, pids: &[u32]) -> ProcessTable {
        let mut table = ProcessTable {
            procs: HashMap::new(),
            taken_at: Some(SystemTime::now()),
        };
        let mut todo: Vec<u32> = pids.to_vec();
        while let Some(pid) = todo.pop() {
            if pid == 0 || table.procs.contains_key(&pid) {
                continue;
            }
            let Ok(proc) = procfs::process::Process::new(pid as i32) else {
                continue;
            };
            if let Some(info) = self.read(&proc) {
                todo.push(info.ppid);
                table.procs.insert(pid, info);
            }
        }
        table
    }

    fn read(&mut self, proc: &procfs::process::Process) -> Option<ProcInfo> {
        let clock = *self.clock.get_or_insert_with(Clock::read);
        let stat = proc.stat().ok()?;
        let uid = proc.uid().ok()?;
        let id = ProcId {
            pid: stat.pid as u32,
            start_ticks: stat.starttime,
        };
        // PF_KTHREAD: kernel threads have no memory map and no command line.
        let kernel_thread = stat.flags & 0x0020_0000 != 0;
        let (cmdline, job_tag) = match self.cmdlines.get(&id) {
            Some(c) => c.clone(),
            None => {
                let cmdline = if kernel_thread {
                    Vec::new()
                } else {
                    proc.cmdline().unwrap_or_default()
                };
                let job_tag = if !kernel_thread && is_interesting(&cmdline) {
                    read_job_tag(proc)
                } else {
                    None
                };
                self.cmdlines.insert(id, (cmdline.clone(), job_tag.clone()));
                (cmdline, job_tag)
            }
        };
        let user = self.user_name(uid);
        Some(ProcInfo {
            id,
            ppid: stat.ppid.max(0) as u32,
            pgid: stat.pgrp.max(0) as u32,
            sid: stat.session.max(0) as u32,
            uid,
            user,
            comm: stat.comm,
            cmdline,
            started_unix: clock.started_unix(stat.starttime),
            rss_bytes: stat.rss * procfs::page_size(),
            job_tag,
            kernel_thread,
        })
    }
}

/// Only training-looking processes get their environment read (it is the expensive part).
fn is_interesting(cmdline: &[String]) -> bool {
    crate::trainer::procs::classify(cmdline).is_some()
}

fn read_job_tag(proc: &procfs::process::Process) -> Option<String> {
    let env = proc.environ().ok()?;
    env.get(std::ffi::OsStr::new(crate::jobs::JOB_TAG_VAR))
        .map(|v| v.to_string_lossy().into_owned())
}

/// Reads one process's identity directly, for re-checks right before a signal.
pub fn read_identity(pid: u32) -> Option<ProcId> {
    let stat = procfs::process::Process::new(pid as i32).ok()?.stat().ok()?;
    Some(ProcId {
        pid,
        start_ticks: stat.starttime,
    })
}

/// Whether this exact process (pid and start time) is still alive and not a zombie.
pub fn is_alive(id: ProcId) -> bool {
    let Ok(p) = procfs::process::Process::new(id.pid as i32) else {
        return false;
    };
    match p.stat() {
        Ok(stat) => stat.starttime == id.start_ticks && stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    }
}

pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

pub fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Compact human age: "45s", "12m", "3h04m", "2d05h".
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_this_process_with_identity() {
        let mut scanner = ProcessScanner::new();
        let table = scanner.scan();
        let me = std::process::id();
        let info = table.get(me).expect("own process is listed");
        assert_eq!(Some(info.id), read_identity(me));
        assert!(is_alive(info.id));
        assert!(!info.cmdline.is_empty());
        assert_eq!(info.uid, current_uid());
        // A different start time is a different process.
        let other = ProcId {
            pid: me,
            start_ticks: info.id.start_ticks + 1,
        };
        assert!(!is_alive(other));
        assert!(table.get_id(other).is_none());
    }

    #[test]
    fn ages_format_compactly() {
        assert_eq!(format_age(Duration::from_secs(5)), "5s");
        assert_eq!(format_age(Duration::from_secs(125)), "2m");
        assert_eq!(format_age(Duration::from_secs(3 * 3600 + 4 * 60)), "3h04m");
        assert_eq!(format_age(Duration::from_secs(2 * 86400 + 5 * 3600)), "2d05h");
    }

    fn info(pid: u32, ppid: u32, sid: u32, start: u64) -> ProcInfo {
        ProcInfo {
            id: ProcId {
                pid,
                start_ticks: start,
            },
            ppid,
            pgid: pid,
            sid,
            uid: 0,
            user: "root".into(),
            comm: "x".into(),
            cmdline: vec!["x".into()],
            started_unix: 0,
            rss_bytes: 0,
            job_tag: None,
            kernel_thread: false,
        }
    }

    #[test]
    fn reparenting_is_detected() {
        let mut t = ProcessTable::default();
        for p in [
            info(1, 0, 1, 1),
            info(10, 1, 10, 50),   // daemon: session leader under init
            info(11, 1, 10, 60),   // orphan: under init, not a session leader
            info(20, 10, 10, 100), // normal child of an older parent
            info(30, 40, 10, 100), // adopted by a younger subreaper
            info(40, 1, 40, 200),
        ] {
            t.procs.insert(p.id.pid, p);
        }
        let r = |pid| t.reparented(t.get(pid).unwrap());
        assert!(!r(10));
        assert!(r(11));
        assert!(!r(20));
        assert!(r(30));
    }
}
