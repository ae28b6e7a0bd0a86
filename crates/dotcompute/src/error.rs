//! The crate's error type.
//!
//! Invariant: every failure a caller can meet through the runtime API is one
//! variant of [`Error`], with the kernel id and enough context to act on it;
//! nothing is reported only through a log line.

use std::time::Duration;

use crate::runtime::state::KernelStateError;

/// Errors from the ring-kernel runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No kernel with this id is launched (or registered, for `launch`).
    #[error("kernel '{id}' not found; known kernels: [{}]", known.join(", "))]
    KernelNotFound {
        /// The id asked for.
        id: String,
        /// The ids that do exist.
        known: Vec<String>,
    },
    /// A kernel with this id is already launched.
    #[error("kernel '{0}' already exists")]
    KernelAlreadyExists(String),
    /// The kernel id is registered more than once in the process registry.
    #[error("kernel id '{id}' is registered more than once: {}", locations.join("; "))]
    DuplicateKernel {
        /// The id.
        id: String,
        /// Where each registration comes from.
        locations: Vec<String>,
    },
    /// The operation is illegal in the kernel's state.
    #[error(transparent)]
    State(#[from] KernelStateError),
    /// The kernel's handler returned an error or panicked and was not restarted.
    #[error("kernel '{kernel}' failed: {error}")]
    KernelFailed {
        /// The kernel's id.
        kernel: String,
        /// The handler's error or panic message.
        error: String,
    },
    /// The kernel finished; no more messages will come from it.
    #[error("kernel '{kernel}' has terminated")]
    KernelTerminated {
        /// The kernel's id.
        kernel: String,
    },
    /// Returned inside a handler once its own kernel is being terminated.
    /// A handler that returns it (for example through `?`) ends cleanly.
    #[error("kernel '{kernel}' is terminating")]
    Terminating {
        /// The kernel's id.
        kernel: String,
    },
    /// The queue refused the message (Reject strategy, or a non-waiting send).
    #[error("{queue} queue of kernel '{kernel}' is full ({capacity} messages)")]
    QueueFull {
        /// The kernel's id.
        kernel: String,
        /// "input" or "output".
        queue: &'static str,
        /// The queue's capacity.
        capacity: usize,
    },
    /// A wait on a queue ran out of time.
    #[error("timed out after {timeout:?} waiting to {operation} kernel '{kernel}'")]
    QueueTimeout {
        /// The kernel's id.
        kernel: String,
        /// "send to" or "receive from".
        operation: &'static str,
        /// The time waited.
        timeout: Duration,
    },
    /// A message type does not match the kernel's declared type.
    #[error("type mismatch on kernel '{kernel}': {context} carries {expected}, not {found}")]
    TypeMismatch {
        /// The kernel's id.
        kernel: String,
        /// Which side: "input", "output" or "link".
        context: &'static str,
        /// The kernel's type.
        expected: &'static str,
        /// The type offered.
        found: &'static str,
    },
    /// A configuration value is out of range or unknown.
    #[error("invalid configuration: {parameter} = {value}: {reason}")]
    InvalidConfiguration {
        /// The parameter's name.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The runtime has been shut down.
    #[error("the runtime has been shut down")]
    ShutDown,
    /// A GPU ring kernel cannot be built: no device, no compiler, a handler
    /// that does not compile, or a device error.
    #[error("GPU kernel '{kernel}': {error}")]
    Gpu {
        /// The kernel's id.
        kernel: String,
        /// What went wrong.
        error: crate::gpu::GpuError,
    },
}

impl Error {
    pub(crate) fn invalid(parameter: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidConfiguration {
            parameter,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias for the runtime API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
