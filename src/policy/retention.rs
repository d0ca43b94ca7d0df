//! Grandfather-father-son retention over a plan's completed backups.
//!
//! Pure: takes the catalog (names and completion times) and the plan's rules, returns
//! which backups to keep (with why) and which to delete. The newest completed backup is
//! always kept, whatever the rules say.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::api::recovery_plan::Retention;

/// One completed backup as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupAt {
    pub name: String,
    pub completed_at: DateTime<Utc>,
}

/// Why a backup is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeepReason {
    /// The newest completed backup: never deleted.
    Newest,
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
}

/// The decision: every input backup is in exactly one of `keep` and `delete`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionDecision {
    /// Kept backups, newest first, with every rule that keeps them.
    pub keep: Vec<(String, BTreeSet<KeepReason>)>,
    /// Backups to delete, newest first.
    pub delete: Vec<String>,
}

impl RetentionDecision {
    pub fn is_kept(&self, name: &str) -> bool {
        self.keep.iter().any(|(n, _)| n == name)
    }
}

/// The time slot a backup falls in for one rule; one backup (the newest) is kept per slot.
fn slot(reason: KeepReason, t: &DateTime<Utc>) -> (i32, u32, u32, u32) {
    match reason {
        KeepReason::Hourly => (t.year(), t.ordinal(), t.hour(), 0),
        KeepReason::Daily => (t.year(), t.ordinal(), 0, 0),
        KeepReason::Weekly => {
            let week = t.iso_week();
            (week.year(), week.week(), 0, 0)
        }
        KeepReason::Monthly => (t.year(), t.month(), 0, 0),
        KeepReason::Newest | KeepReason::Last => (0, 0, 0, 0),
    }
}

/// Applies `rules` to `backups` (any order; names unique).
pub fn select(backups: &[BackupAt], rules: &Retention) -> RetentionDecision {
    let mut sorted: Vec<&BackupAt> = backups.iter().collect();
    // Newest first; the name breaks ties so the result does not depend on input order.
    sorted.sort_by(|a, b| b.completed_at.cmp(&a.completed_at).then_with(|| b.name.cmp(&a.name)));
    let mut reasons: BTreeMap<usize, BTreeSet<KeepReason>> = BTreeMap::new();
    if !sorted.is_empty() {
        reasons.entry(0).or_default().insert(KeepReason::Newest);
    }
    for i in 0..(rules.keep_last as usize).min(sorted.len()) {
        reasons.entry(i).or_default().insert(KeepReason::Last);
    }
    for (reason, count) in [
        (KeepReason::Hourly, rules.keep_hourly),
        (KeepReason::Daily, rules.keep_daily),
        (KeepReason::Weekly, rules.keep_weekly),
        (KeepReason::Monthly, rules.keep_monthly),
    ] {
        let mut last_slot = None;
        let mut slots = 0u32;
        for (i, backup) in sorted.iter().enumerate() {
            if slots >= count {
                break;
            }
            let s = slot(reason, &backup.completed_at);
            // Sorted newest first: the first backup seen in a slot is its newest.
            if last_slot != Some(s) {
                last_slot = Some(s);
                slots += 1;
                reasons.entry(i).or_default().insert(reason);
            }
        }
    }
    let mut decision = RetentionDecision::default();
    for (i, backup) in sorted.iter().enumerate() {
        match reasons.remove(&i) {
            Some(why) => decision.keep.push((backup.name.clone(), why)),
            None => decision.delete.push(backup.name.clone()),
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(name: &str, y: i32, m: u32, d: u32, h: u32) -> BackupAt {
        BackupAt {
            name: name.into(),
            completed_at: Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap(),
        }
    }

    fn rules(last: u32, hourly: u32, daily: u32, weekly: u32, monthly: u32) -> Retention {
        Retention {
            keep_last: last,
            keep_hourly: hourly,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
        }
    }

    #[test]
    fn zero_rules_still_keep_the_newest() {
        let backups = [at("a", 2026, 1, 1, 0), at("b", 2026, 1, 2, 0)];
        let d = select(&backups, &rules(0, 0, 0, 0, 0));
        assert_eq!(d.keep.len(), 1);
        assert_eq!(d.keep[0].0, "b");
        assert_eq!(d.delete, vec!["a".to_string()]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let backups = [
            at("d1-early", 2026, 3, 1, 1),
            at("d1-late", 2026, 3, 1, 23),
            at("d2-early", 2026, 3, 2, 1),
            at("d2-late", 2026, 3, 2, 22),
            at("d3", 2026, 3, 3, 5),
        ];
        let d = select(&backups, &rules(0, 0, 2, 0, 0));
        let kept: Vec<&str> = d.keep.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, vec!["d3", "d2-late"]);
    }

    #[test]
    fn monthly_reaches_back_past_gaps() {
        let backups = [
            at("jan", 2026, 1, 15, 0),
            at("mar", 2026, 3, 15, 0),
            at("jun", 2026, 6, 15, 0),
        ];
        let d = select(&backups, &rules(0, 0, 0, 0, 3));
        assert_eq!(d.keep.len(), 3);
        assert!(d.delete.is_empty());
    }
}
