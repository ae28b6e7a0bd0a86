//! Runtime telemetry and reports as Python dicts.
//!
//! Invariant: every figure handed to Python is one the Rust runtime
//! recorded (counters, histograms, queue statistics); nothing is computed or
//! defaulted here except the unit conversions, so a kernel that never
//! reports anything still shows what it did.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;

use dotcompute::{KernelTelemetry, RuntimeSummary, TerminateReport};

use crate::errors::state_name;

/// A serde value as a Python object (maps to dicts, sequences to lists).
pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for x in a {
                list.append(json_to_py(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn to_dict<'py, T: Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyDict>> {
    let value = serde_json::to_value(v)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("dotcompute: telemetry encoding: {e}")))?;
    json_to_py(py, &value)?
        .cast_into::<PyDict>()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("dotcompute: telemetry is not a map"))
}

/// One kernel's telemetry (the runtime's field names; `state` as PyDotCompute names it).
pub fn telemetry_dict<'py>(py: Python<'py>, t: &KernelTelemetry) -> PyResult<Bound<'py, PyDict>> {
    let d = to_dict(py, t)?;
    d.set_item("state", state_name(t.state))?;
    Ok(d)
}

/// Every kernel's telemetry, with totals.
pub fn summary_dict<'py>(py: Python<'py>, s: &RuntimeSummary) -> PyResult<Bound<'py, PyDict>> {
    let d = to_dict(py, s)?;
    let kernels = PyList::empty(py);
    for k in &s.kernels {
        kernels.append(telemetry_dict(py, k)?)?;
    }
    d.set_item("kernels", kernels)?;
    Ok(d)
}

/// What a terminate did.
pub fn terminate_report<'py>(py: Python<'py>, r: &TerminateReport) -> PyResult<Bound<'py, PyDict>> {
    let d = to_dict(py, r)?;
    d.set_item("previous_state", state_name(r.previous_state))?;
    Ok(d)
}
