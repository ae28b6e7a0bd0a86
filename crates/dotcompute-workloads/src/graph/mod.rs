//! Directed graphs in compressed sparse row form, their loaders and the
//! generators of PyDotCompute's benchmark graphs.
//!
//! A [`Graph`] stores the *incoming* edges of every node (CSR over
//! destinations: `in_offsets[v]..in_offsets[v + 1]` indexes the sources of
//! the edges into `v`), plus every node's out-degree. That is the layout a
//! pull-based PageRank reads: each node sums over its in-edges, so rows can
//! be computed in parallel without atomics.
//!
//! Invariants of a [`Graph`]:
//! - `in_offsets.len() == num_nodes + 1`, `in_offsets[0] == 0`, non-decreasing,
//!   `in_offsets[num_nodes] == num_edges`;
//! - every source id is `< num_nodes`, and `out_degree[u]` is the number of
//!   edges whose source is `u` (so `Σ out_degree == num_edges`);
//! - within a row, sources are in ascending order (a counting sort by
//!   destination, then a sort of each row), so the graph, and every result
//!   computed from it, does not depend on the order of the input edges;
//! - self-loops and repeated edges are kept as given (a multigraph): an edge
//!   listed twice counts twice in the out-degree and carries twice the rank,
//!   as in PyDotCompute's and scipy's COO-to-CSR construction. Use
//!   [`Graph::simplified`] to drop them;
//! - a weighted graph also has one finite, non-negative weight per in-edge
//!   (`in_weights`, row by row, rows sorted by source then weight) and every
//!   node's out-weight, the sum of its out-edges' weights added in CSR order.
//!
//! Node ids are `u32` (at most `u32::MAX` nodes). Each node has a *label*,
//! the id it had in the input (see [`NodeLabels`]), which is what output
//! files print.
//!
//! ```
//! use dotcompute_workloads::graph::Graph;
//!
//! // 0 -> 1, 0 -> 2, 1 -> 2, 2 -> 0
//! let g = Graph::from_edges(3, &[0, 0, 1, 2], &[1, 2, 2, 0]).unwrap();
//! assert_eq!(g.num_edges(), 4);
//! assert_eq!(g.in_neighbors(2), &[0, 1]);
//! assert_eq!(g.out_degree(0), 2);
//! ```

mod generate;
pub(crate) mod parse;

pub use generate::{
    pydotcompute_chunked_graph, pydotcompute_random_graph, write_edge_list, write_plain_edge_list, GraphGenerator,
};
pub use parse::{
    load_graph, parse_edge_list, parse_graph, parse_matrix_market, GraphFormat, LoadOptions, NodeIds, Weights,
};

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::limits::{try_vec, AllocError};

/// Errors from building, loading or generating a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The input is malformed at a given line (1-based).
    #[error("{input}:{line}: {message}")]
    Parse {
        /// The file name, or `<input>` for in-memory bytes.
        input: String,
        /// The 1-based line number.
        line: u64,
        /// What is wrong there.
        message: String,
    },
    /// An edge names a node that does not exist.
    #[error("edge {edge} has node id {id}, but the graph has {num_nodes} nodes")]
    NodeOutOfRange {
        /// Index of the edge in the input.
        edge: usize,
        /// The offending id.
        id: u64,
        /// The number of nodes.
        num_nodes: usize,
    },
    /// The graph would not fit the `u32` node ids or the machine.
    #[error("graph too large: {0}")]
    TooLarge(String),
    /// The input asks for more memory than the limit allows.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// An allocation driven by the input failed.
    #[error(transparent)]
    Alloc(#[from] crate::limits::AllocError),
    /// A generator parameter is impossible or out of range.
    #[error("invalid generator parameter {parameter} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// How node indices map to the ids written in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum NodeLabels {
    /// Node `i` has label `i + offset` (0 for edge lists and generated
    /// graphs, 1 for Matrix Market).
    Offset(u64),
    /// Node `i` has label `labels[i]` (edge lists read with
    /// [`NodeIds::Compact`]), sorted ascending.
    Explicit(Vec<u64>),
}

impl NodeLabels {
    /// The label of node `i`.
    #[inline]
    pub fn label(&self, i: usize) -> u64 {
        match self {
            NodeLabels::Offset(o) => i as u64 + o,
            NodeLabels::Explicit(v) => v.get(i).copied().unwrap_or(i as u64),
        }
    }

    /// The node whose label is `label`, if any, for a graph of `num_nodes` nodes.
    pub fn index_of(&self, label: u64, num_nodes: usize) -> Option<usize> {
        match self {
            NodeLabels::Offset(o) => {
                let i = label.checked_sub(*o)?;
                usize::try_from(i).ok().filter(|&i| i < num_nodes)
            }
            NodeLabels::Explicit(v) => v.binary_search(&label).ok(),
        }
    }
}

/// A directed (multi)graph in CSR form over incoming edges. See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    num_nodes: usize,
    in_offsets: Vec<usize>,
    in_sources: Vec<u32>,
    out_degree: Vec<u32>,
    labels: NodeLabels,
    /// Weighted graphs: the in-edges' weights and the out-weights.
    weights: Option<EdgeWeights>,
}

/// The weights of a weighted graph.
#[derive(Debug, Clone, PartialEq)]
struct EdgeWeights {
    /// Parallel to `in_sources`.
    in_weights: Vec<f64>,
    /// Σ of each node's out-edge weights.
    out_weight: Vec<f64>,
}

/// Largest node count: ids are `u32`.
pub const MAX_NODES: usize = u32::MAX as usize;

impl Graph {
    /// Builds a graph of `num_nodes` nodes from parallel arrays of edge
    /// sources and destinations (edge `i` is `src[i] -> dst[i]`).
    pub fn from_edges(num_nodes: usize, src: &[u32], dst: &[u32]) -> Result<Graph, GraphError> {
        Self::from_edges_labeled(num_nodes, src, dst, NodeLabels::Offset(0))
    }

    /// Like [`from_edges`](Self::from_edges), with the labels of the nodes.
    pub fn from_edges_labeled(
        num_nodes: usize,
        src: &[u32],
        dst: &[u32],
        labels: NodeLabels,
    ) -> Result<Graph, GraphError> {
        if src.len() != dst.len() {
            return Err(GraphError::InvalidParameter {
                parameter: "edges",
                value: format!("{} sources, {} destinations", src.len(), dst.len()),
                reason: "every edge needs a source and a destination".into(),
            });
        }
        if num_nodes > MAX_NODES {
            return Err(GraphError::TooLarge(format!(
                "{num_nodes} nodes; node ids are u32, so at most {MAX_NODES}"
            )));
        }
        if let NodeLabels::Explicit(v) = &labels {
            if v.len() != num_nodes {
                return Err(GraphError::InvalidParameter {
                    parameter: "labels",
                    value: format!("{} labels", v.len()),
                    reason: format!("the graph has {num_nodes} nodes"),
                });
            }
        }
        // Validate: a parallel maximum, then (only if it is out of range) a
        // scan for the first bad edge to report.
        let largest = src
            .par_chunks(1 << 16)
            .chain(dst.par_chunks(1 << 16))
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .max()
            .unwrap_or(0);
        if !src.is_empty() && largest as usize >= num_nodes {
            if let Some((edge, (&s, &d))) = src
                .iter()
                .zip(dst)
                .enumerate()
                .find(|(_, (&s, &d))| s as usize >= num_nodes || d as usize >= num_nodes)
            {
                let id = if s as usize >= num_nodes { s } else { d };
                return Err(GraphError::NodeOutOfRange {
                    edge,
                    id: u64::from(id),
                    num_nodes,
                });
            }
        }
        build_csr(num_nodes, src, dst, labels)
    }

    /// A weighted graph: edge `i` is `src[i] -> dst[i]` with weight
    /// `weights[i]` (finite, non-negative). Repeated edges add up.
    ///
    /// ```
    /// use dotcompute_workloads::graph::Graph;
    ///
    /// let g = Graph::from_weighted_edges(3, &[0, 0, 1], &[1, 2, 2], &[1.0, 3.0, 0.5]).unwrap();
    /// assert!(g.is_weighted());
    /// assert_eq!(g.in_neighbor_weights(2), Some(&[3.0, 0.5][..]));
    /// assert_eq!(g.out_weights().unwrap(), &[4.0, 0.5, 0.0]);
    /// ```
    pub fn from_weighted_edges(
        num_nodes: usize,
        src: &[u32],
        dst: &[u32],
        weights: &[f64],
    ) -> Result<Graph, GraphError> {
        if weights.len() != src.len() {
            return Err(GraphError::InvalidParameter {
                parameter: "weights",
                value: format!("{} weights", weights.len()),
                reason: format!("the graph has {} edges", src.len()),
            });
        }
        if let Some((i, w)) = weights.iter().enumerate().find(|(_, w)| !w.is_finite() || **w < 0.0) {
            return Err(GraphError::InvalidParameter {
                parameter: "weights",
                value: format!("weight {w} of edge {i}"),
                reason: "weights must be finite and non-negative".into(),
            });
        }
        let g = Self::from_edges(num_nodes, src, dst)?;
        build_weighted(num_nodes, src, dst, weights, g.labels)
    }

    /// [`from_edges_labeled`](Self::from_edges_labeled) for edges whose ids
    /// are known to be below `num_nodes` (the loaders check them per line),
    /// with weights if given (known to be finite and non-negative).
    pub(crate) fn from_valid_parts(
        num_nodes: usize,
        src: &[u32],
        dst: &[u32],
        weights: Option<&[f64]>,
        labels: NodeLabels,
    ) -> Result<Graph, GraphError> {
        if num_nodes > MAX_NODES {
            return Err(GraphError::TooLarge(format!(
                "{num_nodes} nodes; node ids are u32, so at most {MAX_NODES}"
            )));
        }
        debug_assert!(src.len() == dst.len());
        debug_assert!(src.iter().chain(dst).all(|&x| (x as usize) < num_nodes));
        match weights {
            None => build_csr(num_nodes, src, dst, labels),
            Some(w) => build_weighted(num_nodes, src, dst, w, labels),
        }
    }

    /// Whether the edges carry weights.
    pub fn is_weighted(&self) -> bool {
        self.weights.is_some()
    }

    /// The weights of the edges into `v`, parallel to
    /// [`in_neighbors`](Self::in_neighbors) (`None` for an unweighted graph).
    ///
    /// # Panics
    /// If `v >= num_nodes()`.
    pub fn in_neighbor_weights(&self, v: usize) -> Option<&[f64]> {
        let w = self.weights.as_ref()?;
        Some(&w.in_weights[self.in_offsets[v]..self.in_offsets[v + 1]])
    }

    /// All in-edge weights, parallel to [`in_sources`](Self::in_sources).
    pub fn in_weights(&self) -> Option<&[f64]> {
        self.weights.as_ref().map(|w| w.in_weights.as_slice())
    }

    /// Every node's out-weight (the sum of its out-edges' weights).
    pub fn out_weights(&self) -> Option<&[f64]> {
        self.weights.as_ref().map(|w| w.out_weight.as_slice())
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// Number of edges (counting repeats and self-loops).
    pub fn num_edges(&self) -> usize {
        self.in_sources.len()
    }

    /// The sources of the edges into `v`, ascending (repeated for repeated edges).
    ///
    /// # Panics
    /// If `v >= num_nodes()`.
    pub fn in_neighbors(&self, v: usize) -> &[u32] {
        &self.in_sources[self.in_offsets[v]..self.in_offsets[v + 1]]
    }

    /// The number of edges out of `u`.
    ///
    /// # Panics
    /// If `u >= num_nodes()`.
    pub fn out_degree(&self, u: usize) -> u32 {
        self.out_degree[u]
    }

    /// Every node's out-degree.
    pub fn out_degrees(&self) -> &[u32] {
        &self.out_degree
    }

    /// The CSR row offsets (`num_nodes + 1` entries).
    pub fn in_offsets(&self) -> &[usize] {
        &self.in_offsets
    }

    /// The CSR column array: sources of all in-edges, row by row.
    pub fn in_sources(&self) -> &[u32] {
        &self.in_sources
    }

    /// Nodes without out-edges (for a weighted graph: without out-weight).
    pub fn dangling_count(&self) -> usize {
        match &self.weights {
            Some(w) => w.out_weight.par_iter().filter(|&&x| x == 0.0).count(),
            None => self.out_degree.par_iter().filter(|&&d| d == 0).count(),
        }
    }

    /// Number of self-loops.
    pub fn self_loop_count(&self) -> usize {
        (0..self.num_nodes)
            .into_par_iter()
            .map(|v| self.in_neighbors(v).iter().filter(|&&u| u as usize == v).count())
            .sum()
    }

    /// The node labels.
    pub fn labels(&self) -> &NodeLabels {
        &self.labels
    }

    /// The label (input id) of node `i`.
    pub fn label(&self, i: usize) -> u64 {
        self.labels.label(i)
    }

    /// The edges as `(sources, destinations)`, by destination, then source.
    pub fn to_edges(&self) -> (Vec<u32>, Vec<u32>) {
        let mut src = Vec::with_capacity(self.num_edges());
        let mut dst = Vec::with_capacity(self.num_edges());
        for v in 0..self.num_nodes {
            for &u in self.in_neighbors(v) {
                src.push(u);
                dst.push(v as u32);
            }
        }
        (src, dst)
    }

    /// A copy without self-loops and with each repeated edge kept once (for
    /// a weighted graph, with the repeated edges' weights added up).
    pub fn simplified(&self) -> Graph {
        if let Some(w) = &self.weights {
            let (mut src, mut dst, mut weights) = (Vec::new(), Vec::new(), Vec::new());
            for v in 0..self.num_nodes {
                let row = self.in_neighbors(v);
                let ws = &w.in_weights[self.in_offsets[v]..self.in_offsets[v + 1]];
                for (i, (&u, &x)) in row.iter().zip(ws).enumerate() {
                    if u as usize == v {
                        continue;
                    }
                    if i > 0 && row[i - 1] == u {
                        if let Some(last) = weights.last_mut() {
                            *last += x;
                        }
                        continue;
                    }
                    src.push(u);
                    dst.push(v as u32);
                    weights.push(x);
                }
            }
            if let Ok(g) = build_weighted(self.num_nodes, &src, &dst, &weights, self.labels.clone()) {
                return g;
            }
        }
        let rows: Vec<Vec<u32>> = (0..self.num_nodes)
            .into_par_iter()
            .map(|v| {
                let mut row: Vec<u32> = self
                    .in_neighbors(v)
                    .iter()
                    .copied()
                    .filter(|&u| u as usize != v)
                    .collect();
                row.dedup(); // rows are sorted, so repeats are adjacent
                row
            })
            .collect();
        let mut in_offsets = Vec::with_capacity(self.num_nodes + 1);
        in_offsets.push(0usize);
        let mut total = 0usize;
        for r in &rows {
            total += r.len();
            in_offsets.push(total);
        }
        let mut in_sources = Vec::with_capacity(total);
        let mut out_degree = vec![0u32; self.num_nodes];
        for r in &rows {
            for &u in r {
                out_degree[u as usize] += 1;
            }
            in_sources.extend_from_slice(r);
        }
        Graph {
            num_nodes: self.num_nodes,
            in_offsets,
            in_sources,
            out_degree,
            labels: self.labels.clone(),
            weights: None,
        }
    }

    /// A new graph with `extra` edges added. Node ids at or above `num_nodes()` add nodes (labelled
    /// densely, so only for graphs with [`NodeLabels::Offset`] labels).
    pub fn with_added_edges(&self, src: &[u32], dst: &[u32]) -> Result<Graph, GraphError> {
        let max_new = src.iter().chain(dst.iter()).map(|&x| x as usize + 1).max().unwrap_or(0);
        let num_nodes = self.num_nodes.max(max_new);
        if num_nodes > self.num_nodes && matches!(self.labels, NodeLabels::Explicit(_)) {
            return Err(GraphError::InvalidParameter {
                parameter: "edges",
                value: format!("node id {}", max_new - 1),
                reason: format!(
                    "the graph has {} nodes with explicit labels; new nodes cannot be labelled",
                    self.num_nodes
                ),
            });
        }
        let (mut all_src, mut all_dst) = self.to_edges();
        all_src.extend_from_slice(src);
        all_dst.extend_from_slice(dst);
        let g = Graph::from_edges_labeled(num_nodes, &all_src, &all_dst, self.labels.clone())?;
        match self.in_weights() {
            // New edges of a weighted graph weigh 1.
            Some(w) => {
                let mut weights = w.to_vec();
                weights.resize(all_src.len(), 1.0);
                build_weighted(num_nodes, &all_src, &all_dst, &weights, g.labels)
            }
            None => Ok(g),
        }
    }
}

/// Counting sort of the edges by destination, then each row sorted by
/// source, so every row lists its sources in ascending order whatever the
/// input order. `src`/`dst` are valid (ids below `num_nodes`).
///
/// Large inputs are counted and scattered in parallel: the edges are cut
/// into `P` contiguous parts, each part counts its destinations, and part
/// `p` writes the edges into row `v` from `offset[v] + Σ_{q<p} count_q[v]`.
fn build_csr(num_nodes: usize, src: &[u32], dst: &[u32], labels: NodeLabels) -> Result<Graph, GraphError> {
    let m = src.len();
    let parts = if m < (1 << 16) || m >= u32::MAX as usize {
        1
    } else {
        rayon::current_num_threads().clamp(1, 8).min(m >> 15)
    };
    let bounds: Vec<(usize, usize)> = (0..parts).map(|p| (p * m / parts, (p + 1) * m / parts)).collect();
    // Per-part histograms of destinations (in-degree) and sources (out-degree).
    let counted: Vec<(Vec<u32>, Vec<u32>)> = bounds
        .par_iter()
        .map(|&(a, b)| {
            let mut ind = try_vec(num_nodes, 0u32, "the in-degree counts")?;
            let mut outd = try_vec(num_nodes, 0u32, "the out-degree counts")?;
            for (&s, &d) in src[a..b].iter().zip(&dst[a..b]) {
                ind[d as usize] += 1;
                outd[s as usize] += 1;
            }
            Ok((ind, outd))
        })
        .collect::<Result<_, AllocError>>()?;
    let (mut cursors, outs): (Vec<Vec<u32>>, Vec<Vec<u32>>) = counted.into_iter().unzip();
    let mut out_degree = try_vec(num_nodes, 0u32, "the out-degrees")?;
    out_degree.par_chunks_mut(1 << 14).enumerate().for_each(|(ci, chunk)| {
        let (base, len) = (ci << 14, chunk.len());
        for part in &outs {
            for (o, &c) in chunk.iter_mut().zip(&part[base..base + len]) {
                *o += c;
            }
        }
    });
    drop(outs);
    // Row offsets, and each part's starting cursor in every row.
    let mut in_offsets = try_vec(num_nodes + 1, 0usize, "the row offsets")?;
    let mut acc = 0usize;
    for v in 0..num_nodes {
        in_offsets[v] = acc;
        for part in cursors.iter_mut() {
            let c = part[v] as usize;
            part[v] = acc as u32; // acc < m <= u32::MAX when parts > 1; exact below.
            acc += c;
        }
    }
    in_offsets[num_nodes] = acc;
    let mut in_sources = try_vec(m, 0u32, "the edges")?;
    if parts == 1 {
        // Sequential scatter with usize cursors (any m).
        let mut cursor = try_vec(num_nodes, 0usize, "the row cursors")?;
        cursor.copy_from_slice(&in_offsets[..num_nodes]);
        for (&s, &d) in src.iter().zip(dst) {
            let slot = &mut cursor[d as usize];
            in_sources[*slot] = s;
            *slot += 1;
        }
    } else {
        let out = SharedSlice(in_sources.as_mut_ptr(), m);
        let out = &out;
        bounds
            .par_iter()
            .zip(cursors.par_iter_mut())
            .for_each(|(&(a, b), cursor)| {
                for (&s, &d) in src[a..b].iter().zip(&dst[a..b]) {
                    let slot = &mut cursor[d as usize];
                    // SAFETY: part p writes row v only at slots
                    // [offset[v] + Σ_{q<p} count_q[v], + count_p[v]), which are
                    // disjoint across parts and rows and lie below m; every
                    // slot is written exactly once, and `in_sources` outlives
                    // this parallel loop.
                    unsafe { out.write(*slot as usize, s) };
                    *slot += 1;
                }
            });
    }
    drop(cursors);
    sort_rows(&in_offsets, &mut in_sources);
    Ok(Graph {
        num_nodes,
        in_offsets,
        in_sources,
        out_degree,
        labels,
        weights: None,
    })
}

/// The weighted CSR: rows by destination, each row sorted by source then
/// weight (so the graph does not depend on the input order), and the
/// out-weights summed in CSR order. Inputs are valid.
fn build_weighted(
    num_nodes: usize,
    src: &[u32],
    dst: &[u32],
    weights: &[f64],
    labels: NodeLabels,
) -> Result<Graph, GraphError> {
    let m = src.len();
    let mut in_offsets = try_vec(num_nodes + 1, 0usize, "the row offsets")?;
    let mut out_degree = try_vec(num_nodes, 0u32, "the out-degrees")?;
    for (&s, &d) in src.iter().zip(dst) {
        in_offsets[d as usize + 1] += 1;
        out_degree[s as usize] += 1;
    }
    for v in 0..num_nodes {
        in_offsets[v + 1] += in_offsets[v];
    }
    let mut cursor = try_vec(num_nodes, 0usize, "the row cursors")?;
    cursor.copy_from_slice(&in_offsets[..num_nodes]);
    let mut pairs = try_vec(m, (0u32, 0.0f64), "the weighted edges")?;
    for ((&s, &d), &w) in src.iter().zip(dst).zip(weights) {
        let slot = &mut cursor[d as usize];
        pairs[*slot] = (s, w);
        *slot += 1;
    }
    drop(cursor);
    let offsets = &in_offsets;
    let mut rows: Vec<&mut [(u32, f64)]> = Vec::with_capacity(num_nodes);
    let mut rest = pairs.as_mut_slice();
    for v in 0..num_nodes {
        let (head, tail) = rest.split_at_mut(offsets[v + 1] - offsets[v]);
        rows.push(head);
        rest = tail;
    }
    rows.par_iter_mut()
        .for_each(|r| r.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))));
    drop(rows);
    let mut in_sources = try_vec(m, 0u32, "the edges")?;
    let mut in_weights = try_vec(m, 0.0f64, "the edge weights")?;
    let mut out_weight = try_vec(num_nodes, 0.0f64, "the out-weights")?;
    for (i, &(s, w)) in pairs.iter().enumerate() {
        in_sources[i] = s;
        in_weights[i] = w;
        out_weight[s as usize] += w;
    }
    Ok(Graph {
        num_nodes,
        in_offsets,
        in_sources,
        out_degree,
        labels,
        weights: Some(EdgeWeights { in_weights, out_weight }),
    })
}

/// Sorts a short slice (rows average a few entries).
#[inline]
fn insertion_sort(row: &mut [u32]) {
    for i in 1..row.len() {
        let x = row[i];
        let mut j = i;
        while j > 0 && row[j - 1] > x {
            row[j] = row[j - 1];
            j -= 1;
        }
        row[j] = x;
    }
}

/// A raw view of a `u32` buffer that parallel parts write at disjoint indices.
struct SharedSlice(*mut u32, usize);

// SAFETY: only used for writes at indices that no two threads share (see
// `build_csr`); the buffer is not read or moved while the view exists.
unsafe impl Sync for SharedSlice {}

impl SharedSlice {
    /// # Safety
    /// `i < len`, and no other thread accesses index `i` concurrently.
    unsafe fn write(&self, i: usize, v: u32) {
        debug_assert!(i < self.1);
        // SAFETY: guaranteed by the caller.
        unsafe { self.0.add(i).write(v) }
    }
}

/// Sorts every CSR row in place, rows in parallel batches.
fn sort_rows(offsets: &[usize], sources: &mut [u32]) {
    const ROWS: usize = 1 << 13;
    let num_rows = offsets.len().saturating_sub(1);
    let mut batches: Vec<(usize, &mut [u32])> = Vec::with_capacity(num_rows / ROWS + 1);
    let mut rest = sources;
    let mut row = 0;
    while row < num_rows {
        let end = (row + ROWS).min(num_rows);
        let (head, tail) = rest.split_at_mut(offsets[end] - offsets[row]);
        batches.push((row, head));
        rest = tail;
        row = end;
    }
    batches.into_par_iter().for_each(|(first, slice)| {
        let base = offsets[first];
        let end = (first + ROWS).min(num_rows);
        for v in first..end {
            let row = &mut slice[offsets[v] - base..offsets[v + 1] - base];
            if row.len() <= 24 {
                insertion_sort(row);
            } else {
                row.sort_unstable();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_rows_are_sorted_and_degrees_counted() {
        let g = Graph::from_edges(4, &[3, 0, 1, 3, 0], &[2, 2, 2, 0, 3]).unwrap();
        assert_eq!(g.in_offsets(), &[0, 1, 1, 4, 5]);
        assert_eq!(g.in_neighbors(2), &[0, 1, 3]);
        // The same edges in another order give the same graph.
        assert_eq!(g, Graph::from_edges(4, &[0, 3, 3, 1, 0], &[3, 0, 2, 2, 2]).unwrap());
        assert_eq!(g.out_degrees(), &[2, 1, 0, 2]);
        assert_eq!(g.dangling_count(), 1);
        assert_eq!(
            g.out_degrees().iter().map(|&d| d as usize).sum::<usize>(),
            g.num_edges()
        );
    }

    #[test]
    fn out_of_range_edges_are_refused_with_their_index() {
        match Graph::from_edges(3, &[0, 1, 2], &[1, 5, 0]) {
            Err(GraphError::NodeOutOfRange { edge, id, num_nodes }) => {
                assert_eq!((edge, id, num_nodes), (1, 5, 3));
            }
            other => panic!("expected NodeOutOfRange, got {other:?}"),
        }
        assert!(matches!(
            Graph::from_edges(3, &[0], &[1, 2]),
            Err(GraphError::InvalidParameter { parameter: "edges", .. })
        ));
    }

    #[test]
    fn simplified_drops_self_loops_and_repeats() {
        let g = Graph::from_edges(3, &[0, 0, 1, 1, 2], &[1, 1, 1, 2, 2]).unwrap();
        assert_eq!(g.self_loop_count(), 2);
        let s = g.simplified();
        assert_eq!(s.num_edges(), 2);
        assert_eq!(s.in_neighbors(1), &[0]);
        assert_eq!(s.in_neighbors(2), &[1]);
        assert_eq!(s.out_degrees(), &[1, 1, 0]);
        assert_eq!(s.self_loop_count(), 0);
    }

    #[test]
    fn added_edges_extend_rows_and_nodes() {
        let g = Graph::from_edges(2, &[0], &[1]).unwrap();
        let h = g.with_added_edges(&[1, 2], &[0, 1]).unwrap();
        assert_eq!(h.num_nodes(), 3);
        assert_eq!(h.in_neighbors(1), &[0, 2]);
        assert_eq!(h.out_degrees(), &[1, 1, 1]);
        let labelled = Graph::from_edges_labeled(2, &[0], &[1], NodeLabels::Explicit(vec![10, 20])).unwrap();
        assert!(labelled.with_added_edges(&[0], &[2]).is_err());
        assert_eq!(labelled.labels().index_of(20, 2), Some(1));
        assert_eq!(labelled.labels().index_of(15, 2), None);
        assert_eq!(NodeLabels::Offset(1).index_of(0, 5), None);
        assert_eq!(NodeLabels::Offset(1).index_of(5, 5), Some(4));
    }
}
