//! A waiter's place in one of the queue's two waiter lists (receivers
//! waiting for a message, senders waiting for room).
//!
//! # Invariant
//!
//! A [`Registration`] holds an id only while its waiter has an entry in
//! the list of its [`Side`] or was woken through it; the entry is added and
//! removed under the queue's lock, in the same critical section as the
//! attempt that failed or succeeded. A registration that ends without
//! using its wake-up (a future dropped mid-wait, a deadline) passes it on
//! to the next waiter of its side when there is something for that one, so
//! no wake-up is lost.

use super::state::{State, Wake};
use super::Shared;

/// Which side a waiter waits on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Recv,
    Send,
}

/// A registered waiter's id, removed (or its wake-up passed on) when the
/// wait ends, also when a future is dropped mid-wait.
pub(super) struct Registration<'a, T> {
    shared: &'a Shared<T>,
    side: Side,
    id: Option<u64>,
}

impl<'a, T> Registration<'a, T> {
    pub(super) fn new(shared: &'a Shared<T>, side: Side) -> Self {
        Registration { shared, side, id: None }
    }

    /// Whether this waiter has registered (and not finished) its wait.
    #[inline]
    pub(super) fn is_registered(&self) -> bool {
        self.id.is_some()
    }

    /// Registers (or refreshes) this waiter under the held lock.
    #[inline]
    pub(super) fn register(&mut self, state: &mut State<T>, waker: &std::task::Waker) {
        match self.side {
            Side::Recv => state.recv_waiters.register(&mut self.id, waker),
            Side::Send => state.send_waiters.register(&mut self.id, waker),
        }
    }

    /// Ends the registration under the held lock. A waiter that was woken
    /// (its entry is gone) but leaves without using the wake-up passes it to
    /// the next waiter of its side if there is still something for it.
    /// `used` says whether this waiter took a message / made its push.
    #[inline(always)]
    pub(super) fn finish(&mut self, state: &mut State<T>, used: bool, wake: &mut Wake) {
        let Some(id) = self.id.take() else { return };
        let (was_registered, more) = match self.side {
            Side::Recv => (state.recv_waiters.remove(id), state.deliverable()),
            Side::Send => (state.send_waiters.remove(id), !state.is_full() || state.is_closed()),
        };
        if !was_registered && !used && more {
            let next = match self.side {
                Side::Recv => state.recv_waiters.take_one(),
                Side::Send => state.send_waiters.take_one(),
            };
            if let Some(w) = next {
                wake.push(w);
            }
        }
    }
}

impl<T> Drop for Registration<'_, T> {
    // Every receive and send future drops one, and most never registered:
    // that check is inlined, the rest is out of line (as one function it
    // paid the rest's register saves on every drop, ~15 instructions).
    #[inline]
    fn drop(&mut self) {
        if self.id.is_some() {
            self.leave();
        }
    }
}

impl<T> Registration<'_, T> {
    /// Ends a registration whose future is dropped mid-wait.
    #[cold]
    #[inline(never)]
    fn leave(&mut self) {
        let mut wake = Wake::None;
        {
            let mut state = self.shared.state.lock();
            self.finish(&mut state, false, &mut wake);
        }
        wake.wake();
    }
}
