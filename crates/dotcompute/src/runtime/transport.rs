//! The queues between a kernel and its senders and receivers.
//!
//! A kernel in `Async` or `Thread` mode uses [`MessageQueue`]s (four priority
//! bands, every backpressure strategy). A kernel in `Spin` mode uses a
//! [`RingChannel`]: a wait-free [`SpscRing`](crate::ring::spsc::SpscRing)
//! whose consumer is the kernel's own thread, polled with a bounded
//! spin → yield → park back-off.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use crate::message::Message;
use crate::queue::{Backpressure, MessageQueue, QueueConfig, QueueStats, ReceiverWait, RecvError, Refusal, SendError};

use super::ring_channel::RingChannel;

/// A kernel queue: a priority queue or a spin ring.
pub(crate) enum Transport<T> {
    Queue(MessageQueue<T>),
    Ring(Box<RingChannel<T>>),
}

macro_rules! delegate {
    ($self:ident, $q:ident => $e:expr) => {
        match $self {
            Transport::Queue($q) => $e,
            Transport::Ring($q) => $e,
        }
    };
}

impl<T: Message> Transport<T> {
    /// A ring (`ring`) or a priority queue, recording the wait of one
    /// message in `wait_sample_every` (the kernel's input; its output's
    /// waits are not reported, so that side passes 0 and reads no clock).
    /// A queue's receivers wait as `waits` says (a ring's always poll
    /// first: its other end is a spin kernel's thread).
    pub fn new(config: QueueConfig, ring: bool, wait_sample_every: u32, waits: ReceiverWait) -> Result<Self, String> {
        let config = config.with_wait_sample_every(wait_sample_every);
        if ring {
            Ok(Transport::Ring(Box::new(RingChannel::new(config)?)))
        } else {
            MessageQueue::for_runtime(config, waits)
                .map(Transport::Queue)
                .map_err(|e| e.to_string())
        }
    }

    pub fn try_recv(&self) -> Result<T, RecvError> {
        delegate!(self, q => q.try_recv())
    }

    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>> {
        delegate!(self, q => q.try_send(msg))
    }

    /// The first attempt of a send that may wait, without waiting: `Ok(None)`
    /// when done, `Ok(Some(msg))` when it must wait for room under `Block`
    /// (nothing counted), `Err` a final (counted) refusal.
    #[inline]
    pub fn push_or_wait(&self, msg: T) -> Result<Option<T>, (Refusal, T)> {
        match self {
            Transport::Queue(q) => q.push_or_wait(msg),
            Transport::Ring(r) => match r.push(msg) {
                Ok(()) => Ok(None),
                Err(SendError::Full(m)) if r.config().backpressure == Backpressure::Block => Ok(Some(m)),
                other => r.count_refusal(other).map(|()| None).map_err(SendError::into_refusal),
            },
        }
    }

    /// The wait for room of a send whose first attempt
    /// ([`push_or_wait`](Self::push_or_wait), or the output's `try_emit`)
    /// found none: under `Block`, until `deadline` (`None`: forever), or
    /// until `stop` is cancelled ([`Refusal::Stopped`], the message back,
    /// nothing counted). The caller picks the deadline (the configured send
    /// timeout, or its own).
    pub async fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), (Refusal, T)> {
        match self {
            Transport::Queue(q) => q.send_until_or_stop(msg, deadline, stop).await,
            Transport::Ring(r) => r.send_until(msg, deadline, stop).await,
        }
    }

    /// Whether an async wait for what comes out of this transport polls
    /// first (a ring always does; see [`ReceiverWait::async_poll`]).
    pub fn polls_first(&self) -> bool {
        match self {
            Transport::Queue(q) => q.polls_first(),
            Transport::Ring(_) => true,
        }
    }

    /// A receive that polls first where the queue's receivers do (a ring
    /// always does; see [`ReceiverWait::async_poll`]).
    pub async fn recv(&self) -> Result<T, RecvError> {
        match self {
            Transport::Queue(q) if q.polls_first() => q.recv_polling_first(None).await,
            Transport::Queue(q) => q.recv().await,
            Transport::Ring(r) => r.recv().await,
        }
    }

    pub async fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        delegate!(self, q => q.recv_timeout(timeout).await)
    }

    pub fn close(&self) {
        delegate!(self, q => q.close())
    }

    /// Counts `n` messages handed straight to a waiting call, past the
    /// queue, as enqueued and dequeued at once.
    pub fn count_handed_over(&self, n: u64) {
        delegate!(self, q => q.count_handed_over(n))
    }

    /// Takes up to `max` ready messages without waiting.
    pub fn try_recv_batch(&self, max: usize, out: &mut Vec<T>) -> usize {
        match self {
            Transport::Queue(q) => q.try_recv_batch(max, out),
            Transport::Ring(r) => r.pop_batch(max, out),
        }
    }

    /// Sends every message of `msgs` in order, waiting for room under
    /// `Block` (until `deadline`, or until `stop` is cancelled). Stops at the
    /// first refusal, which the queue counts like a single refused send;
    /// returns it with the messages not sent, in order, the refused one
    /// first (changed for the runtime's API: nothing refused is dropped).
    pub async fn send_batch(
        &self,
        msgs: Vec<T>,
        deadline: Option<Instant>,
        stop: Option<&CancellationToken>,
    ) -> Result<(), (Refusal, Vec<T>)> {
        match self {
            Transport::Ring(r) => r.send_batch(msgs.into(), deadline, stop).await,
            Transport::Queue(q) => q.send_batch_until(msgs, deadline, stop).await,
        }
    }

    pub fn is_closed(&self) -> bool {
        delegate!(self, q => q.is_closed())
    }

    pub fn pause(&self) {
        delegate!(self, q => q.pause())
    }

    pub fn resume(&self) {
        delegate!(self, q => q.resume())
    }

    pub fn clear(&self) -> Vec<T> {
        delegate!(self, q => q.clear())
    }

    pub fn stats(&self) -> QueueStats {
        delegate!(self, q => q.stats())
    }

    pub fn len(&self) -> usize {
        match self {
            Transport::Queue(q) => q.len(),
            Transport::Ring(r) => r.depth(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        match self {
            Transport::Queue(q) => q.capacity(),
            Transport::Ring(r) => r.config().capacity,
        }
    }

    pub fn wait_histogram(&self) -> Histogram<u64> {
        match self {
            Transport::Queue(q) => q.wait_histogram(),
            Transport::Ring(r) => r.wait_histogram(),
        }
    }
}
