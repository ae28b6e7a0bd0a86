//! Every refused send hands its message back (issue 14, "an API that loses
//! nothing"): each strategy (Block with a timeout, Reject, DropOldest), each
//! mode (async, thread, spin; the process tier in `ipc_process.rs`), single
//! and batched, through the runtime, a `KernelHandle` and a handler's
//! context; and for kernels that are not active, terminated or failed.

use std::sync::mpsc;
use std::time::Duration;

use dotcompute::{
    Backpressure, BlockingContext, Error, ExecutionMode, KernelConfig, KernelContext, KernelHandle, KernelSpec,
    RingKernelRuntime, SendError,
};

use crate::common::{blocking_times_ten, times_ten, Num};

const CAPACITY: usize = 4;
const WAIT: Duration = Duration::from_millis(20);

fn ns(msgs: &[Num]) -> Vec<i64> {
    msgs.iter().map(|m| m.n).collect()
}

/// Asserts `r` refused message `n` for the reason `why` checks.
#[track_caller]
fn refused(r: Result<(), SendError<Num>>, n: i64, why: fn(&SendError<Num>) -> bool) {
    let e = r.expect_err("the send must be refused");
    assert!(why(&e), "unexpected reason: {e:?}");
    assert_eq!(e.into_message().n, n, "the refused message comes back");
}

/// Asserts `r` refused a batch and handed back `rest`.
#[track_caller]
fn refused_batch(r: Result<(), SendError<Vec<Num>>>, rest: &[i64], why: fn(&SendError<Vec<Num>>) -> bool) {
    let e = r.expect_err("the batch must be refused");
    assert!(why(&e), "unexpected reason: {e:?}");
    assert_eq!(ns(&e.into_message()), rest, "the unsent rest comes back, in order");
}

fn config(mode: ExecutionMode, strategy: Backpressure) -> KernelConfig {
    KernelConfig {
        input_queue_size: CAPACITY,
        backpressure: strategy,
        send_timeout: (strategy == Backpressure::Block).then_some(WAIT),
        mode,
        ..KernelConfig::default()
    }
}

fn launch(rt: &RingKernelRuntime, id: &str, mode: ExecutionMode, strategy: Backpressure) {
    let config = config(mode, strategy);
    match mode {
        ExecutionMode::Async => rt.launch_with(id, config, times_ten).unwrap(),
        _ => rt
            .launch_spec(
                KernelSpec::builder::<Num, Num>(id)
                    .config(config)
                    .blocking_handler(blocking_times_ten)
                    .build()
                    .unwrap(),
            )
            .unwrap(),
    }
}

/// A kernel whose input queue is full: deactivated, holding 0..CAPACITY.
fn full_kernel(
    rt: &RingKernelRuntime,
    id: &str,
    mode: ExecutionMode,
    strategy: Backpressure,
) -> KernelHandle<Num, Num> {
    launch(rt, id, mode, strategy);
    rt.activate(id).unwrap();
    rt.deactivate(id).unwrap();
    let h = rt.handle::<Num, Num>(id).unwrap();
    for i in 0..CAPACITY as i64 {
        h.try_send(Num::new(i)).unwrap();
    }
    h
}

/// The reason a full queue gives a send that may wait under `strategy`.
fn full_reason(strategy: Backpressure) -> fn(&SendError<Num>) -> bool {
    match strategy {
        Backpressure::Block => SendError::is_timeout,
        _ => SendError::is_full,
    }
}

fn full_batch_reason(strategy: Backpressure) -> fn(&SendError<Vec<Num>>) -> bool {
    match strategy {
        Backpressure::Block => SendError::is_timeout,
        _ => SendError::is_full,
    }
}

/// Every host-side send form against a full queue.
async fn host_sends_hand_back(mode: ExecutionMode, strategy: Backpressure) {
    let rt = RingKernelRuntime::new();
    let h = full_kernel(&rt, "k", mode, strategy);
    let why = full_reason(strategy);
    // The runtime's id-based forms.
    refused(rt.send("k", Num::new(10)).await, 10, why);
    refused(rt.send_timeout("k", Num::new(11), WAIT).await, 11, why);
    refused(rt.try_send("k", Num::new(12)), 12, SendError::is_full);
    // The handle's forms, async and blocking.
    refused(h.send(Num::new(20)).await, 20, why);
    refused(h.send_timeout(Num::new(21), WAIT).await, 21, why);
    refused(h.try_send(Num::new(22)), 22, SendError::is_full);
    tokio::task::block_in_place(|| {
        refused(h.send_blocking(Num::new(23)), 23, why);
        refused(h.send_blocking_timeout(Num::new(24), WAIT), 24, why);
    });
    // Batches: nothing fits, so everything comes back, in order.
    let batch_why = full_batch_reason(strategy);
    refused_batch(
        h.send_batch(vec![Num::new(30), Num::new(31)]).await,
        &[30, 31],
        batch_why,
    );
    refused_batch(
        h.send_batch_timeout(vec![Num::new(32), Num::new(33)], WAIT).await,
        &[32, 33],
        batch_why,
    );
    tokio::task::block_in_place(|| {
        refused_batch(
            h.send_batch_blocking(vec![Num::new(34), Num::new(35)]),
            &[34, 35],
            batch_why,
        );
        refused_batch(
            h.send_batch_blocking_timeout(vec![Num::new(36), Num::new(37)], WAIT),
            &[36, 37],
            batch_why,
        );
    });
    // A call whose request never got in keeps it.
    let e = h.call_timeout(Num::new(40), WAIT).await.unwrap_err();
    assert!(!e.was_sent(), "{e:?}");
    assert_eq!(e.into_request().map(|r| r.n), Some(40));
    // A partly sent batch: room for one, the rest comes back.
    let mut out = Vec::new();
    rt.reactivate("k").unwrap();
    for _ in 0..CAPACITY {
        out.push(h.receive_timeout(Duration::from_secs(10)).await.unwrap().n);
    }
    assert_eq!(out, [0, 10, 20, 30], "only what was accepted was handled");
    rt.deactivate("k").unwrap();
    for i in 0..CAPACITY as i64 - 1 {
        h.try_send(Num::new(50 + i)).unwrap();
    }
    refused_batch(
        h.send_batch(vec![Num::new(60), Num::new(61), Num::new(62)]).await,
        &[61, 62],
        batch_why,
    );
    let t = rt.telemetry("k").unwrap();
    assert!(t.input_queue.is_consistent(), "{:?}", t.input_queue);
    assert_eq!(t.input_queue.enqueued, 2 * CAPACITY as u64, "{:?}", t.input_queue);
    rt.shutdown().await;
}

/// One test per mode and strategy, so a failure names both.
macro_rules! host_sends_hand_back_tests {
    ($($name:ident: $mode:ident, $backpressure:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            host_sends_hand_back(ExecutionMode::$mode, Backpressure::$backpressure).await;
        }
    )*};
}

host_sends_hand_back_tests! {
    host_sends_hand_back_refused_messages_async_block: Async, Block;
    host_sends_hand_back_refused_messages_async_reject: Async, Reject;
    host_sends_hand_back_refused_messages_thread_block: Thread, Block;
    host_sends_hand_back_refused_messages_thread_reject: Thread, Reject;
    host_sends_hand_back_refused_messages_spin_block: Spin, Block;
    host_sends_hand_back_refused_messages_spin_reject: Spin, Reject;
}

/// DropOldest never refuses for room (it drops, and counts); what it does
/// refuse — a kernel that is not active, or has ended — still comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_refuses_only_for_lifecycle_and_hands_back() {
    for mode in [ExecutionMode::Async, ExecutionMode::Thread] {
        let rt = RingKernelRuntime::new();
        launch(&rt, "d", mode, Backpressure::DropOldest);
        let h = rt.handle::<Num, Num>("d").unwrap();
        refused(h.send(Num::new(1)).await, 1, SendError::is_not_active);
        refused_batch(
            h.send_batch(vec![Num::new(2), Num::new(3)]).await,
            &[2, 3],
            SendError::is_not_active,
        );
        rt.activate("d").unwrap();
        rt.deactivate("d").unwrap();
        for i in 0..10 {
            h.send(Num::new(i)).await.unwrap();
        }
        h.send_batch((10..13).map(Num::new).collect()).await.unwrap();
        let t = rt.telemetry("d").unwrap();
        assert_eq!(t.messages_dropped, 13 - CAPACITY as u64, "drops are counted");
        rt.terminate("d").await.unwrap();
        refused(h.send(Num::new(20)).await, 20, SendError::is_closed);
        refused(h.try_send(Num::new(21)), 21, SendError::is_closed);
        refused_batch(h.send_batch(vec![Num::new(22)]).await, &[22], SendError::is_closed);
        tokio::task::block_in_place(|| refused(h.send_blocking(Num::new(23)), 23, SendError::is_closed));
        rt.shutdown().await;
    }
}

/// Not active yet, terminated, failed, unknown id, wrong type: the message
/// comes back every time, in every mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_refusals_hand_back_in_every_mode() {
    for mode in [ExecutionMode::Async, ExecutionMode::Thread, ExecutionMode::Spin] {
        let rt = RingKernelRuntime::new();
        launch(&rt, "k", mode, Backpressure::Block);
        let h = rt.handle::<Num, Num>("k").unwrap();
        refused(rt.send("k", Num::new(1)).await, 1, SendError::is_not_active);
        refused(h.try_send(Num::new(2)), 2, SendError::is_not_active);
        tokio::task::block_in_place(|| {
            refused(h.send_blocking(Num::new(3)), 3, SendError::is_not_active);
            refused_batch(h.send_batch_blocking(vec![Num::new(4)]), &[4], SendError::is_not_active);
        });
        let e = rt.call::<Num, Num>("k", Num::new(5)).await.unwrap_err();
        assert_eq!(e.into_request().map(|r| r.n), Some(5));
        refused(rt.send("nope", Num::new(6)).await, 6, |e| {
            matches!(e.error(), Error::KernelNotFound { .. })
        });
        let e = rt.send("k", crate::common::Text::new("x")).await.unwrap_err();
        assert!(matches!(e.error(), Error::TypeMismatch { .. }));
        assert_eq!(e.into_message().s, "x");
        rt.activate("k").unwrap();
        assert_eq!(h.call(Num::new(7)).await.unwrap().n, 70);
        rt.terminate("k").await.unwrap();
        refused(h.send(Num::new(8)).await, 8, SendError::is_closed);
        tokio::task::block_in_place(|| refused(h.send_blocking(Num::new(9)), 9, SendError::is_closed));
        refused(rt.send("k", Num::new(10)).await, 10, |e| {
            matches!(e.error(), Error::KernelNotFound { .. })
        });
        rt.shutdown().await;
        refused(rt.send("k", Num::new(11)).await, 11, |e| {
            matches!(e.error(), Error::KernelNotFound { .. })
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_kernel_hands_back_with_its_failure() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "f",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            let _ = ctx.receive().await?;
            Err::<(), dotcompute::KernelError>("boom".into())
        },
    )
    .unwrap();
    rt.activate("f").unwrap();
    let h = rt.handle::<Num, Num>("f").unwrap();
    h.send(Num::new(1)).await.unwrap();
    assert!(matches!(h.receive().await, Err(Error::KernelFailed { .. })));
    let e = h.send(Num::new(2)).await.unwrap_err();
    assert!(
        e.is_closed() && matches!(e.error(), Error::KernelFailed { .. }),
        "{e:?}"
    );
    assert_eq!(e.into_message().n, 2);
    let e = h.send_batch(vec![Num::new(3), Num::new(4)]).await.unwrap_err();
    assert_eq!(ns(e.message()), [3, 4]);
    rt.shutdown().await;
}

/// What a handler saw when its sends were refused.
#[derive(Debug, PartialEq)]
enum Seen {
    One(i64, &'static str),
    Batch(Vec<i64>, &'static str),
}

fn reason<M>(e: &SendError<M>) -> &'static str {
    match e.error() {
        Error::QueueFull { .. } => "full",
        Error::Terminating { .. } => "terminating",
        Error::KernelNotFound { .. } => "not found",
        _ => "other",
    }
}

fn output_config(mode: ExecutionMode, strategy: Backpressure) -> KernelConfig {
    KernelConfig {
        output_queue_size: 2,
        output_backpressure: strategy,
        mode,
        ..KernelConfig::default()
    }
}

/// A handler whose output fills (nobody receives): under Reject its sends
/// come back at once; then it tries a peer that does not exist.
fn handler_refusals(mode: ExecutionMode) -> (KernelSpec, mpsc::Receiver<Seen>) {
    fn blocking(tx: mpsc::Sender<Seen>) -> impl Fn(BlockingContext<Num, Num>) -> Result<(), Error> + Send + Sync {
        move |mut ctx| {
            let _ = ctx.receive()?;
            for i in 0..2 {
                ctx.send(Num::new(i))?;
            }
            let e = ctx.send(Num::new(2)).unwrap_err();
            tx.send(Seen::One(e.message().n, reason(&e))).unwrap();
            let e = ctx.send_batch(vec![Num::new(3), Num::new(4)]).unwrap_err();
            tx.send(Seen::Batch(ns(e.message()), reason(&e))).unwrap();
            let e = ctx.send_to("nowhere", Num::new(5)).unwrap_err();
            tx.send(Seen::One(e.message().n, reason(&e))).unwrap();
            loop {
                let _ = ctx.receive()?;
            }
        }
    }
    let (tx, rx) = mpsc::channel();
    let builder = KernelSpec::builder::<Num, Num>("h").config(output_config(mode, Backpressure::Reject));
    let spec = match mode {
        ExecutionMode::Async => builder
            .handler(move |mut ctx: KernelContext<Num, Num>| {
                let tx = tx.clone();
                async move {
                    let _ = ctx.receive().await?;
                    for i in 0..2 {
                        ctx.send(Num::new(i)).await?;
                    }
                    let e = ctx.send(Num::new(2)).await.unwrap_err();
                    tx.send(Seen::One(e.message().n, reason(&e))).unwrap();
                    let e = ctx.send_batch(vec![Num::new(3), Num::new(4)]).await.unwrap_err();
                    tx.send(Seen::Batch(ns(e.message()), reason(&e))).unwrap();
                    let e = ctx.send_to("nowhere", Num::new(5)).await.unwrap_err();
                    tx.send(Seen::One(e.message().n, reason(&e))).unwrap();
                    loop {
                        let _ = ctx.receive().await?;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), Error>(())
                }
            })
            .build()
            .unwrap(),
        _ => builder.blocking_handler(blocking(tx)).build().unwrap(),
    };
    (spec, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_sends_hand_back_refused_messages_in_every_mode() {
    for mode in [ExecutionMode::Async, ExecutionMode::Thread, ExecutionMode::Spin] {
        let rt = RingKernelRuntime::new();
        let (spec, rx) = handler_refusals(mode);
        rt.launch_spec(spec).unwrap();
        rt.activate("h").unwrap();
        rt.send("h", Num::new(0)).await.unwrap();
        let seen: Vec<Seen> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(
            seen,
            [
                Seen::One(2, "full"),
                Seen::Batch(vec![3, 4], "full"),
                Seen::One(5, "not found")
            ],
            "{mode:?}"
        );
        let t = rt.telemetry("h").unwrap();
        assert_eq!((t.messages_sent, t.output_queue.rejected), (2, 2), "{mode:?}: {t:?}");
        rt.shutdown().await;
    }
}

/// A batch the output takes only in part: the messages that went out are
/// counted in `messages_sent` (and only those), the rest come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_refused_batch_counts_what_went_out_in_every_mode() {
    for mode in [ExecutionMode::Async, ExecutionMode::Thread, ExecutionMode::Spin] {
        let (tx, rx) = mpsc::channel::<Seen>();
        let builder = KernelSpec::builder::<Num, Num>("p").config(output_config(mode, Backpressure::Reject));
        let spec = match mode {
            ExecutionMode::Async => builder
                .handler(move |mut ctx: KernelContext<Num, Num>| {
                    let tx = tx.clone();
                    async move {
                        let _ = ctx.receive().await?;
                        let e = ctx
                            .send_batch(vec![Num::new(1), Num::new(2), Num::new(3)])
                            .await
                            .unwrap_err();
                        tx.send(Seen::Batch(ns(e.message()), reason(&e))).unwrap();
                        loop {
                            let _ = ctx.receive().await?;
                        }
                        #[allow(unreachable_code)]
                        Ok::<(), Error>(())
                    }
                })
                .build()
                .unwrap(),
            _ => builder
                .blocking_handler(move |mut ctx: BlockingContext<Num, Num>| -> Result<(), Error> {
                    let _ = ctx.receive()?;
                    let e = ctx.send_batch(vec![Num::new(1), Num::new(2), Num::new(3)]).unwrap_err();
                    tx.send(Seen::Batch(ns(e.message()), reason(&e))).unwrap();
                    loop {
                        let _ = ctx.receive()?;
                    }
                })
                .build()
                .unwrap(),
        };
        let rt = RingKernelRuntime::new();
        rt.launch_spec(spec).unwrap();
        rt.activate("p").unwrap();
        rt.send("p", Num::new(0)).await.unwrap();
        let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(seen, Seen::Batch(vec![3], "full"), "{mode:?}");
        let t = rt.telemetry("p").unwrap();
        assert_eq!((t.messages_sent, t.output_queue.enqueued), (2, 2), "{mode:?}: {t:?}");
        rt.shutdown().await;
    }
}

/// A handler blocked on a full output (Block) is woken by terminate with
/// its message in hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_wakes_a_blocked_handler_send_with_its_message() {
    for mode in [ExecutionMode::Async, ExecutionMode::Thread, ExecutionMode::Spin] {
        let (tx, rx) = mpsc::channel::<Seen>();
        let config = output_config(mode, Backpressure::Block);
        let builder = KernelSpec::builder::<Num, Num>("b").config(config);
        let spec = match mode {
            ExecutionMode::Async => builder.handler(move |mut ctx: KernelContext<Num, Num>| {
                let tx = tx.clone();
                async move {
                    let _ = ctx.receive().await?;
                    let mut i = 0;
                    loop {
                        if let Err(e) = ctx.send(Num::new(i)).await {
                            tx.send(Seen::One(e.message().n, reason(&e))).unwrap();
                            return Err::<(), Error>(e.into());
                        }
                        i += 1;
                    }
                }
            }),
            // Returns the refused send itself (boxed): the runtime still
            // sees its own termination in it and ends the kernel cleanly.
            _ => builder.blocking_handler(
                move |mut ctx: BlockingContext<Num, Num>| -> Result<(), dotcompute::KernelError> {
                    let _ = ctx.receive()?;
                    let mut i = 0;
                    loop {
                        if let Err(e) = ctx.send(Num::new(i)) {
                            tx.send(Seen::One(e.message().n, reason(&e))).unwrap();
                            return Err(Box::new(e));
                        }
                        i += 1;
                    }
                },
            ),
        }
        .build()
        .unwrap();
        let rt = RingKernelRuntime::new();
        rt.launch_spec(spec).unwrap();
        rt.activate("b").unwrap();
        rt.send("b", Num::new(0)).await.unwrap();
        let t0 = std::time::Instant::now();
        while rt.telemetry("b").unwrap().messages_sent < 2 {
            assert!(t0.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = rt.telemetry("b").unwrap();
        assert_eq!(
            t.output_queue.rejected, 0,
            "{mode:?}: waiting for room is not a refusal"
        );
        let report = rt.terminate("b").await.unwrap();
        assert!(!report.forced, "{mode:?}: {report:?}");
        assert_eq!(report.failure, None, "its own termination is a clean end");
        let seen = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(seen, Seen::One(2, "terminating"), "{mode:?}");
        rt.shutdown().await;
    }
}
