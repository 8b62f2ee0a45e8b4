//! `RateLimit-Policy` / `RateLimit` response fields per draft-ietf-httpapi-ratelimit-headers-10
//! (the latest draft at the time of writing), plus the `Retry-After` value.
//!
//! Both fields are Structured Field Lists (RFC 9651) of quoted policy names with parameters:
//!
//! ```text
//! RateLimit-Policy: "per-ip";q=20;w=1, "daily";q=10000;w=86400
//! RateLimit: "per-ip";r=12;t=1, "daily";r=9876;t=1120
//! ```
//!
//! Mapping from GCRA, which the draft has no burst parameter for:
//! - `q` = `rate` and `w` = `per` in whole seconds (rounded up, at least 1): the policy exactly as
//!   configured, which is what clients plan with;
//! - `r` = requests that may be sent right now, capped at `q` so the two fields never contradict
//!   each other (a burst larger than the rate is an allowance we do not advertise; a client that
//!   follows `r` is never refused);
//! - `t` = seconds until the bucket is full again, i.e. until the quota is entirely restored
//!   ("the quota resets"), rounded up.
//!
//! `Retry-After` (RFC 9110) is the exact wait until the next request passes, rounded up to whole
//! seconds and at least 1, because `Retry-After: 0` invites an immediate retry storm.

use std::fmt::Write as _;
use std::time::Duration;

use super::Decision;

impl Decision {
    /// `(RateLimit-Policy, RateLimit)` field values for this decision alone. For several limits
    /// on one request use [`combined_headers`].
    pub fn headers(&self) -> (String, String) {
        let mut policy = String::with_capacity(48);
        let mut state = String::with_capacity(48);
        self.write_policy(&mut policy);
        self.write_state(&mut state);
        (policy, state)
    }

    /// Whole seconds for a `Retry-After` field: `Some` when the request was refused (rate limited
    /// or store unavailable), rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        if self.allowed {
            return None;
        }
        Some(ceil_secs(self.retry_after.unwrap_or(Duration::from_secs(1))).max(1))
    }

    fn write_policy(&self, out: &mut String) {
        write_sf_string(out, &self.policy);
        // Writing to a String cannot fail.
        let _ = write!(out, ";q={};w={}", self.limit, ceil_secs(self.window).max(1));
    }

    fn write_state(&self, out: &mut String) {
        write_sf_string(out, &self.policy);
        let remaining = if self.unavailable {
            0
        } else {
            self.remaining.min(self.limit)
        };
        let reset = if self.unavailable {
            self.retry_after.unwrap_or(Duration::ZERO)
        } else {
            self.reset_after
        };
        let _ = write!(out, ";r={remaining};t={}", ceil_secs(reset));
    }
}

/// `(RateLimit-Policy, RateLimit)` for every limit a request was checked against, in the given
/// order; `None` when there are none (send neither field then).
pub fn combined_headers<'a, I>(decisions: I) -> Option<(String, String)>
where
    I: IntoIterator<Item = &'a Decision>,
{
    let mut policy = String::new();
    let mut state = String::new();
    for d in decisions {
        if !policy.is_empty() {
            policy.push_str(", ");
            state.push_str(", ");
        }
        d.write_policy(&mut policy);
        d.write_state(&mut state);
    }
    (!policy.is_empty()).then_some((policy, state))
}

/// Seconds, rounded up: a client told "0" would retry too early.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// An RFC 9651 sf-string: printable ASCII only, `"` and `\` escaped. Limit names are validated to
/// a safe alphabet at load time, so the replacement of anything else is only a last defence
/// against header injection.
fn write_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ratelimit::DecisionSource;

    fn decision(allowed: bool) -> Decision {
        Decision {
            allowed,
            limit: 100,
            window: Duration::from_secs(60),
            burst: 150,
            remaining: if allowed { 120 } else { 0 },
            reset_after: Duration::from_millis(14_200),
            retry_after: (!allowed).then(|| Duration::from_millis(600)),
            unavailable: false,
            source: DecisionSource::Memory,
            policy: Arc::from("api"),
        }
    }

    #[test]
    fn formats_per_draft() {
        let (p, s) = decision(true).headers();
        assert_eq!(p, r#""api";q=100;w=60"#);
        assert_eq!(s, r#""api";r=100;t=15"#, "r capped at q, t rounded up");
        assert_eq!(decision(true).retry_after_secs(), None);
        assert_eq!(decision(false).retry_after_secs(), Some(1));
        let mut daily = decision(true);
        daily.policy = Arc::from("da\"ily\n");
        daily.limit = 10_000;
        daily.window = Duration::from_secs(86_400);
        daily.remaining = 9_999;
        let (p, s) = combined_headers([&decision(false), &daily]).unwrap();
        assert_eq!(p, r#""api";q=100;w=60, "da\"ily_";q=10000;w=86400"#);
        assert_eq!(s, r#""api";r=0;t=15, "da\"ily_";r=9999;t=15"#);
        assert_eq!(combined_headers([]), None);
    }

    #[test]
    fn sub_second_windows_round_up() {
        let mut d = decision(true);
        d.window = Duration::from_millis(100);
        d.reset_after = Duration::ZERO;
        let (p, s) = d.headers();
        assert_eq!(p, r#""api";q=100;w=1"#);
        assert!(s.ends_with(";t=0"));
    }
}
