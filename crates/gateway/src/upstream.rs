//! Upstream pools: round robin over targets, keep-alive connections, passive health (a target
//! that refuses connections is skipped for a cool-down) and one retry on connect failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;
use crate::config::{TargetUrl, UpstreamConfig};
use crate::tls::{TlsError, upstream_client_config};

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

pub struct Target {
    pub url: TargetUrl,
    /// Milliseconds since the pool's epoch until which the target is skipped.
    unhealthy_until_ms: AtomicU64,
}

pub struct UpstreamPool {
    pub name: String,
    pub config: UpstreamConfig,
    pub targets: Vec<Target>,
    next: AtomicUsize,
    epoch: Instant,
    pub client: HttpClient,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("name", &self.name)
            .finish()
    }
}

impl UpstreamPool {
    pub fn new(name: &str, config: &UpstreamConfig) -> Result<Arc<Self>, TlsError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_keepalive(Some(std::time::Duration::from_secs(60)));
        let tls = upstream_client_config(config.ca.as_deref())?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(config.max_idle_per_target)
            // The gateway already refused bad framing from the client; the upstream's own
            // answers are parsed strictly by hyper.
            .retry_canceled_requests(false)
            .set_host(false)
            .build(connector);
        let targets = config
            .targets
            .iter()
            .map(|url| Target {
                url: url.clone(),
                unhealthy_until_ms: AtomicU64::new(0),
            })
            .collect();
        Ok(Arc::new(UpstreamPool {
            name: name.to_string(),
            config: config.clone(),
            targets,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            client,
        }))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The next healthy target in round-robin order, skipping `exclude` (the target that just
    /// failed). When every target is cooling down, the next one is tried anyway: a guess beats
    /// a certain failure.
    pub fn pick(&self, exclude: Option<usize>) -> Option<usize> {
        let n = self.targets.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        for i in 0..n {
            let idx = (start + i) % n;
            if Some(idx) == exclude {
                continue;
            }
            if self.targets[idx].unhealthy_until_ms.load(Ordering::Relaxed) <= now {
                return Some(idx);
            }
        }
        let idx = start % n;
        if Some(idx) == exclude && n > 1 {
            Some((idx + 1) % n)
        } else if Some(idx) == exclude {
            None
        } else {
            Some(idx)
        }
    }

    pub fn mark_unhealthy(&self, idx: usize) {
        if let Some(t) = self.targets.get(idx) {
            let until = self.now_ms()
                + u64::try_from(self.config.unhealthy_cooldown.as_millis()).unwrap_or(u64::MAX);
            t.unhealthy_until_ms.store(until, Ordering::Relaxed);
            tracing::warn!(upstream = %self.name, target = %t.url.authority, "upstream target refused a connection; skipping it for the cool-down");
        }
    }
}
