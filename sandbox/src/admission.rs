//! What kube-apiserver's registry defaults and admission plugins do to pods
//! and jobs on create, and what kube-controller-manager's ServiceAccount and
//! root-CA publisher controllers give every namespace (done synchronously here).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::store::{EventType, Key, Store};

pub const TOKEN_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const ROOT_CA: &str = "kube-root-ca.crt";

fn core_key(resource: &str, ns: &str, name: &str) -> Key {
    Key {
        group: String::new(),
        resource: resource.into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

/// The `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap of a namespace.
pub fn namespace_defaults(store: &mut Store, ns: &str, ca_pem: &str) {
    let now = meta::now();
    let objects = [
        (
            "serviceaccounts",
            "default",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
        ),
        (
            "configmaps",
            ROOT_CA,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": ROOT_CA, "namespace": ns,
                                "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                   "data": {"ca.crt": ca_pem}}),
        ),
    ];
    for (resource, name, mut obj) in objects {
        let key = core_key(resource, ns, name);
        if store.objects.contains_key(&key) {
            continue;
        }
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        obj["metadata"]["creationTimestamp"] = json!(now);
        store.put(key, obj, EventType::Added, None);
    }
}

/// Every namespace that is not terminating gets its defaults (at start).
pub fn all_namespace_defaults(store: &mut Store, ca_pem: &str) {
    let namespaces: Vec<String> = store
        .objects
        .iter()
        .filter(|(k, o)| k.group.is_empty() && k.resource == "namespaces" && !meta::is_deleting(o))
        .map(|(k, _)| k.name.clone())
        .collect();
    for ns in namespaces {
        namespace_defaults(store, &ns, ca_pem);
    }
}

fn default_field(obj: &mut Value, field: &str, value: Value) {
    if obj[field].is_null() {
        obj[field] = value;
    }
}

fn container_defaults(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("");
    let latest = !image.rsplit('/').next().unwrap_or("").contains(':') || image.ends_with(":latest");
    default_field(
        c,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_field(c, "terminationMessagePolicy", json!("File"));
    default_field(c, "resources", json!({}));
    for p in c["ports"].as_array_mut().into_iter().flatten() {
        default_field(p, "protocol", json!("TCP"));
    }
}

/// Pod spec defaults (kube-apiserver's defaulting of a PodSpec).
pub fn pod_spec_defaults(spec: &mut Value) {
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            container_defaults(c);
        }
    }
}

/// The ServiceAccount admission plugin: default the ServiceAccount, require it to
/// exist, and mount a projected token volume unless automounting is off.
fn service_account(store: &Store, ns: &str, pod: &mut Value) -> ApiResult<()> {
    let name = meta::name(pod).to_string();
    let spec = &mut pod["spec"];
    let sa_name = match spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => spec["serviceAccount"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string(),
    };
    spec["serviceAccountName"] = json!(sa_name);
    spec["serviceAccount"] = json!(sa_name);
    let sa = store
        .objects
        .get(&core_key("serviceaccounts", ns, &sa_name))
        .ok_or_else(|| {
            ApiError::forbidden(
                "",
                "pods",
                &name,
                &format!("error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"),
            )
        })?;
    let automount = spec["automountServiceAccountToken"]
        .as_bool()
        .or(sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    let mounted = ["containers", "initContainers"].iter().any(|l| {
        spec[*l].as_array().into_iter().flatten().any(|c| {
            c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == TOKEN_MOUNT)
        })
    });
    if !automount || mounted {
        return Ok(());
    }
    let volume = format!("kube-api-access-{}", meta::random_suffix());
    let sources = json!([
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": ROOT_CA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]);
    let v = json!({"name": volume, "projected": {"defaultMode": 420, "sources": sources}});
    match spec["volumes"].as_array_mut() {
        Some(vs) => vs.push(v),
        None => spec["volumes"] = json!([v]),
    }
    let mount = json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT});
    for list in ["containers", "initContainers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            match c["volumeMounts"].as_array_mut() {
                Some(ms) => ms.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
        }
    }
    Ok(())
}

/// A Job's generated selector and pod labels, and its spec defaults.
fn job_defaults(job: &mut Value) {
    let uid = meta::uid(job).to_string();
    let name = meta::name(job).to_string();
    let spec = &mut job["spec"];
    default_field(spec, "parallelism", json!(1));
    default_field(spec, "completions", json!(1));
    default_field(spec, "backoffLimit", json!(6));
    default_field(spec, "completionMode", json!("NonIndexed"));
    default_field(spec, "suspend", json!(false));
    default_field(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    if spec["manualSelector"] != true {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        let labels = &mut spec["template"]["metadata"]["labels"];
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            labels[k] = json!(v);
        }
    }
    pod_spec_defaults(&mut spec["template"]["spec"]);
}

/// Admission on create, after the server filled uid and name.
pub fn on_create(store: &Store, group: &str, plural: &str, obj: &mut Value) -> ApiResult<()> {
    match (group, plural) {
        ("", "pods") => {
            pod_spec_defaults(&mut obj["spec"]);
            let ns = meta::namespace(obj).to_string();
            service_account(store, &ns, obj)
        }
        ("batch", "jobs") => {
            job_defaults(obj);
            Ok(())
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            pod_spec_defaults(&mut obj["spec"]["template"]["spec"]);
            if group == "apps" && plural == "deployments" {
                let spec = &mut obj["spec"];
                default_field(spec, "replicas", json!(1));
                default_field(spec, "revisionHistoryLimit", json!(10));
                default_field(spec, "progressDeadlineSeconds", json!(600));
                default_field(&mut spec["strategy"], "type", json!("RollingUpdate"));
                if spec["strategy"]["type"] == "RollingUpdate" {
                    let ru = &mut spec["strategy"]["rollingUpdate"];
                    default_field(ru, "maxSurge", json!("25%"));
                    default_field(ru, "maxUnavailable", json!("25%"));
                }
            } else if plural == "replicasets" {
                default_field(&mut obj["spec"], "replicas", json!(1));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
