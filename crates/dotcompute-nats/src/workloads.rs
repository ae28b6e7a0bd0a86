//! The workload kernels a node serves to others (what `dotcompute node`
//! hosts): the streaming anomaly detector and PageRank.
//!
//! - [`ANOMALY`]: the detector of [`dotcompute_workloads::anomaly`] as an
//!   async ring kernel; it takes [`AnomalyBatch`]es and answers each with an
//!   [`AnomalyBatchResult`] (both cross the wire as they are).
//! - [`PAGERANK`]: a PageRank kernel holding its graph, spoken to with
//!   [`PagerankQuery`] / [`PagerankAnswer`]: wire forms of the library's
//!   operations that carry a graph as edge lists, so the graph is built and
//!   checked on the serving node ([`Graph::from_edges`] validates every
//!   index) and its size is bounded before anything is allocated.
//!
//! Invariant: a query the kernel cannot serve is answered with
//! [`PagerankResult::Error`]; the kernel keeps running (as the library's
//! PageRank actor does).

use dotcompute::{BlockingContext, KernelSpec, Message, MessageHeader, RingKernelRuntime};
use dotcompute_workloads::anomaly::actor::{async_kernel_spec, AnomalyBatch, AnomalyBatchResult};
use dotcompute_workloads::anomaly::DetectorConfig;
use dotcompute_workloads::graph::Graph;
use dotcompute_workloads::pagerank::actor::{PagerankAnswer as LibAnswer, PagerankOp, PagerankState};
use dotcompute_workloads::pagerank::PagerankConfig;
use serde::{Deserialize, Serialize};

use crate::error::NatsError;

/// The anomaly detector's kernel id.
pub const ANOMALY: &str = "anomaly";
/// The PageRank kernel's id.
pub const PAGERANK: &str = "pagerank";

/// Most nodes a graph sent over the wire may declare.
pub const MAX_WIRE_NODES: usize = 1 << 24;
/// Most nodes a top-k query may ask for.
pub const MAX_TOP_K: usize = 10_000;

/// What a PageRank query asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PagerankCommand {
    /// Replace the graph with `nodes` nodes and the edges `src[i] -> dst[i]`.
    SetEdges {
        /// Node count (at most [`MAX_WIRE_NODES`]).
        nodes: usize,
        /// Sources.
        src: Vec<u32>,
        /// Destinations.
        dst: Vec<u32>,
    },
    /// Add edges (indices past the end add nodes).
    AddEdges {
        /// Sources.
        src: Vec<u32>,
        /// Destinations.
        dst: Vec<u32>,
    },
    /// Recompute now.
    Recompute {
        /// Start from the previous ranks.
        warm_start: bool,
    },
    /// One node's rank.
    Rank {
        /// The node's label.
        node: u64,
    },
    /// The `k` highest-ranked nodes (at most [`MAX_TOP_K`]).
    TopK {
        /// How many.
        k: usize,
    },
    /// Graph size and solver state.
    Stats,
}

/// A PageRank query.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
pub struct PagerankQuery {
    /// What it asks.
    pub command: PagerankCommand,
    /// Message header.
    pub header: MessageHeader,
}

impl PagerankQuery {
    /// A query with a fresh header.
    pub fn new(command: PagerankCommand) -> Self {
        PagerankQuery {
            command,
            header: MessageHeader::new(),
        }
    }
}

/// What the PageRank kernel answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PagerankResult {
    /// The graph was replaced or extended: its size now.
    Graph {
        /// Nodes.
        nodes: usize,
        /// Edges.
        edges: usize,
    },
    /// The ranks were recomputed.
    Recomputed {
        /// Iterations.
        iterations: u32,
        /// Whether the tolerance was reached.
        converged: bool,
        /// The final residual.
        residual: f64,
    },
    /// One node's rank (`None`: no node has that label).
    Rank {
        /// The label.
        node: u64,
        /// Its rank.
        rank: Option<f64>,
    },
    /// `(label, rank)` of the highest-ranked nodes, highest first.
    TopK(Vec<(u64, f64)>),
    /// Graph size and solver state.
    Stats {
        /// Nodes.
        nodes: usize,
        /// Edges.
        edges: usize,
        /// Whether updates arrived since the last computation.
        stale: bool,
        /// Computations so far.
        recomputes: u64,
    },
    /// The query could not be served.
    Error(String),
}

/// The PageRank kernel's answer, correlated to its query.
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
pub struct PagerankAnswer {
    /// The result.
    pub result: PagerankResult,
    /// Message header (its correlation id is the query's id).
    pub header: MessageHeader,
}

/// Serves one query from `state`.
pub fn serve_pagerank(state: &mut PagerankState, command: PagerankCommand) -> PagerankResult {
    let op = match command {
        PagerankCommand::SetEdges { nodes, src, dst } => {
            if nodes > MAX_WIRE_NODES {
                return PagerankResult::Error(format!(
                    "a graph sent over the wire has at most {MAX_WIRE_NODES} nodes, not {nodes}"
                ));
            }
            match Graph::from_edges(nodes, &src, &dst) {
                Ok(g) => PagerankOp::SetGraph(g),
                Err(e) => return PagerankResult::Error(e.to_string()),
            }
        }
        PagerankCommand::AddEdges { src, dst } => {
            if src.iter().chain(&dst).any(|&i| i as usize >= MAX_WIRE_NODES) {
                return PagerankResult::Error(format!("node indices must be below {MAX_WIRE_NODES}"));
            }
            PagerankOp::AddEdges { src, dst }
        }
        PagerankCommand::Recompute { warm_start } => PagerankOp::Recompute { warm_start },
        PagerankCommand::Rank { node } => PagerankOp::Rank { node },
        PagerankCommand::TopK { k } => PagerankOp::TopK { k: k.min(MAX_TOP_K) },
        PagerankCommand::Stats => PagerankOp::Stats,
    };
    match state.handle(op) {
        LibAnswer::GraphSet { nodes, edges } | LibAnswer::EdgesAdded { nodes, edges } => {
            PagerankResult::Graph { nodes, edges }
        }
        LibAnswer::Configured => PagerankResult::Error("unexpected answer: configured".into()),
        LibAnswer::Recomputed(s) => PagerankResult::Recomputed {
            iterations: s.iterations,
            converged: s.converged,
            residual: s.residual,
        },
        LibAnswer::Rank { node, rank } => PagerankResult::Rank { node, rank },
        LibAnswer::TopK(v) => PagerankResult::TopK(v.into_iter().map(|r| (r.node, r.rank)).collect()),
        LibAnswer::Stats(s) => PagerankResult::Stats {
            nodes: s.nodes,
            edges: s.edges,
            stale: s.stale,
            recomputes: s.recomputes,
        },
        LibAnswer::Error(e) => PagerankResult::Error(e),
    }
}

/// The PageRank kernel `id`: a thread-mode kernel (the power iteration is
/// CPU work) answering every [`PagerankQuery`].
pub fn pagerank_kernel_spec(id: &str, config: PagerankConfig) -> Result<KernelSpec, dotcompute::Error> {
    KernelSpec::builder::<PagerankQuery, PagerankAnswer>(id)
        .queue_size(1024)
        .blocking_handler(
            move |mut ctx: BlockingContext<PagerankQuery, PagerankAnswer>| -> dotcompute::Result<()> {
                let mut state = PagerankState::new(config);
                loop {
                    let query = ctx.receive()?;
                    let header = MessageHeader::reply_to(&query.header);
                    let result = serve_pagerank(&mut state, query.command);
                    ctx.send(PagerankAnswer { result, header })?;
                }
            },
        )
        .build()
}

/// Launches and activates the workload kernels ([`ANOMALY`], [`PAGERANK`])
/// in `rt` with their default settings.
pub fn launch(rt: &RingKernelRuntime) -> Result<(), NatsError> {
    let anomaly = async_kernel_spec(ANOMALY, DetectorConfig::default()).map_err(|e| NatsError::InvalidOption {
        option: "anomaly detector",
        value: String::new(),
        reason: e.to_string(),
    })?;
    rt.launch_spec(anomaly)?;
    rt.activate(ANOMALY)?;
    rt.launch_spec(pagerank_kernel_spec(PAGERANK, PagerankConfig::default())?)?;
    rt.activate(PAGERANK)?;
    Ok(())
}

/// Exports the workload kernels of `rt` (launched by [`launch`]).
pub async fn export(node: &crate::NatsNode, options: &crate::ExportOptions) -> Result<Vec<crate::Export>, NatsError> {
    Ok(vec![
        node.export::<AnomalyBatch, AnomalyBatchResult>(ANOMALY, options.clone())
            .await?,
        node.export::<PagerankQuery, PagerankAnswer>(PAGERANK, options.clone())
            .await?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_is_served_and_bad_queries_are_answered_with_errors() {
        let mut s = PagerankState::new(PagerankConfig::default());
        assert!(matches!(
            serve_pagerank(&mut s, PagerankCommand::Rank { node: 0 }),
            PagerankResult::Error(_)
        ));
        assert_eq!(
            serve_pagerank(
                &mut s,
                PagerankCommand::SetEdges {
                    nodes: 3,
                    src: vec![0, 1, 2],
                    dst: vec![1, 2, 0]
                }
            ),
            PagerankResult::Graph { nodes: 3, edges: 3 }
        );
        match serve_pagerank(&mut s, PagerankCommand::Rank { node: 1 }) {
            PagerankResult::Rank { rank: Some(r), .. } => assert!((r - 1.0 / 3.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            serve_pagerank(
                &mut s,
                PagerankCommand::SetEdges {
                    nodes: usize::MAX,
                    src: vec![],
                    dst: vec![]
                }
            ),
            PagerankResult::Error(_)
        ));
        assert!(matches!(
            serve_pagerank(
                &mut s,
                PagerankCommand::SetEdges {
                    nodes: 2,
                    src: vec![0],
                    dst: vec![5]
                }
            ),
            PagerankResult::Error(_)
        ));
        assert!(matches!(
            serve_pagerank(
                &mut s,
                PagerankCommand::AddEdges {
                    src: vec![u32::MAX],
                    dst: vec![0]
                }
            ),
            PagerankResult::Error(_)
        ));
        match serve_pagerank(&mut s, PagerankCommand::TopK { k: usize::MAX }) {
            PagerankResult::TopK(v) => assert_eq!(v.len(), 3),
            other => panic!("{other:?}"),
        }
    }
}
