//! The result type a transform promises, read from the original signature alone.
//!
//! When an expansion fails, the promised functions are still emitted as stand-ins so the
//! user sees only the real error. A stand-in returning `!` makes every call site's next
//! statement "unreachable" (a warning per call); one returning the promised type does not.
//! The layout is the transforms' own (`transforms.rs`): a gradient has its argument's
//! type, a Jacobian is the output's shape around the input's, tuples per output and per
//! `argnums`. `None` where the type cannot be read off the signature.

use crate::spec::{Argnums, Options};
use crate::symbol::Transform;

fn tangent(t: &syn::Type) -> syn::Type {
    match t {
        syn::Type::Reference(r) => tangent(&r.elem),
        syn::Type::Paren(p) => tangent(&p.elem),
        t => t.clone(),
    }
}

/// The derivative of an output of type `out` with respect to one argument of type `inp`.
fn jac(out: &syn::Type, inp: &syn::Type) -> syn::Type {
    match out {
        syn::Type::Array(a) => {
            let mut a = a.clone();
            a.elem = Box::new(jac(&a.elem, inp));
            syn::Type::Array(a)
        }
        syn::Type::Paren(p) => jac(&p.elem, inp),
        _ => tangent(inp),
    }
}

fn tuple(items: Vec<syn::Type>) -> syn::Type {
    syn::parse_quote!((#(#items,)*))
}

/// Per output (a tuple output gives a tuple), per argument (a tuple of `argnums` gives a
/// tuple).
fn jac_many(out: &syn::Type, args: &[syn::Type], many: bool) -> syn::Type {
    match out {
        syn::Type::Tuple(t) if !t.elems.is_empty() => tuple(t.elems.iter().map(|o| jac_many(o, args, many)).collect()),
        _ if many => tuple(args.iter().map(|a| jac(out, a)).collect()),
        _ => args.first().map_or_else(|| tangent(out), |a| jac(out, a)),
    }
}

/// Whether `t` is made of named types, fixed arrays, tuples and references to these (so
/// the derived type is sized and well-formed).
fn plain(t: &syn::Type) -> bool {
    match t {
        syn::Type::Path(p) => p.qself.is_none(),
        syn::Type::Array(a) => plain(&a.elem),
        syn::Type::Tuple(t) => t.elems.iter().all(plain),
        syn::Type::Reference(r) => r.mutability.is_none() && plain(&r.elem),
        syn::Type::Paren(p) => plain(&p.elem),
        _ => false,
    }
}

/// The promised result type of `o` applied to a function with these parameter and result
/// types.
pub fn promised(o: &Options, params: &[syn::Type], ret: &syn::Type) -> Option<syn::Type> {
    let (idx, many) = match &o.argnums {
        None => (vec![0], false),
        Some(Argnums::One(k, _)) => (vec![*k], false),
        Some(Argnums::Many(v)) => (v.iter().map(|(k, _)| *k).collect(), true),
    };
    let args: Vec<syn::Type> = idx.iter().map(|k| params.get(*k).cloned()).collect::<Option<_>>()?;
    // `vmap`'s result does not depend on its arguments (which may be slices already, for
    // a nested `vmap`).
    let args_plain = o.transform == Transform::Vmap || args.iter().all(plain);
    if !args_plain || !plain(ret) || matches!(ret, syn::Type::Reference(_)) {
        return None;
    }
    let (out, aux) = if o.has_aux {
        match ret {
            syn::Type::Tuple(t) if t.elems.len() == 2 => (t.elems[0].clone(), Some(t.elems[1].clone())),
            _ => return None,
        }
    } else {
        (ret.clone(), None)
    };
    let with_aux = |t: syn::Type| match &aux {
        Some(a) => tuple(vec![t, a.clone()]),
        None => t,
    };
    Some(match o.transform {
        Transform::Grad => with_aux(jac_many(&out, &args, many)),
        Transform::GradAndValue => tuple(vec![jac_many(&out, &args, many), ret.clone()]),
        Transform::Jacrev | Transform::Jacfwd => with_aux(jac_many(&out, &args, many)),
        Transform::Hessian => {
            let g = jac_many(&out, &args, many);
            with_aux(jac_many(&g, &args, many))
        }
        Transform::Jvp => match aux {
            Some(a) => tuple(vec![out.clone(), out, a]),
            None => tuple(vec![out.clone(), out]),
        },
        Transform::Vjp | Transform::Differentiable => return None,
        // Each output batched: `Vec`s (a tuple of them for a tuple).
        // Each output batched: a `Vec` of samples, or along axis 1 one `Vec` per component
        // of an array (a tuple of these for a tuple).
        Transform::Vmap => {
            let batched = |r: &syn::Type, d: usize| -> syn::Type {
                match (d, r) {
                    (1, syn::Type::Array(a)) => {
                        let (e, len) = (&a.elem, &a.len);
                        syn::parse_quote!([::std::vec::Vec<#e>; #len])
                    }
                    _ => syn::parse_quote!(::std::vec::Vec<#r>),
                }
            };
            match ret {
                syn::Type::Tuple(t) if !t.elems.is_empty() => {
                    let dims = match &o.out_dims {
                        Some(d) => d
                            .dims(t.elems.len(), true)
                            .map(|v| v.into_iter().map(|(d, _)| d).collect())
                            .unwrap_or_else(|_| vec![0; t.elems.len()]),
                        None => vec![0; t.elems.len()],
                    };
                    tuple(t.elems.iter().zip(dims).map(|(e, d)| batched(e, d)).collect())
                }
                r => {
                    let d = match &o.out_dims {
                        Some(d) => d
                            .dims(1, false)
                            .ok()
                            .and_then(|v| v.first().map(|(d, _)| *d))
                            .unwrap_or(0),
                        None => 0,
                    };
                    batched(r, d)
                }
            }
        }
    })
}
