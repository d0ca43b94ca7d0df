//! The default ClusterRoles and ClusterRoleBindings kube-apiserver creates at
//! start (a subset of its bootstrap policy: the user-facing roles and what
//! every authenticated user gets), plus the ClusterRole aggregation controller.

use serde_json::{Value, json};

use crate::selectors::LabelSelector;
use crate::store::{EventType, Key, Store};

const GROUP: &str = "rbac.authorization.k8s.io";
const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn role(name: &str, labels: Value, rules: Vec<Value>, aggregate_from: Option<&str>) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/bootstrapping"] = json!("rbac-defaults");
    let mut r = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules,
    });
    if let Some(label) = aggregate_from {
        r["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    }
    r
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn cluster_roles() -> Vec<Value> {
    let to = |what: &str| json!({format!("rbac.authorization.k8s.io/aggregate-to-{what}"): "true"});
    vec![
        role(
            "cluster-admin",
            json!({}),
            vec![
                rule(&["*"], &["*"], &["*"]),
                json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
            ],
            None,
        ),
        role(
            "admin",
            json!({}),
            vec![],
            Some("rbac.authorization.k8s.io/aggregate-to-admin"),
        ),
        role(
            "edit",
            to("admin"),
            vec![],
            Some("rbac.authorization.k8s.io/aggregate-to-edit"),
        ),
        role(
            "view",
            to("edit"),
            vec![],
            Some("rbac.authorization.k8s.io/aggregate-to-view"),
        ),
        role(
            "system:aggregate-to-admin",
            to("admin"),
            vec![
                rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
                rule(&[GROUP], &["rolebindings", "roles"], ALL),
            ],
            None,
        ),
        role(
            "system:aggregate-to-edit",
            to("edit"),
            vec![
                rule(
                    &[""],
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                    READ,
                ),
                rule(&[""], &["serviceaccounts"], &["impersonate"]),
                rule(
                    &[""],
                    &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
                    WRITE,
                ),
                rule(&[""], &["pods/eviction"], &["create"]),
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                    WRITE,
                ),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
                rule(
                    &["apps"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                    WRITE,
                ),
                rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
                rule(&["batch"], &["cronjobs", "jobs"], WRITE),
                rule(&["policy"], &["poddisruptionbudgets"], WRITE),
                rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], WRITE),
                rule(&["coordination.k8s.io"], &["leases"], ALL),
            ],
            None,
        ),
        role(
            "system:aggregate-to-view",
            to("view"),
            vec![
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                    READ,
                ),
                rule(
                    &[""],
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                    READ,
                ),
                rule(&[""], &["namespaces"], READ),
                rule(&["discovery.k8s.io"], &["endpointslices"], READ),
                rule(
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                    READ,
                ),
                rule(
                    &["autoscaling"],
                    &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
                    READ,
                ),
                rule(
                    &["batch"],
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                    READ,
                ),
                rule(
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                    READ,
                ),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status", "networkpolicies"],
                    READ,
                ),
            ],
            None,
        ),
        role(
            "system:discovery",
            json!({}),
            vec![
                json!({"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}),
            ],
            None,
        ),
        role(
            "system:basic-user",
            json!({}),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
            None,
        ),
        role(
            "system:public-info-viewer",
            json!({}),
            vec![
                json!({"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}),
            ],
            None,
        ),
        role(
            "system:auth-delegator",
            json!({}),
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
            ],
            None,
        ),
    ]
}

fn bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &["system:masters"]),
        binding("system:discovery", "system:discovery", &["system:authenticated"]),
        binding("system:basic-user", "system:basic-user", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

fn key(resource: &str, name: &str) -> Key {
    Key {
        group: GROUP.into(),
        resource: resource.into(),
        namespace: String::new(),
        name: name.into(),
    }
}

/// Create the default roles and bindings that are missing (as kube-apiserver does at
/// every start; existing ones are left as they are).
pub fn ensure(store: &mut Store) {
    let wanted = cluster_roles()
        .into_iter()
        .map(|r| ("clusterroles", r))
        .chain(bindings().into_iter().map(|b| ("clusterrolebindings", b)));
    for (resource, mut obj) in wanted {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let k = key(resource, &name);
        if store.objects.contains_key(&k) {
            continue;
        }
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        obj["metadata"]["creationTimestamp"] = json!(crate::meta::now());
        store.put(k, obj, EventType::Added, None);
    }
    aggregate(store);
}

/// The ClusterRole aggregation controller: a ClusterRole with an aggregationRule gets
/// the union of the rules of the ClusterRoles its selectors match.
pub fn aggregate(store: &mut Store) {
    // Aggregated roles can feed others (view -> edit -> admin): repeat until stable.
    for _ in 0..8 {
        let roles: Vec<(Key, Value)> = store
            .objects
            .iter()
            .filter(|(k, _)| k.group == GROUP && k.resource == "clusterroles")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut changed = false;
        for (k, r) in roles.iter().filter(|(_, r)| r["aggregationRule"].is_object()) {
            let selectors: Vec<LabelSelector> = r["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| LabelSelector::from_json(s).ok()).collect())
                .unwrap_or_default();
            let mut rules: Vec<Value> = vec![];
            for (other_key, other) in &roles {
                if other_key == k || !selectors.iter().any(|s| s.matches(other)) {
                    continue;
                }
                for rule in other["rules"].as_array().into_iter().flatten() {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
            if r["rules"] != json!(rules) {
                let mut updated = r.clone();
                updated["rules"] = json!(rules);
                store.put(k.clone(), updated, EventType::Modified, Some(r.clone()));
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}
