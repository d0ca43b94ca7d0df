//! Type-aware walks over objects for server-side apply: which maps are
//! atomic or granular and which lists are associative, from the CRD schema
//! when there is one and from the built-in list keys otherwise.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::TypeHints;
use super::fieldset::{Element, FieldSet};
use crate::patch::keys::{ListKind, builtin_list_kind, item_key, schema_list_kind};

/// Built-in maps owned as a whole (`+mapType=atomic` / `+structType=atomic`).
const ATOMIC_BUILTIN_MAPS: &[&str] = &[
    "selector",
    "nodeSelector",
    "roleRef",
    "secretKeyRef",
    "configMapKeyRef",
    "fieldRef",
    "resourceFieldRef",
];
/// Built-in maps whose keys are data, not declared fields.
const GRANULAR_BUILTIN_MAPS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "stringData",
    "binaryData",
    "limits",
    "requests",
    "capacity",
    "allocatable",
];

/// Where a walk is: field names so far (list items skipped) and the schema node.
#[derive(Clone)]
pub struct Ctx<'a> {
    names: Vec<String>,
    schema: Option<&'a Value>,
}

/// Additions, changes and removals between two objects, as paths.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

/// The typing rules for one kind.
pub struct Typer<'a> {
    kind: String,
    hints: TypeHints<'a>,
}

impl<'a> Typer<'a> {
    pub fn new(kind: &str, hints: TypeHints<'a>) -> Self {
        Typer {
            kind: kind.to_string(),
            hints,
        }
    }

    pub fn root(&self) -> Ctx<'a> {
        Ctx {
            names: Vec::new(),
            schema: self.hints.schema,
        }
    }

    fn field_ctx(&self, ctx: &Ctx<'a>, key: &str) -> Ctx<'a> {
        let mut names = ctx.names.clone();
        names.push(key.to_string());
        // Object metadata is typed by ObjectMeta, not by the CRD schema's stub `metadata: {type: object}`.
        let embedded = ctx.schema.is_some_and(|s| s["x-kubernetes-embedded-resource"] == true);
        let is_object_meta = key == "metadata" && (ctx.names.is_empty() || embedded);
        let schema = ctx.schema.filter(|_| !is_object_meta).and_then(|s| {
            s["properties"]
                .get(key)
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        });
        Ctx { names, schema }
    }

    fn item_ctx(&self, ctx: &Ctx<'a>) -> Ctx<'a> {
        Ctx {
            names: ctx.names.clone(),
            schema: ctx.schema.map(|s| &s["items"]).filter(|i| i.is_object()),
        }
    }

    fn last_name<'c>(&self, ctx: &'c Ctx<'a>) -> &'c str {
        ctx.names.last().map_or("", String::as_str)
    }

    fn atomic_map(&self, ctx: &Ctx<'a>) -> bool {
        match ctx.schema {
            Some(s) => s["x-kubernetes-map-type"] == "atomic",
            None => ctx.names.len() > 1 && ATOMIC_BUILTIN_MAPS.contains(&self.last_name(ctx)),
        }
    }

    /// Keys are data (so each entry is owned), not declared struct fields.
    fn granular_map(&self, ctx: &Ctx<'a>) -> bool {
        match ctx.schema {
            Some(s) => s.get("properties").is_none() || s["additionalProperties"].is_object(),
            None => GRANULAR_BUILTIN_MAPS.contains(&self.last_name(ctx)),
        }
    }

    fn list_kind(&self, ctx: &Ctx<'a>) -> ListKind {
        if let Some(s) = ctx.schema {
            return schema_list_kind(s).unwrap_or(ListKind::Atomic);
        }
        let names: Vec<&str> = ctx.names.iter().map(String::as_str).collect();
        builtin_list_kind(&self.kind, &names)
    }

    /// A list item's path element.
    fn element(&self, kind: &ListKind, item: &Value, index: usize) -> Element {
        match kind {
            ListKind::Set => format!("v:{item}"),
            ListKind::Map(_) => match item_key(kind, item) {
                Some(key) => format!("k:{}", Value::Object(sorted(key))),
                None => format!("i:{index}"),
            },
            ListKind::Atomic => format!("i:{index}"),
        }
    }

    /// The set of fields a (partial) object specifies, as structured-merge-diff's `ToFieldSet`.
    pub fn field_set(&self, value: &Value) -> FieldSet {
        let mut out = FieldSet::default();
        self.collect_fields(value, &self.root(), &mut Vec::new(), &mut out);
        out
    }

    fn collect_fields(&self, value: &Value, ctx: &Ctx<'a>, path: &mut Vec<Element>, out: &mut FieldSet) {
        match value {
            Value::Object(map) if !self.atomic_map(ctx) || path.is_empty() => {
                let granular = self.granular_map(ctx);
                for (key, child) in map {
                    path.push(format!("f:{key}"));
                    self.collect_fields(child, &self.field_ctx(ctx, key), path, out);
                    if granular || child.is_null() || child.as_object().is_some_and(Map::is_empty) {
                        out.insert(path);
                    }
                    path.pop();
                }
            }
            Value::Array(items) => {
                let kind = self.list_kind(ctx);
                if kind == ListKind::Atomic {
                    out.insert(path);
                    return;
                }
                let item_ctx = self.item_ctx(ctx);
                for (i, item) in items.iter().enumerate() {
                    path.push(self.element(&kind, item, i));
                    self.collect_fields(item, &item_ctx, path, out);
                    out.insert(path);
                    path.pop();
                }
            }
            _ => out.insert(path),
        }
    }

    /// Compare two versions (structured-merge-diff's `Compare`). `None` is absent.
    pub fn compare(&self, old: Option<&Value>, new: Option<&Value>) -> Comparison {
        let mut c = Comparison::default();
        self.compare_at(old, new, &self.root(), &mut Vec::new(), &mut c);
        c
    }

    fn compare_at(
        &self,
        old: Option<&Value>,
        new: Option<&Value>,
        ctx: &Ctx<'a>,
        path: &mut Vec<Element>,
        c: &mut Comparison,
    ) {
        let walk_map = path.is_empty() || !self.atomic_map(ctx);
        let list_kind = self.list_kind(ctx);
        let walk_list = list_kind != ListKind::Atomic;
        fn descend_map(v: Option<&Value>, walk: bool) -> Option<&Map<String, Value>> {
            v.and_then(Value::as_object).filter(|_| walk)
        }
        fn descend_list(v: Option<&Value>, walk: bool) -> Option<&Vec<Value>> {
            v.and_then(Value::as_array).filter(|_| walk)
        }
        match (old, new) {
            (None, None) => return,
            (Some(o), Some(n)) => {
                let maps = descend_map(Some(o), walk_map).zip(descend_map(Some(n), walk_map));
                let lists = descend_list(Some(o), walk_list).zip(descend_list(Some(n), walk_list));
                if maps.is_none() && lists.is_none() {
                    if o != n {
                        c.modified.insert(path);
                    }
                    return;
                }
            }
            (None, Some(_)) => {
                if self.records_container(ctx, path, new) {
                    c.added.insert(path);
                }
            }
            (Some(_), None) => c.removed.insert(path),
        }
        let (om, nm) = (descend_map(old, walk_map), descend_map(new, walk_map));
        if om.is_some() || nm.is_some() {
            let keys: Vec<&String> = om
                .into_iter()
                .chain(nm)
                .flat_map(|m| m.keys())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for key in keys {
                path.push(format!("f:{key}"));
                let child = self.field_ctx(ctx, key);
                self.compare_at(
                    om.and_then(|m| m.get(key)),
                    nm.and_then(|m| m.get(key)),
                    &child,
                    path,
                    c,
                );
                path.pop();
            }
            return;
        }
        let (ol, nl) = (descend_list(old, walk_list), descend_list(new, walk_list));
        if ol.is_some() || nl.is_some() {
            let item_ctx = self.item_ctx(ctx);
            let index = |l: Option<&'_ Vec<Value>>| -> Vec<(Element, Value)> {
                l.into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, v)| (self.element(&list_kind, v, i), v.clone()))
                    .collect()
            };
            let (oi, ni) = (index(ol), index(nl));
            let mut seen = HashSet::new();
            for (e, _) in oi.iter().chain(ni.iter()) {
                if !seen.insert(e.clone()) {
                    continue;
                }
                let find = |items: &[(Element, Value)]| items.iter().find(|(k, _)| k == e).map(|(_, v)| v.clone());
                let (o, n) = (find(&oi), find(&ni));
                path.push(e.clone());
                self.compare_at(o.as_ref(), n.as_ref(), &item_ctx, path, c);
                path.pop();
            }
        }
    }

    /// Whether an added node itself is recorded (not only its leaves): leaves
    /// and list items always; maps when they are granular maps or belong to
    /// a custom resource (kube records `.` for them); built-in struct fields
    /// exist in Go's zero value, so kube does not see them as added.
    fn records_container(&self, ctx: &Ctx<'a>, path: &[Element], value: Option<&Value>) -> bool {
        let is_item = path.last().is_some_and(|e| !e.starts_with("f:"));
        match value {
            Some(Value::Object(_)) => {
                let is_metadata = path.len() == 1 && path[0] == "f:metadata";
                !path.is_empty()
                    && !is_metadata
                    && (is_item || self.hints.schema.is_some() || self.granular_map(ctx) || self.atomic_map(ctx))
            }
            _ => true,
        }
    }

    /// structured-merge-diff's `Merge`: `config` over `live`; associative
    /// lists merge item by item, everything atomic is replaced; a `null` in
    /// the config removes the field.
    pub fn merge(&self, live: &Value, config: &Value) -> Value {
        self.merge_at(live, config, &self.root(), true)
    }

    fn merge_at(&self, live: &Value, config: &Value, ctx: &Ctx<'a>, root: bool) -> Value {
        match (live, config) {
            (Value::Object(l), Value::Object(c)) if root || !self.atomic_map(ctx) => {
                let mut out = l.clone();
                for (key, cv) in c {
                    if cv.is_null() {
                        out.remove(key);
                        continue;
                    }
                    let merged = match l.get(key) {
                        Some(lv) => self.merge_at(lv, cv, &self.field_ctx(ctx, key), false),
                        None => cv.clone(),
                    };
                    out.insert(key.clone(), merged);
                }
                Value::Object(out)
            }
            (Value::Array(l), Value::Array(c)) => {
                let kind = self.list_kind(ctx);
                if kind == ListKind::Atomic {
                    return config.clone();
                }
                Value::Array(self.merge_list(l, c, &kind, &self.item_ctx(ctx)))
            }
            _ => config.clone(),
        }
    }

    /// Keeps the live order, taking config-only items where the config puts them.
    fn merge_list(&self, live: &[Value], config: &[Value], kind: &ListKind, item_ctx: &Ctx<'a>) -> Vec<Value> {
        let le: Vec<Element> = live.iter().enumerate().map(|(i, v)| self.element(kind, v, i)).collect();
        let ce: Vec<Element> = config
            .iter()
            .enumerate()
            .map(|(i, v)| self.element(kind, v, i))
            .collect();
        let in_config = |e: &Element| ce.iter().position(|c| c == e);
        let in_live = |e: &Element| le.iter().position(|l| l == e);
        let mut out = Vec::new();
        let mut done: HashSet<Element> = HashSet::new();
        let (mut li, mut ci) = (0, 0);
        let emit = |e: &Element, out: &mut Vec<Value>, done: &mut HashSet<Element>| {
            if !done.insert(e.clone()) {
                return;
            }
            let merged = match (in_live(e), in_config(e)) {
                (Some(l), Some(c)) => self.merge_at(&live[l], &config[c], item_ctx, false),
                (Some(l), None) => live[l].clone(),
                (None, Some(c)) => config[c].clone(),
                (None, None) => return,
            };
            out.push(merged);
        };
        while li < le.len() || ci < ce.len() {
            if li < le.len() && done.contains(&le[li]) {
                li += 1;
            } else if ci < ce.len() && done.contains(&ce[ci]) {
                ci += 1;
            } else if li < le.len() && (ci >= ce.len() || le[li] == ce[ci] || in_config(&le[li]).is_none()) {
                emit(&le[li], &mut out, &mut done);
                li += 1;
            } else {
                emit(&ce[ci], &mut out, &mut done);
                ci += 1;
            }
        }
        out
    }

    /// Remove the field or list item at `path` from `obj` (absent paths are fine).
    pub fn remove(&self, obj: &mut Value, path: &[Element]) {
        self.remove_at(obj, path, &self.root());
    }

    fn remove_at(&self, value: &mut Value, path: &[Element], ctx: &Ctx<'a>) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if let Some(key) = first.strip_prefix("f:") {
            let Some(map) = value.as_object_mut() else { return };
            if rest.is_empty() {
                map.remove(key);
            } else if let Some(child) = map.get_mut(key) {
                self.remove_at(child, rest, &self.field_ctx(ctx, key));
            }
            return;
        }
        let kind = self.list_kind(ctx);
        let item_ctx = self.item_ctx(ctx);
        let Some(items) = value.as_array_mut() else { return };
        let Some(i) = (0..items.len()).find(|&i| &self.element(&kind, &items[i], i) == first) else {
            return;
        };
        if rest.is_empty() {
            items.remove(i);
        } else {
            self.remove_at(&mut items[i], rest, &item_ctx);
        }
    }
}

/// A key object with its fields in name order (structured-merge-diff sorts them).
fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}
