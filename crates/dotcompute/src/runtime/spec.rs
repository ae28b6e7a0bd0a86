//! Kernel definitions: the handler plus its configuration, before launch.
//!
//! Invariant: a [`KernelSpec`] always holds a validated configuration and a
//! handler; [`KernelBuilder::build`] is the only way to make one, and it
//! reports a missing handler, an empty id or a bad value as
//! [`Error::InvalidConfiguration`].
//!
//! ```
//! use dotcompute::{KernelContext, KernelSpec, Backpressure, Message, MessageHeader};
//!
//! #[derive(Debug, Message)]
//! struct Num { v: i64, header: MessageHeader }
//!
//! let spec = KernelSpec::builder::<Num, Num>("negate")
//!     .queue_size(128)
//!     .backpressure(Backpressure::Reject)
//!     .handler(|mut ctx: KernelContext<Num, Num>| async move {
//!         while let Ok(n) = ctx.receive().await {
//!             let out = n.reply(Num { v: -n.v, header: MessageHeader::new() });
//!             ctx.send(out).await?;
//!         }
//!         Ok::<(), dotcompute::Error>(())
//!     })
//!     .build()
//!     .unwrap();
//! assert_eq!(spec.id(), "negate");
//! assert_eq!(spec.config().input_queue_size, 128);
//!
//! let err = KernelSpec::builder::<Num, Num>("x").queue_size(0).build().unwrap_err();
//! assert!(err.to_string().contains("input_queue_size"));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::queue::Backpressure;
use crate::runtime::config::{ExecutionMode, KernelConfig, RestartPolicy};
use crate::runtime::context::{BlockingContext, KernelContext};
use crate::runtime::kernel::{ErasedKernel, KernelCell};
use crate::runtime::RuntimeShared;

/// The error a handler may return: any error type, boxed.
pub type KernelError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler's future resolves to, once normalised.
pub type KernelResult = Result<(), KernelError>;

/// Handler return types the runtime accepts: `()` or `Result<(), E>` for any
/// `E` that converts into a boxed error (including [`Error`] and `String`).
pub trait IntoKernelResult: Send + 'static {
    /// Converts into the runtime's result type.
    fn into_kernel_result(self) -> KernelResult;
}

impl IntoKernelResult for () {
    fn into_kernel_result(self) -> KernelResult {
        Ok(())
    }
}

impl<E: Into<KernelError> + Send + 'static> IntoKernelResult for Result<(), E> {
    fn into_kernel_result(self) -> KernelResult {
        self.map_err(Into::into)
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub(crate) type AsyncHandler<In, Out> = Arc<dyn Fn(KernelContext<In, Out>) -> BoxFuture<KernelResult> + Send + Sync>;
pub(crate) type BlockingHandler<In, Out> = Arc<dyn Fn(BlockingContext<In, Out>) -> KernelResult + Send + Sync>;

/// The handler of a kernel, by the way it waits.
pub(crate) enum Handler<In, Out> {
    Async(AsyncHandler<In, Out>),
    Blocking(BlockingHandler<In, Out>),
}

impl<In, Out> Clone for Handler<In, Out> {
    fn clone(&self) -> Self {
        match self {
            Handler::Async(h) => Handler::Async(h.clone()),
            Handler::Blocking(h) => Handler::Blocking(h.clone()),
        }
    }
}

impl<In, Out> Handler<In, Out> {
    fn check_mode(&self, mode: ExecutionMode) -> Result<()> {
        match (self, mode) {
            (Handler::Async(_), ExecutionMode::Async)
            | (
                Handler::Blocking(_),
                ExecutionMode::Thread | ExecutionMode::Spin | ExecutionMode::Process | ExecutionMode::Gpu,
            ) => Ok(()),
            (Handler::Async(_), _) => Err(Error::invalid(
                "mode",
                format!("{mode:?}"),
                "an async handler runs in ExecutionMode::Async; use .blocking_handler(..) for a thread kernel",
            )),
            (Handler::Blocking(_), _) => Err(Error::invalid(
                "mode",
                format!("{mode:?}"),
                "a blocking handler needs its own thread: use ExecutionMode::Thread or ExecutionMode::Spin",
            )),
        }
    }
}

/// Makes kernels of one message-type pair; object-safe so specs of different
/// types can share a registry.
pub(crate) trait KernelFactory: Send + Sync {
    fn instantiate(
        &self,
        id: Arc<str>,
        config: KernelConfig,
        runtime: Weak<RuntimeShared>,
    ) -> Result<Arc<dyn ErasedKernel>>;
    fn input_type(&self) -> &'static str;
    fn output_type(&self) -> &'static str;
    fn check_mode(&self, mode: ExecutionMode) -> Result<()>;
}

struct TypedFactory<In, Out> {
    handler: Handler<In, Out>,
}

impl<In: Message, Out: Message> KernelFactory for TypedFactory<In, Out> {
    fn instantiate(
        &self,
        id: Arc<str>,
        config: KernelConfig,
        runtime: Weak<RuntimeShared>,
    ) -> Result<Arc<dyn ErasedKernel>> {
        let cell = KernelCell::<In, Out>::new(id, config, self.handler.clone(), runtime)?;
        Ok(Arc::new(cell))
    }

    fn input_type(&self) -> &'static str {
        std::any::type_name::<In>()
    }

    fn output_type(&self) -> &'static str {
        std::any::type_name::<Out>()
    }

    fn check_mode(&self, mode: ExecutionMode) -> Result<()> {
        self.handler.check_mode(mode)
    }
}

/// A launchable kernel definition: id, configuration and handler.
///
/// Cheap to clone; launching it twice (in two runtimes, or after a terminate)
/// starts independent kernels.
#[derive(Clone)]
pub struct KernelSpec {
    id: String,
    config: KernelConfig,
    factory: Arc<dyn KernelFactory>,
}

impl std::fmt::Debug for KernelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSpec")
            .field("id", &self.id)
            .field("input", &self.factory.input_type())
            .field("output", &self.factory.output_type())
            .field("config", &self.config)
            .finish()
    }
}

impl KernelSpec {
    /// Starts a definition for a kernel that receives `In` and sends `Out`.
    pub fn builder<In: Message, Out: Message>(id: impl Into<String>) -> KernelBuilder<In, Out> {
        KernelBuilder {
            id: id.into(),
            config: KernelConfig::default(),
            handler: None,
            error: None,
        }
    }

    /// The kernel id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The configuration.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// Type name of the input messages.
    pub fn input_type(&self) -> &'static str {
        self.factory.input_type()
    }

    /// Type name of the output messages.
    pub fn output_type(&self) -> &'static str {
        self.factory.output_type()
    }

    /// The same kernel under another id (to launch several instances).
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self> {
        self.id = id.into();
        check_id(&self.id)?;
        Ok(self)
    }

    /// The same kernel with another configuration.
    pub fn with_config(mut self, config: KernelConfig) -> Result<Self> {
        config.validate()?;
        self.factory.check_mode(config.mode)?;
        self.config = config;
        Ok(self)
    }

    pub(crate) fn instantiate(&self, runtime: Weak<RuntimeShared>) -> Result<Arc<dyn ErasedKernel>> {
        self.factory
            .instantiate(Arc::from(self.id.as_str()), self.config.clone(), runtime)
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.trim().is_empty() {
        Err(Error::invalid("id", format!("{id:?}"), "a kernel id must not be empty"))
    } else {
        Ok(())
    }
}

/// Builds a [`KernelSpec`] without macros.
pub struct KernelBuilder<In, Out> {
    id: String,
    config: KernelConfig,
    handler: Option<Handler<In, Out>>,
    error: Option<Error>,
}

impl<In: Message, Out: Message> KernelBuilder<In, Out> {
    /// Sets both queue capacities.
    pub fn queue_size(mut self, n: usize) -> Self {
        self.config.input_queue_size = n;
        self.config.output_queue_size = n;
        self
    }

    /// Sets the input queue capacity.
    pub fn input_queue_size(mut self, n: usize) -> Self {
        self.config.input_queue_size = n;
        self
    }

    /// Sets the output queue capacity.
    pub fn output_queue_size(mut self, n: usize) -> Self {
        self.config.output_queue_size = n;
        self
    }

    /// Sets the input queue's backpressure strategy.
    pub fn backpressure(mut self, strategy: Backpressure) -> Self {
        self.config.backpressure = strategy;
        self
    }

    /// Sets the input queue's strategy by name ("block", "reject",
    /// "drop_oldest"); an unknown name makes [`build`](Self::build) fail.
    pub fn backpressure_named(mut self, name: &str) -> Self {
        match name.parse::<Backpressure>() {
            Ok(s) => self.config.backpressure = s,
            Err(e) => self.error = Some(Error::invalid("backpressure", format!("{name:?}"), e.to_string())),
        }
        self
    }

    /// Sets the output queue's backpressure strategy.
    pub fn output_backpressure(mut self, strategy: Backpressure) -> Self {
        self.config.output_backpressure = strategy;
        self
    }

    /// Limits how long a blocked send into the input queue waits.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_timeout = Some(timeout);
        self
    }

    /// Measures the queue wait and handler time of one message in `n`
    /// (1: every message; 0: none); see [`KernelConfig::latency_sample_every`].
    pub fn latency_sample_every(mut self, n: u32) -> Self {
        self.config.latency_sample_every = n;
        self
    }

    /// Sets the restart policy.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.config.restart = policy;
        self
    }

    /// Sets the execution mode.
    pub fn mode(mut self, mode: ExecutionMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: KernelConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the handler: an async function (or closure) taking the kernel's
    /// context and returning `()` or `Result<(), E>`. It is called again,
    /// with a fresh context, on each restart.
    pub fn handler<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(KernelContext<In, Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoKernelResult,
    {
        let handler: AsyncHandler<In, Out> = Arc::new(move |ctx| {
            let fut = f(ctx);
            Box::pin(async move { fut.await.into_kernel_result() })
        });
        self.handler = Some(Handler::Async(handler));
        self
    }

    /// Sets a blocking handler, run on a dedicated OS thread
    /// ([`ExecutionMode::Thread`], which this selects unless the mode is
    /// already [`ExecutionMode::Spin`]). It receives and sends with blocking
    /// calls; see [`BlockingContext`].
    pub fn blocking_handler<F, R>(mut self, f: F) -> Self
    where
        F: Fn(BlockingContext<In, Out>) -> R + Send + Sync + 'static,
        R: IntoKernelResult,
    {
        self.handler = Some(Handler::Blocking(Arc::new(move |ctx| f(ctx).into_kernel_result())));
        if self.config.mode == ExecutionMode::Async {
            self.config.mode = ExecutionMode::Thread;
        }
        self
    }

    /// Validates and builds the spec.
    pub fn build(self) -> Result<KernelSpec> {
        if let Some(e) = self.error {
            return Err(e);
        }
        check_id(&self.id)?;
        self.config.validate()?;
        let handler = self
            .handler
            .ok_or_else(|| Error::invalid("handler", "none", "a kernel needs a handler (call .handler(..))"))?;
        handler.check_mode(self.config.mode)?;
        Ok(KernelSpec {
            id: self.id,
            config: self.config,
            factory: Arc::new(TypedFactory { handler }),
        })
    }

    /// Builds the spec and adds it to the process-wide registry, so that
    /// `runtime.launch(id)` finds it. A second registration of the same id is
    /// refused with [`Error::DuplicateKernel`].
    pub fn register(self) -> Result<()> {
        crate::runtime::registry::register(self.build()?)
    }
}
