//! The reply bookkeeping of `call`: one slot per pending call, keyed by the
//! correlation id its reply will carry.
//!
//! A call registers its slot *before* it sends its request, so the reply
//! cannot overtake the registration. When the kernel's handler sends a
//! message to the host, the output port first offers it here: a message
//! whose correlation id names a registered slot goes straight into that
//! slot and wakes its caller; any other message goes to the output queue as
//! usual. So a call never takes, holds or scans the other outputs: they stay
//! in the output queue, under its bound and its backpressure.
//!
//! Each slot holds the reply itself once it came, and the waker of the call
//! waiting for it: a reply costs no channel of its own (no allocation per
//! call), and taking it is one lock of this structure.
//!
//! Invariants:
//! - `pending` is the number of registered slots still without a reply
//!   while open; when it is zero, offering a message costs one atomic load
//!   and nothing else;
//! - a reply is delivered to at most one call, the one that registered its
//!   correlation id, and a slot receives at most one reply (a duplicate goes
//!   to the output queue);
//! - a slot is removed when its call takes the reply or ends, however it
//!   ends (the output port's pending-call guard); a reply that reached a
//!   call which had already given up is handed back by [`Replies::unregister`]
//!   to be passed on, never dropped silently;
//! - once [`Replies::close`] ran (the kernel ended), every pending call
//!   wakes, no new slot is registered and no reply is delivered; a reply
//!   delivered before is still taken by its call;
//! - `epoch` grows with every delivery and with the close, so a caller that
//!   spins for its reply can watch it without the lock; `pending` and
//!   `epoch` are written only under the lock (plain stores, no locked
//!   read-modify-writes) and read outside it;
//! - a slot's waker changes only under the lock, and only by its own call
//!   (a poll with another waker) or by a delivery or the close (which also
//!   move `epoch`). So a call that remembers the epoch and the waker it
//!   left ([`SlotView`]) and sees neither changed knows its slot is as it
//!   left it: still without a reply, holding a waker that wakes this very
//!   poll's task. Such a poll returns `Pending` without the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use uuid::Uuid;

use crate::message::Message;
use crate::runtime::telemetry::lock;

/// The pending calls of one kernel.
pub(crate) struct Replies<Out> {
    /// Registered slots without a reply (0 once closed).
    pending: AtomicUsize,
    /// Deliveries and closes so far.
    epoch: AtomicU64,
    slots: Mutex<Slots<Out>>,
}

struct Slots<Out> {
    waiting: Waiting<Out>,
    closed: bool,
}

/// One call's slot: its reply once it came, and the waker of the call.
struct Slot<Out> {
    reply: Option<Out>,
    waker: Option<Waker>,
}

impl<Out> Slot<Out> {
    #[cfg(test)]
    fn empty() -> Self {
        Slot {
            reply: None,
            waker: None,
        }
    }
}

/// The registered slots: the first in place (a host usually has one call
/// in flight per kernel, which then costs no hashing), the rest in a map.
///
/// Invariant: a correlation id is in at most one of `first` and `more`.
struct Waiting<Out> {
    first: Option<(Uuid, Slot<Out>)>,
    more: HashMap<Uuid, Slot<Out>>,
}

impl<Out> Waiting<Out> {
    fn new() -> Self {
        Waiting {
            first: None,
            more: HashMap::new(),
        }
    }

    fn contains(&self, id: &Uuid) -> bool {
        matches!(&self.first, Some((first, _)) if first == id) || (!self.more.is_empty() && self.more.contains_key(id))
    }

    /// Adds a slot; `id` must not be registered yet.
    fn insert(&mut self, id: Uuid, slot: Slot<Out>) {
        if self.first.is_none() {
            self.first = Some((id, slot));
        } else {
            self.more.insert(id, slot);
        }
    }

    fn get_mut(&mut self, id: &Uuid) -> Option<&mut Slot<Out>> {
        match &mut self.first {
            Some((first, slot)) if first == id => Some(slot),
            _ if self.more.is_empty() => None,
            _ => self.more.get_mut(id),
        }
    }

    fn remove(&mut self, id: &Uuid) -> Option<Slot<Out>> {
        match &self.first {
            Some((first, _)) if first == id => self.first.take().map(|(_, slot)| slot),
            _ if self.more.is_empty() => None,
            _ => self.more.remove(id),
        }
    }

    /// The reply of slot `id`, taken if it came (the slot goes with it):
    /// `Some(Some(reply))`; `Some(None)` while the slot still waits; `None`
    /// when no such slot is registered. The reply moves out once, not the
    /// whole slot.
    fn take_reply(&mut self, id: &Uuid) -> Option<Option<Out>> {
        if let Some((first, slot)) = &mut self.first {
            if first == id {
                let reply = slot.reply.take();
                if reply.is_some() {
                    self.first = None;
                }
                return Some(reply);
            }
        }
        if self.more.is_empty() {
            return None;
        }
        let slot = self.more.get_mut(id)?;
        let reply = slot.reply.take();
        if reply.is_some() {
            self.more.remove(id);
        }
        Some(reply)
    }

    /// The wakers of every slot, taken.
    fn take_wakers(&mut self) -> Vec<Waker> {
        self.first
            .iter_mut()
            .map(|(_, slot)| slot)
            .chain(self.more.values_mut())
            .filter_map(|slot| slot.waker.take())
            .collect()
    }
}

/// Which waker a slot holds, by identity (what [`Waker::will_wake`]
/// compares), kept as plain integers so a call stays `Send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WakerId {
    data: usize,
    vtable: usize,
}

impl WakerId {
    fn of(waker: &Waker) -> Self {
        WakerId {
            data: waker.data() as usize,
            vtable: std::ptr::from_ref(waker.vtable()) as usize,
        }
    }
}

/// What a call last left in its slot, seen under the lock: the epoch then,
/// and the waker it stored (none yet: every poll takes the lock).
#[derive(Debug, Default)]
pub(crate) struct SlotView {
    epoch: u64,
    waker: Option<WakerId>,
}

impl SlotView {
    /// Whether the slot is as this view left it and holds a waker that
    /// wakes `waker`'s task: then the reply has not come, and a delivery or
    /// the close will wake this task.
    #[inline]
    fn unchanged(&self, epoch: u64, waker: &Waker) -> bool {
        self.epoch == epoch && self.waker == Some(WakerId::of(waker))
    }
}

/// Why a call could not register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// The kernel has ended.
    Ended,
    /// Another call already waits for a reply with this correlation id.
    Duplicate,
}

/// The kernel ended before the reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended;

impl<Out: Message> Replies<Out> {
    pub(crate) fn new() -> Self {
        Replies {
            pending: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            slots: Mutex::new(Slots {
                waiting: Waiting::new(),
                closed: false,
            }),
        }
    }

    /// Adds `delta` (wrapping: `usize::MAX` subtracts one) to `pending`.
    /// `pending` and `epoch` are written only while `slots` is locked (the
    /// guard is the proof), so a write is a plain load and store, not a
    /// locked read-modify-write; readers outside the lock only load them.
    #[inline]
    fn add_held(counter: &AtomicUsize, _held: &MutexGuard<'_, Slots<Out>>, delta: usize) {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Release);
    }

    /// One more delivery or close, under the lock (see [`add_held`](Self::add_held)).
    #[inline]
    fn bump_epoch(&self, _held: &MutexGuard<'_, Slots<Out>>) {
        self.epoch
            .store(self.epoch.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Whether any call waits for a reply.
    #[inline]
    pub(crate) fn any_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) != 0
    }

    /// Deliveries and closes so far: when it has not moved, a call's slot
    /// has not changed.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Registers a call that waits for the reply correlated with
    /// `correlation` (take it with [`poll_reply`](Self::poll_reply) or
    /// [`try_take`](Self::try_take); end with [`unregister`](Self::unregister)).
    /// `Err(Registration::Ended)` once the kernel has ended,
    /// `Err(Registration::Duplicate)` if a call already waits for that id.
    /// With a `waker`, the slot holds it from the start (so the call's
    /// first wait needs no lock of its own); the returned view says so.
    pub(crate) fn register(&self, correlation: Uuid, waker: Option<&Waker>) -> Result<SlotView, Registration> {
        let mut slots = lock(&self.slots);
        if slots.closed {
            return Err(Registration::Ended);
        }
        if slots.waiting.contains(&correlation) {
            return Err(Registration::Duplicate);
        }
        let slot = Slot {
            reply: None,
            waker: waker.cloned(),
        };
        slots.waiting.insert(correlation, slot);
        Self::add_held(&self.pending, &slots, 1);
        Ok(SlotView {
            epoch: self.epoch.load(Ordering::Acquire),
            waker: waker.map(WakerId::of),
        })
    }

    /// Hands `msg` to the call that waits for it; gives it back when no call
    /// does (then it belongs in the output queue).
    #[inline]
    pub(crate) fn offer(&self, msg: Out) -> Result<(), Out> {
        if !self.any_pending() {
            return Err(msg);
        }
        self.offer_slow(msg)
    }

    fn offer_slow(&self, msg: Out) -> Result<(), Out> {
        let Some(correlation) = msg.correlation_id() else {
            return Err(msg);
        };
        let waker = {
            let mut slots = lock(&self.slots);
            if slots.closed {
                return Err(msg);
            }
            match slots.waiting.get_mut(&correlation) {
                Some(slot) if slot.reply.is_none() => {
                    slot.reply = Some(msg);
                    let waker = slot.waker.take();
                    Self::add_held(&self.pending, &slots, usize::MAX);
                    self.bump_epoch(&slots);
                    waker
                }
                _ => return Err(msg),
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Takes the reply of the call `correlation` if it came (its slot is
    /// then gone); `Err(Ended)` if the kernel ended without it; `None` if it
    /// is still to come.
    pub(crate) fn try_take(&self, correlation: Uuid) -> Option<Result<Out, Ended>> {
        let mut slots = lock(&self.slots);
        Self::take_locked(&mut slots, correlation)
    }

    #[inline]
    fn take_locked(slots: &mut Slots<Out>, correlation: Uuid) -> Option<Result<Out, Ended>> {
        match slots.waiting.take_reply(&correlation) {
            Some(Some(reply)) => Some(Ok(reply)),
            Some(None) if !slots.closed => None,
            // Closed, or no such call (it was never registered).
            _ => Some(Err(Ended)),
        }
    }

    /// Whether the call `correlation` has its reply, or never will (the
    /// kernel ended, or no such call waits): what a blocking call that
    /// relays for its kernel waits for before it takes the reply.
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub(crate) fn is_settled(&self, correlation: Uuid) -> bool {
        let mut slots = lock(&self.slots);
        slots.closed
            || slots
                .waiting
                .get_mut(&correlation)
                .is_none_or(|slot| slot.reply.is_some())
    }

    /// [`try_take`](Self::try_take) for a task: while the reply is still to
    /// come, `cx`'s waker is kept in the slot (the delivery or the close
    /// wakes it).
    ///
    /// `view` is what this call last left in its slot: while the epoch has
    /// not moved and the slot holds this poll's waker, the poll returns
    /// `Pending` without the lock; otherwise the view is refreshed.
    #[inline]
    pub(crate) fn poll_reply(
        &self,
        correlation: Uuid,
        view: &mut SlotView,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Out, Ended>> {
        if view.unchanged(self.epoch(), cx.waker()) {
            return Poll::Pending;
        }
        self.poll_reply_locked(correlation, view, cx)
    }

    fn poll_reply_locked(
        &self,
        correlation: Uuid,
        view: &mut SlotView,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Out, Ended>> {
        let mut slots = lock(&self.slots);
        if let Some(done) = Self::take_locked(&mut slots, correlation) {
            return Poll::Ready(done);
        }
        view.epoch = self.epoch.load(Ordering::Acquire);
        view.waker = None;
        if let Some(slot) = slots.waiting.get_mut(&correlation) {
            match &mut slot.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
            view.waker = Some(WakerId::of(cx.waker()));
        }
        Poll::Pending
    }

    /// The kernel ended: wakes every pending call and refuses new ones.
    pub(crate) fn close(&self) {
        let wakers = {
            let mut slots = lock(&self.slots);
            slots.closed = true;
            self.pending.store(0, Ordering::Release);
            self.bump_epoch(&slots);
            slots.waiting.take_wakers()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Removes a call's slot (its call ended, however it ended); returns the
    /// reply that reached it if the call did not take it.
    pub(crate) fn unregister(&self, correlation: Uuid) -> Option<Out> {
        let mut slots = lock(&self.slots);
        let slot = slots.waiting.remove(&correlation)?;
        if slot.reply.is_none() && !slots.closed {
            Self::add_held(&self.pending, &slots, usize::MAX);
        }
        slot.reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, crate::Message)]
    struct R {
        n: u32,
        header: crate::MessageHeader,
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Counting {
        fn count(&self) -> usize {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn reply_to(id: Uuid, n: u32) -> R {
        let mut header = crate::MessageHeader::new();
        header.correlation_id = Some(id);
        R { n, header }
    }

    /// A reply lands in its call's slot once, wakes the call and is taken
    /// once; a duplicate, an uncorrelated message or one for nobody goes
    /// back to the caller of `offer`; `pending` counts slots still waiting.
    #[test]
    fn a_reply_lands_in_its_slot_once_and_wakes_its_call() {
        let replies: Replies<R> = Replies::new();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        replies.register(a, None).unwrap();
        replies.register(b, None).unwrap();
        assert_eq!(replies.register(a, None).err(), Some(Registration::Duplicate));
        assert_eq!(replies.pending.load(Ordering::Relaxed), 2);

        let woken = std::sync::Arc::new(Counting::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut view = SlotView::default();
        assert!(replies.poll_reply(a, &mut view, &mut cx).is_pending());
        let epoch = replies.epoch();

        assert!(replies.offer(reply_to(a, 10)).is_ok());
        assert_eq!(woken.count(), 1, "the delivery wakes the call");
        assert!(replies.epoch() > epoch);
        assert_eq!(replies.pending.load(Ordering::Relaxed), 1);
        assert_eq!(
            replies.offer(reply_to(a, 11)).map_err(|m| m.n),
            Err(11),
            "a slot takes one reply"
        );
        assert_eq!(
            replies.offer(reply_to(Uuid::from_u128(9), 12)).map_err(|m| m.n),
            Err(12)
        );
        let plain = R {
            n: 13,
            header: crate::MessageHeader::new(),
        };
        assert_eq!(replies.offer(plain).map_err(|m| m.n), Err(13));

        match replies.poll_reply(a, &mut view, &mut cx) {
            Poll::Ready(Ok(r)) => assert_eq!(r.n, 10),
            other => panic!("{other:?}"),
        }
        assert_eq!(replies.unregister(a).map(|r| r.n), None, "taken: nothing left");

        // A reply that comes after its call gave up is handed back.
        assert!(replies.offer(reply_to(b, 20)).is_ok());
        assert_eq!(replies.unregister(b).map(|r| r.n), Some(20));
        assert!(!replies.any_pending());
    }

    /// The close wakes waiting calls with `Ended`, refuses new calls and
    /// deliveries, and still lets a call take a reply that came before.
    #[test]
    fn the_close_wakes_waiting_calls_and_keeps_delivered_replies() {
        let replies: Replies<R> = Replies::new();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        replies.register(a, None).unwrap();
        let mut view = replies.register(b, None).unwrap();
        assert!(replies.offer(reply_to(a, 1)).is_ok());
        let woken = std::sync::Arc::new(Counting::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(replies.poll_reply(b, &mut view, &mut cx).is_pending());

        replies.close();
        assert_eq!(woken.count(), 1);
        assert!(!replies.any_pending());
        assert!(matches!(
            replies.poll_reply(b, &mut view, &mut cx),
            Poll::Ready(Err(Ended))
        ));
        assert!(matches!(replies.try_take(a), Some(Ok(R { n: 1, .. }))));
        assert_eq!(replies.offer(reply_to(b, 2)).map_err(|m| m.n), Err(2));
        assert_eq!(
            replies.register(Uuid::from_u128(3), None).err(),
            Some(Registration::Ended)
        );
        assert!(replies.unregister(b).is_none());
        assert_eq!(replies.pending.load(Ordering::Relaxed), 0, "no count goes below zero");
    }

    /// A call registered with its task's waker is woken by the delivery
    /// with no poll in between; a poll that finds its slot as it left it
    /// stays pending, one with another waker moves the slot to that waker
    /// (so the delivery wakes the task that polled last), and one after a
    /// delivery takes the reply.
    #[test]
    fn the_slot_wakes_the_waker_of_the_registration_or_of_the_last_poll() {
        use std::sync::Arc;
        let replies: Replies<R> = Replies::new();
        let first = Arc::new(Counting::default());
        let first_waker = Waker::from(first.clone());
        let mut first_cx = Context::from_waker(&first_waker);
        let second = Arc::new(Counting::default());
        let second_waker = Waker::from(second.clone());
        let mut second_cx = Context::from_waker(&second_waker);

        let a = Uuid::from_u128(1);
        let mut view = replies.register(a, Some(&first_waker)).unwrap();
        assert!(replies.poll_reply(a, &mut view, &mut first_cx).is_pending());
        assert!(replies.poll_reply(a, &mut view, &mut second_cx).is_pending());
        assert!(replies.offer(reply_to(a, 7)).is_ok());
        assert_eq!(
            (first.count(), second.count()),
            (0, 1),
            "the delivery wakes the waker of the last poll"
        );
        match replies.poll_reply(a, &mut view, &mut second_cx) {
            Poll::Ready(Ok(r)) => assert_eq!(r.n, 7),
            other => panic!("{other:?}"),
        }
        assert!(replies.unregister(a).is_none(), "the reply took its slot");

        // Never polled: the waker given at registration is woken.
        let b = Uuid::from_u128(2);
        let mut view = replies.register(b, Some(&first_waker)).unwrap();
        // A delivery to another call moves the epoch: the poll looks again
        // and still waits.
        let c = Uuid::from_u128(3);
        replies.register(c, None).unwrap();
        assert!(replies.offer(reply_to(c, 9)).is_ok());
        assert!(replies.poll_reply(b, &mut view, &mut first_cx).is_pending());
        assert!(replies.offer(reply_to(b, 8)).is_ok());
        assert_eq!(first.count(), 1, "the registration's waker is woken");
        match replies.poll_reply(b, &mut view, &mut first_cx) {
            Poll::Ready(Ok(r)) => assert_eq!(r.n, 8),
            other => panic!("{other:?}"),
        }
        assert_eq!(replies.unregister(c).map(|r| r.n), Some(9));
        assert!(!replies.any_pending());
    }

    proptest::proptest! {
        /// The slots behave as one map (of ids to replies that may have
        /// come) whichever of them sits in place.
        #[test]
        fn waiting_slots_behave_as_a_map(ops in proptest::collection::vec((0u8..6, 0u128..6), 0..60)) {
            let mut slots: Waiting<u32> = Waiting::new();
            let mut model: std::collections::HashMap<Uuid, Option<u32>> = std::collections::HashMap::new();
            for (op, id) in ops {
                let key = Uuid::from_u128(id);
                match op {
                    0 => {
                        proptest::prop_assert_eq!(slots.contains(&key), model.contains_key(&key));
                        if let std::collections::hash_map::Entry::Vacant(e) = model.entry(key) {
                            e.insert(None);
                            slots.insert(key, Slot::empty());
                        }
                    }
                    1 => proptest::prop_assert_eq!(
                        slots.remove(&key).map(|slot| slot.reply),
                        model.remove(&key)
                    ),
                    2 => proptest::prop_assert_eq!(slots.get_mut(&key).is_some(), model.contains_key(&key)),
                    3 => {
                        // A reply comes for the slot, if it waits for one.
                        if let (Some(slot), Some(want)) = (slots.get_mut(&key), model.get_mut(&key)) {
                            slot.reply = Some(id as u32);
                            *want = Some(id as u32);
                        }
                    }
                    4 => {
                        let want = match model.get(&key) {
                            None => None,
                            Some(None) => Some(None),
                            Some(Some(r)) => {
                                let r = *r;
                                model.remove(&key);
                                Some(Some(r))
                            }
                        };
                        proptest::prop_assert_eq!(slots.take_reply(&key), want);
                    }
                    _ => proptest::prop_assert_eq!(slots.contains(&key), model.contains_key(&key)),
                }
            }
            for id in model.keys() {
                proptest::prop_assert!(slots.remove(id).is_some());
            }
            proptest::prop_assert!(slots.first.is_none() && slots.more.is_empty());
        }
    }
}
