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
    input: &'a InputPort<In>,
    output: &'a OutputPort<Out>,
    state: State<'a, In, Out>,
}

enum State<'a, In: Message, Out: Message> {
    /// Not polled yet: the request.
    Start(In),
    /// The slot is registered; the request is on its way in.
    Sending(PortSend<'a, In>, PendingCall<'a, Out>),
    /// The request is in the input queue; the reply is to come.
    Waiting(PendingCall<'a, Out>),
    /// Returned its result.
    Done,
}

// Never pinned structurally: the request moves only by value, and the send
// it becomes is itself `Unpin`.
impl<In: Message, Out: Message> Unpin for Call<'_, In, Out> {}

impl<'a, In: Message, Out: Message> Call<'a, In, Out> {
    pub(crate) fn new(input: &'a InputPort<In>, output: &'a OutputPort<Out>, request: In) -> Self {
        Call {
            input,
            output,
            state: State::Start(request),
        }
    }
}

impl<In: Message, Out: Message> Future for Call<'_, In, Out> {
    type Output = Result<Out, CallError<In>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.state, State::Start(_)) {
            let State::Start(request) = std::mem::replace(&mut this.state, State::Done) else {
                return Poll::Pending;
            };
            let pending = match this.output.expect_reply(request.message_id(), Some(cx.waker())) {
                Ok(pending) => pending,
                Err(e) => return Poll::Ready(Err(SendError::new(request, e).into())),
            };
            this.state = State::Sending(this.input.send(request, None, None), pending);
        }
        if let State::Sending(send, _) = &mut this.state {
            match Pin::new(send).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(refused)) => {
                    // Dropping the pending call unregisters its slot.
                    this.state = State::Done;
                    return Poll::Ready(Err(refused.into()));
                }
                Poll::Ready(Ok(())) => {
                    let State::Sending(_, mut pending) = std::mem::replace(&mut this.state, State::Done) else {
                        return Poll::Pending;
                    };
                    if let Some(got) = pending.spin_first(None) {
                        return Poll::Ready(got.map_err(CallError::after_send));
                    }
                    this.state = State::Waiting(pending);
                }
            }
        }
        if let State::Waiting(pending) = &mut this.state {
            let got = std::task::ready!(pending.poll_reply(cx));
            this.state = State::Done;
            return Poll::Ready(got.map_err(CallError::after_send));
        }
        // Polled again after it returned its result (a misuse the `Future`
        // contract allows to hang): nothing left to do.
        Poll::Pending
    }
}
