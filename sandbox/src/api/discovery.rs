//! Discovery: /version, legacy /api and /apis documents, and the aggregated
//! (apidiscovery.k8s.io/v2) form kubectl 1.35 and helm 4 ask for first.

use std::collections::BTreeMap;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Req, json_response};
use crate::error::ApiResult;
use crate::resources::ResourceInfo;

/// A subresource besides `status`.
struct Sub {
    resource: &'static str,
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

const SUBRESOURCES: &[Sub] = &[
    Sub {
        resource: "pods",
        name: "log",
        group: "",
        version: "v1",
        kind: "Pod",
        verbs: &["get"],
    },
    Sub {
        resource: "pods",
        name: "binding",
        group: "",
        version: "v1",
        kind: "Binding",
        verbs: &["create"],
    },
    Sub {
        resource: "serviceaccounts",
        name: "token",
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
        verbs: &["create"],
    },
];

fn extra_subresources(r: &ResourceInfo) -> impl Iterator<Item = &'static Sub> {
    let core = r.group.is_empty() && !r.is_custom;
    let plural = r.plural.clone();
    SUBRESOURCES.iter().filter(move |s| core && s.resource == plural)
}
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn version_doc() -> Value {
    json!({
        "major": "1", "minor": "35", "emulationMajor": "1", "emulationMinor": "35",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.2", "gitCommit": "kube-sandbox", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
    })
}

/// Group name -> versions (in first-seen order) -> resources.
fn grouped(resources: &[ResourceInfo]) -> BTreeMap<String, Vec<(String, Vec<ResourceInfo>)>> {
    let mut out: BTreeMap<String, Vec<(String, Vec<ResourceInfo>)>> = BTreeMap::new();
    for r in resources {
        let versions = out.entry(r.group.clone()).or_default();
        match versions.iter_mut().find(|(v, _)| *v == r.version) {
            Some((_, rs)) => rs.push(r.clone()),
            None => versions.push((r.version.clone(), vec![r.clone()])),
        }
    }
    // Preferred version first: highest by Kubernetes version priority (v2 > v1 > v1beta1).
    for versions in out.values_mut() {
        versions.sort_by_key(|(v, _)| std::cmp::Reverse(version_priority(v)));
    }
    out
}

fn version_priority(v: &str) -> (u32, u32, u32) {
    let rest = v.trim_start_matches('v');
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n.parse().unwrap_or(0))
    } else {
        (2, 0)
    };
    (stage, major, n)
}

fn legacy_resources(gv: &str, rs: &[ResourceInfo]) -> Value {
    let mut list = vec![];
    for r in rs {
        list.push(json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": r.verbs, "shortNames": r.short_names, "categories": r.categories,
        }));
        for s in extra_subresources(r) {
            let mut e = json!({"name": format!("{}/{}", s.resource, s.name), "singularName": "", "namespaced": r.namespaced, "kind": s.kind, "verbs": s.verbs});
            if !s.group.is_empty() {
                e["group"] = json!(s.group);
                e["version"] = json!(s.version);
            }
            list.push(e);
        }
        if r.status_subresource {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

fn aggregated_item(group: &str, versions: &[(String, Vec<ResourceInfo>)]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|(v, rs)| {
            let resources: Vec<Value> = rs
                .iter()
                .map(|r| {
                    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
                    let mut subs = vec![];
                    if r.status_subresource {
                        subs.push(
                            json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}),
                        );
                    }
                    for s in extra_subresources(r) {
                        subs.push(json!({"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind}, "verbs": s.verbs}));
                    }
                    json!({
                        "resource": r.plural, "responseKind": kind,
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular, "verbs": r.verbs, "shortNames": r.short_names,
                        "categories": r.categories, "subresources": subs,
                    })
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": vs})
}

fn group_doc(group: &str, versions: &[(String, Vec<ResourceInfo>)]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|(v, _)| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs.first()})
}

fn aggregated_response(items: Vec<Value>) -> Response {
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    ([(CONTENT_TYPE, AGGREGATED)], body.to_string()).into_response()
}

/// Serve discovery and health paths; None for everything else.
pub fn serve(state: &AppState, req: &Req, segs: &[&str]) -> ApiResult<Option<Response>> {
    if req.method != axum::http::Method::GET {
        return Ok(None);
    }
    let wants_aggregated = req.header("accept").contains("as=APIGroupDiscoveryList");
    let groups = grouped(state.store().resources());
    let resp = match segs {
        ["version"] => json_response(200, &version_doc()),
        ["openapi", "v3", rest @ ..] => match super::openapi::serve_v3(state.store().resources(), rest) {
            Some(r) => r,
            None => return Ok(None),
        },
        ["healthz"] | ["readyz"] | ["livez"] => "ok".into_response(),
        ["api"] if wants_aggregated => {
            aggregated_response(groups.get("").map(|v| vec![aggregated_item("", v)]).unwrap_or_default())
        }
        ["api"] => json_response(
            200,
            &json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": req.header("host")}],
            }),
        ),
        ["apis"] if wants_aggregated => aggregated_response(
            groups
                .iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| aggregated_item(g, v))
                .collect(),
        ),
        ["apis"] => {
            let list: Vec<Value> = groups
                .iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| group_doc(g, v))
                .collect();
            json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}),
            )
        }
        ["api", v] => match groups.get("").and_then(|vs| vs.iter().find(|(x, _)| x == v)) {
            Some((_, rs)) => json_response(200, &legacy_resources(v, rs)),
            None => return Ok(None),
        },
        ["apis", g] => match groups.get(*g) {
            Some(vs) => json_response(200, &group_doc(g, vs)),
            None => return Ok(None),
        },
        ["apis", g, v] => match groups.get(*g).and_then(|vs| vs.iter().find(|(x, _)| x == v)) {
            Some((_, rs)) => json_response(200, &legacy_resources(&format!("{g}/{v}"), rs)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(resp))
}
