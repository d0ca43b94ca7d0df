//! RecoveryPlan: one protected database cluster and the promise (RPO, RTO) made for it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, DatabaseCredentialsRef, EngineKind};

/// One protected database cluster: its members, the objectives it must meet, how it is
/// backed up and how it fails over.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "lifeboat.dev",
    version = "v1alpha1",
    kind = "RecoveryPlan",
    namespaced,
    status = "RecoveryPlanStatus",
    shortname = "rp",
    category = "lifeboat",
    doc = "A database cluster protected by lifeboat, with its recovery objectives (RPO, RTO), backup schedule and failover policy.",
    printcolumn(name = "ENGINE", type_ = "string", json_path = ".spec.engine"),
    printcolumn(name = "PRIMARY", type_ = "string", json_path = ".status.primary"),
    printcolumn(name = "RPO", type_ = "string", json_path = ".spec.objectives.rpo"),
    printcolumn(
        name = "ACHIEVED-RPO",
        type_ = "string",
        json_path = ".status.achievedRpo",
        description = "Worst data loss exposure right now (primary loss or cluster loss)"
    ),
    printcolumn(
        name = "LAST-BACKUP",
        type_ = "date",
        json_path = ".status.lastBackup.completionTime"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPlanSpec {
    /// Database engine of every member.
    pub engine: EngineKind,
    /// How lifeboat finds the cluster's members: pods by label selector, or static endpoints.
    pub members: Members,
    /// Secret with the username and password lifeboat uses to probe, promote, fence and dump.
    pub credentials_secret: DatabaseCredentialsRef,
    /// Name of the Service clients use for writes. lifeboat keeps the label
    /// `lifeboat.dev/role=primary|replica|fenced` on member pods so a Service selecting
    /// `lifeboat.dev/role: primary` follows the primary (static endpoints: lifeboat
    /// maintains the Service's Endpoints instead).
    #[schemars(length(min = 1, max = 63))]
    pub writer_service: String,
    /// What the shop can afford to lose (RPO) and how long it can be down (RTO).
    pub objectives: Objectives,
    /// Scheduled backups to a BackupStore. Absent: no scheduled backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupPolicy>,
    /// How lifeboat reacts when the primary fails.
    #[serde(default)]
    pub failover: FailoverPolicy,
}

/// Cluster members: exactly one of `selector` or `endpoints`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [{"required": ["selector"]}, {"required": ["endpoints"]}]))]
pub struct Members {
    /// Pods (in the plan's namespace) whose `status.podIP` lifeboat connects to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Database port on the selected pods. Absent: the engine's default (5432 or 3306).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Members outside Kubernetes pods, by address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub endpoints: Option<Vec<StaticEndpoint>>,
}

/// A member reached by host and port.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StaticEndpoint {
    /// Member name used in status, events and `failover --to`.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: String,
    /// Host name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Database port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
}

/// Recovery objectives.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Objectives {
    /// Recovery point objective: the most data, as time, the shop may lose (e.g. `5m`).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub rpo: String,
    /// Recovery time objective: the longest the shop may be unable to write (e.g. `30s`).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub rto: String,
}

/// Scheduled backups.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicy {
    /// Cron schedule (5 fields, or 6 with seconds first; `@hourly`, `@daily`... accepted).
    #[schemars(regex(pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4,5}\S+)$"))]
    pub schedule: String,
    /// IANA time zone the schedule is read in (e.g. `Europe/Berlin`).
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1))]
    pub time_zone: String,
    /// Name of the BackupStore (same namespace) that receives the backups.
    #[schemars(length(min = 1, max = 253))]
    pub store: String,
    /// Databases to dump, each into its own object.
    #[schemars(length(min = 1))]
    pub databases: Vec<String>,
    /// Compression of the dump stream.
    #[serde(default)]
    pub compression: Compression,
    /// Which backups to keep; older ones are deleted with their S3 objects. The newest completed backup is always kept.
    #[serde(default)]
    pub retention: Retention,
    /// Dump from a healthy replica within the RPO instead of the primary, to spare the primary.
    #[serde(default = "default_true")]
    pub prefer_replica: bool,
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_true() -> bool {
    true
}

/// zstd compression.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Compression {
    /// zstd level, 1 (fastest) to 19 (smallest).
    #[serde(default = "default_zstd_level")]
    #[schemars(range(min = 1, max = 19))]
    pub level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            level: default_zstd_level(),
        }
    }
}

fn default_zstd_level() -> i32 {
    3
}

/// Grandfather-father-son retention. Each count is how many of the newest backups to keep
/// per slot (the newest in each hour, day, ISO week, month).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// The newest N completed backups are kept.
    #[serde(default = "default_keep_last")]
    #[schemars(range(min = 0, max = 10000))]
    pub keep_last: u32,
    /// One backup per hour for the last N hours that have one.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10000))]
    pub keep_hourly: u32,
    /// One backup per day for the last N days that have one.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10000))]
    pub keep_daily: u32,
    /// One backup per ISO week for the last N weeks that have one.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10000))]
    pub keep_weekly: u32,
    /// One backup per month for the last N months that have one.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10000))]
    pub keep_monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: default_keep_last(),
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
        }
    }
}

fn default_keep_last() -> u32 {
    7
}

/// Failover policy.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverPolicy {
    /// Automatic: lifeboat promotes on its own. Manual: it only reports, a person creates a Failover. Disabled: no failover at all.
    #[serde(default)]
    pub mode: FailoverMode,
    /// How often every member is probed.
    #[serde(default = "default_probe_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub probe_interval: String,
    /// Consecutive failed probes before the primary counts as failed (replicas must confirm too).
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: u32,
    /// Largest estimated data loss (as time) an unforced failover accepts. The estimate is an
    /// upper bound (see `status.members[].lagSeconds`). Absent: the RPO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub max_data_loss: Option<String>,
    /// Write a heartbeat row on the primary every probe (table `lifeboat.heartbeat`: a
    /// schema in database `postgres`, or a database `lifeboat` on MySQL/MariaDB; lifeboat's
    /// user needs CREATE there once, then INSERT/UPDATE/SELECT). It measures each replica's
    /// delay in seconds and records the failover epoch on the servers; without it the delay
    /// comes from positions alone and a writable member of unknown epoch is never adopted.
    #[serde(default = "default_true")]
    pub heartbeat: bool,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            mode: FailoverMode::default(),
            probe_interval: default_probe_interval(),
            failure_threshold: default_failure_threshold(),
            max_data_loss: None,
            heartbeat: true,
        }
    }
}

fn default_probe_interval() -> String {
    "1s".into()
}

fn default_failure_threshold() -> u32 {
    3
}

/// Who decides a failover.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum FailoverMode {
    /// lifeboat promotes the best replica when the primary fails.
    #[default]
    Automatic,
    /// lifeboat detects and reports; a person requests the Failover.
    Manual,
    /// No failover, not even requested ones.
    Disabled,
}

/// Observed state of a RecoveryPlan.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPlanStatus {
    /// Name of the member that is primary now. Changed only by a promotion (or the first
    /// adoption), always together with `epoch` and with optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Failover epoch: raised by every promotion. A member that shows up writable with an
    /// older epoch is fenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The primary's newest position lifeboat observed, kept across operator restarts: data
    /// at risk is measured against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_position: Option<ObservedPosition>,
    /// Every member as last probed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// The newest completed backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<LastBackup>,
    /// The schedule slot of the newest scheduled Backup lifeboat created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Worst current data-loss exposure in seconds: the larger of `rpo.primaryLossSeconds` and `rpo.clusterLossSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_rpo_seconds: Option<f64>,
    /// `achievedRpoSeconds` for people (e.g. `42s`), or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_rpo: Option<String>,
    /// Estimated time to recover in seconds (the worse of the two scenarios), from measurements only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_rto_seconds: Option<f64>,
    /// Data-loss exposure per failure scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<ScenarioSeconds>,
    /// Recovery time estimate per failure scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<ScenarioSeconds>,
    /// Ready, ReplicationHealthy, BackupsHealthy, RpoMet, RtoMet, FailoverReady, FailoverBlocked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The spec generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Seconds for the two failure scenarios; absent means unknown (never "met").
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioSeconds {
    /// Losing the primary (failover to the best replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_loss_seconds: Option<f64>,
    /// Losing the whole cluster (restore from the last backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_loss_seconds: Option<f64>,
}

/// One member as last probed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Member name (pod name or static endpoint name).
    pub name: String,
    /// primary, replica, fenced or unknown.
    pub role: String,
    /// Whether the last probe succeeded.
    pub healthy: bool,
    /// WAL bytes (PostgreSQL) the member lacks compared with the primary's newest observed
    /// position; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<i64>,
    /// Transactions (MySQL/MariaDB) the member lacks compared with the primary's newest
    /// observed position; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_transactions: Option<i64>,
    /// Data at risk in seconds if this member were promoted now: an upper bound, from the
    /// newest heartbeat and primary position it is known to hold. It keeps growing while the
    /// member receives nothing. Absent when unknown (never counted as zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// Replicas: whether changes still arrive from the primary (and how it is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
    /// The failover epoch recorded in this member's heartbeat row, if readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Replication position (PostgreSQL LSN, MySQL/MariaDB GTID set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// A position observed on the primary.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservedPosition {
    /// Member it was read on.
    pub member: String,
    /// PostgreSQL `timeline/LSN`, MySQL/MariaDB GTID list.
    pub position: String,
    /// When it was read.
    pub observed_at: chrono::DateTime<chrono::Utc>,
}

/// Summary of the newest completed backup.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastBackup {
    /// Name of the Backup object.
    pub name: String,
    /// When it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The point in time the backup is consistent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Bytes stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
}
