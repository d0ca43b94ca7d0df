//! The operator's HTTP endpoints: /healthz (process alive), /readyz (able to act),
//! /metrics (Prometheus text format).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

/// Shared state behind the endpoints.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics registry rendered at /metrics.
    pub registry: Arc<Mutex<Registry>>,
    /// Set once the operator can talk to the API server; /readyz answers 503 until then.
    pub ready: Arc<AtomicBool>,
}

impl HttpState {
    /// A fresh state: empty registry, not ready.
    pub fn new() -> Self {
        HttpState {
            registry: Arc::new(Mutex::new(Registry::default())),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Default for HttpState {
    fn default() -> Self {
        Self::new()
    }
}

/// Failed to serve the HTTP endpoints.
#[derive(Debug, thiserror::Error)]
pub enum ServeHttpError {
    #[error("binding the metrics/health listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The router, separate from the listener so tests can drive it directly.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves the endpoints until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeHttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeHttpError::Bind { addr, source })?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServeHttpError::Serve { addr, source })
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: Kubernetes API not reached yet",
        )
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut body = String::new();
    let registry = state.registry.lock().await;
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics: {err}"),
        ),
    }
}
