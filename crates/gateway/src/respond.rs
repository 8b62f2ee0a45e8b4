//! Response filters and finishing touches: strip fingerprinting and hop-by-hop headers, mask
//! upstream errors, refuse oversized bodies, add security headers and CORS.

use bytes::Bytes;
use http::header::{
    self, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, HeaderMap, HeaderName,
    HeaderValue, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use portcullis_events::{Finding, Severity};

use crate::body::{Body, BoxError};
use crate::config::{CorsPolicy, ResponsePolicy};
use crate::context::RequestContext;
use crate::forwarding::{X_REQUEST_ID, strip_hop_by_hop};
use crate::problem::{self, Rejection};

/// Filter an upstream response according to the route's response policy.
pub fn filter_upstream(
    policy: &ResponsePolicy,
    ctx: &mut RequestContext,
    method: &Method,
    resp: Response<Incoming>,
) -> Result<Response<Body>, Rejection> {
    let (mut parts, body) = resp.into_parts();
    // The client's connection is the gateway's, not the upstream's: an HTTP/1.0 upstream
    // must not turn the answer to an HTTP/1.1 client into HTTP/1.0 (and close its
    // keep-alive connection). hyper writes HTTP/2 responses regardless of this field.
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    for name in &policy.strip_headers {
        parts.headers.remove(name);
    }
    // The gateway alone decides CORS; an upstream that reflects origins must not override it.
    let cors_headers: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors_headers {
        parts.headers.remove(name);
    }

    if parts.status.is_server_error() && policy.mask_upstream_errors {
        // Stack traces and framework error pages stay behind the gateway.
        ctx.findings.push(Finding {
            kind: "response".into(),
            id: "upstream_error_masked".into(),
            location: None,
            detail: Some(format!("upstream status {}", parts.status.as_u16())),
            severity: Severity::Low,
        });
        ctx.reason = Some("upstream_error_masked");
        let title = parts.status.canonical_reason().unwrap_or("Server Error");
        let rej = Rejection::new(parts.status, "upstream_error", title);
        let mut masked = problem::render(&rej, &ctx.request_id);
        if let Some(retry) = parts.headers.get(header::RETRY_AFTER) {
            masked
                .headers_mut()
                .insert(header::RETRY_AFTER, retry.clone());
        }
        return Ok(masked);
    }

    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A HEAD response declares the size of a body it does not carry.
    if *method != Method::HEAD && declared.is_some_and(|n| n > policy.max_body) {
        ctx.findings.push(Finding {
            kind: "response".into(),
            id: "response_too_large".into(),
            location: None,
            detail: None,
            severity: Severity::Medium,
        });
        return Err(Rejection::bad_gateway("response_too_large"));
    }
    let body: Body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

/// Headers every response gets, gateway-made or proxied.
pub fn finish_headers(
    headers: &mut HeaderMap,
    policy: &ResponsePolicy,
    ctx: &RequestContext,
    hsts: Option<&HeaderValue>,
) {
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
    if let Some(v) = hsts {
        headers.insert(STRICT_TRANSPORT_SECURITY, v.clone());
    }
    if policy.nosniff {
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    if let Some(csp) = &policy.content_security_policy
        && !headers.contains_key(CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(csp)
    {
        headers.insert(CONTENT_SECURITY_POLICY, v);
    }
    if let Some(rp) = &policy.referrer_policy
        && let Ok(v) = HeaderValue::from_str(rp)
    {
        headers.insert(REFERRER_POLICY, v);
    }
    if let Some((policy_value, state)) = &ctx.rate_headers
        && let (Ok(p), Ok(s)) = (
            HeaderValue::from_str(policy_value),
            HeaderValue::from_str(state),
        )
    {
        headers.insert(crate::protect::RATELIMIT_POLICY, p);
        headers.insert(crate::protect::RATELIMIT, s);
    }
    if ctx.authenticated && policy.no_store_when_authenticated {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The allowed origin, if the request's `Origin` is on the route's list.
fn allowed_origin<'a>(
    cors: &CorsPolicy,
    origin: Option<&'a HeaderValue>,
) -> Option<&'a HeaderValue> {
    let origin = origin?;
    let text = origin.to_str().ok()?.to_ascii_lowercase();
    cors.allow_origins.contains(&text).then_some(origin)
}

/// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered by the
/// gateway itself; returns None when the request is not a preflight.
pub fn preflight(
    cors: &CorsPolicy,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Result<Response<Body>, Rejection>> {
    if method != Method::OPTIONS {
        return None;
    }
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    let deny = || {
        Some(Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "cors_denied",
            "Forbidden",
        )
        .detail(
            "the CORS preflight is not allowed for this origin, method or headers",
        )))
    };
    let Some(origin) = allowed_origin(cors, headers.get(header::ORIGIN)) else {
        return deny();
    };
    let method_ok = requested
        .to_str()
        .ok()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .is_some_and(|m| cors.allow_methods.contains(&m));
    let headers_ok = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .all(|h| cors.allow_headers.contains(&h));
    if !method_ok || !headers_ok {
        return deny();
    }
    let mut resp = Response::new(crate::body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    let methods: Vec<&str> = cors.allow_methods.iter().map(Method::as_str).collect();
    if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if !cors.allow_headers.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cors.allow_headers.join(", "))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(age) = cors.max_age {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    if cors.allow_credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    Some(Ok(resp))
}

/// CORS headers on an actual (non-preflight) response. An origin not on the list gets no
/// CORS headers at all, so the browser keeps the response from the calling page.
pub fn cors_headers(cors: &CorsPolicy, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    headers.append(VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = allowed_origin(cors, origin) else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if cors.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if !cors.expose_headers.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(", "))
    {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}
