//! Backup: run the engine's dump command and stream its stdout into S3. On any
//! failure the upload is aborted and objects already written for this backup are
//! deleted; `manifest.json` is written only after every object is complete.

use std::process::{ExitStatus, Stdio};

use age::x25519::Recipient;
use bytes::Bytes;
use chrono::Utc;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::sink::{Compressed, PartSink, ReadAhead, compress};
use super::tail::read_tail;
use crate::engine::mysql::gtid_from_dump;
use crate::storage::Store;
use crate::storage::keys::{BackupKey, KeyError};
use crate::storage::manifest::{self, Compression, Encryption, Manifest, ManifestObject};
use crate::storage::multipart::{MultipartUpload, PartSizing, UploadError, put_small};

/// One database to dump.
#[derive(Debug)]
pub struct DumpJob {
    pub database: String,
    /// Dump format, used as the file extension: `pgdump` (pg_dump -Fc) or `sql`.
    pub format: String,
    /// The dump command; its stdout is the dump. lifeboat sets its stdio.
    pub command: Command,
}

/// How to compress, encrypt and upload.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// zstd level (1..=19; 3 is the fast default).
    pub compression_level: i32,
    /// age recipients; empty means no client-side encryption.
    pub recipients: Vec<Recipient>,
    pub part_sizing: PartSizing,
    /// Part buffers, the one being filled included: memory is about this x part size.
    pub parts_in_flight: usize,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            compression_level: 3,
            recipients: Vec::new(),
            part_sizing: PartSizing::default(),
            parts_in_flight: 4,
        }
    }
}

/// A whole backup: what to dump and what to record about the server.
#[derive(Debug)]
pub struct BackupRequest {
    pub key: BackupKey,
    /// `postgres` or `mysql`.
    pub engine: String,
    pub server_version: String,
    pub consistent_position: Option<String>,
    pub jobs: Vec<DumpJob>,
}

/// Why a backup failed. Nothing that could pass for a backup remains after any of these.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("backup {backup}: no databases to dump")]
    NoJobs { backup: String },
    #[error("starting dump of {database} ({program}): {source}")]
    Spawn {
        database: String,
        program: String,
        source: std::io::Error,
    },
    #[error("dump of {database} failed ({status}): {stderr}")]
    DumpFailed {
        database: String,
        status: ExitStatus,
        /// The dump's stderr (its last 64 KiB).
        stderr: String,
    },
    #[error("compressing or encrypting the dump of {database}: {source}")]
    Stream { database: String, source: std::io::Error },
    #[error("uploading the dump of {database}: {source}")]
    Upload { database: String, source: UploadError },
    #[error("writing the manifest: {0}")]
    Manifest(UploadError),
}

/// Dumps every job into `key`'s folder, then writes the manifest. Returns the manifest.
pub async fn run_backup(
    store: &Store,
    request: BackupRequest,
    options: &BackupOptions,
) -> Result<Manifest, BackupError> {
    if request.jobs.is_empty() {
        return Err(BackupError::NoJobs {
            backup: request.key.backup.clone(),
        });
    }
    let started_at = Utc::now();
    let mut consistent_position = request.consistent_position.clone();
    let encrypted = !options.recipients.is_empty();
    let mut objects = Vec::new();
    for job in request.jobs {
        let key = request
            .key
            .object(store.prefix(), &job.database, &job.format, encrypted)?;
        match dump_with_tail(store, &key, job, options).await {
            Ok((object, tail)) => {
                // MariaDB writes the GTID the dump is consistent with near its end.
                if request.engine == "mysql" && consistent_position.is_none() {
                    consistent_position = gtid_from_dump(&String::from_utf8_lossy(&tail)).map(|g| g.to_string());
                }
                objects.push(object)
            }
            Err(e) => {
                delete_objects(store, &objects).await;
                return Err(e);
            }
        }
    }
    let manifest = Manifest {
        format: manifest::MANIFEST_FORMAT,
        namespace: request.key.namespace.clone(),
        plan: request.key.plan.clone(),
        backup: request.key.backup.clone(),
        engine: request.engine,
        server_version: request.server_version,
        consistent_position,
        started_at,
        completed_at: Utc::now(),
        compression: Compression {
            algorithm: "zstd".into(),
            level: options.compression_level,
        },
        encryption: encrypted.then(|| Encryption {
            scheme: "age".into(),
            recipients: options.recipients.iter().map(|r| r.to_string()).collect(),
        }),
        lifeboat_version: manifest::lifeboat_version(),
        objects,
    };
    let manifest_key = request.key.manifest(store.prefix());
    if let Err(e) = put_small(store, &manifest_key, "application/json", manifest.to_json()).await {
        delete_objects(store, &manifest.objects).await;
        return Err(BackupError::Manifest(e));
    }
    tracing::debug!(backup = %manifest.backup, bytes = manifest.stored_bytes(), "manifest written");
    Ok(manifest)
}

async fn delete_objects(store: &Store, objects: &[ManifestObject]) {
    for object in objects {
        let result = store
            .client()
            .delete_object()
            .bucket(store.bucket())
            .key(&object.key)
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(key = %object.key, error = %crate::storage::S3CallError::from(e), "could not delete object of a failed backup");
        }
    }
}

/// Streams one dump into the object `key`.
pub async fn dump_to_object(
    store: &Store,
    key: &str,
    job: DumpJob,
    options: &BackupOptions,
) -> Result<ManifestObject, BackupError> {
    dump_with_tail(store, key, job, options).await.map(|(object, _)| object)
}

/// [`dump_to_object`], also returning the end of the raw dump.
async fn dump_with_tail(
    store: &Store,
    key: &str,
    mut job: DumpJob,
    options: &BackupOptions,
) -> Result<(ManifestObject, Vec<u8>), BackupError> {
    let database = job.database.clone();
    let program = job.command.as_std().get_program().to_string_lossy().into_owned();
    job.command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = job.command.spawn().map_err(|source| BackupError::Spawn {
        database: database.clone(),
        program,
        source,
    })?;
    let stderr_task = tokio::spawn(read_tail(child.stderr.take()));
    let stdout = child.stdout.take();
    let mut upload = match MultipartUpload::create(
        store,
        key,
        "application/octet-stream",
        options.parts_in_flight.saturating_sub(1).max(1),
    )
    .await
    {
        Ok(upload) => upload,
        Err(source) => {
            let _ = child.start_kill();
            return Err(BackupError::Upload { database, source });
        }
    };

    let buffers = options.parts_in_flight.max(2);
    let (full_tx, full_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(buffers);
    for _ in 1..buffers {
        let _ = free_tx.send(Vec::new());
    }
    let sink = PartSink::new(options.part_sizing, free_rx, full_tx);
    let level = options.compression_level;
    let recipients = options.recipients.clone();
    let compress_task = match stdout {
        Some(stdout) => {
            // A blocking pipe read directly: cheaper than bridging async reads.
            let pipe = stdout.into_owned_fd().map(std::fs::File::from);
            tokio::task::spawn_blocking(move || compress(ReadAhead::spawn(pipe?), sink, level, &recipients))
        }
        None => {
            tokio::task::spawn_blocking(move || compress(ReadAhead::spawn(std::io::empty()), sink, level, &recipients))
        }
    };

    let pumped = pump(&mut upload, full_rx, free_tx).await;
    if pumped.is_err() {
        let _ = child.start_kill();
    }
    let compressed = compress_task
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    let status = child.wait().await;
    let stderr = stderr_task.await.unwrap_or_default();

    let outcome: Result<Compressed, BackupError> = match (pumped, status, compressed) {
        (Err(source), _, _) => Err(BackupError::Upload {
            database: database.clone(),
            source,
        }),
        (Ok(()), Ok(status), _) if !status.success() => Err(BackupError::DumpFailed {
            database: database.clone(),
            status,
            stderr,
        }),
        (Ok(()), Err(source), _) | (Ok(()), _, Err(source)) => Err(BackupError::Stream {
            database: database.clone(),
            source,
        }),
        (Ok(()), Ok(_), Ok(compressed)) => Ok(compressed),
    };
    let compressed = match outcome {
        Ok(c) => c,
        Err(e) => {
            if let Err(abort) = upload.abort().await {
                // The orphan clean-up removes it later.
                tracing::warn!(key, error = %abort, "could not abort the failed upload");
            }
            return Err(e);
        }
    };
    let size = upload.complete().await.map_err(|source| BackupError::Upload {
        database: database.clone(),
        source,
    })?;
    debug_assert_eq!(size, compressed.size);
    tracing::debug!(key, raw = compressed.raw_size, stored = size, "dump uploaded");
    let object = ManifestObject {
        database,
        key: key.to_string(),
        size: compressed.size,
        sha256: compressed.sha256,
        raw_size: compressed.raw_size,
        format: job.format,
    };
    Ok((object, compressed.tail))
}

/// Moves full part buffers from the compressor into the upload and gives finished
/// buffers back, until the compressor is done or a part fails.
async fn pump(
    upload: &mut MultipartUpload,
    mut full: mpsc::UnboundedReceiver<Vec<u8>>,
    free: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Result<(), UploadError> {
    let recycle = |data: Bytes| {
        let buf = data.try_into_mut().map(Vec::from).unwrap_or_default();
        let _ = free.try_send(buf);
    };
    loop {
        tokio::select! {
            part = full.recv() => match part {
                Some(buf) => {
                    for done in upload.send_part(Bytes::from(buf)).await? {
                        recycle(done);
                    }
                }
                None => return Ok(()),
            },
            done = upload.next_finished(), if upload.in_flight() > 0 => {
                if let Some(data) = done? {
                    recycle(data);
                }
            }
        }
    }
}
