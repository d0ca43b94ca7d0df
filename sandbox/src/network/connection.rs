//! I/O: accept clients on one Service port and splice each to a ready endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::error::ProxyConnectionError;

/// Ready endpoints of one Service port, replaced as a whole on every change.
pub type Backends = Arc<[SocketAddr]>;

/// Loopback backends answer at once; this only bounds a pathological hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One Service port: where its clients go.
pub struct PortProxy {
    /// `namespace/name`, for logs.
    pub service: String,
    pub port_name: String,
    pub backends: watch::Receiver<Backends>,
    /// Round-robin position shared by all connections of this port.
    pub next: AtomicUsize,
}

/// Accept until `cancel` fires; the listener closes when this returns.
pub async fn accept_loop(listener: TcpListener, port: Arc<PortProxy>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => {
                let span =
                    tracing::debug_span!("proxy_connection", service = %port.service, port = %port.port_name, %peer);
                let (port, cancel) = (Arc::clone(&port), cancel.clone());
                tokio::spawn(
                    async move {
                        if let Err(error) = serve(client, &port, &cancel).await {
                            tracing::debug!(%error, "connection refused");
                        }
                    }
                    .instrument(span),
                );
            }
            Err(error) => {
                tracing::warn!(service = %port.service, port = %port.port_name, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Pick a ready endpoint now (round robin, trying the next ones if a connect fails),
/// then splice until either side closes, the endpoint stops being ready, or the
/// Service's proxy stops. Without any reachable ready endpoint the client is reset at
/// once, like kube-proxy's REJECT rule.
async fn serve(
    mut client: TcpStream,
    port: &PortProxy,
    cancel: &CancellationToken,
) -> Result<(), ProxyConnectionError> {
    let candidates = port.backends.borrow().clone();
    let (backend, mut upstream) = match connect_any(&candidates, port).await {
        Ok(Some(connected)) => connected,
        Ok(None) => {
            reject(&client);
            return Err(ProxyConnectionError::NoReadyEndpoint {
                service: port.service.clone(),
                port_name: port.port_name.clone(),
            });
        }
        Err(error) => {
            reject(&client);
            return Err(error);
        }
    };
    let mut backends = port.backends.clone();
    tokio::select! {
        copied = copy_bidirectional(&mut client, &mut upstream) => match copied {
            Ok((up, down)) => tracing::debug!(%backend, up, down, "connection closed"),
            Err(error) => tracing::debug!(%backend, %error, "connection ended with an error"),
        },
        () = endpoint_gone(&mut backends, backend) => {
            tracing::debug!(%backend, "endpoint no longer ready: closing its connection");
        }
        () = cancel.cancelled() => tracing::debug!(%backend, "service proxy stopped: closing"),
    }
    Ok(())
}

/// Connect to the first candidate that accepts, starting at the round-robin position.
/// `Ok(None)` when there is no candidate at all.
async fn connect_any(
    candidates: &[SocketAddr],
    port: &PortProxy,
) -> Result<Option<(SocketAddr, TcpStream)>, ProxyConnectionError> {
    if candidates.is_empty() {
        return Ok(None);
    }
    let start = port.next.fetch_add(1, Ordering::Relaxed);
    let mut last_error = None;
    for offset in 0..candidates.len() {
        let backend = candidates[(start + offset) % candidates.len()];
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await;
        match attempt.unwrap_or_else(|elapsed| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed))) {
            Ok(stream) => return Ok(Some((backend, stream))),
            Err(error) => {
                tracing::debug!(%backend, %error, "endpoint refused; trying the next one");
                last_error = Some((backend, error));
            }
        }
    }
    match last_error {
        Some((backend, source)) => Err(ProxyConnectionError::Connect {
            service: port.service.clone(),
            port_name: port.port_name.clone(),
            backend,
            source,
        }),
        None => Ok(None),
    }
}

/// Completes once `backend` is no longer among the ready endpoints (or the Service's
/// proxy dropped the channel).
async fn endpoint_gone(backends: &mut watch::Receiver<Backends>, backend: SocketAddr) {
    loop {
        if !backends.borrow_and_update().contains(&backend) {
            return;
        }
        if backends.changed().await.is_err() {
            return;
        }
    }
}

/// Close with RST instead of FIN so the client sees a refusal, not an empty reply.
fn reject(client: &TcpStream) {
    if let Err(error) = client.set_zero_linger() {
        tracing::debug!(%error, "could not set SO_LINGER=0 on a rejected connection");
    }
}
