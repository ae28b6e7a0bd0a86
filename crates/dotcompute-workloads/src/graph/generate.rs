//! PyDotCompute's random graph generators, reproduced exactly.
//!
//! Both draw uniform node ids with numpy's `default_rng(seed)` and keep a pair
//! `(src, dst)` when `src != dst` and the pair is new, until `int(n * epn)`
//! edges are kept; edges come out in the order they were kept:
//! - [`GraphGenerator::Benchmark`] is `generate_random_graph` of
//!   `benchmarks/pagerank_benchmark.py`: two scalar `rng.integers(0, n)` calls
//!   per candidate (source, then destination);
//! - [`GraphGenerator::Chunked`] is `generate_large_graph_chunked` of
//!   `benchmarks/extended_benchmark.py`: chunks of
//!   `min(min(target, 1_000_000), 2 * remaining)` sources, then as many
//!   destinations, walked pairwise.
//!
//! With [`numpy_rng`](crate::numpy_rng) bit-exact to numpy, the
//! edge sequences are identical to PyDotCompute's for the same arguments
//! (the tests check digests computed with numpy). The generated graphs have
//! no self-loops and no repeated edges; nodes without any edge may exist.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::{Graph, GraphError, MAX_NODES};
use crate::numpy_rng::NumpyGenerator;

/// Which of PyDotCompute's generators to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphGenerator {
    /// `pagerank_benchmark.generate_random_graph` (scalar draws).
    Benchmark,
    /// `extended_benchmark.generate_large_graph_chunked` (array draws), the
    /// one PyDotCompute uses for 10K–1M nodes (the default).
    #[default]
    Chunked,
}

impl std::str::FromStr for GraphGenerator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "benchmark" | "scalar" => Ok(GraphGenerator::Benchmark),
            "chunked" | "large" => Ok(GraphGenerator::Chunked),
            _ => Err(format!("unknown generator {s:?} (expected benchmark or chunked)")),
        }
    }
}

impl GraphGenerator {
    /// Generates the edges (in generation order).
    pub fn edges(self, num_nodes: usize, edges_per_node: f64, seed: u64) -> Result<(Vec<u32>, Vec<u32>), GraphError> {
        let target = target_edges(num_nodes, edges_per_node)?;
        Ok(match self {
            GraphGenerator::Benchmark => benchmark_edges(num_nodes, target, seed),
            GraphGenerator::Chunked => chunked_edges(num_nodes, target, seed),
        })
    }

    /// Generates the graph.
    pub fn graph(self, num_nodes: usize, edges_per_node: f64, seed: u64) -> Result<Graph, GraphError> {
        let (src, dst) = self.edges(num_nodes, edges_per_node, seed)?;
        Graph::from_edges(num_nodes, &src, &dst)
    }
}

/// `generate_random_graph(n, edges_per_node, seed)` of PyDotCompute's
/// PageRank benchmark, as a [`Graph`].
///
/// ```
/// use dotcompute_workloads::graph::pydotcompute_random_graph;
///
/// // numpy/PyDotCompute: generate_random_graph(100, 2.0)[0][:3] == [(8, 77), (65, 43), (43, 85)]
/// let g = pydotcompute_random_graph(100, 2.0, 42).unwrap();
/// assert_eq!(g.num_edges(), 200);
/// assert!(g.in_neighbors(77).contains(&8));
/// ```
pub fn pydotcompute_random_graph(num_nodes: usize, edges_per_node: f64, seed: u64) -> Result<Graph, GraphError> {
    GraphGenerator::Benchmark.graph(num_nodes, edges_per_node, seed)
}

/// `generate_large_graph_chunked(n, edges_per_node, seed)` of PyDotCompute's
/// extended benchmark, as a [`Graph`].
pub fn pydotcompute_chunked_graph(num_nodes: usize, edges_per_node: f64, seed: u64) -> Result<Graph, GraphError> {
    GraphGenerator::Chunked.graph(num_nodes, edges_per_node, seed)
}

fn target_edges(num_nodes: usize, edges_per_node: f64) -> Result<usize, GraphError> {
    let bad = |parameter: &'static str, value: String, reason: String| GraphError::InvalidParameter {
        parameter,
        value,
        reason,
    };
    if num_nodes > MAX_NODES {
        return Err(bad(
            "num_nodes",
            num_nodes.to_string(),
            format!("node ids are u32: at most {MAX_NODES}"),
        ));
    }
    if !edges_per_node.is_finite() || edges_per_node < 0.0 {
        return Err(bad(
            "edges_per_node",
            edges_per_node.to_string(),
            "must be a finite, non-negative number".into(),
        ));
    }
    // Python: int(num_nodes * edges_per_node), truncating toward zero.
    let target = (num_nodes as f64 * edges_per_node).trunc();
    let n = num_nodes as f64;
    let possible = n * (n - 1.0).max(0.0);
    if target > possible {
        return Err(bad(
            "edges_per_node",
            edges_per_node.to_string(),
            format!(
                "{num_nodes} nodes have only {possible} distinct non-loop edges, {target} were asked for \
                 (PyDotCompute would loop forever)"
            ),
        ));
    }
    if target > u32::MAX as f64 * 4.0 {
        return Err(GraphError::TooLarge(format!("{target} edges")));
    }
    Ok(target as usize)
}

/// An insert-only hash set of `(src, dst)` pairs, open addressing.
struct PairSet {
    slots: Vec<u64>,
    shift: u32,
}

impl PairSet {
    const EMPTY: u64 = u64::MAX; // (u32::MAX, u32::MAX) is a self-loop: never stored.

    fn with_capacity(n: usize) -> Self {
        let cap = (n.max(8) * 2).next_power_of_two();
        PairSet {
            slots: vec![Self::EMPTY; cap],
            shift: 64 - cap.trailing_zeros(),
        }
    }

    /// Inserts; false if it was there.
    #[inline]
    fn insert(&mut self, key: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let slot = self.slots[i];
            if slot == Self::EMPTY {
                self.slots[i] = key;
                return true;
            }
            if slot == key {
                return false;
            }
            i = (i + 1) & mask;
        }
    }
}

fn benchmark_edges(num_nodes: usize, target: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut rng = NumpyGenerator::new(seed);
    let mut set = PairSet::with_capacity(target);
    let mut src = Vec::with_capacity(target);
    let mut dst = Vec::with_capacity(target);
    let n = num_nodes as i64;
    while src.len() < target {
        let s = rng.integers(0, n) as u32;
        let d = rng.integers(0, n) as u32;
        if s != d && set.insert((u64::from(s) << 32) | u64::from(d)) {
            src.push(s);
            dst.push(d);
        }
    }
    (src, dst)
}

fn chunked_edges(num_nodes: usize, target: usize, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut rng = NumpyGenerator::new(seed);
    let mut set = PairSet::with_capacity(target);
    let mut src = Vec::with_capacity(target);
    let mut dst = Vec::with_capacity(target);
    let n = num_nodes as i64;
    let chunk_size = target.min(1_000_000);
    let mut srcs: Vec<i64> = Vec::new();
    let mut dsts: Vec<i64> = Vec::new();
    while src.len() < target {
        let remaining = target - src.len();
        let chunk = chunk_size.min(remaining * 2);
        srcs.resize(chunk, 0);
        dsts.resize(chunk, 0);
        rng.integers_fill(0, n, &mut srcs);
        rng.integers_fill(0, n, &mut dsts);
        for (&s, &d) in srcs.iter().zip(&dsts) {
            let (s, d) = (s as u32, d as u32);
            if s != d && set.insert((u64::from(s) << 32) | u64::from(d)) {
                src.push(s);
                dst.push(d);
                if src.len() >= target {
                    break;
                }
            }
        }
    }
    (src, dst)
}

/// Writes edges as a SNAP-style edge list (`src<TAB>dst` per line, after a
/// `#` comment line naming the counts), readable by
/// [`load_graph`](super::load_graph).
pub fn write_edge_list(path: &Path, num_nodes: usize, src: &[u32], dst: &[u32]) -> Result<(), GraphError> {
    let header = format!("# directed graph: {num_nodes} nodes, {} edges (src dst)\n", src.len());
    write_edges(path, Some(&header), src, dst)
}

/// Writes edges as a plain edge list: only `src<TAB>dst` lines, no comment.
/// This is the format both [`load_graph`](super::load_graph) and readers
/// without comment support (igraph's `Graph.Read_Edgelist`) accept, so the
/// two can load the very same file.
pub fn write_plain_edge_list(path: &Path, src: &[u32], dst: &[u32]) -> Result<(), GraphError> {
    write_edges(path, None, src, dst)
}

fn write_edges(path: &Path, header: Option<&str>, src: &[u32], dst: &[u32]) -> Result<(), GraphError> {
    let io = |source| GraphError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    if let Some(header) = header {
        w.write_all(header.as_bytes()).map_err(io)?;
    }
    let mut line = Vec::with_capacity(32);
    for (&s, &d) in src.iter().zip(dst) {
        line.clear();
        push_u32(&mut line, s);
        line.push(b'\t');
        push_u32(&mut line, d);
        line.push(b'\n');
        w.write_all(&line).map_err(io)?;
    }
    w.flush().map_err(io)
}

fn push_u32(out: &mut Vec<u8>, mut v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest the numpy reference script computed:
    /// `h = (h * 1000003 + s * n + d) % (2**61 - 1)` over the edges in order.
    fn digest(src: &[u32], dst: &[u32], n: usize) -> u64 {
        const P: u128 = (1 << 61) - 1;
        let mut h: u128 = 0;
        for (&s, &d) in src.iter().zip(dst) {
            h = (h * 1_000_003 + u128::from(s) * n as u128 + u128::from(d)) % P;
        }
        h as u64
    }

    #[test]
    fn benchmark_generator_matches_pydotcompute() {
        for (n, epn, len, first, want) in [
            (100, 2.0, 200, [(8, 77), (65, 43), (43, 85)], 8091058416366571u64),
            (
                1000,
                10.0,
                10_000,
                [(89, 773), (654, 438), (433, 858)],
                589668829670802214,
            ),
        ] {
            let (s, d) = GraphGenerator::Benchmark.edges(n, epn, 42).unwrap();
            assert_eq!(s.len(), len);
            let got: Vec<(u32, u32)> = s.iter().copied().zip(d.iter().copied()).take(3).collect();
            assert_eq!(got, first);
            assert_eq!(digest(&s, &d, n), want, "n={n}");
        }
    }

    #[test]
    fn chunked_generator_matches_pydotcompute() {
        let (s, d) = GraphGenerator::Chunked.edges(10_000, 5.0, 42).unwrap();
        assert_eq!(s.len(), 50_000);
        assert_eq!((s[0], d[0]), (892, 937));
        assert_eq!((s[49_999], d[49_999]), (5038, 666));
        assert_eq!(digest(&s, &d, 10_000), 1710622881165493010);
    }

    #[test]
    fn impossible_targets_are_refused() {
        assert!(GraphGenerator::Benchmark.edges(3, 2.5, 42).is_err()); // 7 > 3*2
        assert!(GraphGenerator::Benchmark.edges(3, 2.0, 42).is_ok()); // all 6 edges
        assert!(GraphGenerator::Chunked.edges(10, f64::NAN, 42).is_err());
        assert!(GraphGenerator::Chunked.edges(10, -1.0, 42).is_err());
        let (s, _) = GraphGenerator::Chunked.edges(0, 5.0, 42).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn pair_set_refuses_repeats() {
        // The generators insert at most `capacity` keys, half the slots.
        let mut set = PairSet::with_capacity(100);
        assert!(set.insert(5));
        assert!(!set.insert(5));
        for k in 0..99 {
            assert!(set.insert(k << 32 | 1));
        }
        for k in 0..99 {
            assert!(!set.insert(k << 32 | 1));
        }
    }
}
