//! PageRank: closed forms, a direct linear solve, PyDotCompute's exact
//! results, thread-count independence, and the run/report API.

use dotcompute_workloads::graph::{load_graph, LoadOptions};
use dotcompute_workloads::graph::{pydotcompute_chunked_graph, pydotcompute_random_graph, Graph, GraphGenerator};
use dotcompute_workloads::pagerank::{
    bench, bench_with, pagerank, pagerank_from, run, top_k, Dangling, GraphSource, Norm, PagerankBenchOptions,
    PagerankConfig, PagerankError, PagerankOptions,
};

fn exact(dangling: Dangling) -> PagerankConfig {
    PagerankConfig {
        tolerance: 1e-15,
        norm: Norm::L1,
        max_iterations: 1000,
        dangling,
        ..PagerankConfig::default()
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// PyDotCompute's `pagerank_cpu_sparse` (scipy) on its own graphs, printed as
/// hex floats by numpy/scipy: iterations, residual, sum, first ranks.
#[test]
fn ignore_mode_is_bit_identical_to_pydotcompute() {
    type Case = (usize, f64, u32, u64, f64, [u64; 3]);
    let cases: [Case; 3] = [
        (
            100,
            2.0,
            35,
            0x3EAD40725CAE8000,
            0.6104308991736487,
            [0x3F66F998122ACA24, 0x3F589374BC6A7EFB, 0x3F8466E8063174D7],
        ),
        (
            1000,
            2.0,
            25,
            0x3EAAFCD697898000,
            0.5696200034878134,
            [0x3F4AA4D350572DA0, 0x3F33313824BE9B50, 0x3F34C74B7A9043B5],
        ),
        (
            1000,
            10.0,
            7,
            0x3EA2589CE87AC800,
            0.9999999999999999,
            [0x3F56DF2DF612D09E, 0x3F4BEDEA5F8BA0C6, 0x3F5006F27EE04F4F],
        ),
    ];
    for (n, epn, iters, resid, sum, first) in cases {
        let g = pydotcompute_random_graph(n, epn, 42).unwrap();
        let r = pagerank(&g, &PagerankConfig::pydotcompute()).unwrap();
        assert!(r.converged);
        assert_eq!(r.iterations, iters, "n={n} epn={epn}");
        assert_eq!(
            r.residual.to_bits(),
            resid,
            "n={n} epn={epn}: residual {:e}",
            r.residual
        );
        for (i, &b) in first.iter().enumerate() {
            assert_eq!(r.ranks[i].to_bits(), b, "n={n} epn={epn} rank[{i}]");
        }
        let s: f64 = r.ranks.iter().sum();
        assert!(close(s, sum, 1e-12), "{s} vs {sum}");
    }
}

/// The large-graph benchmark's generator and iteration counts (10K: 9 iterations).
#[test]
fn chunked_graph_matches_pydotcompute_extended_benchmark() {
    let g = pydotcompute_chunked_graph(10_000, 5.0, 42).unwrap();
    let r = pagerank(&g, &PagerankConfig::pydotcompute()).unwrap();
    assert_eq!(r.iterations, 9);
    assert_eq!(r.residual.to_bits(), 0x3EAF011BA1FA3C00);
    assert_eq!(r.ranks[0].to_bits(), 0x3F244A12CE2534B4);
    assert_eq!(r.ranks[2].to_bits(), 0x3F15FF402C789313);
    let best = top_k(&g, &r.ranks, 1);
    assert_eq!(best[0].node, 617);
}

#[test]
fn closed_forms() {
    let d = 0.85;
    // A directed cycle: uniform ranks, converged after one step.
    let g = Graph::from_edges(5, &[0, 1, 2, 3, 4], &[1, 2, 3, 4, 0]).unwrap();
    let r = pagerank(&g, &PagerankConfig::default()).unwrap();
    assert_eq!(r.iterations, 1);
    assert!(r.ranks.iter().all(|&x| close(x, 0.2, 1e-16)));

    // 0 -> 1, node 1 dangling. Redistribute: r0 = 1/(2+d), r1 = (1+d)/(2+d).
    let g = Graph::from_edges(2, &[0], &[1]).unwrap();
    let r = pagerank(&g, &exact(Dangling::Redistribute)).unwrap();
    assert!(close(r.ranks[0], 1.0 / (2.0 + d), 1e-14), "{:?}", r.ranks);
    assert!(close(r.ranks[1], (1.0 + d) / (2.0 + d), 1e-14));
    // Ignore: r0 = (1-d)/2, r1 = (1-d)/2 + d r0; the sum is below 1.
    let r = pagerank(&g, &exact(Dangling::Ignore)).unwrap();
    assert!(close(r.ranks[0], (1.0 - d) / 2.0, 1e-15));
    assert!(close(r.ranks[1], (1.0 - d) / 2.0 + d * (1.0 - d) / 2.0, 1e-15));
    assert!(r.ranks.iter().sum::<f64>() < 0.25);

    // A star: k leaves -> centre 0 (dangling). r_leaf = 1/(n + d k), r_centre = (1 + d k)/(n + d k).
    let k = 6usize;
    let n = k + 1;
    let src: Vec<u32> = (1..=k as u32).collect();
    let g = Graph::from_edges(n, &src, &vec![0; k]).unwrap();
    let r = pagerank(&g, &exact(Dangling::Redistribute)).unwrap();
    let denom = n as f64 + d * k as f64;
    assert!(close(r.ranks[0], (1.0 + d * k as f64) / denom, 1e-14));
    for leaf in 1..n {
        assert!(close(r.ranks[leaf], 1.0 / denom, 1e-14));
    }
}

/// Solves (I - d·G) r = (1-d)/n · 1 by Gaussian elimination, with G the
/// column-stochastic matrix (dangling columns uniform for redistribute,
/// zero for ignore). Multigraph weights: count / outdeg.
fn direct_solve(n: usize, edges: &[(u32, u32)], d: f64, dangling: Dangling) -> Vec<f64> {
    let mut outdeg = vec![0f64; n];
    for &(s, _) in edges {
        outdeg[s as usize] += 1.0;
    }
    let mut a = vec![vec![0f64; n + 1]; n];
    for (i, row) in a.iter_mut().enumerate() {
        row[i] = 1.0;
        row[n] = (1.0 - d) / n as f64;
    }
    for &(s, t) in edges {
        a[t as usize][s as usize] -= d / outdeg[s as usize];
    }
    if dangling == Dangling::Redistribute {
        for u in 0..n {
            if outdeg[u] == 0.0 {
                for row in a.iter_mut() {
                    row[u] -= d / n as f64;
                }
            }
        }
    }
    for c in 0..n {
        let p = (c..n).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs())).unwrap();
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| a[i][n] / a[i][i]).collect()
}

#[test]
fn agrees_with_a_direct_solve_including_dangling_nodes_self_loops_and_repeats() {
    // Node 4 is dangling, 2 has a self-loop, 0 -> 1 is listed twice, 5 is isolated.
    let edges: Vec<(u32, u32)> = vec![(0, 1), (0, 1), (0, 2), (1, 2), (2, 2), (2, 0), (2, 3), (3, 4), (1, 4)];
    let n = 6;
    let (src, dst): (Vec<u32>, Vec<u32>) = edges.iter().copied().unzip();
    let g = Graph::from_edges(n, &src, &dst).unwrap();
    for dangling in [Dangling::Redistribute, Dangling::Ignore] {
        let r = pagerank(&g, &exact(dangling)).unwrap();
        assert!(r.converged, "{dangling:?}");
        let want = direct_solve(n, &edges, 0.85, dangling);
        for (i, (&x, &y)) in r.ranks.iter().zip(&want).enumerate() {
            assert!(close(x, y, 1e-13), "{dangling:?} node {i}: {x} vs {y}");
        }
        let sum: f64 = r.ranks.iter().sum();
        if dangling == Dangling::Redistribute {
            assert!(close(sum, 1.0, 1e-12), "{sum}");
        } else {
            assert!(sum < 0.99, "{sum}");
        }
    }
    // The simplified graph is a different (simple) graph.
    let s = g.simplified();
    let simple: Vec<(u32, u32)> = vec![(0, 1), (0, 2), (1, 2), (2, 0), (2, 3), (3, 4), (1, 4)];
    let r = pagerank(&s, &exact(Dangling::Redistribute)).unwrap();
    let want = direct_solve(n, &simple, 0.85, Dangling::Redistribute);
    for (&x, &y) in r.ranks.iter().zip(&want) {
        assert!(close(x, y, 1e-13));
    }
}

#[test]
fn redistribute_sums_to_one_on_generated_graphs() {
    for epn in [2.0, 10.0] {
        let g = pydotcompute_random_graph(2000, epn, 7).unwrap();
        let r = pagerank(&g, &PagerankConfig::default()).unwrap();
        let s: f64 = r.ranks.iter().sum();
        assert!(close(s, 1.0, 1e-12), "{s}");
    }
}

#[test]
fn results_do_not_depend_on_thread_count_or_edge_order() {
    let g = pydotcompute_chunked_graph(50_000, 5.0, 3).unwrap();
    let cfg = PagerankConfig {
        norm: Norm::L1,
        ..PagerankConfig::default()
    };
    let solve = |threads: usize, g: &Graph| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| pagerank(g, &cfg).unwrap())
    };
    let one = solve(1, &g);
    let three = solve(3, &g);
    assert_eq!(one, three);
    // Reversed edge order: the same CSR, so the same bits.
    let (mut s, mut d) = g.to_edges();
    s.reverse();
    d.reverse();
    let h = Graph::from_edges(g.num_nodes(), &s, &d).unwrap();
    assert_eq!(h, g);
    assert_eq!(solve(2, &h), one);
}

#[test]
fn tolerance_norms_and_iteration_limit() {
    let g = pydotcompute_random_graph(1000, 2.0, 42).unwrap();
    let linf = pagerank(&g, &PagerankConfig::default()).unwrap();
    let l1 = pagerank(
        &g,
        &PagerankConfig {
            norm: Norm::L1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(linf.residual_linf < 1e-6 && linf.residual == linf.residual_linf);
    assert!(l1.residual_l1 < 1e-6 && l1.residual == l1.residual_l1);
    // L1 ≥ L∞, so the L1 criterion needs at least as many iterations.
    assert!(l1.iterations >= linf.iterations);
    let capped = pagerank(
        &g,
        &PagerankConfig {
            max_iterations: 3,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!capped.converged);
    assert_eq!(capped.iterations, 3);
    assert!(capped.residual >= 1e-6);
    // A warm start from the answer converges at once.
    let warm = pagerank_from(&g, &PagerankConfig::default(), Some(&l1.ranks)).unwrap();
    assert_eq!(warm.iterations, 1);
    assert!(pagerank_from(&g, &PagerankConfig::default(), Some(&[0.5])).is_err());
    assert!(matches!(
        pagerank(&Graph::from_edges(0, &[], &[]).unwrap(), &PagerankConfig::default()),
        Err(PagerankError::EmptyGraph)
    ));
}

#[test]
fn run_loads_solves_writes_and_reports() {
    let dir = std::env::temp_dir().join(format!("dc_pagerank_run_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("g.txt");
    // 1-based SNAP ids; node 40 is dangling.
    std::fs::write(&input, "# test\n10\t20\n20\t30\n30\t10\n30\t40\n").unwrap();
    let output = dir.join("ranks.tsv");
    let mut opts = PagerankOptions::for_file(&input);
    opts.output = Some(output.clone());
    opts.threads = Some(2);
    opts.top = 2;
    let run = run(&opts).unwrap();
    let rep = &run.report;
    assert_eq!((rep.nodes, rep.edges, rep.dangling_nodes, rep.threads), (4, 4, 1, 2));
    assert!(rep.converged && rep.iterations > 1);
    assert!(close(rep.rank_sum, 1.0, 1e-12));
    assert!(rep.load_seconds >= 0.0 && rep.compute_seconds > 0.0 && rep.edges_per_second > 0.0);
    assert_eq!(rep.top.len(), 2);
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    let parsed: Vec<(u64, f64)> = lines
        .iter()
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(parsed.iter().map(|p| p.0).collect::<Vec<_>>(), [10, 20, 30, 40]);
    for (i, (_, r)) in parsed.iter().enumerate() {
        assert_eq!(r.to_bits(), run.ranks[i].to_bits(), "ranks round-trip exactly");
    }
    let json = serde_json::to_value(rep).unwrap();
    for key in [
        "nodes",
        "edges",
        "iterations",
        "converged",
        "residual",
        "load_seconds",
        "compute_seconds",
        "edges_per_second",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    // A malformed file names its line.
    std::fs::write(&input, "1 2\n2 3 4\n").unwrap();
    let err = dotcompute_workloads::pagerank::run(&opts).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("g.txt:2: expected two node ids per line, found more: \"4\""),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generated_source_and_bench() {
    let opts = PagerankOptions {
        source: GraphSource::Generated {
            generator: GraphGenerator::Benchmark,
            nodes: 1000,
            edges_per_node: 2.0,
            seed: 42,
        },
        config: PagerankConfig::pydotcompute(),
        threads: None,
        simplify: false,
        output: None,
        top: 3,
        backend: Default::default(),
        memory_limit: Default::default(),
        progress: Default::default(),
    };
    let rep = run(&opts).unwrap().report;
    assert_eq!((rep.nodes, rep.edges, rep.iterations), (1000, 2000, 25));
    assert!(close(rep.rank_sum, 0.5696200034878134, 1e-12));
    // The chunked generator's 10K graph: 9 iterations, as PyDotCompute reports.
    let mut opts = PagerankOptions::generated(10_000, 5.0);
    opts.config = PagerankConfig::pydotcompute();
    assert_eq!(run(&opts).unwrap().report.iterations, 9);

    let b = bench(&PagerankBenchOptions {
        sizes: vec![2000, 5000],
        repetitions: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(b.rows.len(), 2);
    assert_eq!(b.rows[1].nodes, 5000);
    assert_eq!(b.rows[1].edges, 25_000);
    assert!(b
        .rows
        .iter()
        .all(|r| r.converged && r.file_bytes > 0 && r.total_seconds.min > 0.0));
    // The bench loads its edge list densely, with every generated node.
    let g = GraphSource::Generated {
        generator: GraphGenerator::Chunked,
        nodes: 5000,
        edges_per_node: 5.0,
        seed: 42,
    }
    .graph()
    .unwrap();
    let r = pagerank(&g, &PagerankConfig::default()).unwrap();
    assert_eq!(b.rows[1].iterations, r.iterations);
}

/// `bench_with` hands its hook the edge-list file (still on disk, a plain
/// list another library can read), the graph loaded from it, and the ranks
/// of the accurate solve; it removes the file afterwards.
#[test]
fn bench_with_hands_the_file_and_accurate_ranks_to_the_hook() {
    let options = PagerankBenchOptions {
        sizes: vec![3000],
        repetitions: 2,
        ..Default::default()
    };
    assert_eq!(options.accurate, Some(PagerankConfig::accurate()));
    let mut seen = Vec::new();
    let (report, hooked) = bench_with(&options, |g| {
        let text = std::fs::read_to_string(g.path).unwrap();
        assert!(!text.starts_with('#'), "the bench's edge list has no header");
        assert_eq!(text.lines().count(), g.graph.num_edges());
        let reloaded = load_graph(g.path, &LoadOptions::default()).unwrap();
        assert_eq!(reloaded.num_edges(), g.graph.num_edges());
        assert_eq!(g.ranks_config, PagerankConfig::accurate());
        seen.push(g.path.to_path_buf());
        Ok::<_, PagerankError>(g.ranks.to_vec())
    })
    .unwrap();
    assert!(!seen[0].exists(), "the edge list is removed after the hook");
    let row = &report.rows[0];
    let accurate = row.accurate.as_ref().unwrap();
    assert!(accurate.converged && accurate.residual < 1e-10);
    assert!(accurate.iterations > row.iterations);
    assert!(accurate.compute_seconds.min > 0.0 && accurate.total_seconds.min >= accurate.compute_seconds.min);
    // The hook's ranks are the accurate solve's: compare with an exact solve.
    let g = GraphSource::Generated {
        generator: GraphGenerator::Chunked,
        nodes: 3000,
        edges_per_node: 5.0,
        seed: 42,
    }
    .graph()
    .unwrap();
    let exact = pagerank(&g, &exact(Dangling::Redistribute)).unwrap();
    let ranks = &hooked[0];
    assert_eq!(ranks.len(), 3000);
    let diff = ranks
        .iter()
        .zip(&exact.ranks)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff < 1e-12, "accurate ranks off by {diff:e}");

    // A hook's error ends the bench, and the file is still removed.
    let mut path = None;
    let err = bench_with(&options, |g| -> Result<(), PagerankError> {
        path = Some(g.path.to_path_buf());
        Err(PagerankError::Rejected { reason: "no".into() })
    })
    .unwrap_err();
    assert!(matches!(err, PagerankError::Rejected { .. }), "{err:?}");
    assert!(!path.unwrap().exists());
}

/// The weighted direct solve: column `s` of G holds `w(s→t) / W(s)`.
fn weighted_direct_solve(n: usize, edges: &[(u32, u32, f64)], d: f64) -> Vec<f64> {
    let mut out = vec![0f64; n];
    for &(s, _, w) in edges {
        out[s as usize] += w;
    }
    let mut a = vec![vec![0f64; n + 1]; n];
    for (i, row) in a.iter_mut().enumerate() {
        row[i] = 1.0;
        row[n] = (1.0 - d) / n as f64;
    }
    for &(s, t, w) in edges {
        if out[s as usize] > 0.0 {
            a[t as usize][s as usize] -= d * w / out[s as usize];
        }
    }
    for u in 0..n {
        if out[u] == 0.0 {
            for row in a.iter_mut() {
                row[u] -= d / n as f64;
            }
        }
    }
    for c in 0..n {
        let p = (c..n).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs())).unwrap();
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| a[i][n] / a[i][i]).collect()
}

#[test]
fn weighted_pagerank_agrees_with_a_direct_solve() {
    // Node 4 is dangling, 3's only out-edge weighs 0 (so it is dangling too),
    // 2 has a self-loop, 0 -> 1 is listed twice.
    let edges = vec![
        (0u32, 1u32, 2.0),
        (0, 1, 0.5),
        (0, 2, 1.0),
        (1, 2, 3.0),
        (2, 2, 0.25),
        (2, 0, 1.5),
        (2, 3, 4.0),
        (3, 4, 0.0),
        (1, 4, 0.125),
    ];
    let n = 6;
    let src: Vec<u32> = edges.iter().map(|e| e.0).collect();
    let dst: Vec<u32> = edges.iter().map(|e| e.1).collect();
    let w: Vec<f64> = edges.iter().map(|e| e.2).collect();
    let g = Graph::from_weighted_edges(n, &src, &dst, &w).unwrap();
    assert_eq!(g.dangling_count(), 3);
    let r = pagerank(&g, &exact(Dangling::Redistribute)).unwrap();
    assert!(r.converged);
    let want = weighted_direct_solve(n, &edges, 0.85);
    for (i, (&x, &y)) in r.ranks.iter().zip(&want).enumerate() {
        assert!(close(x, y, 1e-13), "node {i}: {x} vs {y}");
    }
    // Weights of 1 give the unweighted ranks; integer weights equal repeated edges.
    let ones = Graph::from_weighted_edges(n, &src, &dst, &vec![1.0; src.len()]).unwrap();
    let plain = Graph::from_edges(n, &src, &dst).unwrap();
    let (a, b) = (
        pagerank(&ones, &exact(Dangling::Redistribute)).unwrap(),
        pagerank(&plain, &exact(Dangling::Redistribute)).unwrap(),
    );
    assert!(a.ranks.iter().zip(&b.ranks).all(|(x, y)| close(*x, *y, 1e-14)));
    let twice = Graph::from_weighted_edges(3, &[0, 1, 2], &[1, 2, 0], &[2.0, 1.0, 1.0]).unwrap();
    let repeated = Graph::from_edges(3, &[0, 0, 1, 2], &[1, 1, 2, 0]).unwrap();
    let (a, b) = (
        pagerank(&twice, &exact(Dangling::Redistribute)).unwrap(),
        pagerank(&repeated, &exact(Dangling::Redistribute)).unwrap(),
    );
    assert!(a.ranks.iter().zip(&b.ranks).all(|(x, y)| close(*x, *y, 1e-14)));
    // Simplifying adds repeated edges' weights and drops the self-loop.
    let s = g.simplified();
    assert!(s.is_weighted());
    assert_eq!(s.in_neighbor_weights(1), Some(&[2.5][..]));
    assert_eq!(s.self_loop_count(), 0);
    // Bad weights are refused.
    assert!(Graph::from_weighted_edges(2, &[0], &[1], &[-1.0]).is_err());
    assert!(Graph::from_weighted_edges(2, &[0], &[1], &[f64::NAN]).is_err());
}

#[test]
fn the_device_solver_refuses_weighted_graphs_and_bounds_are_checked() {
    use dotcompute_workloads::limits::{max_threads, MemoryLimit};
    use dotcompute_workloads::pagerank::PagerankBackend;
    let dir = std::env::temp_dir().join(format!("dc_pr_weighted_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.txt");
    std::fs::write(&path, "src,dst,weight\n0,1,0.5\n1,2,2\n2,0,1\n").unwrap();
    let mut o = PagerankOptions::for_file(&path);
    let r = run(&o).unwrap();
    assert!(r.graph.is_weighted());
    assert!(r.report.converged);
    o.backend = PagerankBackend::CpuDevice;
    match run(&o) {
        Err(PagerankError::InvalidOption {
            parameter: "backend",
            reason,
            ..
        }) => {
            assert!(reason.contains("weighted"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // --threads above the cores (issue 16 row 6), a generated graph above the limit (row 2).
    o.backend = PagerankBackend::Cpu;
    o.threads = Some(max_threads() + 1);
    assert!(matches!(
        run(&o),
        Err(PagerankError::InvalidOption {
            parameter: "threads",
            ..
        })
    ));
    let mut g = PagerankOptions::generated(4_294_967_295, 0.0);
    g.memory_limit = MemoryLimit::bytes(1 << 30);
    match run(&g) {
        Err(PagerankError::Graph(dotcompute_workloads::graph::GraphError::Limit(e))) => {
            assert!(e.what.contains("4294967295 nodes"), "{e}")
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn progress_reports_the_bytes_read_and_every_iteration() {
    use dotcompute_workloads::progress::Phase;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("g.txt");
    let text: String = (0..2000u32).map(|i| format!("{i}\t{}\n", (i * 7 + 1) % 2000)).collect();
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.path().join("g.txt.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
    }
    for path in [&plain, &gz] {
        let opts = PagerankOptions::for_file(path);
        let progress = opts.progress.clone();
        assert_eq!(progress.snapshot().phase, Phase::Waiting);
        let rep = run(&opts).unwrap().report;
        let s = progress.snapshot();
        let size = std::fs::metadata(path).unwrap().len();
        assert_eq!(s.phase, Phase::Done);
        assert_eq!((s.bytes_read, s.bytes_total), (size, Some(size)), "{}", path.display());
        assert_eq!(s.iteration, rep.iterations);
        assert_eq!(s.residual, rep.residual);
        assert_eq!(s.max_iterations, rep.config.max_iterations);
    }
    // The device driver (on the CPU backend) reports its iterations too.
    let mut opts = PagerankOptions::for_file(&plain);
    opts.backend = dotcompute_workloads::pagerank::PagerankBackend::CpuDevice;
    let rep = run(&opts).unwrap().report;
    let s = opts.progress.snapshot();
    assert_eq!(
        (s.phase, s.iteration, s.residual),
        (Phase::Done, rep.iterations, rep.residual)
    );
    // A failed run ends in Done too.
    let opts = PagerankOptions::for_file(dir.path().join("missing.txt"));
    assert!(run(&opts).is_err());
    assert_eq!(opts.progress.snapshot().phase, Phase::Done);
}
