//! BackupStore: where backups go (an S3 bucket and prefix) and how they are protected.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, SecretKeyRef};

/// Where backups are stored and how they are protected. lifeboat checks the store with a
/// real put/get/delete round trip and reports the result in the `Available` condition.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "BackupStore",
    namespaced,
    status = "BackupStoreStatus",
    shortname = "bs",
    category = "lifeboat",
    doc = "An S3 bucket (and prefix) that holds lifeboat backups, with optional encryption and object lock.",
    printcolumn(name = "BUCKET", type_ = "string", json_path = ".spec.s3.bucket"),
    printcolumn(
        name = "AVAILABLE",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BackupStoreSpec {
    /// The S3 (or S3-compatible) bucket that holds the backups.
    pub s3: S3Location,
    /// Client-side encryption with age: objects are encrypted before they leave lifeboat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ClientEncryption>,
}

/// An S3 bucket and how to reach it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// Bucket name (3 to 63 characters: lowercase letters, digits, dots and hyphens).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Key prefix under which lifeboat writes `{namespace}/{plan}/{backup}/...`. Empty: the bucket root.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[^/].*[^/]$|^[^/]?$"))]
    pub prefix: String,
    /// Region of the bucket (S3-compatible servers often accept any value).
    #[serde(default = "default_region")]
    #[schemars(length(min = 1))]
    pub region: String,
    /// Endpoint URL for S3-compatible servers (MinIO, garage, Ceph...). Absent: AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/.*)?$"))]
    pub endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (most S3-compatible servers need this).
    #[serde(default)]
    pub force_path_style: bool,
    /// Secret with static credentials. Absent: the AWS default credential chain (environment, IRSA, instance profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<S3CredentialsRef>,
    /// Secret key holding a PEM CA bundle to trust for the endpoint's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret: Option<SecretKeyRef>,
    /// Server-side encryption requested on every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// Storage class for backup objects (e.g. STANDARD_IA). Absent: the bucket's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z_]+$"))]
    pub storage_class: Option<String>,
    /// Object Lock retention set on every uploaded object (the bucket must have Object Lock enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// A Secret with S3 access keys.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsRef {
    /// Name of the Secret, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the access key id in the Secret.
    #[serde(default = "default_access_key_id_key")]
    pub access_key_id_key: String,
    /// Key of the secret access key in the Secret.
    #[serde(default = "default_secret_access_key_key")]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "AWS_ACCESS_KEY_ID".into()
}

fn default_secret_access_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

/// Server-side encryption settings.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerSideEncryption {
    /// `AES256` (S3-managed keys) or `aws:kms` (a KMS key).
    pub mode: SseMode,
    /// KMS key id or ARN; only with mode `aws:kms` (absent: the account's default KMS key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// Server-side encryption algorithm.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum SseMode {
    /// S3-managed keys.
    #[serde(rename = "AES256")]
    Aes256,
    /// AWS KMS keys.
    #[serde(rename = "aws:kms")]
    AwsKms,
}

/// Object Lock retention applied on upload, so backups cannot be deleted before their time.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectLock {
    /// GOVERNANCE (privileged users may bypass) or COMPLIANCE (nobody can delete early).
    pub mode: ObjectLockMode,
    /// Days each object is locked after upload.
    #[schemars(range(min = 1, max = 36500))]
    pub retain_days: u32,
}

/// Object Lock mode.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum ObjectLockMode {
    /// Users with special permission may shorten or remove the lock.
    Governance,
    /// Nobody, not even the root account, can delete the object before its retain date.
    Compliance,
}

/// age encryption done by lifeboat before upload.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClientEncryption {
    /// age recipients (public keys, `age1...`) every backup is encrypted to.
    #[schemars(length(min = 1))]
    pub age_recipients: Vec<String>,
    /// Secret key holding the age identity (private key) needed to restore. Keep a copy outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_identity_secret: Option<SecretKeyRef>,
}

/// Observed state of a BackupStore.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStoreStatus {
    /// `Available`: the last round trip (put, get, delete of a probe object) succeeded; its reason says why not otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the store was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The spec generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
