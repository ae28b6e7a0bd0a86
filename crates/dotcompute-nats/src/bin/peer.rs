//! `dotcompute-nats-peer`: a runtime in its own process that serves the
//! [`dotcompute_nats::peer`] kernels over NATS, for the multi-process
//! tests and the transport benchmark.
//!
//! ```text
//! dotcompute-nats-peer serve --url nats://127.0.0.1:4222 --name a --kernel echo=echo [--jetstream] ...
//! ```
//!
//! It prints `READY {json}` on stdout once every kernel is exported (and
//! every link is up), serves until its standard input closes or it gets
//! SIGTERM/SIGINT, then closes the node and prints `FINAL {json}` (the
//! node's transport telemetry and the runtime's summary).
//!
//! `dotcompute-nats-peer ipc-echo` / `ipc-sink` are the child side of the
//! process tier (the benchmark's comparison): the echo and sink kernels over
//! shared-memory rings.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dotcompute::{Backpressure, KernelConfig, RingKernelRuntime};
use dotcompute_nats::peer::{self, Probe, Role};
use dotcompute_nats::{Auth, Delivery, ExportOptions, JetStreamOptions, NatsNode, NatsOptions, RemoteOptions, Storage};
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
#[command(
    name = "dotcompute-nats-peer",
    about = "A dotcompute runtime serving test kernels over NATS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve kernels until stdin closes or a termination signal.
    Serve(Box<Serve>),
    /// The child side of the process tier: echo over shared-memory rings.
    IpcEcho,
    /// The child side of the process tier: a sink over shared-memory rings.
    IpcSink,
}

#[derive(Debug, Parser)]
struct Serve {
    /// Server URL.
    #[arg(long)]
    url: String,
    /// Node name.
    #[arg(long)]
    name: String,
    /// Namespace.
    #[arg(long, default_value = "dotcompute")]
    namespace: String,
    /// Kernels to serve, as ID=ROLE (echo, stage, sink, fail, slow); repeatable.
    #[arg(long = "kernel", required = true)]
    kernels: Vec<String>,
    /// Export as a replica in this queue group.
    #[arg(long)]
    queue_group: Option<String>,
    /// JetStream delivery (default: core NATS).
    #[arg(long)]
    jetstream: bool,
    /// JetStream: stream capacity.
    #[arg(long)]
    capacity: Option<usize>,
    /// JetStream: block, reject or drop-oldest.
    #[arg(long)]
    backpressure: Option<String>,
    /// JetStream: redelivery delay of unacknowledged messages, ms.
    #[arg(long, default_value_t = 30_000)]
    ack_wait_ms: u64,
    /// JetStream: keep the streams in memory.
    #[arg(long)]
    memory: bool,
    /// The kernels' input queue capacity.
    #[arg(long, default_value_t = 4096)]
    input_queue: usize,
    /// Heartbeat interval, ms.
    #[arg(long, default_value_t = 200)]
    heartbeat_ms: u64,
    /// Liveness timeout, ms.
    #[arg(long, default_value_t = 1000)]
    liveness_ms: u64,
    /// Wait at least this long before each reconnection attempt, ms.
    #[arg(long, default_value_t = 0)]
    min_reconnect_ms: u64,
    /// Link a local kernel's output to a remote kernel, as LOCAL=REMOTE; repeatable.
    #[arg(long = "link-to")]
    link_to: Vec<String>,
    /// User (with --password).
    #[arg(long)]
    user: Option<String>,
    /// Password.
    #[arg(long)]
    password: Option<String>,
    /// Token.
    #[arg(long)]
    token: Option<String>,
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(serve(*args))),
        Command::IpcEcho => ipc_serve(false),
        Command::IpcSink => ipc_serve(true),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Serve) -> Result<(), String> {
    let rt = RingKernelRuntime::new();
    let mut options = NatsOptions::new(&args.url, &args.name)
        .namespace(&args.namespace)
        .heartbeat(
            Duration::from_millis(args.heartbeat_ms),
            Duration::from_millis(args.liveness_ms),
        )
        .max_reconnect_delay(Duration::from_millis(250).max(Duration::from_millis(args.min_reconnect_ms)))
        .min_reconnect_delay(Duration::from_millis(args.min_reconnect_ms));
    if let (Some(user), Some(password)) = (&args.user, &args.password) {
        options = options.auth(Auth::UserPassword {
            user: user.clone(),
            password: password.clone(),
        });
    } else if let Some(token) = &args.token {
        options = options.auth(Auth::Token(token.clone()));
    }
    let backpressure = match args.backpressure.as_deref() {
        None | Some("block") => Backpressure::Block,
        Some("reject") => Backpressure::Reject,
        Some("drop-oldest") => Backpressure::DropOldest,
        Some(other) => return Err(format!("unknown backpressure {other:?}")),
    };
    let delivery = if args.jetstream {
        let mut js = JetStreamOptions::default()
            .backpressure(backpressure)
            .ack_wait(Duration::from_millis(args.ack_wait_ms))
            .storage(if args.memory { Storage::Memory } else { Storage::File });
        if let Some(c) = args.capacity {
            js = js.capacity(c);
        }
        Delivery::JetStream(js)
    } else {
        Delivery::Core
    };
    let mut export_options = ExportOptions::default().delivery(delivery);
    if let Some(g) = &args.queue_group {
        export_options = export_options.queue_group(g);
    }
    let config = KernelConfig {
        input_queue_size: args.input_queue,
        ..KernelConfig::default()
    };
    let mut ids = Vec::new();
    for k in &args.kernels {
        let (id, role) = k
            .split_once('=')
            .ok_or_else(|| format!("--kernel takes ID=ROLE, not {k:?}"))?;
        let role: Role = role.parse()?;
        rt.launch_spec(peer::spec(id, role, &args.name, config.clone()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        rt.activate(id).map_err(|e| e.to_string())?;
        ids.push(id.to_string());
    }
    let node = NatsNode::connect(&rt, options).await.map_err(|e| e.to_string())?;
    for id in &ids {
        node.export::<Probe, Probe>(id, export_options.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    for l in &args.link_to {
        let (local, remote) = l
            .split_once('=')
            .ok_or_else(|| format!("--link-to takes LOCAL=REMOTE, not {l:?}"))?;
        let handle = node
            .remote::<Probe, Probe>(
                remote,
                RemoteOptions::default().wait_for_export(Duration::from_secs(20)),
            )
            .await
            .map_err(|e| e.to_string())?;
        node.link_to_remote(local, &handle).await.map_err(|e| e.to_string())?;
    }
    println!(
        "READY {}",
        serde_json::json!({ "node": args.name, "kernels": ids, "pid": std::process::id() })
    );

    // Serve until stdin closes or a termination signal.
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let terminated = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stdin_closed => {}
        () = terminated => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    node.close().await;
    let final_report = serde_json::json!({
        "telemetry": node.telemetry(),
        "summary": rt.summary(),
    });
    println!("FINAL {final_report}");
    rt.shutdown().await;
    Ok(())
}

/// Echo (or, with `sink`, count and answer only `report`) over the
/// shared-memory rings named in the environment.
fn ipc_serve(sink: bool) -> Result<(), String> {
    let mut ctx = dotcompute::ipc::IpcContext::<Probe, Probe>::from_env().map_err(|e| e.to_string())?;
    let mut report = peer::SinkReport::default();
    let mut seen = std::collections::HashSet::new();
    loop {
        let m = match ctx.receive() {
            Ok(m) => m,
            Err(dotcompute::ipc::IpcError::Terminated | dotcompute::ipc::IpcError::PeerClosed { .. }) => {
                ctx.close();
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        let answer = if !sink {
            let mut a = Probe::new(m.seq, m.text.clone());
            a.payload.clone_from(&m.payload);
            a
        } else if m.text == "report" {
            Probe::new(m.seq, serde_json::to_string(&report).map_err(|e| e.to_string())?)
        } else {
            report.processed += 1;
            report.highest = report.highest.max(m.seq);
            if seen.insert(m.seq) {
                report.distinct += 1;
            } else {
                report.duplicates += 1;
            }
            continue;
        };
        let answer = dotcompute::Message::reply(&m, answer);
        match ctx.send(&answer) {
            Ok(()) => {}
            Err(dotcompute::ipc::IpcError::Terminated) => {
                ctx.close();
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
