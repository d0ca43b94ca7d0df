//! `pg_dump -Fc -Z0` and `pg_restore` commands (compression happens downstream, zstd).
//!
//! Connection parameters go through libpq environment variables (`PGHOST`,
//! `PGDATABASE`, `PGPASSWORD`, `PGSSLMODE`, ...), so argv never holds the password and
//! a database name can never be mistaken for a connection string.
//!
//! Consistent position: before `pg_dump` starts, lifeboat opens a REPEATABLE READ
//! transaction on the database, exports its snapshot and reads, in the same
//! statement, the WAL position (`pg_current_wal_lsn()` on a primary,
//! `pg_last_wal_replay_lsn()` on a replica); `pg_dump --snapshot` then dumps exactly
//! that snapshot. Every transaction visible in the dump committed at or before the
//! reported LSN (the snapshot is taken at statement start, the LSN read just after),
//! so the LSN is a tight upper bound of the dump's position. The transaction stays
//! open (in the returned [`DumpCommand`]) until the command is dropped.

use tokio::process::Command;

use super::commands::{DumpCommand, KeepAlive, RestoreCommand, check_database_name};
use super::error::{DumpError, Failure};
use super::position::{Lsn, PgPosition, Position};
use super::postgres::PostgresEngine;
use super::postgres_sql::{query_failure, quote_conninfo};
use super::types::{EngineConfig, Member};

impl PostgresEngine {
    /// `pg_dump -Fc -Z0` of `database` at an exported snapshot whose LSN is returned
    /// in [`DumpCommand::position`].
    pub async fn dump(&self, member: &Member, database: &str) -> Result<DumpCommand, DumpError> {
        check_database_name(database)?;
        let failed = |failure| DumpError::Failed {
            member: member.name.clone(),
            database: database.to_string(),
            failure,
        };
        let limit = self.config.timeouts.operation;
        let work = async {
            let client = self.connect(member, database).await?;
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(|e| query_failure("BEGIN", &e))?;
            let row = client
                .query_one(
                    "SELECT pg_export_snapshot(),
                       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                             ELSE pg_current_wal_lsn() END)::text,
                       CASE WHEN pg_is_in_recovery()
                            THEN (SELECT timeline_id FROM pg_control_checkpoint())
                            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
                       END",
                    &[],
                )
                .await
                .map_err(|e| query_failure("pg_export_snapshot", &e))?;
            let snapshot: String = row.get(0);
            let lsn: Option<String> = row.get(1);
            let timeline: i32 = row.get(2);
            let lsn = lsn
                .map(|s| s.parse::<Lsn>())
                .transpose()
                .map_err(|e| Failure::Unexpected(e.to_string()))?;
            Ok::<_, Failure>((client, snapshot, lsn, timeline))
        };
        let (client, snapshot, lsn, timeline) = tokio::time::timeout(limit, work)
            .await
            .map_err(|_| failed(Failure::Timeout(limit)))?
            .map_err(failed)?;
        let mut command = Command::new("pg_dump");
        libpq_env(&mut command, &self.config, member);
        command
            .env("PGDATABASE", database)
            .args(["--format=custom", "--compress=0", "--no-password"])
            .arg(format!("--snapshot={snapshot}"));
        Ok(DumpCommand {
            command,
            position: Some(Position::Postgres(PgPosition {
                timeline: u32::try_from(timeline).unwrap_or(0),
                current: lsn,
                ..Default::default()
            })),
            keep: KeepAlive::PgSnapshot(client),
        })
    }

    /// `pg_restore` of a custom-format dump on stdin into existing `database`, in one
    /// transaction (all or nothing), stopping at the first error. Ownership and
    /// grants are not restored (`--no-owner --no-acl`): the target cluster's roles
    /// may differ; the restoring user owns the objects.
    pub fn restore(&self, member: &Member, database: &str) -> Result<RestoreCommand, DumpError> {
        check_database_name(database)?;
        let mut command = Command::new("pg_restore");
        libpq_env(&mut command, &self.config, member);
        command
            .args([
                "--format=custom",
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                "--single-transaction",
                "--no-password",
            ])
            // A conninfo string, so the name is never parsed as one itself.
            .arg(format!("--dbname=dbname={}", quote_conninfo(database)));
        Ok(RestoreCommand {
            command,
            keep: KeepAlive::Nothing,
        })
    }
}

/// libpq environment for the client tools; inherited PG* variables are cleared first
/// so the caller's environment cannot redirect the dump.
fn libpq_env(command: &mut Command, config: &EngineConfig, member: &Member) {
    for var in [
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGPASSFILE",
        "PGOPTIONS",
        "PGHOSTADDR",
        "PGSSLCERT",
        "PGSSLKEY",
    ] {
        command.env_remove(var);
    }
    command
        .env("PGHOST", &member.host)
        .env("PGPORT", member.port.to_string())
        .env("PGUSER", &config.credentials.username)
        .env("PGSSLMODE", config.tls.mode.as_libpq())
        .env("PGAPPNAME", "lifeboat")
        .env(
            "PGCONNECT_TIMEOUT",
            config.timeouts.connect.as_secs().max(1).to_string(),
        );
    if config.credentials.password.is_empty() {
        command.env_remove("PGPASSWORD");
    } else {
        command.env("PGPASSWORD", &config.credentials.password);
    }
    match &config.tls.ca_file {
        Some(ca) => command.env("PGSSLROOTCERT", ca),
        None => command.env_remove("PGSSLROOTCERT"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::Credentials;

    #[test]
    fn restore_keeps_password_out_of_argv() {
        let engine = PostgresEngine::new(EngineConfig {
            credentials: Credentials::new("u", "s3cret"),
            ..Default::default()
        });
        let cmd = engine.restore(&Member::new("m", "127.0.0.1", 5432), "shop").unwrap();
        let std = cmd.command.as_std();
        assert!(std.get_args().all(|a| !a.to_string_lossy().contains("s3cret")));
        let env: Vec<_> = std.get_envs().collect();
        assert!(
            env.iter()
                .any(|(k, v)| *k == "PGPASSWORD" && v.is_some_and(|v| v == "s3cret"))
        );
        assert!(std.get_args().any(|a| a.to_string_lossy() == "--dbname=dbname='shop'"));
    }
}
