//! The queue's state behind its lock: the bands, the flags, the counters and
//! the registered waiters. Everything here runs with the lock held and never
//! waits, wakes anyone or drops a message (a message's destructor and a
//! waker may run arbitrary code, so dropped messages and the wakers to wake
//! are handed out to be dropped or woken after the lock is released).

use std::collections::VecDeque;
use std::task::Waker;

use hdrhistogram::Histogram;

use crate::runtime::telemetry::histogram::AtomicHistogram;

use super::band::Band;
use super::clock::{self, Stamp};
use super::fifo::Fifo;
use super::sampler::{self, Sampler};
use super::{Backpressure, QueueStats, RecvError};
use crate::{Message, PriorityBand};

/// Significant digits of the wait histogram.
const WAIT_SIGFIG: u8 = 3;
/// Waits are recorded saturated at one hour, so the histogram's memory stays bounded.
pub(crate) const MAX_RECORDED_WAIT_NS: u64 = 3_600 * 1_000_000_000;
/// Initial room per band; bands grow on demand up to the capacity.
const INITIAL_BAND_ROOM: usize = 16;

/// Tasks and threads waiting for one side of the queue, oldest first.
///
/// Invariant: each waiter has at most one entry (keyed by the id it was
/// given); a notifier removes the entry it wakes, so a waiter whose entry is
/// gone has been woken and must either act or pass the wake-up on.
#[derive(Default)]
pub(crate) struct Waiters {
    list: VecDeque<(u64, Waker)>,
    next_id: u64,
    /// Entries added so far: each one a waiter that went to sleep (a first
    /// wait, or a wait again after a wake-up that found nothing for it).
    sleeps: u64,
}

impl Waiters {
    /// Registers (or refreshes) the waiter `id` (a fresh id if `None`).
    #[inline(always)]
    pub(crate) fn register(&mut self, id: &mut Option<u64>, waker: &Waker) {
        if let Some(me) = *id {
            if let Some((_, w)) = self.list.iter_mut().find(|(i, _)| *i == me) {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
                return;
            }
        } else {
            *id = Some(self.next_id);
            self.next_id = self.next_id.wrapping_add(1);
        }
        if let Some(me) = *id {
            self.list.push_back((me, waker.clone()));
            self.sleeps += 1;
        }
    }

    /// Removes waiter `id`; false if it was not registered (it was woken).
    #[inline(always)]
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        match self.list.iter().position(|(i, _)| *i == id) {
            Some(pos) => {
                self.list.remove(pos);
                true
            }
            None => false,
        }
    }

    /// The oldest waiter, removed.
    #[inline(always)]
    pub(crate) fn take_one(&mut self) -> Option<Waker> {
        self.list.pop_front().map(|(_, w)| w)
    }

    /// Up to `n` of the oldest waiters, removed (into `out`).
    pub(crate) fn take(&mut self, n: usize, out: &mut Wake) {
        for _ in 0..n {
            match self.list.pop_front() {
                Some((_, w)) => out.push(w),
                None => break,
            }
        }
    }
}

/// Wakers to wake once the lock is released: none, one (the common case,
/// no allocation), or many.
#[derive(Default)]
pub(crate) enum Wake {
    #[default]
    None,
    One(Waker),
    Many(Vec<Waker>),
}

impl Wake {
    #[inline(always)]
    pub(crate) fn push(&mut self, w: Waker) {
        match self {
            // The common case, written in place.
            Wake::None => *self = Wake::One(w),
            Wake::Many(all) => all.push(w),
            Wake::One(_) => {
                if let Wake::One(first) = std::mem::take(self) {
                    *self = Wake::Many(vec![first, w]);
                }
            }
        }
    }

    #[inline(always)]
    pub(crate) fn wake(self) {
        match self {
            Wake::None => {}
            Wake::One(w) => w.wake(),
            Wake::Many(all) => all.into_iter().for_each(Waker::wake),
        }
    }
}

/// What a send does when it finds the queue full under [`Backpressure::Block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFull {
    /// Fail with `Full`, counted as rejected (`try_send`).
    Reject,
    /// Return `MustWait`, not counted: the caller will wait and retry.
    Wait,
    /// Fail with `Timeout`, counted as timed out (the caller's deadline passed).
    Timeout,
}

/// The result of [`State::push`].
pub(crate) enum Push<T> {
    /// The message was queued.
    Queued,
    /// The message was queued and this older one was dropped to make room.
    Evicted(T),
    /// The message was accepted and dropped at once: its band is lower than
    /// every queued message's band.
    DroppedIncoming(T),
    /// Not queued: full (counted as `rejected`).
    Full(T),
    /// Not queued: full under [`Backpressure::Block`] with [`OnFull::Wait`]
    /// (not counted; the caller waits and retries).
    MustWait(T),
    /// Not queued: the deadline passed (counted as `timed_out`).
    Timeout(T),
    /// Not queued: the queue is closed (counted as `closed_rejections`).
    Closed(T),
}

/// Laid out in declaration order (`repr(C)`): what every push and pop
/// reads and writes comes first, so it shares the cache line of the lock
/// word in front of it (see `Shared` in the parent module) and a message
/// moving between two cores moves as few lines as possible.
#[repr(C)]
pub(crate) struct State<T> {
    len: usize,
    enqueued: u64,
    dequeued: u64,
    capacity: usize,
    /// Which messages get an enqueue stamp and their wait recorded.
    sampler: Sampler,
    closed: bool,
    paused: bool,
    backpressure: Backpressure,
    /// Receivers waiting for a deliverable message.
    pub(crate) recv_waiters: Waiters,
    /// Senders waiting for room.
    pub(crate) send_waiters: Waiters,
    peak: usize,
    dropped: u64,
    rejected: u64,
    timed_out: u64,
    closed_rejections: u64,
    /// Recorded only under the queue's lock; read without it.
    waits: std::sync::Arc<AtomicHistogram>,
    /// One FIFO per band, indexed by [`PriorityBand::index`].
    bands: [Band<T>; PriorityBand::COUNT],
}

impl<T> State<T> {
    /// `capacity` must already be validated.
    pub(crate) fn new(
        capacity: usize,
        backpressure: Backpressure,
        waits: std::sync::Arc<AtomicHistogram>,
        wait_sample_every: u32,
    ) -> Self {
        let room = capacity.min(INITIAL_BAND_ROOM);
        State {
            bands: std::array::from_fn(|_| Band::with_capacity(room)),
            len: 0,
            capacity,
            backpressure,
            closed: false,
            paused: false,
            enqueued: 0,
            dequeued: 0,
            dropped: 0,
            rejected: 0,
            timed_out: 0,
            closed_rejections: 0,
            peak: 0,
            waits,
            sampler: Sampler::new(wait_sample_every),
            recv_waiters: Waiters::default(),
            send_waiters: Waiters::default(),
        }
    }

    /// The address just past the fields every push and pop touches.
    #[cfg(test)]
    pub(crate) fn hot_fields_end(&self) -> usize {
        std::ptr::addr_of!(self.sampler) as usize + std::mem::size_of::<Sampler>()
    }

    /// Whether a receive would find a message now.
    #[inline]
    pub(crate) fn deliverable(&self) -> bool {
        !self.paused && self.len > 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Marks the queue closed; returns whether it was open.
    pub(crate) fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }

    /// Sets the paused flag; returns the previous value.
    pub(crate) fn set_paused(&mut self, paused: bool) -> bool {
        std::mem::replace(&mut self.paused, paused)
    }

    /// Applies one send to the state, following the backpressure strategy.
    #[inline(always)]
    pub(crate) fn push(&mut self, msg: T, on_full: OnFull) -> Push<T>
    where
        T: Message,
    {
        if self.closed {
            self.closed_rejections += 1;
            return Push::Closed(msg);
        }
        let band = msg.band().index();
        if self.len < self.capacity {
            self.enqueue(band, msg);
            return Push::Queued;
        }
        match self.backpressure {
            Backpressure::Block => match on_full {
                OnFull::Reject => {
                    self.rejected += 1;
                    Push::Full(msg)
                }
                OnFull::Wait => Push::MustWait(msg),
                OnFull::Timeout => {
                    self.timed_out += 1;
                    Push::Timeout(msg)
                }
            },
            Backpressure::Reject => {
                self.rejected += 1;
                Push::Full(msg)
            }
            Backpressure::DropOldest => {
                // The queue is full, so (capacity >= 1) some band is non-empty.
                let lowest = self.bands.iter().position(|b| !b.is_empty());
                match lowest {
                    // A dropped message's wait is not recorded.
                    Some(lowest) if lowest <= band => match self.bands[lowest].pop_evicted() {
                        Some(old) => {
                            self.len -= 1;
                            self.dropped += 1;
                            self.enqueue(band, msg);
                            Push::Evicted(old)
                        }
                        // Unreachable (the band is non-empty); treat as room.
                        None => {
                            self.enqueue(band, msg);
                            Push::Queued
                        }
                    },
                    _ => {
                        // Every queued message outranks the incoming one.
                        self.enqueued += 1;
                        self.dropped += 1;
                        Push::DroppedIncoming(msg)
                    }
                }
            }
        }
    }

    /// Queues from the front of `pending` as many messages as there is room
    /// for, in order, each in its band; returns how many. The sampled ones
    /// share one clock reading.
    /// Queues nothing when closed: the messages left in `pending` (all of
    /// them then, or those past the room) go through [`push`](Self::push),
    /// which applies the backpressure strategy and counts what it refuses.
    /// Counts as `push` does for each queued message.
    pub(crate) fn push_fitting(&mut self, pending: &mut Fifo<T>) -> usize
    where
        T: Message,
    {
        if self.closed {
            return 0;
        }
        let n = self.capacity.saturating_sub(self.len).min(pending.len());
        if n == 0 {
            return 0;
        }
        // Runs of consecutive messages of one band move into it together.
        let mut now = 0;
        let mut left = n;
        while let Some(first) = pending.front() {
            if left == 0 {
                break;
            }
            let band = first.band();
            // The ring is the sender's vector, so its front slice usually
            // holds the whole run: scanned as a slice.
            let (head, tail) = pending.as_slices();
            let differs = |m: &T| m.band() != band;
            let run = match head[..left.min(head.len())].iter().position(differs) {
                Some(p) => p,
                None if head.len() >= left => left,
                None => {
                    head.len()
                        + tail[..left - head.len()]
                            .iter()
                            .position(differs)
                            .unwrap_or(left - head.len())
                }
            };
            let (measured, picks) = self.sampler.picks(run as u64);
            if measured > 0 && now == 0 {
                now = sampler::now();
            }
            self.bands[band.index()].append(pending, run, picks, now);
            left -= run;
        }
        self.len += n;
        self.enqueued += n as u64;
        if self.len > self.peak {
            self.peak = self.len;
        }
        n
    }

    #[inline(always)]
    fn enqueue(&mut self, band: usize, msg: T) {
        let at = self.sampler.stamp();
        self.bands[band].push(msg, at);
        self.len += 1;
        self.enqueued += 1;
        if self.len > self.peak {
            self.peak = self.len;
        }
    }

    /// Takes the oldest message of the highest non-empty band, unless
    /// paused; records its wait if it was stamped.
    pub(crate) fn pop(&mut self) -> Result<T, RecvError> {
        let mut out = None;
        self.pop_into(&mut out)?;
        out.ok_or(RecvError::Empty)
    }

    /// [`pop`](Self::pop) moving the message into `out`: copied once, from
    /// its slot to the place the receiver gives, where a returned message
    /// would be copied again at every layer on its way out.
    #[inline(always)]
    pub(crate) fn pop_into(&mut self, out: &mut Option<T>) -> Result<(), RecvError> {
        if self.paused || self.len == 0 {
            return Err(if self.closed {
                RecvError::Closed
            } else {
                RecvError::Empty
            });
        }
        let waits = &*self.waits;
        let popped = self.bands.iter_mut().rev().find(|b| !b.is_empty()).is_some_and(|band| {
            band.pop_into_then(out, |at| {
                record_wait(waits, clock::ns_between(at, clock::now()), 1);
            })
        });
        if popped {
            self.len -= 1;
            self.dequeued += 1;
            Ok(())
        } else {
            Err(if self.closed {
                RecvError::Closed
            } else {
                RecvError::Empty
            })
        }
    }

    /// Takes up to `max` messages in delivery order, unless paused; returns how many.
    ///
    /// Each band is drained as one run (highest band first, FIFO within a
    /// band), and sampled messages pushed together share a stamp, so the
    /// wait histogram gets one record per run of equal stamps (unstamped
    /// messages in between do not break a run). The clock is read once, if
    /// any message taken was stamped.
    pub(crate) fn pop_batch(&mut self, max: usize, out: &mut Vec<T>) -> usize {
        if self.paused || self.len == 0 || max == 0 {
            return 0;
        }
        let want = max.min(self.len);
        out.reserve(want);
        let waits = &*self.waits;
        let mut now = 0;
        let mut record = |at: Stamp, n: u64| {
            if n > 0 {
                if now == 0 {
                    now = clock::now();
                }
                record_wait(waits, clock::ns_between(at, now), n);
            }
        };
        // The current run of equal stamps: its stamp and length.
        let (mut run_at, mut run_len) = (0, 0u64);
        let mut taken = 0;
        for band in self.bands.iter_mut().rev() {
            let k = (want - taken).min(band.len());
            if k == 0 {
                continue;
            }
            band.take(k, out, |at| {
                if at != run_at {
                    record(run_at, run_len);
                    (run_at, run_len) = (at, 0);
                }
                run_len += 1;
            });
            taken += k;
            if taken == want {
                break;
            }
        }
        record(run_at, run_len);
        self.len -= taken;
        self.dequeued += taken as u64;
        taken
    }

    /// Removes everything queued, in delivery order (paused or not).
    /// Counts `n` messages handed straight from their sender to the
    /// receiver waiting for them (a reply to a runtime `call`): accepted and
    /// taken out at once, never queued.
    pub(crate) fn count_handed_over(&mut self, n: u64) {
        self.enqueued += n;
        self.dequeued += n;
    }

    pub(crate) fn clear(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for band in self.bands.iter_mut().rev() {
            band.clear_into(&mut out);
        }
        self.dequeued += out.len() as u64;
        self.len = 0;
        out
    }

    pub(crate) fn stats(&self) -> QueueStats {
        QueueStats {
            capacity: self.capacity,
            enqueued: self.enqueued,
            dequeued: self.dequeued,
            dropped: self.dropped,
            rejected: self.rejected,
            timed_out: self.timed_out,
            closed_rejections: self.closed_rejections,
            depth: self.len,
            peak_depth: self.peak,
            band_depths: std::array::from_fn(|i| self.bands[i].len()),
            receive_sleeps: self.recv_waiters.sleeps,
            send_sleeps: self.send_waiters.sleeps,
        }
    }

    #[cfg(test)]
    pub(crate) fn waits(&self) -> Histogram<u64> {
        self.waits.snapshot()
    }
}

/// Records `count` queue waits of `ns` nanoseconds, saturated at one
/// hour. Only under the queue's lock (the histogram's one writer).
#[inline]
fn record_wait(waits: &AtomicHistogram, ns: u64, count: u64) {
    waits.record_exclusive(ns.min(MAX_RECORDED_WAIT_NS), count);
}

/// An empty wait histogram: values in nanoseconds, 3 significant digits,
/// growing on demand up to [`MAX_RECORDED_WAIT_NS`].
pub(crate) fn new_wait_histogram() -> Histogram<u64> {
    // `Histogram::new(sigfig)` fails only for `sigfig > 5` (checked at compile
    // time here), and hdrhistogram has no infallible constructor, so this is
    // the one `expect` outside tests: no input can reach it.
    const _: () = assert!(WAIT_SIGFIG <= 5);
    #[allow(clippy::expect_used)]
    Histogram::new(WAIT_SIGFIG).expect("a histogram with 3 significant digits is always valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_the_histogram_and_saturate_at_one_hour() {
        let state: State<()> = State::new(1, Backpressure::Block, Default::default(), 1);
        record_wait(&state.waits, 0, 1);
        record_wait(&state.waits, 1_500, 1);
        record_wait(&state.waits, 10_000_000_000, 1); // 10 s
        record_wait(&state.waits, u64::MAX, 1);
        let h = state.waits();
        assert_eq!(h.len(), 4);
        assert_eq!(h.min(), 0);
        assert!(h.equivalent(h.value_at_quantile(0.5), 1_500));
        assert!(h.equivalent(h.value_at_quantile(0.75), 10_000_000_000));
        assert!(h.equivalent(h.max(), MAX_RECORDED_WAIT_NS), "{}", h.max());
    }

    #[derive(Debug, crate::Message)]
    struct M {
        n: u64,
        header: crate::MessageHeader,
    }

    proptest::proptest! {
        /// Moving the fitting front of a batch in runs gives the same queue
        /// as pushing its messages one by one, also when the batch's deque
        /// wraps around its buffer (as it does when a waiting send puts a
        /// message back in front) and runs cross the wrap.
        #[test]
        fn runs_fit_like_single_pushes_even_across_the_wrap(
            capacity in 1usize..24,
            skip in 0usize..32,
            priorities in proptest::collection::vec(proptest::sample::select(vec![0u8, 100, 200, 250]), 0..24),
        ) {
            let msg = |n: usize, p: u8| M { n: n as u64, header: crate::MessageHeader::with_priority(p) };
            // A ring whose contents start `skip` slots into its buffer, so
            // they wrap around its end when `skip + len` passes its room.
            let mut pending = Fifo::with_capacity(32);
            for _ in 0..skip {
                pending.push_back(msg(usize::MAX, 0));
            }
            for _ in 0..skip {
                pending.pop_front();
            }
            for (i, &p) in priorities.iter().enumerate() {
                pending.push_back(msg(i, p));
            }
            // The contents wrap past the ring's end when they pass its room.
            proptest::prop_assert_eq!(pending.as_slices().1.len(), (skip + priorities.len()).saturating_sub(32));
            let mut runs: State<M> = State::new(capacity, Backpressure::Reject, Default::default(), 2);
            let mut single: State<M> = State::new(capacity, Backpressure::Reject, Default::default(), 2);
            let moved = runs.push_fitting(&mut pending);
            let fitting = capacity.min(priorities.len());
            proptest::prop_assert_eq!(moved, fitting);
            proptest::prop_assert_eq!(pending.len(), priorities.len() - fitting);
            for (i, &p) in priorities.iter().enumerate().take(fitting) {
                proptest::prop_assert!(matches!(single.push(msg(i, p), OnFull::Reject), Push::Queued));
            }
            proptest::prop_assert_eq!(runs.stats(), single.stats());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            runs.pop_batch(usize::MAX, &mut a);
            single.pop_batch(usize::MAX, &mut b);
            let order = |v: &[M]| v.iter().map(|m| m.n).collect::<Vec<_>>();
            proptest::prop_assert_eq!(order(&a), order(&b));
            proptest::prop_assert_eq!(runs.waits().len(), single.waits().len());
        }
    }
}
