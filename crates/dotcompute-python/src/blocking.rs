//! Thread-bound Python kernels: a blocking `def f(ctx)` on its own OS
//! thread (the runtime's `Thread` mode), or polling wait-free rings from its
//! own thread (the runtime's `Spin` mode). They back
//! `dotcompute.ring_kernels.ThreadedRingKernel` (tier 2) and
//! `CythonRingKernel` (tier 3, whose queues in PyDotCompute were Cython
//! rings; here they are the runtime's Rust rings).
//!
//! Invariants:
//! - the kernel's thread holds the GIL only while Python code runs: every
//!   wait (`ctx.receive`, `ctx.send`, the host's `send`/`receive`) releases
//!   it, so a spinning kernel never starves the interpreter (PyDotCompute's
//!   Cython tier spun with the GIL held: about 8 ms per round trip);
//! - a full queue never loses a message: a send waits for room, or is
//!   refused and the caller told (PyDotCompute's SPSC queue overwrote the
//!   ring and its Cython queue raised `SystemError`);
//! - `stop` wakes a kernel blocked in `ctx.receive()` at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use dotcompute::{
    Backpressure, BlockingContext, Error, ExecutionMode, KernelConfig, KernelHandle, KernelSpec, KernelState,
    RingKernelRuntime, TerminateOptions,
};

use crate::actor::ActorError;
use crate::errors::{exc, state_name, to_py};
use crate::message::PyMsg;
use crate::runtime::duration;

type Ctx = BlockingContext<PyMsg, PyMsg>;

/// What a thread-bound kernel's function receives as `ctx`.
#[pyclass(frozen, module = "dotcompute._native", name = "BlockingContext")]
pub struct PyBlockingContext {
    kernel_id: Py<PyString>,
    ctx: Arc<Mutex<Option<Ctx>>>,
    handle: KernelHandle<PyMsg, PyMsg>,
    told_to_stop: AtomicBool,
}

impl PyBlockingContext {
    /// Runs `f` on the context with the GIL released.
    fn with_ctx<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Ctx) -> R + Send) -> PyResult<R> {
        let cell = self.ctx.clone();
        py.detach(move || {
            let mut guard = cell.lock();
            guard.as_mut().map(f)
        })
        .ok_or_else(|| exc(py, "KernelTerminatedError", (self.kernel_id.bind(py).to_string(),)))
    }

    /// After a terminate: `None` the first time, then `KernelTerminatingError`
    /// (so a loop that ignores `should_terminate` ends instead of spinning).
    fn stopped(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.told_to_stop.swap(true, Ordering::AcqRel) {
            Err(exc(
                py,
                "KernelTerminatingError",
                (self.kernel_id.bind(py).to_string(),),
            ))
        } else {
            Ok(None)
        }
    }
}

#[pymethods]
impl PyBlockingContext {
    #[getter]
    fn kernel_id(&self, py: Python<'_>) -> Py<PyString> {
        self.kernel_id.clone_ref(py)
    }

    /// True once the kernel is being stopped.
    #[getter]
    fn should_terminate(&self) -> bool {
        matches!(
            self.handle.state(),
            KernelState::Terminating | KernelState::Terminated | KernelState::Failed
        )
    }

    /// True while the kernel runs and is not deactivated.
    #[getter]
    fn is_active(&self) -> bool {
        self.handle.state() == KernelState::Active
    }

    /// The next message; with `timeout` (seconds) None if none came in time;
    /// None once the kernel is being stopped.
    #[pyo3(signature = (timeout = None))]
    fn receive(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let timeout = duration(timeout)?;
        let r = self.with_ctx(py, move |ctx| match timeout {
            None => ctx.receive().map(Some),
            Some(t) => ctx.receive_timeout(t),
        })?;
        match r {
            Ok(m) => Ok(m.map(|m| m.obj)),
            Err(Error::Terminating { .. }) => self.stopped(py),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// A message if one is ready, else None.
    fn receive_nowait(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.with_ctx(py, |ctx| ctx.try_receive())? {
            Ok(m) => Ok(m.map(|m| m.obj)),
            Err(Error::Terminating { .. }) => self.stopped(py),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// Sends to the kernel's output, waiting for room (until the kernel is
    /// stopped). True once sent; False if the kernel is being stopped.
    /// `timeout` must be None: the output waits for room until stop.
    #[pyo3(signature = (msg, timeout = None))]
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<bool> {
        if timeout.is_some() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a thread-bound kernel's send waits for room until the kernel stops; \
                 a send timeout is not supported (pass timeout=None)",
            ));
        }
        let m = PyMsg::new(msg)?;
        match self.with_ctx(py, move |ctx| ctx.send(m).map_err(Error::from))? {
            Ok(()) => Ok(true),
            Err(Error::Terminating { .. }) => Ok(false),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// PyDotCompute's name for `send` without a timeout.
    fn send_nowait(&self, py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.send(py, msg, None)
    }

    /// Waits until the kernel is being stopped (or `timeout` seconds); whether it is.
    #[pyo3(signature = (timeout = None))]
    fn wait_shutdown(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = duration(timeout)?;
        let start = std::time::Instant::now();
        loop {
            if self.should_terminate() {
                return Ok(true);
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Ok(false);
            }
            py.detach(|| std::thread::sleep(Duration::from_millis(1)));
            py.check_signals()?;
        }
    }
}

/// A thread-bound kernel in a private runtime.
#[pyclass(frozen, module = "dotcompute._native", name = "BlockingKernel")]
pub struct PyBlockingKernel {
    id: String,
    rt: RingKernelRuntime,
    spec: Mutex<Option<KernelSpec>>,
    handle: Arc<Mutex<Option<KernelHandle<PyMsg, PyMsg>>>>,
    error: Arc<Mutex<Option<Py<PyAny>>>>,
}

impl PyBlockingKernel {
    fn handle(&self, py: Python<'_>, operation: &str) -> PyResult<KernelHandle<PyMsg, PyMsg>> {
        self.handle.lock().clone().ok_or_else(|| {
            exc(
                py,
                "KernelStateError",
                (self.id.clone(), "CREATED".to_string(), operation.to_string()),
            )
        })
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[pymethods]
impl PyBlockingKernel {
    #[new]
    #[pyo3(signature = (kernel_id, func, *, input_queue_size = 4096, output_queue_size = 4096, spin = false, backpressure = "block", thread_name = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        kernel_id: String,
        func: Py<PyAny>,
        input_queue_size: usize,
        output_queue_size: usize,
        spin: bool,
        backpressure: &str,
        thread_name: Option<String>,
    ) -> PyResult<Self> {
        let _ = thread_name;
        let mut config = KernelConfig::default();
        config.input_queue_size = input_queue_size;
        config.output_queue_size = output_queue_size;
        config.backpressure = backpressure.parse::<Backpressure>().map_err(|e| {
            exc(
                py,
                "InvalidConfigurationError",
                ("backpressure", backpressure, e.to_string()),
            )
        })?;
        config.mode = if spin {
            ExecutionMode::Spin
        } else {
            ExecutionMode::Thread
        };
        let error: Arc<Mutex<Option<Py<PyAny>>>> = Arc::new(Mutex::new(None));
        let err_slot = error.clone();
        let handle_cell: Arc<Mutex<Option<KernelHandle<PyMsg, PyMsg>>>> = Arc::new(Mutex::new(None));
        let handle_for_ctx = handle_cell.clone();
        let id = kernel_id.clone();
        let spec = KernelSpec::builder::<PyMsg, PyMsg>(kernel_id.clone())
            .config(config)
            .blocking_handler(move |ctx: Ctx| -> Result<(), ActorError> {
                let id = id.clone();
                let handle = handle_for_ctx.lock().clone();
                Python::attach(|py| {
                    let cell = Arc::new(Mutex::new(Some(ctx)));
                    let run = || -> PyResult<()> {
                        let pyctx = Py::new(
                            py,
                            PyBlockingContext {
                                kernel_id: PyString::new(py, &id).unbind(),
                                ctx: cell.clone(),
                                handle: handle.clone().ok_or_else(|| {
                                    pyo3::exceptions::PyRuntimeError::new_err("dotcompute: kernel handle missing")
                                })?,
                                told_to_stop: AtomicBool::new(false),
                            },
                        )?;
                        func.call1(py, (pyctx,))?;
                        Ok(())
                    };
                    let outcome = run();
                    // Retire the context: calls made after the function returned fail.
                    drop(cell.lock().take());
                    match outcome {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            let own_stop = e
                                .value(py)
                                .getattr("kernel_id")
                                .ok()
                                .and_then(|k| k.extract::<String>().ok())
                                .is_some_and(|k| k == id)
                                && e.value(py)
                                    .get_type()
                                    .name()
                                    .is_ok_and(|n| n == "KernelTerminatingError");
                            if own_stop {
                                return Ok(());
                            }
                            let text = crate::actor::describe_err(py, &e);
                            *err_slot.lock() = Some(e.value(py).clone().into_any().unbind());
                            Err(ActorError(text))
                        }
                    }
                })
            })
            .build()
            .map_err(|e| to_py(py, e))?;
        Ok(PyBlockingKernel {
            id: kernel_id,
            rt: RingKernelRuntime::new(),
            spec: Mutex::new(Some(spec)),
            handle: handle_cell,
            error,
        })
    }

    /// Launches the kernel and starts its thread.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let Some(spec) = self.spec.lock().take() else {
            return Err(exc(
                py,
                "KernelStateError",
                (self.id.clone(), self.state_name(), "start".to_string()),
            ));
        };
        let rt = self.rt.clone();
        let id = self.id.clone();
        let launched = crate::executor::enter(|| Some(rt.launch_spec(spec)))?;
        match launched {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(to_py(py, e)),
            None => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "dotcompute: launch did not complete",
                ))
            }
        }
        let handle = rt.handle::<PyMsg, PyMsg>(&id).map_err(|e| to_py(py, e))?;
        *self.handle.lock() = Some(handle);
        let activated = crate::executor::enter(|| Some(rt.activate(&id)))?;
        match activated {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(to_py(py, e)),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "dotcompute: activate did not complete",
            )),
        }
    }

    /// Stops the kernel: wakes it if it waits, waits up to `timeout` seconds
    /// for its function to return. Returns the terminate report (None if it
    /// never started).
    #[pyo3(signature = (timeout = 5.0))]
    fn stop(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Py<PyAny>>> {
        if self.handle.lock().is_none() {
            return Ok(None);
        }
        let options = TerminateOptions {
            drain: false,
            timeout: duration(Some(timeout))?.unwrap_or_default(),
        };
        let rt = self.rt.clone();
        let id = self.id.clone();
        let r = py.detach(move || block(rt.terminate_with(&id, options)));
        match r {
            Ok(report) => Ok(Some(
                crate::telemetry::terminate_report(py, &report)?.into_any().unbind(),
            )),
            Err(Error::KernelNotFound { .. }) => Ok(None),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// Sends to the kernel's input, blocking (GIL released) for room, at
    /// most `timeout` seconds. True once queued; False on timeout.
    #[pyo3(signature = (msg, timeout = None))]
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<bool> {
        let handle = self.handle(py, "send message")?;
        let m = PyMsg::new(msg)?;
        let timeout = duration(timeout)?;
        let rt = self.rt.clone();
        let id = self.id.clone();
        let r: Result<(), Error> = py.detach(move || match timeout {
            None => handle.send_blocking(m).map_err(Error::from),
            Some(t) if t.is_zero() => handle.try_send(m).map_err(Error::from),
            Some(t) => block(rt.send_timeout(&id, m, t)).map_err(Error::from),
        });
        match r {
            Ok(()) => Ok(true),
            Err(Error::QueueTimeout { .. } | Error::QueueFull { .. }) => Ok(false),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// Sends without waiting; False when the input is full.
    fn send_nowait(&self, py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.send(py, msg, Some(0.0))
    }

    /// The next output, blocking (GIL released) at most `timeout` seconds
    /// (None: until one comes or the kernel ends); None on timeout.
    #[pyo3(signature = (timeout = None))]
    fn receive(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let handle = self.handle(py, "receive message")?;
        let timeout = duration(timeout)?;
        let r = py.detach(move || match timeout {
            None => handle.receive_blocking(),
            Some(t) => handle.receive_blocking_timeout(t),
        });
        match r {
            Ok(m) => Ok(Some(m.obj)),
            Err(Error::QueueTimeout { .. }) => Ok(None),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// An output if one is ready, else None.
    fn receive_nowait(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.receive(py, Some(0.0))
    }

    /// The runtime state name (`LAUNCHED`, `ACTIVE`, `TERMINATED`, `FAILED`, ...).
    #[getter]
    fn state_name(&self) -> String {
        match &*self.handle.lock() {
            Some(h) => state_name(h.state()).to_string(),
            None => "CREATED".to_string(),
        }
    }

    /// The exception the kernel's function raised, if it failed.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.error.lock().as_ref().map(|e| e.clone_ref(py))
    }

    /// The kernel's telemetry.
    fn telemetry<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = self.rt.telemetry(&self.id).map_err(|e| to_py(py, e))?;
        crate::telemetry::telemetry_dict(py, &t)
    }
}
