//! Connections kept open per member between operations. A connection is taken out
//! for the duration of one operation and put back only if it is still healthy, so a
//! failed or timed-out operation always reconnects next time.

use std::collections::HashMap;
use std::sync::Mutex;

/// Idle connections by member address.
#[derive(Debug)]
pub(crate) struct Connections<C> {
    idle: Mutex<HashMap<String, C>>,
}

impl<C> Default for Connections<C> {
    fn default() -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
        }
    }
}

impl<C> Connections<C> {
    /// Takes the idle connection for `key`, if any.
    pub(crate) fn take(&self, key: &str) -> Option<C> {
        self.idle.lock().ok()?.remove(key)
    }

    /// Keeps `conn` for the next operation on `key`.
    pub(crate) fn put(&self, key: &str, conn: C) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.insert(key.to_string(), conn);
        }
    }
}
