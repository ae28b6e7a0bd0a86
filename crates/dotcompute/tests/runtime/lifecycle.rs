use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcompute::{
    Error, KernelConfig, KernelContext, KernelState, Message, Operation, RingKernelRuntime, RuntimeConfig,
    TerminateOptions,
};

use crate::common::{counting, times_ten, watched, DropFlag, Num};

#[tokio::test]
async fn launch_activate_call_terminate() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    assert_eq!(rt.kernel_state("k").unwrap(), KernelState::Launched);
    rt.activate("k").unwrap();
    assert_eq!(rt.kernel_state("k").unwrap(), KernelState::Active);
    let r: Num = rt.call("k", Num::new(4)).await.unwrap();
    assert_eq!(r.n, 40);
    let report = rt.terminate("k").await.unwrap();
    assert_eq!(report.previous_state, KernelState::Active);
    assert!(!report.forced);
    assert!(matches!(rt.kernel_state("k"), Err(Error::KernelNotFound { .. })));
    // The id is free again.
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.shutdown().await;
}

#[tokio::test]
async fn illegal_transitions_through_the_runtime_are_state_errors() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    let expect_state_err = |r: Result<(), Error>, state, operation| match r {
        Err(Error::State(e)) => {
            assert_eq!(e.kernel, "k");
            assert_eq!(e.state, state);
            assert_eq!(e.operation, operation);
        }
        other => panic!("expected a state error, got {other:?}"),
    };
    expect_state_err(rt.deactivate("k"), KernelState::Launched, Operation::Deactivate);
    expect_state_err(rt.reactivate("k"), KernelState::Launched, Operation::Reactivate);
    expect_state_err(
        rt.send("k", Num::new(1)).await.map_err(Error::from),
        KernelState::Launched,
        Operation::Send,
    );
    assert!(matches!(rt.receive::<Num>("k").await, Err(Error::State(_))));
    rt.activate("k").unwrap();
    expect_state_err(rt.activate("k"), KernelState::Active, Operation::Activate);
    expect_state_err(rt.reactivate("k"), KernelState::Active, Operation::Reactivate);
    rt.deactivate("k").unwrap();
    expect_state_err(rt.deactivate("k"), KernelState::Deactivated, Operation::Deactivate);
    rt.reactivate("k").unwrap();
    assert_eq!(rt.kernel_state("k").unwrap(), KernelState::Active);
    rt.shutdown().await;
}

#[tokio::test]
async fn deactivation_holds_messages_until_reactivated() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.activate("k").unwrap();
    // Make sure the handler is already waiting in receive.
    let _: Num = rt.call("k", Num::new(0)).await.unwrap();
    rt.deactivate("k").unwrap();
    for i in 1..=5 {
        rt.send("k", Num::new(i)).await.unwrap();
    }
    // Nothing is delivered while deactivated.
    let r = rt.receive_timeout::<Num>("k", Duration::from_millis(100)).await;
    assert!(matches!(r, Err(Error::QueueTimeout { .. })), "{r:?}");
    let t = rt.telemetry("k").unwrap();
    assert_eq!(t.messages_received, 1);
    assert_eq!(t.input_queue.depth, 5);
    rt.reactivate("k").unwrap();
    for i in 1..=5 {
        let r: Num = rt.receive("k").await.unwrap();
        assert_eq!(r.n, i * 10);
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn a_kernel_deactivated_before_its_first_message_still_runs_after_reactivate() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    rt.send("k", Num::new(7)).await.unwrap();
    rt.reactivate("k").unwrap();
    let r: Num = rt.receive_timeout("k", Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.n, 70);
    rt.shutdown().await;
}

#[tokio::test]
async fn terminate_wakes_a_handler_blocked_in_receive() {
    // A terminate timeout far above the bound checked below: a terminate that
    // waited it out would fail the test.
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_secs(30),
    });
    let dropped = Arc::new(AtomicUsize::new(0));
    let flag = dropped.clone();
    rt.launch_with("k", KernelConfig::default(), watched(flag)).unwrap();
    rt.activate("k").unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = Instant::now();
    let report = rt.terminate("k").await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "terminate took {:?}",
        start.elapsed()
    );
    assert!(!report.forced);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_of_100_blocked_kernels_is_prompt_and_clean() {
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_secs(30),
    });
    let ended = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let flag = ended.clone();
        rt.launch_with(&format!("k{i:03}"), KernelConfig::default(), watched(flag))
            .unwrap();
        rt.activate(&format!("k{i:03}")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = rt.shutdown().await;
    assert_eq!(report.kernels.len(), 100);
    assert!(report.kernels.iter().all(|k| !k.forced));
    assert_eq!(ended.load(Ordering::SeqCst), 100);
    // Sequential waits of even one poll interval per kernel would exceed this.
    assert!(
        report.elapsed < Duration::from_secs(5),
        "shutdown took {:?}",
        report.elapsed
    );
    assert!(rt.kernel_ids().is_empty());
    assert!(matches!(
        rt.launch_with("late", KernelConfig::default(), times_ten),
        Err(Error::ShutDown)
    ));
}

#[tokio::test]
async fn terminate_with_drain_handles_every_queued_message() {
    let rt = RingKernelRuntime::new();
    let seen = Arc::new(AtomicUsize::new(0));
    rt.launch_with("k", KernelConfig::default(), counting(seen.clone()))
        .unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    for i in 0..500 {
        rt.send("k", Num::new(i)).await.unwrap();
    }
    let report = rt
        .terminate_with(
            "k",
            TerminateOptions {
                drain: true,
                timeout: Duration::from_secs(30),
            },
        )
        .await
        .unwrap();
    assert_eq!(report.discarded_input, 0);
    assert!(!report.forced);
    assert_eq!(seen.load(Ordering::SeqCst), 500);
}

#[tokio::test]
async fn terminate_without_drain_counts_what_it_discards() {
    let rt = RingKernelRuntime::new();
    let seen = Arc::new(AtomicUsize::new(0));
    rt.launch_with("k", KernelConfig::default(), counting(seen.clone()))
        .unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    for i in 0..10 {
        rt.send("k", Num::new(i)).await.unwrap();
    }
    let report = rt.terminate("k").await.unwrap();
    assert_eq!(report.discarded_input, 10);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_handler_that_ignores_terminate_is_aborted_after_the_timeout() {
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_millis(100),
    });
    rt.launch_with(
        "stubborn",
        KernelConfig::default(),
        |_ctx: KernelContext<Num, Num>| async {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            #[allow(unreachable_code)]
            ()
        },
    )
    .unwrap();
    rt.activate("stubborn").unwrap();
    let report = rt.terminate("stubborn").await.unwrap();
    assert!(report.forced);
}

#[tokio::test]
async fn scope_shuts_down_what_it_launched() {
    let ended = Arc::new(AtomicUsize::new(0));
    let flag = ended.clone();
    let answer = RingKernelRuntime::scope(|rt| async move {
        rt.launch_with("k", KernelConfig::default(), move |mut ctx: KernelContext<Num, Num>| {
            let guard = DropFlag(flag.clone());
            async move {
                let _guard = guard;
                loop {
                    let m = ctx.receive().await?;
                    ctx.send(m.reply(Num::new(m.n + 1))).await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), Error>(())
            }
        })?;
        rt.activate("k")?;
        let r: Num = rt.call("k", Num::new(1)).await?;
        Ok::<i64, Error>(r.n)
    })
    .await
    .unwrap();
    assert_eq!(answer, 2);
    assert_eq!(ended.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_the_runtime_stops_its_kernels() {
    let ended = Arc::new(AtomicUsize::new(0));
    {
        let rt = RingKernelRuntime::new();
        let flag = ended.clone();
        rt.launch_with("k", KernelConfig::default(), watched(flag)).unwrap();
        rt.activate("k").unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..500 {
        if ended.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the handler was not stopped after the runtime was dropped");
}

#[tokio::test]
async fn a_handler_that_returns_ends_the_kernel_and_the_host_sees_why() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "once",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            let m = ctx.receive().await?;
            ctx.send(m.reply(Num::new(m.n))).await?;
            ctx.send(Num::new(-1)).await?;
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.activate("once").unwrap();
    rt.send("once", Num::new(5)).await.unwrap();
    // Both replies are still delivered after the handler returned.
    assert_eq!(rt.receive::<Num>("once").await.unwrap().n, 5);
    assert_eq!(rt.receive::<Num>("once").await.unwrap().n, -1);
    assert!(matches!(
        rt.receive::<Num>("once").await,
        Err(Error::KernelTerminated { .. })
    ));
    assert_eq!(rt.kernel_state("once").unwrap(), KernelState::Terminated);
    assert!(matches!(
        rt.send("once", Num::new(1)).await.map_err(Error::from),
        Err(Error::State(_))
    ));
    let report = rt.terminate("once").await.unwrap();
    assert_eq!(report.previous_state, KernelState::Terminated);
}

#[test]
fn works_on_a_tokio_runtime_without_the_time_driver() {
    // Timeouts in the runtime do not depend on tokio's timer.
    let tokio_rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    tokio_rt.block_on(async {
        let rt = RingKernelRuntime::new();
        rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
        rt.activate("k").unwrap();
        let r: Num = rt.call_timeout("k", Num::new(2), Duration::from_secs(5)).await.unwrap();
        assert_eq!(r.n, 20);
        assert!(matches!(
            rt.receive_timeout::<Num>("k", Duration::from_millis(10)).await,
            Err(Error::QueueTimeout { .. })
        ));
        let report = rt.terminate("k").await.unwrap();
        assert!(!report.forced);
    });
}

/// Issue 16 row 13: an async handler that never reaches an await point.
/// `terminate` returns at its timeout (plus a short grace) anyway, reports
/// the handler abandoned and the kernel `Failed`; what the handler holds is
/// released when it finally returns. (On a current-thread runtime nothing
/// can be promised: the handler holds the only thread; see the docs of
/// `RingKernelRuntime::terminate`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_abandons_a_handler_that_never_yields() {
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_millis(100),
    });
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (r, d) = (release.clone(), dropped.clone());
    rt.launch_with(
        "spinner",
        KernelConfig::default(),
        move |ctx: KernelContext<Num, Num>| {
            let (release, guard) = (r.clone(), DropFlag(d.clone()));
            async move {
                let _hold = (ctx, guard);
                // Never yields until told to (an endless computation).
                while !release.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            }
        },
    )
    .unwrap();
    rt.activate("spinner").unwrap();
    let h = rt.handle::<Num, Num>("spinner").unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = Instant::now();
    let report = rt.terminate("spinner").await.unwrap();
    let took = start.elapsed();
    // Generous bound for a shared machine; it used to be as long as the
    // handler ran (forever for an endless loop).
    assert!(took < Duration::from_secs(3), "terminate took {took:?}");
    assert!(report.forced && report.abandoned, "{report:?}");
    let failure = report.failure.clone().expect("reported as a failure");
    let abandoned = failure
        .downcast_ref::<dotcompute::error::HandlerAbandoned>()
        .expect("HandlerAbandoned");
    assert_eq!(abandoned.timeout, Duration::from_millis(100));
    assert_eq!(h.state(), KernelState::Failed);
    assert!(matches!(h.receive().await, Err(Error::KernelFailed { .. })));
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "still running");
    release.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    while dropped.load(Ordering::SeqCst) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "resources released once it returns"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    rt.shutdown().await;
}

/// A handler stuck in an await that ignores cancellation is stopped at that
/// await point: forced, not abandoned, and its future is dropped.
#[tokio::test]
async fn terminate_aborts_a_handler_stuck_in_an_await() {
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_millis(50),
    });
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    rt.launch_with(
        "sleeper",
        KernelConfig::default(),
        move |_ctx: KernelContext<Num, Num>| {
            let guard = DropFlag(d.clone());
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        },
    )
    .unwrap();
    rt.activate("sleeper").unwrap();
    let report = rt.terminate("sleeper").await.unwrap();
    assert!(report.forced && !report.abandoned, "{report:?}");
    assert_eq!(report.failure, None);
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the handler's future was dropped");
}
