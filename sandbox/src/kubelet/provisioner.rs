//! A local-path volume provisioner: every unbound PersistentVolumeClaim gets a
//! directory (which outlives the pods using it) and a hostPath PersistentVolume
//! bound to it; deleting the claim deletes both (reclaim policy Delete).

use std::path::PathBuf;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

async fn provision(client: &kube::Client, root: &std::path::Path, pvc: &Value) -> Result<(), String> {
    let (ns, name, uid) = (
        s(&pvc["metadata"]["namespace"]),
        s(&pvc["metadata"]["name"]),
        s(&pvc["metadata"]["uid"]),
    );
    let pv_name = format!("pvc-{uid}");
    let dir = root.join(&pv_name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let size = pvc["spec"]["resources"]["requests"]["storage"].clone();
    let size = if size.is_null() { json!("1Gi") } else { size };
    let modes = pvc["spec"]["accessModes"].clone();
    let class = pvc["spec"]["storageClassName"].clone();
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "kube-sandbox.io/local-path"}},
        "spec": {
            "capacity": {"storage": size}, "accessModes": modes, "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": class, "volumeMode": "Filesystem",
            "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": name, "uid": uid},
        },
    }))
    .map_err(|e| e.to_string())?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(format!("creating {pv_name}: {e}")),
    }
    let bound = json!({"status": {"phase": "Bound"}});
    pvs.patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&bound))
        .await
        .map_err(|e| format!("binding {pv_name}: {e}"))?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let spec = json!({"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                                   "pv.kubernetes.io/bound-by-controller": "yes"}},
                      "spec": {"volumeName": pv_name}});
    claims
        .patch(&name, &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .map_err(|e| format!("binding claim {name}: {e}"))?;
    let status = json!({"status": {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}});
    claims
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| format!("binding claim {name}: {e}"))?;
    Ok(())
}

async fn reclaim(client: &kube::Client, root: &std::path::Path, pvc: &Value) {
    let pv_name = format!("pvc-{}", s(&pvc["metadata"]["uid"]));
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    if let Err(error) = pvs.delete(&pv_name, &DeleteParams::default()).await {
        tracing::debug!(%error, pv = %pv_name, "deleting the volume");
    }
    let dir = root.join(&pv_name);
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        tracing::debug!(%error, dir = %dir.display(), "removing the volume directory");
    }
}

pub async fn run(client: kube::Client, root: PathBuf) {
    let mut events = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                let v = serde_json::to_value(&p).unwrap_or_default();
                let unbound = v["spec"]["volumeName"].as_str().is_none_or(str::is_empty);
                if unbound
                    && !crate::meta::is_deleting(&v)
                    && let Err(why) = provision(&client, &root, &v).await
                {
                    tracing::warn!(%why, "provisioning a volume");
                }
            }
            Ok(watcher::Event::Delete(p)) => {
                let v = serde_json::to_value(&p).unwrap_or_default();
                reclaim(&client, &root, &v).await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "volume provisioner watch failed; retrying"),
        }
    }
}
