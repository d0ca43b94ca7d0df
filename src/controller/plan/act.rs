//! The plan controller's actions on a round's decisions: adopt a primary (through the one
//! primary record), fence writable members of an older epoch, route writes. Every write is
//! guarded so that a round whose view went stale cannot undo a failover.

use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::observe::Observation;
use super::report::PlanCondition;
use super::route::{self, Precondition, RouteError, WriterService};
use crate::api::RecoveryPlan;
use crate::controller::context::Context;
use crate::controller::metrics::MemberLabels;
use crate::controller::primary_record::{Claim, ClaimPrimaryError, PrimaryRecord, claim};
use crate::engine::{Engine, HeartbeatWrite};
use crate::policy::roles::Topology;
use crate::policy::validate::PlanSettings;

/// Why acting on a round failed.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Claim(#[from] ClaimPrimaryError),
}

/// What acting did.
pub struct Acted {
    /// The plan as last read or written (its resourceVersion guards the status write).
    pub plan: RecoveryPlan,
    /// Conditions the actions produced.
    pub conditions: Vec<PlanCondition>,
    /// The round's view went stale (a claim lost, a routed object changed): run again.
    pub stale: bool,
}

/// Adopts, fences and routes as `topology` says, unless a failover runs or lifeboat is
/// unsure. `endpoints_version` is the writer Endpoints' resourceVersion read before the probes.
pub async fn act(
    ctx: &Context,
    plan: RecoveryPlan,
    settings: &PlanSettings,
    observation: &Observation,
    topology: &Topology,
    endpoints_version: Option<&str>,
    failover_active: Option<&str>,
) -> Result<Acted, ActError> {
    let mut acted = Acted {
        plan,
        conditions: Vec::new(),
        stale: false,
    };
    if let Some(failover) = failover_active {
        tracing::debug!(failover, "routing left to the running Failover");
        return Ok(acted);
    }
    if let Some(why) = &topology.unsure {
        acted.conditions.push(PlanCondition::new(
            "StaleWriterFenced",
            "True",
            "WritersUnordered",
            why.clone(),
        ));
        return Ok(acted);
    }
    if let Some(member) = &topology.adopt {
        match adopt(ctx, &acted.plan, settings, observation, member).await? {
            Some(plan) => acted.plan = plan,
            None => {
                acted.stale = true;
                return Ok(acted);
            }
        }
    }
    acted
        .conditions
        .push(fence_stale_writers(ctx, &acted.plan, observation, topology).await);
    match route_writes(ctx, &acted.plan, observation, topology, endpoints_version).await {
        Ok(Some(missing)) => acted.conditions.push(missing),
        Ok(None) => {}
        Err(RouteError::Stale { what, name, .. }) => {
            tracing::debug!(what, name, "routing skipped: changed since this round read it");
            acted.stale = true;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(acted)
}

/// Records `member` as the primary: epoch 0 for the first adoption, the next epoch for a
/// member promoted outside lifeboat (stamped into its heartbeat row). `None`: lost the race.
async fn adopt(
    ctx: &Context,
    plan: &RecoveryPlan,
    settings: &PlanSettings,
    observation: &Observation,
    member: &str,
) -> Result<Option<RecoveryPlan>, ActError> {
    let namespace = plan.namespace().unwrap_or_default();
    let record = PrimaryRecord::of(plan);
    let first = record.primary.is_none() && record.epoch.is_none();
    let epoch = if first { 0 } else { record.epoch.unwrap_or(0) + 1 };
    let written = match claim(&ctx.client, &namespace, &plan.name_any(), record.epoch, member, epoch).await? {
        Claim::Won(plan) => *plan,
        Claim::Lost(_) => return Ok(None),
    };
    if settings.heartbeat
        && let Some((m, _)) = observation.probes.get(member)
    {
        let beat = HeartbeatWrite {
            written_at: chrono::Utc::now(),
            epoch,
            writer: member.to_string(),
        };
        if let Err(e) = observation.engine.write_heartbeat(m, &beat).await {
            tracing::warn!(member, error = %e, "could not stamp the new epoch in the heartbeat row");
        }
    }
    let (type_, note) = if first {
        (EventType::Normal, format!("{member} is the primary (epoch {epoch})"))
    } else {
        (
            EventType::Warning,
            format!(
                "{member} was promoted outside lifeboat while {} was not writable; recorded as primary of epoch {epoch}",
                record.primary.unwrap_or_default()
            ),
        )
    };
    tracing::info!(member, epoch, "primary recorded");
    ctx.event(&written.object_ref(&()), type_, "PrimaryRecorded", "Route", note)
        .await;
    Ok(Some(written))
}

/// Makes writable members of an older or unknown epoch read-only (sessions ended) and
/// reports each: a Warning event, the metric, the StaleWriterFenced condition.
async fn fence_stale_writers(
    ctx: &Context,
    plan: &RecoveryPlan,
    observation: &Observation,
    topology: &Topology,
) -> PlanCondition {
    if topology.to_fence.is_empty() {
        let previous = plan
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "StaleWriterFenced"))
            .filter(|c| c.status == "True")
            .map(|c| format!("; previously: {}", c.message))
            .unwrap_or_default();
        return PlanCondition::new(
            "StaleWriterFenced",
            "False",
            "NoStaleWriter",
            format!("no writable member besides the primary{previous}"),
        );
    }
    let namespace = plan.namespace().unwrap_or_default();
    let mut notes = Vec::new();
    for stale in &topology.to_fence {
        let Some((member, _)) = observation.probes.get(&stale.name) else {
            continue;
        };
        let result = match observation.engine.fence(member).await {
            Ok(f) if f.confirmed => format!("read-only, {} session(s) ended", f.sessions_terminated),
            Ok(f) => format!("not confirmed read-only ({})", f.detail.unwrap_or_default()),
            Err(e) => format!("fencing failed: {e}"),
        };
        let note = format!("{}: fenced ({result})", stale.why);
        tracing::warn!(member = %stale.name, epoch = ?stale.epoch, %result, "stale writable member fenced");
        ctx.metrics
            .stale_writers_fenced
            .get_or_create(&MemberLabels {
                namespace: namespace.clone(),
                plan: plan.name_any(),
                member: stale.name.clone(),
            })
            .inc();
        ctx.event(
            &plan.object_ref(&()),
            EventType::Warning,
            "StaleWriterFenced",
            "Fence",
            note.clone(),
        )
        .await;
        notes.push(note);
    }
    PlanCondition::new("StaleWriterFenced", "True", "OlderEpochWritable", notes.join("; "))
}

/// Labels pods and keeps the writer Service on the primary. Returns a Ready=False condition
/// when the writer Service is missing.
async fn route_writes(
    ctx: &Context,
    plan: &RecoveryPlan,
    observation: &Observation,
    topology: &Topology,
    endpoints_version: Option<&str>,
) -> Result<Option<PlanCondition>, RouteError> {
    let namespace = plan.namespace().unwrap_or_default();
    let service_name = &plan.spec.writer_service;
    let service = match route::get_writer_service(&ctx.client, &namespace, service_name).await? {
        WriterService::Missing => {
            return Ok(Some(PlanCondition::new(
                "Ready",
                "False",
                "WriterServiceMissing",
                format!(
                    "writer Service {namespace}/{service_name} not found; create it so clients can follow the primary"
                ),
            )));
        }
        WriterService::Found(service) => service,
    };
    if plan.spec.members.selector.is_some() {
        route::label_pods(
            &ctx.client,
            &namespace,
            &observation.pods,
            &topology.labels,
            Precondition::Unchanged,
        )
        .await?;
        route::ensure_primary_selector(&ctx.client, &namespace, &service).await?;
    } else {
        let primary = topology
            .primary
            .as_ref()
            .filter(|_| topology.primary_healthy)
            .and_then(|p| observation.probes.get(p))
            .map(|(m, _)| m);
        route::point_endpoints(
            &ctx.client,
            &namespace,
            &service,
            primary,
            Precondition::Unchanged,
            endpoints_version,
        )
        .await?;
    }
    Ok(None)
}
