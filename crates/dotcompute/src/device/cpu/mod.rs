//! The CPU backend: "device" memory is a separate host allocation, kernels
//! are Rust closures with grid/block semantics run in parallel with rayon.
//!
//! Invariants: device memory is never the caller's host memory, so every
//! host↔device transfer is a real copy, counted in [`BackendStats`]; work runs
//! to completion inside the call that queues it (streams only name an
//! order), so [`Backend::synchronize`] has nothing left to wait for; a kernel
//! that panics or stores out of bounds fails its launch with
//! [`DeviceError::KernelFault`] and never unwinds into the caller; an
//! allocation past the backend's memory limit is [`DeviceError::OutOfMemory`].
//!
//! ```
//! use std::sync::Arc;
//! use dotcompute::device::{Backend, CpuBackend, DeviceBuffer, LaunchConfig};
//! use dotcompute::device::cpu::{CpuKernel, ThreadIdx};
//!
//! let cpu = Arc::new(CpuBackend::new());
//! let add = cpu.compile(CpuKernel::per_thread("add", |args| {
//!     let (a, b, c) = (args.input::<f32>(0)?, args.input::<f32>(1)?, args.output::<f32>(2)?);
//!     Ok(Box::new(move |t: &ThreadIdx| {
//!         let i = t.global_x();
//!         if i < c.len() { c.store(i, a[i] + b[i]); }
//!     }))
//! })).unwrap();
//! let a = DeviceBuffer::from_slice(&cpu, &[1.0f32, 2.0, 3.0]).unwrap();
//! let b = DeviceBuffer::from_slice(&cpu, &[10.0f32, 20.0, 30.0]).unwrap();
//! let mut c = DeviceBuffer::<f32, _>::zeroed(&cpu, 3).unwrap();
//! let cfg = LaunchConfig::linear(3, 128).unwrap();
//! cpu.launch(&add, &cfg, &mut [a.arg(), b.arg(), c.arg_mut()], &cpu.default_stream()).unwrap();
//! assert_eq!(c.to_vec().unwrap(), vec![11.0, 22.0, 33.0]);
//! ```

mod atomic;
pub mod kernel;
mod memory;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use kernel::{BlockCtx, BlockFn, CpuArgs, CpuKernel, OutputView, ThreadFn, ThreadIdx};
pub use memory::CpuMemory;

use super::accelerator::{cpu_info, DeviceInfo};
use super::backend::{Backend, BackendCounters, BackendKind, BackendStats, KernelArg, LaunchConfig};
use super::error::{check_range, DeviceError, DeviceResult};

/// An ordering token for CPU work (work runs inside the queuing call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuStream {
    id: u64,
}

impl CpuStream {
    /// The stream's id (0 is the default stream).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The CPU backend. See the [module docs](self).
#[derive(Debug)]
pub struct CpuBackend {
    info: DeviceInfo,
    counters: Arc<BackendCounters>,
    memory_limit: usize,
    next_stream: AtomicU64,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A CPU backend with no memory limit beyond the host allocator's.
    pub fn new() -> Self {
        Self::with_info(cpu_info())
    }

    pub(crate) fn with_info(info: DeviceInfo) -> Self {
        CpuBackend {
            info,
            counters: Arc::new(BackendCounters::default()),
            memory_limit: usize::MAX,
            next_stream: AtomicU64::new(1),
        }
    }

    /// A CPU backend that refuses allocations once `bytes` are live, as a
    /// device with `bytes` of memory would.
    pub fn with_memory_limit(bytes: usize) -> Self {
        let mut b = Self::new();
        b.memory_limit = bytes;
        b.info.total_memory = bytes as u64;
        b
    }

    /// The memory limit in bytes (`usize::MAX` if none).
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

impl Backend for CpuBackend {
    type Memory = CpuMemory;
    type HostMemory = CpuMemory;
    type Source = CpuKernel;
    type Kernel = CpuKernel;
    type Stream = CpuStream;

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn stats(&self) -> BackendStats {
        self.counters.snapshot()
    }

    fn alloc(&self, bytes: usize) -> DeviceResult<CpuMemory> {
        let in_use = self.counters.live_bytes() as usize;
        if in_use.saturating_add(bytes) > self.memory_limit {
            return Err(DeviceError::OutOfMemory {
                requested: bytes,
                in_use,
                limit: self.memory_limit,
                context: "cpu backend memory limit".into(),
            });
        }
        let mem = CpuMemory::new(bytes, Some(self.counters.clone()))?;
        self.counters.alloc(bytes);
        Ok(mem)
    }

    fn memory_size(memory: &CpuMemory) -> usize {
        memory.len()
    }

    fn alloc_host(&self, bytes: usize) -> DeviceResult<CpuMemory> {
        CpuMemory::new(bytes, None)
    }

    fn host_bytes(memory: &CpuMemory) -> DeviceResult<&[u8]> {
        Ok(memory.as_bytes())
    }

    fn host_bytes_mut(memory: &mut CpuMemory) -> DeviceResult<&mut [u8]> {
        Ok(memory.as_bytes_mut())
    }

    fn default_stream(&self) -> CpuStream {
        CpuStream { id: 0 }
    }

    fn create_stream(&self) -> DeviceResult<CpuStream> {
        Ok(CpuStream {
            id: self.next_stream.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn copy_htod(&self, src: &[u8], dst: &mut CpuMemory, dst_offset: usize, _: &CpuStream) -> DeviceResult<()> {
        check_range("copy_htod", dst_offset, src.len(), dst.len())?;
        dst.as_bytes_mut()[dst_offset..dst_offset + src.len()].copy_from_slice(src);
        self.counters.htod(src.len());
        Ok(())
    }

    fn copy_dtoh(&self, src: &CpuMemory, src_offset: usize, dst: &mut [u8], _: &CpuStream) -> DeviceResult<()> {
        check_range("copy_dtoh", src_offset, dst.len(), src.len())?;
        dst.copy_from_slice(&src.as_bytes()[src_offset..src_offset + dst.len()]);
        self.counters.dtoh(dst.len());
        Ok(())
    }

    fn copy_dtod(
        &self,
        src: &CpuMemory,
        src_offset: usize,
        dst: &mut CpuMemory,
        dst_offset: usize,
        bytes: usize,
        _: &CpuStream,
    ) -> DeviceResult<()> {
        check_range("copy_dtod source", src_offset, bytes, src.len())?;
        check_range("copy_dtod destination", dst_offset, bytes, dst.len())?;
        dst.as_bytes_mut()[dst_offset..dst_offset + bytes]
            .copy_from_slice(&src.as_bytes()[src_offset..src_offset + bytes]);
        self.counters.dtod(bytes);
        Ok(())
    }

    fn fill_zero(&self, memory: &mut CpuMemory, _: &CpuStream) -> DeviceResult<()> {
        memory.as_bytes_mut().fill(0);
        Ok(())
    }

    fn compile(&self, source: CpuKernel) -> DeviceResult<CpuKernel> {
        if source.name().is_empty() {
            return Err(DeviceError::invalid("kernel name", "\"\"", "a kernel needs a name"));
        }
        Ok(source)
    }

    fn kernel_name(kernel: &CpuKernel) -> &str {
        kernel.name()
    }

    fn launch(
        &self,
        kernel: &CpuKernel,
        config: &LaunchConfig,
        args: &mut [KernelArg<'_, Self>],
        _: &CpuStream,
    ) -> DeviceResult<()> {
        config.validate(&self.info)?;
        let fault = kernel::Fault::default();
        let shared = config.shared_mem_bytes as usize;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            kernel::execute(kernel, config.grid, config.block, shared, args, &fault)
        }));
        self.counters.launch();
        match outcome {
            Err(payload) => Err(DeviceError::KernelFault {
                kernel: kernel.name().to_string(),
                reason: panic_message(payload),
            }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => match fault.take() {
                Some(reason) => Err(DeviceError::KernelFault {
                    kernel: kernel.name().to_string(),
                    reason,
                }),
                None => Ok(()),
            },
        }
    }

    fn synchronize(&self, _: &CpuStream) -> DeviceResult<()> {
        Ok(())
    }
}
