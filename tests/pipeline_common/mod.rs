//! Helpers shared by the storage and pipeline tests: stores on garage/moto, the
//! pg_dump/pg_restore and mariadb-dump/mariadb commands, and S3 inspection.
#![allow(dead_code)]

use std::time::Duration;

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

fn pg_tool(name: &str) -> Command {
    Command::new(pg::bin_dir().join(name))
}

/// `pg_dump -Fc -Z0` of `db` as the trusted superuser.
pub fn pg_dump(server: &PgServer, db: &str) -> Command {
    let mut cmd = pg_tool("pg_dump");
    cmd.args(["-Fc", "-Z0", "-h", &server.host(), "-p", &server.port().to_string()])
        .args(["-U", pg::SUPERUSER, "-d", db]);
    cmd
}

/// `pg_restore --single-transaction --exit-on-error` into existing database `db`.
pub fn pg_restore(server: &PgServer, db: &str) -> Command {
    let mut cmd = pg_tool("pg_restore");
    cmd.args(["--single-transaction", "--exit-on-error", "--no-owner"])
        .args(["-h", &server.host(), "-p", &server.port().to_string()])
        .args(["-U", pg::SUPERUSER, "-d", db]);
    cmd
}

/// `mariadb-dump --single-transaction --databases db` as root.
pub fn mariadb_dump(server: &MariaServer, db: &str) -> Command {
    let mut cmd = Command::new("mariadb-dump");
    cmd.args(["--no-defaults", "-h", &server.host(), "-P", &server.port().to_string()])
        .args(["-u", "root", "--single-transaction", "--routines", "--databases", db]);
    cmd
}

/// The `mariadb` client as root, reading SQL from stdin.
pub fn mariadb_client(server: &MariaServer) -> Command {
    let mut cmd = Command::new("mariadb");
    cmd.args(["--no-defaults", "-h", &server.host(), "-P", &server.port().to_string()])
        .args(["-u", "root", "--batch"]);
    cmd
}
