//! How to reach a store: the BackupStore spec with its Secrets already resolved.

use std::fmt;
use std::time::Duration;

use crate::api::backup_store::{ObjectLock, S3Location, ServerSideEncryption};

/// Static S3 access keys (from the BackupStore's credentials Secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

// Never print the secret key, even in debug logs.
impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Retries of throttled (503 SlowDown, 429) and 5xx responses and transient I/O errors,
/// with exponential backoff and jitter (the SDK's standard retry strategy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = no retries).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long to wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything needed to talk to one bucket.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (empty: bucket root).
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    /// Absent: the AWS default credential chain (environment, IRSA web identity, profile, IMDS).
    pub credentials: Option<StaticCredentials>,
    /// PEM certificates trusted in addition to the system roots.
    pub ca_bundle_pem: Option<Vec<u8>>,
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub storage_class: Option<String>,
    pub object_lock: Option<ObjectLock>,
    pub retry: RetryPolicy,
}

impl StoreConfig {
    /// A config for `bucket` with defaults everywhere else (AWS S3, default credential chain).
    pub fn new(bucket: impl Into<String>) -> Self {
        StoreConfig {
            bucket: bucket.into(),
            prefix: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            force_path_style: false,
            credentials: None,
            ca_bundle_pem: None,
            server_side_encryption: None,
            storage_class: None,
            object_lock: None,
            retry: RetryPolicy::default(),
        }
    }

    /// The config a BackupStore spec describes, given its resolved Secrets.
    pub fn from_spec(
        spec: &S3Location,
        credentials: Option<StaticCredentials>,
        ca_bundle_pem: Option<Vec<u8>>,
    ) -> Self {
        StoreConfig {
            bucket: spec.bucket.clone(),
            prefix: spec.prefix.trim_matches('/').to_string(),
            region: spec.region.clone(),
            endpoint: spec.endpoint.clone(),
            force_path_style: spec.force_path_style,
            credentials,
            ca_bundle_pem,
            server_side_encryption: spec.server_side_encryption.clone(),
            storage_class: spec.storage_class.clone(),
            object_lock: spec.object_lock.clone(),
            retry: RetryPolicy::default(),
        }
    }
}
