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

#[tokio::test]
async fn http10_upstream_answer_reaches_an_http11_client_as_http11_on_a_kept_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An HTTP/1.0 upstream (like Python's http.server) that answers and closes.
    let old = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let old_addr = old.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = old.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let up = Upstream::start().await;
    let yaml = BASIC.replace("{upstream}", &format!("http://{old_addr}"));
    let mut gw = TestGateway::start(&yaml, &up).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr(0)).await.unwrap();
    for i in 0..2 {
        s.write_all(format!("GET /old/{i} HTTP/1.1\r\nHost: a.test\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let r = read_one_response(&mut s, std::time::Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no answer to request {i} on the same connection"));
        assert_eq!(r.status, 200);
        assert!(r.text.starts_with("HTTP/1.1 200"), "{}", r.text);
        assert_eq!(r.body, b"ok");
    }
    gw.stop().await;
}
