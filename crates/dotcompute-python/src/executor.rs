//! The process-wide Tokio runtime behind the Python package.
//!
//! The Rust runtime supervises each kernel with a task (Python actors) or a
//! thread (thread, spin and GPU tiers); those tasks run here, on a small
//! multi-threaded Tokio runtime started on first use. Python code never runs
//! on these threads except through [`LoopNotifier`](crate::waker::LoopNotifier)
//! callbacks, which always run on the event loop's own thread.
//!
//! Invariants: the runtime is created once and lives until the process
//! exits; a failure to create it is reported as a Python `RuntimeError`,
//! never a panic. A thread that awaits the package's awaitables stays inside
//! the runtime's context once it has entered it ([`stay_entered`]), which is
//! sound because the runtime is never dropped.

use std::cell::Cell;
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

thread_local! {
    /// This thread is inside the runtime's context for good.
    static STAYS_ENTERED: Cell<bool> = const { Cell::new(false) };
}

/// Puts this thread inside the runtime's context for the rest of its life,
/// so that each step of an awaitable need not enter and leave it (about 140
/// instructions a step, four steps per message through a Python actor).
///
/// Only done on a thread with no runtime context set at all: the guard is
/// then the bottom of Tokio's stack of contexts and is never dropped, so no
/// guard taken later can be dropped out of order with it. Elsewhere (a step
/// nested in [`enter`]) it returns `Ok(false)` and the caller enters for
/// the step only.
///
/// # Errors
/// `RuntimeError` if the runtime cannot be started.
pub fn stay_entered() -> PyResult<bool> {
    if STAYS_ENTERED.with(Cell::get) {
        return Ok(true);
    }
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok(false);
    }
    std::mem::forget(rt.enter());
    STAYS_ENTERED.with(|s| s.set(true));
    Ok(true)
}
