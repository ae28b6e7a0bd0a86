//! PageRank by power iteration on the CPU (rayon), on a compute device
//! through the [`Backend`](dotcompute::device::Backend) trait ([`device`]: CUDA,
//! or the CPU backend), and as a ring kernel ([`actor`]).
//!
//! Iteration (`d` = damping, `n` = nodes, `outdeg(u)` counts repeated edges
//! and self-loops):
//!
//! ```text
//! r₀[v]     = 1/n
//! r_{k+1}[v] = (1-d)/n + D_k + Σ_{u→v} (d · (1/outdeg(u))) · r_k[u]
//! ```
//!
//! On a weighted graph ([`Graph::is_weighted`]) the share of `u`'s rank
//! that an edge `u → v` of weight `w` carries is `w / W(u)` instead of
//! `1/outdeg(u)`, `W(u)` being `u`'s out-weight, and a node with `W(u) = 0`
//! is dangling:
//!
//! ```text
//! r_{k+1}[v] = (1-d)/n + D_k + Σ_{u→v} (d / W(u)) · r_k[u] · w(u→v)
//! ```
//!
//! Weighted graphs are solved by this CPU solver (and so by the PageRank ring
//! kernel, which calls it); the device solver ([`device`], `cpu-device` and
//! `cuda`) refuses them rather than dropping the weights.
//!
//! In both, `D_k` is the dangling term:
//! - [`Dangling::Redistribute`] (the default, correct PageRank): the rank of
//!   nodes without out-edges is spread evenly, `D_k = d · Σ_{outdeg(u)=0} r_k[u] / n`,
//!   so the ranks always sum to 1 (up to rounding);
//! - [`Dangling::Ignore`] (PyDotCompute's formula, for comparison): `D_k = 0`;
//!   rank reaching a dangling node is lost and the sum falls below 1.
//!
//! Convergence: after each step the residual `‖r_{k+1} − r_k‖` is measured in
//! the chosen [`Norm`]; the iteration stops when it is *below* the tolerance
//! and returns `r_{k+1}`, reporting `k + 1` iterations. The default is the
//! **L∞ norm with tolerance 1e-6**, PyDotCompute's criterion, so iteration
//! counts and results compare directly. Note that L∞ < 1e-6 is loose for
//! large graphs whose ranks are themselves ~1/n; [`Norm::L1`] bounds the total
//! change and is the stricter choice. If `max_iterations` is reached the last
//! iterate is returned with `converged: false`.
//!
//! Invariants:
//! - with [`Dangling::Ignore`] and the same graph, the ranks and iteration
//!   count are bit-identical to PyDotCompute's scipy-based `pagerank_cpu_sparse`
//!   (same per-edge weights `d · (1/outdeg)`, the same per-row summation
//!   order over sources in ascending order, the same teleport term);
//! - results are bit-identical for any number of threads: rows are computed
//!   independently and every reduction (dangling mass, L1 residual) sums
//!   fixed-size chunks in a fixed order;
//! - an empty graph or an invalid option is an error, never a panic.
//!
//! ```
//! use dotcompute_workloads::graph::Graph;
//! use dotcompute_workloads::pagerank::{pagerank, PagerankConfig};
//!
//! // 0 -> 1 -> 2 -> 0: a cycle, every node has rank 1/3.
//! let g = Graph::from_edges(3, &[0, 1, 2], &[1, 2, 0]).unwrap();
//! let r = pagerank(&g, &PagerankConfig::default()).unwrap();
//! assert!(r.converged);
//! assert!(r.ranks.iter().all(|&x| (x - 1.0 / 3.0).abs() < 1e-15));
//! ```

pub mod actor;
pub mod device;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::graph::{
    load_graph, write_plain_edge_list, Graph, GraphError, GraphFormat, GraphGenerator, LoadOptions, NodeIds,
};
use super::limits::{graph_bytes, try_vec, MemoryLimit};
pub use super::Timing;
use crate::progress::{Phase, Progress};

/// What happens to the rank of nodes without out-edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dangling {
    /// Spread it evenly over all nodes (ranks sum to 1). The default.
    #[default]
    Redistribute,
    /// Drop it, as PyDotCompute does (ranks sum to less than 1).
    Ignore,
}

impl std::str::FromStr for Dangling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "redistribute" => Ok(Dangling::Redistribute),
            "ignore" => Ok(Dangling::Ignore),
            _ => Err(format!(
                "unknown dangling policy {s:?} (expected redistribute or ignore)"
            )),
        }
    }
}

/// The norm of the residual `r_{k+1} − r_k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// Sum of absolute changes.
    L1,
    /// Largest absolute change (PyDotCompute's criterion). The default.
    #[default]
    Linf,
}

impl std::str::FromStr for Norm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "l1" => Ok(Norm::L1),
            "linf" | "l-inf" | "l∞" | "inf" | "max" => Ok(Norm::Linf),
            _ => Err(format!("unknown norm {s:?} (expected l1 or linf)")),
        }
    }
}

/// Parameters of the power iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PagerankConfig {
    /// Damping factor `d`, in `[0, 1]` (default 0.85).
    pub damping: f64,
    /// Stop when the residual is below this (default 1e-6).
    pub tolerance: f64,
    /// The residual's norm (default L∞).
    pub norm: Norm,
    /// Most iterations (default 100, at least 1).
    pub max_iterations: u32,
    /// Dangling-node policy (default redistribute).
    pub dangling: Dangling,
}

impl Default for PagerankConfig {
    fn default() -> Self {
        PagerankConfig {
            damping: 0.85,
            tolerance: 1e-6,
            norm: Norm::Linf,
            max_iterations: 100,
            dangling: Dangling::Redistribute,
        }
    }
}

impl PagerankConfig {
    /// PyDotCompute's benchmark settings: d = 0.85, L∞ < 1e-6, 100
    /// iterations, dangling rank ignored.
    pub fn pydotcompute() -> Self {
        PagerankConfig {
            dangling: Dangling::Ignore,
            ..Self::default()
        }
    }

    /// True PageRank to about igraph's precision, for comparisons with it:
    /// d = 0.85, dangling rank redistributed, L1 residual < 1e-10 (the
    /// tolerance igraph passes to its PRPACK solver), up to 1000 iterations.
    pub fn accurate() -> Self {
        PagerankConfig {
            tolerance: 1e-10,
            norm: Norm::L1,
            max_iterations: 1000,
            dangling: Dangling::Redistribute,
            ..Self::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), PagerankError> {
        let bad = |parameter: &'static str, value: String, reason: &str| PagerankError::InvalidOption {
            parameter,
            value,
            reason: reason.to_string(),
        };
        if !(0.0..=1.0).contains(&self.damping) {
            return Err(bad("damping", self.damping.to_string(), "must be in [0, 1]"));
        }
        if !self.tolerance.is_finite() || self.tolerance < 0.0 {
            return Err(bad(
                "tolerance",
                self.tolerance.to_string(),
                "must be a finite, non-negative number",
            ));
        }
        if self.max_iterations == 0 {
            return Err(bad("max_iterations", "0".into(), "must be at least 1"));
        }
        Ok(())
    }
}

/// Errors of the PageRank workload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PagerankError {
    /// Loading or generating the graph failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// An option is out of range.
    #[error("invalid PageRank option {parameter} = {value}: {reason}")]
    InvalidOption {
        /// The option's name.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// PageRank of a graph without nodes is undefined.
    #[error("the graph has no nodes")]
    EmptyGraph,
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The thread pool could not be built.
    #[error("cannot start a pool of {threads} threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// Why it failed.
        reason: String,
    },
    /// The ring-kernel runtime failed (actor backend).
    #[error(transparent)]
    Runtime(#[from] dotcompute::Error),
    /// The PageRank kernel could not serve a request.
    #[error("the PageRank kernel refused the request: {reason}")]
    Rejected {
        /// Its explanation.
        reason: String,
    },
    /// The compute device failed ([`device`] solver): no CUDA driver or
    /// device, out of device memory, a compile error, a kernel fault.
    #[error(transparent)]
    Device(#[from] dotcompute::device::DeviceError),
}

/// Which solver runs the power iteration.
///
/// Written and parsed as `cpu`, `cpu-device` and `cuda:N` (`cuda` alone is
/// device 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PagerankBackend {
    /// The rayon solver, [`pagerank`]. The default.
    #[default]
    Cpu,
    /// The device driver ([`device`]) on the CPU backend: the CUDA kernels'
    /// Rust equivalents.
    CpuDevice,
    /// The device driver on a CUDA GPU.
    Cuda {
        /// The CUDA device ordinal.
        device: usize,
    },
    /// The device driver on a wgpu adapter (Vulkan, Metal, DX12; lavapipe
    /// on a machine without a GPU), with the WGSL kernels: f64 where the
    /// adapter has `SHADER_F64`, else their f32 variants.
    #[cfg(feature = "wgpu")]
    Wgpu {
        /// The adapter's ordinal among the wgpu adapters; `None`: the best.
        device: Option<usize>,
    },
}

impl std::fmt::Display for PagerankBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PagerankBackend::Cpu => f.write_str("cpu"),
            PagerankBackend::CpuDevice => f.write_str("cpu-device"),
            PagerankBackend::Cuda { device } => write!(f, "cuda:{device}"),
            #[cfg(feature = "wgpu")]
            PagerankBackend::Wgpu { device: None } => f.write_str("wgpu"),
            #[cfg(feature = "wgpu")]
            PagerankBackend::Wgpu { device: Some(d) } => write!(f, "wgpu:{d}"),
        }
    }
}

impl std::str::FromStr for PagerankBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => return Ok(PagerankBackend::Cpu),
            "cpu-device" => return Ok(PagerankBackend::CpuDevice),
            "cuda" => return Ok(PagerankBackend::Cuda { device: 0 }),
            #[cfg(feature = "wgpu")]
            "wgpu" => return Ok(PagerankBackend::Wgpu { device: None }),
            _ => {}
        }
        #[cfg(feature = "wgpu")]
        if let Some(Ok(device)) = lower.strip_prefix("wgpu:").map(str::parse::<usize>) {
            return Ok(PagerankBackend::Wgpu { device: Some(device) });
        }
        match lower.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(device)) => Ok(PagerankBackend::Cuda { device }),
            _ => Err(format!(
                "unknown PageRank backend {s:?} (expected cpu, cpu-device, cuda, cuda:N, wgpu or wgpu:N)"
            )),
        }
    }
}

impl Serialize for PagerankBackend {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The outcome of a power iteration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerankResult {
    /// One rank per node, in node order.
    pub ranks: Vec<f64>,
    /// Iterations performed.
    pub iterations: u32,
    /// Whether the residual fell below the tolerance.
    pub converged: bool,
    /// The last residual in the configured norm.
    pub residual: f64,
    /// The last residual in L1.
    pub residual_l1: f64,
    /// The last residual in L∞.
    pub residual_linf: f64,
}

/// Rows per chunk of the fixed-order reductions.
const CHUNK: usize = 8192;

/// Runs PageRank on the current rayon pool (see the module docs).
pub fn pagerank(graph: &Graph, config: &PagerankConfig) -> Result<PagerankResult, PagerankError> {
    pagerank_from(graph, config, None)
}

/// Like [`pagerank`], starting from `initial` ranks instead of `1/n` (a warm
/// start after a small graph change). `initial` must have one finite,
/// non-negative entry per node.
pub fn pagerank_from(
    graph: &Graph,
    config: &PagerankConfig,
    initial: Option<&[f64]>,
) -> Result<PagerankResult, PagerankError> {
    pagerank_observed(graph, config, initial, &Progress::new())
}

/// [`pagerank_from`], reporting each iteration to `progress`.
pub(crate) fn pagerank_observed(
    graph: &Graph,
    config: &PagerankConfig,
    initial: Option<&[f64]>,
    progress: &Progress,
) -> Result<PagerankResult, PagerankError> {
    config.validate()?;
    let n = graph.num_nodes();
    if n == 0 {
        return Err(PagerankError::EmptyGraph);
    }
    let nf = n as f64;
    let d = config.damping;
    let teleport = (1.0 - d) / nf;
    // Unweighted: w[u] = d · (1/outdeg(u)). Weighted: w[u] = d / W(u) with
    // W(u) the out-weight, and every in-edge term is multiplied by its
    // weight; a node without out-weight is dangling (`out` then marks
    // out-weight 0 with 0).
    let weighted_out: Vec<u32>;
    let (out, weight): (&[u32], Vec<f64>) = match graph.out_weights() {
        None => {
            let out = graph.out_degrees();
            let mut weight = try_vec(n, 0.0f64, "the PageRank weights").map_err(GraphError::from)?;
            weight
                .par_iter_mut()
                .zip(out.par_iter())
                .for_each(|(w, &k)| *w = if k > 0 { d * (1.0 / f64::from(k)) } else { 0.0 });
            (out, weight)
        }
        Some(total) => {
            weighted_out = total.iter().map(|&t| u32::from(t > 0.0)).collect();
            let weight = total.iter().map(|&t| if t > 0.0 { d / t } else { 0.0 }).collect();
            (&weighted_out, weight)
        }
    };
    let mut rank = match initial {
        None => try_vec(n, 1.0 / nf, "the ranks").map_err(GraphError::from)?,
        Some(init) => {
            check_initial(init, n)?;
            init.to_vec()
        }
    };
    let mut next = try_vec(n, 0.0f64, "the ranks").map_err(GraphError::from)?;
    let offsets = graph.in_offsets();
    let sources = graph.in_sources();
    let in_weights = graph.in_weights();
    let redistribute = config.dangling == Dangling::Redistribute;

    // contrib[u] = w[u] * r[u] for the current ranks; the dangling mass is
    // summed per chunk and the chunks in order (thread-count independent).
    let mut contrib = try_vec(n, 0.0f64, "the ranks").map_err(GraphError::from)?;
    let mut contrib_next = try_vec(n, 0.0f64, "the ranks").map_err(GraphError::from)?;
    let mut dangling: f64 = contrib
        .par_chunks_mut(CHUNK)
        .zip(rank.par_chunks(CHUNK))
        .zip(weight.par_chunks(CHUNK))
        .zip(out.par_chunks(CHUNK))
        .map(|(((c, r), w), k)| {
            let mut mass = 0.0;
            for i in 0..c.len() {
                c[i] = w[i] * r[i];
                if k[i] == 0 {
                    mass += r[i];
                }
            }
            mass
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();

    let mut residual_l1 = f64::INFINITY;
    let mut residual_linf = f64::INFINITY;
    for it in 0..config.max_iterations {
        let base = if redistribute {
            teleport + d * dangling / nf
        } else {
            teleport
        };
        // One fused pass per iteration: pull next[v] = base + Σ contrib[u]
        // over in-edges, the residual partials, and next's contributions
        // and dangling mass for the following iteration.
        let contrib_ref = &contrib;
        let parts: Vec<(f64, f64, f64)> = next
            .par_chunks_mut(CHUNK)
            .zip(contrib_next.par_chunks_mut(CHUNK))
            .zip(rank.par_chunks(CHUNK))
            .zip(weight.par_chunks(CHUNK))
            .zip(out.par_chunks(CHUNK))
            .enumerate()
            .map(|(ci, ((((nx, cn), r), w), k))| {
                let start = ci * CHUNK;
                let mut l1 = 0.0f64;
                let mut linf = 0.0f64;
                let mut mass = 0.0f64;
                for i in 0..nx.len() {
                    let v = start + i;
                    let mut sum = 0.0f64;
                    let (a, b) = (offsets[v], offsets[v + 1]);
                    match in_weights {
                        None => {
                            for &u in &sources[a..b] {
                                sum += contrib_ref[u as usize];
                            }
                        }
                        Some(w) => {
                            for (&u, &x) in sources[a..b].iter().zip(&w[a..b]) {
                                sum += contrib_ref[u as usize] * x;
                            }
                        }
                    }
                    let value = base + sum;
                    let diff = (value - r[i]).abs();
                    l1 += diff;
                    linf = linf.max(diff);
                    nx[i] = value;
                    cn[i] = w[i] * value;
                    if k[i] == 0 {
                        mass += value;
                    }
                }
                (l1, linf, mass)
            })
            .collect();
        residual_l1 = parts.iter().map(|p| p.0).sum();
        residual_linf = parts.iter().fold(0.0f64, |m, p| m.max(p.1));
        dangling = parts.iter().map(|p| p.2).sum();
        let residual = match config.norm {
            Norm::L1 => residual_l1,
            Norm::Linf => residual_linf,
        };
        std::mem::swap(&mut rank, &mut next);
        std::mem::swap(&mut contrib, &mut contrib_next);
        progress.iterated(it + 1, residual);
        if residual < config.tolerance {
            return Ok(PagerankResult {
                ranks: rank,
                iterations: it + 1,
                converged: true,
                residual,
                residual_l1,
                residual_linf,
            });
        }
    }
    let residual = match config.norm {
        Norm::L1 => residual_l1,
        Norm::Linf => residual_linf,
    };
    Ok(PagerankResult {
        ranks: rank,
        iterations: config.max_iterations,
        converged: false,
        residual,
        residual_l1,
        residual_linf,
    })
}

/// Checks a warm-start vector: one finite, non-negative rank per node.
fn check_initial(init: &[f64], n: usize) -> Result<(), PagerankError> {
    if init.len() != n || init.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(PagerankError::InvalidOption {
            parameter: "initial",
            value: format!("{} values", init.len()),
            reason: format!("need {n} finite, non-negative ranks"),
        });
    }
    Ok(())
}

/// A node and its rank, for top-k lists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankedNode {
    /// The node's label (its id in the input).
    pub node: u64,
    /// Its rank.
    pub rank: f64,
}

/// The `k` highest-ranked nodes, highest first (ties: smaller node index first).
pub fn top_k(graph: &Graph, ranks: &[f64], k: usize) -> Vec<RankedNode> {
    let mut idx: Vec<usize> = (0..ranks.len()).collect();
    let cmp = |a: &usize, b: &usize| ranks[*b].total_cmp(&ranks[*a]).then(a.cmp(b));
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_unstable_by(cmp);
    idx.into_iter()
        .map(|i| RankedNode {
            node: graph.label(i),
            rank: ranks[i],
        })
        .collect()
}

/// Writes `node<TAB>rank` lines in node order; `node` is the label, `rank`
/// in Rust's shortest round-trip scientific notation (e.g. `1.5e-1`).
pub fn write_ranks(path: &Path, graph: &Graph, ranks: &[f64]) -> Result<(), PagerankError> {
    let io = |source| PagerankError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    write_ranks_to(&mut w, graph, ranks).map_err(io)?;
    w.flush().map_err(io)
}

/// [`write_ranks`] into any writer.
pub fn write_ranks_to<W: Write>(w: &mut W, graph: &Graph, ranks: &[f64]) -> std::io::Result<()> {
    for (i, r) in ranks.iter().enumerate() {
        writeln!(w, "{}\t{:e}", graph.label(i), r)?;
    }
    Ok(())
}

/// Where the graph comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum GraphSource {
    /// A file.
    File {
        /// The file.
        path: PathBuf,
        /// Format and id handling.
        load: LoadOptions,
    },
    /// One of PyDotCompute's generators.
    Generated {
        /// Which generator.
        generator: GraphGenerator,
        /// Nodes.
        nodes: usize,
        /// Edges per node (`int(nodes * edges_per_node)` edges).
        edges_per_node: f64,
        /// numpy seed (PyDotCompute uses 42).
        seed: u64,
    },
}

impl GraphSource {
    fn describe(&self) -> String {
        match self {
            GraphSource::File { path, .. } => path.display().to_string(),
            GraphSource::Generated {
                generator,
                nodes,
                edges_per_node,
                seed,
            } => {
                let name = match generator {
                    GraphGenerator::Benchmark => "benchmark",
                    _ => "chunked",
                };
                format!("generated:{name}(nodes={nodes}, edges_per_node={edges_per_node}, seed={seed})")
            }
        }
    }

    /// Loads or generates the graph on the current rayon pool. A generated
    /// graph is checked against the default [`MemoryLimit`] first (a file's
    /// limit is in its [`LoadOptions`]).
    pub fn graph(&self) -> Result<Graph, GraphError> {
        self.graph_within(MemoryLimit::default())
    }

    /// [`graph`](Self::graph), a generated graph checked against `limit`
    /// before anything is allocated for it.
    pub fn graph_within(&self, limit: MemoryLimit) -> Result<Graph, GraphError> {
        self.graph_observed(limit, &Progress::new())
    }

    /// [`graph_within`](Self::graph_within), reporting to `progress`.
    pub(crate) fn graph_observed(&self, limit: MemoryLimit, progress: &Progress) -> Result<Graph, GraphError> {
        match self {
            GraphSource::File { path, load } => crate::graph::parse::load_graph_observed(path, load, progress),
            GraphSource::Generated {
                generator,
                nodes,
                edges_per_node,
                seed,
            } => {
                let edges = (*nodes as f64 * edges_per_node.max(0.0)).min(u64::MAX as f64) as u64;
                // The generator's pair set and edge arrays come on top of the graph.
                let needed = graph_bytes(*nodes as u64, edges, false).saturating_add(edges.saturating_mul(24));
                limit.check(format!("generating a graph of {nodes} nodes and {edges} edges"), needed)?;
                progress.phase(Phase::Building);
                generator.graph(*nodes, *edges_per_node, *seed)
            }
        }
    }
}

/// Everything `dotcompute pagerank` needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerankOptions {
    /// The graph.
    pub source: GraphSource,
    /// Iteration parameters.
    pub config: PagerankConfig,
    /// Worker threads (`None`: rayon's default, one per core).
    pub threads: Option<usize>,
    /// Drop self-loops and repeated edges before solving.
    pub simplify: bool,
    /// Write `node<TAB>rank` lines here.
    pub output: Option<PathBuf>,
    /// How many top nodes the report lists.
    pub top: usize,
    /// Where the power iteration runs (default: the rayon solver).
    pub backend: PagerankBackend,
    /// The most memory a generated graph may need (a file's limit is in its
    /// [`LoadOptions`]); default: the machine's.
    pub memory_limit: MemoryLimit,
    /// Where the run reports what it is doing (bytes read, iterations), for
    /// a progress bar on another thread; a fresh record by default.
    #[serde(skip)]
    pub progress: Progress,
}

impl PagerankOptions {
    /// Default options for a file.
    pub fn for_file(path: impl Into<PathBuf>) -> Self {
        PagerankOptions {
            source: GraphSource::File {
                path: path.into(),
                load: LoadOptions::default(),
            },
            config: PagerankConfig::default(),
            threads: None,
            simplify: false,
            output: None,
            top: 10,
            backend: PagerankBackend::Cpu,
            memory_limit: MemoryLimit::default(),
            progress: Progress::new(),
        }
    }

    /// Default options for PyDotCompute's chunked generator (seed 42).
    pub fn generated(nodes: usize, edges_per_node: f64) -> Self {
        PagerankOptions {
            source: GraphSource::Generated {
                generator: GraphGenerator::Chunked,
                nodes,
                edges_per_node,
                seed: 42,
            },
            ..Self::for_file(PathBuf::new())
        }
    }
}

/// What `dotcompute pagerank` reports (serialised as its `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerankReport {
    /// The input file or generator.
    pub source: String,
    /// Nodes.
    pub nodes: usize,
    /// Edges (after simplification, if asked).
    pub edges: usize,
    /// Nodes without out-edges (weighted graphs: without out-weight).
    pub dangling_nodes: usize,
    /// Whether the edges carried weights (weighted PageRank).
    pub weighted: bool,
    /// The parameters used.
    pub config: PagerankConfig,
    /// The solver (`cpu`, `cpu-device`, `cuda:N`).
    pub backend: PagerankBackend,
    /// The device it ran on: the CPU's model, or the GPU's name.
    pub device: String,
    /// Iterations performed.
    pub iterations: u32,
    /// Whether the tolerance was reached.
    pub converged: bool,
    /// Final residual in the configured norm.
    pub residual: f64,
    /// Final residual in L1.
    pub residual_l1: f64,
    /// Final residual in L∞.
    pub residual_linf: f64,
    /// Σ ranks (1 up to rounding with `redistribute`).
    pub rank_sum: f64,
    /// Threads used (by the loader, and by the solver on the CPU).
    pub threads: usize,
    /// Reading, parsing and building the CSR (or generating), seconds.
    pub load_seconds: f64,
    /// The power iteration, seconds. On a device backend: uploading the CSR,
    /// the solve and reading the ranks back, without kernel compilation (see
    /// `device_timings`).
    pub compute_seconds: f64,
    /// A device backend's breakdown (`None` for the rayon solver).
    pub device_timings: Option<device::DeviceTimings>,
    /// Writing the ranks file, seconds (0 without `output`).
    pub write_seconds: f64,
    /// `edges / compute_seconds`: PyDotCompute's "throughput" definition.
    pub edges_per_second: f64,
    /// `edges × iterations / compute_seconds`: edge updates per second.
    pub edge_updates_per_second: f64,
    /// The highest-ranked nodes.
    pub top: Vec<RankedNode>,
    /// The ranks file written, if any.
    pub output: Option<PathBuf>,
}

/// A finished run: the report, and the graph and ranks it describes.
#[derive(Debug, Clone)]
pub struct PagerankRun {
    /// The report.
    pub report: PagerankReport,
    /// The graph solved.
    pub graph: Graph,
    /// Its ranks, in node order.
    pub ranks: Vec<f64>,
}

fn with_pool<T: Send, E: From<PagerankError> + Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T, E> + Send,
) -> Result<T, E> {
    match threads {
        None => f(),
        Some(t) if super::limits::check_threads(t).is_err() => Err(PagerankError::InvalidOption {
            parameter: "threads",
            value: t.to_string(),
            reason: super::limits::check_threads(t).err().unwrap_or_default(),
        }
        .into()),
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .map_err(|e| PagerankError::ThreadPool {
                threads: t,
                reason: e.to_string(),
            })?
            .install(f),
    }
}

/// Loads (or generates) the graph, solves it, writes the ranks if asked,
/// and reports. This is `dotcompute pagerank`.
///
/// A device backend is opened before the graph is loaded, so a missing GPU
/// or CUDA driver fails at once.
pub fn run(options: &PagerankOptions) -> Result<PagerankRun, PagerankError> {
    let run = run_observed(options);
    options.progress.phase(Phase::Done);
    run
}

fn run_observed(options: &PagerankOptions) -> Result<PagerankRun, PagerankError> {
    let progress = &options.progress;
    options.config.validate()?;
    let solver = device::Solver::open(options.backend)?;
    with_pool(options.threads, || {
        let threads = rayon::current_num_threads();
        let start = Instant::now();
        let mut graph = options.source.graph_observed(options.memory_limit, progress)?;
        if options.simplify {
            graph = graph.simplified();
        }
        let load_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        progress.solving(options.config.max_iterations);
        let (result, device_timings) = solver.solve(&graph, &options.config, progress)?;
        let mut compute_seconds = start.elapsed().as_secs_f64();
        if let Some(t) = &device_timings {
            compute_seconds = (compute_seconds - t.compile_seconds).max(0.0);
        }
        let mut write_seconds = 0.0;
        if let Some(path) = &options.output {
            progress.phase(Phase::Writing);
            let start = Instant::now();
            write_ranks(path, &graph, &result.ranks)?;
            write_seconds = start.elapsed().as_secs_f64();
        }
        let edges = graph.num_edges();
        let secs = compute_seconds.max(f64::MIN_POSITIVE);
        let report = PagerankReport {
            source: options.source.describe(),
            nodes: graph.num_nodes(),
            edges,
            dangling_nodes: graph.dangling_count(),
            weighted: graph.is_weighted(),
            config: options.config,
            backend: options.backend,
            device: solver.device_name(),
            iterations: result.iterations,
            converged: result.converged,
            residual: result.residual,
            residual_l1: result.residual_l1,
            residual_linf: result.residual_linf,
            rank_sum: result.ranks.iter().sum(),
            threads,
            load_seconds,
            compute_seconds,
            device_timings,
            write_seconds,
            edges_per_second: edges as f64 / secs,
            edge_updates_per_second: edges as f64 * f64::from(result.iterations) / secs,
            top: top_k(&graph, &result.ranks, options.top),
            output: options.output.clone(),
        };
        Ok(PagerankRun {
            report,
            graph,
            ranks: result.ranks,
        })
    })
}

/// Options of `dotcompute bench pagerank`: for each size, generate
/// PyDotCompute's graph, write it as a plain edge list (`src<TAB>dst` lines,
/// no header: see [`write_plain_edge_list`]), then time loading that file
/// and solving it, and, if [`accurate`](Self::accurate) is set, solving it
/// again to that tighter tolerance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerankBenchOptions {
    /// Node counts (default 10K, 100K, 1M).
    pub sizes: Vec<usize>,
    /// Edges per node (default 5, as PyDotCompute's large-graph benchmark).
    pub edges_per_node: f64,
    /// Generator (default chunked, as PyDotCompute's large-graph benchmark).
    pub generator: GraphGenerator,
    /// numpy seed (default 42).
    pub seed: u64,
    /// Iteration parameters (default: d 0.85, L∞ < 1e-6, redistribute).
    pub config: PagerankConfig,
    /// A second, timed solve of the same loaded graph to a tight tolerance,
    /// whose ranks are the ones handed to [`bench_with`]'s hook (default
    /// [`PagerankConfig::accurate`]; `None` skips it).
    pub accurate: Option<PagerankConfig>,
    /// Worker threads (`None`: one per core).
    pub threads: Option<usize>,
    /// Timed load+solve repetitions per size (default 3).
    pub repetitions: usize,
    /// Where the temporary edge lists go (default: the system temp dir).
    pub dir: Option<PathBuf>,
    /// The solver (default: the rayon solver). On a device backend the
    /// compute time covers the CSR upload, the solve and the read-back, not
    /// kernel compilation.
    pub backend: PagerankBackend,
}

impl Default for PagerankBenchOptions {
    fn default() -> Self {
        PagerankBenchOptions {
            sizes: vec![10_000, 100_000, 1_000_000],
            edges_per_node: 5.0,
            generator: GraphGenerator::Chunked,
            seed: 42,
            config: PagerankConfig::default(),
            accurate: Some(PagerankConfig::accurate()),
            threads: None,
            repetitions: 3,
            dir: None,
            backend: PagerankBackend::Cpu,
        }
    }
}

/// One size of `dotcompute bench pagerank`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerankBenchRow {
    /// Nodes.
    pub nodes: usize,
    /// Edges.
    pub edges: usize,
    /// Generating the edges (numpy-exact), seconds.
    pub generate_seconds: f64,
    /// Size of the edge-list file, bytes.
    pub file_bytes: u64,
    /// Reading + parsing + CSR build.
    pub load_seconds: Timing,
    /// Power iteration.
    pub compute_seconds: Timing,
    /// Load + compute of the same repetition.
    pub total_seconds: Timing,
    /// Iterations (the same every repetition).
    pub iterations: u32,
    /// Whether it converged.
    pub converged: bool,
    /// Final residual in the configured norm.
    pub residual: f64,
    /// `edges / median compute seconds`.
    pub edges_per_second: f64,
    /// The solve to [`PagerankBenchOptions::accurate`], if asked.
    pub accurate: Option<AccurateSolve>,
}

/// The timed solve of a bench graph to the tight tolerance of
/// [`PagerankBenchOptions::accurate`], after the same load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccurateSolve {
    /// The parameters.
    pub config: PagerankConfig,
    /// Power iteration to that tolerance.
    pub compute_seconds: Timing,
    /// Load + this solve, per repetition (the load is the same one the
    /// default solve followed).
    pub total_seconds: Timing,
    /// Iterations.
    pub iterations: u32,
    /// Whether it converged.
    pub converged: bool,
    /// Final residual in the configured norm.
    pub residual: f64,
}

/// One size of [`bench_with`], handed to its hook after our timings: the
/// edge-list file (still on disk), the graph loaded from it, and our ranks.
#[derive(Debug, Clone, Copy)]
pub struct BenchGraph<'a> {
    /// Nodes.
    pub nodes: usize,
    /// The plain edge list the graph was loaded from; removed after the hook.
    pub path: &'a Path,
    /// The graph.
    pub graph: &'a Graph,
    /// Our ranks: from the accurate solve if there was one, else from the
    /// default one.
    pub ranks: &'a [f64],
    /// The parameters those ranks were computed with.
    pub ranks_config: PagerankConfig,
}

/// The result of `dotcompute bench pagerank`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerankBenchReport {
    /// The options used.
    pub options: PagerankBenchOptions,
    /// Threads used.
    pub threads: usize,
    /// The device the solver ran on: the CPU's model, or the GPU's name.
    pub device: String,
    /// One row per size.
    pub rows: Vec<PagerankBenchRow>,
}

/// Runs `dotcompute bench pagerank`.
pub fn bench(options: &PagerankBenchOptions) -> Result<PagerankBenchReport, PagerankError> {
    bench_with(options, |_| Ok::<(), PagerankError>(())).map(|(report, _)| report)
}

/// Like [`bench()`], calling `hook` for each size after our measurements,
/// while the edge-list file still exists (to measure another library on the
/// same file in the same run); returns the hook's results in size order.
/// The hook runs inside the bench's thread pool; an error from it ends the
/// bench (the file is removed all the same). `E` is the hook's error type,
/// into which the bench's own errors are converted.
pub fn bench_with<T, E, F>(options: &PagerankBenchOptions, mut hook: F) -> Result<(PagerankBenchReport, Vec<T>), E>
where
    T: Send,
    E: From<PagerankError> + Send,
    F: FnMut(&BenchGraph<'_>) -> Result<T, E> + Send,
{
    options.config.validate()?;
    if let Some(accurate) = &options.accurate {
        accurate.validate()?;
    }
    if options.repetitions == 0 {
        return Err(PagerankError::InvalidOption {
            parameter: "repetitions",
            value: "0".into(),
            reason: "must be at least 1".into(),
        }
        .into());
    }
    let solver = device::Solver::open(options.backend)?;
    with_pool(options.threads, || {
        let threads = rayon::current_num_threads();
        let dir = options.dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut rows = Vec::with_capacity(options.sizes.len());
        let mut hooked = Vec::with_capacity(options.sizes.len());
        for &nodes in &options.sizes {
            let start = Instant::now();
            let (src, dst) = options
                .generator
                .edges(nodes, options.edges_per_node, options.seed)
                .map_err(PagerankError::from)?;
            let generate_seconds = start.elapsed().as_secs_f64();
            let path = dir.join(format!("dotcompute-bench-pagerank-{}-{nodes}.txt", std::process::id()));
            write_plain_edge_list(&path, &src, &dst).map_err(PagerankError::from)?;
            drop((src, dst));
            let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let load = LoadOptions {
                format: Some(GraphFormat::EdgeList),
                ids: NodeIds::Dense,
                min_nodes: nodes,
                ..LoadOptions::default()
            };
            let outcome = bench_size(&path, &load, options, &solver)
                .map_err(E::from)
                .and_then(|samples| {
                    let accurate = samples.accurate.as_ref().map(|(_, r)| r);
                    let (ranks, ranks_config) = match (accurate, options.accurate) {
                        (Some(r), Some(config)) => (&r.ranks, config),
                        _ => (&samples.last.ranks, options.config),
                    };
                    let view = BenchGraph {
                        nodes,
                        path: &path,
                        graph: &samples.graph,
                        ranks,
                        ranks_config,
                    };
                    let extra = hook(&view)?;
                    Ok((samples, extra))
                });
            let _ = std::fs::remove_file(&path);
            let (samples, extra) = outcome?;
            hooked.push(extra);
            let compute = Timing::of(&samples.computes);
            let edges = samples.graph.num_edges();
            let accurate = match (samples.accurate, options.accurate) {
                (Some((times, result)), Some(config)) => Some(AccurateSolve {
                    config,
                    compute_seconds: Timing::of(&times),
                    total_seconds: Timing::of(
                        &samples.loads.iter().zip(&times).map(|(l, c)| l + c).collect::<Vec<_>>(),
                    ),
                    iterations: result.iterations,
                    converged: result.converged,
                    residual: result.residual,
                }),
                _ => None,
            };
            rows.push(PagerankBenchRow {
                nodes,
                edges,
                generate_seconds,
                file_bytes,
                load_seconds: Timing::of(&samples.loads),
                compute_seconds: compute,
                total_seconds: Timing::of(&samples.totals),
                iterations: samples.last.iterations,
                converged: samples.last.converged,
                residual: samples.last.residual,
                edges_per_second: edges as f64 / compute.median.max(f64::MIN_POSITIVE),
                accurate,
            });
        }
        Ok((
            PagerankBenchReport {
                options: options.clone(),
                threads,
                device: solver.device_name(),
                rows,
            },
            hooked,
        ))
    })
}

/// The measurements of one size.
struct BenchSamples {
    loads: Vec<f64>,
    computes: Vec<f64>,
    totals: Vec<f64>,
    /// The default solve of the last repetition.
    last: PagerankResult,
    /// The accurate solves' times and the last one's result.
    accurate: Option<(Vec<f64>, PagerankResult)>,
    /// The graph of the last repetition.
    graph: Graph,
}

/// Each repetition loads the file, solves it with the default config and,
/// if asked, again with the accurate one, on `solver` (its kernel
/// compilation is not counted).
fn bench_size(
    path: &Path,
    load: &LoadOptions,
    options: &PagerankBenchOptions,
    solver: &device::Solver,
) -> Result<BenchSamples, PagerankError> {
    let (mut loads, mut computes, mut totals, mut accurate_times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    let mut accurate_last = None;
    for _ in 0..options.repetitions {
        // The previous repetition's graph is freed before the clock starts.
        drop(last.take());
        let t0 = Instant::now();
        let graph = load_graph(path, load)?;
        let t1 = Instant::now();
        let (result, timings) = solver.solve(&graph, &options.config, &Progress::new())?;
        let t2 = Instant::now();
        let compile = timings.map_or(0.0, |t| t.compile_seconds);
        loads.push((t1 - t0).as_secs_f64());
        computes.push(((t2 - t1).as_secs_f64() - compile).max(0.0));
        totals.push(((t2 - t0).as_secs_f64() - compile).max(0.0));
        if let Some(config) = &options.accurate {
            let t3 = Instant::now();
            let (precise, timings) = solver.solve(&graph, config, &Progress::new())?;
            let compile = timings.map_or(0.0, |t| t.compile_seconds);
            accurate_times.push((t3.elapsed().as_secs_f64() - compile).max(0.0));
            accurate_last = Some(precise);
        }
        last = Some((result, graph));
    }
    let (last, graph) = last.ok_or(PagerankError::EmptyGraph)?;
    Ok(BenchSamples {
        loads,
        computes,
        totals,
        last,
        accurate: accurate_last.map(|r| (accurate_times, r)),
        graph,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_validate() {
        assert_eq!("L1".parse::<Norm>().unwrap(), Norm::L1);
        assert_eq!("linf".parse::<Norm>().unwrap(), Norm::Linf);
        assert!("l2".parse::<Norm>().is_err());
        assert_eq!("ignore".parse::<Dangling>().unwrap(), Dangling::Ignore);
        assert!("keep".parse::<Dangling>().is_err());
        for (cfg, name) in [
            (
                PagerankConfig {
                    damping: 1.5,
                    ..Default::default()
                },
                "damping",
            ),
            (
                PagerankConfig {
                    tolerance: f64::NAN,
                    ..Default::default()
                },
                "tolerance",
            ),
            (
                PagerankConfig {
                    max_iterations: 0,
                    ..Default::default()
                },
                "max_iterations",
            ),
        ] {
            match cfg.validate() {
                Err(PagerankError::InvalidOption { parameter, .. }) => assert_eq!(parameter, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
