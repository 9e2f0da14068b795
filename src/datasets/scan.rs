//! The directory scan: list the top level once, then workers (one per CPU, each at nice 10 so the
//! dashboard is never starved) stat every entry and read what changed since the last scan.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::cache::{Entry, Facts, FileKey, ScanCache};
use super::probe::{VIDEO_PROBE_TIMEOUT, probe_image, probe_image_file, probe_video_file};
use super::{
    ArchiveSummary, CacheInfo, Caption, CaptionsJson, DirectoryScan, MediaEntry, MediaHeader,
    MediaKind, ScanControl, ScanError, ScanRequest, VideoProbe,
};
use crate::trainer::dataset::files::{self, FileKind};

/// Captions larger than this are not read (reported unreadable): no caption is that long.
const MAX_CAPTION_BYTES: u64 = 16 << 20;
/// `captions.json` larger than this is not parsed.
const MAX_CAPTIONS_JSON_BYTES: u64 = 1 << 30;
/// The nice value scan workers give themselves.
const WORKER_NICE: i32 = 10;
/// Names kept per stale cache.
const NEWER_LISTED: usize = 20;

pub(crate) const NO_FFPROBE: &str =
    "frame count and size unknown: ffprobe not found (apt install ffmpeg)";

/// What one directory entry turned out to be.
enum Outcome {
    Dir,
    NotFile,
    Ignored,
    CaptionsJson(FileKey),
    /// A caption, an image, a video or an unknown file, with what reading it found (`None`: a
    /// video while no ffprobe is available).
    File {
        kind: FileKind,
        key: FileKey,
        facts: Option<Facts>,
        reused: bool,
        /// Worth remembering: not a transient failure (permission, timeout).
        cacheable: bool,
    },
}

struct Listed {
    /// The name (lossy when it is not UTF-8).
    display: String,
    /// The exact name, kept only when it is not UTF-8.
    raw: Option<OsString>,
    is_dir: bool,
    is_reg: bool,
}

impl Listed {
    fn os_name(&self) -> &OsStr {
        self.raw
            .as_deref()
            .unwrap_or_else(|| OsStr::new(self.display.as_str()))
    }
}

#[allow(clippy::unnecessary_cast)] // the stat field types differ between targets
fn file_key(st: &rustix::fs::Stat) -> FileKey {
    FileKey {
        size: st.st_size as u64,
        mtime_ns: (st.st_mtime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec as i64),
        ino: st.st_ino as u64,
    }
}

fn key_time(key: &FileKey) -> SystemTime {
    if key.mtime_ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(key.mtime_ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(key.mtime_ns.unsigned_abs())
    }
}

/// Puts the calling thread (only it: Linux nice values are per thread) at nice 10, unless it is
/// already lower priority. Children it spawns (ffprobe) inherit it.
fn lower_own_priority() {
    use rustix::process::{Pid, getpriority_process, setpriority_process};
    let tid = nix::unistd::gettid().as_raw();
    if let Some(pid) = Pid::from_raw(tid) {
        let now = getpriority_process(Some(pid)).unwrap_or(0);
        if now < WORKER_NICE {
            let _ = setpriority_process(Some(pid), WORKER_NICE);
        }
    }
}

/// Gives the calling worker its own file-descriptor table. With one table shared by all
/// threads, every open and close takes the table's lock and every `openat` on the directory fd
/// takes a reference on it (atomics the two workers fight over): `perf` put ~10% of a 100,000-file
/// scan there. Only for headless scans: the private copy holds every fd the process had when the
/// worker started (the dashboard's sockets, pipes, download locks) until the worker ends.
fn private_fd_table() {
    // SAFETY: a worker only uses the directory fd (opened before it started, so in its copy)
    // and the fds it opens and closes itself; it never hands an fd to another thread.
    if let Err(e) = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) } {
        tracing::debug!("scan worker keeps the shared fd table: {e}");
    }
}

fn open_at(dir: &OwnedFd, name: &OsStr) -> std::io::Result<File> {
    // NONBLOCK: if a FIFO replaced the file since it was listed, opening must not wait for a
    // writer.
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Python's `str.isspace` (what `strip()` removes): Unicode White_Space plus the four ASCII
/// separators 0x1C..0x1F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A caption as diffusion-pipe reads it: `open(f).read().strip()` (UTF-8, strict). The bool:
/// worth caching (not a transient read error).
fn read_caption(f: &mut File, size: u64) -> (Result<bool, String>, bool) {
    if size > MAX_CAPTION_BYTES {
        return (Err(format!("{size} bytes: not read as a caption")), true);
    }
    // Exactly the stat's size: no extra read just to see the end of the file.
    let mut buf = vec![0u8; size as usize];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(format!("unreadable: {e}")), false),
        }
    }
    buf.truncate(n);
    match std::str::from_utf8(&buf) {
        Ok(s) => (Ok(s.chars().all(py_space)), true),
        Err(e) => (
            Err(format!(
                "not UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            )),
            true,
        ),
    }
}

struct Ctx<'a> {
    dirfd: &'a OwnedFd,
    canonical: &'a Path,
    /// Set on the first video met (ffprobe is only looked for when there are videos), or given.
    video_probe: &'a OnceLock<VideoProbe>,
    cached: &'a HashMap<String, (FileKey, Facts)>,
    /// The ffprobe version the cached video facts came from.
    cached_ffprobe: Option<&'a str>,
}

impl Ctx<'_> {
    fn video_probe(&self) -> &VideoProbe {
        self.video_probe.get_or_init(detected_ffprobe)
    }
}

fn ffprobe_version(v: &VideoProbe) -> Option<&str> {
    match v {
        VideoProbe::Ffprobe { version, .. } => Some(version),
        VideoProbe::Unavailable => None,
    }
}

fn examine(ctx: &Ctx<'_>, item: &Listed) -> Outcome {
    if item.is_dir {
        return Outcome::Dir;
    }
    let kind = files::classify(&item.display);
    if kind == FileKind::Ignored && item.is_reg {
        return Outcome::Ignored;
    }
    let name = item.os_name();
    // No hashing at all on a cold scan.
    let cached = if ctx.cached.is_empty() {
        None
    } else {
        ctx.cached.get(&item.display)
    };
    // A regular file with nothing cached (a cold scan): open it first and stat the open file,
    // one path lookup instead of two. Otherwise (a symlink or unknown type, where opening could
    // hit a device; a video, read by path; a likely cache hit) stat by name first.
    let mut opened = None;
    let st = if item.is_reg && cached.is_none() && kind != FileKind::Video {
        match open_at(ctx.dirfd, name) {
            Ok(f) => match rustix::fs::fstat(&f) {
                Ok(st) => {
                    opened = Some(f);
                    st
                }
                Err(_) => return Outcome::NotFile,
            },
            Err(e) => match rustix::fs::statat(ctx.dirfd, name, AtFlags::empty()) {
                // Listed, there, but not openable (permissions): unreadable, not cached.
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                    let key = file_key(&st);
                    let facts = match kind {
                        FileKind::Caption => Facts::Caption(Err(format!("unreadable: {e}"))),
                        _ => Facts::Header(Err(format!("unreadable: {e}"))),
                    };
                    return Outcome::File {
                        kind,
                        key,
                        facts: Some(facts),
                        reused: false,
                        cacheable: false,
                    };
                }
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    return Outcome::Dir;
                }
                _ => return Outcome::NotFile,
            },
        }
    } else {
        // Follow symlinks, as Python's `is_file()` does.
        match rustix::fs::statat(ctx.dirfd, name, AtFlags::empty()) {
            Ok(st) => st,
            Err(_) => return Outcome::NotFile,
        }
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => return Outcome::Dir,
        FileType::RegularFile => {}
        _ => return Outcome::NotFile,
    }
    let key = file_key(&st);
    match kind {
        FileKind::Ignored => return Outcome::Ignored,
        FileKind::CaptionsJson => return Outcome::CaptionsJson(key),
        _ => {}
    }
    if let Some((k, facts)) = cached
        && *k == key
        && matches!(
            (kind == FileKind::Caption, facts),
            (true, Facts::Caption(_)) | (false, Facts::Header(_))
        )
        // Video facts hold only for the ffprobe that produced them.
        && (kind != FileKind::Video
            || ffprobe_version(ctx.video_probe()).is_some_and(|v| Some(v) == ctx.cached_ffprobe))
    {
        return Outcome::File {
            kind,
            key,
            facts: Some(facts.clone()),
            reused: true,
            cacheable: true,
        };
    }
    let (facts, cacheable) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe(ctx, item, kind, &key, opened)
    })) {
        Ok(r) => r,
        Err(_) => (
            Some(Facts::Header(Err(
                "could not be read (internal error)".into()
            ))),
            false,
        ),
    };
    Outcome::File {
        kind,
        key,
        facts,
        reused: false,
        cacheable,
    }
}

/// Reads one file's facts (`opened`: the file, when the caller has it open already). The bool:
/// worth caching (not a transient failure).
fn probe(
    ctx: &Ctx<'_>,
    item: &Listed,
    kind: FileKind,
    key: &FileKey,
    opened: Option<File>,
) -> (Option<Facts>, bool) {
    let open = |opened: Option<File>| match opened {
        Some(f) => Ok(f),
        None => open_at(ctx.dirfd, item.os_name()),
    };
    match kind {
        FileKind::Caption => match open(opened) {
            Ok(mut f) => {
                let (r, cacheable) = read_caption(&mut f, key.size);
                (Some(Facts::Caption(r)), cacheable)
            }
            Err(e) => (Some(Facts::Caption(Err(format!("unreadable: {e}")))), false),
        },
        FileKind::Video => {
            let VideoProbe::Ffprobe { path: ffprobe, .. } = ctx.video_probe() else {
                return (None, false);
            };
            let path = ctx.canonical.join(item.os_name());
            let r = probe_video_file(ffprobe, &path, VIDEO_PROBE_TIMEOUT);
            let cacheable = !matches!(&r, Err(e) if e.starts_with("timed out"));
            // Readable at all? ffprobe's own message for a permission error is vague.
            if r.is_err()
                && let Err(e) = open_at(ctx.dirfd, item.os_name())
            {
                return (Some(Facts::Header(Err(format!("unreadable: {e}")))), false);
            }
            (Some(Facts::Header(r)), cacheable)
        }
        _ => match open(opened) {
            Ok(mut f) => (Some(Facts::Header(probe_image(&mut f, key.size))), true),
            Err(e) => (Some(Facts::Header(Err(format!("unreadable: {e}")))), false),
        },
    }
}

/// Entries handed to a worker at a time (fewer hand-offs than one by one, small enough that
/// the workers finish together).
const CHUNK: usize = 64;

/// Consecutive directory entries, from index `start` of the listing, and what a worker found
/// of them (fewer outcomes than entries after a cancel).
struct Chunk {
    start: usize,
    listed: Vec<Listed>,
    outcomes: Vec<Outcome>,
}

/// The chunks listed and not yet taken by a worker; `closed` once the listing has ended.
#[derive(Default)]
struct Feed {
    queue: std::sync::Mutex<(std::collections::VecDeque<Chunk>, bool)>,
    ready: std::sync::Condvar,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, (std::collections::VecDeque<Chunk>, bool)> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, chunk: Chunk) {
        self.lock().0.push_back(chunk);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }

    /// The next chunk; None once the listing has ended and every chunk is taken.
    fn take(&self) -> Option<Chunk> {
        let mut q = self.lock();
        loop {
            if let Some(c) = q.0.pop_front() {
                return Some(c);
            }
            if q.1 {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct CloseOnDrop<'a>(&'a Feed);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Lists the top level of `dirfd` into `feed`, a chunk at a time (`ctl.total` counts the
/// entries so far). d_type comes from the listing: no stat here; an unknown type is examined
/// like a symlink (stat by name).
fn list(dirfd: &OwnedFd, ctl: &ScanControl, feed: &Feed) -> rustix::io::Result<()> {
    use std::mem::MaybeUninit;
    use std::os::unix::ffi::OsStrExt;
    // Its own open file: reading the directory moves the offset of the fd it reads.
    let fd = rustix::fs::openat(
        dirfd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut dir = rustix::fs::RawDir::new(&fd, &mut buf);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut start = 0;
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let ft = entry.file_type();
        let (display, raw) = match std::str::from_utf8(name) {
            Ok(s) => (s.to_string(), None),
            Err(_) => {
                let os = OsStr::from_bytes(name);
                (os.to_string_lossy().into_owned(), Some(os.to_os_string()))
            }
        };
        chunk.push(Listed {
            display,
            raw,
            is_dir: ft == FileType::Directory,
            is_reg: ft == FileType::RegularFile,
        });
        if chunk.len() == CHUNK {
            if ctl.is_cancelled() {
                return Ok(());
            }
            let listed = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            ctl.total.fetch_add(listed.len() as u64, Ordering::Relaxed);
            feed.push(Chunk {
                start,
                outcomes: Vec::with_capacity(listed.len()),
                listed,
            });
            start += CHUNK;
        }
    }
    if !chunk.is_empty() {
        ctl.total.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        feed.push(Chunk {
            start,
            outcomes: Vec::with_capacity(chunk.len()),
            listed: chunk,
        });
    }
    Ok(())
}

/// How the scan learns about ffprobe.
enum Prober {
    /// Look on PATH, and run `ffprobe -version`, only when the directory has videos.
    Detect,
    Given(VideoProbe),
}

/// `ffprobe` on PATH, checked once per process and PATH value (running it costs ~50 ms).
fn detected_ffprobe() -> VideoProbe {
    static SEEN: std::sync::Mutex<Option<(Option<OsString>, VideoProbe)>> =
        std::sync::Mutex::new(None);
    let path = std::env::var_os("PATH");
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, v)) = &*seen
        && *p == path
    {
        return v.clone();
    }
    let v = VideoProbe::detect();
    *seen = Some((path, v.clone()));
    v
}

/// Scans with the `ffprobe` found on PATH (see [`scan_directory_with`]). When the directory has
/// no videos, ffprobe is not run: `video_probe` is then `Ffprobe` with an empty `version` (found
/// on PATH) or `Unavailable`.
pub fn scan_directory(
    req: &ScanRequest,
    ctl: &ScanControl,
    cache: Option<&ScanCache>,
) -> Result<DirectoryScan, ScanError> {
    scan(req, ctl, cache, Prober::Detect)
}

/// Scans the top level of `req.path` as diffusion-pipe will read it, videos probed with
/// `video_probe`. Per-file problems (unreadable, corrupt) are reported in the result; only a
/// missing or unreadable directory, or a cancel, is an error. Facts of unchanged files come from
/// `cache`; fresh ones are saved to it (also on cancel, so the next scan resumes).
pub fn scan_directory_with(
    req: &ScanRequest,
    ctl: &ScanControl,
    cache: Option<&ScanCache>,
    video_probe: VideoProbe,
) -> Result<DirectoryScan, ScanError> {
    scan(req, ctl, cache, Prober::Given(video_probe))
}

fn scan(
    req: &ScanRequest,
    ctl: &ScanControl,
    cache: Option<&ScanCache>,
    prober: Prober,
) -> Result<DirectoryScan, ScanError> {
    let path = &req.path;
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ScanError::NotFound(path.clone()),
        _ => ScanError::Unreadable(path.clone(), e.to_string()),
    })?;
    if !meta.is_dir() {
        return Err(ScanError::NotADirectory(path.clone()));
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    let unreadable = |e: std::io::Error| ScanError::Unreadable(path.clone(), e.to_string());
    let dirfd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| unreadable(e.into()))?;

    let video_probe = OnceLock::new();
    if let Prober::Given(v) = prober {
        let _ = video_probe.set(v);
    }
    let (cached, cached_ffprobe) = cache.map(|c| c.load(&canonical)).unwrap_or_default();
    let ctx = Ctx {
        dirfd: &dirfd,
        canonical: &canonical,
        video_probe: &video_probe,
        cached: &cached,
        cached_ffprobe: cached_ffprobe.as_deref(),
    };
    ctl.done.store(0, Ordering::Relaxed);
    ctl.total.store(0, Ordering::Relaxed);

    // This thread lists the directory and hands out chunks of entries as they come; workers
    // examine them meanwhile (listing 100,000 entries is ~35 ms a worker would otherwise wait).
    let feed = Feed::default();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut chunks: Vec<Chunk> = Vec::new();
    let work = || {
        let mut mine = Vec::new();
        while let Some(mut chunk) = feed.take() {
            for item in &chunk.listed {
                if ctl.is_cancelled() {
                    break;
                }
                // Probes are unwind-guarded already; this keeps any other panic to its file.
                let o =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| examine(&ctx, item)))
                        .unwrap_or(Outcome::NotFile);
                chunk.outcomes.push(o);
            }
            ctl.done
                .fetch_add(chunk.outcomes.len() as u64, Ordering::Relaxed);
            mine.push(chunk);
        }
        mine
    };
    let listing = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("scan-worker".into())
                    .spawn_scoped(s, || {
                        if ctl.foreground {
                            private_fd_table();
                        } else {
                            lower_own_priority();
                        }
                        work()
                    })
                    .ok()
            })
            .collect();
        let listing = {
            // Closed however the listing ends (a panic included): workers never wait forever.
            let _close = CloseOnDrop(&feed);
            list(&dirfd, ctl, &feed)
        };
        if handles.is_empty() {
            // No thread could be started: examine here.
            chunks.extend(work());
        }
        for h in handles {
            // A worker cannot panic on file content (probes are unwind-guarded); if it did,
            // its chunks would be missing from the result rather than taking the caller down.
            if let Ok(mine) = h.join() {
                chunks.extend(mine);
            }
        }
        listing
    });
    listing.map_err(|e| unreadable(e.into()))?;
    chunks.sort_unstable_by_key(|c| c.start);
    let n = chunks.iter().map(|c| c.listed.len()).sum();
    let mut listed: Vec<Listed> = Vec::with_capacity(n);
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(n);
    for c in chunks {
        let examined = c.outcomes.len();
        outcomes.extend(c.outcomes.into_iter().map(Some));
        outcomes.extend((examined..c.listed.len()).map(|_| None));
        listed.extend(c.listed);
    }
    // The output order, by name. Names are unique, so an unstable sort is exact.
    let mut order: Vec<u32> = (0..listed.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| listed[a as usize].display.cmp(&listed[b as usize].display));

    let cancelled = ctl.is_cancelled();
    let video_probe = video_probe.into_inner();
    if let Some(cache) = cache {
        // Videos met: their facts are this ffprobe's. None met: what was stored still holds.
        let version = match &video_probe {
            Some(v) => ffprobe_version(v),
            None => cached_ffprobe.as_deref(),
        };
        let keep_cached_videos = version == cached_ffprobe.as_deref();
        save_cache(
            cache,
            &canonical,
            version,
            &listed,
            &outcomes,
            &cached,
            cancelled.then_some(keep_cached_videos),
        );
    }
    if cancelled {
        return Err(ScanError::Cancelled);
    }
    // No video needed ffprobe: say whether it is on PATH, without running it.
    let video_probe = video_probe.unwrap_or_else(|| match super::probe::find_on_path("ffprobe") {
        Some(path) => VideoProbe::Ffprobe {
            path,
            version: String::new(),
        },
        None => VideoProbe::Unavailable,
    });
    let out = assemble(
        req,
        &dirfd,
        &meta,
        Examined {
            listed,
            outcomes,
            order,
        },
        video_probe,
        ctl,
    );
    // Reading archive members can be cancelled too.
    if ctl.is_cancelled() {
        return Err(ScanError::Cancelled);
    }
    Ok(out)
}

fn save_cache(
    cache: &ScanCache,
    canonical: &Path,
    ffprobe: Option<&str>,
    listed: &[Listed],
    outcomes: &[Option<Outcome>],
    cached: &HashMap<String, (FileKey, Facts)>,
    // Some(keep cached video facts) after a cancel: then unreached entries keep their facts.
    cancelled: Option<bool>,
) {
    let mut probed = 0;
    let mut entries = Vec::new();
    for (item, o) in listed.iter().zip(outcomes) {
        if let Some(Outcome::File {
            key,
            facts: Some(facts),
            reused,
            cacheable: true,
            ..
        }) = o
        {
            probed += usize::from(!reused);
            entries.push(Entry {
                name: item.display.clone(),
                key: *key,
                facts: facts.clone(),
            });
        }
    }
    if let Some(keep_videos) = cancelled {
        // Keep what an earlier scan knew about the entries not reached this time.
        let seen: HashSet<&str> = listed
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| o.is_some())
            .map(|(item, _)| item.display.as_str())
            .collect();
        for (name, (key, facts)) in cached {
            if !seen.contains(name.as_str())
                && (keep_videos || files::classify(name) != FileKind::Video)
            {
                entries.push(Entry {
                    name: name.clone(),
                    key: *key,
                    facts: facts.clone(),
                });
            }
        }
    }
    // Nothing new and nothing gone: the stored file is already right.
    if probed == 0 && entries.len() == cached.len() {
        return;
    }
    cache.save_in_background(canonical, ffprobe, entries);
}

/// The stem diffusion-pipe matches captions, masks and control images by: of the file name, or
/// for an archive member ("archive.tar/dir/a.png") of its last component.
fn media_stem(name: &str, key_start: usize) -> &str {
    // Only a member's name holds a '/': top-level names skip the search.
    if key_start == 0 {
        files::stem(name)
    } else {
        files::stem(name.rsplit('/').next().unwrap_or(name))
    }
}

/// Image sizes (PIL's) of `paths`, read in parallel.
fn probe_sizes<'p>(paths: &[&'p Path]) -> HashMap<&'p Path, Result<(u32, u32), String>> {
    let probe = |p: &&'p Path| (*p, probe_image_file(p).map(|m| (m.width, m.height)));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if paths.len() < 64 || threads == 1 {
        return paths.iter().map(probe).collect();
    }
    let part = paths.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(part)
            .map(|chunk| s.spawn(move || chunk.iter().map(probe).collect::<Vec<_>>()))
            .collect();
        let mut out = HashMap::with_capacity(paths.len());
        for (chunk, h) in paths.chunks(part).zip(handles) {
            match h.join() {
                Ok(v) => out.extend(v),
                // A probe cannot panic on content; if one did, that part stays unread.
                Err(_) => out.extend(
                    chunk
                        .iter()
                        .map(|p| (*p, Err("could not be read (internal error)".to_string()))),
                ),
            }
        }
        out
    })
}

/// The regular files (symlinks followed) at the top level of `dir`, by stem, as diffusion-pipe
/// maps them (`{p.stem: p for p in dir.glob('*') if p.is_file()}`): in directory order, so a
/// later file with the same stem replaces an earlier one.
fn stems(dir: &Path) -> Result<HashMap<String, PathBuf>, String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = HashMap::new();
    for entry in rd.flatten() {
        let is_file = match entry.file_type() {
            Ok(t) if t.is_file() => true,
            Ok(t) if t.is_dir() => false,
            _ => std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()),
        };
        if is_file {
            let name = entry.file_name().to_string_lossy().into_owned();
            out.insert(files::stem(&name).to_string(), entry.path());
        }
    }
    Ok(out)
}

/// Parses `captions.json` as diffusion-pipe uses it: an object of file name → list of captions.
fn read_captions_json(dirfd: &OwnedFd, key: &FileKey) -> (CaptionsJson, HashMap<String, Caption>) {
    let mut cj = CaptionsJson {
        bytes: key.size,
        modified: key_time(key),
        error: None,
        entries: 0,
        overridden_txt: Vec::new(),
        unused_keys: Vec::new(),
        invalid_keys: Vec::new(),
    };
    let mut map = HashMap::new();
    if key.size > MAX_CAPTIONS_JSON_BYTES {
        cj.error = Some(format!("{} bytes: too large to check", key.size));
        return (cj, map);
    }
    let mut bytes = Vec::new();
    let read = open_at(dirfd, &OsString::from(files::CAPTIONS_JSON))
        .and_then(|mut f| f.read_to_end(&mut bytes));
    if let Err(e) = read {
        cj.error = Some(format!("unreadable: {e}"));
        return (cj, map);
    }
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            cj.error = Some(format!("not valid JSON: {e}"));
            return (cj, map);
        }
    };
    let Some(obj) = value.as_object() else {
        cj.error = Some("not a JSON object of file name → list of captions".into());
        return (cj, map);
    };
    cj.entries = obj.len();
    for (k, v) in obj {
        let caption = match v {
            // `dict.get` gives None for null: the same as no entry.
            serde_json::Value::Null => Caption::Missing,
            serde_json::Value::Array(items) if items.iter().all(|i| i.is_string()) => {
                Caption::Json {
                    empty: items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|s| s.chars().all(py_space))),
                }
            }
            _ => {
                cj.invalid_keys.push(k.clone());
                Caption::Unreadable {
                    reason: "captions.json entry is not a list of strings".into(),
                }
            }
        };
        map.insert(k.clone(), caption);
    }
    cj.invalid_keys.sort();
    (cj, map)
}

/// Size, file count and newest modification of a tree, symlinks not followed.
fn tree_stats(root: &Path) -> (u64, u64, Option<SystemTime>) {
    let (mut bytes, mut count, mut newest) = (0u64, 0u64, None::<SystemTime>);
    let mut stack = vec![root.to_path_buf()];
    let mut budget = 2_000_000usize; // entries: a runaway tree must not stall the scan
    while let Some(dir) = stack.pop() {
        if let Ok(m) = std::fs::symlink_metadata(&dir)
            && let Ok(t) = m.modified()
        {
            newest = newest.max(Some(t));
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return (bytes, count, newest);
            }
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                bytes += m.len();
                count += 1;
                if let Ok(t) = m.modified() {
                    newest = newest.max(Some(t));
                }
            }
        }
    }
    (bytes, count, newest)
}

fn caches(path: &Path, inputs: &[(String, SystemTime)]) -> Vec<CacheInfo> {
    let root = path.join(files::CACHE_DIR);
    let Ok(rd) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        let symlink = e.file_type().is_ok_and(|t| t.is_symlink());
        if !std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let (bytes, files, newest) = if symlink {
            (0, 0, std::fs::metadata(&p).and_then(|m| m.modified()).ok())
        } else {
            tree_stats(&p)
        };
        let newer: Vec<&String> = match newest {
            Some(n) => inputs
                .iter()
                .filter(|(_, t)| *t > n)
                .map(|(s, _)| s)
                .collect(),
            None => Vec::new(),
        };
        out.push(CacheInfo {
            name: e.file_name().to_string_lossy().into_owned(),
            bytes,
            files,
            newest,
            symlink,
            stale: !newer.is_empty(),
            newer_count: newer.len(),
            newer_inputs: newer.into_iter().take(NEWER_LISTED).cloned().collect(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A medium found, before its caption, mask and control image are matched.
struct Found {
    name: String,
    kind: MediaKind,
    key: FileKey,
    header: Result<MediaHeader, String>,
    /// Where its captions.json key starts in `name`: 0, or past "archive.tar/" for a member.
    key_start: usize,
}

impl Found {
    fn new(
        name: String,
        kind: MediaKind,
        key: FileKey,
        header: Result<MediaHeader, String>,
    ) -> Found {
        Found {
            name,
            kind,
            key,
            header,
            key_start: 0,
        }
    }
}

/// The listing and what the workers made of it: `outcomes[i]` is for `listed[i]`; `order`
/// sorts them by name.
struct Examined {
    listed: Vec<Listed>,
    outcomes: Vec<Option<Outcome>>,
    order: Vec<u32>,
}

fn assemble(
    req: &ScanRequest,
    dirfd: &OwnedFd,
    dir_meta: &std::fs::Metadata,
    examined: Examined,
    video_probe: VideoProbe,
    ctl: &ScanControl,
) -> DirectoryScan {
    let Examined {
        mut listed,
        mut outcomes,
        order,
    } = examined;
    let mut media: Vec<Found> = Vec::new();
    let mut tars: Vec<(String, FileKey)> = Vec::new();
    let mut captions: Vec<(String, FileKey, Result<bool, String>)> = Vec::new();
    let mut captions_json_key = None;
    let (mut subdirectories, mut other_files, mut ignored_files, mut not_files) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut reused, mut probed) = (0, 0);
    let mut has_cache_dir = false;
    for &i in &order {
        let name = std::mem::take(&mut listed[i as usize].display);
        let o = outcomes[i as usize].take();
        match o {
            None => not_files.push(name),
            Some(Outcome::Dir) => {
                if name == files::CACHE_DIR {
                    has_cache_dir = true;
                } else {
                    subdirectories.push(name);
                }
            }
            Some(Outcome::NotFile) => not_files.push(name),
            Some(Outcome::Ignored) => ignored_files.push(name),
            Some(Outcome::CaptionsJson(k)) => captions_json_key = Some(k),
            Some(Outcome::File {
                kind,
                key,
                facts,
                reused: r,
                ..
            }) => {
                if facts.is_some() {
                    if r {
                        reused += 1;
                    } else {
                        probed += 1;
                    }
                }
                match (kind, facts) {
                    (FileKind::Caption, Some(Facts::Caption(c))) => captions.push((name, key, c)),
                    (FileKind::Video, None) => media.push(Found::new(
                        name,
                        MediaKind::Video,
                        key,
                        Err(NO_FFPROBE.into()),
                    )),
                    (FileKind::Video, Some(Facts::Header(h))) => {
                        media.push(Found::new(name, MediaKind::Video, key, h))
                    }
                    (FileKind::Image, Some(Facts::Header(h))) => {
                        media.push(Found::new(name, MediaKind::Image, key, h))
                    }
                    // Unknown suffix: a medium only if PIL would open it.
                    (_, Some(Facts::Header(Ok(h)))) => {
                        media.push(Found::new(name, MediaKind::Image, key, Ok(h)))
                    }
                    _ => {
                        if files::is_tar(&name) {
                            tars.push((name.clone(), key));
                        }
                        other_files.push(name)
                    }
                }
            }
        }
    }

    // Members of .tar archives: media too, to diffusion-pipe.
    let mut archives = Vec::new();
    for (tar, key) in &tars {
        let listing = match open_at(dirfd, OsStr::new(tar)) {
            Ok(f) => {
                super::archive::read_members(std::io::BufReader::new(f), &|| ctl.is_cancelled())
            }
            Err(e) => super::archive::Listing {
                error: Some(format!("cannot open: {e}")),
                ..Default::default()
            },
        };
        for m in &listing.members {
            let member_key = FileKey {
                size: m.bytes,
                ..*key
            };
            media.push(Found {
                name: format!("{tar}/{}", m.name),
                kind: m.kind,
                key: member_key,
                header: m.header.clone(),
                key_start: tar.len() + 1,
            });
        }
        archives.push(ArchiveSummary {
            name: tar.clone(),
            members: listing.members.len(),
            directories: listing.directories,
            error: listing.error,
        });
    }
    if !tars.is_empty() {
        media.sort_by(|a, b| a.name.cmp(&b.name));
    }

    let (captions_json, json_captions) = match captions_json_key {
        Some(k) => {
            let (mut cj, map) = read_captions_json(dirfd, &k);
            cj.overridden_txt = captions.iter().map(|(n, _, _)| n.clone()).collect();
            let names: HashSet<&str> = media.iter().map(|m| &m.name[m.key_start..]).collect();
            cj.unused_keys = map
                .keys()
                .filter(|k| !names.contains(k.as_str()))
                .cloned()
                .collect();
            cj.unused_keys.sort();
            (Some(cj), Some(map))
        }
        None => (None, None),
    };

    let masks = req.mask_path.as_deref().map(stems);
    let controls = req.control_path.as_deref().map(stems);
    let mask_error = masks.as_ref().and_then(|r| r.as_ref().err().cloned());
    let control_error = controls.as_ref().and_then(|r| r.as_ref().err().cloned());
    let default_mask_error =
        req.default_mask_file
            .as_deref()
            .and_then(|p| match std::fs::metadata(p) {
                Ok(m) if m.is_file() => None,
                Ok(_) => Some(format!("{} is not a file", p.display())),
                Err(e) => Some(format!("{}: {e}", p.display())),
            });
    let default_mask = req
        .default_mask_file
        .as_deref()
        .filter(|_| default_mask_error.is_none());
    // As diffusion-pipe picks a medium's mask: its stem's file in mask_path, else the default.
    let mask_for = |stem: &str| {
        match &masks {
            Some(Ok(m)) => m.get(stem).map(PathBuf::as_path),
            _ => None,
        }
        .or(default_mask)
    };
    // Mask sizes, read once per mask file (one default mask may serve every medium), on all
    // cores: a dataset may have as many masks as images.
    let has_masks = matches!(masks, Some(Ok(_))) || default_mask.is_some();
    let mut wanted: Vec<&Path> = media
        .iter()
        .filter(|m| has_masks && m.header.is_ok())
        .filter_map(|m| mask_for(media_stem(&m.name, m.key_start)))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mask_sizes = probe_sizes(&wanted);

    // Captions are sorted by name (the listing is): find `<stem>.txt` by binary search, without
    // building the name.
    let mut used_captions = vec![false; captions.len()];
    let find_caption = |stem: &str| {
        captions
            .binary_search_by(|(n, _, _)| {
                // Bytes: a split inside a multi-byte character must not panic.
                let (head, tail) = n.as_bytes().split_at(n.len().min(stem.len()));
                head.cmp(stem.as_bytes())
                    .then_with(|| tail.cmp(files::CAPTION_SUFFIX.as_bytes()))
            })
            .ok()
    };
    let mut entries = Vec::with_capacity(media.len());
    for Found {
        name,
        kind,
        key,
        header,
        key_start,
    } in media
    {
        let stem = media_stem(&name, key_start);
        let caption = match (&captions_json, &json_captions) {
            (Some(cj), _) if cj.error.is_some() => Caption::Unreadable {
                reason: "captions.json cannot be loaded".into(),
            },
            (Some(_), Some(map)) => map
                .get(&name[key_start..])
                .cloned()
                .unwrap_or(Caption::Missing),
            // An archive member's .txt is looked for outside the archive: never there.
            _ if key_start > 0 => Caption::Missing,
            _ => match find_caption(stem) {
                Some(i) => {
                    used_captions[i] = true;
                    match &captions[i].2 {
                        Ok(empty) => Caption::Txt { empty: *empty },
                        Err(reason) => Caption::Unreadable {
                            reason: reason.clone(),
                        },
                    }
                }
                None => Caption::Missing,
            },
        };
        let has = |set: &Option<Result<HashMap<String, PathBuf>, String>>| match set {
            Some(Ok(s)) => Some(s.contains_key(stem)),
            _ => None,
        };
        let mask_file = mask_for(stem);
        let mask = match (&masks, default_mask) {
            (_, Some(_)) => Some(true),
            (Some(Ok(_)), None) => Some(mask_file.is_some()),
            _ => None,
        };
        let mask_problem = match (mask_file, &header) {
            (Some(f), Ok(h)) => {
                let size = &mask_sizes[f];
                let shown = f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                match size {
                    Err(e) => Some(format!("mask {shown} cannot be opened: {e}")),
                    Ok((w, h2)) if (*w, *h2) != (h.width, h.height) => Some(format!(
                        "mask {shown} is {w}x{h2}, the {} {}x{}",
                        if kind == MediaKind::Video {
                            "video"
                        } else {
                            "image"
                        },
                        h.width,
                        h.height
                    )),
                    Ok(_) => None,
                }
            }
            _ => None,
        };
        entries.push(MediaEntry {
            mask,
            mask_file: mask_file.map(Path::to_path_buf),
            mask_problem,
            control: has(&controls),
            name,
            kind,
            bytes: key.size,
            modified: key_time(&key),
            header,
            caption,
        });
    }
    let orphan_captions = if captions_json.is_some() {
        Vec::new()
    } else {
        captions
            .iter()
            .zip(&used_captions)
            .filter(|(_, used)| !**used)
            .map(|((n, _, _), _)| n.clone())
            .collect()
    };

    // What the caches are compared with: media, captions, captions.json, and the directory
    // itself (its mtime moves when files are added, removed or renamed).
    let caches = if has_cache_dir {
        let mut inputs: Vec<(String, SystemTime)> = entries
            .iter()
            .map(|m| (m.name.clone(), m.modified))
            .chain(captions.iter().map(|(n, k, _)| (n.clone(), key_time(k))))
            .collect();
        if let Some(cj) = &captions_json {
            inputs.push((files::CAPTIONS_JSON.into(), cj.modified));
        }
        if let Ok(t) = dir_meta.modified() {
            inputs.push((".".into(), t));
        }
        caches(&req.path, &inputs)
    } else {
        Vec::new()
    };

    DirectoryScan {
        path: req.path.clone(),
        media: entries,
        orphan_captions,
        captions_json,
        subdirectories,
        other_files,
        ignored_files,
        not_files,
        caches,
        mask_error,
        archives,
        default_mask_error,
        control_error,
        video_probe,
        reused,
        probed,
    }
}

/// Deletes `<dir>/cache/<name>` (one model's diffusion-pipe cache) and returns the bytes it held.
/// Refuses anything else: a name with a path separator or `..`, a `cache` or `<name>` that is a
/// symlink, or not a directory.
pub fn delete_cache(dir: &Path, name: &str) -> std::io::Result<u64> {
    use std::io::{Error, ErrorKind};
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{name:?} is not a cache name"),
        ));
    }
    let root = dir.join(files::CACHE_DIR);
    let not_dir = |p: &Path| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is not a directory (a symlink is not followed)",
                p.display()
            ),
        )
    };
    // Pin `cache` by fd (no symlink followed) and work relative to it from here on: a `cache`
    // swapped for a symlink after the checks cannot redirect the delete.
    let dirfd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let cachefd = rustix::fs::openat(
        &dirfd,
        files::CACHE_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => not_dir(&root),
        e => e.into(),
    })?;
    let st = rustix::fs::statat(&cachefd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err(not_dir(&root.join(name)));
    }
    // Moved aside inside the pinned directory first: what is measured and removed is then
    // exactly the entry that was checked.
    let tomb = format!(".dpgui-deleting-{name}-{}", std::process::id());
    rustix::fs::renameat(&cachefd, name, &cachefd, tomb.as_str())?;
    let pinned = PathBuf::from(format!("/proc/self/fd/{}", cachefd.as_raw_fd())).join(&tomb);
    let (bytes, _, _) = tree_stats(&pinned);
    // remove_dir_all does not follow symlinks inside the tree.
    std::fs::remove_dir_all(&pinned)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace() {
        for c in [
            ' ', '\t', '\n', '\r', '\u{0b}', '\u{0c}', '\u{1c}', '\u{1f}', '\u{a0}', '\u{3000}',
        ] {
            assert!(py_space(c), "{c:?}");
        }
        for c in ['a', '\u{feff}', '\u{200b}', '\0'] {
            assert!(!py_space(c), "{c:?}");
        }
    }

    #[test]
    fn delete_cache_refuses_bad_names() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", ".", "..", "a/b", "../x"] {
            let e = delete_cache(tmp.path(), bad).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn worker_priority_is_lowered_for_that_thread_only() {
        use rustix::process::{Pid, getpriority_process};
        let me = || Pid::from_raw(nix::unistd::gettid().as_raw());
        let before = getpriority_process(me()).unwrap();
        let inside = std::thread::spawn(move || {
            lower_own_priority();
            getpriority_process(me()).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, before.max(WORKER_NICE));
        assert_eq!(getpriority_process(me()).unwrap(), before);
    }
}
