//! [`AtomicHistogram`]: a latency histogram that many threads record into
//! without a lock, read as an `hdrhistogram::Histogram` on demand.
//!
//! Invariants:
//! - every `record(v, n)` adds exactly `n` to exactly one counter, so the
//!   counts read back are exact once the recorders are done (a snapshot
//!   taken meanwhile sees each record whole or not at all);
//! - the counter of `v` is the one whose hdrhistogram bucket (3 significant
//!   digits) holds `v`: below 2048 each value has its own counter, above
//!   each power of two is split in 1024 equal sub-buckets. So percentiles
//!   read from a snapshot are exactly those an `hdrhistogram` with 3
//!   significant digits would give for the same values;
//! - values above [`MAX_VALUE`] are recorded as [`MAX_VALUE`].
//!
//! Counters live in chunks (one for the values below 2048, one per power of
//! two above), allocated on first use, so an idle histogram costs a few
//! hundred bytes and a busy one the 8–16 KiB chunks its values fall in.
//! Recording is one relaxed `fetch_add` (plus an acquire load of the chunk
//! pointer); no `unsafe` code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use hdrhistogram::Histogram;

/// Values below this have a counter each.
const LINEAR: u64 = 2048;
/// Sub-buckets per power of two above [`LINEAR`].
const SUB: u64 = 1024;
/// Largest value kept (one hour in nanoseconds); larger ones are clamped.
pub(crate) const MAX_VALUE: u64 = 3_600 * 1_000_000_000;
/// Chunk 0 holds `[0, 2048)`; chunk `k ≥ 1` holds `[2^(10+k), 2^(11+k))`.
const CHUNKS: usize = (64 - MAX_VALUE.leading_zeros() - 10) as usize;

/// See the [module documentation](self).
pub(crate) struct AtomicHistogram {
    chunks: [OnceLock<Box<[AtomicU64]>>; CHUNKS],
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicHistogram").field("count", &self.count()).finish()
    }
}

/// The chunk and counter of `v` (already clamped).
#[inline]
fn index(v: u64) -> (usize, usize) {
    if v < LINEAR {
        (0, v as usize)
    } else {
        let power = 63 - v.leading_zeros(); // ≥ 11
        let chunk = power - 10;
        (chunk as usize, ((v >> chunk) - SUB) as usize)
    }
}

/// The lowest value of counter `slot` of `chunk`.
fn lowest(chunk: usize, slot: usize) -> u64 {
    if chunk == 0 {
        slot as u64
    } else {
        (slot as u64 + SUB) << chunk
    }
}

fn chunk_len(chunk: usize) -> usize {
    if chunk == 0 {
        LINEAR as usize
    } else {
        SUB as usize
    }
}

impl AtomicHistogram {
    pub(crate) fn new() -> Self {
        AtomicHistogram {
            chunks: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Adds `n` samples of value `v` (nanoseconds).
    #[inline]
    pub(crate) fn record(&self, v: u64, n: u64) {
        let (chunk, slot) = index(v.min(MAX_VALUE));
        let counters = self.chunks[chunk].get_or_init(|| (0..chunk_len(chunk)).map(|_| AtomicU64::new(0)).collect());
        if let Some(c) = counters.get(slot) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// [`record`](Self::record) for a sole writer: the caller holds the lock
    /// that every writer of this histogram takes (a queue's lock). A plain
    /// load and store instead of a locked add; readers still see each
    /// counter whole. Used by anything else at the same time, it could lose
    /// counts (never memory safety), so it is only called under that lock.
    #[inline]
    pub(crate) fn record_exclusive(&self, v: u64, n: u64) {
        let (chunk, slot) = index(v.min(MAX_VALUE));
        let counters = self.chunks[chunk].get_or_init(|| (0..chunk_len(chunk)).map(|_| AtomicU64::new(0)).collect());
        if let Some(c) = counters.get(slot) {
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// Samples recorded so far.
    pub(crate) fn count(&self) -> u64 {
        self.chunks
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|c| c.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The samples so far as an hdrhistogram (3 significant digits).
    pub(crate) fn snapshot(&self) -> Histogram<u64> {
        let mut h = crate::queue::state::new_wait_histogram();
        for (chunk, counters) in self.chunks.iter().enumerate() {
            let Some(counters) = counters.get() else { continue };
            for (slot, c) in counters.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let v = lowest(chunk, slot);
                    if h.record_n(v, n).is_err() {
                        h.saturating_record_n(v, n);
                    }
                }
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_cover_every_value_once_and_in_order() {
        assert_eq!(CHUNKS, 32);
        let mut last = (0usize, 0usize);
        for v in (0..100_000u64).chain([MAX_VALUE - 1, MAX_VALUE]) {
            let (c, s) = index(v);
            assert!(c < CHUNKS && s < chunk_len(c), "{v}");
            assert!((c, s) >= last, "{v}");
            assert!(lowest(c, s) <= v, "{v}");
            last = (c, s);
        }
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let h = std::sync::Arc::new(AtomicHistogram::new());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        h.record((i * 7919 + t) % 5_000_000, 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.count(), 200_000);
        assert_eq!(h.snapshot().len(), 200_000);
    }

    proptest! {
        /// The model: an hdrhistogram with 3 significant digits fed the same
        /// values. Counts, min, max and every percentile agree.
        #[test]
        fn agrees_with_hdrhistogram(values in proptest::collection::vec((0u64..u64::MAX, 1u64..4), 1..300)) {
            let ours = AtomicHistogram::new();
            let mut model = crate::queue::state::new_wait_histogram();
            for &(raw, n) in &values {
                // Spread over every magnitude, including beyond the clamp.
                let v = raw >> (raw % 64);
                ours.record(v, n);
                model.record_n(v.min(MAX_VALUE), n).unwrap();
            }
            let snap = ours.snapshot();
            prop_assert_eq!(snap.len(), model.len());
            prop_assert_eq!(ours.count(), model.len());
            prop_assert!(snap.equivalent(snap.min(), model.min()));
            prop_assert!(snap.equivalent(snap.max(), model.max()));
            for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                prop_assert_eq!(snap.value_at_quantile(q), model.value_at_quantile(q), "q {}", q);
            }
        }
    }
}
