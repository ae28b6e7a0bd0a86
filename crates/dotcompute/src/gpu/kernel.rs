//! GPU ring kernels in the [`RingKernelRuntime`](crate::RingKernelRuntime),
//! without changing the runtime: [`emulated_kernel`] builds an ordinary
//! [`KernelSpec`] in [`ExecutionMode::Thread`] whose blocking handler is a
//! *bridge*: it moves messages between the kernel's runtime queues and the
//! device's rings, in batches, and mirrors the lifecycle.
//!
//! | runtime | device |
//! |---|---|
//! | `activate` (handler thread starts) | device started, lifecycle `Active` |
//! | `deactivate` / `reactivate` | lifecycle `Deactivated` / `Active` (the device parks after its batch) |
//! | `terminate` | in-flight replies forwarded (with `drain`), then lifecycle `Terminate` and a bounded wait for the device to exit |
//! | `send` / `receive` / `call` | `Envelope<In>` → host→device ring; device→host ring → `Envelope<Out>`, correlated to its request |
//! | kernel `Failed` | device fault, device lost, stale heartbeat, or handler error codes |
//!
//! Two kinds of device run behind the same bridge:
//! - [`gpu_kernel`]: a persistent CUDA kernel running the user's CUDA C
//!   handler ([`ExecutionMode::Gpu`]; see [`cuda_device`](super::cuda_device));
//! - [`emulated_kernel`]: a host thread running a Rust handler over the same
//!   protocol ([`ExecutionMode::Thread`], since it is **emulation**; see
//!   [`emulator`](super::emulator)).
//!
//! Invariant: every message taken from the runtime is either on the device
//! (its header queued, one reply expected), in the bridge's inbox, or
//! answered; a reply the device publishes without a matching message fails
//! the kernel rather than being dropped or mismatched.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "cuda")]
use super::cuda_device::CudaRingOptions;
use super::emulator::{EmulatedLinks, EmulatorControl};
use super::error::{GpuError, RingPhase};
use super::host::{GpuRing, GpuRingOptions};
use super::message::{Envelope, GpuMessage, HandlerStatus};
use super::protocol::DeviceCounters;
#[cfg(feature = "cuda")]
use super::source::CudaHandler;
use crate::error::Error;
use crate::message::MessageHeader;
use crate::runtime::config::{ExecutionMode, DEFAULT_QUEUE_SIZE};
use crate::runtime::context::BlockingContext;
use crate::runtime::spec::{KernelError, KernelSpec};
use crate::runtime::state::KernelState;

/// A snapshot of a GPU kernel's device, published by the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuSnapshot {
    /// The device's counters.
    pub counters: DeviceCounters,
    /// The host ring's phase.
    pub phase: RingPhase,
    /// Messages on the device (sent, reply not yet received).
    pub in_flight: u64,
    /// What runs the device.
    pub device: String,
    /// True when the device is emulated.
    pub emulation: bool,
    /// The failure, if the ring failed.
    pub failure: Option<String>,
}

/// Where the bridge publishes device counters (which the runtime's
/// telemetry does not carry yet). Clone it into [`GpuKernelOptions`] and
/// read it from anywhere.
#[derive(Debug, Clone, Default)]
pub struct GpuMonitor(Arc<Mutex<Option<GpuSnapshot>>>);

impl GpuMonitor {
    /// An empty monitor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest snapshot, if the bridge has published one.
    pub fn snapshot(&self) -> Option<GpuSnapshot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits up to `timeout` for a snapshot satisfying `pred`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&GpuSnapshot) -> bool) -> Option<GpuSnapshot> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.snapshot().filter(|s| pred(s)) {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn publish<In: GpuMessage, Out: GpuMessage>(&self, ring: &GpuRing<In, Out>, counters: DeviceCounters) {
        let snap = GpuSnapshot {
            counters,
            phase: ring.phase(),
            in_flight: ring.in_flight(),
            device: ring.device_description(),
            emulation: ring.is_emulation(),
            failure: ring.failure().map(ToString::to_string),
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(snap);
    }
}

/// Options of a GPU ring kernel in the runtime.
///
/// Build it from [`Default`] (`GpuKernelOptions { queue_size: 1024,
/// ..Default::default() }`): the `cuda` feature adds a field.
#[derive(Debug, Clone)]
pub struct GpuKernelOptions {
    /// The device rings, batching, back-off and timeouts.
    pub ring: GpuRingOptions,
    /// Capacity of the kernel's runtime queues (input and output).
    pub queue_size: usize,
    /// A handler error code (non-zero return) fails the kernel.
    pub fail_on_handler_error: bool,
    /// With a draining terminate, how long to wait for the replies of
    /// messages already on the device.
    pub drain_timeout: Duration,
    /// Fault injection for the emulated device (tests).
    pub emulator: Option<EmulatorControl>,
    /// Where to publish device counters.
    pub monitor: Option<GpuMonitor>,
    /// The CUDA device, grid and compiler of a [`gpu_kernel`] (unused by
    /// emulated kernels).
    #[cfg(feature = "cuda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
    pub cuda: CudaRingOptions,
}

impl Default for GpuKernelOptions {
    fn default() -> Self {
        GpuKernelOptions {
            ring: GpuRingOptions::default(),
            queue_size: DEFAULT_QUEUE_SIZE,
            fail_on_handler_error: true,
            drain_timeout: Duration::from_secs(1),
            emulator: None,
            monitor: None,
            #[cfg(feature = "cuda")]
            cuda: CudaRingOptions::default(),
        }
    }
}

/// An emulated GPU ring kernel for the runtime, starting from the all-zero
/// state. See [`emulated_kernel_with_state`].
///
/// ```
/// use dotcompute::gpu::{emulated_kernel, Envelope, GpuKernelOptions, GpuMessage, NoState};
/// use dotcompute::RingKernelRuntime;
///
/// #[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
/// #[repr(C)]
/// struct Celsius { t: f32 }
/// #[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
/// #[repr(C)]
/// struct Fahrenheit { t: f32 }
///
/// let spec = emulated_kernel::<Celsius, Fahrenheit, NoState, _, _>(
///     "to_f",
///     |c: &Celsius, f: &mut Fahrenheit, _: &mut NoState| f.t = c.t * 1.8 + 32.0,
///     GpuKernelOptions::default(),
/// )?;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = RingKernelRuntime::new();
/// rt.launch_spec(spec)?;
/// rt.activate("to_f")?;
/// let reply: Envelope<Fahrenheit> =
///     rt.call_timeout("to_f", Envelope::new(Celsius { t: 100.0 }), std::time::Duration::from_secs(5)).await?;
/// assert_eq!(reply.payload.t, 212.0);
/// rt.shutdown().await;
/// # Ok::<(), dotcompute::Error>(())
/// # }).unwrap();
/// # Ok::<(), dotcompute::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfiguration`] for a bad id or options.
pub fn emulated_kernel<In, Out, State, H, R>(
    id: impl Into<String>,
    handler: H,
    options: GpuKernelOptions,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
    H: Fn(&In, &mut Out, &mut State) -> R + Send + Sync + 'static,
    R: HandlerStatus + 'static,
{
    emulated_kernel_with_state(id, handler, State::zeroed(), options)
}

/// An emulated GPU ring kernel for the runtime: a [`KernelSpec`] in
/// [`ExecutionMode::Thread`] whose handler bridges the runtime's queues of
/// [`Envelope<In>`] / [`Envelope<Out>`] to an emulated device running
/// `handler` over the GPU ring protocol. Each activation (and each restart)
/// starts a fresh device from `initial_state`.
///
/// # Errors
///
/// [`Error::InvalidConfiguration`] for a bad id or options.
pub fn emulated_kernel_with_state<In, Out, State, H, R>(
    id: impl Into<String>,
    handler: H,
    initial_state: State,
    options: GpuKernelOptions,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
    H: Fn(&In, &mut Out, &mut State) -> R + Send + Sync + 'static,
    R: HandlerStatus + 'static,
{
    validate_ring::<In, Out, State>(&options)?;
    let handler = Arc::new(handler);
    bridge_spec(id.into(), ExecutionMode::Thread, options, move |options| {
        let h = handler.clone();
        GpuRing::<In, Out>::emulated_with(
            move |i: &In, o: &mut Out, s: &mut State| h(i, o, s),
            initial_state,
            options.ring.clone(),
            EmulatedLinks::default(),
            options.emulator.clone(),
        )
    })
}

/// A kernel in `mode` whose blocking handler starts a device with
/// `start_device` (at each activation and restart) and bridges the
/// runtime's queues to it.
fn bridge_spec<In, Out>(
    id: String,
    mode: ExecutionMode,
    options: GpuKernelOptions,
    start_device: impl Fn(&GpuKernelOptions) -> Result<GpuRing<In, Out>, GpuError> + Send + Sync + 'static,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
{
    KernelSpec::builder::<Envelope<In>, Envelope<Out>>(id)
        .mode(mode)
        .queue_size(options.queue_size)
        .blocking_handler(move |ctx: BlockingContext<Envelope<In>, Envelope<Out>>| {
            let ring = start_device(&options)?;
            run_bridge(ctx, ring, &options)
        })
        .build()
}

fn validate_ring<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(options: &GpuKernelOptions) -> Result<(), Error> {
    options
        .ring
        .device
        .validate()
        .map_err(|e| Error::InvalidConfiguration {
            parameter: "gpu.ring.device",
            value: format!("{:?}", options.ring.device),
            reason: e.to_string(),
        })?;
    super::protocol::RegionLayout::for_types::<In, Out, State>(
        options.ring.input_capacity,
        options.ring.output_capacity,
    )
    .map_err(|e| Error::InvalidConfiguration {
        parameter: "gpu.ring",
        value: format!(
            "input_capacity={}, output_capacity={}",
            options.ring.input_capacity, options.ring.output_capacity
        ),
        reason: e.to_string(),
    })?;
    Ok(())
}

/// A GPU ring kernel for the runtime: a [`KernelSpec`] in
/// [`ExecutionMode::Gpu`] whose device is a persistent CUDA kernel running
/// `handler` (CUDA C, see [`CudaHandler`]) on `options.cuda`'s device, with
/// a state buffer starting as `initial_state` and persisting across
/// messages. The runtime's `send` / `receive` / `call` carry
/// [`Envelope<In>`] / [`Envelope<Out>`]; `activate`, `deactivate`,
/// `terminate` drive the device; a device fault, a stale heartbeat or (with
/// `fail_on_handler_error`) a handler error code moves the kernel to
/// `Failed`. Each activation (and each restart) launches a fresh kernel from
/// `initial_state`.
///
/// Building the spec checks everything that can be checked before launch:
/// the options, that a CUDA device is there and can map host memory, and
/// that the handler compiles (NVRTC, through the kernel cache, which the
/// launch then hits).
///
/// ```no_run
/// use dotcompute::gpu::handlers::{self, Sample, Stats, StatsState};
/// use dotcompute::gpu::{gpu_kernel, Envelope, GpuKernelOptions, GpuMessage};
/// use dotcompute::RingKernelRuntime;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let spec = gpu_kernel::<Sample, Stats, StatsState>(
///     "stats",
///     handlers::running_stats_cuda(),
///     StatsState::zeroed(),
///     GpuKernelOptions::default(),
/// )?;
/// let rt = RingKernelRuntime::new();
/// rt.launch_spec(spec)?;
/// rt.activate("stats")?;
/// let s: Envelope<Stats> = rt
///     .call_timeout("stats", Envelope::new(Sample { seq: 1, value: 4.0, channel: 0 }), std::time::Duration::from_secs(5))
///     .await?;
/// assert_eq!(s.payload.count, 1);
/// rt.shutdown().await;
/// # Ok::<(), dotcompute::Error>(())
/// # }).unwrap();
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfiguration`] for bad options; [`Error::Gpu`] with
/// [`GpuError::Unavailable`] (no CUDA driver, no such device, no NVRTC),
/// [`GpuError::Compile`] (with the compiler's log) or [`GpuError::Start`]
/// (a grid the handler's threading cannot use).
#[cfg(feature = "cuda")]
#[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
pub fn gpu_kernel<In, Out, State>(
    id: impl Into<String>,
    handler: CudaHandler,
    initial_state: State,
    options: GpuKernelOptions,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
{
    let id = id.into();
    validate_ring::<In, Out, State>(&options)?;
    let gpu_err = |error: GpuError| Error::Gpu {
        kernel: id.clone(),
        error,
    };
    super::cuda_device::prepare::<In, Out, State>(&handler, &options.cuda).map_err(gpu_err)?;
    bridge_spec(id, ExecutionMode::Gpu, options, move |options| {
        GpuRing::<In, Out>::cuda(&handler, initial_state, options.ring.clone(), &options.cuda)
    })
}

/// Runs the bridge between the kernel's runtime queues and `ring` until the
/// runtime ends the kernel or the device fails.
fn run_bridge<In, Out>(
    ctx: BlockingContext<Envelope<In>, Envelope<Out>>,
    ring: GpuRing<In, Out>,
    options: &GpuKernelOptions,
) -> Result<(), KernelError>
where
    In: GpuMessage,
    Out: GpuMessage,
{
    tracing::info!(kernel = %ctx.kernel_id(), device = %ring.device_description(), "GPU ring kernel started");
    let mut bridge = Bridge {
        ctx,
        ring,
        options,
        headers: VecDeque::new(),
        inbox: VecDeque::new(),
        active: false,
        state_cache: (KernelState::Active, Instant::now()),
    };
    let result = bridge.run();
    if let Some(m) = &options.monitor {
        let counters = bridge.ring.counters();
        if let Ok(c) = counters {
            m.publish(&bridge.ring, c);
        }
    }
    result
}

/// Why the bridge stopped pumping.
enum Stop {
    /// The runtime terminates the kernel (or its input closed).
    Runtime(Error),
    /// The device or the runtime failed.
    Failed(KernelError),
}

impl From<GpuError> for Stop {
    fn from(e: GpuError) -> Self {
        Stop::Failed(Box::new(e))
    }
}

struct Bridge<'a, In, Out> {
    ctx: BlockingContext<Envelope<In>, Envelope<Out>>,
    ring: GpuRing<In, Out>,
    options: &'a GpuKernelOptions,
    /// Headers of the messages on the device, in order (one reply each).
    headers: VecDeque<MessageHeader>,
    /// Messages taken from the runtime, not yet on the device.
    inbox: VecDeque<Envelope<In>>,
    /// Whether the device has been told to be active.
    active: bool,
    /// The runtime state, when last asked (asking is not free).
    state_cache: (KernelState, Instant),
}

impl<In: GpuMessage, Out: GpuMessage> Bridge<'_, In, Out> {
    fn batch(&self) -> usize {
        self.options.ring.device.batch_size as usize
    }

    /// Whether the runtime wants the device to take messages: active, or
    /// terminating with a drain (messages still to deliver).
    fn runtime_wants_active(&mut self) -> bool {
        if self.ctx.is_active() {
            return true;
        }
        if self.state_cache.1.elapsed() > Duration::from_millis(2) || self.state_cache.0 == KernelState::Active {
            self.state_cache = (self.ctx.telemetry().state, Instant::now());
        }
        self.state_cache.0 != KernelState::Deactivated
    }

    fn publish(&mut self, counters: DeviceCounters) {
        if let Some(m) = &self.options.monitor {
            m.publish(&self.ring, counters);
        }
    }

    fn check(&mut self) -> Result<(), Stop> {
        let c = self.ring.check_health()?;
        self.publish(c);
        if self.options.fail_on_handler_error && c.errors > 0 {
            return Err(GpuError::HandlerErrors {
                errors: c.errors,
                last_error: c.last_error,
            }
            .into());
        }
        Ok(())
    }

    /// Forwards replies the device published; returns how many.
    fn forward_replies(&mut self) -> Result<usize, Stop> {
        let mut replies = Vec::new();
        let n = self.ring.receive_into(&mut replies, self.batch())?;
        if n == 0 {
            return Ok(0);
        }
        if n > self.headers.len() {
            return Err(GpuError::DeviceLost(format!(
                "the device published {n} replies for {} messages on it",
                self.headers.len()
            ))
            .into());
        }
        let envelopes: Vec<Envelope<Out>> = replies
            .into_iter()
            .zip(self.headers.drain(..n))
            .map(|(payload, request)| Envelope {
                payload,
                header: MessageHeader::reply_to(&request),
            })
            .collect();
        self.ctx.send_batch(envelopes).map_err(|refused| {
            // Replies the runtime no longer takes (it terminates the kernel)
            // go with the kernel: counted as discarded.
            let (rest, why) = refused.into_parts();
            self.ctx.count_discarded(rest.len() as u64);
            Stop::Runtime(why)
        })?;
        Ok(n)
    }

    fn run(&mut self) -> Result<(), KernelError> {
        match self.pump() {
            Ok(()) => Ok(()),
            Err(Stop::Runtime(e)) => self.finish(e),
            Err(Stop::Failed(e)) => {
                tracing::warn!(kernel = %self.ctx.kernel_id(), error = %e, "GPU ring kernel failed");
                // Stop the device, bounded; the failure is what we report.
                let _ = self.ring.terminate(self.options.ring.terminate_timeout);
                Err(e)
            }
        }
    }

    fn pump(&mut self) -> Result<(), Stop> {
        let batch = self.batch();
        let mut last_check = Instant::now();
        let mut idle: u32 = 0;
        loop {
            let want = self.runtime_wants_active();
            if want != self.active {
                if want {
                    self.ring.activate()?;
                } else {
                    self.ring.deactivate()?;
                }
                self.active = want;
                self.check()?;
            }
            let mut progressed = false;
            if self.active {
                while self.inbox.len() < batch {
                    match self.ctx.try_receive().map_err(Stop::Runtime)? {
                        Some(m) => self.inbox.push_back(m),
                        None => break,
                    }
                }
                progressed |= self.push_inbox()? > 0;
            }
            progressed |= self.forward_replies()? > 0;
            if !progressed || last_check.elapsed() > Duration::from_millis(1) {
                self.check()?;
                last_check = Instant::now();
            }
            if progressed {
                idle = 0;
                continue;
            }
            idle += 1;
            if self.active && self.headers.is_empty() && self.inbox.is_empty() {
                // Nothing anywhere: sleep in the runtime queue (wakes on a message or terminate).
                let wait = (self.options.ring.heartbeat_timeout / 4).min(Duration::from_millis(5));
                if let Some(m) = self.ctx.receive_timeout(wait).map_err(Stop::Runtime)? {
                    self.inbox.push_back(m);
                }
            } else if !self.active {
                std::thread::sleep(Duration::from_millis(1));
            } else if idle <= 64 {
                std::hint::spin_loop();
            } else if idle <= 96 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Moves messages taken from the runtime onto the device, as far as the
    /// ring has room; returns how many.
    fn push_inbox(&mut self) -> Result<usize, Stop> {
        if self.inbox.is_empty() {
            return Ok(0);
        }
        let payloads: Vec<In> = self.inbox.iter().map(|e| e.payload).collect();
        let n = self.ring.send_slice(&payloads)?;
        for e in self.inbox.drain(..n) {
            self.headers.push_back(e.header);
        }
        Ok(n)
    }

    /// The runtime ended the kernel (`e` is usually `Terminating`): hand the
    /// device what was already taken from the runtime and forward the replies
    /// (while the runtime takes them, that is with a draining terminate, at
    /// most `drain_timeout`), then stop the device within `terminate_timeout`.
    fn finish(&mut self, e: Error) -> Result<(), KernelError> {
        if !(self.headers.is_empty() && self.inbox.is_empty()) && self.ring.failure().is_none() {
            if !self.active {
                let _ = self.ring.activate();
            }
            let deadline = Instant::now() + self.options.drain_timeout;
            let mut pause = 0u32;
            while !(self.headers.is_empty() && self.inbox.is_empty()) && Instant::now() < deadline {
                let pushed = match self.push_inbox() {
                    Ok(n) => n,
                    Err(_) => break,
                };
                match self.forward_replies() {
                    Ok(0) if pushed == 0 => {
                        if let Err(Stop::Failed(f)) = self.check() {
                            let _ = self.ring.terminate(self.options.ring.terminate_timeout);
                            return Err(f);
                        }
                        pause += 1;
                        if pause > 64 {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                    Ok(_) => pause = 0,
                    // The runtime no longer takes replies (terminate without drain).
                    Err(_) => break,
                }
            }
        }
        let summary = self.ring.terminate(self.options.ring.terminate_timeout)?;
        self.publish(summary.counters);
        tracing::info!(
            kernel = %self.ctx.kernel_id(),
            processed = summary.counters.processed,
            unprocessed = summary.unprocessed,
            unread = summary.unread_replies,
            "GPU ring kernel stopped"
        );
        // `Terminating` ends the kernel cleanly; anything else is its failure.
        Err(Box::new(e))
    }
}
