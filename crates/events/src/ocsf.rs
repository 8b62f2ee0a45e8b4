//! OCSF 1.3.0 mapping: turns an [`HttpActivity`] into an "HTTP Activity"
//! (class 4002) record and gateway lifecycle notices into "Application
//! Lifecycle" (class 6002) records.
//!
//! The records are borrowed views over the event, serialized with derived
//! `Serialize` impls straight into the output buffer, so the sink's hot path
//! builds no intermediate `serde_json::Value`. `docs/events.md` documents
//! every field; keep the two in sync.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::Serializer;

use crate::model::{
    Action, Attack, AttackRef, AuthMethod, AuthOutcome, AuthenticationEvent, DetectionFinding,
    Finding, HttpActivity, Severity, TlsInfo,
};

/// OCSF schema version the records claim to follow.
pub const OCSF_VERSION: &str = "1.3.0";

const PRODUCT: Product = Product {
    name: "Portcullis",
    vendor_name: "Portcullis",
    version: env!("CARGO_PKG_VERSION"),
};

const HTTP_ACTIVITY_CLASS_UID: u32 = 4002;
const NETWORK_ACTIVITY_CATEGORY_UID: u32 = 4;
const APPLICATION_LIFECYCLE_CLASS_UID: u32 = 6002;
const APPLICATION_ACTIVITY_CATEGORY_UID: u32 = 6;
const AUTHENTICATION_CLASS_UID: u32 = 3002;
const IAM_CATEGORY_UID: u32 = 3;
const DETECTION_FINDING_CLASS_UID: u32 = 2004;
const FINDINGS_CATEGORY_UID: u32 = 2;

/// OCSF `activity_id` meaning "not mapped; see activity_name".
const ACTIVITY_OTHER: u8 = 99;

/// Builds the OCSF JSON object for one request.
///
/// Convenient for tests and ad-hoc consumers; the sinks use
/// [`write_ocsf_json`], which produces the same bytes without building a
/// `Value`.
pub fn to_ocsf_json(ev: &HttpActivity) -> serde_json::Value {
    match serde_json::to_value(HttpActivityRecord::new(ev)) {
        Ok(value) => value,
        // Unreachable in practice (every field is a string, number or a
        // struct with string keys), but the workspace forbids panics.
        Err(err) => {
            tracing::error!(error = %err, "failed to convert an event to OCSF JSON");
            serde_json::Value::Null
        }
    }
}

/// Writes the OCSF JSON object for one request to `out`, without a trailing
/// newline. This is the serializer the sinks use.
pub fn write_ocsf_json<W: io::Write>(ev: &HttpActivity, out: W) -> serde_json::Result<()> {
    serde_json::to_writer(out, &HttpActivityRecord::new(ev))
}

/// OCSF HTTP Activity `activity_id` and `activity_name` for a method.
///
/// Methods are case-sensitive (RFC 9110), so only the exact upper-case
/// standard names map; anything else, including `PATCH` (which OCSF 1.3.0
/// has no id for), is 99 "Other" with the method itself as the name, as the
/// OCSF definition of 99 asks.
pub fn http_activity(method: &str) -> (u8, &str) {
    match method {
        "CONNECT" => (1, "Connect"),
        "DELETE" => (2, "Delete"),
        "GET" => (3, "Get"),
        "HEAD" => (4, "Head"),
        "OPTIONS" => (5, "Options"),
        "POST" => (6, "Post"),
        "PUT" => (7, "Put"),
        "TRACE" => (8, "Trace"),
        other => (ACTIVITY_OTHER, other),
    }
}

fn http_type_name(activity_id: u8) -> &'static str {
    match activity_id {
        1 => "HTTP Activity: Connect",
        2 => "HTTP Activity: Delete",
        3 => "HTTP Activity: Get",
        4 => "HTTP Activity: Head",
        5 => "HTTP Activity: Options",
        6 => "HTTP Activity: Post",
        7 => "HTTP Activity: Put",
        8 => "HTTP Activity: Trace",
        _ => "HTTP Activity: Other",
    }
}

/// Event severity: a denial is at least Medium, and any finding can raise it.
pub fn event_severity(ev: &HttpActivity) -> Severity {
    let base = match ev.action {
        Action::Allowed => Severity::Info,
        Action::Denied => Severity::Medium,
    };
    ev.findings
        .iter()
        .map(|f| f.severity)
        .fold(base, Severity::max)
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Metadata<'a> {
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    product: &'static Product,
}

impl<'a> Metadata<'a> {
    fn new(uid: Option<&'a str>) -> Self {
        Metadata {
            version: OCSF_VERSION,
            uid,
            product: &PRODUCT,
        }
    }
}

#[derive(Serialize)]
struct HttpActivityRecord<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u8,
    activity_name: &'a str,
    type_uid: u32,
    type_name: &'static str,
    time: u64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    action_id: u8,
    action: &'static str,
    duration: u64,
    metadata: Metadata<'a>,
    src_endpoint: SrcEndpoint,
    http_request: HttpRequest<'a>,
    http_response: HttpResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<ActorRecord<'a>>,
    unmapped: Unmapped<'a>,
}

/// OCSF `actor`: the authenticated user. How they authenticated and with which credential id
/// is kept in `unmapped.auth`, which OCSF's HTTP Activity has no place for.
#[derive(Serialize)]
struct ActorRecord<'a> {
    user: ActorUser<'a>,
}

#[derive(Serialize)]
struct ActorUser<'a> {
    uid: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct AuthRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempted_user: Option<&'a str>,
}

#[derive(Serialize)]
struct OperationRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    path: &'a str,
}

/// `path?query` written straight into the output, without building a string.
struct UrlString<'a>(&'a str, Option<&'a str>);

impl Serialize for UrlString<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Some(q) => serializer.collect_str(&format_args!("{}?{}", self.0, q)),
            None => serializer.serialize_str(self.0),
        }
    }
}

impl<'a> HttpActivityRecord<'a> {
    fn new(ev: &'a HttpActivity) -> Self {
        let (activity_id, activity_name) = http_activity(&ev.method);
        let severity = event_severity(ev);
        let succeeded = ev.action == Action::Allowed && ev.status < 400;
        let (action_id, action) = match ev.action {
            Action::Allowed => (1, "Allowed"),
            Action::Denied => (2, "Denied"),
        };
        HttpActivityRecord {
            class_uid: HTTP_ACTIVITY_CLASS_UID,
            class_name: "HTTP Activity",
            category_uid: NETWORK_ACTIVITY_CATEGORY_UID,
            category_name: "Network Activity",
            activity_id,
            activity_name,
            type_uid: HTTP_ACTIVITY_CLASS_UID * 100 + u32::from(activity_id),
            type_name: http_type_name(activity_id),
            time: ev.time_ms,
            severity_id: severity.ocsf_id(),
            severity: severity.ocsf_name(),
            status_id: if succeeded { 1 } else { 2 },
            status: if succeeded { "Success" } else { "Failure" },
            action_id,
            action,
            // OCSF types `duration` as an integer of milliseconds; the exact
            // value is kept in `unmapped.duration_us`.
            duration: ev.duration_us / 1000,
            metadata: Metadata::new(Some(&ev.request_id)),
            src_endpoint: SrcEndpoint {
                ip: ev.client_ip,
                port: ev.client_port,
            },
            http_request: HttpRequest {
                http_method: &ev.method,
                version: &ev.http_version,
                user_agent: ev.user_agent.as_deref(),
                referrer: ev
                    .headers
                    .iter()
                    .find(|(name, _)| name == "referer")
                    .map(|(_, v)| v.as_str()),
                length: ev.bytes_in,
                uid: &ev.request_id,
                url: Url {
                    scheme: &ev.scheme,
                    hostname: &ev.host,
                    path: &ev.path,
                    query_string: ev.query.as_deref(),
                    url_string: UrlString(&ev.path, ev.query.as_deref()),
                },
                http_headers: Headers(&ev.headers),
            },
            http_response: HttpResponse {
                code: ev.status,
                length: ev.bytes_out,
            },
            tls: ev.tls.as_ref().map(TlsRecord::from_model),
            actor: ev.actor.as_ref().map(|a| ActorRecord {
                user: ActorUser {
                    uid: &a.principal,
                    name: &a.principal,
                },
            }),
            unmapped: Unmapped {
                auth: match (&ev.actor, &ev.attempted_user) {
                    (Some(a), attempted) => Some(AuthRecord {
                        method: Some(&a.auth_method),
                        credential_id: a.credential_id.as_deref(),
                        scopes: Some(&a.scopes),
                        attempted_user: attempted.as_deref(),
                    }),
                    (None, Some(user)) => Some(AuthRecord {
                        method: None,
                        credential_id: None,
                        scopes: None,
                        attempted_user: Some(user),
                    }),
                    (None, None) => None,
                },
                operation: ev.operation.as_ref().map(|o| OperationRecord {
                    id: o.id.as_deref(),
                    path: &o.path,
                }),
                route: ev.route.as_deref(),
                upstream: ev.upstream.as_deref(),
                reason: ev.reason.as_deref(),
                request_id: &ev.request_id,
                duration_us: ev.duration_us,
                findings: Findings(&ev.findings),
            },
        }
    }
}

#[derive(Serialize)]
struct SrcEndpoint {
    // serde writes IpAddr as its textual form for human-readable formats.
    ip: IpAddr,
    port: u16,
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    http_method: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    length: u64,
    uid: &'a str,
    url: Url<'a>,
    http_headers: Headers<'a>,
}

#[derive(Serialize)]
struct Url<'a> {
    scheme: &'a str,
    hostname: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string: Option<&'a str>,
    url_string: UrlString<'a>,
}

#[derive(Serialize)]
struct HttpResponse {
    code: u16,
    length: u64,
}

#[derive(Serialize)]
struct TlsRecord<'a> {
    version: &'a str,
    cipher: &'a str,
}

impl<'a> TlsRecord<'a> {
    fn from_model(tls: &'a TlsInfo) -> Self {
        TlsRecord {
            version: &tls.version,
            cipher: &tls.cipher,
        }
    }
}

#[derive(Serialize)]
struct Unmapped<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<AuthRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<OperationRecord<'a>>,
    request_id: &'a str,
    duration_us: u64,
    findings: Findings<'a>,
}

/// Serializes headers as OCSF `http_header` objects: `[{name, value}]`.
struct Headers<'a>(&'a [(String, String)]);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Header<'a> {
            name: &'a str,
            value: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|(name, value)| Header { name, value }))
    }
}

/// Serializes findings with both the OCSF severity caption and id.
struct Findings<'a>(&'a [Finding]);

impl Serialize for Findings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct FindingRecord<'a> {
            kind: &'a str,
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            location: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
            severity: &'static str,
            severity_id: u8,
        }
        serializer.collect_seq(self.0.iter().map(|f| FindingRecord {
            kind: &f.kind,
            id: &f.id,
            location: f.location.as_deref(),
            detail: f.detail.as_deref(),
            severity: f.severity.ocsf_name(),
            severity_id: f.severity.ocsf_id(),
        }))
    }
}

/// A gateway lifecycle notice (start, stop, reload), queued like requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LifecycleEvent {
    pub(crate) time_ms: u64,
    pub(crate) kind: String,
    pub(crate) message: String,
}

/// Writes the OCSF "Application Lifecycle" object for a lifecycle notice to
/// `out`, without a trailing newline.
pub(crate) fn write_lifecycle_json<W: io::Write>(
    ev: &LifecycleEvent,
    out: W,
) -> serde_json::Result<()> {
    serde_json::to_writer(out, &LifecycleRecord::new(ev))
}

/// How a lifecycle `kind` string maps onto OCSF Application Lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LifecycleActivity {
    activity_id: u8,
    activity_name: &'static str,
    type_name: &'static str,
    /// `(status_id, status)`.
    status: (u8, &'static str),
    severity: Severity,
}

/// Maps the gateway's lifecycle kinds. Matching ignores case and treats `-`
/// and spaces like `_`, so "reload failed" and "reload_failed" are the same.
/// OCSF has no "Reload" activity, so reloads are 99 "Other" carrying the
/// name "Reload", as the OCSF definition of 99 asks.
fn lifecycle_activity(kind: &str) -> LifecycleActivity {
    const SUCCESS: (u8, &str) = (1, "Success");
    const FAILURE: (u8, &str) = (2, "Failure");
    const UNKNOWN: (u8, &str) = (0, "Unknown");
    let normalized: String = kind
        .trim()
        .chars()
        .map(|c| {
            if c == '-' || c == ' ' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let (activity_id, activity_name, type_name, status, severity) = match normalized.as_str() {
        "start" | "started" => (
            3,
            "Start",
            "Application Lifecycle: Start",
            SUCCESS,
            Severity::Info,
        ),
        "stop" | "stopped" => (
            4,
            "Stop",
            "Application Lifecycle: Stop",
            SUCCESS,
            Severity::Info,
        ),
        "reload" | "reload_ok" | "reloaded" => (
            ACTIVITY_OTHER,
            "Reload",
            "Application Lifecycle: Other",
            SUCCESS,
            Severity::Info,
        ),
        // A failed reload leaves the previous policy in force, which an
        // operator must notice, hence Medium rather than Informational.
        "reload_failed" | "reload_error" => (
            ACTIVITY_OTHER,
            "Reload",
            "Application Lifecycle: Other",
            FAILURE,
            Severity::Medium,
        ),
        // The gateway switched between fail-open and fail-closed (a dependency such as the
        // shared rate-limit store went away or came back): protections change, so Medium.
        "fail_mode_switch"
        | "fail_mode"
        | "failmode_switch"
        | "rate_limit_degraded"
        | "rate_limit_recovered" => (
            ACTIVITY_OTHER,
            "Fail-Mode Switch",
            "Application Lifecycle: Other",
            SUCCESS,
            Severity::Medium,
        ),
        _ => (
            ACTIVITY_OTHER,
            "Other",
            "Application Lifecycle: Other",
            UNKNOWN,
            Severity::Info,
        ),
    };
    LifecycleActivity {
        activity_id,
        activity_name,
        type_name,
        status,
        severity,
    }
}

#[derive(Serialize)]
struct LifecycleRecord<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u8,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    time: u64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    message: &'a str,
    metadata: Metadata<'a>,
    app: &'static Product,
    unmapped: LifecycleUnmapped<'a>,
}

#[derive(Serialize)]
struct LifecycleUnmapped<'a> {
    kind: &'a str,
}

impl<'a> LifecycleRecord<'a> {
    fn new(ev: &'a LifecycleEvent) -> Self {
        let activity = lifecycle_activity(&ev.kind);
        LifecycleRecord {
            class_uid: APPLICATION_LIFECYCLE_CLASS_UID,
            class_name: "Application Lifecycle",
            category_uid: APPLICATION_ACTIVITY_CATEGORY_UID,
            category_name: "Application Activity",
            activity_id: activity.activity_id,
            activity_name: activity.activity_name,
            type_uid: APPLICATION_LIFECYCLE_CLASS_UID * 100 + u32::from(activity.activity_id),
            type_name: activity.type_name,
            time: ev.time_ms,
            severity_id: activity.severity.ocsf_id(),
            severity: activity.severity.ocsf_name(),
            status_id: activity.status.0,
            status: activity.status.1,
            message: &ev.message,
            metadata: Metadata::new(None),
            app: &PRODUCT,
            unmapped: LifecycleUnmapped { kind: &ev.kind },
        }
    }
}

/// Any event the pipeline carries. Every variant is one `Arc`, so the event
/// is allocated once, cloning it into each sink's queue is a reference-count
/// increment, and a request's `HttpActivity` can be shared with live
/// detection as the very copy the sinks write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Http(Arc<HttpActivity>),
    Lifecycle(Arc<LifecycleEvent>),
    Authentication(Arc<AuthenticationEvent>),
    Detection(Arc<DetectionFinding>),
}

impl Event {
    /// The OCSF `class_uid` of the record this event becomes.
    pub(crate) fn class_uid(&self) -> u32 {
        match self {
            Event::Http(_) => HTTP_ACTIVITY_CLASS_UID,
            Event::Lifecycle(_) => APPLICATION_LIFECYCLE_CLASS_UID,
            Event::Authentication(_) => AUTHENTICATION_CLASS_UID,
            Event::Detection(_) => DETECTION_FINDING_CLASS_UID,
        }
    }

    /// The severity written in the record's `severity_id` (and used for the
    /// syslog severity and CEF severity).
    pub(crate) fn severity(&self) -> Severity {
        match self {
            Event::Http(ev) => event_severity(ev),
            Event::Lifecycle(ev) => lifecycle_activity(&ev.kind).severity,
            Event::Authentication(ev) => auth_severity(ev),
            Event::Detection(ev) => ev.severity,
        }
    }

    /// Event time, Unix epoch milliseconds.
    pub(crate) fn time_ms(&self) -> u64 {
        match self {
            Event::Http(ev) => ev.time_ms,
            Event::Lifecycle(ev) => ev.time_ms,
            Event::Authentication(ev) => ev.time_ms,
            Event::Detection(ev) => ev.time_ms,
        }
    }

    /// Writes the event's OCSF JSON object, without a trailing newline.
    pub(crate) fn write_json<W: io::Write>(&self, out: W) -> serde_json::Result<()> {
        match self {
            Event::Http(ev) => write_ocsf_json(ev, out),
            Event::Lifecycle(ev) => write_lifecycle_json(ev, out),
            Event::Authentication(ev) => write_authentication_json(ev, out),
            Event::Detection(ev) => write_detection_json(ev, out),
        }
    }
}

/// Authentication severity: a refused credential is Low (one failure is
/// routine; repeated failures are for detection rules to judge).
pub fn auth_severity(ev: &AuthenticationEvent) -> Severity {
    match ev.outcome {
        AuthOutcome::Success => Severity::Info,
        AuthOutcome::Failure => Severity::Low,
    }
}

/// OCSF `auth_protocol_id` / `auth_protocol` for a credential mechanism.
/// OCSF 1.3 has ids for Basic (11), OpenID (4) and OAuth 2.0 (6); API keys
/// and client certificates are 99 "Other" carrying their own name.
pub fn auth_protocol(method: AuthMethod) -> (u8, &'static str) {
    match method {
        AuthMethod::Basic => (11, "Basic Authentication"),
        AuthMethod::Oidc => (4, "OpenID"),
        AuthMethod::Jwt | AuthMethod::Introspection => (6, "OAUTH 2.0"),
        AuthMethod::ApiKey => (ACTIVITY_OTHER, "API Key"),
        AuthMethod::Mtls => (ACTIVITY_OTHER, "mTLS"),
    }
}

/// Builds the OCSF Authentication (3002) JSON object for a credential check.
pub fn authentication_json(ev: &AuthenticationEvent) -> serde_json::Value {
    serde_json::to_value(AuthenticationRecord::new(ev)).unwrap_or_else(|err| {
        tracing::error!(error = %err, "failed to convert an event to OCSF JSON");
        serde_json::Value::Null
    })
}

/// Writes the OCSF Authentication object for `ev`, without a trailing newline.
pub fn write_authentication_json<W: io::Write>(
    ev: &AuthenticationEvent,
    out: W,
) -> serde_json::Result<()> {
    serde_json::to_writer(out, &AuthenticationRecord::new(ev))
}

/// Builds the OCSF Detection Finding (2004) JSON object for a rule match.
pub fn detection_json(ev: &DetectionFinding) -> serde_json::Value {
    serde_json::to_value(DetectionRecord::new(ev)).unwrap_or_else(|err| {
        tracing::error!(error = %err, "failed to convert an event to OCSF JSON");
        serde_json::Value::Null
    })
}

/// Writes the OCSF Detection Finding object for `ev`, without a trailing newline.
pub fn write_detection_json<W: io::Write>(ev: &DetectionFinding, out: W) -> serde_json::Result<()> {
    serde_json::to_writer(out, &DetectionRecord::new(ev))
}

/// Builds the OCSF Application Lifecycle (6002) JSON object for a lifecycle
/// notice of `kind` at `time_ms`.
pub fn lifecycle_json(time_ms: u64, kind: &str, message: &str) -> serde_json::Value {
    let ev = LifecycleEvent {
        time_ms,
        kind: kind.to_owned(),
        message: message.to_owned(),
    };
    serde_json::to_value(LifecycleRecord::new(&ev)).unwrap_or_else(|err| {
        tracing::error!(error = %err, "failed to convert an event to OCSF JSON");
        serde_json::Value::Null
    })
}

#[derive(Serialize)]
struct AuthenticationRecord<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u8,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    time: u64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<&'a str>,
    auth_protocol_id: u8,
    auth_protocol: &'static str,
    is_cleartext: bool,
    metadata: Metadata<'a>,
    src_endpoint: SrcEndpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<ActorUser<'a>>,
    service: ServiceRecord,
    unmapped: AuthUnmapped<'a>,
}

#[derive(Serialize)]
struct ServiceRecord {
    name: &'static str,
}

#[derive(Serialize)]
struct AuthUnmapped<'a> {
    auth_method: &'static str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<&'a str>,
}

impl<'a> AuthenticationRecord<'a> {
    fn new(ev: &'a AuthenticationEvent) -> Self {
        let severity = auth_severity(ev);
        let (status_id, status) = match ev.outcome {
            AuthOutcome::Success => (1, "Success"),
            AuthOutcome::Failure => (2, "Failure"),
        };
        let (auth_protocol_id, auth_protocol) = auth_protocol(ev.method);
        AuthenticationRecord {
            class_uid: AUTHENTICATION_CLASS_UID,
            class_name: "Authentication",
            category_uid: IAM_CATEGORY_UID,
            category_name: "Identity & Access Management",
            // Every check is a logon attempt for the one request.
            activity_id: 1,
            activity_name: "Logon",
            type_uid: AUTHENTICATION_CLASS_UID * 100 + 1,
            type_name: "Authentication: Logon",
            time: ev.time_ms,
            severity_id: severity.ocsf_id(),
            severity: severity.ocsf_name(),
            status_id,
            status,
            status_code: ev.failure_reason.as_deref(),
            auth_protocol_id,
            auth_protocol,
            // Credentials reach the gateway inside TLS or are not secrets (mTLS); the record
            // does not know the listener, so it states what the check itself exposed: nothing.
            is_cleartext: false,
            metadata: Metadata::new(Some(&ev.request_id)),
            src_endpoint: SrcEndpoint {
                ip: ev.client_ip,
                port: ev.client_port,
            },
            user: ev
                .principal
                .as_deref()
                .map(|p| ActorUser { uid: p, name: p }),
            service: ServiceRecord { name: "Portcullis" },
            unmapped: AuthUnmapped {
                auth_method: ev.method.as_str(),
                request_id: &ev.request_id,
                credential_id: ev.credential_id.as_deref(),
            },
        }
    }
}

#[derive(Serialize)]
struct DetectionRecord<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u8,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    time: u64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    message: &'a str,
    metadata: Metadata<'a>,
    finding_info: FindingInfo<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    evidences: Vec<Evidence<'a>>,
    unmapped: DetectionUnmapped<'a>,
}

#[derive(Serialize)]
struct FindingInfo<'a> {
    uid: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<&'a str>,
    analytic: Analytic<'a>,
    attacks: Vec<AttackRecord<'a>>,
    related_events: Vec<RelatedEvent<'a>>,
    types: [&'static str; 1],
}

#[derive(Serialize)]
struct Analytic<'a> {
    uid: &'a str,
    name: &'a str,
    type_id: u8,
    #[serde(rename = "type")]
    type_name: &'static str,
}

#[derive(Serialize)]
struct AttackRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tactic: Option<AttackRefRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    technique: Option<AttackRefRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_technique: Option<AttackRefRecord<'a>>,
}

#[derive(Serialize)]
struct AttackRefRecord<'a> {
    uid: &'a str,
    name: &'a str,
}

impl<'a> AttackRecord<'a> {
    fn from_model(attack: &'a Attack) -> Self {
        let view = |r: &'a Option<AttackRef>| {
            r.as_ref().map(|r| AttackRefRecord {
                uid: &r.uid,
                name: &r.name,
            })
        };
        AttackRecord {
            tactic: view(&attack.tactic),
            technique: view(&attack.technique),
            sub_technique: view(&attack.sub_technique),
        }
    }
}

#[derive(Serialize)]
struct RelatedEvent<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Evidence<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<EvidenceEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<ActorRecord<'a>>,
}

#[derive(Serialize)]
struct EvidenceEndpoint {
    ip: IpAddr,
}

#[derive(Serialize)]
struct DetectionUnmapped<'a> {
    rule_id: &'a str,
    request_ids: &'a [String],
    actions_taken: &'a [String],
}

impl<'a> DetectionRecord<'a> {
    fn new(ev: &'a DetectionFinding) -> Self {
        let evidence = Evidence {
            src_endpoint: ev.client_ip.map(|ip| EvidenceEndpoint { ip }),
            actor: ev.principal.as_deref().map(|p| ActorRecord {
                user: ActorUser { uid: p, name: p },
            }),
        };
        let evidences = if evidence.src_endpoint.is_some() || evidence.actor.is_some() {
            vec![evidence]
        } else {
            Vec::new()
        };
        DetectionRecord {
            class_uid: DETECTION_FINDING_CLASS_UID,
            class_name: "Detection Finding",
            category_uid: FINDINGS_CATEGORY_UID,
            category_name: "Findings",
            // Every alert is a new finding; Portcullis does not update findings.
            activity_id: 1,
            activity_name: "Create",
            type_uid: DETECTION_FINDING_CLASS_UID * 100 + 1,
            type_name: "Detection Finding: Create",
            time: ev.time_ms,
            severity_id: ev.severity.ocsf_id(),
            severity: ev.severity.ocsf_name(),
            status_id: 1,
            status: "New",
            message: &ev.title,
            metadata: Metadata::new(Some(&ev.finding_uid)),
            finding_info: FindingInfo {
                uid: &ev.finding_uid,
                title: &ev.title,
                desc: ev.description.as_deref(),
                analytic: Analytic {
                    uid: &ev.rule_id,
                    name: &ev.title,
                    type_id: 1,
                    type_name: "Rule",
                },
                attacks: ev.attacks.iter().map(AttackRecord::from_model).collect(),
                related_events: ev
                    .request_ids
                    .iter()
                    .map(|uid| RelatedEvent { uid })
                    .collect(),
                types: ["Sigma"],
            },
            evidences,
            unmapped: DetectionUnmapped {
                rule_id: &ev.rule_id,
                request_ids: &ev.request_ids,
                actions_taken: &ev.actions_taken,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::sample_event;

    #[test]
    fn lifecycle_kinds_ignore_case_and_separators() {
        for kind in ["reload_failed", "RELOAD-FAILED", " Reload failed "] {
            let activity = lifecycle_activity(kind);
            assert_eq!(
                (activity.activity_id, activity.activity_name),
                (99, "Reload"),
                "{kind}"
            );
            assert_eq!(activity.status, (2, "Failure"), "{kind}");
        }
        assert_eq!(lifecycle_activity("Started").activity_id, 3);
        assert_eq!(lifecycle_activity("STOP").activity_id, 4);
        assert_eq!(lifecycle_activity("").activity_name, "Other");
        let switch = lifecycle_activity("Fail-Mode switch");
        assert_eq!(
            (switch.activity_id, switch.activity_name, switch.severity),
            (99, "Fail-Mode Switch", Severity::Medium)
        );
    }

    #[test]
    fn event_severity_is_the_maximum_of_action_and_findings() {
        let mut ev = sample_event();
        assert_eq!(event_severity(&ev), Severity::Info);
        ev.action = Action::Denied;
        assert_eq!(event_severity(&ev), Severity::Medium);
        ev.findings.push(Finding {
            kind: "k".to_owned(),
            id: "i".to_owned(),
            location: None,
            detail: None,
            severity: Severity::Low,
        });
        assert_eq!(event_severity(&ev), Severity::Medium);
        ev.findings[0].severity = Severity::Critical;
        assert_eq!(event_severity(&ev), Severity::Critical);
    }

    #[test]
    fn duration_is_whole_milliseconds() {
        let mut ev = sample_event();
        ev.duration_us = 1_999;
        let json = to_ocsf_json(&ev);
        assert_eq!(json["duration"], 1);
        assert_eq!(json["unmapped"]["duration_us"], 1_999);
    }
}
