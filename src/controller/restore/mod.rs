//! Restore controller: streams a backup into a target server (never over an existing
//! database), then runs the checks; the status names the failing step or check.

mod checks;
mod source;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::context::Context;
use super::metrics::PlanLabels;
use super::secrets::read_credentials;
use super::status::{PatchStatusError, apply_status};
use crate::api::restore::CheckResult;
use crate::api::{EngineKind, Restore, RestorePhase, RestoreStatus};
use crate::engine::{AnyEngine, Engine, EngineConfig, Member};
use crate::pipeline::restore::{RestoreOptions, Verification, restore_object};
use crate::policy::objectives::human_seconds;

/// Why a Restore reconcile failed (a failed restore is status, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileRestoreError {
    #[error("Restore has no namespace")]
    NoNamespace,
    #[error(transparent)]
    Status(#[from] PatchStatusError),
}

impl ReconcileRestoreError {
    /// Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileRestoreError::NoNamespace => "NoNamespace",
            ReconcileRestoreError::Status(_) => "StatusWriteFailed",
        }
    }
}

async fn write(
    ctx: &Context,
    namespace: &str,
    restore: &Restore,
    status: &RestoreStatus,
) -> Result<(), ReconcileRestoreError> {
    let api: Api<Restore> = Api::namespaced(ctx.client.clone(), namespace);
    apply_status(&api, namespace, &restore.name_any(), status).await?;
    Ok(())
}

/// Runs a restore once; a Restore found Running after a restart is marked Failed.
pub async fn reconcile(restore: Arc<Restore>, ctx: Arc<Context>) -> Result<Action, ReconcileRestoreError> {
    let namespace = restore.namespace().ok_or(ReconcileRestoreError::NoNamespace)?;
    let mut status = restore.status.clone().unwrap_or_default();
    match status.phase {
        Some(RestorePhase::Completed | RestorePhase::Failed) => return Ok(Action::await_change()),
        Some(RestorePhase::Running | RestorePhase::Verifying) => {
            status.phase = Some(RestorePhase::Failed);
            status.message = Some("the operator restarted during this restore; the target may hold a partial restore: drop it and create a new Restore".into());
            write(&ctx, &namespace, &restore, &status).await?;
            return Ok(Action::await_change());
        }
        _ => {}
    }
    let started = Instant::now();
    status.start_time = Some(Utc::now());
    let outcome = run(&ctx, &namespace, &restore, &mut status, started).await;
    let seconds = started.elapsed().as_secs_f64();
    status.completion_time = Some(Utc::now());
    status.duration_seconds = Some(seconds);
    status.duration = Some(human_seconds(seconds));
    let (type_, reason, note) = match outcome {
        Ok(plan) => {
            status.phase = Some(RestorePhase::Completed);
            if let Some(plan) = plan {
                ctx.metrics
                    .restore_duration_seconds
                    .get_or_create(&PlanLabels {
                        namespace: namespace.clone(),
                        plan,
                    })
                    .observe(seconds);
            }
            let note = format!("restored and verified in {}", human_seconds(seconds));
            status.message = Some(note.clone());
            (EventType::Normal, "RestoreCompleted", note)
        }
        Err(message) => {
            status.phase = Some(RestorePhase::Failed);
            status.message = Some(message.clone());
            (EventType::Warning, "RestoreFailed", message)
        }
    };
    write(&ctx, &namespace, &restore, &status).await?;
    ctx.event(&restore.object_ref(&()), type_, reason, "Restore", note)
        .await;
    Ok(Action::await_change())
}

/// The restore proper. Err carries the message naming what failed. Ok carries the plan.
async fn run(
    ctx: &Context,
    namespace: &str,
    restore: &Restore,
    status: &mut RestoreStatus,
    started: Instant,
) -> Result<Option<String>, String> {
    let resolved = source::resolve(ctx, namespace, restore).await?;
    status.backup = Some(resolved.backup.clone());
    status.phase = Some(RestorePhase::Running);
    write(ctx, namespace, restore, status)
        .await
        .map_err(|e| e.to_string())?;

    let target = &restore.spec.target;
    let credentials = read_credentials(&ctx.client, namespace, &target.credentials_secret)
        .await
        .map_err(|e| format!("target credentials: {e}"))?;
    let port = target.port.unwrap_or_else(|| resolved.engine.default_port());
    let member = Member::new("target", target.host.clone(), port);
    let kind = match resolved.engine {
        EngineKind::Postgres => crate::engine::EngineKind::Postgres,
        EngineKind::Mysql => crate::engine::EngineKind::Mysql,
    };
    let engine = AnyEngine::new(
        kind,
        EngineConfig {
            credentials: credentials.clone(),
            ..EngineConfig::default()
        },
    );
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
        let database = restore
            .spec
            .renames
            .iter()
            .find(|r| r.from == object.database)
            .map_or(object.database.clone(), |r| r.to.clone());
        match engine.create_database(&member, &database).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "database {database} already exists on {}:{port}; lifeboat never restores over data: drop it, or rename with spec.renames",
                    target.host
                ));
            }
            Err(e) => return Err(format!("creating database {database} on the target: {e}")),
        }
        let command = engine.restore(&member, &database).map_err(|e| e.to_string())?;
        let crate::engine::RestoreCommand { command, keep } = command;
        let stats = restore_object(&resolved.store, object, command, &options)
            .await
            .map_err(|e| format!("restoring {database}: {e}"));
        drop(keep);
        bytes += stats?.stored_bytes;
    }
    status.bytes = Some(bytes as i64);
    status.phase = Some(RestorePhase::Verifying);
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        bytes,
        "restored; running checks"
    );
    write(ctx, namespace, restore, status)
        .await
        .map_err(|e| e.to_string())?;

    let mut failed = Vec::new();
    status.checks.clear();
    for check in &restore.spec.checks {
        let result = checks::scalar(resolved.engine, &member, &credentials, &check.database, &check.sql).await;
        let (passed, actual) = match result {
            Ok(v) => (v == check.expect, v),
            Err(e) => (false, format!("error: {e}")),
        };
        if !passed {
            failed.push(format!(
                "check {:?} expected {:?}, got {:?}",
                check.name, check.expect, actual
            ));
        }
        status.checks.push(CheckResult {
            name: check.name.clone(),
            passed,
            actual: Some(actual),
        });
    }
    if failed.is_empty() {
        Ok(resolved.plan)
    } else {
        Err(failed.join("; "))
    }
}
