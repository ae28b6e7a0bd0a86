use std::time::Duration;

use dotcompute::runtime::config::DEFAULT_LATENCY_SAMPLE_EVERY;
use dotcompute::{
    BlockingContext, Error, ExecutionMode, KernelConfig, KernelContext, KernelSpec, KernelState, Message,
    RingKernelRuntime, RuntimeConfig,
};

use crate::common::{times_ten, Num};

fn blocking_times_ten(mut ctx: BlockingContext<Num, Num>) -> Result<(), Error> {
    // The handler really runs on its own OS thread.
    let name = std::thread::current().name().map(str::to_string).unwrap_or_default();
    assert!(name.starts_with("ring-kernel-"), "runs on {name:?}");
    loop {
        let m = ctx.receive()?;
        ctx.send(m.reply(Num::new(m.n * 10)))?;
    }
}

fn thread_spec(id: &str) -> KernelSpec {
    mode_spec(id, ExecutionMode::Thread)
}

fn mode_spec(id: &str, mode: ExecutionMode) -> KernelSpec {
    KernelSpec::builder::<Num, Num>(id)
        .mode(mode)
        .blocking_handler(blocking_times_ten)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_kernel_has_the_same_lifecycle_and_api() {
    same_lifecycle_and_api(ExecutionMode::Thread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spin_kernel_has_the_same_lifecycle_and_api() {
    same_lifecycle_and_api(ExecutionMode::Spin).await;
}

async fn same_lifecycle_and_api(mode: ExecutionMode) {
    let rt = RingKernelRuntime::with_config(RuntimeConfig {
        terminate_timeout: Duration::from_secs(30),
    });
    rt.launch_spec(mode_spec("t", mode)).unwrap();
    rt.activate("t").unwrap();
    for i in 0..100 {
        assert_eq!(rt.call::<Num, Num>("t", Num::new(i)).await.unwrap().n, i * 10);
    }
    rt.deactivate("t").unwrap();
    rt.send("t", Num::new(7)).await.unwrap();
    assert!(matches!(
        rt.receive_timeout::<Num>("t", Duration::from_millis(50)).await,
        Err(Error::QueueTimeout { .. })
    ));
    rt.reactivate("t").unwrap();
    assert_eq!(rt.receive::<Num>("t").await.unwrap().n, 70);
    let t = rt.telemetry("t").unwrap();
    assert_eq!(t.messages_received, 101);
    assert_eq!(t.input_queue.enqueued, 101);
    // One wait in DEFAULT_LATENCY_SAMPLE_EVERY is measured.
    assert_eq!(
        t.queue_wait.count,
        101u64.div_ceil(u64::from(DEFAULT_LATENCY_SAMPLE_EVERY))
    );
    // Let the kernel park (past its spin and yield phases) before terminating.
    tokio::time::sleep(Duration::from_millis(30)).await;
    // Terminate wakes the thread blocked in receive: no forced abort.
    let report = rt.terminate("t").await.unwrap();
    assert!(!report.forced);
    assert_eq!(report.previous_state, KernelState::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_spin_and_async_kernels_link_in_one_pipeline() {
    let rt = RingKernelRuntime::new();
    rt.launch_spec(thread_spec("thread")).unwrap();
    rt.launch_spec(mode_spec("spin", ExecutionMode::Spin)).unwrap();
    rt.launch_with("async", KernelConfig::default(), times_ten).unwrap();
    rt.link("thread", "spin").unwrap();
    rt.link("spin", "async").unwrap();
    for id in ["thread", "spin", "async"] {
        rt.activate(id).unwrap();
    }
    for i in 0..200 {
        rt.send("thread", Num::new(i)).await.unwrap();
    }
    for i in 0..200 {
        assert_eq!(rt.receive::<Num>("async").await.unwrap().n, i * 1000);
    }
    let report = rt.shutdown().await;
    assert!(report.kernels.iter().all(|k| !k.forced), "{report:?}");
}

#[tokio::test]
async fn spin_kernels_refuse_drop_oldest_and_reject_when_full() {
    let err = KernelSpec::builder::<Num, Num>("s")
        .mode(ExecutionMode::Spin)
        .backpressure(dotcompute::Backpressure::DropOldest)
        .blocking_handler(blocking_times_ten)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfiguration {
                parameter: "backpressure",
                ..
            }
        ),
        "{err:?}"
    );

    let rt = RingKernelRuntime::new();
    let spec = KernelSpec::builder::<Num, Num>("s")
        .mode(ExecutionMode::Spin)
        .input_queue_size(4)
        .backpressure(dotcompute::Backpressure::Reject)
        .blocking_handler(blocking_times_ten)
        .build()
        .unwrap();
    rt.launch_spec(spec).unwrap();
    rt.activate("s").unwrap();
    rt.deactivate("s").unwrap();
    for i in 0..4 {
        rt.send("s", Num::new(i)).await.unwrap();
    }
    assert!(matches!(
        rt.send("s", Num::new(4)).await.map_err(Error::from),
        Err(Error::QueueFull { capacity: 4, .. })
    ));
    rt.reactivate("s").unwrap();
    for i in 0..4 {
        assert_eq!(rt.receive::<Num>("s").await.unwrap().n, i * 10);
    }
    let t = rt.telemetry("s").unwrap();
    assert_eq!(t.messages_rejected, 1);
    rt.shutdown().await;
}

#[tokio::test]
async fn a_panicking_thread_kernel_fails_cleanly() {
    let rt = RingKernelRuntime::new();
    let spec = KernelSpec::builder::<Num, Num>("boom")
        .blocking_handler(|mut ctx: BlockingContext<Num, Num>| -> Result<(), Error> {
            let m = ctx.receive()?;
            panic!("thread kernel got {}", m.n);
        })
        .build()
        .unwrap();
    rt.launch_spec(spec).unwrap();
    rt.activate("boom").unwrap();
    rt.send("boom", Num::new(9)).await.unwrap();
    match rt.receive::<Num>("boom").await {
        Err(Error::KernelFailed { error, .. }) => assert!(error.to_string().contains("thread kernel got 9"), "{error}"),
        other => panic!("expected KernelFailed, got {other:?}"),
    }
    assert_eq!(rt.kernel_state("boom").unwrap(), KernelState::Failed);
}

#[tokio::test]
async fn handler_kind_and_mode_must_agree() {
    let err = KernelSpec::builder::<Num, Num>("x")
        .handler(times_ten)
        .config(KernelConfig {
            mode: ExecutionMode::Thread,
            ..Default::default()
        })
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfiguration { parameter: "mode", .. }),
        "{err:?}"
    );
    let err = thread_spec("y").with_config(KernelConfig::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfiguration { parameter: "mode", .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_threads_talk_to_every_mode_with_the_blocking_handle() {
    let rt = RingKernelRuntime::new();
    rt.launch_spec(mode_spec("spin", ExecutionMode::Spin)).unwrap();
    rt.launch_spec(thread_spec("thread")).unwrap();
    rt.launch_with("async", KernelConfig::default(), times_ten).unwrap();
    for id in ["spin", "thread", "async"] {
        rt.activate(id).unwrap();
        let handle = rt.handle::<Num, Num>(id).unwrap();
        let host = std::thread::spawn(move || {
            for i in 0..5_000 {
                handle.send_blocking(Num::new(i)).unwrap();
                let r = handle.receive_blocking().unwrap();
                assert_eq!(r.n, i * 10);
            }
            handle.receive_blocking_timeout(Duration::from_millis(10))
        });
        let last = tokio::task::spawn_blocking(move || host.join().unwrap()).await.unwrap();
        assert!(matches!(last, Err(Error::QueueTimeout { .. })), "{id}: {last:?}");
        assert_eq!(rt.telemetry(id).unwrap().messages_received, 5_000);
    }
    let report = rt.shutdown().await;
    assert!(report.kernels.iter().all(|k| !k.forced));
}

fn batch_echo(mut ctx: BlockingContext<Num, Num>) -> Result<(), Error> {
    let mut batch = Vec::with_capacity(64);
    loop {
        batch.clear();
        ctx.receive_batch(64, &mut batch)?;
        let replies: Vec<Num> = batch.iter().map(|m| Num::new(m.n + 1)).collect();
        ctx.send_batch(replies)?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_flow_through_every_mode_in_order() {
    let rt = RingKernelRuntime::new();
    for (id, mode) in [("spin", ExecutionMode::Spin), ("thread", ExecutionMode::Thread)] {
        let spec = KernelSpec::builder::<Num, Num>(id)
            .mode(mode)
            .queue_size(256)
            .blocking_handler(batch_echo)
            .build()
            .unwrap();
        rt.launch_spec(spec).unwrap();
    }
    rt.launch_with(
        "async",
        KernelConfig {
            input_queue_size: 256,
            output_queue_size: 256,
            ..Default::default()
        },
        |mut ctx: KernelContext<Num, Num>| async move {
            let mut batch = Vec::new();
            loop {
                batch.clear();
                ctx.receive_batch(64, &mut batch).await?;
                ctx.send_batch(batch.iter().map(|m| Num::new(m.n + 1)).collect())
                    .await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        },
    )
    .unwrap();
    let total = 20_000i64;
    for id in ["spin", "thread", "async"] {
        rt.activate(id).unwrap();
        let handle = rt.handle::<Num, Num>(id).unwrap();
        // One plain thread sends batches while another receives them.
        let tx = handle.clone();
        let sender = std::thread::spawn(move || {
            for start in (0..total).step_by(100) {
                tx.send_batch_blocking((start..start + 100).map(Num::new).collect())
                    .unwrap();
            }
        });
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < total as usize {
                handle.receive_batch_blocking(128, &mut got).unwrap();
            }
            got
        });
        let got = tokio::task::spawn_blocking(move || {
            sender.join().unwrap();
            receiver.join().unwrap()
        })
        .await
        .unwrap();
        assert_eq!(got.len(), total as usize, "{id}");
        assert!(
            got.iter().enumerate().all(|(i, m)| m.n == i as i64 + 1),
            "{id}: out of order"
        );
        // The kernel counts a batch as sent just after the host can see it,
        // and as processed when it next asks for input.
        let mut t = rt.telemetry(id).unwrap();
        for _ in 0..200 {
            if t.messages_sent == total as u64 && t.messages_processed == total as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            t = rt.telemetry(id).unwrap();
        }
        assert_eq!(t.messages_received, total as u64, "{id}");
        assert_eq!(t.messages_sent, total as u64, "{id}");
        assert_eq!(t.input_queue.enqueued, total as u64, "{id}");
        let measured = (total as u64).div_ceil(u64::from(DEFAULT_LATENCY_SAMPLE_EVERY));
        assert_eq!(t.queue_wait.count, measured, "{id}");
        // Batches delivered together still measure one message in N.
        assert_eq!(t.handler_time.count, measured, "{id}");
    }
    rt.shutdown().await;
}
