//! Round trip and throughput of an echo / sink kernel reached four ways,
//! measured side by side in one run:
//!
//! - **in-process**: a kernel in this runtime (async tier), through a
//!   `KernelHandle`;
//! - **process tier**: a kernel in a child process over shared-memory rings
//!   (`dotcompute::ipc::process_kernel`, the `dotcompute-nats-peer ipc-*` child);
//! - **NATS core**: a kernel in another process (`dotcompute-nats-peer
//!   serve`) through a loopback nats-server, at most once;
//! - **NATS JetStream**: the same with JetStream delivery (file storage),
//!   at least once, acknowledged after processing.
//!
//! Cases, each repeated in rounds that rotate over the four ways (so that
//! machine noise spreads over all of them), median of the rounds reported:
//! - `rtt`: one call at a time (send, wait for the correlated reply), p50/p99;
//! - `calls/s`: 256 calls in flight;
//! - `one-way msg/s`: messages sent to a sink kernel (256 sends in flight;
//!   a JetStream send completes when the server stored the message), until
//!   the sink has processed them all.
//!
//! Run: `cargo bench -p dotcompute-nats --bench transport` (needs
//! nats-server: `bash scripts/provision-nats.sh`). Options after `--`:
//! `--rounds N` (default 3), `--calls N` (default 2000), `--messages N`
//! (default 20000), `--json FILE`.

use std::future::Future;
use std::time::{Duration, Instant};

use dotcompute::{KernelConfig, KernelHandle, RingKernelRuntime};
use dotcompute_nats::peer::{self, parse_report, Probe};
use dotcompute_nats::server::LocalServer;
use dotcompute_nats::{NatsNode, NatsOptions, RemoteHandle, RemoteOptions};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;

const PAYLOAD: usize = 64;
const IN_FLIGHT: usize = 256;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One way of reaching the kernels.
#[derive(Clone)]
enum Way {
    Local(KernelHandle<Probe, Probe>, KernelHandle<Probe, Probe>),
    Process(KernelHandle<Probe, Probe>, KernelHandle<Probe, Probe>),
    Nats(RemoteHandle<Probe, Probe>, RemoteHandle<Probe, Probe>),
}

impl Way {
    async fn call(&self, p: Probe) -> Result<Probe, BoxError> {
        Ok(match self {
            Way::Local(echo, _) | Way::Process(echo, _) => echo.call(p).await?,
            Way::Nats(echo, _) => echo.call(p).await?,
        })
    }

    async fn send_to_sink(&self, p: Probe) -> Result<(), BoxError> {
        match self {
            Way::Local(_, sink) | Way::Process(_, sink) => sink.send(p).await?,
            Way::Nats(_, sink) => sink.send(p).await.map_err(|e| e.to_string())?,
        }
        Ok(())
    }

    async fn sink_report(&self) -> Result<peer::SinkReport, BoxError> {
        let report = Probe::new(0, "report");
        let answer = match self {
            Way::Local(_, sink) | Way::Process(_, sink) => sink.call(report).await?,
            Way::Nats(_, sink) => sink.call(report).await?,
        };
        Ok(parse_report(&answer)?)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Figures {
    rtt_p50_us: f64,
    rtt_p99_us: f64,
    calls_per_sec: f64,
    one_way_per_sec: f64,
}

fn probe(seq: u64) -> Probe {
    Probe::new(seq, "b").padded(PAYLOAD)
}

async fn rtt(way: &Way, calls: u64) -> Result<(f64, f64), BoxError> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for i in 0..calls {
        let t = Instant::now();
        way.call(probe(i)).await?;
        h.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1))?;
    }
    Ok((
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
    ))
}

async fn calls_per_sec(way: &Way, calls: u64) -> Result<f64, BoxError> {
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut next = 0u64;
    let mut done = 0u64;
    while done < calls {
        while next < calls && pending.len() < IN_FLIGHT {
            let w = way.clone();
            let seq = next;
            pending.push(async move { w.call(probe(seq)).await });
            next += 1;
        }
        if let Some(r) = pending.next().await {
            r?;
            done += 1;
        }
    }
    Ok(calls as f64 / start.elapsed().as_secs_f64())
}

async fn one_way(way: &Way, messages: u64) -> Result<f64, BoxError> {
    let before = way.sink_report().await?.processed;
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut next = 0u64;
    while next < messages || !pending.is_empty() {
        while next < messages && pending.len() < IN_FLIGHT {
            let w = way.clone();
            next += 1;
            let seq = next;
            pending.push(async move { w.send_to_sink(probe(seq)).await });
        }
        if let Some(r) = pending.next().await {
            r?;
        }
    }
    loop {
        if way.sink_report().await?.processed >= before + messages {
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(messages as f64 / start.elapsed().as_secs_f64())
}

async fn measure(way: &Way, calls: u64, messages: u64) -> Result<Figures, BoxError> {
    // Warm up (connections, JIT-free but caches and allocators).
    for i in 0..100 {
        way.call(probe(i)).await?;
    }
    let (rtt_p50_us, rtt_p99_us) = rtt(way, calls).await?;
    Ok(Figures {
        rtt_p50_us,
        rtt_p99_us,
        calls_per_sec: calls_per_sec(way, calls * 5).await?,
        one_way_per_sec: one_way(way, messages).await?,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A peer process serving `echo` and `sink`.
struct PeerProcess(std::process::Child);

impl PeerProcess {
    fn spawn(url: &str, name: &str, extra: &[&str]) -> Result<PeerProcess, BoxError> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dotcompute-nats-peer"))
            .args([
                "serve",
                "--url",
                url,
                "--name",
                name,
                "--kernel",
                "echo=echo",
                "--kernel",
                "sink=sink",
            ])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("READY") => break,
                Some(Ok(_)) => {}
                _ => return Err("the peer exited before it was ready".into()),
            }
        }
        Ok(PeerProcess(child))
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Args {
    rounds: usize,
    calls: u64,
    messages: u64,
    json: Option<String>,
}

fn args() -> Result<Args, BoxError> {
    let mut a = Args {
        rounds: 3,
        calls: 2000,
        messages: 20_000,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => a.rounds = it.next().ok_or("--rounds N")?.parse()?,
            "--calls" => a.calls = it.next().ok_or("--calls N")?.parse()?,
            "--messages" => a.messages = it.next().ok_or("--messages N")?.parse()?,
            "--json" => a.json = Some(it.next().ok_or("--json FILE")?),
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

fn main() -> Result<(), BoxError> {
    let args = args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn with_ways<F, Fut>(f: F) -> Result<(), BoxError>
where
    F: FnOnce(Vec<(&'static str, Way)>) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let server = LocalServer::start(&[])?;
    let url = server.url();
    let runtime = RingKernelRuntime::new();
    // In-process.
    for (id, role) in [("echo", peer::Role::Echo), ("sink", peer::Role::Sink)] {
        runtime.launch_spec(peer::spec(id, role, "local", KernelConfig::default())?)?;
        runtime.activate(id)?;
    }
    let local = Way::Local(runtime.handle("echo")?, runtime.handle("sink")?);
    // Process tier.
    let exe = env!("CARGO_BIN_EXE_dotcompute-nats-peer");
    for (id, role) in [("p-echo", "ipc-echo"), ("p-sink", "ipc-sink")] {
        let command = dotcompute::ipc::SpawnCommand::new(exe).args([role]);
        runtime.launch_spec(dotcompute::ipc::process_kernel::<Probe, Probe>(id, command)?)?;
        runtime.activate(id)?;
    }
    let process = Way::Process(runtime.handle("p-echo")?, runtime.handle("p-sink")?);
    // NATS, core and JetStream (two peers, two namespaces).
    let _core = PeerProcess::spawn(&url, "core", &["--namespace", "core"])?;
    let _js = PeerProcess::spawn(&url, "js", &["--namespace", "js", "--jetstream"])?;
    let mut nats = Vec::new();
    for ns in ["core", "js"] {
        let node = NatsNode::connect(
            &runtime,
            NatsOptions::new(url.clone(), format!("bench-{ns}")).namespace(ns),
        )
        .await?;
        let wait = RemoteOptions::default().wait_for_export(Duration::from_secs(20));
        let echo = node.remote::<Probe, Probe>("echo", wait.clone()).await?;
        let sink = node.remote::<Probe, Probe>("sink", wait).await?;
        nats.push((node, Way::Nats(echo, sink)));
    }
    let ways = vec![
        ("in-process (async tier)", local),
        ("process tier (shared memory)", process),
        ("NATS core (loopback)", nats[0].1.clone()),
        ("NATS JetStream (loopback, file)", nats[1].1.clone()),
    ];
    let out = f(ways).await;
    for (node, _) in nats {
        node.close().await;
    }
    runtime.shutdown().await;
    out
}

async fn run(args: Args) -> Result<(), BoxError> {
    with_ways(|ways| async move {
        let mut samples: Vec<Vec<Figures>> = vec![Vec::new(); ways.len()];
        for round in 0..args.rounds {
            // Rotate the order each round.
            for k in 0..ways.len() {
                let i = (k + round) % ways.len();
                let f = measure(&ways[i].1, args.calls, args.messages).await?;
                eprintln!("round {} {:<32} {f:?}", round + 1, ways[i].0);
                samples[i].push(f);
            }
        }
        #[derive(Serialize)]
        struct Row {
            way: &'static str,
            median: Figures,
            rounds: Vec<Figures>,
        }
        let rows: Vec<Row> = ways
            .iter()
            .zip(samples)
            .map(|((name, _), s)| Row {
                way: name,
                median: Figures {
                    rtt_p50_us: median(s.iter().map(|f| f.rtt_p50_us).collect()),
                    rtt_p99_us: median(s.iter().map(|f| f.rtt_p99_us).collect()),
                    calls_per_sec: median(s.iter().map(|f| f.calls_per_sec).collect()),
                    one_way_per_sec: median(s.iter().map(|f| f.one_way_per_sec).collect()),
                },
                rounds: s,
            })
            .collect();
        println!(
            "| way | rtt p50 | rtt p99 | calls/s ({IN_FLIGHT} in flight) | one-way msg/s ({IN_FLIGHT} in flight) |\n|---|---:|---:|---:|---:|"
        );
        for r in &rows {
            let m = r.median;
            println!(
                "| {} | {:.1} µs | {:.1} µs | {:.0} | {:.0} |",
                r.way, m.rtt_p50_us, m.rtt_p99_us, m.calls_per_sec, m.one_way_per_sec
            );
        }
        println!(
            "({} rounds, median; {} sequential calls, {} pipelined calls, {} one-way messages of {PAYLOAD} payload bytes per round)",
            args.rounds,
            args.calls,
            args.calls * 5,
            args.messages
        );
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
            eprintln!("wrote {path}");
        }
        Ok(())
    })
    .await
}
