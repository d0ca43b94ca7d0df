//! PostgreSQL shop databases through the pipeline: pg_dump -> zstd -> (age) -> garage,
//! and back through pg_restore into fresh servers.

#[path = "pipeline_common/mod.rs"]
mod common;

use age::secrecy::ExposeSecret;
use common::*;
use lifeboat::pipeline::{
    BackupError, BackupOptions, BackupRequest, DumpJob, RestoreError, RestoreOptions, Verification, parse_identities,
    restore_object, run_backup,
};
use lifeboat::storage::{BackupKey, Manifest, Store, list_backups};
use lifeboat_testkit::pg::shop::{ShopSize, create_shop, table_sums};
use lifeboat_testkit::pg::{self, PgCluster, PgOptions, PgServer};
use lifeboat_testkit::s3::Garage;

async fn backup_shop(store: &Store, source: &PgServer, name: &str, options: &BackupOptions) -> Manifest {
    let (command, snapshot) = engine_pg_dump(source, "shop").await;
    let request = BackupRequest {
        key: BackupKey::new("shop", "orders", name).unwrap(),
        engine: "postgres".into(),
        server_version: source.query_one::<String>("SHOW server_version").await.unwrap(),
        // The LSN of the snapshot the engine exported for pg_dump.
        consistent_position: snapshot.position.as_ref().map(ToString::to_string),
        jobs: vec![DumpJob {
            database: "shop".into(),
            format: "pgdump".into(),
            command,
        }],
    };
    let manifest = run_backup(store, request, options).await.unwrap();
    // The exported snapshot pg_dump used stays open until here.
    drop(snapshot);
    manifest
}

async fn fresh_target() -> PgCluster {
    let target = PgCluster::start(PgOptions::default()).await.unwrap();
    target.primary.execute("CREATE DATABASE shop").await.unwrap();
    target
}

async fn public_tables(server: &PgServer) -> i64 {
    let client = server.connect_db("shop").await.unwrap();
    client
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap()
        .get(0)
}

async fn round_trip(encrypt: bool) {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let source = PgCluster::start(PgOptions::default()).await.unwrap();
    create_shop(&source.primary, "shop", ShopSize::SMALL).await.unwrap();
    let identity = age::x25519::Identity::generate();
    let mut options = BackupOptions::default();
    if encrypt {
        options.recipients = vec![identity.to_public()];
    }
    let manifest = backup_shop(&store, &source.primary, "b1", &options).await;

    // The manifest describes exactly what is stored.
    assert_eq!(manifest.engine, "postgres");
    assert!(manifest.server_version.starts_with("15"));
    assert_eq!(manifest.encryption.is_some(), encrypt);
    assert!(manifest.consistent_position.is_some());
    let object = &manifest.objects[0];
    assert_eq!(object.key.ends_with(".pgdump.zst.age"), encrypt, "{}", object.key);
    assert_eq!(
        stored_sha256(&store, &object.key).await,
        (object.sha256.clone(), object.size)
    );
    assert!(object.raw_size > object.size, "the dump was compressed");
    let listed = list_backups(&store, "shop", "orders").await.unwrap();
    assert_eq!(listed[0].manifest, manifest);

    let target = fresh_target().await;
    let identities = parse_identities(identity.to_string().expose_secret()).unwrap();
    let restore = RestoreOptions {
        identities,
        verification: Verification::Streaming,
    };
    let stats = restore_object(&store, object, engine_pg_restore(&target.primary, "shop").0, &restore)
        .await
        .unwrap();
    assert_eq!(stats.raw_bytes, object.raw_size);
    assert_eq!(
        table_sums(&target.primary, "shop").await.unwrap(),
        table_sums(&source.primary, "shop").await.unwrap()
    );
}

#[tokio::test]
async fn pg_shop_round_trips_through_garage() {
    round_trip(false).await;
}

#[tokio::test]
async fn pg_shop_round_trips_with_age_encryption() {
    round_trip(true).await;
}

#[tokio::test]
async fn flipped_byte_fails_with_checksum_error_and_target_untouched() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let source = PgCluster::start(PgOptions::default()).await.unwrap();
    create_shop(&source.primary, "shop", ShopSize::SMALL).await.unwrap();
    let manifest = backup_shop(&store, &source.primary, "b1", &BackupOptions::default()).await;
    let object = &manifest.objects[0];
    flip_middle_byte(&store, &object.key).await;

    let target = fresh_target().await;
    let restore = RestoreOptions {
        identities: vec![],
        verification: Verification::Streaming,
    };
    let err = restore_object(&store, object, engine_pg_restore(&target.primary, "shop").0, &restore)
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&object.sha256), "{err}");
    assert_eq!(public_tables(&target.primary).await, 0, "no partial restore is visible");
}

#[tokio::test]
async fn failing_dump_reports_its_stderr_and_stores_nothing() {
    let garage = Garage::start().unwrap();
    let store = garage_store(&garage).await;
    let source = PgCluster::start(PgOptions::default()).await.unwrap();
    create_shop(&source.primary, "shop", ShopSize::SMALL).await.unwrap();
    let mut dump = tokio::process::Command::new(pg::bin_dir().join("pg_dump"));
    dump.args([
        "-Fc",
        "-Z0",
        "-h",
        &source.primary.host(),
        "-U",
        pg::PASSWORD_USER,
        "-d",
        "shop",
    ])
    .env("PGPASSWORD", "wrong-password");
    let request = BackupRequest {
        key: BackupKey::new("shop", "orders", "bad").unwrap(),
        engine: "postgres".into(),
        server_version: "15".into(),
        consistent_position: None,
        jobs: vec![DumpJob {
            database: "shop".into(),
            format: "pgdump".into(),
            command: dump,
        }],
    };
    let err = run_backup(&store, request, &BackupOptions::default())
        .await
        .unwrap_err();
    match &err {
        BackupError::DumpFailed { stderr, .. } => {
            assert!(stderr.contains("password authentication failed"), "{stderr}")
        }
        other => panic!("expected DumpFailed, got {other}"),
    }
    assert!(err.to_string().contains("password authentication failed"));
    assert_eq!(keys_under(&store, "backups/").await, Vec::<String>::new());
    assert_eq!(uploads_under(&store, "backups/").await, 0);
}
