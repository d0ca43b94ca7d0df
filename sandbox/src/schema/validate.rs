//! Structural-schema validation of a custom object, with kube-openapi's
//! wording (`<path> in body should match '<re>'`) wrapped in `field.Error`s
//! the way apiextensions-apiserver converts them.

use serde_json::{Map, Value};

use super::error::{quote, render_number, render_value};
use super::{FieldError, FieldErrorReason};

/// Validate `obj` against a CRD version's `openAPIV3Schema`. `apiVersion`,
/// `kind` and `metadata` are skipped at the root (apiserver validates object
/// metadata separately) except for constraints the schema puts on
/// `metadata.name`. Each error names its field path.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(fields) = obj.as_object() else {
        check(schema, obj, "", &mut errors);
        return errors;
    };
    for (key, value) in fields {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let name_schema = &schema["properties"]["metadata"]["properties"]["name"];
                if let (true, Some(name)) = (name_schema.is_object(), value.get("name")) {
                    check(name_schema, name, "metadata.name", &mut errors);
                }
            }
            _ => {
                if let Some(s) = property_schema(schema, key) {
                    check(s, value, key, &mut errors);
                }
            }
        }
    }
    check_required(schema, fields, "", &mut errors);
    errors
}

/// The schema of property `key`: a declared property or `additionalProperties`.
fn property_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema["properties"]
        .get(key)
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The JSON type name kube-openapi reports for a value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    let actual = type_name(value);
    actual == expected || (expected == "number" && actual == "integer")
}

fn invalid(errors: &mut Vec<FieldError>, path: &str, value: &Value, detail: String) {
    errors.push(FieldError::new(
        path,
        FieldErrorReason::Invalid {
            value: render_value(value),
            detail,
        },
    ));
}

/// Validate one value against its schema; `path` is its field path.
fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let declared = schema["type"].as_str().unwrap_or("");
    let int_or_string = schema["x-kubernetes-int-or-string"] == Value::Bool(true);
    if value.is_null() && (schema["nullable"] == Value::Bool(true) || (declared.is_empty() && !int_or_string)) {
        return;
    }
    let type_ok = if int_or_string {
        matches!(type_name(value), "integer" | "string")
    } else {
        declared.is_empty() || type_matches(declared, value)
    };
    if !type_ok {
        let expected = if int_or_string { "integer,string" } else { declared };
        let actual = type_name(value);
        let detail = format!("{path} in body must be of type {expected}: {}", quote(actual));
        errors.push(FieldError::new(
            path,
            FieldErrorReason::TypeInvalid {
                value: quote(actual),
                detail,
            },
        ));
        return;
    }
    check_enum(schema, value, path, errors);
    match value {
        Value::String(s) => check_string(schema, s, value, path, errors),
        Value::Number(n) => check_number(schema, n, value, path, errors),
        Value::Array(items) => check_array(schema, items, value, path, errors),
        Value::Object(fields) => check_object(schema, fields, value, path, errors),
        _ => {}
    }
    check_composition(schema, value, path, errors);
}

fn check_enum(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(allowed) = schema["enum"].as_array() else {
        return;
    };
    if allowed.iter().any(|a| a == value) {
        return;
    }
    let supported = allowed
        .iter()
        .map(|a| match a {
            Value::String(s) => quote(s),
            other => quote(&other.to_string()),
        })
        .collect();
    errors.push(FieldError::new(
        path,
        FieldErrorReason::NotSupported {
            value: render_value(value),
            supported,
        },
    ));
}

fn check_string(schema: &Value, s: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let chars = s.chars().count() as u64;
    if let Some(max) = schema["maxLength"].as_u64()
        && chars > max
    {
        errors.push(FieldError::new(path, FieldErrorReason::TooLong { max }));
    }
    if let Some(min) = schema["minLength"].as_u64()
        && chars < min
    {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should be at least {min} chars long"),
        );
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => invalid(errors, path, value, format!("{path} in body should match '{pattern}'")),
            // A pattern the regex crate cannot compile is the CRD's fault; apiserver refuses such CRDs.
            Err(_) => {}
        }
    }
    if let Some(format) = schema["format"].as_str()
        && !format_ok(format, s)
    {
        let detail = format!("{path} in body must be of type {format}: {}", quote(s));
        errors.push(FieldError::new(
            path,
            FieldErrorReason::TypeInvalid {
                value: quote(s),
                detail,
            },
        ));
    }
}

/// The string formats apiextensions checks; unknown formats pass, as in kube.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok(),
        "byte" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        _ => true,
    }
}

fn check_number(schema: &Value, n: &serde_json::Number, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(x) = n.as_f64() else { return };
    let bound = |key: &str| {
        schema
            .get(key)
            .and_then(|b| b.as_number().map(|b| (b.as_f64(), render_number(b))))
    };
    let flag = |key: &str| schema[key] == Value::Bool(true);
    if let Some((Some(min), shown)) = bound("minimum") {
        if flag("exclusiveMinimum") && x <= min {
            invalid(
                errors,
                path,
                value,
                format!("{path} in body should be greater than {shown}"),
            );
        } else if x < min {
            invalid(
                errors,
                path,
                value,
                format!("{path} in body should be greater than or equal to {shown}"),
            );
        }
    }
    if let Some((Some(max), shown)) = bound("maximum") {
        if flag("exclusiveMaximum") && x >= max {
            invalid(
                errors,
                path,
                value,
                format!("{path} in body should be less than {shown}"),
            );
        } else if x > max {
            invalid(
                errors,
                path,
                value,
                format!("{path} in body should be less than or equal to {shown}"),
            );
        }
    }
    if let Some((Some(m), shown)) = bound("multipleOf")
        && m != 0.0
        && (x / m).fract().abs() > f64::EPSILON
    {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should be a multiple of {shown}"),
        );
    }
}

fn check_array(schema: &Value, items: &[Value], value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let len = items.len() as u64;
    if let Some(max) = schema["maxItems"].as_u64()
        && len > max
    {
        errors.push(FieldError::new(path, FieldErrorReason::TooMany { actual: len, max }));
    }
    if let Some(min) = schema["minItems"].as_u64()
        && len < min
    {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should have at least {min} items"),
        );
    }
    if schema["uniqueItems"] == Value::Bool(true) && items.iter().enumerate().any(|(i, a)| items[..i].contains(a)) {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body shouldn't contain duplicates"),
        );
    }
    check_list_type(schema, items, path, errors);
    if schema["items"].is_object() {
        for (i, item) in items.iter().enumerate() {
            check(&schema["items"], item, &format!("{path}[{i}]"), errors);
        }
    }
}

/// `x-kubernetes-list-type: set|map` forbid duplicate items / keys.
fn check_list_type(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let key_of = |item: &Value| -> Value {
        match schema["x-kubernetes-list-type"].as_str() {
            Some("map") => {
                let keys = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut k = Map::new();
                for key in keys.iter().filter_map(Value::as_str) {
                    if let Some(v) = item.get(key) {
                        k.insert(key.to_string(), v.clone());
                    }
                }
                Value::Object(k)
            }
            _ => item.clone(),
        }
    };
    if !matches!(schema["x-kubernetes-list-type"].as_str(), Some("map") | Some("set")) {
        return;
    }
    let keys: Vec<Value> = items.iter().map(key_of).collect();
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            errors.push(FieldError::new(
                format!("{path}[{i}]"),
                FieldErrorReason::Duplicate {
                    value: render_value(key),
                },
            ));
        }
    }
}

fn check_object(schema: &Value, fields: &Map<String, Value>, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    for (key, v) in fields {
        if let Some(s) = property_schema(schema, key) {
            check(s, v, &child(path, key), errors);
        }
    }
    check_required(schema, fields, path, errors);
    let len = fields.len() as u64;
    if let Some(max) = schema["maxProperties"].as_u64()
        && len > max
    {
        errors.push(FieldError::new(path, FieldErrorReason::TooMany { actual: len, max }));
    }
    if let Some(min) = schema["minProperties"].as_u64()
        && len < min
    {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should have at least {min} properties"),
        );
    }
    if schema["x-kubernetes-embedded-resource"] == Value::Bool(true) {
        for key in ["apiVersion", "kind"] {
            if fields.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                errors.push(FieldError::new(child(path, key), FieldErrorReason::Required));
            }
        }
    }
}

fn check_required(schema: &Value, fields: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    for name in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(name) {
            errors.push(FieldError::new(child(path, name), FieldErrorReason::Required));
        }
    }
}

/// allOf / anyOf / oneOf / not, as far as structural schemas use them (value
/// validations only; types and properties live in the main schema).
fn check_composition(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let branch_errors = |s: &Value| {
        let mut e = Vec::new();
        check(s, value, path, &mut e);
        e
    };
    for s in schema["allOf"].as_array().into_iter().flatten() {
        errors.extend(branch_errors(s));
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.is_empty()
        && any.iter().all(|s| !branch_errors(s).is_empty())
    {
        let detail = format!("{} must validate at least one schema (anyOf)", quote(path));
        invalid(errors, path, value, detail);
        errors.extend(any.first().map(branch_errors).unwrap_or_default());
    }
    if let Some(one) = schema["oneOf"].as_array()
        && !one.is_empty()
        && one.iter().filter(|s| branch_errors(s).is_empty()).count() != 1
    {
        let detail = format!("{} must validate one and only one schema (oneOf)", quote(path));
        invalid(errors, path, value, detail);
    }
    if schema["not"].is_object() && branch_errors(&schema["not"]).is_empty() {
        let detail = format!("{} must not validate the schema (not)", quote(path));
        invalid(errors, path, value, detail);
    }
}
