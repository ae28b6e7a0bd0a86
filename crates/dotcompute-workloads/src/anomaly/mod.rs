//! Real-time anomaly detection: one streaming detector, run three ways
//! that compute the same answers.
//!
//! The detector keeps an exponential moving mean and variance with
//! `α = 2 / (W + 1)` for a window (span) `W`, starting from mean 0 and
//! variance 1, and flags a point when its deviation from the mean *before*
//! the update exceeds `Z` standard deviations *after* it:
//!
//! ```text
//! δ  = x − mean                               (±∞ only for opposite extremes)
//! s  = var + ε
//! δc = δ                                      if δ·δ ≤ B²·s and δ is finite
//!      ±min(B·sqrt(s), |δ|, f64::MAX)         otherwise, when s > 0  (the sign of δ)
//!      ±min(|δ|, f64::MAX)                    otherwise, when s = 0
//! mean  ← mean + α·δc
//! var   ← (1 − α)·min(var + α·δc·δc, f64::MAX)
//! score = |δ| / sqrt(var + ε)                 (0 when δ = 0; at most f64::MAX)
//! anomaly  ⇔  score > Z                       (ε = 1e-8, B = 100 by default)
//! ```
//!
//! How an outlier is folded in: a point is always judged by its full
//! deviation `δ`, but a deviation of more than `B` standard deviations (the
//! [`clip`](DetectorConfig::clip), measured with the variance *before* the
//! point) enters the running mean and variance as exactly `B` standard
//! deviations, with its sign (winsorised). So a single extreme value, even
//! `1e300` in a stream of ones, is reported with a huge score and moves the
//! statistics no more than a `B`σ point would: the variance grows by at most
//! the factor `(1 − α)(1 + α·B²)` (×3 for the defaults) and every later
//! anomaly is still seen. The state stays finite whatever finite values
//! arrive: the mean moves toward each point and never past it, and the
//! variance and the scores saturate at `f64::MAX`, which only happens beyond
//! `f64`'s range (a stream whose deviations are themselves near `1e154` or
//! more saturates the variance, and its points keep being flagged).
//! Non-finite input is refused by the readers ([`stream::read_values`]).
//!
//! Below the clip nothing differs from the plain EMA detector below, bit for
//! bit:
//!
//! ```text
//! δ = x − mean
//! mean ← mean + α·δ
//! var  ← (1 − α)·(var + α·δ·δ)
//! anomaly  ⇔  |δ| / sqrt(var + ε) > Z
//! ```
//!
//! These are the formulas, in the same operation order, of PyDotCompute's
//! "CPU Only" detector (`CPUDetector` in `realtime_anomaly_benchmark.py`),
//! evaluated in float64, so on the same data the two flag the same points
//! as long as no deviation exceeds the clip (on PyDotCompute's synthetic
//! stream the largest is 7.6σ with the default window, 18σ with `W = 100`:
//! nothing is clipped there, and the counts below are PyDotCompute's).
//! (PyDotCompute's "Stateless Batch" and "GPU Actors" variants compute
//! different detectors; here the batch and actor modes run this one.)
//!
//! The ways to run it ([`Mode`]):
//! - [`Mode::Cpu`]: [`Detector::update`] point by point;
//! - [`Mode::Batch`]: [`detect_batch`] per micro-batch, stateless: each call
//!   takes the [`DetectorState`] in and gives the new state out;
//! - [`Mode::Actor`] / [`Mode::ActorThread`] / [`Mode::ActorSpin`]: a ring
//!   kernel holding the state (async tier / dedicated-thread tier / spin
//!   tier), batches sent as messages, several in flight ([`actor`]).
//!
//! Invariants: every mode applies the same [`Detector::update`] to the same
//! points in the same order, so anomaly sets, scores and final states are
//! bit-identical across modes and batch sizes (the tests check this; the
//! CUDA handler in [`gpu`] writes the same formulas with explicitly rounded
//! operations); and for any finite input the state (mean, variance) and
//! every score stay finite.
//!
//! ```
//! use dotcompute_workloads::anomaly::{detect_batch, Detector, DetectorConfig, DetectorState};
//!
//! let config = DetectorConfig { window: 100, ..DetectorConfig::default() };
//! let values: Vec<f64> = (0..1000).map(|i| if i == 700 { 50.0 } else { (i as f64 * 0.1).sin() }).collect();
//!
//! // Point by point.
//! let mut d = Detector::new(config).unwrap();
//! let per_point: Vec<_> = values.iter().filter_map(|&x| d.update(x)).collect();
//!
//! // Two stateless batches: the state goes out of one call and into the next.
//! let params = d.params();
//! let mut found = Vec::new();
//! let s = detect_batch(&params, DetectorState::default(), &values[..600], &mut found);
//! let s = detect_batch(&params, s, &values[600..], &mut found);
//!
//! assert_eq!(per_point, found);
//! assert_eq!(s, d.state());
//! assert!(found.iter().any(|a| a.index == 700));
//! ```

pub mod actor;
pub mod gpu;
pub mod session;
pub mod stream;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use super::Timing;
pub use session::{run_stream, AnomalySink, Session};
use stream::{read_values, LabeledStream, SyntheticSpec};

/// Errors of the anomaly workload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnomalyError {
    /// An option is out of range.
    #[error("invalid anomaly option {parameter} = {value}: {reason}")]
    InvalidOption {
        /// The option's name.
        parameter: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading the input failed.
    #[error("cannot read {input}: {source}")]
    Io {
        /// The file, or `<stdin>`.
        input: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The input is malformed at a line (1-based).
    #[error("{input}:{line}: {message}")]
    Parse {
        /// The file, or `<stdin>`.
        input: String,
        /// The line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The ring-kernel runtime failed.
    #[error(transparent)]
    Runtime(#[from] dotcompute::Error),
    /// A detector kernel refused a batch.
    #[error("detector kernel refused batch {batch_id}: {reason}")]
    Kernel {
        /// The batch.
        batch_id: u64,
        /// Its explanation.
        reason: String,
    },
    /// [`run`] was called from inside a tokio runtime for an actor mode.
    #[error("anomaly::run builds its own tokio runtime for {mode:?} mode; inside an async context call run_async")]
    InsideAsyncRuntime {
        /// The mode asked for.
        mode: Mode,
    },
    /// The tokio runtime for the actor modes could not be built.
    #[error("cannot start the tokio runtime: {0}")]
    TokioRuntime(String),
    /// The input asks for more memory than the limit allows.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// An allocation driven by the input failed.
    #[error(transparent)]
    Alloc(#[from] crate::limits::AllocError),
}

/// Parameters of the detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DetectorConfig {
    /// EMA span `W` (`α = 2 / (W + 1)`), at least 1 (default 10 000, PyDotCompute's).
    pub window: u32,
    /// Z-score threshold `Z` (default 3).
    pub threshold: f64,
    /// `ε` added to the variance (default 1e-8).
    pub epsilon: f64,
    /// The outlier clip `B` (default 100): a deviation of more than `B`
    /// standard deviations enters the running statistics as exactly `B`
    /// (see the module docs); finite and positive.
    pub clip: f64,
}

/// The default outlier clip `B` of [`DetectorConfig::clip`].
pub const DEFAULT_CLIP: f64 = 100.0;

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            window: 10_000,
            threshold: 3.0,
            epsilon: 1e-8,
            clip: DEFAULT_CLIP,
        }
    }
}

/// A validated configuration with its derived constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DetectorParams {
    config: DetectorConfig,
    alpha: f64,
    one_minus_alpha: f64,
    clip_sq: f64,
}

impl DetectorParams {
    /// Validates `config`.
    pub fn new(config: DetectorConfig) -> Result<Self, AnomalyError> {
        let bad = |parameter: &'static str, value: String, reason: &str| AnomalyError::InvalidOption {
            parameter,
            value,
            reason: reason.to_string(),
        };
        if config.window == 0 {
            return Err(bad("window", "0".into(), "must be at least 1"));
        }
        if !config.threshold.is_finite() || config.threshold < 0.0 {
            return Err(bad(
                "threshold",
                config.threshold.to_string(),
                "must be a finite, non-negative number",
            ));
        }
        if !config.epsilon.is_finite() || config.epsilon < 0.0 {
            return Err(bad(
                "epsilon",
                config.epsilon.to_string(),
                "must be a finite, non-negative number",
            ));
        }
        if !config.clip.is_finite() || config.clip <= 0.0 {
            return Err(bad(
                "clip",
                config.clip.to_string(),
                "must be a finite, positive number",
            ));
        }
        let alpha = 2.0 / (f64::from(config.window) + 1.0);
        Ok(DetectorParams {
            config,
            alpha,
            one_minus_alpha: 1.0 - alpha,
            clip_sq: config.clip * config.clip,
        })
    }

    /// The configuration.
    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// `α = 2 / (W + 1)`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// `B²` (`B` the [clip](DetectorConfig::clip)).
    pub fn clip_sq(&self) -> f64 {
        self.clip_sq
    }
}

/// Everything the detector carries from one point to the next.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct DetectorState {
    /// Moving mean.
    pub mean: f64,
    /// Moving variance.
    pub var: f64,
    /// Points seen; the index the next point gets.
    pub seen: u64,
}

impl Default for DetectorState {
    /// Mean 0, variance 1, nothing seen (PyDotCompute's start).
    fn default() -> Self {
        DetectorState {
            mean: 0.0,
            var: 1.0,
            seen: 0,
        }
    }
}

/// A flagged point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Anomaly {
    /// Its position in the stream (0-based).
    pub index: u64,
    /// Its value.
    pub value: f64,
    /// `|δ| / sqrt(var + ε)`.
    pub score: f64,
}

/// The detector: parameters plus state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detector {
    params: DetectorParams,
    state: DetectorState,
}

impl Detector {
    /// A fresh detector.
    pub fn new(config: DetectorConfig) -> Result<Self, AnomalyError> {
        Ok(Self::with_state(DetectorParams::new(config)?, DetectorState::default()))
    }

    /// A detector resuming from `state`.
    pub fn with_state(params: DetectorParams, state: DetectorState) -> Self {
        Detector { params, state }
    }

    /// Feeds one point; returns it if it is an anomaly.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<Anomaly> {
        let index = self.state.seen;
        let score = self.score(x);
        (score > self.params.config.threshold).then_some(Anomaly { index, value: x, score })
    }

    /// Takes `x` into the state and returns its score (flagged when above
    /// the threshold): the one place the formulas are written (see the
    /// module docs; the CUDA handler in [`gpu`] mirrors them step by step).
    #[inline]
    pub fn score(&mut self, x: f64) -> f64 {
        let p = &self.params;
        let s = &mut self.state;
        // Nothing is added to the loop-carried chains (mean → δ → mean,
        // var → var) for ordinary points: the clip is a predicted branch.
        let delta = x - s.mean; // ±∞ only for opposite extremes beyond f64's range
        let spread = s.var + p.config.epsilon;
        let folded = if delta * delta > p.clip_sq * spread || !delta.is_finite() {
            fold_outlier(delta, spread, p.config.clip)
        } else {
            delta
        };
        // |folded| ≤ |x − mean| with the sign of x − mean and α ≤ 1: the mean
        // moves toward x and no further, so it stays finite.
        s.mean += p.alpha * folded;
        s.var = p.one_minus_alpha * (s.var + p.alpha * folded * folded).min(f64::MAX);
        s.seen += 1;
        if delta == 0.0 {
            0.0
        } else {
            (delta.abs() / (s.var + p.config.epsilon).sqrt()).min(f64::MAX)
        }
    }

    /// The state.
    pub fn state(&self) -> DetectorState {
        self.state
    }

    /// The parameters.
    pub fn params(&self) -> DetectorParams {
        self.params
    }
}

/// The deviation an outlier is folded in with: `±min(B·sqrt(spread), |δ|,
/// f64::MAX)` with the sign of `delta`, or, without a spread to measure it
/// by (`spread = 0`), `±min(|δ|, f64::MAX)`. Never longer than `δ`.
#[cold]
fn fold_outlier(delta: f64, spread: f64, clip: f64) -> f64 {
    let bound = if spread > 0.0 {
        (clip * spread.sqrt()).min(delta.abs()).min(f64::MAX)
    } else {
        delta.abs().min(f64::MAX)
    };
    if delta < 0.0 {
        -bound
    } else {
        bound
    }
}

/// The stateless micro-batch step: runs `values` from `state`, appends the
/// anomalies to `out`, and returns the new state. Nothing is kept between
/// calls.
pub fn detect_batch(
    params: &DetectorParams,
    state: DetectorState,
    values: &[f64],
    out: &mut Vec<Anomaly>,
) -> DetectorState {
    let mut d = Detector::with_state(*params, state);
    for &x in values {
        if let Some(a) = d.update(x) {
            out.push(a);
        }
    }
    d.state
}

/// How the detector is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Point by point on the calling thread.
    Cpu,
    /// Stateless micro-batches on the calling thread.
    Batch,
    /// An async-tier ring kernel holding the state; batches as messages.
    Actor,
    /// A thread-tier ring kernel (its own OS thread) holding the state.
    ActorThread,
    /// A spin-tier ring kernel (its own OS thread polling wait-free SPSC
    /// rings, [`ExecutionMode::Spin`](dotcompute::ExecutionMode::Spin)) holding
    /// the state. Plan one core for it besides the host.
    ActorSpin,
    /// A GPU ring kernel (a persistent CUDA kernel) holding the state on
    /// the device; blocks of 32 points as messages ([`gpu`]). Needs an
    /// NVIDIA GPU; elsewhere it fails saying why.
    Gpu,
    /// A ring kernel on wgpu (Vulkan, Metal, DX12; lavapipe without a GPU)
    /// holding the state in device memory, run as batched dispatches of a
    /// WGSL handler (module `wgpu`); blocks of 32 points as messages. Needs the
    /// `wgpu` feature and an adapter with `SHADER_F64`.
    Wgpu,
}

impl Mode {
    /// Every mode that runs on any machine ([`Mode::Gpu`] needs an NVIDIA
    /// GPU and is not in this list).
    pub const ALL: [Mode; 5] = [Mode::Cpu, Mode::Batch, Mode::Actor, Mode::ActorThread, Mode::ActorSpin];

    /// The mode's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cpu => "cpu",
            Mode::Batch => "batch",
            Mode::Actor => "actor",
            Mode::ActorThread => "actor-thread",
            Mode::ActorSpin => "actor-spin",
            Mode::Gpu => "gpu",
            Mode::Wgpu => "wgpu",
        }
    }

    fn is_actor(self) -> bool {
        matches!(
            self,
            Mode::Actor | Mode::ActorThread | Mode::ActorSpin | Mode::Gpu | Mode::Wgpu
        )
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Mode::Cpu),
            "batch" => Ok(Mode::Batch),
            "actor" | "actor-async" | "async" => Ok(Mode::Actor),
            "actor-thread" | "thread" => Ok(Mode::ActorThread),
            "actor-spin" | "spin" => Ok(Mode::ActorSpin),
            "gpu" => Ok(Mode::Gpu),
            "wgpu" => Ok(Mode::Wgpu),
            _ => Err(format!(
                "unknown mode {s:?} (expected cpu, batch, actor, actor-thread, actor-spin, gpu or wgpu)"
            )),
        }
    }
}

/// Latency of one batch, summarised over all batches, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Batches measured.
    pub batches: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl LatencyStats {
    /// From individual batch times.
    pub fn of(samples: &[Duration]) -> Self {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let n = us.len();
        if n == 0 {
            return LatencyStats {
                batches: 0,
                mean_us: 0.0,
                p50_us: 0.0,
                p99_us: 0.0,
                max_us: 0.0,
            };
        }
        let pick = |q: f64| us[((n as f64 * q) as usize).min(n - 1)];
        LatencyStats {
            batches: n as u64,
            mean_us: us.iter().sum::<f64>() / n as f64,
            p50_us: pick(0.5),
            p99_us: pick(0.99),
            max_us: us[n - 1],
        }
    }

    /// `batches` batches that took `total` together, each counted at the mean.
    pub fn uniform(total: Duration, batches: u64) -> Self {
        let mean = if batches == 0 {
            0.0
        } else {
            total.as_secs_f64() * 1e6 / batches as f64
        };
        LatencyStats {
            batches,
            mean_us: mean,
            p50_us: mean,
            p99_us: mean,
            max_us: mean,
        }
    }
}

/// How to run the detector over a stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DetectOptions {
    /// The way to run it.
    pub mode: Mode,
    /// Points per micro-batch (batch and actor modes; in cpu mode it only
    /// sets what "batch latency" averages over). At least 1; default 1000.
    pub batch_size: usize,
    /// Batches in flight at once in the actor modes (default 8).
    pub pipeline_depth: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            mode: Mode::Batch,
            batch_size: 1000,
            pipeline_depth: 8,
        }
    }
}

impl DetectOptions {
    pub(crate) fn validate(&self) -> Result<(), AnomalyError> {
        if self.batch_size == 0 {
            return Err(AnomalyError::InvalidOption {
                parameter: "batch_size",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        if self.pipeline_depth == 0 {
            return Err(AnomalyError::InvalidOption {
                parameter: "pipeline_depth",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The result of running the detector over a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Every anomaly, in stream order.
    pub anomalies: Vec<Anomaly>,
    /// The detector's state after the last point.
    pub final_state: DetectorState,
    /// Wall time of the detection (for actors: from the first send to the
    /// last reply; launching the kernel is not included), seconds.
    pub seconds: f64,
    /// Per-batch latency.
    pub batch_latency: LatencyStats,
}

/// Runs the detector over `values` on the calling thread ([`Mode::Cpu`] or
/// [`Mode::Batch`]); an actor mode is an error here (use [`detect_async`]).
pub fn detect(config: DetectorConfig, values: &[f64], options: &DetectOptions) -> Result<Detection, AnomalyError> {
    options.validate()?;
    let params = DetectorParams::new(config)?;
    let batches = values.len().div_ceil(options.batch_size) as u64;
    match options.mode {
        Mode::Cpu => {
            let start = Instant::now();
            let mut d = Detector::with_state(params, DetectorState::default());
            let mut anomalies = Vec::new();
            for &x in values {
                if let Some(a) = d.update(x) {
                    anomalies.push(a);
                }
            }
            let elapsed = start.elapsed();
            Ok(Detection {
                anomalies,
                final_state: d.state(),
                seconds: elapsed.as_secs_f64(),
                batch_latency: LatencyStats::uniform(elapsed, batches),
            })
        }
        Mode::Batch => {
            let mut latencies = Vec::with_capacity(batches as usize);
            let mut anomalies = Vec::new();
            let mut state = DetectorState::default();
            let start = Instant::now();
            for chunk in values.chunks(options.batch_size) {
                let t = Instant::now();
                state = detect_batch(&params, state, chunk, &mut anomalies);
                latencies.push(t.elapsed());
            }
            let seconds = start.elapsed().as_secs_f64();
            Ok(Detection {
                anomalies,
                final_state: state,
                seconds,
                batch_latency: LatencyStats::of(&latencies),
            })
        }
        mode => Err(AnomalyError::InvalidOption {
            parameter: "mode",
            value: mode.name().into(),
            reason: "actor modes need a tokio runtime: use detect_async".into(),
        }),
    }
}

/// Like [`detect`], for every mode; the actor modes launch a kernel in a
/// fresh [`RingKernelRuntime`](dotcompute::RingKernelRuntime) and shut it down
/// afterwards. Needs a multi-thread tokio runtime for [`Mode::Actor`] to
/// overlap the host and the kernel.
pub async fn detect_async(
    config: DetectorConfig,
    values: &[f64],
    options: &DetectOptions,
) -> Result<Detection, AnomalyError> {
    if options.mode == Mode::Gpu {
        let device = gpu::GpuDevice::Cuda(dotcompute::gpu::CudaRingOptions::default());
        gpu::detect_on_gpu(config, values, options, &device).await
    } else if options.mode == Mode::Wgpu {
        #[cfg(feature = "wgpu")]
        {
            wgpu::detect_on_wgpu(
                config,
                values,
                options,
                dotcompute::gpu::wgpu::WgpuKernelOptions::default(),
            )
            .await
        }
        #[cfg(not(feature = "wgpu"))]
        {
            Err(AnomalyError::InvalidOption {
                parameter: "mode",
                value: "wgpu".into(),
                reason: "this build of dotcompute has no wgpu backend (cargo feature `wgpu`)".into(),
            })
        }
    } else if options.mode.is_actor() {
        options.validate()?;
        actor::detect_with_kernel(config, values, options).await
    } else {
        detect(config, values, options)
    }
}

/// Precision and recall of detected anomalies against labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// Labelled anomalies.
    pub labeled: u64,
    /// Detected anomalies.
    pub detected: u64,
    /// Detected and labelled.
    pub true_positives: u64,
    /// Detected, not labelled.
    pub false_positives: u64,
    /// Labelled, not detected.
    pub false_negatives: u64,
    /// `tp / detected` (`None` when nothing was detected).
    pub precision: Option<f64>,
    /// `tp / labeled` (`None` when nothing is labelled).
    pub recall: Option<f64>,
    /// Harmonic mean of the two (`None` when either is undefined or both are 0).
    pub f1: Option<f64>,
}

/// Scores `anomalies` against `labels` (`labels[i]`: point `i` is an
/// anomaly). Indices past the labels count as false positives.
///
/// ```
/// use dotcompute_workloads::anomaly::{quality, Anomaly};
/// let found = [Anomaly { index: 1, value: 9.0, score: 5.0 }, Anomaly { index: 2, value: 1.0, score: 4.0 }];
/// let q = quality(&found, &[false, true, false, true]);
/// assert_eq!((q.true_positives, q.false_positives, q.false_negatives), (1, 1, 1));
/// assert_eq!((q.precision, q.recall), (Some(0.5), Some(0.5)));
/// ```
pub fn quality(anomalies: &[Anomaly], labels: &[bool]) -> Quality {
    let labeled = labels.iter().filter(|&&l| l).count() as u64;
    let detected = anomalies.len() as u64;
    let tp = anomalies
        .iter()
        .filter(|a| {
            usize::try_from(a.index)
                .ok()
                .and_then(|i| labels.get(i))
                .copied()
                .unwrap_or(false)
        })
        .count() as u64;
    let precision = (detected > 0).then(|| tp as f64 / detected as f64);
    let recall = (labeled > 0).then(|| tp as f64 / labeled as f64);
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        _ => None,
    };
    Quality {
        labeled,
        detected,
        true_positives: tp,
        false_positives: detected - tp,
        false_negatives: labeled - tp,
        precision,
        recall,
        f1,
    }
}

/// Where the values come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StreamSource {
    /// PyDotCompute's synthetic stream (labelled).
    Synthetic(SyntheticSpec),
    /// A column of a text file (see [`stream::read_values`]).
    File {
        /// The file.
        path: PathBuf,
        /// 0-based column.
        column: usize,
    },
    /// A column of standard input.
    Stdin {
        /// 0-based column.
        column: usize,
    },
}

impl StreamSource {
    /// What the report calls the source: `synthetic(points=…, …)`, a file
    /// name and column, or `<stdin> (column N)`.
    pub fn describe(&self) -> String {
        match self {
            StreamSource::Synthetic(s) => format!(
                "synthetic(points={}, anomaly_rate={}, seed={})",
                s.points, s.anomaly_rate, s.seed
            ),
            StreamSource::File { path, column } => format!("{} (column {column})", path.display()),
            StreamSource::Stdin { column } => format!("<stdin> (column {column})"),
        }
    }

    /// The values, and labels when the source has them.
    pub fn load(&self) -> Result<(Vec<f64>, Option<Vec<bool>>), AnomalyError> {
        match self {
            StreamSource::Synthetic(spec) => {
                let LabeledStream { values, labels, .. } = spec.generate()?;
                Ok((values, Some(labels)))
            }
            StreamSource::File { path, column } => {
                let input = path.display().to_string();
                let file = std::fs::File::open(path).map_err(|source| AnomalyError::Io {
                    input: input.clone(),
                    source,
                })?;
                Ok((read_values(std::io::BufReader::new(file), *column, &input)?, None))
            }
            StreamSource::Stdin { column } => {
                let stdin = std::io::stdin();
                Ok((read_values(stdin.lock(), *column, "<stdin>")?, None))
            }
        }
    }
}

/// Everything `dotcompute anomaly` needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyOptions {
    /// The values.
    pub source: StreamSource,
    /// The detector.
    pub detector: DetectorConfig,
    /// How to run it.
    pub detect: DetectOptions,
    /// How many anomalies the report lists (all are in [`AnomalyRun::anomalies`]).
    pub list: usize,
}

impl AnomalyOptions {
    /// What the report calls the source ([`StreamSource::describe`]).
    pub fn source_description(&self) -> String {
        self.source.describe()
    }

    /// PyDotCompute's stream of `points` points, batch mode, default detector.
    pub fn synthetic(points: usize) -> Self {
        AnomalyOptions {
            source: StreamSource::Synthetic(SyntheticSpec::pydotcompute(points)),
            detector: DetectorConfig::default(),
            detect: DetectOptions::default(),
            list: 20,
        }
    }

    /// Column `column` of a file, batch mode, default detector.
    pub fn file(path: impl Into<PathBuf>, column: usize) -> Self {
        AnomalyOptions {
            source: StreamSource::File {
                path: path.into(),
                column,
            },
            ..Self::synthetic(0)
        }
    }

    /// Column `column` of standard input, batch mode, default detector.
    pub fn stdin(column: usize) -> Self {
        AnomalyOptions {
            source: StreamSource::Stdin { column },
            ..Self::synthetic(0)
        }
    }
}

/// What `dotcompute anomaly` reports (serialised as its `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyReport {
    /// The input.
    pub source: String,
    /// The mode's name.
    pub mode: &'static str,
    /// The detector's parameters.
    pub detector: DetectorConfig,
    /// Points processed.
    pub points: u64,
    /// Points per batch.
    pub batch_size: usize,
    /// Batches in flight (actor modes).
    pub pipeline_depth: usize,
    /// Anomalies found.
    pub anomalies: u64,
    /// Reading or generating the input, seconds.
    pub load_seconds: f64,
    /// Detection, seconds (see [`Detection::seconds`]).
    pub seconds: f64,
    /// `points / seconds`.
    pub points_per_second: f64,
    /// Per-batch latency.
    pub batch_latency: LatencyStats,
    /// Precision/recall against the labels, for labelled (synthetic) input.
    pub quality: Option<Quality>,
    /// The first anomalies found.
    pub first: Vec<Anomaly>,
    /// The detector's state at the end.
    pub final_state: DetectorState,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct AnomalyRun {
    /// The report.
    pub report: AnomalyReport,
    /// Every anomaly found.
    pub anomalies: Vec<Anomaly>,
}

/// Loads the stream, runs the detector and reports: `dotcompute anomaly`.
///
/// The actor modes need a tokio runtime: this builds a multi-thread one (2
/// workers) for them, and refuses ([`AnomalyError::InsideAsyncRuntime`])
/// when called from inside a runtime; use [`run_async`] there.
pub fn run(options: &AnomalyOptions) -> Result<AnomalyRun, AnomalyError> {
    if !options.detect.mode.is_actor() {
        return run_loaded(options, |values| detect(options.detector, values, &options.detect));
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(AnomalyError::InsideAsyncRuntime {
            mode: options.detect.mode,
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AnomalyError::TokioRuntime(e.to_string()))?;
    let out = rt.block_on(run_async(options));
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

/// [`run`] for callers inside a tokio runtime.
pub async fn run_async(options: &AnomalyOptions) -> Result<AnomalyRun, AnomalyError> {
    DetectorParams::new(options.detector)?;
    options.detect.validate()?;
    let start = Instant::now();
    let (values, labels) = options.source.load()?;
    let load_seconds = start.elapsed().as_secs_f64();
    let detection = detect_async(options.detector, &values, &options.detect).await?;
    Ok(finish(options, &values, labels.as_deref(), load_seconds, detection))
}

fn run_loaded(
    options: &AnomalyOptions,
    detect_fn: impl FnOnce(&[f64]) -> Result<Detection, AnomalyError>,
) -> Result<AnomalyRun, AnomalyError> {
    DetectorParams::new(options.detector)?;
    options.detect.validate()?;
    let start = Instant::now();
    let (values, labels) = options.source.load()?;
    let load_seconds = start.elapsed().as_secs_f64();
    let detection = detect_fn(&values)?;
    Ok(finish(options, &values, labels.as_deref(), load_seconds, detection))
}

fn finish(
    options: &AnomalyOptions,
    values: &[f64],
    labels: Option<&[bool]>,
    load_seconds: f64,
    detection: Detection,
) -> AnomalyRun {
    let points = values.len() as u64;
    let report = AnomalyReport {
        source: options.source.describe(),
        mode: options.detect.mode.name(),
        detector: options.detector,
        points,
        batch_size: options.detect.batch_size,
        pipeline_depth: options.detect.pipeline_depth,
        anomalies: detection.anomalies.len() as u64,
        load_seconds,
        seconds: detection.seconds,
        points_per_second: points as f64 / detection.seconds.max(f64::MIN_POSITIVE),
        batch_latency: detection.batch_latency,
        quality: labels.map(|l| quality(&detection.anomalies, l)),
        first: detection.anomalies.iter().take(options.list).copied().collect(),
        final_state: detection.final_state,
    };
    AnomalyRun {
        report,
        anomalies: detection.anomalies,
    }
}

/// Options of `dotcompute bench anomaly`: every mode and batch size on
/// PyDotCompute's synthetic stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyBenchOptions {
    /// Stream length (default 10M points).
    pub points: usize,
    /// Batch sizes (default 100, 1000, 10 000; PyDotCompute used 100–1000).
    pub batch_sizes: Vec<usize>,
    /// Modes (default all).
    pub modes: Vec<Mode>,
    /// The detector (default: W 10 000, Z 3).
    pub detector: DetectorConfig,
    /// Batches in flight in the actor modes (default 8).
    pub pipeline_depth: usize,
    /// Timed runs per cell (default 3; the best is reported).
    pub repetitions: usize,
    /// numpy seed of the stream (default 42).
    pub seed: u64,
}

impl Default for AnomalyBenchOptions {
    fn default() -> Self {
        AnomalyBenchOptions {
            points: 10_000_000,
            batch_sizes: vec![100, 1000, 10_000],
            modes: Mode::ALL.to_vec(),
            detector: DetectorConfig::default(),
            pipeline_depth: 8,
            repetitions: 3,
            seed: 42,
        }
    }
}

/// One (mode, batch size) cell of the anomaly benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyBenchRow {
    /// Mode name.
    pub mode: &'static str,
    /// Points per batch.
    pub batch_size: usize,
    /// Detection time over the repetitions.
    pub seconds: Timing,
    /// Points per second of the fastest repetition.
    pub points_per_second: f64,
    /// Batch latency of the fastest repetition.
    pub batch_latency: LatencyStats,
    /// Anomalies found.
    pub anomalies: u64,
    /// Whether the anomalies and final state equal the first cell's exactly.
    pub identical: bool,
}

/// The result of `dotcompute bench anomaly`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyBenchReport {
    /// The options used.
    pub options: AnomalyBenchOptions,
    /// Generating the stream, seconds.
    pub generate_seconds: f64,
    /// Precision/recall of the detector on the stream's labels.
    pub quality: Quality,
    /// One row per mode and batch size.
    pub rows: Vec<AnomalyBenchRow>,
    /// Whether every cell found exactly the same anomalies.
    pub all_identical: bool,
}

/// Runs `dotcompute bench anomaly` (builds its own tokio runtime; not from
/// inside one).
pub fn bench(options: &AnomalyBenchOptions) -> Result<AnomalyBenchReport, AnomalyError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(AnomalyError::InsideAsyncRuntime { mode: Mode::Actor });
    }
    DetectorParams::new(options.detector)?;
    if options.repetitions == 0 {
        return Err(AnomalyError::InvalidOption {
            parameter: "repetitions",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AnomalyError::TokioRuntime(e.to_string()))?;
    let out = rt.block_on(bench_async(options));
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

async fn bench_async(options: &AnomalyBenchOptions) -> Result<AnomalyBenchReport, AnomalyError> {
    let start = Instant::now();
    let stream = SyntheticSpec {
        points: options.points,
        anomaly_rate: 0.01,
        seed: options.seed,
    }
    .generate()?;
    let generate_seconds = start.elapsed().as_secs_f64();
    let mut reference: Option<(Vec<Anomaly>, DetectorState)> = None;
    let mut rows = Vec::new();
    let mut quality_of = None;
    for &mode in &options.modes {
        for &batch_size in &options.batch_sizes {
            let detect_options = DetectOptions {
                mode,
                batch_size,
                pipeline_depth: options.pipeline_depth,
            };
            let mut best: Option<Detection> = None;
            let mut times = Vec::with_capacity(options.repetitions);
            for _ in 0..options.repetitions {
                let d = detect_async(options.detector, &stream.values, &detect_options).await?;
                times.push(d.seconds);
                if best.as_ref().is_none_or(|b| d.seconds < b.seconds) {
                    best = Some(d);
                }
            }
            let Some(best) = best else { continue };
            let identical = match &reference {
                None => {
                    quality_of = Some(quality(&best.anomalies, &stream.labels));
                    reference = Some((best.anomalies.clone(), best.final_state));
                    true
                }
                Some((a, s)) => *a == best.anomalies && *s == best.final_state,
            };
            rows.push(AnomalyBenchRow {
                mode: mode.name(),
                batch_size,
                seconds: Timing::of(&times),
                points_per_second: options.points as f64 / best.seconds.max(f64::MIN_POSITIVE),
                batch_latency: best.batch_latency,
                anomalies: best.anomalies.len() as u64,
                identical,
            });
        }
    }
    let quality = quality_of.unwrap_or_else(|| quality(&[], &stream.labels));
    let all_identical = rows.iter().all(|r| r.identical);
    Ok(AnomalyBenchReport {
        options: options.clone(),
        generate_seconds,
        quality,
        rows,
        all_identical,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_option() {
        for (config, name) in [
            (
                DetectorConfig {
                    window: 0,
                    ..Default::default()
                },
                "window",
            ),
            (
                DetectorConfig {
                    threshold: -1.0,
                    ..Default::default()
                },
                "threshold",
            ),
            (
                DetectorConfig {
                    epsilon: f64::INFINITY,
                    ..Default::default()
                },
                "epsilon",
            ),
        ] {
            match Detector::new(config) {
                Err(AnomalyError::InvalidOption { parameter, .. }) => assert_eq!(parameter, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let bad = DetectOptions {
            batch_size: 0,
            ..Default::default()
        };
        assert!(detect(DetectorConfig::default(), &[1.0], &bad).is_err());
        assert!("quantum".parse::<Mode>().is_err());
        assert_eq!("gpu".parse::<Mode>().unwrap(), Mode::Gpu);
        assert_eq!(Mode::Gpu.name(), "gpu");
        assert_eq!("actor-thread".parse::<Mode>().unwrap(), Mode::ActorThread);
        assert_eq!("actor-spin".parse::<Mode>().unwrap(), Mode::ActorSpin);
        assert_eq!("spin".parse::<Mode>().unwrap(), Mode::ActorSpin);
        assert!(Mode::ALL.iter().all(|m| m.name().parse::<Mode>() == Ok(*m)));
    }

    #[test]
    fn update_follows_the_formulas() {
        let mut d = Detector::new(DetectorConfig {
            window: 3,
            threshold: 1.0,
            epsilon: 0.0,
            ..Default::default()
        })
        .unwrap();
        // alpha = 0.5: delta 4, mean 2, var 0.5*(1 + 0.5*16) = 4.5, score 4/sqrt(4.5).
        let a = d.update(4.0).unwrap();
        assert_eq!(
            d.state(),
            DetectorState {
                mean: 2.0,
                var: 4.5,
                seen: 1
            }
        );
        assert_eq!(
            a,
            Anomaly {
                index: 0,
                value: 4.0,
                score: 4.0 / 4.5f64.sqrt()
            }
        );
        // delta 0: never an anomaly.
        assert!(d.update(2.0).is_none());
        assert_eq!(d.state().seen, 2);
    }

    /// The plain EMA formulas, without clip or saturation.
    fn plain(config: DetectorConfig, values: &[f64]) -> (Vec<(u64, f64)>, DetectorState) {
        let alpha = 2.0 / (f64::from(config.window) + 1.0);
        let mut s = DetectorState::default();
        let mut out = Vec::new();
        for &x in values {
            let delta = x - s.mean;
            s.mean += alpha * delta;
            s.var = (1.0 - alpha) * (s.var + alpha * delta * delta);
            let score = delta.abs() / (s.var + config.epsilon).sqrt();
            if score > config.threshold {
                out.push((s.seen, score));
            }
            s.seen += 1;
        }
        (out, s)
    }

    fn wave(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i as f64 * 0.05).sin()).collect()
    }

    #[test]
    fn below_the_clip_the_plain_formulas_hold_bit_for_bit() {
        let config = DetectorConfig {
            window: 50,
            ..Default::default()
        };
        let mut values = wave(5000);
        values[3000] += 8.0;
        let (want, want_state) = plain(config, &values);
        let mut d = Detector::new(config).unwrap();
        let got: Vec<(u64, f64)> = values
            .iter()
            .filter_map(|&x| d.update(x))
            .map(|a| (a.index, a.score))
            .collect();
        assert_eq!(got, want);
        assert_eq!(d.state(), want_state);
        assert!(got.iter().any(|&(i, _)| i == 3000));
    }

    #[test]
    fn one_extreme_value_is_reported_and_does_not_poison_the_statistics() {
        let config = DetectorConfig {
            window: 100,
            ..Default::default()
        };
        for extreme in [1e300, -1e300, f64::MAX, -f64::MAX, 1.3e154, 1e20] {
            let mut values = wave(4000);
            values[1000] = extreme;
            // An ordinary anomaly (10 units on a wave of amplitude 1) later on.
            values[2000] += 10.0;
            let mut d = Detector::new(config).unwrap();
            let mut found = Vec::new();
            for &x in &values {
                if let Some(a) = d.update(x) {
                    found.push(a);
                }
                let s = d.state();
                assert!(s.mean.is_finite() && s.var.is_finite(), "{extreme}: {s:?}");
            }
            let spike = found
                .iter()
                .find(|a| a.index == 1000)
                .expect("the extreme value is reported");
            assert!(spike.score.is_finite() && spike.score > 1e3, "{extreme}: {spike:?}");
            assert!(
                found.iter().any(|a| a.index == 2000),
                "{extreme}: the later anomaly is missed"
            );
            // The plain formulas lose the later anomaly for the largest values.
            if extreme.abs() >= 1e154 {
                let (plain_found, plain_state) = plain(config, &values);
                assert!(!plain_found.iter().any(|&(i, _)| i == 2000) || !plain_state.var.is_finite());
            }
        }
    }

    #[test]
    fn opposite_extremes_saturate_instead_of_overflowing() {
        let mut d = Detector::new(DetectorConfig {
            window: 1,
            epsilon: 0.0,
            ..Default::default()
        })
        .unwrap();
        for x in [f64::MAX, -f64::MAX, f64::MAX, 0.0, 0.0, -f64::MAX, 5.0] {
            let score = d.score(x);
            let s = d.state();
            assert!(
                score.is_finite() && s.mean.is_finite() && s.var.is_finite(),
                "{x}: {score} {s:?}"
            );
        }
        // A constant stream with no spread left (ε = 0, var reaches 0) does not clip.
        let mut d = Detector::new(DetectorConfig {
            window: 1,
            epsilon: 0.0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.score(0.0), 0.0);
        assert_eq!(d.state().var, 0.0);
        assert!(d.score(1.0) > 0.0);
        assert!(d.state().var.is_finite());
    }

    #[test]
    fn the_clip_is_validated() {
        for clip in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            match Detector::new(DetectorConfig {
                clip,
                ..Default::default()
            }) {
                Err(AnomalyError::InvalidOption { parameter, .. }) => assert_eq!(parameter, "clip"),
                other => panic!("{clip}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_finite_values_keep_the_state_and_scores_finite(
            bits in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..200),
            window in 1u32..20_000,
            clip in 0.5f64..1e6,
            epsilon in 0.0f64..1.0,
        ) {
            let config = DetectorConfig { window, clip, epsilon, ..Default::default() };
            let mut d = Detector::new(config).unwrap();
            for x in bits.into_iter().map(f64::from_bits).filter(|x| x.is_finite()) {
                let score = d.score(x);
                let s = d.state();
                proptest::prop_assert!(score.is_finite() && score >= 0.0, "{} -> {}", x, score);
                proptest::prop_assert!(s.mean.is_finite() && s.var.is_finite() && s.var >= 0.0, "{:?}", s);
            }
        }
    }

    #[test]
    fn latency_stats() {
        let s = LatencyStats::of(&[
            Duration::from_micros(3),
            Duration::from_micros(1),
            Duration::from_micros(2),
        ]);
        assert_eq!((s.batches, s.p50_us, s.max_us), (3, 2.0, 3.0));
        assert!((s.mean_us - 2.0).abs() < 1e-9);
        assert_eq!(LatencyStats::of(&[]).batches, 0);
        assert_eq!(LatencyStats::uniform(Duration::from_micros(10), 5).mean_us, 2.0);
    }
}
