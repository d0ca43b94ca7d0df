//! Object Lock and SSE (moto, since garage ignores both): uploads carry the store's
//! retention and encryption, and a locked backup survives a prune, reported as kept.

#[path = "pipeline_common/mod.rs"]
mod common;

use common::*;
use lifeboat::api::backup_store::{ObjectLock, ObjectLockMode, ServerSideEncryption, SseMode};
use lifeboat::api::recovery_plan::Retention;
use lifeboat::pipeline::{BackupOptions, BackupRequest, DumpJob, run_backup};
use lifeboat::policy::retention::{BackupAt, select};
use lifeboat::storage::{BackupKey, Store, list_backups, prune_backups};
use lifeboat_testkit::s3::Moto;
use tokio::process::Command;

fn generator(bytes: u64) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("head -c {bytes} /dev/urandom")]);
    cmd
}

async fn backup(store: &Store, name: &str) {
    let request = BackupRequest {
        key: BackupKey::new("shop", "orders", name).unwrap(),
        engine: "postgres".into(),
        server_version: "15".into(),
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "orders".into(),
            format: "pgdump".into(),
            command: generator(6 << 20),
        }],
    };
    run_backup(
        store,
        request,
        &BackupOptions {
            parts_in_flight: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn locked_backup_survives_prune_and_is_reported_kept() {
    let moto = Moto::start().unwrap();
    let plain = Store::connect(moto_config(&moto, "locked-backups")).await.unwrap();
    plain
        .client()
        .create_bucket()
        .bucket("locked-backups")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let mut locked_config = moto_config(&moto, "locked-backups");
    locked_config.object_lock = Some(ObjectLock {
        mode: ObjectLockMode::Governance,
        retain_days: 1,
    });
    locked_config.server_side_encryption = Some(ServerSideEncryption {
        mode: SseMode::AwsKms,
        kms_key_id: Some("lifeboat-test-key".into()),
    });
    let locked = Store::connect(locked_config).await.unwrap();

    backup(&plain, "a-old-unlocked").await;
    backup(&locked, "b-locked").await;
    backup(&plain, "c-newest").await;

    let catalog = list_backups(&plain, "shop", "orders").await.unwrap();
    let locked_manifest = &catalog.iter().find(|e| e.backup == "b-locked").unwrap().manifest;
    let object = &locked_manifest.objects[0];
    let head = plain
        .client()
        .head_object()
        .bucket("locked-backups")
        .key(&object.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
    assert_eq!(head.ssekms_key_id(), Some("lifeboat-test-key"));
    assert_eq!(head.object_lock_mode().map(|m| m.as_str()), Some("GOVERNANCE"));
    assert!(head.object_lock_retain_until_date().unwrap().secs() > chrono::Utc::now().timestamp());

    let entries: Vec<BackupAt> = catalog
        .iter()
        .map(|e| BackupAt {
            name: e.backup.clone(),
            completed_at: e.manifest.completed_at,
        })
        .collect();
    let keep_only_newest = Retention {
        keep_last: 0,
        keep_hourly: 0,
        keep_daily: 0,
        keep_weekly: 0,
        keep_monthly: 0,
    };
    let decision = select(&entries, &keep_only_newest);
    assert_eq!(
        decision.delete,
        vec!["b-locked".to_string(), "a-old-unlocked".to_string()]
    );

    let report = prune_backups(&plain, "shop", "orders", &decision.delete).await.unwrap();
    assert_eq!(report.deleted, vec!["a-old-unlocked".to_string()]);
    assert_eq!(report.kept_locked.len(), 1);
    assert_eq!(report.kept_locked[0].backup, "b-locked");
    assert!(report.kept_locked[0].locked_until.unwrap() > chrono::Utc::now());

    let left: Vec<String> = list_backups(&plain, "shop", "orders")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.backup)
        .collect();
    assert_eq!(left, vec!["c-newest".to_string(), "b-locked".to_string()]);
    // The locked backup is still whole: its object matches the manifest.
    assert_eq!(
        stored_sha256(&plain, &object.key).await,
        (object.sha256.clone(), object.size)
    );
}

#[tokio::test]
async fn aes256_server_side_encryption_is_requested_on_every_object() {
    let moto = Moto::start().unwrap();
    let mut config = moto_config(&moto, "sse-backups");
    config.server_side_encryption = Some(ServerSideEncryption {
        mode: SseMode::Aes256,
        kms_key_id: None,
    });
    config.storage_class = Some("STANDARD_IA".into());
    let store = Store::connect(config).await.unwrap();
    store
        .client()
        .create_bucket()
        .bucket("sse-backups")
        .send()
        .await
        .unwrap();
    backup(&store, "b1").await;
    let keys = keys_under(&store, "shop/orders/b1/").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let head = store
            .client()
            .head_object()
            .bucket("sse-backups")
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("AES256"),
            "{key}"
        );
        assert_eq!(head.storage_class().map(|s| s.as_str()), Some("STANDARD_IA"), "{key}");
    }
}
