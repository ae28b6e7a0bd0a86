//! Send and receive errors.

use std::fmt;

/// A send that did not enqueue its message. Every variant hands the message
/// back: a failed send never loses it.
///
/// `Debug` and `Display` do not need `T: Debug`; they show only the variant.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The queue is full: [`Backpressure::Reject`](super::Backpressure::Reject),
    /// or [`try_send`](super::MessageQueue::try_send) under
    /// [`Backpressure::Block`](super::Backpressure::Block).
    Full(T),
    /// No room appeared before the send timeout
    /// ([`Backpressure::Block`](super::Backpressure::Block) only).
    Timeout(T),
    /// The queue is closed.
    Closed(T),
}

/// Which [`SendError`] variant, without the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// [`SendError::Full`].
    Full,
    /// [`SendError::Timeout`].
    Timeout,
    /// [`SendError::Closed`].
    Closed,
}

/// Why a send that may wait ended without queueing its message, apart from
/// the message (crate-internal: the runtime turns it into its own error in
/// one place, `KernelCore::refusal_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// [`SendError::Full`].
    Full,
    /// [`SendError::Timeout`].
    Timeout,
    /// [`SendError::Closed`].
    Closed,
    /// The sender's stop signal fired while it waited (the queue refused
    /// nothing and counted nothing).
    Stopped,
}

impl<T> SendError<T> {
    /// The refusal and the message, apart.
    pub(crate) fn into_refusal(self) -> (Refusal, T) {
        match self {
            SendError::Full(m) => (Refusal::Full, m),
            SendError::Timeout(m) => (Refusal::Timeout, m),
            SendError::Closed(m) => (Refusal::Closed, m),
        }
    }

    /// The error for a refusal; `Stopped` (which a queue send without a stop
    /// signal never gives) reads as `Closed`.
    pub(crate) fn from_refusal(why: Refusal, msg: T) -> Self {
        match why {
            Refusal::Full => SendError::Full(msg),
            Refusal::Timeout => SendError::Timeout(msg),
            Refusal::Closed | Refusal::Stopped => SendError::Closed(msg),
        }
    }

    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Full(m) | SendError::Timeout(m) | SendError::Closed(m) => m,
        }
    }

    /// The message that was not sent, by reference.
    pub fn inner(&self) -> &T {
        match self {
            SendError::Full(m) | SendError::Timeout(m) | SendError::Closed(m) => m,
        }
    }

    /// Which variant this is.
    pub fn kind(&self) -> SendErrorKind {
        match self {
            SendError::Full(_) => SendErrorKind::Full,
            SendError::Timeout(_) => SendErrorKind::Timeout,
            SendError::Closed(_) => SendErrorKind::Closed,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, SendError::Full(_))
    }

    /// Whether the send timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Timeout(_))
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SendError::Full(_) => "Full",
            SendError::Timeout(_) => "Timeout",
            SendError::Closed(_) => "Closed",
        };
        write!(f, "{name}(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full(_) => "queue is full",
            SendError::Timeout(_) => "timed out waiting for room in the queue",
            SendError::Closed(_) => "queue is closed",
        })
    }
}

impl<T> std::error::Error for SendError<T> {}

/// A receive that returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing to deliver now (the queue is empty, or paused):
    /// [`try_recv`](super::MessageQueue::try_recv) only.
    #[error("queue is empty")]
    Empty,
    /// Nothing was delivered before the receive timeout.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The queue is closed and has nothing left to deliver (or is closed
    /// while paused).
    #[error("queue is closed")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NotDebug(u32);

    #[test]
    fn send_error_hands_the_message_back_and_prints_without_t_debug() {
        let e = SendError::Full(NotDebug(7));
        assert_eq!(format!("{e:?}"), "Full(..)");
        assert_eq!(e.to_string(), "queue is full");
        assert_eq!(e.kind(), SendErrorKind::Full);
        assert!(e.is_full() && !e.is_timeout() && !e.is_closed());
        assert_eq!(e.inner().0, 7);
        assert_eq!(e.into_inner().0, 7);

        let e = SendError::Timeout(NotDebug(8));
        assert_eq!(format!("{e:?}"), "Timeout(..)");
        assert_eq!(e.kind(), SendErrorKind::Timeout);
        assert!(e.is_timeout());
        assert_eq!(e.into_inner().0, 8);

        let e = SendError::Closed(NotDebug(9));
        assert_eq!(format!("{e:?}"), "Closed(..)");
        assert_eq!(e.to_string(), "queue is closed");
        assert!(e.is_closed());
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        assert_eq!(boxed.to_string(), "queue is closed");
    }

    #[test]
    fn recv_error_messages() {
        assert_eq!(RecvError::Empty.to_string(), "queue is empty");
        assert_eq!(RecvError::Timeout.to_string(), "timed out waiting for a message");
        assert_eq!(RecvError::Closed.to_string(), "queue is closed");
    }
}
