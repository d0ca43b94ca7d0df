//! Server-side apply and update recording, checked against what
//! kube-apiserver records and refuses.

use serde_json::{Value, json};

use super::*;

const T0: &str = "2026-11-24T12:00:00Z";
const T1: &str = "2026-11-24T12:01:00Z";

fn builtin() -> TypeHints<'static> {
    TypeHints {
        schema: None,
        status_subresource: true,
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]}}}})
}

fn apply(live: Option<&Value>, applied: &Value, manager: &str, force: bool) -> Result<Value, ApplyConflicts> {
    server_side_apply(live, applied, manager, force, None, T1, builtin())
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no managedFields entry for {manager}: {obj}"))
}

fn owns(obj: &Value, manager: &str, pointer: &str) -> bool {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["manager"] == manager)
        .any(|e| e["fieldsV1"].pointer(pointer).is_some())
}

#[test]
fn create_on_apply_records_an_apply_entry_in_fields_v1() {
    let obj = server_side_apply(None, &deployment(1, "app:1"), "helm", false, None, T0, builtin()).unwrap();
    assert_eq!(obj["spec"]["replicas"], 1);
    let e = entry(&obj, "helm");
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T0);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e.get("subresource").is_none());
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                    ".": {}, "f:name": {}, "f:image": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                }}}}
            }
        })
    );
}

#[test]
fn changing_a_field_another_manager_owns_is_a_conflict() {
    let live = apply(None, &deployment(1, "app:1"), "helm", false).unwrap();
    let err = apply(
        Some(&live),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
        "kubectl",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"helm\": .spec.replicas"
    );
    assert_eq!(
        err.causes(),
        vec![(
            "FieldManagerConflict".into(),
            "conflict with \"helm\"".into(),
            ".spec.replicas".into()
        )]
    );
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let live = apply(None, &deployment(1, "app:1"), "helm", false).unwrap();
    let err = apply(Some(&live), &deployment(2, "app:2"), "ops", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"helm\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
}

#[test]
fn applying_the_same_value_shares_ownership() {
    let live = apply(None, &deployment(1, "app:1"), "helm", false).unwrap();
    let obj = apply(
        Some(&live),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 1}}),
        "kubectl",
        false,
    )
    .unwrap();
    assert!(owns(&obj, "helm", "/f:spec/f:replicas"));
    assert!(owns(&obj, "kubectl", "/f:spec/f:replicas"));
}

#[test]
fn force_takes_ownership_from_the_other_manager() {
    let live = apply(None, &deployment(1, "app:1"), "helm", false).unwrap();
    let obj = apply(
        Some(&live),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
        "kubectl",
        true,
    )
    .unwrap();
    assert_eq!(obj["spec"]["replicas"], 3);
    assert!(owns(&obj, "kubectl", "/f:spec/f:replicas"));
    assert!(!owns(&obj, "helm", "/f:spec/f:replicas"));
    assert!(owns(&obj, "helm", "/f:spec/f:selector"), "helm keeps the rest");
    // helm now stops applying replicas: it no longer owns it, so the value stays.
    let mut without = deployment(1, "app:1");
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let obj = apply(Some(&obj), &without, "helm", false).unwrap();
    assert_eq!(obj["spec"]["replicas"], 3);
}

#[test]
fn fields_a_manager_stops_applying_are_removed() {
    let mut first = deployment(1, "app:1");
    first["metadata"]["labels"]["tier"] = json!("front");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "proxy:1"}));
    let live = apply(None, &first, "helm", false).unwrap();
    let obj = apply(Some(&live), &deployment(1, "app:1"), "helm", false).unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"app": "web"}));
    let names: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app"]);
    assert!(!owns(&obj, "helm", "/f:metadata/f:labels/f:tier"));
}

#[test]
fn a_field_still_owned_by_another_manager_is_not_removed() {
    let mut first = deployment(1, "app:1");
    first["metadata"]["labels"]["tier"] = json!("front");
    let live = apply(None, &first, "helm", false).unwrap();
    let live = apply(
        Some(&live),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"tier": "front"}}}),
        "ops",
        false,
    )
    .unwrap();
    let obj = apply(Some(&live), &deployment(1, "app:1"), "helm", false).unwrap();
    assert_eq!(obj["metadata"]["labels"]["tier"], "front");
    assert!(owns(&obj, "ops", "/f:metadata/f:labels/f:tier"));
}

#[test]
fn lists_merge_by_key_and_each_manager_owns_its_items() {
    let live = apply(None, &deployment(1, "app:1"), "helm", false).unwrap();
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "proxy:1"}]}}}});
    let obj = apply(Some(&live), &sidecar, "mesh", false).unwrap();
    let containers = obj["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "app:1");
    assert!(owns(
        &obj,
        "mesh",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"sidecar\"}/f:image"
    ));
    assert!(!owns(
        &obj,
        "mesh",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"app\"}"
    ));
}

#[test]
fn unchanged_apply_keeps_the_recorded_time() {
    let live = server_side_apply(None, &deployment(1, "app:1"), "helm", false, None, T0, builtin()).unwrap();
    let again = server_side_apply(Some(&live), &deployment(1, "app:1"), "helm", false, None, T1, builtin()).unwrap();
    assert_eq!(again, live);
}

#[test]
fn status_is_not_applied_through_the_main_resource() {
    let mut applied = deployment(1, "app:1");
    applied["status"] = json!({"replicas": 5});
    let obj = apply(None, &applied, "helm", false).unwrap();
    assert!(obj.get("status").is_none());
    assert!(!owns(&obj, "helm", "/f:status"));
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 9}, "status": {"replicas": 1}});
    let obj = server_side_apply(Some(&obj), &status, "ctrl", false, Some("status"), T1, builtin()).unwrap();
    assert_eq!(obj["status"]["replicas"], 1);
    assert_eq!(obj["spec"]["replicas"], 1, "spec is not applied through /status");
    let e = entry(&obj, "ctrl");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
}

#[test]
fn updates_take_ownership_and_conflict_with_later_applies() {
    let live = apply(None, &deployment(1, "app:1"), "helm", false).unwrap();
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(4);
    edited["metadata"]["annotations"] = json!({"note": "x"});
    record_update(Some(&live), &mut edited, "kubectl-edit", None, T1, builtin());
    let e = entry(&edited, "kubectl-edit");
    assert_eq!(e["operation"], "Update");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}, "f:spec": {"f:replicas": {}}})
    );
    assert!(!owns(&edited, "helm", "/f:spec/f:replicas"));
    let err = apply(Some(&edited), &deployment(1, "app:1"), "helm", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn create_records_an_update_entry() {
    let mut created = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "shop", "uid": "u", "labels": {"app": "x"}}, "data": {"key": "v"}});
    record_update(None, &mut created, "kubectl-create", None, T0, TypeHints::default());
    let e = entry(&created, "kubectl-create");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {".": {}, "f:key": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
    // An update that changes nothing records nothing new.
    let mut same = created.clone();
    record_update(Some(&created), &mut same, "other", None, T1, TypeHints::default());
    assert_eq!(same, created);
}

#[test]
fn objects_without_managed_fields_belong_to_before_first_apply() {
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}});
    let err = server_side_apply(
        Some(&live),
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg"}, "data": {"a": "2"}}),
        "helm",
        false,
        None,
        T1,
        TypeHints::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
    );
}

#[test]
fn crd_schema_list_types_drive_the_merge() {
    let schema = json!({"type": "object", "properties": {"metadata": {"type": "object"}, "spec": {"type": "object", "properties": {
        "members": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "args": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    }}}});
    let hints = TypeHints {
        schema: Some(&schema),
        status_subresource: true,
    };
    let labelled = json!({"apiVersion": "lifeboat.dev/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": "p", "labels": {"a": "b"}}});
    let obj = server_side_apply(None, &labelled, "one", false, None, T0, hints).unwrap();
    let fields = &entry(&obj, "one")["fieldsV1"];
    assert_eq!(
        fields,
        &json!({"f:metadata": {"f:labels": {"f:a": {}}}}),
        "metadata is typed as ObjectMeta"
    );
    let cr = |spec: Value| json!({"apiVersion": "lifeboat.dev/v1alpha1", "kind": "RecoveryPlan", "metadata": {"name": "p"}, "spec": spec});
    let live = server_side_apply(
        None,
        &cr(json!({"members": [{"name": "a", "port": 1}], "args": ["x", "y"], "tags": ["t1"]})),
        "one",
        false,
        None,
        T0,
        hints,
    )
    .unwrap();
    let obj = server_side_apply(
        Some(&live),
        &cr(json!({"members": [{"name": "b", "port": 2}], "tags": ["t2"]})),
        "two",
        false,
        None,
        T1,
        hints,
    )
    .unwrap();
    assert_eq!(
        obj["spec"]["members"],
        json!([{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    );
    assert_eq!(obj["spec"]["tags"], json!(["t1", "t2"]));
    assert!(owns(&obj, "two", "/f:spec/f:tags/v:\"t2\""));
    // An atomic list belongs to one manager as a whole.
    let err = server_side_apply(Some(&obj), &cr(json!({"args": ["z"]})), "two", false, None, T1, hints).unwrap_err();
    assert_eq!(err.conflicts[0].field, ".spec.args");
}

#[test]
fn an_item_partly_owned_by_another_manager_keeps_its_key() {
    let mut first = deployment(1, "app:1");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "proxy:1"}));
    let live = apply(None, &first, "helm", false).unwrap();
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][1]["image"] = json!("proxy:2");
    record_update(Some(&live), &mut edited, "kubectl-edit", None, T1, builtin());
    let obj = apply(Some(&edited), &deployment(1, "app:1"), "helm", false).unwrap();
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][1],
        json!({"name": "sidecar", "image": "proxy:2"})
    );
}
