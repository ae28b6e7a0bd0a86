//! `dotcompute._native`: the Rust side of the `dotcompute` Python package.
//!
//! One module per concept:
//! - [`waker`]: waking an asyncio loop from Rust without a thread hop;
//! - [`awaitable`]: a Rust future as an asyncio-native awaitable;
//! - [`awaitable_type`]: its Python type, with the `am_send` slot;
//! - [`blocking`]: thread-bound Python kernels (thread and spin tiers);
//! - [`device`]: accelerators, buffers, pools, NVML;
//! - [`executor`]: the Tokio runtime that supervises kernels;
//! - [`kernels`]: built-in Rust and GPU kernels with numpy batches;
//! - [`message`]: Python objects as runtime messages, UUIDs minted in Rust;
//! - [`queue`]: the runtime's queue for Python objects;
//! - [`wire`]: PyDotCompute's MessagePack wire format;
//! - [`actor`]: Python actors as kernels of the Rust runtime;
//! - [`registry`]: the `@ring_kernel` registry;
//! - [`runtime`]: the runtime as seen from Python;
//! - [`telemetry`]: runtime telemetry as Python values;
//! - [`errors`]: Rust errors as `dotcompute.exceptions`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// Configurations are built as `default()` then set field by field, so the
// code keeps compiling if the runtime's config structs become
// `#[non_exhaustive]`; and send errors go through `Error::from`, which the
// runtime's typed send errors (that hand the message back) convert with.
#![allow(clippy::field_reassign_with_default, clippy::useless_conversion)]

pub mod actor;
pub mod awaitable;
pub mod awaitable_type;
pub mod blocking;
pub mod blocks;
pub mod device;
pub mod errors;
pub mod executor;
pub mod kernels;
pub mod message;
pub mod queue;
pub mod registry;
pub mod runtime;
pub mod telemetry;
pub mod waker;
pub mod wire;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", dotcompute::VERSION)?;
    m.add("MAX_QUEUE_CAPACITY", dotcompute::queue::MAX_QUEUE_CAPACITY)?;
    m.add("Awaitable", awaitable_type::type_object(m.py())?)?;
    m.add_class::<actor::PyKernelContext>()?;
    m.add_class::<runtime::PyRuntime>()?;
    m.add_class::<device::PyGpuMonitor>()?;
    m.add_class::<device::PyDeviceArray>()?;
    m.add_class::<device::PyMemoryPool>()?;
    m.add_function(wrap_pyfunction!(device::discover_devices, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::record_dtypes, m)?)?;
    m.add_class::<queue::PyQueue>()?;
    m.add_class::<blocking::PyBlockingKernel>()?;
    m.add_class::<blocking::PyBlockingContext>()?;
    m.add_function(wrap_pyfunction!(message::new_message_id, m)?)?;
    m.add("message_post_init", message::post_init_descriptor(m.py())?)?;
    m.add_function(wrap_pyfunction!(wire::serialize_message, m)?)?;
    m.add_function(wrap_pyfunction!(wire::deserialize_message, m)?)?;
    m.add_function(wrap_pyfunction!(wire::unpack_message, m)?)?;
    m.add_function(wrap_pyfunction!(wire::pack_value, m)?)?;
    m.add_function(wrap_pyfunction!(wire::message_from_fields, m)?)?;
    m.add_function(wrap_pyfunction!(registry::register_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(registry::registered_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(registry::registered_kernel_ids, m)?)?;
    m.add_function(wrap_pyfunction!(registry::unregister_kernel, m)?)?;
    Ok(())
}
