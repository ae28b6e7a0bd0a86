//! Messages: the typed values ring kernels exchange.
//!
//! Invariant: every message carries a [`MessageHeader`] whose `priority` is a
//! `u8` (so it is in 0–255 by construction) and whose `message_id` is unique
//! per constructed header (minted cheaply: a per-thread random base and a
//! counter, see [`MessageHeader::message_id`]). In-process messages move as Rust values and are
//! never serialized; [`codec`] is used only at process, device or network
//! boundaries.
//!
//! User types implement [`Message`] with `#[derive(Message)]`, which finds the
//! field of type [`MessageHeader`] (named `header`, or marked
//! `#[message(header)]`).
//!
//! ```
//! use dotcompute::{Message, MessageHeader};
//!
//! #[derive(Debug, Clone, Message)]
//! struct Ping {
//!     seq: u64,
//!     header: MessageHeader,
//! }
//!
//! #[derive(Debug, Clone, Message)]
//! struct Pong {
//!     seq: u64,
//!     header: MessageHeader,
//! }
//!
//! let ping = Ping { seq: 7, header: MessageHeader::with_priority(200) };
//! let pong = ping.reply(Pong { seq: ping.seq, header: MessageHeader::new() });
//! assert_eq!(pong.correlation_id(), Some(ping.message_id()));
//! assert_eq!(ping.band(), dotcompute::PriorityBand::High);
//! ```

pub mod codec;
mod identity;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The default priority of a new message (the middle of the normal band).
pub const DEFAULT_PRIORITY: u8 = 128;

/// The four priority bands. A queue serves higher bands first and keeps FIFO
/// order within a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PriorityBand {
    /// Priorities 0–63.
    Low = 0,
    /// Priorities 64–159.
    Normal = 1,
    /// Priorities 160–223.
    High = 2,
    /// Priorities 224–255.
    System = 3,
}

impl PriorityBand {
    /// Number of bands.
    pub const COUNT: usize = 4;

    /// All bands, lowest first.
    pub const ALL: [PriorityBand; 4] = [
        PriorityBand::Low,
        PriorityBand::Normal,
        PriorityBand::High,
        PriorityBand::System,
    ];

    /// The band a priority falls in: ≥224 system, ≥160 high, ≥64 normal, else low.
    pub const fn of(priority: u8) -> Self {
        match priority {
            224..=255 => PriorityBand::System,
            160..=223 => PriorityBand::High,
            64..=159 => PriorityBand::Normal,
            _ => PriorityBand::Low,
        }
    }

    /// Index of the band, 0 (low) to 3 (system).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as used in telemetry labels.
    pub const fn name(self) -> &'static str {
        match self {
            PriorityBand::Low => "low",
            PriorityBand::Normal => "normal",
            PriorityBand::High => "high",
            PriorityBand::System => "system",
        }
    }
}

/// The header every message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageHeader {
    /// Unique id of this message: a UUID (RFC 9562 version 8) made of a
    /// per-thread random base and a per-thread counter, so minting one costs
    /// a couple of nanoseconds. Ids are unique within a process and across
    /// processes (including forked ones) as surely as random v4 UUIDs are;
    /// consecutive ids of one thread are consecutive numbers, so do not use
    /// them as secrets.
    pub message_id: Uuid,
    /// 0–255, higher is more important. See [`PriorityBand`].
    pub priority: u8,
    /// The `message_id` of the message this one answers, if any.
    pub correlation_id: Option<Uuid>,
    /// Creation time, nanoseconds since the Unix epoch, read from the
    /// system's coarse real-time clock: its resolution is one scheduler tick
    /// (1–4 ms on Linux), enough to order and age messages. For latencies
    /// use the runtime's telemetry, which times with a precise clock.
    pub created_at_ns: u64,
}

impl MessageHeader {
    /// A fresh header: new id, default priority, no correlation, created now.
    #[inline]
    pub fn new() -> Self {
        Self::with_priority(DEFAULT_PRIORITY)
    }

    /// A fresh header with the given priority.
    #[inline]
    pub fn with_priority(priority: u8) -> Self {
        MessageHeader {
            message_id: identity::next_id(),
            priority,
            correlation_id: None,
            created_at_ns: identity::coarse_now_ns(),
        }
    }

    /// A fresh header for a message made together with this one: a new id,
    /// this header's priority and creation time, no correlation.
    ///
    /// Messages built in one go (a batch for
    /// [`send_batch`](crate::KernelHandle::send_batch)) need one clock read
    /// between them instead of one each: the creation time is read from a
    /// coarse clock whose resolution (1–4 ms) is far longer than building a
    /// batch takes, so the shared time is what each would have read.
    ///
    /// ```
    /// use dotcompute::MessageHeader;
    ///
    /// let first = MessageHeader::with_priority(200);
    /// let next = first.sibling();
    /// assert_ne!(next.message_id, first.message_id);
    /// assert_eq!((next.priority, next.created_at_ns), (200, first.created_at_ns));
    /// assert_eq!(next.correlation_id, None);
    /// ```
    #[inline]
    pub fn sibling(&self) -> Self {
        MessageHeader {
            message_id: identity::next_id(),
            priority: self.priority,
            correlation_id: None,
            created_at_ns: self.created_at_ns,
        }
    }

    /// A fresh header that answers `request` (its correlation id is the
    /// request's message id).
    pub fn reply_to(request: &MessageHeader) -> Self {
        MessageHeader {
            correlation_id: Some(request.message_id),
            ..Self::new()
        }
    }

    /// The band of this header's priority.
    pub const fn band(&self) -> PriorityBand {
        PriorityBand::of(self.priority)
    }
}

impl Default for MessageHeader {
    fn default() -> Self {
        Self::new()
    }
}

/// A value that can travel through ring-kernel queues.
///
/// Implement it with `#[derive(Message)]`. The derive sets [`Message::TYPE_NAME`]
/// to the type's module path and name, which the wire [`codec`] writes so that
/// a decoder can tell a wrong type from a corrupt payload.
pub trait Message: Send + 'static {
    /// Stable name of the type, written on the wire.
    const TYPE_NAME: &'static str;

    /// The message's header.
    fn header(&self) -> &MessageHeader;

    /// The message's header, mutably.
    fn header_mut(&mut self) -> &mut MessageHeader;

    /// Unique id of this message.
    fn message_id(&self) -> Uuid {
        self.header().message_id
    }

    /// Priority, 0–255.
    fn priority(&self) -> u8 {
        self.header().priority
    }

    /// Priority band.
    fn band(&self) -> PriorityBand {
        self.header().band()
    }

    /// Correlation id (the id of the message this one answers).
    fn correlation_id(&self) -> Option<Uuid> {
        self.header().correlation_id
    }

    /// Returns the message with its correlation id set.
    fn with_correlation(mut self, correlation_id: Uuid) -> Self
    where
        Self: Sized,
    {
        self.header_mut().correlation_id = Some(correlation_id);
        self
    }

    /// Returns the message with its priority set.
    fn with_priority(mut self, priority: u8) -> Self
    where
        Self: Sized,
    {
        self.header_mut().priority = priority;
        self
    }

    /// Marks `response` as the answer to `self`: its correlation id becomes
    /// this message's id. Returns the response.
    fn reply<R: Message>(&self, mut response: R) -> R
    where
        Self: Sized,
    {
        response.header_mut().correlation_id = Some(self.message_id());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_match_the_documented_boundaries() {
        for p in 0..=255u8 {
            let expected = if p >= 224 {
                PriorityBand::System
            } else if p >= 160 {
                PriorityBand::High
            } else if p >= 64 {
                PriorityBand::Normal
            } else {
                PriorityBand::Low
            };
            assert_eq!(PriorityBand::of(p), expected, "priority {p}");
        }
    }

    #[test]
    fn headers_are_unique_and_default_to_normal_priority() {
        let a = MessageHeader::new();
        let b = MessageHeader::default();
        assert_ne!(a.message_id, b.message_id);
        assert_eq!(a.priority, DEFAULT_PRIORITY);
        assert_eq!(a.band(), PriorityBand::Normal);
        assert!(a.correlation_id.is_none());
        assert!(a.created_at_ns > 0);
    }

    #[test]
    fn reply_to_links_the_request() {
        let req = MessageHeader::with_priority(250);
        let rep = MessageHeader::reply_to(&req);
        assert_eq!(rep.correlation_id, Some(req.message_id));
        assert_ne!(rep.message_id, req.message_id);
    }
}
