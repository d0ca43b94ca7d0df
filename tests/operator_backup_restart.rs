//! An operator that dies during a backup: its successor marks that Backup Failed with a
//! reason (never Completed), and the next scheduled backup completes.

use std::path::PathBuf;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use lifeboat::api::{Backup, BackupPhase};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop};
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_backup_is_failed_and_the_schedule_retries() {
    let pg = PgCluster::start(PgOptions::default()).await.expect("postgres");
    create_shop(&pg.primary, "shop", ShopSize::SMALL).await.expect("shop");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    let manifest = plan_manifest(
        &PlanManifest {
            backup: Some(r#"{schedule: "*/3 * * * * *", databases: [shop]}"#),
            ..PlanManifest::default()
        },
        Some(&garage),
    );
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let mut first = OperatorProcess::start(
        &exe,
        cluster.kubeconfig(),
        "op-a",
        &[("LIFEBOAT_TEST_CRASH_DURING_BACKUP", "1")],
    );
    let backups: Api<Backup> = Api::default_namespaced(client.clone());
    let interrupted = wait_until_async("a Backup left Running", Duration::from_secs(60), || async {
        let b = backups
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Running))?;
        b.metadata.name
    })
    .await;
    first.kill();

    let _second = OperatorProcess::start(&exe, cluster.kubeconfig(), "op-b", &[]);
    let failed = wait_until_async("interrupted Backup marked Failed", Duration::from_secs(60), || async {
        let s = backups.get(&interrupted).await.ok()?.status?;
        (s.phase == Some(BackupPhase::Failed)).then_some(s)
    })
    .await;
    assert!(failed.message.unwrap_or_default().contains("restarted"));
    wait_until_async(
        "the next scheduled backup completes",
        Duration::from_secs(60),
        || async {
            backups
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
        },
    )
    .await;
}
