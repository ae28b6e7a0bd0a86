use std::collections::HashSet;
use std::time::Duration;

use dotcompute::{Backpressure, Error, KernelConfig, KernelContext, Message, RingKernelRuntime};

use crate::common::{times_ten, Num, Text};

#[tokio::test]
async fn call_finds_its_reply_behind_others_and_keeps_them_in_order() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.activate("k").unwrap();
    for i in 1..=3 {
        rt.send("k", Num::new(i)).await.unwrap();
    }
    let req = Num::new(4);
    let id = req.message_id();
    let r: Num = rt.call("k", req).await.unwrap();
    assert_eq!(r.n, 40);
    assert_eq!(r.correlation_id(), Some(id));
    for i in 1..=3 {
        assert_eq!(rt.receive::<Num>("k").await.unwrap().n, i * 10);
    }
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_each_get_their_own_reply() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.activate("k").unwrap();
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let r: Num = rt.call("k", Num::new(i)).await.unwrap();
            assert_eq!(r.n, i * 10);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Nothing was left behind in the stash.
    assert!(matches!(
        rt.receive_timeout::<Num>("k", Duration::from_millis(20)).await,
        Err(Error::QueueTimeout { .. })
    ));
    rt.shutdown().await;
}

#[tokio::test]
async fn linked_kernels_form_a_pipeline_without_a_host_hop() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "parse",
        KernelConfig::default(),
        |mut ctx: KernelContext<Text, Num>| async move {
            loop {
                let t = ctx.receive().await?;
                let n: i64 = t.s.parse().unwrap_or(-1);
                ctx.send(Num::new(n)).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.launch_with("scale", KernelConfig::default(), times_ten).unwrap();
    rt.link("parse", "scale").unwrap();
    rt.activate("parse").unwrap();
    rt.activate("scale").unwrap();
    for s in ["1", "2", "3"] {
        rt.send("parse", Text::new(s)).await.unwrap();
    }
    for expected in [10, 20, 30] {
        assert_eq!(rt.receive::<Num>("scale").await.unwrap().n, expected);
    }
    let parse = rt.telemetry("parse").unwrap();
    assert_eq!(parse.messages_sent, 3);
    assert_eq!(parse.output_queue.enqueued, 0, "nothing went through the host queue");
    rt.shutdown().await;
}

#[tokio::test]
async fn link_type_mismatch_is_caught_at_link_time() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("num", KernelConfig::default(), times_ten).unwrap();
    rt.launch_with(
        "text",
        KernelConfig::default(),
        |mut ctx: KernelContext<Text, Text>| async move {
            loop {
                let t = ctx.receive().await?;
                ctx.send(t).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    match rt.link("num", "text") {
        Err(Error::TypeMismatch { kernel, context, .. }) => {
            assert_eq!(kernel, "text");
            assert_eq!(context, "link");
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    rt.shutdown().await;
}

#[tokio::test]
async fn send_to_routes_between_kernels_by_id() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "front",
        KernelConfig::default(),
        |mut ctx: KernelContext<Text, Text>| async move {
            loop {
                let t = ctx.receive().await?;
                ctx.send_to("back", Num::new(t.s.len() as i64)).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.launch_with("back", KernelConfig::default(), times_ten).unwrap();
    rt.activate("front").unwrap();
    rt.activate("back").unwrap();
    rt.send("front", Text::new("abcd")).await.unwrap();
    assert_eq!(rt.receive::<Num>("back").await.unwrap().n, 40);
    assert_eq!(rt.telemetry("front").unwrap().messages_sent, 1);
    rt.shutdown().await;
}

#[tokio::test]
async fn send_to_an_unknown_kernel_fails_the_sender_with_the_reason() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "lost",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            let m = ctx.receive().await?;
            ctx.send_to("nowhere", m).await?;
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.activate("lost").unwrap();
    rt.send("lost", Num::new(1)).await.unwrap();
    match rt.receive::<Num>("lost").await {
        Err(Error::KernelFailed { error, .. }) => assert!(error.to_string().contains("nowhere"), "{error}"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_message_types_and_unknown_ids_are_typed_errors() {
    let rt = RingKernelRuntime::new();
    rt.launch_with("k", KernelConfig::default(), times_ten).unwrap();
    rt.activate("k").unwrap();
    assert!(matches!(
        rt.send("k", Text::new("x")).await.map_err(Error::from),
        Err(Error::TypeMismatch { context: "input", .. })
    ));
    assert!(matches!(
        rt.receive::<Text>("k").await,
        Err(Error::TypeMismatch { context: "output", .. })
    ));
    match rt.send("nope", Num::new(1)).await.map_err(Error::from) {
        Err(Error::KernelNotFound { id, known }) => {
            assert_eq!(id, "nope");
            assert_eq!(known, vec!["k".to_string()]);
        }
        other => panic!("expected KernelNotFound, got {other:?}"),
    }
    assert!(matches!(
        rt.launch_with("k", KernelConfig::default(), times_ten),
        Err(Error::KernelAlreadyExists(id)) if id == "k"
    ));
    rt.shutdown().await;
}

#[tokio::test]
async fn reject_strategy_refuses_and_counts() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 2,
        backpressure: Backpressure::Reject,
        ..Default::default()
    };
    rt.launch_with("k", config, times_ten).unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    rt.send("k", Num::new(1)).await.unwrap();
    rt.send("k", Num::new(2)).await.unwrap();
    match rt.send("k", Num::new(3)).await.map_err(Error::from) {
        Err(Error::QueueFull {
            kernel,
            queue,
            capacity,
        }) => {
            assert_eq!((kernel.as_str(), queue, capacity), ("k", "input", 2));
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(rt.telemetry("k").unwrap().messages_rejected, 1);
    rt.shutdown().await;
}

#[tokio::test]
async fn block_strategy_with_timeout_gives_queue_timeout() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 1,
        send_timeout: Some(Duration::from_millis(30)),
        ..Default::default()
    };
    rt.launch_with("k", config, times_ten).unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    rt.send("k", Num::new(1)).await.unwrap();
    assert!(matches!(
        rt.send("k", Num::new(2)).await.map_err(Error::from),
        Err(Error::QueueTimeout { .. })
    ));
    assert!(matches!(
        rt.send_timeout("k", Num::new(3), Duration::from_millis(10)).await.map_err(Error::from),
        Err(Error::QueueTimeout { timeout, .. }) if timeout == Duration::from_millis(10)
    ));
    assert!(matches!(
        rt.try_send("k", Num::new(4)).map_err(Error::from),
        Err(Error::QueueFull { .. })
    ));
    rt.shutdown().await;
}

#[tokio::test]
async fn drop_oldest_keeps_high_priority_and_counts_drops() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 3,
        backpressure: Backpressure::DropOldest,
        ..Default::default()
    };
    rt.launch_with("k", config, times_ten).unwrap();
    rt.activate("k").unwrap();
    rt.deactivate("k").unwrap();
    rt.send("k", Num::with_priority(1, 250)).await.unwrap();
    rt.send("k", Num::with_priority(2, 10)).await.unwrap();
    rt.send("k", Num::with_priority(3, 10)).await.unwrap();
    rt.send("k", Num::with_priority(4, 128)).await.unwrap(); // evicts 2, the oldest low
    rt.reactivate("k").unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(rt.receive::<Num>("k").await.unwrap().n);
    }
    assert_eq!(got, vec![10, 40, 30]);
    assert_eq!(rt.telemetry("k").unwrap().messages_dropped, 1);
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_account_for_every_message() {
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 16,
        backpressure: Backpressure::DropOldest,
        output_queue_size: 100_000,
        ..Default::default()
    };
    rt.launch_with("k", config, times_ten).unwrap();
    rt.activate("k").unwrap();
    let producers = 4;
    let per = 2_000i64;
    let mut tasks = Vec::new();
    for p in 0..producers {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                rt.send("k", Num::new(p * per + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rt.deactivate("k").unwrap();
    // Let a delivery that raced with deactivate finish its bookkeeping.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = rt.telemetry("k").unwrap();
    let sent = (producers * per) as u64;
    assert_eq!(t.input_queue.enqueued, sent);
    assert_eq!(
        t.input_queue.enqueued,
        t.input_queue.dequeued + t.input_queue.dropped + t.input_queue.depth as u64
    );
    // Every delivered message produced exactly one distinct reply.
    let mut seen = HashSet::new();
    let delivered = t.messages_received;
    for _ in 0..delivered {
        let r: Num = rt.receive("k").await.unwrap();
        assert!(seen.insert(r.n), "duplicate reply {}", r.n);
    }
    assert_eq!(delivered, t.input_queue.dequeued);
    rt.shutdown().await;
}

/// A host task whose sends always find room still yields to the kernel
/// (each send spends a unit of Tokio's cooperative budget, as Tokio's own
/// channels do): on one thread, the kernel has handled messages before the
/// host's sending loop, which never awaits anything else, ends.
#[tokio::test(flavor = "current_thread")]
async fn a_host_that_always_finds_room_still_lets_the_kernel_run() {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rt = RingKernelRuntime::new();
    let config = KernelConfig {
        input_queue_size: 100_000,
        ..KernelConfig::default()
    };
    rt.launch_with("k", config, crate::common::counting(counter.clone()))
        .unwrap();
    rt.activate("k").unwrap();
    let h = rt.handle::<Num, Num>("k").unwrap();
    for i in 0..10_000 {
        h.send(Num::new(i)).await.unwrap();
    }
    let seen = counter.load(std::sync::atomic::Ordering::SeqCst);
    assert!(seen > 0, "the kernel never ran while 10 000 sends went in");
    let batches = (0..1000).map(|b| (0..10).map(|i| Num::new(b * 10 + i)).collect::<Vec<_>>());
    let before = counter.load(std::sync::atomic::Ordering::SeqCst);
    for batch in batches {
        h.send_batch(batch).await.unwrap();
    }
    assert!(
        counter.load(std::sync::atomic::Ordering::SeqCst) > before,
        "the kernel never ran while 1 000 batches went in"
    );
    rt.shutdown().await;
}

/// The futures of the host's hot calls stay small: every caller moves
/// them, and an `async fn` that holds its rare slow path inline (a wait
/// for room, a timeout) grows them several times over (a receive was
/// 1016 bytes, a call 1344, before the waits were boxed or written as
/// plain futures; measured with a 120-byte message).
#[tokio::test]
async fn the_host_s_futures_stay_small() {
    #[derive(Debug, Clone, Message)]
    struct Big {
        payload: [u8; 64],
        seq: u64,
        header: dotcompute::MessageHeader,
    }
    let big = || Big {
        payload: [0; 64],
        seq: 0,
        header: dotcompute::MessageHeader::new(),
    };
    assert_eq!(std::mem::size_of::<Big>(), 120);
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "echo",
        KernelConfig::default(),
        |mut ctx: KernelContext<Big, Big>| async move {
            loop {
                let m = ctx.receive().await?;
                let header = dotcompute::MessageHeader::reply_to(&m.header);
                ctx.send(Big { header, ..m }).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.activate("echo").unwrap();
    let h = rt.handle::<Big, Big>("echo").unwrap();
    let send = std::mem::size_of_val(&h.send(big()));
    let receive = std::mem::size_of_val(&h.receive());
    let call = std::mem::size_of_val(&h.call(big()));
    assert!(send <= 384, "send future: {send} bytes");
    assert!(receive <= 512, "receive future: {receive} bytes");
    assert!(call <= 1024, "call future: {call} bytes");
    // They still work.
    h.send(big()).await.unwrap();
    let echoed = h.receive().await.unwrap();
    assert_eq!((echoed.seq, echoed.payload), (0, [0; 64]));
    let answer = tokio::time::timeout(Duration::from_secs(10), h.call(big())).await;
    assert_eq!(answer.unwrap().unwrap().seq, 0);
    rt.shutdown().await;
}

/// A task that sends in a loop yields now and then even though every send
/// finds room (each send spends a unit of Tokio's cooperative budget), so
/// other tasks on its thread — here a counter — run meanwhile.
#[tokio::test]
async fn a_sending_loop_that_always_finds_room_still_yields() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "sink",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            loop {
                ctx.receive().await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    rt.activate("sink").unwrap();
    let h = rt.handle::<Num, Num>("sink").unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    // Fewer than the queue holds: no send ever waits for room.
    for i in 0..1_000 {
        h.send(Num::new(i)).await.unwrap();
    }
    let during = ticks.load(Ordering::Relaxed);
    assert!(during > 0, "the other task never ran while 1000 sends completed");
    counter.abort();
    rt.shutdown().await;
}
