//! Live detection: every request's event goes, off the request path, to a Sigma engine; its
//! alerts become Detection Finding events and, where the config says so, automatic
//! responses — a block through the block list, a signed webhook call to a SOAR.
//!
//! The request path hands the finished event — the redacted copy the event sinks got, shared
//! through an `Arc`, never cloned — to a bounded queue (`submit`); when the queue is full the
//! event is dropped for detection (never for the event sinks) and counted. The queue is a
//! `portcullis_events::handoff` queue, like the sinks': the detection thread drains it in
//! batches and otherwise sleeps for [`DETECTION_POLL`], and a producer wakes it only when the
//! queue reaches half full, so the request path never pays a futex wake-up and a context
//! switch per event. The price is up to `DETECTION_POLL` of extra alert latency. One thread
//! owns the engine and its correlation state, so evaluation needs no locks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use bytes::Bytes;
use http::{Request, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_events::handoff::{self, HandoffReceiver, HandoffSender};
use portcullis_events::{Attack, AttackRef, DetectionFinding, Emitter, HttpActivity, Severity};
use portcullis_policy::ratelimit::RateLimiter;
use portcullis_sigma::{
    CorrelationLimits, Engine, FieldMapping, FieldValue, Level, Match, MatchKind, attack_names,
};

use crate::config::{BlockSubject, DetectionConfig, DetectionResponse, Webhook};
use crate::metrics::Metrics;

/// How long the idle detection thread sleeps between looks at its queue: the most an alert
/// waits for its event to be picked up, unless a burst fills half the queue first.
pub const DETECTION_POLL: std::time::Duration = handoff::DEFAULT_POLL;

/// Events the detection thread takes off its queue at a time.
const DETECTION_BATCH: usize = 1024;

/// The detection queue and its counters; the engine runs in its own thread.
pub struct Detection {
    /// `None` when the detection thread could not be started: every event counts as dropped.
    queue: Option<HandoffSender<Arc<HttpActivity>>>,
    /// Events the engine never saw because the queue was full.
    pub dropped: AtomicU64,
    /// Identifies the config this runtime was built from, so a reload that changes nothing
    /// keeps the engine and its open correlation windows.
    pub fingerprint: u64,
    /// The block list automatic blocks go to; a reload with another store restarts detection.
    pub limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detection").finish_non_exhaustive()
    }
}

/// What the engine thread needs besides its events. No redactor: the events arrive redacted
/// by the emitter (`Emitter::emit_shared`), so rules see exactly what the sinks see.
pub struct DetectionDeps {
    pub emitter: Emitter,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
}

impl Detection {
    /// Start the engine thread for `cfg`. Must be called inside a Tokio runtime.
    pub fn start(cfg: &DetectionConfig, deps: DetectionDeps) -> Arc<Detection> {
        let limiter = deps.limiter.clone();
        let metrics = deps.metrics.clone();
        let mapping = FieldMapping::web_to_ocsf().with_pairs(
            cfg.field_mapping
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let limits = CorrelationLimits {
            max_groups: cfg.max_groups,
            ..CorrelationLimits::default()
        };
        let descriptions: HashMap<String, String> = cfg
            .rules
            .rules()
            .filter_map(|r| Some((r.key().to_string(), r.description.clone()?)))
            .collect();
        let engine = Engine::new((*cfg.rules).clone(), mapping, limits);
        let responses = Arc::new(cfg.responses.clone());
        // The engine is CPU work: it gets its own thread so a burst of events never takes a
        // Tokio worker from the request path. Blocks and webhooks go back to the runtime.
        let runtime = tokio::runtime::Handle::current();
        let spawned = handoff::spawn(
            "portcullis-detection".into(),
            cfg.queue,
            DETECTION_POLL,
            move |rx| run(engine, rx, responses, descriptions, deps, runtime),
        );
        let queue = match spawned {
            // The thread ends by itself once this runtime (the sender) is dropped.
            Ok((queue, _thread)) => Some(queue),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the detection thread; detection is off");
                None
            }
        };
        Arc::new(Detection {
            queue,
            dropped: AtomicU64::new(0),
            fingerprint: cfg.fingerprint,
            limiter,
            metrics,
        })
    }

    /// Whether this runtime can stay in place for a config with `fingerprint` and `limiter`.
    pub fn reusable_for(&self, fingerprint: u64, limiter: &Arc<RateLimiter>) -> bool {
        self.fingerprint == fingerprint && Arc::ptr_eq(&self.limiter, limiter)
    }

    /// Hand a finished, redacted event (from `Emitter::emit_shared`) to the engine without
    /// waiting: a reference-count increment and a lock-free queue slot, no copy, no wake-up.
    pub fn submit(&self, ev: Arc<HttpActivity>) {
        let queued = self.queue.as_ref().is_some_and(|q| q.offer(ev).is_ok());
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.detection_dropped();
        }
    }
}

fn run(
    mut engine: Engine,
    rx: HandoffReceiver<Arc<HttpActivity>>,
    responses: Arc<Vec<DetectionResponse>>,
    descriptions: HashMap<String, String>,
    deps: DetectionDeps,
    runtime: tokio::runtime::Handle,
) {
    // Inside the runtime's context, so the webhook client can find its timer and executor.
    let _context = runtime.enter();
    let webhooks = webhook_client();
    let mut batch = Vec::with_capacity(DETECTION_BATCH);
    while rx.recv_batch(&mut batch, DETECTION_BATCH) {
        for ev in batch.drain(..) {
            let time_ms = i64::try_from(ev.time_ms).unwrap_or(i64::MAX);
            let matches = engine.evaluate(&DetectionEvent::new(&ev), time_ms);
            for m in matches {
                deps.metrics.detection_alert(&m.rule_id);
                let mut actions = Vec::new();
                for response in responses
                    .iter()
                    .filter(|r| r.applies(&m.rule_id, &m.title, m.level))
                {
                    if let Some((subject, ttl)) = response.block
                        && let Some(key) = block_key(subject, &m, &ev)
                    {
                        match runtime.block_on(deps.limiter.block(&key, ttl)) {
                            Ok(()) => actions.push(format!("blocked {key} for {}s", ttl.as_secs())),
                            Err(e) => {
                                tracing::warn!(rule = %m.rule_id, error = %e, "automatic block failed");
                                actions.push(format!("block of {key} failed"));
                            }
                        }
                    }
                    if let Some(hook) = &response.webhook {
                        actions.push("webhook".to_string());
                        let finding = finding_for(&m, &ev, &actions, &descriptions);
                        spawn_webhook(&runtime, webhooks.clone(), hook.clone(), finding);
                    }
                }
                deps.emitter
                    .emit_detection(finding_for(&m, &ev, &actions, &descriptions));
            }
        }
    }
}

/// The key an automatic block puts on the block list: the group the correlation fired for
/// when it names the subject, else the triggering event's client or principal.
fn block_key(subject: BlockSubject, m: &Match, ev: &HttpActivity) -> Option<String> {
    let from_group = |fields: &[&str]| match &m.kind {
        MatchKind::Correlation { group, .. } => group
            .iter()
            .find(|(f, _)| fields.contains(&f.as_str()))
            .map(|(_, v)| v.clone()),
        MatchKind::Event => None,
    };
    match subject {
        BlockSubject::Ip => {
            let ip = from_group(&["src_endpoint.ip", "c-ip", "src_ip"])
                .unwrap_or_else(|| ev.client_ip.to_string());
            Some(format!("ip:{}", ip.parse::<std::net::IpAddr>().ok()?))
        }
        BlockSubject::Principal => {
            let principal = from_group(&["actor.user.uid", "actor.user.name"])
                .or_else(|| ev.actor.as_ref().map(|a| a.principal.clone()))?;
            Some(format!("principal:{principal}"))
        }
    }
}

fn finding_for(
    m: &Match,
    ev: &HttpActivity,
    actions: &[String],
    descriptions: &HashMap<String, String>,
) -> DetectionFinding {
    // A correlation lists the requests that built it up; a single-event rule has this one.
    let request_ids = if m.event_ids.is_empty() {
        vec![ev.request_id.clone()]
    } else {
        m.event_ids.clone()
    };
    DetectionFinding {
        time_ms: now_ms(),
        finding_uid: format!("{}-{}", ev.request_id, short_hash(&m.rule_id)),
        rule_id: m.rule_id.clone(),
        title: m.title.clone(),
        severity: level_severity(m.level),
        description: descriptions.get(&m.rule_id).cloned(),
        attacks: attacks(&m.tags),
        request_ids,
        client_ip: Some(ev.client_ip),
        principal: ev.actor.as_ref().map(|a| a.principal.clone()),
        actions_taken: actions.to_vec(),
    }
}

fn level_severity(level: Level) -> Severity {
    match level {
        Level::Informational => Severity::Info,
        Level::Low => Severity::Low,
        Level::Medium => Severity::Medium,
        Level::High => Severity::High,
        Level::Critical => Severity::Critical,
    }
}

/// OCSF `attacks` from a rule's ATT&CK tags, with names from the table shipped in the repo:
/// one entry per technique (with its parent for a sub-technique), and one per tactic.
fn attacks(tags: &[String]) -> Vec<Attack> {
    let (tactics, techniques) = portcullis_sigma::attack_ids(tags);
    let named = |id: &str| AttackRef {
        uid: id.to_string(),
        name: attack_names::technique_name(id)
            .unwrap_or_default()
            .to_string(),
    };
    let tactic = tactics.first().map(|t| match attack_names::tactic_name(t) {
        Some((uid, name)) => AttackRef {
            uid: uid.to_string(),
            name: name.to_string(),
        },
        None => AttackRef {
            uid: t.clone(),
            name: String::new(),
        },
    });
    let mut out: Vec<Attack> = techniques
        .iter()
        .map(|t| match t.split_once('.') {
            Some((parent, _)) => Attack {
                tactic: tactic.clone(),
                technique: Some(named(parent)),
                sub_technique: Some(named(t)),
            },
            None => Attack {
                tactic: tactic.clone(),
                technique: Some(named(t)),
                sub_technique: None,
            },
        })
        .collect();
    if out.is_empty() {
        out.extend(tactic.map(|t| Attack {
            tactic: Some(t),
            ..Attack::default()
        }));
    }
    out
}

/// The event as the rules read it: the OCSF record the sinks write (with `url_string` and
/// `referrer`, which web-server rules need), as JSON.
pub fn detection_view(ev: &HttpActivity) -> serde_json::Value {
    portcullis_events::to_ocsf_json(ev)
}

/// An address as text. IPv4 (nearly every client) is written digit by digit: through
/// `Display` it cost ~1,300 instructions, a tenth of evaluating the whole rule pack.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

/// The same record read field by field straight from the event, without building JSON: the
/// fields rules use most are answered here, anything else from the JSON record, built once
/// and only when a rule asks for such a field. `detection_view_agrees` keeps the two equal.
pub struct DetectionEvent<'a> {
    ev: &'a HttpActivity,
    json: std::cell::OnceCell<serde_json::Value>,
}

impl<'a> DetectionEvent<'a> {
    pub fn new(ev: &'a HttpActivity) -> Self {
        DetectionEvent {
            ev,
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> &serde_json::Value {
        self.json.get_or_init(|| detection_view(self.ev))
    }
}

impl<'a> portcullis_sigma::Event for DetectionEvent<'a> {
    fn field(&self, path: &str) -> Option<FieldValue<'_>> {
        let ev = self.ev;
        let borrowed = |s: &'a str| Some(FieldValue::Str(Cow::Borrowed(s)));
        let list = |items: Vec<FieldValue<'a>>| {
            if items.is_empty() {
                None
            } else {
                Some(FieldValue::List(items))
            }
        };
        match path {
            "http_request.http_method" => borrowed(&ev.method),
            "http_request.url.path" => borrowed(&ev.path),
            "http_request.url.query_string" => ev.query.as_deref().and_then(borrowed),
            "http_request.url.hostname" => borrowed(&ev.host),
            "http_request.url.scheme" => borrowed(&ev.scheme),
            "http_request.user_agent" => ev.user_agent.as_deref().and_then(borrowed),
            "http_request.version" => borrowed(&ev.http_version),
            "http_request.length" => Some(FieldValue::Int(
                i64::try_from(ev.bytes_in).unwrap_or(i64::MAX),
            )),
            "http_response.code" => Some(FieldValue::Int(i64::from(ev.status))),
            "http_response.length" => Some(FieldValue::Int(
                i64::try_from(ev.bytes_out).unwrap_or(i64::MAX),
            )),
            "src_endpoint.ip" => Some(FieldValue::Str(Cow::Owned(ip_text(ev.client_ip)))),
            "metadata.uid" => borrowed(&ev.request_id),
            "unmapped.reason" => ev.reason.as_deref().and_then(borrowed),
            "unmapped.route" => ev.route.as_deref().and_then(borrowed),
            "unmapped.findings.kind" => list(
                ev.findings
                    .iter()
                    .map(|f| FieldValue::Str(Cow::Borrowed(f.kind.as_str())))
                    .collect(),
            ),
            "unmapped.findings.id" => list(
                ev.findings
                    .iter()
                    .map(|f| FieldValue::Str(Cow::Borrowed(f.id.as_str())))
                    .collect(),
            ),
            "unmapped.auth.attempted_user" => ev.attempted_user.as_deref().and_then(borrowed),
            "unmapped.auth.credential_id" => ev
                .actor
                .as_ref()
                .and_then(|a| a.credential_id.as_deref())
                .and_then(borrowed),
            "unmapped.auth.method" => ev
                .actor
                .as_ref()
                .map(|a| a.auth_method.as_str())
                .and_then(borrowed),
            "actor.user.uid" | "actor.user.name" => ev
                .actor
                .as_ref()
                .map(|a| a.principal.as_str())
                .and_then(borrowed),
            "unmapped.operation.path" => ev
                .operation
                .as_ref()
                .map(|o| o.path.as_str())
                .and_then(borrowed),
            "unmapped.operation.id" => ev
                .operation
                .as_ref()
                .and_then(|o| o.id.as_deref())
                .and_then(borrowed),
            "action_id" => Some(FieldValue::Int(match ev.action {
                portcullis_events::Action::Allowed => 1,
                portcullis_events::Action::Denied => 2,
            })),
            other => self.json().field(other),
        }
    }

    fn keywords(&self, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        self.json().keywords(visit)
    }
}

type WebhookClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<Bytes>,
>;

fn webhook_client() -> Option<WebhookClient> {
    let tls = crate::tls::upstream_client_config(None).ok()?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Some(Client::builder(TokioExecutor::new()).build(connector))
}

/// `sha256=<hex>` over `<timestamp>.<body>`: the receiver recomputes it with the shared
/// secret and rejects stale timestamps, so a captured call cannot be replayed later.
pub fn webhook_signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn spawn_webhook(
    runtime: &tokio::runtime::Handle,
    client: Option<WebhookClient>,
    hook: Webhook,
    finding: DetectionFinding,
) {
    let Some(client) = client else {
        tracing::warn!("webhook client unavailable");
        return;
    };
    runtime.spawn(async move {
        let body = portcullis_events::detection_json(&finding).to_string();
        let ts = now_ms() / 1000;
        let signature = webhook_signature(hook.secret.expose().as_bytes(), ts, body.as_bytes());
        let req = Request::post(&hook.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-portcullis-timestamp", ts.to_string())
            .header("x-portcullis-signature", signature)
            .body(http_body_util::Full::new(Bytes::from(body)));
        let Ok(req) = req else {
            tracing::warn!("webhook request could not be built");
            return;
        };
        match tokio::time::timeout(hook.timeout, client.request(req)).await {
            Ok(Ok(resp)) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                if !status.is_success() {
                    tracing::warn!(%status, "webhook refused the finding");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "webhook call failed"),
            Err(_) => tracing::warn!("webhook call timed out"),
        }
    });
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn short_hash(s: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use portcullis_events::{Action, Actor, Finding, HttpActivity, Operation, Severity};
    use portcullis_sigma::{Event, FieldValue};

    use super::{DetectionEvent, detection_view};

    fn text(v: Option<FieldValue<'_>>) -> String {
        match v {
            None => "<none>".into(),
            Some(FieldValue::Str(s)) => s.into_owned(),
            Some(FieldValue::Int(i)) => i.to_string(),
            Some(FieldValue::List(items)) => items
                .into_iter()
                .map(|i| text(Some(i)))
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.0.255",
            "100.64.9.99",
            "203.0.113.9",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(super::ip_text(ip), ip.to_string());
        }
    }

    /// Every field the direct view answers itself reads the same as the JSON record.
    #[test]
    fn detection_view_agrees() {
        let ev = HttpActivity {
            time_ms: 1,
            request_id: "req-1".into(),
            client_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            client_port: 4000,
            tls: None,
            http_version: "HTTP/1.1".into(),
            method: "POST".into(),
            scheme: "https".into(),
            host: "api.test".into(),
            path: "/v1/orders/7".into(),
            query: Some("a=1".into()),
            headers: vec![("referer".into(), "https://x.test/".into())],
            user_agent: Some("sqlmap/1.7".into()),
            status: 403,
            bytes_in: 12,
            bytes_out: 61,
            duration_us: 5,
            route: Some("orders".into()),
            upstream: None,
            action: Action::Denied,
            reason: Some("attack_detected".into()),
            findings: vec![Finding {
                kind: "attack".into(),
                id: "sqli.union".into(),
                location: Some("/query/a".into()),
                detail: None,
                severity: Severity::Critical,
            }],
            actor: Some(Actor {
                auth_method: "jwt".into(),
                principal: "alice".into(),
                credential_id: Some("jti-1".into()),
                scopes: vec![],
            }),
            attempted_user: Some("bob".into()),
            operation: Some(Operation {
                id: Some("getOrder".into()),
                path: "/v1/orders/{id}".into(),
            }),
        };
        let json = detection_view(&ev);
        let view = DetectionEvent::new(&ev);
        for path in [
            "http_request.http_method",
            "http_request.url.path",
            "http_request.url.query_string",
            "http_request.url.hostname",
            "http_request.url.scheme",
            "http_request.user_agent",
            "http_request.version",
            "http_request.length",
            "http_response.code",
            "http_response.length",
            "src_endpoint.ip",
            "metadata.uid",
            "unmapped.reason",
            "unmapped.route",
            "unmapped.findings.kind",
            "unmapped.findings.id",
            "unmapped.auth.attempted_user",
            "unmapped.auth.credential_id",
            "unmapped.auth.method",
            "actor.user.uid",
            "actor.user.name",
            "unmapped.operation.path",
            "unmapped.operation.id",
            "action_id",
            "http_request.url.url_string",
            "http_request.referrer",
        ] {
            assert_eq!(text(view.field(path)), text(json.field(path)), "{path}");
        }
    }
}
