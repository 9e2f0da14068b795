//! inotify on the directories of the dataset on screen, so files changed in place (a caption
//! rewritten by a captioning tool, no rename) are seen as well as files added, removed or
//! replaced. Where inotify cannot watch (some network filesystems, the per-user watch limit),
//! the modification-time poll of [`super::run::changed`] still applies.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

pub struct Watcher {
    fd: Option<OwnedFd>,
    /// The directories watched, with their watch descriptors.
    watches: Vec<(PathBuf, i32)>,
}

impl Default for Watcher {
    fn default() -> Self {
        Watcher::new()
    }
}

impl Watcher {
    pub fn new() -> Watcher {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| tracing::info!("no inotify ({e}): dataset changes seen by polling only"))
            .ok();
        Watcher {
            fd,
            watches: Vec::new(),
        }
    }

    /// Watches exactly `dirs` (top level only, as diffusion-pipe reads them). Returns whether the
    /// set changed (events of the old set are then dropped).
    pub fn watch(&mut self, dirs: &[PathBuf]) -> bool {
        let Some(fd) = &self.fd else { return false };
        if self.watches.len() == dirs.len() && self.watches.iter().zip(dirs).all(|(w, d)| &w.0 == d)
        {
            return false;
        }
        for (_, wd) in self.watches.drain(..) {
            let _ = inotify::remove_watch(fd, wd);
        }
        let flags = WatchFlags::CLOSE_WRITE
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::ATTRIB
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        for d in dirs {
            match inotify::add_watch(fd, d, flags) {
                Ok(wd) => self.watches.push((d.clone(), wd)),
                // Missing, not a directory, or out of watches: the poll still sees it.
                Err(e) => {
                    tracing::debug!(dir = %d.display(), "not watched: {e}");
                    self.watches.push((d.clone(), -1));
                }
            }
        }
        self.drain();
        true
    }

    /// Whether anything happened in the watched directories since the last call.
    pub fn poll(&mut self) -> bool {
        self.drain() > 0
    }

    fn drain(&mut self) -> usize {
        let Some(fd) = &self.fd else { return 0 };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        let mut n = 0;
        // NONBLOCK: ends with EAGAIN once the queue is empty (or on any error).
        while reader.next().is_ok() {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rewritten_in_place_is_seen_and_quiet_is_quiet() {
        let tmp = tempfile::tempdir().unwrap();
        let cap = tmp.path().join("a.txt");
        std::fs::write(&cap, "one").unwrap();
        let mut w = Watcher::new();
        if w.fd.is_none() {
            eprintln!("note: no inotify here; skipped");
            return;
        }
        assert!(w.watch(&[tmp.path().to_path_buf()]));
        assert!(
            !w.watch(&[tmp.path().to_path_buf()]),
            "same set: nothing to redo"
        );
        assert!(!w.poll(), "nothing happened yet");
        // Rewritten in place: the directory's mtime does not move, the event comes all the same.
        let before = std::fs::metadata(tmp.path()).unwrap().modified().unwrap();
        std::fs::write(&cap, "two").unwrap();
        assert_eq!(
            std::fs::metadata(tmp.path()).unwrap().modified().unwrap(),
            before
        );
        assert!(w.poll());
        assert!(!w.poll(), "each event is reported once");
        // Another directory: the old one is no longer watched.
        let other = tempfile::tempdir().unwrap();
        assert!(w.watch(&[other.path().to_path_buf()]));
        std::fs::write(&cap, "three").unwrap();
        assert!(!w.poll());
        std::fs::write(other.path().join("b.png"), "x").unwrap();
        assert!(w.poll());
    }
}
