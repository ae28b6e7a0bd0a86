//! Progress of a long workload run (PageRank's load and solve), readable
//! from another thread while the run goes on: what a progress bar shows.
//!
//! Invariant: the run only stores into relaxed atomics (a handful per read
//! chunk or iteration): it never blocks, allocates or calls back into the
//! reader for it. A [`Snapshot`] holds each figure as of some moment during
//! the read; figures may come from slightly different moments.
//!
//! ```
//! use dotcompute_workloads::pagerank::{run, PagerankOptions};
//! use dotcompute_workloads::progress::Phase;
//!
//! let options = PagerankOptions::generated(1_000, 5.0);
//! let progress = options.progress.clone();
//! // A progress bar would poll `progress.snapshot()` from another thread.
//! let done = run(&options).unwrap();
//! let s = progress.snapshot();
//! assert_eq!(s.phase, Phase::Done);
//! assert_eq!(s.iteration, done.report.iterations);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// What a run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Not started.
    Waiting,
    /// Reading the input (see [`Snapshot::bytes_read`]).
    Reading,
    /// Parsing the input or generating the graph.
    Building,
    /// Power iteration (see [`Snapshot::iteration`]).
    Solving,
    /// Writing the ranks.
    Writing,
    /// Finished (successfully or not).
    Done,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::Waiting,
        Phase::Reading,
        Phase::Building,
        Phase::Solving,
        Phase::Writing,
        Phase::Done,
    ];

    fn index(self) -> u8 {
        Phase::ALL.iter().position(|p| *p == self).map_or(0, |i| i as u8)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Waiting => "waiting",
            Phase::Reading => "reading",
            Phase::Building => "building the graph",
            Phase::Solving => "solving",
            Phase::Writing => "writing the ranks",
            Phase::Done => "done",
        })
    }
}

/// The figures of a [`Progress`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The phase.
    pub phase: Phase,
    /// Input bytes read so far (compressed bytes for a gzip file).
    pub bytes_read: u64,
    /// The input's size, when known (a file; not standard input).
    pub bytes_total: Option<u64>,
    /// Power iterations finished.
    pub iteration: u32,
    /// The residual after the last finished iteration (in the configured
    /// norm; infinite before the first).
    pub residual: f64,
    /// The iteration limit of the solve.
    pub max_iterations: u32,
}

#[derive(Debug)]
struct State {
    phase: AtomicU8,
    bytes_read: AtomicU64,
    /// `u64::MAX`: unknown.
    bytes_total: AtomicU64,
    iteration: AtomicU32,
    residual_bits: AtomicU64,
    max_iterations: AtomicU32,
}

/// A shared progress record: the run writes it, anyone holding a clone
/// reads it. Clones share the record; [`Default`] makes a fresh one.
#[derive(Debug, Clone)]
pub struct Progress(Arc<State>);

impl Default for Progress {
    fn default() -> Self {
        Progress(Arc::new(State {
            phase: AtomicU8::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_total: AtomicU64::new(u64::MAX),
            iteration: AtomicU32::new(0),
            residual_bits: AtomicU64::new(f64::INFINITY.to_bits()),
            max_iterations: AtomicU32::new(0),
        }))
    }
}

/// Two handles are equal when they share a record.
impl PartialEq for Progress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Progress {
    /// A fresh record.
    pub fn new() -> Self {
        Progress::default()
    }

    /// The figures now.
    pub fn snapshot(&self) -> Snapshot {
        let s = &self.0;
        let phase = Phase::ALL
            .get(usize::from(s.phase.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(Phase::Waiting);
        let total = s.bytes_total.load(Ordering::Relaxed);
        Snapshot {
            phase,
            bytes_read: s.bytes_read.load(Ordering::Relaxed),
            bytes_total: (total != u64::MAX).then_some(total),
            iteration: s.iteration.load(Ordering::Relaxed),
            residual: f64::from_bits(s.residual_bits.load(Ordering::Relaxed)),
            max_iterations: s.max_iterations.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn phase(&self, phase: Phase) {
        self.0.phase.store(phase.index(), Ordering::Relaxed);
    }

    pub(crate) fn reading(&self, total: Option<u64>) {
        self.0.bytes_read.store(0, Ordering::Relaxed);
        self.0.bytes_total.store(total.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.phase(Phase::Reading);
    }

    pub(crate) fn read(&self, bytes: u64) {
        self.0.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn solving(&self, max_iterations: u32) {
        self.0.iteration.store(0, Ordering::Relaxed);
        self.0.residual_bits.store(f64::INFINITY.to_bits(), Ordering::Relaxed);
        self.0.max_iterations.store(max_iterations, Ordering::Relaxed);
        self.phase(Phase::Solving);
    }

    pub(crate) fn iterated(&self, iteration: u32, residual: f64) {
        self.0.residual_bits.store(residual.to_bits(), Ordering::Relaxed);
        self.0.iteration.store(iteration, Ordering::Relaxed);
    }
}

/// A reader that counts what passes through it into a [`Progress`].
pub(crate) struct Counted<'a, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'a Progress,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.read(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_trip_and_clones_share_the_record() {
        let p = Progress::new();
        let q = p.clone();
        assert_eq!(p, q);
        assert_ne!(p, Progress::new());
        assert_eq!(q.snapshot().phase, Phase::Waiting);
        assert_eq!(q.snapshot().bytes_total, None);
        p.reading(Some(100));
        p.read(40);
        p.read(2);
        let s = q.snapshot();
        assert_eq!((s.phase, s.bytes_read, s.bytes_total), (Phase::Reading, 42, Some(100)));
        p.solving(50);
        assert!(q.snapshot().residual.is_infinite());
        p.iterated(3, 1e-4);
        let s = q.snapshot();
        assert_eq!(
            (s.phase, s.iteration, s.residual, s.max_iterations),
            (Phase::Solving, 3, 1e-4, 50)
        );
        for phase in Phase::ALL {
            p.phase(phase);
            assert_eq!(q.snapshot().phase, phase);
        }
    }
}
