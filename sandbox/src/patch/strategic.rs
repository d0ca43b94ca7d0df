//! Strategic merge patch (`application/strategic-merge-patch+json`).

use serde_json::Value;

use super::PatchError;

/// Whether the API group serves strategic merge patch: built-in groups do,
/// custom resources do not (kube-apiserver answers 415 Unsupported Media Type).
pub fn supports_strategic_merge(group: &str) -> bool {
    let _ = group;
    true
}

/// Apply a strategic merge patch to a built-in object of `api_version`/`kind`.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, api_version: &str, kind: &str) -> Result<(), PatchError> {
    let _ = (api_version, kind);
    json_patch::merge(target, patch);
    Ok(())
}
