//! Kind-specific behaviour of built-ins on create and update: what
//! kube-apiserver's registry strategies do for namespaces, services, CRDs and
//! kinds with a status subresource.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ipalloc::IpAllocator;
use crate::meta;
use crate::resources::ResourceInfo;

pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    !info.is_custom && info.group == group && info.plural == plural
}

pub fn is_namespace(info: &ResourceInfo) -> bool {
    is(info, "", "namespaces")
}

pub fn is_crd(info: &ResourceInfo) -> bool {
    is(info, "apiextensions.k8s.io", "customresourcedefinitions")
}

/// Status a newly created object starts with (clients cannot set status on create).
pub fn reset_status_on_create(info: &ResourceInfo, obj: &mut Value) {
    if !info.status_subresource {
        return;
    }
    let Some(m) = obj.as_object_mut() else { return };
    if info.is_custom {
        m.remove("status");
    } else if is(info, "", "pods") {
        m.insert("status".into(), json!({"phase": "Pending", "qosClass": "BestEffort"}));
    } else if is(info, "", "namespaces") {
        m.insert("status".into(), json!({"phase": "Active"}));
    } else if is(info, "", "nodes") || is(info, "", "persistentvolumeclaims") || is(info, "", "persistentvolumes") {
        // Their clients (kubelet, provisioners) do not exist here; keep what was given.
    } else {
        m.insert("status".into(), json!({}));
    }
}

/// Defaulting and allocation on create.
pub fn on_create(info: &ResourceInfo, obj: &mut Value, ips: &IpAllocator) -> ApiResult<()> {
    if is(info, "", "namespaces") {
        let name = meta::name(obj).to_string();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
    } else if is(info, "", "services") {
        service_defaults(obj, ips, None)?;
    } else if is_crd(info) {
        crd_on_write(obj, None)?;
        let mut f = meta::finalizers(obj);
        if !f.iter().any(|x| x == CRD_CLEANUP_FINALIZER) {
            f.push(CRD_CLEANUP_FINALIZER.into());
        }
        meta::set_finalizers(obj, &f);
    } else if is(info, "", "secrets") && obj["type"].as_str().is_none_or(str::is_empty) {
        obj["type"] = json!("Opaque");
    }
    Ok(())
}

/// Rules on update (main resource or status).
pub fn on_update(info: &ResourceInfo, old: &Value, obj: &mut Value, ips: &IpAllocator) -> ApiResult<()> {
    if is(info, "", "services") {
        service_defaults(obj, ips, Some(old))?;
    } else if is_crd(info) {
        crd_on_write(obj, Some(old))?;
    } else if is(info, "", "namespaces") && old["status"]["phase"] == "Terminating" {
        obj["status"]["phase"] = json!("Terminating");
    }
    Ok(())
}

fn service_defaults(obj: &mut Value, ips: &IpAllocator, old: Option<&Value>) -> ApiResult<()> {
    let name = meta::name(obj).to_string();
    let spec = &mut obj["spec"];
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    if spec["sessionAffinity"].is_null() {
        spec["sessionAffinity"] = json!("None");
    }
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports {
            if p["protocol"].is_null() {
                p["protocol"] = json!("TCP");
            }
            if p["targetPort"].is_null() {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
    if spec["type"] == "ExternalName" {
        return Ok(());
    }
    let old_ip = old.and_then(|o| o["spec"]["clusterIP"].as_str()).map(String::from);
    let asked = spec["clusterIP"].as_str().map(String::from).filter(|s| !s.is_empty());
    let ip = match (old_ip, asked) {
        (Some(o), Some(a)) if o != a => {
            return Err(ApiError::invalid(
                "",
                "Service",
                &name,
                vec![(
                    "FieldValueInvalid".into(),
                    "spec.clusterIPs[0]".into(),
                    format!("Invalid value: []string{{\"{a}\"}}: may not change once set"),
                )],
            ));
        }
        (Some(o), _) => o,
        (None, Some(a)) if a == "None" => a,
        (None, Some(a)) => {
            let parsed = a
                .parse()
                .map_err(|_| invalid_ip(&name, &a, "must be a valid IP address"))?;
            ips.claim(parsed).map_err(|why| invalid_ip(&name, &a, &why))?;
            a
        }
        (None, None) => ips
            .allocate()
            .map_err(|why| ApiError::internal(format!("failed to allocate a serviceIP: {why}")))?
            .to_string(),
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if ip != "None" {
        spec["ipFamilies"] = json!(["IPv4"]);
        spec["ipFamilyPolicy"] = json!("SingleStack");
        if spec["internalTrafficPolicy"].is_null() {
            spec["internalTrafficPolicy"] = json!("Cluster");
        }
    }
    Ok(())
}

fn invalid_ip(name: &str, ip: &str, why: &str) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        name,
        vec![(
            "FieldValueInvalid".into(),
            "spec.clusterIPs".into(),
            format!("Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: {why}"),
        )],
    )
}

/// Validate a CRD and set its status: names accepted, Established=True, storedVersions.
fn crd_on_write(obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    let name = meta::name(obj).to_string();
    let spec = &obj["spec"];
    let mut causes = vec![];
    let mut req = |field: &str| {
        causes.push((
            "FieldValueRequired".to_string(),
            field.to_string(),
            "Required value".to_string(),
        ))
    };
    let group = spec["group"].as_str().unwrap_or("").to_string();
    let plural = spec["names"]["plural"].as_str().unwrap_or("").to_string();
    let kind = spec["names"]["kind"].as_str().unwrap_or("").to_string();
    if group.is_empty() {
        req("spec.group");
    }
    if plural.is_empty() {
        req("spec.names.plural");
    }
    if kind.is_empty() {
        req("spec.names.kind");
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        req("spec.versions");
    }
    let storage: Vec<String> = versions
        .iter()
        .filter(|v| v["storage"] == true)
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    if !versions.is_empty() && storage.len() != 1 {
        causes.push((
            "FieldValueInvalid".into(),
            "spec.versions".into(),
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                json!(versions.iter().map(|v| &v["name"]).collect::<Vec<_>>())
            ),
        ));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push((
            "FieldValueInvalid".into(),
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            causes,
        ));
    }
    let mut accepted = spec["names"].clone();
    if accepted["singular"].is_null() {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted["listKind"].is_null() {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    obj["spec"]["names"] = accepted.clone();
    let mut stored: Vec<String> = old
        .and_then(|o| o["status"]["storedVersions"].as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default();
    for s in storage {
        if !stored.contains(&s) {
            stored.push(s);
        }
    }
    let since = old
        .and_then(|o| o["status"]["conditions"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Established"))
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
        .unwrap_or_else(meta::now);
    let terminating = meta::is_deleting(obj);
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since}),
    ];
    if terminating {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": meta::now()}));
    }
    obj["status"] = json!({"conditions": conditions, "acceptedNames": accepted, "storedVersions": stored});
    Ok(())
}

/// Lightweight checks kube-apiserver makes on every object's metadata.
pub fn validate_meta(info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    let name = meta::name(obj);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok
        || (info.plural == "rolebindings" || info.plural == "roles" || info.plural.starts_with("cluster"))
            && !name.is_empty()
            && !name.contains('/')
    {
        return Ok(());
    }
    Err(ApiError::invalid(
        &info.group,
        &info.kind,
        name,
        vec![(
            "FieldValueInvalid".into(),
            "metadata.name".into(),
            format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ),
        )],
    ))
}
