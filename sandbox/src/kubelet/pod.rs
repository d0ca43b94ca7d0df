//! The pod worker: one task per pod on this node. It sets the pod up (IP,
//! volumes), runs init containers in order and then the containers, writes the
//! pod's status after every change, and on deletion stops the containers
//! within the grace period and removes the pod object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::container::{Container, Report};
use super::process::{Mount, Spawn, prepare_target};
use super::sources::Sources;
use super::status::{self, PodState};
use super::volumes::{self, Tokens};
use super::{Ctx, env, images};

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn containers(pod: &Value, list: &str) -> Vec<Value> {
    pod["spec"][list].as_array().cloned().unwrap_or_default()
}

/// Service links of the namespace plus the `kubernetes` Service (the TLS endpoint).
async fn service_links(ctx: &Ctx, pod: &Value) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if pod["spec"]["enableServiceLinks"] != false {
        let ns = s(&pod["metadata"]["namespace"]);
        if let Ok(list) = Api::<Service>::namespaced(ctx.client.clone(), &ns)
            .list(&ListParams::default())
            .await
        {
            for svc in list.items {
                let v = serde_json::to_value(&svc).unwrap_or_default();
                let ip = s(&v["spec"]["clusterIP"]);
                if ip.is_empty() || ip == "None" {
                    continue;
                }
                let ports = v["spec"]["ports"].as_array().cloned().unwrap_or_default();
                env::service_link(&mut vars, &s(&v["metadata"]["name"]), &ip, &ports);
            }
        }
    }
    let api = [json!({"name": "https", "port": ctx.api.port(), "protocol": "TCP"})];
    env::service_link(&mut vars, "kubernetes", &ctx.api.ip().to_string(), &api);
    vars
}

/// argv, environment, mounts and user of one container.
async fn build_spawn(
    ctx: &Ctx,
    src: &mut Sources<'_>,
    c: &Value,
    vols: &BTreeMap<String, PathBuf>,
    links: &BTreeMap<String, String>,
) -> Result<Spawn, String> {
    let image = s(&c["image"]);
    let mapping = images::find(&ctx.images, &image)
        .ok_or_else(|| format!("image {image:?} is not in kube-sandbox's image map"))?
        .clone();
    let vars = env::build(src, c, &mapping, links).await?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| env::expand(x.as_str().unwrap_or(""), &vars))
            .collect()
    };
    let path = vars.get("PATH").cloned().unwrap_or_default();
    let argv = images::argv(&mapping, &strings(&c["command"]), &strings(&c["args"]), &path)?;
    let mut mounts = vec![];
    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let name = s(&m["name"]);
        let base = vols.get(&name).ok_or_else(|| format!("volume {name:?} not found"))?;
        let sub = s(&m["subPath"]);
        let source = if sub.is_empty() { base.clone() } else { base.join(&sub) };
        if !source.exists() {
            std::fs::create_dir_all(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        }
        let mount = Mount {
            source,
            target: PathBuf::from(s(&m["mountPath"])),
            read_only: m["readOnly"] == true,
        };
        prepare_target(&mount).map_err(|e| format!("mount point {}: {e}", mount.target.display()))?;
        mounts.push(mount);
    }
    let pod_sc = &src.pod["spec"]["securityContext"];
    let sc = &c["securityContext"];
    let id = |k: &str| {
        sc[k]
            .as_u64()
            .or(pod_sc[k].as_u64())
            .and_then(|v| u32::try_from(v).ok())
    };
    let mut groups: Vec<u32> = pod_sc["supplementalGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_u64().and_then(|g| u32::try_from(g).ok()))
        .collect();
    groups.extend(pod_sc["fsGroup"].as_u64().and_then(|g| u32::try_from(g).ok()));
    let (uid, gid) = (id("runAsUser"), id("runAsGroup"));
    Ok(Spawn {
        argv,
        env: vars.into_iter().collect(),
        // A container starts in its WORKDIR; mapped images have none: "/".
        cwd: Some(PathBuf::from(
            c["workingDir"].as_str().filter(|d| !d.is_empty()).unwrap_or("/"),
        )),
        mounts,
        uid,
        gid: gid.or(uid.map(|_| 0)),
        groups,
        join_mount_ns: None,
    })
}

pub struct Worker {
    pub ctx: Arc<Ctx>,
    pub updates: watch::Receiver<Option<Value>>,
}

impl Worker {
    async fn write_status(&self, pod: &Value, status: Value) -> bool {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &s(&pod["metadata"]["namespace"]));
        let patch = json!({"status": status});
        match api
            .patch_status(
                &s(&pod["metadata"]["name"]),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(error) => {
                tracing::warn!(%error, pod = %s(&pod["metadata"]["name"]), "writing pod status");
                true
            }
        }
    }

    pub async fn run(mut self) {
        let Some(mut pod) = self.updates.borrow().clone() else {
            return;
        };
        let ctx = self.ctx.clone();
        let (ns, name, uid) = (
            s(&pod["metadata"]["namespace"]),
            s(&pod["metadata"]["name"]),
            s(&pod["metadata"]["uid"]),
        );
        let pod_dir = ctx.root.join("pods").join(&uid);
        let log_root = ctx.root.join("logs").join(format!("{ns}_{name}_{uid}"));
        let ip = match ctx.pod_ips.allocate() {
            Ok(ip) => ip.to_string(),
            Err(why) => {
                tracing::error!(%why, pod = %name, "no pod IP");
                return;
            }
        };
        let host_ip = ctx.api.ip().to_string();
        let start_time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let init_specs = containers(&pod, "initContainers");
        let main_specs = containers(&pod, "containers");
        let mut init: Vec<Value> = init_specs
            .iter()
            .map(|c| status::waiting(c, "PodInitializing", None))
            .collect();
        let mut main: Vec<Value> = main_specs
            .iter()
            .map(|c| {
                status::waiting(
                    c,
                    if init_specs.is_empty() {
                        "ContainerCreating"
                    } else {
                        "PodInitializing"
                    },
                    None,
                )
            })
            .collect();
        let fs_group = pod["spec"]["securityContext"]["fsGroup"]
            .as_u64()
            .and_then(|g| u32::try_from(g).ok());
        let mut tokens = Tokens::default();
        let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
        let stop = CancellationToken::new();
        let mut message: Option<String> = None;
        let (mut sandbox_ready, mut init_done, mut init_failed) = (false, init_specs.is_empty(), false);
        let (mut next_init, mut running, mut finished) = (0usize, 0usize, 0usize);
        let mut main_started = false;
        let grace_secs = Arc::new(AtomicU64::new(30));
        let mut vols = BTreeMap::new();
        let mut refresh = tokio::time::interval(Duration::from_secs(2));
        let grace = |p: &Value| {
            let g = p["metadata"]["deletionGracePeriodSeconds"]
                .as_u64()
                .or(p["spec"]["terminationGracePeriodSeconds"].as_u64())
                .unwrap_or(30);
            Duration::from_secs(g)
        };
        let mut deleting = crate::meta::is_deleting(&pod);
        loop {
            let st = PodState {
                pod: &pod,
                pod_ip: &ip,
                host_ip: &host_ip,
                start_time: &start_time,
                sandbox_ready,
                init_done,
                init_failed,
                init: &init,
                main: &main,
                waiting_message: message.as_deref(),
            };
            let terminal = matches!(status::phase(&st), "Succeeded" | "Failed");
            let status = status::pod_status(&st);
            if !deleting && pod["status"] != status && !self.write_status(&pod, status.clone()).await {
                break;
            }
            pod["status"] = status;
            if deleting && finished >= running {
                break;
            }
            tokio::select! {
                changed = self.updates.changed() => {
                    let next = if changed.is_ok() { self.updates.borrow().clone() } else { None };
                    match next {
                        Some(p) => {
                            let st = pod["status"].clone();
                            pod = p;
                            pod["status"] = st;
                        }
                        None => {
                            // Removed without us (forced): stop at once.
                            grace_secs.store(2, Ordering::Relaxed);
                            stop.cancel();
                            deleting = true;
                        }
                    }
                    if crate::meta::is_deleting(&pod) && !deleting {
                        deleting = true;
                        grace_secs.store(grace(&pod).as_secs(), Ordering::Relaxed);
                        stop.cancel();
                    }
                }
                Some(report) = rx.recv() => {
                    let is_init = init_specs.iter().any(|c| c["name"] == report.name.as_str()) && !init_done;
                    let list = if is_init { &mut init } else { &mut main };
                    if let Some(slot) = list.iter_mut().find(|c| c["name"] == report.name.as_str()) {
                        *slot = report.status.clone();
                    }
                    if report.finished {
                        finished += 1;
                        if is_init {
                            if report.status["state"]["terminated"]["exitCode"] == 0 {
                                init_done = next_init >= init_specs.len();
                            } else {
                                init_failed = true;
                            }
                        }
                    }
                }
                _ = refresh.tick(), if !deleting && !terminal => {}
            }
            if deleting || terminal || init_failed {
                continue;
            }
            // Set up (or refresh) volumes, then start what is due.
            let mut src = Sources::new(&ctx.client, &pod, &ip, &host_ip);
            match volumes::materialize(&mut src, &pod_dir, &mut tokens, fs_group).await {
                Ok(v) => {
                    vols = v;
                    sandbox_ready = true;
                    message = None;
                }
                Err(why) if !sandbox_ready => {
                    message = Some(why);
                    continue;
                }
                Err(why) => tracing::warn!(%why, pod = %name, "refreshing volumes"),
            }
            // Init containers one at a time, each after the previous one succeeded; then all.
            let to_start: Vec<Value> = if next_init < init_specs.len() && finished == next_init {
                next_init += 1;
                vec![init_specs[next_init - 1].clone()]
            } else if init_done && !main_started {
                main_started = true;
                main_specs.clone()
            } else {
                vec![]
            };
            let links = if to_start.is_empty() {
                BTreeMap::new()
            } else {
                service_links(&ctx, &pod).await
            };
            for c in to_start {
                let spawn = build_spawn(&ctx, &mut src, &c, &vols, &links).await;
                let cname = s(&c["name"]);
                let log_dir = log_root.join(&cname);
                if let Err(e) = std::fs::create_dir_all(&log_dir) {
                    tracing::warn!(error = %e, "creating the log directory");
                }
                let container = Container {
                    name: cname,
                    init: !init_done,
                    spec: c,
                    spawn,
                    log_dir,
                    pod_ip: ip.clone(),
                    restart_policy: s(&pod["spec"]["restartPolicy"]),
                    grace: grace_secs.clone(),
                    live: ctx.live.clone(),
                };
                grace_secs.store(grace(&pod).as_secs(), Ordering::Relaxed);
                running += 1;
                tokio::spawn(container.run(tx.clone(), stop.child_token()));
            }
        }
        // The kubelet confirms the deletion once the containers are gone.
        if self.updates.borrow().is_some() {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            if let Err(error) = api.delete(&name, &dp).await {
                tracing::debug!(%error, pod = %name, "deleting the pod");
            }
        }
        if let Ok(addr) = ip.parse() {
            ctx.pod_ips.release(addr);
        }
        for dir in [&pod_dir, &log_root] {
            if let Err(error) = std::fs::remove_dir_all(dir) {
                tracing::debug!(%error, dir = %dir.display(), "removing pod files");
            }
        }
    }
}
