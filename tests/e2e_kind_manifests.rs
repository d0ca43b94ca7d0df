//! The real-cluster scenario's manifests (tests/e2e/kind) stay valid: they apply to
//! kube-sandbox after the CRDs, and the chart renders and installs with its kind values.

use lifeboat_testkit::cluster::TestCluster;
use lifeboat_testkit::tools::repo_root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_manifests_apply_and_the_chart_installs_with_their_values() {
    let cluster = TestCluster::with_crds().await;
    let dir = repo_root().join("tests/e2e/kind");
    for file in [
        "00-namespace.yaml",
        "10-postgres.yaml",
        "20-s3.yaml",
        "30-lifeboat.yaml",
        "40-drill.yaml",
    ] {
        let path = dir.join("manifests").join(file);
        cluster.kubectl_ok(&["apply", "-f", path.to_str().expect("utf-8")]);
    }
    let plan = cluster.kubectl_ok(&[
        "get",
        "rp",
        "orders",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.writerService}",
    ]);
    assert_eq!(plan, "pg-writer");
    for (kind, name) in [
        ("statefulset", "pg-a"),
        ("statefulset", "pg-b"),
        ("deployment", "s3"),
        ("job", "make-bucket"),
        ("backupstore", "in-cluster-s3"),
        ("backup", "after-failover"),
    ] {
        cluster.kubectl_ok(&["get", kind, name, "-n", "shop"]);
    }
    let chart = repo_root().join("charts/lifeboat");
    let values = dir.join("values-kind.yaml");
    let run = cluster.helm(&[
        "install",
        "lifeboat",
        chart.to_str().expect("utf-8"),
        "-n",
        "lifeboat-system",
        "--create-namespace",
        "--set",
        "crds.install=false",
        "-f",
        values.to_str().expect("utf-8"),
    ]);
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    let image = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "lifeboat",
        "-n",
        "lifeboat-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "lifeboat:e2e");
    let script = std::fs::read_to_string(dir.join("run.sh")).expect("run.sh");
    assert!(
        script.contains("manifests/30-lifeboat.yaml") && script.contains("values-kind.yaml"),
        "run.sh uses these files"
    );
}
