//! `#[derive(GpuMessage)]`: checks that a `#[repr(C)]` struct is plain old
//! data with a layout CUDA C reproduces exactly, and generates the matching C
//! declaration.
//!
//! Everything about the layout is decided in constant evaluation, not here:
//! the macro only classifies field types syntactically and emits
//! - a C layout computed by `dotcompute::gpu::__layout::CLayout::compute`
//!   with CUDA's sizes and alignments (so `u64` is 8-aligned even where Rust
//!   says 4, as on 32-bit x86),
//! - the C text with `static_assert`s of that layout's numbers, and
//! - Rust `assert!`s in a `const _` block that the Rust layout (`size_of`,
//!   `align_of`, `offset_of!`) equals it and has no implicit padding.
//!
//! A disagreement therefore stops the Rust build, and a C compiler whose
//! layout differs stops the CUDA build.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, LitInt, LitStr, Type};

/// (Rust name, C spelling, size = alignment in bytes) of the supported scalars.
const SCALARS: [(&str, &str, usize); 10] = [
    ("u8", "unsigned char", 1),
    ("i8", "signed char", 1),
    ("u16", "unsigned short", 2),
    ("i16", "short", 2),
    ("u32", "unsigned int", 4),
    ("i32", "int", 4),
    ("u64", "unsigned long long", 8),
    ("i64", "long long", 8),
    ("f32", "float", 4),
    ("f64", "double", 8),
];

/// C++ keywords and CUDA names a field or struct may not take, since the
/// generated declaration would not compile.
const C_RESERVED: &[&str] = &[
    "alignas",
    "alignof",
    "and",
    "asm",
    "auto",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "constexpr",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "nullptr",
    "operator",
    "or",
    "private",
    "protected",
    "public",
    "register",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "template",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
    "xor",
    "threadIdx",
    "blockIdx",
    "blockDim",
    "gridDim",
    "warpSize",
];

const FIELD_HINT: &str = "supported field types: u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, \
     fixed arrays [T; N] of those, and other #[derive(GpuMessage)] structs";

/// A field type, classified.
enum Kind {
    Scalar { c: &'static str, size: usize },
    Nested(Type),
    Array { elem: Box<Kind>, len: Expr },
}

impl Kind {
    /// `(size, align)` as a constant expression.
    fn layout(&self) -> TokenStream {
        match self {
            Kind::Scalar { size, .. } => quote!((#size, #size)),
            Kind::Nested(ty) => quote_spanned! {ty.span()=>
                (<#ty as ::dotcompute::gpu::GpuMessage>::SIZE, <#ty as ::dotcompute::gpu::GpuMessage>::ALIGN)
            },
            Kind::Array { elem, len } => {
                let elem = elem.layout();
                quote!(__dc::array(#elem, #len))
            }
        }
    }

    /// Pieces spelling the element type's C name.
    fn base_name(&self) -> TokenStream {
        match self {
            Kind::Scalar { c, .. } => quote!(__dc::Piece::Str(#c)),
            Kind::Nested(ty) => quote!(__dc::Piece::Str(<#ty as ::dotcompute::gpu::GpuMessage>::CUDA_NAME)),
            Kind::Array { elem, .. } => elem.base_name(),
        }
    }

    /// Pieces spelling the array suffix (`[3][4]`), outermost first.
    fn dims(&self, out: &mut Vec<TokenStream>) {
        if let Kind::Array { elem, len } = self {
            out.push(quote!(__dc::Piece::Str("[")));
            out.push(quote!(__dc::Piece::Num(#len)));
            out.push(quote!(__dc::Piece::Str("]")));
            elem.dims(out);
        }
    }

    /// Nested message types, for collecting their declarations first.
    fn nested<'a>(&'a self, out: &mut Vec<&'a Type>) {
        match self {
            Kind::Scalar { .. } => {}
            Kind::Nested(ty) => out.push(ty),
            Kind::Array { elem, .. } => elem.nested(out),
        }
    }
}

fn classify(ty: &Type) -> syn::Result<Kind> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p
                .path
                .segments
                .last()
                .ok_or_else(|| syn::Error::new_spanned(ty, "empty type path"))?;
            let name = last.ident.to_string();
            if p.path.segments.len() == 1 {
                if let Some(&(_, c, size)) = SCALARS.iter().find(|(r, _, _)| *r == name) {
                    return Ok(Kind::Scalar { c, size });
                }
                let reason = match name.as_str() {
                    "bool" => Some(
                        "`bool` is not a GPU message field type: only 0 and 1 are valid bit patterns, so bytes written \
                         by the device could be undefined behaviour in Rust; use u8 (0 or 1)",
                    ),
                    "char" => Some("`char` is not a GPU message field type: use u32 (a Unicode scalar value) or u8"),
                    "usize" | "isize" => Some(
                        "`usize`/`isize` are not GPU message field types: their width depends on the host; use u64/i64 \
                         (or u32/i32)",
                    ),
                    "u128" | "i128" => Some("128-bit integers have no CUDA C equivalent: use two u64 fields"),
                    "String" | "str" => Some(
                        "`String` owns heap memory the device cannot see: a GPU message is fixed-size plain data; use \
                         a fixed array such as [u8; 32]",
                    ),
                    _ => None,
                };
                if let Some(reason) = reason {
                    return Err(syn::Error::new_spanned(ty, format!("{reason} ({FIELD_HINT})")));
                }
            }
            if !matches!(last.arguments, syn::PathArguments::None) {
                return Err(syn::Error::new_spanned(
                    ty,
                    format!(
                        "`{name}<..>` is not a GPU message field type: generic and heap-owning types (Vec, Box, Option, \
                         ...) cannot be copied to the device as plain bytes ({FIELD_HINT})"
                    ),
                ));
            }
            Ok(Kind::Nested(ty.clone()))
        }
        Type::Array(a) => {
            let elem = classify(&a.elem)?;
            Ok(Kind::Array {
                elem: Box::new(elem),
                len: a.len.clone(),
            })
        }
        Type::Paren(p) => classify(&p.elem),
        Type::Group(g) => classify(&g.elem),
        Type::Ptr(_) | Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            format!(
                "pointers and references are not GPU message field types: a host address means nothing on the device \
                 ({FIELD_HINT})"
            ),
        )),
        Type::Slice(_) => Err(syn::Error::new_spanned(
            ty,
            format!("slices have no fixed size: use a fixed array [T; N] ({FIELD_HINT})"),
        )),
        Type::Tuple(t) if t.elems.is_empty() => Err(syn::Error::new_spanned(
            ty,
            format!("`()` has size 0 in Rust but not in C ({FIELD_HINT})"),
        )),
        _ => Err(syn::Error::new_spanned(
            ty,
            format!("this type is not a GPU message field type ({FIELD_HINT})"),
        )),
    }
}

/// What `#[repr(..)]` says: whether `C` is there, and an `align(N)`.
fn parse_repr(input: &DeriveInput) -> syn::Result<(bool, Option<LitInt>)> {
    let mut c = false;
    let mut align = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") {
                c = true;
                Ok(())
            } else if meta.path.is_ident("align") {
                let content;
                syn::parenthesized!(content in meta.input);
                align = Some(content.parse::<LitInt>()?);
                Ok(())
            } else if meta.path.is_ident("packed") {
                if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let _: TokenStream = content.parse()?;
                }
                Err(meta.error(
                    "#[repr(packed)] is not supported by #[derive(GpuMessage)]: misaligned fields are slow or invalid \
                     on the device; order the fields by size or add explicit padding fields",
                ))
            } else {
                Err(meta.error(
                    "#[derive(GpuMessage)] needs plain #[repr(C)] (optionally with align(N)); other representations \
                     have no CUDA C equivalent",
                ))
            }
        })?;
    }
    Ok((c, align))
}

/// The C name given with `#[gpu_message(cuda_name = "...")]`, if any.
fn parse_options(input: &DeriveInput) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("gpu_message")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("cuda_name") {
                name = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else {
                Err(meta.error("unknown `gpu_message` option; expected `cuda_name = \"...\"`"))
            }
        })?;
    }
    Ok(name)
}

fn check_c_identifier(name: &str, span: Span, what: &str) -> syn::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(syn::Error::new(
            span,
            format!("{what} `{name}` is not a valid C identifier (ASCII letters, digits and `_`)"),
        ));
    }
    let struct_only = what == "struct" && (name == "dc" || name.starts_with("dc_"));
    if C_RESERVED.contains(&name) || name.starts_with("__") || struct_only {
        return Err(syn::Error::new(
            span,
            format!(
                "{what} `{name}` is reserved in the generated CUDA C (a C++ keyword, a CUDA built-in, or a \
                 `dc`/`__` name); rename it{}",
                if what == "struct" {
                    " or set #[gpu_message(cuda_name = \"...\")]"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

pub fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let fields =
        match &input.data {
            Data::Struct(s) => &s.fields,
            Data::Enum(e) => return Err(syn::Error::new(
                e.enum_token.span,
                "#[derive(GpuMessage)] supports structs only: a Rust enum has no fixed C layout; use a u32 tag field \
                 (and a union-free payload) instead",
            )),
            Data::Union(u) => {
                return Err(syn::Error::new(
                    u.union_token.span,
                    "#[derive(GpuMessage)] supports structs only",
                ))
            }
        };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(GpuMessage)] does not support generic structs: each GPU message needs one fixed C declaration",
        ));
    }
    let (repr_c, repr_align) = parse_repr(&input)?;
    if !repr_c {
        return Err(syn::Error::new_spanned(
            name,
            format!(
                "#[derive(GpuMessage)] requires #[repr(C)] on `{name}`: without it Rust may reorder fields and the \
                 device would read different bytes than the host wrote"
            ),
        ));
    }
    let cuda_name = match parse_options(&input)? {
        Some(lit) => {
            check_c_identifier(&lit.value(), lit.span(), "struct")?;
            lit.value()
        }
        None => {
            let n = name.unraw().to_string();
            check_c_identifier(&n, name.span(), "struct")?;
            n
        }
    };
    let named = match fields {
        Fields::Named(n) => n,
        Fields::Unnamed(_) => {
            return Err(syn::Error::new_spanned(
                fields,
                "#[derive(GpuMessage)] needs named fields: the C declaration names every field",
            ))
        }
        Fields::Unit => {
            return Err(syn::Error::new_spanned(
                name,
                "#[derive(GpuMessage)] needs at least one field: an empty struct has size 0 in Rust and 1 in C",
            ))
        }
    };
    if named.named.is_empty() {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(GpuMessage)] needs at least one field: an empty struct has size 0 in Rust and 1 in C",
        ));
    }

    let mut idents = Vec::new();
    let mut kinds = Vec::new();
    for field in &named.named {
        let ident = field
            .ident
            .clone()
            .ok_or_else(|| syn::Error::new_spanned(field, "unnamed field"))?;
        check_c_identifier(&ident.unraw().to_string(), ident.span(), "field")?;
        kinds.push(classify(&field.ty)?);
        idents.push(ident);
    }
    let n = kinds.len();

    let layouts: Vec<TokenStream> = kinds.iter().map(Kind::layout).collect();
    let min_align = match &repr_align {
        Some(lit) => quote!(#lit),
        None => quote!(1usize),
    };

    // C text.
    let head = match &repr_align {
        Some(lit) => format!("struct alignas({}) ", lit.base10_digits()),
        None => "struct ".to_string(),
    };
    let mut pieces = vec![quote!(__dc::Piece::Str(#head)), quote!(__dc::Piece::Str(#cuda_name))];
    pieces.push(quote!(__dc::Piece::Str(" {\n")));
    for (ident, kind) in idents.iter().zip(&kinds) {
        let field_name = ident.unraw().to_string();
        pieces.push(quote!(__dc::Piece::Str("    ")));
        pieces.push(kind.base_name());
        let text = format!(" {field_name}");
        pieces.push(quote!(__dc::Piece::Str(#text)));
        kind.dims(&mut pieces);
        pieces.push(quote!(__dc::Piece::Str(";\n")));
    }
    pieces.push(quote!(__dc::Piece::Str("};\n")));
    let msg = format!("dotcompute: the C layout of {cuda_name} differs from the Rust struct {name}");
    let assert_open = |expr: String| {
        let open = format!("static_assert({expr} == ");
        quote!(__dc::Piece::Str(#open))
    };
    let assert_close = format!(", \"{msg}\");\n");
    pieces.push(assert_open(format!("sizeof({cuda_name})")));
    pieces.push(quote!(__dc::Piece::Num(__DC_LAYOUT.size)));
    pieces.push(quote!(__dc::Piece::Str(#assert_close)));
    pieces.push(assert_open(format!("alignof({cuda_name})")));
    pieces.push(quote!(__dc::Piece::Num(__DC_LAYOUT.align)));
    pieces.push(quote!(__dc::Piece::Str(#assert_close)));
    // Offsets: `offsetof` is a constant expression for host compilers (nvcc
    // with <cstddef>), not under NVRTC, which has neither
    // `__builtin_offsetof` nor <cstddef>. There each field's size and
    // alignment are checked instead: with the fields in the same order, they
    // fix every offset by the C layout rule the Rust side used.
    pieces.push(quote!(__dc::Piece::Str("#ifdef __CUDACC_RTC__\n")));
    for (i, ident) in idents.iter().enumerate() {
        let field_name = ident.unraw().to_string();
        let open = format!("static_assert(sizeof({cuda_name}::{field_name}) == ");
        pieces.push(quote!(__dc::Piece::Str(#open)));
        pieces.push(quote!(__dc::Piece::Num(__DC_LAYOUT.sizes[#i])));
        let mid = format!(" && alignof(decltype({cuda_name}::{field_name})) == ");
        pieces.push(quote!(__dc::Piece::Str(#mid)));
        pieces.push(quote!(__dc::Piece::Num(__DC_LAYOUT.aligns[#i])));
        pieces.push(quote!(__dc::Piece::Str(#assert_close)));
    }
    pieces.push(quote!(__dc::Piece::Str("#else\n")));
    for (i, ident) in idents.iter().enumerate() {
        let field_name = ident.unraw().to_string();
        pieces.push(assert_open(format!("offsetof({cuda_name}, {field_name})")));
        pieces.push(quote!(__dc::Piece::Num(__DC_LAYOUT.offsets[#i])));
        pieces.push(quote!(__dc::Piece::Str(#assert_close)));
    }
    pieces.push(quote!(__dc::Piece::Str("#endif\n")));

    // Rust-side checks.
    let size_msg = format!(
        "#[derive(GpuMessage)]: size_of::<{name}>() differs from the CUDA C layout (a field type whose Rust \
         alignment differs from CUDA's on this target, such as u64 on 32-bit x86?)"
    );
    let align_msg = format!("#[derive(GpuMessage)]: align_of::<{name}>() differs from the CUDA C layout");
    let pad_msg = format!(
        "#[derive(GpuMessage)]: `{name}` has implicit padding; add explicit padding fields (for example \
         `_pad: [u8; 4]`) or reorder the fields by size, so that every byte sent to the device is initialised"
    );
    let big_align_msg =
        format!("#[derive(GpuMessage)]: `{name}` is aligned to more than 128 bytes, the ring's slot alignment");
    let offset_checks = idents.iter().enumerate().map(|(i, ident)| {
        let m = format!("#[derive(GpuMessage)]: the offset of `{name}::{ident}` differs from the CUDA C layout");
        quote!(::core::assert!(::core::mem::offset_of!(#name, #ident) == __DC_LAYOUT.offsets[#i], #m);)
    });
    let mut nested = Vec::new();
    for k in &kinds {
        k.nested(&mut nested);
    }
    let rust_name = quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)));
    let layout_const = format_ident!("__DC_LAYOUT");

    Ok(quote! {
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            use ::dotcompute::gpu::__layout as __dc;
            const #layout_const: __dc::CLayout<#n> = __dc::CLayout::compute([#(#layouts),*], #min_align);

            // SAFETY: the assertions below, evaluated at compile time, prove
            // that the struct is `#[repr(C)]` with the C layout computed above,
            // has no padding, and that every field is a scalar, an array of
            // scalars or another `GpuMessage`, for all of which every bit
            // pattern is a valid value.
            unsafe impl ::dotcompute::gpu::GpuMessage for #name {
                const CUDA_NAME: &'static str = #cuda_name;
                const CUDA_DECL: &'static str = {
                    const PIECES: &[__dc::Piece] = &[#(#pieces),*];
                    const LEN: usize = __dc::len(PIECES);
                    const BYTES: [u8; LEN] = __dc::concat::<LEN>(PIECES);
                    __dc::as_str(&BYTES)
                };
                const SIZE: usize = #layout_const.size;
                const ALIGN: usize = #layout_const.align;
                const RUST_NAME: &'static str = #rust_name;

                fn collect_cuda_decls(out: &mut ::std::vec::Vec<::dotcompute::gpu::CudaDecl>) {
                    #(<#nested as ::dotcompute::gpu::GpuMessage>::collect_cuda_decls(out);)*
                    __dc::push_decl::<Self>(out);
                }
            }

            ::core::assert!(::core::mem::size_of::<#name>() == #layout_const.size, #size_msg);
            ::core::assert!(::core::mem::align_of::<#name>() == #layout_const.align, #align_msg);
            #(#offset_checks)*
            ::core::assert!(#layout_const.padding == 0, #pad_msg);
            ::core::assert!(#layout_const.align <= 128, #big_align_msg);
        };
    })
}
