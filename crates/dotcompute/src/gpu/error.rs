//! Errors of GPU ring kernels.

use std::time::Duration;

use thiserror::Error;

use super::protocol::{FaultCode, LayoutError, ProtocolError};

/// Where a [`GpuRing`](super::GpuRing) is in its life (the host's view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingPhase {
    /// The device runs and is parked; not yet activated.
    Launched,
    /// The device takes messages.
    Active,
    /// The device is parked; messages wait in the ring.
    Deactivated,
    /// Terminate was requested.
    Terminated,
    /// A failure was detected; see [`GpuRing::failure`](super::GpuRing::failure).
    Failed,
}

/// Errors of GPU ring kernels (emulated or real).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The region or a parameter is invalid.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The device wrote a value the protocol forbids.
    #[error("device protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The device stopped on a fault it detected.
    #[error("the device stopped on fault {code}: {description}")]
    DeviceFault {
        /// The `fault` word.
        code: u64,
        /// What it means.
        description: String,
    },
    /// The device stopped although no terminate was requested.
    #[error("the device stopped without a terminate request: {0}")]
    DeviceLost(String),
    /// The device's heartbeat did not move for longer than the timeout: it is
    /// hung or dead.
    #[error("the device's heartbeat stayed at {heartbeat} for {silent_for:?} (timeout {timeout:?}): the device is hung or dead")]
    HeartbeatStale {
        /// The last heartbeat value seen.
        heartbeat: u64,
        /// How long it has not moved.
        silent_for: Duration,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The handler reported errors (non-zero codes).
    #[error("the device handler reported {errors} error(s), the last with code {last_error}")]
    HandlerErrors {
        /// Messages whose handler returned non-zero.
        errors: u64,
        /// The last code.
        last_error: u64,
    },
    /// The device did not acknowledge terminate in time. The process is not
    /// blocked: the device's memory is kept alive (leaked) while it may
    /// still run.
    #[error("the device did not exit within {waited:?} of the terminate request (last status: {last_state})")]
    TerminateTimeout {
        /// How long the host waited.
        waited: Duration,
        /// The last device status seen.
        last_state: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {timeout:?} waiting to {operation}")]
    Timeout {
        /// What was waited for.
        operation: &'static str,
        /// The time waited.
        timeout: Duration,
    },
    /// The operation is not allowed in this phase.
    #[error("cannot {operation} a GPU ring in phase {phase:?}")]
    InvalidPhase {
        /// The operation.
        operation: &'static str,
        /// The ring's phase.
        phase: RingPhase,
    },
    /// The device could not be started.
    #[error("could not start the device: {0}")]
    Start(String),
    /// No device to run on: no CUDA driver, no such device, or a device
    /// that cannot map host memory.
    #[error("no CUDA device for a GPU ring kernel: {0}")]
    Unavailable(String),
    /// The kernel (template plus handler) did not compile; the NVRTC log
    /// says why.
    #[error("the GPU ring kernel did not compile: {0}")]
    Compile(String),
    /// A CUDA driver call failed.
    #[error("CUDA driver call {operation} failed: {message}")]
    Driver {
        /// The driver function.
        operation: &'static str,
        /// The driver's error name and text.
        message: String,
    },
}

impl From<FaultCode> for GpuError {
    fn from(code: FaultCode) -> Self {
        GpuError::fault(code.word())
    }
}

impl GpuError {
    /// The error for a device that stopped with `fault` word `code`.
    pub fn fault(code: u64) -> Self {
        GpuError::DeviceFault {
            code,
            description: FaultCode::from_word(code)
                .map_or_else(|| "unknown fault code".to_string(), |c| c.describe().to_string()),
        }
    }
}
