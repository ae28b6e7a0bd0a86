//! The memory the protocol runs over, and all of its `unsafe` code.
//!
//! The protocol touches shared memory only through `SharedMemory`: atomic
//! loads and stores of aligned `u64` words, and byte copies into and out of
//! slots that the protocol says the caller owns at that moment. Two
//! implementations exist:
//! - [`MappedRegion`]: a raw `NonNull<u8>` + length, over a plain aligned
//!   host allocation ([`HostRegion`], for emulation) or over CUDA pinned
//!   memory mapped into the device (the CUDA path, `gpu::cuda_device`);
//! - a `loom` model of the same words and slots (in the loom tests), so the
//!   very protocol code the emulator runs is model-checked.
//!
//! Every offset is checked against the region's length before it is used, so
//! a bug in offset arithmetic panics instead of touching memory outside the
//! region; values read from memory (indices) never become offsets without
//! being masked (see `ring`).

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::{LayoutError, LINE_SIZE};

pub(crate) mod sealed {
    /// Only this crate implements [`SharedMemory`](super::SharedMemory).
    pub trait Sealed {}
}

/// Shared memory as the protocol sees it.
///
/// # Safety
///
/// Implementors guarantee that, for offsets the methods accept (they panic on
/// others), `load`/`store` are atomic accesses of the 8-byte word at that
/// offset and `write`/`read` copy bytes inside the memory, and that the
/// memory stays valid while any clone of the implementor exists.
pub(crate) unsafe trait SharedMemory: Clone + Send + Sync + sealed::Sealed {
    /// Length in bytes.
    fn len(&self) -> usize;

    /// Atomically loads the word at `offset` (8-aligned, in bounds).
    fn load(&self, offset: usize, order: Ordering) -> u64;

    /// Atomically stores the word at `offset` (8-aligned, in bounds).
    fn store(&self, offset: usize, value: u64, order: Ordering);

    /// Copies `len` bytes from `src` to `offset`.
    ///
    /// # Safety
    ///
    /// `src` is valid for reading `len` bytes, and the protocol gives the
    /// caller exclusive use of `offset .. offset + len` (no other party
    /// accesses it until the caller publishes it with a release store).
    unsafe fn write(&self, offset: usize, src: *const u8, len: usize);

    /// Copies `len` bytes at `offset` to `dst`.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writing `len` bytes, and the protocol gives the
    /// caller exclusive use of `offset .. offset + len` (it was published to
    /// the caller by a release store the caller has acquire-loaded, and no
    /// one writes it until the caller releases it).
    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize);

    /// Zeroes `len` bytes at `offset`, before the memory is shared.
    fn zero(&self, offset: usize, len: usize);
}

/// A region of memory shared with a device: a base address and a length.
///
/// Copying a `MappedRegion` copies the handle, not the memory. It is only
/// valid while the memory it points to is; [`MappedRegion::new`] is `unsafe`
/// because the caller vouches for that.
#[derive(Debug, Clone, Copy)]
pub struct MappedRegion {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a `MappedRegion` is an address and a length. All accesses through it
// are atomic word accesses or byte copies into slots that the ring protocol
// hands to exactly one party at a time, which is what makes sharing it between
// threads (and with a device) sound; `new`'s contract covers validity.
unsafe impl Send for MappedRegion {}
// SAFETY: as for `Send`.
unsafe impl Sync for MappedRegion {}

fn address_alignment(addr: usize) -> usize {
    if addr == 0 {
        4096
    } else {
        (1usize << addr.trailing_zeros()).min(4096)
    }
}

impl MappedRegion {
    /// Wraps `len` bytes at `base`.
    ///
    /// # Safety
    ///
    /// For as long as this handle or any copy of it is used, `base .. base +
    /// len` must be valid for reads and writes and must only be accessed, by
    /// anyone (other threads, a GPU), according to the ring protocol:
    /// atomic (or, on the device, volatile/acquire/release) 8-byte accesses
    /// of the control words, and slot accesses only by the side that owns
    /// the slot.
    ///
    /// # Errors
    ///
    /// [`LayoutError::BadMemory`] if `base` is not 128-byte aligned.
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Result<Self, LayoutError> {
        let align = address_alignment(base.as_ptr() as usize);
        if align < LINE_SIZE {
            return Err(LayoutError::BadMemory {
                needed: len,
                len,
                align,
            });
        }
        Ok(MappedRegion { base, len })
    }

    /// The base address.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset.checked_add(8).is_some_and(|end| end <= self.len),
            "word offset {offset} outside a region of {} bytes (protocol bug)",
            self.len
        );
        // SAFETY: `offset + 8 <= len`, so the word is inside the region, which
        // `new`'s contract keeps valid; the base is 128-aligned and `offset` a
        // multiple of 8, so the word is 8-aligned as `AtomicU64` requires; and
        // the contract says the word is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast::<u64>()) }
    }

    #[inline]
    fn check_range(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "byte range {offset}+{len} outside a region of {} bytes (protocol bug)",
            self.len
        );
    }
}

impl sealed::Sealed for MappedRegion {}

// SAFETY: every method checks its offsets against `len` (panicking otherwise);
// validity of the memory is `MappedRegion::new`'s contract.
unsafe impl SharedMemory for MappedRegion {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn load(&self, offset: usize, order: Ordering) -> u64 {
        self.word(offset).load(order)
    }

    #[inline]
    fn store(&self, offset: usize, value: u64, order: Ordering) {
        self.word(offset).store(value, order)
    }

    #[inline]
    unsafe fn write(&self, offset: usize, src: *const u8, len: usize) {
        self.check_range(offset, len);
        // SAFETY: the range is inside the region (checked above); the caller
        // guarantees `src` is readable for `len` bytes and that the protocol
        // gives it exclusive use of the destination, so nothing else accesses
        // these bytes concurrently; a slot never overlaps the caller's source.
        unsafe { std::ptr::copy_nonoverlapping(src, self.base.as_ptr().add(offset), len) }
    }

    #[inline]
    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        self.check_range(offset, len);
        // SAFETY: as in `write`, with the roles swapped.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr().add(offset), dst, len) }
    }

    fn zero(&self, offset: usize, len: usize) {
        self.check_range(offset, len);
        // SAFETY: the range is inside the region; zeroing happens before the
        // region is shared with the device (layout `init`), so nothing else
        // accesses it.
        unsafe { std::ptr::write_bytes(self.base.as_ptr().add(offset), 0, len) }
    }
}

/// An owned, zeroed, 128-byte aligned host allocation: the memory of an
/// emulated device (the CUDA path uses pinned mapped memory instead).
///
/// ```
/// use dotcompute::gpu::protocol::HostRegion;
///
/// let r = HostRegion::new(1024)?;
/// assert_eq!(r.region().len(), 1024);
/// assert_eq!(r.region().base().as_ptr() as usize % 128, 0);
/// # Ok::<(), dotcompute::gpu::protocol::LayoutError>(())
/// ```
#[derive(Debug)]
pub struct HostRegion {
    region: MappedRegion,
    layout: Layout,
}

// SAFETY: the allocation is owned; access goes through `MappedRegion`, which
// is `Send + Sync` for the reasons given there.
unsafe impl Send for HostRegion {}
// SAFETY: as for `Send`.
unsafe impl Sync for HostRegion {}

impl HostRegion {
    /// Allocates `len` zeroed bytes aligned to 128.
    ///
    /// # Errors
    ///
    /// [`LayoutError::Overflow`] if `len` is 0 or too large, or if the
    /// allocator fails.
    pub fn new(len: usize) -> Result<Self, LayoutError> {
        let layout = Layout::from_size_align(len, LINE_SIZE).map_err(|_| LayoutError::Overflow)?;
        if len == 0 {
            return Err(LayoutError::Overflow);
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let base = NonNull::new(ptr).ok_or(LayoutError::Overflow)?;
        // SAFETY: the allocation is `len` bytes, 128-aligned, lives until
        // `self` is dropped, and this type hands out the region only to code
        // that follows the ring protocol; holders of copies keep the
        // `HostRegion` alive (emulator threads hold it in an `Arc`).
        let region = unsafe { MappedRegion::new(base, len) }?;
        Ok(HostRegion { region, layout })
    }

    /// The region (valid while `self` lives).
    pub fn region(&self) -> MappedRegion {
        self.region
    }
}

impl Drop for HostRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this exact layout, freed once.
        unsafe { std::alloc::dealloc(self.region.base.as_ptr(), self.layout) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_and_bytes() {
        let host = HostRegion::new(256).unwrap();
        let r = host.region();
        r.store(8, 42, Ordering::Release);
        assert_eq!(r.load(8, Ordering::Acquire), 42);
        let src = [1u8, 2, 3];
        let mut dst = [0u8; 3];
        // SAFETY: single-threaded test; the buffers are valid for 3 bytes.
        unsafe {
            r.write(100, src.as_ptr(), 3);
            r.read(100, dst.as_mut_ptr(), 3);
        }
        assert_eq!(dst, src);
        r.zero(0, 256);
        assert_eq!(r.load(8, Ordering::Relaxed), 0);
    }

    #[test]
    #[should_panic(expected = "outside a region")]
    fn out_of_bounds_word_panics() {
        let host = HostRegion::new(128).unwrap();
        host.region().load(128, Ordering::Relaxed);
    }

    #[test]
    fn misaligned_memory_is_refused() {
        let host = HostRegion::new(256).unwrap();
        // SAFETY: only checked for alignment; never accessed.
        let r = unsafe { MappedRegion::new(NonNull::new(host.region().base().as_ptr().wrapping_add(8)).unwrap(), 64) };
        assert!(matches!(r, Err(LayoutError::BadMemory { align: 8, .. })));
        assert!(HostRegion::new(0).is_err());
    }
}
