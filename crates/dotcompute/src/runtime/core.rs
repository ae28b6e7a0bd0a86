//! The lifecycle core shared by a kernel's parts: its id, configuration,
//! state, failure, cancellation token and telemetry counters.
//!
//! Invariants:
//! - the state changes only through [`KernelState::apply`] (via
//!   [`KernelCore::transition`]) or, when the handler ends on its own, from a
//!   running state to `Terminated`/`Failed` (the supervisor);
//! - a host operation is checked against the state before it acts, and a
//!   failed kernel answers with its failure rather than a state error.

use std::sync::{Arc, Mutex, Weak};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::runtime::config::KernelConfig;
use crate::runtime::state::{KernelState, Operation};
use crate::runtime::telemetry::{lock, KernelMetrics};
use crate::runtime::RuntimeShared;

/// The lifecycle, failure and telemetry shared by a kernel's parts.
pub(crate) struct KernelCore {
    pub id: Arc<str>,
    pub config: KernelConfig,
    pub(super) state: Mutex<KernelState>,
    pub(super) failure: Mutex<Option<String>>,
    pub cancel: CancellationToken,
    pub metrics: KernelMetrics,
    pub runtime: Weak<RuntimeShared>,
}

impl KernelCore {
    pub fn state(&self) -> KernelState {
        *lock(&self.state)
    }

    /// Applies `op` and stores the next state; returns the previous one.
    pub(super) fn transition(&self, op: Operation) -> Result<KernelState> {
        let mut st = lock(&self.state);
        let prev = *st;
        let next = prev.apply(&self.id, op)?;
        if next != prev {
            tracing::debug!(kernel = %self.id, from = %prev, to = %next, "kernel state change");
        }
        *st = next;
        Ok(prev)
    }

    pub(super) fn set_state(&self, next: KernelState) {
        let mut st = lock(&self.state);
        tracing::debug!(kernel = %self.id, from = %*st, to = %next, "kernel state change");
        *st = next;
    }

    pub fn failure(&self) -> Option<String> {
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
    pub(super) fn check(&self, op: Operation) -> Result<()> {
        let state = self.state();
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
}
