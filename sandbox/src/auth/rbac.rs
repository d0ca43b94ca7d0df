//! The RBAC authorizer over the stored Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings, with kube-apiserver's matching rules and reasons.

use serde_json::Value;

use super::UserInfo;
use super::attributes::Attributes;
use crate::store::{Key, Store};

const GROUP: &str = "rbac.authorization.k8s.io";

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Why it was allowed, or what went wrong looking up roles (kube-apiserver's wording).
    pub reason: String,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has(list: &[&str], want: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == want)
}

fn resource_matches(rule: &Value, combined: &str, sub: &str) -> bool {
    strings(&rule["resources"])
        .iter()
        .any(|r| *r == "*" || *r == combined || (!sub.is_empty() && r.strip_prefix("*/") == Some(sub)))
}

fn url_matches(rule: &Value, path: &str) -> bool {
    strings(&rule["nonResourceURLs"])
        .iter()
        .any(|u| *u == "*" || *u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
}

/// Whether one PolicyRule allows the request.
pub fn rule_allows(a: &Attributes, rule: &Value) -> bool {
    if !has(&strings(&rule["verbs"]), &a.verb) {
        return false;
    }
    if !a.resource_request {
        return url_matches(rule, &a.path);
    }
    let names = strings(&rule["resourceNames"]);
    has(&strings(&rule["apiGroups"]), &a.api_group)
        && resource_matches(rule, &a.combined_resource(), &a.subresource)
        && (names.is_empty() || names.contains(&a.name.as_str()))
}

/// Whether a binding subject names this user; returns how to describe it.
fn subject_matches(s: &Value, user: &UserInfo, binding_ns: &str) -> Option<String> {
    let name = s["name"].as_str().unwrap_or("");
    match s["kind"].as_str().unwrap_or("") {
        "User" if user.name == name => Some(format!("User {name:?}")),
        "Group" if user.groups.iter().any(|g| g == name) => Some(format!("Group {name:?}")),
        "ServiceAccount" => {
            let ns = s["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(binding_ns);
            (user.name == format!("system:serviceaccount:{ns}:{name}"))
                .then(|| format!("ServiceAccount {:?}", format!("{name}/{ns}")))
        }
        _ => None,
    }
}

fn key(resource: &str, namespace: &str, name: &str) -> Key {
    Key {
        group: GROUP.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The rules a binding's roleRef points at, or the lookup error.
fn role_rules<'a>(store: &'a Store, binding: &Value, ns: &str) -> Result<&'a [Value], String> {
    let kind = binding["roleRef"]["kind"].as_str().unwrap_or("");
    let name = binding["roleRef"]["name"].as_str().unwrap_or("");
    let (resource, ns) = match kind {
        "ClusterRole" => ("clusterroles", ""),
        "Role" => ("roles", ns),
        other => return Err(format!("unknown roleRef kind {other:?}")),
    };
    let singular = resource.trim_end_matches('s');
    store
        .objects
        .get(&key(resource, ns, name))
        .map(|r| r["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]))
        .ok_or_else(|| format!("{singular}.{GROUP} {name:?} not found"))
}

/// Every (description, rules) pair that applies to the user in `namespace` (cluster-wide
/// bindings always; RoleBindings only of that namespace), plus lookup errors.
pub fn applicable<'a>(store: &'a Store, user: &UserInfo, namespace: &str) -> (Vec<(String, &'a [Value])>, Vec<String>) {
    let (mut out, mut errors) = (vec![], vec![]);
    let bindings = store.objects.iter().filter(|(k, _)| {
        k.group == GROUP
            && (k.resource == "clusterrolebindings"
                || (k.resource == "rolebindings" && !namespace.is_empty() && k.namespace == namespace))
    });
    for (k, b) in bindings {
        let subjects = b["subjects"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let Some(who) = subjects.iter().find_map(|s| subject_matches(s, user, &k.namespace)) else {
            continue;
        };
        let role = format!(
            "{} {:?}",
            b["roleRef"]["kind"].as_str().unwrap_or(""),
            b["roleRef"]["name"].as_str().unwrap_or("")
        );
        let source = if k.resource == "clusterrolebindings" {
            format!("ClusterRoleBinding {:?} of {role} to {who}", k.name)
        } else {
            format!(
                "RoleBinding {:?} of {role} to {who}",
                format!("{}/{}", k.name, k.namespace)
            )
        };
        match role_rules(store, b, &k.namespace) {
            Ok(rules) => out.push((source, rules)),
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

/// RBAC's decision on a request.
pub fn authorize(store: &Store, a: &Attributes) -> Decision {
    let (sources, errors) = applicable(store, &a.user, &a.namespace);
    for (source, rules) in sources {
        if rules.iter().any(|r| rule_allows(a, r)) {
            return Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {source}"),
            };
        }
    }
    let reason = match errors.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    };
    Decision { allowed: false, reason }
}
