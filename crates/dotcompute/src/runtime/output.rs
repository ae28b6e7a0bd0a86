//! The receiving side of a kernel, and where its handler's sends go (the
//! host's receive queue, a pending `call`, or a linked kernel's input).
//!
//! Invariants:
//! - a host receive returns the next message of the output queue; a call
//!   gets exactly the reply carrying its correlation id, straight from the
//!   handler's send (see [`replies`](crate::runtime::replies)), so a call
//!   never holds other outputs and the queue's bound is the only buffer;
//! - a reply handed straight to a call is counted in the output queue's
//!   statistics as enqueued and dequeued at once, so the counters still
//!   account for every message the handler sent to the host;
//! - a handler's send to the host refused by the output queue hands its
//!   message back, with the reason mapped in one place
//!   ([`KernelCore::refusal_error`]);
//! - once the kernel has ended, the messages it produced are still
//!   returned, then the reason it ended; pending calls wake with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::future::Either;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::queue::{spin_for, timer, Backpressure, Recv, RecvError, Refusal};
use crate::runtime::core::{KernelCore, Side};
use crate::runtime::input::InputPort;
use crate::runtime::replies::{Registration, Replies, SlotView};
use crate::runtime::ring_channel::RingChannel;
use crate::runtime::state::Operation;
use crate::runtime::telemetry::{lock, KernelMetrics};
use crate::runtime::transport::Transport;

/// The receiving side of a kernel, and where its handler's sends go.
pub(crate) struct OutputPort<Out> {
    pub core: Arc<KernelCore>,
    pub queue: Transport<Out>,
    pub(crate) replies: Replies<Out>,
    pub(crate) route: Mutex<Option<Arc<InputPort<Out>>>>,
    pub route_version: AtomicU64,
    /// Whether `route` names a kernel (one load, for the process tier's
    /// relay, which leaves a linked kernel's replies to the kernel's thread).
    pub(crate) linked: AtomicBool,
}

impl<Out: Message> OutputPort<Out> {
    pub fn route(&self) -> Option<Arc<InputPort<Out>>> {
        lock(&self.route).clone()
    }

    pub(crate) fn set_route(&self, target: Option<Arc<InputPort<Out>>>) {
        let mut route = lock(&self.route);
        self.linked.store(target.is_some(), Ordering::Release);
        *route = target;
        self.route_version.fetch_add(1, Ordering::Release);
    }

    // ---- the host's side ----------------------------------------------

    fn receive_timeout_error(&self, timeout: Duration) -> Error {
        Error::QueueTimeout {
            kernel: self.core.id.to_string(),
            operation: Operation::Receive.verb(),
            timeout,
        }
    }

    /// Receives the next message of the output queue.
    pub fn receive(&self, timeout: Option<Duration>) -> impl Future<Output = Result<Out>> + Send + '_ {
        match (timeout, &self.queue) {
            // The hot path (an async kernel's replies, no timeout): the
            // queue's own receive inside a small future of ours, no `async`
            // layer around it (each one costs its state machine and a copy
            // of the message on the way out).
            (None, Transport::Queue(q)) if !q.polls_first() => Either::Left(HostReceive {
                port: self,
                recv: q.recv_until(None),
                checked: false,
            }),
            _ => Either::Right(self.receive_other(timeout)),
        }
    }

    /// [`receive`](Self::receive) off its hot path.
    async fn receive_other(&self, timeout: Option<Duration>) -> Result<Out> {
        self.core.check(Operation::Receive)?;
        let received = match (timeout, &self.queue) {
            // A thread kernel's replies: poll a while before sleeping.
            (None, Transport::Queue(q)) if q.polls_first() => q.recv_polling_first(None).await,
            (None, Transport::Queue(q)) => q.recv_until(None).await,
            (None, Transport::Ring(r)) => r.recv().await,
            (Some(t), _) => match timer::timeout(t, self.queue.recv()).await {
                Some(r) => r,
                None => return Err(self.receive_timeout_error(t)),
            },
        };
        received.map_err(|_| self.core.end_error())
    }

    /// Receives from a plain (non-async) thread: spins on a ring, parks on a
    /// queue.
    pub fn receive_blocking(&self, timeout: Option<Duration>) -> Result<Out> {
        self.core.check(Operation::Receive)?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        match &self.queue {
            // Into a place of ours, not returned through the ring's layers
            // (see `RingChannel::try_recv_into`).
            Transport::Ring(ring) => {
                // (Matched apart, not as a tuple: moving `out` into a tuple
                // would be one more copy.)
                let mut out = None;
                match ring.recv_spin_into(&mut out, || false, deadline) {
                    Ok(true) => match out {
                        Some(m) => Ok(m),
                        None => Err(self.core.end_error()),
                    },
                    Ok(false) => Err(self.receive_timeout_error(timeout.unwrap_or_default())),
                    Err(_) => Err(self.core.end_error()),
                }
            }
            // Polls briefly, then parks (the queue's blocking wait): no
            // executor, no allocation. A relaying kernel may first let this
            // thread relay its reply (see `assist`).
            Transport::Queue(q) => {
                if q.ready_hint() == 0 {
                    if let Some(assist) = self.core.assist.get() {
                        assist.before_receive(deadline, &|| q.ready_hint() > 0);
                    }
                }
                match q.recv_blocking_until(deadline) {
                    Ok(m) => Ok(m),
                    Err(RecvError::Closed) => Err(self.core.end_error()),
                    Err(_) => Err(self.receive_timeout_error(timeout.unwrap_or_default())),
                }
            }
        }
    }

    /// Waits for one message, then takes up to `max - 1` more that are
    /// already there. Returns how many were appended to `out`.
    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Out>, timeout: Option<Duration>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive(timeout).await?);
        Ok(1 + self.queue.try_recv_batch(max - 1, out))
    }

    /// [`receive_batch`](Self::receive_batch) on a plain (non-async) thread.
    pub fn receive_batch_blocking(&self, max: usize, out: &mut Vec<Out>, timeout: Option<Duration>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive_blocking(timeout)?);
        Ok(1 + self.queue.try_recv_batch(max - 1, out))
    }

    /// Registers a call waiting for the reply correlated with `correlation`
    /// (register before sending the request, so the reply cannot overtake
    /// the registration).
    /// A task passes its `waker`: the slot holds it from the start, and the
    /// call's first wait needs no lock.
    pub fn expect_reply(&self, correlation: Uuid, waker: Option<&Waker>) -> Result<PendingCall<'_, Out>> {
        match self.replies.register(correlation, waker) {
            Ok(view) => Ok(PendingCall {
                port: self,
                correlation,
                view,
                taken: false,
            }),
            Err(Registration::Ended) => Err(self.core.end_error()),
            Err(Registration::Duplicate) => Err(Error::invalid(
                "request",
                correlation,
                "a call with this message id is already waiting for its reply",
            )),
        }
    }

    /// A reply that reached a call after it gave up: it goes to the output
    /// queue like any other output; if the queue refuses it (full or
    /// closed), it is counted as discarded.
    fn hand_on_late_reply(&self, msg: Out) {
        if self.queue.try_send(msg).is_err() {
            KernelMetrics::add(&self.core.metrics.discarded, 1);
        }
    }

    // ---- the handler's side -------------------------------------------

    /// A refusal of the output queue, as the handler sees it.
    fn refused<M>(&self, refusal: (Refusal, M)) -> SendError<M> {
        self.core
            .refused(Side::Output, refusal, Duration::ZERO, self.queue.capacity())
    }

    /// The first attempt of [`emit`](Self::emit), without waiting: `Ok(None)`
    /// when the message went to a pending call or into the output queue,
    /// `Ok(Some(msg))` when it must wait for room (`Block`; then `emit` it),
    /// `Err` a refusal.
    #[inline]
    pub fn try_emit(&self, msg: Out) -> std::result::Result<Option<Out>, SendError<Out>> {
        // With no call pending (one atomic load) the message goes straight
        // to the queue, not in and out of `offer`.
        if self.replies.any_pending() {
            return self.try_emit_offered(msg);
        }
        self.try_queue(msg)
    }

    /// [`try_emit`](Self::try_emit) while some call waits for a reply.
    fn try_emit_offered(&self, msg: Out) -> std::result::Result<Option<Out>, SendError<Out>> {
        match self.offer(msg) {
            Ok(()) => Ok(None),
            Err(msg) => self.try_queue(msg),
        }
    }

    /// The queue half of [`try_emit`](Self::try_emit). Under `Block` a full
    /// queue is to be waited on, not refused: going through `try_send` would
    /// count a refusal for a message that then gets in.
    #[inline(always)]
    fn try_queue(&self, msg: Out) -> std::result::Result<Option<Out>, SendError<Out>> {
        if self.core.config.output_backpressure == Backpressure::Block {
            self.queue.push_or_wait(msg).map_err(|r| self.refused(r))
        } else {
            self.queue
                .try_send(msg)
                .map(|()| None)
                .map_err(|e| self.refused(e.into_refusal()))
        }
    }

    /// The handler sends `msg` to the host: to the call waiting for it, or
    /// into the output queue under the output strategy (`Block` waits for
    /// room until `stop` is cancelled).
    pub async fn emit(&self, msg: Out, stop: &CancellationToken) -> std::result::Result<(), SendError<Out>> {
        match self.try_emit(msg)? {
            None => Ok(()),
            Some(msg) => self.emit_when_room(msg, stop).await,
        }
    }

    /// The rest of an [`emit`](Self::emit) whose [`try_emit`](Self::try_emit)
    /// found the queue full under `Block`: waits for room until `stop` is
    /// cancelled (the message was already offered to the pending calls).
    pub async fn emit_when_room(&self, msg: Out, stop: &CancellationToken) -> std::result::Result<(), SendError<Out>> {
        self.queue
            .send_until(msg, None, Some(stop))
            .await
            .map_err(|r| self.refused(r))
    }

    /// [`emit`](Self::emit) from the kernel's own thread: spins on a ring,
    /// parks on a queue.
    pub fn emit_blocking(&self, msg: Out, stop: &CancellationToken) -> std::result::Result<(), SendError<Out>> {
        match &self.queue {
            Transport::Ring(ring) => {
                // With no call pending (one atomic load) the message goes
                // straight to the ring: every pass through `offer` and back
                // is a copy of all its bytes, on the spin tier's critical path.
                if self.replies.any_pending() {
                    return self.emit_offered_blocking(ring, msg, stop);
                }
                ring.send_spin(msg, stop, None).map_err(|r| self.refused(r))
            }
            Transport::Queue(_) => crate::runtime::park::block_on(self.emit(msg, stop)),
        }
    }

    /// [`emit_blocking`](Self::emit_blocking) on a ring while some call waits
    /// for a reply.
    #[cold]
    fn emit_offered_blocking(
        &self,
        ring: &RingChannel<Out>,
        msg: Out,
        stop: &CancellationToken,
    ) -> std::result::Result<(), SendError<Out>> {
        match self.offer(msg) {
            Ok(()) => Ok(()),
            Err(msg) => ring.send_spin(msg, stop, None).map_err(|r| self.refused(r)),
        }
    }

    /// Offers each message of a batch to the pending calls; returns those
    /// that no call waits for (all of them, for one atomic load, when no
    /// call is pending).
    fn offer_batch(&self, msgs: Vec<Out>) -> Vec<Out> {
        if !self.replies.any_pending() {
            return msgs;
        }
        msgs.into_iter().filter_map(|m| self.offer(m).err()).collect()
    }

    /// Offers `msg` to the pending calls; a reply handed over is counted in
    /// the output queue's statistics as enqueued and dequeued at once.
    #[inline]
    fn offer(&self, msg: Out) -> std::result::Result<(), Out> {
        self.replies.offer(msg)?;
        self.queue.count_handed_over(1);
        Ok(())
    }

    /// The handler sends a batch to the host, in order; on a refusal the
    /// messages not sent come back.
    pub async fn emit_batch(
        &self,
        msgs: Vec<Out>,
        stop: &CancellationToken,
    ) -> std::result::Result<(), SendError<Vec<Out>>> {
        let msgs = self.offer_batch(msgs);
        self.queue
            .send_batch(msgs, None, Some(stop))
            .await
            .map_err(|r| self.refused(r))
    }

    /// [`emit_batch`](Self::emit_batch) from the kernel's own thread.
    pub fn emit_batch_blocking(
        &self,
        msgs: Vec<Out>,
        stop: &CancellationToken,
    ) -> std::result::Result<(), SendError<Vec<Out>>> {
        match &self.queue {
            Transport::Ring(ring) => {
                let msgs = self.offer_batch(msgs);
                ring.send_batch_spin(msgs.into(), stop, None)
                    .map_err(|r| self.refused(r))
            }
            Transport::Queue(_) => crate::runtime::park::block_on(self.emit_batch(msgs, stop)),
        }
    }
}

/// A call waiting for its reply. Dropping it (the call ended, timed out or
/// was cancelled) unregisters the call; a reply that arrived meanwhile goes
/// to the output queue, or is counted as discarded if the queue refuses it.
pub(crate) struct PendingCall<'a, Out: Message> {
    port: &'a OutputPort<Out>,
    correlation: Uuid,
    /// What this call last left in its slot (see [`SlotView`]).
    view: SlotView,
    /// The call took its reply, and with it its slot: nothing to unregister.
    taken: bool,
}

impl<Out: Message> PendingCall<'_, Out> {
    /// Waits for the reply until `deadline`; a timeout is reported as the
    /// caller's whole time `limit`.
    pub async fn wait(mut self, deadline: Option<Instant>, limit: Option<Duration>) -> Result<Out> {
        if let Some(got) = self.spin_first(deadline) {
            return got;
        }
        let port = self.port;
        let reply = std::future::poll_fn(|cx| self.poll_reply(cx));
        match deadline {
            None => reply.await,
            Some(d) => match timer::timeout_at(Some(d), reply).await {
                Some(got) => got,
                None => Err(port.receive_timeout_error(limit.unwrap_or_default())),
            },
        }
    }

    /// A reply from a kernel's own thread: look a while before sleeping, as
    /// the host's receive does (the slot is only locked again when a
    /// delivery or the close moved the epoch). `None` when the reply is
    /// still to come, or when the output is not such a queue.
    pub fn spin_first(&mut self, deadline: Option<Instant>) -> Option<Result<Out>> {
        if !self.port.queue.polls_first() {
            return None;
        }
        let (replies, correlation) = (&self.port.replies, self.correlation);
        let mut seen = None;
        let got = spin_for(deadline, |_| {
            let now = replies.epoch();
            if seen == Some(now) {
                return None;
            }
            seen = Some(now);
            replies.try_take(correlation)
        })?;
        self.taken = got.is_ok();
        Some(got.map_err(|_| self.port.core.end_error()))
    }

    /// Takes the reply if it came; otherwise keeps `cx`'s waker in the slot.
    /// While nothing changed since this call last looked, no lock is taken.
    #[inline]
    pub fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Result<Out>> {
        match std::task::ready!(self.port.replies.poll_reply(self.correlation, &mut self.view, cx)) {
            Ok(reply) => {
                self.taken = true;
                Poll::Ready(Ok(reply))
            }
            Err(_) => Poll::Ready(Err(self.port.core.end_error())),
        }
    }
}

impl<Out: Message> PendingCall<'_, Out> {
    /// [`wait`](Self::wait) from a plain thread; a relaying kernel may
    /// first let this thread relay the reply (see
    /// [`assist`](crate::runtime::assist)).
    pub fn wait_blocking(self, deadline: Option<Instant>, limit: Option<Duration>) -> Result<Out> {
        if let Some(assist) = self.port.core.assist.get() {
            let (replies, correlation) = (&self.port.replies, self.correlation);
            assist.before_receive(deadline, &|| replies.is_settled(correlation));
        }
        crate::runtime::park::block_on(self.wait(deadline, limit))
    }
}

impl<Out: Message> Drop for PendingCall<'_, Out> {
    #[inline]
    fn drop(&mut self) {
        // Nothing left once the call took its reply (the slot went with it).
        if !self.taken {
            self.unregister();
        }
    }
}

impl<Out: Message> PendingCall<'_, Out> {
    /// Removes the slot of a call that did not take its reply; a reply that
    /// came after the call gave up is passed on.
    #[cold]
    fn unregister(&mut self) {
        if let Some(late) = self.port.replies.unregister(self.correlation) {
            self.port.hand_on_late_reply(late);
        }
    }
}

/// The hot path of [`OutputPort::receive`]: the lifecycle check on the
/// first poll, then the output queue's receive.
struct HostReceive<'a, Out> {
    port: &'a OutputPort<Out>,
    recv: Recv<'a, Out>,
    checked: bool,
}

impl<Out: Message> Future for HostReceive<'_, Out> {
    type Output = Result<Out>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Out>> {
        let this = self.get_mut();
        if !this.checked {
            this.port.core.check(Operation::Receive)?;
            this.checked = true;
        }
        // Into a place of this poll's, then out as the result: the message
        // is copied twice, not once per layer (see `Recv::poll_into`).
        let mut out = None;
        match std::task::ready!(this.recv.poll_into(cx, &mut out)) {
            Ok(()) => Poll::Ready(out.ok_or_else(|| this.port.core.end_error())),
            Err(_) => Poll::Ready(Err(this.port.core.end_error())),
        }
    }
}
