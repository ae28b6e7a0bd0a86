//! The CUDA backend: one context (the process's shared one) and a default
//! stream per backend, kernels from CUDA C (compiled by NVRTC through the
//! [`KernelCompiler`] and its cache), PTX text or a [`CompiledKernel`].
//!
//! Invariants:
//! - every range is checked before cudarc sees it (cudarc asserts);
//! - a launch is refused unless its argument count and every argument's size
//!   match the kernel's parameters as declared in its PTX; buffers are passed
//!   as device pointers of allocations the launch borrows, so they outlive
//!   the kernel (cudarc records events on them and frees only after they
//!   complete);
//! - transfers return once the data has arrived (the stream is synchronised
//!   after each copy), so host slices can be reused at once.

use std::sync::Arc;
use std::time::Duration;

use cudarc::driver::{sys, CudaContext, CudaFunction, CudaStream, PushKernelArg};

use super::driver::{discover_devices, driver, ensure_driver, shared_context};
use super::memory::{CudaHostMemory, CudaMemory};
use crate::device::accelerator::DeviceInfo;
use crate::device::backend::{Backend, BackendCounters, BackendKind, BackendStats, KernelArg, LaunchConfig, Scalar};
use crate::device::compiler::{CompileOptions, CompiledKernel, KernelCompiler, PtxParam};
use crate::device::error::{check_range, DeviceError, DeviceResult};
use crate::device::kernels::KernelSource;

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
        let params = crate::device::compiler::ptx::entries(ptx)
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
        Ok(CudaHostMemory::new(&self.ctx, bytes)?)
    }

    fn host_bytes(memory: &CudaHostMemory) -> DeviceResult<&[u8]> {
        Ok(memory.as_slice())
    }

    fn host_bytes_mut(memory: &mut CudaHostMemory) -> DeviceResult<&mut [u8]> {
        Ok(memory.as_mut_slice())
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
