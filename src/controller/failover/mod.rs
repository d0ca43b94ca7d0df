//! Failover controller: carries out a promotion as the DESIGN.md sequence — decide, fence
//! the old primary, promote, repoint — journaling each step before taking it.

mod estimate;
mod record;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::context::Context;
use super::metrics::{FailoverLabels, PlanLabels};
use super::plan::observe::{ObserveBlocker, observe};
use crate::api::recovery_plan::FailoverMode;
use crate::api::{Failover, FailoverPhase, RecoveryPlan};

pub use record::RecordError;

/// Why a Failover reconcile failed (refusals and failed steps are status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileFailoverError {
    #[error("Failover has no namespace")]
    NoNamespace,
    #[error("reading RecoveryPlan {namespace}/{plan}: {source}")]
    Plan {
        namespace: String,
        plan: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing Failovers in {namespace}: {source}")]
    ListFailovers {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Claim(#[from] super::primary_record::ClaimPrimaryError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Route(#[from] super::plan::route::RouteError),
    #[error("observing the members: {0}")]
    Observe(#[from] ObserveBlocker),
}

impl ReconcileFailoverError {
    /// Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileFailoverError::NoNamespace => "NoNamespace",
            ReconcileFailoverError::Plan { .. } => "PlanUnavailable",
            ReconcileFailoverError::ListFailovers { .. } => "ListFailoversFailed",
            ReconcileFailoverError::Claim(_) => "RecordPrimaryFailed",
            ReconcileFailoverError::Record(_) => "StatusWriteFailed",
            ReconcileFailoverError::Route(_) => "RouteWritesFailed",
            ReconcileFailoverError::Observe(_) => "ObserveFailed",
        }
    }
}

fn terminal(phase: Option<FailoverPhase>) -> bool {
    matches!(
        phase,
        Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
    )
}

/// Advances one Failover as far as it can go.
pub async fn reconcile(fo: Arc<Failover>, ctx: Arc<Context>) -> Result<Action, ReconcileFailoverError> {
    let namespace = fo.namespace().ok_or(ReconcileFailoverError::NoNamespace)?;
    let name = fo.name_any();
    let mut status = fo.status.clone().unwrap_or_default();
    if terminal(status.phase) {
        return Ok(Action::await_change());
    }
    let plan_api: Api<RecoveryPlan> = Api::namespaced(ctx.client.clone(), &namespace);
    let plan = match plan_api.get_opt(&fo.spec.plan).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let message = format!("RecoveryPlan {namespace}/{} not found", fo.spec.plan);
            return conclude(&ctx, &fo, &namespace, &mut status, FailoverPhase::Refused, message).await;
        }
        Err(source) => {
            return Err(ReconcileFailoverError::Plan {
                namespace,
                plan: fo.spec.plan.clone(),
                source,
            });
        }
    };
    let settings = match crate::policy::validate::plan_settings(&plan.spec) {
        Ok(s) => s,
        Err(problems) => {
            let message = format!(
                "RecoveryPlan {} is invalid: {}",
                fo.spec.plan,
                crate::policy::validate::describe(&problems)
            );
            return conclude(&ctx, &fo, &namespace, &mut status, FailoverPhase::Refused, message).await;
        }
    };
    if status.phase.is_none() || status.phase == Some(FailoverPhase::Pending) {
        if plan.spec.failover.mode == FailoverMode::Disabled {
            let message = format!("failover is Disabled in RecoveryPlan {}", fo.spec.plan);
            return conclude(&ctx, &fo, &namespace, &mut status, FailoverPhase::Refused, message).await;
        }
        if let Some(other) = steps::other_active_failover(&ctx.client, &namespace, &fo).await? {
            let message = format!("Failover {other} for the same plan is in progress");
            return conclude(&ctx, &fo, &namespace, &mut status, FailoverPhase::Refused, message).await;
        }
    }
    let old = status.old_primary.clone().or_else(|| {
        fo.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::plan::trigger::FAILED_PRIMARY_ANNOTATION).cloned())
            .or_else(|| plan.status.as_ref().and_then(|s| s.primary.clone()))
    });
    let observation = observe(
        &ctx.client,
        &ctx.plans,
        &namespace,
        &plan,
        crate::controller::plan::observe::ProbeLimits::decision(&settings),
        None,
        old.as_deref(),
    )
    .await?;
    let mut run = steps::Run {
        ctx: &ctx,
        fo: &fo,
        plan: &plan,
        settings: &settings,
        namespace: &namespace,
        observation: &observation,
    };

    loop {
        let outcome = match status.phase.unwrap_or_default() {
            FailoverPhase::Pending => run.decide(&mut status).await?,
            FailoverPhase::Fencing => run.fence(&mut status).await?,
            FailoverPhase::Promoting => run.promote(&mut status).await?,
            FailoverPhase::Repointing => run.repoint(&mut status).await?,
            FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed => {
                return Ok(Action::await_change());
            }
        };
        match outcome {
            steps::Outcome::Next(phase, reason, note) => {
                tracing::info!(plan = %fo.spec.plan, failover = %name, ?phase, step = reason, "{note}");
                ctx.event(&fo.object_ref(&()), EventType::Normal, reason, "Failover", note)
                    .await;
                status.phase = Some(phase);
                record::save(&ctx.client, &namespace, &name, &status, reason).await?;
                crash_point(phase);
            }
            steps::Outcome::End(phase, message) => {
                return conclude(&ctx, &fo, &namespace, &mut status, phase, message).await;
            }
        }
        run = steps::Run {
            ctx: &ctx,
            fo: &fo,
            plan: &plan,
            settings: &settings,
            namespace: &namespace,
            observation: &observation,
        };
    }
}

/// Fault injection for the restart tests: with `LIFEBOAT_TEST_CRASH_AFTER_PHASE=Promoting`
/// the process dies right after journaling the move into that phase, as a crash between
/// two steps would. Unset in production; documented in the README.
fn crash_point(phase: FailoverPhase) {
    if let Ok(wanted) = std::env::var("LIFEBOAT_TEST_CRASH_AFTER_PHASE")
        && format!("{phase:?}") == wanted
    {
        tracing::error!(?phase, "LIFEBOAT_TEST_CRASH_AFTER_PHASE: exiting now");
        std::process::exit(86);
    }
}

/// Ends the failover, records it, emits the event and counts it.
async fn conclude(
    ctx: &Context,
    fo: &Failover,
    namespace: &str,
    status: &mut crate::api::failover::FailoverStatus,
    phase: FailoverPhase,
    message: String,
) -> Result<Action, ReconcileFailoverError> {
    record::end(status, phase, message.clone());
    record::save(&ctx.client, namespace, &fo.name_any(), status, "end").await?;
    match phase {
        FailoverPhase::Completed => tracing::info!(
            plan = %fo.spec.plan,
            failover = %fo.name_any(),
            old = status.old_primary.as_deref(),
            new = status.new_primary.as_deref(),
            epoch = status.epoch,
            rto_seconds = status.rto_seconds,
            loss_bound_seconds = status.estimated_data_loss_seconds,
            "failover completed: {message}"
        ),
        _ => tracing::warn!(
            plan = %fo.spec.plan,
            failover = %fo.name_any(),
            ?phase,
            loss_bound_seconds = status.estimated_data_loss_seconds,
            "failover {phase:?}: {message}"
        ),
    }
    let (type_, reason, result) = match phase {
        FailoverPhase::Completed => (EventType::Normal, "FailoverCompleted", "completed"),
        FailoverPhase::Refused => (EventType::Warning, "FailoverRefused", "refused"),
        _ => (EventType::Warning, "FailoverFailed", "failed"),
    };
    ctx.event(&fo.object_ref(&()), type_, reason, "Failover", message).await;
    let labels = FailoverLabels {
        namespace: namespace.into(),
        plan: fo.spec.plan.clone(),
        result: result.into(),
    };
    ctx.metrics.failovers.get_or_create(&labels).inc();
    if let Some(rto) = status.rto_seconds {
        let plan = PlanLabels {
            namespace: namespace.into(),
            plan: fo.spec.plan.clone(),
        };
        ctx.metrics.failover_duration_seconds.get_or_create(&plan).observe(rto);
    }
    Ok(Action::requeue(Duration::from_secs(3600)))
}
