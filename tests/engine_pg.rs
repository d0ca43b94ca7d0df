//! PostgreSQL engine against real PostgreSQL 15 primaries and streaming replicas.
//! Timings are printed (run with `--nocapture`), never asserted.

use std::time::{Duration, Instant};

use lifeboat::engine::position::compare;
use lifeboat::engine::{Comparison, Credentials, EngineConfig, Failure, Member, PostgresEngine, Probe, Role, Timeouts};
use lifeboat_testkit::pg::server::wait_until;
use lifeboat_testkit::pg::{self, PgCluster, PgOptions, PgServer, shop};

const WAIT: Duration = Duration::from_secs(30);

fn engine() -> PostgresEngine {
    PostgresEngine::new(EngineConfig {
        credentials: Credentials::new(pg::PASSWORD_USER, pg::PASSWORD),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            operation: Duration::from_secs(3),
            promote: Duration::from_secs(30),
            probe: Duration::from_secs(3),
        },
        ..Default::default()
    })
}

fn member(server: &PgServer) -> Member {
    Member::new(server.name(), server.host(), server.port())
}

async fn cluster(replicas: usize) -> PgCluster {
    let cluster = PgCluster::start(PgOptions {
        replicas,
        ..Default::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .primary
        .execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
        .await
        .unwrap();
    cluster
}

async fn probe_until(engine: &PostgresEngine, m: &Member, what: &str, cond: impl Fn(&Probe) -> bool) -> Probe {
    wait_until(what, WAIT, || async {
        let p = engine.probe(m).await?;
        Ok(cond(&p).then_some(p))
    })
    .await
    .unwrap()
}

async fn insert_orders(server: &PgServer, n: usize) {
    let client = server.connect().await.unwrap();
    for i in 0..n {
        client
            .execute("INSERT INTO orders (note) VALUES ($1)", &[&format!("order {i}")])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn lag_grows_while_replay_is_paused_and_returns_to_zero() {
    let c = cluster(1).await;
    let e = engine();
    let (primary, replica) = (member(&c.primary), member(&c.replicas[0]));
    insert_orders(&c.primary, 10).await;

    let caught_up = probe_until(&e, &replica, "lag 0", |p| p.lag_bytes == Some(0)).await;
    assert_eq!(caught_up.role, Role::Replica);
    assert_eq!(caught_up.lag_seconds, Some(0.0));
    let upstream = caught_up.upstream.clone().unwrap();
    assert!(upstream.receiving && upstream.applying, "{upstream:?}");
    assert_eq!(upstream.host.as_deref(), Some(c.primary.host().as_str()));
    let p = e.probe(&primary).await.unwrap();
    assert_eq!(p.role, Role::Primary);
    assert!(!p.read_only);
    assert_eq!(compare(&p.position, &caught_up.position), Comparison::Equal);

    c.replicas[0].execute("SELECT pg_wal_replay_pause()").await.unwrap();
    probe_until(&e, &replica, "replay paused", |p| {
        p.upstream.as_ref().is_some_and(|u| !u.applying)
    })
    .await;
    insert_orders(&c.primary, 20).await;
    let lagging = probe_until(&e, &replica, "lag > 0", |p| p.lag_bytes > Some(0)).await;
    insert_orders(&c.primary, 50).await;
    let first = lagging.lag_bytes.unwrap();
    let more = probe_until(&e, &replica, "lag grows", |p| p.lag_bytes > Some(first)).await;
    let primary_now = e.probe(&primary).await.unwrap();
    println!(
        "pg lag while paused: {first} B then {} B, lag_seconds {:?}",
        more.lag_bytes.unwrap(),
        more.lag_seconds
    );
    assert!(more.lag_seconds.is_some_and(|s| s >= 0.0));
    assert_eq!(compare(&primary_now.position, &caught_up.position), Comparison::Ahead);
    assert_eq!(compare(&caught_up.position, &primary_now.position), Comparison::Behind);
    assert_eq!(compare(&more.position, &caught_up.position), Comparison::Ahead);

    c.replicas[0].execute("SELECT pg_wal_replay_resume()").await.unwrap();
    let resumed = probe_until(&e, &replica, "lag back to 0", |p| p.lag_bytes == Some(0)).await;
    assert_eq!(resumed.lag_seconds, Some(0.0));
    let n: i64 = c.replicas[0].query_one("SELECT count(*) FROM orders").await.unwrap();
    assert_eq!(n, 80);
}

#[tokio::test]
async fn abrupt_stop_is_unreachable_and_replica_loses_upstream() {
    let mut c = cluster(1).await;
    let e = engine();
    let (primary, replica) = (member(&c.primary), member(&c.replicas[0]));
    e.probe(&primary).await.unwrap();
    probe_until(&e, &replica, "streaming", |p| {
        p.upstream.as_ref().is_some_and(|u| u.receiving)
    })
    .await;

    c.primary.stop_immediate().await.unwrap();
    let started = Instant::now();
    let err = e.probe(&primary).await.unwrap_err();
    println!(
        "pg probe of stopped primary failed after {:?}: {err}",
        started.elapsed()
    );
    assert!(err.failure.is_unreachable(), "{err}");
    assert_eq!(err.member, "primary");

    let lost = probe_until(&e, &replica, "upstream lost", |p| {
        p.upstream.as_ref().is_some_and(|u| !u.receiving)
    })
    .await;
    println!(
        "pg replica reported upstream lost {:?} after the stop: {:?}",
        started.elapsed(),
        lost.upstream
    );
    assert_eq!(lost.role, Role::Replica);
}

#[tokio::test]
async fn promote_makes_replica_writable_and_is_idempotent() {
    let c = cluster(1).await;
    let e = engine();
    let replica = member(&c.replicas[0]);
    probe_until(&e, &replica, "streaming", |p| p.lag_bytes == Some(0)).await;

    let started = Instant::now();
    let promoted = e.promote(&replica).await.unwrap();
    let took = started.elapsed();
    println!("pg promote took {took:?}");
    assert!(!promoted.already_primary);
    c.replicas[0]
        .execute("INSERT INTO orders (note) VALUES ('after promote')")
        .await
        .expect("promoted replica accepts writes");
    let probe = e.probe(&replica).await.unwrap();
    assert_eq!(probe.role, Role::Primary);
    assert!(!probe.read_only);

    let again = e.promote(&replica).await.unwrap();
    assert!(again.already_primary, "second promote is a no-op");
}

#[tokio::test]
async fn failover_promotes_one_replica_and_repoints_the_other() {
    let mut c = cluster(2).await;
    let e = engine();
    let (a, b) = (member(&c.replicas[0]), member(&c.replicas[1]));
    insert_orders(&c.primary, 5).await;
    let pa = probe_until(&e, &a, "A caught up", |p| p.lag_bytes == Some(0)).await;
    let pb = probe_until(&e, &b, "B caught up", |p| p.lag_bytes == Some(0)).await;
    c.primary.kill9().await.unwrap();
    let killed = Instant::now();

    probe_until(&e, &a, "A lost upstream", |p| {
        p.upstream.as_ref().is_some_and(|u| !u.receiving)
    })
    .await;
    assert!(compare(&pa.position, &pb.position).at_least());
    e.promote(&a).await.unwrap();
    let writable = killed.elapsed();
    let repoint = e.repoint(&b, &a).await.unwrap();
    assert!(!repoint.restart_required);
    c.replicas[0]
        .execute("INSERT INTO orders (note) VALUES ('written on A')")
        .await
        .unwrap();
    wait_until("row from A on B", WAIT, || async {
        let n: i64 = c.replicas[1]
            .query_one("SELECT count(*) FROM orders WHERE note = 'written on A'")
            .await?;
        Ok((n == 1).then_some(()))
    })
    .await
    .unwrap();
    println!(
        "pg failover: kill -> A writable {writable:?}, kill -> row on B {:?}",
        killed.elapsed()
    );
    let pb = probe_until(&e, &b, "B streams from A", |p| {
        p.upstream.as_ref().is_some_and(|u| u.receiving)
    })
    .await;
    assert_eq!(pb.upstream.unwrap().host, Some(a.host.clone()));
    let pa = e.probe(&a).await.unwrap();
    assert!(compare(&pa.position, &pb.position).at_least());
}

#[tokio::test]
async fn fence_refuses_later_writes_and_ends_sessions() {
    let c = cluster(0).await;
    let e = engine();
    let primary = member(&c.primary);
    let old_session = c.primary.connect().await.unwrap();
    old_session.execute("SELECT 1", &[]).await.unwrap();

    let fenced = e.fence(&primary).await.unwrap();
    assert!(fenced.reachable && fenced.confirmed, "{fenced:?}");
    assert!(fenced.sessions_terminated >= 1);
    assert!(old_session.execute("SELECT 1", &[]).await.is_err());
    let err = c
        .primary
        .execute("INSERT INTO orders (note) VALUES ('after fence')")
        .await
        .unwrap_err();
    let db = err.root_cause().to_string();
    assert!(db.contains("read-only transaction"), "{db}");
    assert!(e.probe(&primary).await.unwrap().read_only);

    // Promoting a fenced primary (switching back to it) lifts the fence.
    let unfenced = e.promote(&primary).await.unwrap();
    assert!(!unfenced.already_primary);
    c.primary
        .execute("INSERT INTO orders (note) VALUES ('after unfence')")
        .await
        .unwrap();
}

#[tokio::test]
async fn shop_dump_restores_with_same_counts_and_checksums() {
    let source = cluster(0).await;
    let target = PgCluster::start(PgOptions::default()).await.unwrap();
    shop::create_shop(&source.primary, "shop", shop::ShopSize::SMALL)
        .await
        .unwrap();
    let e = engine();
    let (src, dst) = (member(&source.primary), member(&target.primary));

    let mut dump = e.dump(&src, "shop").await.unwrap();
    let Some(lifeboat::engine::Position::Postgres(pos)) = dump.position.clone() else {
        panic!("dump position is a PG position");
    };
    let after = e.probe(&src).await.unwrap();
    let lifeboat::engine::Position::Postgres(now) = after.position else {
        panic!()
    };
    assert!(pos.current.is_some() && pos.current <= now.current);
    let out = dump.command.output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.starts_with(b"PGDMP"));

    assert!(e.create_database(&dst, "shop_restored").await.unwrap());
    assert!(!e.create_database(&dst, "shop_restored").await.unwrap());
    let mut restore = e.restore(&dst, "shop_restored").unwrap();
    let mut child = restore
        .command
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &out.stdout)
        .await
        .unwrap();
    drop(stdin);
    let restored = child.wait_with_output().await.unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    let before = shop::table_sums(&source.primary, "shop").await.unwrap();
    let after = shop::table_sums(&target.primary, "shop_restored").await.unwrap();
    assert_eq!(before.len(), 4);
    assert_eq!(before, after);

    // Dropping what a failed restore created: its sessions end, odd names are quoted,
    // and a second drop of a database already gone is fine.
    let session = target.primary.connect_db("shop_restored").await.unwrap();
    e.drop_database(&dst, "shop_restored").await.unwrap();
    assert!(session.simple_query("SELECT 1").await.is_err(), "its session was ended");
    e.drop_database(&dst, "shop_restored").await.unwrap();
    assert!(e.create_database(&dst, "we\"ird db").await.unwrap());
    e.drop_database(&dst, "we\"ird db").await.unwrap();
    let left: i64 = target
        .primary
        .query_one("SELECT count(*) FROM pg_database WHERE datname IN ('shop_restored', 'we\"ird db')")
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let c = cluster(0).await;
    let e = PostgresEngine::new(EngineConfig {
        credentials: Credentials::new(pg::PASSWORD_USER, "wrong"),
        ..Default::default()
    });
    let err = e.probe(&member(&c.primary)).await.unwrap_err();
    assert!(
        matches!(&err.failure, Failure::Auth { user, .. } if user == pg::PASSWORD_USER),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_members_fail_within_the_timeout() {
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        operation: Duration::from_secs(1),
        promote: Duration::from_secs(1),
        probe: Duration::from_secs(1),
    };
    let e = PostgresEngine::new(EngineConfig {
        credentials: Credentials::new("postgres", ""),
        timeouts,
        ..Default::default()
    });
    // Nothing listening: refused at once.
    let empty = lifeboat_testkit::net::allocate(pg::PORT).unwrap();
    let err = e.probe(&Member::new("gone", empty.host(), pg::PORT)).await.unwrap_err();
    assert!(matches!(err.failure, Failure::Connect(_)), "{err}");
    // A listener that never answers (a hung server): the connect timeout fires.
    let hung = lifeboat_testkit::net::allocate(pg::PORT).unwrap();
    let _listener = std::net::TcpListener::bind(hung.socket_addr(pg::PORT)).unwrap();
    let started = Instant::now();
    let err = e.probe(&Member::new("hung", hung.host(), pg::PORT)).await.unwrap_err();
    println!("pg hung member failed after {:?}: {err}", started.elapsed());
    assert_eq!(err.failure, Failure::Timeout(timeouts.connect));
    let fence = e.fence(&Member::new("hung", hung.host(), pg::PORT)).await.unwrap();
    assert!(!fence.reachable && !fence.confirmed);
}

#[tokio::test]
async fn tls_modes_verify_against_the_ca() {
    use lifeboat::engine::{SslMode, TlsOptions};
    let c = cluster(0).await;
    let certs = c.primary.enable_tls().await.unwrap();
    let other_ca = pg::tls::make_certs(c.primary.dir(), "other", "127.0.0.1")
        .await
        .unwrap()
        .ca;
    let with_tls = |mode, ca_file: Option<std::path::PathBuf>| {
        PostgresEngine::new(EngineConfig {
            credentials: Credentials::new(pg::PASSWORD_USER, pg::PASSWORD),
            tls: TlsOptions { mode, ca_file },
            ..Default::default()
        })
    };
    let m = member(&c.primary);

    let verified = with_tls(SslMode::VerifyFull, Some(certs.ca.clone()));
    verified.probe(&m).await.expect("verify-full with the right CA");
    // The engine keeps its connection open: the server sees it encrypted.
    let encrypted: i64 = c
        .primary
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'lifeboat' AND s.ssl",
        )
        .await
        .unwrap();
    assert_eq!(encrypted, 1);

    let wrong = with_tls(SslMode::VerifyFull, Some(other_ca.clone()));
    let err = wrong.probe(&m).await.unwrap_err();
    assert!(matches!(err.failure, Failure::Tls(_)), "{err}");
    let err = with_tls(SslMode::VerifyCa, None).probe(&m).await.unwrap_err();
    assert!(matches!(err.failure, Failure::Tls(_)), "{err}");
    // require encrypts without verifying, as libpq does.
    with_tls(SslMode::Require, Some(other_ca)).probe(&m).await.unwrap();
    with_tls(SslMode::VerifyCa, Some(certs.ca)).probe(&m).await.unwrap();
}
