//! Table rendering of CRD printer columns and the default table.

use kube_sandbox::table::{JsonPath, PrinterColumn, default_table, human_duration, render_table};
use serde_json::{Value, json};

fn columns() -> Vec<PrinterColumn> {
    let raw = json!([
        {"name": "BUCKET", "type": "string", "jsonPath": ".spec.s3.bucket"},
        {"name": "AVAILABLE", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Available\")].status"},
        {"name": "REPLICAS", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1, "description": "How many."},
        {"name": "FIRST", "type": "string", "jsonPath": ".spec.members[0].name"},
        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    PrinterColumn::from_crd(raw.as_array().unwrap()).unwrap()
}

fn store(name: &str, status: Value) -> Value {
    json!({"apiVersion": "lifeboat.dev/v1alpha1", "kind": "BackupStore",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": "2026-11-24T12:00:00Z"},
        "spec": {"s3": {"bucket": "dumps"}, "replicas": 3, "members": [{"name": "m0"}, {"name": "m1"}]},
        "status": status})
}

fn now() -> &'static str {
    "2026-11-24T12:05:30Z"
}

#[test]
fn columns_follow_a_leading_name_column() {
    let t = render_table(&columns(), &[], "Metadata", now());
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "BUCKET", "AVAILABLE", "REPLICAS", "FIRST", "AGE"]);
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(
        t["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .spec.s3.bucket"
    );
    assert_eq!(t["columnDefinitions"][3]["description"], "How many.");
    assert_eq!(t["columnDefinitions"][3]["priority"], 1);
    assert_eq!(t["rows"], json!([]));
}

#[test]
fn cells_evaluate_paths_filters_and_indexes() {
    let conditions =
        json!({"conditions": [{"type": "Ready", "status": "False"}, {"type": "Available", "status": "True"}]});
    let t = render_table(&columns(), &[store("a", conditions)], "None", now());
    assert_eq!(t["rows"][0]["cells"], json!(["a", "dumps", "True", 3, "m0", "5m30s"]));
    assert_eq!(t["rows"][0]["object"], Value::Null);
}

#[test]
fn missing_values_are_null_cells() {
    let t = render_table(&columns(), &[store("b", json!({}))], "Metadata", now());
    assert_eq!(t["rows"][0]["cells"][2], Value::Null);
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "b");
    assert!(t["rows"][0]["object"].get("spec").is_none());
}

#[test]
fn include_object_returns_the_full_object() {
    let obj = store("c", json!({}));
    let t = render_table(&columns(), std::slice::from_ref(&obj), "Object", now());
    assert_eq!(t["rows"][0]["object"], obj);
}

#[test]
fn default_table_has_name_and_created_at() {
    let t = default_table(&[store("d", json!({}))], "Metadata");
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Created At"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["d", "2026-11-24T12:00:00Z"]));
}

#[test]
fn ages_read_like_kubectl() {
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(150), "2m30s");
    assert_eq!(human_duration(3600 * 5 + 60 * 7), "5h7m");
    assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    assert_eq!(human_duration(400 * 86400), "400d");
    assert_eq!(human_duration(-10), "<invalid>");
}

#[test]
fn jsonpath_subset() {
    let doc = json!({"metadata": {"labels": {"app.kubernetes.io/name": "db"}},
        "items": [{"n": 1, "k": "a"}, {"n": 5, "k": "b"}]});
    let find = |p: &str| {
        JsonPath::parse(p)
            .unwrap()
            .find(&doc)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(find("{.metadata.labels.app\\.kubernetes\\.io/name}"), [json!("db")]);
    assert_eq!(find(".metadata.labels['app.kubernetes.io/name']"), [json!("db")]);
    assert_eq!(find(".items[-1].k"), [json!("b")]);
    assert_eq!(find(".items[*].n"), [json!(1), json!(5)]);
    assert_eq!(find(".items[?(@.n > 2)].k"), [json!("b")]);
    assert_eq!(find(".items[?(@.k)].n"), [json!(1), json!(5)]);
    assert_eq!(find(".nothing.here"), Vec::<Value>::new());
    assert!(JsonPath::parse("..recursive").is_err());
}
