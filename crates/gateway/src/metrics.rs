//! Prometheus metrics served on the admin listener's `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use portcullis_events::{Action, HttpActivity};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const ACTIONS: [&str; 2] = ["allowed", "denied"];

/// The `requests` counter handles of one route, by status class and action, created on
/// first use. Counting a request is then a map lookup by `&str` and an atomic add, instead
/// of building an owned label vector (four allocations) and hashing it for the family.
type RouteCounters = [OnceLock<Counter>; STATUS_CLASSES.len() * ACTIONS.len()];

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_counters: RwLock<HashMap<Box<str>, Box<RouteCounters>>>,
    latency: Histogram,
    upstream_errors: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
    events_dropped: Gauge<u64, AtomicU64>,
    events_emitted: Gauge<u64, AtomicU64>,
    connections: Gauge,
    connections_refused: Counter,
    parked_connections: Gauge,
    protection: Family<Labels, Counter>,
    detection_alerts: Family<Labels, Counter>,
    detection_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route, status class and action",
            requests.clone(),
        );
        let latency = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        registry.register(
            "request_duration_seconds",
            "Time from request head to the last response byte",
            latency.clone(),
        );
        let upstream_errors = Family::<Labels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Failures talking to upstreams by pool and kind",
            upstream_errors.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads by result",
            reloads.clone(),
        );
        let events_dropped = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "events_dropped",
            "Events dropped because the event queue was full",
            events_dropped.clone(),
        );
        let events_emitted = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "events_emitted",
            "Events accepted into the event queue",
            events_emitted.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "open_connections",
            "Open client connections",
            connections.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at accept because the connection limit was reached",
            connections_refused.clone(),
        );
        let parked_connections = Gauge::default();
        registry.register(
            "parked_connections",
            "Idle HTTP/1 keep-alive connections waiting for their next request with their HTTP state released",
            parked_connections.clone(),
        );
        let protection = Family::<Labels, Counter>::default();
        registry.register(
            "protection_actions",
            "Rate-limit refusals, blocks and limit-store fail-mode switches",
            protection.clone(),
        );
        let detection_alerts = Family::<Labels, Counter>::default();
        registry.register(
            "detection_alerts",
            "Sigma rule matches on the live event stream, by rule id",
            detection_alerts.clone(),
        );
        let detection_dropped = Counter::default();
        registry.register(
            "detection_dropped",
            "Events the detection engine never saw because its queue was full",
            detection_dropped.clone(),
        );
        Metrics {
            detection_alerts,
            detection_dropped,
            protection,
            registry,
            requests,
            request_counters: RwLock::default(),
            latency,
            upstream_errors,
            reloads,
            events_dropped,
            events_emitted,
            connections,
            connections_refused,
            parked_connections,
        }
    }

    pub fn observe_request(&self, ev: &HttpActivity, elapsed: Duration) {
        let class = match ev.status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        let action = match ev.action {
            Action::Allowed => 0,
            Action::Denied => 1,
        };
        let route = ev.route.as_deref().unwrap_or_default();
        let slot = class * ACTIONS.len() + action;
        let make = || {
            self.requests
                .get_or_create(&vec![
                    ("route", route.to_string()),
                    (
                        "status_class",
                        STATUS_CLASSES
                            .get(class)
                            .copied()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    (
                        "action",
                        ACTIONS.get(action).copied().unwrap_or_default().to_string(),
                    ),
                ])
                .clone()
        };
        let counted = self
            .request_counters
            .read()
            .ok()
            .and_then(|m| {
                m.get(route)
                    .and_then(|c| c.get(slot))
                    .map(|c| c.get_or_init(make).inc())
            })
            .is_some();
        if !counted {
            match self.request_counters.write() {
                Ok(mut m) => {
                    let counters = m.entry(route.into()).or_default();
                    match counters.get(slot) {
                        Some(c) => c.get_or_init(make).inc(),
                        None => make().inc(),
                    };
                }
                Err(_) => {
                    make().inc();
                }
            }
        }
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub fn upstream_error(&self, pool: &str, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&vec![
                ("upstream", pool.to_string()),
                ("kind", kind.to_string()),
            ])
            .inc();
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// A request refused by a protection stage (`rate_limited`, `blocked`, `overloaded`, …).
    pub fn protection_action(&self, action: &str) {
        self.protection
            .get_or_create(&vec![("action", action.to_string())])
            .inc();
    }

    pub fn store_transition(&self, kind: &str) {
        self.protection_action(kind);
    }

    pub fn detection_alert(&self, rule_id: &str) {
        self.detection_alerts
            .get_or_create(&vec![("rule", rule_id.to_string())])
            .inc();
    }

    pub fn detection_dropped(&self) {
        self.detection_dropped.inc();
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn connection_parked(&self) {
        self.parked_connections.inc();
    }

    pub fn connection_unparked(&self) {
        self.parked_connections.dec();
    }

    /// Text exposition; event counters are sampled from the emitter at scrape time.
    pub fn render(&self, events_emitted: u64, events_dropped: u64) -> String {
        self.events_emitted.set(events_emitted);
        self.events_dropped.set(events_dropped);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
