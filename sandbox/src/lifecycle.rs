//! What kube-controller-manager's garbage collector, namespace controller and
//! the CRD finalizer do, run synchronously after every write until nothing
//! changes: remove objects whose finalizers are done, empty terminating
//! namespaces and CRDs, delete dependents of deleted owners (background),
//! honour foregroundDeletion and orphan.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::ipalloc::IpAllocator;
use crate::kinds::CRD_CLEANUP_FINALIZER;
use crate::meta;
use crate::store::{EventType, Key, Store};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

fn is_namespace(k: &Key) -> bool {
    k.group.is_empty() && k.resource == "namespaces"
}

fn is_crd(k: &Key) -> bool {
    k.group == "apiextensions.k8s.io" && k.resource == "customresourcedefinitions"
}

/// Remove an object for good, releasing what it held (a Service's clusterIP).
pub fn remove(store: &mut Store, ips: &IpAllocator, key: &Key) -> Option<Value> {
    let obj = store.remove(key)?;
    if key.group.is_empty()
        && key.resource == "services"
        && let Some(ip) = obj["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok())
    {
        ips.release(ip);
    }
    Some(obj)
}

/// Whether a deleting object may go now (a pod on a node waits for its kubelet).
fn done(key: &Key, obj: &Value) -> bool {
    let graceful_pod = is_pod(key) && obj["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) > 0;
    !graceful_pod
        && meta::finalizers(obj).is_empty()
        && (!is_namespace(key) || obj["spec"]["finalizers"].as_array().is_none_or(|a| a.is_empty()))
}

fn is_pod(k: &Key) -> bool {
    k.group.is_empty() && k.resource == "pods"
}

/// The grace period a pod deletion gets, as kube-apiserver's pod strategy decides:
/// none for pods that never reached a node or are finished, else the request's or
/// the pod's `terminationGracePeriodSeconds`; an earlier, shorter one stays.
fn pod_grace(obj: &Value, requested: Option<i64>) -> i64 {
    let bound = obj["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let terminal = matches!(obj["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    if !bound || terminal {
        return 0;
    }
    let grace = requested
        .or(obj["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0);
    match obj["metadata"]["deletionGracePeriodSeconds"].as_i64() {
        Some(current) if meta::is_deleting(obj) => grace.min(current),
        _ => grace,
    }
}

/// Start deleting (or remove at once when nothing holds the object).
pub fn delete(store: &mut Store, ips: &IpAllocator, key: &Key, extra_finalizer: Option<&str>) -> Option<Value> {
    delete_with_grace(store, ips, key, extra_finalizer, None)
}

/// `delete` with DeleteOptions.gracePeriodSeconds (pods on a node terminate gracefully).
pub fn delete_with_grace(
    store: &mut Store,
    ips: &IpAllocator,
    key: &Key,
    extra_finalizer: Option<&str>,
    grace: Option<i64>,
) -> Option<Value> {
    let old = store.objects.get(key)?.clone();
    let mut obj = old.clone();
    if is_pod(key) {
        let g = pod_grace(&obj, grace);
        if g > 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(g);
            if !meta::is_deleting(&obj) || obj["metadata"]["deletionGracePeriodSeconds"].as_i64() != Some(g) {
                obj["metadata"]["deletionTimestamp"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
        }
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(g);
    }
    if let Some(f) = extra_finalizer {
        let mut fs = meta::finalizers(&obj);
        if !fs.iter().any(|x| x == f) {
            fs.push(f.into());
        }
        meta::set_finalizers(&mut obj, &fs);
    }
    if done(key, &obj) && !is_namespace(key) {
        return remove(store, ips, key);
    }
    if meta::is_deleting(&old) && obj == old {
        return Some(old);
    }
    if !meta::is_deleting(&obj) {
        obj["metadata"]["deletionTimestamp"] = json!(meta::now());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    }
    if is_namespace(key) {
        obj["status"]["phase"] = json!("Terminating");
    }
    if is_crd(key)
        && let Some(cs) = obj["status"]["conditions"].as_array_mut()
    {
        cs.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": meta::now()}));
    }
    Some(store.put(key.clone(), obj, EventType::Modified, Some(old)))
}

fn update(store: &mut Store, key: &Key, f: impl FnOnce(&mut Value)) {
    let Some(old) = store.objects.get(key).cloned() else {
        return;
    };
    let mut obj = old.clone();
    f(&mut obj);
    if obj != old {
        store.put(key.clone(), obj, EventType::Modified, Some(old));
    }
}

fn drop_finalizer(store: &mut Store, key: &Key, name: &str) {
    update(store, key, |o| {
        let fs: Vec<String> = meta::finalizers(o).into_iter().filter(|f| f != name).collect();
        meta::set_finalizers(o, &fs);
    });
}

/// What an owner's state means for its dependents.
struct OwnerState {
    deleting: bool,
    orphan: bool,
    foreground: bool,
}

/// Deleting namespaces and CRDs: delete their contents, then release them.
fn empty_containers(store: &mut Store, ips: &IpAllocator) {
    let containers: Vec<(Key, Option<(String, String)>)> = store
        .objects
        .iter()
        .filter(|(k, o)| meta::is_deleting(o) && (is_namespace(k) || is_crd(k)))
        .map(|(k, o)| {
            let crd = is_crd(k).then(|| {
                let group = o["spec"]["group"].as_str().unwrap_or("").to_string();
                (group, o["spec"]["names"]["plural"].as_str().unwrap_or("").to_string())
            });
            (k.clone(), crd)
        })
        .collect();
    for (key, crd) in containers {
        let contents: Vec<Key> = store
            .objects
            .keys()
            .filter(|k| match &crd {
                None => k.namespace == key.name,
                Some((group, plural)) => &k.group == group && &k.resource == plural,
            })
            .cloned()
            .collect();
        for k in &contents {
            delete(store, ips, k, None);
        }
        if contents.is_empty() {
            if crd.is_none() {
                update(store, &key, |o| o["spec"]["finalizers"] = json!([]));
            } else {
                drop_finalizer(store, &key, CRD_CLEANUP_FINALIZER);
            }
        }
    }
}

/// Owner references: background collection, orphaning, foreground deletion.
fn collect_garbage(store: &mut Store, ips: &IpAllocator) {
    let dependents: Vec<(Key, Vec<String>)> = store
        .objects
        .iter()
        .filter_map(|(k, o)| {
            let refs = o["metadata"]["ownerReferences"].as_array()?;
            let uids: Vec<String> = refs
                .iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect();
            (!uids.is_empty()).then(|| (k.clone(), uids))
        })
        .collect();
    let wanted: HashSet<&str> = dependents
        .iter()
        .flat_map(|(_, u)| u.iter().map(String::as_str))
        .collect();
    let owners: HashMap<String, OwnerState> = store
        .objects
        .values()
        .filter(|o| wanted.contains(meta::uid(o)))
        .map(|o| {
            let fs = meta::finalizers(o);
            let state = OwnerState {
                deleting: meta::is_deleting(o),
                orphan: fs.iter().any(|f| f == ORPHAN),
                foreground: fs.iter().any(|f| f == FOREGROUND),
            };
            (meta::uid(o).to_string(), state)
        })
        .collect();
    let mut waiting_owners: HashSet<String> = HashSet::new();
    for (key, uids) in &dependents {
        let live: Vec<(&String, &OwnerState)> = uids.iter().filter_map(|u| owners.get(u).map(|s| (u, s))).collect();
        if live.is_empty() {
            delete(store, ips, key, None);
            continue;
        }
        for (uid, owner) in live.into_iter().filter(|(_, s)| s.deleting) {
            if owner.orphan {
                update(store, key, |o| {
                    if let Some(rs) = o["metadata"]["ownerReferences"].as_array_mut() {
                        rs.retain(|r| r["uid"] != uid.as_str());
                    }
                });
            } else if owner.foreground {
                waiting_owners.insert(uid.clone());
                delete(store, ips, key, Some(FOREGROUND));
            }
        }
    }
    let release: Vec<(Key, &'static str)> = store
        .objects
        .iter()
        .filter(|(_, o)| meta::is_deleting(o))
        .flat_map(|(k, o)| {
            let fs = meta::finalizers(o);
            let mut out = vec![];
            if fs.iter().any(|f| f == ORPHAN) {
                out.push((k.clone(), ORPHAN));
            }
            if fs.iter().any(|f| f == FOREGROUND) && !waiting_owners.contains(meta::uid(o)) {
                out.push((k.clone(), FOREGROUND));
            }
            out
        })
        .collect();
    for (key, finalizer) in release {
        drop_finalizer(store, &key, finalizer);
    }
}

/// One pass; returns whether anything changed.
fn pass(store: &mut Store, ips: &IpAllocator) -> bool {
    let rv_before = store.rv;
    let finished: Vec<Key> = store
        .objects
        .iter()
        .filter(|(k, o)| meta::is_deleting(o) && done(k, o))
        .map(|(k, _)| k.clone())
        .collect();
    for key in &finished {
        remove(store, ips, key);
    }
    empty_containers(store, ips);
    collect_garbage(store, ips);
    store.rv != rv_before
}

/// Run passes until nothing changes.
pub fn settle(store: &mut Store, ips: &IpAllocator) {
    if store.aggregation_pending {
        crate::auth::bootstrap::aggregate(store);
        store.aggregation_pending = false;
    }
    if !store.lifecycle_pending {
        return;
    }
    for _ in 0..64 {
        if !pass(store, ips) {
            store.lifecycle_pending = false;
            return;
        }
    }
    tracing::warn!("lifecycle did not settle after 64 passes");
}
