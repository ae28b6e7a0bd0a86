//! The receiving side of a kernel, and where its handler's sends go (the
//! host's receive queue or a linked kernel's input).
//!
//! Invariants:
//! - a host receive returns the next message that no pending `call` waits
//!   for, and a call gets exactly the reply carrying its correlation id;
//! - once the kernel has ended, the messages it produced are still
//!   returned, then the reason it ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::queue::timer;
use crate::queue::{Backpressure, RecvError, SendError};
use crate::runtime::config::KernelConfig;
use crate::runtime::core::KernelCore;
use crate::runtime::input::InputPort;
use crate::runtime::replies::{ClaimGuard, Replies};
use crate::runtime::state::Operation;
use crate::runtime::telemetry::lock;
use crate::runtime::transport::Transport;

/// The receiving side of a kernel, and where its handler's sends go.
pub(crate) struct OutputPort<Out> {
    pub core: Arc<KernelCore>,
    pub queue: Transport<Out>,
    pub(crate) replies: Replies<Out>,
    pub(crate) route: Mutex<Option<Arc<InputPort<Out>>>>,
    pub route_version: AtomicU64,
}

impl<Out: Message> OutputPort<Out> {
    pub fn route(&self) -> Option<Arc<InputPort<Out>>> {
        lock(&self.route).clone()
    }

    pub(crate) fn set_route(&self, target: Option<Arc<InputPort<Out>>>) {
        *lock(&self.route) = target;
        self.route_version.fetch_add(1, Ordering::Release);
    }

    /// Receives the next reply that no pending `call` waits for.
    pub async fn receive(&self, timeout: Option<Duration>) -> Result<Out> {
        self.core.check(Operation::Receive)?;
        // Fast path: no call pending and nothing stashed, and a reply ready.
        if self.replies.idle() {
            match self.queue.try_recv() {
                Ok(m) if !self.replies.is_claimed(&m) => return Ok(m),
                Ok(m) => self.replies.stash(m),
                Err(RecvError::Empty) => {}
                Err(_) if self.replies.idle() => return Err(self.core.end_error()),
                Err(_) => {}
            }
        }
        let work = async {
            loop {
                if let Some(m) = self.replies.take_unclaimed() {
                    return Ok(m);
                }
                let notified = self.replies.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(m) = self.replies.take_unclaimed() {
                    return Ok(m);
                }
                tokio::select! {
                    r = self.queue.recv() => match r {
                        Ok(m) if self.replies.is_claimed(&m) => self.replies.stash(m),
                        Ok(m) => return Ok(m),
                        Err(_) => return Err(self.core.end_error()),
                    },
                    () = &mut notified => {}
                }
            }
        };
        self.with_timeout(work, timeout).await
    }

    /// Receives from a plain (non-async) thread: spins on a ring, parks on a
    /// queue. Falls back to the async path while calls are pending or
    /// replies are stashed, so ordering and claims hold.
    pub fn receive_blocking(&self, timeout: Option<Duration>) -> Result<Out> {
        self.core.check(Operation::Receive)?;
        if !self.replies.idle() {
            return crate::runtime::park::block_on(self.receive(timeout));
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let timed_out = || Error::QueueTimeout {
            kernel: self.core.id.to_string(),
            operation: Operation::Receive.verb(),
            timeout: timeout.unwrap_or_default(),
        };
        let got = match &self.queue {
            Transport::Ring(ring) => match ring.recv_spin(&|| false, deadline) {
                Ok(Some(m)) => m,
                Ok(None) => return Err(timed_out()),
                Err(_) => return Err(self.core.end_error()),
            },
            // Polls briefly, then parks (the queue's blocking wait).
            Transport::Queue(q) => match q.recv_blocking_until(deadline) {
                Ok((m, _)) => m,
                Err(RecvError::Closed) => return Err(self.core.end_error()),
                Err(RecvError::Timeout | RecvError::Empty) => return Err(timed_out()),
            },
        };
        if self.replies.is_claimed(&got) {
            // A call started meanwhile and this is its reply: hand it over
            // and wait the usual way.
            self.replies.stash(got);
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            return crate::runtime::park::block_on(self.receive(left));
        }
        Ok(got)
    }

    /// Waits for one message, then takes up to `max - 1` more that are
    /// already there. Returns how many were appended to `out`.
    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Out>, timeout: Option<Duration>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive(timeout).await?);
        Ok(1 + self.take_more(max - 1, out))
    }

    /// [`receive_batch`](Self::receive_batch) on a plain (non-async) thread.
    pub fn receive_batch_blocking(&self, max: usize, out: &mut Vec<Out>, timeout: Option<Duration>) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.receive_blocking(timeout)?);
        Ok(1 + self.take_more(max - 1, out))
    }

    /// Ready messages, unless calls are pending (then replies go one by one
    /// through the claim check).
    fn take_more(&self, max: usize, out: &mut Vec<Out>) -> usize {
        if self.replies.idle() {
            self.queue.try_recv_batch(max, out)
        } else {
            0
        }
    }

    /// Registers a pending call for `correlation`; replies with that id are
    /// kept for it, other replies stay available to `receive`.
    pub fn claim(&self, correlation: Uuid) -> ClaimGuard<'_, Out> {
        self.replies.claim(correlation);
        ClaimGuard {
            replies: &self.replies,
            correlation,
        }
    }

    /// Waits for the reply claimed by `guard` (claim before sending the
    /// request, so a concurrent `receive` cannot take the reply).
    pub async fn receive_reply(&self, guard: ClaimGuard<'_, Out>, timeout: Option<Duration>) -> Result<Out> {
        let correlation = guard.correlation;
        let work = async {
            loop {
                if let Some(m) = self.replies.take_reply(correlation) {
                    return Ok(m);
                }
                let notified = self.replies.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(m) = self.replies.take_reply(correlation) {
                    return Ok(m);
                }
                tokio::select! {
                    r = self.queue.recv() => match r {
                        Ok(m) if m.correlation_id() == Some(correlation) => return Ok(m),
                        Ok(m) => self.replies.stash(m),
                        Err(_) => return Err(self.core.end_error()),
                    },
                    () = &mut notified => {}
                }
            }
        };
        self.with_timeout(work, timeout).await
    }

    async fn with_timeout(
        &self,
        work: impl std::future::Future<Output = Result<Out>>,
        timeout: Option<Duration>,
    ) -> Result<Out> {
        match timeout {
            None => work.await,
            Some(t) => timer::timeout(t, work).await.unwrap_or_else(|| {
                Err(Error::QueueTimeout {
                    kernel: self.core.id.to_string(),
                    operation: Operation::Receive.verb(),
                    timeout: t,
                })
            }),
        }
    }
}

/// Whether the output strategy lets a handler wait for room.
pub(crate) fn output_waits(config: &KernelConfig) -> bool {
    config.output_backpressure == Backpressure::Block
}

/// Maps a handler-side send failure on `queue` to an error.
pub(crate) fn handler_send_error<T>(core: &KernelCore, e: SendError<T>, capacity: usize) -> Error {
    match e {
        SendError::Full(_) => Error::QueueFull {
            kernel: core.id.to_string(),
            queue: "output",
            capacity,
        },
        SendError::Timeout(_) => Error::QueueTimeout {
            kernel: core.id.to_string(),
            operation: "send from",
            timeout: Duration::ZERO,
        },
        SendError::Closed(_) => core.terminating_error(),
    }
}
