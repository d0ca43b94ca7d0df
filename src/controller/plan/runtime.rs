//! What the plan controller remembers between probe rounds (in memory: a restarted
//! operator starts counting afresh, which only delays a failover, never hastens one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::Digest;

use crate::engine::{AnyEngine, EngineConfig, EngineKind, Position};

/// Per-plan memory.
pub struct PlanRuntime {
    /// Engine with its kept-open connections; rebuilt when credentials change.
    pub engine: Arc<AnyEngine>,
    fingerprint: String,
    /// Consecutive rounds in which the recorded primary did not answer as a writable primary.
    pub primary_failures: u32,
    /// The primary's position at its last healthy probe.
    pub last_primary_position: Option<Position>,
    /// Each replica's replication delay (seconds) at the primary's last healthy probe.
    pub lag_at_last_healthy: HashMap<String, Option<f64>>,
}

/// All plans' memory, keyed by `namespace/name`.
#[derive(Clone, Default)]
pub struct PlanRuntimes(Arc<Mutex<HashMap<String, Arc<Mutex<PlanRuntime>>>>>);

impl PlanRuntimes {
    /// The runtime of a plan, (re)built when the engine kind or credentials changed.
    pub fn get(&self, key: &str, kind: EngineKind, config: EngineConfig) -> Arc<Mutex<PlanRuntime>> {
        // A digest, so the password is not kept a second time in memory.
        let digest = sha2::Sha256::digest(format!(
            "{kind:?}\0{}\0{}",
            config.credentials.username, config.credentials.password
        ));
        let fingerprint = hex::encode(digest);
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = all.get(key) {
            let same = existing.lock().map(|r| r.fingerprint == fingerprint).unwrap_or(false);
            if same {
                return existing.clone();
            }
        }
        let runtime = Arc::new(Mutex::new(PlanRuntime {
            engine: Arc::new(AnyEngine::new(kind, config)),
            fingerprint,
            primary_failures: 0,
            last_primary_position: None,
            lag_at_last_healthy: HashMap::new(),
        }));
        all.insert(key.to_string(), runtime.clone());
        runtime
    }

    /// The runtime `observe` created for this key this round.
    pub fn get_existing(&self, key: &str) -> Arc<Mutex<PlanRuntime>> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(PlanRuntime {
                    engine: Arc::new(AnyEngine::new(EngineKind::Postgres, EngineConfig::default())),
                    fingerprint: String::new(),
                    primary_failures: 0,
                    last_primary_position: None,
                    lag_at_last_healthy: HashMap::new(),
                }))
            })
            .clone()
    }

    /// Forgets a deleted plan.
    pub fn remove(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}
