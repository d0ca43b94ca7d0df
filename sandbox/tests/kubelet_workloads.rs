//! Deployments of mapped images: `helm install --wait` succeeds once the
//! readiness probes pass, a deleted pod is replaced, `kubectl rollout restart`
//! rolls out, `kubectl logs deploy/NAME` shows the output, and the Service
//! reaches the pods.

mod common;

use std::io::{Read, Write};

use common::{Cli, fixture, wait_kubectl};

fn pods(cli: &Cli) -> Vec<String> {
    let out = cli.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    out.split_whitespace().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_wait_replacement_rollout_restart_and_logs() {
    let sandbox = common::kubelet::start().await;
    let cli = Cli::new(&sandbox);
    let chart = fixture("web-chart").to_string_lossy().into_owned();
    cli.helm(&["install", "web", &chart, "--wait", "--timeout", "90s"]);
    let ready = cli.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.status.readyReplicas}/{.status.availableReplicas}",
    ]);
    assert_eq!(ready, "2/2", "helm --wait returned before the Deployment was available");

    // Through the Service's clusterIP to a pod's podIP.
    let ip = cli.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let body = tokio::task::block_in_place(|| {
        let mut s = std::net::TcpStream::connect((ip.as_str(), 80)).expect("connect to the Service");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    });
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");

    let before = pods(&cli);
    assert_eq!(before.len(), 2);
    cli.kubectl(&["delete", "pod", &before[0]]);
    wait_kubectl(
        &cli,
        "a replacement pod",
        &["get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"],
        |o| o == "2",
    )
    .await;
    let after = pods(&cli);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        !after.contains(&before[0]) && after.contains(&before[1]),
        "{before:?} -> {after:?}"
    );

    cli.kubectl(&["rollout", "restart", "deploy/web"]);
    cli.kubectl(&["rollout", "status", "deploy/web", "--timeout=90s"]);
    let rs = cli.kubectl(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.spec.replicas} {end}",
    ]);
    let mut counts: Vec<&str> = rs.split_whitespace().collect();
    counts.sort();
    assert_eq!(counts, ["0", "2"], "old ReplicaSet scaled down, new one up: {rs}");
    let restarted = pods(&cli);
    assert!(
        restarted.iter().all(|p| !after.contains(p)),
        "{after:?} -> {restarted:?}"
    );

    let logs = cli.kubectl(&["logs", "deploy/web"]);
    assert!(logs.starts_with("serving on 127.0."), "{logs}");
    cli.helm(&["uninstall", "web", "--wait"]);
}
