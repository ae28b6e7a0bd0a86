//! The anomaly detector as a ring kernel on wgpu: the detector's state
//! ([`GpuDetectorState`]) lives in a device buffer and persists across
//! messages; each message is a [`PointBlock`] of up to 32 consecutive
//! points and each reply a [`BlockVerdict`], exactly as for the CUDA ring
//! kernel ([`gpu`](super::gpu)), so the host side (blocks, batches, pipeline
//! depth, checks) is the same code.
//!
//! The WGSL handler ([`DETECTOR_WGSL`]) computes [`Detector::score`]'s
//! formulas, outlier clip and saturations included,
//! in the same order in f64 (it needs `SHADER_F64`; lavapipe and
//! NVIDIA's Vulkan driver have it, Metal does not, and there the kernel
//! fails to build saying so). WGSL cannot forbid a driver from contracting
//! `a·b + c` into a fused multiply-add, so scores may differ from the CPU's
//! in the last bits on some drivers; the flags are compared against the
//! threshold the same way, and the tests check that the wgpu kernel flags
//! exactly the CPU's anomalies on the seeds' stream, with scores within
//! 1e-12 relative (on lavapipe they are identical; the tests report it).
//!
//! [`Detector::score`]: super::Detector::score
//!
//! Invariant: a block whose `first_index` is not the number of points the
//! state has seen is refused (handler error 1, state untouched).

use super::gpu::{stream_blocks, BlockVerdict, GpuDetectorState, PointBlock};
use super::{AnomalyError, DetectOptions, Detection, DetectorConfig, DetectorParams};
use dotcompute::gpu::source::Threading;
use dotcompute::gpu::wgpu::{wgpu_kernel, WgpuKernelOptions, WgslHandler};
use dotcompute::runtime::spec::KernelSpec;
use dotcompute::RingKernelRuntime;

/// The detector's WGSL handler (serial: the state is updated in order):
/// the formulas of [`Detector::score`](super::Detector::score), with the
/// outlier clip and the saturations (the state carries `clip` and `clip_sq`
/// after `epsilon`).
pub const DETECTOR_WGSL: &str = include_str!("detector.wgsl");

/// [`DETECTOR_WGSL`] as a handler ([`wgpu_kernel`] refuses a WGSL struct
/// whose size differs from the Rust type's, so a state of another layout
/// cannot run with these formulas).
pub fn detector_wgsl() -> WgslHandler {
    WgslHandler::new(
        DETECTOR_WGSL,
        "dc_anomaly_detect",
        ("DcPointBlock", "DcBlockVerdict", "DcDetectorState"),
        Threading::Serial,
    )
}

/// A runtime kernel spec of the detector on wgpu: `Envelope<PointBlock>`
/// in, `Envelope<BlockVerdict>` out.
///
/// # Errors
///
/// [`AnomalyError::InvalidOption`] for a bad config; [`AnomalyError::Runtime`]
/// with the device's reason (no adapter, no `SHADER_F64`, ...).
pub fn kernel_spec(id: &str, config: DetectorConfig, options: WgpuKernelOptions) -> Result<KernelSpec, AnomalyError> {
    let params = DetectorParams::new(config)?;
    let state = GpuDetectorState::new(&params);
    Ok(wgpu_kernel::<PointBlock, BlockVerdict, GpuDetectorState>(
        id,
        detector_wgsl(),
        state,
        options,
    )?)
}

/// Streams `values` through the detector kernel on wgpu in a fresh runtime
/// (micro-batches of `options.batch_size` points, up to
/// `options.pipeline_depth` in flight), as
/// [`detect_on_gpu`](super::gpu::detect_on_gpu) does for CUDA; shuts the
/// runtime down afterwards.
///
/// # Errors
///
/// As [`kernel_spec`]; [`AnomalyError::Kernel`] for a refused or mismatched
/// block; runtime errors.
pub async fn detect_on_wgpu(
    config: DetectorConfig,
    values: &[f64],
    options: &DetectOptions,
    device: WgpuKernelOptions,
) -> Result<Detection, AnomalyError> {
    options.validate()?;
    let id = "anomaly-wgpu";
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

#[cfg(test)]
mod tests {
    use super::*;
    use dotcompute::gpu::GpuMessage;

    #[test]
    fn the_detector_validates_and_its_layouts_match_the_rust_types() {
        let (_, r) =
            dotcompute::device::wgpu::shader::reflect("detector", &detector_wgsl().shader(), "dc_batch", true).unwrap();
        assert_eq!(r.params[0].elem_size as usize, PointBlock::SIZE);
        assert_eq!(r.params[1].elem_size as usize, BlockVerdict::SIZE);
        assert_eq!(r.params[2].elem_size as usize, GpuDetectorState::SIZE);
    }
}
