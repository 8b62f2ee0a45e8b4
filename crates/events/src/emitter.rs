//! The non-blocking event pipeline: [`Emitter`] fans every event out to one
//! bounded queue per sink, and each sink's own thread encodes, batches and
//! delivers it.
//!
//! Request handling must never wait on logging, so `emit` only redacts,
//! wraps the event in an `Arc` and offers it to each sink's queue (a
//! [`crate::handoff`] queue: no wake-up per event); a full queue drops the
//! event for that sink only and counts it. A slow or dead SIEM therefore
//! fills only its own queue: the file keeps getting every event and the
//! request path never notices. [`Emitter::emit_shared`] hands the same
//! redacted copy back for live detection, so an event is redacted once and
//! never copied.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{BatchConfig, SinkConfig};
use crate::error::EventsError;
use crate::http_sink::{ElasticBulkSink, SplunkHecSink};
use crate::model::{AuthenticationEvent, DetectionFinding, HttpActivity};
use crate::ocsf::{Event, LifecycleEvent};
use crate::redact::Redactor;
use crate::sink::{FileSink, StdoutSink};
use crate::syslog::SyslogSink;
use crate::worker::{Limits, RateLimit, SharedCounters, SinkHandle, WorkerJoin};

/// Queue capacity used by `EmitterConfig::default()`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;

/// The file sink's queue is this many times `queue_capacity`: it is the sink
/// that must not lose events, so it gets the most room to ride out a slow disk.
pub const FILE_QUEUE_FACTOR: usize = 4;

/// How long to wait between attempts to enqueue a shutdown marker while a
/// queue is full.
const SHUTDOWN_RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// Configuration of the event pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterConfig {
    /// Every event is written to each of these.
    pub sinks: Vec<SinkConfig>,
    /// Events that may wait for a sink before new ones are dropped for it
    /// (per sink; files get [`FILE_QUEUE_FACTOR`] times as much, and network
    /// sinks may set their own in [`BatchConfig::queue_capacity`]).
    pub queue_capacity: usize,
}

impl Default for EmitterConfig {
    /// Stdout with [`DEFAULT_QUEUE_CAPACITY`].
    fn default() -> Self {
        EmitterConfig {
            sinks: vec![SinkConfig::Stdout],
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

/// Delivery counters of one sink, from [`Emitter::sink_stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    /// Which sink: its kind and destination (a path, `host:port` or
    /// `scheme://host:port`; never credentials).
    pub name: String,
    /// `stdout`, `file`, `syslog`, `splunk_hec` or `elastic_bulk`.
    pub kind: &'static str,
    /// Events the destination accepted.
    pub delivered: u64,
    /// Events this sink lost: its queue was full, the destination refused
    /// them for good, or retries ran out.
    pub dropped: u64,
    /// Retry attempts (of a batch or of its failed items).
    pub retries: u64,
    /// Events waiting in this sink's queue.
    pub queue_len: usize,
}

/// Handle to the event pipeline. Cheap to clone; all clones feed the same
/// sinks.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

struct Inner {
    sinks: Vec<SinkHandle>,
    /// Swapped wholesale on config reload; readers clone the `Arc` and drop
    /// the lock at once, so a reload never waits for redaction work.
    redactor: RwLock<Arc<Redactor>>,
    counters: Counters,
    shared: Arc<SharedCounters>,
    /// Set by `shutdown` so later emits are counted as dropped.
    closed: AtomicBool,
    drop_warning: RateLimit,
    /// Taken by the first `shutdown`, which makes later calls no-ops.
    workers: Mutex<Option<Vec<WorkerJoin>>>,
}

#[derive(Default)]
struct Counters {
    emitted: AtomicU64,
    dropped: AtomicU64,
}

/// Builds the worker limits from a network sink's batch settings.
fn network_limits(batch: &BatchConfig) -> Limits {
    Limits {
        max_events: batch.max_events.max(1),
        max_bytes: batch.max_bytes.max(1),
        flush_interval: batch.flush_interval,
        max_retries: Some(batch.max_retries),
        backoff_initial: batch.backoff_initial,
        backoff_max: batch.backoff_max.max(batch.backoff_initial),
    }
}

/// Files and stdout: write whatever is queued at once, retry without limit
/// (until shutdown gives up), back off to at most a second.
fn local_limits() -> Limits {
    Limits {
        max_events: 4096,
        max_bytes: 1024 * 1024,
        flush_interval: Duration::ZERO,
        max_retries: None,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_secs(1),
    }
}

fn start_sink(
    cfg: &SinkConfig,
    queue_capacity: usize,
    shared: &Arc<SharedCounters>,
) -> Result<(SinkHandle, WorkerJoin), EventsError> {
    let shared = Arc::clone(shared);
    let kind = cfg.kind();
    let network_queue = |batch: &BatchConfig| batch.queue_capacity.unwrap_or(queue_capacity).max(1);
    match cfg {
        SinkConfig::Stdout => SinkHandle::spawn(
            "stdout".to_owned(),
            kind,
            StdoutSink::new(),
            local_limits(),
            queue_capacity,
            shared,
        ),
        SinkConfig::File {
            path,
            max_bytes,
            max_files,
        } => {
            if *max_bytes == 0 {
                return Err(EventsError::InvalidConfig(format!(
                    "file sink {}: max_bytes must be positive",
                    path.display()
                )));
            }
            let sink = FileSink::open(path.clone(), *max_bytes, *max_files).map_err(|source| {
                EventsError::OpenSink {
                    path: path.clone(),
                    source,
                }
            })?;
            SinkHandle::spawn(
                format!("file:{}", path.display()),
                kind,
                sink,
                local_limits(),
                queue_capacity.saturating_mul(FILE_QUEUE_FACTOR),
                shared,
            )
        }
        SinkConfig::Syslog(syslog) => SinkHandle::spawn(
            format!("syslog:{}", syslog.address),
            kind,
            SyslogSink::new(syslog)?,
            network_limits(&syslog.batch),
            network_queue(&syslog.batch),
            shared,
        ),
        SinkConfig::SplunkHec(hec) => {
            let sink = SplunkHecSink::new(hec)?;
            SinkHandle::spawn(
                format!("splunk_hec:{}", sink.display()),
                kind,
                sink,
                network_limits(&hec.batch),
                network_queue(&hec.batch),
                shared,
            )
        }
        SinkConfig::ElasticBulk(bulk) => {
            let sink = ElasticBulkSink::new(bulk)?;
            SinkHandle::spawn(
                format!("elastic_bulk:{}", sink.display()),
                kind,
                sink,
                network_limits(&bulk.batch),
                network_queue(&bulk.batch),
                shared,
            )
        }
    }
}

impl Emitter {
    /// Checks and opens every sink (so a bad path or URL is reported here,
    /// not later) and starts one thread per sink. Network destinations are
    /// connected lazily: one that is down at startup is retried, not fatal.
    pub fn start(cfg: EmitterConfig, redactor: Redactor) -> Result<Emitter, EventsError> {
        if cfg.queue_capacity == 0 {
            return Err(EventsError::InvalidConfig(
                "queue_capacity must be positive".to_owned(),
            ));
        }
        let shared = Arc::new(SharedCounters::default());
        let mut sinks = Vec::with_capacity(cfg.sinks.len());
        let mut workers = Vec::with_capacity(cfg.sinks.len());
        for sink in &cfg.sinks {
            match start_sink(sink, cfg.queue_capacity, &shared) {
                Ok((handle, join)) => {
                    sinks.push(handle);
                    workers.push(join);
                }
                Err(err) => {
                    // Stop the sinks already started: their senders go away with `sinks`.
                    drop(sinks);
                    for worker in workers {
                        let _ = worker.thread.join();
                    }
                    return Err(err);
                }
            }
        }
        if sinks.is_empty() {
            tracing::warn!("no event sinks configured; security events will be discarded");
        }
        Ok(Emitter {
            inner: Arc::new(Inner {
                sinks,
                redactor: RwLock::new(Arc::new(redactor)),
                counters: Counters::default(),
                shared,
                closed: AtomicBool::new(false),
                drop_warning: RateLimit::per_second(),
                workers: Mutex::new(Some(workers)),
            }),
        })
    }

    /// Redacts `ev` and queues it for every sink. Never blocks: a sink whose
    /// queue is full (or an emitter that is shut down) drops it and counts it.
    pub fn emit(&self, mut ev: HttpActivity) {
        if self.refuse_when_idle() {
            return;
        }
        self.current_redactor().redact(&mut ev);
        self.enqueue(Event::Http(Arc::new(ev)));
    }

    /// Like [`Emitter::emit`], and returns the redacted event the sinks were
    /// given, shared rather than copied, for another reader of the event
    /// stream (live detection): it sees exactly what the sinks see. The event
    /// is redacted and returned even when there is no sink or the emitter is
    /// shut down (counted as for `emit`).
    pub fn emit_shared(&self, mut ev: HttpActivity) -> Arc<HttpActivity> {
        self.current_redactor().redact(&mut ev);
        let ev = Arc::new(ev);
        if !self.refuse_when_idle() {
            self.enqueue(Event::Http(Arc::clone(&ev)));
        }
        ev
    }

    /// Queues an OCSF Authentication (3002) event for a credential check.
    /// Same non-blocking rules as [`Emitter::emit`]. The event carries no
    /// credential by construction, so it is not redacted.
    pub fn emit_authentication(&self, ev: AuthenticationEvent) {
        if self.refuse_when_idle() {
            return;
        }
        self.enqueue(Event::Authentication(Arc::new(ev)));
    }

    /// Queues an OCSF Detection Finding (2004) event for a Sigma alert.
    /// Same non-blocking rules as [`Emitter::emit`]. Rule texts and action
    /// descriptions are written as given.
    pub fn emit_detection(&self, ev: DetectionFinding) {
        if self.refuse_when_idle() {
            return;
        }
        self.enqueue(Event::Detection(Arc::new(ev)));
    }

    /// Queues a gateway lifecycle event (`kind` such as `"start"`, `"stop"`,
    /// `"reload_ok"`, `"reload_failed"`, `"fail_mode_switch"`; see
    /// `docs/events.md`). Same non-blocking rules as [`Emitter::emit`].
    /// `message` is written verbatim, so it must not contain secrets.
    pub fn emit_lifecycle(&self, kind: &str, message: &str) {
        if self.refuse_when_idle() {
            return;
        }
        self.enqueue(Event::Lifecycle(Arc::new(LifecycleEvent {
            time_ms: now_ms(),
            kind: kind.to_owned(),
            message: message.to_owned(),
        })));
    }

    /// Replaces the redactor used for events emitted from now on.
    pub fn set_redactor(&self, r: Redactor) {
        *self
            .inner
            .redactor
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(r);
    }

    /// Whether any sink is configured. Without one, callers may skip building the parts of
    /// an event only a sink would read (its header list, for example).
    pub fn has_sinks(&self) -> bool {
        !self.inner.sinks.is_empty()
    }

    /// Events that at least one sink's queue refused (full) or that arrived
    /// after shutdown. Per-sink losses are in [`Emitter::sink_stats`].
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events accepted into every sink's queue. `emitted + dropped` equals
    /// the number of `emit*` calls.
    pub fn emitted(&self) -> u64 {
        self.inner.counters.emitted.load(Ordering::Relaxed)
    }

    /// Failed delivery attempts (writes, flushes, connects, HTTP errors,
    /// encoding errors), summed over all sinks.
    pub fn write_errors(&self) -> u64 {
        self.inner.shared.failed_attempts.load(Ordering::Relaxed)
    }

    /// Per-sink delivery counters, in configuration order.
    pub fn sink_stats(&self) -> Vec<SinkStats> {
        self.inner
            .sinks
            .iter()
            .map(|sink| SinkStats {
                name: sink.name.clone(),
                kind: sink.kind,
                delivered: sink.counters.delivered.load(Ordering::Relaxed),
                dropped: sink.counters.dropped.load(Ordering::Relaxed),
                retries: sink.counters.retries.load(Ordering::Relaxed),
                queue_len: sink.queue_len(),
            })
            .collect()
    }

    /// Delivers everything queued so far, flushes, and stops every sink
    /// thread, waiting at most `deadline` in total. A sink still busy at the
    /// deadline (a dead endpoint being retried, a stuck disk) is told to give
    /// up: it stops retrying, counts what it still held as dropped, and ends
    /// on its own; a warning is logged. Events emitted afterwards are counted
    /// as dropped. Idempotent; calls after the first return immediately.
    ///
    /// An `emit` racing with `shutdown` on another thread may be counted as
    /// emitted yet miss the final drain; stop request traffic first.
    pub fn shutdown(&self, deadline: Duration) {
        let started = Instant::now();
        let Some(workers) = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        self.inner.closed.store(true, Ordering::Release);

        // Markers go through the queues so everything queued before them is
        // delivered first. A full queue means that worker is busy; retry
        // until the deadline rather than block.
        let mut unmarked: Vec<&SinkHandle> = self.inner.sinks.iter().collect();
        while !unmarked.is_empty() {
            unmarked.retain(|sink| sink.offer_shutdown().is_err());
            if unmarked.is_empty() || started.elapsed() >= deadline {
                break;
            }
            thread::sleep(SHUTDOWN_RETRY_INTERVAL);
        }

        let mut late = Vec::new();
        for (sink, worker) in self.inner.sinks.iter().zip(workers) {
            sink.unpark();
            let remaining = deadline.saturating_sub(started.elapsed());
            match worker.finished.recv_timeout(remaining) {
                Err(RecvTimeoutError::Disconnected) => {
                    if worker.thread.join().is_err() {
                        tracing::error!(sink = %sink.name, "event sink thread panicked");
                    }
                }
                // Nothing is ever sent on this channel; only a timeout remains.
                Ok(()) | Err(RecvTimeoutError::Timeout) => {
                    sink.counters.abandon.store(true, Ordering::Release);
                    sink.unpark();
                    late.push(sink.name.as_str());
                }
            }
        }
        if !late.is_empty() {
            tracing::warn!(
                ?deadline,
                sinks = ?late,
                "event sinks did not finish before the shutdown deadline; \
                 their undelivered events are dropped"
            );
        }
    }

    /// Counts the event as dropped after shutdown, or as emitted (and
    /// skips all work) when there is no sink. True when the caller is done.
    fn refuse_when_idle(&self) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            self.record_drop();
            return true;
        }
        if self.inner.sinks.is_empty() {
            // Nowhere to write: count it like a written event and skip the queue.
            self.inner.counters.emitted.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn current_redactor(&self) -> Arc<Redactor> {
        Arc::clone(
            &self
                .inner
                .redactor
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn enqueue(&self, ev: Event) {
        let mut accepted_by_all = true;
        for sink in &self.inner.sinks {
            accepted_by_all &= sink.offer(&ev);
        }
        if accepted_by_all {
            self.inner.counters.emitted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.record_drop();
        }
    }

    fn record_drop(&self) {
        let dropped = self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if self.inner.drop_warning.allow() {
            tracing::warn!(
                dropped_total = dropped,
                "security event queue full or closed; dropping events"
            );
        }
    }
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("emitted", &self.emitted())
            .field("dropped", &self.dropped())
            .field("write_errors", &self.write_errors())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_capacity_is_rejected() {
        let cfg = EmitterConfig {
            sinks: Vec::new(),
            queue_capacity: 0,
        };
        assert!(matches!(
            Emitter::start(cfg, Redactor::default()),
            Err(EventsError::InvalidConfig(_))
        ));
    }

    #[test]
    fn emitter_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Emitter>();
    }

    #[test]
    fn shutdown_is_idempotent_and_later_emits_are_dropped() -> Result<(), EventsError> {
        let cfg = EmitterConfig {
            sinks: Vec::new(),
            queue_capacity: 8,
        };
        let emitter = Emitter::start(cfg, Redactor::default())?;
        emitter.emit(crate::tests_support::sample_event());
        emitter.shutdown(Duration::from_secs(5));
        emitter.shutdown(Duration::from_secs(5));
        emitter.emit(crate::tests_support::sample_event());
        emitter.emit_lifecycle("stop", "after shutdown");
        assert_eq!((emitter.emitted(), emitter.dropped()), (1, 2));
        Ok(())
    }

    #[test]
    fn a_bad_sink_after_a_good_one_fails_start_cleanly() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfg = EmitterConfig {
            sinks: vec![
                SinkConfig::File {
                    path: dir.path().join("ok.jsonl"),
                    max_bytes: 1024,
                    max_files: 1,
                },
                SinkConfig::SplunkHec(crate::config::SplunkHecConfig {
                    url: "ftp://example.invalid".to_owned(),
                    ..Default::default()
                }),
            ],
            queue_capacity: 8,
        };
        assert!(matches!(
            Emitter::start(cfg, Redactor::default()),
            Err(EventsError::InvalidConfig(_))
        ));
    }
}
