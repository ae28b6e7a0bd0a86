//! CPU "device" memory: a separate, 64-byte aligned, zero-initialised heap
//! allocation per buffer.
//!
//! Invariant: the allocation is always fully initialised and aligned to 64
//! bytes, so it can be viewed as a slice of any `Pod` type whose alignment is
//! at most 64 without `unsafe`; when it belongs to a backend, the backend's
//! live-byte counter is decremented exactly once, when it is dropped.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::device::backend::BackendCounters;
use crate::device::error::{DeviceError, DeviceResult};

/// One 64-byte, 64-aligned line.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

/// An aligned, zeroed byte allocation of at least `len` bytes.
pub(crate) fn zeroed_lines(len: usize, context: &str) -> DeviceResult<Box<[Line]>> {
    let lines = len.div_ceil(64);
    bytemuck::allocation::try_zeroed_slice_box::<Line>(lines).map_err(|()| DeviceError::OutOfMemory {
        requested: len,
        in_use: 0,
        limit: usize::MAX,
        context: format!("{context}: the host allocator refused {len} bytes"),
    })
}

/// A block of CPU-backend memory (device or host staging).
pub struct CpuMemory {
    lines: Box<[Line]>,
    len: usize,
    counters: Option<Arc<BackendCounters>>,
}

impl CpuMemory {
    pub(crate) fn new(len: usize, counters: Option<Arc<BackendCounters>>) -> DeviceResult<Self> {
        let lines = zeroed_lines(len, "cpu backend")?;
        Ok(CpuMemory { lines, len, counters })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the allocation has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<Line, u8>(&self.lines)[..self.len]
    }

    /// The bytes, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Line, u8>(&mut self.lines)[..self.len]
    }
}

impl Drop for CpuMemory {
    fn drop(&mut self) {
        if let Some(c) = &self.counters {
            c.free(self.len);
        }
    }
}

impl std::fmt::Debug for CpuMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuMemory").field("len", &self.len).finish()
    }
}
