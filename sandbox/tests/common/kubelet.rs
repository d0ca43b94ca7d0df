//! A sandbox with a kubelet for the test images.

use kube_sandbox::kubelet::{ImageMapping, KubeletOptions};
use kube_sandbox::{Sandbox, SandboxOptions};

fn image(pattern: &str, exe: &str) -> ImageMapping {
    ImageMapping {
        image: pattern.into(),
        command: vec![exe.into()],
        ..ImageMapping::default()
    }
}

/// The in-cluster client example, built next to the test binaries (by a plain `cargo test`).
pub fn in_cluster_example() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("examples/in_cluster")
}

/// shell:* -> /bin/sh, python:* -> python3, kubectl:* -> the pinned kubectl,
/// in-cluster:* -> the kube-rs example; anything else stays unmapped.
pub async fn start() -> Sandbox {
    let images = vec![
        image("shell:*", "/bin/sh"),
        image("python:*", "/usr/bin/python3"),
        image("kubectl:*", &super::tool("kubectl").to_string_lossy()),
        image("in-cluster:*", &in_cluster_example().to_string_lossy()),
    ];
    Sandbox::start(SandboxOptions {
        kubelet: Some(KubeletOptions { images }),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox with a kubelet starts")
}
