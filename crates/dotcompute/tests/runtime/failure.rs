use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dotcompute::{
    Error, KernelConfig, KernelContext, KernelError, KernelState, Message, RestartPolicy, RingKernelRuntime,
};

use crate::common::Num;

/// Replies `n` to each message, fails on a negative one.
async fn fails_on_negative(mut ctx: KernelContext<Num, Num>) -> Result<(), Error> {
    loop {
        let m = ctx.receive().await?;
        if m.n < 0 {
            return Err(Error::invalid_for_test(m.n));
        }
        ctx.send(m.reply(Num::new(m.n))).await?;
    }
}

trait TestError {
    fn invalid_for_test(n: i64) -> Error;
}

impl TestError for Error {
    fn invalid_for_test(n: i64) -> Error {
        Error::InvalidConfiguration {
            parameter: "n",
            value: n.to_string(),
            reason: "negative input".into(),
        }
    }
}

#[tokio::test]
async fn an_error_moves_the_kernel_to_failed_and_reaches_the_host() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), fails_on_negative).unwrap();
    rt.activate("k").unwrap();
    rt.send("k", Num::new(1)).await.unwrap();
    rt.send("k", Num::new(-1)).await.unwrap();
    // The reply produced before the failure is not lost.
    assert_eq!(rt.receive::<Num>("k").await.unwrap().n, 1);
    // Then the host gets the failure instead of a hang.
    match rt.receive::<Num>("k").await {
        Err(Error::KernelFailed { kernel, error }) => {
            assert_eq!(kernel, "k");
            assert!(error.to_string().contains("negative input"), "{error}");
        }
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    assert_eq!(rt.kernel_state("k").unwrap(), KernelState::Failed);
    assert!(matches!(
        rt.send("k", Num::new(2)).await.map_err(Error::from),
        Err(Error::KernelFailed { .. })
    ));
    let t = rt.telemetry("k").unwrap();
    assert_eq!(t.errors, 1);
    assert!(t.last_error.unwrap().to_string().contains("negative input"));
    let report = rt.terminate("k").await.unwrap();
    assert_eq!(report.previous_state, KernelState::Failed);
    assert!(report.failure.unwrap().to_string().contains("negative input"));
}

#[tokio::test]
async fn a_host_blocked_in_receive_wakes_when_the_kernel_fails() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), fails_on_negative).unwrap();
    rt.activate("k").unwrap();
    let waiter = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.receive::<Num>("k").await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    rt.send("k", Num::new(-5)).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(Error::KernelFailed { .. })), "{r:?}");
}

#[tokio::test]
async fn a_host_blocked_sending_into_a_full_queue_wakes_when_the_kernel_fails() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 1,
        ..Default::default()
    };
    rt.launch_with("k", config, |mut ctx: KernelContext<Num, Num>| async move {
        let _first = ctx.receive().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<(), KernelError>("gave up".into())
    })
    .unwrap();
    rt.activate("k").unwrap();
    rt.send("k", Num::new(1)).await.unwrap();
    rt.send("k", Num::new(2)).await.unwrap(); // fills the queue
    let r = tokio::time::timeout(Duration::from_secs(10), rt.send("k", Num::new(3)))
        .await
        .unwrap()
        .map_err(Error::from);
    match r {
        Err(Error::KernelFailed { error, .. }) => assert!(error.to_string().contains("gave up")),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_panic_is_caught_and_reported() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "k",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            let m = ctx.receive().await?;
            if m.n == 13 {
                panic!("unlucky number {}", m.n);
            }
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.activate("k").unwrap();
    rt.send("k", Num::new(13)).await.unwrap();
    match rt.receive::<Num>("k").await {
        Err(Error::KernelFailed { error, .. }) => assert!(error.to_string().contains("unlucky number 13"), "{error}"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    assert_eq!(rt.telemetry("k").unwrap().errors, 1);
}

#[tokio::test]
async fn restart_policy_restarts_with_fresh_state_then_gives_up() {
    let rt = RingKernelRuntime::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    let config = KernelConfig {
        restart: RestartPolicy::OnFailure {
            max_restarts: 2,
            window: Duration::from_secs(60),
        },
        ..Default::default()
    };
    rt.launch_with("k", config, move |mut ctx: KernelContext<Num, Num>| {
        runs2.fetch_add(1, Ordering::SeqCst);
        async move {
            // Per-run state: restarts start from zero.
            let mut handled_this_run = 0i64;
            loop {
                let m = ctx.receive().await?;
                if m.n < 0 {
                    return Err::<(), KernelError>(format!("bad input {}", m.n).into());
                }
                handled_this_run += 1;
                ctx.send(m.reply(Num::new(handled_this_run))).await?;
            }
        }
    })
    .unwrap();
    rt.activate("k").unwrap();
    assert_eq!(rt.call::<Num, Num>("k", Num::new(1)).await.unwrap().n, 1);
    assert_eq!(rt.call::<Num, Num>("k", Num::new(1)).await.unwrap().n, 2);
    rt.send("k", Num::new(-1)).await.unwrap();
    // Fresh state after the restart.
    assert_eq!(rt.call::<Num, Num>("k", Num::new(1)).await.unwrap().n, 1);
    assert_eq!(rt.kernel_state("k").unwrap(), KernelState::Active);
    // A failure with messages queued behind it: they survive the restart.
    rt.deactivate("k").unwrap();
    rt.send("k", Num::new(-2)).await.unwrap();
    rt.send("k", Num::new(1)).await.unwrap();
    rt.reactivate("k").unwrap();
    assert_eq!(rt.receive::<Num>("k").await.unwrap().n, 1);
    let t = rt.telemetry("k").unwrap();
    assert_eq!(t.restarts, 2);
    assert_eq!(t.errors, 2);
    // Counters run on across the three runs of the handler.
    assert_eq!(t.messages_received, 6);
    assert_eq!(t.messages_sent, 4);
    // The third failure exceeds the budget.
    rt.send("k", Num::new(-3)).await.unwrap();
    match rt.receive::<Num>("k").await {
        Err(Error::KernelFailed { error, .. }) => assert!(error.to_string().contains("bad input -3"), "{error}"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    assert_eq!(rt.kernel_state("k").unwrap(), KernelState::Failed);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let t = rt.telemetry("k").unwrap();
    assert_eq!((t.messages_received, t.messages_processed), (7, 7));
}
