//! OpenAPI v3 as far as the clients need it: the index, and per group-version
//! documents whose PATCH operations declare `fieldValidation` (so kubectl
//! uses server-side field validation) and, for custom resources, the CRD's
//! schema as a component (for `kubectl explain`).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use axum::response::Response;
use serde_json::{Value, json};

use super::{builtin_schemas, json_response};
use crate::resources::ResourceInfo;

const QUERY_PARAMS: &[&str] = &["fieldValidation", "fieldManager", "dryRun", "force", "pretty"];

fn gv_path(r: &ResourceInfo) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

fn schema_name(r: &ResourceInfo) -> String {
    let group = if r.group.is_empty() {
        "core".to_string()
    } else {
        r.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{group}.{}.{}", r.version, r.kind)
}

fn gv_doc(resources: &[&ResourceInfo]) -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let mut generator = builtin_schemas::generator();
    let mut kinds: Vec<(String, Value)> = vec![];
    for r in resources {
        let name = if r.is_custom {
            schema_name(r)
        } else {
            builtin_schemas::register(&mut generator, &r.group, &r.kind).unwrap_or_else(|| schema_name(r))
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let params: Vec<Value> = QUERY_PARAMS
            .iter()
            .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
            .collect();
        let sref = json!({"$ref": format!("#/components/schemas/{name}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": sref}}}});
        let op = |verb: &str| json!({"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": verb, "parameters": params, "responses": ok});
        let base = format!("/{}", gv_path(r));
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
        paths.insert(collection.clone(), json!({"get": op("list"), "post": op("post")}));
        if r.status_subresource {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch")}),
            );
        }
        if let Some(schema) = &r.schema {
            schemas.insert(name.clone(), schema.clone());
        }
        kinds.push((name, gvk));
    }
    schemas.extend(builtin_schemas::take(&mut generator));
    for (name, gvk) in kinds {
        let schema = schemas
            .entry(name)
            .or_insert_with(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.35.2"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn by_gv(resources: &[ResourceInfo]) -> BTreeMap<String, Vec<&ResourceInfo>> {
    let mut m: BTreeMap<String, Vec<&ResourceInfo>> = BTreeMap::new();
    for r in resources {
        m.entry(gv_path(r)).or_default().push(r);
    }
    m
}

/// Changes whenever the group-version's document would (its resources or CRD schemas).
fn hash_of(resources: &[&ResourceInfo]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in resources {
        (&r.plural, &r.kind, r.namespaced, r.status_subresource).hash(&mut h);
        r.schema.as_ref().map(Value::to_string).hash(&mut h);
    }
    format!("{:016X}", h.finish())
}

/// `/openapi/v3` and `/openapi/v3/<gv path>`.
pub fn serve_v3(resources: &[ResourceInfo], rest: &[&str]) -> Option<Response> {
    let groups = by_gv(resources);
    if rest.is_empty() {
        let index: serde_json::Map<String, Value> = groups
            .iter()
            .map(|(gv, rs)| {
                (
                    gv.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", hash_of(rs))}),
                )
            })
            .collect();
        return Some(json_response(200, &json!({"paths": index})));
    }
    let gv = rest.join("/");
    groups.get(&gv).map(|rs| json_response(200, &gv_doc(rs)))
}
