//! A kubelet (and a one-node scheduler) for pods whose images are mapped to
//! local executables: an API client of the sandbox, like the service networking.
//! It registers its Node, binds schedulable pods to it (pods with an unmapped
//! image stay Pending with `PodScheduled=False`, reason Unschedulable), and runs
//! one [`pod::Worker`] per pod on the node. See sandbox/README.md for how
//! containers map onto processes and what differs from a real kubelet.

mod container;
mod env;
pub mod images;
mod pod;
mod probes;
mod process;
mod provisioner;
mod sources;
mod status;
mod volumes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ipalloc::IpAllocator;
pub use images::ImageMapping;

pub const DEFAULT_NODE: &str = "kube-sandbox";

/// Turns on the kubelet (with the Deployment, ReplicaSet and Job controllers).
#[derive(Debug, Clone, Default)]
pub struct KubeletOptions {
    /// Images run as local processes; a pod with any other image stays Pending.
    pub images: Vec<ImageMapping>,
}

/// What every pod worker shares.
pub struct Ctx {
    pub client: kube::Client,
    pub node: String,
    /// The API server's TLS address (KUBERNETES_SERVICE_HOST/PORT in pods).
    pub api: SocketAddr,
    pub root: PathBuf,
    pub images: Vec<ImageMapping>,
    pub pod_ips: IpAllocator,
    pub live: process::Live,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

async fn register_node(ctx: &Ctx) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let ip = ctx.api.ip().to_string();
    let now = crate::meta::now();
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": ctx.node, "labels": {
            "kubernetes.io/hostname": ctx.node, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": std::env::consts::ARCH, "node-role.kubernetes.io/control-plane": ""}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": ctx.node}],
            "capacity": {"cpu": cpus.to_string(), "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpus.to_string(), "memory": "8Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.35.2", "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
                         "containerRuntimeVersion": "kube-sandbox://0.1", "osImage": "kube-sandbox", "kernelVersion": "",
                         "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": "", "kernelVersion ": ""},
        },
    }))
    .map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bind a pending pod to the node, or say why it cannot run here.
async fn schedule(ctx: &Ctx, pod: &Value) {
    let ns = s(&pod["metadata"]["namespace"]);
    let name = s(&pod["metadata"]["name"]);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let unmapped: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| pod["spec"][*l].as_array().cloned().unwrap_or_default())
        .map(|c| s(&c["image"]))
        .filter(|i| images::find(&ctx.images, i).is_none())
        .collect();
    if unmapped.is_empty() {
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                             "target": {"apiVersion": "v1", "kind": "Node", "name": ctx.node}});
        let url = format!("/api/v1/namespaces/{ns}/pods/{name}/binding");
        let req = axum::http::Request::post(url)
            .header("content-type", "application/json")
            .body(binding.to_string().into_bytes());
        if let Ok(req) = req
            && let Err(error) = ctx.client.request::<Value>(req).await
        {
            tracing::debug!(%error, pod = %name, "binding");
        }
        return;
    }
    let already = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "PodScheduled");
    // Only a pod nobody wrote status for: clients that register pods by hand keep theirs.
    if already || pod["status"]["podIP"].is_string() || pod["status"]["conditions"].is_array() {
        return;
    }
    let message = format!(
        "0/1 nodes are available: 1 node(s) cannot run image {:?}: it is not in kube-sandbox's image map.",
        unmapped[0]
    );
    let patch = json!({
        "metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
        "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": message, "lastProbeTime": null, "lastTransitionTime": crate::meta::now()}]},
    });
    if let Err(error) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(%error, pod = %name, "marking unschedulable");
    }
}

/// The running kubelet; dropping it stops the pod workers (their processes are killed).
pub struct KubeletHandle {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    live: process::Live,
}

impl Drop for KubeletHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
        self.live.kill_all();
    }
}

/// Start the kubelet and the PV provisioner against the API server `client` talks to.
pub fn start(client: kube::Client, opts: KubeletOptions, api: SocketAddr, root: PathBuf) -> KubeletHandle {
    let ctx = Arc::new(Ctx {
        client,
        node: DEFAULT_NODE.into(),
        api,
        root,
        images: opts.images,
        pod_ips: IpAllocator::pods(),
        live: process::Live::default(),
    });
    let live = ctx.live.clone();
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            () = token.cancelled() => {}
            () = run(ctx.clone()) => {}
            () = provisioner::run(ctx.client.clone(), ctx.root.join("pvc")) => {}
        }
    });
    KubeletHandle { cancel, task, live }
}

async fn run(ctx: Arc<Ctx>) {
    if let Err(error) = register_node(&ctx).await {
        tracing::error!(%error, "registering the kubelet's Node");
    }
    let mut workers: HashMap<String, watch::Sender<Option<Value>>> = HashMap::new();
    // Pods whose worker has finished: a late event must not start them again.
    let mut done: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut events = watcher(Api::<Pod>::all(ctx.client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let (pods, deleted): (Vec<Pod>, Vec<Pod>) = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (vec![p], vec![]),
            Ok(watcher::Event::Delete(p)) => (vec![], vec![p]),
            Ok(_) => (vec![], vec![]),
            Err(error) => {
                tracing::warn!(%error, "kubelet pod watch failed; retrying");
                continue;
            }
        };
        workers.retain(|uid, tx| {
            let open = !tx.is_closed();
            if !open {
                done.insert(uid.clone());
            }
            open
        });
        for p in deleted {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if let Some(tx) = workers.remove(&uid) {
                let _ = tx.send(None);
            }
        }
        for p in pods {
            let v = serde_json::to_value(&p).unwrap_or_default();
            let uid = s(&v["metadata"]["uid"]);
            let node = s(&v["spec"]["nodeName"]);
            if node.is_empty() {
                let ours = v["spec"]["schedulerName"]
                    .as_str()
                    .is_none_or(|n| n == "default-scheduler");
                if ours && !crate::meta::is_deleting(&v) {
                    schedule(&ctx, &v).await;
                }
                continue;
            }
            if node != ctx.node || done.contains(&uid) {
                continue;
            }
            match workers.get(&uid) {
                Some(tx) => {
                    let _ = tx.send(Some(v));
                }
                None => {
                    let (tx, rx) = watch::channel(Some(v));
                    workers.insert(uid, tx);
                    let worker = pod::Worker {
                        ctx: ctx.clone(),
                        updates: rx,
                    };
                    tokio::spawn(worker.run());
                }
            }
        }
    }
}
