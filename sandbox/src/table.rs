//! `meta.k8s.io/v1` Table rendering as kube-apiserver does it: a CRD's
//! `additionalPrinterColumns` (apiextensions `tableconvertor`), or the
//! default Name / Created At table for kinds without columns.

mod jsonpath;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

pub use jsonpath::{JsonPath, JsonPathError};

/// `ObjectMeta.name`'s description, which apiserver uses for the Name column.
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
/// `ObjectMeta.creationTimestamp`'s description (the default table's second column).
const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One entry of a CRD version's `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub description: String,
    pub json_path: String,
    #[serde(default)]
    pub priority: i32,
}

impl PrinterColumn {
    /// Parse a CRD version's raw `additionalPrinterColumns` list.
    pub fn from_crd(columns: &[Value]) -> Result<Vec<PrinterColumn>, serde_json::Error> {
        columns.iter().map(|c| serde_json::from_value(c.clone())).collect()
    }
}

/// A Table of `objects` with a leading Name column then `columns`, as the
/// CRD table convertor renders it. Cells of missing values are `null`;
/// `date` columns are rendered as an age relative to `now` (RFC3339), like
/// apiserver's `ConvertToHumanReadableDateType`. `include_object` is the
/// request's `includeObject`: `None`, `Object`, or `Metadata` (the default).
/// Columns whose JSONPath does not parse render `null` (apiserver refuses
/// such CRDs at creation).
pub fn render_table(columns: &[PrinterColumn], objects: &[Value], include_object: &str, now: &str) -> Value {
    let now = DateTime::parse_from_rfc3339(now).map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
    let mut definitions = vec![name_column()];
    let mut paths = Vec::new();
    for c in columns {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        definitions.push(json!({"name": c.name, "type": c.type_, "format": c.format,
            "description": description, "priority": c.priority}));
        paths.push(JsonPath::parse(&c.json_path).ok());
    }
    let rows = objects
        .iter()
        .map(|obj| {
            let mut cells = vec![obj["metadata"]["name"].clone()];
            for (column, path) in columns.iter().zip(&paths) {
                let found = path.as_ref().and_then(|p| p.find(obj).into_iter().next());
                cells.push(found.map_or(Value::Null, |v| cell(&column.type_, v, now)));
            }
            json!({"cells": cells, "object": row_object(obj, include_object)})
        })
        .collect();
    table(definitions, rows)
}

/// The table kube-apiserver's default table convertor serves for kinds
/// without printer columns: Name and Created At (RFC3339, type `date`).
pub fn default_table(objects: &[Value], include_object: &str) -> Value {
    let created =
        json!({"name": "Created At", "type": "date", "format": "", "description": CREATED_DESCRIPTION, "priority": 0});
    let rows = objects
        .iter()
        .map(|obj| {
            let ts = obj["metadata"]["creationTimestamp"].as_str().unwrap_or("");
            let ts = DateTime::parse_from_rfc3339(ts)
                .map(|t| t.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_string());
            json!({"cells": [obj["metadata"]["name"], ts], "object": row_object(obj, include_object)})
        })
        .collect();
    table(vec![name_column(), created], rows)
}

fn name_column() -> Value {
    json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0})
}

fn table(definitions: Vec<Value>, rows: Vec<Value>) -> Value {
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": definitions, "rows": rows})
}

/// A row's `object` for `includeObject`.
fn row_object(obj: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
    }
}

/// A cell value for a column type (apiextensions `cellForJSONValue`; string
/// columns print any value the way JSONPath's printer does).
fn cell(column_type: &str, value: &Value, now: DateTime<Utc>) -> Value {
    match (column_type, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(_)) => value.clone(),
        ("string", other) => Value::String(other.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(_)) => value.clone(),
        ("date", Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Value::String(human_duration((now - t.with_timezone(&Utc)).num_seconds())),
            Err(_) => Value::String("<invalid>".to_string()),
        },
        _ => Value::Null,
    }
}

/// k8s.io/apimachinery `duration.HumanDuration` for a number of seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    let s = seconds.max(0);
    let (m, h) = (s / 60, s / 3600);
    let d = h / 24;
    let y = d / 365;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if y < 2 {
        format!("{d}d")
    } else if y < 8 {
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{y}y")
    }
}
