//! Failover: one promotion, requested by a person or recorded by lifeboat.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// A promotion of a replica to primary. Requested by hand (Switchover: planned, zero data
/// loss; Failover: unplanned) or created by lifeboat as the record of an automatic failover.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "Failover",
    namespaced,
    status = "FailoverStatus",
    shortname = "fo",
    category = "lifeboat",
    doc = "A promotion of a replica to primary, with every step recorded and the measured RTO.",
    printcolumn(name = "PLAN", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "TYPE", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "FROM", type_ = "string", json_path = ".status.oldPrimary"),
    printcolumn(name = "TO", type_ = "string", json_path = ".status.newPrimary"),
    printcolumn(name = "PHASE", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "RTO", type_ = "string", json_path = ".status.rto"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct FailoverSpec {
    /// Name of the RecoveryPlan (same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub plan: String,
    /// Switchover (planned: the primary is fenced and the candidate catches up first, zero loss) or Failover (unplanned).
    #[serde(default, rename = "type")]
    pub kind: FailoverType,
    /// Member to promote. Absent: the healthy replica with the most advanced position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub to: Option<String>,
    /// Promote even when the estimated data loss exceeds the plan's maxDataLoss.
    #[serde(default)]
    pub force: bool,
}

/// Planned or unplanned.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum FailoverType {
    /// The primary is lost; promote the best replica.
    #[default]
    Failover,
    /// The primary is healthy; hand over with zero data loss.
    Switchover,
}

/// Lifecycle of a Failover.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum FailoverPhase {
    /// Accepted, not started.
    #[default]
    Pending,
    /// Making the old primary refuse writes and dropping it from the writer Service.
    Fencing,
    /// Promoting the candidate.
    Promoting,
    /// Pointing the other replicas and the writer Service at the new primary.
    Repointing,
    /// The writer Service selects a writable new primary.
    Completed,
    /// Not attempted: it would lose more data than allowed, or no candidate is healthy.
    Refused,
    /// Attempted and failed; `message` says where.
    Failed,
}

/// Observed state of a Failover.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverStatus {
    /// Pending, Fencing, Promoting, Repointing, Completed, Refused or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<FailoverPhase>,
    /// The primary before the failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_primary: Option<String>,
    /// The member promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_primary: Option<String>,
    /// Upper bound of the data lost, in seconds of acknowledged writes: never below what
    /// the shop loses. Absent when unknown (then only a forced failover proceeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_data_loss_seconds: Option<f64>,
    /// Bound of the data lost in WAL bytes (PostgreSQL) or transactions (MySQL/MariaDB), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_data_loss: Option<String>,
    /// The same bound as a number: WAL bytes (PostgreSQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_data_loss_bytes: Option<u64>,
    /// The same bound as a number: transactions (MySQL/MariaDB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_data_loss_transactions: Option<u64>,
    /// How the bound was obtained (heartbeat, positions, synchronous replication, the fenced
    /// primary's final position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss_basis: Option<String>,
    /// The failover epoch this promotion starts (the plan's epoch + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// When the failure was detected or the request accepted; the RTO clock starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the writer Service first selected the writable new primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Measured recovery time: from `startedAt` to `completedAt`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// `rtoSeconds` for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<String>,
    /// Every step, written before it is taken so a restarted operator resumes instead of repeating it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<FailoverStep>,
    /// Why it was refused or failed, or a note on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One step of a failover.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverStep {
    /// Step name, e.g. `fence`, `promote`, `repoint`, `relabel`.
    pub name: String,
    /// Member the step acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// When the step was begun.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it ended; absent while it runs (or if the operator stopped during it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `Succeeded`, `Failed` or absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Detail, e.g. "fencing not confirmed: member unreachable".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
