//! Pacing reconciles. A controller is woken by every change of its object, its own status
//! writes included; the pacer turns those wake-ups into no-ops until the next round is due,
//! so a plan is probed every `probeInterval` (failure counts mean "consecutive probes
//! `probeInterval` apart") and a store is not re-checked after each check. A spec, label
//! or annotation change runs a round at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Resource;

/// Last round per object: when, and for which spec/labels/annotations.
#[derive(Clone, Default)]
pub struct Pacer(Arc<Mutex<HashMap<String, (Instant, String)>>>);

/// What of an object warrants a new round when it changes.
pub fn fingerprint<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{:?}/{:?}/{:?}/{:?}",
        meta.uid, meta.generation, meta.labels, meta.annotations
    )
}

impl Pacer {
    /// `Ok(())` when a round should run now (and records it), else how long to wait.
    pub fn due(&self, key: &str, fingerprint: String, gap: Duration) -> Result<(), Duration> {
        let mut rounds = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some((at, seen)) = rounds.get(key)
            && *seen == fingerprint
        {
            let elapsed = now.duration_since(*at);
            if elapsed < gap {
                return Err(gap - elapsed);
            }
        }
        rounds.insert(key.to_string(), (now, fingerprint));
        Ok(())
    }

    /// Forgets an object (deleted), so a new one of the same name starts at once.
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_wait_for_the_gap_unless_the_object_changed() {
        let pacer = Pacer::default();
        let gap = Duration::from_secs(60);
        assert!(pacer.due("ns/a", "v1".into(), gap).is_ok());
        assert!(
            pacer.due("ns/a", "v1".into(), gap).is_err(),
            "own status write: no new round"
        );
        assert!(pacer.due("ns/a", "v2".into(), gap).is_ok(), "spec changed: round now");
        assert!(
            pacer.due("ns/b", "v1".into(), gap).is_ok(),
            "other objects are independent"
        );
        assert!(pacer.due("ns/a", "v2".into(), Duration::ZERO).is_ok(), "gap elapsed");
    }
}
