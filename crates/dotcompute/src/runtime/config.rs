//! Kernel and runtime configuration.
//!
//! Invariant: a configuration reaches a running kernel only after
//! [`KernelConfig::validate`] accepted it; out-of-range values are an
//! [`Error::InvalidConfiguration`] at build or launch time, never a panic or a
//! silent clamp.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::queue::{Backpressure, QueueConfig, MAX_QUEUE_CAPACITY};

/// Default capacity of a kernel's input and output queues.
pub const DEFAULT_QUEUE_SIZE: usize = 4096;

/// By default a kernel measures the queue wait and handler time of one
/// message in this many ([`KernelConfig::latency_sample_every`]).
pub const DEFAULT_LATENCY_SAMPLE_EVERY: u32 = 8;

/// What the runtime does when a handler returns an error or panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum RestartPolicy {
    /// The kernel moves to `Failed` (the default).
    #[default]
    Never,
    /// The handler is started again with a fresh context, as long as fewer
    /// than `max_restarts` restarts happened within the last `window`.
    /// Queued input messages are kept for the new run.
    OnFailure {
        /// Restarts allowed within `window`.
        max_restarts: u32,
        /// The sliding window.
        window: Duration,
    },
}

/// Where a kernel's handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum ExecutionMode {
    /// An async handler, as a task on the caller's tokio runtime (the default).
    #[default]
    Async,
    /// A blocking handler on a dedicated OS thread: for blocking I/O and
    /// CPU-heavy work that must not stall the async runtime's workers.
    Thread,
    /// A blocking handler on a dedicated OS thread that polls wait-free SPSC
    /// rings (spin, then yield, then park), for the lowest latency. Plan one
    /// core per spin kernel. Rings are FIFO: priorities are not reordered, and
    /// only the `Block` and `Reject` strategies exist.
    Spin,
    /// The handler runs in another OS process, connected by rings in a
    /// shared-memory file; a bridge on its own thread here moves the
    /// messages. Built with `ipc::process_kernel` (feature `process`, Linux).
    Process,
    /// A persistent CUDA kernel runs the handler (CUDA C) on the GPU,
    /// polling rings in host memory mapped into the device; a bridge on its
    /// own thread here moves the messages between the kernel's queues and
    /// the device's rings. Built with `gpu::gpu_kernel` (feature `cuda`).
    Gpu,
}

impl ExecutionMode {
    /// Every mode (a mode whose feature is off has no constructor in this
    /// build: `Process` needs `process` on Linux, `Gpu` needs `cuda`).
    pub const ALL: [ExecutionMode; 5] = [
        ExecutionMode::Async,
        ExecutionMode::Thread,
        ExecutionMode::Spin,
        ExecutionMode::Process,
        ExecutionMode::Gpu,
    ];
}

/// Configuration of one ring kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelConfig {
    /// Capacity of the input queue (1..=`MAX_QUEUE_CAPACITY`).
    pub input_queue_size: usize,
    /// Capacity of the output queue (1..=`MAX_QUEUE_CAPACITY`).
    pub output_queue_size: usize,
    /// What a send into a full input queue does.
    pub backpressure: Backpressure,
    /// How long a `Block` send into the input queue may wait (`None`: forever).
    pub send_timeout: Option<Duration>,
    /// What a send into a full output queue does (default `Block`: the handler
    /// waits for the host or the linked kernel to make room).
    pub output_backpressure: Backpressure,
    /// Restart behaviour on handler failure.
    pub restart: RestartPolicy,
    /// Where the handler runs; must match the kind of handler given.
    pub mode: ExecutionMode,
    /// Measure the latencies of one message in this many: its wait in the
    /// input queue and its handler time ([`KernelTelemetry`]'s `queue_wait`
    /// and `handler_time`, whose `count` is the number measured). Default
    /// [`DEFAULT_LATENCY_SAMPLE_EVERY`]: each measurement reads the clock,
    /// which costs about as much as a queue push. 1 measures every message;
    /// 0 measures none. Every counter (received, processed, sent, dropped,
    /// queue statistics) stays exact whatever this is.
    ///
    /// [`KernelTelemetry`]: crate::KernelTelemetry
    pub latency_sample_every: u32,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            input_queue_size: DEFAULT_QUEUE_SIZE,
            output_queue_size: DEFAULT_QUEUE_SIZE,
            backpressure: Backpressure::Block,
            send_timeout: None,
            output_backpressure: Backpressure::Block,
            restart: RestartPolicy::Never,
            mode: ExecutionMode::Async,
            latency_sample_every: DEFAULT_LATENCY_SAMPLE_EVERY,
        }
    }
}

impl KernelConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_queue_size("input_queue_size", self.input_queue_size)?;
        check_queue_size("output_queue_size", self.output_queue_size)?;
        if let Some(t) = self.send_timeout {
            if t.is_zero() {
                return Err(Error::invalid(
                    "send_timeout",
                    format!("{t:?}"),
                    "must be positive (use Backpressure::Reject to refuse at once)",
                ));
            }
        }
        if self.mode == ExecutionMode::Spin {
            for (parameter, strategy) in [
                ("backpressure", self.backpressure),
                ("output_backpressure", self.output_backpressure),
            ] {
                if strategy == Backpressure::DropOldest {
                    return Err(Error::invalid(
                        parameter,
                        strategy,
                        "a Spin kernel's rings cannot evict from the sender's side: use Block or Reject",
                    ));
                }
            }
        }
        if let RestartPolicy::OnFailure { max_restarts, window } = self.restart {
            if max_restarts == 0 {
                return Err(Error::invalid(
                    "restart.max_restarts",
                    max_restarts,
                    "must be at least 1 (use RestartPolicy::Never for no restarts)",
                ));
            }
            if window.is_zero() {
                return Err(Error::invalid(
                    "restart.window",
                    format!("{window:?}"),
                    "must be positive",
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn input_queue(&self) -> QueueConfig {
        let mut q = QueueConfig::new(self.input_queue_size).with_backpressure(self.backpressure);
        q.send_timeout = self.send_timeout;
        q
    }

    pub(crate) fn output_queue(&self) -> QueueConfig {
        QueueConfig::new(self.output_queue_size).with_backpressure(self.output_backpressure)
    }
}

fn check_queue_size(parameter: &'static str, size: usize) -> Result<()> {
    if size == 0 {
        Err(Error::invalid(parameter, size, "a queue needs at least one slot"))
    } else if size > MAX_QUEUE_CAPACITY {
        Err(Error::invalid(
            parameter,
            size,
            format!("the largest queue is {MAX_QUEUE_CAPACITY} messages"),
        ))
    } else {
        Ok(())
    }
}

/// Configuration of a [`RingKernelRuntime`](crate::RingKernelRuntime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeConfig {
    /// How long `terminate` and `shutdown` wait for a handler to return
    /// before aborting its task.
    pub terminate_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            terminate_timeout: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        KernelConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let cases: Vec<(KernelConfig, &str)> = vec![
            (
                KernelConfig {
                    input_queue_size: 0,
                    ..Default::default()
                },
                "input_queue_size",
            ),
            (
                KernelConfig {
                    output_queue_size: MAX_QUEUE_CAPACITY + 1,
                    ..Default::default()
                },
                "output_queue_size",
            ),
            (
                KernelConfig {
                    send_timeout: Some(Duration::ZERO),
                    ..Default::default()
                },
                "send_timeout",
            ),
            (
                KernelConfig {
                    restart: RestartPolicy::OnFailure {
                        max_restarts: 0,
                        window: Duration::from_secs(1),
                    },
                    ..Default::default()
                },
                "restart.max_restarts",
            ),
            (
                KernelConfig {
                    restart: RestartPolicy::OnFailure {
                        max_restarts: 1,
                        window: Duration::ZERO,
                    },
                    ..Default::default()
                },
                "restart.window",
            ),
        ];
        for (config, name) in cases {
            match config.validate() {
                Err(Error::InvalidConfiguration { parameter, .. }) => assert_eq!(parameter, name),
                other => panic!("{name}: expected InvalidConfiguration, got {other:?}"),
            }
        }
    }
}
