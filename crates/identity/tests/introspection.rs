//! Token introspection (RFC 7662) against a real in-process introspection endpoint: a hyper
//! HTTP/1 server on a loopback port that checks the gateway's client authentication (Basic or
//! form fields), knows a few tokens, counts requests, and can be made to fail, hang or vanish.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portcullis_identity::introspection::{
    ClientAuth, IntrospectionConfig, IntrospectionError, Introspector,
};
use portcullis_identity::{AuthError, AuthMethod};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const CLIENT_ID: &str = "portcullis";
const CLIENT_SECRET: &str = "s3cret:with&odd=chars";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    /// Answer 500 to everything.
    Error,
    /// Sleep this long before answering.
    Slow(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SeenAuth {
    Basic,
    Post,
}

struct State {
    tokens: Mutex<HashMap<String, Value>>,
    requests: AtomicUsize,
    mode: Mutex<Mode>,
    seen_auth: Mutex<Vec<SeenAuth>>,
    seen_forms: Mutex<Vec<Vec<(String, String)>>>,
}

struct AuthServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl AuthServer {
    async fn start() -> Self {
        Self::start_with_tls(None).await
    }

    async fn start_with_tls(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let now = now_unix();
        let tokens = HashMap::from([
            (
                "good-token".to_string(),
                json!({
                    "active": true,
                    "sub": "alice",
                    "client_id": "mobile-app",
                    "scope": "orders:read orders:write",
                    "exp": now + 3600,
                    "iat": now,
                    "jti": "tok-1",
                    "aud": ["orders-api", "other"],
                    "iss": "https://as.example",
                    "token_type": "Bearer",
                }),
            ),
            ("inactive-token".to_string(), json!({"active": false})),
            (
                "expired-token".to_string(),
                // A buggy server that still says active: the gateway checks exp itself.
                json!({"active": true, "sub": "bob", "exp": now - 10}),
            ),
            (
                "wrong-aud-token".to_string(),
                json!({"active": true, "sub": "carol", "aud": "billing-api", "exp": now + 3600}),
            ),
            (
                "client-only-token".to_string(),
                json!({"active": true, "client_id": "batch-job", "scope": "reports"}),
            ),
            (
                "string-active-token".to_string(),
                json!({"active": "true", "sub": "mallory"}),
            ),
        ]);
        let state = Arc::new(State {
            tokens: Mutex::new(tokens),
            requests: AtomicUsize::new(0),
            mode: Mutex::new(Mode::Normal),
            seen_auth: Mutex::new(Vec::new()),
            seen_forms: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let accept = tokio::spawn(async move {
            // Connection tasks live in this set: aborting the accept task closes them too, so
            // "down" means refused connections even for pooled keep-alive connections.
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        AuthServer {
            addr,
            state,
            accept,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/oauth2/introspect", self.addr)
    }

    fn config(&self) -> IntrospectionConfig {
        IntrospectionConfig::new("test-as", self.endpoint(), CLIENT_ID, CLIENT_SECRET)
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn add_token(&self, token: &str, answer: Value) {
        self.state
            .tokens
            .lock()
            .unwrap()
            .insert(token.to_string(), answer);
    }

    /// Close the listener and every open connection.
    async fn shut_down(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let mode = *st.mode.lock().unwrap();
    if let Mode::Slow(d) = mode {
        tokio::time::sleep(d).await;
    }
    if mode == Mode::Error {
        return Ok(json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "server_error"}),
        ));
    }
    let bad_request = |what: &str| {
        Ok(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": what}),
        ))
    };
    if req.method() != http::Method::POST || req.uri().path() != "/oauth2/introspect" {
        return bad_request("POST /oauth2/introspect only");
    }
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/x-www-form-urlencoded" {
        return bad_request("form body required");
    }
    let basic = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let Some(form) = parse_form(&body) else {
        return bad_request("malformed form");
    };
    st.seen_forms.lock().unwrap().push(form.clone());
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    // Client authentication (RFC 6749 §2.3.1): exactly one method.
    let credentials = match (basic, field("client_secret")) {
        (Some(_), Some(_)) => return bad_request("more than one client authentication method"),
        (Some(header), None) => {
            let Some(b64) = header.strip_prefix("Basic ") else {
                return Ok(unauthorized());
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Ok(unauthorized());
            };
            st.seen_auth.lock().unwrap().push(SeenAuth::Basic);
            form_decode(id).zip(form_decode(secret))
        }
        (None, Some(secret)) => {
            st.seen_auth.lock().unwrap().push(SeenAuth::Post);
            field("client_id").map(|id| (id.to_string(), secret.to_string()))
        }
        (None, None) => None,
    };
    if credentials.as_ref().map(|(i, s)| (i.as_str(), s.as_str()))
        != Some((CLIENT_ID, CLIENT_SECRET))
    {
        return Ok(unauthorized());
    }

    let Some(token) = field("token") else {
        return bad_request("token missing");
    };
    let answer = st
        .tokens
        .lock()
        .unwrap()
        .get(token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    Ok(json_response(StatusCode::OK, &answer))
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_client"}),
    );
    r.headers_mut().insert(
        "www-authenticate",
        http::HeaderValue::from_static("Basic realm=\"introspection\""),
    );
    r
}

/// Strict `application/x-www-form-urlencoded` decoding.
fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            // Characters that must have been percent-encoded.
            b'&' | b'=' | b' ' => return None,
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// A minimal `tracing` subscriber that records events, so tests can check what is logged.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Capture {
    fn events(&self) -> Vec<(tracing::Level, String)> {
        self.0.lock().unwrap().clone()
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn invalid(reason: &'static str) -> Result<(), AuthError> {
    Err(AuthError::Invalid { reason })
}

const UNAVAILABLE: AuthError = AuthError::Unavailable {
    reason: "introspection_unavailable",
};

#[tokio::test]
async fn active_token_becomes_identity() {
    let server = AuthServer::start().await;
    let introspector = Introspector::new(server.config()).unwrap();
    let id = introspector.authenticate("good-token").await.unwrap();
    assert_eq!(id.method, AuthMethod::Introspection);
    assert_eq!(id.principal, "alice");
    assert_eq!(id.scopes, ["orders:read", "orders:write"]);
    assert_eq!(id.credential_id.as_deref(), Some("tok-1"));
    assert_eq!(id.claims.get("client_id"), Some(&json!("mobile-app")));
    assert_eq!(id.claims.get("iss"), Some(&json!("https://as.example")));
    assert_eq!(id.claims.get("active"), Some(&json!(true)));
    assert_eq!(id.tier, None);
    // Default client authentication is client_secret_basic, and the request says what it is.
    assert_eq!(*server.state.seen_auth.lock().unwrap(), [SeenAuth::Basic]);
    let forms = server.state.seen_forms.lock().unwrap().clone();
    assert_eq!(
        forms,
        [vec![
            ("token".to_string(), "good-token".to_string()),
            ("token_type_hint".to_string(), "access_token".to_string()),
        ]]
    );
}

#[tokio::test]
async fn principal_falls_back_to_client_id() {
    let server = AuthServer::start().await;
    let introspector = Introspector::new(server.config()).unwrap();
    let id = introspector
        .authenticate("client-only-token")
        .await
        .unwrap();
    assert_eq!(id.principal, "batch-job");
    assert_eq!(id.scopes, ["reports"]);
    assert_eq!(id.credential_id, None);
}

#[tokio::test]
async fn inactive_and_unknown_tokens_are_refused() {
    let server = AuthServer::start().await;
    let introspector = Introspector::new(server.config()).unwrap();
    for token in ["inactive-token", "never-issued", "string-active-token"] {
        assert_eq!(
            introspector.authenticate(token).await.map(drop),
            invalid("inactive_token"),
            "{token}"
        );
    }
    assert_eq!(
        introspector.authenticate("").await.map(drop),
        Err(AuthError::Missing)
    );
}

#[tokio::test]
async fn expired_token_is_refused_even_if_server_says_active() {
    let server = AuthServer::start().await;
    let introspector = Introspector::new(server.config()).unwrap();
    assert_eq!(
        introspector.authenticate("expired-token").await.map(drop),
        invalid("expired")
    );
}

#[tokio::test]
async fn audience_and_issuer_checks() {
    let server = AuthServer::start().await;
    let mut cfg = server.config();
    cfg.expected_audience = Some("orders-api".into());
    cfg.expected_issuer = Some("https://as.example".into());
    let introspector = Introspector::new(cfg).unwrap();
    introspector.authenticate("good-token").await.unwrap();
    // wrong-aud-token has no `iss`, and the issuer is checked first.
    assert_eq!(
        introspector.authenticate("wrong-aud-token").await.map(drop),
        invalid("wrong_issuer")
    );

    let mut cfg = server.config();
    cfg.expected_audience = Some("orders-api".into());
    let introspector = Introspector::new(cfg).unwrap();
    introspector.authenticate("good-token").await.unwrap();
    assert_eq!(
        introspector.authenticate("wrong-aud-token").await.map(drop),
        invalid("wrong_audience")
    );

    let mut cfg = server.config();
    cfg.expected_issuer = Some("https://other.example".into());
    let introspector = Introspector::new(cfg).unwrap();
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        invalid("wrong_issuer")
    );
}

#[tokio::test]
async fn active_answer_is_cached() {
    let server = AuthServer::start().await;
    let introspector = Introspector::new(server.config()).unwrap();
    for _ in 0..5 {
        assert_eq!(
            introspector
                .authenticate("good-token")
                .await
                .unwrap()
                .principal,
            "alice"
        );
    }
    assert_eq!(server.requests(), 1);
    // A different token is a different cache entry.
    introspector
        .authenticate("client-only-token")
        .await
        .unwrap();
    assert_eq!(server.requests(), 2);
    assert_eq!(introspector.cached_entries(), 2);
}

#[tokio::test]
async fn cache_never_outlives_cache_max() {
    let server = AuthServer::start().await;
    let mut cfg = server.config();
    cfg.cache_max = Duration::from_millis(300);
    let introspector = Introspector::new(cfg).unwrap();
    introspector.authenticate("good-token").await.unwrap();
    introspector.authenticate("good-token").await.unwrap();
    assert_eq!(server.requests(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Revoked at the server meanwhile: noticed once the entry is gone.
    server.add_token("good-token", json!({"active": false}));
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        invalid("inactive_token")
    );
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn cache_never_outlives_token_exp() {
    let server = AuthServer::start().await;
    let exp = now_unix() + 2;
    server.add_token(
        "short-token",
        json!({"active": true, "sub": "dave", "exp": exp}),
    );
    let introspector = Introspector::new(server.config()).unwrap(); // cache_max 60 s
    introspector.authenticate("short-token").await.unwrap();
    introspector.authenticate("short-token").await.unwrap();
    assert_eq!(server.requests(), 1);

    // Wait until just past exp (1..2 s from now).
    let until = UNIX_EPOCH + Duration::from_secs(exp) + Duration::from_millis(100);
    tokio::time::sleep(until.duration_since(SystemTime::now()).unwrap()).await;
    // Re-asked (the entry expired with the token), and the server's stale `active: true`
    // is refused by the gateway's own exp check.
    assert_eq!(
        introspector.authenticate("short-token").await.map(drop),
        invalid("expired")
    );
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn refusals_are_cached_briefly() {
    let server = AuthServer::start().await;
    let mut cfg = server.config();
    cfg.inactive_cache = Duration::from_millis(300);
    let introspector = Introspector::new(cfg).unwrap();
    for _ in 0..10 {
        assert_eq!(
            introspector.authenticate("inactive-token").await.map(drop),
            invalid("inactive_token")
        );
    }
    assert_eq!(server.requests(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The token was (re)activated at the server: the short refusal cache lets it through soon.
    server.add_token("inactive-token", json!({"active": true, "sub": "erin"}));
    assert_eq!(
        introspector
            .authenticate("inactive-token")
            .await
            .unwrap()
            .principal,
        "erin"
    );
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn concurrent_requests_for_one_token_share_one_call() {
    let server = AuthServer::start().await;
    server.set_mode(Mode::Slow(Duration::from_millis(200)));
    let introspector = Arc::new(Introspector::new(server.config()).unwrap());
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let i = introspector.clone();
        tasks.spawn(async move { i.authenticate("bad-token-flood").await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().map(drop), invalid("inactive_token"));
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn cancelled_caller_does_not_wedge_the_token() {
    let server = AuthServer::start().await;
    server.set_mode(Mode::Slow(Duration::from_millis(300)));
    let introspector = Introspector::new(server.config()).unwrap();
    // The client gives up (request cancelled) while the introspection call is in flight.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        introspector.authenticate("good-token"),
    )
    .await;
    assert!(gave_up.is_err());
    server.set_mode(Mode::Normal);
    assert_eq!(
        introspector
            .authenticate("good-token")
            .await
            .unwrap()
            .principal,
        "alice"
    );
}

#[tokio::test]
async fn endpoint_error_fails_closed() {
    let server = AuthServer::start().await;
    server.set_mode(Mode::Error);
    let introspector = Introspector::new(server.config()).unwrap();
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        Err(UNAVAILABLE)
    );
    // Not cached: the next request asks again, and succeeds once the endpoint is back.
    server.set_mode(Mode::Normal);
    introspector.authenticate("good-token").await.unwrap();
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn endpoint_gone_fails_closed() {
    let server = AuthServer::start().await;
    let introspector = Introspector::new(server.config()).unwrap();
    introspector.authenticate("good-token").await.unwrap();
    server.shut_down().await;
    // Uncached token: nobody to ask.
    assert_eq!(
        introspector
            .authenticate("client-only-token")
            .await
            .map(drop),
        Err(UNAVAILABLE)
    );
}

#[tokio::test]
async fn cached_answer_survives_outage_until_it_expires() {
    let server = AuthServer::start().await;
    let mut cfg = server.config();
    cfg.cache_max = Duration::from_millis(500);
    let introspector = Introspector::new(cfg).unwrap();
    introspector.authenticate("good-token").await.unwrap();

    server.set_mode(Mode::Error);
    introspector.authenticate("good-token").await.unwrap();
    assert_eq!(server.requests(), 1);
    server.shut_down().await;
    introspector.authenticate("good-token").await.unwrap();

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        Err(UNAVAILABLE)
    );
}

#[tokio::test]
async fn non_json_answer_fails_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            conns.spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = match req.uri().path() {
                        "/html" => Bytes::from_static(b"<html>login</html>"),
                        "/array" => Bytes::from_static(b"[true]"),
                        // Larger than the 64 KiB cap, but valid JSON.
                        _ => Bytes::from(format!(
                            "{{\"active\":true,\"sub\":\"a\",\"pad\":\"{}\"}}",
                            "x".repeat(70 * 1024)
                        )),
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    for path in ["html", "array", "huge"] {
        let cfg = IntrospectionConfig::new(
            "t",
            format!("http://{addr}/{path}"),
            CLIENT_ID,
            CLIENT_SECRET,
        );
        let introspector = Introspector::new(cfg).unwrap();
        assert_eq!(
            introspector.authenticate("good-token").await.map(drop),
            Err(UNAVAILABLE),
            "{path}"
        );
    }
    server.abort();
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let server = AuthServer::start().await;
    let target = server.endpoint();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let redirector = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let target = target.clone();
            conns.spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let target = target.clone();
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(StatusCode::TEMPORARY_REDIRECT)
                                .header("location", target)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    let cfg = IntrospectionConfig::new("t", format!("http://{addr}/"), CLIENT_ID, CLIENT_SECRET);
    let introspector = Introspector::new(cfg).unwrap();
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        Err(UNAVAILABLE)
    );
    assert_eq!(server.requests(), 0);
    redirector.abort();
}

#[tokio::test]
async fn slow_endpoint_times_out() {
    let server = AuthServer::start().await;
    server.set_mode(Mode::Slow(Duration::from_secs(5)));
    let mut cfg = server.config();
    cfg.timeout = Duration::from_millis(300);
    let introspector = Introspector::new(cfg).unwrap();
    let started = Instant::now();
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        Err(UNAVAILABLE)
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_millis(800), "{took:?}");
}

#[tokio::test]
async fn wrong_client_secret_is_unavailable_and_logged_as_error() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let server = AuthServer::start().await;
    for auth in [ClientAuth::Basic, ClientAuth::Post] {
        let mut cfg = server.config();
        cfg.client_secret = "wrong-secret-value".into();
        cfg.auth = auth;
        let introspector = Introspector::new(cfg).unwrap();
        assert_eq!(
            introspector.authenticate("good-token").await.map(drop),
            Err(UNAVAILABLE),
            "{auth:?}"
        );
    }
    let events = capture.events();
    let errors: Vec<_> = events
        .iter()
        .filter(|(level, _)| *level == tracing::Level::ERROR)
        .collect();
    assert_eq!(errors.len(), 2, "{events:?}");
    assert!(errors[0].1.contains("status=401"), "{errors:?}");
    assert!(errors[0].1.contains("client credentials"), "{errors:?}");
    // Neither the token nor any secret ever reaches the logs.
    for (_, text) in &events {
        assert!(!text.contains("good-token"), "{text}");
        assert!(!text.contains("wrong-secret-value"), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
}

#[tokio::test]
async fn client_secret_post() {
    let server = AuthServer::start().await;
    let mut cfg = server.config();
    cfg.auth = ClientAuth::Post;
    let introspector = Introspector::new(cfg).unwrap();
    assert_eq!(
        introspector
            .authenticate("good-token")
            .await
            .unwrap()
            .principal,
        "alice"
    );
    assert_eq!(*server.state.seen_auth.lock().unwrap(), [SeenAuth::Post]);
    let form = server.state.seen_forms.lock().unwrap()[0].clone();
    assert!(form.contains(&("client_id".to_string(), CLIENT_ID.to_string())));
    assert!(form.contains(&("client_secret".to_string(), CLIENT_SECRET.to_string())));
}

#[tokio::test]
async fn token_is_form_encoded_intact() {
    let server = AuthServer::start().await;
    let odd = "a&b=c+d e%20f/g?h#i;j=é&token=other";
    server.add_token(odd, json!({"active": true, "sub": "frank"}));
    server.add_token("other", json!({"active": true, "sub": "wrong-one"}));
    let introspector = Introspector::new(server.config()).unwrap();
    assert_eq!(
        introspector.authenticate(odd).await.unwrap().principal,
        "frank"
    );
    let forms = server.state.seen_forms.lock().unwrap().clone();
    assert_eq!(forms[0][0], ("token".to_string(), odd.to_string()));
    assert_eq!(forms[0].len(), 2);
}

#[tokio::test]
async fn https_endpoint_with_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, generated.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![generated.cert.der().clone()], key)
        .unwrap();
    let server =
        AuthServer::start_with_tls(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_tls))))
            .await;
    let endpoint = format!("https://localhost:{}/oauth2/introspect", server.addr.port());

    let mut cfg = IntrospectionConfig::new("tls", endpoint.clone(), CLIENT_ID, CLIENT_SECRET);
    cfg.ca_pem = Some(ca_path);
    let introspector = Introspector::new(cfg).unwrap();
    assert_eq!(
        introspector
            .authenticate("good-token")
            .await
            .unwrap()
            .principal,
        "alice"
    );

    // A CA that did not sign the server's certificate: TLS fails, which fails closed.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other_path = dir.path().join("other.pem");
    std::fs::write(&other_path, other.cert.pem()).unwrap();
    let mut cfg = IntrospectionConfig::new("tls", endpoint, CLIENT_ID, CLIENT_SECRET);
    cfg.ca_pem = Some(other_path);
    let introspector = Introspector::new(cfg).unwrap();
    assert_eq!(
        introspector.authenticate("good-token").await.map(drop),
        Err(UNAVAILABLE)
    );
    assert_eq!(server.requests(), 1);
}

#[test]
fn plain_http_to_remote_host_is_refused() {
    for endpoint in [
        "http://as.example/introspect",
        "http://10.0.0.5:8080/introspect",
        "http://127.0.0.1.nip.io/introspect",
        "http://[2001:db8::1]/introspect",
    ] {
        let cfg = IntrospectionConfig::new("t", endpoint, CLIENT_ID, CLIENT_SECRET);
        assert!(
            matches!(
                Introspector::new(cfg),
                Err(IntrospectionError::InsecureEndpoint { .. })
            ),
            "{endpoint}"
        );
    }
    for endpoint in [
        "https://as.example/introspect",
        "http://127.0.0.1:9/introspect",
        "http://localhost:9/introspect",
        "http://[::1]:9/introspect",
    ] {
        let cfg = IntrospectionConfig::new("t", endpoint, CLIENT_ID, CLIENT_SECRET);
        Introspector::new(cfg).unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    }
}

#[test]
fn bad_configs_are_refused() {
    let base = || IntrospectionConfig::new("t", "https://as.example/i", CLIENT_ID, CLIENT_SECRET);
    let mut cfg = base();
    cfg.endpoint = "ftp://as.example/i".into();
    assert!(matches!(
        Introspector::new(cfg),
        Err(IntrospectionError::InvalidEndpoint { .. })
    ));
    let mut cfg = base();
    cfg.client_secret = String::new();
    assert!(matches!(
        Introspector::new(cfg),
        Err(IntrospectionError::InvalidConfig { .. })
    ));
    let mut cfg = base();
    cfg.timeout = Duration::ZERO;
    assert!(matches!(
        Introspector::new(cfg),
        Err(IntrospectionError::InvalidConfig { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for ca in [dir.path().join("missing.pem"), empty] {
        let mut cfg = base();
        cfg.ca_pem = Some(ca);
        assert!(matches!(
            Introspector::new(cfg),
            Err(IntrospectionError::Ca { .. })
        ));
    }
    // The secret never shows in Debug output.
    assert!(!format!("{:?}", base()).contains(CLIENT_SECRET));
}
