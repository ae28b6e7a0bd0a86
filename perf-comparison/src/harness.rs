//! The workloads, written once against two small traits: [`AsyncPeer`] (an
//! actor driven from a tokio task) and [`SyncPeer`] (a kernel or channel
//! driven from a plain thread). Each contestant implements one of them;
//! the timing loops below are the same for all.

use std::future::Future;
use std::time::Instant;

use hdrhistogram::Histogram;

/// Result of the contestants' operations.
pub type R<T> = Result<T, String>;

/// Turns any displayable error into the harness's.
pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// One request in flight: send, wait for the reply; per-request latency.
    RoundTrip,
    /// N messages to a sink, then one request whose reply says how many
    /// arrived; msg/s = N / time to that reply.
    OneWay,
    /// N requests sent as fast as backpressure allows while the replies are
    /// taken; round trips per second.
    Pipelined,
    /// `OneWay` with batches of `batch` messages per send.
    Batched,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::RoundTrip,
        Workload::OneWay,
        Workload::Pipelined,
        Workload::Batched,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::RoundTrip => "round_trip",
            Workload::OneWay => "one_way",
            Workload::Pipelined => "pipelined_echo",
            Workload::Batched => "batched",
        }
    }
}

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Measured round trips per round.
    pub samples: u64,
    /// Unmeasured round trips first.
    pub warmup: u64,
    /// Messages per throughput run.
    pub messages: u64,
    /// Messages per batch.
    pub batch: usize,
    /// Requests in flight for ask-style pipelining.
    pub window: usize,
}

/// What the peer's kernel/actor does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Answer every request.
    Echo,
    /// Count single messages; answer only the flush.
    Sink,
    /// Take messages in batches; answer only the flush.
    BatchSink,
}

impl Role {
    pub fn of(w: Workload) -> Role {
        match w {
            Workload::RoundTrip | Workload::Pipelined => Role::Echo,
            Workload::OneWay => Role::Sink,
            Workload::Batched => Role::BatchSink,
        }
    }
}

/// How many messages went in and replies came out in a run, for the
/// telemetry check.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    pub requests: u64,
    pub replies: u64,
}

/// A measured figure.
#[derive(Debug, Clone)]
pub enum Figure {
    Latency(Histogram<u64>),
    Rate { messages: u64, secs: f64 },
}

/// One run's figure and, for dotcompute, whether its telemetry counted
/// every message exactly.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub figure: Figure,
    pub telemetry_exact: Option<bool>,
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Called once where the measured part of a run starts (after start-up and
/// warm-up): `callgrind.sh` zeroes valgrind's counters here
/// (`--zero-before`), so one-time costs (clock calibration, allocation of
/// queues) stay out of the per-message figure.
#[inline(never)]
pub fn measure_start() {
    std::hint::black_box(());
}

fn ns_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// An actor driven from a tokio task.
pub trait AsyncPeer: Sized + Send + 'static {
    type Req: Send;
    fn start(role: Role) -> impl Future<Output = R<Self>> + Send;
    fn request(seq: u64) -> Self::Req;
    /// Sends `req` and waits for its reply; returns the reply's sequence number.
    fn round_trip(&mut self, req: Self::Req) -> impl Future<Output = R<u64>> + Send;
    /// Sends one message the actor does not answer.
    fn tell(&mut self, seq: u64) -> impl Future<Output = R<()>> + Send;
    /// Sends `n` messages starting at `first` in one batch.
    fn tell_batch(&mut self, first: u64, n: usize) -> impl Future<Output = R<()>> + Send;
    /// Asks how many messages the actor has taken so far (`expected` is
    /// for mailboxes that do not keep FIFO order: xtra's is a priority
    /// heap, so its flush may overtake earlier messages and is repeated).
    fn flush(&mut self, expected: u64) -> impl Future<Output = R<u64>> + Send;
    /// `n` requests and their `n` replies, pipelined.
    fn pipelined(&mut self, n: u64, window: usize) -> impl Future<Output = R<()>> + Send;
    /// Stops; `Some(exact)` where the contestant keeps telemetry.
    fn stop(self, traffic: Traffic) -> impl Future<Output = R<Option<bool>>> + Send;
}

/// A kernel or channel driven from plain threads.
pub trait SyncPeer: Sized {
    type Req;
    fn start(role: Role) -> R<Self>;
    fn request(seq: u64) -> Self::Req;
    fn round_trip(&mut self, req: Self::Req) -> R<u64>;
    fn tell(&mut self, seq: u64) -> R<()>;
    fn tell_batch(&mut self, first: u64, n: usize) -> R<()>;
    fn flush(&mut self, expected: u64) -> R<u64>;
    fn pipelined(&mut self, n: u64) -> R<()>;
    fn stop(self, traffic: Traffic) -> R<Option<bool>>;
}

/// Runs `workload` on an async peer (inside whatever runtime polls this).
pub async fn run_async<P: AsyncPeer>(w: Workload, p: Params) -> R<Outcome> {
    let mut peer = P::start(Role::of(w)).await?;
    let (figure, traffic) = match w {
        Workload::RoundTrip => {
            let mut h = new_hist();
            let total = p.warmup + p.samples;
            for i in 0..total {
                if i == p.warmup {
                    measure_start();
                }
                let req = P::request(i);
                let t0 = Instant::now();
                let got = peer.round_trip(req).await?;
                let ns = ns_since(t0);
                if got != i {
                    return Err(format!("reply {got} to request {i}"));
                }
                if i >= p.warmup {
                    h.saturating_record(ns);
                }
            }
            (Figure::Latency(h), Traffic { requests: total, replies: total })
        }
        Workload::OneWay => {
            measure_start();
            let t0 = Instant::now();
            for i in 0..p.messages {
                peer.tell(i).await?;
            }
            let got = peer.flush(p.messages).await?;
            let secs = t0.elapsed().as_secs_f64();
            if got != p.messages {
                return Err(format!("sink took {got} of {} messages", p.messages));
            }
            (
                Figure::Rate { messages: p.messages, secs },
                Traffic { requests: p.messages + 1, replies: 1 },
            )
        }
        Workload::Pipelined => {
            measure_start();
            let t0 = Instant::now();
            peer.pipelined(p.messages, p.window).await?;
            let secs = t0.elapsed().as_secs_f64();
            (
                Figure::Rate { messages: p.messages, secs },
                Traffic { requests: p.messages, replies: p.messages },
            )
        }
        Workload::Batched => {
            let batches = p.messages / p.batch as u64;
            measure_start();
            let t0 = Instant::now();
            for b in 0..batches {
                peer.tell_batch(b * p.batch as u64, p.batch).await?;
            }
            let got = peer.flush(batches * p.batch as u64).await?;
            let secs = t0.elapsed().as_secs_f64();
            let n = batches * p.batch as u64;
            if got != n {
                return Err(format!("sink took {got} of {n} messages"));
            }
            (
                Figure::Rate { messages: n, secs },
                Traffic { requests: n + 1, replies: 1 },
            )
        }
    };
    let telemetry_exact = peer.stop(traffic).await?;
    Ok(Outcome { figure, telemetry_exact })
}

/// Runs `workload` on a plain-thread peer.
pub fn run_sync<P: SyncPeer>(w: Workload, p: &Params) -> R<Outcome> {
    let mut peer = P::start(Role::of(w))?;
    let (figure, traffic) = match w {
        Workload::RoundTrip => {
            let mut h = new_hist();
            let total = p.warmup + p.samples;
            for i in 0..total {
                if i == p.warmup {
                    measure_start();
                }
                let req = P::request(i);
                let t0 = Instant::now();
                let got = peer.round_trip(req)?;
                let ns = ns_since(t0);
                if got != i {
                    return Err(format!("reply {got} to request {i}"));
                }
                if i >= p.warmup {
                    h.saturating_record(ns);
                }
            }
            (Figure::Latency(h), Traffic { requests: total, replies: total })
        }
        Workload::OneWay => {
            measure_start();
            let t0 = Instant::now();
            for i in 0..p.messages {
                peer.tell(i)?;
            }
            let got = peer.flush(p.messages)?;
            let secs = t0.elapsed().as_secs_f64();
            if got != p.messages {
                return Err(format!("sink took {got} of {} messages", p.messages));
            }
            (
                Figure::Rate { messages: p.messages, secs },
                Traffic { requests: p.messages + 1, replies: 1 },
            )
        }
        Workload::Pipelined => {
            measure_start();
            let t0 = Instant::now();
            peer.pipelined(p.messages)?;
            let secs = t0.elapsed().as_secs_f64();
            (
                Figure::Rate { messages: p.messages, secs },
                Traffic { requests: p.messages, replies: p.messages },
            )
        }
        Workload::Batched => {
            let batches = p.messages / p.batch as u64;
            measure_start();
            let t0 = Instant::now();
            for b in 0..batches {
                peer.tell_batch(b * p.batch as u64, p.batch)?;
            }
            let got = peer.flush(batches * p.batch as u64)?;
            let secs = t0.elapsed().as_secs_f64();
            let n = batches * p.batch as u64;
            if got != n {
                return Err(format!("sink took {got} of {n} messages"));
            }
            (
                Figure::Rate { messages: n, secs },
                Traffic { requests: n + 1, replies: 1 },
            )
        }
    };
    let telemetry_exact = peer.stop(traffic)?;
    Ok(Outcome { figure, telemetry_exact })
}

/// The tokio flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    CurrentThread,
    MultiThread,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::CurrentThread => "tokio current-thread",
            Flavour::MultiThread => "tokio multi-thread (2)",
        }
    }

    pub fn runtime(self) -> R<tokio::runtime::Runtime> {
        match self {
            Flavour::CurrentThread => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            Flavour::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
        }
        .map_err(err)
    }
}

/// Runs an async peer's workload on a fresh runtime of `flavour`.
pub fn on_tokio<P: AsyncPeer>(flavour: Flavour, w: Workload, p: &Params) -> R<Outcome> {
    let rt = flavour.runtime()?;
    let work = run_async::<P>(w, *p);
    let out = match flavour {
        // The host is a task on the workers, like any task of the program.
        Flavour::MultiThread => rt.block_on(rt.spawn(work)).map_err(err).and_then(|r| r),
        Flavour::CurrentThread => rt.block_on(work),
    };
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    out
}
