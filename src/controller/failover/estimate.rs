//! The Failover's data-loss bound, from the same data-at-risk measure the plan's status
//! shows (policy::risk), plus the two refinements only a failover can make: the final
//! position of an old primary that answered the fence, and the synchronous guarantee.

use chrono::{DateTime, Utc};

use crate::api::failover::FailoverStatus;
use crate::controller::plan::assess::replica_views;
use crate::controller::plan::observe::Observation;
use crate::controller::plan::runtime::PlanMemory;
use crate::engine::Position;
use crate::engine::position::units_ahead;
use crate::policy::failover::ReplicaView;
use crate::policy::risk::{DataAtRisk, PrimarySample};
use crate::policy::validate::PlanSettings;

/// What the Failover reports as its loss bound.
#[derive(Clone, Debug, PartialEq)]
pub struct LossEstimate {
    pub seconds: Option<f64>,
    pub units: Option<u64>,
    pub basis: String,
}

impl LossEstimate {
    /// Nothing lost, and why that is known.
    pub fn none(basis: &str) -> LossEstimate {
        LossEstimate {
            seconds: Some(0.0),
            units: Some(0),
            basis: basis.into(),
        }
    }

    pub fn from_risk(risk: &DataAtRisk) -> LossEstimate {
        LossEstimate {
            seconds: risk.seconds,
            units: risk.units,
            basis: risk.basis.clone(),
        }
    }
}

/// The replicas as candidates for replacing `old`. After an operator restart the memory is
/// empty: the position the plan's status kept becomes the first sample.
pub fn views(observation: &Observation, old: &str, memory: &PlanMemory, settings: &PlanSettings) -> Vec<ReplicaView> {
    let mut memory = memory.clone();
    if memory.samples.latest().is_none()
        && let Some(kept) = observation.kept_primary_position.as_ref()
        && kept.member == old
        && let Some(position) = Position::parse(observation.postgres, &kept.position)
    {
        memory.samples.push(PrimarySample {
            at: kept.observed_at,
            position,
        });
    }
    let t_end = memory.writes_possible_until(Utc::now());
    replica_views(&observation.probes, Some(old), &memory, settings, t_end)
}

/// The bound once the old primary answered the fence but the candidate did not catch up:
/// units are exact (its final position against the candidate's), and the time bound grows
/// by how long the primary stayed alive after the decision.
pub fn against_final(
    final_position: &Position,
    candidate: Option<&Position>,
    status: &FailoverStatus,
    now: DateTime<Utc>,
) -> LossEstimate {
    let decided_at = status.steps.iter().find(|s| s.name == "fence").map(|s| s.started_at);
    let seconds = match (status.estimated_data_loss_seconds, decided_at) {
        (Some(s), Some(at)) => Some(s + (now - at).to_std().unwrap_or_default().as_secs_f64()),
        _ => None,
    };
    let units = candidate
        .and_then(|c| units_ahead(final_position, c))
        .map(|u| u.max(0) as u64);
    LossEstimate {
        seconds,
        units,
        basis: format!("the fenced primary answered: its final position {final_position} against the candidate's"),
    }
}
