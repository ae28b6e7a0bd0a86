//! `dotcompute._native.Queue`: the runtime's [`MessageQueue`] for Python
//! objects, behind PyDotCompute's queue classes (`MessageQueue`,
//! `FastMessageQueue`, `RingBuffer`, `SyncQueue`, `SPSCQueue`).
//!
//! Invariants (the Rust queue's, observable from Python):
//! - at most `maxsize` messages are queued (`maxsize=0`: up to the runtime's
//!   limit of 2^24); `block` makes a sender wait for room (a timeout bounds
//!   the wait), `reject` refuses at once, `drop_oldest` drops the oldest
//!   message of the lowest non-empty priority band and counts it;
//! - every message put is accounted for exactly once:
//!   `total_enqueued == total_dequeued + total_dropped + current_size`;
//! - with priorities, the highest band is served first, FIFO within a band;
//!   without (`use_priority=False`), strict FIFO;
//! - async waits park the task on the event loop (no thread); the blocking
//!   variants release the GIL while they wait.

use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use dotcompute::queue::{Backpressure, MessageQueue, QueueConfig, RecvError, SendError, MAX_QUEUE_CAPACITY};
use dotcompute::DEFAULT_PRIORITY;

use crate::awaitable::Awaitable;
use crate::errors::exc;
use crate::message::PyMsg;
use crate::runtime::{backpressure_of, duration};

/// The Rust queue for Python objects (see the module docs).
#[pyclass(subclass, module = "dotcompute._native", name = "Queue")]
pub struct PyQueue {
    q: MessageQueue<PyMsg>,
    kernel_id: String,
    maxsize: usize,
    use_priority: bool,
    /// A timed-out `put` raises `QueueFullError` (FastMessageQueue) instead
    /// of `QueueTimeoutError`.
    timeout_is_full: bool,
}

impl PyQueue {
    fn wrap(&self, msg: &Bound<'_, PyAny>) -> PyResult<PyMsg> {
        if self.use_priority {
            PyMsg::new(msg)
        } else {
            Ok(PyMsg::with_priority(msg.clone().unbind(), DEFAULT_PRIORITY))
        }
    }

    fn full_error(&self, py: Python<'_>) -> PyErr {
        exc(py, "QueueFullError", (self.kernel_id.clone(), self.maxsize, "message"))
    }

    fn closed_error(&self, py: Python<'_>) -> PyErr {
        exc(py, "QueueClosedError", (self.kernel_id.clone(),))
    }
}

/// Blocking waits are cut in slices this long so that Ctrl-C (a Python
/// signal) is noticed while a thread waits with the GIL released.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

fn slice_until(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()).min(SIGNAL_SLICE),
        None => SIGNAL_SLICE,
    }
}

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

fn send_error<T>(py: Python<'_>, kernel: &str, maxsize: usize, e: SendError<T>) -> PyErr {
    match e {
        SendError::Closed(_) => exc(py, "QueueClosedError", (kernel.to_string(),)),
        _ => exc(py, "QueueFullError", (kernel.to_string(), maxsize, "message")),
    }
}

#[pymethods]
impl PyQueue {
    #[new]
    #[pyo3(signature = (maxsize = 4096, *, backpressure = None, use_priority = true, kernel_id = String::new(), timeout_is_full = false))]
    fn py_new(
        py: Python<'_>,
        maxsize: i64,
        backpressure: Option<&Bound<'_, PyAny>>,
        use_priority: bool,
        kernel_id: String,
        timeout_is_full: bool,
    ) -> PyResult<Self> {
        if maxsize < 0 {
            return Err(exc(
                py,
                "InvalidConfigurationError",
                ("maxsize", maxsize, "must be >= 0 (0: unbounded)"),
            ));
        }
        let maxsize = maxsize as usize;
        if maxsize > MAX_QUEUE_CAPACITY {
            return Err(exc(
                py,
                "InvalidConfigurationError",
                ("maxsize", maxsize, format!("must be <= {MAX_QUEUE_CAPACITY}")),
            ));
        }
        let strategy = match backpressure {
            Some(b) => backpressure_of(b)?,
            None => Backpressure::Block,
        };
        let capacity = if maxsize == 0 { MAX_QUEUE_CAPACITY } else { maxsize };
        let q = MessageQueue::new(QueueConfig::new(capacity).with_backpressure(strategy))
            .map_err(|e| exc(py, "InvalidConfigurationError", ("maxsize", maxsize, e.to_string())))?;
        Ok(PyQueue {
            q,
            kernel_id,
            maxsize,
            use_priority,
            timeout_is_full,
        })
    }

    /// Puts `msg`, waiting for room under `block` (at most `timeout`
    /// seconds; `timeout=0` refuses at once when full).
    #[pyo3(signature = (message, timeout = None))]
    fn put(&self, py: Python<'_>, message: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<Awaitable> {
        let m = self.wrap(message)?;
        let timeout = duration(timeout)?;
        let q = self.q.clone();
        let at_once = timeout.is_some_and(|t| t.is_zero());
        let fut = async move {
            if at_once {
                q.try_send(m)
            } else {
                q.send(m).await
            }
        };
        let kernel = self.kernel_id.clone();
        let maxsize = self.maxsize;
        let awaitable = Awaitable::new("queue.put()", fut, move |py, r| match r {
            Ok(()) => Ok(py.None()),
            Err(e) => Err(send_error(py, &kernel, maxsize, e)),
        });
        let kernel = self.kernel_id.clone();
        let t = timeout.unwrap_or_default();
        let timeout_is_full = self.timeout_is_full;
        let _ = py;
        Ok(awaitable.with_timeout(timeout.filter(|_| !at_once), move |py| {
            if timeout_is_full {
                exc(py, "QueueFullError", (kernel, maxsize, "message"))
            } else {
                exc(py, "QueueTimeoutError", (kernel, t.as_secs_f64(), "send"))
            }
        }))
    }

    /// Takes the next message, waiting at most `timeout` seconds
    /// (`QueueTimeoutError`).
    #[pyo3(signature = (timeout = None))]
    fn get(&self, timeout: Option<f64>) -> PyResult<Awaitable> {
        let timeout = duration(timeout)?;
        let q = self.q.clone();
        let kernel = self.kernel_id.clone();
        let fut = async move { q.recv().await };
        let awaitable = Awaitable::new("queue.get()", fut, move |py, r| match r {
            Ok(m) => Ok(m.obj),
            Err(_) => Err(exc(py, "QueueClosedError", (kernel,))),
        });
        Ok(awaitable.with_queue_timeout(timeout, self.kernel_id.as_str(), "receive"))
    }

    /// Puts without waiting: False when full (under `block`/`reject`) or closed.
    fn put_nowait(&self, message: &Bound<'_, PyAny>) -> PyResult<bool> {
        let m = self.wrap(message)?;
        let _defer = crate::waker::Deferral::enter(message.py());
        Ok(self.q.try_send(m).is_ok())
    }

    /// Takes a message if one is ready, else None.
    fn get_nowait(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let _defer = crate::waker::Deferral::enter(py);
        self.q.try_recv().ok().map(|m| m.obj)
    }

    /// Puts, blocking this thread (GIL released) while it waits for room, at
    /// most `timeout` seconds. `QueueFullError` when full at the deadline
    /// (at once for `timeout=0`, or under `reject`); `QueueClosedError` once closed.
    #[pyo3(signature = (message, timeout = None))]
    fn put_blocking(&self, py: Python<'_>, message: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let m = self.wrap(message)?;
        let timeout = duration(timeout)?;
        let r = match timeout {
            Some(t) if t.is_zero() => self.q.try_send(m),
            _ => {
                let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                let mut m = m;
                loop {
                    let slice = slice_until(deadline);
                    let q = self.q.clone();
                    match py.detach(move || q.send_blocking_timeout(m, slice)) {
                        Err(SendError::Timeout(back)) if !expired(deadline) => {
                            py.check_signals()?;
                            m = back;
                        }
                        other => break other,
                    }
                }
            }
        };
        match r {
            Ok(()) => Ok(()),
            Err(SendError::Closed(_)) => Err(self.closed_error(py)),
            Err(_) => Err(self.full_error(py)),
        }
    }

    /// Takes a message, blocking this thread (GIL released) at most
    /// `timeout` seconds (`QueueTimeoutError`); `QueueClosedError` once
    /// closed and drained.
    #[pyo3(signature = (timeout = None, operation = "receive"))]
    fn get_blocking(&self, py: Python<'_>, timeout: Option<f64>, operation: &str) -> PyResult<Py<PyAny>> {
        let timeout = duration(timeout)?;
        let r = match timeout {
            Some(t) if t.is_zero() => self.q.try_recv(),
            _ => {
                let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
                loop {
                    let slice = slice_until(deadline);
                    let q = self.q.clone();
                    match py.detach(move || q.recv_blocking_timeout(slice)) {
                        Err(RecvError::Timeout) if !expired(deadline) => py.check_signals()?,
                        other => break other,
                    }
                }
            }
        };
        match r {
            Ok(m) => Ok(m.obj),
            Err(RecvError::Closed) => Err(self.closed_error(py)),
            Err(_) => Err(exc(
                py,
                "QueueTimeoutError",
                (
                    self.kernel_id.clone(),
                    timeout.unwrap_or_default().as_secs_f64(),
                    operation.to_string(),
                ),
            )),
        }
    }

    /// Puts messages in order without waiting; returns how many were queued
    /// (it stops at the first refusal: the rest were not queued).
    fn put_batch(&self, messages: &Bound<'_, PyAny>) -> PyResult<usize> {
        let _defer = crate::waker::Deferral::enter(messages.py());
        let mut n = 0;
        for item in messages.try_iter()? {
            let m = self.wrap(&item?)?;
            if self.q.try_send(m).is_err() {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Takes up to `max_count` ready messages (highest band first).
    fn get_batch<'py>(&self, py: Python<'py>, max_count: usize) -> PyResult<Bound<'py, PyList>> {
        let _defer = crate::waker::Deferral::enter(py);
        let mut out = Vec::new();
        self.q.try_recv_batch(max_count, &mut out);
        PyList::new(py, out.into_iter().map(|m| m.obj))
    }

    /// Removes every queued message; returns how many.
    fn clear(&self, py: Python<'_>) -> usize {
        let _defer = crate::waker::Deferral::enter(py);
        self.q.clear().len()
    }

    /// Closes the queue: puts fail from now on (also puts waiting for room,
    /// which wake at once); gets drain what is left, then fail.
    fn close(&self, py: Python<'_>) {
        let _defer = crate::waker::Deferral::enter(py);
        self.q.close();
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.q.is_closed()
    }

    /// The capacity given (0: unbounded).
    #[getter]
    fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// Messages queued now.
    #[getter]
    fn qsize(&self) -> usize {
        self.q.len()
    }

    /// Whether nothing is queued.
    #[getter]
    fn empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Whether the queue holds `maxsize` messages.
    #[getter]
    fn full(&self) -> bool {
        self.q.is_full()
    }

    /// Whether priorities order delivery (else strict FIFO).
    #[getter]
    fn use_priority(&self) -> bool {
        self.use_priority
    }

    /// The backpressure strategy's name.
    #[getter]
    fn backpressure_name(&self) -> &'static str {
        self.q.backpressure().name()
    }

    /// The queue's counters (consistent snapshot).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.q.stats();
        let d = PyDict::new(py);
        d.set_item("current_size", s.depth)?;
        d.set_item("max_size", self.maxsize)?;
        d.set_item("peak_size", s.peak_depth)?;
        d.set_item("total_enqueued", s.enqueued)?;
        d.set_item("total_dequeued", s.dequeued)?;
        d.set_item("total_dropped", s.dropped)?;
        d.set_item("total_rejected", s.rejected)?;
        d.set_item("total_timed_out", s.timed_out)?;
        d.set_item("total_closed_rejections", s.closed_rejections)?;
        // Not in PyDotCompute: how often a `get` / `put` had to go to sleep
        // (a wait that found a message or room at once is not counted).
        d.set_item("receive_sleeps", s.receive_sleeps)?;
        d.set_item("send_sleeps", s.send_sleeps)?;
        let bands = PyDict::new(py);
        bands.set_item("system", s.band_depths[3])?;
        bands.set_item("high", s.band_depths[2])?;
        bands.set_item("normal", s.band_depths[1])?;
        bands.set_item("low", s.band_depths[0])?;
        d.set_item("band_counts", bands)?;
        d.set_item("consistent", s.is_consistent())?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.q.len()
    }
}
