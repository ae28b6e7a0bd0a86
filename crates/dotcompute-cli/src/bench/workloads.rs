//! `dotcompute bench pagerank` and `dotcompute bench anomaly`: the library's
//! workload benchmarks (`dotcompute::workloads::{pagerank, anomaly}::bench`)
//! with a table and a JSON report.

use std::path::PathBuf;

use clap::Args;
use dotcompute::workloads::anomaly::{self, AnomalyBenchOptions};
use dotcompute::workloads::pagerank::{self, PagerankBenchOptions};

use crate::output::{check_json_path, fmt_rate, write_json};
use crate::CliResult;

/// Options of `dotcompute bench pagerank`.
#[derive(Debug, Args)]
pub struct PagerankBenchArgs {
    /// Node counts (PyDotCompute's generator, 5 edges per node, seed 42);
    /// each graph is written to an edge-list file, then loaded and solved.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000, 1_000_000])]
    pub sizes: Vec<usize>,
    /// Timed runs per size (the median is shown).
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `dotcompute bench anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyBenchArgs {
    /// Stream length (PyDotCompute's labelled stream, seed 42).
    #[arg(long, default_value_t = 10_000_000)]
    pub points: usize,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1_000, 10_000])]
    pub batches: Vec<usize>,
    /// Timed runs per cell (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Runs `dotcompute bench pagerank`.
pub fn run_pagerank(args: &PagerankBenchArgs) -> CliResult<()> {
    check_json_path(args.json.as_ref())?;
    let options = PagerankBenchOptions {
        sizes: args.sizes.clone(),
        repetitions: args.repetitions,
        ..PagerankBenchOptions::default()
    };
    let report = pagerank::bench(&options)?;
    println!(
        "dotcompute bench pagerank: generate → write edge list → load + solve (L∞ < {:e}, {} threads), median of {}",
        options.config.tolerance, report.threads, options.repetitions
    );
    println!(
        "{:>10} {:>10} {:>11} {:>11} {:>11} {:>6} {:>12}",
        "nodes", "edges", "load", "solve", "total", "iters", "edges/s"
    );
    for r in &report.rows {
        println!(
            "{:>10} {:>10} {:>9.1}ms {:>9.1}ms {:>9.1}ms {:>6} {:>12}",
            r.nodes,
            r.edges,
            r.load_seconds.median * 1e3,
            r.compute_seconds.median * 1e3,
            r.total_seconds.median * 1e3,
            r.iterations,
            fmt_rate(r.edges_per_second)
        );
    }
    println!("reference (PyDotCompute, scipy, 2-core machine; theirs): 1M nodes / 5M edges 25.4 s compute, 54.1 s generation");
    if let Some(path) = &args.json {
        write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs `dotcompute bench anomaly`.
pub fn run_anomaly(args: &AnomalyBenchArgs) -> CliResult<()> {
    check_json_path(args.json.as_ref())?;
    let options = AnomalyBenchOptions {
        points: args.points,
        batch_sizes: args.batches.clone(),
        repetitions: args.repetitions,
        ..AnomalyBenchOptions::default()
    };
    let report = anomaly::bench(&options)?;
    println!(
        "dotcompute bench anomaly: {} points (generated in {:.1} ms), best of {}",
        options.points,
        report.generate_seconds * 1e3,
        options.repetitions
    );
    println!(
        "{:<14} {:>7} {:>12} {:>11} {:>11} {:>10} {:>10}",
        "mode", "batch", "points/s", "batch p50", "batch p99", "anomalies", "identical"
    );
    for r in &report.rows {
        println!(
            "{:<14} {:>7} {:>12} {:>9.1}µs {:>9.1}µs {:>10} {:>10}",
            r.mode,
            r.batch_size,
            fmt_rate(r.points_per_second),
            r.batch_latency.p50_us,
            r.batch_latency.p99_us,
            r.anomalies,
            r.identical
        );
    }
    println!(
        "all modes found the same anomalies: {}; precision {:?}, recall {:?}",
        report.all_identical, report.quality.precision, report.quality.recall
    );
    println!("reference (PyDotCompute, 2-core machine; theirs): ~2.1M points/s CPU, ~0.5M through its actors");
    if let Some(path) = &args.json {
        write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
