//! The device's half of the protocol, in Rust: what the CUDA template
//! (`gpu/cuda/ring_kernel.cuh`) does, step for step, with a Rust handler.
//!
//! The emulator runs [`DeviceSide::step`] in a loop with back-off; the loom
//! models run the same `step` under every interleaving. Values the host wrote
//! (header, lifecycle, indices) are validated; anything impossible stops the
//! device with a [`FaultCode`] in the `fault` word and `Faulted` status.

use std::mem::size_of;
use std::sync::atomic::Ordering;

use super::layout::{ControlBlock, LinkLayout, RegionLayout, MAX_BATCH_SIZE};
use super::memory::SharedMemory;
use super::ring::{AttachError, Consumer, Producer, RingGeometry};
use super::{decode_lifecycle, status_word, DeviceState, FaultCode, Lifecycle, LINK_MAGIC, MAGIC, PROTOCOL_VERSION};
use crate::gpu::message::GpuMessage;

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Handled a batch of this many messages.
    Processed(u64),
    /// Active, but no message (or no room for replies).
    Idle,
    /// Not active: parked.
    Parked,
    /// Terminate acknowledged; the device must stop polling.
    Exited,
    /// A fault was recorded; the device must stop polling.
    Faulted(FaultCode),
}

/// The back-off parameters from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub spin_polls: u64,
    pub min_ns: u64,
    pub max_ns: u64,
}

/// The device's end of one kernel region (plus, optionally, link rings).
pub(crate) struct DeviceSide<M, In, Out, State> {
    control: M,
    input: Consumer<M, In>,
    output: Producer<M, Out>,
    /// The working copy of the state (on a GPU: device memory).
    state: State,
    state_offset: usize,
    batch: u64,
    backoff: Backoff,
    /// The command being obeyed, and its sequence number.
    command: Option<(Lifecycle, u64)>,
    heartbeat: u64,
    processed: u64,
    batches: u64,
    idle_polls: u64,
    errors: u64,
    last_error: u64,
}

fn header<M: SharedMemory>(mem: &M, offset: usize) -> u64 {
    mem.load(offset, Ordering::Acquire)
}

/// Records `code` in the region: the `fault` word, then `Faulted` (release).
pub(crate) fn store_fault<M: SharedMemory>(control: &M, code: FaultCode, ack: u64) {
    control.store(ControlBlock::FAULT, code.word(), Ordering::Relaxed);
    control.store(
        ControlBlock::DEVICE_STATE,
        status_word(DeviceState::Faulted, ack),
        Ordering::Release,
    );
}

fn link_geometry<M: SharedMemory, T: GpuMessage>(mem: &M) -> Result<RingGeometry, FaultCode> {
    if header(mem, LinkLayout::MAGIC) != LINK_MAGIC {
        return Err(FaultCode::BadMagic);
    }
    if header(mem, LinkLayout::VERSION) != PROTOCOL_VERSION {
        return Err(FaultCode::BadVersion);
    }
    if header(mem, LinkLayout::SLOT_SIZE) != size_of::<T>() as u64 {
        return Err(FaultCode::SizeMismatch);
    }
    let layout =
        LinkLayout::new(header(mem, LinkLayout::CAPACITY), size_of::<T>()).map_err(|_| FaultCode::BadGeometry)?;
    if layout.size > mem.len() {
        return Err(FaultCode::BadGeometry);
    }
    Ok(layout.ring())
}

impl<M, In, Out, State> DeviceSide<M, In, Out, State>
where
    M: SharedMemory,
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
{
    /// Validates the region header (and link headers) the way the CUDA
    /// template does, attaches to the rings, loads the initial state and
    /// acknowledges attachment with `Parked`. On failure the fault is
    /// recorded in the region and returned.
    pub fn attach(control: M, input_link: Option<M>, output_link: Option<M>) -> Result<Self, FaultCode> {
        let result = Self::try_attach(control.clone(), input_link, output_link);
        if let Err(code) = result {
            store_fault(&control, code, 0);
        }
        result
    }

    fn try_attach(control: M, input_link: Option<M>, output_link: Option<M>) -> Result<Self, FaultCode> {
        if header(&control, ControlBlock::MAGIC) != MAGIC {
            return Err(FaultCode::BadMagic);
        }
        if header(&control, ControlBlock::VERSION) != PROTOCOL_VERSION {
            return Err(FaultCode::BadVersion);
        }
        let sizes = [
            (ControlBlock::IN_SLOT_SIZE, size_of::<In>()),
            (ControlBlock::OUT_SLOT_SIZE, size_of::<Out>()),
            (ControlBlock::STATE_SIZE, size_of::<State>()),
        ];
        if sizes.iter().any(|&(off, size)| header(&control, off) != size as u64) {
            return Err(FaultCode::SizeMismatch);
        }
        let layout = RegionLayout::new(
            header(&control, ControlBlock::IN_CAPACITY),
            size_of::<In>(),
            header(&control, ControlBlock::OUT_CAPACITY),
            size_of::<Out>(),
            size_of::<State>(),
        )
        .map_err(|_| FaultCode::BadGeometry)?;
        let consistent = header(&control, ControlBlock::IN_SLOTS) == layout.in_slots as u64
            && header(&control, ControlBlock::OUT_SLOTS) == layout.out_slots as u64
            && header(&control, ControlBlock::STATE) == layout.state as u64
            && header(&control, ControlBlock::REGION_SIZE) == layout.size as u64
            && layout.size <= control.len();
        let batch = header(&control, ControlBlock::BATCH_SIZE);
        let backoff = Backoff {
            spin_polls: header(&control, ControlBlock::SPIN_POLLS),
            min_ns: header(&control, ControlBlock::BACKOFF_MIN_NS),
            max_ns: header(&control, ControlBlock::BACKOFF_MAX_NS),
        };
        if !consistent
            || batch == 0
            || batch > u64::from(MAX_BATCH_SIZE)
            || backoff.min_ns == 0
            || backoff.min_ns > backoff.max_ns
        {
            return Err(FaultCode::BadGeometry);
        }
        let (in_mem, in_geo) = match input_link {
            Some(mem) => {
                let geo = link_geometry::<M, In>(&mem)?;
                (mem, geo)
            }
            None => (control.clone(), layout.input_ring()),
        };
        let (out_mem, out_geo) = match output_link {
            Some(mem) => {
                let geo = link_geometry::<M, Out>(&mem)?;
                (mem, geo)
            }
            None => (control.clone(), layout.output_ring()),
        };
        let input = Consumer::attach(in_mem, in_geo).map_err(|e| match e {
            AttachError::Layout(_) => FaultCode::BadGeometry,
            AttachError::Protocol(_) => FaultCode::CorruptInputTail,
        })?;
        let output = Producer::attach(out_mem, out_geo).map_err(|e| match e {
            AttachError::Layout(_) => FaultCode::BadGeometry,
            AttachError::Protocol(_) => FaultCode::CorruptOutputHead,
        })?;
        let mut state = State::zeroed();
        // SAFETY: the state buffer is inside the region (`layout.size <=
        // len`, checked above) and the host wrote the initial state before
        // starting the device (thread spawn / kernel launch orders it), and
        // writes it again only after this device has exited; `state` has room
        // for `size_of::<State>()` bytes and any bytes are a valid `State`.
        unsafe {
            control.read(
                layout.state,
                (&mut state as *mut State).cast::<u8>(),
                size_of::<State>(),
            );
        }
        Ok(DeviceSide {
            control,
            input,
            output,
            state,
            state_offset: layout.state,
            batch,
            backoff,
            command: None,
            heartbeat: 0,
            processed: 0,
            batches: 0,
            idle_polls: 0,
            errors: 0,
            last_error: 0,
        })
    }

    /// The back-off parameters of the region.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    fn ack(&self) -> u64 {
        self.command.map_or(0, |(_, seq)| seq)
    }

    /// Stops on `code`: records it in the region.
    pub fn fault(&mut self, code: FaultCode) -> Step {
        self.store_counters();
        store_fault(&self.control, code, self.ack());
        Step::Faulted(code)
    }

    fn write_back_state(&self) {
        // SAFETY: the state buffer is inside the region (checked in attach).
        // The host reads it only after acquire-loading an acknowledgement of
        // its latest non-Active command, which this device stores (release)
        // right after this write-back and before any later write-back, so
        // no host read overlaps this write.
        unsafe {
            self.control.write(
                self.state_offset,
                (&self.state as *const State).cast::<u8>(),
                size_of::<State>(),
            );
        }
    }

    fn store_counters(&self) {
        let c = &self.control;
        c.store(ControlBlock::PROCESSED, self.processed, Ordering::Relaxed);
        c.store(ControlBlock::BATCHES, self.batches, Ordering::Relaxed);
        // The code before the count, the count with release: a host that
        // acquire-loads `errors` first then reads a code at least as recent
        // (stored in the other order, it could see a new count beside the
        // code before it: "1 error(s), the last with code 0").
        c.store(ControlBlock::LAST_ERROR, self.last_error, Ordering::Relaxed);
        c.store(ControlBlock::ERRORS, self.errors, Ordering::Release);
        c.store(ControlBlock::IDLE_POLLS, self.idle_polls, Ordering::Relaxed);
    }

    fn set_status(&self, state: DeviceState, ack: u64) {
        self.control
            .store(ControlBlock::DEVICE_STATE, status_word(state, ack), Ordering::Release);
    }

    /// One poll: beat, obey a new lifecycle command, then (if active) take
    /// and handle up to `batch_size` messages, publishing all replies and
    /// freeing all inputs at once. `handler` returns 0 or an error code.
    pub fn step<H>(&mut self, handler: &mut H) -> Step
    where
        H: FnMut(&In, &mut Out, &mut State) -> u32,
    {
        self.heartbeat = self.heartbeat.wrapping_add(1);
        self.control
            .store(ControlBlock::HEARTBEAT, self.heartbeat, Ordering::Release);
        let Some((lifecycle, seq)) = decode_lifecycle(self.control.load(ControlBlock::LIFECYCLE, Ordering::Acquire))
        else {
            return self.fault(FaultCode::BadLifecycle);
        };
        if self.command != Some((lifecycle, seq)) {
            self.command = Some((lifecycle, seq));
            match lifecycle {
                Lifecycle::Terminate => {
                    self.write_back_state();
                    self.store_counters();
                    self.set_status(DeviceState::Exited, seq);
                    return Step::Exited;
                }
                Lifecycle::Active => self.set_status(DeviceState::Running, seq),
                Lifecycle::Launched | Lifecycle::Deactivated => {
                    self.write_back_state();
                    self.store_counters();
                    self.set_status(DeviceState::Parked, seq);
                }
            }
        }
        if lifecycle != Lifecycle::Active {
            return Step::Parked;
        }
        let mut available = self.input.available_cached();
        if available < self.batch {
            available = match self.input.refresh() {
                Ok(n) => n,
                Err(_) => return self.fault(FaultCode::CorruptInputTail),
            };
        }
        let mut free = self.output.free_cached();
        if free < available.min(self.batch) {
            free = match self.output.refresh() {
                Ok(n) => n,
                Err(_) => return self.fault(FaultCode::CorruptOutputHead),
            };
        }
        let n = available.min(free).min(self.batch);
        if n == 0 {
            self.idle_polls += 1;
            self.control
                .store(ControlBlock::IDLE_POLLS, self.idle_polls, Ordering::Relaxed);
            return Step::Idle;
        }
        for k in 0..n {
            let msg = self.input.read(k);
            let mut reply = Out::zeroed();
            let code = handler(&msg, &mut reply, &mut self.state);
            if code != 0 {
                self.errors += 1;
                self.last_error = u64::from(code);
            }
            self.output.write(k, &reply);
        }
        self.output.publish(n);
        self.input.release(n);
        self.processed += n;
        self.batches += 1;
        self.store_counters();
        Step::Processed(n)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::gpu::message::NoState;
    use crate::gpu::protocol::host_side::HostControl;
    use crate::gpu::protocol::layout::DeviceParams;
    use crate::gpu::protocol::memory::{HostRegion, MappedRegion};
    use crate::gpu::protocol::{decode_status, lifecycle_word, DeviceCounters};

    #[derive(Debug, Clone, Copy, PartialEq, crate::gpu::GpuMessage)]
    #[repr(C)]
    struct M {
        v: u32,
    }

    fn fresh() -> (HostRegion, RegionLayout) {
        let layout = RegionLayout::for_types::<M, M, NoState>(4, 4).unwrap();
        let host = HostRegion::new(layout.size).unwrap();
        layout.init(&host.region(), &DeviceParams::default()).unwrap();
        (host, layout)
    }

    fn attach(r: MappedRegion) -> Result<DeviceSide<MappedRegion, M, M, NoState>, FaultCode> {
        DeviceSide::attach(r, None, None)
    }

    fn counters(r: MappedRegion, layout: RegionLayout) -> DeviceCounters {
        HostControl::new(r, layout).counters().unwrap()
    }

    #[test]
    fn the_header_is_validated_and_a_fault_recorded() {
        let cases: [(usize, u64, FaultCode); 5] = [
            (ControlBlock::MAGIC, 0x1234, FaultCode::BadMagic),
            (ControlBlock::VERSION, 99, FaultCode::BadVersion),
            (ControlBlock::IN_SLOT_SIZE, 8, FaultCode::SizeMismatch),
            (ControlBlock::BATCH_SIZE, 0, FaultCode::BadGeometry),
            (ControlBlock::OUT_SLOTS, 1, FaultCode::BadGeometry),
        ];
        for (offset, value, code) in cases {
            let (host, layout) = fresh();
            let r = host.region();
            r.store(offset, value, Ordering::Relaxed);
            assert_eq!(attach(r).err(), Some(code));
            let c = counters(r, layout);
            assert_eq!((c.state, c.fault_code()), (DeviceState::Faulted, Some(code)));
        }
        let (host, _) = fresh();
        let r = host.region();
        r.store(ControlBlock::IN_TAIL, 9, Ordering::Relaxed);
        assert_eq!(attach(r).err(), Some(FaultCode::CorruptInputTail));
    }

    #[test]
    fn commands_are_acknowledged_once_and_garbage_faults() {
        let (host, _) = fresh();
        let r = host.region();
        let mut dev = attach(r).unwrap();
        let mut h = |i: &M, o: &mut M, _: &mut NoState| {
            o.v = i.v;
            0
        };
        assert_eq!(dev.step(&mut h), Step::Parked);
        let status = || decode_status(r.load(ControlBlock::DEVICE_STATE, Ordering::Acquire)).unwrap();
        assert_eq!(status(), (DeviceState::Parked, 0));
        r.store(
            ControlBlock::LIFECYCLE,
            lifecycle_word(Lifecycle::Active, 1),
            Ordering::Release,
        );
        assert_eq!(dev.step(&mut h), Step::Idle);
        assert_eq!(status(), (DeviceState::Running, 1));
        r.store(ControlBlock::LIFECYCLE, 0xff, Ordering::Release);
        assert_eq!(dev.step(&mut h), Step::Faulted(FaultCode::BadLifecycle));
        assert_eq!(status().0, DeviceState::Faulted);
    }
}
