//! Pure pod status computation from the containers' statuses, as the kubelet's
//! status manager does: phase, the Initialized/ContainersReady/Ready/
//! PodReadyToStartContainers conditions, container status lists.

use serde_json::{Value, json};

/// What the pod worker knows.
pub struct PodState<'a> {
    pub pod: &'a Value,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    pub start_time: &'a str,
    pub sandbox_ready: bool,
    pub init_done: bool,
    pub init_failed: bool,
    pub init: &'a [Value],
    pub main: &'a [Value],
    /// A container (or the pod setup) that cannot start yet, with why.
    pub waiting_message: Option<&'a str>,
}

fn condition(old: &Value, ctype: &str, ok: bool, reason: Option<&str>) -> Value {
    let status = if ok { "True" } else { "False" };
    let previous = old["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ctype);
    let since = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    };
    let mut c = json!({"type": ctype, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if let Some(r) = reason.filter(|_| !ok) {
        c["reason"] = json!(r);
    }
    c
}

fn is_running(c: &Value) -> bool {
    c["state"]["running"].is_object()
}

fn terminated_code(c: &Value) -> Option<i64> {
    c["state"]["terminated"]["exitCode"].as_i64()
}

/// The phase from container states and the restart policy.
pub fn phase(s: &PodState<'_>) -> &'static str {
    if s.init_failed {
        return "Failed";
    }
    if !s.init_done || s.main.is_empty() {
        return "Pending";
    }
    let policy = s.pod["spec"]["restartPolicy"].as_str().unwrap_or("Always");
    let all_terminated = s.main.iter().all(|c| terminated_code(c).is_some());
    if all_terminated && policy != "Always" {
        let failed = s.main.iter().any(|c| terminated_code(c) != Some(0));
        // OnFailure restarts failed containers: terminal only when all succeeded.
        return match (failed, policy) {
            (false, _) => "Succeeded",
            (true, "Never") => "Failed",
            (true, _) => "Running",
        };
    }
    let any_started = s
        .main
        .iter()
        .any(|c| is_running(c) || c["restartCount"].as_u64().unwrap_or(0) > 0 || terminated_code(c).is_some());
    if any_started { "Running" } else { "Pending" }
}

/// The pod's `status` as the kubelet would report it.
pub fn pod_status(s: &PodState<'_>) -> Value {
    let phase = phase(s);
    let all_ready = !s.main.is_empty() && s.main.iter().all(|c| c["ready"] == true);
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let gates_ok = s.pod["spec"]["readinessGates"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|g| {
            s.pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
        });
    let ready = all_ready && !terminal;
    let reason = if terminal { "PodCompleted" } else { "ContainersNotReady" };
    let old = s.pod;
    let mut conditions = vec![
        condition(old, "PodReadyToStartContainers", s.sandbox_ready && !terminal, None),
        condition(old, "Initialized", s.init_done, Some("ContainersNotInitialized")),
        condition(old, "Ready", ready && gates_ok, Some(reason)),
        condition(old, "ContainersReady", ready, Some(reason)),
        condition(old, "PodScheduled", true, None),
    ];
    // Conditions the kubelet does not own (readiness gates, custom ones) stay.
    for c in old["status"]["conditions"].as_array().into_iter().flatten() {
        let t = c["type"].as_str().unwrap_or("");
        if !conditions.iter().any(|x| x["type"] == t) {
            conditions.push(c.clone());
        }
    }
    let mut status = json!({
        "phase": phase, "conditions": conditions,
        "hostIP": s.host_ip, "hostIPs": [{"ip": s.host_ip}],
        "startTime": s.start_time, "qosClass": qos(old),
        "containerStatuses": s.main,
    });
    if !s.pod_ip.is_empty() {
        status["podIP"] = json!(s.pod_ip);
        status["podIPs"] = json!([{"ip": s.pod_ip}]);
    }
    if !s.init.is_empty() {
        status["initContainerStatuses"] = json!(s.init);
    }
    if let Some(m) = s.waiting_message {
        status["message"] = json!(m);
    }
    status
}

fn qos(pod: &Value) -> &'static str {
    let containers = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let has = |c: &Value, k: &str| c["resources"][k].as_object().is_some_and(|m| !m.is_empty());
    if containers.iter().all(|c| !has(c, "requests") && !has(c, "limits")) {
        "BestEffort"
    } else if containers
        .iter()
        .all(|c| has(c, "limits") && (!has(c, "requests") || c["resources"]["requests"] == c["resources"]["limits"]))
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A container that has not started: waiting with a reason.
pub fn waiting(container: &Value, reason: &str, message: Option<&str>) -> Value {
    let mut w = json!({"reason": reason});
    if let Some(m) = message {
        w["message"] = json!(m);
    }
    json!({
        "name": container["name"], "image": container["image"], "imageID": "",
        "ready": false, "started": false, "restartCount": 0,
        "state": {"waiting": w}, "lastState": {},
    })
}
