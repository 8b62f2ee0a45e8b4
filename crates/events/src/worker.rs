//! One queue and one thread per sink: batching, retries with capped
//! exponential backoff, and the per-sink counters behind
//! [`crate::Emitter::sink_stats`].
//!
//! Every sink gets its own bounded queue so that a slow or dead destination
//! fills only its own queue: the emitter's offer to it fails (counted as
//! that sink's drop) while every other sink keeps receiving. The queue is a
//! [`crate::handoff`] queue: the worker polls it instead of blocking in
//! `recv`, because a receiver blocked in `recv` turns every send into a futex
//! wake-up and a context switch on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::EventsError;
use crate::handoff::{self, DEFAULT_POLL as POLL, HandoffReceiver, HandoffSender, TrySendError};
use crate::ocsf::Event;

/// What one delivery attempt achieved. Indices refer to the records passed
/// to [`Deliver::send`]; records in neither list were delivered.
#[derive(Debug, Default)]
pub(crate) struct SendOutcome {
    /// Failed transiently: try these again after a backoff.
    pub(crate) retry: Vec<usize>,
    /// Refused for good (malformed, too large, rejected by the server):
    /// retrying cannot help, so they are counted as dropped.
    pub(crate) rejected: Vec<usize>,
    /// What went wrong, for the rate-limited error log. Never contains a secret.
    pub(crate) error: Option<String>,
}

impl SendOutcome {
    pub(crate) fn delivered() -> SendOutcome {
        SendOutcome::default()
    }

    /// Nothing got through; all `n` records may be tried again.
    pub(crate) fn retry_all(n: usize, error: String) -> SendOutcome {
        SendOutcome {
            retry: (0..n).collect(),
            rejected: Vec::new(),
            error: Some(error),
        }
    }

    /// Records `from..n` may be tried again (the earlier ones got through).
    pub(crate) fn retry_from(from: usize, n: usize, error: String) -> SendOutcome {
        SendOutcome {
            retry: (from..n).collect(),
            rejected: Vec::new(),
            error: Some(error),
        }
    }

    /// All `n` records were refused for good.
    pub(crate) fn reject_all(n: usize, error: String) -> SendOutcome {
        SendOutcome {
            retry: Vec::new(),
            rejected: (0..n).collect(),
            error: Some(error),
        }
    }
}

/// A destination: encodes events into its own record format and delivers
/// batches of records. Runs only on its worker thread, so it may block.
pub(crate) trait Deliver: Send + 'static {
    /// Appends this sink's encoding of `ev` to `out` (one record).
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String>;

    /// Delivers `records`, in order, as one batch.
    fn send(&mut self, records: &[&[u8]]) -> SendOutcome;

    /// Completes the delivery of everything `send` accepted (a file's
    /// buffered tail). Retried like a failed send until it succeeds.
    fn settle(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Batching and retry limits of one worker.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_events: usize,
    pub(crate) max_bytes: usize,
    /// Zero: send as soon as the queue is momentarily empty (files, stdout).
    pub(crate) flush_interval: Duration,
    /// `None` retries until it works or shutdown gives up (files).
    pub(crate) max_retries: Option<u32>,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

/// Counters shared between a sink's worker and the emitter.
#[derive(Default)]
pub(crate) struct SinkCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) retries: AtomicU64,
    /// Set when shutdown gave up waiting: the worker stops retrying.
    pub(crate) abandon: AtomicBool,
}

/// Counts shared by all sinks, reported by `Emitter::write_errors`.
#[derive(Default)]
pub(crate) struct SharedCounters {
    pub(crate) failed_attempts: AtomicU64,
}

pub(crate) enum SinkMessage {
    /// Cheap to clone: every variant of `Event` is one `Arc`.
    Event(Event),
    Shutdown,
}

/// The emitter's handle to one running sink.
pub(crate) struct SinkHandle {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    queue: HandoffSender<SinkMessage>,
    pub(crate) counters: Arc<SinkCounters>,
}

/// What `shutdown` needs to wait for one worker.
pub(crate) struct WorkerJoin {
    pub(crate) thread: JoinHandle<()>,
    /// Disconnects when the worker ends (even on panic).
    pub(crate) finished: Receiver<()>,
}

impl SinkHandle {
    /// Starts the worker thread of one sink.
    pub(crate) fn spawn<D: Deliver>(
        name: String,
        kind: &'static str,
        deliver: D,
        limits: Limits,
        queue_capacity: usize,
        shared: Arc<SharedCounters>,
    ) -> Result<(SinkHandle, WorkerJoin), EventsError> {
        let (finished_tx, finished) = mpsc::channel::<()>();
        let counters = Arc::new(SinkCounters::default());
        let worker_name = name.clone();
        let worker_counters = Arc::clone(&counters);
        let (queue, thread) = handoff::spawn(
            format!("portcullis-events-{kind}"),
            queue_capacity,
            POLL,
            move |rx| {
                Worker {
                    name: worker_name,
                    deliver,
                    rx,
                    limits,
                    counters: worker_counters,
                    shared,
                    error_log: RateLimit::per_second(),
                    _finished: finished_tx,
                }
                .run();
            },
        )
        .map_err(EventsError::SpawnWriter)?;
        Ok((
            SinkHandle {
                name,
                kind,
                queue,
                counters,
            },
            WorkerJoin { thread, finished },
        ))
    }

    /// Queues `ev` without blocking; false (and a drop counted for this
    /// sink) when its queue is full or closed.
    pub(crate) fn offer(&self, ev: &Event) -> bool {
        match self.queue.offer(SinkMessage::Event(ev.clone())) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues the shutdown marker; gives it back when the queue is full.
    pub(crate) fn offer_shutdown(&self) -> Result<(), ()> {
        match self.queue.offer(SinkMessage::Shutdown) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {
                self.queue.wake();
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(()),
        }
    }

    pub(crate) fn unpark(&self) {
        self.queue.wake();
    }

    /// Events (and a shutdown marker) queued and not yet taken by the worker.
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }
}

struct Worker<D> {
    name: String,
    deliver: D,
    rx: HandoffReceiver<SinkMessage>,
    limits: Limits,
    counters: Arc<SinkCounters>,
    shared: Arc<SharedCounters>,
    error_log: RateLimit,
    _finished: mpsc::Sender<()>,
}

/// Encoded records of one batch, stored back to back.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

impl<D: Deliver> Worker<D> {
    fn run(mut self) {
        loop {
            let first = loop {
                match self.rx.try_recv() {
                    Ok(msg) => break Some(msg),
                    Err(TryRecvError::Empty) => self.rx.wait(POLL),
                    Err(TryRecvError::Disconnected) => break None,
                }
            };
            let Some(first) = first else {
                return;
            };
            let mut batch = Batch::default();
            let stop = self.collect(first, &mut batch);
            self.deliver_batch(&batch);
            if stop {
                // Pick up events that raced with the shutdown marker.
                loop {
                    let mut late = Batch::default();
                    while late.len() < self.limits.max_events {
                        match self.rx.try_recv() {
                            Ok(SinkMessage::Event(ev)) => self.encode(&ev, &mut late),
                            Ok(SinkMessage::Shutdown) => {}
                            Err(_) => break,
                        }
                    }
                    if late.len() == 0 {
                        return;
                    }
                    self.deliver_batch(&late);
                }
            }
        }
    }

    /// Fills `batch` starting with `first` until it is full, the flush
    /// interval has passed, or the queue is empty (zero interval). Returns
    /// true when the shutdown marker was seen or every emitter is gone.
    fn collect(&mut self, first: SinkMessage, batch: &mut Batch) -> bool {
        let deadline = Instant::now() + self.limits.flush_interval;
        let mut next = Some(first);
        loop {
            match next.take() {
                Some(SinkMessage::Shutdown) => return true,
                Some(SinkMessage::Event(ev)) => {
                    self.encode(&ev, batch);
                    if batch.len() >= self.limits.max_events
                        || batch.bytes.len() >= self.limits.max_bytes
                    {
                        return false;
                    }
                }
                None => {}
            }
            match self.rx.try_recv() {
                Ok(msg) => next = Some(msg),
                Err(TryRecvError::Disconnected) => return true,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.rx.wait(deadline - now);
                }
            }
        }
    }

    fn encode(&mut self, ev: &Event, batch: &mut Batch) {
        let start = batch.bytes.len();
        match self.deliver.encode(ev, &mut batch.bytes) {
            Ok(()) => batch.ends.push(batch.bytes.len()),
            Err(err) => {
                batch.bytes.truncate(start);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.report(&format!("cannot encode an event: {err}"));
            }
        }
    }

    /// Sends `batch`, retrying what failed with capped exponential backoff.
    fn deliver_batch(&mut self, batch: &Batch) {
        if batch.len() == 0 {
            return;
        }
        if self.counters.abandon.load(Ordering::Acquire) {
            // Shutdown gave up on this sink: a hanging endpoint must not keep the thread
            // busy for a timeout per remaining batch.
            self.give_up(batch.len());
            return;
        }
        let mut outstanding: Vec<usize> = (0..batch.len()).collect();
        let mut backoff = self.limits.backoff_initial;
        let mut retries_done: u32 = 0;
        loop {
            let records: Vec<&[u8]> = outstanding.iter().map(|&i| batch.record(i)).collect();
            let outcome = self.deliver.send(&records);
            let failed = outcome.retry.len() + outcome.rejected.len();
            let delivered_now = records.len().saturating_sub(failed);
            if !outcome.rejected.is_empty() {
                self.counters
                    .dropped
                    .fetch_add(outcome.rejected.len() as u64, Ordering::Relaxed);
            }
            if let Some(err) = &outcome.error {
                self.report(err);
            }
            let mut settled = outcome.retry.is_empty();
            if settled {
                // Whatever `send` accepted must also be settled (a file's buffered tail).
                if let Err(err) = self.deliver.settle() {
                    self.report(&err);
                    settled = false;
                }
            }
            if settled {
                self.counters
                    .delivered
                    .fetch_add(delivered_now as u64, Ordering::Relaxed);
                return;
            }
            if !outcome.retry.is_empty() {
                self.counters
                    .delivered
                    .fetch_add(delivered_now as u64, Ordering::Relaxed);
                outstanding = outcome.retry.iter().map(|&i| outstanding[i]).collect();
            } else {
                // Only the settle step failed: the records are accepted but not yet
                // written; retry settling alone.
                return self.settle_with_retry(delivered_now, backoff);
            }
            let out_of_retries = self
                .limits
                .max_retries
                .is_some_and(|max| retries_done >= max);
            if out_of_retries || self.counters.abandon.load(Ordering::Acquire) {
                self.give_up(outstanding.len());
                return;
            }
            retries_done += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            if !self.sleep(backoff) {
                self.give_up(outstanding.len());
                return;
            }
            backoff = (backoff * 2).min(self.limits.backoff_max);
        }
    }

    fn settle_with_retry(&mut self, pending: usize, mut backoff: Duration) {
        let mut retries_done: u32 = 0;
        loop {
            let out_of_retries = self
                .limits
                .max_retries
                .is_some_and(|max| retries_done >= max);
            if out_of_retries || self.counters.abandon.load(Ordering::Acquire) {
                self.give_up(pending);
                return;
            }
            retries_done += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            if !self.sleep(backoff) {
                self.give_up(pending);
                return;
            }
            backoff = (backoff * 2).min(self.limits.backoff_max);
            match self.deliver.settle() {
                Ok(()) => {
                    self.counters
                        .delivered
                        .fetch_add(pending as u64, Ordering::Relaxed);
                    return;
                }
                Err(err) => self.report(&err),
            }
        }
    }

    fn give_up(&self, events: usize) {
        self.counters
            .dropped
            .fetch_add(events as u64, Ordering::Relaxed);
        if self.error_log.allow() {
            tracing::error!(sink = %self.name, events, "security event sink gave up on a batch");
        }
    }

    /// Sleeps for `wait` unless shutdown abandons the sink first; false then.
    fn sleep(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            if self.counters.abandon.load(Ordering::Acquire) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            thread::park_timeout((until - now).min(Duration::from_millis(50)));
        }
    }

    fn report(&self, err: &str) {
        let total = self.shared.failed_attempts.fetch_add(1, Ordering::Relaxed) + 1;
        // A dead endpoint fails every attempt; one line per second is enough.
        if self.error_log.allow() {
            tracing::error!(sink = %self.name, error = %err, write_errors_total = total, "security event sink failed");
        }
    }
}

/// Lock-free "at most once per second" gate, shared by many threads.
pub(crate) struct RateLimit {
    origin: Instant,
    /// Milliseconds since `origin` before which `allow` says no.
    next_allowed_ms: AtomicU64,
}

impl RateLimit {
    const INTERVAL_MS: u64 = 1000;

    pub(crate) fn per_second() -> Self {
        RateLimit {
            origin: Instant::now(),
            next_allowed_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn allow(&self) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn rate_limit_allows_once_per_interval() {
        let limit = RateLimit::per_second();
        assert!(limit.allow());
        assert!(!limit.allow());
        assert!(!limit.allow());
    }

    /// Fails the first `fail_first` sends of record "b" only, and records
    /// every attempt.
    struct Flaky {
        attempts: Arc<Mutex<Vec<Vec<String>>>>,
        fail_first: usize,
    }

    impl Deliver for Flaky {
        fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
            match ev {
                Event::Lifecycle(l) => out.extend_from_slice(l.message.as_bytes()),
                _ => return Err("unexpected".to_owned()),
            }
            Ok(())
        }

        fn send(&mut self, records: &[&[u8]]) -> SendOutcome {
            let texts: Vec<String> = records
                .iter()
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .collect();
            let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            attempts.push(texts.clone());
            let failing = attempts.len() <= self.fail_first;
            SendOutcome {
                retry: texts
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| failing && *t == "b")
                    .map(|(i, _)| i)
                    .collect(),
                rejected: texts
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| *t == "bad")
                    .map(|(i, _)| i)
                    .collect(),
                error: failing.then(|| "flaky".to_owned()),
            }
        }
    }

    fn lifecycle(message: &str) -> Event {
        Event::Lifecycle(Arc::new(crate::ocsf::LifecycleEvent {
            time_ms: 0,
            kind: "start".to_owned(),
            message: message.to_owned(),
        }))
    }

    fn limits(max_retries: u32) -> Limits {
        Limits {
            max_events: 10,
            max_bytes: 1 << 20,
            flush_interval: Duration::from_millis(50),
            max_retries: Some(max_retries),
            backoff_initial: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
        }
    }

    fn run_batch(
        fail_first: usize,
        max_retries: u32,
        messages: &[&str],
    ) -> (Vec<Vec<String>>, Arc<SinkCounters>) {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let flaky = Flaky {
            attempts: Arc::clone(&attempts),
            fail_first,
        };
        let (handle, join) = SinkHandle::spawn(
            "flaky".to_owned(),
            "test",
            flaky,
            limits(max_retries),
            64,
            Arc::new(SharedCounters::default()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for m in messages {
            assert!(handle.offer(&lifecycle(m)));
        }
        assert!(handle.offer_shutdown().is_ok());
        let _ = join.finished.recv_timeout(Duration::from_secs(30));
        let _ = join.thread.join();
        let attempts = attempts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (attempts, handle.counters)
    }

    #[test]
    fn only_failed_records_are_retried_and_backoff_ends_in_success() {
        let (attempts, counters) = run_batch(2, 5, &["a", "b", "c"]);
        assert_eq!(attempts[0], ["a", "b", "c"]);
        assert_eq!(attempts[1], ["b"]);
        assert_eq!(attempts[2], ["b"]);
        assert_eq!(attempts.len(), 3);
        assert_eq!(counters.delivered.load(Ordering::Relaxed), 3);
        assert_eq!(counters.retries.load(Ordering::Relaxed), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn retries_are_capped_and_what_is_left_is_counted_as_dropped() {
        let (attempts, counters) = run_batch(100, 3, &["a", "b", "bad"]);
        assert_eq!(attempts.len(), 4, "one attempt plus three retries");
        assert_eq!(counters.delivered.load(Ordering::Relaxed), 1);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(counters.retries.load(Ordering::Relaxed), 3);
    }
}
