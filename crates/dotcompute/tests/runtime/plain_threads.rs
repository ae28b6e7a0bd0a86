//! Issue 10, "also in this path": Thread and Spin kernels in a program made
//! only of plain threads (no tokio runtime anywhere), and blocking sends that
//! honour the kernel's `send_timeout` in every mode.

use std::time::{Duration, Instant};

use dotcompute::{Error, ExecutionMode, KernelConfig, KernelSpec, RingKernelRuntime};

use crate::common::{blocking_times_ten, times_ten, Num};

fn spec(id: &str, mode: ExecutionMode, config: KernelConfig) -> KernelSpec {
    KernelSpec::builder::<Num, Num>(id)
        .config(KernelConfig { mode, ..config })
        .blocking_handler(blocking_times_ten)
        .build()
        .unwrap()
}

/// Launch, activate, drive (from two plain threads, with every blocking
/// form) and shut down Thread and Spin kernels; no tokio runtime exists.
#[test]
fn thread_and_spin_kernels_run_without_any_tokio_runtime() {
    assert!(tokio::runtime::Handle::try_current().is_err(), "no tokio runtime here");
    let rt = RingKernelRuntime::new();
    for (id, mode) in [("t", ExecutionMode::Thread), ("s", ExecutionMode::Spin)] {
        rt.launch_spec(spec(id, mode, KernelConfig::default())).unwrap();
        rt.activate(id).unwrap();
    }
    std::thread::scope(|scope| {
        for id in ["t", "s"] {
            let h = rt.handle::<Num, Num>(id).unwrap();
            scope.spawn(move || {
                for i in 0..1_000 {
                    h.send_blocking(Num::new(i)).unwrap();
                    assert_eq!(h.receive_blocking().unwrap().n, i * 10);
                }
                h.send_batch_blocking((0..64).map(Num::new).collect()).unwrap();
                let mut out = Vec::new();
                while out.len() < 64 {
                    h.receive_batch_blocking(64, &mut out).unwrap();
                }
                assert_eq!(
                    out.iter().map(|m| m.n).collect::<Vec<_>>(),
                    (0..64).map(|n| n * 10).collect::<Vec<_>>()
                );
                assert_eq!(h.call_blocking(Num::new(7)).unwrap().n, 70);
                assert_eq!(
                    h.call_blocking_timeout(Num::new(8), Duration::from_secs(10)).unwrap().n,
                    80
                );
                assert!(matches!(
                    h.receive_blocking_timeout(Duration::from_millis(10)),
                    Err(Error::QueueTimeout { .. })
                ));
            });
        }
    });
    rt.deactivate("t").unwrap();
    rt.reactivate("t").unwrap();
    let report = rt.terminate_blocking("t").unwrap();
    assert!(!report.forced, "{report:?}");
    let shutdown = rt.shutdown_blocking();
    assert_eq!(shutdown.kernels.len(), 1);
    assert!(shutdown.kernels.iter().all(|k| !k.forced), "{shutdown:?}");
}

/// An async kernel still needs tokio, and says so instead of panicking.
#[test]
fn an_async_kernel_activated_without_tokio_is_a_clear_error() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("a", KernelConfig::default(), times_ten).unwrap();
    let err = rt.activate("a").unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    assert_eq!(
        rt.kernel_state("a").unwrap(),
        dotcompute::KernelState::Launched,
        "nothing changed"
    );
    rt.shutdown_blocking();
}

const TIMEOUT: Duration = Duration::from_millis(50);

/// With `send_timeout` set, every blocking send form into a full queue
/// returns after about that long with the message — in every mode. (The
/// spin tier's used to wait forever.)
fn blocking_sends_honour_send_timeout(mode: ExecutionMode) {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 2,
        send_timeout: Some(TIMEOUT),
        ..KernelConfig::default()
    };
    // The async kernel's task needs a tokio runtime to run on; the sends
    // below are made from this plain thread all the same.
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    match mode {
        ExecutionMode::Async => {
            let _guard = tokio.enter();
            rt.launch_with("k", KernelConfig { mode, ..config }, times_ten).unwrap();
            rt.activate("k").unwrap();
        }
        _ => {
            rt.launch_spec(spec("k", mode, config)).unwrap();
            rt.activate("k").unwrap();
        }
    }
    rt.deactivate("k").unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    h.try_send(Num::new(0)).unwrap();
    h.try_send(Num::new(1)).unwrap();
    let timed = |f: &dyn Fn() -> Vec<i64>| {
        let start = Instant::now();
        let back = f();
        let took = start.elapsed();
        assert!(took >= TIMEOUT, "{mode:?}: gave up early, after {took:?}");
        // Generous: the spin tier's used to hang for good.
        assert!(took < Duration::from_secs(5), "{mode:?}: took {took:?}");
        back
    };
    let back = timed(&|| {
        let e = h.send_blocking(Num::new(2)).unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
        vec![e.into_message().n]
    });
    assert_eq!(back, [2]);
    let back = timed(&|| {
        let e = h.send_batch_blocking(vec![Num::new(3), Num::new(4)]).unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
        e.into_message().iter().map(|m| m.n).collect()
    });
    assert_eq!(back, [3, 4]);
    // The async forms too, on any executor.
    let back = timed(&|| {
        let e = futures::executor::block_on(h.send(Num::new(5))).unwrap_err();
        vec![e.into_message().n]
    });
    assert_eq!(back, [5]);
    let t = h.telemetry();
    assert_eq!(t.input_queue.timed_out, 3, "{:?}", t.input_queue);
    assert!(t.input_queue.is_consistent());
    rt.shutdown_blocking();
    drop(tokio);
}

#[test]
fn blocking_sends_honour_send_timeout_async() {
    blocking_sends_honour_send_timeout(ExecutionMode::Async);
}

#[test]
fn blocking_sends_honour_send_timeout_thread() {
    blocking_sends_honour_send_timeout(ExecutionMode::Thread);
}

#[test]
fn blocking_sends_honour_send_timeout_spin() {
    blocking_sends_honour_send_timeout(ExecutionMode::Spin);
}

/// The handle's explicit timeouts win over the configured one.
#[test]
fn explicit_timeouts_override_the_configured_one_on_the_spin_tier() {
    let rt = RingKernelRuntime::new();
    rt.launch_spec(spec(
        "s",
        ExecutionMode::Spin,
        KernelConfig {
            input_queue_size: 2,
            ..KernelConfig::default()
        },
    ))
    .unwrap();
    rt.activate("s").unwrap();
    rt.deactivate("s").unwrap();
    let h = rt.handle::<Num, Num>("s").unwrap();
    h.try_send(Num::new(0)).unwrap();
    h.try_send(Num::new(1)).unwrap();
    let e = h.send_blocking_timeout(Num::new(2), TIMEOUT).unwrap_err();
    assert!(
        matches!(e.error(), Error::QueueTimeout { timeout, .. } if *timeout == TIMEOUT),
        "{e:?}"
    );
    let e = h.send_batch_blocking_timeout(vec![Num::new(3)], TIMEOUT).unwrap_err();
    assert_eq!(e.into_message().len(), 1);
    rt.shutdown_blocking();
}
