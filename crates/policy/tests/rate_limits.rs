//! Rate limiting against real stores: GCRA arithmetic in memory, the memory bound under a million
//! keys, and the Redis store against a real `redis-server` started per test (killed, paused,
//! restarted, script cache flushed). No mocks: a failure here is a failure in production.
//!
//! The tests share one lock. Several of them assert latencies of a few milliseconds, and on a
//! two-core machine a neighbour pushing a million keys through a map would make those numbers
//! about the neighbour instead of the code under test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_policy::ratelimit::{
    Decision, DecisionSource, FailureMode, Health, LimitSpec, MemoryConfig, MemoryStore,
    RateLimiter, RedisConfig, Transition, Verdict, combined_headers,
};
use portcullis_testkit::RedisServer;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Extra time a check may take beyond its budget: timer granularity (1 ms) plus scheduling on a
/// busy two-core machine.
const MARGIN: Duration = Duration::from_millis(25);

fn spec(name: &str, rate: u32, per: Duration, burst: u32) -> LimitSpec {
    LimitSpec::new(name, rate, per, burst).unwrap()
}

/// A Redis config for tests: a per-test key prefix and a roomy budget, unless a test is about
/// the budget.
fn redis_config(server: &RedisServer, budget: Duration) -> RedisConfig {
    RedisConfig {
        key_prefix: format!("t{}", server.port()),
        budget,
        ..RedisConfig::new(server.url())
    }
}

async fn admin(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `check`, timed.
async fn timed_check(limiter: &RateLimiter, limit: &LimitSpec, key: &str) -> (Decision, Duration) {
    let started = Instant::now();
    let d = limiter.check(limit, key).await;
    (d, started.elapsed())
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn memory_gcra_burst_then_steady_rate() {
    let _serial = SERIAL.blocking_lock();
    let store = MemoryStore::new(MemoryConfig::default());
    // 10 per second (T = 100 ms), bucket of 5.
    let limit = spec("gcra", 10, Duration::from_secs(1), 5);
    let t0 = Instant::now() + Duration::from_secs(1);
    let at = |ms: u64| t0 + Duration::from_millis(ms);

    // The burst: five at once, remaining counting down, each leaving the bucket further from full.
    for (i, remaining) in [4, 3, 2, 1, 0].into_iter().enumerate() {
        let d = store.check_at(&limit, "k", t0);
        assert!(d.allowed, "burst request {i}");
        assert_eq!(d.remaining, remaining);
        assert_eq!(d.retry_after, None);
        assert_eq!(d.reset_after, Duration::from_millis(100 * (i as u64 + 1)));
        assert_eq!(d.source, DecisionSource::Memory);
    }
    // Empty: refused, told to come back after exactly one interval; refusals consume nothing.
    for _ in 0..3 {
        let d = store.check_at(&limit, "k", t0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(Duration::from_millis(100)));
        assert_eq!(d.reset_after, Duration::from_millis(500));
        assert_eq!(d.retry_after_secs(), Some(1));
    }
    assert_eq!(
        store.check_at(&limit, "k", at(99)).retry_after,
        Some(Duration::from_millis(1))
    );
    // One interval later: exactly one more.
    assert!(store.check_at(&limit, "k", at(100)).allowed);
    assert!(!store.check_at(&limit, "k", at(100)).allowed);
    // At 250 ms the TAT is 600 ms: one passes (allowance point 200 ms), the next waits 50 ms.
    let d = store.check_at(&limit, "k", at(250));
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);
    let d = store.check_at(&limit, "k", at(250));
    assert_eq!(d.retry_after, Some(Duration::from_millis(50)));

    // Steady demand every 10 ms for 10 s on a fresh key: burst + D / T = 5 + 100 pass, exactly.
    let mut allowed = 0;
    for step in 0..=1_000u64 {
        if store.check_at(&limit, "steady", at(step * 10)).allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5 + 100);

    // After a long idle period the bucket is full again.
    let d = store.check_at(&limit, "k", at(60_000));
    assert!(d.allowed);
    assert_eq!(d.remaining, 4);

    // The response fields for it.
    let (policy, state) = d.headers();
    assert_eq!(policy, r#""gcra";q=10;w=1"#);
    assert_eq!(state, r#""gcra";r=4;t=1"#);
    let daily = spec("daily", 10_000, Duration::from_secs(86_400), 10_000);
    let d2 = store.check_at(&daily, "k", t0);
    let (policy, state) = combined_headers([&d, &d2]).unwrap();
    assert_eq!(policy, r#""gcra";q=10;w=1, "daily";q=10000;w=86400"#);
    assert_eq!(state, r#""gcra";r=4;t=1, "daily";r=9999;t=9"#);
}

#[test]
fn memory_store_bounds_a_million_keys() {
    let _serial = SERIAL.blocking_lock();
    const CAP: usize = 100_000;
    const KEYS: usize = 1_000_000;
    let store = MemoryStore::new(MemoryConfig {
        max_keys_per_limit: CAP,
        ..MemoryConfig::default()
    });
    let rss_before = resident_bytes();
    let mut key = String::with_capacity(32);

    // Keys that stay busy for an hour: nothing can be evicted, so the first CAP keys get their
    // own buckets and every later key shares the one fallback bucket (burst 1 => one passes).
    let sticky = spec("sticky", 1, Duration::from_secs(3_600), 1);
    let (mut own, mut overflow, mut overflow_allowed) = (0usize, 0usize, 0usize);
    for i in 0..KEYS {
        key.clear();
        std::fmt::Write::write_fmt(&mut key, format_args!("ip:{i}")).unwrap();
        let d = store.check(&sticky, &key);
        match d.source {
            DecisionSource::Memory => {
                own += 1;
                assert!(d.allowed);
            }
            DecisionSource::MemoryOverflow => {
                overflow += 1;
                overflow_allowed += usize::from(d.allowed);
            }
            other => panic!("unexpected source {other:?}"),
        }
        if i % 10_000 == 0 {
            assert!(store.tracked_keys("sticky") <= CAP);
        }
    }
    assert_eq!(store.tracked_keys("sticky"), CAP);
    assert_eq!((own, overflow), (CAP, KEYS - CAP));
    assert_eq!(overflow_allowed, 1, "keys beyond the cap share one bucket");
    // A tracked key still has its own bucket; a new one still meets the shared, empty bucket.
    assert_eq!(store.check(&sticky, "ip:7").source, DecisionSource::Memory);
    let late = store.check(&sticky, "ip:new");
    assert_eq!(late.source, DecisionSource::MemoryOverflow);
    assert!(!late.allowed);

    // Keys idle after 1 ms: sweeps keep evicting them, so later keys get buckets of their own
    // again, and the map still never exceeds the cap.
    let churn = spec("churn", 1_000, Duration::from_secs(1), 1);
    let mut own = 0usize;
    for i in 0..KEYS {
        key.clear();
        std::fmt::Write::write_fmt(&mut key, format_args!("ip:{i}")).unwrap();
        if store.check(&churn, &key).source == DecisionSource::Memory {
            own += 1;
        }
        if i % 10_000 == 0 {
            assert!(store.tracked_keys("churn") <= CAP);
        }
    }
    assert!(store.tracked_keys("churn") <= CAP);
    assert!(
        own > CAP,
        "idle keys were evicted to make room: {own} keys had their own bucket"
    );

    // Memory: what the maps hold, and what the process holds (a sanity bound; 1,000,000
    // retained keys would need well over 64 MiB).
    let held = store.approx_memory_bytes();
    println!("maps hold {held} bytes; {own} churn keys had their own bucket");
    assert!(held < 16 << 20, "maps hold {held} bytes");
    if let (Some(before), Some(after)) = (rss_before, resident_bytes()) {
        let grown = after.saturating_sub(before);
        println!("resident memory grew by {grown} bytes");
        assert!(grown < 64 << 20, "resident memory grew by {grown} bytes");
    }
    // Idle keys go entirely once their buckets are full again.
    std::thread::sleep(Duration::from_millis(5));
    store.evict_idle();
    assert_eq!(store.tracked_keys("churn"), 0);
    assert_eq!(store.tracked_keys("sticky"), CAP);
}

#[tokio::test]
async fn redis_gcra_answers_like_memory() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let config = redis_config(&server, Duration::from_millis(250));
    let prefix = config.key_prefix.clone();
    let limiter = RateLimiter::redis(config).unwrap();
    limiter.ping().await.unwrap();
    // One per hour, bucket of 3: timing cannot blur the numbers.
    let limit = spec("hourly", 1, Duration::from_secs(3_600), 3);
    for remaining in [2, 1, 0] {
        let d = limiter.check(&limit, "user:1").await;
        assert_eq!(d.source, DecisionSource::Redis);
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
        assert_eq!(d.retry_after, None);
    }
    let d = limiter.check(&limit, "user:1").await;
    assert!(!d.allowed && !d.unavailable);
    let retry = d.retry_after.unwrap();
    assert!(
        retry > Duration::from_secs(3_599) && retry <= Duration::from_secs(3_600),
        "{retry:?}"
    );
    assert!(
        d.reset_after > Duration::from_secs(3 * 3_600 - 5)
            && d.reset_after <= Duration::from_secs(3 * 3_600)
    );
    // Another key is independent.
    assert_eq!(limiter.check(&limit, "user:2").await.remaining, 2);

    // The bucket lives under a hash-tagged key whose TTL is the time until it is full again.
    let mut conn = admin(&server).await;
    let name = format!("{{{prefix}:rl:hourly:user:1}}");
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .unwrap();
    let expected = d.reset_after.as_millis() as i64;
    assert!(
        (ttl_ms - expected).abs() < 2_000,
        "ttl {ttl_ms} ms vs reset {expected} ms"
    );

    // The same sequence in memory gives the same decisions.
    let memory = MemoryStore::new(MemoryConfig::default());
    let now = Instant::now();
    let from_memory: Vec<(bool, u32)> = (0..4)
        .map(|_| memory.check_at(&limit, "user:1", now))
        .map(|d| (d.allowed, d.remaining))
        .collect();
    assert_eq!(from_memory, [(true, 2), (true, 1), (true, 0), (false, 0)]);
    assert_eq!(limiter.stats().redis_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limit_is_shared_across_instances_within_5_percent() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    // Three gateway instances: three limiters, three connection managers, one Redis.
    let limiters: Vec<Arc<RateLimiter>> = (0..3)
        .map(|_| {
            let config = redis_config(&server, Duration::from_millis(250));
            Arc::new(RateLimiter::redis(config).unwrap())
        })
        .collect();
    for l in &limiters {
        l.ping().await.unwrap();
    }
    // N = 100 per second with a burst of 100: from a full bucket, over D seconds at most
    // 100 + floor(D / 10 ms) requests pass.
    let limit = Arc::new(spec("shared", 100, Duration::from_secs(1), 100));
    let run = Duration::from_millis(1_200);
    let allowed = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + run;
    let mut tasks = Vec::new();
    for limiter in &limiters {
        for _ in 0..2 {
            let (limiter, limit) = (Arc::clone(limiter), Arc::clone(&limit));
            let (allowed, total) = (Arc::clone(&allowed), Arc::clone(&total));
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let d = limiter.check(&limit, "route:orders|key:k1").await;
                    assert_eq!(d.source, DecisionSource::Redis);
                    total.fetch_add(1, Ordering::Relaxed);
                    if d.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let allowed = allowed.load(Ordering::Relaxed) as f64;
    let total = total.load(Ordering::Relaxed);
    let interval = limit.emission_interval();
    let expected = f64::from(limit.burst) + (elapsed.as_nanos() / interval.as_nanos()) as f64;
    let deviation = (allowed - expected).abs() / expected;
    println!(
        "allowed {allowed} of {total} in {elapsed:?}; GCRA permits {expected}; off by {:.2}%",
        deviation * 100.0
    );
    assert!(
        total as f64 > 3.0 * expected,
        "the load must exceed the limit to test it ({total} checks)"
    );
    assert!(
        deviation <= 0.05,
        "allowed {allowed}, expected {expected} +-5%"
    );
    for l in &limiters {
        assert_eq!(l.stats().redis_failures, 0);
    }
}

/// Checks `limit`/`key` until a decision comes from Redis again (or `within` runs out); every
/// check must still return within the budget. Returns how many checks it took.
async fn wait_for_redis(
    limiter: &RateLimiter,
    limit: &LimitSpec,
    key: &str,
    budget: Duration,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    let mut checks = 0;
    while Instant::now() < deadline {
        let (d, took) = timed_check(limiter, limit, key).await;
        checks += 1;
        assert!(
            took <= budget + MARGIN,
            "check took {took:?} while recovering"
        );
        if d.source == DecisionSource::Redis {
            return checks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("shared limiting did not resume within {within:?}");
}

#[tokio::test]
async fn redis_killed_fail_open_limits_locally_then_recovers() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let budget = Duration::from_millis(5);
    let limiter = RateLimiter::redis(RedisConfig {
        mode: FailureMode::FailOpen,
        instances: 2,
        failure_threshold: 3,
        cooldown: Duration::from_millis(500),
        ..redis_config(&server, budget)
    })
    .unwrap();
    let mut health = limiter.subscribe_health();
    // 10 per minute, burst 10: with two instances each allows 5 (+1 per 12 s) locally.
    let limit = spec("per-key", 10, Duration::from_secs(60), 10);
    limiter.ping().await.unwrap();
    let d = limiter.check(&limit, "key:warm").await;
    assert_eq!(d.source, DecisionSource::Redis);
    limiter
        .block("ip:198.51.100.1", Duration::from_secs(60))
        .await
        .unwrap();

    server.kill();

    let mut worst = Duration::ZERO;
    let mut allowed = 0;
    for _ in 0..50 {
        let (d, took) = timed_check(&limiter, &limit, "key:k1").await;
        worst = worst.max(took);
        assert_eq!(d.source, DecisionSource::LocalFallback);
        assert!(!d.unavailable);
        allowed += usize::from(d.allowed);
    }
    println!("slowest check during the outage: {worst:?}");
    assert!(
        worst <= budget + MARGIN,
        "slowest check during the outage: {worst:?}"
    );
    assert_eq!(allowed, 5, "local limit = burst / instances");
    assert_eq!(limiter.health(), Health::Degraded);
    assert!(matches!(
        limiter.take_transition(),
        Some(Transition::Degraded { .. })
    ));
    assert_eq!(limiter.take_transition(), None, "one event per switch");
    assert!(health.has_changed().unwrap());
    assert_eq!(*health.borrow_and_update(), Health::Degraded);
    let stats = limiter.stats();
    assert!(
        stats.redis_failures >= 3 && stats.short_circuited > 0,
        "{stats:?}"
    );
    // While open, the decision needs no await at all.
    let now = limiter
        .check_now(&limit, "key:k1")
        .expect("breaker open: local decision");
    assert_eq!(now.source, DecisionSource::LocalFallback);
    // The block made before the outage still applies here.
    assert!(limiter.is_blocked("ip:198.51.100.1").await.is_some());

    server.restart();
    wait_for_redis(&limiter, &limit, "key:k2", budget, Duration::from_secs(10)).await;
    assert!(matches!(
        limiter.take_transition(),
        Some(Transition::Recovered { .. })
    ));
    assert_eq!(limiter.health(), Health::Healthy);
    assert_eq!(*health.borrow_and_update(), Health::Healthy);
    // Shared limiting again: a fresh Redis has a full bucket of 10 for a new key.
    let d = limiter.check(&limit, "key:k3").await;
    assert_eq!((d.source, d.remaining), (DecisionSource::Redis, 9));
    assert!(limiter.check_now(&limit, "key:k3").is_none());
}

#[tokio::test]
async fn redis_killed_fail_closed_answers_unavailable_then_recovers() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let budget = Duration::from_millis(5);
    let limiter = RateLimiter::redis(RedisConfig {
        mode: FailureMode::FailClosed,
        cooldown: Duration::from_millis(500),
        ..redis_config(&server, budget)
    })
    .unwrap();
    let limit = spec("strict", 100, Duration::from_secs(1), 100);
    assert_eq!(
        limiter.check(&limit, "k").await.source,
        DecisionSource::Redis
    );

    server.kill();

    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let (d, took) = timed_check(&limiter, &limit, "k").await;
        worst = worst.max(took);
        assert!(d.unavailable && !d.allowed, "{d:?}");
        assert_eq!(d.source, DecisionSource::Unavailable);
        let retry = d.retry_after.unwrap();
        assert!(retry <= Duration::from_millis(500), "{retry:?}");
        assert_eq!(d.retry_after_secs(), Some(1));
    }
    println!("slowest check during the outage: {worst:?}");
    assert!(
        worst <= budget + MARGIN,
        "slowest check during the outage: {worst:?}"
    );
    assert!(matches!(
        limiter.take_transition(),
        Some(Transition::Degraded { .. })
    ));
    assert!(limiter.stats().unavailable_decisions >= 20);

    server.restart();
    wait_for_redis(&limiter, &limit, "k", budget, Duration::from_secs(10)).await;
    assert!(matches!(
        limiter.take_transition(),
        Some(Transition::Recovered { .. })
    ));
    let d = limiter.check(&limit, "k").await;
    assert!(d.allowed && !d.unavailable);
}

#[tokio::test]
async fn slow_redis_counts_as_failure_within_budget() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let budget = Duration::from_millis(5);
    let limiter = RateLimiter::redis(RedisConfig {
        cooldown: Duration::from_millis(300),
        ..redis_config(&server, budget)
    })
    .unwrap();
    let limit = spec("slow", 1_000, Duration::from_secs(1), 1_000);
    assert_eq!(
        limiter.check(&limit, "k").await.source,
        DecisionSource::Redis
    );

    // Redis stops answering every client for 250 ms (as a long-running command would).
    let mut conn = admin(&server).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(250)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let (d, took) = timed_check(&limiter, &limit, "k").await;
        worst = worst.max(took);
        assert_eq!(d.source, DecisionSource::LocalFallback);
        assert!(d.allowed);
    }
    println!("slowest check while paused: {worst:?}");
    assert!(
        worst <= budget + MARGIN,
        "slowest check while paused: {worst:?}"
    );
    let stats = limiter.stats();
    assert_eq!(stats.redis_timeouts, 3, "{stats:?}");
    assert_eq!(stats.redis_failures, 3, "{stats:?}");
    match limiter.take_transition() {
        Some(Transition::Degraded { reason }) => {
            assert!(reason.contains("no answer within"), "{reason}");
        }
        other => panic!("expected a Degraded transition, got {other:?}"),
    }
    wait_for_redis(&limiter, &limit, "k", budget, Duration::from_secs(10)).await;
    assert!(matches!(
        limiter.take_transition(),
        Some(Transition::Recovered { .. })
    ));
}

#[tokio::test]
async fn script_flush_is_survived() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let limiter = RateLimiter::redis(redis_config(&server, Duration::from_millis(250))).unwrap();
    let limit = spec("flush", 1, Duration::from_secs(3_600), 10);
    assert_eq!(limiter.check(&limit, "k").await.remaining, 9);
    assert_eq!(limiter.check(&limit, "k").await.remaining, 8);

    let mut conn = admin(&server).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();

    // NOSCRIPT -> reload -> run, inside one check; the bucket's state is untouched.
    let d = limiter.check(&limit, "k").await;
    assert_eq!(
        (d.source, d.allowed, d.remaining),
        (DecisionSource::Redis, true, 7)
    );
    assert_eq!(limiter.check(&limit, "k").await.remaining, 6);
    assert_eq!(limiter.stats().redis_failures, 0);
}

#[tokio::test]
async fn block_list_is_shared_and_expires() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let a = RateLimiter::redis(redis_config(&server, Duration::from_millis(250))).unwrap();
    let b = RateLimiter::redis(RedisConfig {
        max_listed_blocks: 3,
        ..redis_config(&server, Duration::from_millis(250))
    })
    .unwrap();

    a.block("ip:203.0.113.7", Duration::from_secs(30))
        .await
        .unwrap();
    a.block("ip:203.0.113.8", Duration::from_millis(300))
        .await
        .unwrap();
    let left = b.is_blocked("ip:203.0.113.7").await.unwrap();
    assert!(
        left > Duration::from_secs(29) && left <= Duration::from_secs(30),
        "{left:?}"
    );
    assert!(b.is_blocked("ip:203.0.113.8").await.is_some());
    assert_eq!(b.is_blocked("ip:203.0.113.9").await, None);

    let mut listed = b.list_blocks().await;
    listed.sort();
    let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["ip:203.0.113.7", "ip:203.0.113.8"]);

    // Expiry is Redis's: the short block disappears everywhere.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.is_blocked("ip:203.0.113.8").await, None);
    assert_eq!(a.is_blocked("ip:203.0.113.8").await, None);
    assert_eq!(b.list_blocks().await.len(), 1);

    // Unblocking on one instance lifts it on the other, whose local mirror had it too.
    b.unblock("ip:203.0.113.7").await.unwrap();
    assert_eq!(a.is_blocked("ip:203.0.113.7").await, None);

    // Listing is bounded.
    for i in 0..5 {
        a.block(&format!("key:k{i}"), Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(b.list_blocks().await.len(), 3);
    assert_eq!(a.list_blocks().await.len(), 5);

    // During an outage each instance still enforces the blocks it made or saw.
    assert!(b.is_blocked("key:k1").await.is_some());
    server.kill();
    assert!(a.is_blocked("key:k1").await.is_some());
    assert!(b.is_blocked("key:k1").await.is_some());
    assert_eq!(b.is_blocked("key:k2").await, None, "b never saw this one");
    assert!(a.block("key:late", Duration::from_secs(5)).await.is_err());
    assert!(
        a.is_blocked("key:late").await.is_some(),
        "still applied locally"
    );

    // The memory store offers the same API.
    let m = RateLimiter::memory(MemoryConfig::default());
    m.block("ip:1", Duration::from_millis(100)).await.unwrap();
    assert!(m.is_blocked("ip:1").await.is_some());
    assert_eq!(m.list_blocks().await.len(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(m.is_blocked("ip:1").await, None);
    m.block("ip:2", Duration::from_secs(5)).await.unwrap();
    m.unblock("ip:2").await.unwrap();
    assert!(m.list_blocks().await.is_empty());
}

#[tokio::test]
async fn starts_and_answers_while_redis_is_down() {
    let _serial = SERIAL.lock().await;
    // A port where nothing listens: the server is started and killed to get one.
    let mut server = RedisServer::start();
    server.kill();
    let budget = Duration::from_millis(5);
    let limiter = RateLimiter::redis(redis_config(&server, budget)).unwrap();
    let limit = spec("boot", 10, Duration::from_secs(1), 10);
    for _ in 0..10 {
        let (d, took) = timed_check(&limiter, &limit, "k").await;
        assert!(took <= budget + MARGIN, "{took:?}");
        assert_eq!(d.source, DecisionSource::LocalFallback);
        assert!(d.allowed);
    }
    assert!(limiter.ping().await.is_err());
    assert_eq!(limiter.health(), Health::Degraded);
    // And it connects once Redis appears.
    server.restart();
    wait_for_redis(&limiter, &limit, "k", budget, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_foreign_value_under_one_key_does_not_open_the_breaker() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let config = redis_config(&server, Duration::from_millis(250));
    let prefix = config.key_prefix.clone();
    let limiter = RateLimiter::redis(config).unwrap();
    let limit = spec("typed", 10, Duration::from_secs(1), 10);
    // Someone stored a hash where a bucket lives.
    let mut conn = admin(&server).await;
    let _: () = redis::cmd("HSET")
        .arg(format!("{{{prefix}:rl:typed:bad}}"))
        .arg("f")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..5 {
        let d = limiter.check(&limit, "bad").await;
        assert_eq!(d.source, DecisionSource::LocalFallback);
    }
    assert_eq!(limiter.health(), Health::Healthy);
    assert_eq!(limiter.take_transition(), None);
    assert_eq!(limiter.stats().redis_failures, 5);
    assert_eq!(
        limiter.check(&limit, "good").await.source,
        DecisionSource::Redis
    );
}

#[tokio::test]
async fn block_check_and_limit_share_one_round_trip() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let budget = Duration::from_millis(250);
    let a = RateLimiter::redis(redis_config(&server, budget)).unwrap();
    let b = RateLimiter::redis(redis_config(&server, budget)).unwrap();
    let limit = spec("combined", 1, Duration::from_secs(3_600), 3);
    let key = "ip:198.51.100.4";

    // Not blocked: counted in Redis, shared with the other instance, one call each.
    let before = b.stats().redis_calls;
    let Verdict::Checked(d) = b.check_unless_blocked(key, &limit, key).await else {
        panic!("not blocked yet");
    };
    assert_eq!(
        b.stats().redis_calls,
        before + 1,
        "one round trip per check"
    );
    assert_eq!(
        (d.allowed, d.remaining, d.source),
        (true, 2, DecisionSource::Redis)
    );
    assert_eq!(
        a.check(&limit, key).await.remaining,
        1,
        "the bucket is in Redis"
    );

    // A block set by ANOTHER instance applies to the very next request, which is not counted.
    a.block(key, Duration::from_secs(30)).await.unwrap();
    let before = b.stats().redis_calls;
    match b.check_unless_blocked(key, &limit, key).await {
        Verdict::Blocked(left) => assert!(left > Duration::from_secs(29), "{left:?}"),
        other => panic!("the block made at `a` was not seen at `b`: {other:?}"),
    }
    assert_eq!(b.stats().redis_calls, before + 1);
    // Lifted at `a`: `b` counts again, from where the bucket was (the blocked request cost
    // nothing), and its local copy of the block is gone too.
    a.unblock(key).await.unwrap();
    let Verdict::Checked(d) = b.check_unless_blocked(key, &limit, key).await else {
        panic!("unblocked at `a`");
    };
    assert_eq!((d.allowed, d.remaining), (true, 0));
    assert_eq!(b.local_store().is_blocked(key), None);

    // A block without expiry (written by an operator) blocks too.
    let mut admin = admin(&server).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{{t{}:bl:ip:192.0.2.99}}", server.port()))
        .arg(1)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        b.check_unless_blocked("ip:192.0.2.99", &limit, "ip:192.0.2.99")
            .await,
        Verdict::Blocked(Duration::MAX)
    );

    // During an outage the blocks this instance saw still apply, then the failure mode does.
    b.block("ip:192.0.2.1", Duration::from_secs(30))
        .await
        .unwrap();
    server.kill();
    assert!(matches!(
        b.check_unless_blocked("ip:192.0.2.1", &limit, "ip:192.0.2.1")
            .await,
        Verdict::Blocked(_)
    ));
    let Verdict::Checked(d) = b
        .check_unless_blocked("ip:192.0.2.2", &limit, "ip:192.0.2.2")
        .await
    else {
        panic!("never blocked");
    };
    assert_eq!(d.source, DecisionSource::LocalFallback);
}
