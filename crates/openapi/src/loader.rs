//! Reading spec documents and resolving `$ref`, with the schemas translated to JSON Schema 2020-12.
//!
//! The root document and every file it references are parsed once and kept with their text (for
//! error lines). References are followed only inside the spec's own folder: remote (`http(s)://`)
//! references, absolute paths and anything that canonicalizes outside the folder are refused, so
//! a spec can never make the gateway read the network or arbitrary files.
//!
//! Schemas are translated into one shared `$defs` table: every `$ref` to a schema becomes
//! `#/$defs/<key>`, and the target is translated once. Recursive schemas therefore stay references
//! (they are never inlined), and each validation site gets a standalone 2020-12 document made of
//! its schema plus the closure of the `$defs` it uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::error::{SpecError, join_pointer};

/// Which OpenAPI minor line a document follows: 3.0 schemas need translating, 3.1 ones are 2020-12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V30,
    V31,
}

/// One parsed file of the spec.
pub(crate) struct Document {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) value: Value,
}

/// A place inside one of the loaded documents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    pub(crate) doc: usize,
    pub(crate) pointer: String,
}

impl Loc {
    pub(crate) fn child(&self, token: &str) -> Loc {
        Loc {
            doc: self.doc,
            pointer: join_pointer(&self.pointer, token),
        }
    }
}

/// Schema keywords whose value is a map of subschemas.
const SCHEMA_MAPS: &[&str] = &["properties", "patternProperties", "dependentSchemas"];
/// Schema keywords whose value is one subschema (or a boolean).
const SCHEMA_SINGLE: &[&str] = &[
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "contentSchema",
];
/// Schema keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords that carry no validation meaning for the gateway and are dropped from the compiled schema.
const DROPPED: &[&str] = &[
    "discriminator",
    "example",
    "xml",
    "externalDocs",
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$defs",
    "definitions",
    "nullable",
];

/// Loads documents, follows references and translates schemas.
pub(crate) struct Loader {
    root_dir: PathBuf,
    pub(crate) docs: Vec<Document>,
    by_path: HashMap<PathBuf, usize>,
    pub(crate) version: Version,
    /// Translated schemas by `$defs` key.
    pub(crate) defs: BTreeMap<String, Value>,
    def_keys: HashMap<Loc, String>,
}

/// Parses a JSON or YAML text into a value, reporting syntax errors with their line.
fn parse_text(text: &str, path: &Path) -> Result<Value, SpecError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    if is_json {
        serde_json::from_str(text).map_err(|e| SpecError {
            file: path.to_path_buf(),
            line: Some(e.line()),
            pointer: String::new(),
            message: format!("invalid JSON: {e}"),
        })
    } else {
        // YAML 1.2 scalars: `n`, `no`, `on`, `y` stay strings (as property names, enum values or
        // `required` entries they must not silently become booleans); a duplicate key is an error
        // rather than one definition quietly shadowing another.
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        options.leading_zero_numbers_as_strings = true;
        options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::Error;
        serde_saphyr::from_str_with_options(text, options).map_err(|e| SpecError {
            file: path.to_path_buf(),
            line: e
                .location()
                .and_then(|l| usize::try_from(l.line()).ok())
                .filter(|&l| l > 0),
            pointer: String::new(),
            message: format!("invalid YAML: {e}"),
        })
    }
}

impl Loader {
    /// Starts from the root document's text; `origin` names it and gives the folder refs may use.
    pub(crate) fn new(text: &str, origin: &Path) -> Result<Loader, SpecError> {
        let value = parse_text(text, origin)?;
        let dir = origin
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let root_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let version = match value.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0.") || v == "3.0" => Version::V30,
            Some(v) if v.starts_with("3.1.") || v == "3.1" => Version::V31,
            Some(_) => {
                return Err(SpecError::at(
                    origin,
                    Some(text),
                    "/openapi",
                    "unsupported OpenAPI version (3.0.x and 3.1.x are supported)",
                ));
            }
            None => {
                let msg = if value.get("swagger").is_some() {
                    "Swagger 2.0 is not supported: convert the document to OpenAPI 3"
                } else {
                    "missing `openapi` version string"
                };
                return Err(SpecError::at(origin, Some(text), "/openapi", msg));
            }
        };
        if !value.is_object() {
            return Err(SpecError::at(
                origin,
                None,
                "",
                "the document is not an object",
            ));
        }
        let canonical = origin
            .canonicalize()
            .unwrap_or_else(|_| origin.to_path_buf());
        let mut by_path = HashMap::new();
        by_path.insert(canonical, 0);
        Ok(Loader {
            root_dir,
            docs: vec![Document {
                path: origin.to_path_buf(),
                text: text.to_owned(),
                value,
            }],
            by_path,
            version,
            defs: BTreeMap::new(),
            def_keys: HashMap::new(),
        })
    }

    /// An error located at `loc`.
    pub(crate) fn error(&self, loc: &Loc, message: impl Into<String>) -> SpecError {
        let doc = &self.docs[loc.doc];
        SpecError::at(&doc.path, Some(&doc.text), &loc.pointer, message)
    }

    /// The value at `loc`, if any.
    pub(crate) fn get(&self, loc: &Loc) -> Option<&Value> {
        self.docs.get(loc.doc)?.value.pointer(&loc.pointer)
    }

    /// Resolves the reference string found at `at` (the location of the object holding `$ref`).
    pub(crate) fn resolve_ref(&mut self, at: &Loc, reference: &str) -> Result<Loc, SpecError> {
        let ref_loc = at.child("$ref");
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let lower = file.to_ascii_lowercase();
        if lower.contains("://")
            || lower.starts_with("http:")
            || lower.starts_with("https:")
            || lower.starts_with("file:")
        {
            return Err(self.error(
                &ref_loc,
                "remote $ref refused: references must be relative files next to the spec",
            ));
        }
        let doc = if file.is_empty() {
            at.doc
        } else {
            let rel = Path::new(file);
            if rel.is_absolute() || file.starts_with('/') || file.starts_with('\\') {
                return Err(self.error(
                    &ref_loc,
                    "absolute $ref path refused: references must be relative to the spec",
                ));
            }
            let base = self.docs[at.doc]
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let joined = base.join(rel);
            let canonical = joined
                .canonicalize()
                .map_err(|_| self.error(&ref_loc, "referenced file not found"))?;
            if !canonical.starts_with(&self.root_dir) {
                return Err(self.error(&ref_loc, "$ref escapes the spec's folder: refused"));
            }
            match self.by_path.get(&canonical) {
                Some(&i) => i,
                None => {
                    let text = std::fs::read_to_string(&canonical).map_err(|e| {
                        self.error(&ref_loc, format!("cannot read referenced file: {e}"))
                    })?;
                    let value = parse_text(&text, &joined)?;
                    self.docs.push(Document {
                        path: joined,
                        text,
                        value,
                    });
                    let i = self.docs.len() - 1;
                    self.by_path.insert(canonical, i);
                    i
                }
            }
        };
        let pointer = percent_decode_str(fragment)
            .decode_utf8_lossy()
            .into_owned();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(self.error(
                &ref_loc,
                "unsupported $ref fragment: only JSON pointers are supported",
            ));
        }
        let target = Loc { doc, pointer };
        if self.get(&target).is_none() {
            return Err(self.error(&ref_loc, "$ref target not found"));
        }
        Ok(target)
    }

    /// Follows a chain of `$ref` objects (parameters, responses, bodies, path items) to the real one.
    pub(crate) fn follow(&mut self, loc: &Loc) -> Result<Loc, SpecError> {
        let mut current = loc.clone();
        let mut seen = HashSet::new();
        loop {
            let reference = match self.get(&current) {
                Some(Value::Object(m)) => match m.get("$ref") {
                    Some(Value::String(r)) => r.clone(),
                    Some(_) => {
                        return Err(self.error(&current.child("$ref"), "$ref must be a string"));
                    }
                    None => return Ok(current),
                },
                Some(_) => return Ok(current),
                None => return Err(self.error(&current, "missing element")),
            };
            if !seen.insert(current.clone()) {
                return Err(self.error(&current, "$ref cycle"));
            }
            current = self.resolve_ref(&current, &reference)?;
        }
    }

    /// The translated 2020-12 form of the schema at `loc` (its `$ref`s point into `self.defs`).
    pub(crate) fn schema(&mut self, loc: &Loc) -> Result<Value, SpecError> {
        let value = self
            .get(loc)
            .cloned()
            .ok_or_else(|| self.error(loc, "missing schema"))?;
        self.translate(loc, &value)
    }

    /// The `$defs` key of the schema at `target`, translating it the first time.
    fn def_key(&mut self, target: Loc) -> Result<String, SpecError> {
        if let Some(k) = self.def_keys.get(&target) {
            return Ok(k.clone());
        }
        let last = target.pointer.rsplit('/').next().unwrap_or("schema");
        let mut base: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() {
            base = "schema".into();
        }
        let mut key = base.clone();
        let mut n = 2;
        while self.defs.contains_key(&key) {
            key = format!("{base}_{n}");
            n += 1;
        }
        // Reserve the key before translating so recursive references find it.
        self.def_keys.insert(target.clone(), key.clone());
        self.defs.insert(key.clone(), Value::Bool(true));
        let value = self.get(&target).cloned().unwrap_or(Value::Null);
        let translated = self.translate(&target, &value)?;
        self.defs.insert(key.clone(), translated);
        Ok(key)
    }

    /// Translates one schema value found at `loc`.
    fn translate(&mut self, loc: &Loc, value: &Value) -> Result<Value, SpecError> {
        let obj = match value {
            Value::Bool(_) if self.version == Version::V31 => return Ok(value.clone()),
            Value::Object(m) => m,
            _ => return Err(self.error(loc, "a schema must be an object")),
        };
        let mut out = Map::new();
        if let Some(r) = obj.get("$ref") {
            let Some(r) = r.as_str() else {
                return Err(self.error(&loc.child("$ref"), "$ref must be a string"));
            };
            let target = self.resolve_ref(loc, r)?;
            let key = self.def_key(target)?;
            out.insert("$ref".into(), Value::String(format!("#/$defs/{key}")));
            if self.version == Version::V30 {
                // In 3.0 the siblings of `$ref` are ignored.
                return Ok(Value::Object(out));
            }
        }
        let exclusive_bool = |k: &str| obj.get(k).and_then(Value::as_bool);
        for (k, v) in obj {
            if k == "$ref" || k.starts_with("x-") || DROPPED.contains(&k.as_str()) {
                continue;
            }
            let here = loc.child(k);
            if SCHEMA_MAPS.contains(&k.as_str()) {
                let Some(m) = v.as_object() else {
                    return Err(self.error(&here, format!("`{k}` must be an object")));
                };
                let mut t = Map::new();
                for (name, sub) in m {
                    t.insert(name.clone(), self.translate(&here.child(name), sub)?);
                }
                out.insert(k.clone(), Value::Object(t));
            } else if SCHEMA_SINGLE.contains(&k.as_str()) {
                let t = if v.is_boolean() {
                    v.clone()
                } else {
                    self.translate(&here, v)?
                };
                out.insert(k.clone(), t);
            } else if SCHEMA_LISTS.contains(&k.as_str()) {
                let Some(list) = v.as_array() else {
                    return Err(self.error(&here, format!("`{k}` must be an array")));
                };
                let mut t = Vec::with_capacity(list.len());
                for (i, sub) in list.iter().enumerate() {
                    t.push(self.translate(&here.child(&i.to_string()), sub)?);
                }
                out.insert(k.clone(), Value::Array(t));
            } else if k == "items" {
                if let Some(list) = v.as_array() {
                    let mut t = Vec::with_capacity(list.len());
                    for (i, sub) in list.iter().enumerate() {
                        t.push(self.translate(&here.child(&i.to_string()), sub)?);
                    }
                    out.insert("prefixItems".into(), Value::Array(t));
                } else {
                    let t = if v.is_boolean() {
                        v.clone()
                    } else {
                        self.translate(&here, v)?
                    };
                    out.insert(k.clone(), t);
                }
            } else if k == "exclusiveMinimum" || k == "exclusiveMaximum" {
                match v {
                    Value::Bool(true) => {
                        let plain = if k == "exclusiveMinimum" {
                            "minimum"
                        } else {
                            "maximum"
                        };
                        if let Some(limit) = obj.get(plain) {
                            out.insert(k.clone(), limit.clone());
                        }
                    }
                    Value::Bool(false) => {}
                    other => {
                        out.insert(k.clone(), other.clone());
                    }
                }
            } else if k == "minimum" && exclusive_bool("exclusiveMinimum") == Some(true)
                || k == "maximum" && exclusive_bool("exclusiveMaximum") == Some(true)
            {
                // Carried by the exclusive keyword above.
            } else if k == "required" {
                // readOnly properties are sent by the server only: a request need not carry them.
                let props = obj.get("properties").and_then(Value::as_object);
                let kept: Vec<Value> = v
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter(|name| {
                                let read_only = name
                                    .as_str()
                                    .and_then(|n| props.and_then(|p| p.get(n)))
                                    .and_then(|s| s.get("readOnly"))
                                    .and_then(Value::as_bool)
                                    == Some(true);
                                !read_only
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(kept));
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
        // int32/int64 are range constraints on integers.
        if let Some(format) = obj.get("format").and_then(Value::as_str) {
            let bounds = match format {
                "int32" => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
                "int64" => Some((i64::MIN, i64::MAX)),
                _ => None,
            };
            if let Some((lo, hi)) = bounds {
                out.entry("minimum").or_insert(Value::from(lo));
                out.entry("maximum").or_insert(Value::from(hi));
            }
        }
        if self.version == Version::V30
            && obj.get("nullable").and_then(Value::as_bool) == Some(true)
        {
            if let Some(Value::Array(options)) = out.get_mut("enum")
                && !options.contains(&Value::Null)
            {
                options.push(Value::Null);
            }
            match out.get("type").cloned() {
                Some(Value::String(t)) => {
                    out.insert(
                        "type".into(),
                        Value::Array(vec![Value::String(t), Value::from("null")]),
                    );
                }
                // `nullable` beside a composition (`allOf: [$ref]`): null or the composed schema.
                None if ["allOf", "anyOf", "oneOf"]
                    .iter()
                    .any(|k| out.contains_key(*k)) =>
                {
                    let mut null = Map::new();
                    null.insert("type".into(), Value::from("null"));
                    let inner = Value::Object(out);
                    let mut wrapper = Map::new();
                    wrapper.insert(
                        "anyOf".into(),
                        Value::Array(vec![Value::Object(null), inner]),
                    );
                    return Ok(Value::Object(wrapper));
                }
                _ => {}
            }
        }
        Ok(Value::Object(out))
    }

    /// Refuses reference cycles that never descend into the instance (`A: {$ref: B}`,
    /// `B: {allOf: [{$ref: A}]}`): they would make validation loop forever. Recursion through
    /// `properties`, `items` and the like is legal and kept.
    pub(crate) fn check_cycles(&self) -> Result<(), SpecError> {
        let mut edges: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (key, def) in &self.defs {
            let mut out = Vec::new();
            in_place_refs(def, &mut out);
            edges.insert(key.as_str(), out);
        }
        // 0 = unseen, 1 = on the current path, 2 = done.
        let mut state: HashMap<&str, u8> = HashMap::new();
        for start in edges.keys() {
            if state.get(start).copied().unwrap_or(0) != 0 {
                continue;
            }
            let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
            state.insert(start, 1);
            while let Some((node, next)) = stack.pop() {
                let targets = edges.get(node).map(Vec::as_slice).unwrap_or_default();
                if let Some(target) = targets.get(next) {
                    stack.push((node, next + 1));
                    let Some((target_key, _)) = edges.get_key_value(target.as_str()) else {
                        continue;
                    };
                    match state.get(target_key).copied().unwrap_or(0) {
                        0 => {
                            state.insert(target_key, 1);
                            stack.push((target_key, 0));
                        }
                        1 => {
                            let loc = self
                                .def_keys
                                .iter()
                                .find(|(_, k)| k.as_str() == *target_key)
                                .map(|(l, _)| l.clone());
                            let loc = loc.unwrap_or(Loc {
                                doc: 0,
                                pointer: String::new(),
                            });
                            return Err(
                                self.error(&loc, "$ref cycle that never descends into the data")
                            );
                        }
                        _ => {}
                    }
                } else {
                    state.insert(node, 2);
                }
            }
        }
        Ok(())
    }

    /// A standalone 2020-12 document for `schema`: the schema plus the `$defs` it reaches.
    pub(crate) fn standalone(&self, schema: &Value) -> Value {
        let mut needed: BTreeMap<String, Value> = BTreeMap::new();
        let mut stack = Vec::new();
        collect_refs(schema, &mut stack);
        while let Some(key) = stack.pop() {
            if needed.contains_key(&key) {
                continue;
            }
            if let Some(def) = self.defs.get(&key) {
                collect_refs(def, &mut stack);
                needed.insert(key, def.clone());
            }
        }
        let mut doc = match schema {
            Value::Object(m) => m.clone(),
            Value::Bool(true) => Map::new(),
            other => {
                let mut m = Map::new();
                m.insert("allOf".into(), Value::Array(vec![other.clone()]));
                m
            }
        };
        if !needed.is_empty() {
            doc.insert("$defs".into(), Value::Object(needed.into_iter().collect()));
        }
        Value::Object(doc)
    }
}

/// Pushes the `$defs` keys a schema applies to the same instance (through `$ref` and the
/// in-place applicators), not those reached through properties or items.
fn in_place_refs(schema: &Value, out: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(key) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        out.push(key.to_owned());
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = obj.get(k).and_then(Value::as_array) {
            list.iter().for_each(|s| in_place_refs(s, out));
        }
    }
    for k in ["not", "if", "then", "else"] {
        if let Some(s) = obj.get(k) {
            in_place_refs(s, out);
        }
    }
}

/// Pushes the `$defs` keys referenced anywhere inside `value`.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref"
                    && let Some(key) = v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    out.push(key.to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
