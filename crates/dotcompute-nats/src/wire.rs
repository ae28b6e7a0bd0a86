//! What crosses the wire besides the kernels' own messages.
//!
//! Every payload is one message in the project's versioned
//! [`codec`] (version byte, type name, MessagePack body):
//! the kernels' messages as they are, and the control, heartbeat and error
//! messages below, which are ordinary [`Message`] types. A receiver reads
//! the type name first ([`codec::peek_type_name`])
//! to tell a reply from an [`ErrorReply`].
//!
//! NATS headers carry the transport's bookkeeping, never the message:
//!
//! | header | meaning |
//! |---|---|
//! | `Dc-Pub` | the publishing endpoint's id (a UUID, new for every endpoint) |
//! | `Dc-Seq` | that publisher's sequence number on this subject, from 1, without gaps |
//! | `Dc-Reply` | where the answer to a `call` goes (JetStream delivery, whose messages have no NATS reply subject) |
//! | `Nats-Msg-Id` | the message id (JetStream delivery): the server drops a republished copy |
//!
//! Invariant: decoding anything received never panics; a payload that does
//! not decode is a typed [`DecodeError`], counted by the endpoint that met it.

use async_nats::HeaderMap;
use dotcompute::codec::{self, DecodeError};
use dotcompute::{Backpressure, KernelState, KernelTelemetry, Message, MessageHeader};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::NatsError;
use crate::telemetry::EndpointTelemetry;

/// Header: the publishing endpoint's id.
pub const HEADER_PUBLISHER: &str = "Dc-Pub";
/// Header: the publisher's sequence number.
pub const HEADER_SEQUENCE: &str = "Dc-Seq";
/// Header: where a JetStream `call`'s answer goes.
pub const HEADER_REPLY: &str = "Dc-Reply";
/// Header: JetStream's de-duplication id.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";

/// A message that can cross the wire: a [`Message`] that serde can encode and decode.
pub trait WireMessage: Message + Serialize + DeserializeOwned {}
impl<T: Message + Serialize + DeserializeOwned> WireMessage for T {}

/// Encodes a message for the wire.
pub(crate) fn encode<M: Message + Serialize>(msg: &M) -> Result<bytes::Bytes, NatsError> {
    Ok(bytes::Bytes::from(codec::encode(msg)?))
}

/// Decodes a message received on `subject`.
pub(crate) fn decode<M: Message + DeserializeOwned>(subject: &str, payload: &[u8]) -> Result<M, NatsError> {
    codec::decode(payload).map_err(|error| NatsError::Decode {
        subject: subject.to_string(),
        error,
    })
}

/// Whether `payload` holds a message of type `M` (by its type name).
pub(crate) fn holds<M: Message>(payload: &[u8]) -> bool {
    codec::peek_type_name(payload).is_ok_and(|t| t == M::TYPE_NAME)
}

/// The sequencing headers of one published message.
pub(crate) fn sequence_headers(publisher: &Uuid, seq: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HEADER_PUBLISHER, publisher.simple().to_string().as_str());
    h.insert(HEADER_SEQUENCE, seq.to_string().as_str());
    h
}

/// The publisher id and sequence number of a received message, if it has both.
pub(crate) fn read_sequence(headers: Option<&HeaderMap>) -> Option<(Uuid, u64)> {
    let h = headers?;
    let publisher = Uuid::try_parse(h.get(HEADER_PUBLISHER)?.as_str()).ok()?;
    let seq = h.get(HEADER_SEQUENCE)?.as_str().parse().ok()?;
    Some((publisher, seq))
}

/// A header's text.
pub(crate) fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// Which replica of an exported kernel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    /// The node's name.
    pub node: String,
    /// This export's id (new each time a kernel is exported).
    pub replica: Uuid,
}

/// How an exported kernel receives its messages, as its exporter declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WireDelivery {
    /// Core NATS, at most once.
    Core,
    /// JetStream, at least once.
    JetStream {
        /// The input stream.
        input_stream: String,
        /// The output stream.
        output_stream: String,
        /// What a send into the full input stream does.
        backpressure: Backpressure,
        /// The input stream's capacity (messages).
        capacity: u64,
    },
}

impl WireDelivery {
    /// `"core"` or `"jetstream"`.
    pub fn name(&self) -> &'static str {
        match self {
            WireDelivery::Core => "core",
            WireDelivery::JetStream { .. } => "jetstream",
        }
    }
}

/// What an exporter says about its kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// The kernel id.
    pub kernel: String,
    /// The input message's type name.
    pub input_type: String,
    /// The output message's type name.
    pub output_type: String,
    /// How input reaches it.
    pub delivery: WireDelivery,
    /// The replicas' queue group, if it is replicated.
    pub queue_group: Option<String>,
    /// The replica that answered.
    pub replica: ReplicaId,
    /// Its kernel's state.
    pub state: KernelState,
}

/// A control operation on every replica of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ControlOp {
    /// Describe the kernel (types, delivery).
    Describe,
    /// Report the kernel's and the transport's telemetry.
    Telemetry,
    /// Deactivate the kernel (messages stay queued).
    Deactivate,
    /// Reactivate it.
    Reactivate,
}

/// A control request (on the kernel's control subject).
#[derive(Debug, Clone, Serialize, Deserialize, dotcompute::Message)]
pub struct ControlRequest {
    /// The operation.
    pub op: ControlOp,
    /// Message header.
    pub header: MessageHeader,
}

/// A remote kernel's runtime telemetry, as its replica reports it: the
/// figures of [`KernelTelemetry`], with the last error as text (the error
/// value itself stays in the serving process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelFigures {
    /// The kernel's id.
    pub kernel_id: String,
    /// Its state.
    pub state: KernelState,
    /// Messages delivered to the handler.
    pub messages_received: u64,
    /// Messages the handler sent.
    pub messages_sent: u64,
    /// Messages whose handling finished.
    pub messages_processed: u64,
    /// Messages evicted by `DropOldest` (the queues', and the stream's).
    pub messages_dropped: u64,
    /// Sends into the input queue that were refused.
    pub messages_rejected: u64,
    /// Messages discarded at terminate.
    pub messages_discarded: u64,
    /// Messages lost with a dead peer (process tier).
    pub messages_lost: u64,
    /// Handler errors and panics.
    pub errors: u64,
    /// The last handler error or panic, as text.
    pub last_error: Option<String>,
    /// Restarts made by the restart policy.
    pub restarts: u64,
    /// Time since activation.
    pub uptime_secs: f64,
    /// `messages_processed / uptime_secs`.
    pub throughput_per_sec: f64,
    /// Time messages waited in the input queue.
    pub queue_wait: dotcompute::LatencySummary,
    /// Handler time per message.
    pub handler_time: dotcompute::LatencySummary,
    /// Input queue statistics.
    pub input_queue: dotcompute::QueueStats,
    /// Output queue statistics.
    pub output_queue: dotcompute::QueueStats,
}

impl From<KernelTelemetry> for KernelFigures {
    fn from(t: KernelTelemetry) -> Self {
        KernelFigures {
            kernel_id: t.kernel_id,
            state: t.state,
            messages_received: t.messages_received,
            messages_sent: t.messages_sent,
            messages_processed: t.messages_processed,
            messages_dropped: t.messages_dropped,
            messages_rejected: t.messages_rejected,
            messages_discarded: t.messages_discarded,
            messages_lost: t.messages_lost,
            errors: t.errors,
            last_error: t.last_error.map(|e| e.to_string()),
            restarts: t.restarts,
            uptime_secs: t.uptime_secs,
            throughput_per_sec: t.throughput_per_sec,
            queue_wait: t.queue_wait,
            handler_time: t.handler_time,
            input_queue: t.input_queue,
            output_queue: t.output_queue,
        }
    }
}

/// One replica's telemetry: its kernel's and its transport's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaTelemetry {
    /// The replica.
    pub replica: ReplicaId,
    /// The kernel's runtime telemetry.
    pub kernel: KernelFigures,
    /// The export's transport telemetry.
    pub transport: EndpointTelemetry,
}

/// What a replica answers to a control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ControlAnswer {
    /// To `Describe`.
    Described(Description),
    /// To `Telemetry`.
    Telemetry(Box<ReplicaTelemetry>),
    /// To `Deactivate` / `Reactivate`: the kernel's state afterwards.
    State(KernelState),
}

/// One replica's answer to a control request.
#[derive(Debug, Clone, Serialize, Deserialize, dotcompute::Message)]
pub struct ControlReply {
    /// The replica.
    pub replica: ReplicaId,
    /// The answer, or why the operation failed there.
    pub answer: Result<ControlAnswer, String>,
    /// Message header.
    pub header: MessageHeader,
}

/// What each replica publishes every heartbeat interval, and at once when
/// its kernel fails or it stops exporting.
#[derive(Debug, Clone, Serialize, Deserialize, dotcompute::Message)]
pub struct Heartbeat {
    /// The replica.
    pub replica: ReplicaId,
    /// Its kernel's state.
    pub state: KernelState,
    /// Its kernel's failure, if it failed.
    pub failure: Option<String>,
    /// The replica is leaving (export stopped or node closing).
    pub leaving: bool,
    /// Messages its kernel has processed.
    pub processed: u64,
    /// Its transport counters (including, for replicated exports, the
    /// per-source sequence progress from which losses across replicas are
    /// counted).
    pub transport: EndpointTelemetry,
    /// Message header.
    pub header: MessageHeader,
}

/// Why a replica answers a request with an error instead of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The kernel failed (its handler returned an error or panicked).
    Failed,
    /// The kernel terminated.
    Terminated,
    /// The kernel's queue refused the request.
    Rejected,
    /// The request did not decode.
    Undecodable,
    /// Something else.
    Other,
}

/// The answer to a `call` that the kernel could not answer, correlated to
/// the request like a reply.
#[derive(Debug, Clone, Serialize, Deserialize, dotcompute::Message)]
pub struct ErrorReply {
    /// The kernel id.
    pub kernel: String,
    /// The replica's node.
    pub node: String,
    /// Why.
    pub kind: ErrorKind,
    /// The error's text.
    pub error: String,
    /// Message header (its correlation id is the request's id).
    pub header: MessageHeader,
}

impl ErrorReply {
    /// The error a caller gets: the same a local kernel gives for a failed
    /// or terminated kernel.
    pub fn into_error(self) -> NatsError {
        let error = crate::error::sanitize_peer_text(&self.error);
        let kernel = crate::error::sanitize_peer_text(&self.kernel);
        match self.kind {
            ErrorKind::Failed => NatsError::remote_failure(&kernel, &self.node, &error),
            ErrorKind::Terminated => NatsError::Kernel(dotcompute::Error::KernelTerminated { kernel }),
            ErrorKind::Rejected => NatsError::Rejected { kernel, reason: error },
            ErrorKind::Undecodable | ErrorKind::Other => NatsError::Remote {
                kernel,
                node: crate::error::sanitize_peer_text(&self.node),
                error,
            },
        }
    }
}

/// The error kind for a local runtime error met while serving a request.
pub(crate) fn error_kind(e: &dotcompute::Error) -> ErrorKind {
    match e {
        dotcompute::Error::KernelFailed { .. } => ErrorKind::Failed,
        dotcompute::Error::KernelTerminated { .. } | dotcompute::Error::ShutDown => ErrorKind::Terminated,
        dotcompute::Error::QueueFull { .. } | dotcompute::Error::QueueTimeout { .. } => ErrorKind::Rejected,
        _ => ErrorKind::Other,
    }
}

/// A decode error's kind, for counting.
pub(crate) fn decode_error_of(e: &NatsError) -> Option<&DecodeError> {
    match e {
        NatsError::Decode { error, .. } => Some(error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_headers_round_trip_and_garbage_is_ignored() {
        let id = Uuid::new_v4();
        let h = sequence_headers(&id, 42);
        assert_eq!(read_sequence(Some(&h)), Some((id, 42)));
        let mut bad = HeaderMap::new();
        bad.insert(HEADER_PUBLISHER, "not-a-uuid");
        bad.insert(HEADER_SEQUENCE, "7");
        assert_eq!(read_sequence(Some(&bad)), None);
        assert_eq!(read_sequence(None), None);
    }

    #[test]
    fn an_error_reply_becomes_the_local_error() {
        let r = ErrorReply {
            kernel: "k".into(),
            node: "n".into(),
            kind: ErrorKind::Failed,
            error: "boom\n".into(),
            header: MessageHeader::new(),
        };
        let bytes = encode(&r).unwrap();
        assert!(holds::<ErrorReply>(&bytes));
        assert!(!holds::<Heartbeat>(&bytes));
        let back: ErrorReply = decode("s", &bytes).unwrap();
        let e = back.into_error();
        let (kernel, error) = e.kernel_failure().unwrap();
        assert_eq!((kernel, error.to_string().as_str()), ("k", "boom\\n (on node n)"));
    }

    #[test]
    fn garbage_is_a_typed_decode_error() {
        let e = decode::<ErrorReply>("x.in", &[1, 2, 3]).unwrap_err();
        assert!(matches!(e, NatsError::Decode { ref subject, .. } if subject == "x.in"));
        assert!(decode_error_of(&e).is_some());
    }
}
