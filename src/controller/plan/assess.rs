//! From a probe round to decisions and status: the topology, the replicas as failover
//! candidates, RPO/RTO exposure and the conditions. Pure apart from the clock passed in.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::recovery_plan::{LastBackup, MemberStatus, ScenarioSeconds};
use crate::engine::{Member, Position, Probe, Role};
use crate::policy::detection::{Hearing, Link, judge_link, pg_keepalive};
use crate::policy::failover::{LossDecision, ReplicaView, choose_candidate, judge_data_loss};
use crate::policy::objectives::{Compliance, Exposure, RpoInputs, RtoInputs, achieved_rpo, compliance, estimated_rto};
use crate::policy::risk::{DataAtRisk, ReplicaHolding, data_at_risk};
use crate::policy::roles::{Seen, Topology, decide};
use crate::policy::validate::PlanSettings;

use super::history::History;
use super::runtime::PlanMemory;

/// A probe round's results: member name -> (member, probe or error text).
pub type Probes = BTreeMap<String, (Member, Result<Probe, String>)>;

/// Role facts from the probes (with the epoch each writable member's heartbeat row holds).
pub fn seen(probes: &Probes) -> BTreeMap<String, Seen> {
    probes
        .iter()
        .map(|(name, (_, probe))| {
            let s = match probe {
                Err(_) => Seen::Unreachable,
                Ok(p) => match (p.role, p.read_only) {
                    (Role::Primary, false) => Seen::WritablePrimary {
                        epoch: p.heartbeat.as_ref().map(|h| h.epoch),
                    },
                    (Role::Primary, true) => Seen::ReadOnlyPrimary,
                    (Role::Replica, _) => Seen::Replica,
                    (Role::Unknown, _) => Seen::Unreachable,
                },
            };
            (name.clone(), s)
        })
        .collect()
}

/// Topology for the round from the recorded primary and epoch.
pub fn topology(probes: &Probes, recorded_primary: Option<&str>, recorded_epoch: Option<u64>) -> Topology {
    decide(&seen(probes), recorded_primary, recorded_epoch)
}

/// How a replica's link to the primary looks, from its probe and the plan's memory.
fn link(probe: &Probe, memory: &PlanMemory, name: &str) -> Link {
    let Some(up) = &probe.upstream else {
        return Link::default();
    };
    let keepalive = match (up.heartbeat_period, up.status_interval) {
        (Some(period), _) => Some(period),
        (None, status_interval) => pg_keepalive(memory.sender_timeout, status_interval),
    };
    Link {
        connected: up.receiving,
        silence: memory.silence.get(name).copied().or(up.silence),
        keepalive,
        state: up.state.clone(),
    }
}

/// The replicas as failover candidates: their link to the primary and their data at risk
/// if the primary stopped acknowledging writes at `t_end`.
pub fn replica_views(
    probes: &Probes,
    primary: Option<&str>,
    memory: &PlanMemory,
    settings: &PlanSettings,
    t_end: DateTime<Utc>,
) -> Vec<ReplicaView> {
    let mut views: Vec<ReplicaView> = probes
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != primary)
        .map(|(name, (_, probe))| match probe {
            Ok(p) if p.role == Role::Replica => ReplicaView {
                name: name.clone(),
                healthy: true,
                hearing: Some(judge_link(
                    &link(p, memory, name),
                    settings.confirmation_window(),
                    settings.probe_interval,
                )),
                risk: data_at_risk(
                    &memory.samples,
                    &ReplicaHolding {
                        position: &p.position,
                        heartbeat_at: p.heartbeat.as_ref().map(|h| h.written_at),
                    },
                    t_end,
                    memory.failing_since.is_some(),
                ),
            },
            _ => ReplicaView {
                name: name.clone(),
                healthy: false,
                hearing: None,
                risk: DataAtRisk {
                    seconds: None,
                    units: None,
                    behind_newest_sample: None,
                    basis: "not reachable as a replica".into(),
                },
            },
        })
        .collect();
    apply_synchronous_guarantee(&mut views, memory);
    views
}

/// With synchronous replication in force when the primary was last healthy, every
/// acknowledged commit reached at least one standby. If every replica answers now, the most
/// advanced one holds all of them: its loss is zero. (Standbys outside the plan are not
/// seen: the plan must list every synchronous standby.)
fn apply_synchronous_guarantee(views: &mut [ReplicaView], memory: &PlanMemory) {
    let in_force = memory.synchronous.as_ref().is_some_and(|s| s.in_force());
    if !in_force || views.is_empty() || views.iter().any(|v| !v.healthy) {
        return;
    }
    let Some(best) = views.iter().filter_map(|v| v.risk.behind_newest_sample).min() else {
        return;
    };
    if views.iter().any(|v| v.risk.behind_newest_sample.is_none()) {
        return;
    }
    for view in views.iter_mut().filter(|v| v.risk.behind_newest_sample == Some(best)) {
        view.risk = DataAtRisk::none_synchronous(Some(best));
    }
}

/// Status rows for the members.
pub fn member_statuses(
    probes: &Probes,
    topology: &Topology,
    previous: &[MemberStatus],
    views: &[ReplicaView],
    postgres: bool,
) -> Vec<MemberStatus> {
    probes
        .iter()
        .map(|(name, (_, probe))| {
            let role = topology
                .labels
                .get(name)
                .map(|l| l.as_str().to_string())
                .or_else(|| previous.iter().find(|m| &m.name == name).map(|m| m.role.clone()))
                .unwrap_or_else(|| "unknown".into());
            let view = views.iter().find(|v| &v.name == name && v.healthy);
            let units = view
                .and_then(|v| v.risk.units)
                .map(|u| i64::try_from(u).unwrap_or(i64::MAX));
            match probe {
                Ok(p) => MemberStatus {
                    name: name.clone(),
                    role,
                    healthy: true,
                    lag_bytes: units.filter(|_| postgres),
                    lag_transactions: units.filter(|_| !postgres),
                    lag_seconds: view.and_then(|v| v.risk.seconds),
                    replication: view.and_then(|v| v.hearing.as_ref()).map(|h| match h {
                        Hearing::Hears(d) => format!("receiving: {d}"),
                        Hearing::Lost(d) => format!("not receiving: {d}"),
                    }),
                    epoch: p.heartbeat.as_ref().map(|h| h.epoch),
                    position: Some(p.position.to_string()),
                },
                Err(_) => MemberStatus {
                    name: name.clone(),
                    role,
                    healthy: false,
                    ..MemberStatus::default()
                },
            }
        })
        .collect()
}

/// The primary's position, for status (what data at risk is measured against).
pub fn primary_position(memory: &PlanMemory) -> Option<(String, &Position, DateTime<Utc>)> {
    let sample = memory.samples.latest()?;
    Some((memory.primary.clone()?, &sample.position, sample.at))
}

/// Everything the status reports about objectives.
pub struct ObjectiveReport {
    pub rpo: Exposure,
    pub rto: Exposure,
    pub rpo_met: Compliance,
    pub rto_met: Compliance,
    pub last_backup: Option<LastBackup>,
}

/// RPO/RTO from the round and the history.
pub fn objectives(
    replicas: &[ReplicaView],
    history: &History,
    rpo: Duration,
    rto: Duration,
    now: DateTime<Utc>,
) -> ObjectiveReport {
    let last_backup = history.last_completed_backup().map(|b| {
        let s = b.status.clone().unwrap_or_default();
        LastBackup {
            name: b.metadata.name.clone().unwrap_or_default(),
            completion_time: s.completion_time,
            consistent_time: s.consistent_time.or(s.start_time),
            size_bytes: s.size_bytes,
        }
    });
    let best = choose_candidate(replicas, None).ok().and_then(|r| r.lag());
    let backup_age = last_backup
        .as_ref()
        .and_then(|b| b.consistent_time.or(b.completion_time))
        .map(|t| (now - t).to_std().unwrap_or_default());
    let rpo_exposure = achieved_rpo(&RpoInputs {
        best_replica_lag: best,
        last_backup_age: backup_age,
    });
    let restore = history.last_restore();
    let throughput = restore.and_then(|(secs, bytes)| bytes.filter(|_| secs > 0.0).map(|b| b as f64 / secs));
    let rto_exposure = estimated_rto(&RtoInputs {
        last_failover_rto: history.last_failover_rto().map(Duration::from_secs_f64),
        last_restore_duration: restore.map(|(secs, _)| Duration::from_secs_f64(secs)),
        last_backup_bytes: last_backup.as_ref().and_then(|b| b.size_bytes).map(|b| b as u64),
        restore_bytes_per_second: throughput,
    });
    ObjectiveReport {
        rpo_met: compliance("RPO", &rpo_exposure, rpo),
        rto_met: compliance("RTO", &rto_exposure, rto),
        rpo: rpo_exposure,
        rto: rto_exposure,
        last_backup,
    }
}

/// Scenario seconds for the status.
pub fn scenario(e: &Exposure) -> ScenarioSeconds {
    ScenarioSeconds {
        primary_loss_seconds: e.primary_loss,
        cluster_loss_seconds: e.cluster_loss,
    }
}

/// FailoverReady: could lifeboat fail over right now within maxDataLoss? Uses the same
/// candidate choice and bound as a Failover would.
pub fn failover_readiness(replicas: &[ReplicaView], max_data_loss: Duration) -> (&'static str, &'static str, String) {
    match choose_candidate(replicas, None) {
        Err(e) => ("False", "NoCandidate", e.to_string()),
        Ok(candidate) => match judge_data_loss(candidate, max_data_loss, false) {
            LossDecision::Proceed => (
                "True",
                "CandidateReady",
                format!(
                    "{} would be promoted, losing at most {:.1}s ({})",
                    candidate.name,
                    candidate.risk.seconds.unwrap_or_default(),
                    candidate.risk.basis
                ),
            ),
            LossDecision::Refuse { message } => ("False", "DataLossTooHigh", message),
        },
    }
}
