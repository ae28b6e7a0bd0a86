//! `call` holds nothing but its own reply slot (issue 16, row 11): other
//! outputs stay in the output queue, under its bound, in order; and
//! `call_timeout` returns on time whatever task awaits it — including the
//! main task of a `#[tokio::main]` program on either tokio flavour, while the
//! kernel floods its output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcompute::{
    BlockingContext, Error, ExecutionMode, KernelConfig, KernelContext, KernelSpec, Message, RingKernelRuntime,
};

use crate::common::Num;

const OUTPUT: usize = 64;

/// A kernel that answers nothing and floods its output with unrelated
/// messages 1, 2, 3, ... (until `stop`).
fn flooding(mode: ExecutionMode, stop: Arc<AtomicBool>) -> KernelSpec {
    let builder = KernelSpec::builder::<Num, Num>("flood")
        .output_queue_size(OUTPUT)
        .mode(mode);
    match mode {
        ExecutionMode::Async => builder.handler(move |mut ctx: KernelContext<Num, Num>| {
            let stop = stop.clone();
            async move {
                let _ = ctx.receive().await?;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    ctx.send(Num::new(i)).await?;
                }
                Ok::<(), Error>(())
            }
        }),
        _ => builder.blocking_handler(move |mut ctx: BlockingContext<Num, Num>| {
            let _ = ctx.receive()?;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                ctx.send(Num::new(i))?;
            }
            Ok::<(), Error>(())
        }),
    }
    .build()
    .unwrap()
}

/// The scenario of row 11, as a `#[tokio::main]` program runs it: the main
/// future, driven by `block_on`, calls a kernel that floods its output.
fn call_timeout_returns_on_time(runtime: tokio::runtime::Runtime, mode: ExecutionMode) {
    let stop = Arc::new(AtomicBool::new(false));
    runtime.block_on(async {
        let rt = RingKernelRuntime::new();
        rt.launch_spec(flooding(mode, stop.clone())).unwrap();
        rt.activate("flood").unwrap();
        let h = rt.handle::<Num, Num>("flood").unwrap();
        let start = Instant::now();
        let err = h
            .call_timeout(Num::new(0), Duration::from_millis(200))
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(err.was_sent() && err.is_timeout(), "{err:?}");
        assert!(matches!(err.error(), Error::QueueTimeout { timeout, .. } if *timeout == Duration::from_millis(200)));
        // Generous bound (shared machines): before the fix it never returned.
        assert!(took < Duration::from_secs(5), "call_timeout(200 ms) took {took:?}");
        // The call held none of the other outputs: they are all in the
        // queue, at most its capacity, in order, for `receive`.
        let t = h.telemetry();
        assert!(t.output_queue.peak_depth <= OUTPUT, "{:?}", t.output_queue);
        assert!(t.output_queue.is_consistent(), "{:?}", t.output_queue);
        for want in 1..=(3 * OUTPUT as i64) {
            assert_eq!(h.receive_timeout(Duration::from_secs(10)).await.unwrap().n, want);
        }
        stop.store(true, Ordering::Relaxed);
        rt.shutdown().await;
    });
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn call_timeout_returns_on_time_current_thread_async_kernel() {
    call_timeout_returns_on_time(current_thread(), ExecutionMode::Async);
}

#[test]
fn call_timeout_returns_on_time_current_thread_thread_kernel() {
    call_timeout_returns_on_time(current_thread(), ExecutionMode::Thread);
}

#[test]
fn call_timeout_returns_on_time_current_thread_spin_kernel() {
    call_timeout_returns_on_time(current_thread(), ExecutionMode::Spin);
}

#[test]
fn call_timeout_returns_on_time_multi_thread_async_kernel() {
    call_timeout_returns_on_time(multi_thread(), ExecutionMode::Async);
}

#[test]
fn call_timeout_returns_on_time_multi_thread_thread_kernel() {
    call_timeout_returns_on_time(multi_thread(), ExecutionMode::Thread);
}

/// A kernel that emits `before` unrelated outputs, then the reply, then
/// `after` more, for each request.
fn chatty(before: i64, after: i64) -> impl Fn(KernelContext<Num, Num>) -> crate::common::futures_like::BoxFut {
    move |mut ctx: KernelContext<Num, Num>| {
        Box::pin(async move {
            loop {
                let req = ctx.receive().await?;
                for i in 1..=before {
                    ctx.send(Num::new(req.n * 1000 + i)).await?;
                }
                ctx.send(req.reply(Num::new(-req.n))).await?;
                for i in 1..=after {
                    ctx.send(Num::new(req.n * 1000 + before + i)).await?;
                }
            }
        })
    }
}

/// A kernel that answers each request `delay` later with `n * times + plus`.
fn slow(
    delay: Duration,
    times: i64,
    plus: i64,
) -> impl Fn(KernelContext<Num, Num>) -> crate::common::futures_like::BoxFut {
    move |mut ctx: KernelContext<Num, Num>| {
        Box::pin(async move {
            loop {
                let req = ctx.receive().await?;
                tokio::time::sleep(delay).await;
                ctx.send(req.reply(Num::new(req.n * times + plus))).await?;
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_finds_its_reply_past_other_outputs_which_stay_in_order() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        output_queue_size: OUTPUT,
        ..KernelConfig::default()
    };
    rt.launch_with("chatty", config, chatty(20, 5)).unwrap();
    rt.activate("chatty").unwrap();
    let h = rt.handle::<Num, Num>("chatty").unwrap();
    assert_eq!(h.call(Num::new(1)).await.unwrap().n, -1);
    assert_eq!(h.call(Num::new(2)).await.unwrap().n, -2);
    let mut others = Vec::new();
    for _ in 0..50 {
        others.push(h.receive_timeout(Duration::from_secs(10)).await.unwrap().n);
    }
    let want: Vec<i64> = (1001..=1025).chain(2001..=2025).collect();
    assert_eq!(others, want, "the other outputs, in order, none lost or held");
    let t = rt.telemetry("chatty").unwrap();
    assert_eq!(t.messages_sent, 52);
    assert_eq!(t.output_queue.enqueued, 52, "replies handed to a call are counted too");
    assert_eq!(t.output_queue.dequeued, 52);
    assert!(t.output_queue.is_consistent());
    rt.shutdown().await;
}

/// The output queue's bound holds while a call waits: a kernel that must
/// emit more than the queue holds before replying is held back by
/// backpressure, so the call times out (nothing is buffered on its behalf);
/// afterwards every message, the late reply included, is received in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_never_buffers_beyond_the_output_queue() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        output_queue_size: 8,
        ..KernelConfig::default()
    };
    rt.launch_with("big", config, chatty(20, 0)).unwrap();
    rt.activate("big").unwrap();
    let h = rt.handle::<Num, Num>("big").unwrap();
    let err = h
        .call_timeout(Num::new(1), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let t = rt.telemetry("big").unwrap();
    assert_eq!(
        (t.output_queue.depth, t.output_queue.peak_depth),
        (8, 8),
        "{:?}",
        t.output_queue
    );
    let mut got = Vec::new();
    for _ in 0..21 {
        got.push(h.receive_timeout(Duration::from_secs(10)).await.unwrap().n);
    }
    let want: Vec<i64> = (1001..=1020).chain([-1]).collect();
    assert_eq!(got, want, "the late reply goes to receive, after the others");
    rt.shutdown().await;
}

/// A reply that lands in a call's slot just as the call gives up is handed
/// on to `receive`, never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_hands_its_late_reply_to_receive() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("slow", KernelConfig::default(), slow(Duration::from_millis(50), 10, 0))
        .unwrap();
    rt.activate("slow").unwrap();
    let h = rt.handle::<Num, Num>("slow").unwrap();
    let request = Num::new(4);
    let id = request.message_id();
    // Dropped while waiting.
    let r = tokio::time::timeout(Duration::from_millis(5), h.call(request)).await;
    assert!(r.is_err(), "the call future was dropped");
    let late = h.receive_timeout(Duration::from_secs(10)).await.unwrap();
    assert_eq!((late.n, late.correlation_id()), (40, Some(id)));
    rt.shutdown().await;
}

/// Many concurrent callers, each getting its own reply, while another task
/// receives the kernel's other outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_their_own_replies() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("c", KernelConfig::default(), chatty(1, 0)).unwrap();
    rt.activate("c").unwrap();
    let h = rt.handle::<Num, Num>("c").unwrap();
    let callers: Vec<_> = (0..8)
        .map(|t| {
            let h = h.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    let n = t * 1000 + i + 1;
                    assert_eq!(h.call(Num::new(n)).await.unwrap().n, -n);
                }
            })
        })
        .collect();
    let receiver = {
        let h = h.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while n < 1600 {
                let m = h.receive_timeout(Duration::from_secs(10)).await.unwrap();
                assert!(m.n > 0 && m.correlation_id().is_none(), "only unrelated outputs here");
                n += 1;
            }
        })
    };
    for c in callers {
        c.await.unwrap();
    }
    receiver.await.unwrap();
    rt.shutdown().await;
}

/// A kernel that ends while calls wait wakes them with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_calls_wake_when_the_kernel_ends() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "mute",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            loop {
                let _ = ctx.receive().await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.activate("mute").unwrap();
    let h = rt.handle::<Num, Num>("mute").unwrap();
    let call = tokio::spawn({
        let h = h.clone();
        async move { h.call(Num::new(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    rt.terminate("mute").await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        err.was_sent() && matches!(err.error(), Error::KernelTerminated { .. }),
        "{err:?}"
    );
    rt.shutdown().await;
}

/// A call first polled under one waker and then awaited by another task
/// still completes: its reply slot follows the waker of the last poll (a
/// call registers with its first poll's waker, and a later poll that finds
/// the slot unchanged skips the lock only while the waker is the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_moved_to_another_task_wakes_that_task() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("late", KernelConfig::default(), slow(Duration::from_millis(20), 1, 1))
        .unwrap();
    rt.activate("late").unwrap();
    let h = rt.handle::<Num, Num>("late").unwrap();
    for n in 0..5 {
        let mut call = Box::pin(h.call(Num::new(n)));
        let noop = futures::task::noop_waker();
        let first = std::future::Future::poll(call.as_mut(), &mut std::task::Context::from_waker(&noop));
        assert!(first.is_pending(), "the kernel answers 20 ms later");
        // The bound first: a call that is not woken would still be found
        // complete when the bound's timer wakes the task.
        let got = tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_secs(5)) => panic!("the task awaiting the call was not woken by its reply"),
            got = call => got.unwrap(),
        };
        assert_eq!(got.n, n + 1);
    }
    rt.shutdown().await;
}
