//! Round-trip latency of the process tier, measured (not asserted).
//!
//! ```text
//! cargo run --release -p dotcompute --example process_latency -- [ITERATIONS]
//! # host on core 0, kernel process on core 1 (or both on 0: same core)
//! KERNEL_CPU=1 taskset -c 0 target/release/examples/process_latency
//! ```
//!
//! The example re-executes itself as the kernel process and measures, one
//! request in flight at a time, after a warm-up:
//!
//! 1. `raw ring`: a 16-byte record to the child and back through the shared
//!    memory rings alone (public `shm` / `byte_ring` API, polling with a
//!    yield every 64 polls);
//! 2. `ProcessChannel::call`: a typed `Ping` → `Pong`, encoded and decoded
//!    with the wire codec on both sides (the process tier's host API);
//! 3. `runtime call (process)`: `RingKernelRuntime::call` on a
//!    `process_kernel`, which adds the kernel's input and output queues, the
//!    pump thread and the tokio wake-ups;
//! 4. `runtime call (thread)`: the same call on an in-process
//!    `ExecutionMode::Thread` echo kernel, as the baseline for 3 (same queues
//!    and wake-ups, no second process).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dotcompute::ipc::byte_ring::{self, RingConsumer, RingProducer};
use dotcompute::ipc::shm::{Region, RegionConfig, Role};
use dotcompute::ipc::{self, IpcConfig, ProcessChannel, SpawnCommand};
use dotcompute::{BlockingContext, KernelSpec, Message, MessageHeader, RingKernelRuntime};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

const MODE_ENV: &str = "DOTCOMPUTE_IPC_EXAMPLE_MODE";
const CPU_ENV: &str = "KERNEL_CPU";

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Ping {
    seq: u64,
    header: MessageHeader,
}

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Pong {
    seq: u64,
    header: MessageHeader,
}

fn main() {
    match std::env::var(MODE_ENV).as_deref() {
        Ok("typed") => {
            ipc::serve(|p: Ping| {
                Ok::<_, std::convert::Infallible>(Pong {
                    seq: p.seq,
                    header: MessageHeader::reply_to(&p.header),
                })
            })
            .expect("serve");
        }
        Ok("raw") => raw_kernel(),
        _ => host(),
    }
}

fn raw_kernel() {
    let path = std::env::var(ipc::ENV_VAR).expect("started by the host");
    let region = Arc::new(Region::open(path, Role::Kernel, Duration::from_secs(10)).expect("open"));
    let (mut tx, mut rx) = byte_ring::split(&region).expect("split");
    let parent = std::os::unix::process::parent_id();
    let mut buf = Vec::new();
    loop {
        let mut spins = 0u64;
        while !rx.try_pop(&mut buf).expect("pop") {
            spins += 1;
            if spins.is_multiple_of(1_000_000) && std::os::unix::process::parent_id() != parent {
                return; // the host is gone
            }
            poll_pause(spins);
        }
        if buf.is_empty() {
            return; // the host's "stop"
        }
        let mut spins = 0u64;
        while !tx.try_push(&buf).expect("push") {
            spins += 1;
            poll_pause(spins);
        }
    }
}

/// Between polls: a spin hint, and every 64 polls a yield, so that a host
/// and a kernel sharing one core (common on 2 cores) let each other run.
fn poll_pause(polls: u64) {
    if polls.is_multiple_of(64) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

fn spin_pop(rx: &mut RingConsumer, buf: &mut Vec<u8>) {
    let mut polls = 0;
    while !rx.try_pop(buf).expect("pop") {
        polls += 1;
        poll_pause(polls);
    }
}

fn spin_push(tx: &mut RingProducer, bytes: &[u8]) {
    let mut polls = 0;
    while !tx.try_push(bytes).expect("push") {
        polls += 1;
        poll_pause(polls);
    }
}

struct Stats(Histogram<u64>);

impl Stats {
    fn new() -> Self {
        Stats(Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("histogram"))
    }

    fn record(&mut self, d: Duration) {
        self.0.saturating_record(d.as_nanos().max(1) as u64);
    }

    fn print(&self, name: &str) {
        let h = &self.0;
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "{name:<26} n={:<8} p50={:>8.2} µs  p90={:>8.2} µs  p99={:>8.2} µs  p99.9={:>9.2} µs  max={:>9.2} µs  mean={:>8.2} µs",
            h.len(),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.9)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max()),
            h.mean() / 1000.0,
        );
    }
}

/// The kernel process: this program, under `taskset -c $KERNEL_CPU` when
/// that variable is set (to place host and kernel on chosen cores).
fn me(mode: &str) -> SpawnCommand {
    let exe = std::env::current_exe().expect("current exe");
    let cmd = match std::env::var(CPU_ENV) {
        Ok(cpu) => SpawnCommand::new("taskset").args([std::ffi::OsStr::new("-c"), cpu.as_ref(), exe.as_ref()]),
        Err(_) => SpawnCommand::new(exe),
    };
    cmd.env(MODE_ENV, mode)
}

fn host() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("ITERATIONS must be a number"));
    let warmup = (iterations / 10).max(1_000);
    println!(
        "process tier round trips, one in flight, {iterations} measured after {warmup} warm-up ({} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Raw ring.
    {
        let dir = ipc::default_dir();
        let path = dir.join(format!("dotcompute-latency-raw-{}", std::process::id()));
        let region = Arc::new(Region::create(&path, Role::Host, &RegionConfig::default()).expect("region"));
        let (mut tx, mut rx) = byte_ring::split(&region).expect("split");
        let exe = std::env::current_exe().expect("exe");
        let mut child = match std::env::var(CPU_ENV) {
            Ok(cpu) => {
                let mut c = std::process::Command::new("taskset");
                c.arg("-c").arg(cpu).arg(exe);
                c
            }
            Err(_) => std::process::Command::new(exe),
        }
        .env(MODE_ENV, "raw")
        .env(ipc::ENV_VAR, &path)
        .spawn()
        .expect("spawn");
        let mut stats = Stats::new();
        let mut buf = Vec::new();
        for i in 0..warmup + iterations {
            let msg = [i.to_le_bytes(), (!i).to_le_bytes()].concat();
            let t = Instant::now();
            spin_push(&mut tx, &msg);
            spin_pop(&mut rx, &mut buf);
            let d = t.elapsed();
            assert_eq!(buf, msg);
            if i >= warmup {
                stats.record(d);
            }
        }
        spin_push(&mut tx, &[]);
        child.wait().expect("raw kernel exit");
        stats.print("raw ring (16 B)");
    }

    // 2. ProcessChannel::call.
    {
        let mut chan = ProcessChannel::<Ping, Pong>::spawn(me("typed"), &IpcConfig::default()).expect("spawn");
        let mut stats = Stats::new();
        for i in 0..warmup + iterations {
            let ping = Ping {
                seq: i,
                header: MessageHeader::new(),
            };
            let t = Instant::now();
            let pong = chan.call(&ping).expect("call");
            let d = t.elapsed();
            assert_eq!(pong.seq, i);
            if i >= warmup {
                stats.record(d);
            }
        }
        let (exit, _) = chan.terminate(false);
        assert!(exit.clean, "{exit:?}");
        stats.print("ProcessChannel::call");
    }

    // 3 and 4. Through the runtime.
    let n = iterations.min(50_000);
    let w = warmup.min(5_000);
    let process = ipc::process_kernel::<Ping, Pong>("latency", me("typed")).expect("spec");
    runtime_calls(process, n, w).print("runtime call (process)");
    let thread = KernelSpec::builder::<Ping, Pong>("latency")
        .blocking_handler(
            |mut ctx: BlockingContext<Ping, Pong>| -> Result<(), dotcompute::Error> {
                loop {
                    let p = ctx.receive()?;
                    ctx.send(Pong {
                        seq: p.seq,
                        header: MessageHeader::reply_to(&p.header),
                    })?;
                }
            },
        )
        .build()
        .expect("spec");
    runtime_calls(thread, n, w).print("runtime call (thread)");
}

fn runtime_calls(spec: KernelSpec, n: u64, warmup: u64) -> Stats {
    let rt_tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    rt_tokio.block_on(async {
        let rt = RingKernelRuntime::new();
        rt.launch_spec(spec).expect("launch");
        rt.activate("latency").expect("activate");
        let mut stats = Stats::new();
        for i in 0..warmup + n {
            let ping = Ping {
                seq: i,
                header: MessageHeader::new(),
            };
            let t = Instant::now();
            let pong: Pong = rt.call("latency", ping).await.expect("call");
            let d = t.elapsed();
            assert_eq!(pong.seq, i);
            if i >= warmup {
                stats.record(d);
            }
        }
        rt.terminate("latency").await.expect("terminate");
        rt.shutdown().await;
        stats
    })
}
