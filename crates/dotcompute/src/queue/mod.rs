//! [`MessageQueue`]: the bounded, multi-producer multi-consumer queue ring
//! kernels receive from, with four priority bands and a backpressure strategy.
//!
//! # Invariant
//!
//! At every moment, under the queue's single lock:
//!
//! - at most `capacity` messages are queued, all bands together, and each
//!   queued message sits in the FIFO of its own band ([`Message::band`]);
//! - every message handed to a send is accounted for exactly once: it is
//!   queued, or was delivered (a receive or [`MessageQueue::clear`]), or was
//!   dropped by [`Backpressure::DropOldest`], or was handed back to the sender
//!   inside a [`SendError`]. In counter form, every [`QueueStats`] snapshot has
//!   `enqueued == dequeued + dropped + depth`, and
//!   `attempts() == dequeued + dropped + depth + rejected + timed_out + closed_rejections`;
//! - a receive that succeeds returns the oldest message of the highest
//!   non-empty band, and no receive succeeds while the queue is paused.
//!
//! # Semantics
//!
//! - **Order.** Receives take from the highest non-empty band (system, high,
//!   normal, low), FIFO within a band. Push and pop are O(1) (amortized).
//! - **Backpressure** (when the queue is full):
//!   - [`Backpressure::Block`]: [`send`](MessageQueue::send) and
//!     [`send_blocking`](MessageQueue::send_blocking) wait for room, until the
//!     queue closes, or until the send timeout ([`SendError::Timeout`]).
//!     [`try_send`](MessageQueue::try_send) never waits: [`SendError::Full`].
//!   - [`Backpressure::Reject`]: every send fails at once with [`SendError::Full`].
//!   - [`Backpressure::DropOldest`]: the send succeeds and one message is
//!     dropped: the oldest message of the lowest non-empty band, **counting the
//!     incoming message's band as a candidate**. If the incoming message's band
//!     is strictly lower than the band of every queued message, the incoming
//!     message itself is dropped (it is counted as enqueued and dropped). So a
//!     low-priority message never evicts a higher-priority one, and a message
//!     of the same band as the lowest queued band evicts the oldest of that band.
//! - **Close.** [`close`](MessageQueue::close) makes every send fail with
//!   [`SendError::Closed`], including sends already waiting for room, which
//!   wake at once. Receivers drain what is left, then get [`RecvError::Closed`].
//! - **Pause.** While paused the queue accepts sends but delivers nothing:
//!   [`try_recv`](MessageQueue::try_recv) returns [`RecvError::Empty`],
//!   [`recv`](MessageQueue::recv) waits for [`resume`](MessageQueue::resume)
//!   or close, [`recv_timeout`](MessageQueue::recv_timeout) times out. Once
//!   [`pause`](MessageQueue::pause) returns, no receive succeeds until
//!   `resume` (the flag is checked under the lock that guards the pop). A
//!   queue closed while paused answers receives with [`RecvError::Closed`];
//!   its messages stay queued and [`clear`](MessageQueue::clear) returns them.
//! - **Waiting.** Async and thread-blocking waits share one list of waiters
//!   per side, kept under the queue's lock: a receive that finds nothing
//!   registers its waker in the same critical section as the failed pop, and
//!   a send wakes the oldest registered receiver in the same critical section
//!   as the push, so no wake-up is lost and a send with nobody waiting wakes
//!   nobody (no allocation, no extra lock). Blocking waits first poll briefly
//!   (spin, then yield, about 50 µs in all) before parking the thread, so a
//!   busy peer is met without the cost of a park and an unpark; an idle
//!   queue costs no CPU after that. Async waits are cancel-safe: dropping a `recv` future
//!   never loses a message, and dropping a `send` future that waits for room
//!   drops its message with it (it was never queued) and counts nothing.
//!   Async timeouts use a small internal timer thread, so the async API works
//!   on any executor and needs no Tokio runtime. Waiting senders (and
//!   receivers) are woken in the order they started waiting, but a send or
//!   receive that arrives while they wake up may take the room (or the
//!   message) first: there is no strict FIFO fairness between waiters and
//!   newcomers.
//! - **Wait histogram.** Each measured message (every one by default, one
//!   in [`QueueConfig::wait_sample_every`] otherwise) has its enqueue time
//!   noted beside it in its band (read from the CPU's time-stamp counter
//!   where it has an invariant one); the receive that takes it records the
//!   time it spent queued, in nanoseconds (3 significant digits, saturating
//!   at one hour). [`clear`](MessageQueue::clear) is not a receive and
//!   records nothing, nor is a message dropped by `DropOldest`.
//!
//! # Example
//!
//! ```
//! use dotcompute::queue::{Backpressure, MessageQueue, RecvError, SendError};
//! use dotcompute::{Message, MessageHeader};
//!
//! #[derive(Debug, Clone, Message)]
//! struct Job {
//!     id: u32,
//!     header: MessageHeader,
//! }
//! let job = |id, priority| Job { id, header: MessageHeader::with_priority(priority) };
//!
//! let queue = MessageQueue::with_capacity(3, Backpressure::Reject)?;
//! queue.try_send(job(1, 10))?; // low band
//! queue.try_send(job(2, 240))?; // system band
//! queue.try_send(job(3, 128))?; // normal band
//! // Full: the message comes back.
//! let err = queue.try_send(job(4, 128)).unwrap_err();
//! assert!(matches!(&err, SendError::Full(j) if j.id == 4));
//!
//! // Highest band first; the async API works on any executor.
//! let first = futures::executor::block_on(queue.recv())?;
//! assert_eq!(first.id, 2);
//! assert_eq!(queue.try_recv()?.id, 3);
//!
//! queue.close();
//! assert_eq!(queue.recv_blocking()?.id, 1); // drained after close...
//! assert_eq!(queue.try_recv().unwrap_err(), RecvError::Closed); // ...then Closed
//!
//! let stats = queue.stats();
//! assert_eq!((stats.enqueued, stats.dequeued, stats.rejected), (3, 3, 1));
//! assert_eq!(queue.wait_histogram().len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Layout: this module holds the queue's shared part, its construction,
// control (close, pause, clear) and inspection; `send` and `recv` its two
// halves; `registration` a waiter's entry in a waiter list; `state` what
// the lock guards; `band` and `fifo` the storage of one band; `wait` how
// a blocked thread (or a ring's async task) waits; `timer` the async
// timeouts; `sampler` and `clock` the wait histogram's stamps.
mod band;
pub(crate) mod clock;
mod config;
mod error;
mod fifo;
mod recv;
mod registration;
pub(crate) mod sampler;
mod send;
pub(crate) mod state;
mod stats;
pub(crate) mod timer;
mod wait;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::{Mutex, MutexGuard};

pub use config::{Backpressure, QueueConfig, QueueConfigError, UnknownBackpressure, MAX_QUEUE_CAPACITY};
pub(crate) use error::Refusal;
pub use error::{RecvError, SendError, SendErrorKind};
pub(crate) use recv::Recv;
pub use stats::QueueStats;
#[cfg(test)]
pub(crate) use wait::checks as wait_checks;
pub(crate) use wait::{spin_for, wait_async, wait_async_or_stop, ReceiverWait, ThreadWaker};

use crate::runtime::telemetry::histogram::AtomicHistogram;
use crate::Message;
use state::{State, Wake};

/// A bounded MPMC queue of messages with four priority bands and a
/// backpressure strategy. See the [module documentation](self) for the full
/// semantics.
///
/// Cloning gives another handle to the same queue; every handle can send and
/// receive.
///
/// The `*_blocking` methods block the calling thread: do not call them from
/// inside an async task (use the async methods there).
pub struct MessageQueue<T> {
    shared: Arc<Shared<T>>,
}

/// Laid out in declaration order (`repr(C)`) from the start of a cache
/// line: the two counts published for spinning waiters, then the lock word
/// and the state's hot fields (its length, enqueue and dequeue counts,
/// capacity and sampler), all in that one line, which every operation
/// writes under the lock; a message handed from one core to another then
/// moves fewer lines (`layout_tests` checks the placement).
#[repr(C, align(64))]
struct Shared<T> {
    /// Messages a receive would find now (0 while paused), kept by every
    /// operation under the lock; read without it by spinning receivers only.
    ready: AtomicUsize,
    /// Messages queued now (paused or not), for spinning senders.
    len: AtomicUsize,
    state: Mutex<State<T>>,
    config: QueueConfig,
    /// The in-queue wait histogram: written under `state`'s lock only.
    waits: Arc<AtomicHistogram>,
    /// How long a blocked thread spins before it starts yielding.
    spin_ns: u64,
    /// Whether an async receive looks again for a while before it
    /// registers. See [`ReceiverWait`].
    async_poll: bool,
}

impl<T> Clone for MessageQueue<T> {
    fn clone(&self) -> Self {
        MessageQueue {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for MessageQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("MessageQueue")
            .field("config", &self.shared.config)
            .field("len", &state.len())
            .field("closed", &state.is_closed())
            .field("paused", &state.is_paused())
            .finish()
    }
}

/// `now + timeout`, or `None` (no deadline) if that overflows `Instant`.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl<T> Shared<T> {
    /// Publishes the deliverable count for spinning waiters (lock held).
    #[inline]
    fn publish(&self, state: &State<T>) {
        let ready = if state.is_paused() { 0 } else { state.len() };
        self.ready.store(ready, Ordering::Relaxed);
        self.len.store(state.len(), Ordering::Relaxed);
    }
}

impl<T: Message> MessageQueue<T> {
    /// A queue with the given configuration.
    ///
    /// # Errors
    /// [`QueueConfigError`] if the capacity is 0 or above [`MAX_QUEUE_CAPACITY`].
    pub fn new(config: QueueConfig) -> Result<Self, QueueConfigError> {
        Self::build(config, wait::SPIN_NS, false)
    }

    /// The runtime's queues, whose receivers wait as `waits` says.
    pub(crate) fn for_runtime(config: QueueConfig, waits: ReceiverWait) -> Result<Self, QueueConfigError> {
        let spin_ns = if waits.spin { wait::SPIN_NS } else { 0 };
        Self::build(config, spin_ns, waits.async_poll)
    }

    fn build(config: QueueConfig, spin_ns: u64, async_poll: bool) -> Result<Self, QueueConfigError> {
        config.validate()?;
        let waits = Arc::new(AtomicHistogram::new());
        let state = State::new(
            config.capacity,
            config.backpressure,
            Arc::clone(&waits),
            config.wait_sample_every,
        );
        Ok(MessageQueue {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                ready: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                waits,
                spin_ns,
                async_poll,
            }),
        })
    }

    /// A queue with the given capacity and strategy, and no send timeout.
    ///
    /// # Errors
    /// [`QueueConfigError`] if the capacity is 0 or above [`MAX_QUEUE_CAPACITY`].
    pub fn with_capacity(capacity: usize, backpressure: Backpressure) -> Result<Self, QueueConfigError> {
        Self::new(QueueConfig::new(capacity).with_backpressure(backpressure))
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.shared.state.lock()
    }

    // ---- control -------------------------------------------------------

    /// Closes the queue: every send from now on, and every send waiting for
    /// room, fails with [`SendError::Closed`]; receivers drain what is
    /// queued, then get [`RecvError::Closed`]. Wakes every waiter. Idempotent.
    pub fn close(&self) {
        let mut wake = Wake::None;
        {
            let mut state = self.lock();
            if state.close() {
                state.recv_waiters.take(usize::MAX, &mut wake);
                state.send_waiters.take(usize::MAX, &mut wake);
            }
        }
        wake.wake();
    }

    /// Counts `n` messages that went straight from their sender to the
    /// receiver waiting for them, past the queue (a reply to a runtime
    /// `call`): enqueued and dequeued at once, so the counters still tell
    /// every message the queue's owner handled. (Added for the runtime.)
    pub(crate) fn count_handed_over(&self, n: u64) {
        self.lock().count_handed_over(n);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().is_closed()
    }

    /// Stops delivery: sends are still accepted, but no receive succeeds
    /// from the moment this returns until [`resume`](Self::resume).
    pub fn pause(&self) {
        let mut state = self.lock();
        state.set_paused(true);
        self.shared.publish(&state);
    }

    /// Restarts delivery after [`pause`](Self::pause) and wakes waiting receivers.
    pub fn resume(&self) {
        let mut wake = Wake::None;
        {
            let mut state = self.lock();
            if state.set_paused(false) {
                state.recv_waiters.take(usize::MAX, &mut wake);
            }
            self.shared.publish(&state);
        }
        wake.wake();
    }

    /// Whether the queue is paused.
    pub fn is_paused(&self) -> bool {
        self.lock().is_paused()
    }

    /// Removes and returns every queued message, in delivery order, whether
    /// or not the queue is paused or closed. They count as dequeued (the
    /// caller owns them now) but are not recorded in the wait histogram.
    pub fn clear(&self) -> Vec<T> {
        let mut wake = Wake::None;
        let taken = {
            let mut state = self.lock();
            let taken = state.clear();
            state.send_waiters.take(taken.len(), &mut wake);
            self.shared.publish(&state);
            taken
        };
        wake.wake();
        taken
    }

    // ---- inspection ----------------------------------------------------

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages a receive could take as of the queue's last change, read
    /// without the lock: exact for the thread that made that change or saw
    /// it through a lock, a hint (soon up to date) for the others.
    #[inline]
    pub(crate) fn ready_hint(&self) -> usize {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// Whether the queue holds `capacity` messages.
    pub fn is_full(&self) -> bool {
        self.lock().is_full()
    }

    /// Most messages held at once.
    pub fn capacity(&self) -> usize {
        self.shared.config.capacity
    }

    /// The backpressure strategy.
    pub fn backpressure(&self) -> Backpressure {
        self.shared.config.backpressure
    }

    /// The configuration the queue was built with.
    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> QueueStats {
        self.lock().stats()
    }

    /// A copy of the in-queue wait histogram (enqueue to successful receive,
    /// in nanoseconds) of the messages measured: every one by default, one in
    /// [`QueueConfig::wait_sample_every`] otherwise.
    pub fn wait_histogram(&self) -> Histogram<u64> {
        self.shared.waits.snapshot()
    }

    /// Whether `self` and `other` are handles to the same queue.
    pub fn same_queue(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The published counts, the lock word and the state's hot fields sit in
    /// the queue's first cache line, as `Shared` and `State` document.
    #[test]
    fn the_lock_word_and_the_hot_fields_share_a_cache_line() {
        #[derive(Debug, crate::Message)]
        struct M {
            header: crate::MessageHeader,
        }
        let q = MessageQueue::<M>::with_capacity(4, Backpressure::Block).unwrap();
        let base = Arc::as_ptr(&q.shared) as usize;
        assert_eq!(base % 64, 0, "the shared part starts a cache line");
        let state = q.shared.state.lock();
        let hot_end = state.hot_fields_end();
        assert!(hot_end - base <= 64, "hot fields end {} bytes in", hot_end - base);
    }
}
