//! Reading credentials from Secrets, with errors that name the Secret and key (never the value).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::common::DatabaseCredentialsRef;
use crate::engine::Credentials;

/// Failed to read a value from a Secret.
#[derive(Debug, thiserror::Error)]
pub enum ReadSecretError {
    #[error("Secret {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    MissingKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("Secret {namespace}/{name} key {key:?} is not UTF-8")]
    NotText {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("reading Secret {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Reads one key of a Secret as bytes.
pub async fn read_key(client: &Client, namespace: &str, name: &str, key: &str) -> Result<Vec<u8>, ReadSecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|source| ReadSecretError::Api {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })?
        .ok_or_else(|| ReadSecretError::NotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    secret_value(&secret, key).ok_or_else(|| ReadSecretError::MissingKey {
        namespace: namespace.into(),
        name: name.into(),
        key: key.into(),
    })
}

/// Reads one key of a Secret as text.
pub async fn read_text(client: &Client, namespace: &str, name: &str, key: &str) -> Result<String, ReadSecretError> {
    let bytes = read_key(client, namespace, name, key).await?;
    String::from_utf8(bytes).map_err(|_| ReadSecretError::NotText {
        namespace: namespace.into(),
        name: name.into(),
        key: key.into(),
    })
}

/// Reads a database username and password.
pub async fn read_credentials(
    client: &Client,
    namespace: &str,
    r: &DatabaseCredentialsRef,
) -> Result<Credentials, ReadSecretError> {
    let username = read_text(client, namespace, &r.name, &r.username_key).await?;
    let password = read_text(client, namespace, &r.name, &r.password_key).await?;
    Ok(Credentials::new(
        username.trim_end_matches('\n'),
        password.trim_end_matches('\n'),
    ))
}

/// A Secret value from `data` or, for objects not yet normalised by the API server, `stringData`.
fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        })
}
