//! Server-side apply with no metadata.name in the body, as kube-rs controllers send for
//! status (the controller-rs pattern): kube-apiserver takes the name from the URL.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

#[tokio::test]
async fn apply_takes_the_name_from_the_url() {
    let sandbox = kube_sandbox::Sandbox::start(kube_sandbox::SandboxOptions::default())
        .await
        .expect("sandbox");
    let api: Api<ConfigMap> = Api::default_namespaced(sandbox.client().await);
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "cm"}, "data": {"a": "1"}})).expect("cm");
    api.create(&PostParams::default(), &cm).await.expect("create");
    let patch = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"b": "2"}});
    let applied = api
        .patch("cm", &PatchParams::apply("test"), &Patch::Apply(&patch))
        .await
        .expect("apply without a name");
    assert_eq!(applied.data.unwrap_or_default().get("b").map(String::as_str), Some("2"));
    let created = api
        .patch("fresh", &PatchParams::apply("test"), &Patch::Apply(&patch))
        .await
        .expect("create on apply");
    assert_eq!(created.metadata.name.as_deref(), Some("fresh"));
    let wrong = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}});
    let err = api
        .patch("cm", &PatchParams::apply("test"), &Patch::Apply(&wrong))
        .await
        .expect_err("a different name is refused");
    assert!(err.to_string().contains("does not match"), "{err}");
}
