//! From a probe round to decisions and status: the topology, the replicas as failover
//! candidates, RPO/RTO exposure and the conditions. Pure apart from the clock passed in.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::recovery_plan::{LastBackup, MemberStatus, ScenarioSeconds};
use crate::engine::position::lag_between;
use crate::engine::{Member, Position, Probe, Role};
use crate::policy::failover::{LossDecision, ReplicaView, choose_candidate, judge_data_loss};
use crate::policy::objectives::{Compliance, Exposure, RpoInputs, RtoInputs, achieved_rpo, compliance, estimated_rto};
use crate::policy::roles::{RoleLabel, Seen, Topology, decide};

use super::history::History;

/// A probe round's results: member name -> (member, probe or error text).
pub type Probes = BTreeMap<String, (Member, Result<Probe, String>)>;

/// Role facts from the probes.
pub fn seen(probes: &Probes) -> BTreeMap<String, Seen> {
    probes
        .iter()
        .map(|(name, (_, probe))| {
            let s = match probe {
                Err(_) => Seen::Unreachable,
                Ok(p) => match (p.role, p.read_only) {
                    (Role::Primary, false) => Seen::WritablePrimary,
                    (Role::Primary, true) => Seen::ReadOnlyPrimary,
                    (Role::Replica, _) => Seen::Replica,
                    (Role::Unknown, _) => Seen::Unreachable,
                },
            };
            (name.clone(), s)
        })
        .collect()
}

/// The replicas as failover candidates. `primary_position` is the primary's last known
/// position; `lag_at_last_healthy` each replica's delay when the primary was last seen.
pub fn replica_views(
    probes: &Probes,
    topology: &Topology,
    primary_position: Option<&Position>,
    lag_at_last_healthy: &std::collections::HashMap<String, Option<f64>>,
) -> Vec<ReplicaView> {
    probes
        .iter()
        .filter(|(name, _)| Some(*name) != topology.primary.as_ref())
        .map(|(name, (_, probe))| match probe {
            Ok(p) if p.role == Role::Replica => {
                let lag = if topology.primary_healthy {
                    p.lag_seconds
                } else {
                    lag_at_last_healthy.get(name).copied().flatten().or(p.lag_seconds)
                };
                ReplicaView {
                    name: name.clone(),
                    healthy: true,
                    upstream_connected: Some(p.upstream.as_ref().is_some_and(|u| u.receiving)),
                    missing: primary_position.and_then(|pp| lag_between(pp, &p.position)),
                    lag: lag.map(|s| Duration::from_secs_f64(s.max(0.0))),
                }
            }
            _ => ReplicaView {
                name: name.clone(),
                healthy: false,
                upstream_connected: None,
                missing: None,
                lag: None,
            },
        })
        .collect()
}

/// Status rows for the members.
pub fn member_statuses(
    probes: &Probes,
    topology: &Topology,
    previous: &[MemberStatus],
    primary_position: Option<&Position>,
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
            match probe {
                Ok(p) => MemberStatus {
                    name: name.clone(),
                    role,
                    healthy: true,
                    lag_bytes: p
                        .lag_bytes
                        .or_else(|| primary_position.and_then(|pp| lag_between(pp, &p.position)))
                        .filter(|_| p.role == Role::Replica)
                        .map(|b| b as i64),
                    lag_seconds: p.lag_seconds.filter(|_| p.role == Role::Replica),
                    position: Some(p.position.to_string()),
                },
                Err(_) => MemberStatus {
                    name: name.clone(),
                    role,
                    healthy: false,
                    lag_bytes: None,
                    lag_seconds: None,
                    position: None,
                },
            }
        })
        .collect()
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
    let best = choose_candidate(replicas, None).ok().and_then(|r| r.lag);
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

/// FailoverReady: could lifeboat fail over right now without breaking the RPO?
pub fn failover_readiness(replicas: &[ReplicaView], max_data_loss: Duration) -> (&'static str, &'static str, String) {
    match choose_candidate(replicas, None) {
        Err(e) => ("False", "NoCandidate", e.to_string()),
        Ok(candidate) => match judge_data_loss(candidate, max_data_loss, false) {
            LossDecision::Proceed => (
                "True",
                "CandidateReady",
                format!(
                    "{} would be promoted (delay {:.1}s)",
                    candidate.name,
                    candidate.lag.map_or(0.0, |l| l.as_secs_f64())
                ),
            ),
            LossDecision::Refuse { message } => ("False", "DataLossTooHigh", message),
        },
    }
}

/// Topology for the round.
pub fn topology(probes: &Probes, recorded_primary: Option<&str>) -> Topology {
    decide(&seen(probes), recorded_primary)
}

/// The label a member should carry, if decided.
pub fn label_of(topology: &Topology, member: &str) -> Option<RoleLabel> {
    topology.labels.get(member).copied()
}
