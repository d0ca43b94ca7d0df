//! Patches as kube-apiserver applies them: JSON merge patch (RFC 7386), JSON
//! patch (RFC 6902), strategic merge patch (built-in kinds only) and
//! server-side apply with managedFields.

pub mod apply;
mod error;
mod keys;
mod strategic;

pub use error::PatchError;
pub use strategic::{strategic_merge_patch, supports_strategic_merge};

use serde_json::Value;

/// RFC 7386 JSON merge patch (`application/merge-patch+json`): objects merge,
/// `null` deletes, everything else (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch (`application/json-patch+json`). A malformed patch is
/// a 400, one that cannot be applied (missing path, failed `test`) a 422 and
/// leaves `target` untouched. As in kube-apiserver (evanphx/json-patch), a
/// `test` for `null` passes when the path is missing; kube-rs's finalizer
/// helper relies on that.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::MalformedJsonPatch(e.to_string()))?;
    let mut doc = target.clone();
    for (index, op) in ops.0.iter().enumerate() {
        if let json_patch::PatchOperation::Test(test) = op
            && test.value.is_null()
            && doc.pointer(test.path.as_str()).is_none_or(Value::is_null)
        {
            continue;
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            let name = serde_json::to_value(op)
                .ok()
                .and_then(|v| v["op"].as_str().map(str::to_string))
                .unwrap_or_default();
            PatchError::JsonPatchFailed(format!(
                "jsonpatch {name} operation {index} does not apply: {} at {:?}",
                e.kind,
                e.path.as_str()
            ))
        })?;
    }
    *target = doc;
    Ok(())
}
