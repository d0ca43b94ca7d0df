//! Routing writes: role labels on member pods, and the writer Service following the primary
//! (by selector for pod members, by Endpoints/EndpointSlice for static members).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::api::{FIELD_MANAGER, ROLE_LABEL};
use crate::engine::Member;
use crate::policy::roles::RoleLabel;

/// Failed to route writes.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("labelling pod {namespace}/{pod} {ROLE_LABEL}={role}: {source}")]
    LabelPod {
        namespace: String,
        pod: String,
        role: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The object changed since this round read it: the round is stale and must not write.
    #[error("{what} {namespace}/{name} changed since this round read it")]
    Stale {
        what: &'static str,
        namespace: String,
        name: String,
    },
    #[error("writer Service {namespace}/{service}: {source}")]
    Service {
        namespace: String,
        service: String,
        #[source]
        source: kube::Error,
    },
}

/// Whether a routing write may only apply to the object as it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Only if unchanged since read (the plan controller: a stale round must not undo a
    /// failover's routing).
    Unchanged,
    /// Unconditionally (the Failover controller, the owner of routing while it runs).
    None,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(a) if a.code == 409)
}

/// Sets the role label on every pod whose label differs. Returns how many changed.
pub async fn label_pods(
    client: &Client,
    namespace: &str,
    pods: &[Pod],
    labels: &BTreeMap<String, RoleLabel>,
    precondition: Precondition,
) -> Result<usize, RouteError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut changed = 0;
    for pod in pods {
        let Some(name) = pod.metadata.name.as_deref() else {
            continue;
        };
        let Some(want) = labels.get(name) else { continue };
        let have = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ROLE_LABEL))
            .map(String::as_str);
        if have == Some(want.as_str()) {
            continue;
        }
        let mut patch = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {ROLE_LABEL: want.as_str()}},
        });
        if precondition == Precondition::Unchanged
            && let Some(rv) = &pod.metadata.resource_version
        {
            patch["metadata"]["resourceVersion"] = serde_json::json!(rv);
        }
        api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
            .await
            .map_err(|source| {
                if is_conflict(&source) {
                    RouteError::Stale {
                        what: "Pod",
                        namespace: namespace.into(),
                        name: name.into(),
                    }
                } else {
                    RouteError::LabelPod {
                        namespace: namespace.into(),
                        pod: name.into(),
                        role: want.as_str(),
                        source,
                    }
                }
            })?;
        changed += 1;
    }
    Ok(changed)
}

/// What the writer Service looks like to lifeboat.
pub enum WriterService {
    Missing,
    Found(Box<Service>),
}

/// Reads the writer Service.
pub async fn get_writer_service(client: &Client, namespace: &str, name: &str) -> Result<WriterService, RouteError> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(s)) => Ok(WriterService::Found(Box::new(s))),
        Ok(None) => Ok(WriterService::Missing),
        Err(source) => Err(RouteError::Service {
            namespace: namespace.into(),
            service: name.into(),
            source,
        }),
    }
}

/// Makes a selector Service select `role=primary` (added next to the user's own labels).
pub async fn ensure_primary_selector(client: &Client, namespace: &str, service: &Service) -> Result<bool, RouteError> {
    let name = service.metadata.name.clone().unwrap_or_default();
    let selects_primary = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.get(ROLE_LABEL))
        .is_some_and(|v| v == RoleLabel::Primary.as_str());
    if selects_primary {
        return Ok(false);
    }
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"spec": {"selector": {ROLE_LABEL: RoleLabel::Primary.as_str()}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| RouteError::Service {
            namespace: namespace.into(),
            service: name.clone(),
            source,
        })?;
    Ok(true)
}

/// For static members: the writer Service's Endpoints and EndpointSlice point at the primary.
/// With [`Precondition::Unchanged`], `seen` is the Endpoints' resourceVersion as read
/// before the round's probes (absent: they must not exist yet... or were never read).
pub async fn point_endpoints(
    client: &Client,
    namespace: &str,
    service: &Service,
    primary: Option<&Member>,
    precondition: Precondition,
    seen: Option<&str>,
) -> Result<(), RouteError> {
    let name = service.metadata.name.clone().unwrap_or_default();
    let err = |source| RouteError::Service {
        namespace: namespace.into(),
        service: name.clone(),
        source,
    };
    let ports: Vec<(Option<String>, i32)> = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, primary.map_or(p.port, |m| i32::from(m.port))))
        .collect();
    let addresses: Vec<serde_json::Value> = primary.map(|m| serde_json::json!({"ip": m.host})).into_iter().collect();
    let mut endpoints = serde_json::json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace},
        "subsets": if addresses.is_empty() { serde_json::json!([]) } else { serde_json::json!([{
            "addresses": addresses,
            "ports": ports.iter().map(|(n, p)| serde_json::json!({"name": n, "port": p, "protocol": "TCP"})).collect::<Vec<_>>(),
        }]) },
    });
    if precondition == Precondition::Unchanged
        && let Some(rv) = seen
    {
        endpoints["metadata"]["resourceVersion"] = serde_json::json!(rv);
    }
    let api: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client.clone(), namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&endpoints),
    )
    .await
    .map_err(|source| {
        if is_conflict(&source) {
            RouteError::Stale {
                what: "Endpoints",
                namespace: namespace.into(),
                name: name.clone(),
            }
        } else {
            err(source)
        }
    })?;
    let slice_name = format!("{name}-lifeboat");
    let slice = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name, "namespace": namespace, "labels": {
            "kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "lifeboat.dev"}},
        "addressType": "IPv4",
        "endpoints": primary.map(|m| serde_json::json!({"addresses": [m.host], "conditions": {"ready": true, "serving": true, "terminating": false}})).into_iter().collect::<Vec<_>>(),
        "ports": ports.iter().map(|(n, p)| serde_json::json!({"name": n, "port": p, "protocol": "TCP"})).collect::<Vec<_>>(),
    });
    let api: Api<k8s_openapi::api::discovery::v1::EndpointSlice> = Api::namespaced(client.clone(), namespace);
    api.patch(
        &slice_name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&slice),
    )
    .await
    .map_err(err)?;
    Ok(())
}

/// The writer Service's Endpoints resourceVersion (static members), read before a round's
/// probes so the round's routing write only applies if nobody routed meanwhile.
pub async fn endpoints_version(client: &Client, namespace: &str, service: &str) -> Result<Option<String>, RouteError> {
    let api: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client.clone(), namespace);
    api.get_opt(service)
        .await
        .map(|e| e.and_then(|e| e.metadata.resource_version))
        .map_err(|source| RouteError::Service {
            namespace: namespace.into(),
            service: service.into(),
            source,
        })
}
