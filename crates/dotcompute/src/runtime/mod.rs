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
//! On a hot path, resolve a kernel once with [`RingKernelRuntime::handle`]
//! and use the [`KernelHandle`]; the id-based methods of the runtime look the
//! kernel up on every call. Every send hands a refused message back
//! ([`SendError`]).
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
//!     rt.launch_with("sum", KernelConfig::default(), sum)?;
//!     rt.activate("sum")?;
//!     let sum = rt.handle::<Req, Resp>("sum")?; // resolved once, for the hot path
//!     let mut total = 0.0;
//!     for i in 0..100 {
//!         let resp = sum.call(Req { values: vec![i as f64, 1.0], header: MessageHeader::new() }).await?;
//!         total += resp.sum;
//!     }
//!     Ok::<f64, Error>(total)
//! })
//! .await
//! .unwrap();
//! assert_eq!(total, 5050.0);
//! # });
//! ```

pub(crate) mod assist;
mod call;
pub mod config;
pub mod context;
pub(crate) mod core;
mod handle;
pub(crate) mod input;
pub(crate) mod kernel;
pub(crate) mod output;
pub(crate) mod park;
pub mod receipt;
pub mod registry;
pub(crate) mod replies;
pub(crate) mod ring_channel;
pub mod spec;
pub mod state;
pub(crate) mod supervisor;
pub mod telemetry;
pub(crate) mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{CallError, Error, Result, SendError};
use crate::message::Message;
use config::{KernelConfig, RuntimeConfig};
use context::KernelContext;
pub use handle::KernelHandle;
use input::InputPort;
use kernel::ErasedKernel;
use output::OutputPort;
use spec::{IntoKernelResult, KernelSpec};
use state::KernelState;
pub use supervisor::{TerminateOptions, TerminateReport};
use telemetry::{KernelTelemetry, RuntimeSummary};

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
/// For hot paths, resolve a kernel once with [`handle`](Self::handle) and
/// talk to it through the [`KernelHandle`]: the id-based methods here look
/// the kernel up and check the message type on every call.
///
/// Only [`activate`](Self::activate) of an async kernel needs a tokio
/// runtime (its task is spawned there). Thread and Spin kernels can be
/// launched, activated, driven (the `*_blocking` methods of
/// [`KernelHandle`]) and shut down ([`shutdown_blocking`](Self::shutdown_blocking))
/// from a program made only of plain threads; the async methods work on any
/// executor.
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
    ///
    /// Launching never waits, so it is not `async`.
    pub fn launch(&self, id: &str) -> Result<()> {
        let spec = registry::lookup(id)?;
        self.launch_spec(spec)
    }

    /// Launches a kernel from a spec: its queues exist afterwards, its handler
    /// does not run until [`activate`](Self::activate).
    pub fn launch_spec(&self, spec: KernelSpec) -> Result<()> {
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
    pub fn launch_with<In, Out, F, Fut, R>(&self, id: &str, config: KernelConfig, handler: F) -> Result<()>
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
        self.launch_spec(spec)
    }

    /// Starts the handler of a launched kernel: an async handler as a task on
    /// the current tokio runtime (so it must be called from within one), a
    /// blocking handler (Thread, Spin, Process and Gpu modes) on its own
    /// thread (callable from anywhere). It never waits, so it is not `async`.
    pub fn activate(&self, id: &str) -> Result<()> {
        self.kernel(id)?.activate()
    }

    /// Pauses delivery: the handler gets no message until
    /// [`reactivate`](Self::reactivate); messages sent meanwhile stay queued.
    /// It never waits, so it is not `async`.
    pub fn deactivate(&self, id: &str) -> Result<()> {
        self.kernel(id)?.deactivate()
    }

    /// Resumes delivery after [`deactivate`](Self::deactivate).
    pub fn reactivate(&self, id: &str) -> Result<()> {
        self.kernel(id)?.reactivate()
    }

    /// Terminates a kernel at once (queued input is discarded and counted)
    /// and removes it from the runtime, freeing its id. It is `async`
    /// because it waits (up to the terminate timeout) for the handler to
    /// return.
    ///
    /// A handler that does not return in time is stopped by force: an async
    /// handler's task is aborted at its next await point. A handler that
    /// reaches no await point (an endless or long computation in an async
    /// handler), or a thread handler that never comes back to its context,
    /// cannot be stopped from outside: terminate then returns after the
    /// timeout and a short grace anyway, reports it `abandoned`, and the
    /// kernel is `Failed` with a [`HandlerAbandoned`](crate::error::HandlerAbandoned)
    /// failure; the handler's resources are released when it returns. On a
    /// *current-thread* tokio runtime such a handler also holds the only
    /// thread, so nothing else on that runtime runs — terminate included —
    /// until it yields: run CPU-bound handlers in
    /// [`ExecutionMode::Thread`](crate::ExecutionMode::Thread), or call
    /// [`terminate_blocking`](Self::terminate_blocking) from another thread.
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

    /// Terminates a kernel with options (for example draining its input
    /// first); see [`terminate`](Self::terminate).
    pub async fn terminate_with(&self, id: &str, options: TerminateOptions) -> Result<TerminateReport> {
        let kernel = self.kernel(id)?;
        let report = kernel.clone().terminate(options).await?;
        let mut table = self.shared.write();
        if table.get(id).is_some_and(|k| Arc::ptr_eq(k, &kernel)) {
            table.remove(id);
        }
        Ok(report)
    }

    /// [`terminate`](Self::terminate) from a plain thread (blocks it; needs
    /// no async runtime).
    pub fn terminate_blocking(&self, id: &str) -> Result<TerminateReport> {
        park::block_on(self.terminate(id))
    }

    /// Terminates every kernel concurrently and refuses later launches. It is
    /// `async` because it waits for the handlers (each up to the terminate
    /// timeout, all at once; see [`terminate`](Self::terminate) for a handler
    /// that does not stop).
    pub async fn shutdown(&self) -> ShutdownReport {
        self.shutdown_with(false).await
    }

    /// [`shutdown`](Self::shutdown) from a plain thread (blocks it; needs no
    /// async runtime).
    pub fn shutdown_blocking(&self) -> ShutdownReport {
        park::block_on(self.shutdown())
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

    /// The input port of kernel `id` for `M`; a failed lookup hands `msg` back.
    fn input_for<M: Message>(&self, id: &str, msg: M) -> std::result::Result<(Arc<InputPort<M>>, M), SendError<M>> {
        match self.kernel(id).and_then(|k| input_port::<M>(k.as_ref())) {
            Ok(port) => Ok((port, msg)),
            Err(e) => Err(SendError::new(msg, e)),
        }
    }

    /// Sends a message to a kernel's input, applying its backpressure strategy
    /// (`Block` waits for room, up to the kernel's `send_timeout` if set).
    /// A refused message comes back in the error, whatever the reason (a full
    /// queue, a timeout, a kernel that is not active or has ended, an unknown
    /// id, another message type).
    pub async fn send<M: Message>(&self, id: &str, msg: M) -> std::result::Result<(), SendError<M>> {
        let (port, msg) = self.input_for(id, msg)?;
        port.send(msg, None, None).await
    }

    /// Like [`send`](Self::send), waiting at most `timeout` for room.
    pub async fn send_timeout<M: Message>(
        &self,
        id: &str,
        msg: M,
        timeout: Duration,
    ) -> std::result::Result<(), SendError<M>> {
        let (port, msg) = self.input_for(id, msg)?;
        port.send(msg, Some(timeout), None).await
    }

    /// Like [`send`](Self::send), returning a [`Receipt`](receipt::Receipt)
    /// that resolves once the handler is done with this message; see
    /// [`KernelHandle::send_tracked`].
    pub async fn send_tracked<M: Message>(
        &self,
        id: &str,
        msg: M,
    ) -> std::result::Result<receipt::Receipt, SendError<M>> {
        let (port, msg) = self.input_for(id, msg)?;
        port.send_tracked(msg, None).await
    }

    /// Sends without waiting: a full queue refuses with [`Error::QueueFull`]
    /// unless the kernel's strategy is `DropOldest`.
    pub fn try_send<M: Message>(&self, id: &str, msg: M) -> std::result::Result<(), SendError<M>> {
        let (port, msg) = self.input_for(id, msg)?;
        port.try_send(msg)
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
    /// request's message id (see [`KernelHandle::call`]): other outputs stay
    /// in the output queue for later [`receive`](Self::receive) calls, in
    /// order. A request that was never sent comes back in the error.
    pub async fn call<Req: Message, Resp: Message>(
        &self,
        id: &str,
        request: Req,
    ) -> std::result::Result<Resp, CallError<Req>> {
        match self.handle::<Req, Resp>(id) {
            Ok(handle) => handle.call(request).await,
            Err(e) => Err(SendError::new(request, e).into()),
        }
    }

    /// Like [`call`](Self::call), with one time limit for the whole exchange.
    pub async fn call_timeout<Req: Message, Resp: Message>(
        &self,
        id: &str,
        request: Req,
        timeout: Duration,
    ) -> std::result::Result<Resp, CallError<Req>> {
        match self.handle::<Req, Resp>(id) {
            Ok(handle) => handle.call_timeout(request, timeout).await,
            Err(e) => Err(SendError::new(request, e).into()),
        }
    }

    /// A typed handle to one kernel: the id lookup and type check happen
    /// here, once, instead of on every call. The way to talk to a kernel on
    /// a hot path.
    pub fn handle<In: Message, Out: Message>(&self, id: &str) -> Result<KernelHandle<In, Out>> {
        let kernel = self.kernel(id)?;
        Ok(KernelHandle::new(
            input_port::<In>(kernel.as_ref())?,
            output_port::<Out>(kernel.as_ref())?,
        ))
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
