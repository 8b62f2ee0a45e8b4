//! Response filters, end to end: what an upstream sends back is cleaned before the client
//! sees it — fingerprinting headers stripped, 5xx bodies (stack traces) masked, oversized
//! bodies refused or cut — and every response carries the security headers. Every error the
//! gateway makes itself is RFC 9457 problem+json that names no upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(3);

const FINGERPRINTS: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-runtime",
    "via",
];

/// Routes chosen by Host:
/// - any host: the defaults;
/// - `small.test`: responses limited to 1 KiB;
/// - `raw.test`: errors unmasked, its own strip list and security headers;
/// - `strict.test`: GET only, JSON bodies of at most 16 bytes;
/// - `down.test`: an upstream whose only target is a closed port.
const FILTERS: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
  down:
    targets: [http://127.0.0.1:{closed}]
    connect_timeout: 1s
routes:
  - name: default
    upstream: app
    auth:
      public: true
  - name: small
    upstream: app
    auth:
      public: true
    match: { hosts: [small.test] }
    response:
      max_body: 1KiB
  - name: raw
    upstream: app
    auth:
      public: true
    match: { hosts: [raw.test] }
    response:
      mask_upstream_errors: false
      strip_headers: [X-Runtime]
      security_headers:
        nosniff: false
        content_security_policy: "default-src 'self'"
        referrer_policy: ""
  - name: strict
    upstream: app
    auth:
      public: true
    match: { hosts: [strict.test] }
    request:
      max_body: 16
      allowed_methods: [GET, POST]
      allowed_content_types: [application/json]
  - name: down
    upstream: down
    auth:
      public: true
    match: { hosts: [down.test] }
events:
  file: {dir}/events.jsonl
"#;

struct Env {
    up: Upstream,
    gw: TestGateway,
    closed: u16,
}

async fn start() -> Env {
    let up = Upstream::start().await;
    let closed = closed_port().await;
    let gw = TestGateway::start(&FILTERS.replace("{closed}", &closed.to_string()), &up).await;
    Env { up, gw, closed }
}

fn req(method: &str, url: &str, host: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(url)
        .header("host", host)
}

async fn get_host(gw: &TestGateway, host: &str, path: &str) -> Got {
    send(
        req("GET", &gw.url(path), host)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

fn rid(got: &Got) -> String {
    got.header("x-request-id").unwrap().to_string()
}

fn reason(ev: &Value) -> &str {
    ev["unmapped"]["reason"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------- fingerprinting headers

#[tokio::test]
async fn fingerprinting_headers_are_stripped_by_default() {
    let env = start().await;
    let got = get_host(&env.gw, "api.test", "/status/200").await;
    assert_eq!(got.status, 200);
    for h in FINGERPRINTS {
        assert_eq!(got.header(h), None, "{h} must be stripped");
    }
    // The body of a successful response is the upstream's own.
    assert!(got.text().starts_with("Traceback"));
    // The echo path sets `Server: gunicorn/...`, which goes too.
    let got = get_host(&env.gw, "api.test", "/echo").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("server"), None);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(env.up.count(), 2);
}

#[tokio::test]
async fn a_configured_strip_list_replaces_the_default() {
    let env = start().await;
    let got = get_host(&env.gw, "raw.test", "/status/200").await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("x-runtime"),
        None,
        "listed (in any case) → stripped"
    );
    // The route's list replaces the default one, so the rest pass.
    assert_eq!(got.header("server"), Some("Apache/2.4.1 (Unix)"));
    assert_eq!(got.header("x-powered-by"), Some("PHP/5.6.40"));
    assert_eq!(got.header("x-aspnet-version"), Some("4.0.30319"));
    assert_eq!(got.header("via"), Some("1.1 internal-cache"));
}

// ---------------------------------------------------------------- masking upstream errors

#[tokio::test]
async fn upstream_5xx_bodies_are_replaced_by_a_problem_keeping_the_status() {
    let mut env = start().await;
    let mut ids = Vec::new();
    for code in [500u16, 502, 503, 504] {
        let got = get_host(&env.gw, "api.test", &format!("/status/{code}")).await;
        let doc = assert_problem(&got, code, "upstream_error");
        let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["request_id", "status", "title", "type"],
            "only type/title/status/request_id: {doc}"
        );
        let text = got.text();
        assert!(
            !text.contains("hunter2") && !text.contains("Traceback"),
            "{text}"
        );
        for h in FINGERPRINTS {
            assert_eq!(got.header(h), None, "{h} on a masked {code}");
        }
        ids.push((rid(&got), code));
    }
    assert_eq!(env.up.count(), 4, "the upstream did answer each request");

    let events = env.gw.stop().await;
    for (id, code) in &ids {
        let ev = event_by_id(&events, id);
        assert_eq!(ev["http_response"]["code"], *code);
        assert_eq!(reason(ev), "upstream_error_masked");
        let f = &ev["unmapped"]["findings"];
        assert_eq!(f.as_array().unwrap().len(), 1, "{ev}");
        assert_eq!(f[0]["id"], "upstream_error_masked");
        assert_eq!(f[0]["detail"], format!("upstream status {code}"));
        assert!(
            ev["unmapped"]["upstream"].is_string(),
            "the upstream was reached"
        );
    }
    let raw_file = std::fs::read_to_string(&env.gw.events_path).unwrap();
    assert!(!raw_file.contains("hunter2"));
}

#[tokio::test]
async fn client_errors_from_the_upstream_are_not_masked() {
    let env = start().await;
    let got = get_host(&env.gw, "api.test", "/status/404").await;
    assert_eq!(got.status, 404);
    assert_ne!(got.header("content-type"), Some("application/problem+json"));
    assert!(got.text().starts_with("Traceback"));
}

#[tokio::test]
async fn a_route_with_masking_off_passes_the_5xx_body_through() {
    let mut env = start().await;
    let got = get_host(&env.gw, "raw.test", "/status/500").await;
    assert_eq!(got.status, 500);
    assert_ne!(got.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        got.text(),
        "Traceback (most recent call last):\n  File \"/srv/app.py\", line 1\nSecretError: db password=hunter2"
    );
    let id = rid(&got);
    let events = env.gw.stop().await;
    let ev = event_by_id(&events, &id);
    assert_eq!(ev["http_response"]["code"], 500);
    assert!(findings(ev).is_empty(), "{ev}");
    assert_eq!(ev["action"], "Allowed");
}

// ---------------------------------------------------------------- response size

#[tokio::test]
async fn a_declared_response_over_the_limit_is_502() {
    let mut env = start().await;
    let at = get_host(&env.gw, "small.test", "/bytes/1024").await;
    assert_eq!(at.status, 200);
    assert_eq!(at.body.len(), 1024);

    let got = get_host(&env.gw, "small.test", "/bytes/1025").await;
    let doc = assert_problem(&got, 502, "response_too_large");
    assert!(doc.get("detail").is_none(), "{doc}");
    assert_eq!(got.body.len(), got.text().len());
    assert!(!got.text().contains("xxxx"));
    assert_eq!(env.up.count(), 2);

    let id = rid(&got);
    let events = env.gw.stop().await;
    let ev = event_by_id(&events, &id);
    assert_eq!(ev["http_response"]["code"], 502);
    assert_eq!(ev["action"], "Denied");
    assert_eq!(reason(ev), "response_too_large");
    assert_eq!(findings(ev), vec![("response_too_large".to_string(), None)]);
    assert_eq!(ev["unmapped"]["findings"][0]["kind"], "response");
}

/// Read a response body frame by frame: the bytes that arrived, and whether it ended in an
/// error rather than cleanly.
async fn read_body(resp: http::Response<hyper::body::Incoming>) -> (usize, bool) {
    let mut body = resp.into_body();
    let mut total = 0;
    loop {
        match tokio::time::timeout(WAIT, body.frame()).await {
            Err(_) => panic!("the body neither ended nor failed"),
            Ok(None) => return (total, false),
            Ok(Some(Err(_))) => return (total, true),
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    total += d.len();
                }
            }
        }
    }
}

#[tokio::test]
async fn a_streamed_response_over_the_limit_is_cut() {
    let mut env = start().await;
    let resp = client()
        .request(
            req("GET", &env.gw.url("/stream/8192"), "small.test")
                .header("x-request-id", "cut-1")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    // The head went out before the size was known...
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("content-length"), None);
    // ...so the body is cut: the client sees an error, and never more than the limit.
    let (received, failed) = read_body(resp).await;
    assert!(failed, "the client must see an incomplete body");
    assert!(
        received <= 1024,
        "received {received} bytes past a 1 KiB limit"
    );

    // Under the limit, a stream arrives whole.
    let resp = client()
        .request(
            req("GET", &env.gw.url("/stream/1000"), "small.test")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(read_body(resp).await, (1000, false));

    let events = env.gw.stop().await;
    let ev = event_by_id(&events, "cut-1");
    assert_eq!(ev["http_response"]["code"], 200);
    assert_eq!(ev["action"], "Denied");
    assert_eq!(reason(ev), "response_too_large");
    assert_eq!(findings(ev), vec![("response_too_large".to_string(), None)]);
    assert!(ev["http_response"]["length"].as_u64().unwrap() <= 1024);
}

// ---------------------------------------------------------------- security headers

fn assert_default_security_headers(got: &Got, what: &str) {
    assert_eq!(
        got.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        got.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'"),
        "{what}"
    );
    assert_eq!(got.header("referrer-policy"), Some("no-referrer"), "{what}");
    // Plain HTTP: no HSTS.
    assert_eq!(got.header("strict-transport-security"), None, "{what}");
}

#[tokio::test]
async fn security_headers_are_on_every_response_by_default() {
    let env = start().await;
    let proxied = get_host(&env.gw, "api.test", "/echo").await;
    assert_eq!(proxied.status, 200);
    assert_default_security_headers(&proxied, "proxied 200");
    let masked = get_host(&env.gw, "api.test", "/status/500").await;
    assert_default_security_headers(&masked, "masked 500");
    let refused = get_host(&env.gw, "api.test", "/a/../b").await;
    assert_eq!(refused.status, 400);
    assert_default_security_headers(&refused, "gateway 400");
}

#[tokio::test]
async fn security_headers_are_configurable_per_route() {
    let env = start().await;
    let got = get_host(&env.gw, "raw.test", "/echo").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("x-content-type-options"), None, "nosniff: false");
    assert_eq!(
        got.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(
        got.header("referrer-policy"),
        None,
        "empty string turns it off"
    );
    // Other routes keep the defaults.
    assert_default_security_headers(&get_host(&env.gw, "api.test", "/echo").await, "api");
}

#[tokio::test]
async fn security_header_defaults_apply_to_routes_and_to_answers_without_a_route() {
    let up = Upstream::start().await;
    let yaml = r#"
listeners:
  - address: 127.0.0.1:0
defaults:
  response:
    security_headers:
      content_security_policy: "default-src 'none'; sandbox"
      referrer_policy: same-origin
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: api
    upstream: app
    auth:
      public: true
    match: { path_prefix: /api }
events:
  file: {dir}/events.jsonl
"#;
    let gw = TestGateway::start(yaml, &up).await;
    for (path, status) in [("/api/x", 200), ("/nowhere", 404)] {
        let got = get(&gw.url(path)).await;
        assert_eq!(got.status, status);
        assert_eq!(
            got.header("content-security-policy"),
            Some("default-src 'none'; sandbox"),
            "{path}"
        );
        assert_eq!(got.header("referrer-policy"), Some("same-origin"), "{path}");
        assert_eq!(
            got.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------- gateway-made errors

fn assert_names_no_upstream(got: &Got, env: &Env) {
    let up_port = env.up.addr.port().to_string();
    let closed = env.closed.to_string();
    // The request id is random hex, which may happen to contain a port's digits.
    let rid = rid(got);
    let mut everything = got.text().replace(&rid, "");
    for (k, v) in &got.headers {
        if k != "x-request-id" {
            everything.push_str(&format!("\n{k}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
    }
    for needle in [
        up_port.as_str(),
        closed.as_str(),
        "127.0.0.1",
        "upstream `",
        "down",
    ] {
        assert!(
            !everything.contains(needle),
            "a gateway error names `{needle}`:\n{everything}"
        );
    }
}

#[tokio::test]
async fn every_gateway_made_error_is_a_problem_naming_no_upstream() {
    let mut env = start().await;
    let json = |method: &str, host: &str, path: &str, ct: &str, body: &'static [u8]| {
        req(method, &env.gw.url(path), host)
            .header("content-type", ct)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    let cases: Vec<(Got, u16, &str)> = vec![
        (
            send(json("DELETE", "strict.test", "/x", "application/json", b"")).await,
            405,
            "method_not_allowed",
        ),
        (
            send(json(
                "POST",
                "strict.test",
                "/x",
                "application/json",
                b"{\"a\":\"0123456789\"}",
            ))
            .await,
            413,
            "body_too_large",
        ),
        (
            send(json("POST", "strict.test", "/x", "text/plain", b"hi")).await,
            415,
            "unsupported_media_type",
        ),
        (
            get_host(&env.gw, "api.test", "/x?api_key=abc").await,
            400,
            "credential_in_url",
        ),
        (
            get_host(&env.gw, "api.test", "/a/%2e%2e/b").await,
            400,
            "ambiguous_path",
        ),
        (
            get_host(&env.gw, "down.test", "/x").await,
            502,
            "upstream_unavailable",
        ),
    ];
    let mut ids = Vec::new();
    for (got, status, reason_code) in &cases {
        assert_problem(got, *status, reason_code);
        assert_names_no_upstream(got, &env);
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
        ids.push((rid(got), *status, *reason_code));
    }
    assert_eq!(env.up.count(), 0, "none of these reached the upstream");

    let events = env.gw.stop().await;
    for (id, status, reason_code) in &ids {
        let ev = event_by_id(&events, id);
        assert_eq!(ev["http_response"]["code"], *status);
        assert_eq!(reason(ev), *reason_code);
        assert_eq!(ev["action"], "Denied");
    }
    // The event (not the client) may say which target failed.
    let down = event_by_id(&events, &ids[5].0);
    assert_eq!(
        down["unmapped"]["upstream"],
        format!("127.0.0.1:{}", env.closed)
    );
}

#[tokio::test]
async fn not_found_and_framing_errors_are_problems_too() {
    let up = Upstream::start().await;
    let yaml = BASIC.replace(
        "    upstream: app\n",
        "    upstream: app\n    match: { path_prefix: /api }\n",
    );
    let gw = TestGateway::start(&yaml, &up).await;
    let got = get(&gw.url("/elsewhere")).await;
    let doc = assert_problem(&got, 404, "no_route");
    assert_eq!(doc["request_id"].as_str().unwrap().len(), 32);
    assert!(!got.text().contains(&up.addr.port().to_string()));

    // A request the framing reader refuses (no Host in HTTP/1.1).
    let raw = raw_exchange(gw.addr(0), b"GET /api/x HTTP/1.1\r\n\r\n", WAIT).await;
    let doc = assert_raw_problem(&raw, 400, "invalid_framing");
    assert_eq!(doc["detail"], "the request is malformed (missing_host)");
    assert_eq!(raw.header("x-content-type-options"), Some("nosniff"));
    assert!(!raw.text.contains(&up.addr.port().to_string()));
    assert_eq!(up.count(), 0);
}
