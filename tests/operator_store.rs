//! The operator's BackupStore controller against kube-sandbox and a real garage: the
//! `Available` condition comes from a real round trip and names what is wrong.

use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lifeboat::api::BackupStore;
use lifeboat_testkit::cluster::TestCluster;
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;

fn store_yaml(garage: &Garage, secret: &str) -> String {
    format!(
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStore\nmetadata: {{name: shop}}\nspec:\n  s3: {{bucket: {}, endpoint: '{}', region: {}, forcePathStyle: true, credentialsSecret: {{name: {secret}}}}}\n",
        garage.bucket(),
        garage.endpoint(),
        garage.region()
    )
}

fn secret_json(name: &str, key: &str, secret: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret},
    })
}

async fn available(api: &Api<BackupStore>, want_status: &str) -> (String, String) {
    wait_until_async(&format!("Available={want_status}"), Duration::from_secs(30), || async {
        let store = api.get("shop").await.ok()?;
        let c = store.status?.conditions.into_iter().find(|c| c.type_ == "Available")?;
        (c.status == want_status).then_some((c.reason, c.message))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_condition_follows_reality() {
    let garage = tokio::task::block_in_place(Garage::start).expect("garage starts");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    let _operator = OperatorProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_lifeboat")),
        cluster.kubeconfig(),
        "op-a",
        &[],
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::default_namespaced(client.clone());
    let stores: Api<BackupStore> = Api::default_namespaced(client.clone());

    // A missing Secret is named.
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &store_yaml(&garage, "s3-keys"));
    assert!(run.ok, "{}", run.stderr);
    let (reason, message) = available(&stores, "False").await;
    assert_eq!(reason, "SecretUnavailable");
    assert!(message.contains("s3-keys"), "{message}");

    // A wrong secret key is told apart.
    let bad = serde_json::from_value(secret_json(
        "s3-keys",
        garage.access_key(),
        "0000000000000000000000000000000000000000000000000000000000000000",
    ))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &bad)
        .await
        .expect("create secret");
    let (reason, _) = wait_until_async("BadCredentials", Duration::from_secs(60), || async {
        let c = stores
            .get("shop")
            .await
            .ok()?
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Available")?;
        (c.reason == "BadCredentials").then_some((c.reason, c.message))
    })
    .await;
    assert_eq!(reason, "BadCredentials");

    // Fixing the input recovers without a restart (the store controller watches Secrets).
    let good = secret_json("s3-keys", garage.access_key(), garage.secret_key());
    secrets
        .patch("s3-keys", &PatchParams::apply("test").force(), &Patch::Apply(&good))
        .await
        .expect("fix secret");
    let (reason, message) = available(&stores, "True").await;
    assert_eq!(reason, "RoundTripSucceeded", "{message}");

    // An S3 server that went away is Unreachable.
    stores.delete("shop", &DeleteParams::default()).await.expect("delete");
    drop(garage);
    let run = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStore\nmetadata: {name: shop}\nspec:\n  s3: {bucket: gone, endpoint: 'http://127.0.0.1:9', forcePathStyle: true, credentialsSecret: {name: s3-keys}}\n",
    );
    assert!(run.ok, "{}", run.stderr);
    let (reason, _) = available(&stores, "False").await;
    assert_eq!(reason, "Unreachable");
}
