//! Rate limits end to end: a real gateway (three of them for the shared store), a real
//! upstream, real API keys, and a real `redis-server` started per test on a free port.
//!
//! Memory store: a per-IP limit checked before authentication answers 429 problem+json with
//! `Retry-After`, `RateLimit-Policy` and `RateLimit` (and sends the two fields on allowed
//! responses when the route asks for them); it protects the authentication path, so the 6th
//! request with a wrong key is a 429, not a 401; per-principal limits after authentication
//! give each caller its own budget; a tier's limits apply to keys of that tier only; the event
//! of a refusal names the limit and what it counted by; the refusal is counted in metrics.
//!
//! Redis store: three gateway instances share one limit, and the total they admit is what
//! GCRA permits for the time the clients ran; when Redis is killed, `fail_open` keeps
//! answering at once and limits locally at `rate / instances`, a `rate_limit_degraded`
//! lifecycle event is written, and after Redis comes back on the same port shared limiting
//! resumes with `rate_limit_recovered`; `fail_closed` answers 503 `rate_limit_unavailable`
//! while Redis is down.
//!
//! The tests take one lock: the Redis ones measure latencies and counts over time, and on a
//! two-core machine a neighbour's load would make those numbers about the neighbour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use portcullis_policy::ratelimit::Health;
use portcullis_testkit::RedisServer;
use serde_json::Value;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMIN_TOKEN: &str = "rate-limit-admin-token";

/// API keys of three callers: `alice` and `bob` (no tier) and `carol` (tier `gold`).
struct Keys {
    alice: String,
    bob: String,
    carol: String,
}

/// Listener, upstream, keys, three named limits and the routes that use them:
/// `/ip` (per-IP before auth, headers on), `/principal` (per principal after auth),
/// `/open` (no route limits: only tier limits apply).
const MEMORY_YAML: &str = r#"
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
      - id: key-carol
        hash: "{hash_carol}"
        principal: carol
        tier: gold
rate_limit:
  limits:
    per-ip:
      rate: 5
      per: 1m
      burst: 5
      key: ip
    per-principal:
      rate: 3
      per: 1m
      burst: 3
      key: principal
    gold-tier:
      rate: 2
      per: 1m
      burst: 2
      key: api_key
  tiers:
    gold: [gold-tier]
routes:
  - name: ip-limited
    upstream: app
    match:
      path_prefix: /ip
    auth:
      methods: [api_key]
    rate_limits:
      before_auth: [per-ip]
      headers: true
  - name: principal-limited
    upstream: app
    match:
      path_prefix: /principal
    auth:
      methods: [api_key]
    rate_limits:
      after_auth: [per-principal]
  - name: open
    upstream: app
    match:
      path_prefix: /open
    auth:
      methods: [api_key]
events:
  file: {dir}/events.jsonl
admin:
  address: 127.0.0.1:0
  token: rate-limit-admin-token
"#;

async fn memory_gateway(up: &Upstream) -> (TestGateway, Keys) {
    let (alice, hash_alice) = portcullis_identity::apikey::generate_key();
    let (bob, hash_bob) = portcullis_identity::apikey::generate_key();
    let (carol, hash_carol) = portcullis_identity::apikey::generate_key();
    let yaml = MEMORY_YAML
        .replace("{hash_alice}", &hash_alice)
        .replace("{hash_bob}", &hash_bob)
        .replace("{hash_carol}", &hash_carol);
    let gw = TestGateway::start(&yaml, up).await;
    (gw, Keys { alice, bob, carol })
}

/// GET `url`, with `x-api-key: key` when given.
async fn get_key(url: &str, key: Option<&str>) -> Got {
    let mut req = Request::get(url);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    send(req.body(Full::new(Bytes::new())).unwrap()).await
}

fn rid(got: &Got) -> String {
    got.header("x-request-id").unwrap().to_string()
}

/// The value of `metric{labels}` in a Prometheus text exposition, or 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.trim().split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Memory store

#[tokio::test]
async fn per_ip_limit_spent_answers_429_problem_with_retry_after_and_ratelimit_fields() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let (mut gw, keys) = memory_gateway(&up).await;
    let url = gw.url("/ip/orders");

    // 5 per minute, bucket of 5: T = 12 s. Each allowed response says how many are left and
    // when the bucket is full again (k requests spent: k * 12 s).
    for (i, remaining) in [4, 3, 2, 1, 0].into_iter().enumerate() {
        let got = get_key(&url, Some(&keys.alice)).await;
        assert_eq!(got.status, 200, "request {}: {}", i + 1, got.text());
        assert_eq!(
            got.header("ratelimit-policy"),
            Some(r#""per-ip";q=5;w=60"#),
            "request {}",
            i + 1
        );
        assert_eq!(
            got.header("ratelimit"),
            Some(format!(r#""per-ip";r={remaining};t={}"#, 12 * (i + 1)).as_str()),
            "request {}",
            i + 1
        );
        assert_eq!(got.header("retry-after"), None);
    }
    assert_eq!(up.count(), 5);

    let got = get_key(&url, Some(&keys.alice)).await;
    let doc = assert_problem(&got, 429, "rate_limited");
    assert!(
        !doc.to_string().contains(&keys.alice),
        "the key is never echoed"
    );
    // The next request passes one emission interval after the 5th: 12 s, rounded up.
    assert_eq!(got.header("retry-after"), Some("12"));
    assert_eq!(got.header("ratelimit-policy"), Some(r#""per-ip";q=5;w=60"#));
    assert_eq!(got.header("ratelimit"), Some(r#""per-ip";r=0;t=60"#));
    assert_eq!(
        up.count(),
        5,
        "a refused request never reaches the upstream"
    );

    // A refusal consumes nothing: refused again, with the same wait.
    let again = get_key(&url, Some(&keys.alice)).await;
    assert_problem(&again, 429, "rate_limited");
    assert_eq!(again.header("retry-after"), Some("12"));
    gw.stop().await;
}

#[tokio::test]
async fn per_ip_limit_before_auth_protects_the_route_from_wrong_credentials() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let (mut gw, keys) = memory_gateway(&up).await;
    let url = gw.url("/ip/login");
    let (wrong, _) = portcullis_identity::apikey::generate_key();

    for i in 1..=5 {
        let got = get_key(&url, Some(&wrong)).await;
        assert_eq!(got.status, 401, "wrong key {i}: {}", got.text());
        assert_eq!(got.header("ratelimit"), None, "no fields before success");
    }
    // The 6th guess is refused before its key is even looked at.
    let got = get_key(&url, Some(&wrong)).await;
    assert_problem(&got, 429, "rate_limited");
    assert!(got.header("retry-after").is_some());
    assert!(
        got.header("www-authenticate").is_none(),
        "a 429 issues no authentication challenge"
    );
    // The budget is the address's, whatever the credential: the right key waits too.
    let got = get_key(&url, Some(&keys.alice)).await;
    assert_problem(&got, 429, "rate_limited");
    // And no credential at all.
    let got = get_key(&url, None).await;
    assert_problem(&got, 429, "rate_limited");
    assert_eq!(up.count(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn per_principal_limit_after_auth_gives_each_caller_its_own_budget() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let (mut gw, keys) = memory_gateway(&up).await;
    let url = gw.url("/principal/orders");

    // Anonymous and wrong-key requests are refused by authentication and count for no one.
    for _ in 0..4 {
        assert_eq!(get_key(&url, None).await.status, 401);
    }
    for i in 1..=3 {
        let got = get_key(&url, Some(&keys.alice)).await;
        assert_eq!(got.status, 200, "alice {i}: {}", got.text());
        assert_eq!(
            got.header("ratelimit"),
            None,
            "headers are off on this route"
        );
    }
    let alice_refused = get_key(&url, Some(&keys.alice)).await;
    assert_problem(&alice_refused, 429, "rate_limited");
    assert!(alice_refused.header("retry-after").is_some());
    assert!(
        alice_refused
            .header("ratelimit-policy")
            .is_some_and(|p| p.starts_with(r#""per-principal";q=3;w=60"#)),
        "{:?}",
        alice_refused.header("ratelimit-policy")
    );

    // Same client address, another principal: a full budget of its own.
    for i in 1..=3 {
        let got = get_key(&url, Some(&keys.bob)).await;
        assert_eq!(got.status, 200, "bob {i}: {}", got.text());
    }
    let bob_refused = get_key(&url, Some(&keys.bob)).await;
    assert_problem(&bob_refused, 429, "rate_limited");
    assert_eq!(up.count(), 6);

    let events = gw.stop().await;
    for (got, who) in [(&alice_refused, "alice"), (&bob_refused, "bob")] {
        let ev = event_by_id(&events, &rid(got));
        assert_eq!(ev["unmapped"]["reason"], "rate_limited", "{ev}");
        assert_eq!(ev["actor"]["user"]["uid"], who, "{ev}");
        assert!(
            findings(ev).contains(&(
                "per-principal".to_string(),
                Some("key.principal".to_string())
            )),
            "{ev}"
        );
    }
}

#[tokio::test]
async fn tier_limits_apply_to_keys_of_that_tier_only() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let (mut gw, keys) = memory_gateway(&up).await;
    let url = gw.url("/open/reports");

    // carol's key is `tier: gold`, whose limit is 2 per minute on every route.
    for i in 1..=2 {
        let got = get_key(&url, Some(&keys.carol)).await;
        assert_eq!(got.status, 200, "carol {i}: {}", got.text());
    }
    let refused = get_key(&url, Some(&keys.carol)).await;
    assert_problem(&refused, 429, "rate_limited");
    assert!(
        refused
            .header("ratelimit-policy")
            .is_some_and(|p| p.starts_with(r#""gold-tier";q=2;w=60"#)),
        "{:?}",
        refused.header("ratelimit-policy")
    );
    // Keys without a tier are not limited on this route.
    for i in 1..=8 {
        let got = get_key(&url, Some(&keys.alice)).await;
        assert_eq!(got.status, 200, "alice {i}: {}", got.text());
    }
    let events = gw.stop().await;
    let ev = event_by_id(&events, &rid(&refused));
    assert!(
        findings(ev).contains(&("gold-tier".to_string(), Some("key.api_key".to_string()))),
        "{ev}"
    );
}

#[tokio::test]
async fn refusal_event_names_the_limit_and_metrics_count_it() {
    let _serial = SERIAL.lock().await;
    let up = Upstream::start().await;
    let (mut gw, keys) = memory_gateway(&up).await;
    let url = gw.url("/ip/orders");
    let admin = gw.admin();

    for _ in 0..5 {
        assert_eq!(get_key(&url, Some(&keys.alice)).await.status, 200);
    }
    let refused: Vec<Got> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(get_key(&url, Some(&keys.alice)).await);
        }
        v
    };
    for got in &refused {
        assert_problem(got, 429, "rate_limited");
    }

    let metrics = admin_request(admin, "GET", "/metrics", Some(ADMIN_TOKEN)).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert_eq!(
        metric(
            &text,
            r#"portcullis_protection_actions_total{action="rate_limited"}"#
        ),
        3.0,
        "{text}"
    );

    let events = gw.stop().await;
    for got in &refused {
        let ev = event_by_id(&events, &rid(got));
        assert_eq!(ev["unmapped"]["reason"], "rate_limited", "{ev}");
        assert_eq!(ev["http_response"]["code"], 429, "{ev}");
        let rate_findings: Vec<&Value> = ev["unmapped"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "rate_limit")
            .collect();
        assert_eq!(rate_findings.len(), 1, "{ev}");
        assert_eq!(rate_findings[0]["id"], "per-ip", "{ev}");
        assert_eq!(rate_findings[0]["location"], "key.ip", "{ev}");
        // A rate limit is not an authorization rule: the refusal has no other finding.
        assert_eq!(
            findings(ev),
            vec![("per-ip".to_string(), Some("key.ip".to_string()))],
            "{ev}"
        );
        assert!(
            !ev.to_string().contains(&keys.alice),
            "the key never reaches an event"
        );
    }
    // The allowed ones carry no rate-limit finding.
    let allowed = events
        .iter()
        .filter(|e| e["http_response"]["code"] == 200)
        .count();
    assert_eq!(allowed, 5);
}

// ---------------------------------------------------------------------------------------------
// Redis store

/// One route (`public`) limited by `shared`, counted per route so every client counts together,
/// against the Redis at `{redis}`; `{redis_extra}` adds store settings.
const REDIS_YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
rate_limit:
  store: redis
  redis:
    url: "{redis}"
{redis_extra}
  limits:
    shared:
      rate: {rate}
      per: {per}
      burst: {rate}
      key: route
routes:
  - name: shared
    upstream: app
    auth:
      public: true
    rate_limits:
      before_auth: [shared]
      headers: true
events:
  file: {dir}/events.jsonl
"#;

fn redis_yaml(redis: &RedisServer, extra: &str, rate: u32, per: &str) -> String {
    REDIS_YAML
        .replace("{redis}", &redis.url())
        .replace("{redis_extra}", extra)
        .replace("{rate}", &rate.to_string())
        .replace("{per}", per)
}

/// Three instances of the same config, as three gateway processes behind a load balancer.
async fn three_instances(yaml: &str, up: &Upstream) -> Vec<TestGateway> {
    let mut gws = Vec::new();
    for _ in 0..3 {
        gws.push(TestGateway::start(yaml, up).await);
    }
    gws
}

/// Keep-alive clients that send GETs to the instances in turn, each pausing `gap` between
/// requests, until `run_for` has passed. Returns (instance, sent at, status) per request.
async fn spread_load(
    addrs: &[SocketAddr],
    clients: usize,
    gap: Duration,
    run_for: Duration,
) -> Vec<(usize, Instant, u16)> {
    let start = Instant::now();
    let addrs = Arc::new(addrs.to_vec());
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addrs = addrs.clone();
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut out = Vec::new();
            let mut n = c;
            while start.elapsed() < run_for {
                let i = n % addrs.len();
                n += 1;
                let req = Request::get(format!("http://{}/load", addrs[i]))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let sent = Instant::now();
                let resp = client.request(req).await.unwrap();
                let status = resp.status().as_u16();
                http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .unwrap();
                out.push((i, sent, status));
                tokio::time::sleep(gap).await;
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|(_, at, _)| *at);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_limit_through_redis() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    // 60 per 5 s, bucket of 60: T = 83.3 ms. A roomy budget: this test is about sharing, and a
    // slow answer on a busy machine would switch an instance to its local fallback.
    let yaml = redis_yaml(&redis, "    budget: 250ms\n    instances: 3", 60, "5s");
    let mut gws = three_instances(&yaml, &up).await;
    let addrs: Vec<SocketAddr> = gws.iter().map(|g| g.addr(0)).collect();
    connect(&gws).await;

    // Six clients spread over the three instances for one window, each sending about every
    // 25 ms: far more than the limit, so the shared bucket is always drained.
    let results = spread_load(&addrs, 6, Duration::from_millis(25), Duration::from_secs(5)).await;
    let first = results.first().unwrap().1;
    let last = results.last().unwrap().1;
    let allowed: Vec<_> = results.iter().filter(|r| r.2 == 200).collect();
    let refused = results.iter().filter(|r| r.2 == 429).count();
    assert_eq!(
        allowed.len() + refused,
        results.len(),
        "only 200 and 429 are expected"
    );

    // From a full bucket, GCRA admits `burst + floor(D / T)` requests over a span D.
    let t = Duration::from_secs(5) / 60;
    let span = last - first;
    let permitted = 60 + (span.as_nanos() / t.as_nanos()) as usize;
    let tolerance = permitted / 20;
    let per_instance: Vec<usize> = (0..3)
        .map(|i| allowed.iter().filter(|r| r.0 == i).count())
        .collect();
    eprintln!(
        "sent {} over {span:?}: allowed {} (GCRA permits {permitted}), per instance {per_instance:?}",
        results.len(),
        allowed.len()
    );
    for g in &gws {
        let stats = g.gateway().snapshot().protection.limiter.stats();
        assert_eq!(
            stats.redis_failures, 0,
            "a Redis call failed, so an instance limited locally: {stats:?}"
        );
    }
    assert!(
        allowed.len().abs_diff(permitted) <= tolerance,
        "allowed {} across three instances, GCRA permits {permitted} ± {tolerance} over {span:?}",
        allowed.len()
    );
    assert!(
        per_instance.iter().all(|&n| n > 10),
        "every instance admitted its share: {per_instance:?}"
    );
    assert_eq!(up.count(), allowed.len());
    for g in &mut gws {
        g.stop().await;
    }
}

/// The status and latency of one GET to each address in turn, `rounds` times.
async fn round_robin(
    addrs: &[SocketAddr],
    rounds: usize,
) -> Vec<(usize, u16, Duration, Option<String>)> {
    let client = client();
    let mut out = Vec::new();
    for _ in 0..rounds {
        for (i, a) in addrs.iter().enumerate() {
            let started = Instant::now();
            let req = Request::get(format!("http://{a}/rr"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let status = resp.status().as_u16();
            let policy = resp
                .headers()
                .get("ratelimit-policy")
                .map(|v| v.to_str().unwrap().to_string());
            http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap();
            out.push((i, status, started.elapsed(), policy));
        }
    }
    out
}

async fn wait_for_health(gws: &[TestGateway], want: Health, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let states: Vec<Health> = gws
            .iter()
            .map(|g| g.gateway().snapshot().protection.limiter.health())
            .collect();
        if states.iter().all(|h| *h == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "limiters still {states:?} after {within:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Let every instance open its Redis connection before the test counts anything: the first
/// call connects, and on a busy machine that may not fit a tight time budget.
async fn connect(gws: &[TestGateway]) {
    for g in gws {
        let limiter = g.gateway().snapshot().protection.limiter.clone();
        let deadline = Instant::now() + Duration::from_secs(5);
        while limiter.ping().await.is_err() {
            assert!(Instant::now() < deadline, "no Redis connection within 5 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn stats(gws: &[TestGateway]) -> Vec<portcullis_policy::ratelimit::Stats> {
    gws.iter()
        .map(|g| g.gateway().snapshot().protection.limiter.stats())
        .collect()
}

fn lifecycle_count(gw: &TestGateway, kind: &str) -> usize {
    lifecycle_kinds(&gw.events_path)
        .iter()
        .filter(|k| *k == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fail_open_limits_locally_then_shared_limiting_resumes() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start();
    let up = Upstream::start().await;
    // 30 per minute shared (T = 2 s, so nothing refills within a phase); locally 10 each.
    let yaml = redis_yaml(
        &redis,
        "    budget: 15ms\n    mode: fail_open\n    instances: 3\n    cooldown: 500ms",
        30,
        "1m",
    );
    let mut gws = three_instances(&yaml, &up).await;
    let addrs: Vec<SocketAddr> = gws.iter().map(|g| g.addr(0)).collect();

    // Shared: the three instances together admit the bucket of 30, and no more.
    connect(&gws).await;
    let shared = round_robin(&addrs, 14).await;
    let ok = shared.iter().filter(|r| r.1 == 200).count();
    assert_eq!(
        ok,
        30,
        "one shared bucket across three instances; store stats {:?}",
        stats(&gws)
    );
    assert!(
        shared
            .iter()
            .all(|r| r.3.as_deref() == Some(r#""shared";q=30;w=60"#)),
        "{shared:?}"
    );
    let mut normal: Vec<Duration> = shared.iter().map(|r| r.2).collect();
    normal.sort();
    let normal_p50 = normal[normal.len() / 2];

    // Redis dies. Every request is still answered at once, limited locally at 30 / 3.
    redis.kill();
    let outage = round_robin(&addrs, 14).await;
    let slowest = outage.iter().map(|r| r.2).max().unwrap();
    eprintln!("normal p50 {normal_p50:?}, slowest during the outage {slowest:?}");
    assert!(
        outage.iter().all(|r| r.1 == 200 || r.1 == 429),
        "fail open answers, never 5xx: {outage:?}"
    );
    assert!(
        slowest <= normal_p50 + Duration::from_millis(50),
        "a request waited {slowest:?} for a dead Redis (normal {normal_p50:?})"
    );
    for i in 0..3 {
        let admitted = outage.iter().filter(|r| r.0 == i && r.1 == 200).count();
        assert_eq!(
            admitted, 10,
            "instance {i} limits locally at rate / instances: {outage:?}"
        );
    }
    assert!(
        outage
            .iter()
            .all(|r| r.3.as_deref() == Some(r#""shared";q=10;w=60"#)),
        "the local limit is advertised: {outage:?}"
    );
    wait_for_health(&gws, Health::Degraded, Duration::from_secs(2)).await;
    // The upkeep task turns the switch into one lifecycle event per instance (1 s tick).
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    for (i, g) in gws.iter().enumerate() {
        assert_eq!(
            lifecycle_count(g, "rate_limit_degraded"),
            1,
            "instance {i}: {:?}",
            lifecycle_kinds(&g.events_path)
        );
        assert_eq!(lifecycle_count(g, "rate_limit_recovered"), 0);
    }

    // Redis is back (empty) on the same port: the breakers' probes find it and the instances
    // share one bucket again.
    redis.restart();
    wait_for_health(&gws, Health::Healthy, Duration::from_secs(5)).await;
    let resumed = round_robin(&addrs, 14).await;
    let ok = resumed.iter().filter(|r| r.1 == 200).count();
    assert_eq!(
        ok,
        30,
        "shared limiting resumed: {resumed:?}; store stats {:?}",
        stats(&gws)
    );
    assert!(
        resumed
            .iter()
            .all(|r| r.3.as_deref() == Some(r#""shared";q=30;w=60"#)),
        "{resumed:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    for (i, g) in gws.iter().enumerate() {
        assert_eq!(
            lifecycle_count(g, "rate_limit_recovered"),
            1,
            "instance {i}: {:?}",
            lifecycle_kinds(&g.events_path)
        );
        assert_eq!(lifecycle_count(g, "rate_limit_degraded"), 1);
    }
    for g in &mut gws {
        g.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fail_closed_answers_503_rate_limit_unavailable() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start();
    let up = Upstream::start().await;
    let yaml = redis_yaml(
        &redis,
        "    budget: 15ms\n    mode: fail_closed\n    cooldown: 500ms",
        100,
        "1m",
    );
    let mut gw = TestGateway::start(&yaml, &up).await;
    let url = gw.url("/closed");
    connect(std::slice::from_ref(&gw)).await;

    assert_eq!(get(&url).await.status, 200);
    redis.kill();
    let mut refused = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let got = get(&url).await;
        let took = started.elapsed();
        let doc = assert_problem(&got, 503, "rate_limit_unavailable");
        assert!(got.header("retry-after").is_some(), "{doc}");
        assert!(took < Duration::from_millis(500), "answered in {took:?}");
        refused.push(rid(&got));
    }
    assert_eq!(
        up.count(),
        1,
        "nothing passes unlimited while Redis is down"
    );

    redis.restart();
    wait_for_health(
        std::slice::from_ref(&gw),
        Health::Healthy,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(get(&url).await.status, 200);

    let events = gw.stop().await;
    for r in &refused {
        assert_eq!(
            event_by_id(&events, r)["unmapped"]["reason"],
            "rate_limit_unavailable"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_block_and_limit_cost_one_round_trip_and_blocked_requests_are_not_counted() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let yaml = redis_yaml(&redis, "    budget: 250ms", 3, "1h");
    let mut a = TestGateway::start(&yaml, &up).await;
    let mut b = TestGateway::start(&yaml, &up).await;
    let limiter_a = a.gateway().snapshot().protection.limiter.clone();
    let limiter_b = b.gateway().snapshot().protection.limiter.clone();
    let calls_b = || limiter_b.stats().redis_calls;

    // One request through the limited route: the block-list lookup and the limit share ONE
    // Redis call (issue #4: it used to take two).
    let before = calls_b();
    let first = get(&b.url("/x")).await;
    assert_eq!(first.status, 200);
    let remaining = |got: &Got| got.header("ratelimit").unwrap_or_default().to_owned();
    assert!(
        remaining(&first).starts_with(r#""shared";r=2;"#),
        "{:?}",
        first.headers
    );
    assert_eq!(calls_b() - before, 1, "one Redis round trip per request");

    // A block made through instance A refuses the client at B on its next request, in the
    // same single call, and the refused requests are not counted against the limit.
    limiter_a
        .block("ip:127.0.0.1", Duration::from_secs(60))
        .await
        .unwrap();
    let before = calls_b();
    for _ in 0..3 {
        let refused = get(&b.url("/y")).await;
        assert_problem(&refused, 403, "blocked");
    }
    assert_eq!(
        calls_b() - before,
        3,
        "one Redis round trip per blocked request"
    );
    limiter_a.unblock("ip:127.0.0.1").await.unwrap();
    let after = get(&b.url("/z")).await;
    assert_eq!(after.status, 200);
    assert!(
        remaining(&after).starts_with(r#""shared";r=1;"#),
        "the blocked requests cost nothing: {:?}",
        after.headers
    );
    assert_eq!(up.count(), 2, "blocked requests never reach the upstream");
    assert_eq!(limiter_b.stats().redis_failures, 0);
    a.stop().await;
    b.stop().await;
}
