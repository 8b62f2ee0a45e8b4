//! Request bodies by media type: JSON, URL-encoded forms and multipart forms.
//!
//! JSON (including `+json` types) is validated as is. Form bodies are turned into an object first,
//! each field coerced to the type its property declares, so the same schema checks apply. The
//! multipart reader is small and strict: it reads the boundary from the `Content-Type`, splits the
//! buffered body on it and parses each part's headers with `httparse`; file parts only count as
//! present (their bytes are not validated).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::params::{Kind, coerce};

/// How a declared media type is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Json,
    Form,
    Multipart,
    Other,
}

/// The essence (`type/subtype`, lowercased) of a `Content-Type` value.
pub(crate) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// One parameter of a `Content-Type` value (e.g. `boundary`).
pub(crate) fn media_param<'a>(content_type: &'a str, name: &str) -> Option<&'a str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Classifies a media type essence.
pub(crate) fn media_kind(essence: &str) -> MediaKind {
    if essence == "application/json" || essence.ends_with("+json") {
        MediaKind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        MediaKind::Form
    } else if essence == "multipart/form-data" {
        MediaKind::Multipart
    } else {
        MediaKind::Other
    }
}

/// Whether a declared media range (`application/json`, `application/*`, `*/*`) covers `essence`.
pub(crate) fn range_covers(range: &str, essence: &str) -> bool {
    if range == essence || range == "*/*" {
        return true;
    }
    match range.strip_suffix("/*") {
        Some(top) => essence.split('/').next() == Some(top),
        None => false,
    }
}

/// How specific a media range is (exact beats `type/*` beats `*/*`).
pub(crate) fn range_rank(range: &str) -> u8 {
    if range == "*/*" {
        0
    } else if range.ends_with("/*") {
        1
    } else {
        2
    }
}

/// Puts one form field into `map`: repeated fields become arrays when the property is an array.
fn insert_field(
    map: &mut Map<String, Value>,
    props: Option<&std::collections::BTreeMap<String, Kind>>,
    key: &str,
    text: &str,
) {
    let kind = props.and_then(|p| p.get(key)).unwrap_or(&Kind::Any);
    match kind {
        Kind::Array(items) => {
            let entry = map
                .entry(key.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(coerce(text, items));
            }
        }
        _ => {
            map.insert(key.to_owned(), coerce(text, kind));
        }
    }
}

/// Decodes an `application/x-www-form-urlencoded` body into an object.
pub(crate) fn form_to_value(body: &[u8], kind: &Kind) -> Value {
    let props = match kind {
        Kind::Object(p) => Some(p),
        _ => None,
    };
    let mut map = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        insert_field(&mut map, props, &k, &v);
    }
    Value::Object(map)
}

/// Why a multipart body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MultipartError {
    NoBoundary,
    Malformed,
}

/// Reads a `multipart/form-data` body into an object of its fields.
pub(crate) fn multipart_to_value(
    body: &[u8],
    content_type: &str,
    kind: &Kind,
) -> Result<Value, MultipartError> {
    let boundary = media_param(content_type, "boundary")
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or(MultipartError::NoBoundary)?;
    let props = match kind {
        Kind::Object(p) => Some(p),
        _ => None,
    };
    let delimiter = format!("--{boundary}");
    let delim = delimiter.as_bytes();
    let mut map = Map::new();
    // The body starts with the first delimiter (a preamble is allowed before it).
    let mut pos = find(body, delim, 0).ok_or(MultipartError::Malformed)? + delim.len();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(Value::Object(map));
        }
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or(MultipartError::Malformed)?;
        let start = body.len() - rest.len();
        let close = format!("\r\n--{boundary}");
        let end = find(body, close.as_bytes(), start).ok_or(MultipartError::Malformed)?;
        let part = &body[start..end];
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let (header_len, headers) = match httparse::parse_headers(part, &mut headers) {
            Ok(httparse::Status::Complete((n, h))) => (n, h),
            _ => return Err(MultipartError::Malformed),
        };
        let disposition = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-disposition"))
            .map(|h| String::from_utf8_lossy(h.value))
            .ok_or(MultipartError::Malformed)?;
        let name = media_param(&disposition, "name")
            .ok_or(MultipartError::Malformed)?
            .to_owned();
        let is_file = media_param(&disposition, "filename").is_some();
        let content = &part[header_len..];
        let text: Cow<'_, str> = if is_file {
            Cow::Borrowed("")
        } else {
            String::from_utf8_lossy(content)
        };
        if is_file {
            // A file is present; its bytes are not a schema value.
            map.insert(name, Value::String(String::new()));
        } else {
            insert_field(&mut map, props, &name, &text);
        }
        pos = end + close.len();
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_fields_and_files() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"qty\"\r\n\r\n3\r\n--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        let mut props = std::collections::BTreeMap::new();
        props.insert("qty".to_owned(), Kind::Integer);
        let v = multipart_to_value(
            body,
            "multipart/form-data; boundary=XyZ",
            &Kind::Object(props),
        )
        .unwrap();
        assert_eq!(v, serde_json::json!({"qty": 3, "doc": ""}));
        assert_eq!(
            multipart_to_value(b"junk", "multipart/form-data", &Kind::Any),
            Err(MultipartError::NoBoundary)
        );
    }
}
