//! The one place that changes a plan's `status.primary` and `status.epoch` (DESIGN.md
//! "One primary per epoch"). A claim names the epoch it expects to replace and is written
//! with the plan's resourceVersion as a precondition, so two writers can never both win
//! and a stale view can never move the primary back. Every other status write carries
//! these two fields over from a read of the same resourceVersion.

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::api::RecoveryPlan;

/// How many times a claim re-reads the plan after losing a race with an unrelated write.
const CLAIM_ATTEMPTS: usize = 5;

/// Failed to read or write the plan's primary record.
#[derive(Debug, thiserror::Error)]
pub enum ClaimPrimaryError {
    #[error("reading RecoveryPlan {namespace}/{plan} to claim epoch {epoch} for {primary}: {source}")]
    Read {
        namespace: String,
        plan: String,
        primary: String,
        epoch: u64,
        #[source]
        source: kube::Error,
    },
    #[error("recording {primary} as primary of RecoveryPlan {namespace}/{plan} at epoch {epoch}: {source}")]
    Write {
        namespace: String,
        plan: String,
        primary: String,
        epoch: u64,
        #[source]
        source: kube::Error,
    },
    #[error("RecoveryPlan {namespace}/{plan} not found")]
    PlanGone { namespace: String, plan: String },
    #[error("RecoveryPlan {namespace}/{plan} kept changing while {primary} claimed epoch {epoch}")]
    Contended {
        namespace: String,
        plan: String,
        primary: String,
        epoch: u64,
    },
}

/// The plan's primary record.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PrimaryRecord {
    pub primary: Option<String>,
    pub epoch: Option<u64>,
}

impl PrimaryRecord {
    /// The record in a plan object.
    pub fn of(plan: &RecoveryPlan) -> PrimaryRecord {
        let status = plan.status.as_ref();
        PrimaryRecord {
            primary: status.and_then(|s| s.primary.clone()),
            epoch: status.and_then(|s| s.epoch),
        }
    }
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// The record now names `primary` at the new epoch (by this claim or an earlier
    /// attempt of the same one); the plan as written.
    Won(Box<RecoveryPlan>),
    /// Someone else moved the epoch first: nothing was written.
    Lost(PrimaryRecord),
}

/// Records `primary` at `new_epoch`, if the plan's epoch is still `expected_epoch`.
pub async fn claim(
    client: &Client,
    namespace: &str,
    plan: &str,
    expected_epoch: Option<u64>,
    primary: &str,
    new_epoch: u64,
) -> Result<Claim, ClaimPrimaryError> {
    let api: Api<RecoveryPlan> = Api::namespaced(client.clone(), namespace);
    for _ in 0..CLAIM_ATTEMPTS {
        let current = api
            .get_opt(plan)
            .await
            .map_err(|source| ClaimPrimaryError::Read {
                namespace: namespace.into(),
                plan: plan.into(),
                primary: primary.into(),
                epoch: new_epoch,
                source,
            })?
            .ok_or_else(|| ClaimPrimaryError::PlanGone {
                namespace: namespace.into(),
                plan: plan.into(),
            })?;
        let record = PrimaryRecord::of(&current);
        if record.epoch == Some(new_epoch) && record.primary.as_deref() == Some(primary) {
            return Ok(Claim::Won(Box::new(current)));
        }
        // A plan never adopted has no epoch yet: that is epoch 0's predecessor state.
        if record.epoch.unwrap_or(0) != expected_epoch.unwrap_or(0)
            || (record.epoch.is_some() && expected_epoch.is_none())
        {
            return Ok(Claim::Lost(record));
        }
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {"primary": primary, "epoch": new_epoch},
        });
        match api
            .patch_status(plan, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => return Ok(Claim::Won(Box::new(written))),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(source) => {
                return Err(ClaimPrimaryError::Write {
                    namespace: namespace.into(),
                    plan: plan.into(),
                    primary: primary.into(),
                    epoch: new_epoch,
                    source,
                });
            }
        }
    }
    Err(ClaimPrimaryError::Contended {
        namespace: namespace.into(),
        plan: plan.into(),
        primary: primary.into(),
        epoch: new_epoch,
    })
}
