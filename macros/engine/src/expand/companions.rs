//! Companions: the hidden holder of each function and its companions, up to total order
//! [`MAX_ORDER`], stubs beyond it.

use super::*;
use crate::emit::{LaneTarget, Scalar, Target};
use crate::error::Diag;

/// The transforms applied to a function for its hidden companions (maximum order 2).
pub const COMPANIONS: [&[Mode]; 9] = [
    &[Mode::Jvp],
    &[Mode::Vjp],
    &[Mode::VjpFwd],
    &[Mode::VjpBwd],
    &[Mode::VjpBwdAcc],
    &[Mode::Jvp, Mode::Jvp],
    &[Mode::Jvp, Mode::Vjp],
    &[Mode::Vjp, Mode::Jvp],
    &[Mode::Vjp, Mode::Vjp],
];

/// The highest order of companion every differentiable function provides.
pub const MAX_ORDER: usize = 2;

/// Whether `f` calls a function (not one of its companions).
pub(super) fn calls_functions(f: &Func) -> bool {
    let mut any = false;
    walk_stmts(&f.body, &mut |s| {
        if let Stmt::Let(_, Expr::Call(c)) | Stmt::Mut(_, Some(Expr::Call(c))) = s {
            any |= c.modes.is_empty();
        }
    });
    any
}

/// The deepest companion a function calls.
pub fn max_call_order(f: &Func) -> usize {
    let mut m = 0;
    walk_stmts(&f.body, &mut |s| {
        if let Stmt::Let(_, Expr::Call(c)) | Stmt::Mut(_, Some(Expr::Call(c))) = s {
            m = m.max(c.modes.len());
        }
    });
    m
}

/// The hidden type holding `f`'s companions: `jvp`, `vjp` and their order-2 compositions.
///
/// `order` is how many derivatives `f` already is of a user function (`f_grad`: 1,
/// `f_hessian`: 2): companions are emitted up to total order [`MAX_ORDER`], which bounds
/// the generated code (second-order companions of a gradient would be third order).
///
/// `inner`: more hidden items to place inside the holder (see [`crate::emit::holder_item`]).
pub(super) fn holder(
    f: &Func,
    order: usize,
    vis: &TokenStream,
    generics: &syn::Generics,
    rules: &RuleTable,
    span: Span,
    inner: TokenStream,
) -> Result<TokenStream, syn::Error> {
    let h = holder_ident(&f.name, Span::call_site());
    let mut fns = TokenStream::new();
    let mut markers = TokenStream::new();
    let attrs = |doc: String| {
        quote! {
            #[doc = #doc]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_parens, unused_braces, non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
        }
    };
    let failed = |d: Diag| {
        syn::Error::new(
            d.span.unwrap_or(span),
            format!("fluxion could not differentiate `{}`: {}", f.name, d.msg),
        )
    };
    // `vjp_fwd` and `vjp_bwd` (and its in-place form) are two halves of one reverse pass:
    // built once.
    let mut halves: Option<(Func, Func, Func)> = None;
    // The lanes companions (a batched caller's callees, see `crate::batch`): `lanes` of the
    // function itself here, `jvp_lanes`, .. with each first-order companion below. Built
    // for the user's own functions only: the lanes of a derivative's companions, or of a
    // second-order companion, would double every function's generated code (and compile
    // time) for a rare use.
    let derivative = || {
        Err(format!(
            "`vmap` through a call of a generated derivative is not supported yet; call `{}`'s original function and stack the transform on the batched caller instead",
            f.name
        ))
    };
    let built = if order == 0 { lanes_of(f) } else { derivative() };
    lanes_item(f, built, &[], vis, generics, &mut fns, &mut markers);
    let mut halves_lanes: Option<Result<[(Func, FloatTy); 3], String>> = None;
    for modes in COMPANIONS {
        let name = mode_name(modes);
        let beyond = order + modes.len() > MAX_ORDER;
        // Reverse over reverse through data of run-time length holds cotangents of types
        // only rustc sees (a gradient's tuple, `Vec`s) and zeroes and adds them through the
        // runtime, which does not know nalgebra: with a nalgebra argument those companions
        // are stubs, an error only where something uses them.
        let reverse = |m: &Mode| matches!(m, Mode::Vjp | Mode::VjpFwd | Mode::VjpBwd | Mode::VjpBwdAcc);
        let nalgebra_over_dynamic = f.has_dynamic()
            && f.params.iter().any(|p| p.ty.has_matrix())
            && modes.iter().any(reverse)
            && (order > 0 || modes.iter().filter(|m| reverse(m)).count() > 1);
        // A derivative whose result holds rows of run-time length (`Vec<Vec<T>>`: the
        // Jacobian of a `Vec` result): its own derivatives through calls are stubs.
        let rows_of_rows = order > 0 && vec_of_vecs(&f.ret_ty);
        let g = if beyond || nalgebra_over_dynamic || rows_of_rows {
            None
        } else {
            let g = match modes {
                [Mode::VjpFwd] | [Mode::VjpBwd] | [Mode::VjpBwdAcc] => {
                    let (fwd, bwd, acc) = match &halves {
                        Some(h) => h.clone(),
                        None => {
                            let h = crate::transforms::split_pair(f, rules).map_err(failed)?;
                            halves = Some(h.clone());
                            h
                        }
                    };
                    match modes {
                        [Mode::VjpFwd] => fwd,
                        [Mode::VjpBwd] => bwd,
                        _ => acc,
                    }
                }
                _ => companion(f, modes, rules).map_err(failed)?,
            };
            // A companion that would call a callee's companion beyond order 2 is a stub too.
            (max_call_order(&g) <= MAX_ORDER).then_some(g)
        };
        match g {
            Some(g) => {
                let built = match modes {
                    // A batched caller never calls these (`crate::batch` rejects it).
                    [_, _] => None,
                    _ if order > 0 => Some(derivative()),
                    // The split halves' lanes exist together or not at all: their
                    // residuals' types must agree.
                    [Mode::VjpFwd] | [Mode::VjpBwd] | [Mode::VjpBwdAcc] => {
                        let all = halves_lanes.get_or_insert_with(|| match &halves {
                            Some((fwd, bwd, acc)) => Ok([lanes_of(fwd)?, lanes_of(bwd)?, lanes_of(acc)?]),
                            None => Err("internal: no split halves".to_string()),
                        });
                        let k = match modes {
                            [Mode::VjpFwd] => 0,
                            [Mode::VjpBwd] => 1,
                            _ => 2,
                        };
                        Some(all.as_ref().map(|a| a[k].clone()).map_err(Clone::clone))
                    }
                    _ => Some(lanes_of(&g)),
                };
                if let Some(built) = built {
                    lanes_item(f, built, modes, vis, generics, &mut fns, &mut markers);
                }
                let owned = cotangent_params(f, &g, modes);
                let e = Emitter::new(&g).with_owned(&owned);
                fns.extend(e.function(&FnHeader {
                    vis: quote!(pub),
                    name: format_ident!("{}", name),
                    generics,
                    attrs: attrs(format!("Companion `{name}` of `{}` (hidden).", f.name)),
                }));
            }
            None => {
                // Every holder has all nine companions, so callers' companions type-check;
                // one beyond order 2 is a compile error only where something uses it.
                let marker = format_ident!("__fluxion_missing_{}__{}", f.name, name);
                let msg = if rows_of_rows && !beyond {
                    format!(
                        "`{}` returns rows of run-time length (`Vec<Vec<T>>`, the Jacobian of a `Vec` result): differentiating it again through a call (`{name}` of `{}`) is not supported yet; differentiate the original function instead",
                        f.name, f.name
                    )
                } else if nalgebra_over_dynamic && !beyond {
                    format!(
                        "`{}` takes slices (or loops of run-time length) and nalgebra arguments: reverse mode over reverse mode through it (`{name}` of `{}`) is not supported yet; use forward over reverse (`hessian`, `jvp` of a gradient), fixed-size arrays, or the matrices in a parameter struct",
                        f.name, f.name
                    )
                } else {
                    format!(
                        "`{}` is differentiated {} time(s) here through a call: fluxion's companions go up to total order {MAX_ORDER} (`{name}` of `{}` would exceed it); differentiate the original function instead",
                        f.name,
                        modes.len(),
                        f.name
                    )
                };
                markers.extend(missing_marker(vis, &marker, &msg));
                if modes.len() == 1 {
                    let why = if order > 0 { derivative() } else { Err(msg.clone()) };
                    lanes_item(f, why, modes, vis, generics, &mut fns, &mut markers);
                }
                fns.extend(companion_stub(
                    f,
                    modes,
                    generics,
                    &name,
                    attrs(if beyond {
                        format!("Companion `{name}` of `{}`: beyond order {MAX_ORDER}.", f.name)
                    } else if rows_of_rows {
                        format!(
                            "Companion `{name}` of `{}`: not available for rows of run-time length.",
                            f.name
                        )
                    } else if nalgebra_over_dynamic {
                        format!(
                            "Companion `{name}` of `{}`: not available through slices with nalgebra arguments.",
                            f.name
                        )
                    } else {
                        format!(
                            "Companion `{name}` of `{}`: it would call a companion beyond order {MAX_ORDER}.",
                            f.name
                        )
                    }),
                    &marker,
                    None,
                ));
            }
        }
    }
    markers.extend(inner);
    Ok(crate::emit::holder_item(vis, &h, &fns, &markers))
}

/// `Vec<Vec<T>>` (also inside a tuple): rows of run-time length.
fn vec_of_vecs(t: &Ty) -> bool {
    match t {
        Ty::Slice(e) => e.has_slice(),
        Ty::Tuple(ts) => ts.iter().any(vec_of_vecs),
        _ => false,
    }
}

/// The parameters of the companion `g` (`modes` of `f`) that are cotangents of slice
/// outputs or their tangents: taken by value (`Vec<T>`), as callers hold them. A reverse
/// pass appends one cotangent, a forward pass a tangent per parameter (of its class);
/// `vjp_bwd` takes the residuals and the cotangent, `vjp_bwd_acc` also the accumulators.
/// Nothing if the count disagrees with `g`'s parameters.
fn cotangent_params(f: &Func, g: &Func, modes: &[Mode]) -> Vec<VarId> {
    let mut ct = vec![false; f.params.len()];
    for m in modes {
        match m {
            Mode::Jvp => ct.extend(ct.clone()),
            Mode::Vjp => ct.push(true),
            Mode::VjpFwd => {}
            Mode::VjpBwd => ct.extend([false, true]),
            Mode::VjpBwdAcc => {
                ct.extend([false, true]);
                ct.extend(vec![false; f.params.len()]);
            }
        }
    }
    if ct.len() != g.params.len() {
        return Vec::new();
    }
    g.params
        .iter()
        .zip(ct)
        .filter(|(p, c)| *c && matches!(p.ty, Ty::Slice(_)))
        .map(|(p, _)| p.var)
        .collect()
}

/// The marker type of a missing companion: `missing_rule::<marker>()` is a compile error
/// with `msg`, raised only where something uses the companion.
pub(super) fn missing_marker(vis: &TokenStream, marker: &proc_macro2::Ident, msg: &str) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker;
        impl ::fluxion::__private::MissingRule for #marker {
            const MSG: &'static str = #msg;
        }
    }
}

/// The lanes companion of a function or companion `g` (see
/// [`crate::batch::lanes_companion`]), or why there is none.
fn lanes_of(g: &Func) -> Result<(Func, FloatTy), String> {
    crate::batch::lanes_companion(g).map_err(|d| d.msg)
}

/// Emits the lanes companion of `f` for `modes` (`built` by [`lanes_of`]), or a stub
/// whose use is a compile error saying why it is missing.
fn lanes_item(
    f: &Func,
    built: Result<(Func, FloatTy), String>,
    modes: &[Mode],
    vis: &TokenStream,
    generics: &syn::Generics,
    fns: &mut TokenStream,
    markers: &mut TokenStream,
) {
    let name = crate::emit::lanes_mode_name(modes);
    let attrs = |doc: String| {
        quote! {
            #[doc = #doc]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_parens, unused_braces, non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
        }
    };
    match built {
        Ok((k, float)) => {
            let lt = LaneTarget { float };
            fns.extend(Emitter::with_lanes(&k, &Scalar, &lt).function(&FnHeader {
                vis: quote!(pub),
                name: format_ident!("{}", name),
                generics,
                attrs: attrs(format!("Lanes companion `{name}` of `{}` (hidden).", f.name)),
            }));
        }
        Err(why) => {
            let marker = format_ident!("__fluxion_missing_{}__{}", f.name, name);
            let msg = format!(
                "`vmap` through a call of `{}` needs its lanes companion `{name}`: {why}",
                f.name
            );
            markers.extend(missing_marker(vis, &marker, &msg));
            let float = f
                .params
                .iter()
                .find_map(|p| p.ty.float_ty())
                .or_else(|| f.ret_ty.float_ty());
            fns.extend(companion_stub(
                f,
                modes,
                generics,
                &name,
                attrs(format!("Lanes companion `{name}` of `{}`: not available.", f.name)),
                &marker,
                float,
            ));
        }
    }
}

/// A companion's signature (from the companion protocol) with a `missing_rule` body; its
/// lanes companion's (floats as lanes of `lanes`) if `lanes` is given.
pub(super) fn companion_stub(
    f: &Func,
    modes: &[Mode],
    generics: &syn::Generics,
    name: &str,
    attrs: TokenStream,
    marker: &proc_macro2::Ident,
    lanes: Option<FloatTy>,
) -> TokenStream {
    // `(type, passed as: "" by value, "&" by reference, "&mut" an accumulator)`
    let mut params: Vec<(Ty, &str)> = f
        .params
        .iter()
        .map(|p| (p.ty.clone(), if p.by_ref { "&" } else { "" }))
        .collect();
    let mut ret = f.ret_ty.clone();
    for m in modes {
        match m {
            Mode::Jvp => {
                let tangents: Vec<(Ty, &str)> = params
                    .iter()
                    .map(|(t, r)| (t.tangent(), if *r == "ct" { "ct" } else { "" }))
                    .collect();
                params.extend(tangents);
                ret = Ty::Tuple(vec![ret.clone(), ret.tangent()]);
            }
            Mode::Vjp => {
                let bars = Ty::Tuple(params.iter().map(|(t, _)| t.tangent()).collect());
                params.push((ret.tangent(), "ct"));
                ret = Ty::Tuple(vec![ret, bars]);
            }
            // The protocol of the split companions without residuals (`()`).
            Mode::VjpFwd => ret = Ty::Tuple(vec![ret, Ty::Unit]),
            Mode::VjpBwd => {
                let bars = Ty::Tuple(params.iter().map(|(t, _)| t.tangent()).collect());
                params.push((Ty::Unit, ""));
                params.push((ret.tangent(), "ct"));
                ret = bars;
            }
            Mode::VjpBwdAcc => {
                let accs: Vec<(Ty, &str)> = params.iter().map(|(t, _)| (t.tangent(), "&mut")).collect();
                params.push((Ty::Unit, ""));
                params.push((ret.tangent(), "ct"));
                params.extend(accs);
                ret = Ty::Unit;
            }
        }
    }
    let lt = lanes.map(|float| LaneTarget { float });
    let render = |t: &Ty| match &lt {
        Some(lt) if crate::batch::lanes_param(t) => match crate::batch::lanes_ty(t) {
            Ok(l) => lt.ty(&l),
            Err(_) => crate::emit::ty_tokens(t),
        },
        _ => crate::emit::ty_tokens(t),
    };
    let ps = params.iter().enumerate().map(|(k, (t, r))| {
        let n = format_ident!("p{}", k);
        if let Ty::Slice(e) = t {
            // Slices (and their tangents) are passed borrowed, accumulators as `&mut [T]`,
            // a cotangent (of a batched function's `Vec` result) by value.
            let e = crate::emit::ty_tokens(e);
            return match *r {
                "&mut" => quote!(#n: &mut [#e]),
                "ct" => quote!(#n: ::fluxion::__private::Vec<#e>),
                _ => quote!(#n: &[#e]),
            };
        }
        let t = render(t);
        match *r {
            "&" => quote!(#n: &#t),
            "&mut" => quote!(#n: &mut #t),
            _ => quote!(#n: #t),
        }
    });
    let rt = render(&ret);
    let n = format_ident!("{}", name);
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    quote! {
        #attrs
        pub fn #n #gen (#(#ps),*) -> #rt #where_clause {
            ::fluxion::__private::missing_rule::<#marker>()
        }
    }
}
