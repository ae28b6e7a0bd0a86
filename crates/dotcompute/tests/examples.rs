//! The examples run and give their documented results.

use std::time::{Duration, Instant};

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

#[tokio::test]
async fn quickstart_computes_6_and_shuts_down_at_once() {
    let start = Instant::now();
    assert_eq!(quickstart::run().await.unwrap(), 6.0);
    assert_eq!(format!("{}", 6.0f64), "6", "the example prints `Result: 6`");
    // PyDotCompute's quick start takes 10 s to exit; ours must not wait on any timeout.
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}
