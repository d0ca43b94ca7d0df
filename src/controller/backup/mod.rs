//! Backup controller: runs the streaming pipeline from the right member into the plan's
//! store, reports every phase honestly, and (finalizer) deletes the S3 objects of a
//! `deletionPolicy: Delete` backup when the object goes.

mod run;

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};

use super::context::Context;
use super::status::{PatchStatusError, apply_status};
use super::store_access::open_store;
use crate::api::{Backup, BackupPhase, BackupStatus, BackupStore, DeletionPolicy, RecoveryPlan};
use crate::storage::prune::prune_backups;

/// Finalizer that guards a Delete-policy backup's S3 objects.
pub const FINALIZER: &str = "lifeboat.dev/backup-objects";

/// Why a Backup reconcile failed (a failed dump is status, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileBackupError {
    #[error("Backup has no namespace")]
    NoNamespace,
    #[error(transparent)]
    Status(#[from] PatchStatusError),
    #[error("deleting the S3 objects of Backup {namespace}/{name}: {message}")]
    Cleanup {
        namespace: String,
        name: String,
        message: String,
    },
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl ReconcileBackupError {
    /// Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileBackupError::NoNamespace => "NoNamespace",
            ReconcileBackupError::Status(_) => "StatusWriteFailed",
            ReconcileBackupError::Cleanup { .. } => "CleanupFailed",
            ReconcileBackupError::Finalizer(_) => "FinalizerFailed",
        }
    }
}

/// Entry point: the finalizer helper calls [`apply`] or [`cleanup`].
pub async fn reconcile(backup: Arc<Backup>, ctx: Arc<Context>) -> Result<Action, ReconcileBackupError> {
    let namespace = backup.namespace().ok_or(ReconcileBackupError::NoNamespace)?;
    let api: Api<Backup> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, backup, |event| async {
        match event {
            Event::Apply(b) => apply(b, &ctx, &namespace).await,
            Event::Cleanup(b) => cleanup(b, &ctx, &namespace).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(inner) | kube::runtime::finalizer::Error::CleanupFailed(inner) => {
            inner
        }
        other => ReconcileBackupError::Finalizer(other.to_string()),
    })
}

async fn write(
    ctx: &Context,
    namespace: &str,
    backup: &Backup,
    status: &BackupStatus,
) -> Result<(), ReconcileBackupError> {
    let api: Api<Backup> = Api::namespaced(ctx.client.clone(), namespace);
    apply_status(&api, namespace, &backup.name_any(), status).await?;
    Ok(())
}

async fn apply(backup: Arc<Backup>, ctx: &Context, namespace: &str) -> Result<Action, ReconcileBackupError> {
    let key = format!("{namespace}/{}", backup.name_any());
    let status = backup.status.clone().unwrap_or_default();
    match status.phase {
        Some(BackupPhase::Completed | BackupPhase::Failed) => {
            ctx.running_backups.finish(&key);
            return Ok(Action::await_change());
        }
        // Not started here: a previous operator process died while it ran. (Started
        // here: a cached copy older than this process's own writes; wait for the next.)
        Some(BackupPhase::Running) if !ctx.running_backups.started(&key) => {
            let failed = run::failed(status, "the operator restarted while this backup ran; its partial upload was aborted and the schedule will take a new one".into());
            log_outcome(&failed);
            write(ctx, namespace, &backup, &failed).await?;
            ctx.event(
                &backup.object_ref(&()),
                EventType::Warning,
                "BackupInterrupted",
                "Backup",
                failed.message.clone().unwrap_or_default(),
            )
            .await;
            run::abort_orphans(ctx, namespace, &backup).await;
            return Ok(Action::await_change());
        }
        Some(BackupPhase::Running) => return Ok(Action::await_change()),
        None | Some(BackupPhase::Pending) => {}
    }
    if !ctx.running_backups.start(&key) {
        return Ok(Action::await_change());
    }
    let final_status = match run::run(ctx, namespace, &backup).await {
        Ok(status) => status,
        Err(e) => {
            ctx.running_backups.finish(&key);
            return Err(e);
        }
    };
    log_outcome(&final_status);
    let completed = final_status.phase == Some(BackupPhase::Completed);
    let (type_, reason) = if completed {
        (EventType::Normal, "BackupCompleted")
    } else {
        (EventType::Warning, "BackupFailed")
    };
    let note = final_status.message.clone().unwrap_or_default();
    if let Err(e) = write(ctx, namespace, &backup, &final_status).await {
        ctx.running_backups.finish(&key);
        return Err(e);
    }
    ctx.event(&backup.object_ref(&()), type_, reason, "Backup", note).await;
    Ok(Action::await_change())
}

/// The INFO line of a completed backup, or the ERROR line of one lifeboat could not take
/// (the reconcile span carries namespace, plan and backup).
fn log_outcome(status: &BackupStatus) {
    let member = status.source_member.as_deref().unwrap_or("");
    if status.phase == Some(BackupPhase::Completed) {
        tracing::info!(
            member,
            bytes = status.size_bytes.unwrap_or(0),
            size = status.size.as_deref().unwrap_or(""),
            duration_seconds = status.duration_seconds.unwrap_or(0.0),
            databases = status.objects.len(),
            position = status.consistent_position.as_deref().unwrap_or(""),
            "backup completed"
        );
    } else {
        tracing::error!(member, error = status.message.as_deref().unwrap_or(""), "backup failed");
    }
}

async fn cleanup(backup: Arc<Backup>, ctx: &Context, namespace: &str) -> Result<Action, ReconcileBackupError> {
    let name = backup.name_any();
    let stored = backup
        .status
        .as_ref()
        .is_some_and(|s| s.manifest_key.is_some() || !s.objects.is_empty());
    if backup.spec.deletion_policy != DeletionPolicy::Delete || !stored {
        return Ok(Action::await_change());
    }
    let err = |message: String| ReconcileBackupError::Cleanup {
        namespace: namespace.into(),
        name: name.clone(),
        message,
    };
    let plan: Option<RecoveryPlan> = Api::namespaced(ctx.client.clone(), namespace)
        .get_opt(&backup.spec.plan)
        .await
        .map_err(|e| err(e.to_string()))?;
    let Some(store_name) = plan.and_then(|p| p.spec.backup.map(|b| b.store)) else {
        return Err(err(format!(
            "RecoveryPlan {} (or its backup.store) is gone, so the objects' store is unknown; remove the finalizer {FINALIZER} by hand to give up",
            backup.spec.plan
        )));
    };
    let store: Option<BackupStore> = Api::namespaced(ctx.client.clone(), namespace)
        .get_opt(&store_name)
        .await
        .map_err(|e| err(e.to_string()))?;
    let store = store.ok_or_else(|| err(format!("BackupStore {store_name} not found")))?;
    let opened = open_store(&ctx.client, namespace, &store.spec)
        .await
        .map_err(|e| err(e.to_string()))?;
    let report = prune_backups(&opened, namespace, &backup.spec.plan, std::slice::from_ref(&name))
        .await
        .map_err(|e| err(e.to_string()))?;
    for locked in report.kept_locked {
        ctx.event(
            &backup.object_ref(&()),
            EventType::Normal,
            "ObjectsLocked",
            "DeleteObjects",
            format!("S3 objects kept: {}", locked.reason),
        )
        .await;
    }
    Ok(Action::await_change())
}
