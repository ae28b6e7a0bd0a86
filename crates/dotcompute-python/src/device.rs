//! The device layer as seen from Python: NVML monitoring.
//!
//! Invariant: without NVML (no driver, no GPU) every call answers with an
//! "unavailable" state and the reason; nothing here raises for a missing GPU.

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use dotcompute::device::GpuMonitor;

use crate::telemetry::json_to_py;

fn shared_monitor() -> Arc<GpuMonitor> {
    static MONITOR: OnceLock<Arc<GpuMonitor>> = OnceLock::new();
    MONITOR.get_or_init(|| Arc::new(GpuMonitor::new())).clone()
}

/// NVML readings (one monitor per process, shared).
#[pyclass(frozen, module = "dotcompute._native", name = "GpuMonitor")]
pub struct PyGpuMonitor {
    inner: Arc<GpuMonitor>,
}

#[pymethods]
impl PyGpuMonitor {
    #[new]
    fn new(py: Python<'_>) -> Self {
        PyGpuMonitor {
            inner: py.detach(shared_monitor),
        }
    }

    /// Whether NVML is loaded.
    #[getter]
    fn is_available(&self) -> bool {
        self.inner.is_available()
    }

    /// Why NVML is unavailable (None when it is available).
    #[getter]
    fn unavailable_reason(&self) -> Option<String> {
        self.inner.unavailable_reason().map(str::to_string)
    }

    /// GPUs NVML sees (0 without NVML).
    #[getter]
    fn device_count(&self) -> u32 {
        self.inner.device_count()
    }

    /// The driver version, or None.
    #[getter]
    fn driver_version(&self) -> Option<String> {
        self.inner.driver_version().ok()
    }

    /// One reading of device `index` as a dict, or None if it cannot be read.
    fn sample<'py>(&self, py: Python<'py>, index: u32) -> PyResult<Option<Bound<'py, PyDict>>> {
        let inner = self.inner.clone();
        let Ok(s) = py.detach(move || inner.sample(index)) else {
            return Ok(None);
        };
        let v = serde_json::to_value(&s).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        Ok(json_to_py(py, &v)?.cast_into::<PyDict>().ok())
    }

    /// Readings of every device.
    fn sample_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for i in 0..self.inner.device_count() {
            if let Some(d) = self.sample(py, i)? {
                list.append(d)?;
            }
        }
        Ok(list)
    }
}
