//! Pure facts about a Pod that the endpoints controller needs (no I/O).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Protocol of a port when the object leaves it empty (the API default).
pub const DEFAULT_PROTOCOL: &str = "TCP";

/// The pod's IPv4 address from `status.podIP` (or the first IPv4 in `status.podIPs`).
pub fn pod_ipv4(pod: &Pod) -> Option<Ipv4Addr> {
    let status = pod.status.as_ref()?;
    let primary = status.pod_ip.iter().map(String::as_str);
    let all = status.pod_ips.iter().flatten().map(|ip| ip.ip.as_str());
    primary.chain(all).find_map(|ip| ip.parse().ok())
}

/// `Ready` condition is `True`, like `podutil.IsPodReady`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| conds.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod is being deleted (finalizers or grace period still pending).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Succeeded or Failed pods never serve again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Every `selector` label is present on the pod with the same value.
pub fn matches_selector(pod: &Pod, selector: &std::collections::BTreeMap<String, String>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The container port a Service port's `targetPort` points at on this pod, like
/// `podutil.FindPort`: a number is used as is, a name is looked up among the
/// containers' ports with the same protocol; absent means the Service port itself.
pub fn resolve_target_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(port)) => Some(*port),
        Some(IntOrString::String(name)) => {
            let protocol = service_port.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL);
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL) == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// `targetRef` of an endpoint: kind, namespace, name and uid (no resourceVersion, so a
/// pod status change alone does not rewrite the endpoints).
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// Node the pod is scheduled to, if any.
pub fn node_name(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}
