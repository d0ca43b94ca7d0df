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

/// Whether a deleting object may go now.
fn done(key: &Key, obj: &Value) -> bool {
    meta::finalizers(obj).is_empty()
        && (!is_namespace(key) || obj["spec"]["finalizers"].as_array().is_none_or(|a| a.is_empty()))
}

/// Start deleting (or remove at once when nothing holds the object).
pub fn delete(store: &mut Store, ips: &IpAllocator, key: &Key, extra_finalizer: Option<&str>) -> Option<Value> {
    let old = store.objects.get(key)?.clone();
    let mut obj = old.clone();
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

/// One pass; returns whether anything changed.
fn pass(store: &mut Store, ips: &IpAllocator) -> bool {
    let rv_before = store.rv;
    let snapshot: Vec<(Key, Value)> = store.objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let by_uid: HashMap<&str, (&Key, &Value)> = snapshot.iter().map(|(k, v)| (meta::uid(v), (k, v))).collect();

    for (key, obj) in &snapshot {
        if meta::is_deleting(obj) && done(key, obj) {
            remove(store, ips, key);
        }
    }
    // Namespaces and CRDs being deleted: delete their contents, then release them.
    for (key, obj) in snapshot.iter().filter(|(_, o)| meta::is_deleting(o)) {
        let contents: Vec<Key> = if is_namespace(key) {
            snapshot
                .iter()
                .filter(|(k, _)| k.namespace == key.name)
                .map(|(k, _)| k.clone())
                .collect()
        } else if is_crd(key) {
            let group = obj["spec"]["group"].as_str().unwrap_or("");
            let plural = obj["spec"]["names"]["plural"].as_str().unwrap_or("");
            snapshot
                .iter()
                .filter(|(k, _)| k.group == group && k.resource == plural)
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            continue;
        };
        for k in &contents {
            delete(store, ips, k, None);
        }
        if contents.is_empty() {
            if is_namespace(key) {
                update(store, key, |o| o["spec"]["finalizers"] = json!([]));
            } else {
                drop_finalizer(store, key, CRD_CLEANUP_FINALIZER);
            }
        }
    }
    // Owner references.
    let mut has_dependents: HashSet<&str> = HashSet::new();
    for (key, obj) in &snapshot {
        let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        let owners: Vec<&str> = refs.iter().filter_map(|r| r["uid"].as_str()).collect();
        if owners.is_empty() {
            continue;
        }
        let live: Vec<&Value> = owners.iter().filter_map(|u| by_uid.get(u).map(|(_, o)| *o)).collect();
        if live.is_empty() {
            delete(store, ips, key, None);
            continue;
        }
        for owner in &live {
            if !meta::is_deleting(owner) {
                continue;
            }
            let ofs = meta::finalizers(owner);
            if ofs.iter().any(|f| f == ORPHAN) {
                let uid = meta::uid(owner).to_string();
                update(store, key, |o| {
                    if let Some(rs) = o["metadata"]["ownerReferences"].as_array_mut() {
                        rs.retain(|r| r["uid"] != uid.as_str());
                    }
                });
            } else if ofs.iter().any(|f| f == FOREGROUND) {
                has_dependents.insert(meta::uid(owner));
                delete(store, ips, key, Some(FOREGROUND));
            }
        }
    }
    for (key, obj) in snapshot.iter().filter(|(_, o)| meta::is_deleting(o)) {
        let fs = meta::finalizers(obj);
        if fs.iter().any(|f| f == ORPHAN) {
            drop_finalizer(store, key, ORPHAN);
        }
        if fs.iter().any(|f| f == FOREGROUND) && !has_dependents.contains(meta::uid(obj)) {
            drop_finalizer(store, key, FOREGROUND);
        }
    }
    store.rv != rv_before
}

/// Run passes until nothing changes.
pub fn settle(store: &mut Store, ips: &IpAllocator) {
    for _ in 0..64 {
        if !pass(store, ips) {
            return;
        }
    }
    tracing::warn!("lifecycle did not settle after 64 passes");
}
