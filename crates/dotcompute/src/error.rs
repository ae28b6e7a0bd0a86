//! The crate's error types.
//!
//! Invariants:
//! - every failure a caller can meet through the runtime API is one variant
//!   of [`Error`], with the kernel id and enough context to act on it;
//!   nothing is reported only through a log line;
//! - a send the runtime refuses hands its message back: [`SendError`]
//!   carries the message (or, for a batch, the unsent rest in order) with
//!   the [`Error`] that says why, and [`CallError`] carries the request of a
//!   call that was never sent;
//! - a handler's failure keeps its type and `source()` chain
//!   ([`HandlerError`]), so a caller can downcast it;
//! - text that comes from another process is escaped and cut to a bounded
//!   length before it enters an error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::state::KernelStateError;

/// Errors from the ring-kernel runtime.
///
/// Match it with a `_ =>` arm: new variants may be added.
///
/// Each error prints its whole reason on one line. For
/// [`KernelFailed`](Error::KernelFailed) that includes the handler's error;
/// `source()` then continues with *that* error's source (like
/// `std::io::Error` wrapping a custom error), so a printed chain names each
/// cause once. The handler's error itself, with its type, is the variant's
/// `error` field ([`Error::handler_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No kernel with this id is launched (or registered, for `launch`).
    KernelNotFound {
        /// The id asked for.
        id: String,
        /// The ids that do exist.
        known: Vec<String>,
    },
    /// A kernel with this id is already launched.
    KernelAlreadyExists(String),
    /// The kernel id is registered more than once in the process registry.
    DuplicateKernel {
        /// The id.
        id: String,
        /// Where each registration comes from.
        locations: Vec<String>,
    },
    /// The operation is illegal in the kernel's state.
    State(KernelStateError),
    /// The kernel's handler returned an error or panicked and was not
    /// restarted (or did not stop within the terminate timeout and was
    /// abandoned). The `error` field is the handler's own error, which
    /// [`HandlerError::downcast_ref`] recovers.
    KernelFailed {
        /// The kernel's id.
        kernel: String,
        /// The handler's error (its type and source chain kept), or its panic
        /// ([`HandlerPanic`]).
        error: HandlerError,
    },
    /// The kernel finished; no more messages will come from it.
    KernelTerminated {
        /// The kernel's id.
        kernel: String,
    },
    /// Returned inside a handler once its own kernel is being terminated.
    /// A handler that returns it (for example through `?`) ends cleanly.
    Terminating {
        /// The kernel's id.
        kernel: String,
    },
    /// The queue refused the message (Reject strategy, or a non-waiting send).
    QueueFull {
        /// The kernel's id.
        kernel: String,
        /// "input" or "output".
        queue: &'static str,
        /// The queue's capacity.
        capacity: usize,
    },
    /// A wait on a queue ran out of time.
    QueueTimeout {
        /// The kernel's id.
        kernel: String,
        /// "send to" or "receive from".
        operation: &'static str,
        /// The time waited.
        timeout: Duration,
    },
    /// A message type does not match the kernel's declared type.
    TypeMismatch {
        /// The kernel's id.
        kernel: String,
        /// Which side: "input", "output" or "link".
        context: &'static str,
        /// The kernel's type.
        expected: &'static str,
        /// The type offered.
        found: &'static str,
    },
    /// A configuration value is out of range or unknown.
    InvalidConfiguration {
        /// The parameter's name.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The runtime has been shut down.
    ShutDown,
    /// A GPU ring kernel cannot be built: no device, no compiler, a handler
    /// that does not compile, or a device error.
    #[cfg(feature = "gpu")]
    #[cfg_attr(docsrs, doc(cfg(feature = "gpu")))]
    Gpu {
        /// The kernel's id.
        kernel: String,
        /// What went wrong.
        error: crate::gpu::GpuError,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KernelNotFound { id, known } => {
                write!(f, "kernel '{id}' not found; known kernels: [{}]", known.join(", "))
            }
            Error::KernelAlreadyExists(id) => write!(f, "kernel '{id}' already exists"),
            Error::DuplicateKernel { id, locations } => {
                write!(
                    f,
                    "kernel id '{id}' is registered more than once: {}",
                    locations.join("; ")
                )
            }
            Error::State(e) => fmt::Display::fmt(e, f),
            Error::KernelFailed { kernel, error } => write!(f, "kernel '{kernel}' failed: {error}"),
            Error::KernelTerminated { kernel } => write!(f, "kernel '{kernel}' has terminated"),
            Error::Terminating { kernel } => write!(f, "kernel '{kernel}' is terminating"),
            Error::QueueFull {
                kernel,
                queue,
                capacity,
            } => write!(f, "{queue} queue of kernel '{kernel}' is full ({capacity} messages)"),
            Error::QueueTimeout {
                kernel,
                operation,
                timeout,
            } => write!(
                f,
                "timed out after {timeout:?} waiting to {operation} kernel '{kernel}'"
            ),
            Error::TypeMismatch {
                kernel,
                context,
                expected,
                found,
            } => write!(
                f,
                "type mismatch on kernel '{kernel}': {context} carries {expected}, not {found}"
            ),
            Error::InvalidConfiguration {
                parameter,
                value,
                reason,
            } => write!(f, "invalid configuration: {parameter} = {value}: {reason}"),
            Error::ShutDown => f.write_str("the runtime has been shut down"),
            #[cfg(feature = "gpu")]
            Error::Gpu { kernel, error } => write!(f, "GPU kernel '{kernel}': {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent, as the displayed text already holds these errors.
            Error::State(e) => e.source(),
            Error::KernelFailed { error, .. } => error.source(),
            #[cfg(feature = "gpu")]
            Error::Gpu { error, .. } => error.source(),
            _ => None,
        }
    }
}

impl From<KernelStateError> for Error {
    fn from(e: KernelStateError) -> Self {
        Error::State(e)
    }
}

impl Error {
    /// The handler's own error, for [`KernelFailed`](Error::KernelFailed):
    /// downcast it to the handler's error type with
    /// [`HandlerError::downcast_ref`].
    pub fn handler_error(&self) -> Option<&HandlerError> {
        match self {
            Error::KernelFailed { error, .. } => Some(error),
            _ => None,
        }
    }

    pub(crate) fn invalid(parameter: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidConfiguration {
            parameter,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias for the runtime API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A handler's failure: the error it returned, with its type and `source()`
/// chain, shared (cheap to clone), or its panic as a [`HandlerPanic`].
///
/// It dereferences to the error itself (`dyn std::error::Error + Send +
/// Sync`), so `downcast_ref`, `source` and `to_string` work on it directly.
/// Two handler errors compare equal when they are the same error or print
/// the same text.
///
/// ```
/// use dotcompute::error::HandlerError;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("sensor {0} is offline")]
/// struct Offline(u32);
///
/// let e = HandlerError::new(Offline(7));
/// assert_eq!(e.to_string(), "sensor 7 is offline");
/// assert_eq!(e.downcast_ref::<Offline>().map(|o| o.0), Some(7));
/// assert!(!e.is_panic());
/// ```
#[derive(Clone)]
pub struct HandlerError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl HandlerError {
    /// Wraps an error (anything that converts into a boxed error: an error
    /// type, a `String`, a `&str`, a `Box<dyn Error + Send + Sync>`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        HandlerError(Arc::from(error.into()))
    }

    /// The failure of a handler that panicked with `message`.
    pub(crate) fn panic(message: String) -> Self {
        HandlerError(Arc::new(HandlerPanic { message }))
    }

    /// The error itself.
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The error as `E`, if it is one.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }

    /// Whether the handler panicked (the error is a [`HandlerPanic`]).
    pub fn is_panic(&self) -> bool {
        self.0.is::<HandlerPanic>()
    }
}

impl std::ops::Deref for HandlerError {
    type Target = dyn std::error::Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq for HandlerError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for HandlerError {}

impl serde::Serialize for HandlerError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        HandlerError(Arc::new(error))
    }
}

/// The failure of a handler that panicked: the panic's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handler panicked: {message}")]
#[non_exhaustive]
pub struct HandlerPanic {
    /// The panic payload when it was a string, else a placeholder.
    pub message: String,
}

/// The failure of a kernel whose handler did not stop within the terminate
/// timeout: terminate returned without it (an async handler that does not
/// reach an await point, or a thread handler that does not come back to its
/// context). What it holds is released when it does return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the handler did not stop within the terminate timeout ({timeout:?}) and was abandoned; \
     what it holds is released when it returns"
)]
#[non_exhaustive]
pub struct HandlerAbandoned {
    /// The terminate timeout it overran.
    pub timeout: Duration,
}

impl HandlerAbandoned {
    pub(crate) fn new(timeout: Duration) -> Self {
        HandlerAbandoned { timeout }
    }
}

/// A send the runtime refused, with the message handed back.
///
/// Every send of the runtime ([`RingKernelRuntime`](crate::RingKernelRuntime),
/// [`KernelHandle`](crate::KernelHandle), [`KernelContext`](crate::KernelContext),
/// [`BlockingContext`](crate::BlockingContext), async and blocking, with or
/// without a timeout) fails with this type: the message that was not
/// accepted comes back in it, with the [`Error`] that says why
/// ([`Error::QueueFull`], [`Error::QueueTimeout`], [`Error::KernelTerminated`],
/// [`Error::KernelFailed`], [`Error::State`] for a kernel that is not active,
/// [`Error::KernelNotFound`], [`Error::TypeMismatch`], ...). Batched sends
/// fail with `SendError<Vec<M>>`: the messages not sent, in order, the
/// refused one first.
///
/// It converts into [`Error`] with `?` (the message is then dropped), and
/// prints as its reason. `Debug` does not need `M: Debug`.
///
/// ```
/// use dotcompute::{Backpressure, KernelConfig, KernelContext, Message, MessageHeader, RingKernelRuntime};
///
/// #[derive(Debug, Message)]
/// struct Job { n: u32, header: MessageHeader }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = RingKernelRuntime::new();
/// let config = KernelConfig { input_queue_size: 1, backpressure: Backpressure::Reject, ..KernelConfig::default() };
/// rt.launch_with("slow", config, |_ctx: KernelContext<Job, Job>| async {
///     std::future::pending::<()>().await
/// })?;
/// rt.activate("slow")?;
/// let jobs = rt.handle::<Job, Job>("slow")?;
/// jobs.try_send(Job { n: 1, header: MessageHeader::new() })?;
/// let refused = jobs.try_send(Job { n: 2, header: MessageHeader::new() }).unwrap_err();
/// assert!(refused.is_full());
/// let job = refused.into_message(); // nothing is lost
/// assert_eq!(job.n, 2);
/// rt.shutdown().await;
/// # Ok::<(), dotcompute::Error>(())
/// # }).unwrap();
/// ```
pub struct SendError<M> {
    message: M,
    /// Boxed: a refusal is the rare path, and every send's result (its
    /// future's output) is as large as this error; unboxed, each send that
    /// succeeds still copies the room for a message plus an `Error`.
    error: Box<Error>,
}

impl<M> SendError<M> {
    /// A refusal of `message` because of `error`.
    pub fn new(message: M, error: Error) -> Self {
        SendError {
            message,
            error: Box::new(error),
        }
    }

    /// The message that was not sent.
    pub fn message(&self) -> &M {
        &self.message
    }

    /// The message that was not sent, taken back.
    pub fn into_message(self) -> M {
        self.message
    }

    /// Why it was refused.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Why it was refused (the message is dropped).
    pub fn into_error(self) -> Error {
        *self.error
    }

    /// The message and the reason.
    pub fn into_parts(self) -> (M, Error) {
        (self.message, *self.error)
    }

    /// The same refusal with the message transformed.
    pub fn map_message<N>(self, f: impl FnOnce(M) -> N) -> SendError<N> {
        SendError {
            message: f(self.message),
            error: self.error,
        }
    }

    /// Whether the kernel's queue was full ([`Error::QueueFull`]).
    pub fn is_full(&self) -> bool {
        matches!(*self.error, Error::QueueFull { .. })
    }

    /// Whether no room appeared in time ([`Error::QueueTimeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(*self.error, Error::QueueTimeout { .. })
    }

    /// Whether the kernel has ended or is ending, so it will never take the
    /// message ([`Error::KernelTerminated`], [`Error::KernelFailed`],
    /// [`Error::Terminating`], [`Error::ShutDown`], or [`Error::State`] in
    /// a terminating or final state).
    pub fn is_closed(&self) -> bool {
        match &*self.error {
            Error::KernelTerminated { .. }
            | Error::KernelFailed { .. }
            | Error::Terminating { .. }
            | Error::ShutDown => true,
            Error::State(e) => e.state.is_final() || e.state == crate::KernelState::Terminating,
            _ => false,
        }
    }

    /// Whether the kernel has not been activated yet ([`Error::State`] in
    /// `Created` or `Launched`): the same message may be sent once it is.
    pub fn is_not_active(&self) -> bool {
        matches!(&*self.error, Error::State(e) if matches!(e.state, crate::KernelState::Created | crate::KernelState::Launched))
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("message", &format_args!("<{}>", std::any::type_name::<M>()))
            .field("error", &self.error)
            .finish()
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.error, f)
    }
}

impl<M> std::error::Error for SendError<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: the reason's own source, so a chain prints each cause once.
        std::error::Error::source(&*self.error)
    }
}

impl<M> From<SendError<M>> for Error {
    fn from(e: SendError<M>) -> Self {
        *e.error
    }
}

/// A `call` that did not return a reply.
///
/// When the request was never sent (refused like a [`SendError`]), it comes
/// back here; once it was sent (then the reply timed out, or the kernel
/// ended), only the reason is left. Converts into [`Error`] with `?`.
pub struct CallError<Req> {
    request: Option<Req>,
    error: Error,
}

impl<Req> CallError<Req> {
    /// A call that failed after its request was sent.
    pub fn after_send(error: Error) -> Self {
        CallError { request: None, error }
    }

    /// The request, if it was never sent.
    pub fn request(&self) -> Option<&Req> {
        self.request.as_ref()
    }

    /// The request, taken back, if it was never sent.
    pub fn into_request(self) -> Option<Req> {
        self.request
    }

    /// Whether the request reached the kernel's queue.
    pub fn was_sent(&self) -> bool {
        self.request.is_none()
    }

    /// Why the call failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Why the call failed (the request, if any, is dropped).
    pub fn into_error(self) -> Error {
        self.error
    }

    /// Whether a time limit ran out ([`Error::QueueTimeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self.error, Error::QueueTimeout { .. })
    }
}

impl<Req> From<SendError<Req>> for CallError<Req> {
    fn from(e: SendError<Req>) -> Self {
        let (request, error) = e.into_parts();
        CallError {
            request: Some(request),
            error,
        }
    }
}

impl<Req> fmt::Debug for CallError<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallError")
            .field("sent", &self.was_sent())
            .field("error", &self.error)
            .finish()
    }
}

impl<Req> fmt::Display for CallError<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<Req> std::error::Error for CallError<Req> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl<Req> From<CallError<Req>> for Error {
    fn from(e: CallError<Req>) -> Self {
        e.error
    }
}

/// Longest text from another process kept in an error, in characters
/// (after escaping); the rest is cut and its length stated.
pub(crate) const PEER_TEXT_MAX_CHARS: usize = 256;

/// Text that came from another process (a kernel process's failure text, a
/// type name read off the wire), made safe to put into an error: invalid
/// UTF-8 replaced, control characters (NUL included) escaped, and cut to
/// [`PEER_TEXT_MAX_CHARS`] characters with the number of bytes left out.
pub(crate) fn peer_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut kept = 0usize;
    for (at, c) in text.char_indices() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        let width = piece.chars().count();
        if kept + width > PEER_TEXT_MAX_CHARS {
            let left = text.len() - at;
            out.push_str(&format!("… ({left} more bytes cut)"));
            return out;
        }
        kept += width;
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NotDebug(u32);

    #[test]
    fn send_error_hands_the_message_back_and_converts_with_question_mark() {
        let e = SendError::new(
            NotDebug(3),
            Error::QueueFull {
                kernel: "k".into(),
                queue: "input",
                capacity: 4,
            },
        );
        assert!(e.is_full() && !e.is_timeout() && !e.is_closed() && !e.is_not_active());
        assert_eq!(e.to_string(), "input queue of kernel 'k' is full (4 messages)");
        assert!(format!("{e:?}").contains("QueueFull"), "{e:?}");
        assert_eq!(e.message().0, 3);
        fn lift(e: SendError<NotDebug>) -> Result<()> {
            Err(e)?
        }
        assert!(matches!(lift(e), Err(Error::QueueFull { capacity: 4, .. })));
        let e = SendError::new(vec![1, 2], Error::ShutDown);
        assert!(e.is_closed());
        let (rest, why) = e.into_parts();
        assert_eq!((rest, why), (vec![1, 2], Error::ShutDown));
    }

    #[test]
    fn call_error_keeps_an_unsent_request() {
        let e: CallError<u8> = SendError::new(5u8, Error::ShutDown).into();
        assert!(!e.was_sent());
        assert_eq!(e.into_request(), Some(5));
        let e = CallError::<u8>::after_send(Error::QueueTimeout {
            kernel: "k".into(),
            operation: "receive from",
            timeout: Duration::from_millis(5),
        });
        assert!(e.was_sent() && e.is_timeout());
        assert!(matches!(Error::from(e), Error::QueueTimeout { .. }));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk {0} full")]
    struct DiskFull(u8, #[source] std::io::Error);

    #[test]
    fn kernel_failed_keeps_the_handler_error_type_and_chain() {
        let inner = DiskFull(2, std::io::Error::other("no space"));
        let e = Error::KernelFailed {
            kernel: "k".into(),
            error: HandlerError::new(inner),
        };
        assert_eq!(e.to_string(), "kernel 'k' failed: disk 2 full");
        let disk = e.handler_error().and_then(|h| h.downcast_ref::<DiskFull>());
        assert_eq!(disk.map(|d| d.0), Some(2), "the handler's own type");
        // The chain names each cause once: the handler's error is in the
        // text, its source comes next.
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "no space");
        let panic = HandlerError::panic("boom".into());
        assert!(panic.is_panic());
        assert_eq!(panic.to_string(), "handler panicked: boom");
        assert_eq!(panic.clone(), panic);
        assert_eq!(HandlerError::new("x"), HandlerError::new("x".to_string()));
    }

    #[test]
    fn peer_text_is_escaped_and_bounded() {
        assert_eq!(peer_text(b"division by zero"), "division by zero");
        assert_eq!(peer_text(b"a\0b\nc\x1b[31m"), "a\\u{0}b\\nc\\u{1b}[31m");
        let long = vec![b'x'; 5000];
        let cut = peer_text(&long);
        assert!(cut.starts_with(&"x".repeat(PEER_TEXT_MAX_CHARS)));
        assert!(cut.ends_with("… (4744 more bytes cut)"), "{cut}");
        let nuls = vec![0u8; 1024];
        let cut = peer_text(&nuls);
        assert!(
            cut.chars().count() < PEER_TEXT_MAX_CHARS + 40 && !cut.contains('\0'),
            "{cut}"
        );
    }
}
