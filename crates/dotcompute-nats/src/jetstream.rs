//! The JetStream side: the streams and consumers of an exported kernel, and
//! publishing with acknowledgement.
//!
//! An exported kernel `k` in JetStream delivery has
//! - an **input stream** on `ns.kernel.k.in`: work-queue retention (a
//!   message is removed once a replica acknowledged it), at most `capacity`
//!   messages, discard-new for `Block`/`Reject` and discard-old for
//!   `DropOldest`, and one durable pull consumer `replicas` that every
//!   replica reads (so the server spreads the messages between them and
//!   redelivers an unacknowledged one after `ack_wait`);
//! - an **output stream** on `ns.kernel.k.out`: interest retention (a
//!   message is removed once every receiver acknowledged it), discard-new,
//!   and one durable pull consumer per receiving node or link.
//!
//! Invariants: a publish is complete only when the server acknowledged it
//! (so a refused or lost publish is known to the publisher); every publish
//! carries the message id as `Nats-Msg-Id`, so a publish retried after a
//! lost acknowledgement is stored once; a refusal because the stream is full
//! is told apart from a transient failure.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use async_nats::HeaderMap;
use bytes::Bytes;
use dotcompute::Backpressure;

use crate::error::NatsError;
use crate::options::Storage;

/// The durable consumer every replica of a kernel reads its input from.
pub const REPLICAS_CONSUMER: &str = "replicas";

/// How one publish ended.
#[derive(Debug)]
pub(crate) enum PublishFailure {
    /// The stream is full (discard-new limit).
    Full(String),
    /// The server did not answer in time, the connection dropped, or the
    /// stream is unavailable for now: retrying may succeed.
    Transient(String),
    /// Anything else (too large, no such stream...).
    Fatal(String),
}

/// Publishes once and waits for the server's acknowledgement.
pub(crate) async fn publish_once(
    js: &Context,
    subject: &str,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<(), PublishFailure> {
    let ack = js
        .publish_with_headers(subject.to_string(), headers, payload)
        .await
        .map_err(classify)?;
    ack.await.map(|_| ()).map_err(classify)
}

/// Publishes, retrying transient failures (and, with `retry_full`, a full
/// stream) with a growing pause, until acknowledged or `deadline`.
/// Returns the number of retries made.
pub(crate) async fn publish_retrying(
    js: &Context,
    subject: &str,
    headers: &HeaderMap,
    payload: &Bytes,
    retry_full: bool,
    deadline: Option<Instant>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<u64, (PublishFailure, u64)> {
    let mut retries = 0u64;
    let mut pause = Duration::from_millis(2);
    loop {
        let failure = match publish_once(js, subject, headers.clone(), payload.clone()).await {
            Ok(()) => return Ok(retries),
            Err(f) => f,
        };
        let retry = match &failure {
            PublishFailure::Full(_) => retry_full,
            PublishFailure::Transient(_) => true,
            PublishFailure::Fatal(_) => false,
        };
        let now = Instant::now();
        let out_of_time = deadline.is_some_and(|d| now >= d);
        if !retry || out_of_time || cancel.is_cancelled() {
            return Err((failure, retries));
        }
        retries += 1;
        let nap = deadline.map_or(pause, |d| pause.min(d - now));
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = cancel.cancelled() => return Err((failure, retries)),
        }
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

fn classify(e: PublishError) -> PublishFailure {
    let text = error_text(&e);
    match e.kind() {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe | PublishErrorKind::StreamNotFound => {
            // A stream that is not found right after a server restart comes
            // back once JetStream has recovered it.
            PublishFailure::Transient(text)
        }
        PublishErrorKind::MaxPayloadExceeded => PublishFailure::Fatal(text),
        _ => {
            let lower = text.to_ascii_lowercase();
            if lower.contains("maximum messages") || lower.contains("maximum bytes") {
                PublishFailure::Full(text)
            } else if lower.contains("jetstream not enabled") || lower.contains("temporarily unavailable") {
                PublishFailure::Transient(text)
            } else {
                PublishFailure::Fatal(text)
            }
        }
    }
}

/// An error's text with its sources.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The stream settings an export asks for.
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    pub name: String,
    pub subject: String,
    pub retention: RetentionPolicy,
    pub discard: DiscardPolicy,
    pub capacity: u64,
    pub storage: Storage,
    pub duplicate_window: Duration,
}

impl StreamSpec {
    /// The input stream for a kernel whose senders meet `backpressure`.
    pub fn input(
        name: String,
        subject: String,
        backpressure: Backpressure,
        capacity: u64,
        storage: Storage,
        dup: Duration,
    ) -> Self {
        StreamSpec {
            name,
            subject,
            retention: RetentionPolicy::WorkQueue,
            discard: match backpressure {
                Backpressure::DropOldest => DiscardPolicy::Old,
                _ => DiscardPolicy::New,
            },
            capacity,
            storage,
            duplicate_window: dup,
        }
    }

    /// The output stream.
    pub fn output(name: String, subject: String, capacity: u64, storage: Storage, dup: Duration) -> Self {
        StreamSpec {
            name,
            subject,
            retention: RetentionPolicy::Interest,
            discard: DiscardPolicy::New,
            capacity,
            storage,
            duplicate_window: dup,
        }
    }

    fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            subjects: vec![self.subject.clone()],
            retention: self.retention,
            discard: self.discard,
            max_messages: i64::try_from(self.capacity).unwrap_or(i64::MAX),
            storage: match self.storage {
                Storage::File => StorageType::File,
                Storage::Memory => StorageType::Memory,
            },
            duplicate_window: self.duplicate_window,
            num_replicas: 1,
            ..Default::default()
        }
    }
}

/// Creates the stream, or checks and updates the existing one.
pub(crate) async fn ensure_stream(js: &Context, spec: &StreamSpec) -> Result<jetstream::stream::Stream, NatsError> {
    let wanted = spec.config();
    let failed = |operation: &'static str, e: &dyn std::error::Error| NatsError::JetStream {
        operation,
        target: spec.name.clone(),
        reason: error_text(e),
    };
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| failed("create stream", &e))?;
    let info = stream.info().await.map_err(|e| failed("read stream info", &e))?;
    let have = &info.config;
    if have.subjects != wanted.subjects {
        return Err(NatsError::StreamConflict {
            stream: spec.name.clone(),
            reason: format!(
                "it holds subjects {:?}, this kernel needs {:?}",
                have.subjects, wanted.subjects
            ),
        });
    }
    if have.retention != wanted.retention || have.storage != wanted.storage {
        return Err(NatsError::StreamConflict {
            stream: spec.name.clone(),
            reason: format!(
                "it has {:?} retention in {:?} storage, this kernel needs {:?} in {:?} (delete the stream to change it)",
                have.retention, have.storage, wanted.retention, wanted.storage
            ),
        });
    }
    if have.discard != wanted.discard
        || have.max_messages != wanted.max_messages
        || have.duplicate_window != wanted.duplicate_window
    {
        tracing::info!(stream = %spec.name, "updating the stream's limits to this export's");
        js.update_stream(wanted)
            .await
            .map_err(|e| failed("update stream", &e))?;
    }
    Ok(stream)
}

/// The durable pull consumer `name` on `stream`.
pub(crate) async fn consumer(
    stream: &jetstream::stream::Stream,
    name: &str,
    ack_wait: Duration,
    max_ack_pending: u64,
    deliver: DeliverPolicy,
) -> Result<PullConsumer, NatsError> {
    let config = pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        max_deliver: -1,
        max_ack_pending: i64::try_from(max_ack_pending.max(1)).unwrap_or(i64::MAX),
        deliver_policy: deliver,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(name, config)
        .await
        .map_err(|e| NatsError::JetStream {
            operation: "create consumer",
            target: format!("{}/{name}", stream.cached_info().config.name),
            reason: error_text(&e),
        })
}

/// Opens stream `name` (created by its exporter).
pub(crate) async fn open_stream(js: &Context, name: &str) -> Result<jetstream::stream::Stream, NatsError> {
    js.get_stream(name).await.map_err(|e| NatsError::JetStream {
        operation: "open stream",
        target: name.to_string(),
        reason: error_text(&e),
    })
}

/// The message stream of a consumer, pulling at most `batch` messages
/// ahead, retried until it opens or `cancel`.
pub(crate) async fn messages(
    consumer: &PullConsumer,
    batch: usize,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<pull::Stream> {
    let mut pause = Duration::from_millis(50);
    loop {
        match consumer
            .stream()
            .max_messages_per_batch(batch.clamp(1, 256))
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => return Some(m),
            Err(e) => {
                tracing::debug!(error = %error_text(&e), "cannot open the consumer's message stream yet");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = cancel.cancelled() => return None,
                }
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
