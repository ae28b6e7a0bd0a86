//! Per-kernel telemetry, kept by the runtime itself.
//!
//! Invariant: every counter here is written by runtime code on the path it
//! counts (delivery, send, handler exit, restart, terminate), never by user
//! code, so a kernel that forgets to report still shows what it did. Queue
//! figures come from the queues' own statistics at snapshot time.
//!
//! The hot path takes no lock: counters are relaxed atomic adds and the
//! handler-time histogram is an `AtomicHistogram` (exact
//! counts, hdrhistogram percentiles to 3 significant digits, merged into an
//! `hdrhistogram` only when a snapshot is read). Counters are exact; the two
//! latencies (queue wait, handler time) are measured for one message in
//! [`KernelConfig::latency_sample_every`](crate::KernelConfig::latency_sample_every)
//! (default 8; 1 measures every message), because each measurement reads the
//! clock, which costs about as much as a queue push.

pub(crate) mod histogram;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::HandlerError;
use crate::queue::state::MAX_RECORDED_WAIT_NS;
use crate::queue::QueueStats;
use crate::runtime::state::KernelState;

/// The longest time the runtime's histograms record, in nanoseconds (one
/// hour); a longer wait or latency is recorded as this.
pub const MAX_RECORDED_NS: u64 = MAX_RECORDED_WAIT_NS;

/// A histogram of nanoseconds shaped like the runtime's own (3 significant
/// digits, growing on demand up to [`MAX_RECORDED_NS`]), so an application
/// can record its own latencies beside the runtime's and merge them.
///
/// ```
/// let mut h = dotcompute::telemetry::new_latency_histogram();
/// h.record(1_500).unwrap();
/// assert_eq!(h.len(), 1);
/// ```
pub fn new_latency_histogram() -> Histogram<u64> {
    crate::queue::state::new_wait_histogram()
}

/// Longest latency recorded (one hour); longer values are recorded as this.
const HISTOGRAM_MAX_NS: u64 = MAX_RECORDED_WAIT_NS;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The delivery and send counters of one handler context. Only the context
/// that owns them writes them, through `&mut self` methods, so an add is a
/// plain load and store instead of a locked read-modify-write (a locked add
/// costs about 9 ns on the benchmark VMs, and a receive makes two, a send
/// one); readers still see each value whole.
#[derive(Debug, Default)]
pub(crate) struct ContextCounters {
    received: AtomicU64,
    processed: AtomicU64,
    sent: AtomicU64,
}

impl ContextCounters {
    /// Sole-writer add (see the type's documentation).
    #[inline]
    fn bump(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Counts `n` messages delivered to the handler. Only the owning context calls this.
    #[inline]
    pub fn count_received(&self, n: u64) {
        Self::bump(&self.received, n);
    }

    /// Counts `n` messages handled. Only the owning context calls this.
    #[inline]
    pub fn count_processed(&self, n: u64) {
        Self::bump(&self.processed, n);
    }

    /// Counts `n` messages sent. Only the owning context calls this.
    #[inline]
    pub fn count_sent(&self, n: u64) {
        Self::bump(&self.sent, n);
    }

    /// Takes back `n` messages counted as sent and then refused. Only the
    /// owning context calls this.
    #[cold]
    pub fn uncount_sent(&self, n: u64) {
        self.sent
            .store(self.sent.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }
}

/// Live counters of one kernel (shared by the runtime, the supervisor task and
/// the kernel's context).
#[derive(Debug)]
pub(crate) struct KernelMetrics {
    /// Deliveries, completions and sends of contexts that have ended,
    /// folded in when they detach (under `contexts`' lock).
    received: AtomicU64,
    processed: AtomicU64,
    sent: AtomicU64,
    /// The counters of the contexts alive now.
    contexts: Mutex<Vec<std::sync::Arc<ContextCounters>>>,
    pub errors: AtomicU64,
    pub restarts: AtomicU64,
    pub discarded: AtomicU64,
    /// Drops reported by a transport outside the runtime.
    pub transport_dropped: AtomicU64,
    /// Messages taken in and never completed because the peer that had them
    /// died (process tier).
    pub lost: AtomicU64,
    last_error: Mutex<Option<HandlerError>>,
    handler_ns: histogram::AtomicHistogram,
    window: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl KernelMetrics {
    pub fn new() -> Self {
        KernelMetrics {
            received: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            contexts: Mutex::new(Vec::new()),
            errors: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            transport_dropped: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            last_error: Mutex::new(None),
            handler_ns: histogram::AtomicHistogram::new(),
            window: Mutex::new((None, None)),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counters for a new handler context, counted from now on.
    pub fn attach_context(&self) -> std::sync::Arc<ContextCounters> {
        let counters = std::sync::Arc::new(ContextCounters::default());
        lock(&self.contexts).push(counters.clone());
        counters
    }

    /// Folds an ending context's counters into the kernel's totals. Under
    /// the same lock as [`totals`](Self::totals), so no snapshot counts
    /// them twice or not at all.
    pub fn detach_context(&self, counters: &std::sync::Arc<ContextCounters>) {
        let mut live = lock(&self.contexts);
        if let Some(i) = live.iter().position(|c| std::sync::Arc::ptr_eq(c, counters)) {
            live.swap_remove(i);
            self.received
                .fetch_add(counters.received.load(Ordering::Relaxed), Ordering::Relaxed);
            self.processed
                .fetch_add(counters.processed.load(Ordering::Relaxed), Ordering::Relaxed);
            self.sent
                .fetch_add(counters.sent.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Messages delivered, handled and sent so far, every context together.
    fn totals(&self) -> (u64, u64, u64) {
        let live = lock(&self.contexts);
        live.iter().fold(
            (
                self.received.load(Ordering::Relaxed),
                self.processed.load(Ordering::Relaxed),
                self.sent.load(Ordering::Relaxed),
            ),
            |(r, p, s), c| {
                (
                    r + c.received.load(Ordering::Relaxed),
                    p + c.processed.load(Ordering::Relaxed),
                    s.wrapping_add(c.sent.load(Ordering::Relaxed)),
                )
            },
        )
    }

    /// Records `samples` handler times of `ns` nanoseconds each.
    #[inline]
    pub fn record_handler_ns(&self, ns: u64, samples: u64) {
        if samples > 0 {
            self.handler_ns.record(ns.clamp(1, HISTOGRAM_MAX_NS), samples);
        }
    }

    pub fn record_error(&self, error: &HandlerError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error.clone());
    }

    pub fn mark_started(&self) {
        let mut w = lock(&self.window);
        if w.0.is_none() {
            w.0 = Some(Instant::now());
        }
        w.1 = None;
    }

    pub fn mark_stopped(&self) {
        let mut w = lock(&self.window);
        if w.0.is_some() && w.1.is_none() {
            w.1 = Some(Instant::now());
        }
    }

    pub fn snapshot(
        &self,
        kernel_id: &str,
        state: KernelState,
        input: QueueStats,
        output: QueueStats,
        queue_wait: &Histogram<u64>,
    ) -> KernelTelemetry {
        let uptime = match *lock(&self.window) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            (Some(start), None) => start.elapsed(),
            _ => Duration::ZERO,
        };
        let (received, processed, sent) = self.totals();
        let uptime_secs = uptime.as_secs_f64();
        KernelTelemetry {
            kernel_id: kernel_id.to_string(),
            state,
            messages_received: received,
            messages_sent: sent,
            messages_processed: processed,
            messages_dropped: input.dropped + output.dropped + self.transport_dropped.load(Ordering::Relaxed),
            messages_rejected: input.rejected + input.timed_out + input.closed_rejections,
            messages_discarded: self.discarded.load(Ordering::Relaxed),
            messages_lost: self.lost.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: lock(&self.last_error).clone(),
            restarts: self.restarts.load(Ordering::Relaxed),
            uptime_secs,
            throughput_per_sec: if uptime_secs > 0.0 {
                processed as f64 / uptime_secs
            } else {
                0.0
            },
            queue_wait: LatencySummary::from_histogram(queue_wait),
            handler_time: LatencySummary::from_histogram(&self.handler_ns.snapshot()),
            input_queue: input,
            output_queue: output,
        }
    }
}

/// Percentiles of a latency distribution, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Smallest sample.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

impl LatencySummary {
    /// Summarises a histogram of nanosecond values.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean_ns: h.mean(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }
}

/// A point-in-time view of one kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelTelemetry {
    /// The kernel's id.
    pub kernel_id: String,
    /// Its state.
    pub state: KernelState,
    /// Messages delivered to the handler.
    pub messages_received: u64,
    /// Messages the handler sent (to its output or to other kernels).
    pub messages_sent: u64,
    /// Messages whose handling finished (the handler asked for the next one or returned).
    pub messages_processed: u64,
    /// Messages evicted by `DropOldest`, input and output queues together,
    /// plus those a transport outside the runtime reported evicting
    /// ([`KernelHandle::record_transport_drops`](crate::KernelHandle::record_transport_drops)).
    pub messages_dropped: u64,
    /// Sends into the input queue that were refused (full, timed out or closed) and handed back.
    pub messages_rejected: u64,
    /// Messages still queued when the kernel was terminated without draining,
    /// and replies the runtime no longer took once it terminated the kernel.
    pub messages_discarded: u64,
    /// Messages the kernel took in and never completed because the peer
    /// holding them died (process tier: requests handed to a kernel process
    /// that died before answering). They are also named in the kernel's
    /// failure.
    pub messages_lost: u64,
    /// Handler errors and panics.
    pub errors: u64,
    /// The last handler error (its type and source chain kept; prints and
    /// serializes as its text) or panic.
    pub last_error: Option<HandlerError>,
    /// Restarts made by the restart policy.
    pub restarts: u64,
    /// Time since activation (frozen at the end).
    pub uptime_secs: f64,
    /// `messages_processed / uptime_secs`.
    pub throughput_per_sec: f64,
    /// Time messages waited in the input queue, for the messages measured
    /// (one in [`KernelConfig::latency_sample_every`](crate::KernelConfig::latency_sample_every);
    /// `count` says how many).
    pub queue_wait: LatencySummary,
    /// Time from delivery of a message to the handler asking for the next
    /// one, for the messages measured (as for `queue_wait`).
    pub handler_time: LatencySummary,
    /// Input queue statistics.
    pub input_queue: QueueStats,
    /// Output queue statistics.
    pub output_queue: QueueStats,
}

/// Telemetry of every kernel in a runtime, with totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeSummary {
    /// Number of kernels.
    pub kernel_count: usize,
    /// Sum of `messages_received`.
    pub total_received: u64,
    /// Sum of `messages_processed`.
    pub total_processed: u64,
    /// Sum of `messages_dropped`.
    pub total_dropped: u64,
    /// Sum of `messages_rejected`.
    pub total_rejected: u64,
    /// Sum of `errors`.
    pub total_errors: u64,
    /// Sum of `restarts`.
    pub total_restarts: u64,
    /// Time since the runtime was created.
    pub uptime_secs: f64,
    /// Per-kernel figures, sorted by id.
    pub kernels: Vec<KernelTelemetry>,
}

impl RuntimeSummary {
    pub(crate) fn new(mut kernels: Vec<KernelTelemetry>, uptime: Duration) -> Self {
        kernels.sort_by(|a, b| a.kernel_id.cmp(&b.kernel_id));
        RuntimeSummary {
            kernel_count: kernels.len(),
            total_received: kernels.iter().map(|k| k.messages_received).sum(),
            total_processed: kernels.iter().map(|k| k.messages_processed).sum(),
            total_dropped: kernels.iter().map(|k| k.messages_dropped).sum(),
            total_rejected: kernels.iter().map(|k| k.messages_rejected).sum(),
            total_errors: kernels.iter().map(|k| k.errors).sum(),
            total_restarts: kernels.iter().map(|k| k.restarts).sum(),
            uptime_secs: uptime.as_secs_f64(),
            kernels,
        }
    }

    /// The same figures in the Prometheus text exposition format (0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, help, get) in COUNTERS {
            let _ = writeln!(out, "# HELP dotcompute_kernel_{name} {help}");
            let _ = writeln!(out, "# TYPE dotcompute_kernel_{name} counter");
            for k in &self.kernels {
                let _ = writeln!(
                    out,
                    "dotcompute_kernel_{name}{{kernel=\"{}\"}} {}",
                    escape(&k.kernel_id),
                    get(k)
                );
            }
        }
        for (name, help, get) in GAUGES {
            let _ = writeln!(out, "# HELP dotcompute_kernel_{name} {help}");
            let _ = writeln!(out, "# TYPE dotcompute_kernel_{name} gauge");
            for k in &self.kernels {
                let _ = writeln!(
                    out,
                    "dotcompute_kernel_{name}{{kernel=\"{}\"}} {}",
                    escape(&k.kernel_id),
                    get(k)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP dotcompute_kernel_state Current state (1 for the state the kernel is in)."
        );
        let _ = writeln!(out, "# TYPE dotcompute_kernel_state gauge");
        for k in &self.kernels {
            let _ = writeln!(
                out,
                "dotcompute_kernel_state{{kernel=\"{}\",state=\"{}\"}} 1",
                escape(&k.kernel_id),
                k.state
            );
        }
        for (name, help, get) in LATENCIES {
            let _ = writeln!(out, "# HELP dotcompute_kernel_{name} {help}");
            let _ = writeln!(out, "# TYPE dotcompute_kernel_{name} summary");
            for k in &self.kernels {
                let l = get(k);
                let id = escape(&k.kernel_id);
                for (q, v) in quantiles(l) {
                    let _ = writeln!(
                        out,
                        "dotcompute_kernel_{name}{{kernel=\"{id}\",quantile=\"{q}\"}} {}",
                        v as f64 / 1e9
                    );
                }
                let _ = writeln!(
                    out,
                    "dotcompute_kernel_{name}_sum{{kernel=\"{id}\"}} {}",
                    l.mean_ns * l.count as f64 / 1e9
                );
                let _ = writeln!(out, "dotcompute_kernel_{name}_count{{kernel=\"{id}\"}} {}", l.count);
            }
        }
        out
    }
}

/// A figure of a kernel's telemetry.
pub(crate) type Getter = fn(&KernelTelemetry) -> f64;
/// A latency summary of a kernel's telemetry.
pub(crate) type Lat = fn(&KernelTelemetry) -> &LatencySummary;

// The exported series: name (after `dotcompute_kernel_`), help text, value.
// One table for every exporter (the Prometheus text and the `metrics`
// facade), so they cannot drift apart.

/// Monotonic counters.
pub(crate) const COUNTERS: [(&str, &str, Getter); 9] = [
    ("messages_received_total", "Messages delivered to the handler.", |k| {
        k.messages_received as f64
    }),
    ("messages_sent_total", "Messages sent by the handler.", |k| {
        k.messages_sent as f64
    }),
    ("messages_processed_total", "Messages whose handling finished.", |k| {
        k.messages_processed as f64
    }),
    ("messages_dropped_total", "Messages evicted by DropOldest.", |k| {
        k.messages_dropped as f64
    }),
    ("messages_rejected_total", "Sends refused and handed back.", |k| {
        k.messages_rejected as f64
    }),
    ("messages_discarded_total", "Messages discarded at terminate.", |k| {
        k.messages_discarded as f64
    }),
    ("messages_lost_total", "Messages lost with a dead peer.", |k| {
        k.messages_lost as f64
    }),
    ("errors_total", "Handler errors and panics.", |k| k.errors as f64),
    ("restarts_total", "Restarts by the restart policy.", |k| {
        k.restarts as f64
    }),
];

/// Gauges.
pub(crate) const GAUGES: [(&str, &str, Getter); 5] = [
    ("input_queue_depth", "Messages waiting in the input queue.", |k| {
        k.input_queue.depth as f64
    }),
    ("input_queue_peak_depth", "Largest input queue depth seen.", |k| {
        k.input_queue.peak_depth as f64
    }),
    ("output_queue_depth", "Messages waiting in the output queue.", |k| {
        k.output_queue.depth as f64
    }),
    ("uptime_seconds", "Time since activation.", |k| k.uptime_secs),
    (
        "throughput_per_second",
        "Processed messages per second of uptime.",
        |k| k.throughput_per_sec,
    ),
];

/// Latencies, exported as quantiles 0.5, 0.95, 0.99 and 1 in seconds.
pub(crate) const LATENCIES: [(&str, &str, Lat); 2] = [
    ("queue_wait_seconds", "Time messages waited in the input queue.", |k| {
        &k.queue_wait
    }),
    ("handler_seconds", "Time the handler spent per message.", |k| {
        &k.handler_time
    }),
];

/// The quantiles exported of each latency: label and value.
pub(crate) fn quantiles(l: &LatencySummary) -> [(&'static str, u64); 4] {
    [
        ("0.5", l.p50_ns),
        ("0.95", l.p95_ns),
        ("0.99", l.p99_ns),
        ("1", l.max_ns),
    ]
}

/// Serializes a duration as fractional seconds, like the other `*_secs` fields.
pub(crate) fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `850 ns`, `12.3 µs`, `5.15 ms`, `1.23 s`: scaled to the unit that keeps
/// 1 to 999 of it, three significant digits.
fn fmt_ns(ns: u64) -> String {
    let (v, unit) = match ns {
        0..=999 => return format!("{ns} ns"),
        1_000..=999_999 => (ns as f64 / 1e3, "µs"),
        1_000_000..=999_999_999 => (ns as f64 / 1e6, "ms"),
        _ => (ns as f64 / 1e9, "s"),
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

impl fmt::Display for RuntimeSummary {
    /// A fixed-width table, one row per kernel.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:<11} {:>9} {:>9} {:>9} {:>7} {:>8} {:>6} {:>8} {:>10} {:>10} {:>10}",
            "kernel",
            "state",
            "received",
            "processed",
            "sent",
            "dropped",
            "rejected",
            "errors",
            "restarts",
            "wait p50",
            "handle p50",
            "handle p99"
        )?;
        for k in &self.kernels {
            writeln!(
                f,
                "{:<14} {:<11} {:>9} {:>9} {:>9} {:>7} {:>8} {:>6} {:>8} {:>10} {:>10} {:>10}",
                k.kernel_id,
                k.state.to_string(),
                k.messages_received,
                k.messages_processed,
                k.messages_sent,
                k.messages_dropped,
                k.messages_rejected,
                k.errors,
                k.restarts,
                fmt_ns(k.queue_wait.p50_ns),
                fmt_ns(k.handler_time.p50_ns),
                fmt_ns(k.handler_time.p99_ns),
            )?;
        }
        write!(
            f,
            "{} kernels, {} processed, {} dropped, {} rejected, {} errors, {} restarts",
            self.kernel_count,
            self.total_processed,
            self.total_dropped,
            self.total_rejected,
            self.total_errors,
            self.total_restarts
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::state::new_wait_histogram as new_histogram;

    #[test]
    fn latency_summary_of_known_values() {
        let mut h = new_histogram();
        for v in 1..=100u64 {
            h.record(v * 1000).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 100);
        assert!((49_000..=51_000).contains(&s.p50_ns), "{s:?}");
        assert!((98_000..=100_100).contains(&s.p99_ns), "{s:?}");
        assert!((99_900..=100_100).contains(&s.max_ns), "{s:?}");
        assert_eq!(LatencySummary::from_histogram(&new_histogram()).count, 0);
    }

    /// Contexts count alone, one after another (as a restarted handler's
    /// do), while another thread reads the totals: every read is monotonic
    /// and never ahead of what was counted, and the end is exact.
    #[test]
    fn context_counts_are_read_whole_while_contexts_come_and_go() {
        let m = std::sync::Arc::new(KernelMetrics::new());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counted = std::sync::Arc::new(AtomicU64::new(0));
        let reader = {
            let (m, done, counted) = (m.clone(), done.clone(), counted.clone());
            std::thread::spawn(move || {
                let mut last = (0, 0, 0);
                while !done.load(Ordering::Acquire) {
                    let now = m.totals();
                    // Read after: at most the context in progress is ahead of it.
                    let ceiling = counted.load(Ordering::Acquire) + 1_000;
                    assert!(
                        now.0 >= last.0 && now.1 >= last.1 && now.2 >= last.2,
                        "{last:?} -> {now:?}"
                    );
                    assert!(
                        now.0 <= ceiling && now.1 <= ceiling && now.2 <= ceiling,
                        "{now:?} (ceiling {ceiling})"
                    );
                    last = now;
                }
            })
        };
        for _ in 0..50 {
            let c = m.attach_context();
            for _ in 0..1_000 {
                c.count_received(1);
                c.count_processed(1);
                c.count_sent(1);
            }
            m.detach_context(&c);
            counted.fetch_add(1_000, Ordering::Release);
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
        assert_eq!(m.totals(), (50_000, 50_000, 50_000));
    }

    #[test]
    fn metrics_record_and_snapshot() {
        let m = KernelMetrics::new();
        m.mark_started();
        // One context that ended and one still running: both counted.
        let ended = m.attach_context();
        ended.count_received(2);
        ended.count_processed(2);
        m.detach_context(&ended);
        m.detach_context(&ended); // a second detach folds nothing
        let running = m.attach_context();
        running.count_received(1);
        m.record_handler_ns(2_000, 1);
        m.record_handler_ns(0, 1);
        m.record_error(&HandlerError::new("boom"));
        m.record_error(&HandlerError::new("bang"));
        let snapshot = || {
            m.snapshot(
                "k",
                KernelState::Active,
                QueueStats::default(),
                QueueStats::default(),
                &new_histogram(),
            )
        };
        let t = snapshot();
        assert_eq!((t.messages_received, t.messages_processed), (3, 2));
        running.count_processed(1);
        m.detach_context(&running);
        let t = snapshot();
        assert_eq!((t.messages_received, t.messages_processed), (3, 3));
        assert_eq!(t.errors, 2);
        assert_eq!(t.last_error.map(|e| e.to_string()).as_deref(), Some("bang"));
        assert_eq!(t.handler_time.count, 2);
        assert!(t.uptime_secs >= 0.0);
    }

    #[test]
    fn prometheus_escapes_labels_and_lists_each_kernel() {
        let m = KernelMetrics::new();
        let mk = |id: &str| {
            m.snapshot(
                id,
                KernelState::Active,
                QueueStats::default(),
                QueueStats::default(),
                &new_histogram(),
            )
        };
        let s = RuntimeSummary::new(vec![mk("b\"x"), mk("a")], Duration::from_secs(1));
        let text = s.to_prometheus();
        assert!(text.contains("dotcompute_kernel_messages_received_total{kernel=\"a\"} 0"));
        assert!(text.contains("kernel=\"b\\\"x\""), "{text}");
        assert!(text.contains("# TYPE dotcompute_kernel_handler_seconds summary"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad sample line: {line}");
        }
    }

    #[test]
    fn durations_in_the_table_are_scaled_with_a_space() {
        assert_eq!(fmt_ns(850), "850 ns");
        assert_eq!(fmt_ns(12_340), "12.3 µs");
        assert_eq!(fmt_ns(5_148_700), "5.15 ms");
        assert_eq!(fmt_ns(123_456_789), "123 ms");
        assert_eq!(fmt_ns(1_230_000_000), "1.23 s");
    }
}
