//! The device PageRank driver on PyDotCompute's 1M-node / 5M-edge graph
//! (chunked generator, seed 42), beside the rayon solver: a full solve
//! (L∞ < 1e-6, redistribute) on the CPU backend and on CUDA, and ten
//! iterations on CUDA (tolerance 0) for the per-iteration edge rate. Without
//! a GPU (or NVRTC) the CUDA cases are skipped with a printed reason.
//!
//! `cargo bench -p dotcompute-workloads --bench pagerank_device`
//! (`DOTCOMPUTE_BENCH_NODES=100000` for a smaller graph).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dotcompute::device::{CpuBackend, CudaBackend, KernelCompiler};
use dotcompute_workloads::graph::GraphGenerator;
use dotcompute_workloads::pagerank::device::DevicePagerank;
use dotcompute_workloads::pagerank::{pagerank, PagerankConfig};

fn nodes() -> usize {
    std::env::var("DOTCOMPUTE_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn cuda() -> Result<Arc<CudaBackend>, String> {
    KernelCompiler::available().map_err(|e| e.to_string())?;
    CudaBackend::new(0).map(Arc::new).map_err(|e| e.to_string())
}

fn workload(c: &mut Criterion) {
    let n = nodes();
    let graph = GraphGenerator::Chunked.graph(n, 5.0, 42).expect("generator");
    let edges = graph.num_edges() as u64;
    let cfg = PagerankConfig::default();
    let fixed = PagerankConfig {
        tolerance: 0.0,
        max_iterations: 10,
        ..PagerankConfig::default()
    };

    let mut g = c.benchmark_group(format!("pagerank_device/{n}_nodes_{edges}_edges"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(edges));
    g.bench_function("rayon solve L∞<1e-6", |b| {
        b.iter(|| black_box(pagerank(&graph, &cfg).expect("solve").iterations))
    });
    let cpu = Arc::new(CpuBackend::new());
    let on_cpu = DevicePagerank::new(&cpu, &graph).expect("upload");
    g.bench_function("cpu backend solve L∞<1e-6", |b| {
        b.iter(|| black_box(on_cpu.solve(&cfg, None).expect("solve").result.iterations))
    });
    match cuda() {
        Ok(gpu) => {
            let on_gpu = DevicePagerank::new(&gpu, &graph).expect("upload");
            g.bench_function("cuda solve L∞<1e-6", |b| {
                b.iter(|| black_box(on_gpu.solve(&cfg, None).expect("solve").result.iterations))
            });
            g.throughput(Throughput::Elements(edges * 10));
            g.bench_function("cuda 10 iterations", |b| {
                b.iter(|| black_box(on_gpu.solve(&fixed, None).expect("solve").result.iterations))
            });
        }
        Err(reason) => eprintln!("skipped the CUDA cases: {reason}"),
    }
    g.finish();
}

criterion_group!(benches, workload);
criterion_main!(benches);
