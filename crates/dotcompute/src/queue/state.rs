//! The queue's state behind its lock: the bands, the flags and the counters.
//! Everything here runs with the lock held and never waits, wakes anyone or
//! drops a message (a message's destructor may run arbitrary code, so dropped
//! messages are handed out to be dropped after the lock is released).

use std::collections::VecDeque;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::{Backpressure, QueueStats, RecvError};
use crate::{Message, PriorityBand};

/// Significant digits of the wait histogram.
const WAIT_SIGFIG: u8 = 3;
/// Waits are recorded saturated at one hour, so the histogram's memory stays bounded.
pub(crate) const MAX_RECORDED_WAIT_NS: u64 = 3_600 * 1_000_000_000;
/// Initial room per band; bands grow on demand up to the capacity.
const INITIAL_BAND_ROOM: usize = 16;

/// A queued message and when it was enqueued.
struct Entry<T> {
    msg: T,
    at: Instant,
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

pub(crate) struct State<T> {
    /// One FIFO per band, indexed by [`PriorityBand::index`].
    bands: [VecDeque<Entry<T>>; PriorityBand::COUNT],
    len: usize,
    capacity: usize,
    backpressure: Backpressure,
    closed: bool,
    paused: bool,
    enqueued: u64,
    dequeued: u64,
    dropped: u64,
    rejected: u64,
    timed_out: u64,
    closed_rejections: u64,
    peak: usize,
    waits: Histogram<u64>,
}

impl<T> State<T> {
    /// `capacity` must already be validated.
    pub(crate) fn new(capacity: usize, backpressure: Backpressure, waits: Histogram<u64>) -> Self {
        let room = capacity.min(INITIAL_BAND_ROOM);
        State {
            bands: std::array::from_fn(|_| VecDeque::with_capacity(room)),
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
        }
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
    pub(crate) fn push(&mut self, msg: T, now: Instant, on_full: OnFull) -> Push<T>
    where
        T: Message,
    {
        if self.closed {
            self.closed_rejections += 1;
            return Push::Closed(msg);
        }
        let band = msg.band().index();
        if self.len < self.capacity {
            self.enqueue(band, msg, now);
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
                    Some(lowest) if lowest <= band => match self.bands[lowest].pop_front() {
                        Some(old) => {
                            self.len -= 1;
                            self.dropped += 1;
                            self.enqueue(band, msg, now);
                            Push::Evicted(old.msg)
                        }
                        // Unreachable (the band is non-empty); treat as room.
                        None => {
                            self.enqueue(band, msg, now);
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

    fn enqueue(&mut self, band: usize, msg: T, at: Instant) {
        self.bands[band].push_back(Entry { msg, at });
        self.len += 1;
        self.enqueued += 1;
        if self.len > self.peak {
            self.peak = self.len;
        }
    }

    /// Takes the oldest message of the highest non-empty band, unless paused.
    pub(crate) fn pop(&mut self) -> Result<T, RecvError> {
        if self.paused || self.len == 0 {
            return Err(if self.closed {
                RecvError::Closed
            } else {
                RecvError::Empty
            });
        }
        let now = Instant::now();
        match self.pop_entry() {
            Some(entry) => {
                self.record_wait(now, entry.at);
                Ok(entry.msg)
            }
            None => Err(if self.closed {
                RecvError::Closed
            } else {
                RecvError::Empty
            }),
        }
    }

    /// Takes up to `max` messages in delivery order, unless paused; returns how many.
    pub(crate) fn pop_batch(&mut self, max: usize, out: &mut Vec<T>) -> usize {
        if self.paused || self.len == 0 || max == 0 {
            return 0;
        }
        let now = Instant::now();
        let mut taken = 0;
        out.reserve(max.min(self.len));
        while taken < max {
            match self.pop_entry() {
                Some(entry) => {
                    self.record_wait(now, entry.at);
                    out.push(entry.msg);
                    taken += 1;
                }
                None => break,
            }
        }
        taken
    }

    fn pop_entry(&mut self) -> Option<Entry<T>> {
        let entry = self.bands.iter_mut().rev().find_map(|b| b.pop_front())?;
        self.len -= 1;
        self.dequeued += 1;
        Some(entry)
    }

    fn record_wait(&mut self, now: Instant, at: Instant) {
        let ns = u64::try_from(now.saturating_duration_since(at).as_nanos()).unwrap_or(u64::MAX);
        self.record_wait_ns(ns);
    }

    fn record_wait_ns(&mut self, ns: u64) {
        let ns = ns.min(MAX_RECORDED_WAIT_NS);
        // `record` grows the histogram as needed (auto-resize); `saturating_record`
        // would clamp to the current range instead. Growth cannot fail below
        // the one-hour cap, but if it did, clamping is the fallback.
        if self.waits.record(ns).is_err() {
            self.waits.saturating_record(ns);
        }
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
            out.extend(band.drain(..).map(|e| e.msg));
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
        }
    }

    pub(crate) fn waits(&self) -> &Histogram<u64> {
        &self.waits
    }
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
        let mut state: State<()> = State::new(1, Backpressure::Block, new_wait_histogram());
        state.record_wait_ns(0);
        state.record_wait_ns(1_500);
        state.record_wait_ns(10_000_000_000); // 10 s
        state.record_wait_ns(u64::MAX);
        let h = state.waits();
        assert_eq!(h.len(), 4);
        assert_eq!(h.min(), 0);
        assert!(h.equivalent(h.value_at_quantile(0.5), 1_500));
        assert!(h.equivalent(h.value_at_quantile(0.75), 10_000_000_000));
        assert!(h.equivalent(h.max(), MAX_RECORDED_WAIT_NS), "{}", h.max());
    }
}
