//! [`DeviceBuffer`]: typed, RAII device memory.
//!
//! Invariants: a buffer owns exactly one allocation of at least
//! `len * size_of::<T>()` bytes for its whole life; dropping it frees the
//! allocation or, for a pooled buffer, hands it back to its pool, exactly
//! once. Freeing consumes the buffer, so using it afterwards does not compile:
//!
//! ```compile_fail,E0382
//! use std::sync::Arc;
//! use dotcompute::device::{CpuBackend, DeviceBuffer};
//! let cpu = Arc::new(CpuBackend::new());
//! let buf = DeviceBuffer::from_slice(&cpu, &[1u32, 2, 3]).unwrap();
//! buf.free();
//! let _ = buf.to_vec(); // error[E0382]: borrow of moved value: `buf`
//! ```
//!
//! Every transfer checks the host slice's length against the buffer's and
//! fails with [`DeviceError::SizeMismatch`] instead of truncating.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytemuck::Pod;

use super::backend::{Backend, ElemType, KernelArg};
use super::error::{DeviceError, DeviceResult};

/// Takes back a pooled allocation when its buffer is dropped.
pub(crate) trait Recycle<M>: Send + Sync {
    fn recycle(&self, memory: M);
}

/// A typed device allocation of `len` elements of `T`.
///
/// ```
/// use std::sync::Arc;
/// use dotcompute::device::{CpuBackend, DeviceBuffer};
/// let cpu = Arc::new(CpuBackend::new());
/// let mut buf = DeviceBuffer::from_slice(&cpu, &[1.0f64, 2.0]).unwrap();
/// buf.write(&[3.0, 4.0]).unwrap();
/// assert_eq!(buf.to_vec().unwrap(), vec![3.0, 4.0]);
/// assert!(buf.write(&[1.0]).is_err()); // wrong length: an error, not a truncation
/// ```
pub struct DeviceBuffer<T: Pod, B: Backend> {
    memory: Option<B::Memory>,
    len: usize,
    backend: Arc<B>,
    recycle: Option<Arc<dyn Recycle<B::Memory>>>,
    _t: PhantomData<fn() -> T>,
}

pub(crate) fn byte_len<T: Pod>(len: usize) -> DeviceResult<usize> {
    let size = std::mem::size_of::<T>();
    if size == 0 {
        return Err(DeviceError::invalid(
            "element type",
            std::any::type_name::<T>(),
            "zero-sized types cannot be stored in device memory",
        ));
    }
    len.checked_mul(size).ok_or_else(|| DeviceError::OutOfMemory {
        requested: usize::MAX,
        in_use: 0,
        limit: usize::MAX,
        context: format!("{len} elements of {} overflow usize", std::any::type_name::<T>()),
    })
}

impl<T: Pod, B: Backend> DeviceBuffer<T, B> {
    /// Allocates `len` elements with unspecified contents.
    pub fn alloc(backend: &Arc<B>, len: usize) -> DeviceResult<Self> {
        let memory = backend.alloc(byte_len::<T>(len)?)?;
        Ok(Self::from_parts(backend.clone(), memory, len, None))
    }

    /// Allocates `len` zeroed elements.
    pub fn zeroed(backend: &Arc<B>, len: usize) -> DeviceResult<Self> {
        let mut b = Self::alloc(backend, len)?;
        b.fill_zero()?;
        Ok(b)
    }

    /// Allocates a buffer holding a copy of `data`.
    pub fn from_slice(backend: &Arc<B>, data: &[T]) -> DeviceResult<Self> {
        let mut b = Self::alloc(backend, data.len())?;
        b.write(data)?;
        Ok(b)
    }

    pub(crate) fn from_parts(
        backend: Arc<B>,
        memory: B::Memory,
        len: usize,
        recycle: Option<Arc<dyn Recycle<B::Memory>>>,
    ) -> Self {
        DeviceBuffer {
            memory: Some(memory),
            len,
            backend,
            recycle,
            _t: PhantomData,
        }
    }

    fn mem(&self) -> &B::Memory {
        match &self.memory {
            Some(m) => m,
            // The memory is taken only in `drop`, after which `self` is gone.
            None => unreachable!("DeviceBuffer memory is present until drop"),
        }
    }

    fn mem_mut(&mut self) -> &mut B::Memory {
        match &mut self.memory {
            Some(m) => m,
            None => unreachable!("DeviceBuffer memory is present until drop"),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the elements in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    /// Size of the underlying allocation in bytes (larger for pooled buffers,
    /// which are rounded up to a size class).
    pub fn capacity_bytes(&self) -> usize {
        B::memory_size(self.mem())
    }

    /// Whether the allocation goes back to a pool when dropped.
    pub fn is_pooled(&self) -> bool {
        self.recycle.is_some()
    }

    /// The backend the buffer lives on.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The raw allocation.
    pub fn memory(&self) -> &B::Memory {
        self.mem()
    }

    /// The raw allocation, writable.
    pub fn memory_mut(&mut self) -> &mut B::Memory {
        self.mem_mut()
    }

    /// Copies `src` (exactly `len` elements) to the device.
    pub fn write(&mut self, src: &[T]) -> DeviceResult<()> {
        if src.len() != self.len {
            return Err(DeviceError::SizeMismatch {
                context: "DeviceBuffer::write",
                expected: self.len,
                actual: src.len(),
            });
        }
        self.write_at(0, src)
    }

    /// Copies `src` to the device starting at element `offset`.
    pub fn write_at(&mut self, offset: usize, src: &[T]) -> DeviceResult<()> {
        check_elems("DeviceBuffer::write_at", offset, src.len(), self.len)?;
        let stream = self.backend.default_stream();
        let backend = self.backend.clone();
        backend.copy_htod(
            bytemuck::cast_slice(src),
            self.mem_mut(),
            offset * std::mem::size_of::<T>(),
            &stream,
        )
    }

    /// Copies the whole buffer into `dst` (exactly `len` elements).
    pub fn read(&self, dst: &mut [T]) -> DeviceResult<()> {
        if dst.len() != self.len {
            return Err(DeviceError::SizeMismatch {
                context: "DeviceBuffer::read",
                expected: self.len,
                actual: dst.len(),
            });
        }
        self.read_at(0, dst)
    }

    /// Copies `dst.len()` elements starting at element `offset` into `dst`.
    pub fn read_at(&self, offset: usize, dst: &mut [T]) -> DeviceResult<()> {
        check_elems("DeviceBuffer::read_at", offset, dst.len(), self.len)?;
        let stream = self.backend.default_stream();
        self.backend.copy_dtoh(
            self.mem(),
            offset * std::mem::size_of::<T>(),
            bytemuck::cast_slice_mut(dst),
            &stream,
        )
    }

    /// The buffer's contents as a vector.
    pub fn to_vec(&self) -> DeviceResult<Vec<T>> {
        let mut v = vec![T::zeroed(); self.len];
        self.read(&mut v)?;
        Ok(v)
    }

    /// Copies another buffer of the same length, device to device.
    pub fn copy_from(&mut self, src: &DeviceBuffer<T, B>) -> DeviceResult<()> {
        if src.len != self.len {
            return Err(DeviceError::SizeMismatch {
                context: "DeviceBuffer::copy_from",
                expected: self.len,
                actual: src.len,
            });
        }
        let stream = self.backend.default_stream();
        let bytes = self.size_bytes();
        let backend = self.backend.clone();
        backend.copy_dtod(src.mem(), 0, self.mem_mut(), 0, bytes, &stream)
    }

    /// Sets every byte to zero.
    pub fn fill_zero(&mut self) -> DeviceResult<()> {
        let stream = self.backend.default_stream();
        let backend = self.backend.clone();
        backend.fill_zero(self.mem_mut(), &stream)
    }

    /// The buffer as a read-only kernel argument.
    pub fn arg(&self) -> KernelArg<'_, B> {
        KernelArg::Buffer {
            memory: self.mem(),
            elem: ElemType::of::<T>(),
            len: self.len,
        }
    }

    /// The buffer as a writable kernel argument.
    pub fn arg_mut(&mut self) -> KernelArg<'_, B> {
        let len = self.len;
        KernelArg::BufferMut {
            memory: self.mem_mut(),
            elem: ElemType::of::<T>(),
            len,
        }
    }

    /// Frees the buffer now (the same as dropping it).
    pub fn free(self) {
        drop(self)
    }
}

pub(crate) fn check_elems(context: &'static str, offset: usize, count: usize, len: usize) -> DeviceResult<()> {
    match offset.checked_add(count) {
        Some(end) if end <= len => Ok(()),
        _ => Err(DeviceError::OutOfRange {
            context,
            offset,
            len: count,
            size: len,
        }),
    }
}

impl<T: Pod, B: Backend> Drop for DeviceBuffer<T, B> {
    fn drop(&mut self) {
        if let Some(memory) = self.memory.take() {
            match &self.recycle {
                Some(pool) => pool.recycle(memory),
                None => drop(memory),
            }
        }
    }
}

impl<T: Pod, B: Backend> fmt::Debug for DeviceBuffer<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBuffer")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len)
            .field("backend", &self.backend.kind())
            .field("pooled", &self.is_pooled())
            .finish()
    }
}
