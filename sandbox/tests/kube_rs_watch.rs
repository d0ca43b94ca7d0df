//! kube-rs (the version lifeboat uses) against the sandbox: watcher and
//! Controller see create/update/delete and recover from dropped watches, a
//! 410 Gone and a restart with --state.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_until;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, finalizer};
use kube_sandbox::{Sandbox, SandboxOptions};

const WAIT: Duration = Duration::from_secs(30);

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"watched": "yes"}},
        "data": {"v": value},
    }))
    .expect("valid ConfigMap")
}

/// What a watcher has seen, in order: ("init"), ("apply", name, v), ("delete", name).
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, s: String) {
        self.0.lock().expect("lock").push(s);
    }
    fn has(&self, s: &str) -> bool {
        self.0.lock().expect("lock").iter().any(|x| x == s)
    }
    fn count(&self, s: &str) -> usize {
        self.0.lock().expect("lock").iter().filter(|x| *x == s).count()
    }
}

fn spawn_watcher(api: Api<ConfigMap>, streaming: bool) -> Seen {
    let seen = Seen::default();
    let out = seen.clone();
    let mut cfg = watcher::Config::default().labels("watched=yes");
    if streaming {
        // sendInitialEvents=true with a bookmark marking the end of the initial state.
        cfg = cfg.streaming_lists();
    }
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => out.push("init".into()),
                Ok(Event::InitDone) => out.push("init-done".into()),
                Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) => {
                    let v = o.data.as_ref().and_then(|d| d.get("v")).cloned().unwrap_or_default();
                    out.push(format!("apply {} {v}", o.metadata.name.unwrap_or_default()));
                }
                Ok(Event::Delete(o)) => out.push(format!("delete {}", o.metadata.name.unwrap_or_default())),
                Err(e) => out.push(format!("error {e}")),
            }
        }
    });
    seen
}

async fn seen(seen: &Seen, what: &str) {
    let s = seen.clone();
    let w = what.to_string();
    wait_until(what, WAIT, move || {
        let s = s.clone();
        let w = w.clone();
        async move { s.has(&w).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_sees_changes_and_recovers_from_dropped_watches_410_and_restart() {
    let state = tempfile::tempdir().expect("tempdir");
    let opts = SandboxOptions {
        state_file: Some(state.path().join("state.json")),
        ..Default::default()
    };
    let mut sandbox = Sandbox::start(opts).await.expect("sandbox starts");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    let w = spawn_watcher(api.clone(), false);
    seen(&w, "init-done").await;
    api.create(&PostParams::default(), &cm("early", "1"))
        .await
        .expect("create early");
    let streaming = spawn_watcher(api.clone(), true);
    seen(&streaming, "apply early 1").await;
    seen(&streaming, "init-done").await;

    api.create(&PostParams::default(), &cm("a", "1"))
        .await
        .expect("create a");
    seen(&w, "apply a 1").await;
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch a");
    seen(&w, "apply a 2").await;
    api.delete("a", &DeleteParams::default()).await.expect("delete a");
    seen(&w, "delete a").await;

    // Dropped watches: the watcher re-watches from its last resourceVersion (no relist).
    let inits_before = w.count("init");
    sandbox.faults().drop_watches();
    api.create(&PostParams::default(), &cm("b", "1"))
        .await
        .expect("create b");
    seen(&w, "apply b 1").await;
    assert_eq!(
        w.count("init"),
        inits_before,
        "a dropped watch resumes without relisting"
    );

    // 410 Gone: history forgotten, watch dropped; resuming fails with 410 and the watcher relists.
    sandbox.faults().expire_history();
    sandbox.faults().drop_watches();
    api.create(&PostParams::default(), &cm("c", "1"))
        .await
        .expect("create c");
    seen(&w, "apply c 1").await;
    let s = w.clone();
    wait_until("a relist after 410", WAIT, move || {
        let s = s.clone();
        async move { (s.count("init") > inits_before).then_some(()) }
    })
    .await;

    // Restart through the state file: objects survive, versions keep increasing, the watcher resumes.
    let rv_before = sandbox.faults().resource_version();
    sandbox.restart().await.expect("restart");
    assert!(sandbox.faults().resource_version() >= rv_before);
    let kept = api.get("b").await.expect("b survives the restart");
    api.create(&PostParams::default(), &cm("d", "1"))
        .await
        .expect("create d");
    let d = api.get("d").await.expect("get d");
    let rv = |o: &ConfigMap| {
        o.metadata
            .resource_version
            .clone()
            .unwrap_or_default()
            .parse::<u64>()
            .expect("numeric rv")
    };
    assert!(
        rv(&d) > rv(&kept) && rv(&d) > rv_before,
        "resourceVersions keep increasing across restarts"
    );
    seen(&w, "apply d 1").await;
    seen(&streaming, "apply d 1").await;
    sandbox.shutdown().await;
}

struct Ctx {
    api: Api<ConfigMap>,
    log: Seen,
}

const FINALIZER: &str = "example.com/cleanup";

async fn reconcile(obj: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, finalizer::Error<kube::Error>> {
    let log = ctx.log.clone();
    finalizer(&ctx.api, FINALIZER, obj, |ev| async move {
        match ev {
            finalizer::Event::Apply(o) => {
                let v = o.data.as_ref().and_then(|d| d.get("v")).cloned().unwrap_or_default();
                log.push(format!("apply {} {v}", o.metadata.name.clone().unwrap_or_default()));
            }
            finalizer::Event::Cleanup(o) => {
                log.push(format!("cleanup {}", o.metadata.name.clone().unwrap_or_default()))
            }
        }
        Ok(Action::await_change())
    })
    .await
}

fn error_policy(_: Arc<ConfigMap>, _: &finalizer::Error<kube::Error>, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_reconciles_create_update_delete_across_faults() {
    let state = tempfile::tempdir().expect("tempdir");
    let opts = SandboxOptions {
        state_file: Some(state.path().join("state.json")),
        ..Default::default()
    };
    let mut sandbox = Sandbox::start(opts).await.expect("sandbox starts");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    let log = Seen::default();
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        log: log.clone(),
    });
    let controller = Controller::new(api.clone(), watcher::Config::default().labels("watched=yes"))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    api.create(&PostParams::default(), &cm("x", "1"))
        .await
        .expect("create x");
    seen(&log, "apply x 1").await;
    let got = api.get("x").await.expect("get x");
    assert_eq!(
        got.metadata.finalizers,
        Some(vec![FINALIZER.to_string()]),
        "the controller added its finalizer"
    );

    sandbox.faults().drop_watches();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch x");
    seen(&log, "apply x 2").await;

    sandbox.faults().expire_history();
    sandbox.faults().drop_watches();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"v": "3"}})),
    )
    .await
    .expect("patch x");
    seen(&log, "apply x 3").await;

    sandbox.restart().await.expect("restart");
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"v": "4"}})),
    )
    .await
    .expect("patch x");
    seen(&log, "apply x 4").await;

    api.delete("x", &DeleteParams::default()).await.expect("delete x");
    seen(&log, "cleanup x").await;
    let a = api.clone();
    wait_until("x gone after its finalizer is removed", WAIT, move || {
        let a = a.clone();
        async move { matches!(a.get_opt("x").await, Ok(None)).then_some(()) }
    })
    .await;
    handle.abort();
    sandbox.shutdown().await;
}
