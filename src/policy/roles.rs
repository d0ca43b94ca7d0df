//! Who is primary right now, and which role label each member should carry.

use std::collections::BTreeMap;

/// What a probe round said about one member, reduced to role facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not reachable (or the probe failed).
    Unreachable,
    /// Accepts writes.
    WritablePrimary,
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

/// The decided topology.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// The primary (the one the writer Service must select), if any.
    pub primary: Option<String>,
    /// Whether the primary answered as a writable primary in this round.
    pub primary_healthy: bool,
    /// Labels to set; members absent here keep theirs (unreachable ones).
    pub labels: BTreeMap<String, RoleLabel>,
    /// Writable primaries other than the chosen one (split brain): to be fenced.
    pub to_fence: Vec<String>,
}

/// Decides the topology from one probe round and the previously recorded primary.
/// Two writable primaries are a split brain: the recorded primary keeps the role (it is
/// what the writer Service pointed at), the other is fenced.
pub fn decide(seen: &BTreeMap<String, Seen>, recorded_primary: Option<&str>) -> Topology {
    let writable: Vec<&String> = seen
        .iter()
        .filter(|(_, s)| **s == Seen::WritablePrimary)
        .map(|(n, _)| n)
        .collect();
    let primary = match (writable.as_slice(), recorded_primary) {
        ([], recorded) => recorded.map(str::to_string),
        ([only], _) => Some((*only).clone()),
        (many, Some(recorded)) if many.iter().any(|n| *n == recorded) => Some(recorded.to_string()),
        (many, _) => many.first().map(|n| (*n).clone()),
    };
    let mut topology = Topology {
        primary_healthy: primary
            .as_ref()
            .is_some_and(|p| seen.get(p) == Some(&Seen::WritablePrimary)),
        primary: primary.clone(),
        ..Topology::default()
    };
    for (name, s) in seen {
        let label = match s {
            Seen::Unreachable => continue,
            Seen::WritablePrimary if Some(name) == primary.as_ref() => RoleLabel::Primary,
            Seen::WritablePrimary => {
                topology.to_fence.push(name.clone());
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

    fn seen(pairs: &[(&str, Seen)]) -> BTreeMap<String, Seen> {
        pairs.iter().map(|(n, s)| (n.to_string(), s.clone())).collect()
    }

    #[test]
    fn one_writable_primary_leads() {
        let t = decide(
            &seen(&[
                ("a", Seen::WritablePrimary),
                ("b", Seen::Replica),
                ("c", Seen::Unreachable),
            ]),
            None,
        );
        assert_eq!(t.primary.as_deref(), Some("a"));
        assert!(t.primary_healthy);
        assert_eq!(t.labels.get("b"), Some(&RoleLabel::Replica));
        assert!(!t.labels.contains_key("c"), "unreachable members keep their label");
    }

    #[test]
    fn a_dead_primary_stays_recorded_but_unhealthy() {
        let t = decide(&seen(&[("a", Seen::Unreachable), ("b", Seen::Replica)]), Some("a"));
        assert_eq!(t.primary.as_deref(), Some("a"));
        assert!(!t.primary_healthy);
    }

    #[test]
    fn split_brain_keeps_the_recorded_primary_and_fences_the_other() {
        let t = decide(
            &seen(&[("a", Seen::WritablePrimary), ("b", Seen::WritablePrimary)]),
            Some("b"),
        );
        assert_eq!(t.primary.as_deref(), Some("b"));
        assert_eq!(t.to_fence, vec!["a".to_string()]);
        assert_eq!(t.labels.get("a"), Some(&RoleLabel::Fenced));
    }

    #[test]
    fn read_only_old_primary_is_fenced() {
        let t = decide(
            &seen(&[("a", Seen::ReadOnlyPrimary), ("b", Seen::WritablePrimary)]),
            Some("a"),
        );
        assert_eq!(t.primary.as_deref(), Some("b"));
        assert_eq!(t.labels.get("a"), Some(&RoleLabel::Fenced));
        assert!(t.to_fence.is_empty());
    }
}
