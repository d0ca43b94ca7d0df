//! RPO and RTO maths: what the shop would lose and how long it would be down, right now,
//! for the two failure scenarios. Unknown is reported as unknown and never as met.

use std::time::Duration;

/// Inputs for the achieved RPO.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RpoInputs {
    /// Replication delay of the best promotion candidate; `None` when no replica is healthy.
    pub best_replica_lag: Option<Duration>,
    /// Age of the last completed backup's consistent point; `None` when there is none.
    pub last_backup_age: Option<Duration>,
}

/// Exposure per scenario, in seconds; `None` is unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exposure {
    /// Losing the primary.
    pub primary_loss: Option<f64>,
    /// Losing the whole cluster.
    pub cluster_loss: Option<f64>,
}

impl Exposure {
    /// The worse of the two, or `None` if either is unknown (an unknown can hide anything).
    pub fn worst(&self) -> Option<f64> {
        Some(self.primary_loss?.max(self.cluster_loss?))
    }
}

/// Achieved RPO: losing the primary costs the best candidate's lag (or, with no healthy
/// replica, everything since the last backup); losing the cluster costs everything since
/// the last backup's consistent point.
pub fn achieved_rpo(inputs: &RpoInputs) -> Exposure {
    let backup = inputs.last_backup_age.map(|a| a.as_secs_f64());
    Exposure {
        primary_loss: inputs.best_replica_lag.map(|l| l.as_secs_f64()).or(backup),
        cluster_loss: backup,
    }
}

/// Inputs for the estimated RTO: measurements only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RtoInputs {
    /// Measured RTO of the last completed failover.
    pub last_failover_rto: Option<Duration>,
    /// Duration of the last completed restore of this plan's backups.
    pub last_restore_duration: Option<Duration>,
    /// Size of the newest completed backup.
    pub last_backup_bytes: Option<u64>,
    /// Measured restore throughput in bytes per second (from any completed restore).
    pub restore_bytes_per_second: Option<f64>,
}

/// Estimated RTO per scenario. Cluster loss: the last restore's duration, else backup
/// size / measured restore throughput (T = B / S).
pub fn estimated_rto(inputs: &RtoInputs) -> Exposure {
    let from_throughput = match (inputs.last_backup_bytes, inputs.restore_bytes_per_second) {
        (Some(bytes), Some(speed)) if speed > 0.0 => Some(bytes as f64 / speed),
        _ => None,
    };
    Exposure {
        primary_loss: inputs.last_failover_rto.map(|d| d.as_secs_f64()),
        cluster_loss: inputs
            .last_restore_duration
            .map(|d| d.as_secs_f64())
            .or(from_throughput),
    }
}

/// Verdict of an objective, ready for a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compliance {
    /// "True", "False" or "Unknown".
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human message with the numbers.
    pub message: String,
}

/// Compares an exposure with its objective. `what` is "RPO" or "RTO".
pub fn compliance(what: &str, exposure: &Exposure, objective: Duration) -> Compliance {
    let target = objective.as_secs_f64();
    let show = |v: Option<f64>| v.map_or_else(|| "unknown".to_string(), |s| format!("{s:.1}s"));
    let detail = format!(
        "primary loss {}, cluster loss {}, objective {target:.1}s",
        show(exposure.primary_loss),
        show(exposure.cluster_loss)
    );
    match exposure.worst() {
        None => Compliance {
            status: "Unknown",
            reason: "NotMeasured",
            message: format!("{what} not measured yet: {detail}"),
        },
        Some(worst) if worst <= target => Compliance {
            status: "True",
            reason: "WithinObjective",
            message: format!("{what} met: {detail}"),
        },
        Some(_) => Compliance {
            status: "False",
            reason: "ObjectiveExceeded",
            message: format!("{what} exceeded: {detail}"),
        },
    }
}

/// A duration for people: `850ms`, `42s`, `3m12s`, `2h5m`.
pub fn human_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        return format!("{:.0}ms", seconds * 1000.0);
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn rpo_uses_replica_lag_and_backup_age() {
        let e = achieved_rpo(&RpoInputs {
            best_replica_lag: Some(S(2)),
            last_backup_age: Some(S(600)),
        });
        assert_eq!(
            e,
            Exposure {
                primary_loss: Some(2.0),
                cluster_loss: Some(600.0)
            }
        );
        assert_eq!(e.worst(), Some(600.0));
        // No healthy replica: losing the primary falls back to the backup.
        let e = achieved_rpo(&RpoInputs {
            best_replica_lag: None,
            last_backup_age: Some(S(90)),
        });
        assert_eq!(e.primary_loss, Some(90.0));
        // No backup: cluster loss unknown, so the RPO cannot be called met.
        let e = achieved_rpo(&RpoInputs {
            best_replica_lag: Some(S(0)),
            last_backup_age: None,
        });
        assert_eq!(compliance("RPO", &e, S(300)).status, "Unknown");
    }

    #[test]
    fn rto_prefers_a_measured_restore_then_throughput() {
        let mut inputs = RtoInputs {
            last_failover_rto: Some(Duration::from_millis(2500)),
            last_restore_duration: None,
            last_backup_bytes: Some(1_000_000_000),
            restore_bytes_per_second: Some(50_000_000.0),
        };
        assert_eq!(estimated_rto(&inputs).cluster_loss, Some(20.0));
        inputs.last_restore_duration = Some(S(31));
        assert_eq!(
            estimated_rto(&inputs),
            Exposure {
                primary_loss: Some(2.5),
                cluster_loss: Some(31.0)
            }
        );
        assert_eq!(estimated_rto(&RtoInputs::default()).worst(), None);
    }

    #[test]
    fn compliance_is_true_false_or_unknown_with_numbers() {
        let within = Exposure {
            primary_loss: Some(1.0),
            cluster_loss: Some(50.0),
        };
        assert_eq!(compliance("RPO", &within, S(60)).status, "True");
        let c = compliance("RPO", &within, S(30));
        assert_eq!((c.status, c.reason), ("False", "ObjectiveExceeded"));
        assert!(
            c.message.contains("50.0s") && c.message.contains("30.0s"),
            "{}",
            c.message
        );
        let unknown = Exposure {
            primary_loss: None,
            cluster_loss: Some(1.0),
        };
        assert_eq!(compliance("RTO", &unknown, S(30)).status, "Unknown");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(0.25), "250ms");
        assert_eq!(human_seconds(42.2), "42s");
        assert_eq!(human_seconds(192.0), "3m12s");
        assert_eq!(human_seconds(7500.0), "2h5m");
    }
}
