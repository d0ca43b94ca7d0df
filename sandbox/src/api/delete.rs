//! delete (preconditions, propagationPolicy, finalizers) and deletecollection.

use axum::response::Response;
use serde_json::{Value, json};

use super::read::{Filter, key_of, matching, output};
use super::{AppState, Req, Target, json_response};
use crate::error::{ApiError, ApiResult};
use crate::lifecycle::{self, FOREGROUND, ORPHAN};
use crate::meta;
use crate::store::Key;

struct DeleteOptions {
    policy: Option<String>,
    grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

fn options(req: &Req) -> ApiResult<DeleteOptions> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        req.body_json()?
    };
    let mut policy = body["propagationPolicy"]
        .as_str()
        .or(req.q("propagationPolicy"))
        .map(String::from);
    if policy.is_none() && body["orphanDependents"] == true {
        policy = Some("Orphan".into());
    }
    if let Some(p) = &policy
        && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![(
                "FieldValueNotSupported".into(),
                "propagationPolicy".into(),
                format!(
                    "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            )],
        ));
    }
    let dry = body["dryRun"].as_array().is_some_and(|a| a.iter().any(|d| d == "All")) || req.dry_run();
    let grace = body["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| req.q("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    Ok(DeleteOptions {
        policy,
        grace,
        uid: body["preconditions"]["uid"].as_str().map(String::from),
        resource_version: body["preconditions"]["resourceVersion"].as_str().map(String::from),
        dry_run: dry,
    })
}

fn success(t: &Target, obj: &Value) -> Value {
    let mut details = json!({"name": meta::name(obj), "kind": t.info.plural, "uid": meta::uid(obj)});
    if !t.info.group.is_empty() {
        details["group"] = json!(t.info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Delete one object; returns the object still present (pending finalizers) or the removed one.
fn delete_one(state: &AppState, t: &Target, key: &Key, opts: &DeleteOptions) -> ApiResult<(Value, bool)> {
    let mut store = state.store();
    let obj = store
        .objects
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.info.group, &t.info.plural, &key.name))?;
    if let Some(uid) = &opts.uid
        && uid != meta::uid(&obj)
    {
        return Err(ApiError::conflict(
            &t.info.group,
            &t.info.plural,
            &key.name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(&obj)
            ),
        ));
    }
    if let Some(rv) = &opts.resource_version
        && rv != meta::resource_version(&obj)
    {
        return Err(ApiError::conflict(
            &t.info.group,
            &t.info.plural,
            &key.name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta::resource_version(&obj)
            ),
        ));
    }
    if opts.dry_run {
        return Ok((obj, false));
    }
    let extra = match opts.policy.as_deref() {
        Some("Foreground") => Some(FOREGROUND),
        Some("Orphan") => Some(ORPHAN),
        _ => None,
    };
    let result = lifecycle::delete_with_grace(&mut store, &state.ips, key, extra, opts.grace);
    lifecycle::settle(&mut store, &state.ips);
    match store.objects.get(key) {
        Some(still) => Ok((still.clone(), false)),
        None => Ok((result.unwrap_or(obj), true)),
    }
}

pub fn delete(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let opts = options(req)?;
    let (obj, gone) = delete_one(state, t, &key_of(t), &opts)?;
    if gone {
        return Ok(json_response(200, &success(t, &obj)));
    }
    Ok(json_response(200, &output(&t.info, &obj)))
}

pub fn delete_collection(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let opts = options(req)?;
    let filter = Filter::from_req(req)?;
    let (items, rv) = matching(state, t, &filter);
    let mut deleted = vec![];
    for (key, _) in items {
        match delete_one(state, t, &key, &opts) {
            Ok((obj, _)) => deleted.push(output(&t.info, &obj)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": t.info.list_kind(),
            "apiVersion": t.info.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": deleted,
        }),
    ))
}
