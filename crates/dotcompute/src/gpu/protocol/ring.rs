//! The two ends of one slot ring in shared memory, used by the host and by
//! the (emulated) device alike.
//!
//! Each end keeps its own index privately (it is the only writer, so that
//! copy is authoritative) and a cached copy of the other side's index, which
//! it refreshes with an acquire load and **validates** before use: the other
//! side may be a buggy or corrupted device. Slot offsets are always computed
//! from a masked position, so even an unvalidated value could not address
//! memory outside the ring.

use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::sync::atomic::Ordering;

use super::layout::LayoutError;
use super::memory::SharedMemory;
use super::ProtocolError;
use crate::gpu::message::GpuMessage;

/// Where one ring lives inside its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingGeometry {
    /// For error messages: "host→device", "device→host" or "link".
    pub name: &'static str,
    /// Offset of the `tail` word.
    pub tail: usize,
    /// Offset of the `head` word.
    pub head: usize,
    /// Offset of slot 0.
    pub slots: usize,
    /// Number of slots (a power of two).
    pub capacity: u64,
    /// Bytes per slot.
    pub slot_size: usize,
}

impl RingGeometry {
    /// Checks that the geometry fits `mem` and that slots hold `T`.
    fn check<T: GpuMessage, M: SharedMemory>(&self, mem: &M) -> Result<(), LayoutError> {
        let slots_end = usize::try_from(self.capacity)
            .ok()
            .and_then(|c| c.checked_mul(self.slot_size))
            .and_then(|b| b.checked_add(self.slots));
        let fits = slots_end.is_some_and(|end| end <= mem.len())
            && self.tail.is_multiple_of(8)
            && self.head.is_multiple_of(8)
            && self.tail + 8 <= mem.len()
            && self.head + 8 <= mem.len()
            && self.slots.is_multiple_of(T::ALIGN.max(1));
        if !self.capacity.is_power_of_two() {
            return Err(LayoutError::BadCapacity {
                ring: self.name,
                capacity: self.capacity,
            });
        }
        if !fits || self.slot_size != size_of::<T>() {
            return Err(LayoutError::BadMemory {
                needed: slots_end.unwrap_or(usize::MAX),
                len: mem.len(),
                align: 128,
            });
        }
        Ok(())
    }

    #[inline]
    fn slot_offset(&self, position: u64) -> usize {
        // `position & (capacity - 1) < capacity` and `check` proved that
        // `slots + capacity * slot_size <= len`, so this never overflows and
        // always lands inside the ring, whatever `position` is.
        self.slots + (position & (self.capacity - 1)) as usize * self.slot_size
    }
}

/// The writing end of a ring of `T`.
pub(crate) struct Producer<M, T> {
    mem: M,
    geo: RingGeometry,
    /// Authoritative `tail` (only this end writes it).
    tail: u64,
    /// Last validated `head`; never ahead of the real one.
    cached_head: u64,
    _slot: PhantomData<fn(T)>,
}

impl<M: SharedMemory, T: GpuMessage> Producer<M, T> {
    /// Attaches to the ring at the indices currently in memory.
    ///
    /// # Errors
    ///
    /// A [`LayoutError`] if the geometry does not fit; a [`ProtocolError`]
    /// (as `Err(Err(..))`) if the indices in memory are inconsistent.
    pub fn attach(mem: M, geo: RingGeometry) -> Result<Self, AttachError> {
        geo.check::<T, M>(&mem)?;
        let tail = mem.load(geo.tail, Ordering::Acquire);
        let head = mem.load(geo.head, Ordering::Acquire);
        if tail.wrapping_sub(head) > geo.capacity {
            return Err(AttachError::Protocol(ProtocolError::CorruptIndex {
                ring: geo.name,
                index: "head",
                observed: head,
                min: tail.wrapping_sub(geo.capacity),
                max: tail,
            }));
        }
        Ok(Producer {
            mem,
            geo,
            tail,
            cached_head: head,
            _slot: PhantomData,
        })
    }

    /// Acquire-loads and validates the consumer's `head`; returns the free slots.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::CorruptIndex`] if `head` is outside
    /// `cached_head..=tail` (moved backwards, or past what was published).
    #[inline]
    pub fn refresh(&mut self) -> Result<u64, ProtocolError> {
        let head = self.mem.load(self.geo.head, Ordering::Acquire);
        if head.wrapping_sub(self.cached_head) > self.tail.wrapping_sub(self.cached_head) {
            return Err(ProtocolError::CorruptIndex {
                ring: self.geo.name,
                index: "head",
                observed: head,
                min: self.cached_head,
                max: self.tail,
            });
        }
        self.cached_head = head;
        Ok(self.free_cached())
    }

    /// Free slots according to the cached `head` (a lower bound).
    #[inline]
    pub fn free_cached(&self) -> u64 {
        self.geo.capacity - self.tail.wrapping_sub(self.cached_head)
    }

    /// Writes `item` at `tail + k` without publishing it.
    ///
    /// Panics (a caller bug, not a device fault) unless `k` is below the free
    /// slot count last returned by [`refresh`](Self::refresh).
    #[inline]
    pub fn write(&mut self, k: u64, item: &T) {
        assert!(k < self.free_cached(), "write beyond the producer's free slots");
        let offset = self.geo.slot_offset(self.tail.wrapping_add(k));
        // SAFETY: position `tail + k` is in `tail .. cached_head + capacity`,
        // which the protocol leaves to the producer until it publishes `tail`
        // (`cached_head` was validated, and the real head is never behind
        // it); `item` is a valid `T`, readable for `size_of::<T>()` bytes,
        // and `GpuMessage` types have no padding, so every byte is initialised.
        unsafe { self.mem.write(offset, (item as *const T).cast::<u8>(), size_of::<T>()) }
    }

    /// Publishes the `n` slots written since the last publish (release store of `tail`).
    #[inline]
    pub fn publish(&mut self, n: u64) {
        assert!(n <= self.free_cached(), "publishing more than the free slots");
        if n == 0 {
            return;
        }
        self.tail = self.tail.wrapping_add(n);
        self.mem.store(self.geo.tail, self.tail, Ordering::Release);
    }

    /// Writes and publishes as many of `items` as fit; returns how many.
    ///
    /// # Errors
    ///
    /// As [`refresh`](Self::refresh); nothing is written then.
    pub fn push_slice(&mut self, items: &[T]) -> Result<usize, ProtocolError> {
        let mut free = self.free_cached();
        if (free as usize) < items.len() {
            free = self.refresh()?;
        }
        let n = items.len().min(free as usize);
        for (k, item) in items[..n].iter().enumerate() {
            self.write(k as u64, item);
        }
        self.publish(n as u64);
        Ok(n)
    }

    /// The authoritative `tail`.
    pub fn tail(&self) -> u64 {
        self.tail
    }
}

/// The reading end of a ring of `T`.
pub(crate) struct Consumer<M, T> {
    mem: M,
    geo: RingGeometry,
    /// Authoritative `head` (only this end writes it).
    head: u64,
    /// Last validated `tail`; never ahead of the real one.
    cached_tail: u64,
    _slot: PhantomData<fn() -> T>,
}

impl<M: SharedMemory, T: GpuMessage> Consumer<M, T> {
    /// Attaches to the ring at the indices currently in memory.
    ///
    /// # Errors
    ///
    /// As [`Producer::attach`].
    pub fn attach(mem: M, geo: RingGeometry) -> Result<Self, AttachError> {
        geo.check::<T, M>(&mem)?;
        let head = mem.load(geo.head, Ordering::Acquire);
        let tail = mem.load(geo.tail, Ordering::Acquire);
        if tail.wrapping_sub(head) > geo.capacity {
            return Err(AttachError::Protocol(ProtocolError::CorruptIndex {
                ring: geo.name,
                index: "tail",
                observed: tail,
                min: head,
                max: head.wrapping_add(geo.capacity),
            }));
        }
        Ok(Consumer {
            mem,
            geo,
            head,
            cached_tail: tail,
            _slot: PhantomData,
        })
    }

    /// Acquire-loads and validates the producer's `tail`; returns the
    /// available messages.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::CorruptIndex`] if `tail` is outside
    /// `cached_tail..=head + capacity`.
    #[inline]
    pub fn refresh(&mut self) -> Result<u64, ProtocolError> {
        let tail = self.mem.load(self.geo.tail, Ordering::Acquire);
        let max = self.head.wrapping_add(self.geo.capacity);
        if tail.wrapping_sub(self.cached_tail) > max.wrapping_sub(self.cached_tail) {
            return Err(ProtocolError::CorruptIndex {
                ring: self.geo.name,
                index: "tail",
                observed: tail,
                min: self.cached_tail,
                max,
            });
        }
        self.cached_tail = tail;
        Ok(self.available_cached())
    }

    /// Available messages according to the cached `tail` (a lower bound).
    #[inline]
    pub fn available_cached(&self) -> u64 {
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Reads the message at `head + k` without releasing it.
    ///
    /// Panics (a caller bug) unless `k` is below the available count last
    /// returned by [`refresh`](Self::refresh).
    #[inline]
    pub fn read(&self, k: u64) -> T {
        assert!(
            k < self.available_cached(),
            "read beyond the consumer's available slots"
        );
        let offset = self.geo.slot_offset(self.head.wrapping_add(k));
        let mut value = MaybeUninit::<T>::uninit();
        // SAFETY: position `head + k` is in `head .. cached_tail`, published by
        // the producer with a release store of `tail` that `refresh` acquired,
        // and not yet released by us, so no one writes it now; `value` has
        // room for `size_of::<T>()` bytes.
        unsafe {
            self.mem.read(offset, value.as_mut_ptr().cast::<u8>(), size_of::<T>());
        }
        // SAFETY: every byte of `value` was just copied from the slot (the
        // region is zero-initialised, so slot bytes are always initialised),
        // and every bit pattern is a valid `T` (`GpuMessage` contract).
        unsafe { value.assume_init() }
    }

    /// Releases the first `n` available messages (release store of `head`).
    #[inline]
    pub fn release(&mut self, n: u64) {
        assert!(n <= self.available_cached(), "releasing more than was available");
        if n == 0 {
            return;
        }
        self.head = self.head.wrapping_add(n);
        self.mem.store(self.geo.head, self.head, Ordering::Release);
    }

    /// Reads and releases up to `max` messages into `out`; returns how many.
    ///
    /// # Errors
    ///
    /// As [`refresh`](Self::refresh); nothing is read then.
    pub fn pop_into(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, ProtocolError> {
        let mut available = self.available_cached();
        if (available as usize) < max {
            available = self.refresh()?;
        }
        let n = max.min(available as usize);
        out.reserve(n);
        for k in 0..n as u64 {
            out.push(self.read(k));
        }
        self.release(n as u64);
        Ok(n)
    }

    /// The authoritative `head`.
    pub fn head(&self) -> u64 {
        self.head
    }
}

/// Why an end could not attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AttachError {
    /// The geometry does not fit the memory or the slot type.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The indices in memory are inconsistent.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::gpu::protocol::layout::{LinkLayout, RegionLayout};
    use crate::gpu::protocol::memory::HostRegion;

    #[derive(Debug, Clone, Copy, PartialEq, crate::gpu::GpuMessage)]
    #[repr(C)]
    struct Item {
        a: u64,
        b: u32,
        c: u32,
    }

    fn item(i: u64) -> Item {
        Item {
            a: i,
            b: i as u32 * 3,
            c: !(i as u32),
        }
    }

    fn link(capacity: u64) -> (HostRegion, RingGeometry) {
        let l = LinkLayout::new(capacity, size_of::<Item>()).unwrap();
        let host = HostRegion::new(l.size).unwrap();
        l.init(&host.region()).unwrap();
        (host, l.ring())
    }

    #[test]
    fn wraps_around_many_times_in_order() {
        let (host, geo) = link(4);
        let mut tx = Producer::<_, Item>::attach(host.region(), geo).unwrap();
        let mut rx = Consumer::<_, Item>::attach(host.region(), geo).unwrap();
        let mut next_in = 0;
        let mut next_out = 0;
        let mut out = Vec::new();
        for round in 0..50 {
            let batch: Vec<Item> = (next_in..next_in + 3).map(item).collect();
            next_in += tx.push_slice(&batch).unwrap() as u64;
            out.clear();
            rx.pop_into(&mut out, 1 + round % 4).unwrap();
            for got in &out {
                assert_eq!(*got, item(next_out));
                next_out += 1;
            }
        }
        assert!(next_out > 50);
        assert_eq!(tx.tail(), next_in);
        assert_eq!(rx.head(), next_out);
    }

    #[test]
    fn full_ring_takes_nothing_more() {
        let (host, geo) = link(2);
        let mut tx = Producer::<_, Item>::attach(host.region(), geo).unwrap();
        assert_eq!(tx.push_slice(&[item(1), item(2), item(3)]).unwrap(), 2);
        assert_eq!(tx.push_slice(&[item(4)]).unwrap(), 0);
        assert_eq!(tx.free_cached(), 0);
    }

    #[test]
    fn corrupt_indices_are_typed_errors() {
        let (host, geo) = link(4);
        let mem = host.region();
        let mut tx = Producer::<_, Item>::attach(mem, geo).unwrap();
        let mut rx = Consumer::<_, Item>::attach(mem, geo).unwrap();
        tx.push_slice(&[item(0), item(1)]).unwrap();
        // A tail past head + capacity.
        mem.store(geo.tail, 1000, Ordering::Release);
        let e = rx.refresh().unwrap_err();
        assert_eq!(
            e,
            ProtocolError::CorruptIndex {
                ring: "link",
                index: "tail",
                observed: 1000,
                min: 0,
                max: 4
            }
        );
        let mut out = Vec::new();
        assert!(rx.pop_into(&mut out, 4).is_err());
        assert!(out.is_empty(), "nothing is read on a corrupt index");
        // A head that ran ahead of the tail.
        mem.store(geo.head, 3, Ordering::Release);
        assert!(matches!(
            tx.refresh(),
            Err(ProtocolError::CorruptIndex {
                index: "head",
                observed: 3,
                ..
            })
        ));
        // A head that went backwards (after a legal advance).
        mem.store(geo.tail, 2, Ordering::Release);
        mem.store(geo.head, 2, Ordering::Release);
        assert_eq!(tx.refresh().unwrap(), 4);
        mem.store(geo.head, 1, Ordering::Release);
        assert!(tx.refresh().is_err());
        // u64::MAX (a typical garbage value) is refused too.
        mem.store(geo.head, u64::MAX, Ordering::Release);
        assert!(tx.refresh().is_err());
    }

    #[test]
    fn attach_checks_geometry_and_indices() {
        let (host, geo) = link(4);
        let bad = RingGeometry { slot_size: 8, ..geo };
        assert!(matches!(
            Producer::<_, Item>::attach(host.region(), bad),
            Err(AttachError::Layout(_))
        ));
        host.region().store(geo.tail, 9, Ordering::Relaxed);
        assert!(matches!(
            Consumer::<_, Item>::attach(host.region(), geo),
            Err(AttachError::Protocol(ProtocolError::CorruptIndex { .. }))
        ));
        let layout = RegionLayout::new(4, 16, 4, 16, 4).unwrap();
        let small = HostRegion::new(layout.out_slots + 32).unwrap();
        assert!(Producer::<_, Item>::attach(small.region(), layout.output_ring()).is_err());
    }

    #[test]
    fn indices_wrap_around_u64() {
        let (host, geo) = link(4);
        let mem = host.region();
        let start = u64::MAX - 5;
        mem.store(geo.tail, start, Ordering::Relaxed);
        mem.store(geo.head, start, Ordering::Relaxed);
        let mut tx = Producer::<_, Item>::attach(mem, geo).unwrap();
        let mut rx = Consumer::<_, Item>::attach(mem, geo).unwrap();
        let mut out = Vec::new();
        for i in 0..20 {
            assert_eq!(tx.push_slice(&[item(i)]).unwrap(), 1);
            out.clear();
            assert_eq!(rx.pop_into(&mut out, 4).unwrap(), 1);
            assert_eq!(out[0], item(i));
        }
        assert_eq!(rx.head(), start.wrapping_add(20));
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
