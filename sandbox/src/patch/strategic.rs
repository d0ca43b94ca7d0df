//! Strategic merge patch (`application/strategic-merge-patch+json`) for
//! built-in kinds, after k8s.io/apimachinery/pkg/util/strategicpatch:
//! lists with a merge key merge item by item, `$patch` (replace / delete /
//! merge), `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>` directives, `null` deletes a key.

use serde_json::{Map, Value};

use super::PatchError;
use super::keys::{ListKind, builtin_list_kind};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVES: &str = "$deleteFromPrimitiveList/";

/// Whether the API group serves strategic merge patch: the built-in groups
/// do; custom resources (any group with a dot that is not a `*.k8s.io`
/// built-in) do not, and kube-apiserver answers 415 Unsupported Media Type.
pub fn supports_strategic_merge(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io") || group.ends_with(".kubernetes.io")
}

/// Apply a strategic merge patch to a built-in object of `api_version`/`kind`.
/// Lists merge by their `patchMergeKey` (containers by name, ports by
/// containerPort or port, env by name...), lists without one are replaced.
pub fn strategic_merge_patch(
    target: &mut Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
) -> Result<(), PatchError> {
    let _ = api_version;
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadStrategicPatch(
            "invalid JSON document: a strategic merge patch must be an object".into(),
        ));
    };
    let merger = Merger { kind };
    let original = match target.take() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    *target = Value::Object(merger.merge_map(original, patch, &mut Vec::new())?);
    Ok(())
}

struct Merger<'a> {
    kind: &'a str,
}

impl Merger<'_> {
    fn list_kind(&self, path: &[String]) -> ListKind {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        builtin_list_kind(self.kind, &path)
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Map<String, Value>, PatchError> {
        match patch.get(DIRECTIVE) {
            None => {}
            Some(Value::String(d)) if d == "replace" => {
                let mut replaced = patch.clone();
                replaced.remove(DIRECTIVE);
                return self.merge_map(Map::new(), &replaced, path);
            }
            Some(Value::String(d)) if d == "delete" => return Ok(Map::new()),
            Some(other) => {
                return Err(PatchError::BadStrategicPatch(format!(
                    "unknown patch type: {other} in map: {}",
                    Value::Object(patch.clone())
                )));
            }
        }
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let keep: Vec<&str> = retain
                .as_array()
                .ok_or_else(|| PatchError::BadStrategicPatch("invalid patch: $retainKeys must be a list".into()))?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if let Some(stray) = patch
                .keys()
                .find(|k| !k.starts_with('$') && !keep.contains(&k.as_str()))
            {
                return Err(PatchError::StrategicPatchFailed(format!(
                    "the patch has key {stray:?} that is not in $retainKeys"
                )));
            }
            original.retain(|k, _| keep.contains(&k.as_str()));
        }
        for (key, values) in patch
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(DELETE_PRIMITIVES).map(|f| (f, v)))
        {
            let Value::Array(remove) = values else {
                return Err(PatchError::BadStrategicPatch(format!(
                    "invalid patch: {DELETE_PRIMITIVES}{key} must be a list"
                )));
            };
            if let Some(Value::Array(items)) = original.get_mut(key) {
                items.retain(|item| !remove.contains(item));
            }
        }
        let ordered_originals: Vec<(String, Vec<Value>)> = patch
            .keys()
            .filter_map(|k| k.strip_prefix(SET_ORDER))
            .map(|f| {
                (
                    f.to_string(),
                    original.get(f).and_then(Value::as_array).cloned().unwrap_or_default(),
                )
            })
            .collect();
        for (key, value) in patch {
            if key.starts_with('$') {
                continue;
            }
            if value.is_null() {
                original.remove(key);
                continue;
            }
            path.push(key.clone());
            let merged = self.merge_value(original.remove(key), value, path)?;
            path.pop();
            if let Some(v) = merged {
                original.insert(key.clone(), v);
            }
        }
        for (key, server_order) in ordered_originals {
            let Some(Value::Array(order)) = patch.get(&format!("{SET_ORDER}{key}")) else {
                return Err(PatchError::BadStrategicPatch(format!(
                    "invalid patch: {SET_ORDER}{key} must be a list"
                )));
            };
            path.push(key.clone());
            let kind = self.list_kind(path);
            path.pop();
            if let Some(Value::Array(items)) = original.get_mut(&key) {
                *items = normalize_order(std::mem::take(items), order, &server_order, kind.merge_key());
            }
        }
        Ok(original)
    }

    /// The merged value of one field; `None` removes it.
    fn merge_value(
        &self,
        original: Option<Value>,
        patch: &Value,
        path: &mut Vec<String>,
    ) -> Result<Option<Value>, PatchError> {
        match (original, patch) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                let deleted = p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
                let merged = self.merge_map(o, p, path)?;
                Ok((!deleted).then_some(Value::Object(merged)))
            }
            (None, Value::Object(p)) => {
                let deleted = p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
                let merged = self.merge_map(Map::new(), p, path)?;
                Ok((!deleted).then_some(Value::Object(merged)))
            }
            (original, Value::Array(p)) => {
                let o = match original {
                    Some(Value::Array(o)) => o,
                    _ => Vec::new(),
                };
                Ok(Some(Value::Array(self.merge_list(o, p, path)?)))
            }
            (_, scalar) => Ok(Some(scalar.clone())),
        }
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        let directive = |v: &Value| v.get(DIRECTIVE).and_then(Value::as_str).map(str::to_string);
        // `[{"$patch": "replace"}, ...]` replaces the list with the other items.
        if patch
            .iter()
            .any(|v| directive(v).as_deref() == Some("replace") && v.as_object().is_some_and(|m| m.len() == 1))
        {
            let rest: Vec<Value> = patch.iter().filter(|v| directive(v).is_none()).cloned().collect();
            return self.merge_list(Vec::new(), &rest, path);
        }
        let kind = self.list_kind(path);
        match kind {
            ListKind::Atomic => Ok(patch.to_vec()),
            ListKind::Set => {
                let mut out = original.clone();
                for item in patch {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Ok(normalize_order(out, patch, &original, None))
            }
            ListKind::Map(_) => {
                let key = kind.merge_key().unwrap_or_default().to_string();
                let mut out = original.clone();
                for item in patch {
                    let Value::Object(p) = item else {
                        return Err(PatchError::BadStrategicPatch(format!(
                            "invalid patch: list item {item} must be an object"
                        )));
                    };
                    let id = p.get(&key).ok_or_else(|| {
                        PatchError::BadStrategicPatch(format!("map: {item} does not contain declared merge key: {key}"))
                    })?;
                    let at = out.iter().position(|o| o.get(&key) == Some(id));
                    match (directive(item).as_deref(), at) {
                        (Some("delete"), Some(i)) => {
                            out.remove(i);
                        }
                        (Some("delete"), None) => {}
                        (_, Some(i)) => {
                            let existing = match out[i].take() {
                                Value::Object(m) => m,
                                _ => Map::new(),
                            };
                            out[i] = Value::Object(self.merge_map(existing, &strip_merge(p), path)?);
                        }
                        (_, None) => out.push(Value::Object(self.merge_map(Map::new(), &strip_merge(p), path)?)),
                    }
                }
                let order: Vec<Value> = patch
                    .iter()
                    .filter(|v| directive(v).as_deref() != Some("delete"))
                    .cloned()
                    .collect();
                Ok(normalize_order(out, &order, &original, Some(&key)))
            }
        }
    }
}

/// `$patch: merge` on a list item is the default; drop it before merging.
fn strip_merge(item: &Map<String, Value>) -> Map<String, Value> {
    let mut item = item.clone();
    if item.get(DIRECTIVE).and_then(Value::as_str) == Some("merge") {
        item.remove(DIRECTIVE);
    }
    item
}

/// kube's `normalizeElementOrder`: items named in `order` (the patch list or
/// its `$setElementOrder`) come in that order; items only on the server keep
/// their server order and are slotted in before the first patch item they
/// preceded on the server.
fn normalize_order(merged: Vec<Value>, order: &[Value], server: &[Value], key: Option<&str>) -> Vec<Value> {
    let identity = |item: &Value| -> Value {
        match key {
            Some(k) => item.get(k).cloned().unwrap_or(Value::Null),
            None => item.clone(),
        }
    };
    let position = |list: &[Value], item: &Value| list.iter().position(|o| identity(o) == identity(item));
    let (mut patch_items, mut server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|item| position(order, item).is_some());
    patch_items.sort_by_key(|item| position(order, item));
    server_only.sort_by_key(|item| position(server, item));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let (mut left, mut right) = (server_only.into_iter().peekable(), patch_items.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!((position(server, l), position(server, r)), (Some(a), Some(b)) if a < b),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}
