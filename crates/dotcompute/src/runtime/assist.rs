//! Work a blocking host call may do for its kernel in the host's own thread.
//!
//! A kernel whose handler only relays (the process tier's pump: input queue
//! → another process → output queue) can let a host thread that is
//! blocked on it anyway do the relaying, instead of waking the kernel's
//! thread for every message: on a two-vCPU machine, host, relay and
//! process are three runnable threads for one message, and every hop costs
//! a wake-up. Such a kernel registers a [`HostAssist`] in its
//! [`AssistSlot`] while it runs.
//!
//! Invariants:
//! - an assist moves messages only through the kernel's own queues and
//!   context, so every count (enqueued, dequeued, received, processed,
//!   sent, waits, handler times) is what the kernel's thread would have
//!   recorded;
//! - it is an optimisation only: a host call that finds no assist, or an
//!   assist that cannot get the kernel's state at once, proceeds as
//!   before, and the kernel's thread moves the messages;
//! - an assist never blocks a send: it takes the relay's state only if it
//!   is free; a receive may wait for that state, never past its deadline;
//! - looking for an assist costs the kernels without one a single atomic
//!   load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

/// What a relaying kernel lets a blocking host call do for it.
pub(crate) trait HostAssist: Send + Sync {
    /// A blocking host send has queued input: move it on now if the relay
    /// is free (never waits).
    fn after_send(&self);

    /// A blocking host receive found the output queue empty: relay until
    /// `ready()` (a message is in the output queue), `deadline`, or the
    /// relay stops; then the caller takes the message as usual.
    fn before_receive(&self, deadline: Option<Instant>, ready: &dyn Fn() -> bool);
}

/// The assist a kernel registered, if any.
#[derive(Default)]
pub(crate) struct AssistSlot {
    present: AtomicBool,
    assist: RwLock<Option<Arc<dyn HostAssist>>>,
}

impl AssistSlot {
    /// Registers `assist` (or removes the one registered, with `None`).
    // Used by the process tier only.
    #[cfg_attr(not(all(feature = "process", target_os = "linux")), allow(dead_code))]
    pub fn set(&self, assist: Option<Arc<dyn HostAssist>>) {
        let mut slot = self.assist.write();
        self.present.store(assist.is_some(), Ordering::Release);
        *slot = assist;
    }

    /// The registered assist; one atomic load when there is none.
    #[inline]
    pub fn get(&self) -> Option<Arc<dyn HostAssist>> {
        if !self.present.load(Ordering::Acquire) {
            return None;
        }
        self.assist.read().clone()
    }
}
