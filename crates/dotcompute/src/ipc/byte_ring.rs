//! A single-producer / single-consumer ring of fixed-size slots in a
//! [`Region`], carrying variable-length byte records.
//!
//! # Protocol
//!
//! The protocol of the in-process [`SpscRing`](crate::ring::spsc::SpscRing),
//! over bytes: `head` and `tail` are unbounded `u64` slot positions (all
//! arithmetic wrapping), the slot of position `p` is `p & (capacity - 1)`,
//! `0 <= tail - head <= capacity`, the producer writes slots in
//! `tail .. head + capacity` and publishes them with a `Release` store of
//! `tail`, the consumer reads slots in `head .. tail` after an `Acquire` load of
//! `tail` and frees them with a `Release` store of `head`. Each side keeps its
//! own index privately (the copy in shared memory is only ever written by it)
//! and a cached copy of the other's.
//!
//! A *record* is one message: at the first slot, `len: u32` (payload bytes)
//! and `tag: u32` (the low 32 bits of the record's position), then the payload,
//! continuing through the following slots (wrapping to slot 0 at the end of
//! the data area). A record takes `k = ceil((8 + len) / slot_size)` slots and is
//! published by one store of `tail + k`, so a consumer never sees part of a
//! record: a producer that dies mid-write leaves nothing visible. A message
//! longer than `capacity * slot_size - 8` bytes is refused with
//! [`IpcError::MessageTooLarge`] (no framing across several publishes: one
//! record is always one atomic publish).
//!
//! # Untrusted memory
//!
//! The consumer checks everything it reads from shared memory before use:
//! `tail - head <= capacity`, `len <= capacity * slot_size - 8`, `k <= tail - head`,
//! and `tag == head as u32`; the producer checks `tail - head <= capacity` on
//! each `head` it loads. A failed check is [`IpcError::Corrupt`] and poisons
//! the half (every later call returns the same error). Positions are masked
//! before they become offsets, so no value in the mapping can steer an access
//! out of the ring, and the payload is copied out word by word with atomic
//! loads before it is decoded, so a peer that scribbles on it concurrently can
//! only make the decode fail.
//!
//! # Waiting across processes
//!
//! Four words in the padding of the control block (beyond the fields of
//! [`ControlBlock`]) let a side sleep instead of spinning, with a futex on
//! Linux:
//!
//! | offset | word | written by |
//! |-------:|------|------------|
//! | 140 | `consumer_waiting` (0/1) | consumer |
//! | 144 | `space_seq`, bumped when freeing slots while the producer waits | consumer |
//! | 268 | `producer_waiting` (0/1) | producer |
//! | 272 | `data_seq`, bumped when publishing while the consumer waits | producer (and the consumer's own process, see below) |
//!
//! A sleeper reads the `seq` word, sets its `waiting` flag, issues a `SeqCst`
//! fence, re-checks the ring and only then sleeps on `seq` (with a timeout).
//! The other side stores its index, issues a `SeqCst` fence and reads the
//! flag; if set, it bumps `seq` and wakes it. The two fences make it
//! impossible for both to miss each other (store-buffering pattern), and the
//! futex's value check closes the window between reading `seq` and sleeping.
//! The wake costs a system call only when the other side actually sleeps.
//!
//! The consumer's own process may bump `data_seq` too (through a waker the
//! consumer hands out): the process tier's pump sleeps on it while also
//! registered with its runtime input queue, whose next message wakes it the
//! same way.

use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

use crate::ring::spsc::ControlBlock;

use super::error::IpcError;
use super::shm::{Region, RingLayout};
use super::sys;

/// Offset of `consumer_waiting` in a control block.
pub const CONSUMER_WAITING_OFFSET: usize = ControlBlock::CONSUMER_CLOSED_OFFSET + 4;
/// Offset of `space_seq` in a control block.
pub const SPACE_SEQ_OFFSET: usize = ControlBlock::CONSUMER_CLOSED_OFFSET + 8;
/// Offset of `producer_waiting` in a control block.
pub const PRODUCER_WAITING_OFFSET: usize = ControlBlock::PRODUCER_CLOSED_OFFSET + 4;
/// Offset of `data_seq` in a control block.
pub const DATA_SEQ_OFFSET: usize = ControlBlock::PRODUCER_CLOSED_OFFSET + 8;
/// Bytes of the record header (`len`, `tag`).
pub const RECORD_HEADER: usize = 8;

const _: () = {
    assert!(CONSUMER_WAITING_OFFSET == 140 && SPACE_SEQ_OFFSET == 144);
    assert!(PRODUCER_WAITING_OFFSET == 268 && DATA_SEQ_OFFSET == 272);
    // Still inside the consumer's and the producer's own lines.
    assert!(SPACE_SEQ_OFFSET + 4 <= ControlBlock::TAIL_OFFSET);
    assert!(DATA_SEQ_OFFSET + 4 <= ControlBlock::SIZE);
};

/// Number of slots a record of `len` payload bytes takes.
#[inline]
pub fn slots_for(len: usize, slot_size: usize) -> u64 {
    (RECORD_HEADER + len).div_ceil(slot_size) as u64
}

/// Splits a region into the ring halves of its end: the producer of the ring
/// it writes and the consumer of the ring it reads. Only once per region.
///
/// # Errors
///
/// [`IpcError::InvalidConfig`] on a second call; [`IpcError::Corrupt`] if the
/// indices in shared memory are already inconsistent.
pub fn split(region: &Arc<Region>) -> Result<(RingProducer, RingConsumer), IpcError> {
    if region.split_taken() {
        return Err(IpcError::config(
            "region",
            region.path().display(),
            "its rings are already split (one producer and one consumer per end)",
        ));
    }
    let role = region.role();
    let producer = RingProducer::new(region.clone(), region.ring(role.tx_ring()))?;
    let consumer = RingConsumer::new(region.clone(), region.ring(role.rx_ring()))?;
    Ok((producer, consumer))
}

/// Wakes every wait of the peer on the words this end owns (after a state
/// change such as terminate or close).
pub(crate) fn wake_all(region: &Region) {
    let role = region.role();
    let (tx, rx) = (region.ring(role.tx_ring()), region.ring(role.rx_ring()));
    bump_and_wake(region, [tx.control + DATA_SEQ_OFFSET, rx.control + SPACE_SEQ_OFFSET]);
}

/// Wakes every wait of this end (its consumer's sleep for data, its
/// producer's for room) from this process, after an event that is not on
/// the rings, such as the peer process's exit.
pub(crate) fn wake_own(region: &Region) {
    let role = region.role();
    let (tx, rx) = (region.ring(role.tx_ring()), region.ring(role.rx_ring()));
    bump_and_wake(region, [rx.control + DATA_SEQ_OFFSET, tx.control + SPACE_SEQ_OFFSET]);
}

/// Moves each futex word at these offsets and wakes all its sleepers.
fn bump_and_wake(region: &Region, words: [usize; 2]) {
    let mem = region.mem();
    for word in words {
        let w = mem.u32(word);
        w.fetch_add(1, Ordering::Release);
        sys::futex_wake(w, i32::MAX);
    }
}

/// A sleep begun with [`RingConsumer::arm_wait`]: the `data_seq` it saw.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct ArmedWait {
    seq: u32,
}

/// Wakes a consumer sleeping on `data_seq` (see [`RingConsumer::data_waker`]).
struct DataWaker {
    region: Arc<Region>,
    word: usize,
}

impl Wake for DataWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let w = self.region.mem().u32(self.word);
        w.fetch_add(1, Ordering::Release);
        sys::futex_wake(w, 1);
    }
}

fn check_indices(ring: &RingLayout, head: u64, tail: u64, which: &str) -> Result<u64, IpcError> {
    let used = tail.wrapping_sub(head);
    if used > ring.capacity {
        return Err(IpcError::corrupt(format!(
            "{which}: head {head} and tail {tail} are {used} slots apart, capacity is {}",
            ring.capacity
        )));
    }
    Ok(used)
}

/// The writing half of a byte ring. `Send`, not `Clone`.
pub struct RingProducer {
    region: Arc<Region>,
    ring: RingLayout,
    mask: u64,
    max_len: usize,
    tail: u64,
    /// `tail` as last stored in shared memory (records past it are written
    /// but not yet visible).
    published: u64,
    cached_head: u64,
    poisoned: Option<IpcError>,
}

impl std::fmt::Debug for RingProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingProducer")
            .field("capacity", &self.ring.capacity)
            .field("slot_size", &self.ring.slot_size)
            .field("tail", &self.tail)
            .finish()
    }
}

impl RingProducer {
    fn new(region: Arc<Region>, ring: RingLayout) -> Result<Self, IpcError> {
        let mem = region.mem();
        let tail = mem
            .u64(ring.control + ControlBlock::TAIL_OFFSET)
            .load(Ordering::Acquire);
        let head = mem
            .u64(ring.control + ControlBlock::HEAD_OFFSET)
            .load(Ordering::Acquire);
        check_indices(&ring, head, tail, "producer at attach")?;
        Ok(RingProducer {
            mask: ring.capacity - 1,
            max_len: ring.capacity as usize * ring.slot_size - RECORD_HEADER,
            region,
            ring,
            tail,
            published: tail,
            cached_head: head,
            poisoned: None,
        })
    }

    /// Largest payload this ring carries.
    pub fn max_message(&self) -> usize {
        self.max_len
    }

    fn poison(&mut self, e: IpcError) -> IpcError {
        self.poisoned = Some(e.clone());
        e
    }

    /// Free slots now, after a fresh load of `head`.
    fn refresh_free(&mut self) -> Result<u64, IpcError> {
        let head = self
            .region
            .mem()
            .u64(self.ring.control + ControlBlock::HEAD_OFFSET)
            .load(Ordering::Acquire);
        let used = match check_indices(&self.ring, head, self.tail, "producer") {
            Ok(used) => used,
            Err(e) => return Err(self.poison(e)),
        };
        self.cached_head = head;
        Ok(self.ring.capacity - used)
    }

    /// Appends `payload` as one record if there is room.
    ///
    /// Returns `Ok(false)` when the ring is full now (nothing written).
    ///
    /// # Errors
    ///
    /// [`IpcError::MessageTooLarge`] if it can never fit;
    /// [`IpcError::Corrupt`] if the consumer's index is out of range.
    pub fn try_push(&mut self, payload: &[u8]) -> Result<bool, IpcError> {
        let written = self.try_write(payload)?;
        if written {
            self.publish();
        }
        Ok(written)
    }

    /// [`try_push`](Self::try_push) without publishing: the record (and the
    /// ones written before it) becomes visible at the next
    /// [`publish`](Self::publish), so a batch costs one `tail` store, one
    /// fence and at most one wake-up. Unpublished records count against the
    /// room.
    pub(crate) fn try_write(&mut self, payload: &[u8]) -> Result<bool, IpcError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        let len = payload.len();
        if len > self.max_len {
            return Err(IpcError::MessageTooLarge { len, max: self.max_len });
        }
        let k = slots_for(len, self.ring.slot_size);
        let free = self.ring.capacity - self.tail.wrapping_sub(self.cached_head);
        if free < k && self.refresh_free()? < k {
            return Ok(false);
        }
        let mem = self.region.mem();
        let slot = self.ring.slot_size;
        let data_len = self.ring.capacity as usize * slot;
        // `tail & mask < capacity`, so `start <= data_len - slot_size` and the
        // 8-byte header fits in the slot (slot_size >= 16).
        let start = (self.tail & self.mask) as usize * slot;
        mem.u32(self.ring.data + start).store(len as u32, Ordering::Relaxed);
        mem.u32(self.ring.data + start + 4)
            .store(self.tail as u32, Ordering::Relaxed);
        let body = start + RECORD_HEADER;
        // Bytes up to the end of the data area (a multiple of 8, so only the
        // record's last word is ever padded), then the rest from slot 0. The
        // k slots hold 8 + round_up(len, 8) bytes, so padding stays inside.
        let first = len.min(data_len - body);
        mem.write_bytes(self.ring.data + body, &payload[..first]);
        if first < len {
            mem.write_bytes(self.ring.data, &payload[first..]);
        }
        self.tail = self.tail.wrapping_add(k);
        Ok(true)
    }

    /// Makes every record written so far visible to the consumer with one
    /// `tail` store, and wakes the consumer if it sleeps. Does nothing when
    /// nothing new was written.
    pub(crate) fn publish(&mut self) {
        if self.published == self.tail {
            return;
        }
        self.published = self.tail;
        let mem = self.region.mem();
        mem.u64(self.ring.control + ControlBlock::TAIL_OFFSET)
            .store(self.tail, Ordering::Release);
        // Pairs with the consumer's fence in `wait_for_data` (module docs).
        fence(Ordering::SeqCst);
        if mem
            .u32(self.ring.control + CONSUMER_WAITING_OFFSET)
            .load(Ordering::Relaxed)
            != 0
        {
            let seq = mem.u32(self.ring.control + DATA_SEQ_OFFSET);
            seq.fetch_add(1, Ordering::Release);
            sys::futex_wake(seq, 1);
        }
    }

    /// Sleeps up to `timeout` unless `slots` slots are free (returns early on
    /// a wake-up from the consumer or a state change; may return spuriously).
    pub(crate) fn wait_for_space(&self, slots: u64, timeout: Duration) {
        let mem = self.region.mem();
        let seq_word = mem.u32(self.ring.control + SPACE_SEQ_OFFSET);
        let seq = seq_word.load(Ordering::Acquire);
        let waiting = mem.u32(self.ring.control + PRODUCER_WAITING_OFFSET);
        waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let head = mem
            .u64(self.ring.control + ControlBlock::HEAD_OFFSET)
            .load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        // A corrupt head is reported by the next `try_push`; don't sleep on it.
        if used <= self.ring.capacity && self.ring.capacity - used < slots {
            sys::futex_wait(seq_word, seq, timeout);
        }
        waiting.store(0, Ordering::Relaxed);
    }

    /// Whether the consumer end closed the ring.
    pub fn is_consumer_closed(&self) -> bool {
        self.region
            .mem()
            .u32(self.ring.control + ControlBlock::CONSUMER_CLOSED_OFFSET)
            .load(Ordering::Acquire)
            != 0
    }

    /// Slots per ring.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> usize {
        self.ring.slot_size
    }
}

/// The reading half of a byte ring. `Send`, not `Clone`.
pub struct RingConsumer {
    region: Arc<Region>,
    ring: RingLayout,
    mask: u64,
    max_len: usize,
    head: u64,
    cached_tail: u64,
    poisoned: Option<IpcError>,
}

impl std::fmt::Debug for RingConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingConsumer")
            .field("capacity", &self.ring.capacity)
            .field("slot_size", &self.ring.slot_size)
            .field("head", &self.head)
            .finish()
    }
}

impl RingConsumer {
    fn new(region: Arc<Region>, ring: RingLayout) -> Result<Self, IpcError> {
        let mem = region.mem();
        let head = mem
            .u64(ring.control + ControlBlock::HEAD_OFFSET)
            .load(Ordering::Acquire);
        let tail = mem
            .u64(ring.control + ControlBlock::TAIL_OFFSET)
            .load(Ordering::Acquire);
        check_indices(&ring, head, tail, "consumer at attach")?;
        Ok(RingConsumer {
            mask: ring.capacity - 1,
            max_len: ring.capacity as usize * ring.slot_size - RECORD_HEADER,
            region,
            ring,
            head,
            cached_tail: head,
            poisoned: None,
        })
    }

    fn poison(&mut self, e: IpcError) -> IpcError {
        self.poisoned = Some(e.clone());
        e
    }

    /// Takes the oldest record into `out` (replacing its contents).
    ///
    /// Returns `Ok(false)` when the ring is empty now.
    ///
    /// # Errors
    ///
    /// [`IpcError::Corrupt`] if anything read from shared memory is out of
    /// range; the consumer is poisoned from then on.
    pub fn try_pop(&mut self, out: &mut Vec<u8>) -> Result<bool, IpcError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        let mem = self.region.mem();
        if self.head == self.cached_tail {
            let tail = mem
                .u64(self.ring.control + ControlBlock::TAIL_OFFSET)
                .load(Ordering::Acquire);
            if let Err(e) = check_indices(&self.ring, self.head, tail, "consumer") {
                return Err(self.poison(e));
            }
            self.cached_tail = tail;
            if tail == self.head {
                return Ok(false);
            }
        }
        let available = self.cached_tail.wrapping_sub(self.head);
        let slot = self.ring.slot_size;
        let data_len = self.ring.capacity as usize * slot;
        let start = (self.head & self.mask) as usize * slot;
        let len = mem.u32(self.ring.data + start).load(Ordering::Relaxed) as usize;
        let tag = mem.u32(self.ring.data + start + 4).load(Ordering::Relaxed);
        if tag != self.head as u32 {
            let e = IpcError::corrupt(format!(
                "record at position {} carries tag {tag:#x}, expected {:#x}",
                self.head, self.head as u32
            ));
            return Err(self.poison(e));
        }
        if len > self.max_len {
            let e = IpcError::corrupt(format!(
                "record at position {} claims {len} bytes, the ring carries at most {}",
                self.head, self.max_len
            ));
            return Err(self.poison(e));
        }
        let k = slots_for(len, slot);
        if k > available {
            let e = IpcError::corrupt(format!(
                "record at position {} of {len} bytes spans {k} slots, only {available} are published",
                self.head
            ));
            return Err(self.poison(e));
        }
        out.clear();
        out.resize(len, 0);
        let body = start + RECORD_HEADER;
        let first = len.min(data_len - body);
        mem.read_bytes(self.ring.data + body, &mut out[..first]);
        if first < len {
            mem.read_bytes(self.ring.data, &mut out[first..]);
        }
        self.head = self.head.wrapping_add(k);
        mem.u64(self.ring.control + ControlBlock::HEAD_OFFSET)
            .store(self.head, Ordering::Release);
        fence(Ordering::SeqCst);
        if mem
            .u32(self.ring.control + PRODUCER_WAITING_OFFSET)
            .load(Ordering::Relaxed)
            != 0
        {
            let seq = mem.u32(self.ring.control + SPACE_SEQ_OFFSET);
            seq.fetch_add(1, Ordering::Release);
            sys::futex_wake(seq, 1);
        }
        Ok(true)
    }

    /// Sleeps up to `timeout` unless a record is available (returns early on
    /// a wake-up from the producer or a state change; may return spuriously).
    pub(crate) fn wait_for_data(&self, timeout: Duration) {
        let mem = self.region.mem();
        let seq_word = mem.u32(self.ring.control + DATA_SEQ_OFFSET);
        let seq = seq_word.load(Ordering::Acquire);
        let waiting = mem.u32(self.ring.control + CONSUMER_WAITING_OFFSET);
        waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let tail = mem
            .u64(self.ring.control + ControlBlock::TAIL_OFFSET)
            .load(Ordering::Acquire);
        if tail == self.head {
            sys::futex_wait(seq_word, seq, timeout);
        }
        waiting.store(0, Ordering::Relaxed);
    }

    /// First half of a sleep that another event source may end too (the
    /// process tier's pump, which also waits for its runtime input queue):
    /// reads `data_seq` and raises `consumer_waiting` (with the fence of
    /// [`wait_for_data`](Self::wait_for_data)). Anything that changes
    /// `data_seq` after this (the producer publishing, a [`DataWaker`])
    /// makes [`sleep_armed`](Self::sleep_armed) return at once, so a wake-up
    /// registered elsewhere between the two calls is never lost.
    pub(crate) fn arm_wait(&self) -> ArmedWait {
        let mem = self.region.mem();
        let seq = mem.u32(self.ring.control + DATA_SEQ_OFFSET).load(Ordering::Acquire);
        mem.u32(self.ring.control + CONSUMER_WAITING_OFFSET)
            .store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        ArmedWait { seq }
    }

    /// Second half: sleeps up to `timeout` unless a record is available or
    /// `data_seq` moved since [`arm_wait`](Self::arm_wait); then lowers
    /// `consumer_waiting`. May return spuriously.
    pub(crate) fn sleep_armed(&self, armed: ArmedWait, timeout: Duration) {
        let mem = self.region.mem();
        let tail = mem
            .u64(self.ring.control + ControlBlock::TAIL_OFFSET)
            .load(Ordering::Acquire);
        if tail == self.head {
            sys::futex_wait(mem.u32(self.ring.control + DATA_SEQ_OFFSET), armed.seq, timeout);
        }
        self.disarm();
    }

    /// Lowers `consumer_waiting` after an [`arm_wait`](Self::arm_wait) that
    /// did not sleep.
    pub(crate) fn disarm(&self) {
        self.region
            .mem()
            .u32(self.ring.control + CONSUMER_WAITING_OFFSET)
            .store(0, Ordering::Relaxed);
    }

    /// A [`Waker`] that ends this consumer's sleeps from within its own
    /// process (bumps `data_seq` and wakes its futex, as the producer does).
    pub(crate) fn data_waker(&self) -> Waker {
        Waker::from(Arc::new(DataWaker {
            region: self.region.clone(),
            word: self.ring.control + DATA_SEQ_OFFSET,
        }))
    }

    /// Whether the producer end closed the ring (records published before
    /// remain readable).
    pub fn is_producer_closed(&self) -> bool {
        self.region
            .mem()
            .u32(self.ring.control + ControlBlock::PRODUCER_CLOSED_OFFSET)
            .load(Ordering::Acquire)
            != 0
    }

    /// Whether a record is available now (a fresh load of `tail`).
    pub fn has_data(&self) -> bool {
        self.head != self.cached_tail
            || self
                .region
                .mem()
                .u64(self.ring.control + ControlBlock::TAIL_OFFSET)
                .load(Ordering::Acquire)
                != self.head
    }

    /// Largest payload this ring carries.
    pub fn max_message(&self) -> usize {
        self.max_len
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::ipc::shm::{RegionConfig, Role};

    struct Pair {
        _dir: tempfile::TempDir,
        host: Arc<Region>,
        kernel: Arc<Region>,
    }

    fn pair(capacity: usize, slot_size: usize) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dotcompute-ring-test");
        let config = RegionConfig {
            capacity,
            slot_size,
            ..RegionConfig::default()
        };
        let host = Arc::new(Region::create(&path, Role::Host, &config).unwrap());
        let kernel = Arc::new(Region::open(&path, Role::Kernel, Duration::from_secs(1)).unwrap());
        Pair {
            _dir: dir,
            host,
            kernel,
        }
    }

    /// Host → kernel ring: producer on the host handle, consumer on the kernel's.
    fn halves(p: &Pair) -> (RingProducer, RingConsumer) {
        let (tx, _) = split(&p.host).unwrap();
        let (_, rx) = split(&p.kernel).unwrap();
        (tx, rx)
    }

    fn payload(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn written_records_appear_together_at_publish_and_take_room_before() {
        let p = pair(8, 32);
        let (mut tx, mut rx) = halves(&p);
        let mut out = Vec::new();
        for round in 0..20u8 {
            // Three records of 2 slots each: invisible until published.
            for i in 0..3 {
                assert!(tx.try_write(&payload(40, round.wrapping_add(i))).unwrap());
            }
            assert!(!rx.has_data(), "round {round}: visible before publish");
            // 6 of 8 slots taken by unpublished records: 3 more do not fit.
            assert!(!tx.try_write(&payload(80, 99)).unwrap());
            tx.publish();
            tx.publish(); // nothing new: no effect
            for i in 0..3 {
                assert!(rx.try_pop(&mut out).unwrap(), "round {round}");
                assert_eq!(out, payload(40, round.wrapping_add(i)));
            }
            assert!(!rx.try_pop(&mut out).unwrap());
        }
    }

    #[test]
    fn records_round_trip_with_wrap_around() {
        let p = pair(8, 32);
        let (mut tx, mut rx) = halves(&p);
        assert_eq!(tx.max_message(), 8 * 32 - 8);
        let mut out = Vec::new();
        assert!(!rx.try_pop(&mut out).unwrap());
        for round in 0..200usize {
            let len = (round * 37) % 120;
            let msg = payload(len, round as u8);
            assert!(tx.try_push(&msg).unwrap(), "round {round}");
            assert!(rx.has_data());
            assert!(rx.try_pop(&mut out).unwrap());
            assert_eq!(out, msg, "round {round}");
        }
        // Empty and maximal records.
        assert!(tx.try_push(&[]).unwrap());
        assert!(rx.try_pop(&mut out).unwrap());
        assert!(out.is_empty());
        let big = payload(tx.max_message(), 9);
        assert!(tx.try_push(&big).unwrap());
        assert!(!tx.try_push(&[1]).unwrap(), "a maximal record fills the ring");
        assert!(rx.try_pop(&mut out).unwrap());
        assert_eq!(out, big);
    }

    #[test]
    fn too_large_is_a_typed_error_and_not_poisoning() {
        let p = pair(4, 16);
        let (mut tx, mut rx) = halves(&p);
        let err = tx.try_push(&[0; 57]).unwrap_err();
        assert!(matches!(err, IpcError::MessageTooLarge { len: 57, max: 56 }), "{err}");
        assert!(tx.try_push(&[1, 2, 3]).unwrap());
        let mut out = Vec::new();
        assert!(rx.try_pop(&mut out).unwrap());
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn split_only_once() {
        let p = pair(4, 16);
        let _halves = split(&p.host).unwrap();
        assert!(matches!(split(&p.host), Err(IpcError::InvalidConfig { .. })));
    }

    #[test]
    fn counters_wrap_around_u64() {
        let p = pair(4, 16);
        let start = u64::MAX - 6;
        let ring = p.host.ring(0);
        let mem = p.host.mem();
        mem.u64(ring.control + ControlBlock::HEAD_OFFSET)
            .store(start, Ordering::Relaxed);
        mem.u64(ring.control + ControlBlock::TAIL_OFFSET)
            .store(start, Ordering::Relaxed);
        let (mut tx, mut rx) = halves(&p);
        let mut out = Vec::new();
        for i in 0..50u8 {
            let msg = payload(usize::from(i % 20), i);
            assert!(tx.try_push(&msg).unwrap());
            assert!(rx.try_pop(&mut out).unwrap());
            assert_eq!(out, msg);
        }
    }

    /// Writes `value` to a word of ring 0 and expects the consumer (or, for
    /// `head`, the producer) to report `Corrupt`, then stay poisoned.
    fn corrupt_case(name: &str, poke: impl FnOnce(&Region, RingLayout), via_producer: bool) {
        let p = pair(8, 32);
        let (mut tx, mut rx) = halves(&p);
        for i in 0..3 {
            assert!(tx.try_push(&payload(40, i)).unwrap());
        }
        let mut out = Vec::new();
        assert!(rx.try_pop(&mut out).unwrap());
        poke(&p.host, p.host.ring(0));
        let result = if via_producer {
            // Fill until the producer must look at `head`.
            (0..20).map(|_| tx.try_push(&[0; 40])).find(|r| r.is_err()).unwrap()
        } else {
            (0..20).map(|_| rx.try_pop(&mut out)).find(|r| r.is_err()).unwrap()
        };
        let err = result.unwrap_err();
        assert!(matches!(err, IpcError::Corrupt { .. }), "{name}: {err}");
        let again = if via_producer {
            tx.try_push(&[]).unwrap_err()
        } else {
            rx.try_pop(&mut out).unwrap_err()
        };
        assert_eq!(again.to_string(), err.to_string(), "{name}: poisoned");
    }

    #[test]
    fn corrupt_indices_lengths_and_tags_are_reported() {
        fn tail(r: &Region, l: RingLayout) -> &std::sync::atomic::AtomicU64 {
            r.mem().u64(l.control + ControlBlock::TAIL_OFFSET)
        }
        corrupt_case(
            "tail far ahead",
            |r, l| tail(r, l).store(1_000_000, Ordering::Release),
            false,
        );
        corrupt_case("tail behind head", |r, l| tail(r, l).store(0, Ordering::Release), false);
        corrupt_case(
            "tail wrapped",
            |r, l| tail(r, l).store(u64::MAX, Ordering::Release),
            false,
        );
        // Record at position 2 (slot 2): len beyond the ring.
        corrupt_case(
            "huge length",
            |r, l| r.mem().u32(l.data + 2 * 32).store(u32::MAX, Ordering::Relaxed),
            false,
        );
        // Record at position 2 claims more slots than are published (3 slots
        // are published in total, 2 records of 2 slots each remain... so make
        // the last one claim 3 slots).
        corrupt_case(
            "length past tail",
            |r, l| r.mem().u32(l.data + 4 * 32).store(100, Ordering::Relaxed),
            false,
        );
        corrupt_case(
            "wrong tag",
            |r, l| r.mem().u32(l.data + 2 * 32 + 4).store(77, Ordering::Relaxed),
            false,
        );
        fn head(r: &Region, l: RingLayout) -> &std::sync::atomic::AtomicU64 {
            r.mem().u64(l.control + ControlBlock::HEAD_OFFSET)
        }
        corrupt_case(
            "head ahead of tail",
            |r, l| head(r, l).store(1_000, Ordering::Release),
            true,
        );
        corrupt_case(
            "head far behind",
            |r, l| head(r, l).store(u64::MAX - 100, Ordering::Release),
            true,
        );
    }

    #[test]
    fn garbage_indices_at_attach_are_rejected() {
        let p = pair(8, 32);
        let ring = p.host.ring(0);
        p.host
            .mem()
            .u64(ring.control + ControlBlock::TAIL_OFFSET)
            .store(500, Ordering::Relaxed);
        assert!(matches!(split(&p.host), Err(IpcError::Corrupt { .. })));
        assert!(matches!(split(&p.kernel), Err(IpcError::Corrupt { .. })));
    }

    #[test]
    fn two_threads_stream_with_sleeping_waits() {
        let p = pair(16, 64);
        let (mut tx, mut rx) = halves(&p);
        const N: usize = 20_000;
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                let msg = payload(i % 300, i as u8);
                while !tx.try_push(&msg).unwrap() {
                    tx.wait_for_space(slots_for(msg.len(), 64), Duration::from_millis(50));
                }
                if i % 1000 == 0 {
                    // Let the consumer fall asleep now and then.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut out = Vec::new();
        for i in 0..N {
            while !rx.try_pop(&mut out).unwrap() {
                rx.wait_for_data(Duration::from_millis(50));
            }
            assert_eq!(out, payload(i % 300, i as u8), "message {i}");
        }
        producer.join().unwrap();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![(0usize..300).prop_map(Op::Push), Just(Op::Pop)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The ring behaves as a bounded FIFO of byte strings whose bound
        /// counts slots.
        #[test]
        fn matches_a_vecdeque_model(ops in proptest::collection::vec(op(), 1..200), slot in 2usize..6) {
            let slot_size = slot * 8;
            let p = pair(8, slot_size);
            let (mut tx, mut rx) = halves(&p);
            let max = 8 * slot_size - 8;
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut used = 0u64;
            let mut out = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(len) => {
                        let msg = payload(len, n as u8);
                        let r = tx.try_push(&msg);
                        if len > max {
                            prop_assert!(matches!(r, Err(IpcError::MessageTooLarge { .. })), "{:?}", r);
                        } else {
                            let k = slots_for(len, slot_size);
                            let fits = used + k <= 8;
                            prop_assert_eq!(r.unwrap(), fits);
                            if fits {
                                used += k;
                                model.push_back(msg);
                            }
                        }
                    }
                    Op::Pop => {
                        let got = rx.try_pop(&mut out).unwrap();
                        match model.pop_front() {
                            Some(m) => {
                                prop_assert!(got);
                                used -= slots_for(m.len(), slot_size);
                                prop_assert_eq!(&out, &m);
                            }
                            None => prop_assert!(!got),
                        }
                    }
                }
            }
        }

        /// Whatever garbage lands in the control block or the slots, both
        /// halves only ever answer Ok or a typed error: no panic, no access
        /// outside the ring.
        #[test]
        fn garbage_never_panics(pokes in proptest::collection::vec((0usize..(384 + 8 * 32) / 8, any::<u64>()), 1..8)) {
            let p = pair(8, 32);
            let (mut tx, mut rx) = halves(&p);
            for i in 0..4 {
                let _ = tx.try_push(&payload(20 + i, i as u8));
            }
            let ring = p.host.ring(0);
            for (word, value) in pokes {
                p.host.mem().u64(ring.control + word * 8).store(value, Ordering::Relaxed);
            }
            let mut out = Vec::new();
            for i in 0..20 {
                match rx.try_pop(&mut out) {
                    Ok(_) => prop_assert!(out.len() <= rx.max_message()),
                    Err(e) => prop_assert!(matches!(e, IpcError::Corrupt { .. }), "{}", e),
                }
                match tx.try_push(&payload(i * 7, 1)) {
                    Ok(_) => {}
                    Err(e) => prop_assert!(matches!(e, IpcError::Corrupt { .. }), "{}", e),
                }
            }
        }
    }
}
