//! Pure: the core/v1 Endpoints object a selector Service should have (no I/O).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use kube::api::ObjectMeta;

use super::pod_view;
use super::selection::{self, ResolvedPort, SelectedPod};

/// Set on Endpoints written by the endpoints controller so the EndpointSlice mirroring
/// controller leaves them alone (as kube-controller-manager does); also tells the
/// controller which Endpoints are its own.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";

/// The Endpoints the Service should have given all `pods` (any namespace), or `None`
/// when the Service has no selector. Pods sharing the same resolved ports share a
/// subset; ready pods go to `addresses`, the others to `notReadyAddresses`;
/// terminating pods are left out unless `publishNotReadyAddresses` is set.
pub fn desired_endpoints<'a>(service: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Option<Endpoints> {
    let selected = selection::select_pods(service, pods)?;
    let publish_not_ready = selection::publishes_not_ready(service);
    let mut groups: BTreeMap<Vec<ResolvedPort>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for pod in selected.iter().filter(|p| publish_not_ready || !p.terminating) {
        let (ready, not_ready) = groups.entry(pod.ports.clone()).or_default();
        if publish_not_ready || pod.ready {
            ready.push(address(pod));
        } else {
            not_ready.push(address(pod));
        }
    }
    let subsets = groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: non_empty(ready),
            not_ready_addresses: non_empty(not_ready),
            ports: non_empty(ports.into_iter().map(endpoint_port).collect()),
        })
        .collect();
    Some(Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: Some(selection::endpoint_labels(service, &[(SKIP_MIRROR_LABEL, "true")])),
            ..ObjectMeta::default()
        },
        subsets: Some(subsets),
    })
}

/// Whether `existing` already says what `desired` says (labels and subsets), so that
/// an unchanged Service is never rewritten.
pub fn endpoints_up_to_date(existing: &Endpoints, desired: &Endpoints) -> bool {
    existing.metadata.labels.clone().unwrap_or_default() == desired.metadata.labels.clone().unwrap_or_default()
        && normalized_subsets(existing) == normalized_subsets(desired)
}

fn normalized_subsets(endpoints: &Endpoints) -> Vec<EndpointSubset> {
    endpoints
        .subsets
        .iter()
        .flatten()
        .map(|s| EndpointSubset {
            addresses: s.addresses.clone().filter(|a| !a.is_empty()),
            not_ready_addresses: s.not_ready_addresses.clone().filter(|a| !a.is_empty()),
            ports: s.ports.clone().filter(|p| !p.is_empty()),
        })
        .collect()
}

fn address(pod: &SelectedPod<'_>) -> EndpointAddress {
    EndpointAddress {
        ip: pod.ip.to_string(),
        node_name: pod_view::node_name(pod.pod),
        target_ref: Some(pod_view::target_ref(pod.pod)),
        ..EndpointAddress::default()
    }
}

fn endpoint_port(port: ResolvedPort) -> EndpointPort {
    EndpointPort {
        // The API omits an empty port name; keep it absent so a read-back compares equal.
        name: Some(port.name).filter(|n| !n.is_empty()),
        port: port.port,
        protocol: Some(port.protocol),
        ..EndpointPort::default()
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}
