//! Atomic file replacement: a reader (or a crash) sees the old content or the new, whole, never
//! a mix. Used by the Config tab's saves (with a `NAME.bak` of the previous version), caption
//! edits, hub config edits and dpgui's own small files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the previous version of `path` is kept by a save: `NAME.bak` beside it.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// The points of an atomic save a test can stop the process at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveStage {
    /// The new text is complete and synced in the temporary file; nothing else has changed.
    TempWritten,
    /// The previous version is in the backup too; the rename comes next.
    BackupWritten,
}

fn temp_name(name: &str, what: &str) -> String {
    format!(".{name}.{what}dpgui-tmp-{}", std::process::id())
}

/// Removes temporary files an interrupted save of `name` (by a process now gone) left in `dir`.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for e in rd.flatten() {
        let file = e.file_name();
        let Some(f) = file.to_str() else { continue };
        let Some(rest) = f.strip_prefix(&prefix) else {
            continue;
        };
        let Some((_, pid)) = rest.rsplit_once("dpgui-tmp-") else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to `path` so that at every instant `path` holds either the old or the new
/// text, whole: the new text goes to a temporary file in the same directory (synced, with the
/// old file's permissions and owner), the old version is copied to `NAME.bak`, and a rename
/// puts the new file in place. A symlink is followed: its target is replaced, the link stays.
/// `hook` runs at each `SaveStage` (tests stop the process there).
pub fn save_atomic(path: &Path, bytes: &[u8], hook: &dyn Fn(SaveStage)) -> io::Result<()> {
    save(path, bytes, true, hook)
}

/// [`save_atomic`] without the `NAME.bak` copy: for small files whose history nobody wants
/// beside them (captions in a dataset directory, dpgui's own lists).
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    save(path, bytes, false, &|_| {})
}

fn save(path: &Path, bytes: &[u8], backup: bool, hook: &dyn Fn(SaveStage)) -> io::Result<()> {
    let target = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("the file name is not UTF-8"))?
        .to_string();
    let old = match fs::metadata(&target) {
        Ok(m) if m.is_file() => Some(m),
        Ok(_) => return Err(io::Error::other("not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    remove_stale_temps(&dir, &name);
    let tmp = dir.join(temp_name(&name, ""));
    let _ = fs::remove_file(&tmp);
    let write = || -> io::Result<()> {
        // A new file gets the usual mode (less the umask); a replaced one gets the old mode.
        let mode = if old.is_some() { 0o600 } else { 0o666 };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if let Some(m) = &old {
            f.set_permissions(m.permissions())?;
            // Root editing someone's config keeps it theirs; anyone else already owns it.
            let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
        }
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    hook(SaveStage::TempWritten);
    if old.is_some() && backup {
        let bak_tmp = dir.join(temp_name(&name, "bak."));
        let keep = || -> io::Result<()> {
            let _ = fs::remove_file(&bak_tmp);
            fs::copy(&target, &bak_tmp)?;
            File::open(&bak_tmp)?.sync_all()?;
            fs::rename(&bak_tmp, backup_path(&target))
        };
        if let Err(e) = keep() {
            let _ = fs::remove_file(&bak_tmp);
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::new(
                e.kind(),
                format!("could not keep the previous version as a backup: {e}"),
            ));
        }
        hook(SaveStage::BackupWritten);
    }
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself survives a crash once the directory is synced.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
