//! The BackupStore round trip: put, get and delete a small probe object, with a
//! reason a condition can show when it fails.

use std::fmt;

use super::client::Store;
use super::error::{S3CallError, S3FailureKind};
use super::multipart::{UploadError, put_small};
use super::reader::{ReadError, read_small};

/// Why the store is not usable, one reason per thing a person would fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckReason {
    /// Unknown access key, wrong secret, expired token, or no credentials found.
    BadCredentials,
    /// The key is valid but may not do this (bucket policy, IAM).
    AccessDenied,
    NoSuchBucket,
    /// TLS handshake failed: unknown CA (set caBundleSecret), wrong host name, or not TLS.
    TlsError,
    /// Connection refused, DNS failure or timeout.
    Unreachable,
    /// The probe read back differs from what was written.
    Mismatch,
    Other,
}

impl CheckReason {
    /// CamelCase reason for a Kubernetes condition.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckReason::BadCredentials => "BadCredentials",
            CheckReason::AccessDenied => "AccessDenied",
            CheckReason::NoSuchBucket => "NoSuchBucket",
            CheckReason::TlsError => "TLSError",
            CheckReason::Unreachable => "Unreachable",
            CheckReason::Mismatch => "ProbeMismatch",
            CheckReason::Other => "S3Error",
        }
    }
}

impl fmt::Display for CheckReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed round trip.
#[derive(Debug, thiserror::Error)]
#[error("store check of s3://{bucket} failed at {step} ({reason}): {message}")]
pub struct CheckFailure {
    pub reason: CheckReason,
    pub bucket: String,
    /// `put`, `get` or `delete`.
    pub step: &'static str,
    pub message: String,
}

/// Classifies one failed call.
pub fn reason_of(err: &S3CallError) -> CheckReason {
    match err.kind {
        S3FailureKind::Tls => CheckReason::TlsError,
        S3FailureKind::Unreachable | S3FailureKind::Timeout => CheckReason::Unreachable,
        // The only construction failure without input errors is "no credentials".
        S3FailureKind::Construction => CheckReason::BadCredentials,
        S3FailureKind::Service | S3FailureKind::Response => match err.code.as_deref() {
            Some("NoSuchBucket") => CheckReason::NoSuchBucket,
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "InvalidClientTokenId"
                | "AuthorizationHeaderMalformed",
            ) => CheckReason::BadCredentials,
            // Some servers (garage) answer AccessDenied for a bad signature or unknown key.
            Some("AccessDenied") if mentions_credentials(&err.message) => CheckReason::BadCredentials,
            Some("AccessDenied" | "AllAccessDisabled") => CheckReason::AccessDenied,
            _ if err.status == Some(404) && err.code.is_none() => CheckReason::NoSuchBucket,
            _ => CheckReason::Other,
        },
    }
}

fn mentions_credentials(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "signature",
        "access key",
        "no such key",
        "invalid key",
        "unknown key",
        "credential",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn failure(store: &Store, step: &'static str, err: &S3CallError) -> CheckFailure {
    CheckFailure {
        reason: reason_of(err),
        bucket: store.bucket().into(),
        step,
        message: err.to_string(),
    }
}

/// Puts, reads back and deletes `{prefix}/.lifeboat-probe/{uuid}`.
pub async fn check_store(store: &Store) -> Result<(), CheckFailure> {
    let root = store.prefix().trim_matches('/');
    let name = format!(".lifeboat-probe/{}", uuid::Uuid::new_v4());
    let key = if root.is_empty() {
        name
    } else {
        format!("{root}/{name}")
    };
    let body = format!("lifeboat store check {key}").into_bytes();
    // The probe must be deletable: never lock it.
    let mut unlocked = store.clone();
    unlocked.config.object_lock = None;
    match put_small(&unlocked, &key, "text/plain", body.clone()).await {
        Ok(()) => {}
        Err(UploadError::Put { source, .. }) => return Err(failure(store, "put", &source)),
        Err(other) => return Err(failure(store, "put", &S3CallError::local(other.to_string()))),
    }
    let read = read_small(store, &key).await;
    let delete = store
        .client
        .delete_object()
        .bucket(store.bucket())
        .key(&key)
        .send()
        .await;
    match read {
        Ok(bytes) if bytes.as_ref() == body.as_slice() => {}
        Ok(_) => {
            return Err(CheckFailure {
                reason: CheckReason::Mismatch,
                bucket: store.bucket().into(),
                step: "get",
                message: format!("{key} read back with different content"),
            });
        }
        Err(ReadError::Get { source, .. }) => return Err(failure(store, "get", &source)),
        Err(e @ ReadError::NotFound { .. }) => {
            return Err(failure(store, "get", &S3CallError::local(e.to_string())));
        }
    }
    delete.map_err(|e| failure(store, "delete", &e.into()))?;
    Ok(())
}
