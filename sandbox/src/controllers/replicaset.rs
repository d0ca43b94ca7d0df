//! The ReplicaSet controller: keep `spec.replicas` active pods from the
//! template, deleting the least useful first, and report replica counts.

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Api;
use serde_json::{Value, json};

use super::Snapshot;
use super::pods::{self, Expectations, s};

/// Order for scale-down: unscheduled, pending, not ready, then the newest first.
fn deletion_rank(p: &Value) -> (u8, u8, u8, std::cmp::Reverse<String>) {
    let scheduled = p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let running = pods::phase(p) == "Running";
    (
        u8::from(scheduled),
        u8::from(running),
        u8::from(pods::ready(p)),
        std::cmp::Reverse(s(&p["metadata"]["creationTimestamp"])),
    )
}

pub async fn sync_all(client: &kube::Client, snap: &Snapshot, exp: &mut Expectations) {
    for rs in &snap.replicasets {
        if pods::deleting(rs) || !exp.satisfied(rs, &snap.pods) {
            continue;
        }
        sync(client, rs, &snap.pods, exp).await;
    }
}

async fn sync(client: &kube::Client, rs: &Value, all_pods: &[Value], exp: &mut Expectations) {
    let ns = s(&rs["metadata"]["namespace"]);
    let owned: Vec<&Value> = pods::owned_by(all_pods, rs)
        .into_iter()
        .filter(|p| pods::active(p))
        .collect();
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    if owned.len() < want {
        let owner = pods::owner_ref(rs, "apps/v1", "ReplicaSet");
        for _ in owned.len()..want {
            pods::create_from_template(client, exp, rs, owner.clone(), &rs["spec"]["template"]).await;
        }
    } else if owned.len() > want {
        let mut victims = owned.clone();
        victims.sort_by_key(|p| deletion_rank(p));
        for p in victims.iter().take(owned.len() - want) {
            pods::delete_pod(client, exp, rs, p).await;
        }
    }
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let labels = rs["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let fully_labeled = owned
        .iter()
        .filter(|p| labels.iter().all(|(k, v)| &p["metadata"]["labels"][k] == v))
        .count();
    let mut status = json!({
        "replicas": owned.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": owned.iter().filter(|p| pods::ready(p)).count(),
        "availableReplicas": owned.iter().filter(|p| pods::available(p, min_ready)).count(),
        "observedGeneration": rs["metadata"]["generation"],
    });
    let terminating = pods::owned_by(all_pods, rs)
        .iter()
        .filter(|p| pods::deleting(p))
        .count();
    if terminating > 0 {
        status["terminatingReplicas"] = json!(terminating);
    }
    for k in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
        if status[k] == 0
            && let Some(m) = status.as_object_mut()
        {
            m.remove(k);
        }
    }
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    pods::write_status(&api, rs, status).await;
}
