//! One priority band of the queue: its messages in FIFO order, and the
//! enqueue stamps of the few that are sampled, kept apart.
//!
//! # Invariant
//!
//! Every message that enters the band gets a position, counting from 0 in
//! the order they entered; the front message's position is `head`, so the
//! message at index `i` of `msgs` has position `head + i`. `stamps` holds
//! `(position, stamp)` for exactly the queued messages that were stamped,
//! in increasing position, each stamp non-zero, and `next_stamped` is the
//! first of those positions (`u64::MAX` when there is none). So taking the
//! front `k` messages takes exactly the stamps whose position is below
//! `head + k`.
//!
//! Keeping the stamps out of the message FIFO means a message moves in and
//! out of the band as itself (no wrapper to build or take apart), and a run
//! of messages moves as a run: when latencies are sampled one message in N,
//! the unsampled ones cost no stamp bookkeeping at all.

use std::collections::VecDeque;

use super::clock::Stamp;

/// Runs at least this long leave a band as blocks (see [`Band::take`]).
const BULK_TAKE: usize = 16;

/// A FIFO of messages with the stamps of the sampled ones. See the
/// [module documentation](self).
pub(crate) struct Band<T> {
    msgs: VecDeque<T>,
    /// `(position, stamp)` of the stamped messages queued, oldest first.
    stamps: VecDeque<(u64, Stamp)>,
    /// The position of the front message (messages ever taken out).
    head: u64,
    /// The position of the oldest stamped message queued (`u64::MAX`: none),
    /// so a pop compares one number to know whether its message was stamped.
    next_stamped: u64,
}

impl<T> Band<T> {
    pub(crate) fn with_capacity(room: usize) -> Self {
        Band {
            msgs: VecDeque::with_capacity(room),
            stamps: VecDeque::new(),
            head: 0,
            next_stamped: u64::MAX,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// The position the next message pushed will have.
    #[inline]
    fn tail(&self) -> u64 {
        self.head + self.msgs.len() as u64
    }

    /// Appends `msg` with its stamp (0: not measured).
    #[inline(always)]
    pub(crate) fn push(&mut self, msg: T, at: Stamp) {
        if at != 0 {
            self.note_stamp(self.tail(), at);
        }
        self.msgs.push_back(msg);
    }

    #[inline]
    fn note_stamp(&mut self, pos: u64, at: Stamp) {
        if self.stamps.is_empty() {
            self.next_stamped = pos;
        }
        self.stamps.push_back((pos, at));
    }

    /// The oldest stamp, removed; `next_stamped` moves to the one after.
    #[inline]
    fn take_stamp(&mut self) -> Stamp {
        let at = self.stamps.pop_front().map_or(0, |(_, at)| at);
        self.next_stamped = self.stamps.front().map_or(u64::MAX, |&(pos, _)| pos);
        at
    }

    /// Appends a run of messages in order. `stamped` gives the offsets
    /// within the run (increasing, each below the run's length) of the
    /// messages measured, which all get stamp `at` (non-zero).
    #[inline]
    pub(crate) fn extend(
        &mut self,
        run: impl ExactSizeIterator<Item = T>,
        stamped: impl Iterator<Item = u64>,
        at: Stamp,
    ) {
        let (tail, n) = (self.tail(), run.len() as u64);
        stamped
            .take_while(|&i| i < n)
            .for_each(|i| self.note_stamp(tail + i, at));
        self.msgs.extend(run);
    }

    /// Moves every message of `run` to the end of the band, in order (one
    /// copy of the whole run); stamps as [`extend`](Self::extend).
    #[inline]
    pub(crate) fn append(&mut self, run: &mut VecDeque<T>, stamped: impl Iterator<Item = u64>, at: Stamp) {
        let (tail, n) = (self.tail(), run.len() as u64);
        stamped
            .take_while(|&i| i < n)
            .for_each(|i| self.note_stamp(tail + i, at));
        self.msgs.append(run);
    }

    /// Takes the front message; hands its stamp to `stamped` if it has one.
    #[inline(always)]
    pub(crate) fn pop_then(&mut self, stamped: impl FnOnce(Stamp)) -> Option<T> {
        let msg = self.msgs.pop_front()?;
        if self.next_stamped == self.head {
            stamped(self.take_stamp());
        }
        self.head += 1;
        Some(msg)
    }

    /// Moves the front `k` messages (`k <= len`) to the end of `out`, in
    /// order, and hands their stamps, oldest first, to `stamp`.
    #[inline]
    pub(crate) fn take(&mut self, k: usize, out: &mut Vec<T>, mut stamp: impl FnMut(Stamp)) {
        let end = self.head + k as u64;
        while self.next_stamped < end {
            stamp(self.take_stamp());
        }
        if k == self.msgs.len() {
            // The whole band: one copy of the run, and the band keeps its
            // buffer (a deque and a vector convert into each other without
            // copying when the deque starts at the buffer's start, as it
            // does after this).
            let mut all = Vec::from(std::mem::take(&mut self.msgs));
            out.append(&mut all);
            self.msgs = VecDeque::from(all);
        } else if k >= BULK_TAKE {
            // The front k to the back (the deque copies them once, into its
            // free room), then split off as a deque of their own (a second
            // copy, into a fresh buffer) that becomes a vector in place and
            // is appended (a third): three block copies instead of a move
            // per message in and out of an `Option`.
            self.msgs.rotate_left(k);
            let at = self.msgs.len() - k;
            out.append(&mut Vec::from(self.msgs.split_off(at)));
        } else {
            out.reserve(k);
            for _ in 0..k {
                match self.msgs.pop_front() {
                    Some(m) => out.push(m),
                    None => break,
                }
            }
        }
        self.head = end;
    }

    /// Removes everything, in order, into `out` (stamps discarded).
    pub(crate) fn clear_into(&mut self, out: &mut Vec<T>) {
        self.head += self.msgs.len() as u64;
        self.stamps.clear();
        self.next_stamped = u64::MAX;
        out.extend(self.msgs.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The band against a FIFO of (message, stamp) pairs: every way in and
    /// out gives the same messages with the same stamps.
    #[derive(Debug, Clone)]
    enum Op {
        Push(u32, Stamp),
        Extend(u8, Vec<u64>, Stamp),
        Append(u8, Vec<u64>, Stamp),
        Pop,
        Take(u8),
        Clear,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<u32>(), prop_oneof![Just(0u64), 1u64..5]).prop_map(|(m, s)| Op::Push(m, s)),
            (
                any::<bool>(),
                0u8..40,
                proptest::collection::vec(0u64..44, 0..8),
                1u64..5
            )
                .prop_map(|(append, n, mut at, s)| {
                    at.sort_unstable();
                    at.dedup();
                    if append {
                        Op::Append(n, at, s)
                    } else {
                        Op::Extend(n, at, s)
                    }
                }),
            Just(Op::Pop),
            (0u8..40).prop_map(Op::Take),
            Just(Op::Clear),
        ]
    }

    proptest::proptest! {
        #[test]
        fn a_band_is_a_fifo_of_messages_with_their_stamps(ops in proptest::collection::vec(op(), 0..80)) {
            let mut band = Band::with_capacity(2);
            let mut model: VecDeque<(u32, Stamp)> = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                let appending = matches!(op, Op::Append(..));
                match op {
                    Op::Push(m, s) => {
                        band.push(m, s);
                        model.push_back((m, s));
                    }
                    Op::Extend(n, at, s) | Op::Append(n, at, s) => {
                        let run: Vec<u32> = (0..u32::from(n)).map(|i| next.wrapping_add(i)).collect();
                        next = next.wrapping_add(u32::from(n));
                        for (i, m) in run.iter().enumerate() {
                            let stamped = at.contains(&(i as u64));
                            model.push_back((*m, if stamped { s } else { 0 }));
                        }
                        if appending {
                            let mut run = VecDeque::from(run);
                            band.append(&mut run, at.into_iter(), s);
                            proptest::prop_assert!(run.is_empty());
                        } else {
                            band.extend(run.into_iter(), at.into_iter(), s);
                        }
                    }
                    Op::Pop => {
                        let mut stamp = 0;
                        let got = band.pop_then(|s| stamp = s);
                        proptest::prop_assert_eq!(got.map(|m| (m, stamp)), model.pop_front());
                    }
                    Op::Take(k) => {
                        let k = usize::from(k).min(model.len());
                        let (mut out, mut stamps) = (vec![7u32], Vec::new());
                        band.take(k, &mut out, |s| stamps.push(s));
                        let want: Vec<(u32, Stamp)> = model.drain(..k).collect();
                        let want_msgs: Vec<u32> = std::iter::once(7).chain(want.iter().map(|w| w.0)).collect();
                        let want_stamps: Vec<Stamp> = want.iter().map(|w| w.1).filter(|&s| s != 0).collect();
                        proptest::prop_assert_eq!(out, want_msgs);
                        proptest::prop_assert_eq!(stamps, want_stamps);
                    }
                    Op::Clear => {
                        let mut out = Vec::new();
                        band.clear_into(&mut out);
                        let want: Vec<u32> = model.drain(..).map(|w| w.0).collect();
                        proptest::prop_assert_eq!(out, want);
                    }
                }
                proptest::prop_assert_eq!(band.len(), model.len());
                proptest::prop_assert_eq!(band.is_empty(), model.is_empty());
                proptest::prop_assert_eq!(band.stamps.len(), model.iter().filter(|m| m.1 != 0).count());
                let next = model.iter().position(|m| m.1 != 0).map_or(u64::MAX, |i| band.head + i as u64);
                proptest::prop_assert_eq!(band.next_stamped, next);
            }
        }
    }
}
