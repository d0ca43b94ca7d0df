//! Restore through the operator: a Backup restored into a fresh PostgreSQL server with
//! passing checks; a failing check fails the Restore naming it; an existing database is
//! never overwritten.

use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use lifeboat::api::{Backup, BackupPhase, Restore, RestorePhase};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop, table_sums};
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;

fn setup(garage: &Garage) -> String {
    let plan = PlanManifest {
        backup: Some(r#"{schedule: "@yearly", databases: [shop]}"#),
        objectives: "{rpo: 1h, rto: 1h}",
        ..PlanManifest::default()
    };
    plan_manifest(&plan, Some(garage))
        + "---\napiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {name: manual}\nspec: {plan: shop}\n"
}

fn restore(name: &str, host: &str, checks: &str, renames: &str) -> Restore {
    serde_yaml::from_str(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Restore\nmetadata: {{name: {name}}}\nspec:\n  backup: manual\n  target: {{host: '{host}', credentialsSecret: {{name: db-credentials}}}}\n  checks: {checks}\n  renames: {renames}\n"
    ))
    .expect("restore yaml")
}

async fn finished(api: &Api<Restore>, name: &str) -> lifeboat::api::RestoreStatus {
    wait_until_async(&format!("Restore {name} finished"), Duration::from_secs(90), || async {
        let s = api.get(name).await.ok()?.status?;
        matches!(s.phase, Some(RestorePhase::Completed | RestorePhase::Failed)).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_with_checks_into_a_fresh_server() {
    let source = PgCluster::start(PgOptions::default()).await.expect("source");
    create_shop(&source.primary, "shop", ShopSize::SMALL)
        .await
        .expect("shop");
    let target = PgCluster::start(PgOptions::default()).await.expect("target");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &source.primary.host()).await;
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &setup(&garage));
    assert!(run.ok, "{}", run.stderr);
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let _operator = OperatorProcess::start(&exe, cluster.kubeconfig(), "op", &[]);

    let backups: Api<Backup> = Api::default_namespaced(client.clone());
    wait_until_async("Backup Completed", Duration::from_secs(60), || async {
        backups
            .get("manual")
            .await
            .ok()?
            .status?
            .phase
            .filter(|p| *p == BackupPhase::Completed)
    })
    .await;

    let restores: Api<Restore> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    let good = restore(
        "good",
        &target.primary.host(),
        r#"[{name: orders, database: shop, sql: "select count(*) from orders", expect: "1000"}]"#,
        "[]",
    );
    restores.create(&pp, &good).await.expect("create");
    let status = finished(&restores, "good").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{:?}", status.message);
    assert!(
        status.checks.iter().all(|c| c.passed) && status.checks.len() == 1,
        "{:?}",
        status.checks
    );
    assert!(status.bytes.is_some_and(|b| b > 0) && status.duration_seconds.is_some());
    let want = table_sums(&source.primary, "shop").await.expect("source sums");
    let got = table_sums(&target.primary, "shop").await.expect("target sums");
    assert_eq!(got, want, "row counts and per-table checksums equal the source");

    // Into a renamed database, with a failing check: Failed, naming the check.
    let bad = restore(
        "bad",
        &target.primary.host(),
        r#"[{name: no-orders-lost, database: shop_copy, sql: "select count(*) from orders", expect: "999"}]"#,
        "[{from: shop, to: shop_copy}]",
    );
    restores.create(&pp, &bad).await.expect("create");
    let status = finished(&restores, "bad").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("no-orders-lost") && message.contains("999") && message.contains("1000"),
        "{message}"
    );

    // The same database again: refused, nothing overwritten.
    let again = restore("again", &target.primary.host(), "[]", "[]");
    restores.create(&pp, &again).await.expect("create");
    let status = finished(&restores, "again").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    assert!(status.message.unwrap_or_default().contains("already exists"));
    assert_eq!(table_sums(&target.primary, "shop").await.expect("sums"), want);
}
