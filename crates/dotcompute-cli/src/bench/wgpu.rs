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

use super::host::HostKind;
use super::latency::Method;
use super::throughput::{ThroughputResult, Workload};
use super::tier::Tier;
use crate::progress::UPDATE_EVERY;
use crate::CliResult;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Why the wgpu tier cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let acc = dotcompute::device::Accelerator::discover();
    match acc.wgpu_status() {
        dotcompute::device::wgpu::WgpuStatus::Available { .. } => None,
        dotcompute::device::wgpu::WgpuStatus::Unavailable { reason } => Some(reason.clone()),
    }
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: seq as f32 * 0.5,
        channel: (seq % 7) as u32,
    }
}

fn check(sent: &Sample, got: &Sample) -> CliResult<()> {
    if sent != got {
        return Err(format!("wgpu echo returned {got:?} for {sent:?}").into());
    }
    Ok(())
}

fn options(batch: usize) -> WgpuKernelOptions {
    WgpuKernelOptions {
        batch_size: batch.clamp(1, 4096),
        queue_size: 4096,
        ..WgpuKernelOptions::default()
    }
}

type EchoHandle = dotcompute::KernelHandle<Envelope<Sample>, Envelope<Sample>>;

/// A tokio runtime, a ring-kernel runtime with the wgpu echo kernel
/// launched and active, and a handle on it.
fn echo_runtime(batch: usize) -> CliResult<(tokio::runtime::Runtime, RingKernelRuntime, EchoHandle)> {
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
    let mut hist = Histogram::new_with_bounds(1, 60_000_000_000, 3)?;
    let total = warmup + samples;
    let record = |i: u64, ns: u64, hist: &mut Histogram<u64>| {
        if i >= warmup {
            hist.saturating_record(ns.max(1));
        }
        if i.is_multiple_of(UPDATE_EVERY) {
            bar.set_position(i);
        }
    };
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
                check(&m, out.first().ok_or("no reply")?)?;
                record(i, ns, &mut hist);
            }
        }
        Method::SendReceive | Method::Call => {
            let (rt, runtime, handle) = echo_runtime(64)?;
            let result = (|| -> CliResult<()> {
                for i in 0..total {
                    let m = sample(i);
                    let t = Instant::now();
                    let r = if method == Method::Call {
                        rt.block_on(handle.call_timeout(Envelope::new(m), TIMEOUT))?
                    } else {
                        handle.send_blocking(Envelope::new(m))?;
                        handle.receive_blocking_timeout(TIMEOUT)?
                    };
                    let ns = t.elapsed().as_nanos() as u64;
                    check(&m, &r.payload)?;
                    record(i, ns, &mut hist);
                }
                Ok(())
            })();
            rt.block_on(runtime.shutdown());
            result?;
        }
        other => return Err(format!("{other:?} is not a wgpu-tier case").into()),
    }
    Ok(hist)
}

fn row(workload: Workload, batch: Option<usize>, messages: u64, elapsed: Duration) -> ThroughputResult {
    let secs = elapsed.as_secs_f64().max(1e-9);
    ThroughputResult {
        workload,
        tier: Tier::Wgpu,
        host: HostKind::PlainThread,
        host_label: HostKind::PlainThread.label(),
        kernels: 1,
        window: None,
        batch,
        messages,
        elapsed_secs: secs,
        msg_per_sec: messages as f64 / secs,
        other_cpu_pct: None,
    }
}

/// Echo through the runtime: batched sends from one thread, batched
/// receives on another; every reply checked in order.
fn runtime_pipelined(n: u64, batch: usize) -> CliResult<Duration> {
    let (rt, runtime, handle) = echo_runtime(batch.max(64))?;
    let result = std::thread::scope(|s| -> CliResult<Duration> {
        let t = Instant::now();
        let sender = s.spawn(|| -> CliResult<()> {
            let mut next = 0u64;
            while next < n {
                let end = (next + batch as u64).min(n);
                handle.send_batch_blocking((next..end).map(|i| Envelope::new(sample(i))).collect())?;
                next = end;
            }
            Ok(())
        });
        let mut got = 0u64;
        let mut out = Vec::with_capacity(batch);
        while got < n {
            out.clear();
            handle.receive_batch_blocking(batch.max(1), &mut out)?;
            for r in &out {
                check(&sample(got), &r.payload)?;
                got += 1;
            }
        }
        let elapsed = t.elapsed();
        sender.join().map_err(|_| "sender thread panicked")??;
        Ok(elapsed)
    });
    rt.block_on(runtime.shutdown());
    result
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
            check(&msgs[c * batch + k], r)?;
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
        Workload::EchoPipelined,
        None,
        unbatched,
        runtime_pipelined(unbatched, 1)?,
    ));
    record(row(
        Workload::EchoPipelinedBatched,
        Some(batch),
        n,
        runtime_pipelined(n, batch)?,
    ));
    record(row(
        Workload::LaunchPerBatch,
        Some(1),
        unbatched,
        dispatch_per_batch(unbatched, 1)?,
    ));
    record(row(
        Workload::LaunchPerBatch,
        Some(batch),
        n,
        dispatch_per_batch(n, batch)?,
    ));
    Ok(())
}
