//! Rate limit for repeated identical log lines: a member down for an hour, probed every
//! second, must not write 3,600 identical lines.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long identical lines are held back by the process-wide [`repeats`] limiter.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// Above this many remembered lines, ones not seen for two windows are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// Lets the first of a run of identical lines through, then at most one per window,
/// each saying how many were held back since the previous one.
///
/// A line is identified by `(key, message)`: the key names what the line is about
/// (e.g. `"default/orders/orders-db-0"`), the message is the line's fixed text. Put
/// changing numbers (lag, attempt counts) in fields, not in the key or the message,
/// or every line is "new".
///
/// ```
/// use lifeboat::logging::repeats;
///
/// let (namespace, plan, member) = ("default", "orders", "orders-db-0");
/// let key = format!("{namespace}/{plan}/{member}");
/// // Every probe round while the member is down:
/// if let Some(suppressed) = repeats().admit(&key, "member unreachable") {
///     tracing::warn!(namespace, plan, member, suppressed, "member unreachable");
/// }
/// // Once it answers again, say so (and how many lines were held back meanwhile):
/// if let Some(suppressed) = repeats().clear(&key, "member unreachable") {
///     tracing::info!(namespace, plan, member, suppressed, "member reachable again");
/// }
/// ```
#[derive(Debug)]
pub struct RepeatLimiter {
    window: Duration,
    lines: Mutex<HashMap<(String, String), Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    last_written: Instant,
    last_seen: Instant,
    suppressed: u64,
}

impl RepeatLimiter {
    /// A limiter writing each identical line at most once per `window`.
    pub fn new(window: Duration) -> Self {
        RepeatLimiter {
            window,
            lines: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to write the line now: `Some(n)` means write it, mentioning that `n`
    /// identical lines were held back since it was last written (0 the first time);
    /// `None` means hold it back.
    pub fn admit(&self, key: &str, message: &str) -> Option<u64> {
        self.admit_at(key, message, Instant::now())
    }

    /// [`Self::admit`] at a given time (for tests).
    pub fn admit_at(&self, key: &str, message: &str, now: Instant) -> Option<u64> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() > PRUNE_ABOVE {
            let keep = self.window * 2;
            lines.retain(|_, seen| now.saturating_duration_since(seen.last_seen) < keep);
        }
        let seen = match lines.entry((key.to_string(), message.to_string())) {
            Entry::Vacant(slot) => {
                slot.insert(Seen {
                    last_written: now,
                    last_seen: now,
                    suppressed: 0,
                });
                return Some(0);
            }
            Entry::Occupied(slot) => slot.into_mut(),
        };
        seen.last_seen = now;
        if now.saturating_duration_since(seen.last_written) >= self.window {
            let held_back = seen.suppressed;
            seen.last_written = now;
            seen.suppressed = 0;
            Some(held_back)
        } else {
            seen.suppressed += 1;
            None
        }
    }

    /// Ends a run of identical lines (the condition is over): `Some(n)` if the line had
    /// been written, with `n` lines held back since; `None` if it was never seen.
    /// The next [`Self::admit`] of it is written at once.
    pub fn clear(&self, key: &str, message: &str) -> Option<u64> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .remove(&(key.to_string(), message.to_string()))
            .map(|seen| seen.suppressed)
    }
}

/// The process-wide limiter (window [`DEFAULT_WINDOW`]) that controllers share.
pub fn repeats() -> &'static RepeatLimiter {
    static LIMITER: OnceLock<RepeatLimiter> = OnceLock::new();
    LIMITER.get_or_init(|| RepeatLimiter::new(DEFAULT_WINDOW))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn identical_lines_are_held_back_for_a_window_then_counted() {
        let limiter = RepeatLimiter::new(5 * MINUTE);
        let t0 = Instant::now();
        assert_eq!(limiter.admit_at("ns/p/db-0", "member unreachable", t0), Some(0));
        // One probe a second for an hour: 3,600 calls, one line per five minutes.
        let mut written = vec![];
        for s in 1..=3600u64 {
            if let Some(n) = limiter.admit_at("ns/p/db-0", "member unreachable", t0 + Duration::from_secs(s)) {
                written.push((s, n));
            }
        }
        assert_eq!(written.len(), 12, "{written:?}");
        assert_eq!(
            written[0],
            (300, 299),
            "the first repeat after the window counts what it held back"
        );
        assert!(written.iter().skip(1).all(|&(_, n)| n == 299), "{written:?}");
    }

    #[test]
    fn different_keys_and_messages_are_separate_lines() {
        let limiter = RepeatLimiter::new(MINUTE);
        let t0 = Instant::now();
        assert_eq!(limiter.admit_at("a", "down", t0), Some(0));
        assert_eq!(limiter.admit_at("b", "down", t0), Some(0));
        assert_eq!(limiter.admit_at("a", "lagging", t0), Some(0));
        assert_eq!(limiter.admit_at("a", "down", t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn clear_reports_what_was_held_back_and_rearms_the_line() {
        let limiter = RepeatLimiter::new(MINUTE);
        let t0 = Instant::now();
        assert_eq!(limiter.clear("a", "down"), None, "never written");
        limiter.admit_at("a", "down", t0);
        for s in 1..=3 {
            assert_eq!(limiter.admit_at("a", "down", t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(limiter.clear("a", "down"), Some(3));
        assert_eq!(limiter.admit_at("a", "down", t0 + Duration::from_secs(5)), Some(0));
    }

    #[test]
    fn forgotten_lines_do_not_grow_without_bound() {
        let limiter = RepeatLimiter::new(MINUTE);
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            limiter.admit_at(&i.to_string(), "x", t0);
        }
        limiter.admit_at("late", "x", t0 + 3 * MINUTE);
        let size = limiter.lines.lock().unwrap().len();
        assert_eq!(size, 1, "old lines pruned, only the new one is left");
    }
}
