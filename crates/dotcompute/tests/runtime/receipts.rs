//! `KernelHandle::send_tracked`: receipts resolve when the handler is done
//! with their message, fail when the kernel ends first; and
//! `record_transport_drops` lands in `messages_dropped`.

use std::time::Duration;

use dotcompute::{
    BlockingContext, Error, ExecutionMode, KernelConfig, KernelContext, KernelSpec, Message, RingKernelRuntime,
};

use crate::common::{times_ten, Num};

/// Handles each message slowly (20 ms); fails on a negative one.
async fn slow_then_fail(mut ctx: KernelContext<Num, Num>) -> Result<(), Error> {
    loop {
        let m = ctx.receive().await?;
        if m.n < 0 {
            return Err(Error::KernelTerminated { kernel: "boom".into() });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ctx.send(m.reply(Num::new(m.n))).await?;
    }
}

#[tokio::test]
async fn a_receipt_resolves_only_after_its_message_was_handled() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), slow_then_fail).unwrap();
    rt.activate("k").unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    let first = h.send_tracked(Num::new(1)).await.unwrap();
    let second = h.send_tracked(Num::new(2)).await.unwrap();
    // The first reply arrives while the handler still holds nothing else;
    // the second receipt cannot be resolved before its reply exists.
    assert_eq!(h.receive().await.unwrap().n, 1);
    first.await.unwrap();
    assert_eq!(h.receive().await.unwrap().n, 2);
    second.await.unwrap();
    rt.shutdown().await;
}

#[tokio::test]
async fn receipts_of_queued_messages_fail_when_the_kernel_fails() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), slow_then_fail).unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    // Queued while deactivated: the failing message first, then one that
    // is never delivered.
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    let poison = h.send_tracked(Num::new(-1)).await.unwrap();
    let queued = h.send_tracked(Num::new(5)).await.unwrap();
    rt.reactivate("k").unwrap();
    // The handler returned while holding the poison message: it counts as
    // processed (the failure is the kernel's, reported by its state).
    poison.await.unwrap();
    match queued.await {
        Err(Error::KernelFailed { kernel, .. }) => assert_eq!(kernel, "k"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn receipts_fail_when_the_kernel_is_terminated_with_messages_queued() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    let r = h.send_tracked(Num::new(1)).await.unwrap();
    rt.terminate("k").await.unwrap();
    assert!(matches!(r.await, Err(Error::KernelTerminated { .. })));
}

#[tokio::test]
async fn one_receipt_per_message_id_and_a_refused_send_leaves_none() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 1,
        backpressure: dotcompute::Backpressure::Reject,
        ..KernelConfig::default()
    };
    rt.launch_with("k", config, times_ten).unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    let m = Num::new(1);
    let again = m.clone();
    let r = h.send_tracked(m).await.unwrap();
    let dup = h.send_tracked(again).await.unwrap_err();
    assert!(matches!(
        dup.error(),
        Error::InvalidConfiguration {
            parameter: "message_id",
            ..
        }
    ));
    assert_eq!(dup.into_message().n, 1, "the refused message comes back");
    // The queue (capacity 1) is full: refused, and no receipt stays behind.
    let refused = Num::new(2);
    let id = refused.message_id();
    let full = h.send_tracked(refused).await.unwrap_err();
    assert!(matches!(full.error(), Error::QueueFull { .. }));
    rt.reactivate("k").unwrap();
    r.await.unwrap();
    let mut retry = Num::new(2);
    retry.header.message_id = id;
    h.send_tracked(retry).await.unwrap().await.unwrap();
    rt.shutdown().await;
}

#[tokio::test]
async fn batches_and_blocking_kernels_resolve_receipts_too() {
    for mode in [ExecutionMode::Thread, ExecutionMode::Spin] {
        let rt = RingKernelRuntime::new();
        let spec = KernelSpec::builder::<Num, Num>("b")
            .mode(mode)
            .blocking_handler(|mut ctx: BlockingContext<Num, Num>| -> Result<(), Error> {
                let mut batch = Vec::new();
                loop {
                    batch.clear();
                    ctx.receive_batch(8, &mut batch)?;
                    for m in &batch {
                        ctx.send(m.reply(Num::new(m.n)))?;
                    }
                }
            })
            .build()
            .unwrap();
        rt.launch_spec(spec).unwrap();
        rt.activate("b").unwrap();
        rt.deactivate("b").unwrap();
        let h = rt.handle::<Num, Num>("b").unwrap();
        let mut receipts = Vec::new();
        for n in 0..20 {
            receipts.push(h.send_tracked(Num::new(n)).await.unwrap());
        }
        rt.reactivate("b").unwrap();
        for n in 0..20 {
            assert_eq!(h.receive().await.unwrap().n, n);
        }
        // The last batch counts as processed when the handler asks again.
        for r in receipts {
            tokio::time::timeout(Duration::from_secs(5), r)
                .await
                .unwrap_or_else(|_| panic!("{mode:?}: receipt never resolved"))
                .unwrap();
        }
        rt.shutdown().await;
    }
}

#[tokio::test]
async fn transport_drops_are_counted_as_dropped() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    h.record_transport_drops(3);
    h.record_transport_drops(2);
    assert_eq!(rt.telemetry("k").unwrap().messages_dropped, 5);
    assert_eq!(rt.summary().total_dropped, 5);
    rt.shutdown().await;
}

#[tokio::test]
async fn the_runtime_hands_out_receipts_by_kernel_id() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.activate("k").unwrap();
    let r = rt.send_tracked("k", Num::new(4)).await.unwrap();
    assert_eq!(rt.receive::<Num>("k").await.unwrap().n, 40);
    r.await.unwrap();
    let wrong = rt.send_tracked("k", crate::common::Text::new("x")).await.unwrap_err();
    assert!(matches!(wrong.error(), Error::TypeMismatch { .. }));
    rt.shutdown().await;
}
