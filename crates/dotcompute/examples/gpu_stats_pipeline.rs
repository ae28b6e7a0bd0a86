//! A GPU ring kernel that keeps state across messages, driven from the
//! async tier: an async `sensor` kernel turns readings into GPU samples and
//! is linked to the `stats` kernel, a persistent CUDA kernel whose state
//! holds the running count, mean, variance and a 16-value window
//! (`gpu::handlers::running_stats`, CUDA C). The host reads the statistics
//! as they come.
//!
//! Without an NVIDIA GPU the same pipeline runs with the `stats` kernel
//! emulated on a host thread (the Rust twin of the handler, same protocol);
//! the program says which one ran.
//!
//! Run: `cargo run --release -p dotcompute --example gpu_stats_pipeline`

use std::time::Duration;

use dotcompute::gpu::handlers::{self, Sample, Stats, StatsState};
use dotcompute::gpu::{emulated_kernel_with_state, gpu_kernel, Envelope, GpuKernelOptions, GpuMessage};
use dotcompute::{KernelContext, KernelSpec, Message, MessageHeader, RingKernelRuntime};

/// A sensor reading (an ordinary runtime message).
#[derive(Debug, Clone, Message)]
pub struct Reading {
    /// The measured value.
    pub value: f32,
    /// The runtime's header.
    pub header: MessageHeader,
}

/// What the pipeline produced.
#[derive(Debug)]
pub struct Outcome {
    /// "CUDA" or "emulation (...why...)".
    pub device: String,
    /// The last statistics received.
    pub last: Stats,
    /// How many statistics replies arrived.
    pub replies: usize,
}

/// The `stats` kernel: on the GPU when one is there, else emulated.
fn stats_kernel() -> Result<(KernelSpec, String), dotcompute::Error> {
    match gpu_kernel::<Sample, Stats, StatsState>(
        "stats",
        handlers::running_stats_cuda(),
        StatsState::zeroed(),
        GpuKernelOptions::default(),
    ) {
        Ok(spec) => Ok((spec, "CUDA".to_string())),
        Err(dotcompute::Error::Gpu { error, .. }) => {
            let spec = emulated_kernel_with_state::<Sample, Stats, StatsState, _, _>(
                "stats",
                handlers::running_stats,
                StatsState::zeroed(),
                GpuKernelOptions::default(),
            )?;
            Ok((spec, format!("emulation ({error})")))
        }
        Err(e) => Err(e),
    }
}

/// Runs the pipeline over `readings`.
pub async fn run(readings: &[f32]) -> Result<Outcome, dotcompute::Error> {
    let runtime = RingKernelRuntime::new();
    let (stats, device) = stats_kernel()?;
    runtime.launch_spec(stats)?;
    // The async tier: readings in, GPU samples out (to the linked kernel).
    let sensor = KernelSpec::builder::<Reading, Envelope<Sample>>("sensor")
        .handler(|mut ctx: KernelContext<Reading, Envelope<Sample>>| async move {
            let mut seq = 0u64;
            loop {
                let r = ctx.receive().await?;
                ctx.send(Envelope::new(Sample {
                    seq,
                    value: r.value,
                    channel: 0,
                }))
                .await?;
                seq += 1;
            }
            #[allow(unreachable_code)]
            Ok::<(), dotcompute::Error>(())
        })
        .build()?;
    runtime.launch_spec(sensor)?;
    runtime.link("sensor", "stats")?;
    runtime.activate("stats")?;
    runtime.activate("sensor")?;
    for &r in readings {
        runtime
            .send(
                "sensor",
                Reading {
                    value: r,
                    header: MessageHeader::new(),
                },
            )
            .await?;
    }
    let mut last = Stats::zeroed();
    let mut replies = 0;
    for _ in readings {
        let s: Envelope<Stats> = runtime.receive_timeout("stats", Duration::from_secs(10)).await?;
        last = s.payload;
        replies += 1;
    }
    runtime.shutdown().await;
    Ok(Outcome { device, last, replies })
}

#[tokio::main]
async fn main() -> Result<(), dotcompute::Error> {
    let readings: Vec<f32> = (0..1000).map(|i| 20.0 + ((i as f32) * 0.1).sin() * 5.0).collect();
    let out = run(&readings).await?;
    println!("stats kernel ran on: {}", out.device);
    println!(
        "{} readings: count {}, mean {:.4}, variance {:.4}; last {} values: mean {:.4}, min {:.4}, max {:.4}",
        out.replies,
        out.last.count,
        out.last.mean,
        out.last.variance,
        out.last.window_len,
        out.last.window_mean,
        out.last.window_min,
        out.last.window_max
    );
    Ok(())
}
