//! Shared helpers of the device tests: skip-or-fail decisions for tests that
//! need NVRTC, ptxas or a GPU, and reference computations.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;

use dotcompute::device::{Accelerator, CudaBackend, KernelCompiler, Ptxas};

/// Prints a skip line straight to the process's stderr, so it shows even
/// though the test harness captures `eprintln!` of passing tests.
pub fn skip(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
}

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// Whether NVRTC can be used. Without it the test is skipped with the reason,
/// unless `DOTCOMPUTE_REQUIRE_NVRTC=1` (CI, after provisioning), where its
/// absence fails the test.
pub fn nvrtc_or_skip(test: &str) -> bool {
    match KernelCompiler::available() {
        Ok(()) => true,
        Err(e) => {
            assert!(
                !required("DOTCOMPUTE_REQUIRE_NVRTC"),
                "DOTCOMPUTE_REQUIRE_NVRTC=1 but {e}"
            );
            skip(test, &e.to_string());
            false
        }
    }
}

/// ptxas, or a skip line (a failure under `DOTCOMPUTE_REQUIRE_NVRTC=1`).
pub fn ptxas_or_skip(test: &str) -> Option<Ptxas> {
    match Ptxas::locate() {
        Ok(p) => Some(p),
        Err(e) => {
            assert!(
                !required("DOTCOMPUTE_REQUIRE_NVRTC"),
                "DOTCOMPUTE_REQUIRE_NVRTC=1 but {e}"
            );
            skip(test, &e.to_string());
            None
        }
    }
}

/// A CUDA backend on the first GPU, or a skip line (a failure under
/// `DOTCOMPUTE_REQUIRE_GPU=1`).
pub fn cuda_or_skip(test: &str) -> Option<Arc<CudaBackend>> {
    let acc = Accelerator::discover();
    let reason = match acc.cuda_status() {
        dotcompute::device::CudaStatus::Unavailable { reason } => reason.clone(),
        _ if !acc.cuda_available() => "the CUDA driver reports no device".to_string(),
        _ => {
            let id = acc.cuda_devices().next().map(|d| d.id).unwrap_or(1);
            match acc.cuda_backend(id) {
                Ok(b) => return Some(b),
                Err(e) => e.to_string(),
            }
        }
    };
    assert!(
        !required("DOTCOMPUTE_REQUIRE_GPU"),
        "DOTCOMPUTE_REQUIRE_GPU=1 but {reason}"
    );
    skip(test, &format!("no usable GPU: {reason}"));
    None
}

/// A deterministic pseudo-random f32 in [-1, 1).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `c = a·b` for row-major `m×k` and `k×n` matrices, in f64.
pub fn matmul_ref(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for r in 0..m {
        for col in 0..n {
            c[r * n + col] = (0..k)
                .map(|i| f64::from(a[r * k + i]) * f64::from(b[i * n + col]))
                .sum();
        }
    }
    c
}

/// Asserts `got` is within `tol` (relative to magnitude, at least absolute `tol`) of `want`.
pub fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(*g) - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "element {i}: got {g}, want {w} (error {err})"
        );
    }
}
