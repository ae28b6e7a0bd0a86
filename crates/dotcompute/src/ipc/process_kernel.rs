//! Runtime integration: a ring kernel whose handler runs in another process.
//!
//! [`process_kernel`] builds an ordinary [`KernelSpec`] with a *blocking*
//! handler (so the runtime runs it on a dedicated thread and handles
//! lifecycle, telemetry, restart policy and the `Failed` state as for any
//! thread kernel). That handler is a pump:
//!
//! 1. it spawns the kernel process (or attaches to it) and waits until the
//!    process marks itself ready (`ready_timeout`), giving up at once if the
//!    kernel is terminated meanwhile;
//! 2. it moves messages: input queue → encode → request ring, and reply ring
//!    → decode → output queue (or linked kernel), in batches, keeping at most
//!    one encoded message aside while the request ring is full so that it
//!    always keeps draining replies (no deadlock when both rings fill);
//! 3. while idle it spins (only while a reply is due and
//!    [`WaitPolicy::spin`] allows), then yields for `yield_for`, then sleeps
//!    on one futex for both events: the reply ring's `data_seq`, which the
//!    kernel process bumps when it publishes a reply and which the runtime
//!    input queue's next message (or a terminate, which closes that queue)
//!    bumps through a waker registered before the sleep. So a request that
//!    comes while replies are outstanding, or a reply that comes while no
//!    request is, wakes it at once. The one bounded sleep left is for room
//!    while a request waits for a full request ring ([`WaitPolicy::park`],
//!    1 ms);
//! 4. it checks the kernel process every `check_interval` while idle, and
//!    wakes at once when the process exits (where its exit is watched). A
//!    process that died, failed, or stopped beating its heartbeat makes the
//!    handler return the [`IpcError`] (after forwarding the replies the
//!    process sent before), so the runtime moves the kernel to `Failed` with
//!    that message (or restarts it, per its restart policy, which spawns a
//!    new process). The requests handed to the process and never answered
//!    are counted as lost (`messages_lost` in telemetry) and named in that
//!    failure ([`IpcError::RequestsLost`]). A process that closed its end
//!    on its own ends the kernel as `Terminated`;
//! 5. when the kernel is terminated it asks the process to drain and exit,
//!    keeps forwarding replies while the runtime accepts them (a terminate
//!    with `drain`), escalates to "stop now" as soon as the runtime refuses
//!    one, waits up to `exit_timeout`, kills the process if it overstays, and
//!    returns. The creating side removes the region file.
//!
//! Why one relay and not one per direction: both directions need the
//! kernel's [`BlockingContext`], which is `&mut` for both receive and send,
//! so a second relay could not use it without a lock held across blocking
//! calls.
//!
//! Who relays: the steps above run under one mutex ([`relay`]), held by the
//! kernel's thread or by a host thread blocked in `send_blocking`,
//! `receive_blocking` or `call_blocking` on this kernel, which relays
//! itself instead of waking the kernel's thread (host → process → host, as
//! [`ProcessChannel`](super::ProcessChannel), where the kernel's thread
//! alone makes it host → pump → process → pump → host). Async hosts (their
//! sends, receives and calls) go through the kernel's thread as described
//! above.
//!
//! Known limit: with the default `Block` output strategy, a pump whose
//! output queue is full waits inside the runtime's `send` until the host
//! receives, and cannot look at the process meanwhile; a process that dies
//! then is reported once the host makes room (the context has no
//! non-blocking send to wait on both).

use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::message::{codec, Message};
use crate::queue::clock::{self, Stamp};
use crate::runtime::config::ExecutionMode;
use crate::runtime::context::BlockingContext;
use crate::runtime::spec::{KernelBuilder, KernelError, KernelSpec};

use super::endpoint::{Endpoint, WaitPolicy};
use super::error::IpcError;
use super::host::{self, IpcConfig, ProcessCommand};
use super::relay;

/// Messages moved per direction before looking at the other one.
const BATCH: usize = 64;

/// A kernel `id` whose handler runs in the process of `command`, with the
/// default [`IpcConfig`].
///
/// The process must speak `In` → `Out` with the wire codec, typically with
/// [`serve`](super::serve) or [`IpcContext`](super::IpcContext).
///
/// ```no_run
/// use dotcompute::ipc::{process_kernel, SpawnCommand};
/// use dotcompute::{Message, MessageHeader, RingKernelRuntime};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Req { values: Vec<f64>, header: MessageHeader }
/// #[derive(Debug, Serialize, Deserialize, Message)]
/// struct Resp { sum: f64, header: MessageHeader }
///
/// # async fn demo() -> Result<(), dotcompute::Error> {
/// let rt = RingKernelRuntime::new();
/// let spec = process_kernel::<Req, Resp>("summer", SpawnCommand::new("./sum-kernel"))?;
/// rt.launch_spec(spec)?;
/// rt.activate("summer")?;
/// let resp: Resp = rt.call("summer", Req { values: vec![1.0, 2.0], header: MessageHeader::new() }).await?;
/// assert_eq!(resp.sum, 3.0);
/// rt.terminate("summer").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfiguration`] for an invalid id.
pub fn process_kernel<In, Out>(id: impl Into<String>, command: impl Into<ProcessCommand>) -> Result<KernelSpec, Error>
where
    In: Message + Serialize,
    Out: Message + DeserializeOwned,
{
    process_kernel_builder::<In, Out>(id, command, IpcConfig::default())?.build()
}

/// Like [`process_kernel`] with an explicit [`IpcConfig`], returning the
/// builder so that queue sizes, backpressure or the restart policy can be set
/// before `.build()`.
///
/// # Errors
///
/// [`Error::InvalidConfiguration`] if `config` is invalid.
pub fn process_kernel_builder<In, Out>(
    id: impl Into<String>,
    command: impl Into<ProcessCommand>,
    config: IpcConfig,
) -> Result<KernelBuilder<In, Out>, Error>
where
    In: Message + Serialize,
    Out: Message + DeserializeOwned,
{
    config
        .validate()
        .map_err(|e| Error::invalid("ipc", "IpcConfig", e.to_string()))?;
    let command = Arc::new(command.into());
    let config = Arc::new(config);
    Ok(KernelSpec::builder::<In, Out>(id)
        .mode(ExecutionMode::Process)
        .blocking_handler(move |ctx: BlockingContext<In, Out>| run::<In, Out>(ctx, &command, &config)))
}

/// `e`, naming the requests lost with the process when there are any.
fn with_lost(e: IpcError, lost: u64) -> IpcError {
    if lost == 0 {
        e
    } else {
        IpcError::RequestsLost {
            lost,
            cause: Box::new(e),
        }
    }
}

fn is_terminating(e: &Error) -> bool {
    matches!(e, Error::Terminating { .. })
}

fn run<In, Out>(
    ctx: BlockingContext<In, Out>,
    command: &ProcessCommand,
    config: &Arc<IpcConfig>,
) -> Result<(), KernelError>
where
    In: Message + Serialize,
    Out: Message + DeserializeOwned,
{
    let id = ctx.kernel_id().to_owned();
    let end = match host::connect(command, config, &id, &mut || ctx.should_terminate()) {
        Ok(end) => end,
        // Terminated while the process was starting; dropping the endpoint
        // stopped it.
        Err(IpcError::Terminated) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(kernel = %id, region = %end.region().path().display(), "process kernel ready");
    let pump = Pump {
        waker: end.data_waker(),
        end,
        config: config.clone(),
        enc: Vec::with_capacity(256),
        dec: Vec::with_capacity(256),
        pending: false,
        sent: 0,
        received: 0,
        last_progress: clock::now(),
    };
    match relay::Relay::run(ctx, pump) {
        Some((mut ctx, mut pump, stray, stop)) => {
            // A reply a host kept aside is the oldest one not yet forwarded
            // (a refusal counts it as discarded).
            let stop = match (stray.map(|out| forward(&mut ctx, out)), stop) {
                (Some(Err(_)), Stop::Terminating { .. }) => Stop::Terminating { replies_refused: true },
                (_, stop) => stop,
            };
            pump.end_with(&mut ctx, stop)
        }
        None => Err("process kernel relay lost its state".into()),
    }
}

/// The relay between the kernel's queues and its process: whoever runs it
/// (the kernel's thread, or a blocking host call: see [`relay`]) holds it.
pub(super) struct Pump {
    end: Endpoint,
    config: Arc<IpcConfig>,
    /// Ends the pump's sleep on the reply ring (a host that wants to relay
    /// itself wakes the kernel's thread with it).
    pub(super) waker: Waker,
    /// An encoded input message waiting for room when `pending`.
    enc: Vec<u8>,
    dec: Vec<u8>,
    pending: bool,
    sent: u64,
    received: u64,
    /// When a message last moved either way (the hot path's clock: a
    /// host's relay reads it twice per round trip).
    last_progress: Stamp,
}

/// How the pump loop ended.
pub(super) enum Stop {
    /// The kernel is being terminated; `replies_refused` once the runtime
    /// refused a reply (a terminate without drain).
    Terminating {
        replies_refused: bool,
    },
    PeerGone(IpcError),
    Fail(KernelError),
}

/// Who is relaying, which decides how far a step may go.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Runner {
    /// The kernel's own thread: it may wait inside the runtime's send for
    /// room in the output queue (or a linked kernel's input).
    Kernel,
    /// A host thread in a blocking call: it never waits to forward a reply
    /// (it may be the very thread that would make room). A reply that would
    /// have to wait is kept aside as the relay's *stray*, and the kernel's
    /// thread forwards it, before any other, at its next step.
    Host,
}

/// Forwards a reply to the runtime; a reply it refuses (it terminates the
/// kernel) is counted as discarded, and the refusal returned.
fn forward<In: Message, Out: Message>(ctx: &mut BlockingContext<In, Out>, out: Out) -> Result<(), Error> {
    ctx.send(out).map_err(|refused| {
        ctx.count_discarded(1);
        refused.into_error()
    })
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        if is_terminating(&e) {
            Stop::Terminating { replies_refused: false }
        } else {
            Stop::Fail(e.into())
        }
    }
}

impl From<IpcError> for Stop {
    fn from(e: IpcError) -> Self {
        if e.is_peer_gone() {
            Stop::PeerGone(e)
        } else {
            Stop::Fail(e.into())
        }
    }
}

impl Pump {
    /// Ends the kernel the way `stop` says: drains and reaps the process on
    /// terminate; reports a process that went away, with the requests lost.
    fn end_with<In, Out>(&mut self, ctx: &mut BlockingContext<In, Out>, stop: Stop) -> Result<(), KernelError>
    where
        In: Message + Serialize,
        Out: Message + DeserializeOwned,
    {
        match stop {
            Stop::Terminating { replies_refused } => self.finish(ctx, !replies_refused),
            Stop::PeerGone(e) => {
                // Forward what the process sent before it went away.
                while let Ok(true) = self.end.try_recv_raw(&mut self.dec) {
                    self.received += 1;
                    let Ok(out) = codec::decode::<Out>(&self.dec) else {
                        break;
                    };
                    if forward(ctx, out).is_err() {
                        break;
                    }
                }
                let lost = self.count_lost(ctx);
                match e {
                    IpcError::PeerClosed { pid } if lost == 0 => {
                        tracing::info!(kernel = %ctx.kernel_id(), pid, "kernel process closed its end; kernel ends");
                        Ok(())
                    }
                    e => Err(with_lost(e, lost).into()),
                }
            }
            Stop::Fail(e) => {
                let lost = self.count_lost(ctx);
                match e.downcast::<IpcError>() {
                    Ok(e) => Err(with_lost(*e, lost).into()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Requests handed to the process (or taken from the input queue for
    /// it) that will never be answered: counted as lost in telemetry.
    fn count_lost<In: Message, Out: Message>(&mut self, ctx: &BlockingContext<In, Out>) -> u64 {
        let lost = self.unanswered();
        if lost > 0 {
            ctx.count_lost(lost);
            tracing::warn!(kernel = %ctx.kernel_id(), lost, "requests lost with the kernel process");
        }
        self.sent = self.received;
        self.pending = false;
        lost
    }

    /// One round of relaying: requests from the input queue to the request
    /// ring (published once per batch: one `tail` store and at most one
    /// wake-up of the process, always before returning, so that nothing
    /// counted as sent stays invisible to the process), then replies from
    /// the reply ring to the output. Only the kernel's thread may wait in
    /// it, for room to forward a reply (see [`Runner`]). Returns whether
    /// anything moved.
    pub(super) fn step<In, Out>(
        &mut self,
        ctx: &mut BlockingContext<In, Out>,
        runner: Runner,
        stray: &mut Option<Out>,
    ) -> Result<bool, Stop>
    where
        In: Message + Serialize,
        Out: Message + DeserializeOwned,
    {
        let mut progress = false;
        // A host's step only moves messages (reading the clock for the
        // check would cost it more than the move); its waits check, as the
        // kernel's thread does every round.
        if runner == Runner::Kernel {
            self.end.maybe_check_peer()?;
        }
        let mut stop = None;
        for _ in 0..BATCH {
            if self.pending {
                match self.end.try_write(&self.enc) {
                    Ok(true) => {
                        self.pending = false;
                        self.sent += 1;
                        progress = true;
                    }
                    Ok(false) => break,
                    Err(e) => {
                        stop = Some(Stop::from(e));
                        break;
                    }
                }
            }
            match ctx.try_receive() {
                Ok(Some(msg)) => {
                    if let Err(e) = self.encode(&msg) {
                        stop = Some(e);
                        break;
                    }
                    progress = true;
                }
                Ok(None) => break,
                Err(e) => {
                    stop = Some(e.into());
                    break;
                }
            }
        }
        self.end.publish();
        if let Some(stop) = stop {
            return Err(stop);
        }
        // A reply kept aside goes first, so none overtakes it.
        if let Some(out) = stray.take() {
            if !Self::hand_on(ctx, runner, out, stray)? {
                return Ok(progress);
            }
        }
        for _ in 0..BATCH {
            if !self.end.try_recv_raw(&mut self.dec)? {
                break;
            }
            self.received += 1;
            progress = true;
            let out = codec::decode::<Out>(&self.dec).map_err(|e| Stop::Fail(IpcError::from(e).into()))?;
            if !Self::hand_on(ctx, runner, out, stray)? {
                break;
            }
        }
        if progress {
            self.last_progress = clock::now();
        }
        Ok(progress)
    }

    /// Forwards one reply as `runner` may: false when a host kept it aside
    /// in `stray` (it would have had to wait).
    fn hand_on<In, Out>(
        ctx: &mut BlockingContext<In, Out>,
        runner: Runner,
        out: Out,
        stray: &mut Option<Out>,
    ) -> Result<bool, Stop>
    where
        In: Message + Serialize,
        Out: Message + DeserializeOwned,
    {
        let refused = match runner {
            Runner::Kernel => forward(ctx, out),
            Runner::Host => match ctx.try_send_now(out) {
                Ok(None) => Ok(()),
                Ok(Some(out)) => {
                    *stray = Some(out);
                    return Ok(false);
                }
                Err(refused) => {
                    ctx.count_discarded(1);
                    Err(refused.into_error())
                }
            },
        };
        refused.map(|()| true).map_err(|e| match Stop::from(e) {
            Stop::Terminating { .. } => Stop::Terminating { replies_refused: true },
            other => other,
        })
    }

    /// Requests taken for the process and not answered yet: handed to it
    /// and not replied to, plus the one held for a full ring.
    fn unanswered(&self) -> u64 {
        self.sent.saturating_sub(self.received) + u64::from(self.pending)
    }

    /// How the ring end waits.
    pub(super) fn policy(&self) -> WaitPolicy {
        *self.end.policy()
    }

    /// Polls the reply ring up to `rounds` times while a reply is due (no
    /// queue, no lock: one shared word per look); true once one is there.
    pub(super) fn reply_arrived(&self, rounds: u32) -> bool {
        if self.unanswered() == 0 {
            return false;
        }
        for _ in 0..rounds {
            if self.end.has_data() {
                return true;
            }
            std::hint::spin_loop();
        }
        false
    }

    /// Waits a little for the next event after a [`step`](Self::step) that
    /// moved nothing: spins while a reply is due (and [`WaitPolicy::spin`]
    /// allows), then yields for `yield_for`, then sleeps on one futex for
    /// both events (see the module doc), at most until `deadline` and only
    /// if `may_sleep()` still says so once the sleep is armed. Takes a
    /// message that arrives meanwhile.
    pub(super) fn idle<In, Out>(
        &mut self,
        ctx: &mut BlockingContext<In, Out>,
        deadline: Option<Instant>,
        may_sleep: &dyn Fn() -> bool,
    ) -> Result<(), Stop>
    where
        In: Message + Serialize,
        Out: Message + DeserializeOwned,
    {
        self.end.maybe_check_peer()?;
        if ctx.should_terminate() {
            return Err(Stop::Terminating { replies_refused: false });
        }
        let policy: WaitPolicy = *self.end.policy();
        let idle = Duration::from_nanos(clock::ns_between(self.last_progress, clock::now()));
        let awaiting_reply = self.unanswered() > 0;
        let slice = |limit: Duration| match deadline {
            Some(d) => limit.min(d.saturating_duration_since(Instant::now())),
            None => limit,
        };
        // Spin only while a reply is due. With nothing in flight the next
        // event needs the host's thread to run first, so leave it the CPU.
        if awaiting_reply && idle < policy.spin {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
        } else if idle < policy.spin + policy.yield_for {
            std::thread::yield_now();
        } else if self.pending {
            // Room in the request ring comes as the process takes
            // requests, which its replies usually show.
            self.end.wait_for_data(slice(policy.park));
        } else {
            // One sleep for both events: the reply ring's futex, which the
            // input queue's next message (or a terminate) wakes too.
            let armed = self.end.arm_wait();
            let end = &self.end;
            let waker = self.waker.clone();
            let nap = slice(policy.check_interval);
            let got = ctx.receive_or_sleep(&waker, || {
                if may_sleep() && !nap.is_zero() {
                    end.sleep_armed(armed, nap);
                } else {
                    end.disarm();
                }
            });
            match got {
                Ok(Some(msg)) => {
                    self.end.disarm();
                    self.encode(&msg)?;
                    self.last_progress = clock::now();
                }
                Ok(None) => {}
                Err(e) => {
                    self.end.disarm();
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn encode<M: Message + Serialize>(&mut self, msg: &M) -> Result<(), Stop> {
        debug_assert!(!self.pending);
        self.enc.clear();
        codec::encode_into(msg, &mut self.enc).map_err(|e| Stop::Fail(IpcError::from(e).into()))?;
        self.pending = true;
        Ok(())
    }

    /// The kernel is being terminated: hand over what was taken from the
    /// input queue, ask the process to drain and exit, forward its last
    /// replies while the runtime takes them, then reap (or kill) it.
    fn finish<In, Out>(&mut self, ctx: &mut BlockingContext<In, Out>, forward_replies: bool) -> Result<(), KernelError>
    where
        In: Message + Serialize,
        Out: Message + DeserializeOwned,
    {
        let deadline = Instant::now() + self.config.exit_timeout;
        let mut forwarding = forward_replies;
        while self.pending && Instant::now() < deadline {
            match self.end.try_send(&self.enc) {
                Ok(true) => {
                    self.pending = false;
                    self.sent += 1;
                }
                Ok(false) => {}
                Err(_) => break,
            }
            while forwarding {
                match self.end.try_recv_raw(&mut self.dec) {
                    Ok(true) => {
                        self.received += 1;
                        match codec::decode::<Out>(&self.dec) {
                            Ok(out) => forwarding = forward(ctx, out).is_ok(),
                            Err(_) => forwarding = false,
                        }
                    }
                    _ => break,
                }
            }
            if !forwarding {
                // Terminate without drain: the runtime no longer takes
                // replies, so there is no point handing over more requests.
                break;
            }
            if self.pending {
                self.end.wait_for_data(std::time::Duration::from_millis(1));
            }
        }
        self.end.request_terminate(forwarding);
        let mut dec = std::mem::take(&mut self.dec);
        let mut received = 0u64;
        let exit = self.end.wait_exit(self.config.exit_timeout, &mut dec, |bytes| {
            if !forwarding {
                return false;
            }
            received += 1;
            forwarding = match codec::decode::<Out>(bytes) {
                Ok(out) => forward(ctx, out).is_ok(),
                Err(_) => false,
            };
            forwarding
        });
        self.received += received;
        tracing::info!(kernel = %ctx.kernel_id(), pid = exit.pid, clean = exit.clean, detail = %exit.detail, "kernel process ended");
        if exit.clean {
            // Requests the terminate chose not to complete (no drain) go
            // with the kernel, like its queued input: counted as discarded.
            let unanswered = self.unanswered();
            ctx.count_discarded(unanswered);
            Ok(())
        } else {
            let lost = self.count_lost(ctx);
            let died = IpcError::PeerDied {
                pid: exit.pid,
                detail: format!("did not exit cleanly on terminate: {}", exit.detail),
            };
            Err(with_lost(died, lost).into())
        }
    }
}
