//! The anomaly detector on PyDotCompute's synthetic stream (10M points by
//! default), in every mode: points per second of the detection itself
//! (launching the actor's runtime and kernel is not timed).
//!
//! `cargo bench -p dotcompute-workloads --bench anomaly`
//! (`DOTCOMPUTE_BENCH_POINTS=1000000` for a shorter stream).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dotcompute_workloads::anomaly::stream::SyntheticSpec;
use dotcompute_workloads::anomaly::{detect_async, DetectOptions, DetectorConfig, Mode};

fn points() -> usize {
    std::env::var("DOTCOMPUTE_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn workload(c: &mut Criterion) {
    let n = points();
    let stream = SyntheticSpec::pydotcompute(n).generate().expect("stream");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group(format!("anomaly/{n}_points"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(n as u64));
    for (mode, batch) in [
        (Mode::Cpu, 1000),
        (Mode::Batch, 1000),
        (Mode::Actor, 1000),
        (Mode::Actor, 10_000),
        (Mode::ActorThread, 1000),
        (Mode::ActorThread, 10_000),
        (Mode::ActorSpin, 1000),
        (Mode::ActorSpin, 10_000),
    ] {
        let options = DetectOptions {
            mode,
            batch_size: batch,
            pipeline_depth: 8,
        };
        g.bench_function(format!("{} batch {batch}", mode.name()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let d = rt
                        .block_on(detect_async(DetectorConfig::default(), &stream.values, &options))
                        .expect("detect");
                    total += Duration::from_secs_f64(d.seconds);
                }
                total
            })
        });
    }
    g.finish();
}

/// The cost of the outlier clip and the saturations: `Detector::update`
/// beside the plain EMA formulas (no clip, no saturation) on the same
/// stream, in one run (`cargo bench -p dotcompute-workloads --bench anomaly
/// -- formula`). Both give the same anomalies on this stream.
fn formula(c: &mut Criterion) {
    use dotcompute_workloads::anomaly::Detector;
    let n = points().min(1_000_000);
    let values = SyntheticSpec::pydotcompute(n).generate().expect("stream").values;
    let config = DetectorConfig::default();
    let mut g = c.benchmark_group(format!("anomaly_formula/{n}_points"));
    g.sample_size(20);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("plain EMA (no clip)", |b| {
        let alpha = 2.0 / (f64::from(config.window) + 1.0);
        b.iter(|| {
            let (mut mean, mut var, mut found) = (0.0f64, 1.0f64, 0u64);
            for &x in &values {
                let delta = x - mean;
                mean += alpha * delta;
                var = (1.0 - alpha) * (var + alpha * delta * delta);
                if delta.abs() / (var + config.epsilon).sqrt() > config.threshold {
                    found += 1;
                }
            }
            std::hint::black_box((found, mean, var))
        })
    });
    g.bench_function("Detector::update (clip, saturation)", |b| {
        b.iter(|| {
            let mut d = Detector::new(config).expect("config");
            let found = values.iter().filter(|&&x| d.update(x).is_some()).count();
            std::hint::black_box((found, d.state()))
        })
    });
    g.finish();
}

criterion_group!(benches, workload, formula);
criterion_main!(benches);
