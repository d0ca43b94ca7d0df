//! Automatic failover of a MariaDB primary with two GTID replicas, through the operator.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use lifeboat::api::{Failover, FailoverPhase};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::mariadb::{MariaCluster, MariaOptions, PASSWORD, PASSWORD_USER};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::tools::wait_until_async;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_primary_killed_replica_promoted_other_follows() {
    let mut db = MariaCluster::start(MariaOptions { replicas: 2 })
        .await
        .expect("mariadb");
    db.primary.execute("CREATE DATABASE catalog").await.expect("db");
    db.primary
        .execute("CREATE TABLE catalog.products (id INT PRIMARY KEY)")
        .await
        .expect("table");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &db.primary.host()).await;
    register_pod(&client, "default", "db-1", &[("app", "db")], &db.replicas[0].host()).await;
    register_pod(&client, "default", "db-2", &[("app", "db")], &db.replicas[1].host()).await;
    let plan = PlanManifest {
        engine: "mysql",
        username: PASSWORD_USER,
        password: PASSWORD,
        port: 3306,
        ..PlanManifest::default()
    };
    let manifest = plan_manifest(&plan, None);
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok);
    let _operator = OperatorProcess::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_lifeboat")),
        cluster.kubeconfig(),
        "op",
        &[],
    );
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    wait_until_async("primary labelled", Duration::from_secs(60), || async {
        let p = pods.get("db-0").await.ok()?;
        (p.metadata.labels?.get("lifeboat.dev/role")? == "primary").then_some(())
    })
    .await;
    for id in 1..=50 {
        db.primary
            .execute(&format!("INSERT INTO catalog.products VALUES ({id})"))
            .await
            .expect("insert");
    }
    // Asynchronous replication: wait until the replicas have every row, so that any loss
    // after the kill would be lifeboat's fault, not replication's.
    for replica in &db.replicas {
        wait_until_async("replica caught up", Duration::from_secs(30), || async {
            replica
                .query_one::<i64>("SELECT COUNT(*) FROM catalog.products")
                .await
                .ok()
                .filter(|n| *n == 50)
        })
        .await;
    }
    db.primary.kill9().await.expect("kill -9 primary");

    let failovers: Api<Failover> = Api::default_namespaced(client.clone());
    let status = wait_until_async("Failover ended", Duration::from_secs(60), || async {
        let f = failovers
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()?;
        let s = f.status?;
        matches!(
            s.phase,
            Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
        )
        .then_some(s)
    })
    .await;
    assert_eq!(status.phase, Some(FailoverPhase::Completed), "{:?}", status.message);
    assert!(status.rto_seconds.is_some());
    let new = status.new_primary.expect("new primary");
    let (promoted, other) = if new == "db-1" {
        (&db.replicas[0], &db.replicas[1])
    } else {
        (&db.replicas[1], &db.replicas[0])
    };
    assert_eq!(
        promoted
            .query_one::<i64>("SELECT COUNT(*) FROM catalog.products")
            .await
            .expect("count"),
        50,
        "no acknowledged row lost"
    );
    promoted
        .execute("INSERT INTO catalog.products VALUES (1000)")
        .await
        .expect("new primary accepts writes");
    wait_until_async(
        "other replica follows the new primary",
        Duration::from_secs(30),
        || async {
            other
                .query_one::<i64>("SELECT COUNT(*) FROM catalog.products WHERE id = 1000")
                .await
                .ok()
                .filter(|n| *n == 1)
        },
    )
    .await;
    let selected = pods
        .list(&ListParams::default().labels("lifeboat.dev/role=primary"))
        .await
        .expect("list");
    let names: Vec<String> = selected.items.into_iter().filter_map(|p| p.metadata.name).collect();
    assert_eq!(names, vec![new]);
}
