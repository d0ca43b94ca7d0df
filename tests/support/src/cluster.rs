//! A kube-sandbox with lifeboat's CRDs applied by the real kubectl, for API, chart and
//! controller tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_sandbox::{Sandbox, SandboxOptions};

use crate::tools::{Run, helm_run, kubectl_run, repo_root};

/// A running kube-sandbox and the kubeconfig real clients use to reach it.
pub struct TestCluster {
    /// The sandbox (stopped when this is dropped).
    pub sandbox: Sandbox,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts an empty sandbox on a free port.
    pub async fn start() -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SandboxOptions {
            dir: Some(dir.path().to_path_buf()),
            ..SandboxOptions::default()
        };
        let sandbox = Sandbox::start(options).await.expect("kube-sandbox starts");
        let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
        TestCluster {
            sandbox,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Starts an empty sandbox that keeps its objects in a state file across restarts.
    pub async fn start_with_state() -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SandboxOptions {
            dir: Some(dir.path().to_path_buf()),
            state_file: Some(dir.path().join("state.json")),
            ..SandboxOptions::default()
        };
        let sandbox = Sandbox::start(options).await.expect("kube-sandbox starts");
        let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
        TestCluster {
            sandbox,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Applies `crds/` with `kubectl apply --server-side` and waits until every CRD is Established.
    pub fn apply_crds(&self) {
        let crds = repo_root().join("crds");
        self.kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().expect("utf-8 path")]);
        self.kubectl_ok(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=30s"]);
    }

    /// Starts a sandbox and applies `crds/` with `kubectl apply --server-side`, waiting
    /// until every CRD is Established.
    pub async fn with_crds() -> TestCluster {
        let cluster = Self::start().await;
        cluster.apply_crds();
        cluster
    }

    /// Path of the kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Runs the pinned kubectl (off the async workers, so the in-process server keeps serving).
    pub fn kubectl(&self, args: &[&str]) -> Run {
        tokio::task::block_in_place(|| kubectl_run(&self.kubeconfig, args))
    }

    /// Runs kubectl and panics with its output unless it succeeds.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        assert!(run.ok, "kubectl {args:?} failed:\n{}{}", run.stdout, run.stderr);
        run.stdout
    }

    /// Runs kubectl with `stdin` as the manifest (`-f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        tokio::task::block_in_place(|| {
            let mut child = std::process::Command::new(crate::tools::kubectl())
                .args(args)
                .env("KUBECONFIG", &self.kubeconfig)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("kubectl starts");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(stdin.as_bytes())
                .expect("write manifest");
            child.wait_with_output().expect("kubectl finishes").into()
        })
    }

    /// Runs the pinned helm.
    pub fn helm(&self, args: &[&str]) -> Run {
        tokio::task::block_in_place(|| helm_run(&self.kubeconfig, args))
    }

    /// Polls `kubectl args` until its stdout satisfies `check`.
    pub fn wait_for_kubectl(&self, what: &str, args: &[&str], check: impl Fn(&str) -> bool) -> String {
        crate::tools::wait_until(what, Duration::from_secs(20), || {
            let run = self.kubectl(args);
            (run.ok && check(&run.stdout)).then_some(run.stdout)
        })
    }
}

/// Registers a database process as a Pod: created with `labels`, then its status set
/// (podIP, phase Running, Ready=True) through the status subresource, as a kubelet would.
pub async fn register_pod(client: &kube::Client, namespace: &str, name: &str, labels: &[(&str, &str)], ip: &str) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "db", "image": "postgres:15"}]},
    }))
    .expect("pod");
    api.create(&PostParams::default(), &pod).await.expect("create pod");
    set_pod_ready(client, namespace, name, ip, true).await;
}

/// Sets a pod's podIP and Ready condition through /status.
pub async fn set_pod_ready(client: &kube::Client, namespace: &str, name: &str, ip: &str, ready: bool) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let status = serde_json::json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}
