//! ComputeOrchestrator: registration, launches by name with results and
//! timings, failures recorded then returned, and the bounded history.

use std::sync::Arc;

use dotcompute::device::cpu::ThreadIdx;
use dotcompute::device::{
    kernels, ComputeOrchestrator, CpuBackend, CpuKernel, DeviceBuffer, DeviceError, KernelArg, LaunchConfig,
};

fn setup(capacity: usize) -> (Arc<CpuBackend>, ComputeOrchestrator<CpuBackend>) {
    let cpu = Arc::new(CpuBackend::new());
    let o = ComputeOrchestrator::new(cpu.clone(), capacity);
    o.register("vector_add", kernels::cpu::vector_add()).unwrap();
    (cpu, o)
}

#[test]
fn launches_by_name_return_results_and_timings() {
    let (cpu, o) = setup(10);
    let n = 4096;
    let a = DeviceBuffer::from_slice(&cpu, &vec![1.0f32; n]).unwrap();
    let b = DeviceBuffer::from_slice(&cpu, &vec![2.0f32; n]).unwrap();
    let mut c = DeviceBuffer::<f32, _>::zeroed(&cpu, n).unwrap();
    let cfg = LaunchConfig::linear(n, 256).unwrap();
    let out = o
        .launch_read::<f32>(
            "vector_add",
            &cfg,
            &mut [a.arg(), b.arg(), c.arg_mut(), KernelArg::scalar(n as u32)],
            2,
        )
        .unwrap();
    assert_eq!(out.data, vec![3.0; n]);
    let e = out.execution;
    assert!(e.success && e.error.is_none());
    assert_eq!((e.id, e.kernel.as_str(), e.config), (1, "vector_add", cfg));
    assert!(e.duration > std::time::Duration::ZERO);
    assert!(e.started_at_secs > 1.0e9);
    assert_eq!(o.kernel_names(), vec!["vector_add".to_string()]);
}

#[test]
fn unknown_and_duplicate_names_are_typed_errors() {
    let (_, o) = setup(10);
    match o.launch("nope", &LaunchConfig::new(1, 1), &mut []) {
        Err(DeviceError::KernelNotRegistered { name, known }) => {
            assert_eq!(name, "nope");
            assert_eq!(known, vec!["vector_add".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        o.register("vector_add", kernels::cpu::saxpy()),
        Err(DeviceError::KernelAlreadyRegistered(_))
    ));
    assert!(o.unregister("vector_add"));
    assert!(!o.unregister("vector_add"));
    assert!(o.history(None, None).is_empty(), "an unknown name is not a launch");
}

#[test]
fn failures_are_recorded_then_returned() {
    let (cpu, o) = setup(10);
    o.register(
        "boom",
        CpuKernel::per_thread("boom", |_| {
            Ok(Box::new(|t: &ThreadIdx| {
                assert!(t.global_x() < 3, "thread {} failed", t.global_x())
            }))
        }),
    )
    .unwrap();
    let err = o.launch("boom", &LaunchConfig::new(1, 8), &mut []).unwrap_err();
    assert!(matches!(err, DeviceError::KernelFault { .. }));
    let h = o.history(None, None);
    assert_eq!(h.len(), 1);
    assert!(!h[0].success);
    assert!(h[0].error.as_deref().unwrap().contains("failed"), "{:?}", h[0].error);
    // Reading back an argument that is not a writable buffer of T is refused up front.
    let a = DeviceBuffer::<f32, _>::zeroed(&cpu, 1).unwrap();
    let r = o.launch_read::<f32>("vector_add", &LaunchConfig::new(1, 1), &mut [a.arg()], 0);
    assert!(matches!(r, Err(DeviceError::KernelArgument { index: 0, .. })));
    let r = o.launch_read::<f32>("vector_add", &LaunchConfig::new(1, 1), &mut [], 3);
    assert!(matches!(r, Err(DeviceError::KernelArgument { index: 3, .. })));
    assert_eq!(o.summary("boom").failures, 1);
}

#[test]
fn history_is_bounded_filterable_and_summarised() {
    let (cpu, o) = setup(5);
    o.register("saxpy", kernels::cpu::saxpy()).unwrap();
    let x = DeviceBuffer::from_slice(&cpu, &[1.0f32; 64]).unwrap();
    let mut y = DeviceBuffer::<f32, _>::zeroed(&cpu, 64).unwrap();
    let cfg = LaunchConfig::linear(64, 32).unwrap();
    for i in 0..8 {
        let name = if i % 2 == 0 { "saxpy" } else { "vector_add" };
        let mut args = if name == "saxpy" {
            vec![
                KernelArg::scalar(1.0f32),
                x.arg(),
                y.arg_mut(),
                KernelArg::scalar(64u32),
            ]
        } else {
            vec![x.arg(), x.arg(), y.arg_mut(), KernelArg::scalar(64u32)]
        };
        o.launch(name, &cfg, &mut args).unwrap();
    }
    let h = o.history(None, None);
    assert_eq!(h.len(), 5, "bounded to the capacity");
    assert_eq!(
        h.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8],
        "oldest dropped first"
    );
    assert_eq!(
        o.history(Some(2), None).iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![7, 8]
    );
    let saxpy: Vec<u64> = o.history(None, Some("saxpy")).iter().map(|e| e.id).collect();
    assert_eq!(saxpy, vec![5, 7]);
    let s = o.summary("saxpy");
    assert_eq!((s.launches, s.failures), (2, 0));
    assert!(s.mean > std::time::Duration::ZERO && s.total >= s.mean);
    o.clear_history();
    assert!(o.history(None, None).is_empty());
    // Capacity 0 keeps nothing.
    let none = ComputeOrchestrator::new(cpu.clone(), 0);
    none.register("v", kernels::cpu::vector_add()).unwrap();
    none.launch(
        "v",
        &cfg,
        &mut [x.arg(), x.arg(), y.arg_mut(), KernelArg::scalar(64u32)],
    )
    .unwrap();
    assert!(none.history(None, None).is_empty());
}
