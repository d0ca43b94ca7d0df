//! Real MariaDB 10.11 servers: a primary with N GTID replicas, each on its own
//! loopback address (port 3306), with its own datadir, socket and pid file in a
//! tempdir. `mariadbd` is spawned directly (`--no-defaults` first, `--user=root`), so
//! [`MariaServer::pid`] is the server's PID. Dropping a server kills it (SIGKILL: its
//! files are deleted anyway) and removes its files.
//!
//! Users (created with `sql_log_bin=0` so they never enter GTID history):
//! `root@127.0.0.1` without password (also used for replication), and
//! [`PASSWORD_USER`]`@%` with [`PASSWORD`], both with all privileges.
//!
//! Replicas run `read_only=1` and replicate with
//! `MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use lifeboat_testkit::mariadb::{MariaCluster, MariaOptions};
//! let cluster = MariaCluster::start(MariaOptions { replicas: 1 }).await?;
//! cluster.primary.execute("CREATE DATABASE shop").await?;
//! let pos: String = cluster.primary.query_one("SELECT @@gtid_binlog_pos").await?;
//! # Ok(()) }
//! ```

pub mod shop;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, OptsBuilder};
use tempfile::TempDir;

use crate::net::{self, LoopbackAddr};
use crate::pg::server::{ServerProcess, run, wait_until};

/// Port every MariaDB server listens on (each has its own address).
pub const PORT: u16 = 3306;
/// Password-less superuser allowed from 127.0.0.1.
pub const SUPERUSER: &str = "root";
/// User that must authenticate with [`PASSWORD`].
pub const PASSWORD_USER: &str = "lifeboat";
/// Password of [`PASSWORD_USER`].
pub const PASSWORD: &str = "lifeboat-test-password";
/// How long start-up and replication set-up may take.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to build a cluster.
#[derive(Debug, Clone, Default)]
pub struct MariaOptions {
    /// Number of GTID replicas (`replica1`, ...; server ids 2, 3, ...).
    pub replicas: usize,
}

/// A primary and its replicas. Field order drops replicas before the primary.
#[derive(Debug)]
pub struct MariaCluster {
    pub replicas: Vec<MariaServer>,
    pub primary: MariaServer,
}

impl MariaCluster {
    /// Starts the servers and returns once every replica's IO and SQL threads run.
    pub async fn start(options: MariaOptions) -> anyhow::Result<Self> {
        let primary = MariaServer::init("primary", 1).await?;
        let mut replicas = Vec::with_capacity(options.replicas);
        for i in 1..=options.replicas {
            let server_id = u32::try_from(i + 1)?;
            let replica = MariaServer::init(&format!("replica{i}"), server_id).await?;
            replica.execute("SET GLOBAL read_only = 1").await?;
            replica.replicate_from(&primary).await?;
            replicas.push(replica);
        }
        for replica in &replicas {
            replica.wait_replicating().await?;
        }
        Ok(Self { replicas, primary })
    }
}

/// One MariaDB server.
#[derive(Debug)]
pub struct MariaServer {
    name: String,
    server_id: u32,
    process: Option<ServerProcess>,
    tls: Option<crate::pg::tls::Certs>,
    addr: LoopbackAddr,
    // Dropped last: the server must be gone before its files are.
    dir: TempDir,
}

impl MariaServer {
    /// Installs a fresh datadir, starts the server and creates the test users.
    pub async fn init(name: &str, server_id: u32) -> anyhow::Result<Self> {
        let addr = net::allocate(PORT)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("lifeboat-mariadb-{name}-"))
            .tempdir()?;
        let mut server = Self {
            name: name.to_string(),
            server_id,
            process: None,
            tls: None,
            addr,
            dir,
        };
        // A private tmpdir: concurrent bootstraps collided on temporary tables in /tmp.
        std::fs::create_dir(server.tmp_dir())?;
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", server.data_dir().display()))
            .arg(format!("--tmpdir={}", server.tmp_dir().display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
                "--skip-name-resolve",
                "--innodb-log-file-size=16M",
                "--innodb-buffer-pool-size=32M",
            ])
            .current_dir(server.dir());
        run(install).await?;
        server.start().await?;
        server
            .socket_execute(&format!(
                "SET SESSION sql_log_bin = 0;
                 CREATE USER IF NOT EXISTS '{SUPERUSER}'@'127.0.0.1';
                 GRANT ALL ON *.* TO '{SUPERUSER}'@'127.0.0.1' WITH GRANT OPTION;
                 CREATE USER '{PASSWORD_USER}'@'%' IDENTIFIED BY '{PASSWORD}';
                 GRANT ALL ON *.* TO '{PASSWORD_USER}'@'%' WITH GRANT OPTION;"
            ))
            .await?;
        Ok(server)
    }

    /// Starts `mariadbd` and waits until it answers on its socket.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.process.as_mut().is_some_and(ServerProcess::is_running) {
            return Ok(());
        }
        let dir = self.dir().to_path_buf();
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", self.data_dir().display()))
            .arg(format!("--bind-address={}", self.host()))
            .arg(format!("--port={PORT}"))
            .arg(format!("--socket={}", self.socket_path().display()))
            .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
            .arg(format!("--server-id={}", self.server_id))
            .arg(format!("--tmpdir={}", self.tmp_dir().display()))
            .arg(format!("--log-bin={}", dir.join("data/binlog").display()))
            .arg(format!("--relay-log={}", dir.join("data/relay").display()))
            .args([
                "--binlog-format=ROW",
                "--log-slave-updates",
                "--gtid-strict-mode=1",
                "--skip-name-resolve",
                "--innodb-log-file-size=16M",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=2",
                "--sync-binlog=0",
                "--performance-schema=off",
                "--max-connections=100",
            ])
            .current_dir(&dir);
        if let Some(certs) = &self.tls {
            cmd.arg(format!("--ssl-ca={}", certs.ca.display()))
                .arg(format!("--ssl-cert={}", certs.cert.display()))
                .arg(format!("--ssl-key={}", certs.key.display()));
        }
        self.process = Some(ServerProcess::spawn(&self.name, cmd, &self.log_path(), libc::SIGKILL)?);
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let last = match self.socket_conn().await {
                Ok(conn) => {
                    let _ = conn.disconnect().await;
                    return Ok(());
                }
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

    /// Points this server at `primary` (GTID, slave_pos) and starts replication.
    pub async fn replicate_from(&self, primary: &MariaServer) -> anyhow::Result<()> {
        self.execute(&format!(
            "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={PORT}, MASTER_USER='{SUPERUSER}',
             MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1,
             MASTER_HEARTBEAT_PERIOD=1;
             START SLAVE;",
            primary.host()
        ))
        .await
    }

    /// Waits until both replication threads run.
    pub async fn wait_replicating(&self) -> anyhow::Result<()> {
        wait_until(&format!("{} to replicate", self.name), READY_TIMEOUT, || async {
            let mut conn = self.connect().await?;
            let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await?;
            let Some(row) = row else {
                bail!("no replication configured")
            };
            let io: Option<String> = row.get("Slave_IO_Running");
            let sql: Option<String> = row.get("Slave_SQL_Running");
            let error: Option<String> = row.get("Last_Error");
            if sql.as_deref() == Some("No") && error.as_deref().is_some_and(|e| !e.is_empty()) {
                bail!("SQL thread stopped: {}", error.unwrap_or_default());
            }
            Ok((io.as_deref() == Some("Yes") && sql.as_deref() == Some("Yes")).then_some(()))
        })
        .await
    }

    /// Restarts the server with TLS (certificate for its IP, signed by a fresh CA)
    /// and returns the certificates; clients verify with [`crate::pg::tls::Certs::ca`].
    /// Plain connections stay allowed. Runtime settings are lost as with
    /// [`Self::restart`].
    pub async fn enable_tls(&mut self) -> anyhow::Result<crate::pg::tls::Certs> {
        let certs = crate::pg::tls::make_certs(self.dir(), &self.name, &self.host()).await?;
        self.tls = Some(certs.clone());
        self.restart().await?;
        Ok(certs)
    }

    /// `kill -9`: the abrupt failure.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        self.stop_with(libc::SIGKILL).await
    }

    /// Clean shutdown (SIGTERM).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.stop_with(libc::SIGTERM).await
    }

    async fn stop_with(&mut self, signal: i32) -> anyhow::Result<()> {
        match self.process.as_mut() {
            Some(p) => p.stop_with(signal, READY_TIMEOUT).await,
            None => Ok(()),
        }
    }

    /// Clean stop (if running), then start with the same datadir and flags. Runtime
    /// settings (`SET GLOBAL read_only`) are not kept; replication settings are.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.start().await
    }

    /// Server name (`primary`, `replica1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The `--server-id`.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }
    /// Listen address, e.g. `127.0.5.17`.
    pub fn host(&self) -> String {
        self.addr.host()
    }
    /// Always [`PORT`].
    pub fn port(&self) -> u16 {
        PORT
    }
    /// Server PID while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServerProcess::pid)
    }
    /// Directory holding `data/`, the socket, pid file and `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The datadir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }
    /// Private temporary directory.
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir().join("tmp")
    }
    /// The unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir().join("mariadbd.sock")
    }
    /// The server's stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("server.log")
    }
    /// Last 4 KiB of the log.
    pub fn log_tail(&self) -> String {
        crate::pg::server::log_tail(&self.log_path(), 4096)
    }

    /// Client options for `root@127.0.0.1` over TCP (never switching to the socket).
    pub fn opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(self.host())
            .tcp_port(PORT)
            .user(Some(SUPERUSER))
            .prefer_socket(false)
    }

    /// A TCP connection as root.
    pub async fn connect(&self) -> anyhow::Result<Conn> {
        Conn::new(self.opts())
            .await
            .with_context(|| format!("connecting to {} ({})", self.name, self.host()))
    }

    async fn socket_conn(&self) -> anyhow::Result<Conn> {
        let opts = OptsBuilder::default()
            .socket(Some(self.socket_path().display().to_string()))
            .user(Some(SUPERUSER));
        Ok(Conn::new(opts).await?)
    }

    async fn socket_execute(&self, sql: &str) -> anyhow::Result<()> {
        let mut conn = self.socket_conn().await?;
        conn.query_drop(sql)
            .await
            .with_context(|| format!("{sql} on {}", self.name))?;
        conn.disconnect().await?;
        Ok(())
    }

    /// Runs one or more statements (text protocol).
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let mut conn = self.connect().await?;
        conn.query_drop(sql)
            .await
            .with_context(|| format!("{sql} on {}", self.name))?;
        conn.disconnect().await?;
        Ok(())
    }

    /// First column of the first row returned by `sql`.
    pub async fn query_one<T: FromValue + Send + 'static>(&self, sql: &str) -> anyhow::Result<T> {
        let mut conn = self.connect().await?;
        let value: Option<T> = conn
            .query_first(sql)
            .await
            .with_context(|| format!("{sql} on {}", self.name))?;
        conn.disconnect().await?;
        value.with_context(|| format!("{sql} on {} returned no row", self.name))
    }
}

#[cfg(test)]
mod tests;
