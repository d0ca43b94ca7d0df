//! Prometheus metrics. The chart's PrometheusRule and dashboard use these names; a test
//! checks that every name they use is registered here.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-plan series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    pub namespace: String,
    pub plan: String,
}

/// Labels of per-member series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabels {
    pub namespace: String,
    pub plan: String,
    pub member: String,
}

/// Labels of failover outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailoverLabels {
    pub namespace: String,
    pub plan: String,
    /// completed, refused or failed.
    pub result: String,
}

/// Labels of reconcile runs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

/// Labels of reconcile failures: the error's category, as in Event reasons.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub controller: String,
    pub reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 50 ms .. ~7 h: covers a promotion and a large restore alike.
    Histogram::new(exponential_buckets(0.05, 2.0, 19))
}

/// Every metric lifeboat exports.
#[derive(Clone)]
pub struct Metrics {
    pub backup_last_success_timestamp_seconds: Family<PlanLabels, FloatGauge>,
    pub backup_duration_seconds: HistogramFamily<PlanLabels>,
    pub backup_bytes: Family<PlanLabels, FloatGauge>,
    pub replica_lag_seconds: Family<MemberLabels, FloatGauge>,
    pub replica_lag_bytes: Family<MemberLabels, FloatGauge>,
    pub rpo_achieved_seconds: Family<PlanLabels, FloatGauge>,
    pub rpo_target_seconds: Family<PlanLabels, FloatGauge>,
    pub rto_estimated_seconds: Family<PlanLabels, FloatGauge>,
    pub rto_target_seconds: Family<PlanLabels, FloatGauge>,
    pub failovers: Family<FailoverLabels, Counter>,
    pub failover_duration_seconds: HistogramFamily<PlanLabels>,
    pub restore_duration_seconds: HistogramFamily<PlanLabels>,
    pub reconcile_runs: Family<ControllerLabels, Counter>,
    pub reconcile_failures: Family<FailureLabels, Counter>,
    pub reconcile_duration_seconds: HistogramFamily<ControllerLabels>,
    /// Writable members of an older (or unknown) epoch that lifeboat fenced.
    pub stale_writers_fenced: Family<MemberLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            backup_last_success_timestamp_seconds: Family::default(),
            backup_duration_seconds: Family::new_with_constructor(seconds_histogram),
            backup_bytes: Family::default(),
            replica_lag_seconds: Family::default(),
            replica_lag_bytes: Family::default(),
            rpo_achieved_seconds: Family::default(),
            rpo_target_seconds: Family::default(),
            rto_estimated_seconds: Family::default(),
            rto_target_seconds: Family::default(),
            failovers: Family::default(),
            failover_duration_seconds: Family::new_with_constructor(seconds_histogram),
            restore_duration_seconds: Family::new_with_constructor(seconds_histogram),
            reconcile_runs: Family::default(),
            reconcile_failures: Family::default(),
            reconcile_duration_seconds: Family::new_with_constructor(seconds_histogram),
            stale_writers_fenced: Family::default(),
        };
        let r = registry;
        r.register(
            "lifeboat_backup_last_success_timestamp_seconds",
            "Unix time of the newest completed backup",
            m.backup_last_success_timestamp_seconds.clone(),
        );
        r.register(
            "lifeboat_backup_duration_seconds",
            "Wall time of completed backups",
            m.backup_duration_seconds.clone(),
        );
        r.register(
            "lifeboat_backup_bytes",
            "Stored size of the newest completed backup",
            m.backup_bytes.clone(),
        );
        r.register(
            "lifeboat_replica_lag_seconds",
            "Primary time a replica has not applied yet",
            m.replica_lag_seconds.clone(),
        );
        r.register(
            "lifeboat_replica_lag_bytes",
            "WAL bytes (PostgreSQL) or transactions (MySQL) a replica is behind",
            m.replica_lag_bytes.clone(),
        );
        r.register(
            "lifeboat_rpo_achieved_seconds",
            "Worst current data-loss exposure (primary or cluster loss)",
            m.rpo_achieved_seconds.clone(),
        );
        r.register(
            "lifeboat_rpo_target_seconds",
            "The plan's RPO objective",
            m.rpo_target_seconds.clone(),
        );
        r.register(
            "lifeboat_rto_estimated_seconds",
            "Measured recovery time estimate (worse scenario)",
            m.rto_estimated_seconds.clone(),
        );
        r.register(
            "lifeboat_rto_target_seconds",
            "The plan's RTO objective",
            m.rto_target_seconds.clone(),
        );
        r.register(
            "lifeboat_failovers",
            "Failovers by result (completed, refused, failed)",
            m.failovers.clone(),
        );
        r.register(
            "lifeboat_failover_duration_seconds",
            "Measured RTO of completed failovers",
            m.failover_duration_seconds.clone(),
        );
        r.register(
            "lifeboat_restore_duration_seconds",
            "Wall time of completed restores",
            m.restore_duration_seconds.clone(),
        );
        r.register(
            "lifeboat_reconcile_runs",
            "Reconcile runs by controller",
            m.reconcile_runs.clone(),
        );
        r.register(
            "lifeboat_reconcile_failures",
            "Failed reconciles by controller and error reason",
            m.reconcile_failures.clone(),
        );
        r.register(
            "lifeboat_stale_writers_fenced",
            "Writable members of an older or unknown failover epoch that lifeboat fenced (split brain averted)",
            m.stale_writers_fenced.clone(),
        );
        r.register(
            "lifeboat_reconcile_duration_seconds",
            "Reconcile wall time by controller",
            m.reconcile_duration_seconds.clone(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metric names the chart's alerts and dashboard query.
    fn names_used_by_the_chart() -> Vec<String> {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut text =
            std::fs::read_to_string(format!("{root}/charts/lifeboat/templates/prometheusrule.yaml")).expect("rules");
        text += &std::fs::read_to_string(format!("{root}/charts/lifeboat/files/dashboards/lifeboat.json"))
            .expect("dashboard");
        let re = regex::Regex::new(r"lifeboat_[a-z_]+").expect("regex");
        let mut names: Vec<String> = re.find_iter(&text).map(|m| m.as_str().to_string()).collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn chart_queries_only_exported_metrics() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let labels = PlanLabels {
            namespace: "shop".into(),
            plan: "orders".into(),
        };
        // Families without a series are not encoded, so create one of each.
        metrics
            .backup_last_success_timestamp_seconds
            .get_or_create(&labels)
            .set(1.0);
        metrics.backup_duration_seconds.get_or_create(&labels).observe(1.0);
        metrics.backup_bytes.get_or_create(&labels).set(1.0);
        let member = MemberLabels {
            namespace: "shop".into(),
            plan: "orders".into(),
            member: "db-1".into(),
        };
        metrics.replica_lag_seconds.get_or_create(&member).set(0.5);
        metrics.replica_lag_bytes.get_or_create(&member).set(10.0);
        metrics.stale_writers_fenced.get_or_create(&member).inc();
        for g in [
            &metrics.rpo_achieved_seconds,
            &metrics.rpo_target_seconds,
            &metrics.rto_estimated_seconds,
            &metrics.rto_target_seconds,
        ] {
            g.get_or_create(&labels).set(1.0);
        }
        metrics
            .failovers
            .get_or_create(&FailoverLabels {
                namespace: "shop".into(),
                plan: "orders".into(),
                result: "completed".into(),
            })
            .inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for name in names_used_by_the_chart() {
            assert!(
                text.contains(&format!("\n{name}")) || text.contains(&format!("\n{name}{{")),
                "chart uses {name}, which is not exported:\n{text}"
            );
        }
    }
}
