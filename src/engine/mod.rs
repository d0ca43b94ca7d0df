//! Database engines: probe, promote, fence, repoint, dump and restore commands.
//!
//! [`Engine`] is the contract; [`postgres::PostgresEngine`] and
//! [`mysql::MysqlEngine`] implement it, and [`AnyEngine`] picks one at run time.
//!
//! Why an enum and not `dyn Engine`: the set of engines is closed (two), and native
//! `async fn` in traits is not object-safe. Enum dispatch keeps the futures unboxed
//! and `Send`, needs no `async-trait` macro, and a new engine is a compile error at
//! every `match` until it is handled.
//!
//! Every operation is bounded by [`Timeouts`] and fails with its own error type
//! naming the member ([`ProbeError`], [`PromoteError`], ...). Connections are kept
//! open per member and re-established after any failure.
//!
//! Privileges: PostgreSQL needs a superuser with REPLICATION (pg_promote, ALTER
//! SYSTEM, pg_terminate_backend, reading `primary_conninfo` and timeline history).
//! MariaDB needs SUPER/READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, RELOAD,
//! PROCESS/CONNECTION ADMIN (KILL) and, for dumps, SELECT/SHOW VIEW/TRIGGER/EVENT.
//!
//! Dumps: keep the returned [`DumpCommand`]/[`RestoreCommand`] alive until the child
//! exits. PostgreSQL reports the dump's position up front
//! ([`DumpCommand::position`]); MariaDB writes it near the end of the dump, read with
//! [`mysql::gtid_from_dump`].

mod commands;
mod connections;
pub mod error;
pub mod mysql;
mod mysql_dump;
mod mysql_probe;
mod mysql_sql;
mod pg_tls;
pub mod position;
pub mod postgres;
mod postgres_dump;
mod postgres_probe;
mod postgres_sql;
pub mod types;

pub use commands::{DumpCommand, RestoreCommand, file_mode};
pub use error::{
    CreateDatabaseError, DropDatabaseError, DumpError, Failure, FenceError, ProbeError, PromoteError, RepointError,
};
pub use mysql::MysqlEngine;
pub use position::{Comparison, GtidSet, Lsn, MysqlPosition, PgPosition, Position};
pub use postgres::PostgresEngine;
pub use types::{
    Credentials, Drain, EngineConfig, Fencing, Heartbeat, HeartbeatWrite, Member, Probe, Promotion, Repointing, Role,
    SslMode, SyncReplication, Timeouts, TlsOptions, Upstream,
};

use std::future::Future;

/// Which database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Postgres,
    Mysql,
}

/// What lifeboat needs from a database engine.
pub trait Engine: Send + Sync {
    fn kind(&self) -> EngineKind;

    /// Observes one member (role, positions, upstream, lag, version, read-only).
    fn probe(&self, member: &Member) -> impl Future<Output = Result<Probe, ProbeError>> + Send;

    /// Writes lifeboat's heartbeat row on a writable primary.
    fn write_heartbeat(
        &self,
        member: &Member,
        beat: &HeartbeatWrite,
    ) -> impl Future<Output = Result<(), ProbeError>> + Send;

    /// Applies what `member` received but has not applied yet, waiting at most `limit`;
    /// never discards received changes.
    fn drain(
        &self,
        member: &Member,
        limit: std::time::Duration,
    ) -> impl Future<Output = Result<Drain, PromoteError>> + Send;

    /// Makes `member` a writable primary and confirms it; a no-op on a writable primary.
    fn promote(&self, member: &Member) -> impl Future<Output = Result<Promotion, PromoteError>> + Send;

    /// Makes `member` refuse writes and ends its client sessions, if reachable.
    fn fence(&self, member: &Member) -> impl Future<Output = Result<Fencing, FenceError>> + Send;

    /// Makes `replica` follow `primary`.
    fn repoint(
        &self,
        replica: &Member,
        primary: &Member,
    ) -> impl Future<Output = Result<Repointing, RepointError>> + Send;

    /// Creates `database` unless it exists (restore targets); true if created.
    fn create_database(
        &self,
        member: &Member,
        database: &str,
    ) -> impl Future<Output = Result<bool, CreateDatabaseError>> + Send;

    /// Drops `database` (gone already: fine), ending its sessions first. Only for
    /// databases lifeboat created itself, e.g. by a restore that then failed.
    fn drop_database(
        &self,
        member: &Member,
        database: &str,
    ) -> impl Future<Output = Result<(), DropDatabaseError>> + Send;

    /// A command writing a consistent dump of `database` to stdout.
    fn dump(&self, member: &Member, database: &str) -> impl Future<Output = Result<DumpCommand, DumpError>> + Send;

    /// A command restoring a dump read from stdin into existing `database`.
    fn restore(&self, member: &Member, database: &str) -> Result<RestoreCommand, DumpError>;
}

impl Engine for PostgresEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgres
    }
    async fn probe(&self, member: &Member) -> Result<Probe, ProbeError> {
        PostgresEngine::probe(self, member).await
    }
    async fn write_heartbeat(&self, member: &Member, beat: &HeartbeatWrite) -> Result<(), ProbeError> {
        PostgresEngine::write_heartbeat(self, member, beat).await
    }
    async fn drain(&self, member: &Member, limit: std::time::Duration) -> Result<Drain, PromoteError> {
        PostgresEngine::drain(self, member, limit).await
    }
    async fn promote(&self, member: &Member) -> Result<Promotion, PromoteError> {
        PostgresEngine::promote(self, member).await
    }
    async fn fence(&self, member: &Member) -> Result<Fencing, FenceError> {
        PostgresEngine::fence(self, member).await
    }
    async fn repoint(&self, replica: &Member, primary: &Member) -> Result<Repointing, RepointError> {
        PostgresEngine::repoint(self, replica, primary).await
    }
    async fn create_database(&self, member: &Member, database: &str) -> Result<bool, CreateDatabaseError> {
        PostgresEngine::create_database(self, member, database).await
    }
    async fn drop_database(&self, member: &Member, database: &str) -> Result<(), DropDatabaseError> {
        PostgresEngine::drop_database(self, member, database).await
    }
    async fn dump(&self, member: &Member, database: &str) -> Result<DumpCommand, DumpError> {
        PostgresEngine::dump(self, member, database).await
    }
    fn restore(&self, member: &Member, database: &str) -> Result<RestoreCommand, DumpError> {
        PostgresEngine::restore(self, member, database)
    }
}

impl Engine for MysqlEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Mysql
    }
    async fn probe(&self, member: &Member) -> Result<Probe, ProbeError> {
        MysqlEngine::probe(self, member).await
    }
    async fn write_heartbeat(&self, member: &Member, beat: &HeartbeatWrite) -> Result<(), ProbeError> {
        MysqlEngine::write_heartbeat(self, member, beat).await
    }
    async fn drain(&self, member: &Member, limit: std::time::Duration) -> Result<Drain, PromoteError> {
        MysqlEngine::drain(self, member, limit).await
    }
    async fn promote(&self, member: &Member) -> Result<Promotion, PromoteError> {
        MysqlEngine::promote(self, member).await
    }
    async fn fence(&self, member: &Member) -> Result<Fencing, FenceError> {
        MysqlEngine::fence(self, member).await
    }
    async fn repoint(&self, replica: &Member, primary: &Member) -> Result<Repointing, RepointError> {
        MysqlEngine::repoint(self, replica, primary).await
    }
    async fn create_database(&self, member: &Member, database: &str) -> Result<bool, CreateDatabaseError> {
        MysqlEngine::create_database(self, member, database).await
    }
    async fn drop_database(&self, member: &Member, database: &str) -> Result<(), DropDatabaseError> {
        MysqlEngine::drop_database(self, member, database).await
    }
    async fn dump(&self, member: &Member, database: &str) -> Result<DumpCommand, DumpError> {
        MysqlEngine::dump(self, member, database).await
    }
    fn restore(&self, member: &Member, database: &str) -> Result<RestoreCommand, DumpError> {
        MysqlEngine::restore(self, member, database)
    }
}

/// One of the engines, chosen at run time (e.g. from a RecoveryPlan's `engine`).
#[derive(Debug)]
pub enum AnyEngine {
    Postgres(PostgresEngine),
    Mysql(MysqlEngine),
}

impl AnyEngine {
    pub fn new(kind: EngineKind, config: EngineConfig) -> Self {
        match kind {
            EngineKind::Postgres => AnyEngine::Postgres(PostgresEngine::new(config)),
            EngineKind::Mysql => AnyEngine::Mysql(MysqlEngine::new(config)),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $e:ident => $call:expr) => {
        match $self {
            AnyEngine::Postgres($e) => $call,
            AnyEngine::Mysql($e) => $call,
        }
    };
}

impl Engine for AnyEngine {
    fn kind(&self) -> EngineKind {
        dispatch!(self, e => e.kind())
    }
    async fn probe(&self, member: &Member) -> Result<Probe, ProbeError> {
        dispatch!(self, e => Engine::probe(e, member).await)
    }
    async fn write_heartbeat(&self, member: &Member, beat: &HeartbeatWrite) -> Result<(), ProbeError> {
        dispatch!(self, e => Engine::write_heartbeat(e, member, beat).await)
    }
    async fn drain(&self, member: &Member, limit: std::time::Duration) -> Result<Drain, PromoteError> {
        dispatch!(self, e => Engine::drain(e, member, limit).await)
    }
    async fn promote(&self, member: &Member) -> Result<Promotion, PromoteError> {
        dispatch!(self, e => Engine::promote(e, member).await)
    }
    async fn fence(&self, member: &Member) -> Result<Fencing, FenceError> {
        dispatch!(self, e => Engine::fence(e, member).await)
    }
    async fn repoint(&self, replica: &Member, primary: &Member) -> Result<Repointing, RepointError> {
        dispatch!(self, e => Engine::repoint(e, replica, primary).await)
    }
    async fn create_database(&self, member: &Member, database: &str) -> Result<bool, CreateDatabaseError> {
        dispatch!(self, e => Engine::create_database(e, member, database).await)
    }
    async fn drop_database(&self, member: &Member, database: &str) -> Result<(), DropDatabaseError> {
        dispatch!(self, e => Engine::drop_database(e, member, database).await)
    }
    async fn dump(&self, member: &Member, database: &str) -> Result<DumpCommand, DumpError> {
        dispatch!(self, e => Engine::dump(e, member, database).await)
    }
    fn restore(&self, member: &Member, database: &str) -> Result<RestoreCommand, DumpError> {
        dispatch!(self, e => Engine::restore(e, member, database))
    }
}
