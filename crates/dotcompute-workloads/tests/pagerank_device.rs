//! The device PageRank driver (`workloads::pagerank::device`) against the
//! rayon solver: on the CPU backend everywhere (the `pagerank.cu` kernels'
//! Rust equivalents, so CI checks the driver's logic), on CUDA where a GPU
//! exists (skipped with a printed reason otherwise; `DOTCOMPUTE_REQUIRE_GPU=1`
//! makes that a failure), plus the kernels' compiled signatures (NVRTC) and
//! the typed error without a CUDA driver.

#[path = "../../dotcompute/tests/cuda_common/mod.rs"]
mod cuda_common;

use std::sync::Arc;

use cuda_common::{cuda_or_skip, nvrtc_or_skip};
use dotcompute::device::kernels::{self, ShippedKernels};
use dotcompute::device::{
    Accelerator, Backend, CompileOptions, CpuBackend, DeviceBuffer, DeviceError, KernelArg, KernelCompiler,
    LaunchConfig,
};
use dotcompute_workloads::graph::{Graph, GraphGenerator};
use dotcompute_workloads::pagerank::device::{pagerank_cuda, pagerank_on, DevicePagerank};
use dotcompute_workloads::pagerank::{
    bench, pagerank, pagerank_from, run, Dangling, Norm, PagerankBackend, PagerankBenchOptions, PagerankConfig,
    PagerankError, PagerankOptions, PagerankResult,
};

/// A deterministic xorshift stream.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// `n` nodes; only the first `n - dangling` have out-edges (`per_node`
/// each, to uniform destinations, self-loops and repeats allowed).
fn with_dangling(n: usize, dangling: usize, per_node: usize, seed: u64) -> Graph {
    let mut next = xorshift(seed);
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for u in 0..n - dangling {
        for _ in 0..per_node {
            src.push(u as u32);
            dst.push((next() % n as u64) as u32);
        }
    }
    Graph::from_edges(n, &src, &dst).unwrap()
}

fn graphs() -> Vec<(&'static str, Graph)> {
    vec![
        ("single node", Graph::from_edges(1, &[], &[]).unwrap()),
        ("no edges", Graph::from_edges(5, &[], &[]).unwrap()),
        ("cycle", Graph::from_edges(3, &[0, 1, 2], &[1, 2, 0]).unwrap()),
        (
            "star with dangling leaves",
            Graph::from_edges(6, &[0, 0, 0, 0, 1, 2], &[1, 2, 3, 4, 0, 0]).unwrap(),
        ),
        (
            "self-loops and repeated edges",
            Graph::from_edges(4, &[0, 0, 0, 1, 1, 2, 3], &[0, 1, 1, 1, 2, 3, 0]).unwrap(),
        ),
        ("half dangling", with_dangling(3000, 1500, 3, 7)),
        (
            "benchmark generator 3000x2",
            GraphGenerator::Benchmark.graph(3000, 2.0, 42).unwrap(),
        ),
        (
            "chunked generator 20000x5",
            GraphGenerator::Chunked.graph(20_000, 5.0, 42).unwrap(),
        ),
    ]
}

fn configs() -> Vec<PagerankConfig> {
    let mut v = Vec::new();
    for dangling in [Dangling::Redistribute, Dangling::Ignore] {
        for norm in [Norm::L1, Norm::Linf] {
            for tolerance in [1e-6, 1e-12] {
                v.push(PagerankConfig {
                    damping: 0.85,
                    tolerance,
                    norm,
                    max_iterations: 200,
                    dangling,
                });
            }
        }
    }
    v
}

/// `|a - b| <= rel · max(|a|, |b|)` elementwise.
fn assert_ranks_close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= rel * a.abs().max(b.abs()),
            "{what}: rank {i}: {a:e} vs {b:e} (relative {:e})",
            (a - b).abs() / b.abs()
        );
    }
}

/// The device result agrees with the rayon solver's: bit for bit where the
/// module docs promise it (ignore + L∞), to 1e-12 relative otherwise.
fn assert_agrees(dev: &PagerankResult, cpu: &PagerankResult, cfg: &PagerankConfig, what: &str) {
    assert_eq!(dev.iterations, cpu.iterations, "{what}: iterations");
    assert_eq!(dev.converged, cpu.converged, "{what}: converged");
    if cfg.dangling == Dangling::Ignore && cfg.norm == Norm::Linf {
        assert_eq!(dev.ranks, cpu.ranks, "{what}: ranks must be bit-identical");
        assert_eq!(dev.residual_linf.to_bits(), cpu.residual_linf.to_bits(), "{what}: L∞");
    } else {
        assert_ranks_close(&dev.ranks, &cpu.ranks, 1e-12, what);
    }
    // Residuals are differences of nearly equal ranks, so the ranks' rounding
    // differences (~1e-15 of a total of at most 1) show in them relatively
    // more: 1e-9 relative plus 1e-13 absolute.
    let near = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-13;
    assert!(
        near(dev.residual_l1, cpu.residual_l1) && near(dev.residual_linf, cpu.residual_linf),
        "{what}: residuals L1 {:e} vs {:e}, L∞ {:e} vs {:e}",
        dev.residual_l1,
        cpu.residual_l1,
        dev.residual_linf,
        cpu.residual_linf
    );
    let want = match cfg.norm {
        Norm::L1 => dev.residual_l1,
        Norm::Linf => dev.residual_linf,
    };
    assert_eq!(
        dev.residual.to_bits(),
        want.to_bits(),
        "{what}: residual is the configured norm's"
    );
}

#[test]
fn cpu_backend_driver_matches_the_rayon_solver() {
    let cpu = Arc::new(CpuBackend::new());
    for (name, g) in graphs() {
        let solver = DevicePagerank::new(&cpu, &g).unwrap();
        assert_eq!((solver.nodes(), solver.edges()), (g.num_nodes(), g.num_edges()));
        for cfg in configs() {
            let what = format!("{name}, {:?}/{:?}/tol {:e}", cfg.dangling, cfg.norm, cfg.tolerance);
            let want = pagerank(&g, &cfg).unwrap();
            let got = solver.solve(&cfg, None).unwrap();
            assert_agrees(&got.result, &want, &cfg, &what);
            // The wrapper is the same computation.
            assert_eq!(pagerank_on(&cpu, &g, &cfg).unwrap(), got.result, "{what}: pagerank_on");
        }
    }
}

#[test]
fn cpu_backend_driver_reproduces_pydotcompute_bit_for_bit() {
    // PyDotCompute's scipy result on generate_random_graph(1000, 2.0, 42):
    // 25 iterations, ranks sum 0.5696200034878134, first rank 0x3F4AA4D350572DA0
    // (the rayon solver's test pins the same numbers).
    let g = GraphGenerator::Benchmark.graph(1000, 2.0, 42).unwrap();
    let r = pagerank_on(&Arc::new(CpuBackend::new()), &g, &PagerankConfig::pydotcompute()).unwrap();
    assert!(r.converged);
    assert_eq!(r.iterations, 25);
    assert_eq!(r.residual.to_bits(), 0x3EAAFCD697898000);
    assert_eq!(r.ranks[0].to_bits(), 0x3F4AA4D350572DA0);
    assert_eq!(r.ranks, pagerank(&g, &PagerankConfig::pydotcompute()).unwrap().ranks);
}

#[test]
fn extreme_damping_and_iteration_limits() {
    let cpu = Arc::new(CpuBackend::new());
    let g = with_dangling(500, 100, 4, 3);
    for damping in [0.0, 0.5, 1.0] {
        for dangling in [Dangling::Redistribute, Dangling::Ignore] {
            let cfg = PagerankConfig {
                damping,
                tolerance: 1e-10,
                norm: Norm::L1,
                max_iterations: 60,
                dangling,
            };
            let what = format!("damping {damping}, {dangling:?}");
            assert_agrees(
                &pagerank_on(&cpu, &g, &cfg).unwrap(),
                &pagerank(&g, &cfg).unwrap(),
                &cfg,
                &what,
            );
        }
    }
    // Tolerance 0 never converges: every iteration runs and the last iterate comes back.
    let cfg = PagerankConfig {
        tolerance: 0.0,
        max_iterations: 7,
        ..PagerankConfig::default()
    };
    let r = pagerank_on(&cpu, &g, &cfg).unwrap();
    assert!(!r.converged);
    assert_eq!(r.iterations, 7);
    assert_agrees(&r, &pagerank(&g, &cfg).unwrap(), &cfg, "tolerance 0");
    // d = 0: every rank is exactly 1/n after one step.
    let cfg = PagerankConfig {
        damping: 0.0,
        ..PagerankConfig::default()
    };
    let r = pagerank_on(&cpu, &g, &cfg).unwrap();
    assert!(r.ranks.iter().all(|&x| x == 1.0 / 500.0));
}

#[test]
fn rows_past_one_grid_are_strided() {
    // More rows than PAGERANK_MAX_BLOCKS × PAGERANK_BLOCK threads: every
    // thread handles two rows.
    let rows = (kernels::PAGERANK_MAX_BLOCKS * kernels::PAGERANK_BLOCK) as usize;
    let n = rows + rows / 3;
    let cfg = kernels::pagerank_rows_config(n).unwrap();
    assert_eq!(cfg.grid.x, kernels::PAGERANK_MAX_BLOCKS);
    let g = with_dangling(n, n / 10, 1, 11);
    let cfg = PagerankConfig {
        tolerance: 0.0,
        max_iterations: 3,
        norm: Norm::L1,
        ..PagerankConfig::default()
    };
    let got = pagerank_on(&Arc::new(CpuBackend::new()), &g, &cfg).unwrap();
    assert_agrees(&got, &pagerank(&g, &cfg).unwrap(), &cfg, "strided rows");
}

#[test]
fn warm_start_matches_pagerank_from() {
    let cpu = Arc::new(CpuBackend::new());
    let g = GraphGenerator::Chunked.graph(5000, 5.0, 1).unwrap();
    let cfg = PagerankConfig {
        norm: Norm::L1,
        tolerance: 1e-10,
        ..PagerankConfig::default()
    };
    let cold = pagerank(&g, &cfg).unwrap();
    let changed = g.with_added_edges(&[1, 2, 3], &[4000, 4001, 4002]).unwrap();
    let want = pagerank_from(&changed, &cfg, Some(&cold.ranks)).unwrap();
    let solver = DevicePagerank::new(&cpu, &changed).unwrap();
    let got = solver.solve(&cfg, Some(&cold.ranks)).unwrap().result;
    assert_agrees(&got, &want, &cfg, "warm start");
    assert!(got.iterations < pagerank(&changed, &cfg).unwrap().iterations);
    // A bad start vector is refused as the CPU solver refuses it.
    for bad in [vec![0.1; 3], {
        let mut v = cold.ranks.clone();
        v[7] = f64::NAN;
        v
    }] {
        match solver.solve(&cfg, Some(&bad)) {
            Err(PagerankError::InvalidOption { parameter, .. }) => assert_eq!(parameter, "initial"),
            other => panic!("expected an invalid start vector, got {other:?}"),
        }
    }
}

#[test]
fn the_host_reads_back_three_numbers_per_iteration() {
    let cpu = Arc::new(CpuBackend::new());
    let g = GraphGenerator::Chunked.graph(10_000, 5.0, 42).unwrap();
    let n = g.num_nodes() as u64;
    let solver = DevicePagerank::new(&cpu, &g).unwrap();
    let uploaded = cpu.stats();
    assert_eq!(uploaded.htod_count, 3, "offsets, sources, out-degrees");
    assert_eq!(uploaded.htod_bytes, (n + 1) * 8 + g.num_edges() as u64 * 4 + n * 4);
    let s = solver
        .solve(
            &PagerankConfig {
                norm: Norm::L1,
                tolerance: 1e-12,
                ..PagerankConfig::default()
            },
            None,
        )
        .unwrap();
    let it = u64::from(s.result.iterations);
    assert!(it > 10);
    let t = s.timings;
    assert_eq!(
        t.launches,
        2 * (it + 1),
        "spmv + reduce per iteration, contrib + reduce once"
    );
    assert_eq!(t.copies_to_host, it + 2);
    assert_eq!(
        t.bytes_to_host,
        24 * (it + 1) + 8 * n,
        "24 bytes per iteration, the ranks once"
    );
    assert_eq!(cpu.stats().htod_count, 4, "the solve uploads only the start vector");
    assert!(t.iterate_seconds > 0.0 && t.solve_seconds() >= t.iterate_seconds);
    // Everything the solve allocated is freed.
    drop(solver);
    assert_eq!(cpu.stats().live_bytes, 0);
}

#[test]
fn failures_are_typed_errors() {
    let cpu = Arc::new(CpuBackend::new());
    let g = with_dangling(1000, 10, 3, 5);
    assert!(matches!(
        pagerank_on(
            &cpu,
            &Graph::from_edges(0, &[], &[]).unwrap(),
            &PagerankConfig::default()
        ),
        Err(PagerankError::EmptyGraph)
    ));
    let bad = PagerankConfig {
        damping: 1.5,
        ..PagerankConfig::default()
    };
    assert!(matches!(
        pagerank_on(&cpu, &g, &bad),
        Err(PagerankError::InvalidOption {
            parameter: "damping",
            ..
        })
    ));
    // A device too small for the vectors: out of memory, as an error.
    let small = Arc::new(CpuBackend::with_memory_limit(40_000));
    let err = pagerank_on(&small, &g, &PagerankConfig::default()).unwrap_err();
    assert!(
        matches!(err, PagerankError::Device(DeviceError::OutOfMemory { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("out of memory"), "{err}");
}

#[test]
fn cuda_without_a_driver_is_a_clear_error() {
    if Accelerator::discover().cuda_available() {
        eprintln!("skipped cuda_without_a_driver_is_a_clear_error: a CUDA GPU is present");
        return;
    }
    let g = Graph::from_edges(3, &[0, 1, 2], &[1, 2, 0]).unwrap();
    let err = pagerank_cuda(&g, &PagerankConfig::default(), 0).unwrap_err();
    match &err {
        PagerankError::Device(DeviceError::Unavailable { what, .. }) => assert_eq!(*what, "CUDA driver"),
        PagerankError::Device(DeviceError::DeviceNotFound { index: 0, count: 0 }) => {}
        other => panic!("expected a missing driver or device, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("no CUDA driver") || text.contains("0 device(s)"),
        "{text}"
    );
    // The run API fails the same way, before loading anything.
    let mut opts = PagerankOptions::for_file("/nonexistent/graph.txt");
    opts.backend = PagerankBackend::Cuda { device: 0 };
    assert!(matches!(run(&opts), Err(PagerankError::Device(_))));
}

#[test]
fn backend_names_parse_and_print() {
    for (text, b) in [
        ("cpu", PagerankBackend::Cpu),
        ("cpu-device", PagerankBackend::CpuDevice),
        ("cuda:0", PagerankBackend::Cuda { device: 0 }),
        ("cuda:3", PagerankBackend::Cuda { device: 3 }),
    ] {
        assert_eq!(text.parse::<PagerankBackend>().unwrap(), b);
        assert_eq!(b.to_string(), text);
        assert_eq!(serde_json::to_value(b).unwrap(), serde_json::json!(text));
    }
    assert_eq!(
        "CUDA".parse::<PagerankBackend>().unwrap(),
        PagerankBackend::Cuda { device: 0 }
    );
    assert!("cuda:x".parse::<PagerankBackend>().is_err());
    assert!("gpu".parse::<PagerankBackend>().is_err());
}

#[test]
fn run_and_bench_on_the_cpu_device_backend() {
    let mut opts = PagerankOptions::generated(5000, 5.0);
    let cpu = run(&opts).unwrap().report;
    assert_eq!(cpu.backend, PagerankBackend::Cpu);
    assert!(cpu.device_timings.is_none());
    opts.backend = PagerankBackend::CpuDevice;
    let dev = run(&opts).unwrap();
    let r = &dev.report;
    assert_eq!(r.backend, PagerankBackend::CpuDevice);
    assert_eq!(r.device, cpu.device, "both ran on this machine's CPU");
    assert_eq!((r.iterations, r.converged), (cpu.iterations, cpu.converged));
    assert!((r.rank_sum - cpu.rank_sum).abs() < 1e-12);
    let t = r.device_timings.expect("device timings");
    assert_eq!(t.copies_to_host, u64::from(r.iterations) + 2);
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["backend"], "cpu-device");
    assert!(json["device_timings"]["iterate_seconds"].is_number());

    let b = bench(&PagerankBenchOptions {
        sizes: vec![3000],
        repetitions: 1,
        backend: PagerankBackend::CpuDevice,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(b.rows.len(), 1);
    let g = GraphGenerator::Chunked.graph(3000, 5.0, 42).unwrap();
    assert_eq!(
        b.rows[0].iterations,
        pagerank(&g, &PagerankConfig::default()).unwrap().iterations
    );
    assert!(b.rows[0].converged);
}

#[test]
fn the_reduce_kernel_folds_partials() {
    let cpu = Arc::new(CpuBackend::new());
    let k = cpu.compile_shipped(&kernels::PAGERANK_REDUCE).unwrap();
    let blocks = 1000usize;
    let mut partials = vec![0.0f64; 3 * blocks];
    for i in 0..blocks {
        partials[i] = i as f64;
        partials[blocks + i] = ((i * 7919) % 1000) as f64;
        partials[2 * blocks + i] = 0.5;
    }
    let p = DeviceBuffer::from_slice(&cpu, &partials).unwrap();
    let mut totals = DeviceBuffer::<f64, _>::zeroed(&cpu, 3).unwrap();
    let cfg = kernels::pagerank_reduce_config().unwrap();
    cpu.launch(
        &k,
        &cfg,
        &mut [p.arg(), totals.arg_mut(), KernelArg::scalar(blocks as u32)],
        &cpu.default_stream(),
    )
    .unwrap();
    assert_eq!(totals.to_vec().unwrap(), vec![499_500.0, 999.0, 500.0]);
    // The tree needs a power-of-two block of at least a warp.
    let bad = LaunchConfig::new(1, 48).with_shared_mem(3 * 48 * 8);
    let err = cpu
        .launch(
            &k,
            &bad,
            &mut [p.arg(), totals.arg_mut(), KernelArg::scalar(blocks as u32)],
            &cpu.default_stream(),
        )
        .unwrap_err();
    assert!(matches!(err, DeviceError::KernelFault { .. }), "{err:?}");
    // Too few partials for the block count: an argument error.
    let err = cpu
        .launch(
            &k,
            &cfg,
            &mut [p.arg(), totals.arg_mut(), KernelArg::scalar(blocks as u32 + 1)],
            &cpu.default_stream(),
        )
        .unwrap_err();
    assert!(matches!(err, DeviceError::KernelArgument { index: 0, .. }), "{err:?}");
    // Every shipped entry has a CPU equivalent; an unknown one is refused.
    for k in kernels::ALL {
        assert_eq!(CpuBackend::shipped_source(k).unwrap().name(), k.entry);
    }
    let unknown = kernels::KernelSource {
        entry: "nope",
        ..kernels::PAGERANK_SPMV
    };
    assert!(matches!(
        CpuBackend::shipped_source(&unknown),
        Err(DeviceError::EntryNotFound { .. })
    ));
}

#[test]
fn pagerank_kernels_compile_with_the_parameters_the_driver_passes() {
    if !nvrtc_or_skip("pagerank_kernels_compile_with_the_parameters_the_driver_passes") {
        return;
    }
    let compiler = KernelCompiler::new();
    let expect: [(&kernels::KernelSource, &[usize]); 3] = [
        (&kernels::PAGERANK_CONTRIB, &[8, 8, 8, 8, 8, 4]),
        (&kernels::PAGERANK_SPMV, &[8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4]),
        (&kernels::PAGERANK_REDUCE, &[8, 8, 4]),
    ];
    for arch in ["compute_80", "compute_90"] {
        let c = compiler
            .compile("pagerank.cu", kernels::PAGERANK_SPMV.source, &CompileOptions::new(arch))
            .unwrap();
        for (k, sizes) in expect {
            assert!(kernels::ALL.contains(k), "{} is not in kernels::ALL", k.entry);
            let e = c.entries().into_iter().find(|e| e.name == k.entry).unwrap();
            let got: Vec<usize> = e.params.iter().map(|p| p.size).collect();
            assert_eq!(got, sizes, "{arch} {} parameter sizes", k.entry);
        }
        // Without fast-math 1/k is correctly rounded (no approximate
        // reciprocal) and nothing is contracted into an fma, which the
        // bit-for-bit agreement with the CPU relies on.
        assert!(
            c.ptx.contains("div.rn.f64") || c.ptx.contains("rcp.rn.f64"),
            "{arch}: expected a correctly rounded f64 reciprocal"
        );
        assert!(
            !c.ptx.contains("approx.ftz.f64") && !c.ptx.contains("fma.rn.f64"),
            "{arch}"
        );
    }
}

/// The CUDA driver against the rayon solver (1e-12 relative; bit for bit in
/// ignore + L∞) and against the CPU-backend driver (bit for bit: the same
/// operations in the same order).
fn check_cuda(test: &str, graphs: &[(&str, Graph, Vec<PagerankConfig>)]) {
    let Some(gpu) = cuda_or_skip(test) else {
        return;
    };
    if !nvrtc_or_skip(test) {
        return;
    }
    let cpu = Arc::new(CpuBackend::new());
    for (name, g, cfgs) in graphs {
        let on_gpu = DevicePagerank::new(&gpu, g).unwrap();
        let on_cpu = DevicePagerank::new(&cpu, g).unwrap();
        for cfg in cfgs {
            let what = format!("{name}, {:?}/{:?}/tol {:e}", cfg.dangling, cfg.norm, cfg.tolerance);
            let got = on_gpu.solve(cfg, None).unwrap();
            assert_agrees(&got.result, &pagerank(g, cfg).unwrap(), cfg, &what);
            let emulated = on_cpu.solve(cfg, None).unwrap();
            assert_eq!(got.result, emulated.result, "{what}: CUDA and CPU backend differ");
            let it = u64::from(got.result.iterations);
            assert_eq!(got.timings.copies_to_host, it + 2, "{what}");
            assert_eq!(
                got.timings.bytes_to_host,
                24 * (it + 1) + 8 * g.num_nodes() as u64,
                "{what}"
            );
            eprintln!(
                "{what}: {} iterations, {:.1} µs per iteration on {}",
                it,
                got.timings.iterate_seconds / it.max(1) as f64 * 1e6,
                gpu.device().name
            );
        }
    }
}

#[test]
fn cuda_matches_the_cpu_solver_on_100k_nodes() {
    let g = GraphGenerator::Chunked.graph(100_000, 5.0, 42).unwrap();
    assert!(g.dangling_count() > 0);
    check_cuda(
        "cuda_matches_the_cpu_solver_on_100k_nodes",
        &[("chunked 100k", g, configs())],
    );
}

#[test]
fn cuda_matches_the_cpu_solver_with_dangling_nodes() {
    check_cuda(
        "cuda_matches_the_cpu_solver_with_dangling_nodes",
        &[
            ("half dangling", with_dangling(50_000, 25_000, 4, 9), configs()),
            ("star with dangling leaves", graphs().swap_remove(3).1, configs()),
            (
                "strided rows",
                with_dangling(1_500_000, 100_000, 2, 13),
                [Dangling::Redistribute, Dangling::Ignore]
                    .map(|dangling| PagerankConfig {
                        tolerance: 0.0,
                        max_iterations: 5,
                        norm: Norm::L1,
                        dangling,
                        ..PagerankConfig::default()
                    })
                    .to_vec(),
            ),
        ],
    );
}
