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

mod band;
pub(crate) mod clock;
mod config;
mod error;
mod fifo;
pub(crate) mod sampler;
pub(crate) mod state;
mod stats;
pub(crate) mod timer;
mod wait;

use fifo::Fifo;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::EventListener;
use hdrhistogram::Histogram;
use parking_lot::{Mutex, MutexGuard};

pub use config::{Backpressure, QueueConfig, QueueConfigError, UnknownBackpressure, MAX_QUEUE_CAPACITY};
pub(crate) use error::Refusal;
pub use error::{RecvError, SendError, SendErrorKind};
pub use stats::QueueStats;
#[cfg(test)]
pub(crate) use wait::checks as wait_checks;
pub(crate) use wait::{spin_for, Backoff, ReceiverWait, ThreadWaker};

use crate::runtime::telemetry::histogram::AtomicHistogram;
use crate::Message;
use state::{OnFull, Push, State, Wake};
use timer::Sleep;

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

/// Waits for `listener`, or until `sleep` (if any) ends. Returns `false` on timeout.
pub(crate) async fn wait_async(mut listener: EventListener, mut sleep: Option<&mut Sleep>) -> bool {
    poll_fn(|cx| {
        if Pin::new(&mut listener).poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        let timed_out = match sleep.as_deref_mut() {
            Some(sleep) => Pin::new(sleep).poll(cx).is_ready(),
            None => false,
        };
        if timed_out {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// [`wait_async`] that also ends, with `None`, once `stop` is cancelled
/// (checked first). For the runtime's spin rings: a handler waiting for room
/// wakes on its kernel's termination and gets its message back.
pub(crate) async fn wait_async_or_stop(
    listener: EventListener,
    sleep: Option<&mut Sleep>,
    stop: Option<&tokio_util::sync::CancellationToken>,
) -> Option<bool> {
    match stop {
        None => Some(wait_async(listener, sleep).await),
        Some(token) => tokio::select! {
            biased;
            () = token.cancelled() => None,
            woke = wait_async(listener, sleep) => Some(woke),
        },
    }
}

/// `now + timeout`, or `None` (no deadline) if that overflows `Instant`.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Which side a waiter waits on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Recv,
    Send,
}

/// A registered waiter's id, removed (or its wake-up passed on) when the
/// wait ends, also when a future is dropped mid-wait.
struct Registration<'a, T> {
    shared: &'a Shared<T>,
    side: Side,
    id: Option<u64>,
}

impl<'a, T> Registration<'a, T> {
    fn new(shared: &'a Shared<T>, side: Side) -> Self {
        Registration { shared, side, id: None }
    }

    /// Registers (or refreshes) this waiter under the held lock.
    #[inline]
    fn register(&mut self, state: &mut State<T>, waker: &std::task::Waker) {
        match self.side {
            Side::Recv => state.recv_waiters.register(&mut self.id, waker),
            Side::Send => state.send_waiters.register(&mut self.id, waker),
        }
    }

    /// Ends the registration under the held lock. A waiter that was woken
    /// (its entry is gone) but leaves without using the wake-up passes it to
    /// the next waiter of its side if there is still something for it.
    /// `used` says whether this waiter took a message / made its push.
    #[inline(always)]
    fn finish(&mut self, state: &mut State<T>, used: bool, wake: &mut Wake) {
        let Some(id) = self.id.take() else { return };
        let (was_registered, more) = match self.side {
            Side::Recv => (state.recv_waiters.remove(id), state.deliverable()),
            Side::Send => (state.send_waiters.remove(id), !state.is_full() || state.is_closed()),
        };
        if !was_registered && !used && more {
            let next = match self.side {
                Side::Recv => state.recv_waiters.take_one(),
                Side::Send => state.send_waiters.take_one(),
            };
            if let Some(w) = next {
                wake.push(w);
            }
        }
    }
}

impl<T> Drop for Registration<'_, T> {
    // Every receive and send future drops one, and most never registered:
    // that check is inlined, the rest is out of line (as one function it
    // paid the rest's register saves on every drop, ~15 instructions).
    #[inline]
    fn drop(&mut self) {
        if self.id.is_some() {
            self.leave();
        }
    }
}

impl<T> Registration<'_, T> {
    /// Ends a registration whose future is dropped mid-wait.
    #[cold]
    #[inline(never)]
    fn leave(&mut self) {
        let mut wake = Wake::None;
        {
            let mut state = self.shared.state.lock();
            self.finish(&mut state, false, &mut wake);
        }
        wake.wake();
    }
}

/// The state of one async receive between polls.
struct RecvWait<'a, T> {
    reg: Registration<'a, T>,
    deadline: Option<Instant>,
    /// Started on the first attempt that has to wait.
    sleep: Option<Sleep>,
}

impl<'a, T> RecvWait<'a, T> {
    fn new(shared: &'a Shared<T>, deadline: Option<Instant>) -> Self {
        RecvWait {
            reg: Registration::new(shared, Side::Recv),
            deadline,
            sleep: None,
        }
    }
}

/// An async receive ([`MessageQueue::recv_until`]): a named future, so
/// that the runtime can poll it inside futures of its own without another
/// `async` layer around it.
pub(crate) struct Recv<'a, T> {
    queue: &'a MessageQueue<T>,
    wait: RecvWait<'a, T>,
}

impl<'a, T: Message> Recv<'a, T> {
    /// Polls for a message to be moved into `out` (copied once, from its
    /// slot; see [`State::pop_into`]): for receivers that keep the message
    /// in a place of their own rather than take it through this future's
    /// output.
    #[inline]
    pub(crate) fn poll_into(&mut self, cx: &mut Context<'_>, out: &mut Option<T>) -> Poll<Result<(), RecvError>> {
        self.queue.poll_recv_into(cx, &mut self.wait, out)
    }
}

impl<T: Message> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut out = None;
        std::task::ready!(this.poll_into(cx, &mut out))?;
        Poll::Ready(out.ok_or(RecvError::Empty))
    }
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

    // ---- sending -------------------------------------------------------

    /// Sends without waiting.
    ///
    /// # Errors
    /// - [`SendError::Full`] if the queue is full under [`Backpressure::Block`]
    ///   or [`Backpressure::Reject`] (never under [`Backpressure::DropOldest`]);
    /// - [`SendError::Closed`] if the queue is closed.
    ///
    /// The message is handed back in the error.
    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>> {
        match self.push_one(msg, OnFull::Reject, None) {
            Ok(()) => Ok(()),
            // `OnFull::Reject` never asks to wait; treat it as full anyway.
            Err(Err(msg)) => Err(SendError::Full(msg)),
            Err(Ok(e)) => Err(e),
        }
    }

    /// Sends, waiting for room under [`Backpressure::Block`] for at most the
    /// configured [`QueueConfig::send_timeout`] (forever if `None`). Other
    /// strategies never wait: this is then the same as [`try_send`](Self::try_send).
    ///
    /// Works on any executor. Cancel-safe in the sense that dropping the
    /// future while it waits drops the message (it was never queued) and
    /// leaves the queue and its counters untouched.
    ///
    /// # Errors
    /// [`SendError::Timeout`], [`SendError::Full`] (Reject) or
    /// [`SendError::Closed`], with the message handed back.
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        // The common case completes here: one future, the message moved
        // once into it and once into the queue (see `wait_to_send`).
        let Some(msg) = self.first_try(msg)? else {
            return Ok(());
        };
        let deadline = self.shared.config.send_timeout.and_then(deadline_after);
        self.wait_to_send(msg, deadline).await
    }

    /// Like [`send`](Self::send), waiting at most `timeout` (instead of the
    /// configured send timeout) for room.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>> {
        let Some(msg) = self.first_try(msg)? else {
            return Ok(());
        };
        self.wait_to_send(msg, deadline_after(timeout)).await
    }

    /// Like [`send`](Self::send), blocking the calling thread while it waits.
    /// Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_blocking(&self, msg: T) -> Result<(), SendError<T>> {
        let deadline = self.shared.config.send_timeout.and_then(deadline_after);
        self.send_blocking_until(msg, deadline)
    }

    /// Like [`send_timeout`](Self::send_timeout), blocking the calling thread
    /// while it waits. Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_blocking_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_blocking_until(msg, deadline_after(timeout))
    }

    /// One push under the lock. `Ok` when done; `Err(Ok(e))` a final
    /// refusal; `Err(Err(msg))` must wait (then, with `waiter`, registered
    /// under the same lock).
    #[inline(always)]
    fn push_one(
        &self,
        msg: T,
        on_full: OnFull,
        waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>,
    ) -> Result<(), Result<SendError<T>, T>> {
        let mut wake = Wake::None;
        let mut dropped = None;
        let result = {
            let mut state = self.lock();
            let outcome = state.push(msg, on_full);
            let result = match outcome {
                Push::Queued => Ok(()),
                Push::Evicted(old) => {
                    dropped = Some(old);
                    Ok(())
                }
                Push::DroppedIncoming(msg) => {
                    dropped = Some(msg);
                    Ok(())
                }
                Push::MustWait(msg) => Err(Err(msg)),
                Push::Full(msg) => Err(Ok(SendError::Full(msg))),
                Push::Timeout(msg) => Err(Ok(SendError::Timeout(msg))),
                Push::Closed(msg) => Err(Ok(SendError::Closed(msg))),
            };
            match (&result, waiter) {
                (Err(Err(_)), Some((reg, waker))) => reg.register(&mut state, waker),
                (_, Some((reg, _))) => reg.finish(&mut state, result.is_ok(), &mut wake),
                _ => {}
            }
            if result.is_ok() && state.deliverable() {
                if let Some(w) = state.recv_waiters.take_one() {
                    wake.push(w);
                }
            }
            self.shared.publish(&state);
            result
        };
        // After the lock: a destructor or a waker may use the queue.
        drop(dropped);
        wake.wake();
        result
    }

    /// The first attempt of a send that may wait, without waiting: `Ok(None)`
    /// when done, `Ok(Some(msg))` when it must wait for room (nothing
    /// counted), `Err` a final refusal. (Crate-internal: the runtime's fast
    /// path, before it sets up a wait.)
    #[inline]
    pub(crate) fn push_or_wait(&self, msg: T) -> Result<Option<T>, (Refusal, T)> {
        match self.push_one(msg, OnFull::Wait, None) {
            Ok(()) => Ok(None),
            Err(Err(msg)) => Ok(Some(msg)),
            Err(Ok(e)) => Err(e.into_refusal()),
        }
    }

    /// A send's first attempt, which never waits: `Ok(None)` when done
    /// (queued, or dropped as the strategy asks), `Ok(Some(msg))` when it
    /// must wait for room (nothing counted), `Err` a refusal.
    #[inline(always)]
    fn first_try(&self, msg: T) -> Result<Option<T>, SendError<T>> {
        match self.push_one(msg, OnFull::Wait, None) {
            Ok(()) => Ok(None),
            Err(Err(msg)) => Ok(Some(msg)),
            Err(Ok(e)) => Err(e),
        }
    }

    /// The wait for room of [`send`](Self::send) and
    /// [`send_timeout`](Self::send_timeout), after their first attempt
    /// found the queue full. Boxed: held inline, its state (the message
    /// again, the waiter, the sleep) would make every send's future several
    /// times larger, and each layer of futures copies the message once more
    /// (a 120-byte message copied through misaligned stack slots stalls on
    /// store forwarding: most of a send's time, measured in
    /// docs/benchmarks.md, tenth pass).
    async fn wait_to_send(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        Box::pin(self.send_until_or_stop(msg, deadline, None))
            .await
            .map_err(|(why, msg)| SendError::from_refusal(why, msg))
    }

    /// [`send`](Self::send) until `deadline`, also giving up (with
    /// [`Refusal::Stopped`] and the message, counting nothing) once `stop`
    /// is cancelled (checked first). (Crate-internal, for the runtime's
    /// handler-side sends.)
    pub(crate) async fn send_until_or_stop(
        &self,
        msg: T,
        deadline: Option<Instant>,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<(), (Refusal, T)> {
        // Every caller has just tried once (`first_try`, `push_or_wait`);
        // this second look costs a lock on the slow path only. Without it
        // the round trip's hot path measured 35 instructions more (code
        // layout: callgrind, perf-comparison, current-thread), so it stays.
        let msg = match self.push_one(msg, OnFull::Wait, None) {
            Ok(()) => return Ok(()),
            Err(Ok(e)) => return Err(e.into_refusal()),
            Err(Err(msg)) => msg,
        };
        let mut reg = Registration::new(&self.shared, Side::Send);
        let mut sleep = deadline.map(Sleep::until);
        // Pinned here, polled only while waiting (no allocation).
        let mut stopped = std::pin::pin!(async move {
            match stop {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        });
        let mut slot = Some(msg);
        poll_fn(|cx| {
            // `slot` is refilled before every `Pending`, and a finished
            // future is not polled again.
            let Some(m) = slot.take() else { return Poll::Pending };
            if stopped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err((Refusal::Stopped, m)));
            }
            match self.push_one(m, OnFull::Wait, Some((&mut reg, cx.waker()))) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(Ok(e)) => return Poll::Ready(Err(e.into_refusal())),
                Err(Err(m)) => slot = Some(m),
            }
            let expired = sleep.as_mut().is_some_and(|s| Pin::new(s).poll(cx).is_ready());
            match slot.take() {
                Some(m) if expired => Poll::Ready(self.push_last(m, &mut reg).map_err(SendError::into_refusal)),
                other => {
                    slot = other;
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn send_blocking_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        let Some(mut msg) = self.first_try(msg)? else {
            return Ok(());
        };
        let capacity = self.shared.config.capacity;
        let mut backoff = Backoff::new(deadline, self.shared.spin_ns);
        let mut reg = Registration::new(&self.shared, Side::Send);
        let waker = ThreadWaker::current();
        // A hint that proved stale forces a park (no live spin on it).
        let mut stale = false;
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.push_last(msg, &mut reg);
            }
            let parking = stale || !backoff.snooze(|| self.shared.len.load(Ordering::Relaxed) < capacity);
            let waiter = (parking || reg.id.is_some()).then_some((&mut reg, &waker));
            msg = match self.push_one(msg, OnFull::Wait, waiter) {
                Ok(()) => return Ok(()),
                Err(Ok(e)) => return Err(e),
                Err(Err(m)) => m,
            };
            stale = !parking;
            if parking && !wait::park_until(deadline) {
                return self.push_last(msg, &mut reg);
            }
        }
    }

    /// The attempt after the deadline passed: room or `Timeout`.
    fn push_last(&self, msg: T, reg: &mut Registration<'_, T>) -> Result<(), SendError<T>> {
        let mut wake = Wake::None;
        let mut dropped = None;
        let result = {
            let mut state = self.lock();
            let result = match state.push(msg, OnFull::Timeout) {
                Push::Queued => Ok(()),
                Push::Evicted(old) | Push::DroppedIncoming(old) => {
                    dropped = Some(old);
                    Ok(())
                }
                Push::MustWait(msg) | Push::Timeout(msg) => Err(SendError::Timeout(msg)),
                Push::Full(msg) => Err(SendError::Full(msg)),
                Push::Closed(msg) => Err(SendError::Closed(msg)),
            };
            reg.finish(&mut state, result.is_ok(), &mut wake);
            if result.is_ok() && state.deliverable() {
                if let Some(w) = state.recv_waiters.take_one() {
                    wake.push(w);
                }
            }
            self.shared.publish(&state);
            result
        };
        drop(dropped);
        wake.wake();
        result
    }

    /// Sends the messages of `msgs` in order, queueing as many as fit under
    /// one lock acquisition at a time and waiting for room under `Block`
    /// (until `deadline`, or until `stop` is cancelled). Stops at the first
    /// refusal, which is counted like a single refused send, and returns it
    /// with the messages not sent, in order, the refused one first (the
    /// runtime's API hands a refused batch's rest back).
    pub(crate) async fn send_batch_until(
        &self,
        msgs: Vec<T>,
        deadline: Option<Instant>,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<(), (Refusal, Vec<T>)> {
        let mut pending = Fifo::from_vec(msgs);
        if let Some(why) = self.push_run(&mut pending, None) {
            return Err((why, pending.into_vec()));
        }
        if pending.is_empty() {
            return Ok(());
        }
        let mut reg = Registration::new(&self.shared, Side::Send);
        let mut sleep = deadline.map(Sleep::until);
        let mut stopped = std::pin::pin!(async move {
            match stop {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        });
        let mut done = false;
        let result = poll_fn(|cx| {
            if done {
                return Poll::Pending;
            }
            if stopped.as_mut().poll(cx).is_ready() {
                done = true;
                return Poll::Ready(Err(Refusal::Stopped));
            }
            if let Some(why) = self.push_run(&mut pending, Some((&mut reg, cx.waker()))) {
                done = true;
                return Poll::Ready(Err(why));
            }
            if pending.is_empty() {
                done = true;
                return Poll::Ready(Ok(()));
            }
            let expired = sleep.as_mut().is_some_and(|s| Pin::new(s).poll(cx).is_ready());
            if !expired {
                return Poll::Pending;
            }
            done = true;
            if let Some(why) = self.push_run(&mut pending, None) {
                return Poll::Ready(Err(why));
            }
            Poll::Ready(match pending.pop_front() {
                None => Ok(()),
                Some(first) => match self.push_last(first, &mut reg) {
                    // Room appeared at the last moment for the first one only.
                    Ok(()) if pending.is_empty() => Ok(()),
                    Ok(()) => Err(Refusal::Timeout),
                    Err(e) => {
                        let (why, first) = e.into_refusal();
                        pending.push_front(first);
                        Err(why)
                    }
                },
            })
        })
        .await;
        drop(reg);
        result.map_err(|why| (why, pending.into_vec()))
    }

    /// Queues from the front of `pending` as many messages as fit, under one
    /// lock and at most one clock read; a message that must wait, or that is refused
    /// (closed, or full under `Reject`), is put back at the front, and a
    /// refusal is returned. With `waiter`, a waiter that must wait is
    /// registered under the same lock.
    fn push_run(
        &self,
        pending: &mut Fifo<T>,
        waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>,
    ) -> Option<Refusal> {
        let mut dropped = Vec::new();
        let mut wake = Wake::None;
        let refused = {
            let mut state = self.lock();
            let mut queued = 0usize;
            let mut refused = None;
            let mut must_wait = false;
            queued += state.push_fitting(pending);
            while let Some(msg) = pending.pop_front() {
                let (why, msg) = match state.push(msg, OnFull::Wait) {
                    Push::Queued => {
                        queued += 1;
                        continue;
                    }
                    Push::Evicted(old) => {
                        queued += 1;
                        dropped.push(old);
                        continue;
                    }
                    Push::DroppedIncoming(msg) => {
                        dropped.push(msg);
                        continue;
                    }
                    Push::MustWait(msg) => (None, msg),
                    Push::Full(msg) => (Some(Refusal::Full), msg),
                    Push::Timeout(msg) => (Some(Refusal::Timeout), msg),
                    Push::Closed(msg) => (Some(Refusal::Closed), msg),
                };
                pending.push_front(msg);
                must_wait = why.is_none();
                refused = why;
                break;
            }
            if let Some((reg, waker)) = waiter {
                if must_wait {
                    reg.register(&mut state, waker);
                } else {
                    reg.finish(&mut state, true, &mut wake);
                }
            }
            if queued > 0 && !state.is_paused() {
                state.recv_waiters.take(queued, &mut wake);
            }
            self.shared.publish(&state);
            refused
        };
        // Dropped after the lock, so a destructor may use the queue.
        drop(dropped);
        wake.wake();
        refused
    }

    // ---- receiving -----------------------------------------------------

    /// One pop under the lock, waking a sender if
    /// room appeared; with `waiter`, registers it (under the same lock) when
    /// there is nothing to deliver, or ends its registration otherwise.
    fn pop_one(&self, waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>) -> Result<T, RecvError> {
        let mut out = None;
        self.pop_one_into(&mut out, waiter)?;
        out.ok_or(RecvError::Empty)
    }

    /// [`pop_one`](Self::pop_one) moving the message into `out` (see
    /// [`State::pop_into`]).
    #[inline(always)]
    fn pop_one_into(
        &self,
        out: &mut Option<T>,
        waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>,
    ) -> Result<(), RecvError> {
        let mut wake = Wake::None;
        let mut state = self.lock();
        let result = state.pop_into(out);
        match (&result, waiter) {
            (Err(RecvError::Empty), Some((reg, waker))) => reg.register(&mut state, waker),
            (_, Some((reg, _))) => reg.finish(&mut state, result.is_ok(), &mut wake),
            _ => {}
        }
        if result.is_ok() {
            if let Some(w) = state.send_waiters.take_one() {
                wake.push(w);
            }
            self.shared.publish(&state);
        }
        drop(state);
        wake.wake();
        result
    }

    /// Takes the next message without waiting.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if there is nothing to deliver (empty, or
    /// paused); [`RecvError::Closed`] if the queue is closed and empty, or
    /// closed while paused.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        self.pop_one(None)
    }

    /// Takes the next message, waiting while the queue is empty or paused.
    /// Cancel-safe: dropping the future never loses a message. Works on any
    /// executor; under Tokio each attempt spends one unit of the task's
    /// cooperative budget (as Tokio's own channels do), so a receiver that
    /// always finds a backlog still yields now and then.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once the queue is closed and drained (or closed
    /// while paused).
    pub fn recv(&self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        self.recv_until(None)
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] if nothing was delivered in time;
    /// [`RecvError::Closed`] as for [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        self.recv_until(deadline_after(timeout))
    }

    /// Like [`recv`](Self::recv), blocking the calling thread while it waits.
    /// Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        self.recv_blocking_until(None)
    }

    /// Like [`recv_timeout`](Self::recv_timeout), blocking the calling thread
    /// while it waits. Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_blocking_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_blocking_until(deadline_after(timeout))
    }

    /// Waits for a message until `deadline`.
    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Recv<'_, T> {
        Recv {
            queue: self,
            wait: RecvWait::new(&self.shared, deadline),
        }
    }

    /// Whether an async receive should poll first (see
    /// [`ReceiverWait::async_poll`]; then use
    /// [`recv_polling_first`](Self::recv_polling_first)).
    #[inline]
    pub(crate) fn polls_first(&self) -> bool {
        self.shared.async_poll
    }

    /// [`recv_until`](Self::recv_until), after a first phase that looks
    /// without registering, spinning in place for a few microseconds
    /// ([`spin_for`]).
    pub(crate) async fn recv_polling_first(&self, deadline: Option<Instant>) -> Result<T, RecvError>
    where
        T: Send,
    {
        let found = spin_for(deadline, |first| {
            // A pop on the first look, then one whenever the lock-free
            // count says there is something.
            if first || self.shared.ready.load(Ordering::Relaxed) > 0 {
                match self.pop_one(None) {
                    Err(RecvError::Empty) => {}
                    done => return Some(done),
                }
            }
            None
        });
        match found {
            Some(done) => done,
            None => self.recv_until(deadline).await,
        }
    }

    /// One attempt of an async receive: a pop, or (under the same lock) the
    /// registration of the task's waker when there is nothing to deliver.
    /// The message, if one came, is moved into `out`.
    #[inline(always)]
    fn poll_recv_into(
        &self,
        cx: &mut Context<'_>,
        wait: &mut RecvWait<'_, T>,
        out: &mut Option<T>,
    ) -> Poll<Result<(), RecvError>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        match self.pop_one_into(out, Some((&mut wait.reg, cx.waker()))) {
            Err(RecvError::Empty) => {}
            done => {
                coop.made_progress();
                return Poll::Ready(done);
            }
        }
        if let Some(deadline) = wait.deadline {
            let sleep = wait.sleep.get_or_insert_with(|| Sleep::until(deadline));
            if Pin::new(sleep).poll(cx).is_ready() {
                return Poll::Ready(self.pop_last(&mut wait.reg).map(|m| *out = Some(m)));
            }
        }
        Poll::Pending
    }

    /// Blocking form of [`recv_until`](Self::recv_until): polls briefly,
    /// then parks until woken or `deadline`.
    pub(crate) fn recv_blocking_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        match self.pop_one(None) {
            Err(RecvError::Empty) => {}
            done => return done,
        }
        let mut backoff = Backoff::new(deadline, self.shared.spin_ns);
        let mut reg = Registration::new(&self.shared, Side::Recv);
        let waker = ThreadWaker::current();
        let mut stale = false;
        loop {
            let parking = stale || !backoff.snooze(|| self.shared.ready.load(Ordering::Relaxed) > 0);
            let waiter = (parking || reg.id.is_some()).then_some((&mut reg, &waker));
            match self.pop_one(waiter) {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            stale = !parking;
            if deadline.is_some_and(|d| Instant::now() >= d) || (parking && !wait::park_until(deadline)) {
                return self.pop_last(&mut reg);
            }
        }
    }

    /// The attempt after the deadline passed: a message or `Timeout`.
    fn pop_last(&self, reg: &mut Registration<'_, T>) -> Result<T, RecvError> {
        let mut wake = Wake::None;
        let result = {
            let mut state = self.lock();
            let result = state.pop();
            reg.finish(&mut state, result.is_ok(), &mut wake);
            if result.is_ok() {
                if let Some(w) = state.send_waiters.take_one() {
                    wake.push(w);
                }
                self.shared.publish(&state);
            }
            result
        };
        wake.wake();
        match result {
            Err(RecvError::Empty) => Err(RecvError::Timeout),
            done => done,
        }
    }

    /// Moves up to `max` messages into `out`, in delivery order (highest band
    /// first, FIFO within a band), under one lock acquisition. Never waits.
    /// Returns how many were moved: 0 if the queue is empty, paused or closed
    /// and drained.
    pub fn try_recv_batch(&self, max: usize, out: &mut Vec<T>) -> usize {
        let mut wake = Wake::None;
        let taken = {
            let mut state = self.lock();
            let taken = state.pop_batch(max, out);
            if taken > 0 {
                state.send_waiters.take(taken, &mut wake);
                self.shared.publish(&state);
            }
            taken
        };
        wake.wake();
        taken
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

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::MessageHeader;

    #[derive(Debug, crate::Message)]
    struct M {
        n: u64,
        header: MessageHeader,
    }

    fn batch(range: std::ops::Range<u64>) -> Vec<M> {
        range
            .map(|n| M {
                n,
                header: MessageHeader::new(),
            })
            .collect()
    }

    fn with_priority(n: u64, p: u8) -> M {
        M {
            n,
            header: MessageHeader::with_priority(p),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// A batch send moves what fits in one run and then applies the
        /// backpressure strategy message by message: the queue must end up
        /// exactly as after the same messages sent one at a time (stopping
        /// at the first refusal), and batch receives must match too, down to
        /// which messages' waits are sampled. Long batches of one band (half
        /// the steps: mostly priority 100) take the path where a whole batch
        /// is queued in its own buffer, behind other messages or into an
        /// empty band.
        #[test]
        fn a_batch_send_equals_sends_one_at_a_time(
            capacity in proptest::prop_oneof![1usize..9, 9usize..80],
            backpressure in proptest::sample::select(Backpressure::ALL.to_vec()),
            sample_every in 0u32..5,
            steps in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::collection::vec(0u8..=255, 0..7),
                        proptest::collection::vec(proptest::prop_oneof![15 => proptest::strategy::Just(100u8), 1 => 0u8..=255], 0..40),
                    ],
                    0usize..50,
                ),
                1..12,
            ),
        ) {
            let config = QueueConfig::new(capacity).with_backpressure(backpressure).with_wait_sample_every(sample_every);
            let batched = MessageQueue::<M>::new(config.clone()).unwrap();
            let single = MessageQueue::<M>::new(config).unwrap();
            let mut n = 0u64;
            for (priorities, max) in steps {
                let msgs: Vec<(u64, u8)> = priorities.iter().map(|&p| { n += 1; (n, p) }).collect();
                let batch: Vec<M> = msgs.iter().map(|&(n, p)| with_priority(n, p)).collect();
                // An expired deadline: a full `Block` queue times out at once.
                let got = crate::runtime::park::block_on(
                    batched.send_batch_until(batch, Some(Instant::now()), None),
                );
                let got = got.map_err(|(_, rest)| rest.iter().map(|m| m.n).collect::<Vec<_>>());
                let mut want = Ok(());
                for (i, &(n, p)) in msgs.iter().enumerate() {
                    let r = match backpressure {
                        Backpressure::Block => single.send_blocking_timeout(with_priority(n, p), Duration::ZERO),
                        _ => single.try_send(with_priority(n, p)),
                    };
                    if r.is_err() {
                        want = Err(msgs[i..].iter().map(|&(n, _)| n).collect::<Vec<_>>());
                        break;
                    }
                }
                proptest::prop_assert_eq!(got, want);
                // Their counters, not how they waited: the batch with an
                // expired deadline registers its wait before it times out,
                // the single blocking send with a zero timeout does not.
                let counters = |s: QueueStats| QueueStats { receive_sleeps: 0, send_sleeps: 0, ..s };
                proptest::prop_assert_eq!(counters(batched.stats()), counters(single.stats()));
                let (mut a, mut b) = (Vec::new(), Vec::new());
                proptest::prop_assert_eq!(batched.try_recv_batch(max, &mut a), single.try_recv_batch(max, &mut b));
                proptest::prop_assert_eq!(
                    a.iter().map(|m| m.n).collect::<Vec<_>>(),
                    b.iter().map(|m| m.n).collect::<Vec<_>>()
                );
                proptest::prop_assert_eq!(counters(batched.stats()), counters(single.stats()));
                proptest::prop_assert_eq!(batched.wait_histogram().len(), single.wait_histogram().len());
            }
        }
    }

    #[test]
    fn a_batch_waits_for_room_and_keeps_its_order() {
        let q = MessageQueue::<M>::with_capacity(4, Backpressure::Block).unwrap();
        let rx = q.clone();
        let consumer = std::thread::spawn(move || (0..100).map(|_| rx.recv_blocking().unwrap().n).collect::<Vec<_>>());
        crate::runtime::park::block_on(q.send_batch_until(batch(0..100), None, None)).unwrap();
        assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
        let s = q.stats();
        assert_eq!((s.enqueued, s.dequeued, s.rejected), (100, 100, 0));
    }

    #[test]
    fn a_refused_batch_counts_one_refusal_and_hands_back_the_unsent() {
        let unsent = |r: Result<(), (Refusal, Vec<M>)>| {
            r.map_err(|(why, rest)| (why, rest.iter().map(|m| m.n).collect::<Vec<_>>()))
        };
        let q = MessageQueue::<M>::with_capacity(3, Backpressure::Reject).unwrap();
        let r = crate::runtime::park::block_on(q.send_batch_until(batch(0..5), None, None));
        assert_eq!(unsent(r), Err((Refusal::Full, vec![3, 4])));
        let s = q.stats();
        assert_eq!((s.enqueued, s.rejected, s.depth), (3, 1, 3));

        let q = MessageQueue::<M>::with_capacity(2, Backpressure::Block).unwrap();
        let r = crate::runtime::park::block_on(q.send_batch_until(
            batch(0..4),
            Instant::now().checked_add(Duration::from_millis(20)),
            None,
        ));
        assert_eq!(unsent(r), Err((Refusal::Timeout, vec![2, 3])));
        assert_eq!(q.stats().timed_out, 1);

        let stop = tokio_util::sync::CancellationToken::new();
        stop.cancel();
        let r = crate::runtime::park::block_on(q.send_batch_until(batch(7..9), None, Some(&stop)));
        assert_eq!(unsent(r), Err((Refusal::Stopped, vec![7, 8])));
        let r = crate::runtime::park::block_on(q.send_until_or_stop(batch(9..10).remove(0), None, Some(&stop)));
        assert!(matches!(r, Err((Refusal::Stopped, M { n: 9, .. }))));
        assert_eq!(q.stats().attempts(), 2 + 1, "a stopped send is not an attempt");

        q.close();
        let r = crate::runtime::park::block_on(q.send_batch_until(batch(0..3), None, None));
        assert_eq!(unsent(r), Err((Refusal::Closed, vec![0, 1, 2])));
        assert_eq!(q.stats().closed_rejections, 1);
    }
}

#[cfg(test)]
mod polling_tests {
    use super::*;
    use crate::MessageHeader;

    #[derive(Debug, crate::Message)]
    struct M {
        n: u64,
        header: MessageHeader,
    }

    /// A receive that looks again before it sleeps (a thread kernel's
    /// replies) passes the shared cases ([`wait::checks`]); a queue built by
    /// hand registers at once.
    #[test]
    fn a_polling_receive_gets_early_and_late_messages() {
        let waits = ReceiverWait {
            spin: true,
            async_poll: true,
        };
        let q = Arc::new(MessageQueue::<M>::for_runtime(QueueConfig::new(8), waits).unwrap());
        assert!(q.polls_first());
        let (tx, closer) = (q.clone(), q.clone());
        wait::checks::looks_again_then_sleeps(
            |deadline| {
                let q = q.clone();
                async move { q.recv_polling_first(deadline).await.map(|m| m.n) }
            },
            move |n| {
                tx.try_send(M {
                    n,
                    header: MessageHeader::new(),
                })
                .unwrap()
            },
            move || closer.close(),
        );
        let s = q.stats();
        assert_eq!((s.enqueued, s.dequeued), (2, 2));
        assert!(!MessageQueue::<M>::new(QueueConfig::new(8)).unwrap().polls_first());
    }
}
