//! CORS, end to end: the gateway alone decides which origins may read an API from a browser.
//! Preflights are answered by the gateway against an explicit allow-list (never `*`), actual
//! responses carry `Access-Control-Allow-Origin` only for listed origins, and an upstream's
//! own CORS headers (here a wildcard) never reach the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";

/// `/api`: one allowed origin, with credentials. `/public`: two origins, no credentials,
/// no max-age. `/plain`: no CORS policy at all.
const CORS: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: api
    upstream: app
    auth:
      public: true
    match: { path_prefix: /api }
    cors:
      allow_origins: [https://app.example.com]
      allow_methods: [GET, POST, PUT]
      allow_headers: [Content-Type, X-Api-Version]
      expose_headers: [X-Request-Id]
      allow_credentials: true
      max_age: 600
  - name: public
    upstream: app
    auth:
      public: true
    match: { path_prefix: /public }
    cors:
      allow_origins: ["https://a.example.com", "http://localhost:3000"]
      allow_methods: [GET]
  - name: plain
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;

fn preflight(url: &str, origin: &str, method: &str, headers: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::options(url)
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        b = b.header("access-control-request-headers", h);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

fn with_origin(url: &str, origin: &str) -> Request<Full<Bytes>> {
    Request::get(url)
        .header("origin", origin)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn all(got: &Got, name: &str) -> Vec<String> {
    got.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn assert_no_cors_grant(got: &Got, what: &str) {
    for h in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
    ] {
        assert_eq!(got.header(h), None, "{what}: {h} must be absent");
    }
}

fn reason(ev: &Value) -> &str {
    ev["unmapped"]["reason"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------- preflight

#[tokio::test]
async fn preflight_from_an_allowed_origin_is_answered_by_the_gateway() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(CORS, &up).await;
    let got = send(preflight(
        &gw.url("/api/items"),
        APP,
        "PUT",
        Some("content-type, X-API-Version"),
    ))
    .await;
    assert_eq!(got.status, 204);
    assert!(got.body.is_empty());
    assert_eq!(all(&got, "access-control-allow-origin"), vec![APP]);
    assert_eq!(
        got.header("access-control-allow-methods"),
        Some("GET, POST, PUT")
    );
    assert_eq!(
        got.header("access-control-allow-headers"),
        Some("content-type, x-api-version")
    );
    assert_eq!(got.header("access-control-max-age"), Some("600"));
    assert_eq!(got.header("access-control-allow-credentials"), Some("true"));
    assert!(
        all(&got, "vary").iter().any(|v| v == "Origin"),
        "{:?}",
        got.headers
    );
    assert_eq!(up.count(), 0, "preflights are not forwarded");

    let id = got.header("x-request-id").unwrap().to_string();
    let events = gw.stop().await;
    let ev = event_by_id(&events, &id);
    assert_eq!(ev["http_response"]["code"], 204);
    assert_eq!(ev["action"], "Allowed");
    assert_eq!(ev["unmapped"]["route"], "api");
}

#[tokio::test]
async fn preflight_echoes_the_exact_origin_never_a_wildcard() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS, &up).await;
    for origin in ["https://a.example.com", "http://localhost:3000"] {
        let got = send(preflight(&gw.url("/public/x"), origin, "GET", None)).await;
        assert_eq!(got.status, 204, "{origin}");
        assert_eq!(all(&got, "access-control-allow-origin"), vec![origin]);
        assert_eq!(got.header("access-control-allow-methods"), Some("GET"));
        // Not configured → not sent.
        assert_eq!(got.header("access-control-allow-credentials"), None);
        assert_eq!(got.header("access-control-max-age"), None);
        assert_eq!(got.header("access-control-allow-headers"), None);
    }
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn preflight_from_another_origin_is_403_without_cors_headers() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(CORS, &up).await;
    for origin in [
        EVIL,
        "null",
        "https://app.example.com.evil.net",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://a.example.com",
    ] {
        let got = send(preflight(&gw.url("/api/items"), origin, "GET", None)).await;
        let doc = assert_problem(&got, 403, "cors_denied");
        assert_eq!(
            doc["detail"],
            "the CORS preflight is not allowed for this origin, method or headers"
        );
        assert_no_cors_grant(&got, origin);
    }
    assert_eq!(up.count(), 0);
    let events = gw.stop().await;
    assert_eq!(events.len(), 6);
    assert!(
        events
            .iter()
            .all(|e| reason(e) == "cors_denied" && e["action"] == "Denied")
    );
}

#[tokio::test]
async fn preflight_for_a_disallowed_method_or_header_is_403_without_cors_headers() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS, &up).await;
    let cases = [
        ("DELETE", None),
        ("PATCH", Some("content-type")),
        ("POST", Some("content-type, authorization")),
        ("GET", Some("x-api-version, x-admin")),
    ];
    for (method, headers) in cases {
        let got = send(preflight(&gw.url("/api/items"), APP, method, headers)).await;
        assert_problem(&got, 403, "cors_denied");
        assert_no_cors_grant(&got, &format!("{method} {headers:?}"));
        assert!(all(&got, "vary").iter().any(|v| v == "Origin"));
    }
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn options_without_a_request_method_is_not_a_preflight() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS, &up).await;
    let got = send(
        Request::options(gw.url("/api/items"))
            .header("origin", APP)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(up.count(), 1);
    assert_eq!(up.seen()[0].method, "OPTIONS");
    assert_eq!(all(&got, "access-control-allow-origin"), vec![APP]);
}

// ---------------------------------------------------------------- actual requests

#[tokio::test]
async fn actual_request_from_an_allowed_origin_gets_its_origin_not_the_upstreams_wildcard() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS, &up).await;
    let got = send(with_origin(&gw.url("/api/x"), APP)).await;
    assert_eq!(got.status, 200);
    assert_eq!(all(&got, "access-control-allow-origin"), vec![APP]);
    assert_eq!(got.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        got.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert!(all(&got, "vary").iter().any(|v| v == "Origin"));
    // Actual responses are not preflights.
    assert_eq!(got.header("access-control-allow-methods"), None);
    assert_eq!(got.header("access-control-max-age"), None);
    // The origin went upstream untouched.
    assert_eq!(up.seen()[0].header("origin"), Some(APP));
}

/// A gateway whose CORS route sits at `/` so the harness's `/status/200` (which answers
/// `Access-Control-Allow-Origin: *`) is reachable through it.
const CORS_ROOT: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: api
    upstream: app
    auth:
      public: true
    cors:
      allow_origins: [https://app.example.com]
      allow_methods: [GET]
events:
  file: {dir}/events.jsonl
"#;

#[tokio::test]
async fn upstream_wildcard_is_replaced_for_an_allowed_origin_and_dropped_for_others() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS_ROOT, &up).await;
    let got = send(with_origin(&gw.url("/status/200"), APP)).await;
    assert_eq!(got.status, 200);
    assert_eq!(all(&got, "access-control-allow-origin"), vec![APP]);
    assert_eq!(got.header("access-control-allow-credentials"), None);

    let got = send(with_origin(&gw.url("/status/200"), EVIL)).await;
    assert_eq!(got.status, 200, "the request itself is served...");
    assert_no_cors_grant(&got, "disallowed origin");
    assert!(all(&got, "vary").iter().any(|v| v == "Origin"));

    let got = get(&gw.url("/status/200")).await;
    assert_no_cors_grant(&got, "no Origin");
    assert_eq!(up.count(), 3);
}

#[tokio::test]
async fn upstream_cors_headers_never_pass_on_routes_without_cors() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS, &up).await;
    let got = send(with_origin(&gw.url("/status/200"), EVIL)).await;
    assert_eq!(got.status, 200);
    assert_no_cors_grant(&got, "route without CORS");
    // No policy → a preflight is just an OPTIONS for the upstream.
    let got = send(preflight(&gw.url("/status/204"), EVIL, "GET", None)).await;
    assert_eq!(got.status, 204);
    assert_no_cors_grant(&got, "forwarded OPTIONS");
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn gateway_errors_on_a_cors_route_are_readable_by_allowed_origins_only() {
    // A refusal on a CORS route (here a credential in the URL) carries the grant for a
    // listed origin, so the calling page can read the problem, and nothing for others.
    let up = Upstream::start().await;
    let gw = TestGateway::start(CORS, &up).await;
    let got = send(with_origin(&gw.url("/api/x?token=abc"), APP)).await;
    assert_problem(&got, 400, "credential_in_url");
    assert_eq!(all(&got, "access-control-allow-origin"), vec![APP]);
    let got = send(with_origin(&gw.url("/api/x?token=abc"), EVIL)).await;
    assert_problem(&got, 400, "credential_in_url");
    assert_no_cors_grant(&got, "error for another origin");
    assert_eq!(up.count(), 0);
}

// ---------------------------------------------------------------- configuration

fn parse_errors(yaml: &str) -> portcullis_gateway::config::ConfigErrors {
    portcullis_gateway::config::parse(Path::new("cors.yaml"), yaml)
        .expect_err("config must be refused")
}

#[test]
fn config_refuses_a_wildcard_origin_naming_the_field() {
    let yaml = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [http://127.0.0.1:9]
routes:
  - name: ok
    upstream: app
    auth:
      public: true
    match: { path_prefix: /ok }
  - name: api
    upstream: app
    auth:
      public: true
    cors:
      allow_origins: ["https://app.example.com", "*"]
      allow_methods: [GET]
      allow_credentials: true
"#;
    let errs = parse_errors(yaml);
    assert_eq!(errs.0.len(), 1, "{errs}");
    let e = &errs.0[0];
    assert_eq!(e.field, "routes[1].cors.allow_origins[1]");
    assert_eq!(e.message, "`*` is not allowed: list each origin");
    assert_eq!(e.line, 18, "{errs}");
    let text = errs.to_string();
    assert!(
        text.starts_with("cors.yaml:18:") && text.contains("routes[1].cors.allow_origins[1]: "),
        "{text}"
    );
}

#[test]
fn config_refuses_other_unsafe_cors_settings() {
    let base = |cors: &str| {
        format!(
            "listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n    targets: [http://127.0.0.1:9]\nroutes:\n  - name: api\n    upstream: app\n    auth:\n      public: true\n    cors:\n{cors}"
        )
    };
    let cases = [
        ("      allow_origins: []\n", "routes[0].cors.allow_origins"),
        (
            "      allow_origins: [app.example.com]\n",
            "routes[0].cors.allow_origins[0]",
        ),
        (
            "      allow_origins: [\"https://app.example.com/path\"]\n",
            "routes[0].cors.allow_origins[0]",
        ),
        (
            "      allow_origins: [https://a.example.com]\n      allow_headers: [\"*\"]\n",
            "routes[0].cors.allow_headers[0]",
        ),
    ];
    for (cors, field) in cases {
        let errs = parse_errors(&base(cors));
        assert!(
            errs.0.iter().any(|e| e.field == field),
            "{field} not named in:\n{errs}"
        );
    }
}
