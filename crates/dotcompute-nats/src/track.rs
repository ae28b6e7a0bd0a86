//! Loss and duplicate bookkeeping of a receiving endpoint.
//!
//! - [`SeqTracker`]: per source (a publisher id in core delivery, the stream
//!   in JetStream delivery), the lowest and highest sequence numbers seen and
//!   how many distinct numbers were seen. A sole receiver of a source has
//!   lost `highest − lowest + 1 − distinct` of its messages (counting from
//!   the lowest it saw: what was published before it listened is not its
//!   loss); replicas sharing a source report their progress so that the
//!   losses are counted across them (see [`losses_across`]). From a
//!   publisher ([`SeqTracker::record`]), a number below the first one seen
//!   is a late arrival, not a duplicate, when it is at most
//!   [`EARLY_WINDOW`] below it (a publisher that numbers its messages out of
//!   order: the first one a receiver sees need not be the lowest). A
//!   stream's numbers ([`SeqTracker::record_stream`]) are given in order by
//!   the server, so one below the first seen is a redelivery of what this
//!   receiver did not take (another replica did, or it came before it
//!   listened): not counted.
//! - [`SeenSet`]: the ids of the last N processed messages, to skip a
//!   redelivered copy (JetStream).
//!
//! Invariants: `distinct ≤ highest − lowest + 1` for every source; a sequence number seen
//! twice is counted once (the second is a duplicate); memory is bounded
//! (at most [`MAX_SOURCES`] sources, the least recently heard of is
//! forgotten; the seen set keeps its capacity).

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Sources a tracker remembers.
pub const MAX_SOURCES: usize = 1024;
/// Sources a heartbeat reports.
pub const REPORTED_SOURCES: usize = 64;

/// The progress of one source at one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceProgress {
    /// The source: a publisher id, or `stream:NAME`.
    pub source: String,
    /// Lowest sequence number seen (the first one seen, unless a lower one
    /// arrived after it).
    pub first: u64,
    /// Highest sequence number seen.
    pub highest: u64,
    /// Distinct sequence numbers seen.
    pub distinct: u64,
}

impl SourceProgress {
    /// Messages of this source this receiver never saw (below the highest).
    pub fn gap(&self) -> u64 {
        span(self.first, self.highest).saturating_sub(self.distinct)
    }
}

#[derive(Debug, Clone)]
struct Progress {
    /// The first number seen: the base of `settled` and `above`.
    first: u64,
    /// The lowest number seen (`first`, or one of `early`).
    lowest: u64,
    /// Numbers below `first` that were seen (at most [`EARLY_WINDOW`] below).
    early: HashSet<u64>,
    highest: u64,
    distinct: u64,
    /// Every number ≤ this was seen, or was given up as lost (more than
    /// [`REORDER_WINDOW`] below the highest).
    settled: u64,
    /// Numbers above `settled` that were seen.
    above: HashSet<u64>,
    touched: u64,
}

/// How far below the highest number a missing one may still arrive late;
/// older missing numbers are settled as lost, which keeps memory bounded.
pub const REORDER_WINDOW: u64 = 65_536;

/// How far below the first number a receiver saw a number may still
/// arrive and be taken as late (not as a duplicate). Lower numbers were
/// published, as far as this receiver can tell, before it listened.
pub const EARLY_WINDOW: u64 = 1_024;

/// What one recorded sequence number was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Above every number seen so far, after `gap` missing numbers.
    New {
        /// Numbers skipped over (0 when it was the next one).
        gap: u64,
    },
    /// A number already seen (or settled).
    Duplicate,
    /// A number below the highest that had been missing (it arrived late).
    Late,
}

/// Per-source sequence progress (see the module doc).
#[derive(Debug, Default)]
pub struct SeqTracker {
    sources: HashMap<String, Progress>,
    clock: u64,
}

impl SeqTracker {
    /// Records number `seq` (from 1) of publisher `source`; a number up to
    /// [`EARLY_WINDOW`] below the first one seen is late, not a duplicate.
    pub fn record(&mut self, source: &str, seq: u64) -> Seen {
        self.record_with(source, seq, EARLY_WINDOW)
    }

    /// Records stream sequence number `seq` (from 1) of stream `source`:
    /// numbered in order by the server, so a number below the first one
    /// seen is a [`Seen::Duplicate`] (a redelivery of a message this
    /// receiver did not take first).
    pub fn record_stream(&mut self, source: &str, seq: u64) -> Seen {
        self.record_with(source, seq, 0)
    }

    fn record_with(&mut self, source: &str, seq: u64, early_window: u64) -> Seen {
        self.clock += 1;
        let clock = self.clock;
        if !self.sources.contains_key(source) && self.sources.len() >= MAX_SOURCES {
            if let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, p)| p.touched)
                .map(|(k, _)| k.clone())
            {
                self.sources.remove(&oldest);
            }
        }
        let p = self.sources.entry(source.to_string()).or_insert(Progress {
            first: seq,
            lowest: seq,
            early: HashSet::new(),
            highest: seq.saturating_sub(1),
            distinct: 0,
            settled: seq.saturating_sub(1),
            above: HashSet::new(),
            touched: clock,
        });
        p.touched = clock;
        if seq < p.first {
            // Below the first number seen: late if near enough and new
            // (and not older than the numbers given up below the highest).
            let near = p.first - seq <= early_window && seq > p.highest.saturating_sub(REORDER_WINDOW);
            if seq == 0 || !near || !p.early.insert(seq) {
                return Seen::Duplicate;
            }
            p.lowest = p.lowest.min(seq);
            p.distinct += 1;
            return Seen::Late;
        }
        if seq <= p.settled || p.above.contains(&seq) {
            return Seen::Duplicate;
        }
        p.distinct += 1;
        let seen = if seq > p.highest {
            let gap = seq - p.highest - 1;
            p.highest = seq;
            Seen::New { gap }
        } else {
            Seen::Late
        };
        p.above.insert(seq);
        while p.above.remove(&(p.settled + 1)) {
            p.settled += 1;
        }
        // Give up on numbers too far below the highest: bounded memory.
        let floor = p.highest.saturating_sub(REORDER_WINDOW);
        if p.settled < floor {
            p.settled = floor;
            p.above.retain(|&n| n > floor);
            while p.above.remove(&(p.settled + 1)) {
                p.settled += 1;
            }
        }
        seen
    }

    /// Σ `highest − lowest + 1 − distinct` over the sources: what a sole receiver lost.
    pub fn gaps(&self) -> u64 {
        self.sources
            .values()
            .map(|p| span(p.lowest, p.highest).saturating_sub(p.distinct))
            .sum()
    }

    /// The most recently active sources' progress (at most `limit`).
    pub fn progress(&self, limit: usize) -> Vec<SourceProgress> {
        let mut all: Vec<(&String, &Progress)> = self.sources.iter().collect();
        all.sort_by_key(|(_, p)| std::cmp::Reverse(p.touched));
        all.into_iter()
            .take(limit)
            .map(|(k, p)| SourceProgress {
                source: k.clone(),
                first: p.lowest,
                highest: p.highest,
                distinct: p.distinct,
            })
            .collect()
    }
}

/// How many numbers `first..=highest` holds (0 before anything was seen).
fn span(first: u64, highest: u64) -> u64 {
    if highest < first {
        0
    } else {
        highest - first + 1
    }
}

/// Losses across replicas that share sources: for each source, the numbers
/// between the lowest first and the highest number any replica saw, minus
/// the distinct numbers all of them saw.
pub fn losses_across<'a>(replicas: impl IntoIterator<Item = &'a [SourceProgress]>) -> u64 {
    let mut merged: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for progress in replicas {
        for p in progress {
            let e = merged.entry(p.source.as_str()).or_insert((u64::MAX, 0, 0));
            e.0 = e.0.min(p.first);
            e.1 = e.1.max(p.highest);
            e.2 += p.distinct;
        }
    }
    merged.values().map(|(f, h, d)| span(*f, *h).saturating_sub(*d)).sum()
}

/// The ids of the last `capacity` processed messages.
#[derive(Debug)]
pub struct SeenSet {
    set: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    capacity: usize,
}

impl SeenSet {
    /// A set remembering `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        SeenSet {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `id` was processed (among the last `capacity`).
    pub fn contains(&self, id: &Uuid) -> bool {
        self.set.contains(id)
    }

    /// Remembers `id`; forgets the oldest beyond capacity. False if known.
    pub fn insert(&mut self, id: Uuid) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_starts_at_the_lowest_number_seen() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record("a", 100), Seen::New { gap: 0 });
        assert_eq!(t.record("a", 102), Seen::New { gap: 1 });
        assert_eq!(t.gaps(), 1);
        assert_eq!(t.progress(1)[0].first, 100);
        // A number below the first one seen came late (a publisher that
        // numbers out of order): delivered once, counted from then on.
        assert_eq!(t.record("a", 99), Seen::Late);
        assert_eq!(t.record("a", 99), Seen::Duplicate);
        assert_eq!(t.progress(1)[0].first, 99);
        assert_eq!(t.gaps(), 1, "99..=102 less 99, 100, 102");
        assert_eq!(t.record("a", 97), Seen::Late);
        assert_eq!(t.gaps(), 2, "98 and 101 missing");
        assert_eq!(t.record("a", 98), Seen::Late);
        assert_eq!(t.record("a", 101), Seen::Late);
        assert_eq!(t.gaps(), 0);
        // Further below the first than the window: published before this
        // receiver listened, as far as it can tell.
        assert_eq!(t.record("c", 5000), Seen::New { gap: 0 });
        assert_eq!(t.record("c", 5000 - EARLY_WINDOW - 1), Seen::Duplicate);
        assert_eq!(t.record("c", 5000 - EARLY_WINDOW), Seen::Late);
        assert_eq!(t.record("b", 5), Seen::New { gap: 0 });
        assert_eq!(t.record("b", 0), Seen::Duplicate, "numbers start at 1");
    }

    #[test]
    fn gaps_are_counted_once_and_late_arrivals_fill_them() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record("a", 1), Seen::New { gap: 0 });
        assert_eq!(t.record("a", 2), Seen::New { gap: 0 });
        assert_eq!(t.record("a", 5), Seen::New { gap: 2 });
        assert_eq!(t.gaps(), 2);
        assert_eq!(t.record("a", 5), Seen::Duplicate);
        assert_eq!(t.record("a", 2), Seen::Duplicate);
        assert_eq!(t.record("a", 3), Seen::Late);
        assert_eq!(t.gaps(), 1);
        assert_eq!(t.record("a", 3), Seen::Duplicate);
        assert_eq!(t.record("a", 4), Seen::Late);
        assert_eq!(t.gaps(), 0);
        assert_eq!(t.record("b", 1), Seen::New { gap: 0 });
        assert_eq!(t.record("b", 4), Seen::New { gap: 2 });
        assert_eq!(t.gaps(), 2);
        let p = t.progress(10);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source, "b");
    }

    #[test]
    fn a_model_check_of_the_tracker_against_a_set() {
        // Pseudo-random orders with duplicates: the tracker's distinct count
        // equals a plain set's, and gaps = highest - distinct.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200 {
            let mut t = SeqTracker::default();
            let mut model = HashSet::new();
            t.record("s", 1);
            model.insert(1u64);
            for _ in 0..100 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let seq = 1 + x % 40;
                let seen = t.record("s", seq);
                let fresh = model.insert(seq);
                assert_eq!(fresh, seen != Seen::Duplicate, "seq {seq}: {seen:?}");
                let highest = *model.iter().max().unwrap();
                assert_eq!(t.gaps(), highest - model.len() as u64);
            }
        }
    }

    #[test]
    fn a_model_check_with_any_first_number() {
        // The first number seen is anywhere in 1..=60 and the others come
        // in any order: every number is taken once (late or new, never a
        // duplicate the first time), and gaps = highest - lowest + 1 - distinct.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300 {
            let mut t = SeqTracker::default();
            let mut model = HashSet::new();
            for _ in 0..120 {
                let seq = 1 + next() % 60;
                let seen = t.record("s", seq);
                let fresh = model.insert(seq);
                assert_eq!(fresh, seen != Seen::Duplicate, "seq {seq}: {seen:?}");
                let (lo, hi) = (*model.iter().min().unwrap(), *model.iter().max().unwrap());
                assert_eq!(t.gaps(), hi - lo + 1 - model.len() as u64);
                assert_eq!(t.progress(1)[0].first, lo);
            }
        }
    }

    #[test]
    fn a_stream_number_below_the_first_is_a_redelivery() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record_stream("stream:s", 100), Seen::New { gap: 0 });
        assert_eq!(t.record_stream("stream:s", 95), Seen::Duplicate);
        assert_eq!(t.record_stream("stream:s", 101), Seen::New { gap: 0 });
        assert_eq!(t.progress(1)[0].first, 100);
        assert_eq!(t.gaps(), 0, "what came before the first is not this receiver's loss");
    }

    #[test]
    fn losses_across_replicas_add_what_each_saw() {
        let a = vec![SourceProgress {
            source: "p".into(),
            first: 1,
            highest: 10,
            distinct: 4,
        }];
        let b = vec![SourceProgress {
            source: "p".into(),
            first: 2,
            highest: 9,
            distinct: 5,
        }];
        assert_eq!(losses_across([a.as_slice(), b.as_slice()]), 1);
    }

    #[test]
    fn the_tracker_forgets_the_least_recent_source_beyond_its_bound() {
        let mut t = SeqTracker::default();
        for i in 0..(MAX_SOURCES + 10) {
            t.record(&i.to_string(), 1);
        }
        assert_eq!(t.progress(usize::MAX).len(), MAX_SOURCES);
    }

    #[test]
    fn the_seen_set_is_bounded() {
        let mut s = SeenSet::new(3);
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            assert!(s.insert(*id));
        }
        assert!(!s.insert(ids[4]));
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&ids[0]));
        assert!(s.contains(&ids[4]));
    }
}
