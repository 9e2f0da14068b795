//! What a scan alone says diffusion-pipe will skip, stop on, or do differently than expected.
//! Bucket maths (too-short videos, dropped buckets) is `crate::trainer::dataset::buckets`.

use serde::Serialize;

use super::scan::NO_FFPROBE;
use super::{Caption, DirectoryScan, MediaKind, VideoProbe};
use crate::trainer::dataset::files;

/// How bad: `Fatal` stops diffusion-pipe (an exception while caching or loading), `Warning` loses
/// or changes training data, `Info` is worth knowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Fatal,
    Warning,
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A stable identifier: `missing_caption`, `empty_caption`, `caption_unreadable`,
    /// `orphan_caption`, `unreadable`, `unreadable_webp`, `unsupported`, `animated_first_frame`,
    /// `subdirectory`, `missing_mask`, `missing_control`, `mask_path`, `control_path`,
    /// `captions_json`, `captions_json_invalid`, `captions_json_unused`, `video_frames_unknown`,
    /// `other_file`, `video_extension_case`, `tar_archive`, `not_a_file`, `stale_cache`,
    /// `shared_stem`, `no_media`.
    pub kind: &'static str,
    pub severity: Severity,
    /// One sentence (or two) saying what happens and why.
    pub message: String,
    /// The files concerned (`name: reason` where there is a reason), sorted.
    pub files: Vec<String>,
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Problems found from the scan alone, most severe first. `skip_empty_caption` is the
/// directory's effective setting (diffusion-pipe's default: true).
pub fn problems(scan: &DirectoryScan, skip_empty_caption: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |kind, severity, message: String, mut files: Vec<String>| {
        files.sort();
        out.push(Problem {
            kind,
            severity,
            message,
            files,
        });
    };
    let no_ffprobe = scan.video_probe == VideoProbe::Unavailable;

    if scan.media.is_empty() {
        push(
            "no_media",
            Severity::Fatal,
            "No usable images or videos: diffusion-pipe stops (\"had no images/videos\") or \
             trains on nothing from this directory."
                .into(),
            Vec::new(),
        );
    }
    if let Some(e) = &scan.mask_error {
        push(
            "mask_path",
            Severity::Fatal,
            format!(
                "mask_path is not a readable directory ({e}): diffusion-pipe stops (\"Invalid mask_path\")."
            ),
            Vec::new(),
        );
    }
    if let Some(e) = &scan.default_mask_error {
        push(
            "default_mask_file",
            Severity::Fatal,
            format!(
                "default_mask_file is not a readable file ({e}): diffusion-pipe stops (\"Invalid default_mask_file\")."
            ),
            Vec::new(),
        );
    }
    if let Some(e) = &scan.control_error {
        push(
            "control_path",
            Severity::Fatal,
            format!(
                "control_path is not a readable directory ({e}): diffusion-pipe stops (\"Invalid control_path\")."
            ),
            Vec::new(),
        );
    }

    // Captions.
    let using_json = scan.captions_json.is_some();
    if let Some(cj) = &scan.captions_json {
        if let Some(e) = &cj.error {
            push(
                "captions_json",
                Severity::Fatal,
                format!(
                    "captions.json cannot be loaded ({e}): diffusion-pipe stops when it reads it."
                ),
                vec![files::CAPTIONS_JSON.into()],
            );
        } else {
            let n = cj.overridden_txt.len();
            push(
                "captions_json",
                Severity::Info,
                if n == 0 {
                    "captions.json gives the captions (no .txt caption is read while it exists)."
                        .into()
                } else {
                    format!(
                        "captions.json gives the captions: {} beside the media {} ignored while it exists.",
                        plural(n, ".txt file", ".txt files"),
                        if n == 1 { "is" } else { "are" }
                    )
                },
                cj.overridden_txt.clone(),
            );
        }
        if !cj.invalid_keys.is_empty() {
            push(
                "captions_json_invalid",
                Severity::Fatal,
                format!(
                    "{} in captions.json {} not a list of strings: diffusion-pipe stops (\"captions.json must contain lists of captions\").",
                    plural(cj.invalid_keys.len(), "entry", "entries"),
                    if cj.invalid_keys.len() == 1 {
                        "is"
                    } else {
                        "are"
                    }
                ),
                cj.invalid_keys.clone(),
            );
        }
        if !cj.unused_keys.is_empty() {
            push(
                "captions_json_unused",
                Severity::Info,
                format!(
                    "{} in captions.json name no image or video in this directory (ignored).",
                    plural(cj.unused_keys.len(), "entry", "entries")
                ),
                cj.unused_keys.clone(),
            );
        }
    }
    let missing: Vec<String> = scan
        .media
        .iter()
        .filter(|m| m.caption == Caption::Missing)
        .map(|m| m.name.clone())
        .collect();
    if !missing.is_empty() {
        let n = missing.len();
        let what = if using_json {
            "no entry in captions.json"
        } else {
            "no caption (.txt beside it)"
        };
        let message = if skip_empty_caption {
            format!(
                "{} {what}: diffusion-pipe skips them (skip_empty_caption is true, the default).",
                plural(n, "medium has", "media have")
            )
        } else {
            format!(
                "{} {what}: trained with an empty caption (skip_empty_caption = false).",
                plural(n, "medium has", "media have")
            )
        };
        let sev = if skip_empty_caption {
            Severity::Warning
        } else {
            Severity::Info
        };
        push("missing_caption", sev, message, missing);
    }
    let empty: Vec<String> = scan
        .media
        .iter()
        .filter(|m| {
            matches!(
                m.caption,
                Caption::Txt { empty: true } | Caption::Json { empty: true }
            )
        })
        .map(|m| m.name.clone())
        .collect();
    if !empty.is_empty() {
        push(
            "empty_caption",
            Severity::Warning,
            format!(
                "{} an empty caption: trained with an empty caption (an empty caption is not skipped).",
                plural(empty.len(), "medium has", "media have")
            ),
            empty,
        );
    }
    let bad: Vec<String> = scan
        .media
        .iter()
        .filter_map(|m| match &m.caption {
            Caption::Unreadable { reason }
                if !(using_json
                    && scan
                        .captions_json
                        .as_ref()
                        .is_some_and(|c| c.error.is_some())) =>
            {
                Some(format!("{}: {reason}", m.name))
            }
            _ => None,
        })
        .collect();
    if !bad.is_empty() {
        push(
            "caption_unreadable",
            Severity::Fatal,
            format!(
                "{} cannot be read as diffusion-pipe reads it: it stops with an exception while caching.",
                plural(bad.len(), "caption", "captions")
            ),
            bad,
        );
    }
    if !scan.orphan_captions.is_empty() {
        push(
            "orphan_caption",
            Severity::Info,
            format!(
                "{} no image or video with the same stem (ignored).",
                plural(
                    scan.orphan_captions.len(),
                    ".txt file has",
                    ".txt files have"
                )
            ),
            scan.orphan_captions.clone(),
        );
    }

    // Media.
    let (mut unreadable, mut webp_bad, mut animated_webp, mut first_frame, mut unknown_video) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in &scan.media {
        let checked_webp = files::is_checked_webp(&m.name);
        match &m.header {
            Err(e) if m.kind == MediaKind::Video && no_ffprobe && e == NO_FFPROBE => {
                unknown_video.push(m.name.clone())
            }
            Err(e) if checked_webp => webp_bad.push(format!("{}: {e}", m.name)),
            Err(e) => unreadable.push(format!("{}: {e}", m.name)),
            Ok(h) if h.animated && checked_webp => animated_webp.push(m.name.clone()),
            Ok(h) if h.animated => first_frame.push(m.name.clone()),
            Ok(_) => {}
        }
    }
    if !webp_bad.is_empty() {
        push(
            "unreadable_webp",
            Severity::Fatal,
            format!(
                "{} cannot be opened: diffusion-pipe's WebP animation check runs outside its error handling, so caching stops instead of skipping {}.",
                plural(webp_bad.len(), ".webp file", ".webp files"),
                if webp_bad.len() == 1 { "it" } else { "them" }
            ),
            webp_bad,
        );
    }
    if !animated_webp.is_empty() {
        push(
            "unsupported",
            Severity::Fatal,
            format!(
                "{}: diffusion-pipe stops caching (\"WebP videos are not supported\"). Convert to a video file or a still image.",
                plural(animated_webp.len(), "animated WebP", "animated WebPs")
            ),
            animated_webp,
        );
    }
    if !unreadable.is_empty() {
        push(
            "unreadable",
            Severity::Warning,
            format!(
                "{} cannot be read: diffusion-pipe skips {} (\"could not be opened\").",
                plural(unreadable.len(), "medium", "media"),
                if unreadable.len() == 1 { "it" } else { "them" }
            ),
            unreadable,
        );
    }
    if !first_frame.is_empty() {
        push(
            "animated_first_frame",
            Severity::Info,
            format!(
                "{}: diffusion-pipe opens {} with PIL as an image and uses the first frame only.",
                plural(first_frame.len(), "animated image", "animated images"),
                if first_frame.len() == 1 { "it" } else { "them" }
            ),
            first_frame,
        );
    }
    if !unknown_video.is_empty() {
        push(
            "video_frames_unknown",
            Severity::Warning,
            format!(
                "ffprobe is not installed: the size and frame count of {} are unknown, so their buckets cannot be worked out (apt install ffmpeg).",
                plural(unknown_video.len(), "video", "videos")
            ),
            unknown_video,
        );
    }

    // Masks and control images.
    let no_mask: Vec<String> = scan
        .media
        .iter()
        .filter(|m| m.mask == Some(false))
        .map(|m| m.name.clone())
        .collect();
    if !no_mask.is_empty() {
        push(
            "missing_mask",
            Severity::Warning,
            format!(
                "{} no file with the same stem in mask_path: trained without a mask (diffusion-pipe warns).",
                plural(no_mask.len(), "medium has", "media have")
            ),
            no_mask,
        );
    }
    // Only media diffusion-pipe goes on to cache load their mask.
    let bad_mask: Vec<String> = scan
        .media
        .iter()
        .filter(|m| !(skip_empty_caption && m.caption == Caption::Missing))
        .filter_map(|m| m.mask_problem.as_ref().map(|p| format!("{}: {p}", m.name)))
        .collect();
    if !bad_mask.is_empty() {
        push(
            "mask_mismatch",
            Severity::Fatal,
            format!(
                "{} a mask that is not the same size as {} (or cannot be opened): diffusion-pipe stops while caching latents (\"Mask shape ... was not the same as image shape\").",
                plural(bad_mask.len(), "medium has", "media have"),
                if bad_mask.len() == 1 { "it" } else { "them" }
            ),
            bad_mask,
        );
    }
    let no_control: Vec<String> = scan
        .media
        .iter()
        .filter(|m| m.control == Some(false))
        .map(|m| m.name.clone())
        .collect();
    if !no_control.is_empty() {
        push(
            "missing_control",
            Severity::Fatal,
            format!(
                "{} no file with the same stem in control_path: diffusion-pipe stops (\"No control file exists for image\").",
                plural(no_control.len(), "medium has", "media have")
            ),
            no_control,
        );
    }
    // Count first, clone only the few names that share a stem.
    let mut stems: std::collections::HashMap<&str, u32> =
        std::collections::HashMap::with_capacity(scan.media.len());
    for m in &scan.media {
        *stems.entry(files::stem(&m.name)).or_default() += 1;
    }
    let shared: Vec<String> = scan
        .media
        .iter()
        .filter(|m| stems[files::stem(&m.name)] > 1)
        .map(|m| m.name.clone())
        .collect();
    if !shared.is_empty() {
        push(
            "shared_stem",
            Severity::Info,
            "Some media share a stem: they share one caption .txt and one mask or control image."
                .into(),
            shared,
        );
    }

    // Everything else in the directory.
    if !scan.subdirectories.is_empty() {
        push(
            "subdirectory",
            Severity::Info,
            format!(
                "{} ignored: diffusion-pipe reads only the top level of a directory (add each as its own [[directory]]).",
                plural(
                    scan.subdirectories.len(),
                    "subdirectory is",
                    "subdirectories are"
                )
            ),
            scan.subdirectories.clone(),
        );
    }
    let (mut tars, mut miscased, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for f in &scan.other_files {
        if files::is_tar(f) {
            tars.push(f.clone());
        } else if files::is_miscased_video_suffix(files::suffix(f)) {
            miscased.push(f.clone());
        } else {
            other.push(f.clone());
        }
    }
    if !miscased.is_empty() {
        push(
            "video_extension_case",
            Severity::Warning,
            format!(
                "{} a video suffix in mixed case: diffusion-pipe knows video suffixes only in lower or upper case, so it skips {} (rename to e.g. .mp4).",
                plural(miscased.len(), "file has", "files have"),
                if miscased.len() == 1 { "it" } else { "them" }
            ),
            miscased,
        );
    }
    if !other.is_empty() {
        push(
            "other_file",
            Severity::Warning,
            format!(
                "{} neither an image PIL opens nor a video: diffusion-pipe tries {} and skips with a warning.",
                plural(other.len(), "file is", "files are"),
                if other.len() == 1 { "it" } else { "them" }
            ),
            other,
        );
    }
    if !tars.is_empty() {
        let members: usize = scan.archives.iter().map(|a| a.members).sum();
        push(
            "tar_archive",
            Severity::Info,
            format!(
                "{} in .tar archives {} read as media, opened from the archive. Their captions come \
                 only from captions.json, keyed by the member's path in the archive: diffusion-pipe \
                 looks for a member's .txt relative to its own working directory, not in the \
                 archive.",
                plural(members, "member", "members"),
                if members == 1 { "is" } else { "are" }
            ),
            scan.archives
                .iter()
                .map(|a| format!("{}: {}", a.name, plural(a.members, "member", "members")))
                .collect(),
        );
    }
    let broken: Vec<String> = scan
        .archives
        .iter()
        .filter_map(|a| a.error.as_ref().map(|e| format!("{}: {e}", a.name)))
        .collect();
    if !broken.is_empty() {
        push(
            "tar_unreadable",
            Severity::Fatal,
            format!(
                "{} cannot be read to the end: diffusion-pipe's tarfile stops on {} while listing the dataset.",
                plural(broken.len(), ".tar archive", ".tar archives"),
                if broken.len() == 1 { "it" } else { "them" }
            ),
            broken,
        );
    }
    if !scan.not_files.is_empty() {
        push(
            "not_a_file",
            Severity::Info,
            format!(
                "{} neither a file nor a directory (a broken symlink, socket, FIFO): skipped silently.",
                plural(scan.not_files.len(), "entry is", "entries are")
            ),
            scan.not_files.clone(),
        );
    }
    for c in scan.caches.iter().filter(|c| c.stale) {
        push(
            "stale_cache",
            Severity::Warning,
            format!(
                "cache/{} is older than {}: changed captions or media need --regenerate_cache (or delete this cache).",
                c.name,
                plural(c.newer_count, "file here", "files here")
            ),
            c.newer_inputs.clone(),
        );
    }
    out.sort_by_key(|p| p.severity);
    out
}
