//! Exactly one event per request: under concurrency, for every kind of outcome (proxied,
//! refused by the gateway, masked upstream errors), with the request id the client saw and
//! the status the client saw; and one event, 499, for a client that leaves before the
//! upstream answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
limits:
  shutdown_grace: 3s
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: api
    upstream: app
    auth:
      public: true
    match: { path_prefix: /api }
    request:
      allowed_methods: [GET, POST]
      max_body: 64
  - name: status
    upstream: app
    auth:
      public: true
    match: { path_prefix: /status }
  - name: slow
    upstream: app
    auth:
      public: true
    match: { path_prefix: /slow }
events:
  file: {dir}/events.jsonl
  file_max_bytes: 1GiB
"#;

const TOTAL: usize = 10_000;
const CLIENTS: usize = 64;

/// Request `i` of the mix and the status it must get.
fn request(base: &str, i: usize) -> (Request<Full<Bytes>>, u16) {
    let b = Request::builder();
    let (req, status) = match i % 5 {
        0 => (b.uri(format!("{base}/api/ok/{i}")), 200),
        1 => (b.uri(format!("{base}/nowhere/{i}")), 404),
        2 => (b.method("DELETE").uri(format!("{base}/api/item/{i}")), 405),
        3 => {
            // Declared (and sent) body over the route's 64-byte limit.
            let req = b
                .method("POST")
                .uri(format!("{base}/api/upload/{i}"))
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(vec![b'z'; 200])))
                .unwrap();
            return (req, 413);
        }
        _ => (b.uri(format!("{base}/status/500?i={i}")), 500),
    };
    (req.body(Full::new(Bytes::new())).unwrap(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_per_request_under_concurrency() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(YAML, &up).await;
    let base = format!("http://{}", gw.addr(0));

    let next = Arc::new(AtomicUsize::new(0));
    let client = client();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, next, base) = (client.clone(), next.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            // (index, request id, status the client saw)
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= TOTAL {
                    return seen;
                }
                let (req, expected) = request(&base, i);
                let resp = client
                    .request(req)
                    .await
                    .unwrap_or_else(|e| panic!("request {i}: {e:?}"));
                let status = resp.status().as_u16();
                let id = resp
                    .headers()
                    .get("x-request-id")
                    .unwrap_or_else(|| panic!("request {i}: no x-request-id"))
                    .to_str()
                    .unwrap()
                    .to_string();
                resp.into_body().collect().await.unwrap();
                assert_eq!(status, expected, "request {i}");
                seen.push((i, id, status));
            }
        }));
    }
    let mut client_saw: HashMap<String, (usize, u16)> = HashMap::new();
    for t in tasks {
        for (i, id, status) in t.await.unwrap() {
            assert!(
                client_saw.insert(id.clone(), (i, status)).is_none(),
                "request id {id} given to two responses"
            );
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(client_saw.len(), TOTAL);
    drop(client);

    let events = gw.stop().await;
    assert_eq!(
        events.len(),
        TOTAL,
        "{} events for {TOTAL} requests ({elapsed:?})",
        events.len()
    );
    let mut uids = HashSet::new();
    let mut by_status: HashMap<u64, usize> = HashMap::new();
    for ev in &events {
        let uid = ev["metadata"]["uid"].as_str().unwrap();
        assert!(uids.insert(uid.to_string()), "two events for request {uid}");
        let (i, status) = client_saw
            .get(uid)
            .unwrap_or_else(|| panic!("event for a request no client saw: {ev:#}"));
        let code = ev["http_response"]["code"].as_u64().unwrap();
        assert_eq!(code, u64::from(*status), "request {i}: {ev:#}");
        assert_eq!(ev["http_request"]["uid"], uid);
        *by_status.entry(code).or_default() += 1;
    }
    assert_eq!(uids.len(), TOTAL);
    for code in [200, 404, 405, 413, 500] {
        assert_eq!(by_status[&code], TOTAL / 5, "status {code}: {by_status:?}");
    }
    // Only the allowed requests and the masked 500s reached the upstream.
    assert_eq!(up.count(), 2 * TOTAL / 5);
}

#[tokio::test]
async fn client_that_leaves_before_the_upstream_answers_yields_one_499_event() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(YAML, &up).await;

    let mut s = TcpStream::connect(gw.addr(0)).await.unwrap();
    s.write_all(b"GET /slow/1000 HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: gone-early\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);

    // The event appears once the gateway notices, well before the upstream would answer.
    let deadline = Instant::now() + Duration::from_millis(800);
    let mut events = Vec::new();
    while Instant::now() < deadline && events.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        events = read_events(&gw.events_path);
    }
    assert_eq!(events.len(), 1, "{events:#?}");
    // Let the upstream's answer time pass: still no second event.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let events = gw.stop().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let ev = &events[0];
    assert_eq!(ev["metadata"]["uid"], "gone-early");
    assert_eq!(ev["http_response"]["code"], 499);
    assert_eq!(ev["unmapped"]["reason"], "client_closed");
    assert_eq!(ev["unmapped"]["route"], "slow");
    let us = ev["unmapped"]["duration_us"].as_u64().unwrap();
    // The clock starts once the head is read, a little after the client wrote it, so the
    // duration can fall just short of the 100 ms the client waited: the bound only has to
    // tell "the client left" (about 100 ms) from "the upstream answered" (1 s).
    assert!(
        (50_000..900_000).contains(&us),
        "the request ended when the client left, not when the upstream answered: {us} µs"
    );
}
