//! An in-pod client for kube-sandbox's tests: kube-rs `Client::try_default()`
//! (in-cluster config from KUBERNETES_SERVICE_HOST/PORT and the mounted
//! ServiceAccount token and CA), then a list of the pods of its namespace.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Both rustls backends may be linked: pick the one the sandbox uses.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("no client: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ns = client.default_namespace().to_string();
    match Api::<Pod>::namespaced(client, &ns).list(&ListParams::default()).await {
        Ok(pods) => {
            println!("listed {} pods in {ns}", pods.items.len());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("listing pods failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
