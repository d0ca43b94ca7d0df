//! Loopback addresses that no other running test process holds.
//!
//! Every server in the harness binds its own address in 127.0.1.1–127.0.63.254 with
//! its engine's standard port, so tests never fight over ports. Exclusivity across
//! processes (cargo nextest runs each test in its own process) comes from an OS file
//! lock on `/tmp/lifeboat-testkit-addrs/<ip>.lock`: the lock lives as long as the
//! returned [`LoopbackAddr`] and the kernel drops it when the process dies, so a
//! crashed test never leaks an address. The wanted port is also test-bound once, to
//! skip addresses still used by a server some killed test left behind.
//!
//! ```no_run
//! let addr = lifeboat_testkit::net::allocate(5432).unwrap();
//! println!("listen on {}:5432", addr.ip());
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Directory holding one lock file per address.
pub const LOCK_DIR: &str = "/tmp/lifeboat-testkit-addrs";

/// Second octet range used (third octet 1..=63, fourth 1..=254). 127.0.0.x is left to
/// the demo and humans.
const THIRD_OCTETS: std::ops::RangeInclusive<u8> = 1..=63;
const FOURTH_OCTETS: std::ops::RangeInclusive<u8> = 1..=254;

/// An address held exclusively by this process until dropped.
#[derive(Debug)]
pub struct LoopbackAddr {
    ip: Ipv4Addr,
    _lock: File,
}

impl LoopbackAddr {
    /// The allocated address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The address as a string, e.g. `127.0.7.42`.
    pub fn host(&self) -> String {
        self.ip.to_string()
    }

    /// `ip:port`.
    pub fn socket_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip, port))
    }
}

/// Why no address could be allocated.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error("creating lock directory {dir}: {source}")]
    LockDir { dir: String, source: std::io::Error },
    #[error("opening lock file {path}: {source}")]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("no free loopback address with port {port} bindable in 127.0.1.1-127.0.63.254")]
    Exhausted { port: u16 },
}

/// Allocates a loopback address where `port` can be bound right now.
///
/// Pass the port your server will listen on (5432, 3306), or 0 if the server binds
/// port 0 itself.
pub fn allocate(port: u16) -> Result<LoopbackAddr, AllocateError> {
    std::fs::create_dir_all(LOCK_DIR).map_err(|source| AllocateError::LockDir {
        dir: LOCK_DIR.to_string(),
        source,
    })?;
    let candidates: Vec<Ipv4Addr> = THIRD_OCTETS
        .flat_map(|c| FOURTH_OCTETS.map(move |d| Ipv4Addr::new(127, 0, c, d)))
        .collect();
    // Start at a per-process offset so concurrent tests rarely contend for the same lock.
    let seed = u64::from(std::process::id())
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0);
    let start = (seed as usize) % candidates.len();
    for i in 0..candidates.len() {
        let ip = candidates[(start + i) % candidates.len()];
        let path = PathBuf::from(format!("{LOCK_DIR}/{ip}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| AllocateError::LockFile {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(source)) => {
                return Err(AllocateError::LockFile { path, source });
            }
        }
        if TcpListener::bind((ip, port)).is_ok() {
            return Ok(LoopbackAddr { ip, _lock: file });
        }
    }
    Err(AllocateError::Exhausted { port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_allocations_differ_and_are_bindable() {
        let a = allocate(5432).unwrap();
        let b = allocate(5432).unwrap();
        assert_ne!(a.ip(), b.ip());
        let listener = TcpListener::bind(a.socket_addr(0)).unwrap();
        assert_eq!(listener.local_addr().unwrap().ip(), a.ip());
    }
}
