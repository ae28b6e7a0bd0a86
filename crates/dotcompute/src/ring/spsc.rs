//! [`SpscRing`]: a bounded, wait-free, single-producer / single-consumer ring.
//!
//! This is the lowest-latency transport tier. The same protocol and the same
//! `#[repr(C)]` [`ControlBlock`] layout are meant to be reused later in a
//! shared-memory file between processes and in host-mapped memory polled by a
//! persistent GPU kernel, so the control block contains only fixed-size plain
//! integers and atomics at documented offsets (see [`ControlBlock`]).
//!
//! # Model
//!
//! [`SpscRing::new`] returns a ([`Producer`], [`Consumer`]) pair. Each half is
//! [`Send`] but neither is [`Clone`] (nor [`Sync`]), so "single producer,
//! single consumer" is enforced by the type system rather than by
//! documentation. Every operation is wait-free: it completes in a bounded
//! number of steps whatever the other side does. A full ring refuses a push and
//! hands the value back ([`PushError::Full`]); it never overwrites.
//!
//! ```
//! use dotcompute::ring::spsc::{PushError, SpscRing};
//!
//! let (mut tx, mut rx) = SpscRing::<u64>::new(16)?;
//! let producer = std::thread::spawn(move || {
//!     for i in 0..1000 {
//!         let mut item = i;
//!         // Spin while full: the value comes back untouched.
//!         while let Err(PushError::Full(v)) = tx.push(item) {
//!             item = v;
//!             std::hint::spin_loop();
//!         }
//!     }
//! });
//! let mut expected = 0;
//! while expected < 1000 {
//!     if let Ok(v) = rx.pop() {
//!         assert_eq!(v, expected);
//!         expected += 1;
//!     }
//! }
//! producer.join().unwrap();
//! assert!(rx.is_abandoned() && rx.is_empty());
//! # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
//! ```
//!
//! # Protocol and invariants
//!
//! The ring has `capacity = 2^k` slots and two monotonically increasing `u64`
//! counters (they never wrap in practice; all arithmetic on them is
//! wrapping anyway): `head`, the position of the next item to read, and
//! `tail`, the position of the next slot to write. Slot of position `i` is
//! `slots[i & (capacity - 1)]`. Because the counters are unbounded rather than
//! masked, all `capacity` slots are usable (no "one empty slot" trick).
//!
//! 1. `head` is written only by the consumer, `tail` only by the producer.
//! 2. `0 <= tail - head <= capacity` at all times.
//! 3. The slot of position `i` holds an initialised `T` iff `head <= i < tail`.
//!    Positions `tail .. head + capacity` are owned exclusively by the
//!    producer (it may write them); positions `head .. tail` are owned
//!    exclusively by the consumer (it may read them).
//! 4. The producer writes a slot, *then* publishes it with a `Release` store
//!    of `tail`; the consumer observes `tail` with `Acquire` before reading
//!    the slot. Symmetrically the consumer moves the value out, *then*
//!    releases the slot with a `Release` store of `head`, which the producer
//!    observes with `Acquire` before overwriting the slot.
//! 5. Each side keeps its own index in a private field (it is the only
//!    writer, so that copy is authoritative) and a *cached copy* of the other
//!    side's index. The cache is stale only in the safe direction (it
//!    under-estimates free space / available items), so the shared cache line
//!    of the other side is read only when the cache says "full" / "empty".
//! 6. Each half sets its own `closed` flag (`Release`) when dropped, after its
//!    last index store, so [`Consumer::is_abandoned`] followed by an empty
//!    ring means no item will ever arrive again.
//! 7. When both halves are gone, the items still in `head .. tail` are dropped
//!    exactly once.
//! 8. A batch publishes once: [`Producer::push_iter`] writes its items, then
//!    stores `tail` once; [`Consumer::pop_each`] moves its items out, then
//!    stores `head` once. In between, the private index runs ahead of the
//!    shared one, which only delays the other side (it sees fewer items or
//!    less room: the safe direction of 5), never hands it a slot early; the
//!    store happens before the call returns, also when it unwinds. One store
//!    per batch instead of one per item keeps the index's cache line from
//!    moving between the two cores on every item while the other side polls
//!    it.

use std::fmt;
use std::mem::{self, MaybeUninit};

use thiserror::Error;

use super::sync::{Arc, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Size and alignment in bytes of each line of the [`ControlBlock`].
///
/// 128 rather than 64: on x86-64 the adjacent-line prefetcher pulls cache lines
/// in 128-byte pairs, Apple silicon has 128-byte lines and GPU L2 lines are
/// 128 bytes, so 128 keeps the producer's and consumer's indices from
/// false-sharing on every platform the ring is meant for. It is a fixed part
/// of the layout, not a per-target value.
pub const LINE_SIZE: usize = 128;

/// Magic number at offset 0 of a [`ControlBlock`]: the bytes `b"DCSP"` read as a
/// little-endian `u32`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"DCSP");

/// Version of the [`ControlBlock`] layout and protocol described in this module.
pub const LAYOUT_VERSION: u32 = 1;

/// Hard upper bound on the number of slots of a ring (2^30).
///
/// The effective bound for a given `T` may be lower, see [`max_capacity`].
pub const MAX_CAPACITY: usize = 1 << 30;

/// The largest capacity accepted for slots of type `T`: [`MAX_CAPACITY`], or
/// less if the slot array would not fit in `isize::MAX` bytes.
pub const fn max_capacity<T>() -> usize {
    let size = if mem::size_of::<T>() == 0 {
        1
    } else {
        mem::size_of::<T>()
    };
    let by_bytes = isize::MAX as usize / size;
    if by_bytes < MAX_CAPACITY {
        by_bytes
    } else {
        MAX_CAPACITY
    }
}

/// Why a ring could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// A capacity of zero was requested.
    #[error("ring capacity must be at least 1")]
    Zero,
    /// [`SpscRing::new`] only accepts powers of two
    /// (use [`SpscRing::with_min_capacity`] to round up).
    #[error("ring capacity {0} is not a power of two")]
    NotPowerOfTwo(usize),
    /// The requested capacity exceeds [`max_capacity`] for this slot type.
    #[error("ring capacity {requested} exceeds the maximum of {max} slots")]
    TooLarge {
        /// Capacity asked for.
        requested: usize,
        /// Largest capacity accepted for this slot type.
        max: usize,
    },
    /// The allocator could not provide the slot array.
    #[error("could not allocate {bytes} bytes for the ring's slots")]
    AllocationFailed {
        /// Size of the failed allocation.
        bytes: usize,
    },
}

/// [`Producer::push`] failed; the value is handed back.
#[derive(Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PushError<T> {
    /// The ring is full; nothing was overwritten.
    #[error("ring is full")]
    Full(T),
}

impl<T> PushError<T> {
    /// Returns the value that could not be pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(value) => value,
        }
    }
}

// Manual impl so `T` need not be `Debug` (like `std::sync::mpsc::TrySendError`).
impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

/// [`Consumer::pop`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PopError {
    /// The ring is empty.
    #[error("ring is empty")]
    Empty,
}

/// Read-only first line of the control block, written once at creation.
#[repr(C, align(128))]
struct HeaderLine {
    magic: u32,
    version: u32,
    capacity: u64,
    slot_size: u64,
}

/// Line written only by the consumer.
#[repr(C, align(128))]
struct ConsumerLine {
    head: AtomicU64,
    closed: AtomicU32,
}

/// Line written only by the producer.
#[repr(C, align(128))]
struct ProducerLine {
    tail: AtomicU64,
    closed: AtomicU32,
}

/// The ring's shared control block: three [`LINE_SIZE`]-byte lines, `#[repr(C)]`.
///
/// | offset | size | field             | written by                    |
/// |-------:|-----:|-------------------|-------------------------------|
/// |      0 |    4 | `magic` ([`MAGIC`]) | creator, once               |
/// |      4 |    4 | `version` ([`LAYOUT_VERSION`]) | creator, once    |
/// |      8 |    8 | `capacity` (slots, power of two) | creator, once  |
/// |     16 |    8 | `slot_size` (`size_of::<T>()`) | creator, once    |
/// |    128 |    8 | `head` (atomic `u64`) | consumer only             |
/// |    136 |    4 | `consumer_closed` (atomic `u32`, 0/1) | consumer only |
/// |    256 |    8 | `tail` (atomic `u64`) | producer only             |
/// |    264 |    4 | `producer_closed` (atomic `u32`, 0/1) | producer only |
///
/// Total size 384 bytes, alignment 128; all integers are native-endian (the
/// magic reads as `b"DCSP"` on little-endian hosts). The gaps are padding. The
/// slot array is not part of the control block; in-process it is a separate
/// allocation, in shared memory it will follow the control block.
///
/// The accessors are diagnostic snapshots; the protocol itself is driven by
/// [`Producer`] and [`Consumer`].
///
/// ```
/// use dotcompute::ring::spsc::{ControlBlock, SpscRing, MAGIC};
///
/// assert_eq!(std::mem::size_of::<ControlBlock>(), ControlBlock::SIZE);
/// let (mut tx, _rx) = SpscRing::<u32>::new(8)?;
/// tx.push(7).unwrap();
/// let cb = tx.control_block();
/// assert_eq!((cb.magic(), cb.capacity(), cb.slot_size()), (MAGIC, 8, 4));
/// assert_eq!((cb.head(), cb.tail()), (0, 1));
/// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
/// ```
#[repr(C)]
pub struct ControlBlock {
    header: HeaderLine,
    consumer: ConsumerLine,
    producer: ProducerLine,
}

impl ControlBlock {
    /// Size of the control block in bytes.
    pub const SIZE: usize = 3 * LINE_SIZE;
    /// Offset of the `magic` field.
    pub const MAGIC_OFFSET: usize = 0;
    /// Offset of the `version` field.
    pub const VERSION_OFFSET: usize = 4;
    /// Offset of the `capacity` field.
    pub const CAPACITY_OFFSET: usize = 8;
    /// Offset of the `slot_size` field.
    pub const SLOT_SIZE_OFFSET: usize = 16;
    /// Offset of the consumer's `head` index.
    pub const HEAD_OFFSET: usize = LINE_SIZE;
    /// Offset of the consumer's `closed` flag.
    pub const CONSUMER_CLOSED_OFFSET: usize = LINE_SIZE + 8;
    /// Offset of the producer's `tail` index.
    pub const TAIL_OFFSET: usize = 2 * LINE_SIZE;
    /// Offset of the producer's `closed` flag.
    pub const PRODUCER_CLOSED_OFFSET: usize = 2 * LINE_SIZE + 8;

    fn new(capacity: u64, slot_size: u64) -> Self {
        Self {
            header: HeaderLine {
                magic: MAGIC,
                version: LAYOUT_VERSION,
                capacity,
                slot_size,
            },
            consumer: ConsumerLine {
                head: AtomicU64::new(0),
                closed: AtomicU32::new(0),
            },
            producer: ProducerLine {
                tail: AtomicU64::new(0),
                closed: AtomicU32::new(0),
            },
        }
    }

    /// The magic number, always [`MAGIC`] for a valid block.
    pub fn magic(&self) -> u32 {
        self.header.magic
    }

    /// The layout version, [`LAYOUT_VERSION`].
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.header.capacity
    }

    /// Size in bytes of one slot (`size_of::<T>()`).
    pub fn slot_size(&self) -> u64 {
        self.header.slot_size
    }

    /// Snapshot of the consumer's `head` counter (items ever popped).
    pub fn head(&self) -> u64 {
        self.consumer.head.load(Ordering::Acquire)
    }

    /// Snapshot of the producer's `tail` counter (items ever pushed).
    pub fn tail(&self) -> u64 {
        self.producer.tail.load(Ordering::Acquire)
    }

    /// Whether the producer half has been dropped.
    pub fn is_producer_closed(&self) -> bool {
        self.producer.closed.load(Ordering::Acquire) != 0
    }

    /// Whether the consumer half has been dropped.
    pub fn is_consumer_closed(&self) -> bool {
        self.consumer.closed.load(Ordering::Acquire) != 0
    }
}

impl fmt::Debug for ControlBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlBlock")
            .field("capacity", &self.capacity())
            .field("slot_size", &self.slot_size())
            .field("head", &self.head())
            .field("tail", &self.tail())
            .field("producer_closed", &self.is_producer_closed())
            .field("consumer_closed", &self.is_consumer_closed())
            .finish()
    }
}

// Compile-time check that the documented layout is the real one.
#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ControlBlock>() == ControlBlock::SIZE);
    assert!(align_of::<ControlBlock>() == LINE_SIZE);
    assert!(offset_of!(ControlBlock, header) + offset_of!(HeaderLine, magic) == 0);
    assert!(offset_of!(ControlBlock, header) + offset_of!(HeaderLine, version) == ControlBlock::VERSION_OFFSET);
    assert!(offset_of!(ControlBlock, header) + offset_of!(HeaderLine, capacity) == ControlBlock::CAPACITY_OFFSET);
    assert!(offset_of!(ControlBlock, header) + offset_of!(HeaderLine, slot_size) == ControlBlock::SLOT_SIZE_OFFSET);
    assert!(offset_of!(ControlBlock, consumer) + offset_of!(ConsumerLine, head) == ControlBlock::HEAD_OFFSET);
    assert!(
        offset_of!(ControlBlock, consumer) + offset_of!(ConsumerLine, closed) == ControlBlock::CONSUMER_CLOSED_OFFSET
    );
    assert!(offset_of!(ControlBlock, producer) + offset_of!(ProducerLine, tail) == ControlBlock::TAIL_OFFSET);
    assert!(
        offset_of!(ControlBlock, producer) + offset_of!(ProducerLine, closed) == ControlBlock::PRODUCER_CLOSED_OFFSET
    );
};

type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// Shared storage of a single-producer / single-consumer ring.
///
/// Never held directly: [`SpscRing::new`] returns the two halves, which share
/// the storage; it is freed (and the items still in it dropped) when both are
/// gone. See the [module documentation](self) for the protocol.
pub struct SpscRing<T> {
    control: ControlBlock,
    slots: Box<[Slot<T>]>,
}

impl<T> SpscRing<T> {
    /// Creates a ring of exactly `capacity` slots, which must be a power of two
    /// between 1 and [`max_capacity::<T>()`](max_capacity), and returns its two
    /// halves. All `capacity` slots are usable.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`], [`CapacityError::NotPowerOfTwo`],
    /// [`CapacityError::TooLarge`], or [`CapacityError::AllocationFailed`].
    ///
    /// ```
    /// use dotcompute::ring::spsc::{CapacityError, SpscRing};
    ///
    /// let (mut tx, mut rx) = SpscRing::<String>::new(4)?;
    /// tx.push("hello".to_owned()).unwrap();
    /// assert_eq!(rx.pop().as_deref(), Ok("hello"));
    ///
    /// assert_eq!(SpscRing::<u8>::new(0).unwrap_err(), CapacityError::Zero);
    /// assert_eq!(SpscRing::<u8>::new(6).unwrap_err(), CapacityError::NotPowerOfTwo(6));
    /// assert!(matches!(SpscRing::<u8>::new(1 << 31), Err(CapacityError::TooLarge { .. })));
    /// # Ok::<(), CapacityError>(())
    /// ```
    // Returning the two halves (the rtrb model) is the point of this constructor.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
        if capacity == 0 {
            return Err(CapacityError::Zero);
        }
        if !capacity.is_power_of_two() {
            return Err(CapacityError::NotPowerOfTwo(capacity));
        }
        let max = max_capacity::<T>();
        if capacity > max {
            return Err(CapacityError::TooLarge {
                requested: capacity,
                max,
            });
        }
        let mut slots: Vec<Slot<T>> = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|_| CapacityError::AllocationFailed {
                bytes: capacity.saturating_mul(mem::size_of::<Slot<T>>()),
            })?;
        slots.extend((0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())));

        // Lossless: capacity <= MAX_CAPACITY = 2^30 and a size fits in u64.
        let ring = Arc::new(SpscRing {
            control: ControlBlock::new(capacity as u64, mem::size_of::<T>() as u64),
            slots: slots.into_boxed_slice(),
        });
        let mask = capacity as u64 - 1;
        let producer = Producer {
            ring: Arc::clone(&ring),
            tail: 0,
            cached_head: 0,
            mask,
        };
        let consumer = Consumer {
            ring,
            head: 0,
            cached_tail: 0,
            mask,
        };
        Ok((producer, consumer))
    }

    /// Like [`SpscRing::new`], but rounds `min_capacity` up to the next power of
    /// two instead of rejecting it.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`], [`CapacityError::TooLarge`] (also when rounding
    /// up overflows), or [`CapacityError::AllocationFailed`].
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (tx, rx) = SpscRing::<u64>::with_min_capacity(100)?;
    /// assert_eq!((tx.capacity(), rx.capacity()), (128, 128));
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    pub fn with_min_capacity(min_capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
        if min_capacity == 0 {
            return Err(CapacityError::Zero);
        }
        let capacity = min_capacity
            .checked_next_power_of_two()
            .ok_or(CapacityError::TooLarge {
                requested: min_capacity,
                max: max_capacity::<T>(),
            })?;
        Self::new(capacity)
    }

    #[inline(always)]
    fn slot(&self, position: u64, mask: u64) -> &Slot<T> {
        // `position & mask < capacity <= 2^30`, so the cast is lossless and the
        // index is in bounds (the check cannot fail).
        &self.slots[(position & mask) as usize]
    }

    /// Moves `value` into the slot of `position`.
    ///
    /// # Safety
    ///
    /// Only the producer may call this, for a position in its owned region
    /// `tail <= position < head + capacity` (invariant 3): that slot is
    /// uninitialised and the consumer does not access it until `tail` is
    /// published past `position`.
    #[inline(always)]
    unsafe fn write(&self, position: u64, mask: u64, value: T) {
        // SAFETY: by this function's contract the producer has exclusive access
        // to this slot, and the slot is uninitialised, so writing without
        // dropping the previous contents neither races nor leaks.
        self.slot(position, mask)
            .with_mut(|slot| unsafe { slot.write(MaybeUninit::new(value)) });
    }

    /// Moves the value out of the slot of `position`, leaving it logically
    /// uninitialised.
    ///
    /// # Safety
    ///
    /// Only the consumer may call this, for a position in its owned region
    /// `head <= position < tail` observed with `Acquire` (invariant 3), and it
    /// must advance `head` past `position` before reading the slot again.
    #[inline(always)]
    unsafe fn read(&self, position: u64, mask: u64) -> T {
        // SAFETY: by this function's contract the slot is initialised (the
        // producer's write happens-before our Acquire load of `tail`) and the
        // consumer has exclusive access to it; the value is moved out exactly
        // once because `head` is advanced before the slot is read again.
        self.slot(position, mask)
            .with(|slot| unsafe { slot.read().assume_init() })
    }

    /// Copies `src` into the slots of positions `position .. position + src.len()`.
    ///
    /// # Safety
    ///
    /// As [`SpscRing::write`] for every position of the range.
    #[inline(always)]
    unsafe fn write_copy(&self, position: u64, mask: u64, src: &[T])
    where
        T: Copy,
    {
        let start = (position & mask) as usize;
        let first = src.len().min(self.slots.len() - start);
        let (a, b) = src.split_at(first);
        for (slot, &value) in self.slots[start..start + first].iter().zip(a) {
            // SAFETY: as in `write`, the caller owns every slot of the range.
            slot.with_mut(|slot| unsafe { slot.write(MaybeUninit::new(value)) });
        }
        for (slot, &value) in self.slots[..b.len()].iter().zip(b) {
            // SAFETY: as in `write`, the caller owns every slot of the range.
            slot.with_mut(|slot| unsafe { slot.write(MaybeUninit::new(value)) });
        }
    }

    /// Copies the values of positions `position .. position + dst.len()` into `dst`.
    ///
    /// # Safety
    ///
    /// As [`SpscRing::read`] for every position of the range. `T: Copy`, so the
    /// slots need no dropping afterwards.
    #[inline(always)]
    unsafe fn read_copy(&self, position: u64, mask: u64, dst: &mut [T])
    where
        T: Copy,
    {
        let start = (position & mask) as usize;
        let first = dst.len().min(self.slots.len() - start);
        let (a, b) = dst.split_at_mut(first);
        for (slot, out) in self.slots[start..start + first].iter().zip(a) {
            // SAFETY: as in `read`, the caller owns every (initialised) slot of
            // the range.
            *out = slot.with(|slot| unsafe { slot.read().assume_init() });
        }
        for (slot, out) in self.slots[..b.len()].iter().zip(b) {
            // SAFETY: as in `read`, the caller owns every (initialised) slot of
            // the range.
            *out = slot.with(|slot| unsafe { slot.read().assume_init() });
        }
    }
}

impl<T> Drop for SpscRing<T> {
    fn drop(&mut self) {
        if !mem::needs_drop::<T>() {
            return;
        }
        // Both halves are gone (we are dropped through the last `Arc`, whose
        // drop synchronises with theirs), so the indices are final.
        let head = self.control.consumer.head.load(Ordering::Acquire);
        let tail = self.control.producer.tail.load(Ordering::Acquire);
        let mask = self.control.header.capacity - 1;
        let mut position = head;
        while position != tail {
            // SAFETY: `&mut self` means no producer or consumer can touch the
            // slots any more; by invariant 3 the slots of `head .. tail` hold
            // initialised values, and each position is visited once, so every
            // remaining item is dropped exactly once.
            self.slot(position, mask)
                .with_mut(|slot| unsafe { (*slot).assume_init_drop() });
            position = position.wrapping_add(1);
        }
    }
}

/// The writing half of an [`SpscRing`]. `Send`, not `Clone`.
pub struct Producer<T> {
    ring: Arc<SpscRing<T>>,
    /// Authoritative copy of `tail` (only this half writes it).
    tail: u64,
    /// Last observed `head`; never ahead of the real one.
    cached_head: u64,
    mask: u64,
}

// SAFETY: a `Producer` only ever writes slots in the producer-owned region and
// hands values of type `T` to the consumer thread, so it can move to another
// thread when `T: Send`. Shared state is accessed only through atomics and the
// ownership protocol of the module docs. `Sync` is deliberately not
// implemented (the mutating API takes `&mut self` anyway).
unsafe impl<T: Send> Send for Producer<T> {}

impl<T> Producer<T> {
    /// Attempts to push `value`.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] with `value` handed back if no slot is free; the
    /// ring is never overwritten.
    ///
    /// ```
    /// use dotcompute::ring::spsc::{PushError, SpscRing};
    ///
    /// let (mut tx, mut rx) = SpscRing::new(2)?;
    /// tx.push(1).unwrap();
    /// tx.push(2).unwrap();
    /// assert_eq!(tx.push(3), Err(PushError::Full(3)));
    /// assert_eq!(rx.pop(), Ok(1));
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.tail.wrapping_sub(self.cached_head) > self.mask {
            self.cached_head = self.ring.control.consumer.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) > self.mask {
                return Err(PushError::Full(value));
            }
        }
        // SAFETY: we are the producer and `tail - head < capacity` with `head`
        // observed by Acquire, so the slot of `tail` is producer-owned.
        unsafe { self.ring.write(self.tail, self.mask, value) };
        self.tail = self.tail.wrapping_add(1);
        self.ring.control.producer.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Pushes as many leading elements of `values` as fit and returns how many
    /// were pushed (0 when full). One index update for the whole batch.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(4)?;
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = [0; 8];
    /// assert_eq!(rx.pop_into(&mut out), 4);
    /// assert_eq!(&out[..4], &[1, 2, 3, 4]);
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn push_slice(&mut self, values: &[T]) -> usize
    where
        T: Copy,
    {
        let capacity = self.mask + 1;
        // `free <= capacity <= 2^30`, so the casts below are lossless.
        let mut free = capacity - self.tail.wrapping_sub(self.cached_head);
        if (free as usize) < values.len() {
            self.cached_head = self.ring.control.consumer.head.load(Ordering::Acquire);
            free = capacity - self.tail.wrapping_sub(self.cached_head);
        }
        let n = values.len().min(free as usize);
        if n == 0 {
            return 0;
        }
        // SAFETY: we are the producer and `n <= capacity - (tail - head)` with
        // `head` observed by Acquire, so `tail .. tail + n` is producer-owned.
        unsafe { self.ring.write_copy(self.tail, self.mask, &values[..n]) };
        self.tail = self.tail.wrapping_add(n as u64);
        self.ring.control.producer.tail.store(self.tail, Ordering::Release);
        n
    }

    /// Pushes items pulled from `values` while there is room, then publishes
    /// them with one index update; returns how many were pushed. Works for
    /// any `T`: an item is pulled only when a slot is free for it, so what
    /// does not fit stays in the iterator (pass `iter.by_ref()` to keep it).
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(4)?;
    /// let mut words = ["a", "b", "c", "d", "e"].into_iter().map(String::from);
    /// assert_eq!(tx.push_iter(words.by_ref()), 4);
    /// assert_eq!(words.next().as_deref(), Some("e"));
    /// let got: Vec<String> = rx.pop_iter(8).collect();
    /// assert_eq!(got, ["a", "b", "c", "d"]);
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    pub fn push_iter(&mut self, values: impl IntoIterator<Item = T>) -> usize {
        /// Publishes the private `tail` when dropped, also if `values`
        /// panics half-way: what was written is then the ring's.
        struct Publish<'a, T>(&'a mut Producer<T>, u64);
        impl<T> Drop for Publish<'_, T> {
            fn drop(&mut self) {
                if self.0.tail != self.1 {
                    self.0.ring.control.producer.tail.store(self.0.tail, Ordering::Release);
                }
            }
        }
        let capacity = self.mask + 1;
        let mut values = values.into_iter();
        let start = self.tail;
        let mut free = capacity - self.tail.wrapping_sub(self.cached_head);
        let want = values.size_hint().0.max(1) as u64;
        if free < want {
            self.cached_head = self.ring.control.consumer.head.load(Ordering::Acquire);
            free = capacity - self.tail.wrapping_sub(self.cached_head);
        }
        let publish = Publish(self, start);
        for _ in 0..free {
            let Some(value) = values.next() else { break };
            let producer = &mut *publish.0;
            // SAFETY: we are the producer and fewer than `free` slots past
            // `tail` have been written, with `head` observed by Acquire, so
            // the slot of `tail` is producer-owned; `tail` is published by
            // `publish` when it is dropped.
            unsafe { producer.ring.write(producer.tail, producer.mask, value) };
            producer.tail = producer.tail.wrapping_add(1);
        }
        let pushed = publish.0.tail.wrapping_sub(start);
        drop(publish);
        // At most `capacity <= 2^30`: lossless.
        pushed as usize
    }

    /// Whether a [`push`](Producer::push) would go in now. Like `push`, it
    /// reads the consumer's index only when the last one it saw leaves no
    /// room, so it does not pull the consumer's cache line on every call
    /// (unlike [`is_full`](Producer::is_full), which always reads it).
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(1)?;
    /// assert!(tx.has_room());
    /// tx.push(7).unwrap();
    /// assert!(!tx.has_room());
    /// rx.pop().unwrap();
    /// assert!(tx.has_room());
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn has_room(&mut self) -> bool {
        self.room_for(1) == 1
    }

    /// How many of `wanted` pushes would go in now: `wanted`, or the free
    /// slots if fewer. Reads the consumer's index only when the last one
    /// seen frees fewer than `wanted` slots.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(4)?;
    /// assert_eq!(tx.room_for(3), 3);
    /// assert_eq!(tx.push_slice(&[1, 2, 3]), 3);
    /// assert_eq!(tx.room_for(3), 1);
    /// rx.pop().unwrap();
    /// assert_eq!(tx.room_for(3), 2);
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn room_for(&mut self, wanted: usize) -> usize {
        let capacity = self.mask + 1;
        // `free <= capacity <= 2^30`, so the casts below are lossless.
        let mut free = capacity - self.tail.wrapping_sub(self.cached_head);
        if (free as usize) < wanted {
            self.cached_head = self.ring.control.consumer.head.load(Ordering::Acquire);
            free = capacity - self.tail.wrapping_sub(self.cached_head);
        }
        wanted.min(free as usize)
    }

    /// Number of slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        (self.mask + 1) as usize
    }

    /// Number of free slots right now (a lower bound: the consumer may free
    /// more at any time).
    #[inline]
    pub fn slots(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Number of items in the ring right now (an upper bound: the consumer may
    /// take some at any time).
    #[inline]
    pub fn len(&self) -> usize {
        let head = self.ring.control.consumer.head.load(Ordering::Acquire);
        self.tail.wrapping_sub(head) as usize
    }

    /// Whether the ring is empty right now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full right now.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.slots() == 0
    }

    /// Whether the [`Consumer`] has been dropped. Pushes still succeed while
    /// there is room; the items are dropped with the ring.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (tx, rx) = SpscRing::<u8>::new(1)?;
    /// assert!(!tx.is_abandoned());
    /// drop(rx);
    /// assert!(tx.is_abandoned());
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn is_abandoned(&self) -> bool {
        self.ring.control.is_consumer_closed()
    }

    /// The shared control block (diagnostics; see [`ControlBlock`]).
    pub fn control_block(&self) -> &ControlBlock {
        &self.ring.control
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Released after our last `tail` store (invariant 6).
        self.ring.control.producer.closed.store(1, Ordering::Release);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("abandoned", &self.is_abandoned())
            .finish()
    }
}

/// The reading half of an [`SpscRing`]. `Send`, not `Clone`.
pub struct Consumer<T> {
    ring: Arc<SpscRing<T>>,
    /// Authoritative copy of `head` (only this half writes it).
    head: u64,
    /// Last observed `tail`; never ahead of the real one.
    cached_tail: u64,
    mask: u64,
}

// SAFETY: a `Consumer` only ever reads slots in the consumer-owned region,
// taking ownership of values of type `T` produced on another thread, so it can
// move to another thread when `T: Send`. Shared state is accessed only through
// atomics and the ownership protocol of the module docs. `Sync` is
// deliberately not implemented.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    /// Attempts to pop the oldest item.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if there is none.
    ///
    /// ```
    /// use dotcompute::ring::spsc::{PopError, SpscRing};
    ///
    /// let (mut tx, mut rx) = SpscRing::new(2)?;
    /// assert_eq!(rx.pop(), Err(PopError::Empty));
    /// tx.push('a').unwrap();
    /// assert_eq!(rx.pop(), Ok('a'));
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopError> {
        if self.head == self.cached_tail {
            self.cached_tail = self.ring.control.producer.tail.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return Err(PopError::Empty);
            }
        }
        // SAFETY: we are the consumer and `head < tail` with `tail` observed by
        // Acquire, so the slot of `head` is initialised and consumer-owned;
        // `head` is advanced right below.
        let value = unsafe { self.ring.read(self.head, self.mask) };
        self.give_back_one();
        Ok(value)
    }

    /// Advances `head` past the slot just read and publishes it (Release:
    /// the read happens-before the producer's reuse of the slot).
    #[inline]
    fn give_back_one(&mut self) {
        self.head = self.head.wrapping_add(1);
        self.ring.control.consumer.head.store(self.head, Ordering::Release);
    }

    /// Pops the oldest item and hands it to `f` while its slot is still
    /// held, returning what `f` returns. For moving a large item straight
    /// into its destination (`|item| *place = Some(item)`): with [`pop`](Self::pop)
    /// the item must first be copied out of the slot before the slot is
    /// given back, then moved again by the caller; here the slot is given
    /// back after `f`, so the compiler can copy it once. The slot is given
    /// back even if `f` panics (the item is then `f`'s to drop).
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if there is none (`f` is not called).
    ///
    /// ```
    /// use dotcompute::ring::spsc::{PopError, SpscRing};
    ///
    /// let (mut tx, mut rx) = SpscRing::new(2)?;
    /// let mut place = None;
    /// assert_eq!(rx.pop_with(|s: String| place = Some(s)), Err(PopError::Empty));
    /// tx.push("a".to_string()).unwrap();
    /// assert_eq!(rx.pop_with(|s| place = Some(s)), Ok(()));
    /// assert_eq!(place.as_deref(), Some("a"));
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn pop_with<R>(&mut self, f: impl FnOnce(T) -> R) -> Result<R, PopError> {
        if self.head == self.cached_tail {
            self.cached_tail = self.ring.control.producer.tail.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return Err(PopError::Empty);
            }
        }
        /// Gives the slot of `head` back to the producer when dropped: after
        /// `f` returns, or while it unwinds (the item has been moved out, so
        /// the slot must never be read again).
        struct Release<'a, T>(&'a mut Consumer<T>);
        impl<T> Drop for Release<'_, T> {
            fn drop(&mut self) {
                self.0.give_back_one();
            }
        }
        let release = Release(self);
        // SAFETY: we are the consumer and `head < tail` with `tail` observed by
        // Acquire, so the slot of `head` is initialised and consumer-owned;
        // `release` advances `head` past it whatever `f` does, so it is moved
        // out exactly once.
        let value = unsafe { release.0.ring.read(release.0.head, release.0.mask) };
        let out = f(value);
        drop(release);
        Ok(out)
    }

    /// Pops up to `dst.len()` items into the front of `dst` and returns how
    /// many were popped (0 when empty). One index update for the whole batch.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(8)?;
    /// tx.push_slice(&[1u32, 2, 3]);
    /// let mut buf = [0u32; 2];
    /// assert_eq!(rx.pop_into(&mut buf), 2);
    /// assert_eq!(buf, [1, 2]);
    /// assert_eq!(rx.pop_into(&mut buf), 1);
    /// assert_eq!(buf[0], 3);
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn pop_into(&mut self, dst: &mut [T]) -> usize
    where
        T: Copy,
    {
        // `available <= capacity <= 2^30`, so the casts below are lossless.
        let mut available = self.cached_tail.wrapping_sub(self.head);
        if (available as usize) < dst.len() {
            self.cached_tail = self.ring.control.producer.tail.load(Ordering::Acquire);
            available = self.cached_tail.wrapping_sub(self.head);
        }
        let n = dst.len().min(available as usize);
        if n == 0 {
            return 0;
        }
        // SAFETY: we are the consumer and `head + n <= tail` with `tail`
        // observed by Acquire, so `head .. head + n` is initialised and
        // consumer-owned; `head` is advanced right below.
        unsafe { self.ring.read_copy(self.head, self.mask, &mut dst[..n]) };
        self.head = self.head.wrapping_add(n as u64);
        self.ring.control.consumer.head.store(self.head, Ordering::Release);
        n
    }

    /// Returns an iterator that pops up to `limit` items: those available when
    /// it is created (items pushed later are left for the next call). Works
    /// for any `T`; each item is released to the producer as it is yielded,
    /// and items not yet yielded when the iterator is dropped stay in the ring.
    /// ([`pop_each`](Consumer::pop_each) releases a batch with one index
    /// store.)
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(4)?;
    /// for s in ["a", "b", "c"] {
    ///     tx.push(s.to_owned()).unwrap();
    /// }
    /// let got: Vec<String> = rx.pop_iter(2).collect();
    /// assert_eq!(got, ["a", "b"]);
    /// assert_eq!(rx.len(), 1);
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn pop_iter(&mut self, limit: usize) -> PopIter<'_, T> {
        let mut available = self.cached_tail.wrapping_sub(self.head);
        if (available as usize) < limit {
            self.cached_tail = self.ring.control.producer.tail.load(Ordering::Acquire);
            available = self.cached_tail.wrapping_sub(self.head);
        }
        let remaining = limit.min(available as usize);
        PopIter {
            consumer: self,
            remaining,
        }
    }

    /// Moves up to `limit` items out, oldest first, handing each to `f`,
    /// then releases their slots to the producer with one index update;
    /// returns how many. Like [`pop_iter`](Consumer::pop_iter) it takes only
    /// the items available when it starts. Should `f` panic, the items it
    /// was handed are gone from the ring and the rest stay.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(4)?;
    /// for s in ["a", "b", "c"] {
    ///     tx.push(s.to_owned()).unwrap();
    /// }
    /// let mut got = Vec::new();
    /// assert_eq!(rx.pop_each(2, |s| got.push(s)), 2);
    /// assert_eq!(got, ["a", "b"]);
    /// assert_eq!(rx.len(), 1);
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    pub fn pop_each(&mut self, limit: usize, mut f: impl FnMut(T)) -> usize {
        /// Publishes the private `head` when dropped (also on unwind).
        struct Release<'a, T>(&'a mut Consumer<T>, u64);
        impl<T> Drop for Release<'_, T> {
            fn drop(&mut self) {
                if self.0.head != self.1 {
                    self.0.ring.control.consumer.head.store(self.0.head, Ordering::Release);
                }
            }
        }
        let mut available = self.cached_tail.wrapping_sub(self.head);
        if (available as usize) < limit {
            self.cached_tail = self.ring.control.producer.tail.load(Ordering::Acquire);
            available = self.cached_tail.wrapping_sub(self.head);
        }
        let n = limit.min(available as usize);
        let start = self.head;
        let release = Release(self, start);
        for _ in 0..n {
            let consumer = &mut *release.0;
            // SAFETY: fewer than `n` items past the `tail` observed by
            // Acquire above have been taken, so the slot of `head` is
            // initialised and consumer-owned; the private `head` moves past
            // it before `f` sees the value, so it is moved out once, and the
            // shared `head` (published by `release`) only trails it
            // (invariant 8).
            let value = unsafe { consumer.ring.read(consumer.head, consumer.mask) };
            consumer.head = consumer.head.wrapping_add(1);
            f(value);
        }
        drop(release);
        n
    }

    /// Number of slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        (self.mask + 1) as usize
    }

    /// Number of items this half knows are in the ring: those up to the
    /// producer's index as last read (by a pop or a batch), without reading
    /// it again. A lower bound of [`len`](Consumer::len), and an occupancy
    /// the ring really had: right after a pop that had to re-read the index,
    /// `observed_len() + 1` is the occupancy at that read.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(4)?;
    /// tx.push_slice(&[1, 2, 3]);
    /// assert_eq!(rx.observed_len(), 0); // not read yet
    /// assert_eq!(rx.pop(), Ok(1)); // reads the producer's index: 3 queued
    /// assert_eq!(rx.observed_len(), 2);
    /// tx.push(4).unwrap();
    /// assert_eq!(rx.observed_len(), 2); // until the next read
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn observed_len(&self) -> usize {
        // `<= capacity <= 2^30`: lossless.
        self.cached_tail.wrapping_sub(self.head) as usize
    }

    /// Number of items available to pop right now (a lower bound: the producer
    /// may add more at any time). Same as [`Consumer::len`].
    #[inline]
    pub fn slots(&self) -> usize {
        self.len()
    }

    /// Number of items in the ring right now (a lower bound).
    #[inline]
    pub fn len(&self) -> usize {
        let tail = self.ring.control.producer.tail.load(Ordering::Acquire);
        tail.wrapping_sub(self.head) as usize
    }

    /// Whether the ring is empty right now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full right now.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Whether the [`Producer`] has been dropped. If it has and the ring is
    /// (then) empty, no item will ever arrive again.
    ///
    /// ```
    /// use dotcompute::ring::spsc::SpscRing;
    ///
    /// let (mut tx, mut rx) = SpscRing::new(2)?;
    /// tx.push(1).unwrap();
    /// drop(tx);
    /// assert!(rx.is_abandoned());
    /// assert_eq!(rx.pop(), Ok(1)); // items pushed before the drop remain
    /// assert!(rx.is_empty());
    /// # Ok::<(), dotcompute::ring::spsc::CapacityError>(())
    /// ```
    #[inline]
    pub fn is_abandoned(&self) -> bool {
        self.ring.control.is_producer_closed()
    }

    /// The shared control block (diagnostics; see [`ControlBlock`]).
    pub fn control_block(&self) -> &ControlBlock {
        &self.ring.control
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Released after our last `head` store (invariant 6).
        self.ring.control.consumer.closed.store(1, Ordering::Release);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("abandoned", &self.is_abandoned())
            .finish()
    }
}

/// Iterator returned by [`Consumer::pop_iter`].
#[derive(Debug)]
pub struct PopIter<'a, T> {
    consumer: &'a mut Consumer<T>,
    remaining: usize,
}

impl<T> Iterator for PopIter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let consumer = &mut *self.consumer;
        // SAFETY: `remaining` counted only items below the `tail` observed by
        // Acquire in `pop_iter`, so the slot of `head` is initialised and
        // consumer-owned (we hold `&mut Consumer`); `head` is advanced right
        // below, item by item, so forgetting the iterator cannot duplicate an
        // item.
        let value = unsafe { consumer.ring.read(consumer.head, consumer.mask) };
        consumer.give_back_one();
        Some(value)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for PopIter<'_, T> {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn control_block_offsets_match_docs() {
        assert_eq!(mem::size_of::<ControlBlock>(), 384);
        assert_eq!(mem::align_of::<ControlBlock>(), 128);
        assert_eq!(ControlBlock::HEAD_OFFSET, 128);
        assert_eq!(ControlBlock::CONSUMER_CLOSED_OFFSET, 136);
        assert_eq!(ControlBlock::TAIL_OFFSET, 256);
        assert_eq!(ControlBlock::PRODUCER_CLOSED_OFFSET, 264);
        assert_eq!(mem::offset_of!(ControlBlock, consumer), 128);
        assert_eq!(mem::offset_of!(ControlBlock, producer), 256);
    }

    #[test]
    fn control_block_is_aligned_in_the_shared_allocation() {
        let (tx, _rx) = SpscRing::<u8>::new(4).unwrap();
        let addr = tx.control_block() as *const ControlBlock as usize;
        assert_eq!(addr % LINE_SIZE, 0);
        assert_eq!(tx.control_block().magic(), MAGIC);
        assert_eq!(tx.control_block().version(), LAYOUT_VERSION);
    }

    #[test]
    fn halves_are_send() {
        fn assert_send<S: Send>() {}
        assert_send::<Producer<String>>();
        assert_send::<Consumer<String>>();
    }

    #[test]
    fn capacity_errors() {
        assert_eq!(SpscRing::<u8>::new(0).unwrap_err(), CapacityError::Zero);
        assert_eq!(SpscRing::<u8>::new(3).unwrap_err(), CapacityError::NotPowerOfTwo(3));
        assert_eq!(
            SpscRing::<u8>::new(MAX_CAPACITY * 2).unwrap_err(),
            CapacityError::TooLarge {
                requested: MAX_CAPACITY * 2,
                max: MAX_CAPACITY
            }
        );
        // Byte-size bound for huge slots (never instantiated).
        #[cfg(target_pointer_width = "64")]
        {
            type Huge = [u8; 1 << 40];
            let max = max_capacity::<Huge>();
            assert_eq!(max, (isize::MAX as usize) >> 40);
            assert_eq!(
                SpscRing::<Huge>::new(MAX_CAPACITY).unwrap_err(),
                CapacityError::TooLarge {
                    requested: MAX_CAPACITY,
                    max
                }
            );
        }
        assert_eq!(SpscRing::<u8>::with_min_capacity(0).unwrap_err(), CapacityError::Zero);
        assert!(matches!(
            SpscRing::<u8>::with_min_capacity(usize::MAX),
            Err(CapacityError::TooLarge { .. })
        ));
        assert_eq!(SpscRing::<u8>::with_min_capacity(5).unwrap().0.capacity(), 8);
        assert_eq!(SpscRing::<u8>::with_min_capacity(1).unwrap().0.capacity(), 1);
    }

    #[test]
    fn counters_wrap_around_u64() {
        // Start both counters just below u64::MAX to exercise wrapping arithmetic.
        let (mut tx, mut rx) = SpscRing::<u32>::new(4).unwrap();
        let start = u64::MAX - 5;
        tx.tail = start;
        tx.cached_head = start;
        rx.head = start;
        rx.cached_tail = start;
        tx.ring.control.consumer.head.store(start, Ordering::Relaxed);
        tx.ring.control.producer.tail.store(start, Ordering::Relaxed);
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        for round in 0..20 {
            let mut pushed = 0;
            while tx.push(next_in).is_ok() {
                next_in += 1;
                pushed += 1;
            }
            assert_eq!(pushed, if round == 0 { 4 } else { 3 });
            assert!(tx.is_full() && rx.is_full());
            for _ in 0..3 {
                assert_eq!(rx.pop(), Ok(next_out));
                next_out += 1;
            }
            let mut buf = [0u32; 4];
            let n = tx.push_slice(&[next_in, next_in + 1]);
            next_in += n as u32;
            let got = rx.pop_into(&mut buf[..n]);
            for &v in &buf[..got] {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }

    #[test]
    fn zero_sized_items() {
        let (mut tx, mut rx) = SpscRing::<()>::new(2).unwrap();
        assert_eq!(tx.push(()), Ok(()));
        assert_eq!(tx.push(()), Ok(()));
        assert_eq!(tx.push(()), Err(PushError::Full(())));
        assert_eq!(rx.pop(), Ok(()));
        assert_eq!(rx.len(), 1);
    }

    #[test]
    fn error_display_and_debug() {
        struct NotDebug;
        let e = PushError::Full(NotDebug);
        assert_eq!(format!("{e:?}"), "Full(..)");
        assert_eq!(e.to_string(), "ring is full");
        assert_eq!(PopError::Empty.to_string(), "ring is empty");
        let _value: NotDebug = e.into_inner();
    }
}
