//! Streaming multipart upload with a bounded number of parts in flight, abort on
//! failure, and the clean-up of uploads a crashed backup left behind.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectLockRetention, ObjectLockRetentionMode};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::client::Store;
use super::error::S3CallError;

/// S3's limits: at most 10,000 parts, each 5 MiB to 5 GiB (the last may be smaller).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u32 = 10_000;

/// Part sizes for a stream of unknown length: `initial` bytes per part, doubled every
/// `max_parts / 10` parts, so the first tenth of the part budget covers
/// `initial x max_parts / 10` bytes at the base memory cost and a dump of any size fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartSizing {
    pub initial: usize,
    /// 10,000 on AWS; some S3-compatible servers allow only 1,000.
    pub max_parts: u32,
}

impl Default for PartSizing {
    fn default() -> Self {
        PartSizing {
            initial: 16 * 1024 * 1024,
            max_parts: MAX_PARTS,
        }
    }
}

impl PartSizing {
    /// Size of part `number` (1-based).
    pub fn part_size(&self, number: u32) -> usize {
        let step = (self.max_parts / 10).max(1);
        let doublings = (number.saturating_sub(1) / step).min(20);
        self.initial
            .max(MIN_PART_SIZE)
            .saturating_mul(1usize << doublings)
            .min(MAX_PART_SIZE)
    }
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("starting multipart upload of s3://{bucket}/{key}: {source}")]
    Create {
        bucket: String,
        key: String,
        source: S3CallError,
    },
    #[error("uploading part {part} of s3://{bucket}/{key}: {source}")]
    Part {
        bucket: String,
        key: String,
        part: i32,
        source: S3CallError,
    },
    #[error("s3://{bucket}/{key} needs more than {max_parts} parts")]
    TooManyParts {
        bucket: String,
        key: String,
        max_parts: u32,
    },
    #[error("completing multipart upload of s3://{bucket}/{key}: {source}")]
    Complete {
        bucket: String,
        key: String,
        source: S3CallError,
    },
    #[error("aborting multipart upload of s3://{bucket}/{key}: {source}")]
    Abort {
        bucket: String,
        key: String,
        source: S3CallError,
    },
    #[error("putting s3://{bucket}/{key}: {source}")]
    Put {
        bucket: String,
        key: String,
        source: S3CallError,
    },
    #[error("listing multipart uploads under s3://{bucket}/{prefix}: {source}")]
    ListUploads {
        bucket: String,
        prefix: String,
        source: S3CallError,
    },
    #[error("upload task of s3://{bucket}/{key} panicked or was cancelled: {message}")]
    Task {
        bucket: String,
        key: String,
        message: String,
    },
}

/// One multipart upload in progress. Parts upload concurrently as tasks; at most
/// `max_in_flight` at a time (callers bound memory by also bounding their buffers).
pub struct MultipartUpload {
    store: Store,
    key: String,
    upload_id: String,
    max_in_flight: usize,
    in_flight: JoinSet<Result<(CompletedPart, Bytes), UploadError>>,
    parts: Vec<CompletedPart>,
    next_part: i32,
    bytes: u64,
}

impl MultipartUpload {
    /// Starts an upload of `key` with the store's SSE, storage class and Object Lock.
    pub async fn create(
        store: &Store,
        key: &str,
        content_type: &str,
        max_in_flight: usize,
    ) -> Result<Self, UploadError> {
        let mut req = store
            .client
            .create_multipart_upload()
            .bucket(store.bucket())
            .key(key)
            .content_type(content_type);
        if let Some((sse, kms_key)) = store.sse() {
            req = req.server_side_encryption(sse).set_ssekms_key_id(kms_key);
        }
        if let Some(class) = store.storage_class() {
            req = req.storage_class(class);
        }
        if let Some((mode, until)) = store.lock() {
            req = req.object_lock_mode(mode).object_lock_retain_until_date(until);
        }
        let out = req.send().await.map_err(|e| UploadError::Create {
            bucket: store.bucket().into(),
            key: key.into(),
            source: e.into(),
        })?;
        let upload_id = out.upload_id.ok_or_else(|| UploadError::Create {
            bucket: store.bucket().into(),
            key: key.into(),
            source: S3CallError::local("CreateMultipartUpload returned no UploadId"),
        })?;
        tracing::debug!(key, "multipart upload started");
        Ok(MultipartUpload {
            store: store.clone(),
            key: key.into(),
            upload_id,
            max_in_flight: max_in_flight.max(1),
            in_flight: JoinSet::new(),
            parts: Vec::new(),
            next_part: 1,
            bytes: 0,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Queues one part. Waits first while `max_in_flight` parts are uploading, and
    /// returns the buffers of parts that finished meanwhile, for reuse.
    pub async fn send_part(&mut self, data: Bytes) -> Result<Vec<Bytes>, UploadError> {
        let mut finished = Vec::new();
        while self.in_flight.len() >= self.max_in_flight {
            if let Some(buf) = self.next_finished().await? {
                finished.push(buf);
            }
        }
        if self.next_part as u32 > MAX_PARTS {
            return Err(UploadError::TooManyParts {
                bucket: self.store.bucket().into(),
                key: self.key.clone(),
                max_parts: MAX_PARTS,
            });
        }
        let number = self.next_part;
        self.next_part += 1;
        self.bytes += data.len() as u64;
        let store = self.store.clone();
        let key = self.key.clone();
        let upload_id = self.upload_id.clone();
        self.in_flight.spawn(async move {
            let out = store
                .client
                .upload_part()
                .bucket(store.bucket())
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(data.clone()))
                .customize()
                // lifeboat's own sha256 of the whole object covers integrity end to end.
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| UploadError::Part {
                    bucket: store.bucket().into(),
                    key: key.clone(),
                    part: number,
                    source: e.into(),
                })?;
            let part = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .set_checksum_crc32(out.checksum_crc32)
                .build();
            Ok((part, data))
        });
        Ok(finished)
    }

    /// Waits for one in-flight part; `None` when none is in flight. Returns its buffer.
    pub async fn next_finished(&mut self) -> Result<Option<Bytes>, UploadError> {
        match self.in_flight.join_next().await {
            None => Ok(None),
            Some(Ok(Ok((part, data)))) => {
                self.parts.push(part);
                Ok(Some(data))
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(join)) => Err(UploadError::Task {
                bucket: self.store.bucket().into(),
                key: self.key.clone(),
                message: join.to_string(),
            }),
        }
    }

    /// Waits for every part and completes the upload. Returns the object's size.
    pub async fn complete(mut self) -> Result<u64, UploadError> {
        while self.next_finished().await?.is_some() {}
        self.parts.sort_by_key(|p| p.part_number);
        self.store
            .client
            .complete_multipart_upload()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| UploadError::Complete {
                bucket: self.store.bucket().into(),
                key: self.key.clone(),
                source: e.into(),
            })?;
        // Some servers drop the lock given at CreateMultipartUpload: set it again.
        if let Some((mode, until)) = self.store.lock() {
            self.store
                .client
                .put_object_retention()
                .bucket(self.store.bucket())
                .key(&self.key)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::from(mode.as_str()))
                        .retain_until_date(until)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| UploadError::Complete {
                    bucket: self.store.bucket().into(),
                    key: self.key.clone(),
                    source: e.into(),
                })?;
        }
        Ok(self.bytes)
    }

    /// Cancels the parts in flight and aborts the upload so S3 keeps none of its parts.
    pub async fn abort(mut self) -> Result<(), UploadError> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        tracing::info!(key = %self.key, "aborting multipart upload");
        self.store
            .client
            .abort_multipart_upload()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| UploadError::Abort {
                bucket: self.store.bucket().into(),
                key: self.key.clone(),
                source: e.into(),
            })?;
        Ok(())
    }
}

/// Puts a small object in one request (manifests, probes) with the store's SSE,
/// storage class and Object Lock.
pub async fn put_small(store: &Store, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), UploadError> {
    let mut req = store
        .client
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body));
    if let Some((sse, kms_key)) = store.sse() {
        req = req.server_side_encryption(sse).set_ssekms_key_id(kms_key);
    }
    if let Some(class) = store.storage_class() {
        req = req.storage_class(class);
    }
    if let Some((mode, until)) = store.lock() {
        req = req.object_lock_mode(mode).object_lock_retain_until_date(until);
    }
    req.send().await.map_err(|e| UploadError::Put {
        bucket: store.bucket().into(),
        key: key.into(),
        source: e.into(),
    })?;
    Ok(())
}

/// Aborts multipart uploads under `prefix` started more than `older_than` ago (parts
/// of crashed or failed backups, which S3 keeps and bills until aborted). Returns the
/// keys of the aborted uploads. Keep `older_than` above the longest backup unless no
/// backup can be running.
pub async fn abort_orphaned_uploads(
    store: &Store,
    prefix: &str,
    older_than: Duration,
) -> Result<Vec<String>, UploadError> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
    let mut aborted = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    loop {
        let out = store
            .client
            .list_multipart_uploads()
            .bucket(store.bucket())
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .map_err(|e| UploadError::ListUploads {
                bucket: store.bucket().into(),
                prefix: prefix.into(),
                source: e.into(),
            })?;
        for upload in out.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            let started = upload.initiated().map(|t| t.secs()).unwrap_or(i64::MIN);
            if started > cutoff.timestamp() {
                continue;
            }
            store
                .client
                .abort_multipart_upload()
                .bucket(store.bucket())
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map_err(|e| UploadError::Abort {
                    bucket: store.bucket().into(),
                    key: key.into(),
                    source: e.into(),
                })?;
            tracing::info!(key, "aborted orphaned multipart upload");
            aborted.push(key.to_string());
        }
        if out.is_truncated() == Some(true) {
            key_marker = out.next_key_marker().map(str::to_string);
            id_marker = out.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        } else {
            break;
        }
    }
    Ok(aborted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_grows_so_any_dump_fits() {
        let sizing = PartSizing::default();
        assert_eq!(sizing.part_size(1), 16 << 20);
        assert_eq!(sizing.part_size(1000), 16 << 20);
        assert_eq!(sizing.part_size(1001), 32 << 20);
        let total: u64 = (1..=MAX_PARTS).map(|n| sizing.part_size(n) as u64).sum();
        assert!(total > 5 * (1u64 << 40), "10,000 parts hold more than 5 TiB");
    }

    #[test]
    fn part_size_respects_s3_minimum() {
        let sizing = PartSizing {
            initial: 1,
            max_parts: 1000,
        };
        assert_eq!(sizing.part_size(1), MIN_PART_SIZE);
    }
}
