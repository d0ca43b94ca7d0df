//! Restore: stream a stored object -> verify sha256 -> age decrypt -> zstd decode ->
//! the engine's restore command on stdin.
//!
//! Guarantees on a checksum mismatch:
//! - [`Verification::Streaming`] (PostgreSQL with `pg_restore --single-transaction
//!   --exit-on-error`): bytes flow while they are hashed, but the last 64 KiB of the
//!   decoded stream are withheld until the whole object's sha256 matches the manifest.
//!   pg_restore cannot reach its end (and commit) without them, so on a mismatch it is
//!   killed inside its single transaction and the target keeps what it had.
//! - [`Verification::BeforeRestore`] (MariaDB/MySQL: a SQL script commits statement by
//!   statement, so there is no transaction to roll back): the object is first spooled
//!   to a local file and verified; the client receives nothing unless it matches. It
//!   costs local disk equal to the stored (compressed) size and the download time.
//!   A restore that fails later for another reason (SQL error, server gone) can leave
//!   the objects it already created: restore into a fresh database.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use age::x25519::Identity;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::io::SyncIoBridge;

use super::decode::{DecodeFailure, decode_into};
use super::tail::read_tail;
use crate::storage::Store;
use crate::storage::manifest::ManifestObject;
use crate::storage::reader::{ReadError, open};

/// When the checksum is verified relative to feeding the restore command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Verify while streaming; withhold the end until verified.
    Streaming,
    /// Download into `spool_dir` and verify first; then feed the command.
    BeforeRestore { spool_dir: PathBuf },
}

/// How to restore.
#[derive(Clone)]
pub struct RestoreOptions {
    /// Needed when the object is age-encrypted.
    pub identities: Vec<Identity>,
    pub verification: Verification,
}

/// What a restore moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreStats {
    pub stored_bytes: u64,
    pub raw_bytes: u64,
    pub duration: Duration,
}

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "s3://{bucket}/{key} is corrupt: sha256 {actual} ({actual_size} bytes) differs from the manifest's {expected} ({expected_size} bytes); the restore was stopped before it could commit"
    )]
    Corrupt {
        bucket: String,
        key: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("{key} is age-encrypted: an identity is needed to restore it")]
    NoIdentity { key: String },
    #[error("decrypting {key}: {message}")]
    Decrypt { key: String, message: String },
    #[error("decompressing {key}: {source}")]
    Decode { key: String, source: std::io::Error },
    #[error("spooling {key} to {path}: {source}")]
    Spool {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting restore of {database} ({program}): {source}")]
    Spawn {
        database: String,
        program: String,
        source: std::io::Error,
    },
    #[error("restore of {database} failed ({status}): {stderr}")]
    RestoreFailed {
        database: String,
        status: String,
        stderr: String,
    },
}

/// Restores one manifest object through `command` (e.g. pg_restore or the mariadb client).
pub async fn restore_object(
    store: &Store,
    object: &ManifestObject,
    mut command: Command,
    options: &RestoreOptions,
) -> Result<RestoreStats, RestoreError> {
    let started = Instant::now();
    let encrypted = object.key.ends_with(".age");
    if encrypted && options.identities.is_empty() {
        return Err(RestoreError::NoIdentity {
            key: object.key.clone(),
        });
    }
    let mut stream = open(store, &object.key).await?;
    // Spool first when asked: the command only starts once the object is verified.
    let spooled = match &options.verification {
        Verification::Streaming => None,
        Verification::BeforeRestore { spool_dir } => Some(spool(store, object, &mut stream.body, spool_dir).await?),
    };

    let program = command.as_std().get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| RestoreError::Spawn {
        database: object.database.clone(),
        program,
        source,
    })?;
    let stderr_task = tokio::spawn(read_tail(child.stderr.take()));
    // A blocking pipe written directly: cheaper than bridging async writes.
    let stdin = child
        .stdin
        .take()
        .and_then(|s| s.into_owned_fd().ok())
        .map(std::fs::File::from);
    let identities = options.identities.clone();
    let expected = object.clone();
    let decoded = match spooled {
        None => {
            let reader = SyncIoBridge::new(stream.body);
            tokio::task::spawn_blocking(move || decode_into(reader, &expected, &identities, encrypted, stdin)).await
        }
        Some(file) => tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::new(file.reopen()?);
            Ok::<_, std::io::Error>(decode_into(reader, &expected, &identities, encrypted, stdin))
        })
        .await
        .map(|r| r.unwrap_or_else(|e| (Err(DecodeFailure::Decode(e)), None))),
    };
    let (result, held_stdin) =
        decoded.unwrap_or_else(|e| (Err(DecodeFailure::Decode(std::io::Error::other(e.to_string()))), None));

    if result.is_err() {
        // Kill before the withheld tail (or EOF) can reach the command.
        let _ = child.start_kill();
    } else {
        // Verified and fully sent: EOF tells the command its input is complete.
        drop(held_stdin);
    }
    let status = child.wait().await;
    let stderr = stderr_task.await.unwrap_or_default();
    let raw_bytes = match result {
        Ok(raw) => raw,
        Err(failure) => return Err(failure.into_error(store, object, &stderr)),
    };
    match status {
        Ok(s) if s.success() => {}
        other => {
            return Err(RestoreError::RestoreFailed {
                database: object.database.clone(),
                status: describe(other),
                stderr,
            });
        }
    }
    Ok(RestoreStats {
        stored_bytes: object.size,
        raw_bytes,
        duration: started.elapsed(),
    })
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("could not wait for it: {e}"),
    }
}

/// Downloads the object into a temp file in `dir`, verifying size and sha256.
async fn spool(
    store: &Store,
    object: &ManifestObject,
    body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    dir: &std::path::Path,
) -> Result<tempfile::NamedTempFile, RestoreError> {
    let spool_err = |path: PathBuf| {
        let key = object.key.clone();
        move |source| RestoreError::Spool { key, path, source }
    };
    let file = tempfile::Builder::new()
        .prefix("lifeboat-restore-")
        .tempfile_in(dir)
        .map_err(spool_err(dir.to_path_buf()))?;
    let path = file.path().to_path_buf();
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(spool_err(path.clone()))?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body.read(&mut buf).await.map_err(|source| {
            RestoreError::Read(ReadError::Get {
                bucket: store.bucket().into(),
                key: object.key.clone(),
                source: crate::storage::S3CallError::local(source.to_string()),
            })
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        out.write_all(&buf[..n]).await.map_err(spool_err(path.clone()))?;
    }
    out.flush().await.map_err(spool_err(path.clone()))?;
    let actual = hex::encode(hasher.finalize());
    if actual != object.sha256 || size != object.size {
        return Err(RestoreError::Corrupt {
            bucket: store.bucket().into(),
            key: object.key.clone(),
            expected: object.sha256.clone(),
            actual,
            expected_size: object.size,
            actual_size: size,
        });
    }
    Ok(file)
}
