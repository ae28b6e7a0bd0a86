//! The workload examples run and give consistent results.

#[path = "../examples/pagerank_actor.rs"]
#[allow(dead_code)]
mod pagerank_actor;

use dotcompute_workloads::graph::GraphGenerator;
use dotcompute_workloads::pagerank::{pagerank, top_k, PagerankConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerank_actor_example_answers_like_a_direct_solve() {
    let s = pagerank_actor::run(20_000).await.unwrap();
    assert_eq!((s.nodes, s.edges, s.edges_after), (20_000, 100_000, 101_000));
    let g = GraphGenerator::Chunked.graph(20_000, 5.0, 42).unwrap();
    let direct = pagerank(&g, &PagerankConfig::default()).unwrap();
    assert_eq!(s.first_solve.iterations, direct.iterations);
    assert!(!s.first_solve.warm_start);
    assert_eq!(s.top, top_k(&g, &direct.ranks, 5));
    assert!(s.update_solve.warm_start && s.update_solve.converged);
    assert!(s.query_us > 0.0);
}

#[path = "../examples/streaming_pipeline.rs"]
#[allow(dead_code)]
mod streaming_pipeline;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_pipeline_example_alerts_every_anomaly_once() {
    let s = streaming_pipeline::run(100_000, 1000, 8).await.unwrap();
    assert_eq!(s.batches, 100);
    assert!(s.matches_per_point);
    assert_eq!(s.anomalies.len(), 894);
    assert_eq!(s.total, 894);
    assert_eq!(s.quality.true_positives, 894);
    assert_eq!(s.quality.precision, Some(1.0));
}
