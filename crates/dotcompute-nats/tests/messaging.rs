//! send / receive / call between runtimes in separate processes, over a
//! real nats-server, in core and JetStream delivery; typed, counted errors
//! for garbage, wrong types and absent kernels.

mod common;

use std::time::Duration;

use common::{local_node, NatsServer, Peer};
use dotcompute::{Message, MessageHeader};
use dotcompute_nats::peer::Probe;
use dotcompute_nats::wire::{ErrorKind, ErrorReply};
use dotcompute_nats::{NatsError, RemoteOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Message, Serialize, Deserialize)]
struct Other {
    header: MessageHeader,
}

async fn send_receive_call(jetstream: bool) {
    let Some(server) = NatsServer::start() else { return };
    let mut args = vec!["--kernel", "echo=echo", "--kernel", "stage=stage"];
    if jetstream {
        args.push("--jetstream");
    }
    let peer = Peer::spawn(&server.url(), "a", &args);
    let (_rt, node) = local_node(&server.url(), "test").await;
    let echo = node
        .remote::<Probe, Probe>("echo", RemoteOptions::default())
        .await
        .unwrap();
    assert_eq!(echo.delivery(), if jetstream { "jetstream" } else { "core" });

    // call: the reply is correlated to the request and comes from node a.
    let request = Probe::new(1, "hi");
    let id = request.message_id();
    let reply = echo.call(request).await.unwrap();
    assert_eq!(reply.text, "a:hi");
    assert_eq!(reply.correlation_id(), Some(id));

    // Many calls at once: each gets its own answer.
    let calls = (0..50u64).map(|i| {
        let echo = echo.clone();
        async move { (i, echo.call(Probe::new(i, format!("m{i}"))).await) }
    });
    for (i, r) in futures::future::join_all(calls).await {
        let r = r.unwrap();
        assert_eq!((r.seq, r.text.as_str()), (i, format!("a:m{i}").as_str()));
    }
    let t = echo.telemetry();
    assert_eq!((t.calls, t.call_replies, t.call_errors), (51, 51, 0));
    assert!(t.call_latency.count == 51 && t.call_latency.p50_ns > 0);

    // send + receive: outputs that answer no call come back to receivers.
    let stage = node
        .remote::<Probe, Probe>("stage", RemoteOptions::default())
        .await
        .unwrap();
    stage.subscribe_outputs().await.unwrap();
    for i in 0..20 {
        stage.send(Probe::new(i, format!("s{i}"))).await.unwrap();
    }
    for i in 0..20 {
        let out = stage.receive_timeout(Duration::from_secs(10)).await.unwrap();
        assert_eq!((out.seq, out.text.as_str()), (i, format!("s{i}|a").as_str()));
    }
    assert_eq!(stage.telemetry().lost, 0);

    // The peer's own telemetry, asked over NATS.
    let remote = stage.remote_telemetry().await.unwrap();
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].replica.node, "a");
    assert_eq!(remote[0].kernel.messages_received, 20);
    assert_eq!(remote[0].transport.delivered, 20);
    assert_eq!(remote[0].transport.lost, 0);

    let report = peer.finish();
    let endpoints = report["telemetry"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_receive_call_core() {
    send_receive_call(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_receive_call_jetstream() {
    send_receive_call(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_wrong_types_and_absent_kernels_are_typed_errors() {
    let Some(server) = NatsServer::start() else { return };
    let _peer = Peer::spawn(&server.url(), "a", &["--kernel", "echo=echo"]);
    let (_rt, node) = local_node(&server.url(), "test").await;
    let echo = node
        .remote::<Probe, Probe>("echo", RemoteOptions::default())
        .await
        .unwrap();

    // Bytes that are no message, as a request: answered with a typed error,
    // counted by the exporter, and the kernel keeps serving.
    let subject = node.subjects("echo").unwrap().input();
    for garbage in [&b""[..], &[1, 2, 3][..], &[9, 0xc0][..]] {
        let answer = node
            .client()
            .request(subject.clone(), bytes::Bytes::copy_from_slice(garbage))
            .await
            .unwrap();
        let e: ErrorReply = dotcompute::codec::decode(&answer.payload).unwrap();
        assert_eq!(e.kind, ErrorKind::Undecodable);
        assert!(e.error.contains("cannot decode"), "{}", e.error);
    }
    assert_eq!(echo.call(Probe::new(7, "still")).await.unwrap().text, "a:still");
    let t = echo.remote_telemetry().await.unwrap();
    assert_eq!(t[0].transport.decode_errors, 3);

    // A handle whose types differ from the exporter's is refused when opened.
    match node.remote::<Probe, Other>("echo", RemoteOptions::default()).await {
        Err(NatsError::TypeMismatch { side, kernel, .. }) => assert_eq!((side, kernel.as_str()), ("output", "echo")),
        Err(e) => panic!("expected a type mismatch, got {e}"),
        Ok(_) => panic!("expected a type mismatch"),
    }

    // A kernel nobody exports.
    match node
        .remote::<Probe, Probe>(
            "nobody",
            RemoteOptions::default().wait_for_export(Duration::from_millis(200)),
        )
        .await
    {
        Err(NatsError::NotExported { kernel, .. }) => assert_eq!(kernel, "nobody"),
        Err(e) => panic!("expected NotExported, got {e}"),
        Ok(_) => panic!("expected NotExported"),
    }

    // Invalid names never reach the wire.
    for bad in ["a.b", "*", ">", "x y", ""] {
        assert!(matches!(
            node.remote::<Probe, Probe>(bad, RemoteOptions::default()).await,
            Err(NatsError::InvalidName { .. })
        ));
        assert!(matches!(
            node.export::<Probe, Probe>(bad, Default::default()).await,
            Err(NatsError::InvalidName { .. })
        ));
    }
    assert!(matches!(
        node.export::<Probe, Probe>("echo", dotcompute_nats::ExportOptions::default().queue_group("g.>"))
            .await,
        Err(NatsError::InvalidName {
            what: "queue group",
            ..
        })
    ));
}

/// A kernel exported while it is still launched is served once it is
/// activated, also when the activation comes right after the export, while
/// the export's first look at the kernel is under way (that race once took
/// the kernel for an ended one: its outputs were never taken again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_activated_right_after_its_export_is_served() {
    let Some(server) = NatsServer::start() else { return };
    let (rt, serving) = local_node(&server.url(), "serving").await;
    let (_client_rt, client) = local_node(&server.url(), "client").await;
    for i in 0..100u64 {
        let id = format!("echo{i}");
        rt.launch_with(
            &id,
            dotcompute::KernelConfig::default(),
            dotcompute_nats::peer::local_echo,
        )
        .unwrap();
        serving
            .export::<Probe, Probe>(&id, dotcompute_nats::ExportOptions::default())
            .await
            .unwrap();
        rt.activate(&id).unwrap();
        let echo = client
            .remote::<Probe, Probe>(&id, RemoteOptions::default().wait_for_export(Duration::from_secs(10)))
            .await
            .unwrap();
        let reply = echo
            .call(Probe::new(i, "hi"))
            .await
            .unwrap_or_else(|e| panic!("kernel {id}: {e}"));
        assert_eq!(reply.seq, i);
    }
}

/// An echo kernel `sink` exported by one node of this process and a handle
/// to it from a second node (the runtimes and nodes live as long as this).
struct ServedSink {
    _runtimes: (dotcompute::RingKernelRuntime, dotcompute::RingKernelRuntime),
    _nodes: (dotcompute_nats::NatsNode, dotcompute_nats::NatsNode),
    export: dotcompute_nats::Export,
    handle: dotcompute_nats::RemoteHandle<Probe, Probe>,
}

impl ServedSink {
    async fn start(server: &NatsServer) -> ServedSink {
        let (rt, serving) = local_node(&server.url(), "serving").await;
        let (client_rt, client) = local_node(&server.url(), "client").await;
        rt.launch_with(
            "sink",
            dotcompute::KernelConfig::default(),
            dotcompute_nats::peer::local_echo,
        )
        .unwrap();
        rt.activate("sink").unwrap();
        let export = serving
            .export::<Probe, Probe>("sink", dotcompute_nats::ExportOptions::default())
            .await
            .unwrap();
        let handle = client
            .remote::<Probe, Probe>(
                "sink",
                RemoteOptions::default().wait_for_export(Duration::from_secs(10)),
            )
            .await
            .unwrap();
        ServedSink {
            _runtimes: (rt, client_rt),
            _nodes: (serving, client),
            export,
            handle,
        }
    }
}

/// Several tasks sending through clones of one handle (a link and a caller
/// do): the messages reach the subject in the order of their sequence
/// numbers, and the exporter takes every one of them, none as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_through_one_handle_leave_in_number_order() {
    let Some(server) = NatsServer::start() else { return };
    let served = ServedSink::start(&server).await;
    let (export, sink) = (&served.export, &served.handle);
    // A plain client watching the input subject sees what the server routes.
    let watcher = async_nats::connect(server.url()).await.unwrap();
    let mut seen = watcher.subscribe(sink.subjects().input()).await.unwrap();
    // The server takes a connection's subscriptions in order: once a message
    // the watcher publishes to a second one comes back, the first is active.
    let mut probe = watcher.subscribe("probe.watcher").await.unwrap();
    watcher.publish("probe.watcher", "".into()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut probe))
        .await
        .expect("the watcher's own probe comes back");

    let (tasks, each) = (4u64, 500u64);
    let senders: Vec<_> = (0..tasks)
        .map(|t| {
            let sink = sink.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    sink.send(Probe::new(t * each + i, "x")).await.unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let mut last = 0u64;
    for _ in 0..tasks * each {
        let m = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut seen))
            .await
            .expect("every message reaches the subject")
            .unwrap();
        let seq: u64 = m
            .headers
            .as_ref()
            .and_then(|h| h.get(dotcompute_nats::wire::HEADER_SEQUENCE))
            .map(|v| v.as_str().parse().unwrap())
            .expect("a sequence number");
        assert_eq!(seq, last + 1, "numbers leave the handle in order");
        last = seq;
    }
    common::eventually("the exporter took every message", Duration::from_secs(10), || async {
        (export.telemetry().delivered == tasks * each).then_some(())
    })
    .await;
    assert_eq!(export.telemetry().duplicates, 0);
}

/// A publisher of its own (a plain NATS client, not a dotcompute handle)
/// that numbers its messages out of order: the exporter takes a number
/// below the first one it saw as late, not as a duplicate, so every message
/// is delivered; only a real repeat is dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_publisher_s_out_of_order_numbers_are_all_delivered() {
    let Some(server) = NatsServer::start() else { return };
    let served = ServedSink::start(&server).await;
    let (export, sink) = (&served.export, &served.handle);
    let foreign = async_nats::connect(server.url()).await.unwrap();
    let publisher = uuid::Uuid::new_v4().simple().to_string();
    for seq in [2u64, 1, 3, 1] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(dotcompute_nats::wire::HEADER_PUBLISHER, publisher.as_str());
        headers.insert(dotcompute_nats::wire::HEADER_SEQUENCE, seq.to_string().as_str());
        let payload = dotcompute::codec::encode(&Probe::new(seq, "foreign")).unwrap();
        foreign
            .publish_with_headers(sink.subjects().input(), headers, payload.into())
            .await
            .unwrap();
    }
    foreign.flush().await.unwrap();
    common::eventually(
        "the exporter took every number once",
        Duration::from_secs(10),
        || async {
            let t = export.telemetry();
            (t.delivered == 3 && t.duplicates == 1).then_some(())
        },
    )
    .await;
    assert_eq!(export.telemetry().lost, 0);
}

/// A send the connection refuses (over the server's payload limit) comes
/// back with its message and uses up no sequence number: the exporter
/// counts nothing lost between the sends around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_uses_up_no_sequence_number() {
    let Some(server) = NatsServer::start() else { return };
    let served = ServedSink::start(&server).await;
    let (export, sink) = (&served.export, &served.handle);
    sink.send(Probe::new(1, "before")).await.unwrap();
    // nats-server's default payload limit is 1 MiB.
    let refused = sink
        .send(Probe::new(2, "too big").padded(2 << 20))
        .await
        .expect_err("over the server's payload limit");
    assert!(
        matches!(refused.error(), NatsError::Publish { .. }),
        "{}",
        refused.error()
    );
    assert_eq!(refused.into_message().seq, 2, "the refused message comes back");
    sink.send(Probe::new(3, "after")).await.unwrap();
    common::eventually("the exporter took both sends", Duration::from_secs(10), || async {
        (export.telemetry().delivered == 2).then_some(())
    })
    .await;
    let t = export.telemetry();
    assert_eq!((t.lost, t.duplicates), (0, 0), "{t:?}");
}
