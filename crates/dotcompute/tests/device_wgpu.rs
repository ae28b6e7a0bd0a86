//! The wgpu backend on a real adapter (lavapipe in CI): discovery, buffers,
//! copies, every shipped kernel against the CPU backend, compile errors,
//! argument errors, device loss.
//!
//! Without an adapter these tests say why and pass, unless
//! `DOTCOMPUTE_REQUIRE_WGPU=1` or `CI=true`, where a missing adapter fails
//! them (scripts/test.sh installs lavapipe through
//! scripts/provision-vulkan.sh and sets the variable).
#![cfg(feature = "wgpu")]

mod wgpu_common;

use std::sync::Arc;

use dotcompute::device::kernels::{self, ShippedKernels};
use dotcompute::device::wgpu::{AdapterSelector, WgpuApi, WgpuBackend, WgpuOptions, WgslSource};
use dotcompute::device::{
    Accelerator, Backend, BackendKind, CpuBackend, DeviceBuffer, DeviceError, Dim3, KernelArg, LaunchConfig,
    MemoryPool, PoolConfig, UnifiedBuffer,
};
use wgpu_common::backend;

fn cpu() -> Arc<CpuBackend> {
    Arc::new(CpuBackend::new())
}

fn floats(n: usize, seed: u32) -> Vec<f32> {
    // A fixed pseudo-random sequence in [-1, 1) (xorshift), no zeros.
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0 + 1e-3
        })
        .collect()
}

#[test]
fn discovery_lists_the_adapters_and_selection_works() {
    let Some(gpu) = backend() else { return };
    let acc = Accelerator::discover();
    let adapters = acc.wgpu_adapters();
    assert!(!adapters.is_empty());
    for a in adapters {
        assert_eq!(acc.device(a.device.id).unwrap().kind, BackendKind::Wgpu);
        assert!(a.limits.max_compute_invocations_per_workgroup >= 64);
        assert!(a.limits.max_buffer_size > 0);
    }
    let first = &adapters[0];
    let by_id = acc.wgpu_backend(first.device.id).unwrap();
    assert_eq!(by_id.device().name, first.device.name);
    let by_name = WgpuBackend::select(AdapterSelector::Name(first.device.name.to_uppercase())).unwrap();
    assert_eq!(by_name.device().name, first.device.name);
    let by_api = WgpuBackend::select(AdapterSelector::Api(first.api)).unwrap();
    assert_eq!(by_api.adapter_info().api, first.api);
    assert!(matches!(
        WgpuBackend::new(adapters.len() + 3),
        Err(DeviceError::DeviceNotFound { .. })
    ));
    assert!(WgpuBackend::select(AdapterSelector::Name("no such adapter anywhere".into())).is_err());
    assert!(acc.wgpu_backend(0).is_err(), "device 0 is the CPU");
    assert_eq!(gpu.kind(), BackendKind::Wgpu);
    // The report names the adapters.
    let report = dotcompute::device::report().to_string();
    assert!(report.contains("wgpu:"), "{report}");
    assert!(report.contains(&first.device.name), "{report}");
    if std::env::var("CI").as_deref() == Ok("true") {
        // CI runs on lavapipe.
        assert!(
            adapters.iter().any(|a| a.device.name.contains("llvmpipe") && a.api == WgpuApi::Vulkan),
            "{report}"
        );
    }
}
