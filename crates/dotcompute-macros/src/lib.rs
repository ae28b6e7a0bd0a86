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
