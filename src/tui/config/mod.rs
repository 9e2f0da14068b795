//! The Config tab (tab 3): the workspace's configs, an editor for the training config and the
//! dataset config it names, live diagnostics from the linter, a path picker, and the hand-off
//! to the Jobs tab's launch dialog.
//!
//! Like the other tabs, keys only change state and return commands: the runtime reads and
//! writes files (`run`), lints after a pause in typing (`lint`), and sends the results back
//! as `ConfigEvent`s.

pub mod editor;
pub mod files;
pub mod hub;
pub mod pathkey;
pub mod picker;
pub mod templates;

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Command, Level, Overlay, State, Tab};
use super::views::config::Hit;
use crate::trainer::lint::{self, Diagnostic, Severity};
use editor::Editor;
use files::{PickEntry, SaveOutcome};
use picker::Picker;

/// Where keys go in the Config tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Files,
    Editor,
    Diagnostics,
}

/// The two buffers: the config opened, and the dataset config it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Main,
    Dataset,
}

/// What a TOML file is, as far as the linter can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Main,
    Dataset,
    Unknown,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Main => "training",
            Kind::Dataset => "dataset",
            Kind::Unknown => "toml",
        }
    }
}

/// A row of the file list.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub path: PathBuf,
    pub kind: Kind,
    /// "recent", or the workspace directory it was found in.
    pub group: String,
}

/// `p` with the home directory shown as `~`.
pub fn display_path(p: &Path) -> String {
    if let Some(home) = dirs::home_dir()
        && let Ok(rest) = p.strip_prefix(&home)
    {
        return if rest.as_os_str().is_empty() {
            "~".into()
        } else {
            format!("~/{}", rest.display())
        };
    }
    p.display().to_string()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// An open file.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    pub path: PathBuf,
    pub editor: Editor,
    /// The text on disk as last read or written (None: not on disk any more).
    pub saved: Option<String>,
    pub dirty: bool,
    /// The file on disk is no longer what was read (None: not seen so; Some(true): deleted).
    pub disk_changed: Option<bool>,
    pub kind: Kind,
    /// This file's diagnostics, by line.
    pub diags: Vec<Diagnostic>,
}

impl Buffer {
    pub fn new(path: PathBuf, text: String) -> Self {
        Buffer {
            path,
            editor: Editor::from_text(&text),
            kind: files::kind_of(&text),
            saved: Some(text),
            dirty: false,
            disk_changed: None,
            diags: Vec::new(),
        }
    }

    pub fn name(&self) -> String {
        file_name(&self.path)
    }

    fn refresh_dirty(&mut self) {
        self.dirty = self.saved.as_deref() != Some(self.editor.text().as_str());
    }

    /// The worst diagnostic on a 0-based line.
    pub fn diag_on(&self, row: usize) -> Option<&Diagnostic> {
        self.diags
            .iter()
            .filter(|d| d.line.max(1) == row + 1)
            .min_by_key(|d| d.severity)
    }
}

/// What to do once unsaved changes are dealt with.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    Nothing,
    Quit,
    Tab(Tab),
    Open(PathBuf),
    Close,
    Launch,
}

/// What a prompt asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptKind {
    OpenPath,
    NewFile { model: &'static str },
    Duplicate { from: PathBuf },
    Rename { from: PathBuf },
}

impl PromptKind {
    pub fn title(&self) -> String {
        match self {
            PromptKind::OpenPath => "Open a config".into(),
            PromptKind::NewFile { model } => format!("New {model} config"),
            PromptKind::Duplicate { from } => format!("Duplicate {}", file_name(from)),
            PromptKind::Rename { from } => format!("Rename {}", file_name(from)),
        }
    }
}

/// The Config tab's dialogs.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigOverlay {
    /// Unsaved changes: save, discard or cancel, then `then`.
    Unsaved {
        then: After,
    },
    /// The file changed on disk since it was opened: reload, overwrite or cancel.
    Conflict {
        role: Role,
        deleted: bool,
        then: After,
    },
    ConfirmDelete {
        path: PathBuf,
    },
    Prompt {
        kind: PromptKind,
        text: String,
    },
    /// Choose the model type of a new config.
    Template {
        sel: usize,
    },
    Picker(Picker),
    /// Download the key's file or folder from the Hugging Face Hub.
    Hub(Box<hub::HubDialog>),
}

/// The linter's findings for the open buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct LintResult {
    pub diagnostics: Vec<Diagnostic>,
    pub dataset_path: Option<PathBuf>,
    pub derived: Vec<String>,
}

/// Requests for the runtime (I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigCmd {
    /// List the workspace's configs.
    Scan,
    Open {
        path: PathBuf,
        role: Role,
    },
    /// Lint the open buffers, after a pause in typing when `debounce`.
    Lint {
        debounce: bool,
    },
    Save {
        role: Role,
        path: PathBuf,
        text: String,
        /// What the file held when read (None: it did not exist).
        expected: Option<String>,
        force: bool,
        then: After,
    },
    Create {
        main: PathBuf,
        main_text: String,
        dataset: PathBuf,
        dataset_text: String,
    },
    Duplicate {
        from: PathBuf,
        to: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Delete {
        path: PathBuf,
    },
    /// List a directory for the path picker.
    List {
        dir: PathBuf,
    },
}

/// What a file operation did.
#[derive(Debug, Clone, PartialEq)]
pub enum FileDone {
    Created(PathBuf),
    Duplicated(PathBuf),
    Renamed { from: PathBuf, to: PathBuf },
    Deleted(PathBuf),
}

/// Results from the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEvent {
    Files(Vec<FileEntry>),
    Opened {
        role: Role,
        path: PathBuf,
        result: Result<String, String>,
    },
    Linted(LintResult),
    Saved {
        role: Role,
        path: PathBuf,
        text: String,
        outcome: SaveOutcome,
        then: After,
    },
    FileOp(Result<FileDone, String>),
    Listing {
        dir: PathBuf,
        result: Result<Vec<PickEntry>, String>,
    },
    /// An open file is not what was read any more (seen when the list is refreshed).
    DiskChanged {
        role: Role,
        path: PathBuf,
        deleted: bool,
    },
}

/// One diagnostic of the list, with the buffer it belongs to (None: a file not open).
#[derive(Debug, Clone, Copy)]
pub struct DiagRef<'a> {
    pub role: Option<Role>,
    pub d: &'a Diagnostic,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigState {
    /// The workspace directories (settings.config_dirs); new configs go to the first.
    pub dirs: Vec<PathBuf>,
    /// The diffusion-pipe checkout, absolute: relative paths in configs resolve there.
    pub base: PathBuf,
    pub files: Vec<FileEntry>,
    pub loaded: bool,
    pub selected: usize,
    pub focus: Focus,
    pub main: Option<Buffer>,
    pub dataset: Option<Buffer>,
    pub active: Role,
    /// The dataset config the main config names (from the last lint).
    pub linked_dataset: Option<PathBuf>,
    /// Diagnostics in files that are not open (an eval dataset, say).
    pub other_diags: Vec<Diagnostic>,
    /// What the linter worked out (global batch size, steps per epoch...).
    pub derived: Vec<String>,
    /// The diagnostics are for the text as it is now.
    pub linted: bool,
    pub diag_sel: usize,
    /// A search being typed.
    pub search: Option<String>,
    pub last_search: Option<String>,
    /// Select this file once the next listing arrives.
    pub select_after_scan: Option<PathBuf>,
}

impl ConfigState {
    pub fn buffer(&self, role: Role) -> Option<&Buffer> {
        match role {
            Role::Main => self.main.as_ref(),
            Role::Dataset => self.dataset.as_ref(),
        }
    }

    pub fn buffer_mut(&mut self, role: Role) -> Option<&mut Buffer> {
        match role {
            Role::Main => self.main.as_mut(),
            Role::Dataset => self.dataset.as_mut(),
        }
    }

    /// The buffer shown in the editor.
    pub fn current(&self) -> Option<&Buffer> {
        self.buffer(self.active).or(self.main.as_ref())
    }

    pub fn dirty(&self) -> bool {
        self.main.as_ref().is_some_and(|b| b.dirty)
            || self.dataset.as_ref().is_some_and(|b| b.dirty)
    }

    /// Names of the files with unsaved changes.
    pub fn dirty_names(&self) -> Vec<String> {
        [&self.main, &self.dataset]
            .into_iter()
            .flatten()
            .filter(|b| b.dirty)
            .map(Buffer::name)
            .collect()
    }

    /// Every diagnostic, errors first: the main config's, the dataset config's, then other
    /// files'.
    pub fn all_diags(&self) -> Vec<DiagRef<'_>> {
        let mut v: Vec<DiagRef> = Vec::new();
        for role in [Role::Main, Role::Dataset] {
            if let Some(b) = self.buffer(role) {
                v.extend(b.diags.iter().map(|d| DiagRef {
                    role: Some(role),
                    d,
                }));
            }
        }
        v.extend(self.other_diags.iter().map(|d| DiagRef { role: None, d }));
        // Errors first, then warnings, then information; each in file and line order.
        v.sort_by_key(|r| r.d.severity);
        v
    }

    /// The diagnostic the status line shows: the one under the cursor in the editor, the
    /// selected one in the list.
    pub fn status_diag(&self) -> Option<&Diagnostic> {
        match self.focus {
            Focus::Editor => {
                let b = self.current()?;
                b.diag_on(b.editor.cursor().0)
            }
            Focus::Diagnostics => self.all_diags().get(self.diag_sel).map(|r| r.d),
            Focus::Files => None,
        }
    }

    fn selected_file(&self) -> Option<&FileEntry> {
        self.files
            .get(self.selected.min(self.files.len().saturating_sub(1)))
    }

    fn apply_lint(&mut self, r: LintResult) {
        let main = self.main.as_ref().map(|b| b.path.clone());
        let ds = self.dataset.as_ref().map(|b| b.path.clone());
        let (mut m, mut d, mut o) = (Vec::new(), Vec::new(), Vec::new());
        for x in r.diagnostics {
            if Some(&x.file) == main.as_ref() {
                m.push(x);
            } else if Some(&x.file) == ds.as_ref() {
                d.push(x);
            } else {
                o.push(x);
            }
        }
        let order = |a: &Diagnostic, b: &Diagnostic| {
            (a.line, a.column, a.severity).cmp(&(b.line, b.column, b.severity))
        };
        m.sort_by(order);
        d.sort_by(order);
        if let Some(b) = self.main.as_mut() {
            b.diags = m;
        }
        if let Some(b) = self.dataset.as_mut() {
            b.diags = d;
        }
        self.other_diags = o;
        self.linked_dataset = r.dataset_path;
        self.derived = r.derived;
        self.linted = true;
        self.diag_sel = self.diag_sel.min(self.all_diags().len().saturating_sub(1));
    }
}

fn ctrl(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL)
}

fn alt(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::ALT)
}

fn cmd(c: ConfigCmd) -> Command {
    Command::Config(c)
}

fn info(s: &mut State, msg: impl Into<String>) {
    s.status = Some((Level::Info, msg.into()));
}

fn warn(s: &mut State, msg: impl Into<String>) {
    s.status = Some((Level::Warn, msg.into()));
}

fn set_overlay(s: &mut State, o: ConfigOverlay) {
    s.overlay = Overlay::Config(Box::new(o));
}

/// Whether the Config tab takes this key before the global keys: everything while the editor
/// has the focus (but F1), Ctrl shortcuts, and Tab / Esc to move between its panes.
pub fn takes_first(s: &State, k: &KeyEvent) -> bool {
    if s.tab != Tab::Config || s.overlay != Overlay::None {
        return false;
    }
    let c = &s.config;
    let open = c.main.is_some();
    if open && c.focus == Focus::Editor {
        return k.code != KeyCode::F(1);
    }
    ctrl(k)
        || (open && matches!(k.code, KeyCode::Tab | KeyCode::BackTab))
        || (c.focus == Focus::Diagnostics && k.code == KeyCode::Esc)
}

/// Asks about unsaved changes before `then`, or does it at once when there are none.
pub fn leave(s: &mut State, then: After) -> Vec<Command> {
    if s.config.dirty() {
        set_overlay(s, ConfigOverlay::Unsaved { then });
        vec![]
    } else {
        perform(s, then)
    }
}

fn perform(s: &mut State, then: After) -> Vec<Command> {
    match then {
        After::Nothing => vec![],
        After::Quit => {
            s.quit = true;
            vec![Command::Quit]
        }
        After::Tab(t) => {
            s.tab = t;
            vec![]
        }
        After::Open(path) => vec![cmd(ConfigCmd::Open {
            path,
            role: Role::Main,
        })],
        After::Close => {
            let c = &mut s.config;
            c.main = None;
            c.dataset = None;
            c.active = Role::Main;
            c.focus = Focus::Files;
            c.other_diags.clear();
            c.derived.clear();
            c.linked_dataset = None;
            c.search = None;
            vec![]
        }
        After::Launch => match &s.config.main {
            Some(b) => vec![Command::NewLaunchWith(b.path.clone())],
            None => vec![],
        },
    }
}

/// Saves every buffer with changes; `then` runs once none is left unsaved.
fn save_all(s: &mut State, then: After) -> Vec<Command> {
    let mut out = Vec::new();
    for role in [Role::Main, Role::Dataset] {
        if let Some(b) = s.config.buffer(role).filter(|b| b.dirty) {
            out.push(cmd(ConfigCmd::Save {
                role,
                path: b.path.clone(),
                text: b.editor.text(),
                expected: b.saved.clone(),
                force: false,
                then: then.clone(),
            }));
        }
    }
    if out.is_empty() {
        return perform(s, then);
    }
    out
}

/// Throws the unsaved changes away (undo brings them back while the buffer stays open).
fn discard_all(s: &mut State) -> Vec<Command> {
    for role in [Role::Main, Role::Dataset] {
        let Some(b) = s.config.buffer_mut(role) else {
            continue;
        };
        if !b.dirty {
            continue;
        }
        match b.saved.clone() {
            Some(t) => {
                b.editor.replace_text(&t);
                b.refresh_dirty();
            }
            // Gone from disk: nothing to go back to.
            None => match role {
                Role::Main => {
                    s.config.main = None;
                    s.config.dataset = None;
                    s.config.focus = Focus::Files;
                }
                Role::Dataset => s.config.dataset = None,
            },
        }
    }
    if s.config.buffer(s.config.active).is_none() {
        s.config.active = Role::Main;
    }
    s.config.linted = false;
    vec![cmd(ConfigCmd::Lint { debounce: false })]
}

fn on_edit(s: &mut State, debounce: bool) -> Vec<Command> {
    let role = s.config.active;
    if let Some(b) = s.config.buffer_mut(role) {
        b.refresh_dirty();
    }
    s.config.linted = false;
    // A message about something earlier gives way to the diagnostic under the cursor.
    s.status = None;
    vec![cmd(ConfigCmd::Lint { debounce })]
}

/// Keys of the Config tab (overlays were handled before).
pub fn key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let editing = s.config.main.is_some() && s.config.focus == Focus::Editor;
    if ctrl(&k) {
        match k.code {
            KeyCode::Char('s') => return save_active(s),
            KeyCode::Char('t') => return toggle_dataset(s),
            KeyCode::Char('l') => return launch(s),
            KeyCode::Char('o') if editing => return open_picker(s),
            KeyCode::Char('f') if editing => {
                s.config.search = Some(String::new());
                return vec![];
            }
            _ => {}
        }
    }
    if editing && s.config.search.is_some() {
        return search_key(s, k);
    }
    match s.config.focus {
        Focus::Editor if s.config.main.is_some() => editor_key(s, k),
        Focus::Diagnostics if s.config.main.is_some() => diag_key(s, k),
        _ => files_key(s, k),
    }
}

fn files_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let c = &mut s.config;
    let n = c.files.len();
    let open = c.main.is_some();
    if let Some(i) = crate::tui::keys::list_move(c.selected, n, k.code) {
        c.selected = i;
        return vec![];
    }
    match k.code {
        KeyCode::Enter | KeyCode::Char('l') => {
            let Some(f) = c.selected_file().cloned() else {
                warn(
                    s,
                    "no config here: n makes one from a template, o opens a path",
                );
                return vec![];
            };
            if c.main.as_ref().is_some_and(|b| b.path == f.path) {
                c.focus = Focus::Editor;
                c.active = Role::Main;
                return vec![];
            }
            return leave(s, After::Open(f.path));
        }
        KeyCode::Char('e') | KeyCode::Right | KeyCode::Tab if open => c.focus = Focus::Editor,
        KeyCode::BackTab if open => c.focus = Focus::Diagnostics,
        KeyCode::Char('n') => set_overlay(s, ConfigOverlay::Template { sel: 0 }),
        KeyCode::Char('o') => {
            let start = c
                .dirs
                .first()
                .map(|d| format!("{}/", display_path(d)))
                .unwrap_or_default();
            set_overlay(
                s,
                ConfigOverlay::Prompt {
                    kind: PromptKind::OpenPath,
                    text: start,
                },
            );
        }
        KeyCode::Char('c') | KeyCode::Char('r') | KeyCode::Char('d') | KeyCode::Delete => {
            let Some(f) = c.selected_file().cloned() else {
                warn(s, "no config selected");
                return vec![];
            };
            let open_dirty = [&c.main, &c.dataset]
                .into_iter()
                .flatten()
                .any(|b| b.path == f.path && b.dirty);
            // Deleting the open config closes both buffers: no unsaved edit may go with it.
            let deleting_open = matches!(k.code, KeyCode::Char('d') | KeyCode::Delete)
                && c.main.as_ref().is_some_and(|b| b.path == f.path);
            if k.code != KeyCode::Char('c') && (open_dirty || (deleting_open && c.dirty())) {
                warn(
                    s,
                    format!(
                        "{} has unsaved changes: save (Ctrl-S) or close it (w) first",
                        file_name(&f.path)
                    ),
                );
                return vec![];
            }
            let o = match k.code {
                KeyCode::Char('c') => {
                    let stem = f.path.file_stem().unwrap_or_default().to_string_lossy();
                    ConfigOverlay::Prompt {
                        kind: PromptKind::Duplicate {
                            from: f.path.clone(),
                        },
                        text: format!("{stem}-copy.toml"),
                    }
                }
                KeyCode::Char('r') => ConfigOverlay::Prompt {
                    text: file_name(&f.path),
                    kind: PromptKind::Rename { from: f.path },
                },
                _ => ConfigOverlay::ConfirmDelete { path: f.path },
            };
            set_overlay(s, o);
        }
        KeyCode::Char('w') if open => return leave(s, After::Close),
        _ => {}
    }
    vec![]
}

fn editor_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    /// What is left to do once the buffer is no longer borrowed.
    enum Then {
        Nothing,
        Focus(Focus),
        Find(bool),
        Diag(bool),
        Picker,
        Hub,
        Copied,
    }
    let role = s.config.active;
    let shift = k.modifiers.contains(KeyModifiers::SHIFT);
    let (is_ctrl, is_alt) = (ctrl(&k), alt(&k));
    let Some(b) = s.config.buffer_mut(role) else {
        s.config.focus = Focus::Files;
        return vec![];
    };
    let e = &mut b.editor;
    let (modified, then) = match k.code {
        KeyCode::Esc if e.selection().is_some() => {
            e.textarea().cancel_selection();
            (false, Then::Nothing)
        }
        KeyCode::Esc | KeyCode::BackTab => (false, Then::Focus(Focus::Files)),
        KeyCode::Char('z' | 'u') if is_ctrl => (e.undo(), Then::Nothing),
        KeyCode::Char('y' | 'r') if is_ctrl => (e.redo(), Then::Nothing),
        KeyCode::Char('v') if is_ctrl => (e.textarea().paste(), Then::Nothing),
        KeyCode::Char('c' | 'w') if is_alt => {
            e.textarea().copy();
            (false, Then::Copied)
        }
        KeyCode::Char('a') if is_alt => {
            e.textarea().select_all();
            (false, Then::Nothing)
        }
        KeyCode::Char('g') if is_ctrl => (false, Then::Find(true)),
        KeyCode::F(3) => (false, Then::Find(!shift)),
        KeyCode::F(8) => (false, Then::Diag(!shift)),
        KeyCode::F(2) => (false, Then::Picker),
        KeyCode::F(4) => (false, Then::Hub),
        KeyCode::PageDown | KeyCode::PageUp => {
            // The rows drawn last (20 before the first frame), less one kept for context.
            let h = match e.view.get().2 {
                0 => 20,
                h => h.max(2) as isize - 1,
            };
            e.move_lines(if k.code == KeyCode::PageDown { h } else { -h });
            (false, Then::Nothing)
        }
        _ => (e.textarea().input(k), Then::Nothing),
    };
    if modified {
        return on_edit(s, true);
    }
    match then {
        Then::Nothing => vec![],
        Then::Focus(f) => {
            s.config.focus = f;
            vec![]
        }
        Then::Find(forward) => find_next(s, forward),
        Then::Diag(forward) => next_diag(s, forward),
        Then::Picker => open_picker(s),
        Then::Hub => open_hub(s),
        Then::Copied => {
            info(s, "copied (Ctrl-V pastes)");
            vec![]
        }
    }
}

fn search_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let Some(q) = s.config.search.as_mut() else {
        return vec![];
    };
    match k.code {
        KeyCode::Esc => s.config.search = None,
        KeyCode::Enter => {
            let q = std::mem::take(q);
            s.config.search = None;
            if !q.is_empty() {
                s.config.last_search = Some(q);
            }
            return find_next(s, true);
        }
        KeyCode::Backspace => {
            q.pop();
        }
        KeyCode::Char('u') if ctrl(&k) => q.clear(),
        KeyCode::Char(ch) if !ctrl(&k) && !alt(&k) => q.push(ch),
        _ => {}
    }
    vec![]
}

fn find_next(s: &mut State, forward: bool) -> Vec<Command> {
    let Some(q) = s.config.last_search.clone() else {
        info(s, "Ctrl-F to search");
        return vec![];
    };
    let role = s.config.active;
    if let Some(b) = s.config.buffer_mut(role)
        && !b.editor.find(&q, forward)
    {
        warn(s, format!("`{q}` not found"));
    }
    vec![]
}

/// Moves the cursor to the next (or previous) diagnostic of the buffer shown.
fn next_diag(s: &mut State, forward: bool) -> Vec<Command> {
    let role = s.config.active;
    let Some(b) = s.config.buffer_mut(role) else {
        return vec![];
    };
    let row = b.editor.cursor().0 + 1;
    let lines: Vec<usize> = b.diags.iter().map(|d| d.line.max(1)).collect();
    let to = if forward {
        lines.iter().find(|l| **l > row).or(lines.first())
    } else {
        lines.iter().rev().find(|l| **l < row).or(lines.last())
    };
    match to.copied() {
        Some(l) => {
            let col = b
                .diags
                .iter()
                .find(|d| d.line.max(1) == l)
                .map_or(0, |d| d.column.saturating_sub(1));
            b.editor.jump(l - 1, col);
            s.status = None;
        }
        None => info(s, "no problems in this file"),
    }
    vec![]
}

fn diag_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let n = s.config.all_diags().len();
    let c = &mut s.config;
    match k.code {
        KeyCode::Down | KeyCode::Char('j') => {
            c.diag_sel = (c.diag_sel + 1).min(n.saturating_sub(1))
        }
        KeyCode::Up | KeyCode::Char('k') => c.diag_sel = c.diag_sel.saturating_sub(1),
        KeyCode::Home | KeyCode::Char('g') => c.diag_sel = 0,
        KeyCode::End | KeyCode::Char('G') => c.diag_sel = n.saturating_sub(1),
        KeyCode::Esc | KeyCode::Tab => c.focus = Focus::Files,
        KeyCode::BackTab => c.focus = Focus::Editor,
        KeyCode::Enter => {
            let i = c.diag_sel;
            return jump_to_diag(s, i);
        }
        _ => {}
    }
    vec![]
}

/// Puts the cursor on diagnostic `i` of the list.
pub fn jump_to_diag(s: &mut State, i: usize) -> Vec<Command> {
    let Some((role, line, col, file)) = s
        .config
        .all_diags()
        .get(i)
        .map(|r| (r.role, r.d.line.max(1), r.d.column, r.d.file.clone()))
    else {
        return vec![];
    };
    let Some(role) = role else {
        warn(
            s,
            format!("in {}: open that file to fix it", display_path(&file)),
        );
        return vec![];
    };
    let c = &mut s.config;
    c.active = role;
    c.focus = Focus::Editor;
    c.diag_sel = i;
    if let Some(b) = c.buffer_mut(role) {
        b.editor.jump(line - 1, col.saturating_sub(1));
    }
    s.status = None;
    vec![]
}

fn save_active(s: &mut State) -> Vec<Command> {
    let role = s.config.active;
    let Some(b) = s.config.buffer(role).or(s.config.main.as_ref()) else {
        info(s, "no config is open");
        return vec![];
    };
    let role = if s.config.buffer(role).is_some() {
        role
    } else {
        Role::Main
    };
    if !b.dirty {
        info(s, format!("{}: no changes to save", b.name()));
        return vec![];
    }
    vec![cmd(ConfigCmd::Save {
        role,
        path: b.path.clone(),
        text: b.editor.text(),
        expected: b.saved.clone(),
        force: false,
        then: After::Nothing,
    })]
}

fn toggle_dataset(s: &mut State) -> Vec<Command> {
    let c = &mut s.config;
    let Some(main) = &c.main else {
        info(s, "open a config first");
        return vec![];
    };
    if c.dataset.is_some() {
        c.active = match c.active {
            Role::Main => Role::Dataset,
            Role::Dataset => Role::Main,
        };
        c.focus = Focus::Editor;
        return vec![];
    }
    if main.kind == Kind::Dataset {
        info(
            s,
            "this is a dataset config: its training config names it with `dataset = ...`",
        );
        return vec![];
    }
    match c.linked_dataset.clone() {
        Some(path) => vec![cmd(ConfigCmd::Open {
            path,
            role: Role::Dataset,
        })],
        None => {
            warn(s, "this config names no dataset config (`dataset = '...'`)");
            vec![]
        }
    }
}

fn launch(s: &mut State) -> Vec<Command> {
    let Some(main) = &s.config.main else {
        info(
            s,
            "open a training config first (or press n in the Jobs tab)",
        );
        return vec![];
    };
    if main.kind == Kind::Dataset {
        warn(
            s,
            "a dataset config is not launched: open the training config that names it",
        );
        return vec![];
    }
    leave(s, After::Launch)
}

/// The path key under the cursor of the buffer shown: (its buffer, where it is, what it
/// needs); a warning when the cursor is on no path key.
fn path_key_here(s: &mut State) -> Option<(Role, pathkey::PathLoc, lint::Expect)> {
    let role = s.config.active;
    let b = s.config.buffer(role)?;
    let (row, col) = b.editor.cursor();
    let loc = match pathkey::locate(&b.editor.text(), row, col) {
        Ok(l) => l,
        Err(e) => {
            warn(s, e);
            return None;
        }
    };
    let Some(expect) = loc.expect else {
        warn(s, format!("`{}` is not a path key", loc.name()));
        return None;
    };
    Some((role, loc, expect))
}

fn open_picker(s: &mut State) -> Vec<Command> {
    let base = s.config.base.clone();
    let Some((role, loc, expect)) = path_key_here(s) else {
        return vec![];
    };
    let Some(b) = s.config.buffer(role) else {
        return vec![];
    };
    let (at, dir) = picker::start(loc.value.as_deref(), &base, &b.path);
    set_overlay(s, ConfigOverlay::Picker(Picker::new(role, loc, expect, at)));
    vec![cmd(ConfigCmd::List { dir })]
}

/// F4: the Hugging Face dialog on the path key under the cursor.
fn open_hub(s: &mut State) -> Vec<Command> {
    match path_key_here(s) {
        Some((role, loc, expect)) => hub::open(s, role, loc, expect),
        None => vec![],
    }
}

/// Writes the picked path into the key, through toml_edit.
fn choose(s: &mut State, p: &Picker, path: &Path) -> Vec<Command> {
    let Some(b) = s.config.buffer_mut(p.role) else {
        return vec![];
    };
    let value = path.display().to_string();
    match pathkey::set_string(&b.editor.text(), &p.loc, &value) {
        Ok(new) => {
            b.editor.replace_text(&new);
            s.config.active = p.role;
            s.config.focus = Focus::Editor;
            let out = on_edit(s, false);
            info(s, format!("{} = '{value}'", p.loc.name()));
            out
        }
        Err(e) => {
            s.status = Some((Level::Error, e));
            vec![]
        }
    }
}

/// A path typed in a prompt: `~` expanded, relative to `dir`.
fn typed_path(text: &str, dir: &Path) -> PathBuf {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    let p = PathBuf::from(t);
    if p.is_absolute() { p } else { dir.join(p) }
}

fn with_toml(p: PathBuf) -> PathBuf {
    if p.extension().is_some_and(|e| e == "toml") {
        p
    } else {
        let mut s = p.into_os_string();
        s.push(".toml");
        PathBuf::from(s)
    }
}

/// The file name offered for a new config of `model`.
fn suggested_name(model: &str) -> String {
    format!("{model}-lora.toml")
}

fn submit(s: &mut State, kind: PromptKind, text: String) -> Vec<Command> {
    if text.trim().is_empty() || text.trim().ends_with('/') {
        warn(s, "type a file name");
        set_overlay(s, ConfigOverlay::Prompt { kind, text });
        return vec![];
    }
    let workspace = s
        .config
        .dirs
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    match kind {
        PromptKind::OpenPath => leave(s, After::Open(typed_path(&text, &workspace))),
        PromptKind::NewFile { model } => {
            let main = with_toml(typed_path(&text, &workspace));
            let dir = main.parent().map(Path::to_path_buf).unwrap_or(workspace);
            let stem = main
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let dataset = dir.join(format!("{stem}-dataset.toml"));
            let output = dir.join("runs").join(&stem);
            vec![cmd(ConfigCmd::Create {
                main_text: templates::main_text(model, &output, &dataset),
                dataset_text: templates::dataset_text(&file_name(&main), model),
                main,
                dataset,
            })]
        }
        PromptKind::Duplicate { from } => {
            let dir = from.parent().map(Path::to_path_buf).unwrap_or(workspace);
            let to = with_toml(typed_path(&text, &dir));
            vec![cmd(ConfigCmd::Duplicate { from, to })]
        }
        PromptKind::Rename { from } => {
            let dir = from.parent().map(Path::to_path_buf).unwrap_or(workspace);
            let to = with_toml(typed_path(&text, &dir));
            if to == from {
                return vec![];
            }
            vec![cmd(ConfigCmd::Rename { from, to })]
        }
    }
}

/// A left click: selects a file (a second click on it opens it), puts the cursor where the
/// text was clicked, or selects a problem.
pub fn click(s: &mut State, hit: Hit) -> Vec<Command> {
    let c = &mut s.config;
    match hit {
        Hit::File(i) => {
            let again = c.focus == Focus::Files && i == Some(c.selected);
            c.focus = Focus::Files;
            if let Some(i) = i {
                c.selected = i;
                if again {
                    return files_key(s, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
                }
            }
        }
        Hit::Text(row, col) => {
            if c.main.is_some() {
                c.focus = Focus::Editor;
                let role = c.active;
                if let Some(b) = c.buffer_mut(role) {
                    b.editor.jump(row, col);
                }
            }
        }
        Hit::Diag(i) => {
            let again = c.focus == Focus::Diagnostics && i == Some(c.diag_sel);
            c.focus = Focus::Diagnostics;
            if let Some(i) = i {
                c.diag_sel = i;
                if again {
                    return jump_to_diag(s, i);
                }
            }
        }
    }
    vec![]
}

/// The wheel: scrolls what it is over (the text by 3 lines).
pub fn wheel(s: &mut State, hit: Hit, down: bool) {
    let c = &mut s.config;
    let d: isize = if down { 1 } else { -1 };
    match hit {
        Hit::File(_) => {
            c.selected = (c.selected as isize + d)
                .clamp(0, c.files.len().saturating_sub(1) as isize)
                as usize
        }
        Hit::Text(..) => {
            let role = c.active;
            if let Some(b) = c.buffer_mut(role) {
                b.editor.move_lines(3 * d);
            }
        }
        Hit::Diag(_) => {
            let n = c.all_diags().len();
            c.diag_sel = (c.diag_sel as isize + d).clamp(0, n.saturating_sub(1) as isize) as usize
        }
    }
}

/// Writes every buffer with unsaved edits to its recovery file (see `files::recovery_path`); for
/// the exits that cannot ask (SIGHUP, SIGTERM, a fatal error). Returns the files written.
pub fn keep_unsaved(c: &ConfigState, state_dir: &Path) -> Vec<PathBuf> {
    let mut kept = Vec::new();
    for b in [&c.main, &c.dataset]
        .into_iter()
        .flatten()
        .filter(|b| b.dirty)
    {
        let dest = files::recovery_path(state_dir, &b.path);
        if let Some(dir) = dest.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if crate::jobs::journal::write_atomic(&dest, b.editor.text().as_bytes()).is_ok() {
            kept.push(dest);
        }
    }
    kept
}

/// Keys of the Config tab's dialogs.
pub fn overlay_key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let Overlay::Config(o) = std::mem::replace(&mut s.overlay, Overlay::None) else {
        return vec![];
    };
    // A held key must not answer a question twice.
    let repeat = k.kind == KeyEventKind::Repeat;
    let keep = |s: &mut State, o: ConfigOverlay| {
        set_overlay(s, o);
        vec![]
    };
    match *o {
        ConfigOverlay::Unsaved { then } if !repeat => match k.code {
            KeyCode::Char('s' | 'y') | KeyCode::Enter => save_all(s, then),
            KeyCode::Char('d' | 'n') => {
                let mut out = discard_all(s);
                out.extend(perform(s, then));
                out
            }
            // Anything else cancels: text typed on after Esc must never answer this question.
            _ => {
                info(s, "nothing was done (s save, d discard)");
                vec![]
            }
        },
        ConfigOverlay::Conflict {
            role,
            deleted,
            then,
        } if !repeat => {
            let Some(b) = s.config.buffer(role) else {
                return vec![];
            };
            match k.code {
                KeyCode::Char('r') if !deleted => vec![cmd(ConfigCmd::Open {
                    path: b.path.clone(),
                    role,
                })],
                KeyCode::Char('o') => vec![cmd(ConfigCmd::Save {
                    role,
                    path: b.path.clone(),
                    text: b.editor.text(),
                    expected: None,
                    force: true,
                    then,
                })],
                KeyCode::Esc | KeyCode::Char('c' | 'q') => {
                    info(s, "not saved: your changes are still in the editor");
                    vec![]
                }
                _ => keep(
                    s,
                    ConfigOverlay::Conflict {
                        role,
                        deleted,
                        then,
                    },
                ),
            }
        }
        ConfigOverlay::ConfirmDelete { path } if !repeat => match k.code {
            KeyCode::Char('y') | KeyCode::Enter => vec![cmd(ConfigCmd::Delete { path })],
            // Anything else cancels: text typed on after Esc must never answer this question.
            _ => {
                info(s, "nothing was deleted");
                vec![]
            }
        },
        ConfigOverlay::Prompt { kind, mut text } => match k.code {
            KeyCode::Esc => vec![],
            KeyCode::Enter => submit(s, kind, text),
            KeyCode::Backspace => {
                text.pop();
                keep(s, ConfigOverlay::Prompt { kind, text })
            }
            KeyCode::Char('u') if ctrl(&k) => keep(
                s,
                ConfigOverlay::Prompt {
                    kind,
                    text: String::new(),
                },
            ),
            KeyCode::Char(ch) if !ctrl(&k) && !alt(&k) => {
                // The suggested name is replaced by the first character typed (Backspace or
                // Enter keep it), as a pre-selected default would be.
                if let PromptKind::NewFile { model } = &kind
                    && text == suggested_name(model)
                {
                    text.clear();
                }
                text.push(ch);
                keep(s, ConfigOverlay::Prompt { kind, text })
            }
            _ => keep(s, ConfigOverlay::Prompt { kind, text }),
        },
        ConfigOverlay::Template { sel } => {
            let models = templates::model_names();
            let n = models.len();
            if let Some(i) = crate::tui::keys::list_move(sel, n, k.code) {
                return keep(s, ConfigOverlay::Template { sel: i });
            }
            match k.code {
                KeyCode::Esc => return vec![],
                KeyCode::Enter => {
                    if let Some(model) = models.get(sel) {
                        return keep(
                            s,
                            ConfigOverlay::Prompt {
                                kind: PromptKind::NewFile { model },
                                text: suggested_name(model),
                            },
                        );
                    }
                }
                _ => {}
            }
            keep(s, ConfigOverlay::Template { sel })
        }
        ConfigOverlay::Picker(mut p) => match p.key(k) {
            picker::Action::None => keep(s, ConfigOverlay::Picker(p)),
            picker::Action::List(dir) => {
                p.loading = true;
                set_overlay(s, ConfigOverlay::Picker(p));
                vec![cmd(ConfigCmd::List { dir })]
            }
            picker::Action::Choose(path) => choose(s, &p, &path),
            picker::Action::Hub => hub::open(s, p.role, p.loc, p.expect),
            picker::Action::Cancel => vec![],
        },
        ConfigOverlay::Hub(mut d) => match d.key(k) {
            hub::Action::None => keep(s, ConfigOverlay::Hub(d)),
            hub::Action::List(repo) => {
                set_overlay(s, ConfigOverlay::Hub(d));
                vec![Command::Hub(crate::tui::hub::HubCmd::List {
                    repo,
                    revision: crate::hub::config::DEFAULT_REVISION.into(),
                })]
            }
            hub::Action::Download(request) => {
                let write = Some(d.write_back());
                info(s, format!("queuing {}…", request.repo));
                vec![Command::Hub(crate::tui::hub::HubCmd::Download {
                    request,
                    write,
                })]
            }
            hub::Action::Cancel => vec![],
        },
        // A repeated key on a question: ignored, the question stays.
        other => keep(s, other),
    }
}

/// Results from the runtime.
pub fn event(s: &mut State, e: ConfigEvent) -> Vec<Command> {
    let c = &mut s.config;
    match e {
        ConfigEvent::Files(list) => {
            c.files = list;
            c.loaded = true;
            if let Some(p) = c.select_after_scan.take()
                && let Some(i) = c.files.iter().position(|f| f.path == p)
            {
                c.selected = i;
            }
            c.selected = c.selected.min(c.files.len().saturating_sub(1));
        }
        ConfigEvent::Opened { role, path, result } => {
            let text = match result {
                Ok(t) => t,
                Err(e) => {
                    s.status = Some((Level::Error, format!("cannot open: {e}")));
                    return vec![];
                }
            };
            let reload = c.buffer(role).is_some_and(|b| b.path == path);
            if reload {
                let b = c.buffer_mut(role).expect("checked");
                b.editor.replace_text(&text);
                b.kind = files::kind_of(&text);
                b.saved = Some(text);
                b.disk_changed = None;
                b.refresh_dirty();
                info(s, format!("reloaded {} from disk", file_name(&path)));
            } else {
                let b = Buffer::new(path.clone(), text);
                match role {
                    Role::Main => {
                        c.main = Some(b);
                        c.dataset = None;
                        c.linked_dataset = None;
                        c.other_diags.clear();
                        c.derived.clear();
                        c.diag_sel = 0;
                        c.search = None;
                        if let Some(i) = c.files.iter().position(|f| f.path == path) {
                            c.selected = i;
                        }
                    }
                    Role::Dataset => c.dataset = Some(b),
                }
                c.active = role;
                c.focus = Focus::Editor;
                if s.status.as_ref().is_some_and(|(l, _)| *l != Level::Error) {
                    s.status = None;
                }
            }
            s.config.linted = false;
            return vec![cmd(ConfigCmd::Lint { debounce: false })];
        }
        ConfigEvent::Linted(r) => c.apply_lint(r),
        ConfigEvent::Saved {
            role,
            path,
            text,
            outcome,
            then,
        } => match outcome {
            SaveOutcome::Saved { backup } => {
                if let Some(b) = c.buffer_mut(role).filter(|b| b.path == path) {
                    b.kind = files::kind_of(&text);
                    b.saved = Some(text);
                    b.disk_changed = None;
                    b.refresh_dirty();
                }
                let name = file_name(&path);
                info(
                    s,
                    if backup {
                        format!("saved {name} (the previous version is in {name}.bak)")
                    } else {
                        format!("saved {name}")
                    },
                );
                let mut out = vec![cmd(ConfigCmd::Scan)];
                if !s.config.dirty() {
                    out.extend(perform(s, then));
                }
                return out;
            }
            SaveOutcome::ChangedOnDisk { deleted } => {
                warn(
                    s,
                    format!(
                        "{} {} since you opened it: not saved",
                        file_name(&path),
                        if deleted {
                            "was deleted"
                        } else {
                            "changed on disk"
                        }
                    ),
                );
                set_overlay(
                    s,
                    ConfigOverlay::Conflict {
                        role,
                        deleted,
                        then,
                    },
                );
            }
            SaveOutcome::Failed(e) => s.status = Some((Level::Error, format!("not saved: {e}"))),
        },
        ConfigEvent::FileOp(Err(e)) => s.status = Some((Level::Error, e)),
        ConfigEvent::FileOp(Ok(done)) => {
            let mut out = vec![cmd(ConfigCmd::Scan)];
            match done {
                FileDone::Created(p) => {
                    c.select_after_scan = Some(p.clone());
                    info(
                        s,
                        format!("created {} and its dataset config", display_path(&p)),
                    );
                    out.extend(leave(s, After::Open(p)));
                }
                FileDone::Duplicated(p) => {
                    c.select_after_scan = Some(p.clone());
                    info(s, format!("created {}", display_path(&p)));
                }
                FileDone::Renamed { from, to } => {
                    for b in [&mut c.main, &mut c.dataset].into_iter().flatten() {
                        if b.path == from {
                            b.path = to.clone();
                        }
                    }
                    if c.linked_dataset.as_ref() == Some(&from) {
                        c.linked_dataset = Some(to.clone());
                    }
                    c.select_after_scan = Some(to.clone());
                    info(
                        s,
                        format!("renamed {} to {}", file_name(&from), file_name(&to)),
                    );
                    if s.config.main.is_some() {
                        out.push(cmd(ConfigCmd::Lint { debounce: false }));
                    }
                }
                FileDone::Deleted(p) => {
                    if c.main.as_ref().is_some_and(|b| b.path == p) {
                        out.extend(perform(s, After::Close));
                    } else if c.dataset.as_ref().is_some_and(|b| b.path == p) {
                        c.dataset = None;
                        c.active = Role::Main;
                    }
                    info(s, format!("deleted {}", display_path(&p)));
                }
            }
            return out;
        }
        ConfigEvent::DiskChanged {
            role,
            path,
            deleted,
        } => {
            if let Some(b) = c.buffer_mut(role).filter(|b| b.path == path)
                && b.disk_changed != Some(deleted)
            {
                b.disk_changed = Some(deleted);
                warn(
                    s,
                    format!(
                        "{} {} since you opened it: Ctrl-S will ask before writing",
                        file_name(&path),
                        if deleted {
                            "was deleted"
                        } else {
                            "changed on disk"
                        }
                    ),
                );
            }
        }
        ConfigEvent::Listing { dir, result } => {
            if let Overlay::Config(o) = &mut s.overlay
                && let ConfigOverlay::Picker(p) = o.as_mut()
            {
                p.listed(dir, result);
            }
        }
    }
    vec![]
}

// ---------------------------------------------------------------------------------------------
// The runtime's side

/// What the runtime hands to `run`.
pub struct Ctx<'a> {
    pub dirs: &'a [PathBuf],
    pub state_dir: &'a Path,
    /// dpgui's own config.toml (never listed).
    pub own_config: &'a Path,
    /// Configs of recent jobs (listed with the recent ones).
    pub job_configs: Vec<PathBuf>,
}

/// Does a command's I/O. `Lint` is the runtime's (it waits for a pause in typing): None.
pub fn run(c: ConfigCmd, ctx: &Ctx) -> Option<ConfigEvent> {
    Some(match c {
        ConfigCmd::Scan => ConfigEvent::Files(files::list_workspace(
            ctx.dirs,
            &files::load_recent(ctx.state_dir),
            &ctx.job_configs,
            ctx.own_config,
        )),
        ConfigCmd::Open { path, role } => {
            let path = if path.is_absolute() {
                path
            } else {
                std::path::absolute(&path).unwrap_or(path)
            };
            let result = files::read_config(&path);
            if result.is_ok() && role == Role::Main {
                files::push_recent(ctx.state_dir, &path);
            }
            ConfigEvent::Opened { role, path, result }
        }
        ConfigCmd::Lint { .. } => return None,
        ConfigCmd::Save {
            role,
            path,
            text,
            expected,
            force,
            then,
        } => {
            let outcome = files::save_checked(&path, &text, expected.as_deref(), force);
            if matches!(outcome, SaveOutcome::Saved { .. }) {
                // Saved: an older recovery copy of this file is obsolete.
                let _ =
                    std::fs::remove_file(files::recovery_path(&crate::paths::state_dir(), &path));
            }
            ConfigEvent::Saved {
                role,
                path,
                text,
                outcome,
                then,
            }
        }
        ConfigCmd::Create {
            main,
            main_text,
            dataset,
            dataset_text,
        } => ConfigEvent::FileOp(
            files::create_pair(&main, &main_text, &dataset, &dataset_text)
                .map(|()| FileDone::Created(main)),
        ),
        ConfigCmd::Duplicate { from, to } => {
            ConfigEvent::FileOp(files::duplicate(&from, &to).map(|()| FileDone::Duplicated(to)))
        }
        ConfigCmd::Rename { from, to } => {
            ConfigEvent::FileOp(files::rename(&from, &to).map(|()| FileDone::Renamed { from, to }))
        }
        ConfigCmd::Delete { path } => {
            ConfigEvent::FileOp(files::delete(&path).map(|()| FileDone::Deleted(path)))
        }
        ConfigCmd::List { dir } => {
            let (dir, result) = files::list_dir(&dir);
            ConfigEvent::Listing { dir, result }
        }
    })
}

/// The open files that are no longer what was read from disk.
pub fn disk_check(c: &ConfigState) -> Vec<ConfigEvent> {
    let mut out = Vec::new();
    for role in [Role::Main, Role::Dataset] {
        let Some(b) = c.buffer(role) else { continue };
        let now = match std::fs::read(&b.path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => continue,
        };
        if now.as_deref() != b.saved.as_deref().map(str::as_bytes) {
            out.push(ConfigEvent::DiskChanged {
                role,
                path: b.path.clone(),
                deleted: now.is_none(),
            });
        }
    }
    out
}

/// Lints the open buffers as they are now (the dataset buffer's text stands in for its file).
pub fn lint(c: &ConfigState) -> Option<ConfigEvent> {
    let main = c.main.as_ref()?;
    let text = main.editor.text();
    let fs = lint::RealFs;
    let r = match files::kind_of(&text) {
        Kind::Dataset => LintResult {
            diagnostics: lint::lint_dataset(&main.path, &text, &c.base, &fs),
            dataset_path: None,
            derived: Vec::new(),
        },
        _ => {
            let ds = c.dataset.as_ref();
            let ds_text = ds.map(|d| d.editor.text());
            let mut rep = lint::lint_main(&main.path, &text, &c.base, &fs, ds_text.as_deref());
            // The main config now names another dataset config: lint that one from disk.
            if ds.is_some() && rep.dataset_path.as_deref() != ds.map(|d| d.path.as_path()) {
                rep = lint::lint_main(&main.path, &text, &c.base, &fs, None);
            }
            LintResult {
                diagnostics: rep.diagnostics,
                dataset_path: rep.dataset_path,
                derived: rep.derived,
            }
        }
    };
    Some(ConfigEvent::Linted(r))
}

/// The severity letter shown in the gutter and the list.
pub fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Error => "E",
        Severity::Warning => "W",
        Severity::Info => "I",
    }
}

#[cfg(test)]
mod tests;
