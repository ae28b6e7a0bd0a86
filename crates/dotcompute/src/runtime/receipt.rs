//! Processing receipts: a sender learns when the handler is done with one
//! particular message (see [`KernelHandle::send_tracked`](crate::KernelHandle::send_tracked)).
//!
//! A bridge that must acknowledge a message to an outside system only once
//! it has been handled (an at-least-once network transport, for example)
//! needs this; nothing else pays for it beyond one atomic load per delivery.
//!
//! Invariants:
//! - a receipt is registered before its message enters the queue, so a
//!   handler that takes the message at once cannot outrun it;
//! - each receipt resolves exactly once: `Ok` when the kernel counts its
//!   message as processed (the handler asked for the next message, or
//!   returned, while holding it), or an error when the kernel ended or was
//!   terminated before that (the message was discarded, or the handler was
//!   stopped while holding it);
//! - at most one receipt waits per message id.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::runtime::telemetry::lock;

/// The receipts a kernel has handed out and not yet resolved.
#[derive(Debug, Default)]
pub(crate) struct Receipts {
    /// Number of waiting receipts; zero lets deliveries skip all of this.
    waiting: AtomicUsize,
    senders: Mutex<HashMap<Uuid, oneshot::Sender<Result<()>>>>,
}

impl Receipts {
    /// Whether any receipt waits (one relaxed load: the delivery fast path).
    #[inline]
    pub fn active(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) != 0
    }

    /// Registers a receipt for `id` (before the message is queued).
    pub fn register(&self, kernel: &Arc<str>, id: Uuid) -> Result<Receipt> {
        let (tx, rx) = oneshot::channel();
        let mut senders = lock(&self.senders);
        if senders.contains_key(&id) {
            return Err(Error::invalid(
                "message_id",
                id,
                "a receipt for a message with this id is already pending",
            ));
        }
        senders.insert(id, tx);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Ok(Receipt {
            kernel: kernel.clone(),
            rx,
        })
    }

    /// Drops the receipt for `id` (its message was refused, so it never
    /// entered the queue).
    pub fn cancel(&self, id: Uuid) {
        if lock(&self.senders).remove(&id).is_some() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Resolves the receipts of `ids` (messages now processed) with `Ok`;
    /// ids without a receipt are skipped. Empties `ids`.
    #[inline]
    pub fn processed(&self, ids: &mut Vec<Uuid>) {
        if !ids.is_empty() {
            self.resolve(ids);
        }
    }

    /// [`processed`](Self::processed) for a non-empty `ids`.
    fn resolve(&self, ids: &mut Vec<Uuid>) {
        let mut senders = lock(&self.senders);
        for id in ids.drain(..) {
            if let Some(tx) = senders.remove(&id) {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                let _ = tx.send(Ok(()));
            }
        }
    }

    /// Resolves every waiting receipt with `error` (the kernel ended).
    pub fn fail_all(&self, error: &Error) {
        let mut senders = lock(&self.senders);
        for (_, tx) in senders.drain() {
            let _ = tx.send(Err(error.clone()));
        }
        self.waiting.store(0, Ordering::Relaxed);
    }
}

/// Resolves when the kernel has processed one message (see
/// [`KernelHandle::send_tracked`](crate::KernelHandle::send_tracked)).
///
/// `Ok(())`: the handler is done with the message (it asked for the next
/// one, or returned while holding it — also when it returned an error, which
/// the kernel's state and telemetry then report). `Err`: the kernel ended or
/// was terminated before that ([`Error::KernelFailed`] or
/// [`Error::KernelTerminated`]); the message may not have been handled.
#[derive(Debug)]
#[must_use = "a receipt does nothing unless awaited"]
pub struct Receipt {
    kernel: Arc<str>,
    rx: oneshot::Receiver<Result<()>>,
}

impl Future for Receipt {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(Error::KernelTerminated {
                    kernel: self.kernel.to_string(),
                })
            })
        })
    }
}
