//! Example handlers, each in CUDA C (for the device) and in Rust (for the
//! [emulator](super::emulator)), computing the same thing bit for bit.
//!
//! - [`echo`]: `Sample` → the same `Sample` (stateless, parallel).
//! - [`transform`]: `Sample` → `Scaled` (stateless, parallel; a non-finite
//!   value is reported as error code 1).
//! - [`running_stats`]: `Sample` → `Stats`, with a [`StatsState`] kept on the
//!   device across messages: count, mean and variance of all values and a
//!   16-value window (serial).
//!
//! ```
//! use dotcompute::gpu::handlers::{running_stats, Sample, StatsState};
//! use dotcompute::gpu::GpuMessage;
//!
//! let mut state = StatsState::zeroed();
//! let mut out = GpuMessage::zeroed();
//! for (seq, v) in [2.0f32, 4.0, 9.0].into_iter().enumerate() {
//!     running_stats(&Sample { seq: seq as u64, value: v, channel: 0 }, &mut out, &mut state);
//! }
//! assert_eq!((out.count, out.mean), (3, 5.0));
//! assert_eq!(out.variance, 13.0);
//! assert_eq!((out.window_min, out.window_max, out.window_len), (2.0, 9.0, 3));
//! ```

use std::num::NonZeroU32;

use super::message::NoState;
use super::source::{CudaHandler, Threading};
use crate::gpu::GpuMessage;

/// Number of values in the running-statistics window.
pub const WINDOW: usize = 16;

/// A sample: a sequence number, a value and a channel.
#[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
#[repr(C)]
pub struct Sample {
    /// Sequence number.
    pub seq: u64,
    /// The value.
    pub value: f32,
    /// Which channel it came from.
    pub channel: u32,
}

/// A transformed sample.
#[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
#[repr(C)]
pub struct Scaled {
    /// Sequence number of the sample.
    pub seq: u64,
    /// Channel of the sample.
    pub channel: u32,
    /// `2 * value + 1` (one fused multiply-add).
    pub value: f32,
    /// `value * value`.
    pub squared: f32,
    /// Always 0 (explicit padding).
    pub reserved: u32,
}

/// Running statistics after a sample.
#[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
#[repr(C)]
pub struct Stats {
    /// Sequence number of the sample.
    pub seq: u64,
    /// Values seen so far.
    pub count: u64,
    /// Mean of all values seen.
    pub mean: f64,
    /// Sample variance of all values seen (0 for fewer than two).
    pub variance: f64,
    /// Mean of the last [`WINDOW`] values.
    pub window_mean: f32,
    /// Smallest of the last [`WINDOW`] values.
    pub window_min: f32,
    /// Largest of the last [`WINDOW`] values.
    pub window_max: f32,
    /// How many values the window holds (up to [`WINDOW`]).
    pub window_len: u32,
}

/// The running-statistics handler's state, kept on the device.
#[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
#[repr(C)]
pub struct StatsState {
    /// Values seen.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations (Welford).
    pub m2: f64,
    /// The last values, a ring buffer.
    pub window: [f32; WINDOW],
    /// Where the next value goes in `window`.
    pub next: u32,
    /// How many entries of `window` are filled.
    pub len: u32,
}

/// CUDA C of [`echo`].
pub const ECHO_CU: &str = include_str!("cuda/handlers/echo.cu");
/// CUDA C of [`transform`].
pub const TRANSFORM_CU: &str = include_str!("cuda/handlers/transform.cu");
/// CUDA C of [`running_stats`].
pub const RUNNING_STATS_CU: &str = include_str!("cuda/handlers/running_stats.cu");

/// The CUDA handler of [`echo`].
pub fn echo_cuda() -> CudaHandler {
    CudaHandler::new(ECHO_CU, "echo", Threading::Parallel)
}

/// The CUDA handler of [`transform`].
pub fn transform_cuda() -> CudaHandler {
    CudaHandler::new(TRANSFORM_CU, "transform", Threading::Parallel)
}

/// The CUDA handler of [`running_stats`].
pub fn running_stats_cuda() -> CudaHandler {
    CudaHandler::new(RUNNING_STATS_CU, "running_stats", Threading::Serial)
}

/// Echo: the reply is the request.
pub fn echo(input: &Sample, output: &mut Sample, _state: &mut NoState) {
    *output = *input;
}

/// Transform: `2 * value + 1` (fused) and `value²`; error code 1 for a
/// non-finite value (the reply is still written).
///
/// # Errors
///
/// Code 1 if `input.value` is NaN or infinite.
pub fn transform(input: &Sample, output: &mut Scaled, _state: &mut NoState) -> Result<(), NonZeroU32> {
    output.seq = input.seq;
    output.channel = input.channel;
    output.value = input.value.mul_add(2.0, 1.0);
    output.squared = input.value * input.value;
    if input.value.is_finite() {
        Ok(())
    } else {
        Err(NonZeroU32::MIN)
    }
}

/// Running statistics: updates `state` with `input.value` and reports the
/// totals and the window.
pub fn running_stats(input: &Sample, output: &mut Stats, state: &mut StatsState) {
    let x = f64::from(input.value);
    state.count += 1;
    let delta = x - state.mean;
    state.mean += delta / state.count as f64;
    state.m2 += delta * (x - state.mean);
    state.window[state.next as usize % WINDOW] = input.value;
    state.next = (state.next + 1) % WINDOW as u32;
    if (state.len as usize) < WINDOW {
        state.len += 1;
    }
    let filled = &state.window[..(state.len as usize).min(WINDOW)];
    let mut sum = 0.0f32;
    let (mut lo, mut hi) = (state.window[0], state.window[0]);
    for &v in filled {
        sum += v;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    output.seq = input.seq;
    output.count = state.count;
    output.mean = state.mean;
    output.variance = if state.count > 1 {
        state.m2 / (state.count - 1) as f64
    } else {
        0.0
    };
    output.window_mean = sum / state.len as f32;
    output.window_min = lo;
    output.window_max = hi;
    output.window_len = state.len;
}

/// Every example, for tests that compile them all: (name, handler, the
/// source generator of its kernel).
pub fn all() -> Vec<(&'static str, super::source::KernelSource)> {
    use super::source::ring_kernel_source;
    let mut v = Vec::new();
    // The generator cannot fail for these fixed, valid names.
    if let Ok(s) = ring_kernel_source::<Sample, Sample, NoState>("echo_kernel", &echo_cuda()) {
        v.push(("echo", s));
    }
    if let Ok(s) = ring_kernel_source::<Sample, Scaled, NoState>("transform_kernel", &transform_cuda()) {
        v.push(("transform", s));
    }
    if let Ok(s) = ring_kernel_source::<Sample, Stats, StatsState>("running_stats_kernel", &running_stats_cuda()) {
        v.push(("running_stats", s));
    }
    v
}

const _: () = {
    assert!(Sample::SIZE == 16 && Scaled::SIZE == 24 && Stats::SIZE == 48 && StatsState::SIZE == 96);
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_example_generates() {
        let all = all();
        assert_eq!(all.len(), 3);
        for (name, src) in all {
            assert!(src.code.contains(&format!("DC_RING_KERNEL({name}_kernel,")));
        }
    }

    #[test]
    fn transform_reports_non_finite_values() {
        let mut out = Scaled::zeroed();
        let s = |v| Sample {
            seq: 1,
            value: v,
            channel: 2,
        };
        assert_eq!(transform(&s(1.5), &mut out, &mut NoState::default()), Ok(()));
        assert_eq!((out.value, out.squared, out.channel), (4.0, 2.25, 2));
        assert!(transform(&s(f32::NAN), &mut out, &mut NoState::default()).is_err());
    }
}
