//! RBAC as kube-apiserver enforces it: `kubectl auth can-i --as=...` agrees
//! with what the same identity can really do, on cases from the Kubernetes RBAC
//! documentation; denied requests get kube-apiserver's 403 message; bearer
//! ServiceAccount tokens from the TokenRequest API authenticate; the admin
//! kubeconfig stays cluster-admin.

mod common;

use common::Cli;
use kube_sandbox::start_default;

const SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: development}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {namespace: default, name: pod-reader}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "watch", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-reader}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "watch", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-secrets, namespace: development}
subjects:
- {kind: User, name: dave, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: ClusterRole, name: secret-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: read-secrets-global}
subjects:
- {kind: Group, name: manager, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: ClusterRole, name: secret-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {namespace: default, name: configmap-updater}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: ["my-configmap"]
  verbs: ["update", "get"]
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list"]
- apiGroups: ["apps"]
  resources: ["*/status"]
  verbs: ["update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: cm, namespace: default}
subjects:
- {kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: Role, name: configmap-updater, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: healthz}
rules:
- nonResourceURLs: ["/healthz", "/healthz/*"]
  verbs: ["get", "post"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.example.com/aggregate-to-monitoring: "true"}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring-endpoints
  labels: {rbac.example.com/aggregate-to-monitoring: "true"}
rules:
- apiGroups: [""]
  resources: ["services", "endpoints", "pods"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops}
subjects:
- {kind: User, name: olga, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: ClusterRole, name: monitoring, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: health}
subjects:
- {kind: User, name: olga, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: ClusterRole, name: healthz, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer, namespace: default}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: editor, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewer, namespace: default}
subjects:
- {kind: ServiceAccount, name: viewer}
roleRef: {kind: ClusterRole, name: view, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: editor, namespace: default}
subjects:
- {kind: ServiceAccount, name: editor, namespace: default}
roleRef: {kind: ClusterRole, name: edit, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: my-configmap, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: default}
"#;

/// (identity flags, can-i arguments, expected, the real request that must agree)
type Case = (
    &'static [&'static str],
    &'static [&'static str],
    bool,
    &'static [&'static str],
);

const VIEWER: &str = "--as=system:serviceaccount:default:viewer";
const EDITOR: &str = "--as=system:serviceaccount:default:editor";

const CASES: &[Case] = &[
    (
        &["--as=jane"],
        &["get", "pods", "-n", "default"],
        true,
        &["get", "pods", "-n", "default"],
    ),
    (
        &["--as=jane"],
        &["list", "pods", "-n", "kube-system"],
        false,
        &["get", "pods", "-n", "kube-system"],
    ),
    (
        &["--as=jane"],
        &["create", "configmaps", "-n", "default"],
        false,
        &["create", "configmap", "x", "-n", "default"],
    ),
    (
        &["--as=jane"],
        &["get", "pods", "--subresource=log", "-n", "default"],
        false,
        &["get", "--raw", "/api/v1/namespaces/default/pods/nope/log"],
    ),
    (
        &["--as=dave"],
        &["list", "secrets", "-n", "development"],
        true,
        &["get", "secrets", "-n", "development"],
    ),
    (
        &["--as=dave"],
        &["list", "secrets", "-n", "default"],
        false,
        &["get", "secrets", "-n", "default"],
    ),
    (
        &["--as=bob", "--as-group=manager"],
        &["list", "secrets", "-A"],
        true,
        &["get", "secrets", "-A"],
    ),
    (
        &["--as=bob"],
        &["list", "secrets", "-A"],
        false,
        &["get", "secrets", "-A"],
    ),
    (
        &["--as=carol"],
        &["get", "configmaps/my-configmap", "-n", "default"],
        true,
        &["get", "configmap", "my-configmap", "-n", "default"],
    ),
    (
        &["--as=carol"],
        &["get", "configmaps/other", "-n", "default"],
        false,
        &["get", "configmap", "other", "-n", "default"],
    ),
    (
        &["--as=carol"],
        &["list", "configmaps", "-n", "default"],
        false,
        &["get", "configmaps", "-n", "default"],
    ),
    (
        &["--as=carol"],
        &["get", "pods", "--subresource=log", "-n", "default"],
        true,
        &[],
    ),
    (
        &["--as=carol"],
        &["update", "deployments", "--subresource=status", "-n", "default"],
        true,
        &[],
    ),
    (&["--as=carol"], &["update", "deployments", "-n", "default"], false, &[]),
    (
        &["--as=carol"],
        &["delete", "leases.coordination.k8s.io", "-n", "default"],
        true,
        &["delete", "leases", "--all", "-n", "default"],
    ),
    (
        &["--as=olga"],
        &["list", "services", "-A"],
        true,
        &["get", "services", "-A"],
    ),
    (
        &["--as=olga"],
        &["list", "secrets", "-A"],
        false,
        &["get", "secrets", "-A"],
    ),
    (&["--as=olga"], &["get", "/healthz/etcd"], true, &[]),
    (
        &["--as=olga"],
        &["get", "/metrics"],
        false,
        &["get", "--raw", "/metrics"],
    ),
    (&["--as=jane"], &["get", "/healthz/etcd"], false, &[]),
    (
        &["--as=jane"],
        &["get", "/version"],
        true,
        &["get", "--raw", "/version"],
    ),
    (
        &[VIEWER],
        &["list", "deployments.apps", "-n", "default"],
        true,
        &["get", "deployments", "-n", "default"],
    ),
    (
        &[VIEWER],
        &["create", "deployments.apps", "-n", "default"],
        false,
        &["create", "deployment", "v", "--image=x", "-n", "default"],
    ),
    (
        &[VIEWER],
        &["get", "secrets", "-n", "default"],
        false,
        &["get", "secrets", "-n", "default"],
    ),
    (
        &[VIEWER],
        &["list", "pods", "-n", "development"],
        false,
        &["get", "pods", "-n", "development"],
    ),
    (
        &[EDITOR],
        &["create", "deployments.apps", "-n", "default"],
        true,
        &["create", "deployment", "e", "--image=x", "-n", "default"],
    ),
    (
        &[EDITOR],
        &["create", "roles", "-n", "default"],
        false,
        &["create", "role", "r", "--verb=get", "--resource=pods", "-n", "default"],
    ),
    (
        &[EDITOR],
        &["create", "serviceaccounts", "--subresource=token", "-n", "default"],
        true,
        &["create", "token", "viewer", "-n", "default"],
    ),
    (&[EDITOR], &["list", "nodes"], false, &["get", "nodes"]),
];

#[tokio::test(flavor = "multi_thread")]
async fn can_i_agrees_with_the_authorizer_on_the_rbac_documentation_cases() {
    let sandbox = start_default().await.expect("sandbox starts");
    let cli = Cli::new(&sandbox);
    let setup = sandbox.dir().join("rbac.yaml");
    std::fs::write(&setup, SETUP).expect("write manifests");
    cli.kubectl(&["apply", "-f", setup.to_str().expect("utf-8")]);
    // The admin kubeconfig is cluster-admin.
    assert_eq!(cli.kubectl(&["auth", "can-i", "*", "*"]).trim(), "yes");

    let mut failures = vec![];
    for (who, can_i, expected, real) in CASES {
        let mut args = vec!["auth", "can-i"];
        args.extend_from_slice(can_i);
        args.extend_from_slice(who);
        let out = cli.run("kubectl", &args);
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() != *expected || said != if *expected { "yes" } else { "no" } {
            failures.push(format!(
                "kubectl {args:?} said {said:?} (exit {}), expected {expected}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if real.is_empty() {
            continue;
        }
        let mut args: Vec<&str> = real.to_vec();
        args.extend_from_slice(who);
        let out = cli.run("kubectl", &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let forbidden = stderr.contains("Forbidden") || stderr.contains("forbidden");
        if forbidden == *expected {
            failures.push(format!("kubectl {args:?}: expected allowed={expected}, got: {stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_requests_get_kube_apiserver_messages_and_tokens_authenticate() {
    let sandbox = start_default().await.expect("sandbox starts");
    let cli = Cli::new(&sandbox);
    cli.kubectl(&["create", "serviceaccount", "app"]);
    cli.kubectl(&["create", "role", "pod-reader", "--verb=get,list", "--resource=pods"]);

    let err = cli.fails("kubectl", &["get", "pods", "--as=system:serviceaccount:default:app"]);
    assert!(
        err.contains(r#"pods is forbidden: User "system:serviceaccount:default:app" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );
    let err = cli.fails(
        "kubectl",
        &[
            "get",
            "deployment",
            "x",
            "-n",
            "kube-system",
            "--as=system:serviceaccount:default:app",
        ],
    );
    assert!(
        err.contains(r#"deployments.apps "x" is forbidden: User "system:serviceaccount:default:app" cannot get resource "deployments" in API group "apps" in the namespace "kube-system""#),
        "{err}"
    );
    let err = cli.fails("kubectl", &["get", "nodes", "--as=system:serviceaccount:default:app"]);
    assert!(
        err.contains(r#"cannot list resource "nodes" in API group "" at the cluster scope"#),
        "{err}"
    );

    // A TokenRequest token authenticates as the ServiceAccount.
    let token = cli.kubectl(&["create", "token", "app", "--duration=1h"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    // client-go sends bearer tokens only over TLS: talk to the TLS endpoint.
    let server = format!("--server={}", sandbox.https_url());
    let ca = format!("--certificate-authority={}", sandbox.ca_path().display());
    let token_arg = format!("--token={token}");
    let token_flag = format!("{server} {ca} {token_arg}");
    let tls = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(token_flag.split(' ').map(String::from));
        all
    };
    let run = |args: &[&str]| {
        let all = tls(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        cli.run("kubectl", &refs)
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fails = |args: &[&str]| {
        let out = run(args);
        assert!(!out.status.success(), "kubectl {args:?} unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let who = ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(who, "system:serviceaccount:default:app");
    let err = fails(&["get", "pods"]);
    assert!(
        err.contains(r#"User "system:serviceaccount:default:app" cannot list resource "pods""#),
        "{err}"
    );
    cli.kubectl(&[
        "create",
        "rolebinding",
        "app-reads",
        "--role=pod-reader",
        "--serviceaccount=default:app",
    ]);
    ok(&["get", "pods"]);
    assert_eq!(ok(&["auth", "can-i", "list", "pods"]).trim(), "yes");
    assert_eq!(run(&["auth", "can-i", "delete", "pods"]).status.code(), Some(1));
    // A missing role is named in the reason.
    cli.kubectl(&[
        "create",
        "rolebinding",
        "dangling",
        "--role=missing",
        "--serviceaccount=default:app",
    ]);
    let err = fails(&["delete", "pod", "p"]);
    assert!(
        err.contains(r#"RBAC: role.rbac.authorization.k8s.io "missing" not found"#),
        "{err}"
    );
    // Anonymous requests on the TLS endpoint are system:anonymous.
    // (kubectl would prompt for a password here: curl asks instead.)
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(sandbox.ca_path())
            .arg(format!("{}/api/v1/namespaces/default/pods", sandbox.https_url()))
            .output()
    })
    .expect("curl runs");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains(r#"User \"system:anonymous\" cannot list resource \"pods\""#),
        "{body}"
    );

    // Deleting the ServiceAccount invalidates its tokens: 401.
    cli.kubectl(&["delete", "serviceaccount", "app"]);
    let err = fails(&["get", "pods"]);
    assert!(err.contains("Unauthorized"), "{err}");
    let out = cli.run("kubectl", &["get", "pods", &server, &ca, "--token=not-a-token"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));
}
