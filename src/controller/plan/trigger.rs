//! Automatic failover: the plan controller decides the primary is gone and records the
//! decision as a Failover object; the Failover controller carries it out.

use kube::api::PostParams;
use kube::{Api, Client};

use crate::api::failover::{FailoverSpec, FailoverType};
use crate::api::{Failover, FailoverPhase};

use super::history::History;
use super::schedule::PLAN_LABEL;
use crate::policy::failover::NoCandidate;

/// Annotation naming the primary an automatic failover replaces.
pub const FAILED_PRIMARY_ANNOTATION: &str = "lifeboat.dev/failed-primary";

/// Failed to create the Failover.
#[derive(Debug, thiserror::Error)]
#[error("creating automatic Failover for {namespace}/{plan}: {source}")]
pub struct TriggerError {
    pub namespace: String,
    pub plan: String,
    #[source]
    pub source: kube::Error,
}

/// Whether an automatic failover for the loss of `primary` was already requested and
/// either runs or was refused (a refusal stands until a person forces one, or the
/// primary comes back and fails again).
pub fn already_requested(history: &History, primary: &str) -> bool {
    if history.active_failover().is_some() {
        return true;
    }
    history.failovers.iter().any(|f| {
        let for_this = f
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(FAILED_PRIMARY_ANNOTATION))
            .is_some_and(|p| p == primary);
        // A refusal for want of a healthy replica does not stand: one may answer again.
        let no_candidate = f
            .status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m == NoCandidate::NoHealthyReplica.to_string());
        for_this && !no_candidate && f.status.as_ref().and_then(|s| s.phase) == Some(FailoverPhase::Refused)
    })
}

/// Creates the Failover record for losing `primary`.
pub async fn request_failover(
    client: &Client,
    namespace: &str,
    plan: &str,
    primary: &str,
) -> Result<String, TriggerError> {
    let mut failover = Failover::new(
        "",
        FailoverSpec {
            plan: plan.into(),
            kind: FailoverType::Failover,
            to: None,
            force: false,
        },
    );
    failover.metadata.name = None;
    failover.metadata.generate_name = Some(format!("{plan}-auto-"));
    failover.metadata.labels = Some([(PLAN_LABEL.to_string(), plan.to_string())].into());
    failover.metadata.annotations = Some([(FAILED_PRIMARY_ANNOTATION.to_string(), primary.to_string())].into());
    let created = Api::<Failover>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &failover)
        .await
        .map_err(|source| TriggerError {
            namespace: namespace.into(),
            plan: plan.into(),
            source,
        })?;
    Ok(created.metadata.name.unwrap_or_default())
}

/// The FailoverBlocked condition: a refused failover for the current (failed) primary.
pub fn blocked(history: &History, primary: Option<&str>, primary_healthy: bool) -> Option<String> {
    if primary_healthy {
        return None;
    }
    let newest = history.failovers.first()?;
    let status = newest.status.as_ref()?;
    (status.phase == Some(FailoverPhase::Refused) && (status.old_primary.as_deref() == primary || primary.is_none()))
        .then(|| status.message.clone().unwrap_or_else(|| "failover refused".into()))
}
