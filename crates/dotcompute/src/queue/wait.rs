//! How a blocked thread waits: poll briefly, then park.
//!
//! Invariant: a thread parks only after registering its [`ThreadWaker`]
//! with the queue under the queue's lock (in the same critical section as
//! the failed attempt), so a notifier that changes the queue afterwards
//! unparks it; an unpark that comes before the park makes the park return
//! at once. Parks are bounded by the caller's deadline.
//!
//! Polling first matters on machines where waking a parked thread is slow:
//! on the 2-vCPU VMs the benchmarks run on, a futex wake of a thread whose
//! vCPU went idle costs 50–60 µs, while a peer that answers within a few
//! microseconds is met by polling at no such cost. The poll is bounded
//! (about [`SPIN_NS`] of spinning, then yielding until [`POLL_NS`]), so an
//! idle queue costs no CPU after that.
//!
//! An async wait on an answer from another thread ([`spin_for`]) has the
//! spinning part of that first phase only: it just looks, and its caller
//! then waits the usual way (registers its waker, then looks once more, or
//! registers under the queue's lock), so nothing that arrives between the
//! last look and the registration is missed.
//!
//! The runtime's rings wait asynchronously on an event listener
//! ([`wait_async`], [`wait_async_or_stop`]): the caller creates the
//! listener before its last look, so a notification after that look ends
//! the wait.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use event_listener::EventListener;

use super::clock;
use super::timer::Sleep;

/// Busy-polling before the first yield, in nanoseconds.
pub(crate) const SPIN_NS: u64 = 5_000;
/// Polling (spinning, then yielding) before parking, in nanoseconds.
pub(crate) const POLL_NS: u64 = 50_000;

/// How the receivers of one of the runtime's queues wait while it is empty,
/// chosen by who sends into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceiverWait {
    /// A blocked thread spins [`SPIN_NS`] before it starts yielding (false:
    /// it yields from the start — for a queue fed by a thread that itself
    /// waits on another process, where a spinning receiver only takes the
    /// vCPU the two of them need).
    pub spin: bool,
    /// An async receive looks again, spinning in place for up to
    /// [`SPIN_NS`] ([`spin_for`]), before it registers its waker — for a
    /// queue fed by a kernel's own thread, whose answer then needs no
    /// wake-up of a worker thread that went to sleep. False for a queue fed
    /// by a task of the same executor (that task cannot run while this one
    /// spins).
    pub async_poll: bool,
}

/// The poll-then-park schedule of one wait.
pub(crate) struct Backoff {
    start: Option<clock::Stamp>,
    /// Spinning before the first yield: [`SPIN_NS`], or 0 for a queue whose
    /// peer needs this thread's vCPU to answer.
    spin_ns: u64,
    /// Polling budget: [`POLL_NS`], or less if the wait's deadline is nearer.
    budget_ns: u64,
    done: bool,
}

impl Backoff {
    /// A schedule that never polls past `deadline` and spins `spin_ns`
    /// before it starts yielding.
    pub(crate) fn new(deadline: Option<Instant>, spin_ns: u64) -> Self {
        let budget_ns = match deadline {
            None => POLL_NS,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                u64::try_from(left.as_nanos()).unwrap_or(u64::MAX).min(POLL_NS)
            }
        };
        Backoff {
            start: None,
            spin_ns,
            budget_ns,
            done: budget_ns == 0,
        }
    }

    /// Polls `ready` (a cheap, lock-free hint) until it says yes — then
    /// returns true: try now — or until the polling budget is spent — then
    /// returns false: register and park. Once spent, it returns `ready()`
    /// at once.
    pub(crate) fn snooze(&mut self, ready: impl Fn() -> bool) -> bool {
        if self.done {
            return ready();
        }
        let start = *self.start.get_or_insert_with(clock::now);
        loop {
            for _ in 0..16 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            let spent = clock::ns_between(start, clock::now());
            if spent >= self.budget_ns {
                self.done = true;
                return ready();
            }
            if spent >= self.spin_ns {
                thread::yield_now();
            }
        }
    }
}

/// The first phase of an async wait for an answer from another thread:
/// calls `look` (told whether it is the first look) until it gives a value,
/// spinning in place for up to [`SPIN_NS`] or until `deadline`. `None`: the
/// time is up, go and wait (register a waker). The executor's thread is
/// held meanwhile, as a blocked thread's first phase holds its own: a
/// task that instead yields on every look makes a multi-threaded Tokio
/// runtime wake another worker to steal it each time, a third busy thread
/// beside the kernel's, and a tail of 30–60 µs round trips on a 2-vCPU
/// machine (measured: docs/benchmarks.md, fifth pass).
pub(crate) fn spin_for<R>(deadline: Option<Instant>, mut look: impl FnMut(bool) -> Option<R>) -> Option<R> {
    let start = clock::now();
    let mut first = true;
    loop {
        for _ in 0..16 {
            if let Some(found) = look(first) {
                return Some(found);
            }
            first = false;
            std::hint::spin_loop();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || clock::ns_between(start, clock::now()) >= SPIN_NS {
            return None;
        }
    }
}

/// Wakes a parked thread.
pub(crate) struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl ThreadWaker {
    /// A waker that unparks the calling thread (one allocation per thread,
    /// then a reference-count increment per call).
    pub(crate) fn current() -> Waker {
        thread_local! {
            static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        }
        WAKER.with(Waker::clone)
    }
}

/// Parks the calling thread until unparked (or spuriously), or until
/// `deadline`. Returns false if the deadline has passed.
pub(crate) fn park_until(deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            thread::park();
            true
        }
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return false;
            }
            thread::park_timeout(d - now);
            true
        }
    }
}

/// The cases every receive that looks again before it sleeps must pass.
/// Waits for `listener`, or until `sleep` (if any) ends. Returns `false` on timeout.
pub(crate) async fn wait_async(mut listener: EventListener, mut sleep: Option<&mut Sleep>) -> bool {
    poll_fn(|cx| {
        if Pin::new(&mut listener).poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        let timed_out = match sleep.as_deref_mut() {
            Some(sleep) => Pin::new(sleep).poll(cx).is_ready(),
            None => false,
        };
        if timed_out {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// [`wait_async`] that also ends, with `None`, once `stop` is cancelled
/// (checked first). For the runtime's spin rings: a handler waiting for room
/// wakes on its kernel's termination and gets its message back.
pub(crate) async fn wait_async_or_stop(
    listener: EventListener,
    sleep: Option<&mut Sleep>,
    stop: Option<&tokio_util::sync::CancellationToken>,
) -> Option<bool> {
    match stop {
        None => Some(wait_async(listener, sleep).await),
        Some(token) => tokio::select! {
            biased;
            () = token.cancelled() => None,
            woke = wait_async(listener, sleep) => Some(woke),
        },
    }
}

#[cfg(test)]
pub(crate) mod checks {
    use std::future::Future;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::queue::RecvError;

    /// On a single-threaded executor beside a task that counts: nothing
    /// comes (the deadline ends the wait, the other task runs meanwhile); a
    /// thread sends soon after the receive began; a thread sends long after
    /// it went to sleep (its registration wakes it); a thread closes the
    /// queue while it sleeps. `recv(deadline)` gives the number of the
    /// message received; `send(n)` and `close()` run on other threads.
    pub(crate) fn looks_again_then_sleeps<Fut>(
        recv: impl Fn(Option<Instant>) -> Fut,
        send: impl Fn(u64) + Send + Clone + 'static,
        close: impl FnOnce() + Send + 'static,
    ) where
        Fut: Future<Output = Result<u64, RecvError>>,
    {
        let later = |after: Duration, act: Box<dyn FnOnce() + Send>| {
            std::thread::spawn(move || {
                std::thread::sleep(after);
                act();
            })
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let ticks = Arc::new(AtomicU64::new(0));
            let t2 = ticks.clone();
            let counter = tokio::spawn(async move {
                loop {
                    t2.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            });
            let t0 = Instant::now();
            assert!(matches!(
                recv(Some(t0 + Duration::from_millis(20))).await,
                Err(RecvError::Timeout)
            ));
            assert!(t0.elapsed() >= Duration::from_millis(20));
            assert!(ticks.load(Ordering::Relaxed) > 10, "the receive let the other task run");
            let s = send.clone();
            let soon = later(Duration::from_micros(5), Box::new(move || s(1)));
            assert_eq!(recv(None).await.expect("the early message"), 1);
            let late = later(Duration::from_millis(30), Box::new(move || send(2)));
            assert_eq!(recv(None).await.expect("the late message"), 2);
            let closer = later(Duration::from_millis(5), Box::new(close));
            assert!(matches!(recv(None).await, Err(RecvError::Closed)));
            for t in [soon, late, closer] {
                t.join().expect("the sending thread");
            }
            counter.abort();
        });
    }
}
