//! Real faults for failover tests: a hung server (SIGSTOP of every process), a network
//! path cut with iptables (by the connecting process's user), and the operator running as
//! its own user so that only its connections can be cut.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The user the operator runs as in tests that cut its network paths (`nobody`).
pub const OPERATOR_UID: u32 = 65534;

/// `pid` and all its descendants (PostgreSQL: the postmaster and its backends).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let out = Command::new("pgrep").arg("-P").arg(all[i].to_string()).output();
        if let Ok(out) = out {
            all.extend(
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    all
}

fn signal_all(pids: &[u32], signal: i32) {
    for pid in pids {
        // SAFETY: kill(2) with a pid we read from the process table; no memory is touched.
        unsafe {
            libc::kill(*pid as i32, signal);
        }
    }
}

/// A server whose every process is stopped (SIGSTOP): it keeps its sockets open and answers
/// nothing. Thawed (SIGCONT) on [`Hung::thaw`] or drop.
pub struct Hung {
    pids: Vec<u32>,
    thawed: bool,
}

impl Hung {
    /// Stops `pid` and its descendants.
    pub fn hang(pid: u32) -> Hung {
        let pids = process_tree(pid);
        signal_all(&pids, libc::SIGSTOP);
        Hung { pids, thawed: false }
    }

    /// Lets it run again.
    pub fn thaw(&mut self) {
        if !self.thawed {
            signal_all(&self.pids, libc::SIGCONT);
            self.thawed = true;
        }
    }
}

impl Drop for Hung {
    fn drop(&mut self) {
        self.thaw();
    }
}

/// An iptables rule dropping TCP packets from processes of `uid` to `host:port`; removed on
/// drop. Established connections hang (packets vanish), as with a real network partition.
pub struct Cut {
    spec: Vec<String>,
}

impl Cut {
    pub fn uid_to(uid: u32, host: &str, port: u16) -> anyhow::Result<Cut> {
        let spec: Vec<String> = [
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            host,
            "--dport",
            &port.to_string(),
            "-m",
            "owner",
            "--uid-owner",
            &uid.to_string(),
            "-j",
            "DROP",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = Command::new("iptables").arg("-I").args(&spec).output()?;
        anyhow::ensure!(
            out.status.success(),
            "iptables -I {}: {}",
            spec.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Cut { spec })
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = Command::new("iptables").arg("-D").args(&self.spec).output();
    }
}

/// A copy of `kubeconfig` that another user can read (the test's own is in a private
/// temporary directory).
pub fn shared_kubeconfig(kubeconfig: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join("kubeconfig-shared");
    std::fs::copy(kubeconfig, &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}
