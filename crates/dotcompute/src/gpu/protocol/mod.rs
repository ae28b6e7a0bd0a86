//! The host ↔ device ring protocol of a GPU ring kernel.
//!
//! One contiguous region holds everything host and device share (see
//! [`layout`] for the byte offsets): a [`ControlBlock`]
//! (header, the host's lifecycle word, the device's status and counters, four
//! ring indices on separate 128-byte lines), the host→device slot ring of
//! `In`, the device→host slot ring of `Out`, and the kernel's state buffer.
//! On a GPU the region is pinned host memory mapped into the device's address
//! space; in [emulation](crate::gpu::emulator) it is an ordinary aligned host
//! allocation and a host thread plays the device, running the same code
//! ([`device_side`](self) here) over the same bytes.
//!
//! # Protocol
//!
//! 1. **One writer per word.** The host writes the header (once, before the
//!    device starts), `lifecycle`, the host→device `tail` and the
//!    device→host `head`. The device writes `device_state`, `heartbeat`, the
//!    counters (`processed`, `batches`, `idle_polls`, `errors`, `last_error`,
//!    `fault`), the host→device `head` and the device→host `tail`. Every
//!    shared word is a `u64` accessed atomically.
//! 2. **Rings.** Each ring has `capacity = 2^k` slots and two free-running
//!    `u64` counters, `head` (next slot to read, written by the consumer) and
//!    `tail` (next slot to write, written by the producer); position `i` lives
//!    in slot `i & (capacity - 1)`; `0 <= tail - head <= capacity`. A
//!    producer writes slots, then publishes them with a *release* store of
//!    `tail`; a consumer *acquire*-loads `tail` before reading the slots, and
//!    releases them with a release store of `head`, which the producer
//!    acquire-loads before reusing them. On the device these are system-scope
//!    (`ld.acquire.sys` / `st.release.sys`, see `gpu/cuda/ring_kernel.cuh`).
//! 3. **Batches.** The device takes up to `batch_size` messages at a time (as
//!    many as are available and fit in the output ring), handles them, writes
//!    one reply per message in order, then publishes all replies with one
//!    `tail` store and frees all inputs with one `head` store.
//! 4. **Lifecycle.** The host's `lifecycle` word is a command: a
//!    [`Lifecycle`] in the low 8 bits and a sequence number, incremented by
//!    the host for each command, above them ([`lifecycle_word`]). It starts
//!    as `Launched` with sequence 0. The device acts on each new command
//!    once and acknowledges it in `device_state` ([`status_word`]: a
//!    [`DeviceState`] and the sequence acted on): on `Active` it stores
//!    `Running` and takes messages; on `Launched`/`Deactivated` it finishes
//!    its batch, writes its state back to the region's state buffer, stores
//!    `Parked` (release) and takes no message until the next command, its
//!    heartbeat still beating; on [`Lifecycle::Terminate`] (sticky: the host
//!    writes nothing after it) it writes its state back, stores its final
//!    counters, stores `Exited` (release, after all its other stores) and
//!    returns. Hence, once the host has acquire-loaded an acknowledgement of
//!    its *latest* non-`Active` command, the state buffer and counters are
//!    final until the host's next command, and the host may read them.
//! 5. **Liveness.** The device increments `heartbeat` on every poll, busy,
//!    idle or parked, and sleeps at most `backoff_max_ns` between polls. A
//!    heartbeat that does not move for the host's timeout means a hung or
//!    dead device: the host reports the kernel failed.
//! 6. **Distrust.** Each side validates every index the other side wrote
//!    (`tail - head` within `0..=capacity`, no index moving backwards) and
//!    every enumerated word. A bad value is a typed error
//!    ([`ProtocolError`]) on the host and a [`FaultCode`] on the device,
//!    never an out-of-bounds access: slot offsets are always masked.
//!
//! The loom models in `protocol::ring::loom_tests` check points 1–4 under
//! every interleaving on tiny rings.

pub mod layout;
pub mod memory;

pub(crate) mod device_side;
pub(crate) mod host_side;
pub(crate) mod ring;

use thiserror::Error;

pub use layout::{
    ControlBlock, DeviceKernelParams, DeviceParams, DeviceRingRef, LayoutError, LinkLayout, RegionLayout,
    GRID_WORKSPACE_SIZE,
};
pub use memory::{HostRegion, MappedRegion};

/// Magic number at offset 0 of a kernel region: `b"DCGPURNG"` as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"DCGPURNG");

/// Magic number at offset 0 of a kernel-to-kernel link ring: `b"DCGPULNK"`.
pub const LINK_MAGIC: u64 = u64::from_le_bytes(*b"DCGPULNK");

/// Version of the region layout and protocol described here.
pub const PROTOCOL_VERSION: u64 = 1;

/// The host's lifecycle word: what the host wants the device to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Lifecycle {
    /// Launched, not yet activated: the device parks.
    Launched = 0,
    /// The device takes and handles messages.
    Active = 1,
    /// The device parks; messages stay in the ring.
    Deactivated = 2,
    /// The device writes its state back and exits. Sticky.
    Terminate = 3,
}

impl Lifecycle {
    /// The value as stored.
    pub const fn word(self) -> u64 {
        self as u64
    }

    /// Decodes a stored value.
    pub const fn from_word(w: u64) -> Option<Self> {
        match w {
            0 => Some(Lifecycle::Launched),
            1 => Some(Lifecycle::Active),
            2 => Some(Lifecycle::Deactivated),
            3 => Some(Lifecycle::Terminate),
            _ => None,
        }
    }
}

/// The `lifecycle` word for command `lifecycle` with sequence number `seq`.
///
/// ```
/// use dotcompute::gpu::protocol::{decode_lifecycle, lifecycle_word, Lifecycle};
///
/// let w = lifecycle_word(Lifecycle::Deactivated, 5);
/// assert_eq!(w, 5 << 8 | 2);
/// assert_eq!(decode_lifecycle(w), Some((Lifecycle::Deactivated, 5)));
/// assert_eq!(decode_lifecycle(9), None);
/// ```
pub const fn lifecycle_word(lifecycle: Lifecycle, seq: u64) -> u64 {
    (seq << 8) | lifecycle as u64
}

/// Splits a `lifecycle` word into command and sequence; `None` if the command
/// is unknown.
pub const fn decode_lifecycle(word: u64) -> Option<(Lifecycle, u64)> {
    match Lifecycle::from_word(word & 0xff) {
        Some(l) => Some((l, word >> 8)),
        None => None,
    }
}

/// The `device_state` word: `state`, having acted on command `ack`.
pub const fn status_word(state: DeviceState, ack: u64) -> u64 {
    (ack << 8) | state as u64
}

/// Splits a `device_state` word into state and acknowledged sequence.
pub const fn decode_status(word: u64) -> Option<(DeviceState, u64)> {
    match DeviceState::from_word(word & 0xff) {
        Some(s) => Some((s, word >> 8)),
        None => None,
    }
}

/// The device's status: what the device is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum DeviceState {
    /// The device has not attached to the region yet.
    NotStarted = 0,
    /// Attached and parked (lifecycle not `Active`).
    Parked = 1,
    /// Attached and polling for messages.
    Running = 2,
    /// Exited after a terminate request; every other device store came before.
    Exited = 3,
    /// Stopped on a fault; the `fault` word says which.
    Faulted = 4,
}

impl DeviceState {
    /// Decodes a stored value.
    pub const fn from_word(w: u64) -> Option<Self> {
        match w {
            0 => Some(DeviceState::NotStarted),
            1 => Some(DeviceState::Parked),
            2 => Some(DeviceState::Running),
            3 => Some(DeviceState::Exited),
            4 => Some(DeviceState::Faulted),
            _ => None,
        }
    }

    /// True once the device has stopped for good.
    pub const fn is_final(self) -> bool {
        matches!(self, DeviceState::Exited | DeviceState::Faulted)
    }
}

/// Why the device stopped on its own (the `fault` word). The CUDA template
/// (`DC_FAULT_*` in `ring_kernel.cuh`) uses the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum FaultCode {
    /// The region's magic number is wrong.
    BadMagic = 1,
    /// The region's protocol version is not the device's.
    BadVersion = 2,
    /// A slot or state size in the header differs from the compiled types.
    SizeMismatch = 3,
    /// A capacity, offset or batch size in the header is invalid.
    BadGeometry = 4,
    /// The host→device `tail` is outside `head..=head + capacity` or went back.
    CorruptInputTail = 5,
    /// The device→host `head` is outside `head..=tail` or went back.
    CorruptOutputHead = 6,
    /// The lifecycle word holds no [`Lifecycle`] value.
    BadLifecycle = 7,
    /// The handler panicked (emulation only: a CUDA handler traps instead).
    HandlerPanicked = 8,
    /// The kernel was launched with a grid the template cannot coordinate.
    BadLaunch = 9,
}

impl FaultCode {
    /// All codes, for tables and tests.
    pub const ALL: [FaultCode; 9] = [
        FaultCode::BadMagic,
        FaultCode::BadVersion,
        FaultCode::SizeMismatch,
        FaultCode::BadGeometry,
        FaultCode::CorruptInputTail,
        FaultCode::CorruptOutputHead,
        FaultCode::BadLifecycle,
        FaultCode::HandlerPanicked,
        FaultCode::BadLaunch,
    ];

    /// The value as stored.
    pub const fn word(self) -> u64 {
        self as u64
    }

    /// Decodes a stored value.
    pub fn from_word(w: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.word() == w)
    }

    /// What it means, in words.
    pub const fn describe(self) -> &'static str {
        match self {
            FaultCode::BadMagic => "the region's magic number is wrong",
            FaultCode::BadVersion => "the region's protocol version differs from the device's",
            FaultCode::SizeMismatch => "a slot or state size in the region differs from the compiled message types",
            FaultCode::BadGeometry => "a capacity, offset or batch size in the region header is invalid",
            FaultCode::CorruptInputTail => "the host→device tail index is out of range",
            FaultCode::CorruptOutputHead => "the device→host head index is out of range",
            FaultCode::BadLifecycle => "the lifecycle word holds an unknown value",
            FaultCode::HandlerPanicked => "the handler panicked (emulation)",
            FaultCode::BadLaunch => "the kernel was launched with an unsupported grid",
        }
    }
}

/// A value the other side wrote is impossible under the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A ring index read from shared memory is outside the range the protocol allows.
    #[error("corrupt {index} index of the {ring} ring: read {observed}, expected {min}..={max}")]
    CorruptIndex {
        /// Which ring ("host→device", "device→host" or "link").
        ring: &'static str,
        /// "head" or "tail".
        index: &'static str,
        /// The value read.
        observed: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// An enumerated word holds no known value.
    #[error("corrupt {field} word: {value} is not a known value")]
    BadWord {
        /// The word's name.
        field: &'static str,
        /// The value read.
        value: u64,
    },
    /// A header field does not match what this side expects.
    #[error("region header field {field} is {found}, expected {expected}")]
    BadHeader {
        /// The field's name.
        field: &'static str,
        /// The value read.
        found: u64,
        /// The value expected.
        expected: u64,
    },
}

/// A snapshot of the words the device writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCounters {
    /// The device's status.
    pub state: DeviceState,
    /// The sequence number of the last lifecycle command the device acted on.
    pub ack: u64,
    /// Incremented on every poll.
    pub heartbeat: u64,
    /// Messages handled (each produced one reply).
    pub processed: u64,
    /// Batches handled.
    pub batches: u64,
    /// Polls that found no message while active.
    pub idle_polls: u64,
    /// Messages whose handler returned a non-zero code.
    pub errors: u64,
    /// The last non-zero handler code (0 if none).
    pub last_error: u64,
    /// The fault word (0 if none; see [`FaultCode`]).
    pub fault: u64,
}

impl DeviceCounters {
    /// The fault, if the device stopped on one.
    pub fn fault_code(&self) -> Option<FaultCode> {
        FaultCode::from_word(self.fault)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for l in [
            Lifecycle::Launched,
            Lifecycle::Active,
            Lifecycle::Deactivated,
            Lifecycle::Terminate,
        ] {
            assert_eq!(Lifecycle::from_word(l.word()), Some(l));
        }
        assert_eq!(Lifecycle::from_word(4), None);
        for s in 0..5 {
            assert_eq!(DeviceState::from_word(s).map(|d| d as u64), Some(s));
        }
        assert_eq!(DeviceState::from_word(5), None);
        for c in FaultCode::ALL {
            assert_eq!(FaultCode::from_word(c.word()), Some(c));
            assert!(!c.describe().is_empty());
        }
        assert_eq!(FaultCode::from_word(0), None);
        assert_eq!(&MAGIC.to_le_bytes(), b"DCGPURNG");
    }
}
