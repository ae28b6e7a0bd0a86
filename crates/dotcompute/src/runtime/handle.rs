//! [`KernelHandle`]: a typed handle to one kernel's queues, resolved once,
//! for hot paths (no id lookup or type check per call).
//!
//! Invariant: a handle holds the kernel's ports themselves, so every
//! operation through it applies the same lifecycle checks, strategies and
//! telemetry as the runtime's id-based methods; a refused send hands its
//! message back, and after the kernel ends every operation reports why.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::error::{CallError, Result, SendError};
use crate::message::Message;
use crate::runtime::call::Call;
use crate::runtime::input::InputPort;
use crate::runtime::output::OutputPort;
use crate::runtime::receipt::Receipt;
use crate::runtime::state::KernelState;
use crate::runtime::telemetry::KernelTelemetry;

/// A typed handle to one kernel's queues: the way to talk to a kernel on a
/// hot path. [`RingKernelRuntime::handle`](crate::RingKernelRuntime::handle)
/// resolves the id and checks the message types once; every call through
/// the handle then goes straight to the kernel's queues.
///
/// Every send hands a refused message back inside a [`SendError`] (batches:
/// the messages not sent); every wait has a bounded form (`*_timeout`); every
/// operation has a form for plain threads (`*_blocking`), which needs no
/// async runtime. Cheap to clone.
///
/// ```
/// use dotcompute::{Error, KernelConfig, KernelContext, Message, MessageHeader, RingKernelRuntime};
///
/// #[derive(Debug, Message)]
/// struct Req { x: u64, header: MessageHeader }
/// #[derive(Debug, Message)]
/// struct Resp { y: u64, header: MessageHeader }
///
/// async fn double(mut ctx: KernelContext<Req, Resp>) -> Result<(), Error> {
///     loop {
///         let req = ctx.receive().await?;
///         ctx.send(req.reply(Resp { y: 2 * req.x, header: MessageHeader::new() })).await?;
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = RingKernelRuntime::new();
/// rt.launch_with("double", KernelConfig::default(), double)?;
/// rt.activate("double")?;
/// let double = rt.handle::<Req, Resp>("double")?; // resolved once
/// for x in 0..100 {
///     double.send(Req { x, header: MessageHeader::new() }).await?;
///     assert_eq!(double.receive().await?.y, 2 * x);
/// }
/// let resp = double.call(Req { x: 21, header: MessageHeader::new() }).await?;
/// assert_eq!(resp.y, 42);
/// rt.shutdown().await;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
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
    pub(crate) fn new(input: Arc<InputPort<In>>, output: Arc<OutputPort<Out>>) -> Self {
        KernelHandle { input, output }
    }

    /// The kernel's id.
    pub fn id(&self) -> &str {
        &self.input.core.id
    }

    /// The kernel's state.
    pub fn state(&self) -> KernelState {
        self.input.core.state()
    }

    /// A snapshot of the kernel's telemetry.
    pub fn telemetry(&self) -> KernelTelemetry {
        let core = &self.input.core;
        core.metrics.snapshot(
            &core.id,
            core.state(),
            self.input.queue.stats(),
            self.output.queue.stats(),
            &self.input.queue.wait_histogram(),
        )
    }

    /// Sends `msg` to the kernel's input, applying its backpressure strategy
    /// (`Block` waits for room, up to the kernel's `send_timeout` if set). A
    /// refused message comes back in the error.
    ///
    /// Like Tokio's own channels, each send spends one unit of the task's
    /// cooperative budget, so a task that sends in a loop yields now and
    /// then even when there is always room. As with any future that owns
    /// its value, dropping the send before it completes drops the message
    /// with it (it was not queued and is not counted).
    pub fn send(&self, msg: In) -> impl Future<Output = Result<(), SendError<In>>> + Send + '_ {
        // The port's future itself: no extra layer on the hot path.
        self.input.send(msg, None, None)
    }

    /// Like [`send`](Self::send), waiting at most `timeout` for room.
    pub async fn send_timeout(&self, msg: In, timeout: Duration) -> Result<(), SendError<In>> {
        self.input.send(msg, Some(timeout), None).await
    }

    /// Sends without waiting: a full queue refuses with
    /// [`Error::QueueFull`](crate::Error::QueueFull) unless the kernel's
    /// strategy is `DropOldest`.
    pub fn try_send(&self, msg: In) -> Result<(), SendError<In>> {
        self.input.try_send(msg)
    }

    /// Sends like [`send`](Self::send) and returns a [`Receipt`] that
    /// resolves once the handler is done with this message: `Ok` when the
    /// kernel counts it as processed, an error if the kernel ended or was
    /// terminated first. For bridges that acknowledge a message to an
    /// outside system only after it was handled (at-least-once delivery).
    /// At most one receipt waits per message id; a refused message comes
    /// back in the error.
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
    /// rt.launch_with("work", KernelConfig::default(), work).unwrap();
    /// rt.activate("work").unwrap();
    /// let handle = rt.handle::<Job, Job>("work").unwrap();
    /// let receipt = handle.send_tracked(Job { n: 21, header: MessageHeader::new() }).await.unwrap();
    /// assert_eq!(handle.receive().await.unwrap().n, 42);
    /// receipt.await.unwrap(); // handled
    /// rt.shutdown().await;
    /// # });
    /// ```
    pub async fn send_tracked(&self, msg: In) -> Result<Receipt, SendError<In>> {
        self.input.send_tracked(msg, None).await
    }

    /// Counts `n` messages meant for this kernel that a transport outside
    /// the runtime evicted before they reached its input queue (for example
    /// a network stream's discard-oldest limit), in the kernel's
    /// `messages_dropped`, the same counter as its own queues' drops.
    pub fn record_transport_drops(&self, n: u64) {
        crate::runtime::telemetry::KernelMetrics::add(&self.input.core.metrics.transport_dropped, n);
    }

    /// [`send`](Self::send) from a thread that is not running async code (it
    /// blocks that thread, and needs no async runtime). For a `Spin` kernel
    /// this spins on the ring: the lowest-latency way to talk to it. For a
    /// `Process` kernel the calling thread also writes the message to the
    /// kernel process's ring itself when the kernel's relay is free, and
    /// [`receive_blocking`](Self::receive_blocking) /
    /// [`call_blocking`](Self::call_blocking) read the reply from it, so a
    /// round trip skips the kernel's relay thread (counts and order as
    /// through it). Honours the kernel's `send_timeout` in every mode.
    pub fn send_blocking(&self, msg: In) -> Result<(), SendError<In>> {
        self.input.send_blocking(msg, None, None)
    }

    /// [`send_blocking`](Self::send_blocking), waiting at most `timeout`.
    pub fn send_blocking_timeout(&self, msg: In, timeout: Duration) -> Result<(), SendError<In>> {
        self.input.send_blocking(msg, Some(timeout), None)
    }

    /// Sends a batch in order, waiting for room under `Block` (up to the
    /// kernel's `send_timeout` if set). Cheaper per message than single
    /// sends (one lock and one wake-up per run of pushes). On a refusal the
    /// messages not sent come back in the error, in order, the refused one
    /// first.
    pub async fn send_batch(&self, msgs: Vec<In>) -> Result<(), SendError<Vec<In>>> {
        self.input.send_batch(msgs, None, None).await
    }

    /// [`send_batch`](Self::send_batch), waiting at most `timeout` in all.
    pub async fn send_batch_timeout(&self, msgs: Vec<In>, timeout: Duration) -> Result<(), SendError<Vec<In>>> {
        self.input.send_batch(msgs, Some(timeout), None).await
    }

    /// [`send_batch`](Self::send_batch) from a plain (non-async) thread.
    pub fn send_batch_blocking(&self, msgs: Vec<In>) -> Result<(), SendError<Vec<In>>> {
        self.input.send_batch_blocking(msgs, None, None)
    }

    /// [`send_batch_blocking`](Self::send_batch_blocking), waiting at most
    /// `timeout` in all.
    pub fn send_batch_blocking_timeout(&self, msgs: Vec<In>, timeout: Duration) -> Result<(), SendError<Vec<In>>> {
        self.input.send_batch_blocking(msgs, Some(timeout), None)
    }

    /// Receives the next message from the kernel's output. When the kernel
    /// has ended, the messages it produced are still returned, then
    /// [`Error::KernelFailed`](crate::Error::KernelFailed) or
    /// [`Error::KernelTerminated`](crate::Error::KernelTerminated).
    pub fn receive(&self) -> impl Future<Output = Result<Out>> + Send + '_ {
        self.output.receive(None)
    }

    /// Like [`receive`](Self::receive), giving
    /// [`Error::QueueTimeout`](crate::Error::QueueTimeout) after `timeout`.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Out> {
        self.output.receive(Some(timeout)).await
    }

    /// Receives on a thread that is not running async code (it blocks that
    /// thread); see [`send_blocking`](Self::send_blocking).
    pub fn receive_blocking(&self) -> Result<Out> {
        self.output.receive_blocking(None)
    }

    /// Like [`receive_blocking`](Self::receive_blocking), giving
    /// [`Error::QueueTimeout`](crate::Error::QueueTimeout) after `timeout`.
    pub fn receive_blocking_timeout(&self, timeout: Duration) -> Result<Out> {
        self.output.receive_blocking(Some(timeout))
    }

    /// Waits for one message, then takes up to `max - 1` more that are
    /// already there; returns how many were appended to `out`.
    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Out>) -> Result<usize> {
        self.output.receive_batch(max, out, None).await
    }

    /// [`receive_batch`](Self::receive_batch) on a plain (non-async) thread.
    pub fn receive_batch_blocking(&self, max: usize, out: &mut Vec<Out>) -> Result<usize> {
        self.output.receive_batch_blocking(max, out, None)
    }

    /// Sends `request` and waits for the reply whose correlation id is the
    /// request's message id. The reply goes straight from the handler's send
    /// to this call: other outputs stay in the output queue for
    /// [`receive`](Self::receive), in order, and the call holds none of them.
    /// A request that was never sent comes back in the error.
    pub fn call(&self, request: In) -> impl Future<Output = Result<Out, CallError<In>>> + '_ {
        Call::new(&self.input, &self.output, request)
    }

    /// Like [`call`](Self::call), with one time limit for the whole exchange
    /// (waiting for room to send, then for the reply). It returns on time
    /// whatever the kernel does meanwhile.
    pub async fn call_timeout(&self, request: In, timeout: Duration) -> Result<Out, CallError<In>> {
        self.call_until(request, Some(timeout)).await
    }

    /// [`call`](Self::call) from a plain (non-async) thread.
    pub fn call_blocking(&self, request: In) -> Result<Out, CallError<In>> {
        self.call_blocking_until(request, None)
    }

    /// [`call_timeout`](Self::call_timeout) from a plain (non-async) thread.
    pub fn call_blocking_timeout(&self, request: In, timeout: Duration) -> Result<Out, CallError<In>> {
        self.call_blocking_until(request, Some(timeout))
    }

    /// The blocking call: the send and the wait of `send_blocking` and
    /// `receive_blocking` (so a process kernel's host relays its own call).
    fn call_blocking_until(&self, request: In, timeout: Option<Duration>) -> Result<Out, CallError<In>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let pending = match self.output.expect_reply(request.message_id(), None) {
            Ok(pending) => pending,
            Err(e) => return Err(SendError::new(request, e).into()),
        };
        self.input.send_blocking(request, timeout, None)?;
        pending.wait_blocking(deadline, timeout).map_err(CallError::after_send)
    }

    async fn call_until(&self, request: In, timeout: Option<Duration>) -> Result<Out, CallError<In>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // Registered before the request is sent, so the reply cannot overtake
        // it, with this task's waker, so the first wait needs no lock.
        let id = request.message_id();
        let registered = std::future::poll_fn(|cx| Poll::Ready(self.output.expect_reply(id, Some(cx.waker())))).await;
        let pending = match registered {
            Ok(pending) => pending,
            Err(e) => return Err(SendError::new(request, e).into()),
        };
        self.input.send(request, timeout, None).await?;
        pending.wait(deadline, timeout).await.map_err(CallError::after_send)
    }
}
