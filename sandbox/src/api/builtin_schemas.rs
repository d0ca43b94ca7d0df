//! OpenAPI schemas of built-in kinds, from k8s-openapi's generated
//! `JsonSchema` impls (same component names and descriptions as
//! kube-apiserver's), so `kubectl explain` works for built-ins too.

use k8s_openapi::api::{
    admissionregistration, apps, autoscaling, batch, coordination, core, discovery, events, networking, policy, rbac,
    scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

pub fn generator() -> SchemaGenerator {
    SchemaSettings::openapi3().into_generator()
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Option<(String, Schema)> {
    Some((T::schema_name().into_owned(), g.subschema_for::<T>()))
}

/// The component name of a built-in kind, registering its schemas with `g`.
pub fn register(g: &mut SchemaGenerator, group: &str, kind: &str) -> Option<String> {
    let found = match (group, kind) {
        ("", "Namespace") => schema::<core::v1::Namespace>(g),
        ("", "Pod") => schema::<core::v1::Pod>(g),
        ("", "Service") => schema::<core::v1::Service>(g),
        ("", "Endpoints") => schema::<core::v1::Endpoints>(g),
        ("", "ConfigMap") => schema::<core::v1::ConfigMap>(g),
        ("", "Secret") => schema::<core::v1::Secret>(g),
        ("", "ServiceAccount") => schema::<core::v1::ServiceAccount>(g),
        ("", "Event") => schema::<core::v1::Event>(g),
        ("", "PersistentVolumeClaim") => schema::<core::v1::PersistentVolumeClaim>(g),
        ("", "PersistentVolume") => schema::<core::v1::PersistentVolume>(g),
        ("", "Node") => schema::<core::v1::Node>(g),
        ("", "LimitRange") => schema::<core::v1::LimitRange>(g),
        ("", "ResourceQuota") => schema::<core::v1::ResourceQuota>(g),
        ("apps", "Deployment") => schema::<apps::v1::Deployment>(g),
        ("apps", "StatefulSet") => schema::<apps::v1::StatefulSet>(g),
        ("apps", "DaemonSet") => schema::<apps::v1::DaemonSet>(g),
        ("apps", "ReplicaSet") => schema::<apps::v1::ReplicaSet>(g),
        ("apps", "ControllerRevision") => schema::<apps::v1::ControllerRevision>(g),
        ("batch", "Job") => schema::<batch::v1::Job>(g),
        ("batch", "CronJob") => schema::<batch::v1::CronJob>(g),
        ("rbac.authorization.k8s.io", "Role") => schema::<rbac::v1::Role>(g),
        ("rbac.authorization.k8s.io", "RoleBinding") => schema::<rbac::v1::RoleBinding>(g),
        ("rbac.authorization.k8s.io", "ClusterRole") => schema::<rbac::v1::ClusterRole>(g),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => schema::<rbac::v1::ClusterRoleBinding>(g),
        ("policy", "PodDisruptionBudget") => schema::<policy::v1::PodDisruptionBudget>(g),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            schema::<apiextensions::v1::CustomResourceDefinition>(g)
        }
        ("coordination.k8s.io", "Lease") => schema::<coordination::v1::Lease>(g),
        ("discovery.k8s.io", "EndpointSlice") => schema::<discovery::v1::EndpointSlice>(g),
        ("events.k8s.io", "Event") => schema::<events::v1::Event>(g),
        ("networking.k8s.io", "NetworkPolicy") => schema::<networking::v1::NetworkPolicy>(g),
        ("networking.k8s.io", "Ingress") => schema::<networking::v1::Ingress>(g),
        ("networking.k8s.io", "IngressClass") => schema::<networking::v1::IngressClass>(g),
        ("scheduling.k8s.io", "PriorityClass") => schema::<scheduling::v1::PriorityClass>(g),
        ("storage.k8s.io", "StorageClass") => schema::<storage::v1::StorageClass>(g),
        ("autoscaling", "HorizontalPodAutoscaler") => schema::<autoscaling::v2::HorizontalPodAutoscaler>(g),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            schema::<admissionregistration::v1::ValidatingWebhookConfiguration>(g)
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            schema::<admissionregistration::v1::MutatingWebhookConfiguration>(g)
        }
        _ => None,
    };
    found.map(|(name, _)| name)
}

/// Every schema registered so far, keyed by component name.
pub fn take(g: &mut SchemaGenerator) -> Map<String, Value> {
    g.take_definitions(true)
}
