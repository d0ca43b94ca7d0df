//! Restore through the operator: a Backup restored into a fresh PostgreSQL server with
//! passing checks; a failing check fails the Restore naming it and keeps the data; an
//! existing database is never overwritten nor dropped; a failed restore step drops what
//! it created, so the same Restore succeeds once the cause is fixed.

use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use lifeboat::api::{Backup, BackupPhase, Restore, RestorePhase};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop, table_sums};
use lifeboat_testkit::pg::{PgCluster, PgOptions, PgServer};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;

mod pipeline_common;

fn setup(garage: &Garage, backup: &str) -> String {
    let plan = PlanManifest {
        backup: Some(backup),
        objectives: "{rpo: 1h, rto: 1h}",
        ..PlanManifest::default()
    };
    plan_manifest(&plan, Some(garage))
        + "---\napiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {name: manual}\nspec: {plan: shop}\n"
}

fn restore(name: &str, host: &str, checks: &str, renames: &str) -> Restore {
    serde_yaml::from_str(&format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: Restore\nmetadata: {{name: {name}}}\nspec:\n  backup: manual\n  target: {{host: '{host}', credentialsSecret: {{name: db-credentials}}}}\n  checks: {checks}\n  renames: {renames}\n"
    ))
    .expect("restore yaml")
}

async fn databases_named(server: &PgServer, name: &str) -> i64 {
    server
        .query_one(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"))
        .await
        .expect("pg_database")
}

async fn finished(api: &Api<Restore>, name: &str) -> lifeboat::api::RestoreStatus {
    wait_until_async(&format!("Restore {name} finished"), Duration::from_secs(90), || async {
        let s = api.get(name).await.ok()?.status?;
        matches!(s.phase, Some(RestorePhase::Completed | RestorePhase::Failed)).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_with_checks_into_a_fresh_server() {
    let source = PgCluster::start(PgOptions::default()).await.expect("source");
    create_shop(&source.primary, "shop", ShopSize::SMALL)
        .await
        .expect("shop");
    let target = PgCluster::start(PgOptions::default()).await.expect("target");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &source.primary.host()).await;
    let run = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &setup(&garage, r#"{schedule: "@yearly", databases: [shop]}"#),
    );
    assert!(run.ok, "{}", run.stderr);
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let _operator = OperatorProcess::start(&exe, cluster.kubeconfig(), "op", &[]);

    let backups: Api<Backup> = Api::default_namespaced(client.clone());
    wait_until_async("Backup Completed", Duration::from_secs(60), || async {
        backups
            .get("manual")
            .await
            .ok()?
            .status?
            .phase
            .filter(|p| *p == BackupPhase::Completed)
    })
    .await;

    let restores: Api<Restore> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    let good = restore(
        "good",
        &target.primary.host(),
        r#"[{name: orders, database: shop, sql: "select count(*) from orders", expect: "1000"}]"#,
        "[]",
    );
    restores.create(&pp, &good).await.expect("create");
    let status = finished(&restores, "good").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{:?}", status.message);
    assert!(
        status.checks.iter().all(|c| c.passed) && status.checks.len() == 1,
        "{:?}",
        status.checks
    );
    assert!(status.bytes.is_some_and(|b| b > 0) && status.duration_seconds.is_some());
    let want = table_sums(&source.primary, "shop").await.expect("source sums");
    let got = table_sums(&target.primary, "shop").await.expect("target sums");
    assert_eq!(got, want, "row counts and per-table checksums equal the source");

    // Into a renamed database, with a failing check: Failed, naming the check.
    let bad = restore(
        "bad",
        &target.primary.host(),
        r#"[{name: no-orders-lost, database: shop_copy, sql: "select count(*) from orders", expect: "999"}]"#,
        "[{from: shop, to: shop_copy}]",
    );
    restores.create(&pp, &bad).await.expect("create");
    let status = finished(&restores, "bad").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("no-orders-lost") && message.contains("999") && message.contains("1000"),
        "{message}"
    );
    assert!(
        message.contains("shop_copy are kept"),
        "a failed check keeps the data: {message}"
    );
    assert_eq!(databases_named(&target.primary, "shop_copy").await, 1);

    // The same database again: refused, nothing overwritten.
    let again = restore("again", &target.primary.host(), "[]", "[]");
    restores.create(&pp, &again).await.expect("create");
    let status = finished(&restores, "again").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    assert!(status.message.unwrap_or_default().contains("already exists"));
    assert_eq!(table_sums(&target.primary, "shop").await.expect("sums"), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_drops_only_the_databases_it_created() {
    let source = PgCluster::start(PgOptions::default()).await.expect("source");
    for db in ["shop", "extra"] {
        create_shop(&source.primary, db, ShopSize::SMALL).await.expect("shop");
    }
    let target = PgCluster::start(PgOptions::default()).await.expect("target");
    // `extra` exists on the target before any restore, with data lifeboat must not touch.
    target.primary.execute("CREATE DATABASE extra").await.expect("extra");
    let keep = target.primary.connect_db("extra").await.expect("connect");
    keep.batch_execute("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)")
        .await
        .expect("marker");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &source.primary.host()).await;
    let run = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &setup(&garage, r#"{schedule: "@yearly", databases: [shop, extra]}"#),
    );
    assert!(run.ok, "{}", run.stderr);
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let _operator = OperatorProcess::start(&exe, cluster.kubeconfig(), "op", &[]);
    let backups: Api<Backup> = Api::default_namespaced(client.clone());
    let backup = wait_until_async("Backup Completed", Duration::from_secs(60), || async {
        let s = backups.get("manual").await.ok()?.status?;
        (s.phase == Some(BackupPhase::Completed)).then_some(s)
    })
    .await;
    let restores: Api<Restore> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    let host = target.primary.host();

    // `shop` is created and restored, then `extra` is found to exist: only `shop` goes.
    restores
        .create(&pp, &restore("collides", &host, "[]", "[]"))
        .await
        .expect("create");
    let status = finished(&restores, "collides").await;
    let message = status.message.unwrap_or_default();
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{message}");
    assert!(
        message.contains("extra already exists") && message.contains("dropped shop again"),
        "{message}"
    );
    assert_eq!(databases_named(&target.primary, "shop").await, 0, "{message}");
    let kept: i64 = keep
        .query_one("SELECT count(*) FROM keep_me", &[])
        .await
        .expect("the pre-existing database is untouched")
        .get(0);
    assert_eq!(kept, 1);

    // A corrupt dump in S3: the restore step fails after creating shop2, which is dropped.
    let s3 = pipeline_common::garage_store_at_root(&garage).await;
    let key = backup
        .objects
        .iter()
        .find(|o| o.database == "shop")
        .map(|o| o.key.clone())
        .expect("shop's object");
    let put = |body: Vec<u8>| {
        s3.client()
            .put_object()
            .bucket(s3.bucket())
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
    };
    let original = s3
        .client()
        .get_object()
        .bucket(s3.bucket())
        .key(&key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("read")
        .into_bytes()
        .to_vec();
    put(b"not a zstd frame ".repeat(64)).await.expect("corrupt");
    let renames = "[{from: shop, to: shop2}, {from: extra, to: extra2}]";
    restores
        .create(&pp, &restore("corrupt", &host, "[]", renames))
        .await
        .expect("create");
    let status = finished(&restores, "corrupt").await;
    let message = status.message.unwrap_or_default();
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{message}");
    assert!(
        message.contains("restoring shop2") && message.contains("dropped shop2 again"),
        "{message}"
    );
    assert_eq!(databases_named(&target.primary, "shop2").await, 0, "{message}");
    assert_eq!(databases_named(&target.primary, "extra2").await, 0, "{message}");

    // The dump repaired, the same restore into the same target succeeds.
    put(original).await.expect("repair");
    restores
        .create(&pp, &restore("retried", &host, "[]", renames))
        .await
        .expect("create");
    let status = finished(&restores, "retried").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{:?}", status.message);
    let want = table_sums(&source.primary, "shop").await.expect("source sums");
    assert_eq!(table_sums(&target.primary, "shop2").await.expect("sums"), want);
}
