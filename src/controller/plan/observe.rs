//! Observe step: find the members, read credentials, probe everyone concurrently.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::api::RecoveryPlan;
use crate::api::common::EngineKind as ApiEngineKind;
use crate::controller::members::{ResolvedMembers, members_from_endpoints, members_from_pods};
use crate::controller::secrets::{ReadSecretError, read_credentials};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::{AnyEngine, Engine, EngineConfig, EngineKind, HeartbeatWrite, Member, Probe, Timeouts};
use crate::policy::validate::PlanSettings;

use super::runtime::{PlanRuntimes, SharedRuntime, lock};

/// How long the replicas' probes wait for the primary's, so their positions are read after
/// the primary's sample (a tighter data-at-risk bound) without a hung primary holding them.
const REPLICAS_WAIT_FOR_PRIMARY: Duration = Duration::from_millis(250);

/// What stops a plan from being observed; becomes `Ready=False` with this reason.
#[derive(Debug, thiserror::Error)]
pub enum ObserveBlocker {
    #[error("{0}")]
    Credentials(#[from] ReadSecretError),
    #[error("listing member pods with selector {selector}: {source}")]
    ListPods {
        selector: String,
        #[source]
        source: kube::Error,
    },
    #[error("invalid members.selector: {0}")]
    BadSelector(String),
    #[error("no member found: {0}")]
    NoMembers(String),
}

impl ObserveBlocker {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ObserveBlocker::Credentials(_) => "CredentialsUnavailable",
            ObserveBlocker::ListPods { .. } => "ListPodsFailed",
            ObserveBlocker::BadSelector(_) => "InvalidSpec",
            ObserveBlocker::NoMembers(_) => "NoMembers",
        }
    }
}

/// One probe round.
pub struct Observation {
    /// Members with their probe results (error text on failure).
    pub probes: BTreeMap<String, (Member, Result<Probe, String>)>,
    /// Pods of a selector plan (for labels); empty for static endpoints.
    pub pods: Vec<Pod>,
    /// The plan's runtime (engine and memory).
    pub runtime: SharedRuntime,
    /// The engine, with kept-open connections.
    pub engine: Arc<AnyEngine>,
    /// When the round started.
    pub started_at: DateTime<Utc>,
    /// When the primary's probe was sent (its position sample time).
    pub primary_probed_at: DateTime<Utc>,
    /// The primary position the plan's status kept (for a restarted operator).
    pub kept_primary_position: Option<crate::api::recovery_plan::ObservedPosition>,
    /// PostgreSQL (else MySQL/MariaDB).
    pub postgres: bool,
}

/// How long each probe of a round may take.
#[derive(Clone, Copy, Debug)]
pub struct ProbeLimits {
    /// The primary's probe (short: a hung primary must not hold the round).
    pub primary: Duration,
    /// The replicas' probes (a Failover gives them longer: a slow candidate is still one).
    pub replicas: Duration,
}

impl ProbeLimits {
    /// The plan controller's rounds: every probe within the plan's probe timeout.
    pub fn round(settings: &PlanSettings) -> ProbeLimits {
        ProbeLimits {
            primary: settings.probe_timeout(),
            replicas: settings.probe_timeout(),
        }
    }

    /// A Failover's (or a Backup's) look at the members: the replicas get the operation timeout.
    pub fn decision(settings: &PlanSettings) -> ProbeLimits {
        ProbeLimits {
            primary: settings.probe_timeout(),
            replicas: Timeouts::default().operation.max(settings.probe_timeout()),
        }
    }
}

/// Which member gets lifeboat's heartbeat this round.
#[derive(Clone, Debug)]
pub struct Beat {
    /// The recorded primary (it answered writable last round).
    pub member: String,
    /// The plan's epoch.
    pub epoch: u64,
}

fn engine_kind(kind: ApiEngineKind) -> EngineKind {
    match kind {
        ApiEngineKind::Postgres => EngineKind::Postgres,
        ApiEngineKind::Mysql => EngineKind::Mysql,
    }
}

/// A label selector as the API's query string.
pub fn selector_query(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<String, String> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            other => {
                return Err(format!(
                    "operator {other:?} on key {:?}; use In, NotIn, Exists or DoesNotExist",
                    expr.key
                ));
            }
        });
    }
    Ok(parts.join(","))
}

/// Finds the members, writes the heartbeat on the primary and probes it, and probes the
/// replicas right after (or after a short wait if the primary is slow).
pub async fn observe(
    client: &Client,
    runtimes: &PlanRuntimes,
    namespace: &str,
    plan: &RecoveryPlan,
    limits: ProbeLimits,
    beat: Option<Beat>,
    primary: Option<&str>,
) -> Result<Observation, ObserveBlocker> {
    let credentials = read_credentials(client, namespace, &plan.spec.credentials_secret).await?;
    let (resolved, pods) = match &plan.spec.members.selector {
        Some(selector) => {
            let query = selector_query(selector).map_err(ObserveBlocker::BadSelector)?;
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let pods = api
                .list(&ListParams::default().labels(&query))
                .await
                .map_err(|source| ObserveBlocker::ListPods {
                    selector: query.clone(),
                    source,
                })?
                .items;
            let resolved = members_from_pods(&plan.spec, &pods);
            if resolved.members.is_empty() {
                let why = if pods.is_empty() {
                    format!("selector {query:?} matches no pod in namespace {namespace}")
                } else {
                    format!("pods matched by {query:?} are not usable yet: {:?}", resolved.skipped)
                };
                return Err(ObserveBlocker::NoMembers(why));
            }
            (resolved, pods)
        }
        None => (members_from_endpoints(&plan.spec), Vec::new()),
    };
    let ResolvedMembers { members, skipped: _ } = resolved;
    let key = format!("{namespace}/{}", plan.metadata.name.clone().unwrap_or_default());
    let config = EngineConfig {
        credentials,
        // Each probe is cut off by its own limit below; the engine's own probe limit stays
        // fixed so that callers with different limits share one engine and its connections.
        timeouts: Timeouts {
            probe: Timeouts::default().operation,
            ..Timeouts::default()
        },
        ..EngineConfig::default()
    };
    let runtime = runtimes.get(&key, engine_kind(plan.spec.engine), config);
    let engine = lock(&runtime).engine.clone();
    let started_at = Utc::now();
    let (primary_done, primary_waited) = tokio::sync::watch::channel(false);
    let primary_probed_at = std::sync::Mutex::new(started_at);
    let results = futures::future::join_all(members.iter().map(|m| {
        let engine = engine.clone();
        let is_primary = Some(m.name.as_str()) == primary;
        let beat = beat.clone().filter(|b| b.member == m.name);
        let mut waited = primary_waited.clone();
        let primary_done = &primary_done;
        let primary_probed_at = &primary_probed_at;
        async move {
            if is_primary {
                if let Some(b) = beat {
                    let write = HeartbeatWrite {
                        written_at: Utc::now(),
                        epoch: b.epoch,
                        writer: m.name.clone(),
                    };
                    match tokio::time::timeout(limits.primary, engine.write_heartbeat(m, &write)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!(member = %m.name, error = %e, "heartbeat not written"),
                        Err(_) => tracing::debug!(member = %m.name, "heartbeat not written: timed out"),
                    }
                }
                *primary_probed_at.lock().unwrap_or_else(|p| p.into_inner()) = Utc::now();
                let result = probe_within(&engine, m, limits.primary).await;
                let _ = primary_done.send(true);
                (m.clone(), result)
            } else {
                if primary.is_some() {
                    let _ = tokio::time::timeout(REPLICAS_WAIT_FOR_PRIMARY, waited.wait_for(|done| *done)).await;
                }
                (m.clone(), probe_within(&engine, m, limits.replicas).await)
            }
        }
    }))
    .await;
    let probes = results.into_iter().map(|(m, r)| (m.name.clone(), (m, r))).collect();
    let primary_probed_at = *primary_probed_at.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Observation {
        probes,
        pods,
        runtime,
        engine,
        started_at,
        primary_probed_at,
        kept_primary_position: plan.status.as_ref().and_then(|s| s.primary_position.clone()),
        postgres: plan.spec.engine == ApiEngineKind::Postgres,
    })
}

/// One probe, cut off at `limit` (the kept connection is dropped then, so the next probe
/// reconnects).
async fn probe_within(engine: &AnyEngine, member: &Member, limit: Duration) -> Result<Probe, String> {
    match tokio::time::timeout(limit, engine.probe(member)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("probing {}: timed out after {limit:?}", member.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_render_as_queries() {
        let selector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "db"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "skip", "operator": "DoesNotExist"}],
        }))
        .expect("selector");
        assert_eq!(selector_query(&selector).as_deref(), Ok("app=db,tier in (a,b),!skip"));
        let bad = serde_json::from_value(serde_json::json!({"matchExpressions": [{"key": "k", "operator": "Near"}]}))
            .expect("selector");
        assert!(selector_query(&bad).is_err());
    }
}
