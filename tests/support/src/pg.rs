//! Real PostgreSQL 15 servers: a primary with N streaming replicas, each on its own
//! loopback address (port 5432), data dir and unix socket dir in a tempdir owned by
//! `postgres`. Servers run as the `postgres` user (initdb refuses root) and are spawned
//! directly, so [`PgServer::pid`] is the postmaster's PID. Dropping a server stops it
//! with SIGQUIT (immediate shutdown) and removes its files.
//!
//! Authentication: `postgres` is trusted from 127.0.0.0/8 and the local socket;
//! [`PASSWORD_USER`] (superuser + replication) must log in with [`PASSWORD`] (scram).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use lifeboat_testkit::pg::{PgCluster, PgOptions};
//! let cluster = PgCluster::start(PgOptions { replicas: 1, ..Default::default() }).await?;
//! cluster.primary.execute("CREATE TABLE t (id int)").await?;
//! let n: i64 = cluster.replicas[0].query_one("SELECT count(*) FROM pg_class").await?;
//! # Ok(()) }
//! ```

pub mod server;
pub mod shop;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::{Client, NoTls};

use crate::net::{self, LoopbackAddr};
use server::{ServerProcess, command_as, run, system_user, wait_until};

/// Port every PostgreSQL server listens on (each has its own address).
pub const PORT: u16 = 5432;
/// Trusted superuser (no password needed from loopback).
pub const SUPERUSER: &str = "postgres";
/// Superuser with REPLICATION that must authenticate with scram-sha-256.
pub const PASSWORD_USER: &str = "lifeboat";
/// Password of [`PASSWORD_USER`].
pub const PASSWORD: &str = "lifeboat-test-password";
/// How long start-up, readiness and streaming may take before the harness gives up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the PostgreSQL 15 binaries are (override with `LIFEBOAT_PG_BIN`).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("LIFEBOAT_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// How to build a cluster.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Number of streaming replicas (named `replica1`, `replica2`, ...; this is also
    /// their `application_name`).
    pub replicas: usize,
    /// `synchronous_standby_names` on the primary, e.g. `FIRST 1 (replica1)`.
    pub synchronous_standby_names: Option<String>,
    /// Extra `postgresql.conf` lines for every server, e.g. `("work_mem", "64MB")`.
    pub extra_conf: Vec<(String, String)>,
}

/// A primary and its replicas. Field order drops replicas before the primary.
#[derive(Debug)]
pub struct PgCluster {
    pub replicas: Vec<PgServer>,
    pub primary: PgServer,
}

impl PgCluster {
    /// Starts a primary and `options.replicas` replicas, returning once every replica
    /// streams from the primary.
    pub async fn start(options: PgOptions) -> anyhow::Result<Self> {
        let primary = PgServer::init_primary("primary", &options).await?;
        let mut replicas = Vec::with_capacity(options.replicas);
        for i in 1..=options.replicas {
            let name = format!("replica{i}");
            replicas.push(PgServer::init_replica(&name, &primary, &options).await?);
        }
        for replica in &replicas {
            replica.wait_streaming().await?;
        }
        // Set only now: with it, every commit waits for the named standbys, and
        // set-up commits run before they exist.
        if let Some(names) = &options.synchronous_standby_names {
            primary
                .execute(&format!(
                    "ALTER SYSTEM SET synchronous_standby_names = '{}'",
                    names.replace('\'', "''")
                ))
                .await?;
            primary.execute("SELECT pg_reload_conf()").await?;
        }
        Ok(Self { replicas, primary })
    }
}

/// One PostgreSQL server.
#[derive(Debug)]
pub struct PgServer {
    name: String,
    process: Option<ServerProcess>,
    addr: LoopbackAddr,
    // Dropped last: the server must be gone before its files are.
    dir: TempDir,
}

impl PgServer {
    async fn init_primary(name: &str, options: &PgOptions) -> anyhow::Result<Self> {
        let mut server = Self::prepare(name)?;
        let data = server.data_dir();
        let mut initdb = command_as(&bin_dir().join("initdb"), postgres_user()?, server.dir());
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "--no-sync", "--no-locale"])
            .args(["-E", "UTF8"]);
        run(initdb).await?;
        append_conf(&data.join("postgresql.conf"), &server.base_conf(options))?;
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "local all all trust\n\
                 host all,replication {PASSWORD_USER} 127.0.0.0/8 scram-sha-256\n\
                 host all,replication all 127.0.0.0/8 trust\n"
            ),
        )?;
        server.start().await?;
        server
            .execute(&format!(
                "CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER REPLICATION PASSWORD '{PASSWORD}'"
            ))
            .await?;
        Ok(server)
    }

    async fn init_replica(name: &str, primary: &PgServer, options: &PgOptions) -> anyhow::Result<Self> {
        let mut server = Self::prepare(name)?;
        let data = server.data_dir();
        let mut backup = command_as(&bin_dir().join("pg_basebackup"), postgres_user()?, server.dir());
        backup
            .args(["-h", &primary.host(), "-p", &PORT.to_string(), "-U", SUPERUSER])
            .arg("-D")
            .arg(&data)
            .args(["-X", "stream", "-c", "fast", "--no-sync"]);
        run(backup).await?;
        append_conf(&data.join("postgresql.conf"), &server.base_conf(options))?;
        std::fs::write(data.join("standby.signal"), "")?;
        append_conf(
            &data.join("postgresql.auto.conf"),
            &[(
                "primary_conninfo".into(),
                format!(
                    "host={} port={PORT} user={SUPERUSER} application_name={name}",
                    primary.host()
                ),
            )],
        )?;
        chown_tree(&data)?;
        server.start().await?;
        Ok(server)
    }

    /// Allocates the address and the postgres-owned directories.
    fn prepare(name: &str) -> anyhow::Result<Self> {
        let addr = net::allocate(PORT)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("lifeboat-pg-{name}-"))
            .tempdir()?;
        let user = postgres_user()?;
        std::os::unix::fs::chown(dir.path(), Some(user.0), Some(user.1))?;
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock)?;
        std::os::unix::fs::chown(&sock, Some(user.0), Some(user.1))?;
        Ok(Self {
            name: name.to_string(),
            process: None,
            addr,
            dir,
        })
    }

    fn base_conf(&self, options: &PgOptions) -> Vec<(String, String)> {
        let mut conf: Vec<(String, String)> = [
            ("listen_addresses", self.host()),
            ("port", PORT.to_string()),
            ("unix_socket_directories", self.dir().join("sock").display().to_string()),
            ("fsync", "off".into()),
            ("full_page_writes", "off".into()),
            ("shared_buffers", "32MB".into()),
            ("max_connections", "60".into()),
            ("wal_level", "replica".into()),
            ("max_wal_senders", "10".into()),
            ("wal_keep_size", "256MB".into()),
            ("hot_standby", "on".into()),
            // lifeboat tells a hung primary from a quiet one by keepalives: the WAL sender
            // pings every wal_sender_timeout/2 a standby that replies less often (README).
            ("wal_receiver_status_interval", "10s".into()),
            ("wal_sender_timeout", "2s".into()),
            ("wal_retrieve_retry_interval", "200ms".into()),
            ("logging_collector", "off".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        conf.extend(options.extra_conf.iter().cloned());
        conf
    }

    /// Starts the postmaster and waits until it accepts connections.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.process.as_mut().is_some_and(ServerProcess::is_running) {
            return Ok(());
        }
        let mut cmd = command_as(&bin_dir().join("postgres"), postgres_user()?, self.dir());
        cmd.arg("-D").arg(self.data_dir());
        self.process = Some(ServerProcess::spawn(&self.name, cmd, &self.log_path(), libc::SIGQUIT)?);
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let last = match self.query_one::<i32>("SELECT 1").await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let exited = !self.process.as_mut().is_some_and(ServerProcess::is_running);
            if exited || std::time::Instant::now() > deadline {
                bail!(
                    "{} did not become ready ({}): {last:#}\nlog:\n{}",
                    self.name,
                    if exited { "exited" } else { "timed out" },
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Immediate shutdown (SIGQUIT), like a crash without fsync: the way to fail a
    /// primary abruptly. Waits until the postmaster has exited.
    pub async fn stop_immediate(&mut self) -> anyhow::Result<()> {
        self.stop_with(libc::SIGQUIT).await
    }

    /// Fast shutdown (SIGINT): clean, ends sessions, checkpoints.
    pub async fn stop_fast(&mut self) -> anyhow::Result<()> {
        self.stop_with(libc::SIGINT).await
    }

    /// `kill -9` of the postmaster. Its backends notice the postmaster died and exit
    /// on their own shortly after.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        self.stop_with(libc::SIGKILL).await
    }

    async fn stop_with(&mut self, signal: i32) -> anyhow::Result<()> {
        match self.process.as_mut() {
            Some(p) => p.stop_with(signal, READY_TIMEOUT).await,
            None => Ok(()),
        }
    }

    /// Fast stop (if running) then start again with the same data and config
    /// (including whatever ALTER SYSTEM wrote).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop_fast().await?;
        // After kill9, orphaned backends may hold shared memory for a moment.
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            match self.start().await {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Turns TLS on (certificate for this server's IP, signed by a fresh CA) with a
    /// reload, and returns the certificates; clients find the CA in [`tls::Certs::ca`].
    /// Plain connections stay allowed.
    pub async fn enable_tls(&self) -> anyhow::Result<tls::Certs> {
        let certs = tls::make_certs(self.dir(), &self.name, &self.host()).await?;
        let user = postgres_user()?;
        for file in [&certs.cert, &certs.key] {
            std::os::unix::fs::chown(file, Some(user.0), Some(user.1))?;
        }
        for sql in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", certs.cert.display()),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", certs.key.display()),
            "ALTER SYSTEM SET ssl = on".to_string(),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            self.execute(&sql).await?;
        }
        wait_until("ssl = on", READY_TIMEOUT, || async {
            let on: String = self.query_one("SELECT current_setting('ssl')").await?;
            Ok((on == "on").then_some(()))
        })
        .await?;
        Ok(certs)
    }

    /// Waits until this replica's WAL receiver is streaming.
    pub async fn wait_streaming(&self) -> anyhow::Result<()> {
        wait_until(&format!("{} to stream", self.name), READY_TIMEOUT, || async {
            let n: i64 = self
                .query_one("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
                .await?;
            Ok((n > 0).then_some(()))
        })
        .await
    }

    /// Server name (`primary`, `replica1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Listen address, e.g. `127.0.5.17`.
    pub fn host(&self) -> String {
        self.addr.host()
    }
    /// Always [`PORT`].
    pub fn port(&self) -> u16 {
        PORT
    }
    /// Postmaster PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServerProcess::pid)
    }
    /// Directory holding `data/`, `sock/` and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }
    /// The server's stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("server.log")
    }
    /// Last 4 KiB of the log.
    pub fn log_tail(&self) -> String {
        server::log_tail(&self.log_path(), 4096)
    }

    /// libpq-style connection string as the trusted superuser.
    pub fn conn_string(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={dbname} connect_timeout=2",
            self.host()
        )
    }

    /// A client on database `postgres` (connection task spawned on the runtime).
    pub async fn connect(&self) -> anyhow::Result<Client> {
        self.connect_db("postgres").await
    }

    /// A client on `dbname`.
    pub async fn connect_db(&self, dbname: &str) -> anyhow::Result<Client> {
        let (client, conn) = tokio_postgres::connect(&self.conn_string(dbname), NoTls)
            .await
            .with_context(|| format!("connecting to {} ({})", self.name, self.host()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Runs one or more statements (simple protocol) on database `postgres`.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        self.connect()
            .await?
            .batch_execute(sql)
            .await
            .with_context(|| format!("{} on {}", sql, self.name))
    }

    /// First column of the single row returned by `sql` on database `postgres`.
    pub async fn query_one<T: FromSqlOwned>(&self, sql: &str) -> anyhow::Result<T> {
        let row = self
            .connect()
            .await?
            .query_one(sql, &[])
            .await
            .with_context(|| format!("{} on {}", sql, self.name))?;
        Ok(row.try_get(0)?)
    }
}

fn postgres_user() -> anyhow::Result<(u32, u32)> {
    system_user("postgres")
}

/// Appends `key = 'value'` lines (later lines win in PostgreSQL config files).
fn append_conf(path: &Path, settings: &[(String, String)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::options()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for (key, value) in settings {
        writeln!(file, "{key} = '{}'", value.replace('\'', "''"))?;
    }
    Ok(())
}

/// Hands every file under `path` to postgres (files we created as root).
fn chown_tree(path: &Path) -> anyhow::Result<()> {
    let user = postgres_user()?;
    let mut chown = Command::new("chown");
    chown.arg("-R").arg(format!("{}:{}", user.0, user.1)).arg(path);
    let status = chown.status()?;
    if !status.success() {
        bail!("chown -R {} failed", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
