//! Decoding of the Kubernetes protobuf envelope for the few built-in kinds
//! that client-go typed clients send as protobuf (helm's release Secrets,
//! `kubectl create secret|configmap|namespace|serviceaccount`), plus
//! DeleteOptions. Responses are always JSON, which those clients accept.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

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

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtoDecodeError> {
        let mut out = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or(ProtoDecodeError::Truncated)?;
            self.0 = rest;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoDecodeError::Truncated)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtoDecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = self.varint()? as usize;
                if self.0.len() < len {
                    return Err(ProtoDecodeError::Truncated);
                }
                let (b, rest) = self.0.split_at(len);
                self.0 = rest;
                Field::Bytes(b)
            }
            1 | 5 => {
                let n = if tag & 7 == 1 { 8 } else { 4 };
                if self.0.len() < n {
                    return Err(ProtoDecodeError::Truncated);
                }
                self.0 = &self.0[n..];
                Field::Fixed
            }
            w => return Err(ProtoDecodeError::WireType(w)),
        };
        Ok(Some((tag >> 3, field)))
    }
}

fn fields(b: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ProtoDecodeError> {
    let mut r = Reader(b);
    let mut out = vec![];
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A map<string, string|bytes> entry list into a JSON object (bytes base64-encoded).
fn map_entry(b: &[u8], bytes_value: bool, into: &mut Map<String, Value>) -> Result<(), ProtoDecodeError> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(b)? {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = String::from_utf8_lossy(x).into_owned(),
                2 if bytes_value => v = json!(base64::engine::general_purpose::STANDARD.encode(x)),
                2 => v = text(x),
                _ => {}
            }
        }
    }
    into.insert(k, v);
    Ok(())
}

fn time(b: &[u8]) -> Result<Value, ProtoDecodeError> {
    let mut secs = 0i64;
    for (n, f) in fields(b)? {
        if let (1, Field::Varint(v)) = (n, f) {
            secs = v as i64;
        }
    }
    Ok(chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null))
}

fn owner_ref(b: &[u8]) -> Result<Value, ProtoDecodeError> {
    let mut o = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => drop(o.insert("kind".into(), text(x))),
            (3, Field::Bytes(x)) => drop(o.insert("name".into(), text(x))),
            (4, Field::Bytes(x)) => drop(o.insert("uid".into(), text(x))),
            (5, Field::Bytes(x)) => drop(o.insert("apiVersion".into(), text(x))),
            (6, Field::Varint(v)) => drop(o.insert("controller".into(), json!(v != 0))),
            (7, Field::Varint(v)) => drop(o.insert("blockOwnerDeletion".into(), json!(v != 0))),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn object_meta(b: &[u8]) -> Result<Value, ProtoDecodeError> {
    let mut m = Map::new();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    let (mut owners, mut finalizers) = (vec![], vec![]);
    let names = BTreeMap::from([
        (1, "name"),
        (2, "generateName"),
        (3, "namespace"),
        (5, "uid"),
        (6, "resourceVersion"),
    ]);
    for (n, f) in fields(b)? {
        match (n, f) {
            (n, Field::Bytes(x)) if names.contains_key(&n) && !x.is_empty() => {
                m.insert(names[&n].into(), text(x));
            }
            (7, Field::Varint(v)) => drop(m.insert("generation".into(), json!(v as i64))),
            (8, Field::Bytes(x)) => drop(m.insert("creationTimestamp".into(), time(x)?)),
            (11, Field::Bytes(x)) => map_entry(x, false, &mut labels)?,
            (12, Field::Bytes(x)) => map_entry(x, false, &mut annotations)?,
            (13, Field::Bytes(x)) => owners.push(owner_ref(x)?),
            (14, Field::Bytes(x)) => finalizers.push(text(x)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), Value::Array(owners));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(m))
}

fn secret(b: &[u8], obj: &mut Map<String, Value>) -> Result<(), ProtoDecodeError> {
    let (mut data, mut string_data) = (Map::new(), Map::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => drop(obj.insert("metadata".into(), object_meta(x)?)),
            (2, Field::Bytes(x)) => map_entry(x, true, &mut data)?,
            (3, Field::Bytes(x)) => drop(obj.insert("type".into(), text(x))),
            (4, Field::Bytes(x)) => map_entry(x, false, &mut string_data)?,
            (5, Field::Varint(v)) => drop(obj.insert("immutable".into(), json!(v != 0))),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !string_data.is_empty() {
        obj.insert("stringData".into(), Value::Object(string_data));
    }
    Ok(())
}

fn config_map(b: &[u8], obj: &mut Map<String, Value>) -> Result<(), ProtoDecodeError> {
    let (mut data, mut binary) = (Map::new(), Map::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => drop(obj.insert("metadata".into(), object_meta(x)?)),
            (2, Field::Bytes(x)) => map_entry(x, false, &mut data)?,
            (3, Field::Bytes(x)) => map_entry(x, true, &mut binary)?,
            (4, Field::Varint(v)) => drop(obj.insert("immutable".into(), json!(v != 0))),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    Ok(())
}

/// Kinds with only metadata (and fields kube-sandbox does not need to read from protobuf).
fn meta_only(b: &[u8], obj: &mut Map<String, Value>) -> Result<(), ProtoDecodeError> {
    for (n, f) in fields(b)? {
        if let (1, Field::Bytes(x)) = (n, f) {
            obj.insert("metadata".into(), object_meta(x)?);
        }
    }
    Ok(())
}

fn delete_options(b: &[u8], obj: &mut Map<String, Value>) -> Result<(), ProtoDecodeError> {
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => drop(obj.insert("gracePeriodSeconds".into(), json!(v as i64))),
            (2, Field::Bytes(x)) => {
                let mut p = Map::new();
                for (n, f) in fields(x)? {
                    match (n, f) {
                        (1, Field::Bytes(y)) => drop(p.insert("uid".into(), text(y))),
                        (2, Field::Bytes(y)) => drop(p.insert("resourceVersion".into(), text(y))),
                        _ => {}
                    }
                }
                obj.insert("preconditions".into(), Value::Object(p));
            }
            (3, Field::Varint(v)) => drop(obj.insert("orphanDependents".into(), json!(v != 0))),
            (4, Field::Bytes(x)) => drop(obj.insert("propagationPolicy".into(), text(x))),
            (5, Field::Bytes(x)) => obj
                .entry("dryRun")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .into_iter()
                .for_each(|a| a.push(text(x))),
            _ => {}
        }
    }
    Ok(())
}

/// Decode a `k8s\0`-prefixed protobuf body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ProtoDecodeError> {
    let inner = body.strip_prefix(MAGIC).ok_or(ProtoDecodeError::NoEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
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
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    match kind.as_str() {
        "Secret" => secret(raw, &mut obj)?,
        "ConfigMap" => config_map(raw, &mut obj)?,
        "Namespace" | "ServiceAccount" => meta_only(raw, &mut obj)?,
        "DeleteOptions" => delete_options(raw, &mut obj)?,
        other => return Err(ProtoDecodeError::UnsupportedKind(other.to_string())),
    }
    Ok(Value::Object(obj))
}
