//! The CUDA backend on a real GPU: transfers, the shipped kernels checked
//! against the CPU backend, UnifiedBuffer and MemoryPool over device and
//! pinned memory, launch checks, timings and NVML.
//!
//! On a machine without an NVIDIA GPU every test prints a skip line with the
//! reason; with `DOTCOMPUTE_REQUIRE_GPU=1` the absence fails them. The CUDA C
//! kernels are compiled with NVRTC, so NVRTC must be loadable too (see
//! `scripts/provision-cuda.sh`).

mod cuda_common;
mod device_common;

use std::sync::Arc;

use cuda_common::{cuda_or_skip, nvrtc_or_skip};
use device_common::{assert_close, matmul_ref, values};
use dotcompute::device::{
    kernels, Backend, BufferState, ComputeOrchestrator, CpuBackend, CudaBackend, CudaSource, DeviceBuffer, DeviceError,
    GpuMonitor, KernelArg, LaunchConfig, MemoryPool, PoolConfig, UnifiedBuffer,
};

fn gpu(test: &str) -> Option<Arc<CudaBackend>> {
    let g = cuda_or_skip(test)?;
    nvrtc_or_skip(test).then_some(g)
}

#[test]
fn cuda_transfers_round_trip() {
    let Some(g) = cuda_or_skip("cuda_transfers_round_trip") else {
        return;
    };
    let data: Vec<u32> = (0..100_000).collect();
    let mut buf = DeviceBuffer::from_slice(&g, &data).unwrap();
    assert_eq!(buf.to_vec().unwrap(), data);
    buf.write_at(10, &[7, 8, 9]).unwrap();
    let mut part = [0u32; 5];
    buf.read_at(9, &mut part).unwrap();
    assert_eq!(part, [9, 7, 8, 9, 13]);
    let mut copy = DeviceBuffer::<u32, _>::alloc(&g, data.len()).unwrap();
    copy.copy_from(&buf).unwrap();
    assert_eq!(copy.to_vec().unwrap()[10], 7);
    copy.fill_zero().unwrap();
    assert!(copy.to_vec().unwrap().iter().all(|v| *v == 0));
    assert!(matches!(
        buf.write_at(99_999, &[1, 2]),
        Err(DeviceError::OutOfRange { .. })
    ));
    let s = g.stats();
    assert!(s.htod_count >= 2 && s.dtoh_count >= 3 && s.dtod_count == 1);
    let (free, total) = g.memory_info().unwrap();
    assert!(free <= total && total as u64 == g.device().total_memory);
}

#[test]
fn shipped_kernels_on_cuda_match_the_cpu_backend() {
    let Some(g) = gpu("shipped_kernels_on_cuda_match_the_cpu_backend") else {
        return;
    };
    let c = Arc::new(CpuBackend::new());
    let n = 1 << 16;
    let (a, b) = (values(n, 11), values(n, 12));

    // vector_add and saxpy: same results bit for bit (one fma / one add per element).
    let add_g = g.compile(CudaSource::shipped(kernels::VECTOR_ADD)).unwrap();
    let add_c = c.compile(kernels::cpu::vector_add()).unwrap();
    let cfg = LaunchConfig::linear(n, 256).unwrap();
    let run_add = |ga: &[f32], gb: &[f32]| {
        let (da, db) = (
            DeviceBuffer::from_slice(&g, ga).unwrap(),
            DeviceBuffer::from_slice(&g, gb).unwrap(),
        );
        let mut dc = DeviceBuffer::<f32, _>::zeroed(&g, n).unwrap();
        g.launch(
            &add_g,
            &cfg,
            &mut [da.arg(), db.arg(), dc.arg_mut(), KernelArg::scalar(n as u32)],
            &g.default_stream(),
        )
        .unwrap();
        dc.to_vec().unwrap()
    };
    let (ca, cb) = (
        DeviceBuffer::from_slice(&c, &a).unwrap(),
        DeviceBuffer::from_slice(&c, &b).unwrap(),
    );
    let mut cc = DeviceBuffer::<f32, _>::zeroed(&c, n).unwrap();
    c.launch(
        &add_c,
        &cfg,
        &mut [ca.arg(), cb.arg(), cc.arg_mut(), KernelArg::scalar(n as u32)],
        &c.default_stream(),
    )
    .unwrap();
    assert_eq!(run_add(&a, &b), cc.to_vec().unwrap());

    let saxpy_g = g.compile(CudaSource::shipped(kernels::SAXPY)).unwrap();
    let saxpy_c = c.compile(kernels::cpu::saxpy()).unwrap();
    let (gx, mut gy) = (
        DeviceBuffer::from_slice(&g, &a).unwrap(),
        DeviceBuffer::from_slice(&g, &b).unwrap(),
    );
    g.launch(
        &saxpy_g,
        &cfg,
        &mut [
            KernelArg::scalar(1.5f32),
            gx.arg(),
            gy.arg_mut(),
            KernelArg::scalar(n as u32),
        ],
        &g.default_stream(),
    )
    .unwrap();
    let mut cy = DeviceBuffer::from_slice(&c, &b).unwrap();
    c.launch(
        &saxpy_c,
        &cfg,
        &mut [
            KernelArg::scalar(1.5f32),
            ca.arg(),
            cy.arg_mut(),
            KernelArg::scalar(n as u32),
        ],
        &c.default_stream(),
    )
    .unwrap();
    assert_close(
        &gy.to_vec().unwrap(),
        &cy.to_vec().unwrap().iter().map(|v| f64::from(*v)).collect::<Vec<_>>(),
        1e-6,
    );

    // reduce_sum: the same per-thread order and tree on both backends.
    let red_g = g.compile(CudaSource::shipped(kernels::REDUCE_SUM)).unwrap();
    let red_c = c.compile(kernels::cpu::reduce_sum()).unwrap();
    let rcfg = kernels::reduce_sum_config(64, 256).unwrap();
    let mut gp = DeviceBuffer::<f32, _>::zeroed(&g, 64).unwrap();
    g.launch(
        &red_g,
        &rcfg,
        &mut [gx.arg(), gp.arg_mut(), KernelArg::scalar(n as u32)],
        &g.default_stream(),
    )
    .unwrap();
    let mut cp = DeviceBuffer::<f32, _>::zeroed(&c, 64).unwrap();
    c.launch(
        &red_c,
        &rcfg,
        &mut [ca.arg(), cp.arg_mut(), KernelArg::scalar(n as u32)],
        &c.default_stream(),
    )
    .unwrap();
    let cpu_partials: Vec<f64> = cp.to_vec().unwrap().iter().map(|v| f64::from(*v)).collect();
    assert_close(&gp.to_vec().unwrap(), &cpu_partials, 1e-5);

    // matmul against the f64 reference and the CPU backend.
    let (m, nn, k) = (100, 75, 130);
    let (ma, mb) = (values(m * k, 13), values(k * nn, 14));
    let mm_g = g.compile(CudaSource::shipped(kernels::MATMUL)).unwrap();
    let (ga, gb) = (
        DeviceBuffer::from_slice(&g, &ma).unwrap(),
        DeviceBuffer::from_slice(&g, &mb).unwrap(),
    );
    let mut gc = DeviceBuffer::<f32, _>::zeroed(&g, m * nn).unwrap();
    let u = |x: usize| KernelArg::scalar(x as u32);
    let mcfg = kernels::matmul_config(m, nn).unwrap();
    g.launch(
        &mm_g,
        &mcfg,
        &mut [ga.arg(), gb.arg(), gc.arg_mut(), u(m), u(nn), u(k)],
        &g.default_stream(),
    )
    .unwrap();
    assert_close(&gc.to_vec().unwrap(), &matmul_ref(&ma, &mb, m, nn, k), 1e-4);
}

#[test]
fn cuda_launches_are_checked_against_the_ptx_signature_and_device_limits() {
    let Some(g) = gpu("cuda_launches_are_checked_against_the_ptx_signature_and_device_limits") else {
        return;
    };
    let k = g.compile(CudaSource::shipped(kernels::VECTOR_ADD)).unwrap();
    assert_eq!(k.params().len(), 4);
    let a = DeviceBuffer::<f32, _>::zeroed(&g, 8).unwrap();
    let mut c = DeviceBuffer::<f32, _>::zeroed(&g, 8).unwrap();
    let s = g.default_stream();
    let cfg = LaunchConfig::linear(8, 32).unwrap();
    let r = g.launch(&k, &cfg, &mut [a.arg(), a.arg(), c.arg_mut()], &s);
    assert!(matches!(r, Err(DeviceError::KernelArgument { .. })), "{r:?}");
    let r = g.launch(
        &k,
        &cfg,
        &mut [a.arg(), a.arg(), c.arg_mut(), KernelArg::scalar(8u64)],
        &s,
    );
    assert!(matches!(r, Err(DeviceError::KernelArgument { index: 3, .. })), "{r:?}");
    let too_big = LaunchConfig::new(1, g.device().max_threads_per_block + 1);
    let r = g.launch(
        &k,
        &too_big,
        &mut [a.arg(), a.arg(), c.arg_mut(), KernelArg::scalar(8u32)],
        &s,
    );
    assert!(matches!(r, Err(DeviceError::InvalidLaunch(_))));
    let missing = CudaSource::CudaC {
        program: "vector_add.cu".into(),
        source: kernels::VECTOR_ADD.source.into(),
        entry: "no_such_kernel".into(),
        options: None,
    };
    assert!(matches!(g.compile(missing), Err(DeviceError::EntryNotFound { .. })));
    let broken = CudaSource::CudaC {
        program: "b.cu".into(),
        source: "__global__ void".into(),
        entry: "b".into(),
        options: None,
    };
    assert!(matches!(g.compile(broken), Err(DeviceError::Compile { .. })));
}

#[test]
fn cuda_kernel_timings_and_orchestrator() {
    let Some(g) = gpu("cuda_kernel_timings_and_orchestrator") else {
        return;
    };
    let o = ComputeOrchestrator::new(g.clone(), 8);
    o.register("saxpy", CudaSource::shipped(kernels::SAXPY)).unwrap();
    let n = 1 << 20;
    let x = DeviceBuffer::from_slice(&g, &vec![1.0f32; n]).unwrap();
    let mut y = DeviceBuffer::from_slice(&g, &vec![2.0f32; n]).unwrap();
    let cfg = LaunchConfig::linear(n, 256).unwrap();
    let out = o
        .launch_read::<f32>(
            "saxpy",
            &cfg,
            &mut [
                KernelArg::scalar(3.0f32),
                x.arg(),
                y.arg_mut(),
                KernelArg::scalar(n as u32),
            ],
            2,
        )
        .unwrap();
    assert!(out.data.iter().all(|v| *v == 5.0));
    assert!(
        out.execution.duration > std::time::Duration::ZERO,
        "device-measured time"
    );
}

#[test]
fn unified_buffer_and_pools_on_cuda() {
    let Some(g) = gpu("unified_buffer_and_pools_on_cuda") else {
        return;
    };
    let saxpy = g.compile(CudaSource::shipped(kernels::SAXPY)).unwrap();
    let mut x = UnifiedBuffer::from_slice(&g, &[1.0f32, 2.0, 3.0]).unwrap();
    let mut y = UnifiedBuffer::from_slice(&g, &[1.0f32; 3]).unwrap();
    x.device().unwrap();
    let cfg = LaunchConfig::linear(3, 32).unwrap();
    g.launch(
        &saxpy,
        &cfg,
        &mut [
            KernelArg::scalar(2.0f32),
            x.arg().unwrap(),
            y.arg_mut().unwrap(),
            KernelArg::scalar(3u32),
        ],
        &g.default_stream(),
    )
    .unwrap();
    assert_eq!(y.state(), BufferState::DeviceDirty);
    assert_eq!(y.to_vec().unwrap(), vec![3.0, 5.0, 7.0]);
    assert_eq!((y.transfers().htod_count, y.transfers().dtoh_count), (1, 1));

    let pool = MemoryPool::device(
        &g,
        PoolConfig {
            max_bytes: 64 << 20,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    drop(pool.buffer::<f32>(1 << 20).unwrap());
    let b = pool.buffer::<f32>(1 << 20).unwrap();
    assert_eq!((pool.stats().hits, pool.stats().misses), (1, 1));
    drop(b);
    assert!(matches!(
        pool.buffer::<u8>(128 << 20),
        Err(DeviceError::OutOfMemory { .. })
    ));

    let pinned = MemoryPool::pinned(&g, PoolConfig::default()).unwrap();
    let mut block = pinned.allocate(4096).unwrap();
    CudaBackend::host_bytes_mut(block.get_mut()).unwrap().fill(3);
    let mut dev = g.alloc(4096).unwrap();
    let s = g.default_stream();
    g.copy_htod(CudaBackend::host_bytes(block.get()).unwrap(), &mut dev, 0, &s)
        .unwrap();
    let mut back = vec![0u8; 4096];
    g.copy_dtoh(&dev, 0, &mut back, &s).unwrap();
    assert!(back.iter().all(|v| *v == 3));
}

#[test]
fn nvml_reports_the_gpu() {
    if cuda_or_skip("nvml_reports_the_gpu").is_none() {
        return;
    }
    let m = GpuMonitor::new();
    assert!(
        m.is_available(),
        "a machine with a CUDA GPU has NVML: {:?}",
        m.unavailable_reason()
    );
    let samples = m.sample_all();
    assert!(!samples.is_empty());
    assert!(samples[0].memory_total_bytes.unwrap_or(0) > 0);
}
