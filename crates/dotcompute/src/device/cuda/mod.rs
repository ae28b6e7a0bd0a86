//! CUDA through cudarc's driver API (dynamically loaded): the driver and the
//! devices it reports ([`driver`]), the memory this crate allocates on them
//! ([`memory`]), and the [`CudaBackend`] of the device layer ([`backend`]).
//!
//! Invariant: nothing here touches cudarc before
//! [`dylib::cuda_driver`](crate::device::dylib::cuda_driver) found the
//! driver, so a machine without one gets
//! [`DeviceError::Unavailable`](crate::device::DeviceError::Unavailable),
//! never a panic.
//!
//! This module has not run on a GPU in this repository's CI (none is
//! available there); the GPU tests in `tests/device_cuda.rs` exercise it on
//! any machine with an NVIDIA GPU and skip with a reason elsewhere.

pub mod backend;
pub mod driver;
pub mod memory;

pub use backend::{CudaBackend, CudaKernel, CudaSource};
pub(crate) use driver::{discover_devices, driver_message};
pub use driver::{driver_version, shared_context};
pub use memory::{pinned_cache_stats, CudaHostMemory, CudaMemory, PinnedCacheStats};
