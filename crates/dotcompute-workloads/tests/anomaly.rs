//! Anomaly detection: every mode gives the same answers, PyDotCompute's
//! stream and counts, precision/recall, and the run API.

use dotcompute::RingKernelRuntime;
use dotcompute_workloads::anomaly::actor::{spin_kernel_spec, thread_kernel_spec, AnomalyBatch, AnomalyBatchResult};
use dotcompute_workloads::anomaly::stream::SyntheticSpec;
use dotcompute_workloads::anomaly::{
    detect, detect_async, quality, run, run_async, AnomalyError, AnomalyOptions, DetectOptions, DetectorConfig, Mode,
    StreamSource,
};
use dotcompute_workloads::numpy_rng::NumpyGenerator;

fn opts(mode: Mode, batch_size: usize, pipeline_depth: usize) -> DetectOptions {
    DetectOptions {
        mode,
        batch_size,
        pipeline_depth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_modes_and_batch_sizes_find_identical_anomalies() {
    let stream = SyntheticSpec::pydotcompute(100_000).generate().unwrap();
    let config = DetectorConfig::default();
    let reference = detect(config, &stream.values, &opts(Mode::Cpu, 1000, 1)).unwrap();
    assert_eq!(reference.anomalies.len(), 894);
    let cases = [
        opts(Mode::Batch, 1, 1),
        opts(Mode::Batch, 997, 1),
        opts(Mode::Batch, 1_000_000, 1),
        opts(Mode::Actor, 100, 1),
        opts(Mode::Actor, 1000, 8),
        opts(Mode::Actor, 4093, 32),
        opts(Mode::ActorThread, 100, 4),
        opts(Mode::ActorThread, 1000, 8),
        opts(Mode::ActorThread, 100_000, 2),
        opts(Mode::ActorSpin, 100, 4),
        opts(Mode::ActorSpin, 1000, 8),
        opts(Mode::ActorSpin, 4093, 1),
        opts(Mode::ActorSpin, 100_000, 2),
    ];
    for o in cases {
        let d = detect_async(config, &stream.values, &o).await.unwrap();
        // Bit-identical: same indices, values, scores, and final state.
        assert_eq!(d.anomalies, reference.anomalies, "{o:?}");
        assert_eq!(d.final_state, reference.final_state, "{o:?}");
        let batches = 100_000usize.div_ceil(o.batch_size) as u64;
        assert_eq!(d.batch_latency.batches, batches, "{o:?}");
    }
    // A different detector configuration does change the answer.
    let loose = DetectorConfig {
        threshold: 2.0,
        ..config
    };
    let d = detect(loose, &stream.values, &opts(Mode::Batch, 1000, 1)).unwrap();
    assert!(d.anomalies.len() > reference.anomalies.len());
}

/// PyDotCompute's "CPU Only" detector found 894 / 4509 anomalies in its
/// 100K / 500K streams, every one of them an injected spike.
#[test]
fn pydotcompute_counts_and_quality() {
    for (points, found) in [(100_000, 894u64), (500_000, 4509)] {
        let stream = SyntheticSpec::pydotcompute(points).generate().unwrap();
        let d = detect(DetectorConfig::default(), &stream.values, &opts(Mode::Batch, 1000, 1)).unwrap();
        let q = quality(&d.anomalies, &stream.labels);
        assert_eq!(q.detected, found);
        assert_eq!(q.labeled, points as u64 / 100);
        assert_eq!(q.true_positives, found);
        assert_eq!(q.precision, Some(1.0));
        assert_eq!(q.recall, Some(found as f64 / (points / 100) as f64));
        assert!(q.f1.unwrap() > 0.9);
    }
}

/// The spikes' signs and magnitudes are numpy's draws, in numpy's order:
/// for the 100K stream numpy gives deltas[0] = 0x1.1ad74dbbeeffep+2,
/// deltas[-1] = -0x1.143cc0799e1f0p+2 and a sequential sum of 0x1.434e6db3f7424p+4.
#[test]
fn injected_spike_draws_are_numpys() {
    let n = 100_000;
    let mut rng = NumpyGenerator::new(42);
    for _ in 0..n {
        rng.standard_normal();
    }
    let idx = rng.choice_without_replacement(n, n / 100).unwrap();
    let deltas: Vec<f64> = idx
        .iter()
        .map(|_| [-1.0, 1.0][rng.integers(0, 2) as usize] * rng.uniform(3.0, 5.0))
        .collect();
    assert_eq!(deltas[0].to_bits(), 0x4011_AD74_DBBE_EFFE);
    assert_eq!(deltas[deltas.len() - 1].to_bits(), 0xC011_43CC_0799_E1F0);
    let sum = deltas.iter().fold(0.0f64, |a, d| a + d);
    assert_eq!(sum.to_bits(), 0x4034_34E6_DB3F_7424);
    let stream = SyntheticSpec::pydotcompute(n).generate().unwrap();
    assert_eq!(stream.injected, idx.iter().map(|&i| i as u64).collect::<Vec<_>>());
}

/// A detector kernel refuses a batch that skips points, keeps its state,
/// and goes on with the right batch.
async fn refuses_a_gap_and_keeps_going(spec: dotcompute::KernelSpec) {
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("det").unwrap();
    let r: AnomalyBatchResult = rt.call("det", AnomalyBatch::new(0, 0, vec![0.0; 10])).await.unwrap();
    assert!(r.error.is_none());
    let r: AnomalyBatchResult = rt.call("det", AnomalyBatch::new(2, 20, vec![0.0; 10])).await.unwrap();
    assert!(r.error.unwrap().contains("seen 10 points"));
    let r: AnomalyBatchResult = rt.call("det", AnomalyBatch::new(1, 10, vec![9.0])).await.unwrap();
    assert_eq!(r.state.seen, 11);
    assert_eq!(r.anomalies.len(), 1);
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_refuses_a_gap_and_keeps_going() {
    refuses_a_gap_and_keeps_going(thread_kernel_spec("det", DetectorConfig::default()).unwrap()).await;
}

/// The spin-tier kernel refuses a gap like the thread tier's, and the run
/// API reports the mode by name and finds what the cpu mode finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spin_tier_kernel_keeps_order_and_state() {
    refuses_a_gap_and_keeps_going(spin_kernel_spec("det", DetectorConfig::default()).unwrap()).await;

    let mut o = AnomalyOptions::synthetic(30_000);
    o.detect = opts(Mode::ActorSpin, 700, 3);
    let spin = run_async(&o).await.unwrap();
    assert_eq!(spin.report.mode, "actor-spin");
    assert_eq!(spin.report.batch_latency.batches, 30_000usize.div_ceil(700) as u64);
    o.detect.mode = Mode::Cpu;
    let cpu = run(&o).unwrap();
    assert!(!cpu.anomalies.is_empty());
    assert_eq!(spin.anomalies, cpu.anomalies);
}

#[test]
fn run_reports_synthetic_and_file_input() {
    let mut o = AnomalyOptions::synthetic(20_000);
    o.detect = opts(Mode::ActorThread, 500, 4);
    o.list = 3;
    let r = run(&o).unwrap();
    let rep = &r.report;
    assert_eq!((rep.mode, rep.points, rep.batch_size), ("actor-thread", 20_000, 500));
    assert_eq!(rep.anomalies, r.anomalies.len() as u64);
    assert_eq!(rep.first.len(), 3);
    assert_eq!(rep.batch_latency.batches, 40);
    assert!(rep.points_per_second > 0.0);
    let q = rep.quality.unwrap();
    assert_eq!(q.labeled, 200);
    let json = serde_json::to_value(rep).unwrap();
    for key in ["anomalies", "points_per_second", "batch_latency", "quality"] {
        assert!(json.get(key).is_some(), "{key}");
    }

    // The same values from a CSV file give the same anomalies (no labels).
    let values = SyntheticSpec::pydotcompute(20_000).generate().unwrap().values;
    let dir = std::env::temp_dir().join(format!("dc_anomaly_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("values.csv");
    let mut text = String::from("t,value\n");
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!("{i},{v:?}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let f = run(&AnomalyOptions::file(&path, 1)).unwrap();
    assert_eq!(f.anomalies, r.anomalies);
    assert!(f.report.quality.is_none());

    // Malformed input names its line; a missing file its path.
    std::fs::write(&path, "1\n2\noops\n").unwrap();
    let err = run(&AnomalyOptions {
        source: StreamSource::File {
            path: path.clone(),
            column: 0,
        },
        ..AnomalyOptions::synthetic(0)
    })
    .unwrap_err();
    assert!(
        err.to_string().ends_with("values.csv:3: \"oops\" is not a number"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let err = run(&AnomalyOptions {
        source: StreamSource::File {
            path: dir.join("missing.csv"),
            column: 0,
        },
        ..AnomalyOptions::synthetic(0)
    })
    .unwrap_err();
    assert!(matches!(err, AnomalyError::Io { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_inside_a_runtime_needs_run_async() {
    let mut o = AnomalyOptions::synthetic(5_000);
    o.detect = opts(Mode::Actor, 250, 4);
    assert!(matches!(
        run(&o),
        Err(AnomalyError::InsideAsyncRuntime { mode: Mode::Actor })
    ));
    let r = run_async(&o).await.unwrap();
    assert_eq!(r.report.points, 5_000);
    // CPU modes run anywhere.
    o.detect.mode = Mode::Cpu;
    assert_eq!(run(&o).unwrap().anomalies, r.anomalies);
}

/// A stream with extreme finite values (issue 16, row 8): every mode reports
/// the same anomalies bit for bit, each extreme value among them, later
/// ordinary anomalies too, and the state stays finite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_give_the_same_finite_answers_in_every_mode() {
    let mut values = SyntheticSpec::pydotcompute(20_000).generate().unwrap().values;
    let extremes = [
        (3_000usize, 1e300),
        (6_000, -f64::MAX),
        (6_001, f64::MAX),
        (9_000, 2e154),
    ];
    for &(i, x) in &extremes {
        values[i] = x;
    }
    let config = DetectorConfig {
        window: 500,
        ..DetectorConfig::default()
    };
    let reference = detect(config, &values, &opts(Mode::Cpu, 1000, 1)).unwrap();
    assert!(reference.final_state.mean.is_finite() && reference.final_state.var.is_finite());
    for &(i, _) in &extremes {
        let a = reference.anomalies.iter().find(|a| a.index == i as u64);
        assert!(
            a.is_some_and(|a| a.score.is_finite()),
            "extreme value at {i} not reported"
        );
    }
    // Injected spikes after the last extreme value are still found.
    assert!(reference.anomalies.iter().filter(|a| a.index > 12_000).count() > 10);
    for o in [
        opts(Mode::Batch, 333, 1),
        opts(Mode::Actor, 1000, 4),
        opts(Mode::ActorThread, 257, 8),
        opts(Mode::ActorSpin, 4096, 2),
    ] {
        let d = detect_async(config, &values, &o).await.unwrap();
        assert_eq!(d.anomalies, reference.anomalies, "{o:?}");
        assert_eq!(d.final_state, reference.final_state, "{o:?}");
    }
}
