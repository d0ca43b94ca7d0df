//! The plan's status: conditions as named values, the status write (always against the
//! resourceVersion the round's primary record came from), and the metrics it feeds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::history::History;
use crate::api::RecoveryPlan;
use crate::api::recovery_plan::{MemberStatus, RecoveryPlanStatus};
use crate::controller::conditions::{ConditionUpdate, condition_status, set_condition};
use crate::controller::context::Context;
use crate::controller::metrics::{MemberLabels, PlanLabels};
use crate::controller::status::{PatchStatusError, apply_status_if_unchanged};
use crate::policy::failover::ReplicaView;
use crate::policy::validate::PlanSettings;

/// One condition to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanCondition {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl PlanCondition {
    pub fn new(type_: &'static str, status: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        PlanCondition {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Conditions whose change is worth an Event, and whether `status` is the bad state.
fn eventful(type_: &str, status: &str) -> Option<bool> {
    match type_ {
        "Ready" | "RpoMet" | "ReplicationHealthy" => Some(status != "True"),
        "FailoverBlocked" | "StaleWriterFenced" => Some(status == "True"),
        _ => None,
    }
}

/// Outcome of a status write.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// The plan changed since `fresh` was read: nothing written, run the round again.
    Stale,
}

/// Writes `status` (plus `conditions`) over `fresh`, the plan as read this round: the primary
/// record and the conditions not mentioned are carried over from it, and the write applies
/// only if the plan is still at `fresh`'s resourceVersion.
pub async fn write_status(
    ctx: &Context,
    fresh: &RecoveryPlan,
    mut status: RecoveryPlanStatus,
    conditions: Vec<PlanCondition>,
) -> Result<Written, PatchStatusError> {
    let namespace = fresh.namespace().unwrap_or_default();
    let now = Time(Timestamp::now());
    let before = fresh.status.clone().unwrap_or_default();
    let mut merged = before.conditions.clone();
    for c in conditions {
        let was = condition_status(&before.conditions, c.type_).map(str::to_string);
        set_condition(
            &mut merged,
            ConditionUpdate {
                type_: c.type_,
                status: c.status,
                reason: c.reason,
                message: c.message.clone(),
            },
            fresh.metadata.generation,
            &now,
        );
        if was.as_deref() != Some(c.status)
            && let Some(bad) = eventful(c.type_, c.status)
        {
            let type_ev = if bad { EventType::Warning } else { EventType::Normal };
            ctx.event(&fresh.object_ref(&()), type_ev, c.reason, c.type_, c.message)
                .await;
        }
    }
    status.conditions = merged;
    status.observed_generation = fresh.metadata.generation;
    status.primary = before.primary.clone();
    status.epoch = before.epoch;
    if status.primary_position.is_none() {
        status.primary_position = before.primary_position.clone();
    }
    let api: Api<RecoveryPlan> = Api::namespaced(ctx.client.clone(), &namespace);
    let rv = fresh.resource_version().unwrap_or_default();
    match apply_status_if_unchanged(&api, &namespace, &fresh.name_any(), &rv, &status).await? {
        Some(_) => Ok(Written::Yes),
        None => Ok(Written::Stale),
    }
}

/// ReplicationHealthy: every replica receives and holds data within the RPO.
pub fn replication_condition(
    members: &[MemberStatus],
    views: &[ReplicaView],
    settings: &PlanSettings,
) -> PlanCondition {
    let replicas: Vec<&MemberStatus> = members.iter().filter(|m| m.role == "replica").collect();
    if replicas.is_empty() {
        return PlanCondition::new(
            "ReplicationHealthy",
            "False",
            "NoReplicas",
            "no healthy replica: losing the primary means restoring a backup",
        );
    }
    let rpo = settings.rpo.as_secs_f64();
    let lagging: Vec<String> = replicas
        .iter()
        .filter_map(|m| {
            let view = views.iter().find(|v| v.name == m.name);
            let lost = view.and_then(|v| v.hearing.as_ref()).is_some_and(|h| h.lost());
            let beyond = m.lag_seconds.is_none_or(|l| l > rpo);
            (!m.healthy || lost || beyond).then(|| {
                format!(
                    "{} (at risk {}{})",
                    m.name,
                    m.lag_seconds.map_or("unknown".into(), |l| format!("{l:.1}s")),
                    if lost {
                        format!(
                            ", not receiving: {}",
                            view.and_then(|v| v.hearing.as_ref()).map(|h| h.detail()).unwrap_or("")
                        )
                    } else {
                        String::new()
                    }
                )
            })
        })
        .collect();
    if lagging.is_empty() {
        PlanCondition::new(
            "ReplicationHealthy",
            "True",
            "ReplicasWithinRpo",
            format!("{} replica(s) receiving, data at risk within the RPO", replicas.len()),
        )
    } else {
        PlanCondition::new(
            "ReplicationHealthy",
            "False",
            "ReplicaLagging",
            format!("beyond the RPO, not receiving or unknown: {}", lagging.join(", ")),
        )
    }
}

/// BackupsHealthy from the newest finished backup.
pub fn backups_condition(plan: &RecoveryPlan, history: &History) -> PlanCondition {
    if plan.spec.backup.is_none() {
        return PlanCondition::new(
            "BackupsHealthy",
            "False",
            "NoSchedule",
            "no backup schedule: losing the cluster loses everything",
        );
    }
    let finished = history.backups.iter().find(|b| {
        matches!(
            b.status.as_ref().and_then(|s| s.phase),
            Some(crate::api::BackupPhase::Completed | crate::api::BackupPhase::Failed)
        )
    });
    match finished.and_then(|b| Some((b.metadata.name.clone()?, b.status.clone()?))) {
        None => PlanCondition::new("BackupsHealthy", "Unknown", "NoBackupYet", "no backup has finished yet"),
        Some((name, s)) if s.phase == Some(crate::api::BackupPhase::Completed) => PlanCondition::new(
            "BackupsHealthy",
            "True",
            "LastBackupCompleted",
            format!("newest backup {name} completed"),
        ),
        Some((name, s)) => PlanCondition::new(
            "BackupsHealthy",
            "False",
            "LastBackupFailed",
            format!("newest backup {name} failed: {}", s.message.unwrap_or_default()),
        ),
    }
}

/// Exports the round's numbers.
pub fn record_metrics(ctx: &Context, labels: &PlanLabels, status: &RecoveryPlanStatus) {
    let m = &ctx.metrics;
    if let Some(v) = status.achieved_rpo_seconds {
        m.rpo_achieved_seconds.get_or_create(labels).set(v);
    }
    if let Some(v) = status.estimated_rto_seconds {
        m.rto_estimated_seconds.get_or_create(labels).set(v);
    }
    if let Some(b) = &status.last_backup {
        if let Some(t) = b.completion_time {
            m.backup_last_success_timestamp_seconds
                .get_or_create(labels)
                .set(t.timestamp() as f64);
        }
        if let Some(size) = b.size_bytes {
            m.backup_bytes.get_or_create(labels).set(size as f64);
        }
    }
    for member in status.members.iter().filter(|m| m.role == "replica") {
        let l = MemberLabels {
            namespace: labels.namespace.clone(),
            plan: labels.plan.clone(),
            member: member.name.clone(),
        };
        // Unknown is never exported as a stale or zero value: +Inf keeps lag alerts firing.
        m.replica_lag_seconds
            .get_or_create(&l)
            .set(member.lag_seconds.unwrap_or(f64::INFINITY));
        if let Some(b) = member.lag_bytes.or(member.lag_transactions) {
            m.replica_lag_bytes.get_or_create(&l).set(b as f64);
        }
    }
}
