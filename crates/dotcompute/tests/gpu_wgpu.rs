//! Ring kernels on wgpu (lavapipe in CI) in the runtime: WGSL handlers,
//! state in device memory across batched dispatches, the same lifecycle,
//! messaging and telemetry as any kernel; handler errors fail the kernel;
//! a bad handler is a typed error before launch (the anomaly detector on
//! wgpu is tested in `dotcompute-workloads`). Skips, saying why, without an adapter
//! (fails in CI).
#![cfg(feature = "wgpu")]

mod wgpu_common;

use std::time::{Duration, Instant};

use dotcompute::device::Backend;
use dotcompute::gpu::handlers::{self, Sample, Stats, StatsState};
use dotcompute::gpu::source::Threading;
use dotcompute::gpu::wgpu::{echo_wgsl, running_stats_wgsl, wgpu_kernel, WgpuKernelOptions, WgpuMonitor, WgslHandler};
use dotcompute::gpu::{Envelope, GpuError, GpuMessage, NoState};
use dotcompute::{Error, ExecutionMode, KernelState, Message, RingKernelRuntime, TerminateOptions};
use wgpu_common::backend;

const LONG: Duration = Duration::from_secs(20);

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: ((seq * 7919) % 1013) as f32 * 0.25 - 100.0,
        channel: (seq % 3) as u32,
    }
}

fn has_f64() -> bool {
    match backend() {
        Some(b) if b.supports_f64() => true,
        Some(b) => {
            eprintln!(
                "skipped: {} has no SHADER_F64, which this handler needs",
                b.device().name
            );
            false
        }
        None => false,
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
async fn running_stats_on_the_device_equals_the_rust_twin_across_batches() {
    if !has_f64() {
        return;
    }
    let monitor = WgpuMonitor::new();
    let options = WgpuKernelOptions {
        batch_size: 64,
        monitor: Some(monitor.clone()),
        ..WgpuKernelOptions::default()
    };
    let spec =
        wgpu_kernel::<Sample, Stats, StatsState>("wgpu_stats", running_stats_wgsl(), StatsState::zeroed(), options)
            .unwrap();
    assert_eq!(spec.config().mode, ExecutionMode::Thread);
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("wgpu_stats").unwrap();
    let handle = rt.handle::<Envelope<Sample>, Envelope<Stats>>("wgpu_stats").unwrap();
    let n = 1000u64;
    let sent: Vec<Envelope<Sample>> = (0..n).map(|s| Envelope::new(sample(s))).collect();
    let ids: Vec<_> = sent.iter().map(|e| e.message_id()).collect();
    handle.send_batch(sent).await.unwrap();
    let mut replies = Vec::new();
    while replies.len() < n as usize {
        handle.receive_batch(n as usize, &mut replies).await.unwrap();
    }
    // The twin, message by message, from the same initial state.
    let mut state = StatsState::zeroed();
    let mut want = Stats::zeroed();
    for (i, r) in replies.iter().enumerate() {
        handlers::running_stats(&sample(i as u64), &mut want, &mut state);
        assert_eq!(r.header.correlation_id, Some(ids[i]), "replies in order, correlated");
        assert_eq!((r.payload.seq, r.payload.count), (want.seq, want.count), "message {i}");
        assert_eq!(
            (r.payload.window_min, r.payload.window_max, r.payload.window_len),
            (want.window_min, want.window_max, want.window_len)
        );
        assert!(
            (r.payload.mean - want.mean).abs() <= 1e-12 * want.mean.abs().max(1.0),
            "message {i}"
        );
        assert!(
            (r.payload.variance - want.variance).abs() <= 1e-9 * want.variance.abs().max(1.0),
            "message {i}"
        );
        assert!((r.payload.window_mean - want.window_mean).abs() <= 1e-4 * want.window_mean.abs().max(1.0));
    }
    // call() works as for any kernel: the state carried on past 1000.
    let r: Envelope<Stats> = rt
        .call_timeout("wgpu_stats", Envelope::new(sample(n)), LONG)
        .await
        .unwrap();
    assert_eq!(r.payload.count, n + 1);
    let snap = monitor.snapshot();
    assert_eq!(snap.messages, n + 1);
    assert!(snap.dispatches >= n / 64, "{snap:?}");
    assert!(snap.max_batch <= 64);
    // The runtime's telemetry counts the kernel like any other (the sent
    // counter is bumped just after the reply is queued: wait for it).
    let deadline = Instant::now() + LONG;
    let mut t = rt.telemetry("wgpu_stats").unwrap();
    while t.messages_sent < n + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
        t = rt.telemetry("wgpu_stats").unwrap();
    }
    assert_eq!((t.messages_received, t.messages_sent), (n + 1, n + 1));
    let report = rt.terminate("wgpu_stats").await.unwrap();
    assert_eq!(report.failure, None);
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_holds_messages_and_terminate_with_messages_in_flight_answers_them() {
    if backend().is_none() {
        return;
    }
    let monitor = WgpuMonitor::new();
    let options = WgpuKernelOptions {
        batch_size: 32,
        monitor: Some(monitor.clone()),
        ..WgpuKernelOptions::default()
    };
    let spec = wgpu_kernel::<Sample, Sample, NoState>("wgpu_echo", echo_wgsl(), NoState::default(), options).unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("wgpu_echo").unwrap();
    let handle = rt.handle::<Envelope<Sample>, Envelope<Sample>>("wgpu_echo").unwrap();
    let r: Envelope<Sample> = handle.call_timeout(Envelope::new(sample(1)), LONG).await.unwrap();
    assert_eq!(r.payload, sample(1));

    rt.deactivate("wgpu_echo").unwrap();
    assert_eq!(rt.kernel_state("wgpu_echo").unwrap(), KernelState::Deactivated);
    let before = monitor.snapshot().messages;
    handle
        .send_batch((0..500).map(|s| Envelope::new(sample(s))).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        monitor.snapshot().messages,
        before,
        "nothing dispatched while deactivated"
    );
    assert!(
        handle.receive_timeout(Duration::from_millis(50)).await.is_err(),
        "no replies while deactivated"
    );
    rt.reactivate("wgpu_echo").unwrap();
    let mut replies = Vec::new();
    while replies.len() < 500 {
        handle.receive_batch(500, &mut replies).await.unwrap();
    }
    assert!(replies.iter().enumerate().all(|(i, r)| r.payload == sample(i as u64)));

    // Terminate (draining) with thousands queued and batches on the device:
    // every message is handled and its reply kept for the host.
    handle
        .send_batch((0..3000).map(|s| Envelope::new(sample(s))).collect())
        .await
        .unwrap();
    let report = rt
        .terminate_with(
            "wgpu_echo",
            TerminateOptions {
                drain: true,
                timeout: LONG,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (report.discarded_input, report.forced, report.failure),
        (0, false, None)
    );
    assert_eq!(
        report.unread_output, 3000,
        "every message was handled and its reply kept"
    );
    let mut got = Vec::new();
    while got.len() < 3000 {
        handle.receive_batch(3000, &mut got).await.unwrap();
    }
    assert!(got.iter().enumerate().all(|(i, r)| r.payload == sample(i as u64)));
    assert!(!monitor.snapshot().running, "the device was released");
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_without_drain_while_batches_are_in_flight_is_bounded_and_clean() {
    if backend().is_none() {
        return;
    }
    let monitor = WgpuMonitor::new();
    let options = WgpuKernelOptions {
        batch_size: 16,
        monitor: Some(monitor.clone()),
        ..WgpuKernelOptions::default()
    };
    let spec = wgpu_kernel::<Sample, Sample, NoState>("wgpu_stop", echo_wgsl(), NoState::default(), options).unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("wgpu_stop").unwrap();
    let handle = rt.handle::<Envelope<Sample>, Envelope<Sample>>("wgpu_stop").unwrap();
    handle
        .send_batch((0..4000).map(|s| Envelope::new(sample(s))).collect())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let start = Instant::now();
    let report = rt.terminate("wgpu_stop").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!report.forced);
    assert_eq!(report.failure, None);
    let handled = monitor.snapshot().messages as usize;
    assert_eq!(
        handled + report.discarded_input,
        4000,
        "every message handled or counted as discarded"
    );
    assert!(!monitor.snapshot().running);
    rt.shutdown().await;
}

/// A stateless handler that refuses negative values with code 7.
const CHECKED: &str = "
struct Sample { seq: vec2<u32>, value: f32, channel: u32 }
struct NoState { unused: u32 }
fn checked(input: Sample, out: ptr<function, Sample>, state: ptr<function, NoState>) -> u32 {
    *out = input;
    (*out).value = input.value * 2.0;
    if (input.value < 0.0) { return 7u; }
    return 0u;
}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_moves_the_kernel_to_failed_and_the_host_hears_it() {
    if backend().is_none() {
        return;
    }
    let handler = WgslHandler::new(CHECKED, "checked", ("Sample", "Sample", "NoState"), Threading::Parallel);
    let spec = wgpu_kernel::<Sample, Sample, NoState>(
        "wgpu_checked",
        handler,
        NoState::default(),
        WgpuKernelOptions::default(),
    )
    .unwrap();
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec).unwrap();
    rt.activate("wgpu_checked").unwrap();
    let ok: Envelope<Sample> = rt
        .call_timeout(
            "wgpu_checked",
            Envelope::new(Sample {
                seq: 1,
                value: 2.0,
                channel: 0,
            }),
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(ok.payload.value, 4.0);
    rt.send(
        "wgpu_checked",
        Envelope::new(Sample {
            seq: 2,
            value: -1.0,
            channel: 0,
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        wait_state(&rt, "wgpu_checked", KernelState::Failed).await,
        KernelState::Failed
    );
    let t = rt.telemetry("wgpu_checked").unwrap();
    let last = t.last_error.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(last.contains("code 7"), "{t:?}");
    let err = rt
        .send(
            "wgpu_checked",
            Envelope::new(Sample {
                seq: 3,
                value: 1.0,
                channel: 0,
            }),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("code 7"), "{err}");
    rt.shutdown().await;
}

#[test]
fn bad_handlers_are_typed_errors_before_launch() {
    if backend().is_none() {
        return;
    }
    // A WGSL syntax error: the compile error carries the line.
    let broken = WgslHandler::new(
        "struct Sample { seq: vec2<u32>, value: f32, channel: u32 }\nstruct NoState { unused: u32 }\n\
         fn f(input: Sample, out: ptr<function, Sample>, state: ptr<function, NoState>) -> u32 {\n    return 0u +;\n}\n",
        "f",
        ("Sample", "Sample", "NoState"),
        Threading::Parallel,
    );
    match wgpu_kernel::<Sample, Sample, NoState>("bad", broken, NoState::default(), WgpuKernelOptions::default()) {
        Err(Error::Gpu {
            error: GpuError::Compile(m),
            ..
        }) => assert!(m.contains("line 4"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A struct whose layout differs from the Rust type.
    let wrong = WgslHandler::new(
        "struct Sample { seq: u32, value: f32, channel: u32 }\nstruct NoState { unused: u32 }\n\
         fn f(input: Sample, out: ptr<function, Sample>, state: ptr<function, NoState>) -> u32 { *out = input; return 0u; }\n",
        "f",
        ("Sample", "Sample", "NoState"),
        Threading::Parallel,
    );
    match wgpu_kernel::<Sample, Sample, NoState>("bad", wrong, NoState::default(), WgpuKernelOptions::default()) {
        Err(Error::Gpu {
            error: GpuError::Compile(m),
            ..
        }) => assert!(m.contains("12 bytes") && m.contains("16 bytes"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(matches!(
        wgpu_kernel::<Sample, Sample, NoState>(
            "bad",
            echo_wgsl(),
            NoState::default(),
            WgpuKernelOptions {
                batch_size: 0,
                ..WgpuKernelOptions::default()
            }
        ),
        Err(Error::InvalidConfiguration { .. })
    ));
}
