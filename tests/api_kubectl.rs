//! lifeboat's API through the real kubectl on kube-sandbox: CRDs apply, examples apply,
//! columns show, defaults land, and bad objects are refused naming the field.

use lifeboat_testkit::cluster::TestCluster;
use lifeboat_testkit::tools::repo_root;

const PLAN: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: {name: orders}
spec:
  engine: postgres
  members: {selector: {matchLabels: {app: orders-db}}}
  credentialsSecret: {name: orders-db-credentials}
  writerService: orders-db
  objectives: {rpo: 1m, rto: 30s}
  backup: {schedule: "0 * * * *", databases: [orders], store: shop-backups}
"#;

const OTHERS: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: Backup
metadata: {name: orders-manual}
spec: {plan: orders}
---
apiVersion: lifeboat.dev/v1alpha1
kind: Restore
metadata: {name: orders-drill}
spec:
  backup: orders-manual
  target: {host: 10.0.0.9, credentialsSecret: {name: scratch-db}}
  checks: [{name: orders-exist, database: orders, sql: "select count(*) > 0 from orders", expect: "t"}]
---
apiVersion: lifeboat.dev/v1alpha1
kind: Failover
metadata: {name: orders-switch}
spec: {plan: orders, type: Switchover}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_apply_and_every_kind_shows_its_columns() {
    let cluster = TestCluster::with_crds().await;
    let examples = repo_root().join("examples");
    cluster.kubectl_ok(&["apply", "-f", examples.to_str().expect("utf-8")]);
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], OTHERS);
    assert!(run.ok, "{}", run.stderr);

    let all = cluster.kubectl_ok(&["get", "lifeboat"]);
    for name in [
        "recoveryplan.lifeboat.dev/orders",
        "recoveryplan.lifeboat.dev/catalog",
        "backupstore.lifeboat.dev/shop-backups",
        "backup.lifeboat.dev/orders-manual",
        "restore.lifeboat.dev/orders-drill",
        "failover.lifeboat.dev/orders-switch",
    ] {
        assert!(all.contains(name), "`kubectl get lifeboat` lists {name}:\n{all}");
    }

    let listing = cluster.kubectl_ok(&["get", "rp,bk,rst,fo,bs"]);
    for header in [
        "ENGINE   PRIMARY   RPO   ACHIEVED-RPO   LAST-BACKUP   READY   AGE",
        "PLAN     PHASE   SIZE   DURATION   AGE",
        "BACKUP   TARGET      PHASE   DURATION   AGE",
        "PLAN     TYPE         FROM   TO    PHASE   RTO   AGE",
        "BUCKET            AVAILABLE   AGE",
    ] {
        let words: Vec<&str> = header.split_whitespace().collect();
        assert!(
            listing
                .lines()
                .any(|line| line.split_whitespace().skip(1).collect::<Vec<_>>() == words),
            "a header line with columns {words:?} in:\n{listing}"
        );
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("recoveryplan.lifeboat.dev/orders") && l.contains("postgres") && l.contains("1m"))
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("restore.lifeboat.dev/orders-drill") && l.contains("10.0.0.9"))
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("failover.lifeboat.dev/orders-switch") && l.contains("Switchover"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_applies_the_defaults() {
    let cluster = TestCluster::with_crds().await;
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], PLAN).ok);
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], OTHERS).ok);
    let plan: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "rp", "orders", "-o", "json"])).expect("json");
    let spec = &plan["spec"];
    assert_eq!(spec["failover"]["probeInterval"], "1s");
    assert_eq!(spec["failover"]["failureThreshold"], 3);
    assert_eq!(spec["failover"]["mode"], "Automatic");
    assert_eq!(spec["backup"]["compression"]["level"], 3);
    assert_eq!(spec["backup"]["retention"]["keepLast"], 7);
    assert_eq!(spec["backup"]["timeZone"], "UTC");
    assert_eq!(spec["credentialsSecret"]["passwordKey"], "password");
    let backup: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "bk", "orders-manual", "-o", "json"])).expect("json");
    assert_eq!(backup["spec"]["deletionPolicy"], "Retain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_field_descriptions() {
    let cluster = TestCluster::with_crds().await;
    let out = cluster.kubectl_ok(&["explain", "recoveryplan.spec"]);
    assert!(out.contains("objectives"), "{out}");
    assert!(out.contains("What the shop can afford to lose"), "{out}");
    let out = cluster.kubectl_ok(&["explain", "recoveryplan.spec.failover.maxDataLoss"]);
    assert!(out.contains("Largest estimated data loss"), "{out}");
}

/// Applies `PLAN` with one substitution and returns kubectl's error output.
fn refused(cluster: &TestCluster, from: &str, to: &str) -> String {
    let manifest = PLAN.replace(from, to);
    assert_ne!(manifest, PLAN, "substitution {from:?} applies");
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(
        !run.ok,
        "the API server must refuse {to:?}; kubectl said {}",
        run.stdout
    );
    assert!(
        cluster.kubectl(&["get", "rp", "orders"]).stderr.contains("NotFound"),
        "nothing was stored"
    );
    run.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_enum_is_refused_naming_the_field() {
    let cluster = TestCluster::with_crds().await;
    let err = refused(&cluster, "engine: postgres", "engine: oracle");
    assert!(
        err.contains("spec.engine") && err.contains("Unsupported value"),
        "{err}"
    );
    assert!(
        err.contains("\"postgres\"") && err.contains("\"mysql\""),
        "lists the valid values: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_duration_is_refused_naming_the_field() {
    let cluster = TestCluster::with_crds().await;
    let err = refused(&cluster, "rpo: 1m", "rpo: 5 minutes");
    assert!(err.contains("spec.objectives.rpo"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_retention_is_refused_naming_the_field() {
    let cluster = TestCluster::with_crds().await;
    let err = refused(
        &cluster,
        "store: shop-backups}",
        "store: shop-backups, retention: {keepLast: -1}}",
    );
    assert!(err.contains("spec.backup.retention.keepLast"), "{err}");
    assert!(err.contains("greater than or equal to 0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_field_is_refused_naming_the_field() {
    let cluster = TestCluster::with_crds().await;
    let err = refused(&cluster, "  writerService: orders-db\n", "");
    assert!(
        err.contains("spec.writerService") && err.contains("Required value"),
        "{err}"
    );
}
