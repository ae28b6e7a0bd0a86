//! A handle to a kernel that another runtime serves: the same operations as
//! a local [`KernelHandle`](dotcompute::KernelHandle), over NATS.
//!
//! Invariants:
//! - the handle checks the exporter's declared message types when it is
//!   opened: a type mismatch is an error then, never a decode failure later;
//! - every `call` ends within its time limit: with the reply, with the
//!   remote kernel's failure, with [`NatsError::Disconnected`] as soon as
//!   the connection drops, with [`NatsError::RemoteUnavailable`] as soon as
//!   every replica has been silent for the liveness timeout, or with
//!   [`NatsError::Timeout`];
//! - a message `send` could not deliver comes back inside the error;
//! - core messages leave a handle in the order of their sequence numbers,
//!   whichever tasks send them, so an exporter's loss and duplicate
//!   bookkeeping never mistakes a reordered message for a duplicate; a
//!   send that never reached the connection (refused, or dropped while it
//!   waited) uses up no number, so it is never counted as lost either;
//! - a remote kernel that failed is reported as
//!   [`dotcompute::Error::KernelFailed`] with its error, to pending calls at
//!   once and to later sends, calls and receives, as a local one is.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::{StatusCode, Subscriber};
use dotcompute::KernelState;
use futures::{FutureExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::error::{sanitize_peer_text, NatsError, RemoteSendError};
use crate::jetstream::{self as js, PublishFailure};
use crate::node::NodeShared;
use crate::options::RemoteOptions;
use crate::subject::{KernelSubjects, Token};
use crate::telemetry::{Counters, EndpointTelemetry, Role};
use crate::track::{losses_across, Seen, SeenSet};
use crate::wire::{
    self, ControlAnswer, ControlOp, ControlReply, ControlRequest, Description, ErrorReply, Heartbeat, ReplicaId,
    ReplicaTelemetry, WireDelivery, WireMessage, HEADER_MSG_ID, HEADER_REPLY,
};

/// What the handle last heard from one replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    /// The replica.
    pub replica: ReplicaId,
    /// Its kernel's state.
    pub state: KernelState,
    /// Its kernel's failure, if it failed.
    pub failure: Option<String>,
    /// Messages its kernel has processed.
    pub processed: u64,
    /// Its transport counters.
    pub transport: EndpointTelemetry,
    /// Time since its last heartbeat.
    pub silent_for: Duration,
    /// Whether it counts as alive (heard from within the liveness timeout,
    /// not leaving).
    pub alive: bool,
}

#[derive(Debug, Clone)]
struct ReplicaEntry {
    node: String,
    state: KernelState,
    failure: Option<String>,
    processed: u64,
    transport: EndpointTelemetry,
    last_seen: Instant,
    leaving: bool,
}

/// The remote kernel as the handle sees it now.
#[derive(Debug, Clone, PartialEq)]
enum Health {
    /// At least one replica is alive and not ended.
    Serving,
    /// Every live replica has failed; the most recent failure (node, error).
    Failed(String, String),
    /// Every live replica has terminated.
    Terminated,
    /// No replica has been heard from within the liveness timeout.
    Gone(Duration),
}

type CallSlot<Out> = oneshot::Sender<Result<Out, NatsError>>;

pub(crate) struct RemoteShared<In, Out> {
    pub node: NodeShared,
    pub kernel: String,
    pub subjects: KernelSubjects,
    pub description: Description,
    pub call_timeout: Duration,
    pub send_timeout: Duration,
    publisher: Uuid,
    /// JetStream sends' numbers (they only say who published).
    seq: AtomicU64,
    /// The last number a core send handed to the connection; held from
    /// taking the next one until the connection has that message (see
    /// `send`).
    core_seq: tokio::sync::Mutex<u64>,
    inbox: String,
    calls: Mutex<HashMap<String, CallSlot<Out>>>,
    replicas: Mutex<HashMap<Uuid, ReplicaEntry>>,
    /// Bumped whenever a replica's state or liveness changes.
    health_changed: watch::Sender<u64>,
    receiver: tokio::sync::Mutex<Option<Receiver>>,
    pub counters: Arc<Counters>,
    pub cancel: CancellationToken,
    _types: PhantomData<fn(In) -> Out>,
}

/// A handle to a kernel exported by another runtime (see the module doc).
/// Cheap to clone; its subscriptions end when the last clone is dropped.
pub struct RemoteHandle<In, Out> {
    shared: Arc<RemoteShared<In, Out>>,
    _alive: Arc<DropGuard>,
}

impl<In, Out> Clone for RemoteHandle<In, Out> {
    fn clone(&self) -> Self {
        RemoteHandle {
            shared: self.shared.clone(),
            _alive: self._alive.clone(),
        }
    }
}

/// Where a handle's (or a link's) received outputs come from.
pub(crate) enum Receiver {
    Core(Subscriber),
    JetStream {
        messages: Box<async_nats::jetstream::consumer::pull::Stream>,
        seen: SeenSet,
    },
}

/// One message taken off the output subject, with what must follow its use.
pub(crate) struct Received<Out> {
    pub message: Out,
    /// JetStream: acknowledge once the message has been used.
    pub acker: Option<async_nats::jetstream::message::Acker>,
}

impl<In: WireMessage, Out: WireMessage> RemoteHandle<In, Out> {
    pub(crate) async fn open(node: &NodeShared, kernel_id: &str, options: RemoteOptions) -> Result<Self, NatsError> {
        let subjects = node.subjects(kernel_id)?;
        let description = describe(node, &subjects, options.wait_for_export).await?;
        for (side, local, remote) in [
            ("input", In::TYPE_NAME, description.input_type.as_str()),
            ("output", Out::TYPE_NAME, description.output_type.as_str()),
        ] {
            if local != remote {
                return Err(NatsError::TypeMismatch {
                    kernel: kernel_id.to_string(),
                    side,
                    local: local.to_string(),
                    remote: sanitize_peer_text(remote),
                });
            }
        }
        let cancel = node.shutdown.child_token();
        let inbox = node.client.new_inbox();
        let inbox_sub = node
            .client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| NatsError::Subscribe {
                subject: format!("{inbox}.*"),
                reason: e.to_string(),
            })?;
        let hb_sub = node
            .client
            .subscribe(subjects.heartbeat())
            .await
            .map_err(|e| NatsError::Subscribe {
                subject: subjects.heartbeat(),
                reason: e.to_string(),
            })?;
        let counters = Arc::new(Counters::new(
            Role::Remote,
            kernel_id,
            description.delivery.name(),
            true,
        ));
        node.registry.add_counters(&counters, false);
        let mut replicas = HashMap::new();
        replicas.insert(
            description.replica.replica,
            ReplicaEntry {
                node: sanitize_peer_text(&description.replica.node),
                state: description.state,
                failure: None,
                processed: 0,
                transport: EndpointTelemetry::default(),
                last_seen: Instant::now(),
                leaving: false,
            },
        );
        let shared = Arc::new(RemoteShared {
            node: node.clone(),
            kernel: kernel_id.to_string(),
            subjects,
            description,
            call_timeout: options.call_timeout.unwrap_or(node.options.call_timeout),
            send_timeout: options.send_timeout.unwrap_or(Duration::from_secs(30)),
            publisher: Uuid::new_v4(),
            seq: AtomicU64::new(0),
            core_seq: tokio::sync::Mutex::new(0),
            inbox,
            calls: Mutex::new(HashMap::new()),
            replicas: Mutex::new(replicas),
            health_changed: watch::Sender::new(0),
            receiver: tokio::sync::Mutex::new(None),
            counters,
            cancel: cancel.clone(),
            _types: PhantomData,
        });
        tokio::spawn(dispatch_replies(shared.clone(), inbox_sub));
        tokio::spawn(watch_replicas(shared.clone(), hb_sub));
        Ok(RemoteHandle {
            shared,
            _alive: Arc::new(cancel.drop_guard()),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<RemoteShared<In, Out>> {
        &self.shared
    }

    /// The kernel's id.
    pub fn kernel_id(&self) -> &str {
        &self.shared.kernel
    }

    /// The kernel's subjects.
    pub fn subjects(&self) -> &KernelSubjects {
        &self.shared.subjects
    }

    /// What the exporter declared when the handle was opened.
    pub fn description(&self) -> &Description {
        &self.shared.description
    }

    /// `"core"` or `"jetstream"`.
    pub fn delivery(&self) -> &'static str {
        self.shared.description.delivery.name()
    }

    /// Every replica heard from, alive or not, most recently heard first.
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        self.shared.replicas()
    }

    /// The kernel's state as its replicas report it: `Active` (or
    /// `Deactivated`) while one serves, `Failed` when every live replica
    /// failed, `Terminated` when they terminated or none is alive.
    pub fn state(&self) -> KernelState {
        match self.shared.health() {
            Health::Serving => {
                let reps = self.shared.replicas();
                if reps.iter().any(|r| r.alive && r.state == KernelState::Active) {
                    KernelState::Active
                } else {
                    reps.iter().find(|r| r.alive).map_or(KernelState::Active, |r| r.state)
                }
            }
            Health::Failed(..) => KernelState::Failed,
            Health::Terminated | Health::Gone(_) => KernelState::Terminated,
        }
    }

    /// Messages lost across the live replicas of a replicated kernel
    /// (core delivery), from the sequence progress in their heartbeats.
    pub fn replica_losses(&self) -> u64 {
        let reps = self.shared.replicas();
        losses_across(reps.iter().filter(|r| r.alive).map(|r| r.transport.sources.as_slice()))
    }

    /// This handle's transport counters.
    pub fn telemetry(&self) -> EndpointTelemetry {
        self.shared.counters.snapshot()
    }

    /// Sends `msg` to the kernel's input.
    ///
    /// Core delivery: published once, at most once delivered (a loss is
    /// counted by the receiver). JetStream: complete when the server has
    /// stored it; a full stream hands it back at once under `Reject`, and
    /// is waited on (up to the send timeout) under `Block`. A failed or
    /// unavailable remote kernel, a closed connection or a refusal give the
    /// message back inside the error.
    pub async fn send(&self, msg: In) -> Result<(), RemoteSendError<In>> {
        self.shared.send(msg, None).await
    }

    /// Sends `request` and waits for the reply correlated to it, within
    /// the handle's call time limit.
    pub async fn call(&self, request: In) -> Result<Out, NatsError> {
        self.call_timeout(request, self.shared.call_timeout).await
    }

    /// Like [`call`](Self::call), with its own time limit.
    pub async fn call_timeout(&self, request: In, timeout: Duration) -> Result<Out, NatsError> {
        self.shared.call(request, timeout).await
    }

    /// Starts taking the kernel's outputs now (otherwise the first
    /// [`receive`](Self::receive) does). Core delivery keeps no output
    /// published while nobody listens; a JetStream receiver is durable (one
    /// per node) and also gets those published while it was away.
    pub async fn subscribe_outputs(&self) -> Result<(), NatsError> {
        let mut guard = self.shared.receiver.lock().await;
        if guard.is_none() {
            let name = self.shared.node.name.to_string();
            *guard = Some(self.shared.open_receiver(&name).await?);
        }
        Ok(())
    }

    /// The next output of the kernel that answers no call. Every receiving
    /// node gets every output (fan-out). When the remote kernel has failed
    /// or gone and nothing more is buffered, its failure (or
    /// [`NatsError::RemoteUnavailable`]) is returned, as locally.
    pub async fn receive(&self) -> Result<Out, NatsError> {
        self.receive_inner(None).await
    }

    /// Like [`receive`](Self::receive), giving [`NatsError::Timeout`] after `timeout`.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Out, NatsError> {
        self.receive_inner(Some(timeout)).await
    }

    async fn receive_inner(&self, timeout: Option<Duration>) -> Result<Out, NatsError> {
        self.subscribe_outputs().await?;
        let shared = &self.shared;
        let mut guard = shared.receiver.lock().await;
        let receiver = guard.as_mut().ok_or(NatsError::Closed)?;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut health = shared.health_changed.subscribe();
        loop {
            if let Some(e) = shared.health_error("receive from") {
                // Outputs already here still come first, as locally; then
                // the kernel's end.
                return match shared.next_received(receiver).now_or_never() {
                    Some(r) => shared.hand_over(r?).await,
                    None => Err(e),
                };
            }
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, shared.next_received(receiver))
                        .await
                        .map_err(|_| NatsError::Timeout {
                            kernel: shared.kernel.clone(),
                            operation: "receive from",
                            after: timeout.unwrap_or_default(),
                        })?,
                    None => shared.next_received(receiver).await,
                }
            };
            tokio::select! {
                biased;
                r = next => return shared.hand_over(r?).await,
                changed = health.changed() => {
                    if changed.is_err() {
                        return Err(NatsError::Closed);
                    }
                }
            }
        }
    }

    /// Deactivates the kernel on every live replica (their queued messages
    /// stay queued); returns each replica's state afterwards.
    pub async fn deactivate(&self) -> Result<Vec<(ReplicaId, KernelState)>, NatsError> {
        self.state_op(ControlOp::Deactivate).await
    }

    /// Reactivates the kernel on every live replica.
    pub async fn reactivate(&self) -> Result<Vec<(ReplicaId, KernelState)>, NatsError> {
        self.state_op(ControlOp::Reactivate).await
    }

    async fn state_op(&self, op: ControlOp) -> Result<Vec<(ReplicaId, KernelState)>, NatsError> {
        let replies = self.shared.control(op).await?;
        let mut out = Vec::new();
        for r in replies {
            match r.answer {
                Ok(ControlAnswer::State(s)) => out.push((r.replica, s)),
                Ok(_) => {}
                Err(e) => {
                    return Err(NatsError::Remote {
                        kernel: self.shared.kernel.clone(),
                        node: sanitize_peer_text(&r.replica.node),
                        error: sanitize_peer_text(&e),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Each live replica's kernel and transport telemetry, asked now.
    pub async fn remote_telemetry(&self) -> Result<Vec<ReplicaTelemetry>, NatsError> {
        let replies = self.shared.control(ControlOp::Telemetry).await?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r.answer {
                Ok(ControlAnswer::Telemetry(t)) => Some(*t),
                _ => None,
            })
            .collect())
    }
}

impl<In: WireMessage, Out: WireMessage> RemoteShared<In, Out> {
    fn replicas(&self) -> Vec<ReplicaStatus> {
        let liveness = self.node.options.liveness_timeout;
        let map = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<ReplicaStatus> = map
            .iter()
            .map(|(id, e)| {
                let silent_for = e.last_seen.elapsed();
                ReplicaStatus {
                    replica: ReplicaId {
                        node: e.node.clone(),
                        replica: *id,
                    },
                    state: e.state,
                    failure: e.failure.clone(),
                    processed: e.processed,
                    transport: e.transport.clone(),
                    silent_for,
                    alive: !e.leaving && silent_for <= liveness,
                }
            })
            .collect();
        v.sort_by_key(|r| r.silent_for);
        v
    }

    fn health(&self) -> Health {
        let liveness = self.node.options.liveness_timeout;
        let map = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        let alive: Vec<&ReplicaEntry> = map
            .values()
            .filter(|e| !e.leaving && e.last_seen.elapsed() <= liveness)
            .collect();
        if alive
            .iter()
            .any(|e| e.state.is_running() || e.state == KernelState::Launched)
        {
            return Health::Serving;
        }
        if let Some(failed) = alive
            .iter()
            .filter(|e| e.state == KernelState::Failed)
            .min_by_key(|e| e.last_seen.elapsed())
        {
            return Health::Failed(
                failed.node.clone(),
                failed.failure.clone().unwrap_or_else(|| "failed".to_string()),
            );
        }
        if !alive.is_empty() {
            return Health::Terminated;
        }
        let silent = map.values().map(|e| e.last_seen.elapsed()).min().unwrap_or(liveness);
        Health::Gone(silent)
    }

    /// The error an operation meets now, if the remote kernel is not serving.
    fn health_error(&self, operation: &'static str) -> Option<NatsError> {
        let _ = operation;
        match self.health() {
            Health::Serving => None,
            Health::Failed(node, error) => Some(NatsError::remote_failure(&self.kernel, &node, &error)),
            Health::Terminated => Some(NatsError::Kernel(dotcompute::Error::KernelTerminated {
                kernel: self.kernel.clone(),
            })),
            Health::Gone(silent_for) => Some(NatsError::RemoteUnavailable {
                kernel: self.kernel.clone(),
                silent_for,
            }),
        }
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn jetstream(&self) -> Option<(dotcompute::Backpressure, String)> {
        match &self.description.delivery {
            WireDelivery::JetStream {
                backpressure,
                output_stream,
                ..
            } => Some((*backpressure, output_stream.clone())),
            _ => None,
        }
    }

    /// Publishes `msg` to the input (with `reply`, for a call).
    pub(crate) async fn send(&self, msg: In, reply: Option<&str>) -> Result<(), RemoteSendError<In>> {
        if let Some(e) = self.health_error("send to") {
            return Err(RemoteSendError::new(msg, e));
        }
        let payload = match wire::encode(&msg) {
            Ok(p) => p,
            Err(e) => return Err(RemoteSendError::new(msg, e)),
        };
        let subject = self.subjects.input();
        match self.jetstream() {
            None => {
                // The number is taken and the message handed to the
                // connection under one lock, so the numbers go out in
                // order even when several tasks send through this handle
                // (a link and a caller): an exporter delivers in arrival
                // order, and counts the numbers it has not seen yet below
                // the highest as missing until they come.
                // The number is used up only once the connection has the
                // message: a refused publish, or one dropped while it waits
                // (tokio's channel send is cancel-safe), leaves no gap for
                // the exporter to count as lost.
                let mut last = self.core_seq.lock().await;
                let seq = *last + 1;
                let headers = wire::sequence_headers(&self.publisher, seq);
                let published = match reply {
                    Some(r) => {
                        self.node
                            .client
                            .publish_with_reply_and_headers(subject.clone(), r.to_string(), headers, payload)
                            .await
                    }
                    None => {
                        self.node
                            .client
                            .publish_with_headers(subject.clone(), headers, payload)
                            .await
                    }
                };
                match published {
                    Ok(()) => {
                        *last = seq;
                        Counters::inc(&self.counters.published);
                        Ok(())
                    }
                    Err(e) => Err(RemoteSendError::new(
                        msg,
                        NatsError::Publish {
                            subject,
                            reason: e.to_string(),
                        },
                    )),
                }
            }
            Some((backpressure, _)) => {
                // JetStream numbers the messages itself (the stream's
                // sequence); ours only says who published.
                let mut headers = wire::sequence_headers(&self.publisher, self.next_seq());
                headers.insert(HEADER_MSG_ID, msg.message_id().simple().to_string().as_str());
                if let Some(r) = reply {
                    headers.insert(HEADER_REPLY, r);
                }
                let block = backpressure == dotcompute::Backpressure::Block;
                let deadline = Instant::now() + self.send_timeout;
                let result = js::publish_retrying(
                    &self.node.js,
                    &subject,
                    &headers,
                    &payload,
                    block,
                    Some(deadline),
                    &self.cancel,
                )
                .await;
                match result {
                    Ok(retries) => {
                        Counters::add(&self.counters.publish_retries, retries);
                        Counters::inc(&self.counters.published);
                        Ok(())
                    }
                    Err((failure, retries)) => {
                        Counters::add(&self.counters.publish_retries, retries);
                        let error = match failure {
                            PublishFailure::Full(reason) if !block => {
                                Counters::inc(&self.counters.rejected);
                                NatsError::Rejected {
                                    kernel: self.kernel.clone(),
                                    reason: format!("its JetStream input stream is full: {reason}"),
                                }
                            }
                            PublishFailure::Full(reason) | PublishFailure::Transient(reason) => {
                                tracing::debug!(kernel = %self.kernel, %reason, "JetStream send gave up");
                                NatsError::Timeout {
                                    kernel: self.kernel.clone(),
                                    operation: "send to",
                                    after: self.send_timeout,
                                }
                            }
                            PublishFailure::Fatal(reason) => NatsError::Publish { subject, reason },
                        };
                        Err(RemoteSendError::new(msg, error))
                    }
                }
            }
        }
    }

    async fn call(&self, request: In, timeout: Duration) -> Result<Out, NatsError> {
        Counters::inc(&self.counters.calls);
        let started = Instant::now();
        let result = self.call_inner(request, timeout).await;
        match &result {
            Ok(_) => {
                Counters::inc(&self.counters.call_replies);
                self.counters.call_latency.record(started.elapsed());
            }
            Err(NatsError::Timeout { .. } | NatsError::Disconnected { .. } | NatsError::RemoteUnavailable { .. }) => {
                Counters::inc(&self.counters.call_timeouts)
            }
            Err(_) => Counters::inc(&self.counters.call_errors),
        }
        result
    }

    async fn call_inner(&self, request: In, timeout: Duration) -> Result<Out, NatsError> {
        let deadline = tokio::time::Instant::now() + timeout;
        if self.node.conn.state() != crate::node::ConnectionState::Connected {
            return Err(NatsError::Disconnected {
                kernel: self.kernel.clone(),
                operation: "call",
            });
        }
        let key = request.message_id().simple().to_string();
        let reply_subject = format!("{}.{key}", self.inbox);
        let (tx, rx) = oneshot::channel();
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), tx);
        let _slot = SlotGuard {
            calls: &self.calls,
            key,
        };
        let mut health = self.health_changed.subscribe();
        let timed_out = || NatsError::Timeout {
            kernel: self.kernel.clone(),
            operation: "call",
            after: timeout,
        };
        let send = self.send(request, Some(&reply_subject));
        match tokio::time::timeout_at(deadline, send).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(())) => {}
        }
        let lost = self.node.conn.lost();
        tokio::pin!(lost);
        tokio::pin!(rx);
        loop {
            tokio::select! {
                biased;
                r = &mut rx => return r.unwrap_or(Err(NatsError::Closed)),
                () = tokio::time::sleep_until(deadline) => return Err(timed_out()),
                () = &mut lost => return Err(NatsError::Disconnected { kernel: self.kernel.clone(), operation: "call" }),
                changed = health.changed() => {
                    if changed.is_err() {
                        return Err(NatsError::Closed);
                    }
                    if let Some(e) = self.health_error("call") {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Opens a receiver of the kernel's outputs; `durable` names the
    /// JetStream consumer (one per receiving node or link).
    pub(crate) async fn open_receiver(&self, durable: &str) -> Result<Receiver, NatsError> {
        match self.jetstream() {
            None => {
                let subject = self.subjects.output();
                let sub = self
                    .node
                    .client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| NatsError::Subscribe {
                        subject,
                        reason: e.to_string(),
                    })?;
                Ok(Receiver::Core(sub))
            }
            Some((_, output_stream)) => {
                let name = Token::new("receiver name", durable)?;
                let stream = js::open_stream(&self.node.js, &output_stream).await?;
                let consumer = js::consumer(
                    &stream,
                    name.as_str(),
                    Duration::from_secs(30),
                    4096,
                    DeliverPolicy::New,
                )
                .await?;
                let messages = js::messages(&consumer, 256, &self.cancel)
                    .await
                    .ok_or(NatsError::Closed)?;
                Ok(Receiver::JetStream {
                    messages: Box::new(messages),
                    seen: SeenSet::new(100_000),
                })
            }
        }
    }

    /// The next usable output: decoded, sequence-tracked, de-duplicated.
    /// A payload that does not decode is counted and returned as an error.
    pub(crate) async fn next_received(&self, receiver: &mut Receiver) -> Result<Received<Out>, NatsError> {
        next_output::<Out>(&self.counters, &self.subjects.output(), receiver, &self.cancel).await
    }

    /// Acknowledges a received output (JetStream) and hands it to the caller.
    async fn hand_over(&self, r: Received<Out>) -> Result<Out, NatsError> {
        if let Some(acker) = r.acker {
            self.ack(&acker).await;
        }
        Counters::inc(&self.counters.delivered);
        Ok(r.message)
    }

    pub(crate) async fn ack(&self, acker: &async_nats::jetstream::message::Acker) {
        match acker.ack().await {
            Ok(()) => Counters::inc(&self.counters.acked),
            Err(e) => tracing::debug!(error = %e, "acknowledgement not sent"),
        }
    }

    /// Sends a control request to every replica and gathers the answers of
    /// the live ones (or what came within the call timeout).
    async fn control(&self, op: ControlOp) -> Result<Vec<ControlReply>, NatsError> {
        let expected = self.replicas().iter().filter(|r| r.alive).count().max(1);
        let inbox = self.node.client.new_inbox();
        let mut sub = self
            .node
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| NatsError::Subscribe {
                subject: inbox.clone(),
                reason: e.to_string(),
            })?;
        let request = ControlRequest {
            op,
            header: dotcompute::MessageHeader::new(),
        };
        self.node
            .client
            .publish_with_reply(self.subjects.control(), inbox, wire::encode(&request)?)
            .await
            .map_err(|e| NatsError::Publish {
                subject: self.subjects.control(),
                reason: e.to_string(),
            })?;
        let deadline = tokio::time::Instant::now() + self.call_timeout;
        let mut replies = Vec::new();
        while replies.len() < expected {
            match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(m)) if m.status == Some(StatusCode::NO_RESPONDERS) => {
                    return Err(NatsError::NotExported {
                        kernel: self.kernel.clone(),
                        subject: self.subjects.control(),
                    })
                }
                Ok(Some(m)) => match wire::decode::<ControlReply>(&m.subject, &m.payload) {
                    Ok(r) => replies.push(r),
                    Err(e) => {
                        Counters::inc(&self.counters.decode_errors);
                        tracing::warn!(error = %e, "undecodable control reply");
                    }
                },
                Ok(None) => break,
                Err(_) if !replies.is_empty() => break,
                Err(_) => {
                    return Err(NatsError::Timeout {
                        kernel: self.kernel.clone(),
                        operation: "control",
                        after: self.call_timeout,
                    })
                }
            }
        }
        Ok(replies)
    }

    fn fail_pending_calls(&self, error: &NatsError) {
        let slots: Vec<CallSlot<Out>> = self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in slots {
            let _ = s.send(Err(error.clone()));
        }
    }
}

/// Takes the next usable output from `receiver` (shared by handles and links).
pub(crate) async fn next_output<Out: WireMessage>(
    counters: &Counters,
    subject: &str,
    receiver: &mut Receiver,
    cancel: &CancellationToken,
) -> Result<Received<Out>, NatsError> {
    loop {
        match receiver {
            Receiver::Core(sub) => {
                let m = tokio::select! {
                    m = sub.next() => m.ok_or(NatsError::Closed)?,
                    () = cancel.cancelled() => return Err(NatsError::Closed),
                };
                Counters::inc(&counters.received);
                if let Some((publisher, seq)) = wire::read_sequence(m.headers.as_ref()) {
                    if counters.record_sequence(&publisher.simple().to_string(), seq) == Seen::Duplicate {
                        Counters::inc(&counters.duplicates);
                        continue;
                    }
                }
                return match wire::decode::<Out>(subject, &m.payload) {
                    Ok(message) => Ok(Received { message, acker: None }),
                    Err(e) => {
                        Counters::inc(&counters.decode_errors);
                        Err(e)
                    }
                };
            }
            Receiver::JetStream { messages, seen } => {
                let next = tokio::select! {
                    m = messages.next() => m,
                    () = cancel.cancelled() => return Err(NatsError::Closed),
                };
                let jm = match next {
                    None => return Err(NatsError::Closed),
                    Some(Err(e)) => {
                        tracing::debug!(error = %js::error_text(&e), "output consumer hiccup; retrying");
                        continue;
                    }
                    Some(Ok(jm)) => jm,
                };
                Counters::inc(&counters.received);
                if jm.info().is_ok_and(|i| i.delivered > 1) {
                    Counters::inc(&counters.redelivered);
                }
                let (m, acker) = jm.split();
                let message = match wire::decode::<Out>(subject, &m.payload) {
                    Ok(message) => message,
                    Err(e) => {
                        Counters::inc(&counters.decode_errors);
                        // Undecodable: never redelivered.
                        if acker.ack_with(async_nats::jetstream::AckKind::Term).await.is_ok() {
                            Counters::inc(&counters.terminated);
                        }
                        return Err(e);
                    }
                };
                if let Some((publisher, seq)) = wire::read_sequence(m.headers.as_ref()) {
                    counters.record_sequence(&publisher.simple().to_string(), seq);
                }
                if !seen.insert(message.message_id()) {
                    Counters::inc(&counters.duplicates);
                    if acker.ack().await.is_ok() {
                        Counters::inc(&counters.acked);
                    }
                    continue;
                }
                return Ok(Received {
                    message,
                    acker: Some(acker),
                });
            }
        }
    }
}

/// Removes a call's slot when the call ends, however it ends.
struct SlotGuard<'a, Out> {
    calls: &'a Mutex<HashMap<String, CallSlot<Out>>>,
    key: String,
}

impl<Out> Drop for SlotGuard<'_, Out> {
    fn drop(&mut self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

/// Asks the kernel's control subject to describe it, waiting up to `wait`
/// for an exporter to appear.
async fn describe(node: &NodeShared, subjects: &KernelSubjects, wait: Duration) -> Result<Description, NatsError> {
    let until = Instant::now() + wait;
    let request = ControlRequest {
        op: ControlOp::Describe,
        header: dotcompute::MessageHeader::new(),
    };
    let payload = wire::encode(&request)?;
    loop {
        let attempt = node.client.request(subjects.control(), payload.clone()).await;
        match attempt {
            Ok(m) => {
                let reply: ControlReply = wire::decode(&m.subject, &m.payload)?;
                return match reply.answer {
                    Ok(ControlAnswer::Described(d)) => Ok(d),
                    Ok(_) => Err(NatsError::Remote {
                        kernel: subjects.kernel().to_string(),
                        node: sanitize_peer_text(&reply.replica.node),
                        error: "answered Describe with something else".into(),
                    }),
                    Err(e) => Err(NatsError::Remote {
                        kernel: subjects.kernel().to_string(),
                        node: sanitize_peer_text(&reply.replica.node),
                        error: sanitize_peer_text(&e),
                    }),
                };
            }
            Err(e) => {
                let no_one = matches!(e.kind(), async_nats::RequestErrorKind::NoResponders);
                if !no_one && !matches!(e.kind(), async_nats::RequestErrorKind::TimedOut) {
                    return Err(NatsError::Publish {
                        subject: subjects.control(),
                        reason: e.to_string(),
                    });
                }
                if Instant::now() >= until {
                    return Err(NatsError::NotExported {
                        kernel: subjects.kernel().to_string(),
                        subject: subjects.control(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Routes each reply on the handle's inbox to its pending call.
async fn dispatch_replies<In: WireMessage, Out: WireMessage>(shared: Arc<RemoteShared<In, Out>>, mut sub: Subscriber) {
    loop {
        let m = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => return },
            () = shared.cancel.cancelled() => return,
        };
        let key = m.subject.as_str().rsplit('.').next().unwrap_or_default().to_string();
        let slot = shared.calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        let Some(slot) = slot else {
            Counters::inc(&shared.counters.late_replies);
            continue;
        };
        Counters::inc(&shared.counters.received);
        let result = if m.status == Some(StatusCode::NO_RESPONDERS) {
            Err(NatsError::NoResponders {
                kernel: shared.kernel.clone(),
                subject: shared.subjects.input(),
            })
        } else if wire::holds::<ErrorReply>(&m.payload) {
            wire::decode::<ErrorReply>(&m.subject, &m.payload).and_then(|e| Err(e.into_error()))
        } else {
            wire::decode::<Out>(&m.subject, &m.payload)
        };
        if let Err(e) = &result {
            if wire::decode_error_of(e).is_some() {
                Counters::inc(&shared.counters.decode_errors);
            }
        }
        let _ = slot.send(result);
    }
}

/// Keeps the replica table from heartbeats and fails pending calls when the
/// kernel stops serving.
async fn watch_replicas<In: WireMessage, Out: WireMessage>(shared: Arc<RemoteShared<In, Out>>, mut sub: Subscriber) {
    let liveness = shared.node.options.liveness_timeout;
    let mut tick = tokio::time::interval((liveness / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Health::Serving;
    loop {
        tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { return };
                match wire::decode::<Heartbeat>(&m.subject, &m.payload) {
                    Ok(hb) => {
                        let mut map = shared.replicas.lock().unwrap_or_else(|p| p.into_inner());
                        map.insert(hb.replica.replica, ReplicaEntry {
                            node: sanitize_peer_text(&hb.replica.node),
                            state: hb.state,
                            failure: hb.failure.map(|f| sanitize_peer_text(&f)),
                            processed: hb.processed,
                            transport: hb.transport,
                            last_seen: Instant::now(),
                            leaving: hb.leaving,
                        });
                    }
                    Err(e) => {
                        Counters::inc(&shared.counters.decode_errors);
                        tracing::warn!(error = %e, "undecodable heartbeat");
                        continue;
                    }
                }
            }
            _ = tick.tick() => {}
            () = shared.cancel.cancelled() => return,
        }
        let health = shared.health();
        if health != last {
            if let Some(e) = shared.health_error("call") {
                shared.fail_pending_calls(&e);
            }
            last = health;
            shared.health_changed.send_modify(|v| *v += 1);
        }
    }
}
