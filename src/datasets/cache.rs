//! The incremental scan cache: per scanned directory one JSON file under
//! `crate::paths::cache_dir()/scans/`, named by a hash of the directory's canonical path, holding
//! each file's facts keyed by (name, size, mtime ns, inode). A file whose key is unchanged is not
//! read again. A missing, corrupt or foreign cache file only means a full rescan.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MediaHeader;

/// Bumped whenever what is stored (or how it is computed) changes: older files are ignored.
const FORMAT: u32 = 2;

/// What reading one file found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Facts {
    /// A medium's header (or, for an unknown suffix, whether PIL would open it).
    Header(Result<MediaHeader, String>),
    /// A caption file: `Ok(empty)` or why diffusion-pipe could not read it.
    Caption(Result<bool, String>),
}

/// The identity a cached fact is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileKey {
    pub size: u64,
    pub mtime_ns: i64,
    pub ino: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub key: FileKey,
    pub facts: Facts,
}

/// Facts by file name, and the ffprobe version of the video facts among them.
pub(crate) type Loaded = (HashMap<String, (FileKey, Facts)>, Option<String>);

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    /// The canonical directory (a hash collision or a copied file must not be trusted).
    path: String,
    /// Video facts hold only for the ffprobe that produced them.
    ffprobe: Option<String>,
    entries: Vec<StoredEntry>,
}

/// One file on disk, compact (100,000 of them make a few MB): `[name, size, mtime_ns, inode,
/// facts]`.
#[derive(Serialize, Deserialize)]
struct StoredEntry(String, u64, i64, u64, StoredFacts);

/// `H`: a header `[width, height, animated, frames, fps]`; `E`: why there is none; `C`: a
/// caption (`true`: empty); `U`: why a caption cannot be used.
#[derive(Serialize, Deserialize)]
enum StoredFacts {
    H(u32, u32, bool, Option<u64>, Option<f64>),
    E(String),
    C(bool),
    U(String),
}

impl From<Entry> for StoredEntry {
    fn from(e: Entry) -> StoredEntry {
        let facts = match e.facts {
            Facts::Header(Ok(h)) => {
                StoredFacts::H(h.width, h.height, h.animated, h.source_frames, h.fps)
            }
            Facts::Header(Err(r)) => StoredFacts::E(r),
            Facts::Caption(Ok(empty)) => StoredFacts::C(empty),
            Facts::Caption(Err(r)) => StoredFacts::U(r),
        };
        StoredEntry(e.name, e.key.size, e.key.mtime_ns, e.key.ino, facts)
    }
}

impl From<StoredFacts> for Facts {
    fn from(f: StoredFacts) -> Facts {
        match f {
            StoredFacts::H(width, height, animated, source_frames, fps) => {
                Facts::Header(Ok(MediaHeader {
                    width,
                    height,
                    animated,
                    source_frames,
                    fps,
                }))
            }
            StoredFacts::E(r) => Facts::Header(Err(r)),
            StoredFacts::C(empty) => Facts::Caption(Ok(empty)),
            StoredFacts::U(r) => Facts::Caption(Err(r)),
        }
    }
}

/// Where scans are remembered. `reuse(false)` (a forced rescan) reads nothing but still writes
/// the fresh results.
#[derive(Clone, Debug)]
pub struct ScanCache {
    dir: PathBuf,
    reuse: bool,
    /// Saves still being written (see [`ScanCache::save_in_background`]); shared by clones.
    pending: std::sync::Arc<std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl Drop for ScanCache {
    fn drop(&mut self) {
        self.flush();
    }
}

/// FNV-1a, 64 bits: stable across Rust releases (the std hasher is not), so cache names last.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl ScanCache {
    /// Uses `dir` (created on the first save; tests pass a temporary one). Never fails: a cache
    /// that cannot be read or written only costs a full scan.
    pub fn open(dir: impl Into<PathBuf>) -> ScanCache {
        ScanCache {
            dir: dir.into(),
            reuse: true,
            pending: Default::default(),
        }
    }

    /// `crate::paths::cache_dir()/scans`.
    pub fn default_dir() -> PathBuf {
        crate::paths::cache_dir().join("scans")
    }

    pub fn open_default() -> ScanCache {
        ScanCache::open(ScanCache::default_dir())
    }

    /// `false`: ignore what is stored (a forced rescan); results are still saved.
    pub fn reuse(mut self, reuse: bool) -> ScanCache {
        self.reuse = reuse;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file for a directory (given canonical, as the scan does).
    pub fn file_for(&self, canonical_dir: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let h = fnv1a(canonical_dir.as_os_str().as_bytes());
        self.dir.join(format!("{h:016x}.json"))
    }

    /// The stored facts for `canonical_dir`, by file name, and the ffprobe version its video
    /// facts came from (they hold only for that one); empty when there is nothing usable.
    pub(crate) fn load(&self, canonical_dir: &Path) -> Loaded {
        self.flush();
        if !self.reuse {
            return Loaded::default();
        }
        let Ok(bytes) = std::fs::read(self.file_for(canonical_dir)) else {
            return Loaded::default();
        };
        let Ok(stored) = serde_json::from_slice::<Stored>(&bytes) else {
            tracing::info!(dir = %canonical_dir.display(), "scan cache unreadable: full rescan");
            return Loaded::default();
        };
        if stored.format != FORMAT || stored.path != canonical_dir.to_string_lossy() {
            return Loaded::default();
        }
        let map = stored
            .entries
            .into_iter()
            .map(|StoredEntry(name, size, mtime_ns, ino, facts)| {
                let key = FileKey {
                    size,
                    mtime_ns,
                    ino,
                };
                (name, (key, facts.into()))
            })
            .collect();
        (map, stored.ffprobe)
    }

    /// Waits for the saves under way (a load, and dropping the cache, do it first).
    pub fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for h in pending {
            let _ = h.join();
        }
    }

    /// [`ScanCache::save`] on a thread of its own: serialising and writing a 100,000-file cache
    /// takes ~30 ms, which the caller spends on its report instead. A failure is logged.
    pub(crate) fn save_in_background(
        &self,
        canonical_dir: &Path,
        ffprobe: Option<&str>,
        entries: Vec<Entry>,
    ) {
        let (me, dir, ffprobe) = (
            ScanCache {
                dir: self.dir.clone(),
                reuse: self.reuse,
                pending: Default::default(),
            },
            canonical_dir.to_path_buf(),
            ffprobe.map(str::to_string),
        );
        let save = move || {
            if let Err(e) = me.save(&dir, ffprobe.as_deref(), entries) {
                tracing::warn!(dir = %dir.display(), "scan cache not saved: {e}");
            }
        };
        match std::thread::Builder::new()
            .name("scan-cache".into())
            .spawn(save)
        {
            Ok(h) => self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(h),
            // No thread to be had: not saved this time, which only costs a full scan next time.
            Err(e) => tracing::warn!("scan cache not saved: no thread for it: {e}"),
        }
    }

    /// Replaces the stored facts for `canonical_dir` (temp file, rename). Not fsynced: a cache
    /// torn by a crash does not parse and only costs a full scan, while an fsync of a 100,000-file
    /// cache costs the scan a tenth of its time.
    pub(crate) fn save(
        &self,
        canonical_dir: &Path,
        ffprobe: Option<&str>,
        entries: Vec<Entry>,
    ) -> std::io::Result<()> {
        let stored = Stored {
            format: FORMAT,
            path: canonical_dir.to_string_lossy().into_owned(),
            ffprobe: ffprobe.map(str::to_string),
            entries: entries.into_iter().map(StoredEntry::from).collect(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
        let path = self.file_for(canonical_dir);
        std::fs::create_dir_all(&self.dir)?;
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".scan.tmp.{}.{seq}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_published_function() {
        // Test vectors from the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn round_trip_and_foreign_files() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ScanCache::open(tmp.path().join("scans"));
        let dir = Path::new("/data/set");
        let key = FileKey {
            size: 10,
            mtime_ns: 5,
            ino: 7,
        };
        let img = Entry {
            name: "a.png".into(),
            key,
            facts: Facts::Header(Err("corrupt".into())),
        };
        let vid = Entry {
            name: "v.mp4".into(),
            key,
            facts: Facts::Header(Ok(MediaHeader {
                width: 160,
                height: 90,
                animated: false,
                source_frames: Some(45),
                fps: Some(29.97),
            })),
        };
        let caps = [
            Facts::Caption(Ok(true)),
            Facts::Caption(Err("not UTF-8".into())),
        ];
        let mut entries = vec![img.clone(), vid.clone()];
        for (i, f) in caps.iter().enumerate() {
            entries.push(Entry {
                name: format!("c{i}.txt"),
                key,
                facts: f.clone(),
            });
        }
        cache.save(dir, Some("6.0"), entries).unwrap();
        let (got, ffprobe) = cache.load(dir);
        assert_eq!(got.len(), 4);
        assert_eq!(got["a.png"], (key, img.facts));
        assert_eq!(got["v.mp4"], (key, vid.facts));
        assert_eq!(got["c0.txt"].1, caps[0]);
        assert_eq!(got["c1.txt"].1, caps[1]);
        assert_eq!(ffprobe.as_deref(), Some("6.0"));
        // Same hash file claimed by another path: ignored.
        let other = Path::new("/data/other");
        std::fs::copy(cache.file_for(dir), cache.file_for(other)).unwrap();
        assert!(cache.load(other).0.is_empty());
        // Not read when told not to.
        assert!(cache.clone().reuse(false).load(dir).0.is_empty());
        // Corrupt: ignored.
        std::fs::write(cache.file_for(dir), b"{\"format\":1,").unwrap();
        assert!(cache.load(dir).0.is_empty());
    }
}
