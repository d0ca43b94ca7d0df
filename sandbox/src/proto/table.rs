//! The message table (`messages.txt`, generated from the Kubernetes API's
//! generated.proto and types.go by `sandbox/scripts/gen_proto_table.py`):
//! field numbers, JSON names, types, inline embedding and pointer-ness.

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("messages.txt");

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Str,
    Bytes,
    Int,
    Bool,
    Double,
    Msg(String),
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    /// None: embedded inline (Go `json:",inline"`), its fields merge into the parent.
    pub json: Option<String>,
    pub kind: Kind,
    pub repeated: bool,
    pub map: bool,
    /// A Go pointer: a zero value on the wire was set on purpose and is kept.
    pub pointer: bool,
}

pub type Message = HashMap<u64, FieldDef>;

fn kind(t: &str) -> Kind {
    match t {
        "s" => Kind::Str,
        "b" => Kind::Bytes,
        "i" => Kind::Int,
        "z" => Kind::Bool,
        "d" => Kind::Double,
        other => Kind::Msg(other.to_string()),
    }
}

fn parse() -> HashMap<String, Message> {
    let mut out: HashMap<String, Message> = HashMap::new();
    let mut current: Option<String> = None;
    for line in TABLE.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["M", name] => {
                current = Some(name.to_string());
                out.entry(name.to_string()).or_default();
            }
            ["F", number, json, typ, flags] => {
                let (Some(msg), Ok(number)) = (&current, number.parse::<u64>()) else {
                    continue;
                };
                let (map, typ) = match typ.strip_prefix("map:") {
                    Some(v) => (true, v),
                    None => (false, *typ),
                };
                let def = FieldDef {
                    json: (*json != "-").then(|| json.to_string()),
                    kind: kind(typ),
                    repeated: flags.contains('r'),
                    map,
                    pointer: flags.contains('p'),
                };
                out.entry(msg.clone()).or_default().insert(number, def);
            }
            _ => {}
        }
    }
    out
}

pub fn messages() -> &'static HashMap<String, Message> {
    static TABLE: OnceLock<HashMap<String, Message>> = OnceLock::new();
    TABLE.get_or_init(parse)
}
