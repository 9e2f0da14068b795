//! The download queue: jobs run one after another on a background thread (its own small tokio
//! runtime); a job's first file alone (it pins the commit), then up to four of its files at a
//! time; any thread reads per-file and total progress (bytes,
//! rate, ETA), cancels a job, or queues it again to resume where it stopped.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::HubConfig;
use super::cache::RepoCache;
use super::download::{Dest, FileTask, Http, Tick, fetch_file};
use super::error::HubError;
use super::listing::list_files;

pub type JobId = u64;

/// Which files of the repo a job brings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    Files(Vec<String>),
    /// Every file under this repo-relative folder.
    Folder(String),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub repo: String,
    pub revision: String,
    pub selection: Selection,
    pub dest: Dest,
}

impl Request {
    /// From the main branch into the hub cache.
    pub fn new(repo: &str, selection: Selection) -> Request {
        Request {
            repo: repo.to_string(),
            revision: super::config::DEFAULT_REVISION.to_string(),
            selection,
            dest: Dest::Cache,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    /// Asking the hub for the repo's file list.
    Listing,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Pending,
    /// Asking the hub for the file's commit, ETag and size.
    Checking,
    Downloading,
    /// Already there: nothing was fetched.
    Cached,
    Done,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileStatus {
    pub path: String,
    /// Known from the listing, or once the hub has answered for the file.
    pub size: Option<u64>,
    /// Bytes of the file on disk.
    pub done: u64,
    /// A partial file this download continued from.
    pub resumed_from: u64,
    /// Bytes that came over the network.
    pub fetched: u64,
    pub state: FileState,
    pub local_path: Option<PathBuf>,
    /// Bytes per second, over the last few seconds (0 when not downloading).
    pub rate: f64,
    pub eta_secs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    pub id: JobId,
    pub request: Request,
    pub state: JobState,
    pub files: Vec<FileStatus>,
    pub commit: Option<String>,
    /// Sum of the known file sizes.
    pub total: u64,
    pub done: u64,
    pub fetched: u64,
    pub rate: f64,
    pub eta_secs: Option<f64>,
    /// The single file, the folder or the snapshot directory: what a config points at.
    pub local_path: Option<PathBuf>,
    pub error: Option<HubError>,
}

/// Throughput over a sliding window of a few seconds.
#[derive(Debug, Default)]
struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

const RATE_WINDOW: Duration = Duration::from_secs(3);

impl RateMeter {
    fn push(&mut self, now: Instant, bytes: u64) {
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                b1.saturating_sub(*b0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn reset(&mut self) {
        self.samples.clear();
    }
}

struct Entry {
    status: JobStatus,
    cancel: watch::Sender<bool>,
    meter: RateMeter,
}

impl Entry {
    /// Totals, rate and ETA from the files.
    fn recompute(&mut self) {
        let s = &mut self.status;
        s.total = s.files.iter().map(|f| f.size.unwrap_or(0)).sum();
        s.done = s.files.iter().map(|f| f.done).sum();
        s.fetched = s.files.iter().map(|f| f.fetched).sum();
        let active = s.files.iter().any(|f| f.state == FileState::Downloading);
        s.rate = if active { self.meter.rate() } else { 0.0 };
        let eta = |left: u64| (s.rate > 0.0).then(|| left as f64 / s.rate);
        s.eta_secs = if active {
            eta(s.total.saturating_sub(s.done))
        } else {
            None
        };
        let rate = s.rate;
        for f in &mut s.files {
            if f.state == FileState::Downloading {
                f.rate = rate;
                f.eta_secs =
                    (rate > 0.0).then(|| f.size.unwrap_or(0).saturating_sub(f.done) as f64 / rate);
            } else {
                f.rate = 0.0;
                f.eta_secs = None;
            }
        }
    }
}

#[derive(Default)]
struct Inner {
    jobs: Vec<Entry>,
    next_id: JobId,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Signalled on every change: the worker waits for jobs, callers for progress.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: JobId, f: impl FnOnce(&mut Entry)) {
        let mut g = self.lock();
        if let Some(e) = g.jobs.iter_mut().find(|e| e.status.id == id) {
            f(e);
            e.recompute();
        }
        drop(g);
        self.changed.notify_all();
    }
}

/// The queue and its worker thread. Dropping it cancels what runs (the partial file stays for a
/// later resume) and waits for the worker to stop.
pub struct Downloader {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Downloader {
    pub fn new(cfg: HubConfig) -> Result<Downloader, HubError> {
        let http = Http::new()?;
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("dpgui-hub".into())
            .spawn(move || worker(cfg, http, s))
            .map_err(|e| HubError::Protocol(format!("cannot start the download thread: {e}")))?;
        Ok(Downloader {
            shared,
            worker: Some(worker),
        })
    }

    /// Queues a job; it starts when the ones before it have ended.
    pub fn enqueue(&self, request: Request) -> JobId {
        let mut g = self.shared.lock();
        g.next_id += 1;
        let id = g.next_id;
        let files = match &request.selection {
            Selection::Files(v) => v.iter().map(|p| new_file(p, None)).collect(),
            _ => Vec::new(),
        };
        let (cancel, _) = watch::channel(false);
        g.jobs.push(Entry {
            status: JobStatus {
                id,
                request,
                state: JobState::Queued,
                files,
                commit: None,
                total: 0,
                done: 0,
                fetched: 0,
                rate: 0.0,
                eta_secs: None,
                local_path: None,
                error: None,
            },
            cancel,
            meter: RateMeter::default(),
        });
        drop(g);
        self.shared.changed.notify_all();
        id
    }

    /// Stops a queued or running job; false when it had already ended (or never existed).
    pub fn cancel(&self, id: JobId) -> bool {
        let mut g = self.shared.lock();
        let Some(e) = g.jobs.iter_mut().find(|e| e.status.id == id) else {
            return false;
        };
        if e.status.state.finished() {
            return false;
        }
        let _ = e.cancel.send(true);
        if e.status.state == JobState::Queued {
            e.status.state = JobState::Cancelled;
            e.status.error = Some(HubError::Cancelled);
        }
        drop(g);
        self.shared.changed.notify_all();
        true
    }

    /// Queues an ended job's request again: a cancelled or failed download resumes from its
    /// partial file, and files already fetched are not fetched again.
    pub fn retry(&self, id: JobId) -> Option<JobId> {
        let req = {
            let g = self.shared.lock();
            let e = g.jobs.iter().find(|e| e.status.id == id)?;
            if !e.status.state.finished() {
                return None;
            }
            e.status.request.clone()
        };
        Some(self.enqueue(req))
    }

    pub fn job(&self, id: JobId) -> Option<JobStatus> {
        let g = self.shared.lock();
        g.jobs
            .iter()
            .find(|e| e.status.id == id)
            .map(|e| e.status.clone())
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<JobStatus> {
        self.shared
            .lock()
            .jobs
            .iter()
            .map(|e| e.status.clone())
            .collect()
    }

    /// Forgets the jobs that have ended.
    pub fn clear_finished(&self) {
        self.shared
            .lock()
            .jobs
            .retain(|e| !e.status.state.finished());
    }

    /// Blocks until the job has ended.
    pub fn wait(&self, id: JobId) -> Option<JobStatus> {
        let mut g = self.shared.lock();
        loop {
            let e = g.jobs.iter().find(|e| e.status.id == id)?;
            if e.status.state.finished() {
                return Some(e.status.clone());
            }
            g = self
                .shared
                .changed
                .wait(g)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until the next change of any job (progress is reported about ten times a
    /// second), the job's end, or `timeout`; the job's status then.
    pub fn wait_update(&self, id: JobId, timeout: Duration) -> Option<JobStatus> {
        let g = self.shared.lock();
        let e = g.jobs.iter().find(|e| e.status.id == id)?;
        if e.status.state.finished() {
            return Some(e.status.clone());
        }
        let g = self
            .shared
            .changed
            .wait_timeout(g, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        g.jobs
            .iter()
            .find(|e| e.status.id == id)
            .map(|e| e.status.clone())
    }

    /// Blocks until the job has ended or `timeout` has passed; its status either way.
    pub fn wait_timeout(&self, id: JobId, timeout: Duration) -> Option<JobStatus> {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.lock();
        loop {
            let e = g.jobs.iter().find(|e| e.status.id == id)?;
            let now = Instant::now();
            if e.status.state.finished() || now >= deadline {
                return Some(e.status.clone());
            }
            g = self
                .shared
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Downloader {
    fn drop(&mut self) {
        {
            let mut g = self.shared.lock();
            g.shutdown = true;
            for e in &g.jobs {
                let _ = e.cancel.send(true);
            }
        }
        self.shared.changed.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn new_file(path: &str, size: Option<u64>) -> FileStatus {
    FileStatus {
        path: path.to_string(),
        size,
        done: 0,
        resumed_from: 0,
        fetched: 0,
        state: FileState::Pending,
        local_path: None,
        rate: 0.0,
        eta_secs: None,
    }
}

fn worker(cfg: HubConfig, http: Http, shared: Arc<Shared>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    loop {
        let (id, request, mut cancel) = {
            let mut g = shared.lock();
            loop {
                if g.shutdown {
                    return;
                }
                if let Some(e) = g
                    .jobs
                    .iter_mut()
                    .find(|e| e.status.state == JobState::Queued)
                {
                    e.status.state = JobState::Running;
                    break (e.status.id, e.status.request.clone(), e.cancel.subscribe());
                }
                g = shared.changed.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        };
        shared.changed.notify_all();
        let result = match &rt {
            Ok(rt) => rt.block_on(run_job(&cfg, &http, &shared, id, &request, &mut cancel)),
            Err(e) => Err(HubError::Protocol(format!(
                "cannot start the I/O runtime: {e}"
            ))),
        };
        shared.update(id, |e| {
            let s = &mut e.status;
            match result {
                Ok(()) => s.state = JobState::Done,
                Err(err) => {
                    s.state = if err == HubError::Cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Failed
                    };
                    for f in &mut s.files {
                        if matches!(f.state, FileState::Checking | FileState::Downloading) {
                            f.state = if err == HubError::Cancelled {
                                FileState::Cancelled
                            } else {
                                FileState::Failed
                            };
                        }
                    }
                    tracing::info!(job = id, repo = %s.request.repo, error = %err, "download ended");
                    s.error = Some(err);
                }
            }
        });
    }
}

/// The files a job brings, with their sizes when the listing gave them.
async fn plan(
    cfg: &HubConfig,
    shared: &Shared,
    id: JobId,
    req: &Request,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Vec<(String, Option<u64>)>, HubError> {
    let prefix = match &req.selection {
        Selection::Files(v) => return Ok(v.iter().map(|f| (f.clone(), None)).collect()),
        Selection::Folder(p) => Some(p.trim_matches('/').to_string()),
        Selection::All => None,
    };
    shared.update(id, |e| e.status.state = JobState::Listing);
    let listing = tokio::select! {
        l = list_files(cfg, &req.repo, &req.revision) => l?,
        _ = super::download::cancelled(cancel) => return Err(HubError::Cancelled),
    };
    let files: Vec<(String, Option<u64>)> = listing
        .files
        .into_iter()
        .filter(|f| match &prefix {
            Some(p) => f
                .path
                .strip_prefix(p.as_str())
                .is_some_and(|r| r.starts_with('/')),
            None => true,
        })
        .map(|f| (f.path, Some(f.size)))
        .collect();
    if files.is_empty() {
        return Err(match prefix {
            Some(p) => HubError::Invalid(format!("{} has no folder {p}", req.repo)),
            None => HubError::Invalid(format!("{} has no files", req.repo)),
        });
    }
    Ok(files)
}

async fn run_job(
    cfg: &HubConfig,
    http: &Http,
    shared: &Shared,
    id: JobId,
    req: &Request,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), HubError> {
    let files = plan(cfg, shared, id, req, cancel).await?;
    if cfg.offline && req.dest == Dest::Cache {
        // Say everything that is missing at once, not one file per try.
        let rc = RepoCache::new(&cfg.cache_dir, &req.repo);
        let missing: Vec<String> = files
            .iter()
            .filter(|(f, _)| rc.cached_file(&req.revision, f).is_none())
            .map(|(f, _)| f.clone())
            .collect();
        if !missing.is_empty() {
            return Err(HubError::Offline {
                repo: req.repo.clone(),
                missing,
            });
        }
    }
    shared.update(id, |e| {
        e.status.state = JobState::Running;
        e.status.files = files.iter().map(|(p, s)| new_file(p, *s)).collect();
    });
    // The first file alone: the commit it resolves to pins the others, so every file of the job
    // comes from one revision even if the branch moves meanwhile. The rest, several at a time
    // (as huggingface_hub's snapshot_download does): a CDN often limits each connection.
    let job = JobCtx {
        cfg,
        http,
        shared,
        id,
        req,
    };
    let mut pinned: Option<String> = None;
    if let Some((path, _)) = files.first() {
        pinned = job.fetch_one(0, path, None, cancel.clone()).await?;
    }
    {
        use futures::StreamExt;
        let pin = pinned.as_deref();
        let mut rest = futures::stream::iter(files.iter().enumerate().skip(1))
            .map(|(i, (path, _))| job.fetch_one(i, path, pin, cancel.clone()))
            .buffer_unordered(PARALLEL_FILES);
        while let Some(r) = rest.next().await {
            // The first failure ends the job; dropping the stream stops the other transfers
            // (their partial files stay, to resume).
            r?;
        }
    }
    let local = local_path(cfg, req, pinned.as_deref(), shared, id);
    shared.update(id, |e| e.status.local_path = local);
    Ok(())
}

/// Files of one job downloaded at the same time.
const PARALLEL_FILES: usize = 4;

/// What every file of a running job needs.
struct JobCtx<'a> {
    cfg: &'a HubConfig,
    http: &'a Http,
    shared: &'a Shared,
    id: JobId,
    req: &'a Request,
}

impl JobCtx<'_> {
    /// Fetches file `i` of the job (`path`), keeping its row of the job's status up to date.
    /// Returns the commit the hub answered with.
    async fn fetch_one(
        &self,
        i: usize,
        path: &str,
        pinned: Option<&str>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<Option<String>, HubError> {
        let (shared, id) = (self.shared, self.id);
        if *cancel.borrow() {
            return Err(HubError::Cancelled);
        }
        shared.update(id, |e| e.status.files[i].state = FileState::Checking);
        let task = FileTask {
            cfg: self.cfg,
            http: self.http,
            repo: &self.req.repo,
            revision: &self.req.revision,
            pinned,
            file: path,
            dest: &self.req.dest,
        };
        let mut last = Instant::now();
        let mut tick = |t: Tick| {
            let now = Instant::now();
            match t {
                Tick::Start { size, have } => shared.update(id, |e| {
                    let others = e
                        .status
                        .files
                        .iter()
                        .enumerate()
                        .any(|(j, f)| j != i && f.state == FileState::Downloading);
                    let f = &mut e.status.files[i];
                    f.size = Some(size);
                    f.done = have;
                    f.resumed_from = have;
                    f.state = FileState::Downloading;
                    // The rate restarts with a file only when no other one is under way.
                    if !others {
                        e.meter.reset();
                    }
                    let fetched = e.status.files.iter().map(|f| f.fetched).sum();
                    e.meter.push(now, fetched);
                }),
                // Shared state is touched ten times a second, not per network chunk.
                Tick::Bytes(n) if now.duration_since(last) >= Duration::from_millis(100) => {
                    last = now;
                    shared.update(id, |e| {
                        let f = &mut e.status.files[i];
                        f.fetched = n.saturating_sub(f.resumed_from);
                        f.done = n;
                        let fetched: u64 = e.status.files.iter().map(|f| f.fetched).sum();
                        e.meter.push(now, fetched);
                    });
                }
                Tick::Bytes(_) => {}
            }
        };
        let (done, _meta) = fetch_file(&task, &mut cancel, &mut tick).await?;
        shared.update(id, |e| {
            let f = &mut e.status.files[i];
            f.state = if done.fetched == 0 && done.resumed_from == 0 {
                FileState::Cached
            } else {
                FileState::Done
            };
            f.size = Some(done.size);
            f.done = done.size;
            f.fetched = done.fetched;
            f.resumed_from = done.resumed_from;
            f.local_path = Some(done.local_path.clone());
            if e.status.commit.is_none() {
                e.status.commit = done.commit.clone();
            }
        });
        Ok(done.commit)
    }
}

/// What a config points at when the job is done.
fn local_path(
    cfg: &HubConfig,
    req: &Request,
    commit: Option<&str>,
    shared: &Shared,
    id: JobId,
) -> Option<PathBuf> {
    if let Selection::Files(v) = &req.selection
        && v.len() == 1
    {
        let g = shared.lock();
        let e = g.jobs.iter().find(|e| e.status.id == id)?;
        return e.status.files.first()?.local_path.clone();
    }
    let root = match &req.dest {
        Dest::Dir(d) => d.clone(),
        Dest::Cache => {
            let rc = RepoCache::new(&cfg.cache_dir, &req.repo);
            let commit = commit
                .map(str::to_string)
                .or_else(|| rc.commit_for(&req.revision))?;
            rc.snapshot_dir(&commit)
        }
    };
    Some(match &req.selection {
        Selection::Folder(p) => root.join(p.trim_matches('/')),
        _ => root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_bytes_over_the_window() {
        let mut m = RateMeter::default();
        let t0 = Instant::now();
        m.push(t0, 0);
        m.push(t0 + Duration::from_secs(1), 100);
        m.push(t0 + Duration::from_secs(2), 300);
        assert!((m.rate() - 150.0).abs() < 1e-9);
        // The sample 4 s old drops out of the 3 s window: 100 → 1300 over 3 s.
        m.push(t0 + Duration::from_secs(4), 1300);
        assert!((m.rate() - 400.0).abs() < 1e-9, "{}", m.rate());
    }

    #[test]
    fn a_queued_job_can_be_cancelled_before_it_starts_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        // Port 9 (discard) on loopback refuses: the first job fails fast, the rest queue.
        let mut cfg = HubConfig::new("http://127.0.0.1:9", dir.path());
        cfg.max_resumes = 0;
        let d = Downloader::new(cfg).unwrap();
        let a = d.enqueue(Request::new("o/n", Selection::Files(vec!["a.bin".into()])));
        let b = d.enqueue(Request::new("o/n", Selection::Files(vec!["b.bin".into()])));
        assert!(d.cancel(b));
        let sa = d.wait(a).unwrap();
        assert_eq!(sa.state, JobState::Failed);
        assert_eq!(sa.error.as_ref().map(|e| e.code()), Some("unreachable"));
        let sb = d.wait(b).unwrap();
        assert_eq!(sb.state, JobState::Cancelled);
        assert!(!d.cancel(b), "an ended job cannot be cancelled again");
        let c = d.retry(b).unwrap();
        assert_ne!(c, b);
        assert_eq!(d.job(c).unwrap().request, sb.request);
        d.wait(c);
        d.clear_finished();
        assert!(d.jobs().is_empty());
    }
}
