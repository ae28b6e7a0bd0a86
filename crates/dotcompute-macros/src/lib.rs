//! Procedural macros for `dotcompute`. Use them through the `dotcompute`
//! crate, which re-exports them; the generated code names `::dotcompute`.
//!
//! Invariant: every macro either expands to code that type-checks against the
//! library's public API or stops with a `compile_error!` that names the
//! offending attribute or item.

use proc_macro::TokenStream;

mod message;

/// Implements `dotcompute::Message` for a struct.
///
/// The struct needs one field of type `MessageHeader`: the field named
/// `header`, or the field marked `#[message(header)]`. The wire type name
/// defaults to `module_path!()::StructName`; `#[message(name = "...")]` on the
/// struct sets it explicitly.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    message::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

mod ring_kernel;

/// Registers an async function as a ring kernel in the process-wide registry,
/// so `runtime.launch("id")` can start it.
///
/// ```text
/// #[ring_kernel(id = "compute", input = Request, output = Response,
///               queue_size = 1024, backpressure = "reject")]
/// async fn compute(mut ctx: KernelContext<Request, Response>) -> Result<(), Error> { ... }
/// ```
///
/// Options (all optional): `id` (default: the function's name), `input`,
/// `output` (default: inferred from the `KernelContext<In, Out>` argument),
/// `queue_size`, `input_queue_size`, `output_queue_size` (1..=16777216),
/// `backpressure` (`block`, `reject` or `drop_oldest`, as a string or an
/// identifier). Literal values are checked at compile time; a duplicate id is
/// reported when it is launched.
#[proc_macro_attribute]
pub fn ring_kernel(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemFn);
    match ring_kernel::expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        Err(e) => {
            // Keep the function so the error above is the only one reported.
            let mut tokens = e.into_compile_error();
            tokens.extend(quote::ToTokens::into_token_stream(item));
            tokens.into()
        }
    }
}

mod gpu_message;

/// Implements `dotcompute::gpu::GpuMessage` for a `#[repr(C)]` struct of
/// plain data, checking its layout at compile time and generating the
/// matching CUDA C declaration (`GpuMessage::CUDA_DECL`).
///
/// Fields may be `u8 i8 u16 i16 u32 i32 u64 i64 f32 f64`, fixed arrays
/// `[T; N]` of those (nested arrays too), and other `#[derive(GpuMessage)]`
/// structs. The struct needs `#[repr(C)]` (optionally `align(N)`), named
/// fields, no generics and no implicit padding. `#[gpu_message(cuda_name =
/// "...")]` sets the C struct name (default: the Rust name).
#[proc_macro_derive(GpuMessage, attributes(gpu_message))]
pub fn derive_gpu_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    gpu_message::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
