//! `lifeboat operator`: runs against the current kubeconfig (in-cluster: the pod's service account).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::CliError;
use crate::http::{self, HttpState};

/// Arguments of `lifeboat operator`.
#[derive(Debug, clap::Args)]
pub struct OperatorArgs {
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "LIFEBOAT_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Only watch this namespace (a namespace-scoped install). Absent: all namespaces.
    #[arg(long, env = "LIFEBOAT_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
}

pub async fn run(args: OperatorArgs) -> Result<(), CliError> {
    let state = HttpState::new();
    let client = kube::Client::try_default().await.map_err(|source| CliError::Kube {
        context: "loading kubeconfig or in-cluster config".into(),
        source,
    })?;
    let version = client.apiserver_version().await.map_err(|source| CliError::Kube {
        context: "reaching the API server".into(),
        source,
    })?;
    tracing::info!(server = %version.git_version, namespace = ?args.watch_namespace, "connected to the Kubernetes API");
    state.ready.store(true, Ordering::Relaxed);
    tracing::warn!("controllers are not part of this build yet: serving health and metrics only");
    http::serve(args.http_addr, state, shutdown_signal())
        .await
        .map_err(|e| CliError::Other(e.to_string()))
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
