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

/// The devices discovery finds, as dicts, and what it found about CUDA.
#[pyfunction]
pub fn discover_devices<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
    let acc = py.detach(dotcompute::device::Accelerator::discover);
    let list = PyList::empty(py);
    for d in acc.devices() {
        let v = serde_json::to_value(d).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let dict = json_to_py(py, &v)?;
        dict.set_item("compute_capability_str", d.compute_capability_str())?;
        list.append(dict)?;
    }
    let status = serde_json::to_value(acc.cuda_status())
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    Ok((list, json_to_py(py, &status)?))
}

enum Memory {
    Cpu(dotcompute::device::DeviceBuffer<u8, dotcompute::device::CpuBackend>),
    Cuda(dotcompute::device::DeviceBuffer<u8, dotcompute::device::CudaBackend>),
}

fn device_err(py: Python<'_>, e: dotcompute::device::DeviceError) -> PyErr {
    use dotcompute::device::DeviceError;
    match &e {
        #[allow(unreachable_patterns)]
        DeviceError::Unavailable { .. } => crate::errors::exc(py, "CUDAError", (e.to_string(),)),
        _ => crate::errors::exc(py, "BackendError", (e.to_string(),)),
    }
}

fn cpu_backend() -> Arc<dotcompute::device::CpuBackend> {
    static CPU: OnceLock<Arc<dotcompute::device::CpuBackend>> = OnceLock::new();
    CPU.get_or_init(|| Arc::new(dotcompute::device::CpuBackend::new()))
        .clone()
}

/// Device memory of the Rust device layer (the CPU backend's separate
/// memory, or a CUDA device's), with host copies in and out of Python buffers.
///
/// Invariant: a copy moves exactly `nbytes` between a C-contiguous Python
/// buffer of that size and the device, or raises; it never truncates.
#[pyclass(module = "dotcompute._native", name = "DeviceArray")]
pub struct PyDeviceArray {
    mem: parking_lot::Mutex<Option<Memory>>,
    nbytes: usize,
    device: String,
    copies_to_device: std::sync::atomic::AtomicU64,
    copies_to_host: std::sync::atomic::AtomicU64,
}

fn contiguous<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    nbytes: usize,
    writable: bool,
) -> PyResult<pyo3::buffer::PyUntypedBuffer> {
    let buf = pyo3::buffer::PyUntypedBuffer::get(obj)?;
    if !buf.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "the array must be C-contiguous",
        ));
    }
    if writable && buf.readonly() {
        return Err(pyo3::exceptions::PyValueError::new_err("the array is read-only"));
    }
    if buf.len_bytes() != nbytes {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "size mismatch: the device array holds {nbytes} bytes, the host array {}",
            buf.len_bytes()
        )));
    }
    let _ = py;
    Ok(buf)
}

#[pymethods]
impl PyDeviceArray {
    /// `nbytes` of device memory on `device` (`"cpu"` or `"cuda"`), zeroed.
    #[new]
    #[pyo3(signature = (nbytes, device = "cpu", ordinal = 0))]
    fn new(py: Python<'_>, nbytes: usize, device: &str, ordinal: usize) -> PyResult<Self> {
        let mem = match device {
            "cpu" => Memory::Cpu(
                dotcompute::device::DeviceBuffer::zeroed(&cpu_backend(), nbytes).map_err(|e| device_err(py, e))?,
            ),
            "cuda" => {
                let backend = py
                    .detach(move || dotcompute::device::Accelerator::discover().cuda_backend(ordinal))
                    .map_err(|e| device_err(py, e))?;
                Memory::Cuda(dotcompute::device::DeviceBuffer::zeroed(&backend, nbytes).map_err(|e| device_err(py, e))?)
            }
            other => {
                return Err(crate::errors::exc(
                    py,
                    "BackendNotAvailableError",
                    (other.to_string(), "unknown device (use 'cpu' or 'cuda')".to_string()),
                ))
            }
        };
        Ok(PyDeviceArray {
            mem: parking_lot::Mutex::new(Some(mem)),
            nbytes,
            device: device.to_string(),
            copies_to_device: Default::default(),
            copies_to_host: Default::default(),
        })
    }

    /// Copies a host buffer (exactly `nbytes`, C-contiguous) to the device.
    fn write(&self, py: Python<'_>, host: &Bound<'_, PyAny>) -> PyResult<()> {
        let buf = contiguous(py, host, self.nbytes, false)?;
        // SAFETY: the buffer view is held (`buf`) for the whole copy; it
        // points at `len_bytes()` readable bytes of a C-contiguous buffer.
        let src = unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, buf.len_bytes()) };
        let mut g = self.mem.lock();
        let r = match g.as_mut() {
            Some(Memory::Cpu(b)) => b.write(src),
            Some(Memory::Cuda(b)) => b.write(src),
            None => return Err(crate::errors::exc(py, "BufferNotAllocatedError", ())),
        };
        r.map_err(|e| device_err(py, e))?;
        self.copies_to_device.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Copies the device memory into a writable host buffer of `nbytes`.
    fn read_into(&self, py: Python<'_>, host: &Bound<'_, PyAny>) -> PyResult<()> {
        let buf = contiguous(py, host, self.nbytes, true)?;
        // SAFETY: as in `write`, and the view is writable (checked).
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.buf_ptr() as *mut u8, buf.len_bytes()) };
        let g = self.mem.lock();
        let r = match g.as_ref() {
            Some(Memory::Cpu(b)) => b.read(dst),
            Some(Memory::Cuda(b)) => b.read(dst),
            None => return Err(crate::errors::exc(py, "BufferNotAllocatedError", ())),
        };
        r.map_err(|e| device_err(py, e))?;
        self.copies_to_host.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Releases the device memory.
    fn free(&self) {
        drop(self.mem.lock().take());
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.nbytes
    }

    #[getter]
    fn device(&self) -> String {
        self.device.clone()
    }

    #[getter]
    fn is_allocated(&self) -> bool {
        self.mem.lock().is_some()
    }

    /// `(host-to-device copies, device-to-host copies)` made so far.
    #[getter]
    fn transfers(&self) -> (u64, u64) {
        (
            self.copies_to_device.load(std::sync::atomic::Ordering::Relaxed),
            self.copies_to_host.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// A caching allocator of the CPU backend's device memory (statistics as the Rust pool keeps them).
#[pyclass(frozen, module = "dotcompute._native", name = "MemoryPool")]
pub struct PyMemoryPool {
    pool: dotcompute::device::MemoryPool<dotcompute::device::DeviceAllocator<dotcompute::device::CpuBackend>>,
    held: parking_lot::Mutex<
        Vec<dotcompute::device::PooledBlock<dotcompute::device::DeviceAllocator<dotcompute::device::CpuBackend>>>,
    >,
}

#[pymethods]
impl PyMemoryPool {
    #[new]
    #[pyo3(signature = (initial_bytes = 0, max_bytes = None))]
    fn new(py: Python<'_>, initial_bytes: usize, max_bytes: Option<usize>) -> PyResult<Self> {
        let mut config = dotcompute::device::PoolConfig::default();
        config.initial_bytes = initial_bytes;
        if let Some(m) = max_bytes {
            config.max_bytes = m;
        }
        let pool = dotcompute::device::MemoryPool::device(&cpu_backend(), config).map_err(|e| device_err(py, e))?;
        Ok(PyMemoryPool {
            pool,
            held: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// Takes a block of at least `nbytes` (reused from the cache when one fits); returns its size class.
    fn allocate(&self, py: Python<'_>, nbytes: usize) -> PyResult<usize> {
        let block = self.pool.allocate(nbytes).map_err(|e| device_err(py, e))?;
        let size = block.size();
        self.held.lock().push(block);
        Ok(size)
    }

    /// Returns every block taken with `allocate` to the cache.
    fn release_all(&self) -> usize {
        let blocks = std::mem::take(&mut *self.held.lock());
        let n = blocks.len();
        drop(blocks);
        n
    }

    /// Frees the cached blocks; returns how many.
    fn free_all(&self) -> usize {
        self.pool.free_all()
    }

    /// The pool's statistics.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let v = serde_json::to_value(self.pool.stats())
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        Ok(json_to_py(py, &v)?.cast_into::<PyDict>()?)
    }
}
