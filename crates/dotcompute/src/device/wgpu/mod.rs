//! The wgpu backend: one portable GPU backend for Vulkan (Linux, Windows,
//! Android; Mesa's lavapipe on the CPU), Metal (macOS), DX12 (Windows) and
//! GL, with kernels in WGSL that naga translates to SPIR-V, MSL or HLSL.
//!
//! - [`adapter`]: discovery and selection (by ordinal, name or API), the
//!   adapter's limits and features, and why there is none.
//! - [`shader`]: WGSL parsing and validation with naga (a bad shader is a
//!   [`DeviceError::Shader`] with the line), reflection of the bindings
//!   into the kernel's parameters, and the launch convention.
//! - [`kernels`]: the shipped kernels in WGSL.
//! - [`WgpuBackend`]: the [`Backend`] on one wgpu device and queue.
//!
//! Invariants:
//! - Every wgpu call that can report an error runs inside error scopes
//!   (out-of-memory, validation, internal) popped before the call returns,
//!   and the device has an uncaptured-error handler that records instead of
//!   panicking (wgpu's default), so a wgpu error is a typed [`DeviceError`]
//!   of the operation that caused it, never a panic.
//! - A lost device is recorded by its callback; every later operation is a
//!   [`DeviceError::DeviceLost`].
//! - Ranges are checked before wgpu sees them; transfers whose offset or
//!   length is not a multiple of 4 (wgpu's copy alignment) are widened to
//!   whole words without touching the bytes outside the range.
//! - Transfers to the device are staged by the queue when the call returns
//!   (the host slice may be reused at once) and execute before any later
//!   launch or copy; transfers to the host return once the data is there;
//!   launches are asynchronous until [`Backend::synchronize`]. There is one
//!   queue per device: streams name an order, all of them the queue's.
//! - Counters ([`BackendStats`]) count the same events as on the CPU and
//!   CUDA backends: one per allocation, transfer and launch.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dotcompute::device::wgpu::{kernels, WgpuBackend};
//! use dotcompute::device::{Backend, DeviceBuffer, KernelArg, LaunchConfig};
//!
//! let gpu = Arc::new(WgpuBackend::best()?);
//! let add = gpu.compile(kernels::source(&dotcompute::device::kernels::VECTOR_ADD)?)?;
//! let a = DeviceBuffer::from_slice(&gpu, &[1.0f32, 2.0, 3.0])?;
//! let b = DeviceBuffer::from_slice(&gpu, &[10.0f32, 20.0, 30.0])?;
//! let mut c = DeviceBuffer::<f32, _>::zeroed(&gpu, 3)?;
//! let cfg = LaunchConfig::linear(3, 64)?;
//! gpu.launch(&add, &cfg, &mut [a.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(3u32)], &gpu.default_stream())?;
//! assert_eq!(c.to_vec()?, vec![11.0, 22.0, 33.0]);
//! # Ok::<(), dotcompute::device::DeviceError>(())
//! ```
//!
//! What runs where: the Vulkan path runs in every test run on lavapipe
//! (`scripts/provision-vulkan.sh` installs it); the Metal path compiles only
//! on macOS and the DX12 path only on Windows, and neither has been run by
//! this project.

pub mod adapter;
pub mod kernels;
pub mod shader;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use adapter::{AdapterSelector, WgpuAdapterInfo, WgpuApi, WgpuLimits, WgpuStatus};
pub use shader::{ParamKind, Reflection, WgslParam, WgslSource, WgslType};

use super::accelerator::DeviceInfo;
use super::backend::{Backend, BackendCounters, BackendKind, BackendStats, KernelArg, LaunchConfig, Scalar};
use super::error::{check_range, DeviceError, DeviceResult};

/// Options of a [`WgpuBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WgpuOptions {
    /// Which adapter.
    pub selector: AdapterSelector,
    /// Use `f64` in shaders where the adapter supports it (default). With
    /// `false` the backend behaves as on an adapter without `SHADER_F64`
    /// (shipped kernels take their f32 variants), which lets a machine with
    /// f64 test the f32 paths.
    pub use_f64: bool,
}

impl Default for WgpuOptions {
    fn default() -> Self {
        WgpuOptions {
            selector: AdapterSelector::Best,
            use_f64: true,
        }
    }
}

impl WgpuOptions {
    /// The adapter `selector` names, f64 where supported.
    pub fn new(selector: AdapterSelector) -> Self {
        WgpuOptions {
            selector,
            use_f64: true,
        }
    }

    /// The same options without f64 shaders.
    pub fn without_f64(mut self) -> Self {
        self.use_f64 = false;
        self
    }
}

/// What went wrong on the device outside an error scope, or that it was lost.
#[derive(Debug, Default)]
struct Health {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Option<String>>,
    uncaptured_count: AtomicU64,
}

/// Device memory of a [`WgpuBackend`]: one storage buffer.
#[derive(Debug)]
pub struct WgpuMemory {
    buffer: wgpu::Buffer,
    size: usize,
    counters: Arc<BackendCounters>,
}

impl WgpuMemory {
    /// Size in bytes, as allocated (the buffer itself is rounded up to 4).
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The wgpu buffer, for interoperation.
    pub fn as_wgpu_buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for WgpuMemory {
    fn drop(&mut self) {
        self.counters.free(self.size);
    }
}

/// Host staging memory of a [`WgpuBackend`] (ordinary host memory: wgpu
/// stages transfers itself).
#[derive(Debug)]
pub struct WgpuHostMemory {
    bytes: Box<[u8]>,
}

/// An ordering token for wgpu work (every stream is the device's one queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgpuStream {
    id: u64,
}

impl WgpuStream {
    /// The stream's id (0 is the default stream).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// A compiled WGSL kernel: the shader module, its reflected parameters, and
/// one compute pipeline per block shape launched.
#[derive(Debug)]
pub struct WgpuKernel {
    name: String,
    entry: String,
    module: wgpu::ShaderModule,
    reflection: Reflection,
    bind_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: Mutex<HashMap<[u32; 3], wgpu::ComputePipeline>>,
    f32_variant: bool,
}

impl WgpuKernel {
    /// The parameters, in binding order.
    pub fn params(&self) -> &[WgslParam] {
        &self.reflection.params
    }

    /// What reflection found.
    pub fn reflection(&self) -> &Reflection {
        &self.reflection
    }

    /// Whether this is the f32 variant of a kernel that has an f64 one
    /// (built because the adapter has no `SHADER_F64` or f64 was turned off).
    pub fn is_f32_variant(&self) -> bool {
        self.f32_variant
    }

    /// The shader's name.
    pub fn shader_name(&self) -> &str {
        &self.name
    }
}

/// The wgpu backend. See the [module docs](self).
#[derive(Debug)]
pub struct WgpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: DeviceInfo,
    adapter: WgpuAdapterInfo,
    counters: Arc<BackendCounters>,
    health: Arc<Health>,
    staging: Mutex<Vec<wgpu::Buffer>>,
    next_stream: AtomicU64,
    f64: bool,
    uniform_align: u64,
}

/// Rounds `n` up to a multiple of 4 (wgpu's copy alignment).
fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

impl WgpuBackend {
    /// A backend on the adapter with this ordinal (see [`adapter`]).
    pub fn new(ordinal: usize) -> DeviceResult<Self> {
        Self::with_options(WgpuOptions::new(AdapterSelector::Index(ordinal)))
    }

    /// A backend on the best adapter: a discrete GPU, then an integrated
    /// one, then anything (lavapipe).
    pub fn best() -> DeviceResult<Self> {
        Self::with_options(WgpuOptions::default())
    }

    /// A backend on the adapter `selector` names.
    pub fn select(selector: AdapterSelector) -> DeviceResult<Self> {
        Self::with_options(WgpuOptions::new(selector))
    }

    /// A backend with `options`.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Unavailable`] without any adapter (with the reason:
    /// no Vulkan loader, no driver, ...); [`DeviceError::DeviceNotFound`] or
    /// [`DeviceError::InvalidConfiguration`] when the selector matches
    /// none; [`DeviceError::Wgpu`] if the device cannot be created.
    pub fn with_options(options: WgpuOptions) -> DeviceResult<Self> {
        let adapters = adapter::adapters();
        let infos: Vec<WgpuAdapterInfo> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| adapter::describe(a, i, i))
            .collect();
        let index = adapter::select(&infos, &options.selector)?;
        Self::open(&adapters[index], infos[index].clone(), options.use_f64)
    }

    pub(crate) fn from_info(info: &WgpuAdapterInfo) -> DeviceResult<Self> {
        let adapters = adapter::adapters();
        let a = adapters.get(info.device.ordinal).ok_or(DeviceError::DeviceNotFound {
            index: info.device.ordinal,
            count: adapters.len(),
        })?;
        Self::open(a, info.clone(), true)
    }

    fn open(adapter: &wgpu::Adapter, info: WgpuAdapterInfo, use_f64: bool) -> DeviceResult<Self> {
        let f64 = use_f64 && info.shader_f64;
        let mut features = wgpu::Features::empty();
        if f64 {
            features |= wgpu::Features::SHADER_F64;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("dotcompute"),
            required_features: features,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let requested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            futures::executor::block_on(adapter.request_device(&desc))
        }));
        let (device, queue) = match requested {
            Ok(Ok(dq)) => dq,
            Ok(Err(e)) => {
                return Err(DeviceError::Wgpu {
                    operation: "request_device",
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(DeviceError::Wgpu {
                    operation: "request_device",
                    message: "wgpu panicked while creating the device".into(),
                })
            }
        };
        let health = Arc::new(Health::default());
        {
            let h = health.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                tracing::warn!(error = %e, "wgpu error outside an error scope");
                h.uncaptured_count.fetch_add(1, Ordering::Relaxed);
                *h.uncaptured.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }));
            let h = health.clone();
            device.set_device_lost_callback(move |reason, message| {
                let text = match reason {
                    wgpu::DeviceLostReason::Destroyed => format!("destroyed: {message}"),
                    _ => message,
                };
                tracing::warn!(reason = %text, "wgpu device lost");
                *h.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
            });
        }
        let align = u64::from(info.limits.min_uniform_buffer_offset_alignment.max(16));
        Ok(WgpuBackend {
            device,
            queue,
            info: info.device.clone(),
            adapter: info,
            counters: Arc::new(BackendCounters::default()),
            health,
            staging: Mutex::new(Vec::new()),
            next_stream: AtomicU64::new(1),
            f64,
            uniform_align: align,
        })
    }

    /// The adapter's description.
    pub fn adapter_info(&self) -> &WgpuAdapterInfo {
        &self.adapter
    }

    /// Whether shaders on this backend may use `f64`.
    pub fn supports_f64(&self) -> bool {
        self.f64
    }

    /// The wgpu device, for interoperation.
    pub fn wgpu_device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue, for interoperation.
    pub fn wgpu_queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Errors wgpu reported outside any error scope so far (0 unless wgpu
    /// was used directly through [`wgpu_device`](Self::wgpu_device)).
    pub fn uncaptured_errors(&self) -> u64 {
        self.health.uncaptured_count.load(Ordering::Relaxed)
    }

    /// Destroys the device, as a driver reset would lose it: every later
    /// operation is a [`DeviceError::DeviceLost`]. For tests of that path.
    pub fn destroy_device(&self) {
        self.device.destroy();
        let _ = self.device.poll(wgpu::PollType::Poll);
        let mut lost = self.health.lost.lock().unwrap_or_else(|p| p.into_inner());
        if lost.is_none() {
            *lost = Some("destroyed".into());
        }
    }

    fn check_alive(&self) -> DeviceResult<()> {
        if let Some(reason) = self.health.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(DeviceError::DeviceLost {
                device: self.info.name.clone(),
                reason,
            });
        }
        Ok(())
    }

    /// Runs `f` inside out-of-memory, validation and internal error scopes;
    /// the first error caught is the result. `bytes` is what an
    /// out-of-memory error reports as requested.
    fn scoped<T>(&self, operation: &'static str, bytes: usize, f: impl FnOnce() -> T) -> DeviceResult<T> {
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let out = f();
        let errors = [
            futures::executor::block_on(internal.pop()),
            futures::executor::block_on(validation.pop()),
            futures::executor::block_on(oom.pop()),
        ];
        self.check_alive()?;
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(match e {
                wgpu::Error::OutOfMemory { .. } => DeviceError::OutOfMemory {
                    requested: bytes,
                    in_use: self.counters.live_bytes() as usize,
                    limit: usize::MAX,
                    context: format!("wgpu {operation} on {}", self.info.name),
                },
                other => DeviceError::Wgpu {
                    operation,
                    message: other.to_string(),
                },
            });
        }
        Ok(out)
    }

    fn submit(&self, encoder: wgpu::CommandEncoder) -> wgpu::SubmissionIndex {
        self.queue.submit(Some(encoder.finish()))
    }

    fn encoder(&self, label: &'static str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Waits for `index` (or everything submitted) to finish.
    fn wait(&self, operation: &'static str, index: Option<wgpu::SubmissionIndex>) -> DeviceResult<()> {
        let poll = match index {
            Some(i) => wgpu::PollType::Wait {
                submission_index: Some(i),
                timeout: None,
            },
            None => wgpu::PollType::wait_indefinitely(),
        };
        let r = self.device.poll(poll);
        self.check_alive()?;
        r.map(|_| ()).map_err(|e| DeviceError::Wgpu {
            operation,
            message: e.to_string(),
        })
    }

    fn take_staging(&self, bytes: u64) -> DeviceResult<wgpu::Buffer> {
        {
            let mut pool = self.staging.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = pool
                .iter()
                .enumerate()
                .filter(|(_, b)| b.size() >= bytes)
                .min_by_key(|(_, b)| b.size())
                .map(|(i, _)| i)
            {
                return Ok(pool.swap_remove(i));
            }
        }
        let size = bytes.next_power_of_two().max(256);
        self.scoped("staging buffer", size as usize, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("dotcompute staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    fn give_staging(&self, buffer: wgpu::Buffer) {
        let mut pool = self.staging.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 4 {
            pool.push(buffer);
        }
    }

    /// Reads `dst.len()` bytes (a multiple of 4) at `offset` (a multiple of
    /// 4) of `src` into `dst`; not counted.
    fn read_words(&self, src: &wgpu::Buffer, offset: u64, dst: &mut [u8]) -> DeviceResult<()> {
        let len = dst.len() as u64;
        let staging = self.take_staging(len)?;
        let index = self.scoped("copy to host", 0, || {
            let mut enc = self.encoder("dotcompute read");
            enc.copy_buffer_to_buffer(src, offset, &staging, 0, len);
            self.submit(enc)
        })?;
        self.map_and_copy(&staging, len, index, |view| dst.copy_from_slice(view))?;
        // Only a buffer that was mapped and unmapped cleanly goes back to the pool.
        self.give_staging(staging);
        Ok(())
    }

    /// Reads `dst.len()` bytes at any `offset` of `src` (widened to words).
    fn read_bytes(&self, src: &WgpuMemory, offset: usize, dst: &mut [u8]) -> DeviceResult<()> {
        if dst.is_empty() {
            return Ok(());
        }
        let start = offset & !3;
        let end = align4(offset + dst.len());
        if start == offset && end == offset + dst.len() {
            return self.read_words(&src.buffer, start as u64, dst);
        }
        let mut words = vec![0u8; end - start];
        self.read_words(&src.buffer, start as u64, &mut words)?;
        dst.copy_from_slice(&words[offset - start..offset - start + dst.len()]);
        Ok(())
    }

    /// Writes `src` at any `offset` of `dst` (widened to words, keeping the
    /// bytes around the range).
    fn write_bytes(&self, src: &[u8], dst: &WgpuMemory, offset: usize) -> DeviceResult<()> {
        if src.is_empty() {
            return Ok(());
        }
        let start = offset & !3;
        let end = align4(offset + src.len());
        if start == offset && end == offset + src.len() {
            return self.scoped("copy to device", 0, || {
                self.queue.write_buffer(&dst.buffer, offset as u64, src);
            });
        }
        let mut words = vec![0u8; end - start];
        self.read_words(&dst.buffer, start as u64, &mut words)?;
        words[offset - start..offset - start + src.len()].copy_from_slice(src);
        self.scoped("copy to device", 0, || {
            self.queue.write_buffer(&dst.buffer, start as u64, &words);
        })
    }

    fn pipeline(&self, kernel: &WgpuKernel, block: [u32; 3]) -> DeviceResult<wgpu::ComputePipeline> {
        let mut pipelines = kernel.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipelines.get(&block) {
            return Ok(p.clone());
        }
        let names = ["block_x", "block_y", "block_z"];
        let constants: Vec<(&str, f64)> = (0..3)
            .filter(|&d| kernel.reflection.block_overrides[d])
            .map(|d| (names[d], f64::from(block[d])))
            .collect();
        let pipeline = self.scoped("create compute pipeline", 0, || {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&kernel.entry),
                layout: Some(&kernel.pipeline_layout),
                module: &kernel.module,
                entry_point: Some(&kernel.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: true,
                },
                cache: None,
            })
        })?;
        pipelines.insert(block, pipeline.clone());
        Ok(pipeline)
    }

    fn arg_error(kernel: &WgpuKernel, index: usize, reason: String) -> DeviceError {
        DeviceError::KernelArgument {
            kernel: kernel.entry.clone(),
            index,
            reason,
        }
    }

    /// Checks `args` against the kernel's parameters; returns each buffer's
    /// binding size.
    fn check_args(&self, kernel: &WgpuKernel, args: &[KernelArg<'_, Self>]) -> DeviceResult<Vec<u64>> {
        let params = kernel.params();
        if args.len() != params.len() {
            return Err(Self::arg_error(
                kernel,
                args.len().min(params.len()),
                format!(
                    "the kernel declares {} binding(s) (@binding(0..{})), the launch passed {} argument(s)",
                    params.len(),
                    params.len(),
                    args.len()
                ),
            ));
        }
        let mut sizes = Vec::with_capacity(args.len());
        for (i, (a, p)) in args.iter().zip(params).enumerate() {
            let wrong = |what: &str| {
                Self::arg_error(
                    kernel,
                    i,
                    format!("{} passed for '{}', which takes {what}", a.describe(), p.name),
                )
            };
            let (memory, elem, len) = match (a, p.kind) {
                (KernelArg::Scalar(s), ParamKind::Uniform) => {
                    if !p.ty.accepts(s.type_name()) {
                        return Err(wrong(&format!("a {} scalar", p.ty)));
                    }
                    sizes.push(0);
                    continue;
                }
                (KernelArg::Scalar(_), _) => return Err(wrong("a buffer")),
                (_, ParamKind::Uniform) => return Err(wrong(&format!("a {} scalar", p.ty))),
                (KernelArg::Buffer { .. }, ParamKind::StorageReadWrite) => {
                    return Err(wrong("a writable buffer (var<storage, read_write>)"))
                }
                (KernelArg::Buffer { memory, elem, len }, _) => (&**memory, *elem, *len),
                (KernelArg::BufferMut { memory, elem, len }, _) => (&**memory, *elem, *len),
            };
            let type_ok = match p.ty {
                WgslType::Other => elem.size == p.elem_size as usize,
                t => t.accepts(elem.name.rsplit("::").next().unwrap_or(elem.name)),
            };
            if !type_ok {
                return Err(wrong(&format!("elements of {} ({} bytes)", p.ty, p.elem_size)));
            }
            let bytes = len.checked_mul(elem.size).ok_or_else(|| wrong("fewer elements"))?;
            check_range("launch argument", 0, bytes, memory.size)?;
            let binding = align4(bytes.max(4)) as u64;
            if binding > self.adapter.limits.max_storage_buffer_binding_size {
                return Err(Self::arg_error(
                    kernel,
                    i,
                    format!(
                        "{bytes} bytes exceed the adapter's largest storage binding ({} bytes)",
                        self.adapter.limits.max_storage_buffer_binding_size
                    ),
                ));
            }
            sizes.push(binding);
        }
        Ok(sizes)
    }

    fn scalar_bytes(s: &Scalar) -> Vec<u8> {
        match *s {
            Scalar::I32(v) => v.to_le_bytes().to_vec(),
            Scalar::U32(v) => v.to_le_bytes().to_vec(),
            Scalar::I64(v) => v.to_le_bytes().to_vec(),
            Scalar::U64(v) => v.to_le_bytes().to_vec(),
            Scalar::F32(v) => v.to_le_bytes().to_vec(),
            Scalar::F64(v) => v.to_le_bytes().to_vec(),
        }
    }

    /// Dispatches `kernel` and, in the same submission, copies the first
    /// `bytes` of each argument `reads` names (by index) into `staging`,
    /// one region after another at 4-byte-aligned offsets.
    fn launch_inner(
        &self,
        kernel: &WgpuKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        reads: &[(usize, usize)],
        staging: Option<&wgpu::Buffer>,
    ) -> DeviceResult<wgpu::SubmissionIndex> {
        self.check_alive()?;
        config.validate(&self.info)?;
        let block = [config.block.x, config.block.y, config.block.z];
        let wg = kernel.reflection.workgroup_size;
        for d in 0..3 {
            if !kernel.reflection.block_overrides[d] && block[d] != wg[d] {
                return Err(DeviceError::InvalidLaunch(format!(
                    "kernel '{}' has the fixed workgroup size ({}, {}, {}); the launch's block is {}",
                    kernel.entry, wg[0], wg[1], wg[2], config.block
                )));
            }
        }
        let sizes = self.check_args(kernel, args)?;
        let pipeline = self.pipeline(kernel, block)?;

        // The scalars, each in its own aligned slot of one uniform buffer.
        let scalars: Vec<(usize, Vec<u8>)> = args
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                KernelArg::Scalar(s) => Some((i, Self::scalar_bytes(s))),
                _ => None,
            })
            .collect();
        let align = self.uniform_align;
        let uniforms = if scalars.is_empty() {
            None
        } else {
            let size = align * scalars.len() as u64;
            let mut data = vec![0u8; size as usize];
            for (slot, (_, bytes)) in scalars.iter().enumerate() {
                let at = slot * align as usize;
                data[at..at + bytes.len()].copy_from_slice(bytes);
            }
            let buffer = self.scoped("uniform buffer", size as usize, || {
                let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("dotcompute scalars"),
                    size,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.queue.write_buffer(&b, 0, &data);
                b
            })?;
            Some(buffer)
        };

        self.scoped("launch", 0, || {
            let mut slot = 0u64;
            let entries: Vec<wgpu::BindGroupEntry<'_>> = args
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let resource = match a {
                        KernelArg::Buffer { memory, .. } => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &memory.buffer,
                            offset: 0,
                            size: NonZeroU64::new(sizes[i]),
                        }),
                        KernelArg::BufferMut { memory, .. } => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &memory.buffer,
                            offset: 0,
                            size: NonZeroU64::new(sizes[i]),
                        }),
                        KernelArg::Scalar(s) => {
                            let offset = slot * align;
                            slot += 1;
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: uniforms.as_ref()?,
                                offset,
                                size: NonZeroU64::new(s.size() as u64),
                            })
                        }
                    };
                    Some(wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource,
                    })
                })
                .collect();
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&kernel.entry),
                layout: &kernel.bind_layout,
                entries: &entries,
            });
            let mut enc = self.encoder("dotcompute launch");
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&kernel.entry),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(config.grid.x, config.grid.y, config.grid.z);
            }
            if let Some(staging) = staging {
                let mut at = 0u64;
                for &(i, bytes) in reads {
                    let memory = match args.get(i) {
                        Some(KernelArg::Buffer { memory, .. }) => &**memory,
                        Some(KernelArg::BufferMut { memory, .. }) => &**memory,
                        _ => continue,
                    };
                    let len = align4(bytes) as u64;
                    enc.copy_buffer_to_buffer(&memory.buffer, 0, staging, at, len);
                    at += len;
                }
            }
            self.submit(enc)
        })
    }

    /// Launches `kernel` and stages, in the same submission, the first
    /// `bytes` of the buffer arguments `reads` names (by argument index) for
    /// reading back; [`finish_staged`](Self::finish_staged) waits for that
    /// submission only and copies the bytes out. Work submitted after it
    /// (the next batch's upload and dispatch) can run while the host waits,
    /// which [`gpu::wgpu`](crate::gpu::wgpu) uses to overlap batches.
    pub(crate) fn launch_staged(
        &self,
        kernel: &WgpuKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        reads: &[(usize, usize)],
    ) -> DeviceResult<StagedRead> {
        let mut total = 0usize;
        let mut regions = Vec::with_capacity(reads.len());
        for &(i, bytes) in reads {
            let size = match args.get(i) {
                Some(KernelArg::Buffer { memory, .. }) => memory.size,
                Some(KernelArg::BufferMut { memory, .. }) => memory.size,
                _ => {
                    return Err(Self::arg_error(
                        kernel,
                        i,
                        "only buffer arguments can be read back".to_string(),
                    ))
                }
            };
            check_range("staged read", 0, bytes, size)?;
            regions.push((total, bytes));
            total += align4(bytes);
        }
        let staging = self.take_staging(total.max(4) as u64)?;
        let index = match self.launch_inner(kernel, config, args, reads, Some(&staging)) {
            Ok(i) => i,
            Err(e) => {
                self.give_staging(staging);
                return Err(e);
            }
        };
        self.counters.launch();
        Ok(StagedRead {
            staging,
            regions,
            index,
        })
    }

    /// Waits for `staged`'s submission and copies region `k` into `outs[k]`
    /// (each exactly the region's length); counts one transfer per region.
    pub(crate) fn finish_staged(&self, staged: StagedRead, outs: &mut [&mut [u8]]) -> DeviceResult<()> {
        let StagedRead {
            staging,
            regions,
            index,
        } = staged;
        let total: u64 = regions
            .iter()
            .map(|(at, len)| (*at + align4(*len)) as u64)
            .max()
            .unwrap_or(4);
        self.map_and_copy(&staging, total, index, |view| {
            for ((at, len), out) in regions.iter().zip(outs.iter_mut()) {
                if out.len() == *len {
                    out.copy_from_slice(&view[*at..*at + *len]);
                }
            }
        })?;
        // Only a buffer that was mapped and unmapped cleanly goes back to the pool.
        self.give_staging(staging);
        for (_, len) in &regions {
            self.counters.dtoh(*len);
        }
        Ok(())
    }

    /// Maps the first `len` bytes of `staging` once submission `index` is
    /// done, hands them to `f`, and unmaps.
    fn map_and_copy(
        &self,
        staging: &wgpu::Buffer,
        len: u64,
        index: wgpu::SubmissionIndex,
        f: impl FnOnce(&[u8]),
    ) -> DeviceResult<()> {
        let result: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::new(Mutex::new(None));
        let slot = result.clone();
        staging.slice(..len).map_async(wgpu::MapMode::Read, move |r| {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        self.wait("copy to host", Some(index))?;
        if result.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            // The wait returned before the callback ran: poll until it has.
            self.wait("copy to host", None)?;
        }
        let mapped = result.lock().unwrap_or_else(|p| p.into_inner()).take();
        match mapped {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(DeviceError::Wgpu {
                    operation: "map staging buffer",
                    message: e.to_string(),
                })
            }
            None => {
                return Err(DeviceError::Wgpu {
                    operation: "map staging buffer",
                    message: "the mapping did not complete".into(),
                })
            }
        }
        let copied = match staging.slice(..len).get_mapped_range() {
            Ok(view) => {
                f(&view);
                Ok(())
            }
            Err(e) => Err(DeviceError::Wgpu {
                operation: "map staging buffer",
                message: e.to_string(),
            }),
        };
        staging.unmap();
        copied
    }
}

/// A launch whose results are on their way to a host-readable buffer; see
/// [`WgpuBackend::launch_staged`].
#[derive(Debug)]
pub(crate) struct StagedRead {
    staging: wgpu::Buffer,
    regions: Vec<(usize, usize)>,
    index: wgpu::SubmissionIndex,
}

impl Backend for WgpuBackend {
    type Memory = WgpuMemory;
    type HostMemory = WgpuHostMemory;
    type Source = WgslSource;
    type Kernel = WgpuKernel;
    type Stream = WgpuStream;

    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn stats(&self) -> BackendStats {
        self.counters.snapshot()
    }

    fn alloc(&self, bytes: usize) -> DeviceResult<WgpuMemory> {
        let size = align4(bytes.max(4)) as u64;
        let limit = self.adapter.limits.max_buffer_size;
        if size > limit {
            return Err(DeviceError::OutOfMemory {
                requested: bytes,
                in_use: self.counters.live_bytes() as usize,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
                context: format!("the largest buffer {} allows (max_buffer_size)", self.info.name),
            });
        }
        let buffer = self.scoped("alloc", bytes, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("dotcompute"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        self.counters.alloc(bytes);
        Ok(WgpuMemory {
            buffer,
            size: bytes,
            counters: self.counters.clone(),
        })
    }

    fn memory_size(memory: &WgpuMemory) -> usize {
        memory.size
    }

    fn alloc_host(&self, bytes: usize) -> DeviceResult<WgpuHostMemory> {
        let mut v = Vec::new();
        v.try_reserve_exact(bytes).map_err(|_| DeviceError::OutOfMemory {
            requested: bytes,
            in_use: 0,
            limit: usize::MAX,
            context: "host staging memory".into(),
        })?;
        v.resize(bytes, 0);
        Ok(WgpuHostMemory {
            bytes: v.into_boxed_slice(),
        })
    }

    fn host_bytes(memory: &WgpuHostMemory) -> DeviceResult<&[u8]> {
        Ok(&memory.bytes)
    }

    fn host_bytes_mut(memory: &mut WgpuHostMemory) -> DeviceResult<&mut [u8]> {
        Ok(&mut memory.bytes)
    }

    fn default_stream(&self) -> WgpuStream {
        WgpuStream { id: 0 }
    }

    fn create_stream(&self) -> DeviceResult<WgpuStream> {
        Ok(WgpuStream {
            id: self.next_stream.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn copy_htod(&self, src: &[u8], dst: &mut WgpuMemory, dst_offset: usize, _: &WgpuStream) -> DeviceResult<()> {
        check_range("copy_htod", dst_offset, src.len(), dst.size)?;
        self.write_bytes(src, dst, dst_offset)?;
        self.counters.htod(src.len());
        Ok(())
    }

    fn copy_dtoh(&self, src: &WgpuMemory, src_offset: usize, dst: &mut [u8], _: &WgpuStream) -> DeviceResult<()> {
        check_range("copy_dtoh", src_offset, dst.len(), src.size)?;
        self.read_bytes(src, src_offset, dst)?;
        self.counters.dtoh(dst.len());
        Ok(())
    }

    fn copy_dtod(
        &self,
        src: &WgpuMemory,
        src_offset: usize,
        dst: &mut WgpuMemory,
        dst_offset: usize,
        bytes: usize,
        _: &WgpuStream,
    ) -> DeviceResult<()> {
        check_range("copy_dtod source", src_offset, bytes, src.size)?;
        check_range("copy_dtod destination", dst_offset, bytes, dst.size)?;
        if bytes > 0 {
            if src_offset.is_multiple_of(4) && dst_offset.is_multiple_of(4) && bytes.is_multiple_of(4) {
                self.scoped("copy_dtod", 0, || {
                    let mut enc = self.encoder("dotcompute copy");
                    enc.copy_buffer_to_buffer(
                        &src.buffer,
                        src_offset as u64,
                        &dst.buffer,
                        dst_offset as u64,
                        bytes as u64,
                    );
                    self.submit(enc)
                })?;
            } else {
                // wgpu copies whole words only: go through the host.
                let mut tmp = vec![0u8; bytes];
                self.read_bytes(src, src_offset, &mut tmp)?;
                self.write_bytes(&tmp, dst, dst_offset)?;
            }
        }
        self.counters.dtod(bytes);
        Ok(())
    }

    fn fill_zero(&self, memory: &mut WgpuMemory, _: &WgpuStream) -> DeviceResult<()> {
        self.scoped("fill_zero", 0, || {
            let mut enc = self.encoder("dotcompute clear");
            enc.clear_buffer(&memory.buffer, 0, None);
            self.submit(enc)
        })?;
        Ok(())
    }

    fn compile(&self, source: WgslSource) -> DeviceResult<WgpuKernel> {
        self.check_alive()?;
        if source.entry.is_empty() {
            return Err(DeviceError::invalid(
                "kernel entry",
                "\"\"",
                "a kernel needs an entry point",
            ));
        }
        let (text, f32_variant) = match (&source.f32_fallback, self.f64) {
            (Some(fallback), false) => (fallback.clone(), true),
            _ => (source.source.clone(), false),
        };
        let (_, reflection) = shader::reflect(&source.name, &text, &source.entry, self.f64)?;
        let module = self.scoped("create shader module", 0, || {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&source.name),
                source: wgpu::ShaderSource::Wgsl(text.clone()),
            })
        })?;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = reflection
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match p.kind {
                        ParamKind::StorageRead => wgpu::BufferBindingType::Storage { read_only: true },
                        ParamKind::StorageReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                        ParamKind::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let (bind_layout, pipeline_layout) = self.scoped("create pipeline layout", 0, || {
            let bind = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&source.name),
                entries: &entries,
            });
            let layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&source.name),
                bind_group_layouts: &[Some(&bind)],
                immediate_size: 0,
            });
            (bind, layout)
        })?;
        let kernel = WgpuKernel {
            name: source.name,
            entry: source.entry,
            module,
            reflection,
            bind_layout,
            pipeline_layout,
            pipelines: Mutex::new(HashMap::new()),
            f32_variant,
        };
        // A fixed workgroup size has one pipeline: build it now, so a shader
        // the driver refuses fails here rather than at its first launch.
        if kernel.reflection.block_overrides == [false; 3] {
            self.pipeline(&kernel, kernel.reflection.workgroup_size)?;
        }
        Ok(kernel)
    }

    fn kernel_name(kernel: &WgpuKernel) -> &str {
        &kernel.entry
    }

    fn launch(
        &self,
        kernel: &WgpuKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        _: &WgpuStream,
    ) -> DeviceResult<()> {
        self.launch_inner(kernel, config, args, &[], None)?;
        self.counters.launch();
        Ok(())
    }

    fn synchronize(&self, _: &WgpuStream) -> DeviceResult<()> {
        self.wait("synchronize", None)
    }
}
