//! Sets of field paths in the FieldsV1 encoding of `managedFields`:
//! `{"f:spec":{"f:replicas":{}}}`, list items as `k:{"name":"app"}` (map
//! lists) or `v:"value"` (sets), and `.` marking a node that is itself a
//! member as well as having members below it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One path element as written in FieldsV1 (`f:name`, `k:{...}`, `v:...`, `i:0`).
pub type Element = String;

/// A tree of paths; `member` says the path ending at this node is in the set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<Element, FieldSet>,
}

impl FieldSet {
    /// Decode a `fieldsV1` object. Unknown shapes decode as empty: a corrupt
    /// entry must not take the write down with it.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(map) = v.as_object() else { return set };
        for (key, child) in map {
            if key == "." {
                set.member = true;
                continue;
            }
            let mut node = FieldSet::from_fields_v1(child);
            if child.as_object().is_some_and(Map::is_empty) {
                node.member = true;
            }
            set.children.insert(key.clone(), node);
        }
        set
    }

    /// Encode as a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        for (key, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            let mut encoded = child.to_fields_v1();
            if child.member
                && !child.children.is_empty()
                && let Value::Object(m) = &mut encoded
                && !m.is_empty()
            {
                m.insert(".".to_string(), Value::Object(Map::new()));
            }
            out.insert(key.clone(), encoded);
        }
        Value::Object(out)
    }

    /// Add the path `path` (relative to this node) as a member.
    pub fn insert(&mut self, path: &[Element]) {
        let mut node = self;
        for e in path {
            node = node.children.entry(e.clone()).or_default();
        }
        node.member = true;
    }

    /// The node at `path`, if the tree has one.
    pub fn get(&self, path: &[Element]) -> Option<&FieldSet> {
        let mut node = self;
        for e in path {
            node = node.children.get(e)?;
        }
        Some(node)
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[Element]) -> bool {
        self.get(path).is_some_and(|n| n.member)
    }

    /// Whether `path` or anything below it is a member.
    pub fn has_within(&self, path: &[Element]) -> bool {
        self.get(path).is_some_and(|n| !n.is_empty())
    }

    /// No members at all.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// The same members (ignoring empty branches).
    pub fn same_members(&self, other: &FieldSet) -> bool {
        self.difference(other).is_empty() && other.difference(self).is_empty()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out.compact()
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            out.children.insert(k.clone(), d);
        }
        out.compact()
    }

    /// Members of both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                out.children.insert(k.clone(), v.intersection(o));
            }
        }
        out.compact()
    }

    /// Every member path, parents before children.
    pub fn members(&self) -> Vec<Vec<Element>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<Element>, out: &mut Vec<Vec<Element>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Drop branches without members.
    fn compact(mut self) -> FieldSet {
        self.children.retain(|_, v| !v.is_empty());
        self
    }
}

/// A path as structured-merge-diff prints it in conflicts:
/// `.spec.containers[name="app"].image`, `.metadata.finalizers[="x"]`.
pub fn render_path(path: &[Element]) -> String {
    let mut out = String::new();
    for e in path {
        if let Some(name) = e.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = e.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = e.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else if let Some(index) = e.strip_prefix("i:") {
            out.push_str(&format!("[{index}]"));
        } else {
            out.push_str(e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_dot_members() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}});
        let set = FieldSet::from_fields_v1(&v);
        assert!(set.has(&["f:metadata".into(), "f:labels".into()]));
        assert!(!set.has(&["f:metadata".into()]));
        assert!(set.has(&[
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"app\"}".into(),
            "f:image".into()
        ]));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn set_algebra() {
        let a = FieldSet::from_fields_v1(&json!({"f:spec": {"f:a": {}, "f:b": {}}}));
        let b = FieldSet::from_fields_v1(&json!({"f:spec": {"f:b": {}, "f:c": {}}}));
        assert_eq!(a.difference(&b).to_fields_v1(), json!({"f:spec": {"f:a": {}}}));
        assert_eq!(a.intersection(&b).to_fields_v1(), json!({"f:spec": {"f:b": {}}}));
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {}}})
        );
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn paths_render_like_structured_merge_diff() {
        let path: Vec<Element> = vec![
            "f:spec".into(),
            "f:ports".into(),
            "k:{\"port\":80,\"protocol\":\"TCP\"}".into(),
            "f:name".into(),
        ];
        assert_eq!(render_path(&path), ".spec.ports[port=80,protocol=\"TCP\"].name");
        assert_eq!(
            render_path(&["f:metadata".into(), "f:finalizers".into(), "v:\"x\"".into()]),
            ".metadata.finalizers[=\"x\"]"
        );
    }
}
