//! `dotcompute._native.Runtime`: the Rust [`RingKernelRuntime`] as seen from
//! Python (the base class of `dotcompute.RingKernelRuntime`).
//!
//! Every kernel of a runtime, whether a Python actor or a built-in Rust
//! kernel, is a kernel of one `RingKernelRuntime`; this module keeps, per id,
//! the typed host handle the Python calls go through ([`Port`]) so that a
//! `send` or `receive` costs one map lookup and one poll of the Rust future.
//!
//! Invariants:
//! - `send`/`receive` complete in the call's first poll when the queue has
//!   room / a message, and otherwise park the task until a Rust wake-up (no
//!   thread hop, no polling loop);
//! - a message sent to a kernel with a declared `input_type` is an instance
//!   of it, or the send raises `TypeValidationError` and nothing is queued;
//! - a kernel that failed makes the host's next call raise
//!   `KernelFailedError`, chained to the actor's own exception.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use dotcompute::{
    Backpressure, Error, KernelConfig, KernelHandle, KernelSpec, KernelState, RestartPolicy, RingKernelRuntime,
    RuntimeConfig, TerminateOptions,
};

use crate::actor::{validate, ActorDef, Bridge};
use crate::awaitable::Awaitable;
use crate::errors::{state_name, to_py};
use crate::message::PyMsg;
use crate::telemetry::telemetry_dict;
use crate::waker::LoopNotifier;

/// Seconds (a Python float or None) as a `Duration`.
///
/// # Errors
/// `ValueError` for a negative or non-finite number.
pub fn duration(secs: Option<f64>) -> PyResult<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds, got {s}"
        ))),
    }
}

/// The host side of one kernel, whatever its message types.
pub trait Port: Send + Sync {
    /// Sends one Python value (converted to the kernel's input type).
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable>;
    /// Receives one reply as a Python value.
    fn receive(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Awaitable>;
    /// Sends then receives, within one time limit.
    fn send_and_receive(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Awaitable>;
    /// Sends many values in order (a list, or a numpy array for record kernels).
    fn send_batch(&self, py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable>;
    /// Waits for one reply, then takes up to `max_count - 1` more ready ones.
    fn receive_batch(&self, py: Python<'_>, max_count: usize, timeout: Option<Duration>) -> PyResult<Awaitable>;
    /// The kernel's state.
    fn state(&self) -> KernelState;
}

/// A runtime error as a Python exception, chained to the actor's exception
/// for a failed Python kernel.
pub fn py_error(py: Python<'_>, bridge: Option<&Arc<Bridge>>, e: Error) -> PyErr {
    let failed = matches!(e, Error::KernelFailed { .. });
    let err = to_py(py, e);
    if failed {
        if let Some(cause) = bridge.and_then(|b| b.failure(py)) {
            err.set_cause(py, Some(PyErr::from_value(cause.into_bound(py))));
        }
    }
    err
}

/// The port of a Python actor kernel: any Python object travels by reference.
pub struct PythonPort {
    handle: KernelHandle<PyMsg, PyMsg>,
    bridge: Arc<Bridge>,
}

fn wrap(py: Python<'_>, bridge: &Arc<Bridge>, msg: &Bound<'_, PyAny>) -> PyResult<PyMsg> {
    validate(py, &bridge.def().input_type, msg, || {
        format!("input of kernel '{}'", bridge.id())
    })?;
    PyMsg::new(msg)
}

fn zero(t: Option<Duration>) -> bool {
    t.is_some_and(|t| t.is_zero())
}

impl Port for PythonPort {
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let m = wrap(py, &self.bridge, msg)?;
        let handle = self.handle.clone();
        let bridge = self.bridge.clone();
        let at_once = zero(timeout);
        let fut = async move {
            if at_once {
                // timeout=0: a full queue refuses at once (QueueFullError).
                handle.try_send(m)
            } else {
                handle.send(m).await
            }
        };
        Ok(Awaitable::new("runtime.send()", fut, move |py, r| match r {
            Ok(()) => Ok(py.None()),
            Err(e) => Err(py_error(py, Some(&bridge), e.into())),
        })
        .with_queue_timeout(timeout.filter(|_| !at_once), self.bridge.shared_id(), "send"))
    }

    fn receive(&self, _py: Python<'_>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let handle = self.handle.clone();
        let bridge = self.bridge.clone();
        let fut = async move { handle.receive().await };
        Ok(Awaitable::new("runtime.receive()", fut, move |py, r| match r {
            Ok(m) => Ok(m.obj),
            Err(e) => Err(py_error(py, Some(&bridge), e)),
        })
        .with_queue_timeout(timeout, self.bridge.shared_id(), "receive"))
    }

    fn send_and_receive(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Awaitable> {
        let m = wrap(py, &self.bridge, msg)?;
        let handle = self.handle.clone();
        let bridge = self.bridge.clone();
        let sent = Arc::new(AtomicBool::new(false));
        let sent_flag = sent.clone();
        let at_once = zero(timeout);
        let fut = async move {
            if at_once {
                handle.try_send(m)?;
            } else {
                handle.send(m).await?;
            }
            sent_flag.store(true, Ordering::Release);
            handle.receive().await
        };
        let id = self.bridge.id().to_string();
        let t = timeout.unwrap_or_default();
        Ok(Awaitable::new("runtime.send_and_receive()", fut, move |py, r| match r {
            Ok(m) => Ok(m.obj),
            Err(e) => Err(py_error(py, Some(&bridge), e)),
        })
        .with_timeout(timeout, move |py| {
            let op = if sent.load(Ordering::Acquire) {
                "receive"
            } else {
                "send"
            };
            crate::errors::exc(py, "QueueTimeoutError", (id, t.as_secs_f64(), op))
        }))
    }

    fn send_batch(&self, py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let mut batch = Vec::new();
        for item in msgs.try_iter()? {
            batch.push(wrap(py, &self.bridge, &item?)?);
        }
        let handle = self.handle.clone();
        let bridge = self.bridge.clone();
        let fut = async move { handle.send_batch(batch).await };
        Ok(Awaitable::new("runtime.send_batch()", fut, move |py, r| match r {
            Ok(()) => Ok(py.None()),
            Err(e) => Err(py_error(py, Some(&bridge), e.into())),
        })
        .with_queue_timeout(timeout, self.bridge.shared_id(), "send"))
    }

    fn receive_batch(&self, _py: Python<'_>, max_count: usize, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let handle = self.handle.clone();
        let bridge = self.bridge.clone();
        let fut = async move {
            let mut out = Vec::new();
            handle.receive_batch(max_count, &mut out).await.map(|_| out)
        };
        Ok(Awaitable::new("runtime.receive_batch()", fut, move |py, r| match r {
            Ok(msgs) => Ok(PyList::new(py, msgs.into_iter().map(|m| m.obj))?.into_any().unbind()),
            Err(e) => Err(py_error(py, Some(&bridge), e)),
        })
        .with_queue_timeout(timeout, self.bridge.shared_id(), "receive"))
    }

    fn state(&self) -> KernelState {
        self.handle.state()
    }
}

/// One launched kernel, as the Python runtime knows it.
pub struct Entry {
    /// How Python talks to it.
    pub port: Arc<dyn Port>,
    /// Set for Python actors.
    pub bridge: Option<Arc<Bridge>>,
    /// What Python was told about it (grid/block sizes, kind).
    pub info: Py<PyDict>,
}

/// Kernel configuration as the Python layer passes it.
#[derive(Debug, Clone)]
pub struct PyKernelConfig {
    pub input_queue_size: usize,
    pub output_queue_size: usize,
    pub backpressure: Backpressure,
    pub output_backpressure: Backpressure,
    pub send_timeout: Option<Duration>,
    pub restart: RestartPolicy,
    pub latency_sample_every: u32,
}

impl PyKernelConfig {
    /// The runtime's configuration (validated by the runtime at launch).
    pub fn to_config(&self) -> KernelConfig {
        let mut c = KernelConfig::default();
        c.input_queue_size = self.input_queue_size;
        c.output_queue_size = self.output_queue_size;
        c.backpressure = self.backpressure;
        c.output_backpressure = self.output_backpressure;
        c.send_timeout = self.send_timeout;
        c.restart = self.restart;
        c.latency_sample_every = self.latency_sample_every;
        c
    }
}

/// Parses a backpressure strategy name or `BackpressureStrategy` member.
pub fn backpressure_of(v: &Bound<'_, PyAny>) -> PyResult<Backpressure> {
    let text: String = if let Ok(s) = v.extract::<String>() {
        s
    } else if let Ok(name) = v.getattr("name").and_then(|n| n.extract::<String>()) {
        name
    } else {
        v.str()?.to_string()
    };
    text.parse::<Backpressure>().map_err(|e| {
        crate::errors::exc(
            v.py(),
            "InvalidConfigurationError",
            ("backpressure", v.clone().unbind(), e.to_string()),
        )
    })
}

/// The entries by kernel id. Every `send` and `receive` looks one up, so
/// the ids are hashed with foldhash (a few nanoseconds for a short id) rather
/// than the standard SipHash (about ten times that): nothing outside the
/// program chooses these keys in bulk, so flooding resistance buys nothing.
type KernelMap = HashMap<String, Arc<Entry>, foldhash::fast::RandomState>;

/// The Rust half of `dotcompute.RingKernelRuntime`.
#[pyclass(subclass, module = "dotcompute._native", name = "Runtime")]
pub struct PyRuntime {
    core: Mutex<RingKernelRuntime>,
    kernels: Mutex<KernelMap>,
    terminate_timeout: Duration,
    shut_down: AtomicBool,
}

fn new_core(terminate_timeout: Duration) -> RingKernelRuntime {
    let mut config = RuntimeConfig::default();
    config.terminate_timeout = terminate_timeout;
    RingKernelRuntime::with_config(config)
}

impl PyRuntime {
    fn core(&self) -> RingKernelRuntime {
        self.core.lock().clone()
    }

    /// The entry of kernel `id`, or `KernelNotFoundError`.
    pub fn entry(&self, py: Python<'_>, id: &str) -> PyResult<Arc<Entry>> {
        let kernels = self.kernels.lock();
        match kernels.get(id) {
            Some(e) => Ok(e.clone()),
            None => {
                let mut known: Vec<String> = kernels.keys().cloned().collect();
                known.sort();
                Err(to_py(
                    py,
                    Error::KernelNotFound {
                        id: id.to_string(),
                        known,
                    },
                ))
            }
        }
    }

    /// Launches a built spec and records how Python reaches it.
    pub fn install(
        &self,
        py: Python<'_>,
        spec: KernelSpec,
        make_port: impl FnOnce(&RingKernelRuntime) -> Result<(Arc<dyn Port>, Option<Arc<Bridge>>), Error>,
        info: Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let id = spec.id().to_string();
        if self.kernels.lock().contains_key(&id) {
            return Err(to_py(py, Error::KernelAlreadyExists(id)));
        }
        let rt = self.core();
        let launched = crate::executor::enter(|| Some(rt.launch_spec(spec)))?;
        match launched {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(to_py(py, e)),
            None => return Err(PyRuntimeError::new_err("dotcompute: launch did not complete at once")),
        }
        let (port, bridge) = make_port(&rt).map_err(|e| to_py(py, e))?;
        self.kernels.lock().insert(
            id,
            Arc::new(Entry {
                port,
                bridge,
                info: info.unbind(),
            }),
        );
        Ok(())
    }
}

#[pymethods]
impl PyRuntime {
    #[new]
    #[pyo3(signature = (*_args, terminate_timeout = 5.0, **_kwargs))]
    fn py_new(
        _args: &Bound<'_, pyo3::types::PyTuple>,
        terminate_timeout: f64,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let t = duration(Some(terminate_timeout))?.unwrap_or_default();
        Ok(PyRuntime {
            core: Mutex::new(new_core(t)),
            kernels: Mutex::new(KernelMap::default()),
            terminate_timeout: t,
            shut_down: AtomicBool::new(false),
        })
    }

    /// Makes the runtime usable again after a shutdown (fresh, with no kernels).
    fn _restart(&self) {
        if self.shut_down.swap(false, Ordering::AcqRel) {
            *self.core.lock() = new_core(self.terminate_timeout);
            self.kernels.lock().clear();
        }
    }

    /// Launches a Python actor kernel.
    #[pyo3(signature = (kernel_id, func, *, input_queue_size, output_queue_size, backpressure, output_backpressure, send_timeout, input_type, output_type, max_restarts, restart_window, latency_sample_every, info))]
    #[allow(clippy::too_many_arguments)]
    fn _launch_python(
        &self,
        py: Python<'_>,
        kernel_id: String,
        func: Py<PyAny>,
        input_queue_size: usize,
        output_queue_size: usize,
        backpressure: &Bound<'_, PyAny>,
        output_backpressure: &Bound<'_, PyAny>,
        send_timeout: Option<f64>,
        input_type: Option<Py<PyAny>>,
        output_type: Option<Py<PyAny>>,
        max_restarts: u32,
        restart_window: f64,
        latency_sample_every: u32,
        info: Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let restart = if max_restarts == 0 {
            RestartPolicy::Never
        } else {
            RestartPolicy::OnFailure {
                max_restarts,
                window: duration(Some(restart_window))?.unwrap_or_default(),
            }
        };
        let config = PyKernelConfig {
            input_queue_size,
            output_queue_size,
            backpressure: backpressure_of(backpressure)?,
            output_backpressure: backpressure_of(output_backpressure)?,
            send_timeout: duration(send_timeout)?.filter(|t| !t.is_zero()),
            restart,
            latency_sample_every,
        };
        let bridge = Bridge::new(
            &kernel_id,
            ActorDef {
                func,
                input_type,
                output_type,
            },
        );
        let handler_bridge = bridge.clone();
        let spec = KernelSpec::builder::<PyMsg, PyMsg>(kernel_id.clone())
            .config(config.to_config())
            .handler(move |ctx| handler_bridge.clone().run(ctx))
            .build()
            .map_err(|e| to_py(py, e))?;
        let id = kernel_id.clone();
        self.install(
            py,
            spec,
            move |rt| {
                let handle = rt.handle::<PyMsg, PyMsg>(&id)?;
                bridge.set_handle(handle.clone());
                let port: Arc<dyn Port> = Arc::new(PythonPort {
                    handle,
                    bridge: bridge.clone(),
                });
                Ok((port, Some(bridge)))
            },
            info,
        )
    }

    /// Launches a built-in Rust kernel (see `dotcompute.kernels`).
    #[pyo3(signature = (kernel_id, kind, *, device = "cpu", queue_size = 4096, tier = "thread", window = 10_000, threshold = 3.0, batch_size = 1024, info))]
    #[allow(clippy::too_many_arguments)]
    fn _launch_builtin(
        &self,
        py: Python<'_>,
        kernel_id: String,
        kind: &str,
        device: &str,
        queue_size: usize,
        tier: &str,
        window: u32,
        threshold: f64,
        batch_size: usize,
        info: Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let args = crate::kernels::BuiltinArgs {
            kind,
            device,
            queue_size,
            tier,
            window,
            threshold,
            batch_size,
        };
        self.launch_builtin(py, kernel_id, args, info)
    }

    /// Starts a launched kernel; completes once a Python actor's task exists.
    fn _activate(&self, py: Python<'_>, kernel_id: String) -> PyResult<Awaitable> {
        let entry = self.entry(py, &kernel_id)?;
        let seen = if let Some(b) = &entry.bridge {
            b.bind_loop(LoopNotifier::current(py)?);
            Some((b.clone(), b.started_count()))
        } else {
            None
        };
        let rt = self.core();
        let r = crate::executor::enter(|| Some(rt.activate(&kernel_id)))?;
        match r {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(py_error(py, entry.bridge.as_ref(), e)),
            None => return Err(PyRuntimeError::new_err("dotcompute: activate did not complete at once")),
        }
        Ok(match seen {
            Some((bridge, seen)) => {
                Awaitable::new("runtime.activate()", bridge.wait_started(seen), |py, ()| Ok(py.None()))
            }
            None => Awaitable::ready("runtime.activate()", Ok(py.None())),
        })
    }

    fn _deactivate(&self, py: Python<'_>, kernel_id: String) -> PyResult<()> {
        let entry = self.entry(py, &kernel_id)?;
        let rt = self.core();
        match Some(rt.deactivate(&kernel_id)) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(py_error(py, entry.bridge.as_ref(), e)),
            None => Err(PyRuntimeError::new_err(
                "dotcompute: deactivate did not complete at once",
            )),
        }
    }

    fn _reactivate(&self, py: Python<'_>, kernel_id: String) -> PyResult<()> {
        let entry = self.entry(py, &kernel_id)?;
        let rt = self.core();
        let r = Some(rt.reactivate(&kernel_id));
        if let Some(b) = &entry.bridge {
            b.state_changed();
        }
        match r {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(py_error(py, entry.bridge.as_ref(), e)),
            None => Err(PyRuntimeError::new_err(
                "dotcompute: reactivate did not complete at once",
            )),
        }
    }

    /// Terminates a kernel (its blocked receive wakes at once) and removes
    /// it; resolves to the terminate report as a dict.
    #[pyo3(signature = (kernel_id, timeout = None, drain = false))]
    fn _terminate(
        slf: Py<Self>,
        py: Python<'_>,
        kernel_id: String,
        timeout: Option<f64>,
        drain: bool,
    ) -> PyResult<Awaitable> {
        let this = slf.bind(py).borrow();
        let entry = this.entry(py, &kernel_id)?;
        let rt = this.core();
        let options = TerminateOptions {
            drain,
            timeout: duration(timeout)?.unwrap_or(this.terminate_timeout),
        };
        drop(this);
        let bridge = entry.bridge.clone();
        let id = kernel_id.clone();
        let fut = async move {
            let term = rt.terminate_with(&id, options);
            let mut term = pin!(term);
            let mut first = true;
            std::future::poll_fn(|cx| {
                let r = term.as_mut().poll(cx);
                if first {
                    first = false;
                    if let Some(b) = &bridge {
                        b.state_changed();
                    }
                }
                r
            })
            .await
        };
        let bridge = entry.bridge.clone();
        Ok(Awaitable::new("runtime.terminate()", fut, move |py, r| {
            let slf = slf.bind(py).borrow();
            let mut kernels = slf.kernels.lock();
            if kernels.get(&kernel_id).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                kernels.remove(&kernel_id);
            }
            drop(kernels);
            match r {
                Ok(report) => Ok(crate::telemetry::terminate_report(py, &report)?.into_any().unbind()),
                Err(e) => Err(py_error(py, bridge.as_ref(), e)),
            }
        }))
    }

    /// Terminates every kernel concurrently (each within `timeout`, default
    /// the runtime's terminate timeout) and refuses later launches until `_restart`.
    #[pyo3(signature = (timeout = None))]
    fn _shutdown(slf: Py<Self>, py: Python<'_>, timeout: Option<f64>) -> PyResult<Awaitable> {
        let this = slf.bind(py).borrow();
        this.shut_down.store(true, Ordering::Release);
        let rt = this.core();
        let options = TerminateOptions {
            drain: false,
            timeout: duration(timeout)?.unwrap_or(this.terminate_timeout),
        };
        let entries: Vec<(String, Arc<Entry>)> = this.kernels.lock().drain().collect();
        drop(this);
        let bridges: Vec<Arc<Bridge>> = entries.iter().filter_map(|(_, e)| e.bridge.clone()).collect();
        let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
        let fut = async move {
            let start = Instant::now();
            let all = futures::future::join_all(ids.iter().map(|id| rt.terminate_with(id, options)));
            let mut all = pin!(all);
            let mut first = true;
            let reports = std::future::poll_fn(|cx| {
                let r = all.as_mut().poll(cx);
                if first {
                    first = false;
                    for b in &bridges {
                        b.state_changed();
                    }
                }
                r
            })
            .await;
            let _ = rt.shutdown().await;
            (reports, start.elapsed())
        };
        Ok(Awaitable::new(
            "runtime.shutdown()",
            fut,
            move |py, (reports, elapsed)| {
                let out = PyDict::new(py);
                let list = PyList::empty(py);
                for r in reports.into_iter().flatten() {
                    list.append(crate::telemetry::terminate_report(py, &r)?)?;
                }
                out.set_item("kernels", list)?;
                out.set_item("elapsed_seconds", elapsed.as_secs_f64())?;
                drop(entries);
                Ok(out.into_any().unbind())
            },
        ))
    }

    /// Sends `msg` to kernel `kernel_id`'s input. Waits for room under the
    /// `block` strategy (up to `timeout` seconds: `QueueTimeoutError`;
    /// `timeout=0`: `QueueFullError` at once when full).
    #[pyo3(signature = (kernel_id, msg, *, timeout = None))]
    fn send(
        &self,
        py: Python<'_>,
        kernel_id: &str,
        msg: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Awaitable> {
        self.entry(py, kernel_id)?.port.send(py, msg, duration(timeout)?)
    }

    /// Receives the next message from kernel `kernel_id`'s output; with
    /// `timeout` (seconds), `QueueTimeoutError` if none came in time.
    #[pyo3(signature = (kernel_id, *, timeout = None))]
    fn receive(&self, py: Python<'_>, kernel_id: &str, timeout: Option<f64>) -> PyResult<Awaitable> {
        self.entry(py, kernel_id)?.port.receive(py, duration(timeout)?)
    }

    /// `send` then `receive`, with one time limit for both.
    #[pyo3(signature = (kernel_id, msg, *, timeout = None))]
    fn send_and_receive(
        &self,
        py: Python<'_>,
        kernel_id: &str,
        msg: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Awaitable> {
        self.entry(py, kernel_id)?
            .port
            .send_and_receive(py, msg, duration(timeout)?)
    }

    /// Sends many messages in order (a list; a numpy structured array for
    /// record kernels), waiting for room under `block`.
    #[pyo3(signature = (kernel_id, msgs, *, timeout = None))]
    fn send_batch(
        &self,
        py: Python<'_>,
        kernel_id: &str,
        msgs: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Awaitable> {
        self.entry(py, kernel_id)?.port.send_batch(py, msgs, duration(timeout)?)
    }

    /// Waits for one reply, then takes up to `max_count - 1` more that are
    /// ready (a list; a numpy array for record kernels).
    #[pyo3(signature = (kernel_id, max_count = 1024, *, timeout = None))]
    fn receive_batch(
        &self,
        py: Python<'_>,
        kernel_id: &str,
        max_count: usize,
        timeout: Option<f64>,
    ) -> PyResult<Awaitable> {
        self.entry(py, kernel_id)?
            .port
            .receive_batch(py, max_count, duration(timeout)?)
    }

    /// Routes everything `from_kernel` sends into `to_kernel`'s input.
    fn link(&self, py: Python<'_>, from_kernel: &str, to_kernel: &str) -> PyResult<()> {
        self.core().link(from_kernel, to_kernel).map_err(|e| to_py(py, e))
    }

    /// Routes `kernel_id`'s output back to the host.
    fn unlink(&self, py: Python<'_>, kernel_id: &str) -> PyResult<()> {
        self.core().unlink(kernel_id).map_err(|e| to_py(py, e))
    }

    /// The state name of a kernel (`ACTIVE`, ...).
    fn _state(&self, py: Python<'_>, kernel_id: &str) -> PyResult<&'static str> {
        Ok(state_name(self.entry(py, kernel_id)?.port.state()))
    }

    /// The launch information recorded for a kernel.
    fn _info(&self, py: Python<'_>, kernel_id: &str) -> PyResult<Py<PyDict>> {
        Ok(self.entry(py, kernel_id)?.info.clone_ref(py))
    }

    /// The ids of the kernels, sorted.
    #[getter]
    fn kernel_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.kernels.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// One kernel's telemetry, as recorded by the runtime.
    fn _telemetry<'py>(&self, py: Python<'py>, kernel_id: &str) -> PyResult<Bound<'py, PyDict>> {
        self.entry(py, kernel_id)?;
        let t = self.core().telemetry(kernel_id).map_err(|e| to_py(py, e))?;
        telemetry_dict(py, &t)
    }

    /// Every kernel's telemetry and the totals.
    fn _summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::telemetry::summary_dict(py, &self.core().summary())
    }

    /// The telemetry in the Prometheus text format.
    fn prometheus(&self) -> String {
        self.core().prometheus()
    }
}
