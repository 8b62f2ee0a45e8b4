//! The authenticate and authorize stages, and what the upstream is told about the caller.
//!
//! Authentication turns the credential a route accepts into an [`Identity`]; the first method
//! in the route's list whose credential is present decides (a present-but-wrong credential is
//! never retried with another method). Failures answer 401 with RFC 6750 challenges and a
//! problem document that says no more than the RFC's codes; the event carries the precise
//! reason. Authorization evaluates the route's compiled rules (`portcullis-policy`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::StatusCode;
use http::header::{
    AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::request::Parts;
use portcullis_identity::apikey::{ApiKeyEntry, ApiKeyHeaders, ApiKeyStore};
use portcullis_identity::basic::HtpasswdStore;
use portcullis_identity::introspection::{
    ClientAuth, IntrospectionConfig as LibIntrospection, Introspector,
};
use portcullis_identity::jwt::{JwtProviderConfig, JwtVerifier, KeySource, StaticKey};
use portcullis_identity::{AuthError, AuthMethod, Identity};
use portcullis_policy::{AuthzPolicy, AuthzRequest, Decision, PathTemplate};

use crate::config::{
    AuthMethodRef, IdentityConfig, IntrospectionConfig, JwtConfig, RouteAuth, RouteConfig,
};
use crate::context::ConnInfo;
use crate::problem::Rejection;
use crate::upstream_token::{SigningAlgorithm, UpstreamSigner};

/// Live verifiers built from the identity config (once per snapshot; JWT and introspection
/// verifiers whose config did not change are carried over so their key sets and caches stay warm).
pub struct IdentityRuntime {
    config: IdentityConfig,
    api_keys: Option<(Arc<ApiKeyStore>, ApiKeyHeaders)>,
    basic: Option<(Arc<HtpasswdStore>, String)>,
    jwt: HashMap<String, (JwtConfig, Arc<JwtVerifier>)>,
    introspection: HashMap<String, (IntrospectionConfig, Arc<Introspector>)>,
    pub signer: Option<(Arc<UpstreamSigner>, HeaderName)>,
    strip: Vec<HeaderName>,
}

impl std::fmt::Debug for IdentityRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRuntime").finish_non_exhaustive()
    }
}

impl IdentityRuntime {
    pub fn build(cfg: &IdentityConfig, previous: Option<&IdentityRuntime>) -> Result<Self, String> {
        let api_keys = match &cfg.api_keys {
            None => None,
            Some(k) => {
                let mut entries: Vec<ApiKeyEntry> = k
                    .keys
                    .iter()
                    .map(|e| ApiKeyEntry {
                        id: e.id.clone(),
                        hash: e.hash.clone(),
                        principal: e.principal.clone(),
                        scopes: e.scopes.clone(),
                        tier: e.tier.clone(),
                        expires: e.expires,
                    })
                    .collect();
                if let Some(file) = &k.file {
                    entries.extend(
                        portcullis_identity::apikey::load_keys_file(file)
                            .map_err(|e| e.to_string())?,
                    );
                }
                let store =
                    ApiKeyStore::new(entries).map_err(|e| format!("identity.api_keys: {e}"))?;
                let names: Vec<&str> = k.headers.iter().map(String::as_str).collect();
                let headers = ApiKeyHeaders::new(Some("ApiKey"), &names)
                    .map_err(|e| format!("identity.api_keys.headers: {e}"))?;
                Some((Arc::new(store), headers))
            }
        };
        let basic = match &cfg.basic {
            None => None,
            Some(b) => {
                let store = HtpasswdStore::load(&b.htpasswd).map_err(|e| e.to_string())?;
                Some((Arc::new(store), b.realm.clone()))
            }
        };
        let mut jwt = HashMap::new();
        for p in &cfg.jwt {
            let reused = previous
                .and_then(|prev| prev.jwt.get(&p.name))
                .filter(|(old, _)| old == p)
                .map(|(_, v)| v.clone());
            let verifier = match reused {
                Some(v) => v,
                None => Arc::new(
                    JwtVerifier::new(jwt_config(p)?)
                        .map_err(|e| format!("identity.jwt `{}`: {e}", p.name))?,
                ),
            };
            jwt.insert(p.name.clone(), (p.clone(), verifier));
        }
        let mut introspection = HashMap::new();
        for p in &cfg.introspection {
            let reused = previous
                .and_then(|prev| prev.introspection.get(&p.name))
                .filter(|(old, _)| old == p)
                .map(|(_, v)| v.clone());
            let introspector = match reused {
                Some(v) => v,
                None => {
                    let mut lib = LibIntrospection::new(
                        p.name.clone(),
                        p.endpoint.clone(),
                        p.client_id.clone(),
                        p.client_secret.expose().to_string(),
                    );
                    lib.auth = if p.client_secret_post {
                        ClientAuth::Post
                    } else {
                        ClientAuth::Basic
                    };
                    lib.timeout = p.timeout;
                    lib.cache_max = p.cache_max;
                    lib.ca_pem = p.ca.clone();
                    lib.expected_audience = p.audience.clone();
                    lib.expected_issuer = p.issuer.clone();
                    Arc::new(Introspector::new(lib).map_err(|e| e.to_string())?)
                }
            };
            introspection.insert(p.name.clone(), (p.clone(), introspector));
        }
        let signer = match &cfg.upstream_token {
            None => None,
            Some(t) => {
                // A generated key must survive reloads, or every reload would invalidate the
                // tokens upstreams are holding and change the published JWKS.
                let reused = previous
                    .filter(|prev| prev.config.upstream_token.as_ref() == Some(t))
                    .and_then(|prev| prev.signer.clone());
                match reused {
                    Some(s) => Some(s),
                    None => {
                        let alg = if t.eddsa {
                            SigningAlgorithm::EdDSA
                        } else {
                            SigningAlgorithm::ES256
                        };
                        let signer = UpstreamSigner::new(
                            alg,
                            t.key.as_deref(),
                            t.issuer.clone(),
                            t.audience.clone(),
                            t.ttl,
                        )
                        .map_err(|e| e.to_string())?;
                        let header = HeaderName::from_bytes(t.header.as_bytes())
                            .map_err(|e| e.to_string())?;
                        Some((Arc::new(signer), header))
                    }
                }
            }
        };
        Ok(IdentityRuntime {
            config: cfg.clone(),
            api_keys,
            basic,
            jwt,
            introspection,
            signer,
            strip: cfg.strip_request_headers.clone(),
        })
    }

    /// The JWKS of the upstream token signer, if configured.
    pub fn upstream_jwks(&self) -> Option<&serde_json::Value> {
        self.signer.as_ref().map(|(s, _)| s.jwks())
    }

    /// Headers whose values are credentials: never shown to authorization rules.
    pub fn is_credential_header(&self, name: &str) -> bool {
        matches!(
            name,
            "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
        ) || self
            .api_keys
            .as_ref()
            .is_some_and(|(_, h)| h.headers().iter().any(|n| n.as_str() == name))
    }

    pub fn public_jwks_path(&self) -> Option<&str> {
        self.config
            .upstream_token
            .as_ref()?
            .public_jwks_path
            .as_deref()
    }
}

fn jwt_config(p: &JwtConfig) -> Result<JwtProviderConfig, String> {
    let mut algorithms = Vec::new();
    for a in &p.algorithms {
        algorithms.push(
            a.parse::<jsonwebtoken::Algorithm>()
                .map_err(|_| format!("identity.jwt `{}`: unknown algorithm `{a}`", p.name))?,
        );
    }
    let keys = if let Some(url) = &p.jwks_url {
        KeySource::JwksUrl {
            url: url.clone(),
            ca_pem: p.jwks_ca.clone(),
        }
    } else if let Some(secret) = &p.hmac_secret {
        KeySource::HmacSecret(secret.expose().as_bytes().to_vec())
    } else {
        let mut list = Vec::new();
        for path in &p.keys {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "identity.jwt `{}`: cannot read {}: {e}",
                    p.name,
                    path.display()
                )
            })?;
            list.push(StaticKey::pem(None, pem));
        }
        KeySource::Static(list)
    };
    let mut cfg = JwtProviderConfig::new(p.issuer.clone(), p.audiences.clone(), algorithms, keys);
    cfg.leeway = p.leeway;
    cfg.required_claims = p.required_claims.clone();
    cfg.max_token_bytes = p.max_token_bytes;
    Ok(cfg)
}

/// A route's compiled authorization: the policy and the path template naming parameters.
#[derive(Debug)]
pub struct RouteAuthz {
    pub policy: Option<AuthzPolicy>,
    pub template: Option<PathTemplate>,
}

impl RouteAuthz {
    pub fn compile(route: &RouteConfig) -> Result<Self, String> {
        let policy = route
            .authorize
            .as_ref()
            .map(AuthzPolicy::compile)
            .transpose()
            .map_err(|e| format!("routes `{}`: {e}", route.name))?;
        let template = route
            .path_template
            .as_deref()
            .map(PathTemplate::parse)
            .transpose()
            .map_err(|e| format!("routes `{}`: {e}", route.name))?;
        Ok(RouteAuthz { policy, template })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn basic_header(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, _) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then_some(v)
}

/// The user name of a Basic credential, for brute-force counting (never the password).
pub fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = basic_header(headers)?;
    portcullis_identity::basic::parse_basic_header(value)
        .ok()
        .map(|c| c.user)
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Which method produced a failure, for the challenge it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Basic,
    ApiKey,
    Mtls,
}

/// Authenticate a request for `route`. `Ok(None)` for public routes.
///
/// The identity is an `Arc`: a JWT cache hit shares the cached identity rather than copying
/// its claims, and every later stage (rate limits, authorization, headers, the event) only
/// reads it.
pub async fn authenticate(
    auth: &RouteAuth,
    rt: &IdentityRuntime,
    parts: &Parts,
    conn: &ConnInfo,
) -> (
    Option<portcullis_events::AuthMethod>,
    Result<Option<Arc<Identity>>, Rejection>,
) {
    use portcullis_events::AuthMethod as Checked;
    if auth.public {
        return (None, Ok(None));
    }
    let headers = &parts.headers;
    // Fix: only the first `Authorization` header was verified, yet every one was forwarded,
    // so `Bearer <valid>` followed by `Bearer <forged alg:none token>` reached the upstream
    // with an unverified credential that a last-value-wins framework would read. The header
    // is not a list (RFC 9110 §11.6.2); two of them are refused, as RFC 6750 §3.1 asks.
    if headers.get_all(AUTHORIZATION).iter().nth(1).is_some() {
        let mut rej = Rejection::bad_request(
            "invalid_request",
            "the request carries more than one Authorization header",
        );
        rej.event_reason = Some("multiple_authorization_headers");
        return (
            None,
            Err(rej.header(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"portcullis\", error=\"invalid_request\""),
            )),
        );
    }
    let token = bearer(headers);
    let mut used: Option<(Scheme, Result<Arc<Identity>, AuthError>)> = None;
    let mut checked = None;
    for (i, method) in auth.methods.iter().enumerate() {
        match method {
            AuthMethodRef::ApiKey => {
                if let Some((store, names)) = &rt.api_keys
                    && let Some(key) = portcullis_identity::apikey::extract(headers, names)
                {
                    let result = store.authenticate_async(key).await.map(Arc::new);
                    used = Some((Scheme::ApiKey, result));
                    checked = Some(Checked::ApiKey);
                }
            }
            AuthMethodRef::Basic => {
                if let (Some((store, _)), Some(value)) = (&rt.basic, basic_header(headers)) {
                    let result = if !conn.is_tls() && !auth.allow_basic_over_plain_http {
                        // Refused before the password is even checked: it has already crossed
                        // the network in the clear, and checking it would make this an oracle.
                        Err(AuthError::Invalid {
                            reason: "basic_requires_tls",
                        })
                    } else {
                        store.authenticate_async(value).await.map(Arc::new)
                    };
                    used = Some((Scheme::Basic, result));
                    checked = Some(Checked::Basic);
                }
            }
            AuthMethodRef::Jwt(name) => {
                if let (Some(token), Some((_, verifier))) = (token, rt.jwt.get(name)) {
                    // An opaque token is left to an introspection method later in the list.
                    // (The token scan only when there is such a method: it is ~400 bytes.)
                    let later_introspection = auth.methods[i + 1..]
                        .iter()
                        .any(|m| matches!(m, AuthMethodRef::Introspection(_)));
                    if !later_introspection || looks_like_jwt(token) {
                        used = Some((Scheme::Bearer, verifier.verify(token).await));
                        checked = Some(Checked::Jwt);
                    }
                }
            }
            AuthMethodRef::Introspection(name) => {
                if let (Some(token), Some((_, introspector))) = (token, rt.introspection.get(name))
                {
                    let result = introspector.authenticate(token).await.map(Arc::new);
                    used = Some((Scheme::Bearer, result));
                    checked = Some(Checked::Introspection);
                }
            }
            AuthMethodRef::Mtls => {
                if let Some(principal) = &conn.client_cert_principal {
                    used = Some((
                        Scheme::Mtls,
                        Ok(Arc::new(Identity {
                            method: AuthMethod::Mtls,
                            principal: principal.clone(),
                            credential_id: None,
                            scopes: Vec::new(),
                            claims: BTreeMap::new(),
                            tier: None,
                        })),
                    ));
                    checked = Some(Checked::Mtls);
                }
            }
        }
        if used.is_some() {
            break;
        }
    }
    let result = match used {
        Some((_, Ok(identity))) => Ok(Some(identity)),
        Some((scheme, Err(err))) => Err(auth_rejection(auth, rt, Some(scheme), &err)),
        None => Err(auth_rejection(auth, rt, None, &AuthError::Missing)),
    };
    (checked, result)
}

/// 401 (or 503 when a verifier is unavailable) with challenges for the route's methods.
fn auth_rejection(
    auth: &RouteAuth,
    rt: &IdentityRuntime,
    used: Option<Scheme>,
    err: &AuthError,
) -> Rejection {
    if let AuthError::Unavailable { reason } = err {
        // Fail closed, but say it is temporary: the credential was not judged.
        let mut rej = Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "Service Unavailable",
        )
        .detail("authentication is temporarily unavailable");
        rej.event_reason = Some(reason);
        return rej.header(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    let mut rej = Rejection::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").detail(
        match err {
            AuthError::Missing => "credentials are required",
            _ => "the credentials were not accepted",
        },
    );
    // The event gets the precise reason; the client only the RFC 6750 code.
    rej.event_reason = Some(err.reason());
    let realm = "portcullis";
    let mut seen = Vec::new();
    for m in &auth.methods {
        let scheme = match m {
            AuthMethodRef::Jwt(_) | AuthMethodRef::Introspection(_) => Scheme::Bearer,
            AuthMethodRef::Basic => Scheme::Basic,
            AuthMethodRef::ApiKey => Scheme::ApiKey,
            AuthMethodRef::Mtls => Scheme::Mtls,
        };
        if seen.contains(&scheme) {
            continue;
        }
        seen.push(scheme);
        let challenge = match scheme {
            Scheme::Bearer if used == Some(Scheme::Bearer) => {
                format!(
                    "Bearer realm=\"{realm}\", error=\"{}\"",
                    err.rfc6750_code().unwrap_or("invalid_token")
                )
            }
            Scheme::Bearer => format!("Bearer realm=\"{realm}\""),
            Scheme::Basic => {
                let basic_realm = rt.basic.as_ref().map_or("api", |(_, r)| r.as_str());
                format!(
                    "Basic realm=\"{}\", charset=\"UTF-8\"",
                    basic_realm.replace(['"', '\\'], "")
                )
            }
            Scheme::ApiKey => format!("ApiKey realm=\"{realm}\""),
            Scheme::Mtls => continue,
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            rej = rej.header(WWW_AUTHENTICATE, v);
        }
    }
    rej
}

/// Evaluate the route's authorization rules for an authenticated caller.
pub fn authorize(
    authz: &RouteAuthz,
    parts: &Parts,
    identity: &Identity,
    client_ip: std::net::IpAddr,
    secret_headers: &dyn Fn(&str) -> bool,
) -> Result<(), Rejection> {
    let Some(policy) = &authz.policy else {
        return Ok(());
    };
    let path = parts.uri.path();
    let path_params = match &authz.template {
        Some(t) => match t.match_path(path) {
            Some(p) => p,
            // The path does not fit the template: a parameter was empty, `..`, or an encoded
            // separator. No object can be named that way; deny as "not found".
            None => {
                let mut rej = Rejection::new(StatusCode::NOT_FOUND, "not_found", "Not Found");
                rej.event_reason = Some("not_owner");
                return Err(rej);
            }
        },
        None => BTreeMap::new(),
    };
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(q) = parts.uri.query() {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            query
                .entry(crate::restrict::percent_decode(k))
                .or_default()
                .push(crate::restrict::percent_decode(v));
        }
    }
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .filter(|(k, _)| !secret_headers(k.as_str()))
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let request = AuthzRequest {
        method: parts.method.as_str(),
        path,
        path_params: &path_params,
        query: &query,
        headers: &headers,
        client_ip,
    };
    let decision = policy.authorize(&request, identity);
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny {
            status,
            ref rule,
            reason,
            ..
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            let title = code.canonical_reason().unwrap_or("Forbidden");
            // A 404 exists to hide the object: its problem type must be the plain
            // `not_found`, never a reason that admits the object is there.
            let public = if code == StatusCode::NOT_FOUND {
                "not_found"
            } else {
                reason
            };
            let mut rej = Rejection::new(code, public, title);
            rej.event_reason = Some(reason);
            rej.rule = Some(rule.clone());
            if let Some(v) = decision
                .www_authenticate()
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                rej = rej.header(WWW_AUTHENTICATE, v);
            }
            Err(rej)
        }
        Decision::StepUp(ref step) => {
            let mut rej = Rejection::new(StatusCode::UNAUTHORIZED, "mfa_required", "Unauthorized")
                .detail("stronger or more recent authentication is required");
            rej.rule = Some(format!("mfa.{}", step.failed));
            if let Ok(v) = HeaderValue::from_str(&step.rfc9470_challenge()) {
                rej = rej.header(WWW_AUTHENTICATE, v);
            }
            Err(rej)
        }
    }
}

/// Identity headers the gateway sets; clients can never set them.
pub const PRINCIPAL: HeaderName = HeaderName::from_static("x-portcullis-principal");
pub const AUTH_METHOD: HeaderName = HeaderName::from_static("x-portcullis-auth-method");
pub const SCOPES: HeaderName = HeaderName::from_static("x-portcullis-scopes");
pub const CREDENTIAL_ID: HeaderName = HeaderName::from_static("x-portcullis-credential-id");

pub fn method_name(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::ApiKey => "api_key",
        AuthMethod::Basic => "basic",
        AuthMethod::Jwt => "jwt",
        AuthMethod::Introspection => "introspection",
        AuthMethod::Mtls => "mtls",
    }
}

/// Rewrite the identity headers for the upstream: strip whatever the client sent that could
/// pass for identity, drop the client's credential unless the route forwards it, and state
/// the verified identity.
pub fn upstream_identity_headers(
    headers: &mut HeaderMap,
    rt: &IdentityRuntime,
    auth: &RouteAuth,
    identity: Option<&Identity>,
) {
    let spoofable: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-portcullis-"))
        .cloned()
        .collect();
    for name in spoofable.iter().chain(rt.strip.iter()) {
        headers.remove(name);
    }
    // Fix: a custom `upstream_token.header` (not `x-portcullis-*`) reached the upstream as
    // the client sent it on public routes and routes without the token, so a replayed
    // gateway token passed for the gateway's word. The header is the gateway's alone.
    if let Some((_, header)) = &rt.signer {
        headers.remove(header);
    }
    let Some(identity) = identity else {
        return;
    };
    let bearer_method = matches!(identity.method, AuthMethod::Jwt | AuthMethod::Introspection);
    let forward = auth.forward_authorization.unwrap_or(bearer_method);
    if !forward {
        headers.remove(AUTHORIZATION);
        if identity.method == AuthMethod::ApiKey
            && let Some((_, names)) = &rt.api_keys
        {
            for h in names.headers() {
                headers.remove(h);
            }
        }
    }
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(PRINCIPAL, &identity.principal);
    if let Some(id) = &identity.credential_id {
        set(CREDENTIAL_ID, id);
    }
    // The method names are static strings: no copy.
    headers.insert(
        AUTH_METHOD,
        HeaderValue::from_static(method_name(identity.method)),
    );
    if let Some(scopes) = scopes_header(&identity.scopes) {
        headers.insert(SCOPES, scopes);
    }
    if auth.upstream_token
        && let Some((signer, header)) = &rt.signer
        && let Some(token) = signer.token_for(identity)
    {
        // A shared `HeaderValue` from the signer's cache: cloning it is a reference count.
        headers.insert(header.clone(), token);
    }
}

/// The scopes, space-separated, as a header value: written straight into the buffer the
/// value keeps (one allocation, not a joined `String` copied again). `None` without scopes,
/// or if a scope is not a valid header value (then the header is left out, as before).
fn scopes_header(scopes: &[String]) -> Option<HeaderValue> {
    let (first, rest) = scopes.split_first()?;
    let len = scopes.iter().map(|s| s.len() + 1).sum::<usize>() - 1;
    let mut value = Vec::with_capacity(len);
    value.extend_from_slice(first.as_bytes());
    for scope in rest {
        value.push(b' ');
        value.extend_from_slice(scope.as_bytes());
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_header_joins_with_single_spaces() {
        let scopes =
            |list: &[&str]| scopes_header(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(scopes(&[]), None);
        assert_eq!(scopes(&["a"]).unwrap(), "a");
        assert_eq!(
            scopes(&["orders:read", "orders:write", "x"]).unwrap(),
            "orders:read orders:write x"
        );
        // Not a valid header value: left out rather than sent mangled.
        assert_eq!(scopes(&["a\nb"]), None);
    }
}
