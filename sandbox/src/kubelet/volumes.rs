//! Pod volumes as host directories: emptyDir, secret, configMap, downwardAPI and
//! projected (ServiceAccount token, ConfigMap, Secret, downward API) are written
//! under the pod's directory (and rewritten on refresh, tokens before they
//! expire); persistentVolumeClaim resolves to its bound PV's directory; hostPath is
//! the host path. Containers see them through bind mounts.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use serde_json::Value;

use super::sources::Sources;

/// Tokens written into projected volumes, re-requested at 80% of their lifetime.
#[derive(Default)]
pub struct Tokens(BTreeMap<String, (Instant, i64)>);

fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn write_file(dir: &Path, rel: &str, data: &[u8], mode: u32, fs_group: Option<u32>) -> Result<(), String> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    // Replace atomically: a process reading the file sees the old or the new content.
    let tmp = path.with_extension("kube-sandbox-tmp");
    std::fs::write(&tmp, data).map_err(|e| io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(|e| io(&tmp, e))?;
    if let Some(g) = fs_group {
        std::os::unix::fs::chown(&tmp, None, Some(g)).map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
}

fn mode(v: &Value, default: u32) -> u32 {
    v.as_u64().and_then(|m| u32::try_from(m).ok()).unwrap_or(default)
}

/// The files of a secret/configMap source: every key, or the listed items.
fn files(
    data: &BTreeMap<String, Vec<u8>>,
    items: &Value,
    default_mode: u32,
) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    match items.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                let key = i["key"].as_str().unwrap_or("");
                let v = data
                    .get(key)
                    .ok_or_else(|| format!("configuration key {key:?} not found"))?;
                Ok((
                    i["path"].as_str().unwrap_or(key).to_string(),
                    v.clone(),
                    mode(&i["mode"], default_mode),
                ))
            })
            .collect(),
        _ => Ok(data.iter().map(|(k, v)| (k.clone(), v.clone(), default_mode)).collect()),
    }
}

async fn object_files(
    src: &mut Sources<'_>,
    kind: &str,
    r: &Value,
    default_mode: u32,
) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    let name = r[if kind == "secret" { "secretName" } else { "name" }]
        .as_str()
        .or(r["name"].as_str())
        .unwrap_or("")
        .to_string();
    let data = if kind == "secret" {
        src.secret(&name).await?
    } else {
        src.configmap(&name).await?
    };
    match data {
        Some(d) => files(&d, &r["items"], default_mode),
        None if r["optional"].as_bool().unwrap_or(false) => Ok(vec![]),
        None => Err(format!("{kind} {name:?} not found")),
    }
}

fn downward_files(src: &Sources<'_>, items: &Value, default_mode: u32) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let path = i["fieldRef"]["fieldPath"].as_str().unwrap_or("");
            Ok((
                i["path"].as_str().unwrap_or("").to_string(),
                src.field(path)?.into_bytes(),
                mode(&i["mode"], default_mode),
            ))
        })
        .collect()
}

async fn pvc_path(src: &Sources<'_>, claim: &str) -> Result<PathBuf, String> {
    let ns = src.pod["metadata"]["namespace"].as_str().unwrap_or("");
    let pvc = Api::<PersistentVolumeClaim>::namespaced(src.client.clone(), ns)
        .get_opt(claim)
        .await
        .map_err(|e| format!("reading persistentvolumeclaim {claim:?}: {e}"))?
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} not found"))?;
    let pv_name = pvc
        .spec
        .and_then(|s| s.volume_name)
        .filter(|_| pvc.status.and_then(|s| s.phase).as_deref() == Some("Bound"))
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} is not bound"))?;
    let pv = Api::<PersistentVolume>::all(src.client.clone())
        .get(&pv_name)
        .await
        .map_err(|e| format!("reading persistentvolume {pv_name:?}: {e}"))?;
    let spec = pv.spec.unwrap_or_default();
    spec.host_path
        .map(|h| h.path)
        .or(spec.local.map(|l| l.path))
        .map(PathBuf::from)
        .ok_or_else(|| format!("persistentvolume {pv_name:?} is neither hostPath nor local"))
}

/// Write every volume of the pod; returns volume name -> host directory.
pub async fn materialize(
    src: &mut Sources<'_>,
    pod_dir: &Path,
    tokens: &mut Tokens,
    fs_group: Option<u32>,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    let volumes = src.pod["spec"]["volumes"].as_array().cloned().unwrap_or_default();
    for v in volumes {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let dir = pod_dir.join("volumes").join(&name);
        let mut to_write: Vec<(String, Vec<u8>, u32)> = vec![];
        let path = if v["emptyDir"].is_object() {
            dir.clone()
        } else if v["secret"].is_object() {
            to_write = object_files(src, "secret", &v["secret"], mode(&v["secret"]["defaultMode"], 0o644)).await?;
            dir.clone()
        } else if v["configMap"].is_object() {
            to_write = object_files(
                src,
                "configmap",
                &v["configMap"],
                mode(&v["configMap"]["defaultMode"], 0o644),
            )
            .await?;
            dir.clone()
        } else if v["downwardAPI"].is_object() {
            to_write = downward_files(
                src,
                &v["downwardAPI"]["items"],
                mode(&v["downwardAPI"]["defaultMode"], 0o644),
            )?;
            dir.clone()
        } else if v["projected"].is_object() {
            let default_mode = mode(&v["projected"]["defaultMode"], 0o644);
            for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                if s["secret"].is_object() {
                    to_write.extend(object_files(src, "secret", &s["secret"], default_mode).await?);
                } else if s["configMap"].is_object() {
                    to_write.extend(object_files(src, "configmap", &s["configMap"], default_mode).await?);
                } else if s["downwardAPI"].is_object() {
                    to_write.extend(downward_files(src, &s["downwardAPI"]["items"], default_mode)?);
                } else if s["serviceAccountToken"].is_object() {
                    let t = &s["serviceAccountToken"];
                    let rel = t["path"].as_str().unwrap_or("token").to_string();
                    let expiration = t["expirationSeconds"].as_i64().unwrap_or(3600).max(600);
                    let id = format!("{name}/{rel}");
                    let fresh = tokens
                        .0
                        .get(&id)
                        .is_some_and(|(at, exp)| at.elapsed().as_secs_f64() < *exp as f64 * 0.8);
                    if !fresh || !dir.join(&rel).exists() {
                        let token = src.token(t["audience"].as_str(), expiration).await?;
                        to_write.push((rel, token.into_bytes(), default_mode));
                        tokens.0.insert(id, (Instant::now(), expiration));
                    }
                }
            }
            dir.clone()
        } else if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            pvc_path(src, claim).await?
        } else if let Some(p) = v["hostPath"]["path"].as_str() {
            let p = PathBuf::from(p);
            if matches!(v["hostPath"]["type"].as_str(), Some("DirectoryOrCreate")) {
                std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
            }
            p
        } else {
            return Err(format!(
                "volume {name:?}: this volume type is not supported by kube-sandbox"
            ));
        };
        if path == dir {
            std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
            if let Some(g) = fs_group {
                std::os::unix::fs::chown(&dir, None, Some(g)).map_err(|e| io(&dir, e))?;
            }
        }
        for (rel, data, m) in to_write {
            write_file(&dir, &rel, &data, m, fs_group)?;
        }
        out.insert(name, path);
    }
    Ok(out)
}
