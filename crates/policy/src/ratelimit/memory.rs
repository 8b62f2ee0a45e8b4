//! The in-process store: GCRA over bounded, sharded maps, for a single gateway instance or as the
//! local fallback of the Redis store.
//!
//! Why not `governor`'s keyed limiter: its keyed state store grows with every distinct key until a
//! caller runs `retain_recent`, offers no cap, and looks keys up by `&K` (so `String` keys would
//! need an allocation per check). Keys here are attacker-chosen (client addresses, API keys), so
//! the map must have a hard bound; the GCRA itself is a few lines (`gcra.rs`).
//!
//! Memory bound, per limit:
//! - at most `max_keys_per_limit` keys are tracked, enforced with an atomic reservation before
//!   every insert, so the bound holds exactly even under concurrency;
//! - a key whose TAT lies in the past carries no information (its bucket is full) and is evicted:
//!   by [`MemoryStore::evict_idle`] (call it periodically) and by a sweep triggered when the cap is
//!   hit (at most once per `sweep_interval`, so a full map of busy keys is not rescanned per
//!   request);
//! - a NEW key that finds the map full is limited by one shared fallback bucket for that limit
//!   (same spec). Under a key-spraying flood the newcomers therefore share one budget instead of
//!   each getting a fresh one, which is the point: an attacker cannot buy capacity with keys.
//!
//! The hot path for a known key (issue #4: under 200 ns) finds the limit's table without a lock
//! (an insert-only index: one acquire load and a name comparison), hashes the key ONCE and uses
//! that hash twice, its high bits to pick the shard and the rest inside the shard's
//! `hashbrown::HashTable`, then takes one shard mutex. Lookups go by `&str`, and nothing is
//! allocated except for a new key's entry.
//!
//! The hash is foldhash keyed from the operating system's randomness ([`keyed_hasher`]). Keys are
//! attacker-chosen, so the hash must be keyed: with a secret seed, an attacker cannot compute in
//! advance which keys collide. foldhash is not SipHash (it only claims to be "minimally
//! DoS-resistant": no proof, and a patient attacker timing a long-running process might learn
//! something about the seed), but SipHash-1-3 cost about 175 instructions per 13-byte key here,
//! the largest single item of a check, against about 30 for foldhash. The table is also bounded
//! (`max_keys_per_limit`) and sharded, so even a successful collision attack degrades one shard's
//! probe chains, not the process.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use hashbrown::HashTable;

use super::gcra::{self, GcraParams, Outcome};
use super::{Decision, DecisionSource, LimitSpec, RateLimitError};

/// Bounds and housekeeping of a [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Keys tracked per limit before new keys share the fallback bucket. Default 100,000.
    pub max_keys_per_limit: usize,
    /// Lock shards per limit; more shards, less contention between cores. Default 16.
    pub shards: usize,
    /// Minimum time between two sweeps that a full map triggers by itself. Default 100 ms.
    pub sweep_interval: Duration,
    /// Distinct limit names tracked; names beyond it share one table (a configuration error,
    /// logged, never unbounded growth). Default 1,024.
    pub max_limits: usize,
    /// Entries of the block list. Default 100,000.
    pub max_blocks: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_keys_per_limit: 100_000,
            shards: 16,
            sweep_interval: Duration::from_millis(100),
            max_limits: 1_024,
            max_blocks: 100_000,
        }
    }
}

/// Rate limits and a block list held in this process. Cheap to share behind an `Arc`; every
/// method takes `&self` and none blocks on I/O.
#[derive(Debug)]
pub struct MemoryStore {
    epoch: Instant,
    config: MemoryConfig,
    tables: LimitIndex,
    /// Where limit names beyond `max_limits` go, so a runaway caller cannot grow the table map.
    overflow: LimitTable,
    blocks: BlockTable,
}

impl MemoryStore {
    /// An empty store. Zero values in `config` are raised to 1 (a cap of 0 would refuse to track
    /// anything, which no one means).
    pub fn new(config: MemoryConfig) -> Self {
        let config = MemoryConfig {
            max_keys_per_limit: config.max_keys_per_limit.max(1),
            shards: config.shards.clamp(1, 1_024),
            sweep_interval: config.sweep_interval,
            max_limits: config.max_limits.max(1),
            max_blocks: config.max_blocks.max(1),
        };
        let overflow = LimitTable::new("overflow", &config);
        MemoryStore {
            epoch: Instant::now(),
            blocks: BlockTable::new(config.max_blocks),
            tables: LimitIndex::new(config.max_limits),
            overflow,
            config,
        }
    }

    /// The configuration in force (after normalisation).
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// Counts one request for `key` under `limit`, now. Synchronous and allocation-free for a key
    /// already tracked: the gateway may call it without an `.await`.
    pub fn check(&self, limit: &LimitSpec, key: &str) -> Decision {
        self.check_at(limit, key, Instant::now())
    }

    /// [`check`](Self::check) at a given instant, for deterministic tests and replays. Instants
    /// before the store was created count as its creation.
    pub fn check_at(&self, limit: &LimitSpec, key: &str, now: Instant) -> Decision {
        let params = GcraParams::new(limit, 1);
        self.check_params(&limit.name, &params, key, self.nanos(now))
    }

    /// Keys currently tracked for the limit named `limit_name` (0 if it was never checked).
    pub fn tracked_keys(&self, limit_name: &str) -> usize {
        self.tables
            .find(limit_name)
            .map_or(0, |t| t.tracked.load(Ordering::Relaxed))
    }

    /// An estimate of the heap held by the rate-limit maps and the block list: table capacity
    /// times entry size, plus key bytes. For tests and a gauge; walks every map, so not per request.
    pub fn approx_memory_bytes(&self) -> usize {
        let limits: usize = self
            .tables
            .iter()
            .chain(std::iter::once(&self.overflow))
            .map(LimitTable::approx_bytes)
            .sum();
        limits + self.blocks.approx_bytes()
    }

    /// Forgets every key whose bucket is full again (and every expired block); returns how many
    /// entries went. Call it periodically (every few seconds) from a background task so that maps
    /// shrink after a burst of one-off clients even when no new keys arrive.
    pub fn evict_idle(&self) -> usize {
        let now = self.nanos(Instant::now());
        let limits: usize = self
            .tables
            .iter()
            .chain(std::iter::once(&self.overflow))
            .map(|t| t.sweep(now))
            .sum();
        limits + self.blocks.sweep(now)
    }

    /// Blocks `key` for `ttl`, replacing an earlier block of it. Fails only when the block list
    /// is full of unexpired entries.
    pub fn block(&self, key: &str, ttl: Duration) -> Result<(), RateLimitError> {
        let now = self.nanos(Instant::now());
        self.blocks
            .block(key, now.saturating_add(duration_ns(ttl)), now)
    }

    /// How long `key` stays blocked, or `None` if it is not blocked.
    pub fn is_blocked(&self, key: &str) -> Option<Duration> {
        self.blocks.remaining(key, self.nanos(Instant::now()))
    }

    /// Lifts a block; returns whether there was one.
    pub fn unblock(&self, key: &str) -> bool {
        self.blocks.remove(key)
    }

    /// Every unexpired block with its remaining time, in no particular order.
    pub fn list_blocks(&self) -> Vec<(String, Duration)> {
        self.blocks.list(self.nanos(Instant::now()))
    }

    /// Nanoseconds since the store's epoch: a monotonic clock that fits a `u64` for 584 years.
    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        duration_ns(at.saturating_duration_since(self.epoch))
    }

    /// Records a block that expires at `until` (store nanoseconds); used by the Redis store to
    /// mirror blocks it learns about, so they survive an outage.
    pub(crate) fn block_until(&self, key: &str, until: u64) -> Result<(), RateLimitError> {
        self.blocks.block(key, until, self.nanos(Instant::now()))
    }

    /// The core check with explicit parameters and time, shared with the Redis store's fail-open
    /// path (which scales the limit down for several instances).
    pub(crate) fn check_params(
        &self,
        name: &str,
        params: &GcraParams,
        key: &str,
        now: u64,
    ) -> Decision {
        if let Some(table) = self.tables.find(name) {
            return table.check(params, key, now);
        }
        // First use of this limit name: create its table (under the index's mutex), then check.
        match self.tables.find_or_create(name, &self.config) {
            Some(table) => table.check(params, key, now),
            None => {
                tracing::warn!(
                    limit = name,
                    max_limits = self.config.max_limits,
                    "rate limit names exceed max_limits; sharing the overflow table"
                );
                self.overflow.check(params, key, now)
            }
        }
    }
}

/// The limit tables by name: open addressing over insert-only `OnceLock` slots. A check finds its
/// table without taking a lock (one acquire load per probe and a name comparison) where a
/// `RwLock<HashMap>` cost two atomic read-modify-writes on a shared cache line plus a SipHash of
/// the name on every request. Tables are never removed (names are bounded by `max_limits`), so a
/// probe chain can only grow and a reader that misses a concurrent insert just takes the creation
/// path, which looks again under the mutex.
#[derive(Debug)]
struct LimitIndex {
    /// A power of two at least twice `max`: the index is never more than half full, so probe
    /// chains stay short and always reach an empty slot.
    slots: Box<[OnceLock<Box<LimitTable>>]>,
    /// Limit names come from configuration, not from clients; the keyed hash is used anyway, as
    /// it costs next to nothing.
    hasher: SeedableRandomState,
    /// Tables created; held while creating, so one name never gets two slots.
    created: Mutex<usize>,
    max: usize,
}

impl LimitIndex {
    fn new(max: usize) -> Self {
        let len = max.saturating_mul(2).next_power_of_two().max(2);
        LimitIndex {
            slots: (0..len).map(|_| OnceLock::new()).collect(),
            hasher: keyed_hasher(),
            created: Mutex::new(0),
            max,
        }
    }

    /// Slot indexes in probe order for `name`: linear probing from its hash.
    fn probe(&self, name: &str) -> impl Iterator<Item = usize> {
        let mask = self.slots.len() - 1;
        // Truncation is intended: only the low bits select the first slot.
        let start = self.hasher.hash_one(name) as usize;
        (0..self.slots.len()).map(move |i| start.wrapping_add(i) & mask)
    }

    fn find(&self, name: &str) -> Option<&LimitTable> {
        for i in self.probe(name) {
            let table = self.slots[i].get()?;
            if *table.name == *name {
                return Some(table);
            }
        }
        None
    }

    /// The table for `name`, created if absent; `None` when `max` tables exist already.
    fn find_or_create(&self, name: &str, config: &MemoryConfig) -> Option<&LimitTable> {
        let mut created = lock(&self.created);
        for i in self.probe(name) {
            if let Some(table) = self.slots[i].get() {
                if *table.name == *name {
                    return Some(table);
                }
                continue;
            }
            if *created >= self.max {
                return None;
            }
            *created += 1;
            // Only creators write slots, and they hold `created`: this slot is still empty.
            return Some(self.slots[i].get_or_init(|| Box::new(LimitTable::new(name, config))));
        }
        None
    }

    fn iter(&self) -> impl Iterator<Item = &LimitTable> {
        self.slots
            .iter()
            .filter_map(|slot| slot.get().map(|t| &**t))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        *lock(&self.created)
    }
}

/// One tracked key: its name and its TAT (store nanoseconds).
#[derive(Debug)]
struct Entry {
    key: Box<str>,
    tat: u64,
}

/// One lock shard of a limit. A `HashTable` rather than a `HashMap`: the caller hashes the key
/// once and uses that hash for both the shard and the slot.
type Shard = Mutex<HashTable<Entry>>;

/// One limit's keys: sharded maps of key -> TAT, an exact count, and the shared fallback bucket.
#[derive(Debug)]
struct LimitTable {
    name: Arc<str>,
    shards: Box<[Shard]>,
    /// The one keyed hash of a key (see the module docs). Bits 32..56 pick the shard;
    /// the shard's table uses the low bits for the bucket and the top 7 as tags, so the shard
    /// choice is independent of the position inside the shard (the same bits for both would
    /// crowd each shard's keys into a fraction of its buckets).
    hasher: SeedableRandomState,
    tracked: AtomicUsize,
    cap: usize,
    /// TAT of the bucket shared by new keys once the map is full (0 = full bucket).
    fallback_tat: AtomicU64,
    last_sweep: AtomicU64,
    sweep_interval_ns: u64,
}

impl LimitTable {
    fn new(name: &str, config: &MemoryConfig) -> Self {
        let shards = (0..config.shards)
            .map(|_| Mutex::new(HashTable::new()))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        LimitTable {
            name: name.into(),
            shards,
            hasher: keyed_hasher(),
            tracked: AtomicUsize::new(0),
            cap: config.max_keys_per_limit,
            fallback_tat: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
            sweep_interval_ns: duration_ns(config.sweep_interval),
        }
    }

    fn shard(&self, hash: u64) -> &Shard {
        // 24 bits above the low word: see `hasher`. `shards` is never empty (`MemoryStore::new`
        // clamps it to at least 1), so the index is always in bounds.
        let high = usize::try_from((hash >> 32) & 0x00ff_ffff).unwrap_or(0);
        &self.shards[high % self.shards.len()]
    }

    /// Rehashes an entry when its shard's table grows or shrinks (amortised; never per check).
    fn rehash(&self) -> impl Fn(&Entry) -> u64 + '_ {
        |entry| self.hasher.hash_one(&*entry.key)
    }

    fn check(&self, params: &GcraParams, key: &str, now: u64) -> Decision {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        {
            let mut map = lock(shard);
            if let Some(entry) = map.find_mut(hash, |e| *e.key == *key) {
                let outcome = gcra::evaluate(params, Some(entry.tat), now);
                entry.tat = outcome.new_tat;
                return self.decision(params, &outcome, DecisionSource::Memory);
            }
            if self.reserve() {
                let outcome = gcra::evaluate(params, None, now);
                map.insert_unique(
                    hash,
                    Entry {
                        key: key.into(),
                        tat: outcome.new_tat,
                    },
                    self.rehash(),
                );
                return self.decision(params, &outcome, DecisionSource::Memory);
            }
        }
        // Full. Idle keys may be holding the room: sweep (rate-limited) and try once more. The
        // shard lock is released first because the sweep takes every shard's lock in turn.
        if self.sweep_if_due(now) && self.reserve() {
            let mut map = lock(shard);
            // Another thread may have inserted the same key meanwhile; then give the slot back.
            let outcome = match map.find_mut(hash, |e| *e.key == *key) {
                Some(entry) => {
                    self.release(1);
                    let outcome = gcra::evaluate(params, Some(entry.tat), now);
                    entry.tat = outcome.new_tat;
                    outcome
                }
                None => {
                    let outcome = gcra::evaluate(params, None, now);
                    let entry = Entry {
                        key: key.into(),
                        tat: outcome.new_tat,
                    };
                    map.insert_unique(hash, entry, self.rehash());
                    outcome
                }
            };
            return self.decision(params, &outcome, DecisionSource::Memory);
        }
        let outcome = self.check_fallback(params, now);
        self.decision(params, &outcome, DecisionSource::MemoryOverflow)
    }

    /// Claims one slot of the cap, or says there is none.
    fn reserve(&self) -> bool {
        self.tracked
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        // Saturating so that a bookkeeping slip can never wrap the counter and lift the cap.
        let _ = self
            .tracked
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(n))
            });
    }

    /// The shared bucket of keys that found the map full: a lock-free compare-and-swap loop on
    /// its TAT.
    fn check_fallback(&self, params: &GcraParams, now: u64) -> Outcome {
        let mut current = self.fallback_tat.load(Ordering::Acquire);
        loop {
            let outcome = gcra::evaluate(params, Some(current), now);
            if outcome.new_tat == current {
                return outcome;
            }
            match self.fallback_tat.compare_exchange_weak(
                current,
                outcome.new_tat,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }

    /// Sweeps unless another sweep ran less than `sweep_interval` ago; returns whether it swept.
    fn sweep_if_due(&self, now: u64) -> bool {
        let last = self.last_sweep.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < self.sweep_interval_ns {
            return false;
        }
        // One thread wins the slot; the others go to the fallback bucket instead of queueing
        // behind the same scan.
        if self
            .last_sweep
            .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.sweep(now) > 0
    }

    /// Drops keys whose TAT is not after `now` (a full bucket: nothing to remember).
    fn sweep(&self, now: u64) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut map = lock(shard);
            let before = map.len();
            map.retain(|e| e.tat > now);
            removed += before - map.len();
            // Give memory back after a flood has drained, but not on every small sweep: shrinking
            // only when three quarters of the room is unused keeps steady states rehash-free.
            if map.capacity() > 64 && map.len() < map.capacity() / 4 {
                let target = map.len() * 2;
                map.shrink_to(target, self.rehash());
            }
        }
        self.release(removed);
        removed
    }

    fn approx_bytes(&self) -> usize {
        let entry = std::mem::size_of::<Entry>() + 1;
        self.shards
            .iter()
            .map(|shard| {
                let map = lock(shard);
                map.capacity() * entry + map.iter().map(|e| e.key.len()).sum::<usize>()
            })
            .sum()
    }

    fn decision(&self, params: &GcraParams, outcome: &Outcome, source: DecisionSource) -> Decision {
        Decision::from_outcome(Arc::clone(&self.name), params, outcome, source)
    }
}

/// The block list: key -> expiry (store nanoseconds), bounded.
#[derive(Debug)]
struct BlockTable {
    map: RwLock<HashMap<Box<str>, u64>>,
    /// Mirrors `map.len()` so the common case (no blocks at all) costs one atomic load and no
    /// lock on every request.
    len: AtomicUsize,
    cap: usize,
}

impl BlockTable {
    fn new(cap: usize) -> Self {
        BlockTable {
            map: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            cap,
        }
    }

    fn block(&self, key: &str, until: u64, now: u64) -> Result<(), RateLimitError> {
        if until <= now {
            self.remove(key);
            return Ok(());
        }
        let mut map = write(&self.map);
        if !map.contains_key(key) && map.len() >= self.cap {
            map.retain(|_, exp| *exp > now);
            if map.len() >= self.cap {
                self.len.store(map.len(), Ordering::Release);
                return Err(RateLimitError::BlockListFull { cap: self.cap });
            }
        }
        map.insert(key.into(), until);
        self.len.store(map.len(), Ordering::Release);
        Ok(())
    }

    fn remaining(&self, key: &str, now: u64) -> Option<Duration> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let map = read(&self.map);
        let until = *map.get(key)?;
        // An expired entry is simply not a block; the next sweep removes it.
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    fn remove(&self, key: &str) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut map = write(&self.map);
        let removed = map.remove(key).is_some();
        self.len.store(map.len(), Ordering::Release);
        removed
    }

    fn list(&self, now: u64) -> Vec<(String, Duration)> {
        let map = read(&self.map);
        map.iter()
            .filter(|(_, until)| **until > now)
            .map(|(k, until)| (k.to_string(), Duration::from_nanos(*until - now)))
            .collect()
    }

    fn sweep(&self, now: u64) -> usize {
        if self.len.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut map = write(&self.map);
        let before = map.len();
        map.retain(|_, until| *until > now);
        self.len.store(map.len(), Ordering::Release);
        before - map.len()
    }

    fn approx_bytes(&self) -> usize {
        let map = read(&self.map);
        map.capacity() * (std::mem::size_of::<(Box<str>, u64)>() + 1)
            + map.keys().map(|k| k.len()).sum::<usize>()
    }
}

/// A foldhash builder keyed from the operating system's randomness. foldhash's own
/// `RandomState` seeds itself from addresses and the time (it documents that it does not aim at
/// HashDoS resistance); std's `RandomState` draws its keys from the OS, so its output, which an
/// attacker never sees, makes a secret seed. One shared seed per process (deriving it is not
/// free) and a fresh per-table seed, so two tables never collide on the same keys.
fn keyed_hasher() -> SeedableRandomState {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let secret = || RandomState::new().hash_one(0x5eed_u64);
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(secret()));
    SeedableRandomState::with_seed(secret(), shared)
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// Lock helpers: a panic while holding one of these locks is impossible by construction (no code
// under them can panic), but if one ever happened the data (plain integers) is still valid, so a
// poisoned lock is used as is rather than turning every later request into a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: u32, per: Duration, burst: u32) -> LimitSpec {
        LimitSpec {
            name: "test".to_owned(),
            rate,
            per,
            burst,
        }
    }

    #[test]
    fn cap_is_exact_and_overflow_shares_one_bucket() {
        let store = MemoryStore::new(MemoryConfig {
            max_keys_per_limit: 10,
            shards: 4,
            ..MemoryConfig::default()
        });
        let limit = spec(1, Duration::from_secs(3600), 2);
        let t0 = Instant::now();
        for i in 0..10 {
            let d = store.check_at(&limit, &format!("k{i}"), t0);
            assert_eq!(d.source, DecisionSource::Memory);
        }
        assert_eq!(store.tracked_keys("test"), 10);
        // Beyond the cap: one bucket of 2 for all newcomers.
        let sources: Vec<_> = (10..20)
            .map(|i| store.check_at(&limit, &format!("k{i}"), t0))
            .collect();
        assert!(
            sources
                .iter()
                .all(|d| d.source == DecisionSource::MemoryOverflow)
        );
        assert_eq!(sources.iter().filter(|d| d.allowed).count(), 2);
        assert_eq!(store.tracked_keys("test"), 10);
        // Tracked keys keep their own buckets.
        assert!(store.check_at(&limit, "k0", t0).allowed);
        assert!(!store.check_at(&limit, "k0", t0).allowed);
    }

    #[test]
    fn idle_keys_are_evicted_and_make_room() {
        let store = MemoryStore::new(MemoryConfig {
            max_keys_per_limit: 4,
            shards: 2,
            sweep_interval: Duration::ZERO,
            ..MemoryConfig::default()
        });
        // One request every 10 ms, bucket 1: a key is idle 10 ms after its request.
        let limit = spec(100, Duration::from_secs(1), 1);
        let t0 = Instant::now();
        for i in 0..4 {
            store.check_at(&limit, &format!("a{i}"), t0);
        }
        assert_eq!(store.tracked_keys("test"), 4);
        // Later, a new key finds the map full of idle keys: the sweep makes room.
        let d = store.check_at(&limit, "b", t0 + Duration::from_millis(20));
        assert_eq!(d.source, DecisionSource::Memory);
        assert_eq!(store.tracked_keys("test"), 1);
        std::thread::sleep(Duration::from_millis(50));
        // `b` was checked at t0 + 20 ms; its TAT is t0 + 30 ms, past by now.
        assert_eq!(store.evict_idle(), 1);
        assert_eq!(store.tracked_keys("test"), 0);
    }

    #[test]
    fn blocks_expire_and_list() {
        let store = MemoryStore::new(MemoryConfig {
            max_blocks: 2,
            ..MemoryConfig::default()
        });
        assert_eq!(store.is_blocked("x"), None);
        store.block("x", Duration::from_secs(60)).unwrap();
        store.block("y", Duration::from_millis(1)).unwrap();
        assert!(store.is_blocked("x").unwrap() > Duration::from_secs(59));
        assert!(matches!(
            store.block("z", Duration::from_secs(60)),
            Err(RateLimitError::BlockListFull { cap: 2 })
        ));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.is_blocked("y"), None);
        // The expired entry makes room.
        store.block("z", Duration::from_secs(60)).unwrap();
        let mut keys: Vec<_> = store.list_blocks().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        assert_eq!(keys, ["x", "z"]);
        assert!(store.unblock("x"));
        assert!(!store.unblock("x"));
        assert_eq!(store.is_blocked("x"), None);
    }

    #[test]
    fn limit_names_are_bounded() {
        let store = MemoryStore::new(MemoryConfig {
            max_limits: 2,
            ..MemoryConfig::default()
        });
        for name in ["a", "b", "c", "d"] {
            let limit = LimitSpec {
                name: name.to_owned(),
                rate: 1,
                per: Duration::from_secs(1),
                burst: 1,
            };
            assert!(store.check(&limit, "k").allowed || name == "d");
        }
        assert_eq!(store.tables.len(), 2);
        assert_eq!(store.tracked_keys("c"), 0);
    }
}
