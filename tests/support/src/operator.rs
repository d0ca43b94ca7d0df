//! `lifeboat operator` as a child process against a test cluster, killed on drop.

use std::path::Path;
use std::process::{Child, Command};

/// A running operator process.
pub struct OperatorProcess {
    child: Child,
}

impl OperatorProcess {
    /// Starts `binary operator` with `identity` as its pod name and `extra` env vars.
    pub fn start(binary: &Path, kubeconfig: &Path, identity: &str, extra: &[(&str, &str)]) -> OperatorProcess {
        Self::start_as(binary, kubeconfig, identity, extra, None)
    }

    /// The same, as user `uid` (so that iptables can tell its connections apart); the
    /// kubeconfig must be readable by that user.
    pub fn start_as(
        binary: &Path,
        kubeconfig: &Path,
        identity: &str,
        extra: &[(&str, &str)],
        uid: Option<u32>,
    ) -> OperatorProcess {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(binary);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        cmd.arg("operator")
            .env("KUBECONFIG", kubeconfig)
            .env("LIFEBOAT_HTTP_ADDR", "127.0.0.1:0")
            .env("POD_NAME", identity)
            .env("POD_NAMESPACE", "default")
            .env("LIFEBOAT_LEASE_SECONDS", "3");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        OperatorProcess {
            child: cmd.spawn().expect("operator starts"),
        }
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
