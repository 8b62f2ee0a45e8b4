//! OAuth 2.0 token introspection (RFC 7662) for opaque bearer tokens.
//!
//! An [`Introspector`] asks an authorization server whether a bearer token is active by
//! POSTing `token=...&token_type_hint=access_token` (form-encoded) to its introspection
//! endpoint, authenticating itself with `client_secret_basic` (default) or
//! `client_secret_post` (RFC 6749 §2.3.1). An active answer becomes an [`Identity`]; anything
//! else is refused.
//!
//! # Failure handling
//!
//! * `active` must be the JSON boolean `true`; anything else is `inactive_token`.
//! * `exp` in the past is `expired`, `nbf` in the future is `not_yet_valid` (defence in depth:
//!   the server should already have answered `active: false`); a configured audience or issuer
//!   that does not match is `wrong_audience` / `wrong_issuer`; an active refresh token
//!   (`token_type: refresh_token`) is `wrong_token_type`; an answer naming no principal is
//!   `no_principal`.
//! * An endpoint that cannot be reached, times out, answers anything but `200`, answers more
//!   than 64 KiB, or answers something that is not an RFC 7662 JSON object is
//!   [`AuthError::Unavailable`] (`introspection_unavailable`): the gateway fails closed with a
//!   503 rather than letting an unchecked token through. A `401`/`403` from the endpoint means
//!   our own client credentials are wrong, a configuration problem, and is logged at `error`.
//!   Redirects are never followed.
//!
//! # Caching
//!
//! Answers are cached in memory, keyed by the SHA-256 of the token (the raw token is never
//! stored nor logged):
//!
//! * an active token for at most `min(cache_max, exp - now)`, so a cached token never outlives
//!   its `exp`; revocation at the server is therefore noticed within `cache_max`;
//! * a refused token (inactive, expired, wrong audience, ...) only for `inactive_cache`
//!   (default 5 s). This absorbs a flood of requests carrying the same bad token without
//!   asking the server each time, while a token that becomes valid (or a server-side fix) is
//!   noticed quickly;
//! * an unavailable endpoint is never cached: the next request asks again. While the endpoint
//!   is down, tokens whose cached entry is still fresh keep working until that entry expires,
//!   and no longer.
//!
//! The cache holds at most `cache_entries` entries; when full, expired entries are dropped
//! first, then the entries closest to expiry (which are usually short-lived refusals, so a
//! flood of random tokens cannot push out the active tokens of real callers for long).
//! Concurrent requests with the same uncached token share one introspection call.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::{AuthError, AuthMethod, Identity};

/// Largest introspection response body read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest token sent to the endpoint; longer ones are refused as `malformed_token` without
/// asking.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

const UNAVAILABLE: AuthError = AuthError::Unavailable {
    reason: "introspection_unavailable",
};

/// How the gateway authenticates itself to the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded client id and secret.
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// One introspection endpoint and the gateway's client credentials for it.
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// Name used in logs.
    pub name: String,
    /// The introspection endpoint; `https://` unless the host is loopback.
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub auth: ClientAuth,
    /// Whole-call timeout (connect, request, response body). Default 2 s.
    pub timeout: Duration,
    /// Longest an active answer is cached (never past the token's `exp`). Default 60 s;
    /// zero disables caching of active answers.
    pub cache_max: Duration,
    /// How long a refused token is cached. Default 5 s; zero disables it.
    pub inactive_cache: Duration,
    /// Most cached answers. Default 10 000; zero disables the cache.
    pub cache_entries: usize,
    /// Trust only the CA certificates in this PEM file instead of the system roots.
    pub ca_pem: Option<PathBuf>,
    /// If set, `aud` (string or array) must contain it.
    pub expected_audience: Option<String>,
    /// If set, `iss` must equal it.
    pub expected_issuer: Option<String>,
}

impl IntrospectionConfig {
    /// A config with the default auth method, timeout, cache bounds, system roots and no
    /// audience or issuer check.
    pub fn new(
        name: impl Into<String>,
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        IntrospectionConfig {
            name: name.into(),
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth: ClientAuth::Basic,
            timeout: Duration::from_secs(2),
            cache_max: Duration::from_secs(60),
            inactive_cache: Duration::from_secs(5),
            cache_entries: 10_000,
            ca_pem: None,
            expected_audience: None,
            expected_issuer: None,
        }
    }
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("cache_max", &self.cache_max)
            .field("inactive_cache", &self.inactive_cache)
            .field("cache_entries", &self.cache_entries)
            .field("ca_pem", &self.ca_pem)
            .field("expected_audience", &self.expected_audience)
            .field("expected_issuer", &self.expected_issuer)
            .finish()
    }
}

/// Why an [`Introspector`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    #[error("introspection `{name}`: invalid endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        name: String,
        endpoint: String,
        reason: String,
    },
    #[error(
        "introspection `{name}`: endpoint `{endpoint}` uses plain http to a non-loopback host; \
         use https"
    )]
    InsecureEndpoint { name: String, endpoint: String },
    #[error("introspection `{name}`: {reason}")]
    InvalidConfig { name: String, reason: &'static str },
    #[error("introspection `{name}`: CA file {path}: {reason}")]
    Ca {
        name: String,
        path: String,
        reason: String,
    },
    #[error("introspection `{name}`: TLS setup: {source}")]
    Tls {
        name: String,
        #[source]
        source: rustls::Error,
    },
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type Key = [u8; 32];
type Outcome = Result<Identity, AuthError>;

/// Checks opaque bearer tokens against an RFC 7662 introspection endpoint, with a cache.
pub struct Introspector {
    name: String,
    uri: Uri,
    auth: ClientAuth,
    /// `Authorization` for `client_secret_basic` (marked sensitive).
    basic: Option<HeaderValue>,
    /// `&client_id=...&client_secret=...` for `client_secret_post`, already form-encoded.
    post_credentials: String,
    timeout: Duration,
    cache_max: Duration,
    inactive_cache: Duration,
    expected_audience: Option<String>,
    expected_issuer: Option<String>,
    client: HttpClient,
    cache: Mutex<Cache>,
    inflight: Mutex<HashMap<Key, Arc<OnceCell<Outcome>>>>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("name", &self.name)
            .field("endpoint", &self.uri)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// Validates the config (endpoint scheme and host, credentials, timeout), loads the trust
    /// roots and builds the HTTP client. No request is made.
    pub fn new(cfg: IntrospectionConfig) -> Result<Self, IntrospectionError> {
        let name = cfg.name.clone();
        let invalid = |reason: &'static str| IntrospectionError::InvalidConfig {
            name: name.clone(),
            reason,
        };
        if cfg.client_id.is_empty() {
            return Err(invalid("client_id is empty"));
        }
        if cfg.client_secret.is_empty() {
            return Err(invalid("client_secret is empty"));
        }
        if cfg.timeout.is_zero() {
            return Err(invalid("timeout must be positive"));
        }
        let (uri, https) = parse_endpoint(&cfg.name, &cfg.endpoint)?;

        let tls = client_tls_config(&cfg.name, https, cfg.ca_pem.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.timeout));
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if https {
            builder.https_only().enable_http1().wrap_connector(http)
        } else {
            builder.https_or_http().enable_http1().wrap_connector(http)
        };
        // The legacy client never follows redirects: a 3xx is just "not 200".
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build(connector);

        let mut basic = None;
        let mut post_credentials = String::new();
        match cfg.auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
                let mut pair = String::new();
                form_encode(&mut pair, &cfg.client_id);
                pair.push(':');
                form_encode(&mut pair, &cfg.client_secret);
                let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
                let mut value = HeaderValue::try_from(format!("Basic {b64}"))
                    .map_err(|_| invalid("client credentials cannot form a header"))?;
                value.set_sensitive(true);
                basic = Some(value);
            }
            ClientAuth::Post => {
                post_credentials.push_str("&client_id=");
                form_encode(&mut post_credentials, &cfg.client_id);
                post_credentials.push_str("&client_secret=");
                form_encode(&mut post_credentials, &cfg.client_secret);
            }
        }

        Ok(Introspector {
            name: cfg.name,
            uri,
            auth: cfg.auth,
            basic,
            post_credentials,
            timeout: cfg.timeout,
            cache_max: cfg.cache_max,
            inactive_cache: cfg.inactive_cache,
            expected_audience: cfg.expected_audience,
            expected_issuer: cfg.expected_issuer,
            client,
            cache: Mutex::new(Cache::new(cfg.cache_entries)),
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of cached answers (expired ones included until they are purged).
    pub fn cached_entries(&self) -> usize {
        lock(&self.cache).len()
    }

    /// Checks a bearer token: from the cache if a fresh answer is there, otherwise by asking
    /// the endpoint. An empty token is [`AuthError::Missing`].
    pub async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid {
                reason: "malformed_token",
            });
        }
        let key = token_key(token);
        if let Some(hit) = lock(&self.cache).get(&key, Instant::now()) {
            tracing::trace!(introspection = %self.name, "introspection cache hit");
            return hit;
        }

        // One call per token at a time: later callers wait for the first one's answer.
        let cell = lock(&self.inflight).entry(key).or_default().clone();
        let flight = Flight {
            map: &self.inflight,
            key,
            cell,
        };
        flight
            .cell
            .get_or_init(|| async {
                // A flight that finished while we were queuing may have filled the cache.
                if let Some(hit) = lock(&self.cache).get(&key, Instant::now()) {
                    return hit;
                }
                let outcome = match tokio::time::timeout(self.timeout, self.fetch(token)).await {
                    Ok(Ok(answer)) => self.evaluate(answer, SystemTime::now()),
                    Ok(Err(())) => Evaluated::uncached(UNAVAILABLE),
                    Err(_) => {
                        tracing::warn!(
                            introspection = %self.name,
                            timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                            "introspection endpoint timed out"
                        );
                        Evaluated::uncached(UNAVAILABLE)
                    }
                };
                if !outcome.ttl.is_zero() {
                    let now = Instant::now();
                    lock(&self.cache).insert(key, outcome.outcome.clone(), now + outcome.ttl, now);
                }
                if let Err(e) = &outcome.outcome {
                    tracing::debug!(introspection = %self.name, reason = e.reason(), "token refused");
                }
                outcome.outcome
            })
            .await
            .clone()
    }

    /// One POST to the endpoint: the JSON object it answered, or `Err(())` (already logged).
    async fn fetch(&self, token: &str) -> Result<Map<String, Value>, ()> {
        let mut form = String::with_capacity(token.len() + 64 + self.post_credentials.len());
        form.push_str("token=");
        form_encode(&mut form, token);
        form.push_str("&token_type_hint=access_token");
        form.push_str(&self.post_credentials);

        let mut builder = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        if let Some(basic) = &self.basic {
            builder = builder.header(AUTHORIZATION, basic.clone());
        }
        let request = builder
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| {
                tracing::error!(introspection = %self.name, error = %e, "cannot build introspection request");
            })?;

        let response = self.client.request(request).await.map_err(|e| {
            tracing::warn!(
                introspection = %self.name,
                error = %e,
                cause = ?std::error::Error::source(&e),
                "introspection endpoint unreachable"
            );
        })?;
        let status = response.status();
        if status != StatusCode::OK {
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                tracing::error!(
                    introspection = %self.name,
                    status = status.as_u16(),
                    "introspection endpoint refused the gateway's client credentials; check client_id, client_secret and the client authentication method"
                );
            } else {
                tracing::warn!(
                    introspection = %self.name,
                    status = status.as_u16(),
                    "introspection endpoint answered an error"
                );
            }
            return Err(());
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                tracing::warn!(
                    introspection = %self.name,
                    error = %e,
                    limit = MAX_RESPONSE_BYTES,
                    "introspection response body unreadable or too large"
                );
            })?
            .to_bytes();
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => {
                tracing::warn!(introspection = %self.name, "introspection response is not a JSON object");
                Err(())
            }
            Err(e) => {
                tracing::warn!(introspection = %self.name, error = %e, "introspection response is not JSON");
                Err(())
            }
        }
    }

    /// Turns the endpoint's answer into an identity or a refusal, with how long to cache it.
    fn evaluate(&self, claims: Map<String, Value>, now: SystemTime) -> Evaluated {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let refuse = |reason: &'static str| Evaluated {
            outcome: Err(AuthError::Invalid { reason }),
            ttl: self.inactive_cache,
        };
        let malformed = |field: &'static str| {
            tracing::error!(
                introspection = %self.name,
                field,
                "introspection response has a malformed field"
            );
            Evaluated::uncached(UNAVAILABLE)
        };

        if claims.get("active") != Some(&Value::Bool(true)) {
            return refuse("inactive_token");
        }
        let mut ttl = self.cache_max;
        match claims.get("exp").map(Value::as_f64) {
            None => {}
            Some(None) => return malformed("exp"),
            Some(Some(exp)) if exp <= now => return refuse("expired"),
            Some(Some(exp)) => {
                ttl = ttl.min(Duration::try_from_secs_f64(exp - now).unwrap_or(Duration::ZERO));
            }
        }
        match claims.get("nbf").map(Value::as_f64) {
            None => {}
            Some(None) => return malformed("nbf"),
            Some(Some(nbf)) if nbf > now => {
                let until = Duration::try_from_secs_f64(nbf - now).unwrap_or(Duration::ZERO);
                let mut refused = refuse("not_yet_valid");
                refused.ttl = refused.ttl.min(until);
                return refused;
            }
            Some(Some(_)) => {}
        }
        if claims
            .get("token_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
        {
            return refuse("wrong_token_type");
        }
        if let Some(expected) = &self.expected_issuer
            && claims.get("iss").and_then(Value::as_str) != Some(expected.as_str())
        {
            return refuse("wrong_issuer");
        }
        if let Some(expected) = &self.expected_audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
                _ => false,
            };
            if !ok {
                return refuse("wrong_audience");
            }
        }
        let scopes = match claims.get("scope") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
            Some(_) => return malformed("scope"),
        };
        let Some(principal) = ["sub", "username", "client_id"]
            .iter()
            .find_map(|k| {
                claims
                    .get(*k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .map(str::to_owned)
        else {
            return refuse("no_principal");
        };
        let credential_id = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        Evaluated {
            outcome: Ok(Identity {
                method: AuthMethod::Introspection,
                principal,
                credential_id,
                scopes,
                claims: claims.into_iter().collect(),
                tier: None,
            }),
            ttl,
        }
    }
}

struct Evaluated {
    outcome: Outcome,
    /// How long to cache it; zero for "do not cache".
    ttl: Duration,
}

impl Evaluated {
    fn uncached(e: AuthError) -> Self {
        Evaluated {
            outcome: Err(e),
            ttl: Duration::ZERO,
        }
    }
}

/// Removes a token's in-flight entry once its answer is known or nobody waits for it any more
/// (the waiting requests were all cancelled).
struct Flight<'a> {
    map: &'a Mutex<HashMap<Key, Arc<OnceCell<Outcome>>>>,
    key: Key,
    cell: Arc<OnceCell<Outcome>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut map = lock(self.map);
        if let Some(current) = map.get(&self.key)
            && Arc::ptr_eq(current, &self.cell)
            // Clones are only made under this lock: 2 means the map's and ours.
            && (self.cell.initialized() || Arc::strong_count(&self.cell) <= 2)
        {
            map.remove(&self.key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn token_key(token: &str) -> Key {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Bounded answer cache, evicting the entries that expire soonest.
struct Cache {
    max_entries: usize,
    map: HashMap<Key, CacheEntry>,
    by_expiry: BTreeMap<(Instant, u64), Key>,
    seq: u64,
}

struct CacheEntry {
    outcome: Outcome,
    expires: Instant,
    seq: u64,
}

impl Cache {
    fn new(max_entries: usize) -> Self {
        Cache {
            max_entries,
            map: HashMap::new(),
            by_expiry: BTreeMap::new(),
            seq: 0,
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn get(&mut self, key: &Key, now: Instant) -> Option<Outcome> {
        let entry = self.map.get(key)?;
        if entry.expires > now {
            return Some(entry.outcome.clone());
        }
        self.remove(key);
        None
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.map.remove(key) {
            self.by_expiry.remove(&(old.expires, old.seq));
        }
    }

    fn insert(&mut self, key: Key, outcome: Outcome, expires: Instant, now: Instant) {
        if self.max_entries == 0 || expires <= now {
            return;
        }
        self.remove(&key);
        while let Some(entry) = self.by_expiry.first_entry() {
            let expired = entry.key().0 <= now;
            if !expired && self.map.len() < self.max_entries {
                break;
            }
            let victim = entry.remove();
            self.map.remove(&victim);
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.by_expiry.insert((expires, seq), key);
        self.map.insert(
            key,
            CacheEntry {
                outcome,
                expires,
                seq,
            },
        );
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value (WHATWG URL standard).
fn form_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

/// Parses the endpoint; `true` for https. Plain http is allowed only to loopback hosts.
fn parse_endpoint(name: &str, endpoint: &str) -> Result<(Uri, bool), IntrospectionError> {
    let bad = |reason: &str| IntrospectionError::InvalidEndpoint {
        name: name.to_string(),
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = endpoint
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad("the scheme must be https (or http to a loopback host)")),
    };
    let Some(authority) = uri.authority() else {
        return Err(bad("no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad(
            "credentials in the URL are not allowed; use client_id/client_secret",
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !https && !is_loopback_host(host) {
        return Err(IntrospectionError::InsecureEndpoint {
            name: name.to_string(),
            endpoint: endpoint.to_string(),
        });
    }
    Ok((uri, https))
}

/// `localhost`, `127.0.0.0/8`, `::1` (and IPv4-mapped loopback); `host` as in a URI (IPv6 in
/// brackets).
fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

fn client_tls_config(
    name: &str,
    https: bool,
    ca_pem: Option<&Path>,
) -> Result<rustls::ClientConfig, IntrospectionError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(path) => {
            let ca_err = |reason: String| IntrospectionError::Ca {
                name: name.to_string(),
                path: path.display().to_string(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no certificate found".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        // Plain http to loopback needs no roots; do not read the system store for nothing.
        None if !https => {}
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(introspection = %name, error = %e, "cannot load a system CA certificate");
            }
            for cert in found.certs {
                // A broken system certificate is just not trusted.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                tracing::warn!(
                    introspection = %name,
                    "no system CA certificates found; the https endpoint cannot be verified (set ca_pem)"
                );
            }
        }
    }
    let tls_err = |source| IntrospectionError::Tls {
        name: name.to_string(),
        source,
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(tls_err)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn introspector(f: impl FnOnce(&mut IntrospectionConfig)) -> Introspector {
        let mut cfg = IntrospectionConfig::new("t", "http://127.0.0.1:1/i", "gw", "secret");
        f(&mut cfg);
        Introspector::new(cfg).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn reason(e: &Evaluated) -> &'static str {
        e.outcome.as_ref().err().map_or("ok", AuthError::reason)
    }

    #[test]
    fn form_encoding() {
        let mut s = String::new();
        form_encode(&mut s, "a&b=c+d e/é~*-._Z9");
        assert_eq!(s, "a%26b%3Dc%2Bd+e%2F%C3%A9%7E*-._Z9");
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "localhost.evil",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn endpoints() {
        assert!(
            parse_endpoint("t", "https://as.example/introspect")
                .unwrap()
                .1
        );
        assert!(!parse_endpoint("t", "http://localhost:8080/i").unwrap().1);
        assert!(matches!(
            parse_endpoint("t", "http://as.example/i"),
            Err(IntrospectionError::InsecureEndpoint { .. })
        ));
        for bad in [
            "ftp://as.example/i",
            "/introspect",
            "https://u:p@as.example/i",
            "not a uri",
        ] {
            assert!(
                matches!(
                    parse_endpoint("t", bad),
                    Err(IntrospectionError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn active_only_when_boolean_true() {
        let i = introspector(|_| {});
        for active in [json!("true"), json!(1), json!(false), Value::Null] {
            let e = i.evaluate(obj(json!({"active": active, "sub": "a"})), at(100));
            assert_eq!(reason(&e), "inactive_token");
            assert_eq!(e.ttl, Duration::from_secs(5));
        }
        let e = i.evaluate(obj(json!({"sub": "a"})), at(100));
        assert_eq!(reason(&e), "inactive_token");
    }

    #[test]
    fn time_claims_bound_validity_and_cache() {
        let i = introspector(|_| {});
        let e = i.evaluate(
            obj(json!({"active": true, "sub": "a", "exp": 100})),
            at(100),
        );
        assert_eq!(reason(&e), "expired");
        let e = i.evaluate(
            obj(json!({"active": true, "sub": "a", "exp": 110})),
            at(100),
        );
        assert_eq!(reason(&e), "ok");
        assert_eq!(e.ttl, Duration::from_secs(10));
        let e = i.evaluate(
            obj(json!({"active": true, "sub": "a", "exp": 1000})),
            at(100),
        );
        assert_eq!(e.ttl, Duration::from_secs(60));
        let e = i.evaluate(
            obj(json!({"active": true, "sub": "a", "nbf": 102})),
            at(100),
        );
        assert_eq!(reason(&e), "not_yet_valid");
        assert_eq!(e.ttl, Duration::from_secs(2));
        let e = i.evaluate(
            obj(json!({"active": true, "sub": "a", "exp": "soon"})),
            at(100),
        );
        assert_eq!(reason(&e), "introspection_unavailable");
        assert!(e.ttl.is_zero());
    }

    #[test]
    fn audience_and_issuer() {
        let i = introspector(|c| {
            c.expected_audience = Some("api".into());
            c.expected_issuer = Some("https://as".into());
        });
        let ok = |extra: Value| {
            let mut m = obj(json!({"active": true, "sub": "a", "iss": "https://as"}));
            m.extend(obj(extra));
            reason(&i.evaluate(m, at(100)))
        };
        assert_eq!(ok(json!({"aud": "api"})), "ok");
        assert_eq!(ok(json!({"aud": ["x", "api"]})), "ok");
        assert_eq!(ok(json!({"aud": ["x"]})), "wrong_audience");
        assert_eq!(ok(json!({"aud": "apix"})), "wrong_audience");
        assert_eq!(ok(json!({})), "wrong_audience");
        assert_eq!(
            ok(json!({"aud": "api", "iss": "https://other"})),
            "wrong_issuer"
        );
    }

    #[test]
    fn principal_scopes_and_claims() {
        let i = introspector(|_| {});
        let e = i.evaluate(
            obj(json!({"active": true, "username": "u", "client_id": "c", "scope": " read  write ", "jti": "j1"})),
            at(100),
        );
        let id = e.outcome.unwrap();
        assert_eq!(id.principal, "u");
        assert_eq!(id.scopes, ["read", "write"]);
        assert_eq!(id.credential_id.as_deref(), Some("j1"));
        assert_eq!(id.claims.get("client_id"), Some(&json!("c")));
        assert_eq!(id.method, AuthMethod::Introspection);
        let id = i
            .evaluate(obj(json!({"active": true, "client_id": "c"})), at(100))
            .outcome
            .unwrap();
        assert_eq!(id.principal, "c");
        assert!(id.scopes.is_empty());
        let e = i.evaluate(obj(json!({"active": true, "sub": ""})), at(100));
        assert_eq!(reason(&e), "no_principal");
        let e = i.evaluate(
            obj(json!({"active": true, "sub": "a", "token_type": "refresh_token"})),
            at(100),
        );
        assert_eq!(reason(&e), "wrong_token_type");
    }

    #[test]
    fn cache_is_bounded_and_evicts_soonest_expiry() {
        let mut c = Cache::new(3);
        let now = Instant::now();
        let s = Duration::from_secs;
        let bad: Outcome = Err(AuthError::Invalid { reason: "x" });
        c.insert([1; 32], bad.clone(), now + s(60), now);
        c.insert([2; 32], bad.clone(), now + s(5), now);
        c.insert([3; 32], bad.clone(), now + s(30), now);
        c.insert([4; 32], bad.clone(), now + s(40), now);
        assert_eq!(c.len(), 3);
        assert!(c.get(&[2; 32], now).is_none());
        assert!(c.get(&[1; 32], now).is_some());
        // Expired entries go first, and are not returned.
        let later = now + s(35);
        assert!(c.get(&[3; 32], later).is_none());
        c.insert([5; 32], bad.clone(), later + s(1), later);
        c.insert([6; 32], bad.clone(), later + s(2), later);
        assert_eq!(c.len(), 3);
        assert!(c.get(&[5; 32], later).is_none());
        assert!(c.get(&[1; 32], later).is_some());
        assert!(c.get(&[4; 32], later).is_some());
        // Re-inserting a key replaces it.
        c.insert([1; 32], bad, later + s(100), later);
        assert_eq!(c.len(), 3);
        assert_eq!(c.by_expiry.len(), 3);
        let mut off = Cache::new(0);
        off.insert([1; 32], Err(AuthError::Missing), now + s(1), now);
        assert_eq!(off.len(), 0);
    }
}
