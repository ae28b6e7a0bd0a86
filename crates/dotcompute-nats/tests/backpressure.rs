//! JetStream backpressure maps onto the stream's limits: discard-new is
//! `Reject` (the refused message comes back to its sender, counted), and
//! discard-old is `DropOldest` (the evicted messages are counted in the
//! kernel's `messages_dropped`, as a local queue's drops are).

mod common;

use std::time::Duration;

use common::{eventually, local_node, NatsServer, Peer};
use dotcompute::KernelState;
use dotcompute_nats::peer::{parse_report, Probe};
use dotcompute_nats::{NatsError, RemoteOptions};

const CAPACITY: u64 = 10;
const SENT: u64 = 20;

/// A sink with a one-slot input queue behind a stream of ten, deactivated
/// so that the stream fills.
async fn full_stream(
    backpressure: &str,
) -> Option<(
    NatsServer,
    Peer,
    dotcompute_nats::NatsNode,
    dotcompute_nats::RemoteHandle<Probe, Probe>,
)> {
    let server = NatsServer::start()?;
    let cap = CAPACITY.to_string();
    let peer = Peer::spawn(
        &server.url(),
        "a",
        &[
            "--kernel",
            "sink=sink",
            "--jetstream",
            "--input-queue",
            "1",
            "--capacity",
            &cap,
            "--backpressure",
            backpressure,
        ],
    );
    let (_rt, node) = local_node(&server.url(), "test").await;
    let sink = node
        .remote::<Probe, Probe>("sink", RemoteOptions::default().send_timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    let states = sink.deactivate().await.unwrap();
    assert_eq!(states[0].1, KernelState::Deactivated);
    Some((server, peer, node, sink))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_reject_stream_hands_messages_back() {
    let Some((_server, _peer, _node, sink)) = full_stream("reject").await else {
        return;
    };
    let mut accepted = 0;
    let mut refused = Vec::new();
    for i in 1..=SENT {
        match sink.send(Probe::new(i, format!("m{i}"))).await {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(matches!(e.error(), NatsError::Rejected { .. }), "{}", e.error());
                let m = e.into_message();
                assert_eq!(m.text, format!("m{}", m.seq), "the message comes back whole");
                refused.push(m.seq);
            }
        }
    }
    assert_eq!(accepted, CAPACITY, "the stream holds {CAPACITY}; refused {refused:?}");
    assert_eq!(sink.telemetry().rejected, SENT - CAPACITY);
    sink.reactivate().await.unwrap();
    let r = eventually("the accepted messages are processed", Duration::from_secs(20), || {
        let sink = sink.clone();
        async move {
            let r = parse_report(
                &sink
                    .call_timeout(Probe::new(0, "report"), Duration::from_secs(2))
                    .await
                    .ok()?,
            )
            .ok()?;
            (r.processed == CAPACITY).then_some(r)
        }
    })
    .await;
    assert_eq!(r.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_drop_oldest_stream_evicts_and_counts() {
    let Some((_server, _peer, _node, sink)) = full_stream("drop-oldest").await else {
        return;
    };
    for i in 1..=SENT {
        sink.send(Probe::new(i, "m")).await.unwrap();
    }
    sink.reactivate().await.unwrap();
    // The newest ten are in the stream; what the exporter had already taken
    // (at most its one queue slot and one pulled ahead) is processed too.
    let (processed, t) = eventually("the stream is drained", Duration::from_secs(20), || {
        let sink = sink.clone();
        async move {
            let r = parse_report(
                &sink
                    .call_timeout(Probe::new(0, "report"), Duration::from_secs(2))
                    .await
                    .ok()?,
            )
            .ok()?;
            if r.highest != SENT {
                return None;
            }
            let t = sink.remote_telemetry().await.ok()?.pop()?;
            (t.transport.dropped + r.processed == SENT).then_some((r.processed, t))
        }
    })
    .await;
    eprintln!("drop-oldest: {processed} processed, {} evicted", t.transport.dropped);
    assert!((CAPACITY..SENT).contains(&processed), "{processed}");
    assert_eq!(
        t.kernel.messages_dropped, t.transport.dropped,
        "counted like local drops"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_block_stream_makes_the_sender_wait() {
    let Some((_server, _peer, node, _)) = full_stream("block").await else {
        return;
    };
    let sink = node
        .remote::<Probe, Probe>(
            "sink",
            RemoteOptions::default().send_timeout(Duration::from_millis(400)),
        )
        .await
        .unwrap();
    for i in 1..=CAPACITY {
        sink.send(Probe::new(i, "m")).await.unwrap();
    }
    // Full: the send waits, then gives the message back with a timeout.
    let started = std::time::Instant::now();
    let e = sink.send(Probe::new(CAPACITY + 1, "late")).await.unwrap_err();
    assert!(matches!(e.error(), NatsError::Timeout { .. }), "{}", e.error());
    assert!(started.elapsed() >= Duration::from_millis(300));
    let late = e.into_message();
    // Room again: a waiting send goes through.
    let waiting = {
        let sink = sink.clone();
        tokio::spawn(async move {
            let sink = sink;
            let mut p = late;
            loop {
                match sink.send(p).await {
                    Ok(()) => return,
                    Err(e) => p = e.into_message(),
                }
            }
        })
    };
    sink.reactivate().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(sink.telemetry().publish_retries > 0);
    assert_eq!(sink.telemetry().rejected, 0);
}
