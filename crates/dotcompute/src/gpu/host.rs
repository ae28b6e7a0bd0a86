//! [`GpuRing`]: the host's handle on one GPU ring kernel, the same for an
//! emulated device and a persistent CUDA kernel.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::emulator::{EmulatedDevice, EmulatedLinks, EmulatorControl};
use super::error::{GpuError, RingPhase};
use super::message::{GpuMessage, HandlerStatus};
use super::protocol::host_side::HostControl;
use super::protocol::ring::{AttachError, Consumer, Producer};
use super::protocol::{
    DeviceCounters, DeviceParams, DeviceState, HostRegion, Lifecycle, LinkLayout, MappedRegion, RegionLayout,
};

/// What executes the device side of a [`GpuRing`]: the emulator's host
/// thread ([`EmulatedDevice`]), or a persistent CUDA kernel
/// (`cuda_device::CudaDevice`, feature `cuda`).
///
/// # Safety
///
/// [`region`](Self::region) must return the same region every time; it must
/// be at least as large as the ring's layout, 128-byte aligned, and stay
/// valid (for the host's accesses too) until the agent is dropped; and if the
/// device may still be running when the agent is dropped, the agent must keep
/// (leak) the memory rather than free it, since the device may still write
/// to it.
pub unsafe trait DeviceAgent: Send {
    /// What it is, in words (for logs and reports).
    fn describe(&self) -> String;
    /// True for emulation, false for a real device.
    fn is_emulation(&self) -> bool;
    /// The shared region.
    fn region(&self) -> MappedRegion;
    /// Starts the device; the region's header and initial state are written.
    ///
    /// # Errors
    ///
    /// [`GpuError::Start`] if it cannot be started.
    fn start(&mut self) -> Result<(), GpuError>;
    /// Whether the device has stopped running (thread ended, kernel
    /// completed), whatever it wrote.
    fn has_stopped(&mut self) -> bool;
}

/// Configuration of a [`GpuRing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuRingOptions {
    /// Slots of the host→device ring (a power of two).
    pub input_capacity: u64,
    /// Slots of the device→host ring (a power of two).
    pub output_capacity: u64,
    /// Batching and idle back-off of the device.
    pub device: DeviceParams,
    /// A heartbeat that does not move for this long means the device is hung
    /// or dead. Must exceed `device.backoff_max` by far.
    pub heartbeat_timeout: Duration,
    /// How long dropping the ring waits for the device to exit.
    pub terminate_timeout: Duration,
}

impl Default for GpuRingOptions {
    fn default() -> Self {
        GpuRingOptions {
            input_capacity: 1024,
            output_capacity: 1024,
            device: DeviceParams::default(),
            heartbeat_timeout: Duration::from_secs(2),
            terminate_timeout: Duration::from_secs(2),
        }
    }
}

/// What [`GpuRing::terminate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminateSummary {
    /// The device's final counters.
    pub counters: DeviceCounters,
    /// Messages sent that the device never took.
    pub unprocessed: u64,
    /// Replies the device published that the host has not received (still
    /// receivable after terminate).
    pub unread_replies: u64,
    /// How long the exit took.
    pub elapsed: Duration,
}

/// Host-side handle on a GPU ring kernel: sends `In`, receives `Out`, drives
/// the lifecycle, watches the heartbeat.
///
/// ```
/// use std::time::Duration;
/// use dotcompute::gpu::{GpuMessage, GpuRing, GpuRingOptions, NoState};
///
/// #[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
/// #[repr(C)]
/// struct Num { v: i64 }
///
/// // Emulation: a host thread plays the device.
/// let mut ring = GpuRing::<Num, Num>::emulated(
///     |i: &Num, o: &mut Num, _: &mut NoState| o.v = -i.v,
///     NoState::default(),
///     GpuRingOptions::default(),
/// )?;
/// ring.activate()?;
/// ring.send(&Num { v: 7 }, Duration::from_secs(5))?;
/// assert_eq!(ring.receive(Duration::from_secs(5))?, Num { v: -7 });
/// let summary = ring.terminate(Duration::from_secs(5))?;
/// assert_eq!(summary.counters.processed, 1);
/// # Ok::<(), dotcompute::gpu::GpuError>(())
/// ```
pub struct GpuRing<In, Out> {
    control: HostControl<MappedRegion>,
    tx: Producer<MappedRegion, In>,
    rx: Consumer<MappedRegion, Out>,
    options: GpuRingOptions,
    phase: RingPhase,
    failure: Option<GpuError>,
    /// Last heartbeat value seen and when it changed.
    beat: (u64, Instant),
    /// Declared last: the agent (and with it, the memory) goes after the rest.
    agent: Box<dyn DeviceAgent>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> std::fmt::Debug for GpuRing<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuRing")
            .field("device", &self.agent.describe())
            .field("phase", &self.phase)
            .field("failure", &self.failure)
            .finish()
    }
}

fn attach_error(e: AttachError) -> GpuError {
    match e {
        AttachError::Layout(l) => GpuError::Layout(l),
        AttachError::Protocol(p) => GpuError::Protocol(p),
    }
}

/// How often a blocking send or receive checks the device's health while it
/// waits (reading the device's words costs cache traffic, so not every poll).
const HEALTH_CHECK_PERIOD: Duration = Duration::from_micros(500);

/// Waits with growing pauses: spin, yield, then sleep up to 1 ms.
struct Pause(u32);

impl Pause {
    fn wait(&mut self) {
        self.wait_at_most(1000);
    }

    /// The same, sleeping at most `max_us` at a time (for waits whose end
    /// must be seen promptly, such as terminate's).
    fn wait_at_most(&mut self, max_us: u64) {
        self.0 += 1;
        if self.0 <= 32 {
            std::hint::spin_loop();
        } else if self.0 <= 48 {
            std::thread::yield_now();
        } else {
            let us = 1u64 << (self.0 - 48).min(10);
            std::thread::sleep(Duration::from_micros(us.min(max_us)));
        }
    }
}

impl<In: GpuMessage, Out: GpuMessage> GpuRing<In, Out> {
    /// An emulated GPU ring kernel (see [`emulator`](super::emulator)):
    /// `handler` runs on a host thread that plays the device, over the same
    /// memory layout and protocol as the CUDA template.
    ///
    /// # Errors
    ///
    /// [`GpuError::Layout`] for bad options, [`GpuError::Start`] if the
    /// thread cannot be spawned.
    pub fn emulated<State, H, R>(handler: H, initial_state: State, options: GpuRingOptions) -> Result<Self, GpuError>
    where
        State: GpuMessage,
        H: FnMut(&In, &mut Out, &mut State) -> R + Send + 'static,
        R: HandlerStatus,
    {
        Self::emulated_with(handler, initial_state, options, EmulatedLinks::default(), None)
    }

    /// [`emulated`](Self::emulated), with link rings and fault injection.
    ///
    /// # Errors
    ///
    /// As [`emulated`](Self::emulated).
    pub fn emulated_with<State, H, R>(
        handler: H,
        initial_state: State,
        options: GpuRingOptions,
        links: EmulatedLinks,
        control: Option<EmulatorControl>,
    ) -> Result<Self, GpuError>
    where
        State: GpuMessage,
        H: FnMut(&In, &mut Out, &mut State) -> R + Send + 'static,
        R: HandlerStatus,
    {
        let layout = RegionLayout::for_types::<In, Out, State>(options.input_capacity, options.output_capacity)?;
        let device = EmulatedDevice::new::<In, Out, State, H, R>("ring", layout.size, handler, links, control)?;
        Self::start(Box::new(device), layout, initial_state, options)
    }

    /// Prepares the agent's region (header, lifecycle `Launched`, the initial
    /// state) and starts the device. The device attaches and parks; call
    /// [`activate`](Self::activate) to let it take messages.
    ///
    /// # Errors
    ///
    /// [`GpuError::Layout`] if the options are invalid or the region is too
    /// small; what [`DeviceAgent::start`] returns.
    pub fn start<State: GpuMessage>(
        mut agent: Box<dyn DeviceAgent>,
        layout: RegionLayout,
        initial_state: State,
        options: GpuRingOptions,
    ) -> Result<Self, GpuError> {
        options.device.validate()?;
        if options.heartbeat_timeout <= options.device.backoff_max * 4 {
            return Err(GpuError::Layout(super::protocol::LayoutError::BadBackoff {
                min: options.device.backoff_max,
                max: options.heartbeat_timeout,
            }));
        }
        let expected = RegionLayout::for_types::<In, Out, State>(layout.in_capacity, layout.out_capacity)?;
        if expected != layout {
            return Err(GpuError::Start(
                "the layout does not match the message and state types".into(),
            ));
        }
        let region = agent.region();
        layout.init(&region, &options.device)?;
        let control = HostControl::new(region, layout);
        control.write_initial_state(&initial_state);
        let tx = Producer::attach(region, layout.input_ring()).map_err(attach_error)?;
        let rx = Consumer::attach(region, layout.output_ring()).map_err(attach_error)?;
        agent.start()?;
        Ok(GpuRing {
            control,
            tx,
            rx,
            options,
            phase: RingPhase::Launched,
            failure: None,
            beat: (0, Instant::now()),
            agent,
            _types: PhantomData,
        })
    }

    /// The ring's phase.
    pub fn phase(&self) -> RingPhase {
        self.phase
    }

    /// The failure that moved the ring to [`RingPhase::Failed`], if any.
    pub fn failure(&self) -> Option<&GpuError> {
        self.failure.as_ref()
    }

    /// What runs the device, in words.
    pub fn device_description(&self) -> String {
        self.agent.describe()
    }

    /// True if the device is emulated.
    pub fn is_emulation(&self) -> bool {
        self.agent.is_emulation()
    }

    /// The shared region (for diagnostics and fault-injection tests; the
    /// protocol owns its contents).
    pub fn region(&self) -> MappedRegion {
        self.agent.region()
    }

    /// The options.
    pub fn options(&self) -> &GpuRingOptions {
        &self.options
    }

    fn fail(&mut self, e: GpuError) -> GpuError {
        if self.failure.is_none() {
            tracing::warn!(error = %e, "GPU ring failed");
            self.failure = Some(e.clone());
        }
        self.phase = RingPhase::Failed;
        e
    }

    fn check_usable(&self, operation: &'static str) -> Result<(), GpuError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        match self.phase {
            RingPhase::Terminated | RingPhase::Failed => Err(GpuError::InvalidPhase {
                operation,
                phase: self.phase,
            }),
            _ => Ok(()),
        }
    }

    /// Lets the device take messages (from launched or deactivated).
    ///
    /// # Errors
    ///
    /// [`GpuError::InvalidPhase`] when active, terminated or failed.
    pub fn activate(&mut self) -> Result<(), GpuError> {
        self.check_usable("activate")?;
        if self.phase == RingPhase::Active {
            return Err(GpuError::InvalidPhase {
                operation: "activate",
                phase: self.phase,
            });
        }
        self.control.command(Lifecycle::Active);
        self.phase = RingPhase::Active;
        Ok(())
    }

    /// Parks the device after its current batch; messages stay in the ring.
    ///
    /// # Errors
    ///
    /// [`GpuError::InvalidPhase`] unless active.
    pub fn deactivate(&mut self) -> Result<(), GpuError> {
        self.check_usable("deactivate")?;
        if self.phase != RingPhase::Active {
            return Err(GpuError::InvalidPhase {
                operation: "deactivate",
                phase: self.phase,
            });
        }
        self.control.command(Lifecycle::Deactivated);
        self.phase = RingPhase::Deactivated;
        Ok(())
    }

    /// Waits until the device has acted on the latest lifecycle command
    /// (for example: parked after [`deactivate`](Self::deactivate)).
    ///
    /// # Errors
    ///
    /// [`GpuError::Timeout`], or a failure found by
    /// [`check_health`](Self::check_health).
    pub fn wait_acknowledged(&mut self, timeout: Duration) -> Result<DeviceCounters, GpuError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Pause(0);
        loop {
            let c = self.check_health()?;
            if self.control.acknowledged(&c) {
                return Ok(c);
            }
            if Instant::now() >= deadline {
                return Err(GpuError::Timeout {
                    operation: "wait for the device to acknowledge a lifecycle command",
                    timeout,
                });
            }
            pause.wait();
        }
    }

    /// Sends as many of `msgs` as fit, without waiting; returns how many.
    ///
    /// # Errors
    ///
    /// [`GpuError::InvalidPhase`] after terminate or failure; a corrupt
    /// device index fails the ring ([`GpuError::Protocol`]).
    pub fn send_slice(&mut self, msgs: &[In]) -> Result<usize, GpuError> {
        self.check_usable("send to")?;
        match self.tx.push_slice(msgs) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Sends one message if there is room; `Ok(false)` if the ring is full.
    ///
    /// # Errors
    ///
    /// As [`send_slice`](Self::send_slice).
    pub fn try_send(&mut self, msg: &In) -> Result<bool, GpuError> {
        Ok(self.send_slice(std::slice::from_ref(msg))? == 1)
    }

    /// Sends one message, waiting up to `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`GpuError::Timeout`]; as [`send_slice`](Self::send_slice); a failure
    /// found by [`check_health`](Self::check_health) while waiting.
    pub fn send(&mut self, msg: &In, timeout: Duration) -> Result<(), GpuError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Pause(0);
        let mut last_check = Instant::now();
        loop {
            if self.try_send(msg)? {
                return Ok(());
            }
            let now = Instant::now();
            if now.duration_since(last_check) >= HEALTH_CHECK_PERIOD || now >= deadline {
                self.check_health()?;
                last_check = now;
            }
            if now >= deadline {
                return Err(GpuError::Timeout {
                    operation: "send to the device",
                    timeout,
                });
            }
            pause.wait();
        }
    }

    /// Free slots in the host→device ring (a lower bound).
    ///
    /// # Errors
    ///
    /// A corrupt device index fails the ring.
    pub fn send_capacity(&mut self) -> Result<u64, GpuError> {
        match self.tx.refresh() {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Receives up to `max` replies into `out` without waiting; returns how many.
    /// Works in every phase, so replies can be drained after terminate.
    ///
    /// # Errors
    ///
    /// A corrupt device index fails the ring ([`GpuError::Protocol`]).
    pub fn receive_into(&mut self, out: &mut Vec<Out>, max: usize) -> Result<usize, GpuError> {
        match self.rx.pop_into(out, max) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Receives one reply if one is there.
    ///
    /// # Errors
    ///
    /// As [`receive_into`](Self::receive_into).
    pub fn try_receive(&mut self) -> Result<Option<Out>, GpuError> {
        let mut v = Vec::with_capacity(1);
        self.receive_into(&mut v, 1)?;
        Ok(v.pop())
    }

    /// Receives one reply, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`GpuError::Timeout`]; as [`receive_into`](Self::receive_into); a
    /// failure found by [`check_health`](Self::check_health) while waiting.
    pub fn receive(&mut self, timeout: Duration) -> Result<Out, GpuError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Pause(0);
        let mut last_check = Instant::now();
        loop {
            if let Some(m) = self.try_receive()? {
                return Ok(m);
            }
            let now = Instant::now();
            if now.duration_since(last_check) >= HEALTH_CHECK_PERIOD || now >= deadline {
                self.check_health()?;
                last_check = now;
            }
            if now >= deadline {
                return Err(GpuError::Timeout {
                    operation: "receive from the device",
                    timeout,
                });
            }
            pause.wait();
        }
    }

    /// Messages sent whose reply has not been received yet (one reply per message).
    pub fn in_flight(&self) -> u64 {
        self.tx.tail().wrapping_sub(self.rx.head())
    }

    /// The device's words, read now.
    ///
    /// # Errors
    ///
    /// [`GpuError::Protocol`] if the status word is corrupt (this fails the ring).
    pub fn counters(&mut self) -> Result<DeviceCounters, GpuError> {
        match self.control.counters() {
            Ok(c) => Ok(c),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Checks that the device is alive and well: no fault, no exit without a
    /// terminate request, thread or kernel still running, heartbeat moving
    /// within `heartbeat_timeout`. Any finding moves the ring to
    /// [`RingPhase::Failed`] and is returned from then on.
    ///
    /// # Errors
    ///
    /// [`GpuError::DeviceFault`], [`GpuError::DeviceLost`],
    /// [`GpuError::HeartbeatStale`], [`GpuError::Protocol`], or the earlier failure.
    pub fn check_health(&mut self) -> Result<DeviceCounters, GpuError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        let c = self.counters()?;
        match c.state {
            DeviceState::Faulted => return Err(self.fail(GpuError::fault(c.fault))),
            DeviceState::Exited if self.phase != RingPhase::Terminated => {
                return Err(self.fail(GpuError::DeviceLost("it exited without a terminate request".into())))
            }
            DeviceState::Exited => return Ok(c),
            _ => {}
        }
        if self.agent.has_stopped() {
            // Re-read: it may have exited or faulted just now.
            let c = match self.settled_counters(true) {
                Ok(c) => c,
                Err(e) => return Err(self.fail(e)),
            };
            if c.state == DeviceState::Faulted {
                return Err(self.fail(GpuError::fault(c.fault)));
            }
            if !(c.state == DeviceState::Exited && self.phase == RingPhase::Terminated) {
                return Err(self.fail(GpuError::DeviceLost(format!(
                    "{} stopped running without exiting (last status {:?})",
                    self.agent.describe(),
                    c.state
                ))));
            }
            return Ok(c);
        }
        let now = Instant::now();
        if c.heartbeat != self.beat.0 {
            self.beat = (c.heartbeat, now);
        } else {
            let silent_for = now.duration_since(self.beat.1);
            if silent_for > self.options.heartbeat_timeout {
                return Err(self.fail(GpuError::HeartbeatStale {
                    heartbeat: c.heartbeat,
                    silent_for,
                    timeout: self.options.heartbeat_timeout,
                }));
            }
        }
        Ok(c)
    }

    /// The state buffer as the device last wrote it back, if it is final now:
    /// after the device acknowledged a deactivate (or terminate). `None`
    /// while the device is active or has not acknowledged yet (see
    /// [`wait_acknowledged`](Self::wait_acknowledged)).
    ///
    /// # Errors
    ///
    /// [`GpuError::Start`] if `State` is not the ring's state type; a corrupt
    /// status word.
    pub fn read_state<State: GpuMessage>(&mut self) -> Result<Option<State>, GpuError> {
        if std::mem::size_of::<State>() != self.control_state_size() {
            return Err(GpuError::Start("the state type differs from the ring's".into()));
        }
        match self.control.read_state::<State>() {
            Ok(s) => Ok(s),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    fn control_state_size(&self) -> usize {
        self.control.state_size()
    }

    /// Asks the device to exit and waits up to `timeout` for it to do so.
    /// Never blocks longer than `timeout` (plus one poll), whatever the device
    /// does; replies already published stay receivable.
    ///
    /// # Errors
    ///
    /// [`GpuError::TerminateTimeout`] if the device did not exit in time (its
    /// memory is then kept alive while it may still run);
    /// [`GpuError::DeviceFault`] / [`GpuError::DeviceLost`] if it stopped
    /// otherwise.
    pub fn terminate(&mut self, timeout: Duration) -> Result<TerminateSummary, GpuError> {
        let start = Instant::now();
        self.control.command(Lifecycle::Terminate);
        if self.phase != RingPhase::Failed {
            self.phase = RingPhase::Terminated;
        }
        let deadline = start + timeout;
        let mut pause = Pause(0);
        loop {
            let stopped = self.agent.has_stopped();
            let c = match self.settled_counters(stopped) {
                Ok(c) => c,
                Err(e) => return Err(self.fail(e)),
            };
            match c.state {
                DeviceState::Exited if stopped => {
                    let published = self.rx.refresh().unwrap_or(0);
                    return Ok(TerminateSummary {
                        counters: c,
                        unprocessed: self.tx.tail().saturating_sub(c.processed),
                        unread_replies: published,
                        elapsed: start.elapsed(),
                    });
                }
                DeviceState::Faulted if stopped => return Err(self.fail(GpuError::fault(c.fault))),
                state if stopped => {
                    return Err(self.fail(GpuError::DeviceLost(format!(
                        "it stopped running without acknowledging terminate (last status {state:?})"
                    ))))
                }
                state => {
                    if Instant::now() >= deadline {
                        return Err(self.fail(GpuError::TerminateTimeout {
                            waited: start.elapsed(),
                            last_state: format!("{state:?}"),
                        }));
                    }
                }
            }
            // Terminate is timed (goal ≤ 1 ms): look often.
            pause.wait_at_most(50);
        }
    }

    /// The device's words; once the device has stopped running, re-read for
    /// up to 10 ms until its final status shows (its last stores may trail
    /// the observation that its thread or kernel ended).
    fn settled_counters(&mut self, stopped: bool) -> Result<DeviceCounters, GpuError> {
        let grace = Instant::now() + Duration::from_millis(10);
        loop {
            let c = self.control.counters()?;
            if !stopped || c.state.is_final() || Instant::now() >= grace {
                return Ok(c);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

impl<In, Out> Drop for GpuRing<In, Out> {
    fn drop(&mut self) {
        let (command, _) = self.control.last_command();
        if command != Lifecycle::Terminate {
            // Bounded: never hangs the dropping thread for longer than the
            // configured timeout. The agent keeps the memory alive if the
            // device is still running afterwards.
            let deadline = Instant::now() + self.options.terminate_timeout;
            self.control.command(Lifecycle::Terminate);
            let mut pause = Pause(0);
            while !self.agent.has_stopped() && Instant::now() < deadline {
                pause.wait();
            }
        }
    }
}

/// Two GPU ring kernels linked by a ring in device memory: the first's
/// replies are the second's input and never pass through the host. Built
/// emulated ([`emulated`](Self::emulated): the link is host memory both
/// emulator threads poll) or on a GPU (`cuda`: the link is
/// device memory both kernels poll; feature `cuda`).
///
/// ```
/// use std::time::Duration;
/// use dotcompute::gpu::{GpuMessage, GpuPipeline, GpuRingOptions, NoState};
///
/// #[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
/// #[repr(C)]
/// struct N { v: u64 }
///
/// let mut p = GpuPipeline::<N, N, N>::emulated(
///     |i: &N, o: &mut N, _: &mut NoState| o.v = i.v + 1,
///     NoState::default(),
///     |i: &N, o: &mut N, _: &mut NoState| o.v = i.v * 10,
///     NoState::default(),
///     16,
///     GpuRingOptions::default(),
/// )?;
/// p.activate()?;
/// p.send(&N { v: 4 }, Duration::from_secs(5))?;
/// assert_eq!(p.receive(Duration::from_secs(5))?, N { v: 50 });
/// p.terminate(Duration::from_secs(5))?;
/// # Ok::<(), dotcompute::gpu::GpuError>(())
/// ```
pub struct GpuPipeline<In, Mid, Out> {
    first: GpuRing<In, Mid>,
    second: GpuRing<Mid, Out>,
    /// The link's memory (each kernel holds it too, for as long as it may run).
    _link: Box<dyn std::any::Any + Send>,
}

impl<In: GpuMessage, Mid: GpuMessage, Out: GpuMessage> GpuPipeline<In, Mid, Out> {
    /// Two emulated kernels and a link of `link_capacity` slots between them.
    ///
    /// # Errors
    ///
    /// As [`GpuRing::emulated`].
    pub fn emulated<S1, H1, R1, S2, H2, R2>(
        first: H1,
        first_state: S1,
        second: H2,
        second_state: S2,
        link_capacity: u64,
        options: GpuRingOptions,
    ) -> Result<Self, GpuError>
    where
        S1: GpuMessage,
        H1: FnMut(&In, &mut Mid, &mut S1) -> R1 + Send + 'static,
        R1: HandlerStatus,
        S2: GpuMessage,
        H2: FnMut(&Mid, &mut Out, &mut S2) -> R2 + Send + 'static,
        R2: HandlerStatus,
    {
        let layout = LinkLayout::new(link_capacity, Mid::SIZE)?;
        let link = Arc::new(HostRegion::new(layout.size)?);
        layout.init(&link.region())?;
        let first = GpuRing::emulated_with(
            first,
            first_state,
            options.clone(),
            EmulatedLinks {
                input: None,
                output: Some(link.clone()),
            },
            None,
        )?;
        let second = GpuRing::emulated_with(
            second,
            second_state,
            options,
            EmulatedLinks {
                input: Some(link.clone()),
                output: None,
            },
            None,
        )?;
        Ok(Self::from_parts(first, second, Box::new(link)))
    }

    /// Two started rings sharing a link, and the link's memory.
    pub(crate) fn from_parts(
        first: GpuRing<In, Mid>,
        second: GpuRing<Mid, Out>,
        link: Box<dyn std::any::Any + Send>,
    ) -> Self {
        GpuPipeline {
            first,
            second,
            _link: link,
        }
    }

    /// Activates both kernels (the consumer first).
    ///
    /// # Errors
    ///
    /// As [`GpuRing::activate`].
    pub fn activate(&mut self) -> Result<(), GpuError> {
        self.second.activate()?;
        self.first.activate()
    }

    /// Sends to the first kernel, waiting up to `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`GpuRing::send`].
    pub fn send(&mut self, msg: &In, timeout: Duration) -> Result<(), GpuError> {
        self.first.send(msg, timeout)
    }

    /// Receives from the second kernel, waiting up to `timeout`; checks the
    /// first kernel's health too.
    ///
    /// # Errors
    ///
    /// As [`GpuRing::receive`], for either kernel.
    pub fn receive(&mut self, timeout: Duration) -> Result<Out, GpuError> {
        self.first.check_health()?;
        self.second.receive(timeout)
    }

    /// The two kernels' counters: (first, second).
    ///
    /// # Errors
    ///
    /// As [`GpuRing::counters`].
    pub fn counters(&mut self) -> Result<(DeviceCounters, DeviceCounters), GpuError> {
        Ok((self.first.counters()?, self.second.counters()?))
    }

    /// Terminates both kernels (the producer first), each within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`GpuRing::terminate`].
    pub fn terminate(&mut self, timeout: Duration) -> Result<(TerminateSummary, TerminateSummary), GpuError> {
        let a = self.first.terminate(timeout)?;
        let b = self.second.terminate(timeout)?;
        Ok((a, b))
    }
}
