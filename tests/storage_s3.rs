//! The S3 store against a real garage: round-trip check and its failure reasons,
//! streaming multipart upload and read-back, catalog from S3 alone, orphan clean-up.

#[path = "pipeline_common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use lifeboat::pipeline::{BackupOptions, BackupRequest, DumpJob, run_backup};
use lifeboat::storage::check::CheckReason;
use lifeboat::storage::multipart::PartSizing;
use lifeboat::storage::{
    BackupKey, MultipartUpload, StaticCredentials, Store, abort_orphaned_uploads, check_store, list_backups,
};
use lifeboat_testkit::net;
use lifeboat_testkit::s3::Garage;
use tokio::process::Command;

fn generator(bytes: u64) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("head -c {bytes} /dev/urandom")]);
    cmd
}

#[tokio::test]
async fn store_check_passes_and_names_each_failure() {
    let garage = Garage::start().unwrap();
    check_store(&garage_store(&garage).await).await.unwrap();

    let mut wrong_secret = garage_config(&garage);
    wrong_secret.credentials = Some(StaticCredentials {
        access_key_id: garage.access_key().into(),
        secret_access_key: "0".repeat(64),
    });
    let err = check_store(&Store::connect(wrong_secret).await.unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.reason, CheckReason::BadCredentials, "{err}");

    let mut unknown_key = garage_config(&garage);
    unknown_key.credentials = Some(StaticCredentials {
        access_key_id: "GK000000000000000000000000".into(),
        secret_access_key: "0".repeat(64),
    });
    let err = check_store(&Store::connect(unknown_key).await.unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.reason, CheckReason::BadCredentials, "{err}");

    let mut no_bucket = garage_config(&garage);
    no_bucket.bucket = "no-such-bucket".into();
    let err = check_store(&Store::connect(no_bucket).await.unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.reason, CheckReason::NoSuchBucket, "{err}");

    // garage speaks plain HTTP: an https client fails in the TLS handshake.
    let mut tls = garage_config(&garage);
    tls.endpoint = Some(format!("https://{}:{}", garage.host(), garage.port()));
    let err = check_store(&Store::connect(tls).await.unwrap()).await.unwrap_err();
    assert_eq!(err.reason, CheckReason::TlsError, "{err}");

    // A held address where nothing listens.
    let nothing = net::allocate(3900).unwrap();
    let mut unreachable = garage_config(&garage);
    unreachable.endpoint = Some(format!("http://{}:3900", nothing.host()));
    let err = check_store(&Store::connect(unreachable).await.unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.reason, CheckReason::Unreachable, "{err}");
}

#[tokio::test]
async fn bad_ca_bundle_is_refused_with_the_field_named() {
    let mut config = StoreConfig::new("b");
    config.ca_bundle_pem = Some(b"not a certificate".to_vec());
    let err = Store::connect(config).await.unwrap_err();
    assert!(err.to_string().starts_with("caBundle"), "{err}");
}

use lifeboat::storage::StoreConfig;

#[tokio::test]
async fn multipart_upload_streams_parts_and_reads_back_identical() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let sizing = PartSizing {
        initial: 5 << 20,
        max_parts: 10_000,
    };
    let mut upload = MultipartUpload::create(&store, "t/blob", "application/octet-stream", 2)
        .await
        .unwrap();
    let data: Vec<u8> = (0..(12u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for chunk in data.chunks(sizing.part_size(1)) {
        upload.send_part(bytes::Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(upload.complete().await.unwrap(), data.len() as u64);
    let (sha, size) = stored_sha256(&store, "t/blob").await;
    assert_eq!(size, data.len() as u64);
    use sha2::Digest;
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(&data)));
    assert_eq!(uploads_under(&store, "t/").await, 0);
}

#[tokio::test]
async fn catalog_lists_completed_backups_newest_first_from_s3_alone() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    for name in ["first", "second", "third"] {
        let request = BackupRequest {
            key: BackupKey::new("shop", "orders", name).unwrap(),
            engine: "postgres".into(),
            server_version: "15".into(),
            consistent_position: Some("0/1".into()),
            jobs: vec![DumpJob {
                database: "db".into(),
                format: "pgdump".into(),
                command: generator(1000),
            }],
        };
        run_backup(&store, request, &BackupOptions::default()).await.unwrap();
    }
    // A folder without a manifest (a failed or running backup) is not a backup.
    store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key("backups/shop/orders/unfinished/db.pgdump.zst")
        .body(b"partial".to_vec().into())
        .send()
        .await
        .unwrap();
    // Another plan's backups are not listed.
    let other = BackupRequest {
        key: BackupKey::new("shop", "catalog", "x").unwrap(),
        engine: "mysql".into(),
        server_version: "10.11".into(),
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "db".into(),
            format: "sql".into(),
            command: generator(10),
        }],
    };
    run_backup(&store, other, &BackupOptions::default()).await.unwrap();

    // A fresh client, as a new cluster after a disaster would have.
    let fresh = garage_store(&garage).await;
    let names: Vec<String> = list_backups(&fresh, "shop", "orders")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.backup)
        .collect();
    assert_eq!(names, vec!["third", "second", "first"]);
    let entry = &list_backups(&fresh, "shop", "orders").await.unwrap()[0];
    assert_eq!(entry.manifest.objects[0].raw_size, 1000);
    assert_eq!(entry.manifest.consistent_position.as_deref(), Some("0/1"));
}

#[tokio::test]
async fn orphaned_multipart_uploads_are_aborted() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let mut upload = MultipartUpload::create(&store, "backups/shop/p/b/db.zst", "application/octet-stream", 1)
        .await
        .unwrap();
    upload.send_part(bytes::Bytes::from(vec![7u8; 5 << 20])).await.unwrap();
    while upload.next_finished().await.unwrap().is_some() {}
    std::mem::drop(upload); // a crashed backup: never completed nor aborted
    assert_eq!(uploads_under(&store, "backups/").await, 1);
    // Uploads younger than the threshold are left alone (a backup may be running).
    assert!(
        abort_orphaned_uploads(&store, "backups/", Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    let aborted = abort_orphaned_uploads(&store, "backups/", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(aborted, vec!["backups/shop/p/b/db.zst".to_string()]);
    assert_eq!(uploads_under(&store, "backups/").await, 0);
}

#[tokio::test]
async fn custom_ca_bundle_is_trusted_and_its_absence_is_a_tls_error() {
    let garage = Garage::start().unwrap();
    let proxy = lifeboat_testkit::s3::TlsProxy::start(&garage.host(), garage.port()).unwrap();
    let mut untrusted = garage_config(&garage);
    untrusted.endpoint = Some(proxy.endpoint());
    let err = check_store(&Store::connect(untrusted.clone()).await.unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.reason, CheckReason::TlsError, "{err}");

    let mut trusted = untrusted;
    trusted.ca_bundle_pem = Some(proxy.ca_pem());
    check_store(&Store::connect(trusted).await.unwrap()).await.unwrap();
}
