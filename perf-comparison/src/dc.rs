//! dotcompute's tiers as contestants: the async tier (a kernel task, the
//! host a tokio task using `KernelHandle::send` + `receive`, or `call`), and
//! the thread, spin and process tiers (the host a plain thread using the
//! blocking handle). Every run ends with a check that the kernel's
//! telemetry counted exactly the traffic the harness made.

use std::time::{Duration, Instant};

use dotcompute::ipc::{self, IpcContext, IpcError, SpawnCommand};
use dotcompute::queue::{Backpressure, MessageQueue};
use dotcompute::{BlockingContext, Error, ExecutionMode, KernelContext, KernelHandle, KernelSpec, Message, RingKernelRuntime};

use crate::harness::{err, AsyncPeer, Role, SyncPeer, Traffic, R};
use crate::msg::{DcPing, DcVec, Ping, FLUSH};

const KERNEL: &str = "echo";

/// Whether the kernel answers `m` in `role`.
pub(crate) fn answers(role: Role, m: &DcPing) -> bool {
    role == Role::Echo || m.seq & FLUSH != 0
}

/// A sink's answer says how many messages it took before the flush.
pub(crate) fn flush_answer(m: &DcPing, count: u64) -> DcPing {
    let mut r = m.answer();
    r.seq = count;
    r
}

async fn async_kernel(mut ctx: KernelContext<DcPing, DcPing>, role: Role) -> Result<(), Error> {
    let mut count = 0u64;
    match role {
        Role::Echo => loop {
            let m = ctx.receive().await?;
            ctx.send(m.answer()).await?;
        },
        Role::Sink => loop {
            let m = ctx.receive().await?;
            if answers(role, &m) {
                ctx.send(flush_answer(&m, count)).await?;
            } else {
                count += 1;
            }
        },
        Role::BatchSink => {
            let mut input = Vec::with_capacity(64);
            loop {
                input.clear();
                ctx.receive_batch(64, &mut input).await?;
                for m in &input {
                    if answers(role, m) {
                        ctx.send(flush_answer(m, count)).await?;
                    } else {
                        count += 1;
                    }
                }
            }
        }
    }
}

fn blocking_kernel(mut ctx: BlockingContext<DcPing, DcPing>, role: Role) -> Result<(), Error> {
    let mut count = 0u64;
    match role {
        Role::Echo => loop {
            let m = ctx.receive()?;
            ctx.send(m.answer())?;
        },
        Role::Sink => loop {
            let m = ctx.receive()?;
            if answers(role, &m) {
                ctx.send(flush_answer(&m, count))?;
            } else {
                count += 1;
            }
        },
        Role::BatchSink => {
            let mut input = Vec::with_capacity(64);
            loop {
                input.clear();
                ctx.receive_batch(64, &mut input)?;
                for m in &input {
                    if answers(role, m) {
                        ctx.send(flush_answer(m, count))?;
                    } else {
                        count += 1;
                    }
                }
            }
        }
    }
}

/// The child side of the process tier (`__dc-kernel ROLE`).
pub fn ipc_kernel(role: &str) -> R<()> {
    let role = match role {
        "echo" => Role::Echo,
        "sink" => Role::Sink,
        _ => Role::BatchSink,
    };
    let mut ctx = IpcContext::<DcPing, DcPing>::from_env().map_err(err)?;
    let mut count = 0u64;
    loop {
        let m = match ctx.receive() {
            Ok(m) => m,
            Err(IpcError::Terminated | IpcError::PeerClosed { .. }) => {
                ctx.close();
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        let reply = if answers(role, &m) {
            if role == Role::Echo {
                m.answer()
            } else {
                flush_answer(&m, count)
            }
        } else {
            count += 1;
            continue;
        };
        match ctx.send(&reply) {
            Ok(()) => {}
            Err(IpcError::Terminated) => {
                ctx.close();
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The child side of the bare `ProcessChannel` baseline (`__ipc-serve`).
pub fn ipc_serve() -> R<()> {
    ipc::serve(|m: DcPing| Ok::<_, std::convert::Infallible>(m.answer())).map_err(err)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Echo => "echo",
        Role::Sink => "sink",
        Role::BatchSink => "batch",
    }
}

/// The spec of the kernel for `tier` and `role`.
fn spec(mode: Option<ExecutionMode>, role: Role) -> R<KernelSpec> {
    let builder = KernelSpec::builder::<DcPing, DcPing>(KERNEL);
    match mode {
        None => builder.handler(move |ctx| async_kernel(ctx, role)).build().map_err(err),
        Some(ExecutionMode::Process) => {
            let exe = std::env::current_exe().map_err(err)?;
            let cmd = SpawnCommand::new(exe).args(["__dc-kernel", role_name(role)]);
            ipc::process_kernel::<DcPing, DcPing>(KERNEL, cmd).map_err(err)
        }
        Some(mode) => builder
            .mode(mode)
            .blocking_handler(move |ctx| blocking_kernel(ctx, role))
            .build()
            .map_err(err),
    }
}

/// Reads the library's precise clock once: its first read calibrates it,
/// a one-time cost kept out of the measured part (and of `callgrind.sh`'s
/// per-message counts).
fn warm_clock() {
    if let Ok(q) = MessageQueue::<DcPing>::with_capacity(1, Backpressure::Block) {
        let _ = q.try_send(DcPing::new(0));
    }
}

async fn launch(rt: &RingKernelRuntime, spec: KernelSpec) -> R<KernelHandle<DcPing, DcPing>> {
    warm_clock();
    rt.launch_spec(spec).map_err(err)?;
    rt.activate(KERNEL).map_err(err)?;
    rt.handle::<DcPing, DcPing>(KERNEL).map_err(err)
}

/// How many of `n` messages have their latencies measured under the
/// default sampling (the first, then one in every
/// `DEFAULT_LATENCY_SAMPLE_EVERY`; every counter is exact).
fn sampled(n: u64) -> u64 {
    n.div_ceil(u64::from(dotcompute::runtime::config::DEFAULT_LATENCY_SAMPLE_EVERY))
}

/// Whether the kernel's telemetry shows exactly `t` (waiting up to 1 s for
/// the handler to ask for its next message, which closes the last count).
async fn telemetry_exact(rt: &RingKernelRuntime, t: Traffic) -> R<bool> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let k = rt.telemetry(KERNEL).map_err(err)?;
        let exact = k.messages_received == t.requests
            && k.messages_processed == t.requests
            && k.messages_sent == t.replies
            && k.input_queue.enqueued == t.requests
            && k.input_queue.dequeued == t.requests
            && k.output_queue.enqueued == t.replies
            && k.output_queue.dequeued == t.replies
            && k.messages_dropped == 0
            && k.messages_rejected == 0
            && k.input_queue.is_consistent()
            && k.output_queue.is_consistent()
            && k.queue_wait.count == sampled(t.requests)
            && k.handler_time.count == sampled(t.requests);
        if exact || Instant::now() > deadline {
            if std::env::var_os("PERF_SLEEPS").is_some() {
                // How often each side of the two queues went to sleep in
                // this run (see `QueueStats::receive_sleeps`).
                eprintln!(
                    "sleeps: input queue receive {} send {}, output queue receive {} send {} ({} requests)",
                    k.input_queue.receive_sleeps,
                    k.input_queue.send_sleeps,
                    k.output_queue.receive_sleeps,
                    k.output_queue.send_sleeps,
                    t.requests
                );
            }
            if !exact {
                eprintln!("telemetry not exact: expected {t:?}, got received {} processed {} sent {} in {:?} out {:?} waits {} handled {}",
                    k.messages_received, k.messages_processed, k.messages_sent, k.input_queue, k.output_queue, k.queue_wait.count, k.handler_time.count);
            }
            return Ok(exact);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The async tier, host a tokio task. `CALL` picks `handle.call` for the
/// round trip instead of `send` + `receive`.
pub struct DcAsync<const CALL: bool> {
    rt: RingKernelRuntime,
    h: KernelHandle<DcPing, DcPing>,
}

impl<const CALL: bool> AsyncPeer for DcAsync<CALL> {
    type Req = DcPing;

    async fn start(role: Role) -> R<Self> {
        let rt = RingKernelRuntime::new();
        let h = launch(&rt, spec(None, role)?).await?;
        Ok(DcAsync { rt, h })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    async fn round_trip(&mut self, req: DcPing) -> R<u64> {
        if CALL {
            Ok(self.h.call(req).await.map_err(err)?.seq)
        } else {
            self.h.send(req).await.map_err(err)?;
            Ok(self.h.receive().await.map_err(err)?.seq)
        }
    }

    async fn tell(&mut self, seq: u64) -> R<()> {
        self.h.send(DcPing::new(seq)).await.map_err(err)
    }

    async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
        let batch = DcPing::batch(first, n);
        self.h.send_batch(batch).await.map_err(err)
    }

    async fn flush(&mut self, _expected: u64) -> R<u64> {
        self.h.send(DcPing::new(FLUSH)).await.map_err(err)?;
        Ok(self.h.receive().await.map_err(err)?.seq)
    }

    async fn pipelined(&mut self, n: u64, _window: usize) -> R<()> {
        // The kernel's queues are the window: a sender task and this one as
        // the receiver, backpressure from the bounded input queue.
        let tx = self.h.clone();
        let sender = tokio::spawn(async move {
            for i in 0..n {
                tx.send(DcPing::new(i)).await.map_err(err)?;
            }
            Ok::<(), String>(())
        });
        for i in 0..n {
            let r = self.h.receive().await.map_err(err)?;
            if r.seq != i {
                return Err(format!("reply {} out of order at {i}", r.seq));
            }
        }
        sender.await.map_err(err)?
    }

    async fn stop(self, t: Traffic) -> R<Option<bool>> {
        let exact = telemetry_exact(&self.rt, t).await;
        self.rt.shutdown().await;
        exact.map(Some)
    }
}

/// A tier whose host is a plain thread: thread, spin or process.
pub struct DcBlocking<const MODE: u8> {
    tokio: tokio::runtime::Runtime,
    rt: RingKernelRuntime,
    h: KernelHandle<DcPing, DcPing>,
}

pub const THREAD: u8 = 0;
pub const SPIN: u8 = 1;
pub const PROCESS: u8 = 2;

impl<const MODE: u8> SyncPeer for DcBlocking<MODE> {
    type Req = DcPing;

    fn start(role: Role) -> R<Self> {
        let mode = match MODE {
            THREAD => ExecutionMode::Thread,
            SPIN => ExecutionMode::Spin,
            _ => ExecutionMode::Process,
        };
        // Only to run the lifecycle calls; the host below is this thread.
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        let rt = RingKernelRuntime::new();
        let h = tokio.block_on(launch(&rt, spec(Some(mode), role)?))?;
        Ok(DcBlocking { tokio, rt, h })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    fn round_trip(&mut self, req: DcPing) -> R<u64> {
        self.h.send_blocking(req).map_err(err)?;
        Ok(self.h.receive_blocking().map_err(err)?.seq)
    }

    fn tell(&mut self, seq: u64) -> R<()> {
        self.h.send_blocking(DcPing::new(seq)).map_err(err)
    }

    fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
        let batch = DcPing::batch(first, n);
        self.h.send_batch_blocking(batch).map_err(err)
    }

    fn flush(&mut self, _expected: u64) -> R<u64> {
        self.h.send_blocking(DcPing::new(FLUSH)).map_err(err)?;
        Ok(self.h.receive_blocking().map_err(err)?.seq)
    }

    fn pipelined(&mut self, n: u64) -> R<()> {
        let tx = self.h.clone();
        let sender = std::thread::spawn(move || {
            for i in 0..n {
                tx.send_blocking(DcPing::new(i)).map_err(err)?;
            }
            Ok::<(), String>(())
        });
        for i in 0..n {
            let r = self.h.receive_blocking().map_err(err)?;
            if r.seq != i {
                return Err(format!("reply {} out of order at {i}", r.seq));
            }
        }
        sender.join().map_err(|_| "sender panicked".to_string())?
    }

    fn stop(self, t: Traffic) -> R<Option<bool>> {
        let exact = self.tokio.block_on(telemetry_exact(&self.rt, t));
        self.tokio.block_on(self.rt.shutdown());
        exact.map(Some)
    }
}

/// CPU time this process's threads and the threads of `children` (the
/// process tier's kernel process) have run, in nanoseconds (the sum of
/// `/proc/PID/task/*/schedstat`'s first field: precise, unlike the
/// tick-based utime of `/proc/PID/stat`).
fn process_cpu_ns(children: &[std::path::PathBuf]) -> R<u64> {
    let mut total = threads_cpu_ns(std::path::Path::new("/proc/self"))?;
    for child in children {
        total += threads_cpu_ns(child)?;
    }
    Ok(total)
}

/// The `/proc` directories of this process's children (listed once, before
/// a measurement, so that the scan is not counted in it).
fn child_processes() -> R<Vec<std::path::PathBuf>> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(err)? {
        let path = entry.map_err(err)?.path();
        let numeric = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !numeric {
            continue;
        }
        // `/proc/PID/stat`: "pid (comm) state ppid ..."; comm may hold spaces.
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else { continue };
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            found.push(path);
        }
    }
    Ok(found)
}

fn threads_cpu_ns(proc_dir: &std::path::Path) -> R<u64> {
    let mut total = 0u64;
    // A process may end between the listing and the read.
    let Ok(tasks) = std::fs::read_dir(proc_dir.join("task")) else { return Ok(0) };
    for task in tasks {
        let path = task.map_err(err)?.path().join("schedstat");
        // A thread may end between the listing and the read.
        if let Ok(text) = std::fs::read_to_string(&path) {
            total += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(total)
}

/// CPU a launched Thread, Spin or Process kernel and its idle host burn
/// while no message flows: the share of one CPU the whole process (and, for
/// the process tier, its kernel process) used over `idle`, measured after
/// one round trip and a settling pause (past every wait's polling phase).
/// What is counted is the kernel thread (or the pump and the kernel
/// process) waiting for input, the heartbeat threads and the runtime's own
/// threads, and the host: asleep, or with `host_receiving` a thread
/// blocked in `receive_blocking` for the whole time (a consumer waiting
/// for output).
pub fn idle_cpu(mode: ExecutionMode, idle: Duration, host_receiving: bool) -> R<f64> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(err)?;
    let rt = RingKernelRuntime::new();
    let h = tokio.block_on(launch(&rt, spec(Some(mode), Role::Echo)?))?;
    h.send_blocking(DcPing::new(1)).map_err(err)?;
    h.receive_blocking().map_err(err)?;
    let receiver = host_receiving.then(|| {
        let h = h.clone();
        std::thread::spawn(move || h.receive_blocking_timeout(idle + Duration::from_secs(1)).is_err())
    });
    std::thread::sleep(Duration::from_millis(200));
    let children = child_processes()?;
    let (t0, c0) = (Instant::now(), process_cpu_ns(&children)?);
    std::thread::sleep(idle);
    let (c1, t1) = (process_cpu_ns(&children)?, Instant::now());
    if let Some(receiver) = receiver {
        // Nothing was sent: the receive must end by its timeout.
        if !receiver.join().map_err(|_| "the waiting receiver panicked".to_string())? {
            return Err("the waiting receiver got a message nobody sent".into());
        }
    }
    tokio.block_on(rt.shutdown());
    Ok((c1.saturating_sub(c0)) as f64 / (t1 - t0).as_nanos() as f64)
}

/// The async tier moving the peers' kind of batch: one `DcVec` message per
/// batch (the batched workload only). Telemetry is checked against the
/// messages this host sent (batches and the flush), not the items.
pub struct DcAsyncVec {
    rt: RingKernelRuntime,
    h: KernelHandle<DcVec, DcPing>,
    sent: u64,
}

async fn vec_kernel(mut ctx: KernelContext<DcVec, DcPing>) -> Result<(), Error> {
    let mut count = 0u64;
    loop {
        let m = ctx.receive().await?;
        if m.flush {
            ctx.send(m.reply(DcPing::new(count))).await?;
        } else {
            count += m.items.len() as u64;
        }
    }
}

impl DcAsyncVec {
    async fn send(&mut self, items: Vec<Ping>, flush: bool) -> R<()> {
        let m = DcVec { items, flush, header: dotcompute::MessageHeader::new() };
        self.h.send(m).await.map_err(err)?;
        self.sent += 1;
        Ok(())
    }
}

impl AsyncPeer for DcAsyncVec {
    type Req = DcVec;

    async fn start(_role: Role) -> R<Self> {
        let rt = RingKernelRuntime::new();
        let spec = KernelSpec::builder::<DcVec, DcPing>(KERNEL).handler(vec_kernel).build().map_err(err)?;
        warm_clock();
        rt.launch_spec(spec).map_err(err)?;
        rt.activate(KERNEL).map_err(err)?;
        let h = rt.handle::<DcVec, DcPing>(KERNEL).map_err(err)?;
        Ok(DcAsyncVec { rt, h, sent: 0 })
    }

    fn request(seq: u64) -> DcVec {
        DcVec { items: vec![Ping::new(seq)], flush: false, header: dotcompute::MessageHeader::new() }
    }

    async fn round_trip(&mut self, _req: DcVec) -> R<u64> {
        Err("this contestant runs the batched workload only".into())
    }

    async fn tell(&mut self, seq: u64) -> R<()> {
        self.send(vec![Ping::new(seq)], false).await
    }

    async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
        self.send((first..first + n as u64).map(Ping::new).collect(), false).await
    }

    async fn flush(&mut self, _expected: u64) -> R<u64> {
        self.send(Vec::new(), true).await?;
        Ok(self.h.receive().await.map_err(err)?.seq)
    }

    async fn pipelined(&mut self, _n: u64, _window: usize) -> R<()> {
        Err("this contestant runs the batched workload only".into())
    }

    async fn stop(self, t: Traffic) -> R<Option<bool>> {
        let exact = telemetry_exact(&self.rt, Traffic { requests: self.sent, replies: t.replies }).await;
        self.rt.shutdown().await;
        exact.map(Some)
    }
}
