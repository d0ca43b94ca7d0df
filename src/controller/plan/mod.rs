//! RecoveryPlan controller. Each round (every `probeInterval`): observe the members,
//! decide the topology and whether the primary has failed, route writes, trigger an
//! automatic failover or a scheduled backup when due, then write the status.

pub mod assess;
pub mod history;
pub mod observe;
pub mod route;
pub mod runtime;
pub mod schedule;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::conditions::{ConditionUpdate, condition_status, set_condition};
use super::context::Context;
use super::metrics::{MemberLabels, PlanLabels};
use super::status::{PatchStatusError, apply_status};
use crate::api::recovery_plan::{FailoverMode, RecoveryPlanStatus};
use crate::api::{RecoveryPlan, recovery_plan::MemberStatus};
use crate::engine::Engine;
use crate::policy::failover::{PrimaryVerdict, judge_primary};
use crate::policy::objectives::human_seconds;
use crate::policy::validate::{describe, parse_duration, validate_plan};

/// Why a plan reconcile failed (observations that go wrong are status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcilePlanError {
    #[error("RecoveryPlan has no namespace")]
    NoNamespace,
    #[error(transparent)]
    History(#[from] history::ListHistoryError),
    #[error(transparent)]
    Route(#[from] route::RouteError),
    #[error(transparent)]
    Schedule(#[from] schedule::ScheduleError),
    #[error(transparent)]
    Trigger(#[from] trigger::TriggerError),
    #[error(transparent)]
    Status(#[from] PatchStatusError),
}

impl ReconcilePlanError {
    /// Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcilePlanError::NoNamespace => "NoNamespace",
            ReconcilePlanError::History(_) => "ListHistoryFailed",
            ReconcilePlanError::Route(_) => "RouteWritesFailed",
            ReconcilePlanError::Schedule(_) => "ScheduleFailed",
            ReconcilePlanError::Trigger(_) => "TriggerFailoverFailed",
            ReconcilePlanError::Status(_) => "StatusWriteFailed",
        }
    }
}

type Conditions = Vec<(&'static str, &'static str, &'static str, String)>;

/// Writes the given conditions (and optionally more status) and returns.
async fn write_status(
    ctx: &Context,
    plan: &RecoveryPlan,
    namespace: &str,
    mut status: RecoveryPlanStatus,
    conditions: Conditions,
) -> Result<(), ReconcilePlanError> {
    let now = Time(Timestamp::now());
    let before = plan.status.clone().unwrap_or_default();
    let mut merged = before.conditions.clone();
    for (type_, state, reason, message) in conditions {
        let was = condition_status(&before.conditions, type_).map(str::to_string);
        set_condition(
            &mut merged,
            ConditionUpdate {
                type_,
                status: state,
                reason,
                message: message.clone(),
            },
            plan.metadata.generation,
            &now,
        );
        if was.as_deref() != Some(state) && matches!(type_, "Ready" | "FailoverBlocked" | "RpoMet") {
            let bad = (type_ == "FailoverBlocked") == (state == "True");
            let type_ev = if bad { EventType::Warning } else { EventType::Normal };
            ctx.event(&plan.object_ref(&()), type_ev, reason, type_, message).await;
        }
    }
    status.conditions = merged;
    status.observed_generation = plan.metadata.generation;
    let api: Api<RecoveryPlan> = Api::namespaced(ctx.client.clone(), namespace);
    apply_status(&api, namespace, &plan.name_any(), &status).await?;
    Ok(())
}

/// One round for one plan.
pub async fn reconcile(plan: Arc<RecoveryPlan>, ctx: Arc<Context>) -> Result<Action, ReconcilePlanError> {
    let namespace = plan.namespace().ok_or(ReconcilePlanError::NoNamespace)?;
    let name = plan.name_any();
    let previous = plan.status.clone().unwrap_or_default();

    // Validate what the schema cannot.
    let problems = validate_plan(&plan.spec);
    let parsed = match (
        parse_duration("rpo", &plan.spec.objectives.rpo),
        parse_duration("rto", &plan.spec.objectives.rto),
        parse_duration("probeInterval", &plan.spec.failover.probe_interval),
    ) {
        (Ok(rpo), Ok(rto), Ok(interval)) if problems.is_empty() => Some((rpo, rto, interval)),
        _ => None,
    };
    let Some((rpo, rto, interval)) = parsed else {
        let conditions = vec![("Ready", "False", "InvalidSpec", describe(&problems))];
        write_status(&ctx, &plan, &namespace, previous, conditions).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    if let Err(wait) = ctx.pacer.due(
        &format!("plan/{namespace}/{name}"),
        super::pacer::fingerprint(&*plan),
        interval.mul_f64(0.9),
    ) {
        return Ok(Action::requeue(wait));
    }
    let max_data_loss = plan
        .spec
        .failover
        .max_data_loss
        .as_deref()
        .and_then(|d| parse_duration("maxDataLoss", d).ok())
        .unwrap_or(rpo);
    let labels = PlanLabels {
        namespace: namespace.clone(),
        plan: name.clone(),
    };
    ctx.metrics
        .rpo_target_seconds
        .get_or_create(&labels)
        .set(rpo.as_secs_f64());
    ctx.metrics
        .rto_target_seconds
        .get_or_create(&labels)
        .set(rto.as_secs_f64());

    // Observe.
    let history = history::load(&ctx.client, &namespace, &name).await?;
    let observation = match observe::observe(&ctx.client, &ctx.plans, &namespace, &plan).await {
        Ok(o) => o,
        Err(blocker) => {
            let conditions = vec![("Ready", "False", blocker.reason(), blocker.to_string())];
            write_status(&ctx, &plan, &namespace, previous, conditions).await?;
            return Ok(Action::requeue(interval.max(Duration::from_secs(5))));
        }
    };
    let probes = &observation.probes;
    let topology = assess::topology(probes, previous.primary.as_deref());

    // Remember the primary's last healthy state; count its failures.
    let runtime = ctx.plans.get_existing(&observation.runtime_key);
    let (failures, primary_position, lag_memory, engine) = {
        let mut rt = runtime.lock().unwrap_or_else(|p| p.into_inner());
        if topology.primary_healthy {
            rt.primary_failures = 0;
            rt.last_primary_position = topology
                .primary
                .as_ref()
                .and_then(|p| probes.get(p))
                .and_then(|(_, r)| r.as_ref().ok())
                .map(|p| p.position.clone());
            rt.lag_at_last_healthy = probes
                .iter()
                .filter_map(|(n, (_, r))| r.as_ref().ok().map(|p| (n.clone(), p.lag_seconds)))
                .collect();
        } else {
            rt.primary_failures = rt.primary_failures.saturating_add(1);
        }
        (
            rt.primary_failures,
            rt.last_primary_position.clone(),
            rt.lag_at_last_healthy.clone(),
            rt.engine.clone(),
        )
    };
    let replicas = assess::replica_views(probes, &topology, primary_position.as_ref(), &lag_memory);
    let verdict = if topology.primary.is_some() {
        judge_primary(failures, plan.spec.failover.failure_threshold, &replicas)
    } else {
        PrimaryVerdict::Unconfirmed {
            failures,
            reason: "no primary found among the members".into(),
        }
    };

    // Route writes: fence split-brain extras, label pods, keep the writer Service on the primary.
    for extra in &topology.to_fence {
        if let Some((member, _)) = probes.get(extra) {
            let fenced = engine.fence(member).await;
            tracing::warn!(member = %extra, ?fenced, "second writable primary found: fenced");
        }
    }
    let mut conditions: Conditions = Vec::new();
    match route::get_writer_service(&ctx.client, &namespace, &plan.spec.writer_service).await? {
        route::WriterService::Missing => conditions.push((
            "Ready",
            "False",
            "WriterServiceMissing",
            format!(
                "writer Service {namespace}/{} not found; create it so clients can follow the primary",
                plan.spec.writer_service
            ),
        )),
        route::WriterService::Found(service) => {
            if plan.spec.members.selector.is_some() {
                route::label_pods(&ctx.client, &namespace, &observation.pods, &topology.labels).await?;
                route::ensure_primary_selector(&ctx.client, &namespace, &service).await?;
            } else {
                let primary = topology
                    .primary
                    .as_ref()
                    .filter(|_| topology.primary_healthy)
                    .and_then(|p| probes.get(p))
                    .map(|(m, _)| m);
                route::point_endpoints(&ctx.client, &namespace, &service, primary).await?;
            }
        }
    }

    if let Some(policy) = &plan.spec.backup {
        let stores: Api<crate::api::BackupStore> = Api::namespaced(ctx.client.clone(), &namespace);
        if matches!(stores.get_opt(&policy.store).await, Ok(None)) {
            conditions.push((
                "Ready",
                "False",
                "BackupStoreMissing",
                format!(
                    "BackupStore {namespace}/{} (spec.backup.store) not found; backups cannot run",
                    policy.store
                ),
            ));
        }
    }

    // Automatic failover.
    if let (PrimaryVerdict::Failed { failures }, Some(primary)) = (&verdict, topology.primary.as_deref())
        && plan.spec.failover.mode == FailoverMode::Automatic
        && !trigger::already_requested(&history, primary)
    {
        let created = trigger::request_failover(&ctx.client, &namespace, &name, primary).await?;
        ctx.event(
            &plan.object_ref(&()),
            EventType::Warning,
            "PrimaryFailed",
            "DetectFailure",
            format!("primary {primary} failed {failures} probes in a row and the replicas lost it too: Failover {created} requested"),
        )
        .await;
    }

    // Scheduled backups and retention.
    let now = chrono::Utc::now();
    let mut status = RecoveryPlanStatus {
        last_schedule_time: previous.last_schedule_time,
        ..RecoveryPlanStatus::default()
    };
    let mut requeue = interval;
    if let Some(policy) = &plan.spec.backup {
        let created_at = plan
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
            .unwrap_or(now);
        let last_slot = previous.last_schedule_time.unwrap_or(created_at);
        let outcome = schedule::run_schedule(&ctx.client, &namespace, &name, policy, last_slot, &history, now).await?;
        if let Some(slot) = outcome.created_slot {
            status.last_schedule_time = Some(slot);
        }
        if let Some(next) = outcome.next {
            requeue = requeue.min(
                (next - now)
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_millis(100)),
            );
        }
        for pruned in outcome.pruned {
            ctx.event(
                &plan.object_ref(&()),
                EventType::Normal,
                "BackupPruned",
                "Retention",
                format!("Backup {pruned} deleted by retention"),
            )
            .await;
        }
    }

    // Status.
    let report = assess::objectives(&replicas, &history, rpo, rto, now);
    status.primary = topology.primary.clone();
    status.members = assess::member_statuses(probes, &topology, &previous.members, primary_position.as_ref());
    status.last_backup = report.last_backup.clone();
    status.achieved_rpo_seconds = report.rpo.worst();
    status.achieved_rpo = Some(report.rpo.worst().map_or_else(|| "unknown".into(), human_seconds));
    status.estimated_rto_seconds = report.rto.worst();
    status.rpo = Some(assess::scenario(&report.rpo));
    status.rto = Some(assess::scenario(&report.rto));
    record_metrics(&ctx, &labels, &status);

    if !conditions.iter().any(|c| c.0 == "Ready") {
        conditions.push(match (&topology.primary, topology.primary_healthy, &verdict) {
            (Some(p), true, _) => (
                "Ready",
                "True",
                "PrimaryHealthy",
                format!("{p} is a writable primary; {} member(s) probed", probes.len()),
            ),
            (Some(p), false, v) => (
                "Ready",
                "False",
                "PrimaryUnavailable",
                format!("primary {p} is not answering as a writable primary ({v:?})"),
            ),
            (None, _, _) => (
                "Ready",
                "False",
                "NoPrimary",
                "no member answers as a writable primary".into(),
            ),
        });
    }
    conditions.push(replication_condition(&status.members, rpo));
    conditions.push(backups_condition(&plan, &history));
    conditions.push((
        "RpoMet",
        report.rpo_met.status,
        report.rpo_met.reason,
        report.rpo_met.message.clone(),
    ));
    conditions.push((
        "RtoMet",
        report.rto_met.status,
        report.rto_met.reason,
        report.rto_met.message.clone(),
    ));
    let (ready_state, ready_reason, ready_message) = match plan.spec.failover.mode {
        FailoverMode::Disabled => ("False", "FailoverDisabled", "failover mode is Disabled".to_string()),
        _ => assess::failover_readiness(&replicas, max_data_loss),
    };
    conditions.push(("FailoverReady", ready_state, ready_reason, ready_message));
    match trigger::blocked(&history, topology.primary.as_deref(), topology.primary_healthy) {
        Some(message) => conditions.push(("FailoverBlocked", "True", "DataLossTooHigh", message)),
        None => conditions.push((
            "FailoverBlocked",
            "False",
            "NotBlocked",
            "no failover is being refused".into(),
        )),
    }
    write_status(&ctx, &plan, &namespace, status, conditions).await?;
    Ok(Action::requeue(requeue))
}

fn replication_condition(
    members: &[MemberStatus],
    rpo: Duration,
) -> (&'static str, &'static str, &'static str, String) {
    let replicas: Vec<&MemberStatus> = members.iter().filter(|m| m.role == "replica").collect();
    if replicas.is_empty() {
        return (
            "ReplicationHealthy",
            "False",
            "NoReplicas",
            "no healthy replica: losing the primary means restoring a backup".into(),
        );
    }
    let lagging: Vec<String> = replicas
        .iter()
        .filter(|m| !m.healthy || m.lag_seconds.is_none_or(|l| l > rpo.as_secs_f64()))
        .map(|m| {
            format!(
                "{} (lag {})",
                m.name,
                m.lag_seconds.map_or("unknown".into(), |l| format!("{l:.1}s"))
            )
        })
        .collect();
    if lagging.is_empty() {
        (
            "ReplicationHealthy",
            "True",
            "ReplicasWithinRpo",
            format!("{} replica(s) within the RPO", replicas.len()),
        )
    } else {
        (
            "ReplicationHealthy",
            "False",
            "ReplicaLagging",
            format!("beyond the RPO or unknown: {}", lagging.join(", ")),
        )
    }
}

fn backups_condition(
    plan: &RecoveryPlan,
    history: &history::History,
) -> (&'static str, &'static str, &'static str, String) {
    if plan.spec.backup.is_none() {
        return (
            "BackupsHealthy",
            "False",
            "NoSchedule",
            "no backup schedule: losing the cluster loses everything".into(),
        );
    }
    let finished = history.backups.iter().find(|b| {
        matches!(
            b.status.as_ref().and_then(|s| s.phase),
            Some(crate::api::BackupPhase::Completed | crate::api::BackupPhase::Failed)
        )
    });
    match finished.and_then(|b| Some((b.metadata.name.clone()?, b.status.clone()?))) {
        None => (
            "BackupsHealthy",
            "Unknown",
            "NoBackupYet",
            "no backup has finished yet".into(),
        ),
        Some((name, s)) if s.phase == Some(crate::api::BackupPhase::Completed) => (
            "BackupsHealthy",
            "True",
            "LastBackupCompleted",
            format!("newest backup {name} completed"),
        ),
        Some((name, s)) => (
            "BackupsHealthy",
            "False",
            "LastBackupFailed",
            format!("newest backup {name} failed: {}", s.message.unwrap_or_default()),
        ),
    }
}

fn record_metrics(ctx: &Context, labels: &PlanLabels, status: &RecoveryPlanStatus) {
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
        if let Some(s) = member.lag_seconds {
            m.replica_lag_seconds.get_or_create(&l).set(s);
        }
        if let Some(b) = member.lag_bytes {
            m.replica_lag_bytes.get_or_create(&l).set(b as f64);
        }
    }
}
