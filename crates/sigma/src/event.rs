//! What the engine reads from an event: [`Event`] gives field values by (mapped) path and the
//! strings that keyword detections search. It is implemented for `serde_json::Value` with dotted
//! paths, so OCSF-shaped JSON (what Portcullis emits) works as is; other event types implement
//! the trait to avoid building JSON.
//!
//! Paths: `a.b.c` walks objects; a segment may select one element of an array of objects by a
//! member's value, case-insensitively: `http_request.http_headers[name=cookie].value` — which is
//! how a header list becomes addressable by name. A list reached without a selector yields
//! [`FieldValue::List`]; a rule value matches a list when it matches any element.

use std::borrow::Cow;

/// A field value as the matcher sees it. Borrowed where the event allows.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<FieldValue<'a>>),
}

impl FieldValue<'_> {
    /// The value as text, for string comparisons against non-string fields (`404` vs `'404'`).
    /// `None` for null and lists.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            FieldValue::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            FieldValue::Int(i) => Some(Cow::Owned(i.to_string())),
            FieldValue::Float(f) => Some(Cow::Owned(f.to_string())),
            FieldValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            FieldValue::Null | FieldValue::List(_) => None,
        }
    }

    /// The value as a number, for `lt`/`gt`… and correlation sums (numeric strings count).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Int(i) => Some(*i as f64),
            FieldValue::Float(f) => Some(*f),
            FieldValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// An event the engine can evaluate.
pub trait Event {
    /// The value at `path` (already mapped from the Sigma field name), `None` when absent.
    fn field(&self, path: &str) -> Option<FieldValue<'_>>;

    /// Calls `visit` with each string that keyword (field-less) detections search, until it
    /// returns `true` (found). Returns whether any call returned `true`.
    fn keywords(&self, visit: &mut dyn FnMut(&str) -> bool) -> bool;
}

fn json_to_field(value: &serde_json::Value) -> FieldValue<'_> {
    match value {
        serde_json::Value::Null => FieldValue::Null,
        serde_json::Value::Bool(b) => FieldValue::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => FieldValue::Int(i),
            None => FieldValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => FieldValue::Str(Cow::Borrowed(s.as_str())),
        serde_json::Value::Array(items) => {
            FieldValue::List(items.iter().map(json_to_field).collect())
        }
        serde_json::Value::Object(_) => FieldValue::Null,
    }
}

/// Looks up a dotted path (with optional `[member=value]` selectors) in a JSON value. An array
/// reached without a selector is walked element by element for the rest of the path, and the
/// values found come back as a list (so `unmapped.findings.kind` is every finding's kind).
pub fn json_field<'a>(root: &'a serde_json::Value, path: &str) -> Option<FieldValue<'a>> {
    walk(root, path).or_else(|| {
        // A flat key that itself contains dots (flattened events, ECS-style documents).
        match root {
            serde_json::Value::Object(map) if path.contains('.') => {
                map.get(path).map(json_to_field)
            }
            _ => None,
        }
    })
}

fn walk<'a>(current: &'a serde_json::Value, path: &str) -> Option<FieldValue<'a>> {
    if path.is_empty() {
        return Some(json_to_field(current));
    }
    if let serde_json::Value::Array(items) = current {
        let found: Vec<FieldValue<'a>> = items
            .iter()
            .filter_map(|item| walk(item, path))
            .flat_map(|v| match v {
                FieldValue::List(inner) => inner,
                other => vec![other],
            })
            .collect();
        return if found.is_empty() {
            None
        } else {
            Some(FieldValue::List(found))
        };
    }
    let (segment, rest) = path.split_once('.').unwrap_or((path, ""));
    let (key, selector) = match segment.find('[') {
        Some(open) if segment.ends_with(']') => {
            let inner = &segment[open + 1..segment.len() - 1];
            (&segment[..open], inner.split_once('='))
        }
        _ => (segment, None),
    };
    let mut next = current;
    if !key.is_empty() {
        next = next.as_object()?.get(key)?;
    }
    if let Some((member, wanted)) = selector {
        next = next.as_array()?.iter().find(|item| {
            item.get(member)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
        })?;
    }
    walk(next, rest)
}

fn visit_strings(value: &serde_json::Value, visit: &mut dyn FnMut(&str) -> bool) -> bool {
    match value {
        serde_json::Value::String(s) => visit(s),
        serde_json::Value::Array(items) => items.iter().any(|v| visit_strings(v, visit)),
        serde_json::Value::Object(map) => map.values().any(|v| visit_strings(v, visit)),
        _ => false,
    }
}

impl Event for serde_json::Value {
    fn field(&self, path: &str) -> Option<FieldValue<'_>> {
        json_field(self, path)
    }

    /// Every string value anywhere in the event.
    fn keywords(&self, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        visit_strings(self, visit)
    }
}

/// An event whose keyword search is limited to some fields (e.g. the request line and
/// headers), instead of every string — wraps any [`Event`].
pub struct KeywordFields<'e, E: ?Sized> {
    pub event: &'e E,
    pub fields: &'e [String],
}

impl<E: Event + ?Sized> Event for KeywordFields<'_, E> {
    fn field(&self, path: &str) -> Option<FieldValue<'_>> {
        self.event.field(path)
    }

    fn keywords(&self, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        fn walk(v: &FieldValue<'_>, visit: &mut dyn FnMut(&str) -> bool) -> bool {
            match v {
                FieldValue::Str(s) => visit(s),
                FieldValue::List(items) => items.iter().any(|i| walk(i, visit)),
                _ => false,
            }
        }
        self.fields
            .iter()
            .any(|f| self.event.field(f).is_some_and(|v| walk(&v, visit)))
    }
}
