//! A readable timeline: each line stamped with seconds since the demo began.

use std::time::Instant;

/// Prints and remembers what happened when.
pub struct Timeline {
    started: Instant,
    pub events: Vec<(f64, String)>,
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            started: Instant::now(),
            events: Vec::new(),
        }
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Records and prints one event.
    pub fn say(&mut self, what: impl Into<String>) {
        let what = what.into();
        let at = self.now();
        println!("[{at:7.2}s] {what}");
        self.events.push((at, what));
    }
}
