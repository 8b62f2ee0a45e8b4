//! Extraction of every user-controlled value of a request, with its location.
//!
//! The gateway hands over a [`RequestView`]; this module turns it into a flat list of
//! [`Item`]s: path segments, the whole path, path parameters, query and form names and
//! values, cookie names and values, inspectable headers, JSON keys and strings at any depth,
//! multipart field names, file names and text parts, XML text and attribute values. Each
//! item records where it came from (a JSON-pointer-like location that never contains the
//! value) and which rule targets apply. Work is bounded: extraction stops at the configured
//! number of values and bytes and reports that it was capped.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;

use regex::Regex;
use serde_json::Value;

use super::RequestView;
use super::normalize::percent_decode;
use super::rules::target;

/// Headers never inspected: credentials (inspected by authentication, and full of base64
/// that looks like anything), hop-by-hop and framing headers, and content negotiation
/// headers whose grammar (`*/*;q=0.8`) is fixed by browsers.
const SKIPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "cookie",
    "if-none-match",
    "if-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
    "pragma",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "sec-fetch-user",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "x-request-id",
    "traceparent",
    "tracestate",
    "content-encoding",
];

/// Maximum JSON nesting walked; deeper values are reported as capped.
const MAX_JSON_DEPTH: usize = 64;

/// One value to inspect.
pub(crate) struct Item<'a> {
    /// Where the value is, as a range of [`Collector::locations`]: one buffer per request
    /// instead of one `String` per value, since only values with a finding need it.
    pub location: Range<usize>,
    pub raw: Cow<'a, str>,
    pub target: u16,
    /// Whether `+` means a space (query strings and url-encoded forms).
    pub plus_as_space: bool,
    /// For values: the decoded parameter name they belong to (not lower-cased: only the
    /// rare value that looks like a URL needs it, and lower-cases it then).
    pub param: Option<Cow<'a, str>>,
    /// For names: true when this is a query/form/JSON parameter name (where a session id
    /// does not belong), false for cookie names.
    pub is_param_name: bool,
    /// The header name, for header values.
    pub header: Option<&'a str>,
}

/// Collects items up to the configured limits.
pub(crate) struct Collector<'a> {
    pub items: Vec<Item<'a>>,
    /// Every item's location, concatenated (see [`Item::location`]).
    locations: String,
    bytes: usize,
    max_values: usize,
    max_bytes: usize,
    pub capped: bool,
}

impl<'a> Collector<'a> {
    /// `body_len`: the request body's length, from which the number of values is guessed.
    pub(crate) fn new(max_values: usize, max_bytes: usize, body_len: usize) -> Self {
        // Typical API requests have tens of values; a JSON array of records has about one
        // value per 16 bytes. Guessing from the body avoids regrowing (and copying) the
        // vector a dozen times on large bodies; the cap bounds what a body of one long
        // string reserves for nothing.
        let expected_values = (body_len / 16).clamp(64, 8192).min(max_values);
        Self {
            items: Vec::with_capacity(expected_values),
            locations: String::with_capacity(1024),
            bytes: 0,
            max_values,
            max_bytes,
            capped: false,
        }
    }

    fn push(&mut self, item: Item<'a>) -> bool {
        if item.raw.is_empty() {
            return true;
        }
        if self.items.len() >= self.max_values || self.bytes + item.raw.len() > self.max_bytes {
            self.capped = true;
            return false;
        }
        self.bytes += item.raw.len();
        self.items.push(item);
        true
    }

    /// The bytes of values collected so far.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The location text of `item`.
    pub(crate) fn location(&self, item: &Item<'_>) -> &str {
        self.locations.get(item.location.clone()).unwrap_or("")
    }

    /// Stores a location and returns its range.
    fn intern(&mut self, location: &str) -> Range<usize> {
        let start = self.locations.len();
        self.locations.push_str(location);
        start..self.locations.len()
    }

    /// Stores a formatted location and returns its range.
    fn intern_fmt(&mut self, location: std::fmt::Arguments<'_>) -> Range<usize> {
        let start = self.locations.len();
        // Writing to a `String` cannot fail.
        let _ = self.locations.write_fmt(location);
        start..self.locations.len()
    }

    fn value(&mut self, location: Range<usize>, raw: Cow<'a, str>, target: u16) -> bool {
        self.push(Item {
            location,
            raw,
            target,
            plus_as_space: false,
            param: None,
            is_param_name: false,
            header: None,
        })
    }
}

/// Appends the decimal digits of `index` (every array element of a body gets one; the
/// formatting machinery costs several times more).
fn push_index(out: &mut String, index: usize) {
    let mut digits = [0u8; 20];
    let mut n = index;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// A location segment for a field name: the name itself when it is short and plain, else
/// `@index`, so that locations never echo attacker-chosen text.
pub(crate) fn push_segment(out: &mut String, name: &str, index: usize) {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'$' | b' '));
    if plain {
        out.push_str(name);
    } else {
        // Writing to a `String` cannot fail.
        let _ = write!(out, "@{index}");
    }
}

/// Splits `a=b&c=d` pairs (query strings and url-encoded forms) into name and value items.
fn url_encoded<'a>(collector: &mut Collector<'a>, prefix: &str, input: &'a str) {
    for (index, pair) in input.split('&').enumerate() {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        let decoded_name = percent_decode(name, true);
        let location = collector.intern_fmt(format_args!("/{prefix}/"));
        push_segment(&mut collector.locations, &decoded_name, index);
        let location = location.start..collector.locations.len();
        let ok = collector.push(Item {
            location: location.clone(),
            raw: Cow::Borrowed(name),
            target: target::NAME,
            plus_as_space: true,
            param: None,
            is_param_name: true,
            header: None,
        });
        if !ok {
            return;
        }
        if let Some(value) = value {
            let ok = collector.push(Item {
                location,
                raw: Cow::Borrowed(value),
                target: target::QUERY,
                plus_as_space: true,
                param: Some(decoded_name),
                is_param_name: false,
                header: None,
            });
            if !ok {
                return;
            }
        }
    }
}

fn cookies<'a>(collector: &mut Collector<'a>, header: &'a str) {
    for (index, pair) in header.split(';').enumerate() {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let start = collector.intern("/cookie/").start;
        push_segment(
            &mut collector.locations,
            &percent_decode(name, false),
            index,
        );
        let location = start..collector.locations.len();
        collector.push(Item {
            location: location.clone(),
            raw: Cow::Borrowed(name),
            target: target::NAME,
            plus_as_space: false,
            param: None,
            is_param_name: false,
            header: None,
        });
        collector.value(location, Cow::Borrowed(value), target::HEADER);
    }
}

fn json<'a>(collector: &mut Collector<'a>, value: &'a Value, pointer: &mut String, depth: usize) {
    if depth > MAX_JSON_DEPTH {
        collector.capped = true;
        return;
    }
    match value {
        Value::String(s) => {
            let location = collector.intern(pointer);
            collector.value(location, Cow::Borrowed(s.as_str()), target::BODY);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                push_index(pointer, i);
                json(collector, item, pointer, depth + 1);
                pointer.truncate(len);
                if collector.capped {
                    return;
                }
            }
        }
        Value::Object(map) => {
            let parent_is_constructor = pointer.ends_with("/constructor");
            for (i, (key, item)) in map.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                push_segment(pointer, key, i);
                // `{"constructor": {"prototype": ...}}` pollutes like `constructor.prototype`.
                let name: Cow<'a, str> = if parent_is_constructor {
                    Cow::Owned(format!("constructor.{key}"))
                } else {
                    Cow::Borrowed(key.as_str())
                };
                let location = collector.intern(pointer);
                let ok = collector.push(Item {
                    location: location.clone(),
                    raw: name,
                    target: target::NAME,
                    plus_as_space: false,
                    param: None,
                    is_param_name: true,
                    header: None,
                });
                if !ok {
                    return;
                }
                if let Value::String(s) = item {
                    collector.push(Item {
                        location,
                        raw: Cow::Borrowed(s.as_str()),
                        target: target::BODY,
                        plus_as_space: false,
                        param: Some(Cow::Borrowed(key.as_str())),
                        is_param_name: false,
                        header: None,
                    });
                } else {
                    json(collector, item, pointer, depth + 1);
                }
                pointer.truncate(len);
                if collector.capped {
                    return;
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Reads a `name="value"` parameter of a header such as `Content-Disposition`.
fn header_param<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    let lower = header.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name) {
        let start = from + pos;
        let before_ok = start == 0 || matches!(lower.as_bytes()[start - 1], b';' | b' ' | b'\t');
        let rest = &header[start + name.len()..];
        let rest_trim = rest.trim_start();
        if before_ok && let Some(after_eq) = rest_trim.strip_prefix('=') {
            let after_eq = after_eq.trim_start();
            if let Some(quoted) = after_eq.strip_prefix('"') {
                return Some(quoted.split('"').next().unwrap_or(quoted));
            }
            return Some(after_eq.split(';').next().unwrap_or(after_eq).trim());
        }
        from = start + name.len();
    }
    None
}

fn multipart<'a>(collector: &mut Collector<'a>, body: &'a str, boundary: &str) {
    let delimiter = format!("--{boundary}");
    for (index, part) in body.split(delimiter.as_str()).enumerate().skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches(['\r', '\n']);
        let (head, content) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
            .unwrap_or((part, ""));
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        let name = header_param(disposition, "name").unwrap_or("");
        let start = collector.intern("/form/").start;
        push_segment(&mut collector.locations, name, index);
        let location = start..collector.locations.len();
        let name_item = Item {
            location: location.clone(),
            raw: Cow::Borrowed(name),
            target: target::NAME,
            plus_as_space: false,
            param: None,
            is_param_name: true,
            header: None,
        };
        if !collector.push(name_item) {
            return;
        }
        if let Some(filename) = header_param(disposition, "filename") {
            let start = collector.locations.len();
            collector.locations.extend_from_within(location.clone());
            collector.locations.push_str("/filename");
            let file_location = start..collector.locations.len();
            collector.value(
                file_location,
                Cow::Borrowed(filename),
                target::FILENAME | target::QUERY,
            );
        }
        let content = content
            .strip_suffix("\r\n")
            .or_else(|| content.strip_suffix('\n'))
            .unwrap_or(content);
        // Binary parts (images, archives) are not inspected as text.
        if !content.contains('\u{fffd}') && !content.contains('\0') {
            collector.push(Item {
                location,
                raw: Cow::Borrowed(content),
                target: target::BODY,
                plus_as_space: false,
                param: Some(Cow::Borrowed(name)),
                is_param_name: false,
                header: None,
            });
        }
        if collector.capped {
            return;
        }
    }
}

/// True when a text body looks like `name=value&...` (curl and many clients send forms
/// without a content type, and text/plain forms exist).
fn looks_like_form(body: &str) -> bool {
    let first = body.split('&').next().unwrap_or("");
    match first.find('=') {
        Some(eq) => eq > 0 && !first[..eq].contains([' ', '\n', '<', '{', '"']),
        None => false,
    }
}

/// True when a body without a content type is one url-encoded token (`%27%3B+select`):
/// clients that forget the content type still send form encoding.
fn looks_url_encoded(body: &str) -> bool {
    let token = body.trim_end_matches(['\r', '\n']);
    !token.is_empty()
        && !token.contains(char::is_whitespace)
        && (token.contains('+')
            || token
                .as_bytes()
                .windows(3)
                .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit()))
}

/// Extracts every inspectable value of `req`.
pub(crate) fn extract<'a>(
    req: &RequestView<'a>,
    parsed_json: Option<&'a Value>,
    xml_values: &Regex,
    collector: &mut Collector<'a>,
) {
    // Path: the whole path for traversal, then each segment.
    let location = collector.intern("/path");
    collector.value(location, Cow::Borrowed(req.path), target::FULL_PATH);
    for (i, seg) in req.path.split('/').filter(|s| !s.is_empty()).enumerate() {
        let location = collector.intern_fmt(format_args!("/path/{i}"));
        collector.value(location, Cow::Borrowed(seg), target::PATH);
    }
    for (i, (name, value)) in req.path_params.iter().enumerate() {
        let start = collector.intern("/path_param/").start;
        push_segment(&mut collector.locations, name, i);
        let location = start..collector.locations.len();
        collector.push(Item {
            location,
            raw: Cow::Borrowed(value.as_str()),
            target: target::PATH | target::QUERY,
            plus_as_space: false,
            param: Some(Cow::Borrowed(*name)),
            is_param_name: false,
            header: None,
        });
    }
    if let Some(query) = req.query {
        url_encoded(collector, "query", query);
    }
    for (name, value) in req.headers {
        let name = name.as_str();
        let text = String::from_utf8_lossy(value.as_bytes());
        if name == "cookie" {
            if let Cow::Borrowed(s) = text {
                cookies(collector, s);
            } else {
                // Non-UTF-8 cookies: inspect the whole header as one value.
                let location = collector.intern("/header/cookie");
                collector.value(location, text, target::HEADER);
            }
            continue;
        }
        if SKIPPED_HEADERS.contains(&name) {
            continue;
        }
        let is_filename = name.contains("filename") || name.contains("file-name");
        let mut t = target::HEADER;
        if is_filename {
            t |= target::FILENAME;
        }
        let location = collector.intern_fmt(format_args!("/header/{name}"));
        collector.push(Item {
            location,
            raw: text,
            target: t,
            plus_as_space: false,
            param: None,
            is_param_name: false,
            header: Some(name),
        });
    }
    let ct = req.content_type.unwrap_or("").to_ascii_lowercase();
    if let Some(value) = parsed_json {
        let mut pointer = String::from("/body");
        json(collector, value, &mut pointer, 0);
        return;
    }
    let Some(body) = req.body.filter(|b| !b.is_empty()) else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    let text: &'a str = match text {
        Cow::Borrowed(s) => s,
        Cow::Owned(_) => {
            // Lossy conversion of a non-UTF-8 body: inspect the valid prefix only; binary
            // bodies are not the target of text payload detection.
            let valid = std::str::from_utf8(body)
                .map_err(|e| e.valid_up_to())
                .err()
                .unwrap_or(body.len());
            std::str::from_utf8(&body[..valid]).unwrap_or("")
        }
    };
    if ct.contains("multipart/form-data")
        && let Some(boundary) = header_param(req.content_type.unwrap_or(""), "boundary")
    {
        multipart(collector, text, boundary);
        return;
    }
    if ct.contains("x-www-form-urlencoded") {
        url_encoded(collector, "form", text.trim_end_matches(['\r', '\n']));
        return;
    }
    if ct.contains("xml") || (ct.is_empty() && text.trim_start().starts_with("<?xml")) {
        let location = collector.intern("/body");
        collector.value(location, Cow::Borrowed(text), target::XML_RAW);
        for (i, caps) in xml_values.captures_iter(text).enumerate() {
            let Some(m) = caps.get(1).or_else(|| caps.get(2)).or_else(|| caps.get(3)) else {
                continue;
            };
            let v = m.as_str().trim();
            if v.is_empty() {
                continue;
            }
            let location = collector.intern_fmt(format_args!("/xml/{i}"));
            if !collector.value(location, Cow::Borrowed(v), target::BODY) {
                return;
            }
        }
        return;
    }
    if !ct.contains("json") && (looks_like_form(text) || (ct.is_empty() && looks_url_encoded(text)))
    {
        url_encoded(collector, "form", text.trim_end_matches(['\r', '\n']));
        return;
    }
    let location = collector.intern("/body");
    collector.value(location, Cow::Borrowed(text), target::BODY);
}

#[cfg(test)]
mod tests {
    use super::push_index;

    #[test]
    fn push_index_writes_decimal_digits() {
        let mut out = String::from("/items/");
        for i in [0, 7, 10, 99, 12_345, usize::MAX] {
            let len = out.len();
            push_index(&mut out, i);
            assert_eq!(&out[len..], i.to_string());
            out.truncate(len);
        }
    }
}
