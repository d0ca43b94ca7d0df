//! Restore: a backup restored into a target server, then verified by checks.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, DatabaseCredentialsRef};

/// Restore a Backup (or a plan's newest completed backup) into a target server and verify it.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Restore",
    namespaced,
    status = "RestoreStatus",
    shortname = "rst",
    category = "lifeboat",
    doc = "Restores a Backup into a target database server and runs verification checks.",
    printcolumn(name = "BACKUP", type_ = "string", json_path = ".status.backup"),
    printcolumn(name = "TARGET", type_ = "string", json_path = ".spec.target.host"),
    printcolumn(name = "PHASE", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "DURATION", type_ = "string", json_path = ".status.duration"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["backup"]}, {"required": ["plan"]}]))]
pub struct RestoreSpec {
    /// Name of the Backup to restore. Exactly one of `backup` or `plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub backup: Option<String>,
    /// Name of a RecoveryPlan whose newest completed backup is restored (found in S3 by its manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub plan: Option<String>,
    /// Server to restore into. It must run the backup's engine; existing databases of the same name are not overwritten.
    pub target: RestoreTarget,
    /// Restore database `from` under the name `to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renames: Vec<DatabaseRename>,
    /// SQL checks run after the restore; any failure fails the Restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RestoreCheck>,
}

/// Where a restore goes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreTarget {
    /// Host name or IP address of the target server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port of the target server. Absent: the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Secret with credentials allowed to create databases on the target.
    pub credentials_secret: DatabaseCredentialsRef,
}

/// A database restored under another name.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseRename {
    /// Database name in the backup.
    #[schemars(length(min = 1, max = 63))]
    pub from: String,
    /// Database name on the target.
    #[schemars(length(min = 1, max = 63))]
    pub to: String,
}

/// A query whose single value must equal `expect`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreCheck {
    /// Name shown in status and events.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Database (name on the target) the query runs in.
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
    /// SQL returning one row with one column.
    #[schemars(length(min = 1))]
    pub sql: String,
    /// Expected value, compared as text.
    pub expect: String,
}

/// Lifecycle of a Restore.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum RestorePhase {
    /// Accepted, not started.
    #[default]
    Pending,
    /// Streaming the backup into the target.
    Running,
    /// Running the checks.
    Verifying,
    /// Restored and every check passed.
    Completed,
    /// Restore or a check failed; `message` says which.
    Failed,
}

/// Observed state of a Restore.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// Pending, Running, Verifying, Completed or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// The Backup restored (resolved from `spec.plan` when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// When the restore started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Wall time of restore plus checks, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// `durationSeconds` for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Bytes read from S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// Result of each check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// Why the restore failed, or a note on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Outcome of one check.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Whether the value equalled `expect`.
    pub passed: bool,
    /// The value the query returned, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}
