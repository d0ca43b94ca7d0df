//! End to end under infrastructure trouble: S3 going away during a scheduled backup, and
//! the Kubernetes API server (kube-sandbox) restarting while the operator runs.

use std::path::PathBuf;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use lifeboat::api::{Backup, BackupPhase, Failover, FailoverPhase, RecoveryPlan};
use lifeboat::storage::catalog::list_backups;

mod pipeline_common;
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop};
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

fn phase(b: &Backup) -> Option<BackupPhase> {
    b.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_during_a_scheduled_backup_then_recovery() {
    let pg = PgCluster::start(PgOptions::default()).await.expect("postgres");
    // Big enough that a backup is still running when S3 goes away.
    create_shop(&pg.primary, "shop", ShopSize::for_bytes(200 * 1024 * 1024))
        .await
        .expect("shop");
    let mut garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    let plan = PlanManifest {
        backup: Some(r#"{schedule: "*/5 * * * * *", databases: [shop], compression: {level: 1}}"#),
        ..PlanManifest::default()
    };
    assert!(
        cluster
            .kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(&plan, Some(&garage)))
            .ok
    );
    let _operator = OperatorProcess::start(&exe(), cluster.kubeconfig(), "op", &[]);
    let backups: Api<Backup> = Api::default_namespaced(client.clone());

    let running = wait_until_async("a scheduled Backup Running", Duration::from_secs(60), || async {
        backups
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|b| phase(b) == Some(BackupPhase::Running))?
            .metadata
            .name
    })
    .await;
    garage.stop();
    let failed = wait_until_async("the Backup fails cleanly", Duration::from_secs(120), || async {
        let s = backups.get(&running).await.ok()?.status?;
        matches!(s.phase, Some(BackupPhase::Failed | BackupPhase::Completed)).then_some(s)
    })
    .await;
    assert_eq!(
        failed.phase,
        Some(BackupPhase::Failed),
        "never Completed without its objects"
    );
    assert!(failed.manifest_key.is_none());
    println!("failed backup message: {}", failed.message.clone().unwrap_or_default());

    tokio::task::block_in_place(|| garage.restart()).expect("garage back");
    let completed = wait_until_async(
        "the next scheduled Backup completes",
        Duration::from_secs(120),
        || async {
            backups
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|b| phase(b) == Some(BackupPhase::Completed))
        },
    )
    .await;
    let store = pipeline_common::garage_store_at_root(&garage).await;
    let catalog = list_backups(&store, "default", "shop").await.expect("catalog");
    assert!(
        catalog
            .iter()
            .any(|e| Some(&e.backup) == completed.metadata.name.as_ref()),
        "the completed backup has its manifest"
    );
    assert!(
        !catalog.iter().any(|e| e.backup == running),
        "the failed backup left no manifest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_in_steady_state_then_failover() {
    let mut pg = PgCluster::start(PgOptions {
        replicas: 1,
        ..PgOptions::default()
    })
    .await
    .expect("postgres");
    let mut cluster = TestCluster::start_with_state().await;
    cluster.apply_crds();
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    register_pod(&client, "default", "db-1", &[("app", "db")], &pg.replicas[0].host()).await;
    assert!(
        cluster
            .kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(&PlanManifest::default(), None))
            .ok
    );
    let _operator = OperatorProcess::start(&exe(), cluster.kubeconfig(), "op", &[("LIFEBOAT_LEASE_SECONDS", "15")]);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    let ready = || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(s.members.len())
    };
    wait_until_async("plan Ready", Duration::from_secs(60), ready).await;

    // The API server restarts, keeping its objects; the operator's watches reconnect.
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(cluster.sandbox.restart()))
        .expect("restart");
    let client = cluster.sandbox.client().await;
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    assert!(plans.get("shop").await.is_ok(), "objects survived the restart");

    // The operator carries on: it still detects a dead primary and fails over.
    pg.primary.stop_immediate().await.expect("kill primary");
    let failovers: Api<Failover> = Api::default_namespaced(client.clone());
    let status = wait_until_async("failover after the API restart", Duration::from_secs(90), || async {
        let s = failovers
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()?
            .status?;
        matches!(
            s.phase,
            Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
        )
        .then_some(s)
    })
    .await;
    assert_eq!(status.phase, Some(FailoverPhase::Completed), "{:?}", status.message);
    assert!(
        !pg.replicas[0]
            .query_one::<bool>("SELECT pg_is_in_recovery()")
            .await
            .expect("query")
    );
}
