//! A pipeline across three runtimes in three processes, linked without host
//! code in between:
//!
//! ```text
//! test: host ─▶ source ─(link)─▶ a: stage1 ─(link)─▶ b: stage2 ─(link)─▶ test: collect ─▶ host
//! ```

mod common;

use std::time::Duration;

use common::{local_node, NatsServer, Peer};
use dotcompute::{Error, KernelConfig, KernelContext, MessageHeader};
use dotcompute_nats::peer::Probe;
use dotcompute_nats::{NatsError, RemoteOptions};

/// Appends `|tag` to each probe's text and sends it on.
fn tagging(
    tag: &'static str,
) -> impl Fn(KernelContext<Probe, Probe>) -> futures::future::BoxFuture<'static, Result<(), Error>> + Send + Sync {
    move |mut ctx| {
        Box::pin(async move {
            loop {
                let p = ctx.receive().await?;
                ctx.send(Probe {
                    text: format!("{}|{tag}", p.text),
                    header: MessageHeader::new(),
                    ..p
                })
                .await?;
            }
        })
    }
}

async fn pipeline(jetstream: bool) {
    let Some(server) = NatsServer::start() else { return };
    let url = server.url();
    let js: &[&str] = if jetstream { &["--jetstream"] } else { &[] };
    let b = Peer::spawn(&url, "b", &[&["--kernel", "stage2=stage"], js].concat());
    let a = Peer::spawn(
        &url,
        "a",
        &[&["--kernel", "stage1=stage", "--link-to", "stage1=stage2"], js].concat(),
    );

    let (rt, node) = local_node(&url, "test").await;
    rt.launch_with("source", KernelConfig::default(), tagging("src"))
        .unwrap();
    rt.launch_with("collect", KernelConfig::default(), tagging("sink"))
        .unwrap();
    rt.activate("source").unwrap();
    rt.activate("collect").unwrap();
    let stage1 = node
        .remote::<Probe, Probe>("stage1", RemoteOptions::default())
        .await
        .unwrap();
    let stage2 = node
        .remote::<Probe, Probe>("stage2", RemoteOptions::default())
        .await
        .unwrap();
    let out_link = node.link_to_remote("source", &stage1).await.unwrap();
    let in_link = node.link_from_remote(&stage2, "collect").await.unwrap();

    // Type-checked before any message moves.
    assert!(matches!(
        node.link_to_remote("nope", &stage1).await,
        Err(NatsError::Kernel(Error::KernelNotFound { .. }))
    ));

    let n = 50u64;
    for i in 0..n {
        rt.send("source", Probe::new(i, format!("m{i}"))).await.unwrap();
    }
    for i in 0..n {
        let p: Probe = rt.receive_timeout("collect", Duration::from_secs(20)).await.unwrap();
        assert_eq!((p.seq, p.text.as_str()), (i, format!("m{i}|src|a|b|sink").as_str()));
    }
    let out = out_link.telemetry();
    let inn = in_link.telemetry();
    assert_eq!((out.received, out.delivered, out.rejected), (n, n, 0));
    assert_eq!((inn.delivered, inn.lost, inn.decode_errors), (n, 0, 0));
    if jetstream {
        common::eventually("the link acknowledged everything", Duration::from_secs(10), || {
            let acked = in_link.telemetry().acked;
            async move { (acked == n).then_some(()) }
        })
        .await;
    }
    assert!(out_link.is_running() && in_link.is_running());
    out_link.stop().await;
    in_link.stop().await;
    let fa = a.finish();
    let fb = b.finish();
    // a's link counted every message it forwarded; b's stage every one it got.
    let a_link = fa["telemetry"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "link_out")
        .cloned()
        .unwrap_or_default();
    assert_eq!(a_link["delivered"], n, "{fa}");
    assert_eq!(fb["summary"]["total_processed"], n, "{fb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_across_three_processes_core() {
    pipeline(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_across_three_processes_jetstream() {
    pipeline(true).await;
}
