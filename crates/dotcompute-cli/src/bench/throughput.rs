//! `dotcompute bench throughput`: messages per second through echo kernels.
//!
//! - pipelined: one task sends N requests as fast as backpressure allows,
//!   another receives the N replies;
//! - windowed echo: one task keeps W requests outstanding (sends the next
//!   one for each reply received);
//! - scaling: K echo kernels, each with its own sender and receiver task,
//!   N messages in all; aggregate msg/s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use dotcompute::{KernelConfig, KernelHandle, RingKernelRuntime};
use indicatif::ProgressBar;
use serde::Serialize;

use super::{echo, reference, BenchReport, Ping, PAYLOAD_BYTES};
use crate::output::{fmt_duration, fmt_rate};
use crate::progress::{self, UPDATE_EVERY};
use crate::{BoxError, CliResult, Flavor};

/// Largest window: requests plus replies in flight must fit in the echo
/// kernel's input and output queues (4096 each) or the single task deadlocks.
const MAX_WINDOW: u64 = 4096;

/// Options of `dotcompute bench throughput`.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// Messages per workload.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Outstanding requests for the windowed echo (comma-separated, 1..=4096).
    #[arg(long, value_delimiter = ',', default_values_t = vec![16u64, 256], value_parser = clap::value_parser!(u64).range(1..=MAX_WINDOW))]
    pub windows: Vec<u64>,
    /// Kernel counts for the scaling workload (comma-separated, 1..=64).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1u64, 2, 4, 8], value_parser = clap::value_parser!(u64).range(1..=64))]
    pub kernels: Vec<u64>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Config {
    messages: u64,
    windows: Vec<u64>,
    kernels: Vec<u64>,
    payload_bytes: usize,
    queue_size: usize,
    kernel: &'static str,
}

/// One workload's figure.
#[derive(Debug, Serialize)]
pub struct ThroughputResult {
    /// `pipelined`, `echo_window` or `scaling`.
    pub workload: &'static str,
    pub runtime: &'static str,
    pub flavor: Flavor,
    /// Echo kernels in use.
    pub kernels: u64,
    /// Outstanding requests (windowed echo only).
    pub window: Option<u64>,
    /// Round trips completed.
    pub messages: u64,
    pub elapsed_secs: f64,
    /// Round trips per second (each one is a request and a reply).
    pub msg_per_sec: f64,
}

/// Runs the benchmark.
pub fn run(args: &ThroughputArgs) -> CliResult<()> {
    crate::output::check_json_path(args.json.as_ref())?;
    super::print_header("bench throughput");
    let n = args.messages;
    println!(
        "echo kernels, {PAYLOAD_BYTES}-byte payload, queues of {} messages, Block backpressure; {n} messages per workload",
        KernelConfig::default().input_queue_size
    );
    println!("msg/s counts round trips: each message is a request host → kernel and its reply kernel → host");
    println!();

    let mut results = Vec::new();
    let mut record = |r: ThroughputResult| {
        print_row(&r);
        results.push(r);
    };
    print_table_header();

    for flavor in [Flavor::MultiThread, Flavor::CurrentThread] {
        let bar = progress::bar(n, &format!("pipelined · {}", flavor.label()));
        let b = bar.clone();
        let elapsed = flavor.run(async move { pipelined(n, b).await })?;
        bar.finish_and_clear();
        record(result("pipelined", flavor, 1, None, n, elapsed));
    }

    let flavor = Flavor::MultiThread;
    for &window in &args.windows {
        let bar = progress::bar(n, &format!("echo window {window} · {}", flavor.label()));
        let b = bar.clone();
        let elapsed = flavor.run(async move { windowed(n, window, b).await })?;
        bar.finish_and_clear();
        record(result("echo_window", flavor, 1, Some(window), n, elapsed));
    }

    for &k in &args.kernels {
        let bar = progress::bar(n, &format!("{k} kernels · {}", flavor.label()));
        let b = bar.clone();
        let elapsed = flavor.run(async move { scaling(n, k, b).await })?;
        bar.finish_and_clear();
        record(result("scaling", flavor, k, None, n, elapsed));
    }

    println!();
    reference::print_throughput();
    println!("(the Python streaming workload sends all N before receiving any; ours overlap sending and receiving)");

    let config = Config {
        messages: n,
        windows: args.windows.clone(),
        kernels: args.kernels.clone(),
        payload_bytes: PAYLOAD_BYTES,
        queue_size: KernelConfig::default().input_queue_size,
        kernel: "echo: replies to each Ping with a new correlated Ping (fresh header, same payload)",
    };
    BenchReport::new("throughput", config, results, reference::throughput()).write(args.json.as_ref())
}

fn result(
    workload: &'static str,
    flavor: Flavor,
    kernels: u64,
    window: Option<u64>,
    messages: u64,
    elapsed: Duration,
) -> ThroughputResult {
    ThroughputResult {
        workload,
        runtime: flavor.label(),
        flavor,
        kernels,
        window,
        messages,
        elapsed_secs: elapsed.as_secs_f64(),
        msg_per_sec: messages as f64 / elapsed.as_secs_f64().max(1e-9),
    }
}

fn print_table_header() {
    println!(
        "{:<12} {:<32} {:>7} {:>7} {:>10} {:>10} {:>10}",
        "workload", "runtime", "kernels", "window", "messages", "time", "msg/s"
    );
}

fn print_row(r: &ThroughputResult) {
    println!(
        "{:<12} {:<32} {:>7} {:>7} {:>10} {:>10} {:>10}",
        r.workload,
        r.runtime,
        r.kernels,
        r.window.map_or_else(|| "-".to_string(), |w| w.to_string()),
        r.messages,
        fmt_duration(Duration::from_secs_f64(r.elapsed_secs)),
        fmt_rate(r.msg_per_sec),
    );
}

/// Runs `work` with `count` active echo kernels in a fresh runtime, then
/// shuts the runtime down.
async fn with_echo_kernels<T, F, Fut>(count: u64, work: F) -> CliResult<T>
where
    F: FnOnce(Vec<KernelHandle<Ping, Ping>>) -> Fut,
    Fut: std::future::Future<Output = CliResult<T>>,
{
    let rt = RingKernelRuntime::new();
    let out = async {
        let mut handles = Vec::new();
        for k in 0..count {
            let id = format!("echo-{k}");
            rt.launch_with(&id, KernelConfig::default(), echo).await?;
            rt.activate(&id).await?;
            handles.push(rt.handle::<Ping, Ping>(&id)?);
        }
        work(handles).await
    }
    .await;
    rt.shutdown().await;
    out
}

/// Sends `n` messages on a task of its own; receives them here.
async fn stream_through(handle: KernelHandle<Ping, Ping>, n: u64, bar: ProgressBar) -> CliResult<()> {
    let tx = handle.clone();
    let sender = tokio::spawn(async move {
        for i in 0..n {
            tx.send(Ping::new(i)).await?;
        }
        Ok::<(), dotcompute::Error>(())
    });
    for i in 0..n {
        let reply = handle.receive().await?;
        if reply.seq != i {
            return Err(format!("echo answered {} where {i} was expected", reply.seq).into());
        }
        if (i + 1) % UPDATE_EVERY == 0 {
            bar.inc(UPDATE_EVERY);
        }
    }
    bar.inc(n % UPDATE_EVERY);
    sender
        .await
        .map_err(|e| -> BoxError { format!("sender task failed: {e}").into() })??;
    Ok(())
}

async fn pipelined(n: u64, bar: ProgressBar) -> CliResult<Duration> {
    with_echo_kernels(1, move |handles| async move {
        let handle = handles.into_iter().next().ok_or("no kernel")?;
        let start = Instant::now();
        stream_through(handle, n, bar).await?;
        Ok(start.elapsed())
    })
    .await
}

async fn windowed(n: u64, window: u64, bar: ProgressBar) -> CliResult<Duration> {
    with_echo_kernels(1, move |handles| async move {
        let handle = handles.into_iter().next().ok_or("no kernel")?;
        let start = Instant::now();
        let mut sent = 0;
        while sent < window.min(n) {
            handle.send(Ping::new(sent)).await?;
            sent += 1;
        }
        for i in 0..n {
            let reply = handle.receive().await?;
            if reply.seq != i {
                return Err(format!("echo answered {} where {i} was expected", reply.seq).into());
            }
            if sent < n {
                handle.send(Ping::new(sent)).await?;
                sent += 1;
            }
            if i % UPDATE_EVERY == 0 {
                bar.set_position(i);
            }
        }
        Ok(start.elapsed())
    })
    .await
}

async fn scaling(n: u64, kernels: u64, bar: ProgressBar) -> CliResult<Duration> {
    with_echo_kernels(kernels, move |handles| async move {
        let start = Instant::now();
        let tasks: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(k, handle)| {
                // Spread n over the kernels; the first ones take the remainder.
                let share = n / kernels + u64::from((k as u64) < n % kernels);
                tokio::spawn(stream_through(handle, share, bar.clone()))
            })
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| -> BoxError { format!("kernel task failed: {e}").into() })??;
        }
        Ok(start.elapsed())
    })
    .await
}
