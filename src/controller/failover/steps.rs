//! The steps of a failover. Each returns what should happen next; the caller journals it.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::ReconcileFailoverError;
use super::record::{begin, done, finish, set_plan_primary};
use crate::api::failover::{FailoverStatus, FailoverType};
use crate::api::{Failover, FailoverPhase, RecoveryPlan};
use crate::controller::context::Context;
use crate::controller::plan::assess::{replica_views, topology};
use crate::controller::plan::observe::Observation;
use crate::controller::plan::route::{self, WriterService};
use crate::controller::plan::trigger::FAILED_PRIMARY_ANNOTATION;
use crate::engine::position::compare;
use crate::engine::{Engine, Member, Role};
use crate::policy::failover::{LossDecision, choose_candidate, judge_data_loss};
use crate::policy::roles::RoleLabel;
use crate::policy::validate::parse_duration;

/// How long a switchover waits for the candidate to reach the fenced primary's position.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a step decided.
pub enum Outcome {
    /// Journal and go on to this phase (event reason, note).
    Next(FailoverPhase, &'static str, String),
    /// Finish in this terminal phase with this message.
    End(FailoverPhase, String),
}

/// One reconcile's view.
pub struct Run<'a> {
    pub ctx: &'a Context,
    pub fo: &'a Failover,
    pub plan: &'a RecoveryPlan,
    pub namespace: &'a str,
    pub observation: &'a Observation,
}

/// Another Failover of the same plan that started earlier and has not ended.
pub async fn other_active_failover(
    client: &Client,
    namespace: &str,
    fo: &Failover,
) -> Result<Option<String>, ReconcileFailoverError> {
    let api: Api<Failover> = Api::namespaced(client.clone(), namespace);
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(|source| ReconcileFailoverError::Plan {
            namespace: namespace.into(),
            plan: fo.spec.plan.clone(),
            source,
        })?;
    let mine = (fo.metadata.creation_timestamp.clone(), fo.name_any());
    Ok(all
        .items
        .into_iter()
        .filter(|o| o.spec.plan == fo.spec.plan && o.name_any() != fo.name_any())
        .filter(|o| {
            let phase = o.status.as_ref().and_then(|s| s.phase);
            !super::terminal(phase) && phase.is_some_and(|p| p != FailoverPhase::Pending)
                || (phase.is_none_or(|p| p == FailoverPhase::Pending)
                    && (o.metadata.creation_timestamp.clone(), o.name_any()) < mine)
        })
        .map(|o| o.name_any())
        .next())
}

impl Run<'_> {
    fn member(&self, name: &str) -> Option<&Member> {
        self.observation.probes.get(name).map(|(m, _)| m)
    }

    fn engine(&self) -> std::sync::Arc<crate::engine::AnyEngine> {
        let rt = self.ctx.plans.get_existing(&self.observation.runtime_key);
        let guard = rt.lock().unwrap_or_else(|p| p.into_inner());
        guard.engine.clone()
    }

    /// Points writes: pods relabelled (selector plans) or endpoints set (static plans).
    async fn route(
        &self,
        labels: BTreeMap<String, RoleLabel>,
        primary: Option<&Member>,
    ) -> Result<(), ReconcileFailoverError> {
        let client = &self.ctx.client;
        if self.plan.spec.members.selector.is_some() {
            route::label_pods(client, self.namespace, &self.observation.pods, &labels).await?;
        } else if let WriterService::Found(service) =
            route::get_writer_service(client, self.namespace, &self.plan.spec.writer_service).await?
        {
            route::point_endpoints(client, self.namespace, &service, primary).await?;
        }
        Ok(())
    }

    /// Pending: pick the candidate, refuse if the loss would be too high.
    pub async fn decide(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let recorded = self.plan.status.as_ref().and_then(|s| s.primary.clone());
        let old = self
            .fo
            .annotations()
            .get(FAILED_PRIMARY_ANNOTATION)
            .cloned()
            .or(recorded);
        let Some(old) = old else {
            return Ok(Outcome::End(
                FailoverPhase::Refused,
                "the plan has no recorded primary to fail over from".into(),
            ));
        };
        let probes = &self.observation.probes;
        let mut topo = topology(probes, Some(&old));
        topo.primary = Some(old.clone());
        topo.primary_healthy = probes
            .get(&old)
            .is_some_and(|(_, p)| p.as_ref().is_ok_and(|p| p.role == Role::Primary && !p.read_only));
        let (position, lags) = {
            let rt = self.ctx.plans.get_existing(&self.observation.runtime_key);
            let guard = rt.lock().unwrap_or_else(|p| p.into_inner());
            (guard.last_primary_position.clone(), guard.lag_at_last_healthy.clone())
        };
        let replicas = replica_views(probes, &topo, position.as_ref(), &lags);
        let candidate = match choose_candidate(&replicas, self.fo.spec.to.as_deref()) {
            Ok(c) => c.clone(),
            Err(e) => return Ok(Outcome::End(FailoverPhase::Refused, e.to_string())),
        };
        let switchover = self.fo.spec.kind == FailoverType::Switchover;
        if switchover && !topo.primary_healthy {
            return Ok(Outcome::End(
                FailoverPhase::Refused,
                format!("a Switchover needs a healthy primary, and {old} is not; request type: Failover"),
            ));
        }
        status.old_primary = Some(old.clone());
        status.new_primary = Some(candidate.name.clone());
        status.estimated_data_loss_seconds = if switchover {
            Some(0.0)
        } else {
            candidate.lag.map(|l| l.as_secs_f64())
        };
        status.estimated_data_loss = candidate.missing.map(|m| format!("{m} {}", self.units()));
        status.started_at = self
            .fo
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32))
            .or(Some(chrono::Utc::now()));
        if !switchover {
            let rpo = parse_duration("rpo", &self.plan.spec.objectives.rpo).unwrap_or_default();
            let max = self
                .plan
                .spec
                .failover
                .max_data_loss
                .as_deref()
                .and_then(|d| parse_duration("maxDataLoss", d).ok())
                .unwrap_or(rpo);
            if let LossDecision::Refuse { message } = judge_data_loss(&candidate, max, self.fo.spec.force) {
                return Ok(Outcome::End(FailoverPhase::Refused, message));
            }
        }
        begin(status, FailoverPhase::Fencing, "fence", Some(&old));
        Ok(Outcome::Next(
            FailoverPhase::Fencing,
            "Fencing",
            format!("fencing {old}; {} will be promoted", candidate.name),
        ))
    }

    fn units(&self) -> &'static str {
        match self.plan.spec.engine {
            crate::api::EngineKind::Postgres => "WAL bytes",
            crate::api::EngineKind::Mysql => "transactions",
        }
    }

    /// Fencing: out of the writer Service first, then read-only if reachable. A switchover
    /// then waits for the candidate to reach the fenced primary's final position.
    pub async fn fence(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let (Some(old), Some(new)) = (status.old_primary.clone(), status.new_primary.clone()) else {
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                "journal lost the old or new primary".into(),
            ));
        };
        self.route([(old.clone(), RoleLabel::Fenced)].into(), None).await?;
        let engine = self.engine();
        let fence_note = match self.member(&old) {
            Some(member) => match engine.fence(member).await {
                Ok(f) if f.confirmed => format!("{old} is read-only; {} session(s) ended", f.sessions_terminated),
                Ok(f) => format!(
                    "{old} fenced from the writer Service; read-only not confirmed ({})",
                    f.detail.unwrap_or_default()
                ),
                Err(e) => format!("{old} fenced from the writer Service; not reachable to make read-only ({e})"),
            },
            None => format!("{old} fenced from the writer Service; it is no longer a member"),
        };
        if self.fo.spec.kind == FailoverType::Switchover
            && let Err(why) = self.wait_for_catch_up(&old, &new).await
        {
            // Give the shop its primary back: unfence (promote is a no-op besides clearing the fence).
            if let Some(member) = self.member(&old) {
                let _ = engine.promote(member).await;
            }
            self.route([(old.clone(), RoleLabel::Primary)].into(), self.member(&old))
                .await?;
            finish(status, "fence", false, Some(why.clone()));
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                format!("switchover abandoned, {old} unfenced: {why}"),
            ));
        }
        finish(status, "fence", true, Some(fence_note.clone()));
        begin(status, FailoverPhase::Promoting, "promote", Some(&new));
        Ok(Outcome::Next(
            FailoverPhase::Promoting,
            "Promoting",
            format!("{fence_note}; promoting {new}"),
        ))
    }

    async fn wait_for_catch_up(&self, old: &str, new: &str) -> Result<(), String> {
        let (Some(old_m), Some(new_m)) = (self.member(old), self.member(new)) else {
            return Err("a member disappeared".into());
        };
        let engine = self.engine();
        let target = engine
            .probe(old_m)
            .await
            .map_err(|e| format!("reading {old}'s final position: {e}"))?
            .position;
        let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            if let Ok(p) = engine.probe(new_m).await
                && compare(&p.position, &target).at_least()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "{new} did not reach {old}'s final position {target} within {CATCH_UP_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Promoting: idempotent, so a restart during it promotes at most once in effect.
    pub async fn promote(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let Some(new) = status.new_primary.clone() else {
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                "journal lost the new primary".into(),
            ));
        };
        if !done(status, "promote") {
            let Some(member) = self.member(&new) else {
                return Ok(Outcome::End(
                    FailoverPhase::Failed,
                    format!("{new} is no longer a member"),
                ));
            };
            match self.engine().promote(member).await {
                Ok(p) => finish(
                    status,
                    "promote",
                    true,
                    Some(if p.already_primary {
                        "already primary".into()
                    } else {
                        "promoted and writable".into()
                    }),
                ),
                Err(e) => {
                    finish(status, "promote", false, Some(e.to_string()));
                    return Ok(Outcome::End(
                        FailoverPhase::Failed,
                        format!("promoting {new} failed: {e}"),
                    ));
                }
            }
        }
        set_plan_primary(&self.ctx.client, self.namespace, &self.plan.name_any(), &new).await?;
        begin(status, FailoverPhase::Repointing, "repoint", Some(&new));
        Ok(Outcome::Next(
            FailoverPhase::Repointing,
            "Repointing",
            format!("{new} is writable; pointing the writer Service and replicas at it"),
        ))
    }

    /// Repointing: the writer Service selects the new primary (the RTO clock stops here),
    /// then the other replicas follow it.
    pub async fn repoint(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let (Some(old), Some(new)) = (status.old_primary.clone(), status.new_primary.clone()) else {
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                "journal lost the old or new primary".into(),
            ));
        };
        let mut labels: BTreeMap<String, RoleLabel> = BTreeMap::new();
        for name in self.observation.probes.keys() {
            let role = if *name == new {
                RoleLabel::Primary
            } else if *name == old {
                RoleLabel::Fenced
            } else {
                RoleLabel::Replica
            };
            labels.insert(name.clone(), role);
        }
        self.route(labels, self.member(&new)).await?;
        let routed_at = chrono::Utc::now();
        let engine = self.engine();
        let mut notes = Vec::new();
        if let Some(primary) = self.member(&new) {
            for (name, (member, _)) in &self.observation.probes {
                if *name == new || *name == old {
                    continue;
                }
                match engine.repoint(member, primary).await {
                    Ok(_) => notes.push(format!("{name} follows {new}")),
                    Err(e) => notes.push(format!("{name} could not be repointed: {e}")),
                }
            }
        }
        notes.push(format!("{old} stays fenced; rebuild it as a replica of {new}"));
        finish(status, "repoint", true, Some(notes.join("; ")));
        // The shop can write again once the Service selects the new primary.
        status.completed_at = Some(routed_at);
        Ok(Outcome::End(
            FailoverPhase::Completed,
            format!("{new} is the primary; {}", notes.join("; ")),
        ))
    }
}
