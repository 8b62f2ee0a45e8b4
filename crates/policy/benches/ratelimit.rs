//! Criterion benchmarks: the in-process rate limiter's per-request check (`MemoryStore::check`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Every case is an allowed request under one generous limit (1,000,000/s, burst u32::MAX), so no
// bucket ever empties during a run and each check takes the allow path. Store: the default
// `MemoryConfig` (16 shards, 100,000 keys per limit) unless said otherwise. Keys look like the
// gateway's (`ip:<address>`) and are built in setup, so no case formats a key.
//
// - `ratelimit/existing_key`: one key, already tracked (the hot path: limit-table read lock,
//   two hashes, one shard mutex, GCRA arithmetic, the `Decision` with its `Arc<str>` clone).
//   The target for this case is under 200 ns.
// - `ratelimit/existing_key_check_at`: the same with the instant passed in (`check_at`), i.e.
//   without the `Instant::now()` that `check` reads: the difference is the clock's share.
// - `ratelimit/check_now_existing_key`: the same through `RateLimiter::check_now` on a memory
//   limiter (the gateway's entry point; adds the backend match and the `Option`).
// - `ratelimit/rotating_10k_keys`: 10,000 tracked keys visited in turn, so consecutive checks
//   touch different shards and map entries (cold(er) cache lines instead of one hot entry).
// - `ratelimit/insert_new_key`: every check is a key the store has never seen (the first request
//   of a new client): reservation against the cap, a `Box<str>` for the key, the map insert with
//   its amortised growth. Each sample gets a fresh store (cap above the sample's size, so the
//   full-map/fallback path is never taken); building and dropping stores and keys is not timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_policy::ratelimit::{LimitSpec, MemoryConfig, MemoryStore, RateLimiter};

const KEY: &str = "ip:192.0.2.10";
const ROTATING_KEYS: usize = 10_000;

fn generous() -> LimitSpec {
    LimitSpec::new("bench", 1_000_000, Duration::from_secs(1), u32::MAX).unwrap()
}

/// `count` distinct client-address keys.
fn keys(count: usize, prefix: &str) -> Vec<String> {
    (0..count)
        .map(|i| {
            format!(
                "{prefix}:10.{}.{}.{}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            )
        })
        .collect()
}

fn ratelimit(c: &mut Criterion) {
    let spec = generous();

    let store = MemoryStore::new(MemoryConfig::default());
    assert!(store.check(&spec, KEY).allowed);
    assert_eq!(store.tracked_keys("bench"), 1);

    let limiter = RateLimiter::memory(MemoryConfig::default());
    assert!(limiter.check_now(&spec, KEY).unwrap().allowed);

    let rotating = keys(ROTATING_KEYS, "ip");
    let rotating_store = MemoryStore::new(MemoryConfig::default());
    for key in &rotating {
        assert!(rotating_store.check(&spec, key).allowed);
    }
    assert_eq!(rotating_store.tracked_keys("bench"), ROTATING_KEYS);

    let mut group = c.benchmark_group("ratelimit");
    group.bench_function("existing_key", |b| {
        b.iter(|| store.check(black_box(&spec), black_box(KEY)));
    });
    group.bench_function("existing_key_check_at", |b| {
        let now = Instant::now();
        b.iter(|| store.check_at(black_box(&spec), black_box(KEY), black_box(now)));
    });
    group.bench_function("check_now_existing_key", |b| {
        b.iter(|| limiter.check_now(black_box(&spec), black_box(KEY)));
    });
    group.bench_function("rotating_10k_keys", |b| {
        let mut next = 0;
        b.iter(|| {
            let key = rotating[next].as_str();
            next = (next + 1) % ROTATING_KEYS;
            rotating_store.check(black_box(&spec), black_box(key))
        });
    });
    group.bench_function("insert_new_key", |b| {
        b.iter_custom(|iters| {
            let count = usize::try_from(iters).unwrap();
            let fresh = keys(count, "new");
            let store = MemoryStore::new(MemoryConfig {
                max_keys_per_limit: count + 1,
                ..MemoryConfig::default()
            });
            // Create the limit's table first: only key inserts are timed, not the first use of a
            // limit name.
            assert!(store.check(&spec, KEY).allowed);
            let start = Instant::now();
            for key in &fresh {
                black_box(store.check(black_box(&spec), black_box(key.as_str())));
            }
            let elapsed = start.elapsed();
            assert_eq!(store.tracked_keys("bench"), count + 1);
            elapsed
        });
    });
    group.finish();

    // The limit was generous enough: every bucket still admits requests after the runs.
    assert!(store.check(&spec, KEY).allowed);
    assert!(limiter.check_now(&spec, KEY).unwrap().allowed);
    assert!(
        rotating
            .iter()
            .all(|k| rotating_store.check(&spec, k).allowed)
    );
}

fn config() -> Criterion {
    // Short defaults for a shared machine; command-line flags still override them.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ratelimit
}
criterion_main!(benches);
