//! The CLI's backup, restore and failover commands, also run as the kubectl plugin
//! `kubectl lifeboat`, against the operator, real PostgreSQL and garage.

use std::path::PathBuf;
use std::process::Command;

use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop, table_sums};
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::{kubectl, tools_dir};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_and_switchover_from_the_command_line() {
    let pg = PgCluster::start(PgOptions {
        replicas: 1,
        ..PgOptions::default()
    })
    .await
    .expect("postgres");
    create_shop(&pg.primary, "shop", ShopSize::SMALL).await.expect("shop");
    let target = PgCluster::start(PgOptions::default()).await.expect("target");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    register_pod(&client, "default", "db-1", &[("app", "db")], &pg.replicas[0].host()).await;
    let manifest = plan_manifest(
        &PlanManifest {
            backup: Some(r#"{schedule: "@yearly", databases: [shop]}"#),
            ..PlanManifest::default()
        },
        Some(&garage),
    );
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok);
    let _operator = OperatorProcess::start(&exe(), cluster.kubeconfig(), "op", &[]);

    // kubectl finds the plugin as kubectl-lifeboat on the PATH.
    let plugin_dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(exe(), plugin_dir.path().join("kubectl-lifeboat")).expect("symlink");
    let path = format!(
        "{}:{}:{}",
        plugin_dir.path().display(),
        tools_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |program: &PathBuf, args: &[&str]| {
        tokio::task::block_in_place(|| {
            Command::new(program)
                .args(args)
                .env("KUBECONFIG", cluster.kubeconfig())
                .env("PATH", &path)
                .output()
                .expect("runs")
        })
    };

    let out = run(&kubectl(), &["lifeboat", "backup", "shop", "--wait", "2m"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Completed") && stdout.contains("size"), "{stdout}");
    let backup = stdout
        .lines()
        .find_map(|l| l.split(':').next().filter(|n| n.starts_with("shop-manual-")))
        .expect("backup name")
        .to_string();

    let host = target.primary.host();
    let out = run(
        &exe(),
        &[
            "restore",
            &backup,
            "--target",
            &host,
            "--target-secret",
            "db-credentials",
            "--check",
            "orders:shop:1000:select count(*) from orders",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("check orders: passed"), "{stdout}");
    assert_eq!(
        table_sums(&target.primary, "shop").await.expect("sums"),
        table_sums(&pg.primary, "shop").await.expect("sums")
    );

    let out = run(&kubectl(), &["lifeboat", "failover", "shop", "--switchover"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Completed") && stdout.contains("RTO"), "{stdout}");
    assert!(
        !pg.replicas[0]
            .query_one::<bool>("SELECT pg_is_in_recovery()")
            .await
            .expect("query"),
        "db-1 promoted"
    );

    let out = run(&exe(), &["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.lines().any(|l| l.contains("shop") && l.contains("db-1")),
        "{stdout}"
    );
}
