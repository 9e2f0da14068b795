//! Hugging Face downloads in the dashboard without a terminal: the Config tab's hub dialog
//! (F4) from a key holding a repo id to the download command, the finished download's path in
//! the editor buffer (comments intact, one undo step) or in the file on disk, the downloads
//! window (F6) with its progress numbers and keys, the hub cache page with its delete question,
//! offline mode, and the runtime against the loopback hub server.

#[path = "common/hub_server.rs"]
mod hub_server;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use dpgui::hub::{
    CacheKey, CachedRepo, Dest, FileState, FileStatus, HubConfig, HubError, JobState, JobStatus,
    RepoFile, RepoListing, Request, Selection,
};
use dpgui::tui::app::{AppInfo, Command, Event, Overlay, State, Tab, update};
use dpgui::tui::config::hub::{HubDialog, Step, WriteBack};
use dpgui::tui::config::pathkey::{PathLoc, Seg};
use dpgui::tui::config::{ConfigCmd, ConfigEvent, ConfigOverlay, Focus, Role};
use dpgui::tui::hub::{HubCmd, HubEvent, Page, Runtime};
mod common;

use common::screen::{TINY_SIZES, render, text};

const SDXL: &str = "stabilityai/stable-diffusion-xl-base-1.0";
const COMMIT: &str = "462165984030d82259a11f4367a4eed129e94a7b";
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

const TRAIN: &str = "# SDXL LoRA on my cat\noutput_dir = '/data/runs/cat'   # runs go here\ndataset = '/data/cat-dataset.toml'\nepochs = 10\n\n[model]\ntype = 'sdxl'\n# the base model: a hub id for now\ncheckpoint_path = 'stabilityai/stable-diffusion-xl-base-1.0'  # FIXME download\ndtype = 'bfloat16'\n\n[adapter]\ntype = 'lora'\nrank = 32\n";

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typ(s: &mut State, text: &str) {
    for c in text.chars() {
        update(s, key(c));
    }
}

fn screen(s: &State) -> String {
    text(&render(s))
}

fn base_state(w: u16, h: u16) -> State {
    let mut s = State::new(AppInfo::default());
    s.clock = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000));
    s.size = Rect::new(0, 0, w, h);
    s.hub.cache_dir = "/hf/hub".into();
    s
}

/// The Config tab with /data/cat.toml open and the cursor on `checkpoint_path`.
fn open_state(w: u16, h: u16) -> State {
    let mut s = base_state(w, h);
    s.tab = Tab::Config;
    s.config.dirs = vec!["/data".into()];
    update(
        &mut s,
        Event::Config(ConfigEvent::Files(vec![dpgui::tui::config::FileEntry {
            path: "/data/cat.toml".into(),
            kind: dpgui::tui::config::Kind::Main,
            group: "/data".into(),
        }])),
    );
    update(
        &mut s,
        Event::Config(ConfigEvent::Opened {
            role: Role::Main,
            path: "/data/cat.toml".into(),
            result: Ok(TRAIN.into()),
        }),
    );
    assert_eq!(s.config.focus, Focus::Editor);
    s.config.main.as_mut().unwrap().editor.jump(8, 4);
    s
}

fn dialog(s: &State) -> &HubDialog {
    match &s.overlay {
        Overlay::Config(o) => match o.as_ref() {
            ConfigOverlay::Hub(d) => d,
            other => panic!("not the hub dialog: {other:?}"),
        },
        other => panic!("no dialog: {other:?}"),
    }
}

fn f(path: &str, size: u64) -> RepoFile {
    RepoFile {
        path: path.into(),
        size,
    }
}

/// What the loopback-free tests list: the SDXL repo's layout with real sizes.
fn sdxl_listing(from_cache: bool) -> RepoListing {
    RepoListing {
        repo: SDXL.into(),
        revision: "main".into(),
        commit: from_cache.then(|| COMMIT.to_string()),
        files: vec![
            f("model_index.json", 609),
            f("sd_xl_base_1.0.safetensors", 6_938_078_334),
            f("sd_xl_offset_example-lora_1.0.safetensors", 49_553_604),
            f("unet/config.json", 1_680),
            f("unet/diffusion_pytorch_model.safetensors", 10_270_077_736),
        ],
        from_cache,
    }
}

fn file(path: &str, size: u64, done: u64, state: FileState) -> FileStatus {
    FileStatus {
        path: path.into(),
        size: Some(size),
        done,
        resumed_from: 0,
        fetched: done,
        state,
        local_path: None,
        rate: 0.0,
        eta_secs: None,
    }
}

fn job(
    id: u64,
    repo: &str,
    selection: Selection,
    state: JobState,
    files: Vec<FileStatus>,
) -> JobStatus {
    let total = files.iter().map(|f| f.size.unwrap_or(0)).sum();
    let done = files.iter().map(|f| f.done).sum();
    JobStatus {
        id,
        request: Request {
            repo: repo.into(),
            revision: "main".into(),
            selection,
            dest: Dest::Cache,
        },
        state,
        files,
        commit: None,
        total,
        done,
        fetched: done,
        rate: 0.0,
        eta_secs: None,
        local_path: None,
        error: None,
    }
}

#[test]
fn dialog_lists_suggests_queues_and_the_finished_path_lands_in_the_buffer() {
    let mut s = open_state(120, 36);
    // F4 on a key holding a repo id: the dialog, prefilled with it.
    assert_eq!(update(&mut s, code(KeyCode::F(4))), vec![]);
    let d = dialog(&s);
    assert_eq!(d.repo, SDXL);
    assert_eq!(d.step, Step::Repo);
    assert_eq!(d.loc.name(), "model.checkpoint_path");
    assert_eq!(d.model, "sdxl");
    assert_eq!(d.sources[0].repo, SDXL, "the built-in known-good source");
    assert_eq!(d.source_sel, Some(0));
    insta::assert_snapshot!("hub_dialog_repo", render(&s).backend());
    // Enter lists the repo in the background.
    let cmds = update(&mut s, code(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Hub(HubCmd::List {
            repo: SDXL.into(),
            revision: "main".into()
        })]
    );
    assert!(screen(&s).contains("listing…"));
    // A listing for another repo (a stale answer) changes nothing.
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: "other/repo".into(),
            result: Ok(sdxl_listing(false)),
        }),
    );
    assert!(dialog(&s).loading);
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: SDXL.into(),
            result: Ok(sdxl_listing(false)),
        }),
    );
    let d = dialog(&s);
    assert!(!d.loading);
    assert_eq!(d.step, Step::Files);
    // A file key: the .safetensors files, the known-good one first and marked, then the rest.
    let rows: Vec<(&str, bool, u64)> = d
        .choices
        .iter()
        .map(|c| (c.path.as_str(), c.suggested(), c.bytes))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("sd_xl_base_1.0.safetensors", true, 6_938_078_334),
            (
                "sd_xl_offset_example-lora_1.0.safetensors",
                true,
                49_553_604
            ),
            (
                "unet/diffusion_pytorch_model.safetensors",
                true,
                10_270_077_736
            ),
            ("model_index.json", false, 609),
            ("unet/config.json", false, 1_680),
        ]
    );
    assert!(d.choices[0].known);
    let text = screen(&s);
    // 609 + 6938078334 + 49553604 + 1680 + 10270077736 = 17257711963 bytes = 16.07 GiB.
    assert!(text.contains("5 files, 16.1 GiB"), "{text}");
    assert!(text.contains("★ sd_xl_base_1.0.safetensors"), "{text}");
    insta::assert_snapshot!("hub_dialog_files", render(&s).backend());
    // Choose the first, keep the hub cache: the download command, the dialog closes.
    update(&mut s, code(KeyCode::Enter));
    assert_eq!(dialog(&s).step, Step::Dest);
    insta::assert_snapshot!("hub_dialog_dest", render(&s).backend());
    let cmds = update(&mut s, code(KeyCode::Enter));
    let loc = PathLoc {
        segs: vec![Seg::Key("model".into()), Seg::Key("checkpoint_path".into())],
        value: Some(SDXL.into()),
        expect: Some(dpgui::trainer::lint::Expect::File),
        note: dialog_note(),
    };
    let write = WriteBack {
        config: "/data/cat.toml".into(),
        loc,
    };
    assert_eq!(
        cmds,
        vec![Command::Hub(HubCmd::Download {
            request: Request {
                repo: SDXL.into(),
                revision: "main".into(),
                selection: Selection::Files(vec!["sd_xl_base_1.0.safetensors".into()]),
                dest: Dest::Cache,
            },
            write: Some(write.clone()),
        })]
    );
    assert_eq!(s.overlay, Overlay::None);
    // The runtime queued it as job 7 and polls.
    update(
        &mut s,
        Event::Hub(HubEvent::Queued {
            repo: SDXL.into(),
            result: Ok(7),
            write: Some(write),
        }),
    );
    assert!(s.status.as_ref().unwrap().1.contains("F6"));
    let mut running = job(
        7,
        SDXL,
        Selection::Files(vec!["sd_xl_base_1.0.safetensors".into()]),
        JobState::Running,
        vec![file(
            "sd_xl_base_1.0.safetensors",
            6 * GIB,
            3 * GIB / 2,
            FileState::Downloading,
        )],
    );
    running.rate = 100.0 * MIB as f64;
    running.eta_secs = Some(46.08);
    update(&mut s, Event::Hub(HubEvent::Jobs(vec![running.clone()])));
    assert!(s.hub.active());
    // 4.5 GiB left at 100 MiB/s: 4608 MiB / 100 MiB/s = 46.08 s.
    s.status = None;
    let text = screen(&s);
    let status = text.lines().last().unwrap();
    assert!(
        status.contains("⇣ 1 download 1.5 GiB/6.0 GiB 100 MiB/s ETA 46s"),
        "{status}"
    );
    // Done: the snapshot path goes into the open buffer through toml_edit.
    let local = format!(
        "/hf/hub/models--stabilityai--stable-diffusion-xl-base-1.0/snapshots/{COMMIT}/sd_xl_base_1.0.safetensors"
    );
    let mut done = running;
    done.state = JobState::Done;
    done.files[0].state = FileState::Done;
    done.files[0].done = 6 * GIB;
    done.done = 6 * GIB;
    done.rate = 0.0;
    done.local_path = Some(local.clone().into());
    let cmds = update(&mut s, Event::Hub(HubEvent::Jobs(vec![done.clone()])));
    assert_eq!(
        cmds,
        vec![Command::Config(ConfigCmd::Lint { debounce: false })]
    );
    let want = TRAIN.replace(
        "checkpoint_path = 'stabilityai/stable-diffusion-xl-base-1.0'  # FIXME download",
        &format!("checkpoint_path = '{local}'  # FIXME download"),
    );
    let b = s.config.main.as_ref().unwrap();
    assert_eq!(b.editor.text(), want);
    assert!(b.dirty, "marked modified");
    assert!(s.hub.writes.is_empty());
    assert!(!s.hub.active());
    let msg = &s.status.as_ref().unwrap().1;
    assert!(
        msg.contains(&format!("model.checkpoint_path = '{local}'")),
        "{msg}"
    );
    // The same snapshot again writes nothing twice.
    assert_eq!(
        update(&mut s, Event::Hub(HubEvent::Jobs(vec![done]))),
        vec![]
    );
    // One undo step takes it back.
    update(&mut s, ctrl('z'));
    let b = s.config.main.as_ref().unwrap();
    assert_eq!(b.editor.text(), TRAIN);
    assert!(!b.dirty);
}

/// The linter's note for SDXL's checkpoint_path, as the dialog carries it.
fn dialog_note() -> String {
    dpgui::trainer::lint::path_key("sdxl", "checkpoint_path")
        .unwrap()
        .note
        .to_string()
}

#[test]
fn dialog_keys_sources_typing_errors_directories_and_the_picker_way_in() {
    let mut s = open_state(100, 30);
    // From the path picker: F4 opens the hub dialog on the same key.
    let cmds = update(&mut s, code(KeyCode::F(2)));
    assert!(matches!(
        &cmds[..],
        [Command::Config(ConfigCmd::List { .. })]
    ));
    update(&mut s, code(KeyCode::F(4)));
    assert_eq!(dialog(&s).loc.name(), "model.checkpoint_path");
    // Typing replaces the repo id; a bad one is refused with a sentence, nothing is listed.
    update(&mut s, ctrl('u'));
    assert_eq!(dialog(&s).repo, "");
    assert_eq!(update(&mut s, code(KeyCode::Enter)), vec![]);
    assert_eq!(
        dialog(&s).error.as_deref(),
        Some("type a repo id (owner/name)")
    );
    typ(&mut s, "not a repo");
    assert_eq!(update(&mut s, code(KeyCode::Enter)), vec![]);
    assert!(
        dialog(&s)
            .error
            .as_ref()
            .unwrap()
            .contains("not a hub repo id")
    );
    // ↓ picks the known-good source.
    update(&mut s, code(KeyCode::Down));
    assert_eq!(dialog(&s).repo, SDXL);
    update(&mut s, ctrl('u'));
    typ(&mut s, "me/my-sdxl");
    assert_eq!(dialog(&s).source_sel, None);
    let cmds = update(&mut s, code(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Hub(HubCmd::List {
            repo: "me/my-sdxl".into(),
            revision: "main".into()
        })]
    );
    // The hub's error sentence, as it is.
    let err = HubError::RepoNotFound {
        repo: "me/my-sdxl".into(),
        token_sent: false,
    };
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: "me/my-sdxl".into(),
            result: Err(err.clone()),
        }),
    );
    assert_eq!(dialog(&s).error, Some(err.to_string()));
    assert!(screen(&s).contains(&err.to_string()[..40]));
    // Esc: back to the repo; r lists again.
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(dialog(&s).step, Step::Repo);
    update(&mut s, ctrl('u'));
    typ(&mut s, SDXL);
    update(&mut s, code(KeyCode::Enter));
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: SDXL.into(),
            result: Ok(sdxl_listing(false)),
        }),
    );
    // The second suggestion, into a directory typed relative to the config's folder.
    update(&mut s, key('j'));
    update(&mut s, code(KeyCode::Enter));
    update(&mut s, code(KeyCode::Down));
    assert!(dialog(&s).to_dir);
    assert_eq!(update(&mut s, code(KeyCode::Enter)), vec![]);
    assert!(
        dialog(&s)
            .error
            .as_ref()
            .unwrap()
            .contains("type a directory")
    );
    typ(&mut s, "models");
    let cmds = update(&mut s, code(KeyCode::Enter));
    let [Command::Hub(HubCmd::Download { request, write })] = &cmds[..] else {
        panic!("{cmds:?}");
    };
    assert_eq!(
        request.selection,
        Selection::Files(vec!["sd_xl_offset_example-lora_1.0.safetensors".into()])
    );
    assert_eq!(request.dest, Dest::Dir("/data/models".into()));
    assert_eq!(
        write.as_ref().unwrap().config,
        PathBuf::from("/data/cat.toml")
    );
    // Esc in the first step closes the dialog without a command.
    update(&mut s, code(KeyCode::F(4)));
    assert_eq!(update(&mut s, code(KeyCode::Esc)), vec![]);
    assert_eq!(s.overlay, Overlay::None);
    // F4 on a key that is no path: a warning, no dialog.
    s.config.main.as_mut().unwrap().editor.jump(9, 0);
    update(&mut s, code(KeyCode::F(4)));
    assert_eq!(s.overlay, Overlay::None);
    assert!(s.status.as_ref().unwrap().1.contains("not a path key"));
}

#[test]
fn a_directory_key_gets_the_repo_and_its_folders_and_an_empty_key_its_known_source() {
    let text = "[model]\ntype = 'flux'\ndiffusers_path = ''\ndtype = 'bfloat16'\n";
    let mut s = base_state(100, 30);
    s.tab = Tab::Config;
    update(
        &mut s,
        Event::Config(ConfigEvent::Opened {
            role: Role::Main,
            path: "/w/flux.toml".into(),
            result: Ok(text.into()),
        }),
    );
    s.config.main.as_mut().unwrap().editor.jump(2, 0);
    update(&mut s, code(KeyCode::F(4)));
    // Empty: the first known-good source for flux diffusers_path.
    assert_eq!(dialog(&s).repo, "black-forest-labs/FLUX.1-dev");
    assert_eq!(dialog(&s).sources.len(), 2);
    update(&mut s, code(KeyCode::Down));
    assert_eq!(dialog(&s).repo, "black-forest-labs/FLUX.1-schnell");
    update(&mut s, code(KeyCode::Enter));
    let listing = RepoListing {
        repo: "black-forest-labs/FLUX.1-schnell".into(),
        revision: "main".into(),
        commit: None,
        files: vec![
            f("model_index.json", 500),
            f("transformer/config.json", 300),
            f("transformer/a.safetensors", 1000),
            f("vae/b.safetensors", 200),
        ],
        from_cache: false,
    };
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: "black-forest-labs/FLUX.1-schnell".into(),
            result: Ok(listing),
        }),
    );
    let rows: Vec<(String, bool, usize, u64)> = dialog(&s)
        .choices
        .iter()
        .map(|c| (c.label(), c.suggested(), c.files, c.bytes))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("(the whole repo)".to_string(), true, 4, 2000),
            ("transformer/".to_string(), false, 2, 1300),
            ("vae/".to_string(), false, 1, 200),
        ]
    );
    update(&mut s, key('j'));
    update(&mut s, code(KeyCode::Enter));
    let cmds = update(&mut s, code(KeyCode::Enter));
    let [Command::Hub(HubCmd::Download { request, .. })] = &cmds[..] else {
        panic!("{cmds:?}");
    };
    assert_eq!(request.selection, Selection::Folder("transformer".into()));
}

#[test]
fn offline_mode_says_so_and_names_what_is_missing() {
    let mut s = open_state(100, 30);
    s.hub.offline = true;
    update(&mut s, code(KeyCode::F(4)));
    assert!(screen(&s).contains("offline (HF_HUB_OFFLINE)"));
    update(&mut s, code(KeyCode::Enter));
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: SDXL.into(),
            result: Ok(sdxl_listing(true)),
        }),
    );
    assert!(screen(&s).contains("(from the cache: offline)"));
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, code(KeyCode::Enter));
    let err = HubError::Offline {
        repo: SDXL.into(),
        missing: vec![],
    };
    update(
        &mut s,
        Event::Hub(HubEvent::Listed {
            repo: SDXL.into(),
            result: Err(err),
        }),
    );
    assert_eq!(
        dialog(&s).error.as_deref(),
        Some(
            "offline mode (HF_HUB_OFFLINE or --offline): stabilityai/stable-diffusion-xl-base-1.0 is not in the cache"
        )
    );
    // A download that misses files offline fails with the list of them.
    let mut j = job(3, SDXL, Selection::All, JobState::Running, vec![]);
    update(&mut s, Event::Hub(HubEvent::Jobs(vec![j.clone()])));
    j.state = JobState::Failed;
    j.error = Some(HubError::Offline {
        repo: SDXL.into(),
        missing: vec!["unet/config.json".into()],
    });
    update(&mut s, Event::Hub(HubEvent::Jobs(vec![j])));
    let msg = &s.status.as_ref().unwrap().1;
    assert!(
        msg.contains("not in the cache: stabilityai/stable-diffusion-xl-base-1.0/unet/config.json"),
        "{msg}"
    );
}

fn queue() -> Vec<JobStatus> {
    let mut a = job(
        1,
        "Wan-AI/Wan2.1-T2V-1.3B",
        Selection::All,
        JobState::Running,
        vec![
            file("config.json", 2 * 1024, 2 * 1024, FileState::Cached),
            file(
                "diffusion_pytorch_model.safetensors",
                4 * GIB,
                GIB,
                FileState::Downloading,
            ),
            file("Wan2.1_VAE.pth", 484 * MIB, 0, FileState::Pending),
        ],
    );
    a.rate = 80.0 * MIB as f64;
    a.files[1].rate = 80.0 * MIB as f64;
    a.files[1].resumed_from = 512 * MIB;
    a.files[1].eta_secs = Some(38.4);
    a.eta_secs = Some(44.45);
    let b = job(
        2,
        SDXL,
        Selection::Files(vec!["sd_xl_base_1.0.safetensors".into()]),
        JobState::Queued,
        vec![FileStatus {
            size: None,
            ..file("sd_xl_base_1.0.safetensors", 0, 0, FileState::Pending)
        }],
    );
    let mut c = job(
        3,
        "black-forest-labs/FLUX.1-dev",
        Selection::Folder("transformer".into()),
        JobState::Failed,
        vec![],
    );
    c.error = Some(HubError::NeedsToken {
        repo: "black-forest-labs/FLUX.1-dev".into(),
        page: "https://huggingface.co/black-forest-labs/FLUX.1-dev".into(),
        token_sent: false,
    });
    vec![a, b, c]
}

#[test]
fn downloads_window_shows_progress_and_its_keys_act_on_the_queue() {
    let mut s = open_state(120, 32);
    update(&mut s, Event::Hub(HubEvent::Jobs(queue())));
    // F6 from the editor, where every other key is text.
    update(&mut s, code(KeyCode::F(6)));
    assert_eq!(s.overlay, Overlay::Downloads);
    update(&mut s, code(KeyCode::Enter));
    assert_eq!(s.hub.view.expanded, vec![1]);
    let text = screen(&s);
    // Job 1: 2 KiB + 1 GiB of 2 KiB + 4 GiB + 484 MiB = 1.0 GiB / 4.5 GiB, 22 %.
    // (2048 + 1073741824) * 100 / (2048 + 4294967296 + 507510784) = 22.36.
    assert!(text.contains("1.0 GiB / 4.5 GiB  22%"), "{text}");
    assert!(text.contains("80 MiB/s  ETA 44s"), "{text}");
    assert!(text.contains("(resumed at 512 MiB)"), "{text}");
    assert!(text.contains("in the cache"), "{text}");
    assert!(
        text.contains("r tries again"),
        "a 401 is not resumable: {text}"
    );
    insta::assert_snapshot!("hub_downloads", render(&s).backend());
    // x on the running job cancels it; r on it says it is running.
    assert_eq!(
        update(&mut s, key('x')),
        vec![Command::Hub(HubCmd::Cancel(1))]
    );
    assert_eq!(update(&mut s, key('r')), vec![]);
    assert!(s.status.as_ref().unwrap().1.contains("still running"));
    // r on the failed one queues it again; its write-back moves to the new job.
    update(&mut s, key('G'));
    assert_eq!(s.hub.view.sel, 2);
    s.hub.writes.push((
        3,
        WriteBack {
            config: "/data/cat.toml".into(),
            loc: PathLoc {
                segs: vec![Seg::Key("x".into())],
                value: None,
                expect: None,
                note: String::new(),
            },
        },
    ));
    assert_eq!(
        update(&mut s, key('r')),
        vec![Command::Hub(HubCmd::Retry(3))]
    );
    update(
        &mut s,
        Event::Hub(HubEvent::Retried {
            old: 3,
            new: Some(4),
        }),
    );
    assert_eq!(s.hub.writes[0].0, 4);
    // C clears the ended jobs; Esc and F6 close.
    assert_eq!(
        update(&mut s, key('C')),
        vec![Command::Hub(HubCmd::ClearFinished)]
    );
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.overlay, Overlay::None);
    update(&mut s, code(KeyCode::F(6)));
    update(&mut s, code(KeyCode::F(6)));
    assert_eq!(s.overlay, Overlay::None);
    // It survives tab switches: the queue and the status line summary stay.
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, key('1'));
    assert_eq!(s.tab, Tab::Environment);
    let text = screen(&s);
    let status = text.lines().last().unwrap();
    // Active: jobs 1 and 2; 1.0 GiB of 4.5 GiB (job 2's size is not known yet).
    assert!(
        status.contains("⇣ 2 downloads 1.0 GiB/4.5 GiB 80 MiB/s ETA"),
        "{status}"
    );
    update(&mut s, code(KeyCode::F(6)));
    assert_eq!(s.overlay, Overlay::Downloads);
}

fn cached() -> Vec<CachedRepo> {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    vec![
        CachedRepo {
            repo: "Wan-AI/Wan2.1-T2V-14B".into(),
            kind: "model".into(),
            path: "/hf/hub/models--Wan-AI--Wan2.1-T2V-14B".into(),
            size: 69 * GIB,
            files: 24,
            revisions: vec![COMMIT.into()],
            refs: vec!["main".into()],
            last_used: Some(now - Duration::from_secs(3 * 86400 + 7200)),
            partial_bytes: 0,
        },
        CachedRepo {
            repo: SDXL.into(),
            kind: "model".into(),
            path: "/hf/hub/models--stabilityai--stable-diffusion-xl-base-1.0".into(),
            size: 6_938_078_334,
            files: 1,
            revisions: vec![COMMIT.into()],
            refs: vec!["main".into()],
            last_used: Some(now - Duration::from_secs(300)),
            partial_bytes: 700 * MIB,
        },
    ]
}

#[test]
fn cache_page_lists_repos_and_deletes_only_after_y() {
    let mut s = base_state(120, 30);
    update(&mut s, code(KeyCode::F(6)));
    assert!(screen(&s).contains("No downloads yet"));
    assert_eq!(
        update(&mut s, code(KeyCode::Right)),
        vec![Command::Hub(HubCmd::ScanCache)]
    );
    assert_eq!(s.hub.view.page, Page::Cache);
    assert!(screen(&s).contains("scanning…"));
    update(&mut s, Event::Hub(HubEvent::Cache(Ok(cached()))));
    let text = screen(&s);
    // 69 GiB + 6938078334 B (6.46 GiB) = 75.5 GiB.
    assert!(text.contains("/hf/hub: 2 repos, 75.5 GiB"), "{text}");
    assert!(text.contains("3d02h ago"), "{text}");
    assert!(text.contains("5m ago"), "{text}");
    assert!(text.contains("700 MiB"), "{text}");
    insta::assert_snapshot!("hub_cache", render(&s).backend());
    // D asks; anything but y keeps it.
    update(&mut s, key('j'));
    update(&mut s, key('D'));
    assert_eq!(s.hub.view.confirm, Some(CacheKey::new("model", SDXL)));
    insta::assert_snapshot!("hub_cache_confirm", render(&s).backend());
    assert_eq!(update(&mut s, key('n')), vec![]);
    assert_eq!(s.hub.view.confirm, None);
    assert_eq!(s.status.as_ref().unwrap().1, "nothing was deleted");
    update(&mut s, key('D'));
    assert_eq!(
        update(&mut s, code(KeyCode::Enter)),
        vec![],
        "Enter is no yes"
    );
    update(&mut s, key('D'));
    assert_eq!(
        update(&mut s, key('y')),
        vec![Command::Hub(HubCmd::Delete(CacheKey::new("model", SDXL)))]
    );
    let cmds = update(
        &mut s,
        Event::Hub(HubEvent::Deleted {
            repo: CacheKey::new("model", SDXL),
            result: Ok(6_938_078_334 + 700 * MIB),
        }),
    );
    assert_eq!(cmds, vec![Command::Hub(HubCmd::ScanCache)]);
    // 6938078334 + 734003200 = 7672081534 B = 7.1 GiB.
    assert_eq!(
        s.status.as_ref().unwrap().1,
        format!("deleted {SDXL} from the hub cache (7.1 GiB freed)")
    );
    // A repo that is downloading is not deleted under the download.
    update(
        &mut s,
        Event::Hub(HubEvent::Jobs(vec![job(
            9,
            "Wan-AI/Wan2.1-T2V-14B",
            Selection::All,
            JobState::Running,
            vec![],
        )])),
    );
    update(&mut s, key('g'));
    update(&mut s, key('D'));
    assert_eq!(s.hub.view.confirm, None);
    assert!(s.status.as_ref().unwrap().1.contains("cancel it first"));
    // ← back to the downloads; q closes.
    update(&mut s, code(KeyCode::Left));
    assert_eq!(s.hub.view.page, Page::Downloads);
    update(&mut s, key('q'));
    assert_eq!(s.overlay, Overlay::None);
}

#[test]
fn cache_page_deletes_the_type_of_the_selected_row() {
    let wan = "Wan-AI/Wan2.1-T2V-14B";
    let mut list = cached();
    let mut dataset = list[0].clone();
    dataset.kind = "dataset".into();
    dataset.path = "/hf/hub/datasets--Wan-AI--Wan2.1-T2V-14B".into();
    dataset.size = 5 * MIB;
    list.push(dataset);
    let mut s = base_state(120, 30);
    update(&mut s, code(KeyCode::F(6)));
    update(&mut s, code(KeyCode::Right));
    update(&mut s, Event::Hub(HubEvent::Cache(Ok(list))));
    assert!(
        screen(&s).contains(&format!("dataset {wan}")),
        "{}",
        screen(&s)
    );
    // The model of the same id downloading does not hold the dataset back.
    update(
        &mut s,
        Event::Hub(HubEvent::Jobs(vec![job(
            9,
            wan,
            Selection::All,
            JobState::Running,
            vec![],
        )])),
    );
    update(&mut s, key('G'));
    update(&mut s, key('D'));
    assert_eq!(s.hub.view.confirm, Some(CacheKey::new("dataset", wan)));
    let text = screen(&s);
    assert!(
        text.contains(&format!("Delete the dataset {wan} (5 MiB)")),
        "{text}"
    );
    assert_eq!(
        update(&mut s, key('y')),
        vec![Command::Hub(HubCmd::Delete(CacheKey::new("dataset", wan)))]
    );
    update(
        &mut s,
        Event::Hub(HubEvent::Deleted {
            repo: CacheKey::new("dataset", wan),
            result: Ok(5 * MIB),
        }),
    );
    assert_eq!(
        s.status.as_ref().unwrap().1,
        format!("deleted dataset {wan} from the hub cache (5 MiB freed)")
    );
}

#[test]
fn hub_views_survive_tiny_terminals() {
    for (w, h) in TINY_SIZES {
        let mut s = open_state(w, h);
        update(&mut s, code(KeyCode::F(4)));
        render(&s);
        update(&mut s, code(KeyCode::Enter));
        render(&s);
        update(
            &mut s,
            Event::Hub(HubEvent::Listed {
                repo: SDXL.into(),
                result: Ok(sdxl_listing(true)),
            }),
        );
        render(&s);
        update(&mut s, code(KeyCode::Enter));
        render(&s);
        update(&mut s, code(KeyCode::Esc));
        update(&mut s, code(KeyCode::Esc));
        update(&mut s, code(KeyCode::Esc));
        update(&mut s, Event::Hub(HubEvent::Jobs(queue())));
        update(&mut s, code(KeyCode::F(6)));
        update(&mut s, code(KeyCode::Enter));
        render(&s);
        update(&mut s, code(KeyCode::Right));
        update(&mut s, Event::Hub(HubEvent::Cache(Ok(cached()))));
        update(&mut s, key('D'));
        render(&s);
    }
}

// ---------------------------------------------------------------------------------------------
// With disk and network: the runtime

const ON_DISK: &str = "# flux, written by hand\n[model]\ntype = 'z_image'\ntransformer_path = ''  # the transformer\ntext_encoders = [\n    {path = '', type = 'qwen3'},  # the encoder\n]\n";

fn loc_of(segs: Vec<Seg>) -> PathLoc {
    PathLoc {
        segs,
        value: None,
        expect: None,
        note: String::new(),
    }
}

#[test]
fn a_config_that_is_not_open_gets_the_path_on_disk_comments_intact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("z.toml");
    std::fs::write(&cfg, ON_DISK).unwrap();
    let mut s = base_state(100, 30);
    let w = WriteBack {
        config: cfg.clone(),
        loc: loc_of(vec![
            Seg::Key("model".into()),
            Seg::Key("transformer_path".into()),
        ]),
    };
    update(
        &mut s,
        Event::Hub(HubEvent::Queued {
            repo: "o/z".into(),
            result: Ok(1),
            write: Some(w.clone()),
        }),
    );
    let mut j = job(1, "o/z", Selection::All, JobState::Running, vec![]);
    update(&mut s, Event::Hub(HubEvent::Jobs(vec![j.clone()])));
    j.state = JobState::Done;
    j.local_path = Some("/hf/snap/t.safetensors".into());
    let cmds = update(&mut s, Event::Hub(HubEvent::Jobs(vec![j])));
    assert_eq!(
        cmds,
        vec![Command::Hub(HubCmd::Write {
            config: cfg.clone(),
            loc: w.loc.clone(),
            value: "/hf/snap/t.safetensors".into(),
        })]
    );
    // The runtime writes it (a plain key: the hub module's writer).
    let mut rt = Runtime::new(HubConfig::new("http://127.0.0.1:9", dir.path()));
    let send: dpgui::tui::hub::Send = std::sync::Arc::new(|_| {});
    let Command::Hub(c) = cmds[0].clone() else {
        unreachable!()
    };
    let evs = rt.run(c, &send);
    let [HubEvent::Written { result: Ok(()), .. }] = &evs[..] else {
        panic!("{evs:?}");
    };
    let first = ON_DISK.replace(
        "transformer_path = ''  # the transformer",
        "transformer_path = '/hf/snap/t.safetensors'  # the transformer",
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), first);
    for e in evs {
        update(&mut s, Event::Hub(e));
    }
    assert!(
        s.status
            .as_ref()
            .unwrap()
            .1
            .contains("z.toml: model.transformer_path = '/hf/snap/t.safetensors'")
    );
    // An array element: the editor's segment walk.
    let evs = rt.run(
        HubCmd::Write {
            config: cfg.clone(),
            loc: loc_of(vec![
                Seg::Key("model".into()),
                Seg::Key("text_encoders".into()),
                Seg::Index(0),
                Seg::Key("path".into()),
            ]),
            value: "/hf/snap/qwen3.safetensors".into(),
        },
        &send,
    );
    assert!(
        matches!(&evs[..], [HubEvent::Written { result: Ok(()), .. }]),
        "{evs:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        first.replace(
            "{path = '', type = 'qwen3'},  # the encoder",
            "{path = '/hf/snap/qwen3.safetensors', type = 'qwen3'},  # the encoder"
        )
    );
    // A config gone: an error sentence, no panic.
    let evs = rt.run(
        HubCmd::Write {
            config: dir.path().join("gone.toml"),
            loc: w.loc,
            value: "/x".into(),
        },
        &send,
    );
    assert!(
        matches!(&evs[..], [HubEvent::Written { result: Err(_), .. }]),
        "{evs:?}"
    );
}

/// Waits for the runtime's next background event (the listing, the cache scan, a delete).
fn next_event(rx: &std::sync::mpsc::Receiver<HubEvent>) -> HubEvent {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the runtime answered")
}

#[test]
fn runtime_lists_downloads_and_deletes_against_the_loopback_hub() {
    use hub_server::{Content, HubServer, RepoSpec};
    let weights: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let server = HubServer::start(vec![RepoSpec::new(
        SDXL,
        COMMIT,
        vec![
            ("model_index.json", Content::Bytes(b"{}".to_vec())),
            (
                "sd_xl_base_1.0.safetensors",
                Content::Bytes(weights.clone()),
            ),
        ],
    )]);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let send: dpgui::tui::hub::Send = std::sync::Arc::new(move |e| {
        let _ = tx.lock().unwrap().send(e);
    });
    let mut rt = Runtime::new(HubConfig::new(&server.endpoint(), &cache));
    assert!(rt.poll().is_none(), "no queue before the first download");
    // The listing, through the state: the dialog's rows.
    let mut s = open_state(100, 30);
    update(&mut s, code(KeyCode::F(4)));
    let cmds = update(&mut s, code(KeyCode::Enter));
    let Command::Hub(c) = cmds[0].clone() else {
        panic!("{cmds:?}")
    };
    assert!(rt.run(c, &send).is_empty(), "listed on a thread");
    update(&mut s, Event::Hub(next_event(&rx)));
    let d = dialog(&s);
    assert_eq!(d.error, None);
    assert_eq!(d.choices[0].path, "sd_xl_base_1.0.safetensors");
    assert_eq!(d.choices[0].bytes, 300_000);
    update(&mut s, code(KeyCode::Enter));
    let cmds = update(&mut s, code(KeyCode::Enter));
    let Command::Hub(c) = cmds[0].clone() else {
        panic!("{cmds:?}")
    };
    for e in rt.run(c, &send) {
        update(&mut s, Event::Hub(e));
    }
    assert!(s.hub.active());
    // Once it has ended, the runtime's next poll brings the write-back.
    let want = format!(
        "{}/models--stabilityai--stable-diffusion-xl-base-1.0/snapshots/{COMMIT}/sd_xl_base_1.0.safetensors",
        cache.display()
    );
    assert!(rt.wait_ended(s.hub.jobs[0].id, Duration::from_secs(30)));
    let cmds = update(&mut s, Event::Hub(rt.poll().unwrap()));
    assert_eq!(
        cmds,
        vec![Command::Config(ConfigCmd::Lint { debounce: false })]
    );
    assert!(!s.hub.active());
    assert_eq!(s.hub.jobs[0].state, JobState::Done, "{:?}", s.hub.jobs);
    assert!(
        s.config
            .main
            .as_ref()
            .unwrap()
            .editor
            .text()
            .contains(&format!("checkpoint_path = '{want}'")),
        "{}",
        s.config.main.as_ref().unwrap().editor.text()
    );
    assert_eq!(std::fs::read(&want).unwrap(), weights);
    // Again: already in the cache, nothing fetched.
    let id = match rt
        .run(
            HubCmd::Download {
                request: Request::new(
                    SDXL,
                    Selection::Files(vec!["sd_xl_base_1.0.safetensors".into()]),
                ),
                write: None,
            },
            &send,
        )
        .remove(0)
    {
        HubEvent::Queued { result: Ok(id), .. } => id,
        other => panic!("{other:?}"),
    };
    assert!(rt.wait_ended(id, Duration::from_secs(30)));
    let Some(HubEvent::Jobs(jobs)) = rt.poll() else {
        unreachable!()
    };
    let again = jobs.into_iter().find(|j| j.id == id).unwrap();
    assert_eq!(again.state, JobState::Done);
    assert_eq!(again.files[0].state, FileState::Cached);
    assert_eq!(again.fetched, 0);
    // The cache page sees it; D, y deletes it.
    rt.run(HubCmd::ScanCache, &send);
    let HubEvent::Cache(Ok(list)) = next_event(&rx) else {
        panic!()
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].repo, SDXL);
    assert!(list[0].size >= 300_000);
    rt.run(HubCmd::Delete(list[0].key()), &send);
    let HubEvent::Deleted {
        result: Ok(freed), ..
    } = next_event(&rx)
    else {
        panic!()
    };
    assert!(freed >= 300_000, "{freed}");
    assert!(!Path::new(&want).exists());
    rt.run(HubCmd::ScanCache, &send);
    let HubEvent::Cache(Ok(list)) = next_event(&rx) else {
        panic!()
    };
    assert!(list.is_empty());
}

/// q with a download running says what quitting does to it and quits only on a second q;
/// another key in between takes the question back.
#[test]
fn quitting_with_a_download_running_asks_first() {
    let mut s = base_state(120, 30);
    update(
        &mut s,
        Event::Hub(HubEvent::Jobs(vec![job(
            3,
            "Wan-AI/Wan2.1-T2V-14B",
            Selection::All,
            JobState::Running,
            vec![],
        )])),
    );
    assert_eq!(update(&mut s, key('q')), vec![]);
    assert!(!s.quit);
    let msg = &s.status.as_ref().unwrap().1;
    assert!(
        msg.contains("1 download running") && msg.contains("resumes"),
        "{msg}"
    );
    // Something else first: asked again.
    update(&mut s, key('?'));
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(update(&mut s, key('q')), vec![]);
    assert!(!s.quit);
    assert_eq!(update(&mut s, key('q')), vec![Command::Quit]);
    assert!(s.quit);

    // Nothing running: q quits at once.
    let mut s = base_state(120, 30);
    update(
        &mut s,
        Event::Hub(HubEvent::Jobs(vec![job(
            4,
            "Wan-AI/Wan2.1-T2V-14B",
            Selection::All,
            JobState::Done,
            vec![],
        )])),
    );
    assert_eq!(update(&mut s, key('q')), vec![Command::Quit]);
}
