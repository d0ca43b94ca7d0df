//! `lifeboat operator`: runs against the current kubeconfig (in-cluster: the pod's service account).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::CliError;
use crate::controller::context::Context;
use crate::controller::leader::LeaseSettings;
use crate::controller::metrics::Metrics;
use crate::controller::runner::{self, OperatorConfig};
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
    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LIFEBOAT_LEASE_NAME", default_value = "lifeboat-leader")]
    pub lease_name: String,
    /// This instance's identity in the Lease (the pod name). Absent: host name and process id.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long a leader's lease lasts without renewal, in seconds.
    #[arg(long, env = "LIFEBOAT_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_seconds: u64,
    /// Reconciles run at once per controller.
    #[arg(long, env = "LIFEBOAT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "lifeboat".into());
    format!("{host}-{}", std::process::id())
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
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        server = %version.git_version,
        watch_namespace = args.watch_namespace.as_deref().unwrap_or("(all)"),
        lease = %format!("{}/{}", args.lease_namespace, args.lease_name),
        %identity,
        "operator started: connected to the Kubernetes API, waiting to lead"
    );
    let metrics = Metrics::register(&mut *state.registry.lock().await);
    let ctx = Arc::new(Context::new(client, metrics, Some(identity.clone())));
    state.ready.store(true, Ordering::Relaxed);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(http::serve(args.http_addr, state, async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    }));
    let lease_seconds = Duration::from_secs(args.lease_seconds);
    let config = OperatorConfig {
        watch_namespace: args.watch_namespace,
        lease: LeaseSettings {
            namespace: args.lease_namespace,
            name: args.lease_name,
            identity,
            lease_duration: lease_seconds,
            retry_period: lease_seconds / 3,
        },
        concurrency: args.concurrency,
    };
    let operator = tokio::spawn(runner::run(ctx, config, stop_rx));
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        served = http_task => {
            let _ = stop_tx.send(true);
            return match served {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(CliError::Other(e.to_string())),
                Err(e) => Err(CliError::Other(format!("HTTP server task: {e}"))),
            };
        }
    }
    let _ = stop_tx.send(true);
    let _ = operator.await;
    Ok(())
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
