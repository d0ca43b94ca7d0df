//! Pure: the discovery.k8s.io/v1 EndpointSlices a selector Service should have.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;

use super::pod_view;
use super::selection::{self, ResolvedPort, SelectedPod};

/// Label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that owns a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on slices this controller writes (same as upstream).
pub const MANAGED_BY_VALUE: &str = "endpointslice-controller.k8s.io";

/// Label selector matching the slices this controller manages for one Service.
pub fn managed_slices_selector(service_name: &str) -> String {
    format!("{SERVICE_NAME_LABEL}={service_name},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

/// The slices the Service should have given all `pods` (any namespace), or `None`
/// when it has no selector. One IPv4 slice per distinct set of resolved ports (pods
/// whose named targetPort resolves differently land in different slices), named
/// `<service>-<hash of the ports>` so that a rewrite finds the same slice again; a
/// Service without any selected pod gets one empty placeholder slice, as upstream.
/// Conditions follow upstream: `serving` = pod Ready, `terminating` = deletionTimestamp
/// set, `ready` = serving and not terminating (always true with
/// `publishNotReadyAddresses`). Slices are not split at 100 endpoints.
pub fn desired_slices<'a>(service: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Option<Vec<EndpointSlice>> {
    let selected = selection::select_pods(service, pods)?;
    let publish_not_ready = selection::publishes_not_ready(service);
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<Endpoint>> = BTreeMap::new();
    for pod in &selected {
        groups
            .entry(pod.ports.clone())
            .or_default()
            .push(endpoint(pod, publish_not_ready));
    }
    if groups.is_empty() {
        groups.insert(Vec::new(), Vec::new());
    }
    let service_name = service.metadata.name.clone().unwrap_or_default();
    let labels = selection::endpoint_labels(
        service,
        &[
            (SERVICE_NAME_LABEL, &service_name),
            (MANAGED_BY_LABEL, MANAGED_BY_VALUE),
        ],
    );
    let slices = groups
        .into_iter()
        .map(|(ports, endpoints)| EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{service_name}-{}", ports_hash(&ports))),
                namespace: service.metadata.namespace.clone(),
                labels: Some(labels.clone()),
                owner_references: Some(vec![owner_reference(service)]),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".to_owned(),
            endpoints,
            ports: Some(ports.into_iter().map(slice_port).collect()),
        })
        .collect();
    Some(slices)
}

/// Whether `existing` already says what `desired` says, so that an unchanged
/// Service is never rewritten.
pub fn slice_up_to_date(existing: &EndpointSlice, desired: &EndpointSlice) -> bool {
    existing.address_type == desired.address_type
        && existing.endpoints == desired.endpoints
        && existing.ports.clone().unwrap_or_default() == desired.ports.clone().unwrap_or_default()
        && existing.metadata.labels.clone().unwrap_or_default() == desired.metadata.labels.clone().unwrap_or_default()
        && existing.metadata.owner_references.clone().unwrap_or_default()
            == desired.metadata.owner_references.clone().unwrap_or_default()
}

fn endpoint(pod: &SelectedPod<'_>, publish_not_ready: bool) -> Endpoint {
    let ready = publish_not_ready || (pod.ready && !pod.terminating);
    Endpoint {
        addresses: vec![pod.ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(pod.ready),
            terminating: Some(pod.terminating),
        }),
        node_name: pod_view::node_name(pod.pod),
        target_ref: Some(pod_view::target_ref(pod.pod)),
        ..Endpoint::default()
    }
}

fn slice_port(port: ResolvedPort) -> EndpointPort {
    EndpointPort {
        name: Some(port.name),
        port: Some(port.port),
        protocol: Some(port.protocol),
        ..EndpointPort::default()
    }
}

fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Service".to_owned(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// FNV-1a of the port set, as 8 hex digits: stable across runs and Rust versions,
/// unlike `DefaultHasher`, so slice names survive a sandbox restart with `--state`.
fn ports_hash(ports: &[ResolvedPort]) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for port in ports {
        let text = format!("{}/{}/{};", port.name, port.protocol, port.port);
        for byte in text.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    format!("{hash:08x}")
}
