//! Helpers shared by the storage and pipeline tests: stores on garage/moto, the
//! pg_dump/pg_restore and mariadb-dump/mariadb commands, and S3 inspection.
#![allow(dead_code)]

use std::time::Duration;

use lifeboat::engine::{Credentials, DumpCommand, EngineConfig, Member, MysqlEngine, PostgresEngine, RestoreCommand};
use lifeboat::storage::{RetryPolicy, StaticCredentials, Store, StoreConfig};
use lifeboat_testkit::mariadb::MariaServer;
use lifeboat_testkit::pg::{self, PgServer};
use lifeboat_testkit::s3::{Garage, Moto};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Few, fast retries so failure tests end quickly.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(2),
    }
}

pub fn garage_config(garage: &Garage) -> StoreConfig {
    let mut config = StoreConfig::new(garage.bucket());
    config.prefix = "backups".into();
    config.region = garage.region().into();
    config.endpoint = Some(garage.endpoint());
    config.force_path_style = true;
    config.credentials = Some(StaticCredentials {
        access_key_id: garage.access_key().into(),
        secret_access_key: garage.secret_key().into(),
    });
    config.retry = quick_retries();
    config
}

pub async fn garage_store(garage: &Garage) -> Store {
    Store::connect(garage_config(garage)).await.unwrap()
}

/// The garage bucket with no prefix: what a BackupStore without `prefix` writes to.
pub async fn garage_store_at_root(garage: &Garage) -> Store {
    let mut config = garage_config(garage);
    config.prefix = String::new();
    Store::connect(config).await.unwrap()
}

pub fn moto_config(moto: &Moto, bucket: &str) -> StoreConfig {
    let mut config = StoreConfig::new(bucket);
    config.region = moto.region().into();
    config.endpoint = Some(moto.endpoint());
    config.force_path_style = true;
    config.credentials = Some(StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    });
    config.retry = quick_retries();
    config
}

/// sha256 and size of a stored object, read back from S3.
pub async fn stored_sha256(store: &Store, key: &str) -> (String, u64) {
    let out = store
        .client()
        .get_object()
        .bucket(store.bucket())
        .key(key)
        .send()
        .await
        .unwrap();
    let mut body = out.body.into_async_read();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    (hex::encode(hasher.finalize()), size)
}

/// Keys stored under `prefix`.
pub async fn keys_under(store: &Store, prefix: &str) -> Vec<String> {
    let out = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// Multipart uploads in progress under `prefix`.
pub async fn uploads_under(store: &Store, prefix: &str) -> usize {
    store
        .client()
        .list_multipart_uploads()
        .bucket(store.bucket())
        .prefix(prefix)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

/// Flips one byte in the middle of a stored object (re-uploaded under the same key).
pub async fn flip_middle_byte(store: &Store, key: &str) {
    let out = store
        .client()
        .get_object()
        .bucket(store.bucket())
        .key(key)
        .send()
        .await
        .unwrap();
    let mut data = out.body.collect().await.unwrap().into_bytes().to_vec();
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .body(data.into())
        .send()
        .await
        .unwrap();
}

fn pg_engine() -> PostgresEngine {
    PostgresEngine::new(EngineConfig {
        credentials: Credentials::new(pg::SUPERUSER, ""),
        ..Default::default()
    })
}

fn maria_engine() -> MysqlEngine {
    MysqlEngine::new(EngineConfig {
        credentials: Credentials::new("root", ""),
        ..Default::default()
    })
}

/// The engine's dump command for `db`, and the handle to keep alive until the dump ends
/// (PostgreSQL's exported snapshot, MariaDB's credentials file).
pub async fn engine_pg_dump(server: &PgServer, db: &str) -> (Command, DumpCommand) {
    let member = Member::new("source", server.host(), server.port());
    let mut dump = pg_engine().dump(&member, db).await.unwrap();
    let command = std::mem::replace(&mut dump.command, Command::new("false"));
    (command, dump)
}

/// The engine's pg_restore command into existing `db`, and its keep-alive handle.
pub fn engine_pg_restore(server: &PgServer, db: &str) -> (Command, RestoreCommand) {
    let member = Member::new("target", server.host(), server.port());
    let mut restore = pg_engine().restore(&member, db).unwrap();
    let command = std::mem::replace(&mut restore.command, Command::new("false"));
    (command, restore)
}

pub async fn engine_mariadb_dump(server: &MariaServer, db: &str) -> (Command, DumpCommand) {
    let member = Member::new("source", server.host(), server.port());
    let mut dump = maria_engine().dump(&member, db).await.unwrap();
    let command = std::mem::replace(&mut dump.command, Command::new("false"));
    (command, dump)
}

pub fn engine_mariadb_restore(server: &MariaServer, db: &str) -> (Command, RestoreCommand) {
    let member = Member::new("target", server.host(), server.port());
    let mut restore = maria_engine().restore(&member, db).unwrap();
    let command = std::mem::replace(&mut restore.command, Command::new("false"));
    (command, restore)
}
