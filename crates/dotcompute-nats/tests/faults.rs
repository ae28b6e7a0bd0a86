//! Faults, with a real server and peers in their own processes:
//! - the server killed and restarted mid-stream: core delivery counts its
//!   losses and they equal the gap; JetStream loses none and processes none
//!   twice; in-flight calls fail with a typed error; local kernels keep
//!   serving;
//! - a peer killed mid-stream: callers get an error within the liveness
//!   bound; with JetStream replicas the survivor takes over the rest;
//! - a remote handler failure reaches the caller as a local one does.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, local_node, NatsServer, Peer};
use dotcompute::{Error, KernelConfig, KernelState};
use dotcompute_nats::peer::{parse_report, Probe, SinkReport};
use dotcompute_nats::{NatsError, RemoteHandle, RemoteOptions};

/// Asks a sink for its report (None if it does not answer now).
async fn report(sink: &RemoteHandle<Probe, Probe>) -> Option<SinkReport> {
    let answer = sink
        .call_timeout(Probe::new(0, "report"), Duration::from_secs(2))
        .await
        .ok()?;
    parse_report(&answer).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_losses_across_a_server_restart_are_counted_and_equal_the_gap() {
    let Some(mut server) = NatsServer::start() else { return };
    let url = server.url();
    // The peer reconnects 1.5 s after a loss, this process within 250 ms:
    // what this process publishes in between reaches nobody (at most once),
    // until the peer's silence marks it unavailable and sends come back.
    let _peer = Peer::spawn(&url, "a", &["--kernel", "sink=sink", "--min-reconnect-ms", "1500"]);
    let (rt, node) = local_node(&url, "test").await;
    // A local kernel that must keep serving through the outage.
    rt.launch_with("local", KernelConfig::default(), dotcompute_nats::peer::local_echo)
        .unwrap();
    rt.activate("local").unwrap();
    let sink = node
        .remote::<Probe, Probe>("sink", RemoteOptions::default())
        .await
        .unwrap();

    // The sender streams until told to stop; refused sends (the remote is
    // marked unavailable) come back and are retried.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut calls_failed_typed = 0;
    let sender = {
        let sink = sink.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                let mut p = Probe::new(seq, "x");
                loop {
                    match sink.send(p).await {
                        Ok(()) => break,
                        Err(e) => {
                            p = e.into_message();
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                if seq.is_multiple_of(100) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            seq
        })
    };
    // Kill the server mid-stream, with a call in flight.
    eventually("the stream is under way", Duration::from_secs(30), || {
        let published = sink.telemetry().published;
        async move { (published >= 2000).then_some(()) }
    })
    .await;
    let in_flight = {
        let sink = sink.clone();
        tokio::spawn(async move {
            sink.call_timeout(Probe::new(0, "report"), Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(2)).await;
    server.kill();
    let started = Instant::now();
    match in_flight.await.unwrap() {
        Ok(_) => {} // answered before the kill
        Err(NatsError::Disconnected { .. } | NatsError::Timeout { .. } | NatsError::RemoteUnavailable { .. }) => {
            calls_failed_typed += 1;
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the call failed only after {:?}",
                started.elapsed()
            );
        }
        Err(e) => panic!("unexpected error for a call in flight: {e}"),
    }
    // Local kernels keep serving while the server is down.
    let local: Probe = rt.call("local", Probe::new(1, "up")).await.unwrap();
    assert_eq!(local.text, "local:up");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    // Once the peer is back, a tail of the stream reaches it.
    eventually("the peer is back", Duration::from_secs(30), || {
        let sink = sink.clone();
        async move { report(&sink).await }
    })
    .await;
    let back_at = sink.telemetry().published;
    eventually(
        "a tail is sent after the peer came back",
        Duration::from_secs(30),
        || {
            let published = sink.telemetry().published;
            async move { (published >= back_at + 1000).then_some(()) }
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total = sender.await.unwrap();
    // The last message must arrive for a gap before it to be seen.
    let r = eventually("the last message arrived", Duration::from_secs(30), || {
        let sink = sink.clone();
        async move { report(&sink).await.filter(|r| r.highest == total) }
    })
    .await;
    let t = eventually("the exporter's telemetry", Duration::from_secs(10), || {
        let sink = sink.clone();
        async move { sink.remote_telemetry().await.ok() }
    })
    .await;
    let transport = &t[0].transport;
    // Everything this handle published (the stream and the report calls)
    // minus what reached the exporter: the gap. The losses it counted from
    // sequence gaps must equal it.
    let published = sink.telemetry().published;
    let gap = published - transport.received;
    eprintln!(
        "core restart: published {published} ({total} stream messages), the exporter received {}, \
         lost (counted) {}, gap {gap}; stream messages processed {}; calls failed by the outage {calls_failed_typed}",
        transport.received, transport.lost, r.distinct
    );
    assert_eq!(r.duplicates, 0);
    assert!(
        gap > 0,
        "messages published while the peer was away are lost (at most once)"
    );
    assert_eq!(transport.lost, gap, "losses counted = the gap");
    assert!(total - r.distinct <= gap);
    assert!(node.telemetry().connection.disconnects >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_across_a_server_restart_loses_none_and_processes_none_twice() {
    let Some(mut server) = NatsServer::start() else { return };
    let url = server.url();
    let _peer = Peer::spawn(
        &url,
        "a",
        &["--kernel", "sink=sink", "--jetstream", "--ack-wait-ms", "2000"],
    );
    let (_rt, node) = local_node(&url, "test").await;
    let sink = node
        .remote::<Probe, Probe>("sink", RemoteOptions::default().send_timeout(Duration::from_secs(60)))
        .await
        .unwrap();
    let total = 3000u64;
    let sender = {
        let sink = sink.clone();
        tokio::spawn(async move {
            for i in 1..=total {
                let mut p = Probe::new(i, "x");
                // A send is complete when the server stored it; one that
                // could not be stored in time comes back to be retried.
                loop {
                    match sink.send(p).await {
                        Ok(()) => break,
                        Err(e) => p = e.into_message(),
                    }
                }
            }
        })
    };
    eventually("a third of the stream is stored", Duration::from_secs(30), || {
        let published = sink.telemetry().published;
        async move { (published >= total / 3).then_some(()) }
    })
    .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    sender.await.unwrap();
    let r = eventually("every message is processed", Duration::from_secs(60), || {
        let sink = sink.clone();
        async move { report(&sink).await.filter(|r| r.distinct == total) }
    })
    .await;
    let t = sink.remote_telemetry().await.unwrap();
    eprintln!(
        "jetstream restart: sent {total}, processed {} ({} twice), redelivered {}, skipped duplicates {}, publish retries {}",
        r.processed,
        r.duplicates,
        t[0].transport.redelivered,
        t[0].transport.duplicates,
        sink.telemetry().publish_retries
    );
    assert_eq!(r.duplicates, 0, "no message processed twice");
    assert_eq!(r.processed, total, "none lost: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_peer_fails_its_callers_within_the_liveness_bound() {
    let Some(server) = NatsServer::start() else { return };
    let url = server.url();
    let mut peer = Peer::spawn(&url, "a", &["--kernel", "slow=slow"]);
    let (_rt, node) = local_node(&url, "test").await;
    // A long call timeout: the error must come from the liveness check.
    let slow = node
        .remote::<Probe, Probe>("slow", RemoteOptions::default().call_timeout(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(slow.call(Probe::new(1, "warm")).await.unwrap().text, "a:warm");
    let calls: Vec<_> = (0..30u64)
        .map(|i| {
            let slow = slow.clone();
            tokio::spawn(async move { slow.call(Probe::new(50 + i, "x")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    peer.kill();
    let killed = Instant::now();
    let mut unavailable = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => {}
            Err(NatsError::RemoteUnavailable { kernel, .. }) => {
                assert_eq!(kernel, "slow");
                unavailable += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    let bound = killed.elapsed();
    eprintln!("killed peer: {unavailable} calls failed after {bound:?}");
    assert!(unavailable > 0, "some calls were in flight");
    // Liveness timeout 1 s, checked every 250 ms: well within 3 s.
    assert!(bound < Duration::from_secs(3), "callers waited {bound:?}");
    assert_eq!(slow.state(), KernelState::Terminated);
    // New calls fail at once.
    let t = Instant::now();
    assert!(matches!(
        slow.call(Probe::new(1, "x")).await,
        Err(NatsError::RemoteUnavailable { .. } | NatsError::NoResponders { .. })
    ));
    assert!(t.elapsed() < Duration::from_millis(500));
    let e = slow.send(Probe::new(2, "kept")).await.unwrap_err();
    assert_eq!(e.into_message().text, "kept", "a refused send hands the message back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_jetstream_replica_leaves_its_work_to_the_survivor() {
    let Some(server) = NatsServer::start() else { return };
    let url = server.url();
    let args = [
        "--kernel",
        "work=sink",
        "--jetstream",
        "--queue-group",
        "g",
        "--ack-wait-ms",
        "1000",
    ];
    let mut a = Peer::spawn(&url, "a", &args);
    let b = Peer::spawn(&url, "b", &args);
    let (_rt, node) = local_node(&url, "test").await;
    let work = node
        .remote::<Probe, Probe>("work", RemoteOptions::default())
        .await
        .unwrap();
    let total = 2000u64;
    for i in 1..=total {
        work.send(Probe::new(i, "job")).await.unwrap();
        if i == total / 4 {
            a.kill();
        }
    }
    // Everything is processed by someone and acknowledged: the work queue
    // stream ends up empty (unacknowledged messages of the dead replica are
    // redelivered to the survivor after ack_wait).
    let stream_name = work.subjects().input_stream();
    let js = async_nats::jetstream::new(node.client().clone());
    eventually("the input stream is drained", Duration::from_secs(30), || {
        let js = js.clone();
        let name = stream_name.clone();
        async move {
            let mut s = js.get_stream(&name).await.ok()?;
            let info = s.info().await.ok()?;
            (info.state.messages == 0).then_some(())
        }
    })
    .await;
    let fb = b.finish();
    let b_processed = fb["summary"]["total_processed"].as_u64().unwrap();
    eprintln!("killed replica: the survivor processed {b_processed} of {total}");
    assert!(b_processed > total / 2, "the survivor took over: {b_processed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_handler_failure_reaches_the_caller() {
    let Some(server) = NatsServer::start() else { return };
    let _peer = Peer::spawn(&server.url(), "a", &["--kernel", "f=fail"]);
    let (_rt, node) = local_node(&server.url(), "test").await;
    let f = node
        .remote::<Probe, Probe>("f", RemoteOptions::default())
        .await
        .unwrap();
    assert_eq!(f.call(Probe::new(1, "ok")).await.unwrap().text, "a:ok");
    assert_eq!(f.state(), KernelState::Active);

    // The call that makes the handler fail gets the kernel's failure.
    match f.call(Probe::new(2, "boom").failing()).await {
        Err(NatsError::Kernel(Error::KernelFailed { kernel, error })) => {
            assert_eq!(kernel, "f");
            assert!(error.to_string().contains("asked to fail on probe 2"), "{error}");
            let remote = error
                .downcast_ref::<dotcompute_nats::RemoteKernelError>()
                .expect("a remote error");
            assert_eq!(remote.node, "a");
        }
        other => panic!("expected the remote failure, got {other:?}"),
    }
    // Its state and error reach this side, as they would locally.
    eventually("the handle sees Failed", Duration::from_secs(5), || {
        let s = f.state();
        async move { (s == KernelState::Failed).then_some(()) }
    })
    .await;
    let replica = &f.replicas()[0];
    assert!(replica.failure.as_deref().unwrap_or_default().contains("asked to fail"));
    match f.call(Probe::new(3, "after")).await {
        Err(e) => assert!(e.kernel_failure().is_some_and(|(k, _)| k == "f"), "{e}"),
        Ok(r) => panic!("a failed kernel answered {r:?}"),
    }
    let refused = f.send(Probe::new(4, "back")).await.unwrap_err();
    assert!(refused.error().kernel_failure().is_some());
    assert_eq!(refused.into_message().text, "back");
    assert!(f
        .receive_timeout(Duration::from_secs(2))
        .await
        .unwrap_err()
        .kernel_failure()
        .is_some());
}
