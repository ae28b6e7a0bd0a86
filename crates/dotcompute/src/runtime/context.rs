//! The handler's view of its kernel.
//!
//! Invariant: every delivery and every send made through a context is counted
//! in the kernel's telemetry by this module, and a handler blocked in
//! [`KernelContext::receive`] or [`KernelContext::send`] wakes as soon as its
//! kernel is terminated, with [`Error::Terminating`].

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, SendError};
use crate::message::Message;
use crate::queue::clock::{self, Stamp};
use crate::queue::sampler::{self, Sampler};
use crate::queue::RecvError;
use crate::runtime;
use crate::runtime::core::KernelCore;
use crate::runtime::input::{own_recv_error, InputPort};
use crate::runtime::output::OutputPort;
use crate::runtime::state::KernelState;
use crate::runtime::telemetry::{ContextCounters, KernelMetrics, KernelTelemetry};
use crate::runtime::transport::Transport;

/// The messages a handler is working on: delivered together (one receive,
/// or a batch), handled until it next asks for input.
struct InFlight {
    /// When they were delivered, if any of them is measured (else 0).
    start: Stamp,
    count: u64,
    /// How many of them the sampler picked for measuring.
    measured: u64,
}

impl InFlight {
    /// Counts them as processed and records the handler time of the
    /// measured ones (each the mean time per message of the whole lot).
    #[inline]
    fn record(self, counters: &ContextCounters, metrics: &KernelMetrics) {
        counters.count_processed(self.count);
        if self.start != 0 {
            let ns = clock::ns_between(self.start, clock::now());
            metrics.record_handler_ns(ns / self.count.max(1), self.measured);
        }
    }
}

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
    /// The messages being handled.
    in_flight: Option<InFlight>,
    /// Which deliveries get their handler time measured.
    sampler: Sampler,
    /// This context's delivery counters (it is their only writer).
    counters: Arc<ContextCounters>,
    /// Ids of the messages being handled, kept only while receipts wait.
    tracked: Vec<uuid::Uuid>,
}

impl<In: Message, Out: Message> KernelContext<In, Out> {
    pub(crate) fn new(core: Arc<KernelCore>, input: Arc<InputPort<In>>, output: Arc<OutputPort<Out>>) -> Self {
        KernelContext {
            sampler: Sampler::new(core.config.latency_sample_every),
            counters: core.metrics.attach_context(),
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
        self.core.is_cancelled() || (self.input.queue.is_closed() && self.input.queue.is_empty())
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

    /// Ends the handling in flight: it is counted as processed and, if
    /// any of it was measured, its handler time recorded.
    #[inline(always)]
    fn finish_in_flight(&mut self) {
        if let Some(done) = self.in_flight.take() {
            done.record(&self.counters, &self.core.metrics);
            self.core.receipts.processed(&mut self.tracked);
        }
    }

    /// Notes that `msg` goes to the handler; starts its handler time if it
    /// is one of the messages measured. (By reference: every move of a
    /// message through another layer is a copy of all its bytes.)
    fn deliver(&mut self, msg: &In) {
        self.counters.count_received(1);
        let start = self.sampler.stamp();
        self.in_flight = Some(InFlight {
            start,
            count: 1,
            measured: u64::from(start != 0),
        });
        if self.core.receipts.active() {
            self.tracked.push(msg.message_id());
        }
    }

    /// Waits for the next message. While the kernel is deactivated this waits
    /// (messages stay queued); once the kernel is terminated it returns
    /// [`Error::Terminating`] at once.
    pub async fn receive(&mut self) -> Result<In> {
        self.finish_in_flight();
        if self.core.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        // Each attempt of the queue's receive spends one unit of tokio's
        // cooperative budget, so a kernel with a backlog still yields now
        // and then and other tasks on its worker (the host's calls, other
        // kernels) run. No need to listen to the cancellation token here:
        // every cancellation closes the input queue right after (see
        // `core`), which wakes this wait, and a closed queue is drained only
        // while not cancelled.
        //
        // The message is moved from its slot into `out`, not returned
        // through the queue's layers (each would copy all its bytes).
        let mut out = None;
        loop {
            let received = match &self.input.queue {
                Transport::Queue(q) => {
                    let mut recv = q.recv_until(None);
                    std::future::poll_fn(|cx| recv.poll_into(cx, &mut out)).await
                }
                Transport::Ring(r) => {
                    // The ring's receive does not spend the budget itself.
                    runtime::input::spend_budget().await;
                    r.recv().await.map(|m| out = Some(m))
                }
            };
            match received {
                Ok(()) => {
                    if let Some(m) = &out {
                        self.deliver(m);
                        // Moved once, from `out` to the result.
                        return out.ok_or_else(|| self.core.terminating_error());
                    }
                }
                Err(RecvError::Empty | RecvError::Timeout) if !self.core.is_cancelled() => {}
                Err(_) => return Err(self.core.terminating_error()),
            }
        }
    }

    /// Like [`receive`](Self::receive), but gives `Ok(None)` if no message
    /// came within `timeout`.
    pub async fn receive_timeout(&mut self, timeout: Duration) -> Result<Option<In>> {
        self.finish_in_flight();
        if self.core.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        let r = tokio::select! {
            biased;
            () = self.core.cancel.cancelled() => return Err(self.core.terminating_error()),
            r = self.input.queue.recv_timeout(timeout) => r,
        };
        match r {
            Ok(m) => {
                self.deliver(&m);
                Ok(Some(m))
            }
            Err(RecvError::Timeout | RecvError::Empty) => Ok(None),
            Err(RecvError::Closed) => Err(self.core.terminating_error()),
        }
    }

    /// Takes up to `max` messages that are already queued (under one lock);
    /// if there are none, waits for one, then takes up to `max - 1` more that
    /// are queued by then. Returns how many were appended to `out`. The
    /// batch is timed and counted as handled when the handler next asks for
    /// input.
    pub async fn receive_batch(&mut self, max: usize, out: &mut Vec<In>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        self.finish_in_flight();
        if self.core.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        // What is queued already is taken at once, under one lock; the
        // attempt spends a unit of tokio's budget as a receive does, so a
        // kernel that always finds a backlog still yields now and then.
        runtime::input::spend_budget().await;
        let n = self.take_queued(max, out);
        if n > 0 {
            return Ok(n);
        }
        out.push(self.receive().await?);
        Ok(1 + self.take_more(max - 1, out))
    }

    /// Takes up to `max` messages that are already queued, as one batch in
    /// flight; 0 (and no batch) if there are none. The previous batch must
    /// be finished.
    fn take_queued(&mut self, max: usize, out: &mut Vec<In>) -> usize {
        self.in_flight = Some(InFlight {
            start: 0,
            count: 0,
            measured: 0,
        });
        let n = self.take_more(max, out);
        if n == 0 {
            self.in_flight = None;
        }
        n
    }

    fn take_more(&mut self, max: usize, out: &mut Vec<In>) -> usize {
        let n = self.input.queue.try_recv_batch(max, out);
        self.counters.count_received(n as u64);
        if self.core.receipts.active() {
            let taken = out.len().saturating_sub(n);
            self.tracked.extend(out[taken..].iter().map(Message::message_id));
        }
        if let Some(batch) = self.in_flight.as_mut() {
            batch.count += n as u64;
            batch.measured += self.sampler.ticks(n as u64);
            if batch.start == 0 && batch.measured > 0 {
                batch.start = sampler::now();
            }
        }
        n
    }

    /// Sends a batch to the output (or linked kernel) in order. On a refusal
    /// the messages not sent come back in the error, in order, the refused
    /// one first.
    pub async fn send_batch(&mut self, msgs: Vec<Out>) -> Result<(), SendError<Vec<Out>>> {
        self.refresh_route();
        self.count_sent(msgs.len());
        let result = match &self.route.1 {
            Some(target) => target.send_batch(msgs, None, Some(&self.core.cancel)).await,
            None => self.output.emit_batch(msgs, &self.core.cancel).await,
        };
        if let Err(e) = &result {
            self.uncount_sent(e.message().len());
        }
        result?;
        Ok(())
    }

    /// Takes a message if one is ready; never waits.
    pub fn try_receive(&mut self) -> Result<Option<In>> {
        self.finish_in_flight();
        if self.core.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        match self.input.queue.try_recv() {
            Ok(m) => {
                self.deliver(&m);
                Ok(Some(m))
            }
            Err(e) => own_recv_error(&self.core, e).map_or(Ok(None), Err),
        }
    }

    /// Counts `n` messages as sent before they can reach their receiver, so
    /// a host that already holds a reply never reads a `messages_sent` that
    /// lags it (the receiver's acquire of the message orders this count
    /// before its telemetry read); what comes back refused is taken back
    /// with [`uncount_sent`](Self::uncount_sent).
    #[inline]
    fn count_sent(&self, n: usize) {
        self.counters.count_sent(n as u64);
    }

    /// Takes back the count of `n` refused messages.
    #[cold]
    fn uncount_sent(&self, n: usize) {
        self.counters.uncount_sent(n as u64);
    }

    fn refresh_route(&mut self) {
        let version = self.output.route_version.load(std::sync::atomic::Ordering::Acquire);
        if version != self.route.0 {
            self.route = (version, self.output.route());
        }
    }

    /// Sends a message to the kernel's output: the call waiting for it (a
    /// reply to a host's `call`), the host's receive queue, or the input of
    /// the kernel it is linked to. With the `Block` output strategy this
    /// waits for room, and wakes on terminate. A refused message comes back
    /// in the error ([`Error::Terminating`] once the kernel is being
    /// terminated; `?` into [`Error`] then ends the handler cleanly).
    pub async fn send(&mut self, msg: Out) -> Result<(), SendError<Out>> {
        self.refresh_route();
        self.count_sent(1);
        let result = match &self.route.1 {
            Some(target) => target.send(msg, None, Some(&self.core.cancel)).await,
            // The common case (a pending call, or room) completes without
            // setting up a wait.
            None => match self.output.try_emit(msg) {
                Ok(None) => Ok(()),
                // Boxed, as the input's wait for room is (see `InputPort::send`).
                Ok(Some(msg)) => Box::pin(self.output.emit_when_room(msg, &self.core.cancel)).await,
                Err(e) => Err(e),
            },
        };
        if result.is_err() {
            self.uncount_sent(1);
        }
        result?;
        Ok(())
    }

    /// Blocking receive for thread-bound handlers: spins on a ring input;
    /// on a queue input polls briefly, then parks the thread. Leaves the
    /// message in `out` and gives `Ok(true)`; `Ok(false)` when `deadline`
    /// passed. (An out-parameter, not a returned message: every layer that
    /// unwraps and re-wraps a message copies all its bytes, and on the spin
    /// tier these copies are on every round trip's path.)
    fn receive_blocking_into(&mut self, out: &mut Option<In>, deadline: Option<Instant>) -> Result<bool> {
        self.finish_in_flight();
        if self.core.is_cancelled() {
            return Err(self.core.terminating_error());
        }
        // Borrowed, not cloned: an `Arc` clone per receive would write the
        // port's reference count, a cache line the host reads on every send.
        let core = &self.core;
        let received = match &self.input.queue {
            Transport::Ring(ring) => ring
                .recv_spin_into(out, || core.is_cancelled(), deadline)
                .map_err(|_| ()),
            // Cancellation closes the input right after, which wakes this
            // wait (see `core`).
            Transport::Queue(q) => match q.recv_blocking_until(deadline) {
                Ok(got) => {
                    *out = Some(got);
                    Ok(true)
                }
                Err(RecvError::Timeout | RecvError::Empty) => Ok(false),
                Err(RecvError::Closed) => Err(()),
            },
        };
        match received {
            Ok(true) => {
                if let Some(m) = out {
                    self.deliver(m);
                }
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(()) => Err(self.core.terminating_error()),
        }
    }

    /// Blocking send for thread-bound handlers: spins on a ring output,
    /// parks on a queue.
    fn send_blocking(&mut self, msg: Out) -> Result<(), SendError<Out>> {
        self.refresh_route();
        self.count_sent(1);
        let result = match &self.route.1 {
            Some(target) => target.send_blocking(msg, None, Some(&self.core.cancel)),
            None => self.output.emit_blocking(msg, &self.core.cancel),
        };
        if result.is_err() {
            self.uncount_sent(1);
        }
        result?;
        Ok(())
    }

    /// Blocking batch send for thread-bound handlers.
    fn send_batch_blocking(&mut self, msgs: Vec<Out>) -> Result<(), SendError<Vec<Out>>> {
        self.refresh_route();
        self.count_sent(msgs.len());
        let result = match &self.route.1 {
            Some(target) => target.send_batch_blocking(msgs, None, Some(&self.core.cancel)),
            None => self.output.emit_batch_blocking(msgs, &self.core.cancel),
        };
        if let Err(e) = &result {
            self.uncount_sent(e.message().len());
        }
        result?;
        Ok(())
    }

    /// The input port of kernel `kernel_id` for messages of type `M`.
    fn peer_port<M: Message>(&self, kernel_id: &str) -> Result<Arc<InputPort<M>>> {
        let runtime = self.core.runtime.upgrade().ok_or(Error::ShutDown)?;
        let target = runtime.kernel(kernel_id)?;
        runtime::input_port::<M>(target.as_ref())
    }

    /// Sends a message straight to another kernel's input, without a host
    /// hop. The message type must be that kernel's input type. A refused
    /// message comes back in the error (also when the kernel does not exist
    /// or takes another type).
    pub async fn send_to<M: Message>(&self, kernel_id: &str, msg: M) -> Result<(), SendError<M>> {
        let port = match self.peer_port::<M>(kernel_id) {
            Ok(port) => port,
            Err(e) => return Err(SendError::new(msg, e)),
        };
        self.count_sent(1);
        let result = port.send(msg, None, Some(&self.core.cancel)).await;
        if result.is_err() {
            self.uncount_sent(1);
        }
        result?;
        Ok(())
    }

    /// [`send_to`](Self::send_to) from the kernel's own thread.
    fn send_to_blocking<M: Message>(&self, kernel_id: &str, msg: M) -> Result<(), SendError<M>> {
        let port = match self.peer_port::<M>(kernel_id) {
            Ok(port) => port,
            Err(e) => return Err(SendError::new(msg, e)),
        };
        self.count_sent(1);
        let result = port.send_blocking(msg, None, Some(&self.core.cancel));
        if result.is_err() {
            self.uncount_sent(1);
        }
        result?;
        Ok(())
    }
}

impl<In, Out> Drop for KernelContext<In, Out> {
    fn drop(&mut self) {
        if let Some(done) = self.in_flight.take() {
            done.record(&self.counters, &self.core.metrics);
            // A handler stopped by terminate may not have finished its
            // message: its receipt fails with the kernel instead.
            if !self.core.is_cancelled() {
                self.core.receipts.processed(&mut self.tracked);
            }
        }
        self.core.metrics.detach_context(&self.counters);
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

    /// Counts `n` messages the handler drops because the runtime refused
    /// them while terminating the kernel (bridges that forward replies).
    // Used by the bridges of optional features (process, gpu).
    #[cfg_attr(
        not(any(feature = "gpu", all(feature = "process", target_os = "linux"))),
        allow(dead_code)
    )]
    pub(crate) fn count_discarded(&self, n: u64) {
        KernelMetrics::add(&self.inner.core.metrics.discarded, n);
    }

    /// Counts `n` messages the kernel took in and can never complete: they
    /// were lost with the peer that held them (a dead kernel process).
    // Used by the bridges of optional features (process, gpu).
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub(crate) fn count_lost(&self, n: u64) {
        KernelMetrics::add(&self.inner.core.metrics.lost, n);
    }

    /// The kernel's core (for a relay that registers an assist there).
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub(crate) fn core(&self) -> &Arc<KernelCore> {
        &self.inner.core
    }

    /// The kernel's output port.
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub(crate) fn output_port(&self) -> &Arc<OutputPort<Out>> {
        &self.inner.output
    }

    /// Sends to the host's side without ever waiting: `Ok(None)` when the
    /// message went to a pending call or into the output queue, `Ok(Some)`
    /// handing it back when it would have to wait (the queue is full, or
    /// the kernel's output is linked to another kernel's input), `Err` a
    /// refusal. (A relay run by a host thread must never wait: that host
    /// may be the one who would make room.)
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub(crate) fn try_send_now(&mut self, msg: Out) -> Result<Option<Out>, SendError<Out>> {
        self.inner.refresh_route();
        if self.inner.route.1.is_some() {
            return Ok(Some(msg));
        }
        self.inner.count_sent(1);
        let result = self.inner.output.try_emit(msg);
        if !matches!(result, Ok(None)) {
            self.inner.uncount_sent(1);
        }
        result
    }

    /// Blocks until the next message; [`Error::Terminating`] on terminate.
    pub fn receive(&mut self) -> Result<In> {
        let mut out = None;
        loop {
            if self.inner.receive_blocking_into(&mut out, None)? {
                if let Some(m) = out {
                    return Ok(m);
                }
            }
        }
    }

    /// Blocks at most `timeout`; `Ok(None)` if no message came.
    pub fn receive_timeout(&mut self, timeout: Duration) -> Result<Option<In>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut out = None;
        self.inner.receive_blocking_into(&mut out, deadline)?;
        Ok(out)
    }

    /// Takes a message if one is ready; never blocks.
    pub fn try_receive(&mut self) -> Result<Option<In>> {
        self.inner.try_receive()
    }

    /// Takes a message if one is ready. If none is, leaves `waker`
    /// registered with the input queue (the next message, a terminate or a
    /// close wakes it), runs `sleep`, then tries once more; `Ok(None)` if
    /// still nothing came. For bridges that sleep on an event source of their
    /// own which `waker` also ends (the process tier's pump and its reply
    /// ring), so that one sleep waits for both.
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub(crate) fn receive_or_sleep(&mut self, waker: &Waker, sleep: impl FnOnce()) -> Result<Option<In>> {
        let mut cx = Context::from_waker(waker);
        let mut next = pin!(self.inner.receive());
        if let Poll::Ready(got) = next.as_mut().poll(&mut cx) {
            return got.map(Some);
        }
        sleep();
        match next.as_mut().poll(&mut cx) {
            Poll::Ready(got) => got.map(Some),
            // Dropping the wait withdraws the registration.
            Poll::Pending => Ok(None),
        }
    }

    /// Sends to the kernel's output (or linked kernel), blocking for room; a
    /// refused message comes back in the error. See [`KernelContext::send`].
    pub fn send(&mut self, msg: Out) -> Result<(), SendError<Out>> {
        self.inner.send_blocking(msg)
    }

    /// Takes up to `max` messages that are already queued (under one lock);
    /// if there are none, blocks for one, then takes up to `max - 1` more
    /// that are queued by then. Returns how many were appended to `out`.
    pub fn receive_batch(&mut self, max: usize, out: &mut Vec<In>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        self.inner.finish_in_flight();
        if self.inner.core.is_cancelled() {
            return Err(self.inner.core.terminating_error());
        }
        let n = self.inner.take_queued(max, out);
        if n > 0 {
            return Ok(n);
        }
        out.push(self.receive()?);
        Ok(1 + self.inner.take_more(max - 1, out))
    }

    /// Sends a batch in order, blocking for room (spinning on a ring); on a
    /// refusal the messages not sent come back in the error.
    pub fn send_batch(&mut self, msgs: Vec<Out>) -> Result<(), SendError<Vec<Out>>> {
        self.inner.send_batch_blocking(msgs)
    }

    /// Sends straight to another kernel's input, blocking for room; a
    /// refused message comes back in the error.
    pub fn send_to<M: Message>(&self, kernel_id: &str, msg: M) -> Result<(), SendError<M>> {
        self.inner.send_to_blocking(kernel_id, msg)
    }
}
