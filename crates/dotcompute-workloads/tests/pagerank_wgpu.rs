//! PageRank on the wgpu backend (lavapipe in CI) against the CPU solvers:
//! the WGSL kernels one launch at a time against their CPU twins, and whole
//! solves on generated graphs up to 100k nodes, in f64 and in the f32
//! variant. Skips, saying why, without an adapter (fails in CI).
#![cfg(feature = "wgpu")]

#[path = "../../dotcompute/tests/wgpu_common/mod.rs"]
mod wgpu_common;

use std::sync::Arc;

use dotcompute::device::wgpu::{AdapterSelector, WgpuBackend, WgpuOptions};
use dotcompute::device::{Backend, CpuBackend};
use dotcompute_workloads::graph::{Graph, GraphGenerator};
use dotcompute_workloads::pagerank::device::DevicePagerank;
use dotcompute_workloads::pagerank::{pagerank, run, Dangling, Norm, PagerankBackend, PagerankConfig, PagerankOptions};
use wgpu_common::backend;

fn configs() -> Vec<PagerankConfig> {
    let mut v = Vec::new();
    for dangling in [Dangling::Redistribute, Dangling::Ignore] {
        for norm in [Norm::L1, Norm::Linf] {
            v.push(PagerankConfig {
                dangling,
                norm,
                tolerance: 1e-10,
                ..PagerankConfig::default()
            });
        }
    }
    v
}

#[test]
fn f64_solves_equal_the_cpu_device_driver_bit_for_bit_and_the_rayon_solver_to_rounding() {
    let Some(gpu) = backend() else { return };
    if !gpu.supports_f64() {
        eprintln!(
            "skipped: {} has no SHADER_F64 (the f32 test covers it)",
            gpu.device().name
        );
        return;
    }
    let cpu = Arc::new(CpuBackend::new());
    let graphs = vec![
        ("single node", Graph::from_edges(1, &[], &[]).unwrap()),
        ("no edges", Graph::from_edges(5, &[], &[]).unwrap()),
        (
            "star with dangling leaves",
            Graph::from_edges(6, &[0, 0, 0, 0, 1, 2], &[1, 2, 3, 4, 0, 0]).unwrap(),
        ),
        (
            "chunked 20000x5",
            GraphGenerator::Chunked.graph(20_000, 5.0, 42).unwrap(),
        ),
    ];
    for (name, g) in &graphs {
        let on_gpu = DevicePagerank::new(&gpu, g).unwrap();
        let on_cpu = DevicePagerank::new(&cpu, g).unwrap();
        for cfg in configs() {
            let a = on_gpu.solve(&cfg, None).unwrap().result;
            let b = on_cpu.solve(&cfg, None).unwrap().result;
            assert_eq!(a, b, "{name} {cfg:?}: the same operations in the same order");
            let r = pagerank(g, &cfg).unwrap();
            assert_eq!(a.iterations, r.iterations, "{name} {cfg:?}");
            for (x, y) in a.ranks.iter().zip(&r.ranks) {
                assert!((x - y).abs() <= 1e-12 * y.abs().max(1e-300), "{name}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn a_generated_100k_node_graph_agrees_with_the_cpu_solver() {
    let Some(shared) = backend() else { return };
    // Its own device, so the transfer counts are this solve's alone.
    let gpu = Arc::new(WgpuBackend::new(shared.device().ordinal).unwrap());
    let g = GraphGenerator::Chunked.graph(100_000, 5.0, 42).unwrap();
    let cfg = PagerankConfig::default();
    let cpu = pagerank(&g, &cfg).unwrap();
    let solve = DevicePagerank::new(&gpu, &g).unwrap().solve(&cfg, None).unwrap();
    let r = &solve.result;
    assert!(r.converged);
    // f64: rounding only (the reductions' order differs from rayon's).
    let tol = if gpu.supports_f64() { 1e-12 } else { 2e-4 };
    assert!(r.iterations.abs_diff(cpu.iterations) <= u32::from(!gpu.supports_f64()));
    for (x, y) in r.ranks.iter().zip(&cpu.ranks) {
        assert!((x - y).abs() <= tol * y, "{x} vs {y}");
    }
    // One 24-byte read-back per iteration, the start's and the ranks.
    assert_eq!(solve.timings.copies_to_host, u64::from(r.iterations) + 2);
}

#[test]
fn the_f32_variant_meets_its_stated_tolerance() {
    let Some(gpu) = backend() else { return };
    let plain = Arc::new(
        WgpuBackend::with_options(WgpuOptions::new(AdapterSelector::Index(gpu.device().ordinal)).without_f64())
            .unwrap(),
    );
    let g = GraphGenerator::Chunked.graph(100_000, 5.0, 42).unwrap();
    for cfg in configs().into_iter().map(|c| PagerankConfig { tolerance: 1e-6, ..c }) {
        let cpu = pagerank(&g, &cfg).unwrap();
        let r = DevicePagerank::new(&plain, &g)
            .unwrap()
            .solve(&cfg, None)
            .unwrap()
            .result;
        assert!(r.converged, "{cfg:?}");
        let worst = r
            .ranks
            .iter()
            .zip(&cpu.ranks)
            .map(|(x, y)| (x - y).abs() / y)
            .fold(0.0f64, f64::max);
        // Stated in kernels/wgsl/pagerank_common_f32.wgsl and the README:
        // relative 1e-4 against the f64 CPU solver at tolerance 1e-6.
        assert!(worst <= 1e-4, "{cfg:?}: worst relative difference {worst:e}");
    }
}

#[test]
fn run_with_the_wgpu_backend_reports_the_same_ranks_and_json_shape() {
    let Some(_) = backend() else { return };
    let mut opts = PagerankOptions::generated(5000, 5.0);
    opts.top = 5;
    let cpu = run(&opts).unwrap();
    opts.backend = "wgpu:0".parse::<PagerankBackend>().unwrap();
    let gpu = run(&opts).unwrap();
    assert_eq!(gpu.report.backend.to_string(), "wgpu:0");
    assert!(gpu.report.device_timings.is_some());
    let top = |r: &dotcompute_workloads::pagerank::PagerankRun| r.report.top.iter().map(|t| t.node).collect::<Vec<_>>();
    assert_eq!(top(&gpu), top(&cpu));
    let (a, b) = (
        serde_json::to_value(&gpu.report).unwrap(),
        serde_json::to_value(&cpu.report).unwrap(),
    );
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    assert!(matches!(
        run(&PagerankOptions {
            backend: PagerankBackend::Wgpu { device: Some(99) },
            ..opts
        }),
        Err(dotcompute_workloads::pagerank::PagerankError::Device(_))
    ));
}
