//! A growable FIFO ring buffer whose runs move in and out as blocks.
//!
//! The queue's bands and a batch waiting to be queued are [`Fifo`]s. A run
//! of messages moves from a batch into a band, and from a band into a
//! receiver's vector, as one or two bitwise block copies: each message is
//! copied once per move, never through an `Option` or a temporary buffer.
//! (`VecDeque` can append a whole deque in one copy, but cannot hand over
//! its front part without copying it out and back again: taking a run of a
//! band cost three block copies and an allocation.)
//!
//! # Invariant
//!
//! `buf` has `cap = buf.len()` slots. The `len` slots starting at `head`
//! and wrapping past the end (`head + i` taken modulo `cap`, for
//! `i < len`) hold initialized values, the elements in FIFO order; no
//! other slot does. `head < cap` whenever `cap > 0`, and `len <= cap`.
//! A value whose bits were copied out of an element's slot stops being an
//! element at once (`head` and `len` move past it before anything else can
//! look), so every value is dropped exactly once: by whoever received its
//! bits, or by the `Fifo`'s own drop.
//!
//! The queue's only `unsafe` code is in this module.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;

/// Smallest buffer allocated when growing.
const MIN_GROW: usize = 4;

/// A growable ring of `T`s (see the [module documentation](self)).
pub(crate) struct Fifo<T> {
    buf: Box<[MaybeUninit<T>]>,
    head: usize,
    len: usize,
}

impl<T> Fifo<T> {
    /// An empty ring with room for `room` values.
    pub(crate) fn with_capacity(room: usize) -> Self {
        Fifo {
            buf: Box::new_uninit_slice(room),
            head: 0,
            len: 0,
        }
    }

    /// The values of `v`, in order, in `v`'s own buffer (no copy).
    pub(crate) fn from_vec(v: Vec<T>) -> Self {
        if std::mem::size_of::<T>() == 0 {
            // A vector of zero-sized values claims `usize::MAX` slots; a
            // ring sized to its length keeps the index arithmetic in range.
            let mut fifo = Fifo::with_capacity(v.len());
            fifo.extend(v);
            return fifo;
        }
        let mut v = ManuallyDrop::new(v);
        let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
        // SAFETY: `ptr`, `cap` are those of a vector we own and no longer
        // use (it is in `ManuallyDrop`), allocated by the global allocator
        // for `cap` values of `T`; `MaybeUninit<T>` has the size and
        // alignment of `T`, so the allocation is one for `cap` of them, and
        // a length of `cap` is valid because uninitialized slots are allowed
        // in `MaybeUninit`. `into_boxed_slice` keeps the buffer (length ==
        // capacity). The first `len` slots are `v`'s initialized values:
        // head 0, length `len` is the invariant.
        let buf = unsafe { Vec::from_raw_parts(ptr.cast::<MaybeUninit<T>>(), cap, cap) }.into_boxed_slice();
        Fifo { buf, head: 0, len }
    }

    /// The values, in order, as a vector (one move each).
    pub(crate) fn into_vec(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        self.take_into(self.len, &mut out);
        out
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn cap(&self) -> usize {
        self.buf.len()
    }

    /// Free slots.
    #[inline]
    pub(crate) fn spare(&self) -> usize {
        self.cap() - self.len
    }

    /// The slot of the `i`-th element, below `cap` (for `i <= len` and a
    /// ring with room: `i == len` gives the first free slot).
    #[inline]
    fn slot(&self, i: usize) -> usize {
        let p = self.head + i;
        if p >= self.cap() {
            p - self.cap()
        } else {
            p
        }
    }

    fn base(&mut self) -> *mut T {
        self.buf.as_mut_ptr().cast::<T>()
    }

    /// The elements as at most two slices, in order.
    pub(crate) fn as_slices(&self) -> (&[T], &[T]) {
        let first = self.len.min(self.cap() - self.head);
        let base = self.buf.as_ptr().cast::<T>();
        // SAFETY: by the invariant, the `first` slots from `head` and the
        // `len - first` slots from 0 are initialized elements, inside the
        // buffer (`head <= cap` and `head + first <= cap`; `len - first <=
        // head` as the ring wraps at most once), and they stay so while
        // `self` is borrowed.
        unsafe {
            (
                std::slice::from_raw_parts(base.add(self.head), first),
                std::slice::from_raw_parts(base, self.len - first),
            )
        }
    }

    /// The first element.
    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.as_slices().0.first()
    }

    /// Makes room for `extra` more elements without another allocation.
    #[inline]
    pub(crate) fn reserve(&mut self, extra: usize) {
        if extra > self.cap() - self.len {
            self.grow(extra);
        }
    }

    /// Moves the elements to a buffer with room for `extra` more (at
    /// least twice the old one). (The queue's capacity bounds its bands
    /// far below `usize::MAX`; a saturated size fails the allocation as a
    /// vector's would.)
    #[cold]
    #[inline(never)]
    fn grow(&mut self, extra: usize) {
        let need = self.len.saturating_add(extra);
        let room = need.max(self.cap().saturating_mul(2)).max(MIN_GROW);
        let mut grown = Fifo::with_capacity(room);
        self.move_front_to(self.len, &mut grown);
        *self = grown;
    }

    /// Appends `value`.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) {
        self.reserve(1);
        let tail = self.slot(self.len);
        // SAFETY: `tail < cap`: the ring has a free slot (reserved), and
        // the slot after the last element is `(head + len) mod cap`.
        unsafe { self.buf.get_unchecked_mut(tail) }.write(value);
        self.len += 1;
    }

    /// Puts `value` in front of the first element.
    pub(crate) fn push_front(&mut self, value: T) {
        self.reserve(1);
        self.head = if self.head == 0 { self.cap() - 1 } else { self.head - 1 };
        self.buf[self.head].write(value);
        self.len += 1;
    }

    /// Moves the first element into `out` (copied once, straight from its
    /// slot); false, `out` untouched, when empty.
    #[inline(always)]
    pub(crate) fn pop_front_into(&mut self, out: &mut Option<T>) -> bool {
        if self.len == 0 {
            return false;
        }
        let at = self.head;
        self.head = self.slot(1);
        self.len -= 1;
        // SAFETY: slot `at` (`head < cap`, the ring being non-empty) held
        // the first element, initialized; `head` and `len` have just moved
        // past it, so nothing else reads or drops it: it is moved out once.
        *out = Some(unsafe { self.buf.get_unchecked(at).assume_init_read() });
        true
    }

    /// Removes and returns the first element.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let mut out = None;
        self.pop_front_into(&mut out);
        out
    }

    /// Appends every value of `values`, in order.
    pub(crate) fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        let values = values.into_iter();
        self.reserve(values.size_hint().0);
        for v in values {
            self.push_back(v);
        }
    }

    /// The front `n` elements (`n <= len`) as at most two raw runs
    /// `(start, count)`, in order.
    fn front_runs(&mut self, n: usize) -> [(*const T, usize); 2] {
        debug_assert!(n <= self.len);
        let first = n.min(self.cap() - self.head);
        let base = self.base();
        // SAFETY: `head <= cap` (`head < cap` when `cap > 0`, else 0), so
        // `base + head` is inside the buffer or one past its end.
        unsafe {
            [
                (base.add(self.head).cast_const(), first),
                (base.cast_const(), n - first),
            ]
        }
    }

    /// Hands the front `n` elements (`n <= len`) over, as at most two runs
    /// `(start, count)` in order, to `copy`, which must copy each run's bits
    /// to their new owner; then forgets them here. Every bitwise move out of
    /// the ring goes through this, so the "copied out, so no longer an
    /// element" step of the invariant lives in one place.
    fn hand_over_front(&mut self, n: usize, mut copy: impl FnMut(*const T, usize)) {
        assert!(n <= self.len, "moving {n} of {} elements", self.len);
        if n == 0 {
            return;
        }
        for (src, count) in self.front_runs(n) {
            copy(src, count);
        }
        self.head = if n == self.len { 0 } else { self.slot(n) };
        self.len -= n;
    }

    /// Moves the front `n` elements (`n <= len`) to the back of `to`, in
    /// order: one or two block copies per wrap, no drop, no clone.
    pub(crate) fn move_front_to(&mut self, n: usize, to: &mut Fifo<T>) {
        to.reserve(n);
        self.hand_over_front(n, |src, count| {
            // SAFETY: `src` points at `count` initialized elements of `self`
            // (front_runs), distinct from `to`'s buffer (`&mut` to both);
            // `to` has room for all `n` (reserved) and `write_run` writes
            // each into a free slot. The bits now belong to `to`, and
            // `hand_over_front` forgets them in `self` right after.
            unsafe { to.write_run(src, count) };
        });
    }

    /// Copies `count` values from `src` into the free slots after the last
    /// element, which they become.
    ///
    /// # Safety
    /// `src` is valid for reading `count` values of `T` that do not overlap
    /// this ring's buffer and whose ownership passes to the ring; the ring
    /// has at least `count` free slots.
    unsafe fn write_run(&mut self, src: *const T, count: usize) {
        debug_assert!(self.len + count <= self.cap());
        if count == 0 {
            return;
        }
        let tail = self.slot(self.len);
        let first = count.min(self.cap() - tail);
        let base = self.base();
        // SAFETY: the free slots from `tail` to the end of the buffer
        // (`first` of them) and then from 0 (`count - first`, fewer than
        // `head` as `len + count <= cap`) are inside the buffer and hold no
        // element; the caller vouches for `src`.
        unsafe {
            ptr::copy_nonoverlapping(src, base.add(tail), first);
            ptr::copy_nonoverlapping(src.add(first), base, count - first);
        }
        self.len += count;
    }

    /// Moves the front `n` elements (`n <= len`) to the end of `out`, in
    /// order (one block copy per wrap).
    pub(crate) fn take_into(&mut self, n: usize, out: &mut Vec<T>) {
        out.reserve(n);
        self.hand_over_front(n, |src, count| {
            let end = out.len();
            // SAFETY: `src` points at `count` initialized elements (see
            // `move_front_to`); `out` has room for them after its `end`
            // (reserved, and each run advances `end`), in a different
            // allocation. Once copied they are `out`'s elements
            // (`set_len`), and `hand_over_front` forgets them in the ring.
            unsafe {
                ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(end), count);
                out.set_len(end + count);
            }
        });
    }
}

impl<T> Drop for Fifo<T> {
    fn drop(&mut self) {
        let n = self.len;
        let [(a, first), (b, second)] = self.front_runs(n);
        self.len = 0;
        // SAFETY: the two runs are the ring's `n` initialized elements
        // (front_runs, from the buffer's mutable pointer), each dropped once
        // here; nothing reads them afterwards (`len` is 0, and the buffer
        // is freed right after).
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(a.cast_mut(), first));
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(b.cast_mut(), second));
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Fifo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = self.as_slices();
        f.debug_list().entries(a.iter().chain(b)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// A value that counts its live copies: a leak or a double drop shows
    /// in the count.
    #[derive(Debug)]
    struct Tracked(u32, #[allow(dead_code)] Rc<()>);

    impl PartialEq for Tracked {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack,
        PushFront,
        Pop,
        Reserve(u8),
        /// Moves the front `n` (clamped) to the other ring and back to the
        /// end of this one through it (the other ring holds `k` first).
        MoveThrough(u8, u8),
        Take(u8),
        /// Rebuilds the ring through a vector (`into_vec` then `from_vec`).
        ViaVec,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just(Op::PushBack),
            1 => Just(Op::PushFront),
            2 => Just(Op::Pop),
            1 => (0u8..20).prop_map(Op::Reserve),
            2 => (0u8..20, 0u8..6).prop_map(|(n, k)| Op::MoveThrough(n, k)),
            2 => (0u8..20).prop_map(Op::Take),
            1 => Just(Op::ViaVec),
        ]
    }

    proptest::proptest! {
        /// The ring against `VecDeque`: the same elements in the same order
        /// after any sequence of operations, from any start (capacity,
        /// offset of the head), and every value alive exactly once.
        #[test]
        fn a_fifo_is_a_deque_that_moves_runs(
            room in 0usize..9,
            skip in 0usize..9,
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let token = Rc::new(());
            let mut next = 0u32;
            let new = |next: &mut u32| {
                *next += 1;
                Tracked(*next, token.clone())
            };
            let mut fifo = Fifo::with_capacity(room);
            for _ in 0..skip {
                fifo.push_back(new(&mut next));
                drop(fifo.pop_front());
            }
            let mut model: VecDeque<u32> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack => {
                        let v = new(&mut next);
                        model.push_back(v.0);
                        fifo.push_back(v);
                    }
                    Op::PushFront => {
                        let v = new(&mut next);
                        model.push_front(v.0);
                        fifo.push_front(v);
                    }
                    Op::Pop => {
                        proptest::prop_assert_eq!(fifo.pop_front().map(|v| v.0), model.pop_front());
                    }
                    Op::Reserve(n) => {
                        fifo.reserve(usize::from(n));
                        proptest::prop_assert!(fifo.cap() >= fifo.len() + usize::from(n));
                    }
                    Op::MoveThrough(n, k) => {
                        let n = usize::from(n).min(model.len());
                        let mut other = Fifo::with_capacity(3);
                        let mut pre = Vec::new();
                        for _ in 0..k {
                            let v = new(&mut next);
                            pre.push(v.0);
                            other.push_back(v);
                        }
                        fifo.move_front_to(n, &mut other);
                        let moved: Vec<u32> = model.drain(..n).collect();
                        let (a, b) = other.as_slices();
                        let seen: Vec<u32> = a.iter().chain(b).map(|v| v.0).collect();
                        let want: Vec<u32> = pre.iter().chain(&moved).copied().collect();
                        proptest::prop_assert_eq!(seen, want);
                        // The pre-filled ones are dropped here, the moved
                        // ones come back behind the rest.
                        for _ in 0..k {
                            drop(other.pop_front());
                        }
                        let len = other.len();
                        other.move_front_to(len, &mut fifo);
                        proptest::prop_assert!(other.is_empty());
                        model.extend(moved);
                    }
                    Op::Take(n) => {
                        let n = usize::from(n).min(model.len());
                        let mut out = vec![new(&mut next)];
                        let first = out[0].0;
                        fifo.take_into(n, &mut out);
                        let got: Vec<u32> = out.iter().map(|v| v.0).collect();
                        let want: Vec<u32> = std::iter::once(first).chain(model.drain(..n)).collect();
                        proptest::prop_assert_eq!(got, want);
                    }
                    Op::ViaVec => {
                        let v = std::mem::replace(&mut fifo, Fifo::with_capacity(0)).into_vec();
                        proptest::prop_assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                        fifo = Fifo::from_vec(v);
                    }
                }
                let (a, b) = fifo.as_slices();
                let seen: Vec<u32> = a.iter().chain(b).map(|v| v.0).collect();
                proptest::prop_assert_eq!(&seen, &model.iter().copied().collect::<Vec<_>>());
                proptest::prop_assert_eq!(fifo.front().map(|v| v.0), model.front().copied());
                proptest::prop_assert_eq!(fifo.len(), model.len());
                // Every value alive is in the ring, once (plus `token`).
                proptest::prop_assert_eq!(Rc::strong_count(&token), 1 + model.len());
            }
            drop(fifo);
            proptest::prop_assert_eq!(Rc::strong_count(&token), 1);
        }
    }

    #[test]
    fn a_vector_becomes_a_ring_in_its_own_buffer() {
        let v: Vec<u64> = Vec::with_capacity(16);
        let ptr = v.as_ptr();
        let mut v = v;
        v.extend([1, 2, 3]);
        let mut fifo = Fifo::from_vec(v);
        assert_eq!(fifo.cap(), 16);
        assert_eq!(fifo.as_slices().0.as_ptr(), ptr);
        fifo.push_front(0);
        assert_eq!(fifo.into_vec(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn zero_sized_values_are_counted() {
        let mut fifo = Fifo::from_vec(vec![(); 5]);
        fifo.push_back(());
        let mut out = Vec::new();
        fifo.take_into(4, &mut out);
        assert_eq!((out.len(), fifo.len()), (4, 2));
        assert_eq!(fifo.into_vec().len(), 2);
    }

    #[test]
    fn an_empty_ring_of_no_room_is_usable() {
        let mut fifo: Fifo<String> = Fifo::with_capacity(0);
        assert!(fifo.pop_front().is_none());
        assert_eq!(fifo.as_slices(), (&[][..], &[][..]));
        fifo.take_into(0, &mut Vec::new());
        fifo.push_front("a".to_owned());
        assert_eq!(fifo.into_vec(), vec!["a".to_owned()]);
    }
}
