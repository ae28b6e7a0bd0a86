//! The future of [`KernelHandle::call`](crate::KernelHandle::call) without a
//! time limit: register the reply slot, send the request, wait for the
//! reply, as one hand-written state machine (an `async fn` around the send
//! and the wait nests three state machines, each with its own entry, exit
//! and drop, on the hottest request/response path).
//!
//! Invariants:
//! - the reply slot is registered before the request is sent, so the reply
//!   cannot overtake it; it is registered with the waker of the first poll,
//!   so the wait that follows takes no lock while nothing has changed;
//! - a request that was never sent comes back in the error; once it was
//!   sent, no error carries it;
//! - dropping the future at any point unregisters the slot, and a reply
//!   that came meanwhile goes on to the output queue (the pending call's
//!   own drop).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{CallError, SendError};
use crate::message::Message;
use crate::runtime::input::{InputPort, PortSend};
use crate::runtime::output::{OutputPort, PendingCall};

/// One call in progress (see the module documentation).
pub(crate) struct Call<'a, In: Message, Out: Message> {
    output: &'a OutputPort<Out>,
    /// The send of the request (which holds it until it is queued).
    send: PortSend<'a, In>,
    /// The reply slot, from the first poll on.
    pending: Option<PendingCall<'a, Out>>,
    phase: Phase,
}

/// Where a call is; the parts it needs stay in place from one phase to the
/// next (nothing moves between variants).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending the request (the slot is registered on the first poll).
    Send,
    /// The request is in the input queue; the reply is to come.
    Wait,
    /// Returned its result.
    Done,
}

// Never pinned structurally: the request moves only by value, and the send
// that holds it is itself `Unpin`.
impl<In: Message, Out: Message> Unpin for Call<'_, In, Out> {}

impl<'a, In: Message, Out: Message> Call<'a, In, Out> {
    pub(crate) fn new(input: &'a InputPort<In>, output: &'a OutputPort<Out>, request: In) -> Self {
        Call {
            output,
            send: input.send(request, None, None),
            pending: None,
            phase: Phase::Send,
        }
    }

    /// Registers the reply slot with `cx`'s waker, before the request
    /// leaves; a refusal hands the request back.
    fn register(&mut self, cx: &Context<'_>) -> Result<(), CallError<In>> {
        let Some(id) = self.send.message().map(Message::message_id) else {
            return Ok(());
        };
        match self.output.expect_reply(id, Some(cx.waker())) {
            Ok(pending) => {
                self.pending = Some(pending);
                Ok(())
            }
            Err(e) => match self.send.take_message() {
                Some(request) => Err(SendError::new(request, e).into()),
                None => Err(CallError::after_send(e)),
            },
        }
    }
}

impl<In: Message, Out: Message> Future for Call<'_, In, Out> {
    type Output = Result<Out, CallError<In>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.phase == Phase::Send {
            if this.pending.is_none() {
                if let Err(e) = this.register(cx) {
                    this.phase = Phase::Done;
                    return Poll::Ready(Err(e));
                }
            }
            match Pin::new(&mut this.send).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(refused)) => {
                    // Dropping the pending call unregisters its slot.
                    this.pending = None;
                    this.phase = Phase::Done;
                    return Poll::Ready(Err(refused.into()));
                }
                Poll::Ready(Ok(())) => this.phase = Phase::Wait,
            }
            if let Some(got) = this.pending.as_mut().and_then(|p| p.spin_first(None)) {
                this.phase = Phase::Done;
                return Poll::Ready(got.map_err(CallError::after_send));
            }
        }
        if this.phase == Phase::Wait {
            if let Some(pending) = &mut this.pending {
                let got = std::task::ready!(pending.poll_reply(cx));
                this.phase = Phase::Done;
                return Poll::Ready(got.map_err(CallError::after_send));
            }
        }
        // Polled again after it returned its result (a misuse the `Future`
        // contract allows to hang): nothing left to do.
        Poll::Pending
    }
}
