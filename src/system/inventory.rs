//! "Can I train on this box right now?": who listens on the watched ports, and which training
//! processes are left over from runs that are not live dpgui jobs. One result, rendered by both
//! the Environment tab and `dpgui ports`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::gpu::GpuSnapshot;
use super::ports::{self, Listener};
use super::procs::{ProcId, ProcInfo, ProcessTable};
use crate::trainer::procs::Role;

/// One process holding a watched port. `pid` is None when the socket's owner is not visible to
/// this user (another user's process, when not root): the port is busy all the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    pub pid: Option<u32>,
    pub uid: u32,
    pub user: String,
    pub cmdline: Vec<String>,
    pub pgid: Option<u32>,
    pub ppid: Option<u32>,
    /// RFC 3339, UTC.
    pub started: Option<String>,
    pub age_secs: Option<u64>,
    pub orphan: bool,
    /// The dpgui job this process belongs to, if it carries a job tag.
    pub job: Option<String>,
    /// Whether that job's supervisor is alive.
    pub job_live: bool,
    /// "deepspeed runner", "launcher", "rank 0", ... for DeepSpeed / diffusion-pipe processes.
    pub training: Option<String>,
    /// Local addresses it listens on, e.g. "0.0.0.0", "::".
    pub addresses: Vec<String>,
    #[serde(skip)]
    pub start_ticks: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortStatus {
    pub port: u16,
    pub listening: bool,
    pub holders: Vec<Holder>,
    /// Whether a trainer could bind the port now: checked (bind without listen) when nothing
    /// listens, since a connection using the port, or sockets dpgui could not list, also keep
    /// torch from binding it. None when something listens (then it is busy).
    pub bindable: Option<bool>,
    /// Why listening sockets could not be listed, if they could not (then `bindable` decides).
    pub error: Option<String>,
}

impl PortStatus {
    /// Busy for a trainer: something listens, or the port cannot be bound.
    pub fn busy(&self) -> bool {
        self.listening || self.bindable == Some(false)
    }

    pub fn summary(&self) -> String {
        if !self.listening {
            return if self.busy() {
                "busy: no listener, but it cannot be bound".into()
            } else {
                "free".into()
            };
        }
        let parts: Vec<String> = self
            .holders
            .iter()
            .map(|h| match h.pid {
                Some(pid) => format!("pid {pid} ({})", h.user),
                None => format!("in use by uid {} (pid not visible)", h.uid),
            })
            .collect();
        parts.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub pid: u32,
    pub start_ticks: u64,
    pub ppid: u32,
    pub uid: u32,
    pub user: String,
    pub cmdline: Vec<String>,
    pub role: Option<String>,
    pub age_secs: u64,
    pub rss_bytes: u64,
    pub gpu_memory_bytes: u64,
    pub ports: Vec<u16>,
}

/// Training processes sharing one process group that are not part of a live dpgui job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftoverGroup {
    pub pgid: u32,
    /// Every process of the group: exactly what a stop would signal.
    pub members: Vec<Member>,
    pub orphaned: bool,
    /// Why it counts as orphaned, e.g. "rank 0 (pid 812): its launcher is gone".
    pub orphan_reason: Option<String>,
    pub gpu_memory_bytes: u64,
    pub ports: Vec<u16>,
    /// Members owned by another user (ending them needs root and an extra confirmation).
    pub other_user: bool,
    /// A dpgui job tag whose supervisor is gone.
    pub dead_job: Option<String>,
    /// The `--config` the run was started with, when visible.
    pub config: Option<String>,
    /// Why this group may not be stopped at all (contains dpgui itself or init).
    pub blocked: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inventory {
    pub ports: Vec<PortStatus>,
    pub leftovers: Vec<LeftoverGroup>,
    /// Groups of port holders and GPU processes that are not leftovers.
    #[serde(skip)]
    pub other_groups: Vec<LeftoverGroup>,
    /// pid → pgid for every visible process, to find the group of a GPU process.
    #[serde(skip)]
    pub pid_groups: HashMap<u32, u32>,
    /// Processes whose fds could not be read (other users when not root).
    pub unreadable_pids: usize,
    /// CPU, memory and load of the machine.
    #[serde(skip)]
    pub host: Option<super::host::HostSummary>,
    /// User and command line of the processes NVML reported, to fill in GPU snapshots that
    /// arrive between scans (the GPU sampler does not read /proc).
    #[serde(skip)]
    pub gpu_procs: HashMap<u32, (String, Vec<String>)>,
}

/// Inputs gathered from the machine.
pub struct Facts<'a> {
    pub table: &'a ProcessTable,
    pub listeners: &'a [Listener],
    /// socket inode → pids holding it.
    pub owners: &'a HashMap<u64, Vec<u32>>,
    pub gpu: Option<&'a GpuSnapshot>,
    /// NVML pids confirmed to be local processes (they hold `/dev/nvidia*`); None trusts all.
    pub gpu_local: Option<&'a HashSet<u32>>,
    pub live_jobs: &'a HashSet<String>,
    pub watched: &'a [u16],
    pub own_pid: u32,
    pub now: SystemTime,
}

pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn training_role(p: &ProcInfo) -> Option<Role> {
    p.training.as_ref().map(|t| t.role.clone())
}

/// Why a training process counts as orphaned, if it does.
fn orphan_reason(table: &ProcessTable, p: &ProcInfo) -> Option<String> {
    let role = training_role(p)?;
    let parent_role = table.parent(p).and_then(training_role);
    match role {
        Role::Rank { .. } if !matches!(parent_role, Some(Role::Launcher)) => Some(format!(
            "{} (pid {}): its launcher is gone",
            role.label(),
            p.pid()
        )),
        Role::Launcher if table.reparented(p) => Some(format!(
            "launcher (pid {}): its deepspeed runner is gone",
            p.pid()
        )),
        _ => None,
    }
}

fn is_orphan(table: &ProcessTable, p: &ProcInfo) -> bool {
    orphan_reason(table, p).is_some() || (training_role(p).is_none() && table.reparented(p))
}

/// Builds the inventory from gathered facts (pure, so it is unit-tested with made-up tables).
pub fn assemble(f: &Facts) -> Inventory {
    // pid → ports it listens on (watched ones only).
    let mut pid_ports: HashMap<u32, Vec<u16>> = HashMap::new();
    let mut ports = Vec::new();
    for &port in f.watched {
        let mut holders: Vec<Holder> = Vec::new();
        let socks: Vec<&Listener> = f.listeners.iter().filter(|l| l.port == port).collect();
        for l in &socks {
            let pids = f.owners.get(&l.inode).map(|v| v.as_slice()).unwrap_or(&[]);
            let visible: Vec<&ProcInfo> = pids.iter().filter_map(|p| f.table.get(*p)).collect();
            if visible.is_empty() {
                if let Some(h) = holders
                    .iter_mut()
                    .find(|h| h.pid.is_none() && h.uid == l.uid)
                {
                    push_addr(h, l);
                } else {
                    let mut h = hidden_holder(l.uid, f.table);
                    push_addr(&mut h, l);
                    holders.push(h);
                }
                continue;
            }
            for p in visible {
                let e = pid_ports.entry(p.pid()).or_default();
                if !e.contains(&port) {
                    e.push(port);
                }
                if let Some(h) = holders.iter_mut().find(|h| h.pid == Some(p.pid())) {
                    push_addr(h, l);
                } else {
                    let mut h = holder(f, p);
                    push_addr(&mut h, l);
                    holders.push(h);
                }
            }
        }
        ports.push(PortStatus {
            port,
            listening: !socks.is_empty(),
            holders,
            bindable: None,
            error: None,
        });
    }

    let gpu_mem: HashMap<u32, u64> = f
        .gpu
        .map(|g| {
            let mut m = HashMap::new();
            for gpu in &g.gpus {
                for p in &gpu.processes {
                    if f.gpu_local.is_none_or(|l| l.contains(&p.pid)) {
                        *m.entry(p.pid).or_default() += p.used_memory_bytes.unwrap_or(0);
                    }
                }
            }
            m
        })
        .unwrap_or_default();

    // Groups that contain a training process not owned by a live dpgui job.
    let mut groups: BTreeMap<u32, Option<String>> = BTreeMap::new();
    for p in f.table.iter() {
        if training_role(p).is_none() {
            continue;
        }
        match &p.job_tag {
            Some(tag) if f.live_jobs.contains(tag) => continue,
            tag => {
                let e = groups.entry(p.pgid).or_default();
                if e.is_none() {
                    *e = tag.clone();
                }
            }
        }
    }
    let ctx = GroupCtx {
        f,
        pid_ports: &pid_ports,
        gpu_mem: &gpu_mem,
        me: super::procs::current_uid(),
    };
    let leftovers: Vec<LeftoverGroup> = groups
        .into_iter()
        .map(|(pgid, dead_job)| ctx.build(pgid, dead_job))
        .collect();
    // Any group the UI can point at (a port holder, a GPU process) can be described and ended
    // through the same guarded path.
    let mut other_groups = BTreeMap::new();
    let gpu_pids = gpu_mem.keys().copied();
    let holder_pids = ports
        .iter()
        .flat_map(|p| p.holders.iter().filter_map(|h| h.pid));
    for pid in holder_pids.chain(gpu_pids) {
        if let Some(p) = f.table.get(pid)
            && !leftovers.iter().any(|g| g.pgid == p.pgid)
        {
            other_groups
                .entry(p.pgid)
                .or_insert_with(|| ctx.build(p.pgid, p.job_tag.clone()));
        }
    }
    let pid_groups = f.table.iter().map(|p| (p.pid(), p.pgid)).collect();
    Inventory {
        ports,
        leftovers,
        other_groups: other_groups.into_values().collect(),
        pid_groups,
        unreadable_pids: 0,
        host: None,
        gpu_procs: gpu_mem
            .keys()
            .filter_map(|pid| {
                let p = f.table.get(*pid)?;
                Some((*pid, (p.user.to_string(), p.cmdline.to_vec())))
            })
            .collect(),
    }
}

struct GroupCtx<'a> {
    f: &'a Facts<'a>,
    pid_ports: &'a HashMap<u32, Vec<u16>>,
    gpu_mem: &'a HashMap<u32, u64>,
    me: u32,
}

impl GroupCtx<'_> {
    fn build(&self, pgid: u32, dead_job: Option<String>) -> LeftoverGroup {
        let f = self.f;
        let procs = f.table.group(pgid);
        let orphan_reason = procs.iter().find_map(|p| orphan_reason(f.table, p));
        let members: Vec<Member> = procs
            .iter()
            .map(|p| Member {
                pid: p.pid(),
                start_ticks: p.id.start_ticks,
                ppid: p.ppid,
                uid: p.uid,
                user: p.user.to_string(),
                cmdline: p.cmdline.to_vec(),
                role: training_role(p).map(|r| r.label()),
                age_secs: p.age(f.now).as_secs(),
                rss_bytes: p.rss_bytes,
                gpu_memory_bytes: self.gpu_mem.get(&p.pid()).copied().unwrap_or(0),
                ports: self.pid_ports.get(&p.pid()).cloned().unwrap_or_default(),
            })
            .collect();
        let mut ports: Vec<u16> = members.iter().flat_map(|m| m.ports.clone()).collect();
        ports.sort_unstable();
        ports.dedup();
        let blocked = if members.iter().any(|m| m.pid == f.own_pid) {
            Some("this group contains dpgui itself".to_string())
        } else if members.iter().any(|m| m.pid == 1) || pgid <= 1 {
            Some("this group contains init (pid 1)".to_string())
        } else {
            procs
                .iter()
                .find_map(|p| p.job_tag.as_ref().filter(|t| f.live_jobs.contains(*t)))
                .map(|live| {
                    format!(
                        "this group belongs to the running dpgui job {live}: stop it from the Jobs tab"
                    )
                })
        };
        let config = procs
            .iter()
            .find_map(|p| p.training.as_ref().and_then(|t| t.config.clone()));
        LeftoverGroup {
            pgid,
            orphaned: orphan_reason.is_some(),
            orphan_reason,
            gpu_memory_bytes: members.iter().map(|m| m.gpu_memory_bytes).sum(),
            ports,
            other_user: members.iter().any(|m| m.uid != self.me),
            dead_job,
            config,
            blocked,
            members,
        }
    }
}

impl Inventory {
    /// A described group by pgid: a leftover one or one the UI can point at.
    pub fn group(&self, pgid: u32) -> Option<&LeftoverGroup> {
        self.leftovers
            .iter()
            .chain(&self.other_groups)
            .find(|g| g.pgid == pgid)
    }

    pub fn group_of_pid(&self, pid: u32) -> Option<&LeftoverGroup> {
        self.group(*self.pid_groups.get(&pid)?)
    }

    pub fn port(&self, port: u16) -> Option<&PortStatus> {
        self.ports.iter().find(|p| p.port == port)
    }
}

fn push_addr(h: &mut Holder, l: &Listener) {
    let a = l.addr.to_string();
    if !h.addresses.contains(&a) {
        h.addresses.push(a);
    }
}

fn hidden_holder(uid: u32, table: &ProcessTable) -> Holder {
    let user = table
        .iter()
        .find(|p| p.uid == uid)
        .map(|p| p.user.to_string())
        .unwrap_or_else(|| super::procs::user_name(uid));
    Holder {
        pid: None,
        uid,
        user,
        cmdline: Vec::new(),
        pgid: None,
        ppid: None,
        started: None,
        age_secs: None,
        orphan: false,
        job: None,
        job_live: false,
        training: None,
        addresses: Vec::new(),
        start_ticks: None,
    }
}

fn holder(f: &Facts, p: &ProcInfo) -> Holder {
    Holder {
        pid: Some(p.pid()),
        uid: p.uid,
        user: p.user.to_string(),
        cmdline: p.cmdline.to_vec(),
        pgid: Some(p.pgid),
        ppid: Some(p.ppid),
        started: Some(rfc3339(p.started_unix)),
        age_secs: Some(p.age(f.now).as_secs()),
        orphan: is_orphan(f.table, p),
        job: p.job_tag.clone(),
        job_live: p.job_tag.as_ref().is_some_and(|t| f.live_jobs.contains(t)),
        training: training_role(p).map(|r| r.label()),
        addresses: Vec::new(),
        start_ticks: Some(p.id.start_ticks),
    }
}

/// Finds who holds the watched ports, remembering the answer between refreshes: the walk over
/// every fd on the machine is repeated only when the set of listening sockets changes, a known
/// holder no longer holds its socket, or `FULL_WALK_EVERY` has passed (to catch a process that
/// inherited the socket since). In between, only the known holders' fds are read.
#[derive(Debug, Default)]
pub struct PortScanner {
    /// Why the last listing failed, if it did.
    pub error: Option<String>,
    inodes: HashSet<u64>,
    owners: HashMap<u64, Vec<u32>>,
    unreadable: usize,
    last_full: Option<std::time::Instant>,
}

const FULL_WALK_EVERY: Duration = Duration::from_secs(10);

impl PortScanner {
    /// Makes the next scan walk every fd again (the user asked for a refresh).
    pub fn force_full(&mut self) {
        self.last_full = None;
    }

    pub fn scan(&mut self, watched: &[u16]) -> (Vec<Listener>, HashMap<u64, Vec<u32>>, usize) {
        let listeners = match ports::listeners(Some(watched)) {
            Ok(l) => {
                self.error = None;
                l
            }
            Err(e) => {
                self.error = Some(format!("cannot list listening sockets: {e}"));
                Vec::new()
            }
        };
        let inodes: HashSet<u64> = listeners.iter().map(|l| l.inode).collect();
        if inodes.is_empty() {
            // Nothing listens: no need to walk every process's fds.
            let error = self.error.take();
            *self = PortScanner::default();
            self.error = error;
            return (listeners, HashMap::new(), 0);
        }
        let recent = self
            .last_full
            .is_some_and(|t| t.elapsed() < FULL_WALK_EVERY);
        if recent && inodes == self.inodes {
            let known: Vec<u32> = self.owners.values().flatten().copied().collect();
            let now = ports::inode_owners_among(&inodes, &known);
            if now.owners == self.owners {
                return (listeners, self.owners.clone(), self.unreadable);
            }
        }
        let found = ports::inode_owners(&inodes);
        self.inodes = inodes;
        self.owners = found.owners.clone();
        self.unreadable = found.unreadable_pids;
        self.last_full = Some(std::time::Instant::now());
        (listeners, found.owners, found.unreadable_pids)
    }
}

/// The identities a stop of `group` would signal, re-read from the live table.
pub fn group_targets(group: &LeftoverGroup) -> Vec<super::signals::Target> {
    group
        .members
        .iter()
        .map(|m| super::signals::Target {
            id: ProcId {
                pid: m.pid,
                start_ticks: m.start_ticks,
            },
            uid: m.uid,
        })
        .collect()
}

/// The NVML pids that are local processes: those holding `/dev/nvidia*`. NVML reports host
/// pids; in a container the same number can be an unrelated local process.
pub fn local_gpu_pids(
    snap: &GpuSnapshot,
    table: &ProcessTable,
    scanner: &mut super::procs::ProcessScanner,
) -> HashSet<u32> {
    snap.gpus
        .iter()
        .flat_map(|d| &d.processes)
        .filter_map(|p| table.get(p.pid))
        .filter(|p| scanner.holds_device(p.id, "/dev/nvidia"))
        .map(|p| p.pid())
        .collect()
}

/// Scans the machine now: processes, listeners on `watched`, live dpgui jobs.
pub fn scan(
    scanner: &mut super::procs::ProcessScanner,
    port_scanner: &mut PortScanner,
    watched: &[u16],
    gpu: Option<&GpuSnapshot>,
    state_dir: &std::path::Path,
) -> (Inventory, ProcessTable) {
    let table = scanner.scan_incremental();
    let (listeners, owners, unreadable) = port_scanner.scan(watched);
    let live_jobs: HashSet<String> = crate::jobs::live_jobs(state_dir).into_keys().collect();
    let gpu_local = gpu
        .map(|g| local_gpu_pids(g, &table, scanner))
        .unwrap_or_default();
    let mut inv = assemble(&Facts {
        table: &table,
        listeners: &listeners,
        owners: &owners,
        gpu,
        gpu_local: Some(&gpu_local),
        live_jobs: &live_jobs,
        watched,
        own_pid: std::process::id(),
        now: SystemTime::now(),
    });
    inv.unreadable_pids = unreadable;
    check_unlistened(&mut inv.ports, port_scanner.error.as_deref());
    (inv, table)
}

/// Ports nobody listens on get a bind test: a connection using the port, or a listing that
/// failed, must not pass for "free".
pub fn check_unlistened(ports: &mut [PortStatus], listing_error: Option<&str>) {
    for p in ports.iter_mut().filter(|p| !p.listening) {
        p.bindable = Some(ports::port_is_free(p.port));
        p.error = listing_error.map(str::to_owned);
    }
}

/// Fills in user and command line where the lookup knows the pid and the snapshot does not.
pub fn enrich_gpu_with(
    snap: &mut GpuSnapshot,
    lookup: &dyn Fn(u32) -> Option<(String, Vec<String>)>,
) {
    for gpu in &mut snap.gpus {
        for p in &mut gpu.processes {
            if p.user.is_none()
                && let Some((user, cmdline)) = lookup(p.pid)
            {
                p.user = Some(user);
                p.cmdline = Some(cmdline);
            }
        }
    }
}

/// What ending a group achieved: the ladder's per-pid outcome, then the ports and GPU memory
/// the group held, checked again afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreeReport {
    pub pgid: u32,
    pub outcomes: Vec<super::signals::PidOutcome>,
    pub escalated: bool,
    pub elapsed_ms: u64,
    /// Ports the group held that are free now.
    pub ports_freed: Vec<u16>,
    /// Ports the group held that something still listens on.
    pub ports_still_busy: Vec<u16>,
    /// GPU memory the group held before.
    pub gpu_memory_before: u64,
    /// GPU memory still held by the group's pids after the stop (None: no GPU data).
    pub gpu_memory_after: Option<u64>,
    /// Processes that joined the group after confirmation: never signalled.
    pub newcomers: Vec<u32>,
    /// Confirmed processes still alive after the ladder, checked on the machine (pid and start
    /// time), whatever their fate says.
    pub still_alive: Vec<u32>,
}

impl FreeReport {
    pub fn all_gone(&self) -> bool {
        self.still_alive.is_empty() && self.ports_still_busy.is_empty() && self.newcomers.is_empty()
    }

    pub fn headline(&self) -> String {
        use super::signals::Fate;
        let n = |f: Fate| self.outcomes.iter().filter(|o| o.fate == f).count();
        let mut parts = vec![format!(
            "group {}: {} ended by SIGTERM",
            self.pgid,
            n(Fate::Terminated)
        )];
        if self.escalated {
            parts.push(format!("{} needed SIGKILL", n(Fate::Killed)));
        }
        let gone = n(Fate::PidReused) + n(Fate::AlreadyGone);
        if gone > 0 {
            parts.push(format!("{gone} already gone"));
        }
        if !self.still_alive.is_empty() {
            parts.push(format!("STILL ALIVE: {:?}", self.still_alive));
        }
        if !self.ports_freed.is_empty() {
            parts.push(format!("port {:?} free", self.ports_freed));
        }
        if !self.ports_still_busy.is_empty() {
            parts.push(format!("port {:?} STILL BUSY", self.ports_still_busy));
        }
        if self.gpu_memory_before > 0 {
            match self.gpu_memory_after {
                Some(0) => parts.push(format!(
                    "{} GPU memory released",
                    crate::units::format_bytes(self.gpu_memory_before)
                )),
                Some(b) => parts.push(format!(
                    "{} GPU memory STILL HELD",
                    crate::units::format_bytes(b)
                )),
                None => {}
            }
        }
        parts.join(", ")
    }
}

/// Ends `group` with the guarded ladder, then checks what was freed. Blocking.
pub fn free_group(
    group: &LeftoverGroup,
    opts: super::signals::LadderOptions,
    resample_gpu: &mut dyn FnMut() -> Option<GpuSnapshot>,
) -> FreeReport {
    let targets = group_targets(group);
    let report = super::signals::stop(&targets, opts);
    let still_alive = report.still_alive();
    // Newcomers: processes in the group now that were not confirmed. They are reported, never
    // signalled; after their parents died they are usually gone too.
    let mut scanner = super::procs::ProcessScanner::new();
    let table = scanner.scan();
    let newcomers: Vec<u32> = table
        .group(group.pgid)
        .iter()
        .filter(|p| !group.members.iter().any(|m| m.pid == p.pid()))
        .map(|p| p.pid())
        .collect();
    let (mut ports_freed, mut ports_still_busy) = (Vec::new(), Vec::new());
    if !group.ports.is_empty() {
        let still = ports::listeners(Some(&group.ports)).unwrap_or_default();
        for &p in &group.ports {
            // Free means nothing listens *and* a trainer could bind it.
            if still.iter().any(|l| l.port == p) || !ports::port_is_free(p) {
                ports_still_busy.push(p);
            } else {
                ports_freed.push(p);
            }
        }
    }
    let gpu_memory_after = if group.gpu_memory_bytes > 0 {
        resample_gpu().map(|snap| {
            snap.gpus
                .iter()
                .flat_map(|g| &g.processes)
                .filter(|p| group.members.iter().any(|m| m.pid == p.pid))
                .map(|p| p.used_memory_bytes.unwrap_or(0))
                .sum()
        })
    } else {
        None
    };
    FreeReport {
        pgid: group.pgid,
        outcomes: report.outcomes,
        escalated: report.escalated,
        elapsed_ms: report.elapsed_ms,
        ports_freed,
        ports_still_busy,
        gpu_memory_before: group.gpu_memory_bytes,
        gpu_memory_after,
        newcomers,
        still_alive,
    }
}

/// Only the watched ports and their holders: reads the processes that hold them (and their
/// ancestors, to judge orphans), not the whole process table. What `dpgui ports` prints.
pub fn scan_ports_report(
    scanner: &mut super::procs::ProcessScanner,
    watched: &[u16],
    state_dir: &std::path::Path,
) -> (Vec<PortStatus>, usize) {
    let mut port_scanner = PortScanner::default();
    let (listeners, owners, unreadable) = port_scanner.scan(watched);
    let pids: Vec<u32> = owners.values().flatten().copied().collect();
    let table = scanner.scan_pids(&pids);
    let live_jobs: HashSet<String> = if table.iter().any(|p| p.job_tag.is_some()) {
        crate::jobs::live_jobs(state_dir).into_keys().collect()
    } else {
        HashSet::new()
    };
    let inv = assemble(&Facts {
        table: &table,
        listeners: &listeners,
        owners: &owners,
        gpu: None,
        gpu_local: None,
        live_jobs: &live_jobs,
        watched,
        own_pid: std::process::id(),
        now: SystemTime::now(),
    });
    let mut ports = inv.ports;
    check_unlistened(&mut ports, port_scanner.error.as_deref());
    (ports, unreadable)
}
