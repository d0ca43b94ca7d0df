//! Backup: one dump of a plan's databases to its BackupStore.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// One dump of a RecoveryPlan's databases to S3. Created by the plan's schedule or by hand.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    shortname = "bk",
    category = "lifeboat",
    doc = "One streaming dump of a RecoveryPlan's databases to its BackupStore.",
    printcolumn(name = "PLAN", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "PHASE", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "SIZE", type_ = "string", json_path = ".status.size"),
    printcolumn(name = "DURATION", type_ = "string", json_path = ".status.duration"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Name of the RecoveryPlan (same namespace) to back up.
    #[schemars(length(min = 1, max = 253))]
    pub plan: String,
    /// What happens to the S3 objects when this Backup is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Fate of the S3 objects when the Backup object is deleted.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Keep the objects in S3 (they stay discoverable by their manifest).
    #[default]
    Retain,
    /// Delete the objects (object-locked ones are kept and reported).
    Delete,
}

/// Lifecycle of a Backup.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum BackupPhase {
    /// Accepted, not started.
    #[default]
    Pending,
    /// Dumping and uploading.
    Running,
    /// Every object and the manifest are stored and verified.
    Completed,
    /// Nothing usable was stored; `message` says why.
    Failed,
}

/// Observed state of a Backup.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// Pending, Running, Completed or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// When the dump started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    /// When the manifest was written (Completed) or the backup gave up (Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Wall time of the backup in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// `durationSeconds` for people (e.g. `1m12s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Member the dump was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_member: Option<String>,
    /// S3 key of the manifest that makes this a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    /// Stored objects, one per database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<BackupObject>,
    /// Total stored bytes (compressed, encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// `sizeBytes` for people (e.g. `1.2GiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Engine and server version the dump came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// Replication position the dump is consistent with (PostgreSQL LSN, MySQL/MariaDB GTID set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_position: Option<String>,
    /// Time the dump is consistent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the backup failed, or a note on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One stored object of a backup.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupObject {
    /// Database dumped into this object.
    pub database: String,
    /// S3 key.
    pub key: String,
    /// Stored bytes.
    pub size_bytes: i64,
    /// sha256 of the stored bytes, hex.
    pub sha256: String,
}
