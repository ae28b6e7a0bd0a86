//! The Rust and GPU kernels, launched from Python: GPU ring kernels whose
//! [`GpuMessage`] types are numpy structured dtypes, the streaming anomaly
//! detector and the PageRank kernel. Batches are numpy arrays in and out.
//!
//! Invariants:
//! - a record's numpy dtype is derived from the message type's own C
//!   declaration (field names, C types, offsets and size), so the bytes a
//!   numpy array holds are the bytes the device reads; an array whose dtype
//!   differs is refused, never reinterpreted;
//! - a batch is moved with one copy each way (numpy buffer straight into the
//!   messages, message payloads straight into one new array's memory);
//! - on the GPU and emulated devices each record is one [`Envelope`] (the
//!   device reads one record per ring slot), queued with one lock per run of
//!   a `send_batch`; on the CPU tiers a batch crosses in blocks of records,
//!   one queue message per block ([`crate::blocks`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};

use dotcompute::gpu::handlers::{self, Sample, Scaled, Stats, StatsState};
use dotcompute::gpu::{self, Envelope, GpuKernelOptions, GpuMessage, NoState};
use dotcompute::{Error, KernelHandle, KernelSpec, KernelState, Message, RingKernelRuntime};
use dotcompute_workloads::anomaly::actor::{AnomalyBatch, AnomalyBatchResult};
use dotcompute_workloads::anomaly::DetectorConfig;
use dotcompute_workloads::graph::Graph;
use dotcompute_workloads::pagerank::actor::{PagerankAnswer, PagerankOp, PagerankReply, PagerankRequest};
use dotcompute_workloads::pagerank::PagerankConfig;

use crate::awaitable::Awaitable;
use crate::errors::{exc, to_py};
use crate::runtime::{Port, PyRuntime};

// ---- numpy dtypes of GPU messages --------------------------------------------

fn c_type_format(c: &str) -> Option<&'static str> {
    Some(match c {
        "unsigned long long" => "<u8",
        "long long" => "<i8",
        "unsigned int" => "<u4",
        "int" => "<i4",
        "unsigned short" => "<u2",
        "short" => "<i2",
        "unsigned char" => "u1",
        "signed char" => "i1",
        "char" => "i1",
        "float" => "<f4",
        "double" => "<f8",
        _ => return None,
    })
}

/// One field of a C declaration: name, C type, array dimensions.
fn parse_fields(decl: &str) -> Vec<(String, String, Vec<usize>)> {
    let mut out = Vec::new();
    let Some(start) = decl.find('{') else { return out };
    let Some(end) = decl.find("};") else { return out };
    for line in decl[start + 1..end].lines() {
        let line = line.trim().trim_end_matches(';');
        if line.is_empty() {
            continue;
        }
        let (ty, rest) = match line.rfind(' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => continue,
        };
        let (name, dims) = match rest.find('[') {
            Some(i) => {
                let dims = rest[i..]
                    .split(['[', ']'])
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| s.parse::<usize>().ok())
                    .collect();
                (&rest[..i], dims)
            }
            None => (rest, Vec::new()),
        };
        out.push((name.to_string(), ty.to_string(), dims));
    }
    out
}

fn offset_of(decl: &str, struct_name: &str, field: &str) -> Option<usize> {
    let needle = format!("offsetof({struct_name}, {field}) == ");
    let i = decl.find(&needle)? + needle.len();
    decl[i..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The numpy dtype of `T` (a dict dtype: names, formats, offsets, itemsize).
pub fn dtype_of<T: GpuMessage>(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let decls = gpu::cuda_decls::<T>();
    let np = py.import("numpy")?;
    let mut built: Vec<(&str, Bound<'_, PyAny>)> = Vec::new();
    for d in &decls {
        let names = PyList::empty(py);
        let formats = PyList::empty(py);
        let offsets = PyList::empty(py);
        for (name, ty, dims) in parse_fields(d.decl) {
            let base: Bound<'_, PyAny> = match c_type_format(&ty) {
                Some(f) => np.getattr("dtype")?.call1((f,))?,
                None => built
                    .iter()
                    .find(|(n, _)| *n == ty)
                    .map(|(_, dt)| dt.clone())
                    .ok_or_else(|| PyValueError::new_err(format!("unknown field type {ty} in {}", d.name)))?,
            };
            let fmt = if dims.is_empty() {
                base
            } else {
                np.getattr("dtype")?
                    .call1(((base, pyo3::types::PyTuple::new(py, &dims)?),))?
            };
            let off = offset_of(d.decl, d.name, &name)
                .ok_or_else(|| PyValueError::new_err(format!("no offset for {}.{name}", d.name)))?;
            names.append(name)?;
            formats.append(fmt)?;
            offsets.append(off)?;
        }
        let size = d
            .decl
            .split(&format!("sizeof({}) == ", d.name))
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| PyValueError::new_err(format!("no size for {}", d.name)))?;
        let spec = PyDict::new(py);
        spec.set_item("names", names)?;
        spec.set_item("formats", formats)?;
        spec.set_item("offsets", offsets)?;
        spec.set_item("itemsize", size)?;
        built.push((d.name, np.getattr("dtype")?.call1((spec,))?));
    }
    let dt = built
        .pop()
        .map(|(_, dt)| dt)
        .ok_or_else(|| PyValueError::new_err("no declaration"))?;
    let itemsize: usize = dt.getattr("itemsize")?.extract()?;
    if itemsize != T::SIZE {
        return Err(PyValueError::new_err(format!(
            "dtype of {} is {itemsize} bytes, the type is {}",
            T::CUDA_NAME,
            T::SIZE
        )));
    }
    Ok(dt.unbind())
}

/// The buffer of a numpy array of exactly `T`'s dtype, C-contiguous, and
/// the number of records it holds (a 0-d array is one record).
fn record_buffer<T: GpuMessage>(
    arr: &Bound<'_, PyAny>,
    dtype: &Bound<'_, PyAny>,
) -> PyResult<(pyo3::buffer::PyUntypedBuffer, usize)> {
    let given = arr.getattr("dtype")?;
    if !given.eq(dtype)? {
        return Err(PyTypeError::new_err(format!(
            "expected an array of dtype {dtype}, got {given} (build it with numpy.zeros(n, dtype=kernel.input_dtype))"
        )));
    }
    let arr = if arr.getattr("ndim")?.extract::<usize>()? == 0 {
        arr.call_method1("reshape", (1,))?
    } else {
        arr.clone()
    };
    let buf = pyo3::buffer::PyUntypedBuffer::get(&arr)?;
    if !buf.is_c_contiguous() {
        return Err(PyValueError::new_err("the array must be C-contiguous"));
    }
    let bytes = buf.len_bytes();
    if bytes % T::SIZE != 0 {
        return Err(PyValueError::new_err("the buffer is not a whole number of records"));
    }
    Ok((buf, bytes / T::SIZE))
}

/// Records `range` of a buffer checked by [`record_buffer`], copied into values.
fn record_values<T: GpuMessage>(buf: &pyo3::buffer::PyUntypedBuffer, range: std::ops::Range<usize>) -> Vec<T> {
    let n = range.len();
    let mut out = vec![T::zeroed(); n];
    if n > 0 && range.end * T::SIZE <= buf.len_bytes() {
        // SAFETY: `buf` keeps the exporter's memory alive and unchanged in
        // size while it lives; records `range` lie within its readable bytes
        // (checked: end * SIZE <= len_bytes); `out` holds `n` values of
        // `T::SIZE` bytes each (GpuMessage: size_of == SIZE, no padding),
        // and every bit pattern is a valid `T` (GpuMessage contract).
        unsafe {
            std::ptr::copy_nonoverlapping(
                (buf.buf_ptr() as *const u8).add(range.start * T::SIZE),
                out.as_mut_ptr().cast::<u8>(),
                n * T::SIZE,
            );
        }
    }
    out
}

/// The records of a numpy array (of exactly `T`'s dtype) in runs of at most
/// `block` records, one copy from the array's buffer into each run.
pub(crate) fn record_runs<T: GpuMessage>(
    arr: &Bound<'_, PyAny>,
    dtype: &Bound<'_, PyAny>,
    block: usize,
) -> PyResult<Vec<Vec<T>>> {
    let (buf, n) = record_buffer::<T>(arr, dtype)?;
    let block = block.max(1);
    Ok((0..n)
        .step_by(block)
        .map(|start| record_values::<T>(&buf, start..(start + block).min(n)))
        .collect())
}

/// The records of a numpy array (of exactly `T`'s dtype), each in a fresh
/// envelope: read straight from the array's buffer into the messages, one
/// copy and one allocation per batch.
fn records_in<T: GpuMessage>(arr: &Bound<'_, PyAny>, dtype: &Bound<'_, PyAny>) -> PyResult<Vec<Envelope<T>>> {
    let (buf, n) = record_buffer::<T>(arr, dtype)?;
    let base = buf.buf_ptr() as *const u8;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `buf` keeps the exporter's memory alive and unchanged in
        // size while it lives; record `i` lies within its readable bytes
        // (record_buffer: n * SIZE == len_bytes); the read is
        // unaligned-safe, and every bit pattern is a valid `T` (GpuMessage
        // contract: plain data, size_of == SIZE, no padding).
        let value = unsafe { base.add(i * T::SIZE).cast::<T>().read_unaligned() };
        out.push(Envelope::new(value));
    }
    Ok(out)
}

/// A new numpy array of `dtype` (whose itemsize is `T::SIZE`) holding the
/// payloads of `msgs`, written straight into the array's own memory.
pub(crate) fn records_out<'a, T: GpuMessage>(
    py: Python<'_>,
    msgs: impl ExactSizeIterator<Item = &'a T>,
    dtype: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    static EMPTY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let n = msgs.len();
    let arr = EMPTY.import(py, "numpy", "empty")?.call1((n, dtype))?;
    let buf = pyo3::buffer::PyUntypedBuffer::get(&arr)?;
    if buf.readonly() || !buf.is_c_contiguous() || buf.len_bytes() != n * T::SIZE {
        return Err(PyValueError::new_err(format!(
            "numpy.empty({n}, {dtype}) is not a writable C-contiguous array of {n} records of {} bytes",
            T::SIZE
        )));
    }
    let base = buf.buf_ptr().cast::<u8>();
    for (i, value) in msgs.enumerate().take(n) {
        // SAFETY: the array was just created by this call and is referenced
        // only here; its buffer is writable, C-contiguous and exactly
        // `n * SIZE` bytes long (checked above), so record `i < n` lies
        // within it; the write is unaligned-safe and `T` is plain data.
        unsafe { base.add(i * T::SIZE).cast::<T>().write_unaligned(*value) };
    }
    drop(buf);
    Ok(arr.unbind())
}

// ---- awaitables over a kernel handle -----------------------------------------------

/// `runtime.send()` of one message to `handle`, bounded by `timeout`.
pub(crate) fn send_one<In: Message, Out: Message>(
    handle: &KernelHandle<In, Out>,
    msg: In,
    timeout: Option<Duration>,
) -> Awaitable {
    let h = handle.clone();
    Awaitable::new("runtime.send()", async move { h.send(msg).await }, |py, r| {
        r.map(|()| py.None()).map_err(|e| to_py(py, e))
    })
    .with_queue_timeout(timeout, handle.id(), "send")
}

/// `runtime.send_batch()` of `msgs` to `handle`, bounded by `timeout`.
pub(crate) fn send_many<In: Message, Out: Message>(
    handle: &KernelHandle<In, Out>,
    msgs: Vec<In>,
    timeout: Option<Duration>,
) -> Awaitable {
    let h = handle.clone();
    Awaitable::new(
        "runtime.send_batch()",
        async move { h.send_batch(msgs).await },
        |py, r| r.map(|()| py.None()).map_err(|e| to_py(py, e)),
    )
    .with_queue_timeout(timeout, handle.id(), "send")
}

/// `runtime.receive()` of one reply from `handle`, turned into Python by
/// `convert`, bounded by `timeout`.
pub(crate) fn receive_one<In, Out, C>(
    handle: &KernelHandle<In, Out>,
    timeout: Option<Duration>,
    convert: C,
) -> Awaitable
where
    In: Message,
    Out: Message,
    C: FnOnce(Python<'_>, Out) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let h = handle.clone();
    Awaitable::new("runtime.receive()", async move { h.receive().await }, |py, r| {
        convert(py, r.map_err(|e| to_py(py, e))?)
    })
    .with_queue_timeout(timeout, handle.id(), "receive")
}

/// `runtime.send_and_receive()`: `request` to `handle` and its reply,
/// turned into Python by `convert`, both within `timeout`.
pub(crate) fn call_one<In, Out, C>(
    handle: &KernelHandle<In, Out>,
    request: In,
    timeout: Option<Duration>,
    convert: C,
) -> Awaitable
where
    In: Message,
    Out: Message,
    C: FnOnce(Python<'_>, Out) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let h = handle.clone();
    Awaitable::new(
        "runtime.send_and_receive()",
        async move { h.call(request).await },
        |py, r| convert(py, r.map_err(|e| to_py(py, e))?),
    )
    .with_queue_timeout(timeout, handle.id(), "receive")
}

/// `runtime.receive_batch()` of up to `max_count` replies from `handle`,
/// turned into Python by `convert`, bounded by `timeout`.
pub(crate) fn receive_many<In, Out, C>(
    handle: &KernelHandle<In, Out>,
    max_count: usize,
    timeout: Option<Duration>,
    convert: C,
) -> Awaitable
where
    In: Message,
    Out: Message,
    C: FnOnce(Python<'_>, Vec<Out>) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let h = handle.clone();
    let fut = async move {
        let mut out = Vec::new();
        h.receive_batch(max_count, &mut out).await.map(|_| out)
    };
    Awaitable::new("runtime.receive_batch()", fut, |py, r| {
        convert(py, r.map_err(|e| to_py(py, e))?)
    })
    .with_queue_timeout(timeout, handle.id(), "receive")
}

/// A list of the converted items of a batch.
fn list_of<T>(py: Python<'_>, items: Vec<T>, each: fn(Python<'_>, T) -> PyResult<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    let list = PyList::empty(py);
    for x in items {
        list.append(each(py, x)?)?;
    }
    Ok(list.into_any().unbind())
}

/// The one record of a reply, as a numpy record.
fn one_record_out<T: GpuMessage>(py: Python<'_>, value: &T, dtype: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let arr = records_out(py, std::iter::once(value), dtype)?;
    Ok(arr.bind(py).get_item(0)?.unbind())
}

// ---- record kernels ------------------------------------------------------------

/// The port of a kernel whose messages are GPU records.
struct RecordPort<In: GpuMessage, Out: GpuMessage> {
    handle: KernelHandle<Envelope<In>, Envelope<Out>>,
    in_dtype: Py<PyAny>,
    out_dtype: Py<PyAny>,
}

impl<In: GpuMessage, Out: GpuMessage> Port for RecordPort<In, Out> {
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let mut values = records_in::<In>(msg, self.in_dtype.bind(py))?;
        if values.len() != 1 {
            return Err(PyValueError::new_err(
                "send takes one record (use send_batch for arrays)",
            ));
        }
        Ok(send_one(&self.handle, values.remove(0), timeout))
    }

    fn receive(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let dtype = self.out_dtype.clone_ref(py);
        Ok(receive_one(&self.handle, timeout, move |py, m| {
            one_record_out(py, &m.payload, dtype.bind(py))
        }))
    }

    fn send_and_receive(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Awaitable> {
        let mut values = records_in::<In>(msg, self.in_dtype.bind(py))?;
        if values.len() != 1 {
            return Err(PyValueError::new_err("send_and_receive takes one record"));
        }
        let dtype = self.out_dtype.clone_ref(py);
        Ok(call_one(&self.handle, values.remove(0), timeout, move |py, m| {
            one_record_out(py, &m.payload, dtype.bind(py))
        }))
    }

    fn send_batch(&self, py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let batch = records_in::<In>(msgs, self.in_dtype.bind(py))?;
        Ok(send_many(&self.handle, batch, timeout))
    }

    fn receive_batch(&self, py: Python<'_>, max_count: usize, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let dtype = self.out_dtype.clone_ref(py);
        Ok(receive_many(&self.handle, max_count, timeout, move |py, msgs| {
            records_out(py, msgs.iter().map(|m| &m.payload), dtype.bind(py))
        }))
    }

    fn state(&self) -> KernelState {
        self.handle.state()
    }
}

fn gpu_options(queue_size: usize) -> GpuKernelOptions {
    let mut o = GpuKernelOptions::default();
    o.queue_size = queue_size;
    o
}

fn record_spec(kind: &str, id: &str, device: &str, queue_size: usize) -> Result<KernelSpec, Error> {
    match kind {
        "echo" => {
            device_spec::<Sample, Sample, NoState, _, _>(id, device, queue_size, handlers::echo, handlers::echo_cuda)
        }
        "transform" => device_spec::<Sample, Scaled, NoState, _, _>(
            id,
            device,
            queue_size,
            handlers::transform,
            handlers::transform_cuda,
        ),
        "running_stats" => device_spec::<Sample, Stats, StatsState, _, _>(
            id,
            device,
            queue_size,
            handlers::running_stats,
            handlers::running_stats_cuda,
        ),
        other => Err(Error::InvalidConfiguration {
            parameter: "kind",
            value: other.to_string(),
            reason: "one of 'echo', 'transform', 'running_stats'".into(),
        }),
    }
}

/// One record kernel on `device`: the CPU tiers move blocks of records
/// (`crate::blocks`), the emulated device runs `handler` over its ring, and
/// CUDA runs the kernel `cuda()` gives.
fn device_spec<In, Out, State, H, R>(
    id: &str,
    device: &str,
    queue_size: usize,
    handler: H,
    cuda: fn() -> gpu::source::CudaHandler,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
    H: Fn(&In, &mut Out, &mut State) -> R + Send + Sync + 'static,
    R: gpu::HandlerStatus + 'static,
{
    match device {
        "cpu" => crate::blocks::cpu_block_spec::<In, Out, State, _, _>(id, handler, false, queue_size),
        "cpu-spin" => crate::blocks::cpu_block_spec::<In, Out, State, _, _>(id, handler, true, queue_size),
        "emulated" => gpu::emulated_kernel::<In, Out, State, _, _>(id, handler, gpu_options(queue_size)),
        "cuda" => gpu::gpu_kernel::<In, Out, State>(id, cuda(), State::zeroed(), gpu_options(queue_size)),
        _ => Err(Error::InvalidConfiguration {
            parameter: "device",
            value: device.to_string(),
            reason: "one of 'cpu', 'cpu-spin', 'emulated', 'cuda'".into(),
        }),
    }
}

/// The numpy dtypes `(input, output)` of a record kernel kind.
#[pyfunction]
pub fn record_dtypes(py: Python<'_>, kind: &str) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    match kind {
        "echo" => Ok((dtype_of::<Sample>(py)?, dtype_of::<Sample>(py)?)),
        "transform" => Ok((dtype_of::<Sample>(py)?, dtype_of::<Scaled>(py)?)),
        "running_stats" => Ok((dtype_of::<Sample>(py)?, dtype_of::<Stats>(py)?)),
        other => Err(PyValueError::new_err(format!("unknown record kernel {other:?}"))),
    }
}

fn record_port<In: GpuMessage, Out: GpuMessage>(
    py: Python<'_>,
    rt: &RingKernelRuntime,
    id: &str,
    device: &str,
) -> Result<Arc<dyn Port>, Error> {
    let dtypes = (dtype_of::<In>(py), dtype_of::<Out>(py));
    match dtypes {
        // The CPU tiers move blocks of records (crate::blocks).
        (Ok(i), Ok(o)) if matches!(device, "cpu" | "cpu-spin") => Ok(Arc::new(crate::blocks::BlockPort {
            handle: rt.handle::<crate::blocks::Records<In>, crate::blocks::Records<Out>>(id)?,
            in_dtype: i,
            out_dtype: o,
            holdover: Arc::default(),
        })),
        (Ok(i), Ok(o)) => Ok(Arc::new(RecordPort {
            handle: rt.handle::<Envelope<In>, Envelope<Out>>(id)?,
            in_dtype: i,
            out_dtype: o,
        })),
        _ => Err(Error::InvalidConfiguration {
            parameter: "dtype",
            value: In::CUDA_NAME.into(),
            reason: "cannot build the numpy dtype".into(),
        }),
    }
}

// ---- anomaly detector ------------------------------------------------------------------

/// The detector: 1-D float arrays in (one batch per send, split in
/// `batch_size` batches by `send_batch`), dicts of numpy arrays out.
struct AnomalyPort {
    handle: KernelHandle<AnomalyBatch, AnomalyBatchResult>,
    next_index: AtomicU64,
    next_batch: AtomicU64,
    batch_size: usize,
}

impl AnomalyPort {
    fn batches(&self, values: &Bound<'_, PyAny>) -> PyResult<Vec<AnomalyBatch>> {
        let np = values.py().import("numpy")?;
        let arr = np.call_method1("ascontiguousarray", (values, "float64"))?;
        let buf: pyo3::buffer::PyBuffer<f64> = pyo3::buffer::PyBuffer::get(&arr)?;
        let data = buf.to_vec(values.py())?;
        let mut out = Vec::new();
        for chunk in data.chunks(self.batch_size.max(1)) {
            let first = self.next_index.fetch_add(chunk.len() as u64, Ordering::AcqRel);
            let id = self.next_batch.fetch_add(1, Ordering::AcqRel);
            out.push(AnomalyBatch::new(id, first, chunk.to_vec()));
        }
        Ok(out)
    }
}

fn anomaly_result(py: Python<'_>, r: AnomalyBatchResult) -> PyResult<Py<PyAny>> {
    let np = py.import("numpy")?;
    let d = PyDict::new(py);
    d.set_item("batch_id", r.batch_id)?;
    let idx: Vec<u64> = r.anomalies.iter().map(|a| a.index).collect();
    let vals: Vec<f64> = r.anomalies.iter().map(|a| a.value).collect();
    let scores: Vec<f64> = r.anomalies.iter().map(|a| a.score).collect();
    d.set_item("indices", np.call_method1("array", (idx, "uint64"))?)?;
    d.set_item("values", np.call_method1("array", (vals, "float64"))?)?;
    d.set_item("scores", np.call_method1("array", (scores, "float64"))?)?;
    d.set_item("mean", r.state.mean)?;
    d.set_item("var", r.state.var)?;
    d.set_item("seen", r.state.seen)?;
    d.set_item("error", r.error)?;
    Ok(d.into_any().unbind())
}

impl Port for AnomalyPort {
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let np = py.import("numpy")?;
        let n: usize = np.call_method1("size", (msg,))?.extract()?;
        let batch = {
            let arr = np.call_method1("ascontiguousarray", (msg, "float64"))?;
            let buf: pyo3::buffer::PyBuffer<f64> = pyo3::buffer::PyBuffer::get(&arr)?;
            let data = buf.to_vec(py)?;
            let first = self.next_index.fetch_add(n as u64, Ordering::AcqRel);
            AnomalyBatch::new(self.next_batch.fetch_add(1, Ordering::AcqRel), first, data)
        };
        Ok(send_one(&self.handle, batch, timeout))
    }

    fn receive(&self, _py: Python<'_>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        Ok(receive_one(&self.handle, timeout, anomaly_result))
    }

    fn send_and_receive(
        &self,
        _py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Awaitable> {
        let mut batches = self.batches(msg)?;
        if batches.len() != 1 {
            return Err(PyValueError::new_err(
                "send_and_receive takes one batch (at most batch_size points)",
            ));
        }
        Ok(call_one(&self.handle, batches.remove(0), timeout, anomaly_result))
    }

    fn send_batch(&self, _py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        Ok(send_many(&self.handle, self.batches(msgs)?, timeout))
    }

    fn receive_batch(&self, _py: Python<'_>, max_count: usize, timeout: Option<Duration>) -> PyResult<Awaitable> {
        Ok(receive_many(&self.handle, max_count, timeout, |py, rs| {
            list_of(py, rs, anomaly_result)
        }))
    }

    fn state(&self) -> KernelState {
        self.handle.state()
    }
}

// ---- PageRank ---------------------------------------------------------------------------

/// The PageRank kernel: requests are dicts (`{"op": "set_graph", "src": ..,
/// "dst": .., "nodes": n}`, `{"op": "add_edges", ..}`, `{"op": "recompute"}`,
/// `{"op": "rank", "node": i}`, `{"op": "top_k", "k": k}`, `{"op": "stats"}`),
/// replies are dicts.
struct PagerankPort {
    handle: KernelHandle<PagerankRequest, PagerankReply>,
}

fn u32s(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    let arr = py.import("numpy")?.call_method1("ascontiguousarray", (v, "uint32"))?;
    let buf: pyo3::buffer::PyBuffer<u32> = pyo3::buffer::PyBuffer::get(&arr)?;
    buf.to_vec(py)
}

fn pagerank_op(py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<PagerankOp> {
    let d = msg
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("a PageRank request is a dict with an 'op'"))?;
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(k)?
            .ok_or_else(|| PyValueError::new_err(format!("the request needs {k:?}")))
    };
    let op: String = get("op")?.extract()?;
    Ok(match op.as_str() {
        "set_graph" => {
            let src = u32s(py, &get("src")?)?;
            let dst = u32s(py, &get("dst")?)?;
            let nodes: usize = match d.get_item("nodes")? {
                Some(n) => n.extract()?,
                None => src.iter().chain(&dst).max().map_or(0, |m| *m as usize + 1),
            };
            let graph = Graph::from_edges(nodes, &src, &dst).map_err(|e| PyValueError::new_err(e.to_string()))?;
            PagerankOp::SetGraph(graph)
        }
        "add_edges" => PagerankOp::AddEdges {
            src: u32s(py, &get("src")?)?,
            dst: u32s(py, &get("dst")?)?,
        },
        "recompute" => PagerankOp::Recompute {
            warm_start: d
                .get_item("warm_start")?
                .map(|w| w.is_truthy())
                .transpose()?
                .unwrap_or(false),
        },
        "rank" => PagerankOp::Rank {
            node: get("node")?.extract()?,
        },
        "top_k" => PagerankOp::TopK {
            k: get("k")?.extract()?,
        },
        "stats" => PagerankOp::Stats,
        "configure" => {
            let mut c = PagerankConfig::default();
            if let Some(v) = d.get_item("damping")? {
                c.damping = v.extract()?;
            }
            if let Some(v) = d.get_item("tolerance")? {
                c.tolerance = v.extract()?;
            }
            if let Some(v) = d.get_item("max_iterations")? {
                c.max_iterations = v.extract()?;
            }
            PagerankOp::Configure(c)
        }
        other => return Err(PyValueError::new_err(format!("unknown PageRank op {other:?}"))),
    })
}

fn pagerank_answer(py: Python<'_>, r: PagerankReply) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    match r.answer {
        PagerankAnswer::GraphSet { nodes, edges } | PagerankAnswer::EdgesAdded { nodes, edges } => {
            d.set_item("nodes", nodes)?;
            d.set_item("edges", edges)?;
        }
        PagerankAnswer::Configured => d.set_item("configured", true)?,
        PagerankAnswer::Recomputed(s) => {
            d.set_item("iterations", s.iterations)?;
            d.set_item("converged", s.converged)?;
            d.set_item("residual", s.residual)?;
            d.set_item("seconds", s.seconds)?;
        }
        PagerankAnswer::Rank { node, rank } => {
            d.set_item("node", node)?;
            d.set_item("rank", rank)?;
        }
        PagerankAnswer::TopK(list) => {
            let l = PyList::empty(py);
            for n in list {
                l.append((n.node, n.rank))?;
            }
            d.set_item("top", l)?;
        }
        PagerankAnswer::Stats(s) => {
            let v = serde_json::to_value(&s).map_err(|e| PyValueError::new_err(e.to_string()))?;
            return Ok(crate::telemetry::json_to_py(py, &v)?.unbind());
        }
        PagerankAnswer::Error(e) => return Err(exc(py, "KernelError", (e,))),
        #[allow(unreachable_patterns)]
        _ => d.set_item("answer", "unknown")?,
    }
    Ok(d.into_any().unbind())
}

impl Port for PagerankPort {
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let req = PagerankRequest::new(pagerank_op(py, msg)?);
        Ok(send_one(&self.handle, req, timeout))
    }

    fn receive(&self, _py: Python<'_>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        Ok(receive_one(&self.handle, timeout, pagerank_answer))
    }

    fn send_and_receive(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Awaitable> {
        let req = PagerankRequest::new(pagerank_op(py, msg)?);
        Ok(call_one(&self.handle, req, timeout, pagerank_answer))
    }

    fn send_batch(&self, py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let mut reqs = Vec::new();
        for m in msgs.try_iter()? {
            reqs.push(PagerankRequest::new(pagerank_op(py, &m?)?));
        }
        Ok(send_many(&self.handle, reqs, timeout))
    }

    fn receive_batch(&self, _py: Python<'_>, max_count: usize, timeout: Option<Duration>) -> PyResult<Awaitable> {
        Ok(receive_many(&self.handle, max_count, timeout, |py, rs| {
            list_of(py, rs, pagerank_answer)
        }))
    }

    fn state(&self) -> KernelState {
        self.handle.state()
    }
}

/// What `Runtime._launch_builtin` was asked for.
pub struct BuiltinArgs<'a> {
    pub kind: &'a str,
    pub device: &'a str,
    pub queue_size: usize,
    pub tier: &'a str,
    pub window: u32,
    pub threshold: f64,
    pub batch_size: usize,
}

impl PyRuntime {
    /// Launches a built-in Rust kernel (`dotcompute.kernels` builds the arguments).
    pub fn launch_builtin(
        &self,
        py: Python<'_>,
        kernel_id: String,
        args: BuiltinArgs<'_>,
        info: Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let BuiltinArgs {
            kind,
            device,
            queue_size,
            tier,
            window,
            threshold,
            batch_size,
        } = args;
        let id = kernel_id.clone();
        match kind {
            "echo" | "transform" | "running_stats" => {
                let spec = py
                    .detach(|| record_spec(kind, &kernel_id, device, queue_size))
                    .map_err(|e| to_py(py, e))?;
                let kind = kind.to_string();
                let device = device.to_string();
                self.install(
                    py,
                    spec,
                    move |rt| {
                        Python::attach(|py| match kind.as_str() {
                            "echo" => record_port::<Sample, Sample>(py, rt, &id, &device),
                            "transform" => record_port::<Sample, Scaled>(py, rt, &id, &device),
                            _ => record_port::<Sample, Stats>(py, rt, &id, &device),
                        })
                        .map(|p| (p, None))
                    },
                    info,
                )
            }
            "anomaly" => {
                let mut config = DetectorConfig::default();
                config.window = window;
                config.threshold = threshold;
                use dotcompute_workloads::anomaly::actor as a;
                let spec = match tier {
                    "async" => a::async_kernel_spec(&kernel_id, config),
                    "thread" => a::thread_kernel_spec(&kernel_id, config),
                    "spin" => a::spin_kernel_spec(&kernel_id, config),
                    other => {
                        return Err(exc(
                            py,
                            "InvalidConfigurationError",
                            (
                                "tier",
                                other.to_string(),
                                "one of 'async', 'thread', 'spin'".to_string(),
                            ),
                        ))
                    }
                }
                .map_err(|e| {
                    exc(
                        py,
                        "InvalidConfigurationError",
                        ("anomaly", kernel_id.clone(), e.to_string()),
                    )
                })?;
                self.install(
                    py,
                    spec,
                    move |rt| {
                        let handle = rt.handle::<AnomalyBatch, AnomalyBatchResult>(&id)?;
                        let port: Arc<dyn Port> = Arc::new(AnomalyPort {
                            handle,
                            next_index: AtomicU64::new(0),
                            next_batch: AtomicU64::new(0),
                            batch_size,
                        });
                        Ok((port, None))
                    },
                    info,
                )
            }
            "pagerank" => {
                let spec = dotcompute_workloads::pagerank::actor::kernel_spec(&kernel_id, PagerankConfig::default())
                    .map_err(|e| to_py(py, e))?;
                self.install(
                    py,
                    spec,
                    move |rt| {
                        let handle = rt.handle::<PagerankRequest, PagerankReply>(&id)?;
                        let port: Arc<dyn Port> = Arc::new(PagerankPort { handle });
                        Ok((port, None))
                    },
                    info,
                )
            }
            other => Err(PyValueError::new_err(format!("unknown built-in kernel {other:?}"))),
        }
    }
}
