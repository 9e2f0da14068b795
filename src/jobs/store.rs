//! The jobs on disk and their state right now: a journal says what its supervisor last wrote;
//! whether that supervisor still lives (same pid and start time, same boot) decides whether the
//! job is still supervised or lost.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::journal::{self, JobState, Journal};
use crate::system::procs::{ProcInfo, ProcessTable, is_alive};

/// A live process of a job (found by its tag or its recorded identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobProcess {
    pub pid: u32,
    pub start_ticks: u64,
    pub uid: u32,
    pub pgid: u32,
    pub command: String,
}

/// A job as shown: its journal plus the state derived now.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub journal: Journal,
    pub dir: PathBuf,
    pub state: JobState,
    /// Why a job is lost, in words.
    pub lost: Option<String>,
    /// Live processes of the job (empty when no process table was given).
    pub processes: Vec<JobProcess>,
}

impl JobView {
    pub fn id(&self) -> &str {
        &self.journal.id
    }

    /// Whether the job's supervisor is alive (so the supervisor will finish the journal).
    pub fn supervised(&self) -> bool {
        matches!(
            self.state,
            JobState::Starting | JobState::Running | JobState::Stopping
        )
    }

    /// Config file name, for lists.
    pub fn config_name(&self) -> String {
        self.journal
            .config
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.journal.config.display().to_string())
    }
}

/// The processes of job `id`: those carrying its tag, plus recorded identities still alive
/// (a process whose environment cannot be read is still found that way).
pub fn job_processes(table: &ProcessTable, j: &Journal) -> Vec<JobProcess> {
    let mut out: Vec<JobProcess> = Vec::new();
    let recorded: Vec<(u32, u64)> = j
        .launcher
        .iter()
        .map(|l| (l.pid, l.start_ticks))
        .chain(
            j.ranks
                .iter()
                .filter_map(|r| r.start_ticks.map(|s| (r.pid, s))),
        )
        .collect();
    let push = |p: &ProcInfo, out: &mut Vec<JobProcess>| {
        if !out.iter().any(|q| q.pid == p.pid()) {
            out.push(JobProcess {
                pid: p.pid(),
                start_ticks: p.id.start_ticks,
                uid: p.uid,
                pgid: p.pgid,
                command: p.command(),
            });
        }
    };
    // Recorded identities only count in the job's own session (the supervisor's setsid) and
    // boot: a pid read from log text must not name an unrelated process.
    let same_boot = j.boot_id.is_none() || j.boot_id == super::journal::boot_id();
    let session = j.supervisor.map(|s| s.pid);
    for p in table.iter() {
        let tagged = p.job_tag.as_deref() == Some(j.id.as_str());
        let known =
            same_boot && session == Some(p.sid) && recorded.contains(&(p.pid(), p.id.start_ticks));
        // Never the supervisor itself: it is not part of what a stop ends.
        let is_supervisor = j.supervisor == Some(p.id);
        if (tagged || known) && !is_supervisor && !p.kernel_thread && !p.zombie {
            push(p, &mut out);
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// The state now, and why a job is lost.
pub fn derive_state(
    j: &Journal,
    boot_id: Option<&str>,
    remaining: Option<usize>,
    now: u64,
) -> (JobState, Option<String>) {
    if j.ended {
        return (j.state, None);
    }
    let left = |n: Option<usize>| match n {
        Some(0) => "no process of this job is left".to_string(),
        Some(1) => "1 process of this job still running".to_string(),
        Some(n) => format!("{n} processes of this job still running"),
        None => "its processes were not checked".to_string(),
    };
    if let (Some(then), Some(now_boot)) = (j.boot_id.as_deref(), boot_id)
        && then != now_boot
    {
        return (JobState::Lost, Some("lost at reboot".into()));
    }
    match j.supervisor {
        Some(s) if is_alive(s) => (j.state, None),
        Some(_) => (
            JobState::Lost,
            Some(format!("supervisor lost, {}", left(remaining))),
        ),
        // Written by the launching side; the supervisor has not recorded itself yet.
        None if now.saturating_sub(j.created) < 30 => (JobState::Starting, None),
        None => (
            JobState::Lost,
            Some(format!("the supervisor never started, {}", left(remaining))),
        ),
    }
}

/// Every job under `state_dir`, newest first. With a process table, each lists its live
/// processes (and a lost job says how many are left).
pub fn list(state_dir: &Path, table: Option<&ProcessTable>) -> Vec<JobView> {
    let boot = journal::boot_id();
    let now = journal::now_unix();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(super::jobs_dir(state_dir)) else {
        return out;
    };
    for e in rd.flatten() {
        let dir = e.path();
        let Ok(j) = Journal::read(&dir) else {
            continue;
        };
        let processes = table.map(|t| job_processes(t, &j)).unwrap_or_default();
        let (state, lost) = derive_state(&j, boot.as_deref(), table.map(|_| processes.len()), now);
        out.push(JobView {
            journal: j,
            dir,
            state,
            lost,
            processes,
        });
    }
    out.sort_by(|a, b| {
        b.journal
            .created
            .cmp(&a.journal.created)
            .then_with(|| b.journal.id.cmp(&a.journal.id))
    });
    out
}

/// Finds a job by exact id, unique prefix, or `last` (the newest).
pub fn find(
    state_dir: &Path,
    query: &str,
    table: Option<&ProcessTable>,
) -> Result<JobView, String> {
    let jobs = list(state_dir, table);
    if jobs.is_empty() {
        return Err(format!(
            "no jobs yet (looked in {})",
            super::jobs_dir(state_dir).display()
        ));
    }
    if query == "last" || query == "latest" {
        return Ok(jobs.into_iter().next().expect("not empty"));
    }
    if let Some(j) = jobs.iter().find(|j| j.id() == query) {
        return Ok(j.clone());
    }
    let matches: Vec<&JobView> = jobs.iter().filter(|j| j.id().starts_with(query)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "no job `{query}`; `dpgui jobs` lists them (newest: {})",
            jobs[0].id()
        )),
        many => Err(format!(
            "`{query}` matches {} jobs ({}); give more of the id",
            many.len(),
            many.iter().map(|j| j.id()).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::procs::{ProcId, read_identity};

    #[test]
    fn supervisor_liveness_and_boot_decide_the_state() {
        let me = read_identity(std::process::id()).unwrap();
        let mut j = journal::sample("a");
        j.supervisor = Some(me);
        let boot = j.boot_id.clone();
        let now = j.created + 100;
        assert_eq!(
            derive_state(&j, boot.as_deref(), Some(2), now),
            (JobState::Running, None)
        );
        j.supervisor = Some(ProcId {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        });
        let (s, why) = derive_state(&j, boot.as_deref(), Some(2), now);
        assert_eq!(s, JobState::Lost);
        assert_eq!(
            why.as_deref(),
            Some("supervisor lost, 2 processes of this job still running")
        );
        j.boot_id = Some("other-boot".into());
        j.supervisor = Some(me);
        let (s, why) = derive_state(&j, Some("this-boot"), Some(0), now);
        assert_eq!(
            (s, why.as_deref()),
            (JobState::Lost, Some("lost at reboot"))
        );
        j.ended = true;
        j.state = JobState::Succeeded;
        assert_eq!(
            derive_state(&j, Some("this-boot"), None, now).0,
            JobState::Succeeded
        );
        let mut fresh = journal::sample("b");
        fresh.supervisor = None;
        fresh.state = JobState::Starting;
        assert_eq!(
            derive_state(&fresh, None, None, fresh.created + 5).0,
            JobState::Starting
        );
        assert_eq!(
            derive_state(&fresh, None, None, fresh.created + 500).0,
            JobState::Lost
        );
    }

    #[test]
    fn jobs_are_found_by_id_prefix_or_last() {
        let dir = tempfile::tempdir().unwrap();
        for (id, created) in [("20260101-000000-aaa", 1), ("20260102-000000-bbb", 2)] {
            let mut j = journal::sample(id);
            j.created = created;
            j.ended = true;
            j.state = JobState::Succeeded;
            let d = super::super::jobs_dir(dir.path()).join(id);
            std::fs::create_dir_all(&d).unwrap();
            j.write(&d).unwrap();
        }
        assert_eq!(
            find(dir.path(), "last", None).unwrap().id(),
            "20260102-000000-bbb"
        );
        assert_eq!(
            find(dir.path(), "20260101", None).unwrap().id(),
            "20260101-000000-aaa"
        );
        assert!(
            find(dir.path(), "2026", None)
                .unwrap_err()
                .contains("matches 2 jobs")
        );
        assert!(
            find(dir.path(), "x", None)
                .unwrap_err()
                .contains("no job `x`")
        );
    }
}
