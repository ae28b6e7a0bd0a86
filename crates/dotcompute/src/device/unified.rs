//! [`UnifiedBuffer`]: one logical array with a host copy and a device copy,
//! synchronised lazily through its backend.
//!
//! States ([`BufferState`]):
//!
//! | state | host copy | device copy | meaning |
//! |---|---|---|---|
//! | `Uninitialized` | – | – | nothing allocated |
//! | `HostOnly` | valid | – | |
//! | `DeviceOnly` | – | valid | |
//! | `Synchronized` | valid | valid | both hold the same data |
//! | `HostDirty` | newer | stale | host has writes the device lacks |
//! | `DeviceDirty` | stale | newer | device has writes the host lacks |
//!
//! Invariants: whatever the sequence of calls, the newest data is never
//! discarded. Reading a side copies to it only when it is stale or missing
//! (so repeated reads cost no transfer); writing a side through the `_mut`
//! accessors first brings that side up to date, then marks the other stale.
//! The explicit [`mark_host_dirty`](UnifiedBuffer::mark_host_dirty) /
//! [`mark_device_dirty`](UnifiedBuffer::mark_device_dirty) refuse with
//! [`DeviceError::InvalidState`] to mark one side dirty while the other has
//! unsynchronised writes, which would silently lose them. Every transfer is
//! counted in [`TransferStats`].
//!
//! ```
//! use std::sync::Arc;
//! use dotcompute::device::{BufferState, CpuBackend, UnifiedBuffer};
//! let cpu = Arc::new(CpuBackend::new());
//! let mut buf = UnifiedBuffer::<f32, _>::from_slice(&cpu, &[1.0, 2.0, 3.0]).unwrap();
//! assert_eq!(buf.state(), BufferState::HostOnly);
//! buf.device().unwrap();                      // first device access: one host→device copy
//! buf.device().unwrap();                      // already there: no copy
//! assert_eq!(buf.state(), BufferState::Synchronized);
//! assert_eq!(buf.transfers().htod_count, 1);
//! buf.host_mut().unwrap()[0] = 10.0;          // host write: device now stale
//! assert_eq!(buf.state(), BufferState::HostDirty);
//! assert!(buf.mark_device_dirty().is_err());  // would lose the host write
//! ```

use std::fmt;
use std::sync::Arc;

use bytemuck::Pod;
use serde::Serialize;

use super::backend::{Backend, KernelArg};
use super::buffer::DeviceBuffer;
use super::error::{DeviceError, DeviceResult};

/// Where a [`UnifiedBuffer`]'s valid data is. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum BufferState {
    /// Nothing allocated.
    Uninitialized,
    /// Only a host copy exists.
    HostOnly,
    /// Only a device copy exists.
    DeviceOnly,
    /// Both copies exist and agree.
    Synchronized,
    /// The host copy has writes the device copy lacks.
    HostDirty,
    /// The device copy has writes the host copy lacks.
    DeviceDirty,
}

impl fmt::Display for BufferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Transfers a [`UnifiedBuffer`] has made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TransferStats {
    /// Host-to-device copies.
    pub htod_count: u64,
    /// Host-to-device bytes.
    pub htod_bytes: u64,
    /// Device-to-host copies.
    pub dtoh_count: u64,
    /// Device-to-host bytes.
    pub dtoh_bytes: u64,
}

impl TransferStats {
    /// Copies in both directions.
    pub fn total_count(&self) -> u64 {
        self.htod_count + self.dtoh_count
    }
    /// Bytes in both directions.
    pub fn total_bytes(&self) -> u64 {
        self.htod_bytes + self.dtoh_bytes
    }
}

/// An array mirrored between host and device. See the [module docs](self).
pub struct UnifiedBuffer<T: Pod, B: Backend> {
    backend: Arc<B>,
    len: usize,
    host: Option<Vec<T>>,
    device: Option<DeviceBuffer<T, B>>,
    state: BufferState,
    stats: TransferStats,
}

impl<T: Pod, B: Backend> UnifiedBuffer<T, B> {
    /// A buffer of `len` elements, nothing allocated yet; the first access
    /// of either side allocates it zeroed.
    pub fn new(backend: &Arc<B>, len: usize) -> DeviceResult<Self> {
        super::buffer::byte_len::<T>(len)?;
        Ok(UnifiedBuffer {
            backend: backend.clone(),
            len,
            host: None,
            device: None,
            state: BufferState::Uninitialized,
            stats: TransferStats::default(),
        })
    }

    /// A buffer whose host copy holds `data` (state `HostOnly`).
    pub fn from_slice(backend: &Arc<B>, data: &[T]) -> DeviceResult<Self> {
        let mut b = Self::new(backend, data.len())?;
        b.host = Some(data.to_vec());
        b.state = BufferState::HostOnly;
        Ok(b)
    }

    /// A buffer that adopts a device buffer (state `DeviceOnly`).
    pub fn from_device(buffer: DeviceBuffer<T, B>) -> Self {
        UnifiedBuffer {
            backend: buffer.backend().clone(),
            len: buffer.len(),
            host: None,
            device: Some(buffer),
            state: BufferState::DeviceOnly,
            stats: TransferStats::default(),
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

    /// Size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    /// The current state.
    pub fn state(&self) -> BufferState {
        self.state
    }

    /// Transfers made so far.
    pub fn transfers(&self) -> TransferStats {
        self.stats
    }

    /// Whether anything is allocated.
    pub fn is_allocated(&self) -> bool {
        self.state != BufferState::Uninitialized
    }

    fn copy_to_device(&mut self) -> DeviceResult<()> {
        if self.device.is_none() {
            self.device = Some(DeviceBuffer::alloc(&self.backend, self.len)?);
        }
        if let (Some(h), Some(d)) = (&self.host, &mut self.device) {
            d.write(h)?;
            self.stats.htod_count += 1;
            self.stats.htod_bytes += self.size_bytes() as u64;
        }
        Ok(())
    }

    fn copy_to_host(&mut self) -> DeviceResult<()> {
        let mut host = match self.host.take() {
            Some(h) => h,
            None => vec![T::zeroed(); self.len],
        };
        let result = match &self.device {
            Some(d) => d.read(&mut host),
            None => Ok(()),
        };
        self.host = Some(host);
        result?;
        self.stats.dtoh_count += 1;
        self.stats.dtoh_bytes += self.size_bytes() as u64;
        Ok(())
    }

    /// Makes the host copy current, copying from the device only if needed.
    fn ensure_host(&mut self) -> DeviceResult<()> {
        use BufferState::*;
        match self.state {
            Uninitialized => {
                self.host = Some(vec![T::zeroed(); self.len]);
                self.state = HostOnly;
            }
            DeviceOnly | DeviceDirty => {
                self.copy_to_host()?;
                self.state = Synchronized;
            }
            HostOnly | Synchronized | HostDirty => {}
        }
        Ok(())
    }

    /// Makes the device copy current, copying from the host only if needed.
    fn ensure_device(&mut self) -> DeviceResult<()> {
        use BufferState::*;
        match self.state {
            Uninitialized => {
                self.device = Some(DeviceBuffer::zeroed(&self.backend, self.len)?);
                self.state = DeviceOnly;
            }
            HostOnly | HostDirty => {
                self.copy_to_device()?;
                self.state = Synchronized;
            }
            DeviceOnly | Synchronized | DeviceDirty => {}
        }
        Ok(())
    }

    /// The host copy, brought up to date first (a device→host copy only if
    /// the device has newer data).
    pub fn host(&mut self) -> DeviceResult<&[T]> {
        self.ensure_host()?;
        Ok(self.host.as_deref().unwrap_or(&[]))
    }

    /// The host copy for writing: brought up to date first, then the device
    /// copy (if any) is marked stale.
    pub fn host_mut(&mut self) -> DeviceResult<&mut [T]> {
        self.ensure_host()?;
        if self.state == BufferState::Synchronized {
            self.state = BufferState::HostDirty;
        }
        Ok(self.host.as_deref_mut().unwrap_or(&mut []))
    }

    /// Overwrites the host copy with `data` (exactly `len` elements).
    pub fn copy_from_slice(&mut self, data: &[T]) -> DeviceResult<()> {
        if data.len() != self.len {
            return Err(DeviceError::SizeMismatch {
                context: "UnifiedBuffer::copy_from_slice",
                expected: self.len,
                actual: data.len(),
            });
        }
        self.host_mut()?.copy_from_slice(data);
        Ok(())
    }

    /// The host data as a vector (brought up to date first).
    pub fn to_vec(&mut self) -> DeviceResult<Vec<T>> {
        Ok(self.host()?.to_vec())
    }

    /// The device copy, brought up to date first (a host→device copy only if
    /// the host has newer data).
    pub fn device(&mut self) -> DeviceResult<&DeviceBuffer<T, B>> {
        self.ensure_device()?;
        self.device.as_ref().ok_or(DeviceError::InvalidState {
            state: self.state,
            operation: "access the device copy",
            reason: "no device copy after synchronisation",
        })
    }

    /// The device copy for writing: brought up to date first, then the host
    /// copy (if any) is marked stale.
    pub fn device_mut(&mut self) -> DeviceResult<&mut DeviceBuffer<T, B>> {
        self.ensure_device()?;
        if self.state == BufferState::Synchronized {
            self.state = BufferState::DeviceDirty;
        }
        let state = self.state;
        self.device.as_mut().ok_or(DeviceError::InvalidState {
            state,
            operation: "access the device copy",
            reason: "no device copy after synchronisation",
        })
    }

    /// The device copy as a read-only kernel argument.
    pub fn arg(&mut self) -> DeviceResult<KernelArg<'_, B>> {
        Ok(self.device()?.arg())
    }

    /// The device copy as a writable kernel argument (marks the host stale).
    pub fn arg_mut(&mut self) -> DeviceResult<KernelArg<'_, B>> {
        Ok(self.device_mut()?.arg_mut())
    }

    /// Declares that the host copy was written (for writes made outside
    /// [`host_mut`](Self::host_mut)). Refused while the device has
    /// unsynchronised writes, or when there is no host copy.
    pub fn mark_host_dirty(&mut self) -> DeviceResult<()> {
        use BufferState::*;
        match self.state {
            Synchronized => self.state = HostDirty,
            HostOnly | HostDirty => {}
            DeviceDirty => {
                return Err(self.refuse(
                    "mark the host dirty",
                    "the device copy has unsynchronised writes that would be lost; call synchronize() first",
                ))
            }
            Uninitialized | DeviceOnly => return Err(self.refuse("mark the host dirty", "there is no host copy")),
        }
        Ok(())
    }

    /// Declares that the device copy was written (for writes made outside
    /// [`device_mut`](Self::device_mut)). Refused while the host has
    /// unsynchronised writes, or when there is no device copy.
    pub fn mark_device_dirty(&mut self) -> DeviceResult<()> {
        use BufferState::*;
        match self.state {
            Synchronized => self.state = DeviceDirty,
            DeviceOnly | DeviceDirty => {}
            HostDirty => {
                return Err(self.refuse(
                    "mark the device dirty",
                    "the host copy has unsynchronised writes that would be lost; call synchronize() first",
                ))
            }
            Uninitialized | HostOnly => return Err(self.refuse("mark the device dirty", "there is no device copy")),
        }
        Ok(())
    }

    fn refuse(&self, operation: &'static str, reason: &'static str) -> DeviceError {
        DeviceError::InvalidState {
            state: self.state,
            operation,
            reason,
        }
    }

    /// Brings both copies up to date (allocating the missing one), copying
    /// only in the direction that is stale. Nothing to do when
    /// `Uninitialized` or `Synchronized`.
    pub fn synchronize(&mut self) -> DeviceResult<()> {
        use BufferState::*;
        match self.state {
            Uninitialized | Synchronized => {}
            HostOnly | HostDirty => {
                self.copy_to_device()?;
                self.state = Synchronized;
            }
            DeviceOnly | DeviceDirty => {
                self.copy_to_host()?;
                self.state = Synchronized;
            }
        }
        Ok(())
    }

    /// Frees both copies (state `Uninitialized`); the counters are kept.
    pub fn free(&mut self) {
        self.host = None;
        self.device = None;
        self.state = BufferState::Uninitialized;
    }
}

impl<T: Pod, B: Backend> fmt::Debug for UnifiedBuffer<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnifiedBuffer")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len)
            .field("state", &self.state)
            .field("transfers", &self.stats)
            .finish()
    }
}
