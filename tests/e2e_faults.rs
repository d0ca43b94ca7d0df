//! The failover fault matrix, judged by the shop's ledger (issue: failover safety under the
//! failures shops actually meet). Engines: PostgreSQL async, PostgreSQL synchronous,
//! MariaDB. Faults: primary killed; primary hung (SIGSTOP) and thawed before, just after
//! and long after the failover; the only replica stopped receiving before the primary died;
//! the only replica stopped applying; the operator killed during the failover; the old
//! primary restarted writable; the operator cut off from the primary only (iptables).
//!
//! In every cell: acknowledged orders lost were all acknowledged within the loss bound the
//! Failover reported before the fault (and, MariaDB, are no more than its transaction
//! bound); none lost in synchronous mode; the writer Service never has two endpoints; no
//! order acknowledged after the fault is lost (the new primary's writes are never undone);
//! write unavailability stays within the RTO whenever the failover is allowed. Each cell
//! prints one row of the matrix.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use lifeboat::api::{Failover, FailoverPhase, RecoveryPlan};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::faults::{Cut, Hung, OPERATOR_UID, shared_kubeconfig};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::mariadb::{MariaCluster, MariaOptions};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::shop_load::{Ledger, PgTarget, ShopLoad, Target};
use lifeboat_testkit::tools::wait_until_async;

mod shop_common;
use shop_common::{failover_ended, orders_flow, ready_and_routed};

const RTO: Duration = Duration::from_secs(30);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    PgAsync,
    PgSync,
    Maria,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Killed,
    HungThawedBefore,
    HungThawedJustAfter,
    HungThawedLongAfter,
    ReplicaStoppedReceiving,
    ReplicaStoppedApplying,
    OperatorKilledDuringFailover,
    OldPrimaryRestartedWritable,
    OperatorCutFromPrimary,
}

impl Fault {
    fn replicas(self) -> usize {
        match self {
            Fault::ReplicaStoppedReceiving | Fault::ReplicaStoppedApplying => 1,
            _ => 2,
        }
    }

    /// Whether lifeboat must fail over (else it must not).
    fn fails_over(self) -> bool {
        !matches!(
            self,
            Fault::HungThawedBefore | Fault::OperatorCutFromPrimary | Fault::ReplicaStoppedReceiving
        )
    }
}

enum Db {
    Pg(PgCluster),
    Maria(MariaCluster),
}

impl Db {
    async fn start(engine: Engine, replicas: usize) -> Db {
        match engine {
            Engine::Maria => {
                let db = MariaCluster::start(MariaOptions { replicas }).await.expect("mariadb");
                db.primary.execute("CREATE DATABASE shop").await.expect("db");
                db.primary
                    .execute(&format!("USE shop; {}", lifeboat_testkit::shop_load::MYSQL_SCHEMA))
                    .await
                    .expect("schema");
                Db::Maria(db)
            }
            _ => {
                let names: Vec<String> = (1..=replicas).map(|i| format!("replica{i}")).collect();
                let options = PgOptions {
                    replicas,
                    synchronous_standby_names: (engine == Engine::PgSync)
                        .then(|| format!("ANY 1 ({})", names.join(", "))),
                    ..PgOptions::default()
                };
                let pg = PgCluster::start(options).await.expect("postgres");
                pg.primary
                    .execute(lifeboat_testkit::shop_load::PG_SCHEMA)
                    .await
                    .expect("schema");
                Db::Pg(pg)
            }
        }
    }

    /// Hosts: the primary first (pod db-0), then the replicas (db-1, ...).
    fn hosts(&self) -> Vec<String> {
        match self {
            Db::Pg(c) => std::iter::once(&c.primary)
                .chain(&c.replicas)
                .map(|s| s.host())
                .collect(),
            Db::Maria(c) => std::iter::once(&c.primary)
                .chain(&c.replicas)
                .map(|s| s.host())
                .collect(),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Db::Pg(_) => 5432,
            Db::Maria(_) => 3306,
        }
    }

    fn primary_pid(&self) -> u32 {
        match self {
            Db::Pg(c) => c.primary.pid(),
            Db::Maria(c) => c.primary.pid(),
        }
        .expect("primary runs")
    }

    async fn kill_primary(&mut self) {
        match self {
            Db::Pg(c) => c.primary.kill9().await.expect("kill -9"),
            Db::Maria(c) => c.primary.kill9().await.expect("kill -9"),
        }
    }

    async fn restart_primary(&mut self) {
        match self {
            Db::Pg(c) => c.primary.restart().await.expect("restart"),
            Db::Maria(c) => c.primary.restart().await.expect("restart"),
        }
    }

    /// The replica's WAL receiver / IO thread is gone; it stays a replica.
    async fn stop_receiving(&self, replica: usize) {
        match self {
            Db::Pg(c) => {
                let r = &c.replicas[replica];
                r.execute("ALTER SYSTEM SET primary_conninfo = ''")
                    .await
                    .expect("conninfo");
                r.execute("SELECT pg_reload_conf()").await.expect("reload");
            }
            Db::Maria(c) => c.replicas[replica]
                .execute("STOP SLAVE IO_THREAD")
                .await
                .expect("stop io"),
        }
    }

    async fn stop_applying(&self, replica: usize) {
        match self {
            Db::Pg(c) => c.replicas[replica]
                .execute("SELECT pg_wal_replay_pause()")
                .await
                .expect("pause"),
            Db::Maria(c) => c.replicas[replica]
                .execute("STOP SLAVE SQL_THREAD")
                .await
                .expect("stop sql"),
        }
    }

    fn target(&self, host: String) -> Target {
        match self {
            Db::Pg(_) => Target::Postgres(PgTarget {
                host,
                port: 5432,
                user: lifeboat_testkit::pg::PASSWORD_USER.into(),
                password: lifeboat_testkit::pg::PASSWORD.into(),
                dbname: "postgres".into(),
            }),
            Db::Maria(_) => Target::Mysql(PgTarget {
                host,
                port: 3306,
                user: lifeboat_testkit::mariadb::PASSWORD_USER.into(),
                password: lifeboat_testkit::mariadb::PASSWORD.into(),
                dbname: "shop".into(),
            }),
        }
    }

    /// Order ids on member `db-{index}`.
    async fn order_ids(&self, index: usize) -> HashSet<i64> {
        match self {
            Db::Pg(c) => {
                let server = if index == 0 { &c.primary } else { &c.replicas[index - 1] };
                let conn = server.connect().await.expect("connect");
                lifeboat_testkit::shop_load::pg_order_ids(&conn).await.expect("ids")
            }
            Db::Maria(c) => {
                let server = if index == 0 { &c.primary } else { &c.replicas[index - 1] };
                let mut conn = server.connect().await.expect("connect");
                mysql_async::prelude::Queryable::query_drop(&mut conn, "USE shop")
                    .await
                    .expect("use");
                lifeboat_testkit::shop_load::mysql_order_ids(&mut conn)
                    .await
                    .expect("ids")
            }
        }
    }
}

/// Samples the writer Service's endpoints until stopped: the most addresses ever seen at once.
struct EndpointWatch {
    most: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl EndpointWatch {
    fn start(client: kube::Client) -> EndpointWatch {
        let most = Arc::new(AtomicUsize::new(0));
        let seen = most.clone();
        let task = tokio::spawn(async move {
            let api: Api<Endpoints> = Api::default_namespaced(client);
            loop {
                if let Ok(e) = api.get("db").await {
                    let n: usize = e
                        .subsets
                        .iter()
                        .flatten()
                        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                        .sum();
                    seen.fetch_max(n, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        EndpointWatch { most, task }
    }

    fn stop(self) -> usize {
        self.task.abort();
        self.most.load(Ordering::SeqCst)
    }
}

struct World {
    db: Db,
    cluster: TestCluster,
    client: kube::Client,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

async fn world(engine: Engine, fault: Fault) -> World {
    let db = Db::start(engine, fault.replicas()).await;
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    for (i, host) in db.hosts().iter().enumerate() {
        register_pod(&client, "default", &format!("db-{i}"), &[("app", "db")], host).await;
    }
    let (username, password) = match engine {
        Engine::Maria => (
            lifeboat_testkit::mariadb::PASSWORD_USER,
            lifeboat_testkit::mariadb::PASSWORD,
        ),
        _ => (lifeboat_testkit::pg::PASSWORD_USER, lifeboat_testkit::pg::PASSWORD),
    };
    let plan = PlanManifest {
        engine: if engine == Engine::Maria { "mysql" } else { "postgres" },
        username,
        password,
        port: db.port(),
        failover: "{probeInterval: 500ms, failureThreshold: 3, maxDataLoss: 2s}",
        objectives: "{rpo: 1m, rto: 30s}",
        ..PlanManifest::default()
    };
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(&plan, None));
    assert!(run.ok, "{}", run.stderr);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = shared_kubeconfig(cluster.kubeconfig(), dir.path()).expect("kubeconfig copy");
    World {
        db,
        cluster,
        client,
        kubeconfig,
        _dir: dir,
    }
}

fn operator(w: &World, identity: &str, extra: &[(&str, &str)]) -> OperatorProcess {
    OperatorProcess::start_as(&exe(), &w.kubeconfig, identity, extra, Some(OPERATOR_UID))
}

async fn failovers(client: &kube::Client) -> Vec<Failover> {
    Api::<Failover>::default_namespaced(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list failovers")
        .items
}

/// Waits until the plan reports a fenced stale writer, and an event says so.
async fn stale_writer_reported(client: &kube::Client) {
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("StaleWriterFenced condition", Duration::from_secs(60), || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.conditions
            .iter()
            .find(|c| c.type_ == "StaleWriterFenced" && (c.status == "True" || c.message.contains("previously")))
            .cloned()
    })
    .await;
    let events: Api<Event> = Api::default_namespaced(client.clone());
    wait_until_async("StaleWriterFenced event", Duration::from_secs(30), || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("StaleWriterFenced"))
    })
    .await;
}

/// What happened to the shop, for the matrix row and the assertions.
struct Verdict {
    acknowledged: usize,
    lost: Vec<i64>,
    /// Seconds before the fault that the oldest lost order was acknowledged.
    lost_window: Option<f64>,
    unavailability: Option<Duration>,
}

/// `fault_at`: when the fault was injected; `switched_at`: when the test saw the failover
/// complete (both on the ledger's clock). A killed PostgreSQL postmaster's backends may
/// still acknowledge a commit for some milliseconds, so the old primary's last
/// acknowledgement is the later of the fault and the newest lost order.
fn judge(ledger: &Ledger, present: &HashSet<i64>, fault_at: Duration, switched_at: Option<Duration>) -> Verdict {
    let lost = ledger.missing(present);
    let oldest = lost.iter().filter_map(|id| ledger.acknowledged_at(*id)).min();
    let newest = lost.iter().filter_map(|id| ledger.acknowledged_at(*id)).max();
    if let (Some(newest), Some(switched)) = (newest, switched_at) {
        assert!(
            newest <= switched,
            "an order acknowledged {:?} after the failover completed is lost: the new primary's writes were undone",
            newest - switched
        );
    }
    Verdict {
        acknowledged: ledger.acknowledged.len(),
        lost_window: oldest.map(|o| (fault_at.max(newest.unwrap_or_default()).saturating_sub(o)).as_secs_f64()),
        lost,
        unavailability: ledger.unavailability(),
    }
}

async fn run_cell(engine: Engine, fault: Fault) {
    let mut w = world(engine, fault).await;
    let mut op = Some(operator(
        &w,
        "op",
        if fault == Fault::OperatorKilledDuringFailover {
            &[("LIFEBOAT_TEST_CRASH_AFTER_PHASE", "Promoting")]
        } else {
            &[]
        },
    ));
    let hosts = w.db.hosts();
    let ip = ready_and_routed(&w.client, &hosts[0]).await;
    let watch = EndpointWatch::start(w.client.clone());
    let load = ShopLoad::start(w.db.target(ip));
    orders_flow(&load, 100).await;
    // A few probe rounds under load, so lifeboat has seen the primary's write rate.
    wait_until_async("3s of shop load", Duration::from_secs(30), || async {
        (load.elapsed() >= Duration::from_secs(3)).then_some(())
    })
    .await;
    let mut hung: Option<Hung> = None;
    let mut cut: Option<Cut> = None;
    match fault {
        Fault::ReplicaStoppedReceiving => {
            w.db.stop_receiving(0).await;
            // The primary goes on acknowledging orders the replica never gets.
            let since = Instant::now();
            wait_until_async("6s of orders the replica lacks", Duration::from_secs(30), || async {
                (since.elapsed() >= Duration::from_secs(6)).then_some(())
            })
            .await;
        }
        Fault::ReplicaStoppedApplying => {
            w.db.stop_applying(0).await;
            orders_flow(&load, 200).await;
        }
        _ => {}
    }
    let fault_at = load.elapsed();
    let fault_started = Instant::now();
    match fault {
        Fault::HungThawedBefore | Fault::HungThawedJustAfter | Fault::HungThawedLongAfter => {
            hung = Some(Hung::hang(w.db.primary_pid()));
        }
        Fault::OperatorCutFromPrimary => {
            cut = Some(Cut::uid_to(OPERATOR_UID, &hosts[0], w.db.port()).expect("iptables"));
        }
        _ => w.db.kill_primary().await,
    }
    let outcome = match fault {
        Fault::HungThawedBefore => {
            // Shorter than failureThreshold x probeInterval plus the confirmation window.
            let since = Instant::now();
            wait_until_async("1s hang", Duration::from_secs(10), || async {
                (since.elapsed() >= Duration::from_secs(1)).then_some(())
            })
            .await;
            if let Some(h) = hung.as_mut() {
                h.thaw();
            }
            orders_flow(&load, 100).await;
            None
        }
        Fault::OperatorCutFromPrimary => {
            // Many detection windows long: the replicas still hear the primary.
            orders_flow(&load, 100).await;
            let since = Instant::now();
            wait_until_async("8s cut off", Duration::from_secs(30), || async {
                (since.elapsed() >= Duration::from_secs(8)).then_some(())
            })
            .await;
            drop(cut.take());
            orders_flow(&load, 50).await;
            None
        }
        Fault::OperatorKilledDuringFailover => {
            let api: Api<Failover> = Api::default_namespaced(w.client.clone());
            wait_until_async("journal at Promoting", Duration::from_secs(60), || async {
                let f = api.list(&ListParams::default()).await.ok()?.items.into_iter().next()?;
                (f.status?.phase == Some(FailoverPhase::Promoting)).then_some(())
            })
            .await;
            if let Some(mut first) = op.take() {
                first.kill();
            }
            op = Some(operator(&w, "op-2", &[]));
            Some(failover_ended(&w.client, Duration::from_secs(90)).await)
        }
        _ => Some(failover_ended(&w.client, Duration::from_secs(90)).await),
    };
    let switched_at = outcome
        .as_ref()
        .filter(|s| s.phase == Some(FailoverPhase::Completed))
        .map(|_| load.elapsed());
    if let Some(s) = &outcome
        && s.phase == Some(FailoverPhase::Completed)
    {
        match fault {
            Fault::HungThawedJustAfter => {
                if let Some(h) = hung.as_mut() {
                    h.thaw();
                }
                stale_writer_reported(&w.client).await;
            }
            Fault::HungThawedLongAfter => {
                orders_flow(&load, 200).await;
                if let Some(h) = hung.as_mut() {
                    h.thaw();
                }
                stale_writer_reported(&w.client).await;
            }
            Fault::OldPrimaryRestartedWritable => {
                w.db.restart_primary().await;
                stale_writer_reported(&w.client).await;
            }
            _ => {}
        }
        orders_flow(&load, 100).await;
    }
    let detected_after = fault_started.elapsed();
    let ledger = load.stop().await;
    let most_endpoints = watch.stop();
    drop(hung);
    let final_index = match outcome.as_ref().filter(|s| s.phase == Some(FailoverPhase::Completed)) {
        Some(s) => s
            .new_primary
            .as_deref()
            .and_then(|n| n.strip_prefix("db-"))
            .and_then(|n| n.parse().ok())
            .expect("new primary name"),
        None => 0,
    };
    if final_index == 0 && fault.fails_over() {
        panic!(
            "{engine:?}/{fault:?}: expected a failover, got {:?}",
            outcome.map(|s| (s.phase, s.message))
        );
    }
    let verdict = if final_index == 0 && matches!(outcome.as_ref().and_then(|s| s.phase), Some(FailoverPhase::Refused))
    {
        // Refused with the primary dead: nothing was promoted, nothing acknowledged is gone
        // (it is all on the dead primary's disk); count against it anyway once restarted.
        w.db.restart_primary().await;
        judge(&ledger, &w.db.order_ids(0).await, fault_at, switched_at)
    } else {
        judge(&ledger, &w.db.order_ids(final_index).await, fault_at, switched_at)
    };
    let bound = outcome.as_ref().and_then(|s| s.estimated_data_loss_seconds);
    let bound_units = outcome
        .as_ref()
        .and_then(|s| s.estimated_data_loss_transactions.or(s.estimated_data_loss_bytes));
    println!(
        "MATRIX | {engine:?} | {fault:?} | acknowledged {} | lost {} | reported bound {} s / {} units | phase {:?} | unavailability {} | endpoints at once {most_endpoints} | until checks {:.1}s",
        verdict.acknowledged,
        verdict.lost.len(),
        bound.map_or("-".into(), |b| format!("{b:.2}")),
        bound_units.map_or("-".into(), |u| u.to_string()),
        outcome.as_ref().and_then(|s| s.phase),
        verdict
            .unavailability
            .map_or("none".into(), |u| format!("{:.2}s", u.as_secs_f64())),
        detected_after.as_secs_f64(),
    );
    assert!(
        most_endpoints <= 1,
        "the writer Service had {most_endpoints} endpoints at once"
    );
    if !fault.fails_over() {
        let completed = failovers(&w.client)
            .await
            .into_iter()
            .filter(|f| f.status.as_ref().and_then(|s| s.phase) == Some(FailoverPhase::Completed))
            .count();
        assert_eq!(completed, 0, "{fault:?}: no failover may happen");
        assert!(verdict.lost.is_empty(), "{fault:?}: lost {:?}", verdict.lost);
    }
    if fault == Fault::ReplicaStoppedReceiving {
        let s = outcome.as_ref().expect("a failover was requested");
        assert_eq!(s.phase, Some(FailoverPhase::Refused), "{:?}", s.message);
        let bound = s.estimated_data_loss_seconds.expect("a bound");
        assert!(bound >= 6.0, "the replica stopped receiving 6s before: bound {bound}");
    }
    if let Some(s) = outcome.as_ref().filter(|s| s.phase == Some(FailoverPhase::Completed)) {
        let bound = s
            .estimated_data_loss_seconds
            .expect("a completed unforced failover has a bound");
        if let Some(window) = verdict.lost_window {
            assert!(
                window <= bound,
                "lost orders acknowledged {window:.2}s before the fault, bound reported {bound:.2}s"
            );
        }
        if engine == Engine::Maria
            && let Some(units) = s.estimated_data_loss_transactions
        {
            assert!(
                verdict.lost.len() as u64 <= units,
                "{} lost > bound {units}",
                verdict.lost.len()
            );
        }
        if engine == Engine::PgSync {
            assert!(verdict.lost.is_empty(), "synchronous: lost {:?}", verdict.lost);
        }
        let unavailable = verdict.unavailability.unwrap_or_default();
        assert!(
            unavailable <= RTO,
            "writes unavailable for {unavailable:?}, RTO {RTO:?}"
        );
        let rto = s.rto_seconds.expect("measured RTO");
        assert!(rto <= RTO.as_secs_f64(), "measured RTO {rto}");
    }
    drop(op);
    drop(w.cluster);
}

macro_rules! cells {
    ($($name:ident: $engine:ident, $fault:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run_cell(Engine::$engine, Fault::$fault).await;
            }
        )*
    };
}

cells! {
    pg_async_killed: PgAsync, Killed;
    pg_sync_killed: PgSync, Killed;
    maria_killed: Maria, Killed;
    pg_async_hung_thawed_before: PgAsync, HungThawedBefore;
    pg_sync_hung_thawed_before: PgSync, HungThawedBefore;
    maria_hung_thawed_before: Maria, HungThawedBefore;
    pg_async_hung_thawed_just_after: PgAsync, HungThawedJustAfter;
    pg_sync_hung_thawed_just_after: PgSync, HungThawedJustAfter;
    maria_hung_thawed_just_after: Maria, HungThawedJustAfter;
    pg_async_hung_thawed_long_after: PgAsync, HungThawedLongAfter;
    pg_sync_hung_thawed_long_after: PgSync, HungThawedLongAfter;
    maria_hung_thawed_long_after: Maria, HungThawedLongAfter;
    pg_async_replica_stopped_receiving: PgAsync, ReplicaStoppedReceiving;
    pg_sync_replica_stopped_receiving: PgSync, ReplicaStoppedReceiving;
    maria_replica_stopped_receiving: Maria, ReplicaStoppedReceiving;
    pg_async_replica_stopped_applying: PgAsync, ReplicaStoppedApplying;
    pg_sync_replica_stopped_applying: PgSync, ReplicaStoppedApplying;
    maria_replica_stopped_applying: Maria, ReplicaStoppedApplying;
    pg_async_operator_killed_during_failover: PgAsync, OperatorKilledDuringFailover;
    pg_sync_operator_killed_during_failover: PgSync, OperatorKilledDuringFailover;
    maria_operator_killed_during_failover: Maria, OperatorKilledDuringFailover;
    pg_async_old_primary_restarted_writable: PgAsync, OldPrimaryRestartedWritable;
    pg_sync_old_primary_restarted_writable: PgSync, OldPrimaryRestartedWritable;
    maria_old_primary_restarted_writable: Maria, OldPrimaryRestartedWritable;
    pg_async_operator_cut_from_primary: PgAsync, OperatorCutFromPrimary;
    pg_sync_operator_cut_from_primary: PgSync, OperatorCutFromPrimary;
    maria_operator_cut_from_primary: Maria, OperatorCutFromPrimary;
}
