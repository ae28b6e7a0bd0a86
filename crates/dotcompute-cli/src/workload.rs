//! `dotcompute pagerank` and `dotcompute anomaly`: thin wrappers over
//! `dotcompute_workloads`, which do the work and build the reports.
//!
//! Standard output carries one thing: the human report by default, or the
//! JSON report with `--json -`, or the records (ranks, anomalies) with
//! `--output -`; asking for two of them there is a usage error.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use dotcompute_workloads::anomaly::{self, Anomaly, AnomalyOptions, AnomalySink, Mode};
use dotcompute_workloads::graph::{GraphFormat, GraphGenerator, NodeIds, Weights};
use dotcompute_workloads::limits::MemoryLimit;
use dotcompute_workloads::pagerank::{self, Dangling, GraphSource, Norm, PagerankBackend, PagerankOptions};

use crate::ending::{usage, NotConverged};
use crate::output::{fmt_bytes, fmt_rate, fmt_secs, fmt_us, is_stdout};
use crate::{BoxError, CliResult};

/// Options of `dotcompute pagerank`.
#[derive(Debug, Args)]
pub struct PagerankArgs {
    /// Graph file: an edge list (`src dst [weight]` per line; spaces, tabs or
    /// commas; `#` comments; a header line is skipped) or Matrix Market;
    /// `.gz` files are decompressed; `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    pub input: Option<PathBuf>,
    /// Instead of a file, generate PyDotCompute's random graph with this many nodes.
    #[arg(long, value_name = "NODES", value_parser = crate::limits::parse_nodes)]
    pub generate: Option<usize>,
    /// Edges per node of the generated graph.
    #[arg(long, default_value_t = 5.0, requires = "generate")]
    pub edges_per_node: f64,
    /// Seed of the generated graph (numpy's `default_rng`, as PyDotCompute).
    #[arg(long, default_value_t = 42, requires = "generate")]
    pub seed: u64,
    /// Input format (default: from the file name, `.mtx` or `.mtx.gz` is
    /// Matrix Market; for standard input, from the first line).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Edge weights (a third edge-list column, Matrix Market real/integer
    /// values): use them (weighted PageRank, cpu backend), ignore them
    /// (every edge counts once), or refuse input that has them.
    #[arg(long, value_enum, default_value_t = WeightsArg::Use)]
    pub weights: WeightsArg,
    /// Edge-list node ids: renumbered in ascending order (any id up to
    /// 2^64-1), or used as indices (the graph has max id + 1 nodes).
    #[arg(long, value_enum, default_value_t = IdsArg::Compact)]
    pub ids: IdsArg,
    /// Refuse inputs and graphs that would need more memory than this
    /// (`512M`, `4G`; default: this machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::limits::parse_memory_limit)]
    pub memory_limit: Option<MemoryLimit>,
    /// Damping factor.
    #[arg(long, default_value_t = 0.85)]
    pub damping: f64,
    /// Stop when the residual between iterations is below this.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Norm of the residual.
    #[arg(long, value_enum, default_value_t = NormArg::Linf)]
    pub norm: NormArg,
    /// Most iterations (not converged by then: exit status 3).
    #[arg(long, default_value_t = 100)]
    pub max_iter: u32,
    /// Rank of nodes without out-edges: spread over all nodes (correct
    /// PageRank) or dropped (PyDotCompute's behaviour).
    #[arg(long, value_enum, default_value_t = DanglingArg::Redistribute)]
    pub dangling: DanglingArg,
    /// Where to compute: the rayon solver, the CUDA SpMV kernels on a GPU,
    /// or those kernels' CPU equivalents (the device driver on the CPU
    /// backend). Weighted graphs: cpu only.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
    /// GPU ordinal: the CUDA device (with --backend cuda) or the wgpu
    /// adapter as `dotcompute info` numbers them (`wgpu:N`; with --backend wgpu).
    #[arg(long, value_name = "N")]
    pub device: Option<usize>,
    /// Worker threads, 1 to the CPU cores (default: one per core).
    #[arg(long, value_parser = crate::limits::parse_threads)]
    pub threads: Option<usize>,
    /// Drop self-loops and repeated edges before solving (weighted: repeats
    /// are merged, their weights added).
    #[arg(long)]
    pub simplify: bool,
    /// Write `node<TAB>rank` lines, in node order, to this file (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the report as JSON to this file (`-`: stdout; fields in docs/json.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How many top-ranked nodes to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// Graph file formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `src dst [weight]` per line.
    Edgelist,
    /// Matrix Market coordinate format.
    Mtx,
}

/// Weight policies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WeightsArg {
    /// Weighted PageRank when the input has weights.
    Use,
    /// Every edge counts once.
    Ignore,
    /// Weights are an error.
    Refuse,
}

/// Edge-list id handling.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IdsArg {
    /// Renumber the ids that occur.
    Compact,
    /// Ids are node indices.
    Dense,
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

fn norm_name(n: Norm) -> &'static str {
    match n {
        Norm::L1 => "l1",
        _ => "linf",
    }
}

fn dangling_name(d: Dangling) -> &'static str {
    match d {
        Dangling::Ignore => "ignore",
        _ => "redistribute",
    }
}

/// Refuses two outputs that both want standard output.
fn one_stdout(claims: &[(&str, Option<&PathBuf>)]) -> CliResult<bool> {
    let on_stdout: Vec<&str> = claims
        .iter()
        .filter(|(_, p)| p.is_some_and(|p| is_stdout(p)))
        .map(|(name, _)| *name)
        .collect();
    if on_stdout.len() > 1 {
        return Err(usage(format!(
            "{} both ask for standard output: send one of them to a file",
            on_stdout.join(" and ")
        )));
    }
    Ok(on_stdout.is_empty())
}

/// Runs `dotcompute pagerank`.
pub fn run_pagerank(args: &PagerankArgs) -> CliResult<()> {
    let human = one_stdout(&[("--output -", args.output.as_ref()), ("--json -", args.json.as_ref())])?;
    let mut options = match (&args.input, args.generate) {
        (Some(path), None) => PagerankOptions::for_file(path.clone()),
        (None, Some(nodes)) => PagerankOptions::generated(nodes, args.edges_per_node),
        _ => {
            return Err(usage(
                "give a graph with --input FILE (or - for standard input) or --generate NODES",
            ))
        }
    };
    let limit = args.memory_limit.unwrap_or_default();
    options.memory_limit = limit;
    match &mut options.source {
        GraphSource::File { load, .. } => {
            load.format = args.format.map(|f| match f {
                FormatArg::Edgelist => GraphFormat::EdgeList,
                FormatArg::Mtx => GraphFormat::Mtx,
            });
            load.weights = match args.weights {
                WeightsArg::Use => Weights::Use,
                WeightsArg::Ignore => Weights::Ignore,
                WeightsArg::Refuse => Weights::Refuse,
            };
            load.ids = match args.ids {
                IdsArg::Compact => NodeIds::Compact,
                IdsArg::Dense => NodeIds::Dense,
            };
            load.memory_limit = limit;
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
    options.output = args.output.clone().filter(|p| !is_stdout(p));
    options.top = args.top;
    options.backend = match (args.backend, args.device) {
        (BackendArg::Cuda, device) => PagerankBackend::Cuda {
            device: device.unwrap_or(0),
        },
        (BackendArg::Wgpu, device) => PagerankBackend::Wgpu { device },
        (_, Some(_)) => {
            return Err(usage(
                "--device selects a GPU; it needs --backend cuda or --backend wgpu",
            ))
        }
        (BackendArg::Cpu, None) => PagerankBackend::Cpu,
        (BackendArg::CpuDevice, None) => PagerankBackend::CpuDevice,
    };
    crate::output::check_json_path_or_stdout(args.json.as_ref())?;
    crate::output::check_json_path_or_stdout(args.output.as_ref())?;

    let watch = crate::progress::PagerankWatch::start(options.progress.clone());
    let run = pagerank::run(&options);
    drop(watch);
    let run = run?;
    let r = &run.report;
    if args.output.as_ref().is_some_and(|p| is_stdout(p)) {
        let mut out = crate::stdout::Stdout;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut out);
        let written = pagerank::write_ranks_to(&mut w, &run.graph, &run.ranks).and_then(|()| w.flush());
        drop(w);
        if let Err(e) = written {
            if !crate::stdout::closed() {
                return Err(format!("cannot write the ranks to standard output: {e}").into());
            }
        }
    }
    if human {
        println!("dotcompute pagerank: {}", r.source);
        println!("  backend:    {} ({})", r.backend, r.device);
        println!(
            "  graph:      nodes={}, edges={}, dangling={}{}",
            r.nodes,
            r.edges,
            r.dangling_nodes,
            if run.graph.is_weighted() { ", weighted" } else { "" }
        );
        println!(
            "  parameters: damping {}, tolerance {:e} ({}), max {} iterations, dangling {}, {} threads",
            r.config.damping,
            r.config.tolerance,
            norm_name(r.config.norm),
            r.config.max_iterations,
            dangling_name(r.config.dangling),
            r.threads
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
            fmt_secs(r.load_seconds),
            fmt_secs(r.compute_seconds),
            fmt_secs(r.load_seconds + r.compute_seconds),
            fmt_rate(r.edges_per_second),
            fmt_rate(r.edge_updates_per_second)
        );
        if let Some(t) = &r.device_timings {
            println!(
                "  device:     compile {}, upload {}, setup {}, iterate {} ({} per iteration), download {}; {} launches, {} read back",
                fmt_secs(t.compile_seconds),
                fmt_secs(t.upload_seconds),
                fmt_secs(t.setup_seconds),
                fmt_secs(t.iterate_seconds),
                fmt_secs(t.iterate_seconds / f64::from(r.iterations.max(1))),
                fmt_secs(t.download_seconds),
                t.launches,
                fmt_bytes(t.bytes_to_host)
            );
        }
        if !r.top.is_empty() {
            println!("  top {} nodes:", r.top.len());
            for node in &r.top {
                println!("    {:>20}  {:.6e}", node.node, node.rank);
            }
        }
        if let Some(path) = &r.output {
            println!("wrote ranks to {}", path.display());
        }
    }
    if let Some(path) = &args.json {
        crate::output::write_report(path, "pagerank", r)?;
        if human {
            println!("wrote {}", path.display());
        }
    }
    if !r.converged {
        return Err(Box::new(NotConverged {
            iterations: r.iterations,
            residual: r.residual,
            tolerance: r.config.tolerance,
        }));
    }
    Ok(())
}

/// Options of `dotcompute anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyArgs {
    /// A file with one value per line (CSV or whitespace-separated: see
    /// --column); `-` reads standard input as it arrives (`tail -f log |
    /// dotcompute anomaly --input -`).
    #[arg(long, value_name = "FILE", conflicts_with = "synthetic")]
    pub input: Option<PathBuf>,
    /// Which column of the input holds the values (0-based).
    #[arg(long, default_value_t = 0, requires = "input")]
    pub column: usize,
    /// Instead of a file, PyDotCompute's labelled stream (sine mixture +
    /// noise + 1% spikes, seed 42) with this many points.
    #[arg(long, value_name = "N", value_parser = crate::limits::parse_points)]
    pub synthetic: Option<usize>,
    /// Points per micro-batch (a batch is cut short when the input has to
    /// be waited for).
    #[arg(long, default_value_t = 1000, value_parser = crate::limits::parse_batch)]
    pub batch: usize,
    /// EMA window (α = 2 / (window + 1)).
    #[arg(long, default_value_t = 10_000)]
    pub window: u32,
    /// Report points whose z-score exceeds this.
    #[arg(long, default_value_t = 3.0)]
    pub threshold: f64,
    /// Outlier clip: a deviation of more than this many standard deviations
    /// enters the running mean and variance as exactly this many (it is
    /// still judged, and reported, by its full size).
    #[arg(long, default_value_t = anomaly::DEFAULT_CLIP)]
    pub clip: f64,
    /// How to run the one detector: per point, stateless micro-batches, or as
    /// a ring kernel holding the state (async, thread or spin tier, or GPU).
    #[arg(long, value_enum, default_value_t = ModeArg::Batch)]
    pub mode: ModeArg,
    /// Batches in flight at once in the actor and GPU modes.
    #[arg(long, default_value_t = 8, value_parser = crate::limits::parse_depth)]
    pub depth: usize,
    /// How many anomalies to print on stdout, each as soon as it is found
    /// (default: all of them for standard input, 20 otherwise).
    #[arg(long, value_name = "N")]
    pub list: Option<u64>,
    /// Write every anomaly, as found, to this file (`-`: stdout): CSV
    /// (`index,value,score`), or JSON lines for a `.jsonl`/`.ndjson` name or
    /// with --output-format jsonl.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The --output format (default: from the file name; CSV otherwise).
    #[arg(long, value_enum, requires = "output")]
    pub output_format: Option<RecordFormat>,
    /// Write the report as JSON to this file (`-`: stdout; fields in docs/json.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Refuse a synthetic stream that would need more memory than this
    /// (`512M`, `4G`; default: this machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::limits::parse_memory_limit)]
    pub memory_limit: Option<MemoryLimit>,
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

/// Formats of the anomaly records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// `index,value,score` with a header line.
    Csv,
    /// One JSON object per line: `{"index":..,"value":..,"score":..}`.
    Jsonl,
}

impl RecordFormat {
    fn for_path(path: &Path) -> RecordFormat {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => RecordFormat::Jsonl,
            _ => RecordFormat::Csv,
        }
    }
}

/// Where the anomalies go as they are found.
struct Sinks {
    /// Lines printed on stdout so far, and the most to print.
    listed: u64,
    list: u64,
    human: bool,
    records: Option<(RecordFormat, Box<dyn Write>)>,
    records_to_stdout: bool,
    records_name: String,
}

impl Sinks {
    fn record(&mut self, a: &Anomaly) -> std::io::Result<()> {
        let Some((format, w)) = self.records.as_mut() else {
            return Ok(());
        };
        match format {
            RecordFormat::Csv => writeln!(w, "{},{},{}", a.index, a.value, a.score),
            RecordFormat::Jsonl => {
                serde_json::to_writer(&mut *w, a).map_err(std::io::Error::other)?;
                w.write_all(b"\n")
            }
        }
    }

    fn write_error(&self, e: std::io::Error) -> BoxError {
        format!("cannot write {}: {e}", self.records_name).into()
    }
}

impl AnomalySink<BoxError> for Sinks {
    fn anomaly(&mut self, a: &Anomaly) -> Result<(), BoxError> {
        if self.human && self.listed < self.list {
            if self.listed == 0 {
                println!("  anomalies as found (index, value, z):");
            }
            println!("    {:>12}  {:>14}  {:>10.2}", a.index, format_value(a.value), a.score);
            self.listed += 1;
        }
        match self.record(a) {
            Err(_) if self.records_to_stdout && crate::stdout::closed() => Ok(()),
            Err(e) => Err(self.write_error(e)),
            Ok(()) => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        if let Some((_, w)) = self.records.as_mut() {
            if let Err(e) = w.flush() {
                if !(self.records_to_stdout && crate::stdout::closed()) {
                    return Err(self.write_error(e));
                }
            }
        }
        crate::stdout::flush();
        Ok(())
    }

    fn stopped(&self) -> bool {
        // Nobody reads standard output any more: nothing left to do.
        (self.human || self.records_to_stdout) && crate::stdout::closed()
    }
}

/// A value with up to 6 decimals, in scientific notation when very large or small.
fn format_value(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-4) {
        format!("{v:.6e}")
    } else {
        format!("{v:.6}")
    }
}

/// Runs `dotcompute anomaly`.
pub fn run_anomaly(args: &AnomalyArgs) -> CliResult<()> {
    let human = one_stdout(&[("--output -", args.output.as_ref()), ("--json -", args.json.as_ref())])?;
    let stdin = args.input.as_ref().is_some_and(|p| is_stdout(p));
    let mut options = match (&args.input, args.synthetic) {
        (Some(_), None) if stdin => AnomalyOptions::stdin(args.column),
        (Some(path), None) => AnomalyOptions::file(path.clone(), args.column),
        (None, Some(n)) => AnomalyOptions::synthetic(n),
        _ => {
            return Err(usage(
                "give the values with --input FILE (or - for standard input) or --synthetic N",
            ))
        }
    };
    options.detector.window = args.window;
    options.detector.threshold = args.threshold;
    options.detector.clip = args.clip;
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
    let list = args.list.unwrap_or(if stdin { u64::MAX } else { 20 });
    options.list = usize::try_from(list.min(1000)).unwrap_or(1000);
    crate::output::check_json_path_or_stdout(args.json.as_ref())?;
    crate::output::check_json_path_or_stdout(args.output.as_ref())?;

    let records = match &args.output {
        None => None,
        Some(path) => {
            let format = args.output_format.unwrap_or_else(|| RecordFormat::for_path(path));
            let w: Box<dyn Write> = if is_stdout(path) {
                Box::new(std::io::BufWriter::new(crate::stdout::Stdout))
            } else {
                let file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Box::new(std::io::BufWriter::with_capacity(1 << 16, file))
            };
            Some((format, w))
        }
    };
    let mut sinks = Sinks {
        listed: 0,
        list,
        human,
        records_to_stdout: args.output.as_ref().is_some_and(|p| is_stdout(p)),
        records_name: args.output.as_ref().map_or_else(String::new, |p| {
            if is_stdout(p) {
                "standard output".into()
            } else {
                p.display().to_string()
            }
        }),
        records,
    };
    if let Some((RecordFormat::Csv, w)) = sinks.records.as_mut() {
        writeln!(w, "index,value,score").map_err(|e| sinks.write_error(e))?;
    }
    if human {
        println!(
            "dotcompute anomaly: {} ({} mode)",
            options.source_description(),
            options.detect.mode.name()
        );
        println!(
            "  detector:   EMA window {}, threshold |z| > {}, outlier clip {}σ; batches of {} ({} in flight)",
            args.window, args.threshold, args.clip, args.batch, args.depth
        );
        crate::stdout::flush();
    }
    let r = if options.detect.mode == Mode::Wgpu {
        // The wgpu detector runs on the loaded stream (not streamed yet);
        // its anomalies go to the same outputs afterwards.
        let run = anomaly::run(&options)?;
        for a in &run.anomalies {
            sinks.anomaly(a)?;
        }
        sinks.flush()?;
        run.report
    } else {
        anomaly::run_stream(&options, args.memory_limit.unwrap_or_default(), &mut sinks)?
    };
    if human {
        if r.anomalies > sinks.listed && sinks.listed > 0 {
            println!(
                "    ... {} more not listed (--list N to print more, --output FILE for all)",
                r.anomalies - sinks.listed
            );
        }
        println!("  result:     anomalies={} in points={}", r.anomalies, r.points);
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
            "  time:       read {}, detect {} ({} points/s); batch latency mean {}, p50 {}, p99 {}",
            fmt_secs(r.load_seconds),
            fmt_secs(r.seconds),
            fmt_rate(r.points_per_second),
            fmt_us(r.batch_latency.mean_us),
            fmt_us(r.batch_latency.p50_us),
            fmt_us(r.batch_latency.p99_us),
        );
        if let Some(path) = args.output.as_ref().filter(|p| !is_stdout(p)) {
            println!("wrote {} anomalies to {}", r.anomalies, path.display());
        }
    }
    if let Some(path) = &args.json {
        crate::output::write_report(path, "anomaly", &r)?;
        if human {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
