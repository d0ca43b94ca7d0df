//! Failover safety with real PostgreSQL: the RPO guard refuses a lossy promotion until a
//! person forces it; a switchover under writes loses nothing; an operator killed between
//! fencing and promotion is finished by its successor with exactly one promotion.

use std::path::PathBuf;
use std::time::Duration;

use kube::Api;
use kube::api::{ListParams, PostParams};
use lifeboat::api::{Failover, FailoverPhase, FailoverStatus, RecoveryPlan};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::{PASSWORD, PASSWORD_USER, PgCluster, PgOptions};
use lifeboat_testkit::shop_load::{PG_SCHEMA, PgTarget, ShopLoad, pg_order_ids};
use lifeboat_testkit::tools::wait_until_async;

fn manifest(max_data_loss: &str) -> String {
    let failover = format!("{{probeInterval: 500ms, failureThreshold: 3, maxDataLoss: {max_data_loss}}}");
    plan_manifest(
        &PlanManifest {
            failover: &failover,
            ..PlanManifest::default()
        },
        None,
    )
}

struct World {
    pg: PgCluster,
    cluster: TestCluster,
    client: kube::Client,
}

async fn world(replicas: usize, max_data_loss: &str) -> World {
    let pg = PgCluster::start(PgOptions {
        replicas,
        ..PgOptions::default()
    })
    .await
    .expect("postgres");
    pg.primary.execute(PG_SCHEMA).await.expect("schema");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    for (i, r) in pg.replicas.iter().enumerate() {
        register_pod(
            &client,
            "default",
            &format!("db-{}", i + 1),
            &[("app", "db")],
            &r.host(),
        )
        .await;
    }
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest(max_data_loss));
    assert!(run.ok, "{}", run.stderr);
    World { pg, cluster, client }
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

async fn ready(plans: &Api<RecoveryPlan>) {
    wait_until_async("plan Ready", Duration::from_secs(60), || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
}

async fn ended(api: &Api<Failover>, name: &str) -> FailoverStatus {
    wait_until_async(&format!("Failover {name} ended"), Duration::from_secs(60), || async {
        let s = api.get(name).await.ok()?.status?;
        matches!(
            s.phase,
            Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
        )
        .then_some(s)
    })
    .await
}

async fn first_failover(api: &Api<Failover>) -> String {
    wait_until_async("a Failover", Duration::from_secs(30), || async {
        api.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()?
            .metadata
            .name
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_failover_is_refused_until_forced() {
    let mut w = world(1, "2s").await;
    let _operator = OperatorProcess::start(&exe(), w.cluster.kubeconfig(), "op", &[]);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(w.client.clone());
    ready(&plans).await;

    // The replica stops receiving while the shop keeps writing, until what it lacks is past
    // maxDataLoss. (Stopped applying would not do: promotion applies what was received.)
    w.pg.replicas[0]
        .execute("ALTER SYSTEM SET primary_conninfo = ''")
        .await
        .expect("conninfo");
    w.pg.replicas[0]
        .execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");
    let mut id = 0i64;
    wait_until_async("replica lag above maxDataLoss", Duration::from_secs(30), || {
        id += 1;
        let (primary, plans) = (&w.pg.primary, &plans);
        let sql = format!("INSERT INTO orders_ledger (id) VALUES ({id})");
        async move {
            primary.execute(&sql).await.ok()?;
            let s = plans.get("shop").await.ok()?.status?;
            s.members
                .iter()
                .find(|m| m.name == "db-1")?
                .lag_seconds
                .filter(|l| *l > 3.0)
        }
    })
    .await;
    w.pg.primary.stop_immediate().await.expect("kill primary");

    let failovers: Api<Failover> = Api::default_namespaced(w.client.clone());
    let auto = first_failover(&failovers).await;
    let status = ended(&failovers, &auto).await;
    assert_eq!(status.phase, Some(FailoverPhase::Refused), "{:?}", status.message);
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("maxDataLoss 2.0s") && message.contains("db-1"),
        "numbers in the message: {message}"
    );
    let blocked = wait_until_async("FailoverBlocked=True", Duration::from_secs(20), || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.conditions
            .into_iter()
            .find(|c| c.type_ == "FailoverBlocked" && c.status == "True")
    })
    .await;
    assert!(blocked.message.contains("maxDataLoss"), "{}", blocked.message);
    let events = w.cluster.kubectl_ok(&["get", "events.events.k8s.io", "-o", "json"]);
    assert!(
        events.contains("FailoverRefused") && events.contains("Warning"),
        "a Warning event FailoverRefused"
    );
    assert!(
        w.pg.replicas[0]
            .query_one::<bool>("SELECT pg_is_in_recovery()")
            .await
            .expect("query"),
        "nothing was promoted"
    );

    // A person accepts the loss: a forced Failover completes.
    let forced: Failover = serde_yaml::from_str("apiVersion: lifeboat.dev/v1alpha1\nkind: Failover\nmetadata: {name: forced}\nspec: {plan: shop, force: true}\n").expect("yaml");
    failovers.create(&PostParams::default(), &forced).await.expect("create");
    let status = ended(&failovers, "forced").await;
    assert_eq!(status.phase, Some(FailoverPhase::Completed), "{:?}", status.message);
    w.pg.replicas[0]
        .execute("INSERT INTO orders_ledger (id) VALUES (-1)")
        .await
        .expect("writable after forced failover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_writes_loses_nothing() {
    let w = world(1, "10s").await;
    let _operator = OperatorProcess::start(&exe(), w.cluster.kubeconfig(), "op", &[]);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(w.client.clone());
    ready(&plans).await;
    let service: k8s_openapi::api::core::v1::Service =
        Api::default_namespaced(w.client.clone()).get("db").await.expect("svc");
    let cluster_ip = service.spec.and_then(|s| s.cluster_ip).expect("clusterIP");
    let load = ShopLoad::start_pg(PgTarget {
        host: cluster_ip,
        port: 5432,
        user: PASSWORD_USER.into(),
        password: PASSWORD.into(),
        dbname: "postgres".into(),
    });
    wait_until_async(
        "orders flowing through the Service",
        Duration::from_secs(20),
        || async { (load.acknowledged() > 20).then_some(()) },
    )
    .await;

    let failovers: Api<Failover> = Api::default_namespaced(w.client.clone());
    let request: Failover = serde_yaml::from_str("apiVersion: lifeboat.dev/v1alpha1\nkind: Failover\nmetadata: {name: planned}\nspec: {plan: shop, type: Switchover}\n").expect("yaml");
    failovers
        .create(&PostParams::default(), &request)
        .await
        .expect("create");
    let status = ended(&failovers, "planned").await;
    assert_eq!(status.phase, Some(FailoverPhase::Completed), "{:?}", status.message);
    assert_eq!(status.new_primary.as_deref(), Some("db-1"));
    let before = load.acknowledged();
    wait_until_async(
        "orders flow again on the new primary",
        Duration::from_secs(20),
        || async { (load.acknowledged() > before + 20).then_some(()) },
    )
    .await;
    let ledger = load.stop().await;
    let present = pg_order_ids(&w.pg.replicas[0].connect().await.expect("connect"))
        .await
        .expect("ids");
    assert_eq!(
        ledger.missing(&present),
        Vec::<i64>::new(),
        "a switchover loses no acknowledged order"
    );
    println!(
        "switchover: {} orders acknowledged, write unavailability {:?}",
        ledger.acknowledged.len(),
        ledger.unavailability()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_between_fencing_and_promotion_is_finished_by_its_successor() {
    let mut w = world(2, "10s").await;
    let mut first = OperatorProcess::start(
        &exe(),
        w.cluster.kubeconfig(),
        "op-a",
        &[("LIFEBOAT_TEST_CRASH_AFTER_PHASE", "Promoting")],
    );
    let plans: Api<RecoveryPlan> = Api::default_namespaced(w.client.clone());
    ready(&plans).await;
    w.pg.primary.stop_immediate().await.expect("kill primary");

    let failovers: Api<Failover> = Api::default_namespaced(w.client.clone());
    let name = first_failover(&failovers).await;
    // The first operator dies having journaled "Promoting" but before promoting.
    let journaled = wait_until_async("journal at Promoting", Duration::from_secs(60), || async {
        let s = failovers.get(&name).await.ok()?.status?;
        (s.phase == Some(FailoverPhase::Promoting)).then_some(s)
    })
    .await;
    first.kill();
    let candidate = journaled.new_primary.clone().expect("candidate");
    assert!(
        journaled
            .steps
            .iter()
            .any(|s| s.name == "drain" && s.finished_at.is_none()),
        "{:?}",
        journaled.steps
    );

    let _second = OperatorProcess::start(&exe(), w.cluster.kubeconfig(), "op-b", &[]);
    let status = ended(&failovers, &name).await;
    assert_eq!(status.phase, Some(FailoverPhase::Completed), "{:?}", status.message);
    assert_eq!(
        status.new_primary.as_deref(),
        Some(candidate.as_str()),
        "the same Failover, the same candidate"
    );
    assert_eq!(
        status.steps.iter().filter(|s| s.name == "promote").count(),
        1,
        "{:?}",
        status.steps
    );
    // Exactly one promotion: the candidate is writable, the other replica still recovers.
    let (promoted, other) = if candidate == "db-1" {
        (&w.pg.replicas[0], &w.pg.replicas[1])
    } else {
        (&w.pg.replicas[1], &w.pg.replicas[0])
    };
    assert!(
        !promoted
            .query_one::<bool>("SELECT pg_is_in_recovery()")
            .await
            .expect("query")
    );
    assert!(
        other
            .query_one::<bool>("SELECT pg_is_in_recovery()")
            .await
            .expect("query"),
        "the other replica was not promoted too"
    );
    let all: Vec<Failover> = failovers.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(all.len(), 1, "no second failover was started");
}
