//! dpgui jobs end to end, with the real DeepSpeed launcher (deepspeed 0.18.4, CPU ranks on gloo)
//! running the diffusion-pipe stand-in in tests/fixtures/dp_checkout: `dpgui launch` starts a
//! detached supervisor, `dpgui jobs --json` reports, `dpgui stop` ends jobs, and the machine is
//! checked afterwards (no tagged process left, the port bindable).
//!
//! Port tests run in a private network namespace (`unshare --net`, as root) so they can squat
//! port 29500 without touching the machine; elsewhere they run only if 29500 is free.
//!
//! Waiting is on events: the supervisor's exit (pidfd), or a line appearing in a log (the file is
//! re-read until the line is there, with a deadline).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::venv::{deepspeed_venv, launcher_env};
use dpgui::system::procs::{ProcId, ProcessScanner, read_identity};

const DEADLINE: Duration = Duration::from_secs(300);

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dp_checkout")
}

/// One isolated dpgui world: its own state and config dirs, a training config, a venv.
struct World {
    dir: tempfile::TempDir,
    venv: PathBuf,
    extra_env: Vec<(String, String)>,
}

/// A failed assertion must not leave a long job running: it would hold CPU and ports and slow
/// the other tests into timeouts. Whatever carries one of this world's job tags is killed.
impl Drop for World {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir(self.state_dir().join("jobs")) else {
            return;
        };
        let ids: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let table = ProcessScanner::new().scan();
        let targets: Vec<dpgui::system::signals::Target> = table
            .iter()
            .filter(|p| p.job_tag.as_ref().is_some_and(|t| ids.contains(t)))
            .map(|p| dpgui::system::signals::Target {
                id: p.id,
                uid: p.uid,
            })
            .collect();
        if !targets.is_empty() {
            dpgui::system::signals::ladder(&targets, &[], Default::default());
        }
    }
}

impl World {
    fn new(settings: &str) -> Option<World> {
        let venv = deepspeed_venv()?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("config/dpgui")).unwrap();
        std::fs::write(d.join("config/dpgui/config.toml"), settings).unwrap();
        // A path with a space and a quote: argv only, never a shell string.
        common::configs::write_training_config(d, &d.join("my 'configs'/train.toml"), 2);
        Some(World {
            dir,
            venv,
            extra_env: Vec::new(),
        })
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("my 'configs'/train.toml")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state/dpgui")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dpgui"));
        c.env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .envs(launcher_env(&self.venv))
            .args(["--diffusion-pipe"])
            .arg(checkout())
            .arg("--python")
            .arg(&self.venv)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap();
        eprintln!(
            "$ dpgui {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `dpgui launch` with the test knobs as extra env; returns the job id.
    fn launch(&self, knobs: &[(&str, &str)], port: &str) -> String {
        let cfg = self.config();
        let mut args: Vec<String> = vec![
            "launch".into(),
            "--config".into(),
            cfg.display().to_string(),
            "--gpus".into(),
            "0,1".into(),
            "--port".into(),
            port.into(),
        ];
        for (k, v) in knobs.iter().chain(
            self.extra_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>()
                .iter(),
        ) {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&refs);
        assert!(out.status.success(), "launch failed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn job_dir(&self, id: &str) -> PathBuf {
        self.state_dir().join("jobs").join(id)
    }

    fn journal(&self, id: &str) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.job_dir(id).join("journal.json")).unwrap(),
        )
        .unwrap()
    }

    fn jobs_json(&self) -> Vec<Value> {
        let out = self.run(&["jobs", "--json"]);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn job(&self, id: &str) -> Value {
        self.jobs_json()
            .into_iter()
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("job {id} not listed"))
    }

    fn supervisor(&self, id: &str) -> ProcId {
        let s = &self.journal(id)["supervisor"];
        ProcId {
            pid: s["pid"].as_u64().unwrap() as u32,
            start_ticks: s["start_ticks"].as_u64().unwrap(),
        }
    }

    /// Waits for the supervisor to exit (pidfd), then returns the final journal.
    fn wait_end(&self, id: &str) -> Value {
        let left = dpgui::system::signals::wait_for_exit(&[self.supervisor(id)], DEADLINE);
        assert!(left.is_empty(), "job {id} did not end within {DEADLINE:?}");
        self.journal(id)
    }

    fn rank_log(&self, id: &str, rank: u32) -> Option<PathBuf> {
        std::fs::read_dir(self.job_dir(id).join("ranks"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(&format!("_rank{rank}.log")))
            })
    }

    /// Re-reads rank `rank`'s log until it contains `needle` (the job must still be running).
    fn wait_line(&self, id: &str, rank: u32, needle: &str) {
        let t0 = Instant::now();
        loop {
            if let Some(p) = self.rank_log(id, rank)
                && std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle))
            {
                return;
            }
            assert!(
                t0.elapsed() < DEADLINE,
                "rank {rank} of {id} never printed {needle:?}"
            );
            assert!(
                !self.journal(id)["ended"].as_bool().unwrap(),
                "job {id} ended before printing {needle:?}: {}",
                self.journal(id)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Live processes carrying this job's tag.
    fn tagged(&self, id: &str) -> Vec<u32> {
        ProcessScanner::new()
            .scan()
            .iter()
            .filter(|p| p.job_tag.as_deref() == Some(id))
            .map(|p| p.pid())
            .collect()
    }
}

/// Runs the calling test again inside a private network namespace (root with `unshare`), so it
/// can hold port 29500. Returns true when this call did that (the caller returns); false when the
/// caller should run the body itself: inside the namespace, or where none can be made and 29500
/// is free here.
fn reran_in_netns(test: &str) -> bool {
    if std::env::var_os("DPGUI_TEST_IN_NETNS").is_some() {
        return false;
    }
    // Can a namespace be made here at all? (Asked separately, so that a failure of the test
    // inside one is never mistaken for "no namespace" and re-run on the host.)
    let can = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        eprintln!(
            "no private network namespace here (needs root, unshare and ip); using the host's"
        );
        if !dpgui::system::ports::port_is_free(29500) {
            eprintln!("skipping: port 29500 is busy here and no namespace can be made");
            return true;
        }
        return false;
    }
    // The namespace has no network: the venv (pip downloads) is provisioned out here first; the
    // run inside finds it ready. Skipped out here means skipped in there too.
    if deepspeed_venv().is_none() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("DPGUI_TEST_IN_NETNS", "1")
        .status();
    match status {
        Ok(s) if s.success() => true,
        other => panic!("{test} failed inside the network namespace: {other:?}"),
    }
}

/// On the host (no namespace), the tests that hold 29500 take turns.
static PORT_29500: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds 0.0.0.0:29500 like an orphaned rank 0 would.
fn squat_29500() -> (std::sync::MutexGuard<'static, ()>, std::net::TcpListener) {
    let turn = PORT_29500.lock().unwrap_or_else(|e| e.into_inner());
    let l = std::net::TcpListener::bind("0.0.0.0:29500").expect("29500 must be free");
    (turn, l)
}

#[test]
fn with_29500_held_a_dpgui_launch_succeeds_on_another_port() {
    if reran_in_netns("with_29500_held_a_dpgui_launch_succeeds_on_another_port") {
        return;
    }
    // The range starts at 29500, so the chooser has to see it is held.
    let Some(w) = World::new("port_range = [29500, 29600]\n") else {
        return;
    };
    let _squatter = squat_29500();
    let id = w.launch(&[], "auto");
    let j = w.wait_end(&id);
    assert_eq!(j["state"], "succeeded", "{j:#}");
    let port = j["port"].as_u64().unwrap();
    assert_ne!(port, 29500);
    assert!((29501..=29600).contains(&port));
    // The port went in both places.
    let args: Vec<String> = serde_json::from_value(j["plan"]["args"].clone()).unwrap();
    let script = args.iter().position(|a| a == "train.py").unwrap();
    let flag = format!("--master_port={port}");
    assert!(args[..script].contains(&flag) && args[script..].contains(&flag));
    let log = std::fs::read_to_string(w.rank_log(&id, 0).unwrap()).unwrap();
    assert!(log.contains("TRAINING COMPLETE!"));

    // Progress, loss and epoch come from the real output.
    let listed = w.job(&id);
    assert_eq!(listed["epoch"], 2);
    assert_eq!(listed["step"], 10);
    assert_eq!(listed["total_steps"], 10);
    assert!(listed["loss"].as_f64().unwrap().is_finite());
    assert_eq!(listed["exit_code"], 0);
    assert!(w.tagged(&id).is_empty());
}

#[test]
fn the_same_trainer_with_the_port_only_before_train_py_fails_with_eaddrinuse() {
    if reran_in_netns("the_same_trainer_with_the_port_only_before_train_py_fails_with_eaddrinuse") {
        return;
    }
    let Some(w) = World::new("") else {
        return;
    };
    let _squatter = squat_29500();
    // What the seed's tool did: the port for the launcher only; train.py falls back to 29500.
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(w.venv.join("bin/deepspeed"))
        .args([
            "--include",
            "localhost:0,1",
            &format!("--master_port={port}"),
            "train.py",
            "--deepspeed",
            "--config",
        ])
        .arg(w.config())
        .current_dir(checkout())
        .envs(launcher_env(&w.venv))
        .env("LOCAL_SIZE", "2")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("EADDRINUSE") || text.contains("Address already in use"),
        "expected EADDRINUSE:\n{text}"
    );
    // dpgui's judge explains it, with the port.
    let mut judge = dpgui::trainer::progress::RunJudge::default();
    for line in text.lines() {
        judge.feed_launcher(line);
        judge.feed_rank(0, line);
    }
    match judge.outcome(out.status.code()) {
        dpgui::trainer::progress::Outcome::Failed { reason } => {
            assert!(reason.contains("29500"), "{reason}")
        }
        o => panic!("not judged a failure: {o:?}"),
    }
}

#[test]
fn stop_ends_every_process_and_frees_the_port_and_a_rank_ignoring_sigterm_is_killed() {
    let Some(w) = World::new("job_interrupt_grace_secs = 2\njob_terminate_grace_secs = 2\n") else {
        return;
    };
    let id = w.launch(
        &[
            ("DP_TEST_STEPS_PER_EPOCH", "100000"),
            ("DP_TEST_IGNORE_SIGTERM_RANK", "1"),
        ],
        "auto",
    );
    w.wait_line(&id, 0, "steps: ");
    let before = w.tagged(&id);
    assert!(before.len() >= 4, "runner, launch.py, 2 ranks: {before:?}");
    let port = w.journal(&id)["port"].as_u64().unwrap() as u16;
    assert!(!dpgui::system::ports::port_is_free(port), "rank 0 listens");
    let stubborn = w.journal(&id)["ranks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["local_rank"] == 1)
        .map(|r| r["pid"].as_u64().unwrap() as u32)
        .expect("rank 1 recorded");

    let out = w.run(&["stop", &id, "--json"]);
    assert!(out.status.success(), "stop reported leftovers");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["remaining"].as_array().unwrap().len(), 0);
    assert_eq!(report["port_free"], true);
    let fate_of = |pid: u32| {
        report["ladder"]["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["pid"] == pid)
            .map(|o| o["fate"].as_str().unwrap().to_string())
    };
    assert_eq!(fate_of(stubborn).as_deref(), Some("killed"), "{report:#}");
    assert!(w.tagged(&id).is_empty());
    assert!(dpgui::system::ports::port_is_free(port));
    let j = w.wait_end(&id);
    assert_eq!(j["state"], "stopped", "{j:#}");
    assert_eq!(w.job(&id)["state"], "stopped");
}

#[test]
fn save_and_stop_writes_a_checkpoint_and_kill_leaves_nothing() {
    let Some(w) = World::new("") else {
        return;
    };
    let id = w.launch(&[("DP_TEST_STEPS_PER_EPOCH", "100000")], "auto");
    w.wait_line(&id, 0, "steps: ");
    let out = w.run(&["stop", &id, "--save", "--json"]);
    assert!(out.status.success());
    let j = w.wait_end(&id);
    assert_eq!(j["state"], "stopped", "{j:#}");
    assert!(j["reason"].as_str().unwrap().contains("saved a checkpoint"));
    let run_dir = PathBuf::from(j["run_dir"].as_str().unwrap());
    assert!(run_dir.join("latest").is_file(), "resumable checkpoint");
    let log = std::fs::read_to_string(w.rank_log(&id, 0).unwrap()).unwrap();
    assert!(log.contains("Manually quitting"));
    assert!(w.tagged(&id).is_empty());

    // Resume from it, then kill.
    let id2 = {
        let cfg = w.config();
        let out = w.run(&[
            "launch",
            "--config",
            &cfg.display().to_string(),
            "--gpus",
            "0,1",
            "--resume",
            "--env",
            "DP_TEST_STEPS_PER_EPOCH=100000",
        ]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    w.wait_line(&id2, 0, "Resuming training from checkpoint");
    assert_eq!(
        w.journal(&id2)["run_dir"],
        j["run_dir"],
        "resumed in the same run dir"
    );
    let port = w.journal(&id2)["port"].as_u64().unwrap() as u16;
    let out = w.run(&["stop", &id2, "--kill", "--yes", "--json"]);
    assert!(out.status.success());
    assert!(w.tagged(&id2).is_empty());
    assert!(dpgui::system::ports::port_is_free(port));
    assert_eq!(w.wait_end(&id2)["state"], "stopped");
}

#[test]
fn a_killed_supervisor_shows_as_lost_and_the_job_can_still_be_stopped() {
    let Some(w) = World::new("job_interrupt_grace_secs = 5\n") else {
        return;
    };
    let id = w.launch(&[("DP_TEST_STEPS_PER_EPOCH", "100000")], "auto");
    w.wait_line(&id, 0, "steps: ");
    let sup = w.supervisor(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(dpgui::system::signals::wait_for_exit(&[sup], DEADLINE).is_empty());
    // The supervisor was a child of the (exited) launch command: init reaps it.
    let listed = w.job(&id);
    assert_eq!(listed["state"], "lost", "{listed:#}");
    let reason = listed["reason"].as_str().unwrap();
    assert!(reason.starts_with("supervisor lost, "), "{reason}");
    assert!(
        reason.contains("processes of this job still running"),
        "{reason}"
    );
    let port = listed["port"].as_u64().unwrap() as u16;

    let out = w.run(&["stop", &id, "--json"]);
    assert!(out.status.success());
    assert!(w.tagged(&id).is_empty());
    assert!(dpgui::system::ports::port_is_free(port));
    let listed = w.job(&id);
    assert_eq!(listed["state"], "stopped");
    assert!(
        listed["reason"]
            .as_str()
            .unwrap()
            .contains("after its supervisor was lost")
    );
}

#[test]
fn a_job_outlives_the_process_that_launched_it_and_is_judged_by_its_ranks() {
    let Some(w) = World::new("") else {
        return;
    };
    // Launch from a process that is then SIGKILLed while the job runs: the supervisor is in its
    // own session and does not care.
    let mut launcher = w
        .cmd(&[
            "launch",
            "--config",
            &w.config().display().to_string(),
            "--gpus",
            "0,1",
            "--env",
            "DP_TEST_STEPS_PER_EPOCH=8",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(launcher.stdout.take().unwrap())
        .read_line(&mut id)
        .unwrap();
    let id = id.trim().to_string();
    let _ = launcher.kill();
    let _ = launcher.wait();
    let sup = w.supervisor(&id);
    let sup_info = dpgui::system::procs::ProcessScanner::new().scan();
    let sp = sup_info.get(sup.pid).expect("supervisor alive");
    assert_eq!(sp.sid, sup.pid, "the supervisor leads its own session");
    assert_eq!(read_identity(sup.pid), Some(sup));
    let j = w.wait_end(&id);
    assert_eq!(j["state"], "succeeded", "{j:#}");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["ended"], true);
    assert_eq!(j["progress"]["complete"], true);
    // And `dpgui logs` prints rank 0's log with the final line.
    let out = w.run(&["logs", &id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("TRAINING COMPLETE!"));
}

#[test]
fn preflight_failures_are_one_sentence_each_and_nothing_starts() {
    let Some(w) = World::new("") else {
        return;
    };
    let bad = w.dir.path().join("bad.toml");
    std::fs::write(&bad, "epochs = 2\n[model]\ntype = 'sdxl'\n").unwrap();
    let out = w.run(&[
        "launch",
        "--config",
        &bad.display().to_string(),
        "--gpus",
        "0,1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fails: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "fail")
        .collect();
    for key in ["output_dir", "dataset", "`dtype`", "save_every_n_epochs"] {
        assert!(
            fails
                .iter()
                .any(|f| f["message"].as_str().unwrap().contains(key)),
            "{key}: {v:#}"
        );
    }
    assert!(fails.iter().all(|f| f["fix"].is_string()));
    assert!(
        !w.state_dir().join("jobs").exists()
            || std::fs::read_dir(w.state_dir().join("jobs"))
                .unwrap()
                .count()
                == 0
    );

    // --dry-run prints the argv and starts nothing.
    let out = w.run(&[
        "launch",
        "--config",
        &w.config().display().to_string(),
        "--gpus",
        "0,1",
        "--dry-run",
        "--json",
    ]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let argv: Vec<String> = serde_json::from_value(v["argv"].clone()).unwrap();
    assert_eq!(argv[0], w.venv.join("bin/deepspeed").display().to_string());
    assert_eq!(&argv[1..3], ["--include", "localhost:0,1"]);
    assert!(argv.contains(&w.config().display().to_string()));
    assert_eq!(v["cwd"], checkout().display().to_string());
    let env: Vec<(String, String)> = serde_json::from_value(v["env"].clone()).unwrap();
    assert!(
        env.contains(&("LOCAL_SIZE".into(), "2".into())),
        "CPU ranks: {env:?}"
    );
    assert!(w.jobs_json().is_empty());
}
