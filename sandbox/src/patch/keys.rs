//! How built-in kinds' lists merge: the `patchStrategy`/`patchMergeKey` tags
//! and `+listType`/`+listMapKey` markers of k8s.io/api, for the fields that
//! kubectl, helm and controllers touch. Lists not named here are atomic.

use serde_json::Value;

/// How a list field merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars (e.g. `metadata.finalizers`).
    Set,
    /// Items identified by these keys; a key missing from an item takes the
    /// given default (kube defaults `protocol` to `TCP` before merging).
    Map(Vec<(String, Option<String>)>),
}

impl ListKind {
    /// The strategic merge patch merge key (the first key), if any.
    pub fn merge_key(&self) -> Option<&str> {
        match self {
            ListKind::Map(keys) => keys.first().map(|(k, _)| k.as_str()),
            _ => None,
        }
    }
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The list kind of the field at `path` (field names only, list items
/// skipped: `spec.template.spec.containers.ports` is `["spec", "template",
/// "spec", "containers", "ports"]`) in a built-in object of `kind`.
pub fn builtin_list_kind(kind: &str, path: &[&str]) -> ListKind {
    let Some((&field, parents)) = path.split_last() else {
        return ListKind::Atomic;
    };
    let parent = parents.last().copied().unwrap_or("");
    let in_container = CONTAINER_LISTS.contains(&parent);
    let map = |keys: &[(&str, Option<&str>)]| {
        ListKind::Map(
            keys.iter()
                .map(|(k, d)| (k.to_string(), d.map(str::to_string)))
                .collect(),
        )
    };
    match field {
        "finalizers" if parents == ["metadata"] => ListKind::Set,
        "ownerReferences" if parents == ["metadata"] => map(&[("uid", None)]),
        f if CONTAINER_LISTS.contains(&f) && parent == "spec" => map(&[("name", None)]),
        "ports" if in_container => map(&[("containerPort", None), ("protocol", Some("TCP"))]),
        "ports" if kind == "Service" && parents == ["spec"] => map(&[("port", None), ("protocol", Some("TCP"))]),
        "env" if in_container => map(&[("name", None)]),
        "volumeMounts" if in_container => map(&[("mountPath", None)]),
        "volumeDevices" if in_container => map(&[("devicePath", None)]),
        "resizePolicy" if in_container => map(&[("resourceName", None)]),
        "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" if parent == "spec" => {
            map(&[("name", None)])
        }
        "hostAliases" if parent == "spec" => map(&[("ip", None)]),
        "topologySpreadConstraints" if parent == "spec" => map(&[("topologyKey", None), ("whenUnsatisfiable", None)]),
        "secrets" if kind == "ServiceAccount" && parents.is_empty() => map(&[("name", None)]),
        "conditions" if parents.first() == Some(&"status") => map(&[("type", None)]),
        "addresses" if kind == "Node" && parents == ["status"] => map(&[("type", None)]),
        _ => ListKind::Atomic,
    }
}

/// The list kind declared by a CRD structural schema node for a list
/// (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`); `None` when
/// the schema says nothing (callers treat that as atomic).
pub fn schema_list_kind(list_schema: &Value) -> Option<ListKind> {
    match list_schema["x-kubernetes-list-type"].as_str()? {
        "set" => Some(ListKind::Set),
        "map" => {
            let keys = list_schema["x-kubernetes-list-map-keys"].as_array()?;
            let keys = keys
                .iter()
                .filter_map(Value::as_str)
                .map(|k| {
                    (
                        k.to_string(),
                        list_schema["items"]["properties"][k]["default"]
                            .as_str()
                            .map(str::to_string),
                    )
                })
                .collect();
            Some(ListKind::Map(keys))
        }
        _ => Some(ListKind::Atomic),
    }
}

/// An item's identity in a map list: `{"key": value, ...}` in key order,
/// defaults filled in; `None` when a key without default is missing.
pub fn item_key(kind: &ListKind, item: &Value) -> Option<serde_json::Map<String, Value>> {
    let ListKind::Map(keys) = kind else { return None };
    let mut out = serde_json::Map::new();
    for (k, default) in keys {
        match (item.get(k.as_str()), default) {
            (Some(v), _) if !v.is_null() => out.insert(k.clone(), v.clone()),
            (_, Some(d)) => out.insert(k.clone(), Value::String(d.clone())),
            _ => return None,
        };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key_names(kind: &ListKind) -> Vec<&str> {
        match kind {
            ListKind::Map(keys) => keys.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn builtin_lists_merge_by_their_kubernetes_keys() {
        let pod_template = ["spec", "template", "spec"];
        let at = |tail: &[&'static str]| -> Vec<&'static str> { pod_template.iter().chain(tail).copied().collect() };
        assert_eq!(
            key_names(&builtin_list_kind("Deployment", &at(&["containers"]))),
            ["name"]
        );
        assert_eq!(
            key_names(&builtin_list_kind("Deployment", &at(&["initContainers", "env"]))),
            ["name"]
        );
        assert_eq!(
            key_names(&builtin_list_kind("Deployment", &at(&["containers", "ports"]))),
            ["containerPort", "protocol"]
        );
        assert_eq!(
            key_names(&builtin_list_kind("Deployment", &at(&["containers", "volumeMounts"]))),
            ["mountPath"]
        );
        assert_eq!(key_names(&builtin_list_kind("Pod", &["spec", "volumes"])), ["name"]);
        assert_eq!(
            key_names(&builtin_list_kind("Pod", &["spec", "imagePullSecrets"])),
            ["name"]
        );
        assert_eq!(
            key_names(&builtin_list_kind("Service", &["spec", "ports"])),
            ["port", "protocol"]
        );
        assert_eq!(
            key_names(&builtin_list_kind("Pod", &["status", "conditions"])),
            ["type"]
        );
        assert_eq!(
            key_names(&builtin_list_kind("Pod", &["metadata", "ownerReferences"])),
            ["uid"]
        );
        assert_eq!(builtin_list_kind("Pod", &["metadata", "finalizers"]), ListKind::Set);
        // No patchMergeKey in k8s.io/api: replaced as a whole.
        assert_eq!(builtin_list_kind("Pod", &["spec", "tolerations"]), ListKind::Atomic);
        assert_eq!(
            builtin_list_kind("Pod", &["spec", "containers", "args"]),
            ListKind::Atomic
        );
        assert_eq!(builtin_list_kind("Role", &["rules"]), ListKind::Atomic);
        assert_eq!(builtin_list_kind("EndpointSlice", &["ports"]), ListKind::Atomic);
    }

    #[test]
    fn item_keys_fill_defaults_and_need_the_other_keys() {
        let ports = builtin_list_kind("Pod", &["spec", "containers", "ports"]);
        let key = item_key(&ports, &json!({"containerPort": 80})).unwrap();
        assert_eq!(
            serde_json::Value::Object(key),
            json!({"containerPort": 80, "protocol": "TCP"})
        );
        assert!(item_key(&ports, &json!({"name": "http"})).is_none());
    }

    #[test]
    fn crd_schemas_declare_list_types() {
        let map = json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "proto"],
            "items": {"properties": {"proto": {"default": "TCP"}}}});
        let kind = schema_list_kind(&map).unwrap();
        assert_eq!(
            kind,
            ListKind::Map(vec![("name".into(), None), ("proto".into(), Some("TCP".into()))])
        );
        assert_eq!(
            schema_list_kind(&json!({"x-kubernetes-list-type": "set"})),
            Some(ListKind::Set)
        );
        assert_eq!(
            schema_list_kind(&json!({"x-kubernetes-list-type": "atomic"})),
            Some(ListKind::Atomic)
        );
        assert_eq!(schema_list_kind(&json!({"type": "array"})), None);
    }
}
