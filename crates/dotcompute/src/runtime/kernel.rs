//! One launched kernel: its core, its two ports and its handler, and the
//! type-erased face the runtime's table holds.
//!
//! Invariants:
//! - deactivation pauses the input queue under the same step as the state
//!   transition, so no message is delivered while a kernel is deactivated,
//!   and messages sent meanwhile stay queued;
//! - a kernel's ports are reached only through typed downcasts that check
//!   the message types, so a wrong type is an error, never a panic.

use std::any::Any;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

use tracing::Instrument;

use crate::error::{Error, HandlerError, Result};
use crate::message::Message;
use crate::queue::ReceiverWait;
use crate::runtime::config::{ExecutionMode, KernelConfig};
use crate::runtime::context::KernelContext;
use crate::runtime::core::KernelCore;
use crate::runtime::input::InputPort;
use crate::runtime::output::OutputPort;
use crate::runtime::replies::Replies;
use crate::runtime::spec::{BoxFuture, Handler};
use crate::runtime::state::{KernelState, Operation};
use crate::runtime::supervisor::{Runner, TerminateOptions, TerminateReport};
use crate::runtime::telemetry::{lock, KernelTelemetry};
use crate::runtime::transport::Transport;
use crate::runtime::RuntimeShared;

/// A launched kernel with message types `In` and `Out`.
pub(crate) struct KernelCell<In, Out> {
    pub core: Arc<KernelCore>,
    pub input: Arc<InputPort<In>>,
    pub output: Arc<OutputPort<Out>>,
    pub(super) handler: Handler<In, Out>,
    pub(super) runner: Mutex<Option<Runner>>,
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
        // The kernel's receivers spin briefly and, when async, register at
        // once (the host may be a task of the kernel's own executor).
        let to_kernel = ReceiverWait {
            spin: true,
            async_poll: false,
        };
        let to_host = ReceiverWait {
            // A process kernel's replies come through its pump thread, which
            // waits on the process: a host spinning for them takes the vCPU
            // those two need (measured: docs/benchmarks.md, issue 10, third
            // pass).
            spin: config.mode != ExecutionMode::Process,
            // A thread kernel answers from its own thread: an async host
            // polls a while before it sleeps (docs/benchmarks.md, fifth pass).
            async_poll: matches!(config.mode, ExecutionMode::Thread | ExecutionMode::Gpu),
        };
        let input =
            Transport::new(config.input_queue(), ring, config.latency_sample_every, to_kernel).map_err(bad_queue)?;
        let output = Transport::new(config.output_queue(), ring, 0, to_host).map_err(bad_queue)?;
        let core = Arc::new(KernelCore::new(id, config, runtime));
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
                linked: std::sync::atomic::AtomicBool::new(false),
            }),
            core,
            handler,
            runner: Mutex::new(None),
        })
    }

    pub(super) fn context(&self) -> KernelContext<In, Out> {
        KernelContext::new(self.core.clone(), self.input.clone(), self.output.clone())
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
        // Only an async handler needs a tokio runtime (its task runs there);
        // a blocking handler gets its own thread, so Thread, Spin, Process
        // and Gpu kernels work in a program made of plain threads.
        enum Start<In, Out> {
            Task(crate::runtime::spec::AsyncHandler<In, Out>, tokio::runtime::Handle),
            Thread(crate::runtime::spec::BlockingHandler<In, Out>),
        }
        let start = match self.handler.clone() {
            Handler::Async(handler) => {
                let tokio = tokio::runtime::Handle::try_current().map_err(|_| {
                    Error::invalid(
                        "runtime",
                        "none",
                        "an async kernel is activated from within a tokio runtime, where its task runs \
                         (Thread and Spin kernels need none)",
                    )
                })?;
                Start::Task(handler, tokio)
            }
            Handler::Blocking(handler) => Start::Thread(handler),
        };
        self.core.transition(Operation::Activate)?;
        self.core.metrics.mark_started();
        let span = tracing::info_span!("ring_kernel", kernel = %self.core.id);
        let runner = match start {
            Start::Task(handler, tokio) => Runner::Task(tokio.spawn(self.clone().supervise(handler).instrument(span))),
            Start::Thread(handler) => {
                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                let cell = self.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("ring-kernel-{}", self.core.id))
                    .spawn(move || {
                        span.in_scope(|| cell.supervise_blocking(&handler));
                        let _ = done_tx.send(());
                    });
                if let Err(e) = spawned {
                    let reason = HandlerError::new(format!("cannot start the kernel's thread: {e}"));
                    self.end_on_its_own(KernelState::Failed, Some(reason));
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
        self.core.cancel_now();
        self.input.queue.close();
        self.output.queue.close();
        self.output.replies.close();
        self.core.receipts.fail_all(&self.core.end_error());
        if let Some(Runner::Task(task)) = lock(&self.runner).take() {
            task.abort();
        }
    }
}
