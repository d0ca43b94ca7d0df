//! The Deployment controller: a ReplicaSet per pod template (named with the
//! template hash, labelled `pod-template-hash`), rolled out by the RollingUpdate
//! (maxSurge/maxUnavailable) or Recreate strategy, old ReplicaSets kept up to
//! revisionHistoryLimit, and the status `kubectl rollout status` and
//! `helm install --wait` read (counts, Available and Progressing conditions).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::Snapshot;
use super::pods::{self, s, set_condition};

const HASH: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// FNV-32a of the template, encoded like kube's `rand.SafeEncodeString`.
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove(HASH);
    }
    t
}

/// An int-or-percent of `total` (percentages round up for surge, down for unavailable).
fn scaled(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::String(p) if p.ends_with('%') => {
            let pct: i64 = p.trim_end_matches('%').parse().unwrap_or(0);
            let x = total * pct;
            if round_up { (x + 99) / 100 } else { x / 100 }
        }
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn st(rs: &Value, k: &str) -> i64 {
    rs["status"][k].as_i64().unwrap_or(0)
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

async fn scale(client: &kube::Client, rs: &Value, to: i64, d: &Value) {
    if replicas(rs) == to {
        return;
    }
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &s(&rs["metadata"]["namespace"]));
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let patch = json!({"metadata": {"annotations": {"deployment.kubernetes.io/desired-replicas": want.to_string()}},
                       "spec": {"replicas": to}});
    if let Err(error) = api
        .patch(
            &s(&rs["metadata"]["name"]),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(%error, "scaling a replicaset");
    }
}

pub async fn sync_all(client: &kube::Client, snap: &Snapshot) {
    for d in &snap.deployments {
        if !pods::deleting(d) {
            sync(client, d, snap).await;
        }
    }
}

async fn sync(client: &kube::Client, d: &Value, snap: &Snapshot) {
    let ns = s(&d["metadata"]["namespace"]);
    let name = s(&d["metadata"]["name"]);
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let template = &d["spec"]["template"];
    let mut owned: Vec<&Value> = pods::owned_by(&snap.replicasets, d);
    owned.sort_by_key(|rs| revision(rs));
    let new = owned
        .iter()
        .copied()
        .find(|rs| without_hash(&rs["spec"]["template"]) == *template);
    let olds: Vec<&Value> = owned.iter().copied().filter(|rs| Some(*rs) != new).collect();
    let max_revision = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0);
    let strategy = &d["spec"]["strategy"];
    let recreate = strategy["type"] == "Recreate";
    let surge = if recreate {
        0
    } else {
        scaled(&strategy["rollingUpdate"]["maxSurge"], want, true)
    };
    let mut unavailable = if recreate {
        want
    } else {
        scaled(&strategy["rollingUpdate"]["maxUnavailable"], want, false)
    };
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let paused = d["spec"]["paused"] == true;
    let Some(new) = new else {
        if paused {
            return;
        }
        let hash = template_hash(template);
        let mut t = template.clone();
        t["metadata"]["labels"][HASH] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"][HASH] = json!(hash);
        let old_total: i64 = olds.iter().map(|rs| replicas(rs)).sum();
        let initial = if recreate || !olds.is_empty() {
            (want + surge - old_total).clamp(0, want)
        } else {
            want
        };
        let initial = if recreate && old_total > 0 { 0 } else { initial };
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{name}-{hash}"), "namespace": ns, "labels": t["metadata"]["labels"],
                         "annotations": {REVISION: (max_revision + 1).to_string(),
                                         "deployment.kubernetes.io/desired-replicas": want.to_string(),
                                         "deployment.kubernetes.io/max-replicas": (want + surge).to_string()},
                         "ownerReferences": [pods::owner_ref(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": initial, "minReadySeconds": d["spec"]["minReadySeconds"], "selector": selector, "template": t},
        });
        match serde_json::from_value::<ReplicaSet>(rs) {
            Ok(rs) => {
                let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
                if let Err(error) = api.create(&PostParams::default(), &rs).await {
                    tracing::debug!(%error, deployment = %name, "creating a replicaset");
                }
            }
            Err(error) => tracing::warn!(%error, "replicaset does not parse"),
        }
        let dapi: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {REVISION: (max_revision + 1).to_string()}}});
        if let Err(error) = dapi.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::debug!(%error, "annotating the deployment revision");
        }
        return;
    };
    if !paused {
        roll(client, d, new, &olds, want, surge, unavailable, recreate, snap).await;
    }
    // Old ReplicaSets beyond revisionHistoryLimit go once they are empty.
    let limit = d["spec"]["revisionHistoryLimit"].as_u64().unwrap_or(10) as usize;
    let empty: Vec<&&Value> = olds
        .iter()
        .filter(|rs| replicas(rs) == 0 && st(rs, "replicas") == 0)
        .collect();
    for rs in empty.iter().take(empty.len().saturating_sub(limit)) {
        let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
        if let Err(error) = api.delete(&s(&rs["metadata"]["name"]), &DeleteParams::default()).await {
            tracing::debug!(%error, "deleting an old replicaset");
        }
    }
    let all: Vec<&Value> = owned.clone();
    let sum = |k: &str| all.iter().map(|rs| st(rs, k)).sum::<i64>();
    let (total, available) = (sum("replicas"), sum("availableReplicas"));
    let updated = st(new, "replicas");
    let mut conditions: Vec<Value> = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    if available >= want - unavailable {
        set_condition(
            &mut conditions,
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            true,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            true,
        );
    }
    let rs_name = s(&new["metadata"]["name"]);
    let complete = updated == want && total == want && st(new, "availableReplicas") == want && replicas(new) == want;
    if complete {
        let msg = format!("ReplicaSet {rs_name:?} has successfully progressed.");
        set_condition(
            &mut conditions,
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            &msg,
            true,
        );
    } else {
        let msg = format!("ReplicaSet {rs_name:?} is progressing.");
        set_condition(&mut conditions, "Progressing", true, "ReplicaSetUpdated", &msg, true);
    }
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "replicas": total, "updatedReplicas": updated,
        "readyReplicas": sum("readyReplicas"), "availableReplicas": available,
        "conditions": conditions,
    });
    if total - available > 0 {
        status["unavailableReplicas"] = json!(total - available);
    }
    for k in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
        if status[k] == 0
            && let Some(m) = status.as_object_mut()
        {
            m.remove(k);
        }
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    pods::write_status(&api, d, status).await;
}

/// One step of the rollout: scale the new ReplicaSet up and old ones down within
/// maxSurge/maxUnavailable (Recreate: old ones to zero, their pods gone, then up).
#[allow(clippy::too_many_arguments)]
async fn roll(
    client: &kube::Client,
    d: &Value,
    new: &Value,
    olds: &[&Value],
    want: i64,
    surge: i64,
    unavailable: i64,
    recreate: bool,
    snap: &Snapshot,
) {
    if recreate {
        for rs in olds {
            scale(client, rs, 0, d).await;
        }
        let old_pods = olds.iter().flat_map(|rs| pods::owned_by(&snap.pods, rs)).count();
        if old_pods == 0 {
            scale(client, new, want, d).await;
        }
        return;
    }
    let old_total: i64 = olds.iter().map(|rs| replicas(rs)).sum();
    let new_target = (want + surge - old_total).clamp(replicas(new).min(want), want);
    scale(client, new, new_target, d).await;
    // Scale down old ones as far as availability allows; unavailable old pods go first.
    let min_available = want - unavailable;
    let available: i64 = olds.iter().map(|rs| st(rs, "availableReplicas")).sum::<i64>() + st(new, "availableReplicas");
    let mut budget = (available - min_available).max(0);
    for rs in olds {
        let current = replicas(rs);
        let unhealthy = (current - st(rs, "availableReplicas")).max(0);
        let cut = (unhealthy + budget).min(current);
        budget -= (cut - unhealthy).max(0);
        if cut > 0 {
            scale(client, rs, current - cut, d).await;
        }
    }
}
