//! The demo's Kubernetes side: kubectl and helm against kube-sandbox, the operator and
//! CLI as child processes, and reads of lifeboat objects as JSON.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Paths and the kubeconfig every command uses.
pub struct Kube {
    pub kubeconfig: PathBuf,
    pub repo: PathBuf,
    pub lifeboat: PathBuf,
    pub logs: PathBuf,
}

impl Kube {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        let home = self.logs.join("home");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("helm-cache"))
            .env("HELM_CONFIG_HOME", home.join("helm-config"))
            .env("HELM_DATA_HOME", home.join("helm-data"))
            .env("KUBECACHEDIR", home.join("kube-cache"))
            .current_dir(&self.repo);
        cmd
    }

    /// Runs a tool, failing with its output; returns stdout.
    pub fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .with_context(|| format!("starting {}", program.display()))?;
        if !out.status.success() {
            bail!(
                "{} {:?} failed:\n{}{}",
                program.display(),
                args,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl args`.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run(&lifeboat_testkit::tools::kubectl(), args)
    }

    /// `kubectl apply -f -` of `manifest`.
    pub fn apply(&self, manifest: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut child = self
            .command(&lifeboat_testkit::tools::kubectl())
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().context("stdin")?.write_all(manifest.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// An object as JSON (`kubectl get KIND NAME -o json`).
    pub fn get(&self, kind: &str, name: &str, namespace: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(
            &self.kubectl(&["get", kind, name, "-n", namespace, "-o", "json"])?,
        )?)
    }

    /// Every object of a kind in a namespace.
    pub fn list(&self, kind: &str, namespace: &str) -> anyhow::Result<Vec<Value>> {
        let list: Value = serde_json::from_str(&self.kubectl(&["get", kind, "-n", namespace, "-o", "json"])?)?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// `lifeboat args` (the CLI), output kept in the demo log.
    pub fn lifeboat(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run(&self.lifeboat, args)
    }

    /// Starts `lifeboat operator` with its log in the demo's folder.
    pub fn start_operator(&self) -> anyhow::Result<Child> {
        let log = std::fs::File::create(self.logs.join("operator.log"))?;
        Ok(self
            .command(&self.lifeboat)
            .arg("operator")
            .env("LIFEBOAT_HTTP_ADDR", "127.0.0.1:0")
            .env("POD_NAME", "lifeboat-demo")
            .env("POD_NAMESPACE", "lifeboat-system")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?)
    }
}

/// Polls `check` until it returns Some, for at most `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = tokio::task::block_in_place(&mut check) {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
