//! The dataset scanner on real files: images made with the `image` crate, hand-made headers,
//! videos made with ffmpeg (skipped with a note when ffmpeg is missing, unless `CI` is set), the
//! incremental cache, cancel, and cache deletion.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use dpgui::datasets::{
    ArchiveSummary, Caption, MediaKind, ScanCache, ScanControl, ScanError, ScanRequest, Severity,
    VideoProbe, delete_cache, problems, scan_directory, scan_directory_with,
};
use image::{ImageFormat, RgbImage};

fn write_image(dir: &Path, name: &str, w: u32, h: u32, fmt: ImageFormat) {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
    });
    img.save_with_format(dir.join(name), fmt).unwrap();
}

/// A hand-made animated WebP: RIFF/WEBP, a VP8X chunk with the animation flag and a canvas size.
fn animated_webp(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&30u32.to_le_bytes());
    v.extend_from_slice(b"WEBPVP8X");
    v.extend_from_slice(&10u32.to_le_bytes());
    v.extend_from_slice(&[0x02 | 0x10, 0, 0, 0]);
    v.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    v.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    v.extend_from_slice(b"ANIM\x06\0\0\0\0\0\0\0\0\0");
    v
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// ffmpeg and ffprobe on PATH; without them the video checks are skipped with a note, except
/// under CI where they must be present.
fn have_ffmpeg() -> bool {
    let ok = |p: &str| {
        Command::new(p)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let have = ok("ffmpeg") && ok("ffprobe");
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg/ffprobe must be installed in CI (.ci/run installs ffmpeg)"
        );
        eprintln!(
            "note: skipping the video checks: ffmpeg/ffprobe not on PATH (apt install ffmpeg)"
        );
    }
    have
}

fn ffmpeg_testsrc(out: &Path, size: &str, rate: u32, frames: u32) {
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={size}:rate={rate}"))
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", "yuv420p"])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg failed for {}", out.display());
}

/// (name, format, width, height): the images of the main fixture, sizes known independently.
const IMAGES: &[(&str, ImageFormat, u32, u32)] = &[
    ("a_square.png", ImageFormat::Png, 64, 64),
    ("b_wide.png", ImageFormat::Png, 160, 90),
    ("c_tall.png", ImageFormat::Png, 90, 160),
    ("d_odd.png", ImageFormat::Png, 101, 37),
    ("e_tiny.png", ImageFormat::Png, 1, 1),
    ("f_photo.jpg", ImageFormat::Jpeg, 300, 200),
    ("g_PHOTO.JPEG", ImageFormat::Jpeg, 200, 300),
    ("h_still.webp", ImageFormat::WebP, 48, 80),
    ("i_wide.webp", ImageFormat::WebP, 257, 129),
];

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    masks: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let masks = tmp.path().join("masks");
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&masks).unwrap();
    for &(name, fmt, w, h) in IMAGES {
        write_image(&dir, name, w, h, fmt);
        let stem = name.rsplit_once('.').unwrap().0;
        // Every image has a mask except d_odd.
        if stem != "d_odd" {
            write_image(&masks, &format!("{stem}.png"), w, h, ImageFormat::Png);
        }
        // Captions: all but e_tiny (missing); b_wide's is blank.
        match stem {
            "e_tiny" => {}
            "b_wide" => fs::write(dir.join(format!("{stem}.txt")), " \n\t ").unwrap(),
            _ => fs::write(
                dir.join(format!("{stem}.txt")),
                format!("a photo of {stem}"),
            )
            .unwrap(),
        }
    }
    fs::write(dir.join("orphan.txt"), "nobody's caption").unwrap();
    fs::write(dir.join("anim.webp"), animated_webp(320, 240)).unwrap();
    fs::write(dir.join("anim.txt"), "animated").unwrap();
    // PNG magic, then junk: not a header.
    fs::write(
        dir.join("corrupt.png"),
        b"\x89PNG\r\n\x1a\nthis is not an IHDR chunk",
    )
    .unwrap();
    fs::write(dir.join("corrupt.txt"), "x").unwrap();
    fs::write(dir.join("zero.jpg"), b"").unwrap();
    fs::write(dir.join("zero.txt"), "x").unwrap();
    // An image with an unknown suffix: PIL opens it by content, so diffusion-pipe uses it.
    write_image(&dir, "disguised.bin", 30, 20, ImageFormat::Png);
    fs::write(dir.join("disguised.txt"), "x").unwrap();
    // Not latin-1-safe: invalid UTF-8 makes diffusion-pipe's open().read() raise.
    write_image(&dir, "latin.png", 10, 10, ImageFormat::Png);
    fs::write(dir.join("latin.txt"), b"caf\xe9").unwrap();
    // Names beyond ASCII, and one that is not UTF-8 at all (opened by its exact bytes).
    write_image(&dir, "ünï çødé.png", 14, 9, ImageFormat::Png);
    fs::write(dir.join("ünï çødé.txt"), "unicode").unwrap();
    {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"raw\xff.png");
        write_image(&dir, "tmp-raw.png", 5, 6, ImageFormat::Png);
        fs::rename(dir.join("tmp-raw.png"), dir.join(raw)).unwrap();
    }
    // Skipped / ignored things.
    fs::write(dir.join("notes.md"), "# notes").unwrap();
    fs::write(dir.join(".DS_Store"), b"\0\0\0\x01Bud1").unwrap();
    fs::write(dir.join("clip.Mp4"), b"not really").unwrap();
    fs::write(dir.join("pack.tar"), vec![0u8; 1024]).unwrap();
    fs::write(dir.join("meta.json"), "{}").unwrap();
    fs::write(dir.join("latents.npz"), b"PK").unwrap();
    std::os::unix::fs::symlink(dir.join("missing-target.png"), dir.join("dangling.png")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("pipe.png"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    fs::create_dir(dir.join("sub")).unwrap();
    write_image(&dir.join("sub"), "hidden.png", 8, 8, ImageFormat::Png);
    // A sparse 4 GiB "image" and a sparse 64 MiB "caption": read a header's worth, never whole.
    fs::File::create(dir.join("huge.png"))
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    fs::write(dir.join("huge.txt"), "x").unwrap();
    write_image(&dir, "longcap.png", 12, 12, ImageFormat::Png);
    fs::File::create(dir.join("longcap.txt"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    // diffusion-pipe's cache for one model.
    fs::create_dir_all(dir.join("cache/flux/metadata")).unwrap();
    fs::write(dir.join("cache/flux/metadata/grouping_keys.json"), "[]").unwrap();
    fs::write(dir.join("cache/flux/shard_0.bin"), vec![0u8; 1000]).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        masks,
    }
}

fn media_map(
    scan: &dpgui::datasets::DirectoryScan,
) -> BTreeMap<&str, &dpgui::datasets::MediaEntry> {
    scan.media.iter().map(|m| (m.name.as_str(), m)).collect()
}

#[test]
fn scan_finds_what_diffusion_pipe_reads() {
    let fx = fixture();
    let req = ScanRequest {
        path: fx.dir.clone(),
        mask_path: Some(fx.masks.clone()),
        control_path: None,
        default_mask_file: None,
    };
    let ctl = ScanControl::new();
    let scan = scan_directory_with(&req, &ctl, None, VideoProbe::Unavailable).unwrap();
    let media = media_map(&scan);

    // Sorted by name, and exactly these.
    let names: Vec<&str> = scan.media.iter().map(|m| m.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let mut expected: Vec<&str> = IMAGES.iter().map(|i| i.0).collect();
    expected.extend([
        "anim.webp",
        "corrupt.png",
        "disguised.bin",
        "huge.png",
        "latin.png",
        "longcap.png",
        "zero.jpg",
        "ünï çødé.png",
        "raw\u{fffd}.png",
    ]);
    expected.sort();
    assert_eq!(names, expected);

    for &(name, _, w, h) in IMAGES {
        let m = media[name];
        assert_eq!(m.kind, MediaKind::Image, "{name}");
        let hd = m.header.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((hd.width, hd.height, hd.animated), (w, h, false), "{name}");
        assert_eq!(
            m.bytes,
            fs::metadata(fx.dir.join(name)).unwrap().len(),
            "{name}"
        );
    }
    let anim = media["anim.webp"].header.as_ref().unwrap();
    assert_eq!((anim.width, anim.height, anim.animated), (320, 240, true));
    let dis = media["disguised.bin"].header.as_ref().unwrap();
    assert_eq!((dis.width, dis.height), (30, 20));
    assert!(media["corrupt.png"].header.is_err());
    assert_eq!(
        media["zero.jpg"].header.as_ref().unwrap_err(),
        "empty file (0 bytes)"
    );
    assert!(media["huge.png"].header.is_err());
    let uni = &media["ünï çødé.png"];
    assert_eq!(
        uni.header.as_ref().map(|h| (h.width, h.height)),
        Ok((14, 9))
    );
    assert_eq!(uni.caption, Caption::Txt { empty: false });
    let raw = &media["raw\u{fffd}.png"];
    assert_eq!(raw.header.as_ref().map(|h| (h.width, h.height)), Ok((5, 6)));
    assert_eq!(media["huge.png"].bytes, 4 << 30);

    // Captions.
    assert_eq!(media["a_square.png"].caption, Caption::Txt { empty: false });
    assert_eq!(media["b_wide.png"].caption, Caption::Txt { empty: true });
    assert_eq!(media["e_tiny.png"].caption, Caption::Missing);
    assert!(
        matches!(&media["latin.png"].caption, Caption::Unreadable { reason } if reason.contains("UTF-8"))
    );
    assert!(matches!(
        &media["longcap.png"].caption,
        Caption::Unreadable { .. }
    ));
    assert_eq!(scan.orphan_captions, vec!["orphan.txt"]);
    assert!(scan.captions_json.is_none());

    // Masks: by stem, any suffix.
    assert_eq!(media["a_square.png"].mask, Some(true));
    assert_eq!(media["d_odd.png"].mask, Some(false));
    assert!(scan.media.iter().all(|m| m.control.is_none()));

    // Everything else.
    assert_eq!(scan.subdirectories, vec!["sub"]);
    assert_eq!(
        scan.other_files,
        vec![".DS_Store", "clip.Mp4", "notes.md", "pack.tar"]
    );
    assert_eq!(scan.ignored_files, vec!["latents.npz", "meta.json"]);
    assert_eq!(scan.not_files, vec!["dangling.png", "pipe.png"]);
    assert_eq!(scan.caches.len(), 1);
    let c = &scan.caches[0];
    assert_eq!((c.name.as_str(), c.bytes, c.files), ("flux", 1002, 2));
    assert!(!c.symlink);

    // Progress: every top-level entry once.
    let entries = fs::read_dir(&fx.dir).unwrap().count() as u64;
    assert_eq!(ctl.counts(), (entries, entries));

    // Problems.
    let ps = problems(&scan, true);
    let by_kind: BTreeMap<&str, &dpgui::datasets::Problem> =
        ps.iter().map(|p| (p.kind, p)).collect();
    let files = |k: &str| by_kind.get(k).map(|p| p.files.clone()).unwrap_or_default();
    assert_eq!(
        files("missing_caption"),
        vec!["e_tiny.png", "raw\u{fffd}.png"]
    );
    assert!(
        by_kind["missing_caption"]
            .message
            .contains("skip_empty_caption is true")
    );
    assert_eq!(by_kind["missing_caption"].severity, Severity::Warning);
    assert_eq!(files("empty_caption"), vec!["b_wide.png"]);
    assert_eq!(files("orphan_caption"), vec!["orphan.txt"]);
    assert_eq!(files("unsupported"), vec!["anim.webp"]);
    assert_eq!(by_kind["unsupported"].severity, Severity::Fatal);
    let unreadable: Vec<String> = files("unreadable")
        .iter()
        .map(|f| f.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(unreadable, vec!["corrupt.png", "huge.png", "zero.jpg"]);
    let caption_bad: Vec<String> = files("caption_unreadable")
        .iter()
        .map(|f| f.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(caption_bad, vec!["latin.png", "longcap.png"]);
    // Masks were made for the IMAGES table except d_odd; none for the extra files.
    assert_eq!(
        files("missing_mask"),
        vec![
            "anim.webp",
            "corrupt.png",
            "d_odd.png",
            "disguised.bin",
            "huge.png",
            "latin.png",
            "longcap.png",
            "raw\u{fffd}.png",
            "zero.jpg",
            "ünï çødé.png",
        ]
    );
    assert_eq!(files("subdirectory"), vec!["sub"]);
    assert_eq!(files("other_file"), vec![".DS_Store", "notes.md"]);
    assert_eq!(files("video_extension_case"), vec!["clip.Mp4"]);
    // 1,024 zero bytes: an empty archive (its end marker), as Python's tarfile reads it.
    assert_eq!(files("tar_archive"), vec!["pack.tar: 0 members"]);
    assert_eq!(files("not_a_file"), vec!["dangling.png", "pipe.png"]);
    assert!(!by_kind.contains_key("no_media"));
    assert!(
        !by_kind.contains_key("stale_cache"),
        "the cache was written after the media"
    );
    // Most severe first.
    assert!(ps.windows(2).all(|w| w[0].severity <= w[1].severity));
    // With skip_empty_caption = false a missing caption is only worth knowing.
    let lenient = problems(&scan, false);
    let mc = lenient
        .iter()
        .find(|p| p.kind == "missing_caption")
        .unwrap();
    assert_eq!(mc.severity, Severity::Info);
    assert!(mc.message.contains("empty caption"));
}

#[test]
fn unreadable_file_is_reported_and_the_scan_goes_on() {
    if is_root() {
        eprintln!("note: running as root, a chmod 000 file stays readable: check skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    write_image(tmp.path(), "ok.png", 20, 10, ImageFormat::Png);
    write_image(tmp.path(), "locked.png", 20, 10, ImageFormat::Png);
    fs::set_permissions(
        tmp.path().join("locked.png"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let scan = scan_directory_with(
        &ScanRequest {
            path: tmp.path().into(),
            ..Default::default()
        },
        &ScanControl::new(),
        None,
        VideoProbe::Unavailable,
    )
    .unwrap();
    let m = media_map(&scan);
    assert!(
        m["locked.png"]
            .header
            .as_ref()
            .unwrap_err()
            .contains("ermission denied")
    );
    assert_eq!(m["ok.png"].header.as_ref().unwrap().width, 20);
}

#[test]
fn captions_json_replaces_txt_captions() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for n in ["a", "b", "c", "d", "e"] {
        write_image(d, &format!("{n}.png"), 16, 16, ImageFormat::Png);
    }
    // c has a .txt but no JSON entry: with captions.json present it has no caption at all.
    fs::write(d.join("c.txt"), "ignored").unwrap();
    fs::write(
        d.join("captions.json"),
        r#"{"a.png": ["one", "two"], "b.png": [], "d.png": "not a list", "e.png": null, "gone.png": ["x"]}"#,
    )
    .unwrap();
    let scan = scan_directory_with(
        &ScanRequest {
            path: d.into(),
            ..Default::default()
        },
        &ScanControl::new(),
        None,
        VideoProbe::Unavailable,
    )
    .unwrap();
    let m = media_map(&scan);
    assert_eq!(m["a.png"].caption, Caption::Json { empty: false });
    assert_eq!(m["b.png"].caption, Caption::Json { empty: true });
    assert_eq!(m["c.png"].caption, Caption::Missing);
    assert!(matches!(m["d.png"].caption, Caption::Unreadable { .. }));
    assert_eq!(m["e.png"].caption, Caption::Missing);
    let cj = scan.captions_json.as_ref().unwrap();
    assert_eq!(cj.error, None);
    assert_eq!(cj.entries, 5);
    assert_eq!(cj.overridden_txt, vec!["c.txt"]);
    assert_eq!(cj.unused_keys, vec!["gone.png"]);
    assert_eq!(cj.invalid_keys, vec!["d.png"]);
    assert!(scan.orphan_captions.is_empty());
    let ps = problems(&scan, true);
    let kinds: Vec<&str> = ps.iter().map(|p| p.kind).collect();
    for k in [
        "captions_json",
        "captions_json_invalid",
        "captions_json_unused",
        "missing_caption",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let mc = ps.iter().find(|p| p.kind == "missing_caption").unwrap();
    assert_eq!(mc.files, vec!["c.png", "e.png"]);

    // A broken captions.json: fatal, said once.
    fs::write(d.join("captions.json"), "{\"a.png\": [").unwrap();
    let scan = scan_directory_with(
        &ScanRequest {
            path: d.into(),
            ..Default::default()
        },
        &ScanControl::new(),
        None,
        VideoProbe::Unavailable,
    )
    .unwrap();
    assert!(
        scan.captions_json
            .as_ref()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("JSON")
    );
    let ps = problems(&scan, true);
    let fatal: Vec<&str> = ps
        .iter()
        .filter(|p| p.severity == Severity::Fatal)
        .map(|p| p.kind)
        .collect();
    assert_eq!(fatal, vec!["captions_json"]);
}

#[test]
fn control_path_missing_files_are_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    let ctrl = tmp.path().join("ctrl");
    fs::create_dir_all(&d).unwrap();
    fs::create_dir_all(&ctrl).unwrap();
    write_image(&d, "x.png", 16, 16, ImageFormat::Png);
    write_image(&d, "y.png", 16, 16, ImageFormat::Png);
    write_image(&ctrl, "x.jpg", 16, 16, ImageFormat::Jpeg);
    let req = ScanRequest {
        path: d.clone(),
        mask_path: Some(tmp.path().join("no-such-masks")),
        control_path: Some(ctrl),
        default_mask_file: None,
    };
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let m = media_map(&scan);
    assert_eq!(
        (m["x.png"].control, m["y.png"].control),
        (Some(true), Some(false))
    );
    assert_eq!(m["x.png"].mask, None);
    assert!(scan.mask_error.is_some());
    let ps = problems(&scan, true);
    let mc = ps.iter().find(|p| p.kind == "missing_control").unwrap();
    assert_eq!(
        (mc.severity, mc.files.clone()),
        (Severity::Fatal, vec!["y.png".to_string()])
    );
    assert!(
        ps.iter()
            .any(|p| p.kind == "mask_path" && p.severity == Severity::Fatal)
    );
}

#[test]
fn mask_sizes_and_the_default_mask_are_checked_as_diffusion_pipe_loads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, masks) = (tmp.path().join("d"), tmp.path().join("masks"));
    fs::create_dir_all(&d).unwrap();
    fs::create_dir_all(&masks).unwrap();
    for (name, w, h) in [
        ("same.png", 64, 48),
        ("wrong.png", 64, 48),
        ("nomask.png", 32, 32),
        ("nomask_other.png", 40, 30),
        ("uncaptioned.png", 64, 48),
    ] {
        write_image(&d, name, w, h, ImageFormat::Png);
    }
    for stem in ["same", "wrong", "nomask", "nomask_other"] {
        fs::write(d.join(format!("{stem}.txt")), "a caption").unwrap();
    }
    // Masks match by stem, any extension; PIL compares (height, width) exactly.
    write_image(&masks, "same.jpg", 64, 48, ImageFormat::Jpeg);
    write_image(&masks, "wrong.png", 48, 64, ImageFormat::Png);
    write_image(&masks, "uncaptioned.png", 10, 10, ImageFormat::Png);
    let default = tmp.path().join("default mask.png");
    write_image(tmp.path(), "default mask.png", 32, 32, ImageFormat::Png);

    // Without a default: a medium with no mask trains unmasked (a warning), a wrong size stops
    // caching (fatal), and a medium skipped for its missing caption never loads its mask.
    let mut req = ScanRequest {
        path: d.clone(),
        mask_path: Some(masks.clone()),
        control_path: None,
        default_mask_file: None,
    };
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let m = media_map(&scan);
    assert_eq!(m["same.png"].mask_file, Some(masks.join("same.jpg")));
    assert_eq!(m["same.png"].mask_problem, None);
    assert_eq!(
        m["wrong.png"].mask_problem.as_deref(),
        Some("mask wrong.png is 48x64, the image 64x48")
    );
    assert_eq!(
        (m["nomask.png"].mask, m["nomask.png"].mask_file.clone()),
        (Some(false), None)
    );
    let ps = problems(&scan, true);
    let find = |ps: &[dpgui::datasets::Problem], k: &str| ps.iter().find(|p| p.kind == k).cloned();
    let mm = find(&ps, "mask_mismatch").expect("mask_mismatch");
    assert_eq!(mm.severity, Severity::Fatal);
    assert_eq!(
        mm.files,
        vec!["wrong.png: mask wrong.png is 48x64, the image 64x48".to_string()]
    );
    assert_eq!(
        find(&ps, "missing_mask").unwrap().files,
        vec!["nomask.png".to_string(), "nomask_other.png".to_string()]
    );
    // With skip_empty_caption = false the uncaptioned medium is cached, mask and all.
    let all = problems(&scan, false);
    assert_eq!(find(&all, "mask_mismatch").unwrap().files.len(), 2);

    // With a default: the media without a mask use it, so its size is checked against each.
    req.default_mask_file = Some(default.clone());
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let m = media_map(&scan);
    assert_eq!(
        (m["nomask.png"].mask, m["nomask.png"].mask_file.clone()),
        (Some(true), Some(default.clone()))
    );
    assert_eq!(m["nomask.png"].mask_problem, None);
    assert_eq!(
        m["nomask_other.png"].mask_problem.as_deref(),
        Some("mask default mask.png is 32x32, the image 40x30")
    );
    let ps = problems(&scan, true);
    assert!(find(&ps, "missing_mask").is_none());
    assert_eq!(find(&ps, "mask_mismatch").unwrap().files.len(), 2);

    // A default alone (no mask_path) applies to every medium.
    req.mask_path = None;
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    assert!(
        scan.media
            .iter()
            .all(|m| m.mask_file.as_deref() == Some(default.as_path()))
    );

    // A default that is not there stops diffusion-pipe before anything is read.
    req.default_mask_file = Some(tmp.path().join("gone.png"));
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let ps = problems(&scan, true);
    let dm = find(&ps, "default_mask_file").expect("default_mask_file problem");
    assert_eq!(dm.severity, Severity::Fatal);
    assert!(dm.message.contains("gone.png"), "{}", dm.message);
    assert!(
        scan.media
            .iter()
            .all(|m| m.mask.is_none() && m.mask_problem.is_none())
    );
}

/// Many masks are read on all cores; each result still lands on its own medium.
#[test]
fn many_masks_each_checked_against_their_own_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, masks) = (tmp.path().join("d"), tmp.path().join("masks"));
    fs::create_dir_all(&d).unwrap();
    fs::create_dir_all(&masks).unwrap();
    for i in 0..150u32 {
        let (w, h) = (16 + i % 7, 16 + i % 5);
        write_image(&d, &format!("{i:03}.png"), w, h, ImageFormat::Png);
        // Every 50th mask is one pixel too wide.
        let mw = if i % 50 == 7 { w + 1 } else { w };
        write_image(&masks, &format!("{i:03}.png"), mw, h, ImageFormat::Png);
    }
    let req = ScanRequest {
        path: d,
        mask_path: Some(masks),
        ..Default::default()
    };
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let bad: Vec<_> = scan
        .media
        .iter()
        .filter_map(|m| m.mask_problem.as_ref().map(|p| (m.name.clone(), p.clone())))
        .collect();
    let want: Vec<_> = [7u32, 57, 107]
        .iter()
        .map(|&i| {
            let (w, h) = (16 + i % 7, 16 + i % 5);
            (
                format!("{i:03}.png"),
                format!("mask {i:03}.png is {}x{h}, the image {w}x{h}", w + 1),
            )
        })
        .collect();
    assert_eq!(bad, want);
}

fn tar_with(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::new();
    RgbImage::new(w, h)
        .write_to(&mut std::io::Cursor::new(&mut v), ImageFormat::Png)
        .unwrap();
    v
}

/// Every member of a .tar is a medium to diffusion-pipe, captioned only from captions.json by
/// its path in the archive; a top-level .txt with the same stem does not count for it.
#[test]
fn tar_members_are_media_captioned_from_captions_json() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::write(
        d.join("shard.tar"),
        tar_with(&[
            ("imgs/a.png", png_bytes(64, 32)),
            ("imgs/b.png", png_bytes(20, 20)),
            ("imgs/clip.mp4", b"video bytes".to_vec()),
            ("imgs/readme.txt", b"not an image".to_vec()),
        ]),
    )
    .unwrap();
    write_image(d, "top.png", 10, 10, ImageFormat::Png);
    fs::write(d.join("top.txt"), "top caption").unwrap();
    // Would caption "a" if it were a top-level file; a member's caption is not looked for here.
    fs::write(d.join("a.txt"), "no").unwrap();
    let req = ScanRequest {
        path: d.into(),
        ..Default::default()
    };
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let m = media_map(&scan);
    let names: Vec<&str> = scan.media.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "shard.tar/imgs/a.png",
            "shard.tar/imgs/b.png",
            "shard.tar/imgs/clip.mp4",
            "shard.tar/imgs/readme.txt",
            "top.png"
        ]
    );
    let a = m["shard.tar/imgs/a.png"].header.as_ref().unwrap();
    assert_eq!((a.width, a.height), (64, 32));
    assert_eq!(m["shard.tar/imgs/clip.mp4"].kind, MediaKind::Video);
    assert!(m["shard.tar/imgs/readme.txt"].header.is_err());
    assert_eq!(m["shard.tar/imgs/a.png"].caption, Caption::Missing);
    assert_eq!(m["top.png"].caption, Caption::Txt { empty: false });
    assert_eq!(
        scan.archives,
        vec![ArchiveSummary {
            name: "shard.tar".into(),
            members: 4,
            directories: 0,
            error: None
        }]
    );
    let ps = problems(&scan, true);
    let files = |k: &str| ps.iter().find(|p| p.kind == k).map(|p| p.files.clone());
    assert_eq!(
        files("tar_archive"),
        Some(vec!["shard.tar: 4 members".to_string()])
    );
    assert_eq!(
        files("missing_caption").unwrap(),
        vec![
            "shard.tar/imgs/a.png",
            "shard.tar/imgs/b.png",
            "shard.tar/imgs/clip.mp4",
            "shard.tar/imgs/readme.txt"
        ]
    );

    // With captions.json, keyed by the member's path, the members are captioned.
    fs::write(
        d.join("captions.json"),
        r#"{"imgs/a.png": ["a cat"], "imgs/readme.txt": ["text"], "top.png": ["top"]}"#,
    )
    .unwrap();
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let m = media_map(&scan);
    assert!(matches!(
        m["shard.tar/imgs/a.png"].caption,
        Caption::Json { .. }
    ));
    assert_eq!(m["shard.tar/imgs/b.png"].caption, Caption::Missing);
    let ps = problems(&scan, true);
    let unused = ps.iter().find(|p| p.kind == "captions_json_unused");
    assert!(unused.is_none(), "every key names a medium: {unused:?}");
    // The captioned text member is tried with PIL and skipped.
    let unreadable = ps.iter().find(|p| p.kind == "unreadable").unwrap();
    assert!(
        unreadable
            .files
            .iter()
            .any(|f| f.starts_with("shard.tar/imgs/readme.txt")),
        "{unreadable:?}"
    );

    // A truncated archive stops diffusion-pipe's tarfile.
    let mut t = tar_with(&[("x.png", png_bytes(8, 8)), ("y.png", png_bytes(8, 8))]);
    t.truncate(1200);
    fs::write(d.join("shard.tar"), t).unwrap();
    let scan =
        scan_directory_with(&req, &ScanControl::new(), None, VideoProbe::Unavailable).unwrap();
    let ps = problems(&scan, true);
    let tu = ps
        .iter()
        .find(|p| p.kind == "tar_unreadable")
        .expect("tar_unreadable");
    assert_eq!(tu.severity, Severity::Fatal);
    assert!(tu.files[0].starts_with("shard.tar: "), "{tu:?}");
}

#[test]
fn videos_probed_with_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ffmpeg_testsrc(&d.join("clip.mp4"), "160x90", 30, 45);
    ffmpeg_testsrc(&d.join("short.mkv"), "64x48", 24, 10);
    ffmpeg_testsrc(&d.join("UPPER.MOV"), "96x64", 25, 5);
    fs::write(
        d.join("broken.mp4"),
        b"\0\0\0\x18ftypisom this is not a movie",
    )
    .unwrap();
    fs::write(d.join("clip.txt"), "a test pattern").unwrap();
    let ctl = ScanControl::new();
    let scan = scan_directory(
        &ScanRequest {
            path: d.into(),
            ..Default::default()
        },
        &ctl,
        None,
    )
    .unwrap();
    assert!(
        matches!(&scan.video_probe, VideoProbe::Ffprobe { version, .. } if !version.is_empty())
    );
    let m = media_map(&scan);
    let check = |name: &str, w: u32, h: u32, frames: u64, fps: f64| {
        let e = m[name];
        assert_eq!(e.kind, MediaKind::Video, "{name}");
        let hd = e.header.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((hd.width, hd.height), (w, h), "{name}");
        assert_eq!(hd.source_frames, Some(frames), "{name}");
        assert!((hd.fps.unwrap() - fps).abs() < 1e-6, "{name}: {:?}", hd.fps);
    };
    check("clip.mp4", 160, 90, 45, 30.0);
    check("short.mkv", 64, 48, 10, 24.0); // Matroska has no frame count: counted
    check("UPPER.MOV", 96, 64, 5, 25.0);
    assert!(m["broken.mp4"].header.is_err());
    assert_eq!(m["clip.mp4"].caption, Caption::Txt { empty: false });
    assert!(
        problems(&scan, true)
            .iter()
            .all(|p| p.kind != "video_frames_unknown")
    );

    // Cached: a second scan runs no ffprobe on them; another ffprobe version re-probes videos.
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = ScanCache::open(cache_dir.path());
    let req = ScanRequest {
        path: d.into(),
        ..Default::default()
    };
    let first = scan_directory(&req, &ScanControl::new(), Some(&cache)).unwrap();
    assert_eq!((first.probed, first.reused), (5, 0)); // 4 videos, 1 caption
    let again = scan_directory(&req, &ScanControl::new(), Some(&cache)).unwrap();
    assert_eq!((again.probed, again.reused), (0, 5));
    assert_eq!(
        serde_json::to_value(&first.media).unwrap(),
        serde_json::to_value(&again.media).unwrap()
    );
    let VideoProbe::Ffprobe { path, .. } = &scan.video_probe else {
        unreachable!()
    };
    let other = VideoProbe::Ffprobe {
        path: path.clone(),
        version: "another".into(),
    };
    let upgraded = scan_directory_with(&req, &ScanControl::new(), Some(&cache), other).unwrap();
    assert_eq!((upgraded.probed, upgraded.reused), (4, 1));

    // Without ffprobe: listed, frames unknown, and said so.
    let scan = scan_directory_with(
        &ScanRequest {
            path: d.into(),
            ..Default::default()
        },
        &ScanControl::new(),
        None,
        VideoProbe::Unavailable,
    )
    .unwrap();
    assert_eq!(
        scan.media
            .iter()
            .filter(|m| m.kind == MediaKind::Video)
            .count(),
        4
    );
    let p = problems(&scan, true);
    let unknown = p.iter().find(|p| p.kind == "video_frames_unknown").unwrap();
    assert!(unknown.message.contains("apt install ffmpeg"));
    assert_eq!(unknown.files.len(), 4);
    assert!(p.iter().all(|p| p.kind != "unreadable"));
}

fn small_dataset(n: usize) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..n {
        let (w, h) = (8 + (i as u32 % 7) * 3, 8 + (i as u32 % 5) * 2);
        write_image(
            tmp.path(),
            &format!("img{i:03}.png"),
            w,
            h,
            ImageFormat::Png,
        );
        fs::write(
            tmp.path().join(format!("img{i:03}.txt")),
            format!("caption {i}"),
        )
        .unwrap();
    }
    tmp
}

#[test]
fn incremental_cache_reads_only_what_changed() {
    let data = small_dataset(20);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = ScanCache::open(cache_dir.path().join("scans"));
    let req = ScanRequest {
        path: data.path().into(),
        ..Default::default()
    };
    let scan = |c: &ScanCache| {
        scan_directory_with(&req, &ScanControl::new(), Some(c), VideoProbe::Unavailable).unwrap()
    };
    let first = scan(&cache);
    assert_eq!((first.probed, first.reused), (40, 0));
    let second = scan(&cache);
    assert_eq!((second.probed, second.reused), (0, 40));
    // Same results from the cache as from the files.
    assert_eq!(
        serde_json::to_value(&first.media).unwrap(),
        serde_json::to_value(&second.media).unwrap()
    );

    // Touch one image: only it is read again.
    let f = fs::File::options()
        .write(true)
        .open(data.path().join("img007.png"))
        .unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);
    let third = scan(&cache);
    assert_eq!((third.probed, third.reused), (1, 39));

    // Replace a file with a different image of the same name: new size, re-read, new header.
    write_image(data.path(), "img003.png", 77, 33, ImageFormat::Png);
    let fourth = scan(&cache);
    assert_eq!(fourth.probed, 1);
    let h = media_map(&fourth)["img003.png"].header.clone().unwrap();
    assert_eq!((h.width, h.height), (77, 33));

    // Corrupt cache file: a full rescan, no error.
    let canonical = fs::canonicalize(data.path()).unwrap();
    let file = cache.file_for(&canonical);
    cache.flush();
    assert!(file.exists());
    fs::write(&file, b"\x00garbage{").unwrap();
    let fifth = scan(&cache);
    assert_eq!((fifth.probed, fifth.reused), (40, 0));
    assert_eq!(scan(&cache).probed, 0);

    // A forced rescan reads everything and leaves a fresh cache behind.
    let forced = scan(&cache.clone().reuse(false));
    assert_eq!((forced.probed, forced.reused), (40, 0));
    assert_eq!(scan(&cache).reused, 40);

    // A deleted file drops out of the scan (and the cache).
    fs::remove_file(data.path().join("img000.png")).unwrap();
    let sixth = scan(&cache);
    assert_eq!(sixth.media.len(), 19);
    assert_eq!(sixth.orphan_captions, vec!["img000.txt"]);
}

#[test]
fn cancel_from_another_thread() {
    let data = tempfile::tempdir().unwrap();
    // Many small files: a header each.
    let png = {
        let mut v = Vec::new();
        RgbImage::new(4, 4)
            .write_to(&mut std::io::Cursor::new(&mut v), ImageFormat::Png)
            .unwrap();
        v
    };
    let n = 6000;
    for i in 0..n {
        fs::write(data.path().join(format!("{i:05}.png")), &png).unwrap();
    }
    let ctl = ScanControl::new();
    let req = ScanRequest {
        path: data.path().into(),
        ..Default::default()
    };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = ScanCache::open(cache_dir.path());
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            // Waits on the progress counter the UI would watch, then cancels.
            while ctl.done.load(Ordering::Relaxed) <= 50 {
                std::thread::yield_now();
            }
            ctl.cancel();
        });
        scan_directory_with(&req, &ctl, Some(&cache), VideoProbe::Unavailable)
    });
    assert_eq!(result.unwrap_err(), ScanError::Cancelled);
    // The listing stops at the cancel too: `total` is what was listed by then.
    let (done, total) = ctl.counts();
    assert!(total <= n, "total {total}");
    assert!(
        done > 50 && done <= total && done < n,
        "done {done} of {total}"
    );
    // What was read before the cancel is kept: the next scan reuses it.
    let next = scan_directory_with(
        &req,
        &ScanControl::new(),
        Some(&cache),
        VideoProbe::Unavailable,
    )
    .unwrap();
    assert!(next.reused as u64 >= 50, "reused {}", next.reused);
    assert_eq!(next.reused + next.probed, n as usize);
}

#[test]
fn errors_for_the_directory_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let ctl = ScanControl::new();
    let missing = tmp.path().join("nope");
    let e = scan_directory(
        &ScanRequest {
            path: missing.clone(),
            ..Default::default()
        },
        &ctl,
        None,
    )
    .unwrap_err();
    assert_eq!(e, ScanError::NotFound(missing.clone()));
    assert_eq!(
        e.to_string(),
        format!("Directory {} does not exist.", missing.display())
    );
    let file = tmp.path().join("f.png");
    fs::write(&file, b"x").unwrap();
    let e = scan_directory(
        &ScanRequest {
            path: file.clone(),
            ..Default::default()
        },
        &ctl,
        None,
    )
    .unwrap_err();
    assert_eq!(e, ScanError::NotADirectory(file.clone()));
    assert!(e.to_string().ends_with("is not a directory."));
    // An empty directory scans fine and says there is nothing to train on.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let scan = scan_directory(
        &ScanRequest {
            path: empty,
            ..Default::default()
        },
        &ctl,
        None,
    )
    .unwrap();
    let ps = problems(&scan, true);
    assert_eq!(ps[0].kind, "no_media");
    assert_eq!(ps[0].severity, Severity::Fatal);
}

#[test]
fn stale_cache_and_delete_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    fs::create_dir_all(d.join("cache/wan/sub")).unwrap();
    fs::write(d.join("cache/wan/a.bin"), vec![1u8; 300]).unwrap();
    fs::write(d.join("cache/wan/sub/b.bin"), vec![2u8; 45]).unwrap();
    let old = SystemTime::now() - Duration::from_secs(3600);
    for p in ["cache/wan/a.bin", "cache/wan/sub/b.bin"] {
        fs::File::options()
            .write(true)
            .open(d.join(p))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    for p in ["cache/wan/sub", "cache/wan"] {
        fs::File::open(d.join(p))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    write_image(&d, "new.png", 16, 16, ImageFormat::Png);
    fs::write(d.join("new.txt"), "fresh").unwrap();

    // Outside the dataset: must survive every refusal.
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep.bin"), b"keep").unwrap();
    std::os::unix::fs::symlink(&outside, d.join("cache/evil")).unwrap();

    let scan = scan_directory_with(
        &ScanRequest {
            path: d.clone(),
            ..Default::default()
        },
        &ScanControl::new(),
        None,
        VideoProbe::Unavailable,
    )
    .unwrap();
    let names: Vec<&str> = scan.caches.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["evil", "wan"]);
    let wan = &scan.caches[1];
    assert_eq!((wan.bytes, wan.files), (345, 2));
    assert!(wan.stale);
    assert!(wan.newer_inputs.contains(&"new.png".to_string()));
    assert!(wan.newer_inputs.contains(&"new.txt".to_string()));
    assert!(scan.caches[0].symlink);
    assert!(
        problems(&scan, true)
            .iter()
            .any(|p| p.kind == "stale_cache")
    );

    // Refusals.
    assert!(delete_cache(&d, "evil").is_err());
    assert!(outside.join("keep.bin").exists());
    assert!(delete_cache(&d, "../outside").is_err());
    assert!(delete_cache(&d, "nope").is_err());
    // A `cache` that is itself a symlink is not followed.
    let d2 = tmp.path().join("d2");
    fs::create_dir_all(&d2).unwrap();
    fs::create_dir_all(outside.join("model")).unwrap();
    std::os::unix::fs::symlink(&outside, d2.join("cache")).unwrap();
    assert!(delete_cache(&d2, "model").is_err());
    assert!(outside.join("model").is_dir());

    // The real one goes, with its size.
    assert_eq!(delete_cache(&d, "wan").unwrap(), 345);
    assert!(!d.join("cache/wan").exists());
    assert!(outside.join("keep.bin").exists());
}

/// Timing hook for benches/dataset_scan.sh while `dpgui dataset` is not there: scans
/// `$DPGUI_BENCH_SCAN_DIR` with no scan cache (cold) and prints one `BENCH {json}` line with what
/// the PIL side prints (files, sizes read, failures, seconds, sums of widths and heights).
#[test]
#[ignore]
fn bench_scan_timing() {
    let Some(dir) = std::env::var_os("DPGUI_BENCH_SCAN_DIR") else {
        eprintln!("note: set DPGUI_BENCH_SCAN_DIR to a directory to time its scan");
        return;
    };
    let req = ScanRequest {
        path: dir.into(),
        ..Default::default()
    };
    // With DPGUI_BENCH_SCAN_CACHE=DIR the fresh results are also written there (as `--rescan`
    // does), nothing read.
    let cache = std::env::var_os("DPGUI_BENCH_SCAN_CACHE").map(|d| ScanCache::open(d).reuse(false));
    let t0 = std::time::Instant::now();
    let scan = scan_directory(&req, &ScanControl::new(), cache.as_ref()).unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let ok: Vec<_> = scan
        .media
        .iter()
        .filter_map(|m| m.header.as_ref().ok())
        .collect();
    let line = serde_json::json!({
        "files": scan.media.len() + scan.other_files.len(),
        "sizes": ok.len(),
        "failed": scan.media.len() + scan.other_files.len() - ok.len(),
        "seconds": seconds,
        "sum_w": ok.iter().map(|h| u64::from(h.width)).sum::<u64>(),
        "sum_h": ok.iter().map(|h| u64::from(h.height)).sum::<u64>(),
    });
    println!("BENCH {line}");
}

#[test]
fn media_sharing_a_stem_share_the_caption() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_image(d, "a.png", 16, 16, ImageFormat::Png);
    write_image(d, "a.jpg", 16, 16, ImageFormat::Jpeg);
    write_image(d, "a.b.png", 16, 16, ImageFormat::Png);
    fs::write(d.join("a.txt"), "shared").unwrap();
    let scan = scan_directory(
        &ScanRequest {
            path: d.into(),
            ..Default::default()
        },
        &ScanControl::new(),
        None,
    )
    .unwrap();
    let m = media_map(&scan);
    assert_eq!(m["a.png"].caption, Caption::Txt { empty: false });
    assert_eq!(m["a.jpg"].caption, Caption::Txt { empty: false });
    assert_eq!(m["a.b.png"].caption, Caption::Missing); // its caption would be a.b.txt
    assert!(scan.orphan_captions.is_empty());
    let ps = problems(&scan, true);
    let shared = ps.iter().find(|p| p.kind == "shared_stem").unwrap();
    assert_eq!(shared.files, vec!["a.jpg", "a.png"]);
    // No videos: ffprobe is not run, only looked for on PATH.
    match &scan.video_probe {
        VideoProbe::Ffprobe { version, .. } => assert_eq!(version, ""),
        VideoProbe::Unavailable => {}
    }
}
