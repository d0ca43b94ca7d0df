//! Merge patch, JSON patch and strategic merge patch as kube-apiserver applies them.

use kube_sandbox::patch::{PatchError, json_patch, merge_patch, strategic_merge_patch, supports_strategic_merge};
use serde_json::{Value, json};

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a"]},
    "spec": {"replicas": 1, "template": {"spec": {
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80}], "args": ["--x"]},
            {"name": "sidecar", "image": "proxy:1"}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "a", "operator": "Exists"}]
    }}}})
}

fn smp(target: &mut Value, patch: Value) {
    strategic_merge_patch(target, &patch, "apps/v1", "Deployment").unwrap();
}

#[test]
fn merge_patch_merges_objects_and_null_deletes() {
    let mut d = deployment();
    merge_patch(
        &mut d,
        &json!({"metadata": {"labels": {"tier": null, "new": "x"}}, "spec": {"replicas": 3}}),
    );
    assert_eq!(d["metadata"]["labels"], json!({"app": "web", "new": "x"}));
    assert_eq!(d["spec"]["replicas"], 3);
    // Lists are replaced wholesale by a merge patch.
    merge_patch(
        &mut d,
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}}),
    );
    assert_eq!(d["spec"]["template"]["spec"]["containers"], json!([{"name": "only"}]));
}

#[test]
fn json_patch_applies_and_reports_failures() {
    let mut d = deployment();
    json_patch(
        &mut d,
        &json!([{"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/x", "value": "y"}]),
    )
    .unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["labels"]["x"], "y");
    let failed = json_patch(&mut d, &json!([{"op": "test", "path": "/spec/replicas", "value": 1}])).unwrap_err();
    assert_eq!(failed.code(), 422);
    assert_eq!(d["spec"]["replicas"], 5, "a failed patch leaves the object alone");
    assert_eq!(
        failed.to_string(),
        "jsonpatch test operation 0 does not apply: value did not match at \"/spec/replicas\""
    );
    let malformed = json_patch(&mut d, &json!({"op": "add"})).unwrap_err();
    assert!(matches!(malformed, PatchError::MalformedJsonPatch(_)));
    assert_eq!(malformed.code(), 400);
}

#[test]
fn json_patch_is_atomic_and_tests_null_like_kube() {
    let mut d = deployment();
    let before = d.clone();
    let e = json_patch(
        &mut d,
        &json!([{"op": "replace", "path": "/spec/replicas", "value": 9},
        {"op": "remove", "path": "/spec/missing"}]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("remove operation 1"), "{e}");
    assert_eq!(d, before, "nothing applied when one operation fails");
    // kube-rs's finalizer helper: test a missing finalizers list against null, then add it.
    json_patch(
        &mut d,
        &json!([{"op": "test", "path": "/metadata/absent", "value": null},
        {"op": "add", "path": "/metadata/absent", "value": ["f"]}]),
    )
    .unwrap();
    assert_eq!(d["metadata"]["absent"], json!(["f"]));
    assert!(
        json_patch(
            &mut d,
            &json!([{"op": "test", "path": "/metadata/absent", "value": null}])
        )
        .is_err()
    );
}

#[test]
fn smp_merges_containers_by_name_and_env_by_name() {
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "changed"}, {"name": "C", "value": "3"}]}
        ]}}}}),
    );
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 2, "sidecar kept");
    assert_eq!(containers[0]["image"], "app:2");
    assert_eq!(containers[0]["args"], json!(["--x"]));
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "changed"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(containers[1], json!({"name": "sidecar", "image": "proxy:1"}));
}

#[test]
fn smp_patch_delete_removes_a_list_item_by_key() {
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "$patch": "delete"}],
        "volumes": [{"name": "data", "$patch": "delete"}]}}}}),
    );
    let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(
        containers
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["app"]
    );
    assert_eq!(d["spec"]["template"]["spec"]["volumes"], json!([]));
}

#[test]
fn smp_replace_directives() {
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "new", "image": "n"}]}}}}),
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"],
        json!([{"name": "new", "image": "n"}])
    );
    smp(
        &mut d,
        json!({"metadata": {"labels": {"$patch": "replace", "only": "me"}}}),
    );
    assert_eq!(d["metadata"]["labels"], json!({"only": "me"}));
    smp(&mut d, json!({"spec": {"template": {"$patch": "delete"}}}));
    assert!(d["spec"].get("template").is_none());
}

#[test]
fn smp_lists_without_merge_key_are_replaced() {
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}],
        "containers": [{"name": "app", "args": ["--y"]}]}}}}),
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["args"], json!(["--y"]));
}

#[test]
fn smp_null_deletes_and_annotations_merge() {
    // What `kubectl rollout restart` and `kubectl annotate` send.
    let mut d = deployment();
    smp(
        &mut d,
        json!({"metadata": {"labels": {"tier": null}},
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}),
    );
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "now"
    );
    assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 2);
}

#[test]
fn smp_primitive_set_lists_and_their_directives() {
    let mut d = deployment();
    smp(&mut d, json!({"metadata": {"finalizers": ["b", "a"]}}));
    assert_eq!(
        d["metadata"]["finalizers"],
        json!(["b", "a"]),
        "patch order wins, as in kube"
    );
    smp(
        &mut d,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(d["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn smp_set_element_order_and_retain_keys() {
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"name": "sidecar", "image": "proxy:2"}]}}}}),
    );
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sidecar", "app"]);
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "data", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}}}}),
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
}

#[test]
fn smp_service_ports_merge_by_port() {
    let mut svc =
        json!({"kind": "Service", "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
    strategic_merge_patch(
        &mut svc,
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
        "v1",
        "Service",
    )
    .unwrap();
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443, "name": "https"}])
    );
}

#[test]
fn smp_errors_are_bad_requests() {
    let mut d = deployment();
    let e = strategic_merge_patch(
        &mut d,
        &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        "apps/v1",
        "Deployment",
    )
    .unwrap_err();
    assert_eq!(e.code(), 400);
    assert!(
        e.to_string().contains("does not contain declared merge key: name"),
        "{e}"
    );
    let e = strategic_merge_patch(
        &mut d,
        &json!({"metadata": {"$patch": "bogus"}}),
        "apps/v1",
        "Deployment",
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown patch type"), "{e}");
}

#[test]
fn custom_groups_do_not_support_strategic_merge() {
    assert!(supports_strategic_merge(""));
    assert!(supports_strategic_merge("apps"));
    assert!(supports_strategic_merge("rbac.authorization.k8s.io"));
    assert!(!supports_strategic_merge("lifeboat.dev"));
    assert!(!supports_strategic_merge("monitoring.coreos.com"));
}

#[test]
fn smp_orders_lists_like_kube() {
    // kube's normalizeElementOrder: patch items in patch order, server-only
    // items slotted in by their server position; a brand-new item has no
    // server position and goes before the remaining server-only items.
    let env = |d: &Value| -> Vec<String> {
        d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "C"}]}]}}}}),
    );
    assert_eq!(env(&d), ["C", "A", "B"]);
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "x"}, {"name": "C"}]}]}}}}),
    );
    assert_eq!(env(&d), ["A", "B", "C"]);
    // kubectl apply sends $setElementOrder with the full desired order.
    let mut d = deployment();
    smp(
        &mut d,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app",
        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}], "env": [{"name": "C"}]}]}}}}),
    );
    assert_eq!(env(&d), ["A", "C", "B"]);
}
