//! The crate's errors.
//!
//! Invariant: every failure a caller can meet is one variant of
//! [`NatsError`] naming the kernel, subject or server it concerns; a remote
//! kernel's failure arrives as the same [`dotcompute::Error::KernelFailed`]
//! a local one gives; and a message that could not be sent comes back to
//! its sender inside [`RemoteSendError`]. Text that came from a peer is
//! sanitised (control characters escaped, length limited) before it enters
//! an error.

use std::fmt;
use std::time::Duration;

use dotcompute::codec::{DecodeError, EncodeError};

/// Longest text from a peer kept in an error.
pub const MAX_PEER_TEXT: usize = 1024;

/// Errors of the NATS transport.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// A kernel id, namespace, node name or queue group is not a valid subject token.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the name is ("kernel id", "namespace", ...).
        what: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An option is out of range.
    #[error("invalid option {option} = {value}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The server could not be reached or the connection could not be set up.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL(s).
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("NATS at {url} refused the credentials ({method}): {reason}")]
    Authentication {
        /// The server URL(s).
        url: String,
        /// The method tried: "user/password", "token", "nkey", "credentials file" or "none".
        method: &'static str,
        /// What the server said.
        reason: String,
    },
    /// TLS could not be set up.
    #[error("TLS to NATS at {url} failed: {reason}")]
    Tls {
        /// The server URL(s).
        url: String,
        /// What the TLS layer reported.
        reason: String,
    },
    /// Subscribing failed.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What the client reported.
        reason: String,
    },
    /// Publishing failed (the connection is closed, or the payload is too large).
    #[error("cannot publish to {subject}: {reason}")]
    Publish {
        /// The subject.
        subject: String,
        /// What the client reported.
        reason: String,
    },
    /// A JetStream operation failed.
    #[error("JetStream {operation} on {target} failed: {reason}")]
    JetStream {
        /// What was attempted ("create stream", "create consumer", ...).
        operation: &'static str,
        /// The stream or subject.
        target: String,
        /// What the server or client reported.
        reason: String,
    },
    /// A stream exists under the name this kernel needs, with other subjects
    /// or another retention.
    #[error("JetStream stream {stream} exists with an incompatible configuration: {reason}")]
    StreamConflict {
        /// The stream.
        stream: String,
        /// What differs.
        reason: String,
    },
    /// No runtime exports this kernel (nobody answered its control subject).
    #[error("no runtime exports kernel '{kernel}' (nobody answered on {subject})")]
    NotExported {
        /// The kernel id.
        kernel: String,
        /// The control subject asked.
        subject: String,
    },
    /// The remote kernel's message types are not the ones asked for.
    #[error("kernel '{kernel}' takes {remote} as its {side}, not {local}")]
    TypeMismatch {
        /// The kernel id.
        kernel: String,
        /// "input" or "output".
        side: &'static str,
        /// The type asked for here.
        local: String,
        /// The type the remote kernel declares.
        remote: String,
    },
    /// An operation ran out of time.
    #[error("timed out after {after:?} waiting to {operation} kernel '{kernel}'")]
    Timeout {
        /// The kernel id.
        kernel: String,
        /// What was waited for ("call", "send to", "receive from", "control").
        operation: &'static str,
        /// The time waited.
        after: Duration,
    },
    /// The connection to the server dropped while the operation waited; the
    /// client reconnects by itself, the operation is not retried.
    #[error("disconnected from NATS while waiting to {operation} kernel '{kernel}'")]
    Disconnected {
        /// The kernel id.
        kernel: String,
        /// What was waited for.
        operation: &'static str,
    },
    /// Every replica of the remote kernel has stopped sending heartbeats
    /// (its runtime died or lost its connection).
    #[error("kernel '{kernel}' is unavailable: no replica has sent a heartbeat for {silent_for:?}")]
    RemoteUnavailable {
        /// The kernel id.
        kernel: String,
        /// How long the last replica has been silent.
        silent_for: Duration,
    },
    /// Nobody subscribes to the kernel's input any more (NATS "no responders").
    #[error("no runtime serves kernel '{kernel}' on {subject} (no responders)")]
    NoResponders {
        /// The kernel id.
        kernel: String,
        /// The subject.
        subject: String,
    },
    /// The remote side refused the message: the JetStream stream is full
    /// (discard-new limit, the `Reject` strategy) or the remote kernel's
    /// queue refused it.
    #[error("kernel '{kernel}' refused the message: {reason}")]
    Rejected {
        /// The kernel id.
        kernel: String,
        /// Why.
        reason: String,
    },
    /// A local runtime error, or a remote kernel's state reported as the
    /// runtime reports it locally ([`dotcompute::Error::KernelFailed`],
    /// [`dotcompute::Error::KernelTerminated`]).
    #[error(transparent)]
    Kernel(#[from] dotcompute::Error),
    /// A remote replica could not handle the request for another reason
    /// (for example it could not decode it).
    #[error("node '{node}' could not handle the message for kernel '{kernel}': {error}")]
    Remote {
        /// The kernel id.
        kernel: String,
        /// The replica's node name.
        node: String,
        /// What it reported.
        error: String,
    },
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Bytes received on a subject did not decode as the expected message.
    #[error("undecodable message on {subject}: {error}")]
    Decode {
        /// Where it arrived.
        subject: String,
        /// The codec's error.
        error: DecodeError,
    },
    /// The node was closed.
    #[error("the NATS node has been closed")]
    Closed,
}

impl NatsError {
    /// The remote (or local) kernel failure this error reports, as
    /// `(kernel, error)`. A remote kernel's error is a [`RemoteKernelError`]
    /// (downcast it from the [`HandlerError`](dotcompute::HandlerError)).
    pub fn kernel_failure(&self) -> Option<(&str, &dotcompute::HandlerError)> {
        match self {
            NatsError::Kernel(dotcompute::Error::KernelFailed { kernel, error }) => Some((kernel, error)),
            _ => None,
        }
    }

    /// A remote kernel's failure, as the caller meets it: the same
    /// [`dotcompute::Error::KernelFailed`] a local kernel gives, whose error
    /// is a [`RemoteKernelError`].
    pub(crate) fn remote_failure(kernel: &str, node: &str, error: &str) -> NatsError {
        NatsError::Kernel(dotcompute::Error::KernelFailed {
            kernel: sanitize_peer_text(kernel),
            error: dotcompute::HandlerError::new(RemoteKernelError {
                node: sanitize_peer_text(node),
                error: sanitize_peer_text(error),
            }),
        })
    }

    /// Whether retrying later may succeed (timeouts, disconnects, an
    /// unavailable or not yet started remote, a full stream).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NatsError::Timeout { .. }
                | NatsError::Disconnected { .. }
                | NatsError::RemoteUnavailable { .. }
                | NatsError::NoResponders { .. }
                | NatsError::NotExported { .. }
                | NatsError::Rejected { .. }
        )
    }
}

/// A remote kernel's handler error as its replica reported it: the error
/// value stays in the serving process, its text and the node come here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} (on node {node})")]
pub struct RemoteKernelError {
    /// The node whose kernel failed.
    pub node: String,
    /// The handler's error, as text.
    pub error: String,
}

/// Escapes control characters and cuts `text` to [`MAX_PEER_TEXT`] bytes
/// (on a character boundary), for text that came from a peer.
pub fn sanitize_peer_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_PEER_TEXT));
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() >= MAX_PEER_TEXT {
            let mut cut = MAX_PEER_TEXT;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

/// A message that could not be sent, handed back with the reason.
pub struct RemoteSendError<M> {
    message: M,
    error: NatsError,
}

impl<M> RemoteSendError<M> {
    pub(crate) fn new(message: M, error: NatsError) -> Self {
        RemoteSendError { message, error }
    }

    /// Why the message was not sent.
    pub fn error(&self) -> &NatsError {
        &self.error
    }

    /// The message, to retry or keep.
    pub fn into_message(self) -> M {
        self.message
    }

    /// The message and the reason.
    pub fn into_parts(self) -> (M, NatsError) {
        (self.message, self.error)
    }
}

impl<M> fmt::Debug for RemoteSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSendError")
            .field("message", &std::any::type_name::<M>())
            .field("error", &self.error)
            .finish()
    }
}

impl<M> fmt::Display for RemoteSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message not sent: {}", self.error)
    }
}

impl<M> std::error::Error for RemoteSendError<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<M> From<RemoteSendError<M>> for NatsError {
    fn from(e: RemoteSendError<M>) -> Self {
        e.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_escaped_and_cut() {
        assert_eq!(sanitize_peer_text("a\nb\0c"), "a\\nb\\u{0}c");
        let long = "é".repeat(2000);
        let s = sanitize_peer_text(&long);
        assert!(s.len() <= MAX_PEER_TEXT + '…'.len_utf8());
        assert!(s.ends_with('…'));
    }

    #[test]
    fn a_send_error_hands_the_message_back() {
        struct NotDebug(u32);
        let e = RemoteSendError::new(NotDebug(7), NatsError::Closed);
        assert!(format!("{e:?}").contains("NotDebug"));
        assert_eq!(e.to_string(), "message not sent: the NATS node has been closed");
        let (m, err) = e.into_parts();
        assert_eq!(m.0, 7);
        assert_eq!(err, NatsError::Closed);
    }

    #[test]
    fn kernel_failures_are_recognisable() {
        let e = NatsError::remote_failure("k", "n", "boom");
        let (kernel, error) = e.kernel_failure().unwrap();
        assert_eq!(kernel, "k");
        let remote = error.downcast_ref::<RemoteKernelError>().unwrap();
        assert_eq!((remote.node.as_str(), remote.error.as_str()), ("n", "boom"));
        assert_eq!(e.to_string(), "kernel 'k' failed: boom (on node n)");
        assert!(!e.is_transient());
    }
}
