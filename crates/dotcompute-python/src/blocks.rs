//! Record kernels on the CPU tiers (`device="cpu"` / `"cpu-spin"`): a numpy
//! batch crosses the queues in blocks, one message per block of records.
//!
//! A GPU ring kernel exchanges one [`Envelope`](dotcompute::gpu::Envelope)
//! per record, because the device reads records one slot at a time. A CPU
//! kernel has no such constraint, so here a `send_batch` array is copied once
//! into blocks of at most [`BLOCK`] records, each block is one queue
//! message, the kernel thread runs the handler over a whole block into one
//! reply block, and `receive_batch` writes the reply blocks straight into one
//! new numpy array. The per-record work is the copy in, the handler and the
//! copy out; queueing, headers and wake-ups are paid once per block.
//!
//! Invariants:
//! - records keep their order: blocks are queued, handled and replied in
//!   order, and records a `receive` / `receive_batch` did not take stay in
//!   this port's holdover, which every later receive empties first;
//! - the queues count, refuse and hand back blocks, so the kernel's
//!   telemetry and queue statistics are exact counts of blocks (a block is
//!   the records of one `send_batch`, at most [`BLOCK`] of them); the queue
//!   capacity is `queue_size` records rounded up to whole blocks;
//! - a reply block answers exactly one request block (its correlation id is
//!   the request's message id) and holds exactly one record per request
//!   record, so `send_and_receive` of one record gets that record's reply.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use dotcompute::gpu::{self, GpuMessage};
use dotcompute::{Error, ExecutionMode, KernelHandle, KernelSpec, KernelState, Message, MessageHeader};

use crate::awaitable::Awaitable;
use crate::errors::to_py;
use crate::kernels::{call_one, record_runs, records_out, send_many, send_one};
use crate::runtime::Port;

/// Most records in one block (one queue message).
pub const BLOCK: usize = 4096;

/// Most blocks the kernel thread takes from its queue at once.
const BLOCKS_PER_RUN: usize = 16;

/// A block of records: one queue message.
pub struct Records<T> {
    header: MessageHeader,
    records: Vec<T>,
}

impl<T: GpuMessage> Records<T> {
    fn new(records: Vec<T>) -> Self {
        Records {
            header: MessageHeader::new(),
            records,
        }
    }
}

impl<T: GpuMessage> Message for Records<T> {
    const TYPE_NAME: &'static str = T::RUST_NAME;

    fn header(&self) -> &MessageHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut MessageHeader {
        &mut self.header
    }
}

/// Queue capacity in blocks for `queue_size` records (rounded up, at least 2).
fn blocks_for(queue_size: usize) -> usize {
    queue_size.div_ceil(BLOCK).max(2)
}

/// A CPU record kernel: the handler over whole blocks on its own thread.
pub fn cpu_block_spec<In, Out, State, H, R>(
    id: &str,
    handler: H,
    spin: bool,
    queue_size: usize,
) -> Result<KernelSpec, Error>
where
    In: GpuMessage,
    Out: GpuMessage,
    State: GpuMessage,
    H: Fn(&In, &mut Out, &mut State) -> R + Send + Sync + 'static,
    R: gpu::HandlerStatus + 'static,
{
    KernelSpec::builder::<Records<In>, Records<Out>>(id)
        .queue_size(blocks_for(queue_size))
        .mode(if spin {
            ExecutionMode::Spin
        } else {
            ExecutionMode::Thread
        })
        .blocking_handler(
            move |mut ctx: dotcompute::BlockingContext<Records<In>, Records<Out>>| -> Result<(), Error> {
                let mut state = State::zeroed();
                let mut blocks = Vec::with_capacity(BLOCKS_PER_RUN);
                loop {
                    blocks.clear();
                    ctx.receive_batch(BLOCKS_PER_RUN, &mut blocks)?;
                    let mut replies = Vec::with_capacity(blocks.len());
                    for block in &blocks {
                        let mut out = vec![Out::zeroed(); block.records.len()];
                        for (input, output) in block.records.iter().zip(out.iter_mut()) {
                            let _ = handler(input, output, &mut state).code();
                        }
                        let mut reply = Records::new(out);
                        reply.header.correlation_id = Some(block.header.message_id);
                        replies.push(reply);
                    }
                    ctx.send_batch(replies)?;
                }
            },
        )
        .build()
}

/// The host side of a CPU record kernel.
pub struct BlockPort<In: GpuMessage, Out: GpuMessage> {
    pub handle: KernelHandle<Records<In>, Records<Out>>,
    pub in_dtype: Py<PyAny>,
    pub out_dtype: Py<PyAny>,
    /// Reply records received but not yet handed to Python, in order.
    pub holdover: Arc<Mutex<VecDeque<Out>>>,
}

/// Up to `max` records: the holdover's first, then those of `blocks`; what
/// is left over goes (in order) to the holdover.
fn take_records<Out: GpuMessage>(holdover: &Mutex<VecDeque<Out>>, blocks: Vec<Records<Out>>, max: usize) -> Vec<Out> {
    let mut held = holdover.lock();
    held.extend(blocks.into_iter().flat_map(|b| b.records));
    let n = held.len().min(max);
    held.drain(..n).collect()
}

impl<In: GpuMessage, Out: GpuMessage> BlockPort<In, Out> {
    fn one_record(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, what: &str) -> PyResult<Records<In>> {
        let mut runs = record_runs::<In>(msg, self.in_dtype.bind(py), BLOCK)?;
        if runs.len() != 1 || runs[0].len() != 1 {
            return Err(PyValueError::new_err(format!(
                "{what} takes one record (use send_batch for arrays)"
            )));
        }
        Ok(Records::new(runs.remove(0)))
    }

    /// Receives up to `max` records (at least one): from the holdover at
    /// once, else waits for the next block and takes what else is ready.
    fn receive_records(&self, py: Python<'_>, max: usize, timeout: Option<Duration>, one: bool) -> PyResult<Awaitable> {
        let dtype = self.out_dtype.clone_ref(py);
        let convert = move |py: Python<'_>, records: Vec<Out>| -> PyResult<Py<PyAny>> {
            let arr = records_out(py, records.iter(), dtype.bind(py))?;
            if one {
                Ok(arr.bind(py).get_item(0)?.unbind())
            } else {
                Ok(arr)
            }
        };
        let ready = {
            let mut held = self.holdover.lock();
            let n = held.len().min(max);
            (n > 0).then(|| held.drain(..n).collect::<Vec<Out>>())
        };
        if let Some(records) = ready {
            return Ok(Awaitable::ready(
                if one {
                    "runtime.receive()"
                } else {
                    "runtime.receive_batch()"
                },
                convert(py, records),
            ));
        }
        let handle = self.handle.clone();
        let holdover = self.holdover.clone();
        let id = handle.id().to_string();
        let fut = async move {
            let mut blocks = Vec::new();
            // Whole blocks fit in `max` records; one more block than that
            // could overshoot, so take that one only when none is ready.
            let blocks_max = (max / BLOCK).max(1);
            handle.receive_batch(blocks_max, &mut blocks).await.map(|_| blocks)
        };
        Ok(Awaitable::new(
            if one {
                "runtime.receive()"
            } else {
                "runtime.receive_batch()"
            },
            fut,
            move |py, r: Result<Vec<Records<Out>>, Error>| {
                let blocks = r.map_err(|e| to_py(py, e))?;
                convert(py, take_records(&holdover, blocks, max))
            },
        )
        .with_queue_timeout(timeout, id.as_str(), "receive"))
    }
}

impl<In: GpuMessage, Out: GpuMessage> Port for BlockPort<In, Out> {
    fn send(&self, py: Python<'_>, msg: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let block = self.one_record(py, msg, "send")?;
        Ok(send_one(&self.handle, block, timeout))
    }

    fn receive(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        self.receive_records(py, 1, timeout, true)
    }

    fn send_and_receive(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<Duration>,
    ) -> PyResult<Awaitable> {
        let block = self.one_record(py, msg, "send_and_receive")?;
        let dtype = self.out_dtype.clone_ref(py);
        Ok(call_one(&self.handle, block, timeout, move |py, reply| {
            let arr = records_out(py, reply.records.iter().take(1), dtype.bind(py))?;
            Ok(arr.bind(py).get_item(0)?.unbind())
        }))
    }

    fn send_batch(&self, py: Python<'_>, msgs: &Bound<'_, PyAny>, timeout: Option<Duration>) -> PyResult<Awaitable> {
        let blocks: Vec<Records<In>> = record_runs::<In>(msgs, self.in_dtype.bind(py), BLOCK)?
            .into_iter()
            .map(Records::new)
            .collect();
        Ok(send_many(&self.handle, blocks, timeout))
    }

    fn receive_batch(&self, py: Python<'_>, max_count: usize, timeout: Option<Duration>) -> PyResult<Awaitable> {
        if max_count == 0 {
            let empty = records_out::<Out>(py, std::iter::empty(), self.out_dtype.bind(py));
            return Ok(Awaitable::ready("runtime.receive_batch()", empty));
        }
        self.receive_records(py, max_count, timeout, false)
    }

    fn state(&self) -> KernelState {
        self.handle.state()
    }
}
