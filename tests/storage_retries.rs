//! Throttling (503 SlowDown) is retried with backoff: a backup through a proxy that
//! throttles its first connections completes; with retries off it fails.

#[path = "pipeline_common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use lifeboat::pipeline::{BackupError, BackupOptions, BackupRequest, DumpJob, run_backup};
use lifeboat::storage::{BackupKey, RetryPolicy, Store, list_backups};
use lifeboat_testkit::s3::{Garage, ThrottlingProxy};
use tokio::process::Command;

fn request(name: &str) -> BackupRequest {
    let mut dump = Command::new("sh");
    dump.args(["-c", "head -c 3000000 /dev/urandom"]);
    BackupRequest {
        key: BackupKey::new("shop", "orders", name).unwrap(),
        engine: "postgres".into(),
        server_version: "15".into(),
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "orders".into(),
            format: "pgdump".into(),
            command: dump,
        }],
    }
}

#[tokio::test]
async fn throttled_requests_are_retried_until_they_pass() {
    let garage = Garage::start().unwrap();
    let proxy = ThrottlingProxy::start(&garage.host(), garage.port(), 3).unwrap();
    let mut config = garage_config(&garage);
    config.endpoint = Some(proxy.endpoint());
    config.retry = RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(2),
    };
    let store = Store::connect(config).await.unwrap();
    let manifest = run_backup(&store, request("b1"), &BackupOptions::default())
        .await
        .unwrap();
    let direct = garage_store(&garage).await;
    assert_eq!(
        list_backups(&direct, "shop", "orders").await.unwrap()[0].manifest,
        manifest
    );
}

#[tokio::test]
async fn without_retries_throttling_fails_the_backup() {
    let garage = Garage::start().unwrap();
    let proxy = ThrottlingProxy::start(&garage.host(), garage.port(), 1).unwrap();
    let mut config = garage_config(&garage);
    config.endpoint = Some(proxy.endpoint());
    config.retry.max_attempts = 1;
    let store = Store::connect(config).await.unwrap();
    let err = run_backup(&store, request("b1"), &BackupOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::Upload { .. }), "{err}");
    assert!(err.to_string().contains("SlowDown"), "{err}");
}
