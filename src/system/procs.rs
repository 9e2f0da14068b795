//! A snapshot of the machine's processes, read from /proc.
//!
//! A process is identified by pid *and* start time (`ProcId`): pids are reused, so nothing is ever
//! signalled on the strength of a pid alone. Command lines are cached per identity because they
//! never change for a given process, which keeps a 1 s refresh cheap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::trainer::procs::{TrainingProc, classify};

/// A process identity that survives pid reuse: the kernel start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: u32,
    pub start_ticks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub id: ProcId,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub uid: u32,
    pub user: Arc<str>,
    pub comm: String,
    /// Shared with the scanner's cache: a refresh copies a pointer, not the arguments.
    pub cmdline: Arc<[String]>,
    /// Wall-clock start time (seconds since the epoch).
    pub started_unix: u64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// `DPGUI_JOB_ID` from the environment, when readable: the tag dpgui puts on its jobs.
    pub job_tag: Option<String>,
    /// What the argv says about DeepSpeed / diffusion-pipe (classified once per identity).
    pub training: Option<Arc<TrainingProc>>,
    /// Kernel threads have no command line and never matter here.
    pub kernel_thread: bool,
    /// Exited but not yet reaped (its parent has not waited for it): holds nothing any more.
    pub zombie: bool,
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

/// What does not change for one process image: read once, again only after an exec.
#[derive(Debug, Clone)]
struct Cached {
    /// `comm` and the argument area's address when read: an exec keeps pid and start time but
    /// changes these (a `python3` shim that execs the real interpreter, say).
    image: (String, u64, u64),
    cmdline: Arc<[String]>,
    job_tag: Option<String>,
    training: Option<Arc<TrainingProc>>,
}

/// Reads the process table, reusing cached command lines and user names.
///
/// Between full scans (every `FULL_SCAN_EVERY` calls of `scan_incremental`), a process seen last
/// time is carried over without reading its stat again, unless its parent vanished (it was then
/// reparented: that is how orphans appear). New pids are always read. A pid reused between two
/// scans would show stale facts until the next full scan; nothing is ever signalled on them,
/// since the stop ladder re-checks each identity through a pidfd.
#[derive(Debug)]
pub struct ProcessScanner {
    /// Our uid: only our own processes' environments are readable (all of them as root).
    me: u32,
    cmdlines: HashMap<ProcId, Cached>,
    users: HashMap<u32, Arc<str>>,
    clock: Option<Clock>,
    last: HashMap<u32, ProcInfo>,
    since_full: u32,
    /// Identities seen holding a device file (e.g. `/dev/nvidia*`): that never stops while the
    /// process lives, so only positive answers are kept.
    devices: std::collections::HashSet<(ProcId, String)>,
}

/// How many incremental scans run between two full ones (5 s at the default refresh).
pub const FULL_SCAN_EVERY: u32 = 5;

impl Default for ProcessScanner {
    fn default() -> Self {
        ProcessScanner {
            me: current_uid(),
            cmdlines: HashMap::new(),
            users: HashMap::new(),
            clock: None,
            last: HashMap::new(),
            since_full: 0,
            devices: Default::default(),
        }
    }
}

impl ProcessScanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn user_name(&mut self, uid: u32) -> Arc<str> {
        self.users
            .entry(uid)
            .or_insert_with(|| user_name(uid).into())
            .clone()
    }

    /// Scans /proc. Processes that vanish mid-scan or are unreadable are skipped, never an error.
    pub fn scan(&mut self) -> ProcessTable {
        self.since_full = 0;
        self.scan_inner(true)
    }

    /// A scan that re-reads only new processes and those whose parent vanished, and does a
    /// full scan every `FULL_SCAN_EVERY` calls: what the dashboard's 1 s refresh uses.
    pub fn scan_incremental(&mut self) -> ProcessTable {
        let full = self.since_full == 0 || self.last.is_empty();
        self.since_full = (self.since_full + 1) % FULL_SCAN_EVERY;
        self.scan_inner(full)
    }

    /// Whether the process holds an open file whose path starts with `prefix`. Used to check
    /// that a pid NVML reports (a host pid) really is the local process with that number: in a
    /// container without the host PID namespace the same number may be an unrelated process.
    pub fn holds_device(&mut self, id: ProcId, prefix: &str) -> bool {
        let key = (id, prefix.to_string());
        if self.devices.contains(&key) {
            return is_alive(id);
        }
        let found = std::fs::read_dir(format!("/proc/{}/fd", id.pid))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with(prefix))
            });
        // The start time is checked after the fds were read, so they belonged to `id`.
        if found && read_identity(id.pid) == Some(id) {
            self.devices.insert(key);
            return true;
        }
        false
    }

    /// Makes the next `scan_incremental` a full one (the user asked for a refresh).
    pub fn force_full(&mut self) {
        self.since_full = 0;
    }

    fn scan_inner(&mut self, full: bool) -> ProcessTable {
        let mut table = ProcessTable {
            procs: HashMap::with_capacity(self.last.len()),
            taken_at: Some(SystemTime::now()),
        };
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return table;
        };
        let pids: Vec<u32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .collect();
        let last = std::mem::take(&mut self.last);
        let present: std::collections::HashSet<u32> = pids.iter().copied().collect();
        let mut buf = Vec::with_capacity(512);
        for pid in pids {
            let carried = (!full)
                .then(|| last.get(&pid))
                .flatten()
                .filter(|p| p.ppid == 0 || present.contains(&p.ppid));
            let info = match carried {
                Some(p) => Some(p.clone()),
                None => self.read(pid, &mut buf),
            };
            if let Some(info) = info {
                table.procs.insert(pid, info);
            }
        }
        // Forget identities that are gone so the cache stays the size of the table.
        if self.cmdlines.len() > table.procs.len() + 64 {
            self.cmdlines.retain(|id, _| table.get_id(*id).is_some());
        }
        self.last = table.procs.clone();
        table
    }

    /// Reads only `pids` and their ancestors: enough to describe a few processes (who holds a
    /// port) without paying for a walk over every process on a busy machine.
    pub fn scan_pids(&mut self, pids: &[u32]) -> ProcessTable {
        let mut table = ProcessTable {
            procs: HashMap::new(),
            taken_at: Some(SystemTime::now()),
        };
        let mut buf = Vec::with_capacity(512);
        let mut todo: Vec<u32> = pids.to_vec();
        while let Some(pid) = todo.pop() {
            if pid == 0 || table.procs.contains_key(&pid) {
                continue;
            }
            if let Some(info) = self.read(pid, &mut buf) {
                todo.push(info.ppid);
                table.procs.insert(pid, info);
            }
        }
        table
    }

    /// One process: `/proc/<pid>/stat` (opened, its owner taken with fstat, read) on every scan;
    /// the command line and job tag only the first time an identity is seen. Four system calls
    /// per known process keep a 1 s refresh cheap on a busy server.
    fn read(&mut self, pid: u32, buf: &mut Vec<u8>) -> Option<ProcInfo> {
        use std::io::Read;
        let clock = *self.clock.get_or_insert_with(Clock::read);
        let uid = read_uid(pid)?;
        let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
        buf.clear();
        f.read_to_end(buf).ok()?;
        let st = parse_stat(buf)?;
        let id = ProcId {
            pid,
            start_ticks: st.starttime,
        };
        // PF_KTHREAD: kernel threads have no memory map and no command line.
        let kernel_thread = st.flags & 0x0020_0000 != 0;
        let image = (st.comm.clone(), st.arg_start, st.arg_end);
        let cached = match self.cmdlines.get(&id).filter(|c| c.image == image) {
            Some(c) => c.clone(),
            None => {
                let proc = procfs::process::Process::new(pid as i32).ok();
                let cmdline: Arc<[String]> = match (&proc, kernel_thread) {
                    (Some(p), false) => p.cmdline().unwrap_or_default().into(),
                    _ => Arc::from(Vec::new()),
                };
                let training = classify(&cmdline).map(Arc::new);
                // Every process whose environment we may read: a job's compiler, data loader
                // workers or wandb are part of it too, whatever their command line. Once per
                // process image (cached), so a refresh reads only new processes.
                let job_tag = match &proc {
                    Some(p) if !kernel_thread && (uid == self.me || self.me == 0) => {
                        read_job_tag(p)
                    }
                    _ => None,
                };
                let c = Cached {
                    image,
                    cmdline,
                    job_tag,
                    training,
                };
                self.cmdlines.insert(id, c.clone());
                c
            }
        };
        let user = self.user_name(uid);
        Some(ProcInfo {
            id,
            ppid: st.ppid,
            pgid: st.pgrp,
            sid: st.session,
            uid,
            user,
            comm: st.comm,
            cmdline: cached.cmdline,
            started_unix: clock.started_unix(st.starttime),
            rss_bytes: st.rss_pages * procfs::page_size(),
            job_tag: cached.job_tag,
            training: cached.training,
            kernel_thread,
            zombie: matches!(st.state, 'Z' | 'X'),
        })
    }
}

/// The fields of `/proc/<pid>/stat` dpgui uses.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    comm: String,
    state: char,
    ppid: u32,
    pgrp: u32,
    session: u32,
    flags: u64,
    starttime: u64,
    rss_pages: u64,
    /// Where argv lives; 0 when the kernel hides it (another user's process when not root).
    arg_start: u64,
    arg_end: u64,
}

/// Parses `pid (comm) state ppid pgrp session tty tpgid flags ... starttime vsize rss ...`.
/// The command name may contain spaces and parentheses, so fields are counted after the last ')'.
fn parse_stat(buf: &[u8]) -> Option<StatFields> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = buf.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(buf.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(buf.get(close + 1..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |i: usize| f.get(i)?.parse::<i64>().ok();
    Some(StatFields {
        comm,
        state: f.first()?.chars().next()?,
        ppid: num(1)?.max(0) as u32,
        pgrp: num(2)?.max(0) as u32,
        session: num(3)?.max(0) as u32,
        flags: num(6)? as u64,
        starttime: num(19)?.max(0) as u64,
        rss_pages: num(21)?.max(0) as u64,
        arg_start: num(45).unwrap_or(0).max(0) as u64,
        arg_end: num(46).unwrap_or(0).max(0) as u64,
    })
}

fn read_job_tag(proc: &procfs::process::Process) -> Option<String> {
    let env = proc.environ().ok()?;
    env.get(std::ffi::OsStr::new(crate::jobs::JOB_TAG_VAR))
        .map(|v| v.to_string_lossy().into_owned())
}

/// The effective uid of a process: the owner of its `/proc/<pid>` directory. (Files inside it
/// belong to root when the process is not dumpable, e.g. after a setuid; the directory never
/// does.)
pub fn read_uid(pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// Reads one process's identity directly, for re-checks right before a signal.
pub fn read_identity(pid: u32) -> Option<ProcId> {
    let st = parse_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)?;
    Some(ProcId {
        pid,
        start_ticks: st.starttime,
    })
}

/// Whether this exact process (pid and start time) is still alive and not a zombie.
pub fn is_alive(id: ProcId) -> bool {
    std::fs::read(format!("/proc/{}/stat", id.pid))
        .ok()
        .and_then(|b| parse_stat(&b))
        .is_some_and(|st| st.starttime == id.start_ticks && !matches!(st.state, 'Z' | 'X'))
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
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = b"4242 (my (odd) name) S 1 4242 4200 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 987654 1000 321 18446744073709551615\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.comm, "my (odd) name");
        assert_eq!(st.state, 'S');
        assert_eq!((st.ppid, st.pgrp, st.session), (1, 4242, 4200));
        assert_eq!(st.flags, 4194560);
        assert_eq!(st.starttime, 987654);
        assert_eq!(st.rss_pages, 321);
        assert_eq!(
            (st.arg_start, st.arg_end),
            (0, 0),
            "absent on this short line"
        );
        let mut full = String::from("7 (py) S 1 7 7 0 -1 0");
        for i in 10..=52 {
            full.push_str(&format!(" {i}"));
        }
        let st = parse_stat(full.as_bytes()).unwrap();
        assert_eq!((st.starttime, st.arg_start, st.arg_end), (22, 48, 49));
        assert_eq!(parse_stat(b"12 (x) S 1 2"), None, "truncated");
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(&[0xff, b'(', 0xfe, b')']), None);
    }

    #[test]
    fn device_holders_are_recognised_by_their_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("nvidia0");
        let _held = std::fs::File::create(&dev).unwrap();
        let mut scanner = ProcessScanner::new();
        let me = read_identity(std::process::id()).unwrap();
        let prefix = dir.path().join("nvidia").to_string_lossy().into_owned();
        assert!(scanner.holds_device(me, &prefix));
        assert!(scanner.holds_device(me, &prefix), "cached answer");
        assert!(!scanner.holds_device(me, "/dev/definitely-not-open"));
        let stale = ProcId {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(!scanner.holds_device(stale, &prefix), "another identity");
    }

    #[test]
    fn ages_format_compactly() {
        assert_eq!(format_age(Duration::from_secs(5)), "5s");
        assert_eq!(format_age(Duration::from_secs(125)), "2m");
        assert_eq!(format_age(Duration::from_secs(3 * 3600 + 4 * 60)), "3h04m");
        assert_eq!(
            format_age(Duration::from_secs(2 * 86400 + 5 * 3600)),
            "2d05h"
        );
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
            cmdline: vec!["x".to_string()].into(),
            started_unix: 0,
            rss_bytes: 0,
            job_tag: None,
            training: None,
            kernel_thread: false,
            zombie: false,
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
