//! `dotcompute bench pagerank` and `dotcompute bench anomaly`: the library's
//! workload benchmarks (`dotcompute_workloads::{pagerank, anomaly}::bench`)
//! with a table, a JSON report and an SVG chart. `bench pagerank` also
//! measures igraph on the same graphs in the same run ([`super::igraph`]).

use std::path::PathBuf;

use clap::Args;
use dotcompute_workloads::anomaly::{self, AnomalyBenchOptions, AnomalyBenchReport};
use dotcompute_workloads::pagerank::{self, PagerankBenchOptions, PagerankBenchReport, PagerankBenchRow};
use serde::Serialize;

use super::chart::{self, Bar, BarChart, BarGroup, BarUnit};
use super::igraph::{self, IgraphOutcome};
use super::reference;
use crate::machine::{CpuMeter, MachineInfo, Noise};
use crate::output::{check_json_path, fmt_rate, write_json};
use crate::CliResult;

/// Options of `dotcompute bench pagerank`.
#[derive(Debug, Args)]
pub struct PagerankBenchArgs {
    /// Node counts (PyDotCompute's generator, 5 edges per node, seed 42);
    /// each graph is written to an edge-list file, then loaded and solved.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000",
          value_parser = crate::limits::parse_nodes)]
    pub sizes: Vec<usize>,
    /// Timed runs per size (the median is shown; 1 to 100).
    #[arg(long, default_value_t = 3, value_parser = crate::limits::parse_repetitions)]
    pub repetitions: usize,
    /// Do not measure igraph (by default it runs on the same files when
    /// Python and igraph are there: scripts/provision-bench.sh).
    #[arg(long)]
    pub no_igraph: bool,
    /// Where our solver runs: cpu (rayon), cpu-device (the CUDA kernels'
    /// CPU equivalents) or cuda[:N] (needs an NVIDIA GPU).
    #[arg(long, default_value = "cpu", value_parser = clap::value_parser!(dotcompute_workloads::pagerank::PagerankBackend))]
    pub backend: dotcompute_workloads::pagerank::PagerankBackend,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the timings (ours, igraph's, PyDotCompute's) as an SVG bar chart in this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// Options of `dotcompute bench anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyBenchArgs {
    /// Stream length (PyDotCompute's labelled stream, seed 42).
    #[arg(long, default_value_t = 10_000_000, value_parser = crate::limits::parse_points)]
    pub points: usize,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000", value_parser = crate::limits::parse_batch)]
    pub batches: Vec<usize>,
    /// Timed runs per cell (the best is reported; 1 to 100).
    #[arg(long, default_value_t = 3, value_parser = crate::limits::parse_repetitions)]
    pub repetitions: usize,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw points/s per mode and batch size (with PyDotCompute's) as an SVG bar chart in this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// One size of the PageRank report: ours, igraph's, and the ratio.
#[derive(Debug, Serialize)]
struct PagerankJsonRow<'a> {
    #[serde(flatten)]
    ours: &'a PagerankBenchRow,
    /// Other processes' CPU use while we generated and measured this size.
    noise: Option<Noise>,
    /// igraph on the same file, or why not.
    igraph: &'a IgraphOutcome,
    /// igraph's load + solve / our load + accurate solve (medians): > 1
    /// means ours is faster at the same precision.
    speedup_vs_igraph: Option<f64>,
    /// igraph's load + solve / our load + default solve (medians).
    speedup_vs_igraph_default_tolerance: Option<f64>,
}

/// A goal of issue 6 beside the measured figure.
#[derive(Debug, Serialize)]
struct WorkloadGoal {
    goal: String,
    measured: String,
    met: Option<bool>,
}

/// What `bench pagerank --json` writes.
#[derive(Debug, Serialize)]
struct PagerankJson<'a> {
    /// The layout's version (`docs/json.md`).
    schema_version: u32,
    /// `dotcompute`.
    tool: &'static str,
    benchmark: &'static str,
    dotcompute_version: &'static str,
    command_line: Vec<String>,
    build_profile: &'static str,
    machine: MachineInfo,
    options: &'a PagerankBenchOptions,
    threads: usize,
    rows: Vec<PagerankJsonRow<'a>>,
    goals: Vec<WorkloadGoal>,
    /// Noise over all our measurements (time-weighted; each row has its own).
    noise: Option<Noise>,
    /// PyDotCompute's figures: not measured by this run.
    reference: serde_json::Value,
}

fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

fn ratio(theirs: f64, ours: f64) -> Option<f64> {
    (ours > 0.0 && theirs > 0.0).then(|| theirs / ours)
}

/// Median load + accurate solve, if there was an accurate solve.
fn ours_accurate_total(r: &PagerankBenchRow) -> Option<f64> {
    r.accurate.as_ref().map(|a| a.total_seconds.median)
}

fn short_tolerance(c: &pagerank::PagerankConfig) -> String {
    let norm = match c.norm {
        pagerank::Norm::L1 => "L1",
        pagerank::Norm::Linf => "L∞",
    };
    format!("{norm} < {:e}", c.tolerance)
}

/// Runs `dotcompute bench pagerank`.
pub fn run_pagerank(args: &PagerankBenchArgs) -> CliResult<()> {
    check_json_path(args.json.as_ref())?;
    check_json_path(args.svg.as_ref())?;
    let options = PagerankBenchOptions {
        sizes: args.sizes.clone(),
        repetitions: args.repetitions,
        backend: args.backend,
        ..PagerankBenchOptions::default()
    };
    // Noise is metered over our measurements of each size only: during
    // igraph's, its Python process counts as "another process".
    let mut meter = CpuMeter::start();
    let mut noises: Vec<Option<Noise>> = Vec::new();
    let (report, igraph_rows) = pagerank::bench_with(&options, |g| {
        noises.push(meter.finish());
        let outcome = if args.no_igraph {
            Ok(IgraphOutcome::NotMeasured {
                reason: "--no-igraph".into(),
            })
        } else {
            igraph::measure(g, options.repetitions)
        };
        meter = CpuMeter::start();
        outcome
    })?;
    let noise = combine_noise(&noises);
    print_pagerank(&options, &report, &igraph_rows);
    let goals = pagerank_goals(&report, &igraph_rows);
    for g in &goals {
        let status = match g.met {
            Some(true) => "  met  ",
            Some(false) => "NOT met",
            None => "   -   ",
        };
        println!("[{status}] {}: {}", g.goal, g.measured);
    }
    println!(
        "reference (PyDotCompute, scipy, 2-core machine; theirs): 1M nodes / 5M edges 25.4 s build + solve, 54.1 s generation"
    );
    for (r, n) in report.rows.iter().zip(&noises) {
        if let Some(n) = n {
            println!(
                "noise while we measured {} nodes ({:.1} s): {}",
                r.nodes,
                n.elapsed_secs,
                n.one_line()
            );
        }
    }
    if let Some(path) = &args.svg {
        chart::bar_svg(path, &pagerank_chart(&report, &igraph_rows, noise.as_ref()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let rows = report
            .rows
            .iter()
            .zip(&igraph_rows)
            .zip(&noises)
            .map(|((ours, ig), noise)| {
                let theirs = ig.measured().map(|m| m.total_seconds.median);
                PagerankJsonRow {
                    ours,
                    noise: noise.clone(),
                    igraph: ig,
                    speedup_vs_igraph: theirs.zip(ours_accurate_total(ours)).and_then(|(t, o)| ratio(t, o)),
                    speedup_vs_igraph_default_tolerance: theirs.and_then(|t| ratio(t, ours.total_seconds.median)),
                }
            })
            .collect();
        let json = PagerankJson {
            schema_version: crate::output::SCHEMA_VERSION,
            tool: "dotcompute",
            benchmark: "pagerank",
            dotcompute_version: env!("CARGO_PKG_VERSION"),
            command_line: std::env::args().collect(),
            build_profile: build_profile(),
            machine: MachineInfo::detect(),
            options: &options,
            threads: report.threads,
            rows,
            goals,
            noise,
            reference: reference::pagerank(),
        };
        write_json(path, &json)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_pagerank(options: &PagerankBenchOptions, report: &PagerankBenchReport, igraph_rows: &[IgraphOutcome]) {
    let default_tol = short_tolerance(&options.config);
    let accurate_tol = options.accurate.as_ref().map(short_tolerance);
    println!(
        "dotcompute bench pagerank: generate → write edge list → load + solve ({} threads), median of {}",
        report.threads, options.repetitions
    );
    println!(
        "ours: solve to {default_tol} (PyDotCompute's criterion){}, dangling rank redistributed",
        accurate_tol.as_ref().map_or(String::new(), |t| format!(
            " and, after the same load, to {t} (igraph's PRPACK tolerance)"
        ))
    );
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>10} {:>6} {:>10} {:>10}",
        "nodes", "edges", "load", "solve", "iters", "total", "solve*", "iters*", "total*", "edges/s"
    );
    let ms = |s: f64| format!("{:.1}ms", s * 1e3);
    for r in &report.rows {
        let (acc_solve, acc_iters, acc_total) = match &r.accurate {
            Some(a) => (
                ms(a.compute_seconds.median),
                a.iterations.to_string(),
                ms(a.total_seconds.median),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>10} {:>6} {:>10} {:>10}",
            r.nodes,
            r.edges,
            ms(r.load_seconds.median),
            ms(r.compute_seconds.median),
            r.iterations,
            ms(r.total_seconds.median),
            acc_solve,
            acc_iters,
            acc_total,
            fmt_rate(r.edges_per_second)
        );
    }
    if let Some(t) = &accurate_tol {
        println!("(* = solved to {t})");
    }
    let version = igraph_rows.iter().find_map(|o| o.measured()).map(|m| {
        format!(
            "igraph {} (C core, PRPACK) via Python {}",
            m.igraph_version, m.python_version
        )
    });
    println!(
        "{} on the same edge-list files: load = Graph.Read_Edgelist, solve = Graph.pagerank(damping=0.85); import not counted",
        version.as_deref().unwrap_or("igraph")
    );
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>22}",
        "nodes", "load", "solve", "total", "max|Δrank|", "max rel Δ", "ours* faster (totals)"
    );
    for (r, ig) in report.rows.iter().zip(igraph_rows) {
        match ig {
            IgraphOutcome::Measured(m) => {
                let speedup = ours_accurate_total(r)
                    .and_then(|o| ratio(m.total_seconds.median, o))
                    .map_or("-".to_string(), |x| format!("{x:.2}×"));
                println!(
                    "{:>10} {:>10} {:>10} {:>10} {:>12.2e} {:>12.2e} {:>22}",
                    r.nodes,
                    ms(m.load_seconds.median),
                    ms(m.solve_seconds.median),
                    ms(m.total_seconds.median),
                    m.max_abs_diff,
                    m.max_rel_diff,
                    speedup
                );
            }
            IgraphOutcome::NotMeasured { reason } => println!("{:>10} not measured: {reason}", r.nodes),
        }
    }
}

fn pagerank_goals(report: &PagerankBenchReport, igraph_rows: &[IgraphOutcome]) -> Vec<WorkloadGoal> {
    let mut goals = Vec::new();
    let Some((r, ig)) = report
        .rows
        .iter()
        .zip(igraph_rows)
        .find(|(r, _)| r.nodes == 1_000_000 && r.edges == 5_000_000)
    else {
        return goals;
    };
    let s = |x: f64| format!("{:.1} ms", x * 1e3);
    goals.push(WorkloadGoal {
        goal: format!(
            "1M nodes / 5M edges loaded and solved in under 0.5 s ({}, the default)",
            short_tolerance(&report.options.config)
        ),
        measured: format!(
            "{} load + {} solve = {} ({} iterations)",
            s(r.load_seconds.median),
            s(r.compute_seconds.median),
            s(r.total_seconds.median),
            r.iterations
        ),
        met: Some(r.total_seconds.median < 0.5),
    });
    if let Some(a) = &r.accurate {
        goals.push(WorkloadGoal {
            goal: format!(
                "the same, solved to igraph's precision ({})",
                short_tolerance(&a.config)
            ),
            measured: format!(
                "{} load + {} solve = {} ({} iterations)",
                s(r.load_seconds.median),
                s(a.compute_seconds.median),
                s(a.total_seconds.median),
                a.iterations
            ),
            met: Some(a.total_seconds.median < 0.5),
        });
    }
    let (measured, met) = match (ig, ours_accurate_total(r)) {
        (IgraphOutcome::Measured(m), Some(ours)) => (
            format!(
                "ours {} vs igraph {} load + solve at igraph's precision (max |Δrank| {:.1e}): {:.2}× faster",
                s(ours),
                s(m.total_seconds.median),
                m.max_abs_diff,
                m.total_seconds.median / ours
            ),
            Some(ours <= m.total_seconds.median),
        ),
        (IgraphOutcome::Measured(_), None) => ("no accurate solve to compare".into(), None),
        (IgraphOutcome::NotMeasured { reason }, _) => (format!("igraph not measured: {reason}"), None),
    };
    goals.push(WorkloadGoal {
        goal: "at least as fast as igraph (C core, PRPACK), measured in the same run".into(),
        measured,
        met,
    });
    goals
}

fn group_title(nodes: usize, edges: usize) -> String {
    format!("{} nodes · {} edges", thousands(nodes), thousands(edges))
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The noise of several metered phases as one: CPU shares weighted by each
/// phase's duration.
fn combine_noise(phases: &[Option<Noise>]) -> Option<Noise> {
    let phases: Vec<&Noise> = phases.iter().flatten().collect();
    let first = phases.first()?;
    let last = phases.last()?;
    let elapsed: f64 = phases.iter().map(|n| n.elapsed_secs).sum();
    let weighted = |f: fn(&Noise) -> f64| {
        if elapsed > 0.0 {
            phases.iter().map(|n| f(n) * n.elapsed_secs).sum::<f64>() / elapsed
        } else {
            0.0
        }
    };
    Some(Noise {
        elapsed_secs: elapsed,
        other_cpu_pct: weighted(|n| n.other_cpu_pct),
        own_cpu_pct: weighted(|n| n.own_cpu_pct),
        loadavg_1m_start: first.loadavg_1m_start,
        loadavg_1m_end: last.loadavg_1m_end,
    })
}

fn noise_note(noise: Option<&Noise>) -> String {
    match noise {
        Some(n) if n.other_cpu_pct >= 10.0 => {
            format!("other processes used {:.0}% of the CPU (noisy run)", n.other_cpu_pct)
        }
        Some(n) => format!("other processes used {:.0}% of the CPU", n.other_cpu_pct),
        None => "noise not metered".into(),
    }
}

/// The PageRank chart: per size, our load and solves, igraph's, and
/// PyDotCompute's build + solve where the reference has that size.
fn pagerank_chart(report: &PagerankBenchReport, igraph_rows: &[IgraphOutcome], noise: Option<&Noise>) -> BarChart {
    let machine = MachineInfo::detect();
    let default_tol = short_tolerance(&report.options.config);
    let mut groups = Vec::new();
    for (r, ig) in report.rows.iter().zip(igraph_rows) {
        let ours = |label: String, value: f64| Bar {
            label,
            value,
            series: 0,
            theirs: false,
        };
        let mut bars = vec![
            ours("dotcompute load (edge-list file → CSR)".into(), r.load_seconds.median),
            ours(
                format!("dotcompute solve, {default_tol} ({} iterations)", r.iterations),
                r.compute_seconds.median,
            ),
        ];
        bars.push(ours(
            format!("dotcompute load + solve, {default_tol}"),
            r.total_seconds.median,
        ));
        if let Some(a) = &r.accurate {
            let t = short_tolerance(&a.config);
            bars.push(ours(
                format!("dotcompute solve, {t} ({} iterations)", a.iterations),
                a.compute_seconds.median,
            ));
            bars.push(ours(format!("dotcompute load + solve, {t}"), a.total_seconds.median));
        }
        let igraph = |label: &str, value: f64| Bar {
            label: label.into(),
            value,
            series: 1,
            theirs: false,
        };
        match ig {
            IgraphOutcome::Measured(m) => {
                bars.push(igraph("igraph load (Graph.Read_Edgelist)", m.load_seconds.median));
                bars.push(igraph("igraph solve (pagerank, PRPACK)", m.solve_seconds.median));
                bars.push(igraph("igraph load + solve", m.total_seconds.median));
            }
            IgraphOutcome::NotMeasured { .. } => bars.push(igraph("igraph load + solve", f64::NAN)),
        }
        if let Some(&(_, _, _, compute)) = reference::PAGERANK_CPU_SPARSE
            .iter()
            .find(|(n, e, _, _)| *n == r.nodes && *e == r.edges)
        {
            bars.push(Bar {
                label: "PyDotCompute scipy build + solve (theirs)".into(),
                value: compute,
                series: 0,
                theirs: true,
            });
        }
        groups.push(BarGroup {
            title: group_title(r.nodes, r.edges),
            bars,
        });
    }
    let igraph_note = igraph_rows
        .iter()
        .find_map(|o| o.measured())
        .map_or("igraph not measured in this run.".to_string(), |m| {
            format!(
                "Orange: igraph {} (C core, PRPACK; Python {}) on the same edge-list files in the same run; max |Δrank| vs ours (L1 < 1e-10) ≤ {:.1e}.",
                m.igraph_version,
                m.python_version,
                igraph_rows
                    .iter()
                    .filter_map(|o| o.measured())
                    .map(|m| m.max_abs_diff)
                    .fold(0.0f64, f64::max)
            )
        });
    BarChart {
        title: format!(
            "PageRank (d = 0.85), PyDotCompute's generated graphs · dotcompute {}",
            env!("CARGO_PKG_VERSION")
        ),
        notes: vec![
            format!(
                "{} · {} threads · median of {} · {}",
                machine.one_line(),
                report.threads,
                report.options.repetitions,
                noise_note(noise)
            ),
            igraph_note,
            "Grey dashed bars: PyDotCompute's own figures (theirs, same machine class, not measured in this run)."
                .into(),
        ],
        unit: BarUnit::Seconds,
        axis: "seconds (log scale; shorter is faster)".into(),
        groups,
    }
}

/// What `bench anomaly --json` writes: the library's report plus context.
#[derive(Debug, Serialize)]
struct AnomalyJson<'a> {
    /// The layout's version (`docs/json.md`).
    schema_version: u32,
    /// `dotcompute`.
    tool: &'static str,
    benchmark: &'static str,
    dotcompute_version: &'static str,
    command_line: Vec<String>,
    build_profile: &'static str,
    machine: MachineInfo,
    #[serde(flatten)]
    report: &'a AnomalyBenchReport,
    noise: Option<Noise>,
    /// PyDotCompute's figures: not measured by this run.
    reference: serde_json::Value,
}

/// Runs `dotcompute bench anomaly`.
pub fn run_anomaly(args: &AnomalyBenchArgs) -> CliResult<()> {
    check_json_path(args.json.as_ref())?;
    check_json_path(args.svg.as_ref())?;
    let options = AnomalyBenchOptions {
        points: args.points,
        batch_sizes: args.batches.clone(),
        repetitions: args.repetitions,
        ..AnomalyBenchOptions::default()
    };
    let meter = CpuMeter::start();
    let report = anomaly::bench(&options)?;
    let noise = meter.finish();
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
    println!(
        "reference (PyDotCompute, 1M points, 2-core machine; theirs): CPU Only ~2.1M points/s; actor with a NumPy stand-in for CuPy 1.08M (batch 100) to 8.74M (batch 1000)"
    );
    if let Some(n) = &noise {
        println!("noise: during these {:.1} s, {}", n.elapsed_secs, n.one_line());
    }
    if let Some(path) = &args.svg {
        chart::bar_svg(path, &anomaly_chart(&report, noise.as_ref()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let json = AnomalyJson {
            schema_version: crate::output::SCHEMA_VERSION,
            tool: "dotcompute",
            benchmark: "anomaly",
            dotcompute_version: env!("CARGO_PKG_VERSION"),
            command_line: std::env::args().collect(),
            build_profile: build_profile(),
            machine: MachineInfo::detect(),
            report: &report,
            noise,
            reference: reference::anomaly(),
        };
        write_json(path, &json)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn mode_label(mode: &str) -> &'static str {
    match mode {
        "cpu" => "cpu: per point, calling thread",
        "batch" => "batch: stateless micro-batches",
        "actor" => "actor: async-tier ring kernel",
        "actor-thread" => "actor-thread: thread-tier ring kernel",
        "actor-spin" => "actor-spin: spin-tier ring kernel",
        _ => "other mode",
    }
}

/// The anomaly chart: per batch size, points/s of every mode, and
/// PyDotCompute's where the reference has that batch size.
fn anomaly_chart(report: &AnomalyBenchReport, noise: Option<&Noise>) -> BarChart {
    let machine = MachineInfo::detect();
    let mut groups = Vec::new();
    for &batch in &report.options.batch_sizes {
        let mut bars: Vec<Bar> = report
            .rows
            .iter()
            .filter(|r| r.batch_size == batch)
            .map(|r| Bar {
                label: format!("dotcompute {}", mode_label(r.mode)),
                value: r.points_per_second,
                series: report
                    .options
                    .modes
                    .iter()
                    .position(|m| m.name() == r.mode)
                    .unwrap_or(0),
                theirs: false,
            })
            .collect();
        bars.extend(
            reference::ANOMALY_1M
                .iter()
                .filter(|(_, b, _)| *b == batch)
                .map(|&(label, _, pps)| Bar {
                    label: format!("{label} (theirs, 1M points)"),
                    value: pps,
                    series: 0,
                    theirs: true,
                }),
        );
        groups.push(BarGroup {
            title: format!("micro-batches of {} points", thousands(batch)),
            bars,
        });
    }
    BarChart {
        title: format!(
            "Streaming anomaly detection (EMA z-score), {} points · dotcompute {}",
            thousands(report.options.points),
            env!("CARGO_PKG_VERSION")
        ),
        notes: vec![
            format!(
                "{} · best of {} · {}",
                machine.one_line(),
                report.options.repetitions,
                noise_note(noise)
            ),
            format!(
                "Every mode found the same anomalies: {} · {} batches in flight in the actor modes.",
                report.all_identical, report.options.pipeline_depth
            ),
            "Grey dashed bars: PyDotCompute's own figures (theirs, 1M points, same machine class, not measured in this run).".into(),
        ],
        unit: BarUnit::Rate("points/s"),
        axis: "points per second (log scale; longer is faster)".into(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::{combine_noise, thousands, Noise};

    #[test]
    fn noise_of_phases_is_time_weighted() {
        let phase = |elapsed_secs: f64, other_cpu_pct: f64| Noise {
            elapsed_secs,
            other_cpu_pct,
            own_cpu_pct: 50.0,
            loadavg_1m_start: Some(elapsed_secs),
            loadavg_1m_end: Some(other_cpu_pct),
        };
        let n = combine_noise(&[Some(phase(0.1, 40.0)), None, Some(phase(1.9, 0.0))]).unwrap();
        assert!((n.elapsed_secs - 2.0).abs() < 1e-12);
        assert!((n.other_cpu_pct - 2.0).abs() < 1e-9, "{}", n.other_cpu_pct);
        assert_eq!((n.loadavg_1m_start, n.loadavg_1m_end), (Some(0.1), Some(0.0)));
        assert!(combine_noise(&[None]).is_none());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(5_000_000), "5,000,000");
        assert_eq!(thousands(12_345), "12,345");
    }
}
