//! Data at risk: what promoting a replica would lose, as an upper bound (DESIGN.md
//! "Failover, safely", step 3). Pure: positions, times and the heartbeat in, a bound out.
//!
//! The bound in seconds is `t_end - covered`, where `covered` is the newest instant the
//! replica is known to hold every write acknowledged before it:
//! - the newest primary position sample (read at time T) that the replica's received
//!   position has reached: a write acknowledged before T was in the primary's WAL/binlog at
//!   T, so the replica has it;
//! - the newest lifeboat heartbeat it has applied (written with the operator's clock at T,
//!   before its commit): writes acknowledged before T committed before it.
//!
//! `t_end` is the latest moment the primary may still have acknowledged writes: now while it
//! is healthy; once it fails, the start of the failed probes or the last time a replica
//! heard from it, whichever is later (or the fencing of a primary that answered). Writes a
//! primary acknowledges to clients while neither lifeboat nor any replica can reach it are
//! beyond any observer; that case is documented in the README.
//!
//! The bound in engine units (WAL bytes, transactions) adds to the replica's distance from
//! the newest sample what the primary can have written since, at 1.5 times the highest rate
//! observed between samples.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::position::{compare, units_ahead};
use crate::engine::{Comparison, Position};

/// Samples kept per plan (thinned, so older ones are sparser): bounded memory per plan.
const MAX_SAMPLES: usize = 64;
/// Only rates over this recent past feed the extrapolation.
const RATE_WINDOW: Duration = Duration::from_secs(120);
/// Margin on the highest observed write rate when extrapolating.
const RATE_MARGIN: f64 = 1.5;

/// One observation of the primary's position.
#[derive(Clone, Debug, PartialEq)]
pub struct PrimarySample {
    pub at: DateTime<Utc>,
    pub position: Position,
}

/// The primary's recent positions, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrimaryHistory {
    samples: VecDeque<PrimarySample>,
}

impl PrimaryHistory {
    /// Adds a sample; a position that does not continue the history (another timeline or
    /// server after a failover) starts a new history.
    pub fn push(&mut self, sample: PrimarySample) {
        if let Some(last) = self.samples.back()
            && !compare(&sample.position, &last.position).at_least()
        {
            self.samples.clear();
        }
        self.samples.push_back(sample);
        if self.samples.len() > MAX_SAMPLES {
            self.thin();
        }
    }

    /// Drops the older sample of the closest pair among the older three quarters, so recent
    /// samples stay dense and old ones remain, sparser.
    fn thin(&mut self) {
        let older = (self.samples.len() * 3 / 4).max(2);
        let victim = (1..older)
            .min_by_key(|&i| (self.samples[i].at - self.samples[i - 1].at).num_milliseconds())
            .unwrap_or(0);
        self.samples.remove(victim);
    }

    /// Number of samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// No sample kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<&PrimarySample> {
        self.samples.back()
    }

    /// Forgets everything (the primary changed).
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// Highest write rate (units per second) between consecutive samples of the recent past.
    fn peak_rate(&self) -> Option<f64> {
        let newest = self.latest()?.at;
        self.samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .filter(|(_, b)| (newest - b.at).to_std().unwrap_or_default() <= RATE_WINDOW)
            .filter_map(|(a, b)| {
                let dt = (b.at - a.at).to_std().ok()?.as_secs_f64();
                let du = units_ahead(&b.position, &a.position)?;
                (dt > 0.0).then(|| du.max(0) as f64 / dt)
            })
            .reduce(f64::max)
    }

    /// Newest sample time that `position` has reached on the same history.
    fn covered_by_samples(&self, position: &Position) -> Option<DateTime<Utc>> {
        self.samples
            .iter()
            .rev()
            .find(|s| compare(position, &s.position).at_least())
            .map(|s| s.at)
    }
}

/// What a replica holds.
#[derive(Clone, Debug)]
pub struct ReplicaHolding<'a> {
    /// Its received position (what a promotion would end up with).
    pub position: &'a Position,
    /// When the newest heartbeat it applied was written, if any.
    pub heartbeat_at: Option<DateTime<Utc>>,
}

/// Data at risk if a replica were promoted.
#[derive(Clone, Debug, PartialEq)]
pub struct DataAtRisk {
    /// Upper bound in seconds of acknowledged writes; `None` is unknown.
    pub seconds: Option<f64>,
    /// Upper bound in WAL bytes / transactions; `None` is unknown.
    pub units: Option<u64>,
    /// Units the replica lacks compared with the newest sample (negative: it is ahead).
    pub behind_newest_sample: Option<i128>,
    /// How the bound was obtained, for status and events.
    pub basis: String,
}

impl DataAtRisk {
    /// Nothing can be lost: synchronous replication holds every acknowledged write here.
    pub fn none_synchronous(behind: Option<i128>) -> DataAtRisk {
        DataAtRisk {
            seconds: Some(0.0),
            units: Some(0),
            behind_newest_sample: behind,
            basis: "synchronous replication: every acknowledged commit reached a standby, and this one is the most advanced of all of them".into(),
        }
    }

    /// The bound as a duration, if known.
    pub fn duration(&self) -> Option<Duration> {
        self.seconds.map(|s| Duration::from_secs_f64(s.max(0.0)))
    }
}

/// Data at risk for `replica` if the primary stopped acknowledging writes at `t_end`.
/// `extrapolate`: the primary may have written past its newest sample (it failed, or is
/// fenced later); while it answers, its newest sample is the present.
pub fn data_at_risk(
    history: &PrimaryHistory,
    replica: &ReplicaHolding<'_>,
    t_end: DateTime<Utc>,
    extrapolate: bool,
) -> DataAtRisk {
    let newest = history.latest();
    let comparable = newest.is_none_or(|s| {
        !matches!(
            compare(replica.position, &s.position),
            Comparison::Diverged { .. } | Comparison::Unknown { .. }
        )
    });
    let by_samples = history.covered_by_samples(replica.position);
    // A heartbeat only counts on the same history as the primary's samples.
    let by_heartbeat = replica.heartbeat_at.filter(|_| comparable);
    let covered = by_samples.max(by_heartbeat);
    let seconds = covered.map(|c| (t_end - c).to_std().unwrap_or_default().as_secs_f64());
    let behind = newest.and_then(|s| units_ahead(&s.position, replica.position));
    let units = match (newest, behind) {
        (Some(s), Some(behind)) => {
            let since = (t_end - s.at).to_std().unwrap_or_default().as_secs_f64();
            let extra = if since < 0.001 || !extrapolate {
                Some(0.0)
            } else {
                history.peak_rate().map(|r| (r * RATE_MARGIN * since).ceil())
            };
            extra.map(|e| (behind as f64 + e).max(0.0) as u64)
        }
        _ => None,
    };
    let basis = match (by_samples, by_heartbeat) {
        (Some(s), Some(h)) if h > s => "heartbeat applied on the replica".to_string(),
        (Some(_), _) => "replica position against the primary's observed positions".to_string(),
        (None, Some(_)) => "heartbeat applied on the replica".to_string(),
        (None, None) => "unknown: the replica holds no observed primary position and no heartbeat".to_string(),
    };
    DataAtRisk {
        seconds,
        units,
        behind_newest_sample: behind,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Lsn, PgPosition};

    fn pg(lsn: u64) -> Position {
        Position::Postgres(PgPosition {
            timeline: 1,
            current: Some(Lsn(lsn)),
            ..PgPosition::default()
        })
    }

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).expect("time")
    }

    fn history(points: &[(i64, u64)]) -> PrimaryHistory {
        let mut h = PrimaryHistory::default();
        for (ms, lsn) in points {
            h.push(PrimarySample {
                at: t(*ms),
                position: pg(*lsn),
            });
        }
        h
    }

    #[test]
    fn a_replica_that_stopped_receiving_is_at_risk_since_it_stopped() {
        // The primary wrote 1000 bytes/s; the replica stopped at the sample of t=4s.
        let h = history(&[
            (0, 0),
            (1000, 1000),
            (2000, 2000),
            (3000, 3000),
            (4000, 4000),
            (10_000, 10_000),
        ]);
        let stale = pg(4000);
        let risk = data_at_risk(
            &h,
            &ReplicaHolding {
                position: &stale,
                heartbeat_at: None,
            },
            t(11_000),
            true,
        );
        assert_eq!(risk.seconds, Some(7.0), "from its last covered sample to t_end");
        // 6000 behind the newest sample plus 1s at 1.5x the peak rate (1000/s).
        assert_eq!(risk.units, Some(7500));
        assert_eq!(risk.behind_newest_sample, Some(6000));
    }

    #[test]
    fn the_heartbeat_tightens_the_bound_but_never_below_the_truth() {
        let h = history(&[(0, 0), (1000, 1000)]);
        let p = pg(500);
        let risk = data_at_risk(
            &h,
            &ReplicaHolding {
                position: &p,
                heartbeat_at: Some(t(800)),
            },
            t(2000),
            true,
        );
        assert_eq!(risk.seconds, Some(1.2));
        assert!(risk.basis.contains("heartbeat"));
    }

    #[test]
    fn unknown_coverage_is_unknown_not_zero() {
        let h = history(&[(0, 1000)]);
        let p = pg(10);
        let risk = data_at_risk(
            &h,
            &ReplicaHolding {
                position: &p,
                heartbeat_at: None,
            },
            t(5000),
            true,
        );
        assert_eq!(risk.seconds, None);
        assert_eq!(risk.units, None, "no rate measured yet: cannot extrapolate");
        let diverged = Position::Postgres(PgPosition {
            timeline: 2,
            current: Some(Lsn(5)),
            ..PgPosition::default()
        });
        let risk = data_at_risk(
            &h,
            &ReplicaHolding {
                position: &diverged,
                heartbeat_at: Some(t(4000)),
            },
            t(5000),
            true,
        );
        assert_eq!(risk.seconds, None, "a heartbeat from another history proves nothing");
    }

    #[test]
    fn a_caught_up_replica_is_at_risk_only_since_the_newest_sample() {
        let h = history(&[(0, 0), (1000, 100)]);
        let p = pg(150);
        let risk = data_at_risk(
            &h,
            &ReplicaHolding {
                position: &p,
                heartbeat_at: None,
            },
            t(1000),
            true,
        );
        assert_eq!((risk.seconds, risk.units), (Some(0.0), Some(0)));
    }

    #[test]
    fn history_is_bounded_and_restarts_on_another_timeline() {
        let mut h = PrimaryHistory::default();
        for i in 0..500 {
            h.push(PrimarySample {
                at: t(i * 1000),
                position: pg(i as u64),
            });
        }
        assert!(h.samples.len() <= MAX_SAMPLES);
        assert_eq!(
            h.samples.front().map(|s| s.at),
            Some(t(0)),
            "the oldest survives thinning"
        );
        assert_eq!(h.latest().map(|s| s.at), Some(t(499_000)));
        h.push(PrimarySample {
            at: t(500_000),
            position: Position::Postgres(PgPosition {
                timeline: 2,
                current: Some(Lsn(1)),
                ..PgPosition::default()
            }),
        });
        assert_eq!(h.samples.len(), 1);
    }
}

#[cfg(test)]
mod mysql_tests {
    use super::*;
    use crate::engine::position::MysqlPosition;

    fn gtid(seq: u64) -> Position {
        Position::Mysql(MysqlPosition {
            binlog: format!("0-1-{seq}").parse().expect("gtid"),
            slave: "".parse().expect("gtid"),
            io: None,
        })
    }

    fn replica(seq: u64) -> Position {
        Position::Mysql(MysqlPosition {
            binlog: format!("0-1-{seq}").parse().expect("gtid"),
            slave: format!("0-1-{seq}").parse().expect("gtid"),
            io: Some(format!("0-1-{seq}").parse().expect("gtid")),
        })
    }

    #[test]
    fn transactions_are_bounded_for_mariadb_too() {
        let t = |ms: i64| DateTime::from_timestamp_millis(1_800_000_000_000 + ms).expect("time");
        let mut h = PrimaryHistory::default();
        for i in 0..5 {
            h.push(PrimarySample {
                at: t(i * 500),
                position: gtid(100 + i as u64 * 50),
            });
        }
        let r = replica(300);
        let risk = data_at_risk(
            &h,
            &ReplicaHolding {
                position: &r,
                heartbeat_at: None,
            },
            t(3000),
            true,
        );
        assert_eq!(risk.behind_newest_sample, Some(0));
        assert!(risk.units.is_some_and(|u| u >= 150), "{risk:?}");
    }
}
