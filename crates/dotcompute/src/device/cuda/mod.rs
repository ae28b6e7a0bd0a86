//! The CUDA backend: the driver API through cudarc (dynamically loaded), one
//! context and stream per backend, page-locked host staging memory, kernels
//! from CUDA C (compiled by NVRTC through the [`KernelCompiler`] and its
//! cache), PTX text or a [`CompiledKernel`].
//!
//! Invariants:
//! - Nothing here touches cudarc before [`dylib::cuda_driver`] found the
//!   driver, so a machine without one gets [`DeviceError::Unavailable`], never
//!   a panic; every range is checked before cudarc sees it (cudarc asserts).
//! - A launch is refused unless its argument count and every argument's size
//!   match the kernel's parameters as declared in its PTX; buffers are passed
//!   as device pointers of allocations the launch borrows, so they outlive
//!   the kernel (cudarc records events on them and frees only after they
//!   complete).
//! - Transfers return once the data has arrived (the stream is synchronised
//!   after each copy), so host slices can be reused at once.
//!
//! This module has not run on a GPU in this repository's CI (none is
//! available there); the GPU tests in `tests/device_cuda.rs` exercise it on
//! any machine with an NVIDIA GPU and skip with a reason elsewhere.

use std::sync::Arc;
use std::time::Duration;

use cudarc::driver::{
    result, sys, CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, PinnedHostSlice, PushKernelArg,
};

use super::accelerator::DeviceInfo;
use super::backend::{Backend, BackendCounters, BackendKind, BackendStats, KernelArg, LaunchConfig, Scalar};
use super::compiler::{CompileOptions, CompiledKernel, KernelCompiler, PtxParam};
use super::dylib;
use super::error::{check_range, DeviceError, DeviceResult};
use super::kernels::KernelSource;

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

fn driver(operation: &'static str) -> impl Fn(DriverError) -> DeviceError {
    move |e: DriverError| DeviceError::Driver {
        operation,
        message: driver_message(&e),
    }
}

fn ensure_driver() -> DeviceResult<()> {
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

/// Device memory of a [`CudaBackend`].
#[derive(Debug)]
pub struct CudaMemory {
    slice: CudaSlice<u8>,
    counters: Arc<BackendCounters>,
}

impl CudaMemory {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.slice.len()
    }
    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.slice.is_empty()
    }
    /// The cudarc slice, for interoperation.
    pub fn as_cuda_slice(&self) -> &CudaSlice<u8> {
        &self.slice
    }
}

impl Drop for CudaMemory {
    fn drop(&mut self) {
        self.counters.free(self.slice.len());
    }
}

/// Page-locked host memory of a [`CudaBackend`] (zeroed when allocated).
#[derive(Debug)]
pub struct CudaHostMemory {
    slice: PinnedHostSlice<u8>,
}

/// What [`CudaBackend::compile`] takes.
#[derive(Debug, Clone)]
pub enum CudaSource {
    /// CUDA C, compiled with NVRTC for the device's architecture unless
    /// `options` say otherwise.
    CudaC {
        /// Program name.
        program: String,
        /// Source text.
        source: String,
        /// Entry point to load.
        entry: String,
        /// Options (`None`: `compute_XY` of the device).
        options: Option<CompileOptions>,
    },
    /// PTX text.
    Ptx {
        /// Module name, for messages.
        module: String,
        /// The PTX.
        ptx: String,
        /// Entry point to load.
        entry: String,
    },
    /// An already compiled module.
    Compiled {
        /// The module.
        kernel: CompiledKernel,
        /// Entry point to load.
        entry: String,
    },
}

impl CudaSource {
    /// One of the shipped kernels.
    pub fn shipped(k: KernelSource) -> Self {
        CudaSource::CudaC {
            program: k.file.into(),
            source: k.source.into(),
            entry: k.entry.into(),
            options: None,
        }
    }
}

/// A loaded CUDA kernel.
#[derive(Debug)]
pub struct CudaKernel {
    entry: String,
    function: CudaFunction,
    params: Vec<PtxParam>,
}

impl CudaKernel {
    /// The parameters declared in the PTX.
    pub fn params(&self) -> &[PtxParam] {
        &self.params
    }
}

/// The CUDA backend. See the [module docs](self).
#[derive(Debug)]
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    info: DeviceInfo,
    counters: Arc<BackendCounters>,
    compiler: KernelCompiler,
}

impl CudaBackend {
    /// A backend on CUDA device `ordinal`.
    pub fn new(ordinal: usize) -> DeviceResult<Self> {
        let (_, devices) = discover_devices(0)?;
        let count = devices.len();
        let info = devices
            .into_iter()
            .find(|d| d.ordinal == ordinal)
            .ok_or(DeviceError::DeviceNotFound { index: ordinal, count })?;
        Self::new_with_info(info)
    }

    pub(crate) fn new_with_info(info: DeviceInfo) -> DeviceResult<Self> {
        ensure_driver()?;
        let ctx = shared_context(info.ordinal)?;
        let stream = ctx.new_stream().map_err(driver("cuStreamCreate"))?;
        Ok(CudaBackend {
            ctx,
            stream,
            info,
            counters: Arc::new(BackendCounters::default()),
            compiler: KernelCompiler::new(),
        })
    }

    /// Uses `compiler` (and its cache) for CUDA C sources.
    pub fn with_compiler(mut self, compiler: KernelCompiler) -> Self {
        self.compiler = compiler;
        self
    }

    /// Number of CUDA devices (`Unavailable` without a driver).
    pub fn device_count() -> DeviceResult<usize> {
        Ok(discover_devices(0)?.1.len())
    }

    /// Free and total device memory in bytes.
    pub fn memory_info(&self) -> DeviceResult<(usize, usize)> {
        self.ctx.mem_get_info().map_err(driver("cuMemGetInfo"))
    }

    fn load(&self, module: &str, ptx: &str, cubin: Option<&[u8]>, entry: &str) -> DeviceResult<CudaKernel> {
        if ptx.contains('\0') {
            return Err(DeviceError::invalid("ptx", module, "contains a NUL byte"));
        }
        let params = super::compiler::ptx::entries(ptx)
            .into_iter()
            .find(|e| e.name == entry)
            .ok_or_else(|| DeviceError::EntryNotFound {
                module: module.to_string(),
                entry: entry.to_string(),
            })?
            .params;
        let image = match cubin {
            Some(bin) => cudarc::nvrtc::Ptx::from_binary(bin.to_vec()),
            None => cudarc::nvrtc::Ptx::from_src(ptx),
        };
        let m = self.ctx.load_module(image).map_err(driver("cuModuleLoadData"))?;
        let function = m.load_function(entry).map_err(|e| {
            if e.0 == sys::cudaError_enum::CUDA_ERROR_NOT_FOUND {
                DeviceError::EntryNotFound {
                    module: module.to_string(),
                    entry: entry.to_string(),
                }
            } else {
                driver("cuModuleGetFunction")(e)
            }
        })?;
        Ok(CudaKernel {
            entry: entry.to_string(),
            function,
            params,
        })
    }

    fn check_args(&self, kernel: &CudaKernel, args: &[KernelArg<'_, Self>]) -> DeviceResult<()> {
        let err = |index, reason: String| DeviceError::KernelArgument {
            kernel: kernel.entry.clone(),
            index,
            reason,
        };
        if args.len() != kernel.params.len() {
            return Err(err(
                args.len().min(kernel.params.len()),
                format!(
                    "the kernel declares {} parameter(s), the launch passed {}",
                    kernel.params.len(),
                    args.len()
                ),
            ));
        }
        for (i, (a, p)) in args.iter().zip(&kernel.params).enumerate() {
            let size = match a {
                KernelArg::Buffer { .. } | KernelArg::BufferMut { .. } => std::mem::size_of::<sys::CUdeviceptr>(),
                KernelArg::Scalar(s) => s.size(),
            };
            if size != p.size {
                return Err(err(
                    i,
                    format!(
                        "{} ({size} bytes) passed for a .{} parameter ({} bytes)",
                        a.describe(),
                        p.ty,
                        p.size
                    ),
                ));
            }
        }
        Ok(())
    }

    fn launch_inner(
        &self,
        kernel: &CudaKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        stream: &Arc<CudaStream>,
        timed: bool,
    ) -> DeviceResult<Option<Duration>> {
        config.validate(&self.info)?;
        self.check_args(kernel, args)?;
        let cfg = cudarc::driver::LaunchConfig {
            grid_dim: (config.grid.x, config.grid.y, config.grid.z),
            block_dim: (config.block.x, config.block.y, config.block.z),
            shared_mem_bytes: config.shared_mem_bytes,
        };
        let mut builder = stream.launch_builder(&kernel.function);
        for arg in args.iter_mut() {
            match arg {
                KernelArg::Buffer { memory, .. } => {
                    builder.arg(&memory.slice);
                }
                KernelArg::BufferMut { memory, .. } => {
                    builder.arg(&mut memory.slice);
                }
                KernelArg::Scalar(s) => match s {
                    Scalar::I32(v) => {
                        builder.arg(&*v);
                    }
                    Scalar::U32(v) => {
                        builder.arg(&*v);
                    }
                    Scalar::I64(v) => {
                        builder.arg(&*v);
                    }
                    Scalar::U64(v) => {
                        builder.arg(&*v);
                    }
                    Scalar::F32(v) => {
                        builder.arg(&*v);
                    }
                    Scalar::F64(v) => {
                        builder.arg(&*v);
                    }
                },
            }
        }
        if timed {
            builder.record_kernel_launch(sys::CUevent_flags::CU_EVENT_DEFAULT);
        }
        // SAFETY: the argument count and each argument's size were checked
        // against the parameters the kernel's PTX declares; buffer arguments
        // are live device allocations borrowed for the whole launch (read-only
        // ones shared, writable ones exclusive), and cudarc orders their later
        // use and their free after the kernel through events. A kernel that
        // indexes out of bounds faults on the device; the driver reports it
        // as an error on this stream and host memory is not touched.
        let events = unsafe { builder.launch(cfg) }.map_err(|e| DeviceError::KernelFault {
            kernel: kernel.entry.clone(),
            reason: driver("cuLaunchKernel")(e).to_string(),
        })?;
        self.counters.launch();
        match events {
            Some((start, end)) if timed => {
                end.synchronize().map_err(driver("cuEventSynchronize"))?;
                let ms = start.elapsed_ms(&end).map_err(driver("cuEventElapsedTime"))?;
                Ok(Some(Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1000.0)))
            }
            _ => Ok(None),
        }
    }
}

impl Backend for CudaBackend {
    type Memory = CudaMemory;
    type HostMemory = CudaHostMemory;
    type Source = CudaSource;
    type Kernel = CudaKernel;
    type Stream = Arc<CudaStream>;

    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn stats(&self) -> BackendStats {
        self.counters.snapshot()
    }

    fn alloc(&self, bytes: usize) -> DeviceResult<CudaMemory> {
        let slice = if bytes == 0 {
            self.stream.null::<u8>()
        } else {
            // SAFETY: the memory is uninitialised; the Backend contract makes
            // its contents unspecified, and the host only ever sees device
            // bytes through copies into its own initialised buffers.
            unsafe { self.stream.alloc::<u8>(bytes) }
        };
        let slice = slice.map_err(|e| {
            if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
                DeviceError::OutOfMemory {
                    requested: bytes,
                    in_use: self.counters.live_bytes() as usize,
                    limit: self.info.total_memory as usize,
                    context: format!("CUDA device {} ({})", self.info.ordinal, self.info.name),
                }
            } else {
                driver("cuMemAlloc")(e)
            }
        })?;
        self.counters.alloc(bytes);
        Ok(CudaMemory {
            slice,
            counters: self.counters.clone(),
        })
    }

    fn memory_size(memory: &CudaMemory) -> usize {
        memory.len()
    }

    fn alloc_host(&self, bytes: usize) -> DeviceResult<CudaHostMemory> {
        // SAFETY: the memory is uninitialised; it is zeroed below before any
        // reference to it is handed out.
        let mut slice =
            unsafe { self.ctx.alloc_pinned_with_flags::<u8>(bytes.max(1), 0) }.map_err(driver("cuMemHostAlloc"))?;
        slice.as_mut_slice().map_err(driver("cuEventSynchronize"))?.fill(0);
        Ok(CudaHostMemory { slice })
    }

    fn host_bytes(memory: &CudaHostMemory) -> DeviceResult<&[u8]> {
        memory.slice.as_slice().map_err(driver("cuEventSynchronize"))
    }

    fn host_bytes_mut(memory: &mut CudaHostMemory) -> DeviceResult<&mut [u8]> {
        memory.slice.as_mut_slice().map_err(driver("cuEventSynchronize"))
    }

    fn default_stream(&self) -> Arc<CudaStream> {
        self.stream.clone()
    }

    fn create_stream(&self) -> DeviceResult<Arc<CudaStream>> {
        self.ctx.new_stream().map_err(driver("cuStreamCreate"))
    }

    fn copy_htod(&self, src: &[u8], dst: &mut CudaMemory, off: usize, stream: &Arc<CudaStream>) -> DeviceResult<()> {
        check_range("copy_htod", off, src.len(), dst.len())?;
        if src.is_empty() {
            return Ok(());
        }
        let mut view = dst.slice.slice_mut(off..off + src.len());
        stream
            .memcpy_htod(src, &mut view)
            .map_err(driver("cuMemcpyHtoDAsync"))?;
        stream.synchronize().map_err(driver("cuStreamSynchronize"))?;
        self.counters.htod(src.len());
        Ok(())
    }

    fn copy_dtoh(&self, src: &CudaMemory, off: usize, dst: &mut [u8], stream: &Arc<CudaStream>) -> DeviceResult<()> {
        check_range("copy_dtoh", off, dst.len(), src.len())?;
        if dst.is_empty() {
            return Ok(());
        }
        let view = src.slice.slice(off..off + dst.len());
        stream.memcpy_dtoh(&view, dst).map_err(driver("cuMemcpyDtoHAsync"))?;
        stream.synchronize().map_err(driver("cuStreamSynchronize"))?;
        self.counters.dtoh(dst.len());
        Ok(())
    }

    fn copy_dtod(
        &self,
        src: &CudaMemory,
        src_offset: usize,
        dst: &mut CudaMemory,
        dst_offset: usize,
        bytes: usize,
        stream: &Arc<CudaStream>,
    ) -> DeviceResult<()> {
        check_range("copy_dtod source", src_offset, bytes, src.len())?;
        check_range("copy_dtod destination", dst_offset, bytes, dst.len())?;
        if bytes == 0 {
            return Ok(());
        }
        let from = src.slice.slice(src_offset..src_offset + bytes);
        let mut to = dst.slice.slice_mut(dst_offset..dst_offset + bytes);
        stream
            .memcpy_dtod(&from, &mut to)
            .map_err(driver("cuMemcpyDtoDAsync"))?;
        stream.synchronize().map_err(driver("cuStreamSynchronize"))?;
        self.counters.dtod(bytes);
        Ok(())
    }

    fn fill_zero(&self, memory: &mut CudaMemory, stream: &Arc<CudaStream>) -> DeviceResult<()> {
        if memory.is_empty() {
            return Ok(());
        }
        stream
            .memset_zeros(&mut memory.slice)
            .map_err(driver("cuMemsetD8Async"))?;
        stream.synchronize().map_err(driver("cuStreamSynchronize"))
    }

    fn compile(&self, source: CudaSource) -> DeviceResult<CudaKernel> {
        match source {
            CudaSource::CudaC {
                program,
                source,
                entry,
                options,
            } => {
                let options = match options {
                    Some(o) => o,
                    None => {
                        let (a, b) = self.info.compute_capability.unwrap_or((8, 0));
                        CompileOptions::new(format!("compute_{a}{b}"))
                    }
                };
                let compiled = self.compiler.compile(&program, &source, &options)?;
                self.load(&program, &compiled.ptx, None, &entry)
            }
            CudaSource::Ptx { module, ptx, entry } => self.load(&module, &ptx, None, &entry),
            CudaSource::Compiled { kernel, entry } => {
                self.load(&kernel.name, &kernel.ptx, kernel.cubin.as_deref(), &entry)
            }
        }
    }

    fn kernel_name(kernel: &CudaKernel) -> &str {
        &kernel.entry
    }

    fn launch(
        &self,
        kernel: &CudaKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        stream: &Arc<CudaStream>,
    ) -> DeviceResult<()> {
        self.launch_inner(kernel, config, args, stream, false).map(|_| ())
    }

    fn launch_timed(
        &self,
        kernel: &CudaKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        stream: &Arc<CudaStream>,
    ) -> DeviceResult<Duration> {
        let t = self.launch_inner(kernel, config, args, stream, true)?;
        stream.synchronize().map_err(driver("cuStreamSynchronize"))?;
        t.ok_or_else(|| DeviceError::Driver {
            operation: "cuEventElapsedTime",
            message: "no timing events were recorded".into(),
        })
    }

    fn synchronize(&self, stream: &Arc<CudaStream>) -> DeviceResult<()> {
        stream.synchronize().map_err(driver("cuStreamSynchronize"))
    }
}
