//! The hub cache as huggingface_hub lays it out, so Python and dpgui share it:
//! `<cache>/models--owner--name/blobs/<etag>` holds the bytes (`<etag>.incomplete` while
//! downloading), `refs/<branch>` the commit a branch pointed at, and
//! `snapshots/<commit>/<path>` a relative symlink to the blob. Plus the cache view: cached repos
//! with their size and last use, and deleting one.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::error::HubError;
use super::listing::RepoFile;

/// `models--owner--name`.
pub fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// A 40-hex-digit commit id (used as a revision, it needs no ref lookup).
pub fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One repo's corner of the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    pub cache_dir: PathBuf,
    /// `<cache>/models--owner--name`.
    pub root: PathBuf,
    folder: String,
}

impl RepoCache {
    pub fn new(cache_dir: &Path, repo: &str) -> RepoCache {
        let folder = repo_folder(repo);
        RepoCache {
            cache_dir: cache_dir.to_path_buf(),
            root: cache_dir.join(&folder),
            folder,
        }
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.blobs_dir().join(etag)
    }

    /// Where a blob grows while it downloads; a later download resumes from it.
    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.blobs_dir().join(format!("{etag}.incomplete"))
    }

    pub fn lock_path(&self, etag: &str) -> PathBuf {
        self.cache_dir
            .join(".locks")
            .join(&self.folder)
            .join(format!("{etag}.lock"))
    }

    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    pub fn snapshot_file(&self, commit: &str, file: &str) -> PathBuf {
        self.snapshot_dir(commit).join(file)
    }

    pub fn ref_path(&self, revision: &str) -> PathBuf {
        self.root.join("refs").join(revision)
    }

    /// The commit a revision stands for: itself when it is a commit id, else `refs/<revision>`.
    pub fn commit_for(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return Some(revision.to_string());
        }
        let text = std::fs::read_to_string(self.ref_path(revision)).ok()?;
        let c = text.trim();
        is_commit_hash(c).then(|| c.to_string())
    }

    pub fn write_ref(&self, revision: &str, commit: &str) -> io::Result<()> {
        if is_commit_hash(revision) {
            return Ok(());
        }
        let p = self.ref_path(revision);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        if std::fs::read_to_string(&p).is_ok_and(|c| c.trim() == commit) {
            return Ok(());
        }
        let tmp = p.with_file_name(format!(".{}.dpgui-tmp", std::process::id()));
        std::fs::write(&tmp, commit)?;
        std::fs::rename(&tmp, &p)
    }

    /// Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative symlink, as
    /// huggingface_hub does; replaces an older link in one rename.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> io::Result<PathBuf> {
        let pointer = self.snapshot_file(commit, file);
        let dir = pointer
            .parent()
            .ok_or_else(|| io::Error::other("no parent"))?;
        std::fs::create_dir_all(dir)?;
        let depth = file.split('/').count() + 1;
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        if std::fs::read_link(&pointer).is_ok_and(|t| t == target) {
            return Ok(pointer);
        }
        let tmp = dir.join(format!(".{etag}.{}.dpgui-link", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        std::fs::rename(&tmp, &pointer)?;
        Ok(pointer)
    }

    /// The snapshot path of `file` at `revision` when its bytes are in the cache.
    pub fn cached_file(&self, revision: &str, file: &str) -> Option<PathBuf> {
        let commit = self.commit_for(revision)?;
        let p = self.snapshot_file(&commit, file);
        // metadata() follows the link: a dangling one (blob deleted) is not a hit.
        std::fs::metadata(&p).ok()?.is_file().then_some(p)
    }

    /// The files of the cached snapshot of `revision` (commit, files with sizes), sorted.
    pub fn cached_files(&self, revision: &str) -> Option<(String, Vec<RepoFile>)> {
        let commit = self.commit_for(revision)?;
        let root = self.snapshot_dir(&commit);
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(meta) = std::fs::metadata(&p) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(p);
                } else if meta.is_file()
                    && let Ok(rel) = p.strip_prefix(&root)
                    && let Some(rel) = rel.to_str()
                {
                    files.push(RepoFile {
                        path: rel.to_string(),
                        size: meta.len(),
                    });
                }
            }
        }
        if files.is_empty() && !root.is_dir() {
            return None;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Some((commit, files))
    }
}

/// One repo in the cache view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CachedRepo {
    pub repo: String,
    /// model, dataset, space, kernel.
    pub kind: String,
    pub path: PathBuf,
    /// Bytes of the distinct blobs the snapshots point at.
    pub size: u64,
    pub files: usize,
    /// Commits with a snapshot, and the refs naming them.
    pub revisions: Vec<String>,
    pub refs: Vec<String>,
    /// The latest access of any of its blobs (atime: "relatime" mounts update it about daily).
    #[serde(serialize_with = "unix_secs")]
    pub last_used: Option<SystemTime>,
    /// Bytes in `.incomplete` files: downloads that will resume.
    pub partial_bytes: u64,
}

fn unix_secs<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()) {
        Some(d) => s.serialize_u64(d.as_secs()),
        None => s.serialize_none(),
    }
}

fn partial_bytes(repo_path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(repo_path.join("blobs")) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// The cache view: every cached repo, largest first. A missing cache is an empty list.
/// hf-hub's scanner reads the layout; it does no network I/O (the future completes at once).
pub fn scan(cache_dir: &Path) -> Result<Vec<CachedRepo>, HubError> {
    let client = hf_hub::HFClient::builder()
        .cache_dir(cache_dir)
        .build()
        .map_err(|e| HubError::Protocol(e.to_string()))?;
    let info = futures::executor::block_on(client.scan_cache().send()).map_err(|e| match e {
        hf_hub::HFError::Io(io) => HubError::io(cache_dir, &io),
        other => HubError::Protocol(other.to_string()),
    })?;
    let mut out: Vec<CachedRepo> = info
        .repos
        .into_iter()
        .map(|r| {
            let mut refs: Vec<String> = r
                .revisions
                .iter()
                .flat_map(|v| v.refs.iter().cloned())
                .collect();
            refs.sort();
            CachedRepo {
                partial_bytes: partial_bytes(&r.repo_path),
                repo: r.repo_id,
                kind: r.repo_type.to_string(),
                path: r.repo_path,
                size: r.size_on_disk,
                files: r.nb_files,
                revisions: r.revisions.iter().map(|v| v.commit_hash.clone()).collect(),
                refs,
                last_used: (r.last_accessed > SystemTime::UNIX_EPOCH).then_some(r.last_accessed),
            }
        })
        .collect();
    out.sort_by(|a, b| b.size.cmp(&a.size).then(a.repo.cmp(&b.repo)));
    Ok(out)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            // symlink_metadata: count blobs once, not again through the snapshot links.
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// Which cached repo: its type and id. A dataset may share its id with a model; each has a
/// folder of its own (`datasets--owner--name`, `models--owner--name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// model, dataset, space, kernel (as [`CachedRepo::kind`]).
    pub kind: String,
    pub repo: String,
}

impl CacheKey {
    pub fn new(kind: &str, repo: &str) -> CacheKey {
        CacheKey {
            kind: kind.to_string(),
            repo: repo.to_string(),
        }
    }

    /// The repo id for a model (what dpgui downloads), "dataset owner/name" for the others.
    pub fn label(&self) -> String {
        if self.kind == "model" {
            self.repo.clone()
        } else {
            format!("{} {}", self.kind, self.repo)
        }
    }

    /// `models--owner--name`, `datasets--owner--name`, ...; None for an unknown type.
    pub fn folder(&self) -> Option<String> {
        let plural = match self.kind.as_str() {
            "model" => "models",
            "dataset" => "datasets",
            "space" => "spaces",
            "kernel" => "kernels",
            _ => return None,
        };
        Some(format!("{plural}--{}", self.repo.replace('/', "--")))
    }
}

impl CachedRepo {
    pub fn key(&self) -> CacheKey {
        CacheKey::new(&self.kind, &self.repo)
    }
}

/// Deletes one repo of one type from the cache (blobs, snapshots, refs, partial downloads,
/// locks); returns the bytes freed. The caller has asked for confirmation.
pub fn delete_repo(cache_dir: &Path, key: &CacheKey) -> Result<u64, HubError> {
    let repo = &key.repo;
    if !super::config::valid_repo_id(repo) {
        return Err(HubError::Invalid(format!("`{repo}` is not a repo id")));
    }
    let Some(folder) = key.folder() else {
        return Err(HubError::Invalid(format!(
            "`{}` is not a hub repo type",
            key.kind
        )));
    };
    let root = cache_dir.join(&folder);
    // A valid id keeps the folder one plain name: a direct child of the cache directory.
    let mut parts = Path::new(&folder).components();
    if !matches!(parts.next(), Some(std::path::Component::Normal(_))) || parts.next().is_some() {
        return Err(HubError::Invalid(format!("`{repo}` is not a repo id")));
    }
    let label = key.label();
    let meta = match root.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(HubError::Invalid(format!("{label} is not in the cache")));
        }
        Err(e) => return Err(HubError::io(&root, &e)),
    };
    // symlink_metadata: a symlink is not followed into wherever it points.
    if !meta.is_dir() {
        return Err(HubError::Invalid(format!(
            "{} is not a cache directory",
            root.display()
        )));
    }
    let freed = dir_bytes(&root);
    std::fs::remove_dir_all(&root).map_err(|e| HubError::io(&root, &e))?;
    let _ = std::fs::remove_dir_all(cache_dir.join(".locks").join(&folder));
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn layout_matches_huggingface_hub() {
        let rc = RepoCache::new(Path::new("/c"), "stabilityai/sdxl");
        assert_eq!(rc.root, PathBuf::from("/c/models--stabilityai--sdxl"));
        assert_eq!(
            rc.incomplete("e1"),
            PathBuf::from("/c/models--stabilityai--sdxl/blobs/e1.incomplete")
        );
        assert_eq!(
            rc.lock_path("e1"),
            PathBuf::from("/c/.locks/models--stabilityai--sdxl/e1.lock")
        );
        assert_eq!(
            rc.ref_path("main"),
            PathBuf::from("/c/models--stabilityai--sdxl/refs/main")
        );
    }

    #[test]
    fn links_are_relative_and_resolve_to_the_blob_scan_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let rc = RepoCache::new(dir.path(), "o/n");
        std::fs::create_dir_all(rc.blobs_dir()).unwrap();
        std::fs::write(rc.blob("e1"), b"hello").unwrap();
        std::fs::write(rc.blob("e2"), b"abc").unwrap();
        std::fs::write(rc.incomplete("e3"), b"1234567").unwrap();
        rc.write_ref("main", C).unwrap();
        let p = rc.link(C, "model.safetensors", "e1").unwrap();
        let q = rc.link(C, "vae/config.json", "e2").unwrap();
        assert_eq!(
            std::fs::read_link(&p).unwrap(),
            PathBuf::from("../../blobs/e1")
        );
        assert_eq!(
            std::fs::read_link(&q).unwrap(),
            PathBuf::from("../../../blobs/e2")
        );
        assert_eq!(std::fs::read(&q).unwrap(), b"abc");
        assert_eq!(rc.cached_file("main", "vae/config.json"), Some(q));
        assert_eq!(rc.cached_file("main", "nope"), None);
        assert_eq!(rc.cached_file("other-branch", "vae/config.json"), None);
        let (commit, files) = rc.cached_files("main").unwrap();
        assert_eq!(commit, C);
        let names: Vec<(&str, u64)> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(
            names,
            vec![("model.safetensors", 5), ("vae/config.json", 3)]
        );

        let repos = scan(dir.path()).unwrap();
        assert_eq!(repos.len(), 1);
        assert_eq!(repos[0].repo, "o/n");
        assert_eq!(repos[0].size, 8);
        assert_eq!(repos[0].files, 2);
        assert_eq!(repos[0].refs, vec!["main".to_string()]);
        assert_eq!(repos[0].partial_bytes, 7);
        assert!(repos[0].last_used.is_some());

        assert_eq!(repos[0].key(), CacheKey::new("model", "o/n"));

        let model = CacheKey::new("model", "o/n");
        assert_eq!(delete_repo(dir.path(), &model).unwrap(), 5 + 3 + 7 + 40);
        assert!(!rc.root.exists());
        assert!(scan(dir.path()).unwrap().is_empty());
        assert!(delete_repo(dir.path(), &model).is_err());
        assert!(delete_repo(dir.path(), &CacheKey::new("model", "../x")).is_err());
        assert!(delete_repo(dir.path(), &CacheKey::new("nope", "o/n")).is_err());
        // A cache that does not exist is empty, not an error.
        assert!(scan(&dir.path().join("missing")).unwrap().is_empty());
    }

    /// A snapshot of one file in `<cache>/<folder>`, as huggingface_hub lays out any repo type.
    fn cached(cache: &Path, folder: &str, bytes: &[u8]) {
        let root = cache.join(folder);
        std::fs::create_dir_all(root.join("blobs")).unwrap();
        std::fs::create_dir_all(root.join("refs")).unwrap();
        std::fs::create_dir_all(root.join("snapshots").join(C)).unwrap();
        std::fs::write(root.join("blobs/e1"), bytes).unwrap();
        std::fs::write(root.join("refs/main"), C).unwrap();
        std::os::unix::fs::symlink("../../blobs/e1", root.join("snapshots").join(C).join("f"))
            .unwrap();
    }

    #[test]
    fn deleting_a_dataset_leaves_the_model_of_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        cached(dir.path(), "models--o--n", b"model");
        cached(dir.path(), "datasets--o--n", b"dataset!");
        let repos = scan(dir.path()).unwrap();
        let mut keys: Vec<CacheKey> = repos.iter().map(CachedRepo::key).collect();
        keys.sort_by(|a, b| a.kind.cmp(&b.kind));
        assert_eq!(
            keys,
            vec![
                CacheKey::new("dataset", "o/n"),
                CacheKey::new("model", "o/n")
            ]
        );
        assert_eq!(keys[0].label(), "dataset o/n");
        assert_eq!(keys[1].label(), "o/n");

        let freed = delete_repo(dir.path(), &keys[0]).unwrap();
        assert!(freed >= 8, "{freed}");
        assert!(!dir.path().join("datasets--o--n").exists());
        let left = scan(dir.path()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].key(), CacheKey::new("model", "o/n"));
        assert_eq!(
            std::fs::read(dir.path().join("models--o--n/snapshots").join(C).join("f")).unwrap(),
            b"model"
        );
        // It is gone now: a second delete says so and touches nothing else.
        let e = delete_repo(dir.path(), &keys[0]).unwrap_err();
        assert_eq!(e.to_string(), "dataset o/n is not in the cache");
        assert!(dir.path().join("models--o--n").is_dir());
    }

    #[test]
    fn a_symlinked_repo_folder_is_not_deleted_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        cached(elsewhere.path(), "models--o--n", b"keep");
        std::os::unix::fs::symlink(
            elsewhere.path().join("models--o--n"),
            dir.path().join("models--o--n"),
        )
        .unwrap();
        assert!(delete_repo(dir.path(), &CacheKey::new("model", "o/n")).is_err());
        assert!(elsewhere.path().join("models--o--n/blobs/e1").is_file());
    }
}
