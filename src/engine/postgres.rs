//! PostgreSQL (tokio-postgres): probe, promote, fence, repoint.
//!
//! Connections go to database `postgres` and are kept per member; any failure drops
//! the connection so the next operation reconnects.
//!
//! TLS follows libpq's `sslmode` (see [`super::pg_tls`]); the dump and restore tools
//! get the same `sslmode` and CA file through `PGSSLMODE` / `PGSSLROOTCERT`.
//!
//! lifeboat's user must be a superuser (or hold the grants for `pg_promote`,
//! `ALTER SYSTEM`, `pg_terminate_backend`, `pg_read_file` and reading
//! `primary_conninfo`).

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::connections::Connections;
use super::error::{
    CreateDatabaseError, DropDatabaseError, Failure, FenceError, ProbeError, PromoteError, RepointError,
};
use super::pg_tls;
use super::postgres_probe::{
    HEARTBEAT_CREATE_SQL, HEARTBEAT_READ_SQL, PROBE_SQL, heartbeat_from_row, heartbeat_write_sql, probe_from_row,
    timeline_history,
};
use super::postgres_sql::{connect_failure, primary_conninfo, query_failure, quote_ident, quote_literal};
use super::types::{Drain, EngineConfig, Fencing, HeartbeatWrite, Member, Probe, Promotion, Repointing};

/// Upper bound for DROP DATABASE (at least the operation timeout).
const DROP_TIMEOUT: Duration = Duration::from_secs(60);

/// The PostgreSQL engine.
#[derive(Debug)]
pub struct PostgresEngine {
    pub(crate) config: EngineConfig,
    conns: Connections<Client>,
}

impl PostgresEngine {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            conns: Connections::default(),
        }
    }

    /// Opens a new connection to `dbname` (not kept).
    pub(crate) async fn connect(&self, member: &Member, dbname: &str) -> Result<Client, Failure> {
        let (ssl_mode, tls) = pg_tls::connector(&self.config.tls)?;
        let creds = &self.config.credentials;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&member.host)
            .port(member.port)
            .user(&creds.username)
            .dbname(dbname)
            .application_name("lifeboat")
            .ssl_mode(ssl_mode)
            .connect_timeout(self.config.timeouts.connect);
        if !creds.password.is_empty() {
            cfg.password(&creds.password);
        }
        let limit = self.config.timeouts.connect;
        let (client, connection) = tokio::time::timeout(limit, cfg.connect(tls))
            .await
            .map_err(|_| Failure::Timeout(limit))?
            .map_err(|e| connect_failure(&creds.username, &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    }

    /// Runs `op` on the kept connection of `member` (connecting if needed) within
    /// `limit`; the connection is kept only if it survived.
    async fn with_client<T>(
        &self,
        member: &Member,
        limit: Duration,
        op: impl AsyncFnOnce(&Client) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let key = member.address();
        let work = async {
            let client = match self.conns.take(&key) {
                Some(c) if !c.is_closed() => c,
                _ => self.connect(member, "postgres").await?,
            };
            let result = op(&client).await;
            if !client.is_closed() && result.is_ok() {
                self.conns.put(&key, client);
            }
            result
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Failure::Timeout(limit))?
    }

    /// Role, positions, upstream, lag and heartbeat of `member`.
    pub async fn probe(&self, member: &Member) -> Result<Probe, ProbeError> {
        let limit = self.config.timeouts.probe;
        self.with_client(member, limit, async |c| {
            let row = c
                .query_one(PROBE_SQL, &[])
                .await
                .map_err(|e| query_failure("probe", &e))?;
            let mut probe = probe_from_row(&row)?;
            if let super::position::Position::Postgres(pos) = &mut probe.position {
                pos.history = timeline_history(c, pos.timeline).await;
            }
            probe.heartbeat = match c.query_opt(HEARTBEAT_READ_SQL, &[]).await {
                Ok(Some(row)) => Some(heartbeat_from_row(&row)?),
                Ok(None) => None,
                Err(e) if is_undefined(&e) => None,
                Err(e) => return Err(query_failure("read heartbeat", &e)),
            };
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
        let sql = heartbeat_write_sql(beat.written_at.timestamp_micros(), beat.epoch, &beat.writer);
        self.with_client(member, limit, async |c| {
            match c.batch_execute(&sql).await {
                Ok(()) => Ok(()),
                Err(e) if is_undefined(&e) => {
                    // The failed statement aborted the transaction it opened.
                    let _ = c.batch_execute("ROLLBACK").await;
                    c.batch_execute(HEARTBEAT_CREATE_SQL)
                        .await
                        .map_err(|e| query_failure("create lifeboat.heartbeat", &e))?;
                    c.batch_execute(&sql)
                        .await
                        .map_err(|e| query_failure("write heartbeat", &e))
                }
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Err(query_failure("write heartbeat", &e))
                }
            }
        })
        .await
        .map_err(|failure| ProbeError {
            member: member.name.clone(),
            failure,
        })
    }

    /// Applies everything `member` received before it is promoted: resumes a paused
    /// replay and waits (up to `limit`) until the replay position reaches the received
    /// one. Promotion itself replays what is in pg_wal too; waiting here makes the wait
    /// visible and bounded, and a replay that does not move is reported, not ignored.
    pub async fn drain(&self, member: &Member, limit: Duration) -> Result<Drain, PromoteError> {
        let failed = |failure| PromoteError::Failed {
            member: member.name.clone(),
            failure,
        };
        let deadline = tokio::time::Instant::now() + limit;
        let mut resumed = false;
        loop {
            let (in_recovery, paused, pending) = self
                .with_client(member, self.config.timeouts.operation, async |c| {
                    let row = c
                        .query_one(
                            "SELECT pg_is_in_recovery(),
                               CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() <> 'not paused' END,
                               CASE WHEN pg_is_in_recovery()
                                    THEN greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8 END",
                            &[],
                        )
                        .await
                        .map_err(|e| query_failure("drain state", &e))?;
                    Ok((
                        row.get::<_, bool>(0),
                        row.get::<_, Option<bool>>(1).unwrap_or(false),
                        row.get::<_, Option<f64>>(2).unwrap_or(0.0) as u64,
                    ))
                })
                .await
                .map_err(failed)?;
            if !in_recovery || pending == 0 {
                return Ok(Drain {
                    resumed_apply: resumed,
                    pending_at_end: 0,
                });
            }
            if paused {
                self.with_client(member, self.config.timeouts.operation, async |c| {
                    c.batch_execute("SELECT pg_wal_replay_resume()")
                        .await
                        .map_err(|e| query_failure("pg_wal_replay_resume", &e))
                })
                .await
                .map_err(failed)?;
                resumed = true;
            }
            if tokio::time::Instant::now() > deadline {
                return Ok(Drain {
                    resumed_apply: resumed,
                    pending_at_end: pending,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Promotes a replica (`pg_promote(wait => true)`) and confirms it accepts
    /// writes; clears a fence (`default_transaction_read_only`) left on it. Promoting a
    /// writable primary does nothing.
    pub async fn promote(&self, member: &Member) -> Result<Promotion, PromoteError> {
        let limit = self.config.timeouts.promote;
        let failed = |failure| PromoteError::Failed {
            member: member.name.clone(),
            failure,
        };
        let wait_secs = limit.as_secs().clamp(1, i32::MAX as u64) as i32;
        let already = self
            .with_client(member, limit, async |c| {
                let (in_recovery, read_only) = writability(c).await?;
                if in_recovery {
                    match c.query_one("SELECT pg_promote(true, $1)", &[&wait_secs]).await {
                        Ok(row) if row.get::<_, bool>(0) => {}
                        Ok(_) => {
                            return Err(Failure::Unexpected(format!(
                                "pg_promote did not finish within {wait_secs} s"
                            )));
                        }
                        // Promoted by someone else meanwhile: fine, confirm below.
                        Err(e) if e.to_string().contains("recovery is not in progress") => {}
                        Err(e) => return Err(query_failure("pg_promote", &e)),
                    }
                }
                if read_only {
                    // Separate statements: ALTER SYSTEM refuses implicit transactions.
                    for sql in [
                        "ALTER SYSTEM RESET default_transaction_read_only",
                        "SELECT pg_reload_conf()",
                    ] {
                        c.batch_execute(sql).await.map_err(|e| query_failure("unfence", &e))?;
                    }
                }
                Ok(!in_recovery && !read_only)
            })
            .await
            .map_err(failed)?;
        self.confirm_writable(member, limit).await?;
        Ok(Promotion {
            already_primary: already,
        })
    }

    /// Polls fresh sessions until one is out of recovery and not read-only by default.
    async fn confirm_writable(&self, member: &Member, limit: Duration) -> Result<(), PromoteError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let client = self
                .connect(member, "postgres")
                .await
                .map_err(|failure| PromoteError::Failed {
                    member: member.name.clone(),
                    failure,
                })?;
            let (in_recovery, read_only) = writability(&client).await.map_err(|failure| PromoteError::Failed {
                member: member.name.clone(),
                failure,
            })?;
            if !in_recovery && !read_only {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(PromoteError::NotWritable {
                    member: member.name.clone(),
                    detail: format!("in_recovery={in_recovery} default_read_only={read_only}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fences `member`: `ALTER SYSTEM SET default_transaction_read_only = on` and a
    /// reload; once a fresh session shows it in force, every other client session is
    /// terminated (WAL senders are kept so replicas still receive the last WAL).
    ///
    /// Guarantee when `confirmed`: every session that existed before is gone, and every
    /// session started since begins read-only, so ordinary application writes fail. A
    /// client that explicitly runs `SET default_transaction_read_only = off` or
    /// `BEGIN READ WRITE` can still write: PostgreSQL has no server-wide read-only
    /// switch short of recovery. The hard fence is taking the member out of the writer
    /// Service, which the controller does first.
    pub async fn fence(&self, member: &Member) -> Result<Fencing, FenceError> {
        let limit = self.config.timeouts.operation;
        let result = self
            .with_client(member, limit, async |c| {
                for sql in [
                    "ALTER SYSTEM SET default_transaction_read_only = on",
                    "SELECT pg_reload_conf()",
                ] {
                    c.batch_execute(sql).await.map_err(|e| query_failure("fence", &e))?;
                }
                let deadline = tokio::time::Instant::now() + limit;
                loop {
                    let fresh = self.connect(member, "postgres").await?;
                    if writability(&fresh).await?.1 {
                        break;
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(Failure::Timeout(limit));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let row = c
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                        &[],
                    )
                    .await
                    .map_err(|e| query_failure("terminate sessions", &e))?;
                Ok(row.get::<_, i64>(0) as u64)
            })
            .await;
        match result {
            Ok(sessions_terminated) => Ok(Fencing {
                reachable: true,
                confirmed: true,
                sessions_terminated,
                detail: None,
            }),
            Err(failure) if failure.is_unreachable() => Ok(Fencing {
                reachable: false,
                confirmed: false,
                sessions_terminated: 0,
                detail: Some(failure.to_string()),
            }),
            Err(failure) => Err(FenceError {
                member: member.name.clone(),
                failure,
            }),
        }
    }

    /// Makes replica `replica` stream from `primary`: `primary_conninfo` via ALTER
    /// SYSTEM (with lifeboat's credentials and `application_name` = the replica's
    /// name) and a reload, which restarts the WAL receiver. `recovery_target_timeline`
    /// must be `latest` (the default) to follow the promoted primary's new timeline;
    /// if it is not, it is set and [`Repointing::restart_required`] is true.
    pub async fn repoint(&self, replica: &Member, primary: &Member) -> Result<Repointing, RepointError> {
        let conninfo = primary_conninfo(&self.config, primary, &replica.name);
        let sql = format!("ALTER SYSTEM SET primary_conninfo = {}", quote_literal(&conninfo));
        let limit = self.config.timeouts.operation;
        let outcome = self
            .with_client(replica, limit, async |c| {
                let (in_recovery, _) = writability(c).await?;
                if !in_recovery {
                    return Ok(None);
                }
                c.batch_execute(&sql)
                    .await
                    .map_err(|e| query_failure("ALTER SYSTEM SET primary_conninfo", &e))?;
                let target: String = c
                    .query_one("SELECT current_setting('recovery_target_timeline')", &[])
                    .await
                    .map_err(|e| query_failure("recovery_target_timeline", &e))?
                    .get(0);
                let restart_required = target != "latest";
                if restart_required {
                    c.batch_execute("ALTER SYSTEM SET recovery_target_timeline = 'latest'")
                        .await
                        .map_err(|e| query_failure("recovery_target_timeline", &e))?;
                }
                c.batch_execute("SELECT pg_reload_conf()")
                    .await
                    .map_err(|e| query_failure("pg_reload_conf", &e))?;
                Ok(Some(Repointing { restart_required }))
            })
            .await
            .map_err(|failure| RepointError::Failed {
                replica: replica.name.clone(),
                primary: primary.name.clone(),
                failure,
            })?;
        outcome.ok_or_else(|| RepointError::NotAReplica {
            replica: replica.name.clone(),
            detail: "pg_is_in_recovery() is false".into(),
        })
    }

    /// Creates database `name` unless it exists. Returns whether it was created.
    pub async fn create_database(&self, member: &Member, name: &str) -> Result<bool, CreateDatabaseError> {
        let limit = self.config.timeouts.operation;
        let sql = format!("CREATE DATABASE {}", quote_ident(name));
        self.with_client(member, limit, async |c| {
            let exists = c
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .map_err(|e| query_failure("pg_database", &e))?
                .is_some();
            if !exists {
                c.batch_execute(&sql)
                    .await
                    .map_err(|e| query_failure("CREATE DATABASE", &e))?;
            }
            Ok(!exists)
        })
        .await
        .map_err(|failure| CreateDatabaseError {
            member: member.name.clone(),
            database: name.to_string(),
            failure,
        })
    }
    /// Drops database `name` with `WITH (FORCE)`, which ends its sessions first
    /// (PostgreSQL 13+); older servers get their sessions terminated, then a plain DROP.
    pub async fn drop_database(&self, member: &Member, name: &str) -> Result<(), DropDatabaseError> {
        // Removing a large database's files takes longer than a probe.
        let limit = self.config.timeouts.operation.max(DROP_TIMEOUT);
        let ident = quote_ident(name);
        self.with_client(member, limit, async |c| {
            match c
                .batch_execute(&format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)"))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if e.code() == Some(&SqlState::SYNTAX_ERROR) => {}
                Err(e) => return Err(query_failure("DROP DATABASE", &e)),
            }
            c.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .map_err(|e| query_failure("terminate sessions", &e))?;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {ident}"))
                .await
                .map_err(|e| query_failure("DROP DATABASE", &e))
        })
        .await
        .map_err(|failure| DropDatabaseError {
            member: member.name.clone(),
            database: name.to_string(),
            failure,
        })
    }
}

/// The heartbeat schema or table does not exist (yet).
fn is_undefined(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(e.code(), Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME)
}

/// (in recovery, read-only by default) as a session sees it.
async fn writability(c: &Client) -> Result<(bool, bool), Failure> {
    let row = c
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on'",
            &[],
        )
        .await
        .map_err(|e| query_failure("writability", &e))?;
    Ok((row.get(0), row.get(1)))
}
