//! Who runs a process kernel's pump: the kernel's own thread, or a host
//! thread that is blocked on the kernel anyway.
//!
//! With the kernel's thread relaying, a round trip from a blocking host is
//! host → pump thread → process → pump thread → host: three runnable
//! threads for one message, each hop a wake-up (on two vCPUs about 10 µs,
//! against 1.3–2.3 µs for host → process → host). So a blocking host call
//! relays itself where it can ([`HostAssist`]): `send_blocking` moves what
//! it queued to the request ring at once, and a `receive_blocking` that
//! finds the output queue empty runs the pump (spinning, yielding and
//! sleeping on the reply ring as the pump would) until a reply is in the
//! output queue. The pump's state (its [`BlockingContext`] and ring end)
//! lives behind one mutex: whoever holds it relays.
//!
//! Invariants:
//! - one relay at a time, in order: every step runs under the mutex, so a
//!   message never overtakes one taken before it, and the counts are the
//!   context's, exact whoever moves the message;
//! - the kernel's thread never sleeps while a host wants the pump: a host
//!   counts itself in `hosts`, then wakes the pump's sleep (the reply
//!   ring's futex word, which the pump re-reads after it arms its sleep and
//!   before it checks `hosts`), and the pump releases the mutex at its next
//!   look;
//! - while hosts relay (a host call in progress, or one ended less than
//!   [`LINGER`] ago), the kernel's thread does not sleep where a host's
//!   send or the process's reply would have to wake it; it looks at the
//!   rings every [`POLL`] instead, for what no host call is there to move
//!   (another sender's input, replies nobody receives, a terminate, a dead
//!   process). So a message waits at most [`POLL`] for a relay, and the
//!   kernel's thread relays alone again [`LINGER`] after hosts stop
//!   calling. While a host sleeps relaying in a receive (it moves whatever
//!   comes until it leaves), the kernel's thread naps `check_interval`
//!   instead, and the host nudges it when it leaves: a host blocked in a
//!   receive costs no periodic wake-ups;
//! - a host never waits for itself: its steps forward a reply only if that
//!   needs no wait, and keep it aside for the kernel's thread otherwise
//!   ([`Runner::Host`]); a send's relay takes the mutex only if it is free;
//! - how the kernel ends (drain, reap, lost requests) is decided by its own
//!   thread only: a host that meets the end of the relay (terminate, a dead
//!   process, a failure) records it and hands back; once the kernel's
//!   thread ends the relay, host calls stop relaying.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::Message;
use crate::queue::clock;
use crate::runtime::assist::HostAssist;
use crate::runtime::context::BlockingContext;
use crate::runtime::output::OutputPort;

use super::nap_gate::NapGate;
use super::process_kernel::{Pump, Runner, Stop};

/// How long after a host call the kernel's thread keeps leaving the
/// relaying to hosts.
const LINGER: Duration = Duration::from_millis(2);
/// How often the kernel's thread looks at the rings while hosts relay.
const POLL: Duration = Duration::from_micros(500);
/// Looks at the reply ring between a host's full relay rounds.
const HOST_POLLS: u32 = 64;
/// Longest single wait of a receive for the mutex before it looks again at
/// its output queue and the relay's end.
const LOCK_SLICE: Duration = Duration::from_micros(200);

/// The kernel's thread relays (it may sleep holding the mutex).
const KERNEL_RELAYS: u8 = 0;
/// Hosts relay; the kernel's thread polls.
const HOSTS_RELAY: u8 = 1;

/// The relaying state, taken out when the kernel's thread ends the relay.
struct Held<In, Out> {
    ctx: BlockingContext<In, Out>,
    pump: Pump,
    /// Why the relay must end, found by a host.
    stop: Option<Stop>,
    /// A reply a host could not forward without waiting (see [`Runner`]).
    stray: Option<Out>,
}

/// A process kernel's pump, shared by its thread and blocking host calls.
pub(super) struct Relay<In, Out> {
    held: Mutex<Option<Held<In, Out>>>,
    /// Host calls relaying or about to.
    hosts: AtomicUsize,
    /// When the last host call left (a [`clock`] stamp; 0: none yet).
    host_left: AtomicU64,
    mode: AtomicU8,
    /// Set once the kernel's thread ended the relay.
    ended: AtomicBool,
    /// Ends the kernel's thread's wait between polls early: a host found
    /// the end of the relay, or left while that thread napped long.
    nudged: Mutex<bool>,
    nudge: Condvar,
    /// Whether a host relaying in a receive sleeps on the rings (so the
    /// kernel's thread may nap long), and whether that thread does (so a
    /// leaving host nudges it).
    gate: NapGate,
    /// A host holds the mutex relaying in a receive (and may hold it long).
    receiving_host: AtomicBool,
    /// How long the kernel's thread naps while a host sleeps relaying.
    long_nap: Duration,
    /// Ends the kernel's thread's sleep on the reply ring.
    waker: std::task::Waker,
    /// The kernel's output: linked to another kernel, the relaying is
    /// left to the kernel's thread (hosts do not receive those replies).
    output: Arc<OutputPort<Out>>,
}

impl<In, Out> Relay<In, Out>
where
    In: Message + Serialize,
    Out: Message + DeserializeOwned,
{
    /// Relays on the calling (kernel) thread, with the help of blocking
    /// host calls, until the relay must end; hands back the state and why
    /// (`None` only if the state was lost, which the mutex rules out).
    #[allow(clippy::type_complexity)]
    pub(super) fn run(
        ctx: BlockingContext<In, Out>,
        pump: Pump,
    ) -> Option<(BlockingContext<In, Out>, Pump, Option<Out>, Stop)> {
        let core = ctx.core().clone();
        let output = ctx.output_port().clone();
        let policy = pump.policy();
        let relay = Arc::new(Relay {
            waker: pump.waker.clone(),
            held: Mutex::new(Some(Held {
                ctx,
                pump,
                stop: None,
                stray: None,
            })),
            hosts: AtomicUsize::new(0),
            host_left: AtomicU64::new(0),
            mode: AtomicU8::new(KERNEL_RELAYS),
            ended: AtomicBool::new(false),
            nudged: Mutex::new(false),
            nudge: Condvar::new(),
            gate: NapGate::new(),
            receiving_host: AtomicBool::new(false),
            long_nap: policy.check_interval,
            output,
        });
        core.assist.set(Some(relay.clone()));
        let stop = relay.drive();
        core.assist.set(None);
        // `ended` was set under the mutex: a host that takes it now leaves
        // at once, so the state is this thread's alone.
        let held = relay.held.lock().take();
        held.map(|Held { ctx, pump, stray, .. }| (ctx, pump, stray, stop))
    }

    /// Marks the relay ended (the mutex held) and passes `stop` on.
    fn end(&self, stop: Stop) -> Stop {
        self.ended.store(true, Ordering::SeqCst);
        stop
    }

    /// Whether hosts relay: one is in a call, or one left less than
    /// [`LINGER`] ago.
    fn hosts_relay(&self) -> bool {
        if self.hosts.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let left = self.host_left.load(Ordering::Relaxed);
        left != 0 && clock::ns_between(left, clock::now()) < LINGER.as_nanos() as u64
    }

    /// The kernel's thread: relays while no host does, polls while hosts
    /// do. Returns why the relay ends (the mutex's state still inside).
    fn drive(&self) -> Stop {
        loop {
            {
                let mut guard = self.held.lock();
                let Some(held) = guard.as_mut() else {
                    return self.end(Stop::Terminating { replies_refused: false });
                };
                if let Some(stop) = held.stop.take() {
                    return self.end(stop);
                }
                self.mode.store(KERNEL_RELAYS, Ordering::SeqCst);
                loop {
                    let moved = match held.pump.step(&mut held.ctx, Runner::Kernel, &mut held.stray) {
                        Ok(moved) => moved,
                        Err(stop) => return self.end(stop),
                    };
                    if self.hosts_relay() {
                        break;
                    }
                    if !moved {
                        if let Err(stop) = held.pump.idle(&mut held.ctx, None, &|| !self.hosts_relay()) {
                            return self.end(stop);
                        }
                    }
                }
                self.mode.store(HOSTS_RELAY, Ordering::SeqCst);
            }
            // Hosts relay: look now (a host's send may have missed the
            // mutex while this thread held it), then every POLL.
            loop {
                if let Some(mut guard) = self.held.try_lock() {
                    if let Some(held) = guard.as_mut() {
                        if let Some(stop) = held.stop.take() {
                            return self.end(stop);
                        }
                        if let Err(stop) = held.pump.step(&mut held.ctx, Runner::Kernel, &mut held.stray) {
                            return self.end(stop);
                        }
                        if held.ctx.should_terminate() {
                            return self.end(Stop::Terminating { replies_refused: false });
                        }
                    }
                }
                if !self.hosts_relay() {
                    break;
                }
                self.nap();
            }
        }
    }

    /// The kernel's thread's wait between looks while hosts relay: [`POLL`],
    /// or `long_nap` while a host sleeps relaying in a receive (it moves
    /// whatever comes until it leaves, and nudges this thread when it does:
    /// the [`NapGate`] makes sure a long nap never outlasts the host's call
    /// unnoticed). The decision is taken under the nudge's mutex, which the
    /// nudge takes too, so a nudge after it always ends the wait.
    fn nap(&self) {
        let mut nudged = self.nudged.lock();
        if !*nudged {
            let long = self.gate.kernel_naps_long();
            self.nudge
                .wait_for(&mut nudged, if long { self.long_nap } else { POLL });
            self.gate.kernel_wakes();
        }
        *nudged = false;
    }

    /// Wakes the kernel's thread from its nap.
    fn nudge(&self) {
        *self.nudged.lock() = true;
        self.nudge.notify_one();
    }

    /// Whether a host call may relay: not once the relay ended, nor while
    /// the kernel's output is linked to another kernel.
    fn hosts_may_relay(&self) -> bool {
        !self.ended.load(Ordering::SeqCst) && !self.output.linked.load(Ordering::Acquire)
    }

    /// Counts a host call in; wakes the kernel's thread if it may be
    /// asleep holding the mutex.
    fn enter(&self) {
        self.hosts.fetch_add(1, Ordering::SeqCst);
        if self.mode.load(Ordering::SeqCst) == KERNEL_RELAYS {
            self.waker.wake_by_ref();
        }
    }

    fn leave(&self) {
        self.host_left.store(clock::now().max(1), Ordering::Relaxed);
        self.hosts.fetch_sub(1, Ordering::SeqCst);
        if self.gate.host_must_nudge() {
            self.nudge();
        }
    }

    /// A host met the end of the relay: records it for the kernel's thread
    /// and wakes that thread.
    fn hand_back(&self, held: &mut Held<In, Out>, stop: Stop) {
        held.stop = Some(stop);
        self.nudge();
    }

    /// One host step under the mutex; false once the relay must end.
    fn host_step(&self, held: &mut Held<In, Out>) -> Option<bool> {
        if held.stop.is_some() {
            return None;
        }
        match held.pump.step(&mut held.ctx, Runner::Host, &mut held.stray) {
            Ok(moved) => {
                if held.stray.is_some() {
                    // Only the kernel's thread may wait to forward it.
                    self.nudge();
                }
                Some(moved)
            }
            Err(stop) => {
                self.hand_back(held, stop);
                None
            }
        }
    }

    /// Takes the mutex for a receive: waits in slices while the kernel's
    /// thread holds it (it lets go once it sees this host), giving up when a
    /// message is ready anyway, another host relays in its receive, the
    /// deadline passes or the relay ended.
    fn lock_for_receive(
        &self,
        deadline: Option<Instant>,
        ready: &dyn Fn() -> bool,
    ) -> Option<MutexGuard<'_, Option<Held<In, Out>>>> {
        loop {
            if self.ended.load(Ordering::SeqCst) || ready() {
                return None;
            }
            if let Some(guard) = self.held.try_lock() {
                return Some(guard);
            }
            // Another host relays in its receive, maybe for long: wait on
            // the output queue instead, as without a relay (that host, then
            // the kernel's thread, forwards the replies).
            if self.receiving_host.load(Ordering::SeqCst) {
                return None;
            }
            let slice = match deadline {
                Some(d) => LOCK_SLICE.min(d.checked_duration_since(Instant::now())?),
                None => LOCK_SLICE,
            };
            if let Some(guard) = self.held.try_lock_for(slice) {
                return Some(guard);
            }
        }
    }
}

impl<In, Out> HostAssist for Relay<In, Out>
where
    In: Message + Serialize,
    Out: Message + DeserializeOwned,
{
    fn after_send(&self) {
        if !self.hosts_may_relay() {
            return;
        }
        self.enter();
        if let Some(mut guard) = self.held.try_lock() {
            if let Some(held) = guard.as_mut().filter(|_| !self.ended.load(Ordering::SeqCst)) {
                self.host_step(held);
            }
        }
        self.leave();
    }

    fn before_receive(&self, deadline: Option<Instant>, ready: &dyn Fn() -> bool) {
        if !self.hosts_may_relay() {
            return;
        }
        self.enter();
        if let Some(mut guard) = self.lock_for_receive(deadline, ready) {
            let _receiving = Flag::raise(&self.receiving_host);
            if let Some(held) = guard.as_mut().filter(|_| !self.ended.load(Ordering::SeqCst)) {
                while !ready() {
                    match self.host_step(held) {
                        None => break,
                        Some(true) => continue,
                        Some(false) => {}
                    }
                    // As `ProcessChannel` waits: many cheap looks at the
                    // reply ring between the rounds that yield or sleep.
                    if held.pump.reply_arrived(HOST_POLLS) {
                        continue;
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let idle = held.pump.idle(&mut held.ctx, deadline, &|| {
                        self.gate.host_sleeps();
                        true
                    });
                    self.gate.host_wakes();
                    if let Err(stop) = idle {
                        self.hand_back(held, stop);
                        break;
                    }
                }
            }
        }
        self.leave();
    }
}

/// An [`AtomicBool`] raised while this lives.
struct Flag<'a>(&'a AtomicBool);

impl<'a> Flag<'a> {
    fn raise(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        Flag(flag)
    }
}

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
