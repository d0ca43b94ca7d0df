//! get and list (selectors, limit/continue, Table output).

use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::{AppState, Req, Target, json_response, table};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Key;

/// The object as served at the requested version (storage is shared by versions).
pub fn output(info: &ResourceInfo, obj: &Value) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(info.api_version());
    o["kind"] = json!(info.kind);
    o
}

pub fn key_of(t: &Target) -> Key {
    Key::new(
        &t.info,
        t.namespace.as_deref().unwrap_or(""),
        t.name.as_deref().unwrap_or(""),
    )
}

pub fn get(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let store = state.store();
    let name = t.name.as_deref().unwrap_or("");
    let obj = store
        .objects
        .get(&key_of(t))
        .ok_or_else(|| ApiError::not_found(&t.info.group, &t.info.plural, name))?;
    let obj = output(&t.info, obj);
    if req.wants_table() {
        let include = req.q("includeObject").unwrap_or("Metadata");
        return Ok(json_response(200, &table::render(&t.info, &[obj], include, store.rv)));
    }
    if req.wants_metadata() {
        return Ok(json_response(200, &table::row_object(&obj, "Metadata")));
    }
    Ok(json_response(200, &obj))
}

/// Selectors of a list, watch or deletecollection request.
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_req(req: &Req) -> ApiResult<Filter> {
        Ok(Filter {
            labels: LabelSelector::parse(req.q("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(req.q("fieldSelector").unwrap_or(""))?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

fn encode_continue(rv: u64, key: &Key) -> String {
    let raw = json!({"rv": rv, "ns": key.namespace, "name": key.name}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> ApiResult<(String, String)> {
    let bad = || ApiError::bad_request("continue key is not valid: malformed token");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["ns"].as_str().ok_or_else(bad)?.to_string(),
        v["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

/// Matching objects in key order, plus the store's resourceVersion.
pub fn matching(state: &AppState, t: &Target, filter: &Filter) -> (Vec<(Key, Value)>, u64) {
    let store = state.store();
    let items = store
        .list(&t.info, t.namespace.as_deref())
        .filter(|(_, o)| filter.matches(o))
        .map(|(k, o)| (k.clone(), output(&t.info, o)))
        .collect();
    (items, store.rv)
}

pub fn list(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let filter = Filter::from_req(req)?;
    let (mut items, rv) = matching(state, t, &filter);
    if let Some(token) = req.q("continue") {
        let (ns, name) = decode_continue(token)?;
        items.retain(|(k, _)| (k.namespace.as_str(), k.name.as_str()) > (ns.as_str(), name.as_str()));
    }
    let limit: usize = match req.q("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some((last, _)) = items.last() {
            meta["continue"] = json!(encode_continue(rv, last));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    let objects: Vec<Value> = items.into_iter().map(|(_, o)| o).collect();
    if req.wants_table() {
        let include = req.q("includeObject").unwrap_or("Metadata");
        let mut tbl = table::render(&t.info, &objects, include, rv);
        tbl["metadata"] = meta;
        return Ok(json_response(200, &tbl));
    }
    if req.wants_metadata() {
        let items: Vec<Value> = objects.iter().map(|o| table::row_object(o, "Metadata")).collect();
        return Ok(json_response(
            200,
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
        ));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": t.info.list_kind(),
            "apiVersion": t.info.api_version(),
            "metadata": meta,
            "items": objects,
        }),
    ))
}
