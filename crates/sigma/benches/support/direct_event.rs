//! A gateway-shaped request record read field by field, like the gateway's `DetectionEvent`:
//! the engine's cost is measured without JSON path lookups, which the gateway does not pay.
//! Shared by the `engine` bench and the `bundled_profile` example (callgrind).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use portcullis_sigma::{Event, FieldValue};

/// The subset of the gateway's `HttpActivity` the bundled rules and the web taxonomy read.
pub struct Request {
    pub request_id: String,
    pub client_ip: IpAddr,
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub user_agent: Option<String>,
    pub http_version: String,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub route: Option<String>,
    pub reason: Option<String>,
    /// (kind, id) of each finding.
    pub findings: Vec<(String, String)>,
    /// (principal, auth method, credential id).
    pub actor: Option<(String, String, Option<String>)>,
    pub attempted_user: Option<String>,
    /// (operation path template, operation id).
    pub operation: Option<(String, Option<String>)>,
    pub allowed: bool,
}

fn s(v: &str) -> Option<FieldValue<'_>> {
    Some(FieldValue::Str(Cow::Borrowed(v)))
}

fn list(items: Vec<FieldValue<'_>>) -> Option<FieldValue<'_>> {
    if items.is_empty() {
        None
    } else {
        Some(FieldValue::List(items))
    }
}

impl Event for Request {
    fn field(&self, path: &str) -> Option<FieldValue<'_>> {
        match path {
            "http_request.http_method" => s(&self.method),
            "http_request.url.path" => s(&self.path),
            "http_request.url.query_string" => self.query.as_deref().and_then(s),
            "http_request.url.hostname" => s(&self.host),
            "http_request.url.scheme" => s(&self.scheme),
            "http_request.user_agent" => self.user_agent.as_deref().and_then(s),
            "http_request.version" => s(&self.http_version),
            "http_request.length" => Some(FieldValue::Int(self.bytes_in as i64)),
            "http_response.code" => Some(FieldValue::Int(i64::from(self.status))),
            "http_response.length" => Some(FieldValue::Int(self.bytes_out as i64)),
            // As the gateway does: the address is formatted when a rule reads it.
            "src_endpoint.ip" => Some(FieldValue::Str(Cow::Owned(self.client_ip.to_string()))),
            "metadata.uid" => s(&self.request_id),
            "unmapped.reason" => self.reason.as_deref().and_then(s),
            "unmapped.route" => self.route.as_deref().and_then(s),
            "unmapped.findings.kind" => list(
                self.findings
                    .iter()
                    .map(|(k, _)| FieldValue::Str(Cow::Borrowed(k.as_str())))
                    .collect(),
            ),
            "unmapped.findings.id" => list(
                self.findings
                    .iter()
                    .map(|(_, id)| FieldValue::Str(Cow::Borrowed(id.as_str())))
                    .collect(),
            ),
            "unmapped.auth.attempted_user" => self.attempted_user.as_deref().and_then(s),
            "unmapped.auth.credential_id" => {
                self.actor.as_ref().and_then(|a| a.2.as_deref()).and_then(s)
            }
            "unmapped.auth.method" => self.actor.as_ref().and_then(|a| s(&a.1)),
            "actor.user.uid" | "actor.user.name" => self.actor.as_ref().and_then(|a| s(&a.0)),
            "unmapped.operation.path" => self.operation.as_ref().and_then(|o| s(&o.0)),
            "unmapped.operation.id" => self
                .operation
                .as_ref()
                .and_then(|o| o.1.as_deref())
                .and_then(s),
            "action_id" => Some(FieldValue::Int(if self.allowed { 1 } else { 2 })),
            _ => None,
        }
    }

    fn keywords(&self, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        [
            Some(self.path.as_str()),
            self.query.as_deref(),
            self.user_agent.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(visit)
    }
}

/// The benign traffic of the JSON benches, as direct records: authenticated reads and writes
/// of documented operations by three clients, all allowed with status 200 — no rule matches.
pub fn benign_requests() -> Vec<Request> {
    let uas = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "okhttp/4.12.0",
        "python-requests/2.32.3",
    ];
    (0..64)
        .map(|i| {
            let (method, path, query, op) = match i % 4 {
                0 => (
                    "GET",
                    format!("/v1/orders/{i}"),
                    Some("expand=items".to_string()),
                    "/v1/orders/{id}",
                ),
                1 => ("POST", "/v1/orders".to_string(), None, "/v1/orders"),
                2 => (
                    "GET",
                    "/v1/products".to_string(),
                    Some(format!("page={i}&sort=price")),
                    "/v1/products",
                ),
                _ => ("DELETE", format!("/v1/carts/{i}"), None, "/v1/carts/{id}"),
            };
            Request {
                request_id: format!("REQ-{i}"),
                // Three clients, each with its own credential (benign: no credential moves).
                client_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + (i % 3) as u8)),
                method: method.to_string(),
                scheme: "https".to_string(),
                host: "api.example.com".to_string(),
                path,
                query,
                user_agent: Some(uas[i % uas.len()].to_string()),
                http_version: "HTTP/1.1".to_string(),
                status: 200,
                bytes_in: 0,
                bytes_out: 512,
                route: Some("orders".to_string()),
                reason: None,
                findings: Vec::new(),
                actor: Some((
                    "alice".to_string(),
                    "jwt".to_string(),
                    Some(format!("jti-{}", i % 3)),
                )),
                attempted_user: None,
                operation: Some((op.to_string(), Some(format!("op{}", i % 4)))),
                allowed: true,
            }
        })
        .collect()
}
