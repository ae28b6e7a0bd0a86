//! The GPU tier of `bench latency` and `bench throughput`: a persistent
//! CUDA echo kernel (`gpu::handlers::echo_cuda`, 16-byte `Sample`
//! messages) reached through the runtime (`gpu_kernel`) and through a bare
//! `GpuRing`, beside the two baselines a CUDA user would otherwise write,
//! measured in the same run on the same handler: one launch per message
//! (copy in, launch, copy out, synchronize) and the same steps replayed from
//! a CUDA graph (`gpu::baseline`). Every reply is checked for content.
//!
//! Without a CUDA device, NVRTC or driver the tier is not run: `--tier all`
//! leaves it out saying why, `--tier gpu` fails saying why.

use std::time::{Duration, Instant};

use dotcompute::gpu::baseline::LaunchPerMessage;
use dotcompute::gpu::handlers::{echo_cuda, Sample};
use dotcompute::gpu::{gpu_kernel, Envelope, GpuKernelOptions, GpuRing, GpuRingOptions, NoState};
use dotcompute::RingKernelRuntime;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use super::echo::{check, row, runtime_pipelined, runtime_round_trips, sample, Launched, Recorder};
use super::latency::Method;
use super::throughput::{ThroughputResult, Workload};
use super::tier::Tier;
use crate::CliResult;

const TIMEOUT: Duration = Duration::from_secs(10);
/// The tier's name in reply errors.
const WHAT: &str = "GPU";

/// Why the GPU tier cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if let Err(e) = dotcompute::device::dylib::cuda_driver() {
        return Some(e);
    }
    if let Err(e) = dotcompute::device::dylib::nvrtc() {
        return Some(e);
    }
    match dotcompute::device::CudaBackend::device_count() {
        Ok(0) => Some("the CUDA driver reports no device".into()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

fn ring_options(batch: u32) -> GpuRingOptions {
    let mut o = GpuRingOptions {
        input_capacity: 4096,
        output_capacity: 4096,
        ..GpuRingOptions::default()
    };
    o.device.batch_size = batch;
    o
}

/// A tokio runtime, a ring-kernel runtime with the GPU echo kernel
/// (`gpu_kernel`, device batches of `batch`) launched and active, and a
/// handle on it for a plain host thread.
fn echo_runtime(batch: u32) -> CliResult<Launched> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let spec = gpu_kernel::<Sample, Sample, NoState>(
        "gpu-echo",
        echo_cuda(),
        NoState::default(),
        GpuKernelOptions {
            ring: ring_options(batch),
            ..GpuKernelOptions::default()
        },
    )?;
    let runtime = RingKernelRuntime::new();
    rt.block_on(async {
        runtime.launch_spec(spec)?;
        runtime.activate("gpu-echo")
    })?;
    let handle = runtime.handle::<Envelope<Sample>, Envelope<Sample>>("gpu-echo")?;
    Ok((rt, runtime, handle))
}

/// Round trips of one GPU-tier latency case, in ns.
pub fn latency(method: Method, warmup: u64, samples: u64, bar: &ProgressBar) -> CliResult<Histogram<u64>> {
    let mut rec = Recorder::new(warmup, bar)?;
    let total = warmup + samples;
    match method {
        Method::GpuRing => {
            let mut ring = GpuRing::<Sample, Sample>::cuda(
                &echo_cuda(),
                NoState::default(),
                ring_options(64),
                &Default::default(),
            )?;
            ring.activate()?;
            for i in 0..total {
                let m = sample(i);
                let t = Instant::now();
                ring.send(&m, TIMEOUT)?;
                let r = ring.receive(TIMEOUT)?;
                let ns = t.elapsed().as_nanos() as u64;
                check(WHAT, &m, &r)?;
                rec.record(i, ns);
            }
            ring.terminate(TIMEOUT)?;
        }
        Method::LaunchPerMessage | Method::GraphReplay => {
            let mut base = LaunchPerMessage::<Sample, Sample>::new::<NoState>(&echo_cuda(), 0, 1)?;
            let mut out = Vec::with_capacity(1);
            for i in 0..total {
                let m = sample(i);
                let t = Instant::now();
                if method == Method::GraphReplay {
                    base.round_trip_graph(&m, &mut out)?;
                } else {
                    base.round_trip(std::slice::from_ref(&m), &mut out)?;
                }
                let ns = t.elapsed().as_nanos() as u64;
                check(WHAT, &m, out.first().ok_or("no reply")?)?;
                rec.record(i, ns);
            }
        }
        Method::SendReceive => {
            runtime_round_trips(WHAT, echo_runtime(64)?, false, total, TIMEOUT, &mut rec)?;
        }
        Method::Call | Method::RawRing => return Err(format!("{method:?} is not a GPU-tier case").into()),
    }
    Ok(rec.finish())
}

/// How long `terminate` takes on an active, idle GPU ring kernel, over
/// `runs` fresh kernels.
pub fn terminate_times(runs: u32) -> CliResult<Vec<Duration>> {
    let mut times = Vec::new();
    for i in 0..runs {
        let mut ring =
            GpuRing::<Sample, Sample>::cuda(&echo_cuda(), NoState::default(), ring_options(64), &Default::default())?;
        ring.activate()?;
        let m = sample(u64::from(i));
        ring.send(&m, TIMEOUT)?;
        check(WHAT, &m, &ring.receive(TIMEOUT)?)?;
        let t = Instant::now();
        ring.terminate(TIMEOUT)?;
        times.push(t.elapsed());
    }
    Ok(times)
}

/// Pipelined echo through a bare ring: up to `batch` messages per send,
/// the ring kept full; every reply checked in order.
fn ring_pipelined(n: u64, batch: usize) -> CliResult<Duration> {
    let mut ring = GpuRing::<Sample, Sample>::cuda(
        &echo_cuda(),
        NoState::default(),
        ring_options(batch.clamp(1, 1024) as u32),
        &Default::default(),
    )?;
    ring.activate()?;
    let msgs: Vec<Sample> = (0..n).map(sample).collect();
    let mut replies = Vec::with_capacity(batch);
    let (mut sent, mut got) = (0usize, 0usize);
    let t = Instant::now();
    let deadline = t + Duration::from_secs(120);
    while got < msgs.len() {
        if sent < msgs.len() {
            let end = (sent + batch).min(msgs.len());
            sent += ring.send_slice(&msgs[sent..end])?;
        }
        replies.clear();
        ring.receive_into(&mut replies, batch.max(1))?;
        for r in &replies {
            check(WHAT, &msgs[got], r)?;
            got += 1;
        }
        if replies.is_empty() {
            ring.check_health()?;
            if Instant::now() > deadline {
                return Err(format!("GPU ring stalled after {got} of {n} replies").into());
            }
        }
    }
    let elapsed = t.elapsed();
    ring.terminate(TIMEOUT)?;
    Ok(elapsed)
}

/// The baseline: one launch (copy in, kernel, copy out, synchronize) per
/// `batch` messages.
fn launch_per_batch(n: u64, batch: usize) -> CliResult<Duration> {
    let mut base = LaunchPerMessage::<Sample, Sample>::new::<NoState>(&echo_cuda(), 0, batch.max(1))?;
    let msgs: Vec<Sample> = (0..n).map(sample).collect();
    let mut out = Vec::with_capacity(batch);
    let t = Instant::now();
    for (c, chunk) in msgs.chunks(batch.max(1)).enumerate() {
        base.round_trip(chunk, &mut out)?;
        for (k, r) in out.iter().enumerate() {
            check(WHAT, &msgs[c * batch.max(1) + k], r)?;
        }
    }
    Ok(t.elapsed())
}

/// The GPU tier's throughput cases, each passed to `record` as it ends.
pub fn throughput(n: u64, batch: usize, record: &mut dyn FnMut(ThroughputResult)) -> CliResult<()> {
    let unbatched = n.min(200_000);
    record(row(
        Tier::Gpu,
        Workload::EchoPipelined,
        None,
        n,
        runtime_pipelined(WHAT, echo_runtime(1)?, n, 1)?,
    ));
    record(row(
        Tier::Gpu,
        Workload::EchoPipelinedBatched,
        Some(batch),
        n,
        runtime_pipelined(WHAT, echo_runtime(batch.clamp(1, 1024) as u32)?, n, batch)?,
    ));
    record(row(
        Tier::Gpu,
        Workload::GpuRingBatched,
        Some(batch),
        n,
        ring_pipelined(n, batch)?,
    ));
    record(row(
        Tier::Gpu,
        Workload::LaunchPerBatch,
        Some(1),
        unbatched,
        launch_per_batch(unbatched, 1)?,
    ));
    record(row(
        Tier::Gpu,
        Workload::LaunchPerBatch,
        Some(batch),
        n,
        launch_per_batch(n, batch)?,
    ));
    Ok(())
}
