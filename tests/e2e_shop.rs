//! End to end, judged by the shop's ledger: orders placed through the writer Service
//! (kube-sandbox's service proxy) while the primary is killed; afterwards, how long the shop
//! could not write and which acknowledged orders are missing from the new primary.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use kube::Api;
use lifeboat::api::{FailoverPhase, RecoveryPlan};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::shop_load::{Ledger, PgTarget, ShopLoad, Target};
use lifeboat_testkit::tools::wait_until_async;

mod shop_common;
use shop_common::{failover_ended, orders_flow, ready_and_routed};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

/// Registers `hosts` as pods db-0 (the primary), db-1, ... and applies the plan.
async fn setup(cluster: &TestCluster, hosts: &[String], plan: &PlanManifest<'_>) -> kube::Client {
    let client = cluster.sandbox.client().await;
    for (i, host) in hosts.iter().enumerate() {
        register_pod(&client, "default", &format!("db-{i}"), &[("app", "db")], host).await;
    }
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(plan, None));
    assert!(run.ok, "{}", run.stderr);
    client
}

fn report(what: &str, ledger: &Ledger, present: &HashSet<i64>) {
    println!(
        "{what}: {} acknowledged, {} lost (first ids {:?}), write unavailability {:?}",
        ledger.acknowledged.len(),
        ledger.missing(present).len(),
        ledger.missing(present).iter().take(10).collect::<Vec<_>>(),
        ledger.unavailability()
    );
}

/// A PostgreSQL primary with two replicas behind the writer Service; the shop writes; the
/// primary is killed; lifeboat fails over. Returns the ledger and the ids on the new primary.
async fn pg_failover_under_load(
    options: lifeboat_testkit::pg::PgOptions,
    plan: &PlanManifest<'_>,
    what: &str,
) -> (Ledger, HashSet<i64>) {
    use lifeboat_testkit::pg::{PASSWORD, PASSWORD_USER, PgCluster};
    let mut pg = PgCluster::start(options).await.expect("postgres");
    pg.primary
        .execute(lifeboat_testkit::shop_load::PG_SCHEMA)
        .await
        .expect("schema");
    let cluster = TestCluster::with_crds().await;
    let hosts = [pg.primary.host(), pg.replicas[0].host(), pg.replicas[1].host()];
    let client = setup(&cluster, &hosts, plan).await;
    let _operator = OperatorProcess::start(&exe(), cluster.kubeconfig(), "op", &[]);
    let ip = ready_and_routed(&client, &hosts[0]).await;
    let target = PgTarget {
        host: ip,
        port: 5432,
        user: PASSWORD_USER.into(),
        password: PASSWORD.into(),
        dbname: "postgres".into(),
    };
    let load = ShopLoad::start(Target::Postgres(target));
    orders_flow(&load, 100).await;
    pg.primary.stop_immediate().await.expect("kill primary");
    let outcome = failover_ended(&client, Duration::from_secs(60)).await;
    assert_eq!(outcome.phase, Some(FailoverPhase::Completed), "{:?}", outcome.message);
    orders_flow(&load, 100).await;
    let ledger = load.stop().await;
    let promoted = if outcome.new_primary.as_deref() == Some("db-1") {
        &pg.replicas[0]
    } else {
        &pg.replicas[1]
    };
    let connection = promoted.connect().await.expect("connect");
    let present = lifeboat_testkit::shop_load::pg_order_ids(&connection)
        .await
        .expect("ids");
    report(what, &ledger, &present);
    (ledger, present)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unplanned_failover_loses_at_most_a_tail() {
    let options = lifeboat_testkit::pg::PgOptions {
        replicas: 2,
        ..Default::default()
    };
    let plan = PlanManifest {
        failover: "{probeInterval: 1s, failureThreshold: 3}",
        ..PlanManifest::default()
    };
    let (ledger, present) = pg_failover_under_load(options, &plan, "postgres failover").await;
    assert!(
        ledger.loss_is_a_tail(&present),
        "only orders after the replica's last received position may be lost"
    );
    // Asynchronous streaming on loopback: at most the commits in flight when the primary died.
    assert!(
        ledger.missing(&present).len() <= 5,
        "{} lost",
        ledger.missing(&present).len()
    );
    assert!(
        ledger.unavailability().is_some_and(|d| d < Duration::from_secs(10)),
        "{:?}",
        ledger.unavailability()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_synchronous_replication_loses_nothing() {
    let options = lifeboat_testkit::pg::PgOptions {
        replicas: 2,
        synchronous_standby_names: Some("ANY 1 (replica1, replica2)".into()),
        ..Default::default()
    };
    let (ledger, present) =
        pg_failover_under_load(options, &PlanManifest::default(), "postgres synchronous failover").await;
    assert_eq!(
        ledger.missing(&present),
        Vec::<i64>::new(),
        "RPO = 0: no acknowledged order lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_unplanned_failover_loses_at_most_a_tail() {
    use lifeboat_testkit::mariadb::{MariaCluster, MariaOptions, PASSWORD, PASSWORD_USER};
    let mut db = MariaCluster::start(MariaOptions { replicas: 2 })
        .await
        .expect("mariadb");
    db.primary.execute("CREATE DATABASE shop").await.expect("db");
    db.primary
        .execute(&format!("USE shop; {}", lifeboat_testkit::shop_load::MYSQL_SCHEMA))
        .await
        .expect("schema");
    let cluster = TestCluster::with_crds().await;
    let hosts = [db.primary.host(), db.replicas[0].host(), db.replicas[1].host()];
    let plan = PlanManifest {
        engine: "mysql",
        username: PASSWORD_USER,
        password: PASSWORD,
        port: 3306,
        ..PlanManifest::default()
    };
    let client = setup(&cluster, &hosts, &plan).await;
    let _operator = OperatorProcess::start(&exe(), cluster.kubeconfig(), "op", &[]);
    let ip = ready_and_routed(&client, &hosts[0]).await;
    let load = ShopLoad::start(Target::Mysql(PgTarget {
        host: ip,
        port: 3306,
        user: PASSWORD_USER.into(),
        password: PASSWORD.into(),
        dbname: "shop".into(),
    }));
    orders_flow(&load, 100).await;
    db.primary.kill9().await.expect("kill -9 primary");
    let outcome = failover_ended(&client, Duration::from_secs(60)).await;
    assert_eq!(outcome.phase, Some(FailoverPhase::Completed), "{:?}", outcome.message);
    orders_flow(&load, 100).await;
    let ledger = load.stop().await;
    let promoted = if outcome.new_primary.as_deref() == Some("db-1") {
        &db.replicas[0]
    } else {
        &db.replicas[1]
    };
    let mut conn = promoted.connect().await.expect("connect");
    mysql_async::prelude::Queryable::query_drop(&mut conn, "USE shop")
        .await
        .expect("use");
    let present = lifeboat_testkit::shop_load::mysql_order_ids(&mut conn)
        .await
        .expect("ids");
    report("mariadb failover", &ledger, &present);
    assert!(ledger.loss_is_a_tail(&present));
    assert!(
        ledger.missing(&present).len() <= 5,
        "{} lost",
        ledger.missing(&present).len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_guard_shop_sees_failed_writes_not_silent_loss() {
    use lifeboat_testkit::pg::{PASSWORD, PASSWORD_USER, PgCluster, PgOptions};
    let mut pg = PgCluster::start(PgOptions {
        replicas: 1,
        ..PgOptions::default()
    })
    .await
    .expect("postgres");
    pg.primary
        .execute(lifeboat_testkit::shop_load::PG_SCHEMA)
        .await
        .expect("schema");
    let cluster = TestCluster::with_crds().await;
    let hosts = [pg.primary.host(), pg.replicas[0].host()];
    let plan = PlanManifest {
        failover: "{probeInterval: 500ms, failureThreshold: 3, maxDataLoss: 2s}",
        ..PlanManifest::default()
    };
    let client = setup(&cluster, &hosts, &plan).await;
    let _operator = OperatorProcess::start(&exe(), cluster.kubeconfig(), "op", &[]);
    let ip = ready_and_routed(&client, &hosts[0]).await;
    let load = ShopLoad::start(Target::Postgres(PgTarget {
        host: ip,
        port: 5432,
        user: PASSWORD_USER.into(),
        password: PASSWORD.into(),
        dbname: "postgres".into(),
    }));
    // The replica stops receiving (its WAL receiver is gone): the primary goes on
    // acknowledging orders it never gets. (A replica that only stopped applying holds them:
    // promotion drains it, so that is no reason to refuse.)
    pg.replicas[0]
        .execute("ALTER SYSTEM SET primary_conninfo = ''")
        .await
        .expect("conninfo");
    pg.replicas[0].execute("SELECT pg_reload_conf()").await.expect("reload");
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("replica lag above maxDataLoss", Duration::from_secs(30), || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.members
            .iter()
            .find(|m| m.name == "db-1")?
            .lag_seconds
            .filter(|l| *l > 3.0)
    })
    .await;
    pg.primary.stop_immediate().await.expect("kill primary");
    let outcome = failover_ended(&client, Duration::from_secs(60)).await;
    assert_eq!(outcome.phase, Some(FailoverPhase::Refused), "{:?}", outcome.message);
    // While refused, nothing the shop writes is acknowledged (no silent loss).
    let at_refusal = load.acknowledged();
    let blocked = wait_until_async("FailoverBlocked", Duration::from_secs(20), || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.conditions
            .into_iter()
            .find(|c| c.type_ == "FailoverBlocked" && c.status == "True")
    })
    .await;
    assert_eq!(
        load.acknowledged(),
        at_refusal,
        "writes fail instead: {}",
        blocked.message
    );
    let ledger = load.stop().await;
    assert!(ledger.failures.len() > 1, "the shop saw its writes fail");
    assert!(
        pg.replicas[0]
            .query_one::<bool>("SELECT pg_is_in_recovery()")
            .await
            .expect("query"),
        "no promotion"
    );
}
