//! Which database servers a RecoveryPlan covers: pods picked by its selector (their
//! `status.podIP` and the plan's port), or its static endpoints.

use k8s_openapi::api::core::v1::Pod;

use crate::api::recovery_plan::RecoveryPlanSpec;
use crate::engine::Member;

/// Members resolved from a plan, and the pods that could not be used yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedMembers {
    /// Members lifeboat can connect to.
    pub members: Vec<Member>,
    /// `(pod, why)` for selected pods that are not usable (no IP yet, terminating).
    pub skipped: Vec<(String, String)>,
}

/// Members from the pods a selector matched (already filtered by the API server).
/// Sorted by name so status and decisions are stable.
pub fn members_from_pods(spec: &RecoveryPlanSpec, pods: &[Pod]) -> ResolvedMembers {
    let port = spec.members.port.unwrap_or_else(|| spec.engine.default_port());
    let mut resolved = ResolvedMembers::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            resolved.skipped.push((name, "terminating".into()));
            continue;
        }
        match pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        {
            Some(ip) => resolved.members.push(Member::new(name, ip, port)),
            None => resolved.skipped.push((name, "no podIP yet".into())),
        }
    }
    resolved.members.sort_by(|a, b| a.name.cmp(&b.name));
    resolved
}

/// Members from the plan's static endpoints.
pub fn members_from_endpoints(spec: &RecoveryPlanSpec) -> ResolvedMembers {
    let members = spec
        .members
        .endpoints
        .iter()
        .flatten()
        .map(|e| Member::new(e.name.clone(), e.host.clone(), e.port))
        .collect();
    ResolvedMembers {
        members,
        skipped: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(members: &str) -> RecoveryPlanSpec {
        serde_yaml::from_str(&format!(
            "engine: postgres\nmembers: {members}\ncredentialsSecret: {{name: c}}\nwriterService: w\nobjectives: {{rpo: 1m, rto: 1m}}"
        ))
        .expect("spec")
    }

    fn pod(name: &str, ip: Option<&str>, terminating: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "deletionTimestamp": if terminating { Some("2026-01-01T00:00:00Z") } else { None }},
            "status": {"podIP": ip},
        }))
        .expect("pod")
    }

    #[test]
    fn pods_become_members_on_the_plan_port() {
        let spec = spec("{selector: {matchLabels: {app: db}}}");
        let pods = [
            pod("db-1", Some("10.0.0.2"), false),
            pod("db-0", Some("10.0.0.1"), false),
            pod("db-2", None, false),
            pod("db-3", Some("10.0.0.4"), true),
        ];
        let resolved = members_from_pods(&spec, &pods);
        assert_eq!(
            resolved.members,
            vec![
                Member::new("db-0", "10.0.0.1", 5432),
                Member::new("db-1", "10.0.0.2", 5432)
            ]
        );
        assert_eq!(
            resolved.skipped,
            vec![
                ("db-2".into(), "no podIP yet".into()),
                ("db-3".into(), "terminating".into())
            ]
        );
    }

    #[test]
    fn static_endpoints_are_taken_as_given() {
        let spec = spec("{endpoints: [{name: a, host: h1, port: 3307}]}");
        assert_eq!(
            members_from_endpoints(&spec).members,
            vec![Member::new("a", "h1", 3307)]
        );
    }
}
