//! The lifecycle core shared by a kernel's parts: its id, configuration,
//! state, failure, cancellation token and telemetry counters.
//!
//! Invariants:
//! - the state changes only through [`KernelState::apply`] (via
//!   [`KernelCore::transition`]) or, when the handler ends on its own, from a
//!   running state to `Terminated`/`Failed` (the supervisor);
//! - a host operation is checked against the state before it acts, and a
//!   failed kernel answers with its failure rather than a state error;
//! - the state is changed under its mutex (so transitions are serialised)
//!   and published in an atomic word in the same step, so the checks on
//!   every send and receive read one atomic instead of taking the mutex;
//! - [`KernelCore::cancel_now`] sets a flag before it cancels the token, so
//!   the per-message check is one atomic load. Every cancellation is
//!   followed by closing the kernel's input queue, which wakes a handler
//!   waiting in `receive` (the receive path relies on that instead of
//!   listening to the token).
//! - a queue's refusal becomes an [`Error`] in one place,
//!   [`KernelCore::refusal_error`], whichever send met it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, HandlerError, Result, SendError};
use crate::queue::Refusal;
use crate::runtime::config::KernelConfig;
use crate::runtime::state::{KernelState, Operation};
use crate::runtime::telemetry::{lock, KernelMetrics};
use crate::runtime::RuntimeShared;

/// The lifecycle, failure and telemetry shared by a kernel's parts.
pub(crate) struct KernelCore {
    pub id: Arc<str>,
    pub config: KernelConfig,
    state: Mutex<KernelState>,
    /// `state` as its index in [`KernelState::ALL`], for lock-free reads.
    state_word: AtomicU8,
    pub(super) failure: Mutex<Option<HandlerError>>,
    pub cancel: CancellationToken,
    cancelled: AtomicBool,
    pub metrics: KernelMetrics,
    pub runtime: Weak<RuntimeShared>,
    pub receipts: crate::runtime::receipt::Receipts,
    /// Relaying a blocking host call may do in its own thread.
    pub assist: crate::runtime::assist::AssistSlot,
}

fn state_word(state: KernelState) -> u8 {
    KernelState::ALL.iter().position(|s| *s == state).unwrap_or(0) as u8
}

impl KernelCore {
    pub(super) fn new(id: Arc<str>, config: KernelConfig, runtime: Weak<RuntimeShared>) -> Self {
        KernelCore {
            id,
            config,
            state: Mutex::new(KernelState::Created),
            state_word: AtomicU8::new(state_word(KernelState::Created)),
            failure: Mutex::new(None),
            cancel: CancellationToken::new(),
            cancelled: AtomicBool::new(false),
            metrics: KernelMetrics::new(),
            runtime,
            receipts: crate::runtime::receipt::Receipts::default(),
            assist: crate::runtime::assist::AssistSlot::default(),
        }
    }

    /// The current state (one atomic load).
    #[inline]
    pub fn state(&self) -> KernelState {
        KernelState::ALL
            .get(usize::from(self.state_word.load(Ordering::Acquire)))
            .copied()
            .unwrap_or(KernelState::Created)
    }

    /// Stores `next` (the state mutex held).
    fn publish(&self, st: &mut KernelState, next: KernelState) {
        *st = next;
        self.state_word.store(state_word(next), Ordering::Release);
    }

    /// Moves a running kernel to `next` (a handler that ended on its own);
    /// a kernel no longer running keeps its state.
    pub(super) fn end_running(&self, next: KernelState) {
        let mut st = lock(&self.state);
        if st.is_running() {
            tracing::debug!(kernel = %self.id, from = %*st, to = %next, "kernel state change");
            self.publish(&mut st, next);
        }
    }

    /// Cancels the kernel: the flag first (what the hot paths read), then
    /// the token (what slow waits listen to). Callers close the input queue
    /// right after (see the module invariants).
    pub fn cancel_now(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.cancel.cancel();
    }

    /// Whether [`cancel_now`](Self::cancel_now) was called (one atomic load).
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Applies `op` and stores the next state; returns the previous one.
    pub(super) fn transition(&self, op: Operation) -> Result<KernelState> {
        let mut st = lock(&self.state);
        let prev = *st;
        let next = prev.apply(&self.id, op)?;
        if next != prev {
            tracing::debug!(kernel = %self.id, from = %prev, to = %next, "kernel state change");
        }
        self.publish(&mut st, next);
        Ok(prev)
    }

    pub(super) fn set_state(&self, next: KernelState) {
        let mut st = lock(&self.state);
        tracing::debug!(kernel = %self.id, from = %*st, to = %next, "kernel state change");
        self.publish(&mut st, next);
    }

    pub fn failure(&self) -> Option<HandlerError> {
        lock(&self.failure).clone()
    }

    /// The error a host meets once the kernel's queues are closed.
    pub fn end_error(&self) -> Error {
        match self.failure() {
            Some(error) => Error::KernelFailed {
                kernel: self.id.to_string(),
                error,
            },
            None => Error::KernelTerminated {
                kernel: self.id.to_string(),
            },
        }
    }

    /// Checks that the host may `op` this kernel, turning a failed kernel into
    /// its failure rather than a state error.
    #[inline]
    pub(super) fn check(&self, op: Operation) -> Result<()> {
        let state = self.state();
        // The hot path (a send or receive to an active kernel) decides here;
        // everything else asks the state machine.
        if state == KernelState::Active && matches!(op, Operation::Send | Operation::Receive) {
            return Ok(());
        }
        self.check_slow(state, op)
    }

    #[cold]
    fn check_slow(&self, state: KernelState, op: Operation) -> Result<()> {
        match state.apply(&self.id, op) {
            Ok(_) => Ok(()),
            Err(_) if state == KernelState::Failed => Err(self.end_error()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn terminating_error(&self) -> Error {
        Error::Terminating {
            kernel: self.id.to_string(),
        }
    }

    /// The one mapping from a queue's refusal to the error its sender sees.
    ///
    /// `side` is the queue of this kernel the send went to: its input (a
    /// host, another kernel or a link sending to it) or its output (its own
    /// handler sending). `timeout` is the wait that ran out, for
    /// [`Refusal::Timeout`].
    pub fn refusal_error(&self, side: Side, why: Refusal, timeout: Duration, capacity: usize) -> Error {
        match (why, side) {
            (Refusal::Full, _) => Error::QueueFull {
                kernel: self.id.to_string(),
                queue: side.name(),
                capacity,
            },
            (Refusal::Timeout, _) => Error::QueueTimeout {
                kernel: self.id.to_string(),
                operation: side.operation(),
                timeout,
            },
            // The handler's own kernel is ending: its output is closed, or
            // its wait was stopped by terminate.
            (Refusal::Closed | Refusal::Stopped, Side::Output) => self.terminating_error(),
            (Refusal::Closed | Refusal::Stopped, Side::Input) => match self.state() {
                KernelState::Terminating | KernelState::Terminated => Error::KernelTerminated {
                    kernel: self.id.to_string(),
                },
                _ => self.end_error(),
            },
        }
    }

    /// [`refusal_error`](Self::refusal_error) with the message handed back.
    pub fn refused<M>(&self, side: Side, (why, msg): (Refusal, M), timeout: Duration, capacity: usize) -> SendError<M> {
        SendError::new(msg, self.refusal_error(side, why, timeout, capacity))
    }
}

/// Which of a kernel's queues a send went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The kernel's input: a host, another kernel or a link sends to it.
    Input,
    /// The kernel's output: its own handler sends to the host.
    Output,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Input => "input",
            Side::Output => "output",
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Side::Input => Operation::Send.verb(),
            Side::Output => "send from",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path of `check` (an active kernel's send or receive) says
    /// what the state machine says, in every state, for every operation.
    #[test]
    fn check_agrees_with_the_state_machine() {
        use Operation::*;
        let core = KernelCore::new("k".into(), KernelConfig::default(), Weak::new());
        for state in KernelState::ALL {
            core.set_state(state);
            for op in [Launch, Activate, Deactivate, Reactivate, Terminate, Send, Receive] {
                assert_eq!(core.check(op).is_ok(), state.apply("k", op).is_ok(), "{state:?} {op:?}");
            }
        }
    }
}
