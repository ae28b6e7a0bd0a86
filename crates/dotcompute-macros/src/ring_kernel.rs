//! `#[ring_kernel(...)]`: validates the options and registers the function.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::{Expr, ExprLit, ItemFn, Lit, LitStr, Type};

/// Largest queue the library accepts (`dotcompute::queue::MAX_QUEUE_CAPACITY`).
const MAX_QUEUE: u64 = 1 << 24;
const KEYS: &str = "id, input, output, queue_size, input_queue_size, output_queue_size, backpressure";

#[derive(Default)]
struct Options {
    id: Option<LitStr>,
    input: Option<Type>,
    output: Option<Type>,
    queue_size: Option<u64>,
    input_queue_size: Option<u64>,
    output_queue_size: Option<u64>,
    backpressure: Option<TokenStream>,
}

fn queue_size(expr: &Expr, key: &str) -> syn::Result<u64> {
    let Expr::Lit(ExprLit { lit: Lit::Int(lit), .. }) = expr else {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`{key}` must be an integer literal"),
        ));
    };
    let n: u64 = lit.base10_parse()?;
    if n == 0 {
        return Err(syn::Error::new_spanned(
            lit,
            format!("`{key}` must be at least 1: a queue needs one slot"),
        ));
    }
    if n > MAX_QUEUE {
        return Err(syn::Error::new_spanned(
            lit,
            format!("`{key}` = {n} is over the largest queue ({MAX_QUEUE} messages)"),
        ));
    }
    Ok(n)
}

fn backpressure(expr: &Expr) -> syn::Result<TokenStream> {
    let (name, span) = match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => (s.value(), s.span()),
        Expr::Path(p) => match p.path.get_ident() {
            Some(id) => (id.to_string(), id.span()),
            None => {
                return Err(syn::Error::new_spanned(
                    expr,
                    "`backpressure` must be \"block\", \"reject\" or \"drop_oldest\"",
                ))
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                "`backpressure` must be \"block\", \"reject\" or \"drop_oldest\"",
            ))
        }
    };
    let variant = match name.to_ascii_lowercase().replace('-', "_").as_str() {
        "block" => quote!(Block),
        "reject" => quote!(Reject),
        "drop_oldest" | "dropoldest" => quote!(DropOldest),
        _ => {
            return Err(syn::Error::new(
                span,
                format!("unknown backpressure strategy `{name}`: expected \"block\", \"reject\" or \"drop_oldest\""),
            ))
        }
    };
    Ok(quote!(::dotcompute::Backpressure::#variant))
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let parser = |input: syn::parse::ParseStream<'_>| -> syn::Result<Options> {
        let mut o = Options::default();
        while !input.is_empty() {
            let key: syn::Ident = input
                .parse()
                .map_err(|e| syn::Error::new(e.span(), format!("expected `key = value`; keys: {KEYS}")))?;
            input.parse::<syn::Token![=]>()?;
            let name = key.to_string();
            let dup = || syn::Error::new_spanned(&key, format!("`{name}` is given twice"));
            match name.as_str() {
                "input" | "output" => {
                    let ty: Type = input.parse()?;
                    let slot = if name == "input" { &mut o.input } else { &mut o.output };
                    if slot.replace(ty).is_some() {
                        return Err(dup());
                    }
                }
                "id" => {
                    let value: Expr = input.parse()?;
                    let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &value else {
                        return Err(syn::Error::new_spanned(&value, "`id` must be a string literal"));
                    };
                    if s.value().trim().is_empty() {
                        return Err(syn::Error::new_spanned(s, "`id` must not be empty"));
                    }
                    if o.id.replace(s.clone()).is_some() {
                        return Err(dup());
                    }
                }
                "queue_size" | "input_queue_size" | "output_queue_size" => {
                    let value: Expr = input.parse()?;
                    let n = queue_size(&value, &name)?;
                    let slot = match name.as_str() {
                        "queue_size" => &mut o.queue_size,
                        "input_queue_size" => &mut o.input_queue_size,
                        _ => &mut o.output_queue_size,
                    };
                    if slot.replace(n).is_some() {
                        return Err(dup());
                    }
                }
                "backpressure" => {
                    let value: Expr = input.parse()?;
                    if o.backpressure.replace(backpressure(&value)?).is_some() {
                        return Err(dup());
                    }
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &key,
                        format!("unknown #[ring_kernel] option `{name}`; expected one of: {KEYS}"),
                    ))
                }
            }
            if !input.is_empty() {
                input.parse::<syn::Token![,]>()?;
            }
        }
        Ok(o)
    };
    parser.parse2(attr)
}

pub fn expand(attr: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    let o = parse_options(attr)?;
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            "#[ring_kernel] needs an `async fn` taking a `KernelContext<In, Out>`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "#[ring_kernel] functions cannot be generic",
        ));
    }
    if sig.inputs.len() != 1 {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "#[ring_kernel] functions take exactly one argument, `ctx: KernelContext<In, Out>` (found {})",
                sig.inputs.len()
            ),
        ));
    }
    if let Some(syn::FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(r, "#[ring_kernel] cannot be a method"));
    }
    let name = &sig.ident;
    let id = o.id.unwrap_or_else(|| LitStr::new(&name.to_string(), name.span()));
    let input = o.input.map_or_else(|| quote!(_), |t| quote!(#t));
    let output = o.output.map_or_else(|| quote!(_), |t| quote!(#t));
    let mut settings = Vec::new();
    if let Some(n) = o.queue_size {
        let n = n as usize;
        settings.push(quote!(.queue_size(#n)));
    }
    if let Some(n) = o.input_queue_size {
        let n = n as usize;
        settings.push(quote!(.input_queue_size(#n)));
    }
    if let Some(n) = o.output_queue_size {
        let n = n as usize;
        settings.push(quote!(.output_queue_size(#n)));
    }
    if let Some(b) = o.backpressure {
        settings.push(quote!(.backpressure(#b)));
    }
    let spec_fn = format_ident!("__dotcompute_ring_kernel_spec_{}", name);
    Ok(quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #spec_fn() -> ::core::result::Result<::dotcompute::KernelSpec, ::dotcompute::Error> {
            ::dotcompute::KernelSpec::builder::<#input, #output>(#id)
                .handler(#name)
                #(#settings)*
                .build()
        }

        ::dotcompute::__private::inventory::submit! {
            ::dotcompute::registry::StaticRegistration {
                id: #id,
                file: ::core::file!(),
                line: ::core::line!(),
                spec: #spec_fn,
            }
        }
    })
}
