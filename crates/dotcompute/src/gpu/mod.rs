//! GPU ring kernels: persistent kernels that poll lock-free rings in memory
//! shared with the host, and their CPU emulation.
//!
//! - [`message`]: [`GpuMessage`] (`#[derive(GpuMessage)]`): fixed-size plain
//!   data with a compile-time-checked C layout and a generated CUDA C
//!   declaration; [`Envelope`] carries one through the runtime.
//! - [`protocol`]: the shared region (control block, host→device and
//!   device→host slot rings, state) and the index protocol, over raw memory.
//! - [`source`]: the CUDA C of a kernel: the persistent-kernel template
//!   (`cuda/ring_kernel.cuh`), the generated struct declarations, the user's
//!   handler; [`handlers`]: examples in CUDA C and Rust.
//! - [`emulator`]: a host thread that plays the device over the same memory
//!   and protocol, running a Rust handler. **Emulation**, not a GPU.
//! - `cuda_device` (feature `cuda`): the [`DeviceAgent`] of a real GPU: the template and the
//!   handler compiled with NVRTC, the region in page-locked memory mapped into
//!   the device, the kernel launched once on its own stream.
//! - [`GpuRing`]: the host's handle on one device (emulated or CUDA);
//!   [`GpuPipeline`]: two devices linked by a ring that bypasses the host.
//! - `gpu_kernel` (feature `cuda`): a [`KernelSpec`](crate::KernelSpec) in
//!   [`ExecutionMode::Gpu`](crate::ExecutionMode::Gpu) running a CUDA ring
//!   kernel in the [`RingKernelRuntime`](crate::RingKernelRuntime);
//!   [`emulated_kernel`]: the same with the emulator (in `Thread` mode).
//! - `wgpu` (cargo feature `wgpu`): ring kernels with WGSL handlers on any
//!   wgpu adapter (Vulkan, Metal, DX12; lavapipe in CI), run as batched
//!   dispatches with the state in device memory.
//!
//! Invariant: the host trusts nothing the device writes: every index,
//! status word and counter read from the shared region is validated
//! ([`protocol`]) before use, and a value out of range is a typed error
//! (`ProtocolError`), never an out-of-bounds access; each message crosses a
//! ring exactly once, in order.
//!
//! What runs where: the CUDA template is compiled (NVRTC) and assembled
//! (ptxas) in every test run; the protocol is tested against the emulator and
//! the loom models everywhere; the CUDA device runs in `tests/gpu_cuda.rs`
//! on machines with an NVIDIA GPU (the tests say they skipped, and why,
//! elsewhere).
//!
//! ```
//! use std::time::Duration;
//! use dotcompute::gpu::handlers::{running_stats, Sample, Stats, StatsState};
//! use dotcompute::gpu::{GpuMessage, GpuRing, GpuRingOptions};
//!
//! let mut ring = GpuRing::<Sample, Stats>::emulated(running_stats, StatsState::zeroed(), GpuRingOptions::default())?;
//! ring.activate()?;
//! for (seq, value) in [1.0f32, 2.0, 6.0].into_iter().enumerate() {
//!     ring.send(&Sample { seq: seq as u64, value, channel: 0 }, Duration::from_secs(5))?;
//! }
//! let last = (0..3).map(|_| ring.receive(Duration::from_secs(5))).last().unwrap()?;
//! assert_eq!((last.count, last.mean), (3, 3.0));
//! ring.deactivate()?;
//! ring.wait_acknowledged(Duration::from_secs(5))?;
//! let state: StatsState = ring.read_state()?.expect("parked, so the state is final");
//! assert_eq!(state.count, 3);
//! ring.terminate(Duration::from_secs(5))?;
//! # Ok::<(), dotcompute::gpu::GpuError>(())
//! ```

#[doc(hidden)]
#[path = "derive_support.rs"]
pub mod __layout;

#[cfg(feature = "cuda-baselines")]
pub mod baseline;
#[cfg(feature = "cuda")]
pub mod cuda_device;
pub mod emulator;
mod error;
pub mod handlers;
mod host;
mod kernel;
pub mod message;
pub mod protocol;
pub mod source;
#[cfg(feature = "wgpu")]
pub mod wgpu;

#[cfg(feature = "cuda")]
pub use cuda_device::CudaRingOptions;
pub use error::{GpuError, RingPhase};
pub use host::{DeviceAgent, GpuPipeline, GpuRing, GpuRingOptions, TerminateSummary};
#[cfg(feature = "cuda")]
pub use kernel::gpu_kernel;
pub use kernel::{emulated_kernel, emulated_kernel_with_state, GpuKernelOptions, GpuMonitor, GpuSnapshot};
pub use message::{cuda_decls, CudaDecl, Envelope, GpuMessage, HandlerStatus, NoState};
pub use protocol::DeviceCounters;

/// `#[derive(GpuMessage)]`.
pub use dotcompute_macros::GpuMessage;
