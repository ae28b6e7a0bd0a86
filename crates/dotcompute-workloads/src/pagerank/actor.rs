//! PageRank as a ring kernel: the graph stays resident in the kernel, and
//! rank queries and graph updates are messages.
//!
//! The kernel receives [`PagerankRequest`]s and answers each with one
//! [`PagerankReply`] correlated to it (so [`RingKernelRuntime::call`] works).
//! It runs in [`ExecutionMode::Thread`](dotcompute::ExecutionMode::Thread): the
//! power iteration is CPU work (on rayon's global pool) and must not stall
//! the async runtime's workers.
//!
//! Invariants of [`PagerankState`] (the kernel's state, usable on its own):
//! - updates ([`PagerankOp::SetGraph`], [`PagerankOp::AddEdges`],
//!   [`PagerankOp::Configure`]) only mark the ranks stale; a query on stale
//!   ranks recomputes first, so every answer reflects every update received
//!   before it;
//! - an explicit [`PagerankOp::Recompute`] with `warm_start: false` gives
//!   exactly the ranks of [`pagerank`] on the same graph; a warm start (also
//!   used by lazy recomputation once ranks exist) begins from the previous
//!   ranks, normalised, and agrees with a cold start within the tolerance;
//! - a request that cannot be served (no graph yet, an unknown node label, a
//!   bad configuration) is answered with [`PagerankAnswer::Error`]; the
//!   kernel keeps running.
//!
//! ```
//! use dotcompute_workloads::graph::Graph;
//! use dotcompute_workloads::pagerank::actor::{kernel_spec, PagerankClient};
//! use dotcompute_workloads::pagerank::PagerankConfig;
//! use dotcompute::RingKernelRuntime;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let rt = RingKernelRuntime::new();
//! rt.launch_spec(kernel_spec("pagerank", PagerankConfig::default()).unwrap()).unwrap();
//! rt.activate("pagerank").unwrap();
//! let client = PagerankClient::new(&rt, "pagerank").unwrap();
//! client.set_graph(Graph::from_edges(3, &[0, 1, 2], &[1, 2, 0]).unwrap()).await.unwrap();
//! let r = client.rank(1).await.unwrap().unwrap();
//! assert!((r - 1.0 / 3.0).abs() < 1e-12);
//! rt.shutdown().await;
//! # });
//! ```

use std::time::Instant;

use serde::Serialize;

use super::{pagerank, pagerank_from, top_k, PagerankConfig, PagerankError, RankedNode};
use crate::graph::Graph;
use dotcompute::message::MessageHeader;
use dotcompute::runtime::context::BlockingContext;
use dotcompute::runtime::spec::KernelSpec;
use dotcompute::runtime::{KernelHandle, RingKernelRuntime};

/// What a request asks the PageRank kernel to do.
#[derive(Debug, Clone)]
pub enum PagerankOp {
    /// Replace the graph.
    SetGraph(Graph),
    /// Add edges `src[i] -> dst[i]` (node indices; ids past the end add nodes).
    AddEdges {
        /// Sources.
        src: Vec<u32>,
        /// Destinations.
        dst: Vec<u32>,
    },
    /// Change the iteration parameters.
    Configure(PagerankConfig),
    /// Recompute now.
    Recompute {
        /// Start from the previous ranks instead of `1/n`.
        warm_start: bool,
    },
    /// The rank of the node with this label (its id in the input).
    Rank {
        /// The node's label.
        node: u64,
    },
    /// The `k` highest-ranked nodes.
    TopK {
        /// How many.
        k: usize,
    },
    /// Graph size and solver state.
    Stats,
}

/// A request to the PageRank kernel.
#[derive(Debug, Clone, dotcompute::Message)]
pub struct PagerankRequest {
    /// The operation.
    pub op: PagerankOp,
    /// Message header.
    pub header: MessageHeader,
}

impl PagerankRequest {
    /// A request for `op` with a fresh header.
    pub fn new(op: PagerankOp) -> Self {
        PagerankRequest {
            op,
            header: MessageHeader::new(),
        }
    }
}

/// Summary of one recomputation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RecomputeSummary {
    /// Iterations performed.
    pub iterations: u32,
    /// Whether the tolerance was reached.
    pub converged: bool,
    /// Final residual in the configured norm.
    pub residual: f64,
    /// Wall time of the power iteration, seconds.
    pub seconds: f64,
    /// Whether it started from the previous ranks.
    pub warm_start: bool,
}

/// The kernel's state, as [`PagerankOp::Stats`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorStats {
    /// Nodes of the resident graph (0 before any graph).
    pub nodes: usize,
    /// Edges of the resident graph.
    pub edges: usize,
    /// Whether updates arrived since the last computation.
    pub stale: bool,
    /// Computations so far.
    pub recomputes: u64,
    /// The last computation.
    pub last: Option<RecomputeSummary>,
    /// The parameters in force.
    pub config: PagerankConfig,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum PagerankAnswer {
    /// The graph was replaced.
    GraphSet {
        /// Nodes now.
        nodes: usize,
        /// Edges now.
        edges: usize,
    },
    /// Edges were added.
    EdgesAdded {
        /// Nodes now.
        nodes: usize,
        /// Edges now.
        edges: usize,
    },
    /// The parameters were changed.
    Configured,
    /// The ranks were recomputed.
    Recomputed(RecomputeSummary),
    /// A node's rank (`None`: no node has that label).
    Rank {
        /// The label asked for.
        node: u64,
        /// Its rank.
        rank: Option<f64>,
    },
    /// The highest-ranked nodes, highest first.
    TopK(Vec<RankedNode>),
    /// Graph size and solver state.
    Stats(ActorStats),
    /// The request could not be served.
    Error(String),
}

/// The PageRank kernel's reply, correlated to its request.
#[derive(Debug, Clone, dotcompute::Message)]
pub struct PagerankReply {
    /// The answer.
    pub answer: PagerankAnswer,
    /// Message header (its correlation id is the request's id).
    pub header: MessageHeader,
}

/// The resident graph, its ranks and the solver parameters.
#[derive(Debug, Clone)]
pub struct PagerankState {
    config: PagerankConfig,
    graph: Option<Graph>,
    ranks: Option<Vec<f64>>,
    stale: bool,
    recomputes: u64,
    last: Option<RecomputeSummary>,
}

impl PagerankState {
    /// No graph yet.
    pub fn new(config: PagerankConfig) -> Self {
        PagerankState {
            config,
            graph: None,
            ranks: None,
            stale: true,
            recomputes: 0,
            last: None,
        }
    }

    /// The ranks, in node order, if computed and current.
    pub fn ranks(&self) -> Option<&[f64]> {
        if self.stale {
            None
        } else {
            self.ranks.as_deref()
        }
    }

    /// Serves one operation.
    pub fn handle(&mut self, op: PagerankOp) -> PagerankAnswer {
        match self.try_handle(op) {
            Ok(a) => a,
            Err(e) => PagerankAnswer::Error(e.to_string()),
        }
    }

    fn graph(&self) -> Result<&Graph, PagerankError> {
        self.graph.as_ref().ok_or_else(|| PagerankError::InvalidOption {
            parameter: "graph",
            value: "none".into(),
            reason: "no graph has been set (send SetGraph first)".into(),
        })
    }

    fn try_handle(&mut self, op: PagerankOp) -> Result<PagerankAnswer, PagerankError> {
        match op {
            PagerankOp::SetGraph(g) => {
                let (nodes, edges) = (g.num_nodes(), g.num_edges());
                self.graph = Some(g);
                self.ranks = None;
                self.stale = true;
                Ok(PagerankAnswer::GraphSet { nodes, edges })
            }
            PagerankOp::AddEdges { src, dst } => {
                let g = self.graph()?.with_added_edges(&src, &dst)?;
                let (nodes, edges) = (g.num_nodes(), g.num_edges());
                self.graph = Some(g);
                self.stale = true;
                Ok(PagerankAnswer::EdgesAdded { nodes, edges })
            }
            PagerankOp::Configure(config) => {
                config.validate()?;
                self.config = config;
                self.stale = true;
                Ok(PagerankAnswer::Configured)
            }
            PagerankOp::Recompute { warm_start } => Ok(PagerankAnswer::Recomputed(self.recompute(warm_start)?)),
            PagerankOp::Rank { node } => {
                self.refresh()?;
                let g = self.graph()?;
                let rank = g
                    .labels()
                    .index_of(node, g.num_nodes())
                    .and_then(|i| self.ranks.as_ref().and_then(|r| r.get(i).copied()));
                Ok(PagerankAnswer::Rank { node, rank })
            }
            PagerankOp::TopK { k } => {
                self.refresh()?;
                let g = self.graph()?;
                let ranks = self.ranks.as_deref().unwrap_or(&[]);
                Ok(PagerankAnswer::TopK(top_k(g, ranks, k)))
            }
            PagerankOp::Stats => Ok(PagerankAnswer::Stats(ActorStats {
                nodes: self.graph.as_ref().map_or(0, Graph::num_nodes),
                edges: self.graph.as_ref().map_or(0, Graph::num_edges),
                stale: self.stale,
                recomputes: self.recomputes,
                last: self.last,
                config: self.config,
            })),
        }
    }

    fn refresh(&mut self) -> Result<(), PagerankError> {
        if self.stale {
            self.recompute(self.ranks.is_some())?;
        }
        Ok(())
    }

    fn recompute(&mut self, warm_start: bool) -> Result<RecomputeSummary, PagerankError> {
        let g = self.graph()?;
        let n = g.num_nodes();
        let start = Instant::now();
        let warm = match (&self.ranks, warm_start) {
            (Some(prev), true) if n > 0 => {
                // Old ranks, new nodes at the old mean, scaled to sum to 1.
                let mean = prev.iter().sum::<f64>() / prev.len().max(1) as f64;
                let mut init: Vec<f64> = (0..n).map(|i| prev.get(i).copied().unwrap_or(mean)).collect();
                let total: f64 = init.iter().sum();
                if total > 0.0 && total.is_finite() {
                    init.iter_mut().for_each(|x| *x /= total);
                    Some(init)
                } else {
                    None
                }
            }
            _ => None,
        };
        let result = match &warm {
            Some(init) => pagerank_from(g, &self.config, Some(init))?,
            None => pagerank(g, &self.config)?,
        };
        let summary = RecomputeSummary {
            iterations: result.iterations,
            converged: result.converged,
            residual: result.residual,
            seconds: start.elapsed().as_secs_f64(),
            warm_start: warm.is_some(),
        };
        self.ranks = Some(result.ranks);
        self.stale = false;
        self.recomputes += 1;
        self.last = Some(summary);
        Ok(summary)
    }
}

/// The kernel: a thread-mode ring kernel holding a [`PagerankState`] and
/// answering every request. The state starts empty on each (re)start.
pub fn kernel_spec(id: &str, config: PagerankConfig) -> Result<KernelSpec, dotcompute::Error> {
    KernelSpec::builder::<PagerankRequest, PagerankReply>(id)
        .queue_size(1024)
        .blocking_handler(
            move |mut ctx: BlockingContext<PagerankRequest, PagerankReply>| -> dotcompute::Result<()> {
                let mut state = PagerankState::new(config);
                loop {
                    let request = ctx.receive()?;
                    let header = MessageHeader::reply_to(&request.header);
                    let answer = state.handle(request.op);
                    ctx.send(PagerankReply { answer, header })?;
                }
            },
        )
        .build()
}

/// Typed access to a running PageRank kernel.
#[derive(Clone)]
pub struct PagerankClient {
    handle: KernelHandle<PagerankRequest, PagerankReply>,
}

impl PagerankClient {
    /// A client for the kernel `id` of `runtime` (launched from [`kernel_spec`]).
    pub fn new(runtime: &RingKernelRuntime, id: &str) -> Result<Self, dotcompute::Error> {
        Ok(PagerankClient {
            handle: runtime.handle(id)?,
        })
    }

    /// Sends `op` and waits for its answer; [`PagerankAnswer::Error`] becomes
    /// [`PagerankError::Rejected`].
    pub async fn call(&self, op: PagerankOp) -> Result<PagerankAnswer, PagerankError> {
        let reply = self
            .handle
            .call(PagerankRequest::new(op))
            .await
            .map_err(dotcompute::Error::from)?;
        match reply.answer {
            PagerankAnswer::Error(reason) => Err(PagerankError::Rejected { reason }),
            a => Ok(a),
        }
    }

    /// Replaces the graph; returns `(nodes, edges)`.
    pub async fn set_graph(&self, graph: Graph) -> Result<(usize, usize), PagerankError> {
        match self.call(PagerankOp::SetGraph(graph)).await? {
            PagerankAnswer::GraphSet { nodes, edges } => Ok((nodes, edges)),
            other => Err(unexpected(other)),
        }
    }

    /// Adds edges; returns `(nodes, edges)`.
    pub async fn add_edges(&self, src: Vec<u32>, dst: Vec<u32>) -> Result<(usize, usize), PagerankError> {
        match self.call(PagerankOp::AddEdges { src, dst }).await? {
            PagerankAnswer::EdgesAdded { nodes, edges } => Ok((nodes, edges)),
            other => Err(unexpected(other)),
        }
    }

    /// Recomputes now.
    pub async fn recompute(&self, warm_start: bool) -> Result<RecomputeSummary, PagerankError> {
        match self.call(PagerankOp::Recompute { warm_start }).await? {
            PagerankAnswer::Recomputed(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// The rank of the node labelled `node` (`None`: no such node).
    pub async fn rank(&self, node: u64) -> Result<Option<f64>, PagerankError> {
        match self.call(PagerankOp::Rank { node }).await? {
            PagerankAnswer::Rank { rank, .. } => Ok(rank),
            other => Err(unexpected(other)),
        }
    }

    /// The `k` highest-ranked nodes.
    pub async fn top_k(&self, k: usize) -> Result<Vec<RankedNode>, PagerankError> {
        match self.call(PagerankOp::TopK { k }).await? {
            PagerankAnswer::TopK(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// Graph size and solver state.
    pub async fn stats(&self) -> Result<ActorStats, PagerankError> {
        match self.call(PagerankOp::Stats).await? {
            PagerankAnswer::Stats(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(answer: PagerankAnswer) -> PagerankError {
    PagerankError::Rejected {
        reason: format!("unexpected answer {answer:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_answers_queries_and_updates() {
        let mut s = PagerankState::new(PagerankConfig::default());
        assert!(matches!(s.handle(PagerankOp::TopK { k: 1 }), PagerankAnswer::Error(e) if e.contains("SetGraph")));
        let g = Graph::from_edges(3, &[0, 1], &[1, 2]).unwrap();
        assert_eq!(
            s.handle(PagerankOp::SetGraph(g.clone())),
            PagerankAnswer::GraphSet { nodes: 3, edges: 2 }
        );
        assert!(s.ranks().is_none());
        let direct = pagerank(&g, &PagerankConfig::default()).unwrap();
        match s.handle(PagerankOp::Rank { node: 2 }) {
            PagerankAnswer::Rank { node: 2, rank: Some(r) } => assert_eq!(r, direct.ranks[2]),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.ranks().unwrap(), &direct.ranks[..]);
        assert_eq!(
            s.handle(PagerankOp::Rank { node: 9 }),
            PagerankAnswer::Rank { node: 9, rank: None }
        );
        // An update makes the next query recompute (warm) on the new graph.
        s.handle(PagerankOp::AddEdges {
            src: vec![2],
            dst: vec![0],
        });
        assert!(s.ranks().is_none());
        let PagerankAnswer::TopK(top) = s.handle(PagerankOp::TopK { k: 3 }) else {
            panic!("expected TopK")
        };
        let cycle = pagerank(
            &Graph::from_edges(3, &[0, 1, 2], &[1, 2, 0]).unwrap(),
            &PagerankConfig::default(),
        )
        .unwrap();
        for t in &top {
            assert!((t.rank - cycle.ranks[t.node as usize]).abs() < 1e-6);
        }
        let PagerankAnswer::Stats(st) = s.handle(PagerankOp::Stats) else {
            panic!("expected Stats")
        };
        assert_eq!((st.nodes, st.edges, st.recomputes, st.stale), (3, 3, 2, false));
        assert!(st.last.unwrap().warm_start);
        // A cold recompute equals the direct solution exactly.
        let PagerankAnswer::Recomputed(sum) = s.handle(PagerankOp::Recompute { warm_start: false }) else {
            panic!("expected Recomputed")
        };
        assert!(!sum.warm_start);
        assert_eq!(s.ranks().unwrap(), &cycle.ranks[..]);
        assert!(matches!(
            s.handle(PagerankOp::Configure(PagerankConfig {
                damping: 2.0,
                ..Default::default()
            })),
            PagerankAnswer::Error(_)
        ));
    }
}
