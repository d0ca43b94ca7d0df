//! Real kubectl 1.35 against the sandbox: a CRD's whole life as a user drives it.

mod common;

use std::time::Duration;

use common::{Cli, fixture, wait_until};
use kube_sandbox::start_default;

fn path(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_drives_a_custom_resource_through_its_life() {
    let sandbox = start_default().await.expect("sandbox starts");
    let cli = Cli::new(&sandbox);

    let out = cli.kubectl(&["apply", "--server-side", "-f", &path("widget-crd.yaml")]);
    assert!(out.contains("widgets.example.com serverside-applied"), "{out}");
    cli.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);

    let out = cli.kubectl(&["apply", "--server-side", "-f", &path("widget.yaml")]);
    assert!(out.contains("widget.example.com/gizmo serverside-applied"), "{out}");

    // Another field manager changing a field kubectl owns conflicts unless forced.
    let other = fixture("widget.yaml");
    let changed = std::fs::read_to_string(&other)
        .expect("fixture")
        .replace("replicas: 3", "replicas: 2");
    let changed_path = sandbox.dir().join("widget-changed.yaml");
    std::fs::write(&changed_path, changed).expect("write");
    let changed_path = changed_path.to_string_lossy().into_owned();
    let err = cli.fails(
        "kubectl",
        &["apply", "--server-side", "--field-manager=other", "-f", &changed_path],
    );
    assert!(err.contains("conflict") && err.contains(".spec.replicas"), "{err}");
    cli.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &changed_path,
    ]);
    cli.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &path("widget.yaml"),
    ]);

    // Printer columns come from the CRD (Size, Replicas, Phase) through the Table API.
    let table = cli.kubectl(&["get", "widgets"]);
    let header: Vec<&str> = table.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "REPLICAS", "PHASE", "AGE"], "{table}");
    let row: Vec<&str> = table.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..3], ["gizmo", "medium", "3"], "{table}");

    let yaml = cli.kubectl(&["get", "widget", "gizmo", "-o", "yaml", "--show-managed-fields"]);
    let obj: serde_json::Value = serde_yaml::from_str(&yaml).expect("kubectl -o yaml is YAML");
    assert_eq!(obj["spec"]["colour"], "blue");
    assert_eq!(
        obj["metadata"]["generation"], 3,
        "two spec changes by the apply conflict dance"
    );
    assert!(obj["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let managers = obj["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "{yaml}"
    );

    // Spec patch bumps generation; status patch through /status does not, and only changes status.
    cli.kubectl(&[
        "patch",
        "widget",
        "gizmo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    cli.kubectl(&[
        "patch",
        "widget",
        "gizmo",
        "--type",
        "merge",
        "--subresource=status",
        "-p",
        r#"{"status":{"phase":"Ready"},"spec":{"replicas":9}}"#,
    ]);
    let got = cli.kubectl(&[
        "get",
        "widget",
        "gizmo",
        "-o",
        "jsonpath={.metadata.generation} {.spec.replicas} {.status.phase}",
    ]);
    assert_eq!(got, "4 4 Ready");
    // A status write through the main resource is ignored.
    cli.kubectl(&[
        "patch",
        "widget",
        "gizmo",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"phase":"Broken"}}"#,
    ]);
    let phase = cli.kubectl(&["get", "widget", "gizmo", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Ready");
    let table = cli.kubectl(&["get", "widgets", "--no-headers"]);
    assert!(table.split_whitespace().any(|c| c == "Ready"), "{table}");

    cli.kubectl(&["label", "widget", "gizmo", "env=prod"]);
    let selected = cli.kubectl(&["get", "widgets", "-l", "env in (prod,staging)", "-o", "name"]);
    assert_eq!(selected.trim(), "widget.example.com/gizmo");
    let none = cli.kubectl(&["get", "widgets", "-l", "env!=prod", "-o", "name"]);
    assert_eq!(none.trim(), "");

    // Invalid objects are refused with the offending field named.
    let err = cli.fails(
        "kubectl",
        &[
            "patch",
            "widget",
            "gizmo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":"huge","replicas":99}}"#,
        ],
    );
    let err = String::from_utf8_lossy(err.as_bytes());
    assert!(err.contains("spec.size") && err.contains("Unsupported value"), "{err}");
    assert!(err.contains("spec.replicas"), "{err}");

    // Delete waits for the finalizer; removing it completes the deletion.
    cli.kubectl(&[
        "patch",
        "widget",
        "gizmo",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    let mut deleting = cli.spawn_kubectl(&["delete", "widget", "gizmo", "--timeout=60s"]);
    let client = sandbox.client().await;
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(client, "default", &widget_resource());
    wait_until("deletionTimestamp set", Duration::from_secs(20), || {
        let api = api.clone();
        async move {
            api.get("gizmo")
                .await
                .ok()
                .filter(|o| o.metadata.deletion_timestamp.is_some())
        }
    })
    .await;
    assert!(
        deleting.try_wait().expect("poll kubectl").is_none(),
        "kubectl delete returned while the finalizer was still there"
    );
    cli.kubectl(&[
        "patch",
        "widget",
        "gizmo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let status = tokio::task::spawn_blocking(move || deleting.wait())
        .await
        .expect("join")
        .expect("wait kubectl");
    assert!(status.success(), "kubectl delete failed: {status}");
    let err = cli.fails("kubectl", &["get", "widget", "gizmo"]);
    assert!(err.contains("NotFound") || err.contains("not found"), "{err}");

    // Deleting the CRD removes its resource from discovery.
    cli.kubectl(&["delete", "crd", "widgets.example.com"]);
    let err = cli.fails("kubectl", &["get", "widgets"]);
    // kubectl either knows from fresh discovery or gets the 404 of the removed endpoint.
    assert!(
        err.contains("doesn't have a resource type \"widgets\"") || err.contains("NotFound"),
        "{err}"
    );
    let discovery = cli.kubectl(&["api-resources", "--api-group=example.com", "-o", "name"]);
    assert!(discovery.trim().is_empty(), "{discovery}");
    sandbox.shutdown().await;
}

fn widget_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}
