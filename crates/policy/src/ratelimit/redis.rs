//! The Redis store: the same GCRA limits shared by every gateway instance, plus the shared block
//! list.
//!
//! - **One round trip per check.** The whole GCRA step (read TAT, decide, write TAT with its TTL)
//!   runs in one Lua script, so it is atomic without WATCH/MULTI retries. The script can also
//!   look up a block-list entry first ([`RedisStore::check_unless_blocked`]): the gateway's
//!   IP-block lookup and its first limit then cost ONE round trip per request instead of two
//!   (issue #4), and the block is still read from Redis on every request, so a block set by any
//!   instance applies to the next request everywhere. A blocked request is not counted. The
//!   command is EVALSHA, written straight into one buffer (no per-argument vectors); after a
//!   `SCRIPT FLUSH` or a Redis restart the NOSCRIPT answer is followed by one EVAL with the
//!   source, which also caches the script again.
//! - **Batching.** Concurrent checks share the multiplexed connection: its writer drains every
//!   command queued before it runs and flushes once, so requests that arrive in the same tick
//!   leave in one write (and Redis answers them in one read), with no batching delay added here.
//! - **Redis's clock.** The script reads `TIME`, so gateways with skewed clocks still agree. Since
//!   Redis 5, scripts replicate their effects rather than themselves, which is what allows a
//!   non-deterministic `TIME` before a write.
//! - **Keys** are `{<prefix>:rl:<limit>:<key>}`. The whole name is the hash tag, so each bucket
//!   maps to one Redis Cluster slot (every script touches exactly one key). Limit names cannot
//!   contain `:` ([`LimitSpec::validate`]), so `<limit>:<key>` is unambiguous. A bucket's TTL is
//!   the time until it is full again: Redis forgets idle keys exactly when they stop mattering.
//! - **Time budget and breaker.** Each call gets `budget` (default 5 ms) end to end, including
//!   waiting for a (re)connection; a late answer counts as a failure and the request is decided
//!   by the failure mode at once. The circuit breaker (`breaker.rs`) stops calls after repeated
//!   failures.
//! - **Connection**: one [`ConnectionManager`] (a multiplexed connection, cloned per call, that
//!   reconnects in the background). It is created lazily so a gateway starts while Redis is down.
//!   Its own reconnect retries are few and short: the breaker's half-open probes are what drive
//!   recovery, and a long internal backoff would only delay it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, ErrorKind, RedisResult, RedisWrite, Script, ServerErrorKind, ToRedisArgs};
use tokio::sync::watch;

use super::breaker::{Admission, CircuitBreaker};
use super::gcra::GcraParams;
use super::memory::duration_ns;
use super::{
    Decision, DecisionSource, FailureMode, Health, LimitSpec, MemoryConfig, MemoryStore,
    RateLimitError, Stats, Transition, Verdict,
};

/// GCRA in Redis. KEYS[1] = bucket; KEYS[2], optional, = a block-list entry to honour first;
/// ARGV[1] = emission interval (µs); ARGV[2] = burst.
/// Returns `{allowed (0/1), remaining, reset_after µs, retry_after µs, block}` where `block` is
/// the entry's PTTL in ms when it blocks (> 0, or -1 for no expiry: the request is then NOT
/// counted), else -2. Mirrors `gcra::evaluate`; numbers are Lua doubles, exact for microsecond
/// timestamps (< 2^53).
///
/// Two keys in one script: on a Redis Cluster they would have to share a slot, which this
/// store does not need (it talks to one Redis through a non-cluster connection).
const GCRA_LUA: &str = r"
if KEYS[2] then
  local block = redis.call('PTTL', KEYS[2])
  if block > 0 or block == -1 then
    return {0, 0, 0, 0, block}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, 0, tat - now, allow_at - now, -2}
end
local ttl = new_tat - now
-- %.0f: Lua 5.1's default number format (%.14g) would round a 16-digit timestamp.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil(ttl / 1000)))
return {1, math.floor((now - allow_at) / interval), ttl, 0, -2}
";

/// The script's answer: allowed (0/1), remaining, reset_after µs, retry_after µs, block PTTL.
type GcraReply = (i64, i64, i64, i64, i64);

/// Longest block accepted (100 years); longer requests are shortened to it.
const MAX_BLOCK_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3_600);

/// SCAN pages fetched by one `list_blocks` at most, whatever the keyspace size.
const MAX_SCAN_PAGES: usize = 1_000;
/// Keys Redis examines per SCAN page.
const SCAN_COUNT: usize = 1_000;

/// Configuration of a [`RedisStore`]; start from [`RedisConfig::new`] for the defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`. No TLS (`rediss://`) support is built in.
    pub url: String,
    /// First segment of every key, to share one Redis between deployments. Default `portcullis`.
    pub key_prefix: String,
    /// Longest a single Redis call may take before it counts as failed. Default 5 ms.
    pub budget: Duration,
    /// Consecutive failures that open the circuit breaker. Default 3.
    pub failure_threshold: u32,
    /// How long an open breaker keeps Redis untouched before one probe. Default 1 s.
    pub cooldown: Duration,
    /// What checks do while Redis is unreachable. Default [`FailureMode::FailOpen`].
    pub mode: FailureMode,
    /// Gateway instances sharing the limits; with `FailOpen` each applies `rate / instances` and
    /// `burst / instances` locally. Default 1.
    pub instances: u32,
    /// Timeout of one TCP connect attempt by the reconnecting connection. Default 1 s.
    pub connect_timeout: Duration,
    /// Bounds of the local fallback limiter and block mirror.
    pub local: MemoryConfig,
    /// Most entries one `list_blocks` returns. Default 10,000.
    pub max_listed_blocks: usize,
}

impl RedisConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            key_prefix: "portcullis".to_owned(),
            budget: Duration::from_millis(5),
            failure_threshold: 3,
            cooldown: Duration::from_secs(1),
            mode: FailureMode::FailOpen,
            instances: 1,
            connect_timeout: Duration::from_secs(1),
            local: MemoryConfig::default(),
            max_listed_blocks: 10_000,
        }
    }
}

impl fmt::Debug for RedisConfig {
    // By hand: the URL may carry a password, which must not reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("budget", &self.budget)
            .field("failure_threshold", &self.failure_threshold)
            .field("cooldown", &self.cooldown)
            .field("mode", &self.mode)
            .field("instances", &self.instances)
            .field("connect_timeout", &self.connect_timeout)
            .field("local", &self.local)
            .field("max_listed_blocks", &self.max_listed_blocks)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    short_circuited: AtomicU64,
    fallback: AtomicU64,
    unavailable: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Limits and blocks in Redis with a local fallback; see the module docs. Usually used through
/// [`super::RateLimiter`].
pub struct RedisStore {
    conn: ConnectionManager,
    script: Script,
    config: RedisConfig,
    breaker: CircuitBreaker,
    /// Fail-open limiter, and a mirror of the blocks this instance made or saw, so that they
    /// keep applying during an outage.
    local: MemoryStore,
    counters: Counters,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .field("health", &self.breaker.health())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config` (no connection is made yet). Fails on a malformed URL, or outside a
    /// Tokio runtime (the connection's background tasks need one).
    pub fn new(config: RedisConfig) -> Result<Self, RateLimitError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RateLimitError::NoRuntime);
        }
        // Braces would end the hash tag early; an empty prefix would collide with other users.
        if config.key_prefix.is_empty() || config.key_prefix.contains(['{', '}']) {
            return Err(RateLimitError::Config(format!(
                "key prefix {:?} must be non-empty and free of braces",
                config.key_prefix
            )));
        }
        if config.budget.is_zero() {
            return Err(RateLimitError::Config(
                "the Redis time budget must be positive".to_owned(),
            ));
        }
        let client = ::redis::Client::open(config.url.as_str()).map_err(|e| {
            RateLimitError::Config(format!("redis url {}: {e}", redact_url(&config.url)))
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            // Our budget bounds each call; no second, longer timeout underneath.
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| RateLimitError::Config(format!("redis connection: {e}")))?;
        Ok(RedisStore {
            conn,
            script: Script::new(GCRA_LUA),
            breaker: CircuitBreaker::new(config.failure_threshold, config.cooldown),
            local: MemoryStore::new(config.local.clone()),
            counters: Counters::default(),
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// The in-process fallback limiter and block mirror.
    pub fn local(&self) -> &MemoryStore {
        &self.local
    }

    /// Counts one request for `key` under `limit` in Redis; on failure, or while the breaker is
    /// open, applies the failure mode. Returns within the budget.
    pub async fn check(&self, limit: &LimitSpec, key: &str) -> Decision {
        let params = GcraParams::new(limit, 1);
        match self
            .call("check", self.gcra(&params, limit, key, None))
            .await
        {
            Ok(reply) => redis_decision(limit, &params, reply),
            Err(err) => self.degraded(limit, key, &err),
        }
    }

    /// Whether `block_key` is blocked and, if not, one request counted for `key` under `limit`:
    /// the block-list lookup and the check in ONE round trip (see the module docs). On failure,
    /// or while the breaker is open, the local block mirror answers and then the failure mode
    /// applies, as [`is_blocked`](Self::is_blocked) followed by [`check`](Self::check) would.
    pub async fn check_unless_blocked(
        &self,
        block_key: &str,
        limit: &LimitSpec,
        key: &str,
    ) -> Verdict {
        let params = GcraParams::new(limit, 1);
        let call = self.gcra(&params, limit, key, Some(block_key));
        match self.call("check", call).await {
            Ok(reply) => match pttl(reply.4) {
                Some(left) => {
                    self.mirror_block(block_key, left);
                    Verdict::Blocked(left)
                }
                None => {
                    // Lifted (or never set) in Redis: lift the local copy too. Costs one atomic
                    // load when this instance knows of no blocks.
                    self.local.unblock(block_key);
                    Verdict::Checked(redis_decision(limit, &params, reply))
                }
            },
            Err(err) => match self.local.is_blocked(block_key) {
                Some(left) => Verdict::Blocked(left),
                None => Verdict::Checked(self.degraded(limit, key, &err)),
            },
        }
    }

    /// The GCRA script for `key` (and, optionally, the block entry of `block_key`) as one
    /// EVALSHA, falling back to EVAL with the source when Redis lost its script cache.
    async fn gcra(
        &self,
        params: &GcraParams,
        limit: &LimitSpec,
        key: &str,
        block_key: Option<&str>,
    ) -> RedisResult<GcraReply> {
        // Redis's clock has microsecond resolution; `validate` guarantees T >= 1 µs.
        let interval_us = (params.emission_ns / 1_000).max(1);
        let prefix = self.config.key_prefix.as_str();
        let bucket = KeyName::new(prefix, "rl", &limit.name, key);
        let block = block_key.map(|k| KeyName::new(prefix, "bl", "", k));
        let command = |name: &str, script: &str| {
            // One buffer for the whole command, sized up front: the key names are written into
            // it directly, where `ScriptInvocation` built a vector per argument plus a key string.
            let data = 64 + script.len() + bucket.len() + block.as_ref().map_or(0, KeyName::len);
            let mut cmd = Cmd::with_capacity(7, data);
            cmd.arg(name)
                .arg(script)
                .arg(1 + usize::from(block.is_some()))
                .arg(&bucket);
            if let Some(block) = &block {
                cmd.arg(block);
            }
            cmd.arg(interval_us).arg(params.burst);
            cmd
        };
        let mut conn = self.conn.clone();
        match command("EVALSHA", self.script.get_hash())
            .query_async(&mut conn)
            .await
        {
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                command("EVAL", GCRA_LUA).query_async(&mut conn).await
            }
            answer => answer,
        }
    }

    /// The decision without I/O while the breaker is open, else `None` (nothing counted).
    pub fn check_now(&self, limit: &LimitSpec, key: &str) -> Option<Decision> {
        let retry_in = self.breaker.rejecting()?;
        bump(&self.counters.short_circuited);
        Some(self.degraded(limit, key, &RateLimitError::CircuitOpen { retry_in }))
    }

    /// Blocks `key` for `ttl` (at least 1 ms, at most 100 years) in Redis and in the local mirror.
    pub async fn block(&self, key: &str, ttl: Duration) -> Result<(), RateLimitError> {
        // Redis refuses expiries past i64 milliseconds since the epoch, and such a refusal would
        // count against the breaker; no block needs more than a century.
        let ttl = ttl.min(MAX_BLOCK_TTL);
        let ttl_ms = u64::try_from(ttl.as_millis().max(1)).unwrap_or(u64::MAX);
        // Locally first: the block must hold on this instance even if Redis is unreachable.
        let local = self.local.block(key, ttl);
        let name = self.redis_key("bl", "", key);
        let mut conn = self.conn.clone();
        let call = async {
            ::redis::cmd("SET")
                .arg(&name)
                .arg(1)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut conn)
                .await
        };
        self.call("block", call).await?;
        local
    }

    /// Remaining block time of `key`. Redis is authoritative when it answers (a block lifted on
    /// another instance is lifted here too); otherwise the local mirror answers.
    pub async fn is_blocked(&self, key: &str) -> Option<Duration> {
        let name = self.redis_key("bl", "", key);
        let mut conn = self.conn.clone();
        let call = async {
            ::redis::cmd("PTTL")
                .arg(&name)
                .query_async::<i64>(&mut conn)
                .await
        };
        match self.call("is_blocked", call).await {
            Ok(ms) => {
                let remaining = pttl(ms);
                match remaining {
                    Some(left) => self.mirror_block(key, left),
                    None => {
                        self.local.unblock(key);
                    }
                }
                remaining
            }
            Err(_) => self.local.is_blocked(key),
        }
    }

    /// Records a block seen in Redis locally, so it survives a Redis outage on this instance too.
    fn mirror_block(&self, key: &str, left: Duration) {
        let until = self
            .local
            .nanos(Instant::now())
            .saturating_add(duration_ns(left));
        if let Err(err) = self.local.block_until(key, until) {
            tracing::debug!(%err, "block not mirrored locally");
        }
    }

    /// Lifts a block in Redis and locally.
    pub async fn unblock(&self, key: &str) -> Result<(), RateLimitError> {
        self.local.unblock(key);
        let name = self.redis_key("bl", "", key);
        let mut conn = self.conn.clone();
        let call = async {
            ::redis::cmd("DEL")
                .arg(&name)
                .query_async::<i64>(&mut conn)
                .await
        };
        self.call("unblock", call).await.map(|_| ())
    }

    /// Blocks in Redis via a bounded SCAN (at most `max_listed_blocks` entries and 1,000 pages,
    /// each page one call within the budget). If Redis fails midway, the local mirror answers.
    pub async fn list_blocks(&self) -> Vec<(String, Duration)> {
        match self.scan_blocks().await {
            Ok(list) => list,
            Err(err) => {
                tracing::debug!(%err, "listing blocks from the local mirror");
                self.local.list_blocks()
            }
        }
    }

    async fn scan_blocks(&self) -> Result<Vec<(String, Duration)>, RateLimitError> {
        let prefix = self.redis_key_prefix("bl", "");
        // The key name is `{prefix...key}`: match on the literal start, escaping glob characters
        // that a prefix could contain.
        let pattern = format!("{}*", glob_escape(&prefix));
        let limit = self.config.max_listed_blocks;
        let mut found: HashMap<String, Duration> = HashMap::new();
        let mut cursor: u64 = 0;
        for _ in 0..MAX_SCAN_PAGES {
            let mut conn = self.conn.clone();
            let call = async {
                let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut conn)
                    .await?;
                if keys.is_empty() {
                    return Ok((next, keys, Vec::new()));
                }
                let mut pipe = ::redis::pipe();
                for k in &keys {
                    pipe.cmd("PTTL").arg(k);
                }
                let ttls: Vec<i64> = pipe.query_async(&mut conn).await?;
                Ok((next, keys, ttls))
            };
            let (next, keys, ttls) = self.call("list_blocks", call).await?;
            for (name, ms) in keys.into_iter().zip(ttls) {
                let (Some(key), Some(left)) = (block_key_of(&name, &prefix), pttl(ms)) else {
                    continue;
                };
                if found.len() >= limit {
                    break;
                }
                found.insert(key.to_owned(), left);
            }
            cursor = next;
            if cursor == 0 || found.len() >= limit {
                break;
            }
        }
        Ok(found.into_iter().collect())
    }

    /// `PING` within the budget and through the breaker.
    pub async fn ping(&self) -> Result<(), RateLimitError> {
        let mut conn = self.conn.clone();
        let call = async { ::redis::cmd("PING").query_async::<String>(&mut conn).await };
        self.call("ping", call).await.map(|_| ())
    }

    /// Current health (degraded while the breaker is open or probing).
    pub fn health(&self) -> Health {
        self.breaker.health()
    }

    /// See [`super::RateLimiter::subscribe_health`].
    pub fn subscribe_health(&self) -> watch::Receiver<Health> {
        self.breaker.subscribe()
    }

    /// See [`super::RateLimiter::take_transition`].
    pub fn take_transition(&self) -> Option<Transition> {
        self.breaker.take_transition()
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            redis_calls: get(&c.calls),
            redis_failures: get(&c.failures),
            redis_timeouts: get(&c.timeouts),
            short_circuited: get(&c.short_circuited),
            fallback_decisions: get(&c.fallback),
            unavailable_decisions: get(&c.unavailable),
        }
    }

    /// Runs one Redis call through the breaker and the time budget.
    async fn call<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, RateLimitError> {
        let permit = match self.breaker.admit() {
            Admission::Pass(permit) => permit,
            Admission::Reject { retry_in } => {
                bump(&self.counters.short_circuited);
                return Err(RateLimitError::CircuitOpen { retry_in });
            }
        };
        bump(&self.counters.calls);
        match tokio::time::timeout(self.config.budget, call).await {
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            Ok(Err(err)) => {
                bump(&self.counters.failures);
                tracing::debug!(operation = what, %err, "redis call failed");
                if err.code() == Some("WRONGTYPE") {
                    // Redis answered: it is up, one key is just not ours (an operator wrote to
                    // it). Opening the breaker would degrade every key for one bad one.
                    permit.success();
                } else {
                    permit.failure(&format!("{what}: {err}"));
                }
                Err(RateLimitError::Redis(err))
            }
            Err(_) => {
                bump(&self.counters.failures);
                bump(&self.counters.timeouts);
                let budget = self.config.budget;
                tracing::debug!(operation = what, ?budget, "redis call over budget");
                permit.failure(&format!("{what}: no answer within {budget:?}"));
                Err(RateLimitError::Timeout(budget))
            }
        }
    }

    /// The decision when Redis could not be used: local limits or `unavailable`.
    fn degraded(&self, limit: &LimitSpec, key: &str, err: &RateLimitError) -> Decision {
        match self.config.mode {
            FailureMode::FailOpen => {
                bump(&self.counters.fallback);
                let params = GcraParams::new(limit, self.config.instances);
                let now = self.local.nanos(Instant::now());
                let mut decision = self.local.check_params(&limit.name, &params, key, now);
                decision.source = DecisionSource::LocalFallback;
                decision
            }
            FailureMode::FailClosed => {
                bump(&self.counters.unavailable);
                // Tell clients to come back when the next probe may have restored Redis.
                let retry_in = match err {
                    RateLimitError::CircuitOpen { retry_in } if !retry_in.is_zero() => *retry_in,
                    _ => self.breaker.cooldown(),
                };
                Decision::unavailable(limit, retry_in)
            }
        }
    }

    /// `{<prefix>:<kind>:<limit>:<key>}`, or `{<prefix>:<kind>:<key>}` without a limit.
    fn redis_key(&self, kind: &str, limit: &str, key: &str) -> String {
        let mut name = self.redis_key_prefix(kind, limit);
        name.push_str(key);
        name.push('}');
        name
    }

    fn redis_key_prefix(&self, kind: &str, limit: &str) -> String {
        let mut name = String::with_capacity(self.config.key_prefix.len() + limit.len() + 48);
        name.push('{');
        name.push_str(&self.config.key_prefix);
        name.push(':');
        name.push_str(kind);
        name.push(':');
        if !limit.is_empty() {
            name.push_str(limit);
            name.push(':');
        }
        name
    }
}

/// A Redis key name, `{<prefix>:<kind>:<limit>:<key>}` (no `<limit>:` when empty), written into
/// a command without building a `String` first. Same layout as [`RedisStore::redis_key`].
struct KeyName<'a> {
    prefix: &'a str,
    kind: &'a str,
    limit: &'a str,
    key: &'a str,
}

impl<'a> KeyName<'a> {
    fn new(prefix: &'a str, kind: &'a str, limit: &'a str, key: &'a str) -> Self {
        KeyName {
            prefix,
            kind,
            limit,
            key,
        }
    }

    fn len(&self) -> usize {
        let limit = if self.limit.is_empty() {
            0
        } else {
            self.limit.len() + 1
        };
        self.prefix.len() + self.kind.len() + limit + self.key.len() + 4
    }

    /// The pieces of the name, in order.
    fn parts(&self) -> impl Iterator<Item = &'a str> {
        let limit: [&'a str; 2] = if self.limit.is_empty() {
            ["", ""]
        } else {
            [self.limit, ":"]
        };
        ["{", self.prefix, ":", self.kind, ":"]
            .into_iter()
            .chain(limit)
            .chain([self.key, "}"])
    }
}

impl ToRedisArgs for KeyName<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's in-memory buffer cannot fail.
        for part in self.parts() {
            let _ = arg.write_all(part.as_bytes());
        }
    }
}

/// The decision from the script's answer.
fn redis_decision(limit: &LimitSpec, params: &GcraParams, reply: GcraReply) -> Decision {
    let (allowed, remaining, reset_us, retry_us, _) = reply;
    Decision {
        allowed: allowed == 1,
        limit: params.rate,
        window: params.per,
        burst: params.burst,
        remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
        reset_after: micros(reset_us),
        retry_after: (allowed != 1).then(|| micros(retry_us)),
        unavailable: false,
        source: DecisionSource::Redis,
        policy: Arc::from(limit.name.as_str()),
    }
}

/// The gateway's key inside a block entry's Redis name.
fn block_key_of<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix)?.strip_suffix('}')
}

/// PTTL's answer as a remaining time: -2 = no such key, -1 = no expiry (blocked indefinitely).
fn pttl(ms: i64) -> Option<Duration> {
    match ms {
        -1 => Some(Duration::MAX),
        ms if ms > 0 => Some(Duration::from_millis(ms.unsigned_abs())),
        _ => None,
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(us.max(0).unsigned_abs())
}

/// Escapes Redis glob metacharacters so a literal prefix matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:s3cret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        let dbg = format!("{:?}", RedisConfig::new("redis://:pw@h:1"));
        assert!(!dbg.contains("pw"), "{dbg}");
    }

    #[test]
    fn pttl_and_glob_helpers() {
        assert_eq!(pttl(-2), None);
        assert_eq!(pttl(0), None);
        assert_eq!(pttl(-1), Some(Duration::MAX));
        assert_eq!(pttl(1_500), Some(Duration::from_millis(1_500)));
        assert_eq!(glob_escape("{a*b?[c]\\}"), "{a\\*b\\?\\[c\\]\\\\}");
        assert_eq!(block_key_of("{p:bl:ip:1}", "{p:bl:"), Some("ip:1"));
        assert_eq!(block_key_of("{p:rl:x}", "{p:bl:"), None);
    }

    #[test]
    fn needs_a_runtime() {
        assert!(matches!(
            RedisStore::new(RedisConfig::new("redis://127.0.0.1:1")),
            Err(RateLimitError::NoRuntime)
        ));
    }

    #[tokio::test]
    async fn bad_configs_are_refused() {
        for config in [
            RedisConfig {
                key_prefix: "a{b".to_owned(),
                ..RedisConfig::new("redis://127.0.0.1:1")
            },
            RedisConfig {
                budget: Duration::ZERO,
                ..RedisConfig::new("redis://127.0.0.1:1")
            },
            RedisConfig::new("http://not-redis"),
        ] {
            assert!(
                matches!(RedisStore::new(config), Err(RateLimitError::Config(_))),
                "accepted"
            );
        }
    }

    #[tokio::test]
    async fn keys_are_hash_tagged() {
        let store = RedisStore::new(RedisConfig::new("redis://127.0.0.1:1")).unwrap();
        assert_eq!(
            store.redis_key("rl", "per-ip", "ip:1.2.3.4"),
            "{portcullis:rl:per-ip:ip:1.2.3.4}"
        );
        assert_eq!(store.redis_key("bl", "", "ip:1"), "{portcullis:bl:ip:1}");
        // The names written straight into commands are the same bytes, and `len` is exact.
        for (kind, limit, key) in [("rl", "per-ip", "ip:1.2.3.4"), ("bl", "", "ip:1")] {
            let name = KeyName::new("portcullis", kind, limit, key);
            let mut args: Vec<Vec<u8>> = Vec::new();
            name.write_redis_args(&mut args);
            let expected = store.redis_key(kind, limit, key);
            assert_eq!(args, [expected.as_bytes()]);
            assert_eq!(name.len(), expected.len());
        }
    }
}
