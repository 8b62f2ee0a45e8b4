//! The one place where a refusal becomes a response: RFC 9457 `application/problem+json`.
//!
//! Every stage of the pipeline returns a [`Rejection`] instead of building responses itself,
//! so no stage can leak upstream details, versions or internals into an error body by
//! accident. The body carries `type`, `title`, `status`, `request_id` and, where it helps the
//! client and reveals nothing, a short `detail`.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{Body, full};

/// Why a request was refused. `reason` is a stable machine code that also goes into the event.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub status: StatusCode,
    pub reason: &'static str,
    pub title: &'static str,
    /// Safe for the client: never contains request values, upstream names or internals.
    pub detail: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A more precise reason for the event only (e.g. `expired` behind a generic
    /// `unauthorized`): clients learn no more than the RFC codes allow.
    pub event_reason: Option<&'static str>,
    /// The authorization rule that denied, for the event.
    pub rule: Option<String>,
    /// Each failing location of an invalid request (the `errors` member): where, and which
    /// rule it broke — never the offending value.
    pub errors: Vec<ProblemError>,
}

/// One failing location of a request refused by its API contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProblemError {
    /// JSON pointer into the request: `/query/limit`, `/body/items/0/qty`, `/header/x-trace`.
    pub pointer: String,
    /// The rule broken: `type`, `required`, `maximum`, `additionalProperties`, ...
    pub rule: String,
    pub detail: String,
}

impl Rejection {
    pub fn new(status: StatusCode, reason: &'static str, title: &'static str) -> Self {
        Rejection {
            status,
            reason,
            title,
            detail: None,
            headers: Vec::new(),
            event_reason: None,
            rule: None,
            errors: Vec::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(reason: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, "Bad Request").detail(detail)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no_route", "Not Found")
    }

    /// Upstream unreachable or failed: the client learns only that the gateway could not
    /// get an answer, never which upstream or why.
    pub fn bad_gateway(reason: &'static str) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, reason, "Bad Gateway")
    }

    pub fn gateway_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "Gateway Timeout",
        )
    }
}

/// The `type` URI of a problem: stable per reason, documented in docs/problems.md.
pub fn type_uri(reason: &str) -> String {
    format!("urn:portcullis:problem:{reason}")
}

/// Render a problem document for `status` with `reason`, e.g. for a masked upstream error.
pub fn render(rej: &Rejection, request_id: &str) -> Response<Body> {
    let mut doc = serde_json::json!({
        "type": type_uri(rej.reason),
        "title": rej.title,
        "status": rej.status.as_u16(),
        "request_id": request_id,
    });
    if let Some(obj) = doc.as_object_mut() {
        if let Some(detail) = &rej.detail {
            obj.insert("detail".into(), detail.clone().into());
        }
        if !rej.errors.is_empty()
            && let Ok(errors) = serde_json::to_value(&rej.errors)
        {
            obj.insert("errors".into(), errors);
        }
    }
    let bytes = Bytes::from(doc.to_string());
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = rej.status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    for (name, value) in &rej.headers {
        h.append(name.clone(), value.clone());
    }
    resp
}
