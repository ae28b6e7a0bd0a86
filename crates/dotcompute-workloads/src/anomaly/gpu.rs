//! The anomaly detector as a GPU ring kernel: the detector's state lives in
//! the kernel's state buffer on the device and persists across messages;
//! each message carries up to [`POINTS_PER_MESSAGE`] consecutive points and
//! each reply says which were flagged, with every point's score.
//!
//! The CUDA C handler ([`DETECTOR_CU`]) computes [`Detector::update`]'s
//! formulas in the same order with explicitly rounded double-precision
//! operations (`__dsub_rn`, `__dmul_rn`, `__dsqrt_rn`, ...) and the exact
//! `fmin` for the outlier clip's saturations, so no contraction into
//! fused multiply-adds can change a result: on the same
//! stream it flags the same points with the same scores and ends in the same
//! state as the CPU modes, bit for bit. Its Rust twin ([`detector_twin`])
//! calls [`Detector::score`] (the formulas every mode uses) and runs on the
//! emulated device.
//!
//! Where this is verified: the emulated kernel against the CPU modes in the
//! tests (bit for bit), the CUDA handler compiled with NVRTC in the tests;
//! the CUDA kernel itself only on a machine with an NVIDIA GPU (not yet).
//!
//! Invariant: a block whose `first_index` is not the number of points the
//! state has seen is refused (handler error 1, state untouched), so a lost
//! or reordered message cannot silently corrupt the detector.

use std::time::Instant;

use super::LatencyStats;
use super::{Anomaly, AnomalyError, DetectOptions, Detection, Detector, DetectorConfig, DetectorParams, DetectorState};
use dotcompute::gpu::source::{CudaHandler, Threading};
use dotcompute::gpu::{
    emulated_kernel_with_state, gpu_kernel, CudaRingOptions, Envelope, GpuKernelOptions, GpuMessage,
};
use dotcompute::runtime::spec::KernelSpec;
use dotcompute::RingKernelRuntime;

/// Points per message.
pub const POINTS_PER_MESSAGE: usize = 32;

/// Up to [`POINTS_PER_MESSAGE`] consecutive points of the stream.
#[derive(Debug, Clone, Copy, PartialEq, dotcompute::gpu::GpuMessage)]
#[repr(C)]
#[gpu_message(cuda_name = "DcPointBlock")]
pub struct PointBlock {
    /// Stream index of `values[0]`.
    pub first_index: u64,
    /// Points used (1..=32).
    pub len: u32,
    /// Zero.
    pub reserved: u32,
    /// The points.
    pub values: [f64; POINTS_PER_MESSAGE],
}

/// The verdict on one [`PointBlock`], and the detector's state after it.
#[derive(Debug, Clone, Copy, PartialEq, dotcompute::gpu::GpuMessage)]
#[repr(C)]
#[gpu_message(cuda_name = "DcBlockVerdict")]
pub struct BlockVerdict {
    /// The block's `first_index`.
    pub first_index: u64,
    /// Points seen after the block.
    pub seen: u64,
    /// Moving mean after the block.
    pub mean: f64,
    /// Moving variance after the block.
    pub var: f64,
    /// Points judged.
    pub len: u32,
    /// Bit `k` set: point `k` is an anomaly.
    pub flagged: u32,
    /// Every point's score `|δ| / sqrt(var + ε)`.
    pub scores: [f64; POINTS_PER_MESSAGE],
}

/// The detector on the device: parameters and state.
#[derive(Debug, Clone, Copy, PartialEq, dotcompute::gpu::GpuMessage)]
#[repr(C)]
#[gpu_message(cuda_name = "DcDetectorState")]
pub struct GpuDetectorState {
    /// α = 2 / (W + 1).
    pub alpha: f64,
    /// 1 − α.
    pub one_minus_alpha: f64,
    /// Z.
    pub threshold: f64,
    /// ε.
    pub epsilon: f64,
    /// The outlier clip B.
    pub clip: f64,
    /// B² (computed once on the host, so every backend uses the same value).
    pub clip_sq: f64,
    /// Moving mean.
    pub mean: f64,
    /// Moving variance.
    pub var: f64,
    /// Points seen.
    pub seen: u64,
}

impl GpuDetectorState {
    /// A fresh detector with `params`.
    pub fn new(params: &DetectorParams) -> Self {
        let s = DetectorState::default();
        GpuDetectorState {
            alpha: params.alpha,
            one_minus_alpha: params.one_minus_alpha,
            threshold: params.config.threshold,
            epsilon: params.config.epsilon,
            clip: params.config.clip,
            clip_sq: params.clip_sq,
            mean: s.mean,
            var: s.var,
            seen: s.seen,
        }
    }
}

/// The CUDA C handler (see the module docs).
pub const DETECTOR_CU: &str = r#"
// dotcompute anomaly detector: Detector::score, operation for operation,
// explicitly rounded so the result does not depend on --fmad (fmin/fmax
// are exact, and return the other operand for an infinity as Rust's do).
#define DC_DBL_MAX 1.7976931348623157e+308
__device__ int dc_anomaly_detect(const DcPointBlock* in, DcBlockVerdict* out, DcDetectorState* s) {
    out->first_index = in->first_index;
    if (in->first_index != s->seen || in->len == 0 || in->len > 32) {
        out->len = 0;
        out->seen = s->seen;
        out->mean = s->mean;
        out->var = s->var;
        return 1;
    }
    unsigned int flagged = 0;
    for (unsigned int k = 0; k < 32; ++k) {
        double score = 0.0;
        if (k < in->len) {
            const double x = in->values[k];
            const double delta = __dsub_rn(x, s->mean);  // +-inf only for opposite extremes
            const double spread = __dadd_rn(s->var, s->epsilon);
            double folded = delta;
            if (__dmul_rn(delta, delta) > __dmul_rn(s->clip_sq, spread) || !isfinite(delta)) {
                // Winsorise: fold the outlier in as B standard deviations.
                const double bound = spread > 0.0
                    ? fmin(fmin(__dmul_rn(s->clip, __dsqrt_rn(spread)), fabs(delta)), DC_DBL_MAX)
                    : fmin(fabs(delta), DC_DBL_MAX);
                folded = delta < 0.0 ? -bound : bound;
            }
            s->mean = __dadd_rn(s->mean, __dmul_rn(s->alpha, folded));
            s->var = __dmul_rn(s->one_minus_alpha,
                               fmin(__dadd_rn(s->var, __dmul_rn(__dmul_rn(s->alpha, folded), folded)), DC_DBL_MAX));
            s->seen += 1;
            if (delta != 0.0) {
                score = fmin(__ddiv_rn(fabs(delta), __dsqrt_rn(__dadd_rn(s->var, s->epsilon))), DC_DBL_MAX);
            }
            if (score > s->threshold) flagged |= 1u << k;
        }
        out->scores[k] = score;
    }
    out->len = in->len;
    out->flagged = flagged;
    out->seen = s->seen;
    out->mean = s->mean;
    out->var = s->var;
    return 0;
}
"#;

/// The CUDA handler of the detector (serial: the state is updated in order).
pub fn detector_cuda() -> CudaHandler {
    CudaHandler::new(DETECTOR_CU, "dc_anomaly_detect", Threading::Serial)
}

/// The Rust twin of [`DETECTOR_CU`], for the emulated device: the same
/// verdicts, through [`Detector::score`] (what [`Detector::update`] uses).
///
/// # Errors
///
/// Code 1 when the block is out of order or has a bad length.
pub fn detector_twin(
    input: &PointBlock,
    out: &mut BlockVerdict,
    s: &mut GpuDetectorState,
) -> Result<(), std::num::NonZeroU32> {
    out.first_index = input.first_index;
    let len = input.len as usize;
    if input.first_index != s.seen || len == 0 || len > POINTS_PER_MESSAGE {
        out.len = 0;
        (out.seen, out.mean, out.var) = (s.seen, s.mean, s.var);
        return Err(std::num::NonZeroU32::MIN);
    }
    let params = DetectorParams {
        config: DetectorConfig {
            threshold: s.threshold,
            epsilon: s.epsilon,
            clip: s.clip,
            ..DetectorConfig::default()
        },
        alpha: s.alpha,
        one_minus_alpha: s.one_minus_alpha,
        clip_sq: s.clip_sq,
    };
    let mut d = Detector::with_state(
        params,
        DetectorState {
            mean: s.mean,
            var: s.var,
            seen: s.seen,
        },
    );
    let mut flagged = 0u32;
    out.scores = [0.0; POINTS_PER_MESSAGE];
    for (k, &x) in input.values[..len].iter().enumerate() {
        let score = d.score(x);
        if score > s.threshold {
            flagged |= 1 << k;
        }
        out.scores[k] = score;
    }
    let st = d.state();
    (s.mean, s.var, s.seen) = (st.mean, st.var, st.seen);
    (out.len, out.flagged, out.seen, out.mean, out.var) = (input.len, flagged, st.seen, st.mean, st.var);
    Ok(())
}

/// Where the GPU detector kernel runs.
#[derive(Debug, Clone)]
pub enum GpuDevice {
    /// A persistent CUDA kernel (needs an NVIDIA GPU).
    Cuda(CudaRingOptions),
    /// The emulated device (a host thread, same protocol): for machines
    /// without a GPU and for tests. Not a GPU.
    Emulated,
}

/// A runtime kernel spec of the detector on `device`: `Envelope<PointBlock>`
/// in, `Envelope<BlockVerdict>` out.
///
/// # Errors
///
/// [`AnomalyError::InvalidOption`] for a bad config; [`AnomalyError::Runtime`]
/// with the GPU's reason (no CUDA device, NVRTC, ...).
pub fn kernel_spec(id: &str, config: DetectorConfig, device: &GpuDevice) -> Result<KernelSpec, AnomalyError> {
    let params = DetectorParams::new(config)?;
    let state = GpuDetectorState::new(&params);
    let options = GpuKernelOptions::default();
    let spec = match device {
        GpuDevice::Cuda(cuda) => gpu_kernel::<PointBlock, BlockVerdict, GpuDetectorState>(
            id,
            detector_cuda(),
            state,
            GpuKernelOptions {
                cuda: cuda.clone(),
                ..options
            },
        )?,
        GpuDevice::Emulated => emulated_kernel_with_state::<PointBlock, BlockVerdict, GpuDetectorState, _, _>(
            id,
            detector_twin,
            state,
            options,
        )?,
    };
    Ok(spec)
}

/// The blocks of `values`, [`POINTS_PER_MESSAGE`] points each.
pub fn blocks(values: &[f64]) -> Vec<PointBlock> {
    values
        .chunks(POINTS_PER_MESSAGE)
        .enumerate()
        .map(|(i, c)| {
            let mut b = PointBlock::zeroed();
            b.first_index = (i * POINTS_PER_MESSAGE) as u64;
            b.len = c.len() as u32;
            b.values[..c.len()].copy_from_slice(c);
            b
        })
        .collect()
}

/// Streams `values` through the detector kernel on `device` in a fresh
/// runtime: micro-batches of `options.batch_size` points (rounded up to
/// whole blocks) sent as one `send_batch`, up to `options.pipeline_depth` in
/// flight; shuts the runtime down afterwards.
///
/// # Errors
///
/// As [`kernel_spec`]; [`AnomalyError::Kernel`] for a refused or
/// mismatched block; runtime errors.
pub async fn detect_on_gpu(
    config: DetectorConfig,
    values: &[f64],
    options: &DetectOptions,
    device: &GpuDevice,
) -> Result<Detection, AnomalyError> {
    options.validate()?;
    let id = "anomaly-gpu";
    let spec = kernel_spec(id, config, device)?;
    let rt = RingKernelRuntime::new();
    let outcome = async {
        rt.launch_spec(spec)?;
        rt.activate(id)?;
        stream_blocks(&rt, id, values, options).await
    }
    .await;
    rt.shutdown().await;
    outcome
}

pub(crate) async fn stream_blocks(
    rt: &RingKernelRuntime,
    id: &str,
    values: &[f64],
    options: &DetectOptions,
) -> Result<Detection, AnomalyError> {
    let handle = rt.handle::<Envelope<PointBlock>, Envelope<BlockVerdict>>(id)?;
    let all = blocks(values);
    let per_batch = options.batch_size.div_ceil(POINTS_PER_MESSAGE).max(1);
    let batches: Vec<&[PointBlock]> = all.chunks(per_batch).collect();
    let depth = options.pipeline_depth.max(1);
    let mut sent_at = std::collections::VecDeque::with_capacity(depth);
    let mut latencies = Vec::with_capacity(batches.len());
    let mut anomalies = Vec::new();
    let mut state = DetectorState::default();
    let (mut next, mut got_blocks, mut done_batches) = (0usize, 0usize, 0usize);
    let mut replies = Vec::with_capacity(per_batch);
    let start = Instant::now();
    while done_batches < batches.len() {
        while next < batches.len() && sent_at.len() < depth {
            handle
                .send_batch(batches[next].iter().map(|b| Envelope::new(*b)).collect())
                .await
                .map_err(dotcompute::Error::from)?;
            sent_at.push_back((Instant::now(), batches[next].len()));
            next += 1;
        }
        let Some(&(t, n)) = sent_at.front() else { break };
        let mut have = 0;
        while have < n {
            replies.clear();
            have += handle.receive_batch(n - have, &mut replies).await?;
            for r in &replies {
                let v = &r.payload;
                let block = &all[got_blocks];
                if v.first_index != block.first_index || v.len != block.len {
                    return Err(AnomalyError::Kernel {
                        batch_id: got_blocks as u64,
                        reason: format!(
                            "verdict for points {}+{} where {}+{} was expected (refused or out of order)",
                            v.first_index, v.len, block.first_index, block.len
                        ),
                    });
                }
                for k in 0..v.len as usize {
                    if v.flagged & (1 << k) != 0 {
                        anomalies.push(Anomaly {
                            index: v.first_index + k as u64,
                            value: block.values[k],
                            score: v.scores[k],
                        });
                    }
                }
                state = DetectorState {
                    mean: v.mean,
                    var: v.var,
                    seen: v.seen,
                };
                got_blocks += 1;
            }
        }
        sent_at.pop_front();
        latencies.push(t.elapsed());
        done_batches += 1;
    }
    Ok(Detection {
        anomalies,
        final_state: state,
        seconds: start.elapsed().as_secs_f64(),
        batch_latency: LatencyStats::of(&latencies),
    })
}
