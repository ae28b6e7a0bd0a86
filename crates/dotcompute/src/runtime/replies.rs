//! The reply bookkeeping of `call`: which correlation ids pending calls wait
//! for, and the replies taken off the output queue for someone else.
//!
//! Invariants:
//! - a reply whose correlation id a pending call registered goes to that
//!   call only; every other message stays available to `receive`, in order;
//! - `busy` is zero exactly when nothing is stashed and no call is pending,
//!   so the plain receive path may skip the lock;
//! - a call's registration is removed when its future ends or is dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::message::Message;
use crate::runtime::telemetry::lock;

/// Replies taken off the output queue by `call` but meant for someone else,
/// and the correlation ids that pending calls wait for.
pub(crate) struct Replies<Out> {
    inner: Mutex<RepliesInner<Out>>,
    /// Stash length plus pending calls; zero means the fast path may skip the lock.
    busy: AtomicUsize,
    pub(crate) notify: Notify,
}

struct RepliesInner<Out> {
    stash: VecDeque<Out>,
    pending: HashSet<Uuid>,
}

impl<Out: Message> Replies<Out> {
    pub(crate) fn new() -> Self {
        Replies {
            inner: Mutex::new(RepliesInner {
                stash: VecDeque::new(),
                pending: HashSet::new(),
            }),
            busy: AtomicUsize::new(0),
            notify: Notify::new(),
        }
    }

    pub(crate) fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// The oldest stashed reply that no pending call waits for.
    pub(crate) fn take_unclaimed(&self) -> Option<Out> {
        if self.idle() {
            return None;
        }
        let mut inner = lock(&self.inner);
        let RepliesInner { stash, pending } = &mut *inner;
        let pos = stash
            .iter()
            .position(|m| m.correlation_id().is_none_or(|c| !pending.contains(&c)))?;
        let m = stash.remove(pos);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        m
    }

    pub(crate) fn take_reply(&self, correlation: Uuid) -> Option<Out> {
        let mut inner = lock(&self.inner);
        let pos = inner
            .stash
            .iter()
            .position(|m| m.correlation_id() == Some(correlation))?;
        let m = inner.stash.remove(pos);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        m
    }

    pub(crate) fn is_claimed(&self, m: &Out) -> bool {
        if self.idle() {
            return false;
        }
        m.correlation_id()
            .is_some_and(|c| lock(&self.inner).pending.contains(&c))
    }

    pub(crate) fn stash(&self, m: Out) {
        lock(&self.inner).stash.push_back(m);
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    pub(crate) fn claim(&self, correlation: Uuid) {
        if lock(&self.inner).pending.insert(correlation) {
            self.busy.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn release(&self, correlation: Uuid) {
        if lock(&self.inner).pending.remove(&correlation) {
            self.busy.fetch_sub(1, Ordering::AcqRel);
            // A reply stashed for this call is now unclaimed: wake receivers.
            self.notify.notify_waiters();
        }
    }
}

/// Unregisters a pending call even if its future is dropped.
pub(crate) struct ClaimGuard<'a, Out: Message> {
    pub(crate) replies: &'a Replies<Out>,
    pub(crate) correlation: Uuid,
}

impl<Out: Message> Drop for ClaimGuard<'_, Out> {
    fn drop(&mut self) {
        self.replies.release(self.correlation);
    }
}
