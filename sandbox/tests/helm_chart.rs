//! Real helm 4 against the sandbox: install, list, upgrade (changed values
//! land), uninstall of a chart with the kinds an operator chart creates.

mod common;

use common::{Cli, fixture};
use kube_sandbox::start_default;

const KINDS: &str = "deployment,service,serviceaccount,role,rolebinding,configmap";

#[tokio::test(flavor = "multi_thread")]
async fn helm_installs_upgrades_and_uninstalls_a_chart() {
    let sandbox = start_default().await.expect("sandbox starts");
    let cli = Cli::new(&sandbox);
    let chart = fixture("demo-chart").to_string_lossy().into_owned();

    // No --wait: pods never run here, so a Deployment never becomes ready (see README).
    cli.helm(&["install", "demo", &chart, "--namespace", "default"]);
    let list = cli.helm(&["list", "--namespace", "default", "-o", "json"]);
    let releases: serde_json::Value = serde_json::from_str(&list).expect("helm list -o json");
    assert_eq!(releases[0]["name"], "demo", "{list}");
    assert_eq!(releases[0]["status"], "deployed", "{list}");
    assert_eq!(releases[0]["revision"], "1", "{list}");

    let names = cli.kubectl(&["get", KINDS, "-o", "name"]);
    for want in [
        "deployment.apps/demo-app",
        "service/demo-svc",
        "serviceaccount/demo-sa",
        "role.rbac.authorization.k8s.io/demo-role",
        "rolebinding.rbac.authorization.k8s.io/demo-rb",
        "configmap/demo-config",
    ] {
        assert!(names.lines().any(|l| l == want), "{want} missing from:\n{names}");
    }
    cli.kubectl(&["get", "clusterrole", "demo-default-reader"]);
    cli.kubectl(&["get", "crd", "widgets.example.com"]);
    let widget = cli.kubectl(&[
        "get",
        "widget",
        "demo-widget",
        "-o",
        "jsonpath={.spec.size} {.spec.replicas}",
    ]);
    assert_eq!(widget, "small 1");
    let ip = cli.kubectl(&["get", "service", "demo-svc", "-o", "jsonpath={.spec.clusterIP}"]);
    let ip: std::net::Ipv4Addr = ip.parse().expect("clusterIP is an IPv4 address");
    assert!(
        kube_sandbox::ipalloc::IpAllocator::in_range(ip),
        "{ip} is outside 127.0.64.0/18"
    );

    cli.helm(&[
        "upgrade",
        "demo",
        &chart,
        "--namespace",
        "default",
        "--set",
        "greeting=bonjour",
        "--set",
        "replicas=2",
    ]);
    let greeting = cli.kubectl(&["get", "configmap", "demo-config", "-o", "jsonpath={.data.greeting}"]);
    assert_eq!(greeting, "bonjour");
    let deploy = cli.kubectl(&[
        "get",
        "deployment",
        "demo-app",
        "-o",
        "jsonpath={.spec.replicas} {.metadata.generation} {.spec.template.spec.containers[0].env[0].value}",
    ]);
    assert_eq!(deploy, "2 2 bonjour");
    let widget = cli.kubectl(&["get", "widget", "demo-widget", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(widget, "2");
    let list = cli.helm(&["list", "--namespace", "default", "-o", "json"]);
    let releases: serde_json::Value = serde_json::from_str(&list).expect("helm list -o json");
    assert_eq!(releases[0]["revision"], "2", "{list}");

    cli.helm(&[
        "uninstall",
        "demo",
        "--namespace",
        "default",
        "--wait",
        "--timeout",
        "60s",
    ]);
    let left = cli.kubectl(&["get", KINDS, "-o", "name"]);
    assert!(!left.contains("demo-"), "objects left after uninstall:\n{left}");
    assert!(cli.helm(&["list", "--namespace", "default", "-q"]).trim().is_empty());
    let err = cli.fails("kubectl", &["get", "clusterrole", "demo-default-reader"]);
    assert!(err.contains("not found"), "{err}");
    // Like real helm, CRDs from crds/ stay after uninstall.
    cli.kubectl(&["get", "crd", "widgets.example.com"]);
    sandbox.shutdown().await;
}
