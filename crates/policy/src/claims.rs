//! Finding and comparing claims. Claim names in rules may be dotted paths into nested objects
//! (`realm_access.roles`), but namespaced claims such as `https://example.com/roles` contain dots
//! themselves, so an exact top-level name always wins over walking the path.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::PolicyError;

/// A claim name compiled for lookup.
#[derive(Debug, Clone)]
pub(crate) struct ClaimPath {
    full: String,
    /// The dotted segments; empty when the name has no dot (then only `full` is looked up).
    segments: Vec<String>,
}

impl ClaimPath {
    pub(crate) fn parse(rule: &str, name: &str) -> Result<Self, PolicyError> {
        if name.is_empty() {
            return Err(PolicyError::rule(rule, "claim name is empty"));
        }
        let segments: Vec<String> = if name.contains('.') {
            name.split('.').map(str::to_owned).collect()
        } else {
            Vec::new()
        };
        // `a..b` or a leading/trailing dot can only be a typo, and would silently never match
        // as a path.
        if segments.iter().any(String::is_empty) {
            return Err(PolicyError::rule(
                rule,
                format!("claim path {name:?} has an empty segment"),
            ));
        }
        Ok(ClaimPath {
            full: name.to_owned(),
            segments,
        })
    }

    /// The claim's value, if present.
    pub(crate) fn lookup<'c>(&self, claims: &'c BTreeMap<String, Value>) -> Option<&'c Value> {
        if let Some(v) = claims.get(&self.full) {
            return Some(v);
        }
        let (first, rest) = self.segments.split_first()?;
        let mut current = claims.get(first)?;
        for segment in rest {
            current = current.as_object()?.get(segment)?;
        }
        Some(current)
    }
}

/// The strings of a claim that may be a single string or an array of strings (`roles`, `amr`,
/// `groups`): IdPs disagree, and a lone string means a one-element set. Non-string elements are
/// skipped rather than stringified, so `1` never matches `"1"`.
pub(crate) fn claim_strings(value: &Value) -> impl Iterator<Item = &str> {
    let (single, many) = match value {
        Value::String(s) => (Some(s.as_str()), None),
        Value::Array(items) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    single.into_iter().chain(many.into_iter().flatten())
}

/// Whether a scalar claim value is exactly `param`: a string equal to it, or an integer whose
/// canonical decimal form is it (numeric ids; `042` does not match `42`). Floats, booleans and
/// containers never match an object id.
pub(crate) fn scalar_is(value: &Value, param: &str) -> bool {
    match value {
        Value::String(s) => s == param,
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string() == param,
        _ => false,
    }
}

/// Whether a JSON value is a scalar usable in a claim rule.
pub(crate) fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> BTreeMap<String, Value> {
        match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }

    #[test]
    fn dotted_path_walks_objects() {
        let c = claims(json!({"realm_access": {"roles": ["a"]}}));
        let p = ClaimPath::parse("roles", "realm_access.roles").unwrap();
        assert_eq!(p.lookup(&c), Some(&json!(["a"])));
        let missing = ClaimPath::parse("roles", "realm_access.nope").unwrap();
        assert_eq!(missing.lookup(&c), None);
        let through_scalar = ClaimPath::parse("roles", "realm_access.roles.x").unwrap();
        assert_eq!(through_scalar.lookup(&c), None);
    }

    #[test]
    fn exact_name_with_dots_wins() {
        let c = claims(
            json!({"https://example.com/roles": ["x"], "https://example": {"com/roles": ["y"]}}),
        );
        let p = ClaimPath::parse("roles", "https://example.com/roles").unwrap();
        assert_eq!(p.lookup(&c), Some(&json!(["x"])));
    }

    #[test]
    fn empty_segments_refused() {
        assert!(ClaimPath::parse("r", "a..b").is_err());
        assert!(ClaimPath::parse("r", ".a").is_err());
        assert!(ClaimPath::parse("r", "a.").is_err());
        assert!(ClaimPath::parse("r", "").is_err());
    }

    #[test]
    fn strings_of_string_or_array() {
        assert_eq!(claim_strings(&json!("a")).collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            claim_strings(&json!(["a", 1, "b"])).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(claim_strings(&json!(1)).count(), 0);
    }

    #[test]
    fn scalar_is_exact() {
        assert!(scalar_is(&json!("alice"), "alice"));
        assert!(!scalar_is(&json!("Alice"), "alice"));
        assert!(scalar_is(&json!(42), "42"));
        assert!(!scalar_is(&json!(42), "042"));
        assert!(!scalar_is(&json!(42.0), "42"));
        assert!(!scalar_is(&json!(true), "true"));
    }
}
