//! The Python environment diffusion-pipe will run in: which interpreter, and what it has
//! installed (probed by running it with a small embedded script).

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::system::checkout;

// ---------------------------------------------------------------------------------------------
// Locating the interpreter

/// Where the chosen interpreter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PythonSource {
    /// `--python` / `DPGUI_PYTHON` / the settings file.
    Configured,
    /// `$VIRTUAL_ENV`.
    VirtualEnv,
    /// `$CONDA_PREFIX`.
    Conda,
    /// `venv/` or `.venv/` inside the diffusion-pipe checkout.
    CheckoutVenv,
    /// `python3` (or `python`) on `$PATH`.
    Path,
}

impl PythonSource {
    /// Short human text: "configured", "$VIRTUAL_ENV", ...
    pub fn describe(self) -> &'static str {
        match self {
            PythonSource::Configured => "configured",
            PythonSource::VirtualEnv => "$VIRTUAL_ENV",
            PythonSource::Conda => "$CONDA_PREFIX",
            PythonSource::CheckoutVenv => "checkout venv",
            PythonSource::Path => "$PATH",
        }
    }
}

/// The interpreter dpgui will use. `path == None` means none was found; `source` then says
/// where the search gave up (`Configured` for a configured path that does not exist, `Path`
/// when nothing was found anywhere) and `note` says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PythonChoice {
    pub path: Option<PathBuf>,
    pub source: PythonSource,
    /// Anything worth telling the user (a configured path that does not exist, an activated
    /// venv without `bin/python` that was skipped, ...).
    pub note: Option<String>,
}

/// Finds the interpreter. Order: `configured`, `$VIRTUAL_ENV`, `$CONDA_PREFIX`, the checkout's
/// venv, then `python3` (then `python`) on `$PATH`. `env` reads environment variables (pass
/// `&|k| std::env::var(k).ok()` in production). A configured path may be a venv directory or an
/// interpreter; when it does not exist that is reported, never silently replaced.
pub fn locate_python(
    configured: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    checkout: Option<&Path>,
) -> PythonChoice {
    let mut notes: Vec<String> = Vec::new();
    let finish = |path: Option<PathBuf>, source, notes: Vec<String>| PythonChoice {
        path,
        source,
        note: if notes.is_empty() {
            None
        } else {
            Some(notes.join("; "))
        },
    };

    if let Some(c) = configured {
        if c.is_dir() {
            return match venv_python(c) {
                Some(p) => finish(Some(p), PythonSource::Configured, notes),
                None => {
                    notes.push(format!(
                        "configured python {} is a directory without bin/python",
                        c.display()
                    ));
                    finish(None, PythonSource::Configured, notes)
                }
            };
        }
        if c.exists() {
            if !is_executable(c) {
                notes.push(format!(
                    "configured python {} is not executable",
                    c.display()
                ));
            }
            return finish(Some(c.to_path_buf()), PythonSource::Configured, notes);
        }
        notes.push(format!("configured python {} does not exist", c.display()));
        return finish(None, PythonSource::Configured, notes);
    }

    for (var, source) in [
        ("VIRTUAL_ENV", PythonSource::VirtualEnv),
        ("CONDA_PREFIX", PythonSource::Conda),
    ] {
        let Some(v) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let dir = PathBuf::from(v);
        match venv_python(&dir) {
            Some(p) => return finish(Some(p), source, notes),
            None => notes.push(format!(
                "${var}={} has no bin/python; ignored",
                dir.display()
            )),
        }
    }

    if let Some(dir) = checkout
        && let Some(venv) = checkout::find_venv(dir)
        && let Some(p) = venv_python(&venv)
    {
        return finish(Some(p), PythonSource::CheckoutVenv, notes);
    }

    let path_var = env("PATH").unwrap_or_default();
    for name in ["python3", "python"] {
        if let Some(p) = search_path(&path_var, name) {
            return finish(Some(p), PythonSource::Path, notes);
        }
    }
    notes.push("no python3 on $PATH".to_string());
    finish(None, PythonSource::Path, notes)
}

/// `<dir>/bin/python` (or `bin/python3`) when it exists.
fn venv_python(dir: &Path) -> Option<PathBuf> {
    ["python", "python3"]
        .iter()
        .map(|n| dir.join("bin").join(n))
        .find(|p| p.is_file())
}

/// The first executable `name` in a `:`-separated PATH. Empty and relative entries are skipped
/// (they would depend on the current directory).
pub fn search_path(path_var: &str, name: &str) -> Option<PathBuf> {
    path_var
        .split(':')
        .filter(|d| !d.is_empty() && Path::new(d).is_absolute())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file() && is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Probing it

/// `sys.version_info` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonInfo {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
    #[serde(default)]
    pub executable: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// `sys.base_prefix`; differs from `prefix` inside a venv.
    #[serde(default)]
    pub base_prefix: Option<String>,
}

impl PythonInfo {
    pub fn version(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// Installed distribution versions (importlib.metadata); `None` = not installed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Packages {
    pub torch: Option<String>,
    pub deepspeed: Option<String>,
    pub diffusers: Option<String>,
    pub transformers: Option<String>,
    pub peft: Option<String>,
    pub flash_attn: Option<String>,
    pub accelerate: Option<String>,
    pub safetensors: Option<String>,
    pub tensorboard: Option<String>,
}

/// One CUDA device as torch sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorchDevice {
    pub name: String,
    /// Compute capability (major, minor), e.g. (8, 9) for an RTX 4090.
    #[serde(default)]
    pub capability: Option<(u32, u32)>,
}

/// What `import torch` says. Present in the report only when torch is installed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TorchInfo {
    /// `import torch` succeeded.
    pub imported: bool,
    /// `torch.__version__`.
    pub version: Option<String>,
    /// `torch.version.cuda`; `None` for a CPU-only build.
    pub cuda: Option<String>,
    /// `torch.cuda.is_available()`.
    pub cuda_available: bool,
    /// `torch.cuda.device_count()`.
    pub device_count: u32,
    pub devices: Vec<TorchDevice>,
    /// `torch.cuda.get_arch_list()`: the GPU architectures the build has kernels for.
    pub arch_list: Vec<String>,
    /// Why `import torch` failed.
    pub import_error: Option<String>,
    /// Why querying CUDA failed (torch imported fine).
    pub cuda_error: Option<String>,
}

/// Everything the probe script found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub python: PythonInfo,
    #[serde(default)]
    pub packages: Packages,
    #[serde(default)]
    pub torch: Option<TorchInfo>,
    /// Anything else that went wrong inside the script.
    #[serde(default)]
    pub errors: Vec<String>,
}

/// Outcome of [`probe`].
// One value per probe run: boxing the report would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ProbeResult {
    Ok(ProbeReport),
    Failed { reason: String },
}

impl ProbeResult {
    pub fn report(&self) -> Option<&ProbeReport> {
        match self {
            ProbeResult::Ok(r) => Some(r),
            ProbeResult::Failed { .. } => None,
        }
    }
}

/// The script run with `python -c`. Prints exactly one JSON line on the real stdout; anything
/// the imports print goes to stderr. Every part is guarded so one failure does not hide the
/// others. Written to parse on old Pythons too, so a too-old interpreter still reports its
/// version.
pub const PROBE_SCRIPT: &str = r#"
import sys
_out = sys.stdout
sys.stdout = sys.stderr
if sys.path and sys.path[0] == '':
    del sys.path[0]
import json

def _err(e):
    s = '%s: %s' % (type(e).__name__, e)
    return s[:500]

r = {'python': {'major': sys.version_info[0], 'minor': sys.version_info[1],
                'micro': sys.version_info[2], 'executable': sys.executable,
                'prefix': sys.prefix, 'base_prefix': getattr(sys, 'base_prefix', sys.prefix)},
     'packages': {}, 'torch': None, 'errors': []}
try:
    import importlib.metadata as _md
except Exception as e:
    _md = None
    r['errors'].append('importlib.metadata unavailable: ' + _err(e))

def _ver(names):
    if _md is None:
        return None
    for n in names:
        try:
            return _md.version(n)
        except Exception:
            pass
    return None

for key, names in [('torch', ['torch']), ('deepspeed', ['deepspeed']),
                   ('diffusers', ['diffusers']), ('transformers', ['transformers']),
                   ('peft', ['peft']), ('flash_attn', ['flash-attn', 'flash_attn']),
                   ('accelerate', ['accelerate']), ('safetensors', ['safetensors']),
                   ('tensorboard', ['tensorboard'])]:
    try:
        r['packages'][key] = _ver(names)
    except Exception as e:
        r['packages'][key] = None
        r['errors'].append(key + ': ' + _err(e))

_has_torch = r['packages'].get('torch') is not None
if not _has_torch:
    try:
        import importlib.util
        _has_torch = importlib.util.find_spec('torch') is not None
    except Exception:
        pass
if _has_torch:
    t = {'imported': False, 'version': None, 'cuda': None, 'cuda_available': False,
         'device_count': 0, 'devices': [], 'arch_list': [], 'import_error': None,
         'cuda_error': None}
    r['torch'] = t
    try:
        import torch
        t['imported'] = True
        t['version'] = str(getattr(torch, '__version__', '')) or None
        try:
            c = torch.version.cuda
            t['cuda'] = None if c is None else str(c)
        except Exception as e:
            t['cuda_error'] = _err(e)
        try:
            t['cuda_available'] = bool(torch.cuda.is_available())
            if t['cuda_available']:
                n = int(torch.cuda.device_count())
                t['device_count'] = n
                for i in range(n):
                    d = {'name': '?', 'capability': None}
                    try:
                        d['name'] = str(torch.cuda.get_device_name(i))
                        d['capability'] = list(torch.cuda.get_device_capability(i))
                    except Exception as e:
                        t['cuda_error'] = _err(e)
                    t['devices'].append(d)
                try:
                    t['arch_list'] = [str(a) for a in torch.cuda.get_arch_list()]
                except Exception:
                    pass
        except Exception as e:
            t['cuda_error'] = _err(e)
    except BaseException as e:
        t['import_error'] = _err(e)

_out.write(json.dumps(r) + '\n')
_out.flush()
"#;

/// Most bytes of stdout/stderr kept; the rest is read and dropped so the child never blocks.
const OUTPUT_CAP: usize = 256 * 1024;
/// How long to wait for the pipes to close once the interpreter exited (a descendant may hold
/// them open) before killing what is left of its process group.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// Most reads of the final non-blocking drain of a pipe (8 KiB each), so a descendant outside
/// the group that keeps writing cannot keep the probe busy.
const DRAIN_READS: usize = 256;

/// Runs `python -c PROBE_SCRIPT` and parses its report. Never panics, whatever the interpreter
/// prints. The interpreter runs in its own process group; on timeout the whole group is killed
/// and the interpreter reaped before this returns.
pub async fn probe(python: &Path, timeout: Duration) -> ProbeResult {
    let failed = |reason: String| ProbeResult::Failed { reason };

    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(PROBE_SCRIPT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(spawn_error(python, &e)),
    };
    let pgid = child.id().map(|p| p as i32);
    // If this future is dropped mid-probe (the caller gave up), kill the whole group, not just
    // the interpreter (`kill_on_drop` only reaches the direct child).
    let mut guard = GroupGuard(pgid);
    // The output is read here, into buffers this function owns, so whatever was read survives
    // every way the reading below can be cut short.
    let mut out = Capture::new(child.stdout.take());
    let mut err = Capture::new(child.stderr.take());

    // The interpreter's exit is awaited through a pidfd, which tells it has exited without
    // reaping it: while it is an unreaped zombie its process-group id cannot be reused, so the
    // group kill below can only reach the probe's own processes.
    let exit_fd = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
        // SAFETY: the AsyncFd owns the pidfd, so it cannot be closed while registered.
        .and_then(|fd| unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok());
    // Wait for the interpreter, reading both pipes meanwhile so it never blocks on a full one.
    let waited = tokio::time::timeout(timeout, async {
        let mut reading = std::pin::pin!(read_both(&mut out, &mut err));
        let mut eof = false;
        loop {
            tokio::select! {
                r = exited(&exit_fd), if exit_fd.is_some() => break r.map(|()| None),
                // No pidfd (Linux < 5.3): reap at once, as before pidfds existed.
                s = child.wait(), if exit_fd.is_none() => break s.map(Some),
                () = &mut reading, if !eof => eof = true,
            }
        }
    })
    .await;
    let status = match waited {
        Ok(Ok(reaped)) => {
            // Exited, not yet reaped. Read on until the pipes close; if a descendant keeps
            // them open, give it a moment, then kill what is left of the group and take what
            // the pipes hold: nothing the interpreter printed depends on how quickly this
            // process gets to read it, and a descendant outside the group (its own session)
            // cannot keep the answer from us.
            if tokio::time::timeout(PIPE_GRACE, read_both(&mut out, &mut err))
                .await
                .is_err()
            {
                guard.kill();
                out.drain_buffered();
                err.drain_buffered();
            }
            guard.disarm();
            match reaped {
                Some(s) => s,
                None => match child.wait().await {
                    Ok(s) => s,
                    Err(e) => {
                        return failed(format!("waiting for {} failed: {e}", python.display()));
                    }
                },
            }
        }
        Ok(Err(e)) => {
            guard.kill();
            let _ = child.kill().await;
            return failed(format!("waiting for {} failed: {e}", python.display()));
        }
        Err(_) => {
            // The leader is alive or a zombie until we reap it, so the group id is still ours.
            guard.kill();
            let _ = child.kill().await; // SIGKILL (harmless if already dead) and reap
            return failed(format!(
                "python probe timed out after {} (importing torch can take a while; press r to \
                 retry)",
                fmt_secs(timeout)
            ));
        }
    };

    interpret(python, status, &out.buf, &err.buf)
}

/// Resolves when the process behind the pidfd has exited (it is not reaped).
async fn exited(
    fd: &Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
) -> std::io::Result<()> {
    match fd {
        Some(fd) => fd.readable().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// One of the child's output pipes and what has been read from it (at most [`OUTPUT_CAP`]).
struct Capture<R> {
    /// `None` once it reached end of file (or failed).
    pipe: Option<R>,
    buf: Vec<u8>,
}

impl<R: AsyncRead + AsFd + Unpin> Capture<R> {
    fn new(pipe: Option<R>) -> Self {
        Capture {
            pipe,
            buf: Vec::new(),
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = OUTPUT_CAP.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Reads until end of file. Cancel safe: dropped mid-way, nothing read is lost and the next
    /// call carries on.
    async fn read_to_eof(&mut self) {
        let mut chunk = [0u8; 8192];
        while let Some(pipe) = self.pipe.as_mut() {
            match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => self.pipe = None,
                Ok(n) => self.keep(&chunk[..n]),
            }
        }
    }

    /// Takes what the pipe holds right now, without waiting for more, and closes it.
    fn drain_buffered(&mut self) {
        let Some(pipe) = self.pipe.take() else {
            return;
        };
        // tokio already made it non-blocking; a blocking read here could wait forever.
        if rustix::io::ioctl_fionbio(&pipe, true).is_err() {
            return;
        }
        let mut chunk = [0u8; 8192];
        let mut reads = 0;
        while reads < DRAIN_READS {
            match rustix::io::read(&pipe, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    reads += 1;
                    self.keep(&chunk[..n]);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break, // EAGAIN: nothing more buffered
            }
        }
    }
}

/// Reads both pipes until both reach end of file. Cancel safe, like [`Capture::read_to_eof`].
async fn read_both<A, B>(a: &mut Capture<A>, b: &mut Capture<B>)
where
    A: AsyncRead + AsFd + Unpin,
    B: AsyncRead + AsFd + Unpin,
{
    tokio::join!(a.read_to_eof(), b.read_to_eof());
}

/// Kills a process group on drop unless disarmed.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn kill(&mut self) {
        kill_group(self.0.take());
    }
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn interpret(python: &Path, status: ExitStatus, out: &[u8], err: &[u8]) -> ProbeResult {
    if !status.success() {
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => "failed".to_string(),
        };
        let tail = tail_text(err, 15, 1500);
        let reason = if tail.is_empty() {
            format!("python probe: {} {how} (no stderr)", python.display())
        } else {
            format!("python probe: {} {how}: {tail}", python.display())
        };
        return ProbeResult::Failed { reason };
    }
    match parse_report(out) {
        Some(r) => ProbeResult::Ok(r),
        None => ProbeResult::Failed {
            reason: if out.iter().all(|b| b.is_ascii_whitespace()) {
                format!(
                    "python probe: {} printed nothing (expected one JSON line)",
                    python.display()
                )
            } else {
                format!(
                    "python probe: {} printed something other than the expected JSON: {}",
                    python.display(),
                    head_text(out, 120)
                )
            },
        },
    }
}

/// Parses the probe's stdout: the last non-empty line must be the report.
pub fn parse_report(out: &[u8]) -> Option<ProbeReport> {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    serde_json::from_str(line.trim()).ok()
}

fn spawn_error(python: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("python interpreter {} not found", python.display())
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("python interpreter {} is not executable", python.display())
        }
        _ => format!("cannot run python interpreter {}: {e}", python.display()),
    }
}

fn kill_group(pgid: Option<i32>) {
    if let Some(p) = pgid.filter(|p| *p > 1) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn fmt_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The first `n` characters of `bytes`, lossy UTF-8, control characters escaped, "…" if cut.
fn head_text(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s.chars().take(n).flat_map(char::escape_debug).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    format!("\"{out}\"")
}

/// The last `lines` non-empty lines of `bytes` (at most `max` characters), lossy UTF-8, joined
/// with " | ".
fn tail_text(bytes: &[u8], lines: usize, max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = s
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let start = all.len().saturating_sub(lines);
    let joined = all[start..].join(" | ");
    let count = joined.chars().count();
    if count > max {
        let skip = count - max;
        format!("…{}", joined.chars().skip(skip).collect::<String>())
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    fn make_exe(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "#!/bin/sh\n").unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    struct World {
        _t: tempfile::TempDir,
        configured_venv: PathBuf,
        virtual_env: PathBuf,
        conda: PathBuf,
        checkout: PathBuf,
        bin: PathBuf,
    }

    fn world() -> World {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().to_path_buf();
        let w = World {
            configured_venv: r.join("cfgvenv"),
            virtual_env: r.join("venv-active"),
            conda: r.join("conda"),
            checkout: r.join("dp"),
            bin: r.join("bin"),
            _t: t,
        };
        make_exe(&w.configured_venv.join("bin/python"));
        make_exe(&w.virtual_env.join("bin/python"));
        make_exe(&w.conda.join("bin/python"));
        make_exe(&w.checkout.join("venv/bin/python"));
        make_exe(&w.bin.join("python3"));
        w
    }

    #[test]
    fn locate_order() {
        let w = world();
        let all = env_of(&[
            ("VIRTUAL_ENV", w.virtual_env.display().to_string()),
            ("CONDA_PREFIX", w.conda.display().to_string()),
            ("PATH", format!("/nonexistent:{}", w.bin.display())),
        ]);
        let c = locate_python(Some(&w.configured_venv), &all, Some(&w.checkout));
        assert_eq!(c.source, PythonSource::Configured);
        assert_eq!(c.path, Some(w.configured_venv.join("bin/python")));
        assert_eq!(c.note, None);

        let c = locate_python(None, &all, Some(&w.checkout));
        assert_eq!(c.source, PythonSource::VirtualEnv);
        assert_eq!(c.path, Some(w.virtual_env.join("bin/python")));

        let no_venv = env_of(&[
            ("CONDA_PREFIX", w.conda.display().to_string()),
            ("PATH", w.bin.display().to_string()),
        ]);
        let c = locate_python(None, &no_venv, Some(&w.checkout));
        assert_eq!(c.source, PythonSource::Conda);
        assert_eq!(c.path, Some(w.conda.join("bin/python")));

        let path_only = env_of(&[("PATH", w.bin.display().to_string())]);
        let c = locate_python(None, &path_only, Some(&w.checkout));
        assert_eq!(c.source, PythonSource::CheckoutVenv);
        assert_eq!(c.path, Some(w.checkout.join("venv/bin/python")));

        let c = locate_python(None, &path_only, None);
        assert_eq!(c.source, PythonSource::Path);
        assert_eq!(c.path, Some(w.bin.join("python3")));

        let nothing = env_of(&[("PATH", "/nonexistent".to_string())]);
        let c = locate_python(None, &nothing, None);
        assert_eq!(c.path, None);
        assert_eq!(c.source, PythonSource::Path);
        assert!(c.note.unwrap().contains("no python3"));
    }

    #[test]
    fn configured_interpreter_file_and_missing() {
        let w = world();
        let all = env_of(&[("VIRTUAL_ENV", w.virtual_env.display().to_string())]);
        let exe = w.conda.join("bin/python");
        let c = locate_python(Some(&exe), &all, None);
        assert_eq!((c.path, c.source), (Some(exe), PythonSource::Configured));

        let missing = w.bin.join("python9");
        let c = locate_python(Some(&missing), &all, None);
        assert_eq!(
            c.path, None,
            "a missing configured path must not be replaced"
        );
        assert_eq!(c.source, PythonSource::Configured);
        assert!(c.note.unwrap().contains("does not exist"));

        let empty_dir = w.bin.clone();
        let c = locate_python(Some(&empty_dir), &all, None);
        assert_eq!(c.path, None);
        assert!(c.note.unwrap().contains("without bin/python"));

        let not_exec = w.bin.join("plain");
        fs::write(&not_exec, "").unwrap();
        let c = locate_python(Some(&not_exec), &all, None);
        assert_eq!(c.path, Some(not_exec));
        assert!(c.note.unwrap().contains("not executable"));
    }

    #[test]
    fn broken_virtual_env_is_skipped_with_note() {
        let w = world();
        let e = env_of(&[
            ("VIRTUAL_ENV", w.bin.join("gone").display().to_string()),
            ("PATH", w.bin.display().to_string()),
        ]);
        let c = locate_python(None, &e, None);
        assert_eq!(c.source, PythonSource::Path);
        assert!(c.note.unwrap().contains("$VIRTUAL_ENV="));
    }

    #[test]
    fn path_search_skips_non_executable_and_relative() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        fs::create_dir_all(&a).unwrap();
        fs::write(a.join("python3"), "").unwrap(); // not executable
        make_exe(&b.join("python3"));
        let pv = format!(":bin:{}:{}", a.display(), b.display());
        assert_eq!(search_path(&pv, "python3"), Some(b.join("python3")));
        assert_eq!(search_path("", "python3"), None);
    }

    #[test]
    fn report_parsing() {
        let line = br#"{"python":{"major":3,"minor":12,"micro":3,"executable":"/v/bin/python","prefix":"/v"},"packages":{"torch":"2.9.0","deepspeed":null,"flash_attn":"2.8.3"},"torch":{"imported":true,"version":"2.9.0+cu128","cuda":"12.8","cuda_available":true,"device_count":1,"devices":[{"name":"NVIDIA GeForce RTX 4090","capability":[8,9]}],"arch_list":["sm_89"]},"errors":[]}"#;
        let mut out = b"noise from an import\n".to_vec();
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n\n");
        let r = parse_report(&out).unwrap();
        assert_eq!(r.python.version(), "3.12.3");
        assert_eq!(r.packages.torch.as_deref(), Some("2.9.0"));
        assert_eq!(r.packages.deepspeed, None);
        assert_eq!(r.packages.peft, None);
        assert_eq!(r.packages.flash_attn.as_deref(), Some("2.8.3"));
        let t = r.torch.unwrap();
        assert_eq!(t.cuda.as_deref(), Some("12.8"));
        assert_eq!(t.devices[0].capability, Some((8, 9)));
        assert!(parse_report(b"").is_none());
        assert!(parse_report(b"{}").is_none());
        assert!(parse_report(b"\xff\xfe{").is_none());
        let mut lossy = b"\xff junk before\n".to_vec();
        lossy.extend_from_slice(line);
        assert!(parse_report(&lossy).is_some());
        assert!(parse_report(br#"{"python": "3.12"}"#).is_none());
    }

    #[test]
    fn text_helpers() {
        assert_eq!(fmt_secs(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.5s");
        assert_eq!(head_text(b"ab\xffc\n", 10), "\"ab\u{fffd}c\\n\"");
        assert_eq!(head_text(b"abcdef", 3), "\"abc…\"");
        assert_eq!(tail_text(b"1\n2\n\n3\n", 2, 100), "2 | 3");
        assert_eq!(tail_text(b"abcdef", 5, 3), "…def");
    }

    #[test]
    fn probe_result_serializes_tagged() {
        let f = ProbeResult::Failed { reason: "x".into() };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"result":"failed","reason":"x"}"#
        );
    }
}
