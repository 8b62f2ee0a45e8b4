//! A bounded single-consumer queue for handing work from the request path to a
//! background thread without a wake-up per item.
//!
//! A consumer blocked in a channel's `recv` turns every send into a futex
//! wake-up and a context switch on the producer's thread: on a gateway doing
//! 100k requests/s that is the dominant cost of handing each request's event
//! to a background thread. So the consumer here never blocks in `recv`: it
//! drains whatever is queued, then parks with a timeout (`poll`, a few
//! milliseconds). A producer only unparks it when its offer brings the queue
//! to half full — a burst outrunning the polling — so under steady load the
//! hand-off is a lock-free `try_send` and two atomic adds, and the consumer
//! takes the queue in batches of a poll interval's worth.
//!
//! The price is latency: an item waits up to `poll` before the consumer looks
//! at it. The event sinks and live detection both accept that.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

pub use std::sync::mpsc::TrySendError;

/// How long an idle consumer sleeps between looks at its queue by default:
/// the extra latency an item may see, and the consumer's idle wake-up rate
/// (200 per second, each a few hundred nanoseconds).
pub const DEFAULT_POLL: Duration = Duration::from_millis(5);

/// The producer's end. Dropping it closes the queue: the consumer receives
/// what is still queued, then learns that the queue is closed.
pub struct HandoffSender<T> {
    tx: SyncSender<T>,
    /// Declared after `tx`: fields drop in declaration order, so when the sender goes the
    /// queue is closed first and the consumer woken second, and it sees the queue closed.
    consumer: Consumer,
    queued: Arc<AtomicUsize>,
    /// The queue length at which an offer wakes the consumer: half the capacity.
    wake_at: usize,
}

/// The consumer thread, woken when the sender is dropped so that it notices the
/// closed queue now rather than at its next poll.
struct Consumer(Thread);

impl Drop for Consumer {
    fn drop(&mut self) {
        self.0.unpark();
    }
}

/// The consumer's end, owned by the thread [`spawn`] started.
pub struct HandoffReceiver<T> {
    rx: Receiver<T>,
    queued: Arc<AtomicUsize>,
    poll: Duration,
}

/// Starts the consumer thread `name` with a queue of `capacity` items (at
/// least one), waking up every `poll` to look for work when no producer woke
/// it earlier. The thread runs `consume` with the receiving end.
pub fn spawn<T, F>(
    name: String,
    capacity: usize,
    poll: Duration,
    consume: F,
) -> io::Result<(HandoffSender<T>, JoinHandle<()>)>
where
    T: Send + 'static,
    F: FnOnce(HandoffReceiver<T>) + Send + 'static,
{
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::sync_channel(capacity);
    let queued = Arc::new(AtomicUsize::new(0));
    let receiver = HandoffReceiver {
        rx,
        queued: Arc::clone(&queued),
        poll,
    };
    let join = thread::Builder::new()
        .name(name)
        .spawn(move || consume(receiver))?;
    let sender = HandoffSender {
        tx,
        consumer: Consumer(join.thread().clone()),
        queued,
        wake_at: (capacity / 2).max(1),
    };
    Ok((sender, join))
}

impl<T> HandoffSender<T> {
    /// Queues `item` without blocking. A full queue, or a consumer that has
    /// ended, gives the item back.
    pub fn offer(&self, item: T) -> Result<(), TrySendError<T>> {
        // Counted before the send so the consumer's decrement can never run first.
        let queued = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match self.tx.try_send(item) {
            Ok(()) => {
                if queued == self.wake_at {
                    // A burst is outrunning the consumer's polling: wake it now rather than
                    // let the queue fill up and drop.
                    self.consumer.0.unpark();
                }
                Ok(())
            }
            Err(err) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    /// Wakes the consumer now instead of at its next poll (to hurry a
    /// shutdown, for example).
    pub fn wake(&self) {
        self.consumer.0.unpark();
    }

    /// Items offered and not yet taken by the consumer.
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether the consumer has taken everything offered so far.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> fmt::Debug for HandoffSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffSender")
            .field("queued", &self.len())
            .field("wake_at", &self.wake_at)
            .finish_non_exhaustive()
    }
}

impl<T> HandoffReceiver<T> {
    /// Takes the next item if one is queued, without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let item = self.rx.try_recv()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(item)
    }

    /// Sleeps until a producer wakes this thread or `at_most` (capped at the
    /// poll interval) has passed. May return early; callers look again.
    pub fn wait(&self, at_most: Duration) {
        thread::park_timeout(at_most.min(self.poll));
    }

    /// Waits until at least one item is queued, then moves up to `max` (at
    /// least one) into `batch`, in the order they were offered. Returns false
    /// once the sender is gone and everything it queued has been taken.
    pub fn recv_batch(&self, batch: &mut Vec<T>, max: usize) -> bool {
        let max = max.max(1);
        loop {
            match self.try_recv() {
                Ok(item) => {
                    batch.push(item);
                    break;
                }
                Err(TryRecvError::Empty) => self.wait(self.poll),
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        while batch.len() < max {
            match self.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        true
    }
}

impl<T> fmt::Debug for HandoffReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffReceiver")
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Instant;

    /// Collects everything the consumer receives, batch by batch.
    fn collector(
        capacity: usize,
        poll: Duration,
    ) -> (HandoffSender<u32>, JoinHandle<()>, mpsc::Receiver<Vec<u32>>) {
        let (batches_tx, batches) = mpsc::channel();
        let (sender, join) = spawn("handoff-test".to_owned(), capacity, poll, move |rx| {
            let mut batch = Vec::new();
            while rx.recv_batch(&mut batch, 16) {
                let _ = batches_tx.send(std::mem::take(&mut batch));
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        (sender, join, batches)
    }

    #[test]
    fn every_item_arrives_once_in_order_in_bounded_batches() {
        let (sender, join, batches) = collector(1024, Duration::from_millis(1));
        for i in 0..1000 {
            assert!(sender.offer(i).is_ok());
        }
        drop(sender);
        join.join().unwrap_or_else(|_| panic!("consumer panicked"));
        let batches: Vec<Vec<u32>> = batches.iter().collect();
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 16));
        let items: Vec<u32> = batches.into_iter().flatten().collect();
        assert_eq!(items, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_gives_the_item_back_and_counts_nothing() {
        // The consumer waits for a signal before taking anything, so the queue stays full.
        let (go_tx, go) = mpsc::channel::<()>();
        let (sender, join) = spawn(
            "handoff-full".to_owned(),
            4,
            Duration::from_millis(1),
            move |rx: HandoffReceiver<u32>| {
                let _ = go.recv();
                let mut batch = Vec::new();
                while rx.recv_batch(&mut batch, 64) {}
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for i in 0..4 {
            assert!(sender.offer(i).is_ok());
        }
        assert!(matches!(sender.offer(99), Err(TrySendError::Full(99))));
        assert_eq!(sender.len(), 4);
        let _ = go_tx.send(());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sender.is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(sender.is_empty(), "the consumer took everything");
        drop(sender);
        join.join().unwrap_or_else(|_| panic!("consumer panicked"));
    }

    #[test]
    fn half_full_wakes_the_consumer_before_its_poll() {
        // A poll far longer than the test: only the producer's wake can deliver in time.
        let (sender, _join, batches) = collector(8, Duration::from_secs(60));
        // Let the consumer reach its first park.
        thread::sleep(Duration::from_millis(50));
        for i in 0..4 {
            assert!(sender.offer(i).is_ok());
        }
        let first = batches.recv_timeout(Duration::from_secs(10));
        assert_eq!(first, Ok(vec![0, 1, 2, 3]));
        drop(sender);
    }

    #[test]
    fn dropping_the_sender_ends_the_consumer_without_waiting_for_its_poll() {
        let (sender, join, batches) = collector(8, Duration::from_secs(60));
        thread::sleep(Duration::from_millis(50));
        assert!(sender.offer(7).is_ok());
        drop(sender);
        // The consumer still gets the queued item, then ends: its end of `batches` disconnects.
        assert_eq!(batches.recv_timeout(Duration::from_secs(10)), Ok(vec![7]));
        assert_eq!(
            batches.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Disconnected)
        );
        join.join().unwrap_or_else(|_| panic!("consumer panicked"));
    }

    #[test]
    fn offering_to_an_ended_consumer_gives_the_item_back() {
        let (sender, join) = spawn(
            "handoff-ended".to_owned(),
            4,
            Duration::from_millis(1),
            |_rx: HandoffReceiver<u32>| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        join.join().unwrap_or_else(|_| panic!("consumer panicked"));
        assert!(matches!(
            sender.offer(1),
            Err(TrySendError::Disconnected(1))
        ));
        assert!(sender.is_empty());
    }
}
