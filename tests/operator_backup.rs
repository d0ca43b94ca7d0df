//! Scheduled backups through the operator: real PostgreSQL, real garage, kube-sandbox.
//! Completed Backups show in status; retention trims Backup objects and their S3 objects;
//! a Delete-policy Backup takes its objects with it.

use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, ListParams};
use lifeboat::api::{Backup, BackupPhase, RecoveryPlan};
use lifeboat::storage::catalog::list_backups;
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop};
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;

mod pipeline_common;

fn phase(b: &Backup) -> Option<BackupPhase> {
    b.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_complete_and_retention_trims_objects_and_s3() {
    let pg = PgCluster::start(PgOptions {
        replicas: 1,
        ..PgOptions::default()
    })
    .await
    .expect("postgres");
    create_shop(&pg.primary, "shop", ShopSize::SMALL).await.expect("shop");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    register_pod(&client, "default", "db-1", &[("app", "db")], &pg.replicas[0].host()).await;
    let plan = PlanManifest {
        backup: Some(r#"{schedule: "*/2 * * * * *", databases: [shop], retention: {keepLast: 2}}"#),
        objectives: "{rpo: 1m, rto: 1m}",
        ..PlanManifest::default()
    };
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(&plan, Some(&garage)));
    assert!(run.ok, "{}", run.stderr);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let _operator = OperatorProcess::start(&exe, cluster.kubeconfig(), "op", &[("LIFEBOAT_HTTP_ADDR", &address)]);
    let backups: Api<Backup> = Api::default_namespaced(client.clone());
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());

    // Completed backups appear, taken from the replica (preferReplica), and show in the plan.
    let first = wait_until_async("a Completed Backup", Duration::from_secs(60), || async {
        backups
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|b| phase(b) == Some(BackupPhase::Completed))
    })
    .await;
    let status = first.status.clone().expect("status");
    assert_eq!(status.source_member.as_deref(), Some("db-1"), "dumped from the replica");
    assert!(
        status.size_bytes.is_some_and(|s| s > 0) && status.objects.len() == 1 && status.objects[0].sha256.len() == 64
    );
    let first_name = first.metadata.name.clone().expect("name");
    wait_until_async("plan lastBackup", Duration::from_secs(30), || async {
        plans
            .get("shop")
            .await
            .ok()?
            .status?
            .last_backup
            .filter(|b| b.size_bytes.is_some())
    })
    .await;

    // ...and in the metrics.
    let metrics = tokio::task::block_in_place(|| {
        lifeboat_testkit::tools::wait_until("backup metrics", Duration::from_secs(20), || {
            let out = std::process::Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("lifeboat_backup_last_success_timestamp_seconds{namespace=\"default\",plan=\"shop\"}")
                .then_some(text)
        })
    });
    for name in [
        "lifeboat_backup_bytes{",
        "lifeboat_backup_duration_seconds_count{",
        "lifeboat_rpo_target_seconds{",
        "lifeboat_reconcile_runs_total{",
    ] {
        assert!(metrics.contains(name), "{name} exported:\n{metrics}");
    }

    // Retention keeps the newest two: the first one goes, with its S3 objects.
    wait_until_async("first Backup pruned", Duration::from_secs(60), || async {
        backups.get_opt(&first_name).await.ok()?.is_none().then_some(())
    })
    .await;
    let s3 = pipeline_common::garage_store_at_root(&garage).await;
    let catalog = wait_until_async("S3 catalog trimmed too", Duration::from_secs(30), || async {
        let entries = list_backups(&s3, "default", "shop").await.ok()?;
        (!entries.iter().any(|e| e.backup == first_name)).then_some(entries)
    })
    .await;
    assert!(
        !catalog.is_empty() && catalog.len() <= 3,
        "{:?}",
        catalog.iter().map(|e| &e.backup).collect::<Vec<_>>()
    );
    let completed = backups
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|b| phase(b) == Some(BackupPhase::Completed))
        .count();
    assert!(
        completed <= 3,
        "retention keeps 2 (+1 completing meanwhile), saw {completed}"
    );

    // Deleting a Delete-policy Backup deletes its objects; the finalizer then lets it go.
    let victim = catalog[0].backup.clone();
    backups.delete(&victim, &DeleteParams::default()).await.expect("delete");
    wait_until_async("objects deleted with the Backup", Duration::from_secs(30), || async {
        let gone = backups.get_opt(&victim).await.ok()?.is_none();
        let entries = list_backups(&s3, "default", "shop").await.ok()?;
        (gone && !entries.iter().any(|e| e.backup == victim)).then_some(())
    })
    .await;
}
