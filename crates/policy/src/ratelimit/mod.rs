//! Rate limiting and a shared block list for the gateway: GCRA limits kept in process
//! ([`MemoryStore`]) or in Redis across gateway instances ([`RedisStore`]), behind one
//! [`RateLimiter`] so the gateway code is the same for both.
//!
//! # Model
//! A [`LimitSpec`] says "`rate` requests per `per`, bursts of up to `burst`" under a `name`
//! (`20/s burst 40`, `10,000/day burst 10,000`). Keys are opaque strings that the gateway builds
//! (`ip:1.2.3.4`, `principal:alice`, `key:k1`, `route:orders|ip:1.2.3.4`); each `(limit, key)`
//! pair is one GCRA bucket: with `T = per / rate`, a fresh key may send `burst` requests at once,
//! then one every `T`, so from a full bucket at most `burst + floor(D / T)` pass in any span `D`.
//! Every check counts one request and returns a [`Decision`] with what a response needs: allow
//! or 429, `Retry-After`, and the IETF
//! `RateLimit-Policy` / `RateLimit` fields ([`Decision::headers`], [`combined_headers`]; draft
//! version and mapping in [`headers`]).
//!
//! # Wiring (for the gateway)
//! ```text
//! // once, at startup / config load:
//! for spec in &config.limits { spec.validate()?; }            // names, rates, windows
//! let limiter = Arc::new(match &config.redis {
//!     None => RateLimiter::memory(MemoryConfig::default()),
//!     Some(url) => RateLimiter::redis(RedisConfig {
//!         instances: config.instances, mode: FailureMode::FailOpen, ..RedisConfig::new(url)
//!     })?,                                                   // inside the Tokio runtime
//! });
//! // a background task: log/emit one event per health change, and evict idle keys
//! while let Some(t) = limiter.next_transition().await { warn!(?t, "rate limit store"); }
//! every 10 s: limiter.evict_idle();
//!
//! // per request: the block list and the first limit in one call (Redis: one round trip)
//! let d = match limiter.check_unless_blocked(&ip_key, &spec, &key).await {
//!     Verdict::Blocked(left) => { /* 403, Retry-After: left; not counted */ }
//!     Verdict::Checked(d) => d,
//! };
//! // further limits:
//! let d2 = match limiter.check_now(&spec2, &key2) {           // no await when no I/O is needed
//!     Some(d) => d,
//!     None => limiter.check(&spec2, &key2).await,             // Redis: one round trip, <= budget
//! };
//! if d.unavailable { 503 + Retry-After: d.retry_after_secs() }
//! else if !d.allowed { 429 + Retry-After: d.retry_after_secs() + d.headers() }
//! else { forward; add d.headers() (or combined_headers(&[d_ip, d_key]) for several limits) }
//! ```
//!
//! # Failure behaviour (Redis)
//! Every Redis call has a time budget (default 5 ms); an answer later than that is a failure, and
//! the request is decided without Redis. After `failure_threshold` consecutive failures a circuit
//! breaker opens for `cooldown` and checks stop touching Redis; then one probe decides whether to
//! close it. Meanwhile [`FailureMode::FailOpen`] limits locally at `limit / instances`, and
//! [`FailureMode::FailClosed`] returns `unavailable` decisions (answer 503). The gateway hears of
//! each switch once ([`Transition`]). Nothing here panics, and no check waits longer than the
//! budget (plus scheduling).

mod breaker;
mod gcra;
pub mod headers;
mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use self::headers::combined_headers;
pub use self::memory::{MemoryConfig, MemoryStore};
pub use self::redis::{RedisConfig, RedisStore};

/// One rate limit: `rate` requests per `per`, with bursts of up to `burst` requests (GCRA).
///
/// Build it at configuration load and [`validate`](Self::validate) it there; a check never fails
/// on a bad spec (it clamps values to the nearest sane ones instead of panicking), but only a
/// validated spec behaves exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitSpec {
    /// Identifies the limit: keys of different limits never share a bucket, and it is the policy
    /// name in the response fields. ASCII letters, digits, `_`, `-`, `.`; at most 64 bytes.
    pub name: String,
    /// Requests per `per` at the sustained rate. At least 1.
    pub rate: u32,
    /// The window `rate` is counted over. `per / rate` must be at least 1 µs (the Redis clock's
    /// resolution).
    pub per: Duration,
    /// Requests that may arrive at once (the bucket size). At least 1; `burst == rate` gives the
    /// familiar "N per window".
    pub burst: u32,
}

impl LimitSpec {
    /// A validated spec.
    pub fn new(
        name: impl Into<String>,
        rate: u32,
        per: Duration,
        burst: u32,
    ) -> Result<Self, RateLimitError> {
        let spec = LimitSpec {
            name: name.into(),
            rate,
            per,
            burst,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what [`new`](Self::new) checks, for specs built field by field (deserialized).
    pub fn validate(&self) -> Result<(), RateLimitError> {
        let invalid = |message: &str| RateLimitError::InvalidLimit {
            name: self.name.clone(),
            message: message.to_owned(),
        };
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(invalid("name must be 1 to 64 bytes"));
        }
        // The name becomes part of Redis keys (`:` separates fields there) and a quoted string in
        // response headers; a small alphabet keeps both unambiguous.
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(invalid(
                "name may contain only ASCII letters, digits, '_', '-', '.'",
            ));
        }
        if self.rate == 0 {
            return Err(invalid("rate must be at least 1"));
        }
        if self.burst == 0 {
            return Err(invalid("burst must be at least 1"));
        }
        if self.per.as_micros() < u128::from(self.rate) {
            return Err(invalid(
                "per / rate must be at least 1 microsecond (the Redis clock's resolution)",
            ));
        }
        Ok(())
    }

    /// The time between two requests at the sustained rate (`per / rate`), GCRA's `T`.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(gcra::GcraParams::new(self, 1).emission_ns)
    }
}

/// The answer to one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed. False for "rate limited" and for "unavailable".
    pub allowed: bool,
    /// The policy's quota: `rate` of the limit applied (`rate / instances` when a Redis store
    /// fell back to local limiting).
    pub limit: u32,
    /// The window `limit` is counted over (the spec's `per`).
    pub window: Duration,
    /// The bucket size applied.
    pub burst: u32,
    /// Requests that could be sent right now, after this one.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset_after: Duration,
    /// When refused: until a request would pass (rate limited) or until the store may be back
    /// (unavailable). `None` when allowed.
    pub retry_after: Option<Duration>,
    /// The limit could not be evaluated (Redis unreachable and [`FailureMode::FailClosed`]):
    /// answer 503, not 429.
    pub unavailable: bool,
    /// Which store decided, for logs and metrics.
    pub source: DecisionSource,
    /// The limit's name (shared, so a decision costs no string copy).
    pub policy: Arc<str>,
}

impl Decision {
    pub(crate) fn from_outcome(
        policy: Arc<str>,
        params: &gcra::GcraParams,
        outcome: &gcra::Outcome,
        source: DecisionSource,
    ) -> Self {
        Decision {
            allowed: outcome.allowed,
            limit: params.rate,
            window: params.per,
            burst: params.burst,
            remaining: outcome.remaining,
            reset_after: Duration::from_nanos(outcome.reset_after_ns),
            retry_after: (!outcome.allowed).then(|| Duration::from_nanos(outcome.retry_after_ns)),
            unavailable: false,
            source,
            policy,
        }
    }

    /// The decision of a fail-closed store that cannot reach Redis.
    pub(crate) fn unavailable(limit: &LimitSpec, retry_after: Duration) -> Self {
        let params = gcra::GcraParams::new(limit, 1);
        Decision {
            allowed: false,
            limit: params.rate,
            window: params.per,
            burst: params.burst,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Some(retry_after),
            unavailable: true,
            source: DecisionSource::Unavailable,
            policy: Arc::from(limit.name.as_str()),
        }
    }
}

/// The answer to [`RateLimiter::check_unless_blocked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The block key is blocked for this long more; the request was NOT counted.
    Blocked(Duration),
    /// Not blocked: the limit's decision (the request was counted).
    Checked(Decision),
}

/// Who made a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionSource {
    /// The in-process store, from the key's own bucket.
    Memory,
    /// The in-process store's shared fallback bucket: the key table was full.
    MemoryOverflow,
    /// Redis: the limit is shared across instances.
    Redis,
    /// Redis was unreachable (or the breaker open) and [`FailureMode::FailOpen`] applied the local
    /// limit divided by the instance count.
    LocalFallback,
    /// Redis was unreachable and [`FailureMode::FailClosed`] refused the request.
    Unavailable,
}

/// What a Redis store does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailureMode {
    /// Keep limiting, locally, at `limit / instances` per instance: availability first.
    #[default]
    FailOpen,
    /// Refuse requests with `unavailable` decisions (503): enforcement first.
    FailClosed,
}

/// Whether the store currently reaches its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Decisions come from the configured store.
    Healthy,
    /// Redis is considered down (breaker open or probing); the failure mode applies.
    Degraded,
}

/// A change of [`Health`], reported once per switch (see [`RateLimiter::take_transition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Redis stopped answering within the budget; `reason` is the last failure.
    Degraded { reason: String },
    /// A probe succeeded; shared limiting resumed after `outage`.
    Recovered { outage: Duration },
}

/// Counters since the limiter was created, for metrics. All zero for a memory store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls sent to Redis (checks and block-list operations).
    pub redis_calls: u64,
    /// Calls that failed: an error, or no answer within the budget.
    pub redis_failures: u64,
    /// Of the failures, those that ran out of time.
    pub redis_timeouts: u64,
    /// Calls not sent because the circuit breaker was open.
    pub short_circuited: u64,
    /// Decisions made by the local fallback limiter ([`FailureMode::FailOpen`]).
    pub fallback_decisions: u64,
    /// `unavailable` decisions ([`FailureMode::FailClosed`]).
    pub unavailable_decisions: u64,
}

/// Why a rate-limit operation failed. Checks never fail (they return a [`Decision`]); these come
/// from configuration and from block-list writes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// A [`LimitSpec`] that cannot be applied as written.
    #[error("rate limit {name:?}: {message}")]
    InvalidLimit { name: String, message: String },
    /// A store configuration that cannot work (bad Redis URL, ...).
    #[error("rate limit store: {0}")]
    Config(String),
    /// The Redis store was created outside a Tokio runtime.
    #[error("the Redis rate-limit store must be created inside a Tokio runtime")]
    NoRuntime,
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[source] ::redis::RedisError),
    /// Redis did not answer within the time budget.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open: Redis was not asked.
    #[error("redis unavailable (circuit open, next probe in {retry_in:?})")]
    CircuitOpen { retry_in: Duration },
    /// The in-process block list holds `cap` unexpired entries.
    #[error("block list full ({cap} entries)")]
    BlockListFull { cap: usize },
}

/// Rate limits and block list over one store: the gateway's single entry point. Share it with an
/// `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct RateLimiter {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    // Both boxed: the two stores differ a lot in size, and the limiter lives behind an `Arc`.
    Memory {
        store: Box<MemoryStore>,
        // Kept so `subscribe_health` receivers see an open channel that never changes.
        health: watch::Sender<Health>,
    },
    Redis(Box<RedisStore>),
}

impl RateLimiter {
    /// Limits held in this process only.
    pub fn memory(config: MemoryConfig) -> Self {
        let (health, _) = watch::channel(Health::Healthy);
        RateLimiter {
            backend: Backend::Memory {
                store: Box::new(MemoryStore::new(config)),
                health,
            },
        }
    }

    /// Limits shared through Redis. Does not connect yet (the first call does, and reconnects
    /// happen in the background), so a gateway starts even while Redis is down; use
    /// [`ping`](Self::ping) for a readiness check. Must be called inside a Tokio runtime.
    pub fn redis(config: RedisConfig) -> Result<Self, RateLimitError> {
        Ok(RateLimiter {
            backend: Backend::Redis(Box::new(RedisStore::new(config)?)),
        })
    }

    /// Counts one request for `key` under `limit`. Never fails and never waits longer than the
    /// Redis time budget.
    pub async fn check(&self, limit: &LimitSpec, key: &str) -> Decision {
        match &self.backend {
            Backend::Memory { store, .. } => store.check(limit, key),
            Backend::Redis(store) => store.check(limit, key).await,
        }
    }

    /// [`is_blocked`](Self::is_blocked) for `block_key`, then, unless blocked,
    /// [`check`](Self::check) of `key` under `limit`, in one store call: for Redis ONE round trip
    /// instead of two, with the block still read from Redis (a block set by any instance applies
    /// to the next request). A blocked request is not counted. Never fails; with Redis
    /// unreachable, the blocks this instance knows of and the failure mode apply.
    pub async fn check_unless_blocked(
        &self,
        block_key: &str,
        limit: &LimitSpec,
        key: &str,
    ) -> Verdict {
        match &self.backend {
            Backend::Memory { store, .. } => match store.is_blocked(block_key) {
                Some(left) => Verdict::Blocked(left),
                None => Verdict::Checked(store.check(limit, key)),
            },
            Backend::Redis(store) => store.check_unless_blocked(block_key, limit, key).await,
        }
    }

    /// The decision, if it can be made without I/O: always for a memory store, and for a Redis
    /// store while its breaker is open (local fallback or `unavailable`). `None` means "call
    /// [`check`](Self::check)". When `Some`, the request HAS been counted.
    pub fn check_now(&self, limit: &LimitSpec, key: &str) -> Option<Decision> {
        match &self.backend {
            Backend::Memory { store, .. } => Some(store.check(limit, key)),
            Backend::Redis(store) => store.check_now(limit, key),
        }
    }

    /// Blocks `key` for `ttl` on every instance sharing the store. A Redis store also records the
    /// block locally first, so it applies on this instance even if the Redis write fails (the
    /// error says so).
    pub async fn block(&self, key: &str, ttl: Duration) -> Result<(), RateLimitError> {
        match &self.backend {
            Backend::Memory { store, .. } => store.block(key, ttl),
            Backend::Redis(store) => store.block(key, ttl).await,
        }
    }

    /// How long `key` stays blocked, or `None`. With Redis unreachable, the blocks this instance
    /// knows of (made or seen here) still apply.
    pub async fn is_blocked(&self, key: &str) -> Option<Duration> {
        match &self.backend {
            Backend::Memory { store, .. } => store.is_blocked(key),
            Backend::Redis(store) => store.is_blocked(key).await,
        }
    }

    /// Lifts a block everywhere (and locally even if Redis is unreachable).
    pub async fn unblock(&self, key: &str) -> Result<(), RateLimitError> {
        match &self.backend {
            Backend::Memory { store, .. } => {
                store.unblock(key);
                Ok(())
            }
            Backend::Redis(store) => store.unblock(key).await,
        }
    }

    /// Current blocks with their remaining time, at most `max_listed_blocks` of them for Redis
    /// (a bounded SCAN). With Redis unreachable: the blocks this instance knows of.
    pub async fn list_blocks(&self) -> Vec<(String, Duration)> {
        match &self.backend {
            Backend::Memory { store, .. } => store.list_blocks(),
            Backend::Redis(store) => store.list_blocks().await,
        }
    }

    /// Round trip to the store (always `Ok` for memory): a readiness probe.
    pub async fn ping(&self) -> Result<(), RateLimitError> {
        match &self.backend {
            Backend::Memory { .. } => Ok(()),
            Backend::Redis(store) => store.ping().await,
        }
    }

    /// The store's health now.
    pub fn health(&self) -> Health {
        match &self.backend {
            Backend::Memory { .. } => Health::Healthy,
            Backend::Redis(store) => store.health(),
        }
    }

    /// A receiver that changes when [`health`](Self::health) does (only the latest state is
    /// kept; use [`take_transition`](Self::take_transition) to see every switch).
    pub fn subscribe_health(&self) -> watch::Receiver<Health> {
        match &self.backend {
            Backend::Memory { health, .. } => health.subscribe(),
            Backend::Redis(store) => store.subscribe_health(),
        }
    }

    /// The oldest health switch not taken yet: one `Degraded` when Redis is lost, one `Recovered`
    /// when it is back (up to 32 are kept when nobody takes them).
    pub fn take_transition(&self) -> Option<Transition> {
        match &self.backend {
            Backend::Memory { .. } => None,
            Backend::Redis(store) => store.take_transition(),
        }
    }

    /// Waits for the next health switch and returns it; `None` only if the limiter is gone. For a
    /// logging task: `while let Some(t) = limiter.next_transition().await { ... }`.
    pub async fn next_transition(&self) -> Option<Transition> {
        let mut rx = self.subscribe_health();
        loop {
            if let Some(t) = self.take_transition() {
                return Some(t);
            }
            rx.changed().await.ok()?;
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        match &self.backend {
            Backend::Memory { .. } => Stats::default(),
            Backend::Redis(store) => store.stats(),
        }
    }

    /// Keys tracked in process for the limit named `limit_name`: the memory store's map, or the
    /// Redis store's local fallback map.
    pub fn tracked_keys(&self, limit_name: &str) -> usize {
        self.local_store().tracked_keys(limit_name)
    }

    /// Forgets idle keys and expired blocks held in process; call it every few seconds.
    pub fn evict_idle(&self) -> usize {
        self.local_store().evict_idle()
    }

    /// The in-process store: the whole store for memory, the fallback/block mirror for Redis.
    pub fn local_store(&self) -> &MemoryStore {
        match &self.backend {
            Backend::Memory { store, .. } => store,
            Backend::Redis(store) => store.local(),
        }
    }

    /// The Redis store, if that is the backend.
    pub fn redis_store(&self) -> Option<&RedisStore> {
        match &self.backend {
            Backend::Memory { .. } => None,
            Backend::Redis(store) => Some(store),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation() {
        assert!(LimitSpec::new("per-ip_v1.2", 20, Duration::from_secs(1), 40).is_ok());
        for (name, rate, per, burst) in [
            ("", 1, Duration::from_secs(1), 1),
            ("a:b", 1, Duration::from_secs(1), 1),
            ("a b", 1, Duration::from_secs(1), 1),
            ("a", 0, Duration::from_secs(1), 1),
            ("a", 1, Duration::from_secs(1), 0),
            ("a", 2_000_000, Duration::from_secs(1), 1),
        ] {
            assert!(
                matches!(
                    LimitSpec::new(name, rate, per, burst),
                    Err(RateLimitError::InvalidLimit { .. })
                ),
                "{name:?} {rate} {per:?} {burst}"
            );
        }
        let day = LimitSpec::new("daily", 10_000, Duration::from_secs(86_400), 10_000).unwrap();
        assert_eq!(day.emission_interval(), Duration::from_millis(8_640));
    }

    #[test]
    fn shareable_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<RateLimiter>();
        send_sync::<Decision>();
        let limiter = RateLimiter::memory(MemoryConfig::default());
        let spec = LimitSpec::new("l", 1, Duration::from_secs(1), 1).unwrap();
        // The gateway awaits these inside spawned (multi-threaded) tasks.
        send(&limiter.check(&spec, "k"));
        send(&limiter.is_blocked("k"));
        send(&limiter.list_blocks());
        send(&limiter.next_transition());
    }

    #[tokio::test]
    async fn memory_limiter_through_the_facade() {
        let limiter = RateLimiter::memory(MemoryConfig::default());
        let spec = LimitSpec::new("l", 1, Duration::from_secs(60), 2).unwrap();
        assert!(limiter.check(&spec, "k").await.allowed);
        assert!(limiter.check_now(&spec, "k").unwrap().allowed);
        let d = limiter.check(&spec, "k").await;
        assert!(!d.allowed && !d.unavailable);
        assert_eq!(d.source, DecisionSource::Memory);
        assert_eq!(limiter.tracked_keys("l"), 1);
        assert_eq!(limiter.health(), Health::Healthy);
        assert_eq!(limiter.take_transition(), None);
        limiter.block("ip:1", Duration::from_secs(5)).await.unwrap();
        assert!(limiter.is_blocked("ip:1").await.is_some());
        // Blocked: refused without counting; not blocked: counted like `check`.
        let fresh = LimitSpec::new("f", 1, Duration::from_secs(60), 1).unwrap();
        assert!(matches!(
            limiter.check_unless_blocked("ip:1", &fresh, "ip:1").await,
            Verdict::Blocked(left) if left > Duration::from_secs(4)
        ));
        assert_eq!(limiter.tracked_keys("f"), 0);
        let Verdict::Checked(d) = limiter.check_unless_blocked("ip:2", &fresh, "ip:2").await else {
            panic!("ip:2 is not blocked");
        };
        assert!(d.allowed);
        assert_eq!(limiter.tracked_keys("f"), 1);
        assert_eq!(limiter.list_blocks().await.len(), 1);
        limiter.unblock("ip:1").await.unwrap();
        assert_eq!(limiter.is_blocked("ip:1").await, None);
        assert!(limiter.ping().await.is_ok());
    }
}
