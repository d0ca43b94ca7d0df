//! Generated files stay in step with the code, and the chart renders cleanly with
//! least-privilege RBAC. Needs the pinned helm (scripts/setup.sh).

use std::collections::BTreeSet;

use lifeboat::api;
use lifeboat::controller::permissions::OPERATOR_PERMISSIONS;
use lifeboat_testkit::tools::{helm, repo_root};

const REGENERATE: &str = "regenerate with `make crds`";

#[test]
fn committed_crds_match_the_code() {
    let root = repo_root();
    for crd in api::all_crds() {
        let file = api::crd_file_name(&crd);
        let expected = api::crd_yaml(&crd).expect("CRD renders");
        for dir in ["crds", "charts/lifeboat/files/crds"] {
            let path = root.join(dir).join(&file);
            let committed =
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; {REGENERATE}", path.display()));
            assert!(
                committed == expected,
                "{} drifted from the Rust types; {REGENERATE}",
                path.display()
            );
        }
    }
    // No stale CRD files left behind either.
    let names: BTreeSet<String> = api::all_crds().iter().map(api::crd_file_name).collect();
    for dir in ["crds", "charts/lifeboat/files/crds"] {
        let on_disk: BTreeSet<String> = std::fs::read_dir(root.join(dir))
            .expect("dir exists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            on_disk, names,
            "{dir} holds other files than the generated CRDs; {REGENERATE}"
        );
    }
}

#[test]
fn crds_have_names_columns_and_descriptions() {
    let expected_columns: &[(&str, &[&str])] = &[
        ("BackupStore", &["BUCKET", "AVAILABLE", "AGE"]),
        (
            "RecoveryPlan",
            &[
                "ENGINE",
                "PRIMARY",
                "RPO",
                "ACHIEVED-RPO",
                "LAST-BACKUP",
                "READY",
                "AGE",
            ],
        ),
        ("Backup", &["PLAN", "PHASE", "SIZE", "DURATION", "AGE"]),
        ("Restore", &["BACKUP", "TARGET", "PHASE", "DURATION", "AGE"]),
        ("Failover", &["PLAN", "TYPE", "FROM", "TO", "PHASE", "RTO", "AGE"]),
    ];
    let short: &[(&str, &str)] = &[
        ("BackupStore", "bs"),
        ("RecoveryPlan", "rp"),
        ("Backup", "bk"),
        ("Restore", "rst"),
        ("Failover", "fo"),
    ];
    for crd in api::all_crds() {
        let kind = crd.spec.names.kind.as_str();
        let version = &crd.spec.versions[0];
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        let want = expected_columns
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("kind listed")
            .1;
        assert_eq!(columns, want, "{kind} printer columns");
        let want_short = short.iter().find(|(k, _)| *k == kind).expect("kind listed").1;
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            vec![want_short.to_string()]
        );
        assert_eq!(
            crd.spec.names.categories.clone().unwrap_or_default(),
            vec!["lifeboat".to_string()]
        );
        assert!(
            version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{kind} has /status"
        );
        let schema = serde_json::to_value(version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()))
            .expect("schema serialises");
        let mut undocumented = Vec::new();
        find_undocumented(&schema["properties"]["spec"], "spec", &mut undocumented);
        find_undocumented(&schema["properties"]["status"], "status", &mut undocumented);
        assert!(
            undocumented.is_empty(),
            "{kind}: fields without a description: {undocumented:?}"
        );
    }
}

/// Every property must carry a description (it is what `kubectl explain` shows).
fn find_undocumented(schema: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in props {
            let child_path = format!("{path}.{name}");
            // Kubernetes' own types (LabelSelector, Condition) come documented from k8s-openapi.
            if child.get("description").is_none() {
                out.push(child_path.clone());
            }
            find_undocumented(child, &child_path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        find_undocumented(items, &format!("{path}[]"), out);
    }
}

fn helm_cmd(args: &[&str]) -> (bool, String) {
    let chart = repo_root().join("charts/lifeboat");
    let out = std::process::Command::new(helm())
        .args(args)
        .arg(&chart)
        .env("HELM_CACHE_HOME", std::env::temp_dir().join("lifeboat-helm-cache"))
        .output()
        .expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn chart_lints_strictly() {
    let (ok, out) = helm_cmd(&["lint", "--strict"]);
    assert!(ok, "helm lint --strict failed:\n{out}");
    assert!(!out.contains("[WARNING]") && !out.contains("[ERROR]"), "{out}");
}

#[test]
fn chart_rejects_invalid_values() {
    let (ok, out) = helm_cmd(&["template", "t", "--set", "scope=everywhere"]);
    assert!(!ok, "an invalid scope must be refused");
    assert!(out.contains("scope"), "the error names the value: {out}");
}

fn render(extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["template", "t", "--namespace", "lifeboat-system"];
    args.extend_from_slice(extra);
    let (ok, out) = helm_cmd(&args);
    assert!(ok, "helm template failed:\n{out}");
    serde_yaml::Deserializer::from_str(&out)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

/// (group, resource, verb) triples granted by the rendered roles.
fn granted(objects: &[serde_json::Value]) -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for obj in objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("ClusterRole" | "Role")))
    {
        for rule in obj["rules"].as_array().expect("rules") {
            for group in rule["apiGroups"].as_array().expect("apiGroups") {
                for resource in rule["resources"].as_array().expect("resources") {
                    for verb in rule["verbs"].as_array().expect("verbs") {
                        let triple = (
                            group.as_str().expect("str").to_string(),
                            resource.as_str().expect("str").to_string(),
                            verb.as_str().expect("str").to_string(),
                        );
                        assert!(
                            !triple.0.contains('*') && !triple.1.contains('*') && !triple.2.contains('*'),
                            "wildcard {triple:?}"
                        );
                        set.insert(triple);
                    }
                }
            }
        }
    }
    set
}

fn needed() -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for p in OPERATOR_PERMISSIONS {
        for r in p.resources {
            for v in p.verbs {
                set.insert((p.api_group.to_string(), r.to_string(), v.to_string()));
            }
        }
    }
    set
}

#[test]
fn rbac_grants_exactly_what_the_operator_calls() {
    for scope in [
        &["--set", "scope=cluster"][..],
        &["--set", "scope=namespace", "--set", "watchNamespace=shop"][..],
    ] {
        let objects = render(scope);
        assert_eq!(
            granted(&objects),
            needed(),
            "chart RBAC ({scope:?}) differs from src/controller/permissions.rs"
        );
    }
    let namespaced = render(&["--set", "scope=namespace", "--set", "watchNamespace=shop"]);
    assert!(
        namespaced
            .iter()
            .all(|o| o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding")
    );
    let role = namespaced
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "shop")
        .expect("Role in shop");
    assert!(role["rules"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn deployment_is_locked_down_and_probed() {
    let objects = render(&[
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.dashboard.enabled=true",
    ]);
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    ] {
        assert!(kinds.contains(kind), "{kind} rendered");
    }
    let deploy = objects.iter().find(|o| o["kind"] == "Deployment").expect("Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["args"][0], "operator");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["memory"].is_string());
    let rules = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .expect("PrometheusRule");
    let alerts: BTreeSet<&str> = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for alert in [
        "LifeboatRpoBreached",
        "LifeboatBackupsFailing",
        "LifeboatReplicaLagAboveRpo",
        "LifeboatFailoverHappened",
        "LifeboatFailoverRefused",
    ] {
        assert!(alerts.contains(alert), "alert {alert}");
    }
    let dashboard = objects.iter().find(|o| o["kind"] == "ConfigMap").expect("dashboard");
    let json = dashboard["data"]["lifeboat.json"].as_str().expect("dashboard json");
    serde_json::from_str::<serde_json::Value>(json).expect("dashboard is valid JSON");
}

#[test]
fn crds_in_the_chart_are_kept_on_uninstall_by_default() {
    let objects = render(&[]);
    let crds: Vec<_> = objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    assert_eq!(crds.len(), 5);
    assert!(
        crds.iter()
            .all(|c| c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep")
    );
    let unkept = render(&["--set", "crds.keep=false"]);
    assert!(
        unkept
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .all(|c| c["metadata"]["annotations"].is_null())
    );
    let none = render(&["--set", "crds.install=false"]);
    assert!(none.iter().all(|o| o["kind"] != "CustomResourceDefinition"));
}
