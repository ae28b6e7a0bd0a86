//! GPU ring kernels: persistent kernels that poll lock-free rings in memory
//! shared with the host, and their CPU emulation.
//!
//! - [`message`]: [`GpuMessage`] (`#[derive(GpuMessage)]`): fixed-size plain
//!   data with a compile-time-checked C layout and a generated CUDA C
//!   declaration; [`Envelope`] carries one through the runtime.

#[doc(hidden)]
#[path = "derive_support.rs"]
pub mod __layout;

pub mod message;

pub use message::{cuda_decls, CudaDecl, Envelope, GpuMessage, HandlerStatus, NoState};

/// `#[derive(GpuMessage)]`.
pub use dotcompute_macros::GpuMessage;
