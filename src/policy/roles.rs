//! Who is primary right now, and which role label each member should carry.

use std::collections::BTreeMap;

/// What a probe round said about one member, reduced to role facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not reachable (or the probe failed).
    Unreachable,
    /// Accepts writes; `epoch` is the failover epoch in its heartbeat row, if readable.
    WritablePrimary { epoch: Option<u64> },
    /// Not in recovery but read-only: a fenced old primary.
    ReadOnlyPrimary,
    /// Following an upstream.
    Replica,
}

/// The role label lifeboat keeps on a member pod (`lifeboat.dev/role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleLabel {
    Primary,
    Replica,
    Fenced,
}

impl RoleLabel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleLabel::Primary => "primary",
            RoleLabel::Replica => "replica",
            RoleLabel::Fenced => "fenced",
        }
    }
}

/// A writable member that must not be: to be made read-only and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleWriter {
    pub name: String,
    /// Its epoch, if readable.
    pub epoch: Option<u64>,
    /// Why it is not the primary.
    pub why: String,
}

/// The decided topology.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// The primary (the one the writer Service must select), if any.
    pub primary: Option<String>,
    /// Whether the primary answered as a writable primary in this round.
    pub primary_healthy: bool,
    /// A writable member to record as the primary (first adoption, or a member promoted
    /// outside lifeboat whose epoch is not older than the recorded one).
    pub adopt: Option<String>,
    /// Labels to set; members absent here keep theirs (unreachable ones, and writable ones
    /// when lifeboat is unsure).
    pub labels: BTreeMap<String, RoleLabel>,
    /// Writable members other than the primary: to be fenced.
    pub to_fence: Vec<StaleWriter>,
    /// lifeboat cannot tell which writable member is the primary: it changes nothing and
    /// says why.
    pub unsure: Option<String>,
}

/// Decides the topology from one probe round and the recorded primary and epoch (both read
/// fresh, after the probes). One primary per epoch: the recorded primary wins; another
/// writable member is adopted only while the recorded primary is not writable and only if
/// its own epoch is known and not older than the recorded one (a promotion made outside
/// lifeboat); a writable member of an older or unknown epoch is fenced. When two writable
/// members cannot be ordered, nothing is changed.
pub fn decide(seen: &BTreeMap<String, Seen>, recorded_primary: Option<&str>, recorded_epoch: Option<u64>) -> Topology {
    let writable: Vec<(&String, Option<u64>)> = seen
        .iter()
        .filter_map(|(n, s)| match s {
            Seen::WritablePrimary { epoch } => Some((n, *epoch)),
            _ => None,
        })
        .collect();
    let recorded_epoch_value = recorded_epoch.unwrap_or(0);
    let recorded_writable = recorded_primary.and_then(|r| writable.iter().find(|(n, _)| n.as_str() == r));
    let mut topology = Topology::default();
    let primary: Option<String> = match (recorded_primary, recorded_writable) {
        (Some(r), Some((_, r_epoch))) => {
            let newer: Vec<&str> = writable
                .iter()
                .filter(|(n, e)| n.as_str() != r && matches!((e, r_epoch), (Some(e), Some(re)) if e > re))
                .map(|(n, _)| n.as_str())
                .collect();
            if !newer.is_empty() {
                topology.unsure = Some(format!(
                    "recorded primary {r} (epoch {}) is writable, and so is {} with a newer epoch; not routing or fencing until a person decides",
                    r_epoch.map_or("unknown".into(), |e| e.to_string()),
                    newer.join(", ")
                ));
            }
            Some(r.to_string())
        }
        (recorded, _) => {
            let eligible: Vec<&String> = writable
                .iter()
                .filter(|(_, e)| match recorded {
                    None => true,
                    Some(_) => e.is_some_and(|e| e >= recorded_epoch_value),
                })
                .map(|(n, _)| *n)
                .collect();
            match eligible.as_slice() {
                [] => recorded.map(str::to_string),
                [only] => {
                    topology.adopt = Some((*only).clone());
                    Some((*only).clone())
                }
                many if recorded.is_none() => {
                    // No record: the single highest known epoch may lead, else nobody.
                    let best = writable.iter().filter_map(|(_, e)| *e).max();
                    let leaders: Vec<&&String> = many
                        .iter()
                        .filter(|n| writable.iter().any(|(w, e)| w == *n && *e == best && best.is_some()))
                        .collect();
                    if let [leader] = leaders.as_slice() {
                        topology.adopt = Some((**leader).clone());
                        Some((**leader).clone())
                    } else {
                        topology.unsure = Some(format!(
                            "{} are writable and no primary is recorded: not choosing one",
                            many.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                        None
                    }
                }
                many => {
                    topology.unsure = Some(format!(
                        "recorded primary {} is not writable and {} are, each with an epoch not older than {recorded_epoch_value}: not choosing one",
                        recorded.unwrap_or_default(),
                        many.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    recorded.map(str::to_string)
                }
            }
        }
    };
    topology.primary_healthy = primary
        .as_ref()
        .is_some_and(|p| matches!(seen.get(p), Some(Seen::WritablePrimary { .. })));
    topology.primary = primary.clone();
    for (name, s) in seen {
        let label = match s {
            Seen::Unreachable => continue,
            Seen::WritablePrimary { .. } if Some(name) == primary.as_ref() => {
                if topology.unsure.is_some() {
                    continue;
                }
                RoleLabel::Primary
            }
            Seen::WritablePrimary { epoch } => {
                if topology.unsure.is_some() {
                    continue;
                }
                let why = match (primary.as_deref(), epoch) {
                    (Some(p), Some(e)) => {
                        format!("{p} is the primary of epoch {recorded_epoch_value}; {name} is writable with epoch {e}")
                    }
                    (Some(p), None) => format!("{p} is the primary; {name} is writable and its epoch is unknown"),
                    (None, _) => format!("{name} is writable but is not the primary"),
                };
                topology.to_fence.push(StaleWriter {
                    name: name.clone(),
                    epoch: *epoch,
                    why,
                });
                RoleLabel::Fenced
            }
            Seen::ReadOnlyPrimary => RoleLabel::Fenced,
            Seen::Replica => RoleLabel::Replica,
        };
        topology.labels.insert(name.clone(), label);
    }
    topology
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(epoch: Option<u64>) -> Seen {
        Seen::WritablePrimary { epoch }
    }

    fn seen(pairs: &[(&str, Seen)]) -> BTreeMap<String, Seen> {
        pairs.iter().map(|(n, s)| (n.to_string(), s.clone())).collect()
    }

    #[test]
    fn one_writable_primary_is_adopted_when_nothing_is_recorded() {
        let t = decide(
            &seen(&[("a", w(Some(0))), ("b", Seen::Replica), ("c", Seen::Unreachable)]),
            None,
            None,
        );
        assert_eq!(t.primary.as_deref(), Some("a"));
        assert_eq!(t.adopt.as_deref(), Some("a"));
        assert!(t.primary_healthy);
        assert_eq!(t.labels.get("b"), Some(&RoleLabel::Replica));
        assert!(!t.labels.contains_key("c"), "unreachable members keep their label");
    }

    #[test]
    fn a_dead_primary_stays_recorded_but_unhealthy() {
        let t = decide(
            &seen(&[("a", Seen::Unreachable), ("b", Seen::Replica)]),
            Some("a"),
            Some(0),
        );
        assert_eq!(t.primary.as_deref(), Some("a"));
        assert!(!t.primary_healthy);
        assert_eq!(t.adopt, None);
    }

    #[test]
    fn split_brain_keeps_the_recorded_primary_and_fences_the_older_epoch() {
        let t = decide(&seen(&[("a", w(Some(3))), ("b", w(Some(4)))]), Some("b"), Some(4));
        assert_eq!(t.primary.as_deref(), Some("b"));
        assert_eq!(t.to_fence.len(), 1);
        assert_eq!(t.to_fence[0].name, "a");
        assert_eq!(t.labels.get("a"), Some(&RoleLabel::Fenced));
    }

    #[test]
    fn a_thawed_old_primary_is_never_adopted_while_the_new_one_is_away() {
        // b was promoted (epoch 4) and is unreachable; the old primary a comes back writable.
        let t = decide(
            &seen(&[("a", w(Some(3))), ("b", Seen::Unreachable)]),
            Some("b"),
            Some(4),
        );
        assert_eq!(t.primary.as_deref(), Some("b"));
        assert!(!t.primary_healthy);
        assert_eq!(t.adopt, None);
        assert_eq!(t.to_fence.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["a"]);
        // Unknown epoch (heartbeat off): fenced as well, never adopted.
        let t = decide(&seen(&[("a", w(None)), ("b", Seen::Unreachable)]), Some("b"), Some(4));
        assert_eq!((t.adopt, t.to_fence.len()), (None, 1));
    }

    #[test]
    fn a_member_promoted_outside_lifeboat_is_adopted_if_its_epoch_is_current() {
        let t = decide(
            &seen(&[("a", Seen::Unreachable), ("b", w(Some(4)))]),
            Some("a"),
            Some(4),
        );
        assert_eq!(t.adopt.as_deref(), Some("b"));
        assert_eq!(t.labels.get("b"), Some(&RoleLabel::Primary));
    }

    #[test]
    fn unordered_writers_change_nothing() {
        let t = decide(&seen(&[("a", w(None)), ("b", w(None))]), None, None);
        assert!(t.unsure.is_some());
        assert!(t.to_fence.is_empty() && t.labels.is_empty() && t.adopt.is_none());
        let t = decide(&seen(&[("a", w(Some(2))), ("b", w(Some(5)))]), Some("a"), Some(2));
        assert!(t.unsure.is_some(), "the recorded primary is older than another writer");
        assert!(t.to_fence.is_empty());
    }

    #[test]
    fn read_only_old_primary_is_fenced() {
        let t = decide(
            &seen(&[("a", Seen::ReadOnlyPrimary), ("b", w(Some(1)))]),
            Some("b"),
            Some(1),
        );
        assert_eq!(t.primary.as_deref(), Some("b"));
        assert_eq!(t.labels.get("a"), Some(&RoleLabel::Fenced));
        assert!(t.to_fence.is_empty());
    }
}
