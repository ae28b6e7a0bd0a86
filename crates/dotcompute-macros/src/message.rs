//! `#[derive(Message)]`: finds the header field and implements the trait.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

pub fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let mut wire_name: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                wire_name = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("unknown `message` option on the type; expected `name = \"...\"`"))
            }
        })?;
    }

    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        Data::Enum(e) => {
            return Err(syn::Error::new(
                e.enum_token.span,
                "#[derive(Message)] supports structs only: put the enum inside a struct that also has a `header: MessageHeader` field",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "#[derive(Message)] supports structs only",
            ))
        }
    };

    let mut marked = Vec::new();
    let mut named_header = None;
    for (i, field) in fields.iter().enumerate() {
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("message")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("header") {
                    marked.push(i);
                    Ok(())
                } else {
                    Err(meta.error("unknown `message` option on a field; expected `header`"))
                }
            })?;
        }
        if field.ident.as_ref().is_some_and(|id| id == "header") {
            named_header = Some(i);
        }
    }
    if marked.len() > 1 {
        return Err(syn::Error::new_spanned(
            &fields.iter().nth(marked[1]).expect("index from enumerate").ty,
            "only one field may be marked #[message(header)]",
        ));
    }
    let index = match (marked.first(), named_header) {
        (Some(&i), _) => i,
        (None, Some(i)) => {
            let ty = &fields.iter().nth(i).expect("index from enumerate").ty;
            let is_header = matches!(ty, syn::Type::Path(p)
                if p.path.segments.last().is_some_and(|s| s.ident == "MessageHeader"));
            if !is_header {
                return Err(syn::Error::new_spanned(
                    ty,
                    "the `header` field must have type `dotcompute::MessageHeader` (mark a field of another name with #[message(header)] if `header` is taken)",
                ));
            }
            i
        }
        (None, None) => {
            let hint = match fields {
                Fields::Unnamed(_) => "mark the `MessageHeader` field with #[message(header)]",
                _ => "add a field `header: dotcompute::MessageHeader` (or mark one with #[message(header)])",
            };
            return Err(syn::Error::new_spanned(
                name,
                format!("#[derive(Message)] needs a header field: {hint}"),
            ));
        }
    };
    let field = fields.iter().nth(index).expect("index from enumerate");
    let access = match &field.ident {
        Some(id) => quote!(#id),
        None => {
            let idx = syn::Index::from(index);
            quote!(#idx)
        }
    };
    let ty = &field.ty;
    let type_name = match wire_name {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name))),
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::dotcompute::Message for #name #ty_generics #where_clause {
            const TYPE_NAME: &'static str = #type_name;
            #[inline]
            fn header(&self) -> &::dotcompute::MessageHeader {
                let h: &#ty = &self.#access;
                h
            }
            #[inline]
            fn header_mut(&mut self) -> &mut ::dotcompute::MessageHeader {
                let h: &mut #ty = &mut self.#access;
                h
            }
        }
    })
}
