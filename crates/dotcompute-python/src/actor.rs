//! Python actors as ring kernels of the Rust runtime.
//!
//! A Python actor is an `async def f(ctx)` running as an asyncio task on the
//! event loop that activated it. Everything else is the Rust runtime's: the
//! kernel is an ordinary kernel of a [`RingKernelRuntime`](dotcompute::RingKernelRuntime)
//! whose handler is a [`Bridge`]: when the runtime runs the handler (at
//! `activate`, and again for each restart), the bridge asks the loop's thread
//! to start the actor's task with a [`PyKernelContext`] over the handler's
//! [`KernelContext`], and the handler finishes when that task does. So the
//! queues, backpressure, lifecycle, deactivation, failure reporting, restart
//! policy and telemetry are those of every other kernel.
//!
//! Invariants:
//! - the actor's `receive` and `send` are the handler's own
//!   (`KernelContext::receive`/`send`), polled in place on the loop's thread;
//!   a message is counted, timed and delivered by the runtime;
//! - an actor blocked in `ctx.receive()` or `ctx.send()` wakes at once when
//!   its kernel is terminated: the call raises `KernelTerminatingError`
//!   (which ends the actor cleanly if it lets it propagate); a later call
//!   first yields to the loop, so an actor that swallows the error and loops
//!   can never stall the loop, and is cancelled when the terminate timeout
//!   runs out;
//! - an actor that raises moves its kernel to `Failed` (or is restarted, per
//!   its restart policy); the exception is kept and chained to the
//!   `KernelFailedError` the host's next call raises;
//! - one context serves its operations one at a time (the runtime's handler
//!   context is single-owner), but a `receive` that is waiting steps aside
//!   for a `send` from another task of the same actor, so an actor may send
//!   from sub-tasks while its main loop waits for input.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::lock::Mutex as AsyncMutex;
use futures::task::AtomicWaker;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyString};
use tokio::sync::Notify;

use dotcompute::{Error, KernelContext, KernelHandle, KernelState};

use crate::awaitable::Awaitable;
use crate::errors::{exc, to_py};
use crate::message::PyMsg;
use crate::waker::LoopNotifier;

type Ctx = KernelContext<PyMsg, PyMsg>;

/// The Python side of a kernel definition.
pub struct ActorDef {
    /// `async def f(ctx)` (or a plain function, run once).
    pub func: Py<PyAny>,
    /// Messages sent to the kernel must be instances of this (if set).
    pub input_type: Option<Py<PyAny>>,
    /// Messages the actor sends must be instances of this (if set).
    pub output_type: Option<Py<PyAny>>,
}

/// The error a Python actor's handler run ends with.
#[derive(Debug)]
pub struct ActorError(pub String);

impl std::fmt::Display for ActorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActorError {}

/// Shared by a Python actor kernel's handler runs, its contexts and the
/// runtime that launched it.
pub struct Bridge {
    id: Arc<str>,
    def: ActorDef,
    notifier: Mutex<Option<Arc<LoopNotifier>>>,
    handle: Mutex<Option<KernelHandle<PyMsg, PyMsg>>>,
    /// The asyncio task of the current run.
    task: Mutex<Option<Py<PyAny>>>,
    /// The exception the last failed run raised.
    failure: Mutex<Option<Py<PyAny>>>,
    /// Incremented each time a run has started its task.
    started: AtomicU64,
    started_notify: Notify,
    /// Signalled on reactivate and terminate (for `wait_active`).
    state_notify: Notify,
}

impl Bridge {
    /// A bridge for kernel `id`.
    pub fn new(id: &str, def: ActorDef) -> Arc<Self> {
        Arc::new(Bridge {
            id: Arc::from(id),
            def,
            notifier: Mutex::new(None),
            handle: Mutex::new(None),
            task: Mutex::new(None),
            failure: Mutex::new(None),
            started: AtomicU64::new(0),
            started_notify: Notify::new(),
            state_notify: Notify::new(),
        })
    }

    /// The kernel's id, shared (no copy).
    pub fn shared_id(&self) -> Arc<str> {
        self.id.clone()
    }

    /// The kernel's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The definition.
    pub fn def(&self) -> &ActorDef {
        &self.def
    }

    /// Sets the kernel's host handle (once launched).
    pub fn set_handle(&self, handle: KernelHandle<PyMsg, PyMsg>) {
        *self.handle.lock() = Some(handle);
    }

    /// Binds the event loop that runs the actor (at activate).
    pub fn bind_loop(&self, notifier: Arc<LoopNotifier>) {
        *self.notifier.lock() = Some(notifier);
    }

    /// How many runs have started so far.
    pub fn started_count(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// Waits until more than `seen` runs have started, or the kernel ended.
    pub async fn wait_started(self: Arc<Self>, seen: u64) {
        loop {
            let notified = self.started_notify.notified();
            let mut notified = pin!(notified);
            notified.as_mut().enable();
            if self.started.load(Ordering::Acquire) > seen || self.state().is_final() {
                return;
            }
            notified.await;
        }
    }

    fn state(&self) -> KernelState {
        self.handle.lock().as_ref().map_or(KernelState::Launched, |h| h.state())
    }

    /// Wakes `wait_active` callers (state changed).
    pub fn state_changed(&self) {
        self.state_notify.notify_waiters();
    }

    /// The exception of the last failed run.
    pub fn failure(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.failure.lock().as_ref().map(|f| f.clone_ref(py))
    }

    /// The handler: starts the actor's task on the loop and waits for it.
    pub async fn run(self: Arc<Self>, ctx: Ctx) -> Result<(), ActorError> {
        let Some(notifier) = self.notifier.lock().clone() else {
            return Err(ActorError(
                "no event loop is bound to this kernel (activate it from async code)".into(),
            ));
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let mut guard = CancelOnDrop {
            bridge: self.clone(),
            notifier: notifier.clone(),
            armed: true,
        };
        let bridge = self.clone();
        notifier.call_soon(Box::new(move |py| bridge.start(py, ctx, tx)));
        let outcome = rx.await;
        guard.armed = false;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(text)) => Err(ActorError(text)),
            Err(_) => Err(ActorError("the actor's task went away before it finished".into())),
        }
    }

    /// On the loop's thread: calls the actor function and starts its task.
    fn start(self: Arc<Self>, py: Python<'_>, ctx: Ctx, tx: tokio::sync::oneshot::Sender<Result<(), String>>) {
        let outcome = self.start_inner(py, ctx);
        self.started.fetch_add(1, Ordering::AcqRel);
        self.started_notify.notify_waiters();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let finish = |tx: &Mutex<Option<tokio::sync::oneshot::Sender<Result<(), String>>>>, r: Result<(), String>| {
            if let Some(tx) = tx.lock().take() {
                let _ = tx.send(r);
            }
        };
        match outcome {
            Ok(Some(task)) => {
                let bridge = self.clone();
                let tx_cb = tx.clone();
                let callback = PyCFunction::new_closure(py, None, None, move |args, _| {
                    let py = args.py();
                    let result = args
                        .get_item(0)
                        .map_err(|e| e.to_string())
                        .and_then(|task| bridge.task_result(py, &task));
                    *bridge.task.lock() = None;
                    if let Some(tx) = tx_cb.lock().take() {
                        let _ = tx.send(result);
                    }
                });
                *self.task.lock() = Some(task.clone_ref(py));
                if let Err(e) = callback.and_then(|cb| task.bind(py).call_method1("add_done_callback", (cb,))) {
                    // Cannot watch the task: stop it and fail the run.
                    *self.task.lock() = None;
                    let _ = task.bind(py).call_method0("cancel");
                    finish(&tx, Err(format!("cannot watch the actor's task: {}", describe(py, &e))));
                }
            }
            Ok(None) => finish(&tx, Ok(())),
            Err(e) => {
                let text = describe(py, &e);
                *self.failure.lock() = Some(e.value(py).clone().into_any().unbind());
                finish(&tx, Err(text));
            }
        }
    }

    /// Calls `func(ctx)`; returns the task if it gave an awaitable.
    fn start_inner(self: &Arc<Self>, py: Python<'_>, ctx: Ctx) -> PyResult<Option<Py<PyAny>>> {
        let handle = self.handle.lock().clone().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("dotcompute: kernel started before its launch completed")
        })?;
        let pyctx = PyKernelContext {
            kernel_id: PyString::new(py, &self.id).unbind(),
            ctx: Arc::new(AsyncMutex::new(ctx)),
            preempt: Arc::new(Preempt::default()),
            bridge: self.clone(),
            handle,
            terminating_seen: Arc::new(AtomicBool::new(false)),
        };
        let pyctx = Py::new(py, pyctx)?;
        let result = self.def.func.bind(py).call1((pyctx,))?;
        let inspect = py.import("inspect")?;
        if !inspect.call_method1("isawaitable", (&result,))?.is_truthy()? {
            return Ok(None);
        }
        let notifier = self.notifier.lock().clone();
        let asyncio = py.import("asyncio")?;
        let kwargs = PyDict::new(py);
        if let Some(n) = notifier {
            kwargs.set_item("loop", n.loop_obj(py))?;
        }
        let task = asyncio.call_method("ensure_future", (result,), Some(&kwargs))?;
        let _ = task.call_method1("set_name", (format!("ring_kernel_{}", self.id),));
        Ok(Some(task.unbind()))
    }

    /// How a finished task ended, for the runtime.
    fn task_result(&self, py: Python<'_>, task: &Bound<'_, PyAny>) -> Result<(), String> {
        let terminating = matches!(self.state(), KernelState::Terminating | KernelState::Terminated);
        let cancelled = task
            .call_method0("cancelled")
            .and_then(|c| c.is_truthy())
            .unwrap_or(false);
        if cancelled {
            return if terminating {
                Ok(())
            } else {
                Err("the actor's task was cancelled".into())
            };
        }
        match task.call_method0("exception") {
            Ok(e) if e.is_none() => Ok(()),
            Ok(e) => {
                if terminating && is_own_termination(py, &e, &self.id) {
                    return Ok(());
                }
                let text = describe_value(&e);
                *self.failure.lock() = Some(e.unbind());
                Err(text)
            }
            Err(e) => Err(describe(py, &e)),
        }
    }

    /// Cancels the current task (the runtime gave up waiting for it).
    fn cancel_task(&self, py: Python<'_>) {
        let task = self.task.lock().as_ref().map(|t| t.clone_ref(py));
        if let Some(task) = task {
            if let Err(e) = task.bind(py).call_method0("cancel") {
                e.write_unraisable(py, Some(task.bind(py)));
            }
        }
    }
}

/// Asks the loop to cancel the actor's task if the handler run is dropped
/// before the task finished (the runtime aborts a handler that ignores terminate).
struct CancelOnDrop {
    bridge: Arc<Bridge>,
    notifier: Arc<LoopNotifier>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let bridge = self.bridge.clone();
            self.notifier.call_soon(Box::new(move |py| bridge.cancel_task(py)));
        }
    }
}

fn is_own_termination(py: Python<'_>, e: &Bound<'_, PyAny>, id: &str) -> bool {
    let Ok(cls) = py
        .import("dotcompute.exceptions")
        .and_then(|m| m.getattr("KernelTerminatingError"))
    else {
        return false;
    };
    e.is_instance(&cls).unwrap_or(false)
        && e.getattr("kernel_id")
            .and_then(|k| k.extract::<String>())
            .map(|k| k == id)
            .unwrap_or(false)
}

fn describe_value(e: &Bound<'_, PyAny>) -> String {
    let name = e
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    match e.str() {
        Ok(s) if !s.to_string().is_empty() => format!("{name}: {s}"),
        _ => name,
    }
}

fn describe(py: Python<'_>, e: &PyErr) -> String {
    describe_value(e.value(py).as_any())
}

/// `"ExceptionType: message"` of a Python error.
pub fn describe_err(py: Python<'_>, e: &PyErr) -> String {
    describe(py, e)
}

/// The `KernelFailedError` for `kernel`, chained to `cause` when known.
pub fn failure_exception(py: Python<'_>, kernel: String, error: String) -> PyErr {
    exc(py, "KernelFailedError", (kernel, error))
}

/// Lets a waiting `receive` step aside for another operation.
///
/// An operation that wants the context counts itself in `waiting` (while it
/// waits for the lock) and wakes the receive parked in `receive_waker`; the
/// receive, seeing `waiting > 0`, drops its wait and the lock and yields to
/// the loop once before it locks again. The lock is not fair, so that yield
/// is what lets the waiting operation take it first. Both sides are atomics:
/// nothing here takes a lock when no operation is waiting, which is every
/// message of an actor that only receives and sends from its main loop.
#[derive(Default)]
struct Preempt {
    receive_waker: AtomicWaker,
    /// Operations waiting for the context.
    waiting: AtomicUsize,
}

struct Waiting<'a>(&'a Preempt);

impl<'a> Waiting<'a> {
    fn new(p: &'a Preempt) -> Self {
        p.waiting.fetch_add(1, Ordering::SeqCst);
        p.receive_waker.wake();
        Waiting(p)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Preempt {
    fn wanted(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }
}

/// What a Python actor receives as `ctx`.
#[pyclass(frozen, module = "dotcompute._native", name = "KernelContext")]
pub struct PyKernelContext {
    kernel_id: Py<PyString>,
    ctx: Arc<AsyncMutex<Ctx>>,
    preempt: Arc<Preempt>,
    bridge: Arc<Bridge>,
    handle: KernelHandle<PyMsg, PyMsg>,
    terminating_seen: Arc<AtomicBool>,
}

/// Maps a handler-side error, giving way to the loop first when the actor
/// asks again after it was told its kernel is terminating.
async fn settle<T>(r: Result<T, Error>, seen: &AtomicBool) -> Result<T, Error> {
    if let Err(Error::Terminating { .. }) = &r {
        if seen.swap(true, Ordering::AcqRel) {
            yield_once().await;
        }
    }
    r
}

/// Returns `Pending` once (waking itself), then `Ready`.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

fn check_type(
    py: Python<'_>,
    ty: &Option<Py<PyAny>>,
    msg: &Bound<'_, PyAny>,
    context: impl FnOnce() -> String,
) -> PyResult<()> {
    if let Some(ty) = ty {
        let ty = ty.bind(py);
        if !msg.is_instance(ty)? {
            let expected = ty
                .getattr("__name__")
                .map(|n| n.to_string())
                .unwrap_or_else(|_| ty.to_string());
            let actual = msg.get_type().name()?.to_string();
            return Err(exc(py, "TypeValidationError", (expected, actual, context())));
        }
    }
    Ok(())
}

/// Checks a message against a kernel's declared type.
pub fn validate(
    py: Python<'_>,
    ty: &Option<Py<PyAny>>,
    msg: &Bound<'_, PyAny>,
    context: impl FnOnce() -> String,
) -> PyResult<()> {
    check_type(py, ty, msg, context)
}

fn terminating(state: KernelState) -> bool {
    matches!(
        state,
        KernelState::Terminating | KernelState::Terminated | KernelState::Failed
    )
}

#[pymethods]
impl PyKernelContext {
    /// The kernel's id.
    #[getter]
    fn kernel_id(&self, py: Python<'_>) -> Py<PyString> {
        self.kernel_id.clone_ref(py)
    }

    /// True once the kernel is being terminated (and, for a draining
    /// terminate, its input is used up).
    #[getter]
    fn should_terminate(&self) -> bool {
        match self.ctx.try_lock() {
            Some(g) => g.should_terminate(),
            None => terminating(self.handle.state()),
        }
    }

    /// True while the kernel is active (not deactivated).
    #[getter]
    fn is_active(&self) -> bool {
        self.handle.state() == KernelState::Active
    }

    /// The kernel's state name (`ACTIVE`, `DEACTIVATED`, ...).
    #[getter]
    fn state(&self) -> &'static str {
        crate::errors::state_name(self.handle.state())
    }

    /// Waits for the next message; with `timeout` (seconds), raises
    /// `QueueTimeoutError` if none came in time. While the kernel is
    /// deactivated nothing is delivered (messages stay queued).
    #[pyo3(signature = (timeout = None))]
    fn receive(&self, timeout: Option<f64>) -> PyResult<Awaitable> {
        let timeout = crate::runtime::duration(timeout)?;
        let ctx = self.ctx.clone();
        let preempt = self.preempt.clone();
        let seen = self.terminating_seen.clone();
        let fut = async move {
            let r = loop {
                if preempt.wanted() {
                    yield_once().await;
                    continue;
                }
                let mut guard = ctx.clone().lock_owned().await;
                let received = {
                    let receive = guard.receive();
                    let mut receive = pin!(receive);
                    std::future::poll_fn(|cx| {
                        if let Poll::Ready(r) = receive.as_mut().poll(cx) {
                            return Poll::Ready(Some(r));
                        }
                        preempt.receive_waker.register(cx.waker());
                        if preempt.wanted() {
                            // Step aside: the wait is dropped, the message
                            // (if one comes) stays queued.
                            Poll::Ready(None)
                        } else {
                            Poll::Pending
                        }
                    })
                    .await
                };
                match received {
                    Some(r) => break r,
                    None => drop(guard),
                }
            };
            settle(r, &seen).await
        };
        Ok(Awaitable::new("ctx.receive()", fut, move |py, r| match r {
            Ok(m) => Ok(m.obj),
            Err(e) => Err(to_py(py, e)),
        })
        .with_queue_timeout(timeout, self.bridge.id.clone(), "receive"))
    }

    /// Sends to the kernel's output (the host, or the linked kernel). Under
    /// the default `block` output strategy this waits for room; `timeout`
    /// (seconds) bounds that wait (`QueueTimeoutError`).
    #[pyo3(signature = (msg, timeout = None))]
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<Awaitable> {
        check_type(py, &self.bridge.def.output_type, msg, || {
            format!("output of kernel '{}'", self.bridge.id)
        })?;
        let timeout = crate::runtime::duration(timeout)?;
        let m = PyMsg::new(msg)?;
        let ctx = self.ctx.clone();
        let preempt = self.preempt.clone();
        let seen = self.terminating_seen.clone();
        let fut = async move {
            let mut guard = {
                let _w = Waiting::new(&preempt);
                ctx.lock_owned().await
            };
            let r = guard.send(m).await.map_err(Error::from);
            settle(r, &seen).await
        };
        Ok(Awaitable::new("ctx.send()", fut, |py, r| match r {
            Ok(()) => Ok(py.None()),
            Err(e) => Err(to_py(py, e)),
        })
        .with_queue_timeout(timeout, self.bridge.id.clone(), "send"))
    }

    /// Sends straight to another kernel's input (no host hop).
    fn send_to(&self, py: Python<'_>, kernel_id: String, msg: &Bound<'_, PyAny>) -> PyResult<Awaitable> {
        let _ = py;
        let m = PyMsg::new(msg)?;
        let ctx = self.ctx.clone();
        let preempt = self.preempt.clone();
        let fut = async move {
            let guard = {
                let _w = Waiting::new(&preempt);
                ctx.lock_owned().await
            };
            guard.send_to(&kernel_id, m).await.map_err(Error::from)
        };
        Ok(Awaitable::new("ctx.send_to()", fut, |py, r| match r {
            Ok(()) => Ok(py.None()),
            Err(e) => Err(to_py(py, e)),
        }))
    }

    /// Waits until the kernel is active again (returns at once if it is, or
    /// if it is terminating: check `should_terminate` after).
    fn wait_active(&self) -> Awaitable {
        let bridge = self.bridge.clone();
        let handle = self.handle.clone();
        let fut = async move {
            loop {
                let changed = bridge.state_notify.notified();
                let mut changed = pin!(changed);
                changed.as_mut().enable();
                let state = handle.state();
                if state != KernelState::Deactivated {
                    return;
                }
                changed.await;
            }
        };
        Awaitable::new("ctx.wait_active()", fut, |py, ()| Ok(py.None()))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "KernelContext(kernel_id={:?}, state={})",
            self.kernel_id.bind(py).to_string(),
            crate::errors::state_name(self.handle.state())
        )
    }
}
