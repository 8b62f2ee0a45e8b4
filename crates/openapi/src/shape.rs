//! Declared-property shapes: what object properties a schema allows, for filtering and strictness.
//!
//! Response filtering removes every property the response schema does not declare, and the strict
//! request mode refuses such properties (the mass-assignment defence). Both need the same answer:
//! "at this place of the document, which property names are declared, and by which subschemas?".
//! JSON Schema validators cannot tell it through `allOf`/`$ref`, so each compiled schema is turned
//! into a small graph of nodes whose composition (`allOf`, `anyOf`, `oneOf`, `$ref`) is flattened
//! once at load time into a union of declared properties. Recursive schemas stay graph edges.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use crate::error::join_pointer;
use crate::fasthash::FnvMap;

/// Index of a node in [`Shapes`].
pub(crate) type NodeId = u32;

/// What a schema says about properties it does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Extras {
    /// Neither `additionalProperties` nor `unevaluatedProperties` (positive model: refused).
    #[default]
    Absent,
    /// Explicitly `false`.
    Forbidden,
    /// A schema: extras are kept and checked against it.
    Schema(NodeId),
    /// `true`, `{}` (or a `patternProperties` pattern the linear-time engine cannot compile):
    /// anything goes.
    Any,
}

/// One declared property.
#[derive(Debug, Clone, Copy)]
struct Prop {
    node: NodeId,
    read_only: bool,
    write_only: bool,
}

/// A schema node before flattening.
#[derive(Debug, Default)]
struct RawNode {
    props: Vec<(String, Prop)>,
    extras: Extras,
    items: Option<NodeId>,
    prefix: Vec<NodeId>,
    parts: Vec<NodeId>,
    /// `patternProperties`, compiled with the linear-time `regex` engine.
    patterns: Vec<(regex::Regex, NodeId)>,
}

/// A node with its composition flattened.
#[derive(Debug, Default)]
struct Flat {
    props: FnvMap<String, Vec<Prop>>,
    /// Any part of the composition lists properties: otherwise the object is free-form.
    declares: bool,
    extras_any: bool,
    extras_schemas: Vec<NodeId>,
    patterns: Vec<(regex::Regex, NodeId)>,
    items: Vec<NodeId>,
    prefix: Vec<Vec<NodeId>>,
}

/// Builds shape nodes from translated schemas (whose `$ref`s point at `#/$defs/<key>`).
pub(crate) struct ShapeBuilder<'d> {
    defs: &'d BTreeMap<String, Value>,
    raws: Vec<RawNode>,
    def_ids: HashMap<String, NodeId>,
}

/// Where an undeclared property was met, and why it is undeclared.
pub(crate) struct Undeclared {
    pub(crate) pointer: String,
    pub(crate) read_only: bool,
}

/// The flattened shapes of a whole spec.
#[derive(Debug, Default)]
pub(crate) struct Shapes {
    flats: Vec<Flat>,
}

impl<'d> ShapeBuilder<'d> {
    pub(crate) fn new(defs: &'d BTreeMap<String, Value>) -> Self {
        ShapeBuilder {
            defs,
            raws: Vec::new(),
            def_ids: HashMap::new(),
        }
    }

    fn alloc(&mut self) -> NodeId {
        self.raws.push(RawNode::default());
        NodeId::try_from(self.raws.len() - 1).unwrap_or(NodeId::MAX)
    }

    fn def(&mut self, key: &str) -> NodeId {
        if let Some(&id) = self.def_ids.get(key) {
            return id;
        }
        let id = self.alloc();
        self.def_ids.insert(key.to_owned(), id);
        if let Some(schema) = self.defs.get(key) {
            let raw = self.raw(schema);
            self.raws[id as usize] = raw;
        }
        id
    }

    /// Adds the shape of a translated schema and returns its node.
    pub(crate) fn add(&mut self, schema: &Value) -> NodeId {
        let id = self.alloc();
        let raw = self.raw(schema);
        self.raws[id as usize] = raw;
        id
    }

    fn raw(&mut self, schema: &Value) -> RawNode {
        let mut raw = RawNode::default();
        let Some(obj) = schema.as_object() else {
            raw.extras = Extras::Any;
            return raw;
        };
        if let Some(key) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            let id = self.def(key);
            raw.parts.push(id);
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let flag = |k: &str| sub.get(k).and_then(Value::as_bool) == Some(true);
                let prop = Prop {
                    node: self.add(sub),
                    read_only: flag("readOnly"),
                    write_only: flag("writeOnly"),
                };
                raw.props.push((name.clone(), prop));
            }
        }
        let extras_of = |this: &mut Self, v: &Value| match v {
            Value::Bool(true) => Extras::Any,
            Value::Bool(false) => Extras::Forbidden,
            Value::Object(m) if m.is_empty() => Extras::Any,
            other => Extras::Schema(this.add(other)),
        };
        if let Some(v) = obj.get("additionalProperties") {
            raw.extras = extras_of(self, v);
        } else if let Some(v) = obj.get("unevaluatedProperties") {
            raw.extras = extras_of(self, v);
        }
        if let Some(patterns) = obj.get("patternProperties").and_then(Value::as_object) {
            for (pattern, sub) in patterns {
                match regex::Regex::new(pattern) {
                    Ok(re) => {
                        let node = self.add(sub);
                        raw.patterns.push((re, node));
                    }
                    // Not expressible on the linear-time engine: keep such properties (best effort).
                    Err(_) => raw.extras = Extras::Any,
                }
            }
        }
        if let Some(items) = obj.get("items") {
            raw.items = Some(self.add(items));
        }
        if let Some(list) = obj.get("prefixItems").and_then(Value::as_array) {
            raw.prefix = list.iter().map(|s| self.add(s)).collect();
        }
        for k in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = obj.get(k).and_then(Value::as_array) {
                for s in list {
                    let id = self.add(s);
                    raw.parts.push(id);
                }
            }
        }
        for k in ["then", "else"] {
            if let Some(s) = obj.get(k) {
                let id = self.add(s);
                raw.parts.push(id);
            }
        }
        raw
    }

    /// Flattens every node's composition.
    pub(crate) fn finish(self) -> Shapes {
        let mut flats = Vec::with_capacity(self.raws.len());
        for id in 0..self.raws.len() {
            let mut flat = Flat::default();
            let mut seen = vec![false; self.raws.len()];
            let mut stack = vec![id];
            while let Some(n) = stack.pop() {
                if std::mem::replace(&mut seen[n], true) {
                    continue;
                }
                let raw = &self.raws[n];
                for (name, prop) in &raw.props {
                    flat.props.entry(name.clone()).or_default().push(*prop);
                }
                flat.declares |= !raw.props.is_empty() || !raw.patterns.is_empty();
                flat.patterns.extend(raw.patterns.iter().cloned());
                match raw.extras {
                    Extras::Any => flat.extras_any = true,
                    Extras::Schema(s) => flat.extras_schemas.push(s),
                    Extras::Absent | Extras::Forbidden => {}
                }
                flat.items.extend(raw.items);
                for (i, p) in raw.prefix.iter().enumerate() {
                    if flat.prefix.len() <= i {
                        flat.prefix.push(Vec::new());
                    }
                    flat.prefix[i].push(*p);
                }
                stack.extend(raw.parts.iter().map(|&p| p as usize));
            }
            flats.push(flat);
        }
        Shapes { flats }
    }
}

/// The nodes that describe the value of property `key` under the union `set`, or `None` when no
/// node of the set declares it (nor allows extras).
fn property_nodes<'s>(shapes: &'s Shapes, set: &[NodeId], key: &str, response: bool) -> Lookup<'s> {
    // Fast path (the common case): one node, the property declared once. No allocation.
    if let [only] = set
        && let Some(flat) = shapes.flats.get(*only as usize)
        && (flat.declares || !flat.extras_schemas.is_empty())
        && let Some([p]) = flat.props.get(key).map(Vec::as_slice)
        && !(if response { p.write_only } else { p.read_only })
    {
        return Lookup::Nodes(Cow::Borrowed(std::slice::from_ref(&p.node)));
    }
    let mut free = false;
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut single: Option<&'s [NodeId]> = None;
    let mut read_only = false;
    let mut declared_any = false;
    for &n in set {
        let Some(flat) = shapes.flats.get(n as usize) else {
            continue;
        };
        if !flat.declares && flat.extras_schemas.is_empty() {
            // Free-form object (no property listed): keep everything below.
            free = true;
            continue;
        }
        declared_any = true;
        if let Some(props) = flat.props.get(key) {
            let before = nodes.len();
            nodes.extend(
                props
                    .iter()
                    .filter(|p| !(if response { p.write_only } else { p.read_only }))
                    .map(|p| p.node),
            );
            if nodes.len() == before {
                read_only |= !response;
                continue;
            }
        } else if flat.patterns.iter().any(|(re, _)| re.is_match(key)) {
            nodes.extend(
                flat.patterns
                    .iter()
                    .filter(|(re, _)| re.is_match(key))
                    .map(|(_, n)| *n),
            );
        } else if flat.extras_any {
            free = true;
        } else if !flat.extras_schemas.is_empty() {
            if set.len() == 1 && nodes.is_empty() {
                single = Some(&flat.extras_schemas);
            } else {
                nodes.extend(&flat.extras_schemas);
            }
        }
    }
    if free || !declared_any {
        return Lookup::Free;
    }
    if let Some(s) = single {
        return Lookup::Nodes(Cow::Borrowed(s));
    }
    if nodes.is_empty() {
        return Lookup::Undeclared { read_only };
    }
    Lookup::Nodes(Cow::Owned(nodes))
}

enum Lookup<'s> {
    Free,
    Nodes(Cow<'s, [NodeId]>),
    Undeclared { read_only: bool },
}

fn item_nodes<'s>(shapes: &'s Shapes, set: &[NodeId], index: usize) -> Option<Cow<'s, [NodeId]>> {
    let mut out: Vec<NodeId> = Vec::new();
    for &n in set {
        let flat = shapes.flats.get(n as usize)?;
        if let Some(p) = flat.prefix.get(index) {
            out.extend(p);
        } else if !flat.items.is_empty() {
            if set.len() == 1 {
                return Some(Cow::Borrowed(&flat.items));
            }
            out.extend(&flat.items);
        } else {
            // Items are not described by this node: leave them alone.
            return None;
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(Cow::Owned(out))
    }
}

impl Shapes {
    /// Removes, in place, every property of `value` that `root` does not declare; returns the
    /// pointers removed (prefixed by `base`).
    pub(crate) fn filter(
        &self,
        root: NodeId,
        value: &mut Value,
        base: &str,
        removed: &mut Vec<String>,
    ) {
        let mut pointer = base.to_owned();
        self.filter_at(&[root], value, &mut pointer, removed, 0);
    }

    fn filter_at(
        &self,
        set: &[NodeId],
        value: &mut Value,
        pointer: &mut String,
        removed: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 256 {
            return;
        }
        match value {
            Value::Object(map) => {
                let mut doomed: Vec<String> = Vec::new();
                for (key, child) in map.iter_mut() {
                    match property_nodes(self, set, key, true) {
                        Lookup::Free => {}
                        Lookup::Undeclared { .. } => doomed.push(key.clone()),
                        Lookup::Nodes(nodes) => {
                            let len = pointer.len();
                            push_token(pointer, key);
                            self.filter_at(&nodes, child, pointer, removed, depth + 1);
                            pointer.truncate(len);
                        }
                    }
                }
                for key in doomed {
                    map.remove(&key);
                    removed.push(join_pointer(pointer, &key));
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    if let Some(nodes) = item_nodes(self, set, i) {
                        let len = pointer.len();
                        let _ = write!(pointer, "/{i}");
                        self.filter_at(&nodes, child, pointer, removed, depth + 1);
                        pointer.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }

    /// Lists every property of `value` that `root` does not declare (readOnly ones count as
    /// undeclared in a request), without changing anything.
    pub(crate) fn undeclared(&self, root: NodeId, value: &Value, base: &str) -> Vec<Undeclared> {
        let mut out = Vec::new();
        let mut pointer = base.to_owned();
        self.undeclared_at(&[root], value, &mut pointer, &mut out, 0);
        out
    }

    fn undeclared_at(
        &self,
        set: &[NodeId],
        value: &Value,
        pointer: &mut String,
        out: &mut Vec<Undeclared>,
        depth: usize,
    ) {
        if depth > 256 {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match property_nodes(self, set, key, false) {
                        Lookup::Free => {}
                        Lookup::Undeclared { read_only } => {
                            out.push(Undeclared {
                                pointer: join_pointer(pointer, key),
                                read_only,
                            });
                        }
                        Lookup::Nodes(nodes) => {
                            let len = pointer.len();
                            push_token(pointer, key);
                            self.undeclared_at(&nodes, child, pointer, out, depth + 1);
                            pointer.truncate(len);
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    if let Some(nodes) = item_nodes(self, set, i) {
                        let len = pointer.len();
                        let _ = write!(pointer, "/{i}");
                        self.undeclared_at(&nodes, child, pointer, out, depth + 1);
                        pointer.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }
}

fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    if token.contains(['~', '/']) {
        pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
    } else {
        pointer.push_str(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allof_union_through_refs_and_recursion() {
        let mut defs = BTreeMap::new();
        defs.insert(
            "Base".to_owned(),
            json!({"properties": {"id": {"type": "integer"}}}),
        );
        defs.insert(
            "Node".to_owned(),
            json!({"properties": {"name": {}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}),
        );
        let mut b = ShapeBuilder::new(&defs);
        let user =
            b.add(&json!({"allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"name": {}}}]}));
        let tree = b.add(&json!({"$ref": "#/$defs/Node"}));
        let tagged = b.add(&json!({"patternProperties": {"^x-": {"properties": {"v": {}}}}}));
        let shapes = b.finish();
        let mut v = json!({"id": 1, "name": "a", "admin": true});
        let mut removed = Vec::new();
        shapes.filter(user, &mut v, "", &mut removed);
        assert_eq!(v, json!({"id": 1, "name": "a"}));
        assert_eq!(removed, vec!["/admin".to_owned()]);
        let mut t = json!({"name": "r", "children": [{"name": "c", "secret": 1, "children": []}]});
        removed.clear();
        shapes.filter(tree, &mut t, "", &mut removed);
        assert_eq!(removed, vec!["/children/0/secret".to_owned()]);
        let mut p = json!({"x-a": {"v": 1, "w": 2}, "y": 3});
        removed.clear();
        shapes.filter(tagged, &mut p, "", &mut removed);
        assert_eq!(p, json!({"x-a": {"v": 1}}));
    }
}
