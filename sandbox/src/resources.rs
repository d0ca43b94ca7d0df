//! The resource kinds the sandbox serves: a fixed table of built-ins plus
//! whatever established CustomResourceDefinitions add.

use serde_json::Value;

/// One served resource (a group/version/plural triple and how it behaves).
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// Whether metadata.generation is maintained (kinds with a spec).
    pub tracks_generation: bool,
    /// Custom resources: the version's openAPIV3Schema.
    pub schema: Option<Value>,
    /// Custom resources: the version's additionalPrinterColumns (raw CRD JSON).
    pub printer_columns: Vec<Value>,
    pub is_custom: bool,
    /// Objects are writable with PUT even when they do not exist yet.
    pub create_on_update: bool,
    /// Verbs served; review kinds (never stored) serve only `create`.
    pub verbs: Vec<String>,
}

/// The verbs of a stored resource.
pub const STORED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceInfo {
    /// A review kind: POST answers with a computed status, nothing is stored.
    pub fn is_review(&self) -> bool {
        self.verbs.len() == 1 && self.verbs[0] == "create"
    }
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

struct Builtin {
    /// `group/version`, or just `v1` for the core group.
    api_version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    generation: bool,
}

const fn b(
    api_version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    generation: bool,
) -> Builtin {
    Builtin {
        api_version,
        plural,
        kind,
        namespaced,
        short,
        status,
        generation,
    }
}

const BUILTINS: &[Builtin] = &[
    b("v1", "namespaces", "Namespace", false, &["ns"], true, false),
    b("v1", "pods", "Pod", true, &["po"], true, true),
    b("v1", "services", "Service", true, &["svc"], true, false),
    b("v1", "endpoints", "Endpoints", true, &["ep"], false, false),
    b("v1", "configmaps", "ConfigMap", true, &["cm"], false, false),
    b("v1", "secrets", "Secret", true, &[], false, false),
    b("v1", "serviceaccounts", "ServiceAccount", true, &["sa"], false, false),
    b("v1", "events", "Event", true, &["ev"], false, false),
    b(
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        true,
        false,
    ),
    b(
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        &["pv"],
        true,
        false,
    ),
    b("v1", "nodes", "Node", false, &["no"], true, false),
    b("v1", "limitranges", "LimitRange", true, &["limits"], false, false),
    b("v1", "resourcequotas", "ResourceQuota", true, &["quota"], true, false),
    b("apps/v1", "deployments", "Deployment", true, &["deploy"], true, true),
    b("apps/v1", "statefulsets", "StatefulSet", true, &["sts"], true, true),
    b("apps/v1", "daemonsets", "DaemonSet", true, &["ds"], true, true),
    b("apps/v1", "replicasets", "ReplicaSet", true, &["rs"], true, true),
    b(
        "apps/v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        &[],
        false,
        false,
    ),
    b("batch/v1", "jobs", "Job", true, &[], true, true),
    b("batch/v1", "cronjobs", "CronJob", true, &["cj"], true, true),
    b("rbac.authorization.k8s.io/v1", "roles", "Role", true, &[], false, false),
    b(
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false,
    ),
    b(
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        true,
    ),
    b(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        true,
    ),
    b("coordination.k8s.io/v1", "leases", "Lease", true, &[], false, false),
    b(
        "discovery.k8s.io/v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        false,
        false,
    ),
    b("events.k8s.io/v1", "events", "Event", true, &["ev"], false, false),
    b(
        "networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        false,
        true,
    ),
    b(
        "networking.k8s.io/v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        true,
        true,
    ),
    b(
        "networking.k8s.io/v1",
        "ingressclasses",
        "IngressClass",
        false,
        &[],
        false,
        false,
    ),
    b(
        "scheduling.k8s.io/v1",
        "priorityclasses",
        "PriorityClass",
        false,
        &["pc"],
        false,
        false,
    ),
    b(
        "storage.k8s.io/v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
        false,
        false,
    ),
    b(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        true,
        true,
    ),
    b(
        "authorization.k8s.io/v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "authorization.k8s.io/v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "authorization.k8s.io/v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "authorization.k8s.io/v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
        &[],
        false,
        false,
    ),
    b(
        "authentication.k8s.io/v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "authentication.k8s.io/v1",
        "tokenreviews",
        "TokenReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        false,
        true,
    ),
    b(
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        &[],
        false,
        true,
    ),
];

/// The built-in resources, in discovery order.
pub fn builtins() -> Vec<ResourceInfo> {
    BUILTINS
        .iter()
        .map(|r| {
            let (group, version) = r.api_version.rsplit_once('/').unwrap_or(("", r.api_version));
            (r, group, version)
        })
        .map(|(r, group, version)| ResourceInfo {
            group: group.into(),
            version: version.into(),
            plural: r.plural.into(),
            singular: r.kind.to_lowercase(),
            kind: r.kind.into(),
            namespaced: r.namespaced,
            short_names: r.short.iter().map(|s| s.to_string()).collect(),
            categories: if [
                "pods",
                "services",
                "deployments",
                "statefulsets",
                "daemonsets",
                "replicasets",
                "jobs",
                "cronjobs",
            ]
            .contains(&r.plural)
            {
                vec!["all".into()]
            } else {
                vec![]
            },
            status_subresource: r.status,
            tracks_generation: r.generation,
            schema: None,
            printer_columns: vec![],
            is_custom: false,
            create_on_update: matches!(r.plural, "endpoints" | "leases" | "events"),
            verbs: if r.api_version.starts_with("authorization.k8s.io/")
                || r.api_version.starts_with("authentication.k8s.io/")
            {
                vec!["create".into()]
            } else {
                STORED_VERBS.iter().map(|v| v.to_string()).collect()
            },
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// The served versions of a CustomResourceDefinition object, as resources.
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let Some(group) = spec["group"].as_str() else {
        return vec![];
    };
    let Some(plural) = names["plural"].as_str() else {
        return vec![];
    };
    let Some(kind) = names["kind"].as_str() else {
        return vec![];
    };
    let singular = names["singular"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            Some(ResourceInfo {
                group: group.into(),
                version: v["name"].as_str()?.into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced,
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status_subresource: v["subresources"]["status"].is_object(),
                tracks_generation: true,
                schema: v["schema"]["openAPIV3Schema"]
                    .as_object()
                    .map(|o| Value::Object(o.clone())),
                printer_columns: v["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
                is_custom: true,
                create_on_update: false,
                verbs: STORED_VERBS.iter().map(|v| v.to_string()).collect(),
            })
        })
        .collect()
}
