//! The wgpu tier of `bench latency` and `bench throughput`: a ring kernel
//! on wgpu (`gpu::wgpu::wgpu_kernel`, the WGSL echo handler, 16-byte
//! `Sample` messages) reached through the runtime, beside the baseline a
//! wgpu user would otherwise write, measured in the same run on the same
//! handler: upload, dispatch and read back per message or per batch
//! (`WgpuBatchRunner`, no runtime). Every reply is checked for content.
//!
//! On a machine without a GPU this runs on lavapipe (Vulkan on the CPU), so
//! the figures are those of a software device. Without any wgpu adapter the
//! tier is not run: `--tier all` leaves it out saying why, `--tier wgpu`
//! fails saying why.

use std::time::{Duration, Instant};

use dotcompute::gpu::handlers::Sample;
use dotcompute::gpu::wgpu::{echo_wgsl, wgpu_kernel, WgpuBatchRunner, WgpuKernelOptions};
use dotcompute::gpu::{Envelope, NoState};
use dotcompute::RingKernelRuntime;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use super::echo::{check, row, runtime_pipelined, runtime_round_trips, sample, Launched, Recorder};
use super::latency::Method;
use super::throughput::{ThroughputResult, Workload};
use super::tier::Tier;
use crate::CliResult;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The tier's name in reply errors.
const WHAT: &str = "wgpu";

/// Why the wgpu tier cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let acc = dotcompute::device::Accelerator::discover();
    match acc.wgpu_status() {
        dotcompute::device::wgpu::WgpuStatus::Available { .. } => None,
        dotcompute::device::wgpu::WgpuStatus::Unavailable { reason } => Some(reason.clone()),
    }
}

fn options(batch: usize) -> WgpuKernelOptions {
    WgpuKernelOptions {
        batch_size: batch.clamp(1, 4096),
        queue_size: 4096,
        ..WgpuKernelOptions::default()
    }
}

/// A tokio runtime, a ring-kernel runtime with the wgpu echo kernel
/// launched and active, and a handle on it.
fn echo_runtime(batch: usize) -> CliResult<Launched> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let spec = wgpu_kernel::<Sample, Sample, NoState>("wgpu-echo", echo_wgsl(), NoState::default(), options(batch))?;
    let runtime = RingKernelRuntime::new();
    rt.block_on(async {
        runtime.launch_spec(spec)?;
        runtime.activate("wgpu-echo")
    })?;
    let handle = runtime.handle::<Envelope<Sample>, Envelope<Sample>>("wgpu-echo")?;
    Ok((rt, runtime, handle))
}

/// Round trips of one wgpu-tier latency case, in ns.
pub fn latency(method: Method, warmup: u64, samples: u64, bar: &ProgressBar) -> CliResult<Histogram<u64>> {
    let mut rec = Recorder::new(warmup, bar)?;
    let total = warmup + samples;
    match method {
        Method::LaunchPerMessage => {
            let mut runner =
                WgpuBatchRunner::<Sample, Sample, NoState>::new(&echo_wgsl(), NoState::default(), &options(1))?;
            let mut out = Vec::with_capacity(1);
            for i in 0..total {
                let m = sample(i);
                let t = Instant::now();
                runner.run(std::slice::from_ref(&m), &mut out)?;
                let ns = t.elapsed().as_nanos() as u64;
                check(WHAT, &m, out.first().ok_or("no reply")?)?;
                rec.record(i, ns);
            }
        }
        Method::SendReceive | Method::Call => {
            let call = method == Method::Call;
            runtime_round_trips(WHAT, echo_runtime(64)?, call, total, TIMEOUT, &mut rec)?;
        }
        other => return Err(format!("{other:?} is not a wgpu-tier case").into()),
    }
    Ok(rec.finish())
}

/// The baseline: upload, dispatch and read back per `batch` messages.
fn dispatch_per_batch(n: u64, batch: usize) -> CliResult<Duration> {
    let batch = batch.max(1);
    let mut runner =
        WgpuBatchRunner::<Sample, Sample, NoState>::new(&echo_wgsl(), NoState::default(), &options(batch))?;
    let msgs: Vec<Sample> = (0..n).map(sample).collect();
    let mut out = Vec::with_capacity(batch);
    let t = Instant::now();
    for (c, chunk) in msgs.chunks(batch).enumerate() {
        runner.run(chunk, &mut out)?;
        for (k, r) in out.iter().enumerate() {
            check(WHAT, &msgs[c * batch + k], r)?;
        }
    }
    Ok(t.elapsed())
}

/// The wgpu tier's throughput cases, each passed to `record` as it ends.
pub fn throughput(n: u64, batch: usize, record: &mut dyn FnMut(ThroughputResult)) -> CliResult<()> {
    // One dispatch per message costs tens of microseconds on lavapipe:
    // the unbatched cases run fewer messages.
    let unbatched = n.min(20_000);
    record(row(
        Tier::Wgpu,
        Workload::EchoPipelined,
        None,
        unbatched,
        runtime_pipelined(WHAT, echo_runtime(64)?, unbatched, 1)?,
    ));
    record(row(
        Tier::Wgpu,
        Workload::EchoPipelinedBatched,
        Some(batch),
        n,
        runtime_pipelined(WHAT, echo_runtime(batch.max(64))?, n, batch)?,
    ));
    record(row(
        Tier::Wgpu,
        Workload::LaunchPerBatch,
        Some(1),
        unbatched,
        dispatch_per_batch(unbatched, 1)?,
    ));
    record(row(
        Tier::Wgpu,
        Workload::LaunchPerBatch,
        Some(batch),
        n,
        dispatch_per_batch(n, batch)?,
    ));
    Ok(())
}
