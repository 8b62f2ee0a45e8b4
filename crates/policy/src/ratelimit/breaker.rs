//! A circuit breaker in front of Redis, so that an outage costs each request nothing instead of a
//! full time budget, and so the gateway hears about an outage once, not per request.
//!
//! States: **closed** (calls go through; `threshold` consecutive failures open it), **open**
//! (calls are refused without touching Redis until `cooldown` has passed), **half-open** (exactly
//! one call, the probe, goes through; success closes the breaker, failure re-opens it for another
//! cooldown). Closed -> open emits [`Transition::Degraded`]; half-open -> closed emits
//! [`Transition::Recovered`]. A failed probe emits nothing: the store is still degraded.
//!
//! Every call holds a [`Permit`]; a permit dropped without a verdict (the request future was
//! cancelled mid-call) releases the probe slot, so a cancelled probe cannot wedge the breaker in
//! half-open forever.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Health, Transition};

/// Transitions kept for [`CircuitBreaker::take_transition`] when nobody drains them; the oldest go
/// first. A flapping Redis must not grow memory without bound.
const MAX_PENDING_TRANSITIONS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive_failures: u32,
    degraded_since: Option<Instant>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    inner: Mutex<Inner>,
    /// True iff closed with no recent failure: lets the common case admit and succeed without the
    /// mutex.
    clean: AtomicBool,
    threshold: u32,
    cooldown: Duration,
    health: watch::Sender<Health>,
    transitions: Mutex<VecDeque<Transition>>,
}

/// The breaker's answer to "may I call Redis?".
#[derive(Debug)]
pub(crate) enum Admission<'a> {
    /// Go ahead, and report the outcome on the permit.
    Pass(Permit<'a>),
    /// Don't; the breaker expects to let a probe through after `retry_in`.
    Reject { retry_in: Duration },
}

/// The right to make one call; report its outcome with [`success`](Permit::success) or
/// [`failure`](Permit::failure).
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    pub(crate) fn success(mut self) {
        self.settled = true;
        self.breaker.on_success(self.probe);
    }

    pub(crate) fn failure(mut self, reason: &str) {
        self.settled = true;
        self.breaker.on_failure(self.probe, reason);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker.abandon_probe();
        }
    }
}

impl CircuitBreaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        let (health, _) = watch::channel(Health::Healthy);
        CircuitBreaker {
            inner: Mutex::new(Inner {
                state: State::Closed,
                consecutive_failures: 0,
                degraded_since: None,
            }),
            clean: AtomicBool::new(true),
            threshold: threshold.max(1),
            cooldown,
            health,
            transitions: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn admit(&self) -> Admission<'_> {
        if self.clean.load(Ordering::Acquire) {
            return Admission::Pass(self.permit(false));
        }
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        match inner.state {
            State::Closed => Admission::Pass(self.permit(false)),
            State::Open { until } if now >= until => {
                inner.state = State::HalfOpen { probing: true };
                Admission::Pass(self.permit(true))
            }
            State::Open { until } => Admission::Reject {
                retry_in: until - now,
            },
            State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                Admission::Pass(self.permit(true))
            }
            // Someone else is probing; their verdict will come within one time budget.
            State::HalfOpen { probing: true } => Admission::Reject {
                retry_in: Duration::ZERO,
            },
        }
    }

    pub(crate) fn health(&self) -> Health {
        *self.health.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    pub(crate) fn take_transition(&self) -> Option<Transition> {
        lock(&self.transitions).pop_front()
    }

    /// The configured cool-down of an open breaker.
    pub(crate) fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// `Some(time until the next probe)` when a call would be refused right now; changes no
    /// state, so it can answer "is there any point in awaiting Redis?" for free.
    pub(crate) fn rejecting(&self) -> Option<Duration> {
        if self.clean.load(Ordering::Acquire) {
            return None;
        }
        let inner = lock(&self.inner);
        match inner.state {
            State::Open { until } => {
                let now = Instant::now();
                (now < until).then(|| until - now)
            }
            State::HalfOpen { probing: true } => Some(Duration::ZERO),
            State::Closed | State::HalfOpen { probing: false } => None,
        }
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            settled: false,
        }
    }

    fn on_success(&self, probe: bool) {
        if self.clean.load(Ordering::Acquire) {
            return;
        }
        let mut inner = lock(&self.inner);
        match inner.state {
            State::Closed => {
                inner.consecutive_failures = 0;
                self.clean.store(true, Ordering::Release);
            }
            State::HalfOpen { .. } if probe => {
                inner.state = State::Closed;
                inner.consecutive_failures = 0;
                let outage = inner
                    .degraded_since
                    .take()
                    .map_or(Duration::ZERO, |since| since.elapsed());
                self.clean.store(true, Ordering::Release);
                drop(inner);
                tracing::debug!(?outage, "redis rate-limit store recovered");
                self.emit(Health::Healthy, Transition::Recovered { outage });
            }
            // A late answer to a call admitted before the breaker opened says nothing about now.
            State::HalfOpen { .. } | State::Open { .. } => {}
        }
    }

    fn on_failure(&self, probe: bool, reason: &str) {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        match inner.state {
            State::Closed => {
                self.clean.store(false, Ordering::Release);
                inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                if inner.consecutive_failures >= self.threshold {
                    inner.state = State::Open {
                        until: now + self.cooldown,
                    };
                    inner.degraded_since = Some(now);
                    let failures = inner.consecutive_failures;
                    drop(inner);
                    tracing::debug!(failures, reason, "redis rate-limit store degraded");
                    self.emit(
                        Health::Degraded,
                        Transition::Degraded {
                            reason: reason.to_owned(),
                        },
                    );
                }
            }
            State::HalfOpen { .. } if probe => {
                inner.state = State::Open {
                    until: now + self.cooldown,
                };
                tracing::debug!(reason, "redis rate-limit probe failed");
            }
            State::HalfOpen { .. } | State::Open { .. } => {}
        }
    }

    fn abandon_probe(&self) {
        let mut inner = lock(&self.inner);
        if inner.state == (State::HalfOpen { probing: true }) {
            inner.state = State::HalfOpen { probing: false };
        }
    }

    fn emit(&self, health: Health, transition: Transition) {
        self.health.send_replace(health);
        let mut queue = lock(&self.transitions);
        if queue.len() >= MAX_PENDING_TRANSITIONS {
            queue.pop_front();
        }
        queue.push_back(transition);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every await-free step, so poison is not a reason to
    // fail requests.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(b: &CircuitBreaker) -> Permit<'_> {
        match b.admit() {
            Admission::Pass(p) => p,
            Admission::Reject { .. } => panic!("expected a pass"),
        }
    }

    #[test]
    fn opens_after_threshold_and_recovers_through_one_probe() {
        let b = CircuitBreaker::new(3, Duration::from_millis(20));
        let rx = b.subscribe();
        pass(&b).failure("x");
        pass(&b).failure("x");
        pass(&b).success();
        // Success resets the count: three more are needed.
        pass(&b).failure("x");
        pass(&b).failure("x");
        assert_eq!(b.health(), Health::Healthy);
        pass(&b).failure("timeout");
        assert_eq!(b.health(), Health::Degraded);
        assert_eq!(*rx.borrow(), Health::Degraded);
        assert_eq!(
            b.take_transition(),
            Some(Transition::Degraded {
                reason: "timeout".to_owned()
            })
        );
        assert_eq!(b.take_transition(), None);
        assert!(matches!(b.admit(), Admission::Reject { .. }));
        std::thread::sleep(Duration::from_millis(25));
        // Half-open: one probe, everyone else refused meanwhile.
        let probe = pass(&b);
        assert!(matches!(b.admit(), Admission::Reject { .. }));
        probe.failure("refused");
        assert_eq!(b.take_transition(), None, "a failed probe is no new event");
        assert!(matches!(b.admit(), Admission::Reject { .. }));
        std::thread::sleep(Duration::from_millis(25));
        // A cancelled probe frees the slot.
        drop(pass(&b));
        pass(&b).success();
        assert_eq!(b.health(), Health::Healthy);
        assert!(matches!(
            b.take_transition(),
            Some(Transition::Recovered { .. })
        ));
        assert!(matches!(b.admit(), Admission::Pass(_)));
    }
}
