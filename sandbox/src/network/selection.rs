//! Pure: which pods back a Service, with which ports (no I/O).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Pod, Service};

use super::pod_view::{self, DEFAULT_PROTOCOL};

/// Label on objects of a headless Service (clusterIP `None`).
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// One Service port resolved against one pod's containers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedPort {
    /// The Service port's name ("" when unnamed).
    pub name: String,
    pub protocol: String,
    /// The container port that traffic for this Service port goes to.
    pub port: i32,
}

/// A pod selected by a Service, reduced to what endpoints need.
#[derive(Debug, Clone)]
pub struct SelectedPod<'a> {
    pub pod: &'a Pod,
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub terminating: bool,
    /// Service ports whose targetPort resolves on this pod, in Service order.
    pub ports: Vec<ResolvedPort>,
}

/// The Service's selector, or `None` when it has none (its endpoints are then
/// managed by someone else and the controller leaves them alone).
pub fn service_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|sel| !sel.is_empty())
}

/// `spec.publishNotReadyAddresses`: not-ready and terminating pods count as ready.
pub fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// Pods in the Service's namespace that match its selector, have an IPv4 podIP and
/// are not Succeeded/Failed, sorted by IP then name. Pods with a targetPort that
/// resolves nowhere (and the Service has ports) are left out. `None` when the Service
/// has no selector.
pub fn select_pods<'a>(service: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Option<Vec<SelectedPod<'a>>> {
    let selector = service_selector(service)?;
    let namespace = service.metadata.namespace.as_deref();
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let mut selected: Vec<SelectedPod<'a>> = pods
        .into_iter()
        .filter(|pod| pod.metadata.namespace.as_deref() == namespace)
        .filter(|pod| pod_view::matches_selector(pod, selector))
        .filter(|pod| !pod_view::is_terminal(pod))
        .filter_map(|pod| {
            let ip = pod_view::pod_ipv4(pod)?;
            let ports: Vec<ResolvedPort> = service_ports
                .iter()
                .filter_map(|sp| {
                    Some(ResolvedPort {
                        name: sp.name.clone().unwrap_or_default(),
                        protocol: sp.protocol.clone().unwrap_or_else(|| DEFAULT_PROTOCOL.to_owned()),
                        port: pod_view::resolve_target_port(pod, sp)?,
                    })
                })
                .collect();
            if ports.is_empty() && !service_ports.is_empty() {
                return None;
            }
            Some(SelectedPod {
                pod,
                ip,
                ready: pod_view::is_ready(pod),
                terminating: pod_view::is_terminating(pod),
                ports,
            })
        })
        .collect();
    selected.sort_by(|a, b| (a.ip, &a.pod.metadata.name).cmp(&(b.ip, &b.pod.metadata.name)));
    Some(selected)
}

/// Labels the controller puts on a Service's endpoints objects: the Service's own
/// labels plus the headless marker, plus `extra`.
pub fn endpoint_labels(service: &Service, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    for (k, v) in extra {
        labels.insert((*k).to_owned(), (*v).to_owned());
    }
    labels
}
