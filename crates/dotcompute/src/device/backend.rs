//! The [`Backend`] trait: what every compute device offers (allocation,
//! transfers, kernel compilation and launch, synchronization), plus the
//! launch geometry ([`LaunchConfig`], [`Dim3`]) and kernel arguments
//! ([`KernelArg`], [`Scalar`]).
//!
//! Invariants:
//! - Raw device memory is an associated type owned by value; dropping it frees
//!   it, so every allocation has exactly one owner. Typed, RAII access goes
//!   through [`DeviceBuffer`](super::DeviceBuffer).
//! - Every byte range handed to a backend is checked against the allocation
//!   before the backend touches memory, so a bad range is an error, not a
//!   fault; every launch is checked against the device's limits.
//! - Kernel arguments borrow their buffers for the duration of the launch:
//!   read-only arguments share, writable ones are exclusive, so one buffer can
//!   never be both read and written through two arguments of one launch.
//!
//! The trait is generic over the backend's memory, kernel, source and stream
//! types so that a backend with very different handles (the CPU's byte
//! arrays, CUDA's device pointers, a future wgpu backend's `wgpu::Buffer`,
//! compute pipeline and queue) fits it without change.

use std::any::TypeId;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use serde::Serialize;

use super::accelerator::DeviceInfo;
use super::error::{DeviceError, DeviceResult};

/// Which kind of backend a device is driven by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Host CPU threads (rayon).
    Cpu,
    /// An NVIDIA GPU through the CUDA driver API.
    Cuda,
    /// A GPU (or a software rasteriser such as lavapipe) through wgpu:
    /// Vulkan, Metal, DX12 or GL.
    Wgpu,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Wgpu => "wgpu",
        })
    }
}

/// Three launch dimensions, as CUDA's `dim3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Dim3 {
    /// Extent along x.
    pub x: u32,
    /// Extent along y.
    pub y: u32,
    /// Extent along z.
    pub z: u32,
}

impl Dim3 {
    /// A one-dimensional extent `(x, 1, 1)`.
    pub const fn x(x: u32) -> Self {
        Dim3 { x, y: 1, z: 1 }
    }

    /// A two-dimensional extent `(x, y, 1)`.
    pub const fn xy(x: u32, y: u32) -> Self {
        Dim3 { x, y, z: 1 }
    }

    /// A three-dimensional extent.
    pub const fn xyz(x: u32, y: u32, z: u32) -> Self {
        Dim3 { x, y, z }
    }

    /// `x * y * z`, without overflow.
    pub fn volume(&self) -> u64 {
        u64::from(self.x) * u64::from(self.y) * u64::from(self.z)
    }
}

impl From<u32> for Dim3 {
    fn from(x: u32) -> Self {
        Dim3::x(x)
    }
}

impl From<(u32, u32)> for Dim3 {
    fn from((x, y): (u32, u32)) -> Self {
        Dim3::xy(x, y)
    }
}

impl From<(u32, u32, u32)> for Dim3 {
    fn from((x, y, z): (u32, u32, u32)) -> Self {
        Dim3::xyz(x, y, z)
    }
}

impl fmt::Display for Dim3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}, {})", self.x, self.y, self.z)
    }
}

/// Grid, block and dynamic shared memory of one launch.
///
/// ```
/// use dotcompute::device::{Dim3, LaunchConfig};
/// let cfg = LaunchConfig::linear(1000, 256).unwrap();
/// assert_eq!(cfg.grid, Dim3::x(4));
/// assert_eq!(cfg.block, Dim3::x(256));
/// assert_eq!(cfg.total_threads(), 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LaunchConfig {
    /// Number of blocks in each dimension.
    pub grid: Dim3,
    /// Number of threads per block in each dimension.
    pub block: Dim3,
    /// Dynamic shared memory per block, in bytes.
    pub shared_mem_bytes: u32,
}

impl LaunchConfig {
    /// A launch of `grid` blocks of `block` threads and no shared memory.
    pub fn new(grid: impl Into<Dim3>, block: impl Into<Dim3>) -> Self {
        LaunchConfig {
            grid: grid.into(),
            block: block.into(),
            shared_mem_bytes: 0,
        }
    }

    /// The one-dimensional launch covering `n` threads with blocks of `block`
    /// threads (`ceil(n / block)` blocks; at least one).
    pub fn linear(n: usize, block: u32) -> DeviceResult<Self> {
        if block == 0 {
            return Err(DeviceError::InvalidLaunch("block size must be at least 1".into()));
        }
        let blocks = n.div_ceil(block as usize).max(1);
        let blocks = u32::try_from(blocks)
            .map_err(|_| DeviceError::InvalidLaunch(format!("{n} threads need more than u32::MAX blocks")))?;
        Ok(LaunchConfig::new(blocks, block))
    }

    /// The same launch with `bytes` of dynamic shared memory per block.
    pub fn with_shared_mem(mut self, bytes: u32) -> Self {
        self.shared_mem_bytes = bytes;
        self
    }

    /// Threads per block.
    pub fn threads_per_block(&self) -> u64 {
        self.block.volume()
    }

    /// Threads in the whole grid.
    pub fn total_threads(&self) -> u64 {
        self.grid.volume() * self.block.volume()
    }

    /// Checks the launch against a device's limits.
    pub fn validate(&self, device: &DeviceInfo) -> DeviceResult<()> {
        let err = |m: String| Err(DeviceError::InvalidLaunch(m));
        if self.grid.volume() == 0 || self.block.volume() == 0 {
            return err(format!("grid {} and block {} must be non-empty", self.grid, self.block));
        }
        if self.threads_per_block() > u64::from(device.max_threads_per_block) {
            return err(format!(
                "{} threads per block exceeds the device limit of {}",
                self.threads_per_block(),
                device.max_threads_per_block
            ));
        }
        let b = device.max_block_dims;
        if self.block.x > b[0] || self.block.y > b[1] || self.block.z > b[2] {
            return err(format!(
                "block {} exceeds the device limit ({}, {}, {})",
                self.block, b[0], b[1], b[2]
            ));
        }
        let g = device.max_grid_dims;
        if self.grid.x > g[0] || self.grid.y > g[1] || self.grid.z > g[2] {
            return err(format!(
                "grid {} exceeds the device limit ({}, {}, {})",
                self.grid, g[0], g[1], g[2]
            ));
        }
        if u64::from(self.shared_mem_bytes) > device.shared_mem_per_block {
            return err(format!(
                "{} bytes of shared memory per block exceeds the device limit of {}",
                self.shared_mem_bytes, device.shared_mem_per_block
            ));
        }
        Ok(())
    }
}

/// The element type of a buffer argument, so a backend can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElemType {
    pub(crate) id: TypeId,
    /// The type's name.
    pub name: &'static str,
    /// The type's size in bytes.
    pub size: usize,
}

impl ElemType {
    /// The descriptor of `T`.
    pub fn of<T: Pod>() -> Self {
        ElemType {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
            size: std::mem::size_of::<T>(),
        }
    }

    /// Whether this is `T`.
    pub fn is<T: Pod>(&self) -> bool {
        self.id == TypeId::of::<T>()
    }
}

/// A scalar kernel argument, passed by value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Scalar {
    /// `int`
    I32(i32),
    /// `unsigned int`
    U32(u32),
    /// `long long`
    I64(i64),
    /// `unsigned long long` (also `size_t` on 64-bit targets)
    U64(u64),
    /// `float`
    F32(f32),
    /// `double`
    F64(f64),
}

impl Scalar {
    /// Size of the value in bytes.
    pub fn size(&self) -> usize {
        match self {
            Scalar::I32(_) | Scalar::U32(_) | Scalar::F32(_) => 4,
            Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_) => 8,
        }
    }

    /// The type's name as a kernel would declare it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::I32(_) => "i32",
            Scalar::U32(_) => "u32",
            Scalar::I64(_) => "i64",
            Scalar::U64(_) => "u64",
            Scalar::F32(_) => "f32",
            Scalar::F64(_) => "f64",
        }
    }
}

macro_rules! scalar_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Scalar {
            fn from(x: $t) -> Self { Scalar::$v(x) }
        }
        impl ScalarType for $t {
            fn from_scalar(s: &Scalar) -> Option<Self> {
                match *s { Scalar::$v(x) => Some(x), _ => None }
            }
            const NAME: &'static str = stringify!($t);
        }
    )*};
}

/// A Rust type that can be a [`Scalar`] kernel argument.
pub trait ScalarType: Copy + Into<Scalar> {
    /// Extracts the value if `s` holds this type.
    fn from_scalar(s: &Scalar) -> Option<Self>;
    /// The type's name.
    const NAME: &'static str;
}

scalar_from!(i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64);

/// One argument of a kernel launch.
///
/// Build buffer arguments with [`DeviceBuffer::arg`](super::DeviceBuffer::arg)
/// (read-only) and [`DeviceBuffer::arg_mut`](super::DeviceBuffer::arg_mut)
/// (writable), scalars with [`KernelArg::scalar`].
pub enum KernelArg<'a, B: Backend> {
    /// A buffer the kernel reads.
    Buffer {
        /// The memory.
        memory: &'a B::Memory,
        /// Element type.
        elem: ElemType,
        /// Number of elements the kernel may access.
        len: usize,
    },
    /// A buffer the kernel may write.
    BufferMut {
        /// The memory.
        memory: &'a mut B::Memory,
        /// Element type.
        elem: ElemType,
        /// Number of elements the kernel may access.
        len: usize,
    },
    /// A value passed by copy.
    Scalar(Scalar),
}

impl<'a, B: Backend> KernelArg<'a, B> {
    /// A scalar argument.
    pub fn scalar(value: impl Into<Scalar>) -> Self {
        KernelArg::Scalar(value.into())
    }

    /// A short description, for error messages.
    pub fn describe(&self) -> String {
        match self {
            KernelArg::Buffer { elem, len, .. } => format!("read-only buffer of {len} {}", elem.name),
            KernelArg::BufferMut { elem, len, .. } => format!("writable buffer of {len} {}", elem.name),
            KernelArg::Scalar(s) => format!("scalar {}", s.type_name()),
        }
    }
}

impl<B: Backend> fmt::Debug for KernelArg<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Counters a backend keeps: allocations and transfers.
#[derive(Debug, Default)]
pub struct BackendCounters {
    allocations: AtomicU64,
    frees: AtomicU64,
    bytes_allocated: AtomicU64,
    live_bytes: AtomicU64,
    htod_count: AtomicU64,
    htod_bytes: AtomicU64,
    dtoh_count: AtomicU64,
    dtoh_bytes: AtomicU64,
    dtod_count: AtomicU64,
    dtod_bytes: AtomicU64,
    launches: AtomicU64,
}

/// A snapshot of [`BackendCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackendStats {
    /// Device allocations made.
    pub allocations: u64,
    /// Device allocations freed.
    pub frees: u64,
    /// Bytes allocated in total.
    pub bytes_allocated: u64,
    /// Bytes allocated and not yet freed.
    pub live_bytes: u64,
    /// Host-to-device copies.
    pub htod_count: u64,
    /// Host-to-device bytes.
    pub htod_bytes: u64,
    /// Device-to-host copies.
    pub dtoh_count: u64,
    /// Device-to-host bytes.
    pub dtoh_bytes: u64,
    /// Device-to-device copies.
    pub dtod_count: u64,
    /// Device-to-device bytes.
    pub dtod_bytes: u64,
    /// Kernel launches.
    pub launches: u64,
}

impl BackendCounters {
    pub(crate) fn alloc(&self, bytes: usize) {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        self.bytes_allocated.fetch_add(bytes as u64, Ordering::Relaxed);
        self.live_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn free(&self, bytes: usize) {
        self.frees.fetch_add(1, Ordering::Relaxed);
        self.live_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
    pub(crate) fn htod(&self, bytes: usize) {
        self.htod_count.fetch_add(1, Ordering::Relaxed);
        self.htod_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn dtoh(&self, bytes: usize) {
        self.dtoh_count.fetch_add(1, Ordering::Relaxed);
        self.dtoh_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn dtod(&self, bytes: usize) {
        self.dtod_count.fetch_add(1, Ordering::Relaxed);
        self.dtod_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn launch(&self) {
        self.launches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> BackendStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BackendStats {
            allocations: l(&self.allocations),
            frees: l(&self.frees),
            bytes_allocated: l(&self.bytes_allocated),
            live_bytes: l(&self.live_bytes),
            htod_count: l(&self.htod_count),
            htod_bytes: l(&self.htod_bytes),
            dtoh_count: l(&self.dtoh_count),
            dtoh_bytes: l(&self.dtoh_bytes),
            dtod_count: l(&self.dtod_count),
            dtod_bytes: l(&self.dtod_bytes),
            launches: l(&self.launches),
        }
    }
}

/// A compute device's operations.
///
/// All transfers are stream-ordered and, in this version, complete before the
/// call returns (the host slice is free to reuse immediately); launches are
/// asynchronous where the device is (CUDA) and complete after
/// [`synchronize`](Backend::synchronize). Implementations check every range
/// and launch before touching memory.
pub trait Backend: Send + Sync + Sized + 'static {
    /// One device allocation; dropping it frees it.
    type Memory: Send + Sync + 'static;
    /// Host staging memory (page-locked where the device supports it).
    type HostMemory: Send + Sync + 'static;
    /// What [`compile`](Backend::compile) takes: a Rust closure for the CPU,
    /// CUDA C or PTX for CUDA.
    type Source;
    /// A compiled kernel, ready to launch.
    type Kernel: Send + Sync + 'static;
    /// An ordered queue of device work.
    type Stream: Clone + Send + Sync + 'static;

    /// The backend's kind.
    fn kind(&self) -> BackendKind;
    /// The device this backend drives.
    fn device(&self) -> &DeviceInfo;
    /// Allocation and transfer counters.
    fn stats(&self) -> BackendStats;

    /// Allocates `bytes` of device memory. The contents are unspecified
    /// (initialized as far as the host can tell, but not necessarily zero).
    fn alloc(&self, bytes: usize) -> DeviceResult<Self::Memory>;
    /// The size of an allocation in bytes.
    fn memory_size(memory: &Self::Memory) -> usize;
    /// Allocates `bytes` of host staging memory.
    fn alloc_host(&self, bytes: usize) -> DeviceResult<Self::HostMemory>;
    /// The host memory's bytes.
    fn host_bytes(memory: &Self::HostMemory) -> DeviceResult<&[u8]>;
    /// The host memory's bytes, writable.
    fn host_bytes_mut(memory: &mut Self::HostMemory) -> DeviceResult<&mut [u8]>;

    /// The stream work goes to unless another is named.
    fn default_stream(&self) -> Self::Stream;
    /// A new stream.
    fn create_stream(&self) -> DeviceResult<Self::Stream>;

    /// Copies `src` into `dst` at byte `dst_offset`.
    fn copy_htod(
        &self,
        src: &[u8],
        dst: &mut Self::Memory,
        dst_offset: usize,
        stream: &Self::Stream,
    ) -> DeviceResult<()>;
    /// Copies `dst.len()` bytes from `src` at byte `src_offset` into `dst`.
    fn copy_dtoh(
        &self,
        src: &Self::Memory,
        src_offset: usize,
        dst: &mut [u8],
        stream: &Self::Stream,
    ) -> DeviceResult<()>;
    /// Copies `bytes` from `src` at `src_offset` to `dst` at `dst_offset`.
    #[allow(clippy::too_many_arguments)]
    fn copy_dtod(
        &self,
        src: &Self::Memory,
        src_offset: usize,
        dst: &mut Self::Memory,
        dst_offset: usize,
        bytes: usize,
        stream: &Self::Stream,
    ) -> DeviceResult<()>;
    /// Sets every byte of `memory` to zero.
    fn fill_zero(&self, memory: &mut Self::Memory, stream: &Self::Stream) -> DeviceResult<()>;

    /// Compiles (or loads) a kernel.
    fn compile(&self, source: Self::Source) -> DeviceResult<Self::Kernel>;
    /// The kernel's entry-point name.
    fn kernel_name(kernel: &Self::Kernel) -> &str;
    /// Launches `kernel` on `stream`.
    fn launch(
        &self,
        kernel: &Self::Kernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        stream: &Self::Stream,
    ) -> DeviceResult<()>;
    /// Launches `kernel`, waits for it, and returns how long it ran. The
    /// default measures on the host around launch and synchronize; a device
    /// with timers (CUDA events) measures on the device.
    fn launch_timed(
        &self,
        kernel: &Self::Kernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        stream: &Self::Stream,
    ) -> DeviceResult<Duration> {
        let start = Instant::now();
        self.launch(kernel, config, args, stream)?;
        self.synchronize(stream)?;
        Ok(start.elapsed())
    }
    /// Waits until all work queued on `stream` has finished.
    fn synchronize(&self, stream: &Self::Stream) -> DeviceResult<()>;
}
