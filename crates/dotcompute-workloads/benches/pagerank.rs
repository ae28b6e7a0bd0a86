//! PageRank on PyDotCompute's largest benchmark graph (1M nodes, 5M edges,
//! its chunked generator with seed 42): loading the edge list from a file,
//! each norm's solve, and load + solve together, on all cores.
//!
//! `cargo bench -p dotcompute-workloads --bench pagerank`
//! (`DOTCOMPUTE_BENCH_NODES=100000` for a smaller graph).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dotcompute_workloads::graph::{load_graph, write_edge_list, GraphFormat, GraphGenerator, LoadOptions, NodeIds};
use dotcompute_workloads::pagerank::{pagerank, Norm, PagerankConfig};

fn nodes() -> usize {
    std::env::var("DOTCOMPUTE_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn workload(c: &mut Criterion) {
    let n = nodes();
    let (src, dst) = GraphGenerator::Chunked.edges(n, 5.0, 42).expect("generator");
    let path = std::env::temp_dir().join(format!("dotcompute-bench-{}-{n}.txt", std::process::id()));
    write_edge_list(&path, n, &src, &dst).expect("write the edge list");
    let load = LoadOptions {
        format: Some(GraphFormat::EdgeList),
        ids: NodeIds::Dense,
        min_nodes: n,
        ..LoadOptions::default()
    };
    let graph = load_graph(&path, &load).expect("load");
    let linf = PagerankConfig::default();
    let l1 = PagerankConfig {
        norm: Norm::L1,
        ..PagerankConfig::default()
    };

    let mut g = c.benchmark_group(format!("pagerank/{n}_nodes_{}_edges", src.len()));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(src.len() as u64));
    g.bench_function("load edge list (read+parse+CSR)", |b| {
        b.iter(|| black_box(load_graph(&path, &load).expect("load").num_edges()))
    });
    g.bench_function("solve L∞<1e-6", |b| {
        b.iter(|| black_box(pagerank(&graph, &linf).expect("solve").iterations))
    });
    g.bench_function("solve L1<1e-6", |b| {
        b.iter(|| black_box(pagerank(&graph, &l1).expect("solve").iterations))
    });
    g.bench_function("load + solve L∞<1e-6", |b| {
        b.iter(|| {
            let g = load_graph(&path, &load).expect("load");
            black_box(pagerank(&g, &linf).expect("solve").iterations)
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, workload);
criterion_main!(benches);
