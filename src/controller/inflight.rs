//! Objects this process started working on and has not yet seen finished.
//!
//! A reconcile can run on a cached copy of an object that is older than this process's
//! own last status write (the watch event has not arrived yet). The set tells "mine,
//! the cache is behind" from "left Running by an operator that restarted".

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Keys (`namespace/name`) of objects started by this process.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

impl InFlight {
    /// Marks `key` started; false if it already was.
    pub fn start(&self, key: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string())
    }

    /// Whether this process started `key` and has not seen it finish.
    pub fn started(&self, key: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Forgets `key`: once the object is seen finished, or when an attempt ended
    /// without recording its result (so a retry starts it again).
    pub fn finish(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_until_finished() {
        let set = InFlight::default();
        assert!(!set.started("ns/a"));
        assert!(set.start("ns/a"));
        assert!(!set.start("ns/a"), "started once");
        assert!(set.started("ns/a"));
        set.finish("ns/a");
        assert!(!set.started("ns/a") && set.start("ns/a"));
    }
}
