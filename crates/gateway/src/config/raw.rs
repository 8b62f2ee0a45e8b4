//! The configuration file exactly as written: plain serde structs that refuse unknown fields.
//!
//! Nothing here is checked beyond its YAML type; `model.rs` turns these into the validated
//! runtime model and reports every problem with its location. Keeping the two apart means the
//! file format can stay friendly (strings such as `10s` or `1MiB`, optional sections) while the
//! request path only ever sees resolved, typed values.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    #[serde(default)]
    pub limits: RawLimits,
    /// Route settings that apply wherever a route does not set its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Peers whose `X-Forwarded-*` / `Forwarded` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawUpstream>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub events: RawEvents,
    pub admin: Option<RawAdmin>,
    /// How callers prove who they are; routes pick methods from here.
    #[serde(default)]
    pub identity: RawIdentity,
    /// Named rate limits and where their state lives.
    #[serde(default)]
    pub rate_limit: RawRateLimit,
    /// Allow and deny lists, the dynamic block list and brute-force protection.
    #[serde(default)]
    pub access: RawAccess,
    /// Sigma rules run on the live event stream, and what their alerts trigger.
    pub detection: Option<RawDetection>,
}

/// Live detection: Sigma rules evaluated on every request's event, off the request path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetection {
    /// Rule files or folders (searched recursively for `*.yml`/`*.yaml`), relative to the
    /// config file.
    pub rules: Vec<String>,
    /// Sigma field name → event field, on top of the built-in web-taxonomy mapping.
    #[serde(default)]
    pub field_mapping: BTreeMap<String, String>,
    /// Events waiting for the engine; beyond it they are dropped and counted (default 65536).
    pub queue: Option<usize>,
    /// Open correlation groups kept at once (default 100000); the oldest are evicted.
    pub max_groups: Option<usize>,
    /// Automatic responses to alerts, tried in order; every matching entry applies.
    #[serde(default)]
    pub responses: Vec<RawDetectionResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetectionResponse {
    /// Rule ids or titles this response applies to (empty: any rule).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Lowest rule level it applies to: informational, low, medium, high or critical.
    pub min_level: Option<String>,
    /// Block the offending client IP or principal through the block list.
    pub block: Option<RawDetectionBlock>,
    /// POST the finding to a SOAR endpoint, signed with HMAC-SHA256.
    pub webhook: Option<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetectionBlock {
    /// `ip` (default) or `principal`.
    pub subject: Option<String>,
    /// How long, e.g. `10m`.
    #[serde(rename = "for")]
    pub duration: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    /// HMAC-SHA256 key (`${env:NAME}` / `${file:PATH}` recommended); the signature goes in
    /// `X-Portcullis-Signature: sha256=<hex>` over `<timestamp>.<body>`.
    pub secret: String,
    /// Per-call timeout (default 5s).
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// `memory` (default) or `redis`.
    pub store: Option<String>,
    pub redis: Option<RawRedis>,
    /// Named limits that routes and tiers refer to.
    #[serde(default)]
    pub limits: BTreeMap<String, RawLimit>,
    /// Keys tracked per limit in memory before new keys share one fallback bucket.
    pub max_keys_per_limit: Option<usize>,
    /// API key tier → limits applied after authentication to keys of that tier.
    #[serde(default)]
    pub tiers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://host:port[/db]`; `${env:NAME}` or `${file:PATH}` when it holds a password.
    pub url: String,
    /// Longest a Redis check may take (default 5ms).
    pub budget: Option<String>,
    /// `fail_open` (default: local limits divided by `instances`) or `fail_closed` (503).
    pub mode: Option<String>,
    /// Gateway instances sharing the limits.
    pub instances: Option<u32>,
    pub failure_threshold: Option<u32>,
    pub cooldown: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// Requests allowed per `per`.
    pub rate: u32,
    /// Window: `1s`, `1m`, `1h`, `1d`.
    pub per: String,
    /// Requests allowed at once (default `rate`).
    pub burst: Option<u32>,
    /// What is counted: `ip`, `principal`, `api_key`, `route`, or several joined with `+`
    /// (e.g. `ip+route`).
    pub key: String,
}

/// Per-route rate limits.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRouteLimits {
    /// Checked before authentication (protects the auth path itself); keys by ip or route.
    #[serde(default)]
    pub before_auth: Vec<String>,
    /// Checked after authentication; keys may use the principal or API key.
    #[serde(default)]
    pub after_auth: Vec<String>,
    /// Send `RateLimit` / `RateLimit-Policy` on allowed responses too (429s always have them).
    #[serde(default)]
    pub headers: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    /// Only these client addresses may connect (empty: everyone not denied).
    #[serde(default)]
    pub allow: Vec<String>,
    /// These client addresses are refused at accept.
    #[serde(default)]
    pub deny: Vec<String>,
    /// What a blocked client IP gets: `problem` (403 problem+json, default) or `close`.
    pub ip_block_action: Option<String>,
    pub brute_force: Option<RawBruteForce>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBruteForce {
    /// Failed authentications per client IP or user within `window` that trigger a block.
    pub threshold: u32,
    pub window: String,
    /// Block durations, escalating with each repeat offence (default `[1m, 5m, 30m]`).
    pub blocks: Option<Vec<String>>,
}

/// Authentication methods and what the gateway tells upstreams about callers.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub api_keys: Option<RawApiKeys>,
    pub basic: Option<RawBasic>,
    #[serde(default)]
    pub jwt: Vec<RawJwtProvider>,
    #[serde(default)]
    pub introspection: Vec<RawIntrospection>,
    pub upstream_token: Option<RawUpstreamToken>,
    /// Request headers removed before forwarding, besides every `X-Portcullis-*` header:
    /// identity headers a client must never be able to set for the upstream.
    #[serde(default)]
    pub strip_request_headers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKeys {
    /// Header names carrying a bare key (default `x-api-key`); `Authorization: ApiKey <key>`
    /// is always accepted. Never the URL.
    pub headers: Option<Vec<String>>,
    #[serde(default)]
    pub keys: Vec<RawApiKey>,
    /// A keys file with more entries.
    pub file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub id: String,
    /// `sha256:<hex>` or `argon2:<PHC string>`; `portcullis keys new` prints one.
    pub hash: String,
    pub principal: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub tier: Option<String>,
    /// Unix seconds after which the key is refused.
    pub expires: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    /// htpasswd file (bcrypt, SHA-crypt, argon2; apr1 and {SHA} with a warning).
    pub htpasswd: String,
    pub realm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtProvider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    /// e.g. `[RS256, ES256]`; HS* only together with `hmac_secret`.
    pub algorithms: Vec<String>,
    pub jwks_url: Option<String>,
    /// PEM CA bundle for the JWKS endpoint instead of the system roots.
    pub jwks_ca: Option<String>,
    /// Static public keys: PEM files.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Shared secret for HS256/384/512; `${env:NAME}` or `${file:PATH}`.
    pub hmac_secret: Option<String>,
    pub leeway: Option<String>,
    #[serde(default)]
    pub required_claims: Vec<String>,
    pub max_token_bytes: Option<RawSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    pub name: String,
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub client_auth: Option<String>,
    pub timeout: Option<String>,
    pub cache_max: Option<String>,
    pub ca: Option<String>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
}

/// A short-lived JWT the gateway signs for each authenticated request, so upstreams can
/// verify who called without talking to the identity provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamToken {
    /// `ES256` (default) or `EdDSA`.
    pub algorithm: Option<String>,
    /// PKCS#8 PEM private key; generated at start when absent (then it changes on restart).
    pub key: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub ttl: Option<String>,
    /// Header carrying the token (default `x-portcullis-token`).
    pub header: Option<String>,
    /// Also serve the JWKS on this public path (it is always on the admin API).
    pub public_jwks_path: Option<String>,
}

/// How callers of a route authenticate.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRouteAuth {
    /// Anonymous access, stated explicitly.
    #[serde(default)]
    pub public: bool,
    /// `api_key`, `basic`, `jwt:<provider>`, `introspection:<name>`, `mtls`; the first whose
    /// credential is present decides.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Forward the client's own `Authorization` header (default: only for bearer tokens).
    pub forward_authorization: Option<bool>,
    /// Basic over plain HTTP sends passwords in the clear; refused unless set (logged loudly).
    #[serde(default)]
    pub allow_basic_over_plain_http: bool,
    /// Attach the gateway-signed identity token (default true when `identity.upstream_token`
    /// is configured).
    pub upstream_token: Option<bool>,
}

/// One listening socket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Option<String>,
    /// `host:port`, for example `0.0.0.0:8443` or `[::]:443`.
    pub address: String,
    pub tls: Option<RawTls>,
    /// When set, this plain listener answers every request with a 308 to `https://host:PORT`.
    pub redirect_https_port: Option<u16>,
}

/// A listener's TLS section. `tls: self_signed` is accepted as shorthand for
/// `tls: { self_signed: [localhost] }` (see the `Deserialize` impl below).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[serde(remote = "Self")]
pub struct RawTls {
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// Host names for a development certificate generated at start.
    pub self_signed: Option<Vec<String>>,
    /// `"1.2"` (default) or `"1.3"`.
    pub min_version: Option<String>,
    /// `Strict-Transport-Security: max-age=N`; 0 turns the header off.
    pub hsts_max_age: Option<u64>,
    pub hsts_include_subdomains: Option<bool>,
    /// Ask clients for certificates (mTLS).
    pub client_auth: Option<RawClientAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// PEM bundle of the CAs that issue client certificates.
    pub ca: String,
    /// Refuse the handshake without a certificate (default). When false, a certificate is
    /// optional at the TLS layer and routes decide.
    pub required: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    /// PEM file with the certificate chain, leaf first.
    pub cert: String,
    /// PEM file with the private key.
    pub key: String,
}

/// Connection-level limits and timeouts (global).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub header_read_timeout: Option<String>,
    pub request_body_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_header_bytes: Option<RawSize>,
    pub max_headers: Option<usize>,
    pub max_url_length: Option<usize>,
    pub max_connections: Option<usize>,
    pub shutdown_grace: Option<String>,
    pub http2_max_concurrent_streams: Option<u32>,
    /// Open connections per client IP.
    pub max_connections_per_ip: Option<usize>,
    /// A request body slower than this (bytes per second, averaged after the first 5 s) is
    /// cut off.
    pub min_body_rate: Option<RawSize>,
}

/// A byte size: a number, or a string such as `64KiB`, `1MiB`, `10MB`.
#[derive(Debug, Clone)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

// Hand-written rather than `#[serde(untagged)]`, whose error ("data did not match any
// variant") tells the operator nothing.
impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size in bytes such as 65536, or a string such as 64KiB or 1MiB")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                u64::try_from(v)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }
        }
        de.deserialize_any(Visitor)
    }
}

/// Upstream pool.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port` or `https://host:port` URLs.
    pub targets: Vec<String>,
    /// PEM bundle of CAs trusted for `https://` targets instead of the system roots.
    pub ca: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    /// How long a target that refused a connection is skipped.
    pub unhealthy_cooldown: Option<String>,
    pub max_idle_per_target: Option<usize>,
    /// Send the client's Host header upstream (default) or the target's authority.
    pub preserve_host: Option<bool>,
}

/// One route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    #[serde(rename = "match", default)]
    pub match_: RawMatch,
    pub upstream: String,
    #[serde(default)]
    pub request: RawRequestPolicy,
    #[serde(default)]
    pub response: RawResponsePolicy,
    pub cors: Option<RawCors>,
    /// Required: `auth: { public: true }` or the methods callers may use.
    pub auth: Option<RawRouteAuth>,
    /// Scopes, roles, claims, MFA, object ownership and CEL rules.
    pub authorize: Option<portcullis_policy::AuthzConfig>,
    pub rate_limits: Option<RawRouteLimits>,
    /// Requests in flight on this route at once; more are shed with 503 at once.
    pub max_in_flight: Option<usize>,
    /// Validate requests (and filter responses) against the API's OpenAPI document.
    pub openapi: Option<RawOpenApi>,
    /// Attack-payload detection on decoded request values.
    pub inspect: Option<RawInspect>,
    /// Secret and personal-data detection in responses (and request bodies when asked).
    pub data_protection: Option<RawDataProtection>,
}

/// A route's API contract.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    /// The OpenAPI 3.0/3.1 document (YAML or JSON), relative to the config file.
    pub spec: String,
    /// `enforce` (default: refuse what breaks the contract) or `monitor` (record findings only).
    pub mode: Option<String>,
    /// Refuse body properties the schema does not declare, even without
    /// `additionalProperties: false` (stops mass assignment). Default true.
    pub reject_unknown_properties: Option<bool>,
    /// Refuse query parameters the operation does not declare. Default false.
    pub reject_unknown_query_params: Option<bool>,
    /// What to do with JSON response properties the response schema does not declare:
    /// `filter` (default: remove them), `enforce` (502), `monitor` or `off`.
    pub responses: Option<String>,
}

/// A route's attack-payload detection.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawInspect {
    /// `enforce` (default), `monitor` or `off`.
    pub mode: Option<String>,
    /// Anomaly score at which a request is refused (default 5: one critical detection).
    pub threshold: Option<u32>,
    /// Detector ids or family names switched off for this route.
    #[serde(default)]
    pub disabled: Vec<String>,
}

/// A route's secret and personal-data detection.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDataProtection {
    /// Detector id (or `"*"` for every built-in) → `mask`, `block` or `monitor`.
    /// Default: every built-in detector masks.
    #[serde(default)]
    pub detectors: std::collections::BTreeMap<String, String>,
    /// Extra patterns: `{ id, pattern, action }`.
    #[serde(default)]
    pub custom: Vec<RawCustomPattern>,
    /// Also scan request bodies (default false: responses only).
    #[serde(default)]
    pub request_bodies: bool,
    /// Scan response header values too (default true).
    pub response_headers: Option<bool>,
    /// Largest response body the gateway buffers to scan or filter (default 4MiB); a larger
    /// JSON or text response is refused with 502 unless every action is `monitor`.
    pub max_scan_body: Option<RawSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomPattern {
    pub id: String,
    /// A regular expression (linear-time `regex` syntax; no look-around or backreferences).
    pub pattern: String,
    /// `mask` (default), `block` or `monitor`.
    pub action: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Exact host names (port ignored); empty means any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix on segment boundaries; longest wins. Default `/`.
    pub path_prefix: Option<String>,
    /// Methods this route is chosen for; empty means any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `/users/{user_id}/orders/{order_id}`: names path parameters for authorization rules.
    pub path_template: Option<String>,
}

/// Route settings shared by every route unless it sets its own.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub request: RawRequestPolicy,
    #[serde(default)]
    pub response: RawResponsePolicy,
}

/// Restrictions on what a client may send.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRequestPolicy {
    pub max_body: Option<RawSize>,
    /// Methods allowed on the route; anything else is 405.
    pub allowed_methods: Option<Vec<String>>,
    /// Media types accepted for request bodies; anything else is 415.
    pub allowed_content_types: Option<Vec<String>>,
    /// Query parameter names that carry credentials and are refused in URLs.
    pub credential_params: Option<Vec<String>>,
}

/// Restrictions on what an upstream may send back.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawResponsePolicy {
    pub max_body: Option<RawSize>,
    /// Replace upstream 5xx bodies with a generic problem document.
    pub mask_upstream_errors: Option<bool>,
    /// Response headers removed because they fingerprint the upstream.
    pub strip_headers: Option<Vec<String>>,
    pub security_headers: Option<RawSecurityHeaders>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawSecurityHeaders {
    pub nosniff: Option<bool>,
    /// `Content-Security-Policy` value; empty string turns it off.
    pub content_security_policy: Option<String>,
    /// `Referrer-Policy` value; empty string turns it off.
    pub referrer_policy: Option<String>,
    /// `Cache-Control: no-store` on responses to authenticated requests.
    pub no_store_when_authenticated: Option<bool>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    pub max_age: Option<u64>,
}

/// Where events go.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    /// JSON-lines file; default `portcullis-events.jsonl`. `""` turns the file sink off.
    pub file: Option<String>,
    pub file_max_bytes: Option<RawSize>,
    pub file_max_files: Option<u32>,
    #[serde(default)]
    pub stdout: bool,
    /// Extra request header names whose values never reach an event.
    #[serde(default)]
    pub redact_headers: Vec<String>,
    pub queue_capacity: Option<usize>,
    /// SIEM destinations besides the file and stdout: syslog, Splunk HEC, Elasticsearch.
    #[serde(default)]
    pub sinks: Vec<RawSink>,
    /// Authentication (OCSF 3002) events for credential checks: `failures` (default), `all`
    /// or `off`.
    pub authentication: Option<String>,
}

/// One SIEM destination; exactly one key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawSink {
    Syslog(RawSyslogSink),
    SplunkHec(RawSplunkHecSink),
    ElasticBulk(RawElasticSink),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslogSink {
    /// `host:port` of the collector.
    pub address: String,
    /// `udp`, `tcp` (default, RFC 6587 octet counting) or `tls` (RFC 5425).
    pub transport: Option<String>,
    /// TLS only: PEM bundle of the CAs to trust (default: the system roots).
    pub ca_file: Option<String>,
    /// TLS only: the name to verify (default: the host of `address`).
    pub server_name: Option<String>,
    /// `json` (default) or `cef`.
    pub format: Option<String>,
    pub app_name: Option<String>,
    /// Facility name (`local0`, …) or number 0–23; default `local0`.
    pub facility: Option<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub batch: RawBatch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplunkHecSink {
    /// Base URL; events go to `<url>/services/collector/event`.
    pub url: String,
    /// HEC token: `${env:NAME}` or `${file:PATH}` keep it out of the file.
    pub token: String,
    pub index: Option<String>,
    pub source: Option<String>,
    pub sourcetype: Option<String>,
    pub host: Option<String>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub batch: RawBatch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawElasticSink {
    /// Base URL; events go to `<url>/_bulk`.
    pub url: String,
    /// Index or data stream (default `portcullis-events`).
    pub index: Option<String>,
    /// Basic authentication: `username` with `password`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Or `Authorization: ApiKey <api_key>` (the base64 `id:key` as issued).
    pub api_key: Option<String>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub batch: RawBatch,
}

/// Batching and retry of a network sink.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    pub max_events: Option<usize>,
    pub max_bytes: Option<RawSize>,
    pub flush_interval: Option<String>,
    pub max_retries: Option<u32>,
    pub backoff_initial: Option<String>,
    pub backoff_max: Option<String>,
    pub timeout: Option<String>,
    /// This sink's queue (default: `events.queue_capacity`).
    pub queue_capacity: Option<usize>,
}

/// The admin listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Default `127.0.0.1:9901`.
    pub address: Option<String>,
    /// Bearer token; `${env:NAME}` or `${file:PATH}` keep it out of the file.
    pub token: Option<String>,
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawTls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`self_signed` or a TLS section")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawTls, E> {
                if v == "self_signed" {
                    Ok(RawTls {
                        self_signed: Some(vec!["localhost".to_string()]),
                        ..RawTls::default()
                    })
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawTls, A::Error> {
                RawTls::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        de.deserialize_any(Visitor)
    }
}
