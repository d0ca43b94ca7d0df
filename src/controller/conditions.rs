//! Conditions as the Kubernetes API conventions want them: one per type,
//! `lastTransitionTime` moves only when the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition to record; the time and generation are filled in by [`set_condition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate<'a> {
    /// Condition type, e.g. `Ready`.
    pub type_: &'a str,
    /// "True", "False" or "Unknown".
    pub status: &'a str,
    /// CamelCase reason.
    pub reason: &'a str,
    /// Human message.
    pub message: String,
}

/// Records `update` in `conditions`, keeping `lastTransitionTime` when the status did not
/// change. Returns whether anything changed (so callers can skip a no-op status write).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate<'_>,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == update.type_) {
        Some(existing) => {
            let flipped = existing.status != update.status;
            let changed = flipped
                || existing.reason != update.reason
                || existing.message != update.message
                || existing.observed_generation != generation;
            if flipped {
                existing.last_transition_time = now.clone();
            }
            existing.status = update.status.to_string();
            existing.reason = update.reason.to_string();
            existing.message = update.message;
            existing.observed_generation = generation;
            changed
        }
        None => {
            conditions.push(Condition {
                type_: update.type_.to_string(),
                status: update.status.to_string(),
                reason: update.reason.to_string(),
                message: update.message,
                observed_generation: generation,
                last_transition_time: now.clone(),
            });
            true
        }
    }
}

/// Status of the condition of this type, if present.
pub fn condition_status<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions.iter().find(|c| c.type_ == type_).map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid"))
    }

    fn ready(status: &'static str, message: &str) -> ConditionUpdate<'static> {
        ConditionUpdate {
            type_: "Ready",
            status,
            reason: "Probed",
            message: message.to_string(),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conditions = Vec::new();
        assert!(set_condition(&mut conditions, ready("True", "ok"), Some(1), &at(100)));
        assert!(set_condition(
            &mut conditions,
            ready("True", "still ok"),
            Some(1),
            &at(200)
        ));
        assert_eq!(conditions[0].last_transition_time, at(100));
        assert!(
            !set_condition(&mut conditions, ready("True", "still ok"), Some(1), &at(300)),
            "no-op"
        );
        assert!(set_condition(
            &mut conditions,
            ready("False", "down"),
            Some(2),
            &at(400)
        ));
        assert_eq!(conditions[0].last_transition_time, at(400));
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert_eq!(conditions.len(), 1);
        assert_eq!(condition_status(&conditions, "Ready"), Some("False"));
        assert_eq!(condition_status(&conditions, "RpoMet"), None);
    }
}
