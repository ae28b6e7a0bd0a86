//! A real nats-server per test, and peer runtimes in their own processes.
//!
//! The server is the one `scripts/provision-nats.sh` installs (Debian's
//! `nats-server`; `DOTCOMPUTE_NATS_SERVER` names it), started on loopback,
//! on a free port, with JetStream in a temporary store, and killed when the
//! test ends. Without it a test skips, saying why — except in CI
//! (`CI=true`) or when `DOTCOMPUTE_REQUIRE_NATS=1`, where it fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dotcompute::RingKernelRuntime;
use dotcompute_nats::server::{LocalServer, ServerError};
use dotcompute_nats::{NatsNode, NatsOptions};

/// Whether a missing server fails the test instead of skipping it.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true") || std::env::var("DOTCOMPUTE_REQUIRE_NATS").is_ok_and(|v| v == "1")
}

/// A nats-server process owned by the test (killed when dropped).
pub struct NatsServer(LocalServer);

impl NatsServer {
    /// Starts a server with JetStream, or returns `None` (the test skips)
    /// when there is none outside CI.
    pub fn start() -> Option<NatsServer> {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Option<NatsServer> {
        match LocalServer::start(extra) {
            Ok(s) => Some(NatsServer(s)),
            Err(e @ ServerError::NotInstalled) => {
                if required() {
                    panic!("{e}; CI requires it");
                }
                eprintln!("SKIP: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Kills the server at once (SIGKILL): no goodbye to the clients.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Starts it again on the same port with the same JetStream store.
    pub fn restart(&mut self) {
        self.0.restart().expect("the server restarts");
    }
}

/// A runtime and a node for the test process, with fast heartbeats.
pub async fn local_node(url: &str, name: &str) -> (RingKernelRuntime, NatsNode) {
    let rt = RingKernelRuntime::new();
    let node = NatsNode::connect(&rt, fast(NatsOptions::new(url, name)))
        .await
        .expect("connect");
    (rt, node)
}

/// Heartbeats every 200 ms, a replica is gone after 1 s, reconnect within 250 ms.
pub fn fast(options: NatsOptions) -> NatsOptions {
    options
        .heartbeat(Duration::from_millis(200), Duration::from_millis(1000))
        .max_reconnect_delay(Duration::from_millis(250))
}

/// A `dotcompute-nats-peer serve` process.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub name: String,
}

impl Peer {
    /// Starts a peer named `name` on `url` with extra `serve` arguments, and
    /// waits until it is serving.
    pub fn spawn(url: &str, name: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dotcompute-nats-peer"))
            .args(["serve", "--url", url, "--name", name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the peer starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut peer = Peer {
            child,
            stdin,
            lines: rx,
            name: name.to_string(),
        };
        peer.wait_line("READY", Duration::from_secs(60));
        peer
    }

    fn wait_line(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) if line.starts_with(prefix) => return line[prefix.len()..].trim().to_string(),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!("peer {} exited ({status}) before printing {prefix}", self.name);
                    }
                    assert!(
                        Instant::now() < deadline,
                        "peer {} printed no {prefix} line in time",
                        self.name
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("peer {} closed its output before printing {prefix}", self.name)
                }
            }
        }
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the peer to stop (closes its stdin) and returns its FINAL report.
    pub fn finish(mut self) -> serde_json::Value {
        drop(self.stdin.take());
        let line = self.wait_line("FINAL", Duration::from_secs(30));
        let _ = self.child.wait();
        serde_json::from_str(&line).expect("FINAL is JSON")
    }

    /// Writes a line to the peer's stdin (keeps it open).
    pub fn poke(&mut self) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
