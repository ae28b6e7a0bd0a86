//! PageRank as a ring kernel: the graph stays resident in a thread-mode
//! kernel, and the host asks for ranks and sends graph updates as messages.
//!
//! Run with `cargo run --release -p dotcompute --example pagerank_actor [-- NODES]`
//! (default 1,000,000 nodes, 5 edges per node: PyDotCompute's largest
//! graph, generated exactly as its benchmark does). It prints the time of the
//! first solve, the round-trip time of rank queries against the resident
//! ranks, and a warm-started recompute after adding edges.

use std::error::Error;
use std::time::Instant;

use dotcompute::RingKernelRuntime;
use dotcompute_workloads::graph::GraphGenerator;
use dotcompute_workloads::numpy_rng::NumpyGenerator;
use dotcompute_workloads::pagerank::actor::{kernel_spec, PagerankClient, RecomputeSummary};
use dotcompute_workloads::pagerank::{PagerankConfig, RankedNode};

/// What the example measured.
#[derive(Debug)]
pub struct Summary {
    /// Nodes and edges of the generated graph.
    pub nodes: usize,
    /// Edges before the update.
    pub edges: usize,
    /// The first (cold) solve, triggered by the first query.
    pub first_solve: RecomputeSummary,
    /// The five best nodes after the first solve.
    pub top: Vec<RankedNode>,
    /// Rank queries answered from the resident ranks.
    pub queries: usize,
    /// Mean round trip of one rank query, microseconds.
    pub query_us: f64,
    /// Edges after the update.
    pub edges_after: usize,
    /// The warm-started recompute after the update.
    pub update_solve: RecomputeSummary,
}

/// Runs the scenario on a fresh runtime.
pub async fn run(nodes: usize) -> Result<Summary, Box<dyn Error + Send + Sync>> {
    let rt = RingKernelRuntime::new();
    let outcome = scenario(&rt, nodes).await;
    rt.shutdown().await;
    outcome
}

async fn scenario(rt: &RingKernelRuntime, nodes: usize) -> Result<Summary, Box<dyn Error + Send + Sync>> {
    rt.launch_spec(kernel_spec("pagerank", PagerankConfig::default())?)?;
    rt.activate("pagerank")?;
    let client = PagerankClient::new(rt, "pagerank")?;

    let graph = GraphGenerator::Chunked.graph(nodes, 5.0, 42)?;
    let (nodes, edges) = client.set_graph(graph).await?;

    // The first query finds the ranks stale and solves (cold).
    let top = client.top_k(5).await?;
    let first_solve = client.stats().await?.last.ok_or("no solve recorded")?;

    // Queries against the resident ranks: one message round trip each.
    let queries = 1000;
    let start = Instant::now();
    for node in 0..queries as u64 {
        client.rank(node % nodes as u64).await?;
    }
    let query_us = start.elapsed().as_secs_f64() * 1e6 / queries as f64;

    // An update: 1% more random edges, then a warm-started recompute.
    let mut rng = NumpyGenerator::new(7);
    let extra = edges / 100;
    let src: Vec<u32> = (0..extra).map(|_| rng.integers(0, nodes as i64) as u32).collect();
    let dst: Vec<u32> = (0..extra).map(|_| rng.integers(0, nodes as i64) as u32).collect();
    let (_, edges_after) = client.add_edges(src, dst).await?;
    let update_solve = client.recompute(true).await?;

    Ok(Summary {
        nodes,
        edges,
        first_solve,
        top,
        queries,
        query_us,
        edges_after,
        update_solve,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let nodes = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("NODES must be a number: {e}"))?,
        None => 1_000_000,
    };
    let s = run(nodes).await?;
    println!(
        "graph: {} nodes, {} edges (PyDotCompute's chunked generator, seed 42)",
        s.nodes, s.edges
    );
    println!(
        "first solve: {} iterations, residual {:.3e}, {:.1} ms",
        s.first_solve.iterations,
        s.first_solve.residual,
        s.first_solve.seconds * 1e3
    );
    for (i, t) in s.top.iter().enumerate() {
        println!("  #{} node {} rank {:.6e}", i + 1, t.node, t.rank);
    }
    println!("{} rank queries: {:.1} us per round trip", s.queries, s.query_us);
    println!(
        "after adding {} edges: warm recompute {} iterations, {:.1} ms",
        s.edges_after - s.edges,
        s.update_solve.iterations,
        s.update_solve.seconds * 1e3
    );
    Ok(())
}
