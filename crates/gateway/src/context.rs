//! Per-connection and per-request state, in the spirit of pingora's `CTX`: what the stages of
//! the pipeline learn about a request, and the guard that turns it into exactly one event.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use portcullis_events::{Action, Emitter, Finding, HttpActivity, TlsInfo};

use crate::framing::FramingSignal;
use crate::metrics::Metrics;

/// What is known about a client connection before any request is read.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: Option<TlsInfo>,
    /// The principal of a client certificate verified during the TLS handshake (mTLS).
    pub client_cert_principal: Option<String>,
    /// Value of `Strict-Transport-Security` for responses on this listener.
    pub hsts: Option<http::HeaderValue>,
    pub listener: Arc<str>,
    /// Set on plain listeners that only redirect to HTTPS on this port.
    pub redirect_https_port: Option<u16>,
    pub framing: FramingSignal,
    pub activity: Arc<ConnActivity>,
}

impl ConnInfo {
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Counters the connection watchdog reads to enforce header, idle timeouts.
#[derive(Debug)]
pub struct ConnActivity {
    epoch: Instant,
    pub in_flight: AtomicUsize,
    /// Milliseconds since `epoch` when the last request finished (or the connection opened).
    pub last_done_ms: AtomicU64,
    /// Bytes read from the socket so far, and the count when the last request finished.
    pub bytes_read: AtomicU64,
    pub bytes_read_at_done: AtomicU64,
}

impl Default for ConnActivity {
    fn default() -> Self {
        ConnActivity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_read_at_done: AtomicU64::new(0),
        }
    }
}

impl ConnActivity {
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }
    pub fn request_done(&self) {
        self.bytes_read_at_done
            .store(self.bytes_read.load(Ordering::Acquire), Ordering::Release);
        self.last_done_ms.store(self.now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Everything the stages learn about one request. Owned by the pipeline until the response
/// is built, then folded into the [`EventGuard`] that travels with the response body.
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: IpAddr,
    pub conn: Arc<ConnInfo>,
    pub route: Option<Arc<str>>,
    pub upstream: Option<String>,
    pub reason: Option<&'static str>,
    pub findings: Vec<Finding>,
    pub authenticated: bool,
    /// The verified caller, once the authenticate stage has run.
    pub identity: Option<Arc<portcullis_identity::Identity>>,
    /// `RateLimit-Policy` / `RateLimit` values for an allowed response, when the route sends them.
    pub rate_headers: Option<(String, String)>,
    pub body: Arc<crate::body::BodyState>,
    /// The user name of a failed credential check (Basic), for brute-force detection.
    pub attempted_user: Option<String>,
    /// The OpenAPI operation the request matched.
    pub operation: Option<portcullis_events::Operation>,
}

/// Emits the request's event when dropped — after the response body has been sent, when the
/// client disconnects mid-way, or when the request future is cancelled. One guard per request
/// is created at the top of the pipeline, so every request yields exactly one event.
pub struct EventGuard {
    event: Option<HttpActivity>,
    started: Instant,
    body: Arc<crate::body::BodyState>,
    emitter: Emitter,
    metrics: Arc<Metrics>,
    conn: Arc<ConnActivity>,
    completed: bool,
    /// Held until the response is done: the route's in-flight slot.
    in_flight: Option<crate::protect::InFlightPermit>,
    /// The live detection engine the finished event also goes to.
    detection: Option<Arc<crate::detection::Detection>>,
}

impl EventGuard {
    pub fn new(
        event: HttpActivity,
        body: Arc<crate::body::BodyState>,
        emitter: Emitter,
        metrics: Arc<Metrics>,
        conn: Arc<ConnActivity>,
    ) -> Self {
        conn.request_started();
        EventGuard {
            event: Some(event),
            started: Instant::now(),
            body,
            emitter,
            metrics,
            conn,
            completed: false,
            in_flight: None,
            detection: None,
        }
    }

    /// Send the finished event to the detection engine too.
    pub fn detect_with(&mut self, detection: Option<Arc<crate::detection::Detection>>) {
        self.detection = detection;
    }

    /// Record the outcome once the response head is known.
    pub fn set_outcome(&mut self, status: u16, ctx: &mut RequestContext, denied: bool) {
        if let Some(ev) = self.event.as_mut() {
            ev.status = status;
            ev.route = ctx.route.as_deref().map(str::to_string);
            ev.upstream = ctx.upstream.take();
            ev.reason = ctx.reason.map(str::to_string);
            ev.findings = std::mem::take(&mut ctx.findings);
            ev.action = if denied {
                Action::Denied
            } else {
                Action::Allowed
            };
            ev.client_ip = ctx.client_ip;
            ev.attempted_user = ctx.attempted_user.take();
            ev.operation = ctx.operation.take();
            ev.actor = ctx.identity.as_ref().map(|id| portcullis_events::Actor {
                auth_method: crate::authn::method_name(id.method).to_string(),
                principal: id.principal.clone(),
                credential_id: id.credential_id.clone(),
                scopes: id.scopes.clone(),
            });
        }
    }

    /// Record the matched route as soon as it is known, so that the event of a request
    /// cancelled before its outcome (the client left: 499) still names it.
    pub fn note_route(&mut self, route: &str) {
        if let Some(ev) = self.event.as_mut() {
            ev.route = Some(route.to_string());
        }
    }

    pub fn add_bytes_out(&mut self, n: u64) {
        if let Some(ev) = self.event.as_mut() {
            ev.bytes_out += n;
        }
    }

    /// The response was cut short after its head was sent.
    pub fn response_cut(&mut self, reason: &'static str) {
        if let Some(ev) = self.event.as_mut() {
            ev.reason = Some(reason.to_string());
            ev.action = Action::Denied;
            ev.findings.push(Finding {
                kind: "response".into(),
                id: reason.into(),
                location: None,
                detail: None,
                severity: portcullis_events::Severity::Medium,
            });
        }
        self.completed = true;
    }

    /// Keep the route's in-flight slot until the response has been sent.
    pub fn hold(&mut self, permit: crate::protect::InFlightPermit) {
        self.in_flight = Some(permit);
    }

    /// The response body was delivered completely.
    pub fn finish(&mut self) {
        self.completed = true;
    }
}

impl Drop for EventGuard {
    fn drop(&mut self) {
        let Some(mut ev) = self.event.take() else {
            return;
        };
        ev.duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        ev.bytes_in = self.body.bytes.load(Ordering::Relaxed);
        if !self.completed && ev.reason.is_none() && ev.status == 0 {
            // The client went away before an answer existed (nginx's 499).
            ev.status = 499;
            ev.reason = Some("client_closed".into());
        }
        self.metrics.observe_request(&ev, self.started.elapsed());
        match &self.detection {
            // Redacted once, and the very copy the sinks got goes to detection too.
            Some(detection) => detection.submit(self.emitter.emit_shared(ev)),
            None => self.emitter.emit(ev),
        }
        self.conn.request_done();
    }
}

/// Unix epoch milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
