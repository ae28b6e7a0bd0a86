use std::time::Duration;

use dotcompute::{KernelConfig, KernelContext, KernelState, Message, RingKernelRuntime};

use crate::common::{blocking_times_ten, times_ten, Num};

/// The kernel's telemetry once it counts `n` messages processed (the last
/// message counts once the handler asks for the next), or after 2 s.
async fn telemetry_once_processed(rt: &RingKernelRuntime, id: &str, n: u64) -> dotcompute::KernelTelemetry {
    let mut t = rt.telemetry(id).unwrap();
    for _ in 0..400 {
        if t.messages_processed == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        t = rt.telemetry(id).unwrap();
    }
    t
}

/// Latencies are measured for one message in `latency_sample_every` (the
/// first, then every n-th), whatever the execution mode; every counter stays
/// exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latencies_are_sampled_as_configured_and_counters_stay_exact() {
    use dotcompute::runtime::config::DEFAULT_LATENCY_SAMPLE_EVERY;
    use dotcompute::{ExecutionMode, KernelSpec};
    assert_eq!(
        KernelConfig::default().latency_sample_every,
        DEFAULT_LATENCY_SAMPLE_EVERY
    );
    let n: u64 = 101;
    for mode in [ExecutionMode::Async, ExecutionMode::Thread, ExecutionMode::Spin] {
        for every in [DEFAULT_LATENCY_SAMPLE_EVERY, 1, 3, 0] {
            let rt = RingKernelRuntime::new();
            let builder = KernelSpec::builder::<Num, Num>("k")
                .mode(mode)
                .latency_sample_every(every);
            let spec = if mode == ExecutionMode::Async {
                builder.handler(times_ten).build()
            } else {
                builder.blocking_handler(blocking_times_ten).build()
            };
            rt.launch_spec(spec.unwrap()).unwrap();
            rt.activate("k").unwrap();
            for i in 0..n as i64 {
                let _: Num = rt.call("k", Num::new(i)).await.unwrap();
            }
            // The last message counts as handled once the handler asks for
            // the next one.
            let t = telemetry_once_processed(&rt, "k", n).await;
            let measured = if every == 0 { 0 } else { n.div_ceil(u64::from(every)) };
            let case = format!("{mode:?}, one in {every}");
            assert_eq!(t.queue_wait.count, measured, "{case}");
            assert_eq!(t.handler_time.count, measured, "{case}");
            assert_eq!(
                (t.messages_received, t.messages_processed, t.messages_sent),
                (n, n, n),
                "{case}"
            );
            assert_eq!(t.input_queue.enqueued, n, "{case}");
            rt.shutdown().await;
        }
    }
}

#[tokio::test]
async fn the_runtime_counts_what_kernels_do() {
    let rt = RingKernelRuntime::new();
    // Every message's latencies measured (the default samples one in 8).
    let config = KernelConfig {
        latency_sample_every: 1,
        ..KernelConfig::default()
    };
    rt.launch_with("k", config, times_ten).unwrap();
    rt.activate("k").unwrap();
    let n = 100;
    for i in 0..n {
        let _: Num = rt.call("k", Num::new(i)).await.unwrap();
    }
    // The last message counts as processed once the handler asks for the next.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = rt.telemetry("k").unwrap();
    assert_eq!(t.kernel_id, "k");
    assert_eq!(t.state, KernelState::Active);
    assert_eq!(t.messages_received, n as u64);
    assert_eq!(t.messages_sent, n as u64);
    assert_eq!(t.messages_processed, n as u64);
    assert_eq!(t.queue_wait.count, n as u64);
    assert_eq!(t.handler_time.count, n as u64);
    assert!(t.handler_time.p50_ns > 0 && t.handler_time.p99_ns >= t.handler_time.p50_ns);
    assert_eq!(t.input_queue.enqueued, n as u64);
    assert_eq!(t.output_queue.dequeued, n as u64);
    assert_eq!(t.errors, 0);
    assert!(t.uptime_secs > 0.0);
    assert!(t.throughput_per_sec > 0.0);

    let s = rt.summary();
    assert_eq!(s.kernel_count, 1);
    assert_eq!(s.total_processed, n as u64);
    let table = s.to_string();
    assert!(table.contains("k ") && table.contains("Active"), "{table}");
    let prom = rt.prometheus();
    assert!(
        prom.contains(&format!(
            "dotcompute_kernel_messages_processed_total{{kernel=\"k\"}} {n}"
        )),
        "{prom}"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn handlers_can_read_their_own_telemetry() {
    let rt = RingKernelRuntime::new();
    rt.launch_with(
        "self",
        KernelConfig::default(),
        |mut ctx: KernelContext<Num, Num>| async move {
            loop {
                let m = ctx.receive().await?;
                let seen = ctx.telemetry().messages_received as i64;
                ctx.send(m.reply(Num::new(seen))).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), dotcompute::Error>(())
        },
    )
    .unwrap();
    rt.activate("self").unwrap();
    for i in 1..=3 {
        assert_eq!(rt.call::<Num, Num>("self", Num::new(0)).await.unwrap().n, i);
    }
    rt.shutdown().await;
}

/// A handler's `receive_batch` takes what is already queued in one go, up
/// to its limit; counts stay exact, latencies are sampled per message, and
/// a kernel that always finds a backlog still yields to the other tasks of
/// its worker (each batch spends a unit of tokio's budget).
#[tokio::test(flavor = "current_thread")]
async fn a_batch_receive_takes_the_backlog_at_once_and_still_yields() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let n: u64 = 1_000;
    let every = 3;
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let taken = Arc::new(AtomicU64::new(0));
    let (sizes_in, taken_in) = (sizes.clone(), taken.clone());
    let config = KernelConfig {
        input_queue_size: 2_048,
        latency_sample_every: every,
        ..KernelConfig::default()
    };
    let rt = RingKernelRuntime::new();
    rt.launch_with("batches", config, move |mut ctx: KernelContext<Num, Num>| {
        let (sizes, taken) = (sizes_in.clone(), taken_in.clone());
        async move {
            let mut batch = Vec::new();
            loop {
                batch.clear();
                let got = ctx.receive_batch(4, &mut batch).await?;
                assert_eq!(got, batch.len());
                sizes.lock().unwrap().push(got);
                taken.fetch_add(got as u64, Ordering::Relaxed);
            }
            #[allow(unreachable_code)]
            Ok::<(), dotcompute::Error>(())
        }
    })
    .unwrap();
    // The whole backlog is queued while the kernel is deactivated.
    rt.activate("batches").unwrap();
    rt.deactivate("batches").unwrap();
    for i in 0..n as i64 {
        rt.try_send("batches", Num::new(i)).unwrap();
    }
    rt.reactivate("batches").unwrap();
    // Another task of this one-thread runtime watches the kernel's progress:
    // it must get to run before the kernel has taken everything.
    let watcher = tokio::spawn({
        let taken = taken.clone();
        async move {
            let mut seen = Vec::new();
            loop {
                let now = taken.load(Ordering::Relaxed);
                seen.push(now);
                if now == n {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let seen = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .unwrap()
        .unwrap();
    assert!(
        seen.iter().any(|&s| s > 0 && s < n),
        "the kernel never yielded while it had a backlog: {seen:?}"
    );
    assert_eq!(sizes.lock().unwrap().iter().sum::<usize>(), n as usize);
    assert!(
        sizes.lock().unwrap().iter().all(|&s| s == 4),
        "a backlog of {n} is taken four at a time"
    );
    // The last batch counts as handled once the handler asks for more.
    let t = telemetry_once_processed(&rt, "batches", n).await;
    assert_eq!((t.messages_received, t.messages_processed), (n, n));
    let measured = n.div_ceil(u64::from(every));
    assert_eq!(t.queue_wait.count, measured);
    assert_eq!(t.handler_time.count, measured);
    assert_eq!(t.input_queue.dequeued, n);
    rt.shutdown().await;
}

/// The same on a kernel thread (thread and spin tiers): a backlog is taken
/// at the batch limit each time, with exact counts and sampled latencies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_batch_receive_takes_the_backlog_at_once() {
    use std::sync::{Arc, Mutex};

    use dotcompute::{BlockingContext, ExecutionMode, KernelSpec};

    let n: u64 = 1_000;
    let every = 3;
    for mode in [ExecutionMode::Thread, ExecutionMode::Spin] {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let sizes_in = sizes.clone();
        let spec = KernelSpec::builder::<Num, Num>("batches")
            .mode(mode)
            .input_queue_size(1_024)
            .latency_sample_every(every)
            .blocking_handler(
                move |mut ctx: BlockingContext<Num, Num>| -> Result<(), dotcompute::Error> {
                    let mut batch = Vec::new();
                    loop {
                        batch.clear();
                        let got = ctx.receive_batch(4, &mut batch)?;
                        assert_eq!(got, batch.len());
                        sizes_in.lock().unwrap().push(got);
                    }
                },
            )
            .build()
            .unwrap();
        let rt = RingKernelRuntime::new();
        rt.launch_spec(spec).unwrap();
        rt.activate("batches").unwrap();
        rt.deactivate("batches").unwrap();
        for i in 0..n as i64 {
            rt.try_send("batches", Num::new(i)).unwrap();
        }
        rt.reactivate("batches").unwrap();
        let t = telemetry_once_processed(&rt, "batches", n).await;
        let case = format!("{mode:?}");
        assert_eq!((t.messages_received, t.messages_processed), (n, n), "{case}");
        assert!(
            sizes.lock().unwrap().iter().all(|&s| s == 4),
            "{case}: {:?}",
            sizes.lock().unwrap()
        );
        assert_eq!(t.queue_wait.count, n.div_ceil(u64::from(every)), "{case}");
        assert_eq!(t.handler_time.count, n.div_ceil(u64::from(every)), "{case}");
        rt.shutdown().await;
    }
}
