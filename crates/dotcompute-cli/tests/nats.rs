//! `dotcompute node` and `dotcompute demo --nats` against a real
//! nats-server (Debian's package, provisioned by scripts/provision-nats.sh):
//! the distributed demo prints the same anomalies as the local one, and a
//! node serves the workload kernels to another runtime.
#![cfg(feature = "nats")]

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use dotcompute::RingKernelRuntime;
use dotcompute_nats::server::{LocalServer, ServerError};
use dotcompute_nats::workloads::{PagerankAnswer, PagerankCommand, PagerankQuery, PagerankResult};
use dotcompute_nats::{NatsNode, NatsOptions, RemoteOptions};
use dotcompute_workloads::anomaly::actor::{AnomalyBatch, AnomalyBatchResult};

fn server() -> Option<LocalServer> {
    match LocalServer::start(&[]) {
        Ok(s) => Some(s),
        Err(e @ ServerError::NotInstalled) => {
            let required = std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("DOTCOMPUTE_REQUIRE_NATS").is_ok_and(|v| v == "1");
            assert!(!required, "{e}; CI requires it");
            eprintln!("SKIP: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn dotcompute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args(args)
        .output()
        .expect("the dotcompute binary runs")
}

/// The anomalies table and the found/false-alarm line of a demo's output.
fn anomalies(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let start = text.find("anomalies (").expect("an anomalies section");
    let end = text[start..].find("false alarms").expect("a summary line") + start;
    text[start..end].to_string()
}

/// A `dotcompute node` process, stopped (by closing its stdin) when dropped.
struct Node(Child);

impl Node {
    fn start(url: &str, name: &str) -> Node {
        Node(
            Command::new(env!("CARGO_BIN_EXE_dotcompute"))
                .args(["node", "--nats", url, "--name", name, "--until-stdin-closes"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("the node starts"),
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        for _ in 0..150 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_distributed_demo_prints_the_same_anomalies_as_the_local_one() {
    let Some(server) = server() else { return };
    let local = dotcompute(&["demo", "--points", "20000", "--seed", "7"]);
    // One command: the demo starts the node running `detect` itself.
    let distributed = dotcompute(&["demo", "--points", "20000", "--seed", "7", "--nats", &server.url()]);
    let text = String::from_utf8_lossy(&distributed.stdout).into_owned();
    assert!(text.contains("link over NATS"), "{text}");
    assert!(text.contains("transport telemetry"), "{text}");
    assert!(
        text.contains("2000 wait in detect's input queue (state Deactivated"),
        "{text}"
    );
    assert_eq!(anomalies(&local), anomalies(&distributed));
    // With a node started on its own (two terminals in the README).
    let _node = Node::start(&server.url(), "edge-1");
    let on_named = dotcompute(&[
        "demo",
        "--points",
        "20000",
        "--seed",
        "7",
        "--nats",
        &server.url(),
        "--node",
        "edge-1",
    ]);
    assert_eq!(anomalies(&local), anomalies(&on_named));
}

#[test]
fn the_demo_names_an_absent_node() {
    let Some(server) = server() else { return };
    let o = Command::new(env!("CARGO_BIN_EXE_dotcompute"))
        .args(["demo", "--points", "1000", "--nats", &server.url(), "--node", "nobody"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("node 'nobody'") && err.contains("no runtime exports kernel 'detect'"),
        "{err}"
    );
}

#[test]
fn a_node_serves_the_workload_kernels() {
    let Some(server) = server() else { return };
    let _node = Node::start(&server.url(), "n1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runtime = RingKernelRuntime::new();
        let options = NatsOptions::new(server.url(), "client").namespace("dotcompute.n1");
        let node = NatsNode::connect(&runtime, options).await.unwrap();
        let wait = RemoteOptions::default().wait_for_export(Duration::from_secs(30));

        let pagerank = node
            .remote::<PagerankQuery, PagerankAnswer>("pagerank", wait.clone())
            .await
            .unwrap();
        let set = pagerank
            .call(PagerankQuery::new(PagerankCommand::SetEdges {
                nodes: 4,
                src: vec![0, 1, 2, 3],
                dst: vec![1, 2, 0, 0],
            }))
            .await
            .unwrap();
        assert_eq!(set.result, PagerankResult::Graph { nodes: 4, edges: 4 });
        match pagerank
            .call(PagerankQuery::new(PagerankCommand::TopK { k: 1 }))
            .await
            .unwrap()
            .result
        {
            PagerankResult::TopK(top) => assert_eq!(top[0].0, 0, "node 0 ranks highest: {top:?}"),
            other => panic!("{other:?}"),
        }

        let anomaly = node
            .remote::<AnomalyBatch, AnomalyBatchResult>("anomaly", wait)
            .await
            .unwrap();
        let mut values = vec![0.0; 200];
        values[150] = 50.0;
        let r = anomaly.call(AnomalyBatch::new(0, 0, values)).await.unwrap();
        assert!(r.error.is_none());
        assert_eq!(r.anomalies.iter().map(|a| a.index).collect::<Vec<_>>(), vec![150]);
        assert_eq!(r.state.seen, 200);
        node.close().await;
    });
}

#[test]
fn credentials_reach_the_node_the_demo_starts_without_the_command_line() {
    let server = match LocalServer::start(&["--user", "dc", "--pass", "s3cret"]) {
        Ok(s) => s,
        Err(e @ ServerError::NotInstalled) => {
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let run = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_dotcompute"))
            .args(["demo", "--points", "2000", "--nats", &server.url(), "--user", "dc"])
            .env("DOTCOMPUTE_NATS_PASSWORD", password)
            .output()
            .unwrap()
    };
    let ok = run("s3cret");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let refused = run("wrong");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("refused the credentials (user/password)"), "{err}");
    assert!(!err.contains("wrong"), "the password is not printed: {err}");
}
