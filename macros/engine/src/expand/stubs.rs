//! Stand-ins of a failed expansion: the original's signature and each promised function's,
//! with bodies that never run and types that raise no warnings at call sites.

use super::*;

/// Stand-ins for the promised functions when expansion failed, so that the only errors
/// the user sees are the real ones (thiserror's fallback).
pub(super) fn stubs(item: &syn::ItemFn, stack: &[Options], names: &[(Transform, String)]) -> TokenStream {
    let vis = &item.vis;
    let generics = &item.sig.generics;
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    let typed = |prefix: &str, tys: &[syn::Type]| -> Vec<TokenStream> {
        tys.iter()
            .enumerate()
            .map(|(k, t)| {
                let n = format_ident!("{}{}", prefix, k);
                quote!(#n: #t)
            })
            .collect()
    };
    let originals = arg_types(item);
    let inputs = typed("arg", &originals);
    // The signature the next stacked transform applies to, while it can be read off the
    // original's: `(parameter types, result type)`.
    let mut sig: Option<(Vec<syn::Type>, syn::Type)> = match &item.sig.output {
        syn::ReturnType::Type(_, t) => Some((originals.clone(), (**t).clone())),
        syn::ReturnType::Default => None,
    };
    let opts: Vec<&Options> = stack
        .iter()
        .rev()
        .filter(|o| o.transform != Transform::Differentiable)
        .collect();
    let msg = format!("fluxion could not expand `{}`: see the compile error", item.sig.ident);
    let mut out = TokenStream::new();
    for (k, (t, name)) in names.iter().enumerate() {
        let n = format_ident!("{}", name);
        let mut vmapped = None;
        let (params, ret) = match (&sig, opts.get(k)) {
            (Some((ps, r)), Some(o)) => {
                let mut params = typed("arg", ps);
                if *t == Transform::Jvp {
                    params.extend(typed("tangent", ps));
                }
                if *t == Transform::Vmap {
                    let tys = vmap_params(o, ps);
                    params = typed("arg", &tys);
                    vmapped = Some(tys);
                }
                (params, crate::stub_types::promised(o, ps, r))
            }
            _ => (vec![quote!(_args: ())], None),
        };
        // A stand-in of the promised type, so call sites raise no "unreachable" warning;
        // `!` where the type cannot be read off the signature.
        let ret_tokens = match &ret {
            Some(r) => quote!(#r),
            None => quote!(!),
        };
        out.extend(quote! {
            #[allow(unused_variables, dead_code, clippy::all)]
            #vis fn #n #gen (#(#params),*) -> #ret_tokens #where_clause { unreachable!(#msg) }
        });
        let n_into = format_ident!("{}_into", name);
        let mut into_generics = generics.clone();
        into_generics.params.push(syn::parse_quote!(__FluxionOut));
        let (gen_into, _) = crate::emit::generic_parts(&into_generics);
        // `vmap`'s buffers are taken by value (slices, arrays of slices), with a chunk size.
        let into_tail = if *t == Transform::Vmap {
            quote!(out: __FluxionOut, chunk_size: ::core::option::Option<usize>)
        } else {
            quote!(out: &mut __FluxionOut)
        };
        out.extend(quote! {
            #[allow(unused_variables, dead_code, clippy::all)]
            #vis fn #n_into #gen_into (#(#params,)* #into_tail) #where_clause { unreachable!(#msg) }
        });
        if *t == Transform::Vmap {
            let n_try = format_ident!("try_{}", name);
            let ok = match &ret {
                Some(r) => quote!(#r),
                None => quote!(()),
            };
            out.extend(quote! {
                #[allow(unused_variables, dead_code, clippy::all)]
                #vis fn #n_try #gen (#(#params),*) -> ::core::result::Result<#ok, ::fluxion::BatchError> #where_clause { unreachable!(#msg) }
            });
        }
        if *t == Transform::Vjp {
            let n2 = format_ident!("{}_ct", name);
            out.extend(quote! {
                #[allow(unused_variables, dead_code, clippy::all)]
                #vis fn #n2 #gen (#(#inputs,)* ct: ()) -> ! #where_clause { unreachable!(#msg) }
            });
        }
        sig = match (sig.take(), ret) {
            (Some((ps, _)), Some(r)) if !matches!(t, Transform::Jvp | Transform::Vjp) => {
                Some((vmapped.unwrap_or(ps), r))
            }
            _ => None,
        };
    }
    out
}

/// The parameter types of a `vmap` of a function with parameters `ps`: a batched one is a
/// slice of owned samples (`&[T]` for `T` or `&T`, `&[Vec<T>]` for an inner batch `&[T]`),
/// or one slice per component (`in_dims = 1`: `[&[T]; N]` for `[T; N]`).
fn vmap_params(o: &Options, ps: &[syn::Type]) -> Vec<syn::Type> {
    let dims: Vec<Option<usize>> = match &o.in_dims {
        Some(d) => d
            .dims(ps.len())
            .map(|v| v.into_iter().map(|(d, _)| d).collect())
            .unwrap_or_else(|_| vec![Some(0); ps.len()]),
        None => vec![Some(0); ps.len()],
    };
    ps.iter()
        .zip(&dims)
        .map(|(p, d)| {
            let sample = match p {
                syn::Type::Reference(r) => match &*r.elem {
                    syn::Type::Slice(s) => {
                        let e = &s.elem;
                        syn::parse_quote!(::std::vec::Vec<#e>)
                    }
                    e => e.clone(),
                },
                syn::Type::Array(a) => match &*a.elem {
                    syn::Type::Reference(r) if matches!(&*r.elem, syn::Type::Slice(_)) => {
                        let (syn::Type::Slice(s), len) = (&*r.elem, &a.len) else {
                            return p.clone();
                        };
                        let e = &s.elem;
                        syn::parse_quote!([::std::vec::Vec<#e>; #len])
                    }
                    _ => p.clone(),
                },
                other => other.clone(),
            };
            match (d, &sample) {
                (None, _) => p.clone(),
                (Some(1), syn::Type::Array(a)) => {
                    let (e, len) = (&a.elem, &a.len);
                    syn::parse_quote!([&[#e]; #len])
                }
                _ => syn::parse_quote!(&[#sample]),
            }
        })
        .collect()
}

/// The types of a function's (typed) parameters, in order.
pub(crate) fn arg_types(item: &syn::ItemFn) -> Vec<syn::Type> {
    item.sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(pt) => Some((*pt.ty).clone()),
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}
