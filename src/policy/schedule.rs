//! When the next scheduled backup is due. A run missed while the operator was down runs
//! once when it returns (not once per missed slot); runs never overlap.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// What the scheduler should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleAction {
    /// Start the run for this slot now.
    RunNow { slot: DateTime<Utc> },
    /// Nothing to do before this time.
    WaitUntil(DateTime<Utc>),
    /// A run is still in progress; look again when it ends.
    WaitForRunning,
    /// The schedule has no future slot.
    Never,
}

/// Decides the next action. `last_slot` is the slot of the newest scheduled run (or the
/// plan's creation time when none ran yet), `running` whether a backup is in progress.
pub fn next_action(cron: &Cron, tz: Tz, last_slot: DateTime<Utc>, now: DateTime<Utc>, running: bool) -> ScheduleAction {
    let after_last = cron.find_next_occurrence(&last_slot.with_timezone(&tz), false);
    let Ok(next_after_last) = after_last else {
        return ScheduleAction::Never;
    };
    let next_after_last = next_after_last.with_timezone(&Utc);
    if next_after_last > now {
        return ScheduleAction::WaitUntil(next_after_last);
    }
    if running {
        return ScheduleAction::WaitForRunning;
    }
    // One or more slots passed: run once, for the newest one that passed.
    let newest_passed = cron
        .find_previous_occurrence(&now.with_timezone(&tz), true)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(next_after_last);
    ScheduleAction::RunNow {
        slot: newest_passed.max(next_after_last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::validate::parse_cron;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("rfc3339")
    }

    #[test]
    fn waits_for_the_next_slot() {
        let cron = parse_cron("f", "0 * * * *").expect("cron");
        let action = next_action(
            &cron,
            chrono_tz::UTC,
            t("2026-11-24T10:00:00Z"),
            t("2026-11-24T10:20:00Z"),
            false,
        );
        assert_eq!(action, ScheduleAction::WaitUntil(t("2026-11-24T11:00:00Z")));
    }

    #[test]
    fn missed_slots_run_once_for_the_newest() {
        let cron = parse_cron("f", "0 * * * *").expect("cron");
        // Operator down from 10:05 to 13:30: three slots missed, one run, slot 13:00.
        let action = next_action(
            &cron,
            chrono_tz::UTC,
            t("2026-11-24T10:00:00Z"),
            t("2026-11-24T13:30:00Z"),
            false,
        );
        assert_eq!(
            action,
            ScheduleAction::RunNow {
                slot: t("2026-11-24T13:00:00Z")
            }
        );
        // After that run, the next is 14:00.
        let action = next_action(
            &cron,
            chrono_tz::UTC,
            t("2026-11-24T13:00:00Z"),
            t("2026-11-24T13:30:01Z"),
            false,
        );
        assert_eq!(action, ScheduleAction::WaitUntil(t("2026-11-24T14:00:00Z")));
    }

    #[test]
    fn never_overlaps_a_running_backup() {
        let cron = parse_cron("f", "* * * * *").expect("cron");
        let action = next_action(
            &cron,
            chrono_tz::UTC,
            t("2026-11-24T10:00:00Z"),
            t("2026-11-24T10:05:00Z"),
            true,
        );
        assert_eq!(action, ScheduleAction::WaitForRunning);
    }

    #[test]
    fn time_zone_is_honoured() {
        let cron = parse_cron("f", "0 3 * * *").expect("cron");
        let berlin: Tz = "Europe/Berlin".parse().expect("tz");
        // 03:00 in Berlin in November (CET, UTC+1) is 02:00 UTC.
        let action = next_action(
            &cron,
            berlin,
            t("2026-11-24T12:00:00Z"),
            t("2026-11-24T12:00:01Z"),
            false,
        );
        assert_eq!(action, ScheduleAction::WaitUntil(t("2026-11-25T02:00:00Z")));
    }
}
