//! The `kube-sandbox` binary: kubeconfig and ready marker, SIGTERM, and
//! `--state` carrying objects and resourceVersions across process restarts.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::wait_until;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

fn start(dir: &Path, state: &Path) -> Child {
    let _ = std::fs::remove_file(dir.join("ready"));
    Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .arg("--dir")
        .arg(dir)
        .arg("--state")
        .arg(state)
        .spawn()
        .expect("spawn kube-sandbox")
}

async fn ready(dir: &Path) {
    let marker = dir.join("ready");
    wait_until("DIR/ready", Duration::from_secs(30), || {
        let m = marker.clone();
        async move { m.exists().then_some(()) }
    })
    .await;
}

async fn client(dir: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(dir.join("kubeconfig")).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kubeconfig usable by kube-rs");
    kube::Client::try_from(cfg).expect("client")
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM delivered");
    let status = child.wait().expect("wait for kube-sandbox");
    assert!(status.success(), "kube-sandbox exits cleanly on SIGTERM: {status}");
}

fn rv(o: &ConfigMap) -> u64 {
    o.metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("numeric resourceVersion")
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_serves_kubectl_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let child = start(dir.path(), &state);
    ready(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(client(dir.path()).await, "default");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "kept"}, "data": {"a": "1"}})).expect("cm");
    let before = api.create(&PostParams::default(), &cm).await.expect("create");
    stop(child);
    assert!(state.exists(), "state saved on SIGTERM");

    let child = start(dir.path(), &state);
    ready(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(client(dir.path()).await, "default");
    let after = api.get("kept").await.expect("object survives the restart");
    assert_eq!(after.metadata.uid, before.metadata.uid);
    let mut cm2 = cm.clone();
    cm2.metadata.name = Some("new".into());
    let new = api
        .create(&PostParams::default(), &cm2)
        .await
        .expect("create after restart");
    assert!(rv(&new) > rv(&before), "resourceVersions keep increasing");

    // The kubeconfig works for kubectl as is.
    let out = std::process::Command::new(common::tool("kubectl"))
        .args(["get", "configmaps", "-o", "name"])
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env("HOME", dir.path())
        .output()
        .expect("kubectl");
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(
        names.contains("configmap/kept") && names.contains("configmap/new"),
        "{names}"
    );

    // The admin API restarts the server in place: same URL, objects kept.
    let url = std::fs::read_to_string(dir.path().join("ready")).expect("ready holds the URL");
    let (code, _, _) = common::raw_http(url.trim(), "POST", "/sandbox/restart", "application/json", "").await;
    assert_eq!(code, 202);
    let api2 = api.clone();
    wait_until(
        "the object is served after the admin restart",
        Duration::from_secs(30),
        move || {
            let api = api2.clone();
            async move { api.get("new").await.ok() }
        },
    )
    .await;
    stop(child);
}
