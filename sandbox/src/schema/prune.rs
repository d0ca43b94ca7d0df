//! Pruning of fields the structural schema does not declare, after
//! apiextensions-apiserver's `pruning.Prune`.

use serde_json::Value;

fn is_true(schema: &Value, key: &str) -> bool {
    schema[key] == Value::Bool(true)
}

/// Drop fields the schema does not declare. `apiVersion`, `kind` and
/// `metadata` stay at the root and in `x-kubernetes-embedded-resource`
/// objects; `x-kubernetes-preserve-unknown-fields: true` keeps unknown
/// fields (declared ones below it are still pruned recursively).
pub fn prune(schema: &Value, obj: &mut Value) {
    prune_value(Some(schema), obj, true);
}

fn prune_value(schema: Option<&Value>, value: &mut Value, resource_root: bool) {
    if let Some(s) = schema
        && is_true(s, "x-kubernetes-preserve-unknown-fields")
    {
        prune_declared_only(s, value, resource_root);
        return;
    }
    match value {
        Value::Object(fields) => {
            let Some(s) = schema else {
                fields.clear();
                return;
            };
            let keeps_meta = resource_root || is_true(s, "x-kubernetes-embedded-resource");
            fields.retain(|key, _| {
                (keeps_meta && is_meta(key)) || s["properties"].get(key).is_some() || additional(s).is_some()
            });
            for (key, v) in fields.iter_mut() {
                if keeps_meta && is_meta(key) {
                    continue;
                }
                prune_value(s["properties"].get(key).or(additional(s)), v, false);
            }
        }
        Value::Array(items) => {
            let item_schema = schema.map(|s| &s["items"]).filter(|i| i.is_object());
            for v in items.iter_mut() {
                prune_value(item_schema, v, false);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, declared
/// fields are pruned by their own schema.
fn prune_declared_only(s: &Value, value: &mut Value, resource_root: bool) {
    match value {
        Value::Object(fields) => {
            let keeps_meta = resource_root || is_true(s, "x-kubernetes-embedded-resource");
            for (key, v) in fields.iter_mut() {
                if keeps_meta && is_meta(key) {
                    continue;
                }
                if let Some(prop) = s["properties"].get(key).or(additional(s)) {
                    prune_value(Some(prop), v, false);
                }
            }
        }
        Value::Array(items) if s["items"].is_object() => {
            for v in items.iter_mut() {
                prune_declared_only(&s["items"], v, false);
            }
        }
        _ => {}
    }
}

fn is_meta(key: &str) -> bool {
    matches!(key, "apiVersion" | "kind" | "metadata")
}

fn additional(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}
