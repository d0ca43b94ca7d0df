//! Pure: where the proxy listens for a Service and which endpoints it may forward to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::pod_view::DEFAULT_PROTOCOL;
use super::slices_model::SERVICE_NAME_LABEL;

/// One TCP Service port the proxy listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenPort {
    /// The Service port's name ("" when unnamed); matches the slice port's name.
    pub port_name: String,
    /// `spec.clusterIP:port`.
    pub addr: SocketAddr,
}

/// The TCP ports to listen on: every TCP port of a Service with an IPv4
/// `spec.clusterIP` (so not headless `None`, not ExternalName, not yet allocated).
pub fn listen_ports(service: &Service) -> Vec<ListenPort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else {
        return Vec::new();
    };
    let mut ports: Vec<ListenPort> = spec
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL) == "TCP")
        .filter_map(|p| {
            Some(ListenPort {
                port_name: p.name.clone().unwrap_or_default(),
                addr: SocketAddr::new(IpAddr::V4(ip), u16::try_from(p.port).ok()?),
            })
        })
        .collect();
    ports.sort();
    ports
}

/// Ready endpoints (`conditions.ready` true or absent, as the API defines) of the
/// Service `namespace/service_name` for the port named `port_name`, as `podIP:port`
/// from the Service's IPv4 slices, sorted and without duplicates. Serving-but-
/// terminating endpoints are not used (no kube-proxy terminating fallback).
pub fn ready_backends<'a>(
    namespace: &str,
    service_name: &str,
    port_name: &str,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<SocketAddr> {
    let mut backends: Vec<SocketAddr> = slices
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                == Some(service_name)
        })
        .filter(|s| s.address_type == "IPv4")
        .flat_map(|slice| {
            let port = slice
                .ports
                .iter()
                .flatten()
                .find(|p| {
                    p.name.as_deref().unwrap_or_default() == port_name
                        && p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL) == "TCP"
                })
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok());
            slice
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                .flat_map(|e| e.addresses.iter())
                .filter_map(move |a| {
                    let ip: Ipv4Addr = a.parse().ok()?;
                    Some(SocketAddr::new(IpAddr::V4(ip), port?))
                })
        })
        .collect();
    backends.sort();
    backends.dedup();
    backends
}
