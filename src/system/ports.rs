//! Listening TCP ports and the processes that hold them.
//!
//! Why this exists: diffusion-pipe's rank 0 listens on `--master_port` (29500 by default) and a
//! leftover rank from an earlier run keeps it busy (see reference/diffusion-pipe.md section 2). The
//! dashboard and `dpgui ports` both need "who listens on P" and "can P be bound now"; both
//! renderings call these functions.
//!
//! Sources: `/proc/net/tcp{,6}` for sockets (read in as few kernel walks as possible, parsed as
//! bytes: no regex, no per-line allocation), then `/proc/<pid>/fd/*` links `socket:[inode]` for
//! owners. Both see only the caller's network namespace and, for owners, the processes whose fd
//! tables it may read.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Read as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{CWD, Mode, OFlags, RawDir};

/// One socket entry from /proc/net/tcp or tcp6.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SocketEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// Effective uid that created the socket (kept across fd passing and fork).
    pub uid: u32,
    /// Socket inode; 0 for sockets no longer attached to a file (TIME_WAIT, orphans).
    pub inode: u64,
}

/// TCP state as numbered by the kernel (include/net/tcp_states.h). Serialises as the kernel's
/// name (`"LISTEN"`, `"TIME_WAIT"`, ...), so JSON output reads like `ss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    /// A code this build does not know (newer kernels add states): kept, never a panic.
    Unknown(u8),
}

impl TcpState {
    /// The state for the kernel's numeric code (the `st` column).
    pub fn from_code(code: u8) -> Self {
        match code {
            0x01 => Self::Established,
            0x02 => Self::SynSent,
            0x03 => Self::SynRecv,
            0x04 => Self::FinWait1,
            0x05 => Self::FinWait2,
            0x06 => Self::TimeWait,
            0x07 => Self::Close,
            0x08 => Self::CloseWait,
            0x09 => Self::LastAck,
            0x0A => Self::Listen,
            0x0B => Self::Closing,
            0x0C => Self::NewSynRecv,
            other => Self::Unknown(other),
        }
    }

    /// The kernel's numeric code.
    pub fn code(self) -> u8 {
        match self {
            Self::Established => 0x01,
            Self::SynSent => 0x02,
            Self::SynRecv => 0x03,
            Self::FinWait1 => 0x04,
            Self::FinWait2 => 0x05,
            Self::TimeWait => 0x06,
            Self::Close => 0x07,
            Self::CloseWait => 0x08,
            Self::LastAck => 0x09,
            Self::Listen => 0x0A,
            Self::Closing => 0x0B,
            Self::NewSynRecv => 0x0C,
            Self::Unknown(code) => code,
        }
    }
}

/// The `st` code of a listening socket.
const LISTEN: u8 = 0x0A;

/// Parse the text of /proc/net/tcp (ipv6=false) or /proc/net/tcp6 (ipv6=true). Malformed lines are skipped, never panic.
pub fn parse_proc_net_tcp(text: &str, ipv6: bool) -> Vec<SocketEntry> {
    let text = text.as_bytes();
    // ~150 bytes per line: one allocation up front instead of log2(n) regrowths.
    let mut out = Vec::with_capacity(text.len() / 128);
    for line in text.split(|&b| b == b'\n') {
        if let Some(entry) = parse_line(line, ipv6, None, None) {
            out.push(entry);
        }
    }
    out
}

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listener {
    pub port: u16,
    /// As the kernel reports it: an IPv6 socket bound to `::ffff:a.b.c.d` stays an IPv6 address.
    pub addr: IpAddr,
    /// True when the socket came from /proc/net/tcp6 (an AF_INET6 socket; `[::]` ones usually
    /// accept IPv4 too).
    pub ipv6: bool,
    pub uid: u32,
    pub inode: u64,
}

/// Listening sockets from /proc/net/tcp and /proc/net/tcp6 (both families always), optionally only on the given ports.
///
/// Sorted by port, then IPv4 before IPv6, then address, so output is stable. A missing
/// /proc/net/tcp6 (IPv6 disabled in the kernel) counts as "no IPv6 listeners"; any other read
/// error is returned.
pub fn listeners(ports: Option<&[u16]>) -> io::Result<Vec<Listener>> {
    let mut out = match diag::listeners() {
        Ok(all) => all,
        // No sock_diag (a kernel without inet_diag, a seccomp filter): read /proc instead.
        Err(_) => proc_listeners()?,
    };
    if let Some(ports) = ports {
        out.retain(|l| ports.contains(&l.port));
    }
    out.sort_by_key(|l| (l.port, l.ipv6, l.addr, l.inode));
    Ok(out)
}

/// Listening sockets from /proc/net/tcp and /proc/net/tcp6.
pub fn proc_listeners() -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for (path, ipv6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = match read_proc_net(path) {
            Ok(text) => text,
            Err(e) if ipv6 && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in text.split(|&b| b == b'\n') {
            if let Some(e) = parse_line(line, ipv6, Some(LISTEN), None) {
                out.push(Listener {
                    port: e.local.port(),
                    addr: e.local.ip(),
                    ipv6,
                    uid: e.uid,
                    inode: e.inode,
                });
            }
        }
    }
    out.sort_by_key(|l| (l.port, l.ipv6, l.addr, l.inode));
    Ok(out)
}

/// Listening TCP sockets through netlink sock_diag, as `ss -l` gets them. Asking for the LISTEN
/// state only makes the kernel walk just the listening hash, where every read of /proc/net/tcp
/// walks the whole TCP table (a few ms on a big host, every refresh).
mod diag {
    use super::Listener;
    use rustix::net::{
        AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink,
        netlink::SocketAddrNetlink, recv, sendto, socket_with,
    };
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const IPPROTO_TCP: u8 = 6;
    const TCP_LISTEN: u32 = 10;
    const HDR: usize = 16;
    /// struct inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue,
    /// wqueue, uid, inode.
    const DIAG_MSG: usize = 72;

    pub fn listeners() -> io::Result<Vec<Listener>> {
        let mut out = Vec::new();
        for (family, ipv6) in [(2u8, false), (10u8, true)] {
            dump(family, ipv6, &mut out)?;
        }
        Ok(out)
    }

    fn request(family: u8) -> [u8; HDR + 56] {
        let mut m = [0u8; HDR + 56];
        m[0..4].copy_from_slice(&((HDR + 56) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        m[8..12].copy_from_slice(&1u32.to_ne_bytes());
        // struct inet_diag_req_v2: family, protocol, ext, pad, states, sockid (zero: any).
        m[HDR] = family;
        m[HDR + 1] = IPPROTO_TCP;
        m[HDR + 4..HDR + 8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
        m
    }

    fn dump(family: u8, ipv6: bool, out: &mut Vec<Listener>) -> io::Result<()> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::SOCK_DIAG),
        )?;
        sendto(
            &fd,
            &request(family),
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let (n, _) = recv(&fd, &mut buf[..], RecvFlags::empty())?;
            if n == 0 {
                return Err(io::Error::other("sock_diag: empty reply"));
            }
            if parse(&buf[..n], ipv6, out)? {
                return Ok(());
            }
        }
    }

    /// Parses one datagram of replies; true once the dump is complete.
    pub(super) fn parse(mut b: &[u8], ipv6: bool, out: &mut Vec<Listener>) -> io::Result<bool> {
        let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        while b.len() >= HDR {
            let len = u32_at(b, 0) as usize;
            let kind = u16::from_ne_bytes([b[4], b[5]]);
            if len < HDR || len > b.len() {
                return Err(io::Error::other("sock_diag: malformed reply"));
            }
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let errno = if len >= HDR + 4 {
                        -(u32_at(b, HDR) as i32)
                    } else {
                        0
                    };
                    return Err(io::Error::from_raw_os_error(errno));
                }
                SOCK_DIAG_BY_FAMILY if len >= HDR + DIAG_MSG => {
                    let m = &b[HDR..len];
                    let port = u16::from_be_bytes([m[4], m[5]]);
                    let src = &m[8..24];
                    let addr = if m[0] == 10 {
                        let a: [u8; 16] = src.try_into().unwrap();
                        IpAddr::V6(Ipv6Addr::from(a))
                    } else {
                        IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
                    };
                    out.push(Listener {
                        port,
                        addr,
                        ipv6,
                        uid: u32_at(m, 64),
                        inode: u32_at(m, 68) as u64,
                    });
                }
                _ => {}
            }
            // Messages are 4-byte aligned.
            b = &b[((len + 3) & !3).min(b.len())..];
        }
        Ok(false)
    }
}

/// Reads a /proc/net/tcp{,6} file to its end. Each read(2) walks the whole TCP hash table, so
/// the buffer starts large (two walks for a small file); this is only the fallback when
/// sock_diag is unavailable.
fn read_proc_net(path: &str) -> io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0;
    loop {
        if buf.len() - len < 16 * 1024 {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match file.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        if n == 0 {
            break;
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// One line of /proc/net/tcp{,6}. `state` and `ports` filter before the costly fields are parsed
/// (the listener scan of a busy host rejects most lines on the two-byte state field).
///
/// Columns: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`.
fn parse_line(
    line: &[u8],
    ipv6: bool,
    state: Option<u8>,
    ports: Option<&[u16]>,
) -> Option<SocketEntry> {
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    // "12:" for a socket, "sl" for the header: checking it is what rejects the header.
    let sl = fields.next()?;
    let (last, digits) = sl.split_last()?;
    if *last != b':' || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let local = fields.next()?;
    let remote = fields.next()?;
    let st = fields.next()?;
    if st.len() > 2 {
        return None;
    }
    let st = u8::try_from(parse_hex(st)?).ok()?;
    if state.is_some_and(|want| want != st) {
        return None;
    }
    let (local_addr, local_port) = split_addr(local)?;
    let port = u16::try_from(parse_hex(local_port)?).ok()?;
    if ports.is_some_and(|p| !p.contains(&port)) {
        return None;
    }
    let local = SocketAddr::new(parse_ip(local_addr, ipv6)?, port);
    let remote = parse_sockaddr(remote, ipv6)?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt: not needed.
    let uid = parse_dec(fields.nth(3)?)?;
    let uid = u32::try_from(uid).ok()?;
    // timeout, then inode.
    let inode = parse_dec(fields.nth(1)?)?;
    Some(SocketEntry {
        local,
        remote,
        state: TcpState::from_code(st),
        uid,
        inode,
    })
}

/// `ADDR:PORT` -> (ADDR, PORT), both still hex. The port is always 4 digits or fewer.
fn split_addr(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = field.iter().position(|&b| b == b':')?;
    let (addr, port) = (&field[..colon], &field[colon + 1..]);
    (port.len() <= 4).then_some((addr, port))
}

fn parse_sockaddr(field: &[u8], ipv6: bool) -> Option<SocketAddr> {
    let (addr, port) = split_addr(field)?;
    let port = u16::try_from(parse_hex(port)?).ok()?;
    Some(SocketAddr::new(parse_ip(addr, ipv6)?, port))
}

/// The kernel prints each 32-bit word of the address, which is in network byte order in memory,
/// as a *native* integer with %08X. Reading the hex back as a u32 and taking its native bytes
/// therefore restores network order on any host; on the little-endian hosts we run on,
/// 127.0.0.1 reads `0100007F`.
fn parse_ip(hex: &[u8], ipv6: bool) -> Option<IpAddr> {
    match (ipv6, hex.len()) {
        (false, 8) => Some(IpAddr::V4(Ipv4Addr::from(
            (parse_hex(hex)? as u32).to_ne_bytes(),
        ))),
        (true, 32) => {
            let mut bytes = [0u8; 16];
            for (word, out) in hex.chunks_exact(8).zip(bytes.chunks_exact_mut(4)) {
                out.copy_from_slice(&(parse_hex(word)? as u32).to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        // Wrong width for the family (e.g. an IPv6 line fed to the IPv4 parser): malformed.
        _ => None,
    }
}

/// Hex digits (1..=16 of them) to an integer; anything else is malformed. Hand-rolled because
/// `from_str_radix` wants a `&str` and accepts a leading `+`.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'F' => b - b'A' + 10,
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// Decimal digits to a u64, None on anything else or overflow (so "-1" is malformed).
fn parse_dec(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |v, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        v.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Who holds which socket, as far as this process can see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InodeOwners {
    /// Socket inode -> every pid with at least one fd on it, sorted, no duplicates. Inodes that
    /// no visible process holds are absent.
    pub owners: HashMap<u64, Vec<u32>>,
    /// Processes whose fd table could not be read (another user's while not root, or gone
    /// between listing /proc and opening it). Non-zero means "an absent inode may still be held
    /// by a pid we cannot see".
    pub unreadable_pids: usize,
}

/// Map socket inodes to the pids that hold an fd on them, by scanning /proc/<pid>/fd/* links `socket:[inode]`.
///
/// Trade-off chosen: find *all* holders. After fork (torch DataLoader workers, a launcher and its
/// ranks) several pids share one listening socket, and the one that matters for "who keeps port P
/// busy" is often not the first found, so stopping at the first holder would mislead the user.
/// A full pass costs one openat + getdents per process and one readlinkat per fd; to keep that
/// small:
/// - paths are resolved relative to an open `/proc/<pid>/fd` directory (no full path walk per fd),
///   into a stack buffer (no allocation per fd);
/// - kernel threads get no special test: their fd directory is empty (openat + getdents + close),
///   and any test that would spot them (the flags in `/proc/<pid>/stat`, a failing readlink of
///   `/proc/<pid>/exe`) is itself a syscall paid by every user process, so skipping them would
///   cost more than it saves;
/// - the pid list is split between two threads when there is more than a handful of processes
///   (the work is syscall-bound and the kernel serves both in parallel).
///
/// An empty `inodes` returns at once without touching /proc.
pub fn inode_owners(inodes: &HashSet<u64>) -> InodeOwners {
    let mut result = InodeOwners::default();
    if inodes.is_empty() {
        return result;
    }
    let Some(proc_dir) = open_proc() else {
        return result;
    };
    let pids = list_pids(&proc_dir);

    // Below this many processes a second thread costs more to start than it saves.
    const PARALLEL_MIN: usize = 256;
    let threads = if pids.len() >= PARALLEL_MIN
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    {
        2
    } else {
        1
    };
    let partials: Vec<Scan> = if threads == 1 {
        vec![scan_pids(&proc_dir, pids.iter().copied(), inodes)]
    } else {
        // Interleaved halves, not contiguous ones: kernel threads (cheap) cluster at low pids and
        // forked workers (many fds) at high ones, so interleaving balances the two threads.
        std::thread::scope(|s| {
            let proc_dir = &proc_dir;
            let pids = &pids;
            let other = s.spawn(move || {
                scan_pids(proc_dir, pids.iter().copied().skip(1).step_by(2), inodes)
            });
            let mine = scan_pids(proc_dir, pids.iter().copied().step_by(2), inodes);
            // A panic in the helper is a bug in this module: propagate it.
            vec![mine, other.join().expect("inode scan thread panicked")]
        })
    };
    for part in partials {
        result.unreadable_pids += part.unreadable_pids;
        for (inode, mut pids) in part.owners {
            result.owners.entry(inode).or_default().append(&mut pids);
        }
    }
    sort_owners(&mut result);
    result
}

/// Like [`inode_owners`], but looks only at `pids`: re-checking known holders between full
/// walks costs a few syscalls instead of one per fd on the machine.
pub fn inode_owners_among(inodes: &HashSet<u64>, pids: &[u32]) -> InodeOwners {
    let mut result = InodeOwners::default();
    if inodes.is_empty() || pids.is_empty() {
        return result;
    }
    let Some(proc_dir) = open_proc() else {
        return result;
    };
    let scan = scan_pids(&proc_dir, pids.iter().copied(), inodes);
    result.unreadable_pids = scan.unreadable_pids;
    result.owners = scan.owners;
    sort_owners(&mut result);
    result
}

fn open_proc() -> Option<OwnedFd> {
    rustix::fs::openat(
        CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Owner lists are sorted without duplicates (a pid may hold several fds on one socket).
fn sort_owners(result: &mut InodeOwners) {
    for pids in result.owners.values_mut() {
        pids.sort_unstable();
        pids.dedup();
    }
}

/// Numeric entries of /proc: one per process (thread-group leader; threads share its fd table
/// and live under /proc/<pid>/task, so they are never scanned twice).
fn list_pids(proc_dir: &OwnedFd) -> Vec<u32> {
    let mut pids = Vec::with_capacity(1024);
    let mut buf = Vec::with_capacity(64 * 1024);
    // RawDir reads from the fd's current offset: `proc_dir` is fresh (offset 0) and only used
    // with *at() calls afterwards, which ignore the offset.
    let mut entries = RawDir::new(proc_dir.as_fd(), buf.spare_capacity_mut());
    while let Some(Ok(entry)) = entries.next() {
        if let Some(pid) = parse_dec(entry.file_name().to_bytes())
            && let Ok(pid) = u32::try_from(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

struct Scan {
    owners: HashMap<u64, Vec<u32>>,
    unreadable_pids: usize,
}

/// The per-thread half of `inode_owners`: one reusable getdents buffer and readlink buffer.
fn scan_pids(proc_dir: &OwnedFd, pids: impl Iterator<Item = u32>, inodes: &HashSet<u64>) -> Scan {
    let mut scan = Scan {
        owners: HashMap::new(),
        unreadable_pids: 0,
    };
    let mut dirbuf: Vec<u8> = Vec::with_capacity(32 * 1024);
    // "socket:[18446744073709551615]" is 29 bytes; anything longer is not a socket link.
    let mut link = [0u8; 64];
    let mut path = String::with_capacity(16);
    for pid in pids {
        path.clear();
        let _ = write!(path, "{pid}/fd");
        let Ok(fd_dir) = rustix::fs::openat(
            proc_dir,
            path.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            // EACCES (another user's process) or ENOENT/ESRCH (it exited meanwhile).
            scan.unreadable_pids += 1;
            continue;
        };
        let mut entries = RawDir::new(fd_dir.as_fd(), dirbuf.spare_capacity_mut());
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else {
                // The process exited mid-listing; what was read so far still counts.
                break;
            };
            let name = entry.file_name();
            if name.to_bytes().first() == Some(&b'.') {
                continue;
            }
            // ENOENT when the fd was closed since getdents: skip it.
            let Ok(len) = rustix::fs::readlinkat_raw(fd_dir.as_fd(), name, &mut link[..]) else {
                continue;
            };
            if let Some(inode) = socket_inode(&link[..len.min(link.len())])
                && inodes.contains(&inode)
            {
                scan.owners.entry(inode).or_default().push(pid);
            }
        }
    }
    scan
}

/// `socket:[12345]` -> 12345; any other link target -> None.
fn socket_inode(target: &[u8]) -> Option<u64> {
    parse_dec(target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
}

/// Whether `port` can be bound right now on both 0.0.0.0 and [::] (IPv6 may be absent on the
/// host: then IPv4 alone decides). Binds and releases immediately.
///
/// The probe socket sets SO_REUSEADDR, as torch's TCPStore does, and never listens: a
/// trainer binding the same port at that instant is not disturbed (two SO_REUSEADDR sockets may
/// share a port while neither listens), sockets in TIME_WAIT do not count as busy (they do not
/// stop torch either), and any listener or connection that owns the port does. The two binds
/// are sequential: holding 0.0.0.0:P while binding a dual-stack [::]:P would collide with our
/// own socket. Port 0 is never "free": it means "any port", not a port.
pub fn port_is_free(port: u16) -> bool {
    if port == 0 {
        return false;
    }
    if probe_bind(false, port).is_err() {
        return false;
    }
    match probe_bind(true, port) {
        Ok(()) => true,
        Err(e) => ipv6_absent(&e),
    }
}

fn probe_bind(ipv6: bool, port: u16) -> io::Result<()> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, bind, socket_with, sockopt};
    let family = if ipv6 {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    // Close-on-exec: a probe open while another thread spawns a job must not leak into it.
    let fd = socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    let addr: SocketAddr = if ipv6 {
        (Ipv6Addr::UNSPECIFIED, port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, port).into()
    };
    bind(&fd, &addr)?;
    Ok(())
}

/// Errors that mean "this host has no usable IPv6", not "the port is taken".
fn ipv6_absent(e: &io::Error) -> bool {
    use rustix::io::Errno;
    [
        Errno::AFNOSUPPORT,
        Errno::PROTONOSUPPORT,
        Errno::ADDRNOTAVAIL,
    ]
    .iter()
    .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn diag_msg(family: u8, port: u16, addr: &[u8], uid: u32, inode: u32) -> Vec<u8> {
        let mut m = vec![family, 10, 0, 0];
        m.extend_from_slice(&port.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        let mut src = [0u8; 16];
        src[..addr.len()].copy_from_slice(addr);
        m.extend_from_slice(&src);
        m.extend_from_slice(&[0u8; 16 + 4 + 8 + 12]);
        m.extend_from_slice(&uid.to_ne_bytes());
        m.extend_from_slice(&inode.to_ne_bytes());
        m
    }

    #[test]
    fn sock_diag_replies_parse() {
        let mut buf = nlmsg(20, &diag_msg(2, 29500, &[127, 0, 0, 1], 1000, 4242));
        let v6: Vec<u8> = "::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        buf.extend(nlmsg(20, &diag_msg(10, 30001, &v6, 0, 7)));
        let mut out = Vec::new();
        assert!(!diag::parse(&buf, false, &mut out).unwrap(), "no DONE yet");
        assert_eq!(
            out,
            vec![
                Listener {
                    port: 29500,
                    addr: "127.0.0.1".parse().unwrap(),
                    ipv6: false,
                    uid: 1000,
                    inode: 4242
                },
                Listener {
                    port: 30001,
                    addr: "::1".parse().unwrap(),
                    ipv6: false,
                    uid: 0,
                    inode: 7
                },
            ]
        );
        assert!(diag::parse(&nlmsg(3, &[0; 4]), true, &mut out).unwrap());
        let err = diag::parse(&nlmsg(2, &(-13i32).to_ne_bytes()), true, &mut out).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(13));
        // Truncated or lying lengths are errors, not panics.
        let mut bad = nlmsg(20, &[0; 8]);
        bad[0] = 200;
        assert!(diag::parse(&bad, false, &mut out).is_err());
        assert!(!diag::parse(&[1, 2, 3], false, &mut out).unwrap());
    }

    const TCP_MIXED: &str = include_str!("../../tests/fixtures/proc_net/tcp_mixed.txt");
    const TCP6_MIXED: &str = include_str!("../../tests/fixtures/proc_net/tcp6_mixed.txt");

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    // The fixtures hold little-endian /proc text (x86_64, aarch64): see `parse_ip`.
    #[cfg(target_endian = "little")]
    #[test]
    fn tcp_mixed_parses_every_valid_line_and_only_those() {
        let got = parse_proc_net_tcp(TCP_MIXED, false);
        let want = vec![
            SocketEntry {
                local: v4("127.0.0.1:30000"),
                remote: v4("0.0.0.0:0"),
                state: TcpState::Listen,
                uid: 1000,
                inode: 16991,
            },
            SocketEntry {
                local: v4("0.0.0.0:29500"),
                remote: v4("0.0.0.0:0"),
                state: TcpState::Listen,
                uid: 0,
                inode: 16992,
            },
            SocketEntry {
                local: v4("127.0.0.1:30000"),
                remote: v4("127.0.0.1:56496"),
                state: TcpState::Established,
                uid: 1000,
                inode: 16994,
            },
            SocketEntry {
                local: v4("127.0.0.1:56502"),
                remote: v4("127.0.0.1:30000"),
                state: TcpState::TimeWait,
                uid: 0,
                inode: 0,
            },
            SocketEntry {
                local: v4("192.168.0.10:443"),
                remote: v4("192.168.2.1:50000"),
                state: TcpState::Closing,
                uid: 33,
                inode: 4_294_967_296,
            },
            SocketEntry {
                local: v4("127.0.0.1:8080"),
                remote: v4("127.0.0.1:54321"),
                state: TcpState::NewSynRecv,
                uid: 0,
                inode: 0,
            },
            SocketEntry {
                local: v4("127.0.0.1:22"),
                remote: v4("0.0.0.0:0"),
                state: TcpState::Unknown(0xFF),
                uid: 0,
                inode: 777,
            },
            SocketEntry {
                local: v4("127.0.0.1:65535"),
                remote: v4("0.0.0.0:0"),
                state: TcpState::Listen,
                uid: u32::MAX,
                inode: u64::MAX,
            },
        ];
        assert_eq!(got, want);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn tcp6_mixed_word_order_and_mapped_addresses() {
        let got = parse_proc_net_tcp(TCP6_MIXED, true);
        let sa = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let want = vec![
            SocketEntry {
                local: sa("[::]:52627"),
                remote: sa("[::]:0"),
                state: TcpState::Listen,
                uid: 0,
                inode: 16999,
            },
            SocketEntry {
                local: sa("[::1]:8080"),
                remote: sa("[::]:0"),
                state: TcpState::Listen,
                uid: 1000,
                inode: 16997,
            },
            SocketEntry {
                local: sa("[::ffff:127.0.0.1]:56516"),
                remote: sa("[::ffff:127.0.0.1]:30000"),
                state: TcpState::Established,
                uid: 1000,
                inode: 17000,
            },
            SocketEntry {
                local: sa("[fe80::1]:22"),
                remote: sa("[2001:db8::ff00:42:8329]:58010"),
                state: TcpState::CloseWait,
                uid: 0,
                inode: 17010,
            },
            SocketEntry {
                local: sa("[2001:db8::ff00:42:8329]:29500"),
                remote: sa("[::]:0"),
                state: TcpState::Closing,
                uid: 0,
                inode: 17011,
            },
        ];
        assert_eq!(got, want);
        // The mapped address stays IPv6 (it is an AF_INET6 socket) but names 127.0.0.1.
        let IpAddr::V6(mapped) = got[2].local.ip() else {
            panic!("not v6")
        };
        assert_eq!(mapped.to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn families_do_not_cross() {
        // Every well-formed line of one file has the wrong address width for the other parser.
        assert!(parse_proc_net_tcp(TCP_MIXED, true).is_empty());
        assert_eq!(parse_proc_net_tcp(TCP6_MIXED, false).len(), 1); // the stray IPv4 line 5
    }

    #[test]
    fn every_state_code_round_trips() {
        for code in 0..=u8::MAX {
            assert_eq!(TcpState::from_code(code).code(), code);
        }
        assert_eq!(TcpState::from_code(0x0A), TcpState::Listen);
        assert_eq!(TcpState::from_code(0x0C), TcpState::NewSynRecv);
        assert_eq!(TcpState::from_code(0x00), TcpState::Unknown(0));
        assert_eq!(TcpState::from_code(0x0D), TcpState::Unknown(0x0D));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn serialises_like_ss() {
        let e = &parse_proc_net_tcp(TCP_MIXED, false)[0];
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "local": "127.0.0.1:30000", "remote": "0.0.0.0:0", "state": "LISTEN",
                "uid": 1000, "inode": 16991
            })
        );
        assert_eq!(
            serde_json::to_value(TcpState::FinWait1).unwrap(),
            serde_json::json!("FIN_WAIT1")
        );
        assert_eq!(
            serde_json::to_value(TcpState::Unknown(0xFF)).unwrap(),
            serde_json::json!({"UNKNOWN": 255})
        );
    }

    #[test]
    fn listener_filter_matches_full_parse() {
        let text = TCP_MIXED.as_bytes();
        let fast: Vec<SocketEntry> = text
            .split(|&b| b == b'\n')
            .filter_map(|l| parse_line(l, false, Some(LISTEN), Some(&[30000, 65535])))
            .collect();
        let slow: Vec<SocketEntry> = parse_proc_net_tcp(TCP_MIXED, false)
            .into_iter()
            .filter(|e| e.state == TcpState::Listen && [30000, 65535].contains(&e.local.port()))
            .collect();
        assert_eq!(fast, slow);
        assert_eq!(
            fast.iter().map(|e| e.inode).collect::<Vec<_>>(),
            [16991, u64::MAX]
        );
    }

    #[test]
    fn garbage_never_panics() {
        // Every prefix of the fixtures (cut mid-field, mid-line) and some junk.
        for text in [TCP_MIXED, TCP6_MIXED] {
            for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                for ipv6 in [false, true] {
                    let _ = parse_proc_net_tcp(&text[..cut], ipv6);
                }
            }
        }
        for junk in [
            "",
            "\n\n\n",
            ":",
            " 0: : : : : : : : : :",
            "0: FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:FFFF 0:0 0A",
            "1: 0100007F:7530 00000000:0000 0A a:b c:d e 99999999999999999999999 0 1",
            "\u{00e9}: \u{00e9}",
            "1:\t0100007F:7530\t00000000:0000\t0A\t0:0\t0:0\t0\t5\t0\t6\r",
        ] {
            let _ = parse_proc_net_tcp(junk, false);
            let _ = parse_proc_net_tcp(junk, true);
        }
        // Tabs and a CR line ending are whitespace like any other.
        let tabbed = parse_proc_net_tcp(
            "1:\t0100007F:7530\t00000000:0000\t0A\t0:0\t0:0\t0\t5\t0\t6\r\n",
            false,
        );
        assert_eq!(tabbed.len(), 1);
        assert_eq!((tabbed[0].uid, tabbed[0].inode), (5, 6));
    }

    /// `tcp_many`: a generated 100,000-line file in the kernel's exact layout.
    fn tcp_many(lines: u32) -> String {
        let mut s = String::from(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        );
        for i in 0..lines {
            let port = (i % 60000 + 1024) as u16;
            let st = if i % 100 == 0 { 0x0A } else { 0x01 };
            // 10.x.y.z in little-endian word order.
            let ip = u32::from_ne_bytes([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            writeln!(
                s,
                "{i:4}: {ip:08X}:{port:04X} 0100007F:7530 {st:02X} 00000000:00000000 00:00000000 00000000  {uid:4}        0 {inode} 1 0000000000000000 20 4 30 10 -1                ",
                uid = i % 7,
                inode = 1_000_000 + u64::from(i),
            )
            .unwrap();
        }
        s
    }

    #[test]
    fn tcp_many_is_parsed_whole_and_fast_enough() {
        let text = tcp_many(100_000);
        let t = std::time::Instant::now();
        let all = parse_proc_net_tcp(&text, false);
        let took = t.elapsed();
        assert_eq!(all.len(), 100_000);
        let e = &all[70_001];
        assert_eq!(e.local, v4("10.1.17.113:11025"));
        assert_eq!(e.remote, v4("127.0.0.1:30000"));
        assert_eq!(
            (e.state, e.uid, e.inode),
            (TcpState::Established, 70_001 % 7, 1_070_001)
        );
        assert_eq!(
            all.iter().filter(|e| e.state == TcpState::Listen).count(),
            1000
        );
        // ~15 MB of text; generous bound so a debug build on a loaded CI box passes.
        assert!(took.as_secs() < 5, "parsing 100k lines took {took:?}");
    }

    #[test]
    fn read_proc_net_reads_whole_files_short_and_long() {
        // Short (one read, the EOF shortcut) and long (grows past its first 64 KiB buffer).
        let dir = tempfile::tempdir().unwrap();
        for text in [TCP6_MIXED.to_owned(), tcp_many(2_000)] {
            let path = dir.path().join("tcp");
            std::fs::write(&path, &text).unwrap();
            let got = read_proc_net(path.to_str().unwrap()).unwrap();
            assert_eq!(got, text.as_bytes());
        }
        // The real file comes back from its first byte.
        let real = read_proc_net("/proc/net/tcp").unwrap();
        assert!(real.starts_with(b"  sl  local_address"));
        assert!(read_proc_net("/proc/net/no-such-file").is_err());
    }

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode(b"socket:[16991]"), Some(16991));
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[12"), None);
        assert_eq!(socket_inode(b"pipe:[16991]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"anon_inode:[eventfd]"), None);
    }

    #[test]
    fn own_socket_is_found_in_own_process() {
        // Smoke test on the real /proc; the cross-process cases live in tests/ports_real.rs.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found = listeners(Some(&[port])).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(!found[0].ipv6);
        let inodes = HashSet::from([found[0].inode]);
        let owners = inode_owners(&inodes);
        // `contains`, not equality: a child that another test is spawning holds a copy of our
        // fd until its exec closes it.
        assert!(owners.owners[&found[0].inode].contains(&std::process::id()));
        assert!(!port_is_free(port));
        assert!(inode_owners(&HashSet::new()).owners.is_empty());
        assert!(!port_is_free(0));
    }
}
