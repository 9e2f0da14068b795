//! The Config tab's disk I/O, run by the runtime (never by `update`): listing the workspace,
//! reading configs, the atomic save with its backup and its changed-on-disk check, creating,
//! duplicating, renaming and deleting files, the recent list, and directory listings for the
//! path picker.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

use std::path::{Path, PathBuf};

use super::Kind;
pub use crate::atomic::{SaveStage, backup_path, save_atomic};
use crate::trainer::lint::{self, ConfigKind};

/// Configs larger than this are not opened (a TOML config is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Files listed per directory.
const MAX_LISTED: usize = 500;
/// Recent configs remembered.
const MAX_RECENT: usize = 12;
/// Entries a picker listing keeps.
const MAX_ENTRIES: usize = 5000;

/// Where unsaved edits of `path` are kept when the dashboard ends without asking (SIGHUP from a
/// dropped SSH connection, SIGTERM, a fatal error): `<state>/recovery/NAME.<hash of the path>`.
pub fn recovery_path(state_dir: &Path, path: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    state_dir
        .join("recovery")
        .join(format!("{name}.{:016x}", h.finish()))
}

/// The kind of config a text is.
pub fn kind_of(text: &str) -> Kind {
    match lint::config_kind(text) {
        ConfigKind::Main => Kind::Main,
        ConfigKind::Dataset => Kind::Dataset,
        ConfigKind::Unknown => Kind::Unknown,
    }
}

/// Reads a config as text: refuses what is too large or not UTF-8.
pub fn read_config(path: &Path) -> Result<String, String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    // A FIFO would block the dashboard; a device has no size to check.
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "{} is {} bytes: too large for a config",
            path.display(),
            meta.len()
        ));
    }
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.contains(&0) {
        return Err(format!(
            "{} is binary (NUL bytes), not a config",
            path.display()
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    // The editor widget addresses lines and columns with u16: beyond that an edit would land
    // on the wrong line.
    let long_line = text.lines().any(|l| l.chars().count() > u16::MAX as usize);
    if text.lines().count() > u16::MAX as usize || long_line {
        return Err(format!(
            "{} has more than 65,535 lines or a line longer than 65,535 characters: too large to \
             edit here (`dpgui lint` still checks it)",
            path.display()
        ));
    }
    Ok(text)
}

/// What a checked save did.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    /// Saved; a backup was kept when there was a previous version.
    Saved {
        backup: bool,
    },
    /// The file on disk is not what was loaded: nothing was written.
    ChangedOnDisk {
        deleted: bool,
    },
    Failed(String),
}

/// Saves `text` unless the file changed on disk since it was read as `expected` (None: it did
/// not exist); `force` saves anyway.
pub fn save_checked(path: &Path, text: &str, expected: Option<&str>, force: bool) -> SaveOutcome {
    let now = match fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return SaveOutcome::Failed(format!("{}: {e}", path.display())),
    };
    if !force && now.as_deref() != expected.map(str::as_bytes) {
        return SaveOutcome::ChangedOnDisk {
            deleted: now.is_none(),
        };
    }
    match save_atomic(path, text.as_bytes(), &|_| {}) {
        Ok(()) => SaveOutcome::Saved {
            backup: now.is_some(),
        },
        Err(e) => SaveOutcome::Failed(format!("saving {}: {e}", path.display())),
    }
}

/// Writes a new file; never replaces one.
pub fn create_new(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => format!("{} already exists", path.display()),
            _ => format!("{}: {e}", path.display()),
        })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| {
            let _ = fs::remove_file(path);
            format!("{}: {e}", path.display())
        })
}

/// Creates a main config and its dataset config from a template; neither may exist.
pub fn create_pair(
    main: &Path,
    main_text: &str,
    dataset: &Path,
    dataset_text: &str,
) -> Result<(), String> {
    for p in [main, dataset] {
        if p.exists() {
            return Err(format!("{} already exists", p.display()));
        }
    }
    create_new(dataset, dataset_text)?;
    if let Err(e) = create_new(main, main_text) {
        let _ = fs::remove_file(dataset);
        return Err(e);
    }
    Ok(())
}

pub fn duplicate(from: &Path, to: &Path) -> Result<(), String> {
    let text = read_config(from)?;
    create_new(to, &text)
}

/// Renames without replacing an existing file.
pub fn rename(from: &Path, to: &Path) -> Result<(), String> {
    if to.exists() {
        return Err(format!("{} already exists", to.display()));
    }
    // A hard link fails when `to` appeared meanwhile: no race replaces a file.
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).map_err(|e| format!("{}: {e}", from.display())),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(format!("{} already exists", to.display()))
        }
        Err(_) => fs::rename(from, to).map_err(|e| format!("{}: {e}", from.display())),
    }
}

pub fn delete(path: &Path) -> Result<(), String> {
    fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The workspace list

fn recent_file(state_dir: &Path) -> PathBuf {
    state_dir.join("recent-configs")
}

/// The recently used configs, newest first.
pub fn load_recent(state_dir: &Path) -> Vec<PathBuf> {
    fs::read_to_string(recent_file(state_dir))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(PathBuf::from)
        .take(MAX_RECENT)
        .collect()
}

/// Puts `path` first in the recent list (written atomically; failures are not fatal).
pub fn push_recent(state_dir: &Path, path: &Path) {
    let mut list = load_recent(state_dir);
    list.retain(|p| p != path);
    list.insert(0, path.to_path_buf());
    list.truncate(MAX_RECENT);
    let text: String = list.iter().map(|p| format!("{}\n", p.display())).collect();
    if fs::create_dir_all(state_dir).is_ok() {
        let f = recent_file(state_dir);
        let tmp = state_dir.join(format!(".recent-configs.{}", std::process::id()));
        if fs::write(&tmp, text).is_ok() && fs::rename(&tmp, &f).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

/// What a listed file is, from its first 64 KiB (a config's keys come early; a big file
/// listed by accident costs no more).
fn classify_file(p: &Path) -> Kind {
    use std::io::Read;
    let mut head = Vec::new();
    match File::open(p).and_then(|f| f.take(64 << 10).read_to_end(&mut head)) {
        Ok(_) => kind_of(&String::from_utf8_lossy(&head)),
        Err(_) => Kind::Unknown,
    }
}

/// `*.toml` files of `dir` (not hidden ones, not dpgui's own config.toml), sorted.
fn tomls(dir: &Path, own_config: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .filter(|p| {
                    !p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
                })
                .filter(|p| p != own_config && p.is_file())
                .take(MAX_LISTED)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The Config tab's file list: the recent configs (those still there, then the configs of
/// recent jobs), then the `*.toml` files of each workspace directory.
pub fn list_workspace(
    dirs: &[PathBuf],
    recent: &[PathBuf],
    job_configs: &[PathBuf],
    own_config: &Path,
) -> Vec<super::FileEntry> {
    let mut out = Vec::new();
    let mut seen: Vec<&PathBuf> = Vec::new();
    for p in recent.iter().chain(job_configs) {
        if seen.contains(&p) || !p.is_file() || seen.len() >= MAX_RECENT {
            continue;
        }
        seen.push(p);
        out.push(super::FileEntry {
            path: p.clone(),
            kind: classify_file(p),
            group: "recent".into(),
        });
    }
    for d in dirs {
        let group = super::display_path(d);
        for p in tomls(d, own_config) {
            out.push(super::FileEntry {
                kind: classify_file(&p),
                path: p,
                group: group.clone(),
            });
        }
    }
    out
}

/// One entry of a picker listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickEntry {
    pub name: String,
    pub dir: bool,
}

/// The entries of `dir` (directories first, then by name). When `dir` cannot be read, the
/// nearest ancestor that can is listed instead: the directory actually listed comes back.
pub fn list_dir(dir: &Path) -> (PathBuf, Result<Vec<PickEntry>, String>) {
    let mut d = dir.to_path_buf();
    let mut first_error: Option<String> = None;
    loop {
        match fs::read_dir(&d) {
            Ok(rd) => {
                // Every directory is kept (a dir key must be able to reach any of them); files
                // only up to MAX_ENTRIES, so a huge folder cannot stall the dashboard.
                let mut files = 0usize;
                let mut v: Vec<PickEntry> = rd
                    .flatten()
                    .filter_map(|e| {
                        // Symlinks count as what they point to; others need no stat.
                        let dir = match e.file_type() {
                            Ok(t) if t.is_symlink() => {
                                fs::metadata(e.path()).is_ok_and(|m| m.is_dir())
                            }
                            Ok(t) => t.is_dir(),
                            Err(_) => false,
                        };
                        if !dir {
                            files += 1;
                            if files > MAX_ENTRIES {
                                return None;
                            }
                        }
                        Some(PickEntry {
                            name: e.file_name().to_string_lossy().into_owned(),
                            dir,
                        })
                    })
                    .collect();
                v.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
                return (d, Ok(v));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{}: {e}", d.display()));
                match d.parent() {
                    Some(p) if p != d => d = p.to_path_buf(),
                    _ => break,
                }
            }
        }
    }
    (d, Err(first_error.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_keeps_permissions_and_a_backup_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        fs::write(&p, "old\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        save_atomic(&p, b"new\n", &|_| {}).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(backup_path(&p)).unwrap(), "old\n");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // Nothing else is left in the directory.
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.toml", "a.toml.bak"]);
        // Through a symlink: the link stays a link, its target changes.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        save_atomic(&link, b"newer\n", &|_| {}).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "newer\n");
        assert_eq!(fs::read_to_string(backup_path(&p)).unwrap(), "new\n");
    }

    #[test]
    fn a_checked_save_never_overwrites_a_file_changed_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        fs::write(&p, "loaded\n").unwrap();
        assert_eq!(
            save_checked(&p, "mine\n", Some("loaded\n"), false),
            SaveOutcome::Saved { backup: true }
        );
        fs::write(&p, "someone else\n").unwrap();
        assert_eq!(
            save_checked(&p, "mine again\n", Some("mine\n"), false),
            SaveOutcome::ChangedOnDisk { deleted: false }
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "someone else\n");
        assert_eq!(
            save_checked(&p, "mine again\n", Some("mine\n"), true),
            SaveOutcome::Saved { backup: true }
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "mine again\n");
        fs::remove_file(&p).unwrap();
        assert_eq!(
            save_checked(&p, "x", Some("mine again\n"), false),
            SaveOutcome::ChangedOnDisk { deleted: true }
        );
        assert_eq!(
            save_checked(&p, "x", None, false),
            SaveOutcome::Saved { backup: false }
        );
    }

    /// The child half of `a_save_killed_before_the_rename_leaves_the_config_whole`: saves with
    /// a hook that kills this process with SIGKILL at the stage named in the environment.
    #[test]
    fn save_child_killed_at_a_stage() {
        let (Ok(path), Ok(stage)) = (
            std::env::var("DPGUI_SAVE_CHILD_PATH"),
            std::env::var("DPGUI_SAVE_CHILD_STAGE"),
        ) else {
            return; // Only meaningful as the child of the test below.
        };
        let new = "x".repeat(200_000);
        let _ = save_atomic(Path::new(&path), new.as_bytes(), &|s| {
            if format!("{s:?}") == stage {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        });
        panic!("not killed at {stage}");
    }

    #[test]
    fn a_save_killed_before_the_rename_leaves_the_config_whole() {
        use std::os::unix::process::ExitStatusExt;
        let exe = std::env::current_exe().unwrap();
        for stage in ["TempWritten", "BackupWritten"] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("train.toml");
            let old = format!("# the original\n{}\n", "epochs = 10\n".repeat(5000));
            fs::write(&p, &old).unwrap();
            let status = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "tui::config::files::tests::save_child_killed_at_a_stage",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("DPGUI_SAVE_CHILD_PATH", &p)
                .env("DPGUI_SAVE_CHILD_STAGE", stage)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.signal(), Some(9), "{stage}: the child was killed");
            assert_eq!(
                fs::read_to_string(&p).unwrap(),
                old,
                "{stage}: the config is the old one, whole"
            );
            // The next save cleans up what the killed one left and succeeds.
            save_atomic(&p, b"epochs = 1\n", &|_| {}).unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap(), "epochs = 1\n");
            assert_eq!(fs::read_to_string(backup_path(&p)).unwrap(), old);
            let left: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.contains("dpgui-tmp"))
                .collect();
            assert!(left.is_empty(), "{stage}: temporary files left: {left:?}");
        }
    }

    #[test]
    fn file_operations_never_replace_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        create_new(&a, "a\n").unwrap();
        assert!(
            create_new(&a, "again")
                .unwrap_err()
                .contains("already exists")
        );
        duplicate(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(&b).unwrap(), "a\n");
        assert!(rename(&a, &b).unwrap_err().contains("already exists"));
        let c = dir.path().join("c.toml");
        rename(&a, &c).unwrap();
        assert!(!a.exists() && c.exists());
        delete(&c).unwrap();
        assert!(!c.exists());
        let m = dir.path().join("m.toml");
        let d = dir.path().join("m-dataset.toml");
        create_pair(&m, "main", &d, "ds").unwrap();
        assert!(create_pair(&m, "main", &d, "ds").is_err());
    }

    #[test]
    fn recent_list_and_picker_listing() {
        let dir = tempfile::tempdir().unwrap();
        push_recent(dir.path(), Path::new("/a.toml"));
        push_recent(dir.path(), Path::new("/b.toml"));
        push_recent(dir.path(), Path::new("/a.toml"));
        assert_eq!(
            load_recent(dir.path()),
            vec![PathBuf::from("/a.toml"), PathBuf::from("/b.toml")]
        );
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("z.txt"), "").unwrap();
        let (d, r) = list_dir(&dir.path().join("missing/deeper"));
        assert_eq!(d, dir.path());
        let r = r.unwrap();
        assert_eq!(
            r[0],
            PickEntry {
                name: "sub".into(),
                dir: true
            }
        );
        assert!(r.iter().any(|e| e.name == "z.txt" && !e.dir));
    }
}
