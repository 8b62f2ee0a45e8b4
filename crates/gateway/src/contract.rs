//! The contract stages: "validate and inspect" on the way in, "data protection" on the way out.
//!
//! On the way in, a route with an OpenAPI document, attack inspection or request-body secret
//! scanning has its body read into memory (within the route's `max_body` and body deadlines)
//! so that it can be checked as a whole before a single byte reaches the upstream; the JSON is
//! parsed once and shared by validation and inspection. On the way out, JSON (and, for data
//! protection, text) responses are buffered, filtered to the properties the contract
//! declares, and scanned for secrets and personal data before the client sees them.
//!
//! Each check runs in `enforce` mode (refuse) or `monitor` mode (let through, record the
//! findings in the event), so operators can roll a contract out safely.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use portcullis_events::{Finding, Severity};
use portcullis_inspect::{RequestView, SecretAction, SecretFinding};
use portcullis_openapi::{OperationMatch, RequestInput, RouteMatch};

use crate::body::{Body, RequestBody, full};
use crate::config::{Enforcement, ResponseContract};
use crate::context::RequestContext;
use crate::problem::{ProblemError, Rejection};
use crate::snapshot::Route;

/// The body the forward stage sends upstream.
pub enum ForwardBody {
    /// Streamed from the client as it arrives (routes without request checks).
    Stream(Incoming),
    /// Read, checked and possibly rewritten by the gateway.
    Buffered(Bytes),
}

/// Deadlines for reading a request body into memory.
pub struct BodyLimits {
    pub timeout: Duration,
    pub min_rate: u64,
}

/// Whether the route checks requests beyond the generic restrictions.
fn checks_requests(route: &Route) -> bool {
    let c = &route.config;
    c.openapi.is_some()
        || c.inspect.is_some()
        || c.data_protection.as_ref().is_some_and(|d| d.request_bodies)
}

/// Whether the route looks at response bodies.
fn protects_responses(route: &Route) -> bool {
    let c = &route.config;
    c.openapi
        .as_ref()
        .is_some_and(|o| o.responses != ResponseContract::Off)
        || c.data_protection.is_some()
}

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence.starts_with("text/")
            || essence == "application/xml"
            || essence.ends_with("+xml")
            || essence == "application/x-www-form-urlencoded"
    })
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

fn severity_of(s: portcullis_inspect::Severity) -> Severity {
    match s {
        portcullis_inspect::Severity::Low => Severity::Low,
        portcullis_inspect::Severity::Medium => Severity::Medium,
        portcullis_inspect::Severity::High => Severity::High,
        portcullis_inspect::Severity::Critical => Severity::Critical,
    }
}

fn action_name(a: SecretAction) -> &'static str {
    match a {
        SecretAction::Mask => "masked",
        SecretAction::Block => "blocked",
        SecretAction::Monitor => "monitored",
    }
}

fn secret_findings(ctx: &mut RequestContext, found: &[SecretFinding]) -> bool {
    let mut block = false;
    for f in found {
        block |= f.action == SecretAction::Block;
        ctx.findings.push(Finding {
            kind: "sensitive_data".into(),
            id: f.detector.clone(),
            location: Some(f.location.clone()),
            detail: Some(action_name(f.action).into()),
            severity: Severity::High,
        });
    }
    block
}

/// The "validate and inspect" stage. Returns the body to forward and the matched operation.
pub async fn check_request<'r>(
    route: &'r Route,
    ctx: &mut RequestContext,
    parts: &mut Parts,
    body: Incoming,
    limits: &BodyLimits,
) -> Result<(ForwardBody, Option<OperationMatch<'r>>), Rejection> {
    if protects_responses(route) {
        // Compressed answers cannot be filtered or scanned: ask the upstream for plain ones.
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    if !checks_requests(route) {
        return Ok((ForwardBody::Stream(body), None));
    }
    let config = &route.config;

    // The operation first: an unknown path or method needs no body to be refused.
    let mut operation = None;
    if let Some(openapi) = &config.openapi {
        let enforce = openapi.mode == Enforcement::Enforce;
        match openapi
            .api
            .match_request(parts.method.as_str(), parts.uri.path())
        {
            RouteMatch::Operation(op) => {
                ctx.operation = Some(portcullis_events::Operation {
                    id: op.operation_id.map(str::to_string),
                    path: op.path_template.to_string(),
                });
                operation = Some(op);
            }
            RouteMatch::NotFound => {
                ctx.findings.push(contract_finding(
                    "openapi.unknown_path",
                    "/path",
                    Severity::Low,
                ));
                if enforce {
                    return Err(Rejection::new(
                        StatusCode::NOT_FOUND,
                        "unknown_operation",
                        "Not Found",
                    )
                    .detail("no operation of this API matches the path"));
                }
            }
            RouteMatch::MethodNotAllowed { allowed } => {
                ctx.findings.push(contract_finding(
                    "openapi.undeclared_method",
                    "/method",
                    Severity::Low,
                ));
                if enforce {
                    let mut rej = Rejection::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        "Method Not Allowed",
                    );
                    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                        rej = rej.header(ALLOW, v);
                    }
                    return Err(rej);
                }
            }
        }
    }

    // Read the body, within the route's size limit and the body deadlines.
    let bytes = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new()
    } else {
        let metered = RequestBody::new(
            body,
            config.request.max_body,
            limits.timeout,
            limits.min_rate,
            ctx.body.clone(),
        );
        match metered.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return Err(crate::forward::body_rejection(ctx).unwrap_or_else(|| {
                    Rejection::bad_request("body_incomplete", "the request body ended unexpectedly")
                }));
            }
        }
    };
    let has_body = !bytes.is_empty();
    let ct = content_type(&parts.headers).map(str::to_owned);
    let mut json = None;
    let mut json_broken = false;
    if has_body && is_json(ct.as_deref()) {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => json = Some(v),
            Err(_) => json_broken = true,
        }
    }

    // Validate against the contract.
    if let (Some(openapi), Some(op)) = (&config.openapi, &operation) {
        let input = RequestInput {
            query: parts.uri.query(),
            headers: &parts.headers,
            body: has_body.then_some(&bytes[..]),
            json: json.as_ref(),
        };
        let mut violations = openapi.api.validate_request(op, &input, &openapi.options());
        if json_broken && violations.iter().all(|v| v.pointer != "/body") {
            violations.push(portcullis_openapi::Violation {
                pointer: "/body".into(),
                rule: "json".into(),
                message: "the body is not valid JSON".into(),
            });
        }
        if !violations.is_empty() {
            for v in &violations {
                ctx.findings.push(Finding {
                    kind: "validation".into(),
                    id: format!("openapi.{}", v.rule),
                    location: Some(v.pointer.clone()),
                    detail: None,
                    severity: Severity::Medium,
                });
            }
            if openapi.mode == Enforcement::Enforce {
                let mut rej = Rejection::bad_request(
                    "invalid_request",
                    "the request does not match the API contract",
                );
                rej.errors = violations
                    .into_iter()
                    .map(|v| ProblemError {
                        pointer: v.pointer,
                        rule: v.rule,
                        detail: v.message,
                    })
                    .collect();
                return Err(rej);
            }
        }
    }

    // Inspect decoded values for attack payloads.
    if let Some(inspect) = &config.inspect {
        let no_params: Vec<(&str, String)> = Vec::new();
        let view = RequestView {
            path: parts.uri.path(),
            path_params: operation
                .as_ref()
                .map_or(&no_params[..], |op| &op.path_params[..]),
            query: parts.uri.query(),
            headers: &parts.headers,
            content_type: ct.as_deref(),
            body: has_body.then_some(&bytes[..]),
            json: json.as_ref(),
        };
        let result = inspect.detector.inspect(&view);
        for f in &result.findings {
            ctx.findings.push(Finding {
                kind: "attack".into(),
                id: f.id.into(),
                location: Some(f.location.clone()),
                detail: Some(format!(
                    "CWE-{} {} score {}",
                    f.cwe, f.attack_technique, f.score
                )),
                severity: severity_of(f.severity),
            });
        }
        if result.score >= inspect.threshold && inspect.mode == Enforcement::Enforce {
            return Err(
                Rejection::new(StatusCode::FORBIDDEN, "attack_detected", "Forbidden")
                    .detail("the request was refused by the gateway's inspection"),
            );
        }
    }

    // Secrets and personal data in the request body, when the route asks.
    let mut bytes = bytes;
    if let Some(dp) = config.data_protection.as_ref().filter(|d| d.request_bodies)
        && has_body
    {
        if let Some(mut value) = json.take() {
            let found = dp.scanner.scan_json(&mut value, "/body");
            if secret_findings(ctx, &found) {
                return Err(Rejection::bad_request(
                    "sensitive_data_in_request",
                    "the request body carries data this API does not accept",
                ));
            }
            if found.iter().any(|f| f.action == SecretAction::Mask)
                && let Ok(out) = serde_json::to_vec(&value)
            {
                bytes = Bytes::from(out);
                set_length(&mut parts.headers, bytes.len());
            }
        } else if let Ok(text) = std::str::from_utf8(&bytes) {
            let (masked, found) = dp.scanner.scan_text(text, "/body");
            if secret_findings(ctx, &found) {
                return Err(Rejection::bad_request(
                    "sensitive_data_in_request",
                    "the request body carries data this API does not accept",
                ));
            }
            if let Some(masked) = masked {
                bytes = Bytes::from(masked);
                set_length(&mut parts.headers, bytes.len());
            }
        }
    }
    Ok((ForwardBody::Buffered(bytes), operation))
}

/// Scan response text (a header value, a non-JSON body): the masked text if anything was
/// masked, or the refusal when a `block` detector matched.
fn scan_response_text(
    dp: &crate::config::DataProtectionPolicy,
    ctx: &mut RequestContext,
    text: &str,
    location: &str,
) -> Result<Option<String>, Rejection> {
    let (masked, found) = dp.scanner.scan_text(text, location);
    if secret_findings(ctx, &found) {
        return Err(Rejection::bad_gateway("sensitive_data_blocked"));
    }
    Ok(masked)
}

/// The whole body, or `None` once it passes `limit` bytes.
async fn read_limited(mut body: Body, limit: usize) -> Result<Option<Bytes>, ()> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ())?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

fn set_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(http::header::TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
}

fn contract_finding(id: &str, location: &str, severity: Severity) -> Finding {
    Finding {
        kind: "validation".into(),
        id: id.into(),
        location: Some(location.into()),
        detail: None,
        severity,
    }
}

/// The "data protection" stage on a response about to go to the client.
pub async fn protect_response(
    route: &Route,
    ctx: &mut RequestContext,
    operation: Option<&OperationMatch<'_>>,
    method: &Method,
    resp: Response<Body>,
) -> Result<Response<Body>, Rejection> {
    if !protects_responses(route)
        || *method == Method::HEAD
        || matches!(
            resp.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
    {
        return Ok(resp);
    }
    let config = &route.config;
    let contract = config
        .openapi
        .as_ref()
        .filter(|o| o.responses != ResponseContract::Off);
    let dp = config.data_protection.as_deref();
    let (mut parts, body) = resp.into_parts();
    let status = parts.status.as_u16();
    let ct = content_type(&parts.headers).map(str::to_owned);

    // Is the response what the contract promised?
    if let (Some(c), Some(op)) = (contract, operation)
        && !c.api.response_status_declared(op, status)
    {
        ctx.findings.push(contract_finding(
            "openapi.undeclared_status",
            "/status",
            Severity::Low,
        ));
    }

    // Secrets in response headers.
    if let Some(dp) = dp.filter(|d| d.response_headers) {
        let mut replaced = Vec::new();
        for (name, value) in &parts.headers {
            let Ok(text) = value.to_str() else { continue };
            if let Some(m) = scan_response_text(dp, ctx, text, &format!("/header/{name}"))?
                && let Ok(v) = HeaderValue::from_str(&m)
            {
                replaced.push((name.clone(), v));
            }
        }
        for (name, v) in replaced {
            parts.headers.insert(name, v);
        }
    }

    let json = is_json(ct.as_deref());
    let filters_body = json && contract.is_some() && operation.is_some();
    let scans_body = dp.is_some() && (json || is_text(ct.as_deref()));
    if !filters_body && !scans_body {
        return Ok(Response::from_parts(parts, body));
    }
    // Could anything change or be refused? Otherwise a body too large to read may pass.
    let may_act = contract.is_some_and(|c| c.responses != ResponseContract::Monitor)
        || dp.is_some_and(|d| !d.monitor_only);
    if parts
        .headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        ctx.findings.push(contract_finding(
            "response.encoded",
            "/header/content-encoding",
            Severity::Low,
        ));
        if may_act {
            return Err(Rejection::bad_gateway("response_not_inspectable"));
        }
        return Ok(Response::from_parts(parts, body));
    }
    let limit = dp
        .map_or(4 << 20, |d| d.max_scan_body)
        .min(config.response.max_body);
    let declared_len = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > limit) {
        ctx.findings.push(contract_finding(
            "response.too_large_to_inspect",
            "/body",
            Severity::Medium,
        ));
        if may_act {
            return Err(Rejection::bad_gateway("response_too_large_to_inspect"));
        }
        return Ok(Response::from_parts(parts, body));
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let read = tokio::time::timeout(
        route.pool.config.response_timeout,
        read_limited(body, limit_usize),
    )
    .await;
    let bytes = match read {
        Ok(Ok(Some(bytes))) => bytes,
        Ok(Ok(None)) => {
            ctx.findings.push(contract_finding(
                "response.too_large_to_inspect",
                "/body",
                Severity::Medium,
            ));
            return Err(Rejection::bad_gateway("response_too_large_to_inspect"));
        }
        Ok(Err(())) => return Err(Rejection::bad_gateway("upstream_unavailable")),
        Err(_) => return Err(Rejection::gateway_timeout()),
    };

    let mut out: Option<Vec<u8>> = None;
    if json {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(mut value) => {
                let mut changed = false;
                if let (Some(c), Some(op)) = (contract, operation) {
                    let original =
                        (c.responses == ResponseContract::Monitor).then(|| value.clone());
                    let report = c.api.filter_response(op, status, ct.as_deref(), &mut value);
                    if report.undeclared_content_type {
                        ctx.findings.push(contract_finding(
                            "openapi.undeclared_content_type",
                            "/header/content-type",
                            Severity::Low,
                        ));
                    }
                    for pointer in &report.removed {
                        ctx.findings.push(Finding {
                            kind: "response_contract".into(),
                            id: "openapi.undeclared_property".into(),
                            location: Some(format!("/body{pointer}")),
                            detail: Some(
                                match c.responses {
                                    ResponseContract::Filter => "removed",
                                    ResponseContract::Enforce => "blocked",
                                    _ => "monitored",
                                }
                                .into(),
                            ),
                            severity: Severity::Medium,
                        });
                    }
                    if !report.removed.is_empty() {
                        match c.responses {
                            ResponseContract::Enforce => {
                                return Err(Rejection::bad_gateway("response_contract_violation"));
                            }
                            ResponseContract::Filter => changed = true,
                            _ => {}
                        }
                    }
                    if let Some(original) = original {
                        value = original;
                    }
                }
                if let Some(dp) = dp {
                    let found = dp.scanner.scan_json(&mut value, "/body");
                    if secret_findings(ctx, &found) {
                        return Err(Rejection::bad_gateway("sensitive_data_blocked"));
                    }
                    changed |= found.iter().any(|f| f.action == SecretAction::Mask);
                }
                if changed {
                    out = serde_json::to_vec(&value).ok();
                }
            }
            Err(_) => {
                ctx.findings.push(contract_finding(
                    "response.invalid_json",
                    "/body",
                    Severity::Low,
                ));
                if contract.is_some_and(|c| c.responses == ResponseContract::Enforce) {
                    return Err(Rejection::bad_gateway("response_contract_violation"));
                }
                if let Some(dp) = dp
                    && let Ok(text) = std::str::from_utf8(&bytes)
                {
                    out = scan_response_text(dp, ctx, text, "/body")?.map(String::into_bytes);
                }
            }
        }
    } else if let Some(dp) = dp
        && let Ok(text) = std::str::from_utf8(&bytes)
    {
        out = scan_response_text(dp, ctx, text, "/body")?.map(String::into_bytes);
    }

    let body = match out {
        Some(rewritten) => {
            // The representation changed: validators and digests of the old one are wrong.
            parts.headers.remove(ETAG);
            parts.headers.remove("content-md5");
            parts.headers.remove("digest");
            parts.headers.remove("repr-digest");
            parts.headers.remove("content-digest");
            set_length(&mut parts.headers, rewritten.len());
            full(rewritten)
        }
        None => {
            set_length(&mut parts.headers, bytes.len());
            full(bytes)
        }
    };
    Ok(Response::from_parts(parts, body))
}
