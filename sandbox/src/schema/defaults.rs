//! Structural defaulting, after apiextensions-apiserver's `structuraldefaulting`.

use serde_json::Value;

fn is_true(schema: &Value, key: &str) -> bool {
    schema[key] == Value::Bool(true)
}

/// A `null` where the schema does not allow one (apiserver drops or defaults it).
fn non_nullable_null(value: &Value, schema: &Value) -> bool {
    value.is_null() && !is_true(schema, "nullable")
}

/// Fill in `default` values recursively, as kube-apiserver does on every
/// read and write: missing properties (and non-nullable `null`s) with a
/// default get a copy of it, inside nested objects, array items and
/// `additionalProperties` values too. Non-nullable `null`s without a default
/// are dropped first, as apiserver's `PruneNonNullableNullsWithoutDefaults` does.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    drop_nulls_without_default(schema, obj);
    default_value(schema, obj);
}

fn default_value(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if let Some(props) = schema["properties"].as_object() {
                for (key, prop) in props {
                    let Some(default) = prop.get("default") else { continue };
                    let missing = fields.get(key).is_none_or(|v| non_nullable_null(v, prop));
                    if missing {
                        fields.insert(key.clone(), default.clone());
                    }
                }
            }
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, v) in fields.iter_mut() {
                if let Some(prop) = schema["properties"].get(key) {
                    default_value(prop, v);
                } else if let Some(add) = additional {
                    if let Some(default) = add.get("default")
                        && non_nullable_null(v, add)
                    {
                        *v = default.clone();
                    }
                    default_value(add, v);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = &schema["items"];
            if !item_schema.is_object() {
                return;
            }
            for v in items.iter_mut() {
                if let Some(default) = item_schema.get("default")
                    && non_nullable_null(v, item_schema)
                {
                    *v = default.clone();
                }
                default_value(item_schema, v);
            }
        }
        _ => {}
    }
}

fn drop_nulls_without_default(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            fields.retain(|key, v| {
                let Some(prop) = schema["properties"].get(key).or(additional) else {
                    return true;
                };
                !(non_nullable_null(v, prop) && prop.get("default").is_none())
            });
            for (key, v) in fields.iter_mut() {
                if let Some(prop) = schema["properties"].get(key).or(additional) {
                    drop_nulls_without_default(prop, v);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for v in items.iter_mut() {
                drop_nulls_without_default(&schema["items"], v);
            }
        }
        _ => {}
    }
}
