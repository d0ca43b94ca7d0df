//! Failover decisions (DESIGN.md "Failover, safely"), with no I/O: is the primary really
//! gone, which replica to promote, and may it be promoted without losing more data
//! than the plan allows.
//!
//! Data loss is measured by the engine against the last position the primary was seen
//! at (PostgreSQL: WAL bytes; MySQL/MariaDB: transactions) and as replication delay in
//! seconds; this module only compares those numbers.

use std::time::Duration;

use super::detection::Hearing;
use super::risk::DataAtRisk;

/// What one probe round saw of a replica, reduced to what the decisions need.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaView {
    /// Member name.
    pub name: String,
    /// The last probe reached it and it answered as a replica.
    pub healthy: bool,
    /// Whether it still hears from the primary; `None` when it could not be asked.
    pub hearing: Option<Hearing>,
    /// Data at risk if it were promoted (an upper bound; unknown stays unknown).
    pub risk: DataAtRisk,
}

impl ReplicaView {
    /// The bound in seconds as a duration.
    pub fn lag(&self) -> Option<Duration> {
        self.risk.duration()
    }
}

/// Verdict on the primary after a probe round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryVerdict {
    /// The last probe succeeded.
    Healthy,
    /// Probes fail, but not yet `failureThreshold` in a row.
    Suspect { failures: u32 },
    /// Enough failures, but a replica still hears from the primary (or none could be
    /// asked): more likely lifeboat's own network trouble than a dead primary, so nothing
    /// is promoted.
    Unconfirmed { failures: u32, reason: String },
    /// Failed probes reached the threshold and every reachable replica lost the primary too.
    Failed { failures: u32, confirmed_by: Vec<String> },
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
    let asked: Vec<(&str, &Hearing)> = replicas
        .iter()
        .filter_map(|r| r.hearing.as_ref().map(|h| (r.name.as_str(), h)))
        .collect();
    if asked.is_empty() {
        return PrimaryVerdict::Unconfirmed {
            failures: consecutive_failures,
            reason: "no replica could be reached to confirm the primary is gone".into(),
        };
    }
    let still_hearing: Vec<String> = asked
        .iter()
        .filter(|(_, h)| !h.lost())
        .map(|(n, h)| format!("{n} ({})", h.detail()))
        .collect();
    if !still_hearing.is_empty() {
        return PrimaryVerdict::Unconfirmed {
            failures: consecutive_failures,
            reason: format!("replica(s) still hear from the primary: {}", still_hearing.join(", ")),
        };
    }
    PrimaryVerdict::Failed {
        failures: consecutive_failures,
        confirmed_by: asked.iter().map(|(n, h)| format!("{n} ({})", h.detail())).collect(),
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
/// healthy, else the healthy replica holding the most data (least behind the primary's
/// newest observed position), then the smallest loss bound, then by name so the choice is
/// stable. A replica whose position cannot be compared ranks last.
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
            let rank = |r: &ReplicaView| {
                (
                    r.risk.behind_newest_sample.unwrap_or(i128::MAX),
                    r.lag().unwrap_or(Duration::MAX),
                )
            };
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

/// Compares the candidate's loss bound with `max_data_loss` (DESIGN.md step 3). An
/// unknown bound is refused too: promising a loss we cannot measure would be a lie.
pub fn judge_data_loss(candidate: &ReplicaView, max_data_loss: Duration, force: bool) -> LossDecision {
    if force {
        return LossDecision::Proceed;
    }
    let units = candidate
        .risk
        .units
        .map(|u| format!(" (up to {u} units)"))
        .unwrap_or_default();
    match candidate.lag() {
        Some(lag) if lag <= max_data_loss => LossDecision::Proceed,
        Some(lag) => LossDecision::Refuse {
            message: format!(
                "promoting {} could lose up to {:.1}s of acknowledged writes{units}, more than maxDataLoss {:.1}s ({}); create a Failover with force: true to accept the loss",
                candidate.name,
                lag.as_secs_f64(),
                max_data_loss.as_secs_f64(),
                candidate.risk.basis
            ),
        },
        None => LossDecision::Refuse {
            message: format!(
                "the data {} would lose is unknown ({}); create a Failover with force: true to accept the risk",
                candidate.name, candidate.risk.basis
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, lost: Option<bool>, behind: Option<i128>, lag_ms: Option<u64>) -> ReplicaView {
        ReplicaView {
            name: name.into(),
            healthy: lost.is_some(),
            hearing: lost.map(|l| {
                if l {
                    Hearing::Lost("down".into())
                } else {
                    Hearing::Hears("streaming".into())
                }
            }),
            risk: DataAtRisk {
                seconds: lag_ms.map(|ms| ms as f64 / 1000.0),
                units: behind.map(|b| b.max(0) as u64),
                behind_newest_sample: behind,
                basis: "test".into(),
            },
        }
    }

    #[test]
    fn primary_fails_only_after_threshold_and_replica_confirmation() {
        let lost = [
            replica("a", Some(true), Some(0), Some(0)),
            replica("b", Some(true), Some(10), Some(5)),
        ];
        assert_eq!(judge_primary(0, 3, &lost), PrimaryVerdict::Healthy);
        assert_eq!(judge_primary(2, 3, &lost), PrimaryVerdict::Suspect { failures: 2 });
        assert!(matches!(
            judge_primary(3, 3, &lost),
            PrimaryVerdict::Failed { failures: 3, confirmed_by } if confirmed_by.len() == 2
        ));
    }

    #[test]
    fn a_replica_still_hearing_means_our_network_not_the_primary() {
        let mixed = [
            replica("a", Some(true), None, None),
            replica("b", Some(false), None, None),
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
    fn candidate_is_the_replica_holding_the_most_data() {
        let replicas = [
            replica("a", Some(true), Some(500), Some(40)),
            replica("b", Some(true), Some(20), Some(900)),
            replica("c", None, Some(0), Some(0)),
            replica("d", Some(true), None, None),
            replica("e", Some(true), Some(-5), None),
        ];
        assert_eq!(choose_candidate(&replicas, None).map(|r| r.name.as_str()), Ok("e"));
        assert_eq!(choose_candidate(&replicas[..4], None).map(|r| r.name.as_str()), Ok("b"));
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
    fn ties_break_on_loss_then_name() {
        let replicas = [
            replica("z", Some(true), Some(0), Some(5)),
            replica("y", Some(true), Some(0), Some(5)),
            replica("x", Some(true), Some(0), Some(9)),
        ];
        assert_eq!(choose_candidate(&replicas, None).map(|r| r.name.as_str()), Ok("y"));
    }

    #[test]
    fn loss_above_max_is_refused_with_numbers_unless_forced() {
        let behind = replica("a", Some(true), Some(4096), Some(12_000));
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
            judge_data_loss(&replica("b", Some(true), Some(0), Some(10_000)), max, false),
            LossDecision::Proceed
        );
        assert!(matches!(
            judge_data_loss(&replica("u", Some(true), None, None), max, false),
            LossDecision::Refuse { .. }
        ));
    }
}
