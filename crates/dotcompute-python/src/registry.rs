//! The process-wide registry of Python ring kernels (`@ring_kernel`).
//!
//! Invariant: a kernel id maps to at most one definition. Registering an id
//! again from the same place (the same module-qualified function in the same
//! file: a re-run cell, a reloaded module) replaces the entry; registering it
//! from anywhere else is refused with `KernelAlreadyExistsError` naming both
//! places, unless the caller asks to replace it. PyDotCompute overwrote
//! silently, so the kernel that ran depended on import order.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use dotcompute::Error;

use crate::errors::{exc, to_py};

struct Registered {
    func: Py<PyAny>,
    meta: Py<PyDict>,
    location: String,
}

static REGISTRY: Mutex<BTreeMap<String, Registered>> = Mutex::new(BTreeMap::new());

/// Registers `func` under `kernel_id` (see the module docs).
#[pyfunction]
#[pyo3(signature = (kernel_id, func, meta, location, replace = false))]
pub fn register_kernel(
    py: Python<'_>,
    kernel_id: String,
    func: Py<PyAny>,
    meta: Py<PyDict>,
    location: String,
    replace: bool,
) -> PyResult<()> {
    // The lock is never held while Python runs (that could deadlock with the GIL).
    let conflict = {
        let mut reg = REGISTRY.lock();
        match reg.get(&kernel_id) {
            Some(old) if !replace && old.location != location => Some(old.location.clone()),
            _ => {
                reg.insert(
                    kernel_id.clone(),
                    Registered {
                        func,
                        meta,
                        location: location.clone(),
                    },
                );
                None
            }
        }
    };
    match conflict {
        Some(old) => {
            let detail = format!("defined at {old} and again at {location}");
            Err(exc(py, "KernelAlreadyExistsError", (kernel_id, detail)))
        }
        None => Ok(()),
    }
}

/// `(func, meta)` registered under `kernel_id`, or `KernelNotFoundError`
/// listing the registered ids.
#[pyfunction]
pub fn registered_kernel<'py>(py: Python<'py>, kernel_id: &str) -> PyResult<Bound<'py, PyTuple>> {
    let found = {
        let reg = REGISTRY.lock();
        match reg.get(kernel_id) {
            Some(r) => Ok((r.func.clone_ref(py), r.meta.clone_ref(py))),
            None => Err(reg.keys().cloned().collect::<Vec<_>>()),
        }
    };
    match found {
        Ok((func, meta)) => PyTuple::new(py, [func.into_any(), meta.into_any()]),
        Err(known) => Err(to_py(
            py,
            Error::KernelNotFound {
                id: kernel_id.to_string(),
                known,
            },
        )),
    }
}

/// The registered ids, sorted.
#[pyfunction]
pub fn registered_kernel_ids() -> Vec<String> {
    REGISTRY.lock().keys().cloned().collect()
}

/// Removes `kernel_id` from the registry; whether it was there.
#[pyfunction]
pub fn unregister_kernel(kernel_id: &str) -> bool {
    REGISTRY.lock().remove(kernel_id).is_some()
}
