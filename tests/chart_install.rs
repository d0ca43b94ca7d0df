//! The chart through the real helm 4 on kube-sandbox: install, upgrade, uninstall.

use lifeboat_testkit::cluster::TestCluster;
use lifeboat_testkit::tools::repo_root;

fn chart() -> String {
    repo_root().join("charts/lifeboat").to_string_lossy().into_owned()
}

/// The operator container's environment in the release's Deployment.
fn deployment_env(cluster: &TestCluster) -> Vec<serde_json::Value> {
    let deploy: serde_json::Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "deployment",
        "lifeboat",
        "-n",
        "lifeboat-system",
        "-o",
        "json",
    ]))
    .expect("json");
    deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_upgrade_uninstall() {
    let cluster = TestCluster::start().await;
    let chart = chart();
    let run = cluster.helm(&[
        "install",
        "lifeboat",
        &chart,
        "--namespace",
        "lifeboat-system",
        "--create-namespace",
        "--wait=false",
    ]);
    assert!(run.ok, "helm install:\n{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("kubectl get lifeboat"),
        "NOTES tell what to do next:\n{}",
        run.stdout
    );

    // Everything the chart renders is there.
    let crds = cluster.kubectl_ok(&["get", "crd", "-o", "name"]);
    for plural in ["backupstores", "recoveryplans", "backups", "restores", "failovers"] {
        assert!(crds.contains(&format!("{plural}.lifeboat.dev")), "{crds}");
    }
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/recoveryplans.lifeboat.dev",
        "--timeout=20s",
    ]);
    let ns = ["-n", "lifeboat-system"];
    for (kind, name) in [
        ("deployment", "lifeboat"),
        ("service", "lifeboat-metrics"),
        ("serviceaccount", "lifeboat"),
        ("role", "lifeboat-leader-election"),
        ("rolebinding", "lifeboat-leader-election"),
    ] {
        cluster.kubectl_ok(&[&["get", kind, name][..], &ns[..]].concat());
    }
    cluster.kubectl_ok(&["get", "clusterrole", "lifeboat"]);
    cluster.kubectl_ok(&["get", "clusterrolebinding", "lifeboat"]);
    let env = deployment_env(&cluster);
    assert!(
        env.iter()
            .any(|e| e["name"] == "LIFEBOAT_LOG_FORMAT" && e["value"] == "json"),
        "JSON logs by default in a cluster: {env:?}"
    );
    let list = cluster.helm(&["list", "-n", "lifeboat-system"]);
    assert!(
        list.stdout.contains("lifeboat") && list.stdout.contains("deployed"),
        "{}",
        list.stdout
    );

    // Changed values land.
    let run = cluster.helm(&[
        "upgrade",
        "lifeboat",
        &chart,
        "-n",
        "lifeboat-system",
        "--set",
        "logLevel=debug",
        "--set",
        "replicaCount=2",
        "--set",
        "logFormat=text",
    ]);
    assert!(run.ok, "helm upgrade:\n{}{}", run.stdout, run.stderr);
    let deploy: serde_json::Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "get",
        "deployment",
        "lifeboat",
        "-n",
        "lifeboat-system",
        "-o",
        "json",
    ]))
    .expect("json");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let env = deployment_env(&cluster);
    assert!(
        env.iter().any(|e| e["name"] == "LIFEBOAT_LOG" && e["value"] == "debug"),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|e| e["name"] == "LIFEBOAT_LOG_FORMAT" && e["value"] == "text"),
        "{env:?}"
    );
    let run = cluster.helm(&[
        "upgrade",
        "lifeboat",
        &chart,
        "-n",
        "lifeboat-system",
        "--set",
        "logFormat=yaml",
    ]);
    assert!(
        !run.ok && run.stderr.contains("logFormat"),
        "the schema refuses an unknown log format:\n{}",
        run.stderr
    );

    // Uninstall removes what it created, except the CRDs it keeps on purpose.
    let run = cluster.helm(&["uninstall", "lifeboat", "-n", "lifeboat-system", "--wait=false"]);
    assert!(run.ok, "helm uninstall:\n{}{}", run.stdout, run.stderr);
    for (kind, name) in [
        ("deployment", "lifeboat"),
        ("service", "lifeboat-metrics"),
        ("serviceaccount", "lifeboat"),
    ] {
        let run = cluster.kubectl(&["get", kind, name, "-n", "lifeboat-system"]);
        assert!(
            !run.ok && run.stderr.contains("NotFound"),
            "{kind}/{name} removed: {}",
            run.stderr
        );
    }
    assert!(!cluster.kubectl(&["get", "clusterrole", "lifeboat"]).ok);
    cluster.kubectl_ok(&["get", "crd", "recoveryplans.lifeboat.dev"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_scoped_install_uses_roles_only() {
    let cluster = TestCluster::start().await;
    cluster.kubectl_ok(&["create", "namespace", "shop"]);
    let run = cluster.helm(&[
        "install",
        "lb",
        &chart(),
        "-n",
        "shop",
        "--set",
        "scope=namespace",
        "--set",
        "crds.install=false",
        "--wait=false",
    ]);
    assert!(run.ok, "helm install:\n{}{}", run.stdout, run.stderr);
    cluster.kubectl_ok(&["get", "role", "lb-lifeboat", "-n", "shop"]);
    assert!(
        !cluster.kubectl(&["get", "clusterrole", "lb-lifeboat"]).ok,
        "no cluster-wide grant"
    );
    let deploy = cluster.kubectl_ok(&["get", "deployment", "lb-lifeboat", "-n", "shop", "-o", "json"]);
    assert!(
        deploy.contains("LIFEBOAT_WATCH_NAMESPACE"),
        "operator told which namespace to watch"
    );
}
