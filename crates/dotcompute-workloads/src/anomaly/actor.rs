//! The anomaly detector as a ring kernel holding its state across messages.
//!
//! The host sends [`AnomalyBatch`]es (a batch id, the stream index of its
//! first point, and the values); the kernel runs [`detect_batch`] from the
//! state it holds and answers each batch with one [`AnomalyBatchResult`]
//! (the anomalies, the state after the batch). Three tiers run the same
//! [`DetectorKernel`]:
//! - [`async_kernel_spec`]: an async handler on the tokio workers;
//! - [`thread_kernel_spec`]: a blocking handler on its own OS thread
//!   ([`ExecutionMode::Thread`]);
//! - [`spin_kernel_spec`]: the same blocking handler on its own OS thread
//!   polling wait-free SPSC rings ([`ExecutionMode::Spin`]).
//!
//! Invariants:
//! - the kernel processes batches in stream order: a batch whose first index
//!   is not the number of points seen so far is refused (the result carries
//!   an error and the state is unchanged), so a lost or reordered batch can
//!   never silently shift the detector;
//! - the results of a kernel come back in the order of its batches (one
//!   kernel, FIFO queues), which [`detect_with_kernel`] checks while keeping
//!   up to `pipeline_depth` batches in flight.
//!
//! ```
//! use dotcompute_workloads::anomaly::actor::{async_kernel_spec, AnomalyBatch, AnomalyBatchResult};
//! use dotcompute_workloads::anomaly::DetectorConfig;
//! use dotcompute::RingKernelRuntime;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let rt = RingKernelRuntime::new();
//! rt.launch_spec(async_kernel_spec("detector", DetectorConfig::default()).unwrap()).unwrap();
//! rt.activate("detector").unwrap();
//! let r: AnomalyBatchResult = rt.call("detector", AnomalyBatch::new(0, 0, vec![0.0, 0.1, 25.0])).await.unwrap();
//! assert_eq!(r.anomalies.len(), 1);
//! assert_eq!(r.anomalies[0].index, 2);
//! assert_eq!(r.state.seen, 3);
//! rt.shutdown().await;
//! # });
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use super::{
    detect_batch, Anomaly, AnomalyError, DetectOptions, Detection, DetectorConfig, DetectorParams, DetectorState,
    LatencyStats, Mode,
};
use dotcompute::message::MessageHeader;
use dotcompute::runtime::config::ExecutionMode;
use dotcompute::runtime::context::{BlockingContext, KernelContext};
use dotcompute::runtime::spec::KernelSpec;
use dotcompute::runtime::RingKernelRuntime;

/// A micro-batch of the stream. Serializable, so the batch can cross a
/// process or network boundary in the wire [`codec`](dotcompute::codec).
#[derive(Debug, Clone, dotcompute::Message, serde::Serialize, serde::Deserialize)]
pub struct AnomalyBatch {
    /// The batch's sequence number.
    pub batch_id: u64,
    /// Stream index of `values[0]`.
    pub first_index: u64,
    /// The points.
    pub values: Vec<f64>,
    /// Message header.
    pub header: MessageHeader,
}

impl AnomalyBatch {
    /// A batch with a fresh header.
    pub fn new(batch_id: u64, first_index: u64, values: Vec<f64>) -> Self {
        AnomalyBatch {
            batch_id,
            first_index,
            values,
            header: MessageHeader::new(),
        }
    }
}

/// The kernel's answer to one batch, correlated to it (serializable too).
#[derive(Debug, Clone, dotcompute::Message, serde::Serialize, serde::Deserialize)]
pub struct AnomalyBatchResult {
    /// The batch answered.
    pub batch_id: u64,
    /// Anomalies in the batch (stream indices).
    pub anomalies: Vec<Anomaly>,
    /// The detector's state after the batch (unchanged if refused).
    pub state: DetectorState,
    /// Why the batch was refused, if it was.
    pub error: Option<String>,
    /// Message header.
    pub header: MessageHeader,
}

/// The state a detector kernel holds, and its per-batch step.
#[derive(Debug, Clone, Copy)]
pub struct DetectorKernel {
    params: DetectorParams,
    state: DetectorState,
}

impl DetectorKernel {
    /// A fresh detector.
    pub fn new(params: DetectorParams) -> Self {
        DetectorKernel {
            params,
            state: DetectorState::default(),
        }
    }

    /// Processes one batch (see the module invariants).
    pub fn process(&mut self, batch: &AnomalyBatch) -> AnomalyBatchResult {
        let header = MessageHeader::reply_to(&batch.header);
        if batch.first_index != self.state.seen {
            return AnomalyBatchResult {
                batch_id: batch.batch_id,
                anomalies: Vec::new(),
                state: self.state,
                error: Some(format!(
                    "out of order: the batch starts at index {}, the detector has seen {} points",
                    batch.first_index, self.state.seen
                )),
                header,
            };
        }
        let mut anomalies = Vec::new();
        self.state = detect_batch(&self.params, self.state, &batch.values, &mut anomalies);
        AnomalyBatchResult {
            batch_id: batch.batch_id,
            anomalies,
            state: self.state,
            error: None,
            header,
        }
    }
}

/// The async-tier detector kernel `id`.
pub fn async_kernel_spec(id: &str, config: DetectorConfig) -> Result<KernelSpec, AnomalyError> {
    let params = DetectorParams::new(config)?;
    Ok(KernelSpec::builder::<AnomalyBatch, AnomalyBatchResult>(id)
        .handler(move |ctx| async_detector(ctx, params))
        .build()?)
}

async fn async_detector(
    mut ctx: KernelContext<AnomalyBatch, AnomalyBatchResult>,
    params: DetectorParams,
) -> dotcompute::Result<()> {
    let mut kernel = DetectorKernel::new(params);
    loop {
        let batch = ctx.receive().await?;
        let result = kernel.process(&batch);
        ctx.send(result).await?;
    }
}

/// The thread-tier detector kernel `id` (its own OS thread).
pub fn thread_kernel_spec(id: &str, config: DetectorConfig) -> Result<KernelSpec, AnomalyError> {
    blocking_kernel_spec(id, config, ExecutionMode::Thread)
}

/// The spin-tier detector kernel `id`: its own OS thread polling wait-free
/// rings (spin, then yield, then park). The rings are FIFO and the
/// backpressure is `Block`, as for the other tiers.
pub fn spin_kernel_spec(id: &str, config: DetectorConfig) -> Result<KernelSpec, AnomalyError> {
    blocking_kernel_spec(id, config, ExecutionMode::Spin)
}

/// A blocking-handler detector kernel in `mode` (thread or spin).
fn blocking_kernel_spec(id: &str, config: DetectorConfig, mode: ExecutionMode) -> Result<KernelSpec, AnomalyError> {
    let params = DetectorParams::new(config)?;
    Ok(KernelSpec::builder::<AnomalyBatch, AnomalyBatchResult>(id)
        .mode(mode)
        .blocking_handler(
            move |mut ctx: BlockingContext<AnomalyBatch, AnomalyBatchResult>| -> dotcompute::Result<()> {
                let mut kernel = DetectorKernel::new(params);
                loop {
                    let batch = ctx.receive()?;
                    let result = kernel.process(&batch);
                    ctx.send(result)?;
                }
            },
        )
        .build()?)
}

/// Streams `values` through a detector kernel of the given mode in a fresh
/// runtime, `batch_size` points per message and up to `pipeline_depth`
/// batches in flight; shuts the runtime down afterwards.
pub async fn detect_with_kernel(
    config: DetectorConfig,
    values: &[f64],
    options: &DetectOptions,
) -> Result<Detection, AnomalyError> {
    let id = "anomaly-detector";
    let spec = match options.mode {
        Mode::Actor => async_kernel_spec(id, config)?,
        Mode::ActorThread => thread_kernel_spec(id, config)?,
        Mode::ActorSpin => spin_kernel_spec(id, config)?,
        other => {
            return Err(AnomalyError::InvalidOption {
                parameter: "mode",
                value: other.name().into(),
                reason: "not an actor mode".into(),
            })
        }
    };
    let rt = RingKernelRuntime::new();
    let outcome = async {
        let depth = options
            .pipeline_depth
            .clamp(1, dotcompute::runtime::config::DEFAULT_QUEUE_SIZE);
        rt.launch_spec(spec)?;
        rt.activate(id)?;
        stream_through(&rt, id, values, options.batch_size, depth).await
    }
    .await;
    rt.shutdown().await;
    outcome
}

/// Sends `values` in batches to the detector kernel `id` of `rt`, keeping up
/// to `depth` in flight, and gathers the results in order.
pub async fn stream_through(
    rt: &RingKernelRuntime,
    id: &str,
    values: &[f64],
    batch_size: usize,
    depth: usize,
) -> Result<Detection, AnomalyError> {
    let handle = rt.handle::<AnomalyBatch, AnomalyBatchResult>(id)?;
    let chunks: Vec<&[f64]> = values.chunks(batch_size.max(1)).collect();
    let total = chunks.len();
    let mut latencies = Vec::with_capacity(total);
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(depth);
    let mut anomalies = Vec::new();
    let mut state = DetectorState::default();
    let mut next = 0usize;
    let mut first_index = 0u64;
    let mut received = 0usize;
    let start = Instant::now();
    while received < total {
        while next < total && in_flight.len() < depth.max(1) {
            let chunk = chunks[next];
            handle
                .send(AnomalyBatch::new(next as u64, first_index, chunk.to_vec()))
                .await
                .map_err(dotcompute::Error::from)?;
            in_flight.push_back(Instant::now());
            first_index += chunk.len() as u64;
            next += 1;
        }
        let result = handle.receive().await?;
        let sent = in_flight.pop_front().unwrap_or(start);
        latencies.push(sent.elapsed());
        if let Some(reason) = result.error {
            return Err(AnomalyError::Kernel {
                batch_id: result.batch_id,
                reason,
            });
        }
        if result.batch_id != received as u64 {
            return Err(AnomalyError::Kernel {
                batch_id: result.batch_id,
                reason: format!("result arrived out of order (expected batch {received})"),
            });
        }
        anomalies.extend_from_slice(&result.anomalies);
        state = result.state;
        received += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Detection {
        anomalies,
        final_state: state,
        seconds,
        batch_latency: LatencyStats::of(&latencies),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_blocking_spec_runs_in_its_tier() {
        let config = DetectorConfig::default();
        assert_eq!(
            thread_kernel_spec("t", config).unwrap().config().mode,
            ExecutionMode::Thread
        );
        assert_eq!(
            spin_kernel_spec("s", config).unwrap().config().mode,
            ExecutionMode::Spin
        );
        assert_eq!(
            async_kernel_spec("a", config).unwrap().config().mode,
            ExecutionMode::Async
        );
    }

    #[test]
    fn kernel_refuses_out_of_order_batches_and_keeps_its_state() {
        let params = DetectorParams::new(DetectorConfig::default()).unwrap();
        let mut k = DetectorKernel::new(params);
        let r = k.process(&AnomalyBatch::new(0, 0, vec![1.0, 2.0]));
        assert!(r.error.is_none());
        assert_eq!(r.state.seen, 2);
        let r = k.process(&AnomalyBatch::new(2, 5, vec![1.0]));
        assert!(r.error.unwrap().contains("out of order"));
        assert_eq!(r.state.seen, 2);
        let r = k.process(&AnomalyBatch::new(1, 2, vec![1.0]));
        assert!(r.error.is_none());
        assert_eq!(r.state.seen, 3);
    }
}
