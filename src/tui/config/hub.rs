//! The Hugging Face dialog on a path key (F4 in the editor or the path picker): a repo id
//! (the key's value when it is one, else a known-good source), the repo's files with sizes and
//! the ones that fit the key first, then where they go (the shared hub cache or a directory).
//! Pure like the picker: listings come from the runtime, keys return what to do. The local path
//! is written into the key once the download is done (`tui::hub`).

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::pathkey::{self, PathLoc};
use super::{Buffer, Role};
use crate::hub::{
    self, Dest, HubError, HubSource, RepoListing, Request, Selection, SuggestionKind,
};
use crate::trainer::lint::{self, Expect};
use crate::tui::app::{Command, State};

/// The dialog's three steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Typing the repo id (or picking a known-good source).
    Repo,
    /// The repo's files: choose a file, a folder or the whole repo.
    Files,
    /// Where the download goes.
    Dest,
}

/// A row of the files step.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub kind: SuggestionKind,
    /// Repo-relative file or folder; empty for the whole repo.
    pub path: String,
    pub files: usize,
    pub bytes: u64,
    /// Why it fits the key (None: a row of the plain listing).
    pub why: Option<String>,
    /// Named by a known-good source.
    pub known: bool,
}

impl Choice {
    pub fn suggested(&self) -> bool {
        self.why.is_some()
    }

    pub fn selection(&self) -> Selection {
        match self.kind {
            SuggestionKind::File => Selection::Files(vec![self.path.clone()]),
            SuggestionKind::Folder => Selection::Folder(self.path.clone()),
            SuggestionKind::Repo => Selection::All,
        }
    }

    /// "sd_xl_base_1.0.safetensors", "unet/", "(the whole repo)".
    pub fn label(&self) -> String {
        match self.kind {
            SuggestionKind::File => self.path.clone(),
            SuggestionKind::Folder => format!("{}/", self.path),
            SuggestionKind::Repo => "(the whole repo)".into(),
        }
    }
}

/// Where a finished download's local path goes: a key of a config (the open buffer when that
/// config is open then, else the file on disk).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBack {
    pub config: PathBuf,
    pub loc: PathLoc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubDialog {
    /// The buffer and the key the local path is written to.
    pub role: Role,
    pub config: PathBuf,
    pub loc: PathLoc,
    pub expect: Expect,
    /// `[model] type` of the training config ("" when unknown).
    pub model: String,
    /// The repo id typed.
    pub repo: String,
    /// Known-good sources for this model type and key.
    pub sources: Vec<HubSource>,
    pub source_sel: Option<usize>,
    pub step: Step,
    pub listing: Option<RepoListing>,
    pub choices: Vec<Choice>,
    pub sel: usize,
    pub loading: bool,
    pub error: Option<String>,
    /// The destination: a directory (typed in `dir`) instead of the hub cache.
    pub to_dir: bool,
    pub dir: String,
    /// HF_HUB_OFFLINE: only the cache is used.
    pub offline: bool,
    pub cache_dir: PathBuf,
}

/// What a key asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    /// List this repo's files.
    List(String),
    Download(Request),
    Cancel,
}

fn ctrl(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL)
}

fn alt(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::ALT)
}

/// Folders of the listing (every level), with their file counts and bytes.
fn folders(files: &[hub::RepoFile]) -> Vec<Choice> {
    let mut map: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for f in files {
        let mut end = 0;
        while let Some(i) = f.path[end..].find('/') {
            end += i;
            let e = map.entry(&f.path[..end]).or_default();
            e.0 += 1;
            e.1 += f.size;
            end += 1;
        }
    }
    map.into_iter()
        .map(|(p, (n, b))| Choice {
            kind: SuggestionKind::Folder,
            path: p.to_string(),
            files: n,
            bytes: b,
            why: None,
            known: false,
        })
        .collect()
}

impl HubDialog {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        role: Role,
        config: PathBuf,
        loc: PathLoc,
        expect: Expect,
        model: String,
        all_sources: &[HubSource],
        offline: bool,
        cache_dir: PathBuf,
    ) -> HubDialog {
        // Only `[model]` keys have known-good sources.
        let sources: Vec<HubSource> = match loc.segs.as_slice() {
            [pathkey::Seg::Key(m), pathkey::Seg::Key(k)] if m == "model" => {
                hub::sources_for(all_sources, &model, k)
                    .into_iter()
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        let value = loc.value.as_deref().map(str::trim).unwrap_or("");
        let repo = if lint::looks_like_hub_id(value) {
            value.to_string()
        } else {
            sources.first().map(|s| s.repo.clone()).unwrap_or_default()
        };
        let source_sel = sources.iter().position(|s| s.repo == repo);
        HubDialog {
            role,
            config,
            loc,
            expect,
            model,
            repo,
            sources,
            source_sel,
            step: Step::Repo,
            listing: None,
            choices: Vec::new(),
            sel: 0,
            loading: false,
            error: None,
            to_dir: false,
            dir: String::new(),
            offline,
            cache_dir,
        }
    }

    /// The row chosen in the files step.
    pub fn chosen(&self) -> Option<&Choice> {
        self.choices
            .get(self.sel.min(self.choices.len().saturating_sub(1)))
    }

    pub fn write_back(&self) -> WriteBack {
        WriteBack {
            config: self.config.clone(),
            loc: self.loc.clone(),
        }
    }

    /// A listing arrived (ignored unless it is the one waited for).
    pub fn listed(&mut self, repo: &str, result: Result<RepoListing, HubError>) {
        if !self.loading || self.step != Step::Files || self.repo.trim() != repo {
            return;
        }
        self.loading = false;
        match result {
            Ok(l) => {
                self.choices = self.choices_for(&l);
                self.error = if self.choices.is_empty() {
                    Some(format!(
                        "{repo} has nothing that fits {} ({})",
                        self.loc.name(),
                        self.expect.describe()
                    ))
                } else {
                    None
                };
                self.listing = Some(l);
                self.sel = 0;
            }
            Err(e) => {
                self.error = Some(e.to_string());
                self.listing = None;
                self.choices.clear();
            }
        }
    }

    /// Suggestions for the key first (the hub module's ranking), then the rest of what fits.
    fn choices_for(&self, l: &RepoListing) -> Vec<Choice> {
        let fits = |k: SuggestionKind| match self.expect {
            Expect::File => k == SuggestionKind::File,
            Expect::Dir => k != SuggestionKind::File,
            Expect::FileOrDir => true,
        };
        let mut out: Vec<Choice> = hub::suggest(
            &self.model,
            self.loc.key(),
            &l.files,
            &self.sources,
            &l.repo,
        )
        .into_iter()
        .filter(|s| fits(s.kind))
        .map(|s| Choice {
            kind: s.kind,
            files: s.files.len(),
            path: s.path,
            bytes: s.bytes,
            why: Some(s.why),
            known: s.known,
        })
        .collect();
        let mut push = |c: Choice| {
            if !out.iter().any(|o| o.kind == c.kind && o.path == c.path) {
                out.push(c);
            }
        };
        if fits(SuggestionKind::Repo) && !l.files.is_empty() {
            push(Choice {
                kind: SuggestionKind::Repo,
                path: String::new(),
                files: l.files.len(),
                bytes: l.total_bytes(),
                why: None,
                known: false,
            });
        }
        if fits(SuggestionKind::Folder) {
            for c in folders(&l.files) {
                push(c);
            }
        }
        if fits(SuggestionKind::File) {
            for f in &l.files {
                push(Choice {
                    kind: SuggestionKind::File,
                    path: f.path.clone(),
                    files: 1,
                    bytes: f.size,
                    why: None,
                    known: false,
                });
            }
        }
        out
    }

    /// The directory typed, absolute: `~` expanded, relative to the config's folder.
    fn dest_dir(&self) -> Option<PathBuf> {
        let t = self.dir.trim();
        if t.is_empty() {
            return None;
        }
        if let Some(rest) = t.strip_prefix("~/")
            && let Some(home) = dirs::home_dir()
        {
            return Some(home.join(rest));
        }
        let p = PathBuf::from(t);
        Some(if p.is_absolute() {
            p
        } else {
            self.config.parent().unwrap_or(Path::new("/")).join(p)
        })
    }

    fn list(&mut self) -> Action {
        let repo = self.repo.trim().to_string();
        if !hub::config::valid_repo_id(&repo) {
            self.error = Some(if repo.is_empty() {
                "type a repo id (owner/name)".into()
            } else {
                format!("`{repo}` is not a hub repo id (owner/name)")
            });
            return Action::None;
        }
        self.repo = repo.clone();
        self.step = Step::Files;
        self.loading = true;
        self.error = None;
        self.choices.clear();
        self.listing = None;
        self.sel = 0;
        Action::List(repo)
    }

    pub fn key(&mut self, k: KeyEvent) -> Action {
        match self.step {
            Step::Repo => self.repo_key(k),
            Step::Files => self.files_key(k),
            Step::Dest => self.dest_key(k),
        }
    }

    fn repo_key(&mut self, k: KeyEvent) -> Action {
        let n = self.sources.len();
        match k.code {
            KeyCode::Esc => return Action::Cancel,
            KeyCode::Enter => return self.list(),
            KeyCode::Down | KeyCode::Up if n > 0 => {
                let i = match (self.source_sel, k.code) {
                    (None, KeyCode::Down) => 0,
                    (None, _) => n - 1,
                    (Some(i), KeyCode::Down) => (i + 1) % n,
                    (Some(i), _) => (i + n - 1) % n,
                };
                self.source_sel = Some(i);
                self.repo = self.sources[i].repo.clone();
                self.error = None;
            }
            KeyCode::Backspace => {
                self.repo.pop();
                self.source_sel = None;
            }
            KeyCode::Char('u') if ctrl(&k) => {
                self.repo.clear();
                self.source_sel = None;
            }
            KeyCode::Char(c) if !ctrl(&k) && !alt(&k) => {
                self.repo.push(c);
                self.source_sel = None;
                self.error = None;
            }
            _ => {}
        }
        Action::None
    }

    fn files_key(&mut self, k: KeyEvent) -> Action {
        let n = self.choices.len();
        if let Some(i) = crate::tui::keys::list_move(self.sel, n, k.code) {
            self.sel = i;
            return Action::None;
        }
        match k.code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => {
                self.step = Step::Repo;
                self.loading = false;
                self.error = None;
            }
            KeyCode::Char('r') if !self.loading => return self.list(),
            KeyCode::Enter | KeyCode::Right if n > 0 && !self.loading => {
                self.sel = self.sel.min(n - 1);
                self.step = Step::Dest;
                self.error = None;
            }
            _ => {}
        }
        Action::None
    }

    fn dest_key(&mut self, k: KeyEvent) -> Action {
        match k.code {
            KeyCode::Esc => {
                self.step = Step::Files;
                self.error = None;
            }
            KeyCode::Up => self.to_dir = false,
            KeyCode::Down => self.to_dir = true,
            KeyCode::Tab | KeyCode::BackTab => self.to_dir = !self.to_dir,
            KeyCode::Backspace if self.to_dir => {
                self.dir.pop();
            }
            KeyCode::Char('u') if ctrl(&k) => self.dir.clear(),
            // Typing goes to the directory: typing one is choosing it.
            KeyCode::Char(c) if !ctrl(&k) && !alt(&k) => {
                self.to_dir = true;
                self.dir.push(c);
                self.error = None;
            }
            KeyCode::Enter => {
                let Some(choice) = self.chosen() else {
                    return Action::None;
                };
                let dest = if self.to_dir {
                    match self.dest_dir() {
                        Some(d) => Dest::Dir(d),
                        None => {
                            self.error = Some("type a directory (or ↑: the hub cache)".into());
                            return Action::None;
                        }
                    }
                } else {
                    Dest::Cache
                };
                return Action::Download(Request {
                    repo: self.repo.clone(),
                    revision: hub::config::DEFAULT_REVISION.to_string(),
                    selection: choice.selection(),
                    dest,
                });
            }
            _ => {}
        }
        Action::None
    }
}

/// Opens the dialog on the key `loc` of the buffer `role`.
pub fn open(s: &mut State, role: Role, loc: PathLoc, expect: Expect) -> Vec<Command> {
    let Some(b) = s.config.buffer(role) else {
        return vec![];
    };
    let config = b.path.clone();
    // The model type comes from the training config (a dataset config has none).
    let model = s
        .config
        .main
        .as_ref()
        .and_then(|m| hub::model_type_of(&m.editor.text()))
        .unwrap_or_default();
    let d = HubDialog::new(
        role,
        config,
        loc,
        expect,
        model,
        &s.hub.sources,
        s.hub.offline,
        s.hub.cache_dir.clone(),
    );
    super::set_overlay(s, super::ConfigOverlay::Hub(Box::new(d)));
    vec![]
}

/// The open buffer of `config`, if any.
fn buffer_of(s: &State, config: &Path) -> Option<Role> {
    [Role::Main, Role::Dataset]
        .into_iter()
        .find(|r| s.config.buffer(*r).is_some_and(|b| b.path == config))
}

/// Writes a finished download's path into the open buffer of `w.config` (one undo step, the
/// buffer marked modified): Some(result) when that config is open, None when it is not (the
/// caller writes the file on disk).
pub fn write_into_buffer(
    s: &mut State,
    w: &WriteBack,
    value: &str,
) -> Option<Result<Vec<Command>, String>> {
    let role = buffer_of(s, &w.config)?;
    let b: &mut Buffer = s.config.buffer_mut(role)?;
    let new = match pathkey::set_string(&b.editor.text(), &w.loc, value) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    b.editor.replace_text(&new);
    b.refresh_dirty();
    s.config.linted = false;
    Some(Ok(vec![super::cmd(super::ConfigCmd::Lint {
        debounce: false,
    })]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_count_every_level() {
        let files = vec![
            hub::RepoFile {
                path: "a.json".into(),
                size: 1,
            },
            hub::RepoFile {
                path: "unet/x.safetensors".into(),
                size: 10,
            },
            hub::RepoFile {
                path: "unet/sub/y.bin".into(),
                size: 100,
            },
        ];
        let got: Vec<(String, usize, u64)> = folders(&files)
            .into_iter()
            .map(|c| (c.path, c.files, c.bytes))
            .collect();
        assert_eq!(
            got,
            vec![("unet".into(), 2, 110), ("unet/sub".into(), 1, 100)]
        );
    }
}
