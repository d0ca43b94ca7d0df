//! Regression tests of the failover-safety issue's smaller items: a deleted plan releases its
//! database connections; `rpo: 0s` is refused without synchronous replication and met with
//! it; the status before a failure tells the truth about a replica that stopped receiving;
//! the candidate FailoverReady names is the replica holding the most data, the one a
//! Failover promotes.

use std::time::Duration;

use kube::Api;
use kube::api::DeleteParams;
use lifeboat::api::{FailoverPhase, RecoveryPlan};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::mariadb::{MariaCluster, MariaOptions};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::tools::wait_until_async;

mod shop_common;
use shop_common::failover_ended;

fn operator(cluster: &TestCluster) -> OperatorProcess {
    OperatorProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_lifeboat")),
        cluster.kubeconfig(),
        "op",
        &[],
    )
}

async fn condition(plans: &Api<RecoveryPlan>, type_: &str) -> Option<(String, String, String)> {
    let c = plans
        .get("shop")
        .await
        .ok()?
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

async fn pg_world(options: PgOptions, plan: &PlanManifest<'_>) -> (PgCluster, TestCluster, kube::Client) {
    let pg = PgCluster::start(options).await.expect("postgres");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    let hosts: Vec<String> = std::iter::once(&pg.primary)
        .chain(&pg.replicas)
        .map(|s| s.host())
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        register_pod(&client, "default", &format!("db-{i}"), &[("app", "db")], host).await;
    }
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(plan, None));
    assert!(run.ok, "{}", run.stderr);
    (pg, cluster, client)
}

async fn lifeboat_sessions(pg: &PgCluster) -> i64 {
    pg.primary
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lifeboat'")
        .await
        .expect("count sessions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_plan_closes_its_database_connections() {
    let (pg, cluster, client) = pg_world(
        PgOptions {
            replicas: 1,
            ..PgOptions::default()
        },
        &PlanManifest::default(),
    )
    .await;
    let _operator = operator(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("Ready=True", Duration::from_secs(60), || async {
        condition(&plans, "Ready").await.filter(|c| c.0 == "True")
    })
    .await;
    assert!(lifeboat_sessions(&pg).await > 0, "the plan keeps a connection open");
    plans.delete("shop", &DeleteParams::default()).await.expect("delete");
    wait_until_async("connections closed", Duration::from_secs(30), || async {
        (lifeboat_sessions(&pg).await == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_zero_is_refused_without_synchronous_replication() {
    let plan = PlanManifest {
        objectives: "{rpo: 0s, rto: 30s}",
        ..PlanManifest::default()
    };
    let (_pg, cluster, client) = pg_world(
        PgOptions {
            replicas: 1,
            ..PgOptions::default()
        },
        &plan,
    )
    .await;
    let _operator = operator(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    let (_, reason, message) = wait_until_async("Ready=False for rpo 0s", Duration::from_secs(60), || async {
        condition(&plans, "Ready")
            .await
            .filter(|c| c.0 == "False" && c.1 == "SynchronousReplicationRequired")
    })
    .await;
    assert!(message.contains("synchronous_standby_names"), "{reason}: {message}");
    let rpo = condition(&plans, "RpoMet").await.expect("RpoMet");
    assert_eq!(
        (rpo.0.as_str(), rpo.1.as_str()),
        ("False", "SynchronousReplicationRequired"),
        "{}",
        rpo.2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_zero_is_met_with_synchronous_replication() {
    let plan = PlanManifest {
        objectives: "{rpo: 0s, rto: 30s}",
        ..PlanManifest::default()
    };
    let (_pg, cluster, client) = pg_world(
        PgOptions {
            replicas: 2,
            synchronous_standby_names: Some("ANY 1 (replica1, replica2)".into()),
            ..PgOptions::default()
        },
        &plan,
    )
    .await;
    let _operator = operator(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("Ready=True and RpoMet=True", Duration::from_secs(60), || async {
        let ready = condition(&plans, "Ready").await.filter(|c| c.0 == "True")?;
        let rpo = condition(&plans, "RpoMet")
            .await
            .filter(|c| c.0 == "True" && c.1 == "SynchronousReplication")?;
        Some((ready, rpo))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stopped_receiving_is_reported_before_the_primary_fails() {
    let plan = PlanManifest {
        failover: "{probeInterval: 500ms, failureThreshold: 3, maxDataLoss: 2s}",
        ..PlanManifest::default()
    };
    let (pg, cluster, client) = pg_world(
        PgOptions {
            replicas: 1,
            ..PgOptions::default()
        },
        &plan,
    )
    .await;
    pg.primary
        .execute(lifeboat_testkit::shop_load::PG_SCHEMA)
        .await
        .expect("schema");
    let _operator = operator(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("FailoverReady=True", Duration::from_secs(60), || async {
        condition(&plans, "FailoverReady").await.filter(|c| c.0 == "True")
    })
    .await;
    pg.replicas[0]
        .execute("ALTER SYSTEM SET primary_conninfo = ''")
        .await
        .expect("conninfo");
    pg.replicas[0].execute("SELECT pg_reload_conf()").await.expect("reload");
    // No shop writes at all: the heartbeat alone must reveal what the replica misses.
    let (_, _, message) = wait_until_async("ReplicationHealthy=False", Duration::from_secs(30), || async {
        condition(&plans, "ReplicationHealthy").await.filter(|c| c.0 == "False")
    })
    .await;
    assert!(message.contains("not receiving"), "{message}");
    let (_, reason, message) = wait_until_async("FailoverReady=False", Duration::from_secs(30), || async {
        condition(&plans, "FailoverReady").await.filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(reason, "DataLossTooHigh", "{message}");
    let status = plans.get("shop").await.expect("plan").status.expect("status");
    let replica = status.members.iter().find(|m| m.name == "db-1").expect("db-1");
    assert!(
        replica.lag_seconds.is_some_and(|l| l > 2.0),
        "data at risk grows while nothing arrives: {replica:?}"
    );
    assert!(
        status.primary_position.is_some(),
        "the primary's position is kept in status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_holding_the_most_data_is_named_and_promoted() {
    // db-1 stopped applying but receives everything; db-2 stopped receiving.
    let mut db = MariaCluster::start(MariaOptions { replicas: 2 })
        .await
        .expect("mariadb");
    db.primary.execute("CREATE DATABASE shop").await.expect("db");
    db.primary
        .execute(&format!("USE shop; {}", lifeboat_testkit::shop_load::MYSQL_SCHEMA))
        .await
        .expect("schema");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    let hosts = [db.primary.host(), db.replicas[0].host(), db.replicas[1].host()];
    for (i, host) in hosts.iter().enumerate() {
        register_pod(&client, "default", &format!("db-{i}"), &[("app", "db")], host).await;
    }
    let plan = PlanManifest {
        engine: "mysql",
        username: lifeboat_testkit::mariadb::PASSWORD_USER,
        password: lifeboat_testkit::mariadb::PASSWORD,
        port: 3306,
        failover: "{probeInterval: 500ms, failureThreshold: 3, maxDataLoss: 5s}",
        ..PlanManifest::default()
    };
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(&plan, None));
    assert!(run.ok, "{}", run.stderr);
    let _operator = operator(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("Ready=True", Duration::from_secs(60), || async {
        condition(&plans, "Ready").await.filter(|c| c.0 == "True")
    })
    .await;
    db.replicas[0].execute("STOP SLAVE SQL_THREAD").await.expect("stop sql");
    db.replicas[1].execute("STOP SLAVE IO_THREAD").await.expect("stop io");
    for i in 0..300 {
        db.primary
            .execute(&format!("INSERT INTO shop.orders_ledger (id) VALUES ({i})"))
            .await
            .expect("insert");
    }
    let (_, _, message) = wait_until_async("FailoverReady names db-1", Duration::from_secs(30), || async {
        condition(&plans, "FailoverReady")
            .await
            .filter(|c| c.0 == "True" && c.2.starts_with("db-1 "))
    })
    .await;
    let behind = wait_until_async("db-2 reported 300 orders behind", Duration::from_secs(30), || async {
        let status = plans.get("shop").await.ok()?.status?;
        let m = status.members.into_iter().find(|m| m.name == "db-2")?;
        m.lag_transactions.filter(|t| *t >= 300).map(|_| m)
    })
    .await;
    assert!(
        behind.lag_seconds.is_some(),
        "the transactions it lacks have a time bound too: {behind:?} ({message})"
    );
    let (_, _, message) = condition(&plans, "FailoverReady").await.expect("FailoverReady");
    assert!(message.starts_with("db-1 "), "still the candidate: {message}");
    db.primary.kill9().await.expect("kill");
    let done = failover_ended(&client, Duration::from_secs(60)).await;
    assert_eq!(done.phase, Some(FailoverPhase::Completed), "{:?}", done.message);
    assert_eq!(done.new_primary.as_deref(), Some("db-1"));
    let mut conn = db.replicas[0].connect().await.expect("connect");
    mysql_async::prelude::Queryable::query_drop(&mut conn, "USE shop")
        .await
        .expect("use");
    let ids = lifeboat_testkit::shop_load::mysql_order_ids(&mut conn)
        .await
        .expect("ids");
    assert_eq!(
        ids.len(),
        300,
        "the received but unapplied orders were applied, not discarded"
    );
}
