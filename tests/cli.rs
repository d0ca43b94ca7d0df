//! The `lifeboat` binary as a user runs it.

use std::process::Command;
use std::time::Duration;

use lifeboat_testkit::cluster::TestCluster;
use lifeboat_testkit::tools::{repo_root, wait_until};

fn lifeboat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
}

#[test]
fn crd_prints_the_committed_crds() {
    let out = lifeboat().arg("crd").output().expect("runs");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    for crd in lifeboat::api::all_crds() {
        let committed = std::fs::read_to_string(repo_root().join("crds").join(lifeboat::api::crd_file_name(&crd)))
            .expect("committed CRD");
        assert!(
            printed.contains(&committed),
            "{} printed as committed",
            crd.spec.names.plural
        );
    }
}

#[test]
fn invalid_use_exits_2_with_a_message() {
    for (args, mentions) in [
        (&["frobnicate"][..], "frobnicate"),
        (&["operator", "--http-addr", "not-an-address"][..], "--http-addr"),
        (&["--log", "lifeboat=loud", "crd"][..], "--log"),
        (&["--log-format", "yaml", "crd"][..], "--log-format"),
        (&["operator", "--log-format", "xml"][..], "--log-format"),
        (
            &[
                "restore",
                "b",
                "--target",
                "h",
                "--target-secret",
                "s",
                "--check",
                "only-a-name",
            ][..],
            "--check",
        ),
        (
            &[
                "restore",
                "b",
                "--target",
                "h",
                "--target-secret",
                "s",
                "--rename",
                "orders",
            ][..],
            "--rename",
        ),
        (&["backup", "shop", "--wait", "soon"][..], "--wait"),
        (&["failover"][..], "PLAN"),
    ] {
        let out = lifeboat().args(args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(mentions), "{args:?} names {mentions}: {stderr}");
    }
}

#[test]
fn every_flag_reads_an_environment_variable() {
    for cmd in ["operator", "crd", "sandbox", "status", "backup", "restore", "failover"] {
        let out = lifeboat().args([cmd, "--help"]).output().expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        let flags = help
            .lines()
            .filter(|l| l.trim_start().starts_with("--") || l.trim_start().starts_with("-n"))
            .count();
        let envs = help.matches("[env: ").count();
        // --help and --version are the only flags without one.
        assert!(
            flags > 0 && envs >= flags.saturating_sub(2),
            "{cmd}: {flags} flags, {envs} env vars:\n{help}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_plans() {
    let cluster = TestCluster::with_crds().await;
    let examples = repo_root().join("examples/postgres-orders.yaml");
    cluster.kubectl_ok(&["apply", "-f", examples.to_str().expect("utf-8")]);
    let out = tokio::task::block_in_place(|| {
        lifeboat()
            .arg("status")
            .env("KUBECONFIG", cluster.kubeconfig())
            .output()
            .expect("runs")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let row = stdout
        .lines()
        .find(|l| l.contains("orders"))
        .unwrap_or_else(|| panic!("a row for orders:\n{stdout}"));
    assert!(
        row.contains("postgres") && row.contains("1m") && row.contains("unknown") && row.contains("never"),
        "{row}"
    );
}

#[test]
fn sandbox_command_serves_until_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = lifeboat()
        .args(["sandbox", "--dir"])
        .arg(dir.path())
        .spawn()
        .expect("starts");
    wait_until("sandbox ready", Duration::from_secs(30), || {
        dir.path().join("ready").exists().then_some(())
    });
    assert!(dir.path().join("kubeconfig").exists());
    let run = lifeboat_testkit::tools::kubectl_run(&dir.path().join("kubeconfig"), &["get", "namespaces"]);
    assert!(run.ok && run.stdout.contains("kube-system"), "{}", run.stderr);
    // SIGTERM: the process ends by itself.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = wait_until("sandbox exit", Duration::from_secs(10), || {
        child.try_wait().expect("wait")
    });
    assert!(status.success(), "{status:?}");
}
