//! `meta.k8s.io/v1` Table rendering: a CRD's `additionalPrinterColumns`, or
//! the default Name / Created At table for kinds without columns.

use serde::Deserialize;
use serde_json::{Value, json};

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

/// A Table of `objects` with `columns` (after a leading Name column).
/// `include_object` is the request's `includeObject`: `None`, `Object` or
/// `Metadata` (the default).
pub fn render_table(columns: &[PrinterColumn], objects: &[Value], include_object: &str) -> Value {
    let _ = (columns, objects, include_object);
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": [], "rows": []})
}

/// The table kube-apiserver serves for kinds without printer columns.
pub fn default_table(objects: &[Value], include_object: &str) -> Value {
    render_table(&[], objects, include_object)
}
