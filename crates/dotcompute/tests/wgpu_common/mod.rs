//! Shared by the wgpu test files: one backend per test binary, or a reason
//! to skip (fatal where an adapter is required).
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use dotcompute::device::wgpu::WgpuBackend;

/// Whether a missing adapter must fail the tests: in CI, or when
/// scripts/provision-vulkan.sh installed the driver.
pub fn required() -> bool {
    std::env::var("CI").as_deref() == Ok("true") || std::env::var("DOTCOMPUTE_REQUIRE_WGPU").as_deref() == Ok("1")
}

/// The best adapter's backend, shared; `None` (after saying why) when there
/// is none and none is required.
pub fn backend() -> Option<Arc<WgpuBackend>> {
    static BACKEND: OnceLock<Result<Arc<WgpuBackend>, String>> = OnceLock::new();
    let b = BACKEND.get_or_init(|| WgpuBackend::best().map(Arc::new).map_err(|e| e.to_string()));
    match b {
        Ok(b) => Some(b.clone()),
        Err(e) if required() => panic!("no wgpu adapter, and one is required (CI or DOTCOMPUTE_REQUIRE_WGPU=1): {e}"),
        Err(e) => {
            eprintln!("skipped: no wgpu adapter: {e}");
            None
        }
    }
}
