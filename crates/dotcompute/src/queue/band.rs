//! One priority band of the queue: its messages in FIFO order, and the
//! enqueue stamps of the few that are sampled, kept apart.
//!
//! # Invariant
//!
//! The messages are `msgs` followed by the rings of `later`, oldest first.
//! `later` is empty unless a whole batch was queued behind other messages:
//! a batch queued whole keeps the sender's own buffer as a ring of its own
//! instead of being copied. Every ring of `later` holds at least one
//! message, and `msgs` holds at least one while `later` is not empty, so
//! the front message is always the front of `msgs`; `later_len` counts the
//! messages of `later`.
//!
//! Every message that enters the band gets a position, counting from 0 in
//! the order they entered; the front message's position is `head`, so the
//! message at index `i` of the band has position `head + i`. `stamps` holds
//! `(position, stamp)` for exactly the queued messages that were stamped,
//! in increasing position, each stamp non-zero, and `next_stamped` is the
//! first of those positions (`u64::MAX` when there is none). So taking the
//! front `k` messages takes exactly the stamps whose position is below
//! `head + k`.
//!
//! Keeping the stamps out of the message FIFO means a message moves in and
//! out of the band as itself (no wrapper to build or take apart), and a run
//! of messages moves as a run (a block copy, see [`Fifo`]): when latencies
//! are sampled one message in N, the unsampled ones cost no stamp
//! bookkeeping at all.

use std::collections::VecDeque;

use super::clock::Stamp;
use super::fifo::Fifo;

/// Whole runs at least this long are queued in the sender's own buffer
/// (shorter ones are copied: a ring per handful of messages would cost
/// more than the copy).
const ADOPT_MIN: usize = 16;

/// A FIFO of messages with the stamps of the sampled ones. See the
/// [module documentation](self).
pub(crate) struct Band<T> {
    msgs: Fifo<T>,
    /// Rings queued behind `msgs` (see the module invariant).
    later: VecDeque<Fifo<T>>,
    later_len: usize,
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
            msgs: Fifo::with_capacity(room),
            later: VecDeque::new(),
            later_len: 0,
            stamps: VecDeque::new(),
            head: 0,
            next_stamped: u64::MAX,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.msgs.len() + self.later_len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// The position the next message pushed will have.
    #[inline]
    fn tail(&self) -> u64 {
        self.head + self.len() as u64
    }

    /// The ring new messages go to: the last one.
    #[inline]
    fn back(&mut self) -> &mut Fifo<T> {
        self.later.back_mut().unwrap_or(&mut self.msgs)
    }

    /// Appends `msg` with its stamp (0: not measured).
    #[inline(always)]
    pub(crate) fn push(&mut self, msg: T, at: Stamp) {
        if at != 0 {
            self.note_stamp(self.tail(), at);
        }
        if self.later.is_empty() {
            self.msgs.push_back(msg);
        } else {
            self.later_len += 1;
            self.back().push_back(msg);
        }
    }

    /// After the front ring ran out: the next ring becomes the front (the
    /// empty one's buffer is freed).
    #[inline]
    fn promote(&mut self) {
        if self.msgs.is_empty() {
            if let Some(next) = self.later.pop_front() {
                self.later_len -= next.len();
                self.msgs = next;
            }
        }
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

    /// Moves the front `n` messages of `run` (`n <= run.len()`) to the end
    /// of the band, in order: `run`'s buffer itself when that is all of it
    /// (at least [`ADOPT_MIN`] messages, in a buffer at most half empty),
    /// else a block copy. `stamped` gives the offsets
    /// within those `n` (increasing) of the messages measured, which all get
    /// stamp `at` (non-zero).
    #[inline]
    pub(crate) fn append(&mut self, run: &mut Fifo<T>, n: usize, stamped: impl Iterator<Item = u64>, at: Stamp) {
        let tail = self.tail();
        stamped
            .take_while(|&i| i < n as u64)
            .for_each(|i| self.note_stamp(tail + i, at));
        let whole = n == run.len() && n >= ADOPT_MIN && run.spare() <= n;
        if whole && self.msgs.is_empty() {
            // An empty band takes the sender's buffer as its ring.
            std::mem::swap(&mut self.msgs, run);
        } else if whole {
            self.later_len += n;
            self.later.push_back(std::mem::replace(run, Fifo::with_capacity(0)));
        } else if n > 0 {
            if !self.later.is_empty() {
                self.later_len += n;
            }
            run.move_front_to(n, self.back());
        }
    }

    /// Takes the front message, its stamp discarded (an eviction).
    pub(crate) fn pop_evicted(&mut self) -> Option<T> {
        let mut out = None;
        self.pop_into_then(&mut out, |_| {});
        out
    }

    /// Moves the front message into `out` (false when empty); hands its
    /// stamp to `stamped` if it has one.
    #[inline(always)]
    pub(crate) fn pop_into_then(&mut self, out: &mut Option<T>, stamped: impl FnOnce(Stamp)) -> bool {
        if !self.msgs.pop_front_into(out) {
            return false;
        }
        self.promote();
        if self.next_stamped == self.head {
            stamped(self.take_stamp());
        }
        self.head += 1;
        true
    }

    /// Moves the front `k` messages (`k <= len`) to the end of `out`, in
    /// order, and hands their stamps, oldest first, to `stamp`.
    #[inline]
    pub(crate) fn take(&mut self, k: usize, out: &mut Vec<T>, mut stamp: impl FnMut(Stamp)) {
        let end = self.head + k as u64;
        while self.next_stamped < end {
            stamp(self.take_stamp());
        }
        let mut left = k;
        while left > 0 {
            let m = left.min(self.msgs.len());
            self.msgs.take_into(m, out);
            self.promote();
            left -= m;
            if m == 0 {
                break;
            }
        }
        self.head = end;
    }

    /// Removes everything, in order, into `out` (stamps discarded).
    pub(crate) fn clear_into(&mut self, out: &mut Vec<T>) {
        self.head += self.len() as u64;
        self.stamps.clear();
        self.next_stamped = u64::MAX;
        out.reserve(self.len());
        loop {
            self.msgs.take_into(self.msgs.len(), out);
            match self.later.pop_front() {
                Some(next) => self.msgs = next,
                None => break,
            }
        }
        self.later_len = 0;
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
        /// A batch's front run (the batch holds one more message).
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
                        let n = run.len();
                        if appending {
                            // The whole of a batch.
                            let mut run = Fifo::from_vec(run);
                            band.append(&mut run, n, at.into_iter(), s);
                            proptest::prop_assert!(run.is_empty());
                        } else {
                            // The front of a batch: the rest stays in it.
                            let mut run = Fifo::from_vec(run);
                            run.push_back(u32::MAX);
                            run.push_front(u32::MAX - 1);
                            run.pop_front();
                            band.append(&mut run, n, at.into_iter(), s);
                            proptest::prop_assert_eq!(run.into_vec(), vec![u32::MAX]);
                        }
                    }
                    Op::Pop => {
                        let (mut stamp, mut got) = (0, None);
                        let popped = band.pop_into_then(&mut got, |s| stamp = s);
                        proptest::prop_assert_eq!(popped, got.is_some());
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
                // The rings: none empty behind the front, the front not
                // empty while others wait, and their lengths counted.
                proptest::prop_assert!(band.later.iter().all(|r| !r.is_empty()));
                proptest::prop_assert!(band.later.is_empty() || !band.msgs.is_empty());
                proptest::prop_assert_eq!(band.later_len, band.later.iter().map(Fifo::len).sum::<usize>());
                proptest::prop_assert_eq!(band.is_empty(), model.is_empty());
                proptest::prop_assert_eq!(band.stamps.len(), model.iter().filter(|m| m.1 != 0).count());
                let next = model.iter().position(|m| m.1 != 0).map_or(u64::MAX, |i| band.head + i as u64);
                proptest::prop_assert_eq!(band.next_stamped, next);
            }
        }
    }
}
