//! GPU ring kernels on a real CUDA device: [`CudaDevice`] is the
//! [`DeviceAgent`] that compiles the persistent-kernel template with the
//! user's CUDA C handler (NVRTC, through the kernel cache), maps the ring
//! region into the device and launches the kernel once; [`GpuRing::cuda`]
//! and [`GpuPipeline::cuda`] build rings on it.
//!
//! Invariants this module keeps:
//! - Nothing touches cudarc before [`dylib::cuda_driver`] found the driver:
//!   a machine without one gets [`GpuError::Unavailable`], never a panic.
//! - The region (control block, both rings, the state) is page-locked host
//!   memory mapped into the device (`cuMemHostAlloc` with `DEVICEMAP |
//!   PORTABLE`); the kernel gets its device address, the host its host
//!   address, and both follow the ring protocol on it.
//! - No call here waits for the device without a bound. The kernel runs on
//!   its own non-blocking stream; its end is observed with `cuStreamQuery`,
//!   never with a stream or context synchronize. Device memory (the working
//!   copy of the state, the grid workspace, link rings) is allocated and
//!   freed stream-ordered, so a free never waits for another persistent
//!   kernel. Page-locked memory is returned to the driver only while no ring
//!   kernel of this process runs (freeing it may synchronise the device);
//!   otherwise it is kept for reuse
//!   ([`pinned_cache_stats`](crate::device::cuda::pinned_cache_stats)). Streams are
//!   made on the process's shared context object
//!   ([`shared_context`](crate::device::cuda::shared_context)), which never
//!   synchronises the context when a stream is created.
//! - A kernel that has not stopped when its agent is dropped keeps
//!   everything it can touch: its region, device memory and stream are
//!   leaked, never freed under it. Loaded modules are kept for the life of
//!   the process (unloading one may synchronise; loading is slow anyway).
//!
//! This module has not run on a GPU in this repository's CI (none is
//! available there). Its host-side logic is the same [`GpuRing`] the
//! emulator tests drive; what compiles here is tested for real (the
//! generated source through NVRTC and ptxas), and `tests/gpu_cuda.rs` runs
//! everything on any machine with an NVIDIA GPU, skipping with a reason
//! elsewhere.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{result, sys, CudaContext, CudaFunction, CudaModule, CudaStream, DriverError};

use super::error::GpuError;
use super::host::{DeviceAgent, GpuPipeline, GpuRing, GpuRingOptions};
use super::message::GpuMessage;
use super::protocol::{DeviceKernelParams, LinkLayout, MappedRegion, RegionLayout, GRID_WORKSPACE_SIZE};
use super::source::{ring_kernel_source, CudaHandler, Threading};
use crate::device::compiler::ptx;
use crate::device::cuda::driver::gpu_driver as driver;
use crate::device::cuda::memory::{PinnedRegion, RunningKernel, StreamMemory};
use crate::device::{dylib, CompileOptions, CompiledKernel, KernelCompiler};

/// Where and how a CUDA ring kernel runs.
#[derive(Debug, Clone)]
pub struct CudaRingOptions {
    /// The CUDA device (ordinal, as `cuDeviceGet` counts).
    pub ordinal: usize,
    /// Blocks in the grid. More than one needs a
    /// [`Threading::Parallel`] handler and a device that supports
    /// cooperative launches; all blocks must fit on the device at once.
    pub blocks: u32,
    /// Threads per block (a multiple of 32, at most 1024).
    pub threads_per_block: u32,
    /// The architecture to compile for (`None`: `compute_XY` of the device).
    pub arch: Option<String>,
    /// Compile with line information (for profilers).
    pub line_info: bool,
    /// The compiler and its cache (shared, so a restart does not recompile).
    pub compiler: KernelCompiler,
}

impl Default for CudaRingOptions {
    fn default() -> Self {
        CudaRingOptions {
            ordinal: 0,
            blocks: 1,
            threads_per_block: 128,
            arch: None,
            line_info: false,
            compiler: shared_compiler(),
        }
    }
}

/// The process's compiler for ring kernels: one in-memory cache, so the
/// runtime's restarts and re-activations compile a kernel once.
fn shared_compiler() -> KernelCompiler {
    static COMPILER: std::sync::OnceLock<KernelCompiler> = std::sync::OnceLock::new();
    COMPILER.get_or_init(KernelCompiler::new).clone()
}

impl CudaRingOptions {
    /// Checks the grid shape against the handler's threading.
    ///
    /// # Errors
    ///
    /// [`GpuError::Start`] for a shape the template cannot run.
    pub fn validate(&self, threading: Threading) -> Result<(), GpuError> {
        if self.blocks == 0 || self.threads_per_block == 0 {
            return Err(GpuError::Start(
                "blocks and threads_per_block must be at least 1".into(),
            ));
        }
        if self.threads_per_block > 1024 || !self.threads_per_block.is_multiple_of(32) {
            return Err(GpuError::Start(format!(
                "threads_per_block = {}: must be a multiple of 32, at most 1024",
                self.threads_per_block
            )));
        }
        if self.blocks > 1 && threading == Threading::Serial {
            return Err(GpuError::Start(format!(
                "blocks = {}: a Threading::Serial handler runs in one block (its state is updated without atomics)",
                self.blocks
            )));
        }
        Ok(())
    }

    fn compile_options(&self, arch: String) -> CompileOptions {
        let mut o = CompileOptions::new(arch).line_info(self.line_info);
        // Separate multiplies and adds, as the Rust twins of handlers compute
        // them, so emulation and device agree bit for bit.
        o.extra.push("--fmad=false".into());
        o
    }
}

/// The name of the `extern "C"` entry generated for `handler`.
pub fn entry_name(handler: &CudaHandler) -> String {
    format!("dc_ring_{}", handler.function)
}

/// Compiles the ring kernel for `In`, `Out`, `State` and `handler` to PTX
/// for `arch` (e.g. `compute_90`) through `compiler` and its cache. Needs
/// NVRTC, not a GPU.
///
/// ```no_run
/// use dotcompute::device::KernelCompiler;
/// use dotcompute::gpu::cuda_device::compile_ring_kernel;
/// use dotcompute::gpu::handlers::{self, Sample, Stats, StatsState};
///
/// let k = compile_ring_kernel::<Sample, Stats, StatsState>(&handlers::running_stats_cuda(), "compute_90", false, &KernelCompiler::new())?;
/// assert!(k.ptx.contains(".entry dc_ring_running_stats"));
/// # Ok::<(), dotcompute::gpu::GpuError>(())
/// ```
///
/// # Errors
///
/// [`GpuError::Unavailable`] without NVRTC; [`GpuError::Compile`] with the
/// compiler's log when the handler does not compile; [`GpuError::Start`]
/// for a bad name.
pub fn compile_ring_kernel<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
    handler: &CudaHandler,
    arch: &str,
    line_info: bool,
    compiler: &KernelCompiler,
) -> Result<CompiledKernel, GpuError> {
    let options = CudaRingOptions {
        line_info,
        compiler: compiler.clone(),
        ..CudaRingOptions::default()
    };
    compile_with::<In, Out, State>(handler, arch.to_string(), &options)
}

fn compile_with<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
    handler: &CudaHandler,
    arch: String,
    options: &CudaRingOptions,
) -> Result<CompiledKernel, GpuError> {
    dylib::nvrtc()
        .map_err(|reason| GpuError::Unavailable(format!("NVRTC is needed to compile the kernel: {reason}")))?;
    let entry = entry_name(handler);
    let source = ring_kernel_source::<In, Out, State>(&entry, handler).map_err(|e| GpuError::Start(e.to_string()))?;
    let compiled = options
        .compiler
        .compile(&entry, &source.code, &options.compile_options(arch))
        .map_err(|e| GpuError::Compile(e.to_string()))?;
    let entries = ptx::entries(&compiled.ptx);
    let params = entries
        .iter()
        .find(|e| e.name == entry)
        .map(|e| e.params.clone())
        .ok_or_else(|| GpuError::Compile(format!("the PTX has no entry `{entry}`")))?;
    if params.len() != 1 || params[0].size != DeviceKernelParams::SIZE {
        return Err(GpuError::Compile(format!(
            "entry `{entry}` takes {:?}, expected one {}-byte parameter block",
            params,
            DeviceKernelParams::SIZE
        )));
    }
    Ok(compiled)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Loaded modules, by device and compiled-kernel key: loaded once, kept.
type ModuleKey = (usize, String);
static MODULES: Mutex<Option<HashMap<ModuleKey, Arc<CudaModule>>>> = Mutex::new(None);

fn load_function(
    ctx: &Arc<CudaContext>,
    ordinal: usize,
    kernel: &CompiledKernel,
    entry: &str,
) -> Result<CudaFunction, GpuError> {
    let mut modules = lock(&MODULES);
    let map = modules.get_or_insert_with(HashMap::new);
    let key = (ordinal, kernel.cache_key.clone());
    let module = match map.get(&key) {
        Some(m) => m.clone(),
        None => {
            if kernel.ptx.contains('\0') {
                return Err(GpuError::Compile("the PTX contains a NUL byte".into()));
            }
            let m = ctx
                .load_module(cudarc::nvrtc::Ptx::from_src(kernel.ptx.clone()))
                .map_err(driver("cuModuleLoadData"))?;
            map.insert(key, m.clone());
            m
        }
    };
    module.load_function(entry).map_err(driver("cuModuleGetFunction"))
}

/// A link ring in device memory between two CUDA ring kernels (see
/// [`GpuPipeline::cuda`]). Freed when the last kernel holding it is gone.
#[derive(Debug)]
pub struct DeviceLink {
    memory: StreamMemory,
    layout: LinkLayout,
}

impl DeviceLink {
    /// A link of `capacity` slots of `slot_size` bytes on device `ordinal`,
    /// initialised (header written, indices zero).
    ///
    /// # Errors
    ///
    /// [`GpuError::Unavailable`] without a driver or device;
    /// [`GpuError::Layout`] for a bad capacity; driver errors.
    pub fn new(ordinal: usize, capacity: u64, slot_size: usize) -> Result<Self, GpuError> {
        let layout = LinkLayout::new(capacity, slot_size)?;
        let (ctx, _) = open_context(ordinal)?;
        let stream = ctx.new_stream().map_err(driver("cuStreamCreate"))?;
        let memory = StreamMemory::new(&ctx, &stream, layout.size)?;
        // The header, built in host memory, then copied.
        let host = super::protocol::HostRegion::new(layout.size)?;
        layout.init(&host.region())?;
        let r = host.region();
        // SAFETY: the host region is `layout.size` bytes, initialised above,
        // and no one else accesses it (it was never shared).
        let bytes = unsafe { std::slice::from_raw_parts(r.base().as_ptr(), layout.size) }.to_vec();
        // SAFETY: `memory` holds `layout.size` bytes; `bytes` has as many and
        // lives until the stream is synchronised just below.
        unsafe { result::memcpy_htod_async(memory.device_address(), &bytes, stream.cu_stream()) }
            .map_err(driver("cuMemcpyHtoDAsync"))?;
        // Only this stream is waited for, and nothing else is queued on it.
        stream.synchronize().map_err(driver("cuStreamSynchronize"))?;
        Ok(DeviceLink { memory, layout })
    }

    /// The link's layout.
    pub fn layout(&self) -> &LinkLayout {
        &self.layout
    }

    /// Device address of the link.
    pub fn device_address(&self) -> u64 {
        self.memory.device_address()
    }
}

/// Link rings a CUDA ring kernel reads from or writes to instead of its
/// region's rings.
#[derive(Debug, Clone, Default)]
pub struct CudaLinks {
    /// Read `In` from this link (written by the previous kernel).
    pub input: Option<Arc<DeviceLink>>,
    /// Write `Out` to this link (read by the next kernel).
    pub output: Option<Arc<DeviceLink>>,
}

/// Checks everything a launch needs short of launching: the grid shape,
/// the device (present, able to map host memory) and the compiled kernel
/// (NVRTC, for the device's architecture, through the options' cache).
pub(crate) fn prepare<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
    handler: &CudaHandler,
    options: &CudaRingOptions,
) -> Result<(Arc<CudaContext>, crate::device::DeviceInfo, CompiledKernel), GpuError> {
    options.validate(handler.threading)?;
    let (ctx, info) = open_context(options.ordinal)?;
    let arch = match &options.arch {
        Some(a) => a.clone(),
        None => {
            let (major, minor) = info.compute_capability.unwrap_or((8, 0));
            format!("compute_{major}{minor}")
        }
    };
    let compiled = compile_with::<In, Out, State>(handler, arch, options)?;
    Ok((ctx, info, compiled))
}

fn open_context(ordinal: usize) -> Result<(Arc<CudaContext>, crate::device::DeviceInfo), GpuError> {
    dylib::cuda_driver().map_err(GpuError::Unavailable)?;
    let (_, devices) = crate::device::cuda::discover_devices(0).map_err(|e| GpuError::Unavailable(e.to_string()))?;
    let Some(info) = devices.iter().find(|d| d.ordinal == ordinal) else {
        return Err(GpuError::Unavailable(format!(
            "no CUDA device {ordinal} ({} device(s) found)",
            devices.len()
        )));
    };
    // The shared context object: creating a stream never synchronises it
    // (which would wait forever for running ring kernels).
    let ctx = crate::device::cuda::shared_context(info.ordinal).map_err(|e| GpuError::Start(e.to_string()))?;
    let attr = |a| {
        // SAFETY: the device handle comes from the context just created.
        unsafe { result::device::get_attribute(ctx.cu_device(), a) }.map_err(driver("cuDeviceGetAttribute"))
    };
    if attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY)? == 0 {
        return Err(GpuError::Unavailable(format!(
            "CUDA device {ordinal} ({}) cannot map host memory",
            info.name
        )));
    }
    Ok((ctx, info.clone()))
}

/// A persistent CUDA ring kernel: the [`DeviceAgent`] of a [`GpuRing`] on a
/// GPU. See the [module docs](self).
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    function: CudaFunction,
    /// The ring region (its memory is owned by `memory`).
    region: MappedRegion,
    device_base: u64,
    layout: RegionLayout,
    /// Everything the kernel can touch; `None` only while being dropped.
    memory: Option<KernelMemory>,
    blocks: u32,
    threads: u32,
    description: String,
    /// Present from launch until the kernel is seen stopped.
    running: Option<RunningKernel>,
    launched: bool,
    /// What the driver said when the stream stopped with an error.
    stop_error: Option<String>,
}

/// The memory a CUDA ring kernel reads and writes while it runs: freed
/// together once it is seen stopped, leaked together if it may still run.
#[derive(Debug)]
struct KernelMemory {
    /// Owns the memory `CudaDevice::region` points into.
    _pinned: PinnedRegion,
    state: StreamMemory,
    grid: Option<StreamMemory>,
    links: CudaLinks,
}

impl KernelMemory {
    fn leak(self) {
        std::mem::forget(self);
    }
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("description", &self.description)
            .field("launched", &self.launched)
            .field("stop_error", &self.stop_error)
            .finish()
    }
}

impl CudaDevice {
    /// A ring kernel for `handler` on the device of `options`, compiled and
    /// loaded, its region allocated; not launched ([`GpuRing::start`]
    /// launches it after writing the region's header).
    ///
    /// # Errors
    ///
    /// [`GpuError::Unavailable`] (no driver, no such device, no NVRTC),
    /// [`GpuError::Compile`], [`GpuError::Start`] for a bad grid shape,
    /// [`GpuError::Driver`].
    pub fn new<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
        handler: &CudaHandler,
        layout: RegionLayout,
        options: &CudaRingOptions,
        links: CudaLinks,
    ) -> Result<Self, GpuError> {
        let (ctx, info, compiled) = prepare::<In, Out, State>(handler, options)?;
        let entry = entry_name(handler);
        let function = load_function(&ctx, options.ordinal, &compiled, &entry)?;
        if options.blocks > 1 {
            check_co_resident(&ctx, &function, options, info.multiprocessor_count)?;
        }
        let stream = ctx.new_stream().map_err(driver("cuStreamCreate"))?;
        // Each owner frees its memory if a later step fails.
        let state = StreamMemory::new(&ctx, &stream, layout.state_size)?;
        let grid = match options.blocks > 1 {
            true => Some(StreamMemory::new(&ctx, &stream, GRID_WORKSPACE_SIZE)?),
            false => None,
        };
        let pinned = PinnedRegion::new(&ctx, layout.size)?;
        let device_base = pinned.device_address(&ctx)?;
        // SAFETY: `pinned` stays valid until this agent drops it (after the
        // kernel was seen stopped) or leaks it, and is only accessed through
        // the ring protocol.
        let region = unsafe { MappedRegion::new(pinned.ptr(), pinned.capacity()) }?;
        let description = format!(
            "CUDA device {} ({}), kernel {entry}, {}x{} threads",
            options.ordinal, info.name, options.blocks, options.threads_per_block
        );
        Ok(CudaDevice {
            ctx,
            stream,
            function,
            region,
            device_base,
            layout,
            memory: Some(KernelMemory {
                _pinned: pinned,
                state,
                grid,
                links,
            }),
            blocks: options.blocks,
            threads: options.threads_per_block,
            description,
            running: None,
            launched: false,
            stop_error: None,
        })
    }

    fn params(&self) -> Result<DeviceKernelParams, GpuError> {
        let Some(m) = &self.memory else {
            return Err(GpuError::Start("the kernel's memory is gone".into()));
        };
        let mut p = DeviceKernelParams::for_region(
            self.device_base,
            &self.layout,
            m.state.device_address(),
            m.grid.as_ref().map_or(0, |g| g.device_address()),
        );
        if let Some(l) = &m.links.input {
            p = p.with_input_link(l.device_address(), l.layout());
        }
        if let Some(l) = &m.links.output {
            p = p.with_output_link(l.device_address(), l.layout());
        }
        Ok(p)
    }
}

fn check_co_resident(
    ctx: &Arc<CudaContext>,
    function: &CudaFunction,
    options: &CudaRingOptions,
    sms: u32,
) -> Result<(), GpuError> {
    // SAFETY: the device handle comes from the live context.
    let coop = unsafe {
        result::device::get_attribute(
            ctx.cu_device(),
            sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH,
        )
    }
    .map_err(driver("cuDeviceGetAttribute"))?;
    if coop == 0 {
        return Err(GpuError::Start(format!(
            "blocks = {}: the device does not support cooperative launches",
            options.blocks
        )));
    }
    let mut per_sm: i32 = 0;
    ctx.bind_to_thread().map_err(driver("cuCtxSetCurrent"))?;
    // SAFETY: the function belongs to a module loaded in this context; the
    // out-pointer is valid for one write.
    unsafe {
        sys::cuOccupancyMaxActiveBlocksPerMultiprocessor(
            &mut per_sm,
            function.cu_function(),
            options.threads_per_block as i32,
            0,
        )
    }
    .result()
    .map_err(driver("cuOccupancyMaxActiveBlocksPerMultiprocessor"))?;
    let max = u64::from(per_sm.max(0) as u32) * u64::from(sms);
    if u64::from(options.blocks) > max {
        return Err(GpuError::Start(format!(
            "blocks = {}: at most {max} blocks of {} threads fit on the device at once, and a persistent grid must",
            options.blocks, options.threads_per_block
        )));
    }
    Ok(())
}

// SAFETY: `region` returns the same page-locked region every time; it is
// page-aligned (so 128-byte aligned), at least `layout.size` bytes, and
// stays valid until the agent is dropped; if the kernel may still run then,
// `Drop` leaks it (and the device memory) instead of freeing it.
unsafe impl DeviceAgent for CudaDevice {
    fn describe(&self) -> String {
        match &self.stop_error {
            Some(e) => format!("{} (stopped with driver error {e})", self.description),
            None => self.description.clone(),
        }
    }

    fn is_emulation(&self) -> bool {
        false
    }

    fn region(&self) -> MappedRegion {
        self.region
    }

    fn start(&mut self) -> Result<(), GpuError> {
        if self.launched {
            return Err(GpuError::Start("the kernel was already launched".into()));
        }
        self.ctx.bind_to_thread().map_err(driver("cuCtxSetCurrent"))?;
        let mut params = self.params()?;
        let mut args: [*mut c_void; 1] = [(&mut params as *mut DeviceKernelParams).cast()];
        let grid = (self.blocks, 1, 1);
        let block = (self.threads, 1, 1);
        // SAFETY: the function takes exactly one parameter of
        // `DeviceKernelParams::SIZE` bytes (checked against its PTX when
        // compiled); `params` holds device addresses of the mapped region and
        // of device allocations that outlive the kernel (kept until it is
        // seen stopped, leaked otherwise). The driver copies the parameter
        // block at launch. The stream is this agent's own.
        let launched = unsafe {
            if self.blocks > 1 {
                result::launch_cooperative_kernel(
                    self.function.cu_function(),
                    grid,
                    block,
                    0,
                    self.stream.cu_stream(),
                    &mut args,
                )
            } else {
                result::launch_kernel(
                    self.function.cu_function(),
                    grid,
                    block,
                    0,
                    self.stream.cu_stream(),
                    &mut args,
                )
            }
        };
        launched.map_err(driver("cuLaunchKernel"))?;
        self.launched = true;
        self.running = Some(RunningKernel::new());
        Ok(())
    }

    fn has_stopped(&mut self) -> bool {
        // Never launched, or already seen stopped.
        if self.running.is_none() {
            return true;
        }
        if self.ctx.bind_to_thread().is_err() {
            return false;
        }
        // SAFETY: the stream is this agent's own and alive.
        let status = unsafe { sys::cuStreamQuery(self.stream.cu_stream()) };
        match status {
            sys::cudaError_enum::CUDA_ERROR_NOT_READY => false,
            sys::cudaError_enum::CUDA_SUCCESS => {
                self.running = None;
                true
            }
            other => {
                self.stop_error = Some(crate::device::cuda::driver_message(&DriverError(other)));
                self.running = None;
                true
            }
        }
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        let Some(memory) = self.memory.take() else {
            return;
        };
        if self.has_stopped() {
            // Freed in stream order, and the region returned to the cache
            // (to the driver once no ring kernel runs).
            drop(memory);
        } else {
            tracing::warn!(
                device = %self.description,
                "dropping a CUDA ring kernel that is still running: its memory is leaked while it may run"
            );
            memory.leak();
            // Its stream too: the kernel runs on it.
            std::mem::forget(self.stream.clone());
            // And the running count, so page-locked memory stays cached.
            if let Some(running) = self.running.take() {
                std::mem::forget(running);
            }
        }
    }
}

impl<In: GpuMessage, Out: GpuMessage> GpuRing<In, Out> {
    /// A ring kernel on a CUDA device: `handler` (CUDA C) compiled with the
    /// persistent-kernel template through NVRTC and the kernel cache,
    /// launched once on its own stream, polling the ring region in
    /// page-locked memory mapped into the device.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use dotcompute::gpu::cuda_device::CudaRingOptions;
    /// use dotcompute::gpu::handlers::{self, Sample, Stats, StatsState};
    /// use dotcompute::gpu::{GpuMessage, GpuRing, GpuRingOptions};
    ///
    /// let mut ring = GpuRing::<Sample, Stats>::cuda(
    ///     &handlers::running_stats_cuda(),
    ///     StatsState::zeroed(),
    ///     GpuRingOptions::default(),
    ///     &CudaRingOptions::default(),
    /// )?;
    /// ring.activate()?;
    /// ring.send(&Sample { seq: 0, value: 2.0, channel: 0 }, Duration::from_secs(5))?;
    /// assert_eq!(ring.receive(Duration::from_secs(5))?.count, 1);
    /// ring.terminate(Duration::from_secs(5))?;
    /// # Ok::<(), dotcompute::gpu::GpuError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`CudaDevice::new`] and [`GpuRing::start`].
    pub fn cuda<State: GpuMessage>(
        handler: &CudaHandler,
        initial_state: State,
        options: GpuRingOptions,
        cuda: &CudaRingOptions,
    ) -> Result<Self, GpuError> {
        Self::cuda_with(handler, initial_state, options, cuda, CudaLinks::default())
    }

    /// [`cuda`](Self::cuda) with link rings.
    ///
    /// # Errors
    ///
    /// As [`cuda`](Self::cuda).
    pub fn cuda_with<State: GpuMessage>(
        handler: &CudaHandler,
        initial_state: State,
        options: GpuRingOptions,
        cuda: &CudaRingOptions,
        links: CudaLinks,
    ) -> Result<Self, GpuError> {
        let layout = RegionLayout::for_types::<In, Out, State>(options.input_capacity, options.output_capacity)?;
        let device = CudaDevice::new::<In, Out, State>(handler, layout, cuda, links)?;
        Self::start(Box::new(device), layout, initial_state, options)
    }
}

impl<In: GpuMessage, Mid: GpuMessage, Out: GpuMessage> GpuPipeline<In, Mid, Out> {
    /// Two CUDA ring kernels linked by a ring of `link_capacity` slots in
    /// device memory: the first's replies go straight to the second, never
    /// through the host.
    ///
    /// # Errors
    ///
    /// As [`GpuRing::cuda`].
    pub fn cuda<S1: GpuMessage, S2: GpuMessage>(
        first: &CudaHandler,
        first_state: S1,
        second: &CudaHandler,
        second_state: S2,
        link_capacity: u64,
        options: GpuRingOptions,
        cuda: &CudaRingOptions,
    ) -> Result<Self, GpuError> {
        let link = Arc::new(DeviceLink::new(cuda.ordinal, link_capacity, Mid::SIZE)?);
        let a = GpuRing::cuda_with(
            first,
            first_state,
            options.clone(),
            cuda,
            CudaLinks {
                input: None,
                output: Some(link.clone()),
            },
        )?;
        let b = GpuRing::cuda_with(
            second,
            second_state,
            options,
            cuda,
            CudaLinks {
                input: Some(link.clone()),
                output: None,
            },
        )?;
        Ok(GpuPipeline::from_parts(a, b, Box::new(link)))
    }
}
