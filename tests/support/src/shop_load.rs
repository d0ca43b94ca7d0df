//! The shop workload: places orders through the writer Service's address in a loop and
//! keeps a ledger of every acknowledged order and of each success and failure time.
//! Afterwards: the write-unavailability window and the acknowledged orders missing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::NoTls;

/// What the writer saw.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Order ids the database acknowledged (COMMIT returned), in order.
    pub acknowledged: Vec<i64>,
    /// Time of each acknowledged write, relative to the start.
    pub successes: Vec<Duration>,
    /// Time of each failed attempt (connect or insert), relative to the start.
    pub failures: Vec<Duration>,
}

impl Ledger {
    /// The longest gap between two acknowledged writes that contains a failure: what the
    /// shop saw as "checkout could not write". `None` if no write ever failed.
    pub fn unavailability(&self) -> Option<Duration> {
        let mut worst: Option<Duration> = None;
        for pair in self.successes.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if self.failures.iter().any(|f| *f > a && *f < b) {
                worst = Some(worst.map_or(b - a, |w| w.max(b - a)));
            }
        }
        worst
    }

    /// Whether the lost orders are one run of consecutive acknowledgements (the writes the
    /// promoted replica had not received when the primary died), never a hole with kept
    /// orders in between.
    pub fn loss_is_a_tail(&self, present: &std::collections::HashSet<i64>) -> bool {
        let missing = self.missing(present);
        let (Some(lo), Some(hi)) = (missing.iter().min(), missing.iter().max()) else {
            return true;
        };
        !self
            .acknowledged
            .iter()
            .any(|id| present.contains(id) && id > lo && id < hi)
    }

    /// When each acknowledged order was acknowledged (ledger clock).
    pub fn acknowledged_at(&self, id: i64) -> Option<Duration> {
        self.acknowledged
            .iter()
            .position(|a| *a == id)
            .and_then(|i| self.successes.get(i).copied())
    }

    /// Acknowledged orders not present in `present`.
    pub fn missing(&self, present: &std::collections::HashSet<i64>) -> Vec<i64> {
        self.acknowledged
            .iter()
            .copied()
            .filter(|id| !present.contains(id))
            .collect()
    }
}

/// A running workload; stop it to get the ledger.
pub struct ShopLoad {
    started: Instant,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    ledger: Arc<Mutex<Ledger>>,
}

/// Where the workload writes.
#[derive(Clone, Debug)]
pub enum Target {
    Postgres(PgTarget),
    Mysql(PgTarget),
}

/// Connection settings of the workload (the same fields serve both engines).
#[derive(Clone, Debug)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
}

/// Creates the `orders_ledger` table the workload writes (on the primary, before starting).
pub const PG_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS orders_ledger (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL DEFAULT now())";
/// The same for MySQL/MariaDB (in the target database).
pub const MYSQL_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS orders_ledger (id BIGINT PRIMARY KEY, placed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))";

enum Conn {
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

async fn connect(target: &Target) -> Option<Conn> {
    match target {
        Target::Postgres(t) => {
            let conninfo = format!(
                "host={} port={} user={} password={} dbname={} connect_timeout=1",
                t.host, t.port, t.user, t.password, t.dbname
            );
            // connect_timeout covers the TCP connect only: a hung server never answers the
            // startup, and a shop's client gives up after a second all the same.
            let (client, conn) =
                tokio::time::timeout(Duration::from_secs(1), tokio_postgres::connect(&conninfo, NoTls))
                    .await
                    .ok()?
                    .ok()?;
            tokio::spawn(conn);
            Some(Conn::Postgres(client))
        }
        Target::Mysql(t) => {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname(t.host.clone())
                .tcp_port(t.port)
                .user(Some(t.user.clone()))
                .pass(Some(t.password.clone()))
                .db_name(Some(t.dbname.clone()));
            let conn = tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::new(opts))
                .await
                .ok()?
                .ok()?;
            Some(Conn::Mysql(conn))
        }
    }
}

async fn insert(conn: &mut Conn, id: i64) -> bool {
    use mysql_async::prelude::Queryable;
    let work = async {
        match conn {
            Conn::Postgres(c) => c
                .execute("INSERT INTO orders_ledger (id) VALUES ($1)", &[&id])
                .await
                .is_ok(),
            Conn::Mysql(c) => c
                .exec_drop("INSERT INTO orders_ledger (id) VALUES (?)", (id,))
                .await
                .is_ok(),
        }
    };
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .unwrap_or(false)
}

impl ShopLoad {
    /// Starts placing orders against PostgreSQL at `target` (ids from 1, one at a time).
    pub fn start_pg(target: PgTarget) -> ShopLoad {
        Self::start(Target::Postgres(target))
    }

    /// Starts placing orders (ids from 1, one at a time, autocommit).
    pub fn start(target: Target) -> ShopLoad {
        let (stop, mut stopped) = watch::channel(false);
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let shared = ledger.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut next_id: i64 = 1;
            while !*stopped.borrow() {
                let Some(mut conn) = connect(&target).await else {
                    shared.lock().expect("ledger").failures.push(started.elapsed());
                    pace(&mut stopped).await;
                    continue;
                };
                while !*stopped.borrow() {
                    let id = next_id;
                    // The id may or may not have committed on failure; never reuse it.
                    next_id += 1;
                    if insert(&mut conn, id).await {
                        let mut l = shared.lock().expect("ledger");
                        l.acknowledged.push(id);
                        l.successes.push(started.elapsed());
                    } else {
                        shared.lock().expect("ledger").failures.push(started.elapsed());
                        break;
                    }
                }
                pace(&mut stopped).await;
            }
        });
        ShopLoad {
            started,
            stop,
            task,
            ledger,
        }
    }

    /// Time since the load started, on the ledger's clock (to place a fault on it).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Acknowledged orders so far.
    pub fn acknowledged(&self) -> usize {
        self.ledger.lock().expect("ledger").acknowledged.len()
    }

    /// Stops the workload and returns its ledger.
    pub async fn stop(self) -> Ledger {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.ledger.lock().expect("ledger").clone()
    }
}

/// A short pause between reconnect attempts, cut short by a stop.
async fn pace(stopped: &mut watch::Receiver<bool>) {
    let _ = tokio::time::timeout(Duration::from_millis(20), stopped.changed()).await;
}

/// Order ids present on a MySQL/MariaDB server (in the connection's database).
pub async fn mysql_order_ids(conn: &mut mysql_async::Conn) -> anyhow::Result<std::collections::HashSet<i64>> {
    use mysql_async::prelude::Queryable;
    let ids: Vec<i64> = conn.query("SELECT id FROM orders_ledger").await?;
    Ok(ids.into_iter().collect())
}

/// Order ids present on a PostgreSQL server.
pub async fn pg_order_ids(client: &tokio_postgres::Client) -> anyhow::Result<std::collections::HashSet<i64>> {
    let rows = client.query("SELECT id FROM orders_ledger", &[]).await?;
    Ok(rows.into_iter().map(|r| r.get::<_, i64>(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailability_is_the_gap_around_failures() {
        let ms = Duration::from_millis;
        let ledger = Ledger {
            acknowledged: vec![1, 2, 3, 4],
            successes: vec![ms(0), ms(10), ms(900), ms(910)],
            failures: vec![ms(300), ms(600)],
        };
        assert_eq!(ledger.unavailability(), Some(ms(890)));
        let present = [1, 2, 4].into_iter().collect();
        assert_eq!(ledger.missing(&present), vec![3]);
        assert!(ledger.loss_is_a_tail(&present));
        let holed = [1, 3].into_iter().collect();
        assert!(!ledger.loss_is_a_tail(&holed), "2 and 4 lost around a kept 3");
    }
}
