//! The plan's past as recorded in Backup, Failover and Restore objects: what the RPO and
//! RTO estimates are measured from.

use kube::api::ListParams;
use kube::{Api, Client};

use crate::api::{Backup, BackupPhase, Failover, FailoverPhase, Restore, RestorePhase};

/// Failed to list the plan's history.
#[derive(Debug, thiserror::Error)]
#[error("listing {kind} in {namespace}: {source}")]
pub struct ListHistoryError {
    pub kind: &'static str,
    pub namespace: String,
    #[source]
    pub source: kube::Error,
}

/// The plan's Backups, Failovers and Restores.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Backups of this plan, newest first.
    pub backups: Vec<Backup>,
    /// Failovers of this plan, newest first.
    pub failovers: Vec<Failover>,
    /// Restores of this plan's backups, newest first.
    pub restores: Vec<Restore>,
}

fn newest_first<K: kube::Resource>(items: &mut [K]) {
    items.sort_by(|a, b| {
        b.meta()
            .creation_timestamp
            .cmp(&a.meta().creation_timestamp)
            .then_with(|| b.meta().name.cmp(&a.meta().name))
    });
}

/// Lists everything that belongs to `plan` in `namespace`.
pub async fn load(client: &Client, namespace: &str, plan: &str) -> Result<History, ListHistoryError> {
    let err = |kind| {
        move |source| ListHistoryError {
            kind,
            namespace: namespace.to_string(),
            source,
        }
    };
    let lp = ListParams::default();
    let mut backups: Vec<Backup> = Api::<Backup>::namespaced(client.clone(), namespace)
        .list(&lp)
        .await
        .map_err(err("Backups"))?
        .items;
    backups.retain(|b| b.spec.plan == plan);
    newest_first(&mut backups);
    let mut failovers: Vec<Failover> = Api::<Failover>::namespaced(client.clone(), namespace)
        .list(&lp)
        .await
        .map_err(err("Failovers"))?
        .items;
    failovers.retain(|f| f.spec.plan == plan);
    newest_first(&mut failovers);
    let names: std::collections::HashSet<String> = backups.iter().filter_map(|b| b.metadata.name.clone()).collect();
    let mut restores: Vec<Restore> = Api::<Restore>::namespaced(client.clone(), namespace)
        .list(&lp)
        .await
        .map_err(err("Restores"))?
        .items;
    restores.retain(|r| {
        r.spec.plan.as_deref() == Some(plan)
            || r.status
                .as_ref()
                .and_then(|s| s.backup.as_ref())
                .or(r.spec.backup.as_ref())
                .is_some_and(|b| names.contains(b))
    });
    newest_first(&mut restores);
    Ok(History {
        backups,
        failovers,
        restores,
    })
}

impl History {
    /// The newest completed backup.
    pub fn last_completed_backup(&self) -> Option<&Backup> {
        self.backups
            .iter()
            .find(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
    }

    /// Whether a backup is running or pending (no overlap).
    pub fn backup_in_progress(&self) -> bool {
        self.backups.iter().any(|b| {
            matches!(
                b.status.as_ref().and_then(|s| s.phase),
                None | Some(BackupPhase::Pending | BackupPhase::Running)
            )
        })
    }

    /// A failover that has not ended.
    pub fn active_failover(&self) -> Option<&Failover> {
        self.failovers.iter().find(|f| {
            !matches!(
                f.status.as_ref().and_then(|s| s.phase),
                Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
            )
        })
    }

    /// The measured RTO of the newest completed failover.
    pub fn last_failover_rto(&self) -> Option<f64> {
        self.failovers
            .iter()
            .filter_map(|f| f.status.as_ref())
            .find(|s| s.phase == Some(FailoverPhase::Completed))
            .and_then(|s| s.rto_seconds)
    }

    /// Duration and bytes of the newest completed restore.
    pub fn last_restore(&self) -> Option<(f64, Option<i64>)> {
        self.restores
            .iter()
            .filter_map(|r| r.status.as_ref())
            .find(|s| s.phase == Some(RestorePhase::Completed))
            .and_then(|s| Some((s.duration_seconds?, s.bytes)))
    }
}
