//! Shared helpers of the tests that need NVRTC, ptxas or a GPU: each
//! returns what the test needs or prints why the test is skipped, and fails
//! instead of skipping when the environment says the component must be
//! there (`DOTCOMPUTE_REQUIRE_NVRTC=1` in CI after provisioning,
//! `DOTCOMPUTE_REQUIRE_GPU=1` on a GPU machine).
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
