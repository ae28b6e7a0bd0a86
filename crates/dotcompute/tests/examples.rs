//! The examples run and give their documented results.

use std::time::{Duration, Instant};

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

#[cfg(feature = "cuda")]
#[path = "../examples/vector_add.rs"]
#[allow(dead_code)]
mod vector_add;

#[tokio::test]
async fn quickstart_computes_6_and_shuts_down_at_once() {
    let start = Instant::now();
    assert_eq!(quickstart::run().await.unwrap(), 6.0);
    assert_eq!(format!("{}", 6.0f64), "6", "the example prints `Result: 6`");
    // PyDotCompute's quick start takes 10 s to exit; ours must not wait on any timeout.
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[cfg(feature = "cuda")]
#[test]
fn vector_add_is_correct_on_every_device_that_runs_it() {
    let (runs, skipped) = vector_add::run(100_000).unwrap();
    assert!(
        runs.iter().any(|r| r.device == "CPU backend"),
        "the CPU backend always runs"
    );
    for r in &runs {
        assert!(r.correct, "{} computed a wrong sum", r.device);
        assert_eq!(r.n, 100_000);
    }
    for s in &skipped {
        eprintln!("vector_add not run: {s}");
    }
}

#[cfg(feature = "cuda")]
#[path = "../examples/gpu_stats_pipeline.rs"]
#[allow(dead_code)]
mod gpu_stats_pipeline;

#[cfg(feature = "cuda")]
#[tokio::test]
async fn gpu_stats_pipeline_keeps_state_across_messages() {
    let readings: Vec<f32> = (0..500).map(|i| (i % 10) as f32).collect();
    let out = gpu_stats_pipeline::run(&readings).await.unwrap();
    eprintln!("gpu_stats_pipeline ran on: {}", out.device);
    assert_eq!(out.replies, 500);
    // The state persisted across all 500 messages: the count and the
    // running mean cover every reading, the window the last 16.
    assert_eq!(out.last.count, 500);
    assert_eq!(out.last.mean, 4.5);
    assert_eq!(out.last.window_len, 16);
    assert_eq!((out.last.window_min, out.last.window_max), (0.0, 9.0));
}
