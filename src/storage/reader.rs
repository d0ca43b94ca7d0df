//! Streaming reads: an object's body as an `AsyncRead`, never held whole in memory.

use aws_sdk_s3::operation::get_object::GetObjectError;
use bytes::Bytes;
use tokio::io::AsyncRead;

use super::client::Store;
use super::error::S3CallError;

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },
    #[error("reading s3://{bucket}/{key}: {source}")]
    Get {
        bucket: String,
        key: String,
        source: S3CallError,
    },
}

/// An object being read: its size and a stream of its bytes.
pub struct ObjectStream {
    pub size: Option<u64>,
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

/// GETs `key`, telling a missing object apart from other failures.
async fn get(store: &Store, key: &str) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, ReadError> {
    store
        .client
        .get_object()
        .bucket(store.bucket())
        .key(key)
        .send()
        .await
        .map_err(|e| {
            if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) {
                ReadError::NotFound {
                    bucket: store.bucket().into(),
                    key: key.into(),
                }
            } else {
                ReadError::Get {
                    bucket: store.bucket().into(),
                    key: key.into(),
                    source: e.into(),
                }
            }
        })
}

/// Opens `key` for streaming.
pub async fn open(store: &Store, key: &str) -> Result<ObjectStream, ReadError> {
    let out = get(store, key).await?;
    Ok(ObjectStream {
        size: out.content_length.and_then(|n| u64::try_from(n).ok()),
        body: Box::new(out.body.into_async_read()),
    })
}

/// Reads a small object whole (manifests, probes).
pub async fn read_small(store: &Store, key: &str) -> Result<Bytes, ReadError> {
    let out = get(store, key).await?;
    let data = out.body.collect().await.map_err(|e| ReadError::Get {
        bucket: store.bucket().into(),
        key: key.into(),
        source: S3CallError::local(e.to_string()),
    })?;
    Ok(data.into_bytes())
}
