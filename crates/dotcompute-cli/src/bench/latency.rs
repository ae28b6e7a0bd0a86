//! `dotcompute bench latency`: host → echo kernel → host round trips, one
//! message in flight, on both tokio schedulers, with `KernelHandle`
//! send + receive and with `call`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use dotcompute::{KernelConfig, RingKernelRuntime};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::Serialize;

use super::{echo, reference, BenchReport, Ping, PAYLOAD_BYTES};
use crate::output::fmt_ns;
use crate::progress::{self, UPDATE_EVERY};
use crate::{CliResult, Flavor};

/// Options of `dotcompute bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Measured round trips per case.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub samples: u64,
    /// Unmeasured round trips before the samples, per case.
    #[arg(long, default_value_t = 1000)]
    pub warmup: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// How a round trip is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `handle.send(req)` then `handle.receive()`.
    SendReceive,
    /// `handle.call(req)`: the reply is matched by correlation id.
    Call,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::SendReceive => "handle send+receive",
            Method::Call => "handle call",
        }
    }
}

#[derive(Debug, Serialize)]
struct Config {
    samples: u64,
    warmup: u64,
    payload_bytes: usize,
    in_flight: u32,
    kernel: &'static str,
    timing: &'static str,
}

/// One case's distribution, in nanoseconds.
#[derive(Debug, Serialize)]
pub struct LatencyResult {
    pub runtime: &'static str,
    pub flavor: Flavor,
    pub method: Method,
    pub count: u64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    pub stdev_ns: f64,
}

impl LatencyResult {
    fn new(flavor: Flavor, method: Method, h: &Histogram<u64>) -> Self {
        LatencyResult {
            runtime: flavor.label(),
            flavor,
            method,
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            min_ns: h.min(),
            max_ns: h.max(),
            mean_ns: h.mean(),
            stdev_ns: h.stdev(),
        }
    }
}

/// Runs the benchmark.
pub fn run(args: &LatencyArgs) -> CliResult<()> {
    crate::output::check_json_path(args.json.as_ref())?;
    super::print_header("bench latency");
    println!(
        "host → echo kernel → host round trip, {PAYLOAD_BYTES}-byte payload, one message in flight; {} samples per case after {} warm-up round trips",
        args.samples, args.warmup
    );
    println!("(the request is built before the clock starts; the kernel builds a fresh correlated reply inside the timed path)");
    println!();

    let mut results = Vec::new();
    for flavor in [Flavor::MultiThread, Flavor::CurrentThread] {
        for method in [Method::SendReceive, Method::Call] {
            let bar = progress::bar(
                args.warmup + args.samples,
                &format!("{} · {}", flavor.label(), method.label()),
            );
            let (warmup, samples, b) = (args.warmup, args.samples, bar.clone());
            let hist = flavor.run(async move { measure(method, warmup, samples, b).await })?;
            bar.finish_and_clear();
            results.push(LatencyResult::new(flavor, method, &hist));
        }
    }

    println!(
        "{:<32} {:<20} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "runtime", "method", "count", "p50", "p95", "p99", "max", "mean"
    );
    for r in &results {
        println!(
            "{:<32} {:<20} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
            r.runtime,
            r.method.label(),
            r.count,
            fmt_ns(r.p50_ns as f64),
            fmt_ns(r.p95_ns as f64),
            fmt_ns(r.p99_ns as f64),
            fmt_ns(r.max_ns as f64),
            fmt_ns(r.mean_ns),
        );
    }
    println!();
    reference::print_latency();

    let config = Config {
        samples: args.samples,
        warmup: args.warmup,
        payload_bytes: PAYLOAD_BYTES,
        in_flight: 1,
        kernel: "echo: replies to each Ping with a new correlated Ping (fresh header, same payload)",
        timing: "Instant::now() around send+receive or call; request built before the clock starts; hdrhistogram, 3 significant digits",
    };
    BenchReport::new("latency", config, results, reference::latency()).write(args.json.as_ref())
}

/// One case: a fresh runtime with one echo kernel, `warmup + samples`
/// round trips, the samples recorded in a histogram (ns).
async fn measure(method: Method, warmup: u64, samples: u64, bar: ProgressBar) -> CliResult<Histogram<u64>> {
    let rt = RingKernelRuntime::new();
    let out = async {
        rt.launch_with("echo", KernelConfig::default(), echo).await?;
        rt.activate("echo").await?;
        let handle = rt.handle::<Ping, Ping>("echo")?;
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        for i in 0..warmup + samples {
            let request = Ping::new(i);
            let t0 = Instant::now();
            let reply = match method {
                Method::SendReceive => {
                    handle.send(request).await?;
                    handle.receive().await?
                }
                Method::Call => handle.call(request).await?,
            };
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if reply.seq != i {
                return Err(format!("echo answered {} to request {i}", reply.seq).into());
            }
            if i >= warmup {
                hist.saturating_record(ns.max(1));
            }
            if i % UPDATE_EVERY == 0 {
                bar.set_position(i);
            }
        }
        Ok(hist)
    }
    .await;
    rt.shutdown().await;
    out
}
