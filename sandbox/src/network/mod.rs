//! Service networking, built as API clients of the sandbox itself (the way
//! kube-controller-manager and kube-proxy are clients of kube-apiserver):
//!
//! - the endpoints controller keeps the Endpoints and EndpointSlices of every selector
//!   Service in step with its pods (`status.podIP`, `Ready` condition);
//! - the service proxy listens on `clusterIP:port` for every TCP port of every Service
//!   with a clusterIP and splices each accepted connection to a ready endpoint chosen
//!   round robin at connect time; connections to an endpoint that stops being ready
//!   are closed, so a client that follows the Service sees a failover.
//!
//! The computations are pure functions ([`endpoints_model`], [`slices_model`],
//! [`backends`]) unit-tested on their own; the controllers only watch and write.
//!
//! Differences from kube-controller-manager and kube-proxy (for sandbox/README.md):
//! - endpoint choice is round robin per Service port over the ready endpoints at
//!   connect time, trying the next one when a connect is refused; `sessionAffinity`,
//!   traffic policies and topology hints are ignored;
//! - only `conditions.ready` endpoints get traffic (no fallback to serving-terminating
//!   endpoints); without any, a connection is accepted and reset at once (kube-proxy
//!   rejects the SYN instead);
//! - established connections to an endpoint that stops being ready, or through a
//!   Service that is deleted or changes its ports, are closed (kube-proxy leaves
//!   established TCP flows alone);
//! - only TCP ports are proxied, only on `clusterIP` (no nodePort, externalIPs or
//!   load-balancer addresses); UDP/SCTP ports still get endpoints;
//! - slices are named `<service>-<hash of ports>` instead of a random suffix, never
//!   split at 100 endpoints, IPv4 only; no EndpointSlice mirroring of selectorless
//!   Services' Endpoints, no `last-change-trigger-time` annotation;
//! - Endpoints written by the controller carry `endpointslice.kubernetes.io/skip-mirror`
//!   (as upstream); the controller uses it to find Endpoints of deleted Services.

pub mod backends;
mod connection;
#[cfg(test)]
mod connection_tests;
mod endpoints_controller;
pub mod endpoints_model;
mod endpoints_writer;
pub mod error;
pub mod pod_view;
mod proxy;
mod retry;
pub mod selection;
pub mod slices_model;
#[cfg(test)]
mod tests;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running endpoints controller and service proxy. Dropping it stops both (the
/// proxy's listeners close as their tasks notice); [`NetworkHandle::shutdown`] also
/// waits until every listener is closed.
#[derive(Debug)]
pub struct NetworkHandle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Start the endpoints controller and the service proxy against the API server
/// `client` talks to. Call once the server answers requests.
pub async fn start(client: kube::Client) -> NetworkHandle {
    let cancel = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(endpoints_controller::run(client.clone(), cancel.child_token())),
        tokio::spawn(proxy::run(client, cancel.child_token())),
    ];
    NetworkHandle { cancel, tasks }
}

impl NetworkHandle {
    /// Stop both controllers and wait until every proxy listener and connection is closed.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(error) = task.await {
                tracing::warn!(%error, "service networking task failed");
            }
        }
    }
}

impl Drop for NetworkHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
