//! BackupStore controller: a real round trip (put, get, delete of a probe object) decides
//! the `Available` condition, with a reason a person can act on.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::conditions::{ConditionUpdate, condition_status, set_condition};
use super::context::Context;
use super::status::{PatchStatusError, apply_status};
use super::store_access::{OpenStoreError, open_store};
use crate::api::{BackupStore, BackupStoreStatus};
use crate::logging::repeats;
use crate::policy::validate::{describe, validate_store};
use crate::storage::check::check_store;

/// How often a healthy store is checked again.
const RECHECK_HEALTHY: Duration = Duration::from_secs(300);
/// How soon a failing store is checked again (fixing a Secret also triggers a check).
const RECHECK_FAILING: Duration = Duration::from_secs(30);

/// Why a BackupStore reconcile failed (the check's own failures are status, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileStoreError {
    #[error("BackupStore has no namespace")]
    NoNamespace,
    #[error(transparent)]
    Status(#[from] PatchStatusError),
}

impl ReconcileStoreError {
    /// Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileStoreError::NoNamespace => "NoNamespace",
            ReconcileStoreError::Status(_) => "StatusWriteFailed",
        }
    }
}

/// resourceVersions of the Secrets the store reads ("-" for a missing one).
async fn secret_versions(ctx: &Context, namespace: &str, store: &BackupStore) -> String {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let s3 = &store.spec.s3;
    let names = [
        s3.credentials_secret.as_ref().map(|r| r.name.clone()),
        s3.ca_bundle_secret.as_ref().map(|r| r.name.clone()),
        store
            .spec
            .encryption
            .as_ref()
            .and_then(|e| e.age_identity_secret.as_ref())
            .map(|r| r.name.clone()),
    ];
    let mut out = String::new();
    for name in names.into_iter().flatten() {
        let version = api
            .get_metadata_opt(&name)
            .await
            .ok()
            .flatten()
            .and_then(|m| m.metadata.resource_version);
        out.push_str(&format!("/{name}@{}", version.unwrap_or_else(|| "-".into())));
    }
    out
}

/// Outcome of checking a store: (status, reason, message).
async fn check(ctx: &Context, namespace: &str, store: &BackupStore) -> (&'static str, &'static str, String) {
    let problems = validate_store(&store.spec);
    if !problems.is_empty() {
        return ("False", "InvalidSpec", describe(&problems));
    }
    let opened = match open_store(&ctx.client, namespace, &store.spec).await {
        Ok(s) => s,
        Err(OpenStoreError::Secret(e)) => return ("False", "SecretUnavailable", e.to_string()),
        Err(OpenStoreError::Connect(e)) => return ("False", "InvalidConfig", e.to_string()),
    };
    match check_store(&opened).await {
        Ok(()) => (
            "True",
            "RoundTripSucceeded",
            format!(
                "put, get and delete of a probe object in s3://{}/{} succeeded",
                store.spec.s3.bucket, store.spec.s3.prefix
            ),
        ),
        Err(failure) => ("False", failure.reason.as_str(), failure.to_string()),
    }
}

/// One line per verdict: INFO when the store becomes available, WARN while it is not
/// (once per repeat window: a broken store is rechecked every 30 s).
fn log_check(namespace: &str, store: &str, was: Option<&str>, verdict: (&str, &str, &str)) {
    let (status, reason, message) = verdict;
    let key = format!("store/{namespace}/{store}");
    if status == "True" {
        repeats().clear(&key, UNAVAILABLE);
        if was == Some("True") {
            tracing::debug!(reason, "backup store checked: {message}");
        } else {
            tracing::info!(reason, "backup store available: {message}");
        }
    } else if let Some(suppressed) = repeats().admit(&key, UNAVAILABLE) {
        tracing::warn!(reason, suppressed, "{UNAVAILABLE}: {message}");
    }
}

const UNAVAILABLE: &str = "backup store unavailable";

/// Checks the store and records the verdict.
pub async fn reconcile(store: Arc<BackupStore>, ctx: Arc<Context>) -> Result<Action, ReconcileStoreError> {
    let namespace = store.namespace().ok_or(ReconcileStoreError::NoNamespace)?;
    let name = store.name_any();
    let healthy = condition_status(&store.status.clone().unwrap_or_default().conditions, "Available") == Some("True");
    let gap = if healthy { RECHECK_HEALTHY } else { RECHECK_FAILING };
    // A changed Secret is a changed input: it belongs in the fingerprint.
    let fingerprint = format!(
        "{}{}",
        super::pacer::fingerprint(&*store),
        secret_versions(&ctx, &namespace, &store).await
    );
    if let Err(wait) = ctx.pacer.due(&format!("store/{namespace}/{name}"), fingerprint, gap) {
        return Ok(Action::requeue(wait));
    }
    let (status, reason, message) = check(&ctx, &namespace, &store).await;
    let mut current = store.status.clone().unwrap_or_default();
    let was = condition_status(&current.conditions, "Available").map(str::to_string);
    log_check(&namespace, &name, was.as_deref(), (status, reason, &message));
    let now = Time(Timestamp::now());
    set_condition(
        &mut current.conditions,
        ConditionUpdate {
            type_: "Available",
            status,
            reason,
            message: message.clone(),
        },
        store.metadata.generation,
        &now,
    );
    let new_status = BackupStoreStatus {
        conditions: current.conditions,
        last_check_time: Some(chrono::Utc::now()),
        observed_generation: store.metadata.generation,
    };
    let api: Api<BackupStore> = Api::namespaced(ctx.client.clone(), &namespace);
    apply_status(&api, &namespace, &name, &new_status).await?;
    if was.as_deref() != Some(status) {
        let type_ = if status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.event(&store.object_ref(&()), type_, reason, "CheckStore", message)
            .await;
    }
    Ok(Action::requeue(if status == "True" {
        RECHECK_HEALTHY
    } else {
        RECHECK_FAILING
    }))
}
