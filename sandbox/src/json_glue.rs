//! Adapter between the request handlers and the pure JSON machinery in
//! patch/, schema/ and table.rs: maps their errors to API `Status` errors.

use serde_json::Value;

use crate::error::ApiError;
use crate::patch::{self, PatchError, apply::TypeHints};
use crate::resources::ResourceInfo;

fn patch_error(e: PatchError) -> ApiError {
    ApiError::new(e.code(), e.reason(), e.to_string())
}

fn hints(info: &ResourceInfo) -> TypeHints<'_> {
    TypeHints {
        schema: info.schema.as_ref(),
        status_subresource: info.status_subresource,
    }
}

pub fn merge_patch(target: &mut Value, p: &Value) {
    patch::merge_patch(target, p);
}

pub fn json_patch(target: &mut Value, p: &Value) -> Result<(), ApiError> {
    patch::json_patch(target, &drop_null_tests_of_missing_paths(target, p)).map_err(patch_error)
}

/// ADAPTER (kube-apiserver uses evanphx/json-patch, where `test` of a missing
/// path against `null` succeeds; kube-rs's finalizer helper relies on it).
/// Such operations are dropped before the RFC 6902 patch runs.
fn drop_null_tests_of_missing_paths(target: &Value, p: &Value) -> Value {
    let Some(ops) = p.as_array() else { return p.clone() };
    Value::Array(
        ops.iter()
            .filter(|op| {
                let path = op["path"].as_str().unwrap_or("");
                !(op["op"] == "test" && op["value"].is_null() && target.pointer(path).is_none_or(Value::is_null))
            })
            .cloned()
            .collect(),
    )
}

pub fn strategic_merge_patch(target: &mut Value, p: &Value, info: &ResourceInfo) -> Result<(), ApiError> {
    patch::strategic_merge_patch(target, p, &info.api_version(), &info.kind).map_err(patch_error)
}

/// Server-side apply. Returns the new object with managedFields updated, or a 409 listing conflicts.
pub fn server_side_apply(
    info: &ResourceInfo,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    now: &str,
) -> Result<Value, ApiError> {
    patch::apply::server_side_apply(live, applied, manager, force, subresource, now, hints(info)).map_err(|c| {
        let causes = c.causes();
        let listed: Vec<String> = causes.iter().map(|(_, m, f)| format!("{m}: {f}")).collect();
        let mut e = ApiError::new(409, "Conflict", format!("Apply failed with {} conflict{}: {}", causes.len(), if causes.len() == 1 { "" } else { "s" }, listed.join(", ")));
        e.details = Some(serde_json::json!({
            "causes": causes.iter().map(|(t, m, f)| serde_json::json!({"reason": t, "message": m, "field": f})).collect::<Vec<_>>()
        }));
        e
    })
}

pub fn record_update(
    info: &ResourceInfo,
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    patch::apply::record_update(before, after, manager, subresource, now, hints(info));
}

/// Prune, default and validate a custom object; Err carries (causeType, field, message) triples.
pub fn admit_custom(schema: &Value, obj: &mut Value) -> Result<(), Vec<(String, String, String)>> {
    crate::schema::admit(schema, obj).map_err(|errs| errs.iter().map(|e| e.to_cause()).collect())
}

/// A Table for a custom resource's additionalPrinterColumns.
pub fn custom_table(columns: &[Value], objects: &[Value], include_object: &str) -> Option<Value> {
    let cols: Vec<crate::table::PrinterColumn> = columns
        .iter()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect();
    Some(crate::table::render_table(
        &cols,
        objects,
        include_object,
        &crate::meta::now(),
    ))
}
