//! Request restrictions: what a client may send before anything is forwarded — an
//! unambiguous path, no credentials in the URL, allowed methods and media types, and a body
//! within the route's limit.

use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use http::{Method, StatusCode, request::Parts};
use portcullis_events::{Finding, Severity};

use crate::config::RequestPolicy;
use crate::problem::Rejection;

/// URL length and header count. The strict HTTP/1 reader already enforces these while
/// reading; this covers HTTP/2, whose frames never pass through it.
pub fn check_limits(parts: &Parts, limits: &crate::config::Limits) -> Result<(), Rejection> {
    let url_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if url_len > limits.max_url_length {
        return Err(Rejection::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "URI Too Long",
        ));
    }
    if parts.headers.len() > limits.max_headers {
        return Err(Rejection::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_many_headers",
            "Request Header Fields Too Large",
        ));
    }
    Ok(())
}

/// Refuse paths that different servers would read differently: dot segments, encoded
/// slashes or backslashes, encoded dots and NUL. A route decided on the raw path must be the
/// route the upstream serves, or the gateway's policy can be walked around (`/public/../admin`).
pub fn check_path(path: &str) -> Result<(), Rejection> {
    let lower = path.to_ascii_lowercase();
    let ambiguous = path.contains('\\')
        || ["%2f", "%5c", "%2e", "%00"]
            .iter()
            .any(|p| lower.contains(p))
        // Fix: `..;x` / `.;x` passed, but servlet containers (Tomcat, Jetty) drop `;params`
        // before normalising, so `/public/..;/admin` reached a protected path through a
        // public route. The part of a segment before `;` is judged as the step it may become.
        || path.split('/').any(|seg| {
            let step = seg.split(';').next().unwrap_or(seg);
            step == "." || step == ".."
        });
    if ambiguous {
        return Err(Rejection::bad_request(
            "ambiguous_path",
            "the path contains dot segments or encoded separators",
        ));
    }
    Ok(())
}

/// Credentials in a URL end up in logs, browser history and referrers: refuse them.
/// The finding records the parameter's name, never its value.
pub fn check_url_credentials(
    parts: &Parts,
    policy: &RequestPolicy,
    findings: &mut Vec<Finding>,
) -> Result<(), Rejection> {
    let userinfo = parts
        .uri
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
        || parts
            .headers
            .get(http::header::HOST)
            .is_some_and(|h| h.as_bytes().contains(&b'@'));
    if userinfo {
        findings.push(finding("userinfo", "url.userinfo"));
        return Err(Rejection::bad_request(
            "credential_in_url",
            "credentials are not accepted in the URL",
        ));
    }
    let Some(query) = parts.uri.query() else {
        return Ok(());
    };
    // Fix: only `&` used to separate parameters, so `?page=1;api_key=…` was forwarded although
    // backends that also split on `;` (Rack, older Python) read a credential from it; the
    // event redactor already treats both as separators.
    for pair in query.split(['&', ';']) {
        let raw_name = pair.split('=').next().unwrap_or("");
        let name = percent_decode(raw_name).to_ascii_lowercase();
        if policy.credential_params.contains(&name) {
            findings.push(finding("query_parameter", &format!("query.{name}")));
            return Err(Rejection::bad_request(
                "credential_in_url",
                format!("the query parameter `{name}` carries a credential; send it in a header"),
            ));
        }
    }
    Ok(())
}

fn finding(id: &str, location: &str) -> Finding {
    Finding {
        kind: "credential_in_url".into(),
        id: id.into(),
        location: Some(location.into()),
        detail: None,
        severity: Severity::Medium,
    }
}

/// Methods, media types and declared body size.
///
/// `body_follows` says whether a body will be streamed upstream whatever the headers declare
/// (`!Incoming::is_end_stream()`): an HTTP/2 request may carry DATA frames with neither
/// `content-length` nor `transfer-encoding`.
pub fn check_request(
    parts: &Parts,
    policy: &RequestPolicy,
    body_follows: bool,
) -> Result<(), Rejection> {
    if !policy.allowed_methods.is_empty() && !policy.allowed_methods.contains(&parts.method) {
        let allow = policy
            .allowed_methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut rej = Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method Not Allowed",
        );
        if let Ok(v) = HeaderValue::from_str(&allow) {
            rej = rej.header(ALLOW, v);
        }
        return Err(rej);
    }
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > policy.max_body) {
        return Err(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Content Too Large",
        )
        .detail(format!(
            "the request body is limited to {} bytes",
            policy.max_body
        )));
    }
    // Fix: this used to look at the headers only, so an HTTP/2 body sent without
    // `content-length` skipped the media type check and was forwarded with any type.
    let has_body = body_follows
        || declared.is_some_and(|n| n > 0)
        || parts.headers.contains_key(TRANSFER_ENCODING);
    if has_body && !policy.allowed_content_types.is_empty() {
        let media = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let allowed = media.is_some_and(|m| policy.allowed_content_types.contains(&m));
        if !allowed {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported Media Type",
            )
            .detail(format!(
                "accepted request media types: {}",
                policy.allowed_content_types.join(", ")
            )));
        }
    }
    Ok(())
}

/// Percent-decode a query component once (`+` is a space in forms), lossily.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_paths() {
        for p in [
            "/a/../b",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a%2Fb",
            "/a\\b",
            "/a/%00",
            "/..",
            "/a/..;/b",
            "/a/.;x=1/b",
        ] {
            assert!(check_path(p).is_err(), "{p}");
        }
        for p in [
            "/",
            "/a/b",
            "/a/b.json",
            "/a/..b",
            "/a/b..",
            "/v1.2/x",
            "/a;b/c",
            "/a/...;x",
        ] {
            assert!(check_path(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("api%5Fkey"), "api_key");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
