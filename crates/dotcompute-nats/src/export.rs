//! Serving a local kernel to other runtimes.
//!
//! An export runs four tasks beside the kernel:
//! - **input**: takes messages off NATS (a subscription in core delivery, the
//!   stream's shared consumer in JetStream delivery), decodes them and sends
//!   them into the kernel's input with its own backpressure strategy;
//! - **output**: takes every output of the kernel; one that answers a remote
//!   `call` goes to that caller's reply subject, the others to the kernel's
//!   output subject (or stream);
//! - **control**: answers describe / telemetry / deactivate / reactivate;
//! - **heartbeat**: publishes the replica's state and counters every
//!   interval, at once when the kernel ends, and a last "leaving" one when
//!   the export stops.
//!
//! Invariants:
//! - JetStream: a message is acknowledged only after the kernel processed
//!   it (its [`Receipt`](dotcompute::Receipt) resolved — also when the
//!   handler failed on it: it would fail again, and the failure is reported
//!   by the kernel's state); one the kernel could not take, or that was
//!   still queued when the kernel ended, is negatively acknowledged
//!   (redelivered, maybe to another replica); one that does not decode is
//!   terminated (never redelivered); a redelivered copy of a message
//!   already processed here is acknowledged without being processed again;
//! - every pending `call` gets an answer: the reply, or an [`ErrorReply`]
//!   when the kernel refused the request, could not decode it, or ended;
//! - when the kernel ends the export stops taking input (other replicas, or
//!   the stream, keep it) and says so in its heartbeat.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::AckKind;
use async_nats::Subscriber;
use dotcompute::{KernelHandle, KernelState};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::NatsError;
use crate::jetstream::{self as js, StreamSpec, REPLICAS_CONSUMER};
use crate::node::NodeShared;
use crate::options::{Delivery, ExportOptions, JetStreamOptions};
use crate::outlet::{Outlet, Sink, Slot};
use crate::subject::{KernelSubjects, Token};
use crate::telemetry::{Counters, EndpointTelemetry, Role};
use crate::track::{Seen, SeenSet};
use crate::wire::{
    self, ControlAnswer, ControlOp, ControlReply, ControlRequest, Description, ErrorKind, Heartbeat, ReplicaId,
    ReplicaTelemetry, WireDelivery, WireMessage, HEADER_MSG_ID, HEADER_REPLY,
};

/// A kernel served over NATS. It keeps serving when this handle is
/// dropped, until [`stop`](Self::stop) or the node is closed.
pub struct Export {
    kernel: String,
    replica: ReplicaId,
    subjects: KernelSubjects,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("kernel", &self.kernel)
            .field("replica", &self.replica)
            .finish()
    }
}

impl Export {
    /// The kernel's id.
    pub fn kernel_id(&self) -> &str {
        &self.kernel
    }

    /// This replica's id.
    pub fn replica(&self) -> &ReplicaId {
        &self.replica
    }

    /// The kernel's subjects.
    pub fn subjects(&self) -> &KernelSubjects {
        &self.subjects
    }

    /// This export's transport counters.
    pub fn telemetry(&self) -> EndpointTelemetry {
        self.counters.snapshot()
    }

    /// Stops serving: unsubscribes, publishes a last "leaving" heartbeat,
    /// and waits for the tasks to end. The kernel itself keeps running.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(self.tasks)).await;
    }
}

/// Where an export's input comes from.
enum Input {
    Core(Subscriber),
    JetStream(Box<async_nats::jetstream::consumer::PullConsumer>),
}

/// What the export's tasks share.
struct Ctx<In, Out> {
    node: NodeShared,
    kernel: String,
    handle: KernelHandle<In, Out>,
    subjects: KernelSubjects,
    replica: ReplicaId,
    description: Description,
    counters: Arc<Counters>,
    outlet: Arc<Outlet<Out>>,
    state_changed: Notify,
    output_publisher: Uuid,
    output_seq: AtomicU64,
    jetstream: Option<JetStreamOptions>,
    cancel: CancellationToken,
}

pub(crate) async fn start<In: WireMessage, Out: WireMessage>(
    node: &NodeShared,
    kernel_id: &str,
    options: ExportOptions,
) -> Result<Export, NatsError> {
    let subjects = node.subjects(kernel_id)?;
    let group = options
        .queue_group
        .as_deref()
        .map(|g| Token::new("queue group", g))
        .transpose()?;
    let handle = node.runtime.handle::<In, Out>(kernel_id)?;
    let telemetry = node.runtime.telemetry(kernel_id)?;
    let replica = ReplicaId {
        node: node.name.to_string(),
        replica: Uuid::new_v4(),
    };
    let (delivery, input_stream) = match &options.delivery {
        Delivery::Core => (WireDelivery::Core, None),
        Delivery::JetStream(o) => {
            if o.dedup_capacity == 0 {
                return Err(NatsError::InvalidOption {
                    option: "dedup_capacity",
                    value: "0".into(),
                    reason: "must be at least 1".into(),
                });
            }
            let capacity = o.capacity.unwrap_or(telemetry.input_queue.capacity).max(1) as u64;
            let out_capacity = o.output_capacity.unwrap_or(telemetry.output_queue.capacity).max(1) as u64;
            let backpressure = o.backpressure.unwrap_or_default();
            let input = StreamSpec::input(
                subjects.input_stream(),
                subjects.input(),
                backpressure,
                capacity,
                o.storage,
                o.duplicate_window,
            );
            let output = StreamSpec::output(
                subjects.output_stream(),
                subjects.output(),
                out_capacity,
                o.storage,
                o.duplicate_window,
            );
            let stream = js::ensure_stream(&node.js, &input).await?;
            js::ensure_stream(&node.js, &output).await?;
            (
                WireDelivery::JetStream {
                    input_stream: input.name,
                    output_stream: output.name,
                    backpressure,
                    capacity,
                },
                Some((stream, capacity)),
            )
        }
    };
    let description = Description {
        kernel: kernel_id.to_string(),
        input_type: In::TYPE_NAME.to_string(),
        output_type: Out::TYPE_NAME.to_string(),
        delivery: delivery.clone(),
        queue_group: group.as_ref().map(|g| g.to_string()),
        replica: replica.clone(),
        state: handle.state(),
    };
    // Subscriptions first: a failure here leaves nothing attached.
    let subscribe = |subject: String, group: Option<String>| async move {
        let r = match group {
            Some(g) => node.client.queue_subscribe(subject.clone(), g).await,
            None => node.client.subscribe(subject.clone()).await,
        };
        r.map_err(|e| NatsError::Subscribe {
            subject,
            reason: e.to_string(),
        })
    };
    let control = subscribe(subjects.control(), None).await?;
    let input = match input_stream {
        None => Input::Core(subscribe(subjects.input(), group.as_ref().map(|g| g.to_string())).await?),
        Some((stream, capacity)) => {
            let ack_wait = match &options.delivery {
                Delivery::JetStream(o) => o.ack_wait,
                _ => Duration::from_secs(30),
            };
            Input::JetStream(Box::new(
                js::consumer(&stream, REPLICAS_CONSUMER, ack_wait, capacity, DeliverPolicy::All).await?,
            ))
        }
    };

    let counters = Arc::new(Counters::new(Role::Export, kernel_id, delivery.name(), group.is_none()));
    let sink = Arc::new(ExportSink::<In, Out> {
        ctx: std::sync::OnceLock::new(),
    });
    let outlet = Outlet::attach(node, kernel_id, Slot::Export, sink.clone())?;
    node.registry.add_counters(&counters, true);
    outlet.count_replies_in(counters.clone());
    let cancel = node.shutdown.child_token();
    let ctx = Arc::new(Ctx {
        node: node.clone(),
        kernel: kernel_id.to_string(),
        handle,
        subjects: subjects.clone(),
        replica: replica.clone(),
        description,
        counters: counters.clone(),
        outlet,
        state_changed: Notify::new(),
        output_publisher: Uuid::new_v4(),
        output_seq: AtomicU64::new(0),
        jetstream: match options.delivery {
            Delivery::JetStream(o) => Some(o),
            _ => None,
        },
        cancel: cancel.clone(),
    });
    let _ = sink.ctx.set(Arc::downgrade(&ctx));
    ctx.outlet.start();
    let detach = ctx.clone();
    tokio::spawn(async move {
        detach.cancel.cancelled().await;
        detach.outlet.detach(Slot::Export);
    });

    let mut tasks = Vec::new();
    match input {
        Input::Core(sub) => tasks.push(tokio::spawn(core_input(ctx.clone(), sub))),
        Input::JetStream(consumer) => tasks.push(tokio::spawn(jetstream_input(ctx.clone(), *consumer))),
    }
    tasks.push(tokio::spawn(serve_control(ctx.clone(), control)));
    let heartbeat = tokio::spawn(heartbeat(ctx.clone()));
    node.registry.add_task(heartbeat);
    // Make the new replica known at once (callers wait for a heartbeat).
    ctx.state_changed.notify_one();
    tracing::info!(kernel = %kernel_id, node = %node.name, delivery = %ctx.description.delivery.name(), "kernel exported");
    Ok(Export {
        kernel: kernel_id.to_string(),
        replica,
        subjects,
        counters,
        cancel,
        tasks,
    })
}

impl<In: WireMessage, Out: WireMessage> Ctx<In, Out> {
    fn is_ended(&self) -> bool {
        self.outlet.ended().is_some()
    }

    fn failure_text(&self) -> Option<String> {
        match self.outlet.ended() {
            Some(dotcompute::Error::KernelFailed { error, .. }) => Some(error.to_string()),
            _ => None,
        }
    }
}

/// The export's side of the outlet: outputs that answer no call go to the
/// output subject (or stream); the kernel's end is told in a heartbeat.
struct ExportSink<In, Out> {
    ctx: std::sync::OnceLock<std::sync::Weak<Ctx<In, Out>>>,
}

impl<In: WireMessage, Out: WireMessage> ExportSink<In, Out> {
    fn ctx(&self) -> Option<Arc<Ctx<In, Out>>> {
        self.ctx.get().and_then(std::sync::Weak::upgrade)
    }
}

impl<In: WireMessage, Out: WireMessage> Sink<Out> for ExportSink<In, Out> {
    fn deliver(&self, msg: Out) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(ctx) = self.ctx() {
                publish_output(&ctx, msg).await;
            }
        })
    }

    fn ended(&self, _error: &dotcompute::Error) {
        if let Some(ctx) = self.ctx() {
            ctx.state_changed.notify_one();
        }
    }
}

/// Core delivery: one subscription (in the queue group, if replicated).
async fn core_input<In: WireMessage, Out: WireMessage>(ctx: Arc<Ctx<In, Out>>, mut sub: Subscriber) {
    loop {
        let m = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            () = ctx.cancel.cancelled() => break,
        };
        Counters::inc(&ctx.counters.received);
        if let Some((publisher, seq)) = wire::read_sequence(m.headers.as_ref()) {
            if ctx.counters.record_sequence(&publisher.simple().to_string(), seq) == Seen::Duplicate {
                Counters::inc(&ctx.counters.duplicates);
                continue;
            }
        }
        let reply = m.reply.as_ref().map(|r| r.to_string());
        let msg = match wire::decode::<In>(&m.subject, &m.payload) {
            Ok(msg) => msg,
            Err(e) => {
                Counters::inc(&ctx.counters.decode_errors);
                tracing::warn!(kernel = %ctx.kernel, error = %e, "undecodable input");
                if let Some(reply) = reply {
                    ctx.outlet
                        .reply_error(&reply, None, ErrorKind::Undecodable, e.to_string())
                        .await;
                }
                continue;
            }
        };
        let id = msg.message_id();
        if let Some(reply) = &reply {
            ctx.outlet.expect_reply(id, reply.clone());
        }
        let sent = tokio::select! {
            r = ctx.handle.send(msg) => r.map_err(dotcompute::Error::from),
            () = ctx.cancel.cancelled() => break,
        };
        match sent {
            Ok(()) => Counters::inc(&ctx.counters.delivered),
            Err(e) => {
                Counters::inc(&ctx.counters.rejected);
                tracing::debug!(kernel = %ctx.kernel, error = %e, "the kernel refused a message");
                if let Some(reply) = reply {
                    ctx.outlet.forget_reply(&id);
                    ctx.outlet
                        .reply_error(&reply, Some(id), wire::error_kind(&e), e.to_string())
                        .await;
                }
            }
        }
    }
    let _ = sub.unsubscribe().await;
}

/// What became of one message handed to the kernel (JetStream delivery).
struct Handled {
    id: Uuid,
    acker: async_nats::jetstream::message::Acker,
    result: Result<(), dotcompute::Error>,
}

/// JetStream delivery: the input stream's shared consumer; acknowledge after
/// processing.
async fn jetstream_input<In: WireMessage, Out: WireMessage>(
    ctx: Arc<Ctx<In, Out>>,
    consumer: async_nats::jetstream::consumer::PullConsumer,
) {
    let options = ctx.jetstream.clone().unwrap_or_default();
    let stream_source = format!("stream:{}", ctx.subjects.input_stream());
    let mut seen = SeenSet::new(options.dedup_capacity);
    let mut in_flight: HashSet<Uuid> = HashSet::new();
    let mut handled = FuturesUnordered::new();
    let max_in_flight = ctx.handle_capacity();
    // Pull no further ahead than the kernel can hold: what is not yet
    // delivered stays in the stream (for other replicas, and for the
    // stream's limits to act on).
    let Some(mut messages) = js::messages(&consumer, max_in_flight, &ctx.cancel).await else {
        return;
    };
    loop {
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => break,
            Some(done) = handled.next(), if !handled.is_empty() => {
                let Handled { id, acker, result } = done;
                in_flight.remove(&id);
                settle(&ctx, &mut seen, id, &acker, result).await;
            }
            next = messages.next(), if handled.len() < max_in_flight && !ctx.is_ended() => {
                let jm = match next {
                    None => {
                        // The stream of pull requests ended: open it again.
                        match js::messages(&consumer, max_in_flight, &ctx.cancel).await {
                            Some(m) => { messages = m; continue; }
                            None => break,
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(kernel = %ctx.kernel, error = %js::error_text(&e), "input consumer hiccup");
                        continue;
                    }
                    Some(Ok(jm)) => jm,
                };
                Counters::inc(&ctx.counters.received);
                if let Ok(info) = jm.info() {
                    if info.delivered > 1 {
                        Counters::inc(&ctx.counters.redelivered);
                    }
                    // A jump in the stream's sequence is what discard-old
                    // evicted before delivery (a sole consumer sees every
                    // message; replicas count across their heartbeats).
                    if let Seen::New { gap } = ctx.counters.record_stream_sequence(&stream_source, info.stream_sequence) {
                        if gap > 0 && ctx.counters.sole_receiver {
                            Counters::add(&ctx.counters.dropped, gap);
                            ctx.handle.record_transport_drops(gap);
                        }
                    }
                }
                let reply = wire::header(jm.headers.as_ref(), HEADER_REPLY).map(str::to_string);
                let (m, acker) = jm.split();
                let msg = match wire::decode::<In>(&m.subject, &m.payload) {
                    Ok(msg) => msg,
                    Err(e) => {
                        Counters::inc(&ctx.counters.decode_errors);
                        tracing::warn!(kernel = %ctx.kernel, error = %e, "undecodable input; terminated");
                        if acker.ack_with(AckKind::Term).await.is_ok() {
                            Counters::inc(&ctx.counters.terminated);
                        }
                        if let Some(reply) = reply {
                            ctx.outlet.reply_error(&reply, None, ErrorKind::Undecodable, e.to_string()).await;
                        }
                        continue;
                    }
                };
                let id = msg.message_id();
                if wire::header(m.headers.as_ref(), HEADER_MSG_ID).is_some_and(|h| h != id.simple().to_string()) {
                    tracing::debug!(kernel = %ctx.kernel, "Nats-Msg-Id differs from the message id");
                }
                if seen.contains(&id) {
                    // Processed here already; its acknowledgement was lost.
                    Counters::inc(&ctx.counters.duplicates);
                    if acker.ack().await.is_ok() {
                        Counters::inc(&ctx.counters.acked);
                    }
                    continue;
                }
                if in_flight.contains(&id) {
                    // Redelivered while the first copy is still being
                    // handled: that copy's acknowledgement settles it.
                    Counters::inc(&ctx.counters.duplicates);
                    continue;
                }
                if let Some(reply) = &reply {
                    ctx.outlet.expect_reply(id, reply.clone());
                }
                let sent = tokio::select! {
                    r = ctx.handle.send_tracked(msg) => r,
                    () = ctx.cancel.cancelled() => break,
                };
                match sent {
                    Ok(receipt) => {
                        Counters::inc(&ctx.counters.delivered);
                        in_flight.insert(id);
                        handled.push(async move {
                            let result = receipt.await;
                            Handled { id, acker, result }
                        });
                    }
                    Err(e) => {
                        // Not taken: the stream keeps it for later or for
                        // another replica.
                        Counters::inc(&ctx.counters.rejected);
                        ctx.outlet.forget_reply(&id);
                        let delay = Duration::from_millis(100);
                        if acker.ack_with(AckKind::Nak(Some(delay))).await.is_ok() {
                            Counters::inc(&ctx.counters.nacked);
                        }
                        tracing::debug!(kernel = %ctx.kernel, error = %e, "the kernel refused a message; redelivery asked");
                    }
                }
            }
        }
    }
    // Messages being handled when the export stops: their receipts settle
    // them if they come quickly, else the server redelivers after ack_wait.
    let drain = async {
        while let Some(Handled { id, acker, result }) = handled.next().await {
            settle(&ctx, &mut seen, id, &acker, result).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

async fn settle<In: WireMessage, Out: WireMessage>(
    ctx: &Ctx<In, Out>,
    seen: &mut SeenSet,
    id: Uuid,
    acker: &async_nats::jetstream::message::Acker,
    result: Result<(), dotcompute::Error>,
) {
    match result {
        Ok(()) => {
            // Processed (also when the handler failed on it: it would fail
            // again, and the failure is reported by the kernel's state).
            seen.insert(id);
            if acker.ack().await.is_ok() {
                Counters::inc(&ctx.counters.acked);
            }
        }
        Err(_) => {
            // Still queued when the kernel ended: another replica (or this
            // kernel once restarted) gets it.
            if acker.ack_with(AckKind::Nak(None)).await.is_ok() {
                Counters::inc(&ctx.counters.nacked);
            }
        }
    }
}

impl<In: WireMessage, Out: WireMessage> Ctx<In, Out> {
    /// Messages handed to the kernel and not yet settled, at most.
    fn handle_capacity(&self) -> usize {
        self.node
            .runtime
            .telemetry(&self.kernel)
            .map(|t| t.input_queue.capacity)
            .unwrap_or(1024)
            .max(1)
    }
}

/// Publishes an output that answers no call.
async fn publish_output<In: WireMessage, Out: WireMessage>(ctx: &Ctx<In, Out>, msg: Out) {
    let payload = match wire::encode(&msg) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(kernel = %ctx.kernel, error = %e, "cannot encode an output; dropped (counted as rejected)");
            Counters::inc(&ctx.counters.rejected);
            return;
        }
    };
    // Only the outlet's one task publishes outputs, so the numbers go out
    // in order (receivers count a reordered one below their first as a
    // duplicate).
    let seq = ctx.output_seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut headers = wire::sequence_headers(&ctx.output_publisher, seq);
    let subject = ctx.subjects.output();
    if ctx.jetstream.is_none() {
        if ctx
            .node
            .client
            .publish_with_headers(subject, headers, payload)
            .await
            .is_ok()
        {
            Counters::inc(&ctx.counters.published);
        }
        return;
    }
    // JetStream: wait for room (the kernel's output queue backs up meanwhile).
    headers.insert(HEADER_MSG_ID, msg.message_id().simple().to_string().as_str());
    match js::publish_retrying(&ctx.node.js, &subject, &headers, &payload, true, None, &ctx.cancel).await {
        Ok(retries) => {
            Counters::add(&ctx.counters.publish_retries, retries);
            Counters::inc(&ctx.counters.published);
        }
        Err((failure, retries)) => {
            Counters::add(&ctx.counters.publish_retries, retries);
            Counters::inc(&ctx.counters.rejected);
            tracing::warn!(kernel = %ctx.kernel, failure = ?failure, "an output could not be stored");
        }
    }
}

/// Answers control requests (every replica answers).
async fn serve_control<In: WireMessage, Out: WireMessage>(ctx: Arc<Ctx<In, Out>>, mut sub: Subscriber) {
    loop {
        let m = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            () = ctx.cancel.cancelled() => break,
        };
        let Some(reply) = m.reply.clone() else { continue };
        let answer = match wire::decode::<ControlRequest>(&m.subject, &m.payload) {
            Err(e) => {
                Counters::inc(&ctx.counters.decode_errors);
                Err(e.to_string())
            }
            Ok(req) => control_answer(&ctx, req.op).await,
        };
        let reply_msg = ControlReply {
            replica: ctx.replica.clone(),
            answer,
            header: dotcompute::MessageHeader::new(),
        };
        if let Ok(payload) = wire::encode(&reply_msg) {
            let _ = ctx.node.client.publish(reply, payload).await;
        }
    }
    let _ = sub.unsubscribe().await;
}

async fn control_answer<In: WireMessage, Out: WireMessage>(
    ctx: &Ctx<In, Out>,
    op: ControlOp,
) -> Result<ControlAnswer, String> {
    let rt = &ctx.node.runtime;
    match op {
        ControlOp::Describe => {
            let mut d = ctx.description.clone();
            d.state = ctx.handle.state();
            Ok(ControlAnswer::Described(d))
        }
        ControlOp::Telemetry => {
            let kernel = rt.telemetry(&ctx.kernel).map_err(|e| e.to_string())?;
            Ok(ControlAnswer::Telemetry(Box::new(ReplicaTelemetry {
                replica: ctx.replica.clone(),
                kernel: kernel.into(),
                transport: ctx.counters.snapshot(),
            })))
        }
        ControlOp::Deactivate => {
            rt.deactivate(&ctx.kernel).map_err(|e| e.to_string())?;
            ctx.state_changed.notify_one();
            Ok(ControlAnswer::State(ctx.handle.state()))
        }
        ControlOp::Reactivate => {
            rt.reactivate(&ctx.kernel).map_err(|e| e.to_string())?;
            ctx.state_changed.notify_one();
            Ok(ControlAnswer::State(ctx.handle.state()))
        }
    }
}

/// Publishes the replica's heartbeat every interval, at once on a state
/// change, and a last one (leaving) when the export stops.
async fn heartbeat<In: WireMessage, Out: WireMessage>(ctx: Arc<Ctx<In, Out>>) {
    let mut tick = tokio::time::interval(ctx.node.options.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = ctx.cancel.cancelled() => {
                publish_heartbeat(&ctx, true).await;
                let _ = tokio::time::timeout(Duration::from_millis(500), ctx.node.client.flush()).await;
                return;
            }
            _ = tick.tick() => publish_heartbeat(&ctx, false).await,
            () = ctx.state_changed.notified() => publish_heartbeat(&ctx, false).await,
        }
    }
}

async fn publish_heartbeat<In: WireMessage, Out: WireMessage>(ctx: &Ctx<In, Out>, leaving: bool) {
    let state = ctx.handle.state();
    let processed = ctx
        .node
        .runtime
        .telemetry(&ctx.kernel)
        .map(|t| t.messages_processed)
        .unwrap_or_default();
    let hb = Heartbeat {
        replica: ctx.replica.clone(),
        state,
        failure: if state == KernelState::Failed {
            ctx.failure_text()
        } else {
            None
        },
        leaving,
        processed,
        transport: ctx.counters.snapshot(),
        header: dotcompute::MessageHeader::new(),
    };
    match wire::encode(&hb) {
        Ok(payload) => {
            let _ = ctx.node.client.publish(ctx.subjects.heartbeat(), payload).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot encode a heartbeat"),
    }
}
