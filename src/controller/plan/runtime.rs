//! What lifeboat remembers about a plan between probe rounds. In memory; the newest primary
//! position also goes to the plan's status so a restarted operator measures data at risk
//! against it. A restarted operator starts the failure count afresh, which only delays a
//! failover, never hastens one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::Digest;

use crate::engine::{AnyEngine, EngineConfig, EngineKind, Probe, Role, SyncReplication};
use crate::policy::detection::ProgressTracker;
use crate::policy::risk::{PrimaryHistory, PrimarySample};

/// Per-plan memory of the primary and of what the replicas hear from it.
#[derive(Clone, Debug, Default)]
pub struct PlanMemory {
    /// The primary the samples belong to.
    pub primary: Option<String>,
    /// Its recent positions.
    pub samples: PrimaryHistory,
    /// Consecutive rounds in which the primary did not answer as a writable primary.
    pub primary_failures: u32,
    /// When the first failed probe of the current failure streak was seen.
    pub failing_since: Option<DateTime<Utc>>,
    /// The primary answered writable in the previous round (heartbeats go only there).
    pub primary_writable: bool,
    /// PostgreSQL: the primary's `wal_sender_timeout` when last healthy.
    pub sender_timeout: Option<Duration>,
    /// Synchronous replication on the primary when last healthy.
    pub synchronous: Option<SyncReplication>,
    /// MySQL/MariaDB: progress markers per replica.
    progress: HashMap<String, ProgressTracker>,
    /// Per replica: how long it has heard nothing from the primary (this round).
    pub silence: HashMap<String, Duration>,
    /// Per replica: when it last heard from the primary (operator clock).
    pub heard_at: HashMap<String, DateTime<Utc>>,
}

impl PlanMemory {
    /// Records a round: the primary's health and position (sampled at `primary_probed_at`,
    /// taken just before its probe), and what each replica last heard.
    pub fn record_round<'a>(
        &mut self,
        primary: Option<&str>,
        probes: impl Iterator<Item = (&'a String, Option<&'a Probe>)>,
        now: DateTime<Utc>,
        primary_probed_at: DateTime<Utc>,
    ) {
        if self.primary.as_deref() != primary {
            self.samples.clear();
            self.primary = primary.map(str::to_string);
            self.primary_failures = 0;
            self.failing_since = None;
        }
        let mut primary_ok = false;
        for (name, probe) in probes {
            let Some(p) = probe else { continue };
            if Some(name.as_str()) == primary && p.role == Role::Primary && !p.read_only {
                primary_ok = true;
                self.samples.push(PrimarySample {
                    at: primary_probed_at,
                    position: p.position.clone(),
                });
                self.sender_timeout = p.wal_sender_timeout;
                self.synchronous = p.synchronous.clone();
            }
            if let Some(up) = p.upstream.as_ref().filter(|_| p.role == Role::Replica) {
                let silence = match (&up.silence, &up.progress) {
                    (Some(s), _) => Some(*s),
                    (None, Some(marker)) => Some(self.progress.entry(name.clone()).or_default().observe(marker, now)),
                    (None, None) => None,
                };
                match silence {
                    Some(s) => {
                        self.silence.insert(name.clone(), s);
                        let heard = now - chrono::Duration::from_std(s).unwrap_or_default();
                        self.heard_at.insert(name.clone(), heard);
                    }
                    None => {
                        self.silence.remove(name);
                    }
                }
            }
        }
        if primary_ok {
            self.primary_failures = 0;
            self.failing_since = None;
        } else if primary.is_some() {
            self.primary_failures = self.primary_failures.saturating_add(1);
            // When the failure was seen, not when the probe was sent: the primary may have
            // acknowledged writes until it died, some time before its probe failed.
            self.failing_since.get_or_insert(now);
        }
        self.primary_writable = primary_ok;
        tracing::debug!(
            samples = self.samples.len(),
            newest = ?self.samples.latest().map(|s| s.position.to_string()),
            primary_ok,
            failures = self.primary_failures,
            "round recorded"
        );
    }

    /// The latest moment the primary may have acknowledged writes: now while it is healthy;
    /// after it failed, the start of the failure or the last time a replica heard from it.
    pub fn writes_possible_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(since) = self.failing_since else {
            return now;
        };
        let heard = self.heard_at.values().max().copied().unwrap_or(since);
        since.max(heard).min(now)
    }
}

/// Per-plan runtime: the engine and the memory.
pub struct PlanRuntime {
    /// Engine with its kept-open connections; rebuilt when credentials or timeouts change.
    pub engine: Arc<AnyEngine>,
    fingerprint: String,
    /// What is remembered between rounds (kept when the engine is rebuilt).
    pub memory: PlanMemory,
}

/// A plan's runtime, shared by the controllers that act on the plan.
pub type SharedRuntime = Arc<Mutex<PlanRuntime>>;

/// Locks a runtime; a poisoned lock still holds valid memory (every update is a whole value).
pub fn lock(runtime: &SharedRuntime) -> MutexGuard<'_, PlanRuntime> {
    runtime.lock().unwrap_or_else(|p| p.into_inner())
}

/// All plans' runtimes, keyed by `namespace/name`.
#[derive(Clone, Default)]
pub struct PlanRuntimes(Arc<Mutex<HashMap<String, SharedRuntime>>>);

impl PlanRuntimes {
    /// The runtime of a plan; its engine is (re)built when the engine kind, credentials or
    /// timeouts changed, keeping the memory.
    pub fn get(&self, key: &str, kind: EngineKind, config: EngineConfig) -> SharedRuntime {
        // A digest, so the password is not kept a second time in memory.
        let digest = sha2::Sha256::digest(format!(
            "{kind:?}\0{}\0{}\0{:?}",
            config.credentials.username, config.credentials.password, config.timeouts
        ));
        let fingerprint = hex::encode(digest);
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = all.get(key) {
            let mut rt = lock(existing);
            if rt.fingerprint != fingerprint {
                rt.engine = Arc::new(AnyEngine::new(kind, config));
                rt.fingerprint = fingerprint;
            }
            return existing.clone();
        }
        let runtime = Arc::new(Mutex::new(PlanRuntime {
            engine: Arc::new(AnyEngine::new(kind, config)),
            fingerprint,
            memory: PlanMemory::default(),
        }));
        all.insert(key.to_string(), runtime.clone());
        runtime
    }

    /// The runtime of a plan, if it has one.
    pub fn get_opt(&self, key: &str) -> Option<SharedRuntime> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    /// Forgets a deleted plan: its engine (and with it every kept-open connection) is dropped
    /// once no reconcile holds it any more. Returns whether the plan was known.
    pub fn remove(&self, key: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key).is_some()
    }

    /// Forgets every plan (leadership lost).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Whether a plan has a runtime (for tests and metrics).
    pub fn contains(&self, key: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains_key(key)
    }

    /// Number of plans with a runtime.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// No plan has a runtime.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
