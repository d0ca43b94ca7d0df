//! MySQL/MariaDB (mysql_async): probe, promote, fence, repoint. Tested against
//! MariaDB 10.11; MySQL 8 statements are in [`super::mysql_sql`] and untested.
//!
//! Connections are kept per member (TCP only: `prefer_socket` is off so a loopback
//! member is not silently reached through a local socket) and dropped after any
//! connection-level failure.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};

use super::connections::Connections;
use super::error::{
    CreateDatabaseError, DropDatabaseError, Failure, FenceError, ProbeError, PromoteError, RepointError,
};
pub use super::mysql_dump::gtid_from_dump;
use super::mysql_probe::probe_from;
use super::mysql_sql::{
    Dialect, HEARTBEAT_CREATE_SQL, HEARTBEAT_READ_SQL, HEARTBEAT_TABLE_SQL, HEARTBEAT_WRITE_SQL, NO_SUCH_TABLE,
    SourceSpec, StatusRow, quote_ident,
};
use super::position::GtidSet;
use super::types::{
    Drain, EngineConfig, Fencing, Heartbeat, HeartbeatWrite, Member, Probe, Promotion, Repointing, SslMode,
};

/// Upper bound for DROP DATABASE (at least the operation timeout).
const DROP_TIMEOUT: Duration = Duration::from_secs(60);

/// The MySQL/MariaDB engine.
#[derive(Debug)]
pub struct MysqlEngine {
    pub(crate) config: EngineConfig,
    conns: Connections<(Conn, Dialect)>,
}

/// Client error codes meaning "bad credentials".
const AUTH_ERRORS: [u16; 3] = [1044, 1045, 1698];

impl MysqlEngine {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            conns: Connections::default(),
        }
    }

    fn opts(&self, member: &Member) -> OptsBuilder {
        let creds = &self.config.credentials;
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(member.host.clone())
            .tcp_port(member.port)
            .user(Some(creds.username.clone()))
            .pass((!creds.password.is_empty()).then(|| creds.password.clone()))
            .prefer_socket(false);
        let tls = &self.config.tls;
        if tls.mode.requires_tls() {
            let mut ssl = SslOpts::default()
                .with_danger_accept_invalid_certs(tls.mode == SslMode::Require)
                .with_danger_skip_domain_validation(tls.mode != SslMode::VerifyFull);
            if let Some(ca) = &tls.ca_file {
                ssl = ssl.with_root_certs(vec![ca.clone().into()]);
            }
            opts = opts.ssl_opts(ssl);
        }
        opts
    }

    async fn connect(&self, member: &Member) -> Result<(Conn, Dialect), Failure> {
        let limit = self.config.timeouts.connect;
        let mut conn = tokio::time::timeout(limit, Conn::new(self.opts(member)))
            .await
            .map_err(|_| Failure::Timeout(limit))?
            .map_err(|e| self.connect_failure(e))?;
        let version: Option<String> = conn
            .query_first("SELECT @@version")
            .await
            .map_err(|e| query_failure("SELECT @@version", e))?;
        Ok((conn, Dialect::from_version(&version.unwrap_or_default())))
    }

    fn connect_failure(&self, e: mysql_async::Error) -> Failure {
        match e {
            mysql_async::Error::Server(s) if AUTH_ERRORS.contains(&s.code) => Failure::Auth {
                user: self.config.credentials.username.clone(),
                message: s.message,
            },
            mysql_async::Error::Io(mysql_async::IoError::Tls(t)) => Failure::Tls(t.to_string()),
            // rustls handshake failures arrive wrapped in io::Error.
            other if other.to_string().contains("certificate") => Failure::Tls(other.to_string()),
            other => Failure::Connect(other.to_string()),
        }
    }

    /// Runs `op` on the kept connection of `member` within `limit`.
    async fn with_conn<T>(
        &self,
        member: &Member,
        limit: Duration,
        op: impl AsyncFnOnce(&mut Conn, Dialect) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let key = member.address();
        let work = async {
            let (mut conn, dialect) = match self.conns.take(&key) {
                Some(kept) => kept,
                None => self.connect(member).await?,
            };
            let result = op(&mut conn, dialect).await;
            // Server errors leave the connection usable; anything else does not.
            if !matches!(&result, Err(f) if f.is_unreachable()) {
                self.conns.put(&key, (conn, dialect));
            }
            result
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Failure::Timeout(limit))?
    }

    /// Role, GTID positions, replication threads, lag and heartbeat of `member`.
    pub async fn probe(&self, member: &Member) -> Result<Probe, ProbeError> {
        let limit = self.config.timeouts.probe;
        self.with_conn(member, limit, async |c, d| {
            let row: Option<(String, i64, String, String)> = c
                .query_first("SELECT @@version, @@read_only, @@gtid_binlog_pos, @@gtid_slave_pos")
                .await
                .map_err(|e| query_failure("probe variables", e))?;
            let (version, read_only, binlog, slave) =
                row.ok_or_else(|| Failure::Unexpected("no row for probe variables".into()))?;
            let status = replica_status(c, d).await?;
            let mut probe = probe_from(version, read_only != 0, &binlog, &slave, status.as_ref())?;
            probe.heartbeat = read_heartbeat(c).await?;
            Ok(probe)
        })
        .await
        .map_err(|failure| ProbeError {
            member: member.name.clone(),
            failure,
        })
    }

    /// Writes lifeboat's heartbeat row on a writable primary (creating the table the first
    /// time). Never lowers the epoch stored in the row.
    pub async fn write_heartbeat(&self, member: &Member, beat: &HeartbeatWrite) -> Result<(), ProbeError> {
        let limit = self.config.timeouts.probe;
        let params = (beat.written_at.timestamp_micros(), beat.epoch, beat.writer.clone());
        self.with_conn(member, limit, async |c, _| {
            match c.exec_drop(HEARTBEAT_WRITE_SQL, params.clone()).await {
                Ok(()) => Ok(()),
                Err(mysql_async::Error::Server(e)) if NO_SUCH_TABLE.contains(&e.code) => {
                    exec(c, HEARTBEAT_CREATE_SQL).await?;
                    exec(c, HEARTBEAT_TABLE_SQL).await?;
                    c.exec_drop(HEARTBEAT_WRITE_SQL, params.clone())
                        .await
                        .map_err(|e| query_failure("write heartbeat", e))
                }
                Err(e) => Err(query_failure("write heartbeat", e)),
            }
        })
        .await
        .map_err(|failure| ProbeError {
            member: member.name.clone(),
            failure,
        })
    }

    /// Applies everything `member` received before it is promoted, without ever discarding
    /// its relay log: a stopped SQL thread is started while the IO thread still runs, or,
    /// with both threads stopped, pointed at its own relay log position first (a plain
    /// restart in GTID mode would throw the relay log away). Waits up to `limit` with
    /// `MASTER_GTID_WAIT` for the received GTIDs.
    pub async fn drain(&self, member: &Member, limit: Duration) -> Result<Drain, PromoteError> {
        let wait_secs = limit.as_secs().max(1);
        let op_limit = limit + self.config.timeouts.operation;
        self.with_conn(member, op_limit, async |c, d| drain_conn(c, d, wait_secs).await)
            .await
            .map_err(|failure| PromoteError::Failed {
                member: member.name.clone(),
                failure,
            })
    }

    /// Promotes a replica: drains what it received (see [`MysqlEngine::drain`]), stops
    /// receiving, drains the rest, then `STOP SLAVE; RESET SLAVE ALL; read_only=0`, and
    /// confirms. Refuses (`RelayNotApplied`) rather than drop received transactions. On a
    /// member without replication it only makes sure `read_only=0`; on a writable primary
    /// it does nothing.
    pub async fn promote(&self, member: &Member) -> Result<Promotion, PromoteError> {
        let limit = self.config.timeouts.promote;
        let failed = |failure| PromoteError::Failed {
            member: member.name.clone(),
            failure,
        };
        // Leave a second for the rest, so a stuck SQL thread is reported as such.
        let wait_secs = limit.as_secs().saturating_sub(1).max(1);
        let outcome = self
            .with_conn(member, limit + self.config.timeouts.operation, async |c, d| {
                let Some(_) = replica_status(c, d).await? else {
                    let read_only = read_only(c).await?;
                    if read_only {
                        exec(c, d.set_read_only(false)).await?;
                    }
                    return Ok(Ok(!read_only));
                };
                drain_conn(c, d, wait_secs).await?;
                exec(c, d.stop_io_thread()).await?;
                let rest = drain_conn(c, d, wait_secs).await?;
                if rest.pending_at_end > 0 {
                    let status = replica_status(c, d).await?.unwrap_or_default();
                    let received = status
                        .get(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"])
                        .unwrap_or("")
                        .to_string();
                    return Ok(Err(received));
                }
                exec(c, d.stop_replica()).await?;
                exec(c, d.reset_replica_all()).await?;
                exec(c, d.set_read_only(false)).await?;
                Ok(Ok(false))
            })
            .await
            .map_err(failed)?;
        let already_primary = outcome.map_err(|received| PromoteError::RelayNotApplied {
            member: member.name.clone(),
            received,
            waited: limit,
        })?;
        // Confirm on a fresh connection.
        let (mut fresh, dialect) = self.connect(member).await.map_err(failed)?;
        let still_replica = replica_status(&mut fresh, dialect).await.map_err(failed)?.is_some();
        let still_read_only = read_only(&mut fresh).await.map_err(failed)?;
        if still_replica || still_read_only {
            return Err(PromoteError::NotWritable {
                member: member.name.clone(),
                detail: format!("replication configured={still_replica} read_only={still_read_only}"),
            });
        }
        Ok(Promotion { already_primary })
    }

    /// Fences `member`: `read_only=1` (waiting at most the operation timeout for
    /// running writes), then kills every other client connection (replication threads
    /// and binlog dump threads are kept so replicas receive what was committed).
    /// Accounts with READ_ONLY ADMIN/SUPER (MariaDB 10.11) can still write; the hard
    /// fence is the writer Service no longer selecting the member.
    pub async fn fence(&self, member: &Member) -> Result<Fencing, FenceError> {
        let limit = self.config.timeouts.operation;
        let lock_wait = limit.as_secs().max(1);
        let result = self
            .with_conn(member, limit, async |c, d| {
                exec(c, &format!("SET SESSION lock_wait_timeout = {lock_wait}")).await?;
                exec(c, d.set_read_only(true)).await?;
                let ids: Vec<u64> = c
                    .query(
                        "SELECT ID FROM information_schema.PROCESSLIST
                         WHERE ID <> CONNECTION_ID()
                           AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon',
                                               'Slave_IO', 'Slave_SQL', 'Slave_worker')
                           AND USER NOT IN ('system user', 'event_scheduler')",
                    )
                    .await
                    .map_err(|e| query_failure("PROCESSLIST", e))?;
                let mut killed = 0;
                for id in ids {
                    // A session may end by itself meanwhile (unknown thread id): fine.
                    if c.query_drop(format!("KILL CONNECTION {id}")).await.is_ok() {
                        killed += 1;
                    }
                }
                Ok(killed)
            })
            .await;
        let sessions_terminated = match result {
            Ok(n) => n,
            Err(failure) if failure.is_unreachable() => {
                return Ok(Fencing {
                    reachable: false,
                    confirmed: false,
                    sessions_terminated: 0,
                    detail: Some(failure.to_string()),
                });
            }
            Err(failure) => {
                return Err(FenceError {
                    member: member.name.clone(),
                    failure,
                });
            }
        };
        let confirmed = match self.connect(member).await {
            Ok((mut fresh, _)) => read_only(&mut fresh).await.unwrap_or(false),
            Err(_) => false,
        };
        Ok(Fencing {
            reachable: true,
            confirmed,
            sessions_terminated,
            detail: (!confirmed).then(|| "a fresh session does not see read_only=1".to_string()),
        })
    }

    /// Makes `replica` replicate from `primary` with GTID positioning
    /// (`MASTER_USE_GTID=slave_pos`, retry every second) and lifeboat's credentials.
    pub async fn repoint(&self, replica: &Member, primary: &Member) -> Result<Repointing, RepointError> {
        let creds = &self.config.credentials;
        let tls = &self.config.tls;
        let ca = tls.ca_file.as_ref().map(|p| p.display().to_string());
        let spec = SourceSpec {
            host: &primary.host,
            port: primary.port,
            user: &creds.username,
            password: &creds.password,
            tls: tls.mode.requires_tls(),
            ca_file: ca.as_deref(),
            verify_cert: matches!(tls.mode, SslMode::VerifyCa | SslMode::VerifyFull),
        };
        let limit = self.config.timeouts.operation;
        self.with_conn(replica, limit, async |c, d| {
            exec(c, d.stop_replica()).await?;
            // Not the password: the statement is never logged or put in an error.
            c.query_drop(d.change_source(&spec))
                .await
                .map_err(|e| query_failure("CHANGE MASTER TO (credentials elided)", e))?;
            exec(c, d.start_replica()).await?;
            Ok(Repointing {
                restart_required: false,
            })
        })
        .await
        .map_err(|failure| RepointError::Failed {
            replica: replica.name.clone(),
            primary: primary.name.clone(),
            failure,
        })
    }

    /// Creates database `name` unless it exists (utf8mb4). True if created.
    pub async fn create_database(&self, member: &Member, name: &str) -> Result<bool, CreateDatabaseError> {
        let limit = self.config.timeouts.operation;
        self.with_conn(member, limit, async |c, _| {
            let exists: Option<String> = c
                .exec_first(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (name,),
                )
                .await
                .map_err(|e| query_failure("SCHEMATA", e))?;
            if exists.is_none() {
                exec(
                    c,
                    &format!("CREATE DATABASE {} CHARACTER SET utf8mb4", quote_ident(name)),
                )
                .await?;
            }
            Ok(exists.is_none())
        })
        .await
        .map_err(|failure| CreateDatabaseError {
            member: member.name.clone(),
            database: name.to_string(),
            failure,
        })
    }
    /// Drops database `name` (`IF EXISTS`). MariaDB waits for the metadata locks of
    /// running sessions; lifeboat only drops databases it created and nobody else uses.
    pub async fn drop_database(&self, member: &Member, name: &str) -> Result<(), DropDatabaseError> {
        // Removing a large database's files takes longer than a probe.
        let limit = self.config.timeouts.operation.max(DROP_TIMEOUT);
        self.with_conn(member, limit, async |c, _| {
            exec(c, &format!("DROP DATABASE IF EXISTS {}", quote_ident(name))).await
        })
        .await
        .map_err(|failure| DropDatabaseError {
            member: member.name.clone(),
            database: name.to_string(),
            failure,
        })
    }
}

/// One drain pass on an open connection (see [`MysqlEngine::drain`]).
async fn drain_conn(c: &mut Conn, d: Dialect, wait_secs: u64) -> Result<Drain, Failure> {
    let Some(status) = replica_status(c, d).await? else {
        return Ok(Drain {
            resumed_apply: false,
            pending_at_end: 0,
        });
    };
    let received = status
        .get(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"])
        .unwrap_or("")
        .to_string();
    let pending = |applied: &str| -> u64 {
        match (received.parse::<GtidSet>(), applied.parse::<GtidSet>()) {
            (Ok(r), Ok(a)) => r.transactions_ahead_of(&a),
            _ => u64::MAX,
        }
    };
    let applied_now = slave_pos(c).await?;
    if received.is_empty() || pending(&applied_now) == 0 {
        return Ok(Drain {
            resumed_apply: false,
            pending_at_end: 0,
        });
    }
    let sql_running = status.get(&["Slave_SQL_Running", "Replica_SQL_Running"]) == Some("Yes");
    let io_stopped = status.get(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or("No") == "No";
    if !sql_running {
        if io_stopped {
            let file = status.get(&["Relay_Log_File"]).unwrap_or("").to_string();
            let pos = status.get_u64(&["Relay_Log_Pos"]).unwrap_or(4);
            exec(c, &d.resume_from_relay_log(&file, pos)).await?;
        }
        exec(c, d.start_sql_thread()).await?;
    }
    let sql = d.wait_for_gtids(&received, wait_secs);
    let _: Option<i64> = c.query_first(&sql).await.map_err(|e| query_failure(&sql, e))?;
    let applied = slave_pos(c).await?;
    Ok(Drain {
        resumed_apply: !sql_running,
        pending_at_end: pending(&applied),
    })
}

async fn slave_pos(c: &mut Conn) -> Result<String, Failure> {
    let v: Option<String> = c
        .query_first("SELECT @@gtid_slave_pos")
        .await
        .map_err(|e| query_failure("SELECT @@gtid_slave_pos", e))?;
    Ok(v.unwrap_or_default())
}

async fn read_heartbeat(c: &mut Conn) -> Result<Option<Heartbeat>, Failure> {
    let row: Result<Option<(i64, u64, String)>, _> = c.query_first(HEARTBEAT_READ_SQL).await;
    match row {
        Ok(Some((us, epoch, writer))) => Ok(chrono::DateTime::from_timestamp_micros(us).map(|written_at| Heartbeat {
            written_at,
            epoch,
            writer,
        })),
        Ok(None) => Ok(None),
        Err(mysql_async::Error::Server(e)) if NO_SUCH_TABLE.contains(&e.code) => Ok(None),
        Err(e) => Err(query_failure("read heartbeat", e)),
    }
}

async fn exec(c: &mut Conn, sql: &str) -> Result<(), Failure> {
    c.query_drop(sql).await.map_err(|e| query_failure(sql, e))
}

async fn read_only(c: &mut Conn) -> Result<bool, Failure> {
    let v: Option<i64> = c
        .query_first("SELECT @@read_only")
        .await
        .map_err(|e| query_failure("SELECT @@read_only", e))?;
    Ok(v.unwrap_or(0) != 0)
}

async fn replica_status(c: &mut Conn, d: Dialect) -> Result<Option<StatusRow>, Failure> {
    let row: Option<mysql_async::Row> = c
        .query_first(d.show_replica_status())
        .await
        .map_err(|e| query_failure(d.show_replica_status(), e))?;
    Ok(row.as_ref().map(StatusRow::from_row))
}

fn query_failure(statement: &str, e: mysql_async::Error) -> Failure {
    match e {
        mysql_async::Error::Server(s) => Failure::Query {
            statement: statement.to_string(),
            code: s.code.to_string(),
            message: s.message,
        },
        other => Failure::Connect(format!("during {statement}: {other}")),
    }
}
