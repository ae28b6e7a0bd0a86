//! Devices and memory: discovery ([`Accelerator`]), the [`Backend`] trait
//! with a CPU and a CUDA implementation, typed device buffers
//! ([`DeviceBuffer`]), host/device mirrored buffers ([`UnifiedBuffer`]), a
//! caching allocator ([`MemoryPool`]), CUDA C compilation with NVRTC
//! (`KernelCompiler`, feature `compiler`) through a PTX cache
//! (`KernelCache`), GPU monitoring through NVML (`GpuMonitor`, feature
//! `nvml`), and a [`ComputeOrchestrator`]
//! that launches registered kernels and keeps their history.
//!
//! One concept per module:
//! - [`accelerator`]: device discovery, properties and selection.
//! - [`backend`]: the [`Backend`] trait, launch geometry and kernel arguments.
//! - [`cpu`]: the CPU backend (rayon) and its Rust kernels.
//! - `cuda` (feature `cuda`): the CUDA backend (cudarc driver API).
//! - [`buffer`]: [`DeviceBuffer`], typed RAII device memory.
//! - [`unified`]: [`UnifiedBuffer`] and its six-state machine.
//! - [`pool`]: [`MemoryPool`], size classes, limits, statistics.
//! - `compiler` (feature `compiler`): NVRTC compilation, PTX parsing, ptxas.
//! - `cache` (feature `compiler`): the two-level kernel cache.
//! - `monitor` (feature `nvml`): NVML sampling.
//! - [`orchestrator`]: named kernels, timed launches, history.
//! - [`kernels`]: the shipped CUDA kernels and their CPU equivalents.
//! - [`report()`]: the data behind `dotcompute info`.
//! - `dylib` (feature `compiler`): finding the CUDA libraries without panicking.
//! - `wgpu` (cargo feature `wgpu`): the portable GPU backend (Vulkan, Metal,
//!   DX12, GL) with WGSL kernels.
//!
//! Invariant of the whole layer: on a machine without a GPU, a CUDA driver,
//! NVRTC or NVML, every entry point still works or returns
//! [`DeviceError::Unavailable`]; nothing panics for want of a library.

pub mod accelerator;
pub mod backend;
pub mod buffer;
#[cfg(feature = "compiler")]
pub mod cache;
#[cfg(feature = "compiler")]
pub mod compiler;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "compiler")]
pub mod dylib;
pub mod error;
pub mod kernels;
#[cfg(feature = "nvml")]
pub mod monitor;
pub mod orchestrator;
pub mod pool;
pub mod report;
pub mod unified;
#[cfg(feature = "wgpu")]
pub mod wgpu;

pub use accelerator::{Accelerator, CudaStatus, DeviceInfo};
pub use backend::{Backend, BackendKind, BackendStats, Dim3, ElemType, KernelArg, LaunchConfig, Scalar, ScalarType};
pub use buffer::DeviceBuffer;
#[cfg(feature = "compiler")]
pub use cache::{CacheConfig, CacheEntry, CacheKey, CacheLevel, CacheStats, KernelCache};
#[cfg(feature = "compiler")]
pub use compiler::{CompileOptions, CompiledKernel, KernelCompiler, Ptxas};
pub use cpu::{CpuBackend, CpuKernel};
#[cfg(feature = "cuda")]
pub use cuda::{CudaBackend, CudaSource};
pub use error::{DeviceError, DeviceResult};
#[cfg(feature = "nvml")]
pub use monitor::{GpuMonitor, GpuSample};
pub use orchestrator::{ComputeOrchestrator, KernelExecution, KernelSummary, LaunchOutput};
pub use pool::{DeviceAllocator, MemoryPool, PinnedAllocator, PoolConfig, PoolStats, PooledBlock, RawAllocator};
pub use report::{report, Component, DeviceReport};
pub use unified::{BufferState, TransferStats, UnifiedBuffer};
#[cfg(feature = "wgpu")]
pub use wgpu::{WgpuBackend, WgslSource};
