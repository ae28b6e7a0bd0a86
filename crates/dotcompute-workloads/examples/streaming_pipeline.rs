//! A streaming anomaly pipeline of two linked ring kernels:
//!
//! ```text
//! host ──AnomalyBatch──▶ detector (thread tier, holds the EMA state)
//!                            │ AnomalyBatchResult (linked, no host hop)
//!                            ▼
//!                        alerts (async tier, keeps running totals) ──Alert──▶ host
//! ```
//!
//! The host streams PyDotCompute's synthetic sensor data (sine mixture +
//! noise + 1% injected spikes, numpy seed 42) in micro-batches with several
//! in flight, collects the alerts, and checks them against the labels and
//! against the same detector run point by point.
//!
//! Run with `cargo run --release -p dotcompute --example streaming_pipeline [-- POINTS [BATCH]]`
//! (default 10,000,000 points, batches of 10,000).

use std::collections::VecDeque;
use std::error::Error;
use std::time::Instant;

use dotcompute::{Error as RuntimeError, KernelConfig, KernelContext, Message, MessageHeader, RingKernelRuntime};
use dotcompute_workloads::anomaly::actor::{thread_kernel_spec, AnomalyBatch, AnomalyBatchResult};
use dotcompute_workloads::anomaly::stream::SyntheticSpec;
use dotcompute_workloads::anomaly::{detect, quality, Anomaly, DetectOptions, DetectorConfig, Mode, Quality};

/// What the alerts kernel emits for every batch.
#[derive(Debug, Clone, Message)]
pub struct Alert {
    /// The batch.
    pub batch_id: u64,
    /// Anomalies in it.
    pub anomalies: Vec<Anomaly>,
    /// Anomalies so far, all batches.
    pub total: u64,
    /// Highest score so far.
    pub max_score: f64,
    /// Message header.
    pub header: MessageHeader,
}

/// Keeps running totals over the detector's results.
async fn alerts(mut ctx: KernelContext<AnomalyBatchResult, Alert>) -> Result<(), RuntimeError> {
    let mut total = 0u64;
    let mut max_score = 0.0f64;
    loop {
        let r = ctx.receive().await?;
        total += r.anomalies.len() as u64;
        max_score = r.anomalies.iter().fold(max_score, |m, a| m.max(a.score));
        ctx.send(Alert {
            batch_id: r.batch_id,
            anomalies: r.anomalies,
            total,
            max_score,
            header: MessageHeader::new(),
        })
        .await?;
    }
}

/// What the pipeline measured.
#[derive(Debug)]
pub struct Summary {
    /// Points streamed.
    pub points: usize,
    /// Batches sent.
    pub batches: usize,
    /// Anomalies alerted.
    pub anomalies: Vec<Anomaly>,
    /// The alerts kernel's final running total.
    pub total: u64,
    /// Wall time from the first send to the last alert, seconds.
    pub seconds: f64,
    /// Against the injected labels.
    pub quality: Quality,
    /// Whether the point-by-point detector found exactly the same anomalies.
    pub matches_per_point: bool,
}

/// Streams `points` points in batches of `batch`, `depth` in flight.
pub async fn run(points: usize, batch: usize, depth: usize) -> Result<Summary, Box<dyn Error + Send + Sync>> {
    let stream = SyntheticSpec::pydotcompute(points).generate()?;
    let rt = RingKernelRuntime::new();
    let outcome = pipeline(&rt, &stream.values, batch.max(1), depth.max(1)).await;
    rt.shutdown().await;
    let (anomalies, total, seconds, batches) = outcome?;
    let per_point = detect(
        DetectorConfig::default(),
        &stream.values,
        &DetectOptions {
            mode: Mode::Cpu,
            ..DetectOptions::default()
        },
    )?;
    Ok(Summary {
        points,
        batches,
        quality: quality(&anomalies, &stream.labels),
        matches_per_point: per_point.anomalies == anomalies,
        anomalies,
        total,
        seconds,
    })
}

type Outcome = (Vec<Anomaly>, u64, f64, usize);

async fn pipeline(
    rt: &RingKernelRuntime,
    values: &[f64],
    batch: usize,
    depth: usize,
) -> Result<Outcome, Box<dyn Error + Send + Sync>> {
    rt.launch_spec(thread_kernel_spec("detector", DetectorConfig::default())?)?;
    rt.launch_with("alerts", KernelConfig::default(), alerts)?;
    rt.link("detector", "alerts")?;
    rt.activate("alerts")?;
    rt.activate("detector")?;
    let detector = rt.handle::<AnomalyBatch, AnomalyBatchResult>("detector")?;
    let sink = rt.handle::<AnomalyBatchResult, Alert>("alerts")?;

    let chunks: Vec<&[f64]> = values.chunks(batch).collect();
    let mut anomalies = Vec::new();
    let mut total = 0;
    let mut in_flight = VecDeque::new();
    let (mut next, mut first_index) = (0usize, 0u64);
    let start = Instant::now();
    for expected in 0..chunks.len() as u64 {
        while next < chunks.len() && in_flight.len() < depth {
            detector
                .send(AnomalyBatch::new(next as u64, first_index, chunks[next].to_vec()))
                .await?;
            in_flight.push_back(next);
            first_index += chunks[next].len() as u64;
            next += 1;
        }
        let alert = sink.receive().await?;
        in_flight.pop_front();
        if alert.batch_id != expected {
            return Err(format!("alert for batch {} arrived, expected {expected}", alert.batch_id).into());
        }
        anomalies.extend(alert.anomalies);
        total = alert.total;
    }
    Ok((anomalies, total, start.elapsed().as_secs_f64(), chunks.len()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let points: usize = match args.next() {
        Some(a) => a.parse().map_err(|e| format!("POINTS must be a number: {e}"))?,
        None => 10_000_000,
    };
    let batch: usize = match args.next() {
        Some(a) => a.parse().map_err(|e| format!("BATCH must be a number: {e}"))?,
        None => 10_000,
    };
    let s = run(points, batch, 8).await?;
    println!(
        "{} points in {} batches through detector -> alerts: {:.3} s, {:.1} M points/s",
        s.points,
        s.batches,
        s.seconds,
        s.points as f64 / s.seconds / 1e6
    );
    let q = s.quality;
    println!(
        "anomalies: {} (running total {}), precision {:.4}, recall {:.4} against {} injected spikes",
        s.anomalies.len(),
        s.total,
        q.precision.unwrap_or(0.0),
        q.recall.unwrap_or(0.0),
        q.labeled
    );
    println!("identical to the point-by-point detector: {}", s.matches_per_point);
    Ok(())
}
