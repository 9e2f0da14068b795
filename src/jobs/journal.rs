//! The job journal: `<state>/jobs/<id>/journal.json`, the record of one job that outlives every
//! process. The supervisor is its only writer while it lives; a stop of a job whose supervisor
//! is lost finishes it. Writes are atomic (temp file, fsync, rename), so a reader never sees a
//! half-written journal, whoever gets killed when.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::system::procs::ProcId;
use crate::trainer::launch::{JobOptions, LaunchPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Starting,
    Running,
    Stopping,
    Succeeded,
    Failed,
    Stopped,
    /// Derived when reading: the supervisor died (or the host rebooted) before the job ended.
    Lost,
}

impl JobState {
    pub fn ended(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Stopped
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Stopping => "stopping",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Stopped => "stopped",
            JobState::Lost => "lost",
        }
    }
}

/// One rank as the launcher reported it (`process <pid> spawned with command: [...]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankRecord {
    pub local_rank: Option<u32>,
    pub pid: u32,
    /// Read when the supervisor saw the spawn line; None if the process was already gone.
    pub start_ticks: Option<u64>,
    pub log: Option<PathBuf>,
}

/// Progress as the supervisor last read it from rank 0's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressSummary {
    pub epoch: Option<u64>,
    pub step: Option<u64>,
    pub total_steps: Option<u64>,
    pub steps_per_epoch: Option<u64>,
    pub loss: Option<f64>,
    pub iter_time: Option<f64>,
    pub eta_secs: Option<u64>,
    pub complete: bool,
    pub saved: Vec<String>,
    pub phase: Option<String>,
}

/// What a stop asked for, as recorded in `stop.json` by whoever stopped the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// Touch `<run_dir>/save_quit`: checkpoint, then exit 0.
    SaveAndStop,
    /// Touch `<run_dir>/save`: checkpoint and continue.
    SaveNow,
    /// SIGINT, grace, SIGTERM, grace, SIGKILL.
    Stop,
    /// SIGKILL.
    Kill,
}

impl StopKind {
    pub fn label(self) -> &'static str {
        match self {
            StopKind::SaveAndStop => "save and stop",
            StopKind::SaveNow => "save checkpoint now",
            StopKind::Stop => "stop",
            StopKind::Kill => "kill",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    pub kind: StopKind,
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub id: String,
    pub config: PathBuf,
    pub model_type: Option<String>,
    pub gpus: Vec<u32>,
    pub port: u16,
    pub cpu_ranks: bool,
    pub options: JobOptions,
    pub plan: LaunchPlan,
    /// Resolved output_dir (where the run dir appears).
    pub output_dir: Option<PathBuf>,
    pub epochs: Option<u64>,
    pub max_steps: Option<u64>,
    pub created: u64,
    /// /proc/sys/kernel/random/boot_id when the job started: a different one now = rebooted.
    pub boot_id: Option<String>,
    pub state: JobState,
    pub supervisor: Option<ProcId>,
    /// The DeepSpeed runner (`deepspeed`), leader of the job's process group.
    pub launcher: Option<ProcId>,
    pub pgid: Option<u32>,
    pub started: Option<u64>,
    #[serde(default)]
    pub ranks: Vec<RankRecord>,
    pub run_dir: Option<PathBuf>,
    #[serde(default)]
    pub progress: ProgressSummary,
    pub stop: Option<StopRequest>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// Compatibility with readers that only look at the head (see `JournalHead`).
    pub ended: bool,
    pub ended_at: Option<u64>,
    /// One sentence: why it failed, how it stopped, or what went wrong before it started.
    pub reason: Option<String>,
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

pub const JOURNAL: &str = "journal.json";
pub const STOP_FILE: &str = "stop.json";
pub const LAUNCHER_LOG: &str = "launcher.log";
pub const RANKS_DIR: &str = "ranks";
pub const SUPERVISOR_LOG: &str = "supervisor.log";

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per write, created exclusively: two writers (threads of one TUI, or a stopper and
    // the supervisor) never share a temp file, so neither can publish the other's half.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{seq}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Journal {
    pub fn path(job_dir: &Path) -> PathBuf {
        job_dir.join(JOURNAL)
    }

    pub fn read(job_dir: &Path) -> Result<Journal, String> {
        let p = Self::path(job_dir);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    pub fn write(&self, job_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&Self::path(job_dir), &bytes)
    }

    /// Marks the job ended with `state` and `reason`.
    pub fn finish(&mut self, state: JobState, reason: Option<String>) {
        self.state = state;
        self.ended = true;
        self.ended_at = Some(now_unix());
        if reason.is_some() {
            self.reason = reason;
        }
    }
}

pub fn read_stop_request(job_dir: &Path) -> Option<StopRequest> {
    let text = std::fs::read_to_string(job_dir.join(STOP_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn write_stop_request(job_dir: &Path, kind: StopKind) -> std::io::Result<()> {
    let req = StopRequest {
        kind,
        at: now_unix(),
    };
    let bytes = serde_json::to_vec(&req).map_err(std::io::Error::other)?;
    write_atomic(&job_dir.join(STOP_FILE), &bytes)
}

#[cfg(test)]
pub(crate) fn sample(id: &str) -> Journal {
    Journal {
        id: id.into(),
        config: "/cfg/a.toml".into(),
        model_type: Some("sdxl".into()),
        gpus: vec![0, 1],
        port: 29517,
        cpu_ranks: false,
        options: JobOptions::default(),
        plan: LaunchPlan {
            program: "/v/bin/deepspeed".into(),
            args: vec!["train.py".into()],
            cwd: "/dp".into(),
            env: vec![],
        },
        output_dir: Some("/out".into()),
        epochs: Some(2),
        max_steps: None,
        created: 1_700_000_000,
        boot_id: boot_id(),
        state: JobState::Running,
        supervisor: None,
        launcher: None,
        pgid: None,
        started: Some(1_700_000_001),
        ranks: vec![],
        run_dir: None,
        progress: ProgressSummary::default(),
        stop: None,
        exit_code: None,
        exit_signal: None,
        ended: false,
        ended_at: None,
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_readable_by_the_head_reader() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = sample("j1");
        j.supervisor = Some(ProcId {
            pid: 5,
            start_ticks: 9,
        });
        j.write(dir.path()).unwrap();
        assert_eq!(Journal::read(dir.path()).unwrap(), j);
        let head: super::super::JournalHead =
            serde_json::from_str(&std::fs::read_to_string(Journal::path(dir.path())).unwrap())
                .unwrap();
        assert_eq!(head.id, "j1");
        assert_eq!(head.supervisor.unwrap().pid, 5);
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(JOURNAL)]);
    }

    #[test]
    fn a_failed_write_keeps_the_previous_journal() {
        let dir = tempfile::tempdir().unwrap();
        let j = sample("j1");
        j.write(dir.path()).unwrap();
        // The target becomes a directory: rename fails, the old content must survive elsewhere.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::create_dir(sub.join(JOURNAL)).unwrap();
        assert!(j.write(&sub).is_err());
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 1, "temp removed");
        assert_eq!(Journal::read(dir.path()).unwrap(), j);
    }

    #[test]
    fn stop_requests_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_stop_request(dir.path()).is_none());
        write_stop_request(dir.path(), StopKind::Kill).unwrap();
        assert_eq!(read_stop_request(dir.path()).unwrap().kind, StopKind::Kill);
    }
}
