//! Shared helpers of the device tests: deterministic inputs and reference
//! computations (the skip-or-fail decisions are in `cuda_common`).
#![allow(dead_code)]

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
