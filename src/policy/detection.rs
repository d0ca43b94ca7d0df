//! Does a replica still hear from its primary? (DESIGN.md "Failover, safely", step 2.)
//!
//! An open replication connection proves nothing: a hung primary keeps it open until
//! `wal_receiver_timeout` / `slave_net_timeout` (60 s by default). What counts is whether
//! anything still arrives. That is only conclusive when a healthy but idle primary is known
//! to send something regularly:
//! - PostgreSQL: the WAL sender pings a standby that has not replied for half of
//!   `wal_sender_timeout`. A standby replying more often than that (short
//!   `wal_receiver_status_interval`) is never pinged, so an idle primary can be silent for
//!   ever. Keepalives are guaranteed every `wal_sender_timeout / 2` when
//!   `wal_receiver_status_interval > wal_sender_timeout / 2` (or 0): e.g. the defaults' 10 s
//!   status interval with `wal_sender_timeout = 2s`.
//! - MySQL/MariaDB: an idle primary sends a heartbeat event every `MASTER_HEARTBEAT_PERIOD`.
//!
//! lifeboat's own heartbeat writes also produce traffic, but only while lifeboat reaches
//! the primary, so they cannot tell "primary hung" from "lifeboat cut off".
//! Without a guaranteed keepalive, silence never confirms a failure; only a dropped
//! replication connection does (slow, but never wrong).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What a probe tells about a replica's link to its primary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// The replication connection is up and streaming (PG `streaming`, MySQL IO thread `Yes`).
    pub connected: bool,
    /// Time since anything last arrived, if known.
    pub silence: Option<Duration>,
    /// The longest a healthy idle primary stays silent on this link, if guaranteed.
    pub keepalive: Option<Duration>,
    /// Engine wording of the link state, for messages.
    pub state: String,
}

/// Verdict on one replica's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hearing {
    /// Changes or keepalives still arrive (or silence is not conclusive).
    Hears(String),
    /// Nothing has arrived for long enough, or the connection is down.
    Lost(String),
}

impl Hearing {
    pub fn lost(&self) -> bool {
        matches!(self, Hearing::Lost(_))
    }

    pub fn detail(&self) -> &str {
        match self {
            Hearing::Hears(d) | Hearing::Lost(d) => d,
        }
    }
}

/// Judges a link: `window` is the confirmation window (probe interval x failure
/// threshold), `interval` the probe interval (the granularity of observations).
pub fn judge_link(link: &Link, window: Duration, interval: Duration) -> Hearing {
    if !link.connected {
        return Hearing::Lost(format!("replication connection down ({})", link.state));
    }
    let (Some(silence), Some(keepalive)) = (link.silence, link.keepalive) else {
        return Hearing::Hears(format!(
            "connected ({}); silence is not conclusive without a guaranteed keepalive{}",
            link.state,
            link.silence
                .map(|s| format!(", last message {:.1}s ago", s.as_secs_f64()))
                .unwrap_or_default()
        ));
    };
    let needed = window.max(keepalive + interval);
    if silence >= needed {
        Hearing::Lost(format!(
            "nothing received for {:.1}s (an idle primary sends every {:.1}s)",
            silence.as_secs_f64(),
            keepalive.as_secs_f64()
        ))
    } else {
        Hearing::Hears(format!("last message {:.1}s ago", silence.as_secs_f64()))
    }
}

/// PostgreSQL: the keepalive guaranteed by the primary's `wal_sender_timeout` and the
/// replica's `wal_receiver_status_interval` (see the module docs).
pub fn pg_keepalive(sender_timeout: Option<Duration>, status_interval: Option<Duration>) -> Option<Duration> {
    let half = sender_timeout.filter(|t| !t.is_zero())? / 2;
    let interval = status_interval?;
    // Equal periods race: the standby's own reply can always come first.
    (interval.is_zero() || interval > half).then_some(half)
}

/// Tracks a progress marker between probe rounds (MySQL/MariaDB, where the server does not
/// tell how long ago it last heard from its primary): the silence is the time since the
/// marker last changed. A marker seen for the first time counts as just heard, which can
/// only delay a confirmation, never hasten it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressTracker {
    marker: Option<String>,
    changed_at: Option<DateTime<Utc>>,
}

impl ProgressTracker {
    /// Records this round's marker and returns the silence.
    pub fn observe(&mut self, marker: &str, now: DateTime<Utc>) -> Duration {
        if self.marker.as_deref() != Some(marker) {
            self.marker = Some(marker.to_string());
            self.changed_at = Some(now);
        }
        self.changed_at
            .map(|t| (now - t).to_std().unwrap_or_default())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn link(connected: bool, silence: Option<u64>, keepalive: Option<u64>) -> Link {
        Link {
            connected,
            silence: silence.map(Duration::from_millis),
            keepalive: keepalive.map(Duration::from_millis),
            state: "streaming".into(),
        }
    }

    #[test]
    fn a_hung_primary_is_seen_by_silence_not_by_the_connection() {
        let window = S(3);
        let interval = S(1);
        assert!(judge_link(&link(true, Some(3500), Some(1000)), window, interval).lost());
        assert!(!judge_link(&link(true, Some(900), Some(1000)), window, interval).lost());
        assert!(judge_link(&link(false, None, None), window, interval).lost());
    }

    #[test]
    fn silence_without_a_guaranteed_keepalive_never_confirms() {
        let verdict = judge_link(&link(true, Some(3_600_000), None), S(3), S(1));
        assert!(!verdict.lost(), "{verdict:?}");
        // A long keepalive stretches the window instead of confirming early.
        assert!(!judge_link(&link(true, Some(20_000), Some(30_000)), S(3), S(1)).lost());
        assert!(judge_link(&link(true, Some(31_500), Some(30_000)), S(3), S(1)).lost());
    }

    #[test]
    fn pg_keepalives_need_replies_rarer_than_half_the_sender_timeout() {
        assert_eq!(pg_keepalive(Some(S(2)), Some(S(10))), Some(S(1)));
        assert_eq!(pg_keepalive(Some(S(2)), Some(Duration::ZERO)), Some(S(1)));
        assert_eq!(
            pg_keepalive(Some(S(60)), Some(S(1))),
            None,
            "replies every 1s: never pinged"
        );
        assert_eq!(pg_keepalive(Some(S(2)), Some(S(1))), None, "equal periods race");
        assert_eq!(
            pg_keepalive(Some(Duration::ZERO), Some(S(10))),
            None,
            "timeout disabled"
        );
        assert_eq!(pg_keepalive(None, Some(S(10))), None);
    }

    #[test]
    fn progress_silence_counts_from_the_last_change() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut tracker = ProgressTracker::default();
        assert_eq!(tracker.observe("a", at(0)), Duration::ZERO);
        assert_eq!(tracker.observe("a", at(2)), S(2));
        assert_eq!(tracker.observe("b", at(3)), Duration::ZERO);
        assert_eq!(tracker.observe("b", at(7)), S(4));
    }
}
