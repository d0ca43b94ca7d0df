//! Typed errors, one enum per operation, each naming the member it concerns. The
//! shared [`Failure`] says what went wrong underneath.

use std::time::Duration;

/// What went wrong talking to a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The operation did not finish within its configured time limit.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// No connection could be made (refused, no route, DNS, closed during handshake).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server rejected the credentials.
    #[error("authentication failed for user {user:?}: {message}")]
    Auth { user: String, message: String },
    /// TLS was required but could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// A statement failed on the server.
    #[error("{statement:?} failed: {message} (code {code})")]
    Query {
        statement: String,
        code: String,
        message: String,
    },
    /// The server answered something this layer does not understand.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl Failure {
    /// The member could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Failure::Timeout(_) | Failure::Connect(_))
    }
}

/// `probe` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("probing {member}: {failure}")]
pub struct ProbeError {
    pub member: String,
    #[source]
    pub failure: Failure,
}

/// `promote` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoteError {
    #[error("promoting {member}: {failure}")]
    Failed {
        member: String,
        #[source]
        failure: Failure,
    },
    /// MariaDB: the SQL thread did not apply everything received in time; promoting now
    /// would lose acknowledged transactions.
    #[error("promoting {member}: relay log not applied up to {received} within {waited:?}")]
    RelayNotApplied {
        member: String,
        received: String,
        waited: Duration,
    },
    /// The promotion ran but a fresh check still finds the member read-only.
    #[error("promoting {member}: still refuses writes after promotion ({detail})")]
    NotWritable { member: String, detail: String },
}

/// `fence` failed while talking to a reachable member (unreachable members are
/// reported as an unconfirmed [`super::Fencing`], not as an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fencing {member}: {failure}")]
pub struct FenceError {
    pub member: String,
    #[source]
    pub failure: Failure,
}

/// `repoint` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepointError {
    #[error("repointing {replica} to {primary}: {failure}")]
    Failed {
        replica: String,
        primary: String,
        #[source]
        failure: Failure,
    },
    /// The member is not a replica (PG: not in recovery), so it cannot follow anyone
    /// without being rebuilt.
    #[error("repointing {replica}: it is not a replica ({detail})")]
    NotAReplica { replica: String, detail: String },
    /// A value that would be written into replication settings is unusable.
    #[error("repointing {replica}: invalid {field}: {reason}")]
    InvalidInput {
        replica: String,
        field: &'static str,
        reason: String,
    },
}

/// Preparing a dump or restore command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    #[error("preparing dump of {database:?} on {member}: {failure}")]
    Failed {
        member: String,
        database: String,
        #[source]
        failure: Failure,
    },
    /// The credentials file for the client tool could not be written.
    #[error("writing the private credentials file for {member}: {message}")]
    CredentialsFile { member: String, message: String },
    /// Bad input, e.g. a database name that cannot be passed safely.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// `create_database` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("creating database {database:?} on {member}: {failure}")]
pub struct CreateDatabaseError {
    pub member: String,
    pub database: String,
    #[source]
    pub failure: Failure,
}

/// `drop_database` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dropping database {database:?} on {member}: {failure}")]
pub struct DropDatabaseError {
    pub member: String,
    pub database: String,
    #[source]
    pub failure: Failure,
}
