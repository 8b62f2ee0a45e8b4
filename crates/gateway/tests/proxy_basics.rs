//! End-to-end basics of the proxy: a request goes through, the upstream sees the forwarding
//! headers, hop-by-hop headers stop at the gateway, and the request id round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;

#[tokio::test]
async fn request_is_proxied_with_forwarding_headers() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(BASIC, &up).await;
    let got = send(
        Request::get(gw.url("/hello?x=1"))
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "secret-hop")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-request-id", "trace-123")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("x-request-id"), Some("trace-123"));
    assert_eq!(
        got.header("server"),
        None,
        "fingerprinting header must be stripped"
    );
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.path_and_query, "/hello?x=1");
    assert_eq!(
        s.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "untrusted XFF replaced"
    );
    assert_eq!(s.header("x-forwarded-proto"), Some("http"));
    assert_eq!(s.header("x-request-id"), Some("trace-123"));
    assert!(
        s.header("forwarded")
            .unwrap()
            .starts_with("for=127.0.0.1;proto=http;host=")
    );
    assert_eq!(
        s.header("x-hop"),
        None,
        "headers named in Connection are hop-by-hop"
    );
    let events = gw.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["http_response"]["code"], 200);
}

#[tokio::test]
async fn unknown_path_is_404_problem_with_request_id() {
    let up = Upstream::start().await;
    let yaml = BASIC.replace(
        "    upstream: app\n",
        "    upstream: app\n    match: { path_prefix: /api }\n",
    );
    let mut gw = TestGateway::start(&yaml, &up).await;
    let got = get(&gw.url("/other")).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.header("content-type"), Some("application/problem+json"));
    let doc = got.json();
    assert_eq!(doc["status"], 404);
    assert_eq!(doc["request_id"].as_str(), got.header("x-request-id"));
    assert_eq!(up.count(), 0);
    let events = gw.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "Denied");
}
