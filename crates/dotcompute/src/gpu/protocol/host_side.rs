//! The host's control operations on a kernel region: lifecycle commands,
//! reading the device's words (validated), and reading the state buffer
//! when the protocol says it is final.

use std::mem::{size_of, MaybeUninit};
use std::sync::atomic::Ordering;

use super::layout::{ControlBlock, RegionLayout};
use super::memory::SharedMemory;
use super::{decode_status, lifecycle_word, DeviceCounters, DeviceState, Lifecycle, ProtocolError};
use crate::gpu::message::GpuMessage;

/// The host's end of the control block.
pub(crate) struct HostControl<M> {
    mem: M,
    layout: RegionLayout,
    /// The last command written, and its sequence number.
    command: Lifecycle,
    seq: u64,
}

impl<M: SharedMemory> HostControl<M> {
    /// Takes over a region that [`RegionLayout::init`] prepared
    /// (`lifecycle` = `Launched`, sequence 0).
    pub fn new(mem: M, layout: RegionLayout) -> Self {
        HostControl {
            mem,
            layout,
            command: Lifecycle::Launched,
            seq: 0,
        }
    }

    /// Writes the state buffer, before the device starts.
    pub fn write_initial_state<S: GpuMessage>(&self, state: &S) {
        assert_eq!(
            size_of::<S>(),
            self.layout.state_size,
            "state type differs from the layout"
        );
        // SAFETY: the buffer is inside the region (the layout was checked
        // against it at init); the device has not started, so nothing else
        // accesses it; `state` is readable for its size and has no padding.
        unsafe {
            self.mem
                .write(self.layout.state, (state as *const S).cast::<u8>(), size_of::<S>())
        }
    }

    /// Issues a lifecycle command (release store). After `Terminate`,
    /// further commands are ignored (it is sticky).
    pub fn command(&mut self, lifecycle: Lifecycle) {
        if self.command == Lifecycle::Terminate {
            return;
        }
        self.seq += 1;
        self.command = lifecycle;
        self.mem.store(
            ControlBlock::LIFECYCLE,
            lifecycle_word(lifecycle, self.seq),
            Ordering::Release,
        );
    }

    /// `sizeof(State)` of the region.
    pub fn state_size(&self) -> usize {
        self.layout.state_size
    }

    /// The last command written.
    pub fn last_command(&self) -> (Lifecycle, u64) {
        (self.command, self.seq)
    }

    /// Reads the device's words: the status first (acquire), then the
    /// counters, so that a final status implies final counters.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::BadWord`] if the status holds an unknown state, or
    /// acknowledges a command the host never issued.
    pub fn counters(&self) -> Result<DeviceCounters, ProtocolError> {
        let m = &self.mem;
        let word = m.load(ControlBlock::DEVICE_STATE, Ordering::Acquire);
        let (state, ack) = decode_status(word).ok_or(ProtocolError::BadWord {
            field: "device_state",
            value: word,
        })?;
        if ack > self.seq {
            return Err(ProtocolError::BadWord {
                field: "device_state",
                value: word,
            });
        }
        Ok(DeviceCounters {
            state,
            ack,
            heartbeat: m.load(ControlBlock::HEARTBEAT, Ordering::Acquire),
            processed: m.load(ControlBlock::PROCESSED, Ordering::Acquire),
            batches: m.load(ControlBlock::BATCHES, Ordering::Acquire),
            idle_polls: m.load(ControlBlock::IDLE_POLLS, Ordering::Acquire),
            // The count before the code: the device stores the code first
            // and the count with release, so the code read here is at least
            // as recent as the count.
            errors: m.load(ControlBlock::ERRORS, Ordering::Acquire),
            last_error: m.load(ControlBlock::LAST_ERROR, Ordering::Acquire),
            fault: m.load(ControlBlock::FAULT, Ordering::Acquire),
        })
    }

    /// Reads only the status word (acquire): the device's state and the
    /// command sequence it acknowledged.
    ///
    /// # Errors
    ///
    /// As [`counters`](Self::counters).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn status(&self) -> Result<(DeviceState, u64), ProtocolError> {
        let word = self.mem.load(ControlBlock::DEVICE_STATE, Ordering::Acquire);
        match decode_status(word) {
            Some((state, ack)) if ack <= self.seq => Ok((state, ack)),
            _ => Err(ProtocolError::BadWord {
                field: "device_state",
                value: word,
            }),
        }
    }

    /// Whether the device has acknowledged the latest command (and is, then,
    /// in the state the command asks for, or faulted).
    pub fn acknowledged(&self, counters: &DeviceCounters) -> bool {
        counters.ack == self.seq || counters.state == DeviceState::Faulted
    }

    /// Reads the state buffer if the device has acknowledged the latest
    /// command and that command is not `Active` (so the buffer is final
    /// until the next command); `None` otherwise.
    ///
    /// # Errors
    ///
    /// As [`counters`](Self::counters).
    pub fn read_state<S: GpuMessage>(&self) -> Result<Option<S>, ProtocolError> {
        assert_eq!(
            size_of::<S>(),
            self.layout.state_size,
            "state type differs from the layout"
        );
        let counters = self.counters()?;
        let parked = matches!(counters.state, DeviceState::Parked | DeviceState::Exited);
        if !(parked && counters.ack == self.seq && self.command != Lifecycle::Active) {
            return Ok(None);
        }
        let mut value = MaybeUninit::<S>::uninit();
        // SAFETY: the device wrote the buffer back before its release store
        // of the acknowledgement we acquire-loaded in `counters`, and writes
        // it again only after acting on a newer command, which needs `&mut
        // self` (`command`) to issue; the buffer is inside the region.
        unsafe {
            self.mem
                .read(self.layout.state, value.as_mut_ptr().cast::<u8>(), size_of::<S>());
        }
        // SAFETY: all bytes were copied in; any bit pattern is a valid `S`.
        Ok(Some(unsafe { value.assume_init() }))
    }
}
