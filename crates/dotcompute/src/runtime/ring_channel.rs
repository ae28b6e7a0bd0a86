//! [`RingChannel`]: a spin kernel's queue, a wait-free
//! [`SpscRing`] with the accounting, pause, close and waiting of a
//! [`MessageQueue`](crate::queue::MessageQueue), FIFO only.
//!
//! # Invariant
//!
//! - one producer and one consumer at a time (each half behind its own lock,
//!   so several host tasks may send; the kernel thread is the usual receiver);
//! - FIFO order: a ring has no priority bands (documented for `Spin` mode);
//! - every message is counted exactly once: `enqueued = dequeued + depth`,
//!   and a refused send hands its message back and counts it as rejected,
//!   timed out or closed;
//! - the statistics are exact under concurrency: `enqueued` moves under the
//!   producer lock with the push, `dequeued` under the consumer lock with
//!   the pop, and a snapshot holds both locks, so every snapshot satisfies
//!   [`QueueStats::is_consistent`];
//! - the peak depth is an occupancy the ring really had, never above the
//!   capacity: the consumer notes what it sees when it takes messages (its
//!   view of the producer's index, a lower bound of the depth then), a
//!   push that finds the ring full notes the capacity, and a snapshot
//!   notes the depth it reads. Neither half reads the other's index for
//!   the peak alone: in a round trip that read would move a cache line
//!   between the two threads twice per message;
//! - no receive succeeds while paused; after `close`, sends fail and
//!   receivers drain what is left, then get `Closed`;
//! - no wake-up is lost, and a push or pop with nobody waiting notifies
//!   nobody: a waiter registers its listener, then counts itself in the
//!   tally of the side that would wake it, under that side's lock
//!   (`data_waiters` under the producer lock for a receiver, `room_waiters`
//!   under the consumer lock for a sender), then looks again before it
//!   sleeps; a push (pop) reads the tally in its own critical section and
//!   notifies only if it is not zero. The lock orders the two: either the
//!   push's section came first, and the waiter's second look sees its
//!   message, or the count did, and the push notifies. (A notification
//!   costs a full fence; this keeps it off a round trip's four ring
//!   operations.) Resume and close notify every listener. Parked waits are
//!   sliced so cancellation is seen within one slice even without a wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::message::Message;
use crate::queue::clock::{self, Stamp};
use crate::queue::sampler::Sampler;
use crate::queue::state::{new_wait_histogram, MAX_RECORDED_WAIT_NS};
use crate::queue::timer::Sleep;
use crate::queue::{
    deadline_after, spin_for, wait_async, wait_async_or_stop, Backpressure, QueueConfig, QueueStats, RecvError,
    Refusal, SendError,
};
use crate::ring::spsc::{Consumer, Producer, PushError, SpscRing};

/// Busy-poll iterations before yielding. A `spin_loop` hint costs from a few
/// to ~140 cycles depending on the CPU (about 120 ns on the 2-vCPU machines
/// the benchmarks run on), so this is roughly 2–25 µs of polling.
const SPIN_LIMIT: u32 = 200;
/// `yield_now` calls before parking.
const YIELD_LIMIT: u32 = 64;
/// Longest single park; cancellation is checked between parks.
const PARK_SLICE: Duration = Duration::from_millis(5);

struct Entry<T> {
    msg: T,
    at: Stamp,
}

/// Why a cancellable blocking receive ended without a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The kernel is being terminated.
    Cancelled,
    /// The channel is closed and empty.
    Closed,
}

/// A bounded FIFO channel over an SPSC ring, for `Spin` kernels.
pub(crate) struct RingChannel<T> {
    /// The producer half and the counters only senders write, on their own
    /// cache lines so that senders and the receiver do not share one.
    tx: CacheLine<Mutex<TxSide<T>>>,
    enqueued: CacheLine<AtomicU64>,
    /// The consumer half and the counters only the receiver writes.
    rx: CacheLine<Mutex<RxSide<T>>>,
    dequeued: CacheLine<AtomicU64>,
    not_empty: Event,
    not_full: Event,
    closed: AtomicBool,
    paused: AtomicBool,
    config: QueueConfig,
    rejected: AtomicU64,
    timed_out: AtomicU64,
    closed_rejections: AtomicU64,
    peak: AtomicUsize,
}

/// What only the sending side touches, under one lock: the producer half
/// and the sampler choosing which messages are stamped; and the receivers
/// waiting for a message, which a push reads to know whether to notify.
struct TxSide<T> {
    producer: Producer<Entry<T>>,
    sampler: Sampler,
    data_waiters: usize,
}

/// What only the receiving side touches, under one lock: the consumer half
/// and the queue-wait histogram it records into; and the senders waiting
/// for room, which a pop reads to know whether to notify.
struct RxSide<T> {
    consumer: Consumer<Entry<T>>,
    waits: Histogram<u64>,
    room_waiters: usize,
}

/// A waiter counted in the tally its notifier reads (see the module
/// invariants): counted when made, under that side's lock; uncounted when
/// dropped, under it again.
struct Counted<'a, T> {
    chan: &'a RingChannel<T>,
    /// Waits for a message (`data_waiters`), else for room (`room_waiters`).
    data: bool,
}

impl<T> Counted<'_, T> {
    fn tally(&self, delta: isize) {
        if self.data {
            let mut tx = self.chan.tx.lock();
            tx.data_waiters = tx.data_waiters.saturating_add_signed(delta);
        } else {
            let mut rx = self.chan.rx.lock();
            rx.room_waiters = rx.room_waiters.saturating_add_signed(delta);
        }
    }
}

impl<T> Drop for Counted<'_, T> {
    fn drop(&mut self) {
        self.tally(-1);
    }
}

/// Adds `n` to a counter that only the holder of its lock writes
/// (`enqueued`: the producer lock; `dequeued`: the consumer lock): a load and
/// a store instead of a read-modify-write, which would be one more locked
/// instruction on every push and pop. The lock orders the writers; readers
/// without it see each value whole and never a smaller one later.
fn add_held(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Release);
}

/// A value alone on its (pair of) cache line(s).
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Message> RingChannel<T> {
    /// A ring of at least `config.capacity` slots (rounded up to a power of
    /// two), recording the wait of one message in `config.wait_sample_every`.
    /// `DropOldest` cannot be served by a ring (only the consumer may
    /// remove items) and is refused by the kernel configuration before this.
    pub fn new(config: QueueConfig) -> Result<Self, String> {
        let (tx, rx) = SpscRing::with_min_capacity(config.capacity).map_err(|e| e.to_string())?;
        let mut config = config;
        config.capacity = tx.capacity();
        Ok(RingChannel {
            tx: CacheLine(Mutex::new(TxSide {
                producer: tx,
                sampler: Sampler::new(config.wait_sample_every),
                data_waiters: 0,
            })),
            rx: CacheLine(Mutex::new(RxSide {
                consumer: rx,
                waits: new_wait_histogram(),
                room_waiters: 0,
            })),
            not_empty: Event::new(),
            not_full: Event::new(),
            closed: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            config,
            enqueued: CacheLine(AtomicU64::new(0)),
            dequeued: CacheLine(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            closed_rejections: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// The configuration the ring was built with.
    pub(super) fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// A copy of the in-ring wait histogram (the consumer's side).
    pub(super) fn wait_histogram(&self) -> Histogram<u64> {
        self.rx.lock().waits.clone()
    }

    pub(super) fn depth(&self) -> usize {
        let dequeued = self.dequeued.load(Ordering::Acquire);
        let enqueued = self.enqueued.load(Ordering::Acquire);
        usize::try_from(enqueued.saturating_sub(dequeued)).unwrap_or(usize::MAX)
    }

    /// Raises the peak depth to `occupancy` (a depth the ring really had;
    /// see the module invariants). A plain load first, so the common case
    /// writes nothing.
    fn note_depth(&self, occupancy: usize) {
        if occupancy > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(occupancy, Ordering::Relaxed);
        }
    }

    /// Counts a receiver about to wait for a message (after it registered
    /// its listener, before its last look).
    fn count_data_waiter(&self) -> Counted<'_, T> {
        self.count_waiter(true)
    }

    /// Counts a sender about to wait for room (after it registered its
    /// listener, before its last look).
    fn count_room_waiter(&self) -> Counted<'_, T> {
        self.count_waiter(false)
    }

    fn count_waiter(&self, data: bool) -> Counted<'_, T> {
        let counted = Counted { chan: self, data };
        counted.tally(1);
        counted
    }

    /// One push attempt; counts nothing on `Full`.
    #[inline]
    pub(super) fn push(&self, msg: T) -> Result<(), SendError<T>> {
        if self.closed.load(Ordering::Acquire) {
            self.closed_rejections.fetch_add(1, Ordering::Relaxed);
            return Err(SendError::Closed(msg));
        }
        let mut tx = self.tx.lock();
        // Only a message that goes in counts for the sampler (the consumer
        // only ever frees slots, so a ring with room now takes the push).
        if !tx.producer.has_room() {
            // `has_room` re-read the consumer's index to say so: full now.
            drop(tx);
            self.note_depth(self.config.capacity);
            return Err(SendError::Full(msg));
        }
        let at = tx.sampler.stamp();
        let pushed = tx.producer.push(Entry { msg, at });
        match pushed {
            Ok(()) => {
                // Counted under the producer lock (see the module invariants).
                add_held(&self.enqueued, 1);
                let waiting = tx.data_waiters > 0;
                drop(tx);
                if waiting {
                    self.not_empty.notify_additional(1);
                }
                Ok(())
            }
            Err(PushError::Full(entry)) => Err(SendError::Full(entry.msg)),
        }
    }

    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>> {
        self.push(msg).inspect_err(|e| {
            if e.is_full() {
                self.rejected.fetch_add(1, Ordering::Relaxed);
            }
        })
    }

    /// A send that may wait for room (Block) until `deadline`, or until
    /// `stop` is cancelled ([`Refusal::Stopped`], counting nothing).
    pub(super) async fn send_until(
        &self,
        mut msg: T,
        deadline: Option<Instant>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), (Refusal, T)> {
        let mut sleep = deadline.map(Sleep::until);
        loop {
            msg = match self.push(msg) {
                Err(SendError::Full(m)) if self.config.backpressure == Backpressure::Block => m,
                other => return self.count_refusal(other).map_err(SendError::into_refusal),
            };
            let listener = self.not_full.listen();
            let _counted = self.count_room_waiter();
            msg = match self.push(msg) {
                Err(SendError::Full(m)) => m,
                other => return self.count_refusal(other).map_err(SendError::into_refusal),
            };
            match wait_async_or_stop(listener, sleep.as_mut(), stop).await {
                Some(true) => {}
                Some(false) => {
                    return match self.push(msg) {
                        Err(SendError::Full(m)) => {
                            self.timed_out.fetch_add(1, Ordering::Relaxed);
                            Err((Refusal::Timeout, m))
                        }
                        other => other.map_err(SendError::into_refusal),
                    }
                }
                None => return Err((Refusal::Stopped, msg)),
            }
        }
    }

    pub(super) fn count_refusal(&self, result: Result<(), SendError<T>>) -> Result<(), SendError<T>> {
        if matches!(result, Err(SendError::Full(_))) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Sends from a plain thread: spins, yields, then parks in slices while
    /// the ring is full (Block), until room, close, cancellation
    /// ([`Refusal::Stopped`]) or `deadline` ([`Refusal::Timeout`], counted).
    #[inline]
    pub fn send_spin(&self, msg: T, cancel: &CancellationToken, deadline: Option<Instant>) -> Result<(), (Refusal, T)> {
        // The common case (room) in the caller's frame; the wait out of line.
        match self.push(msg) {
            Ok(()) => Ok(()),
            Err(SendError::Full(m)) => self.send_spin_full(m, cancel, deadline),
            Err(e) => Err(e.into_refusal()),
        }
    }

    /// [`send_spin`](Self::send_spin) once a push found the ring full.
    #[cold]
    #[inline(never)]
    fn send_spin_full(
        &self,
        mut msg: T,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<(), (Refusal, T)> {
        let mut backoff = Backoff::default();
        loop {
            if self.config.backpressure != Backpressure::Block {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err((Refusal::Full, msg));
            }
            if cancel.is_cancelled() {
                return Err((Refusal::Stopped, msg));
            }
            if passed(deadline) {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
                return Err((Refusal::Timeout, msg));
            }
            if backoff.snooze() {
                let listener = self.not_full.listen();
                let _counted = self.count_room_waiter();
                msg = match self.push(msg) {
                    Ok(()) => return Ok(()),
                    Err(SendError::Full(m)) => m,
                    Err(e) => return Err(e.into_refusal()),
                };
                let _ = listener.wait_timeout(park_slice(deadline));
            }
            msg = match self.push(msg) {
                Ok(()) => return Ok(()),
                Err(SendError::Full(m)) => m,
                Err(e) => return Err(e.into_refusal()),
            };
        }
    }

    /// Pushes from the front of `pending` as many as fit, under one lock,
    /// at most one clock read and one notification. `Err(())` if closed.
    pub fn push_batch(&self, pending: &mut VecDeque<T>) -> Result<usize, ()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(());
        }
        let mut tx = self.tx.lock();
        let TxSide { producer, sampler, .. } = &mut *tx;
        let mut now = 0;
        // As many as there is room for now (the consumer only frees more),
        // so every message the sampler counts goes in, published together.
        let room = producer.room_for(pending.len());
        // Taken from `pending` one at a time as the ring pulls them, so
        // none can be lost should it take fewer.
        let run = std::iter::from_fn(|| pending.pop_front()).take(room);
        let n = producer.push_iter(run.map(|msg| Entry {
            msg,
            at: sampler.stamp_in_batch(&mut now),
        }));
        if n > 0 {
            // Counted under the producer lock (see the module invariants).
            add_held(&self.enqueued, n as u64);
        }
        let waiting = tx.data_waiters > 0;
        drop(tx);
        if n > 0 && waiting {
            self.not_empty.notify_additional(n);
        }
        Ok(n)
    }

    /// One attempt at the rest of a batch: `Some` when the send is over
    /// (everything sent; the ring closed, counted as a closed rejection;
    /// or no room under a strategy that never waits, counted as rejected),
    /// with the messages not sent handed back in order; `None` when it
    /// must wait for room.
    fn try_batch(&self, pending: &mut VecDeque<T>) -> Option<Result<(), (Refusal, Vec<T>)>> {
        if self.push_batch(pending).is_err() {
            self.closed_rejections.fetch_add(1, Ordering::Relaxed);
            return Some(Err((Refusal::Closed, std::mem::take(pending).into())));
        }
        if pending.is_empty() {
            return Some(Ok(()));
        }
        if self.config.backpressure != Backpressure::Block {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Some(Err((Refusal::Full, std::mem::take(pending).into())));
        }
        None
    }

    /// Sends all of `pending` in order (see [`Transport::send_batch`](super::transport::Transport::send_batch)).
    pub(super) async fn send_batch(
        &self,
        mut pending: VecDeque<T>,
        deadline: Option<Instant>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), (Refusal, Vec<T>)> {
        let mut sleep = deadline.map(Sleep::until);
        loop {
            if let Some(done) = self.try_batch(&mut pending) {
                return done;
            }
            let listener = self.not_full.listen();
            let _counted = self.count_room_waiter();
            if self.push_batch(&mut pending).is_ok() && pending.is_empty() {
                return Ok(());
            }
            match wait_async_or_stop(listener, sleep.as_mut(), stop).await {
                Some(true) => {}
                Some(false) => {
                    // The last attempt: under `Block` (checked above) it
                    // ends the send or leaves it timed out.
                    if let Some(done) = self.try_batch(&mut pending) {
                        return done;
                    }
                    self.timed_out.fetch_add(1, Ordering::Relaxed);
                    return Err((Refusal::Timeout, pending.into()));
                }
                None => return Err((Refusal::Stopped, pending.into())),
            }
        }
    }

    /// Like `send_batch`, on a plain thread: spin, yield, then park in
    /// slices, until everything is sent, close, cancellation or `deadline`.
    pub fn send_batch_spin(
        &self,
        mut pending: VecDeque<T>,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<(), (Refusal, Vec<T>)> {
        let mut backoff = Backoff::default();
        loop {
            if let Some(done) = self.try_batch(&mut pending) {
                return done;
            }
            if cancel.is_cancelled() {
                return Err((Refusal::Stopped, pending.into()));
            }
            if passed(deadline) {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
                return Err((Refusal::Timeout, pending.into()));
            }
            if backoff.snooze() {
                let listener = self.not_full.listen();
                let _counted = self.count_room_waiter();
                if self.push_batch(&mut pending).is_ok() && pending.is_empty() {
                    return Ok(());
                }
                let _ = listener.wait_timeout(park_slice(deadline));
            }
        }
    }

    /// Pops up to `max` into `out` under one lock; 0 when paused or empty.
    pub fn pop_batch(&self, max: usize, out: &mut Vec<T>) -> usize {
        if self.paused.load(Ordering::Acquire) || max == 0 {
            return 0;
        }
        let mut rx = self.rx.lock();
        let RxSide { consumer, waits, .. } = &mut *rx;
        let mut now = 0;
        // One release of the slots for the whole batch (see `pop_each`).
        let n = consumer.pop_each(max, |entry| {
            if entry.at != 0 {
                if now == 0 {
                    now = clock::now();
                }
                let _ = waits.record(clock::ns_between(entry.at, now).clamp(1, MAX_RECORDED_WAIT_NS));
            }
            out.push(entry.msg);
        });
        if n > 0 {
            // Counted under the consumer lock (see the module invariants).
            add_held(&self.dequeued, n as u64);
            // What the consumer saw when it started: those it took and
            // those it knows are left.
            self.note_depth(n + consumer.observed_len());
        }
        let waiting = rx.room_waiters > 0;
        drop(rx);
        if n > 0 && waiting {
            self.not_full.notify_additional(n);
        }
        n
    }

    pub fn try_recv(&self) -> Result<T, RecvError> {
        let mut out = None;
        match self.try_recv_into(&mut out) {
            Ok(true) => out.ok_or(RecvError::Empty),
            Ok(false) => Err(RecvError::Empty),
            Err(e) => Err(e),
        }
    }

    /// One receive attempt that leaves the message in `out` (left as it
    /// was when none came): `Ok(true)` when one was taken, `Ok(false)` when
    /// the ring is empty, `Err(Closed)` once closed and drained. The spin
    /// receives build on this, not on a returned message: each layer that
    /// unwraps and re-wraps a returned message copies all of its bytes,
    /// and on the spin tier those copies are on every round trip's path.
    #[inline]
    fn try_recv_into(&self, out: &mut Option<T>) -> Result<bool, RecvError> {
        if self.paused.load(Ordering::Acquire) {
            return if self.closed.load(Ordering::Acquire) {
                Err(RecvError::Closed)
            } else {
                Ok(false)
            };
        }
        // Read `closed` before popping: a message pushed before the close is
        // then seen by this pop, so `Closed` is only reported when drained.
        let closed = self.closed.load(Ordering::Acquire);
        let mut rx = self.rx.lock();
        // Straight from the slot into `out` (see `Consumer::pop_with`).
        let popped = rx.consumer.pop_with(|entry| {
            *out = Some(entry.msg);
            entry.at
        });
        match popped {
            Ok(at) => {
                if at != 0 {
                    let ns = clock::ns_between(at, clock::now());
                    let _ = rx.waits.record(ns.clamp(1, MAX_RECORDED_WAIT_NS));
                }
                // Counted under the consumer lock (see the module invariants).
                add_held(&self.dequeued, 1);
                // This one and those the consumer knows are behind it.
                self.note_depth(1 + rx.consumer.observed_len());
                let waiting = rx.room_waiters > 0;
                drop(rx);
                if waiting {
                    self.not_full.notify_additional(1);
                }
                Ok(true)
            }
            Err(_) if closed => Err(RecvError::Closed),
            Err(_) => Ok(false),
        }
    }

    async fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        // The other end is a spin kernel's own thread, which answers within
        // microseconds: look again a while before registering, so that a
        // reply met here costs no wake-up of a sleeping worker thread.
        let found = spin_for(deadline, |_| match self.try_recv() {
            Err(RecvError::Empty) => None,
            done => Some(done),
        });
        if let Some(done) = found {
            return done;
        }
        let mut sleep = deadline.map(Sleep::until);
        loop {
            match self.try_recv() {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            let listener = self.not_empty.listen();
            let _counted = self.count_data_waiter();
            match self.try_recv() {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            if !wait_async(listener, sleep.as_mut()).await {
                return match self.try_recv() {
                    Err(RecvError::Empty) => Err(RecvError::Timeout),
                    done => done,
                };
            }
        }
    }

    pub async fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).await
    }

    pub async fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_until(deadline_after(timeout)).await
    }

    /// Receives on a kernel thread: polls, then yields, then parks in slices,
    /// until a message, close (once drained) or cancellation. `Ok(None)`
    /// when `deadline` passed. (The runtime's receives use
    /// [`recv_spin_into`](Self::recv_spin_into); this shape is the tests'.)
    #[cfg(test)]
    pub fn recv_spin(&self, cancelled: impl Fn() -> bool, deadline: Option<Instant>) -> Result<Option<T>, Interrupted> {
        let mut out = None;
        self.recv_spin_into(&mut out, cancelled, deadline)?;
        Ok(out)
    }

    /// Receives on a kernel thread (polls, then yields, then parks in
    /// slices, until a message, close once drained, or cancellation),
    /// leaving the message in `out` (see [`try_recv_into`](Self::try_recv_into)):
    /// `Ok(true)` when one was taken, `Ok(false)` when `deadline` passed.
    #[inline]
    pub fn recv_spin_into(
        &self,
        out: &mut Option<T>,
        cancelled: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Result<bool, Interrupted> {
        let mut backoff = Backoff::default();
        loop {
            if cancelled() {
                return Err(Interrupted::Cancelled);
            }
            match self.try_recv_into(out) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(_) => return Err(Interrupted::Closed),
            }
            if passed(deadline) {
                return Ok(false);
            }
            if backoff.snooze() {
                let listener = self.not_empty.listen();
                let _counted = self.count_data_waiter();
                match self.try_recv_into(out) {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(_) => return Err(Interrupted::Closed),
                }
                let _ = listener.wait_timeout(park_slice(deadline));
            }
        }
    }

    /// Counts `n` messages handed straight to a waiting call, past the ring:
    /// enqueued and dequeued at once, under both locks so that no snapshot
    /// sees one count without the other.
    pub fn count_handed_over(&self, n: u64) {
        let tx = self.tx.lock();
        let rx = self.rx.lock();
        add_held(&self.enqueued, n);
        add_held(&self.dequeued, n);
        drop(rx);
        drop(tx);
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.not_empty.notify(usize::MAX);
        self.not_full.notify(usize::MAX);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
        // A pop already past its pause check finishes under the consumer
        // lock; taking it here makes `pause` return after that pop.
        drop(self.rx.lock());
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.not_empty.notify(usize::MAX);
    }

    pub fn clear(&self) -> Vec<T> {
        let mut rx = self.rx.lock();
        let mut out = Vec::new();
        while let Ok(entry) = rx.consumer.pop() {
            out.push(entry.msg);
        }
        add_held(&self.dequeued, out.len() as u64);
        drop(rx);
        self.not_full.notify(usize::MAX);
        out
    }

    /// A consistent snapshot: both halves are locked while the counters
    /// are read, so no push or pop is half-counted. A ring has no priority
    /// bands: every queued message is reported in the normal band.
    pub fn stats(&self) -> QueueStats {
        let tx = self.tx.lock();
        let rx = self.rx.lock();
        let enqueued = self.enqueued.load(Ordering::Acquire);
        let dequeued = self.dequeued.load(Ordering::Acquire);
        let depth = usize::try_from(enqueued.saturating_sub(dequeued)).unwrap_or(usize::MAX);
        // The depth read now is one the ring has (both halves are locked).
        self.note_depth(depth);
        let peak_depth = self.peak.load(Ordering::Relaxed);
        drop(rx);
        drop(tx);
        let mut band_depths = [0; 4];
        band_depths[crate::message::PriorityBand::Normal.index()] = depth;
        QueueStats {
            capacity: self.config.capacity,
            enqueued,
            dequeued,
            dropped: 0,
            rejected: self.rejected.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            closed_rejections: self.closed_rejections.load(Ordering::Relaxed),
            depth,
            peak_depth,
            band_depths,
            // A ring's waits spin, yield and park in slices on both sides
            // without a waiter list: not counted.
            receive_sleeps: 0,
            send_sleeps: 0,
        }
    }
}

/// One park of a spinning wait: [`PARK_SLICE`], or less if `deadline` is nearer.
fn park_slice(deadline: Option<Instant>) -> Duration {
    deadline.map_or(PARK_SLICE, |d| {
        d.saturating_duration_since(Instant::now()).min(PARK_SLICE)
    })
}

/// Whether `deadline` has passed. Reads the clock only when there is one:
/// a polling loop without a deadline then polls at the ring's own pace
/// (`Instant::now` costs about 40 ns on the benchmark VMs).
#[inline]
fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Spin, then yield, then tell the caller to park.
#[derive(Default)]
struct Backoff {
    step: u32,
}

impl Backoff {
    /// One idle step; returns true once the caller should park.
    fn snooze(&mut self) -> bool {
        if self.step < SPIN_LIMIT {
            std::hint::spin_loop();
        } else if self.step < SPIN_LIMIT + YIELD_LIMIT {
            std::thread::yield_now();
        } else {
            return true;
        }
        self.step += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageHeader;
    use std::sync::Arc;

    #[derive(Debug, crate::Message)]
    struct M {
        n: u64,
        header: MessageHeader,
    }

    fn m(n: u64) -> M {
        M {
            n,
            header: MessageHeader::new(),
        }
    }

    fn ring(capacity: usize, backpressure: Backpressure) -> RingChannel<M> {
        RingChannel::new(QueueConfig::new(capacity).with_backpressure(backpressure)).unwrap()
    }

    #[test]
    fn fifo_rejection_and_accounting() {
        let r = ring(3, Backpressure::Reject); // rounded up to 4
        assert_eq!(r.config.capacity, 4);
        for i in 0..4 {
            r.try_send(m(i)).unwrap();
        }
        match r.try_send(m(9)) {
            Err(SendError::Full(back)) => assert_eq!(back.n, 9),
            other => panic!("expected Full, got {other:?}"),
        }
        for i in 0..4 {
            assert_eq!(r.try_recv().unwrap().n, i);
        }
        assert!(matches!(r.try_recv(), Err(RecvError::Empty)));
        let s = r.stats();
        assert_eq!(
            (s.enqueued, s.dequeued, s.rejected, s.depth, s.peak_depth),
            (4, 4, 1, 0, 4)
        );
        assert_eq!(r.rx.lock().waits.len(), 4);
    }

    /// The peak comes from what the consumer sees when it takes messages,
    /// from a push that finds the ring full and from snapshots; each is a
    /// depth the ring really had.
    #[test]
    fn peak_is_noted_by_the_consumer_a_full_push_and_a_snapshot() {
        // The consumer: three queued, taken with no snapshot in between.
        let r = ring(8, Backpressure::Reject);
        for i in 0..3 {
            r.try_send(m(i)).unwrap();
        }
        for _ in 0..3 {
            r.try_recv().unwrap();
        }
        assert_eq!(r.stats().peak_depth, 3);
        // A batch pop: five queued, two taken, then the rest.
        let r = ring(8, Backpressure::Reject);
        for i in 0..5 {
            r.try_send(m(i)).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(r.pop_batch(2, &mut out), 2);
        assert_eq!(r.pop_batch(8, &mut out), 3);
        assert_eq!(r.stats().peak_depth, 5);
        // A push that finds the ring full (capacity 4), nothing taken since.
        let r = ring(4, Backpressure::Reject);
        let mut pending: VecDeque<M> = (0..4).map(m).collect();
        assert_eq!(r.push_batch(&mut pending), Ok(4));
        assert!(matches!(r.try_send(m(9)), Err(SendError::Full(_))));
        assert_eq!(r.peak.load(Ordering::Relaxed), 4);
        // A snapshot: two queued, never taken.
        let r = ring(4, Backpressure::Reject);
        r.try_send(m(1)).unwrap();
        r.try_send(m(2)).unwrap();
        assert_eq!(
            r.peak.load(Ordering::Relaxed),
            0,
            "a push alone reads nothing of the consumer"
        );
        let s = r.stats();
        assert_eq!((s.depth, s.peak_depth), (2, 2));
        assert!(s.is_consistent());
    }

    #[test]
    fn pause_close_and_clear() {
        let r = ring(4, Backpressure::Block);
        r.try_send(m(1)).unwrap();
        r.pause();
        assert!(matches!(r.try_recv(), Err(RecvError::Empty)));
        r.resume();
        assert_eq!(r.try_recv().unwrap().n, 1);
        r.try_send(m(2)).unwrap();
        r.close();
        assert!(matches!(r.try_send(m(3)), Err(SendError::Closed(_))));
        assert_eq!(r.try_recv().unwrap().n, 2, "receivers drain after close");
        assert!(matches!(r.try_recv(), Err(RecvError::Closed)));
        let r = ring(4, Backpressure::Block);
        r.try_send(m(1)).unwrap();
        r.try_send(m(2)).unwrap();
        assert_eq!(r.clear().len(), 2);
        let s = r.stats();
        assert_eq!(s.enqueued, s.dequeued + s.depth as u64);
    }

    /// An async receiver and an async sender that keep putting each other
    /// to sleep on a ring of two (async waits have no time slices: a lost
    /// notification would hang one of them): every message arrives, in
    /// order. Pauses of either side make the other go to sleep (past its
    /// first look and its spinning), on both the data and the room side.
    #[test]
    fn async_waiters_on_both_sides_are_always_woken() {
        const N: u64 = 3_000;
        let r = Arc::new(ring(2, Backpressure::Block));
        let (r2, r3) = (r.clone(), r.clone());
        let receiver = std::thread::spawn(move || {
            futures::executor::block_on(async {
                let mut got = Vec::new();
                for i in 0..N {
                    got.push(r2.recv().await.expect("open").n);
                    if i % 7 == 3 {
                        std::thread::sleep(Duration::from_micros(60));
                    }
                }
                got
            })
        });
        let sender = std::thread::spawn(move || {
            futures::executor::block_on(async {
                for i in 0..N {
                    if i % 5 == 1 {
                        std::thread::sleep(Duration::from_micros(60));
                    }
                    r3.send_until(m(i), None, None).await.map_err(|(why, _)| why)?;
                }
                Ok::<(), Refusal>(())
            })
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let got = receiver.join().expect("the receiver");
            let sent = sender.join().expect("the sender");
            let _ = tx.send((got, sent));
        });
        let (got, sent) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a waiter was never woken: a notification was lost");
        assert_eq!(sent, Ok(()));
        assert_eq!(got, (0..N).collect::<Vec<_>>());
        let s = r.stats();
        assert_eq!((s.enqueued, s.dequeued, s.depth), (N, N, 0));
        assert_eq!(r.tx.lock().data_waiters, 0, "every counted waiter uncounted itself");
        assert_eq!(r.rx.lock().room_waiters, 0);
    }

    #[test]
    fn spin_receive_parks_and_wakes_and_sees_cancel() {
        let r = Arc::new(ring(8, Backpressure::Block));
        let cancel = CancellationToken::new();
        let (r2, c2) = (r.clone(), cancel.clone());
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                match r2.recv_spin(|| c2.is_cancelled(), None) {
                    Ok(Some(msg)) => got.push(msg.n),
                    Ok(None) => unreachable!("no deadline"),
                    Err(why) => return (got, why),
                }
            }
        });
        for i in 0..1000 {
            let mut msg = m(i);
            loop {
                match r.try_send(msg) {
                    Ok(()) => break,
                    Err(e) => msg = e.into_inner(),
                }
                std::thread::yield_now();
            }
        }
        // Long enough for the consumer to reach the parked state.
        std::thread::sleep(Duration::from_millis(30));
        cancel.cancel();
        let (got, why) = consumer.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert_eq!(why, Interrupted::Cancelled);
    }

    #[test]
    fn spin_send_blocks_until_room_then_sees_close() {
        let r = Arc::new(ring(2, Backpressure::Block));
        let cancel = CancellationToken::new();
        r.try_send(m(0)).unwrap();
        r.try_send(m(1)).unwrap();
        let (r2, c2) = (r.clone(), cancel.clone());
        let producer = std::thread::spawn(move || r2.send_spin(m(2), &c2, None).map_err(|(why, _)| why));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r.try_recv().unwrap().n, 0);
        assert_eq!(producer.join().unwrap(), Ok(()));
        let (r2, c2) = (r.clone(), cancel.clone());
        r.try_send(m(3)).ok();
        let producer = std::thread::spawn(move || r2.send_spin(m(4), &c2, None).map_err(|(why, _)| why));
        std::thread::sleep(Duration::from_millis(20));
        r.close();
        assert_eq!(producer.join().unwrap(), Err(Refusal::Closed));
    }

    #[test]
    fn spin_sends_honour_their_deadline_and_hand_back_what_was_not_sent() {
        let r = ring(2, Backpressure::Block);
        let cancel = CancellationToken::new();
        r.try_send(m(0)).unwrap();
        r.try_send(m(1)).unwrap();
        let deadline = Some(Instant::now() + Duration::from_millis(30));
        match r.send_spin(m(2), &cancel, deadline) {
            Err((Refusal::Timeout, back)) => assert_eq!(back.n, 2),
            other => panic!("expected a timeout, got {other:?}"),
        }
        let deadline = Some(Instant::now() + Duration::from_millis(30));
        match r.send_batch_spin((3..6).map(m).collect(), &cancel, deadline) {
            Err((Refusal::Timeout, rest)) => assert_eq!(rest.iter().map(|x| x.n).collect::<Vec<_>>(), [3, 4, 5]),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(r.stats().timed_out, 2);
        cancel.cancel();
        match r.send_spin(m(6), &cancel, None) {
            Err((Refusal::Stopped, back)) => assert_eq!(back.n, 6),
            other => panic!("expected a stop, got {other:?}"),
        }
        assert!(r.stats().is_consistent(), "{:?}", r.stats());
    }

    /// Issue 16 row 12: the peak once read 9 on a capacity of 8, so
    /// `is_consistent()` was false under load. Two senders, one receiver and
    /// a reader of snapshots race here; every snapshot must be consistent.
    #[test]
    fn statistics_stay_exact_under_concurrency() {
        const PER_SENDER: u64 = 50_000;
        let r = Arc::new(ring(8, Backpressure::Block));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let cancel = CancellationToken::new();
                    for i in 0..PER_SENDER {
                        if i.is_multiple_of(64) {
                            let batch: VecDeque<M> = (0..8).map(m).collect();
                            r.send_batch_spin(batch, &cancel, None).unwrap();
                        } else {
                            r.send_spin(m(i), &cancel, None).unwrap();
                        }
                    }
                })
            })
            .collect();
        let expected = 2 * (PER_SENDER + PER_SENDER.div_ceil(64) * 7);
        let (r2, done2) = (r.clone(), done.clone());
        let reader = std::thread::spawn(move || {
            let mut snapshots = 0u64;
            while !done2.load(Ordering::Acquire) {
                let s = r2.stats();
                assert!(s.is_consistent() && s.peak_depth <= s.capacity, "{s:?}");
                snapshots += 1;
            }
            snapshots
        });
        let cancel = CancellationToken::new();
        let mut got = 0u64;
        let mut batch = Vec::new();
        while got < expected {
            if got.is_multiple_of(3) {
                batch.clear();
                got += r.pop_batch(5, &mut batch) as u64;
            } else if let Ok(Some(_)) =
                r.recv_spin(|| cancel.is_cancelled(), Some(Instant::now() + Duration::from_secs(10)))
            {
                got += 1;
            }
        }
        for s in senders {
            s.join().unwrap();
        }
        done.store(true, Ordering::Release);
        assert!(reader.join().unwrap() > 0);
        let s = r.stats();
        assert!(s.is_consistent(), "{s:?}");
        assert_eq!((s.enqueued, s.dequeued, s.depth), (expected, expected, 0));
        assert!(s.peak_depth <= 8 && s.peak_depth > 0, "{s:?}");
    }

    #[test]
    fn recv_spin_deadline_gives_none() {
        let r = ring(2, Backpressure::Block);
        let cancel = CancellationToken::new();
        let got = r
            .recv_spin(
                || cancel.is_cancelled(),
                Some(Instant::now() + Duration::from_millis(10)),
            )
            .unwrap();
        assert!(got.is_none());
    }

    /// A ring's async receive looks again before it sleeps: the shared
    /// cases of [`wait_checks`](crate::queue::wait_checks).
    #[test]
    fn async_receive_looks_again_then_sleeps() {
        let r = Arc::new(ring(4, Backpressure::Block));
        let (tx, closer) = (r.clone(), r.clone());
        crate::queue::wait_checks::looks_again_then_sleeps(
            |deadline| {
                let r = r.clone();
                async move { r.recv_until(deadline).await.map(|m| m.n) }
            },
            move |n| tx.try_send(m(n)).unwrap(),
            move || closer.close(),
        );
        let s = r.stats();
        assert_eq!((s.enqueued, s.dequeued), (2, 2));
    }
}
