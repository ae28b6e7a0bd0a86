//! The ring-kernel runtime: launches kernels, drives their lifecycle, moves
//! messages between the host and kernels and between kernels, and keeps
//! their telemetry.
//!
//! Invariants:
//! - a kernel id names at most one live kernel in a runtime;
//! - `shutdown` terminates every kernel concurrently, wakes handlers blocked
//!   in `receive` or `send` at once, and returns within the configured
//!   terminate timeout (plus a short abort grace) whatever the handlers do;
//! - dropping the last handle of a runtime stops every kernel it still holds.
//!
//! ```
//! use dotcompute::{Error, KernelConfig, KernelContext, Message, MessageHeader, RingKernelRuntime};
//!
//! #[derive(Debug, Message)]
//! struct Req { values: Vec<f64>, header: MessageHeader }
//! #[derive(Debug, Message)]
//! struct Resp { sum: f64, header: MessageHeader }
//!
//! async fn sum(mut ctx: KernelContext<Req, Resp>) -> Result<(), Error> {
//!     loop {
//!         let req = ctx.receive().await?;
//!         let resp = req.reply(Resp { sum: req.values.iter().sum(), header: MessageHeader::new() });
//!         ctx.send(resp).await?;
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let total = RingKernelRuntime::scope(|rt| async move {
//!     rt.launch_with("sum", KernelConfig::default(), sum).await?;
//!     rt.activate("sum").await?;
//!     let resp: Resp = rt
//!         .call("sum", Req { values: vec![1.0, 2.0, 3.0], header: MessageHeader::new() })
//!         .await?;
//!     Ok::<f64, Error>(resp.sum)
//! })
//! .await
//! .unwrap();
//! assert_eq!(total, 6.0);
//! # });
//! ```

pub mod config;
pub mod context;
pub(crate) mod kernel;
pub(crate) mod park;
pub mod receipt;
pub mod registry;
pub mod spec;
pub mod state;
pub mod telemetry;
pub(crate) mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::message::Message;
use config::{KernelConfig, RuntimeConfig};
use context::KernelContext;
use kernel::{ErasedKernel, InputPort, OutputPort};
pub use kernel::{TerminateOptions, TerminateReport};
use receipt::Receipt;
use spec::{IntoKernelResult, KernelSpec};
use state::KernelState;
use telemetry::{KernelMetrics, KernelTelemetry, RuntimeSummary};

type KernelTable = HashMap<String, Arc<dyn ErasedKernel>>;

pub(crate) struct RuntimeShared {
    kernels: RwLock<KernelTable>,
    config: RuntimeConfig,
    created: Instant,
    shut_down: AtomicBool,
}

impl RuntimeShared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, KernelTable> {
        self.kernels.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KernelTable> {
        self.kernels.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn kernel(&self, id: &str) -> Result<Arc<dyn ErasedKernel>> {
        let table = self.read();
        table.get(id).cloned().ok_or_else(|| {
            let mut known: Vec<String> = table.keys().cloned().collect();
            known.sort();
            Error::KernelNotFound {
                id: id.to_string(),
                known,
            }
        })
    }
}

impl Drop for RuntimeShared {
    fn drop(&mut self) {
        let table = std::mem::take(self.kernels.get_mut().unwrap_or_else(|p| p.into_inner()));
        for kernel in table.values() {
            kernel.abort();
        }
    }
}

pub(crate) fn input_port<M: Message>(kernel: &dyn ErasedKernel) -> Result<Arc<InputPort<M>>> {
    kernel
        .input_any()
        .downcast_ref::<Arc<InputPort<M>>>()
        .cloned()
        .ok_or_else(|| Error::TypeMismatch {
            kernel: kernel.core().id.to_string(),
            context: "input",
            expected: kernel.input_type(),
            found: std::any::type_name::<M>(),
        })
}

fn output_port<M: Message>(kernel: &dyn ErasedKernel) -> Result<Arc<OutputPort<M>>> {
    kernel
        .output_any()
        .downcast_ref::<Arc<OutputPort<M>>>()
        .cloned()
        .ok_or_else(|| Error::TypeMismatch {
            kernel: kernel.core().id.to_string(),
            context: "output",
            expected: kernel.output_type(),
            found: std::any::type_name::<M>(),
        })
}

/// What `shutdown` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShutdownReport {
    /// One report per kernel, sorted by id.
    pub kernels: Vec<TerminateReport>,
    /// Wall time of the shutdown (serialized as `elapsed_secs`).
    #[serde(rename = "elapsed_secs", serialize_with = "telemetry::serialize_secs")]
    pub elapsed: Duration,
}

/// Coordinates ring kernels. Cheap to clone: clones share the same kernels.
///
/// All methods must be called from within a tokio runtime.
#[derive(Clone)]
pub struct RingKernelRuntime {
    shared: Arc<RuntimeShared>,
}

impl Default for RingKernelRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl RingKernelRuntime {
    /// A runtime with the default configuration.
    pub fn new() -> Self {
        Self::with_config(RuntimeConfig::default())
    }

    /// A runtime with the given configuration.
    pub fn with_config(config: RuntimeConfig) -> Self {
        RingKernelRuntime {
            shared: Arc::new(RuntimeShared {
                kernels: RwLock::new(HashMap::new()),
                config,
                created: Instant::now(),
                shut_down: AtomicBool::new(false),
            }),
        }
    }

    /// Runs `f` with a fresh runtime and shuts the runtime down afterwards,
    /// also when `f`'s future is dropped early or panics (then the kernels are
    /// aborted rather than terminated gracefully).
    pub async fn scope<F, Fut, T>(f: F) -> T
    where
        F: FnOnce(RingKernelRuntime) -> Fut,
        Fut: Future<Output = T>,
    {
        let rt = RingKernelRuntime::new();
        let out = f(rt.clone()).await;
        rt.shutdown().await;
        out
    }

    fn kernel(&self, id: &str) -> Result<Arc<dyn ErasedKernel>> {
        self.shared.kernel(id)
    }

    /// Launches the kernel registered under `id` (by `#[ring_kernel]` or
    /// [`KernelBuilder::register`](crate::KernelBuilder::register)).
    pub async fn launch(&self, id: &str) -> Result<()> {
        let spec = registry::lookup(id)?;
        self.launch_spec(spec).await
    }

    /// Launches a kernel from a spec: its queues exist afterwards, its handler
    /// does not run until [`activate`](Self::activate).
    pub async fn launch_spec(&self, spec: KernelSpec) -> Result<()> {
        if self.shared.shut_down.load(Ordering::Acquire) {
            return Err(Error::ShutDown);
        }
        let mut table = self.shared.write();
        if table.contains_key(spec.id()) {
            return Err(Error::KernelAlreadyExists(spec.id().to_string()));
        }
        let kernel = spec.instantiate(Arc::downgrade(&self.shared))?;
        tracing::info!(kernel = %spec.id(), input = spec.input_type(), output = spec.output_type(), "kernel launched");
        table.insert(spec.id().to_string(), kernel);
        Ok(())
    }

    /// Launches a kernel from a handler and a configuration.
    pub async fn launch_with<In, Out, F, Fut, R>(&self, id: &str, config: KernelConfig, handler: F) -> Result<()>
    where
        In: Message,
        Out: Message,
        F: Fn(KernelContext<In, Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoKernelResult,
    {
        let spec = KernelSpec::builder::<In, Out>(id)
            .config(config)
            .handler(handler)
            .build()?;
        self.launch_spec(spec).await
    }

    /// Starts the handler of a launched kernel.
    pub async fn activate(&self, id: &str) -> Result<()> {
        self.kernel(id)?.activate()
    }

    /// Pauses delivery: the handler gets no message until
    /// [`reactivate`](Self::reactivate); messages sent meanwhile stay queued.
    pub async fn deactivate(&self, id: &str) -> Result<()> {
        self.kernel(id)?.deactivate()
    }

    /// Resumes delivery after [`deactivate`](Self::deactivate).
    pub async fn reactivate(&self, id: &str) -> Result<()> {
        self.kernel(id)?.reactivate()
    }

    /// Terminates a kernel at once (queued input is discarded and counted)
    /// and removes it from the runtime, freeing its id.
    pub async fn terminate(&self, id: &str) -> Result<TerminateReport> {
        self.terminate_with(
            id,
            TerminateOptions {
                drain: false,
                timeout: self.shared.config.terminate_timeout,
            },
        )
        .await
    }

    /// Terminates a kernel with options (for example draining its input first).
    pub async fn terminate_with(&self, id: &str, options: TerminateOptions) -> Result<TerminateReport> {
        let kernel = self.kernel(id)?;
        let report = kernel.clone().terminate(options).await?;
        let mut table = self.shared.write();
        if table.get(id).is_some_and(|k| Arc::ptr_eq(k, &kernel)) {
            table.remove(id);
        }
        Ok(report)
    }

    /// Terminates every kernel concurrently and refuses later launches.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.shutdown_with(false).await
    }

    /// Like [`shutdown`](Self::shutdown); with `drain`, each kernel first
    /// handles the messages already queued (within the terminate timeout).
    pub async fn shutdown_with(&self, drain: bool) -> ShutdownReport {
        let start = Instant::now();
        self.shared.shut_down.store(true, Ordering::Release);
        let kernels: Vec<Arc<dyn ErasedKernel>> = self.shared.write().drain().map(|(_, k)| k).collect();
        let options = TerminateOptions {
            drain,
            timeout: self.shared.config.terminate_timeout,
        };
        let results = futures::future::join_all(kernels.into_iter().map(|k| k.terminate(options))).await;
        let mut reports: Vec<TerminateReport> = results.into_iter().filter_map(|r| r.ok()).collect();
        reports.sort_by(|a, b| a.kernel.cmp(&b.kernel));
        tracing::info!(kernels = reports.len(), elapsed = ?start.elapsed(), "runtime shut down");
        ShutdownReport {
            kernels: reports,
            elapsed: start.elapsed(),
        }
    }

    /// Sends a message to a kernel's input, applying its backpressure strategy
    /// (`Block` waits for room, up to the kernel's `send_timeout` if set).
    pub async fn send<M: Message>(&self, id: &str, msg: M) -> Result<()> {
        input_port::<M>(self.kernel(id)?.as_ref())?.send(msg, None).await
    }

    /// Like [`send`](Self::send), waiting at most `timeout` for room.
    pub async fn send_timeout<M: Message>(&self, id: &str, msg: M, timeout: Duration) -> Result<()> {
        input_port::<M>(self.kernel(id)?.as_ref())?
            .send(msg, Some(timeout))
            .await
    }

    /// Like [`send`](Self::send), returning a [`Receipt`] that resolves once
    /// the handler is done with this message; see
    /// [`KernelHandle::send_tracked`].
    pub async fn send_tracked<M: Message>(&self, id: &str, msg: M) -> Result<Receipt> {
        input_port::<M>(self.kernel(id)?.as_ref())?
            .send_tracked(msg, None)
            .await
    }

    /// Sends without waiting: a full queue gives [`Error::QueueFull`] unless
    /// the kernel's strategy is `DropOldest`.
    pub fn try_send<M: Message>(&self, id: &str, msg: M) -> Result<()> {
        input_port::<M>(self.kernel(id)?.as_ref())?.try_send(msg)
    }

    /// Receives the next message from a kernel's output. When the kernel has
    /// ended, the messages it produced are still returned, then
    /// [`Error::KernelFailed`] or [`Error::KernelTerminated`].
    pub async fn receive<M: Message>(&self, id: &str) -> Result<M> {
        output_port::<M>(self.kernel(id)?.as_ref())?.receive(None).await
    }

    /// Like [`receive`](Self::receive), giving [`Error::QueueTimeout`] after `timeout`.
    pub async fn receive_timeout<M: Message>(&self, id: &str, timeout: Duration) -> Result<M> {
        output_port::<M>(self.kernel(id)?.as_ref())?
            .receive(Some(timeout))
            .await
    }

    /// Sends `request` and waits for the reply whose correlation id is the
    /// request's message id; other replies that arrive first are kept for
    /// later [`receive`](Self::receive) calls, in order.
    pub async fn call<Req: Message, Resp: Message>(&self, id: &str, request: Req) -> Result<Resp> {
        self.handle::<Req, Resp>(id)?.call(request).await
    }

    /// Like [`call`](Self::call), with one time limit for the whole exchange.
    pub async fn call_timeout<Req: Message, Resp: Message>(
        &self,
        id: &str,
        request: Req,
        timeout: Duration,
    ) -> Result<Resp> {
        self.handle::<Req, Resp>(id)?.call_timeout(request, timeout).await
    }

    /// A typed handle to one kernel, which skips the id lookup on every call.
    pub fn handle<In: Message, Out: Message>(&self, id: &str) -> Result<KernelHandle<In, Out>> {
        let kernel = self.kernel(id)?;
        Ok(KernelHandle {
            input: input_port::<In>(kernel.as_ref())?,
            output: output_port::<Out>(kernel.as_ref())?,
        })
    }

    /// Routes everything kernel `from` sends to the input of kernel `to`.
    /// The output type of `from` must be the input type of `to`.
    pub fn link(&self, from: &str, to: &str) -> Result<()> {
        let source = self.kernel(from)?;
        let target = self.kernel(to)?;
        source.link_to(target.as_ref())?;
        tracing::info!(from, to, "kernels linked");
        Ok(())
    }

    /// Routes kernel `id`'s output back to the host.
    pub fn unlink(&self, id: &str) -> Result<()> {
        self.kernel(id)?.unlink();
        Ok(())
    }

    /// The state of a kernel.
    pub fn kernel_state(&self, id: &str) -> Result<KernelState> {
        Ok(self.kernel(id)?.core().state())
    }

    /// The Rust type names of a kernel's input and output messages (as
    /// [`std::any::type_name`] gives them), for checking a route before any
    /// message is taken.
    pub fn message_types(&self, id: &str) -> Result<(&'static str, &'static str)> {
        let kernel = self.kernel(id)?;
        Ok((kernel.input_type(), kernel.output_type()))
    }

    /// The ids of the kernels in this runtime, sorted.
    pub fn kernel_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A snapshot of one kernel's telemetry.
    pub fn telemetry(&self, id: &str) -> Result<KernelTelemetry> {
        Ok(self.kernel(id)?.telemetry())
    }

    /// Telemetry of every kernel, with totals.
    pub fn summary(&self) -> RuntimeSummary {
        let kernels: Vec<KernelTelemetry> = self.shared.read().values().map(|k| k.telemetry()).collect();
        RuntimeSummary::new(kernels, self.shared.created.elapsed())
    }

    /// [`summary`](Self::summary) in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.summary().to_prometheus()
    }
}

/// A typed handle to one kernel's queues.
pub struct KernelHandle<In, Out> {
    input: Arc<InputPort<In>>,
    output: Arc<OutputPort<Out>>,
}

impl<In, Out> Clone for KernelHandle<In, Out> {
    fn clone(&self) -> Self {
        KernelHandle {
            input: self.input.clone(),
            output: self.output.clone(),
        }
    }
}

impl<In: Message, Out: Message> KernelHandle<In, Out> {
    /// The kernel's id.
    pub fn id(&self) -> &str {
        &self.input.core.id
    }

    /// The kernel's state.
    pub fn state(&self) -> KernelState {
        self.input.core.state()
    }

    /// See [`RingKernelRuntime::send`].
    pub async fn send(&self, msg: In) -> Result<()> {
        self.input.send(msg, None).await
    }

    /// See [`RingKernelRuntime::try_send`].
    pub fn try_send(&self, msg: In) -> Result<()> {
        self.input.try_send(msg)
    }

    /// Sends like [`send`](Self::send) and returns a [`Receipt`] that
    /// resolves once the handler is done with this message: `Ok` when the
    /// kernel counts it as processed, an error if the kernel ended or was
    /// terminated first. For bridges that acknowledge a message to an
    /// outside system only after it was handled (at-least-once delivery).
    /// At most one receipt waits per message id.
    ///
    /// ```
    /// use dotcompute::{Error, KernelConfig, KernelContext, Message, MessageHeader, RingKernelRuntime};
    ///
    /// #[derive(Debug, Message)]
    /// struct Job { n: u64, header: MessageHeader }
    ///
    /// async fn work(mut ctx: KernelContext<Job, Job>) -> Result<(), Error> {
    ///     loop {
    ///         let job = ctx.receive().await?;
    ///         ctx.send(job.reply(Job { n: job.n * 2, header: MessageHeader::new() })).await?;
    ///     }
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let rt = RingKernelRuntime::new();
    /// rt.launch_with("work", KernelConfig::default(), work).await.unwrap();
    /// rt.activate("work").await.unwrap();
    /// let handle = rt.handle::<Job, Job>("work").unwrap();
    /// let receipt = handle.send_tracked(Job { n: 21, header: MessageHeader::new() }).await.unwrap();
    /// assert_eq!(handle.receive().await.unwrap().n, 42);
    /// receipt.await.unwrap(); // handled
    /// rt.shutdown().await;
    /// # });
    /// ```
    pub async fn send_tracked(&self, msg: In) -> Result<Receipt> {
        self.input.send_tracked(msg, None).await
    }

    /// Counts `n` messages meant for this kernel that a transport outside
    /// the runtime evicted before they reached its input queue (for example
    /// a network stream's discard-oldest limit), in the kernel's
    /// `messages_dropped`, the same counter as its own queues' drops.
    pub fn record_transport_drops(&self, n: u64) {
        KernelMetrics::add(&self.input.core.metrics.transport_dropped, n);
    }

    /// See [`RingKernelRuntime::receive`].
    pub async fn receive(&self) -> Result<Out> {
        self.output.receive(None).await
    }

    /// See [`RingKernelRuntime::receive_timeout`].
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Out> {
        self.output.receive(Some(timeout)).await
    }

    /// Sends from a thread that is not running async code (it blocks that
    /// thread). For a `Spin` kernel this spins on the ring: the lowest-latency
    /// way to talk to it.
    pub fn send_blocking(&self, msg: In) -> Result<()> {
        self.input.send_blocking(msg)
    }

    /// Receives on a thread that is not running async code (it blocks that
    /// thread); see [`send_blocking`](Self::send_blocking).
    pub fn receive_blocking(&self) -> Result<Out> {
        self.output.receive_blocking(None)
    }

    /// Like [`receive_blocking`](Self::receive_blocking), giving
    /// [`Error::QueueTimeout`] after `timeout`.
    pub fn receive_blocking_timeout(&self, timeout: Duration) -> Result<Out> {
        self.output.receive_blocking(Some(timeout))
    }

    /// Sends a batch in order, waiting for room under `Block`. Cheaper per
    /// message than single sends (one lock and one wake-up per run of
    /// pushes on a `Spin` kernel's ring). On a refusal the messages not yet
    /// sent are dropped: the refused one is counted by the queue, the rest as
    /// discarded in telemetry, and the error says why.
    pub async fn send_batch(&self, msgs: Vec<In>) -> Result<()> {
        self.input.send_batch(msgs, None).await
    }

    /// [`send_batch`](Self::send_batch) from a plain (non-async) thread.
    pub fn send_batch_blocking(&self, msgs: Vec<In>) -> Result<()> {
        self.input.send_batch_blocking(msgs)
    }

    /// Waits for one reply, then takes up to `max - 1` more that are already
    /// there; returns how many were appended to `out`.
    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Out>) -> Result<usize> {
        self.output.receive_batch(max, out, None).await
    }

    /// [`receive_batch`](Self::receive_batch) on a plain (non-async) thread.
    pub fn receive_batch_blocking(&self, max: usize, out: &mut Vec<Out>) -> Result<usize> {
        self.output.receive_batch_blocking(max, out, None)
    }

    /// See [`RingKernelRuntime::call`].
    pub async fn call(&self, request: In) -> Result<Out> {
        let claim = self.output.claim(request.message_id());
        self.input.send(request, None).await?;
        self.output.receive_reply(claim, None).await
    }

    /// See [`RingKernelRuntime::call_timeout`].
    pub async fn call_timeout(&self, request: In, timeout: Duration) -> Result<Out> {
        let claim = self.output.claim(request.message_id());
        let deadline = Instant::now() + timeout;
        self.input.send(request, Some(timeout)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        self.output.receive_reply(claim, Some(left)).await
    }
}
