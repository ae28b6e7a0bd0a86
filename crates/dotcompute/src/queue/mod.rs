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
//! - **Waiting.** Async and thread-blocking waits share the same wake-ups
//!   ([`event_listener`]): a waiter registers, re-checks, then sleeps, so no
//!   wake-up is lost. Async waits are cancel-safe: dropping a `recv` future
//!   never loses a message, and dropping a `send` future that waits for room
//!   drops its message with it (it was never queued) and counts nothing.
//!   Async timeouts use a small internal timer thread, so the async API works
//!   on any executor and needs no Tokio runtime. Waiting senders (and
//!   receivers) are woken in the order they started waiting, but a send or
//!   receive that arrives while they wake up may take the room (or the
//!   message) first: there is no strict FIFO fairness between waiters and
//!   newcomers.
//! - **Wait histogram.** Each message carries its enqueue [`Instant`]; every
//!   successful receive records the time it spent queued, in nanoseconds
//!   (3 significant digits, saturating at one hour).
//!   [`clear`](MessageQueue::clear) is not a receive and records nothing.
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

mod config;
mod error;
pub(crate) mod state;
mod stats;
pub(crate) mod timer;

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, IntoNotification, Listener};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

pub use config::{Backpressure, QueueConfig, QueueConfigError, UnknownBackpressure, MAX_QUEUE_CAPACITY};
pub(crate) use error::Refusal;
pub use error::{RecvError, SendError, SendErrorKind};
pub use stats::QueueStats;

use crate::Message;
use state::{OnFull, Push, State};
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

struct Shared<T> {
    config: QueueConfig,
    state: Mutex<State<T>>,
    /// Notified when a message may be deliverable (push, resume, close).
    not_empty: Event,
    /// Notified when room may have appeared (pop, clear, close).
    not_full: Event,
    /// Receivers registered on `not_empty` (lets a push skip the notify).
    recv_waiters: AtomicUsize,
    /// Senders registered on `not_full` (lets a pop skip the notify).
    send_waiters: AtomicUsize,
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

/// Counts a registered waiter for as long as it lives.
///
/// Ordering: a waiter increments the count and registers its listener
/// *before* it re-checks the condition under the queue lock; a notifier
/// changes the state under that lock and reads the count *after* releasing
/// it. Either the waiter's check sees the change, or the lock orders the
/// increment before the notifier's read, which then sees a waiter and
/// notifies. So skipping the notify when the count is 0 loses no wake-up.
struct WaiterGuard<'a>(&'a AtomicUsize);

impl<'a> WaiterGuard<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        WaiterGuard(count)
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
/// (checked first). Added for the runtime: a handler waiting for room wakes
/// on its kernel's termination and gets its message back.
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

/// Waits for `listener` on this thread, until `deadline` if any. Returns `false` on timeout.
pub(crate) fn wait_blocking(listener: EventListener, deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            listener.wait();
            true
        }
        Some(deadline) => listener.wait_deadline(deadline).is_some(),
    }
}

/// `now + timeout`, or `None` (no deadline) if that overflows `Instant`.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// One step of a waiting send.
enum Step<T> {
    Done(Result<(), SendError<T>>),
    Retry(T),
}

impl<T: Message> MessageQueue<T> {
    /// A queue with the given configuration.
    ///
    /// # Errors
    /// [`QueueConfigError`] if the capacity is 0 or above [`MAX_QUEUE_CAPACITY`].
    pub fn new(config: QueueConfig) -> Result<Self, QueueConfigError> {
        config.validate()?;
        let state = State::new(config.capacity, config.backpressure, state::new_wait_histogram());
        Ok(MessageQueue {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                not_empty: Event::new(),
                not_full: Event::new(),
                recv_waiters: AtomicUsize::new(0),
                send_waiters: AtomicUsize::new(0),
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
        match self.push(msg, OnFull::Reject) {
            Step::Done(result) => result,
            // `OnFull::Reject` never asks to retry; treat it as full anyway.
            Step::Retry(msg) => Err(SendError::Full(msg)),
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
        let deadline = self.shared.config.send_timeout.and_then(deadline_after);
        self.send_until(msg, deadline).await
    }

    /// Like [`send`](Self::send), waiting at most `timeout` (instead of the
    /// configured send timeout) for room.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_until(msg, deadline_after(timeout)).await
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

    async fn send_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        self.send_until_or_stop(msg, deadline, None)
            .await
            .map_err(|(why, msg)| SendError::from_refusal(why, msg))
    }

    /// [`send`](Self::send) until `deadline`, also giving up (with
    /// [`Refusal::Stopped`] and the message, counting nothing) once `stop`
    /// is cancelled. (Crate-internal, for the runtime's handler-side sends.)
    pub(crate) async fn send_until_or_stop(
        &self,
        msg: T,
        deadline: Option<Instant>,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<(), (Refusal, T)> {
        let mut msg = match self.push(msg, OnFull::Wait) {
            Step::Done(result) => return result.map_err(SendError::into_refusal),
            Step::Retry(msg) => msg,
        };
        let mut sleep = deadline.map(Sleep::until);
        loop {
            // Register, re-check, then wait: a pop between the check and the
            // wait notifies the registered listener.
            let _waiter = WaiterGuard::new(&self.shared.send_waiters);
            let listener = self.shared.not_full.listen();
            msg = match self.push(msg, OnFull::Wait) {
                Step::Done(result) => return result.map_err(SendError::into_refusal),
                Step::Retry(msg) => msg,
            };
            match wait_async_or_stop(listener, sleep.as_mut(), stop).await {
                Some(true) => {}
                Some(false) => return self.push_last(msg).map_err(SendError::into_refusal),
                None => return Err((Refusal::Stopped, msg)),
            }
        }
    }

    fn send_blocking_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        let mut msg = match self.push(msg, OnFull::Wait) {
            Step::Done(result) => return result,
            Step::Retry(msg) => msg,
        };
        loop {
            let _waiter = WaiterGuard::new(&self.shared.send_waiters);
            let listener = self.shared.not_full.listen();
            msg = match self.push(msg, OnFull::Wait) {
                Step::Done(result) => return result,
                Step::Retry(msg) => msg,
            };
            if !wait_blocking(listener, deadline) {
                return self.push_last(msg);
            }
        }
    }

    /// The attempt after the deadline passed: room or `Timeout`.
    fn push_last(&self, msg: T) -> Result<(), SendError<T>> {
        match self.push(msg, OnFull::Timeout) {
            Step::Done(result) => result,
            Step::Retry(msg) => Err(SendError::Timeout(msg)),
        }
    }

    /// Sends the messages of `msgs` in order, queueing as many as fit under
    /// one lock acquisition at a time and waiting for room under `Block`
    /// (until `deadline`, or until `stop` is cancelled). Stops at the first
    /// refusal, which is counted like a single refused send, and returns it
    /// with the messages not sent, in order, the refused one first (changed
    /// for the runtime's API: a refused batch hands its rest back).
    pub(crate) async fn send_batch_until(
        &self,
        msgs: Vec<T>,
        deadline: Option<Instant>,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<(), (Refusal, Vec<T>)> {
        let mut pending: VecDeque<T> = msgs.into();
        let mut sleep = deadline.map(Sleep::until);
        loop {
            if let Some(why) = self.push_run(&mut pending) {
                return Err((why, pending.into()));
            }
            if pending.is_empty() {
                return Ok(());
            }
            let _waiter = WaiterGuard::new(&self.shared.send_waiters);
            let listener = self.shared.not_full.listen();
            if let Some(why) = self.push_run(&mut pending) {
                return Err((why, pending.into()));
            }
            if pending.is_empty() {
                return Ok(());
            }
            match wait_async_or_stop(listener, sleep.as_mut(), stop).await {
                Some(true) => {}
                Some(false) => {
                    if let Some(why) = self.push_run(&mut pending) {
                        return Err((why, pending.into()));
                    }
                    return match pending.pop_front() {
                        None => Ok(()),
                        Some(first) => match self.push_last(first) {
                            // Room appeared at the last moment for the first one only.
                            Ok(()) if pending.is_empty() => Ok(()),
                            Ok(()) => Err((Refusal::Timeout, pending.into())),
                            Err(e) => {
                                let (why, first) = e.into_refusal();
                                pending.push_front(first);
                                Err((why, pending.into()))
                            }
                        },
                    };
                }
                None => return Err((Refusal::Stopped, pending.into())),
            }
        }
    }

    /// Queues from the front of `pending` as many messages as fit, under one
    /// lock and one clock read; a message that must wait, or that is refused
    /// (closed, or full under `Reject`), is put back at the front, and a
    /// refusal is returned.
    fn push_run(&self, pending: &mut VecDeque<T>) -> Option<Refusal> {
        let now = Instant::now();
        let mut dropped = Vec::new();
        let (queued, paused, refused) = {
            let mut state = self.shared.state.lock();
            let mut queued = 0usize;
            let mut refused = None;
            while let Some(msg) = pending.pop_front() {
                let (why, msg) = match state.push(msg, now, OnFull::Wait) {
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
                refused = why;
                break;
            }
            (queued, state.is_paused(), refused)
        };
        // Dropped after the lock, so a destructor may use the queue.
        drop(dropped);
        if queued > 0 && !paused && self.shared.recv_waiters.load(Ordering::SeqCst) > 0 {
            self.shared.not_empty.notify(queued.additional());
        }
        refused
    }

    /// One send attempt under the lock, then the wake-ups and drops after it.
    fn push(&self, msg: T, on_full: OnFull) -> Step<T> {
        let now = Instant::now();
        let (outcome, paused) = {
            let mut state = self.shared.state.lock();
            let outcome = state.push(msg, now, on_full);
            (outcome, state.is_paused())
        };
        match outcome {
            Push::Queued => {
                self.wake_receivers(paused);
                Step::Done(Ok(()))
            }
            Push::Evicted(old) => {
                drop(old);
                self.wake_receivers(paused);
                Step::Done(Ok(()))
            }
            Push::DroppedIncoming(msg) => {
                drop(msg);
                Step::Done(Ok(()))
            }
            Push::MustWait(msg) => Step::Retry(msg),
            Push::Full(msg) => Step::Done(Err(SendError::Full(msg))),
            Push::Timeout(msg) => Step::Done(Err(SendError::Timeout(msg))),
            Push::Closed(msg) => Step::Done(Err(SendError::Closed(msg))),
        }
    }

    fn wake_receivers(&self, paused: bool) {
        // A paused queue delivers nothing; `resume` wakes every receiver.
        if !paused && self.shared.recv_waiters.load(Ordering::SeqCst) > 0 {
            self.shared.not_empty.notify(1.additional());
        }
    }

    fn wake_senders(&self, room: usize) {
        if room > 0 && self.shared.send_waiters.load(Ordering::SeqCst) > 0 {
            self.shared.not_full.notify(room.additional());
        }
    }

    // ---- receiving -----------------------------------------------------

    /// Takes the next message without waiting.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if there is nothing to deliver (empty, or
    /// paused); [`RecvError::Closed`] if the queue is closed and empty, or
    /// closed while paused.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        let result = self.shared.state.lock().pop();
        if result.is_ok() {
            self.wake_senders(1);
        }
        result
    }

    /// Takes the next message, waiting while the queue is empty or paused.
    /// Cancel-safe: dropping the future never loses a message. Works on any
    /// executor.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once the queue is closed and drained (or closed
    /// while paused).
    pub async fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).await
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] if nothing was delivered in time;
    /// [`RecvError::Closed`] as for [`recv`](Self::recv).
    pub async fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        match deadline_after(timeout) {
            Some(deadline) => self.recv_until(Some(deadline)).await,
            None => self.recv_until(None).await,
        }
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

    async fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        match self.try_recv() {
            Err(RecvError::Empty) => {}
            done => return done,
        }
        let mut sleep = deadline.map(Sleep::until);
        loop {
            // Register, re-check, then wait: a push between the check and the
            // wait notifies the registered listener.
            let _waiter = WaiterGuard::new(&self.shared.recv_waiters);
            let listener = self.shared.not_empty.listen();
            match self.try_recv() {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            if !wait_async(listener, sleep.as_mut()).await {
                return self.recv_last();
            }
        }
    }

    fn recv_blocking_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        match self.try_recv() {
            Err(RecvError::Empty) => {}
            done => return done,
        }
        loop {
            let _waiter = WaiterGuard::new(&self.shared.recv_waiters);
            let listener = self.shared.not_empty.listen();
            match self.try_recv() {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            if !wait_blocking(listener, deadline) {
                return self.recv_last();
            }
        }
    }

    /// The attempt after the deadline passed: a message or `Timeout`.
    fn recv_last(&self) -> Result<T, RecvError> {
        match self.try_recv() {
            Err(RecvError::Empty) => Err(RecvError::Timeout),
            done => done,
        }
    }

    /// Moves up to `max` messages into `out`, in delivery order (highest band
    /// first, FIFO within a band), under one lock acquisition. Never waits.
    /// Returns how many were moved: 0 if the queue is empty, paused or closed
    /// and drained.
    pub fn try_recv_batch(&self, max: usize, out: &mut Vec<T>) -> usize {
        let taken = self.shared.state.lock().pop_batch(max, out);
        self.wake_senders(taken);
        taken
    }

    // ---- control -------------------------------------------------------

    /// Closes the queue: every send from now on, and every send waiting for
    /// room, fails with [`SendError::Closed`]; receivers drain what is
    /// queued, then get [`RecvError::Closed`]. Wakes every waiter. Idempotent.
    pub fn close(&self) {
        let newly = self.shared.state.lock().close();
        if newly {
            self.shared.not_empty.notify(usize::MAX);
            self.shared.not_full.notify(usize::MAX);
        }
    }

    /// Counts `n` messages that went straight from their sender to the
    /// receiver waiting for them, past the queue (a reply to a runtime
    /// `call`): enqueued and dequeued at once, so the counters still tell
    /// every message the queue's owner handled. (Added for the runtime.)
    pub(crate) fn count_handed_over(&self, n: u64) {
        self.shared.state.lock().count_handed_over(n);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().is_closed()
    }

    /// Stops delivery: sends are still accepted, but no receive succeeds
    /// from the moment this returns until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.shared.state.lock().set_paused(true);
    }

    /// Restarts delivery after [`pause`](Self::pause) and wakes waiting receivers.
    pub fn resume(&self) {
        let was_paused = self.shared.state.lock().set_paused(false);
        if was_paused && self.shared.recv_waiters.load(Ordering::SeqCst) > 0 {
            self.shared.not_empty.notify(usize::MAX);
        }
    }

    /// Whether the queue is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.state.lock().is_paused()
    }

    /// Removes and returns every queued message, in delivery order, whether
    /// or not the queue is paused or closed. They count as dequeued (the
    /// caller owns them now) but are not recorded in the wait histogram.
    pub fn clear(&self) -> Vec<T> {
        let taken = self.shared.state.lock().clear();
        self.wake_senders(taken.len());
        taken
    }

    // ---- inspection ----------------------------------------------------

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.shared.state.lock().len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `capacity` messages.
    pub fn is_full(&self) -> bool {
        self.shared.state.lock().is_full()
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
        self.shared.state.lock().stats()
    }

    /// A copy of the in-queue wait histogram (enqueue to successful receive,
    /// in nanoseconds).
    pub fn wait_histogram(&self) -> Histogram<u64> {
        self.shared.state.lock().waits().clone()
    }

    /// Whether `self` and `other` are handles to the same queue.
    pub fn same_queue(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
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
