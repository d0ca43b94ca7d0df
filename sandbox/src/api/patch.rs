//! PATCH: merge, JSON, strategic merge (built-ins only) and server-side apply.

use axum::response::Response;
use serde_json::Value;

use super::read::{key_of, output};
use super::write::{WriteCtx, do_create, do_update};
use super::{AppState, Req, Target, json_response};
use crate::error::{ApiError, ApiResult};
use crate::{json_glue, meta};

fn parse_patch(req: &Req, yaml: bool) -> ApiResult<Value> {
    let parsed: Result<Value, String> = if yaml {
        serde_yaml::from_slice(&req.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(&req.body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

pub fn patch(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let content_type = req
        .header("content-type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let key = key_of(t);
    let name = t.name.clone().unwrap_or_default();
    let dry_run = req.dry_run();
    let manager = req.manager();
    let sub = t.sub.as_deref();
    let mut store = state.store();
    let live = store.objects.get(&key).cloned();

    if content_type == "application/apply-patch+yaml" {
        if req.q("fieldManager").is_none() {
            return Err(ApiError::bad_request(
                "PATCH requests with apply content type require a fieldManager",
            ));
        }
        let mut applied = parse_patch(req, true)?;
        if !applied.is_object() {
            return Err(ApiError::bad_request("apply patch must be an object"));
        }
        // Like kube-apiserver, an apply body may leave the name out: the URL names the object.
        if meta::name(&applied).is_empty() {
            applied["metadata"]["name"] = serde_json::Value::String(name.clone());
        }
        if meta::name(&applied) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta::name(&applied)
            )));
        }
        let force = req.q("force") == Some("true");
        let now = meta::now();
        let ctx = WriteCtx {
            manager: manager.clone(),
            sub,
            dry_run,
            applied: true,
        };
        return match live {
            None if sub.is_none() => {
                let obj = json_glue::server_side_apply(&t.info, None, &applied, &manager, force, None, &now)?;
                let stored = do_create(state, &mut store, &t.info, t.namespace.as_deref(), obj, &ctx)?;
                Ok(json_response(201, &output(&t.info, &stored)))
            }
            None => Err(ApiError::not_found(&t.info.group, &t.info.plural, &name)),
            Some(live) => {
                let mut obj = json_glue::server_side_apply(&t.info, Some(&live), &applied, &manager, force, sub, &now)?;
                // An apply never carries a resourceVersion precondition unless the user set one.
                if meta::resource_version(&applied).is_empty() {
                    obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
                }
                let stored = do_update(state, &mut store, &t.info, &key, obj, &ctx)?;
                Ok(json_response(200, &output(&t.info, &stored)))
            }
        };
    }

    let live = live.ok_or_else(|| ApiError::not_found(&t.info.group, &t.info.plural, &name))?;
    let patch = parse_patch(req, false)?;
    let mut obj = live.clone();
    match content_type.as_str() {
        "application/merge-patch+json" => json_glue::merge_patch(&mut obj, &patch),
        "application/json-patch+json" => json_glue::json_patch(&mut obj, &patch)?,
        "application/strategic-merge-patch+json" if !t.info.is_custom => {
            json_glue::strategic_merge_patch(&mut obj, &patch, &t.info)?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    let ctx = WriteCtx {
        manager,
        sub,
        dry_run,
        applied: false,
    };
    let stored = do_update(state, &mut store, &t.info, &key, obj, &ctx)?;
    Ok(json_response(200, &output(&t.info, &stored)))
}
