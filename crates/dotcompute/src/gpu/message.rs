//! GPU messages: fixed-size plain-data types whose bytes mean the same thing
//! to the host (Rust) and the device (CUDA C).
//!
//! Implement [`GpuMessage`] with `#[derive(GpuMessage)]` on a `#[repr(C)]`
//! struct. The derive checks the layout at compile time and generates the C
//! declaration, so host and device agree by construction:
//!
//! ```
//! use dotcompute::gpu::GpuMessage;
//!
//! #[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
//! #[repr(C)]
//! struct Reading {
//!     seq: u64,
//!     values: [f32; 3],
//!     sensor: u32,
//! }
//!
//! assert_eq!(Reading::SIZE, 24);
//! assert_eq!(Reading::CUDA_NAME, "Reading");
//! assert!(Reading::CUDA_DECL.starts_with(
//!     "struct Reading {\n    unsigned long long seq;\n    float values[3];\n    unsigned int sensor;\n};\n"
//! ));
//! assert!(Reading::CUDA_DECL.contains("static_assert(sizeof(Reading) == 24"));
//! assert!(Reading::CUDA_DECL.contains("static_assert(offsetof(Reading, sensor) == 20"));
//! ```
//!
//! Messages reach the [`RingKernelRuntime`](crate::RingKernelRuntime) inside an
//! [`Envelope`], which adds the runtime's [`MessageHeader`] on the host side
//! only; the device sees the payload bytes.

use std::num::NonZeroU32;

use crate::message::{Message, MessageHeader};

/// A type that can be copied byte for byte between host and device memory.
///
/// Derive it: `#[derive(Clone, Copy, GpuMessage)]` on a `#[repr(C)]` struct.
///
/// # Safety
///
/// Implementors promise, and the derive proves at compile time, that:
/// - the type is `#[repr(C)]` and its size, alignment and field offsets are
///   those of [`CUDA_DECL`](Self::CUDA_DECL) under CUDA's C++ rules, equal to
///   [`SIZE`](Self::SIZE) and [`ALIGN`](Self::ALIGN);
/// - it has no padding bytes (every byte belongs to a field, so every byte
///   copied to the device is initialised);
/// - every bit pattern is a valid value (fields are integers, floats, arrays
///   of those, or other `GpuMessage`s; no `bool`, `char`, enum, pointer or
///   reference), so bytes written by the device, which the host does not
///   trust, can never be an invalid value;
/// - `ALIGN <= 128`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a GPU message type",
    label = "not a #[derive(GpuMessage)] type",
    note = "GPU message fields must be u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, fixed arrays [T; N] of those, \
            or other #[derive(GpuMessage)] #[repr(C)] structs"
)]
pub unsafe trait GpuMessage: Copy + Send + Sync + 'static {
    /// The C struct name.
    const CUDA_NAME: &'static str;
    /// The C declaration, with `static_assert`s of its size, alignment and
    /// every field offset.
    const CUDA_DECL: &'static str;
    /// `sizeof` in C, equal to `size_of::<Self>()`.
    const SIZE: usize;
    /// `alignof` in C, equal to `align_of::<Self>()`.
    const ALIGN: usize;
    /// The Rust path of the type (`module_path!()::Name`); an [`Envelope`] of
    /// it travels under this name.
    const RUST_NAME: &'static str;

    /// Appends the declarations this type needs (nested message types first,
    /// then itself) to `out`, skipping types already there.
    fn collect_cuda_decls(out: &mut Vec<CudaDecl>);

    /// The all-zero value.
    fn zeroed() -> Self {
        // SAFETY: by the trait's contract every bit pattern, zero included, is
        // a valid value of `Self`.
        unsafe { std::mem::zeroed() }
    }
}

/// One C struct declaration, as collected by [`GpuMessage::collect_cuda_decls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaDecl {
    /// The C struct name.
    pub name: &'static str,
    /// The declaration text.
    pub decl: &'static str,
    /// The Rust type it comes from.
    pub rust_name: &'static str,
}

/// All the C declarations `T` needs, nested types first.
///
/// ```
/// use dotcompute::gpu::{cuda_decls, GpuMessage};
///
/// #[derive(Clone, Copy, GpuMessage)]
/// #[repr(C)]
/// struct Point { x: f32, y: f32 }
///
/// #[derive(Clone, Copy, GpuMessage)]
/// #[repr(C)]
/// struct Segment { a: Point, b: Point }
///
/// let names: Vec<&str> = cuda_decls::<Segment>().iter().map(|d| d.name).collect();
/// assert_eq!(names, ["Point", "Segment"]);
/// ```
pub fn cuda_decls<T: GpuMessage>() -> Vec<CudaDecl> {
    let mut out = Vec::new();
    T::collect_cuda_decls(&mut out);
    out
}

/// The state type of a handler that keeps none: 4 bytes, never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, crate::gpu::GpuMessage)]
#[repr(C)]
#[gpu_message(cuda_name = "NoState")]
pub struct NoState {
    /// Unused; keeps the struct non-empty (an empty struct has size 0 in Rust, 1 in C).
    pub unused: u32,
}

/// A GPU message inside the runtime: the plain-data `payload` the device sees,
/// and the host-side [`MessageHeader`] (id, priority, correlation) the
/// [`RingKernelRuntime`](crate::RingKernelRuntime) needs.
///
/// Replies of a GPU ring kernel carry, as correlation id, the message id of
/// the request they answer, so `call` works as for any kernel.
///
/// ```
/// use dotcompute::gpu::{Envelope, GpuMessage};
/// use dotcompute::Message;
///
/// #[derive(Debug, Clone, Copy, PartialEq, GpuMessage)]
/// #[repr(C)]
/// struct Tick { n: u64 }
///
/// let e = Envelope::new(Tick { n: 1 });
/// assert_eq!(e.payload, Tick { n: 1 });
/// assert!(<Envelope<Tick> as Message>::TYPE_NAME.ends_with("::Tick"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope<T> {
    /// The message the device sees.
    pub payload: T,
    /// The runtime's header (host side only).
    pub header: MessageHeader,
}

impl<T> Envelope<T> {
    /// Wraps `payload` with a fresh header.
    pub fn new(payload: T) -> Self {
        Envelope {
            payload,
            header: MessageHeader::new(),
        }
    }

    /// Wraps `payload` with a fresh header of the given priority.
    pub fn with_priority(payload: T, priority: u8) -> Self {
        Envelope {
            payload,
            header: MessageHeader::with_priority(priority),
        }
    }
}

impl<T: GpuMessage> Message for Envelope<T> {
    const TYPE_NAME: &'static str = T::RUST_NAME;

    fn header(&self) -> &MessageHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut MessageHeader {
        &mut self.header
    }
}

/// What a Rust (emulation) handler returns: `()` for "always succeeds", or
/// `Result<(), NonZeroU32>` to report an error code, as a CUDA C handler does
/// by returning a non-zero `int`. An error is counted by the device
/// (`errors`, `last_error`); the reply slot is still written.
pub trait HandlerStatus {
    /// 0 for success, else the error code.
    fn code(self) -> u32;
}

impl HandlerStatus for () {
    fn code(self) -> u32 {
        0
    }
}

impl HandlerStatus for Result<(), NonZeroU32> {
    fn code(self) -> u32 {
        match self {
            Ok(()) => 0,
            Err(c) => c.get(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, crate::gpu::GpuMessage)]
    #[repr(C)]
    struct Inner {
        a: u16,
        b: u16,
    }

    #[derive(Debug, Clone, Copy, PartialEq, crate::gpu::GpuMessage)]
    #[repr(C, align(16))]
    struct Outer {
        grid: [[f32; 3]; 2],
        inner: [Inner; 2],
        n: u64,
        m: u64,
    }

    #[test]
    fn nested_layout_and_text() {
        assert_eq!(Inner::SIZE, 4);
        assert_eq!(Outer::SIZE, 48);
        assert_eq!(Outer::ALIGN, 16);
        let m = "\"dotcompute: the C layout of Outer differs from the Rust struct Outer\"";
        let expected = format!(
            "struct alignas(16) Outer {{\n    float grid[2][3];\n    Inner inner[2];\n    unsigned long long n;\n    \
             unsigned long long m;\n}};\n\
             static_assert(sizeof(Outer) == 48, {m});\n\
             static_assert(alignof(Outer) == 16, {m});\n\
             #ifdef __CUDACC_RTC__\n\
             static_assert(sizeof(Outer::grid) == 24 && alignof(decltype(Outer::grid)) == 4, {m});\n\
             static_assert(sizeof(Outer::inner) == 8 && alignof(decltype(Outer::inner)) == 2, {m});\n\
             static_assert(sizeof(Outer::n) == 8 && alignof(decltype(Outer::n)) == 8, {m});\n\
             static_assert(sizeof(Outer::m) == 8 && alignof(decltype(Outer::m)) == 8, {m});\n\
             #else\n\
             static_assert(offsetof(Outer, grid) == 0, {m});\n\
             static_assert(offsetof(Outer, inner) == 24, {m});\n\
             static_assert(offsetof(Outer, n) == 32, {m});\n\
             static_assert(offsetof(Outer, m) == 40, {m});\n\
             #endif\n"
        );
        assert_eq!(Outer::CUDA_DECL, expected);
        let decls = cuda_decls::<Outer>();
        assert_eq!(decls.len(), 2);
        assert_eq!(decls[0].name, "Inner");
        assert!(decls[1].rust_name.ends_with("::Outer"));
        assert_eq!(Outer::zeroed().n, 0);
    }

    #[test]
    fn handler_status_codes() {
        assert_eq!(().code(), 0);
        assert_eq!(Ok::<(), NonZeroU32>(()).code(), 0);
        assert_eq!(Err::<(), _>(NonZeroU32::new(7).unwrap()).code(), 7);
    }
}
