//! The anomaly detector as a ring kernel on wgpu: the detector's state
//! ([`GpuDetectorState`]) lives in a device buffer and persists across
//! messages; each message is a [`PointBlock`] of up to 32 consecutive
//! points and each reply a [`BlockVerdict`], exactly as for the CUDA ring
//! kernel ([`gpu`](super::gpu)), so the host side (blocks, batches, pipeline
//! depth, checks) is the same code.
//!
//! The WGSL handler ([`DETECTOR_WGSL`], or [`DETECTOR_CLIP_WGSL`] where the
//! detector has the outlier clip) computes [`Detector::score`]'s formulas
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
use crate::gpu::source::Threading;
use crate::gpu::wgpu::{wgpu_kernel, WgpuKernelOptions, WgslHandler};
use crate::gpu::GpuMessage;
use crate::runtime::spec::KernelSpec;
use crate::RingKernelRuntime;

/// The WGSL handler of the plain EMA detector (`δ = x − mean`, no clip).
pub const DETECTOR_WGSL: &str = include_str!("detector.wgsl");

/// The WGSL handler of the detector with the outlier clip and the
/// saturations (`DetectorConfig::clip`; its state carries `clip` and
/// `clip_sq` after `epsilon`).
pub const DETECTOR_CLIP_WGSL: &str = include_str!("detector_clip.wgsl");

/// Whether this build's detector has the outlier clip: its device state is
/// then 72 bytes (9 eight-byte fields), without it 56 (7).
fn has_clip() -> bool {
    GpuDetectorState::SIZE == 72
}

/// The detector's WGSL handler (serial: the state is updated in order):
/// the formulas this build's [`Detector::score`](super::Detector::score)
/// uses, with or without the outlier clip, told apart by the state's
/// layout ([`wgpu_kernel`] refuses a WGSL struct whose size differs from
/// the Rust type's, so a third layout cannot run with the wrong formulas).
pub fn detector_wgsl() -> WgslHandler {
    WgslHandler::new(
        if has_clip() { DETECTOR_CLIP_WGSL } else { DETECTOR_WGSL },
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

    #[test]
    fn both_detector_versions_validate_and_the_selected_one_matches_the_state() {
        for (src, state_bytes) in [(DETECTOR_WGSL, 56), (DETECTOR_CLIP_WGSL, 72)] {
            let shader = WgslHandler::new(
                src,
                "dc_anomaly_detect",
                ("DcPointBlock", "DcBlockVerdict", "DcDetectorState"),
                Threading::Serial,
            )
            .shader();
            let (_, r) = crate::device::wgpu::shader::reflect("detector", &shader, "dc_batch", true).unwrap();
            assert_eq!(r.params[0].elem_size as usize, PointBlock::SIZE);
            assert_eq!(r.params[1].elem_size as usize, BlockVerdict::SIZE);
            assert_eq!(r.params[2].elem_size, state_bytes);
        }
        let selected = detector_wgsl();
        let (_, r) = crate::device::wgpu::shader::reflect("detector", &selected.shader(), "dc_batch", true).unwrap();
        assert_eq!(r.params[2].elem_size as usize, GpuDetectorState::SIZE);
    }
}
