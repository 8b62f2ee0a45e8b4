//! The event model the gateway fills in: one [`HttpActivity`] per request.
//!
//! These are plain data types with no serialization attached; the OCSF shape
//! lives in [`crate::ocsf`] so that the wire format can evolve without forcing
//! changes on the code that builds events.

use std::net::IpAddr;

/// One HTTP request as seen by the gateway, filled in once the response is
/// known. Redaction is applied by [`crate::Emitter::emit`] before any sink
/// sees it, so callers may put raw request data here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpActivity {
    /// Unix epoch milliseconds at which the request started.
    pub time_ms: u64,
    /// Gateway-assigned request id, also used as the OCSF `metadata.uid`.
    pub request_id: String,
    /// Address of the connected client (the TCP peer, not a forwarded header).
    pub client_ip: IpAddr,
    /// Source port of the connected client.
    pub client_port: u16,
    /// TLS parameters when the request arrived over TLS.
    pub tls: Option<TlsInfo>,
    /// Protocol version as text, e.g. `"HTTP/1.1"` or `"HTTP/2"`.
    pub http_version: String,
    /// Request method exactly as received, e.g. `"GET"`.
    pub method: String,
    /// `"http"` or `"https"`.
    pub scheme: String,
    /// Host the request was addressed to (authority without userinfo).
    pub host: String,
    /// Request path without the query string.
    pub path: String,
    /// Raw query string without the leading `?`; secret parameter values are
    /// redacted before any sink.
    pub query: Option<String>,
    /// Request headers with lowercase names; secret header values are
    /// redacted before any sink.
    pub headers: Vec<(String, String)>,
    /// The `User-Agent` header value, if any.
    pub user_agent: Option<String>,
    /// HTTP status code sent to the client.
    pub status: u16,
    /// Request bytes received from the client (body).
    pub bytes_in: u64,
    /// Response bytes sent to the client (body).
    pub bytes_out: u64,
    /// Total time from request start to response completion, microseconds.
    pub duration_us: u64,
    /// Name of the matched route, if any.
    pub route: Option<String>,
    /// Upstream target address that served the request, if any.
    pub upstream: Option<String>,
    /// Whether the gateway let the request through.
    pub action: Action,
    /// Short machine code explaining a denial, e.g. `"body_too_large"`.
    pub reason: Option<String>,
    /// Security findings attached to this request.
    pub findings: Vec<Finding>,
    /// Who made the request, once authenticated. Never carries a secret.
    pub actor: Option<Actor>,
    /// The user name presented in a failed credential check (a Basic user name), when known:
    /// what credential-stuffing and brute-force rules count. Never the password.
    pub attempted_user: Option<String>,
    /// The OpenAPI operation the request matched, when the route has a contract.
    pub operation: Option<Operation>,
}

/// An OpenAPI operation: its `operationId` and path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: Option<String>,
    /// The path template as the document declares it, e.g. `/orders/{id}`.
    pub path: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `api_key`, `basic`, `jwt`, `introspection` or `mtls`.
    pub auth_method: String,
    /// Principal id: token subject, user name, the key's principal, the certificate's subject.
    pub principal: String,
    /// API key id or token `jti` — an identifier of the credential, never the credential.
    pub credential_id: Option<String>,
    pub scopes: Vec<String>,
}

/// TLS parameters negotiated on the client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `"TLSv1.3"`.
    pub version: String,
    /// Negotiated cipher suite name.
    pub cipher: String,
}

/// The gateway's decision for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Forwarded upstream (or answered locally without a policy denial).
    Allowed,
    /// Refused by a gateway policy.
    Denied,
}

/// Something noteworthy the gateway detected while handling a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Category of the finding, e.g. `"credential_leak"`.
    pub kind: String,
    /// Identifier of the rule or detector that produced it.
    pub id: String,
    /// Where it was found, e.g. `"query:api_key"` or `"header:x-debug"`.
    /// Must name the place, never quote a secret value.
    pub location: Option<String>,
    /// Short human-readable detail. Must not contain secret values: findings
    /// are not redacted.
    pub detail: Option<String>,
    /// How serious the finding is.
    pub severity: Severity,
}

/// Finding and event severity, ordered from least to most severe so that
/// `max()` picks the most serious one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational only.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The OCSF `severity_id` for this severity.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Info => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// The OCSF `severity` caption for this severity.
    pub fn ocsf_name(self) -> &'static str {
        match self {
            Severity::Info => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// One credential check, successful or not: an OCSF "Authentication"
/// (class 3002) record. Built by the gateway's identity stage; it must never
/// carry the credential itself, only identifiers of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationEvent {
    /// Unix epoch milliseconds of the check.
    pub time_ms: u64,
    /// Id of the request that presented the credential.
    pub request_id: String,
    /// Address of the connected client.
    pub client_ip: IpAddr,
    /// Source port of the connected client.
    pub client_port: u16,
    /// Which mechanism checked the credential.
    pub method: AuthMethod,
    /// Whether the credential was accepted.
    pub outcome: AuthOutcome,
    /// Short machine code for a failure, e.g. `"expired"`, `"bad_signature"`,
    /// `"unknown_key"`; `None` on success.
    pub failure_reason: Option<String>,
    /// The principal, when known (always on success; on failure only when the
    /// credential named one, e.g. a Basic user name).
    pub principal: Option<String>,
    /// API key id, token `jti` or certificate serial: an identifier of the
    /// credential, never the credential.
    pub credential_id: Option<String>,
}

/// The credential mechanism behind an [`AuthenticationEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A static API key.
    ApiKey,
    /// HTTP Basic against an htpasswd-style store.
    Basic,
    /// A locally verified JWT bearer token.
    Jwt,
    /// An opaque token checked by OAuth 2.0 token introspection (RFC 7662).
    Introspection,
    /// A client certificate on the TLS connection.
    Mtls,
    /// An OpenID Connect login (ID token / session).
    Oidc,
}

impl AuthMethod {
    /// The method's name as written in events and in `Actor::auth_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Basic => "basic",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Introspection => "introspection",
            AuthMethod::Mtls => "mtls",
            AuthMethod::Oidc => "oidc",
        }
    }
}

/// Whether a credential check succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthOutcome {
    /// The credential was accepted.
    Success,
    /// The credential was refused (see `failure_reason`).
    Failure,
}

/// A Sigma rule match: an OCSF "Detection Finding" (class 2004) record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionFinding {
    /// Unix epoch milliseconds at which the rule fired.
    pub time_ms: u64,
    /// Unique id of this alert.
    pub finding_uid: String,
    /// The Sigma rule `id`.
    pub rule_id: String,
    /// The Sigma rule `title`.
    pub title: String,
    /// From the Sigma `level` (`informational` .. `critical`).
    pub severity: Severity,
    /// The Sigma rule `description`, if any.
    pub description: Option<String>,
    /// MITRE ATT&CK tactics and techniques from the rule's tags, with names.
    pub attacks: Vec<Attack>,
    /// Ids of the requests that triggered the rule (several for correlations).
    pub request_ids: Vec<String>,
    /// The client the alert is about, when there is one.
    pub client_ip: Option<IpAddr>,
    /// The authenticated principal the alert is about, when there is one.
    pub principal: Option<String>,
    /// What the gateway did about it, e.g. `"blocked ip for 600s"`, `"webhook"`.
    pub actions_taken: Vec<String>,
}

/// One OCSF 1.3 `attack` object: an ATT&CK tactic, technique and
/// sub-technique, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attack {
    /// E.g. `TA0001` "Initial Access".
    pub tactic: Option<AttackRef>,
    /// E.g. `T1190` "Exploit Public-Facing Application".
    pub technique: Option<AttackRef>,
    /// E.g. `T1110.001` "Password Guessing".
    pub sub_technique: Option<AttackRef>,
}

/// An ATT&CK identifier with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackRef {
    /// The ATT&CK id, e.g. `T1190`.
    pub uid: String,
    /// Its name, e.g. `"Exploit Public-Facing Application"`.
    pub name: String,
}
