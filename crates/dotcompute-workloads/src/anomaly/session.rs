//! The detector fed batch by batch, in any [`Mode`], for streams whose end
//! is not known in advance (standard input, `tail -f`) and whose length may
//! exceed memory.
//!
//! A [`Session`] owns the detector: a [`Detector`] on the calling thread
//! (cpu, batch), or a ring kernel holding the state (actor modes, GPU) with
//! up to `pipeline_depth` batches in flight. [`Session::push`] hands it a
//! batch and reports every anomaly of the batches that complete meanwhile;
//! [`Session::drain`] waits for those still in flight, so a caller that is
//! about to wait for more input can report everything found so far first.
//! [`run_stream`] drives a session over a [`StreamSource`] and hands each
//! anomaly to an [`AnomalySink`] as it is found.
//!
//! Invariants: anomalies are reported in stream order, each once; memory is
//! bounded by the batches in flight (`pipeline_depth × batch_size` points)
//! and a latency histogram, whatever the stream's length; the answers are
//! those of [`detect`](super::detect) on the same values (the same
//! [`Detector::update`], the same order).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::actor::{async_kernel_spec, spin_kernel_spec, thread_kernel_spec, AnomalyBatch, AnomalyBatchResult};
use super::gpu::{BlockVerdict, GpuDevice, PointBlock, POINTS_PER_MESSAGE};
use super::stream::{LabeledStream, ValueReader};
use super::{
    Anomaly, AnomalyError, AnomalyOptions, AnomalyReport, DetectOptions, Detector, DetectorConfig, DetectorParams,
    DetectorState, LatencyStats, Mode, Quality, StreamSource,
};
use crate::limits::{try_vec, MemoryLimit};
use dotcompute::gpu::{Envelope, GpuMessage};
use dotcompute::runtime::{KernelHandle, RingKernelRuntime};

/// Where the detector runs.
enum Engine {
    Local(Detector),
    Kernel {
        rt: RingKernelRuntime,
        handle: KernelHandle<AnomalyBatch, AnomalyBatchResult>,
        /// Sent at, batch id, the values (to report an anomaly's value).
        in_flight: VecDeque<(Instant, u64)>,
    },
    Gpu {
        rt: RingKernelRuntime,
        handle: KernelHandle<Envelope<PointBlock>, Envelope<BlockVerdict>>,
        in_flight: VecDeque<(Instant, Vec<PointBlock>)>,
    },
}

/// A detector in one [`Mode`], fed batch by batch (see the module docs).
pub struct Session {
    engine: Engine,
    depth: usize,
    next_batch: u64,
    next_index: u64,
    state: DetectorState,
    latency: Histogram<u64>,
    busy: Duration,
}

impl Session {
    /// Starts a detector with `config` in `options.mode` (a kernel in a fresh
    /// runtime for the actor and GPU modes; the GPU mode runs on `device`).
    pub async fn start(
        config: DetectorConfig,
        options: &DetectOptions,
        device: GpuDevice,
    ) -> Result<Self, AnomalyError> {
        options.validate()?;
        let params = DetectorParams::new(config)?;
        let id = "anomaly-detector";
        let engine = match options.mode {
            Mode::Cpu | Mode::Batch => Engine::Local(Detector::with_state(params, DetectorState::default())),
            Mode::Gpu => {
                let spec = super::gpu::kernel_spec(id, config, &device)?;
                let rt = RingKernelRuntime::new();
                let handle = match launch(&rt, spec, id) {
                    Ok(()) => rt.handle(id)?,
                    Err(e) => {
                        rt.shutdown().await;
                        return Err(e);
                    }
                };
                Engine::Gpu {
                    rt,
                    handle,
                    in_flight: VecDeque::new(),
                }
            }
            Mode::Wgpu => {
                return Err(AnomalyError::InvalidOption {
                    parameter: "mode",
                    value: "wgpu".into(),
                    reason: "the wgpu detector is not streamed yet: run it on a loaded stream (anomaly::run)".into(),
                })
            }
            mode => {
                let spec = match mode {
                    Mode::Actor => async_kernel_spec(id, config)?,
                    Mode::ActorThread => thread_kernel_spec(id, config)?,
                    _ => spin_kernel_spec(id, config)?,
                };
                let rt = RingKernelRuntime::new();
                let handle = match launch(&rt, spec, id) {
                    Ok(()) => rt.handle(id)?,
                    Err(e) => {
                        rt.shutdown().await;
                        return Err(e);
                    }
                };
                Engine::Kernel {
                    rt,
                    handle,
                    in_flight: VecDeque::new(),
                }
            }
        };
        Ok(Session {
            engine,
            depth: options
                .pipeline_depth
                .clamp(1, dotcompute::runtime::config::DEFAULT_QUEUE_SIZE),
            next_batch: 0,
            next_index: 0,
            state: DetectorState::default(),
            latency: new_histogram(),
            busy: Duration::ZERO,
        })
    }

    /// Hands `values` (the next points of the stream) to the detector and
    /// reports the anomalies of every batch completed meanwhile, in order.
    pub async fn push(&mut self, values: &[f64], found: &mut dyn FnMut(&Anomaly)) -> Result<(), AnomalyError> {
        if values.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let out = self.push_inner(values, found).await;
        self.busy += start.elapsed();
        out
    }

    async fn push_inner(&mut self, values: &[f64], found: &mut dyn FnMut(&Anomaly)) -> Result<(), AnomalyError> {
        let full = match &self.engine {
            Engine::Local(_) => false,
            Engine::Kernel { in_flight, .. } => in_flight.len() >= self.depth,
            Engine::Gpu { in_flight, .. } => in_flight.len() >= self.depth,
        };
        if full {
            self.receive_one(found).await?;
        }
        let batch_id = self.next_batch;
        let first_index = self.next_index;
        self.next_batch += 1;
        self.next_index += values.len() as u64;
        match &mut self.engine {
            Engine::Local(d) => {
                let t = Instant::now();
                for &x in values {
                    if let Some(a) = d.update(x) {
                        found(&a);
                    }
                }
                self.state = d.state();
                record(&mut self.latency, t.elapsed());
            }
            Engine::Kernel { handle, in_flight, .. } => {
                handle
                    .send(AnomalyBatch::new(batch_id, first_index, values.to_vec()))
                    .await
                    .map_err(dotcompute::Error::from)?;
                in_flight.push_back((Instant::now(), batch_id));
            }
            Engine::Gpu { handle, in_flight, .. } => {
                let blocks: Vec<PointBlock> = values
                    .chunks(POINTS_PER_MESSAGE)
                    .enumerate()
                    .map(|(i, c)| {
                        let mut b = PointBlock::zeroed();
                        b.first_index = first_index + (i * POINTS_PER_MESSAGE) as u64;
                        b.len = c.len() as u32;
                        b.values[..c.len()].copy_from_slice(c);
                        b
                    })
                    .collect();
                handle
                    .send_batch(blocks.iter().map(|b| Envelope::new(*b)).collect())
                    .await
                    .map_err(dotcompute::Error::from)?;
                in_flight.push_back((Instant::now(), blocks));
            }
        }
        Ok(())
    }

    /// Waits for the oldest batch in flight and reports its anomalies.
    async fn receive_one(&mut self, found: &mut dyn FnMut(&Anomaly)) -> Result<(), AnomalyError> {
        match &mut self.engine {
            Engine::Local(_) => Ok(()),
            Engine::Kernel { handle, in_flight, .. } => {
                let Some((sent, expected)) = in_flight.pop_front() else {
                    return Ok(());
                };
                let result = handle.receive().await?;
                record(&mut self.latency, sent.elapsed());
                if let Some(reason) = result.error {
                    return Err(AnomalyError::Kernel {
                        batch_id: result.batch_id,
                        reason,
                    });
                }
                if result.batch_id != expected {
                    return Err(AnomalyError::Kernel {
                        batch_id: result.batch_id,
                        reason: format!("result arrived out of order (expected batch {expected})"),
                    });
                }
                result.anomalies.iter().for_each(&mut *found);
                self.state = result.state;
                Ok(())
            }
            Engine::Gpu { handle, in_flight, .. } => {
                let Some((sent, blocks)) = in_flight.pop_front() else {
                    return Ok(());
                };
                let mut replies = Vec::with_capacity(blocks.len());
                let mut have = 0;
                while have < blocks.len() {
                    have += handle.receive_batch(blocks.len() - have, &mut replies).await?;
                }
                record(&mut self.latency, sent.elapsed());
                for (r, block) in replies.iter().zip(&blocks) {
                    let v = &r.payload;
                    if v.first_index != block.first_index || v.len != block.len {
                        return Err(AnomalyError::Kernel {
                            batch_id: block.first_index / POINTS_PER_MESSAGE as u64,
                            reason: format!(
                                "verdict for points {}+{} where {}+{} was expected (refused or out of order)",
                                v.first_index, v.len, block.first_index, block.len
                            ),
                        });
                    }
                    for k in 0..v.len as usize {
                        if v.flagged & (1 << k) != 0 {
                            found(&Anomaly {
                                index: v.first_index + k as u64,
                                value: block.values[k],
                                score: v.scores[k],
                            });
                        }
                    }
                    self.state = DetectorState {
                        mean: v.mean,
                        var: v.var,
                        seen: v.seen,
                    };
                }
                Ok(())
            }
        }
    }

    /// Waits for every batch in flight and reports their anomalies.
    pub async fn drain(&mut self, found: &mut dyn FnMut(&Anomaly)) -> Result<(), AnomalyError> {
        let start = Instant::now();
        loop {
            let pending = match &self.engine {
                Engine::Local(_) => 0,
                Engine::Kernel { in_flight, .. } => in_flight.len(),
                Engine::Gpu { in_flight, .. } => in_flight.len(),
            };
            if pending == 0 {
                break;
            }
            if let Err(e) = self.receive_one(found).await {
                self.busy += start.elapsed();
                return Err(e);
            }
        }
        self.busy += start.elapsed();
        Ok(())
    }

    /// The detector's state after the batches completed so far.
    pub fn state(&self) -> DetectorState {
        self.state
    }

    /// Batch latency so far (from the histogram: three significant digits).
    pub fn latency(&self) -> LatencyStats {
        let h = &self.latency;
        if h.is_empty() {
            return LatencyStats::of(&[]);
        }
        let us = |ns: u64| ns as f64 / 1e3;
        LatencyStats {
            batches: h.len(),
            mean_us: h.mean() / 1e3,
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            max_us: us(h.max()),
        }
    }

    /// Time spent in [`push`](Self::push) and [`drain`](Self::drain).
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// Stops the kernel, if any.
    pub async fn close(self) {
        match self.engine {
            Engine::Local(_) => {}
            Engine::Kernel { rt, .. } | Engine::Gpu { rt, .. } => {
                rt.shutdown().await;
            }
        }
    }
}

fn launch(rt: &RingKernelRuntime, spec: dotcompute::KernelSpec, id: &str) -> Result<(), AnomalyError> {
    rt.launch_spec(spec)?;
    rt.activate(id)?;
    Ok(())
}

fn new_histogram() -> Histogram<u64> {
    // Nanoseconds, 3 significant digits (the queues' wait histogram).
    dotcompute::telemetry::new_latency_histogram()
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos())
        .unwrap_or(u64::MAX)
        .clamp(1, dotcompute::telemetry::MAX_RECORDED_NS);
    // `record` grows the histogram (auto-resize); `saturating_record` alone
    // would clamp to its current range.
    if h.record(ns).is_err() {
        h.saturating_record(ns);
    }
}

/// Where [`run_stream`] reports what it finds. `E` is the caller's error
/// type (a write error, say); the run's own errors convert into it.
pub trait AnomalySink<E> {
    /// One anomaly, as soon as it is found (in stream order).
    fn anomaly(&mut self, a: &Anomaly) -> Result<(), E>;
    /// The input is about to be waited for: make what was reported visible
    /// (flush). Also called at the end.
    fn flush(&mut self) -> Result<(), E>;
    /// Whether to stop reading (the reader of the output is gone).
    fn stopped(&self) -> bool {
        false
    }
}

/// Bytes per point that generating the synthetic stream needs (values,
/// float32 work array, labels, numpy's index permutation).
pub const SYNTHETIC_BYTES_PER_POINT: u64 = 40;

/// Runs the detector over `options.source` as it is read, handing each
/// anomaly to `sink` when it is found (and flushing whenever the input has
/// to be waited for), in memory bounded by the batches in flight. Returns
/// the report; [`AnomalyReport::first`] holds the first `options.list`
/// anomalies. The stream may be longer than memory (standard input).
///
/// The synthetic source is generated in memory first (after a check of
/// its size against `limit`); files and standard input are read in
/// batches of `options.detect.batch_size` points, a batch cut short when
/// the input has to be waited for.
///
/// Builds its own tokio runtime for the actor and GPU modes (so: not from
/// inside one).
pub fn run_stream<E, S>(options: &AnomalyOptions, limit: MemoryLimit, sink: &mut S) -> Result<AnomalyReport, E>
where
    E: From<AnomalyError>,
    S: AnomalySink<E>,
{
    DetectorParams::new(options.detector)?;
    options.detect.validate()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(AnomalyError::InsideAsyncRuntime {
            mode: options.detect.mode,
        }
        .into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AnomalyError::TokioRuntime(e.to_string()))?;
    let out = rt.block_on(stream_async(options, limit, sink));
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

async fn stream_async<E, S>(options: &AnomalyOptions, limit: MemoryLimit, sink: &mut S) -> Result<AnomalyReport, E>
where
    E: From<AnomalyError>,
    S: AnomalySink<E>,
{
    let batch = options.detect.batch_size;
    let device = GpuDevice::Cuda(dotcompute::gpu::CudaRingOptions::default());
    let mut session = Session::start(options.detector, &options.detect, device).await?;
    let mut tally = Tally::new(options.list);
    let outcome = feed(options, limit, &mut session, &mut tally, sink, batch).await;
    let state = session.state();
    let latency = session.latency();
    let busy = session.busy();
    session.close().await;
    let (points, load_seconds, labels) = outcome?;
    let seconds = busy.as_secs_f64();
    Ok(AnomalyReport {
        source: options.source.describe(),
        mode: options.detect.mode.name(),
        detector: options.detector,
        points,
        batch_size: batch,
        pipeline_depth: options.detect.pipeline_depth,
        anomalies: tally.count,
        load_seconds,
        seconds,
        points_per_second: points as f64 / seconds.max(f64::MIN_POSITIVE),
        batch_latency: latency,
        quality: labels.map(|labels| tally.quality(&labels)),
        first: tally.first,
        final_state: state,
    })
}

/// What the sink does not keep: the count, the first few, the true positives.
struct Tally {
    count: u64,
    list: usize,
    first: Vec<Anomaly>,
    /// Indices of the anomalies, kept only for labelled input.
    indices: Option<Vec<u64>>,
}

impl Tally {
    fn new(list: usize) -> Self {
        Tally {
            count: 0,
            list,
            first: Vec::new(),
            indices: None,
        }
    }

    fn quality(&self, labels: &[bool]) -> Quality {
        let found: Vec<Anomaly> = self
            .indices
            .iter()
            .flatten()
            .map(|&index| Anomaly {
                index,
                value: 0.0,
                score: 0.0,
            })
            .collect();
        super::quality(&found, labels)
    }
}

/// Reads the source into `session`; returns the points, the seconds spent
/// reading (or generating), and the labels of a synthetic stream.
async fn feed<E, S>(
    options: &AnomalyOptions,
    limit: MemoryLimit,
    session: &mut Session,
    tally: &mut Tally,
    sink: &mut S,
    batch: usize,
) -> Result<(u64, f64, Option<Vec<bool>>), E>
where
    E: From<AnomalyError>,
    S: AnomalySink<E>,
{
    let mut failed: Option<E> = None;
    let mut report = |a: &Anomaly, tally: &mut Tally, sink: &mut S, failed: &mut Option<E>| {
        tally.count += 1;
        if tally.first.len() < tally.list {
            tally.first.push(*a);
        }
        if let Some(ix) = tally.indices.as_mut() {
            ix.push(a.index);
        }
        if failed.is_none() {
            if let Err(e) = sink.anomaly(a) {
                *failed = Some(e);
            }
        }
    };
    macro_rules! step {
        ($call:expr) => {{
            let r = $call;
            if let Some(e) = failed.take() {
                return Err(e);
            }
            r?;
        }};
    }
    match &options.source {
        StreamSource::Synthetic(spec) => {
            let start = Instant::now();
            limit
                .check(
                    format!("the synthetic stream of {} points", spec.points),
                    (spec.points as u64).saturating_mul(SYNTHETIC_BYTES_PER_POINT),
                )
                .map_err(AnomalyError::from)?;
            let LabeledStream { values, labels, .. } = spec.generate()?;
            let load_seconds = start.elapsed().as_secs_f64();
            tally.indices = Some(Vec::new());
            for chunk in values.chunks(batch) {
                if sink.stopped() {
                    break;
                }
                step!(session.push(chunk, &mut |a| report(a, tally, sink, &mut failed)).await);
            }
            step!(session.drain(&mut |a| report(a, tally, sink, &mut failed)).await);
            sink.flush()?;
            Ok((session.next_index, load_seconds, Some(labels)))
        }
        StreamSource::File { path, column } => {
            let input = path.display().to_string();
            let file = std::fs::File::open(path).map_err(|source| AnomalyError::Io {
                input: input.clone(),
                source,
            })?;
            let reader = ValueReader::new(std::io::BufReader::with_capacity(1 << 20, file), *column, &input);
            read_through(reader, session, tally, sink, batch, &mut report).await
        }
        StreamSource::Stdin { column } => {
            let stdin = std::io::stdin();
            let reader = ValueReader::new(
                std::io::BufReader::with_capacity(1 << 16, stdin.lock()),
                *column,
                "<stdin>",
            );
            read_through(reader, session, tally, sink, batch, &mut report).await
        }
    }
}

type Report<'a, S, E> = dyn FnMut(&Anomaly, &mut Tally, &mut S, &mut Option<E>) + 'a;

async fn read_through<R, E, S>(
    mut reader: ValueReader<R>,
    session: &mut Session,
    tally: &mut Tally,
    sink: &mut S,
    batch: usize,
    report: &mut Report<'_, S, E>,
) -> Result<(u64, f64, Option<Vec<bool>>), E>
where
    R: std::io::BufRead,
    E: From<AnomalyError>,
    S: AnomalySink<E>,
{
    let mut values = try_vec(batch.min(1 << 20), 0.0f64, "the batch").map_err(AnomalyError::from)?;
    let mut reading = Duration::ZERO;
    let mut failed: Option<E> = None;
    loop {
        if sink.stopped() {
            break;
        }
        // About to wait for input: first report everything found so far.
        if reader.drained() {
            session.drain(&mut |a| report(a, tally, sink, &mut failed)).await?;
            if let Some(e) = failed.take() {
                return Err(e);
            }
            sink.flush()?;
        }
        values.clear();
        let t = Instant::now();
        let more = reader.next_batch(batch, &mut values)?;
        reading += t.elapsed();
        session
            .push(&values, &mut |a| report(a, tally, sink, &mut failed))
            .await?;
        if let Some(e) = failed.take() {
            return Err(e);
        }
        if !more {
            break;
        }
    }
    session.drain(&mut |a| report(a, tally, sink, &mut failed)).await?;
    if let Some(e) = failed.take() {
        return Err(e);
    }
    sink.flush()?;
    Ok((session.next_index, reading.as_secs_f64(), None))
}
