//! A container's environment as the kubelet builds it: the image's ENV, the
//! service links of the namespace and the `kubernetes` Service, `envFrom`,
//! then `env` with `$(VAR)` references expanded.

use std::collections::BTreeMap;

use serde_json::Value;

use super::images::{self, ImageMapping};
use super::sources::Sources;

/// `$(VAR)` becomes the value of an earlier variable; `$$(VAR)` stays `$(VAR)` literally.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// The variables a container gets, or why it cannot start (CreateContainerConfigError).
pub async fn build(
    src: &mut Sources<'_>,
    container: &Value,
    image: &ImageMapping,
    service_links: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut vars: BTreeMap<String, String> = image.env.clone();
    vars.insert("PATH".into(), images::path_env(image));
    vars.insert(
        "HOSTNAME".into(),
        src.pod["metadata"]["name"].as_str().unwrap_or("").into(),
    );
    vars.insert("HOME".into(), "/root".into());
    vars.extend(service_links.clone());
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        let (kind, r) = if from["secretRef"].is_object() {
            ("secret", &from["secretRef"])
        } else {
            ("configmap", &from["configMapRef"])
        };
        let name = r["name"].as_str().unwrap_or("");
        let data = if kind == "secret" {
            src.secret(name).await?
        } else {
            src.configmap(name).await?
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    vars.insert(format!("{prefix}{k}"), text(v));
                }
            }
            None if r["optional"].as_bool().unwrap_or(false) => {}
            None => return Err(format!("{kind} {name:?} not found")),
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or("").to_string();
        let from = &e["valueFrom"];
        let value = if from.is_object() {
            let v = if from["secretKeyRef"].is_object() {
                src.key("secret", &from["secretKeyRef"]).await?.map(text)
            } else if from["configMapKeyRef"].is_object() {
                src.key("configmap", &from["configMapKeyRef"]).await?.map(text)
            } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
                Some(src.field(path)?)
            } else if from["resourceFieldRef"].is_object() {
                Some(resource_field(container, &from["resourceFieldRef"]))
            } else {
                None
            };
            match v {
                Some(v) => v,
                None => continue,
            }
        } else {
            expand(e["value"].as_str().unwrap_or(""), &vars)
        };
        vars.insert(name, value);
    }
    Ok(vars)
}

/// `resourceFieldRef`: the container's limit or request as written (1 when unset, like
/// the node's allocatable would be read here).
fn resource_field(container: &Value, r: &Value) -> String {
    let res = r["resource"].as_str().unwrap_or("");
    let (kind, name) = res.split_once('.').unwrap_or(("limits", res));
    container["resources"][kind][name]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| "1".into())
}

/// Docker-link style variables for a Service (`{NAME}_SERVICE_HOST`, `_PORT`, ...).
pub fn service_link(vars: &mut BTreeMap<String, String>, name: &str, ip: &str, ports: &[Value]) {
    let prefix = name.to_uppercase().replace('-', "_");
    let Some(first) = ports.first() else { return };
    vars.insert(format!("{prefix}_SERVICE_HOST"), ip.into());
    vars.insert(format!("{prefix}_SERVICE_PORT"), first["port"].to_string());
    let proto = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
    vars.insert(
        format!("{prefix}_PORT"),
        format!("{}://{ip}:{}", proto(first).to_lowercase(), first["port"]),
    );
    for p in ports {
        if let Some(pname) = p["name"].as_str().filter(|n| !n.is_empty()) {
            vars.insert(
                format!("{prefix}_SERVICE_PORT_{}", pname.to_uppercase().replace('-', "_")),
                p["port"].to_string(),
            );
        }
        let base = format!("{prefix}_PORT_{}_{}", p["port"], proto(p));
        vars.insert(
            base.clone(),
            format!("{}://{ip}:{}", proto(p).to_lowercase(), p["port"]),
        );
        vars.insert(format!("{base}_PROTO"), proto(p).to_lowercase());
        vars.insert(format!("{base}_PORT"), p["port"].to_string());
        vars.insert(format!("{base}_ADDR"), ip.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_like_the_kubelet() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
    }
}
