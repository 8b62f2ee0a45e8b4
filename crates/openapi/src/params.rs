//! Parameters in path, query, header and cookie: parsing by `style`/`explode`, coercion, checks.
//!
//! Every parameter arrives as text. It is first split according to its serialization style
//! (`form`, `simple`, `spaceDelimited`, `pipeDelimited`, `deepObject`), then each piece is coerced
//! to the type its schema declares (so `limit=10` is the integer 10), and only then validated
//! with the compiled JSON Schema. A piece that cannot be coerced stays a string, and the schema
//! reports a `type` violation for it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use crate::violation::{Violation, from_schema_errors};

/// Where a parameter is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum In {
    Path,
    Query,
    Header,
    Cookie,
}

impl In {
    pub(crate) fn parse(s: &str) -> Option<In> {
        match s {
            "path" => Some(In::Path),
            "query" => Some(In::Query),
            "header" => Some(In::Header),
            "cookie" => Some(In::Cookie),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
            In::Header => "header",
            In::Cookie => "cookie",
        }
    }
}

/// Serialization style of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Simple,
    Form,
    Label,
    Matrix,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl Style {
    pub(crate) fn parse(s: Option<&str>, location: In) -> Option<Style> {
        Some(match s {
            None => match location {
                In::Path | In::Header => Style::Simple,
                In::Query | In::Cookie => Style::Form,
            },
            Some("simple") => Style::Simple,
            Some("form") => Style::Form,
            Some("label") => Style::Label,
            Some("matrix") => Style::Matrix,
            Some("spaceDelimited") => Style::SpaceDelimited,
            Some("pipeDelimited") => Style::PipeDelimited,
            Some("deepObject") => Style::DeepObject,
            Some(_) => return None,
        })
    }
}

/// The type a schema expects, as far as coercion from text needs to know.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Any,
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<Kind>),
    Object(BTreeMap<String, Kind>),
}

/// Infers the coercion kind of a translated schema, following `$ref`s into `defs`.
pub(crate) fn kind_of(schema: &Value, defs: &BTreeMap<String, Value>, depth: usize) -> Kind {
    if depth > 16 {
        return Kind::Any;
    }
    let Some(obj) = schema.as_object() else {
        return Kind::Any;
    };
    if let Some(target) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|k| defs.get(k))
    {
        let k = kind_of(target, defs, depth + 1);
        if k != Kind::Any {
            return k;
        }
    }
    let declared = match obj.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    };
    match declared {
        Some("string") => return Kind::String,
        Some("integer") => return Kind::Integer,
        Some("number") => return Kind::Number,
        Some("boolean") => return Kind::Boolean,
        Some("array") => {
            let items = obj
                .get("items")
                .map_or(Kind::Any, |i| kind_of(i, defs, depth + 1));
            return Kind::Array(Box::new(items));
        }
        _ => {}
    }
    if declared == Some("object") || obj.contains_key("properties") {
        let mut props = BTreeMap::new();
        collect_properties(schema, defs, depth, &mut props);
        return Kind::Object(props);
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = obj.get(k).and_then(Value::as_array) {
            for s in list {
                let kind = kind_of(s, defs, depth + 1);
                if kind != Kind::Any {
                    return kind;
                }
            }
        }
    }
    Kind::Any
}

fn collect_properties(
    schema: &Value,
    defs: &BTreeMap<String, Value>,
    depth: usize,
    out: &mut BTreeMap<String, Kind>,
) {
    if depth > 16 {
        return;
    }
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            out.entry(name.clone())
                .or_insert_with(|| kind_of(sub, defs, depth + 1));
        }
    }
    if let Some(target) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|k| defs.get(k))
    {
        collect_properties(target, defs, depth + 1, out);
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = obj.get(k).and_then(Value::as_array) {
            for s in list {
                collect_properties(s, defs, depth + 1, out);
            }
        }
    }
}

/// Coerces one piece of text to `kind`; text that does not parse stays a string.
pub(crate) fn coerce(text: &str, kind: &Kind) -> Value {
    match kind {
        Kind::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        Kind::Number => match text.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        },
        Kind::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        Kind::Array(items) => Value::Array(vec![coerce(text, items)]),
        Kind::Any | Kind::String | Kind::Object(_) => Value::String(text.to_owned()),
    }
}

/// A parameter compiled from the spec.
pub(crate) struct CompiledParam {
    pub(crate) name: String,
    pub(crate) location: In,
    pub(crate) required: bool,
    pub(crate) style: Style,
    pub(crate) explode: bool,
    pub(crate) kind: Kind,
    /// The parameter uses `content` (e.g. JSON in a query string) rather than a style.
    pub(crate) json_content: bool,
    pub(crate) validator: Option<jsonschema::Validator>,
}

impl CompiledParam {
    fn pointer(&self) -> String {
        crate::error::join_pointer(&format!("/{}", self.location.as_str()), &self.name)
    }

    /// Validates a parameter's value once built from the request.
    fn check(&self, value: &Value, out: &mut Vec<Violation>) {
        // `is_valid` is much cheaper than collecting errors: collect only when there are some.
        if let Some(v) = &self.validator
            && !v.is_valid(value)
        {
            from_schema_errors(&self.pointer(), v.iter_errors(value), out);
        }
    }

    /// Builds the value of a parameter carried in one text (path segment, header, cookie, or a
    /// non-exploded query value).
    fn value_of_text(&self, text: &str, out: &mut Vec<Violation>) -> Option<Value> {
        if self.json_content {
            return match serde_json::from_str::<Value>(text) {
                Ok(v) => Some(v),
                Err(_) => {
                    out.push(Violation::new(
                        self.pointer(),
                        "type",
                        "parameter is not valid JSON",
                    ));
                    None
                }
            };
        }
        let text = match self.style {
            Style::Label => text.strip_prefix('.').unwrap_or(text),
            Style::Matrix => text
                .strip_prefix(';')
                .and_then(|t| t.strip_prefix(self.name.as_str()))
                .and_then(|t| t.strip_prefix('='))
                .unwrap_or(text),
            _ => text,
        };
        let sep = match self.style {
            Style::SpaceDelimited => ' ',
            Style::PipeDelimited => '|',
            Style::Label if self.explode => '.',
            _ => ',',
        };
        Some(match &self.kind {
            Kind::Array(items) => {
                if text.is_empty() {
                    Value::Array(Vec::new())
                } else {
                    Value::Array(text.split(sep).map(|p| coerce(p, items)).collect())
                }
            }
            Kind::Object(props) => {
                let mut map = Map::new();
                if self.explode {
                    for pair in text.split(sep) {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        map.insert(k.to_owned(), coerce(v, props.get(k).unwrap_or(&Kind::Any)));
                    }
                } else {
                    let parts: Vec<&str> = text.split(sep).collect();
                    for kv in parts.chunks(2) {
                        let k = kv[0];
                        let v = kv.get(1).copied().unwrap_or("");
                        map.insert(k.to_owned(), coerce(v, props.get(k).unwrap_or(&Kind::Any)));
                    }
                }
                Value::Object(map)
            }
            kind => coerce(text, kind),
        })
    }
}

/// Validates the path parameters (already decoded by the router).
pub(crate) fn check_path(
    params: &[CompiledParam],
    values: &[(&str, String)],
    out: &mut Vec<Violation>,
) {
    for p in params.iter().filter(|p| p.location == In::Path) {
        match values.iter().find(|(n, _)| *n == p.name) {
            Some((_, text)) => {
                if let Some(v) = p.value_of_text(text, out) {
                    p.check(&v, out);
                }
            }
            None => out.push(Violation::new(
                p.pointer(),
                "required",
                "path parameter is missing",
            )),
        }
    }
}

/// Validates the query string against the declared query parameters.
pub(crate) fn check_query(
    params: &[CompiledParam],
    query: Option<&str>,
    reject_unknown: bool,
    out: &mut Vec<Violation>,
) {
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).collect())
        .unwrap_or_default();
    let mut used = vec![false; pairs.len()];
    for p in params.iter().filter(|p| p.location == In::Query) {
        let value = if p.style == Style::DeepObject {
            let mut map = Map::new();
            let props = match &p.kind {
                Kind::Object(props) => Some(props),
                _ => None,
            };
            for (i, (k, v)) in pairs.iter().enumerate() {
                let Some(inner) = k
                    .strip_prefix(p.name.as_str())
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.strip_suffix(']'))
                else {
                    continue;
                };
                used[i] = true;
                let kind = props.and_then(|ps| ps.get(inner)).unwrap_or(&Kind::Any);
                map.insert(inner.to_owned(), coerce(v, kind));
            }
            if map.is_empty() {
                None
            } else {
                Some(Value::Object(map))
            }
        } else if let (Kind::Object(props), true, false) = (&p.kind, p.explode, p.json_content) {
            // form + explode: each property is its own query parameter.
            let mut map = Map::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if let Some(kind) = props.get(k.as_ref()) {
                    used[i] = true;
                    map.insert(k.to_string(), coerce(v, kind));
                }
            }
            if map.is_empty() {
                None
            } else {
                Some(Value::Object(map))
            }
        } else {
            let mut texts: Vec<&str> = Vec::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if *k == p.name {
                    used[i] = true;
                    texts.push(v);
                }
            }
            match (&p.kind, texts.len()) {
                (_, 0) => None,
                (Kind::Array(items), _)
                    if p.style == Style::Form && p.explode && !p.json_content =>
                {
                    Some(Value::Array(
                        texts.iter().map(|t| coerce(t, items)).collect(),
                    ))
                }
                (_, 1) => p.value_of_text(texts[0], out),
                _ => {
                    // Parameter pollution: a single value given several times.
                    out.push(Violation::new(
                        p.pointer(),
                        "duplicate_parameter",
                        "parameter given more than once",
                    ));
                    None
                }
            }
        };
        match value {
            Some(v) => p.check(&v, out),
            None if p.required && !out.iter().any(|v| v.pointer == p.pointer()) => {
                out.push(Violation::new(
                    p.pointer(),
                    "required",
                    "required query parameter is missing",
                ));
            }
            None => {}
        }
    }
    if reject_unknown {
        let mut reported = HashSet::new();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !used[i] && reported.insert(k.as_ref()) {
                out.push(Violation::new(
                    crate::error::join_pointer("/query", k),
                    "unknown_parameter",
                    "query parameter not declared by the operation",
                ));
            }
        }
    }
}

/// Validates header parameters.
pub(crate) fn check_headers(
    params: &[CompiledParam],
    headers: &http::HeaderMap,
    out: &mut Vec<Violation>,
) {
    for p in params.iter().filter(|p| p.location == In::Header) {
        let values: Vec<Cow<'_, str>> = headers
            .get_all(p.name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect();
        if values.is_empty() {
            if p.required {
                out.push(Violation::new(
                    p.pointer(),
                    "required",
                    "required header is missing",
                ));
            }
            continue;
        }
        let joined = values.join(",");
        if let Some(v) = p.value_of_text(joined.trim(), out) {
            p.check(&v, out);
        }
    }
}

/// Validates cookie parameters, read from every `Cookie` header.
pub(crate) fn check_cookies(
    params: &[CompiledParam],
    headers: &http::HeaderMap,
    out: &mut Vec<Violation>,
) {
    let mut cookie_params = params
        .iter()
        .filter(|p| p.location == In::Cookie)
        .peekable();
    if cookie_params.peek().is_none() {
        return;
    }
    let mut jar: Vec<(String, String)> = Vec::new();
    for h in headers.get_all(http::header::COOKIE) {
        let text = String::from_utf8_lossy(h.as_bytes());
        for pair in text.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v.trim().trim_matches('"');
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            jar.push((k.trim().to_owned(), v));
        }
    }
    for p in cookie_params {
        match jar.iter().find(|(k, _)| *k == p.name) {
            Some((_, text)) => {
                if let Some(v) = p.value_of_text(text, out) {
                    p.check(&v, out);
                }
            }
            None if p.required => out.push(Violation::new(
                p.pointer(),
                "required",
                "required cookie is missing",
            )),
            None => {}
        }
    }
}
