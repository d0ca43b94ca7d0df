//! RecoveryPlan controller. Each round (every `probeInterval`): validate, read the primary
//! record fresh, write the heartbeat and probe the members, read the record again (a round
//! that saw a failover start or finish acts on nothing), decide, act (adopt, fence stale
//! writers, route writes), trigger an automatic failover or a scheduled backup when due,
//! then write the status against the resourceVersion the record came from.

pub mod act;
pub mod assess;
pub mod history;
pub mod observe;
pub mod report;
pub mod route;
pub mod runtime;
pub mod schedule;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use self::report::{PlanCondition, Written, write_status};
use self::runtime::lock;
use super::context::Context;
use super::metrics::PlanLabels;
use super::primary_record::PrimaryRecord;
use super::status::PatchStatusError;
use crate::api::recovery_plan::{FailoverMode, ObservedPosition, RecoveryPlanStatus};
use crate::api::{EngineKind, RecoveryPlan};
use crate::engine::Position;
use crate::policy::failover::{PrimaryVerdict, judge_primary};
use crate::policy::objectives::human_seconds;
use crate::policy::risk::PrimarySample;
use crate::policy::validate::{PlanSettings, describe, plan_settings};

/// How soon a round whose view went stale runs again.
const STALE_RETRY: Duration = Duration::from_millis(100);

/// Why a plan reconcile failed (observations that go wrong are status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcilePlanError {
    #[error("RecoveryPlan has no namespace")]
    NoNamespace,
    #[error("reading RecoveryPlan {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    History(#[from] history::ListHistoryError),
    #[error(transparent)]
    Route(#[from] route::RouteError),
    #[error(transparent)]
    Act(#[from] act::ActError),
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
            ReconcilePlanError::Read { .. } => "ReadPlanFailed",
            ReconcilePlanError::History(_) => "ListHistoryFailed",
            ReconcilePlanError::Route(_) | ReconcilePlanError::Act(_) => "RouteWritesFailed",
            ReconcilePlanError::Schedule(_) => "ScheduleFailed",
            ReconcilePlanError::Trigger(_) => "TriggerFailoverFailed",
            ReconcilePlanError::Status(_) => "StatusWriteFailed",
        }
    }
}

/// The plan as stored now (not the controller's cached copy): routing and the status
/// write must start from the newest primary record.
async fn read_fresh(ctx: &Context, namespace: &str, name: &str) -> Result<Option<RecoveryPlan>, ReconcilePlanError> {
    Api::<RecoveryPlan>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| ReconcilePlanError::Read {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })
}

/// Writes a status with only these conditions changed; a stale write is retried soon.
async fn conditions_only(
    ctx: &Context,
    fresh: &RecoveryPlan,
    conditions: Vec<PlanCondition>,
    requeue: Duration,
) -> Result<Action, ReconcilePlanError> {
    let previous = fresh.status.clone().unwrap_or_default();
    match write_status(ctx, fresh, previous, conditions).await? {
        Written::Yes => Ok(Action::requeue(requeue)),
        Written::Stale => Ok(Action::requeue(STALE_RETRY)),
    }
}

/// One round for one plan.
pub async fn reconcile(plan: Arc<RecoveryPlan>, ctx: Arc<Context>) -> Result<Action, ReconcilePlanError> {
    let namespace = plan.namespace().ok_or(ReconcilePlanError::NoNamespace)?;
    let name = plan.name_any();
    let settings = match plan_settings(&plan.spec) {
        Ok(s) => s,
        Err(problems) => {
            let Some(fresh) = read_fresh(&ctx, &namespace, &name).await? else {
                return Ok(Action::await_change());
            };
            let invalid = PlanCondition::new("Ready", "False", "InvalidSpec", describe(&problems));
            return conditions_only(&ctx, &fresh, vec![invalid], Duration::from_secs(60)).await;
        }
    };
    if let Err(wait) = ctx.pacer.due(
        &format!("plan/{namespace}/{name}"),
        super::pacer::fingerprint(&*plan),
        settings.probe_interval.mul_f64(0.9),
    ) {
        return Ok(Action::requeue(wait));
    }
    let labels = PlanLabels {
        namespace: namespace.clone(),
        plan: name.clone(),
    };
    ctx.metrics
        .rpo_target_seconds
        .get_or_create(&labels)
        .set(settings.rpo.as_secs_f64());
    ctx.metrics
        .rto_target_seconds
        .get_or_create(&labels)
        .set(settings.rto.as_secs_f64());

    // The primary record before the probes.
    let Some(before) = read_fresh(&ctx, &namespace, &name).await? else {
        return Ok(Action::await_change());
    };
    let record = PrimaryRecord::of(&before);
    let endpoints_version = if plan.spec.members.selector.is_none() {
        route::endpoints_version(&ctx.client, &namespace, &plan.spec.writer_service).await?
    } else {
        None
    };
    tracing::debug!(?record, "round starts");
    let observation = match observe_round(&ctx, &namespace, &before, &settings, &record).await {
        Ok(o) => o,
        Err(blocker) => {
            tracing::debug!(%blocker, "members not observable");
            let blocked = PlanCondition::new("Ready", "False", blocker.reason(), blocker.to_string());
            return conditions_only(
                &ctx,
                &before,
                vec![blocked],
                settings.probe_interval.max(Duration::from_secs(5)),
            )
            .await;
        }
    };

    // The record after the probes: if it moved, this round's view is stale.
    let history = history::load(&ctx.client, &namespace, &name).await?;
    let Some(after) = read_fresh(&ctx, &namespace, &name).await? else {
        return Ok(Action::await_change());
    };
    if PrimaryRecord::of(&after) != record {
        tracing::debug!(before = ?record, after = ?PrimaryRecord::of(&after), "primary record moved during the probes: round discarded");
        return Ok(Action::requeue(STALE_RETRY));
    }
    let round = Round::assess(&observation, &record, &settings);
    let active = history.active_failover().map(|f| f.name_any());
    let acted = act::act(
        &ctx,
        after,
        &settings,
        &observation,
        &round.topology,
        endpoints_version.as_deref(),
        active.as_deref(),
    )
    .await?;
    if acted.stale {
        tracing::debug!("routing found its view stale: round discarded");
        return Ok(Action::requeue(STALE_RETRY));
    }
    trigger_failover(&ctx, &acted.plan, &round, &history, active.is_some()).await?;
    let mut conditions = acted.conditions;
    conditions.extend(store_missing(&ctx, &acted.plan).await);
    let mut status = RecoveryPlanStatus {
        last_schedule_time: acted.plan.status.as_ref().and_then(|s| s.last_schedule_time),
        ..RecoveryPlanStatus::default()
    };
    let requeue = schedule_backups(&ctx, &acted.plan, &history, &mut status, settings.probe_interval).await?;
    let conditions = round.report(&acted.plan, &history, &settings, &mut status, conditions);
    report::record_metrics(&ctx, &labels, &status);
    match write_status(&ctx, &acted.plan, status, conditions).await? {
        Written::Yes => Ok(Action::requeue(requeue)),
        Written::Stale => {
            tracing::debug!("plan changed since it was read: status not written");
            Ok(Action::requeue(STALE_RETRY))
        }
    }
}

/// Observes the members: heartbeat on the recorded primary (if it answered writable last
/// round and the plan wants heartbeats), probes, then the round recorded in memory.
async fn observe_round(
    ctx: &Context,
    namespace: &str,
    plan: &RecoveryPlan,
    settings: &PlanSettings,
    record: &PrimaryRecord,
) -> Result<observe::Observation, observe::ObserveBlocker> {
    let key = format!("{namespace}/{}", plan.name_any());
    let beat = {
        let runtime = ctx.plans.get_opt(&key);
        let writable = runtime.as_ref().is_some_and(|rt| {
            let rt = lock(rt);
            rt.memory.primary_writable && rt.memory.primary == record.primary
        });
        record
            .primary
            .clone()
            .filter(|_| settings.heartbeat && writable)
            .map(|member| observe::Beat {
                member,
                epoch: record.epoch.unwrap_or(0),
            })
    };
    let observation = observe::observe(
        &ctx.client,
        &ctx.plans,
        namespace,
        plan,
        observe::ProbeLimits::round(settings),
        beat,
        record.primary.as_deref(),
    )
    .await?;
    let mut rt = lock(&observation.runtime);
    let memory = &mut rt.memory;
    // After a restart, the newest position the status kept is the first sample.
    if memory.samples.latest().is_none()
        && let Some(kept) = plan.status.as_ref().and_then(|s| s.primary_position.as_ref())
        && record.primary.as_deref() == Some(kept.member.as_str())
        && let Some(position) = Position::parse(plan.spec.engine == EngineKind::Postgres, &kept.position)
    {
        memory.primary = record.primary.clone();
        memory.samples.push(PrimarySample {
            at: kept.observed_at,
            position,
        });
    }
    // Before the first adoption the one writable member is sampled already, so the first
    // status carries data at risk too.
    let sampled = record.primary.clone().or_else(|| {
        let writable: Vec<&String> = observation
            .probes
            .iter()
            .filter(|(_, (_, p))| {
                p.as_ref()
                    .is_ok_and(|p| p.role == crate::engine::Role::Primary && !p.read_only)
            })
            .map(|(n, _)| n)
            .collect();
        match writable.as_slice() {
            [only] => Some((*only).clone()),
            _ => None,
        }
    });
    memory.record_round(
        sampled.as_deref(),
        observation.probes.iter().map(|(n, (_, p))| (n, p.as_ref().ok())),
        chrono::Utc::now(),
        observation.primary_probed_at,
    );
    drop(rt);
    log_unreachable(namespace, &plan.name_any(), &observation);
    Ok(observation)
}

/// One WARN per member that stops answering (rate-limited while it stays down), one INFO
/// when it answers again.
fn log_unreachable(namespace: &str, plan: &str, observation: &observe::Observation) {
    for (member, (_, probe)) in &observation.probes {
        let key = format!("{namespace}/{plan}/{member}");
        match probe {
            Err(error) => {
                if let Some(suppressed) = crate::logging::repeats().admit(&key, "member not answering") {
                    tracing::warn!(plan, member = %member, %error, suppressed, "member not answering");
                }
            }
            Ok(_) => {
                if let Some(suppressed) = crate::logging::repeats().clear(&key, "member not answering") {
                    tracing::info!(plan, member = %member, suppressed, "member answers again");
                }
            }
        }
    }
}

/// Decisions of one round.
struct Round {
    topology: crate::policy::roles::Topology,
    views: Vec<crate::policy::failover::ReplicaView>,
    verdict: PrimaryVerdict,
    memory: runtime::PlanMemory,
    probes: assess::Probes,
    postgres: bool,
}

impl Round {
    fn assess(observation: &observe::Observation, record: &PrimaryRecord, settings: &PlanSettings) -> Round {
        let probes = observation.probes.clone();
        let topology = assess::topology(&probes, record.primary.as_deref(), record.epoch);
        let memory = lock(&observation.runtime).memory.clone();
        let t_end = memory.writes_possible_until(chrono::Utc::now());
        let views = assess::replica_views(&probes, topology.primary.as_deref(), &memory, settings, t_end);
        let verdict = if topology.primary.is_some() {
            judge_primary(memory.primary_failures, settings.failure_threshold, &views)
        } else {
            PrimaryVerdict::Unconfirmed {
                failures: memory.primary_failures,
                reason: "no primary found among the members".into(),
            }
        };
        let postgres = matches!(
            probes.values().find_map(|(_, p)| p.as_ref().ok()).map(|p| &p.position),
            Some(Position::Postgres(_))
        );
        Round {
            topology,
            views,
            verdict,
            memory,
            probes,
            postgres,
        }
    }

    /// Fills `status` and returns the round's conditions.
    fn report(
        &self,
        plan: &RecoveryPlan,
        history: &history::History,
        settings: &PlanSettings,
        status: &mut RecoveryPlanStatus,
        mut conditions: Vec<PlanCondition>,
    ) -> Vec<PlanCondition> {
        let now = chrono::Utc::now();
        let previous = plan.status.clone().unwrap_or_default();
        let report = assess::objectives(&self.views, history, settings.rpo, settings.rto, now);
        status.members = assess::member_statuses(
            &self.probes,
            &self.topology,
            &previous.members,
            &self.views,
            self.postgres,
        );
        status.primary_position = assess::primary_position(&self.memory).map(|(member, p, at)| ObservedPosition {
            member,
            position: p.to_string(),
            observed_at: at,
        });
        status.last_backup = report.last_backup.clone();
        status.achieved_rpo_seconds = report.rpo.worst();
        status.achieved_rpo = Some(report.rpo.worst().map_or_else(|| "unknown".into(), human_seconds));
        status.estimated_rto_seconds = report.rto.worst();
        status.rpo = Some(assess::scenario(&report.rpo));
        status.rto = Some(assess::scenario(&report.rto));
        if !conditions.iter().any(|c| c.type_ == "Ready") {
            conditions.push(self.ready(settings));
        }
        conditions.push(report::replication_condition(&status.members, &self.views, settings));
        conditions.push(report::backups_condition(plan, history));
        let rpo_met = zero_rpo_check(settings, &self.memory, &self.views).unwrap_or(report.rpo_met);
        conditions.push(PlanCondition::new(
            "RpoMet",
            rpo_met.status,
            rpo_met.reason,
            rpo_met.message,
        ));
        conditions.push(PlanCondition::new(
            "RtoMet",
            report.rto_met.status,
            report.rto_met.reason,
            report.rto_met.message,
        ));
        let (state, reason, message) = match plan.spec.failover.mode {
            FailoverMode::Disabled => ("False", "FailoverDisabled", "failover mode is Disabled".to_string()),
            _ => assess::failover_readiness(&self.views, settings.max_data_loss),
        };
        conditions.push(PlanCondition::new("FailoverReady", state, reason, message));
        conditions.push(
            match trigger::blocked(history, self.topology.primary.as_deref(), self.topology.primary_healthy) {
                Some(message) => PlanCondition::new("FailoverBlocked", "True", "DataLossTooHigh", message),
                None => PlanCondition::new("FailoverBlocked", "False", "NotBlocked", "no failover is being refused"),
            },
        );
        conditions
    }

    fn ready(&self, settings: &PlanSettings) -> PlanCondition {
        let t = &self.topology;
        if let Some(why) = &t.unsure {
            return PlanCondition::new("Ready", "False", "WritersUnordered", why.clone());
        }
        match (&t.primary, t.primary_healthy) {
            (Some(p), true)
                if settings.rpo.is_zero() && !self.memory.synchronous.as_ref().is_some_and(|s| s.in_force()) =>
            {
                PlanCondition::new(
                    "Ready",
                    "False",
                    "SynchronousReplicationRequired",
                    format!(
                        "rpo is 0s but {p} does not replicate synchronously: set synchronous_standby_names (and synchronous_commit on) so no acknowledged write can be lost, or raise spec.objectives.rpo"
                    ),
                )
            }
            (Some(p), true) => PlanCondition::new(
                "Ready",
                "True",
                "PrimaryHealthy",
                format!("{p} is a writable primary; {} member(s) probed", self.probes.len()),
            ),
            (Some(p), false) => PlanCondition::new(
                "Ready",
                "False",
                "PrimaryUnavailable",
                format!(
                    "primary {p} is not answering as a writable primary ({:?})",
                    self.verdict
                ),
            ),
            (None, _) => PlanCondition::new("Ready", "False", "NoPrimary", "no member answers as a writable primary"),
        }
    }
}

/// `rpo: 0s` is met only while synchronous replication is configured and observed and the
/// best replica's bound is exactly zero; anything else is False, never "within 0s".
fn zero_rpo_check(
    settings: &PlanSettings,
    memory: &runtime::PlanMemory,
    views: &[crate::policy::failover::ReplicaView],
) -> Option<crate::policy::objectives::Compliance> {
    use crate::policy::objectives::Compliance;
    if !settings.rpo.is_zero() {
        return None;
    }
    let sync = memory.synchronous.as_ref().is_some_and(|s| s.in_force());
    let zero = views
        .iter()
        .any(|v| v.risk.seconds == Some(0.0) && v.risk.basis.starts_with("synchronous"));
    Some(if sync && zero {
        Compliance {
            status: "True",
            reason: "SynchronousReplication",
            message: "rpo 0s met: synchronous replication is in force and every replica answers".into(),
        }
    } else {
        Compliance {
            status: "False",
            reason: "SynchronousReplicationRequired",
            message: format!(
                "rpo 0s needs synchronous replication in force with every replica answering (synchronous {}; standbys in sync: {})",
                if memory.synchronous.as_ref().is_some_and(|s| s.configured) {
                    "configured"
                } else {
                    "not configured"
                },
                memory
                    .synchronous
                    .as_ref()
                    .map(|s| s.standbys.join(", "))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "none".into())
            ),
        }
    })
}

/// Requests the automatic failover the round's verdict calls for.
async fn trigger_failover(
    ctx: &Context,
    plan: &RecoveryPlan,
    round: &Round,
    history: &history::History,
    failover_active: bool,
) -> Result<(), ReconcilePlanError> {
    let (PrimaryVerdict::Failed { failures, confirmed_by }, Some(primary)) =
        (&round.verdict, round.topology.primary.as_deref())
    else {
        return Ok(());
    };
    if plan.spec.failover.mode != FailoverMode::Automatic
        || failover_active
        || trigger::already_requested(history, primary)
    {
        return Ok(());
    }
    let namespace = plan.namespace().unwrap_or_default();
    let created = trigger::request_failover(&ctx.client, &namespace, &plan.name_any(), primary).await?;
    let note = format!(
        "primary {primary} failed {failures} probes in a row and every replica lost it too ({}): Failover {created} requested",
        confirmed_by.join("; ")
    );
    tracing::warn!(%primary, failures, failover = %created, confirmed_by = ?confirmed_by, "primary judged failed");
    ctx.event(
        &plan.object_ref(&()),
        EventType::Warning,
        "PrimaryFailed",
        "DetectFailure",
        note,
    )
    .await;
    Ok(())
}

/// Ready=False when the plan's BackupStore does not exist.
async fn store_missing(ctx: &Context, plan: &RecoveryPlan) -> Option<PlanCondition> {
    let policy = plan.spec.backup.as_ref()?;
    let namespace = plan.namespace().unwrap_or_default();
    let stores: Api<crate::api::BackupStore> = Api::namespaced(ctx.client.clone(), &namespace);
    matches!(stores.get_opt(&policy.store).await, Ok(None)).then(|| {
        PlanCondition::new(
            "Ready",
            "False",
            "BackupStoreMissing",
            format!(
                "BackupStore {namespace}/{} (spec.backup.store) not found; backups cannot run",
                policy.store
            ),
        )
    })
}

/// Scheduled backups and retention; returns when the next round is due.
async fn schedule_backups(
    ctx: &Context,
    plan: &RecoveryPlan,
    history: &history::History,
    status: &mut RecoveryPlanStatus,
    interval: Duration,
) -> Result<Duration, ReconcilePlanError> {
    let Some(policy) = &plan.spec.backup else {
        return Ok(interval);
    };
    let namespace = plan.namespace().unwrap_or_default();
    let now = chrono::Utc::now();
    let created_at = plan
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0))
        .unwrap_or(now);
    let last_slot = status.last_schedule_time.unwrap_or(created_at);
    let outcome = schedule::run_schedule(
        &ctx.client,
        &namespace,
        &plan.name_any(),
        policy,
        last_slot,
        history,
        now,
    )
    .await?;
    if let Some(slot) = outcome.created_slot {
        status.last_schedule_time = Some(slot);
    }
    let mut requeue = interval;
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
    Ok(requeue)
}
