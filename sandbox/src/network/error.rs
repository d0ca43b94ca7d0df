//! Errors of the service-networking controllers, named after the operation that failed.

/// Writing the Endpoints and EndpointSlices of one Service failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncEndpointsError {
    #[error("reading {kind} {namespace}/{name} failed: {source}")]
    Read {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing {kind} {namespace}/{name} failed: {source}")]
    Write {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {kind} {namespace}/{name} failed: {source}")]
    Delete {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Opening the listener of one Service port failed.
#[derive(Debug, thiserror::Error)]
#[error("listening on {addr} for Service {namespace}/{name} port {port_name:?} failed: {source}")]
pub struct BindServicePortError {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub addr: std::net::SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Connecting an accepted client to a backend failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyConnectionError {
    #[error("no ready endpoint for Service {service} port {port_name:?}")]
    NoReadyEndpoint { service: String, port_name: String },
    #[error(
        "no endpoint of Service {service} port {port_name:?} accepted a connection (last tried {backend}): {source}"
    )]
    Connect {
        service: String,
        port_name: String,
        backend: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
