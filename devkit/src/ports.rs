//! Free TCP ports on the loopback interface.
//!
//! The kernel picks an unused port when we bind to port 0; we release it at once and hand the
//! number out. Between that moment and the caller's own `bind` another process may take the port,
//! so callers that can (the private Postgres cluster does) retry with a new port on failure. Within
//! one process, a port is never handed out twice, so parallel tests do not collide with each other.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::{Mutex, OnceLock};

/// Ports already handed out by this process.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that nothing listens on right now and that this process has not
/// handed out before.
///
/// # Panics
/// If the loopback interface cannot be bound at all (no networking in the sandbox); use
/// [`try_free_port`] to handle that case.
pub fn free_port() -> u16 {
    match try_free_port() {
        Ok(port) => port,
        Err(err) => panic!("cannot find a free TCP port on 127.0.0.1: {err}"),
    }
}

/// Like [`free_port`], but reports failures to bind the loopback interface.
pub fn try_free_port() -> io::Result<u16> {
    const ATTEMPTS: usize = 64;
    for _ in 0..ATTEMPTS {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let mut seen = handed_out()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.insert(port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no new free port after {ATTEMPTS} attempts"),
    ))
}

/// Whether `port` on 127.0.0.1 can be bound right now (nothing listens on it).
pub fn is_port_free(port: u16) -> bool {
    port != 0 && TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_distinct() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|&p| p != 0));
    }

    #[test]
    fn busy_port_is_not_free() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        assert!(!is_port_free(port));
        drop(listener);
        assert!(is_port_free(port));
    }
}
