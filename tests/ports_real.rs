//! `system::ports` against real processes: python3 children listen on OS-chosen ports, and the
//! tests check that dpgui sees them, names their pids, and sees them gone after they die.
//!
//! Synchronisation is by pipes only: a child prints its port once it listens; after a kill we
//! `wait()` it, and the kernel has closed its sockets before a dead child can be reaped.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use dpgui::system::ports::{Listener, inode_owners, listeners, port_is_free};

/// Listens on (argv[1], 0), prints the port (or "SKIP why" when that family is unavailable),
/// then sleeps until killed.
const LISTEN_PY: &str = r#"
import socket, sys, time
host = sys.argv[1]
try:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if host == "::":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((host, 0))
    s.listen()
except OSError as e:
    print("SKIP", e, flush=True)
    sys.exit(0)
print(s.getsockname()[1], flush=True)
while True:
    time.sleep(3600)
"#;

/// Listens, forks; both processes keep the socket until stdin reaches EOF. The parent prints
/// "port parent_pid child_pid" after the fork, and reaps the child before exiting.
const FORK_PY: &str = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
pid = os.fork()
if pid == 0:
    sys.stdin.read()
    os._exit(0)
print(s.getsockname()[1], os.getpid(), pid, flush=True)
sys.stdin.read()
os.waitpid(pid, 0)
"#;

/// Serialises process spawning against tests that hold listeners in this process (see
/// `in_process_listener_blocks_port_is_free_until_dropped`).
static SPAWN: Mutex<()> = Mutex::new(());

fn spawn_lock() -> MutexGuard<'static, ()> {
    SPAWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A python3 child that is killed and reaped even when an assertion fails.
struct Py {
    child: Child,
    stdin: Option<ChildStdin>,
    first_line: String,
}

impl Py {
    fn spawn(script: &str, args: &[&str]) -> Py {
        let spawning = spawn_lock();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("these tests need python3 on PATH");
        drop(spawning);
        let stdin = child.stdin.take();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        Py {
            child,
            stdin,
            first_line: first_line.trim().to_owned(),
        }
    }

    /// SIGKILL, then reap: after `wait` returns, the child's sockets are closed.
    fn kill_and_wait(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_gone(port: u16) {
    let left = listeners(Some(&[port])).unwrap();
    assert!(left.is_empty(), "port {port} still listed: {left:?}");
    assert!(
        port_is_free(port),
        "port {port} not free after its owner died"
    );
}

/// The one listener on `port`, after checking there is exactly one.
fn only_listener(port: u16) -> Listener {
    let found = listeners(Some(&[port])).unwrap();
    assert_eq!(found.len(), 1, "listeners on {port}: {found:?}");
    found.into_iter().next().unwrap()
}

/// Returns false (after a note) where the host lacks that address family.
fn check_child_listener(host: &str, want_addr: IpAddr, want_v6: bool) -> bool {
    let mut py = Py::spawn(LISTEN_PY, &[host]);
    if py.first_line.starts_with("SKIP") {
        eprintln!(
            "note: cannot listen on {host} here ({}); skipped",
            py.first_line
        );
        return false;
    }
    let port: u16 = py.first_line.parse().expect("child printed a port");
    let pid = py.child.id();

    let l = only_listener(port);
    assert_eq!((l.port, l.addr, l.ipv6), (port, want_addr, want_v6));
    // The child runs as this test's user, and the socket records its creator.
    assert_eq!(l.uid, nix::unistd::geteuid().as_raw());
    assert_ne!(l.inode, 0);

    let owners = inode_owners(&HashSet::from([l.inode]));
    assert_eq!(owners.owners.get(&l.inode), Some(&vec![pid]), "{owners:?}");
    assert!(
        !port_is_free(port),
        "port {port} reported free while {host} listens"
    );
    // Unrelated inodes are not invented.
    assert!(!owners.owners.contains_key(&0));

    py.kill_and_wait();
    assert_gone(port);
    true
}

#[test]
fn ipv4_loopback_listener_is_found_and_owned() {
    assert!(check_child_listener(
        "127.0.0.1",
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        false
    ));
}

#[test]
fn ipv6_loopback_listener_is_found_and_owned() {
    check_child_listener("::1", IpAddr::V6(Ipv6Addr::LOCALHOST), true);
}

#[test]
fn dual_stack_wildcard_listener_is_one_ipv6_socket() {
    // `[::]` with V6ONLY=0 is what torch's TCPStore does when it uses IPv6: it blocks both
    // families but shows up only in tcp6.
    check_child_listener("::", IpAddr::V6(Ipv6Addr::UNSPECIFIED), true);
}

#[test]
fn socket_shared_after_fork_lists_both_pids() {
    let mut py = Py::spawn(FORK_PY, &[]);
    let nums: Vec<u32> = py
        .first_line
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let [port, parent, child] = nums[..] else {
        panic!("unexpected line {:?}", py.first_line)
    };
    let port = u16::try_from(port).unwrap();
    assert_eq!(parent, py.child.id());

    let l = only_listener(port);
    let owners = inode_owners(&HashSet::from([l.inode]));
    let mut want = vec![parent, child];
    want.sort_unstable();
    assert_eq!(owners.owners.get(&l.inode), Some(&want), "{owners:?}");

    // EOF on stdin ends both; the parent reaps the forked child before it exits.
    py.stdin = None;
    let status = py.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_gone(port);
}

#[test]
fn in_process_listener_blocks_port_is_free_until_dropped() {
    // While another test spawns a child, that child holds a copy of our listener fd until its
    // exec closes it (CLOEXEC), so "free right after drop" would be flaky: keep spawns out.
    let _no_spawns = spawn_lock();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert!(!port_is_free(port));
    drop(l);
    assert!(port_is_free(port));
}

/// Ad-hoc timing for benches/ports.sh (run with `--ignored --nocapture`): one pass of what
/// `dpgui ports --port P` needs, P from DPGUI_BENCH_PORT (default 29500), repeated
/// DPGUI_BENCH_ROUNDS times (default 20). Prints per-phase medians.
#[test]
#[ignore = "timing, run by benches/ports.sh"]
fn bench_listeners_and_owners() {
    let port: u16 = std::env::var("DPGUI_BENCH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(29500);
    let rounds: usize = std::env::var("DPGUI_BENCH_ROUNDS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    let (mut t_list, mut t_own) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let ls = listeners(Some(&[port])).unwrap();
        t_list.push(t.elapsed());
        let inodes: HashSet<u64> = ls.iter().map(|l| l.inode).collect();
        let t = Instant::now();
        let owners = inode_owners(&inodes);
        t_own.push(t.elapsed());
        last = Some((ls, owners));
    }
    t_list.sort();
    t_own.sort();
    let (ls, owners) = last.unwrap();
    println!(
        "port {port}: {} listener(s), owners {:?}, unreadable pids {}",
        ls.len(),
        owners.owners,
        owners.unreadable_pids
    );
    println!(
        "median of {rounds}: listeners() {:?}, inode_owners() {:?}",
        t_list[t_list.len() / 2],
        t_own[t_own.len() / 2]
    );
}

/// sock_diag (the fast path) and /proc/net/tcp{,6} (the fallback) must see the same listeners.
#[test]
fn netlink_and_proc_agree_on_real_listeners() {
    let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = std::net::TcpListener::bind("[::1]:0").ok();
    let ports: Vec<u16> = std::iter::once(v4.local_addr().unwrap().port())
        .chain(v6.as_ref().map(|l| l.local_addr().unwrap().port()))
        .collect();
    let fast = dpgui::system::ports::listeners(Some(&ports)).unwrap();
    let mut slow = dpgui::system::ports::proc_listeners().unwrap();
    slow.retain(|l| ports.contains(&l.port));
    assert_eq!(fast, slow);
    assert_eq!(fast.len(), ports.len());
    assert!(fast.iter().any(|l| !l.ipv6 && l.port == ports[0]));
}
