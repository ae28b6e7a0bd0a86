//! The sending side of a kernel: its input queue behind lifecycle checks.
//!
//! Invariants:
//! - every send is checked against the kernel's state before it reaches the
//!   queue, so a kernel that is not active (or has ended) refuses at once;
//! - a message is either queued, counted as dropped by the queue's
//!   strategy, or handed back to its sender with the reason.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::message::Message;
use crate::queue::{RecvError, SendError};
use crate::runtime::core::KernelCore;
use crate::runtime::state::{KernelState, Operation};
use crate::runtime::telemetry::KernelMetrics;
use crate::runtime::transport::{Interrupted, Transport};
use std::sync::Arc;

/// The sending side of a kernel: its input queue behind lifecycle checks.
pub(crate) struct InputPort<In> {
    pub core: Arc<KernelCore>,
    pub queue: Transport<In>,
}

impl<In: Message> InputPort<In> {
    /// Sends as the host or another kernel would: checks the state, then
    /// applies the queue's strategy. `timeout` overrides the configured one.
    pub async fn send(&self, msg: In, timeout: Option<Duration>) -> Result<()> {
        self.core.check(Operation::Send)?;
        let result = match timeout {
            Some(t) => self.queue.send_timeout(msg, t).await,
            None => self.queue.send(msg).await,
        };
        result.map_err(|e| self.send_error(e, timeout))
    }

    pub fn try_send(&self, msg: In) -> Result<()> {
        self.core.check(Operation::Send)?;
        self.queue.try_send(msg).map_err(|e| self.send_error(e, None))
    }

    /// Sends a batch in order (one lock per ring push run). On a refusal the
    /// messages not sent are dropped: the first is counted by the queue, the
    /// rest as discarded in telemetry, and the error says why.
    pub async fn send_batch(&self, msgs: Vec<In>, timeout: Option<Duration>) -> Result<()> {
        self.core.check(Operation::Send)?;
        let deadline = timeout
            .or(self.core.config.send_timeout)
            .and_then(|t| Instant::now().checked_add(t));
        self.queue
            .send_batch(msgs, deadline)
            .await
            .map_err(|(e, unsent)| self.batch_error(e, unsent, timeout))
    }

    /// [`send_batch`](Self::send_batch) from a plain (non-async) thread.
    pub fn send_batch_blocking(&self, msgs: Vec<In>) -> Result<()> {
        self.core.check(Operation::Send)?;
        match &self.queue {
            Transport::Ring(ring) => ring
                .send_batch_spin(msgs.into(), &self.core.cancel)
                .map_err(|(why, unsent)| {
                    let e = match why {
                        Interrupted::Full => SendError::Full(()),
                        Interrupted::Closed | Interrupted::Cancelled => SendError::Closed(()),
                    };
                    self.batch_error(e, unsent, None)
                }),
            Transport::Queue(_) => crate::runtime::park::block_on(self.send_batch(msgs, None)),
        }
    }

    fn batch_error(&self, e: SendError<()>, unsent: usize, timeout: Option<Duration>) -> Error {
        KernelMetrics::add(&self.core.metrics.discarded, unsent.saturating_sub(1) as u64);
        self.send_error(e, timeout)
    }

    /// Sends from a plain (non-async) thread: spins on a ring, parks on a queue.
    pub fn send_blocking(&self, msg: In) -> Result<()> {
        self.core.check(Operation::Send)?;
        match &self.queue {
            Transport::Ring(ring) => ring.send_spin(msg, &self.core.cancel).map_err(|(why, msg)| match why {
                Interrupted::Full => self.send_error(SendError::Full(msg), None),
                Interrupted::Closed | Interrupted::Cancelled => self.send_error(SendError::Closed(msg), None),
            }),
            Transport::Queue(_) => crate::runtime::park::block_on(self.send(msg, None)),
        }
    }

    fn send_error<X>(&self, e: SendError<X>, timeout: Option<Duration>) -> Error {
        match e {
            SendError::Full(_) => Error::QueueFull {
                kernel: self.core.id.to_string(),
                queue: "input",
                capacity: self.queue.capacity(),
            },
            SendError::Timeout(_) => Error::QueueTimeout {
                kernel: self.core.id.to_string(),
                operation: Operation::Send.verb(),
                timeout: timeout.or(self.core.config.send_timeout).unwrap_or_default(),
            },
            SendError::Closed(_) => match self.core.state() {
                KernelState::Failed => self.core.end_error(),
                KernelState::Terminating | KernelState::Terminated => Error::KernelTerminated {
                    kernel: self.core.id.to_string(),
                },
                _ => self.core.end_error(),
            },
        }
    }
}

/// Maps a receive failure on a kernel's own input queue.
pub(crate) fn own_recv_error(core: &KernelCore, e: RecvError) -> Option<Error> {
    match e {
        RecvError::Closed => Some(core.terminating_error()),
        RecvError::Empty | RecvError::Timeout => None,
    }
}
