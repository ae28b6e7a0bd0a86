//! The process-wide Tokio runtime behind the Python package.
//!
//! The Rust runtime supervises each kernel with a task (Python actors) or a
//! thread (thread, spin and GPU tiers); those tasks run here, on a small
//! multi-threaded Tokio runtime started on first use. Python code never runs
//! on these threads except through [`LoopNotifier`](crate::waker::LoopNotifier)
//! callbacks, which always run on the event loop's own thread.
//!
//! Invariant: the runtime is created once and lives until the process exits;
//! a failure to create it is reported as a Python `RuntimeError`, never a panic.

use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

fn build() -> Result<tokio::runtime::Runtime, String> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("dotcompute-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the dotcompute worker threads: {e}"))
}

/// The shared Tokio runtime.
///
/// # Errors
/// `RuntimeError` if its threads cannot be started.
pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(build)
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(e.clone()))
}

/// Runs `f` inside the runtime's context (so that code which spawns onto
/// "the current Tokio runtime" finds this one).
pub fn enter<R>(f: impl FnOnce() -> R) -> PyResult<R> {
    let rt = runtime()?;
    let _guard = rt.enter();
    Ok(f())
}
