//! A plan's backups, found from S3 alone: every folder with a `manifest.json`,
//! newest first. Folders without a manifest are unfinished or failed, not backups.

use super::client::Store;
use super::error::S3CallError;
use super::keys::{KeyError, MANIFEST_NAME, plan_prefix};
use super::manifest::Manifest;
use super::reader::{ReadError, read_small};

/// One completed backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    pub backup: String,
    pub manifest_key: String,
    pub manifest: Manifest,
}

/// Why the catalog could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("listing s3://{bucket}/{prefix}: {source}")]
    List {
        bucket: String,
        prefix: String,
        source: S3CallError,
    },
    #[error("reading manifest: {0}")]
    Read(#[from] ReadError),
    #[error("manifest s3://{bucket}/{key} is not valid JSON for format 1: {source}")]
    Parse {
        bucket: String,
        key: String,
        source: serde_json::Error,
    },
}

/// Lists the completed backups of `namespace/plan`, newest (by completion time) first.
pub async fn list_backups(store: &Store, namespace: &str, plan: &str) -> Result<Vec<CatalogEntry>, CatalogError> {
    let prefix = plan_prefix(store.prefix(), namespace, plan)?;
    let mut folders = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = store
            .client
            .list_objects_v2()
            .bucket(store.bucket())
            .prefix(&prefix)
            .delimiter("/")
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| CatalogError::List {
                bucket: store.bucket().into(),
                prefix: prefix.clone(),
                source: e.into(),
            })?;
        folders.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string)),
        );
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut entries = Vec::new();
    for folder in folders {
        let key = format!("{folder}{MANIFEST_NAME}");
        let bytes = match read_small(store, &key).await {
            Ok(bytes) => bytes,
            Err(ReadError::NotFound { .. }) => {
                tracing::debug!(folder, "no manifest: not a completed backup");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let manifest = Manifest::from_json(&bytes).map_err(|source| CatalogError::Parse {
            bucket: store.bucket().into(),
            key: key.clone(),
            source,
        })?;
        let backup = folder
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        entries.push(CatalogEntry {
            backup,
            manifest_key: key,
            manifest,
        });
    }
    entries.sort_by(|a, b| {
        b.manifest
            .completed_at
            .cmp(&a.manifest.completed_at)
            .then_with(|| b.backup.cmp(&a.backup))
    });
    Ok(entries)
}
