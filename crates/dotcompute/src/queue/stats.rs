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
    /// Receives that found nothing to deliver and went to sleep: an async
    /// receive that left its waker, a blocking one that parked after its
    /// brief poll; a receive woken for a message another receiver took, and
    /// asleep again, counts twice. A receiver that keeps finding its queue
    /// empty pays a wake-up for each of these. A `Spin` kernel's ring does
    /// not count them (0).
    #[serde(default)]
    pub receive_sleeps: u64,
    /// Sends that found the queue full (`Block`) and went to sleep to wait
    /// for room (also one whose deadline then passed), counted the same
    /// way. A `Spin` kernel's ring does not count them (0).
    #[serde(default)]
    pub send_sleeps: u64,
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

#[cfg(test)]
mod tests {
    use super::QueueStats;

    /// The counters as they were before the sleep counts: what a peer of
    /// an earlier version sends.
    #[derive(serde::Serialize)]
    struct Earlier {
        capacity: usize,
        enqueued: u64,
        dequeued: u64,
        dropped: u64,
        rejected: u64,
        timed_out: u64,
        closed_rejections: u64,
        depth: usize,
        peak_depth: usize,
        band_depths: [usize; 4],
    }

    /// A snapshot without the sleep counts still decodes (they read as 0),
    /// in MessagePack's positional and named forms and in JSON.
    #[test]
    fn a_snapshot_without_sleep_counts_still_decodes() {
        let earlier = Earlier {
            capacity: 8,
            enqueued: 5,
            dequeued: 3,
            dropped: 1,
            rejected: 2,
            timed_out: 0,
            closed_rejections: 0,
            depth: 1,
            peak_depth: 4,
            band_depths: [0, 1, 0, 0],
        };
        let want = QueueStats {
            capacity: 8,
            enqueued: 5,
            dequeued: 3,
            dropped: 1,
            rejected: 2,
            depth: 1,
            peak_depth: 4,
            band_depths: [0, 1, 0, 0],
            ..QueueStats::default()
        };
        let positional: QueueStats = rmp_serde::from_slice(&rmp_serde::to_vec(&earlier).unwrap()).unwrap();
        let named: QueueStats = rmp_serde::from_slice(&rmp_serde::to_vec_named(&earlier).unwrap()).unwrap();
        let json: QueueStats = serde_json::from_str(&serde_json::to_string(&earlier).unwrap()).unwrap();
        assert_eq!((positional, named), (want.clone(), want.clone()));
        assert_eq!(json, want);
    }
}
