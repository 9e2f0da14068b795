//! One file from the hub into the cache (or a chosen directory), resumably.
//!
//! hf-hub 1.0 downloads into the same cache layout but always starts a file from byte 0 (it
//! truncates `blobs/<etag>.incomplete`) and cannot be cancelled without dropping its future
//! mid-write, so this part is built on the HTTP client hf-hub itself uses (reqwest): a HEAD on
//! `/{repo}/resolve/{revision}/{file}` for the commit, ETag and size (as huggingface_hub does,
//! absolute redirects are not followed: their `X-Linked-*` headers carry the answer), then a
//! GET that resumes `blobs/<etag>.incomplete` with a `Range` request, under the same
//! `.locks/` file lock, then the rename to `blobs/<etag>`, the `refs/<revision>` file and the
//! relative snapshot symlink.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::HubConfig;
use super::cache::{RepoCache, is_commit_hash};
use super::error::{Failure, HubError, Subject, classify, retry_after};

pub(crate) const USER_AGENT: &str = concat!("dpgui/", env!("CARGO_PKG_VERSION"));

/// Chunks smaller than this are gathered before a write: fewer syscalls, no copy of big ones.
const WRITE_BUF: usize = 64 << 10;

/// The two HTTP clients: HEAD must see the hub's own redirect answer, GET follows redirects to
/// the storage host (reqwest drops the Authorization header when the host changes).
#[derive(Clone)]
pub struct Http {
    head: reqwest::Client,
    get: reqwest::Client,
}

/// A client with dpgui's user agent and timeouts; hf-hub's listing uses one too.
pub(crate) fn http_client(follow_redirects: bool) -> Result<reqwest::Client, HubError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(15))
        // A stalled transfer becomes a resumable error instead of hanging.
        .read_timeout(Duration::from_secs(60))
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .build()
        .map_err(|e| HubError::Protocol(format!("HTTP client: {e}")))
}

impl Http {
    pub fn new() -> Result<Http, HubError> {
        Ok(Http {
            head: http_client(false)?,
            get: http_client(true)?,
        })
    }
}

/// What the hub says about one file at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub commit: String,
    pub etag: String,
    pub size: u64,
}

/// Where downloaded files go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dest {
    /// The shared hub cache; the local path is the snapshot symlink.
    Cache,
    /// A directory of the user's: files at `DIR/<path>`, partial downloads and what was
    /// fetched under `DIR/.cache/huggingface/download/` as huggingface_hub's `local_dir` does.
    Dir(PathBuf),
}

/// How one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDone {
    pub local_path: PathBuf,
    pub commit: Option<String>,
    pub size: u64,
    /// Bytes that came over the network this time (0: it was already there).
    pub fetched: u64,
    /// Where this download resumed a partial file from.
    pub resumed_from: u64,
}

/// Progress of one file, reported as bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// The size is known; `have` bytes are already on disk (a resumed partial file).
    Start { size: u64, have: u64 },
    /// Bytes of the file now on disk.
    Bytes(u64),
}

pub(crate) struct FileTask<'a> {
    pub cfg: &'a HubConfig,
    pub http: &'a Http,
    pub repo: &'a str,
    /// As asked (a branch, tag or commit); refs are written for it.
    pub revision: &'a str,
    /// The commit found for this revision by an earlier file of the same job.
    pub pinned: Option<&'a str>,
    pub file: &'a str,
    pub dest: &'a Dest,
}

/// The innermost cause of a transport error, in words ("Connection refused (os error 111)").
pub(crate) fn transport_detail(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    let detail = inner.to_string();
    if e.is_timeout() {
        format!("timed out: {detail}")
    } else {
        detail
    }
}

fn resolve_url(
    cfg: &HubConfig,
    repo: &str,
    revision: &str,
    file: &str,
) -> Result<reqwest::Url, HubError> {
    let mut url = reqwest::Url::parse(&format!("{}/", cfg.endpoint))
        .map_err(|e| HubError::Invalid(format!("HF_ENDPOINT {}: {e}", cfg.endpoint)))?;
    {
        let mut seg = url.path_segments_mut().map_err(|_| {
            HubError::Invalid(format!("HF_ENDPOINT {} is not a base URL", cfg.endpoint))
        })?;
        seg.pop_if_empty();
        seg.extend(repo.split('/'));
        seg.push("resolve");
        // A revision is one segment even when it holds a `/` (refs/pr/1).
        seg.push(revision);
        seg.extend(file.split('/'));
    }
    Ok(url)
}

fn auth(cfg: &HubConfig) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(t) = &cfg.token
        && let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", t.secret()))
    {
        // Redacted in any Debug print of the headers.
        v.set_sensitive(true);
        h.insert(header::AUTHORIZATION, v);
    }
    h
}

fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name)?.to_str().ok()
}

fn failure(task: &FileTask<'_>, status: StatusCode, headers: &HeaderMap, url: &str) -> HubError {
    classify(
        &Failure {
            status: status.as_u16(),
            error_code: header_str(headers, "x-error-code"),
            retry_after: retry_after(header_str(headers, "retry-after")),
            url,
        },
        &Subject {
            endpoint: &task.cfg.endpoint,
            repo: task.repo,
            file: Some(task.file),
            revision: task.revision,
            token_sent: task.cfg.token.is_some(),
        },
    )
}

fn unreachable(cfg: &HubConfig, e: &reqwest::Error) -> HubError {
    HubError::Unreachable {
        endpoint: cfg.endpoint.clone(),
        detail: transport_detail(e),
    }
}

/// Where a redirect from `url` to `loc` leads when it is one HEAD follows (with the token): a
/// relative one that stays on the same origin (scheme, host and port). None for any other: its
/// answer is the response itself. Judged on the joined URL, not the string: `\\evil.com/x`,
/// `/\evil.com` or (from an https hub) `http:evil.com` look relative but lead elsewhere.
fn same_origin_redirect(url: &reqwest::Url, loc: &str) -> Result<Option<reqwest::Url>, HubError> {
    if loc.contains("://") || loc.starts_with("//") {
        return Ok(None);
    }
    let next = url
        .join(loc)
        .map_err(|e| HubError::Protocol(format!("bad redirect {loc}: {e}")))?;
    Ok((next.origin() == url.origin()).then_some(next))
}

/// HEAD on the resolve URL: commit, ETag and size, following only the hub's relative redirects
/// (a renamed repo), as huggingface_hub does.
pub(crate) async fn head(task: &FileTask<'_>) -> Result<FileMeta, HubError> {
    let revision = task.pinned.unwrap_or(task.revision);
    let mut url = resolve_url(task.cfg, task.repo, revision, task.file)?;
    for _ in 0..10 {
        let resp = task
            .http
            .head
            .head(url.clone())
            .headers(auth(task.cfg))
            .send()
            .await
            .map_err(|e| unreachable(task.cfg, &e))?;
        let status = resp.status();
        let h = resp.headers();
        if status.is_redirection()
            && let Some(loc) = header_str(h, "location")
            && let Some(next) = same_origin_redirect(&url, loc)?
        {
            url = next;
            continue;
        }
        if !status.is_success() && !status.is_redirection() {
            return Err(failure(task, status, h, url.as_str()));
        }
        let etag = header_str(h, "x-linked-etag")
            .or_else(|| header_str(h, "etag"))
            .map(|e| {
                e.trim()
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .to_string()
            })
            .filter(|e| !e.is_empty() && valid_etag(e))
            .ok_or_else(|| HubError::Protocol(format!("no usable ETag for {}", task.file)))?;
        let commit = header_str(h, "x-repo-commit")
            .map(|c| c.trim().to_string())
            .filter(|c| is_commit_hash(c))
            .ok_or_else(|| HubError::Protocol(format!("no X-Repo-Commit for {}", task.file)))?;
        let size = header_str(h, "x-linked-size")
            .or_else(|| header_str(h, "content-length"))
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| HubError::Protocol(format!("no size for {}", task.file)))?;
        return Ok(FileMeta { commit, etag, size });
    }
    Err(HubError::Protocol("too many redirects".into()))
}

/// An ETag becomes a file name: nothing that could leave `blobs/`.
fn valid_etag(e: &str) -> bool {
    e.len() <= 256
        && e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !e.starts_with('.')
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28) | Some(122))
}

fn disk_full(dir: &Path, needed: u64) -> HubError {
    HubError::DiskFull {
        dir: dir.to_path_buf(),
        free: free_bytes(dir).unwrap_or(0),
        needed,
    }
}

/// Waits for the cancel flag; never returns when the sender is gone.
pub(crate) async fn cancelled(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn is_cancelled(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

/// The `.locks/` file lock huggingface_hub takes around a blob download: two downloaders (two
/// dpgui, or dpgui and Python) never write the same partial file.
async fn lock(path: &Path, cancel: &mut watch::Receiver<bool>) -> Result<File, HubError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| HubError::io(d, &e))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| HubError::io(path, &e))?;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => {
                tokio::select! {
                    _ = cancelled(cancel) => return Err(HubError::Cancelled),
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(HubError::io(path, &e)),
        }
    }
}

/// The byte range a 206 answer holds: (first byte, total size).
fn content_range(h: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = header_str(h, "content-range")?.trim();
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// The partial file, appended to. Chunks of `WRITE_BUF` or more (what a fast link delivers)
/// are written as they come, without a copy; smaller ones (TLS records are 16 KiB) are gathered
/// first. A writer thread was tried: on two cores, with the server on the same machine, the
/// hand-off cost more than the overlap gained.
struct Writer {
    out: io::BufWriter<File>,
    /// Blocks past the end of the file are reserved (fallocate KEEP_SIZE) and not yet filled.
    reserved: bool,
}

impl Writer {
    /// Opens the writer on `file`, reserving disk space for its `have..size` bytes.
    fn new(file: File, have: u64, size: u64) -> Result<Writer, rustix::io::Errno> {
        // The file's size stays what was written, so resuming by size still works. A full
        // disk shows now rather than after most of the download, and writes into reserved
        // blocks cost ext4 less than delayed allocation (2 GiB from the loopback hub: 0.69 s
        // -> 0.56 s, benches/fetch.sh).
        let reserved = match rustix::fs::fallocate(
            &file,
            rustix::fs::FallocateFlags::KEEP_SIZE,
            have,
            size.saturating_sub(have),
        ) {
            Ok(()) => size > have,
            Err(e) if e == rustix::io::Errno::NOSPC || e == rustix::io::Errno::DQUOT => {
                // ext4 keeps what it managed to reserve before it ran out: give it back.
                release_past_end(&file);
                return Err(e);
            }
            // Not every filesystem can (NFS, some FUSE ones): blocks come as written.
            Err(_) => false,
        };
        Ok(Writer {
            out: io::BufWriter::with_capacity(WRITE_BUF, file),
            reserved,
        })
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)
    }

    /// Drops what the file holds: the server sent the whole file instead of the range.
    fn truncate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.reserved = false;
        self.out.get_ref().set_len(0)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Frees blocks reserved past the end of `file` (fallocate KEEP_SIZE) and not written: ext4
/// and XFS free them on a truncate to the file's own size; a hole punched past the end covers
/// filesystems that skip a truncate that changes nothing. Best effort: the bytes written are
/// never touched.
fn release_past_end(file: &File) {
    let Ok(m) = file.metadata() else { return };
    let len = m.len();
    let _ = file.set_len(len);
    use std::os::unix::fs::MetadataExt;
    let on_disk = m.blocks().saturating_mul(512);
    if on_disk > len {
        let _ = rustix::fs::fallocate(
            file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            len,
            on_disk - len,
        );
    }
}

impl Drop for Writer {
    /// On any return (done, failed, cancelled) the file holds every byte counted, and no more
    /// disk than that: what was reserved past its end and not written is given back.
    fn drop(&mut self) {
        let _ = self.out.flush();
        if self.reserved {
            release_past_end(self.out.get_ref());
        }
    }
}

/// What one GET attempt ended with, when it did not finish the file.
enum Attempt {
    /// The connection broke: resume from what is on disk.
    Broken,
    /// The server did not honour the range: start over from byte 0.
    Restart,
    /// A write failed.
    WriteFailed(io::Error),
}

/// Downloads `url` into `partial` (appending to what is there) until it holds `size` bytes.
/// Returns the bytes fetched over the network and where it resumed from.
///
/// The data is not fsynced, as huggingface_hub does not: a crash just after a download can
/// leave a short blob, which [`fetch_into_cache`] notices by its size and resumes.
async fn transfer(
    task: &FileTask<'_>,
    url: &reqwest::Url,
    partial: &Path,
    size: u64,
    cancel: &mut watch::Receiver<bool>,
    tick: &mut dyn FnMut(Tick),
) -> Result<(u64, u64), HubError> {
    let dir = partial.parent().unwrap_or(Path::new("."));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .map_err(|e| HubError::io(partial, &e))?;
    let mut have = file
        .metadata()
        .map_err(|e| HubError::io(partial, &e))?
        .len();
    if have > size {
        file.set_len(0).map_err(|e| HubError::io(partial, &e))?;
        have = 0;
    }
    // Blocks a crashed or killed earlier try reserved past the end are not free space: give
    // them back before counting what is free (else the resume itself would look like a full
    // disk).
    release_past_end(&file);
    let resumed_from = have;
    if let Some(free) = free_bytes(dir)
        && free < size - have
    {
        return Err(disk_full(dir, size - have));
    }
    let mut writer = Writer::new(file, have, size).map_err(|_| disk_full(dir, size - have))?;
    let io_fail = |e: io::Error, have: u64| {
        if is_disk_full(&e) {
            disk_full(dir, size.saturating_sub(have))
        } else {
            HubError::io(partial, &e)
        }
    };
    tick(Tick::Start { size, have });
    let mut fetched = 0u64;
    let mut broken = 0u32;
    let mut restarted = false;
    while have < size {
        if is_cancelled(cancel) {
            return Err(HubError::Cancelled);
        }
        let outcome = get_into(
            task,
            url,
            &mut writer,
            &mut have,
            size,
            cancel,
            tick,
            &mut fetched,
        )
        .await?;
        match outcome {
            None => {}
            Some(Attempt::WriteFailed(e)) => return Err(io_fail(e, have)),
            Some(Attempt::Restart) if !restarted => {
                restarted = true;
                writer.truncate().map_err(|e| io_fail(e, have))?;
                have = 0;
                tick(Tick::Bytes(0));
            }
            Some(Attempt::Restart) => {
                return Err(HubError::Protocol(format!(
                    "the server sent {} in a way that cannot be resumed",
                    task.file
                )));
            }
            Some(Attempt::Broken) => {
                broken += 1;
                tracing::info!(
                    repo = task.repo,
                    file = task.file,
                    have,
                    size,
                    "transfer broke off"
                );
                if broken > task.cfg.max_resumes {
                    writer.finish().map_err(|e| io_fail(e, have))?;
                    return Err(HubError::Dropped {
                        file: task.file.to_string(),
                        done: have,
                        total: size,
                        partial: partial.to_path_buf(),
                    });
                }
                tokio::select! {
                    _ = cancelled(cancel) => return Err(HubError::Cancelled),
                    _ = tokio::time::sleep(Duration::from_millis(200 << broken.min(4))) => {}
                }
            }
        }
    }
    writer.finish().map_err(|e| io_fail(e, have))?;
    Ok((fetched, resumed_from))
}

/// One GET from `have` on; None when the response ended normally (the caller checks the size).
#[allow(clippy::too_many_arguments)]
async fn get_into(
    task: &FileTask<'_>,
    url: &reqwest::Url,
    writer: &mut Writer,
    have: &mut u64,
    size: u64,
    cancel: &mut watch::Receiver<bool>,
    tick: &mut dyn FnMut(Tick),
    fetched: &mut u64,
) -> Result<Option<Attempt>, HubError> {
    let mut req = task.http.get.get(url.clone()).headers(auth(task.cfg));
    if *have > 0 {
        req = req.header(header::RANGE, format!("bytes={have}-"));
    }
    let send = tokio::select! {
        _ = cancelled(cancel) => return Err(HubError::Cancelled),
        r = req.send() => r,
    };
    let mut resp = match send {
        Ok(r) => r,
        // A refused connection on the first byte is the hub being away; mid-file it is a drop.
        Err(e) if *have == 0 && *fetched == 0 => return Err(unreachable(task.cfg, &e)),
        Err(_) => return Ok(Some(Attempt::Broken)),
    };
    let status = resp.status();
    match status {
        StatusCode::OK => {
            // The server ignored the range: its body is the whole file, take it from byte 0.
            if *have > 0 {
                if let Err(e) = writer.truncate() {
                    return Ok(Some(Attempt::WriteFailed(e)));
                }
                *have = 0;
                tick(Tick::Bytes(0));
            }
        }
        StatusCode::PARTIAL_CONTENT => match content_range(resp.headers()) {
            Some((start, _)) if start == *have => {}
            _ => return Ok(Some(Attempt::Restart)),
        },
        StatusCode::RANGE_NOT_SATISFIABLE => return Ok(Some(Attempt::Restart)),
        s => {
            let h = resp.headers().clone();
            return Err(failure(task, s, &h, url.as_str()));
        }
    }
    loop {
        let chunk = tokio::select! {
            biased;
            _ = cancelled(cancel) => return Err(HubError::Cancelled),
            c = resp.chunk() => c,
        };
        match chunk {
            Ok(Some(bytes)) => {
                // A server sending more than it announced must not grow the blob past its size.
                let room = (size - *have).min(bytes.len() as u64) as usize;
                if let Err(e) = writer.write(&bytes[..room]) {
                    return Ok(Some(Attempt::WriteFailed(e)));
                }
                *have += room as u64;
                *fetched += room as u64;
                tick(Tick::Bytes(*have));
                if *have >= size {
                    return Ok(None);
                }
            }
            // The body ended early without an error: treat it as a drop and resume.
            Ok(None) => return Ok((*have < size).then_some(Attempt::Broken)),
            Err(_) => return Ok(Some(Attempt::Broken)),
        }
    }
}

/// Brings one file into the cache or the chosen directory; a file already there is not fetched
/// again. On any error the final path holds nothing new: only the partial file remains.
pub(crate) async fn fetch_file(
    task: &FileTask<'_>,
    cancel: &mut watch::Receiver<bool>,
    tick: &mut dyn FnMut(Tick),
) -> Result<(FileDone, Option<FileMeta>), HubError> {
    if !super::config::valid_repo_path(task.file) {
        return Err(HubError::Invalid(format!(
            "`{}` is not a file path inside a repo",
            task.file
        )));
    }
    match task.dest {
        Dest::Cache => fetch_into_cache(task, cancel, tick).await,
        Dest::Dir(dir) => fetch_into_dir(task, dir, cancel, tick).await,
    }
}

/// A blob of the size the hub announced.
fn blob_ok(blob: &Path, size: u64) -> bool {
    std::fs::metadata(blob).is_ok_and(|m| m.is_file() && m.len() == size)
}

fn cached_done(path: PathBuf, commit: Option<String>) -> FileDone {
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    FileDone {
        local_path: path,
        commit,
        size,
        fetched: 0,
        resumed_from: 0,
    }
}

async fn fetch_into_cache(
    task: &FileTask<'_>,
    cancel: &mut watch::Receiver<bool>,
    tick: &mut dyn FnMut(Tick),
) -> Result<(FileDone, Option<FileMeta>), HubError> {
    let rc = RepoCache::new(&task.cfg.cache_dir, task.repo);
    let from_cache = || {
        let rev = task.pinned.unwrap_or(task.revision);
        rc.cached_file(rev, task.file)
            .map(|p| cached_done(p, rc.commit_for(rev)))
    };
    // A commit never changes: a cached file at a commit needs no question to the hub.
    if (task.cfg.offline || is_commit_hash(task.pinned.unwrap_or(task.revision)))
        && let Some(done) = from_cache()
    {
        return Ok((done, None));
    }
    if task.cfg.offline {
        return Err(HubError::Offline {
            repo: task.repo.to_string(),
            missing: vec![task.file.to_string()],
        });
    }
    let meta = match head(task).await {
        Ok(m) => m,
        Err(e @ HubError::Unreachable { .. }) => {
            return from_cache().map(|d| (d, None)).ok_or(e);
        }
        Err(e) => return Err(e),
    };
    let io_err = |p: &Path, e: io::Error| HubError::io(p, &e);
    let blob = rc.blob(&meta.etag);
    let finish = |fetched: u64, resumed_from: u64| -> Result<FileDone, HubError> {
        rc.write_ref(task.revision, &meta.commit)
            .map_err(|e| io_err(&rc.ref_path(task.revision), e))?;
        let p = rc
            .link(&meta.commit, task.file, &meta.etag)
            .map_err(|e| io_err(&rc.snapshot_file(&meta.commit, task.file), e))?;
        Ok(FileDone {
            local_path: p,
            commit: Some(meta.commit.clone()),
            size: meta.size,
            fetched,
            resumed_from,
        })
    };
    if blob_ok(&blob, meta.size) {
        return Ok((finish(0, 0)?, Some(meta)));
    }
    let blobs = rc.blobs_dir();
    std::fs::create_dir_all(&blobs).map_err(|e| io_err(&blobs, e))?;
    let _lock = lock(&rc.lock_path(&meta.etag), cancel).await?;
    // Another downloader may have finished it while we waited for the lock.
    if blob_ok(&blob, meta.size) {
        return Ok((finish(0, 0)?, Some(meta)));
    }
    let partial = rc.incomplete(&meta.etag);
    if blob.is_file() {
        // A blob shorter than the hub says (a crash before the page cache reached the disk)
        // is a partial download: continue it.
        tracing::warn!(blob = %blob.display(), "cached blob has the wrong size; resuming it");
        std::fs::rename(&blob, &partial).map_err(|e| io_err(&partial, e))?;
    }
    let url = resolve_url(task.cfg, task.repo, &meta.commit, task.file)?;
    let (fetched, resumed_from) = transfer(task, &url, &partial, meta.size, cancel, tick).await?;
    std::fs::rename(&partial, &blob).map_err(|e| io_err(&blob, e))?;
    Ok((finish(fetched, resumed_from)?, Some(meta)))
}

/// huggingface_hub's `local_dir` bookkeeping: `.cache/huggingface/download/<path>.metadata`
/// holds the commit and ETag a file was fetched at.
fn local_meta_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(".cache/huggingface/download")
        .join(format!("{file}.metadata"))
}

fn read_local_meta(dir: &Path, file: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(local_meta_path(dir, file)).ok()?;
    let mut lines = text.lines();
    Some((
        lines.next()?.trim().to_string(),
        lines.next()?.trim().to_string(),
    ))
}

/// Whether `dest` is a file this bookkeeping wrote: its `.metadata` exists and is not older than
/// the file (huggingface_hub's test: a file changed since is the user's, with a second's slack).
fn ours(dir: &Path, file: &str, dest: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(local_meta_path(dir, file)) else {
        return false;
    };
    let Some(stamp) = text
        .lines()
        .nth(2)
        .and_then(|l| l.trim().parse::<f64>().ok())
    else {
        return false;
    };
    let Ok(modified) = std::fs::metadata(dest).and_then(|m| m.modified()) else {
        return false;
    };
    let mtime = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    stamp >= mtime - 1.0
}

/// What an existing `DIR/<path>` means for a download of `meta`: None when it is absent or a
/// download of ours to be replaced, the finished file when it is complete at that ETag.
fn dir_dest_state(
    dir: &Path,
    file: &str,
    dest: &Path,
    meta: &FileMeta,
) -> Result<Option<FileDone>, HubError> {
    if dest.symlink_metadata().is_err() {
        return Ok(None);
    }
    if !ours(dir, file, dest) {
        return Err(HubError::Invalid(format!(
            "{} exists and was not downloaded by dpgui: move it or choose another directory",
            dest.display()
        )));
    }
    let complete = read_local_meta(dir, file).is_some_and(|(_, etag)| etag == meta.etag)
        && std::fs::metadata(dest).is_ok_and(|m| m.is_file() && m.len() == meta.size);
    Ok(complete.then(|| cached_done(dest.to_path_buf(), Some(meta.commit.clone()))))
}

async fn fetch_into_dir(
    task: &FileTask<'_>,
    dir: &Path,
    cancel: &mut watch::Receiver<bool>,
    tick: &mut dyn FnMut(Tick),
) -> Result<(FileDone, Option<FileMeta>), HubError> {
    let dest = dir.join(task.file);
    let known = read_local_meta(dir, task.file);
    if task.cfg.offline {
        return if dest.is_file() {
            Ok((cached_done(dest, known.map(|k| k.0)), None))
        } else {
            Err(HubError::Offline {
                repo: task.repo.to_string(),
                missing: vec![task.file.to_string()],
            })
        };
    }
    let meta = match head(task).await {
        Ok(m) => m,
        Err(e @ HubError::Unreachable { .. }) if dest.is_file() => {
            tracing::info!(%e, "hub unreachable; using the file already in the directory");
            return Ok((cached_done(dest, known.map(|k| k.0)), None));
        }
        Err(e) => return Err(e),
    };
    let io_err = |p: &Path, e: io::Error| HubError::io(p, &e);
    let meta_path = local_meta_path(dir, task.file);
    let write_meta = || -> Result<(), HubError> {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        std::fs::write(
            &meta_path,
            format!("{}\n{}\n{stamp}\n", meta.commit, meta.etag),
        )
        .map_err(|e| io_err(&meta_path, e))
    };
    // A file that is not ours is refused under the lock below: another downloader may be
    // between its rename and its `.metadata` now.
    if let Ok(Some(done)) = dir_dest_state(dir, task.file, &dest, &meta) {
        return Ok((done, Some(meta)));
    }
    let meta_dir = meta_path.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&meta_dir).map_err(|e| io_err(&meta_dir, e))?;
    let partial = meta_dir.join(format!(
        "{}.{}.incomplete",
        Path::new(task.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file"),
        meta.etag
    ));
    // The lock file stays: unlinking it while held would let a waiter on the old file and a
    // newcomer on a new one both write the same partial file (huggingface_hub keeps its too).
    let _lock = lock(&partial.with_extension("lock"), cancel).await?;
    // Another downloader may have finished it (or a file may have appeared) while we waited.
    if let Some(done) = dir_dest_state(dir, task.file, &dest, &meta)? {
        return Ok((done, Some(meta)));
    }
    let url = resolve_url(task.cfg, task.repo, &meta.commit, task.file)?;
    let (fetched, resumed_from) = transfer(task, &url, &partial, meta.size, cancel, tick).await?;
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
    }
    std::fs::rename(&partial, &dest).map_err(|e| io_err(&dest, e))?;
    write_meta()?;
    Ok((
        FileDone {
            local_path: dest,
            commit: Some(meta.commit.clone()),
            size: meta.size,
            fetched,
            resumed_from,
        },
        Some(meta),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_urls_encode_each_segment() {
        let cfg = HubConfig::new("http://127.0.0.1:8080/", Path::new("/c"));
        let u = resolve_url(&cfg, "o/n", "refs/pr/1", "sub dir/a#b.safetensors").unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8080/o/n/resolve/refs%2Fpr%2F1/sub%20dir/a%23b.safetensors"
        );
        let cfg = HubConfig::new("https://mirror.example/hf", Path::new("/c"));
        let u = resolve_url(&cfg, "o/n", "main", "x.bin").unwrap();
        assert_eq!(
            u.as_str(),
            "https://mirror.example/hf/o/n/resolve/main/x.bin"
        );
    }

    #[test]
    fn only_same_origin_redirects_are_followed_with_the_token() {
        for base in [
            "http://127.0.0.1:8080/o/n/resolve/main/x.bin",
            "https://huggingface.co/o/n/resolve/main/x.bin",
        ] {
            let url = reqwest::Url::parse(base).unwrap();
            let follow = |loc: &str| same_origin_redirect(&url, loc).unwrap();
            // A renamed repo: relative, same host.
            let next = follow("/o/n2/resolve/main/x.bin").unwrap();
            assert_eq!(next.origin(), url.origin());
            assert_eq!(next.path(), "/o/n2/resolve/main/x.bin");
            assert!(follow("../../n2/resolve/main/x.bin").is_some());
            for loc in [
                "\\\\evil.com/x",
                "/\\evil.com",
                "\\/evil.com/x",
                "http:evil.com",
                "https:evil.com",
                "http:\\\\evil.com/x",
                "//evil.com/x",
                "https://evil.com/x",
                "https://huggingface.co:444/x",
            ] {
                if let Some(next) = follow(loc) {
                    assert_eq!(next.origin(), url.origin(), "{loc} from {base} -> {next}");
                    assert_ne!(next.host_str(), Some("evil.com"), "{loc} from {base}");
                }
            }
        }
        let url = reqwest::Url::parse("https://huggingface.co/o/n/resolve/main/x.bin").unwrap();
        for loc in ["\\\\evil.com/x", "/\\evil.com", "http:evil.com"] {
            // Each of these would reach evil.com (or drop TLS) if joined and followed.
            assert_ne!(url.join(loc).unwrap().origin(), url.origin(), "{loc}");
            assert_eq!(same_origin_redirect(&url, loc).unwrap(), None, "{loc}");
        }
    }

    #[test]
    fn content_range_and_etags() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-range",
            HeaderValue::from_static("bytes 100-199/200"),
        );
        assert_eq!(content_range(&h), Some((100, Some(200))));
        h.insert("content-range", HeaderValue::from_static("bytes 5-9/*"));
        assert_eq!(content_range(&h), Some((5, None)));
        assert!(valid_etag("a3f1c0de"));
        assert!(!valid_etag("../../x"));
        assert!(!valid_etag("a/b"));
    }

    #[test]
    fn a_full_disk_is_recognised_and_reports_free_space() {
        // /dev/full answers every write with ENOSPC, as a full filesystem does.
        let Ok(mut f) = OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("note: /dev/full is absent; skipped");
            return;
        };
        let e = f
            .write_all(&[0u8; 4096])
            .and_then(|_| f.flush())
            .unwrap_err();
        assert!(is_disk_full(&e), "{e:?}");
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        match disk_full(dir.path(), 1 << 40) {
            HubError::DiskFull {
                needed, free: f, ..
            } => {
                assert_eq!(needed, 1 << 40);
                // Other processes write too: the figure is from the same filesystem, roughly.
                assert!(f.abs_diff(free) < 1 << 30);
            }
            other => panic!("{other:?}"),
        }
    }
}
