//! Reading what a pod refers to through the API (ConfigMaps, Secrets,
//! ServiceAccount tokens), and the downward API fields.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value, json};

/// Fetches referenced objects once per use and answers downward API fields.
pub struct Sources<'a> {
    pub client: &'a kube::Client,
    pub pod: &'a Value,
    pub pod_ip: String,
    pub host_ip: String,
    configmaps: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

fn ns(pod: &Value) -> String {
    pod["metadata"]["namespace"].as_str().unwrap_or("").to_string()
}

impl<'a> Sources<'a> {
    pub fn new(client: &'a kube::Client, pod: &'a Value, pod_ip: &str, host_ip: &str) -> Self {
        Sources {
            client,
            pod,
            pod_ip: pod_ip.into(),
            host_ip: host_ip.into(),
            configmaps: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// A ConfigMap's data and binaryData, None when it does not exist.
    pub async fn configmap(&mut self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        if let Some(c) = self.configmaps.get(name) {
            return Ok(c.clone());
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns(self.pod));
        let cm = api
            .get_opt(name)
            .await
            .map_err(|e| format!("reading configmap {name:?}: {e}"))?;
        let data = cm.map(|cm| {
            let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (k, v) in cm.data.unwrap_or_default() {
                out.insert(k, v.into_bytes());
            }
            for (k, v) in cm.binary_data.unwrap_or_default() {
                out.insert(k, v.0);
            }
            out
        });
        self.configmaps.insert(name.to_string(), data.clone());
        Ok(data)
    }

    pub async fn secret(&mut self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        if let Some(s) = self.secrets.get(name) {
            return Ok(s.clone());
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns(self.pod));
        let s = api
            .get_opt(name)
            .await
            .map_err(|e| format!("reading secret {name:?}: {e}"))?;
        let data = s.map(|s| {
            let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (k, v) in s.data.unwrap_or_default() {
                out.insert(k, v.0);
            }
            for (k, v) in s.string_data.unwrap_or_default() {
                out.insert(k, v.into_bytes());
            }
            out
        });
        self.secrets.insert(name.to_string(), data.clone());
        Ok(data)
    }

    /// One key of a ConfigMap or Secret (`kind` "configmap" or "secret"); None when
    /// optional and missing.
    pub async fn key(&mut self, kind: &str, selector: &Value) -> Result<Option<Vec<u8>>, String> {
        let name = selector["name"].as_str().unwrap_or("");
        let key = selector["key"].as_str().unwrap_or("");
        let optional = selector["optional"].as_bool().unwrap_or(false);
        let data = if kind == "secret" {
            self.secret(name).await?
        } else {
            self.configmap(name).await?
        };
        match data {
            None if optional => Ok(None),
            None => Err(format!("{kind} {name:?} not found")),
            Some(d) => match d.get(key) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(format!("couldn't find key {key} in {kind} {}/{name}", ns(self.pod))),
            },
        }
    }

    /// A downward API `fieldRef.fieldPath`.
    pub fn field(&self, path: &str) -> Result<String, String> {
        let m = &self.pod["metadata"];
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let map = |v: &Value| {
            let mut lines: Vec<String> = v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", json!(v.as_str().unwrap_or(""))))
                .collect();
            lines.sort();
            lines.join("\n")
        };
        let indexed = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix("['"))
                .and_then(|r| r.strip_suffix("']"))
                .map(String::from)
        };
        Ok(match path {
            "metadata.name" => s(&m["name"]),
            "metadata.namespace" => s(&m["namespace"]),
            "metadata.uid" => s(&m["uid"]),
            "metadata.labels" => map(&m["labels"]),
            "metadata.annotations" => map(&m["annotations"]),
            "spec.nodeName" => s(&self.pod["spec"]["nodeName"]),
            "spec.serviceAccountName" => s(&self.pod["spec"]["serviceAccountName"]),
            "status.podIP" | "status.podIPs" => self.pod_ip.clone(),
            "status.hostIP" | "status.hostIPs" => self.host_ip.clone(),
            p => {
                if let Some(k) = indexed("metadata.labels") {
                    s(&m["labels"][k])
                } else if let Some(k) = indexed("metadata.annotations") {
                    s(&m["annotations"][k])
                } else {
                    return Err(format!("unsupported downward API field {p:?}"));
                }
            }
        })
    }

    /// A bound token for the pod's ServiceAccount (TokenRequest API).
    pub async fn token(&self, audience: Option<&str>, expiration: i64) -> Result<String, String> {
        let sa = self.pod["spec"]["serviceAccountName"].as_str().unwrap_or("default");
        let mut spec = json!({
            "expirationSeconds": expiration,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                               "name": self.pod["metadata"]["name"], "uid": self.pod["metadata"]["uid"]},
        });
        if let Some(a) = audience {
            spec["audiences"] = json!([a]);
        }
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
        let url = format!("/api/v1/namespaces/{}/serviceaccounts/{sa}/token", ns(self.pod));
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let req = axum::http::Request::post(url)
            .header("content-type", "application/json")
            .body(bytes)
            .map_err(|e| e.to_string())?;
        let resp: Value = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("requesting a token for service account {sa:?}: {e}"))?;
        resp["status"]["token"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| "the TokenRequest answer has no token".to_string())
    }
}
