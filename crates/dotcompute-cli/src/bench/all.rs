//! `dotcompute bench all`: latency, throughput and queue in one run, with
//! moderate sizes (under a minute in release on 2 idle cores), one JSON report,
//! one chart and the goals.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use serde_json::json;

use super::tier::{self, TierArg};
use super::{chart, goals, latency, queue, reference, throughput, BenchReport};
use crate::machine::{CpuMeter, Noise};
use crate::CliResult;

/// Options of `dotcompute bench all`.
#[derive(Debug, Args)]
pub struct AllArgs {
    /// Tiers for latency and throughput (comma-separated): async, thread, spin, process, gpu, all.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![TierArg::All])]
    pub tier: Vec<TierArg>,
    /// Latency: measured round trips per case.
    #[arg(long, default_value_t = 100_000, value_parser = crate::limits::parse_samples)]
    pub samples: u64,
    /// Latency: warm-up round trips per case.
    #[arg(long, default_value_t = 1000, value_parser = crate::limits::parse_warmup)]
    pub warmup: u64,
    /// Throughput: messages per workload.
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Throughput and queue: messages per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(2..=1024))]
    pub batch: u64,
    /// Queue: push+pop pairs per round.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: u64,
    /// Queue: rounds per case (the best is kept).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Also write every result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the latency distributions as an SVG chart in this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Config {
    latency: latency::Config,
    throughput: throughput::Config,
    queue: queue::Config,
}

#[derive(Debug, Serialize)]
struct Results {
    latency: Vec<latency::LatencyResult>,
    throughput: Vec<throughput::ThroughputResult>,
    queue: Vec<queue::QueueResult>,
    elapsed_secs: f64,
    /// Noise per section (the whole run's is the report's `noise`).
    noise: SectionNoise,
}

#[derive(Debug, Serialize)]
struct SectionNoise {
    latency: Option<Noise>,
    throughput: Option<Noise>,
    queue: Option<Noise>,
}

/// Runs `f` and measures the noise around it; prints it.
fn section<T>(title: &str, f: impl FnOnce() -> CliResult<T>) -> CliResult<(T, Option<Noise>)> {
    println!("== {title}");
    let meter = CpuMeter::start();
    let out = f()?;
    let noise = meter.finish();
    if let Some(n) = &noise {
        println!("noise during {title} ({:.1} s): {}", n.elapsed_secs, n.one_line());
    }
    println!();
    Ok((out, noise))
}

/// Runs the three benchmarks.
pub fn run(args: &AllArgs) -> CliResult<()> {
    crate::output::check_json_path(args.json.as_ref())?;
    crate::output::check_json_path(args.svg.as_ref())?;
    let tiers = tier::resolve(&args.tier)?;
    let batch = usize::try_from(args.batch)?;
    let lat = latency::Params {
        samples: args.samples,
        warmup: args.warmup,
        tiers: tiers.clone(),
    };
    let thr = throughput::Params {
        messages: args.messages,
        tiers,
        batch,
        windows: vec![16, 256],
        kernels: vec![1, 2, 4, 8],
    };
    let que = queue::Params {
        iterations: args.iterations,
        rounds: args.rounds,
        batch,
    };
    let start = std::time::Instant::now();
    let meter = CpuMeter::start();
    super::print_header("bench all");

    let (latency_results, latency_noise) = section("latency", || latency::measure(&lat))?;
    let (throughput_results, throughput_noise) = section("throughput", || throughput::measure(&thr))?;
    let (queue_results, queue_noise) = section("queue", || queue::measure(&que))?;

    reference::print_latency();
    reference::print_throughput();
    reference::print_queue();
    println!();
    let mut all_goals = goals::latency(&latency_results);
    all_goals.extend(goals::throughput(&throughput_results));
    all_goals.extend(goals::queue(&queue_results));
    goals::print(&all_goals);
    let elapsed = start.elapsed();
    println!();
    println!("bench all took {:.1} s", elapsed.as_secs_f64());

    if let Some(path) = &args.svg {
        chart::latency_svg(path, &latency_results)?;
        println!("wrote {}", path.display());
    }
    let config = Config {
        latency: latency::Config::new(&lat),
        throughput: throughput::Config::new(&thr),
        queue: queue::Config::new(&que),
    };
    let results = Results {
        latency: latency_results,
        throughput: throughput_results,
        queue: queue_results,
        elapsed_secs: elapsed.as_secs_f64(),
        noise: SectionNoise {
            latency: latency_noise,
            throughput: throughput_noise,
            queue: queue_noise,
        },
    };
    let reference = json!({
        "label": reference::LABEL,
        "latency": reference::latency(),
        "throughput": reference::throughput(),
        "queue": reference::queue(),
    });
    BenchReport::new("all", config, results, reference)
        .with_goals(all_goals)
        .with_noise(&meter)
        .write(args.json.as_ref())
}
