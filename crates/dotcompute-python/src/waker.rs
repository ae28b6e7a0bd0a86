//! Waking an asyncio event loop from Rust, without a thread hop on the hot path.
//!
//! A Rust future polled by an [`Awaitable`](crate::awaitable::Awaitable) on
//! the loop's thread is given a [`Waker`](std::task::Waker) built from a
//! [`WakeSlot`]. While the task waits, the slot holds the asyncio future the
//! task is blocked on; waking the slot resolves that future, which is all
//! asyncio needs to resume the task.
//!
//! Invariants:
//! - no Python code ever runs inside `wake()`: wakers are called by Rust code
//!   that may hold its own locks (event-listener calls `wake()` under its list
//!   lock), so a wake only records the slot. A wake on the loop's own thread,
//!   inside one of this crate's entry points ([`Deferral`]), is kept in a
//!   thread-local list and resolved when the entry point returns, after every
//!   Rust lock is released; any other wake is queued on the loop's
//!   [`LoopNotifier`] and a byte is written to a pipe the loop watches
//!   (`loop.add_reader`), so the waking thread never needs the GIL;
//! - a wake is never lost: a slot woken before its task started waiting
//!   remembers it ([`WakeSlot::take_early_wake`]), and the notifier writes a
//!   byte whenever its queue goes from empty to non-empty, while its reader
//!   drains the pipe before it takes the queue;
//! - everything here is `Send + Sync` (no reliance on the GIL for exclusion),
//!   so it can follow a free-threaded interpreter.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::ThreadId;
use std::time::Instant;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

/// This thread's entry points and the wakes they deferred, kept together
/// so that entering and leaving one costs one thread-local access each.
struct Deferred {
    /// Depth of nested entry points on this thread (see [`Deferral`]).
    depth: Cell<usize>,
    /// Slots woken on this thread inside an entry point, resolved at its end.
    woken: RefCell<Vec<Arc<WakeSlot>>>,
}

thread_local! {
    static DEFERRED: Deferred = const {
        Deferred { depth: Cell::new(0), woken: RefCell::new(Vec::new()) }
    };
}

/// Marks a call from Python into this crate: wakes that happen on this thread
/// meanwhile are resolved when the outermost `Deferral` is dropped, after the
/// Rust locks taken by the call are released.
pub struct Deferral<'py> {
    py: Python<'py>,
}

impl<'py> Deferral<'py> {
    /// Enters an entry point.
    pub fn enter(py: Python<'py>) -> Self {
        DEFERRED.with(|d| d.depth.set(d.depth.get() + 1));
        Deferral { py }
    }
}

impl Drop for Deferral<'_> {
    fn drop(&mut self) {
        let flush = DEFERRED.with(|d| {
            let n = d.depth.get().saturating_sub(1);
            d.depth.set(n);
            n == 0 && !d.woken.borrow().is_empty()
        });
        if flush {
            flush_deferred(self.py);
        }
    }
}

/// Resolves the slots woken on this thread inside entry points. The list's
/// buffer goes back to the thread once drained, so deferring a wake does not
/// allocate.
pub fn flush_deferred(py: Python<'_>) {
    let mut batch = Vec::new();
    loop {
        DEFERRED.with(|d| std::mem::swap(&mut *d.woken.borrow_mut(), &mut batch));
        if batch.is_empty() {
            return;
        }
        for slot in batch.drain(..) {
            slot.fire(py);
        }
    }
}

/// Something the loop's thread must do.
pub enum LoopEvent {
    /// Resolve the slot's asyncio future.
    Wake(Arc<WakeSlot>),
    /// Run a closure on the loop's thread, attached to the interpreter.
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
}

/// One asyncio event loop, as seen from Rust: its thread, and a pipe it
/// watches through which other threads hand it [`LoopEvent`]s.
pub struct LoopNotifier {
    thread: ThreadId,
    read_fd: RawFd,
    write_fd: RawFd,
    queue: Mutex<Vec<LoopEvent>>,
    loop_obj: Py<PyAny>,
    closed: AtomicBool,
    fds_closed: AtomicBool,
    timers: Mutex<Timers>,
    /// The event loop's future class, when the loop uses the standard one
    /// (built directly: cheaper than `loop.create_future()`).
    future_class: Option<Py<PyAny>>,
}

/// Deadlines of the tasks waiting on this loop, served by one asyncio timer
/// (`loop.call_later`) armed for the earliest of them: adding or removing a
/// deadline later than the armed one touches only this table.
#[derive(Default)]
struct Timers {
    entries: BTreeMap<(Instant, u64), Weak<WakeSlot>>,
    next_id: u64,
    /// When the asyncio timer is due, if one is armed.
    armed: Option<Instant>,
}

/// A deadline registered with [`LoopNotifier::add_deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineKey(Instant, u64);

impl LoopNotifier {
    /// The notifier of the event loop running on this thread, created and
    /// registered with the loop (`add_reader`) on first use.
    ///
    /// # Errors
    /// `RuntimeError` if no event loop is running on this thread.
    pub fn current(py: Python<'_>) -> PyResult<Arc<LoopNotifier>> {
        static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let get = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?;
        let loop_obj = get.call0().map_err(|_| {
            PyRuntimeError::new_err("dotcompute: no running event loop (await this inside a coroutine run by asyncio)")
        })?;
        Self::for_loop(py, &loop_obj)
    }

    /// The notifier of `loop_obj`, created and registered on first use.
    ///
    /// # Errors
    /// The loop's `add_reader` failed (a closed loop, or one without reader support).
    pub fn for_loop(py: Python<'_>, loop_obj: &Bound<'_, PyAny>) -> PyResult<Arc<LoopNotifier>> {
        thread_local! {
            static LAST: RefCell<Option<(usize, Weak<LoopNotifier>)>> = const { RefCell::new(None) };
        }
        let key = loop_obj.as_ptr() as usize;
        let cached = LAST.with(|l| {
            l.borrow()
                .as_ref()
                .filter(|(k, _)| *k == key)
                .and_then(|(_, w)| w.upgrade())
        });
        if let Some(n) = cached.filter(|n| !n.closed.load(Ordering::Acquire)) {
            return Ok(n);
        }
        let notifier = registry_lookup(py, loop_obj)?;
        LAST.with(|l| *l.borrow_mut() = Some((key, Arc::downgrade(&notifier))));
        Ok(notifier)
    }

    fn create(py: Python<'_>, loop_obj: &Bound<'_, PyAny>) -> PyResult<Arc<LoopNotifier>> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(PyRuntimeError::new_err(format!(
                "dotcompute: cannot create the loop wake-up pipe: {}",
                std::io::Error::last_os_error()
            )));
        }
        let notifier = Arc::new(LoopNotifier {
            thread: std::thread::current().id(),
            read_fd: fds[0],
            write_fd: fds[1],
            queue: Mutex::new(Vec::new()),
            loop_obj: loop_obj.clone().unbind(),
            closed: AtomicBool::new(false),
            fds_closed: AtomicBool::new(false),
            timers: Mutex::new(Timers::default()),
            future_class: standard_future_class(py, loop_obj),
        });
        let weak = Arc::downgrade(&notifier);
        let reader = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
            if let Some(n) = weak.upgrade() {
                n.drain(args.py());
            }
        })?;
        if let Err(e) = loop_obj.call_method1("add_reader", (notifier.read_fd, reader)) {
            notifier.close_fds();
            return Err(e);
        }
        Ok(notifier)
    }

    /// Whether the caller runs on this loop's thread.
    pub fn on_loop_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    /// The loop object.
    pub fn loop_obj<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.loop_obj.bind(py)
    }

    /// Whether the loop has been closed (the notifier can no longer deliver).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Hands an event to the loop's thread. Never blocks, never needs the
    /// interpreter; safe from any thread and under any lock.
    pub fn post(&self, event: LoopEvent) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let was_empty = {
            let mut q = self.queue.lock();
            let was_empty = q.is_empty();
            q.push(event);
            was_empty
        };
        if was_empty {
            let byte = 1u8;
            // SAFETY: writes one byte from a valid buffer to our own pipe's
            // write end. A full pipe (EAGAIN) means a wake-up is already
            // pending, which is all we need; the descriptor stays open until
            // the notifier is dropped or closed.
            let _ = unsafe { libc::write(self.write_fd, (&raw const byte).cast(), 1) };
        }
    }

    /// Runs a closure on the loop's thread (at once if called from it inside
    /// an entry point, else at the loop's next turn).
    pub fn call_soon(&self, f: Box<dyn FnOnce(Python<'_>) + Send>) {
        self.post(LoopEvent::Call(f));
    }

    /// A new asyncio future of this loop.
    pub fn create_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.future_class {
            Some(cls) => {
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item(pyo3::intern!(py, "loop"), self.loop_obj.bind(py))?;
                cls.bind(py).call((), Some(&kwargs))
            }
            None => self.loop_obj.bind(py).call_method0(pyo3::intern!(py, "create_future")),
        }
    }

    /// Wakes `slot` with its timed-out flag set once `deadline` passes
    /// (unless removed before). Call on the loop's thread.
    pub fn add_deadline(
        self: &Arc<Self>,
        py: Python<'_>,
        deadline: Instant,
        slot: &Arc<WakeSlot>,
    ) -> PyResult<DeadlineKey> {
        let (key, arm) = {
            let mut t = self.timers.lock();
            let id = t.next_id;
            t.next_id = t.next_id.wrapping_add(1);
            t.entries.insert((deadline, id), Arc::downgrade(slot));
            let arm = t.armed.is_none_or(|a| deadline < a);
            if arm {
                t.armed = Some(deadline);
            }
            (DeadlineKey(deadline, id), arm)
        };
        if arm {
            self.arm_timer(py, deadline)?;
        }
        Ok(key)
    }

    /// Forgets a deadline (the wait ended first). The asyncio timer stays
    /// armed; when it fires with nothing due it re-arms for the earliest left.
    pub fn remove_deadline(&self, key: DeadlineKey) {
        let removed = self.timers.lock().entries.remove(&(key.0, key.1));
        drop(removed);
    }

    fn arm_timer(self: &Arc<Self>, py: Python<'_>, deadline: Instant) -> PyResult<()> {
        let delay = deadline.saturating_duration_since(Instant::now()).as_secs_f64();
        let weak = Arc::downgrade(self);
        let callback = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
            if let Some(n) = weak.upgrade() {
                n.fire_timers(args.py());
            }
        })?;
        self.loop_obj
            .bind(py)
            .call_method1(pyo3::intern!(py, "call_later"), (delay, callback))?;
        Ok(())
    }

    /// The asyncio timer fired: wake every slot whose deadline passed, then
    /// re-arm for the earliest deadline left.
    fn fire_timers(self: &Arc<Self>, py: Python<'_>) {
        let _defer = Deferral::enter(py);
        let now = Instant::now();
        let (due, next) = {
            let mut t = self.timers.lock();
            let mut due = Vec::new();
            while let Some(entry) = t.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            let next = t.entries.keys().next().map(|k| k.0);
            t.armed = next;
            (due, next)
        };
        for slot in due.into_iter().filter_map(|w| w.upgrade()) {
            slot.time_out(py);
        }
        if let Some(next) = next {
            if let Err(e) = self.arm_timer(py, next) {
                e.write_unraisable(py, None);
            }
        }
    }

    /// The reader callback: empties the pipe, then handles every queued event.
    fn drain(&self, py: Python<'_>) {
        let _defer = Deferral::enter(py);
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reads into a valid buffer of `buf.len()` bytes from our
            // own non-blocking pipe.
            let n = unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
        }
        loop {
            let events = std::mem::take(&mut *self.queue.lock());
            if events.is_empty() {
                break;
            }
            for event in events {
                match event {
                    LoopEvent::Wake(slot) => slot.fire(py),
                    LoopEvent::Call(f) => f(py),
                }
            }
        }
    }

    fn close_fds(&self) {
        self.closed.store(true, Ordering::Release);
        if !self.fds_closed.swap(true, Ordering::AcqRel) {
            // SAFETY: closes the two descriptors this notifier owns, once.
            unsafe {
                libc::close(self.read_fd);
                libc::close(self.write_fd);
            }
        }
    }
}

impl Drop for LoopNotifier {
    fn drop(&mut self) {
        self.close_fds();
    }
}

/// The notifiers of the loops seen so far; entries of closed loops are
/// removed (and their pipes closed) whenever a new loop registers.
fn registry_lookup(py: Python<'_>, loop_obj: &Bound<'_, PyAny>) -> PyResult<Arc<LoopNotifier>> {
    static REGISTRY: Mutex<Vec<Arc<LoopNotifier>>> = Mutex::new(Vec::new());
    {
        let reg = REGISTRY.lock();
        if let Some(n) = reg.iter().find(|n| n.loop_obj.bind(py).is(loop_obj)) {
            if !n.closed.load(Ordering::Acquire) {
                return Ok(n.clone());
            }
        }
    }
    // Purge loops that are closed (their readers went with them). Python is
    // never called with the registry locked: that could deadlock with the GIL.
    let known: Vec<Arc<LoopNotifier>> = REGISTRY.lock().clone();
    let stale: Vec<Arc<LoopNotifier>> = known
        .into_iter()
        .filter(|n| n.closed.load(Ordering::Acquire) || loop_is_closed(n.loop_obj.bind(py)))
        .collect();
    if !stale.is_empty() {
        REGISTRY.lock().retain(|n| !stale.iter().any(|s| Arc::ptr_eq(s, n)));
        // The pipes are closed when the last user lets go (Drop), so that a
        // concurrent `post` never writes to a recycled descriptor.
        for n in stale {
            n.closed.store(true, Ordering::Release);
        }
    }
    let notifier = LoopNotifier::create(py, loop_obj)?;
    REGISTRY.lock().push(notifier.clone());
    Ok(notifier)
}

/// `asyncio.Future` when `loop_obj.create_future` is the standard one
/// (asyncio's base loop or uvloop's), so futures can be built directly.
fn standard_future_class(py: Python<'_>, loop_obj: &Bound<'_, PyAny>) -> Option<Py<PyAny>> {
    let standard = (|| -> PyResult<bool> {
        let method = loop_obj.get_type().getattr("create_future")?;
        let base = py
            .import("asyncio")?
            .getattr("BaseEventLoop")?
            .getattr("create_future")?;
        if method.is(&base) {
            return Ok(true);
        }
        let module: String = loop_obj.get_type().getattr("__module__")?.extract()?;
        Ok(module.starts_with("uvloop"))
    })()
    .unwrap_or(false);
    if standard {
        py.import("asyncio")
            .and_then(|m| m.getattr("Future"))
            .ok()
            .map(Bound::unbind)
    } else {
        None
    }
}

fn loop_is_closed(loop_obj: &Bound<'_, PyAny>) -> bool {
    loop_obj
        .call_method0("is_closed")
        .and_then(|r| r.is_truthy())
        .unwrap_or(true)
}

/// Where a waiting task is parked: the asyncio future it awaits, and the
/// loop that future belongs to.
pub struct WakeSlot {
    inner: Mutex<SlotInner>,
}

#[derive(Default)]
struct SlotInner {
    notifier: Option<Arc<LoopNotifier>>,
    future: Option<Py<PyAny>>,
    /// The slot's deadline passed.
    timed_out: bool,
    /// Woken while no asyncio future was parked (during a poll).
    early: bool,
}

thread_local! {
    /// A slot no waker refers to any more, kept for this thread's next wait.
    static SPARE_SLOT: RefCell<Option<Arc<WakeSlot>>> = const { RefCell::new(None) };
}

impl WakeSlot {
    /// An empty slot.
    pub fn new() -> Arc<Self> {
        Arc::new(WakeSlot {
            inner: Mutex::new(SlotInner::default()),
        })
    }

    /// An empty slot for a new wait: this thread's spare one (see
    /// [`give_back`](Self::give_back)), or a new one.
    pub fn take() -> Arc<Self> {
        SPARE_SLOT.with(|s| s.borrow_mut().take()).unwrap_or_else(WakeSlot::new)
    }

    /// Ends the use of `slot` for a wait that is over. When no waker made
    /// from it is left anywhere (so no wake can reach it any more) it is
    /// emptied and kept as this thread's spare: most awaits complete at
    /// once, and then the slot they were polled with is reused rather than
    /// freed and allocated again.
    pub fn give_back(mut slot: Arc<Self>) {
        let Some(unique) = Arc::get_mut(&mut slot) else {
            return;
        };
        *unique.inner.get_mut() = SlotInner::default();
        SPARE_SLOT.with(|s| {
            let mut spare = s.borrow_mut();
            if spare.is_none() {
                *spare = Some(slot);
            }
        });
    }

    /// Parks `future` (an asyncio future of `notifier`'s loop) until the next wake.
    pub fn park(&self, notifier: Arc<LoopNotifier>, future: Py<PyAny>) {
        let mut g = self.inner.lock();
        g.notifier = Some(notifier);
        g.future = Some(future);
    }

    /// True (once) if the slot was woken while nothing was parked.
    pub fn take_early_wake(&self) -> bool {
        std::mem::take(&mut self.inner.lock().early)
    }

    /// Forgets the parked future (the task stopped waiting).
    pub fn clear(&self) -> Option<Py<PyAny>> {
        let mut g = self.inner.lock();
        g.early = false;
        g.future.take()
    }

    /// Whether the slot's deadline passed.
    pub fn timed_out(&self) -> bool {
        self.inner.lock().timed_out
    }

    fn time_out(&self, py: Python<'_>) {
        self.inner.lock().timed_out = true;
        self.fire(py);
    }

    /// Resolves the parked future, if any. A future already done (the task
    /// was cancelled meanwhile) refuses `set_result`, which is ignored.
    fn fire(&self, py: Python<'_>) {
        let fut = self.inner.lock().future.take();
        if let Some(fut) = fut {
            let fut = fut.bind(py);
            if let Err(e) = fut.call_method1(pyo3::intern!(py, "set_result"), (py.None(),)) {
                if !e.get_type(py).name().is_ok_and(|n| n == "InvalidStateError") {
                    e.write_unraisable(py, Some(fut));
                }
            }
        }
    }
}

impl std::task::Wake for WakeSlot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let notifier = {
            let mut g = self.inner.lock();
            match (&g.notifier, &g.future) {
                (Some(n), Some(_)) => n.clone(),
                _ => {
                    g.early = true;
                    return;
                }
            }
        };
        let deferred_here = notifier.on_loop_thread()
            && DEFERRED.with(|d| {
                let inside = d.depth.get() > 0;
                if inside {
                    d.woken.borrow_mut().push(self.clone());
                }
                inside
            });
        if !deferred_here {
            notifier.post(LoopEvent::Wake(self.clone()));
        }
    }
}
