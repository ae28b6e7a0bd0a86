//! From runtime errors to the Python exceptions of `dotcompute.exceptions`.
//!
//! Invariant: every error the Rust runtime reports reaches Python as one
//! exception class of `dotcompute.exceptions` (PyDotCompute's hierarchy and
//! messages, plus the cases it never reported: a failed kernel, a terminated
//! one), built with the same constructor arguments a Python caller would use,
//! so `except` clauses written for PyDotCompute keep working.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use dotcompute::{Error, KernelState};

/// Builds `dotcompute.exceptions.<class_name>(*args)` as a `PyErr`.
pub fn exc<'py, A>(py: Python<'py>, class_name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let built = MODULE
        .get_or_try_init(py, || py.import("dotcompute.exceptions").map(Bound::unbind))
        .and_then(|m| m.bind(py).getattr(class_name))
        .and_then(|cls| cls.call1(args));
    match built {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// PyDotCompute's name for a state (`ACTIVE`, ...).
pub fn state_name(state: KernelState) -> &'static str {
    match state {
        KernelState::Created => "CREATED",
        KernelState::Launched => "LAUNCHED",
        KernelState::Active => "ACTIVE",
        KernelState::Deactivated => "DEACTIVATED",
        KernelState::Terminating => "TERMINATING",
        KernelState::Terminated => "TERMINATED",
        KernelState::Failed => "FAILED",
        #[allow(unreachable_patterns)]
        _ => "UNKNOWN",
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The Python exception for a runtime error.
pub fn to_py(py: Python<'_>, e: impl Into<Error>) -> PyErr {
    #[allow(unreachable_patterns)]
    match e.into() {
        Error::KernelNotFound { id, known } => exc(py, "KernelNotFoundError", (id, known)),
        Error::KernelAlreadyExists(id) => exc(py, "KernelAlreadyExistsError", (id,)),
        Error::DuplicateKernel { id, locations } => exc(
            py,
            "KernelAlreadyExistsError",
            (id, format!("defined more than once: {}", locations.join("; "))),
        ),
        Error::State(s) => {
            let op = match s.operation {
                dotcompute::Operation::Send => "send message".to_string(),
                dotcompute::Operation::Receive => "receive message".to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            exc(py, "KernelStateError", (s.kernel, state_name(s.state), op))
        }
        Error::KernelFailed { kernel, error } => crate::actor::failure_exception(py, kernel, error.to_string()),
        Error::KernelTerminated { kernel } => exc(py, "KernelTerminatedError", (kernel,)),
        Error::Terminating { kernel } => exc(py, "KernelTerminatingError", (kernel,)),
        Error::QueueFull {
            kernel,
            queue,
            capacity,
        } => exc(py, "QueueFullError", (kernel, capacity, queue)),
        Error::QueueTimeout {
            kernel,
            operation,
            timeout,
        } => {
            let op = if operation.starts_with("send") {
                "send"
            } else {
                "receive"
            };
            exc(py, "QueueTimeoutError", (kernel, secs(timeout), op))
        }
        Error::TypeMismatch {
            kernel,
            context,
            expected,
            found,
        } => exc(
            py,
            "TypeValidationError",
            (expected, found, format!("{context} of kernel '{kernel}'")),
        ),
        Error::InvalidConfiguration {
            parameter,
            value,
            reason,
        } => exc(py, "InvalidConfigurationError", (parameter, value, reason)),
        Error::ShutDown => exc(py, "RuntimeShutdownError", ()),
        Error::Gpu { kernel, error } => exc(py, "BackendError", (format!("GPU kernel '{kernel}': {error}"),)),
        other => exc(py, "DotComputeError", (other.to_string(),)),
    }
}

/// `Result<T, dotcompute::Error>` to `PyResult<T>`.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_py`].
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T, E: Into<Error>> IntoPyResult<T> for Result<T, E> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e.into()))
    }
}
