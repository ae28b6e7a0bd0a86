//! Links between a local kernel and a remote one, so a pipeline spans
//! processes without host code in between.
//!
//! - **to a remote kernel**: a task takes every output of the local kernel
//!   and sends it to the remote kernel's input. It takes the next output
//!   only once the previous one was sent, so a slow or full remote side
//!   backs up the local kernel's output queue and, through its `Block`
//!   output strategy, the local handler — the same backpressure as a local
//!   link;
//! - **from a remote kernel**: a receiver of the remote kernel's outputs
//!   sends each into the local kernel's input (JetStream: acknowledged once
//!   the local kernel processed it).
//!
//! Invariants: a message is never dropped silently. A send the remote side
//! cannot take for now (disconnected, unavailable, a full `Block` stream) is
//! retried until it goes through or the link stops; one it refuses for good
//! (a full `Reject` stream, an encoding failure) is counted as rejected. A
//! link ends when its local kernel ends, when it is stopped, or when the
//! node closes.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::NatsError;
use crate::node::NodeShared;
use crate::outlet::{Outlet, Sink, Slot};
use crate::remote::{next_output, Receiver, RemoteHandle};
use crate::subject::Token;
use crate::telemetry::{Counters, EndpointTelemetry, Role};
use crate::wire::WireMessage;

/// A running link. It keeps running when this handle is dropped, until
/// [`stop`](Self::stop), its local kernel ends, or the node is closed.
pub struct Link {
    description: String,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("link", &self.description).finish()
    }
}

impl Link {
    /// `"local -> remote"`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The link's counters.
    pub fn telemetry(&self) -> EndpointTelemetry {
        self.counters.snapshot()
    }

    /// Whether the link still runs.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the link and waits for its task.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

pub(crate) async fn to_remote<M: WireMessage, R: WireMessage>(
    node: &NodeShared,
    local: &str,
    remote: &RemoteHandle<M, R>,
) -> Result<Link, NatsError> {
    Token::new("kernel id", local)?;
    check_local_output::<M>(node, local)?;
    let description = format!("{local} -> {}", remote.kernel_id());
    let counters = Arc::new(Counters::new(
        Role::LinkOut,
        description.clone(),
        remote.delivery(),
        true,
    ));
    let cancel = node.shutdown.child_token();
    let sink = Arc::new(LinkSink {
        remote: remote.clone(),
        local: local.to_string(),
        counters: counters.clone(),
        cancel: cancel.clone(),
    });
    // The outlet takes the local kernel's outputs (also when it is exported:
    // replies to remote calls still go to their callers).
    let outlet = Outlet::attach(node, local, Slot::Link, sink)?;
    outlet.start();
    node.registry.add_counters(&counters, true);
    let watch = cancel.clone();
    let task = tokio::spawn(async move {
        watch.cancelled().await;
        outlet.detach(Slot::Link);
    });
    tracing::info!(link = %description, "kernels linked across NATS");
    Ok(Link {
        description,
        counters,
        cancel,
        task,
    })
}

/// The local kernel must exist and output `M` (checked before any message
/// is taken).
fn check_local_output<M: WireMessage>(node: &NodeShared, local: &str) -> Result<(), NatsError> {
    let (_, output) = node.runtime.message_types(local)?;
    let wanted = std::any::type_name::<M>();
    if output != wanted {
        return Err(NatsError::Kernel(dotcompute::Error::TypeMismatch {
            kernel: local.to_string(),
            context: "link",
            expected: output,
            found: wanted,
        }));
    }
    Ok(())
}

/// The local kernel must exist and take `M` as its input.
fn check_local_input<M: WireMessage>(node: &NodeShared, local: &str) -> Result<(), NatsError> {
    let (input, _) = node.runtime.message_types(local)?;
    let wanted = std::any::type_name::<M>();
    if input != wanted {
        return Err(NatsError::Kernel(dotcompute::Error::TypeMismatch {
            kernel: local.to_string(),
            context: "link",
            expected: input,
            found: wanted,
        }));
    }
    Ok(())
}

/// Sends a local kernel's outputs to a remote kernel (see the module doc).
struct LinkSink<M, R> {
    remote: RemoteHandle<M, R>,
    local: String,
    counters: Arc<Counters>,
    cancel: CancellationToken,
}

impl<M: WireMessage, R: WireMessage> Sink<M> for LinkSink<M, R> {
    fn deliver(&self, msg: M) -> BoxFuture<'_, ()> {
        Box::pin(self.forward(msg))
    }

    fn ended(&self, error: &dotcompute::Error) {
        tracing::info!(kernel = %self.local, error = %error, "link source ended");
        self.cancel.cancel();
    }
}

impl<M: WireMessage, R: WireMessage> LinkSink<M, R> {
    async fn forward(&self, mut msg: M) {
        let counters = &self.counters;
        Counters::inc(&counters.received);
        let mut pause = Duration::from_millis(5);
        loop {
            match self.remote.send(msg).await {
                Ok(()) => {
                    Counters::inc(&counters.published);
                    Counters::inc(&counters.delivered);
                    return;
                }
                Err(e) => {
                    let (m, error) = e.into_parts();
                    match error {
                        NatsError::Rejected { .. } | NatsError::Encode(_) | NatsError::Publish { .. } => {
                            Counters::inc(&counters.rejected);
                            tracing::warn!(kernel = %self.local, error = %error, "a linked message was refused");
                            return;
                        }
                        _ => {
                            // Unavailable for now: try again (the local
                            // kernel's output backs up meanwhile).
                            Counters::inc(&counters.publish_retries);
                            tracing::debug!(kernel = %self.local, error = %error, "link target unavailable; retrying");
                            msg = m;
                            tokio::select! {
                                () = tokio::time::sleep(pause) => {}
                                () = self.cancel.cancelled() => {
                                    Counters::inc(&counters.rejected);
                                    return;
                                }
                            }
                            pause = (pause * 2).min(Duration::from_millis(500));
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn from_remote<I: WireMessage, M: WireMessage>(
    node: &NodeShared,
    remote: &RemoteHandle<I, M>,
    local: &str,
) -> Result<Link, NatsError> {
    let local_token = Token::new("kernel id", local)?;
    check_local_input::<M>(node, local)?;
    let description = format!("{} -> {local}", remote.kernel_id());
    let durable = format!("{}-link-{}", node.name, local_token);
    let receiver = remote.shared().open_receiver(&durable).await?;
    let counters = Arc::new(Counters::new(
        Role::LinkIn,
        description.clone(),
        remote.delivery(),
        true,
    ));
    node.registry.add_counters(&counters, true);
    let cancel = node.shutdown.child_token();
    let task = tokio::spawn(pump_in(
        node.clone(),
        remote.clone(),
        receiver,
        local.to_string(),
        counters.clone(),
        cancel.clone(),
    ));
    tracing::info!(link = %description, "kernels linked across NATS");
    Ok(Link {
        description,
        counters,
        cancel,
        task,
    })
}

async fn pump_in<I: WireMessage, M: WireMessage>(
    node: NodeShared,
    remote: RemoteHandle<I, M>,
    mut receiver: Receiver,
    local: String,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) {
    let subject = remote.subjects().output();
    loop {
        let received = match next_output::<M>(&counters, &subject, &mut receiver, &cancel).await {
            Ok(r) => r,
            Err(NatsError::Closed) => return,
            Err(e) => {
                tracing::warn!(kernel = %local, error = %e, "link dropped an undecodable message (counted)");
                continue;
            }
        };
        match received.acker {
            None => {
                let sent = tokio::select! {
                    r = node.runtime.send(&local, received.message) => r.map_err(dotcompute::Error::from),
                    () = cancel.cancelled() => return,
                };
                match sent {
                    Ok(()) => Counters::inc(&counters.delivered),
                    Err(e) => {
                        Counters::inc(&counters.rejected);
                        if is_final(&e) {
                            tracing::info!(kernel = %local, error = %e, "link target ended");
                            return;
                        }
                    }
                }
            }
            Some(acker) => {
                let sent = tokio::select! {
                    r = node.runtime.send_tracked(&local, received.message) => r,
                    () = cancel.cancelled() => return,
                };
                match sent {
                    Ok(receipt) => {
                        Counters::inc(&counters.delivered);
                        let counters = counters.clone();
                        // Acknowledge once processed, without holding up the next one.
                        tokio::spawn(async move {
                            let kind = match receipt.await {
                                Ok(()) => None,
                                Err(_) => Some(async_nats::jetstream::AckKind::Nak(None)),
                            };
                            let r = match kind {
                                None => acker.ack().await,
                                Some(k) => acker.ack_with(k).await,
                            };
                            if r.is_ok() {
                                Counters::inc(if kind.is_none() {
                                    &counters.acked
                                } else {
                                    &counters.nacked
                                });
                            }
                        });
                    }
                    Err(e) => {
                        Counters::inc(&counters.rejected);
                        if acker
                            .ack_with(async_nats::jetstream::AckKind::Nak(Some(Duration::from_millis(100))))
                            .await
                            .is_ok()
                        {
                            Counters::inc(&counters.nacked);
                        }
                        if is_final(e.error()) {
                            tracing::info!(kernel = %local, error = %e.error(), "link target ended");
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn is_final(e: &dotcompute::Error) -> bool {
    matches!(
        e,
        dotcompute::Error::KernelFailed { .. }
            | dotcompute::Error::KernelTerminated { .. }
            | dotcompute::Error::KernelNotFound { .. }
            | dotcompute::Error::ShutDown
    )
}
