//! The in-memory object store: generic JSON objects, one global
//! resourceVersion counter and a bounded history of watch events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::resources::{self, ResourceInfo};

/// How many past events a watch can resume from before it gets 410 Gone.
pub const HISTORY_WINDOW: usize = 10_000;

/// Storage key. All served versions of a resource share storage (no conversion).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(info: &ResourceInfo, namespace: &str, name: &str) -> Self {
        Key {
            group: info.group.clone(),
            resource: info.plural.clone(),
            namespace: if info.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as delivered to watches.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub key: Key,
    pub etype: EventType,
    pub object: Value,
    /// The object before the change (to compute selector enter/leave).
    pub old: Option<Value>,
}

pub struct Store {
    pub objects: BTreeMap<Key, Value>,
    pub rv: u64,
    history: VecDeque<Arc<Event>>,
    /// Watches may resume from any RV >= this; older ones get 410 Gone.
    pub history_start: u64,
    pub tx: broadcast::Sender<Arc<Event>>,
    resources: Vec<ResourceInfo>,
    /// A write since the last lifecycle pass may matter to it (a deletion, an
    /// object with owners, a removal): lets ordinary writes skip the full scan.
    pub lifecycle_pending: bool,
    /// A ClusterRole changed since the last aggregation pass.
    pub aggregation_pending: bool,
}

impl Store {
    pub fn new(objects: BTreeMap<Key, Value>, rv: u64) -> Self {
        let (tx, _) = broadcast::channel(HISTORY_WINDOW);
        let mut s = Store {
            objects,
            rv,
            history: VecDeque::new(),
            history_start: rv,
            tx,
            resources: vec![],
            lifecycle_pending: true,
            aggregation_pending: true,
        };
        s.refresh_resources();
        s
    }

    /// A fresh store with the namespaces every cluster has.
    pub fn bootstrap() -> Self {
        let mut s = Store::new(BTreeMap::new(), 0);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": ns, "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": crate::meta::now(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            let key = Key {
                group: String::new(),
                resource: "namespaces".into(),
                namespace: String::new(),
                name: ns.into(),
            };
            s.put(key, obj, EventType::Added, None);
        }
        crate::auth::bootstrap::ensure(&mut s);
        s.history.clear();
        s.history_start = s.rv;
        s
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, event: Event) {
        let event = Arc::new(event);
        if self.history.len() >= HISTORY_WINDOW
            && let Some(old) = self.history.pop_front()
        {
            self.history_start = old.rv;
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// Store `obj` under `key` with a new resourceVersion; returns the stored object.
    pub fn put(&mut self, key: Key, mut obj: Value, etype: EventType, old: Option<Value>) -> Value {
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if crate::meta::is_deleting(&obj) || obj["metadata"]["ownerReferences"].is_array() {
            self.lifecycle_pending = true;
        }
        self.objects.insert(key.clone(), obj.clone());
        if key.resource == "customresourcedefinitions" && key.group == "apiextensions.k8s.io" {
            self.refresh_resources();
        }
        self.aggregation_pending |= key.resource == "clusterroles";
        self.record(Event {
            rv,
            key,
            etype,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Remove the object; the DELETED event carries a new resourceVersion.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.lifecycle_pending = true;
        self.aggregation_pending |= key.resource == "clusterroles";
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if key.resource == "customresourcedefinitions" && key.group == "apiextensions.k8s.io" {
            self.refresh_resources();
        }
        self.record(Event {
            rv,
            key: key.clone(),
            etype: EventType::Deleted,
            object: obj.clone(),
            old: None,
        });
        Some(obj)
    }

    /// Events after `rv`, or None when `rv` is older than the retained window.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        if rv < self.history_start {
            return None;
        }
        Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Forget all history, like an etcd compaction past the current revision:
    /// every watch resuming from a resourceVersion issued so far gets 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.history_start = self.rv + 1;
    }

    fn refresh_resources(&mut self) {
        let mut all = resources::builtins();
        for (k, crd) in &self.objects {
            if k.resource == "customresourcedefinitions"
                && k.group == "apiextensions.k8s.io"
                && crate::meta::is_established(crd)
            {
                all.extend(resources::from_crd(crd));
            }
        }
        self.resources = all;
    }

    pub fn resources(&self) -> &[ResourceInfo] {
        &self.resources
    }

    pub fn find_resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// Objects of one resource, optionally in one namespace, in key order.
    pub fn list<'a>(
        &'a self,
        info: &ResourceInfo,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let group = info.group.clone();
        let plural = info.plural.clone();
        self.objects.iter().filter(move |(k, _)| {
            k.group == group && k.resource == plural && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }
}
