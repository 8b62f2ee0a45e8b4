//! The gateway process: shared state, the config snapshot and its reloads, and start-up /
//! shutdown of listeners and the admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use portcullis_events::{Emitter, EmitterConfig, Redactor, SinkConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{self, Config, ConfigErrors};
use crate::listener::{self, ListenerState};
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("events: {0}")]
    Events(#[from] portcullis_events::EventsError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Process-wide state shared by every connection.
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    /// The Sigma engine's queue, when `detection:` is configured.
    pub detection: arc_swap::ArcSwapOption<crate::detection::Detection>,
    pub emitter: Emitter,
    pub metrics: Arc<Metrics>,
    config_path: Option<PathBuf>,
    generation: AtomicU64,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Gateway {
    /// Build the first snapshot and start the event writer.
    pub fn new(config: Config, config_path: Option<PathBuf>) -> Result<Arc<Self>, GatewayError> {
        let mut sinks = Vec::new();
        if let Some(path) = &config.events.file {
            sinks.push(SinkConfig::File {
                path: path.clone(),
                max_bytes: config.events.file_max_bytes,
                max_files: config.events.file_max_files,
            });
        }
        if config.events.stdout {
            sinks.push(SinkConfig::Stdout);
        }
        sinks.extend(config.events.sinks.iter().cloned());
        let emitter = Emitter::start(
            EmitterConfig {
                sinks,
                queue_capacity: config.events.queue_capacity,
            },
            redactor(&config),
        )?;
        let snapshot = Snapshot::build(config, None, 1).map_err(GatewayError::Setup)?;
        let metrics = Arc::new(Metrics::new());
        let detection = start_detection(&snapshot, &emitter, &metrics, None);
        Ok(Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            detection: arc_swap::ArcSwapOption::new(detection),
            emitter,
            metrics,
            config_path,
            generation: AtomicU64::new(1),
            reload_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// The snapshot requests should use now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Re-read the config file and swap it in. A file that fails validation is refused, an
    /// error event is written, and the running snapshot keeps serving.
    pub async fn reload(&self) -> Result<u64, ConfigErrors> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let Some(path) = self.config_path.clone() else {
            return Err(ConfigErrors(vec![config::ConfigError {
                file: PathBuf::new(),
                line: 0,
                column: 0,
                field: String::new(),
                message: "this gateway was not started from a config file".into(),
            }]));
        };
        // Parsing, validation, TLS and pool setup run on a blocking thread: never on the
        // request path.
        let previous = self.snapshot();
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let built = tokio::task::spawn_blocking(move || {
            let cfg = config::load(&path)?;
            let redactor = redactor(&cfg);
            Snapshot::build(cfg, Some(&previous), generation)
                .map(|s| (s, redactor))
                .map_err(|e| {
                    ConfigErrors(vec![config::ConfigError {
                        file: path.clone(),
                        line: 0,
                        column: 0,
                        field: String::new(),
                        message: e,
                    }])
                })
        })
        .await
        .map_err(|e| {
            ConfigErrors(vec![config::ConfigError {
                file: PathBuf::new(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("reload task failed: {e}"),
            }])
        })?;
        match built {
            Ok((snapshot, redactor)) => {
                let detection = start_detection(
                    &snapshot,
                    &self.emitter,
                    &self.metrics,
                    self.detection.load_full(),
                );
                self.detection.store(detection);
                self.emitter.set_redactor(redactor);
                self.snapshot.store(Arc::new(snapshot));
                self.generation.store(generation, Ordering::Release);
                self.metrics.reload(true);
                self.emitter
                    .emit_lifecycle("reload", &format!("config generation {generation} active"));
                tracing::info!(generation, "config reloaded");
                Ok(generation)
            }
            Err(errors) => {
                self.metrics.reload(false);
                self.emitter.emit_lifecycle(
                    "reload_failed",
                    &format!("config refused, previous config keeps serving: {errors}"),
                );
                tracing::error!(%errors, "config reload refused; the previous config keeps serving");
                Err(errors)
            }
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config_path.as_deref()
    }
}

/// What events may never contain, from the config.
/// The detection runtime for `snapshot`: none without `detection:`, the running one when the
/// rules, settings and block list did not change (its correlation windows stay open), else a
/// new one.
fn start_detection(
    snapshot: &Snapshot,
    emitter: &Emitter,
    metrics: &Arc<Metrics>,
    previous: Option<Arc<crate::detection::Detection>>,
) -> Option<Arc<crate::detection::Detection>> {
    let cfg = snapshot.config.detection.as_ref()?;
    let limiter = &snapshot.protection.limiter;
    if let Some(p) = previous.filter(|p| p.reusable_for(cfg.fingerprint, limiter)) {
        return Some(p);
    }
    Some(crate::detection::Detection::start(
        cfg,
        crate::detection::DetectionDeps {
            emitter: emitter.clone(),
            limiter: limiter.clone(),
            metrics: metrics.clone(),
        },
    ))
}

fn redactor(cfg: &Config) -> Redactor {
    let mut params: Vec<String> = config::DEFAULT_CREDENTIAL_PARAMS
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    for r in &cfg.routes {
        params.extend(r.request.credential_params.iter().cloned());
    }
    params.sort();
    params.dedup();
    // Headers that carry credentials the gateway itself accepts are secret by construction:
    // an operator should not have to remember to list them.
    let mut headers = cfg.events.redact_headers.clone();
    headers.push("x-api-key".into());
    if let Some(k) = &cfg.identity.api_keys {
        headers.extend(k.headers.iter().cloned());
    }
    if let Some(t) = &cfg.identity.upstream_token {
        headers.push(t.header.clone());
    }
    headers.sort();
    headers.dedup();
    Redactor::new(&headers, &params)
}

/// A started gateway: its bound addresses and a handle to stop it.
pub struct RunningGateway {
    pub gateway: Arc<Gateway>,
    /// Bound address of each listener, in config order.
    pub listeners: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    grace: Duration,
}

impl RunningGateway {
    /// Bind every listener and the admin API and start serving.
    pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Self, GatewayError> {
        let listener_cfgs = config.listeners.clone();
        let admin_cfg = config.admin.clone();
        let grace = config.limits.shutdown_grace;
        let gateway = Gateway::new(config, config_path)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut listeners = Vec::new();
        for lc in &listener_cfgs {
            let tcp = TcpListener::bind(lc.address)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: lc.address,
                    source,
                })?;
            let local = tcp.local_addr().map_err(|source| GatewayError::Bind {
                addr: lc.address,
                source,
            })?;
            let tls = match &lc.tls {
                Some(t) => Some(crate::tls::server_config(t)?),
                None => None,
            };
            let state = ListenerState::new(gateway.clone(), lc, tls);
            tracing::info!(listener = %lc.name, address = %local, tls = lc.tls.is_some(), "listening");
            listeners.push(local);
            tasks.spawn(listener::serve(tcp, state, shutdown_rx.clone()));
        }
        let mut admin = None;
        if let Some(ac) = admin_cfg {
            let tcp = TcpListener::bind(ac.address)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: ac.address,
                    source,
                })?;
            admin = tcp.local_addr().ok();
            tracing::info!(address = ?admin, "admin API listening");
            tasks.spawn(crate::admin::serve(
                tcp,
                gateway.clone(),
                ac.token,
                shutdown_rx.clone(),
            ));
        }
        tasks.spawn(watch_config_file(gateway.clone(), shutdown_rx.clone()));
        tasks.spawn(protection_upkeep(gateway.clone(), shutdown_rx.clone()));
        gateway.emitter.emit_lifecycle("start", "gateway started");
        Ok(RunningGateway {
            gateway,
            listeners,
            admin,
            shutdown,
            tasks,
            grace,
        })
    }

    /// Stop accepting, let in-flight requests finish within the grace period, flush events.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let deadline = self.grace + Duration::from_secs(1);
        let _ = tokio::time::timeout(deadline, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        self.gateway
            .emitter
            .emit_lifecycle("stop", "gateway stopped");
        self.gateway.emitter.shutdown(Duration::from_secs(5));
    }
}

/// Reload when the config file's modification time or size changes. Polling every second is
/// cheap and works on every filesystem, including the bind mounts and symlink swaps that
/// configuration managers use.
async fn watch_config_file(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let Some(path) = gw.config_path().map(std::path::Path::to_path_buf) else {
        return;
    };
    let stamp = |p: &std::path::Path| -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    let mut last = stamp(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        let now = stamp(&path);
        if now.is_some() && now != last {
            // Editors and config managers write in several steps: wait until the file has
            // stopped changing so a half-written prefix is never loaded.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stamp(&path) != now {
                continue;
            }
            last = now;
            let _ = gw.reload().await;
        }
    }
}

/// Background upkeep of the protection state: evict idle rate-limit keys, refresh the CIDR
/// entries of the block list, and turn the limit store's health changes into one lifecycle
/// event each (degraded when Redis fails, recovered when it is back).
async fn protection_upkeep(gw: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        ticks += 1;
        let snap = gw.snapshot();
        let limiter = &snap.protection.limiter;
        while let Some(t) = limiter.take_transition() {
            let (kind, message) = match t {
                portcullis_policy::ratelimit::Transition::Degraded { reason } => (
                    "rate_limit_degraded",
                    format!("rate-limit store unavailable, applying the fail mode: {reason}"),
                ),
                portcullis_policy::ratelimit::Transition::Recovered { outage } => (
                    "rate_limit_recovered",
                    format!("rate-limit store back after {} ms", outage.as_millis()),
                ),
            };
            tracing::warn!(%message, "rate limit store");
            gw.metrics.store_transition(kind);
            gw.emitter.emit_lifecycle(kind, &message);
        }
        if ticks.is_multiple_of(2) {
            let cidrs: Vec<ipnet::IpNet> = limiter
                .list_blocks()
                .await
                .into_iter()
                .filter_map(|(key, _)| key.strip_prefix("cidr:").and_then(|c| c.parse().ok()))
                .collect();
            snap.protection.cidr_blocks.store(Arc::new(cidrs));
        }
        if ticks.is_multiple_of(10) {
            limiter.evict_idle();
        }
    }
}
