//! The supervisor: what runs a kernel's handler (a tokio task or an OS
//! thread), what happens when a run ends (restart policy, `Failed`,
//! `Terminated`), and termination.
//!
//! Invariants:
//! - when a kernel ends (finished, failed or terminated) both its queues are
//!   closed, so a host blocked on it wakes with the reason instead of hanging;
//! - a handler run that ends is classified exactly once: clean end, its own
//!   termination, or a failure that is counted, then restarted per the
//!   policy or turned into `Failed`;
//! - a message is either delivered, handed back to its sender, counted as
//!   dropped by its queue's strategy, or counted as discarded at terminate.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::error::{Error, HandlerAbandoned, HandlerError, Result, SendError};
use crate::message::Message;
use crate::queue::timer;
use crate::runtime::config::RestartPolicy;
use crate::runtime::context::BlockingContext;
use crate::runtime::kernel::KernelCell;
use crate::runtime::spec::{KernelError, KernelResult};
use crate::runtime::state::{KernelState, Operation};
use crate::runtime::telemetry::{lock, KernelMetrics};

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
    /// True if the handler did not return within the timeout and was
    /// stopped by force: an async handler's task is aborted at its next
    /// await point.
    pub forced: bool,
    /// True if the handler was still running when terminate returned: an
    /// async handler that does not reach an await point (a long computation
    /// or an endless loop), or a thread handler that does not come back to
    /// its context. The kernel is then reported `Failed` with a
    /// [`HandlerAbandoned`] failure, and what the handler holds is released
    /// when it does return.
    pub abandoned: bool,
    /// The failure that ended the kernel, if it failed.
    pub failure: Option<HandlerError>,
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

/// What runs a kernel's handler.
pub(crate) enum Runner {
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

    /// Asks a task to stop at its next await point, and waits for that until
    /// `deadline`; returns whether the handler has stopped. A task that never
    /// reaches an await point cannot be stopped from outside, nor can a
    /// thread: both are left to end on their own (never waited for past
    /// `deadline`).
    async fn abort(&mut self, deadline: Instant) -> bool {
        if let Runner::Task(task) = self {
            task.abort();
        }
        self.wait_until(deadline).await
    }
}

/// What the supervisor does after a handler run ends.
enum AfterRun {
    Restart,
    Stop,
}

impl<In: Message, Out: Message> KernelCell<In, Out> {
    /// Runs an async handler until it ends for good.
    pub(super) async fn supervise(self: Arc<Self>, handler: crate::runtime::spec::AsyncHandler<In, Out>) {
        let mut restarts = VecDeque::new();
        loop {
            let outcome = AssertUnwindSafe(handler(self.context())).catch_unwind().await;
            if let AfterRun::Stop = self.after_run(outcome, &mut restarts) {
                return;
            }
        }
    }

    /// Runs a blocking handler on the current (dedicated) thread until it ends for good.
    pub(super) fn supervise_blocking(&self, handler: &crate::runtime::spec::BlockingHandler<In, Out>) {
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
        let terminating = core.is_cancelled() || self.input.queue.is_closed();
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) if terminating && is_own_termination::<Out>(&e, &core.id) => None,
            Ok(Err(e)) => Some(HandlerError::new(e)),
            Err(panic) => Some(HandlerError::panic(panic_message(panic.as_ref()))),
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
    pub(super) fn end_on_its_own(&self, state: KernelState, failure: Option<HandlerError>) {
        *lock(&self.core.failure) = failure;
        self.core.end_running(state);
        self.core.metrics.mark_stopped();
        self.input.queue.close();
        self.output.queue.close();
        self.output.replies.close();
        self.core.receipts.fail_all(&self.core.end_error());
    }

    pub(super) async fn terminate_inner(self: Arc<Self>, options: TerminateOptions) -> Result<TerminateReport> {
        let core = &self.core;
        let previous_state = core.transition(Operation::Terminate)?;
        let runner = lock(&self.runner).take();
        let mut forced = false;
        let mut abandoned = false;
        if let Some(mut runner) = runner {
            let deadline = Instant::now().checked_add(options.timeout).unwrap_or_else(far_future);
            if options.drain && previous_state.is_running() {
                self.input.queue.resume();
                self.input.queue.close();
            } else {
                core.cancel_now();
                self.input.queue.close();
            }
            if !runner.wait_until(deadline).await {
                if !core.is_cancelled() {
                    // Draining ran out of time: stop the handler now.
                    core.cancel_now();
                }
                let grace = ABORT_GRACE.min(options.timeout);
                if !runner.wait_until(Instant::now() + grace).await {
                    tracing::warn!(kernel = %core.id, "handler ignored terminate; aborting it");
                    forced = true;
                    abandoned = !runner.abort(Instant::now() + grace).await;
                }
            }
        } else {
            self.input.queue.close();
        }
        core.cancel_now();
        let discarded = self.input.queue.clear().len();
        KernelMetrics::add(&core.metrics.discarded, discarded as u64);
        self.output.queue.close();
        core.metrics.mark_stopped();
        if abandoned {
            let failure = HandlerError::from(HandlerAbandoned::new(options.timeout));
            tracing::error!(kernel = %core.id, error = %failure, "kernel abandoned");
            core.metrics.record_error(&failure);
            *lock(&core.failure) = Some(failure);
            core.set_state(KernelState::Failed);
        } else {
            core.set_state(KernelState::Terminated);
        }
        self.output.replies.close();
        core.receipts.fail_all(&core.end_error());
        tracing::info!(kernel = %core.id, discarded, forced, abandoned, "kernel terminated");
        Ok(TerminateReport {
            kernel: core.id.to_string(),
            previous_state,
            discarded_input: discarded,
            unread_output: self.output.queue.len(),
            forced,
            abandoned,
            failure: core.failure(),
        })
    }
}

/// How long terminate waits, after its timeout, for a handler it stopped
/// (cancelled, then aborted) to return.
const ABORT_GRACE: Duration = Duration::from_millis(50);

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

/// Whether a handler's error is its own kernel's termination reaching it:
/// [`Error::Terminating`] for this kernel, as it is, inside a refused send
/// of the kernel's output type, or anywhere in the error's source chain.
fn is_own_termination<Out: Message>(e: &KernelError, id: &str) -> bool {
    let own = |e: &Error| matches!(e, Error::Terminating { kernel } if kernel == id);
    if let Some(e) = e.downcast_ref::<SendError<Out>>() {
        return own(e.error());
    }
    if let Some(e) = e.downcast_ref::<SendError<Vec<Out>>>() {
        return own(e.error());
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**e);
    while let Some(e) = next {
        if e.downcast_ref::<Error>().is_some_and(own) {
            return true;
        }
        next = e.source();
    }
    false
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
