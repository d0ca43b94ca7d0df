//! `--state FILE`: objects saved on shutdown and loaded at start. The
//! resourceVersion counter is saved too, so versions keep increasing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::ipalloc::IpAllocator;
use crate::store::{Key, Store};

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("reading state file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("writing state file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

pub fn save(store: &Store, path: &Path) -> Result<(), StateFileError> {
    let objects: Vec<Value> = store
        .objects
        .iter()
        .map(|(k, o)| json!({"group": k.group, "resource": k.resource, "namespace": k.namespace, "name": k.name, "object": o}))
        .collect();
    let doc = json!({"resourceVersion": store.rv, "objects": objects});
    let tmp = path.with_extension("tmp");
    let write = |p: &Path, data: &[u8]| std::fs::write(p, data);
    write(&tmp, doc.to_string().as_bytes()).map_err(|source| StateFileError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| StateFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Load the store (or bootstrap a fresh one if the file does not exist yet),
/// re-claiming the clusterIPs of stored Services.
pub fn load(path: Option<&Path>, ips: &IpAllocator) -> Result<Store, StateFileError> {
    let Some(path) = path.filter(|p| p.exists()) else {
        return Ok(Store::bootstrap());
    };
    let data = std::fs::read(path).map_err(|source| StateFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| StateFileError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let doc: Value = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
    let rv = doc["resourceVersion"]
        .as_u64()
        .ok_or_else(|| bad("resourceVersion missing".into()))?;
    let mut objects = BTreeMap::new();
    for entry in doc["objects"].as_array().ok_or_else(|| bad("objects missing".into()))? {
        let field = |f: &str| {
            entry[f]
                .as_str()
                .map(String::from)
                .ok_or_else(|| bad(format!("object entry without {f}")))
        };
        let key = Key {
            group: field("group")?,
            resource: field("resource")?,
            namespace: field("namespace")?,
            name: field("name")?,
        };
        let obj = entry["object"].clone();
        if key.group.is_empty()
            && key.resource == "services"
            && let Some(ip) = obj["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok())
            && let Err(why) = ips.claim(ip)
        {
            tracing::warn!(service = %key.name, %ip, %why, "could not re-claim clusterIP from state file");
        }
        objects.insert(key, obj);
    }
    let mut store = Store::new(objects, rv);
    // Like kube-apiserver at every start: default RBAC policy that is missing comes back.
    crate::auth::bootstrap::ensure(&mut store);
    Ok(store)
}
