//! Streaming a backup's objects into the target, and undoing that after a failed step:
//! only databases this attempt created are dropped, never one that existed before.

use super::source::Resolved;
use super::target_name;
use crate::api::{EngineKind, Restore};
use crate::engine::{AnyEngine, Engine, Member};
use crate::pipeline::restore::{RestoreOptions, Verification, restore_object};

/// Creates and fills one database per object; returns the bytes read from S3. Every
/// database it creates is pushed to `created` before anything is written into it.
pub(super) async fn restore_all(
    engine: &AnyEngine,
    member: &Member,
    restore: &Restore,
    resolved: &Resolved,
    created: &mut Vec<String>,
) -> Result<u64, String> {
    let verification = match resolved.engine {
        EngineKind::Postgres => Verification::Streaming,
        EngineKind::Mysql => Verification::BeforeRestore {
            spool_dir: std::env::temp_dir(),
        },
    };
    let options = RestoreOptions {
        identities: resolved.identities.clone(),
        verification,
    };
    let mut bytes = 0u64;
    for object in &resolved.manifest.objects {
        let database = target_name(restore, &object.database);
        match engine.create_database(member, &database).await {
            Ok(true) => created.push(database.clone()),
            Ok(false) => {
                return Err(format!(
                    "database {database} already exists on {}:{}; lifeboat never restores over data: drop it, or rename with spec.renames",
                    member.host, member.port
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
        let command = engine.restore(member, &database).map_err(|e| e.to_string())?;
        let crate::engine::RestoreCommand { command, keep } = command;
        let stats = restore_object(&resolved.store, object, command, &options)
            .await
            .map_err(|e| format!("restoring {database}: {e}"));
        drop(keep);
        bytes += stats?.stored_bytes;
    }
    Ok(bytes)
}

/// Drops the databases in `created` (this attempt's own) and says what happened, as a
/// suffix for the Restore's message.
pub(super) async fn drop_created(engine: &AnyEngine, member: &Member, created: &[String]) -> String {
    let mut dropped = Vec::new();
    let mut left = Vec::new();
    for database in created {
        match engine.drop_database(member, database).await {
            Ok(()) => {
                tracing::info!(database, "dropped the database this failed restore had created");
                dropped.push(database.as_str());
            }
            Err(e) => {
                tracing::error!(database, error = %e, "could not drop the database this failed restore had created");
                left.push(format!("{database} ({e})"));
            }
        }
    }
    let mut note = String::new();
    if !dropped.is_empty() {
        note.push_str(&format!(
            "; dropped {} again (created by this restore), so it can be retried",
            dropped.join(", ")
        ));
    }
    if !left.is_empty() {
        note.push_str(&format!(
            "; could not drop {} (created by this restore): drop by hand before retrying",
            left.join(", ")
        ));
    }
    note
}
