//! The sending side of a kernel: its input queue behind lifecycle checks.
//!
//! Invariants:
//! - every send is checked against the kernel's state before it reaches the
//!   queue, so a kernel that is not active (or has ended) refuses at once;
//! - a message is either queued, counted as dropped by the queue's
//!   strategy, or handed back to its sender inside a [`SendError`] with the
//!   reason (a batch hands back the messages not sent, in order);
//! - a send that may wait honours one deadline: the caller's timeout, else
//!   the kernel's `send_timeout`, else none — in every mode, async or
//!   blocking.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, SendError};
use crate::message::Message;
use crate::queue::RecvError;
use crate::runtime::core::{KernelCore, Side};
use crate::runtime::state::Operation;
use crate::runtime::transport::Transport;

/// The sending side of a kernel: its input queue behind lifecycle checks.
pub(crate) struct InputPort<In> {
    pub core: Arc<KernelCore>,
    pub queue: Transport<In>,
}

impl<In: Message> InputPort<In> {
    /// The lifecycle check every send starts with; a refusal hands `msg` back.
    fn admit<M>(&self, msg: M) -> Result<M, SendError<M>> {
        match self.core.check(Operation::Send) {
            Ok(()) => Ok(msg),
            Err(e) => Err(SendError::new(msg, e)),
        }
    }

    /// The wait a send may make: `timeout`, else the kernel's send timeout.
    fn wait_limit(&self, timeout: Option<Duration>) -> (Option<Instant>, Duration) {
        let limit = timeout.or(self.core.config.send_timeout);
        (
            limit.and_then(|t| Instant::now().checked_add(t)),
            limit.unwrap_or_default(),
        )
    }

    /// Sends as the host or another kernel would: checks the state, then
    /// applies the queue's strategy. `timeout` overrides the configured one;
    /// `stop` (a sending handler's own cancellation) ends a wait early.
    ///
    /// A future of ours, not an `async fn`: the common case (room) is one
    /// poll with no state machine around it, and a wait for room, the rare
    /// case, lives in a box (held inline, its state — the message again,
    /// the waiter, the sleep, the stop — would make every send's future
    /// several times larger, and every caller moves it).
    pub fn send<'a>(
        &'a self,
        msg: In,
        timeout: Option<Duration>,
        stop: Option<&'a CancellationToken>,
    ) -> PortSend<'a, In> {
        PortSend {
            port: self,
            timeout,
            stop,
            state: SendState::First(msg),
        }
    }

    /// A refusal met before any wait (`timeout`: the wait that would have applied).
    #[cold]
    fn refused<M>(&self, refusal: (crate::queue::Refusal, M), timeout: Option<Duration>) -> SendError<M> {
        let limit = timeout.or(self.core.config.send_timeout).unwrap_or_default();
        self.core.refused(Side::Input, refusal, limit, self.queue.capacity())
    }

    /// Like [`send`](Self::send), returning a receipt that resolves once
    /// the handler is done with the message.
    pub async fn send_tracked(
        &self,
        msg: In,
        timeout: Option<Duration>,
    ) -> Result<crate::runtime::receipt::Receipt, SendError<In>> {
        let msg = self.admit(msg)?;
        let id = msg.message_id();
        let receipt = match self.core.receipts.register(&self.core.id, id) {
            Ok(r) => r,
            Err(e) => return Err(SendError::new(msg, e)),
        };
        match self.send(msg, timeout, None).await {
            Ok(()) => Ok(receipt),
            Err(e) => {
                self.core.receipts.cancel(id);
                Err(e)
            }
        }
    }

    /// Sends without waiting.
    pub fn try_send(&self, msg: In) -> Result<(), SendError<In>> {
        let msg = self.admit(msg)?;
        self.queue.try_send(msg).map_err(|e| {
            self.core
                .refused(Side::Input, e.into_refusal(), Duration::ZERO, self.queue.capacity())
        })
    }

    /// Sends a batch in order (one lock per run of pushes). On a refusal the
    /// messages not sent come back, in order, the refused one first.
    pub async fn send_batch(
        &self,
        msgs: Vec<In>,
        timeout: Option<Duration>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), SendError<Vec<In>>> {
        // One unit of cooperative budget per batch (see `send`).
        spend_budget().await;
        let msgs = self.admit(msgs)?;
        let (deadline, limit) = self.wait_limit(timeout);
        self.queue
            .send_batch(msgs, deadline, stop)
            .await
            .map_err(|refusal| self.core.refused(Side::Input, refusal, limit, self.queue.capacity()))
    }

    /// [`send_batch`](Self::send_batch) from a plain (non-async) thread:
    /// spins on a ring, parks on a queue.
    pub fn send_batch_blocking(
        &self,
        msgs: Vec<In>,
        timeout: Option<Duration>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), SendError<Vec<In>>> {
        match (&self.queue, stop) {
            (Transport::Ring(ring), None) => {
                let msgs = self.admit(msgs)?;
                let (deadline, limit) = self.wait_limit(timeout);
                ring.send_batch_spin(msgs.into(), &self.core.cancel, deadline)
                    .map_err(|refusal| self.core.refused(Side::Input, refusal, limit, self.queue.capacity()))
            }
            _ => {
                crate::runtime::park::block_on(self.send_batch(msgs, timeout, stop))?;
                self.assist_after_send();
                Ok(())
            }
        }
    }

    /// Sends from a plain (non-async) thread: spins on a ring, parks on a
    /// queue. (With a `stop` token the ring is waited on through the async
    /// path, which watches both that token and this kernel's end.)
    pub fn send_blocking(
        &self,
        msg: In,
        timeout: Option<Duration>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), SendError<In>> {
        match (&self.queue, stop) {
            (Transport::Ring(ring), None) => {
                let msg = self.admit(msg)?;
                let (deadline, limit) = self.wait_limit(timeout);
                ring.send_spin(msg, &self.core.cancel, deadline)
                    .map_err(|refusal| self.core.refused(Side::Input, refusal, limit, self.queue.capacity()))
            }
            _ => {
                crate::runtime::park::block_on(self.send(msg, timeout, stop))?;
                self.assist_after_send();
                Ok(())
            }
        }
    }

    /// Lets a relaying kernel's assist move what a blocking send queued
    /// (see [`assist`](crate::runtime::assist)).
    #[inline]
    fn assist_after_send(&self) {
        if let Some(assist) = self.core.assist.get() {
            assist.after_send();
        }
    }
}

/// The future of [`InputPort::send`].
pub(crate) struct PortSend<'a, In> {
    port: &'a InputPort<In>,
    timeout: Option<Duration>,
    stop: Option<&'a CancellationToken>,
    state: SendState<'a, In>,
}

enum SendState<'a, In> {
    /// Not tried yet: the message.
    First(In),
    /// Waiting for room (`Block`).
    Waiting(Pin<Box<dyn Future<Output = Result<(), SendError<In>>> + Send + 'a>>),
    /// Returned its result.
    Done,
}

// Never pinned structurally: the message is only ever moved out by value,
// and the wait is pinned in its own box.
impl<In> Unpin for PortSend<'_, In> {}

impl<In> PortSend<'_, In> {
    /// The message, while this send has not tried to queue it yet.
    #[inline]
    pub(crate) fn message(&self) -> Option<&In> {
        match &self.state {
            SendState::First(msg) => Some(msg),
            _ => None,
        }
    }

    /// Takes the message back before the send tried to queue it (the send
    /// then has nothing left to do).
    pub(crate) fn take_message(&mut self) -> Option<In> {
        match std::mem::replace(&mut self.state, SendState::Done) {
            SendState::First(msg) => Some(msg),
            other => {
                self.state = other;
                None
            }
        }
    }
}

impl<'a, In: Message> Future for PortSend<'a, In> {
    type Output = Result<(), SendError<In>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let SendState::Waiting(wait) = &mut this.state {
            let done = std::task::ready!(wait.as_mut().poll(cx));
            this.state = SendState::Done;
            return Poll::Ready(done);
        }
        // Every send spends a unit of Tokio's cooperative budget, as Tokio's
        // own channels do: a producer that always finds room still yields
        // now and then, so the kernel drains while the messages are warm in
        // cache instead of after the whole queue has been filled. Spent
        // before the state check, so the check and the push happen in the
        // same poll (with no budget left, the message stays here).
        std::task::ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
        let SendState::First(msg) = std::mem::replace(&mut this.state, SendState::Done) else {
            // Polled again after it returned its result (a misuse the
            // `Future` contract allows to hang): it has nothing left to do.
            return Poll::Pending;
        };
        let port = this.port;
        // Checked before the message moves anywhere (a refusal hands it back).
        if let Err(e) = port.core.check(Operation::Send) {
            return Poll::Ready(Err(SendError::new(msg, e)));
        }
        let msg = match port.queue.push_or_wait(msg) {
            Ok(None) => return Poll::Ready(Ok(())),
            Ok(Some(msg)) => msg,
            Err(refusal) => return Poll::Ready(Err(port.refused(refusal, this.timeout))),
        };
        let (deadline, limit) = port.wait_limit(this.timeout);
        let stop = this.stop;
        let mut wait: Pin<Box<dyn Future<Output = Result<(), SendError<In>>> + Send + 'a>> = Box::pin(async move {
            port.queue
                .send_until(msg, deadline, stop)
                .await
                .map_err(|refusal| port.core.refused(Side::Input, refusal, limit, port.queue.capacity()))
        });
        match wait.as_mut().poll(cx) {
            Poll::Ready(done) => Poll::Ready(done),
            Poll::Pending => {
                this.state = SendState::Waiting(wait);
                Poll::Pending
            }
        }
    }
}

/// Spends one unit of Tokio's cooperative budget, yielding first if the
/// task has none left (what `tokio::task::consume_budget` does, in one
/// poll function instead of a nested future).
#[inline]
pub(crate) fn spend_budget() -> impl std::future::Future<Output = ()> {
    std::future::poll_fn(|cx| tokio::task::coop::poll_proceed(cx).map(|progress| progress.made_progress()))
}

/// Maps a receive failure on a kernel's own input queue.
pub(crate) fn own_recv_error(core: &KernelCore, e: RecvError) -> Option<Error> {
    match e {
        RecvError::Closed => Some(core.terminating_error()),
        _ => None,
    }
}
