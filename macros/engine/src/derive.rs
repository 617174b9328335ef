//! `#[derive(Parameters)]`: the runtime's `Parameters` trait for a struct with named
//! fields, field by field in declaration order.
//!
//! ```text
//! #[derive(Parameters)]
//! struct Mlp { l1: Layer, out: [f64; 4], #[param(buffer)] steps: usize }
//! // expands to
//! impl Parameters for Mlp where Layer: Parameters, [f64; 4]: Parameters<Scalar = <Layer as Parameters>::Scalar>,
//!                              usize: Clone {
//!     type Scalar = <Layer as Parameters>::Scalar;       // the first trainable field's
//!     fn zeros_like(&self) -> Self { Mlp { l1: self.l1.zeros_like(), out: .., steps: self.steps.clone() } }
//!     fn zip_mut(&mut self, other: &Self, mut f) { self.l1.zip_mut(&other.l1, &mut f); self.out.zip_mut(..); }
//!     ..                                                  // every traversal: trainable fields only
//! }
//! ```
//! A `#[param(buffer)]` field is carried but not trained: cloned by `zeros_like`, skipped by
//! every traversal (so by flattening, `dot`, `axpy` and the optimisers). Its type needs
//! only `Clone`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields};

use crate::attr::closest;

const OPTIONS: &[&str] = &["buffer"];

struct Field {
    ident: syn::Ident,
    ty: syn::Type,
    buffer: bool,
}

/// Expands `#[derive(Parameters)]` on `input` (the item the derive is on).
pub fn expand_derive_parameters(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    for attr in &input.attrs {
        if attr.path().is_ident("param") {
            return Err(syn::Error::new_spanned(
                attr,
                "`#[param(..)]` goes on a field, not on the struct\n\
                 hint: mark a field that is carried but not trained with `#[param(buffer)]`",
            ));
        }
    }
    let name = &input.ident;
    let named = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named,
            Fields::Unnamed(f) => {
                return Err(syn::Error::new(
                    f.span(),
                    "`#[derive(Parameters)]` needs named fields: the names of the parameters \
                     (`layer1.w`) are the fields' names\n\
                     hint: write `struct Name { w: [f64; 3], .. }`",
                ))
            }
            Fields::Unit => {
                return Err(syn::Error::new(
                    name.span(),
                    "`#[derive(Parameters)]` on a struct without fields: there is nothing to train\n\
                     hint: add fields holding the parameters, `struct Name { w: [f64; 3] }`",
                ))
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new(
                e.enum_token.span,
                "`#[derive(Parameters)]` is for structs with named fields, not enums: the parameters \
                 of every value must have one shape\n\
                 hint: use a struct, with an `Option` or a variant tag as a `#[param(buffer)]` field",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`#[derive(Parameters)]` is for structs with named fields, not unions\n\
                 hint: use a struct",
            ))
        }
    };

    let mut fields = Vec::new();
    for f in &named.named {
        let Some(ident) = f.ident.clone() else {
            return Err(syn::Error::new(f.span(), "a field without a name"));
        };
        let mut buffer = false;
        for attr in &f.attrs {
            if !attr.path().is_ident("param") {
                continue;
            }
            if !matches!(&attr.meta, syn::Meta::List(l) if !l.tokens.is_empty()) {
                return Err(syn::Error::new_spanned(
                    attr,
                    "`#[param]` takes an option\n\
                     hint: `#[param(buffer)]` marks a field carried but not trained",
                ));
            }
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("buffer") {
                    if buffer {
                        return Err(meta.error("`buffer` is given twice"));
                    }
                    buffer = true;
                    Ok(())
                } else {
                    let word = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                    let hint = match closest(&word, OPTIONS) {
                        Some(c) => format!("hint: did you mean `{c}`?"),
                        None => "hint: the one option is `buffer`, for a field carried but not trained".to_string(),
                    };
                    Err(meta.error(format!("unknown option of `#[param(..)]`\n{hint}")))
                }
            })?;
        }
        fields.push(Field {
            ident,
            ty: f.ty.clone(),
            buffer,
        });
    }

    let trainable: Vec<&Field> = fields.iter().filter(|f| !f.buffer).collect();
    let Some(first) = trainable.first() else {
        return Err(syn::Error::new(
            name.span(),
            "`#[derive(Parameters)]` on a struct whose fields are all buffers: there is nothing to train\n\
             hint: a trainable field has a type implementing `Parameters` (a float, an array, a `Vec`, \
             another derived struct) and no `#[param(buffer)]`",
        ));
    };

    let p = quote!(::fluxion::Parameters);
    let first_ty = &first.ty;
    let scalar = quote!(<#first_ty as #p>::Scalar);

    // In a generic struct, each trainable field implements `Parameters` with the first
    // field's scalar type, each buffer `Clone`. (Not in other structs: rustc checks the body
    // there, and such bounds on concrete types overflow its trait solver for nested
    // derived structs.) Bounds and field statements carry the field's span, so a field of
    // another type is reported there.
    let generic = input.generics.type_params().next().is_some();
    let mut predicates: Vec<TokenStream> = Vec::new();
    for f in fields.iter().filter(|_| generic) {
        let ty = &f.ty;
        let span = ty.span();
        predicates.push(if f.buffer {
            quote_spanned!(span=> #ty: ::core::clone::Clone)
        } else if std::ptr::eq(*first, f) {
            quote_spanned!(span=> #ty: ::fluxion::Parameters)
        } else {
            quote_spanned!(span=> #ty: ::fluxion::Parameters<Scalar = #scalar>)
        });
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let existing = where_clause.into_iter().flat_map(|w| w.predicates.iter());

    let inits = fields.iter().map(|f| {
        let id = &f.ident;
        if f.buffer {
            quote!(#id: ::core::clone::Clone::clone(&self.#id))
        } else {
            quote!(#id: #p::zeros_like(&self.#id))
        }
    });
    // Each field's statements are located at the field's type (resolved at the call
    // site): a field whose type does not implement `Parameters`, or with another scalar
    // type, is reported at the field.
    let each = |body: &dyn Fn(&syn::Ident, &str, Span) -> TokenStream| -> Vec<TokenStream> {
        trainable
            .iter()
            .map(|f| body(&f.ident, &unraw(&f.ident), Span::call_site().located_at(f.ty.span())))
            .collect()
    };
    let num_scalars = each(&|id, _, at| quote_spanned!(at=> + #p::num_scalars(&self.#id)));
    let named = each(
        &|id, name, at| quote_spanned!(at=> #p::for_each_named(&self.#id, &::fluxion::__private::param_name(prefix, #name), f);),
    );
    let for_each = each(&|id, _, at| quote_spanned!(at=> #p::for_each(&self.#id, &mut f);));
    let for_each_mut = each(&|id, _, at| quote_spanned!(at=> #p::for_each_mut(&mut self.#id, &mut f);));
    let zip = each(&|id, _, at| quote_spanned!(at=> #p::zip(&self.#id, &other.#id, &mut f);));
    let zip_mut = each(&|id, _, at| quote_spanned!(at=> #p::zip_mut(&mut self.#id, &other.#id, &mut f);));
    let zip_mut2 = each(&|id, _, at| quote_spanned!(at=> #p::zip_mut2(&mut self.#id, &mut a.#id, &g.#id, &mut f);));
    let zip_mut3 =
        each(&|id, _, at| quote_spanned!(at=> #p::zip_mut3(&mut self.#id, &mut a.#id, &mut b.#id, &g.#id, &mut f);));
    let span = Span::call_site();
    // Each trainable field implements `Parameters` with the first field's scalar type:
    // checked by calls whose type arguments carry the field's span, so the error is
    // reported at the field's type.
    let checks = trainable.iter().map(|f| {
        let ty = &f.ty;
        if std::ptr::eq(*first, *f) {
            let at = Span::call_site().located_at(ty.span());
            quote_spanned!(at=> ::fluxion::__private::assert_parameters::<#ty>();)
        } else {
            let at = Span::call_site().located_at(ty.span());
            quote_spanned!(at=> ::fluxion::__private::assert_same_scalar::<#first_ty, #ty>();)
        }
    });

    // The fields, for the attribute macros of functions taking the struct (see
    // `crate::structs`): a macro in textual scope after the struct.
    let fields_macro = if input.generics.params.is_empty() {
        let m = crate::structs::fields_macro(name);
        let entries = fields.iter().map(|f| {
            let (id, ty) = (&f.ident, &f.ty);
            if f.buffer {
                quote!(#[buffer] #id: #ty)
            } else {
                quote!(#id: #ty)
            }
        });
        quote! {
            #[doc(hidden)]
            #[allow(unused_macros)]
            macro_rules! #m {
                ($($rest:tt)*) => { ::fluxion::__with_fields! { [#name { #(#entries,)* }] $($rest)* } };
            }
        }
    } else {
        TokenStream::new()
    };
    Ok(quote_spanned! {span=>
        #fields_macro
        #[automatically_derived]
        impl #impl_generics #p for #name #ty_generics where #(#existing,)* #(#predicates,)* {
            type Scalar = #scalar;

            fn zeros_like(&self) -> Self {
                #name { #(#inits,)* }
            }

            fn num_scalars(&self) -> usize {
                #(#checks)*
                0 #(#num_scalars)*
            }

            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &[Self::Scalar])) {
                #(#named)*
            }

            #[inline]
            fn for_each(&self, mut f: impl FnMut(Self::Scalar)) {
                #(#for_each)*
            }

            #[inline]
            fn for_each_mut(&mut self, mut f: impl FnMut(&mut Self::Scalar)) {
                #(#for_each_mut)*
            }

            #[inline]
            fn zip(&self, other: &Self, mut f: impl FnMut(Self::Scalar, Self::Scalar)) {
                #(#zip)*
            }

            #[inline]
            fn zip_mut(&mut self, other: &Self, mut f: impl FnMut(&mut Self::Scalar, Self::Scalar)) {
                #(#zip_mut)*
            }

            #[inline]
            fn zip_mut2(
                &mut self,
                a: &mut Self,
                g: &Self,
                mut f: impl FnMut(&mut Self::Scalar, &mut Self::Scalar, Self::Scalar),
            ) {
                #(#zip_mut2)*
            }

            #[inline]
            fn zip_mut3(
                &mut self,
                a: &mut Self,
                b: &mut Self,
                g: &Self,
                mut f: impl FnMut(&mut Self::Scalar, &mut Self::Scalar, &mut Self::Scalar, Self::Scalar),
            ) {
                #(#zip_mut3)*
            }
        }
    })
}

/// A field's name as written in parameter names: `r#type` is `type`.
fn unraw(id: &syn::Ident) -> String {
    let s = id.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}
