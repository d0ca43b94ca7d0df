//! create and update (PUT), and the write path shared with patch and apply:
//! metadata the server owns, status subresource rules, generation, CR schema
//! admission, no-op detection, finalizer completion.

use axum::response::Response;
use serde_json::{Value, json};

use super::read::{key_of, output};
use super::{AppState, Req, Target, json_response};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::store::{EventType, Key, Store};
use crate::{json_glue, kinds, lifecycle, meta};

/// How a write was made (who, through which subresource, already tracked by apply?).
pub struct WriteCtx<'a> {
    pub manager: String,
    pub sub: Option<&'a str>,
    pub dry_run: bool,
    /// Server-side apply already recorded managedFields.
    pub applied: bool,
}

pub fn parse_body(req: &Req) -> ApiResult<Value> {
    let v = req.body_json()?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    Ok(v)
}

fn check_type(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let av = info.api_version();
    match obj["apiVersion"].as_str() {
        Some(a) if a != av => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({a}) does not match the expected API version ({av})"
            )));
        }
        _ => obj["apiVersion"] = json!(av),
    }
    match obj["kind"].as_str() {
        Some(k) if k != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => obj["kind"] = json!(info.kind),
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    Ok(())
}

fn admit_custom(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let Some(schema) = &info.schema else { return Ok(()) };
    json_glue::admit_custom(schema, obj)
        .map_err(|causes| ApiError::invalid(&info.group, &info.kind, meta::name(obj), causes))
}

/// Store a new object (create, apply-create, create-on-update).
pub fn do_create(
    state: &AppState,
    store: &mut Store,
    info: &ResourceInfo,
    ns: Option<&str>,
    mut obj: Value,
    ctx: &WriteCtx,
) -> ApiResult<Value> {
    check_type(info, &mut obj)?;
    if info.namespaced {
        let body_ns = meta::namespace(&obj).to_string();
        let ns = match (ns, body_ns.as_str()) {
            (Some(u), b) if !b.is_empty() && b != u => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(u), _) => u.to_string(),
            (None, _) => return Err(ApiError::bad_request("namespace is required for namespaced resources")),
        };
        obj["metadata"]["namespace"] = json!(ns);
        let ns_key = Key {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: ns.clone(),
        };
        match store.objects.get(&ns_key) {
            None => return Err(ApiError::not_found("", "namespaces", &ns)),
            Some(n) if meta::is_deleting(n) => {
                return Err(ApiError::forbidden(
                    &info.group,
                    &info.plural,
                    meta::name(&obj),
                    &format!("unable to create new content in namespace {ns} because it is being terminated"),
                ));
            }
            _ => {}
        }
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    if meta::name(&obj).is_empty() {
        match obj["metadata"]["generateName"].as_str() {
            Some(g) if !g.is_empty() => obj["metadata"]["name"] = json!(format!("{g}{}", meta::random_suffix())),
            _ => {
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    "",
                    vec![(
                        "FieldValueRequired".into(),
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        }
    }
    if !meta::resource_version(&obj).is_empty() && !ctx.applied {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    kinds::validate_meta(info, &obj)?;
    let key = Key::new(info, meta::namespace(&obj), meta::name(&obj));
    if store.objects.contains_key(&key) {
        return Err(ApiError::already_exists(&info.group, &info.plural, &key.name));
    }
    let now = meta::now();
    let m = obj["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(f);
    }
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now));
    if info.tracks_generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    kinds::reset_status_on_create(info, &mut obj);
    if !info.is_custom {
        crate::admission::on_create(store, &info.group, &info.plural, &mut obj)?;
    }
    admit_custom(info, &mut obj)?;
    if ctx.dry_run {
        return Ok(obj);
    }
    kinds::on_create(info, &mut obj, &state.ips)?;
    if !ctx.applied {
        json_glue::record_update(info, None, &mut obj, &ctx.manager, None, &now);
    }
    let stored = store.put(key, obj, EventType::Added, None);
    if kinds::is_namespace(info) {
        crate::admission::namespace_defaults(store, meta::name(&stored), &state.ca_pem);
    }
    lifecycle::settle(store, &state.ips);
    Ok(stored)
}

/// Store a changed object (update, patch, apply). `new` is the full object the client wants.
pub fn do_update(
    state: &AppState,
    store: &mut Store,
    info: &ResourceInfo,
    key: &Key,
    mut new: Value,
    ctx: &WriteCtx,
) -> ApiResult<Value> {
    let old = store
        .objects
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, &key.name))?;
    check_type(info, &mut new)?;
    let new_rv = meta::resource_version(&new);
    if !new_rv.is_empty() && new_rv != meta::resource_version(&old) {
        return Err(ApiError::stale(&info.group, &info.plural, &key.name));
    }
    if meta::name(&new) != key.name && !meta::name(&new).is_empty() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            meta::name(&new),
            key.name
        )));
    }
    let mut obj = if ctx.sub == Some("status") {
        // Only status changes through /status (managedFields follow the writer).
        let mut o = old.clone();
        o["status"] = new["status"].clone();
        if new["status"].is_null()
            && let Some(m) = o.as_object_mut()
        {
            m.remove("status");
        }
        o["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        o
    } else {
        if info.status_subresource {
            new["status"] = old["status"].clone();
            if old["status"].is_null()
                && let Some(m) = new.as_object_mut()
            {
                m.remove("status");
            }
        }
        if ctx.sub == Some("finalize") {
            // namespaces/finalize: only spec.finalizers change.
            let mut o = old.clone();
            o["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
            o
        } else {
            new
        }
    };
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old["metadata"].get(f) {
            Some(v) => obj["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
    if meta::is_deleting(&old) {
        let before = meta::finalizers(&old);
        if meta::finalizers(&obj).iter().any(|f| !before.contains(f)) {
            return Err(ApiError::forbidden(
                &info.group,
                &info.plural,
                &key.name,
                "no new finalizers can be added if the object is being deleted",
            ));
        }
    }
    kinds::validate_meta(info, &obj)?;
    admit_custom(info, &mut obj)?;
    kinds::on_update(info, &old, &mut obj, &state.ips)?;
    if info.tracks_generation && meta::spec_part(&old) != meta::spec_part(&obj) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
        obj["metadata"]["generation"] = json!(g + 1);
    }
    obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if meta::comparable(&obj) == meta::comparable(&old) {
        return Ok(old);
    }
    if ctx.dry_run {
        return Ok(obj);
    }
    if !ctx.applied {
        json_glue::record_update(info, Some(&old), &mut obj, &ctx.manager, ctx.sub, &meta::now());
    }
    let stored = store.put(key.clone(), obj, EventType::Modified, Some(old));
    lifecycle::settle(store, &state.ips);
    // The object may be gone now (last finalizer removed): return what was written.
    Ok(store.objects.get(key).cloned().unwrap_or(stored))
}

pub fn create(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let obj = parse_body(req)?;
    let ctx = WriteCtx {
        manager: req.manager(),
        sub: None,
        dry_run: req.dry_run(),
        applied: false,
    };
    let mut store = state.store();
    let stored = do_create(state, &mut store, &t.info, t.namespace.as_deref(), obj, &ctx)?;
    Ok(json_response(201, &output(&t.info, &stored)))
}

pub fn update(state: &AppState, req: &Req, t: &Target) -> ApiResult<Response> {
    let obj = parse_body(req)?;
    let ctx = WriteCtx {
        manager: req.manager(),
        sub: t.sub.as_deref(),
        dry_run: req.dry_run(),
        applied: false,
    };
    let key = key_of(t);
    let mut store = state.store();
    if !store.objects.contains_key(&key) && t.info.create_on_update && t.sub.is_none() {
        let stored = do_create(state, &mut store, &t.info, t.namespace.as_deref(), obj, &ctx)?;
        return Ok(json_response(201, &output(&t.info, &stored)));
    }
    let stored = do_update(state, &mut store, &t.info, &key, obj, &ctx)?;
    Ok(json_response(200, &output(&t.info, &stored)))
}
