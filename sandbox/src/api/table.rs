//! `meta.k8s.io/v1` Table responses: CRD printer columns (via table.rs) or
//! the default Name/Age table kube-apiserver serves for kinds without columns.

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

/// kubectl's human duration (k8s.io/apimachinery/pkg/util/duration.HumanDuration).
pub fn human_age(created: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", m, s % 60).replace("m0s", "m"),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => format!("{}h{}m", h, m % 60).replace("h0m", "h"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 => format!("{}d{}h", d, h % 24).replace("d0h", "d"),
        _ if d < 730 => format!("{d}d"),
        _ => format!("{}y{}d", d / 365, d % 365).replace("y0d", "y"),
    }
}

pub fn row_object(obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
    }
}

pub fn render(info: &ResourceInfo, objects: &[Value], include: &str, rv: u64) -> Value {
    if !info.printer_columns.is_empty()
        && let Some(mut t) = crate::json_glue::custom_table(&info.printer_columns, objects, include)
    {
        t["metadata"]["resourceVersion"] = json!(rv.to_string());
        return t;
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            json!({
                "cells": [o["metadata"]["name"], human_age(o["metadata"]["creationTimestamp"].as_str().unwrap_or(""))],
                "object": row_object(o, include),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
        ],
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let ago = |s: i64| (chrono::Utc::now() - chrono::Duration::seconds(s)).to_rfc3339();
        assert_eq!(human_age(&ago(5)), "5s");
        assert_eq!(human_age(&ago(150)), "2m30s");
        assert_eq!(human_age(&ago(3 * 86400 + 3600)), "3d1h");
    }
}
