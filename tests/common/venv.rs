//! A Python venv with torch and deepspeed==0.18.4, for tests that run the real DeepSpeed launcher.
//!
//! `deepspeed_venv()` provisions `<target>/test-venv` once (~70 s and a 3 GB download the first
//! time; then instant) and `launcher_env()` gives the environment every real-launcher run needs.
//!
//! - `DPGUI_TEST_VENV=/path/to/venv` uses an existing venv instead (checked by importing torch and
//!   deepspeed; a DeepSpeed other than 0.18.4 is used with a note).
//! - `DPGUI_TEST_PYTHON` picks the interpreter that creates the venv (default `python3`).
//! - Without CI a venv that cannot be had makes the tests skip with a printed `skipping: ...` note;
//!   with `CI` set it panics with the pip output, so CI never silently skips them.
//!
//! Completeness is a marker file written after `pip install` and an import check succeeded, not the
//! directory existing: an interrupted install is redone (pip resumes where it stopped). A lock
//! file (`flock`) makes parallel test binaries build it once; a `OnceLock` does the same for the
//! threads of one binary.

use std::ffi::OsString;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// The DeepSpeed that diffusion-pipe pins in requirements.txt.
pub const DEEPSPEED_VERSION: &str = "0.18.4";

/// What pip installs. `ninja` (DeepSpeed JIT-builds its CPU shm op with it, from the venv's
/// `bin/`) and `py-cpuinfo` are Requires-Dist of deepspeed 0.18.4 and come with it. The JIT build
/// also needs a C++ compiler on the machine (g++).
const PIP_PACKAGES: [&str; 2] = ["torch", "deepspeed==0.18.4"];

/// Written into the venv once pip and the import check succeeded.
const MARKER: &str = ".dpgui-test-venv-complete";

const IMPORT_CHECK: &str = "import torch, deepspeed; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__)";

/// Cargo's target dir: `CARGO_TARGET_DIR` (relative to the crate root when relative) or
/// `<crate>/target`.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => manifest.join(d),
        _ => manifest.join("target"),
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// How many times the pip install is tried before the venv counts as unobtainable.
const PIP_ATTEMPTS: u32 = 4;

/// Path to a venv with torch and deepspeed==0.18.4, created on first use under target/test-venv
/// (a file lock so parallel test binaries/threads build it once). Returns None (after printing a
/// clear "skipping: ..." note to stderr) when it cannot be had and CI is not set; when the
/// environment variable CI is set, failure to provision panics with the pip output (CI must not
/// silently skip the real-launcher tests).
pub fn deepspeed_venv() -> Option<PathBuf> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VENV.get_or_init(provision) {
        Ok(v) => Some(v.clone()),
        Err(e) if ci() => panic!(
            "CI is set, so the real-launcher tests must not be skipped, but no venv with torch and \
             deepspeed=={DEEPSPEED_VERSION} could be provisioned:\n{e}"
        ),
        Err(e) => {
            eprintln!(
                "skipping: no venv with torch and deepspeed=={DEEPSPEED_VERSION} for the real \
                 DeepSpeed launcher (set DPGUI_TEST_VENV to an existing one): {e}"
            );
            None
        }
    }
}

/// Env vars every real-launcher run should get: PATH with the venv's bin first, TORCH_EXTENSIONS_DIR
/// under target/ (DeepSpeed JIT-builds a CPU op once, ~30 s; caching it matters), and anything
/// else needed to make runs quiet/fast on CPU (e.g. OMP_NUM_THREADS=1).
///
/// Not included, because it depends on the run: `LOCAL_SIZE=<ranks>`, which the runner needs on a
/// CPU-only box to accept `--include localhost:0,1` (the CPU accelerator counts its "devices" from
/// LOCAL_SIZE, else from NUMA nodes, i.e. 1). `DS_ACCELERATOR=cpu` is set so the same test runs on
/// a box with GPUs (and never touches them).
pub fn launcher_env(venv: &Path) -> Vec<(String, String)> {
    let bin = venv.join("bin");
    let path = match std::env::var_os("PATH") {
        Some(p) => {
            std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&p)))
                .unwrap_or_else(|_| OsString::from(&bin))
        }
        None => OsString::from(&bin),
    };
    // One extension cache per venv: a build against another torch must not be picked up.
    let mut h = DefaultHasher::new();
    venv.hash(&mut h);
    let extensions = target_dir()
        .join("test-torch-extensions")
        .join(format!("{:016x}", h.finish()));
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        ("PATH".into(), path.to_string_lossy().into_owned()),
        ("VIRTUAL_ENV".into(), s(venv)),
        ("TORCH_EXTENSIONS_DIR".into(), s(&extensions)),
        ("DS_ACCELERATOR".into(), "cpu".into()),
        ("OMP_NUM_THREADS".into(), "1".into()),
        ("MKL_NUM_THREADS".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ]
}

fn provision() -> Result<PathBuf, String> {
    if let Some(v) = std::env::var_os("DPGUI_TEST_VENV").filter(|v| !v.is_empty()) {
        let venv = PathBuf::from(v);
        let versions =
            import_check(&venv).map_err(|e| format!("DPGUI_TEST_VENV={}: {e}", venv.display()))?;
        if !versions.ends_with(&format!("deepspeed {DEEPSPEED_VERSION}")) {
            eprintln!(
                "note: DPGUI_TEST_VENV={} has {versions}; diffusion-pipe pins deepspeed=={DEEPSPEED_VERSION}",
                venv.display()
            );
        }
        return Ok(venv);
    }

    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("test-venv");
    let lock_path = target.join("test-venv.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    loop {
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("cannot lock {}: {e}", lock_path.display())),
        }
    }
    // Held until `lock` is dropped at the end of this function.

    let marker = venv.join(MARKER);
    if marker.is_file() && venv.join("bin").join("deepspeed").is_file() {
        return Ok(venv);
    }
    let _ = fs::remove_file(&marker);

    let started = Instant::now();
    eprintln!(
        "note: provisioning {} with torch and deepspeed=={DEEPSPEED_VERSION} (once; ~3 GB download, \
         5 GB on disk; DPGUI_TEST_VENV=<venv> uses an existing one instead)",
        venv.display()
    );
    if !venv.join("bin").join("pip").is_file() {
        let python = std::env::var_os("DPGUI_TEST_PYTHON")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "python3".into());
        let mut cmd = Command::new(&python);
        cmd.arg("-m").arg("venv").arg(&venv);
        run(&mut cmd, None)?;
    }
    let log = target.join("test-venv-pip.log");
    // A registry that does not answer for a minute (DNS, a proxy) must not fail the run: pip's
    // own retries span seconds, so the whole install is tried again after a pause.
    let mut attempt = 1;
    loop {
        let mut cmd = Command::new(venv.join("bin").join("pip"));
        cmd.args(["install", "--disable-pip-version-check"])
            .args(PIP_PACKAGES);
        match run(&mut cmd, Some(&log)) {
            Ok(_) => break,
            Err(e) if attempt < PIP_ATTEMPTS => {
                eprintln!(
                    "note: pip install failed (attempt {attempt} of {PIP_ATTEMPTS}), retrying in 30 s: {}",
                    e.lines().last().unwrap_or("")
                );
                std::thread::sleep(std::time::Duration::from_secs(30));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let versions = import_check(&venv)?;
    fs::write(&marker, format!("{versions}\n"))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    eprintln!(
        "note: {} ready ({versions}) after {:.0} s",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    drop(lock);
    Ok(venv)
}

/// `torch X deepspeed Y` from the venv's interpreter.
fn import_check(venv: &Path) -> Result<String, String> {
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        return Err(format!("{} does not exist", python.display()));
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-c", IMPORT_CHECK]);
    let out = run(&mut cmd, None)?;
    out.lines()
        .rev()
        .find(|l| l.starts_with("torch "))
        .map(str::to_string)
        .ok_or_else(|| format!("unexpected output of {}:\n{out}", python.display()))
}

/// Runs `cmd`, returns stdout; on failure an error with the command, its status and its output.
/// With `log`, stdout and stderr are also written there.
fn run(cmd: &mut Command, log: Option<&Path>) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(log) = log {
        let _ = fs::write(
            log,
            format!("$ {shown}\n{stdout}\n--- stderr ---\n{stderr}\n"),
        );
    }
    if out.status.success() {
        return Ok(stdout);
    }
    let mut both = format!("{stdout}\n{stderr}");
    const KEEP: usize = 12_000;
    if both.len() > KEEP {
        let mut cut = both.len() - KEEP;
        while !both.is_char_boundary(cut) {
            cut += 1;
        }
        both = format!("[... {cut} bytes cut ...]\n{}", &both[cut..]);
    }
    let log_note = log
        .map(|l| format!(" (full output in {})", l.display()))
        .unwrap_or_default();
    Err(format!(
        "{shown} failed with {}{log_note}:\n{both}",
        out.status
    ))
}
