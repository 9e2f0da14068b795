//! GPUs: NVML behind a trait, a history of recent samples for sparklines, and a sampler thread.
//!
//! - [`GpuBackend`] is what the rest of dpgui talks to. [`NvmlBackend`] is the real one (NVIDIA
//!   driver via `nvml-wrapper`, which dlopens `libnvidia-ml.so.1`); [`FakeBackend`] returns a fixed
//!   snapshot for the UI and tests ([`fake_gpus`] builds deterministic H100-like ones).
//! - Every metric is sampled on its own and is an `Option`: `NotSupported` is common (consumer
//!   cards, MIG, containers) and one failing field never hides the others, nor the GPU.
//! - Without a driver NVML cannot even be loaded. That is not an error for dpgui: the snapshot has
//!   no GPUs and `error` says why, and the failure is remembered so sampling stays cheap.
//! - NVML calls are blocking FFI, so the TUI never calls them: [`spawn_sampler`] runs the backend
//!   on its own OS thread and publishes a [`GpuFeed`] on a `tokio::sync::watch` channel.
//!
//! The serialized field names of [`GpuSnapshot`], [`GpuInfo`] and [`GpuProcess`] are the JSON
//! contract of `dpgui gpus --json`: do not rename them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use serde::Serialize;
use tokio::sync::watch;

/// How many samples [`GpuHistory::default`] keeps per series (5 minutes at one sample a second).
pub const DEFAULT_HISTORY_LEN: usize = 300;

/// Everything dpgui knows about the machine's NVIDIA GPUs at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuSnapshot {
    /// NVIDIA driver version, e.g. "570.124.06". None when NVML is unavailable; then `error`
    /// says why.
    pub driver_version: Option<String>,
    /// Highest CUDA version the driver supports, e.g. "12.8".
    pub cuda_driver_version: Option<String>,
    /// In NVML index order.
    pub gpus: Vec<GpuInfo>,
    /// Why the list is empty or incomplete (NVML not loadable, driver not loaded, device count
    /// failed). None when all went well.
    pub error: Option<String>,
}

/// One GPU. Every metric is None when NVML does not support it on this device or failed to read
/// it; the UI shows "n/a".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    /// NVML index (the order of `nvidia-smi`, not necessarily `CUDA_VISIBLE_DEVICES` order).
    pub index: u32,
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3"; "unknown (<error>)" when NVML could not
    /// give a handle for this index or its name.
    pub name: String,
    pub uuid: Option<String>,
    /// GPU (kernel) utilization over the driver's last sample period, 0..=100.
    pub utilization_pct: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_c: Option<u32>,
    pub power_draw_w: Option<f64>,
    /// The power limit the driver enforces.
    pub power_limit_w: Option<f64>,
    /// Processes using this GPU, sorted by pid.
    pub processes: Vec<GpuProcess>,
}

/// A process with a context on a GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuProcess {
    /// As NVML reports it: the host PID namespace's pid.
    pub pid: u32,
    /// None when the driver does not report it (e.g. under WDDM, or some container setups).
    pub used_memory_bytes: Option<u64>,
    pub kind: GpuProcessKind,
    /// Filled by the caller from the process table (None = pid not visible here, e.g. another
    /// PID namespace). The GPU backend always leaves it None.
    pub user: Option<String>,
    /// Filled by the caller from the process table, like `user`.
    pub cmdline: Option<Vec<String>>,
}

/// Whether NVML listed the process as a compute (CUDA) or a graphics context. A process with
/// both is reported as compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuProcessKind {
    Compute,
    Graphics,
}

impl GpuSnapshot {
    /// GPU names, or None when NVML is unavailable (no names is not "no consumer GPUs").
    pub fn names(&self) -> Option<Vec<String>> {
        self.driver_version
            .as_ref()
            .map(|_| self.gpus.iter().map(|g| g.name.clone()).collect())
    }

    /// The GPU with this NVML index, if present.
    pub fn gpu(&self, index: u32) -> Option<&GpuInfo> {
        self.gpus.iter().find(|g| g.index == index)
    }
}

impl GpuInfo {
    /// A GPU entry with only an index and a name, every metric None, no processes.
    pub fn unknown(index: u32, name: impl Into<String>) -> Self {
        GpuInfo {
            index,
            name: name.into(),
            uuid: None,
            utilization_pct: None,
            memory_used_bytes: None,
            memory_total_bytes: None,
            temperature_c: None,
            power_draw_w: None,
            power_limit_w: None,
            processes: Vec::new(),
        }
    }

    /// Memory used as a percentage of total, rounded, 0..=100. None when either is unknown or
    /// the total is 0.
    pub fn memory_used_pct(&self) -> Option<u64> {
        let used = self.memory_used_bytes?;
        let total = self.memory_total_bytes?;
        if total == 0 {
            return None;
        }
        let pct = (u128::from(used) * 100 + u128::from(total) / 2) / u128::from(total);
        Some(pct.min(100) as u64)
    }
}

/// The snapshot to show when NVML cannot be used at all: no driver information, no GPUs, and
/// `reason` as the error.
pub fn no_nvml_snapshot(reason: &str) -> GpuSnapshot {
    GpuSnapshot {
        driver_version: None,
        cuda_driver_version: None,
        gpus: Vec::new(),
        error: Some(reason.to_string()),
    }
}

/// A source of GPU snapshots. `sample` may block (NVML is synchronous FFI): call it from the
/// sampler thread ([`spawn_sampler`]) or a headless command, never from the UI loop.
pub trait GpuBackend: Send + 'static {
    fn sample(&mut self) -> GpuSnapshot;
}

// ---------------------------------------------------------------------------------------------
// NVML
// ---------------------------------------------------------------------------------------------

/// The real backend. NVML is initialised once in [`NvmlBackend::new`]; if that fails, the failure
/// is remembered and every `sample` returns the same error snapshot without trying to load the
/// library again (restart dpgui after installing or loading the driver).
pub struct NvmlBackend {
    state: Result<Nvml, GpuSnapshot>,
}

impl std::fmt::Debug for NvmlBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            Ok(_) => f.write_str("NvmlBackend(initialised)"),
            Err(snap) => write!(f, "NvmlBackend(unavailable: {:?})", snap.error),
        }
    }
}

impl NvmlBackend {
    /// Loads and initialises NVML. Never fails: see [`NvmlBackend::init_error`].
    pub fn new() -> Self {
        match Nvml::init() {
            Ok(nvml) => NvmlBackend { state: Ok(nvml) },
            Err(e) => {
                let reason = describe_init_error(&e);
                tracing::info!("{reason}");
                NvmlBackend {
                    state: Err(no_nvml_snapshot(&reason)),
                }
            }
        }
    }

    /// Why NVML could not be initialised, None when it was.
    pub fn init_error(&self) -> Option<&str> {
        match &self.state {
            Ok(_) => None,
            Err(snap) => snap.error.as_deref(),
        }
    }
}

impl Default for NvmlBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl GpuBackend for NvmlBackend {
    fn sample(&mut self) -> GpuSnapshot {
        match &self.state {
            Ok(nvml) => sample_nvml(nvml),
            Err(snap) => snap.clone(),
        }
    }
}

/// One snapshot from a fresh [`NvmlBackend`], for the headless `dpgui gpus` command.
pub fn sample_once() -> GpuSnapshot {
    NvmlBackend::new().sample()
}

/// Turns an `Nvml::init` failure into the text users see, with a hint where one helps.
fn describe_init_error(e: &NvmlError) -> String {
    match e {
        // Display of the inner libloading error is the dlerror text, e.g.
        // "libnvidia-ml.so.1: cannot open shared object file: No such file or directory".
        NvmlError::LibloadingError(inner) => {
            format!("NVML not available: {inner} (is the NVIDIA driver installed?)")
        }
        NvmlError::LibraryNotFound | NvmlError::DriverNotLoaded => {
            format!("NVML not available: {e} (is the NVIDIA driver installed and loaded?)")
        }
        NvmlError::LibRmVersionMismatch => format!(
            "NVML not available: {e} (was the driver upgraded without a reboot or reloading the \
             nvidia kernel modules?)"
        ),
        NvmlError::NoPermission => {
            format!("NVML not available: {e} (no access to the /dev/nvidia* device files?)")
        }
        _ => format!("NVML not available: {e}"),
    }
}

/// Logs a per-field failure; `NotSupported` is normal and not worth a line.
fn field<T>(what: &str, index: u32, r: Result<T, NvmlError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(NvmlError::NotSupported) => None,
        Err(e) => {
            tracing::trace!(gpu = index, "NVML {what}: {e}");
            None
        }
    }
}

fn sample_nvml(nvml: &Nvml) -> GpuSnapshot {
    let driver_version = nvml.sys_driver_version().ok();
    let cuda_driver_version = nvml.sys_cuda_driver_version().ok().map(|v| {
        format!(
            "{}.{}",
            nvml_wrapper::cuda_driver_version_major(v),
            nvml_wrapper::cuda_driver_version_minor(v)
        )
    });
    let (gpus, error) = match nvml.device_count() {
        Ok(n) => ((0..n).map(|i| sample_device(nvml, i)).collect(), None),
        Err(e) => (Vec::new(), Some(format!("NVML could not count GPUs: {e}"))),
    };
    GpuSnapshot {
        driver_version,
        cuda_driver_version,
        gpus,
        error,
    }
}

fn sample_device(nvml: &Nvml, index: u32) -> GpuInfo {
    let device = match nvml.device_by_index(index) {
        Ok(d) => d,
        Err(e) => return GpuInfo::unknown(index, format!("unknown ({e})")),
    };
    let name = device.name().unwrap_or_else(|e| format!("unknown ({e})"));
    let memory = field("memory_info", index, device.memory_info());
    let power_limit_mw = field("enforced_power_limit", index, device.enforced_power_limit())
        .or_else(|| {
            field(
                "power_management_limit",
                index,
                device.power_management_limit(),
            )
        });
    let compute = field(
        "running_compute_processes",
        index,
        device.running_compute_processes(),
    )
    .unwrap_or_default();
    let graphics = field(
        "running_graphics_processes",
        index,
        device.running_graphics_processes(),
    )
    .unwrap_or_default();
    GpuInfo {
        index,
        name,
        uuid: field("uuid", index, device.uuid()),
        utilization_pct: field("utilization_rates", index, device.utilization_rates())
            .map(|u| u.gpu),
        memory_used_bytes: memory.as_ref().map(|m| m.used),
        memory_total_bytes: memory.as_ref().map(|m| m.total),
        temperature_c: field(
            "temperature",
            index,
            device.temperature(TemperatureSensor::Gpu),
        ),
        power_draw_w: field("power_usage", index, device.power_usage()).map(milliwatts_to_watts),
        power_limit_w: power_limit_mw.map(milliwatts_to_watts),
        processes: merge_processes(&compute, &graphics),
    }
}

fn milliwatts_to_watts(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

fn used_memory(m: &UsedGpuMemory) -> Option<u64> {
    match m {
        UsedGpuMemory::Used(n) => Some(*n),
        UsedGpuMemory::Unavailable => None,
    }
}

/// Merges NVML's compute and graphics process lists of one device into one list sorted by pid.
///
/// - A pid in both lists appears once, as [`GpuProcessKind::Compute`], with the compute list's
///   memory (the graphics list's when the compute one is unavailable; the driver reports the
///   same per-process total in both).
/// - A pid listed more than once in the same list (one entry per MIG instance) appears once with
///   the memory summed (None only if no entry had a value).
/// - `user` and `cmdline` are left None for the caller to fill.
pub fn merge_processes(compute: &[ProcessInfo], graphics: &[ProcessInfo]) -> Vec<GpuProcess> {
    fn collect(list: &[ProcessInfo]) -> BTreeMap<u32, Option<u64>> {
        let mut out: BTreeMap<u32, Option<u64>> = BTreeMap::new();
        for p in list {
            let mem = used_memory(&p.used_gpu_memory);
            out.entry(p.pid)
                .and_modify(|acc| {
                    *acc = match (*acc, mem) {
                        (Some(a), Some(b)) => Some(a.saturating_add(b)),
                        (a, b) => a.or(b),
                    }
                })
                .or_insert(mem);
        }
        out
    }
    let compute = collect(compute);
    let mut graphics = collect(graphics);
    let mut merged: BTreeMap<u32, GpuProcess> = BTreeMap::new();
    for (pid, mem) in compute {
        let fallback = graphics.remove(&pid).flatten();
        merged.insert(pid, process(pid, mem.or(fallback), GpuProcessKind::Compute));
    }
    for (pid, mem) in graphics {
        merged.insert(pid, process(pid, mem, GpuProcessKind::Graphics));
    }
    merged.into_values().collect()
}

fn process(pid: u32, used_memory_bytes: Option<u64>, kind: GpuProcessKind) -> GpuProcess {
    GpuProcess {
        pid,
        used_memory_bytes,
        kind,
        user: None,
        cmdline: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------------------------

/// A backend that returns a clone of `snapshot` on every sample. Change `snapshot` between
/// samples to script changes (or wrap your own [`GpuBackend`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FakeBackend {
    pub snapshot: GpuSnapshot,
}

impl FakeBackend {
    pub fn new(snapshot: GpuSnapshot) -> Self {
        FakeBackend { snapshot }
    }
}

impl GpuBackend for FakeBackend {
    fn sample(&mut self) -> GpuSnapshot {
        self.snapshot.clone()
    }
}

/// `n` deterministic H100-like GPUs for snapshot tests (same `n`, same result).
///
/// - GPU 1 has most metrics None (uuid, utilization, temperature, power) to exercise "n/a",
///   and no processes.
/// - GPU 0 has a graphics process (Xorg, root) and a compute process (a training run, alice).
/// - Every GPU from 2 on has one compute process of a multi-GPU run (pid 20000 + index); the one
///   on GPU 3 has `user`, `cmdline` and memory None (a pid not visible from here).
pub fn fake_gpus(n: usize) -> GpuSnapshot {
    const MIB: u64 = 1024 * 1024;
    const TOTAL: u64 = 81_559 * MIB; // what an H100 80GB HBM3 reports
    let train_cmd = |rank: u32| {
        Some(vec![
            "python".to_string(),
            "-u".to_string(),
            "train.py".to_string(),
            format!("--local_rank={rank}"),
            "--deepspeed".to_string(),
            "--config".to_string(),
            "examples/flux.toml".to_string(),
        ])
    };
    let gpus = (0..n as u32)
        .map(|i| {
            let mut gpu = GpuInfo {
                index: i,
                name: "NVIDIA H100 80GB HBM3".to_string(),
                uuid: Some(format!("GPU-{i:08x}-d9c1-4c7e-8e0b-5a6f{:08x}", 0x1000 + i)),
                utilization_pct: Some((i * 37 + 63) % 101),
                memory_used_bytes: Some((12_000 + u64::from(i) * 8_123) % 81_000 * MIB),
                memory_total_bytes: Some(TOTAL),
                temperature_c: Some(34 + i * 3),
                power_draw_w: Some(118.5 + f64::from(i) * 61.25),
                power_limit_w: Some(700.0),
                processes: Vec::new(),
            };
            match i {
                0 => {
                    gpu.processes = vec![
                        GpuProcess {
                            pid: 1873,
                            used_memory_bytes: Some(4 * MIB),
                            kind: GpuProcessKind::Graphics,
                            user: Some("root".to_string()),
                            cmdline: Some(vec!["/usr/lib/xorg/Xorg".to_string(), ":0".to_string()]),
                        },
                        GpuProcess {
                            pid: 20000,
                            used_memory_bytes: Some(11_000 * MIB),
                            kind: GpuProcessKind::Compute,
                            user: Some("alice".to_string()),
                            cmdline: train_cmd(0),
                        },
                    ];
                }
                1 => {
                    gpu.uuid = None;
                    gpu.utilization_pct = None;
                    gpu.temperature_c = None;
                    gpu.power_draw_w = None;
                    gpu.power_limit_w = None;
                }
                3 => {
                    gpu.processes = vec![GpuProcess {
                        pid: 20003,
                        used_memory_bytes: None,
                        kind: GpuProcessKind::Compute,
                        user: None,
                        cmdline: None,
                    }];
                }
                _ => {
                    gpu.processes = vec![GpuProcess {
                        pid: 20000 + i,
                        used_memory_bytes: Some(11_000 * MIB + u64::from(i) * 512 * MIB),
                        kind: GpuProcessKind::Compute,
                        user: Some("alice".to_string()),
                        cmdline: train_cmd(i),
                    }];
                }
            }
            gpu
        })
        .collect();
    GpuSnapshot {
        driver_version: Some("570.124.06".to_string()),
        cuda_driver_version: Some("12.8".to_string()),
        gpus,
        error: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer cards
// ---------------------------------------------------------------------------------------------

/// Whether `name` is a GeForce RTX 40xx / 50xx card (e.g. "NVIDIA GeForce RTX 4090",
/// "RTX 4060 Ti", "NVIDIA GeForce RTX 5090 D"): consumer cards with less memory, no NVLink and,
/// for multi-GPU runs, often no P2P. Workstation and data-centre cards are not ("NVIDIA RTX
/// A6000", "NVIDIA RTX 6000 Ada Generation", "NVIDIA RTX 4000 Ada Generation", "NVIDIA RTX PRO
/// 6000 Blackwell", "NVIDIA H100 80GB HBM3").
///
/// Rule: a word "RTX" followed by a model number of the form 40x0 or 50x0 with x in 5..=9
/// (4050..4090, 5050..5090); "RTX4090" written together counts too. Pro cards use other numbers
/// (4000, 4500, 5000, 5880, 6000) or a letter (A6000) or "PRO".
pub fn is_consumer_gpu(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.iter().enumerate().any(|(i, w)| {
        let model = if *w == "rtx" {
            words.get(i + 1).copied()
        } else {
            w.strip_prefix("rtx")
        };
        model.is_some_and(is_consumer_model_number)
    })
}

fn is_consumer_model_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4
        && b.iter().all(u8::is_ascii_digit)
        && (b[0] == b'4' || b[0] == b'5')
        && b[1] == b'0'
        && (b'5'..=b'9').contains(&b[2])
        && b[3] == b'0'
}

// ---------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------

/// Recent utilization and memory-used percentages per GPU index, for sparklines.
///
/// Each GPU has two ring buffers (utilization %, memory used %) of at most `capacity` values,
/// oldest first. A sample whose value is None (metric unsupported or unreadable) is skipped for
/// that series instead of being recorded as 0, so the series may be shorter than the number of
/// snapshots pushed, and the two series of a GPU may differ in length. History of a GPU that
/// disappears from later snapshots is kept (it simply stops growing).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuHistory {
    capacity: usize,
    series: BTreeMap<u32, Series>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Series {
    utilization: VecDeque<u64>,
    memory: VecDeque<u64>,
}

impl Default for GpuHistory {
    /// [`DEFAULT_HISTORY_LEN`] samples per series.
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_LEN)
    }
}

impl GpuHistory {
    /// `capacity` values per series; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        GpuHistory {
            capacity,
            series: BTreeMap::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records one snapshot: for each GPU, its utilization % and memory used % (see
    /// [`GpuInfo::memory_used_pct`]), each skipped when None.
    pub fn push(&mut self, snap: &GpuSnapshot) {
        if self.capacity == 0 {
            return;
        }
        for gpu in &snap.gpus {
            let series = self.series.entry(gpu.index).or_default();
            if let Some(u) = gpu.utilization_pct {
                push_ring(
                    &mut series.utilization,
                    u64::from(u.min(100)),
                    self.capacity,
                );
            }
            if let Some(m) = gpu.memory_used_pct() {
                push_ring(&mut series.memory, m, self.capacity);
            }
        }
    }

    /// Utilization % of GPU `index`, oldest first; empty when unknown.
    pub fn utilization(&self, index: u32) -> Vec<u64> {
        self.series
            .get(&index)
            .map(|s| s.utilization.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Memory used % of GPU `index`, oldest first; empty when unknown.
    pub fn memory(&self, index: u32) -> Vec<u64> {
        self.series
            .get(&index)
            .map(|s| s.memory.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn push_ring(ring: &mut VecDeque<u64>, value: u64, capacity: usize) {
    while ring.len() >= capacity {
        ring.pop_front();
    }
    ring.push_back(value);
}

// ---------------------------------------------------------------------------------------------
// Sampler
// ---------------------------------------------------------------------------------------------

/// What the sampler publishes: the latest snapshot (None before the first sample), the history
/// including it, and how many samples have been taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuFeed {
    pub snapshot: Option<GpuSnapshot>,
    pub history: GpuHistory,
    pub samples: u64,
}

#[derive(Debug)]
enum Control {
    Refresh,
    Stop,
}

/// Controls a sampler thread started by [`spawn_sampler`]. Dropping it does not stop the thread
/// (that happens when every receiver is dropped, or on [`SamplerHandle::stop`]).
#[derive(Debug)]
pub struct SamplerHandle {
    control: mpsc::Sender<Control>,
    /// Disconnects (never receives) when the thread ends, even by a panic.
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl SamplerHandle {
    /// Asks for a sample now (several requests before the thread wakes make one sample). Returns
    /// false when the thread has ended.
    pub fn refresh_now(&self) -> bool {
        self.control.send(Control::Refresh).is_ok()
    }

    /// Asks the thread to end after its current sample, if any.
    pub fn stop(&self) {
        let _ = self.control.send(Control::Stop);
    }

    /// Whether the thread has ended (also true if it never started).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits up to `timeout` for the thread to end, then joins it. None: still running. Some(Err)
    /// carries the panic payload of a backend that panicked. Once joined, later calls return
    /// Some(Ok(())).
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<std::thread::Result<()>> {
        let Some(thread) = self.thread.take() else {
            return Some(Ok(()));
        };
        match self.done.recv_timeout(timeout) {
            // Nothing is ever sent: disconnection means the thread dropped its end on the way out.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => Some(thread.join()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.thread = Some(thread);
                None
            }
        }
    }
}

/// Spawns a dedicated OS thread named "gpu-sampler" that owns `backend`, samples at once and then
/// every `interval` (counted from the start of the previous sample; a forced refresh restarts
/// the count), and publishes each sample into the returned `watch` channel with the history
/// (`history_len` values per series) and the sample count.
///
/// Waiting between samples is a blocking `recv_timeout` on the handle's control channel, so
/// [`SamplerHandle::refresh_now`] and [`SamplerHandle::stop`] are served at once. The thread
/// ends when every receiver has been dropped: checked before and after each sample and, when
/// called inside a tokio runtime, also noticed at once through a small task that wakes the thread.
/// Outside a runtime it is noticed at the next tick at the latest.
///
/// If the backend panics the thread ends, the sender is dropped and `Receiver::changed` returns
/// an error; [`SamplerHandle::join_timeout`] returns the panic. If the thread cannot be spawned,
/// the feed holds an error snapshot and the handle reports finished.
pub fn spawn_sampler(
    backend: Box<dyn GpuBackend>,
    interval: Duration,
    history_len: usize,
) -> (watch::Receiver<GpuFeed>, SamplerHandle) {
    let initial = GpuFeed {
        snapshot: None,
        history: GpuHistory::new(history_len),
        samples: 0,
    };
    let (tx, rx) = watch::channel(initial);
    let tx = std::sync::Arc::new(tx);
    let (control_tx, control_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (exited_tx, exited_rx) = tokio::sync::oneshot::channel::<()>();

    let thread_tx = tx.clone();
    let keepalive = control_tx.clone();
    let spawned = std::thread::Builder::new()
        .name("gpu-sampler".to_string())
        .spawn(move || {
            // Moved into locals so the drop order is fixed, on return and on unwinding alike
            // (reverse of declaration): the control channel first (refresh_now then says false),
            // then the signals to the handle and the waker task, then the feed's sender (so a
            // receiver that sees the feed closed also sees the control channel closed).
            let tx = thread_tx;
            let _done = done_tx;
            let _exited = exited_tx;
            // Keeps the control channel connected when the handle is dropped, so recv_timeout
            // keeps timing out instead of returning Disconnected in a busy loop.
            let _keepalive = keepalive;
            let control = control_rx;
            sampler_loop(backend, interval, &tx, &control);
        });

    let thread = match spawned {
        Ok(thread) => {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let waker_tx = tx.clone();
                let wake = control_tx.clone();
                rt.spawn(async move {
                    tokio::select! {
                        _ = waker_tx.closed() => {
                            let _ = wake.send(Control::Stop);
                        }
                        _ = exited_rx => {}
                    }
                });
            }
            Some(thread)
        }
        Err(e) => {
            tracing::error!("could not start the GPU sampler thread: {e}");
            let reason = format!("could not start the GPU sampler thread: {e}");
            tx.send_modify(|feed| feed.snapshot = Some(no_nvml_snapshot(&reason)));
            None
        }
    };
    drop(tx);
    (
        rx,
        SamplerHandle {
            control: control_tx,
            done: done_rx,
            thread,
        },
    )
}

fn sampler_loop(
    mut backend: Box<dyn GpuBackend>,
    interval: Duration,
    tx: &watch::Sender<GpuFeed>,
    control: &mpsc::Receiver<Control>,
) {
    loop {
        if tx.is_closed() {
            return;
        }
        let started = Instant::now();
        let snap = backend.sample();
        if tx.is_closed() {
            return;
        }
        tx.send_modify(|feed| {
            feed.history.push(&snap);
            feed.snapshot = Some(snap);
            feed.samples += 1;
        });

        let deadline = started + interval;
        let wait = deadline.saturating_duration_since(Instant::now());
        match control.recv_timeout(wait) {
            Ok(Control::Refresh) => {
                // Coalesce a burst of requests into one sample; a Stop among them still wins.
                loop {
                    match control.try_recv() {
                        Ok(Control::Refresh) => continue,
                        Ok(Control::Stop) => return,
                        Err(_) => break,
                    }
                }
            }
            Ok(Control::Stop) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Cannot happen while the thread holds a sender; treat it as a stop rather than spin.
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_info(pid: u32, mem: UsedGpuMemory) -> ProcessInfo {
        ProcessInfo {
            pid,
            used_gpu_memory: mem,
            gpu_instance_id: None,
            compute_instance_id: None,
        }
    }

    fn gpu(index: u32, util: Option<u32>, used: Option<u64>, total: Option<u64>) -> GpuInfo {
        GpuInfo {
            utilization_pct: util,
            memory_used_bytes: used,
            memory_total_bytes: total,
            ..GpuInfo::unknown(index, "test")
        }
    }

    fn snap(gpus: Vec<GpuInfo>) -> GpuSnapshot {
        GpuSnapshot {
            gpus,
            ..GpuSnapshot::default()
        }
    }

    #[test]
    fn history_keeps_the_last_capacity_values_oldest_first() {
        let mut h = GpuHistory::new(3);
        for u in [10, 20, 30, 40, 50] {
            h.push(&snap(vec![gpu(0, Some(u), Some(u64::from(u)), Some(100))]));
        }
        assert_eq!(h.utilization(0), vec![30, 40, 50]);
        assert_eq!(h.memory(0), vec![30, 40, 50]);
        assert_eq!(h.capacity(), 3);
    }

    #[test]
    fn history_is_per_gpu_index_and_unknown_index_is_empty() {
        let mut h = GpuHistory::new(10);
        h.push(&snap(vec![
            gpu(0, Some(5), None, None),
            gpu(7, Some(99), Some(1), Some(4)),
        ]));
        assert_eq!(h.utilization(0), vec![5]);
        assert_eq!(h.utilization(7), vec![99]);
        assert_eq!(h.memory(7), vec![25]);
        assert!(h.utilization(1).is_empty());
        assert!(h.memory(1).is_empty());
    }

    #[test]
    fn history_skips_missing_values_instead_of_recording_zero() {
        let mut h = GpuHistory::new(10);
        h.push(&snap(vec![gpu(0, Some(10), Some(50), Some(100))]));
        h.push(&snap(vec![gpu(0, None, Some(60), Some(100))]));
        h.push(&snap(vec![gpu(0, Some(30), None, Some(100))]));
        h.push(&snap(vec![gpu(0, Some(40), Some(70), Some(0))])); // total 0: no percentage
        h.push(&snap(vec![gpu(0, Some(50), Some(80), None)]));
        assert_eq!(h.utilization(0), vec![10, 30, 40, 50]);
        assert_eq!(h.memory(0), vec![50, 60]);
    }

    #[test]
    fn history_clamps_and_rounds_percentages() {
        let mut h = GpuHistory::new(10);
        h.push(&snap(vec![gpu(0, Some(250), Some(2), Some(3))])); // 66.7 -> 67
        h.push(&snap(vec![gpu(0, Some(0), Some(u64::MAX), Some(10))])); // used > total
        assert_eq!(h.utilization(0), vec![100, 0]);
        assert_eq!(h.memory(0), vec![67, 100]);
    }

    #[test]
    fn history_with_zero_capacity_keeps_nothing() {
        let mut h = GpuHistory::new(0);
        h.push(&fake_gpus(2));
        assert!(h.utilization(0).is_empty());
        assert!(h.memory(0).is_empty());
        assert_eq!(GpuHistory::default().capacity(), DEFAULT_HISTORY_LEN);
    }

    #[test]
    fn fake_backend_returns_its_snapshot_every_time() {
        let mut b = FakeBackend::new(fake_gpus(2));
        assert_eq!(b.sample(), fake_gpus(2));
        b.snapshot.gpus.pop();
        assert_eq!(b.sample().gpus.len(), 1);
        assert_eq!(FakeBackend::default().sample(), GpuSnapshot::default());
    }

    #[test]
    fn fake_gpus_is_deterministic_and_shaped_for_snapshot_tests() {
        assert_eq!(fake_gpus(8), fake_gpus(8));
        let zero = fake_gpus(0);
        assert!(zero.gpus.is_empty());
        assert!(zero.error.is_none());
        let one = fake_gpus(1);
        assert_eq!(one.gpus.len(), 1);
        assert!(one.gpus[0].utilization_pct.is_some());
        let eight = fake_gpus(8);
        let indexes: Vec<u32> = eight.gpus.iter().map(|g| g.index).collect();
        assert_eq!(indexes, (0..8).collect::<Vec<_>>());
        let g1 = eight.gpu(1).unwrap();
        assert!(g1.utilization_pct.is_none() && g1.temperature_c.is_none());
        assert!(g1.power_draw_w.is_none() && g1.uuid.is_none());
        for g in &eight.gpus {
            assert!(g.memory_used_bytes.unwrap() <= g.memory_total_bytes.unwrap());
            assert!(g.utilization_pct.is_none_or(|u| u <= 100));
        }
        let pids: Vec<u32> = eight
            .gpus
            .iter()
            .flat_map(|g| g.processes.iter().map(|p| p.pid))
            .collect();
        assert!(pids.contains(&1873) && pids.contains(&20000) && pids.contains(&20007));
        let hidden = &eight.gpu(3).unwrap().processes[0];
        assert!(hidden.user.is_none() && hidden.cmdline.is_none());
    }

    #[test]
    fn merge_unions_compute_and_graphics_and_compute_wins() {
        let compute = [
            proc_info(300, UsedGpuMemory::Used(3000)),
            proc_info(100, UsedGpuMemory::Used(1000)),
            proc_info(400, UsedGpuMemory::Unavailable),
        ];
        let graphics = [
            proc_info(100, UsedGpuMemory::Used(1000)),
            proc_info(200, UsedGpuMemory::Unavailable),
            proc_info(400, UsedGpuMemory::Used(4000)),
        ];
        let merged = merge_processes(&compute, &graphics);
        let got: Vec<(u32, Option<u64>, GpuProcessKind)> = merged
            .iter()
            .map(|p| (p.pid, p.used_memory_bytes, p.kind))
            .collect();
        use GpuProcessKind::*;
        assert_eq!(
            got,
            vec![
                (100, Some(1000), Compute),
                (200, None, Graphics),
                (300, Some(3000), Compute),
                (400, Some(4000), Compute), // compute's memory unavailable: graphics' value
            ]
        );
        assert!(
            merged
                .iter()
                .all(|p| p.user.is_none() && p.cmdline.is_none())
        );
    }

    #[test]
    fn merge_sums_a_pid_listed_twice_in_one_list() {
        let compute = [
            proc_info(7, UsedGpuMemory::Used(10)),
            proc_info(7, UsedGpuMemory::Unavailable),
            proc_info(7, UsedGpuMemory::Used(5)),
        ];
        let merged = merge_processes(&compute, &[]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].used_memory_bytes, Some(15));
        assert!(merge_processes(&[], &[]).is_empty());
    }

    #[test]
    fn consumer_gpu_names() {
        let table = [
            ("NVIDIA GeForce RTX 4090", true),
            ("NVIDIA GeForce RTX 5090", true),
            ("RTX 4060 Ti", true),
            ("NVIDIA GeForce RTX 4070 SUPER", true),
            ("NVIDIA GeForce RTX 4090 D", true),
            ("NVIDIA GeForce RTX 4080 Laptop GPU", true),
            ("NVIDIA GeForce RTX 5060", true),
            ("nvidia geforce rtx4090", true),
            ("NVIDIA RTX A6000", false),
            ("NVIDIA RTX 6000 Ada Generation", false),
            ("NVIDIA RTX 4000 Ada Generation", false),
            ("NVIDIA RTX 5000 Ada Generation", false),
            ("NVIDIA RTX 4500 Ada Generation", false),
            ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", false),
            ("NVIDIA H100 80GB HBM3", false),
            ("NVIDIA H200", false),
            ("NVIDIA A100-SXM4-80GB", false),
            ("NVIDIA GeForce RTX 3090", false),
            ("NVIDIA TITAN RTX", false),
            ("", false),
        ];
        for (name, want) in table {
            assert_eq!(is_consumer_gpu(name), want, "{name:?}");
        }
    }

    #[test]
    fn nvml_backend_without_a_driver_reports_why_and_does_not_panic() {
        let mut backend = NvmlBackend::new();
        let first = backend.sample();
        match &first.error {
            Some(err) => {
                // This machine (and CI) has no NVIDIA driver.
                eprintln!("NvmlBackend error: {err}");
                assert!(first.gpus.is_empty(), "{first:?}");
                assert!(first.driver_version.is_none());
                assert!(err.starts_with("NVML not available: "), "{err}");
                assert!(
                    err.contains("libnvidia-ml") || err.contains("driver"),
                    "error should name the library or the driver: {err}"
                );
                assert_eq!(backend.init_error(), Some(err.as_str()));
                // The failure is remembered: the same snapshot again, no new dlopen.
                assert_eq!(backend.sample(), first);
                assert_eq!(sample_once(), first);
            }
            None => {
                // A machine with a working driver.
                assert!(first.driver_version.is_some(), "{first:?}");
                assert!(backend.init_error().is_none());
            }
        }
    }

    #[test]
    fn no_nvml_snapshot_has_only_the_reason() {
        let s = no_nvml_snapshot("nope");
        assert_eq!(s.error.as_deref(), Some("nope"));
        assert!(s.gpus.is_empty() && s.driver_version.is_none() && s.cuda_driver_version.is_none());
    }

    #[test]
    fn serialized_field_names_are_the_json_contract() {
        let mut s = fake_gpus(1);
        s.gpus[0].processes.truncate(1);
        let v = serde_json::to_value(&s).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&v),
            ["cuda_driver_version", "driver_version", "error", "gpus"]
        );
        let g = &v["gpus"][0];
        assert_eq!(
            keys(g),
            [
                "index",
                "memory_total_bytes",
                "memory_used_bytes",
                "name",
                "power_draw_w",
                "power_limit_w",
                "processes",
                "temperature_c",
                "utilization_pct",
                "uuid"
            ]
        );
        let p = &g["processes"][0];
        assert_eq!(
            keys(p),
            ["cmdline", "kind", "pid", "used_memory_bytes", "user"]
        );
        assert_eq!(p["kind"], "graphics");
        assert_eq!(
            serde_json::to_value(GpuProcessKind::Compute).unwrap(),
            "compute"
        );
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["cuda_driver_version"], "12.8");

        // Missing metrics are explicit nulls, not absent keys.
        let v = serde_json::to_value(fake_gpus(2)).unwrap();
        assert_eq!(v["gpus"][1]["utilization_pct"], serde_json::Value::Null);
        let none = serde_json::to_value(no_nvml_snapshot("x")).unwrap();
        assert_eq!(
            none,
            serde_json::json!({
                "driver_version": null,
                "cuda_driver_version": null,
                "gpus": [],
                "error": "x"
            })
        );
    }
}
