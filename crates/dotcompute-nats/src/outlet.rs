//! The one taker of a local kernel's outputs once the node serves it or
//! links it: replies to remote calls go back to their callers, everything
//! else to the link target if the kernel is linked, otherwise to the
//! export's output subject.
//!
//! Invariants:
//! - at most one outlet per kernel per node, so an export and a link of the
//!   same kernel never compete for its outputs;
//! - an output that answers a pending remote `call` always goes to that
//!   caller (correlation id), even when the kernel is linked;
//! - when the kernel ends, every pending call is answered with the kernel's
//!   error, and the export and link are told;
//! - once neither an export nor a link uses the outlet, it stops taking
//!   outputs (the host can receive them again);
//! - a kernel exported or linked before it is activated is waited for.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dotcompute::KernelState;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::NatsError;
use crate::node::NodeShared;
use crate::telemetry::Counters;
use crate::wire::{self, ErrorKind, ErrorReply, WireMessage};

/// How long an outlet remembers where to send a call's reply.
const REPLY_TTL: Duration = Duration::from_secs(300);
/// Most reply subjects remembered at once (the oldest is forgotten first).
const MAX_PENDING_REPLIES: usize = 100_000;

/// Where an outlet's outputs go besides call replies.
pub(crate) trait Sink<Out>: Send + Sync + 'static {
    /// Takes one output that answers no call.
    fn deliver(&self, msg: Out) -> BoxFuture<'_, ()>;
    /// The kernel ended with `error`.
    fn ended(&self, error: &dotcompute::Error);
}

/// Which user of the outlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Export,
    Link,
}

struct Sinks<Out> {
    export: Option<Arc<dyn Sink<Out>>>,
    link: Option<Arc<dyn Sink<Out>>>,
}

/// A kernel's outlet (see the module doc).
pub(crate) struct Outlet<Out> {
    node: NodeShared,
    kernel: String,
    pending: Mutex<PendingReplies>,
    sinks: Mutex<Sinks<Out>>,
    ended: Mutex<Option<dotcompute::Error>>,
    /// Where replies are counted (the export's counters).
    reply_counters: Mutex<Option<Arc<Counters>>>,
    started: std::sync::atomic::AtomicBool,
    cancel: CancellationToken,
}

/// The outlets of a node, by kernel id.
pub(crate) type Outlets = Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>;

impl<Out: WireMessage> Outlet<Out> {
    /// Attaches `sink` in `slot` to the outlet of `kernel`, creating the
    /// outlet if there is none; [`start`](Self::start) it afterwards.
    pub fn attach(
        node: &NodeShared,
        kernel: &str,
        slot: Slot,
        sink: Arc<dyn Sink<Out>>,
    ) -> Result<Arc<Outlet<Out>>, NatsError> {
        let mut outlets = node.outlets.lock().unwrap_or_else(|p| p.into_inner());
        let existing = outlets.get(kernel).cloned();
        let outlet = match existing {
            Some(any) => any.downcast::<Outlet<Out>>().map_err(|_| {
                NatsError::Kernel(dotcompute::Error::TypeMismatch {
                    kernel: kernel.to_string(),
                    context: "output",
                    expected: "the type its export or link already uses",
                    found: std::any::type_name::<Out>(),
                })
            })?,
            None => {
                let outlet = Arc::new(Outlet {
                    node: node.clone(),
                    kernel: kernel.to_string(),
                    pending: Mutex::new(PendingReplies::default()),
                    sinks: Mutex::new(Sinks {
                        export: None,
                        link: None,
                    }),
                    ended: Mutex::new(None),
                    reply_counters: Mutex::new(None),
                    started: std::sync::atomic::AtomicBool::new(false),
                    cancel: node.shutdown.child_token(),
                });
                outlets.insert(kernel.to_string(), outlet.clone());
                outlet
            }
        };
        {
            let mut sinks = outlet.sinks.lock().unwrap_or_else(|p| p.into_inner());
            let place = match slot {
                Slot::Export => &mut sinks.export,
                Slot::Link => &mut sinks.link,
            };
            if place.is_some() {
                return Err(NatsError::InvalidOption {
                    option: if slot == Slot::Export { "export" } else { "link" },
                    value: kernel.to_string(),
                    reason: format!(
                        "this node already {} kernel '{kernel}'",
                        if slot == Slot::Export { "exports" } else { "links" }
                    ),
                });
            }
            *place = Some(sink);
        }
        Ok(outlet)
    }

    /// Starts taking the kernel's outputs (once; call it when the attached
    /// sink is ready to deliver).
    pub fn start(self: &Arc<Self>) {
        if !self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            tokio::spawn(drain(self.clone()));
        }
    }

    /// Detaches the sink in `slot`; the outlet stops when none is left.
    pub fn detach(&self, slot: Slot) {
        let mut outlets = self.node.outlets.lock().unwrap_or_else(|p| p.into_inner());
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        match slot {
            Slot::Export => sinks.export = None,
            Slot::Link => sinks.link = None,
        }
        if sinks.export.is_none() && sinks.link.is_none() {
            self.cancel.cancel();
            outlets.remove(&self.kernel);
        }
    }

    /// Counts call replies in `counters`.
    pub fn count_replies_in(&self, counters: Arc<Counters>) {
        *self.reply_counters.lock().unwrap_or_else(|p| p.into_inner()) = Some(counters);
    }

    /// Remembers that the output answering message `id` goes to `subject`.
    pub fn expect_reply(&self, id: Uuid, subject: String) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, subject);
    }

    /// Forgets the reply subject of message `id`.
    pub fn forget_reply(&self, id: &Uuid) -> Option<String> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).take(id)
    }

    /// The error the kernel ended with, once it has.
    pub fn ended(&self) -> Option<dotcompute::Error> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Publishes an error answer to a call.
    pub async fn reply_error(&self, reply: &str, correlation: Option<Uuid>, kind: ErrorKind, error: String) {
        let mut header = dotcompute::MessageHeader::new();
        header.correlation_id = correlation;
        let answer = ErrorReply {
            kernel: self.kernel.clone(),
            node: self.node.name.to_string(),
            kind,
            error,
            header,
        };
        match wire::encode(&answer) {
            Ok(payload) => {
                if self.node.client.publish(reply.to_string(), payload).await.is_ok() {
                    self.count_reply();
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode an error reply"),
        }
    }

    fn count_reply(&self) {
        if let Some(c) = self.reply_counters.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Counters::inc(&c.published);
        }
    }

    fn sink(&self) -> Option<Arc<dyn Sink<Out>>> {
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks.link.clone().or_else(|| sinks.export.clone())
    }

    async fn dispatch(&self, msg: Out) {
        let reply = msg.correlation_id().and_then(|c| self.forget_reply(&c));
        if let Some(reply) = reply {
            match wire::encode(&msg) {
                Ok(payload) => {
                    if self.node.client.publish(reply, payload).await.is_ok() {
                        self.count_reply();
                    }
                }
                Err(e) => {
                    self.reply_error(&reply, msg.correlation_id(), ErrorKind::Other, e.to_string())
                        .await
                }
            }
            return;
        }
        match self.sink() {
            Some(sink) => sink.deliver(msg).await,
            None => tracing::debug!(kernel = %self.kernel, "output taken after the outlet was detached; dropped"),
        }
    }

    async fn kernel_ended(&self, error: dotcompute::Error) {
        tracing::warn!(kernel = %self.kernel, error = %error, "kernel served over NATS ended");
        let kind = wire::error_kind(&error);
        let text = error.to_string();
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).drain();
        for (id, reply) in pending {
            self.reply_error(&reply, Some(id), kind, text.clone()).await;
        }
        let sinks: Vec<Arc<dyn Sink<Out>>> = {
            let s = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
            s.export.iter().chain(s.link.iter()).cloned().collect()
        };
        for s in sinks {
            s.ended(&error);
        }
    }
}

/// The outlet's task: takes every output of the kernel until it ends or
/// the outlet stops.
async fn drain<Out: WireMessage>(outlet: Arc<Outlet<Out>>) {
    let rt = outlet.node.runtime.clone();
    loop {
        let next = tokio::select! {
            r = rt.receive::<Out>(&outlet.kernel) => r,
            () = outlet.cancel.cancelled() => return,
        };
        match next {
            Ok(msg) => outlet.dispatch(msg).await,
            // Launched but not yet activated when it was asked: its outputs
            // start later. The state in the error is the one the receive
            // saw; reading it again could find the kernel already activated
            // and take it for an ended one.
            Err(dotcompute::Error::State(e)) if e.state == KernelState::Launched => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    () = outlet.cancel.cancelled() => return,
                }
            }
            Err(e) => {
                outlet.kernel_ended(e).await;
                return;
            }
        }
    }
}

/// Where the replies to pending calls go.
#[derive(Default)]
pub(crate) struct PendingReplies {
    by_id: HashMap<Uuid, (String, Instant)>,
    order: VecDeque<(Instant, Uuid)>,
}

impl PendingReplies {
    pub fn insert(&mut self, id: Uuid, subject: String) {
        let now = Instant::now();
        self.expire(now);
        while self.by_id.len() >= MAX_PENDING_REPLIES {
            match self.order.pop_front() {
                Some((_, old)) => {
                    self.by_id.remove(&old);
                }
                None => break,
            }
        }
        self.by_id.insert(id, (subject, now));
        self.order.push_back((now, id));
    }

    pub fn take(&mut self, id: &Uuid) -> Option<String> {
        self.by_id.remove(id).map(|(s, _)| s)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, id)) = self.order.front().copied() {
            let current = self.by_id.get(&id).is_some_and(|(_, at)| *at == t);
            if !current {
                self.order.pop_front();
            } else if now.duration_since(t) > REPLY_TTL {
                self.order.pop_front();
                self.by_id.remove(&id);
            } else {
                break;
            }
        }
    }

    pub fn drain(&mut self) -> Vec<(Uuid, String)> {
        self.order.clear();
        self.by_id.drain().map(|(id, (s, _))| (id, s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_replies_are_taken_once_and_drained() {
        let mut p = PendingReplies::default();
        let a = Uuid::new_v4();
        p.insert(a, "r.a".into());
        assert_eq!(p.take(&a).as_deref(), Some("r.a"));
        assert_eq!(p.take(&a), None);
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            p.insert(*id, id.to_string());
        }
        let drained = p.drain();
        assert_eq!(drained.len(), 10);
        assert!(p.take(&ids[0]).is_none());
    }
}
