//! What the engine layer talks about: members, credentials, TLS, timeouts and what a
//! probe observed. No Kubernetes types here.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::position::Position;

/// One database server of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// Stable name (pod or endpoint name), used in errors and logs.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
}

impl Member {
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        Self {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    /// `host:port`, the key connections are kept under.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.name, self.host, self.port)
    }
}

/// Username and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS mode, named as libpq's `sslmode`; MariaDB maps it onto `--ssl` /
/// `--ssl-verify-server-cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP.
    #[default]
    Disable,
    /// Plain TCP for lifeboat's own connections (libpq-style negotiation is left to the
    /// dump tools, which receive `prefer`).
    Prefer,
    /// Encrypt, do not verify the certificate.
    Require,
    /// Encrypt and verify the certificate chain against `ca_file`.
    VerifyCa,
    /// Also verify the host name.
    VerifyFull,
}

impl SslMode {
    /// libpq spelling (`PGSSLMODE`).
    pub fn as_libpq(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the connection must be encrypted.
    pub fn requires_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// TLS settings for lifeboat's connections and the dump/restore tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    /// PEM file with the CA certificate(s) (`sslrootcert` / `--ssl-ca`).
    pub ca_file: Option<PathBuf>,
}

/// Time limits. Every operation is bounded by one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (TCP + TLS + authentication).
    pub connect: Duration,
    /// One probe, fence or repoint, including any connect.
    pub operation: Duration,
    /// One promotion, including waiting for the relay log (MariaDB) or end of recovery.
    pub promote: Duration,
    /// One probe (including its connect): a hung server must not hold a probe round for
    /// longer than the plan's probe interval.
    pub probe: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            operation: Duration::from_secs(5),
            promote: Duration::from_secs(60),
            probe: Duration::from_secs(5),
        }
    }
}

/// Everything an engine needs besides the member it talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineConfig {
    pub credentials: Credentials,
    pub tls: TlsOptions,
    pub timeouts: Timeouts,
}

impl Default for Credentials {
    fn default() -> Self {
        Self::new("", "")
    }
}

/// What a member is in its cluster, by its own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts writes unless fenced (PG: not in recovery; MySQL: no replication configured).
    Primary,
    /// Replays another server's changes (PG: in recovery; MySQL: replication configured).
    Replica,
    /// Could not be determined.
    Unknown,
}

/// The replica's view of the server it replicates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Configured upstream host (PG: from the WAL receiver or `primary_conninfo`;
    /// MySQL: `Master_Host`).
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Changes arrive right now (PG: WAL receiver status `streaming`; MySQL: IO thread
    /// `Slave_IO_Running = Yes`). False means the upstream is lost or not yet reached.
    pub receiving: bool,
    /// Received changes are being applied (PG: replay not paused; MySQL: SQL thread
    /// running).
    pub applying: bool,
    /// Engine wording of the state (PG: receiver status or `no wal receiver`; MySQL:
    /// `io=Yes sql=No`), for humans.
    pub state: String,
    /// Last replication error the server reported, if any.
    pub last_error: Option<String>,
    /// PostgreSQL: how long ago the WAL receiver last got any message (WAL or keepalive)
    /// from its upstream, by the replica's own clock. `None` when unknown (no receiver,
    /// or MySQL, where [`Upstream::progress`] serves instead).
    pub silence: Option<Duration>,
    /// MySQL/MariaDB: a marker that changes whenever anything arrives from the upstream
    /// (binlog position read, heartbeats received). Compared between probe rounds.
    pub progress: Option<String>,
    /// MySQL/MariaDB: `Slave_heartbeat_period`, how often an idle primary sends a
    /// heartbeat event. `None` when unknown or disabled.
    pub heartbeat_period: Option<Duration>,
    /// PostgreSQL: `wal_receiver_status_interval` of this replica (its idle replies to the
    /// primary; see [`crate::policy::detection`] for why it matters).
    pub status_interval: Option<Duration>,
}

/// One observation of a member.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub role: Role,
    /// Engine positions (see [`Position`]).
    pub position: Position,
    /// Set on replicas.
    pub upstream: Option<Upstream>,
    /// Replicas only. PostgreSQL: bytes of WAL the upstream is known to have (the
    /// newest of the receiver's `latest_end_lsn`, written and flushed LSN) minus the
    /// replay LSN, i.e. WAL not yet applied here (0 when caught up; never negative).
    /// MySQL: `Read_Master_Log_Pos - Exec_Master_Log_Pos` when both refer to the same
    /// upstream binlog file, else `None`. Neither sees WAL/events the upstream has not
    /// sent yet; for that compare with the primary's own probe
    /// ([`super::position::lag_between`]).
    pub lag_bytes: Option<u64>,
    /// Replicas only, MySQL: transactions received but not applied
    /// (`Gtid_IO_Pos` minus `gtid_slave_pos`, per GTID domain). PostgreSQL: `None`.
    pub lag_transactions: Option<u64>,
    /// Replicas only: 0 when nothing received is left to apply. Otherwise PostgreSQL:
    /// `now() - pg_last_xact_replay_timestamp()`, the age of the newest applied commit
    /// (an upper bound on staleness; `None` if nothing was replayed since start);
    /// MySQL: `Seconds_Behind_Master` (`None` while the SQL thread is stopped, where
    /// MySQL reports NULL).
    pub lag_seconds: Option<f64>,
    /// `server_version` / `@@version`.
    pub server_version: String,
    /// Whether ordinary sessions are refused writes (PG: in recovery or
    /// `default_transaction_read_only`; MySQL: `@@read_only`).
    pub read_only: bool,
    /// lifeboat's heartbeat row as this member has it (applied). `None` when the table
    /// does not exist (heartbeat disabled, or never written yet).
    pub heartbeat: Option<Heartbeat>,
    /// PostgreSQL: this server's `wal_sender_timeout` (on a primary: half of it is the
    /// longest an idle primary stays silent towards a replica that replies rarely).
    pub wal_sender_timeout: Option<Duration>,
    /// Primaries: synchronous replication as configured and in force right now.
    pub synchronous: Option<SyncReplication>,
}

/// lifeboat's heartbeat row (`lifeboat.heartbeat`, one row): written on the primary every
/// probe round with the operator's clock, read back on every member. A replica that has
/// applied the row written at T holds every transaction acknowledged before T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Operator time at which the row was written (before its commit).
    pub written_at: chrono::DateTime<chrono::Utc>,
    /// Failover epoch of the primary that wrote it (raised by each promotion).
    pub epoch: u64,
    /// Member name that wrote it.
    pub writer: String,
}

/// Synchronous replication on a primary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncReplication {
    /// PostgreSQL: `synchronous_standby_names` is set and `synchronous_commit` waits for
    /// a standby (`on`, `remote_write` or `remote_apply`).
    pub configured: bool,
    /// Standbys (application names) that are `sync` or `quorum` right now.
    pub standbys: Vec<String>,
}

impl SyncReplication {
    /// Commits are acknowledged only once a standby has them.
    pub fn in_force(&self) -> bool {
        self.configured && !self.standbys.is_empty()
    }
}

/// A heartbeat to write on the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatWrite {
    /// The operator's clock now.
    pub written_at: chrono::DateTime<chrono::Utc>,
    /// The plan's failover epoch (a promotion writes its new epoch).
    pub epoch: u64,
    /// The member written to.
    pub writer: String,
}

/// Result of draining a replica before its promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    /// Apply was stopped or paused and lifeboat restarted it.
    pub resumed_apply: bool,
    /// Received but not yet applied when the wait ended (0: fully drained). PostgreSQL:
    /// WAL bytes; MySQL/MariaDB: transactions.
    pub pending_at_end: u64,
}

/// Result of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The member was already a writable primary: nothing was done.
    pub already_primary: bool,
}

/// Result of fencing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fencing {
    /// The member answered.
    pub reachable: bool,
    /// A fresh session confirmed the member refuses ordinary writes.
    pub confirmed: bool,
    /// Client sessions ended.
    pub sessions_terminated: u64,
    /// Why fencing is not confirmed, for the Failover status.
    pub detail: Option<String>,
}

/// Result of repointing a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repointing {
    /// PostgreSQL: `recovery_target_timeline` was not `latest` and was changed, which
    /// takes effect only after a restart.
    pub restart_required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let config = EngineConfig {
            credentials: Credentials::new("lifeboat", "hunter2"),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("lifeboat") && !shown.contains("hunter2"), "{shown}");
    }
}
