//! Server-side apply and managedFields bookkeeping (FieldsV1), after
//! sigs.k8s.io/structured-merge-diff as kube-apiserver uses it.

mod fieldset;
mod managers;
mod typed;

use std::fmt;

use serde_json::{Map, Value};

pub use fieldset::FieldSet;
use fieldset::render_path;
use managers::{APPLY, Entry, UPDATE, decode, encode, owned_part};
use typed::Typer;

/// What the merge needs to know about a type beyond the object itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeHints<'a> {
    /// The CRD version's `openAPIV3Schema` (for `x-kubernetes-list-type`,
    /// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`); `None` for
    /// built-ins, whose list keys are known from their kind and field path.
    pub schema: Option<&'a Value>,
    /// The kind has a `/status` subresource: writes to the main resource do
    /// not own `status`, writes to `/status` own only `status`.
    pub status_subresource: bool,
}

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as kube prints it: `"helm"`, or `"kubectl-edit" using apps/v1` for updaters.
    pub manager: String,
    /// The field path as structured-merge-diff prints it (`.spec.replicas`).
    pub field: String,
}

/// An apply refused because other managers own fields it would change
/// (409 Conflict; retry with `force=true` to take them over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflicts {
    pub conflicts: Vec<Conflict>,
}

impl ApplyConflicts {
    /// Status `details.causes`: `(type "FieldManagerConflict", message, field)`.
    pub fn causes(&self) -> Vec<(String, String, String)> {
        self.conflicts
            .iter()
            .map(|c| {
                (
                    "FieldManagerConflict".to_string(),
                    format!("conflict with {}", c.manager),
                    c.field.clone(),
                )
            })
            .collect()
    }
}

/// kube-apiserver's wording: `Apply failed with 1 conflict: conflict with
/// "helm": .spec.replicas`, or for several, grouped by manager:
/// `Apply failed with 2 conflicts: conflicts with "helm":\n- .a\n- .b`.
impl fmt::Display for ApplyConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.conflicts.as_slice() {
            return write!(
                f,
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager, only.field
            );
        }
        write!(f, "Apply failed with {} conflicts: ", self.conflicts.len())?;
        let mut lines = Vec::new();
        let mut current: Option<&str> = None;
        for c in &self.conflicts {
            if current != Some(c.manager.as_str()) {
                lines.push(format!("conflicts with {}:", c.manager));
                current = Some(&c.manager);
            }
            lines.push(format!("- {}", c.field));
        }
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ApplyConflicts {}

/// Server-side apply `applied` over `live` (`None`: create on apply) for
/// `manager` (the request's `fieldManager`), through `subresource`
/// (`Some("status")` for `/status`). `now` is the RFC3339 time recorded.
///
/// Returns the new object with `metadata.managedFields` updated: fields the
/// manager applies are merged in and owned by it (shared with managers that
/// set the same value), fields it applied before and no longer applies are
/// removed unless another manager owns them, and fields owned by others
/// whose value would change are conflicts, an error unless `force`, in
/// which case their ownership moves to `manager`.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    now: &str,
    hints: TypeHints<'_>,
) -> Result<Value, ApplyConflicts> {
    let kind = applied["kind"]
        .as_str()
        .or_else(|| live.and_then(|l| l["kind"].as_str()))
        .unwrap_or_default();
    let api_version = applied["apiVersion"].as_str().unwrap_or_default().to_string();
    let typer = Typer::new(kind, hints);
    let config = applicable_config(applied, subresource, hints.status_subresource);
    let live_obj = live.map_or_else(|| Value::Object(Map::new()), without_managed_fields);
    let mut entries = live.map(decode).unwrap_or_default();
    if let Some(live) = live
        && entries.is_empty()
    {
        // Objects written before any manager was recorded belong to "before-first-apply".
        entries.push(Entry {
            manager: "before-first-apply".to_string(),
            operation: UPDATE.to_string(),
            api_version: live["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: Some(now.to_string()),
            subresource: String::new(),
            set: owned_part(&typer.field_set(&live_obj), None, hints.status_subresource),
        });
    }
    let me = Entry {
        manager: manager.to_string(),
        operation: APPLY.to_string(),
        api_version,
        time: Some(now.to_string()),
        subresource: subresource.unwrap_or_default().to_string(),
        set: owned_part(&typer.field_set(&config), subresource, hints.status_subresource),
    };
    let previous = entries
        .iter()
        .position(|e| e.same_identity(&me))
        .map(|i| entries.remove(i));

    let mut merged = typer.merge(&live_obj, &config);
    if let Some(previous) = &previous {
        let owned_by_anyone = entries.iter().fold(me.set.clone(), |acc, e| acc.union(&e.set));
        for path in previous.set.difference(&me.set).members() {
            if !owned_by_anyone.has_within(&path) && !is_item_key_field(&path) {
                typer.remove(&mut merged, &path);
            }
        }
    }

    let comparison = typer.compare(Some(&live_obj), Some(&merged));
    let changed = comparison.modified.union(&comparison.added);
    let mut conflicts = Vec::new();
    for e in &entries {
        for path in e.set.intersection(&changed).members() {
            conflicts.push(Conflict {
                manager: e.display(),
                field: render_path(&path),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        return Err(ApplyConflicts { conflicts });
    }
    for e in &mut entries {
        e.set = e.set.difference(&changed).difference(&comparison.removed);
    }
    let object_changed = merged != live_obj;
    let mut me = me;
    if let Some(previous) = previous
        && !object_changed
        && previous.set.same_members(&me.set)
    {
        me.time = previous.time;
    }
    entries.push(me);
    encode(&mut merged, entries);
    Ok(merged)
}

/// A map-list item's key field (`k:{"name":"x"}` then `f:name`): it goes
/// with the item, which another manager may still own parts of.
fn is_item_key_field(path: &[fieldset::Element]) -> bool {
    let [.., parent, last] = path else { return false };
    let (Some(key), Some(field)) = (parent.strip_prefix("k:"), last.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|k| k.contains_key(field))
}

/// The part of an apply body that is merged: never `managedFields`; on the
/// main resource of a kind with a status subresource not `status`; through
/// `/status` only `status` (plus the identity needed to find the object).
fn applicable_config(applied: &Value, subresource: Option<&str>, status_subresource: bool) -> Value {
    let mut config = without_managed_fields(applied);
    let Some(map) = config.as_object_mut() else {
        return config;
    };
    match subresource {
        Some("status") => map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status")),
        None if status_subresource => {
            map.remove("status");
        }
        _ => {}
    }
    config
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

/// Record a non-apply write (create, update, merge/JSON/strategic patch) by
/// `manager` through `subresource`: an `Update` entry (per manager and
/// apiVersion) owning the fields that changed from `before` (`None` on
/// create) to `after`, and those fields taken away from every other
/// manager, as kube-apiserver's field manager does. `after` is edited in
/// place. A `managedFields` of `[{}]` in `after` resets ownership first; a
/// different non-empty list sent by the client replaces the recorded one;
/// an absent or empty list keeps what `before` had.
pub fn record_update(
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
    hints: TypeHints<'_>,
) {
    let kind = after["kind"]
        .as_str()
        .or_else(|| before.and_then(|b| b["kind"].as_str()))
        .unwrap_or_default();
    let typer = Typer::new(kind, hints);
    let sent = after["metadata"]["managedFields"].as_array().cloned();
    let recorded = before.map(decode).unwrap_or_default();
    let mut entries = match sent.as_deref() {
        Some([only]) if only.as_object().is_some_and(Map::is_empty) => Vec::new(),
        Some(list)
            if !list.is_empty()
                && before.is_none_or(|b| b["metadata"]["managedFields"].as_array() != Some(&list.to_vec())) =>
        {
            decode(after)
        }
        _ => recorded,
    };
    let old = before.map_or_else(|| Value::Object(Map::new()), without_managed_fields);
    let new = without_managed_fields(after);
    let comparison = typer.compare(Some(&old), Some(&new));
    let changed = comparison.modified.union(&comparison.added);
    let me_template = Entry {
        manager: manager.to_string(),
        operation: UPDATE.to_string(),
        api_version: after["apiVersion"].as_str().unwrap_or_default().to_string(),
        time: Some(now.to_string()),
        subresource: subresource.unwrap_or_default().to_string(),
        set: FieldSet::default(),
    };
    let mine = entries
        .iter()
        .position(|e| e.same_identity(&me_template))
        .map(|i| entries.remove(i));
    for e in &mut entries {
        e.set = e.set.difference(&changed).difference(&comparison.removed);
    }
    let previous_set = mine.as_ref().map(|m| m.set.clone()).unwrap_or_default();
    let set = owned_part(
        &previous_set.difference(&comparison.removed).union(&changed),
        subresource,
        hints.status_subresource,
    );
    let time = match &mine {
        Some(m) if m.set.same_members(&set) => m.time.clone(),
        _ => Some(now.to_string()),
    };
    entries.push(Entry {
        set,
        time,
        ..me_template
    });
    encode(after, entries);
}

#[cfg(test)]
mod tests;
