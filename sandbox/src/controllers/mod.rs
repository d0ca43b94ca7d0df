//! kube-controller-manager's workload controllers, minimal and faithful:
//! Deployment -> ReplicaSets -> Pods and Job -> Pods (with the TTL-after-finished
//! controller). They are API clients of the sandbox: reflectors cache
//! Deployments, ReplicaSets, Jobs and Pods; every change (and a 1 s tick, for
//! time-driven steps such as minReadySeconds, deadlines and back-off) runs one
//! pass over everything, writing only what differs.

mod deployment;
mod job;
mod pods;
mod replicaset;

use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::task::JoinHandle;

/// The running controllers; dropping it stops them.
pub struct ControllersHandle {
    task: JoinHandle<()>,
}

impl Drop for ControllersHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn start(client: kube::Client) -> ControllersHandle {
    ControllersHandle {
        task: tokio::spawn(run(client)),
    }
}

fn reflected<K>(api: Api<K>) -> (Store<K>, BoxStream<'static, bool>)
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff())
        .filter_map(|e| async move {
            match e {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => Some(true),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, "controller watch failed; retrying");
                    None
                }
            }
        })
        .boxed();
    (store, stream)
}

/// Objects of a cache as JSON.
pub fn values<K>(store: &Store<K>) -> Vec<Value>
where
    K: kube::Resource<DynamicType = ()> + serde::Serialize + Clone + 'static,
{
    store
        .state()
        .iter()
        .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
        .collect()
}

/// The caches every controller reads, as JSON snapshots.
pub struct Snapshot {
    pub deployments: Vec<Value>,
    pub replicasets: Vec<Value>,
    pub jobs: Vec<Value>,
    pub pods: Vec<Value>,
}

async fn run(client: kube::Client) {
    let (deployments, d) = reflected(Api::<Deployment>::all(client.clone()));
    let (replicasets, r) = reflected(Api::<ReplicaSet>::all(client.clone()));
    let (jobs, j) = reflected(Api::<Job>::all(client.clone()));
    let (pods, p) = reflected(Api::<Pod>::all(client.clone()));
    let mut triggers: SelectAll<BoxStream<'static, bool>> = futures::stream::select_all([d, r, j, p]);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut exp = pods::Expectations::default();
    loop {
        tokio::select! {
            t = triggers.next() => if t.is_none() { return },
            _ = tick.tick() => {}
        }
        while triggers.next().now_or_never().flatten().is_some() {}
        let snap = Snapshot {
            deployments: values(&deployments),
            replicasets: values(&replicasets),
            jobs: values(&jobs),
            pods: values(&pods),
        };
        replicaset::sync_all(&client, &snap, &mut exp).await;
        deployment::sync_all(&client, &snap).await;
        job::sync_all(&client, &snap, &mut exp).await;
    }
}
