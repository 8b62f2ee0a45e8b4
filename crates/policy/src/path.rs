//! Route path templates (`/users/{user_id}/orders/{order_id}`) and the extraction of path
//! parameters for ownership rules and CEL.
//!
//! The danger this module guards against is a parameter that the gateway checks as one object
//! while the upstream acts on another: `/users/%2e%2e/orders/1` or `/users/..%2Fadmin/orders/1`
//! would compare `..` or `../admin` against a claim here, and an upstream that decodes and
//! normalises would serve a different path. So each parameter is percent-decoded exactly once
//! and any value that could be read as a path step (`.`, `..`), a separator (`/`, `\`), or that
//! holds control characters is refused outright: no match, and the gateway denies. A
//! double-encoded `%252e` decodes once to the literal text `%2e` and stays that text.

use std::collections::{BTreeMap, BTreeSet};

use crate::PolicyError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Compared byte for byte with the raw (still encoded) request segment, so there is exactly
    /// one spelling of a literal and no decoding question to get wrong.
    Literal(String),
    Param(String),
}

/// A compiled path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    source: String,
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parses a template: `/`-separated segments, each a literal or exactly `{name}` with `name`
    /// an identifier (`[A-Za-z_][A-Za-z0-9_]*`) used once.
    pub fn parse(template: &str) -> Result<PathTemplate, PolicyError> {
        let err = |message: String| PolicyError::Template {
            template: template.to_owned(),
            message,
        };
        let Some(rest) = template.strip_prefix('/') else {
            return Err(err("must start with '/'".to_owned()));
        };
        if template.contains(['?', '#']) {
            return Err(err("must not contain '?' or '#'".to_owned()));
        }
        let raw: Vec<&str> = rest.split('/').collect();
        let last = raw.len() - 1;
        let mut seen = BTreeSet::new();
        let mut segments = Vec::with_capacity(raw.len());
        for (i, seg) in raw.iter().enumerate() {
            if let Some(inner) = seg.strip_prefix('{') {
                let Some(name) = inner.strip_suffix('}') else {
                    return Err(err(format!(
                        "segment {seg:?} opens '{{' but does not close it"
                    )));
                };
                if !is_identifier(name) {
                    return Err(err(format!("parameter name {name:?} is not an identifier")));
                }
                if !seen.insert(name) {
                    return Err(err(format!("parameter {name:?} appears twice")));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else {
                if seg.contains(['{', '}']) {
                    // `user-{id}` style partial segments are not supported: refuse rather than
                    // treat the braces as literal text that would never match.
                    return Err(err(format!(
                        "segment {seg:?}: a parameter must be a whole segment"
                    )));
                }
                // An empty segment is only meaningful as a trailing slash (or the root `/`).
                if seg.is_empty() && i != last {
                    return Err(err("empty segment ('//')".to_owned()));
                }
                if *seg == "." || *seg == ".." {
                    return Err(err(format!("dot segment {seg:?}")));
                }
                segments.push(Segment::Literal((*seg).to_owned()));
            }
        }
        Ok(PathTemplate {
            source: template.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parameter names, in path order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Matches a raw request path (percent-encoded; anything from `?` on is ignored) and returns
    /// the decoded parameters, or `None` when the path does not match or a parameter value is
    /// refused (see the module docs) — the gateway must then deny.
    pub fn match_path(&self, raw_path: &str) -> Option<BTreeMap<String, String>> {
        let path = raw_path.split_once('?').map_or(raw_path, |(p, _)| p);
        let rest = path.strip_prefix('/')?;
        let mut raw_segments = rest.split('/');
        let mut params = BTreeMap::new();
        for segment in &self.segments {
            let raw = raw_segments.next()?;
            match segment {
                Segment::Literal(lit) => {
                    if lit != raw {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), decode_param(raw)?);
                }
            }
        }
        // Extra segments (including a trailing slash the template lacks) are a different path.
        if raw_segments.next().is_some() {
            return None;
        }
        Some(params)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Decodes one raw path segment into a parameter value, or refuses it.
fn decode_param(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let decoded = if raw.contains('%') {
        percent_decode(raw)?
    } else {
        raw.to_owned()
    };
    if decoded.contains(['/', '\\']) || decoded.chars().any(|c| c.is_ascii_control()) {
        return None;
    }
    // Some servlet containers drop `;params` from a segment before normalising, so `..;x` acts
    // as `..` there: judge the part before `;` as the dot segment it may become.
    let step = decoded.split(';').next().unwrap_or_default();
    if step == "." || step == ".." {
        return None;
    }
    Some(decoded)
}

/// Decodes every `%XX` once. A `%` not followed by two hex digits, or bytes that are not UTF-8
/// (overlong `%c0%ae` included), refuse the value instead of guessing.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> PathTemplate {
        PathTemplate::parse(s).unwrap()
    }

    fn one(template: &str, path: &str, name: &str) -> Option<String> {
        t(template)
            .match_path(path)
            .map(|mut m| m.remove(name).unwrap())
    }

    #[test]
    fn parses_and_lists_params() {
        let tpl = t("/users/{user_id}/orders/{order_id}");
        assert_eq!(
            tpl.param_names().collect::<Vec<_>>(),
            ["user_id", "order_id"]
        );
        assert_eq!(tpl.as_str(), "/users/{user_id}/orders/{order_id}");
        assert_eq!(t("/").param_names().count(), 0);
    }

    #[test]
    fn malformed_templates_refused() {
        for bad in [
            "users/{id}",
            "/users/{id",
            "/users/{}",
            "/users/{1id}",
            "/users/{a-b}",
            "/users/{id}/x/{id}",
            "/users/u-{id}",
            "/users//x",
            "/users/../x",
            "/users/{id}?x",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_segment_by_segment() {
        let tpl = t("/users/{user_id}/orders/{order_id}");
        let m = tpl.match_path("/users/alice/orders/42").unwrap();
        assert_eq!(m["user_id"], "alice");
        assert_eq!(m["order_id"], "42");
        assert!(tpl.match_path("/users/alice/orders").is_none());
        assert!(tpl.match_path("/users/alice/orders/42/x").is_none());
        assert!(tpl.match_path("/users/alice/orders/42/").is_none());
        assert!(tpl.match_path("/users//orders/42").is_none());
        assert!(tpl.match_path("/Users/alice/orders/42").is_none());
        assert!(tpl.match_path("users/alice/orders/42").is_none());
        // Literals are compared raw: an encoded spelling of a literal is not that literal.
        assert!(tpl.match_path("/%75sers/alice/orders/42").is_none());
        // The query is not part of the path.
        assert_eq!(
            tpl.match_path("/users/a/orders/1?x=/y").unwrap()["order_id"],
            "1"
        );
    }

    #[test]
    fn decodes_exactly_once() {
        let tpl = "/users/{id}";
        assert_eq!(
            one(tpl, "/users/alice%40example.com", "id").unwrap(),
            "alice@example.com"
        );
        assert_eq!(one(tpl, "/users/%252e", "id").unwrap(), "%2e");
        assert_eq!(one(tpl, "/users/%252e%252e", "id").unwrap(), "%2e%2e");
        assert_eq!(one(tpl, "/users/%C3%A9", "id").unwrap(), "é");
        assert_eq!(one(tpl, "/users/a%20b", "id").unwrap(), "a b");
        assert_eq!(one(tpl, "/users/a+b", "id").unwrap(), "a+b");
        assert_eq!(one(tpl, "/users/...", "id").unwrap(), "...");
    }

    #[test]
    fn refuses_confusable_values() {
        let tpl = t("/users/{id}/orders/{order}");
        for path in [
            "/users/%2e%2e/orders/1",
            "/users/%2E%2E/orders/1",
            "/users/%2e/orders/1",
            "/users/.%2e/orders/1",
            "/users/../orders/1",
            "/users/./orders/1",
            "/users/..%2Fadmin/orders/1",
            "/users/a%2Fb/orders/1",
            "/users/a%2fb/orders/1",
            "/users/a%5Cb/orders/1",
            "/users/a\\b/orders/1",
            "/users/a%00/orders/1",
            "/users/a%0d%0a/orders/1",
            "/users/a%7f/orders/1",
            "/users/..;x/orders/1",
            "/users/%2e%2e;/orders/1",
            "/users/%c0%ae%c0%ae/orders/1",
            "/users/%ff/orders/1",
            "/users/%zz/orders/1",
            "/users/%2/orders/1",
            "/users/abc%/orders/1",
        ] {
            assert!(tpl.match_path(path).is_none(), "{path}");
        }
    }
}
