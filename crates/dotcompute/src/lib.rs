//! # dotcompute
//!
//! Ring kernels: persistent actors that are launched once, then activated,
//! deactivated and terminated, and that exchange typed messages through
//! bounded, prioritised queues.
//!
//! The crate is organised one concept per module; the optional ones are
//! behind cargo features (see the README's "Add to your project"):
//! - [`message`]: the [`Message`] trait, headers, priority bands, and the wire [`codec`].
//! - [`queue`]: [`MessageQueue`], the bounded MPMC queue with priority bands and backpressure.
//! - [`ring`]: [`SpscRing`](ring::spsc::SpscRing), the wait-free single-producer/single-consumer ring with a `#[repr(C)]` layout.
//! - [`runtime`]: [`RingKernelRuntime`], the kernel lifecycle ([`KernelState`]),
//!   the handler's [`KernelContext`] / [`BlockingContext`], execution modes
//!   ([`ExecutionMode`]: async, thread, spin, process), the [`registry`], and [`telemetry`].
//! - `ipc` (feature `process`, Linux): the process tier — rings in a
//!   shared-memory file between processes.
//! - `device` (feature `device`; `compiler`, `cuda`, `nvml`, `wgpu` add to
//!   it): accelerators, the `Backend` trait (CPU, CUDA, wgpu),
//!   `UnifiedBuffer`, `MemoryPool`, NVRTC compilation with a persistent PTX
//!   cache, NVML monitoring.
//! - `gpu` (feature `gpu`; `cuda` and `wgpu` add to it): GPU ring kernels —
//!   `#[derive(GpuMessage)]`, the host/device ring protocol in mapped memory,
//!   the persistent CUDA kernel template, batched wgpu kernels, and a CPU
//!   emulation of the device side.
//!
//! PageRank and streaming anomaly detection, built on these, are the
//! separate crate `dotcompute-workloads`.
//!
//! Talk to a kernel through a [`KernelHandle`] (from
//! [`RingKernelRuntime::handle`]): the kernel's id and message types are
//! resolved once, and every call goes straight to its queues — the way to
//! use a kernel on a hot path. Every send hands a refused message back in a
//! [`SendError`] (a batch: the messages not sent), which converts into
//! [`Error`] with `?`; nothing the runtime refuses is lost.
//!
//! ```
//! use dotcompute::{ring_kernel, Error, KernelContext, Message, MessageHeader, RingKernelRuntime};
//!
//! #[derive(Debug, Message)]
//! struct ComputeRequest { values: Vec<f64>, header: MessageHeader }
//!
//! #[derive(Debug, Message)]
//! struct ComputeResponse { result: f64, header: MessageHeader }
//!
//! #[ring_kernel(id = "crate_doc_compute", input = ComputeRequest, output = ComputeResponse)]
//! async fn compute(mut ctx: KernelContext<ComputeRequest, ComputeResponse>) -> Result<(), Error> {
//!     loop {
//!         let req = ctx.receive().await?;
//!         let result = req.values.iter().sum();
//!         ctx.send(req.reply(ComputeResponse { result, header: MessageHeader::new() })).await?;
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let rt = RingKernelRuntime::new();
//! rt.launch("crate_doc_compute")?;
//! rt.activate("crate_doc_compute")?;
//! // Resolved once: the handle is what a hot path uses.
//! let compute = rt.handle::<ComputeRequest, ComputeResponse>("crate_doc_compute")?;
//! compute.send(ComputeRequest { values: vec![1.0, 2.0, 3.0], header: MessageHeader::new() }).await?;
//! assert_eq!(compute.receive().await?.result, 6.0);
//! // A refused message comes back (here: the kernel has been terminated).
//! rt.terminate("crate_doc_compute").await?;
//! let refused = compute.send(ComputeRequest { values: vec![4.0], header: MessageHeader::new() }).await.unwrap_err();
//! assert!(refused.is_closed());
//! assert_eq!(refused.into_message().values, [4.0]);
//! rt.shutdown().await;
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

// Features are shown on the items that need them on docs.rs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// No unwrap, expect or panic on any path a user can reach.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// The version of this crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// Lets the macros' `::dotcompute::...` paths resolve inside this crate too.
extern crate self as dotcompute;

#[cfg(feature = "device")]
pub mod device;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(all(feature = "process", target_os = "linux"))]
pub mod ipc;
pub mod message;
pub mod queue;
pub mod ring;
pub mod runtime;

#[cfg(feature = "gpu")]
pub use dotcompute_macros::GpuMessage;
pub use dotcompute_macros::{ring_kernel, Message};
pub use error::{CallError, Error, HandlerError, Result, SendError};
pub use message::codec;
pub use message::{Message, MessageHeader, PriorityBand, DEFAULT_PRIORITY};
pub use queue::{Backpressure, MessageQueue, QueueConfig, QueueStats};
pub use runtime::config::{ExecutionMode, KernelConfig, RestartPolicy, RuntimeConfig};
pub use runtime::context::{BlockingContext, KernelContext};
pub use runtime::receipt::Receipt;
pub use runtime::registry;
pub use runtime::spec::{IntoKernelResult, KernelBuilder, KernelError, KernelResult, KernelSpec};
pub use runtime::state::{KernelState, KernelStateError, Operation};
pub use runtime::telemetry::{self, KernelTelemetry, LatencySummary, RuntimeSummary};
pub use runtime::{KernelHandle, RingKernelRuntime, ShutdownReport, TerminateOptions, TerminateReport};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
