//! One launched kernel: its queues, its state, and the supervisor task that
//! runs its handler.
//!
//! Invariants:
//! - the state changes only through [`KernelState::apply`] or, when the
//!   handler ends on its own, from a running state to `Terminated`/`Failed`;
//! - deactivation pauses the input queue, so no message is delivered while a
//!   kernel is deactivated, and messages sent meanwhile stay queued;
//! - when a kernel ends (finished, failed or terminated) both its queues are
//!   closed, so a host blocked on it wakes with the reason instead of hanging;
//! - a message is either delivered, handed back to its sender, counted as
//!   dropped by its queue's strategy, or counted as discarded at terminate.

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::queue::timer;
use crate::queue::{Backpressure, RecvError, SendError};
use crate::runtime::config::{ExecutionMode, KernelConfig, RestartPolicy};
use crate::runtime::context::{BlockingContext, KernelContext};
use crate::runtime::receipt::{Receipt, Receipts};
use crate::runtime::spec::{BoxFuture, Handler, KernelError, KernelResult};
use crate::runtime::state::{KernelState, Operation};
use crate::runtime::telemetry::{lock, KernelMetrics, KernelTelemetry};
use crate::runtime::transport::{Interrupted, Transport};
use crate::runtime::RuntimeShared;

/// What `terminate` found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerminateReport {
    /// The kernel's id.
    pub kernel: String,
    /// The state the kernel was in when terminate was asked.
    pub previous_state: KernelState,
    /// Input messages that were still queued and were discarded (0 when draining succeeded).
    pub discarded_input: usize,
    /// Output messages nobody had received; they are discarded with the kernel.
    pub unread_output: usize,
    /// True if the handler did not return in time and its task was aborted.
    pub forced: bool,
    /// The failure that ended the kernel, if it failed.
    pub failure: Option<String>,
}

/// How to terminate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminateOptions {
    /// Deliver every queued input message before stopping (new sends are
    /// refused at once). Without it, the handler is stopped at once and
    /// queued input is discarded and counted.
    pub drain: bool,
    /// How long to wait for the handler to return before aborting it.
    pub timeout: Duration,
}

/// The lifecycle, failure and telemetry shared by a kernel's parts.
pub(crate) struct KernelCore {
    pub id: Arc<str>,
    pub config: KernelConfig,
    state: Mutex<KernelState>,
    failure: Mutex<Option<String>>,
    pub cancel: CancellationToken,
    pub metrics: KernelMetrics,
    pub runtime: Weak<RuntimeShared>,
    pub receipts: Receipts,
}

impl KernelCore {
    pub fn state(&self) -> KernelState {
        *lock(&self.state)
    }

    /// Applies `op` and stores the next state; returns the previous one.
    fn transition(&self, op: Operation) -> Result<KernelState> {
        let mut st = lock(&self.state);
        let prev = *st;
        let next = prev.apply(&self.id, op)?;
        if next != prev {
            tracing::debug!(kernel = %self.id, from = %prev, to = %next, "kernel state change");
        }
        *st = next;
        Ok(prev)
    }

    fn set_state(&self, next: KernelState) {
        let mut st = lock(&self.state);
        tracing::debug!(kernel = %self.id, from = %*st, to = %next, "kernel state change");
        *st = next;
    }

    pub fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// The error a host meets once the kernel's queues are closed.
    pub fn end_error(&self) -> Error {
        match self.failure() {
            Some(error) => Error::KernelFailed {
                kernel: self.id.to_string(),
                error,
            },
            None => Error::KernelTerminated {
                kernel: self.id.to_string(),
            },
        }
    }

    /// Checks that the host may `op` this kernel, turning a failed kernel into
    /// its failure rather than a state error.
    fn check(&self, op: Operation) -> Result<()> {
        let state = self.state();
        match state.apply(&self.id, op) {
            Ok(_) => Ok(()),
            Err(_) if state == KernelState::Failed => Err(self.end_error()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn terminating_error(&self) -> Error {
        Error::Terminating {
            kernel: self.id.to_string(),
        }
    }
}

/// The sending side of a kernel: its input queue behind lifecycle checks.
pub(crate) struct InputPort<In> {
    pub core: Arc<KernelCore>,
    pub queue: Transport<In>,
}

impl<In: Message> InputPort<In> {
    /// Sends as the host or another kernel would: checks the state, then
    /// applies the queue's strategy. `timeout` overrides the configured one.
    pub async fn send(&self, msg: In, timeout: Option<Duration>) -> Result<()> {
        self.core.check(Operation::Send)?;
        let result = match timeout {
            Some(t) => self.queue.send_timeout(msg, t).await,
            None => self.queue.send(msg).await,
        };
        result.map_err(|e| self.send_error(e, timeout))
    }

    /// Like [`send`](Self::send), returning a receipt that resolves once
    /// the handler is done with the message.
    pub async fn send_tracked(&self, msg: In, timeout: Option<Duration>) -> Result<Receipt> {
        self.core.check(Operation::Send)?;
        let id = msg.message_id();
        let receipt = self.core.receipts.register(&self.core.id, id)?;
        match self.send(msg, timeout).await {
            Ok(()) => Ok(receipt),
            Err(e) => {
                self.core.receipts.cancel(id);
                Err(e)
            }
        }
    }

    pub fn try_send(&self, msg: In) -> Result<()> {
        self.core.check(Operation::Send)?;
        self.queue.try_send(msg).map_err(|e| self.send_error(e, None))
    }

    /// Sends a batch in order (one lock per ring push run). On a refusal the
    /// messages not sent are dropped: the first is counted by the queue, the
    /// rest as discarded in telemetry, and the error says why.
    pub async fn send_batch(&self, msgs: Vec<In>, timeout: Option<Duration>) -> Result<()> {
        self.core.check(Operation::Send)?;
        let deadline = timeout
            .or(self.core.config.send_timeout)
            .and_then(|t| Instant::now().checked_add(t));
        self.queue
            .send_batch(msgs, deadline)
            .await
            .map_err(|(e, unsent)| self.batch_error(e, unsent, timeout))
    }

    /// [`send_batch`](Self::send_batch) from a plain (non-async) thread.
    pub fn send_batch_blocking(&self, msgs: Vec<In>) -> Result<()> {
        self.core.check(Operation::Send)?;
        match &self.queue {
            Transport::Ring(ring) => ring
                .send_batch_spin(msgs.into(), &self.core.cancel)
                .map_err(|(why, unsent)| {
                    let e = match why {
                        Interrupted::Full => SendError::Full(()),
                        Interrupted::Closed | Interrupted::Cancelled => SendError::Closed(()),
                    };
                    self.batch_error(e, unsent, None)
                }),
            Transport::Queue(_) => crate::runtime::park::block_on(self.send_batch(msgs, None)),
        }
    }

    fn batch_error(&self, e: SendError<()>, unsent: usize, timeout: Option<Duration>) -> Error {
        KernelMetrics::add(&self.core.metrics.discarded, unsent.saturating_sub(1) as u64);
        self.send_error(e, timeout)
    }

    /// Sends from a plain (non-async) thread: spins on a ring, parks on a queue.
    pub fn send_blocking(&self, msg: In) -> Result<()> {
        self.core.check(Operation::Send)?;
        match &self.queue {
            Transport::Ring(ring) => ring.send_spin(msg, &self.core.cancel).map_err(|(why, msg)| match why {
                Interrupted::Full => self.send_error(SendError::Full(msg), None),
                Interrupted::Closed | Interrupted::Cancelled => self.send_error(SendError::Closed(msg), None),
            }),
            Transport::Queue(_) => crate::runtime::park::block_on(self.send(msg, None)),
        }
    }

    fn send_error<X>(&self, e: SendError<X>, timeout: Option<Duration>) -> Error {
        match e {
            SendError::Full(_) => Error::QueueFull {
                kernel: self.core.id.to_string(),
                queue: "input",
                capacity: self.queue.capacity(),
            },
            SendError::Timeout(_) => Error::QueueTimeout {
                kernel: self.core.id.to_string(),
                operation: Operation::Send.verb(),
                timeout: timeout.or(self.core.config.send_timeout).unwrap_or_default(),
            },
            SendError::Closed(_) => match self.core.state() {
                KernelState::Failed => self.core.end_error(),
                KernelState::Terminating | KernelState::Terminated => Error::KernelTerminated {
                    kernel: self.core.id.to_string(),
                },
                _ => self.core.end_error(),
            },
        }
    }
}

/// Replies taken off the output queue by `call` but meant for someone else,
/// and the correlation ids that pending calls wait for.
struct Replies<Out> {
    inner: Mutex<RepliesInner<Out>>,
    /// Stash length plus pending calls; zero means the fast path may skip the lock.
    busy: AtomicUsize,
    notify: Notify,
}

struct RepliesInner<Out> {
    stash: VecDeque<Out>,
    pending: HashSet<Uuid>,
}

impl<Out: Message> Replies<Out> {
    fn new() -> Self {
        Replies {
            inner: Mutex::new(RepliesInner {
                stash: VecDeque::new(),
                pending: HashSet::new(),
            }),
            busy: AtomicUsize::new(0),
            notify: Notify::new(),
        }
    }

    fn idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// The oldest stashed reply that no pending call waits for.
    fn take_unclaimed(&self) -> Option<Out> {
        if self.idle() {
            return None;
        }
        let mut inner = lock(&self.inner);
        let RepliesInner { stash, pending } = &mut *inner;
        let pos = stash
            .iter()
            .position(|m| m.correlation_id().is_none_or(|c| !pending.contains(&c)))?;
        let m = stash.remove(pos);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        m
    }

    fn take_reply(&self, correlation: Uuid) -> Option<Out> {
        let mut inner = lock(&self.inner);
        let pos = inner
            .stash
            .iter()
            .position(|m| m.correlation_id() == Some(correlation))?;
        let m = inner.stash.remove(pos);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        m
    }

    fn is_claimed(&self, m: &Out) -> bool {
        if self.idle() {
            return false;
        }
        m.correlation_id()
            .is_some_and(|c| lock(&self.inner).pending.contains(&c))
    }

    fn stash(&self, m: Out) {
        lock(&self.inner).stash.push_back(m);
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    fn claim(&self, correlation: Uuid) {
        if lock(&self.inner).pending.insert(correlation) {
            self.busy.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn release(&self, correlation: Uuid) {
        if lock(&self.inner).pending.remove(&correlation) {
            self.busy.fetch_sub(1, Ordering::AcqRel);
            // A reply stashed for this call is now unclaimed: wake receivers.
            self.notify.notify_waiters();
        }
    }
}

/// Unregisters a pending call even if its future is dropped.
pub(crate) struct ClaimGuard<'a, Out: Message> {
    replies: &'a Replies<Out>,
    correlation: Uuid,
}

impl<Out: Message> Drop for ClaimGuard<'_, Out> {
    fn drop(&mut self) {
        self.replies.release(self.correlation);
    }
}

/// The receiving side of a kernel, and where its handler's sends go.
pub(crate) struct OutputPort<Out> {
    pub core: Arc<KernelCore>,
    pub queue: Transport<Out>,
    replies: Replies<Out>,
    route: Mutex<Option<Arc<InputPort<Out>>>>,
    pub route_version: AtomicU64,
}

impl<Out: Message> OutputPort<Out> {
    pub fn route(&self) -> Option<Arc<InputPort<Out>>> {
        lock(&self.route).clone()
    }

    fn set_route(&self, target: Option<Arc<InputPort<Out>>>) {
        *lock(&self.route) = target;
        self.route_version.fetch_add(1, Ordering::Release);
    }

    /// Receives the next reply that no pending `call` waits for.
    pub async fn receive(&self, timeout: Option<Duration>) -> Result<Out> {
        self.core.check(Operation::Receive)?;
        let work = async {
            loop {
                if let Some(m) = self.replies.take_unclaimed() {
                    return Ok(m);
                }
                let notified = self.replies.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(m) = self.replies.take_unclaimed() {
                    return Ok(m);
                }
                tokio::select! {
                    r = self.queue.recv() => match r {
                        Ok(m) if self.replies.is_claimed(&m) => self.replies.stash(m),
                        Ok(m) => return Ok(m),
                        Err(_) => return Err(self.core.end_error()),
                    },
                    () = &mut notified => {}
                }
            }
        };
        self.with_timeout(work, timeout).await
    }

    /// Receives from a plain (non-async) thread: spins on a ring, parks on a
    /// queue. Falls back to the async path while calls are pending or
    /// replies are stashed, so ordering and claims hold.
    pub fn receive_blocking(&self, timeout: Option<Duration>) -> Result<Out> {
        self.core.check(Operation::Receive)?;
        match &self.queue {
            Transport::Ring(ring) if self.replies.idle() => {
                let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                match ring.recv_spin(&CancellationToken::new(), deadline) {
                    Ok(Some(m)) => Ok(m),
                    Ok(None) => Err(Error::QueueTimeout {
                        kernel: self.core.id.to_string(),
                        operation: Operation::Receive.verb(),
                        timeout: timeout.unwrap_or_default(),
                    }),
                    Err(_) => Err(self.core.end_error()),
                }
            }
            _ => crate::runtime::park::block_on(self.receive(timeout)),
        }
    }

    /// Waits for one message, then takes up to `max - 1` more that are
    /// already there. Returns how many were appended to `out`.
    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Out>, timeout: Option<Duration>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive(timeout).await?);
        Ok(1 + self.take_more(max - 1, out))
    }

    /// [`receive_batch`](Self::receive_batch) on a plain (non-async) thread.
    pub fn receive_batch_blocking(&self, max: usize, out: &mut Vec<Out>, timeout: Option<Duration>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive_blocking(timeout)?);
        Ok(1 + self.take_more(max - 1, out))
    }

    /// Ready messages, unless calls are pending (then replies go one by one
    /// through the claim check).
    fn take_more(&self, max: usize, out: &mut Vec<Out>) -> usize {
        if self.replies.idle() {
            self.queue.try_recv_batch(max, out)
        } else {
            0
        }
    }

    /// Registers a pending call for `correlation`; replies with that id are
    /// kept for it, other replies stay available to `receive`.
    pub fn claim(&self, correlation: Uuid) -> ClaimGuard<'_, Out> {
        self.replies.claim(correlation);
        ClaimGuard {
            replies: &self.replies,
            correlation,
        }
    }

    /// Waits for the reply claimed by `guard` (claim before sending the
    /// request, so a concurrent `receive` cannot take the reply).
    pub async fn receive_reply(&self, guard: ClaimGuard<'_, Out>, timeout: Option<Duration>) -> Result<Out> {
        let correlation = guard.correlation;
        let work = async {
            loop {
                if let Some(m) = self.replies.take_reply(correlation) {
                    return Ok(m);
                }
                let notified = self.replies.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(m) = self.replies.take_reply(correlation) {
                    return Ok(m);
                }
                tokio::select! {
                    r = self.queue.recv() => match r {
                        Ok(m) if m.correlation_id() == Some(correlation) => return Ok(m),
                        Ok(m) => self.replies.stash(m),
                        Err(_) => return Err(self.core.end_error()),
                    },
                    () = &mut notified => {}
                }
            }
        };
        self.with_timeout(work, timeout).await
    }

    async fn with_timeout(
        &self,
        work: impl std::future::Future<Output = Result<Out>>,
        timeout: Option<Duration>,
    ) -> Result<Out> {
        match timeout {
            None => work.await,
            Some(t) => timer::timeout(t, work).await.unwrap_or_else(|| {
                Err(Error::QueueTimeout {
                    kernel: self.core.id.to_string(),
                    operation: Operation::Receive.verb(),
                    timeout: t,
                })
            }),
        }
    }
}

/// A launched kernel with message types `In` and `Out`.
pub(crate) struct KernelCell<In, Out> {
    pub core: Arc<KernelCore>,
    pub input: Arc<InputPort<In>>,
    pub output: Arc<OutputPort<Out>>,
    handler: Handler<In, Out>,
    runner: Mutex<Option<Runner>>,
}

/// What runs a kernel's handler.
enum Runner {
    /// A tokio task (async handlers).
    Task(JoinHandle<()>),
    /// A dedicated OS thread (blocking handlers); `done` fires when it exits.
    Thread(tokio::sync::oneshot::Receiver<()>),
}

impl Runner {
    /// Waits until the handler's runner has exited, or until `deadline`.
    async fn wait_until(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self {
            Runner::Task(task) => timer::timeout(left, task).await.is_some(),
            Runner::Thread(done) => timer::timeout(left, done).await.is_some(),
        }
    }

    /// Stops a task at its next await point. A thread cannot be stopped from
    /// outside: it is left to end at its next context call.
    async fn abort(self) {
        match self {
            Runner::Task(task) => {
                task.abort();
                let _ = task.await;
            }
            Runner::Thread(_) => {}
        }
    }
}

/// What the supervisor does after a handler run ends.
enum AfterRun {
    Restart,
    Stop,
}

impl<In: Message, Out: Message> KernelCell<In, Out> {
    pub fn new(
        id: Arc<str>,
        config: KernelConfig,
        handler: Handler<In, Out>,
        runtime: Weak<RuntimeShared>,
    ) -> Result<Self> {
        config.validate()?;
        let ring = config.mode == ExecutionMode::Spin;
        let bad_queue = |e: String| Error::invalid("queue", "", e);
        let input = Transport::new(config.input_queue(), ring).map_err(bad_queue)?;
        let output = Transport::new(config.output_queue(), ring).map_err(bad_queue)?;
        let core = Arc::new(KernelCore {
            id,
            config,
            state: Mutex::new(KernelState::Created),
            failure: Mutex::new(None),
            cancel: CancellationToken::new(),
            metrics: KernelMetrics::new(),
            runtime,
            receipts: Receipts::default(),
        });
        core.transition(Operation::Launch)?;
        Ok(KernelCell {
            input: Arc::new(InputPort {
                core: core.clone(),
                queue: input,
            }),
            output: Arc::new(OutputPort {
                core: core.clone(),
                queue: output,
                replies: Replies::new(),
                route: Mutex::new(None),
                route_version: AtomicU64::new(0),
            }),
            core,
            handler,
            runner: Mutex::new(None),
        })
    }

    fn context(&self) -> KernelContext<In, Out> {
        KernelContext::new(self.core.clone(), self.input.clone(), self.output.clone())
    }

    /// Runs an async handler until it ends for good.
    async fn supervise(self: Arc<Self>, handler: crate::runtime::spec::AsyncHandler<In, Out>) {
        let mut restarts = VecDeque::new();
        loop {
            let outcome = AssertUnwindSafe(handler(self.context())).catch_unwind().await;
            if let AfterRun::Stop = self.after_run(outcome, &mut restarts) {
                return;
            }
        }
    }

    /// Runs a blocking handler on the current (dedicated) thread until it ends for good.
    fn supervise_blocking(&self, handler: &crate::runtime::spec::BlockingHandler<In, Out>) {
        let mut restarts = VecDeque::new();
        loop {
            let ctx = BlockingContext::new(self.context());
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx)));
            if let AfterRun::Stop = self.after_run(outcome, &mut restarts) {
                return;
            }
        }
    }

    /// Classifies how a handler run ended and applies the restart policy.
    fn after_run(&self, outcome: std::thread::Result<KernelResult>, restarts: &mut VecDeque<Instant>) -> AfterRun {
        let core = &self.core;
        let terminating = core.cancel.is_cancelled() || self.input.queue.is_closed();
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) if terminating && is_own_termination(&e, &core.id) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => Some(format!("handler panicked: {}", panic_message(panic.as_ref()))),
        };
        let Some(failure) = failure else {
            if !terminating {
                tracing::info!(kernel = %core.id, "handler returned; kernel terminated");
                self.end_on_its_own(KernelState::Terminated, None);
            }
            return AfterRun::Stop;
        };
        core.metrics.record_error(&failure);
        tracing::warn!(kernel = %core.id, error = %failure, "kernel handler failed");
        if terminating {
            return AfterRun::Stop;
        }
        if may_restart(core.config.restart, restarts) {
            KernelMetrics::add(&core.metrics.restarts, 1);
            tracing::info!(kernel = %core.id, restarts = restarts.len(), "restarting kernel handler");
            return AfterRun::Restart;
        }
        self.end_on_its_own(KernelState::Failed, Some(failure));
        AfterRun::Stop
    }

    /// The handler ended without a terminate request.
    fn end_on_its_own(&self, state: KernelState, failure: Option<String>) {
        *lock(&self.core.failure) = failure;
        {
            let mut st = lock(&self.core.state);
            if st.is_running() {
                tracing::debug!(kernel = %self.core.id, from = %*st, to = %state, "kernel state change");
                *st = state;
            }
        }
        self.core.metrics.mark_stopped();
        self.input.queue.close();
        self.output.queue.close();
        self.core.receipts.fail_all(&self.core.end_error());
    }

    async fn terminate_inner(self: Arc<Self>, options: TerminateOptions) -> Result<TerminateReport> {
        let core = &self.core;
        let previous_state = core.transition(Operation::Terminate)?;
        let runner = lock(&self.runner).take();
        let mut forced = false;
        if let Some(mut runner) = runner {
            let deadline = Instant::now().checked_add(options.timeout).unwrap_or_else(far_future);
            if options.drain && previous_state.is_running() {
                self.input.queue.resume();
                self.input.queue.close();
            } else {
                core.cancel.cancel();
                self.input.queue.close();
            }
            if !runner.wait_until(deadline).await {
                if !core.cancel.is_cancelled() {
                    // Draining ran out of time: stop the handler now.
                    core.cancel.cancel();
                }
                let grace = Duration::from_millis(50).min(options.timeout);
                if !runner.wait_until(Instant::now() + grace).await {
                    tracing::warn!(kernel = %core.id, "handler ignored terminate; aborting it");
                    runner.abort().await;
                    forced = true;
                }
            }
        } else {
            self.input.queue.close();
        }
        core.cancel.cancel();
        let discarded = self.input.queue.clear().len();
        KernelMetrics::add(&core.metrics.discarded, discarded as u64);
        self.output.queue.close();
        core.metrics.mark_stopped();
        core.set_state(KernelState::Terminated);
        core.receipts.fail_all(&core.end_error());
        tracing::info!(kernel = %core.id, discarded, forced, "kernel terminated");
        Ok(TerminateReport {
            kernel: core.id.to_string(),
            previous_state,
            discarded_input: discarded,
            unread_output: self.output.queue.len(),
            forced,
            failure: core.failure(),
        })
    }
}

/// A deadline no wait reaches (about 30 years away).
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(1 << 30)).unwrap_or(now)
}

fn may_restart(policy: RestartPolicy, history: &mut VecDeque<Instant>) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure { max_restarts, window } => {
            let now = Instant::now();
            while history.front().is_some_and(|t| now.duration_since(*t) > window) {
                history.pop_front();
            }
            if history.len() < max_restarts as usize {
                history.push_back(now);
                true
            } else {
                false
            }
        }
    }
}

fn is_own_termination(e: &KernelError, id: &str) -> bool {
    matches!(e.downcast_ref::<Error>(), Some(Error::Terminating { kernel }) if kernel == id)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The type-erased face of a kernel, so the runtime can hold kernels of
/// different message types in one table.
pub(crate) trait ErasedKernel: Send + Sync + 'static {
    fn core(&self) -> &Arc<KernelCore>;
    /// `&Arc<InputPort<In>>`, for typed downcasts.
    fn input_any(&self) -> &dyn Any;
    /// `&Arc<OutputPort<Out>>`, for typed downcasts.
    fn output_any(&self) -> &dyn Any;
    fn input_type(&self) -> &'static str;
    fn output_type(&self) -> &'static str;
    fn activate(self: Arc<Self>) -> Result<()>;
    fn deactivate(&self) -> Result<()>;
    fn reactivate(&self) -> Result<()>;
    fn terminate(self: Arc<Self>, options: TerminateOptions) -> BoxFuture<Result<TerminateReport>>;
    fn link_to(&self, target: &dyn ErasedKernel) -> Result<()>;
    fn unlink(&self);
    fn telemetry(&self) -> KernelTelemetry;
    /// Stops the task without waiting (used when a runtime is dropped).
    fn abort(&self);
}

impl<In: Message, Out: Message> ErasedKernel for KernelCell<In, Out> {
    fn core(&self) -> &Arc<KernelCore> {
        &self.core
    }

    fn input_any(&self) -> &dyn Any {
        &self.input
    }

    fn output_any(&self) -> &dyn Any {
        &self.output
    }

    fn input_type(&self) -> &'static str {
        std::any::type_name::<In>()
    }

    fn output_type(&self) -> &'static str {
        std::any::type_name::<Out>()
    }

    fn activate(self: Arc<Self>) -> Result<()> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::invalid("runtime", "none", "activate must be called from within a tokio runtime"))?;
        self.core.transition(Operation::Activate)?;
        self.core.metrics.mark_started();
        let span = tracing::info_span!("ring_kernel", kernel = %self.core.id);
        let runner = match self.handler.clone() {
            Handler::Async(handler) => Runner::Task(handle.spawn(self.clone().supervise(handler).instrument(span))),
            Handler::Blocking(handler) => {
                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                let cell = self.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("ring-kernel-{}", self.core.id))
                    .spawn(move || {
                        span.in_scope(|| cell.supervise_blocking(&handler));
                        let _ = done_tx.send(());
                    });
                if let Err(e) = spawned {
                    let reason = format!("cannot start the kernel's thread: {e}");
                    self.end_on_its_own(KernelState::Failed, Some(reason.clone()));
                    return Err(self.core.end_error());
                }
                Runner::Thread(done_rx)
            }
        };
        *lock(&self.runner) = Some(runner);
        tracing::info!(kernel = %self.core.id, mode = ?self.core.config.mode, "kernel activated");
        Ok(())
    }

    fn deactivate(&self) -> Result<()> {
        // Pause under the same step as the transition so no delivery slips in after.
        self.core.transition(Operation::Deactivate)?;
        self.input.queue.pause();
        Ok(())
    }

    fn reactivate(&self) -> Result<()> {
        self.core.transition(Operation::Reactivate)?;
        self.input.queue.resume();
        Ok(())
    }

    fn terminate(self: Arc<Self>, options: TerminateOptions) -> BoxFuture<Result<TerminateReport>> {
        Box::pin(self.terminate_inner(options))
    }

    fn link_to(&self, target: &dyn ErasedKernel) -> Result<()> {
        let port = target
            .input_any()
            .downcast_ref::<Arc<InputPort<Out>>>()
            .ok_or_else(|| Error::TypeMismatch {
                kernel: target.core().id.to_string(),
                context: "link",
                expected: target.input_type(),
                found: std::any::type_name::<Out>(),
            })?;
        self.output.set_route(Some(port.clone()));
        Ok(())
    }

    fn unlink(&self) {
        self.output.set_route(None);
    }

    fn telemetry(&self) -> KernelTelemetry {
        self.core.metrics.snapshot(
            &self.core.id,
            self.core.state(),
            self.input.queue.stats(),
            self.output.queue.stats(),
            &self.input.queue.wait_histogram(),
        )
    }

    fn abort(&self) {
        self.core.cancel.cancel();
        self.input.queue.close();
        self.output.queue.close();
        self.core.receipts.fail_all(&self.core.end_error());
        if let Some(Runner::Task(task)) = lock(&self.runner).take() {
            task.abort();
        }
    }
}

/// Whether the output strategy lets a handler wait for room.
pub(crate) fn output_waits(config: &KernelConfig) -> bool {
    config.output_backpressure == Backpressure::Block
}

/// Maps a handler-side send failure on `queue` to an error.
pub(crate) fn handler_send_error<T>(core: &KernelCore, e: SendError<T>, capacity: usize) -> Error {
    match e {
        SendError::Full(_) => Error::QueueFull {
            kernel: core.id.to_string(),
            queue: "output",
            capacity,
        },
        SendError::Timeout(_) => Error::QueueTimeout {
            kernel: core.id.to_string(),
            operation: "send from",
            timeout: Duration::ZERO,
        },
        SendError::Closed(_) => core.terminating_error(),
    }
}

/// Maps a receive failure on a kernel's own input queue.
pub(crate) fn own_recv_error(core: &KernelCore, e: RecvError) -> Option<Error> {
    match e {
        RecvError::Closed => Some(core.terminating_error()),
        RecvError::Empty | RecvError::Timeout => None,
    }
}
