//! The validated runtime model, and the validation that builds it from the raw file.
//!
//! Validation never stops at the first problem: every field is checked and every error is
//! collected with its location, so `portcullis check` can list them all at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use serde::Serialize;

use super::raw::*;
use super::source::{ConfigError, SourceMap};
use super::units::{parse_duration, parse_size};

/// Query parameter names refused in URLs unless a route lists its own.
pub const DEFAULT_CREDENTIAL_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "token",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "key",
];

/// Response headers that fingerprint an upstream, removed unless a route lists its own.
pub const DEFAULT_STRIP_RESPONSE_HEADERS: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-runtime",
    "x-generator",
    "via",
];

/// The whole validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    pub trusted_proxies: Vec<IpNet>,
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub routes: Vec<RouteConfig>,
    /// Response policy for answers given before any route matched (404, framing errors).
    pub default_response: Arc<ResponsePolicy>,
    pub events: EventsConfig,
    pub admin: Option<AdminConfig>,
    pub identity: IdentityConfig,
    pub rate_limit: RateLimitConfig,
    pub access: AccessConfig,
    /// Sigma rules on the live event stream, when configured.
    pub detection: Option<super::detection::DetectionConfig>,
}

/// Named limits and their store.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RateLimitConfig {
    pub redis: Option<RedisStoreConfig>,
    pub limits: BTreeMap<String, LimitConfig>,
    pub max_keys_per_limit: usize,
    pub tiers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RedisStoreConfig {
    pub url: Secret,
    pub budget: Duration,
    pub fail_closed: bool,
    pub instances: u32,
    pub failure_threshold: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LimitConfig {
    pub name: String,
    pub rate: u32,
    pub per: Duration,
    pub burst: u32,
    pub key: Vec<LimitKey>,
}

/// What a limit counts by.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    Ip,
    Principal,
    ApiKey,
    Route,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct RouteLimits {
    pub before_auth: Vec<String>,
    pub after_auth: Vec<String>,
    pub headers: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct AccessConfig {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
    /// Close the connection of a blocked IP instead of answering 403.
    pub close_blocked_ips: bool,
    pub brute_force: Option<BruteForceConfig>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BruteForceConfig {
    pub threshold: u32,
    pub window: Duration,
    pub blocks: Vec<Duration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    pub tls: Option<TlsConfig>,
    pub redirect_https_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TlsConfig {
    pub certificates: Vec<CertificateFiles>,
    pub self_signed: Vec<String>,
    /// Only TLS 1.3 when true; TLS 1.2 and 1.3 otherwise. Nothing older is ever offered.
    pub tls13_only: bool,
    /// The full `Strict-Transport-Security` value, or None when turned off.
    pub hsts: Option<String>,
    /// Client certificates (mTLS), verified against these CAs.
    pub client_auth: Option<ClientAuthConfig>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClientAuthConfig {
    pub ca: PathBuf,
    /// Refuse handshakes without a certificate.
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Connection limits and timeouts.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_url_length: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    pub http2_max_concurrent_streams: u32,
    pub max_connections_per_ip: usize,
    /// Bytes per second a request body must average after its first seconds.
    pub min_body_rate: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpstreamConfig {
    pub targets: Vec<TargetUrl>,
    pub ca: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub unhealthy_cooldown: Duration,
    pub max_idle_per_target: usize,
    pub preserve_host: bool,
}

/// `http://host:port` or `https://host:port`, with no path.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetUrl {
    pub https: bool,
    /// `host:port`, port always explicit.
    pub authority: String,
}

impl TargetUrl {
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteConfig {
    pub name: String,
    pub hosts: Vec<String>,
    pub path_prefix: String,
    #[serde(serialize_with = "ser_methods")]
    pub methods: Vec<Method>,
    pub upstream: String,
    pub request: Arc<RequestPolicy>,
    pub response: Arc<ResponsePolicy>,
    pub cors: Option<Arc<CorsPolicy>>,
    pub auth: RouteAuth,
    /// Authorization rules, compiled into the snapshot.
    #[serde(skip)]
    pub authorize: Option<portcullis_policy::AuthzConfig>,
    pub path_template: Option<String>,
    pub rate_limits: RouteLimits,
    pub max_in_flight: Option<usize>,
    /// The route's OpenAPI contract, compiled.
    pub openapi: Option<Arc<super::contract::OpenApiPolicy>>,
    /// Attack-payload detection.
    pub inspect: Option<Arc<super::contract::InspectPolicy>>,
    /// Secret and personal-data detection.
    pub data_protection: Option<Arc<super::contract::DataProtectionPolicy>>,
}

/// How callers of a route authenticate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RouteAuth {
    pub public: bool,
    pub methods: Vec<AuthMethodRef>,
    /// Forward the client's `Authorization` header; None means "only for bearer tokens".
    pub forward_authorization: Option<bool>,
    pub allow_basic_over_plain_http: bool,
    pub upstream_token: bool,
}

/// A method a route accepts, naming a configured provider where there can be several.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "method", content = "provider", rename_all = "snake_case")]
pub enum AuthMethodRef {
    ApiKey,
    Basic,
    Jwt(String),
    Introspection(String),
    Mtls,
}

/// Identity providers and stores, validated; built into live verifiers by the snapshot.
#[derive(Debug, Clone, Serialize, Default)]
pub struct IdentityConfig {
    pub api_keys: Option<ApiKeysConfig>,
    pub basic: Option<BasicConfig>,
    pub jwt: Vec<JwtConfig>,
    pub introspection: Vec<IntrospectionConfig>,
    pub upstream_token: Option<UpstreamTokenConfig>,
    #[serde(serialize_with = "ser_header_names")]
    pub strip_request_headers: Vec<HeaderName>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiKeysConfig {
    /// Lowercase header names carrying a bare key.
    pub headers: Vec<String>,
    pub keys: Vec<ApiKeyConfig>,
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiKeyConfig {
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    pub principal: String,
    pub scopes: Vec<String>,
    pub tier: Option<String>,
    pub expires: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BasicConfig {
    pub htpasswd: PathBuf,
    pub realm: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JwtConfig {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub jwks_url: Option<String>,
    pub jwks_ca: Option<PathBuf>,
    pub keys: Vec<PathBuf>,
    pub hmac_secret: Option<Secret>,
    pub leeway: Duration,
    pub required_claims: Vec<String>,
    pub max_token_bytes: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntrospectionConfig {
    pub name: String,
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_post: bool,
    pub timeout: Duration,
    pub cache_max: Duration,
    pub ca: Option<PathBuf>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpstreamTokenConfig {
    pub eddsa: bool,
    pub key: Option<PathBuf>,
    pub issuer: String,
    pub audience: Option<String>,
    pub ttl: Duration,
    pub header: String,
    pub public_jwks_path: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestPolicy {
    pub max_body: u64,
    /// Empty means every method.
    #[serde(serialize_with = "ser_methods")]
    pub allowed_methods: Vec<Method>,
    /// Lowercase media types without parameters; empty means any.
    pub allowed_content_types: Vec<String>,
    /// Lowercase parameter names.
    pub credential_params: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponsePolicy {
    pub max_body: u64,
    pub mask_upstream_errors: bool,
    #[serde(serialize_with = "ser_header_names")]
    pub strip_headers: Vec<HeaderName>,
    pub nosniff: bool,
    pub content_security_policy: Option<String>,
    pub referrer_policy: Option<String>,
    pub no_store_when_authenticated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CorsPolicy {
    /// Exact origins (`scheme://host[:port]`), compared case-insensitively.
    pub allow_origins: Vec<String>,
    #[serde(serialize_with = "ser_methods")]
    pub allow_methods: Vec<Method>,
    /// Lowercase header names.
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventsConfig {
    pub file: Option<PathBuf>,
    pub file_max_bytes: u64,
    pub file_max_files: u32,
    pub stdout: bool,
    pub redact_headers: Vec<String>,
    pub queue_capacity: usize,
    /// SIEM sinks (syslog, Splunk HEC, Elasticsearch `_bulk`), validated.
    #[serde(skip)]
    pub sinks: Vec<portcullis_events::SinkConfig>,
    /// Their kinds and destinations, for `/config` (never their secrets).
    pub sink_destinations: Vec<String>,
    /// Which credential checks get an Authentication event of their own.
    pub authentication: AuthEvents,
}

/// Which credential checks produce an Authentication (OCSF 3002) event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthEvents {
    Off,
    Failures,
    All,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminConfig {
    pub address: SocketAddr,
    pub token: Secret,
}

/// A secret value: never printed, serialized or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[REDACTED]")
    }
}

fn ser_methods<S: serde::Serializer>(m: &[Method], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.iter().map(Method::as_str))
}

fn ser_header_names<S: serde::Serializer>(h: &[HeaderName], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(h.iter().map(HeaderName::as_str))
}

/// Collects errors while building the model.
pub(super) struct Validator<'a> {
    map: &'a SourceMap,
    base_dir: PathBuf,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    pub(super) fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errors.push(self.map.error(field, msg));
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        raw: &Option<String>,
        default: Duration,
    ) -> Duration {
        match raw {
            None => default,
            Some(t) => match parse_duration(t) {
                Ok(d) if d.is_zero() => {
                    self.err(field, "must be greater than zero");
                    default
                }
                Ok(d) => d,
                Err(e) => {
                    self.err(field, e);
                    default
                }
            },
        }
    }

    pub(super) fn size(&mut self, field: &str, raw: &Option<RawSize>, default: u64) -> u64 {
        match raw {
            None => default,
            Some(r) => parse_size(r).unwrap_or_else(|e| {
                self.err(field, e);
                default
            }),
        }
    }

    fn methods(&mut self, field: &str, raw: &[String]) -> Vec<Method> {
        let mut out = Vec::new();
        for (i, m) in raw.iter().enumerate() {
            let upper = m.to_ascii_uppercase();
            match Method::from_bytes(upper.as_bytes()) {
                Ok(method) if m.chars().all(|c| c.is_ascii_alphabetic()) => out.push(method),
                _ => self.err(
                    &format!("{field}[{i}]"),
                    format!("`{m}` is not an HTTP method"),
                ),
            }
        }
        out
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Resolve `${env:NAME}` / `${file:PATH}` or take the literal value.
    pub(super) fn secret(&mut self, field: &str, raw: &str) -> Option<Secret> {
        let value = if let Some(name) = raw.strip_prefix("${env:").and_then(|r| r.strip_suffix('}'))
        {
            match std::env::var(name) {
                Ok(v) => v,
                Err(_) => {
                    self.err(field, format!("environment variable `{name}` is not set"));
                    return None;
                }
            }
        } else if let Some(path) = raw
            .strip_prefix("${file:")
            .and_then(|r| r.strip_suffix('}'))
        {
            match std::fs::read_to_string(self.path(path)) {
                Ok(v) => v.trim_end_matches(['\r', '\n']).to_string(),
                Err(e) => {
                    self.err(field, format!("cannot read secret file `{path}`: {e}"));
                    return None;
                }
            }
        } else {
            raw.to_string()
        };
        if value.is_empty() {
            self.err(field, "secret is empty");
            return None;
        }
        Some(Secret(value.into()))
    }
}

/// Build the runtime model from the raw file, collecting every problem.
pub fn validate(raw: RawConfig, map: &SourceMap) -> Result<Config, Vec<ConfigError>> {
    let base_dir = map
        .file()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut v = Validator {
        map,
        base_dir,
        errors: Vec::new(),
    };

    let listeners = validate_listeners(&mut v, &raw.listeners);
    let limits = validate_limits(&mut v, &raw.limits);

    let mut trusted_proxies = Vec::new();
    for (i, t) in raw.trusted_proxies.iter().enumerate() {
        match parse_cidr(t) {
            Some(net) => trusted_proxies.push(net),
            None => v.err(
                &format!("trusted_proxies[{i}]"),
                format!("`{t}` is not an IP address or CIDR"),
            ),
        }
    }

    let mut upstreams = BTreeMap::new();
    for (name, u) in &raw.upstreams {
        if name.trim().is_empty() {
            v.err("upstreams", "an upstream name must not be empty");
        }
        if let Some(cfg) = validate_upstream(&mut v, &format!("upstreams.{name}"), u) {
            upstreams.insert(name.clone(), cfg);
        }
    }

    let default_request = request_policy(&mut v, "defaults.request", &raw.defaults.request, None);
    let default_response =
        response_policy(&mut v, "defaults.response", &raw.defaults.response, None);

    let identity = validate_identity(&mut v, &raw.identity);
    let rate_limit = validate_rate_limit(&mut v, &raw.rate_limit);
    let access = validate_access(&mut v, &raw.access);
    let mut routes = Vec::new();
    let mut names = BTreeSet::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if r.name.trim().is_empty() {
            v.err(&format!("{at}.name"), "route name must not be empty");
        } else if !names.insert(r.name.clone()) {
            v.err(
                &format!("{at}.name"),
                format!("duplicate route name `{}`", r.name),
            );
        }
        if !raw.upstreams.contains_key(&r.upstream) {
            v.err(
                &format!("{at}.upstream"),
                format!("unknown upstream `{}`", r.upstream),
            );
        }
        let path_prefix = r.match_.path_prefix.clone().unwrap_or_else(|| "/".into());
        if !path_prefix.starts_with('/') {
            v.err(&format!("{at}.match.path_prefix"), "must start with `/`");
        }
        let hosts = r
            .match_
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let methods = v.methods(&format!("{at}.match.methods"), &r.match_.methods);
        let request = request_policy(
            &mut v,
            &format!("{at}.request"),
            &r.request,
            Some(&default_request),
        );
        let response = response_policy(
            &mut v,
            &format!("{at}.response"),
            &r.response,
            Some(&default_response),
        );
        let auth = route_auth(&mut v, &at, r, &identity, &raw.listeners);
        let rate_limits = route_limits(&mut v, &at, r, &rate_limit);
        if r.max_in_flight == Some(0) {
            v.err(&format!("{at}.max_in_flight"), "must be greater than zero");
        }
        if let Some(t) = &r.match_.path_template
            && let Err(e) = portcullis_policy::PathTemplate::parse(t)
        {
            v.err(&format!("{at}.match.path_template"), e.to_string());
        }
        if let Some(authz) = &r.authorize {
            if auth.public {
                v.err(
                    &format!("{at}.authorize"),
                    "a public route has no caller to authorize: remove `authorize` or require authentication",
                );
            }
            match portcullis_policy::AuthzPolicy::compile(authz) {
                Ok(policy) => {
                    let template = r
                        .match_
                        .path_template
                        .as_deref()
                        .map(portcullis_policy::PathTemplate::parse);
                    match template {
                        Some(Ok(t)) => {
                            if let Err(e) = policy.check_template(&t) {
                                v.err(&format!("{at}.match.path_template"), e.to_string());
                            }
                        }
                        Some(Err(_)) => {}
                        None if !authz.ownership.is_empty() => v.err(
                            &format!("{at}.authorize.ownership"),
                            "ownership rules need `match.path_template` to name the path parameters",
                        ),
                        None => {}
                    }
                }
                Err(portcullis_policy::PolicyError::Cel { index, message }) => {
                    v.err(
                        &format!("{at}.authorize.cel[{index}]"),
                        format!("CEL does not compile: {message}"),
                    );
                }
                Err(portcullis_policy::PolicyError::Rule { rule, message }) => {
                    v.err(&format!("{at}.authorize.{rule}"), message);
                }
                Err(e) => v.err(&format!("{at}.authorize"), e.to_string()),
            }
        }
        let cors = r
            .cors
            .as_ref()
            .and_then(|c| cors_policy(&mut v, &format!("{at}.cors"), c))
            .map(Arc::new);
        let openapi = r
            .openapi
            .as_ref()
            .and_then(|o| super::contract::openapi_policy(&mut v, &at, o))
            .map(Arc::new);
        let inspect = r
            .inspect
            .as_ref()
            .and_then(|i| super::contract::inspect_policy(&mut v, &at, i))
            .map(Arc::new);
        let data_protection = r
            .data_protection
            .as_ref()
            .and_then(|d| super::contract::data_protection_policy(&mut v, &at, d))
            .map(Arc::new);
        routes.push(RouteConfig {
            name: r.name.clone(),
            hosts,
            path_prefix,
            methods,
            upstream: r.upstream.clone(),
            request: Arc::new(request),
            response: Arc::new(response),
            cors,
            auth,
            authorize: r.authorize.clone(),
            path_template: r.match_.path_template.clone(),
            rate_limits,
            max_in_flight: r.max_in_flight,
            openapi,
            inspect,
            data_protection,
        });
    }

    let events = validate_events(&mut v, &raw.events);
    let detection = raw
        .detection
        .as_ref()
        .and_then(|d| super::detection::detection_config(&mut v, d));
    let admin = raw.admin.as_ref().and_then(|a| validate_admin(&mut v, a));

    if v.errors.is_empty() {
        Ok(Config {
            listeners,
            limits,
            trusted_proxies,
            upstreams,
            routes,
            default_response: Arc::new(default_response),
            events,
            admin,
            identity,
            rate_limit,
            access,
            detection,
        })
    } else {
        Err(v.errors)
    }
}

fn parse_cidr(t: &str) -> Option<IpNet> {
    t.parse::<IpNet>()
        .ok()
        .or_else(|| t.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

fn validate_listeners(v: &mut Validator, raw: &[RawListener]) -> Vec<ListenerConfig> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    if raw.is_empty() {
        v.err("listeners", "at least one listener is required");
    }
    for (i, l) in raw.iter().enumerate() {
        let at = format!("listeners[{i}]");
        // Fix: a bad address used to `continue` here, so that listener's TLS and redirect
        // errors went unreported; every listener is now checked in full.
        let address = match l.address.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                v.err(
                    &format!("{at}.address"),
                    format!("`{}` is not an address such as 0.0.0.0:8443", l.address),
                );
                None
            }
        };
        // Port 0 asks the OS for a free port, so two such listeners never collide.
        if let Some(address) = address
            && address.port() != 0
            && !seen.insert(address)
        {
            v.err(
                &format!("{at}.address"),
                format!("address {address} is used twice"),
            );
        }
        if l.tls.is_some() && l.redirect_https_port.is_some() {
            v.err(
                &format!("{at}.redirect_https_port"),
                "a redirect listener is plain HTTP: remove `tls` or `redirect_https_port`",
            );
        }
        let tls = l
            .tls
            .as_ref()
            .and_then(|t| validate_tls(v, &format!("{at}.tls"), t));
        let Some(address) = address else { continue };
        out.push(ListenerConfig {
            name: l.name.clone().unwrap_or_else(|| format!("listener-{i}")),
            address,
            tls,
            redirect_https_port: l.redirect_https_port,
        });
    }
    out
}

fn validate_tls(v: &mut Validator, at: &str, t: &RawTls) -> Option<TlsConfig> {
    let mut certificates = Vec::new();
    for (i, c) in t.certificates.iter().enumerate() {
        let cert = v.path(&c.cert);
        let key = v.path(&c.key);
        if !cert.is_file() {
            v.err(
                &format!("{at}.certificates[{i}].cert"),
                format!("certificate file `{}` does not exist", cert.display()),
            );
        }
        if !key.is_file() {
            v.err(
                &format!("{at}.certificates[{i}].key"),
                format!("key file `{}` does not exist", key.display()),
            );
        }
        certificates.push(CertificateFiles { cert, key });
    }
    let self_signed = t.self_signed.clone().unwrap_or_default();
    if certificates.is_empty() && self_signed.is_empty() {
        v.err(at, "give `certificates` or `self_signed`");
    }
    let tls13_only = match t.min_version.as_deref() {
        None | Some("1.2") => false,
        Some("1.3") => true,
        Some(other) => {
            v.err(
                &format!("{at}.min_version"),
                format!("`{other}` is not offered: use \"1.2\" or \"1.3\""),
            );
            false
        }
    };
    let max_age = t.hsts_max_age.unwrap_or(31_536_000);
    let hsts = (max_age > 0).then(|| {
        if t.hsts_include_subdomains.unwrap_or(false) {
            format!("max-age={max_age}; includeSubDomains")
        } else {
            format!("max-age={max_age}")
        }
    });
    let client_auth = t.client_auth.as_ref().map(|c| {
        let ca = v.path(&c.ca);
        if !ca.is_file() {
            v.err(
                &format!("{at}.client_auth.ca"),
                format!("CA file `{}` does not exist", ca.display()),
            );
        }
        ClientAuthConfig {
            ca,
            required: c.required.unwrap_or(true),
        }
    });
    Some(TlsConfig {
        certificates,
        self_signed,
        tls13_only,
        hsts,
        client_auth,
    })
}

fn validate_limits(v: &mut Validator, l: &RawLimits) -> Limits {
    let max_header_bytes = v.size("limits.max_header_bytes", &l.max_header_bytes, 16 * 1024);
    if max_header_bytes < 1024 {
        v.err("limits.max_header_bytes", "must be at least 1024");
    }
    let positive = |v: &mut Validator, field: &str, value: Option<usize>, default: usize| {
        let n = value.unwrap_or(default);
        if n == 0 {
            v.err(field, "must be greater than zero");
        }
        n
    };
    Limits {
        header_read_timeout: v.duration(
            "limits.header_read_timeout",
            &l.header_read_timeout,
            Duration::from_secs(10),
        ),
        request_body_timeout: v.duration(
            "limits.request_body_timeout",
            &l.request_body_timeout,
            Duration::from_secs(30),
        ),
        idle_timeout: v.duration(
            "limits.idle_timeout",
            &l.idle_timeout,
            Duration::from_secs(60),
        ),
        max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX),
        max_headers: positive(v, "limits.max_headers", l.max_headers, 100),
        max_url_length: positive(v, "limits.max_url_length", l.max_url_length, 8192),
        max_connections: positive(v, "limits.max_connections", l.max_connections, 10_000),
        shutdown_grace: v.duration(
            "limits.shutdown_grace",
            &l.shutdown_grace,
            Duration::from_secs(30),
        ),
        http2_max_concurrent_streams: l.http2_max_concurrent_streams.unwrap_or(100),
        max_connections_per_ip: positive(
            v,
            "limits.max_connections_per_ip",
            l.max_connections_per_ip,
            256,
        ),
        min_body_rate: v.size("limits.min_body_rate", &l.min_body_rate, 1024),
    }
}

fn validate_upstream(v: &mut Validator, at: &str, u: &RawUpstream) -> Option<UpstreamConfig> {
    if u.targets.is_empty() {
        v.err(&format!("{at}.targets"), "at least one target is required");
    }
    let mut targets = Vec::new();
    for (i, t) in u.targets.iter().enumerate() {
        match parse_target(t) {
            Ok(target) => targets.push(target),
            Err(e) => v.err(&format!("{at}.targets[{i}]"), e),
        }
    }
    let ca = u.ca.as_ref().map(|p| v.path(p));
    if let Some(ca) = &ca
        && !ca.is_file()
    {
        v.err(
            &format!("{at}.ca"),
            format!("CA file `{}` does not exist", ca.display()),
        );
    }
    Some(UpstreamConfig {
        targets,
        ca,
        connect_timeout: v.duration(
            &format!("{at}.connect_timeout"),
            &u.connect_timeout,
            Duration::from_secs(3),
        ),
        response_timeout: v.duration(
            &format!("{at}.response_timeout"),
            &u.response_timeout,
            Duration::from_secs(30),
        ),
        unhealthy_cooldown: v.duration(
            &format!("{at}.unhealthy_cooldown"),
            &u.unhealthy_cooldown,
            Duration::from_secs(10),
        ),
        max_idle_per_target: u.max_idle_per_target.unwrap_or(64),
        preserve_host: u.preserve_host.unwrap_or(true),
    })
}

fn parse_target(t: &str) -> Result<TargetUrl, String> {
    let (https, rest) = if let Some(r) = t.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = t.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("`{t}` must start with http:// or https://"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "`{t}` must be scheme://host[:port] with no path or userinfo"
        ));
    }
    let parsed: http::uri::Authority = authority
        .parse()
        .map_err(|_| format!("`{t}` has an invalid host or port"))?;
    let port = parsed.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok(TargetUrl {
        https,
        authority: format!("{}:{port}", parsed.host()),
    })
}

fn request_policy(
    v: &mut Validator,
    at: &str,
    r: &RawRequestPolicy,
    base: Option<&RequestPolicy>,
) -> RequestPolicy {
    let max_body = v.size(
        &format!("{at}.max_body"),
        &r.max_body,
        base.map_or(1 << 20, |b| b.max_body),
    );
    let allowed_methods = match &r.allowed_methods {
        Some(m) => v.methods(&format!("{at}.allowed_methods"), m),
        None => base.map(|b| b.allowed_methods.clone()).unwrap_or_default(),
    };
    let allowed_content_types = match &r.allowed_content_types {
        Some(list) => {
            let mut out = Vec::new();
            for (i, ct) in list.iter().enumerate() {
                let ct = ct.trim().to_ascii_lowercase();
                if ct.split('/').count() != 2 || ct.contains(';') {
                    v.err(
                        &format!("{at}.allowed_content_types[{i}]"),
                        format!("`{ct}` is not a media type such as application/json"),
                    );
                }
                out.push(ct);
            }
            out
        }
        None => base
            .map(|b| b.allowed_content_types.clone())
            .unwrap_or_default(),
    };
    let credential_params = match &r.credential_params {
        Some(list) => list.iter().map(|p| p.to_ascii_lowercase()).collect(),
        None => base
            .map(|b| b.credential_params.clone())
            .unwrap_or_else(|| {
                DEFAULT_CREDENTIAL_PARAMS
                    .iter()
                    .map(|s| (*s).to_string())
                    .collect()
            }),
    };
    RequestPolicy {
        max_body,
        allowed_methods,
        allowed_content_types,
        credential_params,
    }
}

fn response_policy(
    v: &mut Validator,
    at: &str,
    r: &RawResponsePolicy,
    base: Option<&ResponsePolicy>,
) -> ResponsePolicy {
    let max_body = v.size(
        &format!("{at}.max_body"),
        &r.max_body,
        base.map_or(10 << 20, |b| b.max_body),
    );
    let strip_headers = match &r.strip_headers {
        Some(list) => {
            let mut out = Vec::new();
            for (i, h) in list.iter().enumerate() {
                match HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes()) {
                    Ok(n) => out.push(n),
                    Err(_) => v.err(
                        &format!("{at}.strip_headers[{i}]"),
                        format!("`{h}` is not a header name"),
                    ),
                }
            }
            out
        }
        None => base.map(|b| b.strip_headers.clone()).unwrap_or_else(|| {
            DEFAULT_STRIP_RESPONSE_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect()
        }),
    };
    let sh = r.security_headers.clone().unwrap_or_default();
    let header_value = |v: &mut Validator,
                        field: &str,
                        raw: Option<String>,
                        inherited: Option<String>| {
        match raw {
            Some(s) if s.is_empty() => None,
            Some(s) => {
                if HeaderValue::from_str(&s).is_err() {
                    v.err(field, "not a valid header value");
                }
                Some(s)
            }
            None => inherited,
        }
    };
    let content_security_policy = header_value(
        v,
        &format!("{at}.security_headers.content_security_policy"),
        sh.content_security_policy,
        base.map_or(
            Some("default-src 'none'; frame-ancestors 'none'".to_string()),
            |b| b.content_security_policy.clone(),
        ),
    );
    let referrer_policy = header_value(
        v,
        &format!("{at}.security_headers.referrer_policy"),
        sh.referrer_policy,
        base.map_or(Some("no-referrer".to_string()), |b| {
            b.referrer_policy.clone()
        }),
    );
    ResponsePolicy {
        max_body,
        mask_upstream_errors: r
            .mask_upstream_errors
            .unwrap_or(base.is_none_or(|b| b.mask_upstream_errors)),
        strip_headers,
        nosniff: sh.nosniff.unwrap_or(base.is_none_or(|b| b.nosniff)),
        content_security_policy,
        referrer_policy,
        no_store_when_authenticated: sh
            .no_store_when_authenticated
            .unwrap_or(base.is_none_or(|b| b.no_store_when_authenticated)),
    }
}

fn cors_policy(v: &mut Validator, at: &str, c: &RawCors) -> Option<CorsPolicy> {
    let mut allow_origins = Vec::new();
    for (i, o) in c.allow_origins.iter().enumerate() {
        let field = format!("{at}.allow_origins[{i}]");
        if o == "*" {
            // An explicit allow-list is the whole point: a wildcard would let any site read
            // the API from a victim's browser, and with credentials it is forbidden anyway.
            v.err(&field, "`*` is not allowed: list each origin");
            continue;
        }
        let lower = o.trim_end_matches('/').to_ascii_lowercase();
        let well_formed = (lower.starts_with("https://") || lower.starts_with("http://"))
            && lower
                .split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains('/'));
        if !well_formed {
            v.err(
                &field,
                format!("`{o}` is not an origin such as https://app.example.com"),
            );
            continue;
        }
        allow_origins.push(lower);
    }
    if c.allow_origins.is_empty() {
        v.err(&format!("{at}.allow_origins"), "list at least one origin");
    }
    let allow_methods = v.methods(&format!("{at}.allow_methods"), &c.allow_methods);
    let mut lower_headers = |list: &[String], field: &str| {
        let mut out = Vec::new();
        for (i, h) in list.iter().enumerate() {
            if h == "*" || HeaderName::from_bytes(h.as_bytes()).is_err() {
                v.err(
                    &format!("{at}.{field}[{i}]"),
                    format!("`{h}` is not a header name"),
                );
            } else {
                out.push(h.to_ascii_lowercase());
            }
        }
        out
    };
    let allow_headers = lower_headers(&c.allow_headers, "allow_headers");
    let expose_headers = lower_headers(&c.expose_headers, "expose_headers");
    Some(CorsPolicy {
        allow_origins,
        allow_methods,
        allow_headers,
        expose_headers,
        allow_credentials: c.allow_credentials,
        max_age: c.max_age,
    })
}

fn validate_events(v: &mut Validator, e: &RawEvents) -> EventsConfig {
    let file = match e.file.as_deref() {
        Some("") => None,
        Some(p) => Some(v.path(p)),
        None => Some(PathBuf::from("portcullis-events.jsonl")),
    };
    let queue_capacity = e.queue_capacity.unwrap_or(65_536);
    if queue_capacity == 0 {
        v.err("events.queue_capacity", "must be greater than zero");
    }
    let file_max_bytes = v.size("events.file_max_bytes", &e.file_max_bytes, 100 << 20);
    let authentication = match e.authentication.as_deref().unwrap_or("failures") {
        "off" => AuthEvents::Off,
        "failures" => AuthEvents::Failures,
        "all" => AuthEvents::All,
        other => {
            v.err(
                "events.authentication",
                format!("`{other}` is not a choice: use `failures`, `all` or `off`"),
            );
            AuthEvents::Failures
        }
    };
    let sinks: Vec<portcullis_events::SinkConfig> = e
        .sinks
        .iter()
        .enumerate()
        .filter_map(|(i, s)| validate_sink(v, &format!("events.sinks[{i}]"), s))
        .collect();
    // Fix: 0 used to pass `check` and then fail at start ("max_bytes must be positive").
    if file_max_bytes == 0 {
        v.err("events.file_max_bytes", "must be greater than zero");
    }
    EventsConfig {
        file,
        file_max_bytes,
        file_max_files: e.file_max_files.unwrap_or(5),
        stdout: e.stdout,
        redact_headers: e
            .redact_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        queue_capacity,
        sink_destinations: sinks.iter().map(sink_destination).collect(),
        sinks,
        authentication,
    }
}

fn sink_destination(s: &portcullis_events::SinkConfig) -> String {
    use portcullis_events::SinkConfig;
    match s {
        SinkConfig::Syslog(c) => format!("syslog {}", c.address),
        SinkConfig::SplunkHec(c) => format!("splunk_hec {}", c.url),
        SinkConfig::ElasticBulk(c) => format!("elastic_bulk {}", c.url),
        other => other.kind().to_string(),
    }
}

fn validate_batch(
    v: &mut Validator,
    at: &str,
    b: &RawBatch,
    base: portcullis_events::BatchConfig,
) -> portcullis_events::BatchConfig {
    portcullis_events::BatchConfig {
        max_events: b.max_events.unwrap_or(base.max_events).max(1),
        max_bytes: usize::try_from(v.size(
            &format!("{at}.max_bytes"),
            &b.max_bytes,
            base.max_bytes as u64,
        ))
        .unwrap_or(usize::MAX),
        flush_interval: v.duration(
            &format!("{at}.flush_interval"),
            &b.flush_interval,
            base.flush_interval,
        ),
        max_retries: b.max_retries.unwrap_or(base.max_retries),
        backoff_initial: v.duration(
            &format!("{at}.backoff_initial"),
            &b.backoff_initial,
            base.backoff_initial,
        ),
        backoff_max: v.duration(
            &format!("{at}.backoff_max"),
            &b.backoff_max,
            base.backoff_max,
        ),
        queue_capacity: b.queue_capacity.or(base.queue_capacity),
        timeout: v.duration(&format!("{at}.timeout"), &b.timeout, base.timeout),
    }
}

fn validate_sink(
    v: &mut Validator,
    at: &str,
    raw: &RawSink,
) -> Option<portcullis_events::SinkConfig> {
    use portcullis_events::{
        ElasticAuth, ElasticBulkConfig, HttpTlsConfig, Secret as EventSecret, SinkConfig,
        SplunkHecConfig, SyslogConfig, SyslogFormat, SyslogTransport,
    };
    let http_url = |v: &mut Validator, field: &str, url: &str| {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            v.err(field, "must be an http(s) URL");
        }
    };
    match raw {
        RawSink::Syslog(s) => {
            let at = format!("{at}.syslog");
            let transport = match s.transport.as_deref().unwrap_or("tcp") {
                "udp" => SyslogTransport::Udp,
                "tcp" => SyslogTransport::Tcp,
                "tls" => SyslogTransport::Tls {
                    ca_file: s.ca_file.as_deref().map(|p| v.path(p)),
                    server_name: s.server_name.clone(),
                },
                other => {
                    v.err(
                        &format!("{at}.transport"),
                        format!("`{other}` is not a transport: use udp, tcp or tls"),
                    );
                    SyslogTransport::Tcp
                }
            };
            let format = match s.format.as_deref().unwrap_or("json") {
                "json" => SyslogFormat::Json,
                "cef" => SyslogFormat::Cef,
                other => {
                    v.err(
                        &format!("{at}.format"),
                        format!("`{other}` is not a format: use json or cef"),
                    );
                    SyslogFormat::Json
                }
            };
            let facility = match s.facility.as_deref() {
                None => 16,
                Some(f) => match portcullis_events::syslog_facility(f) {
                    Some(n) => n,
                    None => {
                        v.err(
                            &format!("{at}.facility"),
                            format!("`{f}` is not a syslog facility (local0..local7, user, auth, … or 0-23)"),
                        );
                        16
                    }
                },
            };
            let base = SyslogConfig::default();
            let batch = validate_batch(v, &format!("{at}.batch"), &s.batch, base.batch.clone());
            Some(SinkConfig::Syslog(SyslogConfig {
                address: s.address.clone(),
                transport,
                format,
                app_name: s.app_name.clone().unwrap_or(base.app_name),
                facility,
                hostname: s.hostname.clone(),
                batch,
            }))
        }
        RawSink::SplunkHec(s) => {
            let at = format!("{at}.splunk_hec");
            http_url(v, &format!("{at}.url"), &s.url);
            let token = v.secret(&format!("{at}.token"), &s.token)?;
            let base = SplunkHecConfig::default();
            let batch = validate_batch(v, &format!("{at}.batch"), &s.batch, base.batch.clone());
            Some(SinkConfig::SplunkHec(SplunkHecConfig {
                url: s.url.clone(),
                token: EventSecret::new(token.expose()),
                index: s.index.clone(),
                source: s.source.clone().unwrap_or(base.source),
                sourcetype: s.sourcetype.clone().unwrap_or(base.sourcetype),
                host: s.host.clone(),
                tls: HttpTlsConfig {
                    ca_file: s.ca_file.as_deref().map(|p| v.path(p)),
                },
                batch,
            }))
        }
        RawSink::ElasticBulk(s) => {
            let at = format!("{at}.elastic_bulk");
            http_url(v, &format!("{at}.url"), &s.url);
            let auth = match (&s.username, &s.password, &s.api_key) {
                (None, None, None) => ElasticAuth::None,
                (Some(u), Some(p), None) => ElasticAuth::Basic {
                    username: u.clone(),
                    password: EventSecret::new(v.secret(&format!("{at}.password"), p)?.expose()),
                },
                (None, None, Some(k)) => ElasticAuth::ApiKey(EventSecret::new(
                    v.secret(&format!("{at}.api_key"), k)?.expose(),
                )),
                _ => {
                    v.err(
                        &at,
                        "authenticate with `username` and `password`, or with `api_key`",
                    );
                    ElasticAuth::None
                }
            };
            let base = ElasticBulkConfig::default();
            let batch = validate_batch(v, &format!("{at}.batch"), &s.batch, base.batch.clone());
            Some(SinkConfig::ElasticBulk(ElasticBulkConfig {
                url: s.url.clone(),
                index: s.index.clone().unwrap_or(base.index),
                auth,
                tls: HttpTlsConfig {
                    ca_file: s.ca_file.as_deref().map(|p| v.path(p)),
                },
                batch,
            }))
        }
    }
}

fn validate_admin(v: &mut Validator, a: &RawAdmin) -> Option<AdminConfig> {
    let text = a.address.as_deref().unwrap_or("127.0.0.1:9901");
    // Fix: a bad address used to return here, hiding every token error; the token is now
    // checked either way.
    let address = match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            v.err(
                "admin.address",
                format!("`{text}` is not an address such as 127.0.0.1:9901"),
            );
            None
        }
    };
    let Some(raw_token) = a.token.as_deref() else {
        v.err(
            "admin.token",
            "the admin API needs a bearer token (use ${env:NAME} or ${file:PATH} to keep it out of this file)",
        );
        return None;
    };
    let token = v.secret("admin.token", raw_token)?;
    let address = address?;
    if !address.ip().is_loopback() && token.expose().len() < 16 {
        v.err(
            "admin.token",
            "an admin API on a non-loopback address needs a token of at least 16 characters",
        );
    }
    Some(AdminConfig { address, token })
}

fn route_auth(
    v: &mut Validator,
    at: &str,
    r: &RawRoute,
    identity: &IdentityConfig,
    listeners: &[RawListener],
) -> RouteAuth {
    let Some(a) = &r.auth else {
        // Default deny: a route is anonymous only when the config says so.
        v.err(
            &format!("{at}.auth"),
            "every route must say how callers authenticate: set `auth: { public: true }` or `auth: { methods: [...] }`",
        );
        return RouteAuth {
            public: false,
            methods: Vec::new(),
            forward_authorization: None,
            allow_basic_over_plain_http: false,
            upstream_token: false,
        };
    };
    if a.public && !a.methods.is_empty() {
        v.err(
            &format!("{at}.auth.methods"),
            "a public route takes no authentication methods: remove `public` or `methods`",
        );
    }
    if !a.public && a.methods.is_empty() {
        v.err(
            &format!("{at}.auth.methods"),
            "list at least one method (api_key, basic, jwt:<provider>, introspection:<name>, mtls) or set `public: true`",
        );
    }
    let mut methods = Vec::new();
    for (i, m) in a.methods.iter().enumerate() {
        let field = format!("{at}.auth.methods[{i}]");
        let parsed = match m.split_once(':') {
            None if m == "api_key" => identity
                .api_keys
                .is_some()
                .then_some(AuthMethodRef::ApiKey)
                .ok_or("`api_key` needs `identity.api_keys`"),
            None if m == "basic" => identity
                .basic
                .is_some()
                .then_some(AuthMethodRef::Basic)
                .ok_or("`basic` needs `identity.basic`"),
            None if m == "mtls" => listeners
                .iter()
                .any(|l| l.tls.as_ref().is_some_and(|t| t.client_auth.is_some()))
                .then_some(AuthMethodRef::Mtls)
                .ok_or("`mtls` needs a listener with `tls.client_auth`"),
            Some(("jwt", name)) => identity
                .jwt
                .iter()
                .any(|p| p.name == name)
                .then(|| AuthMethodRef::Jwt(name.to_string()))
                .ok_or("no `identity.jwt` provider has that name"),
            Some(("introspection", name)) => identity
                .introspection
                .iter()
                .any(|p| p.name == name)
                .then(|| AuthMethodRef::Introspection(name.to_string()))
                .ok_or("no `identity.introspection` entry has that name"),
            _ => Err(
                "unknown method: use api_key, basic, jwt:<provider>, introspection:<name> or mtls",
            ),
        };
        match parsed {
            Ok(m) => methods.push(m),
            Err(msg) => v.err(&field, format!("`{m}`: {msg}")),
        }
    }
    if a.allow_basic_over_plain_http && methods.contains(&AuthMethodRef::Basic) {
        tracing::warn!(route = %r.name, "route allows HTTP Basic over plain HTTP: passwords cross the network in the clear");
    }
    RouteAuth {
        public: a.public,
        methods,
        forward_authorization: a.forward_authorization,
        allow_basic_over_plain_http: a.allow_basic_over_plain_http,
        upstream_token: a
            .upstream_token
            .unwrap_or(identity.upstream_token.is_some())
            && !a.public,
    }
}

fn validate_identity(v: &mut Validator, raw: &RawIdentity) -> IdentityConfig {
    let api_keys = raw.api_keys.as_ref().map(|k| {
        let headers = k
            .headers
            .clone()
            .unwrap_or_else(|| vec!["x-api-key".to_string()])
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let mut ids = BTreeSet::new();
        let keys = k
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                if !ids.insert(key.id.clone()) {
                    v.err(&format!("identity.api_keys.keys[{i}].id"), format!("duplicate key id `{}`", key.id));
                }
                if !(key.hash.starts_with("sha256:") || key.hash.starts_with("argon2:")) {
                    v.err(
                        &format!("identity.api_keys.keys[{i}].hash"),
                        "use `sha256:<hex>` or `argon2:<PHC string>` (portcullis keys new prints one)",
                    );
                }
                ApiKeyConfig {
                    id: key.id.clone(),
                    hash: key.hash.clone(),
                    principal: key.principal.clone(),
                    scopes: key.scopes.clone(),
                    tier: key.tier.clone(),
                    expires: key.expires,
                }
            })
            .collect();
        let file = k.file.as_ref().map(|f| v.path(f));
        if let Some(f) = &file
            && !f.is_file()
        {
            v.err("identity.api_keys.file", format!("keys file `{}` does not exist", f.display()));
        }
        ApiKeysConfig { headers, keys, file }
    });
    let basic = raw.basic.as_ref().map(|b| {
        let htpasswd = v.path(&b.htpasswd);
        if !htpasswd.is_file() {
            v.err(
                "identity.basic.htpasswd",
                format!("htpasswd file `{}` does not exist", htpasswd.display()),
            );
        }
        BasicConfig {
            htpasswd,
            realm: b.realm.clone().unwrap_or_else(|| "api".into()),
        }
    });
    let mut names = BTreeSet::new();
    let mut jwt = Vec::new();
    for (i, p) in raw.jwt.iter().enumerate() {
        let at = format!("identity.jwt[{i}]");
        if !names.insert(p.name.clone()) {
            v.err(
                &format!("{at}.name"),
                format!("duplicate provider name `{}`", p.name),
            );
        }
        if p.audiences.is_empty() {
            v.err(
                &format!("{at}.audiences"),
                "list at least one audience: tokens for other services must not be accepted",
            );
        }
        let hmac_secret = p
            .hmac_secret
            .as_ref()
            .and_then(|s| v.secret(&format!("{at}.hmac_secret"), s));
        for (j, alg) in p.algorithms.iter().enumerate() {
            let ok = matches!(
                alg.as_str(),
                "RS256"
                    | "RS384"
                    | "RS512"
                    | "PS256"
                    | "PS384"
                    | "PS512"
                    | "ES256"
                    | "ES384"
                    | "EdDSA"
            ) || (alg.starts_with("HS")
                && matches!(alg.as_str(), "HS256" | "HS384" | "HS512")
                && hmac_secret.is_some());
            if !ok {
                v.err(
                    &format!("{at}.algorithms[{j}]"),
                    if alg.starts_with("HS") {
                        format!("`{alg}` needs `hmac_secret`")
                    } else {
                        format!("`{alg}` is not supported (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)")
                    },
                );
            }
        }
        if p.algorithms.is_empty() {
            v.err(
                &format!("{at}.algorithms"),
                "list the algorithms tokens may use",
            );
        }
        let keys: Vec<PathBuf> = p.keys.iter().map(|k| v.path(k)).collect();
        for (j, k) in keys.iter().enumerate() {
            if !k.is_file() {
                v.err(
                    &format!("{at}.keys[{j}]"),
                    format!("key file `{}` does not exist", k.display()),
                );
            }
        }
        let sources = usize::from(p.jwks_url.is_some())
            + usize::from(!keys.is_empty())
            + usize::from(p.hmac_secret.is_some());
        if sources != 1 {
            v.err(
                &at,
                "give exactly one of `jwks_url`, `keys` or `hmac_secret`",
            );
        }
        if let Some(url) = &p.jwks_url
            && !url.starts_with("https://")
            && !is_loopback_url(url)
        {
            v.err(
                &format!("{at}.jwks_url"),
                "the JWKS must be fetched over https:// (plain http only on loopback)",
            );
        }
        jwt.push(JwtConfig {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            audiences: p.audiences.clone(),
            algorithms: p.algorithms.clone(),
            jwks_url: p.jwks_url.clone(),
            jwks_ca: p.jwks_ca.as_ref().map(|c| v.path(c)),
            keys,
            hmac_secret,
            leeway: v.duration(&format!("{at}.leeway"), &p.leeway, Duration::from_secs(30)),
            required_claims: p.required_claims.clone(),
            max_token_bytes: usize::try_from(v.size(
                &format!("{at}.max_token_bytes"),
                &p.max_token_bytes,
                8192,
            ))
            .unwrap_or(8192),
        });
    }
    let mut introspection = Vec::new();
    for (i, p) in raw.introspection.iter().enumerate() {
        let at = format!("identity.introspection[{i}]");
        if !names.insert(p.name.clone()) {
            v.err(
                &format!("{at}.name"),
                format!("duplicate provider name `{}`", p.name),
            );
        }
        if !p.endpoint.starts_with("https://") && !is_loopback_url(&p.endpoint) {
            v.err(
                &format!("{at}.endpoint"),
                "introspection must use https:// (plain http only on loopback)",
            );
        }
        let client_secret_post = match p.client_auth.as_deref() {
            None | Some("client_secret_basic") => false,
            Some("client_secret_post") => true,
            Some(other) => {
                v.err(
                    &format!("{at}.client_auth"),
                    format!("`{other}`: use client_secret_basic or client_secret_post"),
                );
                false
            }
        };
        let Some(client_secret) = v.secret(&format!("{at}.client_secret"), &p.client_secret) else {
            continue;
        };
        introspection.push(IntrospectionConfig {
            name: p.name.clone(),
            endpoint: p.endpoint.clone(),
            client_id: p.client_id.clone(),
            client_secret,
            client_secret_post,
            timeout: v.duration(&format!("{at}.timeout"), &p.timeout, Duration::from_secs(2)),
            cache_max: v.duration(
                &format!("{at}.cache_max"),
                &p.cache_max,
                Duration::from_secs(60),
            ),
            ca: p.ca.as_ref().map(|c| v.path(c)),
            audience: p.audience.clone(),
            issuer: p.issuer.clone(),
        });
    }
    let upstream_token = raw.upstream_token.as_ref().map(|t| {
        let eddsa = match t.algorithm.as_deref() {
            None | Some("ES256") => false,
            Some("EdDSA") => true,
            Some(other) => {
                v.err(
                    "identity.upstream_token.algorithm",
                    format!("`{other}`: use ES256 or EdDSA"),
                );
                false
            }
        };
        let key = t.key.as_ref().map(|k| v.path(k));
        if let Some(k) = &key
            && !k.is_file()
        {
            v.err(
                "identity.upstream_token.key",
                format!("key file `{}` does not exist", k.display()),
            );
        }
        let header = t
            .header
            .clone()
            .unwrap_or_else(|| "x-portcullis-token".into())
            .to_ascii_lowercase();
        if HeaderName::from_bytes(header.as_bytes()).is_err() {
            v.err("identity.upstream_token.header", "not a header name");
        }
        if let Some(p) = &t.public_jwks_path
            && !p.starts_with('/')
        {
            v.err(
                "identity.upstream_token.public_jwks_path",
                "must start with `/`",
            );
        }
        UpstreamTokenConfig {
            eddsa,
            key,
            issuer: t.issuer.clone().unwrap_or_else(|| "portcullis".into()),
            audience: t.audience.clone(),
            ttl: v.duration(
                "identity.upstream_token.ttl",
                &t.ttl,
                Duration::from_secs(60),
            ),
            header,
            public_jwks_path: t.public_jwks_path.clone(),
        }
    });
    let mut strip_request_headers = Vec::new();
    for (i, h) in raw.strip_request_headers.iter().enumerate() {
        match HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) {
            Ok(n) => strip_request_headers.push(n),
            Err(_) => v.err(
                &format!("identity.strip_request_headers[{i}]"),
                format!("`{h}` is not a header name"),
            ),
        }
    }
    IdentityConfig {
        api_keys,
        basic,
        jwt,
        introspection,
        upstream_token,
        strip_request_headers,
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || (rest.starts_with('[') && rest.get(1..4) == Some("::1"))
}

fn validate_rate_limit(v: &mut Validator, raw: &RawRateLimit) -> RateLimitConfig {
    let redis = match raw.store.as_deref() {
        None | Some("memory") => {
            if raw.redis.is_some() {
                v.err(
                    "rate_limit.redis",
                    "set `store: redis` to use it, or remove it",
                );
            }
            None
        }
        Some("redis") => match &raw.redis {
            None => {
                v.err(
                    "rate_limit.redis",
                    "`store: redis` needs `redis: { url: ... }`",
                );
                None
            }
            Some(r) => {
                let fail_closed = match r.mode.as_deref() {
                    None | Some("fail_open") => false,
                    Some("fail_closed") => true,
                    Some(other) => {
                        v.err(
                            "rate_limit.redis.mode",
                            format!("`{other}`: use fail_open or fail_closed"),
                        );
                        false
                    }
                };
                let url = v.secret("rate_limit.redis.url", &r.url);
                if let Some(u) = &url
                    && !u.expose().starts_with("redis://")
                {
                    v.err("rate_limit.redis.url", "use a redis://host:port URL");
                }
                url.map(|url| RedisStoreConfig {
                    url,
                    budget: v.duration(
                        "rate_limit.redis.budget",
                        &r.budget,
                        Duration::from_millis(5),
                    ),
                    fail_closed,
                    instances: r.instances.unwrap_or(1).max(1),
                    failure_threshold: r.failure_threshold.unwrap_or(3).max(1),
                    cooldown: v.duration(
                        "rate_limit.redis.cooldown",
                        &r.cooldown,
                        Duration::from_secs(1),
                    ),
                })
            }
        },
        Some(other) => {
            v.err(
                "rate_limit.store",
                format!("`{other}`: use memory or redis"),
            );
            None
        }
    };
    let mut limits = BTreeMap::new();
    for (name, l) in &raw.limits {
        let at = format!("rate_limit.limits.{name}");
        let per = v.duration(
            &format!("{at}.per"),
            &Some(l.per.clone()),
            Duration::from_secs(1),
        );
        let burst = l.burst.unwrap_or(l.rate);
        if let Err(e) =
            portcullis_policy::ratelimit::LimitSpec::new(name.clone(), l.rate, per, burst.max(1))
        {
            v.err(&at, e.to_string());
        }
        let mut key = Vec::new();
        for part in l.key.split('+') {
            match part.trim() {
                "ip" => key.push(LimitKey::Ip),
                "principal" => key.push(LimitKey::Principal),
                "api_key" => key.push(LimitKey::ApiKey),
                "route" => key.push(LimitKey::Route),
                other => v.err(
                    &format!("{at}.key"),
                    format!("`{other}`: use ip, principal, api_key, route, or a `+` combination"),
                ),
            }
        }
        limits.insert(
            name.clone(),
            LimitConfig {
                name: name.clone(),
                rate: l.rate,
                per,
                burst,
                key,
            },
        );
    }
    for (tier, names) in &raw.tiers {
        for (i, n) in names.iter().enumerate() {
            if !limits.contains_key(n) {
                v.err(
                    &format!("rate_limit.tiers.{tier}[{i}]"),
                    format!("unknown limit `{n}`"),
                );
            }
        }
    }
    RateLimitConfig {
        redis,
        limits,
        max_keys_per_limit: raw.max_keys_per_limit.unwrap_or(100_000).max(1),
        tiers: raw.tiers.clone(),
    }
}

fn route_limits(v: &mut Validator, at: &str, r: &RawRoute, rl: &RateLimitConfig) -> RouteLimits {
    let Some(raw) = &r.rate_limits else {
        return RouteLimits::default();
    };
    for (i, name) in raw.before_auth.iter().enumerate() {
        match rl.limits.get(name) {
            None => v.err(&format!("{at}.rate_limits.before_auth[{i}]"), format!("unknown limit `{name}`")),
            Some(l) if l.key.iter().any(|k| matches!(k, LimitKey::Principal | LimitKey::ApiKey)) => v.err(
                &format!("{at}.rate_limits.before_auth[{i}]"),
                format!("`{name}` counts by principal or API key, which are only known after authentication: use after_auth"),
            ),
            Some(_) => {}
        }
    }
    for (i, name) in raw.after_auth.iter().enumerate() {
        if !rl.limits.contains_key(name) {
            v.err(
                &format!("{at}.rate_limits.after_auth[{i}]"),
                format!("unknown limit `{name}`"),
            );
        }
    }
    RouteLimits {
        before_auth: raw.before_auth.clone(),
        after_auth: raw.after_auth.clone(),
        headers: raw.headers,
    }
}

fn validate_access(v: &mut Validator, raw: &RawAccess) -> AccessConfig {
    let mut nets = |list: &[String], field: &str| {
        let mut out = Vec::new();
        for (i, t) in list.iter().enumerate() {
            match parse_cidr(t) {
                Some(n) => out.push(n),
                None => v.err(
                    &format!("access.{field}[{i}]"),
                    format!("`{t}` is not an IP address or CIDR"),
                ),
            }
        }
        out
    };
    let allow = nets(&raw.allow, "allow");
    let deny = nets(&raw.deny, "deny");
    let close_blocked_ips = match raw.ip_block_action.as_deref() {
        None | Some("problem") => false,
        Some("close") => true,
        Some(other) => {
            v.err(
                "access.ip_block_action",
                format!("`{other}`: use problem or close"),
            );
            false
        }
    };
    let brute_force = raw.brute_force.as_ref().map(|b| {
        if b.threshold == 0 {
            v.err("access.brute_force.threshold", "must be greater than zero");
        }
        let window = v.duration(
            "access.brute_force.window",
            &Some(b.window.clone()),
            Duration::from_secs(300),
        );
        let blocks = match &b.blocks {
            None => vec![
                Duration::from_secs(60),
                Duration::from_secs(300),
                Duration::from_secs(1800),
            ],
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    v.duration(
                        &format!("access.brute_force.blocks[{i}]"),
                        &Some(d.clone()),
                        Duration::from_secs(60),
                    )
                })
                .collect(),
        };
        if blocks.is_empty() {
            v.err(
                "access.brute_force.blocks",
                "list at least one block duration",
            );
        }
        BruteForceConfig {
            threshold: b.threshold,
            window,
            blocks,
        }
    });
    AccessConfig {
        allow,
        deny,
        close_blocked_ips,
        brute_force,
    }
}
