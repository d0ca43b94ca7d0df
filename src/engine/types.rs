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
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            operation: Duration::from_secs(5),
            promote: Duration::from_secs(60),
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
