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
//! Invariants:
//! - `pending` is the number of registered slots; when it is zero, offering
//!   a message costs one atomic load and nothing else;
//! - a reply is delivered to at most one call, the one that registered its
//!   correlation id, and a slot receives at most one reply (a duplicate goes
//!   to the output queue);
//! - a slot is unregistered when its call ends, however it ends (the output
//!   port's pending-call guard); a reply that reached a call which had
//!   already given up is handed on by that guard, never dropped silently;
//! - once [`Replies::close`] ran (the kernel ended), every pending call
//!   wakes and no new slot is registered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::message::Message;
use crate::runtime::telemetry::lock;

/// The pending calls of one kernel.
pub(crate) struct Replies<Out> {
    /// Registered slots (the length of `slots.waiting`).
    pending: AtomicUsize,
    slots: Mutex<Slots<Out>>,
}

struct Slots<Out> {
    waiting: Waiting<Out>,
    closed: bool,
}

/// The registered slots: the first in place (a host usually has one call
/// in flight per kernel, which then costs no hashing), the rest in a map.
///
/// Invariant: a correlation id is in at most one of `first` and `more`.
struct Waiting<Out> {
    first: Option<(Uuid, oneshot::Sender<Out>)>,
    more: HashMap<Uuid, oneshot::Sender<Out>>,
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
    fn insert(&mut self, id: Uuid, tx: oneshot::Sender<Out>) {
        if self.first.is_none() {
            self.first = Some((id, tx));
        } else {
            self.more.insert(id, tx);
        }
    }

    fn remove(&mut self, id: &Uuid) -> Option<oneshot::Sender<Out>> {
        match &self.first {
            Some((first, _)) if first == id => self.first.take().map(|(_, tx)| tx),
            _ if self.more.is_empty() => None,
            _ => self.more.remove(id),
        }
    }

    /// Every slot, removed.
    fn take_all(&mut self) -> Vec<oneshot::Sender<Out>> {
        self.first
            .take()
            .map(|(_, tx)| tx)
            .into_iter()
            .chain(self.more.drain().map(|(_, tx)| tx))
            .collect()
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

impl<Out: Message> Replies<Out> {
    pub(crate) fn new() -> Self {
        Replies {
            pending: AtomicUsize::new(0),
            slots: Mutex::new(Slots {
                waiting: Waiting::new(),
                closed: false,
            }),
        }
    }

    /// Whether any call waits for a reply.
    #[inline]
    pub(crate) fn any_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) != 0
    }

    /// Registers a call that waits for the reply correlated with
    /// `correlation`; the reply will arrive on the returned receiver.
    /// `Err(Registration::Ended)` once the kernel has ended,
    /// `Err(Registration::Duplicate)` if a call already waits for that id.
    pub(crate) fn register(&self, correlation: Uuid) -> Result<oneshot::Receiver<Out>, Registration> {
        let (tx, rx) = oneshot::channel();
        let mut slots = lock(&self.slots);
        if slots.closed {
            return Err(Registration::Ended);
        }
        if slots.waiting.contains(&correlation) {
            return Err(Registration::Duplicate);
        }
        slots.waiting.insert(correlation, tx);
        self.pending.fetch_add(1, Ordering::AcqRel);
        Ok(rx)
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
        let tx = {
            let mut slots = lock(&self.slots);
            let tx = slots.waiting.remove(&correlation);
            if tx.is_some() {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            }
            tx
        };
        match tx {
            // Fails (handing the message back) only if the call gave up
            // meanwhile; its `cancel` then saw no reply.
            Some(tx) => tx.send(msg),
            None => Err(msg),
        }
    }

    /// The kernel ended: wakes every pending call and refuses new ones.
    pub(crate) fn close(&self) {
        let waiting = {
            let mut slots = lock(&self.slots);
            slots.closed = true;
            self.pending.store(0, Ordering::Release);
            slots.waiting.take_all()
        };
        drop(waiting);
    }

    /// Removes a call's slot (its call ended, however it ended).
    pub(crate) fn unregister(&self, correlation: Uuid) {
        let mut slots = lock(&self.slots);
        if slots.waiting.remove(&correlation).is_some() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The slots behave as one map whichever of them sits in place.
        #[test]
        fn waiting_slots_behave_as_a_map(ops in proptest::collection::vec((0u8..3, 0u128..6), 0..60)) {
            let mut slots: Waiting<u32> = Waiting::new();
            let mut model: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
            let mut receivers = Vec::new();
            for (op, id) in ops {
                let id = Uuid::from_u128(id);
                match op {
                    0 => {
                        proptest::prop_assert_eq!(slots.contains(&id), model.contains(&id));
                        if model.insert(id) {
                            let (tx, rx) = oneshot::channel();
                            slots.insert(id, tx);
                            receivers.push(rx);
                        }
                    }
                    1 => proptest::prop_assert_eq!(slots.remove(&id).is_some(), model.remove(&id)),
                    _ => proptest::prop_assert_eq!(slots.contains(&id), model.contains(&id)),
                }
            }
            proptest::prop_assert_eq!(slots.take_all().len(), model.len());
            proptest::prop_assert!(slots.first.is_none() && slots.more.is_empty());
        }
    }
}
