//! Choosing a job's master port: free on IPv4 and IPv6 right before launch, and locked so two
//! launches never pick the same one.
//!
//! The lock is a Unix socket bound in the abstract namespace (`@dpgui-port-<port>`): binding is
//! atomic, the kernel releases it when the last holder exits, it needs no file and no
//! permissions, and its scope is the network namespace, exactly the scope of the port it guards
//! (every user of the machine, every state dir). The launching process takes it and hands it to
//! the job's supervisor, which keeps it for the job's life.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use crate::system::ports;

/// An exclusive claim on a port among dpgui launches on this machine.
#[derive(Debug)]
pub struct PortLock {
    pub port: u16,
    pub file: UnixListener,
}

/// Takes the lock for `port` without waiting; `Ok(None)` when another launch holds it.
pub fn try_lock(port: u16) -> std::io::Result<Option<PortLock>> {
    let addr = SocketAddr::from_abstract_name(format!("dpgui-port-{port}"))?;
    match UnixListener::bind_addr(&addr) {
        Ok(file) => Ok(Some(PortLock { port, file })),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok(None),
        Err(e) => Err(e),
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
pub fn claim(port: u16) -> Result<PortLock, PortRefusal> {
    let lock = match try_lock(port) {
        Ok(Some(l)) => l,
        Ok(None) => return Err(PortRefusal::Locked),
        Err(_) => return Err(PortRefusal::Locked),
    };
    // Checked after locking: a port free now stays ours among dpgui launches.
    if ports::port_is_free(port) {
        Ok(lock)
    } else {
        Err(PortRefusal::InUse)
    }
}

/// The first port of `range` that is unlocked, free, and not in `avoid` (ports of jobs that
/// have not ended: a job whose supervisor died no longer holds its claim).
pub fn choose(range: (u16, u16), avoid: &[u16]) -> Result<PortLock, String> {
    let mut busy = 0;
    for port in (range.0..=range.1).filter(|p| !avoid.contains(p)) {
        match claim(port) {
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
        // A range of free ports found by the kernel.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        let first = choose((base, base.saturating_add(50)), &[]).unwrap();
        let second = choose((base, base.saturating_add(50)), &[first.port + 1]).unwrap();
        assert_ne!(second.port, first.port + 1, "avoided");
        assert_ne!(first.port, second.port);
        assert_eq!(claim(first.port).unwrap_err(), PortRefusal::Locked);
        let p = first.port;
        drop(first);
        assert_eq!(claim(p).map(|l| l.port), Ok(p));
    }

    #[test]
    fn a_listening_port_is_refused() {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(claim(port).unwrap_err(), PortRefusal::InUse);
        let chosen = choose((port, port.saturating_add(20)), &[]).unwrap();
        assert_ne!(chosen.port, port);
    }
}
