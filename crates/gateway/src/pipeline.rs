//! The request pipeline: one function that runs every stage of a request in order.
//!
//! ```text
//! handle ─┬─ connection guard   framing violations found by the strict HTTP/1 reader
//!         ├─ redirect           plain listeners that only send clients to HTTPS
//!         ├─ access             static allow/deny on the client address; dynamic IP blocks,
//!         │                     looked up with the first rate limit (one store call)
//!         ├─ request limits     URL length, header count, unambiguous path
//!         ├─ public JWKS        the upstream-token key set, when a public path is configured
//!         ├─ route match        host + longest path prefix (+ methods)
//!         ├─ URL credentials    no credentials in the query or userinfo
//!         ├─ CORS preflight     answered from the route's allow-list, before credentials
//!         ├─ rate limit         before authentication: by ip, route
//!         ├─ authenticate       api key, Basic, JWT, introspection, mTLS → Identity;
//!         │                     failures feed brute-force blocks; principal/key blocks
//!         ├─ rate limit         after authentication: by principal, api key, tier
//!         ├─ authorize          scopes, roles, claims, MFA, ownership, CEL
//!         ├─ validate, inspect  methods, media types, body size; the OpenAPI contract
//!         │                     (operation, parameters, body) and attack payloads
//!         ├─ load shedding      the route's in-flight cap
//!         ├─ forward            identity headers, upstream pool, streaming both ways
//!         ├─ response filters   strip, mask, size cap
//!         ├─ data protection    undeclared response fields, secrets, personal data
//!         └─ event              one per request, emitted by the EventGuard
//! ```
//!
//! A stage returns `Ok` to continue or a [`Rejection`]; rejections become problem+json in
//! exactly one place ([`crate::problem::render`]).

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{HOST, LOCATION, ORIGIN, USER_AGENT};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use portcullis_events::{Action, HttpActivity, Severity};

use crate::authn;
use crate::body::{Body, ResponseBody, empty};
use crate::context::{ConnInfo, EventGuard, RequestContext, now_ms};
use crate::forward::{ForwardSettings, forward};
use crate::forwarding::{client_ip, request_id};
use crate::problem::{self, Rejection};
use crate::respond;
use crate::restrict;
use crate::server::Gateway;
use crate::snapshot::{Route, Snapshot};

/// Handle one request from a client connection. Never fails: every outcome is a response,
/// and every request produces exactly one event.
pub async fn handle(
    gw: Arc<Gateway>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let snap = gw.snapshot();
    let request_id = request_id(req.headers());
    let client_ip = client_ip(conn.peer.ip(), req.headers(), &snap.config.trusted_proxies);
    let host = request_host(&req);
    let mut ctx = RequestContext {
        request_id,
        client_ip,
        conn: conn.clone(),
        route: None,
        upstream: None,
        reason: None,
        findings: Vec::new(),
        authenticated: false,
        identity: None,
        rate_headers: None,
        body: Arc::default(),
        attempted_user: None,
        operation: None,
    };
    let detection = gw.detection.load_full();
    let mut guard = EventGuard::new(
        initial_event(
            &req,
            &ctx,
            &host,
            gw.emitter.has_sinks() || detection.is_some(),
        ),
        ctx.body.clone(),
        gw.emitter.clone(),
        gw.metrics.clone(),
        conn.activity.clone(),
    );
    guard.detect_with(detection);
    let origin = req.headers().get(ORIGIN).cloned();

    let mut route: Option<Arc<Route>> = None;
    let outcome = stages(&gw, &snap, &mut ctx, &mut guard, &mut route, &host, req).await;
    let (mut resp, denied) = match outcome {
        Ok(resp) => (resp, false),
        Err(rej) => {
            if matches!(
                rej.reason,
                "rate_limited" | "blocked" | "overloaded" | "ip_denied" | "rate_limit_unavailable"
            ) {
                gw.metrics.protection_action(rej.reason);
            }
            ctx.reason = Some(rej.event_reason.unwrap_or(rej.reason));
            if let Some(rule) = &rej.rule {
                ctx.findings.push(portcullis_events::Finding {
                    kind: "authorization".into(),
                    id: rule.clone(),
                    location: None,
                    detail: None,
                    severity: portcullis_events::Severity::Medium,
                });
            }
            (problem::render(&rej, &ctx.request_id), true)
        }
    };

    let policy = route
        .as_ref()
        .map_or(&snap.config.default_response, |r| &r.config.response);
    respond::finish_headers(resp.headers_mut(), policy, &ctx, conn.hsts.as_ref());
    if let Some(cors) = route.as_ref().and_then(|r| r.config.cors.as_ref()) {
        // Fix: a refused preflight (a listed origin asking for a method or header that is not
        // allowed) used to get that origin's grant added here, contradicting its own 403.
        // It keeps `Vary: Origin` but grants nothing.
        let grant_to = if ctx.reason == Some("cors_denied") {
            None
        } else {
            origin.as_ref()
        };
        respond::cors_headers(cors, grant_to, resp.headers_mut());
    }
    guard.set_outcome(resp.status().as_u16(), &mut ctx, denied);
    let limit = route
        .as_ref()
        .map_or(u64::MAX, |r| r.config.response.max_body);
    Ok(resp.map(|b| ResponseBody::new(b, limit, guard)))
}

async fn stages(
    gw: &Gateway,
    snap: &Snapshot,
    ctx: &mut RequestContext,
    guard: &mut EventGuard,
    route_slot: &mut Option<Arc<Route>>,
    host: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, Rejection> {
    // Connection guard: the strict HTTP/1 reader replaced a malformed request with a
    // placeholder and recorded why; answer for the original, never forward anything. The
    // signal is only consulted for the placeholder: the reader reads ahead, so a valid
    // request pipelined before the bad one must still be served normally.
    if is_framing_placeholder(&req)
        && let Some(v) = ctx.conn.framing.take()
    {
        let status = StatusCode::from_u16(v.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let title = status.canonical_reason().unwrap_or("Bad Request");
        return Err(Rejection::new(status, "invalid_framing", title)
            .detail(format!("the request is malformed ({})", v.reason())));
    }

    if let Some(port) = ctx.conn.redirect_https_port {
        return redirect_to_https(host, port, req.uri());
    }

    // Access: static lists on the client address (the peer was checked at accept; behind a
    // trusted proxy the client may differ), then the dynamic block list.
    let protection = &snap.protection;
    if !protection.ip_allowed(ctx.client_ip) {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "ip_denied",
            "Forbidden",
        ));
    }
    // Everything from here to the first rate limit is synchronous and touches no store, so it
    // runs BEFORE the dynamic-block lookup, with its outcome held back: the lookup can then ride
    // on the first limit's store call (one Redis round trip per request instead of two, issue
    // #4). A blocked client is still refused first, whatever else it sent, and none of what
    // was held back (route, findings) reaches its event, exactly as when the lookup ran here.
    let (mut parts, body) = req.into_parts();
    let (route, early_findings) = match route_request(snap, host, &parts) {
        Routed::Route { route, findings } => (route, findings),
        Routed::Answer {
            route,
            findings,
            answer,
        } => {
            if let Some(left) = protection.ip_block(ctx.client_ip).await {
                ctx.findings.push(finding("block", "ip", Severity::Medium));
                return Err(crate::protect::blocked(left));
            }
            if let Some(route) = route {
                adopt_route(ctx, guard, route_slot, route);
            }
            ctx.findings.extend(findings);
            return answer;
        }
    };

    // Rate limit before authentication (protects the authentication path itself), with the
    // dynamic IP block looked up in the same store call.
    let limits = &route.config.rate_limits;
    let mut hits = Vec::new();
    let before = {
        let subject = crate::protect::Subject {
            ip: ctx.client_ip,
            route: &route.name,
            identity: None,
        };
        protection
            .check_before_auth(&limits.before_auth, &subject, &mut hits)
            .await
    };
    let before = match before {
        Err(crate::protect::Refusal::Blocked(left)) => {
            ctx.findings.push(finding("block", "ip", Severity::Medium));
            return Err(crate::protect::blocked(left));
        }
        Err(crate::protect::Refusal::Limited(rej)) => Err(rej),
        Ok(decisions) => Ok(decisions),
    };
    adopt_route(ctx, guard, route_slot, route.clone());
    ctx.findings.extend(early_findings);
    note_limit_hits(ctx, &hits);
    let mut decisions = before?;

    // Authenticate. Failures feed brute-force protection; a success clears it.
    let (checked, authenticated) =
        authn::authenticate(&route.config.auth, &snap.identity, &parts, &ctx.conn).await;
    let auth_events = snap.config.events.authentication;
    let identity = match authenticated {
        Ok(identity) => {
            if let (Some(method), Some(id), crate::config::AuthEvents::All) =
                (checked, &identity, auth_events)
            {
                gw.emitter.emit_authentication(auth_event(
                    ctx,
                    method,
                    None,
                    Some(id.principal.clone()),
                    id.credential_id.clone(),
                ));
            }
            identity
        }
        Err(rej) => {
            if rej.status == StatusCode::UNAUTHORIZED
                && rej.event_reason != Some("missing_credentials")
            {
                let user = authn::basic_user(&parts.headers);
                if protection
                    .auth_failed(ctx.client_ip, user.as_deref())
                    .await
                    .is_some()
                {
                    ctx.findings
                        .push(finding("brute_force", "blocked", Severity::High));
                }
                ctx.attempted_user = user;
            }
            if let Some(method) = checked
                && auth_events != crate::config::AuthEvents::Off
            {
                gw.emitter.emit_authentication(auth_event(
                    ctx,
                    method,
                    Some(rej.event_reason.unwrap_or(rej.reason)),
                    ctx.attempted_user.clone(),
                    None,
                ));
            }
            return Err(rej);
        }
    };
    if let Some(id) = &identity {
        protection.auth_succeeded(ctx.client_ip, &id.principal);
        if let Some(left) = protection.identity_block(id).await {
            ctx.findings
                .push(finding("block", "identity", Severity::Medium));
            ctx.authenticated = true;
            ctx.identity = identity;
            return Err(crate::protect::blocked(left));
        }
    }
    ctx.authenticated = identity.is_some();
    ctx.identity = identity;

    // Rate limit after authentication: per principal, per key, per tier.
    if let Some(id) = &ctx.identity {
        let subject = crate::protect::Subject {
            ip: ctx.client_ip,
            route: &route.name,
            identity: Some(id),
        };
        let after = protection
            .check(&limits.after_auth, id.tier.as_deref(), &subject, &mut hits)
            .await;
        note_limit_hits(ctx, &hits);
        decisions.extend(after?);
    }
    if limits.headers {
        ctx.rate_headers = portcullis_policy::ratelimit::combined_headers(&decisions);
    }

    // Authorize.
    if let Some(identity) = &ctx.identity {
        authn::authorize(&route.authz, &parts, identity, ctx.client_ip, &|h| {
            snap.identity.is_credential_header(h)
        })?;
    }

    // Validate and inspect.
    // Whether the forward stage will stream a body: HTTP/2 bodies need not be declared.
    let body_follows = !hyper::body::Body::is_end_stream(&body);
    restrict::check_request(&parts, &route.config.request, body_follows)?;
    let body_limits = crate::contract::BodyLimits {
        timeout: snap.config.limits.request_body_timeout,
        min_rate: snap.config.limits.min_body_rate,
    };
    let (body, operation) =
        crate::contract::check_request(&route, ctx, &mut parts, body, &body_limits).await?;

    // Load shedding: a route with `max_in_flight` answers 503 at once beyond it.
    if let Some(max) = route.config.max_in_flight {
        match route.in_flight.try_acquire(max) {
            Some(permit) => guard.hold(permit),
            None => {
                return Err(Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "Service Unavailable",
                )
                .header(http::header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
        }
    }

    // Forward.
    let settings = ForwardSettings {
        trusted_proxies: &snap.config.trusted_proxies,
        body_timeout: snap.config.limits.request_body_timeout,
        min_body_rate: snap.config.limits.min_body_rate,
        host,
        identity: &snap.identity,
    };
    let method = parts.method.clone();
    let upstream_resp = forward(&route, ctx, parts, body, &settings, &gw.metrics).await?;

    // Response filters, then data protection: the contract's fields, secrets, personal data.
    let resp = respond::filter_upstream(&route.config.response, ctx, &method, upstream_resp)?;
    crate::contract::protect_response(&route, ctx, operation.as_ref(), &method, resp).await
}

/// An Authentication (OCSF 3002) event for the credential check of this request: never the
/// credential, only who it named and an identifier of it.
fn auth_event(
    ctx: &RequestContext,
    method: portcullis_events::AuthMethod,
    failure: Option<&str>,
    principal: Option<String>,
    credential_id: Option<String>,
) -> portcullis_events::AuthenticationEvent {
    portcullis_events::AuthenticationEvent {
        time_ms: now_ms(),
        request_id: ctx.request_id.clone(),
        client_ip: ctx.client_ip,
        client_port: ctx.conn.peer.port(),
        method,
        outcome: if failure.is_some() {
            portcullis_events::AuthOutcome::Failure
        } else {
            portcullis_events::AuthOutcome::Success
        },
        failure_reason: failure.map(str::to_string),
        principal,
        credential_id,
    }
}

/// What the synchronous stages between the access lists and the first rate limit decided
/// (request limits, public JWKS, route match, URL credentials, CORS preflight).
enum Routed {
    /// Go on to the rate limits on `route`; `findings` were made on the way.
    Route {
        route: Arc<Route>,
        findings: Vec<portcullis_events::Finding>,
    },
    /// Answer now (the JWKS, a preflight, or a refusal), on `route` if one matched.
    Answer {
        route: Option<Arc<Route>>,
        findings: Vec<portcullis_events::Finding>,
        answer: Result<Response<Body>, Rejection>,
    },
}

/// The stages from the request limits to the CORS preflight: no I/O, so they can run before the
/// dynamic-block lookup without changing what any client sees (see `stages`).
fn route_request(snap: &Snapshot, host: &str, parts: &http::request::Parts) -> Routed {
    let answer = |route, findings, answer| Routed::Answer {
        route,
        findings,
        answer,
    };
    // Request limits that hold whatever the route.
    if let Err(rej) = restrict::check_limits(parts, &snap.config.limits)
        .and_then(|()| restrict::check_path(parts.uri.path()))
    {
        return answer(None, Vec::new(), Err(rej));
    }

    // The upstream-token JWKS on its public path, when configured: answered by the gateway.
    if parts.method == http::Method::GET
        && snap.identity.public_jwks_path() == Some(parts.uri.path())
        && let Some(jwks) = snap.identity.upstream_jwks()
    {
        let mut resp = Response::new(crate::body::full(jwks.to_string()));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        );
        return answer(None, Vec::new(), Ok(resp));
    }

    // Route match.
    let Some(route) = snap
        .find_route(host, parts.uri.path(), &parts.method)
        .cloned()
    else {
        return answer(None, Vec::new(), Err(Rejection::not_found()));
    };
    let mut findings = Vec::new();
    if let Err(rej) = restrict::check_url_credentials(parts, &route.config.request, &mut findings) {
        return answer(Some(route), findings, Err(rej));
    }

    // CORS preflight: browsers send it without credentials, so it is answered before
    // authentication, from the route's allow-list alone.
    if let Some(cors) = &route.config.cors
        && let Some(preflight) = respond::preflight(cors, &parts.method, &parts.headers)
    {
        return answer(Some(route), findings, preflight);
    }
    Routed::Route { route, findings }
}

/// Records the matched route in the context, the event and the response policy's slot.
fn adopt_route(
    ctx: &mut RequestContext,
    guard: &mut EventGuard,
    route_slot: &mut Option<Arc<Route>>,
    route: Arc<Route>,
) {
    ctx.route = Some(route.name.clone());
    // Fix: the route reached the event only with the outcome, so a request cancelled later
    // (client gone: 499) was recorded, and counted in metrics, without its route.
    guard.note_route(&route.name);
    *route_slot = Some(route);
}

fn finding(kind: &str, id: &str, severity: Severity) -> portcullis_events::Finding {
    portcullis_events::Finding {
        kind: kind.into(),
        id: id.into(),
        location: None,
        detail: None,
        severity,
    }
}

/// Which limits refused the request, as findings (limit name and what it counts by).
fn note_limit_hits(ctx: &mut RequestContext, hits: &[(String, &'static str)]) {
    for (name, kind) in hits {
        ctx.findings.push(portcullis_events::Finding {
            kind: "rate_limit".into(),
            id: name.clone(),
            location: Some(format!("key.{kind}")),
            detail: None,
            severity: Severity::Low,
        });
    }
}

/// Path and host of [`crate::framing::SYNTHETIC_REQUEST`].
const PLACEHOLDER_PATH: &str = "/.portcullis/framing-error";
const PLACEHOLDER_HOST: &str = "portcullis.invalid";

fn is_framing_placeholder(req: &Request<Incoming>) -> bool {
    req.uri().path() == PLACEHOLDER_PATH
        && req
            .headers()
            .get(HOST)
            .is_some_and(|h| h == PLACEHOLDER_HOST)
}

/// The Host the client asked for, lowercase and without the port: the `Host` header for
/// HTTP/1.1, the `:authority` for HTTP/2.
fn request_host(req: &Request<Incoming>) -> String {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.host().to_string())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| strip_port(h).to_string())
        })
        .unwrap_or_default();
    raw.to_ascii_lowercase()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map_or(host, |h| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn redirect_to_https(host: &str, port: u16, uri: &http::Uri) -> Result<Response<Body>, Rejection> {
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
    {
        return Err(Rejection::bad_request(
            "invalid_host",
            "the Host header is missing or invalid",
        ));
    }
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let location = if port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{port}{pq}")
    };
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    Ok(resp)
}

/// The event as far as the request head tells. Without an event sink, the header list (the
/// largest part, and read only by sinks) is not built.
fn initial_event(
    req: &Request<Incoming>,
    ctx: &RequestContext,
    host: &str,
    with_headers: bool,
) -> HttpActivity {
    let conn = &ctx.conn;
    HttpActivity {
        time_ms: now_ms(),
        request_id: ctx.request_id.clone(),
        client_ip: ctx.client_ip,
        client_port: conn.peer.port(),
        tls: conn.tls.clone(),
        http_version: format!("{:?}", req.version()),
        method: req.method().as_str().to_string(),
        scheme: if conn.is_tls() { "https" } else { "http" }.to_string(),
        host: host.to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        headers: if with_headers {
            req.headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        status: 0,
        bytes_in: 0,
        bytes_out: 0,
        duration_us: 0,
        route: None,
        upstream: None,
        action: Action::Allowed,
        reason: None,
        findings: Vec::new(),
        actor: None,
        attempted_user: None,
        operation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn placeholder_matches_the_framing_readers_request() {
        let text = String::from_utf8_lossy(crate::framing::SYNTHETIC_REQUEST);
        assert!(text.starts_with(&format!("GET {} HTTP/1.1\r\n", super::PLACEHOLDER_PATH)));
        assert!(text.contains(&format!("host: {}\r\n", super::PLACEHOLDER_HOST)));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("api.example.com:8443"), "api.example.com");
        assert_eq!(strip_port("api.example.com"), "api.example.com");
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
    }
}
