//! Ring kernels on wgpu: a kernel whose handler is WGSL and whose state
//! stays in device memory, run as **batched dispatches** (one compute
//! dispatch per batch of messages) under the same runtime API, lifecycle
//! and telemetry as every other kernel.
//!
//! Why batches and not a persistent kernel: wgpu (like WebGPU) does not let
//! the host read or write a buffer while a dispatch uses it, and a dispatch
//! cannot wait for the host. So the bridge thread takes up to
//! [`WgpuKernelOptions::batch_size`] messages from the kernel's input queue,
//! uploads them, dispatches the handler over them, and forwards the
//! replies; with two batch slots, the next batch is gathered and uploaded
//! (staged by the queue) while the current dispatch runs, and the current
//! one's replies are copied to a host-readable buffer in the same
//! submission as its dispatch, so reading them waits for that dispatch only.
//!
//! | runtime | device |
//! |---|---|
//! | `activate` (handler thread starts) | device opened, handler compiled, state buffer filled with the initial state |
//! | `deactivate` / `reactivate` | the runtime stops / resumes delivery; batches already dispatched complete and their replies are forwarded |
//! | `terminate` | batches in flight complete (their replies forwarded while the runtime takes them), then the device is released |
//! | `send` / `receive` / `call` | `Envelope<In>` → batch → `Envelope<Out>`, correlated to its request |
//! | kernel `Failed` | a handler error code (with `fail_on_handler_error`, after the batch's replies are forwarded), a device error or a lost device |
//!
//! The handler is a WGSL function
//! `fn NAME(input: In, out: ptr<function, Out>, state: ptr<function, State>) -> u32`
//! returning 0 or an error code, with WGSL structs `In`, `Out` and `State`
//! (named in [`WgslHandler`]) laid out as the Rust [`GpuMessage`] types: a
//! `u64` field is a `vec2<u32>` (low word first), an `f64` field needs
//! `SHADER_F64`. [`wgpu_kernel`] checks each struct's size against the Rust
//! type's before anything runs. [`Threading::Serial`] runs a batch in one
//! invocation, in order, with the state carried from message to message;
//! [`Threading::Parallel`] runs one invocation per message (stateless
//! handlers: the state is read, never written back).
//!
//! Invariant: every message taken from the runtime is in the bridge's batch
//! being built, in a dispatched batch (its header kept, one reply expected),
//! or answered; a batch's replies are forwarded in message order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::error::GpuError;
use super::message::{Envelope, GpuMessage};
use super::source::Threading;
use crate::device::backend::{ElemType, KernelArg};
use crate::device::wgpu::{AdapterSelector, WgpuBackend, WgpuKernel, WgpuMemory, WgpuOptions, WgslSource};
use crate::device::{Backend, DeviceError, LaunchConfig};
use crate::error::Error;
use crate::message::MessageHeader;
use crate::runtime::config::{ExecutionMode, DEFAULT_QUEUE_SIZE};
use crate::runtime::context::BlockingContext;
use crate::runtime::spec::{KernelError, KernelSpec};

/// A WGSL handler: the source (struct declarations and the function), the
/// function's name, the names of its three structs, and its threading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgslHandler {
    /// WGSL: the `In`, `Out` and `State` structs and the handler function
    /// (plus anything they use). No bindings: the template adds them.
    pub source: String,
    /// The handler function's name.
    pub function: String,
    /// WGSL name of the input struct.
    pub input: String,
    /// WGSL name of the output struct.
    pub output: String,
    /// WGSL name of the state struct.
    pub state: String,
    /// Serial (ordered, stateful) or parallel (one invocation per message).
    pub threading: Threading,
}

impl WgslHandler {
    /// A handler `function` in `source` over structs `input`, `output`, `state`.
    pub fn new(
        source: impl Into<String>,
        function: impl Into<String>,
        (input, output, state): (&str, &str, &str),
        threading: Threading,
    ) -> Self {
        WgslHandler {
            source: source.into(),
            function: function.into(),
            input: input.into(),
            output: output.into(),
            state: state.into(),
            threading,
        }
    }

    /// The whole shader: the handler, the bindings and the batch entry point
    /// `dc_batch`.
    pub fn shader(&self) -> String {
        let (i, o, s, f) = (&self.input, &self.output, &self.state, &self.function);
        let entry = match self.threading {
            Threading::Serial => format!(
                "@compute @workgroup_size(1)\n\
                 fn dc_batch() {{\n\
                 \x20   var state: {s} = dc_state[0];\n\
                 \x20   for (var i = 0u; i < dc_count; i++) {{\n\
                 \x20       var out: {o};\n\
                 \x20       dc_codes[i] = {f}(dc_in[i], &out, &state);\n\
                 \x20       dc_out[i] = out;\n\
                 \x20   }}\n\
                 \x20   dc_state[0] = state;\n\
                 }}\n"
            ),
            Threading::Parallel => format!(
                "override block_x: u32 = 64u;\n\
                 @compute @workgroup_size(block_x)\n\
                 fn dc_batch(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
                 \x20   let i = gid.x;\n\
                 \x20   if (i < dc_count) {{\n\
                 \x20       var state: {s} = dc_state[0];\n\
                 \x20       var out: {o};\n\
                 \x20       dc_codes[i] = {f}(dc_in[i], &out, &state);\n\
                 \x20       dc_out[i] = out;\n\
                 \x20   }}\n\
                 }}\n"
            ),
        };
        format!(
            "{}\n\
             // ---- dotcompute batch template ----\n\
             @group(0) @binding(0) var<storage, read> dc_in: array<{i}>;\n\
             @group(0) @binding(1) var<storage, read_write> dc_out: array<{o}>;\n\
             @group(0) @binding(2) var<storage, read_write> dc_state: array<{s}>;\n\
             @group(0) @binding(3) var<storage, read_write> dc_codes: array<u32>;\n\
             @group(0) @binding(4) var<uniform> dc_count: u32;\n\
             {entry}",
            self.source
        )
    }
}

/// Options of a wgpu ring kernel.
#[derive(Debug, Clone)]
pub struct WgpuKernelOptions {
    /// Which adapter (and whether to use f64).
    pub device: WgpuOptions,
    /// Most messages per dispatch (default 256).
    pub batch_size: usize,
    /// Capacity of the kernel's runtime queues (input and output).
    pub queue_size: usize,
    /// A handler error code (non-zero return) fails the kernel (default).
    pub fail_on_handler_error: bool,
    /// Invocations per workgroup of a parallel handler (default 64).
    pub block: u32,
    /// Where the bridge publishes its counters.
    pub monitor: Option<WgpuMonitor>,
}

impl Default for WgpuKernelOptions {
    fn default() -> Self {
        WgpuKernelOptions {
            device: WgpuOptions::default(),
            batch_size: 256,
            queue_size: DEFAULT_QUEUE_SIZE,
            fail_on_handler_error: true,
            block: 64,
            monitor: None,
        }
    }
}

impl WgpuKernelOptions {
    /// The defaults on the adapter `selector` names.
    pub fn on(selector: AdapterSelector) -> Self {
        WgpuKernelOptions {
            device: WgpuOptions::new(selector),
            ..Self::default()
        }
    }
}

/// What a wgpu ring kernel's bridge has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WgpuSnapshot {
    /// The adapter's name and API.
    pub device: String,
    /// Dispatches (batches) completed.
    pub dispatches: u64,
    /// Messages the device handled.
    pub messages: u64,
    /// Messages whose handler returned a non-zero code.
    pub handler_errors: u64,
    /// The last non-zero code.
    pub last_error: u32,
    /// Largest batch dispatched.
    pub max_batch: u64,
    /// Whether the state buffer is on the device (false once released).
    pub running: bool,
}

/// Where a wgpu ring kernel publishes its [`WgpuSnapshot`]; clone it into
/// [`WgpuKernelOptions::monitor`] and read it from anywhere.
#[derive(Debug, Clone, Default)]
pub struct WgpuMonitor(Arc<Mutex<WgpuSnapshot>>);

impl WgpuMonitor {
    /// An empty monitor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> WgpuSnapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut WgpuSnapshot)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

fn start_error(e: DeviceError) -> GpuError {
    match e {
        DeviceError::Shader { .. } => GpuError::Compile(e.to_string()),
        other => GpuError::Start(format!("wgpu: {other}")),
    }
}

fn elem<T: GpuMessage>() -> ElemType {
    ElemType {
        id: std::any::TypeId::of::<T>(),
        name: T::RUST_NAME,
        size: T::SIZE,
    }
}

/// Checks that WGSL struct `wgsl` has the Rust type's size.
fn check_struct<T: GpuMessage>(kernel: &WgpuKernel, index: usize, wgsl: &str) -> Result<(), GpuError> {
    let p = &kernel.params()[index];
    if p.elem_size as usize != T::SIZE {
        return Err(GpuError::Compile(format!(
            "WGSL struct {wgsl} is {} bytes in a storage array, the Rust type {} is {} bytes: lay it out as the \
             #[repr(C)] struct (u64 as vec2<u32>, f64 needs SHADER_F64)",
            p.elem_size,
            T::RUST_NAME,
            T::SIZE
        )));
    }
    Ok(())
}

/// Opens the device and builds the handler's pipeline, checking the
/// structs' layouts.
fn prepare<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
    handler: &WgslHandler,
    options: &WgpuKernelOptions,
) -> Result<(Arc<WgpuBackend>, WgpuKernel), GpuError> {
    let backend = Arc::new(WgpuBackend::with_options(options.device.clone()).map_err(start_error)?);
    let source = WgslSource::new(format!("{}.wgsl", handler.function), handler.shader(), "dc_batch");
    let kernel = backend.compile(source).map_err(start_error)?;
    check_struct::<In>(&kernel, 0, &handler.input)?;
    check_struct::<Out>(&kernel, 1, &handler.output)?;
    check_struct::<State>(&kernel, 2, &handler.state)?;
    Ok((backend, kernel))
}

/// A ring kernel on wgpu for the runtime: a [`KernelSpec`] in
/// [`ExecutionMode::Thread`] (its bridge thread drives the device) whose
/// messages are [`Envelope<In>`] / [`Envelope<Out>`] and whose handler is
/// WGSL, run in batched dispatches over a state buffer that starts as
/// `initial_state` and stays on the device across messages and batches.
/// Each activation (and each restart) starts from `initial_state`.
///
/// Building the spec opens the device and compiles the handler, so a
/// missing adapter, a WGSL error or a struct whose layout differs from its
/// Rust type is reported here.
///
/// ```no_run
/// use dotcompute::gpu::handlers::{Sample, Stats, StatsState};
/// use dotcompute::gpu::wgpu::{running_stats_wgsl, wgpu_kernel, WgpuKernelOptions};
/// use dotcompute::gpu::{Envelope, GpuMessage};
/// use dotcompute::RingKernelRuntime;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let spec = wgpu_kernel::<Sample, Stats, StatsState>(
///     "stats", running_stats_wgsl(), StatsState::zeroed(), WgpuKernelOptions::default())?;
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
/// [`GpuError::Start`] (no adapter, device error) or [`GpuError::Compile`]
/// (naga's message with the line, or a struct layout mismatch).
pub fn wgpu_kernel<In, Out, State>(
    id: impl Into<String>,
    handler: WgslHandler,
    initial_state: State,
    options: WgpuKernelOptions,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
{
    let id = id.into();
    if options.batch_size == 0 {
        return Err(Error::InvalidConfiguration {
            parameter: "wgpu.batch_size",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    if options.block == 0 || !options.block.is_power_of_two() {
        return Err(Error::InvalidConfiguration {
            parameter: "wgpu.block",
            value: options.block.to_string(),
            reason: "must be a power of two".into(),
        });
    }
    let gpu_err = |error: GpuError| Error::Gpu {
        kernel: id.clone(),
        error,
    };
    // Check everything before launch (the activation opens its own device).
    prepare::<In, Out, State>(&handler, &options).map_err(gpu_err)?;
    KernelSpec::builder::<Envelope<In>, Envelope<Out>>(id)
        .mode(ExecutionMode::Thread)
        .queue_size(options.queue_size)
        .blocking_handler(move |ctx: BlockingContext<Envelope<In>, Envelope<Out>>| {
            let (backend, kernel) = prepare::<In, Out, State>(&handler, &options)?;
            let mut bridge = Bridge::<In, Out, State>::new(ctx, backend, kernel, &options, initial_state, &handler)?;
            let result = bridge.run();
            if let Some(m) = &options.monitor {
                m.update(|s| s.running = false);
            }
            result
        })
        .build()
}

/// The message and state types a bridge or runner is for.
type Types<In, Out, State> = std::marker::PhantomData<fn() -> (In, Out, State)>;

/// One batch slot: input, output and code buffers for `batch_size` messages.
struct Slot {
    input: WgpuMemory,
    output: WgpuMemory,
    codes: WgpuMemory,
}

impl Slot {
    /// Dispatches the handler over the first `n` inputs already uploaded
    /// to this slot, with the kernel's `state`; the outputs and codes are
    /// staged for reading back (`finish_staged`).
    fn launch<In: GpuMessage, Out: GpuMessage, State: GpuMessage>(
        &mut self,
        b: &WgpuBackend,
        kernel: &WgpuKernel,
        threading: Threading,
        block: u32,
        state: &mut WgpuMemory,
        n: usize,
    ) -> Result<crate::device::wgpu::StagedRead, DeviceError> {
        let config = match threading {
            Threading::Serial => LaunchConfig::new(1, 1),
            Threading::Parallel => LaunchConfig::linear(n, block)?,
        };
        let mut args = [
            KernelArg::Buffer {
                memory: &self.input,
                elem: elem::<In>(),
                len: n,
            },
            KernelArg::BufferMut {
                memory: &mut self.output,
                elem: elem::<Out>(),
                len: n,
            },
            KernelArg::BufferMut {
                memory: state,
                elem: elem::<State>(),
                len: 1,
            },
            KernelArg::BufferMut {
                memory: &mut self.codes,
                elem: ElemType::of::<u32>(),
                len: n,
            },
            KernelArg::scalar(n as u32),
        ];
        b.launch_staged(kernel, &config, &mut args, &[(1, n * Out::SIZE), (3, n * 4)])
    }
}

/// A dispatched batch.
struct InFlight {
    staged: crate::device::wgpu::StagedRead,
    headers: Vec<MessageHeader>,
    slot: usize,
}

struct Bridge<'a, In, Out, State> {
    ctx: BlockingContext<Envelope<In>, Envelope<Out>>,
    backend: Arc<WgpuBackend>,
    kernel: WgpuKernel,
    options: &'a WgpuKernelOptions,
    state: WgpuMemory,
    slots: Vec<Slot>,
    free: Vec<usize>,
    inflight: VecDeque<InFlight>,
    threading: Threading,
    _types: Types<In, Out, State>,
}

fn bytes_of<T: GpuMessage>(items: &[T]) -> &[u8] {
    // SAFETY: `GpuMessage` types have no padding and every byte is
    // initialised (the trait's contract), so viewing a slice of them as
    // `size_of_val` bytes is sound; the lifetime is the slice's.
    unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items)) }
}

fn from_bytes<T: GpuMessage>(bytes: &[u8]) -> Vec<T> {
    bytes
        .chunks_exact(T::SIZE)
        .map(|c| {
            // SAFETY: `c` has exactly `size_of::<T>()` bytes and every bit
            // pattern is a valid `T` (the trait's contract); the read is
            // unaligned-safe.
            unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<T>()) }
        })
        .collect()
}

impl<'a, In: GpuMessage, Out: GpuMessage, State: GpuMessage> Bridge<'a, In, Out, State> {
    fn new(
        ctx: BlockingContext<Envelope<In>, Envelope<Out>>,
        backend: Arc<WgpuBackend>,
        kernel: WgpuKernel,
        options: &'a WgpuKernelOptions,
        initial_state: State,
        handler: &WgslHandler,
    ) -> Result<Self, KernelError> {
        let b = &backend;
        let n = options.batch_size;
        let mut state = b.alloc(State::SIZE)?;
        b.copy_htod(bytes_of(&[initial_state]), &mut state, 0, &b.default_stream())?;
        let mut slots = Vec::new();
        for _ in 0..2 {
            slots.push(Slot {
                input: b.alloc(n * In::SIZE)?,
                output: b.alloc(n * Out::SIZE)?,
                codes: b.alloc(n * 4)?,
            });
        }
        if let Some(m) = &options.monitor {
            let a = b.adapter_info();
            let device = format!("{} ({})", a.device.name, a.api);
            m.update(|s| {
                *s = WgpuSnapshot {
                    device,
                    running: true,
                    ..WgpuSnapshot::default()
                }
            });
        }
        tracing::info!(kernel = %ctx.kernel_id(), device = %b.device().name, "wgpu ring kernel started");
        Ok(Bridge {
            ctx,
            backend,
            kernel,
            options,
            state,
            slots,
            free: vec![1, 0],
            inflight: VecDeque::new(),
            threading: handler.threading,
            _types: std::marker::PhantomData,
        })
    }

    /// Uploads `batch` into a free slot and dispatches it.
    fn dispatch(&mut self, batch: Vec<Envelope<In>>) -> Result<(), KernelError> {
        let Some(slot) = self.free.pop() else {
            return Err(Box::new(GpuError::Start("no free batch slot".into())));
        };
        let n = batch.len();
        let payloads: Vec<In> = batch.iter().map(|e| e.payload).collect();
        let headers: Vec<MessageHeader> = batch.into_iter().map(|e| e.header).collect();
        let b = self.backend.clone();
        let stream = b.default_stream();
        let s = &mut self.slots[slot];
        b.copy_htod(bytes_of(&payloads), &mut s.input, 0, &stream)?;
        let staged =
            s.launch::<In, Out, State>(&b, &self.kernel, self.threading, self.options.block, &mut self.state, n)?;
        self.inflight.push_back(InFlight { staged, headers, slot });
        Ok(())
    }

    /// Waits for the oldest batch and forwards its replies; a handler error
    /// (with `fail_on_handler_error`) fails the kernel after forwarding.
    fn complete(&mut self) -> Result<(), Stop> {
        let Some(done) = self.inflight.pop_front() else {
            return Ok(());
        };
        let n = done.headers.len();
        let mut out = vec![0u8; n * Out::SIZE];
        let mut codes = vec![0u8; n * 4];
        let result = self
            .backend
            .finish_staged(done.staged, &mut [&mut out[..], &mut codes[..]]);
        self.free.push(done.slot);
        result.map_err(|e| Stop::Failed(Box::new(e)))?;
        let replies: Vec<Out> = from_bytes(&out);
        let codes: Vec<u32> = codes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let errors = codes.iter().filter(|&&c| c != 0).count() as u64;
        let last_error = codes.iter().rev().find(|&&c| c != 0).copied().unwrap_or(0);
        if let Some(m) = &self.options.monitor {
            m.update(|s| {
                s.dispatches += 1;
                s.messages += n as u64;
                s.handler_errors += errors;
                if last_error != 0 {
                    s.last_error = last_error;
                }
                s.max_batch = s.max_batch.max(n as u64);
            });
        }
        let envelopes: Vec<Envelope<Out>> = replies
            .into_iter()
            .zip(done.headers)
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
        if errors > 0 && self.options.fail_on_handler_error {
            return Err(Stop::Failed(Box::new(GpuError::HandlerErrors {
                errors,
                last_error: u64::from(last_error),
            })));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), KernelError> {
        let batch = self.options.batch_size;
        loop {
            let mut next = Vec::new();
            let mut stop = None;
            if self.inflight.is_empty() {
                // Nothing on the device: sleep in the queue (wakes on a message or terminate).
                if let Err(e) = self.ctx.receive_batch(batch, &mut next) {
                    stop = Some(e);
                }
            } else if !self.free.is_empty() {
                // The device is busy: gather what is already queued, without waiting.
                while next.len() < batch {
                    match self.ctx.try_receive() {
                        Ok(Some(m)) => next.push(m),
                        Ok(None) => break,
                        Err(e) => {
                            stop = Some(e);
                            break;
                        }
                    }
                }
            }
            let gathered = !next.is_empty();
            if gathered {
                self.dispatch(next)?;
            }
            if self.free.is_empty() || (!gathered && !self.inflight.is_empty()) {
                match self.complete() {
                    Ok(()) => {}
                    Err(Stop::Failed(f)) => return Err(f),
                    Err(Stop::Runtime(e)) => return self.finish(e),
                }
            }
            if let Some(e) = stop {
                return self.finish(e);
            }
        }
    }

    /// The runtime ended the kernel (`e`, usually `Terminating`): complete
    /// the batches on the device and forward their replies while the runtime
    /// takes them, then end.
    fn finish(&mut self, e: Error) -> Result<(), KernelError> {
        while !self.inflight.is_empty() {
            match self.complete() {
                Ok(()) => {}
                Err(Stop::Failed(f)) => return Err(f),
                // The runtime no longer takes replies (terminate without drain).
                Err(Stop::Runtime(_)) => {
                    while let Some(d) = self.inflight.pop_front() {
                        // Handled by the device, but nobody takes the replies: counted as discarded.
                        self.ctx.count_discarded(d.headers.len() as u64);
                        let _ = self.backend.finish_staged(d.staged, &mut []);
                    }
                }
            }
        }
        tracing::info!(kernel = %self.ctx.kernel_id(), "wgpu ring kernel stopped");
        Err(Box::new(e))
    }
}

/// The device side of a wgpu ring kernel without the runtime: one batch
/// slot, each [`run`](Self::run) uploads a batch, dispatches the handler
/// and waits for the replies. For measuring what the runtime and the
/// overlapped batches add (the baseline a wgpu user would write), and for
/// driving a WGSL handler directly.
pub struct WgpuBatchRunner<In, Out, State> {
    backend: Arc<WgpuBackend>,
    kernel: WgpuKernel,
    threading: Threading,
    block: u32,
    capacity: usize,
    state: WgpuMemory,
    slot: Slot,
    _types: Types<In, Out, State>,
}

impl<In: GpuMessage, Out: GpuMessage, State: GpuMessage> WgpuBatchRunner<In, Out, State> {
    /// Opens the device, compiles `handler`, and uploads `initial_state`;
    /// batches of up to `options.batch_size` messages.
    ///
    /// # Errors
    ///
    /// As [`wgpu_kernel`]: [`GpuError::Start`] or [`GpuError::Compile`].
    pub fn new(handler: &WgslHandler, initial_state: State, options: &WgpuKernelOptions) -> Result<Self, GpuError> {
        let (backend, kernel) = prepare::<In, Out, State>(handler, options)?;
        let n = options.batch_size.max(1);
        let b = &backend;
        let alloc = |bytes| b.alloc(bytes).map_err(start_error);
        let mut state = alloc(State::SIZE)?;
        b.copy_htod(bytes_of(&[initial_state]), &mut state, 0, &b.default_stream())
            .map_err(start_error)?;
        let slot = Slot {
            input: alloc(n * In::SIZE)?,
            output: alloc(n * Out::SIZE)?,
            codes: alloc(n * 4)?,
        };
        Ok(WgpuBatchRunner {
            backend,
            kernel,
            threading: handler.threading,
            block: options.block,
            capacity: n,
            state,
            slot,
            _types: std::marker::PhantomData,
        })
    }

    /// The backend the runner dispatches on.
    pub fn backend(&self) -> &Arc<WgpuBackend> {
        &self.backend
    }

    /// Runs the handler over `inputs` (at most the batch size) and replaces
    /// `out` with the replies, in order; returns the handler codes.
    ///
    /// # Errors
    ///
    /// [`DeviceError::InvalidConfiguration`] for too many inputs; device errors.
    pub fn run(&mut self, inputs: &[In], out: &mut Vec<Out>) -> Result<Vec<u32>, DeviceError> {
        let n = inputs.len();
        if n > self.capacity {
            return Err(DeviceError::InvalidConfiguration {
                parameter: "inputs",
                value: n.to_string(),
                reason: format!("at most {} per batch", self.capacity),
            });
        }
        out.clear();
        if n == 0 {
            return Ok(Vec::new());
        }
        let b = self.backend.clone();
        b.copy_htod(bytes_of(inputs), &mut self.slot.input, 0, &b.default_stream())?;
        let staged =
            self.slot
                .launch::<In, Out, State>(&b, &self.kernel, self.threading, self.block, &mut self.state, n)?;
        let mut bytes = vec![0u8; n * Out::SIZE];
        let mut codes = vec![0u8; n * 4];
        b.finish_staged(staged, &mut [&mut bytes[..], &mut codes[..]])?;
        out.extend(from_bytes::<Out>(&bytes));
        Ok(codes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Why the bridge stopped.
enum Stop {
    Runtime(Error),
    Failed(KernelError),
}

/// The WGSL of [`running_stats_wgsl`]: the same formulas as
/// [`handlers::running_stats`](super::handlers::running_stats), in f64 for
/// the totals and f32 for the window.
pub const RUNNING_STATS_WGSL: &str = include_str!("wgsl/running_stats.wgsl");
/// The WGSL of [`echo_wgsl`].
pub const ECHO_WGSL: &str = include_str!("wgsl/echo.wgsl");

/// The running-statistics handler in WGSL (`Sample` → `Stats`, state
/// `StatsState`; serial). Needs `SHADER_F64`.
pub fn running_stats_wgsl() -> WgslHandler {
    WgslHandler::new(
        RUNNING_STATS_WGSL,
        "running_stats",
        ("Sample", "Stats", "StatsState"),
        Threading::Serial,
    )
}

/// The echo handler in WGSL (`Sample` → the same `Sample`; parallel).
pub fn echo_wgsl() -> WgslHandler {
    WgslHandler::new(ECHO_WGSL, "echo", ("Sample", "Sample", "NoState"), Threading::Parallel)
}
