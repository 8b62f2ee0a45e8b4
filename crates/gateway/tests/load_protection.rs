//! Load protection end to end: a real gateway and upstream, and clients on raw sockets that
//! hold connections open, trickle bytes, or pile onto a slow route.
//!
//! Covered: `limits.max_connections_per_ip` closes the connection beyond the cap at accept
//! while the ones within it keep being served (and a freed slot is reusable); a route's
//! `max_in_flight` sheds the excess with 503 `overloaded` at once instead of queueing it
//! behind a slow upstream; hundreds of slowloris connections and slow request bodies do not
//! slow a normal client down; `limits.min_body_rate` cuts off a body trickled far below the
//! rate once its grace period is over, and the upstream never receives it complete.
//!
//! The latency-sensitive tests take one lock so they do not measure each other; the
//! body-rate test, which mostly waits, runs beside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMIN_TOKEN: &str = "load-admin-token";

/// `{limits}` is replaced by the body of the `limits:` section.
const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
limits:
{limits}
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: slow
    upstream: app
    match:
      path_prefix: /slow
    auth:
      public: true
    max_in_flight: 2
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
admin:
  address: 127.0.0.1:0
  token: load-admin-token
"#;

async fn gateway(limits: &str, up: &Upstream) -> TestGateway {
    TestGateway::start(&YAML.replace("{limits}", limits), up).await
}

const GET_HEAD: &[u8] = b"GET /fast HTTP/1.1\r\nhost: gw.test\r\n\r\n";

/// Connect, send `GET_HEAD`, and read. `Some(bytes)` when the server closed the connection
/// within 2 s (bytes = whatever it sent), `None` when it was still open.
async fn exchange_until_closed(addr: SocketAddr) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may already have closed: a failed write is part of the answer.
    let _ = s.write_all(GET_HEAD).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| out)
}

/// One keep-alive request on an open connection: its status.
async fn request_on(s: &mut TcpStream) -> Option<u16> {
    s.write_all(GET_HEAD).await.ok()?;
    read_one_response(s, Duration::from_secs(3))
        .await
        .map(|r| r.status)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_ip_cap_are_closed_at_accept() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let mut gw = gateway("  max_connections_per_ip: 20", &up).await;
    let addr = gw.addr(0);

    // Twenty connections from this address, each served and kept open.
    let mut open = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(request_on(&mut s).await, Some(200), "connection {i}");
        open.push(s);
    }

    // The 21st is closed at once, without a byte.
    let started = Instant::now();
    let got = exchange_until_closed(addr).await;
    let took = started.elapsed();
    assert_eq!(
        got.as_deref().map(String::from_utf8_lossy),
        Some("".into()),
        "the 21st connection is closed without an answer"
    );
    assert!(took < Duration::from_millis(500), "closed after {took:?}");

    // The twenty are still served.
    for (i, s) in open.iter_mut().enumerate() {
        assert_eq!(
            request_on(s).await,
            Some(200),
            "connection {i} after the cap"
        );
    }

    // A slot freed is a slot again (once the gateway has seen the close).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if request_on(&mut s).await == Some(200) {
            open.push(s);
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = admin_request(gw.admin(), "GET", "/metrics", Some(ADMIN_TOKEN)).await;
    assert!(
        !metrics
            .text()
            .contains("portcullis_connections_refused_total 0"),
        "{}",
        metrics.text()
    );
    drop(open);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_sheds_the_excess_with_503_at_once() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let mut gw = gateway("  max_connections_per_ip: 100", &up).await;
    let url = gw.url("/slow/500");

    // Five at once on a route that allows two in flight, each on its own connection.
    let start = Arc::new(tokio::sync::Barrier::new(5));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let url = url.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let began = Instant::now();
            let got = get(&url).await;
            (got, began.elapsed())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let served: Vec<_> = results.iter().filter(|(g, _)| g.status == 200).collect();
    let shed: Vec<_> = results.iter().filter(|(g, _)| g.status == 503).collect();
    assert_eq!(
        (served.len(), shed.len()),
        (2, 3),
        "{:?}",
        results
            .iter()
            .map(|(g, d)| (g.status, *d))
            .collect::<Vec<_>>()
    );
    for (got, took) in &served {
        assert_eq!(got.json()["slow"], true);
        assert!(*took >= Duration::from_millis(500), "{took:?}");
    }
    for (got, took) in &shed {
        assert_problem(got, 503, "overloaded");
        assert_eq!(got.header("retry-after"), Some("1"));
        assert!(
            *took < Duration::from_millis(250),
            "shed after {took:?}: a refusal must not wait for the slow upstream"
        );
    }
    assert_eq!(up.count(), 2, "shed requests never reach the upstream");

    // The permits are returned with the responses.
    let again = get(&gw.url("/slow/10")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    // Other routes are not limited.
    assert_eq!(get(&gw.url("/fast")).await.status, 200);

    let metrics = admin_request(gw.admin(), "GET", "/metrics", Some(ADMIN_TOKEN)).await;
    assert!(
        metrics
            .text()
            .contains(r#"portcullis_protection_actions_total{action="overloaded"} 3"#),
        "{}",
        metrics.text()
    );
    let events = gw.stop().await;
    for (got, _) in &shed {
        let ev = event_by_id(&events, got.header("x-request-id").unwrap());
        assert_eq!(ev["unmapped"]["reason"], "overloaded", "{ev}");
        assert_eq!(ev["unmapped"]["route"], "slow", "{ev}");
    }
}

/// A request head that never ends, and a POST head promising a body that never ends.
const SLOW_HEAD: &[u8] =
    b"GET /slowloris HTTP/1.1\r\nHost: slow.test\r\nUser-Agent: slowloris\r\nX-Padding: aaaaaaaa";
const BODY_HEAD: &[u8] =
    b"POST /upload HTTP/1.1\r\nhost: slow.test\r\ncontent-length: 100000\r\n\r\n";

/// Connect and send `head` (all at once when `head_at_once`, else byte by byte), then one
/// byte every `gap`, until aborted or the server closes; `alive` counts connected clients.
async fn slow_client(
    addr: SocketAddr,
    head: &'static [u8],
    head_at_once: bool,
    gap: Duration,
    alive: Arc<AtomicUsize>,
) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    alive.fetch_add(1, Ordering::SeqCst);
    let mut bytes: Box<dyn Iterator<Item = Vec<u8>> + Send> = if head_at_once {
        Box::new(std::iter::once(head.to_vec()).chain(std::iter::repeat(b"x".to_vec())))
    } else {
        Box::new(head.iter().map(|b| vec![*b]))
    };
    loop {
        let Some(chunk) = bytes.next() else {
            // The head is all sent and never finished: keep the connection, silently.
            std::future::pending::<()>().await;
            return;
        };
        if s.write_all(&chunk).await.is_err() {
            alive.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        tokio::time::sleep(gap).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_slow_bodies_do_not_slow_a_normal_client() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let mut gw = gateway("  max_connections_per_ip: 1000", &up).await;
    let addr = gw.addr(0);

    let alive = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..200 {
        attackers.push(tokio::spawn(slow_client(
            addr,
            SLOW_HEAD,
            false,
            Duration::from_millis(200),
            alive.clone(),
        )));
    }
    for _ in 0..20 {
        attackers.push(tokio::spawn(slow_client(
            addr,
            BODY_HEAD,
            true,
            Duration::from_millis(200),
            alive.clone(),
        )));
    }
    // Let them all connect and start trickling.
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive.load(Ordering::SeqCst) < 220 {
        assert!(
            Instant::now() < deadline,
            "only {} slow clients connected",
            alive.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A normal client: 40 requests, one every 50 ms, on a keep-alive connection.
    let client = client();
    let url = gw.url("/fast");
    let mut latencies = Vec::new();
    for i in 0..40 {
        let started = Instant::now();
        let req = http::Request::get(&url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap();
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let still = alive.load(Ordering::SeqCst);
    for a in &attackers {
        a.abort();
    }
    latencies.sort();
    let p50 = percentile(&latencies, 0.5);
    let p95 = percentile(&latencies, 0.95);
    eprintln!("normal client under 220 slow clients: p50 {p50:?}, p95 {p95:?}; {still} alive");
    assert!(
        still >= 210,
        "the slow clients were still connected while measured: {still} of 220"
    );
    assert!(p95 < Duration::from_millis(200), "p95 {p95:?}, p50 {p50:?}");
    assert!(
        !up.seen().iter().any(|s| s.path_and_query == "/slowloris"),
        "an unfinished head reached the upstream"
    );
    assert!(
        !up.seen().iter().any(|s| s.path_and_query == "/upload"),
        "an unfinished body reached the upstream complete"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_below_min_body_rate_is_cut_off_after_the_grace() {
    let up = Upstream::start().await;
    let mut gw = gateway("  min_body_rate: 1KiB", &up).await;
    let addr = gw.addr(0);

    // A body at a normal pace is delivered.
    let body = vec![b'a'; 1000];
    let mut head =
        b"POST /upload-fast HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 1000\r\n\r\n".to_vec();
    head.extend_from_slice(&body);
    let fast = raw_exchange(addr, &head, Duration::from_secs(3)).await;
    assert_eq!(fast.status, 200, "{}", fast.text);
    assert_eq!(fast.json()["body_len"], 1000);

    // 10 bytes a second, against 1 KiB/s: cut after the 5 s grace, at the next bytes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /upload-slow HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 1000\r\n\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..1000 {
            if wr.write_all(b"b").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let ended = tokio::time::timeout(Duration::from_secs(9), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    // One whole response is enough.
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..i]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if got.len() >= i + 4 + len {
                            return;
                        }
                    }
                }
            }
        }
    })
    .await;
    let took = started.elapsed();
    writer.abort();
    assert!(ended.is_ok(), "still open after {took:?}");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(7_500),
        "cut after {took:?}"
    );
    let text = String::from_utf8_lossy(&got).into_owned();
    eprintln!("slow body: {took:?} {text:?}");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408 "),
        "408 or closed, got {text:?}"
    );
    if !text.is_empty() {
        assert!(
            text.contains("urn:portcullis:problem:body_timeout"),
            "{text}"
        );
    }
    assert!(
        !up.seen().iter().any(|s| s.path_and_query == "/upload-slow"),
        "the trickled body reached the upstream complete"
    );
    let events = gw.stop().await;
    let ev = events
        .iter()
        .find(|e| e["http_request"]["url"]["path"] == "/upload-slow")
        .unwrap_or_else(|| panic!("no event for the slow upload: {events:#?}"));
    assert_eq!(ev["unmapped"]["reason"], "body_timeout", "{ev}");
}

/// A load balancer in `trusted_proxies` carries many clients on its connections: the per-IP
/// cap must not apply to it.
#[tokio::test]
async fn trusted_proxies_are_exempt_from_the_per_ip_cap() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let yaml = YAML
        .replace("{limits}", "  max_connections_per_ip: 2")
        .replace(
            "upstreams:\n",
            "trusted_proxies: [127.0.0.0/8]\nupstreams:\n",
        );
    let gw = TestGateway::start(&yaml, &up).await;
    let addr = gw.addr(0);
    let mut open = Vec::new();
    for i in 0..6 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            request_on(&mut s).await,
            Some(200),
            "connection {i} from the trusted proxy"
        );
        open.push(s);
    }
}
