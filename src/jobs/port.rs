//! Choosing a job's master port: free on IPv4 and IPv6 right before launch, and locked so two
//! launches never pick the same one. The lock is an flock on `<state>/ports/<port>.lock`, held by
//! the launching process and handed to the job's supervisor, which keeps it for the job's life.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::system::ports;

/// An exclusive claim on a port among dpgui launches (the kernel releases it when every holder
/// of the file description has exited).
#[derive(Debug)]
pub struct PortLock {
    pub port: u16,
    pub file: File,
}

fn lock_path(state_dir: &Path, port: u16) -> PathBuf {
    state_dir.join("ports").join(format!("{port}.lock"))
}

/// Takes the lock for `port` without waiting; `Ok(None)` when another launch holds it.
pub fn try_lock(state_dir: &Path, port: u16) -> std::io::Result<Option<PortLock>> {
    let path = lock_path(state_dir, port);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(PortLock { port, file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Why a port cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRefusal {
    /// Another dpgui launch holds it right now.
    Locked,
    /// Something listens on it, or it cannot be bound on IPv4 or IPv6.
    InUse,
}

/// Locks `port` and checks that a trainer could bind it on both address families.
pub fn claim(state_dir: &Path, port: u16) -> Result<PortLock, PortRefusal> {
    let lock = match try_lock(state_dir, port) {
        Ok(Some(l)) => l,
        Ok(None) => return Err(PortRefusal::Locked),
        // No lock directory (read-only state dir): still refuse a busy port, but say nothing
        // about races — the caller reports the state dir problem separately.
        Err(_) => return Err(PortRefusal::Locked),
    };
    // Checked after locking: a port free now stays ours among dpgui launches.
    if ports::port_is_free(port) {
        Ok(lock)
    } else {
        Err(PortRefusal::InUse)
    }
}

/// The first port of `range` that is unlocked and free.
pub fn choose(state_dir: &Path, range: (u16, u16)) -> Result<PortLock, String> {
    let mut busy = 0;
    for port in range.0..=range.1 {
        match claim(state_dir, port) {
            Ok(l) => return Ok(l),
            Err(_) => busy += 1,
        }
    }
    Err(format!(
        "no free port in {}-{} ({busy} busy or held by other launches); widen port_range in \
         config.toml or free some with `dpgui ports`",
        range.0, range.1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_port_is_not_handed_out_twice() {
        let dir = tempfile::tempdir().unwrap();
        // A range of free ports found by the kernel.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        let first = choose(dir.path(), (base, base.saturating_add(50))).unwrap();
        let second = choose(dir.path(), (base, base.saturating_add(50))).unwrap();
        assert_ne!(first.port, second.port);
        assert_eq!(
            claim(dir.path(), first.port).unwrap_err(),
            PortRefusal::Locked
        );
        let p = first.port;
        drop(first);
        assert_eq!(claim(dir.path(), p).map(|l| l.port), Ok(p));
    }

    #[test]
    fn a_listening_port_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(claim(dir.path(), port).unwrap_err(), PortRefusal::InUse);
        let chosen = choose(dir.path(), (port, port.saturating_add(20))).unwrap();
        assert_ne!(chosen.port, port);
    }
}
