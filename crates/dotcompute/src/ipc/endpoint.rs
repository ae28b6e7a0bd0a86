//! [`Endpoint`]: one end of a region with its two ring halves, the heartbeat
//! it beats, and the watch it keeps on the peer. Every wait here is bounded:
//! it returns when its condition holds, when the peer is gone, when the host
//! asks the kernel to stop (kernel side), or at its deadline.
//!
//! # Waiting
//!
//! A wait polls the ring in three phases, measured from the start of the
//! wait: busy-spinning for [`WaitPolicy::spin`] (default 0, see there), then
//! polling with a `yield_now` between rounds of 64 polls for
//! [`WaitPolicy::yield_for`] (the peer may share our core), then sleeping on
//! the ring's futex word (see [`byte_ring`]) for at most
//! [`WaitPolicy::check_interval`] at a time.
//!
//! # Liveness
//!
//! Events wake a sleeping waiter at once: a record or room on the rings,
//! the peer closing its end or failing (it wakes the futexes), a terminate
//! request, and, where the OS can tell (Linux 5.3 and later: a pidfd
//! polled by a small thread of each end, see [`sys::ExitWatch`]), the peer
//! process's exit, a crash or `SIGKILL` included. What no event announces
//! is found by checks: at least every `check_interval` (and after every
//! sleep) the waiter checks,
//! in this order: the spawned child's exit status (`waitpid`, host side), the
//! peer end's state word (closed / failed), the peer's pid (`kill(pid, 0)`:
//! gone; and, at most every 100 ms, since the read is most of an idle
//! wake-up's cost, `/proc/<pid>/stat`: zombie, or a different process
//! reusing the pid; neither while the exit watch says the peer runs),
//! and the peer's heartbeat counter, which a dedicated thread of each end
//! advances every `heartbeat_interval`; no change for `heartbeat_timeout`
//! means a stopped or frozen process. Records the peer published before it
//! went away are still delivered first.

use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::byte_ring::{self, slots_for, RingConsumer, RingProducer};
use super::error::IpcError;
use super::shm::{end_state, terminate, Region, Role};
use super::sys;

/// How a side waits for its peer.
///
/// A wait polls the ring; every 64 polls it looks at the clock and, past
/// `spin`, yields the CPU between rounds of polls; past `spin + yield_for` it
/// sleeps on the ring's futex.
///
/// The default does not busy-spin (`spin` = 0). On a machine with a core to
/// spare for each side, spinning saves about 1 µs per round trip, but on 2
/// shared cores the host and the kernel process often land on the same core,
/// and then every round trip costs two full spin periods: measured on this
/// project's 2-core VM with both processes pinned to one core,
/// `ProcessChannel::call` p50 was 104 µs with a 50 µs spin and 2.4 µs with
/// yielding polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Busy-poll (without yielding) this long first. Default 0.
    pub spin: Duration,
    /// Then poll, yielding the CPU between rounds of 64 polls, this much
    /// longer. Default 250 µs.
    pub yield_for: Duration,
    /// Then sleep on the futex, waking at least this often to check the
    /// peer and the deadline. Bounds how late a frozen peer (heartbeat), a
    /// reused pid, and a dead peer where its exit cannot be watched are
    /// noticed (an exit the OS reports wakes the waiter at once: see the
    /// module's *Liveness*). Default 100 ms: each idle end wakes ten times a
    /// second.
    pub check_interval: Duration,
    /// Runtime integration only: the longest the kernel's pump thread
    /// sleeps at a time while a request waits for room in a full request
    /// ring (room is not signalled to it; replies are). Default 1 ms. (An
    /// idle pump sleeps on one futex that both a request and a reply wake,
    /// checking the process every `check_interval`.)
    pub park: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            spin: Duration::ZERO,
            yield_for: Duration::from_micros(250),
            check_interval: Duration::from_millis(100),
            park: Duration::from_millis(1),
        }
    }
}

impl WaitPolicy {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), IpcError> {
        if self.check_interval.is_zero() || self.check_interval > Duration::from_secs(10) {
            return Err(IpcError::config(
                "check_interval",
                format!("{:?}", self.check_interval),
                "must be in (0, 10 s]",
            ));
        }
        if self.park.is_zero() || self.park > Duration::from_secs(1) {
            return Err(IpcError::config(
                "park",
                format!("{:?}", self.park),
                "must be in (0, 1 s]",
            ));
        }
        Ok(())
    }
}

/// Advances this end's heartbeat from a dedicated thread, so that a busy
/// handler never looks dead.
struct Heartbeat {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    fn start(region: Arc<Region>) -> Result<Heartbeat, IpcError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let interval = region.heartbeat_interval();
        let thread = std::thread::Builder::new()
            .name("dotcompute-ipc-heartbeat".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    region.beat();
                    stopped = cv.wait_timeout(stopped, interval).unwrap_or_else(|p| p.into_inner()).0;
                }
            })
            .map_err(|e| IpcError::Spawn {
                program: "heartbeat thread".into(),
                source: Arc::new(e),
            })?;
        Ok(Heartbeat {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What is known about the peer process.
pub(crate) struct PeerWatch {
    /// The spawned child (host side of a spawned kernel).
    pub child: Option<Child>,
    pid: u32,
    start_time: u64,
    last_beat: u64,
    last_beat_at: Instant,
    /// When `/proc/<pid>/stat` was last read.
    last_stat_at: Instant,
}

/// How often a check reads the peer's `/proc/<pid>/stat` (a zombie or a
/// reused pid is noticed this late at most; a gone pid at the next check).
const STAT_EVERY: Duration = Duration::from_millis(100);

impl PeerWatch {
    pub(crate) fn new(child: Option<Child>) -> Self {
        PeerWatch {
            child,
            pid: 0,
            start_time: 0,
            last_beat: 0,
            last_beat_at: Instant::now(),
            // The first check reads it.
            last_stat_at: Instant::now().checked_sub(STAT_EVERY).unwrap_or_else(Instant::now),
        }
    }
}

/// How a peer process ended (host side, after terminate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelExit {
    /// The kernel process's pid.
    pub pid: u32,
    /// It closed its end and (if it was our child) exited with status 0.
    pub clean: bool,
    /// It had to be killed after the exit timeout.
    pub killed: bool,
    /// Its exit status in words, or what was observed.
    pub detail: String,
}

/// One end of a region: ring halves, heartbeat, peer watch.
pub(crate) struct Endpoint {
    region: Arc<Region>,
    tx: RingProducer,
    rx: RingConsumer,
    peer: PeerWatch,
    policy: WaitPolicy,
    last_check: Instant,
    gone: Option<IpcError>,
    /// Wakes this end's waits when the peer process exits (where the OS
    /// can tell: see [`sys::ExitWatch`]); `None` until the peer's pid is
    /// known, or where it cannot be watched.
    exit_watch: Option<(u32, sys::ExitWatch)>,
    /// Whether a watch was tried (once per endpoint, when the pid is known).
    watch_tried: bool,
    _heartbeat: Heartbeat,
}

impl Endpoint {
    pub(crate) fn new(region: Region, peer: PeerWatch, policy: WaitPolicy) -> Result<Endpoint, IpcError> {
        policy.validate()?;
        let region = Arc::new(region);
        let (tx, rx) = byte_ring::split(&region)?;
        let heartbeat = Heartbeat::start(region.clone())?;
        let mut end = Endpoint {
            region,
            tx,
            rx,
            peer,
            policy,
            last_check: Instant::now(),
            gone: None,
            exit_watch: None,
            watch_tried: false,
            _heartbeat: heartbeat,
        };
        end.refresh_peer_pid();
        Ok(end)
    }

    pub(crate) fn region(&self) -> &Arc<Region> {
        &self.region
    }

    pub(crate) fn role(&self) -> Role {
        self.region.role()
    }

    pub(crate) fn policy(&self) -> &WaitPolicy {
        &self.policy
    }

    /// The peer's pid: the spawned child's, else the one in its end line (0
    /// while nobody claimed it).
    pub(crate) fn peer_pid(&mut self) -> u32 {
        self.refresh_peer_pid();
        if self.peer.pid != 0 {
            self.peer.pid
        } else {
            self.peer.child.as_ref().map_or(0, Child::id)
        }
    }

    fn refresh_peer_pid(&mut self) {
        if self.peer.pid == 0 {
            let peer = self.role().peer();
            let pid = self.region.end_pid(peer);
            if pid != 0 {
                self.peer.pid = pid;
                self.peer.start_time = self.region.end_start_time(peer);
                self.peer.last_beat = self.region.heartbeat(peer);
                self.peer.last_beat_at = Instant::now();
            }
        }
        self.watch_peer_exit();
    }

    /// Starts the exit watch once the peer's pid is known: our spawned
    /// child's at once, an attached peer's when it claims its end. A pid
    /// that no longer names the peer (start time differs: the peer is gone
    /// and the pid reused) gets no watch, and the periodic checks report
    /// the peer gone.
    fn watch_peer_exit(&mut self) {
        if self.watch_tried {
            return;
        }
        let (pid, own_child) = match &self.peer.child {
            Some(child) => (child.id(), true),
            None => (self.peer.pid, false),
        };
        if pid == 0 {
            return;
        }
        self.watch_tried = true;
        let region = self.region.clone();
        let watch = sys::ExitWatch::start(pid, move || byte_ring::wake_own(&region));
        // Our own child cannot be replaced before we reap it; another
        // process can, so its identity is checked after the pidfd is open.
        if own_child || sys::process_alive(pid, self.peer.start_time) {
            self.exit_watch = watch.map(|w| (pid, w));
        }
    }

    /// Whether the peer process (the one that claimed the peer end) is
    /// watched and has not exited: then a check needs no `kill` or `/proc`
    /// read to know it runs.
    fn peer_watched_running(&self) -> bool {
        self.exit_watch
            .as_ref()
            .is_some_and(|(pid, w)| *pid == self.peer.pid && !w.exited())
    }

    pub(crate) fn mark_ready(&self) {
        self.region.set_own_state(end_state::READY);
    }

    /// Kernel side: the host's terminate request.
    pub(crate) fn terminate_request(&self) -> u32 {
        self.region.terminate_request()
    }

    /// Checks the peer now (see the module docs for the order of checks).
    pub(crate) fn check_peer(&mut self) -> Result<(), IpcError> {
        if let Some(e) = &self.gone {
            return Err(e.clone());
        }
        self.last_check = Instant::now();
        match self.peer_status() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.gone = Some(e.clone());
                Err(e)
            }
        }
    }

    /// [`check_peer`](Self::check_peer), at most once per `check_interval`.
    #[inline]
    pub(crate) fn maybe_check_peer(&mut self) -> Result<(), IpcError> {
        if let Some(e) = &self.gone {
            return Err(e.clone());
        }
        if self.last_check.elapsed() >= self.policy.check_interval {
            self.check_peer()
        } else {
            Ok(())
        }
    }

    fn peer_status(&mut self) -> Result<(), IpcError> {
        self.refresh_peer_pid();
        let peer = self.role().peer();
        let state = self.region.end_state(peer);
        let pid = self.peer_pid();
        if let Some(child) = self.peer.child.as_mut() {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(match state {
                        end_state::FAILED => IpcError::KernelFailed {
                            pid,
                            reason: self.region.failure_text(),
                        },
                        end_state::CLOSED if status.success() => IpcError::PeerClosed { pid },
                        _ => IpcError::PeerDied {
                            pid,
                            detail: sys::describe_exit(status),
                        },
                    });
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(pid, error = %e, "cannot poll the kernel process"),
            }
        }
        match state {
            end_state::FAILED if peer == Role::Kernel => {
                return Err(IpcError::KernelFailed {
                    pid,
                    reason: self.region.failure_text(),
                })
            }
            end_state::CLOSED | end_state::FAILED => return Err(IpcError::PeerClosed { pid }),
            _ => {}
        }
        if self.peer.pid == 0 {
            // Not attached yet: the startup wait has its own timeout.
            return Ok(());
        }
        let own_child = self.peer.child.as_ref().is_some_and(|c| c.id() == self.peer.pid);
        // A watched peer is known to run until its watch says otherwise.
        // Else signal 0 on every check; the `/proc` read (zombie, pid
        // reuse), the costly part of an idle wake-up, at most every
        // `STAT_EVERY`.
        let full = self.peer.last_stat_at.elapsed() >= STAT_EVERY;
        let alive = if own_child || self.peer_watched_running() {
            true
        } else if full {
            self.peer.last_stat_at = Instant::now();
            sys::process_alive(self.peer.pid, self.peer.start_time)
        } else {
            sys::process_exists(self.peer.pid)
        };
        if !alive {
            return Err(IpcError::PeerDied {
                pid: self.peer.pid,
                detail: "the process is no longer running".into(),
            });
        }
        if let Some(timeout) = self.region.heartbeat_timeout() {
            let beat = self.region.heartbeat(peer);
            if beat != self.peer.last_beat {
                self.peer.last_beat = beat;
                self.peer.last_beat_at = Instant::now();
            } else {
                let silent = self.peer.last_beat_at.elapsed();
                if silent > timeout {
                    return Err(IpcError::PeerUnresponsive {
                        pid: self.peer.pid,
                        silent_for: silent,
                    });
                }
            }
        }
        Ok(())
    }

    /// The peer closed a ring: the precise reason (failed, died, closed).
    fn closed_error(&mut self) -> IpcError {
        let pid = self.peer_pid();
        let e = self.check_peer().err().unwrap_or(IpcError::PeerClosed { pid });
        self.gone.get_or_insert(e).clone()
    }

    /// Pushes `bytes` if there is room now.
    #[inline]
    pub(crate) fn try_send(&mut self, bytes: &[u8]) -> Result<bool, IpcError> {
        self.maybe_check_peer()?;
        if self.tx.is_consumer_closed() {
            return Err(self.closed_error());
        }
        self.tx.try_push(bytes)
    }

    /// Writes `bytes` if there is room now, without publishing it (see
    /// [`RingProducer::try_write`](super::byte_ring::RingProducer::try_write));
    /// no peer check (the caller makes one per batch).
    #[inline]
    pub(crate) fn try_write(&mut self, bytes: &[u8]) -> Result<bool, IpcError> {
        if self.tx.is_consumer_closed() {
            return Err(self.closed_error());
        }
        self.tx.try_write(bytes)
    }

    /// Publishes what [`try_write`](Self::try_write) wrote.
    #[inline]
    pub(crate) fn publish(&mut self) {
        self.tx.publish();
    }

    /// Pushes `bytes`, waiting for room until `deadline` (`None`: as long as
    /// the peer lives).
    pub(crate) fn send(&mut self, bytes: &[u8], deadline: Option<Instant>) -> Result<(), IpcError> {
        if self.try_send(bytes)? {
            return Ok(());
        }
        let slots = slots_for(bytes.len(), self.tx.slot_size());
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.tx.try_push(bytes)? {
                return Ok(());
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            self.maybe_check_peer()?;
            if self.stop_requested(true) {
                // The host stopped reading: don't wait for room it won't make.
                return Err(IpcError::Terminated);
            }
            if self.tx.is_consumer_closed() {
                return Err(self.closed_error());
            }
            let waited = now - start;
            if let Some(d) = deadline {
                if now >= d {
                    return Err(IpcError::Timeout {
                        operation: "for room in the ring",
                        waited,
                    });
                }
            }
            if waited < self.policy.spin {
                std::hint::spin_loop();
            } else if waited < self.policy.spin + self.policy.yield_for {
                std::thread::yield_now();
            } else {
                let nap = deadline.map_or(self.policy.check_interval, |d| {
                    d.saturating_duration_since(now).min(self.policy.check_interval)
                });
                self.tx.wait_for_space(slots, nap);
                self.check_peer()?;
            }
        }
    }

    /// Takes one record if one is there (no peer check: a cheap poll).
    #[inline]
    pub(crate) fn try_recv_raw(&mut self, out: &mut Vec<u8>) -> Result<bool, IpcError> {
        self.rx.try_pop(out)
    }

    /// Whether the host asked this (kernel) end to stop; with `drain`, only
    /// the "now" request counts.
    fn stop_requested(&self, drain_ok: bool) -> bool {
        if self.role() != Role::Kernel {
            return false;
        }
        match self.region.terminate_request() {
            terminate::NONE => false,
            terminate::DRAIN => !drain_ok,
            _ => true,
        }
    }

    /// Takes the next record into `out`, waiting until `deadline` (`None`:
    /// as long as the peer lives). `Ok(false)` when the deadline passed.
    ///
    /// Kernel side: [`IpcError::Terminated`] once the host asked to stop
    /// ("now": at once; "drain": when nothing is left to read).
    pub(crate) fn recv(&mut self, out: &mut Vec<u8>, deadline: Option<Instant>) -> Result<bool, IpcError> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.stop_requested(true) {
                return Err(IpcError::Terminated);
            }
            if self.rx.try_pop(out)? {
                return Ok(true);
            }
            spins = spins.wrapping_add(1);
            if spins % 64 != 1 {
                std::hint::spin_loop();
                continue;
            }
            if self.stop_requested(false) {
                return Err(IpcError::Terminated);
            }
            let now = Instant::now();
            if let Err(e) = self.maybe_check_peer() {
                return self.drain_then(out, e);
            }
            if self.rx.is_producer_closed() {
                let e = self.closed_error();
                return self.drain_then(out, e);
            }
            if let Some(d) = deadline {
                if now >= d {
                    return Ok(false);
                }
            }
            let waited = now - start;
            if waited < self.policy.spin {
                std::hint::spin_loop();
            } else if waited < self.policy.spin + self.policy.yield_for {
                std::thread::yield_now();
            } else {
                let nap = deadline.map_or(self.policy.check_interval, |d| {
                    d.saturating_duration_since(now).min(self.policy.check_interval)
                });
                self.rx.wait_for_data(nap);
                if !self.rx.has_data() {
                    if let Err(e) = self.check_peer() {
                        return self.drain_then(out, e);
                    }
                }
            }
        }
    }

    /// The peer is gone: deliver what it published before, then the error.
    fn drain_then(&mut self, out: &mut Vec<u8>, e: IpcError) -> Result<bool, IpcError> {
        if self.rx.try_pop(out)? {
            Ok(true)
        } else {
            Err(e)
        }
    }

    /// Whether a record is ready to be taken.
    pub(crate) fn has_data(&self) -> bool {
        self.rx.has_data()
    }

    /// Sleeps up to `timeout` for a record (kernel: or a terminate request).
    pub(crate) fn wait_for_data(&self, timeout: Duration) {
        self.rx.wait_for_data(timeout);
    }

    /// See [`RingConsumer::arm_wait`](super::byte_ring::RingConsumer::arm_wait).
    pub(crate) fn arm_wait(&self) -> byte_ring::ArmedWait {
        self.rx.arm_wait()
    }

    /// See [`RingConsumer::sleep_armed`](super::byte_ring::RingConsumer::sleep_armed).
    pub(crate) fn sleep_armed(&self, armed: byte_ring::ArmedWait, timeout: Duration) {
        self.rx.sleep_armed(armed, timeout);
    }

    /// See [`RingConsumer::disarm`](super::byte_ring::RingConsumer::disarm).
    pub(crate) fn disarm(&self) {
        self.rx.disarm();
    }

    /// A waker that ends [`sleep_armed`](Self::sleep_armed) from this process.
    pub(crate) fn data_waker(&self) -> std::task::Waker {
        self.rx.data_waker()
    }

    /// Host side: asks the kernel to stop, waking it.
    pub(crate) fn request_terminate(&self, drain: bool) {
        self.region
            .request_terminate(if drain { terminate::DRAIN } else { terminate::NOW });
        byte_ring::wake_all(&self.region);
    }

    /// Kernel side: reports a handler failure to the host (then closes).
    pub(crate) fn fail(&self, reason: &str) {
        self.region.set_failure(reason);
        self.region.close_rings();
    }

    /// Marks this end closed (the peer sees it after the records published
    /// before) and wakes the peer.
    pub(crate) fn close(&self) {
        let state = self.region.end_state(self.role());
        if state == end_state::ATTACHED || state == end_state::READY {
            self.region.set_own_state(end_state::CLOSED);
            self.region.close_rings();
        }
    }

    /// Host side, after a terminate request: waits up to `timeout` for the
    /// kernel process to exit, calling `on_record` for every record it still
    /// publishes (returning `false` from it escalates the request to "now"
    /// and drops the rest), kills a spawned child that overstays, and reaps
    /// it.
    pub(crate) fn wait_exit(
        &mut self,
        timeout: Duration,
        out: &mut Vec<u8>,
        mut on_record: impl FnMut(&[u8]) -> bool,
    ) -> KernelExit {
        let pid = self.peer_pid();
        let deadline = Instant::now() + timeout;
        let mut killed = false;
        let mut forwarding = true;
        loop {
            while let Ok(true) = self.rx.try_pop(out) {
                if forwarding && !on_record(out) {
                    forwarding = false;
                    self.request_terminate(false);
                }
            }
            let exited = match self.peer.child.as_mut() {
                Some(child) => match child.try_wait() {
                    Ok(Some(status)) => Some(Some(status)),
                    Ok(None) => None,
                    Err(_) => Some(None),
                },
                // Attached peer: done when it closed its end or died.
                None => {
                    let state = self.region.end_state(Role::Kernel);
                    let dead = self.peer.pid == 0 || !sys::process_alive(self.peer.pid, self.peer.start_time);
                    (state == end_state::CLOSED || state == end_state::FAILED || dead).then_some(None)
                }
            };
            if let Some(status) = exited {
                while let Ok(true) = self.rx.try_pop(out) {
                    if forwarding {
                        forwarding = on_record(out);
                    }
                }
                let state = self.region.end_state(Role::Kernel);
                let closed = state == end_state::CLOSED;
                let detail = match (status, state) {
                    (_, end_state::FAILED) => format!("failed: {}", self.region.failure_text()),
                    (Some(s), _) => sys::describe_exit(s),
                    (None, end_state::CLOSED) => "closed its end".into(),
                    (None, _) => "no longer running".into(),
                };
                let clean = closed && !killed && status.is_none_or(|s| s.success());
                self.gone.get_or_insert(IpcError::PeerClosed { pid });
                return KernelExit {
                    pid,
                    clean,
                    killed,
                    detail,
                };
            }
            if Instant::now() >= deadline && !killed {
                match self.peer.child.as_mut() {
                    Some(child) => {
                        tracing::warn!(pid, ?timeout, "kernel process did not exit in time; killing it");
                        let _ = child.kill();
                        killed = true;
                    }
                    None => {
                        // Not ours to kill.
                        return KernelExit {
                            pid,
                            clean: false,
                            killed: false,
                            detail: format!("still running {timeout:?} after the terminate request"),
                        };
                    }
                }
            }
            self.rx.wait_for_data(Duration::from_millis(1));
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if self.role() == Role::Host && self.region.terminate_request() == terminate::NONE {
            // The kernel sees "terminate" (a clean end) rather than "closed".
            self.region.request_terminate(terminate::NOW);
        }
        self.close();
        if let Some(mut child) = self.peer.child.take() {
            // A spawned kernel never outlives its channel.
            if let Ok(None) = child.try_wait() {
                let deadline = Instant::now() + Duration::from_millis(500);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
