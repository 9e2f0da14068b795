//! The Config tab's keys and events, without a terminal or a disk (but for the linter test).

use super::*;
use crate::tui::app::{AppInfo, Event, update};
use crossterm::event::KeyEventState;

fn press_mod(s: &mut State, code: KeyCode, modifiers: KeyModifiers) -> Vec<Command> {
    update(
        s,
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }),
    )
}

fn press(s: &mut State, code: KeyCode) -> Vec<Command> {
    press_mod(s, code, KeyModifiers::NONE)
}

fn ctrl_key(s: &mut State, c: char) -> Vec<Command> {
    press_mod(s, KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn typ(s: &mut State, text: &str) {
    for c in text.chars() {
        press(s, KeyCode::Char(c));
    }
}

const MAIN: &str = "output_dir = '/out'\ndataset = '/w/ds.toml'\nepochs = 10\n\n[model]\ntype = 'sdxl'\n# the checkpoint\ncheckpoint_path = ''  # fill me\ndtype = 'bfloat16'\n";

fn ev(s: &mut State, e: ConfigEvent) -> Vec<Command> {
    update(s, Event::Config(e))
}

fn opened(s: &mut State, path: &str, text: &str) -> Vec<Command> {
    ev(
        s,
        ConfigEvent::Opened {
            role: Role::Main,
            path: path.into(),
            result: Ok(text.into()),
        },
    )
}

fn lint_cmd(debounce: bool) -> Command {
    Command::Config(ConfigCmd::Lint { debounce })
}

/// The Config tab with /w/train.toml open in the editor.
fn state() -> State {
    let mut s = State::new(AppInfo::default());
    s.tab = Tab::Config;
    s.config.dirs = vec!["/w".into()];
    s.config.base = "/dp".into();
    ev(
        &mut s,
        ConfigEvent::Files(vec![
            FileEntry {
                path: "/w/train.toml".into(),
                kind: Kind::Main,
                group: "/w".into(),
            },
            FileEntry {
                path: "/w/other.toml".into(),
                kind: Kind::Main,
                group: "/w".into(),
            },
        ]),
    );
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        vec![Command::Config(ConfigCmd::Open {
            path: "/w/train.toml".into(),
            role: Role::Main
        })]
    );
    assert_eq!(opened(&mut s, "/w/train.toml", MAIN), vec![lint_cmd(false)]);
    assert_eq!(s.config.focus, Focus::Editor);
    s
}

fn buf_text(s: &State) -> String {
    s.config.current().unwrap().editor.text()
}

fn overlay(s: &State) -> Option<&ConfigOverlay> {
    match &s.overlay {
        Overlay::Config(o) => Some(o),
        _ => None,
    }
}

#[test]
fn typing_marks_dirty_and_undo_redo_work_with_both_key_sets() {
    let mut s = state();
    // q, digits and Tab are text in the editor: no quit, no tab switch.
    assert_eq!(press(&mut s, KeyCode::Char('q')), vec![lint_cmd(true)]);
    typ(&mut s, "3");
    press(&mut s, KeyCode::Tab);
    assert!(!s.quit);
    assert_eq!(s.tab, Tab::Config);
    assert!(
        buf_text(&s).starts_with("q3  output_dir"),
        "{}",
        buf_text(&s)
    );
    assert!(s.config.dirty());
    for _ in 0..3 {
        ctrl_key(&mut s, 'z');
    }
    assert_eq!(buf_text(&s), MAIN);
    assert!(!s.config.dirty(), "undone back to the saved text: clean");
    ctrl_key(&mut s, 'y');
    assert!(buf_text(&s).starts_with('q'));
    ctrl_key(&mut s, 'u');
    assert_eq!(buf_text(&s), MAIN);
    ctrl_key(&mut s, 'r');
    assert!(s.config.dirty());
    // Select a word, copy it, paste it at the end of the line.
    press(&mut s, KeyCode::Home);
    for _ in 0..3 {
        press_mod(&mut s, KeyCode::Right, KeyModifiers::SHIFT);
    }
    press_mod(&mut s, KeyCode::Char('c'), KeyModifiers::ALT);
    press(&mut s, KeyCode::End);
    ctrl_key(&mut s, 'v');
    assert!(
        buf_text(&s).starts_with("qoutput_dir = '/out'qou\n"),
        "{}",
        buf_text(&s)
    );
    // Esc leaves the editor; then the tab keys work again.
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.config.focus, Focus::Files);
}

#[test]
fn leaving_with_unsaved_changes_asks_save_discard_or_cancel() {
    let mut s = state();
    typ(&mut s, "x");
    press(&mut s, KeyCode::Esc);
    // Tab switch: asks.
    assert_eq!(press(&mut s, KeyCode::Char('1')), vec![]);
    assert_eq!(s.tab, Tab::Config);
    assert!(matches!(
        overlay(&s),
        Some(ConfigOverlay::Unsaved {
            then: After::Tab(Tab::Environment)
        })
    ));
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.overlay, Overlay::None);
    assert_eq!(s.tab, Tab::Config);
    // Save, then switch once saved.
    press(&mut s, KeyCode::Char('4'));
    let cmds = press(&mut s, KeyCode::Char('s'));
    let [
        Command::Config(ConfigCmd::Save {
            text,
            then,
            expected,
            force: false,
            ..
        }),
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert!(text.starts_with("xoutput_dir"));
    assert_eq!(expected.as_deref(), Some(MAIN));
    assert_eq!(*then, After::Tab(Tab::Jobs));
    let saved = ConfigEvent::Saved {
        role: Role::Main,
        path: "/w/train.toml".into(),
        text: text.clone(),
        outcome: SaveOutcome::Saved { backup: true },
        then: then.clone(),
    };
    assert_eq!(ev(&mut s, saved), vec![Command::Config(ConfigCmd::Scan)]);
    assert_eq!(s.tab, Tab::Jobs);
    assert!(!s.config.dirty());
    assert!(s.status.as_ref().unwrap().1.contains("train.toml.bak"));
    // Discard: the text goes back to the disk version, the switch happens.
    press(&mut s, KeyCode::Char('3'));
    press(&mut s, KeyCode::Enter);
    assert_eq!(
        s.config.focus,
        Focus::Editor,
        "Enter on the open file: edit it"
    );
    typ(&mut s, "y");
    press(&mut s, KeyCode::Esc);
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Esc);
    press(&mut s, KeyCode::Char('2'));
    press(&mut s, KeyCode::Char('d'));
    assert_eq!(s.tab, Tab::Datasets);
    assert!(
        buf_text(&s).starts_with("xoutput_dir"),
        "back to the saved text"
    );
    // Opening another file asks too; quitting asks; Ctrl-C twice quits anyway.
    press(&mut s, KeyCode::Char('3'));
    press(&mut s, KeyCode::Char('e'));
    typ(&mut s, "z");
    press(&mut s, KeyCode::Esc);
    press(&mut s, KeyCode::Down);
    assert_eq!(press(&mut s, KeyCode::Enter), vec![]);
    assert!(matches!(
        overlay(&s),
        Some(ConfigOverlay::Unsaved { then: After::Open(p) }) if p == Path::new("/w/other.toml")
    ));
    press(&mut s, KeyCode::Esc);
    assert_eq!(press(&mut s, KeyCode::Char('q')), vec![]);
    assert!(!s.quit);
    press(&mut s, KeyCode::Esc);
    assert_eq!(ctrl_key(&mut s, 'c'), vec![]);
    assert!(!s.quit);
    assert!(matches!(
        overlay(&s),
        Some(ConfigOverlay::Unsaved { then: After::Quit })
    ));
    assert_eq!(ctrl_key(&mut s, 'c'), vec![Command::Quit]);
    assert!(s.quit);
}

#[test]
fn a_file_changed_on_disk_is_never_overwritten_silently() {
    let mut s = state();
    typ(&mut s, "x");
    let cmds = ctrl_key(&mut s, 's');
    assert!(matches!(
        &cmds[..],
        [Command::Config(ConfigCmd::Save { force: false, .. })]
    ));
    ev(
        &mut s,
        ConfigEvent::Saved {
            role: Role::Main,
            path: "/w/train.toml".into(),
            text: String::new(),
            outcome: SaveOutcome::ChangedOnDisk { deleted: false },
            then: After::Nothing,
        },
    );
    assert!(matches!(overlay(&s), Some(ConfigOverlay::Conflict { .. })));
    assert!(s.config.dirty(), "still unsaved");
    // o: overwrite, forced.
    let cmds = press(&mut s, KeyCode::Char('o'));
    assert!(matches!(
        &cmds[..],
        [Command::Config(ConfigCmd::Save { force: true, .. })]
    ));
    // r: reload from disk; the editor takes the disk text, undo brings the edits back.
    ev(
        &mut s,
        ConfigEvent::Saved {
            role: Role::Main,
            path: "/w/train.toml".into(),
            text: String::new(),
            outcome: SaveOutcome::ChangedOnDisk { deleted: false },
            then: After::Nothing,
        },
    );
    assert_eq!(
        press(&mut s, KeyCode::Char('r')),
        vec![Command::Config(ConfigCmd::Open {
            path: "/w/train.toml".into(),
            role: Role::Main
        })]
    );
    let disk = MAIN.replace("epochs = 10", "epochs = 20");
    opened(&mut s, "/w/train.toml", &disk);
    assert_eq!(buf_text(&s), disk);
    assert!(!s.config.dirty());
    ctrl_key(&mut s, 'z');
    assert!(s.config.dirty());
}

#[test]
fn the_picker_writes_the_path_through_toml_edit_keeping_comments() {
    let mut s = state();
    // On `[model] type`: not a path key.
    s.config.main.as_mut().unwrap().editor.jump(5, 0);
    assert_eq!(ctrl_key(&mut s, 'o'), vec![]);
    assert!(s.status.as_ref().unwrap().1.contains("not a path key"));
    s.config.main.as_mut().unwrap().editor.jump(7, 5);
    assert_eq!(
        ctrl_key(&mut s, 'o'),
        vec![Command::Config(ConfigCmd::List { dir: "/w".into() })]
    );
    let Some(ConfigOverlay::Picker(p)) = overlay(&s) else {
        panic!("{:?}", s.overlay)
    };
    assert_eq!(p.expect, lint::Expect::File);
    ev(
        &mut s,
        ConfigEvent::Listing {
            dir: "/w".into(),
            result: Ok(vec![
                PickEntry {
                    name: "models".into(),
                    dir: true,
                },
                PickEntry {
                    name: "train.toml".into(),
                    dir: false,
                },
            ]),
        },
    );
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        vec![Command::Config(ConfigCmd::List {
            dir: "/w/models".into()
        })]
    );
    ev(
        &mut s,
        ConfigEvent::Listing {
            dir: "/w/models".into(),
            result: Ok(vec![PickEntry {
                name: "sdxl base.safetensors".into(),
                dir: false,
            }]),
        },
    );
    assert_eq!(press(&mut s, KeyCode::Enter), vec![lint_cmd(false)]);
    assert_eq!(s.overlay, Overlay::None);
    assert_eq!(
        buf_text(&s),
        MAIN.replace(
            "checkpoint_path = ''  # fill me",
            "checkpoint_path = '/w/models/sdxl base.safetensors'  # fill me"
        )
    );
    assert!(s.config.dirty());
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor().0, 7);
    // One undo takes the whole path back.
    ctrl_key(&mut s, 'z');
    assert_eq!(buf_text(&s), MAIN);
}

#[test]
fn diagnostics_are_listed_marked_and_jumped_to() {
    let mut s = state();
    let d = |line, sev, msg: &str| Diagnostic {
        file: "/w/train.toml".into(),
        line,
        column: 9,
        severity: sev,
        code: "x",
        message: msg.into(),
        fix: Some("do this".into()),
    };
    ev(
        &mut s,
        ConfigEvent::Linted(LintResult {
            diagnostics: vec![
                d(9, Severity::Error, "dtype `fp9` is not a dtype"),
                d(3, Severity::Warning, "few epochs"),
                Diagnostic {
                    file: "/w/ds.toml".into(),
                    ..d(1, Severity::Error, "in the dataset")
                },
            ],
            dataset_path: Some("/w/ds.toml".into()),
            derived: vec![],
        }),
    );
    assert!(s.config.linted);
    let all = s.config.all_diags();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].d.line, 9, "errors first");
    assert!(all[1].role.is_none(), "the dataset config is not open");
    assert_eq!(all[2].d.line, 3, "then warnings");
    // F8: to the next problem; the status line shows it.
    press(&mut s, KeyCode::F(8));
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor(), (2, 8));
    assert_eq!(s.config.status_diag().unwrap().message, "few epochs");
    press(&mut s, KeyCode::F(8));
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor().0, 8);
    // The list: Shift-Tab from the files, Enter jumps.
    press(&mut s, KeyCode::Esc);
    press(&mut s, KeyCode::BackTab);
    assert_eq!(s.config.focus, Focus::Diagnostics);
    press(&mut s, KeyCode::Char('j'));
    assert_eq!(
        s.config.status_diag().unwrap().file,
        Path::new("/w/ds.toml")
    );
    press(&mut s, KeyCode::Enter);
    assert_eq!(
        s.config.focus,
        Focus::Diagnostics,
        "not open: nowhere to jump"
    );
    assert!(s.status.as_ref().unwrap().1.contains("open that file"));
    press(&mut s, KeyCode::Char('k'));
    assert_eq!(s.config.status_diag().unwrap().line, 9);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.config.focus, Focus::Editor);
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor(), (8, 8));
    // Ctrl-T opens the dataset config the main config names; its problems move to it.
    assert_eq!(
        ctrl_key(&mut s, 't'),
        vec![Command::Config(ConfigCmd::Open {
            path: "/w/ds.toml".into(),
            role: Role::Dataset
        })]
    );
    ev(
        &mut s,
        ConfigEvent::Opened {
            role: Role::Dataset,
            path: "/w/ds.toml".into(),
            result: Ok("resolutions = [512]\n".into()),
        },
    );
    assert_eq!(s.config.active, Role::Dataset);
    ctrl_key(&mut s, 't');
    assert_eq!(s.config.active, Role::Main);
}

#[test]
fn search_finds_and_wraps() {
    let mut s = state();
    ctrl_key(&mut s, 'f');
    typ(&mut s, "DTYPE");
    assert_eq!(s.config.search.as_deref(), Some("DTYPE"));
    assert!(!s.config.dirty(), "search text is not typed into the file");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor(), (8, 5));
    press(&mut s, KeyCode::F(3));
    assert_eq!(
        s.config.main.as_ref().unwrap().editor.cursor(),
        (8, 5),
        "one match: wraps"
    );
    ctrl_key(&mut s, 'f');
    typ(&mut s, "nowhere");
    press(&mut s, KeyCode::Enter);
    assert!(s.status.as_ref().unwrap().1.contains("not found"));
}

#[test]
fn launch_hands_the_file_to_the_jobs_tab_after_saving() {
    let mut s = state();
    assert_eq!(
        ctrl_key(&mut s, 'l'),
        vec![Command::NewLaunchWith("/w/train.toml".into())]
    );
    typ(&mut s, "#");
    assert_eq!(ctrl_key(&mut s, 'l'), vec![]);
    assert!(matches!(
        overlay(&s),
        Some(ConfigOverlay::Unsaved {
            then: After::Launch
        })
    ));
    let cmds = press(&mut s, KeyCode::Enter);
    let [Command::Config(ConfigCmd::Save { text, then, .. })] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    let cmds = ev(
        &mut s,
        ConfigEvent::Saved {
            role: Role::Main,
            path: "/w/train.toml".into(),
            text: text.clone(),
            outcome: SaveOutcome::Saved { backup: true },
            then: then.clone(),
        },
    );
    assert_eq!(
        cmds,
        vec![
            Command::Config(ConfigCmd::Scan),
            Command::NewLaunchWith("/w/train.toml".into())
        ]
    );
}

#[test]
fn file_list_creates_duplicates_renames_and_deletes() {
    let mut s = state();
    press(&mut s, KeyCode::Esc);
    // n: model type, then a name; both files are created from the templates.
    press(&mut s, KeyCode::Char('n'));
    assert!(matches!(
        overlay(&s),
        Some(ConfigOverlay::Template { sel: 0 })
    ));
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    let Some(ConfigOverlay::Prompt { text, .. }) = overlay(&s) else {
        panic!("{:?}", s.overlay)
    };
    assert_eq!(text, "flux-lora.toml");
    // Typing replaces the suggestion (no Ctrl-U needed).
    typ(&mut s, "mine");
    let cmds = press(&mut s, KeyCode::Enter);
    let [
        Command::Config(ConfigCmd::Create {
            main,
            main_text,
            dataset,
            dataset_text,
        }),
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!(main, Path::new("/w/mine.toml"));
    assert_eq!(dataset, Path::new("/w/mine-dataset.toml"));
    assert!(main_text.contains("type = 'flux'"));
    assert!(main_text.contains("dataset = '/w/mine-dataset.toml'"));
    assert!(main_text.contains("output_dir = '/w/runs/mine'"));
    assert!(dataset_text.contains("[[directory]]"));
    let cmds = ev(
        &mut s,
        ConfigEvent::FileOp(Ok(FileDone::Created("/w/mine.toml".into()))),
    );
    assert_eq!(
        cmds,
        vec![
            Command::Config(ConfigCmd::Scan),
            Command::Config(ConfigCmd::Open {
                path: "/w/mine.toml".into(),
                role: Role::Main
            })
        ]
    );
    // c, r, d on the selected file.
    s.config.selected = 1;
    s.config.focus = Focus::Files;
    press(&mut s, KeyCode::Char('c'));
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        vec![Command::Config(ConfigCmd::Duplicate {
            from: "/w/other.toml".into(),
            to: "/w/other-copy.toml".into()
        })]
    );
    press(&mut s, KeyCode::Char('r'));
    for _ in 0.."other.toml".len() {
        press(&mut s, KeyCode::Backspace);
    }
    typ(&mut s, "renamed");
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        vec![Command::Config(ConfigCmd::Rename {
            from: "/w/other.toml".into(),
            to: "/w/renamed.toml".into()
        })]
    );
    press(&mut s, KeyCode::Char('d'));
    assert!(matches!(
        overlay(&s),
        Some(ConfigOverlay::ConfirmDelete { .. })
    ));
    assert_eq!(press(&mut s, KeyCode::Char('n')), vec![]);
    assert_eq!(s.overlay, Overlay::None);
    press(&mut s, KeyCode::Delete);
    assert_eq!(
        press(&mut s, KeyCode::Char('y')),
        vec![Command::Config(ConfigCmd::Delete {
            path: "/w/other.toml".into()
        })]
    );
    // The open file renamed: the buffer follows it.
    ev(
        &mut s,
        ConfigEvent::FileOp(Ok(FileDone::Renamed {
            from: "/w/train.toml".into(),
            to: "/w/t2.toml".into(),
        })),
    );
    assert_eq!(
        s.config.main.as_ref().unwrap().path,
        Path::new("/w/t2.toml")
    );
    // w closes it.
    press(&mut s, KeyCode::Char('w'));
    assert!(s.config.main.is_none());
}

#[test]
fn the_real_linter_flags_a_bad_dtype_on_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.toml");
    let mut s = State::new(AppInfo::default());
    s.config.base = dir.path().to_path_buf();
    ev(
        &mut s,
        ConfigEvent::Opened {
            role: Role::Main,
            path: path.clone(),
            result: Ok(MAIN.replace("dtype = 'bfloat16'", "dtype = 'fp9'")),
        },
    );
    let Some(e) = lint(&s.config) else {
        panic!("nothing linted")
    };
    ev(&mut s, e);
    let b = s.config.main.as_ref().unwrap();
    let d = b.diag_on(8).expect("a problem on the dtype line");
    assert_eq!(d.severity, Severity::Error);
    assert!(d.message.contains("fp9"), "{}", d.message);
    assert_eq!(
        s.config.linked_dataset.as_deref(),
        Some(Path::new("/w/ds.toml"))
    );
}

#[test]
fn a_change_on_disk_is_noticed_when_the_list_is_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.toml");
    std::fs::write(&path, MAIN).unwrap();
    let mut s = State::new(AppInfo::default());
    s.tab = Tab::Config;
    opened(&mut s, path.to_str().unwrap(), MAIN);
    assert!(disk_check(&s.config).is_empty());
    std::fs::write(&path, "epochs = 1\n").unwrap();
    let evs = disk_check(&s.config);
    assert_eq!(
        evs,
        vec![ConfigEvent::DiskChanged {
            role: Role::Main,
            path: path.clone(),
            deleted: false
        }]
    );
    for e in evs {
        ev(&mut s, e);
    }
    assert_eq!(s.config.main.as_ref().unwrap().disk_changed, Some(false));
    assert!(s.status.as_ref().unwrap().1.contains("changed on disk"));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        disk_check(&s.config)[..],
        [ConfigEvent::DiskChanged { deleted: true, .. }]
    ));
}

#[test]
fn text_typed_on_after_esc_never_answers_a_question() {
    let mut s = state();
    typ(&mut s, "x");
    press(&mut s, KeyCode::Esc);
    assert_ne!(s.config.focus, Focus::Editor);
    // "dtype" in the file list: d asks, t cancels, y does nothing.
    for c in "dtype".chars() {
        let cmds = press(&mut s, KeyCode::Char(c));
        assert!(
            !cmds
                .iter()
                .any(|c| matches!(c, Command::Config(ConfigCmd::Delete { .. }))),
            "{cmds:?}"
        );
    }
    // (The final `e` of "dtype" went back to the editor; Esc returns to the list.)
    s.overlay = Overlay::None;
    if s.config.focus == Focus::Editor {
        press(&mut s, KeyCode::Esc);
    }
    // The open, edited config cannot be deleted at all until saved or discarded.
    s.config.selected = 0;
    press(&mut s, KeyCode::Char('d'));
    assert!(overlay(&s).is_none());
    assert!(s.status.as_ref().unwrap().1.contains("unsaved changes"));
    // "qu": q asks, u cancels; nothing quits, nothing is discarded.
    for c in "qu".chars() {
        let cmds = press(&mut s, KeyCode::Char(c));
        assert!(!cmds.contains(&Command::Quit), "{c}: {cmds:?}");
        assert!(!s.quit);
    }
    assert!(s.config.dirty());
}

#[test]
fn a_held_ctrl_c_does_not_discard() {
    let mut s = state();
    typ(&mut s, "x");
    ctrl_key(&mut s, 'c');
    assert!(matches!(overlay(&s), Some(ConfigOverlay::Unsaved { .. })));
    let repeat = crate::tui::app::update(
        &mut s,
        crate::tui::app::Event::Key(crossterm::event::KeyEvent {
            code: KeyCode::Char('c'),
            modifiers: KeyModifiers::CONTROL,
            kind: crossterm::event::KeyEventKind::Repeat,
            state: crossterm::event::KeyEventState::NONE,
        }),
    );
    assert_eq!(repeat, vec![]);
    assert!(!s.quit);
    assert!(s.config.dirty());
}

#[test]
fn unsaved_edits_are_kept_when_nobody_can_be_asked() {
    let mut s = state();
    let dir = tempfile::tempdir().unwrap();
    assert!(
        keep_unsaved(&s.config, dir.path()).is_empty(),
        "nothing unsaved yet"
    );
    typ(&mut s, "# mine\n");
    let kept = keep_unsaved(&s.config, dir.path());
    assert_eq!(
        kept,
        vec![files::recovery_path(dir.path(), Path::new("/w/train.toml"))]
    );
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), buf_text(&s));
    assert!(buf_text(&s).starts_with("# mine"));
    // Two files of the same name in different folders do not share a recovery file.
    assert_ne!(
        files::recovery_path(dir.path(), Path::new("/a/train.toml")),
        files::recovery_path(dir.path(), Path::new("/b/train.toml"))
    );
}
