//! The Python probe against real processes: the machine's python3 and fake interpreters in
//! `tests/fixtures/python/`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dpgui::system::checkout;
use dpgui::system::checks::{self, CheckInputs, Status};
use dpgui::system::python::{self, ProbeReport, ProbeResult, PythonChoice, PythonSource};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python")
        .join(name)
}

fn failed_reason(r: ProbeResult) -> String {
    match r {
        ProbeResult::Failed { reason } => reason,
        ProbeResult::Ok(rep) => panic!("expected a failure, got {rep:#?}"),
    }
}

fn real_python3() -> Option<PathBuf> {
    let p = python::search_path(&std::env::var("PATH").unwrap_or_default(), "python3");
    if p.is_none() {
        eprintln!("note: no python3 on PATH, skipping");
    }
    p
}

/// Whether `pid` is gone: no /proc entry, or a zombie waiting for its (new) parent.
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

#[test]
fn fixtures_are_executable() {
    for name in [
        "garbage",
        "hang",
        "fails",
        "wrong-shape",
        "silent",
        "cuda-box",
        "leaves-child",
        "leaves-daemon",
    ] {
        let mode = std::fs::metadata(fixture(name))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
            .permissions()
            .mode();
        assert!(
            mode & 0o111 != 0,
            "tests/fixtures/python/{name} lost its executable bit (git update-index --chmod=+x)"
        );
    }
}

#[tokio::test]
async fn real_python3_reports_itself_without_crashing() {
    let Some(py) = real_python3() else { return };
    let r = python::probe(&py, Duration::from_secs(120)).await;
    let report: ProbeReport = match r {
        ProbeResult::Ok(r) => r,
        ProbeResult::Failed { reason } => panic!("probe of {} failed: {reason}", py.display()),
    };
    eprintln!("{report:#?}");
    assert_eq!(report.python.major, 3);
    assert!(
        report
            .python
            .executable
            .as_deref()
            .is_some_and(|e| !e.is_empty())
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Whatever is installed, torch's presence in metadata and the import section agree.
    if report.packages.torch.is_none() {
        assert!(report.torch.is_none() || !report.torch.as_ref().unwrap().imported);
    }

    // Evaluate it the way the Environment tab and `dpgui doctor` do.
    let choice = PythonChoice {
        path: Some(py.clone()),
        source: PythonSource::Path,
        note: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let co = checkout::inspect_checkout(dir.path());
    let probe = ProbeResult::Ok(report.clone());
    let list = checks::evaluate(&CheckInputs {
        python: &choice,
        probe: Some(&probe),
        checkout_dir: dir.path(),
        checkout: &co,
        gpu_names: None,
        hostfile_exists: false,
        nccl_env: (None, None),
    });
    let version = list.iter().find(|c| c.id == "python.version").unwrap();
    if report.python.minor < 12 {
        assert_eq!(version.status, Status::Fail);
        assert!(
            version.detail.contains(
                "diffusion-pipe needs Python >= 3.12: utils/cache.py calls \
                 sqlite3.connect(autocommit=...), added in 3.12"
            ),
            "{}",
            version.detail
        );
        assert!(
            version
                .detail
                .contains(&format!("3.{}.", report.python.minor))
        );
    } else {
        assert_eq!(version.status, Status::Pass);
    }
    let torch = list.iter().find(|c| c.id == "torch.installed").unwrap();
    if report.packages.torch.is_none() {
        assert_eq!(torch.status, Status::Fail);
        assert!(
            torch.fix.as_deref().unwrap().contains(
                "-m pip install torch --index-url https://download.pytorch.org/whl/cu128"
            )
        );
    }
    assert!(checks::any_failed(&list)); // the temp dir is no diffusion-pipe checkout
}

/// On the build machine (Python 3.11, no torch) the facts the brief promises.
#[tokio::test]
async fn real_python3_on_the_build_machine() {
    let Some(py) = real_python3() else { return };
    let ProbeResult::Ok(r) = python::probe(&py, Duration::from_secs(120)).await else {
        panic!("probe failed");
    };
    if (r.python.major, r.python.minor) != (3, 11) || r.packages.torch.is_some() {
        eprintln!(
            "note: python3 here is {} with torch {:?}; build-machine assertions skipped",
            r.python.version(),
            r.packages.torch
        );
        return;
    }
    assert_eq!(r.packages.torch, None);
    assert_eq!(r.torch, None);
    assert_eq!(r.packages.deepspeed, None);
}

#[tokio::test]
async fn gather_with_real_python3_and_missing_checkout() {
    let Some(py) = real_python3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("diffusion-pipe");
    let facts = checks::CheckFacts::read(Some(&py), &missing, None);
    assert_eq!(facts.python.source, PythonSource::Configured);
    let probe = facts.probe(Duration::from_secs(120)).await;
    assert!(matches!(probe, Some(ProbeResult::Ok(_))));
    let list = facts.evaluate(probe.as_ref());
    let present = list.iter().find(|c| c.id == "checkout.present").unwrap();
    assert_eq!(present.status, Status::Fail);
    assert!(
        present
            .fix
            .as_deref()
            .unwrap()
            .starts_with("git clone --recurse-submodules")
    );
    assert!(checks::any_failed(&list));
    assert_eq!(checks::worst(&list), Status::Fail);
    // Before the probe answers, its checks are pending and none of them fails yet.
    let early = facts.evaluate(None);
    assert!(early.iter().any(|c| c.status == Status::Pending));
    assert!(
        !early
            .iter()
            .any(|c| c.id == "python.version" && c.status == Status::Fail)
    );
    let plain = checks::gather(Some(&py), &missing, None, Duration::from_secs(120)).await;
    assert_eq!(plain, list);
}

#[tokio::test]
async fn garbage_output_is_reported_not_parsed() {
    let reason = failed_reason(python::probe(&fixture("garbage"), Duration::from_secs(10)).await);
    assert!(
        reason.contains("something other than the expected JSON"),
        "{reason}"
    );
    assert!(reason.contains("Welcome to NotPython"), "{reason}");
    assert!(
        reason.contains('\u{fffd}'),
        "invalid UTF-8 shown lossily: {reason}"
    );
    assert!(
        reason.chars().count() < 400,
        "output is truncated: {reason}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_garbage() {
    let reason =
        failed_reason(python::probe(&fixture("wrong-shape"), Duration::from_secs(10)).await);
    assert!(
        reason.contains("something other than the expected JSON"),
        "{reason}"
    );
    assert!(reason.contains("hello"), "{reason}");
}

#[tokio::test]
async fn silent_interpreter() {
    let reason = failed_reason(python::probe(&fixture("silent"), Duration::from_secs(10)).await);
    assert!(reason.contains("printed nothing"), "{reason}");
}

#[tokio::test]
async fn non_zero_exit_shows_stderr_tail() {
    let reason = failed_reason(python::probe(&fixture("fails"), Duration::from_secs(10)).await);
    assert!(reason.contains("exited with status 3"), "{reason}");
    assert!(
        reason.contains("ImportError: something is badly broken"),
        "{reason}"
    );
}

#[tokio::test]
async fn missing_and_non_executable_interpreters() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("python3.99");
    let reason = failed_reason(python::probe(&missing, Duration::from_secs(5)).await);
    assert!(reason.contains("not found"), "{reason}");
    assert!(reason.contains("python3.99"), "{reason}");

    let plain = dir.path().join("python");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reason = failed_reason(python::probe(&plain, Duration::from_secs(5)).await);
    assert!(reason.contains("not executable"), "{reason}");
}

#[tokio::test]
async fn healthy_cuda_report_is_parsed_and_passes() {
    let ProbeResult::Ok(r) = python::probe(&fixture("cuda-box"), Duration::from_secs(10)).await
    else {
        panic!("cuda-box should parse");
    };
    assert_eq!(r.python.version(), "3.12.11");
    let t = r.torch.as_ref().unwrap();
    assert_eq!(t.cuda.as_deref(), Some("12.8"));
    assert_eq!(t.device_count, 2);
    assert_eq!(t.devices[1].name, "NVIDIA GeForce RTX 4090");
    assert_eq!(r.packages.flash_attn, None);

    let dir = tempfile::tempdir().unwrap();
    let co = checkout::inspect_checkout(dir.path());
    let choice = PythonChoice {
        path: Some(fixture("cuda-box")),
        source: PythonSource::Configured,
        note: None,
    };
    let probe = ProbeResult::Ok(r);
    let gpus = vec!["NVIDIA GeForce RTX 4090".to_string(); 2];
    let list = checks::evaluate(&CheckInputs {
        python: &choice,
        probe: Some(&probe),
        checkout_dir: dir.path(),
        checkout: &co,
        gpu_names: Some(&gpus),
        hostfile_exists: false,
        nccl_env: (None, None),
    });
    let status = |id: &str| list.iter().find(|c| c.id == id).unwrap().status.clone();
    for id in [
        "python.version",
        "torch.installed",
        "torch.cuda_build",
        "cuda.devices",
        "deepspeed.version",
        "python.requirements",
    ] {
        assert_eq!(status(id), Status::Pass, "{id}");
    }
    assert_eq!(status("flash_attn"), Status::Info);
    assert_eq!(status("nccl.consumer_gpus"), Status::Warn);
}

#[tokio::test]
async fn hung_probe_times_out_and_its_process_group_dies() {
    // The fixture has 1 s to record its pids before the probe gives up on it; on a machine
    // that busy it may not even get that far, and then there is nothing to check: try again.
    for attempt in 1..=5 {
        let (dir, hang) = link_fixture("hang");
        let start = Instant::now();
        let r = python::probe(&hang, Duration::from_secs(1)).await;
        let took = start.elapsed();
        let reason = failed_reason(r);
        assert_eq!(
            reason,
            "python probe timed out after 1s (importing torch can take a while; press r to retry)"
        );
        assert!(took < Duration::from_secs(5), "took {took:?}");

        let Some((leader, grandchild)) = try_read_pids(dir.path(), "hang") else {
            eprintln!("note: attempt {attempt}: the hang fixture did not start within 1s");
            continue;
        };
        assert_ne!(leader, grandchild);

        // The probe reaps its own child before returning: no /proc entry at all, not even a
        // zombie.
        assert!(
            !Path::new(&format!("/proc/{leader}")).exists(),
            "probe did not reap the interpreter {leader}"
        );
        // The grandchild got SIGKILL through the group; its new parent reaps it.
        wait_gone(grandchild, "grandchild");
        return;
    }
    panic!("the hang fixture never recorded its pids within the 1s timeout");
}

/// A fresh temp dir with a symlink to a fixture in it (the pid-recording fixtures write next to
/// `$0`). A symlink, not a copy: a copy is written through a file descriptor, and any process
/// another test thread forks meanwhile inherits that descriptor until its exec; running the copy
/// while one still holds it open for writing fails with ETXTBSY ("Text file busy").
fn link_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::os::unix::fs::symlink(fixture(name), &p).unwrap();
    (dir, p)
}

/// The two pids a fixture recorded in `<name>.pids`, once it has.
fn try_read_pids(dir: &Path, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.pids"))).ok()?;
    let v: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [a, b] => Some((a, b)),
        _ => None,
    }
}

fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(pid) {
        assert!(Instant::now() < deadline, "{what} {pid} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn dropping_a_running_probe_kills_its_group() {
    let (dir, hang) = link_fixture("hang");
    // The caller gives up (e.g. the user pressed r again) long before the probe's own timeout:
    // here, as soon as the fixture has started its child.
    let started = async {
        loop {
            if let Some(pids) = try_read_pids(dir.path(), "hang") {
                return pids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let raced = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            r = python::probe(&hang, Duration::from_secs(60)) => Err(r),
            pids = started => Ok(pids),
        }
    })
    .await;
    let (leader, grandchild) = match raced {
        Ok(Ok(pids)) => pids,
        Ok(Err(r)) => panic!("the probe cannot have finished: {r:?}"),
        Err(_) => panic!("the hang fixture never recorded its pids"),
    };
    wait_gone(grandchild, "grandchild");
    wait_gone(leader, "interpreter");
}

#[tokio::test]
async fn a_child_holding_the_pipes_does_not_block_the_answer() {
    let (dir, fake) = link_fixture("leaves-child");
    let start = Instant::now();
    let r = python::probe(&fake, Duration::from_secs(30)).await;
    let took = start.elapsed();
    let ProbeResult::Ok(report) = r else {
        panic!("expected the printed report, got {r:?}");
    };
    assert_eq!(report.python.version(), "3.12.0");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let (_, child) = try_read_pids(dir.path(), "leaves-child").expect("pids recorded before exit");
    wait_gone(child, "left-behind child");
}

/// A descendant that left the process group (its own session) cannot be killed with it and
/// keeps the pipes open for good: the report the interpreter printed is still the answer.
#[tokio::test]
async fn a_child_outside_the_group_holding_the_pipes_does_not_lose_the_answer() {
    let (dir, fake) = link_fixture("leaves-daemon");
    let start = Instant::now();
    let r = python::probe(&fake, Duration::from_secs(30)).await;
    let took = start.elapsed();

    // Clean up first: the daemon records its own pid (it may not have yet, on a busy machine).
    let pid_file = dir.path().join("leaves-daemon.pids");
    let deadline = Instant::now() + Duration::from_secs(30);
    let daemon: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never recorded its pid"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let comm = std::fs::read_to_string(format!("/proc/{daemon}/comm")).unwrap_or_default();
    if matches!(comm.trim(), "sh" | "sleep") {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    let ProbeResult::Ok(report) = r else {
        panic!("expected the printed report, got {r:?}");
    };
    assert_eq!(report.python.version(), "3.12.1");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}
