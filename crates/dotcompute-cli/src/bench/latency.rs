//! `dotcompute bench latency`: host → echo kernel → host round trips, one
//! message in flight, per tier.
//!
//! - async tier: the echo kernel is a tokio task; the host is a task on a
//!   multi-thread or a current-thread runtime, with `send` + `receive` and
//!   with `call`;
//! - thread and spin tiers: the echo kernel runs on its own OS thread; the
//!   host is a plain thread using `send_blocking` + `receive_blocking` (the
//!   natural host), and, labelled as such, a tokio task using the async
//!   `send` + `receive` against the same kind of kernel.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::Serialize;

use super::host::{self, Host, HostKind};
use super::kernels::{self, Role};
use super::tier::{self, Tier, TierArg};
use super::{chart, goals, reference, BenchReport, Ping, PAYLOAD_BYTES};
use crate::machine::{CpuMeter, Noise};
use crate::output::{fmt_ns, fmt_pct};
use crate::progress::{self, UPDATE_EVERY};
use crate::CliResult;

/// Options of `dotcompute bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Measured round trips per case.
    #[arg(long, default_value_t = 100_000, value_parser = crate::limits::parse_samples)]
    pub samples: u64,
    /// Unmeasured round trips before the samples, per case.
    #[arg(long, default_value_t = 1000, value_parser = crate::limits::parse_warmup)]
    pub warmup: u64,
    /// Tiers to measure (comma-separated): async, thread, spin, process, gpu, all.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![TierArg::All])]
    pub tier: Vec<TierArg>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the latency distributions as an SVG chart in this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// What one latency run measures.
#[derive(Debug, Clone)]
pub struct Params {
    pub samples: u64,
    pub warmup: u64,
    pub tiers: Vec<Tier>,
}

/// How a round trip is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `send` then `receive` (their blocking forms on a plain thread).
    SendReceive,
    /// `handle.call(req)`: the reply is matched by correlation id.
    Call,
    /// Baseline without the runtime: two bare `SpscRing`s between the host
    /// thread and an echo thread, both busy-polling. Shows what the runtime
    /// adds on top of the ring itself.
    RawRing,
    /// GPU tier without the runtime: `GpuRing::send` + `receive` against
    /// the persistent kernel.
    GpuRing,
    /// GPU baseline without a persistent kernel: per message, copy in,
    /// launch the handler as a kernel, copy out, synchronize.
    LaunchPerMessage,
    /// GPU baseline: the same three steps captured once in a CUDA graph and
    /// replayed per message.
    GraphReplay,
}

impl Method {
    fn label(self, host: HostKind) -> &'static str {
        match (self, host) {
            (Method::SendReceive, HostKind::PlainThread) => "send_blocking+receive_blocking",
            (Method::SendReceive, _) => "send+receive",
            (Method::Call, _) => "call",
            (Method::RawRing, _) => "raw SpscRing (no runtime)",
            (Method::GpuRing, _) => "GpuRing send+receive (no runtime)",
            (Method::LaunchPerMessage, _) => "baseline: launch+sync per msg",
            (Method::GraphReplay, _) => "baseline: CUDA graph per msg",
        }
    }
}

/// One measured combination.
#[derive(Debug, Clone, Copy)]
struct Case {
    tier: Tier,
    host: HostKind,
    method: Method,
}

/// The cases of a tier: its natural host first.
fn cases(tier: Tier) -> Vec<Case> {
    let case = |host, method| Case { tier, host, method };
    match tier {
        Tier::Async => vec![
            case(HostKind::MultiThread, Method::SendReceive),
            case(HostKind::MultiThread, Method::Call),
            case(HostKind::CurrentThread, Method::SendReceive),
            case(HostKind::CurrentThread, Method::Call),
        ],
        Tier::Spin => vec![
            case(HostKind::PlainThread, Method::SendReceive),
            case(HostKind::MultiThread, Method::SendReceive),
            case(HostKind::MultiThread, Method::Call),
            case(HostKind::PlainThread, Method::RawRing),
        ],
        Tier::Gpu => vec![
            case(HostKind::PlainThread, Method::SendReceive),
            case(HostKind::PlainThread, Method::GpuRing),
            case(HostKind::PlainThread, Method::LaunchPerMessage),
            case(HostKind::PlainThread, Method::GraphReplay),
        ],
        Tier::Wgpu => vec![
            case(HostKind::PlainThread, Method::SendReceive),
            case(HostKind::PlainThread, Method::Call),
            case(HostKind::PlainThread, Method::LaunchPerMessage),
        ],
        Tier::Thread | Tier::Process => vec![
            case(HostKind::PlainThread, Method::SendReceive),
            case(HostKind::MultiThread, Method::SendReceive),
            case(HostKind::MultiThread, Method::Call),
        ],
    }
}

#[derive(Debug, Serialize)]
pub struct Config {
    samples: u64,
    warmup: u64,
    tiers: Vec<Tier>,
    payload_bytes: usize,
    message_bytes: usize,
    in_flight: u32,
    kernel: &'static str,
    timing: &'static str,
}

impl Config {
    pub fn new(p: &Params) -> Self {
        Config {
            samples: p.samples,
            warmup: p.warmup,
            tiers: p.tiers.clone(),
            payload_bytes: PAYLOAD_BYTES,
            message_bytes: std::mem::size_of::<Ping>(),
            in_flight: 1,
            kernel: "echo: replies to each Ping with a new correlated Ping (fresh header, same payload); async handler for the async tier, blocking handler in the tier's mode otherwise",
            timing: "Instant::now() around send+receive or call; request built before the clock starts; hdrhistogram, 3 significant digits",
        }
    }
}

/// One point of a latency-by-percentile curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// `-log10(1 - q)`: 0 is the minimum, 2 is p99, 3 is p99.9.
    pub nines: f64,
    pub percentile: f64,
    pub ns: u64,
}

/// One case's distribution, in nanoseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    pub tier: Tier,
    pub host: HostKind,
    pub host_label: &'static str,
    pub method: Method,
    pub method_label: &'static str,
    pub count: u64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub p9999_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    pub stdev_ns: f64,
    /// Samples above 1 ms (stalls).
    pub over_1ms: u64,
    /// CPU time other processes used during this case, % of the machine
    /// (noise; `None` where it cannot be read).
    pub other_cpu_pct: Option<f64>,
    /// Latency by percentile, for charts.
    pub curve: Vec<CurvePoint>,
}

impl LatencyResult {
    fn new(case: Case, h: &Histogram<u64>, noise: Option<Noise>) -> Self {
        LatencyResult {
            tier: case.tier,
            host: case.host,
            host_label: case.host.label(),
            method: case.method,
            method_label: case.method.label(case.host),
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            p9999_ns: h.value_at_quantile(0.9999),
            min_ns: h.min(),
            max_ns: h.max(),
            mean_ns: h.mean(),
            stdev_ns: h.stdev(),
            other_cpu_pct: noise.map(|n| n.other_cpu_pct),
            over_1ms: if h.max() > 1_000_000 {
                h.count_between(1_000_001, h.max())
            } else {
                0
            },
            curve: curve(h),
        }
    }

    /// `spin · thread · send_blocking+receive_blocking`.
    pub fn name(&self) -> String {
        format!("{} · {} · {}", self.tier.name(), self.host.short(), self.method_label)
    }
}

/// Points every 1/8 of a nine up to what the sample count resolves, then the maximum.
fn curve(h: &Histogram<u64>) -> Vec<CurvePoint> {
    let count = h.len().max(1) as f64;
    let top = count.log10();
    let mut points = Vec::new();
    let mut step = 0u32;
    loop {
        let nines = f64::from(step) / 8.0;
        if nines >= top {
            break;
        }
        let q = 1.0 - 10f64.powf(-nines);
        points.push(CurvePoint {
            nines,
            percentile: q * 100.0,
            ns: h.value_at_quantile(q),
        });
        step += 1;
    }
    points.push(CurvePoint {
        nines: top.max(0.1),
        percentile: 100.0,
        ns: h.max(),
    });
    points
}

/// Runs the benchmark.
pub fn run(args: &LatencyArgs) -> CliResult<()> {
    crate::output::check_json_path(args.json.as_ref())?;
    crate::output::check_json_path(args.svg.as_ref())?;
    let params = Params {
        samples: args.samples,
        warmup: args.warmup,
        tiers: tier::resolve(&args.tier)?,
    };
    let meter = crate::machine::CpuMeter::start();
    super::print_header("bench latency");
    let results = measure(&params)?;
    println!();
    reference::print_latency();
    let goals = goals::latency(&results);
    println!();
    goals::print(&goals);
    if let Some(path) = &args.svg {
        chart::latency_svg(path, &results)?;
        println!("wrote {}", path.display());
    }
    BenchReport::new("latency", Config::new(&params), results, reference::latency())
        .with_goals(goals)
        .with_noise(&meter)
        .write(args.json.as_ref())
}

/// Measures every case of `params.tiers` and prints the table.
pub fn measure(params: &Params) -> CliResult<Vec<LatencyResult>> {
    println!(
        "host → echo kernel → host round trip, {PAYLOAD_BYTES}-byte payload ({}-byte message), one message in flight; {} samples per case after {} warm-up round trips",
        std::mem::size_of::<Ping>(),
        params.samples,
        params.warmup
    );
    println!("(the request is built before the clock starts; the kernel builds a fresh correlated reply inside the timed path)");
    println!();
    let mut results = Vec::new();
    for &tier in &params.tiers {
        for case in cases(tier) {
            let meter = CpuMeter::start();
            let hist = measure_case(case, params.warmup, params.samples)?;
            results.push(LatencyResult::new(case, &hist, meter.finish()));
        }
    }
    print_table(&results);
    if params.tiers.contains(&Tier::Gpu) {
        let mut t = super::gpu::terminate_times(20)?;
        t.sort();
        if let (Some(mid), Some(max)) = (t.get(t.len() / 2), t.last()) {
            println!(
                "gpu terminate (active idle kernel, {} runs): p50 {}, max {} (goal: ≤ 1 ms)",
                t.len(),
                fmt_ns(mid.as_nanos() as f64),
                fmt_ns(max.as_nanos() as f64)
            );
        }
    }
    Ok(results)
}

pub fn print_table(results: &[LatencyResult]) {
    println!(
        "{:<7} {:<9} {:<31} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6}",
        "tier", "host", "method", "count", "p50", "p95", "p99", "p99.9", "max", "mean", ">1ms", "others"
    );
    for r in results {
        println!(
            "{:<7} {:<9} {:<31} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6}",
            r.tier.name(),
            r.host.short(),
            r.method_label,
            r.count,
            fmt_ns(r.p50_ns as f64),
            fmt_ns(r.p95_ns as f64),
            fmt_ns(r.p99_ns as f64),
            fmt_ns(r.p999_ns as f64),
            fmt_ns(r.max_ns as f64),
            fmt_ns(r.mean_ns),
            r.over_1ms,
            fmt_pct(r.other_cpu_pct),
        );
    }
    println!(
        "hosts: tokio mt = {}; tokio ct = {}; thread = {}",
        HostKind::MultiThread.label(),
        HostKind::CurrentThread.label(),
        HostKind::PlainThread.label()
    );
}

/// One case: a fresh runtime with one echo kernel of the case's tier,
/// `warmup + samples` round trips, the samples in a histogram (ns).
fn measure_case(case: Case, warmup: u64, samples: u64) -> CliResult<Histogram<u64>> {
    let label = format!(
        "{} · {} · {}",
        case.tier.name(),
        case.host.short(),
        case.method.label(case.host)
    );
    let bar = progress::bar(warmup + samples, &label);
    if case.method == Method::RawRing {
        let hist = raw_ring_round_trips(warmup, samples, &bar);
        bar.finish_and_clear();
        return hist;
    }
    if case.tier == Tier::Wgpu {
        let hist = super::wgpu::latency(case.method, warmup, samples, &bar);
        bar.finish_and_clear();
        return hist;
    }
    if case.tier == Tier::Gpu {
        let hist = super::gpu::latency(case.method, warmup, samples, &bar);
        bar.finish_and_clear();
        return hist;
    }
    let spec = kernels::spec("echo", case.tier, Role::Echo, 1)?;
    let b = bar.clone();
    let method = case.method;
    let hist = host::with_kernels(case.host, vec![spec], move |hosts| async move {
        let host = hosts.into_iter().next().ok_or("no kernel")?;
        round_trips(host, method, warmup, samples, b).await
    });
    bar.finish_and_clear();
    hist
}

async fn round_trips(
    host: Host,
    method: Method,
    warmup: u64,
    samples: u64,
    bar: ProgressBar,
) -> CliResult<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for i in 0..warmup + samples {
        let request = Ping::new(i);
        let t0 = Instant::now();
        let reply = match method {
            Method::SendReceive => {
                host.send(request).await?;
                host.receive().await?
            }
            Method::Call => host.call(request).await?,
            Method::RawRing | Method::GpuRing | Method::LaunchPerMessage | Method::GraphReplay => {
                return Err(format!("{method:?} is measured without a Ping kernel").into())
            }
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

/// Busy-polls like a spin kernel: spin, then yield (never parks).
#[inline]
fn snooze(spins: &mut u32) {
    if *spins < 2_000 {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The baseline: round trips through two bare `SpscRing<Ping>`s to an echo
/// thread that builds the same fresh correlated reply as the echo kernel.
fn raw_ring_round_trips(warmup: u64, samples: u64, bar: &ProgressBar) -> CliResult<Histogram<u64>> {
    use dotcompute::ring::spsc::SpscRing;
    const STOP: u64 = u64::MAX;
    let (mut req_tx, mut req_rx) = SpscRing::<Ping>::new(1024)?;
    let (mut rep_tx, mut rep_rx) = SpscRing::<Ping>::new(1024)?;
    let echo = std::thread::Builder::new()
        .name("raw-ring-echo".into())
        .spawn(move || {
            let mut spins = 0;
            loop {
                match req_rx.pop() {
                    Ok(m) if m.seq == STOP => return,
                    Ok(m) => {
                        spins = 0;
                        let mut reply = kernels::reply(&m);
                        while let Err(e) = rep_tx.push(reply) {
                            reply = e.into_inner();
                            std::hint::spin_loop();
                        }
                    }
                    Err(_) => snooze(&mut spins),
                }
            }
        })?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut out = Ok(());
    for i in 0..warmup + samples {
        let request = Ping::new(i);
        let t0 = Instant::now();
        if req_tx.push(request).is_err() {
            out = Err("the raw ring is full".to_string());
            break;
        }
        let mut spins = 0;
        let reply = loop {
            match rep_rx.pop() {
                Ok(r) => break r,
                Err(_) => snooze(&mut spins),
            }
        };
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if reply.seq != i {
            out = Err(format!("raw echo answered {} to request {i}", reply.seq));
            break;
        }
        if i >= warmup {
            hist.saturating_record(ns.max(1));
        }
        if i % UPDATE_EVERY == 0 {
            bar.set_position(i);
        }
    }
    let mut stop = Ping::new(STOP);
    while let Err(e) = req_tx.push(stop) {
        stop = e.into_inner();
        std::thread::yield_now();
    }
    echo.join().map_err(|_| "the raw echo thread panicked")?;
    out?;
    Ok(hist)
}
