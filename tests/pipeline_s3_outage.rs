//! S3 stops mid-upload: the backup fails cleanly (no manifest), the clean-up leaves
//! no multipart upload behind, and once S3 is back the next backup succeeds.

#[path = "pipeline_common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use lifeboat::pipeline::{BackupError, BackupOptions, BackupRequest, DumpJob, run_backup};
use lifeboat::storage::multipart::PartSizing;
use lifeboat::storage::{BackupKey, abort_orphaned_uploads, list_backups};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;
use tokio::process::Command;

/// Writes 12 MiB, waits for `gate` to exist, then writes 12 MiB more: the test
/// decides exactly when the second half flows.
fn gated_dump(gate: &std::path::Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!(
            "head -c 12582912 /dev/urandom; while [ ! -e '{}' ]; do sleep 0.02; done; head -c 12582912 /dev/urandom",
            gate.display()
        ),
    ]);
    cmd
}

fn request(name: &str, command: Command) -> BackupRequest {
    BackupRequest {
        key: BackupKey::new("shop", "orders", name).unwrap(),
        engine: "postgres".into(),
        server_version: "15".into(),
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "orders".into(),
            format: "pgdump".into(),
            command,
        }],
    }
}

fn options() -> BackupOptions {
    BackupOptions {
        part_sizing: PartSizing {
            initial: 5 << 20,
            max_parts: 10_000,
        },
        parts_in_flight: 2,
        ..Default::default()
    }
}

async fn parts_uploaded(store: &lifeboat::storage::Store) -> Option<()> {
    let uploads = store
        .client()
        .list_multipart_uploads()
        .bucket(store.bucket())
        .prefix("backups/")
        .send()
        .await
        .ok()?;
    let upload = uploads.uploads().first()?;
    let parts = store
        .client()
        .list_parts()
        .bucket(store.bucket())
        .key(upload.key()?)
        .upload_id(upload.upload_id()?)
        .send()
        .await
        .ok()?;
    (!parts.parts().is_empty()).then_some(())
}

#[tokio::test]
async fn s3_outage_mid_upload_fails_cleanly_and_the_next_backup_succeeds() {
    let mut garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("go");

    let backup = {
        let store = store.clone();
        let command = gated_dump(&gate);
        tokio::spawn(async move { run_backup(&store, request("during-outage", command), &options()).await })
    };
    wait_until_async("a part of the backup to reach S3", Duration::from_secs(60), || {
        parts_uploaded(&store)
    })
    .await;
    garage.stop();
    std::fs::write(&gate, b"").unwrap();

    let err = backup.await.unwrap().unwrap_err();
    assert!(matches!(err, BackupError::Upload { .. }), "{err}");

    garage.restart().unwrap();
    assert!(
        list_backups(&store, "shop", "orders").await.unwrap().is_empty(),
        "no manifest, no backup"
    );
    assert!(
        keys_under(&store, "backups/shop/orders/during-outage/")
            .await
            .iter()
            .all(|k| !k.ends_with("manifest.json"))
    );
    // The abort could not reach S3 while it was down: the clean-up removes the upload.
    abort_orphaned_uploads(&store, "backups/", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(uploads_under(&store, "backups/").await, 0);

    let mut small = Command::new("sh");
    small.args(["-c", "head -c 7000000 /dev/urandom"]);
    let manifest = run_backup(&store, request("after-outage", small), &options())
        .await
        .unwrap();
    let listed: Vec<String> = list_backups(&store, "shop", "orders")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.backup)
        .collect();
    assert_eq!(listed, vec!["after-outage".to_string()]);
    let object = &manifest.objects[0];
    assert_eq!(
        stored_sha256(&store, &object.key).await,
        (object.sha256.clone(), object.size)
    );
}
