//! The receiving half of [`MessageQueue`]: `try_recv`, `recv`,
//! `recv_blocking` and their timeouts, the runtime's polling receive, and
//! batch receives.
//!
//! # Invariant
//!
//! A receive takes the oldest message of the highest non-empty band under
//! the queue's lock, unless the queue is paused ([`State::pop_into`]); a
//! receive that finds nothing registers its waker in the same critical
//! section, and a pop that makes room wakes the oldest waiting sender
//! there. Dropping an async receive between polls never loses a message:
//! a message is only ever moved out in the poll that returns it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::registration::{Registration, Side};
use super::state::Wake;
use super::timer::Sleep;
use super::wait::{self, spin_for, Backoff, ThreadWaker};
use super::{deadline_after, MessageQueue, RecvError, Shared};
#[cfg(doc)]
use super::{state::State, ReceiverWait};
use crate::Message;

/// The state of one async receive between polls.
struct RecvWait<'a, T> {
    reg: Registration<'a, T>,
    deadline: Option<Instant>,
    /// Started on the first attempt that has to wait.
    sleep: Option<Sleep>,
}

impl<'a, T> RecvWait<'a, T> {
    fn new(shared: &'a Shared<T>, deadline: Option<Instant>) -> Self {
        RecvWait {
            reg: Registration::new(shared, Side::Recv),
            deadline,
            sleep: None,
        }
    }
}

/// An async receive ([`MessageQueue::recv_until`]): a named future, so
/// that the runtime can poll it inside futures of its own without another
/// `async` layer around it.
pub(crate) struct Recv<'a, T> {
    queue: &'a MessageQueue<T>,
    wait: RecvWait<'a, T>,
}

impl<'a, T: Message> Recv<'a, T> {
    /// Polls for a message to be moved into `out` (copied once, from its
    /// slot; see [`State::pop_into`]): for receivers that keep the message
    /// in a place of their own rather than take it through this future's
    /// output.
    #[inline]
    pub(crate) fn poll_into(&mut self, cx: &mut Context<'_>, out: &mut Option<T>) -> Poll<Result<(), RecvError>> {
        self.queue.poll_recv_into(cx, &mut self.wait, out)
    }
}

impl<T: Message> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut out = None;
        std::task::ready!(this.poll_into(cx, &mut out))?;
        Poll::Ready(out.ok_or(RecvError::Empty))
    }
}

impl<T: Message> MessageQueue<T> {
    // ---- receiving -----------------------------------------------------

    /// One pop under the lock, waking a sender if
    /// room appeared; with `waiter`, registers it (under the same lock) when
    /// there is nothing to deliver, or ends its registration otherwise.
    fn pop_one(&self, waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>) -> Result<T, RecvError> {
        let mut out = None;
        self.pop_one_into(&mut out, waiter)?;
        out.ok_or(RecvError::Empty)
    }

    /// [`pop_one`](Self::pop_one) moving the message into `out` (see
    /// [`State::pop_into`]).
    #[inline(always)]
    fn pop_one_into(
        &self,
        out: &mut Option<T>,
        waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>,
    ) -> Result<(), RecvError> {
        let mut wake = Wake::None;
        let mut state = self.lock();
        let result = state.pop_into(out);
        match (&result, waiter) {
            (Err(RecvError::Empty), Some((reg, waker))) => reg.register(&mut state, waker),
            (_, Some((reg, _))) => reg.finish(&mut state, result.is_ok(), &mut wake),
            _ => {}
        }
        if result.is_ok() {
            if let Some(w) = state.send_waiters.take_one() {
                wake.push(w);
            }
            self.shared.publish(&state);
        }
        drop(state);
        wake.wake();
        result
    }

    /// Takes the next message without waiting.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if there is nothing to deliver (empty, or
    /// paused); [`RecvError::Closed`] if the queue is closed and empty, or
    /// closed while paused.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        self.pop_one(None)
    }

    /// Takes the next message, waiting while the queue is empty or paused.
    /// Cancel-safe: dropping the future never loses a message. Works on any
    /// executor; under Tokio each attempt spends one unit of the task's
    /// cooperative budget (as Tokio's own channels do), so a receiver that
    /// always finds a backlog still yields now and then.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once the queue is closed and drained (or closed
    /// while paused).
    pub fn recv(&self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        self.recv_until(None)
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`] if nothing was delivered in time;
    /// [`RecvError::Closed`] as for [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        self.recv_until(deadline_after(timeout))
    }

    /// Like [`recv`](Self::recv), blocking the calling thread while it waits.
    /// Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        self.recv_blocking_until(None)
    }

    /// Like [`recv_timeout`](Self::recv_timeout), blocking the calling thread
    /// while it waits. Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_blocking_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_blocking_until(deadline_after(timeout))
    }

    /// Waits for a message until `deadline`.
    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Recv<'_, T> {
        Recv {
            queue: self,
            wait: RecvWait::new(&self.shared, deadline),
        }
    }

    /// Whether an async receive should poll first (see
    /// [`ReceiverWait::async_poll`]; then use
    /// [`recv_polling_first`](Self::recv_polling_first)).
    #[inline]
    pub(crate) fn polls_first(&self) -> bool {
        self.shared.async_poll
    }

    /// [`recv_until`](Self::recv_until), after a first phase that looks
    /// without registering, spinning in place for a few microseconds
    /// ([`spin_for`]).
    pub(crate) async fn recv_polling_first(&self, deadline: Option<Instant>) -> Result<T, RecvError>
    where
        T: Send,
    {
        let found = spin_for(deadline, |first| {
            // A pop on the first look, then one whenever the lock-free
            // count says there is something.
            if first || self.shared.ready.load(Ordering::Relaxed) > 0 {
                match self.pop_one(None) {
                    Err(RecvError::Empty) => {}
                    done => return Some(done),
                }
            }
            None
        });
        match found {
            Some(done) => done,
            None => self.recv_until(deadline).await,
        }
    }

    /// One attempt of an async receive: a pop, or (under the same lock) the
    /// registration of the task's waker when there is nothing to deliver.
    /// The message, if one came, is moved into `out`.
    #[inline(always)]
    fn poll_recv_into(
        &self,
        cx: &mut Context<'_>,
        wait: &mut RecvWait<'_, T>,
        out: &mut Option<T>,
    ) -> Poll<Result<(), RecvError>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        match self.pop_one_into(out, Some((&mut wait.reg, cx.waker()))) {
            Err(RecvError::Empty) => {}
            done => {
                coop.made_progress();
                return Poll::Ready(done);
            }
        }
        if let Some(deadline) = wait.deadline {
            let sleep = wait.sleep.get_or_insert_with(|| Sleep::until(deadline));
            if Pin::new(sleep).poll(cx).is_ready() {
                return Poll::Ready(self.pop_last(&mut wait.reg).map(|m| *out = Some(m)));
            }
        }
        Poll::Pending
    }

    /// Blocking form of [`recv_until`](Self::recv_until): polls briefly,
    /// then parks until woken or `deadline`.
    pub(crate) fn recv_blocking_until(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        match self.pop_one(None) {
            Err(RecvError::Empty) => {}
            done => return done,
        }
        let mut backoff = Backoff::new(deadline, self.shared.spin_ns);
        let mut reg = Registration::new(&self.shared, Side::Recv);
        let waker = ThreadWaker::current();
        let mut stale = false;
        loop {
            let parking = stale || !backoff.snooze(|| self.shared.ready.load(Ordering::Relaxed) > 0);
            let waiter = (parking || reg.is_registered()).then_some((&mut reg, &waker));
            match self.pop_one(waiter) {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            stale = !parking;
            if deadline.is_some_and(|d| Instant::now() >= d) || (parking && !wait::park_until(deadline)) {
                return self.pop_last(&mut reg);
            }
        }
    }

    /// The attempt after the deadline passed: a message or `Timeout`.
    fn pop_last(&self, reg: &mut Registration<'_, T>) -> Result<T, RecvError> {
        let mut wake = Wake::None;
        let result = {
            let mut state = self.lock();
            let result = state.pop();
            reg.finish(&mut state, result.is_ok(), &mut wake);
            if result.is_ok() {
                if let Some(w) = state.send_waiters.take_one() {
                    wake.push(w);
                }
                self.shared.publish(&state);
            }
            result
        };
        wake.wake();
        match result {
            Err(RecvError::Empty) => Err(RecvError::Timeout),
            done => done,
        }
    }

    /// Moves up to `max` messages into `out`, in delivery order (highest band
    /// first, FIFO within a band), under one lock acquisition. Never waits.
    /// Returns how many were moved: 0 if the queue is empty, paused or closed
    /// and drained.
    pub fn try_recv_batch(&self, max: usize, out: &mut Vec<T>) -> usize {
        let mut wake = Wake::None;
        let taken = {
            let mut state = self.lock();
            let taken = state.pop_batch(max, out);
            if taken > 0 {
                state.send_waiters.take(taken, &mut wake);
                self.shared.publish(&state);
            }
            taken
        };
        wake.wake();
        taken
    }
}

#[cfg(test)]
mod polling_tests {
    use super::*;
    use crate::queue::*;
    use crate::MessageHeader;
    use std::sync::Arc;

    #[derive(Debug, crate::Message)]
    struct M {
        n: u64,
        header: MessageHeader,
    }

    /// A receive that looks again before it sleeps (a thread kernel's
    /// replies) passes the shared cases ([`wait::checks`]); a queue built by
    /// hand registers at once.
    #[test]
    fn a_polling_receive_gets_early_and_late_messages() {
        let waits = ReceiverWait {
            spin: true,
            async_poll: true,
        };
        let q = Arc::new(MessageQueue::<M>::for_runtime(QueueConfig::new(8), waits).unwrap());
        assert!(q.polls_first());
        let (tx, closer) = (q.clone(), q.clone());
        wait::checks::looks_again_then_sleeps(
            |deadline| {
                let q = q.clone();
                async move { q.recv_polling_first(deadline).await.map(|m| m.n) }
            },
            move |n| {
                tx.try_send(M {
                    n,
                    header: MessageHeader::new(),
                })
                .unwrap()
            },
            move || closer.close(),
        );
        let s = q.stats();
        assert_eq!((s.enqueued, s.dequeued), (2, 2));
        assert!(!MessageQueue::<M>::new(QueueConfig::new(8)).unwrap().polls_first());
    }
}
