//! Byte layout of a GPU ring kernel's shared region and of a kernel-to-kernel
//! link ring.
//!
//! # Kernel region
//!
//! One allocation, 128-byte aligned, every shared word a native-endian `u64`:
//!
//! | offset | field | written by |
//! |---:|---|---|
//! | 0 | `magic` ([`MAGIC`]) | host, before start |
//! | 8 | `version` ([`PROTOCOL_VERSION`]) | host, before start |
//! | 16 | `region_size` (bytes) | host, before start |
//! | 24 | `in_capacity` (slots, power of two) | host, before start |
//! | 32 | `in_slot_size` (`sizeof(In)`) | host, before start |
//! | 40 | `out_capacity` | host, before start |
//! | 48 | `out_slot_size` (`sizeof(Out)`) | host, before start |
//! | 56 | `state_size` (`sizeof(State)`) | host, before start |
//! | 64 | `in_slots` (offset of the host→device slots) | host, before start |
//! | 72 | `out_slots` (offset of the device→host slots) | host, before start |
//! | 80 | `state` (offset of the state buffer) | host, before start |
//! | 88 | `batch_size` (most messages per batch) | host, before start |
//! | 96 | `spin_polls` (empty polls before sleeping) | host, before start |
//! | 104 | `backoff_min_ns` | host, before start |
//! | 112 | `backoff_max_ns` | host, before start |
//! | 128 | `lifecycle` ([`Lifecycle`]) | host |
//! | 256 | `device_state` ([`DeviceState`](super::DeviceState)) | device |
//! | 264 | `heartbeat` | device |
//! | 272 | `processed` | device |
//! | 280 | `batches` | device |
//! | 288 | `idle_polls` | device |
//! | 296 | `errors` | device |
//! | 304 | `last_error` | device |
//! | 312 | `fault` ([`FaultCode`](super::FaultCode), 0 = none) | device |
//! | 384 | `in_tail` (host→device ring) | host |
//! | 512 | `in_head` (host→device ring) | device |
//! | 640 | `out_tail` (device→host ring) | device |
//! | 768 | `out_head` (device→host ring) | host |
//! | 896 | host→device slots: `in_capacity × in_slot_size` | host writes, device reads |
//! | `in_slots + …`, rounded up to 128 | device→host slots: `out_capacity × out_slot_size` | device writes, host reads |
//! | `out_slots + …`, rounded up to 128 | state: `state_size` bytes | host before start; device on park and exit |
//!
//! The total is rounded up to 128 bytes. The first 896 bytes are the
//! [`ControlBlock`]; its C twin, `dc::ControlBlock` in `ring_kernel.cuh`, is
//! checked against these offsets by `static_assert`s that
//! [`crate::gpu::source`] generates from [`ControlBlock::FIELDS`].
//!
//! # Link ring (kernel → kernel)
//!
//! | offset | field | written by |
//! |---:|---|---|
//! | 0 | `magic` ([`LINK_MAGIC`]) | host, before start |
//! | 8 | `version` | host, before start |
//! | 16 | `capacity` | host, before start |
//! | 24 | `slot_size` | host, before start |
//! | 128 | `tail` | producing kernel |
//! | 256 | `head` | consuming kernel |
//! | 384 | slots | producing kernel writes, consuming kernel reads |

use std::mem::{offset_of, size_of};
use std::time::Duration;

use thiserror::Error;

use super::memory::SharedMemory;
use super::ring::RingGeometry;
use super::{Lifecycle, LINK_MAGIC, MAGIC, PROTOCOL_VERSION};
use crate::gpu::message::GpuMessage;

/// Size and alignment of each line: indices written by different sides never
/// share one (see [`crate::ring::spsc::LINE_SIZE`]).
pub const LINE_SIZE: usize = crate::ring::spsc::LINE_SIZE;

/// Largest ring capacity accepted (2^24 slots).
pub const MAX_RING_CAPACITY: u64 = 1 << 24;

/// Largest batch size accepted.
pub const MAX_BATCH_SIZE: u32 = 1 << 16;

/// Longest idle back-off accepted.
pub const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Read-only first line, written by the host before the device starts.
#[repr(C, align(128))]
struct HeaderLine {
    magic: u64,
    version: u64,
    region_size: u64,
    in_capacity: u64,
    in_slot_size: u64,
    out_capacity: u64,
    out_slot_size: u64,
    state_size: u64,
    in_slots: u64,
    out_slots: u64,
    state: u64,
    batch_size: u64,
    spin_polls: u64,
    backoff_min_ns: u64,
    backoff_max_ns: u64,
    reserved: u64,
}

/// The host's line.
#[repr(C, align(128))]
struct HostLine {
    lifecycle: u64,
}

/// The device's line: status and counters.
#[repr(C, align(128))]
struct DeviceLine {
    device_state: u64,
    heartbeat: u64,
    processed: u64,
    batches: u64,
    idle_polls: u64,
    errors: u64,
    last_error: u64,
    fault: u64,
}

/// One index alone on its line.
#[repr(C, align(128))]
struct IndexLine {
    value: u64,
}

/// The control block at the start of a kernel region (layout only: the
/// protocol reads and writes it through atomic word accesses at these
/// offsets, never through a reference). See the [module docs](self) for
/// the table.
///
/// ```
/// use dotcompute::gpu::protocol::ControlBlock;
///
/// assert_eq!(std::mem::size_of::<ControlBlock>(), ControlBlock::SIZE);
/// assert_eq!(ControlBlock::SIZE, 896);
/// assert_eq!(ControlBlock::LIFECYCLE, 128);
/// assert_eq!((ControlBlock::IN_TAIL, ControlBlock::IN_HEAD), (384, 512));
/// assert_eq!((ControlBlock::OUT_TAIL, ControlBlock::OUT_HEAD), (640, 768));
/// ```
#[repr(C)]
pub struct ControlBlock {
    header: HeaderLine,
    host: HostLine,
    device: DeviceLine,
    in_tail: IndexLine,
    in_head: IndexLine,
    out_tail: IndexLine,
    out_head: IndexLine,
}

macro_rules! header_offset {
    ($f:ident) => {
        offset_of!(ControlBlock, header) + offset_of!(HeaderLine, $f)
    };
}
macro_rules! device_offset {
    ($f:ident) => {
        offset_of!(ControlBlock, device) + offset_of!(DeviceLine, $f)
    };
}

impl ControlBlock {
    /// Size in bytes (7 lines).
    pub const SIZE: usize = size_of::<ControlBlock>();
    /// Offset of `magic`.
    pub const MAGIC: usize = header_offset!(magic);
    /// Offset of `version`.
    pub const VERSION: usize = header_offset!(version);
    /// Offset of `region_size`.
    pub const REGION_SIZE: usize = header_offset!(region_size);
    /// Offset of `in_capacity`.
    pub const IN_CAPACITY: usize = header_offset!(in_capacity);
    /// Offset of `in_slot_size`.
    pub const IN_SLOT_SIZE: usize = header_offset!(in_slot_size);
    /// Offset of `out_capacity`.
    pub const OUT_CAPACITY: usize = header_offset!(out_capacity);
    /// Offset of `out_slot_size`.
    pub const OUT_SLOT_SIZE: usize = header_offset!(out_slot_size);
    /// Offset of `state_size`.
    pub const STATE_SIZE: usize = header_offset!(state_size);
    /// Offset of `in_slots` (the offset of the host→device slots).
    pub const IN_SLOTS: usize = header_offset!(in_slots);
    /// Offset of `out_slots`.
    pub const OUT_SLOTS: usize = header_offset!(out_slots);
    /// Offset of `state` (the offset of the state buffer).
    pub const STATE: usize = header_offset!(state);
    /// Offset of `batch_size`.
    pub const BATCH_SIZE: usize = header_offset!(batch_size);
    /// Offset of `spin_polls`.
    pub const SPIN_POLLS: usize = header_offset!(spin_polls);
    /// Offset of `backoff_min_ns`.
    pub const BACKOFF_MIN_NS: usize = header_offset!(backoff_min_ns);
    /// Offset of `backoff_max_ns`.
    pub const BACKOFF_MAX_NS: usize = header_offset!(backoff_max_ns);
    /// Offset of the host's `lifecycle` word.
    pub const LIFECYCLE: usize = offset_of!(ControlBlock, host) + offset_of!(HostLine, lifecycle);
    /// Offset of `device_state`.
    pub const DEVICE_STATE: usize = device_offset!(device_state);
    /// Offset of `heartbeat`.
    pub const HEARTBEAT: usize = device_offset!(heartbeat);
    /// Offset of `processed`.
    pub const PROCESSED: usize = device_offset!(processed);
    /// Offset of `batches`.
    pub const BATCHES: usize = device_offset!(batches);
    /// Offset of `idle_polls`.
    pub const IDLE_POLLS: usize = device_offset!(idle_polls);
    /// Offset of `errors`.
    pub const ERRORS: usize = device_offset!(errors);
    /// Offset of `last_error`.
    pub const LAST_ERROR: usize = device_offset!(last_error);
    /// Offset of `fault`.
    pub const FAULT: usize = device_offset!(fault);
    /// Offset of the host→device ring's `tail` (host writes).
    pub const IN_TAIL: usize = offset_of!(ControlBlock, in_tail);
    /// Offset of the host→device ring's `head` (device writes).
    pub const IN_HEAD: usize = offset_of!(ControlBlock, in_head);
    /// Offset of the device→host ring's `tail` (device writes).
    pub const OUT_TAIL: usize = offset_of!(ControlBlock, out_tail);
    /// Offset of the device→host ring's `head` (host writes).
    pub const OUT_HEAD: usize = offset_of!(ControlBlock, out_head);

    /// Every field by its C name (`dc::ControlBlock`) and offset.
    pub const FIELDS: [(&'static str, usize); 28] = [
        ("magic", Self::MAGIC),
        ("version", Self::VERSION),
        ("region_size", Self::REGION_SIZE),
        ("in_capacity", Self::IN_CAPACITY),
        ("in_slot_size", Self::IN_SLOT_SIZE),
        ("out_capacity", Self::OUT_CAPACITY),
        ("out_slot_size", Self::OUT_SLOT_SIZE),
        ("state_size", Self::STATE_SIZE),
        ("in_slots", Self::IN_SLOTS),
        ("out_slots", Self::OUT_SLOTS),
        ("state", Self::STATE),
        ("batch_size", Self::BATCH_SIZE),
        ("spin_polls", Self::SPIN_POLLS),
        ("backoff_min_ns", Self::BACKOFF_MIN_NS),
        ("backoff_max_ns", Self::BACKOFF_MAX_NS),
        ("lifecycle", Self::LIFECYCLE),
        ("device_state", Self::DEVICE_STATE),
        ("heartbeat", Self::HEARTBEAT),
        ("processed", Self::PROCESSED),
        ("batches", Self::BATCHES),
        ("idle_polls", Self::IDLE_POLLS),
        ("errors", Self::ERRORS),
        ("last_error", Self::LAST_ERROR),
        ("fault", Self::FAULT),
        ("in_tail", Self::IN_TAIL),
        ("in_head", Self::IN_HEAD),
        ("out_tail", Self::OUT_TAIL),
        ("out_head", Self::OUT_HEAD),
    ];
}

// The documented numbers are the real ones.
const _: () = {
    assert!(ControlBlock::SIZE == 7 * LINE_SIZE);
    assert!(std::mem::align_of::<ControlBlock>() == LINE_SIZE);
    assert!(ControlBlock::BACKOFF_MAX_NS == 112);
    assert!(ControlBlock::LIFECYCLE == 128);
    assert!(ControlBlock::DEVICE_STATE == 256 && ControlBlock::FAULT == 312);
    assert!(ControlBlock::IN_TAIL == 384 && ControlBlock::IN_HEAD == 512);
    assert!(ControlBlock::OUT_TAIL == 640 && ControlBlock::OUT_HEAD == 768);
};

/// Why a region or link layout was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A ring capacity is not a power of two in `1..=MAX_RING_CAPACITY`.
    #[error("{ring} ring capacity {capacity} must be a power of two between 1 and {MAX_RING_CAPACITY}")]
    BadCapacity {
        /// Which ring.
        ring: &'static str,
        /// The capacity given.
        capacity: u64,
    },
    /// A message type is aligned to more than a line.
    #[error("{what} is aligned to {align} bytes; at most {LINE_SIZE} is supported")]
    OverAligned {
        /// Which type.
        what: &'static str,
        /// Its alignment.
        align: usize,
    },
    /// The batch size is 0 or above [`MAX_BATCH_SIZE`].
    #[error("batch size {0} must be between 1 and {MAX_BATCH_SIZE}")]
    BadBatchSize(u32),
    /// The back-off bounds are out of order or too long.
    #[error("idle back-off must satisfy 0 < min ({min:?}) <= max ({max:?}) <= {MAX_BACKOFF:?}")]
    BadBackoff {
        /// The minimum given.
        min: Duration,
        /// The maximum given.
        max: Duration,
    },
    /// The sizes overflow the address space.
    #[error("the region would not fit in the address space")]
    Overflow,
    /// The memory given is smaller than the layout or misaligned.
    #[error(
        "memory of {len} bytes at alignment {align} cannot hold a layout of {needed} bytes aligned to {LINE_SIZE}"
    )]
    BadMemory {
        /// Bytes the layout needs.
        needed: usize,
        /// Bytes given.
        len: usize,
        /// Alignment of the address given (largest power of two dividing it, capped at 4096).
        align: usize,
    },
}

fn check_capacity(ring: &'static str, capacity: u64) -> Result<(), LayoutError> {
    if capacity == 0 || capacity > MAX_RING_CAPACITY || !capacity.is_power_of_two() {
        Err(LayoutError::BadCapacity { ring, capacity })
    } else {
        Ok(())
    }
}

fn round_line(n: usize) -> Option<usize> {
    n.checked_add(LINE_SIZE - 1).map(|v| v / LINE_SIZE * LINE_SIZE)
}

/// The sizes and offsets of one kernel region (see the [module docs](self)).
///
/// ```
/// use dotcompute::gpu::protocol::RegionLayout;
/// use dotcompute::gpu::{GpuMessage, NoState};
///
/// #[derive(Clone, Copy, GpuMessage)]
/// #[repr(C)]
/// struct Msg { v: [u64; 3] }
///
/// let l = RegionLayout::for_types::<Msg, Msg, NoState>(8, 4)?;
/// assert_eq!(l.in_slots, 896);
/// assert_eq!(l.out_slots, 1152); // 896 + 8 × 24 = 1088, rounded up to a line
/// assert_eq!(l.state, 1280); // 1152 + 4 × 24 = 1248, rounded up
/// assert_eq!(l.size, 1408); // 1280 + 4, rounded up
/// # Ok::<(), dotcompute::gpu::protocol::LayoutError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionLayout {
    /// Slots of the host→device ring.
    pub in_capacity: u64,
    /// `sizeof(In)`.
    pub in_slot_size: usize,
    /// Slots of the device→host ring.
    pub out_capacity: u64,
    /// `sizeof(Out)`.
    pub out_slot_size: usize,
    /// `sizeof(State)`.
    pub state_size: usize,
    /// Offset of the host→device slots.
    pub in_slots: usize,
    /// Offset of the device→host slots.
    pub out_slots: usize,
    /// Offset of the state buffer.
    pub state: usize,
    /// Total bytes (a multiple of 128).
    pub size: usize,
}

impl RegionLayout {
    /// The layout for rings of `In` and `Out` and a state of `State`.
    ///
    /// # Errors
    ///
    /// [`LayoutError::BadCapacity`] unless both capacities are powers of two
    /// up to [`MAX_RING_CAPACITY`]; [`LayoutError::Overflow`].
    pub fn for_types<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
        in_capacity: u64,
        out_capacity: u64,
    ) -> Result<Self, LayoutError> {
        for (what, align) in [("In", In::ALIGN), ("Out", Out::ALIGN), ("State", State::ALIGN)] {
            if align > LINE_SIZE {
                return Err(LayoutError::OverAligned { what, align });
            }
        }
        Self::new(in_capacity, In::SIZE, out_capacity, Out::SIZE, State::SIZE)
    }

    /// The layout for the given capacities and sizes.
    ///
    /// # Errors
    ///
    /// As [`for_types`](Self::for_types).
    pub fn new(
        in_capacity: u64,
        in_slot_size: usize,
        out_capacity: u64,
        out_slot_size: usize,
        state_size: usize,
    ) -> Result<Self, LayoutError> {
        check_capacity("host→device", in_capacity)?;
        check_capacity("device→host", out_capacity)?;
        let bytes = |cap: u64, size: usize| usize::try_from(cap).ok().and_then(|c| c.checked_mul(size));
        let in_slots = ControlBlock::SIZE;
        let out_slots = bytes(in_capacity, in_slot_size)
            .and_then(|b| in_slots.checked_add(b))
            .and_then(round_line)
            .ok_or(LayoutError::Overflow)?;
        let state = bytes(out_capacity, out_slot_size)
            .and_then(|b| out_slots.checked_add(b))
            .and_then(round_line)
            .ok_or(LayoutError::Overflow)?;
        let size = state
            .checked_add(state_size)
            .and_then(round_line)
            .filter(|&s| s <= isize::MAX as usize)
            .ok_or(LayoutError::Overflow)?;
        Ok(RegionLayout {
            in_capacity,
            in_slot_size,
            out_capacity,
            out_slot_size,
            state_size,
            in_slots,
            out_slots,
            state,
            size,
        })
    }

    pub(crate) fn input_ring(&self) -> RingGeometry {
        RingGeometry {
            name: "host→device",
            tail: ControlBlock::IN_TAIL,
            head: ControlBlock::IN_HEAD,
            slots: self.in_slots,
            capacity: self.in_capacity,
            slot_size: self.in_slot_size,
        }
    }

    pub(crate) fn output_ring(&self) -> RingGeometry {
        RingGeometry {
            name: "device→host",
            tail: ControlBlock::OUT_TAIL,
            head: ControlBlock::OUT_HEAD,
            slots: self.out_slots,
            capacity: self.out_capacity,
            slot_size: self.out_slot_size,
        }
    }

    /// Zeroes the region and writes the header; `lifecycle` starts as
    /// [`Lifecycle::Launched`]. The caller then writes the initial state.
    pub(crate) fn init<M: SharedMemory>(&self, mem: &M, params: &DeviceParams) -> Result<(), LayoutError> {
        if mem.len() < self.size {
            return Err(LayoutError::BadMemory {
                needed: self.size,
                len: mem.len(),
                align: LINE_SIZE,
            });
        }
        mem.zero(0, self.size);
        let words: [(usize, u64); 15] = [
            (ControlBlock::MAGIC, MAGIC),
            (ControlBlock::VERSION, PROTOCOL_VERSION),
            (ControlBlock::REGION_SIZE, self.size as u64),
            (ControlBlock::IN_CAPACITY, self.in_capacity),
            (ControlBlock::IN_SLOT_SIZE, self.in_slot_size as u64),
            (ControlBlock::OUT_CAPACITY, self.out_capacity),
            (ControlBlock::OUT_SLOT_SIZE, self.out_slot_size as u64),
            (ControlBlock::STATE_SIZE, self.state_size as u64),
            (ControlBlock::IN_SLOTS, self.in_slots as u64),
            (ControlBlock::OUT_SLOTS, self.out_slots as u64),
            (ControlBlock::STATE, self.state as u64),
            (ControlBlock::BATCH_SIZE, u64::from(params.batch_size)),
            (ControlBlock::SPIN_POLLS, u64::from(params.spin_polls)),
            (ControlBlock::BACKOFF_MIN_NS, duration_ns(params.backoff_min)),
            (ControlBlock::BACKOFF_MAX_NS, duration_ns(params.backoff_max)),
        ];
        for (offset, value) in words {
            mem.store(offset, value, std::sync::atomic::Ordering::Relaxed);
        }
        mem.store(
            ControlBlock::LIFECYCLE,
            Lifecycle::Launched.word(),
            std::sync::atomic::Ordering::Release,
        );
        Ok(())
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How the device polls and batches; written into the region header, read
/// by the emulator and by the CUDA template alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceParams {
    /// Most messages taken per batch.
    pub batch_size: u32,
    /// Empty polls before the device starts sleeping.
    pub spin_polls: u32,
    /// First idle sleep; doubles on each further empty poll.
    pub backoff_min: Duration,
    /// Longest idle sleep (also the parked poll period). The CUDA template
    /// sleeps at most 1 ms per `__nanosleep`, the instruction's limit.
    pub backoff_max: Duration,
}

impl Default for DeviceParams {
    fn default() -> Self {
        DeviceParams {
            batch_size: 64,
            spin_polls: 64,
            backoff_min: Duration::from_micros(1),
            backoff_max: Duration::from_micros(500),
        }
    }
}

impl DeviceParams {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`LayoutError::BadBatchSize`] or [`LayoutError::BadBackoff`].
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(LayoutError::BadBatchSize(self.batch_size));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max || self.backoff_max > MAX_BACKOFF {
            return Err(LayoutError::BadBackoff {
                min: self.backoff_min,
                max: self.backoff_max,
            });
        }
        Ok(())
    }
}

/// The layout of a kernel-to-kernel link ring (see the [module docs](self)).
///
/// ```
/// use dotcompute::gpu::protocol::LinkLayout;
///
/// let l = LinkLayout::new(4, 24)?;
/// assert_eq!((l.tail, l.head, l.slots), (128, 256, 384));
/// assert_eq!(l.size, 512);
/// # Ok::<(), dotcompute::gpu::protocol::LayoutError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLayout {
    /// Slots.
    pub capacity: u64,
    /// Bytes per slot.
    pub slot_size: usize,
    /// Offset of `tail` (producing kernel writes).
    pub tail: usize,
    /// Offset of `head` (consuming kernel writes).
    pub head: usize,
    /// Offset of the slots.
    pub slots: usize,
    /// Total bytes (a multiple of 128).
    pub size: usize,
}

impl LinkLayout {
    /// Offset of the link's `magic`.
    pub const MAGIC: usize = 0;
    /// Offset of the link's `version`.
    pub const VERSION: usize = 8;
    /// Offset of the link's `capacity`.
    pub const CAPACITY: usize = 16;
    /// Offset of the link's `slot_size`.
    pub const SLOT_SIZE: usize = 24;

    /// The layout of a link of `capacity` slots of `slot_size` bytes.
    ///
    /// # Errors
    ///
    /// [`LayoutError::BadCapacity`], [`LayoutError::Overflow`].
    pub fn new(capacity: u64, slot_size: usize) -> Result<Self, LayoutError> {
        check_capacity("link", capacity)?;
        let slots = 3 * LINE_SIZE;
        let size = usize::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_mul(slot_size))
            .and_then(|b| b.checked_add(slots))
            .and_then(round_line)
            .filter(|&s| s <= isize::MAX as usize)
            .ok_or(LayoutError::Overflow)?;
        Ok(LinkLayout {
            capacity,
            slot_size,
            tail: LINE_SIZE,
            head: 2 * LINE_SIZE,
            slots,
            size,
        })
    }

    pub(crate) fn ring(&self) -> RingGeometry {
        RingGeometry {
            name: "link",
            tail: self.tail,
            head: self.head,
            slots: self.slots,
            capacity: self.capacity,
            slot_size: self.slot_size,
        }
    }

    /// Zeroes the link and writes its header.
    pub(crate) fn init<M: SharedMemory>(&self, mem: &M) -> Result<(), LayoutError> {
        if mem.len() < self.size {
            return Err(LayoutError::BadMemory {
                needed: self.size,
                len: mem.len(),
                align: LINE_SIZE,
            });
        }
        mem.zero(0, self.size);
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        mem.store(Self::MAGIC, LINK_MAGIC, relaxed);
        mem.store(Self::VERSION, PROTOCOL_VERSION, relaxed);
        mem.store(Self::CAPACITY, self.capacity, relaxed);
        mem.store(
            Self::SLOT_SIZE,
            self.slot_size as u64,
            std::sync::atomic::Ordering::Release,
        );
        Ok(())
    }
}

/// Where one ring lives, in device addresses (the C twin is `dc::RingRef`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct DeviceRingRef {
    /// Device address of the ring's `tail` word.
    pub tail: u64,
    /// Device address of the ring's `head` word.
    pub head: u64,
    /// Device address of slot 0.
    pub slots: u64,
    /// Number of slots (a power of two).
    pub capacity: u64,
}

/// The persistent kernel's only parameter, by value (the C twin is
/// `dc::KernelParams`; the generated source `static_assert`s its size). For
/// the CUDA launch path: fill it with device addresses and pass it as the
/// single kernel argument.
///
/// ```
/// use dotcompute::gpu::protocol::{DeviceKernelParams, LinkLayout, RegionLayout};
///
/// let region = RegionLayout::new(8, 16, 8, 16, 4)?;
/// let p = DeviceKernelParams::for_region(0x1000, &region, 0x9000, 0);
/// assert_eq!(p.input.tail, 0x1000 + 384);
/// assert_eq!(p.output.slots, 0x1000 + region.out_slots as u64);
/// let link = LinkLayout::new(16, 16)?;
/// let p = p.with_output_link(0x20000, &link);
/// assert_eq!((p.output.tail, p.output.capacity), (0x20000 + 128, 16));
/// assert_eq!(std::mem::size_of::<DeviceKernelParams>(), DeviceKernelParams::SIZE);
/// # Ok::<(), dotcompute::gpu::protocol::LayoutError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct DeviceKernelParams {
    /// Device address of the region (its control block).
    pub control: u64,
    /// The ring the kernel reads `In` from.
    pub input: DeviceRingRef,
    /// The ring the kernel writes `Out` to.
    pub output: DeviceRingRef,
    /// Device address of the working copy of the state (device memory for
    /// speed, or the region's own state buffer).
    pub state: u64,
    /// Device address of a zeroed [`GRID_WORKSPACE_SIZE`]-byte buffer in device
    /// memory, needed when the grid has more than one block; 0 otherwise.
    pub grid: u64,
}

/// Bytes of the grid workspace a multi-block launch needs (`dc::GridWorkspace`).
pub const GRID_WORKSPACE_SIZE: usize = 128;

impl DeviceKernelParams {
    /// Size in bytes.
    pub const SIZE: usize = size_of::<DeviceKernelParams>();

    /// Parameters for a kernel whose rings are both in the region at device
    /// address `base`.
    pub fn for_region(base: u64, layout: &RegionLayout, state: u64, grid: u64) -> Self {
        let at = |off: usize| base.wrapping_add(off as u64);
        DeviceKernelParams {
            control: base,
            input: DeviceRingRef {
                tail: at(ControlBlock::IN_TAIL),
                head: at(ControlBlock::IN_HEAD),
                slots: at(layout.in_slots),
                capacity: layout.in_capacity,
            },
            output: DeviceRingRef {
                tail: at(ControlBlock::OUT_TAIL),
                head: at(ControlBlock::OUT_HEAD),
                slots: at(layout.out_slots),
                capacity: layout.out_capacity,
            },
            state,
            grid,
        }
    }

    fn link_ref(base: u64, link: &LinkLayout) -> DeviceRingRef {
        let at = |off: usize| base.wrapping_add(off as u64);
        DeviceRingRef {
            tail: at(link.tail),
            head: at(link.head),
            slots: at(link.slots),
            capacity: link.capacity,
        }
    }

    /// The same, reading `In` from a link ring at device address `base`.
    pub fn with_input_link(mut self, base: u64, link: &LinkLayout) -> Self {
        self.input = Self::link_ref(base, link);
        self
    }

    /// The same, writing `Out` to a link ring at device address `base`.
    pub fn with_output_link(mut self, base: u64, link: &LinkLayout) -> Self {
        self.output = Self::link_ref(base, link);
        self
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn region_offsets() {
        let l = RegionLayout::new(4, 24, 2, 40, 8).unwrap();
        assert_eq!(l.in_slots, 896);
        assert_eq!(l.out_slots, 896 + 128);
        assert_eq!(l.state, 1024 + 128);
        assert_eq!(l.size, 1152 + 128);
        assert_eq!(ControlBlock::FIELDS.len(), 28);
        let mut offsets: Vec<usize> = ControlBlock::FIELDS.iter().map(|f| f.1).collect();
        offsets.dedup();
        assert_eq!(offsets.len(), 28, "every field has its own offset");
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_layouts_are_refused() {
        assert!(matches!(
            RegionLayout::new(3, 8, 4, 8, 4),
            Err(LayoutError::BadCapacity { capacity: 3, .. })
        ));
        assert!(matches!(
            RegionLayout::new(4, 8, 0, 8, 4),
            Err(LayoutError::BadCapacity { capacity: 0, .. })
        ));
        assert!(matches!(
            RegionLayout::new(MAX_RING_CAPACITY * 2, 8, 4, 8, 4),
            Err(LayoutError::BadCapacity { .. })
        ));
        assert_eq!(
            RegionLayout::new(MAX_RING_CAPACITY, usize::MAX / 4, 4, 8, 4),
            Err(LayoutError::Overflow)
        );
        let mut p = DeviceParams::default();
        p.validate().unwrap();
        p.batch_size = 0;
        assert_eq!(p.validate(), Err(LayoutError::BadBatchSize(0)));
        p.batch_size = 8;
        p.backoff_min = Duration::from_millis(2);
        p.backoff_max = Duration::from_millis(1);
        assert!(matches!(p.validate(), Err(LayoutError::BadBackoff { .. })));
        assert!(LinkLayout::new(6, 8).is_err());
    }

    #[test]
    fn kernel_params_are_88_bytes() {
        assert_eq!(DeviceKernelParams::SIZE, 88);
        assert_eq!(std::mem::offset_of!(DeviceKernelParams, state), 72);
    }
}
