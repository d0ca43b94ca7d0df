//! Status writes: server-side apply of `status` with field manager `lifeboat`.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::FIELD_MANAGER;

/// Failed to write an object's status.
#[derive(Debug, thiserror::Error)]
#[error("writing status of {kind} {namespace}/{name}: {source}")]
pub struct PatchStatusError {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

/// Applies `status` to the object's status subresource.
pub async fn apply_status<K, S>(api: &Api<K>, namespace: &str, name: &str, status: &S) -> Result<K, PatchStatusError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name, "namespace": namespace},
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map_err(|source| PatchStatusError {
            kind: K::kind(&()).into_owned(),
            namespace: namespace.into(),
            name: name.into(),
            source,
        })
}

/// Applies `status` only if the object is still at `resource_version` (optimistic
/// concurrency): a status computed from an older view must not overwrite a newer one.
/// `Ok(None)` when the object changed meanwhile.
pub async fn apply_status_if_unchanged<K, S>(
    api: &Api<K>,
    namespace: &str,
    name: &str,
    resource_version: &str,
    status: &S,
) -> Result<Option<K>, PatchStatusError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
        "status": status,
    });
    match api
        .patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
    {
        Ok(obj) => Ok(Some(obj)),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
        Err(source) => Err(PatchStatusError {
            kind: K::kind(&()).into_owned(),
            namespace: namespace.into(),
            name: name.into(),
            source,
        }),
    }
}
