//! The Datasets tab without a terminal: a real scan of a generated dataset fed to the state,
//! snapshots of the list, a directory, the media browser (caption + half-block preview) and the
//! caches; the keys; a caption edited, saved atomically and read back; tiny terminals.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use dpgui::datasets::report;
use dpgui::datasets::{ScanCache, ScanControl};
use dpgui::tui::app::{AppInfo, Command, Event, State, Tab, update};
use dpgui::tui::datasets::{
    DatasetsCmd, DatasetsEvent, Same, SourceKey, SourceSpec, View, preview, run,
};
mod common;

use common::screen::{render, text as screen};

/// A fixed place, so the paths in the snapshots are the same on every run.
const ROOT: &str = "/tmp/dpgui-test-datasets-tab";

fn png(p: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    image::RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            image::Rgb(rgb)
        } else {
            image::Rgb([255, 255, 255])
        }
    })
    .save_with_format(p, image::ImageFormat::Png)
    .unwrap();
}

/// 3 square images (one without a caption), 2 wide, 1 tall; a cache of 2 files.
fn make_dataset(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let _ = std::fs::remove_dir_all(root);
    let dir = root.join("photos");
    std::fs::create_dir_all(dir.join("cache/sdxl")).unwrap();
    png(&dir.join("cat1.png"), 64, 64, [200, 40, 40]);
    png(&dir.join("cat2.png"), 80, 80, [40, 200, 40]);
    png(&dir.join("cat3.png"), 72, 72, [40, 40, 200]);
    png(&dir.join("wide1.png"), 128, 64, [200, 200, 40]);
    png(&dir.join("wide2.png"), 140, 70, [40, 200, 200]);
    png(&dir.join("tall.png"), 50, 100, [200, 40, 200]);
    for (stem, text) in [
        ("cat1", "a photo of a cat on a sofa"),
        ("cat2", "a cat in the garden"),
        ("wide1", "a wide view"),
        ("wide2", "another wide view"),
        ("tall", "a tall cat"),
    ] {
        std::fs::write(dir.join(format!("{stem}.txt")), text).unwrap();
    }
    for f in ["a.safetensors", "b.safetensors"] {
        let p = dir.join("cache/sdxl").join(f);
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
    }
    // Written before the media: stale.
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for p in [
        dir.join("cache/sdxl/a.safetensors"),
        dir.join("cache/sdxl/b.safetensors"),
        dir.join("cache/sdxl"),
    ] {
        std::fs::File::open(&p).unwrap().set_modified(old).unwrap();
    }
    let dataset = root.join("dataset.toml");
    std::fs::write(
        &dataset,
        format!(
            "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 3\n\n[[directory]]\npath = '{}'\nnum_repeats = 2\n",
            dir.display()
        ),
    )
    .unwrap();
    let train = root.join("train.toml");
    std::fs::write(
        &train,
        format!(
            "output_dir = '{root}/out'\ndataset = '{}'\nepochs = 1\nmicro_batch_size_per_gpu = 2\nsave_every_n_epochs = 1\n[model]\ntype = 'sdxl'\ncheckpoint_path = '/x.safetensors'\ndtype = 'bfloat16'\n[optimizer]\ntype = 'adamw_optimi'\nlr = 1e-5\n",
            dataset.display(),
            root = root.display()
        ),
    )
    .unwrap();
    (dir, dataset, train)
}

fn state(w: u16, h: u16) -> State {
    let mut s = State::new(AppInfo::default());
    s.clock = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000));
    s.size = Rect::new(0, 0, w, h);
    s
}

fn key(c: char) -> Event {
    code(KeyCode::Char(c))
}

fn code(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// What the runtime does for a scan command, synchronously, with a private scan cache.
fn scan(cache: &Path, key: &SourceKey, training: Option<&Path>, gpus: u64) -> DatasetsEvent {
    let base = Path::new("/");
    let t = report::target(base, key.path(), training).unwrap();
    let tr = t
        .training
        .as_ref()
        .and_then(|(p, text)| report::Training::read(p, text, gpus, base));
    let control = Arc::new(ScanControl::new());
    let scans = report::scan_all(&t.plan, Some(&ScanCache::open(cache)), &control);
    DatasetsEvent::Scanned {
        key: key.clone(),
        result: Ok(Same(Arc::new(report::assemble(&t.plan, scans, tr)))),
        fingerprint: run::fingerprint(&t.plan, training),
    }
}

/// Runs the commands a key returned the way the runtime would (caption, preview, save).
fn perform(s: &mut State, cmds: Vec<Command>) {
    for c in cmds {
        let ev = match c {
            Command::Datasets(DatasetsCmd::LoadCaption { dir, file }) => {
                DatasetsEvent::Caption(run::load_caption(&dir, &file))
            }
            Command::Datasets(DatasetsCmd::Preview { path }) => {
                DatasetsEvent::Preview(preview::decode(&path))
            }
            Command::Datasets(DatasetsCmd::SaveCaption {
                path,
                text,
                expected,
            }) => DatasetsEvent::CaptionSaved(run::save_caption(&path, &text, expected.as_deref())),
            _ => continue,
        };
        let more = update(s, Event::Datasets(ev));
        perform(s, more);
    }
}

#[test]
fn datasets_tab_end_to_end() {
    let root = PathBuf::from(ROOT);
    let (dir, dataset, train) = make_dataset(&root);
    let cache = tempfile::tempdir().unwrap();
    let mut s = state(120, 36);

    // Entering the tab asks for the workspace's datasets.
    let cmds = update(&mut s, key('2'));
    assert_eq!(s.tab, Tab::Datasets);
    assert_eq!(cmds, vec![Command::Datasets(DatasetsCmd::Discover)]);
    insta::assert_snapshot!("datasets_looking", render(&s).backend());

    // The runtime's discovery from the Config tab's file list: the training config names the
    // dataset config.
    let files = vec![dpgui::tui::config::FileEntry {
        path: train.clone(),
        kind: dpgui::tui::config::Kind::Main,
        group: ROOT.into(),
    }];
    let specs = run::discover(&files, Path::new("/"), &[]);
    assert_eq!(
        specs,
        vec![SourceSpec {
            key: SourceKey::Config(dataset.clone()),
            training: vec![train.clone()],
        }]
    );
    let cmds = update(&mut s, Event::Datasets(DatasetsEvent::Sources(specs)));
    let key0 = SourceKey::Config(dataset.clone());
    assert_eq!(
        cmds,
        vec![Command::Datasets(DatasetsCmd::Scan {
            key: key0.clone(),
            training: Some(train.clone()),
            gpus: 1,
            rescan: false,
        })]
    );
    update(
        &mut s,
        Event::Datasets(scan(cache.path(), &key0, Some(&train), 1)),
    );
    let text = screen(&render(&s));
    // 5 captioned images × 2 repeats; batch 2: ar 1 (cat1 cat2) 4 → 2 steps, ar 2 (wide1
    // wide2) 4 → 2, ar 0.5 (tall) 2 → 1: 5 steps.
    assert!(text.contains("steps per epoch 5"), "{text}");
    assert!(
        text.contains("cat3.png") || text.contains("no caption"),
        "{text}"
    );
    insta::assert_snapshot!("datasets_list", render(&s).backend());

    // The directory: problems and buckets.
    update(&mut s, code(KeyCode::Enter));
    assert!(matches!(s.datasets.view, View::Directory { dir: 0, .. }));
    insta::assert_snapshot!("datasets_directory", render(&s).backend());

    // The missing caption problem lists cat3.png; Enter opens it in the browser.
    let r = s.datasets.report().unwrap().clone();
    let i = r.directories[0]
        .problems
        .iter()
        .position(|p| p.kind == "missing_caption")
        .expect("missing_caption");
    for _ in 0..i {
        update(&mut s, code(KeyCode::Down));
    }
    let cmds = update(&mut s, code(KeyCode::Enter));
    let View::Browser(b) = &s.datasets.view else {
        panic!("browser expected")
    };
    assert_eq!(b.files, vec!["cat3.png".to_string()]);
    perform(&mut s, cmds);
    insta::assert_snapshot!("datasets_browser_missing", render(&s).backend());

    // All media: a captioned image with its preview.
    update(&mut s, code(KeyCode::Esc));
    let cmds = update(&mut s, key('m'));
    perform(&mut s, cmds);
    let View::Browser(b) = &s.datasets.view else {
        panic!("browser expected")
    };
    assert_eq!(b.files[0], "cat1.png");
    assert_eq!(
        b.caption.as_ref().unwrap().text,
        Ok("a photo of a cat on a sofa".to_string())
    );
    assert!(s.datasets.preview.as_ref().unwrap().image.is_ok());
    insta::assert_snapshot!("datasets_browser", render(&s).backend());
    // The half-block preview paints the image's colours (left half red, right half white).
    let t = render(&s);
    let buf = t.backend().buffer();
    let painted: std::collections::BTreeSet<String> = (42..118)
        .flat_map(|x| (2..20).map(move |y| (x, y)))
        .map(|(x, y)| format!("{:?}", buf[(x as u16, y as u16)].bg))
        .collect();
    assert!(
        painted
            .iter()
            .any(|c| c.contains("200, 40, 40") || c.contains("Rgb(200")),
        "{painted:?}"
    );

    // Edit the caption: select all is not needed, type at the end, save, read back.
    update(&mut s, key('e'));
    update(&mut s, code(KeyCode::End));
    for c in ", sleeping".chars() {
        update(&mut s, key(c));
    }
    // `q` and digits are text while editing.
    assert_eq!(s.tab, Tab::Datasets);
    let cmds = update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)),
    );
    assert!(matches!(
        cmds.as_slice(),
        [Command::Datasets(DatasetsCmd::SaveCaption { .. })]
    ));
    perform(&mut s, cmds);
    assert_eq!(
        std::fs::read_to_string(dir.join("cat1.txt")).unwrap(),
        "a photo of a cat on a sofa, sleeping"
    );
    // No `cat1.txt.bak` beside it: a dataset directory is no place for backups.
    assert!(!dir.join("cat1.txt.bak").exists());
    let View::Browser(b) = &s.datasets.view else {
        panic!()
    };
    assert!(b.edit.is_none(), "saved: editing ends");
    // Re-read from disk as the browser does when the file is shown again.
    let c = run::load_caption(&dir, "cat1.png");
    assert_eq!(
        c.text,
        Ok("a photo of a cat on a sofa, sleeping".to_string())
    );

    // An unsaved edit is not lost to Esc: it asks.
    update(&mut s, key('e'));
    update(&mut s, key('X'));
    update(&mut s, code(KeyCode::Esc));
    let View::Browser(b) = &s.datasets.view else {
        panic!()
    };
    assert!(b.confirm_discard && b.edit.is_some());
    update(&mut s, key('d'));
    let View::Browser(b) = &s.datasets.view else {
        panic!()
    };
    assert!(b.edit.is_none());
    assert_eq!(
        std::fs::read_to_string(dir.join("cat1.txt")).unwrap(),
        "a photo of a cat on a sofa, sleeping",
        "discarded: the file is unchanged"
    );

    // A caption for the file without one: created on save.
    let n = b.files.iter().position(|f| f == "cat3.png").unwrap();
    for _ in 0..n {
        let cmds = update(&mut s, key('n'));
        perform(&mut s, cmds);
    }
    update(&mut s, key('e'));
    for c in "a blue cat".chars() {
        update(&mut s, key(c));
    }
    let cmds = update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)),
    );
    perform(&mut s, cmds);
    // A new file ends with a newline, like files written by editors (diffusion-pipe strips it).
    assert_eq!(
        std::fs::read_to_string(dir.join("cat3.txt")).unwrap(),
        "a blue cat\n"
    );

    // Caches: listed, stale (written before the media), deleted only after y.
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, key('c'));
    assert!(matches!(s.datasets.view, View::Cache { row: 0 }));
    let text = screen(&render(&s));
    assert!(text.contains("sdxl"), "{text}");
    assert!(text.contains("--regenerate_cache"), "{text}");
    insta::assert_snapshot!("datasets_cache", render(&s).backend());
    update(&mut s, key('D'));
    assert!(s.datasets.ask.is_some());
    let cmds = update(&mut s, key('n'));
    assert!(cmds.is_empty(), "anything but y keeps the cache");
    assert!(dir.join("cache/sdxl").is_dir());
    update(&mut s, key('D'));
    let cmds = update(&mut s, key('y'));
    assert_eq!(
        cmds,
        vec![Command::Datasets(DatasetsCmd::DeleteCache {
            dir: dir.clone(),
            name: "sdxl".into()
        })]
    );
    let freed = dpgui::datasets::delete_cache(&dir, "sdxl").unwrap();
    assert_eq!(freed, 8192);
    assert!(!dir.join("cache/sdxl").exists());

    // A rescan sees the new caption: nothing is skipped any more.
    update(&mut s, code(KeyCode::Esc));
    update(
        &mut s,
        Event::Datasets(scan(cache.path(), &key0, Some(&train), 1)),
    );
    let r = s.datasets.report().unwrap();
    assert!(
        !r.directories[0]
            .problems
            .iter()
            .any(|p| p.kind == "missing_caption")
    );
    assert_eq!(r.directories[0].trained, 6);

    // More GPUs: the steps per epoch follow (the key asks for a rescan with 2 GPUs).
    let cmds = update(&mut s, key('+'));
    assert_eq!(
        cmds,
        vec![Command::Datasets(DatasetsCmd::Scan {
            key: key0.clone(),
            training: Some(train.clone()),
            gpus: 2,
            rescan: false,
        })]
    );

    // Tiny terminals: every view draws without panicking.
    for (w, h) in [(20, 5), (1, 1), (0, 0), (40, 12), (200, 2)] {
        s.size = Rect::new(0, 0, w, h);
        for v in [
            View::List,
            View::Directory { dir: 0, problem: 0 },
            View::Cache { row: 0 },
        ] {
            s.datasets.view = v;
            render(&s);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_empty_tab_says_what_to_do() {
    let mut s = state(100, 30);
    update(&mut s, key('2'));
    update(&mut s, Event::Datasets(DatasetsEvent::Sources(vec![])));
    let text = screen(&render(&s));
    assert!(text.contains("No dataset configs found"), "{text}");
    assert!(text.contains("press a"), "{text}");
    // Adding a directory: typed, then asked of the runtime.
    update(&mut s, key('a'));
    for c in "/srv/data".chars() {
        update(&mut s, key(c));
    }
    let cmds = update(&mut s, code(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Datasets(DatasetsCmd::AddDirectory(
            "/srv/data".into()
        ))]
    );
    // The help lists the tab's keys.
    update(&mut s, key('?'));
    let text = screen(&render(&s));
    assert!(text.contains("media browser"), "{text}");
}

/// Unsaved caption edits are never lost silently: Ctrl-C asks once, leaving the tab is refused,
/// typing after Ctrl-S stays in the editor, a hang-up keeps a recovery copy; saves refuse a
/// caption that became a symlink; with captions.json present the .txt is not what is shown.
#[test]
fn caption_edits_are_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dataset, _) = make_dataset(&tmp.path().join("ds"));
    let cache = tempfile::tempdir().unwrap();
    let mut s = state(120, 36);
    update(&mut s, key('2'));
    let k = SourceKey::Config(dataset.clone());
    update(
        &mut s,
        Event::Datasets(DatasetsEvent::Sources(vec![SourceSpec {
            key: k.clone(),
            training: vec![],
        }])),
    );
    update(&mut s, Event::Datasets(scan(cache.path(), &k, None, 1)));
    update(&mut s, code(KeyCode::Enter));
    let cmds = update(&mut s, key('m'));
    perform(&mut s, cmds);
    update(&mut s, key('e'));
    update(&mut s, code(KeyCode::End));
    update(&mut s, key('!'));
    let ctrl = |c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));

    // Another tab: refused while the caption is unsaved.
    let cmds = dpgui::tui::app::switch_tab(&mut s, Tab::Jobs);
    assert!(cmds.is_empty());
    assert_eq!(s.tab, Tab::Datasets, "left the tab with an unsaved caption");

    // Ctrl-C asks first; nothing is quit.
    update(&mut s, ctrl('c'));
    assert!(!s.quit, "the first Ctrl-C asks");
    let View::Browser(b) = &s.datasets.view else {
        panic!()
    };
    assert!(b.confirm_discard);

    // A hang-up now keeps the text in the recovery folder.
    let state_dir = tmp.path().join("state");
    let kept = dpgui::tui::datasets::keep_unsaved(&s, &state_dir).expect("kept");
    assert!(std::fs::read_to_string(&kept).unwrap().contains("sofa"));

    // Save, with typing arriving before the save's answer: the editor keeps the newer text.
    update(&mut s, key('s'));
    let View::Browser(b) = &s.datasets.view else {
        panic!()
    };
    let path = b.caption.as_ref().unwrap().path.clone();
    let saved_text = b.edit.as_ref().unwrap().text();
    let saved = run::save_caption(&path, &saved_text, Some("a photo of a cat on a sofa")).unwrap();
    update(&mut s, key('?'));
    update(
        &mut s,
        Event::Datasets(DatasetsEvent::CaptionSaved(Ok(saved))),
    );
    let View::Browser(b) = &s.datasets.view else {
        panic!()
    };
    assert!(b.edit.as_ref().is_some_and(|e| e.text().ends_with("!?")));
    assert!(dpgui::tui::datasets::unsaved_caption(&s));
    // A second Ctrl-C after the question quits without saving.
    update(&mut s, ctrl('c'));
    update(&mut s, ctrl('c'));
    assert!(s.quit);

    // A caption that is a symlink is neither shown for editing nor written through.
    let outside = tmp.path().join("outside.txt");
    std::fs::write(&outside, "keep me").unwrap();
    std::fs::remove_file(dir.join("cat2.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("cat2.txt")).unwrap();
    assert!(run::load_caption(&dir, "cat2.png").text.is_err());
    assert!(run::save_caption(&dir.join("cat2.txt"), "x", Some("keep me")).is_err());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");

    // captions.json present: it is the source, the .txt beside the file is not.
    std::fs::write(dir.join("captions.json"), r#"{"cat1.png": ["from json"]}"#).unwrap();
    let c = run::load_caption(&dir, "cat1.png");
    assert!(c.from_json);
    assert_eq!(c.text, Ok("from json".to_string()));
    let c = run::load_caption(&dir, "wide1.png");
    assert!(c.from_json && c.text.is_err(), "{c:?}");
}

/// A member of a .tar in the browser: its caption comes only from captions.json (by its path in
/// the archive) and is never written as a .txt; its preview is decoded from the archive.
#[test]
fn archive_members_are_previewed_from_the_archive_and_captioned_only_by_captions_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut png = Vec::new();
    image::RgbImage::from_pixel(40, 30, image::Rgb([200, 10, 10]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(png.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "imgs/a.png", png.as_slice()).unwrap();
    std::fs::write(dir.join("shard.tar"), b.into_inner().unwrap()).unwrap();
    // A top-level a.txt is not the member's caption.
    std::fs::write(dir.join("a.txt"), "top level").unwrap();

    let c = run::load_caption(dir, "shard.tar/imgs/a.png");
    let e = c.text.unwrap_err();
    assert!(
        e.contains("captions.json") && e.contains("imgs/a.png"),
        "{e}"
    );
    assert!(!c.from_json);

    std::fs::write(
        dir.join("captions.json"),
        r#"{"imgs/a.png": ["a red square"]}"#,
    )
    .unwrap();
    let c = run::load_caption(dir, "shard.tar/imgs/a.png");
    assert_eq!(c.text.as_deref(), Ok("a red square"));
    assert!(c.from_json, "read-only: captions.json is edited as a file");

    let p = preview::decode(&dir.join("shard.tar/imgs/a.png"));
    let img = p.image.expect("decoded from the archive");
    assert_eq!((img.width(), img.height()), (40, 30));
    let missing = preview::decode(&dir.join("shard.tar/imgs/gone.png"));
    assert!(
        missing
            .image
            .as_ref()
            .unwrap_err()
            .contains("no longer in the archive"),
        "{:?}",
        missing.image.err()
    );
}

/// A caption rewritten in place by another tool (no rename: the directory's time does not move)
/// brings a rescan of the dataset on screen, once the writes have stopped for a tick.
#[test]
fn a_caption_rewritten_in_place_brings_one_rescan_after_the_writes_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ds");
    let (dir, dataset, train) = make_dataset(&root);
    let cache = tempfile::tempdir().unwrap();
    let mut s = state(120, 36);
    update(&mut s, key('2'));
    let files = vec![dpgui::tui::config::FileEntry {
        path: train.clone(),
        kind: dpgui::tui::config::Kind::Main,
        group: root.display().to_string(),
    }];
    update(
        &mut s,
        Event::Datasets(DatasetsEvent::Sources(run::discover(
            &files,
            Path::new("/"),
            &[],
        ))),
    );
    let key0 = SourceKey::Config(dataset.clone());
    update(
        &mut s,
        Event::Datasets(scan(cache.path(), &key0, Some(&train), 1)),
    );

    let mut w = dpgui::tui::datasets::watch::Watcher::new();
    let mut pending = false;
    assert_eq!(
        run::watch_tick(&s, &mut w, &mut pending),
        None,
        "nothing changed"
    );
    assert_eq!(run::watched_dirs(&s), vec![dir.clone(), dir.join("cache")]);

    let dir_time = std::fs::metadata(&dir).unwrap().modified().unwrap();
    std::fs::write(dir.join("cat1.txt"), "a cat, rewritten in place").unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().modified().unwrap(),
        dir_time
    );
    // The tick that sees the write waits; the next quiet one rescans.
    let first = run::watch_tick(&s, &mut w, &mut pending);
    if first.is_none() && !pending {
        eprintln!("note: no inotify here; in-place rewrites are not seen");
        return;
    }
    assert_eq!(first, None);
    assert!(pending);
    assert_eq!(
        run::watch_tick(&s, &mut w, &mut pending),
        Some(DatasetsCmd::Scan {
            key: key0,
            training: Some(train),
            gpus: 1,
            rescan: false,
        })
    );
    assert!(!pending);
    assert_eq!(run::watch_tick(&s, &mut w, &mut pending), None, "once");
}
