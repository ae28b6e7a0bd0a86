//! [`Region`]: the shared-memory file that connects a host and a kernel
//! process: a header, then two byte rings (host → kernel, kernel → host).
//!
//! # File layout (version [`REGION_VERSION`])
//!
//! All integers native-endian; every word is accessed atomically (see
//! `mapping.rs`). Lines are [`LINE_SIZE`] (128) bytes, as in the in-process
//! ring, so the two ends never write the same line.
//!
//! | offset | size | field | written by |
//! |-------:|-----:|-------|------------|
//! |      0 |    4 | magic [`REGION_MAGIC`] (`b"DCIP"`) | creator, before `init` |
//! |      4 |    4 | version [`REGION_VERSION`] | creator, before `init` |
//! |      8 |    8 | total file length | creator, before `init` |
//! |     16 |    8 | offset of ring 0 (host → kernel) | creator, before `init` |
//! |     24 |    8 | offset of ring 1 (kernel → host) | creator, before `init` |
//! |     32 |    4 | creator role (0 host, 1 kernel) | creator, before `init` |
//! |     36 |    4 | `init`: 1 once all of the above is written (`Release`) | creator |
//! |     40 |    4 | heartbeat interval, µs | creator, before `init` |
//! |     44 |    4 | heartbeat timeout, ms (0: not checked) | creator, before `init` |
//! |    128 |   32 | host end (below) | host end |
//! |    256 |   32 | kernel end (below) | kernel end |
//! |    384 | 1024 | kernel failure text (UTF-8, length at kernel end +28) | kernel end |
//! |   1408 |      | ring 0: control block (384 B) + `capacity × slot_size` data | |
//! |        |      | ring 1, at the next multiple of 128 | |
//!
//! Each *end* line (`+0` from 128 for the host, 256 for the kernel):
//!
//! | +off | size | field |
//! |-----:|-----:|-------|
//! |   +0 |    4 | pid (claimed with a compare-exchange from 0) |
//! |   +4 |    4 | state: 0 vacant, 1 attached, 2 ready, 3 closed, 4 failed |
//! |   +8 |    8 | heartbeat counter |
//! |  +16 |    8 | process start time (Linux clock ticks; 0 unknown), against pid reuse |
//! |  +24 |    4 | host: terminate request (0 none, 1 drain, 2 now) |
//! |  +28 |    4 | kernel: length of the failure text |
//!
//! Each ring's control block has exactly the layout of the in-process ring's
//! [`ControlBlock`] (same magic, version, offsets; `slot_size` is the byte size
//! of a slot), plus four words in its padding for cross-process waiting: see
//! [`byte_ring`](super::byte_ring).
//!
//! # Lifetime
//!
//! The creating side makes the file with `O_CREAT | O_EXCL`, mode 0600, sizes
//! it with `set_len` (zero-filled), writes the header and sets `init`. The
//! other side opens it, waits for `init`, validates every header value
//! against the file length before use, and claims its end. The creator
//! removes the file when its [`Region`] is dropped (if the path still names
//! the same file). Creating over a leftover region whose creator is dead
//! replaces it; over a live one, or over a file that is not a complete region,
//! fails with [`IpcError::AlreadyExists`].

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use memmap2::MmapOptions;

use crate::ring::spsc::{ControlBlock, LAYOUT_VERSION, LINE_SIZE, MAGIC};

use super::error::IpcError;
use super::mapping::Mapping;
use super::sys;

/// Magic number at offset 0 of a region file: `b"DCIP"` read as a
/// little-endian `u32`.
pub const REGION_MAGIC: u32 = u32::from_le_bytes(*b"DCIP");

/// Version of the region layout described in this module.
pub const REGION_VERSION: u32 = 1;

/// Environment variable through which a spawned kernel process learns the
/// path of its region.
pub const ENV_VAR: &str = "DOTCOMPUTE_IPC";

/// Prefix of region file names made from a plain name.
pub const FILE_PREFIX: &str = "dotcompute-";

/// Largest number of slots per ring.
pub const MAX_CAPACITY: usize = 1 << 20;
/// Smallest slot size in bytes (the 8-byte record header plus 8 bytes).
pub const MIN_SLOT_SIZE: usize = 16;
/// Largest slot size in bytes.
pub const MAX_SLOT_SIZE: usize = 1 << 16;
/// Largest data area of one ring in bytes.
pub const MAX_RING_BYTES: usize = 1 << 30;
/// Bytes reserved for the kernel's failure text.
pub const FAILURE_TEXT_MAX: usize = 1024;

// Header offsets (see the module docs).
pub(crate) const H_MAGIC: usize = 0;
pub(crate) const H_VERSION: usize = 4;
pub(crate) const H_TOTAL_LEN: usize = 8;
pub(crate) const H_RING0: usize = 16;
pub(crate) const H_RING1: usize = 24;
pub(crate) const H_CREATOR: usize = 32;
pub(crate) const H_INIT: usize = 36;
pub(crate) const H_HB_INTERVAL_US: usize = 40;
pub(crate) const H_HB_TIMEOUT_MS: usize = 44;
pub(crate) const END_LINE: [usize; 2] = [LINE_SIZE, 2 * LINE_SIZE];
pub(crate) const E_PID: usize = 0;
pub(crate) const E_STATE: usize = 4;
pub(crate) const E_HEARTBEAT: usize = 8;
pub(crate) const E_START_TIME: usize = 16;
pub(crate) const E_TERMINATE: usize = 24;
pub(crate) const E_TEXT_LEN: usize = 28;
pub(crate) const FAILURE_TEXT: usize = 3 * LINE_SIZE;
/// Size of the header; ring 0 starts here.
pub const HEADER_SIZE: usize = FAILURE_TEXT + FAILURE_TEXT_MAX;

const _: () = assert!(HEADER_SIZE.is_multiple_of(LINE_SIZE));
const _: () = assert!(ControlBlock::SIZE.is_multiple_of(LINE_SIZE));

/// States of an end (the word at end line `+4`).
pub(crate) mod end_state {
    /// The zero-filled initial state (named for the docs and tests).
    #[allow(dead_code)]
    pub const VACANT: u32 = 0;
    pub const ATTACHED: u32 = 1;
    pub const READY: u32 = 2;
    pub const CLOSED: u32 = 3;
    pub const FAILED: u32 = 4;
}

/// Values of the terminate request word (host end line `+24`).
pub(crate) mod terminate {
    pub const NONE: u32 = 0;
    pub const DRAIN: u32 = 1;
    pub const NOW: u32 = 2;
}

/// The two ends of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that sends requests and receives replies (the runtime).
    Host,
    /// The side that runs the kernel's handler.
    Kernel,
}

impl Role {
    pub(crate) fn index(self) -> usize {
        match self {
            Role::Host => 0,
            Role::Kernel => 1,
        }
    }

    /// The other end.
    pub fn peer(self) -> Role {
        match self {
            Role::Host => Role::Kernel,
            Role::Kernel => Role::Host,
        }
    }

    /// The ring this end writes: 0 for the host, 1 for the kernel.
    pub(crate) fn tx_ring(self) -> usize {
        self.index()
    }

    /// The ring this end reads.
    pub(crate) fn rx_ring(self) -> usize {
        self.peer().index()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Host => "host",
            Role::Kernel => "kernel",
        })
    }
}

/// Shape and timing of a region, chosen by its creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionConfig {
    /// Slots per ring (power of two, 1..=[`MAX_CAPACITY`]). Default 1024.
    pub capacity: usize,
    /// Bytes per slot (multiple of 8, [`MIN_SLOT_SIZE`]..=[`MAX_SLOT_SIZE`]).
    /// A message takes `ceil((8 + len) / slot_size)` consecutive slots.
    /// Default 256.
    pub slot_size: usize,
    /// How often each end beats its heartbeat. Default 100 ms (fifty beats
    /// within the default timeout).
    pub heartbeat_interval: Duration,
    /// How long a peer may go without a beat before it counts as
    /// unresponsive; `None` disables the check (the pid check remains).
    /// Default 5 s.
    pub heartbeat_timeout: Option<Duration>,
}

impl Default for RegionConfig {
    fn default() -> Self {
        RegionConfig {
            capacity: 1024,
            slot_size: 256,
            heartbeat_interval: Duration::from_millis(100),
            heartbeat_timeout: Some(Duration::from_secs(5)),
        }
    }
}

impl RegionConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), IpcError> {
        let c = self.capacity;
        if c == 0 || !c.is_power_of_two() || c > MAX_CAPACITY {
            return Err(IpcError::config(
                "capacity",
                c,
                format!("must be a power of two in 1..={MAX_CAPACITY}"),
            ));
        }
        let s = self.slot_size;
        if !s.is_multiple_of(8) || !(MIN_SLOT_SIZE..=MAX_SLOT_SIZE).contains(&s) {
            return Err(IpcError::config(
                "slot_size",
                s,
                format!("must be a multiple of 8 in {MIN_SLOT_SIZE}..={MAX_SLOT_SIZE}"),
            ));
        }
        if c * s > MAX_RING_BYTES {
            return Err(IpcError::config(
                "capacity * slot_size",
                c * s,
                format!("a ring holds at most {MAX_RING_BYTES} bytes"),
            ));
        }
        let us = self.heartbeat_interval.as_micros();
        if us == 0 || us > u128::from(u32::MAX) {
            return Err(IpcError::config(
                "heartbeat_interval",
                format!("{:?}", self.heartbeat_interval),
                "must be between 1 µs and about 71 minutes",
            ));
        }
        if let Some(t) = self.heartbeat_timeout {
            if t <= self.heartbeat_interval * 2 || t.as_millis() > u128::from(u32::MAX) {
                return Err(IpcError::config(
                    "heartbeat_timeout",
                    format!("{t:?}"),
                    "must exceed two heartbeat intervals (and fit in u32 milliseconds)",
                ));
            }
        }
        Ok(())
    }

    /// Largest encoded message a ring of this shape carries.
    pub fn max_message(&self) -> usize {
        self.capacity * self.slot_size - 8
    }

    fn ring_bytes(&self) -> usize {
        ControlBlock::SIZE + self.capacity * self.slot_size
    }

    fn ring_offsets(&self) -> (usize, usize, usize) {
        let r0 = HEADER_SIZE;
        let r1 = (r0 + self.ring_bytes()).next_multiple_of(LINE_SIZE);
        let total = (r1 + self.ring_bytes()).next_multiple_of(LINE_SIZE);
        (r0, r1, total)
    }
}

/// Where a ring lies in the mapping (a local, validated copy).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingLayout {
    /// Offset of its control block.
    pub control: usize,
    /// Offset of its first slot.
    pub data: usize,
    /// Number of slots (power of two).
    pub capacity: u64,
    /// Bytes per slot (multiple of 8, >= 16).
    pub slot_size: usize,
}

/// The directory where named regions live: `/dev/shm` where it exists, the
/// temporary directory otherwise.
pub fn default_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The file of the region called `name`: `name` itself if it contains a `/`
/// (a path), otherwise `<default_dir>/dotcompute-<name>`.
///
/// # Errors
///
/// [`IpcError::InvalidConfig`] for an empty name, or a plain name with
/// characters other than ASCII letters, digits, `.`, `_` and `-` (or longer
/// than 200 bytes).
pub fn region_path(name: &str) -> Result<PathBuf, IpcError> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(IpcError::config(
            "name",
            format!("{name:?}"),
            "use 1-200 ASCII letters, digits, '.', '_' or '-' (not starting with '.'), or a path with a '/'",
        ));
    }
    Ok(default_dir().join(format!("{FILE_PREFIX}{name}")))
}

/// A mapped region with one end claimed by this process.
///
/// Dropping the creator's handle removes the file; dropping any handle whose
/// end is still attached or ready marks that end closed and wakes the peer.
pub struct Region {
    mem: Mapping,
    path: PathBuf,
    role: Role,
    /// `(dev, ino)` of the file if this handle created it.
    created: Option<(u64, u64)>,
    rings: [RingLayout; 2],
    heartbeat_interval: Duration,
    heartbeat_timeout: Option<Duration>,
    /// Set once the rings have been split into their halves.
    split: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.path)
            .field("role", &self.role)
            .field("creator", &self.created.is_some())
            .field("len", &self.mem.len())
            .field("capacity", &self.rings[0].capacity)
            .field("slot_size", &self.rings[0].slot_size)
            .finish()
    }
}

enum Existing {
    Stale,
    Live(u32),
    Foreign,
}

impl Region {
    /// Creates the region file at `path` and claims the `role` end.
    ///
    /// # Errors
    ///
    /// [`IpcError::InvalidConfig`], [`IpcError::AlreadyExists`] (a live
    /// region, or a file that is not a region, is there), or
    /// [`IpcError::Io`].
    pub fn create(path: impl AsRef<Path>, role: Role, config: &RegionConfig) -> Result<Region, IpcError> {
        let path = path.as_ref();
        config.validate()?;
        let file = match create_file(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match inspect_existing(path) {
                Existing::Stale => {
                    tracing::info!(path = %path.display(), "replacing a stale region whose creator is dead");
                    match std::fs::remove_file(path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(IpcError::io("remove stale", path, e)),
                    }
                    create_file(path).map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => IpcError::AlreadyExists {
                            path: path.to_path_buf(),
                            pid: None,
                        },
                        _ => IpcError::io("create", path, e),
                    })?
                }
                Existing::Live(pid) => {
                    return Err(IpcError::AlreadyExists {
                        path: path.to_path_buf(),
                        pid: Some(pid),
                    })
                }
                Existing::Foreign => {
                    return Err(IpcError::AlreadyExists {
                        path: path.to_path_buf(),
                        pid: None,
                    })
                }
            },
            Err(e) => return Err(IpcError::io("create", path, e)),
        };
        let meta = file.metadata().map_err(|e| IpcError::io("stat", path, e))?;
        let id = (meta.dev(), meta.ino());
        // From here on the file is ours: remove it if anything fails.
        let cleanup = |e: IpcError| {
            let _ = std::fs::remove_file(path);
            e
        };
        let (r0, r1, total) = config.ring_offsets();
        file.set_len(total as u64)
            .map_err(|e| cleanup(IpcError::io("size", path, e)))?;
        let mem = map(&file, total, path).map_err(cleanup)?;
        let slot = config.slot_size as u64;
        let capacity = config.capacity as u64;
        for ring in [r0, r1] {
            mem.u32(ring + ControlBlock::MAGIC_OFFSET)
                .store(MAGIC, Ordering::Relaxed);
            mem.u32(ring + ControlBlock::VERSION_OFFSET)
                .store(LAYOUT_VERSION, Ordering::Relaxed);
            mem.u64(ring + ControlBlock::CAPACITY_OFFSET)
                .store(capacity, Ordering::Relaxed);
            mem.u64(ring + ControlBlock::SLOT_SIZE_OFFSET)
                .store(slot, Ordering::Relaxed);
        }
        mem.u32(H_MAGIC).store(REGION_MAGIC, Ordering::Relaxed);
        mem.u32(H_VERSION).store(REGION_VERSION, Ordering::Relaxed);
        mem.u64(H_TOTAL_LEN).store(total as u64, Ordering::Relaxed);
        mem.u64(H_RING0).store(r0 as u64, Ordering::Relaxed);
        mem.u64(H_RING1).store(r1 as u64, Ordering::Relaxed);
        mem.u32(H_CREATOR).store(role.index() as u32, Ordering::Relaxed);
        // Validated above to fit.
        mem.u32(H_HB_INTERVAL_US)
            .store(config.heartbeat_interval.as_micros() as u32, Ordering::Relaxed);
        mem.u32(H_HB_TIMEOUT_MS).store(
            config.heartbeat_timeout.map_or(0, |t| t.as_millis().max(1) as u32),
            Ordering::Relaxed,
        );
        let end = END_LINE[role.index()];
        let pid = sys::current_pid();
        mem.u32(end + E_PID).store(pid, Ordering::Relaxed);
        mem.u64(end + E_START_TIME)
            .store(sys::process_start_time(pid), Ordering::Relaxed);
        mem.u32(end + E_STATE).store(end_state::ATTACHED, Ordering::Relaxed);
        // Publishes everything above to an opener that Acquire-loads `init`.
        mem.u32(H_INIT).store(1, Ordering::Release);
        let ring = |control: usize| RingLayout {
            control,
            data: control + ControlBlock::SIZE,
            capacity,
            slot_size: config.slot_size,
        };
        Ok(Region {
            mem,
            path: path.to_path_buf(),
            role,
            created: Some(id),
            rings: [ring(r0), ring(r1)],
            heartbeat_interval: config.heartbeat_interval,
            heartbeat_timeout: config.heartbeat_timeout,
            split: Default::default(),
        })
    }

    /// Opens the existing region at `path` and claims the `role` end,
    /// waiting up to `timeout` for its creator to finish initialising it.
    ///
    /// # Errors
    ///
    /// [`IpcError::NotFound`], [`IpcError::InvalidRegion`] (any header value
    /// out of range), [`IpcError::AlreadyAttached`], [`IpcError::Timeout`],
    /// or [`IpcError::Io`].
    pub fn open(path: impl AsRef<Path>, role: Role, timeout: Duration) -> Result<Region, IpcError> {
        let path = path.as_ref();
        let invalid = |reason: String| IpcError::InvalidRegion {
            path: path.to_path_buf(),
            reason,
        };
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IpcError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(IpcError::io("open", path, e)),
        };
        let len = file.metadata().map_err(|e| IpcError::io("stat", path, e))?.len();
        let max_len = (HEADER_SIZE + 2 * (ControlBlock::SIZE + MAX_RING_BYTES + LINE_SIZE)) as u64;
        if len < HEADER_SIZE as u64 || len > max_len {
            return Err(invalid(format!(
                "file length {len} is outside {HEADER_SIZE}..={max_len}"
            )));
        }
        let len = len as usize;
        let mem = map(&file, len, path)?;
        let start = Instant::now();
        while mem.u32(H_INIT).load(Ordering::Acquire) != 1 {
            if start.elapsed() >= timeout {
                return Err(IpcError::Timeout {
                    operation: "for the region's creator to initialise it",
                    waited: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let magic = mem.u32(H_MAGIC).load(Ordering::Relaxed);
        if magic != REGION_MAGIC {
            return Err(invalid(format!("bad magic {magic:#010x}")));
        }
        let version = mem.u32(H_VERSION).load(Ordering::Relaxed);
        if version != REGION_VERSION {
            return Err(invalid(format!(
                "layout version {version}, this build reads {REGION_VERSION}"
            )));
        }
        let total = mem.u64(H_TOTAL_LEN).load(Ordering::Relaxed);
        if total != len as u64 {
            return Err(invalid(format!("header says {total} bytes, the file has {len}")));
        }
        let mut rings = [RingLayout {
            control: 0,
            data: 0,
            capacity: 0,
            slot_size: 0,
        }; 2];
        let mut min_start = HEADER_SIZE as u64;
        for (i, field) in [H_RING0, H_RING1].into_iter().enumerate() {
            let off = mem.u64(field).load(Ordering::Relaxed);
            if off < min_start || off % LINE_SIZE as u64 != 0 || off > len as u64 {
                return Err(invalid(format!("ring {i} offset {off} out of range")));
            }
            let off = off as usize;
            if len - off < ControlBlock::SIZE {
                return Err(invalid(format!("ring {i} control block past the end")));
            }
            let rmagic = mem.u32(off + ControlBlock::MAGIC_OFFSET).load(Ordering::Relaxed);
            let rversion = mem.u32(off + ControlBlock::VERSION_OFFSET).load(Ordering::Relaxed);
            if rmagic != MAGIC || rversion != LAYOUT_VERSION {
                return Err(invalid(format!(
                    "ring {i} control block magic {rmagic:#010x} version {rversion}"
                )));
            }
            let capacity = mem.u64(off + ControlBlock::CAPACITY_OFFSET).load(Ordering::Relaxed);
            let slot = mem.u64(off + ControlBlock::SLOT_SIZE_OFFSET).load(Ordering::Relaxed);
            let shape_ok = capacity.is_power_of_two()
                && capacity <= MAX_CAPACITY as u64
                && slot % 8 == 0
                && (MIN_SLOT_SIZE as u64..=MAX_SLOT_SIZE as u64).contains(&slot);
            // Both bounded above, so the product cannot overflow.
            let bytes = capacity * slot;
            if !shape_ok || bytes > MAX_RING_BYTES as u64 {
                return Err(invalid(format!(
                    "ring {i} shape {capacity} x {slot} bytes out of range"
                )));
            }
            let data = off + ControlBlock::SIZE;
            if ((len - data) as u64) < bytes {
                return Err(invalid(format!("ring {i} data past the end of the file")));
            }
            rings[i] = RingLayout {
                control: off,
                data,
                capacity,
                slot_size: slot as usize,
            };
            min_start = (data as u64 + bytes).next_multiple_of(LINE_SIZE as u64);
        }
        let hb_us = mem.u32(H_HB_INTERVAL_US).load(Ordering::Relaxed);
        let hb_ms = mem.u32(H_HB_TIMEOUT_MS).load(Ordering::Relaxed);
        if hb_us == 0 {
            return Err(invalid("heartbeat interval is zero".into()));
        }
        let heartbeat_interval = Duration::from_micros(u64::from(hb_us));
        let heartbeat_timeout = (hb_ms != 0).then(|| Duration::from_millis(u64::from(hb_ms)));
        let creator = mem.u32(H_CREATOR).load(Ordering::Relaxed);
        if creator > 1 {
            return Err(invalid(format!("creator role {creator}")));
        }
        // Claim our end.
        let end = END_LINE[role.index()];
        let pid = sys::current_pid();
        if let Err(holder) = mem
            .u32(end + E_PID)
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
        {
            return Err(IpcError::AlreadyAttached {
                path: path.to_path_buf(),
                role,
                pid: holder,
            });
        }
        mem.u64(end + E_START_TIME)
            .store(sys::process_start_time(pid), Ordering::Relaxed);
        mem.u32(end + E_STATE).store(end_state::ATTACHED, Ordering::Release);
        Ok(Region {
            mem,
            path: path.to_path_buf(),
            role,
            created: None,
            rings,
            heartbeat_interval,
            heartbeat_timeout,
            split: Default::default(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The end this handle claimed.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this handle created the file (and removes it on drop).
    pub fn is_creator(&self) -> bool {
        self.created.is_some()
    }

    /// Largest encoded message the rings carry.
    pub fn max_message(&self) -> usize {
        // Both rings have the creator's shape; take the smaller for safety.
        self.rings
            .iter()
            .map(|r| r.capacity as usize * r.slot_size - 8)
            .min()
            .unwrap_or(0)
    }

    /// Marks the rings split; true if they already were.
    pub(crate) fn split_taken(&self) -> bool {
        self.split.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn mem(&self) -> &Mapping {
        &self.mem
    }

    pub(crate) fn ring(&self, index: usize) -> RingLayout {
        self.rings[index]
    }

    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    pub(crate) fn heartbeat_timeout(&self) -> Option<Duration> {
        self.heartbeat_timeout
    }

    fn end_word(&self, role: Role, field: usize) -> &std::sync::atomic::AtomicU32 {
        self.mem.u32(END_LINE[role.index()] + field)
    }

    /// The pid that claimed `role`'s end (0 while vacant).
    pub fn end_pid(&self, role: Role) -> u32 {
        self.end_word(role, E_PID).load(Ordering::Acquire)
    }

    pub(crate) fn end_start_time(&self, role: Role) -> u64 {
        self.mem
            .u64(END_LINE[role.index()] + E_START_TIME)
            .load(Ordering::Relaxed)
    }

    pub(crate) fn end_state(&self, role: Role) -> u32 {
        self.end_word(role, E_STATE).load(Ordering::Acquire)
    }

    pub(crate) fn set_own_state(&self, state: u32) {
        self.end_word(self.role, E_STATE).store(state, Ordering::Release);
    }

    pub(crate) fn heartbeat(&self, role: Role) -> u64 {
        self.mem
            .u64(END_LINE[role.index()] + E_HEARTBEAT)
            .load(Ordering::Relaxed)
    }

    pub(crate) fn beat(&self) {
        self.mem
            .u64(END_LINE[self.role.index()] + E_HEARTBEAT)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The host's terminate request ([`terminate`] values).
    pub(crate) fn terminate_request(&self) -> u32 {
        self.end_word(Role::Host, E_TERMINATE).load(Ordering::Acquire)
    }

    /// Host only: asks the kernel to stop (a stronger request wins).
    pub(crate) fn request_terminate(&self, mode: u32) {
        debug_assert_eq!(self.role, Role::Host);
        self.end_word(Role::Host, E_TERMINATE).fetch_max(mode, Ordering::AcqRel);
    }

    /// Kernel only: records why the handler failed, then the FAILED state.
    pub(crate) fn set_failure(&self, text: &str) {
        debug_assert_eq!(self.role, Role::Kernel);
        let mut n = text.len().min(FAILURE_TEXT_MAX);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        self.mem.write_bytes(FAILURE_TEXT, &text.as_bytes()[..n]);
        self.end_word(Role::Kernel, E_TEXT_LEN)
            .store(n as u32, Ordering::Relaxed);
        self.set_own_state(end_state::FAILED);
    }

    /// The kernel's failure text, made safe for an error: length validated,
    /// invalid UTF-8 replaced, control characters (NULs included) escaped,
    /// cut to a bounded length ([`crate::error::peer_text`]). The peer is
    /// not trusted.
    pub(crate) fn failure_text(&self) -> String {
        let n = self.end_word(Role::Kernel, E_TEXT_LEN).load(Ordering::Relaxed) as usize;
        let n = n.min(FAILURE_TEXT_MAX);
        let mut buf = vec![0u8; n];
        self.mem.read_bytes(FAILURE_TEXT, &mut buf);
        crate::error::peer_text(&buf)
    }

    /// Marks every ring side we own closed and wakes the peer's waits.
    pub(crate) fn close_rings(&self) {
        let tx = self.rings[self.role.tx_ring()];
        let rx = self.rings[self.role.rx_ring()];
        self.mem
            .u32(tx.control + ControlBlock::PRODUCER_CLOSED_OFFSET)
            .store(1, Ordering::Release);
        self.mem
            .u32(rx.control + ControlBlock::CONSUMER_CLOSED_OFFSET)
            .store(1, Ordering::Release);
        super::byte_ring::wake_all(self);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let state = self.end_state(self.role);
        if state == end_state::ATTACHED || state == end_state::READY {
            self.set_own_state(end_state::CLOSED);
            self.close_rings();
        }
        if let Some((dev, ino)) = self.created {
            // Only if the path still names our file (not a replacement).
            if let Ok(meta) = std::fs::metadata(&self.path) {
                if meta.dev() == dev && meta.ino() == ino {
                    let _ = std::fs::remove_file(&self.path);
                }
            }
        }
    }
}

fn create_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn map(file: &File, len: usize, path: &Path) -> Result<Mapping, IpcError> {
    // SAFETY: memmap2 marks mapping unsafe because another process may change
    // the file under us. We never form references to the mapped bytes: all
    // access goes through `Mapping`'s atomic words, which tolerate concurrent
    // writes (see mapping.rs); `len` is the file's length at open/creation.
    let map = unsafe { MmapOptions::new().len(len).map_mut(file) }.map_err(|e| IpcError::io("map", path, e))?;
    Ok(Mapping::new(map))
}

/// Reads an existing file's header with plain `read` (no mapping) to decide
/// whether it is a leftover region of a dead creator.
fn inspect_existing(path: &Path) -> Existing {
    let mut head = [0u8; 3 * LINE_SIZE];
    let Ok(mut f) = File::open(path) else {
        // Gone meanwhile: treat as stale, the retry will tell.
        return Existing::Stale;
    };
    if f.read_exact(&mut head).is_err() {
        return Existing::Foreign;
    }
    // Offsets are constants inside the 3-line header just read.
    let u32_at = |o: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&head[o..o + 4]);
        u32::from_ne_bytes(b)
    };
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[o..o + 8]);
        u64::from_ne_bytes(b)
    };
    if u32_at(H_MAGIC) != REGION_MAGIC || u32_at(H_INIT) != 1 {
        return Existing::Foreign;
    }
    let creator = u32_at(H_CREATOR) as usize;
    if creator > 1 {
        return Existing::Foreign;
    }
    let end = END_LINE[creator];
    let pid = u32_at(end + E_PID);
    let start = u64_at(end + E_START_TIME);
    if pid != 0 && sys::process_alive(pid, start) {
        Existing::Live(pid)
    } else {
        Existing::Stale
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    pub(crate) fn temp_path(tag: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{FILE_PREFIX}{tag}"));
        (dir, path)
    }

    #[test]
    fn header_offsets_match_docs() {
        assert_eq!(HEADER_SIZE, 1408);
        assert_eq!(END_LINE, [128, 256]);
        let (r0, r1, total) = RegionConfig::default().ring_offsets();
        assert_eq!(r0, 1408);
        assert_eq!(r1, 1408 + 384 + 1024 * 256);
        assert_eq!(total, r1 + 384 + 1024 * 256);
    }

    #[test]
    fn create_open_and_remove_on_drop() {
        let (_dir, path) = temp_path("basic");
        let host = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap();
        assert!(host.is_creator());
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let kernel = Region::open(&path, Role::Kernel, Duration::from_secs(1)).unwrap();
        assert_eq!(kernel.end_pid(Role::Host), std::process::id());
        assert_eq!(host.end_pid(Role::Kernel), std::process::id());
        assert_eq!(kernel.max_message(), 1024 * 256 - 8);
        // A second kernel cannot attach.
        let err = Region::open(&path, Role::Kernel, Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(err, IpcError::AlreadyAttached { role: Role::Kernel, .. }),
            "{err}"
        );
        drop(kernel);
        assert_eq!(host.end_state(Role::Kernel), end_state::CLOSED);
        assert!(path.exists());
        drop(host);
        assert!(!path.exists(), "creator removes the file");
    }

    #[test]
    fn live_region_blocks_create_and_stale_one_is_replaced() {
        let (_dir, path) = temp_path("stale");
        let live = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap();
        let err = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap_err();
        assert!(
            matches!(err, IpcError::AlreadyExists { pid: Some(p), .. } if p == std::process::id()),
            "{err}"
        );
        // Make it look like a region left by a dead creator: a pid that is
        // certainly gone (a reaped child), and keep the file on drop.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        live.mem.u32(END_LINE[0] + E_PID).store(dead, Ordering::Relaxed);
        live.mem.u64(END_LINE[0] + E_START_TIME).store(0, Ordering::Relaxed);
        let mut live = live;
        live.created = None;
        drop(live);
        assert!(path.exists());
        let fresh = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap();
        assert_eq!(fresh.end_pid(Role::Host), std::process::id());
        drop(fresh);
        assert!(!path.exists());
    }

    #[test]
    fn foreign_file_is_never_replaced() {
        let (_dir, path) = temp_path("foreign");
        std::fs::write(&path, b"not a region").unwrap();
        let err = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap_err();
        assert!(matches!(err, IpcError::AlreadyExists { pid: None, .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a region");
        let err = Region::open(&path, Role::Kernel, Duration::from_millis(10)).unwrap_err();
        assert!(matches!(err, IpcError::InvalidRegion { .. }), "{err}");
    }

    #[test]
    fn open_validates_every_header_value() {
        type Poke = fn(&Mapping, usize);
        let cases: &[(&str, Poke)] = &[
            ("magic", |m, _| m.u32(H_MAGIC).store(7, Ordering::Relaxed)),
            ("version", |m, _| m.u32(H_VERSION).store(99, Ordering::Relaxed)),
            ("length", |m, _| m.u64(H_TOTAL_LEN).store(12345, Ordering::Relaxed)),
            ("ring offset", |m, _| {
                m.u64(H_RING1).store(u64::MAX - 127, Ordering::Relaxed)
            }),
            ("ring overlap", |m, _| {
                m.u64(H_RING1).store(HEADER_SIZE as u64, Ordering::Relaxed)
            }),
            ("misaligned", |m, _| {
                m.u64(H_RING0).store(HEADER_SIZE as u64 + 8, Ordering::Relaxed)
            }),
            ("capacity", |m, r| {
                m.u64(r + ControlBlock::CAPACITY_OFFSET).store(3, Ordering::Relaxed)
            }),
            ("huge capacity", |m, r| {
                m.u64(r + ControlBlock::CAPACITY_OFFSET)
                    .store(1 << 40, Ordering::Relaxed)
            }),
            ("slot size", |m, r| {
                m.u64(r + ControlBlock::SLOT_SIZE_OFFSET).store(12, Ordering::Relaxed)
            }),
            ("past end", |m, r| {
                m.u64(r + ControlBlock::SLOT_SIZE_OFFSET)
                    .store(MAX_SLOT_SIZE as u64, Ordering::Relaxed)
            }),
            ("ring magic", |m, r| m.u32(r).store(0, Ordering::Relaxed)),
            ("creator", |m, _| m.u32(H_CREATOR).store(5, Ordering::Relaxed)),
        ];
        for (name, poke) in cases {
            let (_dir, path) = temp_path("validate");
            let region = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap();
            poke(&region.mem, region.rings[1].control);
            let err = Region::open(&path, Role::Kernel, Duration::from_millis(10)).unwrap_err();
            assert!(matches!(err, IpcError::InvalidRegion { .. }), "{name}: {err}");
        }
    }

    #[test]
    fn open_waits_for_init_and_times_out() {
        let (_dir, path) = temp_path("noinit");
        let region = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap();
        region.mem.u32(H_INIT).store(0, Ordering::Release);
        let err = Region::open(&path, Role::Kernel, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, IpcError::Timeout { .. }), "{err}");
        assert!(matches!(
            Region::open(path.with_extension("missing"), Role::Kernel, Duration::from_millis(20)),
            Err(IpcError::NotFound { .. })
        ));
    }

    #[test]
    fn config_validation() {
        let ok = RegionConfig::default();
        ok.validate().unwrap();
        for bad in [
            RegionConfig { capacity: 0, ..ok },
            RegionConfig { capacity: 6, ..ok },
            RegionConfig {
                capacity: MAX_CAPACITY * 2,
                ..ok
            },
            RegionConfig { slot_size: 12, ..ok },
            RegionConfig { slot_size: 100, ..ok },
            RegionConfig {
                slot_size: MAX_SLOT_SIZE * 2,
                ..ok
            },
            RegionConfig {
                capacity: MAX_CAPACITY,
                slot_size: MAX_SLOT_SIZE,
                ..ok
            },
            RegionConfig {
                heartbeat_interval: Duration::ZERO,
                ..ok
            },
            RegionConfig {
                heartbeat_timeout: Some(Duration::from_millis(30)),
                ..ok
            },
        ] {
            assert!(matches!(bad.validate(), Err(IpcError::InvalidConfig { .. })), "{bad:?}");
        }
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            region_path("abc-1.x_y").unwrap(),
            default_dir().join("dotcompute-abc-1.x_y")
        );
        assert_eq!(region_path("/tmp/x").unwrap(), PathBuf::from("/tmp/x"));
        for bad in ["", "a b", "..", ".hidden", "é", &"x".repeat(201)] {
            assert!(region_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failure_text_round_trips_and_is_bounded() {
        let (_dir, path) = temp_path("text");
        let _host = Region::create(&path, Role::Host, &RegionConfig::default()).unwrap();
        let kernel = Region::open(&path, Role::Kernel, Duration::from_secs(1)).unwrap();
        kernel.set_failure("division by zero");
        assert_eq!(kernel.failure_text(), "division by zero");
        assert_eq!(kernel.end_state(Role::Kernel), end_state::FAILED);
        let long = "é".repeat(FAILURE_TEXT_MAX);
        kernel.set_failure(&long);
        let text = kernel.failure_text();
        // Bounded (and cut to the error's limit, saying so), never garbled.
        let kept = "é".repeat(crate::error::PEER_TEXT_MAX_CHARS);
        assert!(
            text.len() <= FAILURE_TEXT_MAX && text.starts_with(&kept) && text.ends_with("cut)"),
            "{text}"
        );
        // A hostile peer's NULs and escape sequences come out escaped.
        kernel.set_failure("bad\0\x1b[2Jthing");
        assert_eq!(kernel.failure_text(), "bad\\u{0}\\u{1b}[2Jthing");
        // A garbage length is clamped, never read past the area.
        kernel
            .mem
            .u32(END_LINE[1] + E_TEXT_LEN)
            .store(u32::MAX, Ordering::Relaxed);
        assert!(kernel.failure_text().len() <= FAILURE_TEXT_MAX * 3);
    }
}
