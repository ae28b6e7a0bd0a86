//! Discovery, selection, the `dotcompute info` report, and the GPU monitor's
//! clean "unavailable" state.

#[cfg(feature = "nvml")]
use dotcompute::device::GpuMonitor;
use dotcompute::device::{report, Accelerator, Backend, BackendKind, CudaStatus, DeviceError};

#[test]
fn the_cpu_is_always_device_zero_with_real_properties() {
    let acc = Accelerator::discover();
    let cpu = acc.device(0).unwrap();
    assert_eq!(cpu.kind, BackendKind::Cpu);
    assert_eq!(cpu.id, 0);
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    assert_eq!(cpu.multiprocessor_count, cores);
    assert!(!cpu.name.is_empty());
    if cfg!(target_os = "linux") {
        assert!(cpu.total_memory > 0, "read from /proc/meminfo");
    }
    assert_eq!(cpu.compute_capability_str(), "n/a");
    assert!(acc.device_count() >= 1);
    // Every CUDA device (if any) follows, numbered in order.
    for (i, d) in acc.devices().iter().enumerate() {
        assert_eq!(d.id, i);
    }
    let others = acc
        .devices()
        .iter()
        .filter(|d| d.kind != BackendKind::Cpu && d.kind != BackendKind::Cuda)
        .count();
    assert_eq!(acc.cuda_devices().count(), acc.device_count() - 1 - others);
}

#[test]
fn selection_by_index_with_a_typed_error_out_of_range() {
    let mut acc = Accelerator::discover();
    let n = acc.device_count();
    match acc.select(n) {
        Err(DeviceError::DeviceNotFound { index, count }) => assert_eq!((index, count), (n, n)),
        other => panic!("{other:?}"),
    }
    let msg = acc.device(n + 5).unwrap_err().to_string();
    assert!(msg.contains(&format!("device {} not found", n + 5)), "{msg}");
    acc.select(0).unwrap();
    assert_eq!(acc.current().kind, BackendKind::Cpu);
    #[cfg(feature = "cuda")]
    assert!(acc.cuda_backend(0).is_err(), "device 0 is the CPU, not a CUDA device");
    assert_eq!(acc.cpu_backend().device().id, 0);
}

#[test]
fn without_a_driver_cuda_is_cleanly_unavailable() {
    let acc = Accelerator::discover();
    match acc.cuda_status() {
        CudaStatus::Unavailable { reason } => {
            assert!(!acc.cuda_available());
            assert!(!reason.is_empty());
            assert_eq!(acc.cuda_devices().count(), 0);
            #[cfg(feature = "cuda")]
            assert!(matches!(
                dotcompute::device::CudaBackend::new(0),
                Err(DeviceError::Unavailable { .. })
            ));
            #[cfg(not(feature = "cuda"))]
            assert!(reason.contains("without the `cuda` feature"), "{reason}");
        }
        CudaStatus::Available { device_count, .. } => assert_eq!(*device_count, acc.device_count() - 1),
    }
}

#[test]
fn the_report_prints_devices_and_tool_chain_and_serialises() {
    let r = report();
    let text = r.to_string();
    for needle in ["Devices:", "[0] cpu", "CUDA driver:", "NVRTC:", "ptxas:", "NVML:"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["devices"][0]["kind"], "cpu");
    for c in ["cuda_driver", "nvrtc", "ptxas", "nvml"] {
        let avail = json[c]["available"].as_bool().unwrap();
        assert_eq!(
            avail,
            json[c]["reason"].is_null(),
            "{c}: a reason exactly when unavailable"
        );
    }
    // The NVRTC line agrees with the compiler's own probe.
    #[cfg(feature = "compiler")]
    assert_eq!(
        r.nvrtc.available,
        dotcompute::device::KernelCompiler::available().is_ok()
    );
    // A build without the compiler says so instead of probing.
    #[cfg(not(feature = "compiler"))]
    assert!(!r.nvrtc.available && text.contains("built without the `compiler` feature"));
    #[cfg(not(feature = "nvml"))]
    assert!(!r.nvml.available && text.contains("built without the `nvml` feature"));
}

#[cfg(feature = "nvml")]
#[test]
fn the_monitor_without_nvml_is_a_clean_state() {
    let m = GpuMonitor::new();
    if m.is_available() {
        assert!(m.unavailable_reason().is_none());
        let samples = m.sample_all();
        assert_eq!(samples.len() as u32, m.device_count());
        return;
    }
    assert!(
        m.unavailable_reason().unwrap().contains("NVML"),
        "{:?}",
        m.unavailable_reason()
    );
    assert_eq!(m.device_count(), 0);
    assert!(m.sample_all().is_empty());
    assert!(matches!(
        m.sample(0),
        Err(DeviceError::Unavailable { what: "NVML", .. })
    ));
    assert!(m.driver_version().is_err());
    assert_eq!(dotcompute::device::monitor::to_prometheus(&m.sample_all()), "");
}

#[cfg(feature = "nvml")]
#[test]
fn prometheus_export_of_samples() {
    let s = dotcompute::device::GpuSample {
        index: 1,
        name: Some("Test GPU".into()),
        gpu_utilization_pct: Some(42),
        memory_utilization_pct: None,
        memory_used_bytes: Some(1024),
        memory_total_bytes: Some(4096),
        temperature_c: Some(60),
        power_watts: Some(123.5),
        timestamp_secs: 0.0,
    };
    let text = dotcompute::device::monitor::to_prometheus(&[s]);
    assert!(text.contains("dotcompute_gpu_utilization_percent{gpu=\"1\"} 42"));
    assert!(text.contains("dotcompute_gpu_power_watts{gpu=\"1\"} 123.5"));
    assert!(!text.contains("memory_utilization"), "unreported metrics are omitted");
}
