//! Every kind of CUDA memory this crate allocates, each with one owner type
//! that frees it exactly once: the CUDA backend's device and staging memory,
//! page-locked host regions mapped into the device (GPU ring kernels, the
//! launch-per-message baseline), and device memory allocated in stream order
//! (ring-kernel state, grid workspaces, link rings, baseline buffers).
//!
//! Invariants:
//! - each allocation is owned by exactly one value of the types below and is
//!   returned by its `Drop`, or deliberately leaked (`mem::forget` of its
//!   owner) when a kernel that may still run can touch it; a constructor that fails part
//!   way frees what it had already allocated;
//! - memory is zeroed before any reference to it is handed out;
//! - page-locked memory goes back to the driver only while no ring kernel of
//!   this process runs (a running-kernel count): `cuMemFreeHost` may
//!   synchronise the device, which would wait forever for a persistent
//!   kernel; meanwhile released regions are cached and reused;
//! - stream-ordered memory is freed on the stream that allocated it, so a
//!   free never waits for kernels on other streams.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{result, sys, CudaContext, CudaSlice, CudaStream};

use super::driver::DriverFailure;
use crate::device::backend::BackendCounters;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Device memory of a [`CudaBackend`](super::CudaBackend).
#[derive(Debug)]
pub struct CudaMemory {
    pub(super) slice: CudaSlice<u8>,
    pub(super) counters: Arc<BackendCounters>,
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

/// Page-locked host memory of a [`CudaBackend`](super::CudaBackend) (zeroed
/// when allocated), from the same cache as the ring kernels' regions.
#[derive(Debug)]
pub struct CudaHostMemory {
    region: PinnedRegion,
    len: usize,
}

impl CudaHostMemory {
    pub(super) fn new(ctx: &Arc<CudaContext>, len: usize) -> Result<Self, DriverFailure> {
        Ok(CudaHostMemory {
            region: PinnedRegion::new(ctx, len)?,
            len,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the region holds at least `len` initialised (zeroed, then
        // written through `as_mut_slice`) bytes owned by `self`; the backend
        // synchronises every copy before returning, so no transfer uses them
        // now, and `&self` excludes writers.
        unsafe { std::slice::from_raw_parts(self.region.ptr().as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only
        // reference.
        unsafe { std::slice::from_raw_parts_mut(self.region.ptr().as_ptr(), self.len) }
    }
}

/// Page-locked host memory in this process, and how many ring kernels run.
struct PinnedCache {
    /// Regions no one uses now: (host address, bytes).
    free: Vec<(usize, usize)>,
    /// Ring kernels launched and not yet seen stopped.
    running: usize,
    /// Regions handed out.
    live: usize,
}

static PINNED: Mutex<PinnedCache> = Mutex::new(PinnedCache {
    free: Vec::new(),
    running: 0,
    live: 0,
});

/// What the page-locked memory cache holds now (diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinnedCacheStats {
    /// Released regions kept for reuse.
    pub cached_regions: usize,
    /// Their total size in bytes.
    pub cached_bytes: usize,
    /// Regions in use.
    pub live_regions: usize,
    /// Ring kernels launched and not yet seen stopped.
    pub running_kernels: usize,
}

/// See [`PinnedCacheStats`].
pub fn pinned_cache_stats() -> PinnedCacheStats {
    let c = lock(&PINNED);
    PinnedCacheStats {
        cached_regions: c.free.len(),
        cached_bytes: c.free.iter().map(|f| f.1).sum(),
        live_regions: c.live,
        running_kernels: c.running,
    }
}

/// Frees every cached region if no ring kernel runs.
fn release_cached(cache: &mut PinnedCache) {
    if cache.running != 0 {
        return;
    }
    for (addr, _) in std::mem::take(&mut cache.free) {
        // SAFETY: `addr` came from cuMemHostAlloc, no ring kernel runs that
        // could still touch it, and its owner is gone.
        if let Err(e) = unsafe { result::free_host(addr as *mut c_void) } {
            tracing::warn!(error = %e, "cuMemFreeHost failed; the region is leaked");
        }
    }
}

/// A ring kernel counted as running, so page-locked memory is not returned
/// to the driver under it; dropping it says the kernel was seen stopped.
#[derive(Debug)]
pub(crate) struct RunningKernel(());

impl RunningKernel {
    pub(crate) fn new() -> Self {
        lock(&PINNED).running += 1;
        RunningKernel(())
    }
}

impl Drop for RunningKernel {
    fn drop(&mut self) {
        let mut cache = lock(&PINNED);
        cache.running = cache.running.saturating_sub(1);
        release_cached(&mut cache);
    }
}

/// Page-locked host memory, mapped into the device's address space
/// (`cuMemHostAlloc` with `PORTABLE | DEVICEMAP`), zeroed. Taken from the
/// process's cache when a large enough region is there.
#[derive(Debug)]
pub(crate) struct PinnedRegion {
    ptr: NonNull<u8>,
    cap: usize,
}

// SAFETY: the region is plain memory owned by this value; access to its
// contents is governed by whoever borrows `ptr` (the ring protocol, or
// `&mut self` methods of the baseline).
unsafe impl Send for PinnedRegion {}
// SAFETY: as above; `&self` exposes only the address and size.
unsafe impl Sync for PinnedRegion {}

impl PinnedRegion {
    /// At least `len` bytes (the smallest cached region that fits, or a
    /// fresh allocation), zeroed.
    pub(crate) fn new(ctx: &Arc<CudaContext>, len: usize) -> Result<Self, DriverFailure> {
        let len = len.max(1);
        let mut cache = lock(&PINNED);
        let reuse = cache
            .free
            .iter()
            .enumerate()
            .filter(|(_, f)| f.1 >= len)
            .min_by_key(|(_, f)| f.1)
            .map(|(i, _)| i);
        let (addr, cap) = match reuse {
            Some(i) => cache.free.swap_remove(i),
            None => {
                ctx.bind_to_thread().map_err(DriverFailure::at("cuCtxSetCurrent"))?;
                let flags = sys::CU_MEMHOSTALLOC_PORTABLE | sys::CU_MEMHOSTALLOC_DEVICEMAP;
                // SAFETY: the driver is loaded and the context current; the
                // memory is zeroed below before anything reads it.
                let p = unsafe { result::malloc_host(len, flags) }.map_err(DriverFailure::at("cuMemHostAlloc"))?;
                (p as usize, len)
            }
        };
        let Some(ptr) = NonNull::new(addr as *mut u8) else {
            return Err(DriverFailure::message(
                "cuMemHostAlloc",
                "the driver returned a null pointer",
            ));
        };
        // SAFETY: `addr .. addr + cap` is a page-locked allocation no one
        // else uses: fresh, or cached after its owner was dropped.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, cap) };
        cache.live += 1;
        Ok(PinnedRegion { ptr, cap })
    }

    /// Host address.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Size in bytes (at least what was asked for).
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The region's address in the device's address space.
    pub(crate) fn device_address(&self, ctx: &Arc<CudaContext>) -> Result<u64, DriverFailure> {
        ctx.bind_to_thread().map_err(DriverFailure::at("cuCtxSetCurrent"))?;
        let mut device: sys::CUdeviceptr = 0;
        // SAFETY: `ptr` is a page-locked allocation made with DEVICEMAP; the
        // out-pointer is valid for one write.
        unsafe { sys::cuMemHostGetDevicePointer_v2(&mut device, self.ptr.as_ptr().cast(), 0) }
            .result()
            .map_err(DriverFailure::at("cuMemHostGetDevicePointer"))?;
        Ok(device)
    }
}

impl Drop for PinnedRegion {
    fn drop(&mut self) {
        let mut cache = lock(&PINNED);
        cache.live = cache.live.saturating_sub(1);
        cache.free.push((self.ptr.as_ptr() as usize, self.cap));
        release_cached(&mut cache);
    }
}

/// Device memory allocated and freed in the order of one stream
/// (`cuMemAllocAsync` / `cuMemFreeAsync`), zeroed on that stream before any
/// later work on it can read it.
#[derive(Debug)]
pub(crate) struct StreamMemory {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    ptr: sys::CUdeviceptr,
    bytes: usize,
}

impl StreamMemory {
    /// `bytes` (at least one) of zeroed device memory on `stream`.
    pub(crate) fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>, bytes: usize) -> Result<Self, DriverFailure> {
        let bytes = bytes.max(1);
        ctx.bind_to_thread().map_err(DriverFailure::at("cuCtxSetCurrent"))?;
        // SAFETY: the context is current and `stream` belongs to it; the
        // memory is zeroed on the same stream just below.
        let ptr =
            unsafe { result::malloc_async(stream.cu_stream(), bytes) }.map_err(DriverFailure::at("cuMemAllocAsync"))?;
        let memory = StreamMemory {
            ctx: ctx.clone(),
            stream: stream.clone(),
            ptr,
            bytes,
        };
        // SAFETY: `ptr .. ptr + bytes` was just allocated, in stream order.
        unsafe { result::memset_d8_async(ptr, 0, bytes, stream.cu_stream()) }
            .map_err(DriverFailure::at("cuMemsetD8Async"))?;
        Ok(memory)
    }

    /// Device address.
    pub(crate) fn device_address(&self) -> u64 {
        self.ptr
    }
}

impl Drop for StreamMemory {
    fn drop(&mut self) {
        if let Err(e) = self.ctx.bind_to_thread() {
            tracing::warn!(error = %e, bytes = self.bytes, "cannot bind the CUDA context; device memory is leaked");
            return;
        }
        // SAFETY: `ptr` came from cuMemAllocAsync on this stream; its owner
        // is gone (owners of memory a running kernel uses leak it instead),
        // and the free is ordered after everything queued on the stream.
        if let Err(e) = unsafe { result::free_async(self.ptr, self.stream.cu_stream()) } {
            tracing::warn!(error = %e, bytes = self.bytes, "cuMemFreeAsync failed; device memory is leaked");
        }
    }
}
