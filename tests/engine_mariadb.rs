//! MySQL engine against real MariaDB 10.11 primaries and GTID replicas.
//! Timings are printed (run with `--nocapture`), never asserted.

use std::time::{Duration, Instant};

use lifeboat::engine::mysql::gtid_from_dump;
use lifeboat::engine::position::compare;
use lifeboat::engine::{
    Comparison, Credentials, EngineConfig, Failure, Member, MysqlEngine, Position, Probe, Role, Timeouts,
};
use lifeboat_testkit::mariadb::{self, MariaCluster, MariaOptions, MariaServer, shop};
use lifeboat_testkit::pg::server::wait_until;

const WAIT: Duration = Duration::from_secs(30);

fn engine() -> MysqlEngine {
    MysqlEngine::new(EngineConfig {
        credentials: Credentials::new(mariadb::PASSWORD_USER, mariadb::PASSWORD),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            operation: Duration::from_secs(3),
            promote: Duration::from_secs(30),
            probe: Duration::from_secs(3),
        },
        ..Default::default()
    })
}

fn member(server: &MariaServer) -> Member {
    Member::new(server.name(), server.host(), server.port())
}

async fn cluster(replicas: usize) -> MariaCluster {
    let cluster = MariaCluster::start(MariaOptions { replicas })
        .await
        .expect("cluster starts");
    cluster
        .primary
        .execute(
            "CREATE DATABASE app;
             CREATE TABLE app.orders (id int AUTO_INCREMENT PRIMARY KEY, note varchar(100));",
        )
        .await
        .unwrap();
    cluster
}

async fn probe_until(engine: &MysqlEngine, m: &Member, what: &str, cond: impl Fn(&Probe) -> bool) -> Probe {
    wait_until(what, WAIT, || async {
        let p = engine.probe(m).await?;
        Ok(cond(&p).then_some(p))
    })
    .await
    .unwrap()
}

/// `n` separate transactions.
async fn insert_orders(server: &MariaServer, n: usize) {
    for i in 0..n {
        server
            .execute(&format!("INSERT INTO app.orders (note) VALUES ('order {i}')"))
            .await
            .unwrap();
    }
}

fn caught_up(p: &Probe) -> bool {
    p.lag_transactions == Some(0) && p.upstream.as_ref().is_some_and(|u| u.receiving && u.applying)
}

#[tokio::test]
async fn lag_grows_while_sql_thread_is_stopped_and_returns_to_zero() {
    let c = cluster(1).await;
    let e = engine();
    let (primary, replica) = (member(&c.primary), member(&c.replicas[0]));
    insert_orders(&c.primary, 3).await;
    let p = e.probe(&primary).await.unwrap();
    let synced = probe_until(&e, &replica, "replica has everything", |r| {
        caught_up(r) && compare(&r.position, &p.position) == Comparison::Equal
    })
    .await;
    assert_eq!(synced.role, Role::Replica);
    assert_eq!(synced.lag_seconds, Some(0.0));
    assert_eq!(synced.lag_bytes, Some(0));
    assert!(synced.read_only);
    assert_eq!(p.role, Role::Primary);
    assert!(!p.read_only && p.server_version.contains("MariaDB"));

    c.replicas[0].execute("STOP SLAVE SQL_THREAD").await.unwrap();
    insert_orders(&c.primary, 5).await;
    let lagging = probe_until(&e, &replica, "5 transactions behind", |r| r.lag_transactions == Some(5)).await;
    insert_orders(&c.primary, 5).await;
    let more = probe_until(&e, &replica, "10 transactions behind", |r| {
        r.lag_transactions == Some(10)
    })
    .await;
    println!(
        "mariadb lag while SQL thread stopped: {:?} then {:?} transactions, bytes {:?} then {:?}, seconds {:?}",
        lagging.lag_transactions, more.lag_transactions, lagging.lag_bytes, more.lag_bytes, more.lag_seconds
    );
    assert!(more.lag_bytes > lagging.lag_bytes);
    assert!(!more.upstream.as_ref().unwrap().applying);
    let primary_now = e.probe(&primary).await.unwrap();
    // Received but not applied still counts: a promotion would apply it first.
    assert_eq!(compare(&more.position, &primary_now.position), Comparison::Equal);
    assert_eq!(compare(&more.position, &synced.position), Comparison::Ahead);
    assert_eq!(compare(&synced.position, &primary_now.position), Comparison::Behind);

    c.replicas[0].execute("START SLAVE SQL_THREAD").await.unwrap();
    let resumed = probe_until(&e, &replica, "lag back to 0", caught_up).await;
    assert_eq!(resumed.lag_seconds, Some(0.0));
    let n: i64 = c.replicas[0]
        .query_one("SELECT count(*) FROM app.orders")
        .await
        .unwrap();
    assert_eq!(n, 13);
}

#[tokio::test]
async fn kill9_is_unreachable_and_replica_loses_upstream() {
    let mut c = cluster(1).await;
    let e = engine();
    let (primary, replica) = (member(&c.primary), member(&c.replicas[0]));
    e.probe(&primary).await.unwrap();
    probe_until(&e, &replica, "replicating", caught_up).await;

    c.primary.kill9().await.unwrap();
    let started = Instant::now();
    let err = e.probe(&primary).await.unwrap_err();
    println!(
        "mariadb probe of killed primary failed after {:?}: {err}",
        started.elapsed()
    );
    assert!(err.failure.is_unreachable(), "{err}");

    let lost = probe_until(&e, &replica, "upstream lost", |p| {
        p.upstream.as_ref().is_some_and(|u| !u.receiving)
    })
    .await;
    println!(
        "mariadb replica reported upstream lost {:?} after the kill: {:?}",
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
    insert_orders(&c.primary, 3).await;
    probe_until(&e, &replica, "caught up", |p| caught_up(p) && p.lag_bytes == Some(0)).await;

    let started = Instant::now();
    let promoted = e.promote(&replica).await.unwrap();
    println!("mariadb promote took {:?}", started.elapsed());
    assert!(!promoted.already_primary);
    let probe = e.probe(&replica).await.unwrap();
    assert_eq!(probe.role, Role::Primary);
    assert!(!probe.read_only);
    app_user(&c.replicas[0]).await;
    app_insert(&c.replicas[0], "after promote")
        .await
        .expect("promoted replica accepts writes");

    let again = e.promote(&replica).await.unwrap();
    assert!(again.already_primary, "second promote is a no-op");
}

#[tokio::test]
async fn failover_promotes_one_replica_and_repoints_the_other() {
    let mut c = cluster(2).await;
    let e = engine();
    let (a, b) = (member(&c.replicas[0]), member(&c.replicas[1]));
    insert_orders(&c.primary, 5).await;
    let pa = probe_until(&e, &a, "A caught up", |p| caught_up(p) && p.lag_bytes == Some(0)).await;
    let pb = probe_until(&e, &b, "B caught up", |p| caught_up(p) && p.lag_bytes == Some(0)).await;
    c.primary.kill9().await.unwrap();
    let killed = Instant::now();

    assert!(compare(&pa.position, &pb.position).at_least());
    e.promote(&a).await.unwrap();
    let writable = killed.elapsed();
    e.repoint(&b, &a).await.unwrap();
    c.replicas[0]
        .execute("INSERT INTO app.orders (note) VALUES ('written on A')")
        .await
        .unwrap();
    wait_until("row from A on B", WAIT, || async {
        let n: i64 = c.replicas[1]
            .query_one("SELECT count(*) FROM app.orders WHERE note = 'written on A'")
            .await?;
        Ok((n == 1).then_some(()))
    })
    .await
    .unwrap();
    println!(
        "mariadb failover: kill -> A writable {writable:?}, kill -> row on B {:?}",
        killed.elapsed()
    );
    let pb = e.probe(&b).await.unwrap();
    assert_eq!(pb.upstream.unwrap().host, Some(a.host.clone()));
    let pa = e.probe(&a).await.unwrap();
    assert_eq!(compare(&pa.position, &pb.position), Comparison::Equal);
}

/// An application account without READ_ONLY ADMIN, as a shop would use.
async fn app_user(server: &MariaServer) {
    server
        .execute(
            "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app-pw';
             GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'app'@'%';",
        )
        .await
        .unwrap();
}

async fn app_conn(server: &MariaServer) -> mysql_async::Conn {
    let opts = server.opts().user(Some("app")).pass(Some("app-pw"));
    mysql_async::Conn::new(opts).await.unwrap()
}

async fn app_insert(server: &MariaServer, note: &str) -> Result<(), mysql_async::Error> {
    use mysql_async::prelude::Queryable;
    let mut conn = app_conn(server).await;
    conn.exec_drop("INSERT INTO app.orders (note) VALUES (?)", (note,))
        .await
}

#[tokio::test]
async fn fence_refuses_later_writes_and_ends_sessions() {
    use mysql_async::prelude::Queryable;
    let c = cluster(0).await;
    let e = engine();
    let primary = member(&c.primary);
    app_user(&c.primary).await;
    let mut old_session = app_conn(&c.primary).await;
    old_session.query_drop("SELECT 1").await.unwrap();

    let fenced = e.fence(&primary).await.unwrap();
    assert!(fenced.reachable && fenced.confirmed, "{fenced:?}");
    assert!(fenced.sessions_terminated >= 1);
    assert!(old_session.query_drop("SELECT 1").await.is_err());
    let err = app_insert(&c.primary, "after fence").await.unwrap_err();
    assert!(matches!(&err, mysql_async::Error::Server(s) if s.code == 1290), "{err}");
    assert!(e.probe(&primary).await.unwrap().read_only);
}

#[tokio::test]
async fn shop_dump_restores_with_same_counts_and_checksums() {
    let source = cluster(0).await;
    let target = MariaCluster::start(MariaOptions::default()).await.unwrap();
    shop::create_shop(&source.primary, "shop", shop::ShopSize::SMALL)
        .await
        .unwrap();
    let e = engine();
    let (src, dst) = (member(&source.primary), member(&target.primary));
    let before_dump = e.probe(&src).await.unwrap();

    let mut dump = e.dump(&src, "shop").await.unwrap();
    let out = dump.command.output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tail = String::from_utf8_lossy(&out.stdout[out.stdout.len().saturating_sub(4096)..]);
    let gtid = gtid_from_dump(&tail).unwrap_or_else(|| panic!("the dump's last 4 KiB record the GTID:\n{tail}"));
    let Position::Mysql(pos) = before_dump.position else {
        panic!()
    };
    assert_eq!(gtid, pos.binlog);

    assert!(e.create_database(&dst, "shop_restored").await.unwrap());
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

    // Dropping what a failed restore created (odd names quoted; already gone is fine).
    e.drop_database(&dst, "shop_restored").await.unwrap();
    e.drop_database(&dst, "shop_restored").await.unwrap();
    assert!(e.create_database(&dst, "we`ird db").await.unwrap());
    e.drop_database(&dst, "we`ird db").await.unwrap();
    assert!(e.create_database(&dst, "shop_restored").await.unwrap(), "it was gone");
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let c = cluster(0).await;
    let e = MysqlEngine::new(EngineConfig {
        credentials: Credentials::new(mariadb::PASSWORD_USER, "wrong"),
        ..Default::default()
    });
    let err = e.probe(&member(&c.primary)).await.unwrap_err();
    assert!(
        matches!(&err.failure, Failure::Auth { user, .. } if user == mariadb::PASSWORD_USER),
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
    let e = MysqlEngine::new(EngineConfig {
        credentials: Credentials::new("root", ""),
        timeouts,
        ..Default::default()
    });
    let empty = lifeboat_testkit::net::allocate(mariadb::PORT).unwrap();
    let err = e
        .probe(&Member::new("gone", empty.host(), mariadb::PORT))
        .await
        .unwrap_err();
    assert!(matches!(err.failure, Failure::Connect(_)), "{err}");
    let hung = lifeboat_testkit::net::allocate(mariadb::PORT).unwrap();
    let _listener = std::net::TcpListener::bind(hung.socket_addr(mariadb::PORT)).unwrap();
    let started = Instant::now();
    let err = e
        .probe(&Member::new("hung", hung.host(), mariadb::PORT))
        .await
        .unwrap_err();
    println!("mariadb hung member failed after {:?}: {err}", started.elapsed());
    assert_eq!(err.failure, Failure::Timeout(timeouts.connect));
}

#[tokio::test]
async fn tls_modes_verify_against_the_ca() {
    use lifeboat::engine::{SslMode, TlsOptions};
    let mut c = cluster(0).await;
    let certs = c.primary.enable_tls().await.unwrap();
    let other_ca = lifeboat_testkit::pg::tls::make_certs(c.primary.dir(), "other", "127.0.0.1")
        .await
        .unwrap()
        .ca;
    let with_tls = |mode, ca_file: Option<std::path::PathBuf>| {
        MysqlEngine::new(EngineConfig {
            credentials: Credentials::new(mariadb::PASSWORD_USER, mariadb::PASSWORD),
            tls: TlsOptions { mode, ca_file },
            ..Default::default()
        })
    };
    let m = member(&c.primary);

    let verified = with_tls(SslMode::VerifyFull, Some(certs.ca.clone()));
    verified.probe(&m).await.expect("verify-full with the right CA");
    let err = with_tls(SslMode::VerifyFull, Some(other_ca.clone()))
        .probe(&m)
        .await
        .unwrap_err();
    assert!(matches!(err.failure, Failure::Tls(_)), "{err}");
    with_tls(SslMode::Require, Some(other_ca)).probe(&m).await.unwrap();

    // The dump tool gets the same TLS settings through its option file.
    let mut dump = verified.dump(&m, "app").await.unwrap();
    let out = dump.command.output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
