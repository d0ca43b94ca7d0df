//! The endpoints controller: keeps Endpoints and EndpointSlices of selector Services in
//! step with pods, as kube-controller-manager's endpoint and endpointslice controllers.
//!
//! Reflectors cache Services and Pods; every watch event marks its namespace dirty, the
//! loop drains whatever events are already queued (so a burst costs one pass) and then
//! re-computes every Service of each dirty namespace. Writes happen only where the
//! stored object differs, so the controller's own writes cause no further writes.

use std::collections::BTreeSet;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::endpoints_model::SKIP_MIRROR_LABEL;
use super::endpoints_writer;
use super::retry::RetryDelay;
use super::slices_model::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVICE_NAME_LABEL};

enum Trigger {
    Namespace(String),
    ServiceDeleted {
        namespace: String,
        name: String,
    },
    /// A (re)list finished: anything may have changed, including missed deletions.
    Listed(Kind),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    Pod,
    Slice,
}

#[derive(Default)]
struct Pending {
    namespaces: BTreeSet<String>,
    deleted: BTreeSet<(String, String)>,
    resync: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.deleted.is_empty() && !self.resync
    }
}

/// Run until `cancel` fires.
pub async fn run(client: Client, cancel: CancellationToken) {
    let (services, service_writer) = reflector::store::<Service>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let mut triggers: SelectAll<BoxStream<'static, Trigger>> = futures::stream::select_all([
        reflected(Api::all(client.clone()), service_writer, Kind::Service),
        reflected(Api::all(client.clone()), pod_writer, Kind::Pod),
        slice_triggers(Api::all(client.clone())),
    ]);
    let (mut services_listed, mut pods_listed) = (false, false);
    let mut pending = Pending::default();
    let mut retry = RetryDelay::default();
    loop {
        let trigger = tokio::select! {
            () = cancel.cancelled() => return,
            () = retry.elapsed() => None,
            trigger = triggers.next() => match trigger {
                Some(trigger) => Some(trigger),
                None => return,
            },
        };
        let queued = std::iter::from_fn(|| triggers.next().now_or_never().flatten());
        for trigger in trigger.into_iter().chain(queued) {
            match trigger {
                Trigger::Namespace(ns) => {
                    pending.namespaces.insert(ns);
                }
                Trigger::ServiceDeleted { namespace, name } => {
                    pending.deleted.insert((namespace, name));
                }
                Trigger::Listed(kind) => {
                    services_listed |= kind == Kind::Service;
                    pods_listed |= kind == Kind::Pod;
                    pending.resync = true;
                }
            }
        }
        // Computing endpoints from a half-filled cache would publish wrong endpoints.
        if !(services_listed && pods_listed) || pending.is_empty() {
            continue;
        }
        let work = std::mem::take(&mut pending);
        let failed = tokio::select! {
            () = cancel.cancelled() => return,
            failed = sync(&client, &services, &pods, work) => failed,
        };
        if failed.is_empty() {
            retry.reset();
        } else {
            pending = failed;
            retry.schedule();
        }
    }
}

/// Process `work`; returns the part that failed, to be retried.
async fn sync(client: &Client, services: &Store<Service>, pods: &Store<Pod>, work: Pending) -> Pending {
    let mut failed = Pending::default();
    if work.resync
        && let Err(error) = delete_orphans(client, services).await
    {
        tracing::warn!(%error, "removing endpoints of deleted Services failed; will retry");
        failed.resync = true;
    }
    for (namespace, name) in work.deleted {
        let recreated = services
            .find(|s| s.namespace().as_deref() == Some(namespace.as_str()) && s.name_any() == name)
            .is_some();
        if recreated {
            failed.namespaces.insert(namespace);
        } else if let Err(error) = endpoints_writer::delete_service_objects(client, &namespace, &name).await {
            tracing::warn!(%error, "will retry");
            failed.deleted.insert((namespace, name));
        }
    }
    let all_pods = pods.state();
    for service in services.state() {
        let namespace = service.namespace().unwrap_or_default();
        if !work.resync && !work.namespaces.contains(&namespace) {
            continue;
        }
        let namespace_pods: Vec<&Pod> = all_pods
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
            .collect();
        if let Err(error) = endpoints_writer::sync_service(client, &service, &namespace_pods).await {
            tracing::warn!(%error, "will retry");
            failed.namespaces.insert(namespace);
        }
    }
    failed
}

/// Delete Endpoints and slices this controller wrote for Services that are gone
/// (deleted while no watch was open, e.g. across a sandbox restart).
async fn delete_orphans(client: &Client, services: &Store<Service>) -> Result<(), super::error::SyncEndpointsError> {
    let exists = |namespace: &str, name: &str| {
        services
            .find(|s| s.namespace().as_deref() == Some(namespace) && s.name_any() == name)
            .is_some()
    };
    let list_error = |kind, source| super::error::SyncEndpointsError::Read {
        kind,
        namespace: String::new(),
        name: String::new(),
        source,
    };
    let endpoints = Api::<Endpoints>::all(client.clone())
        .list(&ListParams::default().labels(SKIP_MIRROR_LABEL))
        .await
        .map_err(|source| list_error("Endpoints", source))?;
    let slices = Api::<EndpointSlice>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")))
        .await
        .map_err(|source| list_error("EndpointSlice", source))?;
    let mut orphans = BTreeSet::new();
    for e in &endpoints.items {
        orphans.insert((e.namespace().unwrap_or_default(), e.name_any()));
    }
    for s in &slices.items {
        if let Some(service) = s.labels().get(SERVICE_NAME_LABEL) {
            orphans.insert((s.namespace().unwrap_or_default(), service.clone()));
        }
    }
    for (namespace, name) in orphans.into_iter().filter(|(ns, n)| !exists(ns, n)) {
        endpoints_writer::delete_service_objects(client, &namespace, &name).await?;
    }
    Ok(())
}

/// Watch `api` into `writer`'s store and turn its events into triggers (emitted after
/// the store has applied them).
fn reflected<K>(api: Api<K>, writer: reflector::store::Writer<K>, kind: Kind) -> BoxStream<'static, Trigger>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
{
    reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff())
        .filter_map(move |event| async move {
            match event {
                Ok(watcher::Event::Apply(obj)) => Some(Trigger::Namespace(obj.namespace().unwrap_or_default())),
                Ok(watcher::Event::Delete(obj)) if kind == Kind::Service => Some(Trigger::ServiceDeleted {
                    namespace: obj.namespace().unwrap_or_default(),
                    name: obj.name_any(),
                }),
                Ok(watcher::Event::Delete(obj)) => Some(Trigger::Namespace(obj.namespace().unwrap_or_default())),
                Ok(watcher::Event::InitDone) => Some(Trigger::Listed(kind)),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(error) => {
                    tracing::warn!(%error, "watch failed; retrying with backoff");
                    None
                }
            }
        })
        .boxed()
}

/// Someone deleting a managed slice gets it rewritten.
fn slice_triggers(api: Api<EndpointSlice>) -> BoxStream<'static, Trigger> {
    let config = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Delete(slice)) => Some(Trigger::Namespace(slice.namespace().unwrap_or_default())),
                Ok(watcher::Event::InitDone) => Some(Trigger::Listed(Kind::Slice)),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, "EndpointSlice watch failed; retrying with backoff");
                    None
                }
            }
        })
        .boxed()
}
