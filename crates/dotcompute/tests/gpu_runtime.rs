//! GPU ring kernels in the runtime, with an emulated device: the same
//! launch / activate / deactivate / reactivate / terminate / send / receive /
//! call API and telemetry as any kernel, and device failures (stale
//! heartbeat, vanished device, handler error codes) turn the kernel Failed.

use std::time::{Duration, Instant};

use dotcompute::gpu::emulator::EmulatorControl;
use dotcompute::gpu::handlers::{self, Sample, Scaled, Stats, StatsState};
use dotcompute::gpu::protocol::DeviceState;
use dotcompute::gpu::{
    emulated_kernel, emulated_kernel_with_state, Envelope, GpuKernelOptions, GpuMonitor, GpuRingOptions, NoState,
    RingPhase,
};
use dotcompute::{Error, ExecutionMode, KernelState, Message, RingKernelRuntime, RuntimeConfig, TerminateOptions};

const LONG: Duration = Duration::from_secs(10);

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: (seq % 977) as f32 * 0.5 - 200.0,
        channel: (seq % 5) as u32,
    }
}

fn expected(s: &Sample) -> Scaled {
    Scaled {
        seq: s.seq,
        channel: s.channel,
        value: s.value.mul_add(2.0, 1.0),
        squared: s.value * s.value,
        reserved: 0,
    }
}

fn options(monitor: &GpuMonitor) -> GpuKernelOptions {
    GpuKernelOptions {
        monitor: Some(monitor.clone()),
        ..GpuKernelOptions::default()
    }
}

async fn wait_state(rt: &RingKernelRuntime, id: &str, want: KernelState) -> KernelState {
    let deadline = Instant::now() + LONG;
    loop {
        let s = rt.kernel_state(id).unwrap();
        if s == want || Instant::now() >= deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_of_100k_messages_through_the_runtime() {
    let monitor = GpuMonitor::new();
    let spec = emulated_kernel::<Sample, Scaled, NoState, _, _>("gpu_rt_100k", handlers::transform, options(&monitor))
        .unwrap();
    assert_eq!(spec.config().mode, ExecutionMode::Thread);
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    assert_eq!(rt.kernel_state("gpu_rt_100k").unwrap(), KernelState::Launched);
    rt.activate("gpu_rt_100k").unwrap();
    let handle = rt.handle::<Envelope<Sample>, Envelope<Scaled>>("gpu_rt_100k").unwrap();
    let n: u64 = 100_000;
    let start = Instant::now();
    let sender = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(n as usize);
            for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
                let batch: Vec<Envelope<Sample>> = chunk.iter().map(|&s| Envelope::new(sample(s))).collect();
                ids.extend(batch.iter().map(|e| e.message_id()));
                handle.send_batch(batch).await.unwrap();
            }
            ids
        })
    };
    let mut replies = Vec::with_capacity(n as usize);
    while (replies.len() as u64) < n {
        handle.receive_batch(1024, &mut replies).await.unwrap();
    }
    let elapsed = start.elapsed();
    let ids = sender.await.unwrap();
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.payload, expected(&sample(i as u64)), "reply {i}");
        assert_eq!(r.correlation_id(), Some(ids[i]), "reply {i} answers request {i}");
    }
    let t = rt.telemetry("gpu_rt_100k").unwrap();
    assert_eq!((t.messages_received, t.messages_sent), (n, n));
    let snap = monitor.snapshot().unwrap();
    assert!(snap.emulation);
    println!(
        "runtime + emulated GPU kernel: {n} messages in {:.1} ms = {:.0} msg/s ({} device batches)",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64(),
        snap.counters.batches
    );
    let report = rt.terminate("gpu_rt_100k").await.unwrap();
    assert!(!report.forced);
    assert_eq!(report.failure, None);
    let snap = monitor.snapshot().unwrap();
    assert_eq!((snap.counters.state, snap.counters.processed), (DeviceState::Exited, n));
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_gets_the_correlated_reply() {
    let spec =
        emulated_kernel::<Sample, Scaled, NoState, _, _>("gpu_call", handlers::transform, GpuKernelOptions::default())
            .unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("gpu_call").unwrap();
    for seq in [3u64, 1, 4, 1, 5] {
        let req = Envelope::with_priority(sample(seq), 200);
        let id = req.message_id();
        let reply: Envelope<Scaled> = rt.call_timeout("gpu_call", req, LONG).await.unwrap();
        assert_eq!(reply.payload, expected(&sample(seq)));
        assert_eq!(reply.correlation_id(), Some(id));
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_reactivate_and_terminate_with_messages_in_flight() {
    let monitor = GpuMonitor::new();
    let spec = emulated_kernel::<Sample, Scaled, NoState, _, _>(
        "gpu_lifecycle",
        |i: &Sample, o: &mut Scaled, s: &mut NoState| {
            std::thread::sleep(Duration::from_micros(20));
            handlers::transform(i, o, s)
        },
        options(&monitor),
    )
    .unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("gpu_lifecycle").unwrap();
    let handle = rt
        .handle::<Envelope<Sample>, Envelope<Scaled>>("gpu_lifecycle")
        .unwrap();
    handle
        .send_batch((0..2000).map(|s| Envelope::new(sample(s))).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    rt.deactivate("gpu_lifecycle").unwrap();
    // The device parks after its batch: its status says so and its count stops.
    let parked = tokio::task::spawn_blocking({
        let monitor = monitor.clone();
        move || {
            monitor.wait_for(LONG, |s| {
                s.counters.state == DeviceState::Parked && s.phase == RingPhase::Deactivated
            })
        }
    })
    .await
    .unwrap()
    .expect("the device parks");
    assert!(parked.counters.processed < 2000, "deactivated with messages in flight");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let still = monitor.snapshot().unwrap();
    assert_eq!(
        still.counters.processed, parked.counters.processed,
        "nothing handled while deactivated"
    );
    assert!(still.counters.heartbeat >= parked.counters.heartbeat);
    rt.reactivate("gpu_lifecycle").unwrap();
    let mut replies = Vec::new();
    while replies.len() < 2000 {
        handle.receive_batch(2000, &mut replies).await.unwrap();
    }
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.payload, expected(&sample(i as u64)));
    }
    // Terminate (no drain) while a new burst is in flight: bounded, clean.
    handle
        .send_batch((0..2000).map(|s| Envelope::new(sample(s))).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let start = Instant::now();
    let report = rt.terminate("gpu_lifecycle").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!report.forced);
    assert_eq!(report.failure, None);
    let end = monitor.snapshot().unwrap();
    assert_eq!(end.counters.state, DeviceState::Exited);
    assert!(end.counters.processed >= 2000 && end.counters.processed < 4000);
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_terminate_delivers_every_reply() {
    let spec =
        emulated_kernel::<Sample, Scaled, NoState, _, _>("gpu_drain", handlers::transform, GpuKernelOptions::default())
            .unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("gpu_drain").unwrap();
    let handle = rt.handle::<Envelope<Sample>, Envelope<Scaled>>("gpu_drain").unwrap();
    handle
        .send_batch((0..3000).map(|s| Envelope::new(sample(s))).collect())
        .await
        .unwrap();
    let report = rt
        .terminate_with(
            "gpu_drain",
            TerminateOptions {
                drain: true,
                timeout: LONG,
            },
        )
        .await
        .unwrap();
    assert_eq!((report.discarded_input, report.forced), (0, false));
    assert_eq!(
        report.unread_output, 3000,
        "every message was handled and its reply kept"
    );
    let mut replies = Vec::new();
    while replies.len() < 3000 {
        handle.receive_batch(3000, &mut replies).await.unwrap();
    }
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.payload, expected(&sample(i as u64)));
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_across_messages_in_the_runtime() {
    let spec = emulated_kernel_with_state::<Sample, Stats, StatsState, _, _>(
        "gpu_stats",
        handlers::running_stats,
        StatsState {
            count: 10,
            mean: 1.0,
            m2: 0.0,
            window: [0.0; 16],
            next: 0,
            len: 0,
        },
        GpuKernelOptions::default(),
    )
    .unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("gpu_stats").unwrap();
    let mut last = None;
    for i in 0..100u64 {
        let r: Envelope<Stats> = rt
            .call_timeout(
                "gpu_stats",
                Envelope::new(Sample {
                    seq: i,
                    value: 1.0,
                    channel: 0,
                }),
                LONG,
            )
            .await
            .unwrap();
        // Starts from the initial state: ten ones seen already.
        assert_eq!(r.payload.count, 11 + i);
        assert_eq!(r.payload.mean, 1.0);
        assert_eq!(r.payload.window_len as u64, (i + 1).min(16));
        last = Some(r.payload);
    }
    assert_eq!(last.map(|s| s.variance), Some(0.0));
    rt.shutdown().await;
}

async fn failing_kernel(id: &str, control: &EmulatorControl) -> (RingKernelRuntime, GpuMonitor) {
    let monitor = GpuMonitor::new();
    let options = GpuKernelOptions {
        ring: GpuRingOptions {
            heartbeat_timeout: Duration::from_millis(200),
            terminate_timeout: Duration::from_millis(200),
            ..GpuRingOptions::default()
        },
        emulator: Some(control.clone()),
        monitor: Some(monitor.clone()),
        ..GpuKernelOptions::default()
    };
    let spec = emulated_kernel::<Sample, Scaled, NoState, _, _>(id, handlers::transform, options).unwrap();
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_secs(2),
    });
    rt.launch_spec(spec).unwrap();
    rt.activate(id).unwrap();
    let r: Envelope<Scaled> = rt.call_timeout(id, Envelope::new(sample(7)), LONG).await.unwrap();
    assert_eq!(r.payload, expected(&sample(7)));
    (rt, monitor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_heartbeat_marks_the_kernel_failed() {
    let control = EmulatorControl::new();
    let (rt, monitor) = failing_kernel("gpu_stale", &control).await;
    control.freeze();
    let start = Instant::now();
    assert_eq!(
        wait_state(&rt, "gpu_stale", KernelState::Failed).await,
        KernelState::Failed
    );
    assert!(start.elapsed() >= Duration::from_millis(150));
    let t = rt.telemetry("gpu_stale").unwrap();
    let last = t.last_error.map(|e| e.to_string()).unwrap_or_default();
    assert!(last.contains("heartbeat"), "{last}");
    match rt
        .send("gpu_stale", Envelope::new(sample(8)))
        .await
        .map_err(Error::from)
    {
        Err(Error::KernelFailed { error, .. }) => assert!(error.to_string().contains("hung or dead"), "{error}"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    assert_eq!(monitor.snapshot().unwrap().phase, RingPhase::Failed);
    control.resume(); // the emulator thread sees terminate and ends
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_device_marks_the_kernel_failed() {
    let control = EmulatorControl::new();
    let (rt, _) = failing_kernel("gpu_vanished", &control).await;
    control.stop_silently();
    assert_eq!(
        wait_state(&rt, "gpu_vanished", KernelState::Failed).await,
        KernelState::Failed
    );
    let last = rt
        .telemetry("gpu_vanished")
        .unwrap()
        .last_error
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(last.contains("stopped running without exiting"), "{last}");
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_code_marks_the_kernel_failed() {
    let spec =
        emulated_kernel::<Sample, Scaled, NoState, _, _>("gpu_nan", handlers::transform, GpuKernelOptions::default())
            .unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("gpu_nan").unwrap();
    rt.send(
        "gpu_nan",
        Envelope::new(Sample {
            seq: 1,
            value: f32::INFINITY,
            channel: 0,
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        wait_state(&rt, "gpu_nan", KernelState::Failed).await,
        KernelState::Failed
    );
    let last = rt
        .telemetry("gpu_nan")
        .unwrap()
        .last_error
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(last.contains("reported 1 error(s), the last with code 1"), "{last}");
    rt.shutdown().await;
}

#[test]
fn bad_options_are_refused_when_building_the_spec() {
    let mut o = GpuKernelOptions::default();
    o.ring.input_capacity = 1000;
    let e = emulated_kernel::<Sample, Scaled, NoState, _, _>("x", handlers::transform, o).unwrap_err();
    assert!(e.to_string().contains("power of two"), "{e}");
    let mut o = GpuKernelOptions::default();
    o.ring.device.batch_size = 0;
    let e = emulated_kernel::<Sample, Scaled, NoState, _, _>("x", handlers::transform, o).unwrap_err();
    assert!(e.to_string().contains("batch size"), "{e}");
}
