//! Abuse protection stages: allow/deny lists, the dynamic block list, rate limits before and
//! after authentication, brute-force blocking, and per-route load shedding.
//!
//! Limit state lives in a [`RateLimiter`] (memory, or Redis shared by every gateway instance);
//! it is carried across config reloads unless the store settings change. Keys name what is
//! counted (`ip:…`, `principal:…`, `key:<key id>`, `route:…`), never a secret.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use ipnet::IpNet;
use portcullis_identity::{AuthMethod, Identity};
use portcullis_policy::ratelimit::{
    self, FailureMode, LimitSpec, MemoryConfig, RateLimiter, RedisConfig, Verdict,
};

use crate::config::{AccessConfig, LimitKey, RateLimitConfig};
use crate::problem::Rejection;

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// What a client blocked by range is told to wait: range entries carry no expiry here.
const CIDR_BLOCK_RETRY: Duration = Duration::from_secs(60);

/// Rate limits, block list and brute-force state for one config snapshot.
pub struct Protection {
    pub limiter: Arc<RateLimiter>,
    store: RateLimitConfig,
    specs: HashMap<String, (LimitSpec, Vec<LimitKey>)>,
    access: AccessConfig,
    /// CIDR blocks from the dynamic list, refreshed in the background (exact keys are looked
    /// up directly; ranges cannot be).
    pub cidr_blocks: Arc<ArcSwap<Vec<IpNet>>>,
    brute: Arc<BruteForce>,
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protection").finish_non_exhaustive()
    }
}

impl Protection {
    pub fn build(
        rl: &RateLimitConfig,
        access: &AccessConfig,
        previous: Option<&Protection>,
    ) -> Result<Self, String> {
        let same_store = |p: &&Protection| {
            p.store.redis == rl.redis && p.store.max_keys_per_limit == rl.max_keys_per_limit
        };
        let limiter = match previous.filter(same_store) {
            Some(p) => p.limiter.clone(),
            None => {
                let local = MemoryConfig {
                    max_keys_per_limit: rl.max_keys_per_limit,
                    ..MemoryConfig::default()
                };
                Arc::new(match &rl.redis {
                    None => RateLimiter::memory(local),
                    Some(r) => {
                        let mut cfg = RedisConfig::new(r.url.expose());
                        cfg.budget = r.budget;
                        cfg.failure_threshold = r.failure_threshold;
                        cfg.cooldown = r.cooldown;
                        cfg.instances = r.instances;
                        cfg.mode = if r.fail_closed {
                            FailureMode::FailClosed
                        } else {
                            FailureMode::FailOpen
                        };
                        cfg.local = local;
                        RateLimiter::redis(cfg).map_err(|e| format!("rate_limit.redis: {e}"))?
                    }
                })
            }
        };
        let mut specs = HashMap::new();
        for (name, l) in &rl.limits {
            let spec = LimitSpec::new(name.clone(), l.rate, l.per, l.burst.max(1))
                .map_err(|e| format!("rate_limit.limits.{name}: {e}"))?;
            specs.insert(name.clone(), (spec, l.key.clone()));
        }
        let (cidr_blocks, brute) = match previous {
            Some(p) => (p.cidr_blocks.clone(), p.brute.clone()),
            None => (Arc::default(), Arc::default()),
        };
        Ok(Protection {
            limiter,
            store: rl.clone(),
            specs,
            access: access.clone(),
            cidr_blocks,
            brute,
        })
    }

    /// Static allow/deny lists: checked at accept (peer) and per request (client behind proxies).
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        if self.access.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.access.allow.is_empty() || self.access.allow.iter().any(|n| n.contains(&ip))
    }

    pub fn close_blocked_ips(&self) -> bool {
        self.access.close_blocked_ips
    }

    /// A dynamic block on the client address (exact or by range): the remaining time.
    pub async fn ip_block(&self, ip: IpAddr) -> Option<Duration> {
        if let Some(left) = self.limiter.is_blocked(&format!("ip:{ip}")).await {
            return Some(left);
        }
        self.cidr_blocks
            .load()
            .iter()
            .any(|n| n.contains(&ip))
            .then_some(CIDR_BLOCK_RETRY)
    }

    /// A dynamic block on the authenticated caller (principal or API key id).
    pub async fn identity_block(&self, identity: &Identity) -> Option<Duration> {
        if let Some(left) = self
            .limiter
            .is_blocked(&format!("principal:{}", identity.principal))
            .await
        {
            return Some(left);
        }
        match (&identity.method, &identity.credential_id) {
            (AuthMethod::ApiKey, Some(id)) => self.limiter.is_blocked(&format!("key:{id}")).await,
            _ => None,
        }
    }

    /// The dynamic IP block, then the limits `names` that apply before authentication. The block
    /// lookup rides on the first applicable limit's store call ([`RateLimiter::check_unless_blocked`]),
    /// so a request costs one Redis round trip, not two; with no applicable limit it is looked up
    /// alone. A blocked client is refused without being counted, as when the lookup ran first.
    pub async fn check_before_auth(
        &self,
        names: &[String],
        subject: &Subject<'_>,
        hits: &mut Vec<(String, &'static str)>,
    ) -> Result<Vec<ratelimit::Decision>, Refusal> {
        // A range block is known locally; the exact entry may still say how long it lasts.
        if self
            .cidr_blocks
            .load()
            .iter()
            .any(|n| n.contains(&subject.ip))
        {
            let left = self.ip_block(subject.ip).await;
            return Err(Refusal::Blocked(left.unwrap_or(CIDR_BLOCK_RETRY)));
        }
        let mut block_pending = true;
        let ip_key = format!("ip:{}", subject.ip);
        let mut decisions = Vec::new();
        for (name, spec, keys, key) in self.applicable(names, None, subject) {
            let decision = if block_pending {
                block_pending = false;
                match self.limiter.check_unless_blocked(&ip_key, spec, &key).await {
                    Verdict::Blocked(left) => return Err(Refusal::Blocked(left)),
                    Verdict::Checked(decision) => decision,
                }
            } else {
                self.check_one(spec, &key).await
            };
            if let Some(rej) = refusal(&decision, name, keys, hits) {
                return Err(Refusal::Limited(rej));
            }
            decisions.push(decision);
        }
        if block_pending && let Some(left) = self.limiter.is_blocked(&ip_key).await {
            return Err(Refusal::Blocked(left));
        }
        Ok(decisions)
    }

    /// Check `names` (plus, after authentication, the caller's tier limits). Returns the
    /// decisions of allowed checks, for `RateLimit` headers, or the refusal.
    pub async fn check(
        &self,
        names: &[String],
        tier: Option<&str>,
        subject: &Subject<'_>,
        hits: &mut Vec<(String, &'static str)>,
    ) -> Result<Vec<ratelimit::Decision>, Rejection> {
        let mut decisions = Vec::new();
        for (name, spec, keys, key) in self.applicable(names, tier, subject) {
            let decision = self.check_one(spec, &key).await;
            if let Some(rej) = refusal(&decision, name, keys, hits) {
                return Err(rej);
            }
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// The limits among `names` (and the tier's) that apply to `subject`, with its key for each.
    fn applicable<'s>(
        &'s self,
        names: &'s [String],
        tier: Option<&str>,
        subject: &'s Subject<'_>,
    ) -> impl Iterator<Item = (&'s String, &'s LimitSpec, &'s [LimitKey], String)> {
        let tier_names = tier
            .and_then(|t| self.store.tiers.get(t))
            .map(Vec::as_slice)
            .unwrap_or_default();
        names.iter().chain(tier_names).filter_map(|name| {
            let (spec, keys) = self.specs.get(name)?;
            let key = subject.key(keys)?;
            Some((name, spec, keys.as_slice(), key))
        })
    }

    /// One limit: without an `.await` when the store can decide locally.
    async fn check_one(&self, spec: &LimitSpec, key: &str) -> ratelimit::Decision {
        match self.limiter.check_now(spec, key) {
            Some(d) => d,
            None => self.limiter.check(spec, key).await,
        }
    }

    /// Record a failed authentication by `ip` (and `user`, when the credential names one).
    /// Returns the block imposed, if this failure crossed the threshold.
    pub async fn auth_failed(&self, ip: IpAddr, user: Option<&str>) -> Option<Duration> {
        let cfg = self.access.brute_force.as_ref()?;
        let mut imposed = None;
        let mut subjects = vec![format!("ip:{ip}")];
        if let Some(u) = user {
            subjects.push(format!("principal:{u}"));
        }
        for subject in subjects {
            if let Some(ttl) = self
                .brute
                .failure(&subject, cfg.threshold, cfg.window, &cfg.blocks)
            {
                if let Err(e) = self.limiter.block(&subject, ttl).await {
                    tracing::warn!(error = %e, "could not share a brute-force block; it holds on this instance");
                }
                imposed = Some(ttl);
            }
        }
        imposed
    }

    /// A successful authentication clears the failures counted against the client and user.
    pub fn auth_succeeded(&self, ip: IpAddr, user: &str) {
        if self.access.brute_force.is_some() {
            self.brute.reset(&format!("ip:{ip}"));
            self.brute.reset(&format!("principal:{user}"));
        }
    }
}

/// Why the checks before authentication refused a request.
#[derive(Debug)]
pub enum Refusal {
    /// The client address is on the dynamic block list for this long more.
    Blocked(Duration),
    /// A limit refused it (429), or could not be evaluated (503).
    Limited(Rejection),
}

/// The response for a decision that does not let the request through, or `None`. A refusal
/// by a limit is noted in `hits` (limit name, key kind) for the event's findings.
fn refusal(
    decision: &ratelimit::Decision,
    name: &str,
    keys: &[LimitKey],
    hits: &mut Vec<(String, &'static str)>,
) -> Option<Rejection> {
    if decision.unavailable {
        let mut rej = Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "rate_limit_unavailable",
            "Service Unavailable",
        )
        .detail("rate limiting is temporarily unavailable");
        if let Some(v) = decision.retry_after_secs().map(HeaderValue::from) {
            rej = rej.header(RETRY_AFTER, v);
        }
        return Some(rej);
    }
    if decision.allowed {
        return None;
    }
    hits.push((name.to_owned(), key_kind(keys)));
    let mut rej = Rejection::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too Many Requests",
    );
    // Fix: this set `rej.rule`, which the pipeline records as an `authorization` finding
    // (`rate_limit.<name>`), so every 429 event also claimed an authorization rule had denied.
    // The `rate_limit` finding (limit and key kind) is recorded from `hits`.
    if let Some(v) = decision.retry_after_secs().map(HeaderValue::from) {
        rej = rej.header(RETRY_AFTER, v);
    }
    let (policy, state) = decision.headers();
    if let (Ok(p), Ok(s)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&state),
    ) {
        rej = rej.header(RATELIMIT_POLICY, p).header(RATELIMIT, s);
    }
    Some(rej)
}

fn key_kind(keys: &[LimitKey]) -> &'static str {
    match keys {
        [LimitKey::Ip] => "ip",
        [LimitKey::Principal] => "principal",
        [LimitKey::ApiKey] => "api_key",
        [LimitKey::Route] => "route",
        _ => "composite",
    }
}

/// What a request is counted as.
pub struct Subject<'a> {
    pub ip: IpAddr,
    pub route: &'a str,
    pub identity: Option<&'a Identity>,
}

impl Subject<'_> {
    /// The bucket key for a limit, or None when the limit does not apply (an anonymous
    /// caller has no principal to count).
    fn key(&self, parts: &[LimitKey]) -> Option<String> {
        let mut out = String::with_capacity(48);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            match p {
                LimitKey::Ip => {
                    out.push_str("ip:");
                    out.push_str(&self.ip.to_string());
                }
                LimitKey::Route => {
                    out.push_str("route:");
                    out.push_str(self.route);
                }
                LimitKey::Principal => {
                    out.push_str("principal:");
                    out.push_str(&self.identity?.principal);
                }
                LimitKey::ApiKey => {
                    let id = self.identity?;
                    out.push_str("key:");
                    out.push_str(id.credential_id.as_deref().unwrap_or(&id.principal));
                }
            }
        }
        Some(out)
    }
}

/// Failed-authentication counters with escalating blocks. Counted per instance (the blocks
/// they lead to are shared through the limiter's store); bounded in size.
#[derive(Default)]
struct BruteForce {
    entries: Mutex<HashMap<String, Strikes>>,
}

struct Strikes {
    window_start: Instant,
    failures: u32,
    /// How many blocks this subject has earned; picks the next, longer block.
    level: usize,
}

const MAX_TRACKED: usize = 100_000;

impl BruteForce {
    fn failure(
        &self,
        subject: &str,
        threshold: u32,
        window: Duration,
        blocks: &[Duration],
    ) -> Option<Duration> {
        let Ok(mut map) = self.entries.lock() else {
            return None;
        };
        let now = Instant::now();
        if map.len() >= MAX_TRACKED && !map.contains_key(subject) {
            map.retain(|_, s| now.duration_since(s.window_start) < window || s.level > 0);
            if map.len() >= MAX_TRACKED {
                return None;
            }
        }
        let s = map.entry(subject.to_string()).or_insert(Strikes {
            window_start: now,
            failures: 0,
            level: 0,
        });
        if now.duration_since(s.window_start) >= window {
            s.window_start = now;
            s.failures = 0;
        }
        s.failures += 1;
        if s.failures < threshold {
            return None;
        }
        let ttl = blocks
            .get(s.level)
            .or_else(|| blocks.last())
            .copied()
            .unwrap_or(Duration::from_secs(60));
        s.level += 1;
        s.failures = 0;
        s.window_start = now;
        Some(ttl)
    }

    /// A success clears the failures but not the escalation level: an attacker holding one
    /// valid credential of their own must not be able to reset to the shortest block.
    fn reset(&self, subject: &str) {
        if let Ok(mut map) = self.entries.lock() {
            match map.get_mut(subject) {
                Some(s) if s.level > 0 => s.failures = 0,
                Some(_) => {
                    map.remove(subject);
                }
                None => {}
            }
        }
    }
}

/// The refusal for a blocked client or caller.
pub fn blocked(left: Duration) -> Rejection {
    // Fix: whole seconds were rounded down, so a client was told to come back before its
    // block ended (a fresh 2 s block said `Retry-After: 1`). Rounded up, as for 429s.
    let secs = left
        .as_secs()
        .saturating_add(u64::from(left.subsec_nanos() > 0));
    Rejection::new(StatusCode::FORBIDDEN, "blocked", "Forbidden")
        .header(RETRY_AFTER, HeaderValue::from(secs.max(1)))
}

/// Requests in flight on a route; a permit is held until the response has been sent.
#[derive(Debug, Default)]
pub struct InFlight(Arc<AtomicUsize>);

pub struct InFlightPermit(Arc<AtomicUsize>);

impl InFlight {
    pub fn try_acquire(&self, max: usize) -> Option<InFlightPermit> {
        let prev = self.0.fetch_add(1, Ordering::AcqRel);
        if prev >= max {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlightPermit(self.0.clone()))
    }
}

impl Drop for InFlightPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open connections per client IP, for the accept-time cap.
#[derive(Default)]
pub struct PerIpConnections {
    counts: Mutex<BTreeMap<IpAddr, usize>>,
}

pub struct IpConnPermit {
    owner: Arc<PerIpConnections>,
    ip: IpAddr,
}

impl PerIpConnections {
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpConnPermit> {
        let mut map = self.counts.lock().ok()?;
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpConnPermit {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for IpConnPermit {
    fn drop(&mut self) {
        if let Ok(mut map) = self.owner.counts.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}
