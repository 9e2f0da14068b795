//! Output of a run: progress, loss, phases and recognised failures.
//!
//! - [`parse_line`] turns one line of rank or launcher output into a [`LineEvent`] (formats:
//!   reference `diffusion-pipe.md` §3-4).
//! - [`Progress`] accumulates rank 0's events into what the dashboard shows: step, epoch, loss
//!   history, ETA. Nothing prints the total step count or an ETA, so both are derived here.
//! - [`RunJudge`] decides from launcher and rank output whether a job succeeded: the runner's exit
//!   code alone says nothing (it is 0 when launch.py was SIGKILLed).
//! - [`scan_history`] rebuilds a `Progress` from a whole, possibly multi-GB, log in one pass.
//!
//! Everything works on bytes: logs hold tqdm `\r` redraws, invalid UTF-8 and multi-MB lines. A
//! line is split at `\r` as well as `\n` (each redraw is its own segment), and a segment longer
//! than [`MAX_LINE`] is ignored: nothing recognised is anywhere near that long.

use std::io::{self, Read};
use std::mem::discriminant;
use std::path::Path;
use std::time::Duration;

use memchr::{memchr, memchr2_iter, memmem, memrchr};

/// Longest segment the parser looks at; longer ones are skipped, which bounds the history scan's
/// memory when a rank prints a multi-MB line.
pub const MAX_LINE: usize = 64 << 10;
/// Most loss points [`Progress::losses`] holds, whatever the run length.
pub const MAX_LOSS_POINTS: usize = 100_000;
/// Most distinct failures kept (the first ones explain the rest).
pub const MAX_FAILURES: usize = 16;
/// Most saved-model names kept (newest); `save_every_n_steps` on a long run could print many.
const MAX_SAVED: usize = 1024;
/// A failure keeps this much of its line for display.
const FAILURE_LINE_CHARS: usize = 400;
/// Read size of the history scan.
const BLOCK: usize = 1 << 20;

/// One recognised line (segment) of rank or launcher output.
#[derive(Debug, Clone, PartialEq)]
pub enum LineEvent {
    /// DeepSpeed's `steps: 250 loss: 0.0734 iter time (s): 3.912 samples/sec: 1.022`. The
    /// numbers may be `nan`/`inf`; iter time is per step, averaged over `steps_per_print` steps.
    Step {
        step: u64,
        loss: f64,
        iter_time: Option<f64>,
        samples_per_sec: Option<f64>,
    },
    /// `[Rank 0] step=250, skipped=0, lr=[2e-05, 2e-05], mom=[...]` (one lr per param group).
    Lr {
        step: u64,
        lr: Vec<f64>,
    },
    /// `Started new epoch: 3` (never printed for epoch 1).
    EpochStarted(u64),
    /// `Saving model to directory epoch2` (or `step500`).
    Saving {
        dir: String,
    },
    /// DeepSpeed starts writing a resumable checkpoint: `Checkpoint global_step500 is about to be
    /// saved!` (`tag` is the directory name).
    Checkpoint {
        tag: String,
    },
    /// `Running eval`
    EvalStarted,
    /// `TRAINING COMPLETE!`
    Complete,
    /// `Manually quitting` (after a `save_quit` file; exits 0)
    ManualQuit,
    /// `Global batch size = 4`
    GlobalBatch(u64),
    /// `Resuming training from checkpoint. Resuming at epoch: 5, step: 1201`
    Resumed {
        epoch: u64,
        step: u64,
    },
    /// Caching phase: `caching latents: ...`, `[CACHE] ...`, or a tqdm bar.
    Caching(String),
    /// launch.py: `process 32575 spawned with command: [..., '--local_rank=0', ...]`
    Spawned {
        pid: u32,
        local_rank: Option<u32>,
    },
    /// launch.py: `Process 32576 exits successfully.`
    ExitedOk {
        pid: u32,
    },
    /// launch.py: `[...cmd...] exits with return code = N`. The command (hence `local_rank`) is
    /// the LAST-spawned rank's, not the failing one's, and the line holds no pid.
    ExitCode {
        local_rank: Option<u32>,
        code: i32,
    },
    /// launch.py: `Killing subprocess 123`
    Killing {
        pid: u32,
    },
    Failure(Failure),
}

/// A recognised cause of a failed run, with the line it was recognised in.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The line (lossy UTF-8, prefixes kept, cut to a few hundred characters).
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// Rank 0 could not listen on the rendezvous port (TCPStore).
    PortInUse {
        port: Option<u16>,
    },
    CudaOutOfMemory,
    Nccl,
    FlashAttnMissing,
    /// Code from diffusion-pipe's git submodules (ComfyUI, HunyuanVideo, ...) is absent.
    SubmoduleMissing,
    /// Python < 3.12: `sqlite3.connect()` has no `autocommit`.
    PythonTooOld,
    ModuleMissing {
        module: String,
    },
}

impl FailureKind {
    /// One sentence saying what went wrong.
    pub fn title(&self) -> &str {
        match self {
            FailureKind::PortInUse { .. } => {
                "Rank 0 could not listen on the rendezvous port because another process (often an orphaned earlier run) holds it."
            }
            FailureKind::CudaOutOfMemory => "The GPU ran out of memory (CUDA out of memory).",
            FailureKind::Nccl => {
                "NCCL, the library that connects the GPUs of a multi-GPU run, failed."
            }
            FailureKind::FlashAttnMissing => {
                "flash-attn, which the wan and hunyuan_image models need, is not installed or was built for another torch."
            }
            FailureKind::SubmoduleMissing => {
                "Code from diffusion-pipe's git submodules (ComfyUI, HunyuanVideo, ...) is missing from the checkout."
            }
            FailureKind::PythonTooOld => {
                "diffusion-pipe needs Python 3.12 or newer (it calls sqlite3.connect with autocommit=...)."
            }
            FailureKind::ModuleMissing { .. } => {
                "A Python module that the training imports is not installed in the venv."
            }
        }
    }

    /// One sentence saying how to fix it.
    pub fn fix(&self) -> &str {
        match self {
            FailureKind::PortInUse { .. } => {
                "Pick a free port (dpgui passes it as --master_port both before and after train.py, since train.py overrides the launcher's port with its own default 29500), or free the port from the Environment tab."
            }
            FailureKind::CudaOutOfMemory => {
                "Lower memory use: set blocks_to_swap, enable activation_checkpointing, run with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, or train at a smaller resolution or batch size."
            }
            FailureKind::Nccl => {
                "On consumer GPUs (RTX 40xx/50xx) run with NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1; NCCL_DEBUG=INFO shows the cause."
            }
            FailureKind::FlashAttnMissing => {
                "Install it in diffusion-pipe's venv with `pip install flash-attn --no-build-isolation`."
            }
            FailureKind::SubmoduleMissing => {
                "Run `git submodule update --init --recursive` in the diffusion-pipe checkout."
            }
            FailureKind::PythonTooOld => {
                "Recreate the venv with Python 3.12+ and reinstall torch and requirements.txt into it."
            }
            FailureKind::ModuleMissing { .. } => {
                "Install it with pip in diffusion-pipe's venv (the pip package name can differ from the module's), or reinstall requirements.txt."
            }
        }
    }

    /// The failure as the clause of a sentence about `who` ("rank 1", or None when unknown).
    fn clause(&self, who: Option<u32>) -> String {
        let who = who.map_or_else(|| "a rank".to_string(), |r| format!("rank {r}"));
        match self {
            // Only rank 0 listens (it hosts the TCPStore), so the rank is known even when the
            // line came through the launcher's shared output.
            FailureKind::PortInUse { port: Some(p) } => {
                format!("rank 0 could not listen on port {p}: address already in use")
            }
            FailureKind::PortInUse { port: None } => {
                "rank 0 could not listen on its rendezvous port: address already in use".into()
            }
            FailureKind::CudaOutOfMemory => format!("{who} ran out of GPU memory"),
            FailureKind::Nccl => format!("{who} hit an NCCL (GPU communication) error"),
            FailureKind::FlashAttnMissing => format!("{who} could not import flash-attn"),
            FailureKind::SubmoduleMissing => {
                format!("{who} could not find code from diffusion-pipe's git submodules")
            }
            FailureKind::PythonTooOld => {
                format!("{who} runs a Python older than 3.12, which diffusion-pipe needs")
            }
            FailureKind::ModuleMissing { module } => {
                format!("{who} could not import the Python module '{module}'")
            }
        }
    }
}

/// Parses one line. With `\r` redraws in it, only the last non-blank segment counts (what a
/// terminal shows); [`Progress::feed`] and [`RunJudge`] look at every segment instead.
pub fn parse_line(line: &str) -> Option<LineEvent> {
    let seg = line
        .as_bytes()
        .rsplit(|&c| c == b'\r' || c == b'\n')
        .find(|s| !trim_end(s).is_empty())?;
    parse_segment(seg)
}

/// Parses one segment (no `\r`/`\n` inside).
fn parse_segment(seg: &[u8]) -> Option<LineEvent> {
    let mut lr = Vec::new();
    let mut ev = parse_into(seg, &mut lr)?;
    if let LineEvent::Lr { lr: v, .. } = &mut ev {
        *v = lr;
    }
    Some(ev)
}

/// [`parse_segment`], except that an lr line's values are written to `lr` (and its event's list
/// is left empty), so that [`Progress`] parses them into its own buffer without allocating. `lr`
/// is only touched when an lr line parsed. Cheap checks first: this runs on every line.
fn parse_into(seg: &[u8], lr: &mut Vec<f64>) -> Option<LineEvent> {
    if seg.len() > MAX_LINE {
        return None;
    }
    // Hot path: most lines of a training log are DeepSpeed's step lines.
    if seg.starts_with(b"steps: ") {
        return parse_step(trim_end(seg));
    }
    let line = trim_end(seg);
    let (msg, cache_tag) = skip_prefix(line);
    if msg.is_empty() {
        return None;
    }
    if cache_tag {
        return Some(LineEvent::Caching(lossy(msg)));
    }
    if let Some(ev) = parse_message(msg, line, lr) {
        return Some(ev);
    }
    if let Some(ev) = parse_exit_code(line) {
        return Some(ev);
    }
    if let Some(kind) = exception_failure(msg) {
        return Some(failure(kind, line));
    }
    parse_bar(msg, lr)
}

/// Messages recognised by how they start (after [`skip_prefix`]): anchoring is what keeps a
/// caption or a warning that merely contains the words from matching.
fn parse_message(msg: &[u8], line: &[u8], lr: &mut Vec<f64>) -> Option<LineEvent> {
    use LineEvent as E;
    match msg[0] {
        b's' => {
            if msg.starts_with(b"steps: ") {
                return parse_step(msg);
            }
            parse_lr(msg.strip_prefix(b"step=")?, lr)
        }
        b'S' => {
            if let Some(r) = msg.strip_prefix(b"Started new epoch: ") {
                return whole_uint(r).map(E::EpochStarted);
            }
            let dir = msg.strip_prefix(b"Saving model to directory ")?;
            (!dir.is_empty() && !dir.contains(&b' ')).then(|| E::Saving { dir: lossy(dir) })
        }
        b'R' => {
            if msg == b"Running eval" {
                return Some(E::EvalStarted);
            }
            let r = msg.strip_prefix(b"Resuming training from checkpoint. Resuming at epoch: ")?;
            let (epoch, r) = uint(r)?;
            let step = whole_uint(r.strip_prefix(b", step: ")?)?;
            Some(E::Resumed { epoch, step })
        }
        b'T' => {
            if msg == b"TRAINING COMPLETE!" {
                return Some(E::Complete);
            }
            // c10d's own log line, printed before the exception: `The server socket has failed
            // to bind to [::]:29500 (errno: 98 - Address already in use).`
            let r = msg.strip_prefix(b"The server socket ")?;
            (contains(r, b"in use") || contains(r, b"EADDRINUSE"))
                .then(|| failure(FailureKind::PortInUse { port: port_in(r) }, line))
        }
        b'M' => (msg == b"Manually quitting").then_some(E::ManualQuit),
        b'G' => whole_uint(msg.strip_prefix(b"Global batch size = ")?).map(E::GlobalBatch),
        b'c' | b'C' => {
            if msg.starts_with(b"caching ") || msg.starts_with(b"Caching ") {
                return Some(E::Caching(lossy(msg)));
            }
            let r = msg.strip_prefix(b"Checkpoint ")?;
            let tag = r.strip_suffix(b" is about to be saved!")?;
            (!tag.is_empty() && !tag.contains(&b' ')).then(|| E::Checkpoint { tag: lossy(tag) })
        }
        b'p' => {
            let (pid, r) = uint(msg.strip_prefix(b"process ")?)?;
            let r = r.strip_prefix(b" spawned with command: ")?;
            Some(E::Spawned {
                pid: u32::try_from(pid).ok()?,
                local_rank: local_rank_in(r),
            })
        }
        b'P' => {
            let (pid, r) = uint(msg.strip_prefix(b"Process ")?)?;
            (r == b" exits successfully.").then_some(E::ExitedOk {
                pid: u32::try_from(pid).ok()?,
            })
        }
        b'K' => {
            let pid = whole_uint(msg.strip_prefix(b"Killing subprocess ")?)?;
            Some(E::Killing {
                pid: u32::try_from(pid).ok()?,
            })
        }
        // ProcessGroupNCCL's watchdog: `[E...] [Rank 0] Watchdog caught collective operation
        // timeout: WorkNCCL(...) ran for 600000 milliseconds before timing out.`
        b'W' => msg
            .starts_with(b"Watchdog caught collective operation timeout")
            .then(|| failure(FailureKind::Nccl, line)),
        _ => None,
    }
}

/// `steps: 250 loss: 0.0734 iter time (s): 3.912 samples/sec: 1.022`. DeepSpeed may put extra
/// `name: value` losses before `iter time`. Allocates nothing.
#[inline]
fn parse_step(b: &[u8]) -> Option<LineEvent> {
    let (step, r) = uint(b.strip_prefix(b"steps: ")?)?;
    let (loss, r) = float(r.strip_prefix(b" loss: ")?)?;
    let mut ev_iter = None;
    let mut ev_sps = None;
    if !r.is_empty() {
        if r[0] != b' ' {
            return None;
        }
        let it = match r.strip_prefix(b" iter time (s): ") {
            Some(x) => Some(x),
            None => find_after(r, b" iter time (s): "),
        };
        if let Some(x) = it {
            let (t, r) = float(x)?;
            ev_iter = Some(t);
            if let Some(x) = r.strip_prefix(b" samples/sec: ") {
                ev_sps = Some(float(x)?.0);
            }
        }
    }
    Some(LineEvent::Step {
        step,
        loss,
        iter_time: ev_iter,
        samples_per_sec: ev_sps,
    })
}

/// Most lr values kept (one per param group).
const MAX_LR_GROUPS: usize = 16;

/// After `step=`: `250, skipped=0, lr=[2e-05, 2e-05], mom=[...]`; a patched engine (gradient
/// release) prints a bare `lr=2e-05`. The values go to `out` (see [`parse_into`]).
fn parse_lr(b: &[u8], out: &mut Vec<f64>) -> Option<LineEvent> {
    let (step, r) = uint(b)?;
    if r.first() != Some(&b',') {
        return None;
    }
    // Sequential fast path for DeepSpeed's own order, then a search.
    let fast = r
        .strip_prefix(b", skipped=")
        .and_then(uint)
        .and_then(|(_, r)| r.strip_prefix(b", lr="));
    let r = match fast {
        Some(r) => r,
        None => find_after(r, b" lr=")?,
    };
    // Parsed on the stack first so that a malformed list leaves `out` as it was.
    let mut vals = [0f64; MAX_LR_GROUPS];
    let mut n = 0;
    if let Some(mut r) = r.strip_prefix(b"[") {
        loop {
            let (v, rest) = float(r)?;
            if n < MAX_LR_GROUPS {
                vals[n] = v;
                n += 1;
            }
            r = match rest.strip_prefix(b", ") {
                Some(x) => x,
                None => break,
            };
        }
    } else {
        vals[0] = float(r)?.0;
        n = 1;
    }
    out.clear();
    out.extend_from_slice(&vals[..n]);
    Some(LineEvent::Lr {
        step,
        lr: Vec::new(),
    })
}

/// launch.py's `[...cmd...] exits with return code = N` (N may be negative: killed by a signal).
fn parse_exit_code(line: &[u8]) -> Option<LineEvent> {
    let sp = memrchr(b' ', line)?;
    let head = &line[..sp];
    // The command list launch.py prints ends with `]`.
    if !head.ends_with(b"] exits with return code =") {
        return None;
    }
    let n = &line[sp + 1..];
    let code = match n.strip_prefix(b"-") {
        Some(d) => -i32::try_from(whole_uint(d)?).ok()?,
        None => i32::try_from(whole_uint(n)?).ok()?,
    };
    Some(LineEvent::ExitCode {
        local_rank: local_rank_in(head),
        code,
    })
}

/// A tqdm bar (`caching latents:  45%|████▌     | 450/1000 [00:12<00:15, 36.2it/s]`). Its last
/// redraw can run straight into the next stdout line, which is then what counts.
fn parse_bar(msg: &[u8], lr: &mut Vec<f64>) -> Option<LineEvent> {
    memchr(b'|', msg)?;
    let pct = memmem::find(msg, b"%|")?;
    if pct == 0 || !msg[pct - 1].is_ascii_digit() {
        return None;
    }
    let after = &msg[pct + 2..];
    if let Some(close) = memchr(b'|', after)
        && let Some(end) = memchr(b']', &after[close..])
    {
        let tail = &after[close + end + 1..];
        if !tail.is_empty()
            && let Some(ev) = parse_into(tail, lr)
        {
            return Some(ev);
        }
    }
    Some(LineEvent::Caching(lossy(msg)))
}

/// Modules that live in diffusion-pipe's submodules (`sys.path` entries under `submodules/`).
const SUBMODULE_MODULES: &[&[u8]] = &[
    b"comfy",
    b"comfy_extras",
    b"hyvideo",
    b"cosmos1",
    b"hi_diffusers",
    b"ltx_video",
    b"omnigen2",
    b"hyimage",
    b"longcat_video",
];

/// Failures seen in the last line of a Python exception (`SomeError: message`). Requiring that
/// shape keeps warnings, captions and traceback source lines that mention the same words out.
fn exception_failure(msg: &[u8]) -> Option<FailureKind> {
    let colon = memchr(b':', &msg[..msg.len().min(120)])?;
    let name = &msg[..colon];
    if name.contains(&b' ') || !(name.ends_with(b"Error") || name.ends_with(b"Exception")) {
        return None;
    }
    let text = &msg[colon..];
    let has = |n: &[u8]| contains(text, n);
    if has(b"EADDRINUSE")
        || has(b"ddress already in use")
        || has(b"failed to listen on any local network address")
    {
        return Some(FailureKind::PortInUse {
            port: port_in(text),
        });
    }
    if name.ends_with(b"OutOfMemoryError")
        || has(b"CUDA out of memory")
        || has(b"CUDA error: out of memory")
    {
        return Some(FailureKind::CudaOutOfMemory);
    }
    if has(b"autocommit") && has(b"keyword argument") {
        return Some(FailureKind::PythonTooOld);
    }
    // Import-type errors only: a RuntimeError raised inside flash_attn is not a missing package.
    let import = name.ends_with(b"ImportError") || name.ends_with(b"ModuleNotFoundError");
    if import && has(b"flash_attn") {
        return Some(FailureKind::FlashAttnMissing);
    }
    let module = find_after(text, b"No module named ").map(|m| {
        let m = m.strip_prefix(b"'").unwrap_or(m);
        let end = m
            .iter()
            .position(|&c| c == b'\'' || c == b' ')
            .unwrap_or(m.len());
        &m[..end]
    });
    let top = module.map(|m| m.split(|&c| c == b'.').next().unwrap_or(m));
    let missing_file = import || name.ends_with(b"FileNotFoundError");
    if (missing_file && has(b"submodules/")) || top.is_some_and(|t| SUBMODULE_MODULES.contains(&t))
    {
        return Some(FailureKind::SubmoduleMissing);
    }
    if let Some(m) = module.filter(|m| !m.is_empty()) {
        return Some(FailureKind::ModuleMissing { module: lossy(m) });
    }
    // `ncclUnhandledCudaError: ...`, `ncclSystemError: ...`, `RuntimeError: NCCL error in: ...`
    let short = name.rsplit(|&c| c == b'.').next().unwrap_or(name);
    if short.starts_with(b"nccl")
        || has(b"NCCL error")
        || has(b"NCCL communicator")
        || has(b"ProcessGroupNCCL")
    {
        return Some(FailureKind::Nccl);
    }
    None
}

/// The port in `port: 29500,` (torch's DistNetworkError) or `[::]:29500 (errno: 98` (c10d).
fn port_in(text: &[u8]) -> Option<u16> {
    if let Some(r) = find_after(text, b"port: ") {
        return uint(r).and_then(|(p, _)| u16::try_from(p).ok());
    }
    let at = memmem::find(text, b" (errno")?;
    let head = &text[..at];
    let digits = head.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let start = head.len() - digits;
    if digits == 0 || start == 0 || head[start - 1] != b':' {
        return None;
    }
    whole_uint(&head[start..]).and_then(|p| u16::try_from(p).ok())
}

fn local_rank_in(b: &[u8]) -> Option<u32> {
    let r = find_after(b, b"--local_rank=")?;
    uint(r).and_then(|(n, _)| u32::try_from(n).ok())
}

fn failure(kind: FailureKind, line: &[u8]) -> LineEvent {
    let text = String::from_utf8_lossy(line);
    let line = match text.char_indices().nth(FAILURE_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    };
    LineEvent::Failure(Failure { kind, line })
}

/// Skips what loggers put before a message: leading blanks, ANSI colour codes, timestamps and
/// short bracketed tags (`[2026-11-29 15:55:47,363] [INFO] [launch.py:272:main]`, `[Rank 0]`,
/// `[rank0]:`, `[W1129 15:55:21.06 socket.cpp:207] [c10d]`, `[Torch]`). Returns the message and
/// whether one of the tags was `[CACHE]`.
fn skip_prefix(mut b: &[u8]) -> (&[u8], bool) {
    loop {
        let blanks = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
        b = &b[blanks..];
        match b.first() {
            Some(b'[') => {
                if let Some(r) = b.strip_prefix(b"[CACHE]") {
                    return (skip_prefix(r).0, true);
                }
                // DeepSpeed's fixed-width `[2026-11-29 15:55:47,363]`, checked cheaply as it
                // starts a large share of lines.
                if b.len() > 25 && b[24] == b']' && b[5] == b'-' && b[1].is_ascii_digit() {
                    b = &b[25..];
                    continue;
                }
                if let Some(r) = b.strip_prefix(b"[INFO]") {
                    b = r;
                    continue;
                }
                // A tag is short and not a Python list: launch.py's `['python', ...] exits with
                // return code = 1` starts with one.
                let Some(end) = memchr(b']', &b[..b.len().min(100)]) else {
                    return (b, false);
                };
                if matches!(b.get(1), Some(b'\'' | b'"' | b'[')) {
                    return (b, false);
                }
                b = &b[end + 1..];
                if let Some(r) = b.strip_prefix(b":") {
                    b = r;
                }
            }
            Some(0x1b) => {
                // CSI: ESC [ params final-byte
                if b.get(1) != Some(&b'[') {
                    return (b, false);
                }
                match b[2..].iter().position(|c| (0x40..=0x7e).contains(c)) {
                    Some(i) => b = &b[i + 3..],
                    None => return (b, false),
                }
            }
            Some(c) if c.is_ascii_digit() => {
                // `2026-11-29T15:55:47.123Z`, `2026-11-29 15:55:47,363` (two tokens)
                let end = memchr(b' ', b).unwrap_or(b.len());
                let tok = &b[..end];
                let stamp = tok.iter().any(|&c| c == b'-' || c == b':')
                    && tok
                        .iter()
                        .all(|&c| c.is_ascii_digit() || b"-:.,TZ+".contains(&c));
                if !stamp {
                    return (b, false);
                }
                b = &b[end..];
            }
            _ => return (b, false),
        }
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    &b[..b.len() - n]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memmem::find(hay, needle).is_some()
}

fn find_after<'a>(hay: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    memmem::find(hay, needle).map(|i| &hay[i + needle.len()..])
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Leading decimal digits (at least one) and the rest.
fn uint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    (i > 0).then(|| (n, &b[i..]))
}

/// A number that is the whole of `b`.
fn whole_uint(b: &[u8]) -> Option<u64> {
    match uint(b)? {
        (n, []) => Some(n),
        _ => None,
    }
}

/// Exact powers of ten as f64 (10^22 is the largest exactly representable).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A float token (ended by a space, `,`, `]`, `)` or the end) and the rest. Python prints
/// `0.0734`, `2e-05`, `nan`, `inf`, `-inf`. Fast path in one pass for plain decimals: an exact
/// integer mantissa (< 2^53) scaled by an exact power of ten (<= 10^22) is one correctly rounded
/// IEEE operation (Clinger); anything else goes to std.
#[inline]
fn float(b: &[u8]) -> Option<(f64, &[u8])> {
    let is_end = |c: &u8| matches!(c, b' ' | b',' | b']' | b')');
    let neg = b.first() == Some(&b'-');
    let mut i = usize::from(neg);
    // Wrapping arithmetic: more than 18 digits goes to std below, so overflow is harmless.
    let mut m = 0u64;
    let digits = |i: &mut usize, m: &mut u64| {
        let start = *i;
        while let Some(&c) = b.get(*i).filter(|c| c.is_ascii_digit()) {
            *m = m.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i, &mut m);
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = digits(&mut i, &mut m);
    }
    let n_digits = int_digits + frac;
    let mut exp = 0i32;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let eneg = b.get(i) == Some(&b'-');
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let mut e = 0u64;
        exp = match digits(&mut i, &mut e) {
            1..=3 if eneg => -(e as i32),
            1..=3 => e as i32,
            _ => i32::MAX, // none or absurd: std decides
        };
    }
    let scale = i64::from(exp) - frac as i64;
    if (1..=18).contains(&n_digits)
        && m <= 1 << 53
        && scale.unsigned_abs() <= 22
        && b.get(i).is_none_or(is_end)
    {
        let v = if scale >= 0 {
            m as f64 * POW10[scale as usize]
        } else {
            m as f64 / POW10[(-scale) as usize]
        };
        return Some((if neg { -v } else { v }, &b[i..]));
    }
    let end = b.iter().position(is_end).unwrap_or(b.len());
    Some((slow_f64(&b[..end])?, &b[end..]))
}

/// A float that is the whole of `tok`.
#[cfg(test)]
fn parse_f64(tok: &[u8]) -> Option<f64> {
    match float(tok)? {
        (v, []) => Some(v),
        _ => None,
    }
}

fn slow_f64(tok: &[u8]) -> Option<f64> {
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Adds `f` unless a failure of the same kind (same module, for missing modules) is there;
/// a later line may supply the port an earlier one lacked. Returns whether it was added.
fn add_failure(list: &mut Vec<Failure>, f: &Failure) -> bool {
    let same = |a: &FailureKind| match (a, &f.kind) {
        (FailureKind::ModuleMissing { module: x }, FailureKind::ModuleMissing { module: y }) => {
            x == y
        }
        (a, b) => discriminant(a) == discriminant(b),
    };
    if let Some(old) = list.iter_mut().find(|o| same(&o.kind)) {
        if let (
            FailureKind::PortInUse { port: p @ None },
            FailureKind::PortInUse { port: Some(n) },
        ) = (&mut old.kind, &f.kind)
        {
            *p = Some(*n);
        }
        return false;
    }
    if list.len() >= MAX_FAILURES {
        return false;
    }
    list.push(f.clone());
    true
}

/// Calls `f` on every `\r`/`\n`-separated segment of `b`.
fn for_segments(b: &[u8], mut f: impl FnMut(&[u8])) {
    let mut start = 0;
    for end in memchr2_iter(b'\n', b'\r', b) {
        f(&b[start..end]);
        start = end + 1;
    }
    f(&b[start..]);
}

/// What rank 0's output says about a run so far.
#[derive(Default, Clone, Debug)]
pub struct Progress {
    /// Last printed global step.
    pub step: Option<u64>,
    /// Current epoch: 1 once steps run, then from `Started new epoch` / the resume line.
    pub epoch: Option<u64>,
    pub loss: Option<f64>,
    /// (step, loss) for the chart, NaN kept. Evenly thinned to at most [`MAX_LOSS_POINTS`]; the
    /// first and the newest points are always there.
    pub losses: Vec<(u64, f32)>,
    pub iter_time: Option<f64>,
    pub samples_per_sec: Option<f64>,
    /// Last step of epoch 1 (last step before `Started new epoch: 2`); generally
    /// `last step / (e - 1)` at `Started new epoch: e`, which also holds after a resume.
    pub steps_per_epoch: Option<u64>,
    pub global_batch: Option<u64>,
    /// (epoch, step) from the resume line.
    pub resumed_at: Option<(u64, u64)>,
    /// Saved model directories (`epoch2`, `step500`), oldest first.
    pub saved: Vec<String>,
    /// Tag of the last resumable checkpoint DeepSpeed started writing (`global_step500`).
    pub last_checkpoint: Option<String>,
    /// Learning rate per param group (at most 16), from the last `lr=` line.
    pub lr: Vec<f64>,
    pub evals: u32,
    pub complete: bool,
    pub manual_quit: bool,
    /// Last caching line while caching; cleared when steps start.
    pub caching: Option<String>,
    /// Distinct failures, first [`MAX_FAILURES`].
    pub failures: Vec<Failure>,
    /// Sum and count of the finite iter times after the first one (which includes compilation
    /// and warm-up), for the ETA.
    pub iter_sum: f64,
    pub iter_count: u64,
    iter_seen: u64,
    /// Loss thinning: a point is kept when its arrival index is a multiple of `loss_stride`;
    /// `loss_tail` says the last point is the newest one kept off that grid.
    loss_stride: u64,
    loss_arrivals: u64,
    loss_tail: bool,
}

impl Progress {
    /// Applies every recognised `\r`/`\n` segment of `line`.
    pub fn feed(&mut self, line: &str) {
        self.feed_bytes(line.as_bytes());
    }

    /// [`Progress::feed`] for raw bytes (invalid UTF-8 is fine).
    pub fn feed_bytes(&mut self, line: &[u8]) {
        for_segments(line, |seg| self.feed_segment(seg));
    }

    fn feed_segment(&mut self, seg: &[u8]) {
        // An lr line's values land straight in `self.lr`: no allocation per line.
        match parse_into(seg, &mut self.lr) {
            Some(LineEvent::Lr { .. }) | None => {}
            Some(ev) => self.apply(&ev),
        }
    }

    pub fn apply(&mut self, ev: &LineEvent) {
        use LineEvent as E;
        match ev {
            &E::Step {
                step,
                loss,
                iter_time,
                samples_per_sec,
            } => self.on_step(step, loss, iter_time, samples_per_sec),
            E::Lr { lr, .. } => self.lr.clone_from(lr),
            &E::EpochStarted(e) => {
                self.epoch = Some(e);
                // Step s ended epoch e-1; epochs have equal length (same dataloader), so this is
                // exact at epoch 2 of a fresh run, correct after a resume, and sharpens with
                // each epoch when steps_per_print > 1 hides the exact last step.
                if e >= 2
                    && let Some(s) = self.step
                {
                    let n = e - 1;
                    self.steps_per_epoch = Some((s + n / 2) / n).filter(|&v| v > 0);
                }
            }
            E::Saving { dir } => {
                if self.saved.len() >= MAX_SAVED {
                    self.saved.remove(0);
                }
                self.saved.push(dir.clone());
            }
            E::Checkpoint { tag } => self.last_checkpoint = Some(tag.clone()),
            E::EvalStarted => self.evals += 1,
            E::Complete => self.complete = true,
            E::ManualQuit => self.manual_quit = true,
            &E::GlobalBatch(n) => self.global_batch = Some(n),
            &E::Resumed { epoch, step } => {
                self.resumed_at = Some((epoch, step));
                self.epoch = Some(epoch);
            }
            // Bars after training started belong to eval, not caching.
            E::Caching(text) if self.step.is_none() => match &mut self.caching {
                Some(c) => text.clone_into(c),
                None => self.caching = Some(text.clone()),
            },
            E::Failure(f) => {
                add_failure(&mut self.failures, f);
            }
            E::Caching(_)
            | E::Spawned { .. }
            | E::ExitedOk { .. }
            | E::ExitCode { .. }
            | E::Killing { .. } => {}
        }
    }

    fn on_step(&mut self, step: u64, loss: f64, iter: Option<f64>, sps: Option<f64>) {
        self.caching = None;
        self.step = Some(step);
        self.epoch.get_or_insert(1);
        self.loss = Some(loss);
        self.samples_per_sec = sps.or(self.samples_per_sec);
        if let Some(t) = iter {
            self.iter_time = Some(t);
            if self.iter_seen > 0 && t.is_finite() && t >= 0.0 {
                self.iter_sum += t;
                self.iter_count += 1;
            }
            self.iter_seen += 1;
        }
        self.push_loss(step, loss as f32);
    }

    /// Keeps an evenly spaced subset (every `stride`-th point) plus the newest point; when full,
    /// drops every second point and doubles the stride, so memory is bounded and the whole run
    /// keeps the same resolution.
    fn push_loss(&mut self, step: u64, loss: f32) {
        if self.loss_tail {
            self.losses.pop();
        }
        let stride = self.loss_stride.max(1);
        // The stride is a power of two: a mask instead of a (slow) 64-bit division.
        self.loss_tail = self.loss_arrivals & (stride - 1) != 0;
        self.loss_arrivals += 1;
        self.losses.push((step, loss));
        if self.losses.len() <= MAX_LOSS_POINTS {
            return;
        }
        let newest = (step, loss);
        if self.loss_tail {
            self.losses.pop();
        }
        let n = self.losses.len();
        let newest_survives = !self.loss_tail && (n - 1).is_multiple_of(2);
        let mut w = 0;
        for r in (0..n).step_by(2) {
            self.losses[w] = self.losses[r];
            w += 1;
        }
        self.losses.truncate(w);
        self.loss_stride = stride * 2;
        self.loss_tail = !newest_survives;
        if self.loss_tail {
            self.losses.push(newest);
        }
    }

    /// Mean iter time per step without the first one; None before two timed step lines.
    pub fn mean_iter_time(&self) -> Option<f64> {
        (self.iter_count > 0).then(|| self.iter_sum / self.iter_count as f64)
    }

    /// `max_steps` if given, else `epochs` × steps per epoch.
    pub fn total_steps(&self, epochs: Option<u64>, max_steps: Option<u64>) -> Option<u64> {
        max_steps.or_else(|| epochs?.checked_mul(self.steps_per_epoch?))
    }

    /// Remaining steps × mean iter time (first excluded); None when anything is unknown.
    pub fn eta(&self, total: Option<u64>) -> Option<Duration> {
        let left = total?.saturating_sub(self.step?);
        Duration::try_from_secs_f64(left as f64 * self.mean_iter_time()?).ok()
    }

    /// Exponential moving average of the loss for the chart; `alpha` (0..=1) is the weight of
    /// each new point (1 = raw). Non-finite losses are skipped.
    pub fn smoothed_losses(&self, alpha: f64) -> Vec<(u64, f32)> {
        let a = if alpha.is_finite() {
            alpha.clamp(f64::MIN_POSITIVE, 1.0)
        } else {
            1.0
        };
        let mut ema: Option<f64> = None;
        self.losses
            .iter()
            .filter(|(_, l)| l.is_finite())
            .map(|&(s, l)| {
                let e = ema.map_or(f64::from(l), |e| a * f64::from(l) + (1.0 - a) * e);
                ema = Some(e);
                (s, e as f32)
            })
            .collect()
    }
}

/// How a finished job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// `reason` is one sentence, e.g. "rank 0 could not listen on port 29500: address already
    /// in use".
    Failed {
        reason: String,
    },
    Unknown,
}

/// Judges a job from its launcher output and rank logs, fed incrementally.
#[derive(Debug, Default, Clone)]
pub struct RunJudge {
    spawned: Vec<(u32, Option<u32>)>,
    exited_ok: Vec<u32>,
    exit_code: Option<i32>,
    killing: bool,
    finished: bool,
    failures: Vec<Failure>,
    /// Parallel to `failures`: the rank whose log showed it (None: the launcher's output).
    failure_ranks: Vec<Option<u32>>,
}

impl RunJudge {
    pub fn new() -> Self {
        Self::default()
    }

    /// A line of the launcher's output (which also carries the ranks' output when they have no
    /// log files of their own).
    pub fn feed_launcher(&mut self, line: &str) {
        for_segments(line.as_bytes(), |seg| {
            if let Some(ev) = parse_segment(seg) {
                self.on_event(None, ev);
            }
        });
    }

    /// A line of rank `rank`'s own log.
    pub fn feed_rank(&mut self, rank: u32, line: &str) {
        for_segments(line.as_bytes(), |seg| {
            if let Some(ev) = parse_segment(seg) {
                self.on_event(Some(rank), ev);
            }
        });
    }

    fn on_event(&mut self, rank: Option<u32>, ev: LineEvent) {
        match ev {
            LineEvent::Spawned { pid, local_rank }
                if !self.spawned.iter().any(|&(p, _)| p == pid) =>
            {
                self.spawned.push((pid, local_rank));
            }
            LineEvent::ExitedOk { pid } if !self.exited_ok.contains(&pid) => {
                self.exited_ok.push(pid);
            }
            LineEvent::ExitCode { code, .. } => self.exit_code = Some(code),
            LineEvent::Killing { .. } => self.killing = true,
            LineEvent::Complete | LineEvent::ManualQuit => self.finished = true,
            LineEvent::Failure(f) => {
                let added = add_failure(&mut self.failures, &f);
                self.failure_ranks.extend(added.then_some(rank));
            }
            _ => {}
        }
    }

    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// (pid, local rank) of every rank launch.py started.
    pub fn spawned(&self) -> &[(u32, Option<u32>)] {
        &self.spawned
    }

    /// `runner_exit`: the `deepspeed` runner's exit status, None while it runs (or unknown).
    /// Success needs every spawned rank's `exits successfully`, or rank 0's `TRAINING COMPLETE!` /
    /// `Manually quitting` with no failure; exit 0 alone is not success (SIGKILLed launch.py).
    pub fn outcome(&self, runner_exit: Option<i32>) -> Outcome {
        let all_ok = !self.spawned.is_empty()
            && self
                .spawned
                .iter()
                .all(|(pid, _)| self.exited_ok.contains(pid));
        if all_ok {
            return Outcome::Succeeded;
        }
        let failed = |reason: String| Outcome::Failed { reason };
        // The first recognised failure is the cause; later ones are usually its echoes.
        let cause = self
            .failures
            .first()
            .map(|f| f.kind.clause(self.failure_ranks[0]));
        if let Some(code) = self.exit_code {
            // launch.py gave up on the job; its line names the last-spawned rank, not the
            // failing one, so the rank is not named here.
            return failed(cause.unwrap_or_else(|| exit_code_clause(code)));
        }
        let Some(exit) = runner_exit else {
            return Outcome::Unknown;
        };
        if let Some(c) = cause {
            return failed(c);
        }
        if self.finished {
            return Outcome::Succeeded;
        }
        let ok = self.exited_ok.len();
        let n = self.spawned.len();
        failed(match exit {
            0 if self.killing => {
                "the launcher was stopped while the ranks ran (stopped, or killed)".into()
            }
            0 if n == 0 => {
                "the launcher ended without starting any rank or reporting success; it was probably killed".into()
            }
            0 => format!(
                "the launcher ended with only {ok} of {n} ranks reporting success; it was probably killed"
            ),
            c => format!("the DeepSpeed runner exited with code {c} and no recognised error"),
        })
    }
}

fn exit_code_clause(code: i32) -> String {
    if code < 0 {
        let sig = -code;
        let name = match sig {
            9 => " (SIGKILL, often the kernel's out-of-memory killer)",
            15 => " (SIGTERM)",
            2 => " (SIGINT)",
            6 => " (SIGABRT)",
            11 => " (SIGSEGV)",
            _ => "",
        };
        format!("a rank was killed by signal {sig}{name} and the launcher stopped the job")
    } else {
        format!("a rank exited with code {code} and the launcher stopped the others")
    }
}

/// Reads a (possibly multi-GB) rank log once and returns its Progress, as if every line had been
/// fed to [`Progress::feed`].
pub fn scan_history(path: &Path) -> io::Result<Progress> {
    scan_reader(std::fs::File::open(path)?)
}

/// [`scan_history`] on any reader. Reads 1 MiB blocks, splits them with memchr, and keeps at most
/// [`MAX_LINE`] bytes of a segment that straddles two blocks (a longer one is skipped whole).
pub fn scan_reader<R: Read>(mut r: R) -> io::Result<Progress> {
    let mut p = Progress::default();
    let mut buf = vec![0u8; BLOCK];
    let mut carry: Vec<u8> = Vec::new();
    // The segment in progress is longer than MAX_LINE: drop bytes up to its end.
    let mut skipping = false;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let data = &buf[..n];
        let mut start = 0;
        for end in memchr2_iter(b'\n', b'\r', data) {
            let piece = &data[start..end];
            start = end + 1;
            if skipping {
                skipping = false;
            } else if carry.is_empty() {
                p.feed_segment(piece);
            } else {
                if carry.len() + piece.len() <= MAX_LINE {
                    carry.extend_from_slice(piece);
                    p.feed_segment(&carry);
                }
                carry.clear();
            }
        }
        let tail = &data[start..];
        if !skipping {
            if carry.len() + tail.len() > MAX_LINE {
                skipping = true;
                carry.clear();
            } else {
                carry.extend_from_slice(tail);
            }
        }
    }
    if !skipping {
        p.feed_segment(&carry);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: u64, loss: f64, it: Option<f64>, sps: Option<f64>) -> LineEvent {
        LineEvent::Step {
            step,
            loss,
            iter_time: it,
            samples_per_sec: sps,
        }
    }

    fn kind(line: &str) -> Option<FailureKind> {
        match parse_line(line) {
            Some(LineEvent::Failure(f)) => Some(f.kind),
            _ => None,
        }
    }

    #[test]
    fn step_lines() {
        let e = parse_line("steps: 250 loss: 0.0734 iter time (s): 3.912 samples/sec: 1.022");
        assert_eq!(e, Some(step(250, 0.0734, Some(3.912), Some(1.022))));
        // DeepSpeed's extra losses between loss and the timings, CRLF ending
        let e = parse_line(
            "steps: 7 loss: 0.5000 mse: 0.2500 iter time (s): 2.000 samples/sec: 0.500\r\n",
        );
        assert_eq!(e, Some(step(7, 0.5, Some(2.0), Some(0.5))));
        let e = parse_line("steps: 9 loss: 0.1000");
        assert_eq!(e, Some(step(9, 0.1, None, None)));
        // nan / inf
        match parse_line("steps: 12 loss: nan iter time (s): inf samples/sec: 0.000") {
            Some(LineEvent::Step {
                step: 12,
                loss,
                iter_time: Some(t),
                samples_per_sec: Some(s),
            }) => assert!(loss.is_nan() && t == f64::INFINITY && s == 0.0),
            other => panic!("{other:?}"),
        }
        match parse_line("steps: 13 loss: -inf iter time (s): 1.000 samples/sec: 1.000") {
            Some(LineEvent::Step { loss, .. }) => assert_eq!(loss, f64::NEG_INFINITY),
            other => panic!("{other:?}"),
        }
        // timestamp and rank prefixes, tqdm remnants before it
        let want = Some(step(30, 0.25, Some(1.5), Some(2.0)));
        let body = "steps: 30 loss: 0.2500 iter time (s): 1.500 samples/sec: 2.000";
        for line in [
            format!("2026-11-29T15:55:47.123456Z {body}"),
            format!("2026-11-29 15:55:47,363 {body}"),
            format!("[2026-11-29 15:55:47,363] [rank0]: {body}"),
            format!("\x1b[32m{body}"),
            format!(" 45%|████▌     | 450/1000 [00:12<00:15, 36.2it/s]\r{body}"),
            format!("\r 45%|████▌     | 450/1000 [00:12<00:15, 36.2it/s]{body}"),
            format!("{body}\r"),
        ] {
            assert_eq!(parse_line(&line), want, "{line:?}");
        }
    }

    #[test]
    fn step_near_misses() {
        for line in [
            "a photo of a cat with a sad face, loss of hope, steps: many",
            "caption: steps: 3 loss: low",
            "steps: 3 loss: low",
            "steps: x loss: 0.1",
            "steps: 3 loss: 0.1x iter time (s): 1",
            "mysteps: 3 loss: 0.1",
            "steps:3 loss: 0.1",
            "Steps: 3 loss: 0.1",
            "train/loss 0.1 at step 3",
        ] {
            assert!(
                !matches!(parse_line(line), Some(LineEvent::Step { .. })),
                "{line}"
            );
        }
    }

    #[test]
    fn other_events() {
        let ds = "[2026-11-29 15:55:47,363] [INFO] [logging.py:128:log_dist] [Rank 0]";
        assert_eq!(
            parse_line(&format!(
                "{ds} step=250, skipped=0, lr=[2e-05, 2e-05], mom=[(0.9, 0.99), (0.9, 0.99)]"
            )),
            Some(LineEvent::Lr {
                step: 250,
                lr: vec![2e-5, 2e-5]
            })
        );
        assert_eq!(
            parse_line(&format!("{ds} step=3, skipped=0, lr=0.0001, mom=0.9")),
            Some(LineEvent::Lr {
                step: 3,
                lr: vec![1e-4]
            })
        );
        assert_eq!(
            parse_line(&format!(
                "{ds} [Torch] Checkpoint global_step500 is about to be saved!"
            )),
            Some(LineEvent::Checkpoint {
                tag: "global_step500".into()
            })
        );
        let cases: &[(&str, LineEvent)] = &[
            ("Started new epoch: 3", LineEvent::EpochStarted(3)),
            (
                "Saving model to directory epoch2",
                LineEvent::Saving {
                    dir: "epoch2".into(),
                },
            ),
            (
                "Saving model to directory step500",
                LineEvent::Saving {
                    dir: "step500".into(),
                },
            ),
            ("Running eval", LineEvent::EvalStarted),
            ("TRAINING COMPLETE!", LineEvent::Complete),
            ("Manually quitting", LineEvent::ManualQuit),
            ("Global batch size = 4", LineEvent::GlobalBatch(4)),
            (
                "Resuming training from checkpoint. Resuming at epoch: 5, step: 1201",
                LineEvent::Resumed {
                    epoch: 5,
                    step: 1201,
                },
            ),
            (
                "caching latents: (1.0, 1024, 1024, 1)",
                LineEvent::Caching("caching latents: (1.0, 1024, 1024, 1)".into()),
            ),
            (
                "[CACHE] hashing 120 files",
                LineEvent::Caching("hashing 120 files".into()),
            ),
            (
                " 45%|████▌     | 450/1000 [00:12<00:15, 36.2it/s]",
                LineEvent::Caching(
                    " 45%|████▌     | 450/1000 [00:12<00:15, 36.2it/s]"
                        .trim_start()
                        .into(),
                ),
            ),
            (
                "[2026-11-29 15:55:47,363] [INFO] [launch.py:272:main] process 32575 spawned with command: ['/opt/v/bin/python3', '-u', 'train.py', '--local_rank=0', '--deepspeed']",
                LineEvent::Spawned {
                    pid: 32575,
                    local_rank: Some(0),
                },
            ),
            (
                "[2026-11-29 15:55:54,371] [INFO] [launch.py:367:main] Process 32576 exits successfully.",
                LineEvent::ExitedOk { pid: 32576 },
            ),
            (
                "[2026-11-29 15:55:22,966] [INFO] [launch.py:335:sigkill_handler] Killing subprocess 32437",
                LineEvent::Killing { pid: 32437 },
            ),
            (
                "[2026-11-29 15:55:23,009] [ERROR] [launch.py:341:sigkill_handler] ['/opt/v/bin/python3', '-u', 'dp.py', '--local_rank=1', '--config', 'c.toml'] exits with return code = 1",
                LineEvent::ExitCode {
                    local_rank: Some(1),
                    code: 1,
                },
            ),
            (
                "[2026-11-29 15:55:23,009] [ERROR] [launch.py:341:sigkill_handler] ['python', 'x.py'] exits with return code = -15",
                LineEvent::ExitCode {
                    local_rank: None,
                    code: -15,
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line).as_ref(), Some(want), "{line}");
        }
    }

    #[test]
    fn other_near_misses() {
        for line in [
            "",
            "   ",
            "\r\r",
            "Started new epoch: three",
            "We Started new epoch: 3",
            "Running eval now",
            "a caption saying TRAINING COMPLETE!",
            "TRAINING COMPLETE! (not really)",
            "Saving model to directory",
            "Global batch size = four",
            "process spawned with command: []",
            "Process 12 exits successfully. Not.",
            "Killing subprocess",
            "steps and exits with return code = 1",
            "[2026-11-29 15:55:47,363] [INFO] [launch.py:162:main] WORLD INFO DICT: {'localhost': [0, 1]}",
            "[W1129 15:55:21.064322185 socket.cpp:207] [c10d] The hostname of the client socket cannot be retrieved. err=-3",
            "/opt/v/lib/python3.11/site-packages/torch/jit/_script.py:1491: FutureWarning: `torch.jit.script` is deprecated.",
            "  warnings.warn(",
            "Traceback (most recent call last):",
            "  File \"/srv/x.py\", line 24, in <module>",
            "    raise RuntimeError('CUDA out of memory')",
            "UserWarning: this model may run out of memory, Address already in use is unlikely",
            "caption: a dog named Error: CUDA out of memory",
            "x\u{0}\u{ff}\u{fffd}",
            "100% done | not a bar",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn failures() {
        use FailureKind as K;
        let port = |p| Some(K::PortInUse { port: Some(p) });
        assert_eq!(
            kind(
                "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. port: 29500, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use"
            ),
            port(29500)
        );
        assert_eq!(
            kind(
                "[W1201 09:20:17.118 socket.cpp:759] [c10d] The server socket has failed to bind to [::]:29611 (errno: 98 - Address already in use)."
            ),
            port(29611)
        );
        assert_eq!(
            kind("OSError: [Errno 98] Address already in use"),
            Some(K::PortInUse { port: None })
        );
        assert_eq!(
            kind(
                "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 23.64 GiB"
            ),
            Some(K::CudaOutOfMemory)
        );
        assert_eq!(
            kind("torch.cuda.OutOfMemoryError: CUDA out of memory."),
            Some(K::CudaOutOfMemory)
        );
        assert_eq!(
            kind("RuntimeError: CUDA error: out of memory"),
            Some(K::CudaOutOfMemory)
        );
        assert_eq!(
            kind(
                "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:275, unhandled cuda error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5"
            ),
            Some(K::Nccl)
        );
        assert_eq!(
            kind("ncclUnhandledCudaError: Call to CUDA function failed."),
            Some(K::Nccl)
        );
        assert_eq!(
            kind(
                "ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error."
            ),
            Some(K::Nccl)
        );
        assert_eq!(
            kind(
                "[rank0]:[E1201 10:00:00.000 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out."
            ),
            Some(K::Nccl)
        );
        assert_eq!(
            kind("ModuleNotFoundError: No module named 'flash_attn'"),
            Some(K::FlashAttnMissing)
        );
        assert_eq!(
            kind(
                "ImportError: /v/lib/python3.12/site-packages/flash_attn_2_cuda.cpython-312-x86_64-linux-gnu.so: undefined symbol: _ZN3c10"
            ),
            Some(K::FlashAttnMissing)
        );
        assert_eq!(
            kind("ModuleNotFoundError: No module named 'comfy'"),
            Some(K::SubmoduleMissing)
        );
        assert_eq!(
            kind("ModuleNotFoundError: No module named 'hyvideo.modules'"),
            Some(K::SubmoduleMissing)
        );
        assert_eq!(
            kind(
                "FileNotFoundError: [Errno 2] No such file or directory: '/srv/dp/submodules/ComfyUI/comfy/model_base.py'"
            ),
            Some(K::SubmoduleMissing)
        );
        assert_eq!(
            kind("TypeError: sqlite3.connect() got an unexpected keyword argument 'autocommit'"),
            Some(K::PythonTooOld)
        );
        assert_eq!(
            kind("TypeError: connect() got an unexpected keyword argument 'autocommit'"),
            Some(K::PythonTooOld)
        );
        assert_eq!(
            kind("TypeError: 'autocommit' is an invalid keyword argument for connect()"),
            Some(K::PythonTooOld)
        );
        assert_eq!(
            kind("ModuleNotFoundError: No module named 'peft'"),
            Some(K::ModuleMissing {
                module: "peft".into()
            })
        );
        // not failures
        for line in [
            "Traceback (most recent call last):",
            "NCCL WARN Failed to open libibverbs.so[.1]",
            "host:123:456 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.0.2<0>",
            "RuntimeError: expected scalar type Float but found Half",
            "WARNING: out of memory soon? Address already in use?",
            "RuntimeError: flash_attn only supports fp16 and bf16",
            "RuntimeError: size mismatch loading /srv/dp/submodules/ComfyUI/x.safetensors",
        ] {
            assert_eq!(kind(line), None, "{line}");
        }
        for k in [
            K::PortInUse { port: None },
            K::CudaOutOfMemory,
            K::Nccl,
            K::FlashAttnMissing,
            K::SubmoduleMissing,
            K::PythonTooOld,
            K::ModuleMissing { module: "x".into() },
        ] {
            assert!(k.title().ends_with('.') && k.fix().ends_with('.'), "{k:?}");
        }
        assert!(K::CudaOutOfMemory.fix().contains("blocks_to_swap"));
        assert!(
            K::CudaOutOfMemory
                .fix()
                .contains("expandable_segments:True")
        );
        assert!(
            K::Nccl
                .fix()
                .contains("NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1")
        );
        assert!(
            K::SubmoduleMissing
                .fix()
                .contains("git submodule update --init --recursive")
        );
    }

    #[test]
    fn failure_line_is_bounded_and_lossy() {
        let long = format!("RuntimeError: CUDA out of memory. {}", "x".repeat(5000));
        match parse_line(&long) {
            Some(LineEvent::Failure(f)) => {
                assert!(f.line.chars().count() <= FAILURE_LINE_CHARS + 1)
            }
            other => panic!("{other:?}"),
        }
        let mut p = Progress::default();
        p.feed_bytes(b"ModuleNotFoundError: No module named 'x\xffy'");
        assert_eq!(
            p.failures[0].kind,
            FailureKind::ModuleMissing {
                module: "x\u{fffd}y".into()
            }
        );
    }

    #[test]
    fn floats_match_std() {
        let mut toks: Vec<String> = [
            "0",
            "0.0",
            "-0.0",
            "1",
            "0.0734",
            "3.912",
            "2e-05",
            "5e-05",
            "1e-4",
            "1.5E+3",
            "7e22",
            "1e23",
            "123456789012345678",
            "1234567890.12345678",
            "0.1",
            "0.30000000000000004",
            "9007199254740993",
            "1e-22",
            "4.9e-324",
            ".5",
            "5.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                toks.push(format!("{v}"));
                toks.push(format!("{v:e}"));
            }
            let d = (x % 10_000_000) as f64 / 10f64.powi((x >> 40) as i32 % 9);
            toks.push(format!("{d:.4}"));
            toks.push(format!("{d}"));
        }
        for t in &toks {
            let want: f64 = t.parse().unwrap();
            let got = parse_f64(t.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{t}");
        }
        for bad in ["", "-", ".", "e5", "1e", "1.2.3", "0x10", "1e+"] {
            assert_eq!(parse_f64(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn steps_per_epoch_total_and_eta() {
        let mut p = Progress::default();
        p.feed("caching latents: (1.0, 512, 512, 1)");
        assert!(p.caching.is_some());
        assert_eq!(p.eta(Some(100)), None);
        let times = [30.0, 4.0, 5.0, 6.0];
        for (i, t) in times.iter().enumerate() {
            p.feed(&format!(
                "steps: {} loss: 0.1000 iter time (s): {t:.3} samples/sec: 1.000",
                i + 1
            ));
        }
        assert_eq!(p.caching, None);
        assert_eq!(p.epoch, Some(1));
        assert_eq!(p.steps_per_epoch, None);
        p.feed("Saving model to directory epoch1");
        p.feed("Started new epoch: 2");
        assert_eq!(p.steps_per_epoch, Some(4));
        assert_eq!(p.epoch, Some(2));
        assert_eq!(p.saved, ["epoch1"]);
        assert_eq!(p.total_steps(Some(10), None), Some(40));
        assert_eq!(p.total_steps(Some(10), Some(25)), Some(25));
        assert_eq!(p.total_steps(None, None), None);
        // mean of all iter times but the first
        let mean = times[1..].iter().sum::<f64>() / (times.len() - 1) as f64;
        let eta = p.eta(p.total_steps(Some(10), None)).unwrap();
        assert!(
            (eta.as_secs_f64() - (40 - 4) as f64 * mean).abs() < 1e-9,
            "{eta:?}"
        );
        assert_eq!(p.eta(Some(3)), Some(Duration::ZERO));
        assert_eq!(p.eta(None), None);
        // a caching-like bar during eval does not bring the caching phase back
        p.feed(" 50%|█████     | 1/2 [00:01<00:01,  1.00it/s]");
        assert_eq!(p.caching, None);
    }

    #[test]
    fn steps_per_epoch_after_resume() {
        let mut p = Progress::default();
        p.feed("Resuming training from checkpoint. Resuming at epoch: 3, step: 41");
        assert_eq!((p.resumed_at, p.epoch), (Some((3, 41)), Some(3)));
        for s in 41..=60 {
            p.feed(&format!(
                "steps: {s} loss: 0.1 iter time (s): 1.0 samples/sec: 1.0"
            ));
        }
        p.feed("Started new epoch: 4");
        assert_eq!(p.steps_per_epoch, Some(20));
        assert_eq!(p.total_steps(Some(5), None), Some(100));
    }

    #[test]
    fn loss_history_is_bounded() {
        let mut p = Progress::default();
        let n = 1_000_000u64;
        for s in 1..=n {
            p.apply(&step(s, (s % 97) as f64, Some(1.0), None));
            assert!(p.losses.len() <= MAX_LOSS_POINTS);
        }
        assert_eq!(p.losses.first().map(|l| l.0), Some(1));
        assert_eq!(p.losses.last().map(|l| l.0), Some(n));
        assert!(p.losses.len() > MAX_LOSS_POINTS / 4);
        assert!(p.losses.windows(2).all(|w| w[0].0 < w[1].0));
        // evenly spaced apart from the newest point
        let gaps: Vec<u64> = p.losses[..p.losses.len() - 1]
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .collect();
        assert!(gaps.iter().all(|&g| g == gaps[0]), "uneven thinning");
    }

    #[test]
    fn smoothing_skips_nan() {
        let mut p = Progress::default();
        for (s, l) in [
            (1, 1.0),
            (2, f64::NAN),
            (3, 3.0),
            (4, f64::INFINITY),
            (5, 2.0),
        ] {
            p.apply(&step(s, l, None, None));
        }
        assert_eq!(p.losses.len(), 5);
        let sm = p.smoothed_losses(0.5);
        assert_eq!(sm, vec![(1, 1.0), (3, 2.0), (5, 2.0)]);
        assert_eq!(p.smoothed_losses(1.0), vec![(1, 1.0), (3, 3.0), (5, 2.0)]);
    }

    #[test]
    fn failures_deduplicated_and_bounded() {
        let mut p = Progress::default();
        p.feed("OSError: [Errno 98] Address already in use");
        p.feed("torch.distributed.DistNetworkError: failed to listen on any local network address. port: 29500, x");
        assert_eq!(p.failures.len(), 1);
        assert_eq!(
            p.failures[0].kind,
            FailureKind::PortInUse { port: Some(29500) }
        );
        for i in 0..40 {
            p.feed(&format!("ModuleNotFoundError: No module named 'm{i}'"));
        }
        assert_eq!(p.failures.len(), MAX_FAILURES);
    }

    fn judge_lines(j: &mut RunJudge, text: &str) {
        for l in text.lines() {
            j.feed_launcher(l);
        }
    }

    const SPAWN: &str = "[2026-11-29 15:55:47,363] [INFO] [launch.py:272:main] process 100 spawned with command: ['python', '-u', 'train.py', '--local_rank=0']\n\
        [2026-11-29 15:55:47,369] [INFO] [launch.py:272:main] process 101 spawned with command: ['python', '-u', 'train.py', '--local_rank=1']\n";

    #[test]
    fn judge_two_ranks_ok() {
        let mut j = RunJudge::new();
        judge_lines(&mut j, SPAWN);
        assert_eq!(j.spawned(), [(100, Some(0)), (101, Some(1))]);
        assert_eq!(j.outcome(None), Outcome::Unknown);
        j.feed_launcher(
            "[2026-11-29 15:55:54,371] [INFO] [launch.py:367:main] Process 101 exits successfully.",
        );
        assert_eq!(j.outcome(None), Outcome::Unknown);
        j.feed_launcher(
            "[2026-11-29 15:55:54,372] [INFO] [launch.py:367:main] Process 100 exits successfully.",
        );
        assert_eq!(j.outcome(None), Outcome::Succeeded);
        assert_eq!(j.outcome(Some(0)), Outcome::Succeeded);
    }

    #[test]
    fn judge_launcher_killed_is_not_success() {
        let mut j = RunJudge::new();
        judge_lines(&mut j, SPAWN);
        j.feed_rank(0, "steps: 5 loss: 0.1 iter time (s): 1.0 samples/sec: 1.0");
        match j.outcome(Some(0)) {
            Outcome::Failed { reason } => assert!(reason.contains("0 of 2"), "{reason}"),
            o => panic!("{o:?}"),
        }
        // nothing at all, runner exit 0
        assert!(matches!(
            RunJudge::new().outcome(Some(0)),
            Outcome::Failed { .. }
        ));
        // TRAINING COMPLETE! from rank 0 with no failure is success even if launch.py died late
        j.feed_rank(0, "TRAINING COMPLETE!");
        assert_eq!(j.outcome(Some(0)), Outcome::Succeeded);
    }

    #[test]
    fn judge_port_in_use() {
        let mut j = RunJudge::new();
        judge_lines(&mut j, SPAWN);
        j.feed_rank(0, "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. port: 29500, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use");
        assert_eq!(j.outcome(None), Outcome::Unknown);
        let want = Outcome::Failed {
            reason: "rank 0 could not listen on port 29500: address already in use".into(),
        };
        assert_eq!(j.outcome(Some(1)), want);
        j.feed_launcher("[2026-11-29 15:55:23,009] [ERROR] [launch.py:341:sigkill_handler] ['python', '-u', 'train.py', '--local_rank=1'] exits with return code = 1");
        assert_eq!(j.outcome(None), want);
        assert_eq!(j.failures().len(), 1);
    }

    #[test]
    fn judge_exit_code_without_known_cause() {
        let mut j = RunJudge::new();
        judge_lines(&mut j, SPAWN);
        j.feed_rank(1, "ncclUnhandledCudaError: Call to CUDA function failed.");
        assert_eq!(
            j.outcome(Some(1)),
            Outcome::Failed {
                reason: "rank 1 hit an NCCL (GPU communication) error".into()
            }
        );
        let mut j = RunJudge::new();
        judge_lines(&mut j, SPAWN);
        j.feed_launcher("['python', 'train.py', '--local_rank=1'] exits with return code = -9");
        match j.outcome(None) {
            Outcome::Failed { reason } => assert!(reason.contains("signal 9"), "{reason}"),
            o => panic!("{o:?}"),
        }
    }

    /// Feeds a log's lines to a judge (as launcher output) and to a Progress.
    fn judge_file(text: &str) -> (RunJudge, Progress) {
        let mut j = RunJudge::new();
        let mut p = Progress::default();
        for l in text.lines() {
            j.feed_launcher(l);
            p.feed(l);
        }
        (j, p)
    }

    fn port_29500(j: &RunJudge, name: &str) {
        assert_eq!(
            j.failures().first().map(|f| &f.kind),
            Some(&FailureKind::PortInUse { port: Some(29500) }),
            "{name}"
        );
        match j.outcome(Some(1)) {
            Outcome::Failed { reason } => {
                assert!(reason.contains("port 29500"), "{name}: {reason}")
            }
            o => panic!("{name}: {o:?}"),
        }
        // launch.py's own error line is enough without the runner's exit status
        assert!(matches!(j.outcome(None), Outcome::Failed { .. }), "{name}");
    }

    #[test]
    fn corpus_logs() {
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/deepspeed-logs"
        ));
        if !dir.is_dir() {
            eprintln!("note: {} absent, corpus test skipped", dir.display());
            return;
        }
        let mut seen = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let (j, p) = judge_file(&text);
            assert_eq!(j.spawned().len(), 2, "{name}");
            if name.ends_with("-ok.log") {
                assert_eq!(j.outcome(Some(0)), Outcome::Succeeded, "{name}");
                assert!(j.failures().is_empty() && p.failures.is_empty(), "{name}");
                seen += 1;
            } else if name.ends_with("EADDRINUSE.log") {
                port_29500(&j, &name);
                assert_eq!(
                    p.failures[0].kind,
                    FailureKind::PortInUse { port: Some(29500) }
                );
                seen += 1;
            }
        }
        assert_eq!(seen, 4);
    }

    fn fixture(name: &str) -> String {
        let path =
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logs")).join(name);
        String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
    }

    #[test]
    fn fixture_two_ranks_ok() {
        let text = fixture("two-ranks-ok.log");
        let (j, p) = judge_file(&text);
        assert_eq!(j.spawned(), [(41001, Some(0)), (41002, Some(1))]);
        assert_eq!(j.outcome(Some(0)), Outcome::Succeeded);
        assert!(j.failures().is_empty());
        assert_eq!(
            (p.step, p.epoch, p.steps_per_epoch),
            (Some(6), Some(2), Some(3))
        );
        assert_eq!(p.total_steps(Some(2), None), Some(6));
        assert!(p.complete && !p.manual_quit);
        assert_eq!(p.saved, ["epoch1", "epoch2"]);
        assert_eq!(p.last_checkpoint.as_deref(), Some("global_step6"));
        assert_eq!((p.global_batch, p.evals), (Some(2), 1));
        assert_eq!(p.lr, [5e-5]);
        assert_eq!(p.caching, None);
        assert_eq!(p.loss, Some(0.0874));
        let mean = (3.902 + 3.911 + 3.917 + 3.899 + 3.904) / 5.0;
        assert!((p.mean_iter_time().unwrap() - mean).abs() < 1e-12);
        assert_eq!(scan_reader(text.as_bytes()).unwrap().losses, p.losses);
        // while caching (cut the log before the first step)
        let cut = text.find("Running eval").unwrap();
        let early = scan_reader(&text.as_bytes()[..cut]).unwrap();
        assert!(early.caching.as_deref().unwrap().contains("4/4"));
    }

    #[test]
    fn fixture_eaddrinuse() {
        let (j, p) = judge_file(&fixture("eaddrinuse.log"));
        port_29500(&j, "eaddrinuse.log");
        assert_eq!(j.failures().len(), 1);
        assert_eq!(p.step, None);
    }

    #[test]
    fn fixture_rank_log_resumed_then_oom() {
        let text = fixture("rank0-resumed-oom.log");
        let p = scan_history(
            &Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logs"))
                .join("rank0-resumed-oom.log"),
        )
        .unwrap();
        assert_eq!(p.resumed_at, Some((3, 41)));
        assert_eq!(
            (p.step, p.epoch, p.steps_per_epoch),
            (Some(62), Some(4), Some(20))
        );
        assert_eq!(p.lr, [2e-5, 2e-5]);
        assert_eq!(p.global_batch, Some(1));
        assert_eq!(p.losses.len(), 22);
        assert_eq!(p.losses.iter().filter(|l| l.1.is_nan()).count(), 2);
        assert_eq!(p.smoothed_losses(0.3).len(), 20);
        assert_eq!(p.mean_iter_time(), Some(2.5));
        assert_eq!(
            p.eta(p.total_steps(Some(5), None)),
            Some(Duration::from_secs(95))
        );
        assert_eq!(p.failures.len(), 1);
        assert_eq!(p.failures[0].kind, FailureKind::CudaOutOfMemory);
        let mut j = RunJudge::new();
        for l in text.lines() {
            j.feed_rank(0, l);
        }
        assert_eq!(
            j.outcome(Some(1)),
            Outcome::Failed {
                reason: "rank 0 ran out of GPU memory".into()
            }
        );
    }

    /// A reader handing out data in uneven small pieces, to cross block boundaries anywhere.
    struct Chunky<'a> {
        data: &'a [u8],
        sizes: &'a [usize],
        i: usize,
    }

    impl Read for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.sizes[self.i % self.sizes.len()]
                .min(buf.len())
                .min(self.data.len());
            self.i += 1;
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn generated_log() -> Vec<u8> {
        let mut v: Vec<u8> = Vec::new();
        let mut add = |s: &[u8]| {
            v.extend_from_slice(s);
            v.push(b'\n');
        };
        add(b"[2026-11-29 15:55:47,363] [INFO] [launch.py:272:main] process 7 spawned with command: ['p', '--local_rank=0']");
        add(b"caching latents: (1.0, 512, 512, 1) \xff\xfe broken bytes");
        add(b"  0%|          | 0/9 [00:00<?, ?it/s]\r 50%|#####     | 4/9 [00:01<00:01, 3.1it/s]\r100%|##########| 9/9 [00:02<00:00, 3.2it/s]");
        add(b"Global batch size = 8");
        let mut long = vec![b'x'; 3 << 20];
        long.extend_from_slice(b"steps: 999 loss: 0.5 iter time (s): 1.0 samples/sec: 1.0");
        add(&long);
        // a 3 MB line made of short redraws is fine
        let mut bars = Vec::new();
        for i in 0..60_000 {
            bars.extend_from_slice(
                format!("\r{:3}%|##   | {i}/60000 [00:01<00:01, 3.1it/s]", i / 600).as_bytes(),
            );
        }
        add(&bars);
        for s in 1..=3000u64 {
            add(format!("[2026-11-29 15:55:47,363] [INFO] [logging.py:128:log_dist] [Rank 0] step={s}, skipped=0, lr=[{}e-05], mom=[(0.9, 0.99)]", s % 9 + 1).as_bytes());
            let loss = if s % 101 == 0 {
                "nan".to_string()
            } else {
                format!("0.{:04}", s * 7 % 10_000)
            };
            add(format!(
                "steps: {s} loss: {loss} iter time (s): {}.{:03} samples/sec: 1.000",
                1 + s % 3,
                s % 1000
            )
            .as_bytes());
            if s % 1000 == 0 {
                add(format!("Saving model to directory epoch{}", s / 1000).as_bytes());
                add(format!("Started new epoch: {}", s / 1000 + 1).as_bytes());
                add(b"Running eval");
                add(b"caption \xc3\x28 with loss: 0.1 and steps: 2 loss: x");
            }
        }
        add(b"[2026-11-29 15:55:47,363] [INFO] [logging.py:128:log_dist] [Rank 0] [Torch] Checkpoint global_step3000 is about to be saved!");
        add(b"ModuleNotFoundError: No module named 'peft\xff'");
        add(b"TRAINING COMPLETE!\r\n");
        v.extend_from_slice(b"Manually quitting"); // no final newline
        v
    }

    #[test]
    fn scan_equals_feeding_lines() {
        let log = generated_log();
        let mut fed = Progress::default();
        for line in log.split(|&c| c == b'\n') {
            fed.feed(&String::from_utf8_lossy(line));
        }
        let want = format!("{fed:?}");
        assert_eq!(fed.step, Some(3000));
        assert_eq!(fed.steps_per_epoch, Some(1000));
        assert!(fed.complete && fed.manual_quit);
        assert_eq!(fed.failures.len(), 1);
        for sizes in [
            &[usize::MAX][..],
            &[1, 7, 4093],
            &[65_536, 3],
            &[MAX_LINE - 1, MAX_LINE + 1],
        ] {
            let got = scan_reader(Chunky {
                data: &log,
                sizes,
                i: 0,
            })
            .unwrap();
            assert_eq!(format!("{got:?}"), want, "chunk sizes {sizes:?}");
        }
        let mut f = tempfile::NamedTempFile::new().unwrap();
        io::Write::write_all(&mut f, &log).unwrap();
        assert_eq!(format!("{:?}", scan_history(f.path()).unwrap()), want);
    }

    /// `DPGUI_BENCH_LOG=/path/to/big.log cargo test --release --lib bench_scan -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_scan_vs_grep() {
        let Ok(path) = std::env::var("DPGUI_BENCH_LOG") else {
            eprintln!("set DPGUI_BENCH_LOG");
            return;
        };
        let t = std::time::Instant::now();
        let out = std::process::Command::new("grep")
            .args(["-c", "^steps:", &path])
            .output()
            .unwrap();
        let grep = t.elapsed();
        let t = std::time::Instant::now();
        let p = scan_history(Path::new(&path)).unwrap();
        let scan = t.elapsed();
        eprintln!(
            "grep {grep:?} ({}) scan {scan:?} ratio {:.2} step {:?} points {}",
            String::from_utf8_lossy(&out.stdout).trim(),
            scan.as_secs_f64() / grep.as_secs_f64(),
            p.step,
            p.losses.len()
        );
    }
}
