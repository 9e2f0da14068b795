//! The path picker: a directory browser over the key under the cursor, filtered to what the key
//! needs (files, directories, or both). Pure: listings come from the runtime
//! (`files::list_dir`), keys return what to do.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent};

use super::Role;
use super::files::PickEntry;
use super::pathkey::PathLoc;
use crate::trainer::lint::Expect;

#[derive(Debug, Clone, PartialEq)]
pub struct Picker {
    /// The buffer and the key the choice is written to.
    pub role: Role,
    pub loc: PathLoc,
    pub expect: Expect,
    /// The directory listed (or being listed).
    pub dir: PathBuf,
    pub entries: Vec<PickEntry>,
    pub sel: usize,
    /// Show names starting with a dot.
    pub hidden: bool,
    pub loading: bool,
    pub error: Option<String>,
}

/// A row of the picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// "this directory" (when the key takes a directory).
    Here,
    /// An index into `entries`.
    Entry(usize),
}

/// What a key asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    /// List this directory.
    List(PathBuf),
    /// Write this path into the key.
    Choose(PathBuf),
    /// Download it from the Hugging Face Hub instead (the hub dialog on the same key).
    Hub,
    Cancel,
}

impl Picker {
    pub fn new(role: Role, loc: PathLoc, expect: Expect, dir: PathBuf) -> Self {
        Picker {
            role,
            loc,
            expect,
            dir,
            entries: Vec::new(),
            sel: 0,
            hidden: false,
            loading: true,
            error: None,
        }
    }

    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        if self.expect != Expect::File {
            rows.push(Row::Here);
        }
        for (i, e) in self.entries.iter().enumerate() {
            if !self.hidden && e.name.starts_with('.') {
                continue;
            }
            if self.expect == Expect::Dir && !e.dir {
                continue;
            }
            rows.push(Row::Entry(i));
        }
        rows
    }

    /// A listing arrived: `dir` is what was actually listed (an ancestor when the asked one
    /// could not be read).
    pub fn listed(&mut self, dir: PathBuf, entries: Result<Vec<PickEntry>, String>) {
        let came_from = self
            .dir
            .strip_prefix(&dir)
            .ok()
            .and_then(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        self.loading = false;
        match entries {
            Ok(e) => {
                self.entries = e;
                self.error = None;
            }
            Err(e) => {
                self.entries.clear();
                self.error = Some(e);
            }
        }
        self.dir = dir;
        // Going up keeps the directory just left selected.
        let rows = self.rows();
        self.sel = came_from
            .and_then(|name| {
                rows.iter()
                    .position(|r| matches!(r, Row::Entry(i) if self.entries[*i].name == name))
            })
            .unwrap_or(0);
    }

    fn path_of(&self, row: Row) -> PathBuf {
        match row {
            Row::Here => self.dir.clone(),
            Row::Entry(i) => self.dir.join(&self.entries[i].name),
        }
    }

    fn is_dir(&self, row: Row) -> bool {
        match row {
            Row::Here => true,
            Row::Entry(i) => self.entries[i].dir,
        }
    }

    fn fits(&self, row: Row) -> bool {
        match self.expect {
            Expect::File => !self.is_dir(row),
            Expect::Dir => self.is_dir(row),
            Expect::FileOrDir => true,
        }
    }

    pub fn key(&mut self, k: KeyEvent) -> Action {
        let rows = self.rows();
        let n = rows.len();
        let cur = rows.get(self.sel.min(n.saturating_sub(1))).copied();
        if let Some(i) = crate::tui::keys::list_move(self.sel, n, k.code) {
            self.sel = i;
            return Action::None;
        }
        match k.code {
            KeyCode::Esc => return Action::Cancel,
            KeyCode::F(4) => return Action::Hub,
            KeyCode::Char('.') => {
                self.hidden = !self.hidden;
                self.sel = 0;
            }
            KeyCode::Backspace | KeyCode::Left | KeyCode::Char('h') => {
                if let Some(parent) = self.dir.parent() {
                    return Action::List(parent.to_path_buf());
                }
            }
            KeyCode::Char('~') => {
                if let Some(home) = dirs::home_dir() {
                    return Action::List(home);
                }
            }
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => match cur {
                Some(Row::Here) => return Action::Choose(self.dir.clone()),
                Some(r) if self.is_dir(r) => return Action::List(self.path_of(r)),
                Some(r) if k.code == KeyCode::Enter && self.fits(r) => {
                    return Action::Choose(self.path_of(r));
                }
                _ => {}
            },
            KeyCode::Char(' ') | KeyCode::Char('s') => {
                if let Some(r) = cur.filter(|r| self.fits(*r)) {
                    return Action::Choose(self.path_of(r));
                }
            }
            _ => {}
        }
        Action::None
    }
}

/// Where a picker starts: (the path to select, the directory to list). With a current value
/// (resolved like diffusion-pipe resolves it, from `base`) its folder is listed with it
/// selected; without one, the config's own folder.
pub fn start(value: Option<&str>, base: &Path, config: &Path) -> (PathBuf, PathBuf) {
    let config_dir = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return (config_dir.clone(), config_dir);
    };
    let p = if let Some(rest) = v.strip_prefix("~/") {
        dirs::home_dir().unwrap_or_default().join(rest)
    } else {
        base.join(v)
    };
    let parent = p.parent().map(Path::to_path_buf).unwrap_or(config_dir);
    (p, parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn entries() -> Vec<PickEntry> {
        vec![
            PickEntry {
                name: ".hidden".into(),
                dir: true,
            },
            PickEntry {
                name: "models".into(),
                dir: true,
            },
            PickEntry {
                name: "a.safetensors".into(),
                dir: false,
            },
        ]
    }

    fn press(p: &mut Picker, c: KeyCode) -> Action {
        p.key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    fn loc() -> PathLoc {
        PathLoc {
            segs: vec![],
            value: None,
            expect: None,
            note: String::new(),
        }
    }

    #[test]
    fn filters_by_what_the_key_needs_and_navigates() {
        let mut p = Picker::new(Role::Main, loc(), Expect::File, "/w".into());
        p.listed("/w".into(), Ok(entries()));
        assert_eq!(p.rows(), vec![Row::Entry(1), Row::Entry(2)]);
        assert_eq!(
            press(&mut p, KeyCode::Enter),
            Action::List("/w/models".into())
        );
        press(&mut p, KeyCode::Down);
        assert_eq!(
            press(&mut p, KeyCode::Char('s')),
            Action::Choose("/w/a.safetensors".into())
        );
        press(&mut p, KeyCode::Char('.'));
        assert_eq!(p.rows().len(), 3);
        assert_eq!(press(&mut p, KeyCode::Backspace), Action::List("/".into()));

        let mut p = Picker::new(Role::Main, loc(), Expect::Dir, "/w/models".into());
        p.listed("/w".into(), Ok(entries()));
        assert_eq!(p.rows(), vec![Row::Here, Row::Entry(1)]);
        assert_eq!(p.sel, 1, "the directory we came from is selected");
        assert_eq!(
            press(&mut p, KeyCode::Char(' ')),
            Action::Choose("/w/models".into())
        );
        press(&mut p, KeyCode::Up);
        assert_eq!(press(&mut p, KeyCode::Enter), Action::Choose("/w".into()));
        assert_eq!(press(&mut p, KeyCode::Esc), Action::Cancel);
    }

    #[test]
    fn starts_beside_the_current_value() {
        let base = Path::new("/dp");
        let cfg = Path::new("/w/train.toml");
        assert_eq!(start(None, base, cfg), ("/w".into(), "/w".into()));
        assert_eq!(start(Some(" "), base, cfg), ("/w".into(), "/w".into()));
        assert_eq!(
            start(Some("/m/x.safetensors"), base, cfg),
            ("/m/x.safetensors".into(), "/m".into())
        );
        assert_eq!(
            start(Some("data/imgs"), base, cfg),
            ("/dp/data/imgs".into(), "/dp/data".into())
        );
        // Listed: the folder, with the current value selected.
        let mut p = Picker::new(Role::Main, loc(), Expect::Dir, "/dp/data/imgs".into());
        p.listed(
            "/dp/data".into(),
            Ok(vec![
                PickEntry {
                    name: "a".into(),
                    dir: true,
                },
                PickEntry {
                    name: "imgs".into(),
                    dir: true,
                },
            ]),
        );
        assert_eq!(p.rows()[p.sel], Row::Entry(1));
    }
}
