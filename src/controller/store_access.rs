//! Turning a BackupStore object into a connected S3 store: its Secrets resolved.

use kube::Client;

use super::secrets::{ReadSecretError, read_key, read_text};
use crate::api::backup_store::BackupStoreSpec;
use crate::storage::client::{ConnectError, Store};
use crate::storage::config::{StaticCredentials, StoreConfig};

/// Failed to build a store from a BackupStore.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error(transparent)]
    Secret(#[from] ReadSecretError),
    #[error("connecting to the store: {0}")]
    Connect(#[from] ConnectError),
}

/// Resolves the spec's Secrets into a store config.
pub async fn store_config(
    client: &Client,
    namespace: &str,
    spec: &BackupStoreSpec,
) -> Result<StoreConfig, ReadSecretError> {
    let credentials = match &spec.s3.credentials_secret {
        Some(r) => Some(StaticCredentials {
            access_key_id: read_text(client, namespace, &r.name, &r.access_key_id_key)
                .await?
                .trim()
                .to_string(),
            secret_access_key: read_text(client, namespace, &r.name, &r.secret_access_key_key)
                .await?
                .trim()
                .to_string(),
        }),
        None => None,
    };
    let ca_bundle = match &spec.s3.ca_bundle_secret {
        Some(r) => Some(read_key(client, namespace, &r.name, &r.key).await?),
        None => None,
    };
    Ok(StoreConfig::from_spec(&spec.s3, credentials, ca_bundle))
}

/// Resolves the Secrets and connects.
pub async fn open_store(client: &Client, namespace: &str, spec: &BackupStoreSpec) -> Result<Store, OpenStoreError> {
    let config = store_config(client, namespace, spec).await?;
    Ok(Store::connect(config).await?)
}
