//! Real kubectl against built-in kinds: typed-client commands that send
//! protobuf, client-side apply, explain from the served OpenAPI, watch tables.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::Cli;
use kube_sandbox::start_default;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_creates_explains_applies_and_watches_built_ins() {
    let sandbox = start_default().await.expect("sandbox starts");
    let cli = Cli::new(&sandbox);

    // These go through client-go typed clients, which send protobuf bodies.
    cli.kubectl(&["create", "namespace", "shop"]);
    cli.kubectl(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "shop",
        "--from-literal=password=s3cret",
    ]);
    cli.kubectl(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "shop",
        "--from-literal=mode=fast",
    ]);
    let got = cli.kubectl(&[
        "get",
        "secret",
        "creds",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data.password} {.type}",
    ]);
    assert_eq!(got, "czNjcmV0 Opaque");
    let got = cli.kubectl(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data.mode}",
    ]);
    assert_eq!(got, "fast");
    let ns = cli.kubectl(&[
        "get",
        "namespace",
        "shop",
        "-o",
        "jsonpath={.status.phase} {.metadata.labels}",
    ]);
    assert!(
        ns.starts_with("Active") && ns.contains("kubernetes.io/metadata.name"),
        "{ns}"
    );

    let explain = cli.kubectl(&["explain", "deployment.spec.replicas"]);
    assert!(
        explain.contains("FIELD: replicas <integer>") && explain.contains("Number of desired pods"),
        "{explain}"
    );

    // Client-side apply twice: create, then a three-way patch.
    let manifest = sandbox.dir().join("cm.yaml");
    let write = |v: &str| {
        let body = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n  namespace: shop\ndata:\n  a: \"{v}\"\n"
        );
        std::fs::write(&manifest, body).expect("write manifest");
    };
    let manifest_arg = manifest.to_string_lossy().into_owned();
    write("1");
    assert!(cli.kubectl(&["apply", "-f", &manifest_arg]).contains("created"));
    write("2");
    assert!(cli.kubectl(&["apply", "-f", &manifest_arg]).contains("configured"));
    assert_eq!(
        cli.kubectl(&["get", "cm", "plain", "-n", "shop", "-o", "jsonpath={.data.a}"]),
        "2"
    );

    // kubectl get -w receives Table rows for changes.
    let mut watch = cli.spawn_kubectl_with(
        &["get", "configmaps", "-n", "shop", "-w", "--no-headers"],
        Stdio::piped(),
    );
    let stdout = watch.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = || {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("kubectl -w prints a line in time")
    };
    // The namespace's own kube-root-ca.crt (as on any cluster), then the test's two.
    let mut listed: Vec<String> = (0..3).map(|_| next_line()).collect();
    listed.sort();
    assert!(
        listed[0].starts_with("kube-root-ca.crt ")
            && listed[1].starts_with("plain ")
            && listed[2].starts_with("settings "),
        "{listed:?}"
    );
    cli.kubectl(&["label", "configmap", "settings", "-n", "shop", "touched=yes"]);
    let next = next_line();
    assert!(next.starts_with("settings "), "{next}");
    watch.kill().expect("stop kubectl watch");
    let _ = watch.wait();

    cli.kubectl(&["delete", "namespace", "shop", "--timeout=30s"]);
    let err = cli.fails("kubectl", &["get", "namespace", "shop"]);
    assert!(err.contains("not found"), "{err}");
    sandbox.shutdown().await;
}
