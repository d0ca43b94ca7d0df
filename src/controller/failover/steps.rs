//! The steps of a failover. Each returns what should happen next; the caller journals it.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::ReconcileFailoverError;
use super::estimate::{self, LossEstimate};
use super::record::{begin, done, finish};
use crate::api::failover::{FailoverStatus, FailoverType};
use crate::api::{Failover, FailoverPhase, RecoveryPlan};
use crate::controller::context::Context;
use crate::controller::plan::observe::Observation;
use crate::controller::plan::route::{self, Precondition, WriterService};
use crate::controller::plan::runtime::lock;
use crate::controller::plan::trigger::FAILED_PRIMARY_ANNOTATION;
use crate::controller::primary_record::{Claim, PrimaryRecord, claim};
use crate::engine::position::compare;
use crate::engine::{Engine, HeartbeatWrite, Member, Position, Role};
use crate::policy::failover::{LossDecision, choose_candidate, judge_data_loss};
use crate::policy::roles::RoleLabel;
use crate::policy::validate::PlanSettings;

/// How long a switchover waits for the candidate to reach the fenced primary's position.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an unplanned failover waits when the old primary answers the fence after all.
const ANSWERED_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the candidate may take to apply what it received before its promotion.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

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
    pub settings: &'a PlanSettings,
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
        .map_err(|source| ReconcileFailoverError::ListFailovers {
            namespace: namespace.into(),
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

    fn postgres(&self) -> bool {
        self.plan.spec.engine == crate::api::EngineKind::Postgres
    }

    /// Points writes: pods relabelled (selector plans) or endpoints set (static plans). The
    /// Failover owns routing while it runs, so its writes are unconditional.
    async fn route(
        &self,
        labels: BTreeMap<String, RoleLabel>,
        primary: Option<&Member>,
    ) -> Result<(), ReconcileFailoverError> {
        let client = &self.ctx.client;
        if self.plan.spec.members.selector.is_some() {
            route::label_pods(
                client,
                self.namespace,
                &self.observation.pods,
                &labels,
                Precondition::None,
            )
            .await?;
        } else if let WriterService::Found(service) =
            route::get_writer_service(client, self.namespace, &self.plan.spec.writer_service).await?
        {
            route::point_endpoints(client, self.namespace, &service, primary, Precondition::None, None).await?;
        }
        Ok(())
    }

    fn record_estimate(&self, status: &mut FailoverStatus, loss: &LossEstimate) {
        status.estimated_data_loss_seconds = loss.seconds;
        status.estimated_data_loss = Some(match loss.units {
            Some(u) => format!(
                "at most {u} {}",
                if self.postgres() { "WAL bytes" } else { "transactions" }
            ),
            None => "unknown".into(),
        });
        status.estimated_data_loss_bytes = loss.units.filter(|_| self.postgres());
        status.estimated_data_loss_transactions = loss.units.filter(|_| !self.postgres());
        status.data_loss_basis = Some(loss.basis.clone());
    }

    /// Pending: pick the candidate, bound the loss, refuse if it is too high.
    pub async fn decide(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let record = PrimaryRecord::of(self.plan);
        let old = self
            .fo
            .annotations()
            .get(FAILED_PRIMARY_ANNOTATION)
            .cloned()
            .or(record.primary.clone());
        let Some(old) = old else {
            return Ok(Outcome::End(
                FailoverPhase::Refused,
                "the plan has no recorded primary to fail over from".into(),
            ));
        };
        let probes = &self.observation.probes;
        let primary_healthy = probes
            .get(&old)
            .is_some_and(|(_, p)| p.as_ref().is_ok_and(|p| p.role == Role::Primary && !p.read_only));
        let switchover = self.fo.spec.kind == FailoverType::Switchover;
        if switchover && !primary_healthy {
            return Ok(Outcome::End(
                FailoverPhase::Refused,
                format!("a Switchover needs a healthy primary, and {old} is not; request type: Failover"),
            ));
        }
        let memory = lock(&self.observation.runtime).memory.clone();
        let views = estimate::views(self.observation, &old, &memory, self.settings);
        tracing::debug!(samples = memory.samples.len(), ?views, "failover candidates");
        let candidate = match choose_candidate(&views, self.fo.spec.to.as_deref()) {
            Ok(c) => c.clone(),
            Err(e) => return Ok(Outcome::End(FailoverPhase::Refused, e.to_string())),
        };
        status.old_primary = Some(old.clone());
        status.new_primary = Some(candidate.name.clone());
        status.epoch = Some(record.epoch.unwrap_or(0) + 1);
        status.started_at = self
            .fo
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32))
            .or(Some(chrono::Utc::now()));
        if switchover {
            self.record_estimate(
                status,
                &LossEstimate::none(
                    "switchover: the candidate catches up with the fenced primary before it is promoted",
                ),
            );
        } else {
            self.record_estimate(status, &LossEstimate::from_risk(&candidate.risk));
            if let LossDecision::Refuse { message } =
                judge_data_loss(&candidate, self.settings.max_data_loss, self.fo.spec.force)
            {
                tracing::warn!(
                    candidate = %candidate.name,
                    loss_bound_seconds = candidate.risk.seconds,
                    max_data_loss_seconds = self.settings.max_data_loss.as_secs_f64(),
                    "failover refused: {message}"
                );
                return Ok(Outcome::End(FailoverPhase::Refused, message));
            }
        }
        tracing::info!(
            old = %old,
            new = %candidate.name,
            epoch = status.epoch,
            loss_bound_seconds = status.estimated_data_loss_seconds,
            loss_bound_units = candidate.risk.units,
            basis = %candidate.risk.basis,
            "failover decided"
        );
        begin(status, FailoverPhase::Fencing, "fence", Some(&old));
        Ok(Outcome::Next(
            FailoverPhase::Fencing,
            "Fencing",
            format!(
                "fencing {old}; {} will be promoted (epoch {}), losing at most {}",
                candidate.name,
                status.epoch.unwrap_or_default(),
                status
                    .estimated_data_loss_seconds
                    .map_or("an unknown amount (forced)".into(), |s| format!("{s:.2}s"))
            ),
        ))
    }

    /// Fencing: out of the writer Service first, then read-only if reachable. A switchover,
    /// or a failover whose old primary answers after all, then waits for the candidate to
    /// reach the fenced primary's final position.
    pub async fn fence(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let (Some(old), Some(new)) = (status.old_primary.clone(), status.new_primary.clone()) else {
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                "journal lost the old or new primary".into(),
            ));
        };
        self.route([(old.clone(), RoleLabel::Fenced)].into(), None).await?;
        let engine = self.observation.engine.clone();
        // A primary that did not answer this reconcile's probe gets one probe timeout to
        // answer the fence: the Service no longer selects it, and waiting out a hung
        // server's connect timeout would only lengthen the outage.
        let answered_probe = self.observation.probes.get(&old).is_some_and(|(_, p)| p.is_ok());
        let limit = if answered_probe {
            crate::engine::Timeouts::default().operation
        } else {
            self.settings.probe_timeout()
        };
        let fenced = match self.member(&old) {
            Some(member) => Some(
                tokio::time::timeout(limit, engine.fence(member))
                    .await
                    .unwrap_or_else(|_| {
                        Ok(crate::engine::Fencing {
                            reachable: false,
                            confirmed: false,
                            sessions_terminated: 0,
                            detail: Some(format!("no answer within {limit:?}")),
                        })
                    }),
            ),
            None => None,
        };
        let (fence_note, answered) = match fenced {
            Some(result) => match result {
                Ok(f) if f.confirmed => (
                    format!("{old} is read-only; {} session(s) ended", f.sessions_terminated),
                    true,
                ),
                Ok(f) => (
                    format!(
                        "{old} fenced from the writer Service; read-only not confirmed ({})",
                        f.detail.unwrap_or_default()
                    ),
                    f.reachable,
                ),
                Err(e) => (
                    format!("{old} fenced from the writer Service; not reachable to make read-only ({e})"),
                    false,
                ),
            },
            None => (
                format!("{old} fenced from the writer Service; it is no longer a member"),
                false,
            ),
        };
        let switchover = self.fo.spec.kind == FailoverType::Switchover;
        if switchover || answered {
            let limit = if switchover {
                CATCH_UP_TIMEOUT
            } else {
                ANSWERED_CATCH_UP_TIMEOUT
            };
            if let Err(why) = self.catch_up(status, &old, &new, limit).await {
                return self.give_back(status, &old, why).await;
            }
        }
        finish(status, "fence", true, Some(fence_note.clone()));
        begin(status, FailoverPhase::Promoting, "drain", Some(&new));
        Ok(Outcome::Next(
            FailoverPhase::Promoting,
            "Promoting",
            format!("{fence_note}; {new} applies what it received, then is promoted"),
        ))
    }

    /// Waits for the candidate to hold the fenced primary's final position. For an unplanned
    /// failover that cannot catch up, the loss bound is re-measured against that final
    /// position (the primary was alive until now) and judged again.
    async fn catch_up(&self, status: &mut FailoverStatus, old: &str, new: &str, limit: Duration) -> Result<(), String> {
        let (Some(old_m), Some(new_m)) = (self.member(old), self.member(new)) else {
            return Err("a member disappeared".into());
        };
        let engine = &self.observation.engine;
        let target = engine
            .probe(old_m)
            .await
            .map_err(|e| format!("reading {old}'s final position: {e}"))?
            .position;
        let deadline = tokio::time::Instant::now() + limit;
        let mut last: Option<Position> = None;
        loop {
            if let Ok(p) = engine.probe(new_m).await {
                if compare(&p.position, &target).at_least() {
                    if self.fo.spec.kind != FailoverType::Switchover {
                        self.record_estimate(
                            status,
                            &LossEstimate::none(&format!(
                                "{new} reached {old}'s final position {target} after fencing"
                            )),
                        );
                    }
                    return Ok(());
                }
                last = Some(p.position);
            }
            if tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let why = format!("{new} did not reach {old}'s final position {target} within {limit:?}");
        if self.fo.spec.kind == FailoverType::Switchover {
            return Err(why);
        }
        let loss = estimate::against_final(&target, last.as_ref(), status, chrono::Utc::now());
        self.record_estimate(status, &loss);
        let refused = !self.fo.spec.force
            && loss
                .seconds
                .is_none_or(|s| s > self.settings.max_data_loss.as_secs_f64());
        if refused { Err(why) } else { Ok(()) }
    }

    /// Gives the shop its primary back after fencing it (the candidate could not catch up):
    /// unfence (promote is a no-op besides clearing the fence) and route to it again.
    async fn give_back(
        &self,
        status: &mut FailoverStatus,
        old: &str,
        why: String,
    ) -> Result<Outcome, ReconcileFailoverError> {
        if let Some(member) = self.member(old) {
            let _ = self.observation.engine.promote(member).await;
        }
        self.route([(old.to_string(), RoleLabel::Primary)].into(), self.member(old))
            .await?;
        finish(status, "fence", false, Some(why.clone()));
        Ok(Outcome::End(
            FailoverPhase::Failed,
            format!("failover abandoned, {old} answered and stays primary (unfenced): {why}"),
        ))
    }

    /// Promoting: drain the candidate (journalled, bounded), promote it (idempotent, so a
    /// restart during it promotes at most once in effect), record it as the primary of the
    /// new epoch, and stamp the epoch into its heartbeat row.
    pub async fn promote(&mut self, status: &mut FailoverStatus) -> Result<Outcome, ReconcileFailoverError> {
        let (Some(new), Some(epoch)) = (status.new_primary.clone(), status.epoch) else {
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                "journal lost the new primary or the epoch".into(),
            ));
        };
        let Some(member) = self.member(&new).cloned() else {
            return Ok(Outcome::End(
                FailoverPhase::Failed,
                format!("{new} is no longer a member"),
            ));
        };
        let engine = self.observation.engine.clone();
        if !done(status, "drain") {
            match engine.drain(&member, DRAIN_TIMEOUT).await {
                Ok(d) => {
                    let note = match (d.resumed_apply, d.pending_at_end) {
                        (_, 0) if d.resumed_apply => {
                            "apply was stopped: restarted it and applied everything received".to_string()
                        }
                        (_, 0) => "everything received was applied".to_string(),
                        (_, n) => format!(
                            "{n} received units still not applied after {DRAIN_TIMEOUT:?}; promotion applies them or refuses"
                        ),
                    };
                    finish(status, "drain", true, Some(note));
                }
                Err(e) => finish(status, "drain", false, Some(e.to_string())),
            }
            begin(status, FailoverPhase::Promoting, "promote", Some(&new));
            super::record::save(&self.ctx.client, self.namespace, &self.fo.name_any(), status, "drain").await?;
        }
        if !done(status, "promote") {
            match engine.promote(&member).await {
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
        match claim(
            &self.ctx.client,
            self.namespace,
            &self.plan.name_any(),
            Some(epoch - 1),
            &new,
            epoch,
        )
        .await?
        {
            Claim::Won(_) => {}
            Claim::Lost(record) => {
                return Ok(Outcome::End(
                    FailoverPhase::Failed,
                    format!(
                        "epoch {} was taken meanwhile (primary {:?} at epoch {:?}): {new} was promoted but is not the recorded primary and will be fenced",
                        epoch, record.primary, record.epoch
                    ),
                ));
            }
        }
        if self.settings.heartbeat {
            let beat = HeartbeatWrite {
                written_at: chrono::Utc::now(),
                epoch,
                writer: new.clone(),
            };
            if let Err(e) = engine.write_heartbeat(&member, &beat).await {
                tracing::warn!(member = %new, error = %e, "could not stamp the new epoch in the heartbeat row");
            }
        }
        tracing::info!(member = %new, epoch, "promoted");
        begin(status, FailoverPhase::Repointing, "repoint", Some(&new));
        Ok(Outcome::Next(
            FailoverPhase::Repointing,
            "Repointing",
            format!("{new} is writable, primary of epoch {epoch}; pointing the writer Service and replicas at it"),
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
        let engine = &self.observation.engine;
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
