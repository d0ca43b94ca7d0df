//! What every reconcile shares: the client, one event Recorder, metrics.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::inflight::InFlight;
use super::metrics::Metrics;
use super::pacer::Pacer;
use super::plan::runtime::PlanRuntimes;

/// Shared by all reconciles of all controllers.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// The one event recorder.
    pub recorder: Arc<Recorder>,
    /// Exported metrics.
    pub metrics: Metrics,
    /// What the plan controller remembers between rounds.
    pub plans: PlanRuntimes,
    /// Backups this process started and has not yet seen finished.
    pub running_backups: InFlight,
    /// Restores this process started and has not yet seen finished.
    pub running_restores: InFlight,
    /// Turns self-inflicted wake-ups into no-ops until the next round is due.
    pub pacer: Pacer,
}

impl Context {
    /// Builds the context; `instance` is this operator's pod name (for events).
    pub fn new(client: Client, metrics: Metrics, instance: Option<String>) -> Context {
        let reporter = Reporter {
            controller: "lifeboat".into(),
            instance,
        };
        let recorder = Arc::new(Recorder::new(client.clone(), reporter));
        Context {
            client,
            recorder,
            metrics,
            plans: PlanRuntimes::default(),
            running_backups: InFlight::default(),
            running_restores: InFlight::default(),
            pacer: Pacer::default(),
        }
    }

    /// Publishes an event; a failure to record it is logged, never fatal.
    pub async fn event(&self, reference: &ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, reference).await {
            tracing::warn!(%err, reason, "could not record event");
        }
    }
}
