//! The Failover status as a journal: every step is written before it is taken, so a
//! restarted operator resumes the step it was in instead of repeating or forking history.

use chrono::Utc;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::api::failover::{FailoverStatus, FailoverStep};
use crate::api::{Failover, FailoverPhase};
use crate::policy::objectives::human_seconds;

/// Failed to write the journal.
#[derive(Debug, thiserror::Error)]
#[error("recording Failover {namespace}/{name} {what}: {source}")]
pub struct RecordError {
    pub namespace: String,
    pub name: String,
    pub what: String,
    #[source]
    pub source: kube::Error,
}

/// Writes the whole status (a merge patch of /status: the journal is ours alone).
pub async fn save(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &FailoverStatus,
    what: &str,
) -> Result<(), RecordError> {
    let api: Api<Failover> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"status": status});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| RecordError {
            namespace: namespace.into(),
            name: name.into(),
            what: what.into(),
            source,
        })
}

/// Starts a step (unless the journal already shows it started) and moves to `phase`.
pub fn begin(status: &mut FailoverStatus, phase: FailoverPhase, step: &str, member: Option<&str>) {
    status.phase = Some(phase);
    let open = status.steps.iter().any(|s| s.name == step && s.finished_at.is_none());
    if !open {
        status.steps.push(FailoverStep {
            name: step.into(),
            member: member.map(str::to_string),
            started_at: Utc::now(),
            finished_at: None,
            result: None,
            message: None,
        });
    }
}

/// Closes the open step of that name.
pub fn finish(status: &mut FailoverStatus, step: &str, ok: bool, message: Option<String>) {
    if let Some(s) = status
        .steps
        .iter_mut()
        .rev()
        .find(|s| s.name == step && s.finished_at.is_none())
    {
        s.finished_at = Some(Utc::now());
        s.result = Some(if ok { "Succeeded" } else { "Failed" }.into());
        s.message = message;
    }
}

/// Whether the journal shows `step` finished successfully.
pub fn done(status: &FailoverStatus, step: &str) -> bool {
    status
        .steps
        .iter()
        .any(|s| s.name == step && s.result.as_deref() == Some("Succeeded"))
}

/// Ends the failover: terminal phase, message, and for Completed the measured RTO (to
/// `completedAt` when a step set it: the moment writes were routed to the new primary).
pub fn end(status: &mut FailoverStatus, phase: FailoverPhase, message: String) {
    let now = *status.completed_at.get_or_insert_with(Utc::now);
    status.phase = Some(phase);
    status.message = Some(message);
    if phase == FailoverPhase::Completed
        && let Some(started) = status.started_at
    {
        let rto = (now - started).to_std().unwrap_or_default().as_secs_f64();
        status.rto_seconds = Some(rto);
        status.rto = Some(human_seconds(rto));
    }
}
