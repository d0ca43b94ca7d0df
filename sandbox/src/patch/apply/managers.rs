//! `metadata.managedFields` entries: decoding, identity, ordering, encoding.

use serde_json::{Map, Value, json};

use super::fieldset::{Element, FieldSet};

pub const APPLY: &str = "Apply";
pub const UPDATE: &str = "Update";

/// One manager's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    /// Same manager as kube's `BuildManagerIdentifier`: appliers are one
    /// manager whatever apiVersion they apply; updaters are per apiVersion.
    pub fn same_identity(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == APPLY || self.api_version == other.api_version)
    }

    /// The manager as kube-apiserver names it in conflicts (`printManager`).
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// The entries recorded on `obj` (malformed ones are skipped).
pub fn decode(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Entry {
                manager: e["manager"].as_str()?.to_string(),
                operation: e["operation"].as_str().unwrap_or(UPDATE).to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().map(str::to_string),
                subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                set: FieldSet::from_fields_v1(&e["fieldsV1"]),
            })
        })
        .collect()
}

/// Store `entries` on `obj`, dropping empty ones, in kube's order
/// (operation, time, manager, apiVersion, subresource).
pub fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "fieldsType": "FieldsV1", "fieldsV1": e.set.to_fields_v1()});
            if let Some(t) = &e.time {
                v["time"] = json!(t);
            }
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let Some(root) = obj.as_object_mut() else { return };
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".to_string(), Value::Array(list));
    }
}

fn path(parts: &[&str]) -> Vec<Element> {
    parts.iter().map(|p| format!("f:{p}")).collect()
}

/// Restrict a set to what a manager can own through this endpoint: never
/// the server-maintained identity fields; on the main resource of a kind
/// with a status subresource not `status`; through `/status` only `status`.
pub fn owned_part(set: &FieldSet, subresource: Option<&str>, status_subresource: bool) -> FieldSet {
    let mut out = set.clone();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
        &["metadata", "deletionTimestamp"],
        &["metadata", "deletionGracePeriodSeconds"],
    ] {
        remove_subtree(&mut out, &path(p));
    }
    match subresource {
        Some("status") => {
            out.member = false;
            out.children.retain(|k, _| k == "f:status");
        }
        None if status_subresource => remove_subtree(&mut out, &path(&["status"])),
        _ => {}
    }
    out
}

fn remove_subtree(set: &mut FieldSet, path: &[Element]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = set;
    for p in parents {
        match node.children.get_mut(p) {
            Some(n) => node = n,
            None => return,
        }
    }
    node.children.remove(last);
}
