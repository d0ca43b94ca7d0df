//! Shared helpers for kube-sandbox's acceptance tests: the pinned kubectl and
//! helm binaries run against a sandbox, and waiting on conditions.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kube_sandbox::Sandbox;

/// A pinned tool from ~/.cache/lifeboat/bin; fails loudly when setup has not run.
pub fn tool(name: &str) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let path = Path::new(&home).join(".cache/lifeboat/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh to install the pinned kubectl and helm",
        path.display()
    );
    path
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs kubectl or helm against one sandbox, with caches kept in the sandbox's directory.
pub struct Cli {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Cli {
    pub fn new(sandbox: &Sandbox) -> Cli {
        let home = sandbox
            .kubeconfig_path()
            .parent()
            .expect("kubeconfig has a parent")
            .join("home");
        std::fs::create_dir_all(&home).expect("create cli home");
        Cli {
            kubeconfig: sandbox.kubeconfig_path().to_path_buf(),
            home,
        }
    }

    fn command(&self, tool_name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(tool(tool_name));
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env("HELM_CACHE_HOME", self.home.join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.home.join("helm-config"))
            .env("HELM_DATA_HOME", self.home.join("helm-data"));
        c
    }

    /// Runs off the async workers (block_in_place), so the in-process server keeps serving.
    pub fn run(&self, tool_name: &str, args: &[&str]) -> Output {
        tokio::task::block_in_place(|| self.command(tool_name, args).output())
            .unwrap_or_else(|e| panic!("running {tool_name} {args:?}: {e}"))
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, tool_name: &str, args: &[&str]) -> String {
        let out = self.run(tool_name, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{tool_name} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        stdout
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, tool_name: &str, args: &[&str]) -> String {
        let out = self.run(tool_name, args);
        assert!(
            !out.status.success(),
            "{tool_name} {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        self.ok("kubectl", args)
    }

    pub fn helm(&self, args: &[&str]) -> String {
        self.ok("helm", args)
    }

    pub fn spawn_kubectl(&self, args: &[&str]) -> std::process::Child {
        self.command("kubectl", args).spawn().expect("spawn kubectl")
    }

    pub fn spawn_kubectl_with(&self, args: &[&str], stdout: std::process::Stdio) -> std::process::Child {
        self.command("kubectl", args)
            .stdout(stdout)
            .spawn()
            .expect("spawn kubectl")
    }
}

/// Poll `check` every 50 ms until it returns Some, or panic after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One raw HTTP/1.1 request (Connection: close); returns (status, headers, body).
pub async fn raw_http(url: &str, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect to sandbox");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read response");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The Status of a failed kube-rs call.
pub fn api_status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A sandbox with a kubelet for the test images.
pub mod kubelet;

/// Poll `kubectl args` until its stdout satisfies `check`; returns that stdout.
pub async fn wait_kubectl(cli: &Cli, what: &str, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    wait_until(what, Duration::from_secs(60), || {
        let out = cli.run("kubectl", args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let ok = out.status.success() && check(&stdout);
        async move { ok.then_some(stdout) }
    })
    .await
}
