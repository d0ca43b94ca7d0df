//! `kubectl create <kind>` sends protobuf bodies (client-go typed clients): every
//! kind kubectl can create this way is decoded into the object kubectl meant.

mod common;

use common::Cli;
use kube_sandbox::start_default;
use serde_json::Value;

fn get_json(cli: &Cli, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&cli.kubectl(&all)).expect("kubectl get -o json")
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_create_sends_protobuf_for_rbac_workloads_and_more() {
    let sandbox = start_default().await.expect("sandbox starts");
    let cli = Cli::new(&sandbox);

    cli.kubectl(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods,pods/log",
    ]);
    let role = get_json(&cli, &["role", "pod-reader"]);
    assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["get", "list"]), "{role}");
    assert_eq!(
        role["rules"][0]["resources"],
        serde_json::json!(["pods", "pods/log"]),
        "{role}"
    );
    assert_eq!(role["rules"][0]["apiGroups"], serde_json::json!([""]), "{role}");

    cli.kubectl(&["create", "serviceaccount", "app"]);
    cli.kubectl(&[
        "create",
        "rolebinding",
        "read-pods",
        "--role=pod-reader",
        "--serviceaccount=default:app",
        "--user=jane",
    ]);
    let rb = get_json(&cli, &["rolebinding", "read-pods"]);
    assert_eq!(rb["roleRef"]["kind"], "Role", "{rb}");
    assert_eq!(rb["roleRef"]["name"], "pod-reader", "{rb}");
    let subjects = rb["subjects"].as_array().expect("subjects");
    assert!(
        subjects
            .iter()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == "app" && s["namespace"] == "default"),
        "{rb}"
    );
    assert!(
        subjects.iter().any(|s| s["kind"] == "User" && s["name"] == "jane"),
        "{rb}"
    );

    cli.kubectl(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
        "--resource-name=n1",
    ]);
    let cr = get_json(&cli, &["clusterrole", "node-reader"]);
    assert_eq!(cr["rules"][0]["resourceNames"], serde_json::json!(["n1"]), "{cr}");
    cli.kubectl(&[
        "create",
        "clusterrolebinding",
        "nodes",
        "--clusterrole=node-reader",
        "--group=ops",
    ]);
    let crb = get_json(&cli, &["clusterrolebinding", "nodes"]);
    assert_eq!(crb["subjects"][0]["kind"], "Group", "{crb}");

    cli.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=0",
        "--port=8080",
    ]);
    let d = get_json(&cli, &["deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 0, "replicas 0 is kept: {d}");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web", "{d}");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (c["name"].as_str(), c["image"].as_str()),
        (Some("nginx"), Some("nginx:1.27")),
        "{d}"
    );
    assert_eq!(c["ports"][0]["containerPort"], 8080, "{d}");

    cli.kubectl(&["create", "job", "once", "--image=busybox", "--", "sh", "-c", "echo hi"]);
    let j = get_json(&cli, &["job", "once"]);
    let c = &j["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"], serde_json::json!(["sh", "-c", "echo hi"]), "{j}");
    assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never", "{j}");

    cli.kubectl(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox",
        "--schedule=0 3 * * *",
    ]);
    assert_eq!(get_json(&cli, &["cronjob", "nightly"])["spec"]["schedule"], "0 3 * * *");
    cli.kubectl(&["create", "service", "clusterip", "api", "--tcp=80:8080"]);
    let svc = get_json(&cli, &["service", "api"]);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080, "{svc}");
    assert_eq!(svc["spec"]["type"], "ClusterIP", "{svc}");
    cli.kubectl(&[
        "create",
        "poddisruptionbudget",
        "pdb",
        "--selector=app=web",
        "--min-available=1",
    ]);
    assert_eq!(get_json(&cli, &["pdb", "pdb"])["spec"]["minAvailable"], 1);
    cli.kubectl(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=important",
    ]);
    assert_eq!(get_json(&cli, &["priorityclass", "high"])["value"], 1000);
    cli.kubectl(&["create", "quota", "q", "--hard=pods=10"]);
    assert_eq!(get_json(&cli, &["resourcequota", "q"])["spec"]["hard"]["pods"], "10");
    cli.kubectl(&["create", "ingress", "ing", "--rule=shop.example/=api:80"]);
    let ing = get_json(&cli, &["ingress", "ing"]);
    assert_eq!(ing["spec"]["rules"][0]["host"], "shop.example", "{ing}");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"], 80,
        "{ing}"
    );
    cli.kubectl(&["create", "namespace", "shop"]);
    assert_eq!(
        get_json(&cli, &["namespace", "shop"])["spec"]["finalizers"],
        serde_json::json!(["kubernetes"])
    );
}
