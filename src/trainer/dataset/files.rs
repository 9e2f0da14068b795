//! Which files of a dataset directory diffusion-pipe reads, and as what (utils/dataset.py,
//! `DirectoryDataset._get_ungrouped_metadata` and `_metadata_map_fn`). Pure: names in, facts out.
//!
//! What diffusion-pipe does with the top level of `path` (it never descends into subdirectories;
//! hidden files are included, `pathlib.glob('*')` does not skip them):
//! - entries that are not files (directories, broken links, sockets) are skipped silently;
//! - suffixes `.txt .npz .json .parquet .bak .db` (exact case) are skipped: captions, sidecars;
//! - a `.tar` archive is opened and every member becomes a medium;
//! - a suffix in imageio's video list (in lower case or all upper case) is a video;
//! - everything else goes to PIL's `Image.open`, which looks at the content, not the name: an image
//!   PIL knows is used whatever its suffix; anything else is skipped with a warning.
//!
//! Suffix and stem follow Python's `pathlib` (`a.b.png` → `.png`/`a.b`; `.hidden` and `name.`
//! have no suffix).

use serde::Serialize;

/// What a directory entry is to diffusion-pipe, judged by its name alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// An image suffix PIL opens (any case: PIL sniffs the content).
    Image,
    /// A suffix imageio lists as video (exact lower or upper case, as diffusion-pipe compares).
    Video,
    /// `name.txt`: the caption of every medium whose stem is `name`.
    Caption,
    /// `captions.json`: when present, every `.txt` caption is ignored.
    CaptionsJson,
    /// Skipped by suffix: `.npz .json .parquet .bak .db` (exact case).
    Ignored,
    /// Anything else: handed to PIL; used if its content is an image PIL knows, else skipped
    /// with a warning ("could not be opened"). `.tar` archives are here too (see [`is_tar`]).
    Other,
}

/// Suffixes diffusion-pipe skips before looking at a file (compared case-sensitively).
pub const IGNORED_SUFFIXES: [&str; 6] = [".txt", ".npz", ".json", ".parquet", ".bak", ".db"];

/// The caption suffix (one of the ignored ones: captions are read beside their medium).
pub const CAPTION_SUFFIX: &str = ".txt";

/// The per-directory caption file; its presence disables `.txt` captions entirely.
pub const CAPTIONS_JSON: &str = "captions.json";

/// The subdirectory diffusion-pipe writes its caches to: `<path>/cache/<model name>/`, where the
/// model name is the model class's `name` (e.g. `flux`, `wan`, `hunyuan-video`, `sdxl`).
pub const CACHE_DIR: &str = "cache";

/// Archives whose members diffusion-pipe reads as media (compared case-sensitively).
pub const TAR_SUFFIX: &str = ".tar";

/// The suffix whose files diffusion-pipe opens with imageio first to refuse animations; the check
/// is case-sensitive and runs outside its error handling, so an animated or unreadable `.webp`
/// aborts caching instead of being skipped.
pub const WEBP_SUFFIX: &str = ".webp";

/// `imageio.config.video_extensions` (imageio 2.38), lower case, sorted. diffusion-pipe's
/// `VIDEO_EXTENSIONS` holds each of these and its upper-case form (utils/common.py), so `.mp4`
/// and `.MP4` are videos, `.Mp4` is not (it goes to PIL, which fails, and is skipped).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    ".264", ".265", ".3g2", ".3gp", ".a64", ".adp", ".amr", ".amv", ".asf", ".avc", ".avi", ".avr",
    ".avs", ".avs2", ".avs3", ".bmv", ".cavs", ".cdg", ".cdxl", ".cgi", ".chk", ".cif", ".cpk",
    ".dat", ".dav", ".dif", ".dnxhd", ".dnxhr", ".drc", ".dv", ".dvd", ".f4v", ".flm", ".flv",
    ".gsm", ".gxf", ".h261", ".h263", ".h264", ".h265", ".h26l", ".hevc", ".idf", ".ifv", ".imx",
    ".ipu", ".ism", ".isma", ".ismv", ".ivf", ".ivr", ".j2k", ".kux", ".lvf", ".m1v", ".m2t",
    ".m2ts", ".m2v", ".m4a", ".m4b", ".m4v", ".mj2", ".mjpeg", ".mjpg", ".mk3d", ".mka", ".mks",
    ".mkv", ".mods", ".moflex", ".mov", ".mp4", ".mpc", ".mpd", ".mpeg", ".mpg", ".mpo", ".mts",
    ".mvi", ".mxf", ".mxg", ".nut", ".obu", ".ogg", ".ogv", ".psp", ".qcif", ".rcv", ".rgb", ".rm",
    ".roq", ".sdr2", ".ser", ".sga", ".svag", ".svs", ".ts", ".ty", ".ty+", ".v", ".v210", ".vb",
    ".vc1", ".vc2", ".viv", ".vob", ".webm", ".wmv", ".wtv", ".xl", ".xmv", ".y4m", ".yop", ".yuv",
    ".yuv10",
];

/// Image suffixes (lower case, sorted; matched in any case) of formats PIL opens and whose
/// header dpgui reads. Other suffixes are [`FileKind::Other`]: their content is still sniffed, as PIL does.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    ".apng", ".bmp", ".dds", ".dib", ".gif", ".ico", ".jfif", ".jif", ".jpe", ".jpeg", ".jpg",
    ".pbm", ".pgm", ".png", ".pnm", ".ppm", ".psd", ".qoi", ".tga", ".tif", ".tiff", ".webp",
];

/// `pathlib.PurePath(name).suffix`: from the last dot, unless the dot is first or last.
pub fn suffix(name: &str) -> &str {
    // A plain byte loop: names are short, and this runs for every file of a dataset.
    match name.bytes().rposition(|b| b == b'.') {
        Some(i) if i > 0 && i + 1 < name.len() => &name[i..],
        _ => "",
    }
}

/// `pathlib.PurePath(name).stem`: the name without [`suffix`]. Masks and control images are
/// matched to media by stem, whatever their own suffix.
pub fn stem(name: &str) -> &str {
    &name[..name.len() - suffix(name).len()]
}

/// The caption file diffusion-pipe looks for beside `media_name`
/// (`Path.with_suffix('.txt')`): `a.b.png` → `a.b.txt`, `noext` → `noext.txt`.
pub fn caption_name(media_name: &str) -> String {
    format!("{}{CAPTION_SUFFIX}", stem(media_name))
}

/// Whether `list` (sorted) holds `suffix` lower-cased; no allocation.
fn in_sorted_lower(list: &[&str], suffix: &str) -> bool {
    let mut buf = [0u8; 16];
    let Some(lower) = buf.get_mut(..suffix.len()) else {
        return false; // longer than any listed suffix
    };
    lower.copy_from_slice(suffix.as_bytes());
    lower.make_ascii_lowercase();
    list.binary_search_by(|e| e.as_bytes().cmp(lower)).is_ok()
}

/// Whether a suffix is in diffusion-pipe's `VIDEO_EXTENSIONS` (lower case or all upper case).
pub fn is_video_suffix(suffix: &str) -> bool {
    let (upper, lower) = suffix.bytes().fold((false, false), |(u, l), b| {
        (u || b.is_ascii_uppercase(), l || b.is_ascii_lowercase())
    });
    // Mixed case is never listed; an upper-case form is, if its lower case is.
    !(upper && lower) && in_sorted_lower(VIDEO_EXTENSIONS, suffix)
}

/// A suffix that is a video extension in some other case (`.Mp4`, `.mP4`): not a video to
/// diffusion-pipe, so it is handed to PIL and skipped. Worth telling the user.
pub fn is_miscased_video_suffix(suffix: &str) -> bool {
    !is_video_suffix(suffix) && in_sorted_lower(VIDEO_EXTENSIONS, suffix)
}

/// Whether diffusion-pipe reads this file as a tar archive of media.
pub fn is_tar(name: &str) -> bool {
    suffix(name) == TAR_SUFFIX
}

/// Whether diffusion-pipe's animated-WebP check (imageio, outside its error handling) applies.
pub fn is_checked_webp(name: &str) -> bool {
    suffix(name) == WEBP_SUFFIX
}

/// What a regular file named `file_name` (no directory part) is to diffusion-pipe.
pub fn classify(file_name: &str) -> FileKind {
    if file_name == CAPTIONS_JSON {
        return FileKind::CaptionsJson;
    }
    let suffix = suffix(file_name);
    if suffix == CAPTION_SUFFIX {
        return FileKind::Caption;
    }
    if IGNORED_SUFFIXES.contains(&suffix) {
        return FileKind::Ignored;
    }
    if is_video_suffix(suffix) {
        return FileKind::Video;
    }
    if !suffix.is_empty() && in_sorted_lower(IMAGE_EXTENSIONS, suffix) {
        return FileKind::Image;
    }
    FileKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathlib_suffix_and_stem() {
        // Expected values are what Python 3.12's PurePath gives.
        let cases = [
            ("a.png", ".png", "a"),
            ("a.b.png", ".png", "a.b"),
            ("noext", "", "noext"),
            (".hidden", "", ".hidden"),
            (".hidden.png", ".png", ".hidden"),
            ("trailing.", "", "trailing."),
            ("x.tar.gz", ".gz", "x.tar"),
            ("", "", ""),
        ];
        for (name, suf, st) in cases {
            assert_eq!(suffix(name), suf, "suffix of {name:?}");
            assert_eq!(stem(name), st, "stem of {name:?}");
        }
        assert_eq!(caption_name("a.b.png"), "a.b.txt");
        assert_eq!(caption_name("noext"), "noext.txt");
        assert_eq!(caption_name(".hidden"), ".hidden.txt");
        assert_eq!(caption_name("clip.MP4"), "clip.txt");
    }

    #[test]
    fn video_suffix_case_rules() {
        assert!(is_video_suffix(".mp4"));
        assert!(is_video_suffix(".MP4"));
        assert!(!is_video_suffix(".Mp4"));
        assert!(is_miscased_video_suffix(".Mp4"));
        assert!(!is_miscased_video_suffix(".mp4"));
        assert!(is_video_suffix(".264"));
        assert!(is_video_suffix(".ty+"));
        assert!(is_video_suffix(".TY+"));
        assert!(!is_video_suffix(".WebM"));
        assert!(!is_video_suffix(""));
        assert!(
            !is_video_suffix(".gif"),
            "GIF is an image to diffusion-pipe"
        );
        assert!(
            !is_video_suffix(".webp"),
            "WebP is an image (animated ones abort caching)"
        );
    }

    #[test]
    fn classify_follows_diffusion_pipe() {
        use FileKind::*;
        let cases = [
            ("a.png", Image),
            ("A.PNG", Image),
            ("a.JpEg", Image),
            ("a.gif", Image),
            ("a.webp", Image),
            ("a.mp4", Video),
            ("a.MOV", Video),
            ("a.Mov", Other),
            ("a.mkv", Video),
            ("a.j2k", Video), // imageio lists JPEG 2000 among video formats
            ("a.txt", Caption),
            ("a.TXT", Other), // exact-case comparison: not skipped, handed to PIL
            ("captions.json", CaptionsJson),
            ("Captions.json", Ignored),
            ("meta.json", Ignored),
            ("a.npz", Ignored),
            ("a.parquet", Ignored),
            ("a.bak", Ignored),
            ("a.db", Ignored),
            ("a.DB", Other),
            ("data.tar", Other),
            (".DS_Store", Other),
            ("README", Other),
            ("photo.heic", Other),
            ("weird.", Other),
        ];
        for (name, kind) in cases {
            assert_eq!(classify(name), kind, "{name}");
        }
        assert!(is_tar("data.tar"));
        assert!(!is_tar("data.TAR"));
        assert!(is_checked_webp("a.webp"));
        assert!(!is_checked_webp("a.WEBP"));
    }

    #[test]
    fn extension_lists_are_lower_case_dotted_and_sorted() {
        for e in VIDEO_EXTENSIONS.iter().chain(IMAGE_EXTENSIONS) {
            assert!(e.starts_with('.') && e.len() > 1 && e.len() <= 16, "{e}");
            assert_eq!(e.to_ascii_lowercase(), *e, "{e}");
        }
        // Looked up by binary search.
        assert!(VIDEO_EXTENSIONS.is_sorted());
        assert!(IMAGE_EXTENSIONS.is_sorted());
        assert_eq!(VIDEO_EXTENSIONS.len(), 115); // imageio 2.38: 116 entries, `.A64` and `.a64` both
        // No overlap: a suffix is either a video or an image.
        for e in IMAGE_EXTENSIONS {
            assert!(!VIDEO_EXTENSIONS.contains(e), "{e}");
        }
    }
}
