//! Leftover training processes against real processes and real ports: a rank orphaned by its
//! launcher's death is reported as orphaned and freed by the guarded stop; a grandchild that
//! ignores SIGTERM is escalated to SIGKILL; reused pids and other users' processes are left alone.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use dpgui::system::inventory::{self, Inventory, LeftoverGroup};
use dpgui::system::procs::ProcessScanner;
use dpgui::system::signals::{Fate, LadderOptions};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_trainer")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads lines until one starts with `prefix`; returns the rest of it.
fn expect_line(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child closed stdout before printing {prefix}"
        );
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
}

fn scan(watched: &[u16]) -> Inventory {
    let state = tempfile::tempdir().unwrap();
    inventory::scan(
        &mut ProcessScanner::new(),
        &mut inventory::PortScanner::default(),
        watched,
        None,
        state.path(),
    )
    .0
}

fn group(inv: &Inventory, pgid: u32) -> LeftoverGroup {
    inv.leftovers
        .iter()
        .find(|g| g.pgid == pgid)
        .cloned()
        .unwrap_or_else(|| panic!("group {pgid} not among leftovers: {:#?}", inv.leftovers))
}

fn quick() -> LadderOptions {
    LadderOptions {
        grace: Duration::from_secs(5),
        kill_wait: Duration::from_secs(5),
        allow_other_users: false,
    }
}

/// Kills whatever is left of a group when a test fails half way.
struct GroupGuard(u32);
impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn spawn_launcher(port: u16, extra: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "deepspeed.launcher.launch", "--local_rank=0"])
        .arg(format!("--master_port={port}"))
        .args(extra)
        .env("PYTHONPATH", fixture())
        .current_dir(fixture())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("python3 runs");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

#[test]
fn orphaned_rank_holding_a_port_is_reported_and_freed() {
    let port = free_port();
    let (mut launcher, mut out) = spawn_launcher(port, &[]);
    let pgid = launcher.id();
    let _guard = GroupGuard(pgid);
    let rank: u32 = expect_line(&mut out, "RANK").parse().unwrap();
    expect_line(&mut out, "LISTENING");

    // While the launcher lives: a leftover (no dpgui job) but not orphaned.
    let inv = scan(&[port]);
    let g = group(&inv, pgid);
    assert!(!g.orphaned, "{g:#?}");
    let members: Vec<u32> = g.members.iter().map(|m| m.pid).collect();
    assert_eq!(members, {
        let mut v = vec![pgid, rank];
        v.sort();
        v
    });
    assert_eq!(g.ports, vec![port]);
    let status = inv.port(port).unwrap();
    assert!(status.listening);
    assert_eq!(status.holders.len(), 1);
    let h = &status.holders[0];
    assert_eq!(h.pid, Some(rank));
    assert_eq!(h.pgid, Some(pgid));
    assert_eq!(h.ppid, Some(pgid));
    assert_eq!(h.training.as_deref(), Some("rank 0"));
    assert!(!h.orphan);
    assert!(h.cmdline.iter().any(|a| a.ends_with("train.py")));

    // The launcher dies (as when someone kills it): the rank lives on, holding the port.
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    let inv = scan(&[port]);
    let g = group(&inv, pgid);
    assert!(g.orphaned);
    assert!(
        g.orphan_reason
            .as_deref()
            .unwrap()
            .contains("launcher is gone"),
        "{:?}",
        g.orphan_reason
    );
    assert_eq!(g.members.len(), 1);
    assert!(inv.port(port).unwrap().holders[0].orphan);
    assert!(!dpgui::system::ports::port_is_free(port));

    let report = inventory::free_group(&g, quick(), &mut || None);
    assert_eq!(report.outcomes.len(), 1);
    assert_eq!(report.outcomes[0].pid, rank);
    assert_eq!(report.outcomes[0].fate, Fate::Terminated);
    assert!(!report.escalated);
    assert_eq!(report.ports_freed, vec![port]);
    assert!(report.all_gone(), "{}", report.headline());
    // The port binds again.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("port is free after the stop");
}

#[test]
fn grandchild_ignoring_sigterm_is_killed_and_reported() {
    let mut cmd = Command::new("python3");
    cmd.arg(fixture().join("train.py"))
        .args([
            "--local_rank=1",
            "--master_port=0",
            "--grandchild-ignores-term",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    let mut leader = cmd.spawn().unwrap();
    let pgid = leader.id();
    let _guard = GroupGuard(pgid);
    let mut out = BufReader::new(leader.stdout.take().unwrap());
    let child: u32 = expect_line(&mut out, "CHILD").parse().unwrap();
    expect_line(&mut out, "READY");

    let g = group(&scan(&[]), pgid);
    assert_eq!(g.members.len(), 2);
    let opts = LadderOptions {
        grace: Duration::from_millis(800),
        ..quick()
    };
    let report = inventory::free_group(&g, opts, &mut || None);
    leader.wait().unwrap();
    assert!(report.escalated);
    let fate = |pid| report.outcomes.iter().find(|o| o.pid == pid).unwrap().fate;
    assert_eq!(fate(pgid), Fate::Terminated);
    assert_eq!(fate(child), Fate::Killed);
    assert!(
        report.headline().contains("1 needed SIGKILL"),
        "{}",
        report.headline()
    );
    assert!(!dpgui::system::procs::is_alive(
        g.members
            .iter()
            .find(|m| m.pid == child)
            .map(|m| {
                dpgui::system::procs::ProcId {
                    pid: m.pid,
                    start_ticks: m.start_ticks,
                }
            })
            .unwrap()
    ));
}

#[test]
fn a_pid_reused_between_listing_and_signalling_is_not_signalled() {
    let mut cmd = Command::new("python3");
    cmd.arg(fixture().join("train.py"))
        .args(["--local_rank=2", "--master_port=0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    let mut rank = cmd.spawn().unwrap();
    let _guard = GroupGuard(rank.id());
    let mut out = BufReader::new(rank.stdout.take().unwrap());
    expect_line(&mut out, "READY");
    let mut g = group(&scan(&[]), rank.id());
    // As if the listed process had died and its pid had gone to a new process: the identity
    // recorded at listing time no longer matches the process now at that pid.
    g.members[0].start_ticks -= 1;
    let report = inventory::free_group(&g, quick(), &mut || None);
    assert_eq!(report.outcomes[0].fate, Fate::PidReused);
    assert!(
        rank.try_wait().unwrap().is_none(),
        "the live process was signalled"
    );
    rank.kill().unwrap();
    rank.wait().unwrap();
}

#[test]
fn other_users_processes_need_the_extra_confirmation() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to start a process as another user");
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(fixture().join("train.py"))
        // Not dumpable, as after a setuid: its /proc files then belong to root, which must not
        // make it look like root's (or this user's) process.
        .args(["--local_rank=3", "--master_port=0", "--non-dumpable"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .uid(65534)
        .gid(65534)
        .process_group(0);
    let mut rank = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot start a process as nobody: {e}");
            return;
        }
    };
    let _guard = GroupGuard(rank.id());
    let mut out = BufReader::new(rank.stdout.take().unwrap());
    expect_line(&mut out, "READY");
    let g = group(&scan(&[]), rank.id());
    assert!(g.other_user);
    assert_eq!(g.members[0].uid, 65534);
    let report = inventory::free_group(&g, quick(), &mut || None);
    assert_eq!(report.outcomes[0].fate, Fate::OtherUser);
    assert!(rank.try_wait().unwrap().is_none());
    let allowed = LadderOptions {
        allow_other_users: true,
        ..quick()
    };
    let report = inventory::free_group(&g, allowed, &mut || None);
    assert_eq!(report.outcomes[0].fate, Fate::Terminated);
    rank.wait().unwrap();
}

#[test]
fn port_scanner_cache_follows_a_new_holder() {
    let port = free_port();
    let spawn = || {
        let mut c = Command::new("python3")
            .arg(fixture().join("train.py"))
            .args(["--local_rank=0", &format!("--master_port={port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(c.stdout.take().unwrap());
        expect_line(&mut out, "LISTENING");
        c
    };
    let mut scanner = inventory::PortScanner::default();
    let holders = |s: &mut inventory::PortScanner| -> Vec<u32> {
        let (_, owners, _) = s.scan(&[port]);
        owners.into_values().flatten().collect()
    };
    let mut first = spawn();
    let _g1 = GroupGuard(first.id());
    assert_eq!(holders(&mut scanner), vec![first.id()]);
    // Served from the cache (the known holder still holds the same socket).
    assert_eq!(holders(&mut scanner), vec![first.id()]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(holders(&mut scanner), Vec::<u32>::new());
    let mut second = spawn();
    let _g2 = GroupGuard(second.id());
    assert_eq!(holders(&mut scanner), vec![second.id()]);
    second.kill().unwrap();
    second.wait().unwrap();
}

#[test]
fn an_exec_after_the_first_scan_is_seen() {
    // A wrapper that execs the real trainer keeps its pid and start time (like a pyenv shim):
    // the scanner must not keep the wrapper's command line.
    let mut scanner = ProcessScanner::new();
    let mut child = Command::new("sh")
        .args(["-c", "read go; exec \"$0\" \"$@\""])
        .arg("python3")
        .arg(fixture().join("train.py"))
        .args(["--local_rank=4", "--master_port=0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _guard = GroupGuard(child.id());
    let before = scanner.scan();
    let p = before.get(child.id()).expect("wrapper visible");
    assert!(
        p.training.is_none(),
        "the shell wrapper is no rank: {:?}",
        p.cmdline
    );
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, "READY");
    let after = scanner.scan();
    let p = after.get(child.id()).unwrap();
    assert!(
        p.cmdline.iter().any(|a| a.ends_with("train.py")),
        "{:?}",
        p.cmdline
    );
    assert_eq!(
        p.training.as_ref().map(|t| t.role.clone()),
        Some(dpgui::trainer::procs::Role::Rank { local_rank: 4 })
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn incremental_scans_see_new_processes_and_reparented_orphans() {
    let mut scanner = ProcessScanner::new();
    scanner.scan_incremental(); // the first one is full
    // A parent with a child; both new since the last scan.
    let mut parent = Command::new("sh")
        .args(["-c", "sleep 300 & echo $!; wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _guard = GroupGuard(parent.id());
    let mut out = BufReader::new(parent.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let child: u32 = line.trim().parse().unwrap();
    let t = scanner.scan_incremental();
    assert_eq!(
        t.get(child).map(|p| p.ppid),
        Some(parent.id()),
        "new pids are read"
    );
    // The parent dies: its child is reparented, and the next incremental scan must say so.
    parent.kill().unwrap();
    parent.wait().unwrap();
    let t = scanner.scan_incremental();
    let p = t.get(child).expect("the orphan lives on");
    assert_ne!(p.ppid, parent.id());
    assert!(t.get(parent.id()).is_none());
}
