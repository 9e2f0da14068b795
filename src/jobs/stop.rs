//! Stopping a job, gently first: save-and-stop and save-now talk to diffusion-pipe through
//! files in the run dir; stop signals every process of the job (SIGINT, grace, SIGTERM, grace,
//! SIGKILL); kill sends SIGKILL. Every process is identified by its job tag or recorded identity
//! and pinned by pidfd before any signal, never by name or by a bare pgid. Afterwards: no process
//! of the job left, the port free, the GPU memory released, or what survived, named.

use std::path::PathBuf;
use std::time::Duration;

use rustix::process::Signal;
use serde::Serialize;

use super::journal::{self, JobState, Journal, StopKind};
use super::store::{JobProcess, JobView, job_processes};
use crate::system::gpu::GpuSnapshot;
use crate::system::procs::{ProcId, ProcessScanner};
use crate::system::signals::{self, LadderOptions, LadderReport, Target};

#[derive(Debug, Clone, Copy)]
pub struct StopOptions {
    /// SIGINT → SIGTERM.
    pub interrupt_grace: Duration,
    /// SIGTERM → SIGKILL.
    pub terminate_grace: Duration,
    /// How long save-and-stop waits for the checkpoint and the exit (zero: do not wait; the
    /// job list shows when it has stopped).
    pub save_timeout: Duration,
}

impl Default for StopOptions {
    fn default() -> Self {
        StopOptions {
            interrupt_grace: Duration::from_secs(15),
            terminate_grace: Duration::from_secs(10),
            save_timeout: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopReport {
    pub job: String,
    pub kind: StopKind,
    /// The control file written for save-and-stop / save-now.
    pub touched: Option<PathBuf>,
    /// Per-pid outcome of the signal ladder (stop, kill, or a save-and-stop that timed out).
    pub ladder: Option<LadderReport>,
    /// Processes of the job alive after everything, checked on the machine.
    pub remaining: Vec<JobProcess>,
    pub port: u16,
    pub port_free: bool,
    /// GPU memory the job's processes still hold (None: not checked, see `gpu_note`).
    pub gpu_memory_after: Option<u64>,
    pub gpu_note: Option<String>,
    /// The job's final state once its supervisor (or this stop, for a lost job) recorded it.
    pub final_state: Option<JobState>,
}

impl StopReport {
    pub fn clean(&self) -> bool {
        self.remaining.is_empty() && self.port_free && self.gpu_memory_after.unwrap_or(0) == 0
    }

    /// One line for the status bar and the CLI.
    pub fn headline(&self) -> String {
        if self.kind == StopKind::SaveAndStop
            && self.final_state.is_none()
            && self.ladder.is_none()
            && !self.remaining.is_empty()
        {
            return format!(
                "job {}: asked to save a checkpoint and stop; it stops after the save",
                self.job
            );
        }
        if self.kind == StopKind::SaveNow {
            return format!(
                "job {}: asked for a checkpoint ({})",
                self.job,
                self.touched
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        let mut parts = vec![format!("job {}: {}", self.job, self.kind.label())];
        if let Some(l) = &self.ladder {
            let n = |f: signals::Fate| l.outcomes.iter().filter(|o| o.fate == f).count();
            let mut fates = Vec::new();
            for (f, label) in [
                (signals::Fate::Interrupted, "by SIGINT"),
                (signals::Fate::Terminated, "by SIGTERM"),
                (signals::Fate::Killed, "by SIGKILL"),
            ] {
                if n(f) > 0 {
                    fates.push(format!("{} {label}", n(f)));
                }
            }
            if !fates.is_empty() {
                parts.push(format!("ended {}", fates.join(", ")));
            }
        }
        if self.remaining.is_empty() {
            parts.push("no process left".into());
        } else {
            let pids: Vec<String> = self.remaining.iter().map(|p| p.pid.to_string()).collect();
            parts.push(format!("STILL RUNNING: pid {}", pids.join(", ")));
        }
        parts.push(if self.port_free {
            format!("port {} free", self.port)
        } else {
            format!("port {} STILL BUSY", self.port)
        });
        match (self.gpu_memory_after, &self.gpu_note) {
            (Some(0), _) => parts.push("GPU memory released".into()),
            (Some(b), _) => parts.push(format!(
                "{} GPU memory STILL HELD",
                crate::units::format_bytes(b)
            )),
            (None, Some(n)) => parts.push(n.clone()),
            (None, None) => {}
        }
        parts.join(", ")
    }
}

fn targets(procs: &[JobProcess]) -> Vec<Target> {
    procs
        .iter()
        .map(|p| Target {
            id: ProcId {
                pid: p.pid,
                start_ticks: p.start_ticks,
            },
            uid: p.uid,
        })
        .collect()
}

fn live_processes(j: &Journal) -> Vec<JobProcess> {
    let table = ProcessScanner::new().scan();
    job_processes(&table, j)
}

/// Runs `kind` on the job. Blocking (waits for exits): call from a blocking thread.
/// `resample_gpu` gives a fresh GPU snapshot (None: no NVML).
pub fn stop(
    job: &JobView,
    kind: StopKind,
    opts: StopOptions,
    resample_gpu: &mut dyn FnMut() -> Option<GpuSnapshot>,
) -> Result<StopReport, String> {
    let j = &job.journal;
    // An ended job with processes still carrying its tag can be stopped (they are its own).
    if job.state.ended() && job.processes.is_empty() {
        return Err(format!(
            "job {} has already ended ({})",
            j.id,
            job.state.label()
        ));
    }
    let procs = live_processes(j);
    let mut touched = None;
    let mut ladder = None;
    match kind {
        StopKind::SaveNow | StopKind::SaveAndStop => {
            // The supervisor records the run dir at its next tick; do not wait for it.
            let found = match (&j.run_dir, &j.output_dir, j.started) {
                (Some(d), _, _) => Some(d.clone()),
                (None, Some(out), Some(t)) => super::supervisor::run_dir_since(out, t),
                _ => None,
            };
            let run_dir = found.ok_or_else(|| {
                format!(
                    "job {} has no run dir yet (still starting or caching): nothing to save; use stop",
                    j.id
                )
            })?;
            let file = run_dir.join(if kind == StopKind::SaveNow {
                "save"
            } else {
                "save_quit"
            });
            std::fs::write(&file, b"")
                .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
            touched = Some(file);
            if kind == StopKind::SaveAndStop {
                let _ = journal::write_stop_request(&job.dir, kind);
            }
            // Save-now continues training; a save-and-stop that is not waited for ends later
            // (the job list shows it): nothing to verify yet.
            if kind == StopKind::SaveNow || opts.save_timeout.is_zero() {
                return Ok(StopReport {
                    job: j.id.clone(),
                    kind,
                    touched,
                    ladder: None,
                    remaining: procs,
                    port: j.port,
                    port_free: false,
                    gpu_memory_after: None,
                    gpu_note: None,
                    final_state: None,
                });
            }
            let ids: Vec<ProcId> = targets(&procs).iter().map(|t| t.id).collect();
            let still = signals::wait_for_exit(&ids, opts.save_timeout);
            if !still.is_empty() {
                return Err(format!(
                    "job {} is still saving after {}s ({} processes running); wait, or stop it \
                     without saving with `dpgui stop {}`",
                    j.id,
                    opts.save_timeout.as_secs(),
                    still.len(),
                    j.id
                ));
            }
        }
        StopKind::Stop | StopKind::Kill => {
            // Best effort: a full disk must not prevent a stop (the supervisor then reports
            // the end as a failure instead of a requested stop).
            if let Err(e) = journal::write_stop_request(&job.dir, kind) {
                tracing::warn!("cannot record the stop in {}: {e}", job.dir.display());
            }
            let steps: &[(Signal, Duration)] = if kind == StopKind::Kill {
                &[]
            } else {
                &[
                    (Signal::INT, opts.interrupt_grace),
                    (Signal::TERM, opts.terminate_grace),
                ]
            };
            let lopts = LadderOptions {
                grace: Duration::ZERO,
                kill_wait: Duration::from_secs(5),
                allow_other_users: false,
            };
            let mut report = signals::ladder(&targets(&procs), steps, lopts);
            // Processes forked while the ladder ran carry the tag too: end them the same way.
            for _ in 0..3 {
                let late: Vec<JobProcess> = live_processes(j)
                    .into_iter()
                    .filter(|p| !report.outcomes.iter().any(|o| o.pid == p.pid))
                    .collect();
                if late.is_empty() {
                    break;
                }
                let more = signals::ladder(&targets(&late), &[], lopts);
                report.escalated |= more.escalated;
                report.outcomes.extend(more.outcomes);
            }
            ladder = Some(report);
        }
    }

    // What is left, checked on the machine.
    let remaining = live_processes(j);
    let port_free = crate::system::ports::port_is_free(j.port)
        && crate::system::ports::listeners(Some(&[j.port]))
            .map(|l| l.is_empty())
            .unwrap_or(true);
    let pids: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    let held = |s: &GpuSnapshot| -> u64 {
        s.gpus
            .iter()
            .flat_map(|g| &g.processes)
            .filter(|p| pids.contains(&p.pid))
            .map(|p| p.used_memory_bytes.unwrap_or(0))
            .sum()
    };
    let mut sample = resample_gpu();
    // The driver frees a killed process's memory asynchronously: give it a few seconds before
    // calling the memory held (no event exists for this; NVML is sampled).
    for _ in 0..10 {
        match &sample {
            Some(s) if s.driver_version.is_some() && held(s) > 0 && remaining.is_empty() => {
                std::thread::sleep(Duration::from_millis(500));
                sample = resample_gpu();
            }
            _ => break,
        }
    }
    let (gpu_memory_after, gpu_note) = match sample {
        Some(s) if s.driver_version.is_some() => (Some(held(&s)), None),
        Some(s) => (
            None,
            Some(format!(
                "GPU memory not checked ({})",
                s.error.unwrap_or_else(|| "no NVML".into())
            )),
        ),
        None => (None, Some("GPU memory not checked (no NVML)".into())),
    };

    // The supervisor records the end once its last child is reaped; a lost job is finished
    // here, since nobody else will.
    let final_state = if job.supervised() {
        if let Some(s) = j.supervisor {
            signals::wait_for_exit(&[s], Duration::from_secs(10));
        }
        Journal::read(&job.dir)
            .ok()
            .filter(|j| j.ended)
            .map(|j| j.state)
    } else if remaining.is_empty() {
        let mut fin = j.clone();
        fin.stop = Some(journal::StopRequest {
            kind,
            at: journal::now_unix(),
        });
        fin.finish(
            JobState::Stopped,
            Some(format!(
                "stopped by request ({}) after its supervisor was lost",
                kind.label()
            )),
        );
        match fin.write(&job.dir) {
            Ok(()) => Some(JobState::Stopped),
            Err(e) => {
                tracing::warn!("cannot write the journal of {}: {e}", j.id);
                None
            }
        }
    } else {
        None
    };

    Ok(StopReport {
        job: j.id.clone(),
        kind,
        touched,
        ladder,
        remaining,
        port: j.port,
        port_free,
        gpu_memory_after,
        gpu_note,
        final_state,
    })
}
