//! Two replicas of one kernel, in two processes, sharing its input: a core
//! NATS queue group, and a JetStream stream's shared consumer. Each gets a
//! share, together they get everything once, and the handle's view of the
//! replicas (from their heartbeats) shows each share.

mod common;

use std::time::Duration;

use common::{eventually, local_node, NatsServer, Peer};
use dotcompute_nats::peer::Probe;
use dotcompute_nats::RemoteOptions;

async fn two_replicas(jetstream: bool) {
    let Some(server) = NatsServer::start() else { return };
    let url = server.url();
    let mut args = vec!["--kernel", "work=sink", "--queue-group", "workers"];
    if jetstream {
        args.push("--jetstream");
    }
    let a = Peer::spawn(&url, "a", &args);
    let b = Peer::spawn(&url, "b", &args);
    let (_rt, node) = local_node(&url, "test").await;
    let work = node
        .remote::<Probe, Probe>("work", RemoteOptions::default())
        .await
        .unwrap();
    eventually("both replicas are heard from", Duration::from_secs(10), || {
        let n = work.replicas().iter().filter(|r| r.alive).count();
        async move { (n == 2).then_some(()) }
    })
    .await;

    let n = 600u64;
    for i in 1..=n {
        work.send(Probe::new(i, "job")).await.unwrap();
        if i.is_multiple_of(50) {
            // Let both replicas pull: a burst can otherwise all land on one.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Each replica's kernel telemetry, asked over NATS.
    let shares = eventually("every message is processed", Duration::from_secs(20), || {
        let work = work.clone();
        async move {
            let t = work.remote_telemetry().await.ok()?;
            let processed: Vec<(String, u64)> = t
                .iter()
                .map(|r| (r.replica.node.clone(), r.kernel.messages_processed))
                .collect();
            (processed.len() == 2 && processed.iter().map(|p| p.1).sum::<u64>() == n).then_some(processed)
        }
    })
    .await;
    assert!(
        shares.iter().all(|(_, p)| *p > 0),
        "each replica has a share: {shares:?}"
    );
    eprintln!("shares ({}): {shares:?}", if jetstream { "jetstream" } else { "core" });

    // The heartbeats say the same, and nothing was lost between them.
    eventually("the heartbeats show the shares", Duration::from_secs(5), || {
        let reps = work.replicas();
        async move {
            let total: u64 = reps.iter().filter(|r| r.alive).map(|r| r.processed).sum();
            (total == n).then_some(())
        }
    })
    .await;
    assert_eq!(work.replica_losses(), 0);
    for r in work.replicas() {
        assert_eq!(r.transport.duplicates, 0, "{r:?}");
        assert_eq!(r.transport.decode_errors, 0);
        if jetstream {
            assert_eq!(r.transport.acked, r.transport.delivered, "{r:?}");
        }
    }
    let fa = a.finish();
    let fb = b.finish();
    let processed = |f: &serde_json::Value| f["summary"]["total_processed"].as_u64().unwrap();
    assert_eq!(processed(&fa) + processed(&fb), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_queue_group_of_two_replicas_shares_the_stream() {
    two_replicas(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jetstream_replicas_share_one_stream() {
    two_replicas(true).await;
}
