use std::time::Duration;

use dotcompute::{KernelConfig, KernelContext, KernelState, Message, RingKernelRuntime};

use crate::common::{blocking_times_ten, times_ten, Num};

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
            let mut t = rt.telemetry("k").unwrap();
            for _ in 0..400 {
                if t.messages_processed == n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                t = rt.telemetry("k").unwrap();
            }
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
