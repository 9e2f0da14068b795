//! Dataset directories on disk: what diffusion-pipe will make of one `[[directory]]` (its media,
//! their header sizes and frame counts, captions, masks, control images, caches), read from headers
//! only and remembered between scans.
//!
//! - `scan`: [`scan_directory`] (parallel, low-priority workers; progress and cancel through
//!   [`ScanControl`]), [`delete_cache`].
//! - `probe`: image headers (`imagesize`, animated WebP/APNG/GIF marks) and `ffprobe` for videos.
//! - `cache`: [`ScanCache`], per-file results keyed by (name, size, mtime, inode).
//! - `problems`: [`problems`], what the scan alone says will go wrong or be skipped.
//!
//! Which files count, and as what, is `crate::trainer::dataset::files` (pure).

pub mod archive;
mod cache;
mod probe;
pub(crate) mod problems;
pub mod report;
mod scan;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use cache::ScanCache;
pub use probe::{VIDEO_PROBE_TIMEOUT, probe_image_file, probe_video_file};
pub use problems::{Problem, Severity, problems};
pub use scan::{delete_cache, scan_directory, scan_directory_with};

/// One `[[directory]]` of a dataset config: the paths diffusion-pipe reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRequest {
    pub path: PathBuf,
    pub mask_path: Option<PathBuf>,
    pub control_path: Option<PathBuf>,
    /// The mask for media with none in `mask_path` (or for all, without a `mask_path`).
    pub default_mask_file: Option<PathBuf>,
}

/// Shared with the UI thread: progress (files done of total) and a cancel flag, checked between
/// files.
#[derive(Debug, Default)]
pub struct ScanControl {
    pub cancel: AtomicBool,
    pub total: AtomicU64,
    pub done: AtomicU64,
    /// Scan at the normal priority (the headless command: nothing to keep smooth). The
    /// dashboard's scans leave it false: their workers run at nice 10.
    pub foreground: bool,
}

impl ScanControl {
    pub fn new() -> ScanControl {
        ScanControl::default()
    }

    /// For a scan the user waits for with nothing else on screen (`dpgui dataset`).
    pub fn foreground() -> ScanControl {
        ScanControl {
            foreground: true,
            ..ScanControl::default()
        }
    }

    /// Asks a running scan to stop; it returns [`ScanError::Cancelled`].
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// (done, total) directory entries of the scan running (or last run) with this control.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanError {
    Cancelled,
    NotFound(PathBuf),
    NotADirectory(PathBuf),
    Unreadable(PathBuf, String),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Cancelled => write!(f, "The scan was cancelled."),
            ScanError::NotFound(p) => write!(f, "Directory {} does not exist.", p.display()),
            ScanError::NotADirectory(p) => write!(f, "{} is not a directory.", p.display()),
            ScanError::Unreadable(p, e) => {
                write!(f, "Directory {} cannot be read: {e}.", p.display())
            }
        }
    }
}

impl std::error::Error for ScanError {}

/// Everything the scan found in one directory.
#[derive(Clone, Debug, Serialize)]
pub struct DirectoryScan {
    pub path: PathBuf,
    /// Images and videos diffusion-pipe will try to use, sorted by name. Includes files with an
    /// unknown suffix whose content is an image PIL opens (diffusion-pipe uses those too).
    pub media: Vec<MediaEntry>,
    /// `.txt` files that no medium uses as its caption (none are listed while `captions.json`
    /// exists: then every `.txt` is ignored, see [`CaptionsJson::overridden_txt`]).
    pub orphan_captions: Vec<String>,
    pub captions_json: Option<CaptionsJson>,
    /// Subdirectories: diffusion-pipe reads only the top level, so their contents are ignored.
    /// `cache` (diffusion-pipe's own) is not listed here but in `caches`.
    pub subdirectories: Vec<String>,
    /// Files diffusion-pipe hands to PIL that are neither images PIL opens nor videos: it logs
    /// "could not be opened. Skipping." and goes on. `.tar` archives are listed here too (their
    /// members are media to diffusion-pipe; dpgui does not look inside).
    pub other_files: Vec<String>,
    /// Skipped by suffix (`.npz .json .parquet .bak .db`), silently.
    pub ignored_files: Vec<String>,
    /// Entries that are neither files nor directories (broken symlinks, sockets, FIFOs) or could
    /// not be examined: skipped silently by diffusion-pipe.
    pub not_files: Vec<String>,
    /// `cache/<model name>/` directories.
    pub caches: Vec<CacheInfo>,
    /// `mask_path` given but not a readable directory (diffusion-pipe stops: "Invalid mask_path").
    pub mask_error: Option<String>,
    /// `control_path` given but not a readable directory (diffusion-pipe stops).
    pub control_error: Option<String>,
    /// The `.tar` archives among `other_files`, looked into (their members are in `media`,
    /// named "archive.tar/member").
    pub archives: Vec<ArchiveSummary>,
    /// `default_mask_file` given but not a readable file (diffusion-pipe stops: "Invalid
    /// default_mask_file").
    pub default_mask_error: Option<String>,
    pub video_probe: VideoProbe,
    /// Files whose facts came from the scan cache, unchanged since.
    pub reused: usize,
    /// Files read this time (headers, captions, ffprobe).
    pub probed: usize,
}

/// A `.tar` archive of a dataset directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArchiveSummary {
    pub name: String,
    /// Members other than directories: each a medium to diffusion-pipe.
    pub members: usize,
    pub directories: usize,
    /// Why it could not be read to the end (diffusion-pipe's tarfile stops on it too).
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MediaEntry {
    pub name: String,
    pub kind: MediaKind,
    pub bytes: u64,
    pub modified: SystemTime,
    /// `Err`: unreadable or corrupt, with the reason (diffusion-pipe skips it, or for a `.webp`
    /// aborts). For videos while [`VideoProbe::Unavailable`]: `Err` saying ffprobe is missing.
    pub header: Result<MediaHeader, String>,
    pub caption: Caption,
    /// `None`: no mask_path nor default_mask_file configured; `Some(false)`: no mask file with
    /// this stem and no default (trained without a mask).
    pub mask: Option<bool>,
    /// The mask diffusion-pipe will load for it: a file of mask_path, or default_mask_file.
    pub mask_file: Option<PathBuf>,
    /// Why that mask stops latent caching: it cannot be opened, or its size is not the
    /// medium's (diffusion-pipe: "Mask shape ... was not the same as image shape").
    pub mask_problem: Option<String>,
    /// `None`: no control_path configured; `Some(false)`: missing (diffusion-pipe stops).
    pub control: Option<bool>,
}

/// Sizes as diffusion-pipe reads them (PIL's `size`: the stored size, EXIF rotation ignored;
/// for videos the first video stream's coded size).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaHeader {
    pub width: u32,
    pub height: u32,
    /// Animated WebP/APNG/GIF. diffusion-pipe refuses an animated `.webp` (caching aborts) and
    /// uses only the first frame of the others.
    pub animated: bool,
    /// Videos: the source frame count as diffusion-pipe's reader gives it (the stream's frame
    /// count from the container, else counted packets; `.mkv` is always counted).
    pub source_frames: Option<u64>,
    /// Videos: the stream's average frame rate.
    pub fps: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum Caption {
    /// `name.txt` beside the medium; `empty`: nothing but whitespace (trained with an empty
    /// caption, not skipped).
    Txt { empty: bool },
    /// An entry in `captions.json`; `empty`: an empty list or only blank strings.
    Json { empty: bool },
    /// No caption: skipped when `skip_empty_caption` is true (the default), else trained with an
    /// empty caption.
    Missing,
    /// A caption exists but diffusion-pipe cannot use it (not UTF-8, unreadable, a `captions.json`
    /// entry that is not a list): training stops with an exception.
    Unreadable { reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaptionsJson {
    pub bytes: u64,
    pub modified: SystemTime,
    /// Not JSON, or not an object of lists: diffusion-pipe stops when it loads it.
    pub error: Option<String>,
    /// Keys in the file.
    pub entries: usize,
    /// `.txt` files ignored because `captions.json` exists.
    pub overridden_txt: Vec<String>,
    /// Keys that name no medium in the directory.
    pub unused_keys: Vec<String>,
    /// Keys whose value is not a list of strings (diffusion-pipe asserts lists).
    pub invalid_keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CacheInfo {
    /// The model name (`cache/<name>/`).
    pub name: String,
    pub bytes: u64,
    pub files: u64,
    /// The newest modification time inside it.
    pub newest: Option<SystemTime>,
    /// A symlink: reported, never deleted by [`delete_cache`].
    pub symlink: bool,
    /// Media, captions, `captions.json` or the directory listing changed after the newest write
    /// in the cache: `--regenerate_cache` may be needed.
    pub stale: bool,
    /// Up to 20 names changed after the cache (`.` is the directory itself: files added or
    /// removed); `newer_count` counts them all.
    pub newer_inputs: Vec<String>,
    pub newer_count: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum VideoProbe {
    /// `version` is empty when the scan met no video and so did not run it.
    Ffprobe { path: PathBuf, version: String },
    /// No `ffprobe` on PATH: video sizes and frame counts are unknown (`apt install ffmpeg`).
    Unavailable,
}

impl VideoProbe {
    /// `ffprobe` from PATH, if it runs.
    pub fn detect() -> VideoProbe {
        probe::find_ffprobe()
    }
}
