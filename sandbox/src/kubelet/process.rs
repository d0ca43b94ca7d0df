//! Starting a container's process: its own session (so the whole process group
//! can be signalled), a private mount namespace with the pod's volumes bind-mounted
//! at their mountPaths, then the container's user, groups and working directory.
//! Output is captured line by line into a CRI-format log file.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// One bind mount: a host path shown at `target` inside the container.
#[derive(Debug, Clone)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything needed to start one process.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub mounts: Vec<Mount>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
    /// Join this mount namespace (a `/proc/PID/ns/mnt` descriptor) instead of making one.
    pub join_mount_ns: Option<RawFd>,
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Create what a bind mount needs at its target (a directory, or a file for a file).
pub fn prepare_target(m: &Mount) -> std::io::Result<()> {
    if m.source.is_dir() {
        std::fs::create_dir_all(&m.target)
    } else {
        if let Some(parent) = m.target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if !m.target.exists() {
            std::fs::write(&m.target, b"")?;
        }
        Ok(())
    }
}

/// Start the process with piped stdout/stderr.
pub fn spawn(s: &Spawn) -> std::io::Result<Child> {
    let (program, args) = s
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command specified"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(s.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    let mounts: Vec<(CString, CString, bool)> = s
        .mounts
        .iter()
        .map(|m| Ok((cstring(&m.source)?, cstring(&m.target)?, m.read_only)))
        .collect::<std::io::Result<_>>()?;
    let cwd = s.cwd.as_deref().map(cstring).transpose()?;
    let (uid, gid, groups, join) = (s.uid, s.gid, s.groups.clone(), s.join_mount_ns);
    let root = CString::from(c"/");
    // SAFETY: runs in the forked child before exec; it only makes async-signal-safe
    // system calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::setsid())?;
            if let Some(fd) = join {
                check(libc::setns(fd, libc::CLONE_NEWNS))?;
            } else if !mounts.is_empty() {
                check(libc::unshare(libc::CLONE_NEWNS))?;
                // Nothing mounted here may propagate back to the host.
                check(libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for (source, target, read_only) in &mounts {
                    let flags = libc::MS_BIND | libc::MS_REC;
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        flags,
                        std::ptr::null(),
                    ))?;
                    if *read_only {
                        let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                        check(libc::mount(
                            std::ptr::null(),
                            target.as_ptr(),
                            std::ptr::null(),
                            ro,
                            std::ptr::null(),
                        ))?;
                    }
                }
            }
            if uid.is_some() || gid.is_some() {
                check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            }
            if let Some(g) = gid {
                check(libc::setgid(g))?;
            }
            if let Some(u) = uid {
                check(libc::setuid(u))?;
            }
            if let Some(dir) = &cwd {
                check(libc::chdir(dir.as_ptr()))?;
            }
            // A sandbox that dies (a test that panics) takes its containers along.
            // Set last: changing credentials clears it.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// Signal a container's main process only (what a container runtime's stop does first).
pub fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill has no memory-safety preconditions; a stale pid just gets ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Signal the whole process group of a container (its process is the group leader).
pub fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill has no memory-safety preconditions; a stale group just gets ESRCH.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Exit code as the kubelet reports it: the code, or 128 + the signal.
pub fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => i64::from(c),
        (None, Some(s)) => 128 + i64::from(s),
        _ => 1,
    }
}

/// Copy one output stream into the log file as CRI lines (`<time> <stream> F|P <text>`).
pub async fn capture(reader: impl AsyncRead + Unpin, stream: &'static str, log: PathBuf) {
    let mut reader = BufReader::new(reader);
    let mut file = match tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await {
        Ok(f) => Some(f),
        Err(error) => {
            tracing::warn!(%error, log = %log.display(), "opening a container log");
            None
        }
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let full = line.last() == Some(&b'\n');
        let text = String::from_utf8_lossy(if full { &line[..line.len() - 1] } else { &line });
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let entry = format!("{ts} {stream} {} {text}\n", if full { "F" } else { "P" });
        // One write per line on an O_APPEND file: stdout and stderr lines never interleave.
        if let Some(f) = file.as_mut()
            && let Err(error) = f.write_all(entry.as_bytes()).await
        {
            tracing::warn!(%error, log = %log.display(), "writing a container log");
        }
    }
}

/// Process groups of running containers, killed when the kubelet is dropped.
#[derive(Debug, Clone, Default)]
pub struct Live(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<u32>>>);

impl Live {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, pid: u32) {
        self.set().insert(pid);
    }

    pub fn remove(&self, pid: u32) {
        self.set().remove(&pid);
    }

    pub fn kill_all(&self) {
        for pid in self.set().drain() {
            signal_group(pid, libc::SIGKILL);
        }
    }
}
