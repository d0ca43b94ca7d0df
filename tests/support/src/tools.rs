//! The pinned kubectl (1.35.2) and helm (4.1.4) installed by scripts/setup.sh, and a
//! wait-until helper: tests wait on conditions with a deadline, never on sleeps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Where scripts/setup.sh keeps tool binaries (`LIFEBOAT_CACHE` overrides `~/.cache/lifeboat`).
pub fn tools_dir() -> PathBuf {
    let cache = std::env::var_os("LIFEBOAT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/lifeboat"));
    cache.join("bin")
}

/// Path of a pinned tool; panics with the fix when it is missing (tests only).
pub fn tool(name: &str) -> PathBuf {
    let path = tools_dir().join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/setup.sh (or `make test`, which runs it) first",
        path.display()
    );
    path
}

/// The pinned kubectl.
pub fn kubectl() -> PathBuf {
    tool("kubectl")
}

/// The pinned helm.
pub fn helm() -> PathBuf {
    tool("helm")
}

/// Result of running a CLI: status, stdout and stderr as text.
#[derive(Debug)]
pub struct Run {
    /// Whether the command exited 0.
    pub ok: bool,
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `program args...` with KUBECONFIG set (helm also gets private cache/config dirs
/// beside the kubeconfig so parallel tests do not share state).
pub fn run_with_kubeconfig(program: &Path, kubeconfig: &Path, args: &[&str]) -> Run {
    let home = kubeconfig.parent().unwrap_or(Path::new("/tmp")).join("home");
    let out = Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .env("KUBECACHEDIR", home.join("kube-cache"))
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    out.into()
}

/// `kubectl args...` against the given kubeconfig.
pub fn kubectl_run(kubeconfig: &Path, args: &[&str]) -> Run {
    run_with_kubeconfig(&kubectl(), kubeconfig, args)
}

/// `helm args...` against the given kubeconfig.
pub fn helm_run(kubeconfig: &Path, args: &[&str]) -> Run {
    run_with_kubeconfig(&helm(), kubeconfig, args)
}

/// Polls `check` every 20 ms until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async version of [`wait_until`].
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The repository root (tests run with the package root as working directory).
pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // tests/support -> repository root
    dir.pop();
    dir.pop();
    dir
}
