//! The sending half of [`MessageQueue`]: single sends (`try_send`, `send`,
//! `send_blocking` and their timeouts) and the batch send the runtime uses.
//!
//! # Invariant
//!
//! Every send applies the backpressure strategy under the queue's lock in
//! one critical section ([`State::push`]): the message is queued, dropped
//! as the strategy asks (counted), or handed back: in the error, counted
//! as its refusal, or to a send that will wait for room, counted by
//! nothing until its last attempt; never two of these. A send that must wait for room
//! registers its waker in the same critical section as the failed push; a
//! push that makes a message deliverable wakes the oldest waiting receiver
//! there too. Dropped messages and wakers are dropped / woken after the
//! lock is released (their code may use the queue).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::fifo::Fifo;
use super::registration::{Registration, Side};
use super::state::{OnFull, Push, Wake};
use super::timer::Sleep;
use super::wait::{self, Backoff, ThreadWaker};
use super::{deadline_after, MessageQueue, Refusal, SendError};
#[cfg(doc)]
use super::{state::State, Backpressure, QueueConfig};
use crate::Message;

impl<T: Message> MessageQueue<T> {
    // ---- sending -------------------------------------------------------

    /// Sends without waiting.
    ///
    /// # Errors
    /// - [`SendError::Full`] if the queue is full under [`Backpressure::Block`]
    ///   or [`Backpressure::Reject`] (never under [`Backpressure::DropOldest`]);
    /// - [`SendError::Closed`] if the queue is closed.
    ///
    /// The message is handed back in the error.
    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>> {
        match self.push_one(msg, OnFull::Reject, None) {
            Ok(()) => Ok(()),
            // `OnFull::Reject` never asks to wait; treat it as full anyway.
            Err(Err(msg)) => Err(SendError::Full(msg)),
            Err(Ok(e)) => Err(e),
        }
    }

    /// Sends, waiting for room under [`Backpressure::Block`] for at most the
    /// configured [`QueueConfig::send_timeout`] (forever if `None`). Other
    /// strategies never wait: this is then the same as [`try_send`](Self::try_send).
    ///
    /// Works on any executor. Cancel-safe in the sense that dropping the
    /// future while it waits drops the message (it was never queued) and
    /// leaves the queue and its counters untouched.
    ///
    /// # Errors
    /// [`SendError::Timeout`], [`SendError::Full`] (Reject) or
    /// [`SendError::Closed`], with the message handed back.
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        // The common case completes here: one future, the message moved
        // once into it and once into the queue (see `wait_to_send`).
        let Some(msg) = self.first_try(msg)? else {
            return Ok(());
        };
        let deadline = self.shared.config.send_timeout.and_then(deadline_after);
        self.wait_to_send(msg, deadline).await
    }

    /// Like [`send`](Self::send), waiting at most `timeout` (instead of the
    /// configured send timeout) for room.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>> {
        let Some(msg) = self.first_try(msg)? else {
            return Ok(());
        };
        self.wait_to_send(msg, deadline_after(timeout)).await
    }

    /// Like [`send`](Self::send), blocking the calling thread while it waits.
    /// Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_blocking(&self, msg: T) -> Result<(), SendError<T>> {
        let deadline = self.shared.config.send_timeout.and_then(deadline_after);
        self.send_blocking_until(msg, deadline)
    }

    /// Like [`send_timeout`](Self::send_timeout), blocking the calling thread
    /// while it waits. Do not call it inside an async task.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_blocking_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_blocking_until(msg, deadline_after(timeout))
    }

    /// One push under the lock. `Ok` when done; `Err(Ok(e))` a final
    /// refusal; `Err(Err(msg))` must wait (then, with `waiter`, registered
    /// under the same lock).
    #[inline(always)]
    fn push_one(
        &self,
        msg: T,
        on_full: OnFull,
        waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>,
    ) -> Result<(), Result<SendError<T>, T>> {
        let mut wake = Wake::None;
        let mut dropped = None;
        let result = {
            let mut state = self.lock();
            let outcome = state.push(msg, on_full);
            let result = match outcome {
                Push::Queued => Ok(()),
                Push::Evicted(old) => {
                    dropped = Some(old);
                    Ok(())
                }
                Push::DroppedIncoming(msg) => {
                    dropped = Some(msg);
                    Ok(())
                }
                Push::MustWait(msg) => Err(Err(msg)),
                Push::Full(msg) => Err(Ok(SendError::Full(msg))),
                Push::Timeout(msg) => Err(Ok(SendError::Timeout(msg))),
                Push::Closed(msg) => Err(Ok(SendError::Closed(msg))),
            };
            match (&result, waiter) {
                (Err(Err(_)), Some((reg, waker))) => reg.register(&mut state, waker),
                (_, Some((reg, _))) => reg.finish(&mut state, result.is_ok(), &mut wake),
                _ => {}
            }
            if result.is_ok() && state.deliverable() {
                if let Some(w) = state.recv_waiters.take_one() {
                    wake.push(w);
                }
            }
            self.shared.publish(&state);
            result
        };
        // After the lock: a destructor or a waker may use the queue.
        drop(dropped);
        wake.wake();
        result
    }

    /// The first attempt of a send that may wait, without waiting: `Ok(None)`
    /// when done, `Ok(Some(msg))` when it must wait for room (nothing
    /// counted), `Err` a final refusal. (Crate-internal: the runtime's fast
    /// path, before it sets up a wait.)
    #[inline]
    pub(crate) fn push_or_wait(&self, msg: T) -> Result<Option<T>, (Refusal, T)> {
        match self.push_one(msg, OnFull::Wait, None) {
            Ok(()) => Ok(None),
            Err(Err(msg)) => Ok(Some(msg)),
            Err(Ok(e)) => Err(e.into_refusal()),
        }
    }

    /// A send's first attempt, which never waits: `Ok(None)` when done
    /// (queued, or dropped as the strategy asks), `Ok(Some(msg))` when it
    /// must wait for room (nothing counted), `Err` a refusal.
    #[inline(always)]
    fn first_try(&self, msg: T) -> Result<Option<T>, SendError<T>> {
        match self.push_one(msg, OnFull::Wait, None) {
            Ok(()) => Ok(None),
            Err(Err(msg)) => Ok(Some(msg)),
            Err(Ok(e)) => Err(e),
        }
    }

    /// The wait for room of [`send`](Self::send) and
    /// [`send_timeout`](Self::send_timeout), after their first attempt
    /// found the queue full. Boxed: held inline, its state (the message
    /// again, the waiter, the sleep) would make every send's future several
    /// times larger, and each layer of futures copies the message once more
    /// (a 120-byte message copied through misaligned stack slots stalls on
    /// store forwarding: most of a send's time, measured in
    /// docs/benchmarks.md, tenth pass).
    async fn wait_to_send(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        Box::pin(self.send_until_or_stop(msg, deadline, None))
            .await
            .map_err(|(why, msg)| SendError::from_refusal(why, msg))
    }

    /// [`send`](Self::send) until `deadline`, also giving up (with
    /// [`Refusal::Stopped`] and the message, counting nothing) once `stop`
    /// is cancelled (checked first). (Crate-internal, for the runtime's
    /// handler-side sends.)
    pub(crate) async fn send_until_or_stop(
        &self,
        msg: T,
        deadline: Option<Instant>,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<(), (Refusal, T)> {
        // Every caller has just tried once (`first_try`, `push_or_wait`);
        // this second look costs a lock on the slow path only. Without it
        // the round trip's hot path measured 35 instructions more (code
        // layout: callgrind, perf-comparison, current-thread), so it stays.
        let msg = match self.push_one(msg, OnFull::Wait, None) {
            Ok(()) => return Ok(()),
            Err(Ok(e)) => return Err(e.into_refusal()),
            Err(Err(msg)) => msg,
        };
        let mut reg = Registration::new(&self.shared, Side::Send);
        let mut sleep = deadline.map(Sleep::until);
        // Pinned here, polled only while waiting (no allocation).
        let mut stopped = std::pin::pin!(stopped_by(stop));
        let mut slot = Some(msg);
        poll_fn(|cx| {
            // `slot` is refilled before every `Pending`, and a finished
            // future is not polled again.
            let Some(m) = slot.take() else { return Poll::Pending };
            if stopped.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err((Refusal::Stopped, m)));
            }
            match self.push_one(m, OnFull::Wait, Some((&mut reg, cx.waker()))) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(Ok(e)) => return Poll::Ready(Err(e.into_refusal())),
                Err(Err(m)) => slot = Some(m),
            }
            let expired = sleep.as_mut().is_some_and(|s| Pin::new(s).poll(cx).is_ready());
            match slot.take() {
                Some(m) if expired => Poll::Ready(self.push_last(m, &mut reg).map_err(SendError::into_refusal)),
                other => {
                    slot = other;
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn send_blocking_until(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendError<T>> {
        let Some(mut msg) = self.first_try(msg)? else {
            return Ok(());
        };
        let capacity = self.shared.config.capacity;
        let mut backoff = Backoff::new(deadline, self.shared.spin_ns);
        let mut reg = Registration::new(&self.shared, Side::Send);
        let waker = ThreadWaker::current();
        // A hint that proved stale forces a park (no live spin on it).
        let mut stale = false;
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.push_last(msg, &mut reg);
            }
            let parking = stale || !backoff.snooze(|| self.shared.len.load(Ordering::Relaxed) < capacity);
            let waiter = (parking || reg.is_registered()).then_some((&mut reg, &waker));
            msg = match self.push_one(msg, OnFull::Wait, waiter) {
                Ok(()) => return Ok(()),
                Err(Ok(e)) => return Err(e),
                Err(Err(m)) => m,
            };
            stale = !parking;
            if parking && !wait::park_until(deadline) {
                return self.push_last(msg, &mut reg);
            }
        }
    }

    /// The attempt after the deadline passed: room or `Timeout` (also
    /// ending `reg`'s wait). A push with [`OnFull::Timeout`] never has to
    /// wait, so the waker is never registered.
    fn push_last(&self, msg: T, reg: &mut Registration<'_, T>) -> Result<(), SendError<T>> {
        match self.push_one(msg, OnFull::Timeout, Some((reg, std::task::Waker::noop()))) {
            Ok(()) => Ok(()),
            Err(Ok(e)) => Err(e),
            Err(Err(msg)) => Err(SendError::Timeout(msg)),
        }
    }

    /// Sends the messages of `msgs` in order, queueing as many as fit under
    /// one lock acquisition at a time and waiting for room under `Block`
    /// (until `deadline`, or until `stop` is cancelled). Stops at the first
    /// refusal, which is counted like a single refused send, and returns it
    /// with the messages not sent, in order, the refused one first (the
    /// runtime's API hands a refused batch's rest back).
    pub(crate) async fn send_batch_until(
        &self,
        msgs: Vec<T>,
        deadline: Option<Instant>,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<(), (Refusal, Vec<T>)> {
        let mut pending = Fifo::from_vec(msgs);
        if let Some(why) = self.push_run(&mut pending, None) {
            return Err((why, pending.into_vec()));
        }
        if pending.is_empty() {
            return Ok(());
        }
        let mut reg = Registration::new(&self.shared, Side::Send);
        let mut sleep = deadline.map(Sleep::until);
        let mut stopped = std::pin::pin!(stopped_by(stop));
        let mut done = false;
        let result = poll_fn(|cx| {
            if done {
                return Poll::Pending;
            }
            if stopped.as_mut().poll(cx).is_ready() {
                done = true;
                return Poll::Ready(Err(Refusal::Stopped));
            }
            if let Some(why) = self.push_run(&mut pending, Some((&mut reg, cx.waker()))) {
                done = true;
                return Poll::Ready(Err(why));
            }
            if pending.is_empty() {
                done = true;
                return Poll::Ready(Ok(()));
            }
            let expired = sleep.as_mut().is_some_and(|s| Pin::new(s).poll(cx).is_ready());
            if !expired {
                return Poll::Pending;
            }
            done = true;
            if let Some(why) = self.push_run(&mut pending, None) {
                return Poll::Ready(Err(why));
            }
            Poll::Ready(match pending.pop_front() {
                None => Ok(()),
                Some(first) => match self.push_last(first, &mut reg) {
                    // Room appeared at the last moment for the first one only.
                    Ok(()) if pending.is_empty() => Ok(()),
                    Ok(()) => Err(Refusal::Timeout),
                    Err(e) => {
                        let (why, first) = e.into_refusal();
                        pending.push_front(first);
                        Err(why)
                    }
                },
            })
        })
        .await;
        drop(reg);
        result.map_err(|why| (why, pending.into_vec()))
    }

    /// Queues from the front of `pending` as many messages as fit, under one
    /// lock and at most one clock read; a message that must wait, or that is refused
    /// (closed, or full under `Reject`), is put back at the front, and a
    /// refusal is returned. With `waiter`, a waiter that must wait is
    /// registered under the same lock.
    fn push_run(
        &self,
        pending: &mut Fifo<T>,
        waiter: Option<(&mut Registration<'_, T>, &std::task::Waker)>,
    ) -> Option<Refusal> {
        let mut dropped = Vec::new();
        let mut wake = Wake::None;
        let refused = {
            let mut state = self.lock();
            let mut queued = 0usize;
            let mut refused = None;
            let mut must_wait = false;
            queued += state.push_fitting(pending);
            while let Some(msg) = pending.pop_front() {
                let (why, msg) = match state.push(msg, OnFull::Wait) {
                    Push::Queued => {
                        queued += 1;
                        continue;
                    }
                    Push::Evicted(old) => {
                        queued += 1;
                        dropped.push(old);
                        continue;
                    }
                    Push::DroppedIncoming(msg) => {
                        dropped.push(msg);
                        continue;
                    }
                    Push::MustWait(msg) => (None, msg),
                    Push::Full(msg) => (Some(Refusal::Full), msg),
                    Push::Timeout(msg) => (Some(Refusal::Timeout), msg),
                    Push::Closed(msg) => (Some(Refusal::Closed), msg),
                };
                pending.push_front(msg);
                must_wait = why.is_none();
                refused = why;
                break;
            }
            if let Some((reg, waker)) = waiter {
                if must_wait {
                    reg.register(&mut state, waker);
                } else {
                    reg.finish(&mut state, true, &mut wake);
                }
            }
            if queued > 0 && !state.is_paused() {
                state.recv_waiters.take(queued, &mut wake);
            }
            self.shared.publish(&state);
            refused
        };
        // Dropped after the lock, so a destructor may use the queue.
        drop(dropped);
        wake.wake();
        refused
    }
}

/// Ends once `stop` is cancelled; never without one. Polled only while a
/// send waits, so a stopped kernel's handler gets its message back.
async fn stopped_by(stop: Option<&tokio_util::sync::CancellationToken>) {
    match stop {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::queue::*;
    use crate::MessageHeader;

    #[derive(Debug, crate::Message)]
    struct M {
        n: u64,
        header: MessageHeader,
    }

    fn batch(range: std::ops::Range<u64>) -> Vec<M> {
        range
            .map(|n| M {
                n,
                header: MessageHeader::new(),
            })
            .collect()
    }

    fn with_priority(n: u64, p: u8) -> M {
        M {
            n,
            header: MessageHeader::with_priority(p),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// A batch send moves what fits in one run and then applies the
        /// backpressure strategy message by message: the queue must end up
        /// exactly as after the same messages sent one at a time (stopping
        /// at the first refusal), and batch receives must match too, down to
        /// which messages' waits are sampled. Long batches of one band (half
        /// the steps: mostly priority 100) take the path where a whole batch
        /// is queued in its own buffer, behind other messages or into an
        /// empty band.
        #[test]
        fn a_batch_send_equals_sends_one_at_a_time(
            capacity in proptest::prop_oneof![1usize..9, 9usize..80],
            backpressure in proptest::sample::select(Backpressure::ALL.to_vec()),
            sample_every in 0u32..5,
            steps in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::collection::vec(0u8..=255, 0..7),
                        proptest::collection::vec(proptest::prop_oneof![15 => proptest::strategy::Just(100u8), 1 => 0u8..=255], 0..40),
                    ],
                    0usize..50,
                ),
                1..12,
            ),
        ) {
            let config = QueueConfig::new(capacity).with_backpressure(backpressure).with_wait_sample_every(sample_every);
            let batched = MessageQueue::<M>::new(config.clone()).unwrap();
            let single = MessageQueue::<M>::new(config).unwrap();
            let mut n = 0u64;
            for (priorities, max) in steps {
                let msgs: Vec<(u64, u8)> = priorities.iter().map(|&p| { n += 1; (n, p) }).collect();
                let batch: Vec<M> = msgs.iter().map(|&(n, p)| with_priority(n, p)).collect();
                // An expired deadline: a full `Block` queue times out at once.
                let got = crate::runtime::park::block_on(
                    batched.send_batch_until(batch, Some(Instant::now()), None),
                );
                let got = got.map_err(|(_, rest)| rest.iter().map(|m| m.n).collect::<Vec<_>>());
                let mut want = Ok(());
                for (i, &(n, p)) in msgs.iter().enumerate() {
                    let r = match backpressure {
                        Backpressure::Block => single.send_blocking_timeout(with_priority(n, p), Duration::ZERO),
                        _ => single.try_send(with_priority(n, p)),
                    };
                    if r.is_err() {
                        want = Err(msgs[i..].iter().map(|&(n, _)| n).collect::<Vec<_>>());
                        break;
                    }
                }
                proptest::prop_assert_eq!(got, want);
                // Their counters, not how they waited: the batch with an
                // expired deadline registers its wait before it times out,
                // the single blocking send with a zero timeout does not.
                let counters = |s: QueueStats| QueueStats { receive_sleeps: 0, send_sleeps: 0, ..s };
                proptest::prop_assert_eq!(counters(batched.stats()), counters(single.stats()));
                let (mut a, mut b) = (Vec::new(), Vec::new());
                proptest::prop_assert_eq!(batched.try_recv_batch(max, &mut a), single.try_recv_batch(max, &mut b));
                proptest::prop_assert_eq!(
                    a.iter().map(|m| m.n).collect::<Vec<_>>(),
                    b.iter().map(|m| m.n).collect::<Vec<_>>()
                );
                proptest::prop_assert_eq!(counters(batched.stats()), counters(single.stats()));
                proptest::prop_assert_eq!(batched.wait_histogram().len(), single.wait_histogram().len());
            }
        }
    }

    #[test]
    fn a_batch_waits_for_room_and_keeps_its_order() {
        let q = MessageQueue::<M>::with_capacity(4, Backpressure::Block).unwrap();
        let rx = q.clone();
        let consumer = std::thread::spawn(move || (0..100).map(|_| rx.recv_blocking().unwrap().n).collect::<Vec<_>>());
        crate::runtime::park::block_on(q.send_batch_until(batch(0..100), None, None)).unwrap();
        assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
        let s = q.stats();
        assert_eq!((s.enqueued, s.dequeued, s.rejected), (100, 100, 0));
    }

    #[test]
    fn a_refused_batch_counts_one_refusal_and_hands_back_the_unsent() {
        let unsent = |r: Result<(), (Refusal, Vec<M>)>| {
            r.map_err(|(why, rest)| (why, rest.iter().map(|m| m.n).collect::<Vec<_>>()))
        };
        let q = MessageQueue::<M>::with_capacity(3, Backpressure::Reject).unwrap();
        let r = crate::runtime::park::block_on(q.send_batch_until(batch(0..5), None, None));
        assert_eq!(unsent(r), Err((Refusal::Full, vec![3, 4])));
        let s = q.stats();
        assert_eq!((s.enqueued, s.rejected, s.depth), (3, 1, 3));

        let q = MessageQueue::<M>::with_capacity(2, Backpressure::Block).unwrap();
        let r = crate::runtime::park::block_on(q.send_batch_until(
            batch(0..4),
            Instant::now().checked_add(Duration::from_millis(20)),
            None,
        ));
        assert_eq!(unsent(r), Err((Refusal::Timeout, vec![2, 3])));
        assert_eq!(q.stats().timed_out, 1);

        let stop = tokio_util::sync::CancellationToken::new();
        stop.cancel();
        let r = crate::runtime::park::block_on(q.send_batch_until(batch(7..9), None, Some(&stop)));
        assert_eq!(unsent(r), Err((Refusal::Stopped, vec![7, 8])));
        let r = crate::runtime::park::block_on(q.send_until_or_stop(batch(9..10).remove(0), None, Some(&stop)));
        assert!(matches!(r, Err((Refusal::Stopped, M { n: 9, .. }))));
        assert_eq!(q.stats().attempts(), 2 + 1, "a stopped send is not an attempt");

        q.close();
        let r = crate::runtime::park::block_on(q.send_batch_until(batch(0..3), None, None));
        assert_eq!(unsent(r), Err((Refusal::Closed, vec![0, 1, 2])));
        assert_eq!(q.stats().closed_rejections, 1);
    }
}
