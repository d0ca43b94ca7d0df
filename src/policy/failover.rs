//! Failover decisions (DESIGN.md "Failover, safely"), with no I/O: is the primary really
//! gone, which replica to promote, and may it be promoted without losing more data
//! than the plan allows.
//!
//! Data loss is measured by the engine against the last position the primary was seen
//! at (PostgreSQL: WAL bytes; MySQL/MariaDB: transactions) and as replication delay in
//! seconds; this module only compares those numbers.

use std::time::Duration;

/// What one probe round saw of a replica, reduced to what the decisions need.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaView {
    /// Member name.
    pub name: String,
    /// The last probe reached it and it answered as a replica.
    pub healthy: bool,
    /// Whether its replication connection to the primary is up (PG: a streaming WAL
    /// receiver; MySQL: IO thread running). `None` when it could not be asked.
    pub upstream_connected: Option<bool>,
    /// Data the primary had that this replica lacks, in engine units (WAL bytes or
    /// transactions). `None` when unknown.
    pub missing: Option<u64>,
    /// Replication delay: primary time not yet applied here. `None` when unknown.
    pub lag: Option<Duration>,
}

/// Verdict on the primary after a probe round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryVerdict {
    /// The last probe succeeded.
    Healthy,
    /// Probes fail, but not yet `failureThreshold` in a row.
    Suspect { failures: u32 },
    /// Enough failures, but no reachable replica confirms it lost the primary: more likely
    /// lifeboat's own network trouble than a dead primary, so nothing is promoted.
    Unconfirmed { failures: u32, reason: String },
    /// Failed probes reached the threshold and every reachable replica lost the primary too.
    Failed { failures: u32 },
}

/// Decides whether the primary has failed (DESIGN.md step 2).
pub fn judge_primary(consecutive_failures: u32, failure_threshold: u32, replicas: &[ReplicaView]) -> PrimaryVerdict {
    if consecutive_failures == 0 {
        return PrimaryVerdict::Healthy;
    }
    if consecutive_failures < failure_threshold.max(1) {
        return PrimaryVerdict::Suspect {
            failures: consecutive_failures,
        };
    }
    let asked: Vec<&ReplicaView> = replicas.iter().filter(|r| r.upstream_connected.is_some()).collect();
    if asked.is_empty() {
        return PrimaryVerdict::Unconfirmed {
            failures: consecutive_failures,
            reason: "no replica could be reached to confirm the primary is gone".into(),
        };
    }
    let still_connected: Vec<&str> = asked
        .iter()
        .filter(|r| r.upstream_connected == Some(true))
        .map(|r| r.name.as_str())
        .collect();
    if !still_connected.is_empty() {
        return PrimaryVerdict::Unconfirmed {
            failures: consecutive_failures,
            reason: format!(
                "replica(s) {} still stream from the primary",
                still_connected.join(", ")
            ),
        };
    }
    PrimaryVerdict::Failed {
        failures: consecutive_failures,
    }
}

/// Why no replica can be promoted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoCandidate {
    #[error("no healthy replica to promote")]
    NoHealthyReplica,
    #[error("requested member {0:?} is not a healthy replica")]
    RequestedNotEligible(String),
}

/// Chooses the replica to promote (DESIGN.md step 3): the requested one if given and
/// healthy, else the healthy replica missing the least data, then the least lag, then by
/// name so the choice is stable. A replica whose missing data is unknown ranks last.
pub fn choose_candidate<'a>(
    replicas: &'a [ReplicaView],
    requested: Option<&str>,
) -> Result<&'a ReplicaView, NoCandidate> {
    if let Some(name) = requested {
        return replicas
            .iter()
            .find(|r| r.name == name && r.healthy)
            .ok_or_else(|| NoCandidate::RequestedNotEligible(name.to_string()));
    }
    replicas
        .iter()
        .filter(|r| r.healthy)
        .min_by(|a, b| {
            let rank = |r: &ReplicaView| (r.missing.unwrap_or(u64::MAX), r.lag.unwrap_or(Duration::MAX));
            rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
        })
        .ok_or(NoCandidate::NoHealthyReplica)
}

/// Whether a chosen candidate may be promoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LossDecision {
    /// Within `maxDataLoss` (or forced).
    Proceed,
    /// Refused; the message carries the numbers for the FailoverBlocked condition.
    Refuse { message: String },
}

/// Compares the candidate's replication delay with `max_data_loss` (DESIGN.md step 3).
/// An unknown delay is refused too: promising a loss we cannot measure would be a lie.
pub fn judge_data_loss(candidate: &ReplicaView, max_data_loss: Duration, force: bool) -> LossDecision {
    if force {
        return LossDecision::Proceed;
    }
    match candidate.lag {
        Some(lag) if lag <= max_data_loss => LossDecision::Proceed,
        Some(lag) => LossDecision::Refuse {
            message: format!(
                "promoting {} would lose about {:.1}s of writes{}, more than maxDataLoss {:.1}s; create a Failover with force: true to accept the loss",
                candidate.name,
                lag.as_secs_f64(),
                candidate
                    .missing
                    .map(|m| format!(" ({m} units behind)"))
                    .unwrap_or_default(),
                max_data_loss.as_secs_f64()
            ),
        },
        None => LossDecision::Refuse {
            message: format!(
                "the data {} would lose is unknown (no replication delay measured); create a Failover with force: true to accept the risk",
                candidate.name
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, connected: Option<bool>, missing: Option<u64>, lag_ms: Option<u64>) -> ReplicaView {
        ReplicaView {
            name: name.into(),
            healthy: connected.is_some(),
            upstream_connected: connected,
            missing,
            lag: lag_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn primary_fails_only_after_threshold_and_replica_confirmation() {
        let lost = [
            replica("a", Some(false), Some(0), Some(0)),
            replica("b", Some(false), Some(10), Some(5)),
        ];
        assert_eq!(judge_primary(0, 3, &lost), PrimaryVerdict::Healthy);
        assert_eq!(judge_primary(2, 3, &lost), PrimaryVerdict::Suspect { failures: 2 });
        assert_eq!(judge_primary(3, 3, &lost), PrimaryVerdict::Failed { failures: 3 });
    }

    #[test]
    fn a_replica_still_streaming_means_our_network_not_the_primary() {
        let mixed = [
            replica("a", Some(false), None, None),
            replica("b", Some(true), None, None),
        ];
        assert!(
            matches!(judge_primary(5, 3, &mixed), PrimaryVerdict::Unconfirmed { reason, .. } if reason.contains('b'))
        );
        let unreachable = [replica("a", None, None, None)];
        assert!(matches!(
            judge_primary(5, 3, &unreachable),
            PrimaryVerdict::Unconfirmed { .. }
        ));
    }

    #[test]
    fn candidate_is_the_most_advanced_healthy_replica() {
        let replicas = [
            replica("a", Some(false), Some(500), Some(40)),
            replica("b", Some(false), Some(20), Some(900)),
            replica("c", None, Some(0), Some(0)),
            replica("d", Some(false), None, None),
        ];
        assert_eq!(choose_candidate(&replicas, None).map(|r| r.name.as_str()), Ok("b"));
        assert_eq!(choose_candidate(&replicas, Some("a")).map(|r| r.name.as_str()), Ok("a"));
        assert_eq!(
            choose_candidate(&replicas, Some("c")),
            Err(NoCandidate::RequestedNotEligible("c".into()))
        );
        assert_eq!(
            choose_candidate(&replicas[2..3], None),
            Err(NoCandidate::NoHealthyReplica)
        );
    }

    #[test]
    fn ties_break_on_lag_then_name() {
        let replicas = [
            replica("z", Some(false), Some(0), Some(5)),
            replica("y", Some(false), Some(0), Some(5)),
        ];
        assert_eq!(choose_candidate(&replicas, None).map(|r| r.name.as_str()), Ok("y"));
    }

    #[test]
    fn loss_above_max_is_refused_with_numbers_unless_forced() {
        let behind = replica("a", Some(false), Some(4096), Some(12_000));
        let max = Duration::from_secs(10);
        match judge_data_loss(&behind, max, false) {
            LossDecision::Refuse { message } => {
                assert!(
                    message.contains("12.0s") && message.contains("10.0s") && message.contains("4096"),
                    "{message}"
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(judge_data_loss(&behind, max, true), LossDecision::Proceed);
        assert_eq!(
            judge_data_loss(&replica("b", Some(false), Some(0), Some(10_000)), max, false),
            LossDecision::Proceed
        );
        assert!(matches!(
            judge_data_loss(&replica("u", Some(false), None, None), max, false),
            LossDecision::Refuse { .. }
        ));
    }
}
