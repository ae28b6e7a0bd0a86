//! [`KernelHandle`]: a typed handle to one kernel's queues, resolved once,
//! for hot paths (no id lookup or type check per call).
//!
//! Invariant: a handle holds the kernel's ports themselves, so every
//! operation through it applies the same lifecycle checks, strategies and
//! telemetry as the runtime's id-based methods; it never outlives its
//! kernel's queues in a way that loses a message (after the kernel ends its
//! operations report why).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::message::Message;
use crate::runtime::input::InputPort;
use crate::runtime::output::OutputPort;
use crate::runtime::state::KernelState;

/// A typed handle to one kernel's queues.
pub struct KernelHandle<In, Out> {
    input: Arc<InputPort<In>>,
    output: Arc<OutputPort<Out>>,
}

impl<In, Out> Clone for KernelHandle<In, Out> {
    fn clone(&self) -> Self {
        KernelHandle {
            input: self.input.clone(),
            output: self.output.clone(),
        }
    }
}

impl<In: Message, Out: Message> KernelHandle<In, Out> {
    pub(crate) fn new(input: Arc<InputPort<In>>, output: Arc<OutputPort<Out>>) -> Self {
        KernelHandle { input, output }
    }

    /// The kernel's id.
    pub fn id(&self) -> &str {
        &self.input.core.id
    }

    /// The kernel's state.
    pub fn state(&self) -> KernelState {
        self.input.core.state()
    }

    /// See [`RingKernelRuntime::send`].
    pub async fn send(&self, msg: In) -> Result<()> {
        self.input.send(msg, None).await
    }

    /// See [`RingKernelRuntime::try_send`].
    pub fn try_send(&self, msg: In) -> Result<()> {
        self.input.try_send(msg)
    }

    /// See [`RingKernelRuntime::receive`].
    pub async fn receive(&self) -> Result<Out> {
        self.output.receive(None).await
    }

    /// See [`RingKernelRuntime::receive_timeout`].
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Out> {
        self.output.receive(Some(timeout)).await
    }

    /// Sends from a thread that is not running async code (it blocks that
    /// thread). For a `Spin` kernel this spins on the ring: the lowest-latency
    /// way to talk to it.
    pub fn send_blocking(&self, msg: In) -> Result<()> {
        self.input.send_blocking(msg)
    }

    /// Receives on a thread that is not running async code (it blocks that
    /// thread); see [`send_blocking`](Self::send_blocking).
    pub fn receive_blocking(&self) -> Result<Out> {
        self.output.receive_blocking(None)
    }

    /// Like [`receive_blocking`](Self::receive_blocking), giving
    /// [`Error::QueueTimeout`](crate::Error::QueueTimeout) after `timeout`.
    pub fn receive_blocking_timeout(&self, timeout: Duration) -> Result<Out> {
        self.output.receive_blocking(Some(timeout))
    }

    /// Sends a batch in order, waiting for room under `Block`. Cheaper per
    /// message than single sends (one lock and one wake-up per run of
    /// pushes on a `Spin` kernel's ring). On a refusal the messages not yet
    /// sent are dropped: the refused one is counted by the queue, the rest as
    /// discarded in telemetry, and the error says why.
    pub async fn send_batch(&self, msgs: Vec<In>) -> Result<()> {
        self.input.send_batch(msgs, None).await
    }

    /// [`send_batch`](Self::send_batch) from a plain (non-async) thread.
    pub fn send_batch_blocking(&self, msgs: Vec<In>) -> Result<()> {
        self.input.send_batch_blocking(msgs)
    }

    /// Waits for one reply, then takes up to `max - 1` more that are already
    /// there; returns how many were appended to `out`.
    pub async fn receive_batch(&self, max: usize, out: &mut Vec<Out>) -> Result<usize> {
        self.output.receive_batch(max, out, None).await
    }

    /// [`receive_batch`](Self::receive_batch) on a plain (non-async) thread.
    pub fn receive_batch_blocking(&self, max: usize, out: &mut Vec<Out>) -> Result<usize> {
        self.output.receive_batch_blocking(max, out, None)
    }

    /// See [`RingKernelRuntime::call`].
    pub async fn call(&self, request: In) -> Result<Out> {
        let claim = self.output.claim(request.message_id());
        self.input.send(request, None).await?;
        self.output.receive_reply(claim, None).await
    }

    /// See [`RingKernelRuntime::call_timeout`].
    pub async fn call_timeout(&self, request: In, timeout: Duration) -> Result<Out> {
        let claim = self.output.claim(request.message_id());
        let deadline = Instant::now() + timeout;
        self.input.send(request, Some(timeout)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        self.output.receive_reply(claim, Some(left)).await
    }
}
