//! `dpgui ports` as a script uses it: the JSON contract for a real orphaned rank on a real port,
//! and the guarded `--free` path (refused without --yes when not on a terminal, then done).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_trainer")
}

fn dpgui(args: &[&str], home: &std::path::Path) -> (i32, String, String) {
    dpgui_as(None, args, home)
}

/// Runs the real binary with a private HOME, as `uid` (and its group) when given.
fn dpgui_as(uid: Option<u32>, args: &[&str], home: &std::path::Path) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpgui"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(Stdio::null());
    if let Some(uid) = uid {
        cmd.current_dir("/").uid(uid).gid(uid);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ports_json_and_guarded_free_on_a_real_orphan() {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut launcher = Command::new("python3")
        .args(["-m", "deepspeed.launcher.launch", "--local_rank=0"])
        .arg(format!("--master_port={port}"))
        .env("PYTHONPATH", fixture())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = launcher.id();
    let mut out = BufReader::new(launcher.stdout.take().unwrap());
    let mut rank = 0u32;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(p) = line.trim().strip_prefix("RANK ") {
            rank = p.parse().unwrap();
        }
        if line.starts_with("LISTENING") {
            break;
        }
        line.clear();
    }
    launcher.kill().unwrap();
    launcher.wait().unwrap();

    let p = port.to_string();
    let (code, stdout, _) = dpgui(&["ports", "--port", &p, "--json"], home.path());
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let entry = &v[0];
    assert_eq!(entry["port"], port);
    assert_eq!(entry["listening"], true);
    let h = &entry["holders"][0];
    assert_eq!(h["pid"], rank);
    assert_eq!(h["pgid"], pgid);
    assert_eq!(h["orphan"], true);
    assert_eq!(h["job"], serde_json::Value::Null);
    assert_eq!(h["uid"], nix::unistd::getuid().as_raw());
    assert!(h["started"].as_str().unwrap().ends_with('Z'));
    assert!(
        h["cmdline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().ends_with("train.py"))
    );

    // No terminal and no --yes: refused, nothing signalled.
    let g = pgid.to_string();
    let (code, _, stderr) = dpgui(&["ports", "--port", &p, "--free", &g], home.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(std::path::Path::new(&format!("/proc/{rank}")).exists());

    let (code, stdout, stderr) = dpgui(
        &[
            "ports",
            "--port",
            &p,
            "--free",
            &g,
            "--yes",
            "--json",
            "--stop-grace",
            "5",
        ],
        home.path(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["pgid"], pgid);
    assert_eq!(r["outcomes"][0]["pid"], rank);
    assert_eq!(r["outcomes"][0]["fate"], "terminated");
    assert_eq!(r["ports_freed"][0], port);
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("port free again");

    // A group that is neither a leftover nor a port holder is refused.
    let (code, _, stderr) = dpgui(&["ports", "--free", "999999", "--yes"], home.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("nothing was signalled"), "{stderr}");
}

/// As an ordinary user, a port held by another user's process is "in use by uid N (pid not
/// visible)", never free.
#[test]
fn another_users_listener_is_busy_with_a_hidden_pid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run dpgui as another user");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    // The temp dir must be usable by nobody (HOME, XDG dirs).
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let (code, stdout, stderr) = dpgui_as(
        Some(65534),
        &["ports", "--port", &port, "--json"],
        home.path(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["listening"], true);
    let h = &v[0]["holders"][0];
    assert_eq!(h["pid"], serde_json::Value::Null, "{stdout}");
    assert_eq!(h["uid"], 0);
    // And the text form says so in words.
    let (_, text, _) = dpgui_as(Some(65534), &["ports", "--port", &port], home.path());
    assert!(
        text.contains("in use by uid 0 (root), pid not visible"),
        "{text}"
    );
    drop(held);
}

/// A port used by a connection (no listener) still stops a trainer from binding it: it must
/// show as busy, never as free.
#[test]
fn a_port_held_by_a_connection_is_busy_not_free() {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let home = tempfile::tempdir().unwrap();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let local: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    bind(&client, &local).unwrap();
    let bound: std::net::SocketAddr = rustix::net::getsockname(&client)
        .unwrap()
        .try_into()
        .unwrap();
    let port = bound.port();
    connect(&client, &server.local_addr().unwrap()).unwrap();
    let (_accepted, _) = server.accept().unwrap();

    let p = port.to_string();
    let (code, stdout, _) = dpgui(&["ports", "--port", &p, "--json"], home.path());
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["listening"], false);
    assert_eq!(v[0]["bindable"], false, "{stdout}");
    let (_, text, _) = dpgui(&["ports", "--port", &p], home.path());
    assert!(text.contains("busy: cannot be bound"), "{text}");
    assert!(!text.contains("free"), "{text}");
    drop(client);
}
