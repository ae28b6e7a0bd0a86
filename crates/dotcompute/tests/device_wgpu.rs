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

/// Checks `got` against `want` element by element within `bound(i)`,
/// reporting the first element outside it.
fn assert_close(got: &[f32], want: &[f32], bound: impl Fn(usize) -> f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= bound(i),
            "{what}: element {i}: {g} vs {w} (bound {})",
            bound(i)
        );
    }
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
            adapters
                .iter()
                .any(|a| a.device.name.contains("llvmpipe") && a.api == WgpuApi::Vulkan),
            "{report}"
        );
    }
}

#[test]
fn buffers_copies_and_counters() {
    let Some(gpu) = backend() else { return };
    let before = gpu.stats();
    let data: Vec<u32> = (0..1000).collect();
    let mut a = DeviceBuffer::from_slice(&gpu, &data).unwrap();
    assert_eq!(a.to_vec().unwrap(), data);
    // Device-to-device, aligned and not.
    let mut b = DeviceBuffer::<u32, _>::zeroed(&gpu, 1000).unwrap();
    gpu.copy_dtod(a.memory(), 40, b.memory_mut(), 0, 400, &gpu.default_stream())
        .unwrap();
    assert_eq!(&b.to_vec().unwrap()[..100], &data[10..110]);
    assert!(b.to_vec().unwrap()[100..].iter().all(|&x| x == 0));
    // Unaligned byte ranges keep the bytes around them.
    let mut bytes = DeviceBuffer::from_slice(&gpu, &[7u8; 11]).unwrap();
    gpu.copy_htod(&[1, 2, 3], bytes.memory_mut(), 5, &gpu.default_stream())
        .unwrap();
    assert_eq!(bytes.to_vec().unwrap(), vec![7, 7, 7, 7, 7, 1, 2, 3, 7, 7, 7]);
    let mut three = [0u8; 3];
    gpu.copy_dtoh(bytes.memory(), 6, &mut three, &gpu.default_stream())
        .unwrap();
    assert_eq!(three, [2, 3, 7]);
    let mut odd = DeviceBuffer::<u8, _>::zeroed(&gpu, 11).unwrap();
    gpu.copy_dtod(bytes.memory(), 3, odd.memory_mut(), 1, 5, &gpu.default_stream())
        .unwrap();
    assert_eq!(odd.to_vec().unwrap(), vec![0, 7, 7, 1, 2, 3, 0, 0, 0, 0, 0]);
    // Ranges outside the allocation are errors, not faults.
    assert!(matches!(
        gpu.copy_htod(&[0u8; 8], a.memory_mut(), 3996, &gpu.default_stream()),
        Err(DeviceError::OutOfRange { .. })
    ));
    assert!(matches!(a.write(&[1, 2]), Err(DeviceError::SizeMismatch { .. })));
    let after = gpu.stats();
    assert!(after.htod_count > before.htod_count);
    assert!(after.dtoh_count > before.dtoh_count);
    assert_eq!(after.dtod_count - before.dtod_count, 2);
    assert_eq!(after.dtod_bytes - before.dtod_bytes, 405);
    drop((a, b, bytes, odd));
    assert_eq!(gpu.stats().live_bytes, before.live_bytes);
}

#[test]
fn a_buffer_larger_than_the_device_allows_is_out_of_memory() {
    let Some(gpu) = backend() else { return };
    let limit = gpu.adapter_info().limits.max_buffer_size;
    let too_big = usize::try_from(limit).unwrap_or(usize::MAX / 2).saturating_add(4096);
    match gpu.alloc(too_big) {
        Err(DeviceError::OutOfMemory { requested, .. }) => assert_eq!(requested, too_big),
        other => panic!("{:?}", other.map(|m| m.len())),
    }
    assert!(
        DeviceBuffer::<f32, _>::zeroed(&gpu, 16).is_ok(),
        "the backend still works"
    );
}

#[test]
fn vector_add_equals_the_cpu_bit_for_bit_and_saxpy_within_one_rounding() {
    let Some(gpu) = backend() else { return };
    let cpu = cpu();
    let n = 100_003usize;
    let (a, b) = (floats(n, 1), floats(n, 2));
    let stream_c = cpu.default_stream();
    let stream_g = gpu.default_stream();
    for (grid, block) in [(1u32, 64u32), (7, 128), (391, 256), (1024, 256)] {
        let cfg = LaunchConfig::new(grid, block);
        let run_add = |backend_cpu: bool| -> Vec<f32> {
            if backend_cpu {
                let k = cpu.compile_shipped(&kernels::VECTOR_ADD).unwrap();
                let (da, db) = (
                    DeviceBuffer::from_slice(&cpu, &a).unwrap(),
                    DeviceBuffer::from_slice(&cpu, &b).unwrap(),
                );
                let mut dc = DeviceBuffer::<f32, _>::zeroed(&cpu, n).unwrap();
                cpu.launch(
                    &k,
                    &cfg,
                    &mut [da.arg(), db.arg(), dc.arg_mut(), KernelArg::scalar(n as u32)],
                    &stream_c,
                )
                .unwrap();
                dc.to_vec().unwrap()
            } else {
                let k = gpu.compile_shipped(&kernels::VECTOR_ADD).unwrap();
                let (da, db) = (
                    DeviceBuffer::from_slice(&gpu, &a).unwrap(),
                    DeviceBuffer::from_slice(&gpu, &b).unwrap(),
                );
                let mut dc = DeviceBuffer::<f32, _>::zeroed(&gpu, n).unwrap();
                gpu.launch(
                    &k,
                    &cfg,
                    &mut [da.arg(), db.arg(), dc.arg_mut(), KernelArg::scalar(n as u32)],
                    &stream_g,
                )
                .unwrap();
                gpu.synchronize(&stream_g).unwrap();
                dc.to_vec().unwrap()
            }
        };
        assert_eq!(run_add(false), run_add(true), "vector_add grid {grid} block {block}");
    }
    // saxpy: WGSL's fma may or may not fuse (lavapipe computes a·x + y with
    // two roundings, the CPU twin fuses), so each step agrees within one
    // rounding of its terms.
    let k_c = cpu.compile_shipped(&kernels::SAXPY).unwrap();
    let k_g = gpu.compile_shipped(&kernels::SAXPY).unwrap();
    let cfg = LaunchConfig::linear(n, 256).unwrap();
    let x_c = DeviceBuffer::from_slice(&cpu, &a).unwrap();
    let mut y_c = DeviceBuffer::from_slice(&cpu, &b).unwrap();
    let x_g = DeviceBuffer::from_slice(&gpu, &a).unwrap();
    let mut y_g = DeviceBuffer::from_slice(&gpu, &b).unwrap();
    for alpha in [2.5f32, -0.3] {
        cpu.launch(
            &k_c,
            &cfg,
            &mut [
                KernelArg::scalar(alpha),
                x_c.arg(),
                y_c.arg_mut(),
                KernelArg::scalar(n as u32),
            ],
            &stream_c,
        )
        .unwrap();
        gpu.launch(
            &k_g,
            &cfg,
            &mut [
                KernelArg::scalar(alpha),
                x_g.arg(),
                y_g.arg_mut(),
                KernelArg::scalar(n as u32),
            ],
            &stream_g,
        )
        .unwrap();
    }
    let (yg, yc) = (y_g.to_vec().unwrap(), y_c.to_vec().unwrap());
    // y2 = a2·(a1·x + y) ... : bound the error of two steps of |a·x| + |y|.
    let bound = |i: usize| 4.0 * f32::EPSILON * (2.5 * 0.3 * a[i].abs() + 2.5 * a[i].abs() + b[i].abs() + 1.0);
    assert_close(&yg, &yc, bound, "saxpy");
}

#[test]
fn reduce_sum_equals_the_cpu_bit_for_bit_and_matmul_within_its_rounding() {
    let Some(gpu) = backend() else { return };
    let cpu = cpu();
    let n = 65_537usize;
    let input = floats(n, 3);
    for (blocks, block) in [(1u32, 64u32), (16, 256), (33, 128)] {
        let cfg = kernels::reduce_sum_config(blocks, block).unwrap();
        let k_c = cpu.compile_shipped(&kernels::REDUCE_SUM).unwrap();
        let k_g = gpu.compile_shipped(&kernels::REDUCE_SUM).unwrap();
        let i_c = DeviceBuffer::from_slice(&cpu, &input).unwrap();
        let i_g = DeviceBuffer::from_slice(&gpu, &input).unwrap();
        let mut p_c = DeviceBuffer::<f32, _>::zeroed(&cpu, blocks as usize).unwrap();
        let mut p_g = DeviceBuffer::<f32, _>::zeroed(&gpu, blocks as usize).unwrap();
        cpu.launch(
            &k_c,
            &cfg,
            &mut [i_c.arg(), p_c.arg_mut(), KernelArg::scalar(n as u32)],
            &cpu.default_stream(),
        )
        .unwrap();
        gpu.launch(
            &k_g,
            &cfg,
            &mut [i_g.arg(), p_g.arg_mut(), KernelArg::scalar(n as u32)],
            &gpu.default_stream(),
        )
        .unwrap();
        let (pc, pg) = (p_c.to_vec().unwrap(), p_g.to_vec().unwrap());
        assert_eq!(pg, pc, "reduce_sum {blocks}x{block}");
        let exact: f64 = input.iter().map(|&x| f64::from(x)).sum();
        let total: f64 = pg.iter().map(|&x| f64::from(x)).sum();
        assert!((total - exact).abs() < 1e-2, "{total} vs {exact}");
    }
    for (m, nn, k) in [(1usize, 1usize, 1usize), (17, 33, 9), (64, 48, 100), (130, 70, 257)] {
        let (a, b) = (floats(m * k, 4), floats(k * nn, 5));
        let cfg = kernels::matmul_config(m, nn).unwrap();
        let k_c = cpu.compile_shipped(&kernels::MATMUL).unwrap();
        let k_g = gpu.compile_shipped(&kernels::MATMUL).unwrap();
        let run = |g: bool| -> Vec<f32> {
            let dims = [
                KernelArg::scalar(m as u32),
                KernelArg::scalar(nn as u32),
                KernelArg::scalar(k as u32),
            ];
            if g {
                let (da, db) = (
                    DeviceBuffer::from_slice(&gpu, &a).unwrap(),
                    DeviceBuffer::from_slice(&gpu, &b).unwrap(),
                );
                let mut dc = DeviceBuffer::<f32, _>::zeroed(&gpu, m * nn).unwrap();
                let [d0, d1, d2] = dims;
                gpu.launch(
                    &k_g,
                    &cfg,
                    &mut [da.arg(), db.arg(), dc.arg_mut(), d0, d1, d2],
                    &gpu.default_stream(),
                )
                .unwrap();
                dc.to_vec().unwrap()
            } else {
                let (da, db) = (
                    DeviceBuffer::from_slice(&cpu, &a).unwrap(),
                    DeviceBuffer::from_slice(&cpu, &b).unwrap(),
                );
                let mut dc = DeviceBuffer::<f32, _>::zeroed(&cpu, m * nn).unwrap();
                let [d0, d1, d2] = dims.map(|d| match d {
                    KernelArg::Scalar(s) => KernelArg::Scalar(s),
                    _ => unreachable!(),
                });
                cpu.launch(
                    &k_c,
                    &cfg,
                    &mut [da.arg(), db.arg(), dc.arg_mut(), d0, d1, d2],
                    &cpu.default_stream(),
                )
                .unwrap();
                dc.to_vec().unwrap()
            }
        };
        // Each of the k multiply-adds may round once more than the CPU's
        // fused one: |Δ| ≤ 2k·ε·Σ|a||b|.
        let bound = |i: usize| {
            let (r, c) = (i / nn, i % nn);
            let abs: f32 = (0..k).map(|j| (a[r * k + j] * b[j * nn + c]).abs()).sum();
            2.0 * k as f32 * f32::EPSILON * abs + f32::MIN_POSITIVE
        };
        assert_close(&run(true), &run(false), bound, &format!("matmul {m}x{nn}x{k}"));
    }
}

#[test]
fn a_wgsl_syntax_error_is_a_typed_compile_error_with_its_line() {
    let Some(gpu) = backend() else { return };
    let src = "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n\
               @compute @workgroup_size(64)\n\
               fn k(@builtin(global_invocation_id) g: vec3<u32>) {\n\
                   v[g.x] = v[g.x] * ;\n\
               }\n";
    match gpu.compile(WgslSource::new("broken.wgsl", src, "k")) {
        Err(DeviceError::Shader {
            name, line, message, ..
        }) => {
            assert_eq!(name, "broken.wgsl");
            assert_eq!(line, Some(4), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A validation error (type mismatch) also names its line.
    let src = "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n\
               @compute @workgroup_size(1)\n\
               fn k() {\n\
                   let x: u32 = 1u;\n\
                   v[0] = x;\n\
               }\n";
    match gpu.compile(WgslSource::new("types.wgsl", src, "k")) {
        Err(e @ DeviceError::Shader { line: Some(5), .. }) => assert!(e.to_string().contains("line 5"), "{e}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A missing entry point.
    assert!(matches!(
        gpu.compile(WgslSource::new(
            "k.wgsl",
            "@compute @workgroup_size(1) fn k() {}",
            "other"
        )),
        Err(DeviceError::EntryNotFound { .. })
    ));
    // The backend is still usable.
    assert!(gpu.compile_shipped(&kernels::VECTOR_ADD).is_ok());
}

#[test]
fn out_of_bounds_bindings_and_bad_arguments_are_typed_errors() {
    let Some(gpu) = backend() else { return };
    let k = gpu.compile_shipped(&kernels::VECTOR_ADD).unwrap();
    let s = gpu.default_stream();
    let a = DeviceBuffer::from_slice(&gpu, &[1.0f32; 8]).unwrap();
    let b = DeviceBuffer::from_slice(&gpu, &[2.0f32; 8]).unwrap();
    let mut c = DeviceBuffer::<f32, _>::zeroed(&gpu, 8).unwrap();
    let cfg = LaunchConfig::linear(8, 64).unwrap();
    // A binding range past the allocation.
    let mut args = [a.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(8u32)];
    if let KernelArg::Buffer { len, .. } = &mut args[1] {
        *len = 9;
    }
    assert!(matches!(
        gpu.launch(&k, &cfg, &mut args, &s),
        Err(DeviceError::OutOfRange { .. })
    ));
    // A binding the kernel declares but the launch does not pass.
    match gpu.launch(&k, &cfg, &mut [a.arg(), b.arg(), c.arg_mut()], &s) {
        Err(DeviceError::KernelArgument { index, reason, .. }) => {
            assert_eq!(index, 3);
            assert!(reason.contains("4 binding"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A shader that declares a binding outside the convention.
    let gap = "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n\
               @group(0) @binding(5) var<uniform> n: u32;\n\
               @compute @workgroup_size(1) fn k() { v[0] = f32(n); }\n";
    match gpu.compile(WgslSource::new("gap.wgsl", gap, "k")) {
        Err(DeviceError::Shader { message, .. }) => assert!(message.contains("@binding(5)"), "{message}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Wrong kinds and types.
    assert!(matches!(
        gpu.launch(&k, &cfg, &mut [a.arg(), b.arg(), b.arg(), KernelArg::scalar(8u32)], &s),
        Err(DeviceError::KernelArgument { index: 2, .. })
    ));
    assert!(matches!(
        gpu.launch(
            &k,
            &cfg,
            &mut [a.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(8i32)],
            &s
        ),
        Err(DeviceError::KernelArgument { index: 3, .. })
    ));
    let ints = DeviceBuffer::from_slice(&gpu, &[1u32; 8]).unwrap();
    assert!(matches!(
        gpu.launch(
            &k,
            &cfg,
            &mut [ints.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(8u32)],
            &s
        ),
        Err(DeviceError::KernelArgument { index: 0, .. })
    ));
    // A fixed workgroup size and a block over the device limit.
    let mm = gpu.compile_shipped(&kernels::MATMUL).unwrap();
    assert!(matches!(
        gpu.launch(&mm, &LaunchConfig::new(Dim3::xy(1, 1), Dim3::xy(8, 8)), &mut [], &s),
        Err(DeviceError::InvalidLaunch(_))
    ));
    let huge = gpu.device().max_threads_per_block * 2;
    assert!(matches!(
        gpu.launch(
            &k,
            &LaunchConfig::new(1, huge),
            &mut [a.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(8u32)],
            &s
        ),
        Err(DeviceError::InvalidLaunch(_))
    ));
    // None of that disturbed the device.
    gpu.launch(
        &k,
        &cfg,
        &mut [a.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(8u32)],
        &s,
    )
    .unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![3.0; 8]);
    assert_eq!(gpu.uncaptured_errors(), 0);
}

#[test]
fn a_lost_device_is_a_typed_error() {
    if backend().is_none() {
        return;
    }
    let gpu = Arc::new(WgpuBackend::best().unwrap());
    let buf = DeviceBuffer::from_slice(&gpu, &[1u32, 2, 3]).unwrap();
    gpu.destroy_device();
    assert!(matches!(buf.to_vec(), Err(DeviceError::DeviceLost { .. })));
    assert!(matches!(
        gpu.compile_shipped(&kernels::SAXPY),
        Err(DeviceError::DeviceLost { .. })
    ));
    assert!(matches!(
        DeviceBuffer::<u32, _>::zeroed(&gpu, 4),
        Err(DeviceError::DeviceLost { .. })
    ));
}

#[test]
fn unified_buffers_and_the_pool_count_transfers_as_on_the_cpu() {
    let Some(gpu) = backend() else { return };
    let cpu = cpu();
    fn exercise<B: Backend + kernels::ShippedKernels>(b: &Arc<B>) -> (Vec<f32>, dotcompute::device::TransferStats) {
        let mut x = UnifiedBuffer::from_slice(b, &[1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let mut y = UnifiedBuffer::from_slice(b, &[10.0f32; 4]).unwrap();
        let k = b.compile_shipped(&kernels::SAXPY).unwrap();
        let cfg = LaunchConfig::linear(4, 64).unwrap();
        {
            let xa = x.arg().unwrap();
            let ya = y.arg_mut().unwrap();
            b.launch(
                &k,
                &cfg,
                &mut [KernelArg::scalar(2.0f32), xa, ya, KernelArg::scalar(4u32)],
                &b.default_stream(),
            )
            .unwrap();
        }
        y.host_mut().unwrap()[0] += 1.0;
        y.synchronize().unwrap();
        (y.to_vec().unwrap(), y.transfers())
    }
    let (vg, tg) = exercise(&gpu);
    let (vc, tc) = exercise(&cpu);
    assert_eq!(vg, vc);
    assert_eq!(vg, vec![13.0, 14.0, 16.0, 18.0]);
    assert_eq!(tg, tc, "the same transfers, counted the same way");

    // Its own device, so the allocation count is the pool's alone.
    let gpu = Arc::new(WgpuBackend::new(gpu.device().ordinal).unwrap());
    let pool = MemoryPool::device(&gpu, PoolConfig::default()).unwrap();
    let before = gpu.stats().allocations;
    for _ in 0..5 {
        let mut b = pool.buffer_zeroed::<u32>(1000).unwrap();
        b.write(&(0..1000).collect::<Vec<_>>()).unwrap();
        assert_eq!(b.to_vec().unwrap()[999], 999);
    }
    assert_eq!(gpu.stats().allocations - before, 1, "the pool reused its block");
    assert!(pool.stats().hit_rate() > 0.5);
}

#[test]
fn f32_variants_run_where_f64_is_off() {
    let Some(gpu) = backend() else { return };
    let plain = WgpuBackend::with_options(WgpuOptions::new(AdapterSelector::Index(gpu.device().ordinal)).without_f64())
        .unwrap();
    assert!(!plain.supports_f64());
    let k = plain.compile_shipped(&kernels::PAGERANK_REDUCE).unwrap();
    assert!(k.is_f32_variant());
    if gpu.supports_f64() {
        assert!(!gpu.compile_shipped(&kernels::PAGERANK_REDUCE).unwrap().is_f32_variant());
    }
    // A user shader with f64 says why it cannot compile without the feature.
    let src = "@group(0) @binding(0) var<storage, read_write> v: array<f64>;\n\
               @compute @workgroup_size(1) fn k() { v[0] = v[0] * 2.0lf; }";
    let e = plain
        .compile(WgslSource::new("f64.wgsl", src, "k"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("SHADER_F64"), "{e}");
}
