//! `dpgui dataset` on generated datasets: counts, problems, buckets, global batch and steps per
//! epoch checked against values worked out here by hand from diffusion-pipe's rules (reference
//! §6), not by calling dpgui's code. Also the corpus dataset configs (skipped without
//! ../shared).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dpgui")
}

fn png(p: &Path, w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]))
        .save_with_format(p, image::ImageFormat::Png)
        .unwrap();
}

fn jpeg(p: &Path, w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb([30, 200, 30]))
        .save_with_format(p, image::ImageFormat::Jpeg)
        .unwrap();
}

fn webp(p: &Path, w: u32, h: u32) {
    image::RgbaImage::from_pixel(w, h, image::Rgba([30, 30, 200, 255]))
        .save_with_format(p, image::ImageFormat::WebP)
        .unwrap();
}

fn caption(dir: &Path, stem: &str, text: &str) {
    std::fs::write(dir.join(format!("{stem}.txt")), text).unwrap();
}

/// Runs dpgui with a private cache/state/config so the user's scan cache is never touched.
fn dpgui(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("HOME", home)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Fixture {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    a: PathBuf,
    b: PathBuf,
    dataset: PathBuf,
    train: PathBuf,
}

/// Directory A (num_repeats 1) and B (num_repeats 3), 512 px, AR buckets 0.5 / 1 / 2.
///
/// By hand, with M = 16 (sdxl): ar 1 → 512x512; ar 2: area 262144, w = sqrt(524288) = 724.08
/// → 45.25 × 16 → 720, h = 362.04 → 22.63 × 16 → 368; ar 0.5 → 368x720.
/// A: square.png 100x100 (ln 1 = 0 → ar 1), wide.jpg 120x100 (ln 1.2 = 0.18: nearer 0 than
/// ln 2 = 0.69 → ar 1), tiny.webp 64x64 (ar 1), pano.png 200x100 (ar 2), three2.jpg 150x100
/// (ln 1.5 = 0.405: |0.405 − 0.693| = 0.288 < 0.405 → ar 2), tall.png 100x200 (ar 0.5),
/// nocap.png 100x100 (no caption: skipped), broken.jpg (not an image: unreadable).
/// B: big.png 300x300 (ar 1) × 3 repeats.
/// Items: ar 1 = 3 + 3 = 6, ar 2 = 2, ar 0.5 = 1.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let a = root.join("set a");
    let b = root.join("set b");
    std::fs::create_dir_all(a.join("sub")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    png(&a.join("square.png"), 100, 100);
    jpeg(&a.join("wide.jpg"), 120, 100);
    webp(&a.join("tiny.webp"), 64, 64);
    png(&a.join("pano.png"), 200, 100);
    jpeg(&a.join("three2.jpg"), 150, 100);
    png(&a.join("tall.png"), 100, 200);
    png(&a.join("nocap.png"), 100, 100);
    std::fs::write(a.join("broken.jpg"), b"this is not a jpeg at all").unwrap();
    for stem in ["square", "wide", "pano", "three2", "tall", "broken"] {
        caption(&a, stem, &format!("a photo, {stem}"));
    }
    caption(&a, "tiny", "   \n");
    caption(&a, "ghost", "a caption without its image");
    png(&a.join("sub").join("inner.png"), 50, 50);
    png(&b.join("big.png"), 300, 300);
    caption(&b, "big", "big one");
    let dataset = root.join("dataset.toml");
    std::fs::write(
        &dataset,
        format!(
            "# test dataset\nresolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 3\n\n[[directory]]\npath = '{}'\n\n[[directory]]\npath = '{}'\nnum_repeats = 3\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let train = root.join("train.toml");
    std::fs::write(
        &train,
        format!(
            "output_dir = '{}'\ndataset = '{}'\nepochs = 10\nmicro_batch_size_per_gpu = 2\ngradient_accumulation_steps = 1\npipeline_stages = 1\nsave_every_n_epochs = 1\n\n[model]\ntype = 'sdxl'\ncheckpoint_path = '/nowhere/sdxl.safetensors'\ndtype = 'bfloat16'\n\n[optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\n",
            root.join("out").display(),
            dataset.display()
        ),
    )
    .unwrap();
    Fixture {
        home: root.join("home"),
        _tmp: tmp,
        a,
        b,
        dataset,
        train,
    }
}

fn json(f: &Fixture, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["dataset", f.dataset.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = dpgui(&f.home, &args);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\nstderr: {err}"));
    (code, v)
}

fn problem<'a>(dir: &'a Value, kind: &str) -> Option<&'a Value> {
    dir["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind)
}

fn files(p: &Value) -> Vec<String> {
    let mut v: Vec<String> = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// (ar, width, height, frames, items) of a directory's buckets, sorted.
fn buckets(dir: &Value) -> Vec<(f64, u64, u64, u64, u64)> {
    let mut v: Vec<_> = dir["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["ar"].as_f64().unwrap(),
                b["width"].as_u64().unwrap(),
                b["height"].as_u64().unwrap(),
                b["frames"].as_u64().unwrap(),
                b["items"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|x, y| x.partial_cmp(y).unwrap());
    v
}

#[test]
fn counts_problems_and_buckets_without_a_training_config() {
    let f = fixture();
    let (code, v) = json(&f, &[]);
    // Skipped files lose data but do not stop diffusion-pipe: warnings, exit 0.
    assert_eq!(code, 0, "{v:#}");
    let dirs = v["directories"].as_array().unwrap();
    assert_eq!(dirs.len(), 2);
    let a = &dirs[0];
    assert_eq!(a["path"], f.a.display().to_string());
    assert_eq!(a["images"], 8);
    assert_eq!(a["videos"], 0);
    // square wide pano three2 tall broken tiny ghost: eight .txt files.
    assert_eq!(a["captions"], 8);
    assert_eq!(
        files(problem(a, "missing_caption").expect("missing_caption")),
        ["nocap.png"]
    );
    assert_eq!(
        files(problem(a, "orphan_caption").expect("orphan_caption")),
        ["ghost.txt"]
    );
    assert_eq!(
        files(problem(a, "empty_caption").expect("empty_caption")),
        ["tiny.webp"]
    );
    let unreadable = files(problem(a, "unreadable").expect("unreadable"));
    assert_eq!(unreadable.len(), 1);
    assert!(unreadable[0].starts_with("broken.jpg: "), "{unreadable:?}");
    assert_eq!(
        files(problem(a, "subdirectory").expect("subdirectory")),
        ["sub"]
    );
    assert_eq!(
        buckets(a),
        [
            (0.5, 368, 720, 1, 1),
            (1.0, 512, 512, 1, 3),
            (2.0, 720, 368, 1, 2),
        ]
    );
    let b = &dirs[1];
    assert_eq!(b["images"], 1);
    assert!(b["problems"].as_array().unwrap().is_empty(), "{b:#}");
    assert_eq!(buckets(b), [(1.0, 512, 512, 1, 3)]);
    // No training config: nothing about batches.
    assert!(v.get("steps_per_epoch").is_none());
    for d in dirs {
        for bk in d["buckets"].as_array().unwrap() {
            assert_eq!(bk["dropped"], 0);
        }
    }
}

#[test]
fn steps_per_epoch_and_dropped_buckets_follow_the_global_batch() {
    let f = fixture();
    // 1 GPU: global batch 2 × 1 × 1 = 2. ar 1: 6 → 3 steps; ar 2: 2 → 1; ar 0.5: 1 → dropped.
    let (_, v) = json(&f, &["--config", f.train.to_str().unwrap(), "--gpus", "1"]);
    assert_eq!(v["global_batch_size"], 2, "{v:#}");
    assert_eq!(v["steps_per_epoch"], 4);
    let a = &v["directories"][0];
    let tall = a["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["ar"] == 0.5)
        .unwrap();
    assert_eq!(
        (tall["items"].as_u64(), tall["dropped"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        files(problem(a, "bucket_dropped").expect("bucket_dropped")),
        ["tall.png"]
    );
    // 2 GPUs: global batch 4. ar 1: 6 → 1 step (2 cut); ar 2: 2 → dropped; ar 0.5 dropped.
    let (_, v) = json(&f, &["--config", f.train.to_str().unwrap(), "--gpus", "2"]);
    assert_eq!(v["global_batch_size"], 4);
    assert_eq!(v["steps_per_epoch"], 1);
    let total: Vec<(u64, u64, u64)> = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["items"].as_u64().unwrap(),
                b["used"].as_u64().unwrap(),
                b["dropped"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut total = total;
    total.sort();
    assert_eq!(total, [(1, 0, 1), (2, 0, 2), (6, 4, 2)]);
}

#[test]
fn a_training_config_can_be_given_instead_of_the_dataset_config() {
    let f = fixture();
    let (_, out, err) = dpgui(
        &f.home,
        &[
            "dataset",
            f.train.to_str().unwrap(),
            "--gpus",
            "1",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(v["config"], f.dataset.display().to_string());
    assert_eq!(v["steps_per_epoch"], 4);
    assert_eq!(v["model_type"], "sdxl");
}

#[test]
fn the_text_report_names_problems_and_steps() {
    let f = fixture();
    let (code, out, _) = dpgui(
        &f.home,
        &[
            "dataset",
            f.dataset.to_str().unwrap(),
            "--config",
            f.train.to_str().unwrap(),
            "--gpus",
            "1",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("[[directory]] {}", f.a.display())),
        "{out}"
    );
    assert!(out.contains("warning[missing_caption]"), "{out}");
    assert!(out.contains("nocap.png"), "{out}");
    assert!(out.contains("steps per epoch: 4"), "{out}");
    assert!(out.contains("global batch size: 2"), "{out}");
}

#[test]
fn a_second_scan_comes_from_the_cache_and_sees_changes() {
    let f = fixture();
    let (_, first) = json(&f, &[]);
    let cache_dir = f.home.join("cache").join("dpgui").join("scans");
    assert!(
        std::fs::read_dir(&cache_dir).unwrap().count() >= 2,
        "one cache file per directory"
    );
    // A new image in B with a caption: counted on the next (cached, incremental) scan.
    png(&f.b.join("new.png"), 100, 200);
    caption(&f.b, "new", "new");
    let (_, second) = json(&f, &[]);
    assert_eq!(first["directories"][1]["images"], 1);
    assert_eq!(second["directories"][1]["images"], 2);
    assert_eq!(
        buckets(&second["directories"][1]),
        [(0.5, 368, 720, 1, 3), (1.0, 512, 512, 1, 3)]
    );
}

#[test]
fn bad_input_gets_a_clear_message_and_exit_2() {
    let f = fixture();
    let missing = f.home.join("nope.toml");
    let (code, _, err) = dpgui(&f.home, &["dataset", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no such file"), "{err}");
    let bad = f.home.join("bad.toml");
    std::fs::create_dir_all(&f.home).unwrap();
    std::fs::write(&bad, "resolutions = [512\n[[directory]]\n").unwrap();
    let (code, _, err) = dpgui(&f.home, &["dataset", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:"), "{err}");
    // A directory that does not exist is reported, the others still scanned.
    let ds = f.home.join("ds.toml");
    std::fs::write(
        &ds,
        format!(
            "resolutions = [512]\n[[directory]]\npath = '/nonexistent/dir'\n[[directory]]\npath = '{}'\n",
            f.b.display()
        ),
    )
    .unwrap();
    let (code, out, _) = dpgui(&f.home, &["dataset", ds.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "a directory that cannot be scanned fails");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["directories"][0]["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/dir"),
        "{v:#}"
    );
    assert_eq!(v["directories"][1]["images"], 1);
}

/// An animated WebP aborts diffusion-pipe's caching: a fatal problem, exit 1.
#[test]
fn an_animated_webp_is_fatal() {
    let f = fixture();
    // RIFF header, a VP8X chunk with the animation flag (0x02), canvas 64x32.
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&22u32.to_le_bytes());
    b.extend_from_slice(b"WEBPVP8X");
    b.extend_from_slice(&10u32.to_le_bytes());
    b.extend_from_slice(&[0x02, 0, 0, 0]);
    b.extend_from_slice(&[63, 0, 0, 31, 0, 0]);
    std::fs::write(f.b.join("anim.webp"), &b).unwrap();
    caption(&f.b, "anim", "moving");
    let (code, v) = json(&f, &[]);
    assert_eq!(code, 1, "{v:#}");
    let p = problem(&v["directories"][1], "unsupported").expect("unsupported");
    assert_eq!(p["severity"], "fatal");
    assert!(files(p)[0].starts_with("anim.webp"), "{p:#}");
    // Not in any bucket: B still has only big.png's 3 items.
    assert_eq!(buckets(&v["directories"][1]), [(1.0, 512, 512, 1, 3)]);
}

#[test]
fn a_bare_directory_is_scanned_with_defaults() {
    let f = fixture();
    let (_, out, err) = dpgui(&f.home, &["dataset", f.b.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(v["directories"][0]["images"], 1);
    assert!(v["config"].is_null());
}

/// mask_path and default_mask_file from the config reach the scan: a default mask of the wrong
/// size for one image is fatal (exit 1), named with the file.
#[test]
fn masks_from_the_config_are_checked_against_image_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, masks) = (tmp.path().join("imgs"), tmp.path().join("masks"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    png(&d.join("a.png"), 100, 80);
    png(&d.join("b.png"), 64, 64);
    caption(&d, "a", "one");
    caption(&d, "b", "two");
    png(&masks.join("a.png"), 100, 80);
    png(&tmp.path().join("default.png"), 50, 50);
    let cfg = tmp.path().join("dataset.toml");
    std::fs::write(
        &cfg,
        format!(
            "resolutions = [512]\n[[directory]]\npath = '{}'\nmask_path = '{}'\ndefault_mask_file = '{}'\n",
            d.display(),
            masks.display(),
            tmp.path().join("default.png").display()
        ),
    )
    .unwrap();
    let (code, out, err) = dpgui(tmp.path(), &["dataset", cfg.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(code, 1, "a mask mismatch stops diffusion-pipe: {out}");
    let dir = &v["directories"][0];
    let p = problem(dir, "mask_mismatch").expect("mask_mismatch");
    assert_eq!(p["severity"], "fatal");
    assert_eq!(
        files(p),
        vec!["b.png: mask default.png is 50x50, the image 64x64"]
    );
    assert!(
        problem(dir, "missing_mask").is_none(),
        "the default covers b.png"
    );
}

/// diffusion-pipe's example dataset configs load (their directories do not exist here: each
/// is reported as such, nothing crashes).
#[test]
fn corpus_dataset_configs_load() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/diffusion-pipe-examples"
    ));
    if !dir.is_dir() {
        eprintln!("note: {} is absent; corpus check skipped", dir.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        if !text.contains("[[directory]]") {
            continue;
        }
        seen += 1;
        let (code, out, err) = dpgui(tmp.path(), &["dataset", p.to_str().unwrap(), "--json"]);
        assert_ne!(code, 2, "{}: {err}", p.display());
        let v: Value = serde_json::from_str(&out).unwrap();
        let dirs = v["directories"].as_array().unwrap();
        assert!(!dirs.is_empty(), "{}", p.display());
        for d in dirs {
            assert!(d["error"].is_string(), "{}: {d:#}", p.display());
        }
    }
    assert!(
        seen >= 4,
        "expected the example dataset configs, saw {seen}"
    );
}

/// The linter's errors in the dataset config come with the report: resolutions set only per
/// directory make diffusion-pipe stop (it looks the top-level one up first), exit 1.
#[test]
fn config_errors_come_with_the_report() {
    let f = fixture();
    let ds = f.home.join("per-dir.toml");
    std::fs::create_dir_all(&f.home).unwrap();
    std::fs::write(
        &ds,
        format!(
            "[[directory]]\npath = '{}'\nresolutions = [512]\n",
            f.b.display()
        ),
    )
    .unwrap();
    let (code, out, _) = dpgui(&f.home, &["dataset", ds.to_str().unwrap(), "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let errs = v["config_errors"].as_array().unwrap();
    assert_eq!(errs.len(), 1, "{v:#}");
    assert!(
        errs[0]["message"]
            .as_str()
            .unwrap()
            .contains("top-level `resolutions`")
    );
    // The directory is still scanned and counted.
    assert_eq!(v["directories"][0]["images"], 1);
}
