//! The anomaly detector as a GPU ring kernel (`workloads::anomaly::gpu`):
//! the emulated device (Rust twin, same protocol) agrees with the CPU mode
//! bit for bit on every batch size; the CUDA handler compiles with NVRTC;
//! on an NVIDIA GPU the CUDA kernel agrees bit for bit too (skipped, saying
//! why, elsewhere; `DOTCOMPUTE_REQUIRE_GPU=1` makes that a failure).

#[path = "../../dotcompute/tests/cuda_common/mod.rs"]
mod cuda_common;

use cuda_common::{cuda_or_skip, nvrtc_or_skip, ptxas_or_skip};
use dotcompute::device::KernelCompiler;
use dotcompute::gpu::cuda_device::compile_ring_kernel;
use dotcompute::gpu::{CudaRingOptions, GpuError, GpuMessage};
use dotcompute_workloads::anomaly::gpu::{
    blocks, detect_on_gpu, detector_cuda, detector_twin, kernel_spec, BlockVerdict, GpuDetectorState, GpuDevice,
    PointBlock,
};
use dotcompute_workloads::anomaly::stream::SyntheticSpec;
use dotcompute_workloads::anomaly::{detect, AnomalyError, DetectOptions, DetectorConfig, DetectorParams, Mode};

fn opts(batch_size: usize, pipeline_depth: usize) -> DetectOptions {
    DetectOptions {
        mode: Mode::Cpu,
        batch_size,
        pipeline_depth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulated_gpu_detector_agrees_with_the_cpu_bit_for_bit() {
    let stream = SyntheticSpec::pydotcompute(100_000).generate().unwrap();
    let config = DetectorConfig::default();
    let reference = detect(config, &stream.values, &opts(1000, 1)).unwrap();
    assert_eq!(reference.anomalies.len(), 894);
    for (batch, depth) in [(1, 1), (32, 4), (1000, 8), (4093, 2), (100_000, 1)] {
        let d = detect_on_gpu(config, &stream.values, &opts(batch, depth), &GpuDevice::Emulated)
            .await
            .unwrap();
        assert_eq!(d.anomalies, reference.anomalies, "batch {batch}");
        assert_eq!(d.final_state, reference.final_state, "batch {batch}");
        let per_batch = batch.div_ceil(32);
        assert_eq!(
            d.batch_latency.batches,
            100_000usize.div_ceil(32).div_ceil(per_batch) as u64,
            "batch {batch}"
        );
    }
}

/// Extreme finite values (issue 16, row 8): the emulated GPU kernel folds
/// them in exactly as the CPU does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulated_gpu_detector_agrees_on_extreme_values() {
    let mut values = SyntheticSpec::pydotcompute(10_000).generate().unwrap().values;
    for (i, x) in [(100, 1e300), (2_000, -f64::MAX), (2_001, f64::MAX), (5_000, 3e154)] {
        values[i] = x;
    }
    let config = DetectorConfig {
        window: 300,
        ..DetectorConfig::default()
    };
    let reference = detect(config, &values, &opts(1000, 1)).unwrap();
    assert!(reference.anomalies.iter().any(|a| a.index == 2_001));
    let d = detect_on_gpu(config, &values, &opts(96, 4), &GpuDevice::Emulated)
        .await
        .unwrap();
    assert_eq!(d.anomalies, reference.anomalies);
    assert_eq!(d.final_state, reference.final_state);
}

#[test]
fn an_out_of_order_block_is_refused_and_the_state_kept() {
    let params = DetectorParams::new(DetectorConfig::default()).unwrap();
    let mut state = GpuDetectorState::new(&params);
    let bs = blocks(&[1.0; 70]);
    assert_eq!((bs.len(), bs[2].len, bs[2].first_index), (3, 6, 64));
    let mut out = BlockVerdict::zeroed();
    assert!(detector_twin(&bs[1], &mut out, &mut state).is_err());
    assert_eq!((state.seen, out.len), (0, 0));
    assert!(detector_twin(&bs[0], &mut out, &mut state).is_ok());
    assert_eq!((state.seen, out.len, out.seen), (32, 32, 32));
    let mut empty = PointBlock::zeroed();
    empty.first_index = 32;
    assert!(detector_twin(&empty, &mut out, &mut state).is_err());
    assert_eq!(state.seen, 32);
}

#[test]
fn the_cuda_detector_compiles() {
    if !nvrtc_or_skip("the_cuda_detector_compiles") {
        return;
    }
    let ptxas = ptxas_or_skip("the_cuda_detector_compiles");
    for (arch, sm) in [("compute_80", "sm_80"), ("compute_90", "sm_90")] {
        let k = compile_ring_kernel::<PointBlock, BlockVerdict, GpuDetectorState>(
            &detector_cuda(),
            arch,
            false,
            &KernelCompiler::new(),
        )
        .unwrap();
        assert!(k.ptx.contains("dc_ring_dc_anomaly_detect"));
        if let Some(ptxas) = &ptxas {
            let cubin = ptxas.assemble("dc_anomaly_detect", &k.ptx, sm).unwrap();
            assert!(!cubin.is_empty());
        }
    }
}

#[test]
fn without_a_gpu_the_cuda_detector_says_why() {
    if dotcompute::device::dylib::cuda_driver().is_ok() {
        eprintln!("skipped without_a_gpu_the_cuda_detector_says_why: a CUDA driver is present");
        return;
    }
    match kernel_spec(
        "d",
        DetectorConfig::default(),
        &GpuDevice::Cuda(CudaRingOptions::default()),
    ) {
        Err(AnomalyError::Runtime(dotcompute::Error::Gpu {
            error: GpuError::Unavailable(_),
            ..
        })) => {}
        other => panic!("expected a GPU-unavailable error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cuda_detector_agrees_with_the_cpu_bit_for_bit() {
    let test = "the_cuda_detector_agrees_with_the_cpu_bit_for_bit";
    if cuda_or_skip(test).is_none() || !nvrtc_or_skip(test) {
        return;
    }
    let mut stream = SyntheticSpec::pydotcompute(1_000_000).generate().unwrap();
    // Extreme values exercise the clip and the saturations on the device too.
    for (i, x) in [
        (100_000, 1e300),
        (200_000, -f64::MAX),
        (200_001, f64::MAX),
        (300_000, 3e154),
    ] {
        stream.values[i] = x;
    }
    let config = DetectorConfig::default();
    let reference = detect(config, &stream.values, &opts(1000, 1)).unwrap();
    for (batch, depth) in [(32, 8), (4096, 8)] {
        let d = detect_on_gpu(
            config,
            &stream.values,
            &opts(batch, depth),
            &GpuDevice::Cuda(CudaRingOptions::default()),
        )
        .await
        .unwrap();
        assert_eq!(d.anomalies, reference.anomalies, "batch {batch}");
        assert_eq!(d.final_state, reference.final_state, "batch {batch}");
    }
}

#[test]
fn the_gpu_mode_of_run_fails_clearly_without_a_gpu() {
    if dotcompute::device::dylib::cuda_driver().is_ok() {
        eprintln!("skipped the_gpu_mode_of_run_fails_clearly_without_a_gpu: a CUDA driver is present");
        return;
    }
    use dotcompute_workloads::anomaly::{run, AnomalyOptions};
    assert_eq!("gpu".parse::<Mode>().unwrap(), Mode::Gpu);
    let mut options = AnomalyOptions::synthetic(10_000);
    options.detect.mode = Mode::Gpu;
    let err = run(&options).unwrap_err();
    assert!(err.to_string().contains("no CUDA"), "{err}");
}
