//! `dotcompute pagerank` and `dotcompute anomaly`: thin wrappers over
//! `dotcompute::workloads`, which do the work and build the reports.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use dotcompute::workloads::anomaly::{self, AnomalyOptions, Mode};
use dotcompute::workloads::graph::{GraphFormat, GraphGenerator};
use dotcompute::workloads::pagerank::{self, Dangling, GraphSource, Norm, PagerankBackend, PagerankOptions};

use crate::output::{fmt_duration, fmt_rate};
use crate::CliResult;

/// Options of `dotcompute pagerank`.
#[derive(Debug, Args)]
pub struct PagerankArgs {
    /// Graph file: an edge list (`src dst` per line, `#` comments) or Matrix Market.
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    pub input: Option<PathBuf>,
    /// Instead of a file, generate PyDotCompute's random graph with this many nodes.
    #[arg(long, value_name = "NODES")]
    pub generate: Option<usize>,
    /// Edges per node of the generated graph.
    #[arg(long, default_value_t = 5.0, requires = "generate")]
    pub edges_per_node: f64,
    /// Seed of the generated graph (numpy's `default_rng`, as PyDotCompute).
    #[arg(long, default_value_t = 42, requires = "generate")]
    pub seed: u64,
    /// Input format (default: from the file extension, `.mtx` is Matrix Market).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Damping factor.
    #[arg(long, default_value_t = 0.85)]
    pub damping: f64,
    /// Stop when the residual between iterations is below this.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Norm of the residual.
    #[arg(long, value_enum, default_value_t = NormArg::Linf)]
    pub norm: NormArg,
    /// Most iterations.
    #[arg(long, default_value_t = 100)]
    pub max_iter: u32,
    /// Rank of nodes without out-edges: spread over all nodes (correct
    /// PageRank) or dropped (PyDotCompute's behaviour).
    #[arg(long, value_enum, default_value_t = DanglingArg::Redistribute)]
    pub dangling: DanglingArg,
    /// Where to compute: the rayon solver, the CUDA SpMV kernels on a GPU,
    /// or those kernels' CPU equivalents (the device driver on the CPU backend).
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
    /// GPU ordinal: the CUDA device (with --backend cuda) or the wgpu
    /// adapter as `dotcompute info` numbers them (`wgpu:N`; with --backend wgpu).
    #[arg(long, value_name = "N")]
    pub device: Option<usize>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Drop self-loops and repeated edges before solving.
    #[arg(long)]
    pub simplify: bool,
    /// Write `node<TAB>rank` lines, in node order, to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How many top-ranked nodes to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// Graph file formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `src dst` per line.
    Edgelist,
    /// Matrix Market coordinate format.
    Mtx,
}

/// Residual norms.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NormArg {
    /// Sum of absolute changes.
    L1,
    /// Largest absolute change.
    Linf,
}

/// Dangling-node policies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DanglingArg {
    /// Spread the rank of dangling nodes over all nodes.
    Redistribute,
    /// Drop it (ranks then sum to less than 1).
    Ignore,
}

/// PageRank backends in this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Multi-threaded CPU (rayon).
    Cpu,
    /// An NVIDIA GPU: NVRTC-compiled SpMV kernels through the CUDA driver.
    Cuda,
    /// The GPU kernels' CPU equivalents on the CPU device backend (for
    /// checking the device driver without a GPU).
    CpuDevice,
    /// A wgpu adapter (Vulkan, Metal, DX12; lavapipe without a GPU): the
    /// WGSL SpMV kernels, f64 where the adapter supports it.
    Wgpu,
}

/// Runs `dotcompute pagerank`.
pub fn run_pagerank(args: &PagerankArgs) -> CliResult<()> {
    let mut options = match (&args.input, args.generate) {
        (Some(path), None) => PagerankOptions::for_file(path.clone()),
        (None, Some(nodes)) => PagerankOptions::generated(nodes, args.edges_per_node),
        _ => return Err("give a graph with --input FILE or --generate NODES".into()),
    };
    match &mut options.source {
        GraphSource::File { load, .. } => {
            load.format = args.format.map(|f| match f {
                FormatArg::Edgelist => GraphFormat::EdgeList,
                FormatArg::Mtx => GraphFormat::Mtx,
            });
        }
        GraphSource::Generated { generator, seed, .. } => {
            *generator = GraphGenerator::Chunked;
            *seed = args.seed;
        }
    }
    options.config.damping = args.damping;
    options.config.tolerance = args.tol;
    options.config.max_iterations = args.max_iter;
    options.config.norm = match args.norm {
        NormArg::L1 => Norm::L1,
        NormArg::Linf => Norm::Linf,
    };
    options.config.dangling = match args.dangling {
        DanglingArg::Redistribute => Dangling::Redistribute,
        DanglingArg::Ignore => Dangling::Ignore,
    };
    options.threads = args.threads;
    options.simplify = args.simplify;
    options.output = args.output.clone();
    options.top = args.top;
    options.backend = match (args.backend, args.device) {
        (BackendArg::Cuda, device) => PagerankBackend::Cuda {
            device: device.unwrap_or(0),
        },
        (BackendArg::Wgpu, device) => PagerankBackend::Wgpu { device },
        (_, Some(_)) => return Err("--device selects a GPU; it needs --backend cuda or --backend wgpu".into()),
        (BackendArg::Cpu, None) => PagerankBackend::Cpu,
        (BackendArg::CpuDevice, None) => PagerankBackend::CpuDevice,
    };
    crate::output::check_json_path(args.json.as_ref())?;

    let run = pagerank::run(&options)?;
    let r = &run.report;
    println!("dotcompute pagerank: {}", r.source);
    println!("  backend:    {} ({})", r.backend, r.device);
    println!(
        "  graph:      {} nodes, {} edges, {} dangling",
        r.nodes, r.edges, r.dangling_nodes
    );
    println!(
        "  parameters: damping {}, tolerance {:e} ({:?}), max {} iterations, dangling {:?}, {} threads",
        r.config.damping, r.config.tolerance, r.config.norm, r.config.max_iterations, r.config.dangling, r.threads
    );
    println!(
        "  result:     {} after {} iterations, residual {:.3e}, rank sum {:.6}",
        if r.converged { "converged" } else { "NOT converged" },
        r.iterations,
        r.residual,
        r.rank_sum
    );
    println!(
        "  time:       load {}, compute {}, total {} ({} edges/s, {} edge updates/s)",
        fmt_duration(std::time::Duration::from_secs_f64(r.load_seconds)),
        fmt_duration(std::time::Duration::from_secs_f64(r.compute_seconds)),
        fmt_duration(std::time::Duration::from_secs_f64(r.load_seconds + r.compute_seconds)),
        fmt_rate(r.edges_per_second),
        fmt_rate(r.edge_updates_per_second)
    );
    if let Some(t) = &r.device_timings {
        println!(
            "  device:     compile {}, upload {}, setup {}, iterate {} ({} per iteration), download {}; {} launches, {} B read back",
            fmt_duration(std::time::Duration::from_secs_f64(t.compile_seconds)),
            fmt_duration(std::time::Duration::from_secs_f64(t.upload_seconds)),
            fmt_duration(std::time::Duration::from_secs_f64(t.setup_seconds)),
            fmt_duration(std::time::Duration::from_secs_f64(t.iterate_seconds)),
            fmt_duration(std::time::Duration::from_secs_f64(
                t.iterate_seconds / f64::from(r.iterations.max(1))
            )),
            fmt_duration(std::time::Duration::from_secs_f64(t.download_seconds)),
            t.launches,
            t.bytes_to_host
        );
    }
    if !r.top.is_empty() {
        println!("  top {} nodes:", r.top.len());
        for node in &r.top {
            println!("    {:>12}  {:.6e}", node.node, node.rank);
        }
    }
    if let Some(path) = &r.output {
        println!("wrote ranks to {}", path.display());
    }
    if let Some(path) = &args.json {
        crate::output::write_json(path, r)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Options of `dotcompute anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyArgs {
    /// A file with one value per line (CSV or whitespace-separated: see
    /// --column); `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "synthetic")]
    pub input: Option<PathBuf>,
    /// Which column of the input holds the values (0-based).
    #[arg(long, default_value_t = 0, requires = "input")]
    pub column: usize,
    /// Instead of a file, PyDotCompute's labelled stream (sine mixture +
    /// noise + 1% spikes, seed 42) with this many points.
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,
    /// Points per micro-batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// EMA window (α = 2 / (window + 1)).
    #[arg(long, default_value_t = 10_000)]
    pub window: u32,
    /// Report points whose z-score exceeds this.
    #[arg(long, default_value_t = 3.0)]
    pub threshold: f64,
    /// How to run the one detector: per point, stateless micro-batches, or as
    /// a ring kernel holding the state (async, thread or spin tier).
    #[arg(long, value_enum, default_value_t = ModeArg::Batch)]
    pub mode: ModeArg,
    /// Batches in flight at once in the actor modes.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Detector modes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Point by point.
    Cpu,
    /// Stateless micro-batches.
    Batch,
    /// Async-tier ring kernel.
    Actor,
    /// Thread-tier ring kernel.
    ActorThread,
    /// Spin-tier ring kernel (its own thread polling wait-free rings).
    ActorSpin,
    /// GPU ring kernel: a persistent CUDA kernel holding the state (needs an NVIDIA GPU).
    Gpu,
    /// wgpu ring kernel: a WGSL handler holding the state in device memory,
    /// batched dispatches (any Vulkan/Metal/DX12 adapter with f64; lavapipe
    /// without a GPU).
    Wgpu,
}

/// Runs `dotcompute anomaly`.
pub fn run_anomaly(args: &AnomalyArgs) -> CliResult<()> {
    let mut options = match (&args.input, args.synthetic) {
        (Some(path), None) if path.as_os_str() == "-" => AnomalyOptions::stdin(args.column),
        (Some(path), None) => AnomalyOptions::file(path.clone(), args.column),
        (None, Some(n)) => AnomalyOptions::synthetic(n),
        _ => return Err("give the values with --input FILE (or -) or --synthetic N".into()),
    };
    options.detector.window = args.window;
    options.detector.threshold = args.threshold;
    options.detect.batch_size = args.batch;
    options.detect.pipeline_depth = args.depth;
    options.detect.mode = match args.mode {
        ModeArg::Cpu => Mode::Cpu,
        ModeArg::Batch => Mode::Batch,
        ModeArg::Actor => Mode::Actor,
        ModeArg::ActorThread => Mode::ActorThread,
        ModeArg::ActorSpin => Mode::ActorSpin,
        ModeArg::Gpu => Mode::Gpu,
        ModeArg::Wgpu => Mode::Wgpu,
    };
    crate::output::check_json_path(args.json.as_ref())?;

    let run = anomaly::run(&options)?;
    let r = &run.report;
    println!("dotcompute anomaly: {} ({} mode)", r.source, r.mode);
    println!(
        "  detector:   EMA window {}, threshold |z| > {}; batches of {} ({} in flight)",
        r.detector.window, r.detector.threshold, r.batch_size, r.pipeline_depth
    );
    println!("  result:     {} anomalies in {} points", r.anomalies, r.points);
    if let Some(q) = &r.quality {
        let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
        println!(
            "  quality:    precision {}, recall {} against the {} injected spikes ({} true, {} false positives)",
            show(q.precision),
            show(q.recall),
            q.labeled,
            q.true_positives,
            q.false_positives
        );
    }
    println!(
        "  time:       load {}, detect {} ({} points/s); batch latency mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
        fmt_duration(std::time::Duration::from_secs_f64(r.load_seconds)),
        fmt_duration(std::time::Duration::from_secs_f64(r.seconds)),
        fmt_rate(r.points_per_second),
        r.batch_latency.mean_us,
        r.batch_latency.p50_us,
        r.batch_latency.p99_us,
    );
    if !r.first.is_empty() {
        println!("  first anomalies (index, value, z):");
        for a in &r.first {
            println!("    {:>10}  {:>12.6}  {:>8.2}", a.index, a.value, a.score);
        }
    }
    if let Some(path) = &args.json {
        crate::output::write_json(path, r)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
