//! [`Awaitable`]: a Rust future as an asyncio-native awaitable, polled in
//! place on the loop's thread.
//!
//! `await x` calls `x.__await__()` (this object) and then `__next__` each
//! time the task runs. `__next__` polls the Rust future directly:
//! - ready: the value is returned at once (`StopIteration(value)`), with no
//!   event-loop round trip and no thread involved;
//! - pending: a fresh asyncio future of the running loop is parked in the
//!   future's [`WakeSlot`] and yielded to the task,
//!   which sleeps until a Rust wake-up resolves it, then polls again.
//!
//! Invariants:
//! - creating an awaitable does nothing; the first poll happens when it is
//!   awaited, so an awaitable that is never awaited consumes and sends
//!   nothing (like a coroutine);
//! - dropping or cancelling it drops the Rust future, which the futures used
//!   here treat as cancel-safe: a receive that did not complete leaves its
//!   message queued, a send that did not complete takes its message with it;
//! - it works with `asyncio.wait_for`, `gather`, `create_task` and
//!   `ensure_future`, because what it yields is a plain asyncio future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;

use crate::waker::{DeadlineKey, Deferral, LoopNotifier, WakeSlot};

/// A future whose output becomes a Python value once it is ready.
pub trait PyFuture: Send {
    /// Polls; converts the output with the interpreter attached.
    fn poll_py(self: Pin<&mut Self>, py: Python<'_>, cx: &mut Context<'_>) -> Poll<PyResult<Py<PyAny>>>;
}

/// A Rust future and the conversion of its output.
struct MapPy<F, C> {
    fut: F,
    convert: Option<C>,
}

impl<F, C> PyFuture for MapPy<F, C>
where
    F: Future + Send,
    C: FnOnce(Python<'_>, F::Output) -> PyResult<Py<PyAny>> + Send,
{
    fn poll_py(self: Pin<&mut Self>, py: Python<'_>, cx: &mut Context<'_>) -> Poll<PyResult<Py<PyAny>>> {
        // SAFETY: `fut` is structurally pinned (never moved out of `self`);
        // `convert` is not pinned and only taken by value.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.fut` lives as long as the pinned `self`.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        match fut.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => match this.convert.take() {
                Some(convert) => Poll::Ready(convert(py, out)),
                None => Poll::Ready(Err(PyRuntimeError::new_err(
                    "dotcompute: future polled after completion",
                ))),
            },
        }
    }
}

enum State {
    /// The future; its slot once it has been polled.
    Running {
        fut: Pin<Box<dyn PyFuture>>,
        slot: Option<Arc<WakeSlot>>,
        /// When the wait must end (set at the first poll, with a timeout).
        deadline: Option<Instant>,
        /// The deadline's registration with the loop, while waiting.
        timer: Option<(Arc<LoopNotifier>, DeadlineKey)>,
    },
    /// The result is known without any waiting.
    Ready(PyResult<Py<PyAny>>),
    /// Finished (returned, raised, cancelled or closed).
    Done,
}

/// The error an awaitable raises when its time runs out.
enum TimeoutError {
    /// `QueueTimeoutError(kernel, seconds, operation)`, the error of every
    /// send and receive: kept as data, so the awaits that most often carry
    /// a timeout allocate nothing for it.
    Queue { kernel: Arc<str>, operation: &'static str },
    /// Any other error, built by the closure.
    Custom(Box<dyn FnOnce(Python<'_>) -> PyErr + Send>),
}

/// An asyncio-compatible awaitable over a Rust future (see the module docs).
///
/// With a timeout, the wait is bounded by a deadline kept by the event
/// loop's [`LoopNotifier`] (one asyncio timer per loop serves every
/// deadline), so timeouts cost no thread and no system call; when it passes,
/// the future is dropped (cancel-safe) and the timeout error is raised.
///
/// Its Python type is built in [`crate::awaitable_type`], with the `am_send`
/// slot, so that an `await` that completes returns its value directly.
pub struct Awaitable {
    state: Mutex<State>,
    what: &'static str,
    timeout: Option<(Duration, Mutex<Option<TimeoutError>>)>,
}

impl Awaitable {
    /// An awaitable of `fut`, whose output `convert` turns into Python.
    /// `what` names the operation in error messages.
    pub fn new<F, C>(what: &'static str, fut: F, convert: C) -> Self
    where
        F: Future + Send + 'static,
        C: FnOnce(Python<'_>, F::Output) -> PyResult<Py<PyAny>> + Send + 'static,
    {
        Awaitable {
            state: Mutex::new(State::Running {
                fut: Box::pin(MapPy {
                    fut,
                    convert: Some(convert),
                }),
                slot: None,
                deadline: None,
                timer: None,
            }),
            what,
            timeout: None,
        }
    }

    /// Bounds the wait: after `after` (from the first poll), the future is
    /// dropped and `error` is raised. `None` leaves the wait unbounded.
    pub fn with_timeout(
        mut self,
        after: Option<Duration>,
        error: impl FnOnce(Python<'_>) -> PyErr + Send + 'static,
    ) -> Self {
        if let Some(after) = after {
            self.timeout = Some((after, Mutex::new(Some(TimeoutError::Custom(Box::new(error))))));
        }
        self
    }

    /// Bounds the wait of a send or receive on kernel `kernel`: after
    /// `after` (from the first poll), the future is dropped and
    /// `QueueTimeoutError(kernel, after, operation)` is raised. `None`
    /// leaves the wait unbounded.
    pub fn with_queue_timeout(
        mut self,
        after: Option<Duration>,
        kernel: impl Into<Arc<str>>,
        operation: &'static str,
    ) -> Self {
        if let Some(after) = after {
            let error = TimeoutError::Queue {
                kernel: kernel.into(),
                operation,
            };
            self.timeout = Some((after, Mutex::new(Some(error))));
        }
        self
    }

    fn timeout_error(&self, py: Python<'_>) -> PyErr {
        let Some((after, error)) = &self.timeout else {
            return PyRuntimeError::new_err(format!("dotcompute: {} timed out", self.what));
        };
        match error.lock().take() {
            Some(TimeoutError::Queue { kernel, operation }) => {
                crate::errors::exc(py, "QueueTimeoutError", (&*kernel, after.as_secs_f64(), operation))
            }
            Some(TimeoutError::Custom(f)) => f(py),
            None => PyRuntimeError::new_err(format!("dotcompute: {} timed out", self.what)),
        }
    }

    /// An awaitable that completes with `result` when awaited.
    pub fn ready(what: &'static str, result: PyResult<Py<PyAny>>) -> Self {
        Awaitable {
            state: Mutex::new(State::Ready(result)),
            what,
            timeout: None,
        }
    }

    /// One step of the coroutine protocol: what to yield to the task, or
    /// the result.
    pub(crate) fn step(&self, py: Python<'_>) -> PyResult<Step> {
        let defer = Deferral::enter(py);
        // Inside the Tokio runtime's context, so that Rust timers work.
        let outcome = match crate::executor::stay_entered() {
            Ok(true) => self.step_locked(py),
            Ok(false) => crate::executor::enter(|| self.step_locked(py)).and_then(|r| r),
            Err(e) => Err(e),
        };
        drop(defer);
        outcome
    }

    fn step_locked(&self, py: Python<'_>) -> PyResult<Step> {
        let Some(mut state) = self.state.try_lock() else {
            return Err(PyRuntimeError::new_err(format!(
                "dotcompute: {} is already being awaited elsewhere",
                self.what
            )));
        };
        let (fut, slot, deadline, timer) = match &mut *state {
            State::Running {
                fut,
                slot,
                deadline,
                timer,
            } => (fut, slot, deadline, timer),
            State::Ready(_) => {
                let State::Ready(result) = std::mem::replace(&mut *state, State::Done) else {
                    unreachable_state()?
                };
                return finish(result);
            }
            State::Done => {
                return Err(PyRuntimeError::new_err(format!(
                    "dotcompute: cannot reuse an already awaited {}",
                    self.what
                )))
            }
        };
        let first = slot.is_none();
        let slot = slot.get_or_insert_with(WakeSlot::take).clone();
        if first {
            if let Some((after, _)) = &self.timeout {
                *deadline = Some(Instant::now().checked_add(*after).unwrap_or_else(Instant::now));
            }
        }
        if let Some(stale) = slot.clear() {
            drop(stale);
        }
        let waker = Waker::from(slot.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = fut.as_mut().poll_py(py, &mut cx);
        drop(waker);
        let expired = match polled {
            Poll::Ready(_) => false,
            Poll::Pending => slot.timed_out() || deadline.is_some_and(|d| Instant::now() >= d),
        };
        if let Poll::Ready(result) = polled {
            let timer = timer.take();
            *state = State::Done;
            drop(state);
            if let Some((n, key)) = timer {
                n.remove_deadline(key);
            }
            WakeSlot::give_back(slot);
            return finish(result);
        }
        if expired {
            let timer = timer.take();
            *state = State::Done;
            drop(state);
            if let Some((n, key)) = timer {
                n.remove_deadline(key);
            }
            return Err(self.timeout_error(py));
        }
        let notifier = LoopNotifier::current(py)?;
        if timer.is_none() {
            if let Some(d) = *deadline {
                let key = notifier.add_deadline(py, d, &slot)?;
                *timer = Some((notifier.clone(), key));
            }
        }
        drop(state);
        let fut = notifier.create_future(py)?;
        fut.setattr(pyo3::intern!(py, "_asyncio_future_blocking"), true)?;
        slot.park(notifier, fut.clone().unbind());
        if slot.take_early_wake() {
            // Woken while polling: run again at the loop's next turn (a
            // bare yield), rather than sleep on a future nobody will resolve.
            slot.clear();
            return Ok(Step::Yield(py.None()));
        }
        Ok(Step::Yield(fut.unbind()))
    }
}

#[cold]
fn unreachable_state<T>() -> PyResult<T> {
    Err(PyRuntimeError::new_err("dotcompute: inconsistent awaitable state"))
}

/// What one step of an [`Awaitable`] gives the awaiting task.
pub(crate) enum Step {
    /// Yield this to the task (an asyncio future to wait on, or `None`
    /// for a bare yield); the task steps again when it is resumed.
    Yield(Py<PyAny>),
    /// The await is over, with this value.
    Return(Py<PyAny>),
}

fn finish(result: PyResult<Py<PyAny>>) -> PyResult<Step> {
    result.map(Step::Return)
}

/// `StopIteration(value)`, built here as an exception object: PyO3 raises an
/// object as it is, where a lazily described exception would be set, fetched
/// and normalized on its way out (about a thousand instructions). Only the
/// iterator protocol (`__next__`, `send`) needs it: an `await` takes the
/// value through `am_send` with no exception at all.
pub(crate) fn stop_iteration(py: Python<'_>, value: Py<PyAny>) -> PyErr {
    match py.get_type::<PyStopIteration>().call1((value,)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

impl Awaitable {
    /// Generator protocol: `send(None)` is one step; the result comes as
    /// `StopIteration(value)`.
    pub(crate) fn send(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if !value.is_none() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "dotcompute awaitables accept only send(None)",
            ));
        }
        match self.step(py)? {
            Step::Yield(v) => Ok(v),
            Step::Return(v) if v.is_none(py) => Err(PyStopIteration::new_err(())),
            Step::Return(v) => Err(stop_iteration(py, v)),
        }
    }

    /// Coroutine protocol: stops waiting (the Rust future is dropped,
    /// nothing is lost) and raises the exception in the awaiting code, as
    /// asyncio does to cancel a task.
    pub(crate) fn throw(&self, typ: &Bound<'_, PyAny>, val: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        self.close();
        let py = typ.py();
        let base = py.get_type::<pyo3::exceptions::PyBaseException>();
        if typ.is_instance(&base)? {
            return Err(PyErr::from_value(typ.clone()));
        }
        match val {
            Some(v) if v.is_instance(&base)? => Err(PyErr::from_value(v.clone())),
            Some(v) if !v.is_none() => Err(PyErr::from_value(typ.call1((v,))?)),
            _ => Err(PyErr::from_value(typ.call0()?)),
        }
    }

    /// Stops waiting: drops the Rust future (nothing is lost, see the module docs).
    pub(crate) fn close(&self) {
        let old = std::mem::replace(&mut *self.state.lock(), State::Done);
        release(&old);
        drop(old);
    }

    pub(crate) fn repr(&self) -> String {
        let state = match &*self.state.lock() {
            State::Running { slot: None, .. } | State::Ready(_) => "not awaited",
            State::Running { .. } => "waiting",
            State::Done => "done",
        };
        format!("<dotcompute awaitable: {} ({state})>", self.what)
    }
}

/// Forgets the parked future and the deadline of a wait that stops.
fn release(state: &State) {
    if let State::Running { slot, timer, .. } = state {
        if let Some(slot) = slot {
            slot.clear();
        }
        if let Some((n, key)) = timer {
            n.remove_deadline(*key);
        }
    }
}

impl Drop for Awaitable {
    fn drop(&mut self) {
        release(self.state.get_mut());
    }
}
