//! The anomaly detector as a wgpu ring kernel (lavapipe in CI) finds
//! exactly the CPU's anomalies, on the seeds' stream and on extreme values.
//! Skips, saying why, without an adapter or without SHADER_F64 (fails in CI
//! without an adapter).

#[path = "../../dotcompute/tests/wgpu_common/mod.rs"]
mod wgpu_common;

use dotcompute::device::Backend;
use dotcompute_workloads::anomaly::stream::SyntheticSpec;
use dotcompute_workloads::anomaly::{self, DetectOptions, DetectorConfig, Mode};
use wgpu_common::backend;

fn has_f64() -> bool {
    match backend() {
        Some(b) if b.supports_f64() => true,
        Some(b) => {
            eprintln!(
                "skipped: {} has no SHADER_F64, which the detector needs",
                b.device().name
            );
            false
        }
        None => false,
    }
}

#[test]
fn the_wgpu_anomaly_kernel_finds_exactly_the_cpu_anomalies_on_the_seeds_stream() {
    if !has_f64() {
        return;
    }
    let stream = SyntheticSpec::pydotcompute(200_000).generate().unwrap();
    let config = DetectorConfig::default();
    let cpu = anomaly::detect(
        config,
        &stream.values,
        &DetectOptions {
            mode: Mode::Cpu,
            ..DetectOptions::default()
        },
    )
    .unwrap();
    assert!(!cpu.anomalies.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (batch, depth) in [(1000usize, 8usize), (100, 2)] {
        let options = DetectOptions {
            mode: Mode::Wgpu,
            batch_size: batch,
            pipeline_depth: depth,
        };
        let gpu = rt
            .block_on(anomaly::detect_async(config, &stream.values, &options))
            .unwrap();
        let idx = |d: &anomaly::Detection| d.anomalies.iter().map(|a| a.index).collect::<Vec<_>>();
        assert_eq!(idx(&gpu), idx(&cpu), "batch {batch}: the same anomalies");
        let mut identical = true;
        for (g, c) in gpu.anomalies.iter().zip(&cpu.anomalies) {
            assert_eq!(g.value, c.value);
            assert!((g.score - c.score).abs() <= 1e-12 * c.score, "{g:?} vs {c:?}");
            identical &= g.score == c.score;
        }
        let (gs, cs) = (gpu.final_state, cpu.final_state);
        assert_eq!(gs.seen, cs.seen);
        assert!((gs.mean - cs.mean).abs() <= 1e-12 * cs.mean.abs().max(1.0));
        assert!((gs.var - cs.var).abs() <= 1e-12 * cs.var.abs().max(1.0));
        identical &= gs == cs;
        eprintln!(
            "wgpu anomaly kernel, batch {batch}: {} anomalies; scores and final state {}",
            gpu.anomalies.len(),
            if identical {
                "bit-identical to the CPU's"
            } else {
                "within 1e-12 of the CPU's"
            }
        );
    }
}

#[test]
fn extreme_values_give_the_cpu_answers_on_wgpu_too() {
    if !has_f64() {
        return;
    }
    // A quiet stream with single extreme finite values (the outlier clip and
    // the saturations of Detector::score), then a shift.
    let mut values: Vec<f64> = (0..20_000).map(|i| (i as f64 * 0.01).sin()).collect();
    for (at, v) in [
        (3_000usize, 1e300),
        (3_001, -1e300),
        (7_000, f64::MAX),
        (9_000, 1e154),
        (12_000, -f64::MAX),
    ] {
        values[at] = v;
    }
    for v in &mut values[15_000..] {
        *v += 50.0;
    }
    let config = DetectorConfig {
        window: 100,
        ..DetectorConfig::default()
    };
    let cpu = anomaly::detect(
        config,
        &values,
        &DetectOptions {
            mode: Mode::Cpu,
            ..DetectOptions::default()
        },
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gpu = rt
        .block_on(anomaly::detect_async(
            config,
            &values,
            &DetectOptions {
                mode: Mode::Wgpu,
                batch_size: 512,
                pipeline_depth: 4,
            },
        ))
        .unwrap();
    let idx = |d: &anomaly::Detection| d.anomalies.iter().map(|a| a.index).collect::<Vec<_>>();
    assert_eq!(idx(&gpu), idx(&cpu));
    let close = |g: f64, c: f64| g == c || (g - c).abs() <= 1e-12 * c.abs();
    for (g, c) in gpu.anomalies.iter().zip(&cpu.anomalies) {
        assert!(close(g.score, c.score), "{g:?} vs {c:?}");
    }
    assert!(close(gpu.final_state.var, cpu.final_state.var) && close(gpu.final_state.mean, cpu.final_state.mean));
    // With the outlier clip the detector also stays finite.
    assert!(gpu.anomalies.iter().all(|a| a.score.is_finite()));
    assert!(gpu.final_state.mean.is_finite() && gpu.final_state.var.is_finite());
}
