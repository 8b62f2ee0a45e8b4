//! The generic cell rate algorithm (GCRA) as plain arithmetic, shared by the memory store and
//! mirrored by the Redis Lua script, so both stores give the same answers for the same history.
//!
//! GCRA keeps ONE number per key, the theoretical arrival time (TAT): the instant at which the
//! bucket would be empty again if no more requests came. With emission interval `T = per / rate`
//! and a bucket of `burst` requests, a request at `now` is allowed iff
//! `max(TAT, now) + T - burst * T <= now`; if it is, TAT becomes `max(TAT, now) + T`. So a fresh
//! key may send `burst` requests at once and then one every `T`; over any span `D` starting from
//! a full bucket at most `burst + floor(D / T)` requests pass. A TAT in the past carries no
//! information (the bucket is full), which is what lets stores forget idle keys.

use std::time::Duration;

use super::LimitSpec;

/// The numbers one GCRA evaluation needs, derived once from a [`LimitSpec`] (possibly scaled down
/// for one of several instances) so the hot path does no division by user input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GcraParams {
    /// Nanoseconds between two requests at the sustained rate (`T`), at least 1.
    pub(crate) emission_ns: u64,
    /// Requests the bucket holds, at least 1.
    pub(crate) burst: u32,
    /// The rate this evaluation applies, reported as the policy's quota in headers.
    pub(crate) rate: u32,
    /// The window `rate` is counted over.
    pub(crate) per: Duration,
}

impl GcraParams {
    /// Parameters for `spec` shared by `instances` gateway instances that cannot talk to each
    /// other: each gets `rate / instances` and `burst / instances` (at least 1 each), so together
    /// they admit about what the shared limit would.
    ///
    /// Out-of-range specs are clamped instead of refused: [`LimitSpec::validate`] rejects them
    /// when configuration loads, and a request path must never panic on one that slipped through.
    pub(crate) fn new(spec: &LimitSpec, instances: u32) -> Self {
        let instances = instances.max(1);
        let rate = (spec.rate / instances).max(1);
        let burst = (spec.burst / instances).max(1);
        let per = if spec.per.is_zero() {
            Duration::from_nanos(1)
        } else {
            spec.per
        };
        // Every check builds its parameters, so the common case divides in 64 bits: a 128-bit
        // division is a call to `__udivti3`, several times slower. Only windows beyond 584
        // years need the wide path.
        let emission_ns = match u64::try_from(per.as_nanos()) {
            Ok(per_ns) => per_ns / u64::from(rate),
            Err(_) => u64::try_from(per.as_nanos() / u128::from(rate)).unwrap_or(u64::MAX),
        }
        .max(1);
        GcraParams {
            emission_ns,
            burst,
            rate,
            per,
        }
    }
}

/// The outcome of one evaluation, in nanoseconds relative to `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    /// The TAT to store; equal to the old one when the request was refused (a refused request
    /// consumes nothing, so a client hammering a closed bucket does not push its reopening out).
    pub(crate) new_tat: u64,
    pub(crate) remaining: u32,
    /// Until the bucket is full again (all `burst` requests available).
    pub(crate) reset_after_ns: u64,
    /// Until the next request would be allowed; 0 when this one was.
    pub(crate) retry_after_ns: u64,
}

/// Evaluates one request at `now` against a key whose stored TAT is `tat` (`None` = unknown key,
/// i.e. a full bucket). Pure: the caller stores `new_tat` if it wants to.
pub(crate) fn evaluate(params: &GcraParams, tat: Option<u64>, now: u64) -> Outcome {
    let tat = tat.map_or(now, |t| t.max(now));
    let new_tat = tat.saturating_add(params.emission_ns);
    // "allowed iff new_tat - burst*T <= now", rearranged to add instead of subtract (and in 128
    // bits) so that it stays exact near the clock's zero and for huge windows.
    let horizon = u128::from(now) + u128::from(params.emission_ns) * u128::from(params.burst);
    let new_tat_wide = u128::from(new_tat);
    if new_tat_wide > horizon {
        return Outcome {
            allowed: false,
            new_tat: tat,
            remaining: 0,
            reset_after_ns: tat - now,
            retry_after_ns: u64::try_from(new_tat_wide - horizon).unwrap_or(u64::MAX),
        };
    }
    // How many more intervals fit between the new TAT and the horizon: the requests that could
    // still be sent immediately. The slack is below `burst * T`, so it fits 64 bits unless
    // `burst * T` exceeds 584 years; the 64-bit division is the common case (a 128-bit one is
    // a call to `__udivti3`, several times slower).
    let slack = horizon - new_tat_wide;
    let spare = match u64::try_from(slack) {
        Ok(slack) => u128::from(slack / params.emission_ns),
        Err(_) => slack / u128::from(params.emission_ns),
    };
    Outcome {
        allowed: true,
        new_tat,
        remaining: u32::try_from(spare).unwrap_or(u32::MAX),
        reset_after_ns: new_tat - now,
        retry_after_ns: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: u32, per: Duration, burst: u32) -> LimitSpec {
        LimitSpec {
            name: "t".to_owned(),
            rate,
            per,
            burst,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_one_per_interval() {
        // 10 per second = one every 100 ms, bucket of 3.
        let p = GcraParams::new(&spec(10, Duration::from_secs(1), 3), 1);
        assert_eq!(p.emission_ns, 100 * MS);
        let now = 1_000 * MS;
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let o = evaluate(&p, tat, now);
            assert!(o.allowed);
            assert_eq!(o.remaining, expected_remaining);
            tat = Some(o.new_tat);
        }
        let o = evaluate(&p, tat, now);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ns, 100 * MS);
        assert_eq!(o.reset_after_ns, 300 * MS);
        assert_eq!(o.new_tat, now + 300 * MS, "a refusal consumes nothing");
        // One interval later exactly one more passes.
        let o = evaluate(&p, tat, now + 100 * MS);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        let o2 = evaluate(&p, Some(o.new_tat), now + 100 * MS);
        assert!(!o2.allowed);
        // Long idle: the bucket is full again.
        let o = evaluate(&p, tat, now + 10_000 * MS);
        assert!(o.allowed);
        assert_eq!(o.remaining, 2);
    }

    #[test]
    fn exact_near_the_clock_origin() {
        // A bucket larger than the clock's current value: nothing may saturate to zero.
        let p = GcraParams::new(&spec(10_000, Duration::from_secs(86_400), 10_000), 1);
        let o = evaluate(&p, None, 0);
        assert!(o.allowed);
        assert_eq!(o.remaining, 9_999);
        let o = evaluate(&p, Some(o.new_tat), 1);
        assert_eq!(o.remaining, 9_998);
    }

    #[test]
    fn instances_split_the_limit() {
        let p = GcraParams::new(&spec(100, Duration::from_secs(1), 40), 4);
        assert_eq!((p.rate, p.burst), (25, 10));
        assert_eq!(p.emission_ns, 40 * MS);
        // Never below one request.
        let p = GcraParams::new(&spec(2, Duration::from_secs(1), 1), 8);
        assert_eq!((p.rate, p.burst), (1, 1));
    }

    #[test]
    fn narrow_and_wide_arithmetic_agree() {
        // A bucket whose span (burst * T) exceeds 2^64 ns takes the 128-bit path; a small one
        // the 64-bit path. Both must count the same way.
        let huge = GcraParams::new(&spec(1, Duration::from_secs(1_000_000), u32::MAX), 1);
        assert_eq!(huge.emission_ns, 1_000_000 * 1_000_000_000);
        let o = evaluate(&huge, None, 5);
        assert!(o.allowed);
        assert_eq!(o.remaining, u32::MAX - 1);
        let small = GcraParams::new(&spec(1, Duration::from_secs(1), 5), 1);
        let o = evaluate(&small, None, 5);
        assert_eq!(o.remaining, 4);
        // Windows past u64 nanoseconds clamp the interval instead of overflowing.
        let beyond = GcraParams::new(&spec(1, Duration::from_secs(u64::MAX), 1), 1);
        assert_eq!(beyond.emission_ns, u64::MAX);
    }

    #[test]
    fn degenerate_specs_do_not_panic() {
        for s in [
            spec(0, Duration::ZERO, 0),
            spec(u32::MAX, Duration::from_nanos(1), u32::MAX),
            spec(1, Duration::MAX, u32::MAX),
        ] {
            let p = GcraParams::new(&s, 0);
            let o = evaluate(&p, Some(u64::MAX), u64::MAX);
            let _ = evaluate(&p, Some(o.new_tat), 0);
            let _ = evaluate(&p, None, 0);
        }
    }
}
