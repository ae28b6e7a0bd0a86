//! # dotcompute-workloads
//!
//! Application workloads built on [`dotcompute`]: the ones PyDotCompute
//! benchmarks, implemented properly, with the exact data of its benchmarks.
//!
//! - [`graph`]: a CSR graph, loaders for SNAP edge lists and Matrix Market,
//!   and PyDotCompute's random-graph generators reproduced bit for bit.
//! - [`pagerank`]: PageRank by power iteration on all cores (rayon), with
//!   correct dangling-node handling or PyDotCompute's, and as a ring kernel
//!   holding the graph ([`pagerank::actor`]).
//! - [`anomaly`]: a streaming EMA z-score detector run per point, in
//!   stateless micro-batches, and as ring kernels (async, thread and spin tiers),
//!   all giving identical answers; PyDotCompute's synthetic stream with
//!   labels; a reader for columns of values.
//! - [`numpy_rng`]: numpy's `default_rng` (SeedSequence, PCG64 and the
//!   distributions those generators use), bit-exact, so that the synthetic
//!   data equals PyDotCompute's for the same seed.
//!
//! Each workload has a `run(&Options) -> Result<Run, Error>` entry point
//! whose report is `Serialize`, and a `bench` for the comparisons: the
//! `dotcompute` command line is a thin layer over them.
//!
//! Invariant shared by the modules: no panic on user input; malformed input
//! and impossible options are errors that say where and why; sizes taken
//! from input are checked against [`limits`] before anything is allocated
//! for them.

// No unwrap, expect or panic on any path a user can reach.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod anomaly;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod limits;
pub mod numpy_rng;
pub mod pagerank;
pub mod progress;

use serde::Serialize;

/// Minimum, median and maximum of repeated timings, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// Fastest.
    pub min: f64,
    /// Median (the upper one for an even count).
    pub median: f64,
    /// Slowest.
    pub max: f64,
}

impl Timing {
    /// Summarises samples (all zero for none).
    ///
    /// ```
    /// use dotcompute_workloads::Timing;
    /// let t = Timing::of(&[3.0, 1.0, 2.0]);
    /// assert_eq!((t.min, t.median, t.max), (1.0, 2.0, 3.0));
    /// ```
    pub fn of(samples: &[f64]) -> Timing {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return Timing {
                min: 0.0,
                median: 0.0,
                max: 0.0,
            };
        }
        Timing {
            min: s[0],
            median: s[s.len() / 2],
            max: s[s.len() - 1],
        }
    }
}
