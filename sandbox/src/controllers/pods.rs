//! Pod facts and writes shared by the controllers.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

pub fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// Objects whose controller ownerReference is `owner`.
pub fn owned_by<'a>(items: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let id = uid(owner);
    items
        .iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["controller"] == true && r["uid"] == id)
        })
        .collect()
}

pub fn deleting(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
}

pub fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("Pending")
}

/// Neither finished nor being deleted.
pub fn active(p: &Value) -> bool {
    !deleting(p) && !matches!(phase(p), "Succeeded" | "Failed")
}

/// Ready=True since when.
pub fn ready_since(p: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .map(|c| {
            c["lastTransitionTime"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(chrono::Utc::now)
        })
}

pub fn ready(p: &Value) -> bool {
    ready_since(p).is_some()
}

/// Ready for at least `min_ready` seconds.
pub fn available(p: &Value, min_ready: i64) -> bool {
    ready_since(p).is_some_and(|t| chrono::Utc::now() - t >= chrono::Duration::seconds(min_ready))
}

pub fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
           "controller": true, "blockOwnerDeletion": true})
}

/// kube-controller-manager's "expectations": pods an owner created or deleted that
/// the cache has not shown yet. An owner is not synced again until they show
/// (or a while has passed), else a pass on a stale cache would create twice.
#[derive(Default)]
pub struct Expectations(std::collections::HashMap<String, (Vec<String>, std::time::Instant)>);

impl Expectations {
    /// Whether `owner`'s earlier writes are all visible in `pods`.
    pub fn satisfied(&mut self, owner: &Value, pods: &[Value]) -> bool {
        let id = uid(owner).to_string();
        let Some((names, at)) = self.0.get(&id) else {
            return true;
        };
        let seen = |n: &String| {
            let (op, name) = n.split_at(1);
            let found = pods.iter().find(|p| p["metadata"]["name"] == name);
            if op == "+" {
                found.is_some()
            } else {
                found.is_none_or(deleting)
            }
        };
        if names.iter().all(seen) || at.elapsed() > std::time::Duration::from_secs(10) {
            self.0.remove(&id);
            return true;
        }
        false
    }

    fn expect(&mut self, owner: &Value, what: String) {
        let entry = self
            .0
            .entry(uid(owner).to_string())
            .or_insert_with(|| (vec![], std::time::Instant::now()));
        entry.0.push(what);
    }
}

/// Create a pod from a template, owned by `owner`.
pub async fn create_from_template(
    client: &kube::Client,
    exp: &mut Expectations,
    owner: &Value,
    owner_ref: Value,
    template: &Value,
) {
    let ns = s(&owner["metadata"]["namespace"]);
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["generateName"] = json!(format!("{}-", s(&owner["metadata"]["name"])));
    meta["ownerReferences"] = json!([owner_ref]);
    if let Some(m) = meta.as_object_mut() {
        m.remove("name");
        m.remove("creationTimestamp");
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]});
    let pod: Pod = match serde_json::from_value(pod) {
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(%error, "pod template does not parse");
            return;
        }
    };
    match Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
    {
        Ok(created) => exp.expect(owner, format!("+{}", created.metadata.name.unwrap_or_default())),
        Err(error) => tracing::warn!(%error, owner = %s(&owner["metadata"]["name"]), "creating a pod"),
    }
}

pub async fn delete_pod(client: &kube::Client, exp: &mut Expectations, owner: &Value, p: &Value) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &s(&p["metadata"]["namespace"]));
    match api.delete(&s(&p["metadata"]["name"]), &DeleteParams::default()).await {
        Ok(_) => exp.expect(owner, format!("-{}", s(&p["metadata"]["name"]))),
        Err(error) => tracing::debug!(%error, "deleting a pod"),
    }
}

/// Merge-patch the status of an object when it differs.
pub async fn write_status<K>(api: &Api<K>, obj: &Value, status: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if obj["status"] == status {
        return;
    }
    // Fields that went away must be nulled in a merge patch.
    let mut patch = status.clone();
    for (k, _) in obj["status"].as_object().into_iter().flatten() {
        if patch.get(k).is_none() {
            patch[k] = Value::Null;
        }
    }
    let name = s(&obj["metadata"]["name"]);
    if let Err(error) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": patch})))
        .await
    {
        tracing::debug!(%error, %name, "writing status");
    }
}

/// Condition list with `ctype` set, keeping lastTransitionTime while the status stays.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    ctype: &str,
    status: bool,
    reason: &str,
    message: &str,
    update_time: bool,
) {
    let st = if status { "True" } else { "False" };
    let now = crate::meta::now();
    match conditions.iter_mut().find(|c| c["type"] == ctype) {
        Some(c) => {
            if c["status"] != st {
                c["lastTransitionTime"] = json!(now);
            }
            if c["status"] != st || c["reason"] != reason {
                c["lastUpdateTime"] = json!(now);
            }
            c["status"] = json!(st);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            if !update_time && let Some(m) = c.as_object_mut() {
                m.remove("lastUpdateTime");
            }
        }
        None => {
            let mut c =
                json!({"type": ctype, "status": st, "reason": reason, "message": message, "lastTransitionTime": now});
            if update_time {
                c["lastUpdateTime"] = json!(now);
            }
            conditions.push(c);
        }
    }
}
