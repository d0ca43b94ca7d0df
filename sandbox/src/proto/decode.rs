//! Table-driven decoding of one protobuf message into JSON, with the
//! apimachinery types whose JSON form differs from their message (Time,
//! Quantity, IntOrString, RawExtension, FieldsV1, Duration).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::ProtoDecodeError;
use super::table::{self, FieldDef, Kind};
use super::wire::{self, Field};

const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn varints(b: &[u8]) -> Result<Vec<i64>, ProtoDecodeError> {
    let mut r = wire::Reader(b);
    let mut out = vec![];
    while !r.0.is_empty() {
        out.push(r.varint()? as i64);
    }
    Ok(out)
}

/// `{seconds, nanos}` as RFC 3339 (seconds, or microseconds for MicroTime); zero is null.
fn time(b: &[u8], micro: bool) -> Result<Value, ProtoDecodeError> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for (n, f) in wire::fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => secs = v as i64,
            (2, Field::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    if secs == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let format = if micro {
        chrono::SecondsFormat::Micros
    } else {
        chrono::SecondsFormat::Secs
    };
    Ok(
        chrono::DateTime::from_timestamp(secs, u32::try_from(nanos).unwrap_or(0))
            .map(|t| json!(t.to_rfc3339_opts(format, true)))
            .unwrap_or(Value::Null),
    )
}

/// Nanoseconds as Go's `time.Duration.String()` for whole seconds and above ("1h2m3s").
fn duration(b: &[u8]) -> Result<Value, ProtoDecodeError> {
    let mut nanos = 0i64;
    for (n, f) in wire::fields(b)? {
        if let (1, Field::Varint(v)) = (n, f) {
            nanos = v as i64;
        }
    }
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let s = if frac == 0 {
        format!("{s}")
    } else {
        format!("{s}.{}", format!("{frac:09}").trim_end_matches('0'))
    };
    Ok(json!(match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }))
}

fn int_or_string(b: &[u8]) -> Result<Value, ProtoDecodeError> {
    let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
    for (n, f) in wire::fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => is_string = v == 1,
            (2, Field::Varint(v)) => int = i64::from(v as i32),
            (3, Field::Bytes(x)) => string = String::from_utf8_lossy(x).into_owned(),
            _ => {}
        }
    }
    Ok(if is_string { json!(string) } else { json!(int) })
}

/// A message holding raw JSON (or a nested protobuf object) in field 1.
fn raw_json(b: &[u8]) -> Result<Value, ProtoDecodeError> {
    for (n, f) in wire::fields(b)? {
        if let (1, Field::Bytes(x)) = (n, f) {
            if x.starts_with(b"k8s\0") {
                return super::decode(x);
            }
            return Ok(serde_json::from_slice(x).unwrap_or_else(|_| text(x)));
        }
    }
    Ok(Value::Null)
}

/// One length-delimited value of a message type.
fn sub_message(name: &str, b: &[u8]) -> Result<Value, ProtoDecodeError> {
    match name {
        TIME => time(b, false),
        MICRO_TIME => time(b, true),
        DURATION => duration(b),
        QUANTITY => Ok(wire::fields(b)?
            .into_iter()
            .find_map(|(n, f)| match (n, f) {
                (1, Field::Bytes(x)) => Some(text(x)),
                _ => None,
            })
            .unwrap_or_else(|| json!("0"))),
        INT_OR_STRING => int_or_string(b),
        RAW_EXTENSION | FIELDS_V1 => raw_json(b),
        _ => Ok(Value::Object(message(name, b)?)),
    }
}

/// A scalar or message value from the wire, per the field's declared kind.
fn value(kind: &Kind, f: &Field<'_>) -> Result<Value, ProtoDecodeError> {
    Ok(match (kind, f) {
        (Kind::Str, Field::Bytes(x)) => text(x),
        (Kind::Bytes, Field::Bytes(x)) => json!(base64::engine::general_purpose::STANDARD.encode(x)),
        (Kind::Int, Field::Varint(v)) => json!(*v as i64),
        (Kind::Bool, Field::Varint(v)) => json!(*v != 0),
        (Kind::Double, Field::Fixed64(v)) => json!(f64::from_bits(*v)),
        (Kind::Double, Field::Fixed32(v)) => json!(f32::from_bits(*v)),
        (Kind::Msg(name), Field::Bytes(x)) => sub_message(name, x)?,
        _ => Value::Null,
    })
}

/// What Go's JSON encoder leaves out of a non-pointer field: "", 0, false.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn map_entry(def: &FieldDef, b: &[u8], into: &mut Map<String, Value>) -> Result<(), ProtoDecodeError> {
    let (mut key, mut val) = (String::new(), None);
    for (n, f) in wire::fields(b)? {
        match n {
            1 => {
                if let Field::Bytes(x) = f {
                    key = String::from_utf8_lossy(x).into_owned();
                }
            }
            2 => val = Some(value(&def.kind, &f)?),
            _ => {}
        }
    }
    let val = val.unwrap_or_else(|| match &def.kind {
        Kind::Int | Kind::Double => json!(0),
        Kind::Bool => json!(false),
        Kind::Msg(_) => json!({}),
        _ => json!(""),
    });
    into.insert(key, val);
    Ok(())
}

/// Decode message `name` into a JSON object; fields the table does not know are skipped.
pub fn message(name: &str, b: &[u8]) -> Result<Map<String, Value>, ProtoDecodeError> {
    let empty = table::Message::new();
    let defs = table::messages().get(name).unwrap_or(&empty);
    let mut out = Map::new();
    for (n, f) in wire::fields(b)? {
        let Some(def) = defs.get(&n) else { continue };
        let Some(json_name) = &def.json else {
            // Inline embedding: the nested message's fields belong to this object.
            if let (Kind::Msg(inner), Field::Bytes(x)) = (&def.kind, &f) {
                out.extend(message(inner, x)?);
            }
            continue;
        };
        if def.map {
            if let Field::Bytes(x) = f {
                let entry = out.entry(json_name.clone()).or_insert_with(|| json!({}));
                if let Some(m) = entry.as_object_mut() {
                    map_entry(def, x, m)?;
                }
            }
            continue;
        }
        if def.repeated {
            let items = match (&def.kind, &f) {
                // Packed repeated numbers.
                (Kind::Int, Field::Bytes(x)) => varints(x)?.into_iter().map(|v| json!(v)).collect(),
                (Kind::Bool, Field::Bytes(x)) => varints(x)?.into_iter().map(|v| json!(v != 0)).collect(),
                _ => vec![value(&def.kind, &f)?],
            };
            let entry = out.entry(json_name.clone()).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.extend(items);
            }
            continue;
        }
        let v = value(&def.kind, &f)?;
        let scalar = !matches!(def.kind, Kind::Msg(_)) || v.is_null();
        if scalar && !def.pointer && is_zero(&v) {
            continue;
        }
        if v.is_null() {
            continue;
        }
        out.insert(json_name.clone(), v);
    }
    Ok(out)
}
