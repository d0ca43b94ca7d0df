//! Building the S3 client from a [`StoreConfig`], and the per-object settings (SSE,
//! storage class, Object Lock) applied to every upload.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::types::{ObjectLockMode as S3LockMode, ServerSideEncryption as S3Sse, StorageClass};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};

use super::config::StoreConfig;
use crate::api::backup_store::{ObjectLockMode, SseMode};

/// Why a store client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("caBundle: not a usable PEM certificate bundle: {0}")]
    CaBundle(String),
    #[error("endpoint {endpoint:?}: must be an http:// or https:// URL")]
    Endpoint { endpoint: String },
    #[error("bucket: must not be empty")]
    Bucket,
}

/// A connected bucket. Cheap to clone (the SDK client is reference-counted).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) config: StoreConfig,
}

impl Store {
    /// Builds the client. Nothing is sent yet: see [`super::check_store`] for a round trip.
    pub async fn connect(config: StoreConfig) -> Result<Store, ConnectError> {
        if config.bucket.is_empty() {
            return Err(ConnectError::Bucket);
        }
        if let Some(endpoint) = &config.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConnectError::Endpoint {
                endpoint: endpoint.clone(),
            });
        }
        let retry = RetryConfig::standard()
            .with_max_attempts(config.retry.max_attempts.max(1))
            .with_initial_backoff(config.retry.initial_backoff)
            .with_max_backoff(config.retry.max_backoff);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.retry.connect_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(creds) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.clone(),
                None,
                None,
                "lifeboat-backup-store",
            ));
        }
        if let Some(pem) = &config.ca_bundle_pem {
            loader = loader.http_client(http_client_trusting(pem)?);
        }
        let sdk = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(config.force_path_style)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        // Object Lock uploads need a checksum on every part; otherwise lifeboat's own
        // end-to-end sha256 covers integrity and the SDK's CRC would only cost CPU.
        builder = builder.request_checksum_calculation(if config.object_lock.is_some() {
            RequestChecksumCalculation::WhenSupported
        } else {
            RequestChecksumCalculation::WhenRequired
        });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Store {
            client: Client::from_conf(builder.build()),
            config,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The raw SDK client, for callers (and tests) that need an operation not wrapped here.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn sse(&self) -> Option<(S3Sse, Option<String>)> {
        self.config.server_side_encryption.as_ref().map(|sse| {
            let mode = match sse.mode {
                SseMode::Aes256 => S3Sse::Aes256,
                SseMode::AwsKms => S3Sse::AwsKms,
            };
            let key = match sse.mode {
                SseMode::AwsKms => sse.kms_key_id.clone(),
                SseMode::Aes256 => None,
            };
            (mode, key)
        })
    }

    pub(crate) fn storage_class(&self) -> Option<StorageClass> {
        self.config.storage_class.as_deref().map(StorageClass::from)
    }

    /// Object Lock mode and retain-until date for an object uploaded now.
    pub(crate) fn lock(&self) -> Option<(S3LockMode, aws_smithy_types::DateTime)> {
        self.config.object_lock.as_ref().map(|lock| {
            let mode = match lock.mode {
                ObjectLockMode::Governance => S3LockMode::Governance,
                ObjectLockMode::Compliance => S3LockMode::Compliance,
            };
            let until = chrono::Utc::now() + chrono::Duration::days(i64::from(lock.retain_days));
            (mode, aws_smithy_types::DateTime::from_secs(until.timestamp()))
        })
    }
}

fn http_client_trusting(pem: &[u8]) -> Result<aws_sdk_s3::config::SharedHttpClient, ConnectError> {
    let text = std::str::from_utf8(pem).map_err(|e| ConnectError::CaBundle(e.to_string()))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ConnectError::CaBundle(
            "no `-----BEGIN CERTIFICATE-----` block found".into(),
        ));
    }
    let trust = TrustStore::empty()
        .with_native_roots(true)
        .with_pem_certificate(pem.to_vec());
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| ConnectError::CaBundle(e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https())
}
