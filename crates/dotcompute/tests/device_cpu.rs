//! The CPU backend: separate device memory with counted transfers, Rust
//! kernels with grid/block semantics executed on rayon, the shipped kernels
//! against plain reference computations, and faults reported as errors.

mod device_common;

use std::sync::Arc;

use device_common::{assert_close, matmul_ref, values};
use dotcompute::device::cpu::{BlockCtx, CpuKernel, ThreadIdx};
use dotcompute::device::{
    kernels, Backend, BackendKind, CpuBackend, DeviceBuffer, DeviceError, Dim3, KernelArg, LaunchConfig,
};

fn cpu() -> Arc<CpuBackend> {
    Arc::new(CpuBackend::new())
}

#[test]
fn device_memory_is_separate_and_transfers_are_counted() {
    let cpu = cpu();
    let mut host = vec![1u32, 2, 3, 4];
    let mut buf = DeviceBuffer::from_slice(&cpu, &host).unwrap();
    host[0] = 100; // the device copy does not alias the host slice
    assert_eq!(buf.to_vec().unwrap(), vec![1, 2, 3, 4]);
    buf.write_at(2, &[30, 40]).unwrap();
    let mut part = [0u32; 2];
    buf.read_at(1, &mut part).unwrap();
    assert_eq!(part, [2, 30]);
    let s = cpu.stats();
    assert_eq!((s.htod_count, s.htod_bytes), (2, 16 + 8));
    assert_eq!((s.dtoh_count, s.dtoh_bytes), (2, 16 + 8));
    assert_eq!((s.allocations, s.live_bytes), (1, 16));
    drop(buf);
    let s = cpu.stats();
    assert_eq!((s.frees, s.live_bytes), (1, 0));
}

#[test]
fn out_of_range_copies_are_errors_not_truncations() {
    let cpu = cpu();
    let mut buf = DeviceBuffer::<f32, _>::zeroed(&cpu, 4).unwrap();
    assert!(matches!(
        buf.write(&[1.0; 5]),
        Err(DeviceError::SizeMismatch {
            expected: 4,
            actual: 5,
            ..
        })
    ));
    assert!(matches!(
        buf.write_at(3, &[1.0, 2.0]),
        Err(DeviceError::OutOfRange { .. })
    ));
    assert!(matches!(
        buf.read_at(usize::MAX, &mut [0.0]),
        Err(DeviceError::OutOfRange { .. })
    ));
    let mut raw = cpu.alloc(8).unwrap();
    let s = cpu.default_stream();
    assert!(matches!(
        cpu.copy_htod(&[0u8; 9], &mut raw, 0, &s),
        Err(DeviceError::OutOfRange { .. })
    ));
    let src = cpu.alloc(4).unwrap();
    assert!(matches!(
        cpu.copy_dtod(&src, 0, &mut raw, 6, 4, &s),
        Err(DeviceError::OutOfRange { .. })
    ));
    assert_eq!(
        buf.to_vec().unwrap(),
        vec![0.0; 4],
        "nothing was written by the refused copies"
    );
}

#[test]
fn device_to_device_copy_and_zero_fill() {
    let cpu = cpu();
    let a = DeviceBuffer::from_slice(&cpu, &[1i64, -2, 3]).unwrap();
    let mut b = DeviceBuffer::<i64, _>::alloc(&cpu, 3).unwrap();
    b.copy_from(&a).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![1, -2, 3]);
    assert_eq!(cpu.stats().dtod_bytes, 24);
    b.fill_zero().unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![0, 0, 0]);
    let c = DeviceBuffer::<i64, _>::zeroed(&cpu, 2).unwrap();
    assert!(matches!(b.copy_from(&c), Err(DeviceError::SizeMismatch { .. })));
}

#[test]
fn memory_limit_gives_out_of_memory_and_frees_make_room() {
    let cpu = Arc::new(CpuBackend::with_memory_limit(1024));
    let a = DeviceBuffer::<u8, _>::zeroed(&cpu, 1000).unwrap();
    match DeviceBuffer::<u8, _>::zeroed(&cpu, 100) {
        Err(DeviceError::OutOfMemory {
            requested,
            in_use,
            limit,
            ..
        }) => assert_eq!((requested, in_use, limit), (100, 1000, 1024)),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    drop(a);
    DeviceBuffer::<u8, _>::zeroed(&cpu, 1024).unwrap();
    assert!(matches!(
        DeviceBuffer::<u64, _>::alloc(&cpu, usize::MAX / 4),
        Err(DeviceError::OutOfMemory { .. })
    ));
}

#[test]
fn every_thread_of_a_3d_grid_runs_once_with_cuda_coordinates() {
    let cpu = cpu();
    let k = cpu
        .compile(CpuKernel::per_thread("ids", |args| {
            let out = args.output::<u32>(0)?;
            Ok(Box::new(move |t: &ThreadIdx| {
                let i = t.global_linear();
                // Encode the coordinates so the host can check them.
                let code = t.block.x
                    + 10 * t.block.y
                    + 100 * t.block.z
                    + 1000 * t.thread.x
                    + 10000 * t.thread.y
                    + 100000 * t.thread.z;
                out.store(i, out.load(i) + code + 1_000_000);
            }))
        }))
        .unwrap();
    let grid = Dim3::xyz(3, 2, 2);
    let block = Dim3::xyz(4, 2, 3);
    let n = (grid.volume() * block.volume()) as usize;
    let mut out = DeviceBuffer::<u32, _>::zeroed(&cpu, n).unwrap();
    cpu.launch(
        &k,
        &LaunchConfig::new(grid, block),
        &mut [out.arg_mut()],
        &cpu.default_stream(),
    )
    .unwrap();
    let got = out.to_vec().unwrap();
    let mut expected = vec![0u32; n];
    for bz in 0..2 {
        for by in 0..2 {
            for bx in 0..3 {
                for tz in 0..3 {
                    for ty in 0..2 {
                        for tx in 0..4 {
                            let b = (bz * 2 + by) * 3 + bx;
                            let t = (tz * 2 + ty) * 4 + tx;
                            expected[b * 24 + t] =
                                (bx + 10 * by + 100 * bz + 1000 * tx + 10000 * ty + 100000 * tz + 1_000_000) as u32;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(got, expected, "each thread ran exactly once with its own coordinates");
}

#[test]
fn shipped_kernels_match_reference_computations() {
    let cpu = cpu();
    let s = cpu.default_stream();
    let n = 10_000;
    let (a, b) = (values(n, 1), values(n, 2));
    let da = DeviceBuffer::from_slice(&cpu, &a).unwrap();
    let db = DeviceBuffer::from_slice(&cpu, &b).unwrap();

    // vector_add with fewer threads than elements (grid-stride).
    let add = cpu.compile(kernels::cpu::vector_add()).unwrap();
    let mut dc = DeviceBuffer::<f32, _>::zeroed(&cpu, n).unwrap();
    let cfg = LaunchConfig::new(7, 128);
    cpu.launch(
        &add,
        &cfg,
        &mut [da.arg(), db.arg(), dc.arg_mut(), KernelArg::scalar(n as u32)],
        &s,
    )
    .unwrap();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(dc.to_vec().unwrap(), want);

    // saxpy
    let saxpy = cpu.compile(kernels::cpu::saxpy()).unwrap();
    let mut dy = DeviceBuffer::from_slice(&cpu, &b).unwrap();
    let cfg = LaunchConfig::linear(n, 256).unwrap();
    cpu.launch(
        &saxpy,
        &cfg,
        &mut [
            KernelArg::scalar(2.5f32),
            da.arg(),
            dy.arg_mut(),
            KernelArg::scalar(n as u32),
        ],
        &s,
    )
    .unwrap();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 2.5f32.mul_add(*x, *y)).collect();
    assert_eq!(dy.to_vec().unwrap(), want);

    // reduce_sum: 8 blocks of 64 threads, partial sums added on the host.
    let reduce = cpu.compile(kernels::cpu::reduce_sum()).unwrap();
    let mut partial = DeviceBuffer::<f32, _>::zeroed(&cpu, 8).unwrap();
    let cfg = kernels::reduce_sum_config(8, 64).unwrap();
    cpu.launch(
        &reduce,
        &cfg,
        &mut [da.arg(), partial.arg_mut(), KernelArg::scalar(n as u32)],
        &s,
    )
    .unwrap();
    let total: f64 = partial.to_vec().unwrap().iter().map(|v| f64::from(*v)).sum();
    let want: f64 = a.iter().map(|v| f64::from(*v)).sum();
    assert!((total - want).abs() < 1e-2, "sum {total} vs {want}");

    // matmul with sizes that are not multiples of the tile.
    let (m, nn, k) = (37, 21, 50);
    let (ma, mb) = (values(m * k, 3), values(k * nn, 4));
    let dma = DeviceBuffer::from_slice(&cpu, &ma).unwrap();
    let dmb = DeviceBuffer::from_slice(&cpu, &mb).unwrap();
    let mut dmc = DeviceBuffer::<f32, _>::zeroed(&cpu, m * nn).unwrap();
    let mm = cpu.compile(kernels::cpu::matmul()).unwrap();
    let cfg = kernels::matmul_config(m, nn).unwrap();
    let u = |x: usize| KernelArg::scalar(x as u32);
    cpu.launch(
        &mm,
        &cfg,
        &mut [dma.arg(), dmb.arg(), dmc.arg_mut(), u(m), u(nn), u(k)],
        &s,
    )
    .unwrap();
    assert_close(&dmc.to_vec().unwrap(), &matmul_ref(&ma, &mb, m, nn, k), 1e-5);
    assert_eq!(cpu.stats().launches, 4);
}

#[test]
fn reduce_sum_without_enough_shared_memory_is_a_fault() {
    let cpu = cpu();
    let input = DeviceBuffer::from_slice(&cpu, &[1.0f32; 100]).unwrap();
    let mut partial = DeviceBuffer::<f32, _>::zeroed(&cpu, 2).unwrap();
    let k = cpu.compile(kernels::cpu::reduce_sum()).unwrap();
    let cfg = LaunchConfig::new(2, 64).with_shared_mem(16);
    let err = cpu
        .launch(
            &k,
            &cfg,
            &mut [input.arg(), partial.arg_mut(), KernelArg::scalar(100u32)],
            &cpu.default_stream(),
        )
        .unwrap_err();
    match err {
        DeviceError::KernelFault { kernel, reason } => {
            assert_eq!(kernel, "reduce_sum");
            assert!(reason.contains("shared memory"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn block_kernels_get_zeroed_shared_memory_and_phases() {
    let cpu = cpu();
    // Each block reverses its slice through shared memory: phase 1 writes
    // shared[tid], phase 2 reads shared[n - 1 - tid] (a __syncthreads pattern).
    let k = CpuKernel::per_block("reverse", |args| {
        let input = args.input::<i32>(0)?;
        let out = args.output::<i32>(1)?;
        Ok(Box::new(move |blk: &mut BlockCtx<'_>| {
            let n = blk.thread_count();
            let base = blk.block.x as usize * n;
            let threads: Vec<ThreadIdx> = blk.threads().collect();
            let shared = blk.shared::<i32>()?;
            assert!(shared.iter().all(|v| *v == 0), "shared memory starts zeroed");
            for t in &threads {
                shared[t.thread.x as usize] = input[base + t.thread.x as usize];
            }
            for t in &threads {
                out.store(base + t.thread.x as usize, shared[n - 1 - t.thread.x as usize]);
            }
            Ok(())
        }))
    });
    let input: Vec<i32> = (0..64).collect();
    let din = DeviceBuffer::from_slice(&cpu, &input).unwrap();
    let mut dout = DeviceBuffer::<i32, _>::zeroed(&cpu, 64).unwrap();
    let cfg = LaunchConfig::new(4, 16).with_shared_mem(16 * 4);
    cpu.launch(&k, &cfg, &mut [din.arg(), dout.arg_mut()], &cpu.default_stream())
        .unwrap();
    let got = dout.to_vec().unwrap();
    let want: Vec<i32> = (0..4).flat_map(|b| (0..16).rev().map(move |t| b * 16 + t)).collect();
    assert_eq!(got, want);
}

#[test]
fn racing_threads_on_one_output_are_safe() {
    // Every thread stores to element 0 (as a careless GPU kernel might): no
    // undefined behaviour, the value is one of the stored ones.
    let cpu = cpu();
    let k = CpuKernel::per_thread("race", |args| {
        let out = args.output::<u64>(0)?;
        Ok(Box::new(move |t: &ThreadIdx| out.store(0, t.global_x() as u64)))
    });
    let mut out = DeviceBuffer::<u64, _>::zeroed(&cpu, 1).unwrap();
    cpu.launch(
        &k,
        &LaunchConfig::new(64, 256),
        &mut [out.arg_mut()],
        &cpu.default_stream(),
    )
    .unwrap();
    assert!(out.to_vec().unwrap()[0] < 64 * 256);
}

#[test]
fn faults_are_errors_and_never_unwind_into_the_caller() {
    let cpu = cpu();
    let s = cpu.default_stream();
    let mut out = DeviceBuffer::<f32, _>::zeroed(&cpu, 10).unwrap();

    // An out-of-bounds store is refused and reported.
    let oob = CpuKernel::per_thread("oob", |args| {
        let out = args.output::<f32>(0)?;
        Ok(Box::new(move |t: &ThreadIdx| out.store(t.global_x(), 1.0)))
    });
    match cpu.launch(&oob, &LaunchConfig::new(1, 32), &mut [out.arg_mut()], &s) {
        Err(DeviceError::KernelFault { kernel, reason }) => {
            assert_eq!(kernel, "oob");
            assert!(reason.contains("has 10 elements"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The in-bounds stores happened (as on a GPU); only the bad ones were refused.
    assert_eq!(out.to_vec().unwrap(), vec![1.0; 10]);
    out.fill_zero().unwrap();

    // A panicking kernel (an out-of-bounds slice index) is a fault too.
    let panics = CpuKernel::per_thread("panics", |args| {
        let input = args.input::<f32>(0)?;
        Ok(Box::new(move |t: &ThreadIdx| {
            let _ = input[t.global_x() + 1000];
        }))
    });
    let inp = DeviceBuffer::<f32, _>::zeroed(&cpu, 4).unwrap();
    match cpu.launch(&panics, &LaunchConfig::new(1, 4), &mut [inp.arg()], &s) {
        Err(DeviceError::KernelFault { reason, .. }) => assert!(reason.contains("panicked"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Wrong argument type, kind, or count: refused before any thread runs.
    let add = cpu.compile(kernels::cpu::vector_add()).unwrap();
    let ints = DeviceBuffer::<i32, _>::zeroed(&cpu, 10).unwrap();
    let err = cpu.launch(
        &add,
        &LaunchConfig::new(1, 32),
        &mut [ints.arg(), ints.arg(), out.arg_mut(), KernelArg::scalar(10u32)],
        &s,
    );
    assert!(
        matches!(err, Err(DeviceError::KernelArgument { index: 0, .. })),
        "{err:?}"
    );
    let f = DeviceBuffer::<f32, _>::zeroed(&cpu, 10).unwrap();
    let err = cpu.launch(
        &add,
        &LaunchConfig::new(1, 32),
        &mut [f.arg(), f.arg(), out.arg_mut(), KernelArg::scalar(10i32)],
        &s,
    );
    assert!(
        matches!(err, Err(DeviceError::KernelArgument { index: 3, .. })),
        "{err:?}"
    );
    let err = cpu.launch(
        &add,
        &LaunchConfig::new(1, 32),
        &mut [f.arg(), f.arg(), out.arg_mut()],
        &s,
    );
    assert!(
        matches!(err, Err(DeviceError::KernelArgument { index: 3, .. })),
        "{err:?}"
    );
    let mut g = DeviceBuffer::<f32, _>::zeroed(&cpu, 10).unwrap();
    let err = cpu.launch(
        &add,
        &LaunchConfig::new(1, 32),
        &mut [f.arg(), f.arg(), g.arg(), KernelArg::scalar(10u32)],
        &s,
    );
    assert!(
        matches!(err, Err(DeviceError::KernelArgument { index: 2, .. })),
        "read-only where writable needed: {err:?}"
    );
    let err = cpu.launch(
        &add,
        &LaunchConfig::new(1, 32),
        &mut [g.arg_mut(), f.arg(), out.arg_mut(), KernelArg::scalar(10u32)],
        &s,
    );
    assert!(
        matches!(err, Err(DeviceError::KernelArgument { index: 0, .. })),
        "writable read as slice: {err:?}"
    );
    assert_eq!(out.to_vec().unwrap(), vec![0.0; 10], "no refused launch wrote anything");
}

#[test]
fn launches_outside_device_limits_are_refused() {
    let cpu = cpu();
    let add = cpu.compile(kernels::cpu::vector_add()).unwrap();
    let mut out = DeviceBuffer::<f32, _>::zeroed(&cpu, 1).unwrap();
    let f = DeviceBuffer::<f32, _>::zeroed(&cpu, 1).unwrap();
    let info = cpu.device().clone();
    for cfg in [
        LaunchConfig::new(1, info.max_threads_per_block + 1),
        LaunchConfig::new(0, 32),
        LaunchConfig::new(Dim3::xyz(1, 1, 1), Dim3::xyz(1, 1, info.max_block_dims[2] + 1)),
        LaunchConfig::new(1, 32).with_shared_mem(info.shared_mem_per_block as u32 + 1),
    ] {
        let r = cpu.launch(
            &add,
            &cfg,
            &mut [f.arg(), f.arg(), out.arg_mut(), KernelArg::scalar(1u32)],
            &cpu.default_stream(),
        );
        assert!(matches!(r, Err(DeviceError::InvalidLaunch(_))), "{cfg:?}: {r:?}");
    }
    assert!(LaunchConfig::linear(10, 0).is_err());
    assert_eq!(cpu.kind(), BackendKind::Cpu);
    assert_eq!(cpu.stats().launches, 0, "refused launches are not counted");
    assert!(cpu
        .compile(CpuKernel::per_thread("", |_| Ok(Box::new(|_: &ThreadIdx| {}))))
        .is_err());
}

#[test]
fn streams_and_host_staging_memory() {
    let cpu = cpu();
    let s1 = cpu.create_stream().unwrap();
    let s2 = cpu.create_stream().unwrap();
    assert_ne!(s1, s2);
    let mut host = cpu.alloc_host(16).unwrap();
    CpuBackend::host_bytes_mut(&mut host)
        .unwrap()
        .copy_from_slice(&[7u8; 16]);
    let mut dev = cpu.alloc(16).unwrap();
    cpu.copy_htod(CpuBackend::host_bytes(&host).unwrap(), &mut dev, 0, &s1)
        .unwrap();
    cpu.synchronize(&s1).unwrap();
    let mut back = [0u8; 16];
    cpu.copy_dtoh(&dev, 0, &mut back, &s2).unwrap();
    assert_eq!(back, [7u8; 16]);
    assert_eq!(cpu.stats().live_bytes, 16, "host staging memory is not device memory");
}

#[test]
fn zero_sized_types_are_refused() {
    let cpu = cpu();
    assert!(matches!(
        DeviceBuffer::<(), _>::alloc(&cpu, 4),
        Err(DeviceError::InvalidConfiguration { .. })
    ));
}
