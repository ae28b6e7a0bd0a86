//! The transport's own telemetry, beside the runtime's per-kernel figures.
//!
//! Invariant: every counter is written by this crate on the path it counts
//! (publish, receive, decode, delivery, acknowledgement, call), never by user
//! code; losses are counted where they can be known — at the receiver, from
//! sequence gaps — and slow-consumer drops from the client's own events.
//! Nothing a transport drops goes uncounted.
//!
//! Each endpoint (an export, a remote handle, a link) has an
//! [`EndpointTelemetry`]; [`NatsTelemetry`] gathers a node's, with its
//! connection's counters, and prints as a table.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dotcompute::LatencySummary;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::track::{SeqTracker, SourceProgress, REPORTED_SOURCES};

/// What an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// A local kernel served to other runtimes.
    Export,
    /// A handle to a kernel served by other runtimes.
    Remote,
    /// A local kernel's output sent to a remote kernel's input.
    LinkOut,
    /// A remote kernel's output sent to a local kernel's input.
    LinkIn,
}

impl Role {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Export => "export",
            Role::Remote => "remote",
            Role::LinkOut => "link-out",
            Role::LinkIn => "link-in",
        }
    }
}

/// A snapshot of one endpoint's transport counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointTelemetry {
    /// What the endpoint is (`None` only in a default value).
    pub role: Option<Role>,
    /// The kernel (for a link: "local -> remote" or "remote -> local").
    pub kernel: String,
    /// `"core"` or `"jetstream"`.
    pub delivery: String,
    /// Messages put on the wire (inputs, outputs, replies).
    pub published: u64,
    /// Publishes retried (JetStream: the stream was full under `Block`, or
    /// the server did not acknowledge in time).
    pub publish_retries: u64,
    /// Messages taken off the wire.
    pub received: u64,
    /// Messages handed on: into the local kernel, or to the caller.
    pub delivered: u64,
    /// Payloads that did not decode (typed errors, counted, never a panic).
    pub decode_errors: u64,
    /// Core delivery: messages of a source this endpoint never got although
    /// it got later ones (sequence gaps), when it is the source's sole
    /// receiver. Replicated exports report progress instead (`sources`).
    pub lost: u64,
    /// JetStream `DropOldest`: messages the stream evicted before delivery.
    pub dropped: u64,
    /// Messages refused: a full stream (`Reject`), or the kernel's queue.
    pub rejected: u64,
    /// JetStream: redelivered copies skipped because the message was
    /// already processed or is being processed here.
    pub duplicates: u64,
    /// JetStream: deliveries with a delivery count above one.
    pub redelivered: u64,
    /// JetStream acknowledgements sent after processing.
    pub acked: u64,
    /// JetStream negative acknowledgements (redeliver later, maybe elsewhere).
    pub nacked: u64,
    /// JetStream terminations (the kernel failed on the message: not redelivered).
    pub terminated: u64,
    /// Calls started.
    pub calls: u64,
    /// Calls answered with a reply.
    pub call_replies: u64,
    /// Calls answered with an error (remote failure, refusal, no responders, ...).
    pub call_errors: u64,
    /// Calls that timed out, or were failed by a disconnect or an unavailable remote.
    pub call_timeouts: u64,
    /// Replies that arrived after their call had given up.
    pub late_replies: u64,
    /// Round-trip time of answered calls.
    pub call_latency: LatencySummary,
    /// Per-source sequence progress (most recent sources first), from
    /// which losses across replicas are counted.
    pub sources: Vec<SourceProgress>,
}

/// A latency histogram (nanoseconds, 3 significant digits, up to an hour).
#[derive(Debug, Default)]
pub struct LatencyRecorder(Mutex<Option<Histogram<u64>>>);

/// Longest latency recorded (one hour); longer ones are recorded as this.
const MAX_RECORDED_NS: u64 = 3_600_000_000_000;

impl LatencyRecorder {
    /// Records one duration.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_RECORDED_NS);
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Histogram::new_with_bounds(1, MAX_RECORDED_NS, 3).ok();
        }
        if let Some(h) = g.as_mut() {
            let _ = h.record(ns);
        }
    }

    /// The percentiles recorded so far.
    pub fn summary(&self) -> LatencySummary {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(LatencySummary::from_histogram).unwrap_or_default()
    }
}

/// Live counters of one endpoint.
#[derive(Debug)]
pub(crate) struct Counters {
    pub role: Role,
    pub kernel: String,
    pub delivery: &'static str,
    pub published: AtomicU64,
    pub publish_retries: AtomicU64,
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub decode_errors: AtomicU64,
    pub dropped: AtomicU64,
    pub rejected: AtomicU64,
    pub duplicates: AtomicU64,
    pub redelivered: AtomicU64,
    pub acked: AtomicU64,
    pub nacked: AtomicU64,
    pub terminated: AtomicU64,
    pub calls: AtomicU64,
    pub call_replies: AtomicU64,
    pub call_errors: AtomicU64,
    pub call_timeouts: AtomicU64,
    pub late_replies: AtomicU64,
    pub call_latency: LatencyRecorder,
    pub sequences: Mutex<SeqTracker>,
    /// Whether this endpoint is the sole receiver of its sources (gaps are losses).
    pub sole_receiver: bool,
}

impl Counters {
    pub fn new(role: Role, kernel: impl Into<String>, delivery: &'static str, sole_receiver: bool) -> Self {
        Counters {
            role,
            kernel: kernel.into(),
            delivery,
            published: AtomicU64::new(0),
            publish_retries: AtomicU64::new(0),
            received: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
            terminated: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            call_replies: AtomicU64::new(0),
            call_errors: AtomicU64::new(0),
            call_timeouts: AtomicU64::new(0),
            late_replies: AtomicU64::new(0),
            call_latency: LatencyRecorder::default(),
            sequences: Mutex::new(SeqTracker::default()),
            sole_receiver,
        }
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records sequence number `seq` of publisher `source`.
    pub fn record_sequence(&self, source: &str, seq: u64) -> crate::track::Seen {
        self.sequences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(source, seq)
    }

    /// Records stream sequence number `seq` of stream `source`.
    pub fn record_stream_sequence(&self, source: &str, seq: u64) -> crate::track::Seen {
        self.sequences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record_stream(source, seq)
    }

    pub fn snapshot(&self) -> EndpointTelemetry {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (gaps, sources) = {
            let t = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
            (t.gaps(), t.progress(REPORTED_SOURCES))
        };
        let jetstream = self.delivery == "jetstream";
        EndpointTelemetry {
            role: Some(self.role),
            kernel: self.kernel.clone(),
            delivery: self.delivery.to_string(),
            published: get(&self.published),
            publish_retries: get(&self.publish_retries),
            received: get(&self.received),
            delivered: get(&self.delivered),
            decode_errors: get(&self.decode_errors),
            lost: if self.sole_receiver && !jetstream { gaps } else { 0 },
            dropped: get(&self.dropped),
            rejected: get(&self.rejected),
            duplicates: get(&self.duplicates),
            redelivered: get(&self.redelivered),
            acked: get(&self.acked),
            nacked: get(&self.nacked),
            terminated: get(&self.terminated),
            calls: get(&self.calls),
            call_replies: get(&self.call_replies),
            call_errors: get(&self.call_errors),
            call_timeouts: get(&self.call_timeouts),
            late_replies: get(&self.late_replies),
            call_latency: self.call_latency.summary(),
            sources,
        }
    }
}

/// The connection's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTelemetry {
    /// `"connected"`, `"disconnected"` or `"closed"`.
    pub state: String,
    /// Successful connections (the first included).
    pub connects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Slow-consumer events: each is a message the client dropped because a
    /// subscription's buffer was full.
    pub slow_consumer_events: u64,
    /// Errors the server reported.
    pub server_errors: u64,
    /// Errors the client reported.
    pub client_errors: u64,
    /// Messages received on the connection.
    pub in_messages: u64,
    /// Messages sent on the connection.
    pub out_messages: u64,
    /// Bytes received.
    pub in_bytes: u64,
    /// Bytes sent.
    pub out_bytes: u64,
}

/// A node's telemetry: the connection and every endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NatsTelemetry {
    /// The node's name.
    pub node: String,
    /// Its namespace.
    pub namespace: String,
    /// The connection.
    pub connection: ConnectionTelemetry,
    /// Exports, remote handles and links, in creation order.
    pub endpoints: Vec<EndpointTelemetry>,
}

impl fmt::Display for NatsTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.connection;
        writeln!(
            f,
            "node {} (namespace {}): {}, {} connects, {} disconnects, {} slow-consumer drops, {} in / {} out messages",
            self.node,
            self.namespace,
            c.state,
            c.connects,
            c.disconnects,
            c.slow_consumer_events,
            c.in_messages,
            c.out_messages
        )?;
        writeln!(
            f,
            "  {:<9} {:<28} {:<9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>10}",
            "endpoint",
            "kernel",
            "delivery",
            "published",
            "received",
            "delivered",
            "lost",
            "drop",
            "reject",
            "dup",
            "decode",
            "calls",
            "call p50"
        )?;
        for e in &self.endpoints {
            let p50 = if e.call_latency.count > 0 {
                format!("{:.0} µs", e.call_latency.p50_ns as f64 / 1e3)
            } else {
                "-".to_string()
            };
            writeln!(
                f,
                "  {:<9} {:<28} {:<9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>10}",
                e.role.map_or("-", Role::name),
                e.kernel,
                e.delivery,
                e.published,
                e.received,
                e.delivered,
                e.lost,
                e.dropped,
                e.rejected,
                e.duplicates,
                e.decode_errors,
                e.calls,
                p50
            )?;
        }
        Ok(())
    }
}
