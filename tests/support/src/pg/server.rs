//! Server processes shared by the PostgreSQL and MariaDB harnesses: spawn as a given
//! user, signal by PID, reap, show the log tail on failure, and wait on conditions.

use std::fs::File;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A database server we spawned directly (so the PID is the server's own, not a
/// wrapper's). Dropping it sends `drop_signal` and reaps the process.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    drop_signal: i32,
}

impl ServerProcess {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, drop_signal: i32) -> anyhow::Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().with_context(|| format!("spawning {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
            drop_signal,
        })
    }

    /// PID while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Sends `signal` (e.g. `libc::SIGQUIT`) to the process.
    pub fn signal(&mut self, signal: i32) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else {
            bail!("{} is not running", self.name);
        };
        // SAFETY: kill(2) with a PID we own and have not reaped yet.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if rc != 0 {
            bail!(
                "kill -{signal} {pid} ({}): {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Sends `signal` and waits (up to `timeout`) until the process has exited.
    pub async fn stop_with(&mut self, signal: i32, timeout: Duration) -> anyhow::Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        self.signal(signal)?;
        let name = self.name.clone();
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() > deadline {
                bail!("{name} still running {timeout:?} after signal {signal}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The last `bytes` of the server log, for error messages.
    pub fn log_tail(&self, bytes: usize) -> String {
        log_tail(&self.log, bytes)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        let _ = self.signal(self.drop_signal);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.is_running() {
            let _ = self.signal(libc::SIGKILL);
            if let Some(mut child) = self.child.take() {
                let _ = child.wait();
            }
        }
    }
}

/// Last `bytes` of a file (lossy UTF-8), or a note that it could not be read.
pub fn log_tail(path: &Path, bytes: usize) -> String {
    match std::fs::read(path) {
        Ok(data) => {
            let start = data.len().saturating_sub(bytes);
            String::from_utf8_lossy(&data[start..]).into_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// A system user's uid and gid (e.g. `postgres`).
pub fn system_user(name: &str) -> anyhow::Result<(u32, u32)> {
    let cname = std::ffi::CString::new(name)?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy out at once.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        bail!("system user {name} does not exist");
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

/// A command that runs as `user` (uid, gid) in `cwd`.
pub fn command_as(program: &Path, user: (u32, u32), cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.uid(user.0).gid(user.1).current_dir(cwd);
    cmd
}

/// Runs a command to completion, failing with its output when it fails.
pub async fn run(cmd: Command) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::from(cmd);
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `check` every 20 ms until it returns `Ok(Some(value))` or `timeout` passes.
/// Errors from `check` count as "not yet"; the last one is reported on timeout.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => String::from("condition not met"),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
