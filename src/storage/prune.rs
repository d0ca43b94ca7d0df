//! Deleting the backups retention selected. An object-locked backup is not an error:
//! it is left whole and reported as kept, with the date its lock ends.

use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
use chrono::{DateTime, Utc};

use super::client::Store;
use super::error::S3CallError;
use super::keys::{BackupKey, KeyError, MANIFEST_NAME};

/// A backup that could not be deleted because S3 Object Lock protects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedBackup {
    pub backup: String,
    /// The latest retain-until date among its objects (None for a legal hold).
    pub locked_until: Option<DateTime<Utc>>,
    pub reason: String,
}

/// What a prune did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub kept_locked: Vec<LockedBackup>,
}

/// Why a prune stopped.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("listing s3://{bucket}/{prefix}: {source}")]
    List {
        bucket: String,
        prefix: String,
        source: S3CallError,
    },
    #[error("reading lock of s3://{bucket}/{key}: {source}")]
    Head {
        bucket: String,
        key: String,
        source: S3CallError,
    },
    #[error("deleting s3://{bucket}/{key}: {source}")]
    Delete {
        bucket: String,
        key: String,
        source: S3CallError,
    },
}

/// Deletes each named backup of `namespace/plan` (manifest first, so a half-deleted
/// backup never looks complete), skipping and reporting the object-locked ones.
pub async fn prune_backups(
    store: &Store,
    namespace: &str,
    plan: &str,
    backups: &[String],
) -> Result<PruneReport, PruneError> {
    let mut report = PruneReport::default();
    for backup in backups {
        let key = BackupKey::new(namespace, plan, backup)?;
        let folder = key.folder(store.prefix());
        let mut keys = list_keys(store, &folder).await?;
        if let Some(lock) = lock_of(store, backup, &keys).await? {
            tracing::info!(backup, until = ?lock.locked_until, "backup is object-locked: kept");
            report.kept_locked.push(lock);
            continue;
        }
        // Manifest first: from then on the folder is no longer a backup.
        keys.sort_by_key(|k| !k.ends_with(MANIFEST_NAME));
        let mut locked = None;
        for k in &keys {
            if let Err(e) = store.client.delete_object().bucket(store.bucket()).key(k).send().await {
                let err = S3CallError::from(e);
                // A bucket-default retention we could not see on HEAD still protects it.
                if err.code_is("AccessDenied") && k.ends_with(MANIFEST_NAME) {
                    locked = Some(LockedBackup {
                        backup: backup.clone(),
                        locked_until: None,
                        reason: format!("S3 refused to delete {k}: {err}"),
                    });
                    break;
                }
                return Err(PruneError::Delete {
                    bucket: store.bucket().into(),
                    key: k.clone(),
                    source: err,
                });
            }
        }
        match locked {
            Some(lock) => report.kept_locked.push(lock),
            None => {
                tracing::info!(backup, "backup deleted");
                report.deleted.push(backup.clone());
            }
        }
    }
    Ok(report)
}

async fn list_keys(store: &Store, folder: &str) -> Result<Vec<String>, PruneError> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = store
            .client
            .list_objects_v2()
            .bucket(store.bucket())
            .prefix(folder)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| PruneError::List {
                bucket: store.bucket().into(),
                prefix: folder.into(),
                source: e.into(),
            })?;
        keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Ok(keys);
        }
    }
}

/// The lock protecting any of `keys` now, read with HEAD (GetObjectRetention is not
/// implemented everywhere).
async fn lock_of(store: &Store, backup: &str, keys: &[String]) -> Result<Option<LockedBackup>, PruneError> {
    let now = Utc::now();
    let mut latest: Option<DateTime<Utc>> = None;
    let mut legal_hold = false;
    for key in keys {
        let head = store
            .client
            .head_object()
            .bucket(store.bucket())
            .key(key)
            .send()
            .await
            .map_err(|e| PruneError::Head {
                bucket: store.bucket().into(),
                key: key.clone(),
                source: e.into(),
            })?;
        if head.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On) {
            legal_hold = true;
        }
        if let Some(until) = head
            .object_lock_retain_until_date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), 0))
            && until > now
        {
            latest = latest.max(Some(until));
        }
    }
    Ok(match (latest, legal_hold) {
        (Some(until), _) => Some(LockedBackup {
            backup: backup.into(),
            locked_until: Some(until),
            reason: format!("object lock retains it until {}", until.to_rfc3339()),
        }),
        (None, true) => Some(LockedBackup {
            backup: backup.into(),
            locked_until: None,
            reason: "an object has a legal hold".into(),
        }),
        (None, false) => None,
    })
}
