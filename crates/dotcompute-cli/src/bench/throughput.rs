//! `dotcompute bench throughput`: messages per second, per tier.
//!
//! Workloads (each on a fresh runtime, with the tier's natural host: tokio
//! tasks for the async tier, plain threads with the blocking handle for the
//! thread and spin tiers):
//! - `one_way`: the host sends N messages to a sink kernel, which answers
//!   only the last one; msg/s = N / time to that answer;
//! - `one_way_batched`: the same with `send_batch` of `--batch` messages, and
//!   `receive_batch` in the kernel;
//! - `echo_pipelined`: a sender sends N requests as fast as backpressure
//!   allows, a receiver takes the N replies (two host tasks or threads);
//! - `echo_pipelined_batched`: the same with `send_batch` / `receive_batch`
//!   on both sides;
//! - `echo_window`: one host task or thread keeps W requests outstanding;
//! - `scaling`: K echo kernels, each with its own pipelined sender and
//!   receiver, N messages in all; aggregate msg/s.
//!
//! The async tier also runs `echo_pipelined` on a current-thread runtime.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use dotcompute::{KernelConfig, KernelSpec};
use indicatif::ProgressBar;
use serde::Serialize;

use super::host::{self, Host, HostKind};
use super::kernels::{self, Role, FLUSH};
use super::tier::{self, Tier, TierArg};
use super::{goals, reference, BenchReport, Ping, PAYLOAD_BYTES};
use crate::machine::CpuMeter;
use crate::output::{fmt_duration, fmt_pct, fmt_rate};
use crate::progress::{self, UPDATE_EVERY};
use crate::CliResult;

/// Largest window: requests plus replies in flight must fit in the echo
/// kernel's input and output queues (4096 each) or the single host deadlocks.
const MAX_WINDOW: u64 = 4096;

/// Options of `dotcompute bench throughput`.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// Messages per workload.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Tiers to measure (comma-separated): async, thread, spin, process, gpu, all.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![TierArg::All])]
    pub tier: Vec<TierArg>,
    /// Messages per batch in the batched workloads (host and kernel side).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(2..=4096))]
    pub batch: u64,
    /// Outstanding requests for the windowed echo (comma-separated, 1..=4096).
    #[arg(long, value_delimiter = ',', default_value = "16,256", value_parser = clap::value_parser!(u64).range(1..=MAX_WINDOW))]
    pub windows: Vec<u64>,
    /// Kernel counts for the scaling workload (comma-separated, 1..=64).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub kernels: Vec<u64>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// What one throughput run measures.
#[derive(Debug, Clone)]
pub struct Params {
    pub messages: u64,
    pub tiers: Vec<Tier>,
    pub batch: usize,
    pub windows: Vec<u64>,
    pub kernels: Vec<u64>,
}

#[derive(Debug, Serialize)]
pub struct Config {
    messages: u64,
    tiers: Vec<Tier>,
    batch: usize,
    windows: Vec<u64>,
    kernels: Vec<u64>,
    payload_bytes: usize,
    message_bytes: usize,
    queue_size: usize,
    msg_per_sec: &'static str,
    kernel: &'static str,
}

impl Config {
    pub fn new(p: &Params) -> Self {
        Config {
            messages: p.messages,
            tiers: p.tiers.clone(),
            batch: p.batch,
            windows: p.windows.clone(),
            kernels: p.kernels.clone(),
            payload_bytes: PAYLOAD_BYTES,
            message_bytes: std::mem::size_of::<Ping>(),
            queue_size: KernelConfig::default().input_queue_size,
            msg_per_sec: "one_way*: messages host → kernel per second; echo* and scaling: round trips per second (a request and its reply)",
            kernel: "echo (fresh correlated reply per request) or sink (answers only the flush marker); batched workloads use receive_batch/send_batch in the kernel",
        }
    }
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    OneWay,
    OneWayBatched,
    EchoPipelined,
    EchoPipelinedBatched,
    EchoWindow,
    Scaling,
    /// GPU tier: pipelined echo through a bare `GpuRing` (no runtime).
    GpuRingBatched,
    /// GPU baseline: one kernel launch (copy in, launch, copy out,
    /// synchronize) per batch of messages.
    LaunchPerBatch,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::OneWay => "one_way",
            Workload::OneWayBatched => "one_way_batched",
            Workload::EchoPipelined => "echo_pipelined",
            Workload::EchoPipelinedBatched => "echo_pipelined_batched",
            Workload::EchoWindow => "echo_window",
            Workload::Scaling => "scaling",
            Workload::GpuRingBatched => "gpu_ring_pipelined",
            Workload::LaunchPerBatch => "baseline_launch_per_batch",
        }
    }

    pub fn is_batched(self) -> bool {
        matches!(
            self,
            Workload::OneWayBatched
                | Workload::EchoPipelinedBatched
                | Workload::GpuRingBatched
                | Workload::LaunchPerBatch
        )
    }
}

/// One workload's figure.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputResult {
    pub workload: Workload,
    pub tier: Tier,
    pub host: HostKind,
    pub host_label: &'static str,
    /// Kernels in use.
    pub kernels: u64,
    /// Outstanding requests (windowed echo only).
    pub window: Option<u64>,
    /// Messages per batch (batched workloads only).
    pub batch: Option<usize>,
    /// Messages (one-way) or round trips (echo) completed.
    pub messages: u64,
    pub elapsed_secs: f64,
    pub msg_per_sec: f64,
    /// CPU time other processes used during this case, % of the machine
    /// (noise; `None` where it cannot be read).
    pub other_cpu_pct: Option<f64>,
}

impl ThroughputResult {
    pub fn name(&self) -> String {
        let mut s = format!(
            "{} · {} · {}",
            self.tier.name(),
            self.host.short(),
            self.workload.name()
        );
        if let Some(b) = self.batch {
            s += &format!(" (batch {b})");
        }
        if let Some(w) = self.window {
            s += &format!(" (window {w})");
        }
        if self.workload == Workload::Scaling {
            s += &format!(" ({} kernels)", self.kernels);
        }
        s
    }
}

/// Runs the benchmark.
pub fn run(args: &ThroughputArgs) -> CliResult<()> {
    crate::output::check_json_path(args.json.as_ref())?;
    let params = Params {
        messages: args.messages,
        tiers: tier::resolve(&args.tier)?,
        batch: usize::try_from(args.batch)?,
        windows: args.windows.clone(),
        kernels: args.kernels.clone(),
    };
    let meter = crate::machine::CpuMeter::start();
    super::print_header("bench throughput");
    let results = measure(&params)?;
    println!();
    reference::print_throughput();
    println!("(the Python streaming workload sends all N before receiving any; ours overlap sending and receiving)");
    let goals = goals::throughput(&results);
    println!();
    goals::print(&goals);
    BenchReport::new("throughput", Config::new(&params), results, reference::throughput())
        .with_goals(goals)
        .with_noise(&meter)
        .write(args.json.as_ref())
}

/// Measures every workload of every tier in `params` and prints the table.
pub fn measure(p: &Params) -> CliResult<Vec<ThroughputResult>> {
    let n = p.messages;
    println!(
        "{PAYLOAD_BYTES}-byte payload ({}-byte message), queues of {} messages, Block backpressure; {n} messages per workload; batch {}",
        std::mem::size_of::<Ping>(),
        KernelConfig::default().input_queue_size,
        p.batch
    );
    println!("msg/s: one_way* counts messages host → kernel; echo* and scaling count round trips (request + reply)");
    println!("others: CPU time other processes used during the case, % of the machine (noise)");
    println!();
    print_table_header();
    let mut results = Vec::new();
    let mut record = |r: ThroughputResult| {
        print_row(&r);
        results.push(r);
    };
    for &tier in &p.tiers {
        if tier == Tier::Gpu {
            super::gpu::throughput(n, p.batch, &mut record)?;
            continue;
        }
        if tier == Tier::Wgpu {
            super::wgpu::throughput(n, p.batch, &mut record)?;
            continue;
        }
        let host = natural_host(tier);
        let b = p.batch;
        record(one_case(
            tier,
            host,
            Workload::OneWay,
            1,
            None,
            None,
            n,
            move |hosts, bar| one_way(first(hosts), n, 1, bar),
        )?);
        record(one_case(
            tier,
            host,
            Workload::OneWayBatched,
            1,
            None,
            Some(b),
            n,
            move |hosts, bar| one_way(first(hosts), n, b, bar),
        )?);
        let mut hosts = vec![host];
        if tier == Tier::Async {
            hosts.push(HostKind::CurrentThread);
        }
        for h in hosts {
            record(one_case(
                tier,
                h,
                Workload::EchoPipelined,
                1,
                None,
                None,
                n,
                move |hosts, bar| pipelined(first(hosts), n, 1, bar),
            )?);
        }
        record(one_case(
            tier,
            host,
            Workload::EchoPipelinedBatched,
            1,
            None,
            Some(b),
            n,
            move |hosts, bar| pipelined(first(hosts), n, b, bar),
        )?);
        for &w in &p.windows {
            record(one_case(
                tier,
                host,
                Workload::EchoWindow,
                1,
                Some(w),
                None,
                n,
                move |hosts, bar| windowed(first(hosts), n, w, bar),
            )?);
        }
        for &k in &p.kernels {
            record(one_case(
                tier,
                host,
                Workload::Scaling,
                k,
                None,
                None,
                n,
                move |hosts, bar| scaling(hosts, n, bar),
            )?);
        }
    }
    Ok(results)
}

/// Tokio tasks for the async tier, plain threads for the others.
fn natural_host(tier: Tier) -> HostKind {
    match tier {
        Tier::Async => HostKind::MultiThread,
        Tier::Thread | Tier::Spin | Tier::Process | Tier::Gpu | Tier::Wgpu => HostKind::PlainThread,
    }
}

fn first(hosts: Vec<Host>) -> Host {
    hosts.into_iter().next().expect("one kernel per case")
}

/// Launches the kernels of one case, runs `work`, and makes its result.
#[allow(clippy::too_many_arguments)]
fn one_case<F, Fut>(
    tier: Tier,
    host: HostKind,
    workload: Workload,
    kernels: u64,
    window: Option<u64>,
    batch: Option<usize>,
    n: u64,
    work: F,
) -> CliResult<ThroughputResult>
where
    F: FnOnce(Vec<Host>, ProgressBar) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = CliResult<Duration>> + Send + 'static,
{
    let role = match workload {
        Workload::OneWay | Workload::OneWayBatched => Role::Sink,
        _ => Role::Echo,
    };
    let specs = (0..kernels)
        .map(|k| kernels::spec(&format!("bench-{k}"), tier, role, batch.unwrap_or(1)))
        .collect::<CliResult<Vec<KernelSpec>>>()?;
    let mut result = ThroughputResult {
        workload,
        tier,
        host,
        host_label: host.label(),
        kernels,
        window,
        batch,
        messages: n,
        elapsed_secs: 0.0,
        msg_per_sec: 0.0,
        other_cpu_pct: None,
    };
    let bar = progress::bar(n, &result.name());
    let b = bar.clone();
    let meter = CpuMeter::start();
    let elapsed = host::with_kernels(host, specs, move |hosts| work(hosts, b));
    result.other_cpu_pct = meter.finish().map(|n| n.other_cpu_pct);
    bar.finish_and_clear();
    let elapsed = elapsed?;
    result.elapsed_secs = elapsed.as_secs_f64();
    result.msg_per_sec = n as f64 / elapsed.as_secs_f64().max(1e-9);
    Ok(result)
}

fn print_table_header() {
    println!(
        "{:<7} {:<9} {:<23} {:>7} {:>6} {:>5} {:>9} {:>9} {:>9} {:>6}",
        "tier", "host", "workload", "kernels", "window", "batch", "messages", "time", "msg/s", "others"
    );
}

fn print_row(r: &ThroughputResult) {
    let dash = || "-".to_string();
    println!(
        "{:<7} {:<9} {:<23} {:>7} {:>6} {:>5} {:>9} {:>9} {:>9} {:>6}",
        r.tier.name(),
        r.host.short(),
        r.workload.name(),
        r.kernels,
        r.window.map_or_else(dash, |w| w.to_string()),
        r.batch.map_or_else(dash, |b| b.to_string()),
        r.messages,
        fmt_duration(Duration::from_secs_f64(r.elapsed_secs)),
        fmt_rate(r.msg_per_sec),
        fmt_pct(r.other_cpu_pct),
    );
}

fn progress_every(bar: &ProgressBar, done: u64, step: u64) {
    if done % UPDATE_EVERY < step {
        bar.set_position(done);
    }
}

/// Messages `from..to` of a stream of `n`; the last one carries [`FLUSH`].
fn make_batch(from: u64, to: u64, n: u64) -> Vec<Ping> {
    Ping::batch((from..to).map(|s| if s + 1 == n { s | FLUSH } else { s }))
}

/// Sends `n` messages to a sink (one by one, or in batches), then waits for
/// the answer to the last one.
async fn one_way(host: Host, n: u64, batch: usize, bar: ProgressBar) -> CliResult<Duration> {
    let start = Instant::now();
    send_stream(&host, n, batch, &bar, true).await?;
    let ack = host.receive().await?;
    if ack.seq != (n - 1) | FLUSH {
        return Err(format!("the sink answered {:#x}, not the flush marker", ack.seq).into());
    }
    Ok(start.elapsed())
}

/// Sends requests `0..n`, one by one or in batches; with `flush` the last
/// one carries the flush marker.
async fn send_stream(host: &Host, n: u64, batch: usize, bar: &ProgressBar, flush: bool) -> CliResult<()> {
    if batch <= 1 {
        for i in 0..n {
            let seq = if flush && i + 1 == n { i | FLUSH } else { i };
            host.send(Ping::new(seq)).await?;
            if flush {
                progress_every(bar, i, 1);
            }
        }
    } else {
        let mut i = 0;
        while i < n {
            let end = (i + batch as u64).min(n);
            let msgs = if flush {
                make_batch(i, end, n)
            } else {
                Ping::batch(i..end)
            };
            host.send_batch(msgs).await?;
            if flush {
                progress_every(bar, end, batch as u64);
            }
            i = end;
        }
    }
    Ok(())
}

/// A sender beside this receiver: `n` round trips through one echo kernel.
async fn pipelined(host: Host, n: u64, batch: usize, bar: ProgressBar) -> CliResult<Duration> {
    let start = Instant::now();
    stream_through(host, n, batch, bar).await?;
    Ok(start.elapsed())
}

async fn stream_through(host: Host, n: u64, batch: usize, bar: ProgressBar) -> CliResult<()> {
    let tx = host.clone();
    let b = bar.clone();
    let sender = host.spawn(
        "bench-sender",
        async move { send_stream(&tx, n, batch, &b, false).await },
    )?;
    let mut expected = 0u64;
    let mut reported = 0u64;
    let mut buf = Vec::with_capacity(batch);
    while expected < n {
        buf.clear();
        if batch <= 1 {
            buf.push(host.receive().await?);
        } else {
            host.receive_batch(batch, &mut buf).await?;
        }
        for reply in &buf {
            if reply.seq != expected {
                return Err(format!("echo answered {} where {expected} was expected", reply.seq).into());
            }
            expected += 1;
        }
        if expected - reported >= UPDATE_EVERY {
            bar.inc(expected - reported);
            reported = expected;
        }
    }
    bar.inc(expected - reported);
    sender.join().await
}

/// One host keeps `window` requests outstanding.
async fn windowed(host: Host, n: u64, window: u64, bar: ProgressBar) -> CliResult<Duration> {
    let start = Instant::now();
    let mut sent = 0;
    while sent < window.min(n) {
        host.send(Ping::new(sent)).await?;
        sent += 1;
    }
    for i in 0..n {
        let reply = host.receive().await?;
        if reply.seq != i {
            return Err(format!("echo answered {} where {i} was expected", reply.seq).into());
        }
        if sent < n {
            host.send(Ping::new(sent)).await?;
            sent += 1;
        }
        progress_every(&bar, i, 1);
    }
    Ok(start.elapsed())
}

/// Every kernel with its own pipelined sender and receiver; `n` in all.
async fn scaling(hosts: Vec<Host>, n: u64, bar: ProgressBar) -> CliResult<Duration> {
    let kernels = hosts.len() as u64;
    let start = Instant::now();
    let mut receivers = Vec::new();
    for (k, host) in hosts.into_iter().enumerate() {
        // Spread n over the kernels; the first ones take the remainder.
        let share = n / kernels + u64::from((k as u64) < n % kernels);
        let h = host.clone();
        let b = bar.clone();
        receivers.push(host.spawn(&format!("bench-receiver-{k}"), stream_through(h, share, 1, b))?);
    }
    for r in receivers {
        r.join().await?;
    }
    Ok(start.elapsed())
}
