//! What the device-backed tiers of `bench latency` and `bench throughput`
//! share (the CUDA tier in [`super::gpu`], the wgpu tier in
//! [`super::wgpu`]): the 16-byte `Sample` echo traffic, the reply check,
//! the latency recorder, round trips and pipelined echo through a launched
//! echo kernel, and the throughput row. Every reply is checked against what
//! was sent, in order; a wrong or missing reply is an error, never a figure.

use std::time::{Duration, Instant};

use dotcompute::gpu::handlers::Sample;
use dotcompute::gpu::Envelope;
use dotcompute::RingKernelRuntime;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use super::host::HostKind;
use super::throughput::{ThroughputResult, Workload};
use super::tier::Tier;
use crate::progress::UPDATE_EVERY;
use crate::CliResult;

/// A handle on an echo kernel of `Sample` envelopes.
pub(super) type EchoHandle = dotcompute::KernelHandle<Envelope<Sample>, Envelope<Sample>>;

/// A tokio runtime, a ring-kernel runtime with the echo kernel launched and
/// active, and a handle on it for a plain host thread.
pub(super) type Launched = (tokio::runtime::Runtime, RingKernelRuntime, EchoHandle);

/// The `seq`-th message of every case.
pub(super) fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: seq as f32 * 0.5,
        channel: (seq % 7) as u32,
    }
}

/// Fails unless the echo of `sent` came back unchanged (`what`: the tier).
pub(super) fn check(what: &str, sent: &Sample, got: &Sample) -> CliResult<()> {
    if sent != got {
        return Err(format!("{what} echo returned {got:?} for {sent:?}").into());
    }
    Ok(())
}

/// Round-trip times of a latency case: the first `warmup` are left out,
/// the progress bar follows every sample.
pub(super) struct Recorder<'a> {
    warmup: u64,
    bar: &'a ProgressBar,
    hist: Histogram<u64>,
}

impl<'a> Recorder<'a> {
    pub(super) fn new(warmup: u64, bar: &'a ProgressBar) -> CliResult<Self> {
        Ok(Recorder {
            warmup,
            bar,
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)?,
        })
    }

    /// Sample `i` took `ns`.
    pub(super) fn record(&mut self, i: u64, ns: u64) {
        if i >= self.warmup {
            self.hist.saturating_record(ns.max(1));
        }
        if i.is_multiple_of(UPDATE_EVERY) {
            self.bar.set_position(i);
        }
    }

    pub(super) fn finish(self) -> Histogram<u64> {
        self.hist
    }
}

/// `total` round trips through the runtime's echo kernel, one message in
/// flight: `call` when `call`, else `send_blocking` then
/// `receive_blocking_timeout`. Shuts the runtime down, also after an error.
pub(super) fn runtime_round_trips(
    what: &str,
    (rt, runtime, handle): Launched,
    call: bool,
    total: u64,
    timeout: Duration,
    rec: &mut Recorder<'_>,
) -> CliResult<()> {
    let result = (|| -> CliResult<()> {
        for i in 0..total {
            let m = sample(i);
            let t = Instant::now();
            let r = if call {
                rt.block_on(handle.call_timeout(Envelope::new(m), timeout))?
            } else {
                handle.send_blocking(Envelope::new(m))?;
                handle.receive_blocking_timeout(timeout)?
            };
            let ns = t.elapsed().as_nanos() as u64;
            check(what, &m, &r.payload)?;
            rec.record(i, ns);
        }
        Ok(())
    })();
    rt.block_on(runtime.shutdown());
    result
}

/// Echo of `n` messages through the runtime: batched sends (`batch` per
/// `send_batch_blocking`) from one thread, batched receives on this one,
/// every reply checked in order. Shuts the runtime down, also after an error.
pub(super) fn runtime_pipelined(
    what: &str,
    (rt, runtime, handle): Launched,
    n: u64,
    batch: usize,
) -> CliResult<Duration> {
    let batch = batch.max(1);
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
            handle.receive_batch_blocking(batch, &mut out)?;
            for r in &out {
                check(what, &sample(got), &r.payload)?;
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

/// A throughput row of `tier` (host: one plain thread, one kernel).
pub(super) fn row(
    tier: Tier,
    workload: Workload,
    batch: Option<usize>,
    messages: u64,
    elapsed: Duration,
) -> ThroughputResult {
    let secs = elapsed.as_secs_f64().max(1e-9);
    ThroughputResult {
        workload,
        tier,
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
