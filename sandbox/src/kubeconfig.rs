//! The kubeconfig kubectl, helm and kube-rs use as is: one context, plain HTTP.

use std::path::Path;

pub fn render(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-sandbox
  cluster:
    server: {url}
contexts:
- name: kube-sandbox
  context:
    cluster: kube-sandbox
    user: kube-sandbox
    namespace: default
current-context: kube-sandbox
preferences: {{}}
users:
- name: kube-sandbox
  user: {{}}
"
    )
}

pub fn write(path: &Path, url: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(url))?;
    std::fs::rename(&tmp, path)
}
