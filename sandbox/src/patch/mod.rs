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
/// a 400, one that cannot be applied (missing path, failed `test`) a 422.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::MalformedJsonPatch(e.to_string()))?;
    json_patch::patch(target, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))
}
