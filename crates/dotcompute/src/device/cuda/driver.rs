//! The CUDA driver as this crate meets it: loading it, discovering devices,
//! the process's shared context per device, and driver errors in words.
//!
//! Invariants:
//! - nothing here touches cudarc before [`dylib::cuda_driver`] found the
//!   driver, so a machine without one gets [`DeviceError::Unavailable`],
//!   never a panic;
//! - there is one context object per device in the process
//!   ([`shared_context`]), made with its first stream, so creating a stream
//!   later never synchronises a context that runs persistent kernels;
//! - every failed driver call is reported with the call's name and the
//!   driver's own name and text for the error.

use std::sync::Arc;

use cudarc::driver::{result, sys, CudaContext, CudaStream, DriverError};

use crate::device::accelerator::DeviceInfo;
use crate::device::backend::BackendKind;
use crate::device::dylib;
use crate::device::error::{DeviceError, DeviceResult};
use crate::gpu::GpuError;

/// A failed driver call: which call, and what the driver said.
#[derive(Debug, Clone)]
pub(crate) struct DriverFailure {
    pub operation: &'static str,
    pub message: String,
}

impl DriverFailure {
    /// For `map_err`: the failure of `operation`.
    pub fn at(operation: &'static str) -> impl Fn(DriverError) -> DriverFailure {
        move |e: DriverError| DriverFailure {
            operation,
            message: driver_message(&e),
        }
    }

    /// A failure the driver did not report as an error code.
    pub fn message(operation: &'static str, message: &str) -> Self {
        DriverFailure {
            operation,
            message: message.to_string(),
        }
    }
}

impl From<DriverFailure> for DeviceError {
    fn from(f: DriverFailure) -> Self {
        DeviceError::Driver {
            operation: f.operation,
            message: f.message,
        }
    }
}

impl From<DriverFailure> for GpuError {
    fn from(f: DriverFailure) -> Self {
        GpuError::Driver {
            operation: f.operation,
            message: f.message,
        }
    }
}

/// A driver error in words: its name, its text and its code.
pub(crate) fn driver_message(e: &DriverError) -> String {
    let name = e
        .error_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = e
        .error_string()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}: {text} ({:?})", e.0)
}

/// For `map_err` in the GPU ring-kernel modules: the failure of `operation`.
pub(crate) fn gpu_driver(operation: &'static str) -> impl Fn(DriverError) -> GpuError {
    move |e: DriverError| DriverFailure::at(operation)(e).into()
}

/// For `map_err` in the device layer: the failure of `operation`.
pub(crate) fn driver(operation: &'static str) -> impl Fn(DriverError) -> DeviceError {
    move |e: DriverError| DriverFailure::at(operation)(e).into()
}

pub(crate) fn ensure_driver() -> DeviceResult<()> {
    dylib::cuda_driver().map_err(|reason| DeviceError::Unavailable {
        what: "CUDA driver",
        reason,
    })
}

/// The driver's CUDA version (e.g. 12040 for 12.4).
pub fn driver_version() -> DeviceResult<i32> {
    ensure_driver()?;
    let mut v = 0;
    // SAFETY: the driver library is loaded (checked above); `v` is valid for one write.
    unsafe { sys::cuDriverGetVersion(&mut v) }
        .result()
        .map_err(driver("cuDriverGetVersion"))?;
    Ok(v)
}

/// Initialises the driver and reads every device's properties; device ids
/// start at `first_id`. `Ok` with no devices when the driver has none.
pub(crate) fn discover_devices(first_id: usize) -> DeviceResult<(i32, Vec<DeviceInfo>)> {
    ensure_driver()?;
    match result::init() {
        Ok(()) => {}
        Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_NO_DEVICE => return Ok((driver_version()?, Vec::new())),
        Err(e) => return Err(driver("cuInit")(e)),
    }
    let version = driver_version()?;
    let count = result::device::get_count().map_err(driver("cuDeviceGetCount"))?;
    let mut out = Vec::new();
    for ordinal in 0..count.max(0) {
        let dev = result::device::get(ordinal).map_err(driver("cuDeviceGet"))?;
        let attr = |a: sys::CUdevice_attribute| -> DeviceResult<i32> {
            // SAFETY: `dev` came from cuDeviceGet for a valid ordinal.
            unsafe { result::device::get_attribute(dev, a) }.map_err(driver("cuDeviceGetAttribute"))
        };
        let u = |a| attr(a).map(|v| u32::try_from(v).unwrap_or(0));
        use sys::CUdevice_attribute::*;
        let name = result::device::get_name(dev).map_err(driver("cuDeviceGetName"))?;
        // SAFETY: `dev` came from cuDeviceGet for a valid ordinal.
        let total = unsafe { result::device::total_mem(dev) }.map_err(driver("cuDeviceTotalMem"))?;
        out.push(DeviceInfo {
            id: first_id + out.len(),
            kind: BackendKind::Cuda,
            ordinal: ordinal as usize,
            name,
            compute_capability: Some((
                u(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
                u(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
            )),
            total_memory: total as u64,
            multiprocessor_count: u(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
            max_threads_per_block: u(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK)?,
            max_block_dims: [
                u(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X)?,
                u(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y)?,
                u(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z)?,
            ],
            max_grid_dims: [
                u(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X)?,
                u(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y)?,
                u(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z)?,
            ],
            warp_size: u(CU_DEVICE_ATTRIBUTE_WARP_SIZE)?,
            shared_mem_per_block: u64::from(u(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK)?),
            clock_rate_khz: u(CU_DEVICE_ATTRIBUTE_CLOCK_RATE).ok(),
            memory_clock_rate_khz: u(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).ok(),
            memory_bus_width_bits: u(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH).ok(),
            l2_cache_bytes: u(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).ok(),
        });
    }
    Ok((version, out))
}

/// The process's context object for CUDA device `ordinal` (the device's
/// primary context), shared by every backend and GPU ring kernel.
///
/// Why shared: cudarc synchronises the whole context the first time a
/// context object creates a stream. With persistent ring kernels running
/// (which never finish on their own), that synchronisation would never
/// return. The shared object makes its first stream when it is created,
/// before anything of ours can run on it, and keeps that stream, so later
/// streams never synchronise the context.
///
/// # Errors
///
/// [`DeviceError::Unavailable`] without a driver; driver errors.
pub fn shared_context(ordinal: usize) -> DeviceResult<Arc<CudaContext>> {
    type Contexts = std::collections::HashMap<usize, (Arc<CudaContext>, Arc<CudaStream>)>;
    static CONTEXTS: std::sync::Mutex<Option<Contexts>> = std::sync::Mutex::new(None);
    ensure_driver()?;
    let mut map = CONTEXTS.lock().unwrap_or_else(|e| e.into_inner());
    let map = map.get_or_insert_with(Default::default);
    if let Some((ctx, _)) = map.get(&ordinal) {
        ctx.bind_to_thread().map_err(driver("cuCtxSetCurrent"))?;
        return Ok(ctx.clone());
    }
    let ctx = CudaContext::new(ordinal).map_err(driver("cuCtxCreate"))?;
    let first = ctx.new_stream().map_err(driver("cuStreamCreate"))?;
    map.insert(ordinal, (ctx.clone(), first));
    Ok(ctx)
}
