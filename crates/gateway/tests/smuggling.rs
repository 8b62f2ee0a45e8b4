//! Request smuggling defences, end to end over raw sockets: requests whose framing two HTTP
//! implementations could read differently are refused with 400 and never reach the upstream.
//!
//! Part of the corpus replayed here comes from the test suite of llhttp, Node.js's HTTP parser
//! (MIT licence), as collected in `../shared/corpora/http1/llhttp_request_cases.jsonl`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

/// Classic desync vectors, each a complete request with a Host header.
const VECTORS: &[(&str, &[u8])] = &[
    (
        "CL.TE",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    ),
    (
        "TE.CL",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
    ),
    (
        "duplicate equal Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    ),
    (
        "duplicate different Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
    ),
    (
        "Content-Length list",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    ),
    (
        "signed Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    ),
    (
        "TE obfuscated with a tab",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE not chunked",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    ),
    (
        "TE chunked, then identity",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    ),
    (
        "space before colon",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "obs-fold",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
    ),
    (
        "bare LF in the head",
        b"GET / HTTP/1.1\nHost: a\n\n",
    ),
    (
        "bare LF between headers",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "bare CR",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n",
    ),
    (
        "invalid chunk size",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "chunk size overflow",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "chunk data not terminated by CRLF",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    ),
    (
        "TE in HTTP/1.0",
        b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "two Host headers",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ),
    (
        "no Host in HTTP/1.1",
        b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
    ),
    (
        "control character in a header value",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x0b2\r\n\r\n",
    ),
];

#[tokio::test]
async fn desync_vectors_are_refused_and_never_forwarded() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(BASIC, &up).await;
    for (name, bytes) in VECTORS {
        let before = up.count();
        let resp = raw(gw.addr(0), bytes, Duration::from_secs(2)).await;
        let status_line = resp.lines().next().unwrap_or("");
        assert!(
            status_line.starts_with("HTTP/1.1 400"),
            "{name}: expected 400, got {status_line:?}"
        );
        assert!(
            resp.contains("application/problem+json") && resp.contains("invalid_framing"),
            "{name}: refusal must be a problem document: {resp}"
        );
        assert_eq!(up.count(), before, "{name}: reached the upstream");
    }
    let events = gw.stop().await;
    assert_eq!(events.len(), VECTORS.len(), "one event per refused request");
    for ev in &events {
        assert_eq!(ev["action"], "Denied");
        assert_eq!(ev["unmapped"]["reason"], "invalid_framing");
        assert_eq!(ev["http_response"]["code"], 400);
    }
}

#[tokio::test]
async fn limits_on_the_head_answer_414_and_431() {
    let up = Upstream::start().await;
    let yaml = format!(
        "{BASIC}limits:\n  max_url_length: 64\n  max_headers: 5\n  max_header_bytes: 2048\n"
    );
    let gw = TestGateway::start(&yaml, &up).await;
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100));
    assert!(
        raw(gw.addr(0), long.as_bytes(), Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 414")
    );
    let many: String = (0..10).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert!(
        raw(gw.addr(0), req.as_bytes(), Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 431")
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(4000)
    );
    assert!(
        raw(gw.addr(0), big.as_bytes(), Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 431")
    );
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn a_smuggled_second_request_never_reaches_the_upstream() {
    // A valid request followed on the same connection by an invalid one: the first is served,
    // the second refused, and nothing after the refusal is read.
    let up = Upstream::start().await;
    let gw = TestGateway::start(BASIC, &up).await;
    let bytes = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nPOST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /evil HTTP/1.1\r\nHost: a\r\n\r\n";
    let resp = raw(gw.addr(0), bytes, Duration::from_secs(2)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("HTTP/1.1 400"), "{resp}");
    let paths: Vec<String> = up.seen().iter().map(|s| s.path_and_query.clone()).collect();
    assert_eq!(paths, vec!["/first".to_string()]);
}

#[tokio::test]
async fn valid_chunked_and_pipelined_requests_still_work() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(BASIC, &up).await;
    let bytes = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let resp = raw(gw.addr(0), bytes, Duration::from_secs(2)).await;
    assert_eq!(resp.matches("HTTP/1.1 200").count(), 2, "{resp}");
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, b"hello");
    assert_eq!(seen[1].path_and_query, "/b");
}

fn b64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// Replays every strict-parser error case of the llhttp corpus through the gateway: no case
/// may end in a success, and nothing written after the bad bytes may reach the upstream.
#[tokio::test]
async fn llhttp_error_cases_end_in_refusal_through_the_gateway() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/http1/llhttp_request_cases.jsonl"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the llhttp corpus is required at {path}: {e}"));
    let up = Upstream::start().await;
    let gw = TestGateway::start(BASIC, &up).await;
    let mut replayed = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        if case["expect"] != "error" {
            continue;
        }
        let title = case["title"].as_str().unwrap_or("");
        let bytes = b64(case["raw_b64"].as_str().unwrap());
        let before = up.count();
        let resp = raw(gw.addr(0), &bytes, Duration::from_millis(1500)).await;
        // Status lines may follow a body directly, so look for them anywhere.
        let last_status = resp
            .match_indices("HTTP/1.")
            .last()
            .map(|(i, _)| resp[i..].chars().take(12).collect::<String>());
        // Two cases are valid requests followed by bytes after the connection was closed;
        // the request is served and what follows is discarded unread (RFC 9112 §9.6).
        let served_then_closed = [
            "No restart when keep-alive is off (1.0)",
            "CRLF between requests, explicit `close`",
        ];
        if let Some(status) = &last_status
            && !served_then_closed.contains(&title)
        {
            assert!(
                !status[9..].starts_with('2'),
                "{title}: an invalid stream ended in success: {resp}"
            );
        }
        // Whatever valid request preceded the error may be forwarded; nothing smuggled may.
        for s in &up.seen()[before..] {
            assert!(
                !s.path_and_query.contains("evil") && !s.path_and_query.contains("bye"),
                "{title}: a smuggled request reached the upstream: {s:?}"
            );
        }
        replayed += 1;
    }
    assert!(
        replayed >= 50,
        "expected the corpus's error cases, replayed {replayed}"
    );
}
