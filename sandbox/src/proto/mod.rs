//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl's
//! and helm's typed clients send them: the `k8s\0` envelope around a
//! `runtime.Unknown`, whose raw bytes are decoded into JSON through the field
//! table of every built-in kind the sandbox serves. Responses are always JSON,
//! which those clients accept.

mod decode;
mod table;
mod wire;

use serde_json::{Map, Value, json};

use wire::Field;

const MAGIC: &[u8] = b"k8s\0";
const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

#[derive(Debug, thiserror::Error)]
pub enum ProtoDecodeError {
    #[error("not a Kubernetes protobuf envelope")]
    NoEnvelope,
    #[error("truncated protobuf message")]
    Truncated,
    #[error("protobuf wire type {0} is not supported")]
    WireType(u64),
    #[error("protobuf body of kind {0} is not supported by kube-sandbox; send JSON")]
    UnsupportedKind(String),
}

/// The protobuf message of a kind: `k8s.io.api.<package>.<version>.<Kind>`,
/// or meta/v1 for the options kinds (DeleteOptions, ...).
fn message_name(api_version: &str, kind: &str) -> Option<String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let package = match group {
        "" => "core",
        "meta.k8s.io" => return Some(format!("{META}.{kind}")),
        g => g.split('.').next().unwrap_or(g),
    };
    let messages = table::messages();
    [
        format!("k8s.io.api.{package}.{version}.{kind}"),
        format!("{META}.{kind}"),
    ]
    .into_iter()
    .find(|m| messages.contains_key(m))
}

/// Decode a `k8s\0`-prefixed protobuf body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ProtoDecodeError> {
    let inner = body.strip_prefix(MAGIC).ok_or(ProtoDecodeError::NoEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in wire::fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in wire::fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(x)) => api_version = String::from_utf8_lossy(x).into_owned(),
                        (2, Field::Bytes(x)) => kind = String::from_utf8_lossy(x).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let message = message_name(&api_version, &kind).ok_or_else(|| ProtoDecodeError::UnsupportedKind(kind.clone()))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    obj.extend(decode::message(&message, raw)?);
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests;
