//! Queue counters.

use serde::Serialize;

/// A consistent snapshot of a queue's counters, taken under the queue's lock.
///
/// Every snapshot satisfies
/// `enqueued == dequeued + dropped + depth as u64`, and so
/// `attempts() == dequeued + dropped + depth + rejected + timed_out + closed_rejections`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct QueueStats {
    /// The queue's capacity.
    pub capacity: usize,
    /// Sends that were accepted, including messages later dropped by
    /// [`Backpressure::DropOldest`](super::Backpressure::DropOldest) and
    /// incoming messages it dropped at once.
    pub enqueued: u64,
    /// Messages taken out: every successful receive, plus every message
    /// returned by [`clear`](super::MessageQueue::clear).
    pub dequeued: u64,
    /// Messages dropped by [`Backpressure::DropOldest`](super::Backpressure::DropOldest).
    pub dropped: u64,
    /// Sends that failed with [`SendError::Full`](super::SendError::Full).
    pub rejected: u64,
    /// Sends that failed with [`SendError::Timeout`](super::SendError::Timeout).
    pub timed_out: u64,
    /// Sends that failed with [`SendError::Closed`](super::SendError::Closed).
    pub closed_rejections: u64,
    /// Messages queued now.
    pub depth: usize,
    /// Highest depth seen. A [`MessageQueue`](super::MessageQueue) notes
    /// every push's depth. A `Spin` kernel's ring notes, so that neither of
    /// its threads reads the other's index for it, the depth its receiver
    /// saw when taking messages, the capacity when a push found it full,
    /// and the depth of each snapshot: always a depth the ring had, but a
    /// burst taken before the receiver looked again may be noted lower.
    pub peak_depth: usize,
    /// Messages queued now per band, indexed by
    /// [`PriorityBand::index`](crate::PriorityBand::index) (low, normal, high, system).
    /// A `Spin` kernel's ring has no bands (one FIFO): it reports every
    /// queued message in the normal band.
    pub band_depths: [usize; 4],
}

impl QueueStats {
    /// Completed send attempts: `enqueued + rejected + timed_out + closed_rejections`.
    /// (A send future dropped while it waits for room is not an attempt: its
    /// message goes with the future.)
    pub fn attempts(&self) -> u64 {
        self.enqueued + self.rejected + self.timed_out + self.closed_rejections
    }

    /// Whether the accounting invariant holds:
    /// `enqueued == dequeued + dropped + depth` and the band depths sum to `depth`.
    pub fn is_consistent(&self) -> bool {
        self.enqueued == self.dequeued + self.dropped + self.depth as u64
            && self.band_depths.iter().sum::<usize>() == self.depth
            && self.depth <= self.peak_depth
            && self.peak_depth <= self.capacity
    }
}
