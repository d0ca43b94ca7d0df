//! `lifeboat operator` as a child process against a test cluster, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running operator process.
pub struct OperatorProcess {
    child: Child,
    /// Where stdout and stderr go when captured (both into one file, in order).
    log: Option<(tempfile::TempDir, PathBuf)>,
}

fn command(binary: &Path, kubeconfig: &Path, identity: &str, args: &[&str], extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("operator")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("LIFEBOAT_HTTP_ADDR", "127.0.0.1:0")
        .env("POD_NAME", identity)
        .env("POD_NAMESPACE", "default")
        .env("LIFEBOAT_LEASE_SECONDS", "3");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

impl OperatorProcess {
    /// Starts `binary operator` with `identity` as its pod name and `extra` env vars;
    /// its output goes to the test's own.
    pub fn start(binary: &Path, kubeconfig: &Path, identity: &str, extra: &[(&str, &str)]) -> OperatorProcess {
        OperatorProcess {
            child: command(binary, kubeconfig, identity, &[], extra)
                .spawn()
                .expect("operator starts"),
            log: None,
        }
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
        let mut cmd = command(binary, kubeconfig, identity, &[], extra);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        OperatorProcess {
            child: cmd.spawn().expect("operator starts"),
            log: None,
        }
    }

    /// Like [`Self::start`] with `args` after `operator`, and stdout and stderr captured
    /// (read them with [`Self::output`]; shown on a failing test's output when dropped).
    pub fn start_captured(
        binary: &Path,
        kubeconfig: &Path,
        identity: &str,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> OperatorProcess {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-operator-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("operator.log");
        let file = std::fs::File::create(&path).expect("operator log file");
        let child = command(binary, kubeconfig, identity, args, extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .expect("operator starts");
        OperatorProcess {
            child,
            log: Some((dir, path)),
        }
    }

    /// Everything a captured operator wrote to stdout and stderr so far ("" if not captured).
    pub fn output(&self) -> String {
        self.log
            .as_ref()
            .and_then(|(_, path)| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
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
        if std::thread::panicking() && self.log.is_some() {
            let output = self.output();
            let mut start = output.len().saturating_sub(16_000);
            while !output.is_char_boundary(start) {
                start += 1;
            }
            eprintln!("--- operator output (last 16 kB) ---\n{}", &output[start..]);
        }
    }
}
