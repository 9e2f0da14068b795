//! dpgui's own jobs: launch (pre-flight, port claim), the detached supervisor, the journal on
//! disk, the stop ladder, and the list of jobs with their live state.
//!
//! The contract other parts rely on: every process of a job carries `DPGUI_JOB_ID` in its
//! environment, and `<state>/jobs/<id>/journal.json` says whether its supervisor is alive.

pub mod journal;
pub mod launch;
pub mod port;
pub mod stop;
pub mod store;
pub mod supervisor;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::system::procs::{ProcId, is_alive};

/// Every process of a dpgui job carries this variable (inherited by the whole tree).
pub const JOB_TAG_VAR: &str = "DPGUI_JOB_ID";

/// The part of a job journal (`<state>/jobs/<id>/journal.json`) needed to tell whether the job
/// is still supervised.
#[derive(Debug, Clone, Deserialize)]
pub struct JournalHead {
    pub id: String,
    #[serde(default)]
    pub supervisor: Option<ProcIdRecord>,
    #[serde(default)]
    pub ended: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ProcIdRecord {
    pub pid: u32,
    pub start_ticks: u64,
}

pub fn jobs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs")
}

/// Ids of jobs whose supervisor is alive right now (same pid and start time as recorded).
pub fn live_jobs(state_dir: &Path) -> HashMap<String, ProcId> {
    let mut live = HashMap::new();
    let Ok(entries) = std::fs::read_dir(jobs_dir(state_dir)) else {
        return live;
    };
    for e in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("journal.json")) else {
            continue;
        };
        let Ok(head) = serde_json::from_str::<JournalHead>(&text) else {
            continue;
        };
        if let Some(s) = head.supervisor.filter(|_| !head.ended) {
            let id = ProcId {
                pid: s.pid,
                start_ticks: s.start_ticks,
            };
            if is_alive(id) {
                live.insert(head.id, id);
            }
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jobs_with_a_live_supervisor_count() {
        let dir = tempfile::tempdir().unwrap();
        let me = crate::system::procs::read_identity(std::process::id()).unwrap();
        let write = |id: &str, body: String| {
            let d = jobs_dir(dir.path()).join(id);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("journal.json"), body).unwrap();
        };
        let sup = |start: u64, ended: bool| {
            format!(
                r#"{{"id":"ID","supervisor":{{"pid":{},"start_ticks":{start}}},"ended":{ended}}}"#,
                me.pid
            )
        };
        write("a", sup(me.start_ticks, false).replace("ID", "a"));
        write("b", sup(me.start_ticks + 1, false).replace("ID", "b")); // pid reused
        write("c", sup(me.start_ticks, true).replace("ID", "c")); // ended
        write("d", "not json".into());
        let live = live_jobs(dir.path());
        assert_eq!(live.keys().collect::<Vec<_>>(), vec!["a"]);
    }
}
