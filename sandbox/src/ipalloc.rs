//! ClusterIP allocation from 127.0.64.0/18. An address is taken by holding an
//! exclusive flock on /tmp/kube-sandbox-ips/<ip>.lock for as long as the
//! Service exists, so concurrently running sandboxes never share one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

const FIRST: u32 = u32::from_be_bytes([127, 0, 64, 0]);
const SIZE: u32 = 1 << 14;

/// Pod IPs (the kubelet's): 127.0.128.0/17, next to the Service range.
const POD_FIRST: u32 = u32::from_be_bytes([127, 0, 128, 0]);
const POD_SIZE: u32 = 1 << 15;

pub struct IpAllocator {
    dir: PathBuf,
    held: Mutex<HashMap<Ipv4Addr, File>>,
    first: u32,
    size: u32,
}

impl Default for IpAllocator {
    fn default() -> Self {
        IpAllocator {
            dir: std::env::temp_dir().join("kube-sandbox-ips"),
            held: Mutex::new(HashMap::new()),
            first: FIRST,
            size: SIZE,
        }
    }
}

impl IpAllocator {
    /// The pod IP allocator (same locks directory, another range).
    pub fn pods() -> Self {
        IpAllocator {
            first: POD_FIRST,
            size: POD_SIZE,
            ..IpAllocator::default()
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Ipv4Addr, File>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lock the address for this process, if no other sandbox holds it and it can be bound.
    fn try_lock(&self, ip: Ipv4Addr) -> Result<File, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{ip}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        // SAFETY: flock on a valid, owned file descriptor has no memory-safety preconditions.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err("held by another sandbox".into());
        }
        std::net::TcpListener::bind((ip, 0)).map_err(|e| format!("cannot bind {ip}: {e}"))?;
        Ok(file)
    }

    /// A free address, locked until `release`.
    pub fn allocate(&self) -> Result<Ipv4Addr, String> {
        let start = (uuid::Uuid::new_v4().as_u128() % self.size as u128) as u32;
        let mut held = self.held();
        for i in 0..self.size {
            let ip = Ipv4Addr::from(self.first + (start + i) % self.size);
            let last = ip.octets()[3];
            if last == 0 || last == 255 || held.contains_key(&ip) {
                continue;
            }
            if let Ok(f) = self.try_lock(ip) {
                held.insert(ip, f);
                return Ok(ip);
            }
        }
        Err(format!(
            "range {}/{} is exhausted",
            Ipv4Addr::from(self.first),
            32 - self.size.trailing_zeros()
        ))
    }

    /// Take a specific address (a Service that asks for one, or state loaded from disk).
    pub fn claim(&self, ip: Ipv4Addr) -> Result<(), String> {
        let mut held = self.held();
        if held.contains_key(&ip) {
            return Err("provided IP is already allocated".into());
        }
        let f = self.try_lock(ip)?;
        held.insert(ip, f);
        Ok(())
    }

    pub fn release(&self, ip: Ipv4Addr) {
        // Dropping the file releases the flock.
        self.held().remove(&ip);
    }

    pub fn in_range(ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        (FIRST..FIRST + SIZE).contains(&n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_by_one_allocator_until_released() {
        // flock conflicts between separate open files even within one process,
        // so two allocators here behave like two sandbox processes.
        let (a, b) = (IpAllocator::default(), IpAllocator::default());
        let ip = a.allocate().expect("allocate");
        assert!(IpAllocator::in_range(ip));
        assert!(a.claim(ip).is_err(), "already allocated here");
        assert!(b.claim(ip).is_err(), "held by the other allocator");
        let other = b.allocate().expect("allocate");
        assert_ne!(ip, other);
        a.release(ip);
        b.claim(ip).expect("free after release");
    }
}
