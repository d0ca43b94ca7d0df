//! Property tests of the pure retention function.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use lifeboat::api::recovery_plan::Retention;
use lifeboat::policy::retention::{BackupAt, KeepReason, select};
use proptest::prelude::*;

/// The time bucket of a backup for one rule.
type SlotKey = fn(&DateTime<Utc>) -> (i32, u32, u32);

fn backups() -> impl Strategy<Value = Vec<BackupAt>> {
    // Up to 80 backups spread over ~400 days, at minute resolution, unique names.
    prop::collection::vec(0i64..(400 * 24 * 60), 0..80).prop_map(|minutes| {
        let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        minutes
            .into_iter()
            .enumerate()
            .map(|(i, m)| BackupAt {
                name: format!("b{i:03}"),
                completed_at: base + Duration::minutes(m),
            })
            .collect()
    })
}

fn rules() -> impl Strategy<Value = Retention> {
    (0u32..6, 0u32..6, 0u32..6, 0u32..6, 0u32..6).prop_map(|(l, h, d, w, m)| Retention {
        keep_last: l,
        keep_hourly: h,
        keep_daily: d,
        keep_weekly: w,
        keep_monthly: m,
    })
}

fn newest(backups: &[BackupAt]) -> Option<&BackupAt> {
    backups
        .iter()
        .max_by(|a, b| a.completed_at.cmp(&b.completed_at).then_with(|| a.name.cmp(&b.name)))
}

fn slots(backups: &[BackupAt], key: impl Fn(&DateTime<Utc>) -> (i32, u32, u32)) -> usize {
    backups
        .iter()
        .map(|b| key(&b.completed_at))
        .collect::<HashSet<_>>()
        .len()
}

proptest! {
    #[test]
    fn never_deletes_the_newest(backups in backups(), rules in rules()) {
        let d = select(&backups, &rules);
        if let Some(n) = newest(&backups) {
            prop_assert!(d.is_kept(&n.name));
            prop_assert!(!d.delete.contains(&n.name));
        }
    }

    #[test]
    fn partitions_the_input(backups in backups(), rules in rules()) {
        let d = select(&backups, &rules);
        let kept: BTreeSet<_> = d.keep.iter().map(|(n, _)| n.clone()).collect();
        let deleted: BTreeSet<_> = d.delete.iter().cloned().collect();
        prop_assert!(kept.is_disjoint(&deleted));
        let all: BTreeSet<_> = backups.iter().map(|b| b.name.clone()).collect();
        prop_assert_eq!(kept.union(&deleted).cloned().collect::<BTreeSet<_>>(), all);
    }

    #[test]
    fn keeps_the_configured_count_per_time_bucket(backups in backups(), rules in rules()) {
        let d = select(&backups, &rules);
        let kept: Vec<BackupAt> = backups.iter().filter(|b| d.is_kept(&b.name)).cloned().collect();
        let checks: [(u32, SlotKey); 4] = [
            (rules.keep_hourly, |t| (t.year(), t.ordinal(), t.hour())),
            (rules.keep_daily, |t| (t.year(), t.ordinal(), 0)),
            (rules.keep_weekly, |t| (t.iso_week().year(), t.iso_week().week(), 0)),
            (rules.keep_monthly, |t| (t.year(), t.month(), 0)),
        ];
        for (count, key) in checks {
            // Kept backups cover min(count, buckets present) distinct buckets.
            let want = (count as usize).min(slots(&backups, key));
            prop_assert!(slots(&kept, key) >= want);
        }
        // keepLast: the N newest are all kept.
        let mut sorted = backups.clone();
        sorted.sort_by(|a, b| b.completed_at.cmp(&a.completed_at).then_with(|| b.name.cmp(&a.name)));
        for b in sorted.iter().take(rules.keep_last as usize) {
            prop_assert!(d.is_kept(&b.name));
        }
        // Nothing is kept without a rule asking for it.
        let budget = 1 + rules.keep_last + rules.keep_hourly + rules.keep_daily + rules.keep_weekly + rules.keep_monthly;
        prop_assert!(d.keep.len() <= budget as usize);
    }

    #[test]
    fn each_rule_keeps_the_newest_of_its_bucket(backups in backups(), rules in rules()) {
        let d = select(&backups, &rules);
        for (name, why) in &d.keep {
            let b = backups.iter().find(|b| &b.name == name).unwrap();
            if why.contains(&KeepReason::Daily) {
                let later_same_day = backups.iter().any(|o| {
                    o.completed_at.date_naive() == b.completed_at.date_naive()
                        && (o.completed_at, &o.name) > (b.completed_at, &b.name)
                });
                prop_assert!(!later_same_day, "{name} kept as daily but not the day's newest");
            }
        }
    }

    #[test]
    fn pruning_again_deletes_nothing_more(backups in backups(), rules in rules()) {
        let d = select(&backups, &rules);
        let kept: Vec<BackupAt> = backups.iter().filter(|b| d.is_kept(&b.name)).cloned().collect();
        let again = select(&kept, &rules);
        prop_assert!(again.delete.is_empty(), "second pass would delete {:?}", again.delete);
    }
}
