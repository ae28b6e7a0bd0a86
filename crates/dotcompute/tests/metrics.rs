//! The runtime's telemetry through the `metrics` facade: a real recorder
//! (metrics-util's debugging recorder) receives every series with the
//! kernel's figures; counters are absolute, so recording twice does not
//! double-count; the state gauge follows the kernel; the exporter thread
//! records on its own and stops.

use std::collections::HashMap;
use std::time::Duration;

use dotcompute::telemetry::metrics::{self, ExporterError, MetricsExporter};
use dotcompute::{Error, KernelContext, Message, MessageHeader, RingKernelRuntime};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

#[derive(Debug, Message)]
struct Ping {
    n: u64,
    header: MessageHeader,
}

async fn echo(mut ctx: KernelContext<Ping, Ping>) -> Result<(), Error> {
    loop {
        let p = ctx.receive().await?;
        ctx.send(p.reply(Ping {
            n: p.n,
            header: MessageHeader::new(),
        }))
        .await?;
    }
}

type Series = HashMap<(MetricKind, String, Vec<(String, String)>), DebugValue>;

fn series(snapshotter: &Snapshotter) -> Series {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value): (CompositeKey, _, _, DebugValue)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            ((kind, key.name().to_string(), labels), value)
        })
        .collect()
}

fn get<'a>(s: &'a Series, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> &'a DebugValue {
    let mut l: Vec<(String, String)> = labels.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    l.sort();
    s.get(&(kind, name.to_string(), l))
        .unwrap_or_else(|| panic!("no {kind:?} {name} {labels:?} in {:#?}", s.keys().collect::<Vec<_>>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_reaches_the_recorder_with_the_kernels_figures() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = RingKernelRuntime::new();
    rt.launch_with("metrics_echo", Default::default(), echo).unwrap();
    rt.activate("metrics_echo").unwrap();
    let h = rt.handle::<Ping, Ping>("metrics_echo").unwrap();
    for n in 0..100 {
        h.send(Ping {
            n,
            header: MessageHeader::new(),
        })
        .await
        .unwrap();
        assert_eq!(h.receive().await.unwrap().n, n);
    }
    // The kernel counts a reply as sent (and the message as processed) just
    // after handing it over: wait until the counters have caught up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let t = loop {
        let t = rt.telemetry("metrics_echo").unwrap();
        if t.messages_sent == 100 && t.messages_processed == 100 {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "{t:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    ::metrics::with_local_recorder(&recorder, || {
        rt.record_metrics();
        // A second snapshot of the same figures must not double them.
        metrics::record(&rt.summary());
    });
    let s = series(&snapshotter);
    let k = [("kernel", "metrics_echo")];
    use MetricKind::{Counter, Gauge};
    assert_eq!(
        get(&s, Counter, "dotcompute_kernel_messages_received_total", &k),
        &DebugValue::Counter(t.messages_received)
    );
    assert_eq!(t.messages_received, 100);
    assert_eq!(
        get(&s, Counter, "dotcompute_kernel_messages_sent_total", &k),
        &DebugValue::Counter(100)
    );
    assert_eq!(
        get(&s, Counter, "dotcompute_kernel_messages_processed_total", &k),
        &DebugValue::Counter(100)
    );
    for name in [
        "messages_processed_total",
        "messages_dropped_total",
        "messages_rejected_total",
        "messages_discarded_total",
        "messages_lost_total",
        "errors_total",
        "restarts_total",
        "queue_wait_seconds_count",
        "handler_seconds_count",
    ] {
        get(&s, Counter, &format!("dotcompute_kernel_{name}"), &k);
    }
    for name in [
        "input_queue_depth",
        "input_queue_peak_depth",
        "output_queue_depth",
        "uptime_seconds",
        "throughput_per_second",
    ] {
        get(&s, Gauge, &format!("dotcompute_kernel_{name}"), &k);
    }
    assert_eq!(
        get(&s, Counter, "dotcompute_kernel_queue_wait_seconds_count", &k),
        &DebugValue::Counter(t.queue_wait.count)
    );
    let p99 = get(
        &s,
        Gauge,
        "dotcompute_kernel_handler_seconds",
        &[("kernel", "metrics_echo"), ("quantile", "0.99")],
    );
    match p99 {
        DebugValue::Gauge(v) => {
            assert!(v.into_inner() > 0.0 && v.into_inner() < 10.0, "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    fn state<'a>(s: &'a Series, state: &str) -> &'a DebugValue {
        get(
            s,
            MetricKind::Gauge,
            "dotcompute_kernel_state",
            &[("kernel", "metrics_echo"), ("state", state)],
        )
    }
    let active = dotcompute::KernelState::Active.to_string();
    let deactivated = dotcompute::KernelState::Deactivated.to_string();
    assert_eq!(state(&s, &active), &DebugValue::Gauge(1.0.into()));
    assert_eq!(state(&s, &deactivated), &DebugValue::Gauge(0.0.into()));

    // The state gauge follows the kernel.
    rt.deactivate("metrics_echo").unwrap();
    ::metrics::with_local_recorder(&recorder, || rt.record_metrics());
    let s = series(&snapshotter);
    assert_eq!(state(&s, &active), &DebugValue::Gauge(0.0.into()));
    assert_eq!(state(&s, &deactivated), &DebugValue::Gauge(1.0.into()));
    rt.shutdown().await;
}

#[test]
fn the_exporter_records_on_its_own_thread_and_stops() {
    // The exporter's thread records into the global recorder: this test
    // binary installs it once, here.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let rt = tokio.block_on(async {
        let rt = RingKernelRuntime::new();
        rt.launch_with("metrics_exported", Default::default(), echo).unwrap();
        rt
    });
    let exporter = MetricsExporter::start(rt.clone(), Duration::from_millis(5)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = series(&snapshotter);
        if s.keys().any(|(_, name, labels)| {
            name == "dotcompute_kernel_state" && labels.iter().any(|(_, v)| v == "metrics_exported")
        }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the exporter recorded nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    exporter.stop();
    assert!(matches!(
        MetricsExporter::start(rt.clone(), Duration::ZERO),
        Err(ExporterError::ZeroInterval)
    ));
    tokio.block_on(rt.shutdown());
}
