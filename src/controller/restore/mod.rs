//! Restore controller: streams a backup into a target server (never over an existing
//! database), then runs the checks; the status names the failing step or check. A
//! failed step drops exactly the databases this attempt created (so the Restore can be
//! retried); a failed check keeps them for inspection.

mod checks;
mod objects;
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
use crate::engine::{AnyEngine, EngineConfig, Member};
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

/// Why a restore failed: in a restore step (what it created is dropped again, so the
/// same Restore can be retried) or in its checks (the data is kept for inspection).
enum Failed {
    Step(String),
    Checks(String),
}

/// Runs a restore once; a Restore found Running that this process did not start (the
/// operator restarted meanwhile) is marked Failed.
pub async fn reconcile(restore: Arc<Restore>, ctx: Arc<Context>) -> Result<Action, ReconcileRestoreError> {
    let namespace = restore.namespace().ok_or(ReconcileRestoreError::NoNamespace)?;
    let key = format!("{namespace}/{}", restore.name_any());
    let mut status = restore.status.clone().unwrap_or_default();
    match status.phase {
        Some(RestorePhase::Completed | RestorePhase::Failed) => {
            ctx.running_restores.finish(&key);
            return Ok(Action::await_change());
        }
        // Started here: a cached copy older than this process's own writes.
        _ if ctx.running_restores.started(&key) => return Ok(Action::await_change()),
        Some(RestorePhase::Running | RestorePhase::Verifying) => {
            status.phase = Some(RestorePhase::Failed);
            status.message = Some("the operator restarted during this restore; the target may hold a partial restore: drop it and create a new Restore".into());
            tracing::error!(error = status.message.as_deref().unwrap_or(""), "restore failed");
            write(&ctx, &namespace, &restore, &status).await?;
            return Ok(Action::await_change());
        }
        _ => {}
    }
    ctx.running_restores.start(&key);
    let started = Instant::now();
    status.start_time = Some(Utc::now());
    // host:port once the port is known (the engine's default when absent).
    let mut target = restore.spec.target.host.clone();
    let outcome = run(&ctx, &namespace, &restore, &mut status, started, &mut target).await;
    let seconds = started.elapsed().as_secs_f64();
    status.completion_time = Some(Utc::now());
    status.duration_seconds = Some(seconds);
    status.duration = Some(human_seconds(seconds));
    let backup = status.backup.clone().unwrap_or_default();
    let (type_, reason, note) = match outcome {
        Ok(plan) => {
            status.phase = Some(RestorePhase::Completed);
            let note = format!("restored and verified in {}", human_seconds(seconds));
            tracing::info!(
                plan = plan.as_deref().unwrap_or(""),
                backup,
                target,
                bytes = status.bytes.unwrap_or(0),
                duration_seconds = seconds,
                checks = status.checks.len(),
                "restore completed"
            );
            if let Some(plan) = plan {
                ctx.metrics
                    .restore_duration_seconds
                    .get_or_create(&PlanLabels {
                        namespace: namespace.clone(),
                        plan,
                    })
                    .observe(seconds);
            }
            status.message = Some(note.clone());
            (EventType::Normal, "RestoreCompleted", note)
        }
        Err(Failed::Checks(message)) => {
            // The restore itself worked: a person must look at the data.
            tracing::warn!(backup, target, error = %message, "restore checks failed");
            status.phase = Some(RestorePhase::Failed);
            status.message = Some(message.clone());
            (EventType::Warning, "RestoreCheckFailed", message)
        }
        Err(Failed::Step(message)) => {
            tracing::error!(backup, target, error = %message, "restore failed");
            status.phase = Some(RestorePhase::Failed);
            status.message = Some(message.clone());
            (EventType::Warning, "RestoreFailed", message)
        }
    };
    if let Err(e) = write(&ctx, &namespace, &restore, &status).await {
        ctx.running_restores.finish(&key);
        return Err(e);
    }
    ctx.event(&restore.object_ref(&()), type_, reason, "Restore", note)
        .await;
    Ok(Action::await_change())
}

/// The restore proper. Ok carries the plan.
async fn run(
    ctx: &Context,
    namespace: &str,
    restore: &Restore,
    status: &mut RestoreStatus,
    started: Instant,
    address: &mut String,
) -> Result<Option<String>, Failed> {
    let resolved = source::resolve(ctx, namespace, restore).await.map_err(Failed::Step)?;
    status.backup = Some(resolved.backup.clone());
    status.phase = Some(RestorePhase::Running);
    write(ctx, namespace, restore, status)
        .await
        .map_err(|e| Failed::Step(e.to_string()))?;

    let target = &restore.spec.target;
    let credentials = read_credentials(&ctx.client, namespace, &target.credentials_secret)
        .await
        .map_err(|e| Failed::Step(format!("target credentials: {e}")))?;
    let port = target.port.unwrap_or_else(|| resolved.engine.default_port());
    let member = Member::new("target", target.host.clone(), port);
    *address = format!("{}:{port}", target.host);
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
    let databases: Vec<String> = resolved
        .manifest
        .objects
        .iter()
        .map(|o| target_name(restore, &o.database))
        .collect();
    tracing::info!(
        backup = %resolved.backup,
        target = %address,
        databases = %databases.join(","),
        "restore started"
    );
    let mut created = Vec::new();
    let bytes = match objects::restore_all(&engine, &member, restore, &resolved, &mut created).await {
        Ok(bytes) => bytes,
        Err(message) => {
            let undone = objects::drop_created(&engine, &member, &created).await;
            return Err(Failed::Step(format!("{message}{undone}")));
        }
    };
    status.bytes = Some(bytes as i64);
    status.phase = Some(RestorePhase::Verifying);
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        bytes,
        "restored; running checks"
    );
    let kept = |message: String| {
        Failed::Checks(format!(
            "{message}; the restored database(s) {} are kept on {}:{port} for inspection: drop them before restoring there again",
            created.join(", "),
            target.host
        ))
    };
    write(ctx, namespace, restore, status)
        .await
        .map_err(|e| kept(e.to_string()))?;

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
        Err(kept(failed.join("; ")))
    }
}

/// The name `database` of the backup gets on the target (after `spec.renames`).
fn target_name(restore: &Restore, database: &str) -> String {
    restore
        .spec
        .renames
        .iter()
        .find(|r| r.from == database)
        .map_or(database.to_string(), |r| r.to.clone())
}
