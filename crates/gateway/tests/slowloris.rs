//! Slow clients: a request head that trickles in is cut after `header_read_timeout` without
//! reaching the upstream or slowing anyone else down, an idle keep-alive connection is closed
//! after `idle_timeout`, and a request body that trickles past `request_body_timeout` is
//! refused and never delivered complete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `{limits}` is replaced by the `limits:` body.
const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
limits: {limits}
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;

async fn gateway(limits: &str, up: &Upstream) -> TestGateway {
    TestGateway::start(&YAML.replace("{limits}", limits), up).await
}

/// A request head that is never finished at one byte per 300 ms (well over 3 s).
const SLOW_HEAD: &[u8] =
    b"GET /slowloris HTTP/1.1\r\nHost: slow.test\r\nUser-Agent: slowloris\r\nX-Padding: aaaaaaaa";

/// Connect and send `bytes` one at a time with `gap` between them, keeping the connection
/// open. Returns when the server closed (or reset) the connection, measured from connecting,
/// or None if it was still open after `give_up`; and whatever the server sent.
async fn trickle(
    addr: SocketAddr,
    bytes: &'static [u8],
    gap: Duration,
    give_up: Duration,
) -> (Option<Duration>, Vec<u8>) {
    let start = Instant::now();
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let writer = tokio::spawn(async move {
        for b in bytes {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        std::future::pending::<()>().await;
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(give_up, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok();
    writer.abort();
    (closed, got)
}

/// GETs on one keep-alive client every 100 ms for `total`; returns each latency. Every
/// answer must be a 200.
async fn steady_client(url: String, total: Duration) -> Vec<Duration> {
    let client = client();
    let end = Instant::now() + total;
    let mut latencies = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        let resp = client
            .request(
                http::Request::get(&url)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
            .await
            .expect("a normal client must keep being served");
        assert_eq!(resp.status(), 200);
        let _ = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap();
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies
}

fn assert_normal_latency(latencies: &[Duration]) {
    assert!(latencies.len() >= 10, "only {} requests", latencies.len());
    let worst = latencies.iter().max().unwrap();
    assert!(
        *worst < Duration::from_millis(750),
        "a normal request took {worst:?} while slow clients were connected"
    );
}

/// Read one HTTP/1.1 response with a Content-Length body; returns its status.
async fn read_response(s: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await.unwrap();
                assert!(n > 0, "connection closed inside a response body");
                buf.extend_from_slice(&tmp[..n]);
            }
            assert_eq!(
                buf.len(),
                end + 4 + len,
                "unexpected bytes after the response"
            );
            return head[9..12].parse().unwrap();
        }
        let n = s.read(&mut tmp).await.unwrap();
        assert!(n > 0, "connection closed before a response: {buf:?}");
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// How long until the server closes `s`, or None if it is still open after `give_up`.
async fn closed_within(s: &mut TcpStream, give_up: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    tokio::time::timeout(give_up, async {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => start.elapsed(),
            Ok(n) => panic!("unexpected bytes from the server: {:?}", &buf[..n]),
        }
    })
    .await
    .ok()
}

fn paths_seen(up: &Upstream) -> Vec<String> {
    up.seen().into_iter().map(|s| s.path_and_query).collect()
}

#[tokio::test]
async fn slow_request_head_is_cut_after_the_header_timeout() {
    let up = Upstream::start().await;
    let mut gw = gateway("{ header_read_timeout: 1s, idle_timeout: 30s }", &up).await;
    let addr = gw.addr(0);

    let normal = tokio::spawn(steady_client(
        gw.url("/normal"),
        Duration::from_millis(2500),
    ));
    let (closed, got) = trickle(
        addr,
        SLOW_HEAD,
        Duration::from_millis(300),
        Duration::from_secs(3),
    )
    .await;
    let closed = closed.expect("the slow connection must be closed within 3 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}: before the header timeout"
    );
    assert!(
        got.is_empty(),
        "nothing is answered to a head that never completed: {got:?}"
    );
    assert_normal_latency(&normal.await.unwrap());

    assert!(
        paths_seen(&up).iter().all(|p| p == "/normal"),
        "the upstream saw {:?}",
        paths_seen(&up)
    );
    let events = gw.stop().await;
    assert!(
        events
            .iter()
            .all(|e| e["http_request"]["url"]["path"] == "/normal"),
        "an unfinished head is not a request"
    );
}

#[tokio::test]
async fn fifty_slow_connections_do_not_stop_a_normal_client() {
    let up = Upstream::start().await;
    let mut gw = gateway("{ header_read_timeout: 1s, idle_timeout: 30s }", &up).await;
    let addr = gw.addr(0);

    let slow: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(trickle(
                addr,
                SLOW_HEAD,
                Duration::from_millis(300),
                Duration::from_secs(3),
            ))
        })
        .collect();
    // Let every slow connection be open before the normal client starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let normal = tokio::spawn(steady_client(
        gw.url("/normal"),
        Duration::from_millis(2000),
    ));
    for (i, task) in slow.into_iter().enumerate() {
        let (closed, got) = task.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("slow connection {i} still open after 3 s"));
        assert!(
            closed >= Duration::from_millis(900),
            "connection {i}: {closed:?}"
        );
        assert!(got.is_empty());
    }
    assert_normal_latency(&normal.await.unwrap());
    assert!(paths_seen(&up).iter().all(|p| p == "/normal"));
    gw.stop().await;
}

#[tokio::test]
async fn keep_alive_connection_idle_past_the_header_timeout_can_still_send_a_head_in_pieces() {
    // The header timeout bounds how long a head takes to arrive, not how long a keep-alive
    // connection may wait before the next request (that is the idle timeout).
    let up = Upstream::start().await;
    let mut gw = gateway("{ header_read_timeout: 1s, idle_timeout: 10s }", &up).await;
    let mut s = TcpStream::connect(gw.addr(0)).await.unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await, 200);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The next head arrives in two pieces 400 ms apart: well within the header timeout.
    s.write_all(b"GET /second HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.write_all(b"st: a.test\r\n\r\n").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(3), read_response(&mut s))
        .await
        .expect("no answer to the second request");
    assert_eq!(status, 200);
    assert_eq!(paths_seen(&up), vec!["/first", "/second"]);
    gw.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let up = Upstream::start().await;
    let mut gw = gateway("{ header_read_timeout: 5s, idle_timeout: 1s }", &up).await;
    let addr = gw.addr(0);

    // Idle after one request: closed about a second later.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /idle HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut idle).await, 200);

    // Meanwhile a connection that keeps sending a request every 400 ms stays open for 2.4 s:
    // the timeout counts from the last request, not from the connection's start.
    let busy = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        for i in 0..6 {
            s.write_all(format!("GET /busy/{i} HTTP/1.1\r\nHost: a.test\r\n\r\n").as_bytes())
                .await
                .unwrap();
            assert_eq!(read_response(&mut s).await, 200, "busy request {i}");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        closed_within(&mut s, Duration::from_secs(3)).await
    });

    let closed = closed_within(&mut idle, Duration::from_secs(3))
        .await
        .expect("an idle keep-alive connection must be closed");
    assert!(
        closed >= Duration::from_millis(800) && closed <= Duration::from_millis(2500),
        "idle connection closed after {closed:?}, idle timeout is 1 s"
    );
    let busy_closed = busy
        .await
        .unwrap()
        .expect("the busy connection is closed once idle");
    assert!(
        busy_closed <= Duration::from_millis(2500),
        "{busy_closed:?}"
    );
    assert_eq!(up.count(), 7);
    gw.stop().await;
}

#[tokio::test]
async fn request_body_trickling_past_the_body_timeout_is_refused_and_not_delivered() {
    let up = Upstream::start().await;
    let mut gw = gateway(
        "{ header_read_timeout: 5s, idle_timeout: 30s, request_body_timeout: 1s }",
        &up,
    )
    .await;
    let addr = gw.addr(0);

    // Within the timeout: 4 bytes over ~600 ms arrive complete.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /in-time HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n")
        .await
        .unwrap();
    for b in b"abcd" {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(&[*b]).await.unwrap();
    }
    assert_eq!(read_response(&mut s).await, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, b"abcd");

    // Past it: 20 bytes at one per 200 ms would take 4 s.
    const HEAD: &[u8] = b"POST /too-slow HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n";
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEAD).await.unwrap();
    let start = Instant::now();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b"x").await.is_err() {
                return;
            }
        }
        std::future::pending::<()>().await;
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await
    .expect("no answer and no close within 3 s of a body timeout of 1 s");
    let elapsed = start.elapsed();
    writer.abort();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 408 "),
        "expected 408 after {elapsed:?}, got {text:?}"
    );
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");

    // The upstream never got the body complete (it records a request only once its whole
    // body has arrived).
    assert_eq!(paths_seen(&up), vec!["/in-time"]);
    let events = gw.stop().await;
    let slow: Vec<_> = events
        .iter()
        .filter(|e| e["http_request"]["url"]["path"] == "/too-slow")
        .collect();
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0]["http_response"]["code"], 408);
    assert_eq!(slow[0]["unmapped"]["reason"], "body_timeout");
    assert!(slow[0]["http_request"]["length"].as_u64().unwrap() < 20);
}

/// The `parked_connections` gauge from the admin API.
async fn parked(gw: &TestGateway) -> u64 {
    let m = admin_request(gw.admin(), "GET", "/metrics", Some("idle-admin-token")).await;
    m.text()
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_parked_connections "))
        .unwrap_or_else(|| panic!("no parked_connections gauge in {}", m.text()))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn idle_keep_alive_connection_is_parked_and_still_serves_its_next_requests() {
    // An idle HTTP/1 keep-alive connection drops its HTTP state (hyper's buffers) after about
    // a second and waits with no buffer; the client never notices: its next requests, sent
    // whole, in pieces or pipelined, are answered on the same connection.
    let up = Upstream::start().await;
    let limits = "{ header_read_timeout: 2s, idle_timeout: 30s }\nadmin:\n  address: 127.0.0.1:0\n  token: idle-admin-token";
    let mut gw = gateway(limits, &up).await;
    let mut s = TcpStream::connect(gw.addr(0)).await.unwrap();
    s.write_all(b"GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    assert_eq!(
        parked(&gw).await,
        0,
        "a connection that just answered is not parked"
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(parked(&gw).await, 1, "idle for 2.5 s: parked");

    // Two pipelined requests in one write, then one in two pieces.
    s.write_all(
        b"GET /two HTTP/1.1\r\nHost: a.test\r\n\r\nGET /three HTTP/1.1\r\nHost: a.test\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    assert_eq!(read_response(&mut s).await, 200);
    assert_eq!(parked(&gw).await, 0, "serving again");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(parked(&gw).await, 1);
    s.write_all(b"POST /four HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhe")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(b"llo").await.unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    assert_eq!(paths_seen(&up), vec!["/one", "/two", "/three", "/four"]);
    assert_eq!(up.seen()[3].body, b"hello");

    // A parked connection the client closes is let go.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(parked(&gw).await, 1);
    drop(s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(parked(&gw).await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn parked_connection_is_still_closed_at_the_idle_timeout() {
    let up = Upstream::start().await;
    let limits = "{ header_read_timeout: 1s, idle_timeout: 3s }\nadmin:\n  address: 127.0.0.1:0\n  token: idle-admin-token";
    let mut gw = gateway(limits, &up).await;
    let mut s = TcpStream::connect(gw.addr(0)).await.unwrap();
    s.write_all(b"GET /idle HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    let closed = closed_within(&mut s, Duration::from_secs(6))
        .await
        .expect("closed at the idle timeout even when parked");
    assert!(
        closed >= Duration::from_millis(2700) && closed <= Duration::from_millis(4500),
        "closed after {closed:?}, idle timeout 3 s"
    );
    assert_eq!(parked(&gw).await, 0);
    gw.stop().await;
}
