//! The real DeepSpeed launcher (deepspeed 0.18.4 from a test venv, CPU ranks on gloo) running the
//! diffusion-pipe stand-in in tests/fixtures/dp_checkout with two ranks, launched the way dpgui
//! launches diffusion-pipe: cwd = the checkout, `--include localhost:0,1`, the port given both
//! before and after train.py. Proves the stand-in keeps diffusion-pipe's contract: the stdout lines,
//! the run dir layout, and `save_quit`.
//!
//! Needs the venv from `common::venv::deepspeed_venv()`: skipped with a note without it, unless CI
//! is set. One run takes ~15 s on 2 cores once DeepSpeed's CPU op is built (~30 s, once).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use common::venv::{deepspeed_venv, launcher_env};

/// Generous: the first run on a machine JIT-builds DeepSpeed's shm op, and a 2-core box may run
/// both tests' 2×4 Python processes at once.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dp_checkout")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A main config in `dir` whose output_dir is `out`; the dataset is the fixture's example.
fn write_config(dir: &Path, out: &Path, epochs: u32) -> PathBuf {
    let cfg = dir.join("lora.toml");
    std::fs::write(
        &cfg,
        format!(
            "output_dir = '{}'\n\
             dataset = 'examples/dataset.toml'\n\
             epochs = {epochs}\n\
             save_every_n_epochs = 1\n\
             micro_batch_size_per_gpu = 1\n\
             pipeline_stages = 1\n\
             \n\
             [model]\n\
             type = 'sdxl'\n\
             checkpoint_path = '/nonexistent/sdxl.safetensors'\n\
             dtype = 'bfloat16'\n\
             \n\
             [adapter]\n\
             type = 'lora'\n\
             rank = 4\n\
             \n\
             [optimizer]\n\
             type = 'adamw_optimi'\n\
             lr = 2e-5\n",
            out.display()
        ),
    )
    .unwrap();
    cfg
}

/// A launcher job in its own process group; stdout and stderr merged line by line as they come.
struct Launch {
    child: Child,
    pgid: i32,
    lines: mpsc::Receiver<String>,
    transcript: String,
    deadline: Instant,
    reaped: bool,
}

impl Launch {
    fn start(venv: &Path, config: &Path, port: u16, env: &[(&str, &str)]) -> Launch {
        let port_arg = format!("--master_port={port}");
        let mut cmd = Command::new(venv.join("bin").join("deepspeed"));
        cmd.args([
            "--include",
            "localhost:0,1",
            &port_arg,
            "train.py",
            "--deepspeed",
            "--config",
        ])
        .arg(config)
        .arg(&port_arg)
        .current_dir(checkout())
        .envs(launcher_env(venv))
        .env("LOCAL_SIZE", "2")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = cmd.spawn().expect("spawn the deepspeed runner");
        let pgid = child.id() as i32;
        let (tx, lines) = mpsc::channel();
        spawn_reader(child.stdout.take().unwrap(), tx.clone());
        spawn_reader(child.stderr.take().unwrap(), tx);
        Launch {
            child,
            pgid,
            lines,
            transcript: String::new(),
            deadline: Instant::now() + RUN_TIMEOUT,
            reaped: false,
        }
    }

    /// The next output line; `None` once every process holding the pipes has gone.
    fn next_line(&mut self) -> Option<String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                eprintln!("[launcher] {line}");
                self.transcript.push_str(&line);
                self.transcript.push('\n');
                Some(line)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
                panic!(
                    "launcher job still running after {RUN_TIMEOUT:?}; killed. Output:\n{}",
                    self.transcript
                );
            }
        }
    }

    /// Reads to the end, reaps the runner, checks nothing of the job is left; returns the runner's
    /// status and the whole output.
    fn finish(mut self) -> (ExitStatus, String) {
        while self.next_line().is_some() {}
        let status = self.child.wait().unwrap();
        self.reaped = true;
        assert!(
            killpg(Pid::from_raw(self.pgid), None).is_err(),
            "processes of the job's group {} outlived the runner. Output:\n{}",
            self.pgid,
            self.transcript
        );
        (status, std::mem::take(&mut self.transcript))
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn spawn_reader(pipe: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    if tx
                        .send(line.trim_end_matches(['\n', '\r']).to_string())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
}

/// `steps: N loss: ...` → N.
fn step_of(line: &str) -> Option<u32> {
    line.strip_prefix("steps: ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// launch.py's per-rank success line: `[...] [INFO] [launch.py:..:main] Process <PID> exits successfully.`
fn successful_exits(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.split_once("Process ").is_some_and(|(_, rest)| {
                rest.strip_suffix(" exits successfully.")
                    .is_some_and(|pid| pid.parse::<u32>().is_ok())
            })
        })
        .count()
}

fn count(log: &str, line: &str) -> usize {
    log.lines().filter(|l| *l == line).count()
}

/// The only entry of `out`, which must be named like diffusion-pipe's run dirs (`%Y%m%d_%H-%M-%S`).
fn the_run_dir(out: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("read {}: {e}", out.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "expected one run dir in {}: {entries:?}",
        out.display()
    );
    let name = entries[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let shape: String = name
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "99999999_99-99-99", "run dir name {name:?}");
    assert!(entries[0].is_dir());
    entries[0].clone()
}

#[test]
fn two_ranks_train_to_completion() {
    let Some(venv) = deepspeed_venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = write_config(tmp.path(), &out, 2);
    let port = free_port();

    let started = Instant::now();
    let job = Launch::start(
        &venv,
        &cfg,
        port,
        &[
            ("DP_TEST_STEPS_PER_EPOCH", "3"),
            ("DP_TEST_STEP_SECONDS", "0.05"),
        ],
    );
    let (status, log) = job.finish();
    eprintln!(
        "2 ranks x 6 steps through the real launcher: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    assert!(
        status.success(),
        "runner exited with {status}. Output:\n{log}"
    );
    assert_eq!(
        successful_exits(&log),
        2,
        "both ranks must exit successfully. Output:\n{log}"
    );
    // train.py got the port after the script too (the only place diffusion-pipe reads it from).
    assert!(
        log.lines()
            .filter(|l| l.contains("spawned with command:"))
            .all(|l| l.contains(&format!("'--master_port={port}'"))),
        "{log}"
    );
    assert_eq!(count(&log, "Global batch size = 2"), 2, "{log}");
    let steps: Vec<u32> = log.lines().filter_map(step_of).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "{log}");
    assert_eq!(count(&log, "Started new epoch: 2"), 1, "{log}");
    assert_eq!(count(&log, "Saving model to directory epoch1"), 1, "{log}");
    assert_eq!(count(&log, "Saving model to directory epoch2"), 1, "{log}");
    assert_eq!(count(&log, "TRAINING COMPLETE!"), 1, "{log}");
    assert!(!log.contains("Traceback"), "{log}");

    let run = the_run_dir(&out);
    assert!(
        run.join("lora.toml").is_file(),
        "config copied into the run dir"
    );
    for e in ["epoch1", "epoch2"] {
        assert!(
            run.join(e).join("adapter_model.safetensors").is_file(),
            "{e} saved"
        );
    }
    assert_eq!(
        std::fs::read_to_string(run.join("latest")).unwrap().trim(),
        "global_step6"
    );
    assert!(run.join("global_step6").is_dir());
}

#[test]
fn save_quit_checkpoints_and_exits_zero() {
    let Some(venv) = deepspeed_venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = write_config(tmp.path(), &out, 2);
    let port = free_port();

    let started = Instant::now();
    let mut job = Launch::start(
        &venv,
        &cfg,
        port,
        // Far more steps than it will run: only save_quit ends this job.
        &[
            ("DP_TEST_STEPS_PER_EPOCH", "1000"),
            ("DP_TEST_STEP_SECONDS", "0.05"),
        ],
    );
    let mut requested_at = None;
    let mut last_step = 0;
    while let Some(line) = job.next_line() {
        let Some(step) = step_of(&line) else { continue };
        last_step = step;
        if requested_at.is_none() {
            // Rank 0 made the run dir before its first step.
            let run = the_run_dir(&out);
            std::fs::write(run.join("save_quit"), b"").unwrap();
            requested_at = Some(step);
        }
    }
    let (status, log) = job.finish();
    eprintln!(
        "2 ranks, save_quit after step {requested_at:?}, quit at step {last_step}: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let requested_at = requested_at.unwrap_or_else(|| panic!("no `steps:` line. Output:\n{log}"));
    assert!(
        status.success(),
        "runner exited with {status}. Output:\n{log}"
    );
    assert_eq!(
        successful_exits(&log),
        2,
        "both ranks must exit 0. Output:\n{log}"
    );
    assert_eq!(count(&log, "Manually quitting"), 1, "{log}");
    assert_eq!(count(&log, "TRAINING COMPLETE!"), 0, "{log}");
    assert!(
        last_step >= requested_at && last_step < 1000,
        "quit at step {last_step}, requested after {requested_at}"
    );

    let run = the_run_dir(&out);
    let tag = format!("global_step{last_step}");
    assert_eq!(
        std::fs::read_to_string(run.join("latest")).unwrap().trim(),
        tag
    );
    assert!(run.join(&tag).is_dir(), "{tag} in {}", run.display());
    assert!(!run.join("save_quit").exists(), "save_quit is consumed");
    assert!(
        !run.join("epoch1").exists(),
        "no model saved before the epoch ended"
    );
}
