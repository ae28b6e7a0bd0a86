//! The handler's view of its kernel.
//!
//! Invariant: every delivery and every send made through a context is counted
//! in the kernel's telemetry by this module, and a handler blocked in
//! [`KernelContext::receive`] or [`KernelContext::send`] wakes as soon as its
//! kernel is terminated, with [`Error::Terminating`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::message::Message;
use crate::queue::{RecvError, SendError};
use crate::runtime;
use crate::runtime::kernel::{handler_send_error, output_waits, own_recv_error, InputPort, KernelCore, OutputPort};
use crate::runtime::state::KernelState;
use crate::runtime::telemetry::{KernelMetrics, KernelTelemetry};
use crate::runtime::transport::{Interrupted, Transport};

/// What a running handler uses to receive `In` and send `Out`.
///
/// A typical handler loops until its kernel is terminated; `?` on
/// [`Error::Terminating`] ends the handler cleanly:
///
/// ```
/// use dotcompute::{KernelContext, Message, MessageHeader, Error};
///
/// #[derive(Debug, Message)]
/// struct Text { s: String, header: MessageHeader }
///
/// async fn shout(mut ctx: KernelContext<Text, Text>) -> Result<(), Error> {
///     loop {
///         let msg = ctx.receive().await?;
///         let reply = msg.reply(Text { s: msg.s.to_uppercase(), header: MessageHeader::new() });
///         ctx.send(reply).await?;
///     }
/// }
/// # let _ = shout;
/// ```
pub struct KernelContext<In, Out> {
    core: Arc<KernelCore>,
    input: Arc<InputPort<In>>,
    output: Arc<OutputPort<Out>>,
    route: (u64, Option<Arc<InputPort<Out>>>),
    /// When the messages being handled were delivered, and how many.
    in_flight: Option<(Instant, u64)>,
    /// Ids of the messages being handled, kept only while receipts wait.
    tracked: Vec<uuid::Uuid>,
}

impl<In: Message, Out: Message> KernelContext<In, Out> {
    pub(crate) fn new(core: Arc<KernelCore>, input: Arc<InputPort<In>>, output: Arc<OutputPort<Out>>) -> Self {
        KernelContext {
            core,
            input,
            output,
            route: (u64::MAX, None),
            in_flight: None,
            tracked: Vec::new(),
        }
    }

    /// The kernel's id.
    pub fn kernel_id(&self) -> &str {
        &self.core.id
    }

    /// True once the kernel is being terminated (or its input is closed and empty).
    pub fn should_terminate(&self) -> bool {
        self.core.cancel.is_cancelled() || (self.input.queue.is_closed() && self.input.queue.is_empty())
    }

    /// True while the kernel is active (not deactivated).
    pub fn is_active(&self) -> bool {
        self.core.state() == KernelState::Active
    }

    /// A snapshot of this kernel's telemetry.
    pub fn telemetry(&self) -> KernelTelemetry {
        self.core.metrics.snapshot(
            &self.core.id,
            self.core.state(),
            self.input.queue.stats(),
            self.output.queue.stats(),
            &self.input.queue.wait_histogram(),
        )
    }

    fn finish_in_flight(&mut self) {
        if let Some((start, count)) = self.in_flight.take() {
            self.core.metrics.record_handled(start.elapsed(), count);
            self.core.receipts.processed(&mut self.tracked);
        }
    }

    fn deliver(&mut self, msg: In) -> In {
        KernelMetrics::add(&self.core.metrics.received, 1);
        self.in_flight = Some((Instant::now(), 1));
        if self.core.receipts.active() {
            self.tracked.push(msg.message_id());
        }
        msg
    }

    /// Waits for the next message. While the kernel is deactivated this waits
    /// (messages stay queued); once the kernel is terminated it returns
    /// [`Error::Terminating`] at once.
    pub async fn receive(&mut self) -> Result<In> {
        self.finish_in_flight();
        if self.core.cancel.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        // A kernel with a backlog never waits below; spending tokio's
        // cooperative budget first makes it yield now and then, so other tasks
        // on its worker (the host's calls, other kernels) run. It comes before
        // the pop, so a receive dropped at this point loses nothing.
        tokio::task::consume_budget().await;
        match self.input.queue.try_recv() {
            Ok(m) => return Ok(self.deliver(m)),
            Err(e) => {
                if let Some(err) = own_recv_error(&self.core, e) {
                    return Err(err);
                }
            }
        }
        let r = tokio::select! {
            biased;
            () = self.core.cancel.cancelled() => return Err(self.core.terminating_error()),
            r = self.input.queue.recv() => r,
        };
        match r {
            Ok(m) => Ok(self.deliver(m)),
            Err(_) => Err(self.core.terminating_error()),
        }
    }

    /// Like [`receive`](Self::receive), but gives `Ok(None)` if no message
    /// came within `timeout`.
    pub async fn receive_timeout(&mut self, timeout: Duration) -> Result<Option<In>> {
        self.finish_in_flight();
        if self.core.cancel.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        let r = tokio::select! {
            biased;
            () = self.core.cancel.cancelled() => return Err(self.core.terminating_error()),
            r = self.input.queue.recv_timeout(timeout) => r,
        };
        match r {
            Ok(m) => Ok(Some(self.deliver(m))),
            Err(RecvError::Timeout | RecvError::Empty) => Ok(None),
            Err(RecvError::Closed) => Err(self.core.terminating_error()),
        }
    }

    /// Waits for one message, then takes up to `max - 1` more that are
    /// already queued; returns how many were appended to `out`. The batch is
    /// timed and counted as handled when the handler next asks for input.
    pub async fn receive_batch(&mut self, max: usize, out: &mut Vec<In>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive().await?);
        Ok(1 + self.take_more(max - 1, out))
    }

    fn take_more(&mut self, max: usize, out: &mut Vec<In>) -> usize {
        let n = self.input.queue.try_recv_batch(max, out);
        KernelMetrics::add(&self.core.metrics.received, n as u64);
        if self.core.receipts.active() {
            let taken = out.len().saturating_sub(n);
            self.tracked.extend(out[taken..].iter().map(Message::message_id));
        }
        if let Some((_, count)) = self.in_flight.as_mut() {
            *count += n as u64;
        }
        n
    }

    /// Sends a batch to the output (or linked kernel) in order. On a refusal
    /// the messages not yet sent are dropped (the refused one is counted by
    /// the queue, the rest as discarded) and the error says why.
    pub async fn send_batch(&mut self, msgs: Vec<Out>) -> Result<()> {
        self.refresh_route();
        let n = msgs.len() as u64;
        match self.route.1.clone() {
            Some(target) => tokio::select! {
                biased;
                () = self.core.cancel.cancelled() => {
                    KernelMetrics::add(&self.core.metrics.discarded, n);
                    return Err(self.core.terminating_error());
                }
                r = target.send_batch(msgs, None) => r?,
            },
            None => {
                let queue = &self.output.queue;
                let sent = tokio::select! {
                    biased;
                    () = self.core.cancel.cancelled() => {
                        KernelMetrics::add(&self.core.metrics.discarded, n);
                        return Err(self.core.terminating_error());
                    }
                    r = queue.send_batch(msgs, None) => r,
                };
                sent.map_err(|(e, unsent)| {
                    KernelMetrics::add(&self.core.metrics.discarded, unsent.saturating_sub(1) as u64);
                    handler_send_error(&self.core, e, queue.capacity())
                })?;
            }
        }
        KernelMetrics::add(&self.core.metrics.sent, n);
        Ok(())
    }

    /// Takes a message if one is ready; never waits.
    pub fn try_receive(&mut self) -> Result<Option<In>> {
        self.finish_in_flight();
        if self.core.cancel.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        match self.input.queue.try_recv() {
            Ok(m) => Ok(Some(self.deliver(m))),
            Err(e) => own_recv_error(&self.core, e).map_or(Ok(None), Err),
        }
    }

    fn refresh_route(&mut self) {
        let version = self.output.route_version.load(std::sync::atomic::Ordering::Acquire);
        if version != self.route.0 {
            self.route = (version, self.output.route());
        }
    }

    /// Sends a message to the kernel's output: the host's receive queue, or
    /// the input of the kernel it is linked to. With the `Block` output
    /// strategy this waits for room (and wakes on terminate).
    pub async fn send(&mut self, msg: Out) -> Result<()> {
        self.refresh_route();
        if let Some(target) = self.route.1.clone() {
            tokio::select! {
                biased;
                () = self.core.cancel.cancelled() => {
                    KernelMetrics::add(&self.core.metrics.discarded, 1);
                    return Err(self.core.terminating_error());
                }
                r = target.send(msg, None) => r?,
            }
        } else {
            let queue = &self.output.queue;
            match queue.try_send(msg) {
                Ok(()) => {}
                Err(SendError::Full(m)) if output_waits(&self.core.config) => {
                    let r = tokio::select! {
                        biased;
                        () = self.core.cancel.cancelled() => {
                            KernelMetrics::add(&self.core.metrics.discarded, 1);
                            return Err(self.core.terminating_error());
                        }
                        r = queue.send(m) => r,
                    };
                    r.map_err(|e| handler_send_error(&self.core, e, queue.capacity()))?;
                }
                Err(e) => return Err(handler_send_error(&self.core, e, queue.capacity())),
            }
        }
        KernelMetrics::add(&self.core.metrics.sent, 1);
        Ok(())
    }

    /// Blocking receive for thread-bound handlers: spins on a ring input,
    /// parks the thread on a queue input. `Ok(None)` when `deadline` passed.
    fn receive_blocking(&mut self, deadline: Option<Instant>) -> Result<Option<In>> {
        self.finish_in_flight();
        let input = self.input.clone();
        match &input.queue {
            Transport::Ring(ring) => match ring.recv_spin(&self.core.cancel, deadline) {
                Ok(Some(m)) => Ok(Some(self.deliver(m))),
                Ok(None) => Ok(None),
                Err(_) => Err(self.core.terminating_error()),
            },
            Transport::Queue(_) => match deadline {
                None => crate::runtime::park::block_on(self.receive()).map(Some),
                Some(d) => {
                    crate::runtime::park::block_on(self.receive_timeout(d.saturating_duration_since(Instant::now())))
                }
            },
        }
    }

    /// Blocking send for thread-bound handlers: spins on a ring output.
    fn send_blocking(&mut self, msg: Out) -> Result<()> {
        self.refresh_route();
        if self.route.1.is_none() {
            if let Transport::Ring(ring) = &self.output.queue {
                return match ring.send_spin(msg, &self.core.cancel) {
                    Ok(()) => {
                        KernelMetrics::add(&self.core.metrics.sent, 1);
                        Ok(())
                    }
                    Err((Interrupted::Full, _)) => Err(Error::QueueFull {
                        kernel: self.core.id.to_string(),
                        queue: "output",
                        capacity: self.output.queue.capacity(),
                    }),
                    Err((Interrupted::Cancelled, _)) => {
                        KernelMetrics::add(&self.core.metrics.discarded, 1);
                        Err(self.core.terminating_error())
                    }
                    Err((Interrupted::Closed, _)) => Err(self.core.terminating_error()),
                };
            }
        }
        crate::runtime::park::block_on(self.send(msg))
    }

    /// Blocking batch send for thread-bound handlers: spins on a ring output.
    fn send_batch_blocking(&mut self, msgs: Vec<Out>) -> Result<()> {
        self.refresh_route();
        if self.route.1.is_none() {
            if let Transport::Ring(ring) = &self.output.queue {
                let n = msgs.len() as u64;
                return match ring.send_batch_spin(msgs.into(), &self.core.cancel) {
                    Ok(()) => {
                        KernelMetrics::add(&self.core.metrics.sent, n);
                        Ok(())
                    }
                    Err((why, unsent)) => {
                        KernelMetrics::add(&self.core.metrics.discarded, unsent.saturating_sub(1) as u64);
                        Err(match why {
                            Interrupted::Full => Error::QueueFull {
                                kernel: self.core.id.to_string(),
                                queue: "output",
                                capacity: self.output.queue.capacity(),
                            },
                            Interrupted::Cancelled | Interrupted::Closed => self.core.terminating_error(),
                        })
                    }
                };
            }
        }
        crate::runtime::park::block_on(self.send_batch(msgs))
    }

    /// Sends a message straight to another kernel's input, without a host hop.
    /// The message type must be that kernel's input type.
    pub async fn send_to<M: Message>(&self, kernel_id: &str, msg: M) -> Result<()> {
        let runtime = self.core.runtime.upgrade().ok_or(Error::ShutDown)?;
        let target = runtime.kernel(kernel_id)?;
        let port = runtime::input_port::<M>(target.as_ref())?;
        tokio::select! {
            biased;
            () = self.core.cancel.cancelled() => {
                KernelMetrics::add(&self.core.metrics.discarded, 1);
                return Err(self.core.terminating_error());
            }
            r = port.send(msg, None) => r?,
        }
        KernelMetrics::add(&self.core.metrics.sent, 1);
        Ok(())
    }
}

impl<In, Out> Drop for KernelContext<In, Out> {
    fn drop(&mut self) {
        if let Some((start, count)) = self.in_flight.take() {
            self.core.metrics.record_handled(start.elapsed(), count);
            // A handler stopped by terminate may not have finished its
            // message: its receipt fails with the kernel instead.
            if !self.core.cancel.is_cancelled() {
                self.core.receipts.processed(&mut self.tracked);
            }
        }
    }
}

/// The handler's view of its kernel in [`ExecutionMode::Thread`](crate::runtime::config::ExecutionMode::Thread):
/// the same operations as [`KernelContext`], as blocking calls. They park the
/// kernel's own thread while they wait and wake at once on terminate.
///
/// ```
/// use dotcompute::{BlockingContext, KernelSpec, Message, MessageHeader, Error};
///
/// #[derive(Debug, Message)]
/// struct Job { n: u64, header: MessageHeader }
///
/// let spec = KernelSpec::builder::<Job, Job>("cruncher")
///     .blocking_handler(|mut ctx: BlockingContext<Job, Job>| -> Result<(), Error> {
///         loop {
///             let job = ctx.receive()?;
///             let n = (0..job.n).sum(); // CPU-heavy work, off the async workers
///             ctx.send(job.reply(Job { n, header: MessageHeader::new() }))?;
///         }
///     })
///     .build()
///     .unwrap();
/// assert_eq!(spec.config().mode, dotcompute::ExecutionMode::Thread);
/// ```
pub struct BlockingContext<In, Out> {
    inner: KernelContext<In, Out>,
}

impl<In: Message, Out: Message> BlockingContext<In, Out> {
    pub(crate) fn new(inner: KernelContext<In, Out>) -> Self {
        BlockingContext { inner }
    }

    /// The kernel's id.
    pub fn kernel_id(&self) -> &str {
        self.inner.kernel_id()
    }

    /// See [`KernelContext::should_terminate`].
    pub fn should_terminate(&self) -> bool {
        self.inner.should_terminate()
    }

    /// See [`KernelContext::is_active`].
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// See [`KernelContext::telemetry`].
    pub fn telemetry(&self) -> KernelTelemetry {
        self.inner.telemetry()
    }

    /// Blocks until the next message; [`Error::Terminating`] on terminate.
    pub fn receive(&mut self) -> Result<In> {
        loop {
            if let Some(m) = self.inner.receive_blocking(None)? {
                return Ok(m);
            }
        }
    }

    /// Blocks at most `timeout`; `Ok(None)` if no message came.
    pub fn receive_timeout(&mut self, timeout: Duration) -> Result<Option<In>> {
        let deadline = Instant::now().checked_add(timeout);
        self.inner.receive_blocking(deadline)
    }

    /// Takes a message if one is ready; never blocks.
    pub fn try_receive(&mut self) -> Result<Option<In>> {
        self.inner.try_receive()
    }

    /// Sends to the kernel's output (or linked kernel), blocking for room.
    pub fn send(&mut self, msg: Out) -> Result<()> {
        self.inner.send_blocking(msg)
    }

    /// Blocks for one message, then takes up to `max - 1` more that are
    /// already queued; returns how many were appended to `out`.
    pub fn receive_batch(&mut self, max: usize, out: &mut Vec<In>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive()?);
        Ok(1 + self.inner.take_more(max - 1, out))
    }

    /// Sends a batch in order, blocking for room (spinning on a ring).
    pub fn send_batch(&mut self, msgs: Vec<Out>) -> Result<()> {
        self.inner.send_batch_blocking(msgs)
    }

    /// Sends straight to another kernel's input, blocking for room.
    pub fn send_to<M: Message>(&self, kernel_id: &str, msg: M) -> Result<()> {
        crate::runtime::park::block_on(self.inner.send_to(kernel_id, msg))
    }
}
