//! MariaDB shop databases through the pipeline: mariadb-dump -> zstd -> (age) -> garage,
//! and back through the mariadb client into fresh servers.
//!
//! MariaDB's guarantee on corruption: a SQL dump commits statement by statement, so the
//! object is spooled and verified before the client receives a single byte
//! (`Verification::BeforeRestore`).

#[path = "pipeline_common/mod.rs"]
mod common;

use age::secrecy::ExposeSecret;
use common::*;
use lifeboat::pipeline::{
    BackupError, BackupOptions, BackupRequest, DumpJob, RestoreError, RestoreOptions, Verification, parse_identities,
    restore_object, run_backup,
};
use lifeboat::storage::{BackupKey, Manifest, Store};
use lifeboat_testkit::mariadb::shop::{ShopSize, create_shop, table_sums};
use lifeboat_testkit::mariadb::{self, MariaCluster, MariaOptions, MariaServer};
use lifeboat_testkit::s3::Garage;

async fn backup_shop(store: &Store, source: &MariaServer, options: &BackupOptions) -> Manifest {
    let (command, credentials_file) = engine_mariadb_dump(source, "shop").await;
    let request = BackupRequest {
        key: BackupKey::new("shop", "catalog", "b1").unwrap(),
        engine: "mysql".into(),
        server_version: source.query_one::<String>("SELECT VERSION()").await.unwrap(),
        // Left to the pipeline: MariaDB writes it near the end of the dump.
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "shop".into(),
            format: "sql".into(),
            command,
        }],
    };
    let manifest = run_backup(store, request, options).await.unwrap();
    drop(credentials_file);
    manifest
}

fn spool() -> (tempfile::TempDir, RestoreOptions) {
    let dir = tempfile::tempdir().unwrap();
    let options = RestoreOptions {
        identities: vec![],
        verification: Verification::BeforeRestore {
            spool_dir: dir.path().to_path_buf(),
        },
    };
    (dir, options)
}

async fn round_trip(encrypt: bool) {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let source = MariaCluster::start(MariaOptions::default()).await.unwrap();
    create_shop(&source.primary, "shop", ShopSize::SMALL).await.unwrap();
    let identity = age::x25519::Identity::generate();
    let mut options = BackupOptions::default();
    if encrypt {
        options.recipients = vec![identity.to_public()];
    }
    let gtid = source
        .primary
        .query_one::<String>("SELECT @@gtid_binlog_pos")
        .await
        .unwrap();
    let manifest = backup_shop(&store, &source.primary, &options).await;
    assert_eq!(manifest.engine, "mysql");
    assert_eq!(
        manifest.consistent_position.as_deref(),
        Some(gtid.as_str()),
        "the GTID read from the dump's tail"
    );
    let object = &manifest.objects[0];
    assert_eq!(
        stored_sha256(&store, &object.key).await,
        (object.sha256.clone(), object.size)
    );

    let target = MariaCluster::start(MariaOptions::default()).await.unwrap();
    let (spool_dir, mut restore) = spool();
    restore.identities = parse_identities(identity.to_string().expose_secret()).unwrap();
    target.primary.execute("CREATE DATABASE shop").await.unwrap();
    let (command, credentials_file) = engine_mariadb_restore(&target.primary, "shop");
    restore_object(&store, object, command, &restore).await.unwrap();
    drop(credentials_file);
    assert_eq!(
        table_sums(&target.primary, "shop").await.unwrap(),
        table_sums(&source.primary, "shop").await.unwrap()
    );
    assert_eq!(
        std::fs::read_dir(spool_dir.path()).unwrap().count(),
        0,
        "spool file removed"
    );
}

#[tokio::test]
async fn mariadb_shop_round_trips_through_garage() {
    round_trip(false).await;
}

#[tokio::test]
async fn mariadb_shop_round_trips_with_age_encryption() {
    round_trip(true).await;
}

#[tokio::test]
async fn flipped_byte_is_caught_before_the_client_sees_any_sql() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let source = MariaCluster::start(MariaOptions::default()).await.unwrap();
    create_shop(&source.primary, "shop", ShopSize::SMALL).await.unwrap();
    let manifest = backup_shop(&store, &source.primary, &BackupOptions::default()).await;
    let object = &manifest.objects[0];
    flip_middle_byte(&store, &object.key).await;

    let target = MariaCluster::start(MariaOptions::default()).await.unwrap();
    let (_spool_dir, restore) = spool();
    target.primary.execute("CREATE DATABASE shop").await.unwrap();
    let (command, _credentials_file) = engine_mariadb_restore(&target.primary, "shop");
    let err = restore_object(&store, object, command, &restore).await.unwrap_err();
    assert!(matches!(err, RestoreError::Corrupt { .. }), "{err}");
    let tables: i64 = target
        .primary
        .query_one("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'")
        .await
        .unwrap();
    assert_eq!(tables, 0, "the target holds nothing of the corrupt backup");
}

#[tokio::test]
async fn failing_dump_reports_its_stderr_and_stores_nothing() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let source = MariaCluster::start(MariaOptions::default()).await.unwrap();
    let mut dump = tokio::process::Command::new("mariadb-dump");
    dump.args([
        "--no-defaults",
        "-h",
        &source.primary.host(),
        "-u",
        mariadb::PASSWORD_USER,
        "-pwrong-password",
    ])
    .args(["--databases", "mysql"]);
    let request = BackupRequest {
        key: BackupKey::new("shop", "catalog", "bad").unwrap(),
        engine: "mysql".into(),
        server_version: "10.11".into(),
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "mysql".into(),
            format: "sql".into(),
            command: dump,
        }],
    };
    let err = run_backup(&store, request, &BackupOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::DumpFailed { .. }), "{err}");
    assert!(err.to_string().contains("Access denied"), "{err}");
    assert_eq!(keys_under(&store, "backups/").await, Vec::<String>::new());
    assert_eq!(uploads_under(&store, "backups/").await, 0);
}
