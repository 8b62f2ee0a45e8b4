//! The non-blocking event pipeline: [`Emitter`] hands events to a bounded
//! queue and a dedicated writer thread serializes them to the sinks.
//!
//! Request handling must never wait on logging, so `emit` only redacts and
//! does a `try_send`; when the queue is full the event is dropped and
//! counted. The writer thread drains everything available, then flushes:
//! bursts become large writes and an idle gateway's output is current within
//! moments of the last event.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::EventsError;
use crate::model::HttpActivity;
use crate::ocsf::{self, LifecycleEvent};
use crate::redact::Redactor;
use crate::sink::{Sink, SinkConfig};

/// Queue capacity used by `EmitterConfig::default()`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;

/// How long to wait between attempts to enqueue the shutdown marker while
/// the queue is full.
const SHUTDOWN_RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// Configuration of the event pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterConfig {
    /// Every event is written to each of these.
    pub sinks: Vec<SinkConfig>,
    /// Events that may wait for the writer before new ones are dropped.
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

/// Handle to the event pipeline. Cheap to clone; all clones feed the same
/// queue and writer thread.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

/// How long the writer sleeps when its queue is empty.
const WRITER_POLL: Duration = Duration::from_millis(5);

struct Inner {
    tx: SyncSender<Message>,
    /// The writer thread, unparked only when the queue fills past half or at shutdown: it
    /// otherwise polls on its own schedule, so emitting costs no cross-thread wake-up (a
    /// futex call and a context switch per request would double the gateway's CPU cost).
    writer_thread: thread::Thread,
    /// Messages queued and not yet taken by the writer (approximate, for the unpark rule).
    queued: Arc<std::sync::atomic::AtomicUsize>,
    wake_at: usize,
    /// No sinks: events are counted and discarded without touching the queue.
    has_sinks: bool,
    /// Swapped wholesale on config reload; readers clone the `Arc` and drop
    /// the lock at once, so a reload never waits for redaction work.
    redactor: RwLock<Arc<Redactor>>,
    counters: Arc<Counters>,
    /// Set by `shutdown` so later emits are counted as dropped instead of
    /// queueing behind the shutdown marker.
    closed: AtomicBool,
    drop_warning: RateLimit,
    /// Taken by the first `shutdown`, which makes later calls no-ops.
    writer: Mutex<Option<WriterHandle>>,
}

struct WriterHandle {
    thread: JoinHandle<()>,
    /// Disconnects when the writer thread ends (its sender is dropped, even
    /// on panic), which lets `shutdown` wait with a timeout.
    finished: Receiver<()>,
}

enum Message {
    // Boxed so queue slots stay small: std preallocates every slot of a
    // bounded channel.
    Http(Box<HttpActivity>),
    Lifecycle(Box<LifecycleEvent>),
    Shutdown,
}

#[derive(Default)]
struct Counters {
    emitted: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

impl Emitter {
    /// Opens every sink (so a bad path is reported here, not later) and
    /// starts the writer thread.
    pub fn start(cfg: EmitterConfig, redactor: Redactor) -> Result<Emitter, EventsError> {
        if cfg.queue_capacity == 0 {
            return Err(EventsError::InvalidConfig(
                "queue_capacity must be positive".to_owned(),
            ));
        }
        let sinks = cfg
            .sinks
            .iter()
            .map(Sink::open)
            .collect::<Result<Vec<_>, _>>()?;
        if sinks.is_empty() {
            tracing::warn!("no event sinks configured; security events will be discarded");
        }

        let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity);
        let (finished_tx, finished) = mpsc::channel::<()>();
        let counters = Arc::new(Counters::default());
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let has_sinks = !sinks.is_empty();
        let writer = WriterLoop {
            rx,
            queued: Arc::clone(&queued),
            sinks,
            counters: Arc::clone(&counters),
            error_log: RateLimit::per_second(),
            line: Vec::with_capacity(4096),
            _finished: finished_tx,
        };
        let thread = thread::Builder::new()
            .name("portcullis-events".to_owned())
            .spawn(move || writer.run())
            .map_err(EventsError::SpawnWriter)?;

        let writer_thread = thread.thread().clone();
        Ok(Emitter {
            inner: Arc::new(Inner {
                tx,
                writer_thread,
                queued,
                wake_at: (cfg.queue_capacity / 2).max(1),
                has_sinks,
                redactor: RwLock::new(Arc::new(redactor)),
                counters,
                closed: AtomicBool::new(false),
                drop_warning: RateLimit::per_second(),
                writer: Mutex::new(Some(WriterHandle { thread, finished })),
            }),
        })
    }

    /// Redacts `ev` and queues it for the sinks. Never blocks: if the queue
    /// is full (or the emitter is shut down) the event is dropped and
    /// counted in [`Emitter::dropped`].
    pub fn emit(&self, mut ev: HttpActivity) {
        if self.inner.closed.load(Ordering::Acquire) {
            self.record_drop();
            return;
        }
        if !self.inner.has_sinks {
            // Nowhere to write: count it like a written event and skip the queue.
            self.inner.counters.emitted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.current_redactor().redact(&mut ev);
        self.enqueue(Message::Http(Box::new(ev)));
    }

    /// Queues a gateway lifecycle event (`kind` such as `"start"`, `"stop"`,
    /// `"reload_ok"`, `"reload_failed"`; see `docs/events.md`). Same queue,
    /// same non-blocking rules as [`Emitter::emit`]. `message` is written
    /// verbatim, so it must not contain secrets.
    pub fn emit_lifecycle(&self, kind: &str, message: &str) {
        if self.inner.closed.load(Ordering::Acquire) {
            self.record_drop();
            return;
        }
        let ev = LifecycleEvent {
            time_ms: now_ms(),
            kind: kind.to_owned(),
            message: message.to_owned(),
        };
        self.enqueue(Message::Lifecycle(Box::new(ev)));
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
        self.inner.has_sinks
    }

    /// Events dropped because the queue was full or the emitter shut down.
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events accepted into the queue.
    pub fn emitted(&self) -> u64 {
        self.inner.counters.emitted.load(Ordering::Relaxed)
    }

    /// Failed writes or flushes, counted per sink and attempt.
    pub fn write_errors(&self) -> u64 {
        self.inner.counters.write_errors.load(Ordering::Relaxed)
    }

    /// Writes everything queued so far to all sinks, flushes them and stops
    /// the writer thread, waiting at most `deadline`. If the deadline passes
    /// (a sink is stuck), the writer is left to finish on its own and a
    /// warning is logged. Events emitted afterwards are counted as dropped.
    /// Idempotent; calls after the first return immediately.
    ///
    /// An `emit` racing with `shutdown` on another thread may be counted as
    /// emitted yet miss the final drain; stop request traffic first.
    pub fn shutdown(&self, deadline: Duration) {
        let started = Instant::now();
        let Some(writer) = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        self.inner.closed.store(true, Ordering::Release);

        // The marker goes through the queue so that everything queued
        // before it is written first. A full queue means the writer is
        // busy; retry until the deadline rather than block.
        let mut marker = Message::Shutdown;
        loop {
            match self.inner.tx.try_send(marker) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(returned)) => {
                    if started.elapsed() >= deadline {
                        tracing::warn!(
                            ?deadline,
                            "event writer did not drain its queue before the shutdown deadline; \
                             unwritten events may be lost"
                        );
                        return;
                    }
                    marker = returned;
                    thread::sleep(SHUTDOWN_RETRY_INTERVAL);
                }
            }
        }

        self.inner.writer_thread.unpark();
        let remaining = deadline.saturating_sub(started.elapsed());
        match writer.finished.recv_timeout(remaining) {
            Err(RecvTimeoutError::Disconnected) => {
                if writer.thread.join().is_err() {
                    tracing::error!("event writer thread panicked");
                }
            }
            // Nothing is ever sent on this channel; only a timeout remains.
            Ok(()) | Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    ?deadline,
                    "event writer did not finish before the shutdown deadline; \
                     unwritten events may be lost"
                );
            }
        }
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

    fn enqueue(&self, msg: Message) {
        // Fix: the message used to be counted after `try_send`, so the writer could take it
        // and decrement first; `queued` wrapped below zero and the `+ 1` here overflowed,
        // panicking the emitting request task in debug builds. Counting before the send
        // (the channel orders it before the writer's decrement) keeps it from underflowing.
        let queued = self.inner.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match self.inner.tx.try_send(msg) {
            Ok(()) => {
                self.inner.counters.emitted.fetch_add(1, Ordering::Relaxed);
                if queued == self.inner.wake_at {
                    // A burst is filling the queue faster than the writer's polling drains
                    // it: wake it now rather than drop events.
                    self.inner.writer_thread.unpark();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.inner.queued.fetch_sub(1, Ordering::Relaxed);
                self.record_drop();
            }
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

/// The writer thread's state: it owns the sinks outright, so sink I/O needs
/// no locking.
struct WriterLoop {
    rx: Receiver<Message>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    sinks: Vec<Sink>,
    counters: Arc<Counters>,
    error_log: RateLimit,
    /// Reused serialization buffer; one allocation for the thread's life.
    line: Vec<u8>,
    /// Dropped when the thread ends, which signals `shutdown`.
    _finished: mpsc::Sender<()>,
}

impl WriterLoop {
    fn run(mut self) {
        // The writer polls instead of blocking in `recv`: a receiver blocked in `recv` makes
        // every `try_send` wake it (a futex call and a context switch per event). Polling
        // every few milliseconds batches a busy gateway's events into few wake-ups and
        // keeps a quiet gateway's file current within milliseconds.
        loop {
            match self.rx.try_recv() {
                Ok(first) => {
                    let keep_running = self.write_burst(first);
                    self.flush_all();
                    if !keep_running {
                        return;
                    }
                }
                // Every `Emitter` is gone and the queue is empty.
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => thread::park_timeout(WRITER_POLL),
            }
        }
        self.flush_all();
    }

    /// Writes `first` and everything else already queued. Returns false
    /// when the shutdown marker was seen.
    fn write_burst(&mut self, first: Message) -> bool {
        let mut msg = first;
        loop {
            if matches!(msg, Message::Shutdown) {
                // Pick up events that raced with the marker.
                while let Ok(late) = self.rx.try_recv() {
                    self.write(&late);
                }
                return false;
            }
            self.write(&msg);
            self.queued.fetch_sub(1, Ordering::Relaxed);
            match self.rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => return true,
            }
        }
    }

    fn write(&mut self, msg: &Message) {
        self.line.clear();
        let serialized = match msg {
            Message::Http(ev) => ocsf::write_ocsf_json(ev, &mut self.line),
            Message::Lifecycle(ev) => ocsf::write_lifecycle_json(ev, &mut self.line),
            Message::Shutdown => return,
        };
        if let Err(err) = serialized {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            if self.error_log.allow() {
                tracing::error!(error = %err, "failed to serialize a security event");
            }
            return;
        }
        self.line.push(b'\n');
        for sink in &mut self.sinks {
            if let Err(err) = sink.write_line(&self.line) {
                report_sink_error(&self.counters, &self.error_log, sink, "write", &err);
            }
        }
    }

    fn flush_all(&mut self) {
        for sink in &mut self.sinks {
            if let Err(err) = sink.flush() {
                report_sink_error(&self.counters, &self.error_log, sink, "flush", &err);
            }
        }
    }
}

fn report_sink_error(
    counters: &Counters,
    error_log: &RateLimit,
    sink: &Sink,
    operation: &str,
    err: &std::io::Error,
) {
    let total = counters.write_errors.fetch_add(1, Ordering::Relaxed) + 1;
    // A full disk fails every write; one line per second is enough.
    if error_log.allow() {
        tracing::error!(%sink, operation, error = %err, write_errors_total = total, "security event sink failed");
    }
}

/// Lock-free "at most once per second" gate, shared by many threads.
struct RateLimit {
    origin: Instant,
    /// Milliseconds since `origin` before which `allow` says no.
    next_allowed_ms: AtomicU64,
}

impl RateLimit {
    const INTERVAL_MS: u64 = 1000;

    fn per_second() -> Self {
        RateLimit {
            origin: Instant::now(),
            next_allowed_ms: AtomicU64::new(0),
        }
    }

    fn allow(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_allowed_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_allowed_ms
                .compare_exchange(
                    next,
                    now.saturating_add(Self::INTERVAL_MS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
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
    fn rate_limit_allows_once_per_interval() {
        let limit = RateLimit::per_second();
        assert!(limit.allow());
        assert!(!limit.allow());
        assert!(!limit.allow());
    }

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
}
