//! The block list, access lists and brute-force protection end to end: a real gateway, a real
//! upstream, real API keys and Basic credentials, the admin API, and a real `redis-server`
//! where blocks are shared between instances.
//!
//! Covered: `POST /blocks` of the client's address refuses it with 403 `blocked` and
//! `Retry-After`, `GET /blocks` lists the entry, it expires by itself and `DELETE` lifts it
//! early; `principal:` and `key:` blocks refuse an authenticated caller after authentication
//! and nobody else; a `cidr:` block applies within about two seconds (the ranges are refreshed
//! in the background) and lifts the same way; malformed entries are refused with 400; with
//! Redis a block made through one instance refuses the client at another, and a block lifted
//! at one is lifted at the other; `ip_block_action: close` closes the connection instead of
//! answering; static `deny` lists, and `allow` lists that leave the client out, close the
//! connection at accept. Brute force: `threshold` wrong credentials from one address block it
//! (even for the right key next), repeat offences get the next, longer block, a success clears
//! the count, and wrong Basic passwords count against the user as well as the address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use portcullis_testkit::RedisServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_TOKEN: &str = "block-admin-token";

/// `{store}` and `{access}` are replaced by whole top-level sections (or nothing).
const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
identity:
  api_keys:
    keys:
      - id: key-alice
        hash: "{hash_alice}"
        principal: alice
      - id: key-bob
        hash: "{hash_bob}"
        principal: bob
  basic:
    htpasswd: "{htpasswd}"
{store}
{access}
routes:
  - name: public
    upstream: app
    match:
      path_prefix: /public
    auth:
      public: true
  - name: keys
    upstream: app
    match:
      path_prefix: /keys
    auth:
      methods: [api_key]
  - name: basic
    upstream: app
    match:
      path_prefix: /basic
    auth:
      methods: [basic]
      allow_basic_over_plain_http: true
events:
  file: {dir}/events.jsonl
admin:
  address: 127.0.0.1:0
  token: block-admin-token
"#;

/// The escalating brute-force policy most tests here use.
const BRUTE_FORCE: &str = r#"access:
  brute_force:
    threshold: 3
    window: 1m
    blocks: [1s, 3s]"#;

/// An htpasswd file with one bcrypt user, made with `htpasswd -nbB` when the tool is
/// installed, else the identity crate's committed fixture (made the same way).
/// Returns (file, user, password).
fn htpasswd_file(dir: &Path) -> (PathBuf, String, String) {
    let path = dir.join("users.htpasswd");
    let made = std::process::Command::new("htpasswd")
        .args(["-nbB", "carol", "carol-correct-horse"])
        .output();
    if let Ok(out) = made
        && out.status.success()
    {
        std::fs::write(&path, &out.stdout).unwrap();
        return (path, "carol".into(), "carol-correct-horse".into());
    }
    eprintln!("htpasswd not installed: using the committed bcrypt fixture");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../identity/tests/fixtures/htpasswd/users.htpasswd"
    );
    std::fs::copy(fixture, &path).unwrap();
    (path, "bcrypt".into(), "bcrypt-secret".into())
}

/// Credentials shared by every gateway of one test (instances of one deployment).
struct Creds {
    alice: String,
    bob: String,
    hash_alice: String,
    hash_bob: String,
    files: tempfile::TempDir,
    htpasswd: PathBuf,
    user: String,
    password: String,
}

impl Creds {
    fn new() -> Creds {
        let (alice, hash_alice) = portcullis_identity::apikey::generate_key();
        let (bob, hash_bob) = portcullis_identity::apikey::generate_key();
        let files = tempfile::tempdir().unwrap();
        let (htpasswd, user, password) = htpasswd_file(files.path());
        Creds {
            alice,
            bob,
            hash_alice,
            hash_bob,
            files,
            htpasswd,
            user,
            password,
        }
    }

    fn yaml(&self, store: &str, access: &str) -> String {
        YAML.replace("{hash_alice}", &self.hash_alice)
            .replace("{hash_bob}", &self.hash_bob)
            .replace("{htpasswd}", &self.htpasswd.display().to_string())
            .replace("{store}", store)
            .replace("{access}", access)
    }

    fn basic(&self, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", self.user))
        )
    }
}

async fn gateway(creds: &Creds, access: &str, up: &Upstream) -> TestGateway {
    TestGateway::start(&creds.yaml("", access), up).await
}

/// GET `url` with these headers.
async fn get_with(url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(Full::new(Bytes::new())).unwrap()).await
}

async fn with_key(gw: &TestGateway, key: &str) -> Got {
    get_with(&gw.url("/keys/orders"), &[("x-api-key", key)]).await
}

/// `POST path` on the admin API with a JSON body and the admin token (or `token`).
async fn admin_post(admin: SocketAddr, path: &str, body: &str, token: Option<&str>) -> Got {
    let mut req =
        Request::post(format!("http://{admin}{path}")).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
}

async fn block(admin: SocketAddr, key: &str, ttl: &str) -> Got {
    let got = admin_post(
        admin,
        "/blocks",
        &json!({"key": key, "ttl": ttl}).to_string(),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(got.status, 201, "POST /blocks {key}: {}", got.text());
    got
}

async fn unblock(admin: SocketAddr, key: &str) {
    let got = admin_request(
        admin,
        "DELETE",
        &format!("/blocks/{key}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(got.status, 204, "DELETE /blocks/{key}: {}", got.text());
}

/// `GET /blocks`: (key, expires_in_seconds) of each entry, sorted by key.
async fn list(admin: SocketAddr) -> Vec<(String, u64)> {
    let got = admin_request(admin, "GET", "/blocks", Some(ADMIN_TOKEN)).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let mut out: Vec<(String, u64)> = got.json()["blocks"]
        .as_array()
        .unwrap_or_else(|| panic!("no blocks array: {}", got.text()))
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_string(),
                b["expires_in_seconds"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Poll `probe` every 50 ms until it returns true; the time it took. Panics after `within`.
async fn until<F, Fut>(within: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connect, send a GET, and read. `Some(bytes)` when the server closed the connection within
/// 2 s (bytes = whatever it sent first), `None` when it was still open.
async fn exchange_until_closed(addr: SocketAddr) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may already have closed: a failed write is part of the answer.
    let _ = s
        .write_all(b"GET /public/x HTTP/1.1\r\nhost: gw.test\r\n\r\n")
        .await;
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

fn rid(got: &Got) -> String {
    got.header("x-request-id").unwrap().to_string()
}

fn retry_after(got: &Got) -> u64 {
    got.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", got.headers))
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The admin block list

#[tokio::test]
async fn ip_block_refuses_the_client_with_403_until_it_expires() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, "", &up).await;
    let admin = gw.admin();
    assert_eq!(get(&gw.url("/public/a")).await.status, 200);

    let made = block(admin, "ip:127.0.0.1", "2s").await;
    let blocked_at = Instant::now();
    assert_eq!(made.json()["key"], "ip:127.0.0.1");
    assert_eq!(made.json()["expires_in_seconds"], 2);

    let refused = get(&gw.url("/public/b")).await;
    assert_problem(&refused, 403, "blocked");
    // The whole block is still ahead: a client told to come back sooner would be refused.
    assert_eq!(retry_after(&refused), 2, "Retry-After rounds up");
    // Before routing and authentication: any route, any credential.
    assert_problem(&with_key(&gw, &creds.alice).await, 403, "blocked");
    assert_problem(&get(&gw.url("/nowhere")).await, 403, "blocked");

    let listed = list(admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, "ip:127.0.0.1");
    assert!((1..=2).contains(&listed[0].1), "{listed:?}");

    let metrics = admin_request(admin, "GET", "/metrics", Some(ADMIN_TOKEN)).await;
    assert!(
        metrics
            .text()
            .contains(r#"portcullis_protection_actions_total{action="blocked"} 3"#),
        "{}",
        metrics.text()
    );
    // It expires by itself.
    until(Duration::from_secs(4), "the block expires", || async {
        get(&gw.url("/public/c")).await.status == 200
    })
    .await;
    let lasted = blocked_at.elapsed();
    assert!(
        lasted >= Duration::from_millis(1_900) && lasted < Duration::from_secs(3),
        "a 2 s block lasted {lasted:?}"
    );
    assert!(list(admin).await.is_empty());
    assert_eq!(up.count(), 2, "blocked requests never reach the upstream");

    let events = gw.stop().await;
    let ev = event_by_id(&events, &rid(&refused));
    assert_eq!(ev["unmapped"]["reason"], "blocked", "{ev}");
    assert_eq!(ev["http_response"]["code"], 403, "{ev}");
    assert_eq!(findings(ev), vec![("ip".to_string(), None)], "{ev}");
}

#[tokio::test]
async fn delete_lifts_a_block_early() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, "", &up).await;
    let admin = gw.admin();

    block(admin, "ip:127.0.0.1", "1h").await;
    let refused = get(&gw.url("/public/a")).await;
    assert_problem(&refused, 403, "blocked");
    assert_eq!(retry_after(&refused), 3_600);

    unblock(admin, "ip:127.0.0.1").await;
    assert_eq!(get(&gw.url("/public/b")).await.status, 200);
    assert!(list(admin).await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn principal_and_key_blocks_refuse_the_caller_after_authentication() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, "", &up).await;
    let admin = gw.admin();
    let (wrong, _) = portcullis_identity::apikey::generate_key();

    block(admin, "principal:alice", "1m").await;
    let refused = with_key(&gw, &creds.alice).await;
    assert_problem(&refused, 403, "blocked");
    assert!(retry_after(&refused) >= 59);
    // Only alice: bob, anonymous callers and the client address are not blocked.
    assert_eq!(with_key(&gw, &creds.bob).await.status, 200);
    assert_eq!(get(&gw.url("/public/a")).await.status, 200);
    // A wrong credential fails authentication first: it learns nothing about blocks.
    assert_eq!(with_key(&gw, &wrong).await.status, 401);

    unblock(admin, "principal:alice").await;
    assert_eq!(with_key(&gw, &creds.alice).await.status, 200);

    // A key block names the key's id, not the key.
    block(admin, "key:key-bob", "1m").await;
    let refused_key = with_key(&gw, &creds.bob).await;
    assert_problem(&refused_key, 403, "blocked");
    assert_eq!(with_key(&gw, &creds.alice).await.status, 200);
    assert_eq!(
        list(admin).await.iter().map(|b| &b.0).collect::<Vec<_>>(),
        ["key:key-bob"]
    );
    assert_eq!(up.count(), 4);

    let events = gw.stop().await;
    for (got, who) in [(&refused, "alice"), (&refused_key, "bob")] {
        let ev = event_by_id(&events, &rid(got));
        assert_eq!(ev["unmapped"]["reason"], "blocked", "{ev}");
        assert_eq!(
            ev["actor"]["user"]["uid"], who,
            "refused after authentication: {ev}"
        );
        assert_eq!(findings(ev), vec![("identity".to_string(), None)], "{ev}");
    }
}

#[tokio::test]
async fn cidr_block_applies_within_two_seconds_and_lifts_the_same_way() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, "", &up).await;
    let admin = gw.admin();

    block(admin, "cidr:127.0.0.0/8", "1m").await;
    let took = until(
        Duration::from_secs(4),
        "the range block applies",
        || async { get(&gw.url("/public/a")).await.status == 403 },
    )
    .await;
    assert!(
        took < Duration::from_millis(2_600),
        "applied after {took:?}"
    );
    let refused = get(&gw.url("/public/b")).await;
    assert_problem(&refused, 403, "blocked");
    assert!(retry_after(&refused) >= 1);
    assert_eq!(
        list(admin).await.iter().map(|b| &b.0).collect::<Vec<_>>(),
        ["cidr:127.0.0.0/8"]
    );

    // The key contains a slash: DELETE takes the rest of the path.
    unblock(admin, "cidr:127.0.0.0/8").await;
    let took = until(Duration::from_secs(4), "the range block lifts", || async {
        get(&gw.url("/public/c")).await.status == 200
    })
    .await;
    assert!(took < Duration::from_millis(2_600), "lifted after {took:?}");
    gw.stop().await;
}

#[tokio::test]
async fn malformed_block_requests_are_refused_with_400() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, "", &up).await;
    let admin = gw.admin();

    for key in [
        "ip:not-an-ip",
        "foo:bar",
        "ip:",
        "127.0.0.1",
        "cidr:10.0.0.0/33",
        "cidr:not-a-range",
        "principal:",
        "key:",
        "principal:a\u{7}b",
    ] {
        let body = json!({"key": key, "ttl": "1m"}).to_string();
        let got = admin_post(admin, "/blocks", &body, Some(ADMIN_TOKEN)).await;
        assert_eq!(got.status, 400, "{key:?}: {}", got.text());
        assert_eq!(got.header("content-type"), Some("application/problem+json"));
    }
    for body in [
        r#"{"key":"ip:127.0.0.1","ttl":"soon"}"#.to_string(),
        r#"{"key":"ip:127.0.0.1","ttl":"10"}"#.to_string(),
        r#"{"key":"ip:127.0.0.1"}"#.to_string(),
        r#"{"key":"ip:127.0.0.1","ttl":"1m","note":"x"}"#.to_string(),
        "not json".to_string(),
    ] {
        let got = admin_post(admin, "/blocks", &body, Some(ADMIN_TOKEN)).await;
        assert_eq!(got.status, 400, "{body}: {}", got.text());
    }
    // Without the admin token nothing is listed, added or removed.
    let body = json!({"key": "ip:127.0.0.1", "ttl": "1m"}).to_string();
    assert_eq!(admin_post(admin, "/blocks", &body, None).await.status, 401);
    assert_eq!(
        admin_post(admin, "/blocks", &body, Some("wrong-token"))
            .await
            .status,
        401
    );
    assert_eq!(
        admin_request(admin, "GET", "/blocks", None).await.status,
        401
    );
    assert_eq!(
        admin_request(admin, "DELETE", "/blocks/ip:127.0.0.1", None)
            .await
            .status,
        401
    );

    assert!(list(admin).await.is_empty());
    assert_eq!(get(&gw.url("/public/a")).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn an_ipv6_block_applies_however_the_address_is_spelled() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let yaml = creds
        .yaml("", "")
        .replace("  - address: 127.0.0.1:0", "  - address: \"[::1]:0\"");
    let mut gw = TestGateway::start(&yaml, &up).await;
    let admin = gw.admin();
    let url = format!("http://{}/public/v6", gw.addr(0));
    assert_eq!(get(&url).await.status, 200);

    // The client is `::1`; operators paste addresses from tools that expand them.
    for spelling in ["ip:0:0:0:0:0:0:0:1", "ip:0000::0001"] {
        let made = block(admin, spelling, "1m").await;
        assert_problem(&get(&url).await, 403, "blocked");
        assert_eq!(
            made.json()["key"],
            "ip:::1",
            "{spelling}: stored canonically"
        );
        assert_eq!(
            list(admin).await.iter().map(|b| &b.0).collect::<Vec<_>>(),
            ["ip:::1"]
        );
        // Lifted under any spelling too.
        unblock(admin, spelling).await;
        assert_eq!(get(&url).await.status, 200, "{spelling}: lifted");
    }
    // Ranges the same way.
    block(admin, "cidr:0:0:0:0:0:0:0:1/128", "1m").await;
    until(
        Duration::from_secs(4),
        "the range block applies",
        || async { get(&url).await.status == 403 },
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_block_made_at_one_instance_refuses_the_client_at_another() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let creds = Creds::new();
    let store = format!(
        "rate_limit:\n  store: redis\n  redis:\n    url: \"{}\"\n    budget: 250ms",
        redis.url()
    );
    let yaml = creds.yaml(&store, "");
    let mut a = TestGateway::start(&yaml, &up).await;
    let mut b = TestGateway::start(&yaml, &up).await;
    assert_eq!(get(&b.url("/public/a")).await.status, 200);

    block(a.admin(), "ip:127.0.0.1", "1m").await;
    let refused = get(&b.url("/public/b")).await;
    assert_problem(&refused, 403, "blocked");
    assert!(retry_after(&refused) >= 59);
    assert_eq!(
        list(b.admin())
            .await
            .iter()
            .map(|x| &x.0)
            .collect::<Vec<_>>(),
        ["ip:127.0.0.1"]
    );
    // Principal blocks are shared the same way.
    block(b.admin(), "principal:bob", "1m").await;

    // Lifted at B, lifted at A (Redis is authoritative while it answers).
    unblock(b.admin(), "ip:127.0.0.1").await;
    assert_eq!(get(&a.url("/public/c")).await.status, 200);
    assert_eq!(get(&b.url("/public/d")).await.status, 200);
    assert_problem(&with_key(&a, &creds.bob).await, 403, "blocked");
    assert_eq!(with_key(&a, &creds.alice).await.status, 200);
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Closing instead of answering

#[tokio::test]
async fn ip_block_action_close_closes_the_connection_without_an_answer() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, "access:\n  ip_block_action: close", &up).await;
    let admin = gw.admin();
    assert_eq!(get(&gw.url("/public/a")).await.status, 200);

    block(admin, "ip:127.0.0.1", "1m").await;
    let got = exchange_until_closed(gw.addr(0)).await;
    assert_eq!(
        got.as_deref().map(String::from_utf8_lossy),
        Some("".into()),
        "closed without a byte"
    );
    assert_eq!(up.count(), 1);

    unblock(admin, "ip:127.0.0.1").await;
    assert_eq!(get(&gw.url("/public/b")).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn static_deny_and_allow_lists_close_the_connection_at_accept() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    for access in [
        "access:\n  deny: [127.0.0.1]",
        "access:\n  deny: [127.0.0.0/8]",
        "access:\n  allow: [192.0.2.0/24]",
    ] {
        let mut gw = gateway(&creds, access, &up).await;
        let got = exchange_until_closed(gw.addr(0)).await;
        assert_eq!(
            got.as_deref().map(String::from_utf8_lossy),
            Some("".into()),
            "{access}: closed without a byte"
        );
        let metrics = admin_request(gw.admin(), "GET", "/metrics", Some(ADMIN_TOKEN)).await;
        assert!(
            metrics
                .text()
                .contains("portcullis_connections_refused_total 1"),
            "{access}: {}",
            metrics.text()
        );
        // The admin API is a separate listener: still reachable to repair the lists.
        assert_eq!(metrics.status, 200);
        gw.stop().await;
    }
    // Lists that leave the client in: served.
    for access in [
        "access:\n  allow: [127.0.0.1]",
        "access:\n  deny: [192.0.2.7]\n  allow: [127.0.0.0/8, 192.0.2.0/24]",
    ] {
        let mut gw = gateway(&creds, access, &up).await;
        assert_eq!(get(&gw.url("/public/a")).await.status, 200, "{access}");
        gw.stop().await;
    }
    assert_eq!(up.count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Brute force

#[tokio::test]
async fn brute_force_blocks_the_address_and_escalates_on_repeat() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, BRUTE_FORCE, &up).await;
    let admin = gw.admin();
    let (wrong, _) = portcullis_identity::apikey::generate_key();

    let mut third = None;
    for i in 1..=3 {
        let got = with_key(&gw, &wrong).await;
        assert_eq!(got.status, 401, "failure {i}: {}", got.text());
        third = Some(got);
    }
    let first_block = Instant::now();
    // Blocked now, even with the right key.
    let refused = with_key(&gw, &creds.alice).await;
    assert_problem(&refused, 403, "blocked");
    assert_eq!(retry_after(&refused), 1);
    assert_eq!(
        list(admin).await.iter().map(|b| &b.0).collect::<Vec<_>>(),
        ["ip:127.0.0.1"]
    );
    // A public route shows when the address block ends without authenticating (a success
    // would clear the record of this offence).
    until(
        Duration::from_secs(3),
        "the first block expires",
        || async { get(&gw.url("/public/p")).await.status == 200 },
    )
    .await;
    let lasted = first_block.elapsed();
    assert!(
        lasted >= Duration::from_millis(800) && lasted < Duration::from_millis(1_800),
        "first block lasted {lasted:?}"
    );

    // Three more failures: the second, longer block.
    for i in 1..=3 {
        let got = with_key(&gw, &wrong).await;
        assert_eq!(got.status, 401, "repeat failure {i}: {}", got.text());
    }
    let second_block = Instant::now();
    let refused_again = with_key(&gw, &creds.alice).await;
    assert_problem(&refused_again, 403, "blocked");
    assert_eq!(retry_after(&refused_again), 3);
    until(
        Duration::from_secs(5),
        "the second block expires",
        || async { get(&gw.url("/public/p")).await.status == 200 },
    )
    .await;
    let lasted = second_block.elapsed();
    assert!(
        lasted >= Duration::from_millis(2_800) && lasted < Duration::from_millis(3_800),
        "second block lasted {lasted:?}"
    );
    assert_eq!(with_key(&gw, &creds.alice).await.status, 200);

    let events = gw.stop().await;
    let ev = event_by_id(&events, &rid(third.as_ref().unwrap()));
    assert_eq!(ev["http_response"]["code"], 401, "{ev}");
    assert!(
        findings(ev).contains(&("blocked".to_string(), None)),
        "the failure that crossed the threshold says so: {ev}"
    );
}

#[tokio::test]
async fn a_successful_authentication_clears_the_failure_count() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, BRUTE_FORCE, &up).await;
    let admin = gw.admin();
    let (wrong, _) = portcullis_identity::apikey::generate_key();

    for (i, key, want) in [
        (1, &wrong, 401),
        (2, &wrong, 401),
        (3, &creds.alice, 200),
        (4, &wrong, 401),
        (5, &wrong, 401),
        (6, &creds.alice, 200),
    ] {
        let got = with_key(&gw, key).await;
        assert_eq!(got.status, want, "request {i}: {}", got.text());
    }
    assert_eq!(get(&gw.url("/public/p")).await.status, 200);
    assert!(list(admin).await.is_empty());

    // Missing credentials are not guesses either.
    for _ in 0..4 {
        assert_eq!(get(&gw.url("/keys/none")).await.status, 401);
    }
    assert_eq!(with_key(&gw, &creds.alice).await.status, 200);
    assert!(list(admin).await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn wrong_basic_passwords_count_against_the_user_as_well_as_the_address() {
    let up = Upstream::start().await;
    let creds = Creds::new();
    let mut gw = gateway(&creds, BRUTE_FORCE, &up).await;
    let admin = gw.admin();
    let url = gw.url("/basic/me");
    let wrong = creds.basic("not-the-password");
    let right = creds.basic(&creds.password);

    for i in 1..=3 {
        let got = get_with(&url, &[("authorization", &wrong)]).await;
        assert_eq!(got.status, 401, "failure {i}: {}", got.text());
    }
    let listed: Vec<String> = list(admin).await.into_iter().map(|b| b.0).collect();
    assert_eq!(
        listed,
        [
            "ip:127.0.0.1".to_string(),
            format!("principal:{}", creds.user)
        ]
    );

    // Without the address block, the user's block still holds for the right password...
    unblock(admin, "ip:127.0.0.1").await;
    let refused = get_with(&url, &[("authorization", &right)]).await;
    assert_problem(&refused, 403, "blocked");
    // ...and for no one else.
    assert_eq!(with_key(&gw, &creds.alice).await.status, 200);
    // Until it expires.
    until(Duration::from_secs(3), "the user block expires", || async {
        get_with(&url, &[("authorization", &right)]).await.status == 200
    })
    .await;

    let events = gw.stop().await;
    let ev = event_by_id(&events, &rid(&refused));
    assert_eq!(ev["unmapped"]["reason"], "blocked", "{ev}");
    assert_eq!(ev["actor"]["user"]["uid"], creds.user.as_str(), "{ev}");
    let raw = std::fs::read_to_string(&gw.events_path).unwrap();
    assert!(!raw.contains(&creds.password) && !raw.contains("not-the-password"));
    drop(creds.files);
}
