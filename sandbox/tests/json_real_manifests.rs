//! The pure functions against lifeboat's real CRDs and examples: every
//! example object passes its CRD's schema, a broken one is refused naming
//! the field, and server-side applying a CRD manifest is idempotent.

use kube_sandbox::patch::apply::{TypeHints, server_side_apply};
use kube_sandbox::schema::{admit, validate};
use serde::Deserialize;
use serde_json::{Value, json};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| v.is_object())
        .collect()
}

fn crds() -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/crds")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        out.extend(documents(&format!("crds/{name}")));
    }
    assert!(!out.is_empty());
    out
}

fn schema_for(crds: &[Value], kind: &str) -> Value {
    let crd = crds
        .iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn every_example_custom_object_is_admitted() {
    let crds = crds();
    let mut checked = 0;
    for file in ["examples/postgres-orders.yaml", "examples/mariadb-catalog.yaml"] {
        for mut obj in documents(file) {
            if !obj["apiVersion"].as_str().unwrap_or("").starts_with("lifeboat.dev/") {
                continue;
            }
            let kind = obj["kind"].as_str().unwrap().to_string();
            let before = obj.clone();
            admit(&schema_for(&crds, &kind), &mut obj).unwrap_or_else(|e| panic!("{file} {kind}: {e:?}"));
            assert_eq!(obj["metadata"], before["metadata"]);
            checked += 1;
        }
    }
    assert!(checked >= 2, "examples hold lifeboat objects");
}

#[test]
fn a_broken_example_is_refused_naming_the_field() {
    let crds = crds();
    let schema = schema_for(&crds, "Backup");
    let errors = validate(
        &schema,
        &json!({"apiVersion": "lifeboat.dev/v1alpha1", "kind": "Backup",
        "metadata": {"name": "b"}, "spec": {"plan": "", "deletionPolicy": "Shred"}}),
    );
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.deletionPolicy", "spec.plan"], "{errors:?}");
    assert_eq!(errors[0].cause_type(), "FieldValueNotSupported");
}

#[test]
fn server_side_applying_a_crd_manifest_is_idempotent() {
    let now = "2026-11-24T12:00:00Z";
    for crd in crds() {
        let hints = TypeHints {
            schema: None,
            status_subresource: true,
        };
        let live = server_side_apply(None, &crd, "kubectl", false, None, now, hints).unwrap();
        let again =
            server_side_apply(Some(&live), &crd, "kubectl", false, None, "2026-11-24T13:00:00Z", hints).unwrap();
        assert_eq!(again, live, "re-applying the same manifest changes nothing");
        let mut changed = crd.clone();
        changed["spec"]["names"]["shortNames"] = json!(["zz"]);
        let err = server_side_apply(Some(&live), &changed, "helm", false, None, now, hints).unwrap_err();
        assert_eq!(err.conflicts[0].field, ".spec.names.shortNames");
    }
}
