//! Scheduled Backups and retention of the Backup objects the schedule created.

use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::api::backup::{BackupSpec, DeletionPolicy};
use crate::api::recovery_plan::BackupPolicy;
use crate::api::{Backup, BackupPhase};
use crate::policy::retention::{BackupAt, select};
use crate::policy::schedule::{ScheduleAction, next_action};
use crate::policy::validate::{parse_cron, parse_time_zone};

use super::history::History;

/// Label on every Backup the schedule creates (retention only prunes these).
pub const SCHEDULED_LABEL: &str = "lifeboat.dev/scheduled";
/// Label naming the plan of lifeboat-created objects.
pub const PLAN_LABEL: &str = "lifeboat.dev/plan";

/// Failed to create or prune Backups.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("creating scheduled Backup {namespace}/{name}: {source}")]
    Create {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting Backup {namespace}/{name} (retention): {source}")]
    Prune {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// What the schedule did this round.
pub struct ScheduleOutcome {
    /// The slot of a Backup created now.
    pub created_slot: Option<DateTime<Utc>>,
    /// When to look again.
    pub next: Option<DateTime<Utc>>,
    /// Backups deleted by retention.
    pub pruned: Vec<String>,
}

/// Creates the due Backup, if any. Schedule validity was checked before (validate_plan).
pub async fn run_schedule(
    client: &Client,
    namespace: &str,
    plan: &str,
    policy: &BackupPolicy,
    last_slot: DateTime<Utc>,
    history: &History,
    now: DateTime<Utc>,
) -> Result<ScheduleOutcome, ScheduleError> {
    let mut outcome = ScheduleOutcome {
        created_slot: None,
        next: None,
        pruned: Vec::new(),
    };
    let (Ok(cron), Ok(tz)) = (
        parse_cron("schedule", &policy.schedule),
        parse_time_zone("timeZone", &policy.time_zone),
    ) else {
        return Ok(outcome);
    };
    match next_action(&cron, tz, last_slot, now, history.backup_in_progress()) {
        ScheduleAction::RunNow { slot } => {
            let name = format!("{plan}-{}", slot.format("%Y%m%d-%H%M%S"));
            let mut backup = Backup::new(
                &name,
                BackupSpec {
                    plan: plan.to_string(),
                    deletion_policy: DeletionPolicy::Delete,
                },
            );
            backup.metadata.labels = Some(
                [
                    (PLAN_LABEL.to_string(), plan.to_string()),
                    (SCHEDULED_LABEL.to_string(), "true".to_string()),
                ]
                .into(),
            );
            match Api::<Backup>::namespaced(client.clone(), namespace)
                .create(&PostParams::default(), &backup)
                .await
            {
                Ok(_) => {}
                // Already created for this slot (e.g. before a restart): nothing to do.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(source) => {
                    return Err(ScheduleError::Create {
                        namespace: namespace.into(),
                        name,
                        source,
                    });
                }
            }
            outcome.created_slot = Some(slot);
        }
        ScheduleAction::WaitUntil(t) => outcome.next = Some(t),
        ScheduleAction::WaitForRunning | ScheduleAction::Never => {}
    }
    outcome.pruned = prune(client, namespace, policy, history).await?;
    Ok(outcome)
}

/// Deletes scheduled Backups the retention rules do not keep (their finalizer removes
/// the S3 objects). Failed ones older than the newest completed backup go too.
async fn prune(
    client: &Client,
    namespace: &str,
    policy: &BackupPolicy,
    history: &History,
) -> Result<Vec<String>, ScheduleError> {
    let scheduled: Vec<&Backup> = history
        .backups
        .iter()
        .filter(|b| {
            b.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SCHEDULED_LABEL))
                .is_some_and(|v| v == "true")
        })
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .collect();
    let completed: Vec<BackupAt> = scheduled
        .iter()
        .filter_map(|b| {
            let s = b.status.as_ref()?;
            (s.phase == Some(BackupPhase::Completed)).then(|| BackupAt {
                name: b.metadata.name.clone().unwrap_or_default(),
                completed_at: s.completion_time.unwrap_or_default(),
            })
        })
        .collect();
    let decision = select(&completed, &policy.retention);
    let api: Api<Backup> = Api::namespaced(client.clone(), namespace);
    let mut pruned = Vec::new();
    for name in decision.delete {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => pruned.push(name),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(ScheduleError::Prune {
                    namespace: namespace.into(),
                    name,
                    source,
                });
            }
        }
    }
    Ok(pruned)
}
