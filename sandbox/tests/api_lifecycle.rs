//! Object lifecycle through kube-rs: server-filled metadata, status
//! subresource and generation, server-side apply, metadata-only reads,
//! finalizers, owner-reference GC, namespace deletion, dropping a sandbox.

mod common;

use std::time::Duration;

use common::{api_status, raw_http, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::core::ObjectMeta;
use kube_sandbox::start_default;
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}))
        .expect("ConfigMap")
}

#[tokio::test(flavor = "multi_thread")]
async fn create_fills_metadata_and_status_subresource_rules_hold() {
    let sandbox = start_default().await.expect("start");
    let client = sandbox.client().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"generateName": "web-"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 5},
    }))
    .expect("Deployment");
    let made = api.create(&PostParams::default(), &d).await.expect("create");
    let name = made.metadata.name.clone().expect("name");
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    assert!(
        made.metadata.uid.is_some()
            && made.metadata.creation_timestamp.is_some()
            && made.metadata.resource_version.is_some()
    );
    assert_eq!(made.metadata.generation, Some(1));
    assert_eq!(
        made.status.as_ref().and_then(|s| s.replicas),
        None,
        "status is reset on create"
    );

    let st = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3}, "spec": {"replicas": 7}})),
        )
        .await
        .expect("status");
    assert_eq!(st.status.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        st.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "/status does not change spec"
    );
    assert_eq!(st.metadata.generation, Some(1), "status writes never bump generation");
    let sp = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}, "status": {"replicas": 0}})),
        )
        .await
        .expect("spec");
    assert_eq!(sp.metadata.generation, Some(2));
    assert_eq!(
        sp.status.as_ref().and_then(|s| s.replicas),
        Some(3),
        "the main resource does not change status"
    );
    // A no-op write keeps the resourceVersion.
    let again = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("noop");
    assert_eq!(again.metadata.resource_version, sp.metadata.resource_version);

    let svcs: Api<Service> = Api::namespaced(client, "default");
    let svc: Service =
        serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}})).expect("svc");
    let svc = svcs.create(&PostParams::default(), &svc).await.expect("service");
    let ip: std::net::Ipv4Addr = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("clusterIP")
        .parse()
        .expect("ipv4");
    assert!(kube_sandbox::ipalloc::IpAllocator::in_range(ip));
    assert!(
        std::env::temp_dir()
            .join(format!("kube-sandbox-ips/{ip}.lock"))
            .exists()
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_honours_finalizers_owner_references_and_namespaces() {
    let sandbox = start_default().await.expect("start");
    let client = sandbox.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &Namespace {
            metadata: ObjectMeta {
                name: Some("gc".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("ns");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "gc");
    let owner = api
        .create(&PostParams::default(), &cm("owner", json!({})))
        .await
        .expect("owner");
    let owner_ref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]);
    for name in ["dep1", "dep2"] {
        let mut c = cm(name, json!({}));
        c.metadata.owner_references = Some(serde_json::from_value(owner_ref.clone()).expect("refs"));
        api.create(&PostParams::default(), &c).await.expect("dependent");
    }
    // Orphan keeps dependents (without the reference); background deletes them.
    api.delete(
        "owner",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .expect("orphan delete");
    let dep = api.get("dep1").await.expect("orphaned dependent stays");
    assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());

    let owner2 = api
        .create(&PostParams::default(), &cm("owner2", json!({})))
        .await
        .expect("owner2");
    let mut c = cm("dep3", json!({}));
    c.metadata.owner_references = Some(
        serde_json::from_value(
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner2.metadata.uid}]),
        )
        .expect("refs"),
    );
    api.create(&PostParams::default(), &c).await.expect("dep3");
    api.delete("owner2", &DeleteParams::default())
        .await
        .expect("background delete");
    assert!(api.get_opt("dep3").await.expect("get").is_none(), "dependent collected");

    // A finalizer holds an object; deleting the namespace waits for it.
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.expect("held");
    nss.delete("gc", &DeleteParams::default()).await.expect("delete ns");
    let ns = nss.get("gc").await.expect("namespace still there");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    assert!(
        api.get("held")
            .await
            .expect("held stays")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert!(
        api.get_opt("dep2").await.expect("get").is_none(),
        "namespace content is deleted"
    );
    let s = api_status(
        api.create(&PostParams::default(), &cm("late", json!({})))
            .await
            .expect_err("terminating"),
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    let n = nss.clone();
    wait_until("namespace gone", Duration::from_secs(10), move || {
        let n = n.clone();
        async move { matches!(n.get_opt("gc").await, Ok(None)).then_some(()) }
    })
    .await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_only_reads_and_server_side_apply_through_kube_rs() {
    let sandbox = start_default().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    let pp = PatchParams::apply("lifeboat-test");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"a": "1"}}, "data": {"x": "1", "y": "2"}});
    api.patch("ssa", &pp, &Patch::Apply(&applied))
        .await
        .expect("create on apply");
    // Re-applying without y removes the field this manager owned.
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"a": "1"}}, "data": {"x": "3"}});
    let got = api
        .patch("ssa", &pp, &Patch::Apply(&applied))
        .await
        .expect("apply again");
    assert_eq!(got.data, Some([("x".to_string(), "3".to_string())].into()));
    let managers: Vec<String> = got
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["lifeboat-test"]);

    let list = api.list_metadata(&ListParams::default()).await.expect("list metadata");
    assert_eq!(
        list.items
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            // Every namespace has the cluster CA ConfigMap, as on a real cluster.
            .filter(|n| n != "kube-root-ca.crt")
            .collect::<Vec<_>>(),
        ["ssa"]
    );
    let (code, _, body) = raw_http(
        &sandbox.url(),
        "GET",
        "/api/v1/namespaces/default/configmaps/ssa",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(body.contains("\"data\""), "{body}");
    let one = api.get_metadata("ssa").await.expect("get metadata");
    assert_eq!(one.metadata.labels, Some([("a".to_string(), "1".to_string())].into()));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_sandbox_stops_it_and_saves_its_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let opts = kube_sandbox::SandboxOptions {
        state_file: Some(state.clone()),
        ..Default::default()
    };
    let sandbox = kube_sandbox::Sandbox::start(opts).await.expect("start");
    let url = sandbox.url();
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    api.create(&PostParams::default(), &cm("saved", json!({})))
        .await
        .expect("create");
    drop(sandbox);
    assert!(
        std::fs::read_to_string(&state)
            .expect("state written")
            .contains("\"saved\"")
    );
    let addr = url.trim_start_matches("http://").to_string();
    wait_until("the listener closes", Duration::from_secs(10), move || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(&addr).await.is_err().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletecollection_removes_only_the_selected_objects() {
    let sandbox = start_default().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client().await, "default");
    for (name, tier) in [("a", "db"), ("b", "web"), ("c", "db")] {
        api.create(&PostParams::default(), &cm(name, json!({"tier": tier})))
            .await
            .expect("create");
    }
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("tier=db"))
        .await
        .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .filter(|n| n != "kube-root-ca.crt")
        .collect();
    assert_eq!(left, ["b"]);
    sandbox.shutdown().await;
}
