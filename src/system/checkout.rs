//! The diffusion-pipe checkout on disk: is it there, which commit is checked out, are the
//! submodules initialised, is there a venv inside it.
//!
//! Git state is read from files (`.git/HEAD`, loose refs, `packed-refs`); git is never run.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::trainer::pin;

/// Where the submodule list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmodulesSource {
    /// Parsed from the checkout's `.gitmodules`.
    Gitmodules,
    /// `.gitmodules` missing or empty: the pin's list.
    Pin,
}

/// One submodule of the checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submodule {
    /// Path relative to the checkout root, e.g. `submodules/ComfyUI`.
    pub path: String,
    /// The directory exists and is not empty.
    pub initialised: bool,
}

/// What is on disk at the checkout directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckoutState {
    pub dir: PathBuf,
    /// The directory exists.
    pub exists: bool,
    /// `train.py` is present at its root.
    pub is_diffusion_pipe: bool,
    /// The commit HEAD points to (full hex), when it could be read.
    pub head: Option<String>,
    /// The branch HEAD points to (`refs/heads/main`); `None` when detached or unreadable.
    pub head_ref: Option<String>,
    /// Why HEAD could not be read (not a git checkout, unknown ref, ...).
    pub head_error: Option<String>,
    /// Whether `head` is the pinned commit; `None` when HEAD is unknown.
    pub matches_pin: Option<bool>,
    pub submodules: Vec<Submodule>,
    pub submodules_source: SubmodulesSource,
    /// A venv inside the checkout (`venv/` or `.venv/` with `bin/python`).
    pub venv: Option<PathBuf>,
}

impl CheckoutState {
    /// Submodules whose directory is missing or empty.
    pub fn missing_submodules(&self) -> Vec<&str> {
        self.submodules
            .iter()
            .filter(|s| !s.initialised)
            .map(|s| s.path.as_str())
            .collect()
    }
}

/// Inspects the checkout at `dir`. Never fails: what cannot be read is reported in the state.
pub fn inspect_checkout(dir: &Path) -> CheckoutState {
    let exists = dir.is_dir();
    let is_diffusion_pipe = exists && dir.join("train.py").is_file();
    let (head, head_ref, head_error) = if exists {
        match read_head(dir) {
            Ok(h) => (Some(h.commit), h.reference, None),
            Err(e) => (None, None, Some(e)),
        }
    } else {
        (
            None,
            None,
            Some(format!("{} does not exist", dir.display())),
        )
    };
    let matches_pin = head.as_deref().map(pin::matches_pinned_commit);

    let from_file = fs::read_to_string(dir.join(".gitmodules"))
        .map(|t| parse_gitmodules(&t))
        .unwrap_or_default();
    let (paths, submodules_source) = if from_file.is_empty() {
        (pin::pin().submodules.clone(), SubmodulesSource::Pin)
    } else {
        (from_file, SubmodulesSource::Gitmodules)
    };
    let submodules = paths
        .into_iter()
        .map(|path| {
            let initialised = exists && dir_non_empty(&dir.join(&path));
            Submodule { path, initialised }
        })
        .collect();

    CheckoutState {
        dir: dir.to_path_buf(),
        exists,
        is_diffusion_pipe,
        head,
        head_ref,
        head_error,
        matches_pin,
        submodules,
        submodules_source,
        venv: if exists { find_venv(dir) } else { None },
    }
}

/// A venv inside the checkout: `venv/` or `.venv/` (in that order) having `bin/python`.
/// Returns the venv directory, not the interpreter.
pub fn find_venv(dir: &Path) -> Option<PathBuf> {
    ["venv", ".venv"]
        .iter()
        .map(|name| dir.join(name))
        .find(|v| v.join("bin").join("python").is_file())
}

fn dir_non_empty(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut it| it.next().is_some())
        .unwrap_or(false)
}

/// The `path = ...` entries of a `.gitmodules` file, in order, without duplicates.
pub fn parse_gitmodules(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("path") {
            continue;
        }
        let mut value = value.trim();
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value = &value[1..value.len() - 1];
        }
        let value = value.trim_end_matches('/');
        if !value.is_empty() && !out.iter().any(|p| p == value) {
            out.push(value.to_string());
        }
    }
    out
}

/// HEAD as read from the git directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Full hex commit.
    pub commit: String,
    /// `refs/heads/x` when HEAD is symbolic.
    pub reference: Option<String>,
}

/// Reads HEAD of the work tree at `dir` without running git. Handles `.git` as a directory or as
/// a `gitdir: ...` file (submodules, worktrees; `commondir` is honoured), loose refs and
/// `packed-refs`.
pub fn read_head(dir: &Path) -> Result<Head, String> {
    let git_dir = resolve_git_dir(dir)?;
    let common_dir = match fs::read_to_string(git_dir.join("commondir")) {
        Ok(t) => {
            let c = PathBuf::from(t.trim());
            if c.is_absolute() { c } else { git_dir.join(c) }
        }
        Err(_) => git_dir.clone(),
    };
    let head = fs::read_to_string(git_dir.join("HEAD"))
        .map_err(|e| format!("cannot read {}: {e}", git_dir.join("HEAD").display()))?;
    let mut content = head.trim().to_string();
    let mut reference = None;
    // Follow symbolic refs a few levels deep (HEAD -> refs/heads/x, rarely further).
    for _ in 0..5 {
        if let Some(r) = content.strip_prefix("ref:") {
            let r = r.trim().to_string();
            if reference.is_none() {
                reference = Some(r.clone());
            }
            content = resolve_ref(&git_dir, &common_dir, &r)?;
            continue;
        }
        if is_hash(&content) {
            return Ok(Head {
                commit: content.to_ascii_lowercase(),
                reference,
            });
        }
        return Err(format!(
            "unexpected HEAD content {:?}",
            truncate(&content, 60)
        ));
    }
    Err("symbolic ref chain too long".to_string())
}

fn resolve_git_dir(dir: &Path) -> Result<PathBuf, String> {
    let dot_git = dir.join(".git");
    let meta = fs::metadata(&dot_git)
        .map_err(|_| format!("{} is not a git checkout (no .git)", dir.display()))?;
    if meta.is_dir() {
        return Ok(dot_git);
    }
    let text = fs::read_to_string(&dot_git)
        .map_err(|e| format!("cannot read {}: {e}", dot_git.display()))?;
    let target = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("gitdir:"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{} has no gitdir: line", dot_git.display()))?;
    let p = PathBuf::from(target);
    let p = if p.is_absolute() { p } else { dir.join(p) };
    if p.is_dir() {
        Ok(p)
    } else {
        Err(format!(
            "{} points to {}, which does not exist",
            dot_git.display(),
            p.display()
        ))
    }
}

/// The content of a ref: a hash or another `ref: ...` line.
fn resolve_ref(git_dir: &Path, common_dir: &Path, name: &str) -> Result<String, String> {
    // Refuse anything that could escape the git directory.
    if name.is_empty()
        || name.starts_with('/')
        || name.split('/').any(|c| c == ".." || c.is_empty())
    {
        return Err(format!("invalid ref name {name:?}"));
    }
    // Per-worktree refs (HEAD, refs/bisect, ...) live in git_dir; shared refs in common_dir.
    for base in [git_dir, common_dir] {
        if let Ok(t) = fs::read_to_string(base.join(name)) {
            let t = t.trim();
            if !t.is_empty() {
                return Ok(t.to_string());
            }
        }
    }
    for base in [common_dir, git_dir] {
        if let Ok(t) = fs::read_to_string(base.join("packed-refs"))
            && let Some(h) = lookup_packed_ref(&t, name)
        {
            return Ok(h);
        }
    }
    Err(format!(
        "ref {name} not found (no loose ref, not in packed-refs)"
    ))
}

/// Finds `name` in the text of a `packed-refs` file.
pub fn lookup_packed_ref(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .filter_map(|l| l.trim().split_once(' '))
        .find(|(_, r)| r.trim() == name)
        .map(|(h, _)| h.to_string())
        .filter(|h| is_hash(h))
}

fn is_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "8f83dbf0aa11bb22cc33dd44ee55ff6677889900";
    const H2: &str = "0123456789abcdef0123456789abcdef01234567";

    fn write(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn head_from_loose_ref() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(&t.path().join(".git/refs/heads/main"), &format!("{H1}\n"));
        // a packed entry for the same ref must lose against the loose one
        write(
            &t.path().join(".git/packed-refs"),
            &format!("# pack-refs with: peeled fully-peeled sorted\n{H2} refs/heads/main\n"),
        );
        let h = read_head(t.path()).unwrap();
        assert_eq!(h.commit, H1);
        assert_eq!(h.reference.as_deref(), Some("refs/heads/main"));
    }

    #[test]
    fn head_from_packed_refs() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join(".git/HEAD"), "ref: refs/heads/dev\n");
        fs::create_dir_all(t.path().join(".git/refs/heads")).unwrap();
        write(
            &t.path().join(".git/packed-refs"),
            &format!(
                "# pack-refs with: peeled fully-peeled sorted\n{H1} refs/heads/main\n\
                 {H2} refs/heads/dev\n^{H1}\n{H1} refs/tags/v1\n"
            ),
        );
        let h = read_head(t.path()).unwrap();
        assert_eq!(h.commit, H2);
        assert_eq!(h.reference.as_deref(), Some("refs/heads/dev"));
    }

    #[test]
    fn head_detached() {
        let t = tempfile::tempdir().unwrap();
        write(
            &t.path().join(".git/HEAD"),
            &format!("{}\n", H1.to_uppercase()),
        );
        let h = read_head(t.path()).unwrap();
        assert_eq!(h.commit, H1);
        assert_eq!(h.reference, None);
    }

    #[test]
    fn head_via_gitdir_file_relative_and_absolute() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("modules/dp");
        write(&real.join("HEAD"), "ref: refs/heads/main\n");
        write(&real.join("refs/heads/main"), H2);
        let work = t.path().join("work");
        fs::create_dir_all(&work).unwrap();
        write(&work.join(".git"), "gitdir: ../modules/dp\n");
        assert_eq!(read_head(&work).unwrap().commit, H2);
        write(&work.join(".git"), &format!("gitdir: {}\n", real.display()));
        assert_eq!(read_head(&work).unwrap().commit, H2);
    }

    #[test]
    fn head_via_worktree_commondir() {
        let t = tempfile::tempdir().unwrap();
        let main_git = t.path().join("main/.git");
        write(&main_git.join("refs/heads/feature"), H1);
        let wt_git = main_git.join("worktrees/feat");
        write(&wt_git.join("HEAD"), "ref: refs/heads/feature\n");
        write(&wt_git.join("commondir"), "../..\n");
        let work = t.path().join("feat");
        write(
            &work.join(".git"),
            &format!("gitdir: {}\n", wt_git.display()),
        );
        assert_eq!(read_head(&work).unwrap().commit, H1);
    }

    #[test]
    fn head_errors_are_reported() {
        let t = tempfile::tempdir().unwrap();
        assert!(
            read_head(t.path())
                .unwrap_err()
                .contains("not a git checkout")
        );
        write(&t.path().join(".git/HEAD"), "ref: refs/heads/gone\n");
        assert!(
            read_head(t.path())
                .unwrap_err()
                .contains("refs/heads/gone not found")
        );
        write(&t.path().join(".git/HEAD"), "ref: ../../etc/passwd\n");
        assert!(read_head(t.path()).unwrap_err().contains("invalid ref"));
        write(&t.path().join(".git/HEAD"), "garbage\n");
        assert!(read_head(t.path()).unwrap_err().contains("unexpected HEAD"));
        let u = tempfile::tempdir().unwrap();
        write(&u.path().join(".git"), "gitdir: nowhere\n");
        assert!(read_head(u.path()).unwrap_err().contains("does not exist"));
    }

    #[test]
    fn gitmodules_paths() {
        let text = "[submodule \"submodules/ComfyUI\"]\n\tpath = submodules/ComfyUI\n\
                    \turl = https://github.com/comfyanonymous/ComfyUI\n\
                    [submodule \"flow\"]\n  path=submodules/flow/\n\
                    # path = commented/out\n\tpath = \"submodules/HiDream\"\n\
                    \tpath = submodules/ComfyUI\n";
        assert_eq!(
            parse_gitmodules(text),
            vec![
                "submodules/ComfyUI",
                "submodules/flow",
                "submodules/HiDream"
            ]
        );
        assert!(parse_gitmodules("").is_empty());
    }

    #[test]
    fn inspect_full_checkout() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(&d.join("train.py"), "");
        write(&d.join(".git/HEAD"), "ref: refs/heads/main\n");
        write(&d.join(".git/refs/heads/main"), H1);
        write(
            &d.join(".gitmodules"),
            "[submodule \"a\"]\n\tpath = submodules/A\n[submodule \"b\"]\n\tpath = submodules/B\n\
             [submodule \"c\"]\n\tpath = submodules/C\n",
        );
        write(&d.join("submodules/A/README"), "x");
        fs::create_dir_all(d.join("submodules/B")).unwrap(); // exists but empty
        write(&d.join(".venv/bin/python"), "");
        let s = inspect_checkout(d);
        assert!(s.exists);
        assert!(s.is_diffusion_pipe);
        assert_eq!(s.head.as_deref(), Some(H1));
        assert_eq!(s.matches_pin, Some(true));
        assert_eq!(s.submodules_source, SubmodulesSource::Gitmodules);
        assert_eq!(
            s.submodules,
            vec![
                Submodule {
                    path: "submodules/A".into(),
                    initialised: true
                },
                Submodule {
                    path: "submodules/B".into(),
                    initialised: false
                },
                Submodule {
                    path: "submodules/C".into(),
                    initialised: false
                },
            ]
        );
        assert_eq!(s.missing_submodules(), vec!["submodules/B", "submodules/C"]);
        assert_eq!(s.venv, Some(d.join(".venv")));
    }

    #[test]
    fn inspect_other_commit_and_pin_fallback() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(&d.join(".git/HEAD"), H2);
        let s = inspect_checkout(d);
        assert!(s.exists);
        assert!(!s.is_diffusion_pipe);
        assert_eq!(s.matches_pin, Some(false));
        assert_eq!(s.submodules_source, SubmodulesSource::Pin);
        assert_eq!(s.submodules.len(), pin::pin().submodules.len());
        assert!(s.submodules.iter().all(|m| !m.initialised));
        assert_eq!(s.venv, None);
    }

    #[test]
    fn inspect_missing_dir() {
        let t = tempfile::tempdir().unwrap();
        let s = inspect_checkout(&t.path().join("nope"));
        assert!(!s.exists);
        assert!(!s.is_diffusion_pipe);
        assert_eq!(s.head, None);
        assert_eq!(s.matches_pin, None);
        assert!(s.head_error.unwrap().contains("does not exist"));
        assert!(!s.submodules.is_empty());
    }

    #[test]
    fn venv_preference_and_requirement() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("venv/bin")).unwrap(); // no python: not a venv
        assert_eq!(find_venv(d), None);
        write(&d.join(".venv/bin/python"), "");
        assert_eq!(find_venv(d), Some(d.join(".venv")));
        write(&d.join("venv/bin/python"), "");
        assert_eq!(find_venv(d), Some(d.join("venv")));
    }
}
