//! The goals for a 2-core machine, beside what this run measured,
//! and the ratios to PyDotCompute's figures (theirs, from the reference
//! file; not measured here). Reported, never asserted: the figures depend on
//! the machine and on what else runs on it.

use serde::Serialize;

use super::host::HostKind;
use super::latency::{LatencyResult, Method};
use super::queue::QueueResult;
use super::throughput::{ThroughputResult, Workload};
use super::tier::Tier;
use crate::output::{fmt_ns, fmt_rate};

/// One goal line.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// The goal as the issue states it.
    pub goal: String,
    /// Which of our cases it is checked against.
    pub case: String,
    /// Our figure (`-` when not measured).
    pub measured: String,
    /// Whether the goal is met; `None` when there is no target or no figure.
    pub met: Option<bool>,
    /// PyDotCompute's figure and our ratio to it, when there is one.
    pub versus: Option<String>,
}

/// `N× faster` / `N× slower`, for times (lower is better).
fn time_ratio(ours_ns: f64, theirs_ns: f64) -> String {
    if ours_ns <= theirs_ns {
        format!("{:.1}× faster", theirs_ns / ours_ns.max(1e-9))
    } else {
        format!("{:.1}× slower", ours_ns / theirs_ns)
    }
}

/// `N× more` / `N× less`, for rates (higher is better).
fn rate_ratio(ours: f64, theirs: f64) -> String {
    if ours >= theirs {
        format!("{:.1}× more", ours / theirs)
    } else {
        format!("{:.1}× less", theirs / ours.max(1e-9))
    }
}

fn latency_case(results: &[LatencyResult], tier: Tier, host: HostKind, method: Method) -> Option<&LatencyResult> {
    results
        .iter()
        .find(|r| r.tier == tier && r.host == host && r.method == method)
}

/// Round-trip goals: spin p50 ≤ 1 µs, async p50 ≤ 5 µs, process p50 ≤ 5 µs,
/// and no multi-ms stalls (max and p99.9 shown).
pub fn latency(results: &[LatencyResult]) -> Vec<Goal> {
    let mut goals = Vec::new();
    let p50_goal = |goal: &str, r: &LatencyResult, target_ns: Option<f64>, versus: Option<String>| Goal {
        goal: goal.to_string(),
        case: r.name(),
        measured: format!("p50 {}", fmt_ns(r.p50_ns as f64)),
        met: target_ns.map(|t| r.p50_ns as f64 <= t),
        versus,
    };
    if let Some(r) = latency_case(results, Tier::Spin, HostKind::PlainThread, Method::SendReceive) {
        let vs = format!(
            "PyDotCompute ThreadedRingKernel (SPSC) p50 20.5 µs: {}",
            time_ratio(r.p50_ns as f64, 20_500.0)
        );
        goals.push(p50_goal("spin round trip p50 ≤ 1 µs", r, Some(1_000.0), Some(vs)));
    }
    for host in [HostKind::MultiThread, HostKind::CurrentThread] {
        if let Some(r) = latency_case(results, Tier::Async, host, Method::SendReceive) {
            let p50 = r.p50_ns as f64;
            let vs = format!(
                "PyDotCompute p50 23 µs (uvloop): {}; 33 µs (asyncio): {}",
                time_ratio(p50, 23_000.0),
                time_ratio(p50, 33_000.0)
            );
            goals.push(p50_goal("async round trip p50 ≤ 5 µs", r, Some(5_000.0), Some(vs)));
        }
    }
    if let Some(r) = latency_case(results, Tier::Thread, HostKind::PlainThread, Method::SendReceive) {
        let vs = format!(
            "PyDotCompute ThreadedRingKernel p50 20.5 µs: {}",
            time_ratio(r.p50_ns as f64, 20_500.0)
        );
        goals.push(Goal {
            goal: "thread round trip p50 ≤ 2 µs and p99 ≤ 20 µs (issue 10)".into(),
            case: r.name(),
            measured: format!("p50 {} · p99 {}", fmt_ns(r.p50_ns as f64), fmt_ns(r.p99_ns as f64)),
            met: Some(r.p50_ns <= 2_000 && r.p99_ns <= 20_000),
            versus: Some(vs),
        });
    }
    if let (Some(r), Some(raw)) = (
        latency_case(results, Tier::Spin, HostKind::PlainThread, Method::SendReceive),
        latency_case(results, Tier::Spin, HostKind::PlainThread, Method::RawRing),
    ) {
        let ratio = r.p50_ns as f64 / raw.p50_ns.max(1) as f64;
        goals.push(Goal {
            goal: "spin round trip p50 within 1.2× of two bare SpscRings (issue 10)".into(),
            case: r.name(),
            measured: format!(
                "p50 {} vs {} ({ratio:.2}×)",
                fmt_ns(r.p50_ns as f64),
                fmt_ns(raw.p50_ns as f64)
            ),
            met: Some(ratio <= 1.2),
            versus: None,
        });
    }
    if let Some(r) = latency_case(results, Tier::Async, HostKind::CurrentThread, Method::SendReceive) {
        goals.push(p50_goal(
            "async round trip p50 ≤ 0.4 µs on current-thread tokio (issue 10; the same-run comparison with actix, kameo, ractor, xtra and a tokio mpsc actor is perf-comparison/)",
            r,
            Some(400.0),
            None,
        ));
    }
    if let Some(r) = latency_case(results, Tier::Process, HostKind::PlainThread, Method::SendReceive) {
        let vs =
            "PyDotCompute has no working cross-process tier (its Cython queue holds in-process pointers)".to_string();
        goals.push(p50_goal(
            "process-tier round trip p50 ≤ 5 µs",
            r,
            Some(5_000.0),
            Some(vs),
        ));
        goals.push(p50_goal(
            "process-tier round trip p50 ≤ 2 µs (issue 10)",
            r,
            Some(2_000.0),
            None,
        ));
    }
    for method in [Method::SendReceive, Method::GpuRing] {
        if let Some(r) = latency_case(results, Tier::Gpu, HostKind::PlainThread, method) {
            let base = |m| latency_case(results, Tier::Gpu, HostKind::PlainThread, m).map(|b| b.p50_ns as f64);
            let vs = match (base(Method::LaunchPerMessage), base(Method::GraphReplay)) {
                (Some(l), Some(g)) => Some(format!(
                    "launch+sync per message p50 {}: {}; CUDA graph p50 {}: {}",
                    fmt_ns(l),
                    time_ratio(r.p50_ns as f64, l),
                    fmt_ns(g),
                    time_ratio(r.p50_ns as f64, g)
                )),
                _ => None,
            };
            goals.push(p50_goal("GPU ring kernel round trip p50 ≤ 5 µs", r, Some(5_000.0), vs));
        }
    }
    // Stalls: the natural host of each tier.
    for r in results.iter().filter(|r| {
        r.method == Method::SendReceive
            && match r.tier {
                Tier::Async => r.host == HostKind::MultiThread,
                _ => r.host == HostKind::PlainThread,
            }
    }) {
        goals.push(Goal {
            goal: "no multi-ms stalls (max < 1 ms)".into(),
            case: r.name(),
            measured: format!(
                "p99.9 {} · max {} · {} of {} over 1 ms",
                fmt_ns(r.p999_ns as f64),
                fmt_ns(r.max_ns as f64),
                r.over_1ms,
                r.count
            ),
            met: Some(r.max_ns < 1_000_000),
            versus: None,
        });
    }
    goals
}

/// Throughput goals: ≥ 10M msg/s batched, ≥ 1M msg/s for the async tier.
pub fn throughput(results: &[ThroughputResult]) -> Vec<Goal> {
    let mut goals = Vec::new();
    let best = |pred: &dyn Fn(&ThroughputResult) -> bool| {
        results
            .iter()
            .filter(|r| pred(r))
            .max_by(|a, b| a.msg_per_sec.total_cmp(&b.msg_per_sec))
    };
    let mut tiers: Vec<Tier> = Vec::new();
    for r in results {
        if !tiers.contains(&r.tier) {
            tiers.push(r.tier);
        }
    }
    for &tier in &tiers {
        // Baselines are for comparison, not candidates for the goal.
        if let Some(r) = best(&|r| r.tier == tier && r.workload.is_batched() && r.workload != Workload::LaunchPerBatch)
        {
            goals.push(Goal {
                goal: "batched throughput ≥ 10M msg/s".into(),
                case: r.name(),
                measured: format!("{} msg/s", fmt_rate(r.msg_per_sec)),
                met: Some(r.msg_per_sec >= 10e6),
                versus: Some(format!(
                    "PyDotCompute ≈100K msg/s (one asyncio actor, request+reply, send N then receive N): {}",
                    rate_ratio(r.msg_per_sec, 100e3)
                )),
            });
        }
    }
    for (workload, target, what) in [
        (Workload::OneWay, 8e6, "async one-way ≥ 8M msg/s (issue 10)"),
        (
            Workload::EchoPipelined,
            5e6,
            "async pipelined echo ≥ 5M msg/s (issue 10)",
        ),
        (
            Workload::OneWayBatched,
            50e6,
            "async batched one-way ≥ 50M msg/s (issue 10)",
        ),
    ] {
        if let Some(r) = best(&|r| r.tier == Tier::Async && r.workload == workload) {
            goals.push(Goal {
                goal: what.into(),
                case: r.name(),
                measured: format!("{} msg/s", fmt_rate(r.msg_per_sec)),
                met: Some(r.msg_per_sec >= target),
                versus: None,
            });
        }
    }
    for workload in [Workload::OneWay, Workload::EchoPipelined] {
        if let Some(r) = best(&|r| r.tier == Tier::Async && r.host == HostKind::MultiThread && r.workload == workload) {
            goals.push(Goal {
                goal: "async tier ≥ 1M msg/s (unbatched)".into(),
                case: r.name(),
                measured: format!("{} msg/s", fmt_rate(r.msg_per_sec)),
                met: Some(r.msg_per_sec >= 1e6),
                versus: Some(format!(
                    "PyDotCompute ≈100K msg/s (one asyncio actor, request+reply, send N then receive N): {}",
                    rate_ratio(r.msg_per_sec, 100e3)
                )),
            });
        }
    }
    goals
}

/// Queue goal: SPSC push+pop ≤ 10 ns; ratios to PyDotCompute's queues.
pub fn queue(results: &[QueueResult]) -> Vec<Goal> {
    let mut goals = Vec::new();
    let find = |queue: &str, item: &str| results.iter().find(|r| r.queue == queue && r.item == item);
    if let Some(r) = find("dotcompute SpscRing", "u64") {
        goals.push(Goal {
            goal: "SPSC push+pop ≤ 10 ns".into(),
            case: "SpscRing<u64> push + pop, same thread".into(),
            measured: format!("{:.2} ns", r.push_pop_ns),
            met: Some(r.push_pop_ns <= 10.0),
            versus: Some(format!(
                "PyDotCompute FastSPSCQueue (Cython) put+get 108 ns: {}",
                time_ratio(r.push_pop_ns, 108.0)
            )),
        });
    }
    if let Some(r) = find("dotcompute SpscRing", "Ping") {
        goals.push(Goal {
            goal: "SPSC push+pop ≤ 10 ns (with the 120-byte message)".into(),
            case: "SpscRing<Ping> push + pop, same thread".into(),
            measured: format!("{:.2} ns", r.push_pop_ns),
            met: Some(r.push_pop_ns <= 10.0),
            versus: Some(format!(
                "PyDotCompute FastSPSCQueue (Cython) put+get 108 ns: {}",
                time_ratio(r.push_pop_ns, 108.0)
            )),
        });
    }
    if let Some(r) = find("dotcompute MessageQueue", "Ping") {
        goals.push(Goal {
            goal: "MessageQueue try_send+try_recv (no target set)".into(),
            case: "MessageQueue<Ping>, same thread".into(),
            measured: format!("{:.2} ns", r.push_pop_ns),
            met: None,
            versus: Some(format!(
                "PyDotCompute FastMessageQueue put_nowait+get_nowait 344 ns: {}; MessageQueue (fifo) 441 ns: {}",
                time_ratio(r.push_pop_ns, 344.0),
                time_ratio(r.push_pop_ns, 441.0)
            )),
        });
    }
    goals
}

/// Prints the goals as a list.
pub fn print(goals: &[Goal]) {
    if goals.is_empty() {
        return;
    }
    println!("goals (2-core machine; reported, not enforced):");
    for g in goals {
        let status = match g.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "-",
        };
        println!("  [{status:^7}] {}: {} ({})", g.goal, g.measured, g.case);
        if let Some(v) = &g.versus {
            println!("            vs {v}");
        }
    }
}
