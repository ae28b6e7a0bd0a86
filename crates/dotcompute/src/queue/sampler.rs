//! Latency sampling: which messages get their queue wait or handler time
//! measured, so that the clock is read for one message in `every` instead
//! of for each (a time-stamp read costs about 23 ns on the 2-vCPU VMs the
//! benchmarks run on, as much as a queue push).
//!
//! Invariant: with `every == n > 0`, of each run of `n` consecutive ticks
//! exactly one is sampled — the first tick, then every `n`-th after it; with
//! `every == 0` no tick is. A sampled stamp is never 0, so 0 can mean "not
//! measured" wherever a stamp is stored. Counters are never sampled: only
//! the clock readings are.

use super::clock::{self, Stamp};

/// Decides, tick by tick, which messages are measured.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    every: u32,
    /// Ticks left until the next sampled one (0: the next tick is sampled).
    left: u32,
}

impl Sampler {
    /// Samples one tick in `every` (none when `every` is 0).
    pub(crate) const fn new(every: u32) -> Self {
        Sampler { every, left: 0 }
    }

    /// Counts one message; true if it is the one measured.
    #[inline]
    pub(crate) fn tick(&mut self) -> bool {
        if self.every == 0 {
            false
        } else if self.left == 0 {
            self.left = self.every - 1;
            true
        } else {
            self.left -= 1;
            false
        }
    }

    /// Counts `n` messages at once; returns how many of them are measured
    /// (the same as `n` calls of [`tick`](Self::tick)).
    pub(crate) fn ticks(&mut self, n: u64) -> u64 {
        if self.every == 0 || n == 0 {
            return 0;
        }
        let (left, every) = (u64::from(self.left), u64::from(self.every));
        if n <= left {
            // n <= left < 2^32.
            self.left = (left - n) as u32;
            return 0;
        }
        // Sampled: positions left, left + every, ... below n.
        let count = (n - 1 - left) / every + 1;
        let last = left + (count - 1) * every;
        // Ticks after the last sampled one: n - 1 - last < every.
        self.left = (every - 1 - (n - 1 - last)) as u32;
        count
    }

    /// Counts a run of `n` messages at once (as [`ticks`](Self::ticks)
    /// does); returns how many of them are measured and their offsets
    /// within the run, in increasing order.
    pub(crate) fn picks(&mut self, n: u64) -> (u64, std::iter::StepBy<std::ops::Range<u64>>) {
        let first = u64::from(self.left);
        let count = self.ticks(n);
        if count == 0 {
            return (0, (0..0).step_by(1));
        }
        // Sampled: positions first, first + every, ... below n.
        (count, (first..n).step_by(self.every as usize))
    }

    /// Counts one message of a batch: `shared` (read from the clock on the
    /// batch's first measured message, so the batch reads it at most once)
    /// if it is measured, else 0. `shared` starts at 0.
    #[inline]
    pub(crate) fn stamp_in_batch(&mut self, shared: &mut Stamp) -> Stamp {
        if !self.tick() {
            0
        } else {
            if *shared == 0 {
                *shared = now();
            }
            *shared
        }
    }

    /// Counts one message: a clock reading if it is measured, else 0.
    #[inline]
    pub(crate) fn stamp(&mut self) -> Stamp {
        if self.tick() {
            now()
        } else {
            0
        }
    }
}

/// A clock reading that is never 0 (0 marks an unmeasured message).
#[inline]
pub(crate) fn now() -> Stamp {
    clock::now().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_every_n_ticks_is_sampled_starting_with_the_first() {
        for every in 1..=9u32 {
            let mut s = Sampler::new(every);
            let picked: Vec<usize> = (0..40).filter(|_| s.tick()).collect();
            let want: Vec<usize> = (0..40).step_by(every as usize).collect();
            assert_eq!(picked, want, "every {every}");
        }
        let mut off = Sampler::new(0);
        assert!((0..100).all(|_| !off.tick() && off.stamp() == 0));
    }

    proptest::proptest! {
        /// Counting a run of messages at once picks as many as counting them
        /// one by one, and leaves the sampler in the same place.
        #[test]
        fn ticks_equal_that_many_single_ticks(
            every in 0u32..12,
            runs in proptest::collection::vec(0u64..40, 0..20),
        ) {
            let (mut bulk, mut single) = (Sampler::new(every), Sampler::new(every));
            for n in runs {
                let want = (0..n).filter(|_| single.tick()).count() as u64;
                proptest::prop_assert_eq!(bulk.ticks(n), want);
                proptest::prop_assert_eq!(bulk.left, single.left);
            }
        }
    }

    proptest::proptest! {
        /// The offsets a run picks are those single ticks would pick.
        #[test]
        fn picks_are_the_single_ticks_sampled(
            every in 0u32..12,
            runs in proptest::collection::vec(0u64..40, 0..20),
        ) {
            let (mut bulk, mut single) = (Sampler::new(every), Sampler::new(every));
            for n in runs {
                let want: Vec<u64> = (0..n).filter(|_| single.tick()).collect();
                let (count, picks) = bulk.picks(n);
                proptest::prop_assert_eq!(count, want.len() as u64);
                proptest::prop_assert_eq!(picks.collect::<Vec<_>>(), want);
                proptest::prop_assert_eq!(bulk.left, single.left);
            }
        }
    }

    #[test]
    fn sampled_stamps_are_never_zero() {
        let mut s = Sampler::new(2);
        let stamps: Vec<Stamp> = (0..6).map(|_| s.stamp()).collect();
        for (i, st) in stamps.iter().enumerate() {
            assert_eq!(*st != 0, i % 2 == 0, "{stamps:?}");
        }
    }
}
