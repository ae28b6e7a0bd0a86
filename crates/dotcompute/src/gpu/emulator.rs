//! CPU emulation of a GPU ring kernel: a host thread plays the device.
//!
//! The emulated device runs the same protocol code over the same memory
//! layout as the CUDA template, with a Rust handler `fn(&In, &mut Out, &mut
//! State)` in place of the CUDA C one. Its memory is an ordinary aligned host
//! allocation ([`HostRegion`]) instead of pinned mapped memory, and its
//! "kernel" is one thread that handles the messages of a batch one after
//! another (a GPU block hands them to its threads). Everything else is what
//! the device does: it validates the region header, obeys the lifecycle word,
//! beats the heartbeat on every poll, takes up to `batch_size` messages at a
//! time, publishes replies and frees inputs once per batch, updates the
//! counters, backs off when idle (spin, then yield, then sleeps doubling from
//! `backoff_min` to `backoff_max`, as `__nanosleep` does on the device), parks
//! while deactivated, and exits on terminate.
//!
//! This is **emulation**: it tests the protocol and the host side everywhere,
//! and says nothing about the speed of a GPU.
//!
//! [`EmulatorControl`] injects the failures a real device can have (a hung
//! kernel, a kernel that vanished) so that their detection can be tested.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::error::GpuError;
use super::host::DeviceAgent;
use super::message::{GpuMessage, HandlerStatus};
use super::protocol::device_side::{DeviceSide, Step};
use super::protocol::{FaultCode, HostRegion, MappedRegion};

const RUN: u8 = 0;
const FREEZE: u8 = 1;
const STOP: u8 = 2;

/// Fault injection for an emulated device, shared with the test that holds it.
///
/// ```
/// use dotcompute::gpu::emulator::EmulatorControl;
///
/// let control = EmulatorControl::new();
/// control.freeze();
/// assert!(control.is_frozen());
/// control.resume();
/// assert!(!control.is_frozen());
/// ```
#[derive(Debug, Clone, Default)]
pub struct EmulatorControl(Arc<AtomicU8>);

impl EmulatorControl {
    /// A control that lets the device run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the device hang at its next poll: it stops beating, stops
    /// taking messages and ignores the lifecycle word (as a kernel stuck in
    /// an endless loop would), until [`resume`](Self::resume).
    pub fn freeze(&self) {
        self.0.store(FREEZE, Ordering::Release);
    }

    /// Lets a frozen device go on.
    pub fn resume(&self) {
        self.0.store(RUN, Ordering::Release);
    }

    /// Makes the device thread end at its next poll without writing anything
    /// (as a kernel killed by the driver would): no exit status, no final
    /// counters.
    pub fn stop_silently(&self) {
        self.0.store(STOP, Ordering::Release);
    }

    /// Whether the device is (to be) frozen.
    pub fn is_frozen(&self) -> bool {
        self.0.load(Ordering::Acquire) == FREEZE
    }

    fn mode(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}

type Body = Box<dyn FnOnce() + Send + 'static>;

/// An emulated device: a region in host memory and the thread that plays the
/// device on it. Used through [`GpuRing::emulated`](super::GpuRing::emulated).
pub struct EmulatedDevice {
    region: Arc<HostRegion>,
    body: Option<Body>,
    thread: Option<JoinHandle<()>>,
    name: String,
}

impl std::fmt::Debug for EmulatedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedDevice")
            .field("name", &self.name)
            .field("region_len", &self.region.region().len())
            .field("started", &self.thread.is_some())
            .finish()
    }
}

/// Where an emulated device reads its input and writes its output, if not
/// its own region's rings: link rings shared with another emulated device.
#[derive(Debug, Clone, Default)]
pub struct EmulatedLinks {
    /// Read `In` from this link (written by the previous device).
    pub input: Option<Arc<HostRegion>>,
    /// Write `Out` to this link (read by the next device).
    pub output: Option<Arc<HostRegion>>,
}

impl EmulatedDevice {
    /// A device for `handler` over a fresh region of `region_len` bytes,
    /// not yet started. `control` injects failures (tests).
    ///
    /// # Errors
    ///
    /// [`GpuError::Layout`] if the region cannot be allocated.
    pub fn new<In, Out, State, H, R>(
        name: impl Into<String>,
        region_len: usize,
        handler: H,
        links: EmulatedLinks,
        control: Option<EmulatorControl>,
    ) -> Result<Self, GpuError>
    where
        In: GpuMessage,
        Out: GpuMessage,
        State: GpuMessage,
        H: FnMut(&In, &mut Out, &mut State) -> R + Send + 'static,
        R: HandlerStatus,
    {
        let region = Arc::new(HostRegion::new(region_len)?);
        let memory = region.clone();
        let body: Body = Box::new(move || run::<In, Out, State, H, R>(memory, links, handler, control));
        Ok(EmulatedDevice {
            region,
            body: Some(body),
            thread: None,
            name: name.into(),
        })
    }
}

/// The emulated device's thread.
fn run<In, Out, State, H, R>(
    memory: Arc<HostRegion>,
    links: EmulatedLinks,
    mut handler: H,
    control: Option<EmulatorControl>,
) where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
    H: FnMut(&In, &mut Out, &mut State) -> R,
    R: HandlerStatus,
{
    // `memory` and `links` (Arcs) live as long as this thread, so the
    // regions stay valid even if the host gave up waiting for us.
    let in_link = links.input.as_ref().map(|r| r.region());
    let out_link = links.output.as_ref().map(|r| r.region());
    let Ok(mut device) = DeviceSide::<MappedRegion, In, Out, State>::attach(memory.region(), in_link, out_link) else {
        return; // the fault is recorded in the region
    };
    let backoff = device.backoff();
    let mut handle = |i: &In, o: &mut Out, s: &mut State| handler(i, o, s).code();
    let mut idle: u64 = 0;
    let mut sleep_ns = backoff.min_ns;
    loop {
        if let Some(c) = &control {
            match c.mode() {
                FREEZE => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                STOP => return,
                _ => {}
            }
        }
        let step = std::panic::catch_unwind(AssertUnwindSafe(|| device.step(&mut handle)));
        match step {
            Err(_) => {
                device.fault(FaultCode::HandlerPanicked);
                return;
            }
            Ok(Step::Processed(_)) => {
                idle = 0;
                sleep_ns = backoff.min_ns;
            }
            Ok(Step::Idle) => {
                idle += 1;
                if idle <= backoff.spin_polls {
                    std::hint::spin_loop();
                } else if idle <= backoff.spin_polls + 16 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_nanos(sleep_ns));
                    sleep_ns = (sleep_ns.saturating_mul(2)).min(backoff.max_ns);
                }
            }
            Ok(Step::Parked) => {
                idle = 0;
                sleep_ns = backoff.min_ns;
                std::thread::sleep(Duration::from_nanos(backoff.max_ns));
            }
            Ok(Step::Exited | Step::Faulted(_)) => return,
        }
    }
}

// SAFETY: the region is a `HostRegion` owned through an `Arc` that the
// device thread also holds, so it stays valid while the thread may touch it
// and while this agent exists; the thread accesses it only through the
// protocol code (`DeviceSide`).
unsafe impl DeviceAgent for EmulatedDevice {
    fn describe(&self) -> String {
        format!("emulation of a GPU ring kernel on a host thread ({})", self.name)
    }

    fn is_emulation(&self) -> bool {
        true
    }

    fn region(&self) -> MappedRegion {
        self.region.region()
    }

    fn start(&mut self) -> Result<(), GpuError> {
        let body = self
            .body
            .take()
            .ok_or_else(|| GpuError::Start("the emulated device was already started".into()))?;
        let thread = std::thread::Builder::new()
            .name(format!("gpu-emu-{}", self.name))
            .spawn(body)
            .map_err(|e| GpuError::Start(format!("cannot spawn the emulator thread: {e}")))?;
        self.thread = Some(thread);
        Ok(())
    }

    fn has_stopped(&mut self) -> bool {
        match &self.thread {
            Some(t) => t.is_finished(),
            None => self.body.is_none(),
        }
    }
}

impl Drop for EmulatedDevice {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            }
            // Otherwise the thread is detached; it owns an `Arc` of the region.
        }
    }
}
