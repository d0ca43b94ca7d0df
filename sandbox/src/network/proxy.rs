//! The service proxy (kube-proxy's job): for every Service with a clusterIP, listen on
//! `clusterIP:port` for each TCP port and forward to the Service's ready endpoints,
//! read from EndpointSlices.
//!
//! Reflectors cache Services and EndpointSlices; each event re-syncs the Service it
//! concerns: listeners are (re)opened when the clusterIP or ports change and closed
//! when the Service goes; the ready endpoints of each port are published on a watch
//! channel that accepted connections follow, so a connection to an endpoint that
//! stops being ready is closed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backends::{self, ListenPort};
use super::connection::{self, Backends, PortProxy};
use super::error::BindServicePortError;
use super::retry::RetryDelay;
use super::slices_model::SERVICE_NAME_LABEL;

type ServiceKey = (String, String);

enum Trigger {
    Service(ServiceKey),
    Listed { services: bool },
}

/// Listeners and endpoint channels of one Service.
struct ServiceProxy {
    ports: Vec<ListenPort>,
    /// Stops the listeners and every connection accepted through them.
    cancel: CancellationToken,
    backends: HashMap<String, watch::Sender<Backends>>,
    listeners: Vec<JoinHandle<()>>,
}

impl ServiceProxy {
    async fn start(
        key: &ServiceKey,
        ports: Vec<ListenPort>,
        slices: &Store<EndpointSlice>,
        cancel: CancellationToken,
    ) -> Result<Self, BindServicePortError> {
        let mut proxy = ServiceProxy {
            ports: ports.clone(),
            cancel,
            backends: HashMap::new(),
            listeners: Vec::new(),
        };
        for port in ports {
            let listener = match TcpListener::bind(port.addr).await {
                Ok(listener) => listener,
                Err(source) => {
                    proxy.stop().await;
                    return Err(BindServicePortError {
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        port_name: port.port_name,
                        addr: port.addr,
                        source,
                    });
                }
            };
            // The channel starts with the current endpoints so that no client is
            // refused between bind and the first update.
            let (sender, receiver) = watch::channel(ready_backends(key, &port.port_name, slices));
            proxy.backends.insert(port.port_name.clone(), sender);
            let port_proxy = Arc::new(PortProxy {
                service: format!("{}/{}", key.0, key.1),
                port_name: port.port_name,
                backends: receiver,
                next: AtomicUsize::new(0),
            });
            let accept = connection::accept_loop(listener, port_proxy, proxy.cancel.clone());
            proxy.listeners.push(tokio::spawn(accept));
            tracing::info!(addr = %port.addr, "proxying Service port");
        }
        Ok(proxy)
    }

    fn update_backends(&self, key: &ServiceKey, slices: &Store<EndpointSlice>) {
        for (port_name, sender) in &self.backends {
            let ready = ready_backends(key, port_name, slices);
            sender.send_if_modified(|current| {
                let changed = current[..] != ready[..];
                if changed {
                    tracing::debug!(port = %port_name, endpoints = ?ready, "ready endpoints changed");
                    *current = ready;
                }
                changed
            });
        }
    }

    /// Close the listeners (awaited, so the addresses are free to bind again) and
    /// every connection accepted through them.
    async fn stop(self) {
        self.cancel.cancel();
        for listener in self.listeners {
            if let Err(error) = listener.await {
                tracing::warn!(%error, "listener task failed");
            }
        }
    }
}

/// Run until `cancel` fires; then every listener and connection is closed.
pub async fn run(client: Client, cancel: CancellationToken) {
    let (services, service_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let mut triggers: SelectAll<BoxStream<'static, Trigger>> = futures::stream::select_all([
        reflected(Api::all(client.clone()), service_writer, |s: &Service| {
            Some((s.namespace().unwrap_or_default(), s.name_any()))
        }),
        reflected(Api::all(client.clone()), slice_writer, |s: &EndpointSlice| {
            let service = s.labels().get(SERVICE_NAME_LABEL)?;
            Some((s.namespace().unwrap_or_default(), service.clone()))
        }),
    ]);
    let mut table: HashMap<ServiceKey, ServiceProxy> = HashMap::new();
    let (mut services_listed, mut slices_listed) = (false, false);
    let mut dirty: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut resync = false;
    let mut retry = RetryDelay::default();
    loop {
        let trigger = tokio::select! {
            () = cancel.cancelled() => break,
            () = retry.elapsed() => None,
            trigger = triggers.next() => match trigger {
                Some(trigger) => Some(trigger),
                None => break,
            },
        };
        let queued = std::iter::from_fn(|| triggers.next().now_or_never().flatten());
        for trigger in trigger.into_iter().chain(queued) {
            match trigger {
                Trigger::Service(key) => {
                    dirty.insert(key);
                }
                Trigger::Listed { services } => {
                    services_listed |= services;
                    slices_listed |= !services;
                    resync = true;
                }
            }
        }
        // Before both caches are filled, every connection would be refused or wrongly routed.
        if !(services_listed && slices_listed) {
            continue;
        }
        if std::mem::take(&mut resync) {
            dirty.extend(table.keys().cloned());
            dirty.extend(
                services
                    .state()
                    .iter()
                    .map(|s| (s.namespace().unwrap_or_default(), s.name_any())),
            );
        }
        let mut failed = BTreeSet::new();
        for key in std::mem::take(&mut dirty) {
            if let Err(error) = sync_service(&mut table, &key, &services, &slices, &cancel).await {
                tracing::error!(%error, "cannot proxy Service; will retry");
                failed.insert(key);
            }
        }
        if failed.is_empty() {
            retry.reset();
        } else {
            dirty = failed;
            retry.schedule();
        }
    }
    for (_, proxy) in table.drain() {
        proxy.stop().await;
    }
}

#[tracing::instrument(skip_all, fields(namespace = %key.0, name = %key.1))]
async fn sync_service(
    table: &mut HashMap<ServiceKey, ServiceProxy>,
    key: &ServiceKey,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    cancel: &CancellationToken,
) -> Result<(), BindServicePortError> {
    let service = services.get(&ObjectRef::new(&key.1).within(&key.0));
    let ports = service.as_deref().map(backends::listen_ports).unwrap_or_default();
    if table.get(key).is_some_and(|proxy| proxy.ports != ports)
        && let Some(old) = table.remove(key)
    {
        tracing::info!("Service ports changed or Service gone: closing its listeners");
        old.stop().await;
    }
    if ports.is_empty() {
        return Ok(());
    }
    if !table.contains_key(key) {
        let proxy = ServiceProxy::start(key, ports, slices, cancel.child_token()).await?;
        table.insert(key.clone(), proxy);
    }
    if let Some(proxy) = table.get(key) {
        proxy.update_backends(key, slices);
    }
    Ok(())
}

fn ready_backends(key: &ServiceKey, port_name: &str, slices: &Store<EndpointSlice>) -> Backends {
    let state = slices.state();
    backends::ready_backends(&key.0, &key.1, port_name, state.iter().map(AsRef::as_ref)).into()
}

/// Watch `api` into `writer`'s store; each event names the Service it concerns.
fn reflected<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    service_of: fn(&K) -> Option<ServiceKey>,
) -> BoxStream<'static, Trigger>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
{
    let is_service = K::kind(&()) == "Service";
    reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff())
        .filter_map(move |event| async move {
            match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => service_of(&obj).map(Trigger::Service),
                Ok(watcher::Event::InitDone) => Some(Trigger::Listed { services: is_service }),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(error) => {
                    tracing::warn!(%error, "proxy watch failed; retrying with backoff");
                    None
                }
            }
        })
        .boxed()
}
