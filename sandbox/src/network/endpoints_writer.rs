//! I/O: bring one Service's Endpoints and EndpointSlices in line with the desired ones,
//! writing only what differs.

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};

use super::endpoints_model::{self, SKIP_MIRROR_LABEL};
use super::error::SyncEndpointsError;
use super::slices_model::{self, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

const ENDPOINTS_FIELD_MANAGER: &str = "endpoint-controller";
const SLICES_FIELD_MANAGER: &str = "endpointslice-controller";

/// Write the Endpoints and EndpointSlices of `service` computed from `pods` (the pods
/// of its namespace). Services without a selector are left alone.
#[tracing::instrument(skip_all, fields(namespace = %service.namespace().unwrap_or_default(), name = %service.name_any()))]
pub async fn sync_service(client: &Client, service: &Service, pods: &[&Pod]) -> Result<(), SyncEndpointsError> {
    let namespace = service.namespace().unwrap_or_default();
    if let Some(desired) = endpoints_model::desired_endpoints(service, pods.iter().copied()) {
        write_endpoints(&Api::namespaced(client.clone(), &namespace), desired).await?;
    }
    if let Some(desired) = slices_model::desired_slices(service, pods.iter().copied()) {
        let api = Api::namespaced(client.clone(), &namespace);
        write_slices(&api, &namespace, &service.name_any(), desired).await?;
    }
    Ok(())
}

/// Remove what the controller wrote for a Service that no longer exists.
#[tracing::instrument(skip(client))]
pub async fn delete_service_objects(client: &Client, namespace: &str, name: &str) -> Result<(), SyncEndpointsError> {
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
    let existing = endpoints
        .get_opt(name)
        .await
        .map_err(|source| read_error("Endpoints", namespace, name, source))?;
    if existing.is_some_and(|e| e.labels().contains_key(SKIP_MIRROR_LABEL)) {
        delete(&endpoints, "Endpoints", namespace, name).await?;
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    for slice in list_managed_slices(&slices, namespace, name).await? {
        delete(&slices, "EndpointSlice", namespace, &slice.name_any()).await?;
    }
    Ok(())
}

async fn write_endpoints(api: &Api<Endpoints>, mut desired: Endpoints) -> Result<(), SyncEndpointsError> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| read_error("Endpoints", &namespace, &name, source))?;
    let params = post_params(ENDPOINTS_FIELD_MANAGER);
    let written = match existing {
        Some(existing) if endpoints_model::endpoints_up_to_date(&existing, &desired) => return Ok(()),
        Some(existing) => {
            // Optimistic concurrency: a concurrent writer makes this fail with 409 and
            // the controller retries with a fresh read.
            desired.metadata.resource_version = existing.metadata.resource_version;
            desired.metadata.annotations = existing.metadata.annotations;
            api.replace(&name, &params, &desired).await
        }
        None => api.create(&params, &desired).await,
    };
    written.map_err(|source| write_error("Endpoints", &namespace, &name, source))?;
    tracing::debug!("wrote Endpoints");
    Ok(())
}

async fn write_slices(
    api: &Api<EndpointSlice>,
    namespace: &str,
    service_name: &str,
    desired: Vec<EndpointSlice>,
) -> Result<(), SyncEndpointsError> {
    let existing = list_managed_slices(api, namespace, service_name).await?;
    let params = post_params(SLICES_FIELD_MANAGER);
    let keep: Vec<String> = desired.iter().map(ResourceExt::name_any).collect();
    for mut slice in desired {
        let name = slice.name_any();
        let written = match existing.iter().find(|e| e.name_any() == name) {
            Some(current) if slices_model::slice_up_to_date(current, &slice) => continue,
            Some(current) => {
                slice.metadata.resource_version = current.metadata.resource_version.clone();
                slice.metadata.annotations = current.metadata.annotations.clone();
                api.replace(&name, &params, &slice).await
            }
            None => api.create(&params, &slice).await,
        };
        written.map_err(|source| write_error("EndpointSlice", namespace, &name, source))?;
        tracing::debug!(slice = %name, "wrote EndpointSlice");
    }
    // Slices of a port set no pod has any more go away, after the new ones exist so
    // that readers never see fewer endpoints than before or after.
    for stale in existing.iter().filter(|e| !keep.contains(&e.name_any())) {
        delete(api, "EndpointSlice", namespace, &stale.name_any()).await?;
    }
    Ok(())
}

async fn list_managed_slices(
    api: &Api<EndpointSlice>,
    namespace: &str,
    service_name: &str,
) -> Result<Vec<EndpointSlice>, SyncEndpointsError> {
    let params = ListParams::default().labels(&slices_model::managed_slices_selector(service_name));
    let list = api
        .list(&params)
        .await
        .map_err(|source| read_error("EndpointSlice", namespace, service_name, source))?;
    // Belt and braces in case a server ignores part of the selector.
    Ok(list
        .items
        .into_iter()
        .filter(|s| s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE))
        .collect())
}

async fn delete<K>(api: &Api<K>, kind: &'static str, namespace: &str, name: &str) -> Result<(), SyncEndpointsError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::debug!(kind, object = name, "deleted");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(source) => Err(SyncEndpointsError::Delete {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

fn post_params(field_manager: &str) -> PostParams {
    PostParams {
        field_manager: Some(field_manager.to_owned()),
        ..PostParams::default()
    }
}

fn read_error(kind: &'static str, namespace: &str, name: &str, source: kube::Error) -> SyncEndpointsError {
    SyncEndpointsError::Read {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    }
}

fn write_error(kind: &'static str, namespace: &str, name: &str, source: kube::Error) -> SyncEndpointsError {
    SyncEndpointsError::Write {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    }
}
