//! `DVector<T>` arguments of annotated functions, lowered as slices.
//!
//! A function taking `x: &DVector<T>` (or `DVector<T>` by value) is transformed as its flat
//! form `__fluxion_flat_f(x: &[T])` (nalgebra's column-major storage, `x.as_slice()`), whose
//! body reads `x[i]`, `x.len()` and `x.nrows()` (rewritten `x.len()`) as a slice's. Each
//! public generated function gets a wrapper of the user's name taking the `DVector`, passing
//! `x.as_slice()`, and converting the derivative's parts with respect to the `DVector`
//! arguments into nalgebra's types: a gradient (`Vec<T>`) becomes `DVector<T>` (moved, no
//! copy), a Hessian (`Vec<Vec<T>>`, n x n) and a Jacobian of an `[T; M]` result
//! (`[Vec<T>; M]`, M x n) become `DMatrix<T>`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::visit_mut::VisitMut;

use crate::spec::{Argnums, Options};
use crate::structs::FLAT;
use crate::symbol::Transform;

/// A `DVector` or `DMatrix` argument: its element type, and whether it is a matrix.
#[derive(Clone, Debug)]
pub struct Dyn {
    /// `f64` or `f32`.
    pub elem: syn::Type,
    /// A `DMatrix` (passed with its row and column counts).
    pub matrix: bool,
}

/// `DVector<T>`, `DMatrix<T>` or a shared reference to one (`T` `f64` or `f32`), with or
/// without a path before the name.
pub fn dynamic_arg(t: &syn::Type) -> Option<Dyn> {
    let t = match t {
        syn::Type::Reference(r) if r.mutability.is_none() => &*r.elem,
        t => t,
    };
    let syn::Type::Path(p) = t else { return None };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    let matrix = match seg.ident.to_string().as_str() {
        "DVector" => false,
        "DMatrix" => true,
        _ => return None,
    };
    let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
        return None;
    };
    if a.args.len() != 1 {
        return None;
    }
    match a.args.first() {
        Some(syn::GenericArgument::Type(e @ syn::Type::Path(ep)))
            if ep.path.is_ident("f64") || ep.path.is_ident("f32") =>
        {
            Some(Dyn {
                elem: e.clone(),
                matrix,
            })
        }
        _ => None,
    }
}

/// The `DVector` arguments of `item` (by position: their element type), or `None` when it
/// takes none.
pub fn plan(item: &syn::ItemFn) -> Option<Vec<Option<Dyn>>> {
    let mut out = Vec::new();
    for input in &item.sig.inputs {
        let syn::FnArg::Typed(pt) = input else { return None };
        if !matches!(&*pt.pat, syn::Pat::Ident(_)) {
            return None;
        }
        out.push(dynamic_arg(&pt.ty));
    }
    out.iter().any(Option::is_some).then_some(out)
}

/// The transforms a function of a `DVector` takes, and the flat stack (a chosen name
/// carries the flat prefix). One level of `grad`, `grad_and_value`, `hessian`, `jacrev` or
/// `jacfwd`, without `has_aux`.
pub fn map_options(stack: &[Options], item: &syn::ItemFn, plan: &[Option<Dyn>]) -> syn::Result<Vec<Options>> {
    let at =
        item.sig
            .inputs
            .iter()
            .zip(plan)
            .find(|(_, p)| p.is_some())
            .map_or(item.sig.ident.span(), |(a, _)| match a {
                syn::FnArg::Typed(pt) => syn::spanned::Spanned::span(&pt.ty),
                syn::FnArg::Receiver(r) => syn::spanned::Spanned::span(r),
            });
    let hint = "hint: pass `x.as_slice()` (column-major) to a function of `x: &[f64]` (the same derivatives, as `Vec`s), or one transform per function (`#[grad]`, `#[hessian]`, `#[jacrev]`, ..)";
    let ok = |o: &Options| {
        matches!(
            o.transform,
            Transform::Grad | Transform::GradAndValue | Transform::Hessian | Transform::Jacrev | Transform::Jacfwd
        ) && !o.has_aux
    };
    let levels: Vec<&Options> = stack
        .iter()
        .filter(|o| o.transform != Transform::Differentiable)
        .collect();
    match levels.as_slice() {
        [o] if ok(o) => {}
        [o] => {
            return Err(syn::Error::new(
                at,
                format!(
                    "`{}`{} of a function taking a `DVector` or `DMatrix` is not supported yet: `grad`, `grad_and_value`, `hessian`, `jacrev` and `jacfwd` are\n{hint}",
                    o.transform.name(),
                    if o.has_aux { " with `has_aux`" } else { "" }
                ),
            ))
        }
        [] => {
            return Err(syn::Error::new(
                at,
                "`differentiable` on a function taking a `DVector` or `DMatrix` is not supported yet: annotated functions do not call such functions\nhint: call a function of `x: &[f64]` with `x.as_slice()` (column-major), or put a transform (`#[grad]`, `#[hessian]`, ..) on this function",
            ))
        }
        _ => {
            // The outermost attribute's span is the whole expansion's: point at the next.
            let sp = levels.get(1).map_or(at, |o| o.span);
            return Err(syn::Error::new(
                sp,
                format!("stacked transforms of a function taking a `DVector` or `DMatrix` are not supported yet\n{hint}"),
            ));
        }
    }
    if let Some(o) = levels.first() {
        let idx = o.argnums.clone().map(|a| a.indices()).unwrap_or_default();
        if o.transform == Transform::Hessian && idx.len() > 1 {
            if let Some((_, sp)) = idx.iter().find(|(k, _)| plan.get(*k).is_some_and(Option::is_some)) {
                return Err(syn::Error::new(
                    *sp,
                    "`hessian` with respect to a `DVector` or `DMatrix` takes it alone, not beside other arguments\nhint: write `argnums = k` for that argument alone (its Hessian is a `DMatrix`)",
                ));
            }
        }
    }
    if let (syn::ReturnType::Type(_, t), Some(o)) = (&item.sig.output, levels.first()) {
        if let Some(d) = dvector_result(t) {
            vector_result_options(o, item, plan, t, &d)?;
        } else if !scalar_or_rows(t) {
            return Err(syn::Error::new_spanned(
                t,
                "a function taking a `DVector` or `DMatrix` returns a float, an array of floats `[T; M]` or a `DVector<T>` built in the body for now\nhint: for a `DVector` result, declare it `let mut y = DVector::zeros(x.len());`, write `y[i] = ..` and return `y`",
            ));
        }
    }
    Ok(stack
        .iter()
        .map(|o| {
            let mut o = o.clone();
            if let Some((n, sp)) = &o.name {
                o.name = Some((format!("{FLAT}{n}"), *sp));
            }
            o
        })
        .collect())
}

/// A `DVector<T>` result (by value, `T` `f64` or `f32`).
fn dvector_result(t: &syn::Type) -> Option<Dyn> {
    match t {
        syn::Type::Reference(_) => None,
        syn::Type::Paren(p) => dvector_result(&p.elem),
        t => dynamic_arg(t).filter(|d| !d.matrix),
    }
}

/// The transforms of a function returning a `DVector`: `jacrev` or `jacfwd` (its Jacobian
/// is a `DMatrix`), with respect to `DVector`s and floats.
fn vector_result_options(
    o: &Options,
    item: &syn::ItemFn,
    plan: &[Option<Dyn>],
    t: &syn::Type,
    d: &Dyn,
) -> syn::Result<()> {
    if !matches!(o.transform, Transform::Jacrev | Transform::Jacfwd) {
        return Err(syn::Error::new_spanned(
            t,
            format!(
                "`{}` needs a scalar output (f64 or f32), but `{}` returns a `DVector`\nhint: use `jacrev` or `jacfwd` for its Jacobian (a `DMatrix`, one row per output element, one column per input element)",
                o.transform.name(),
                item.sig.ident
            ),
        ));
    }
    let idx = o.argnums.clone().map(|a| a.indices()).unwrap_or_default();
    let idx = if idx.is_empty() { vec![(0, o.span)] } else { idx };
    for (k, sp) in idx {
        let arg = item.sig.inputs.iter().nth(k);
        let ok = match (plan.get(k), arg) {
            (Some(Some(a)), _) => !a.matrix && a.elem == d.elem,
            (_, Some(syn::FnArg::Typed(pt))) => {
                matches!(&*pt.ty, syn::Type::Path(p) if p.path.is_ident("f64") || p.path.is_ident("f32"))
            }
            _ => true,
        };
        if !ok {
            let msg = "the Jacobian of a `DVector` result is taken with respect to `DVector` arguments of its element type and floats only\nhint: choose those with `argnums`, or pass a `DMatrix` argument's storage `m.as_slice()` to a function of `&[f64]`";
            return Err(match arg {
                Some(syn::FnArg::Typed(pt)) => syn::Error::new_spanned(&pt.ty, msg),
                _ => syn::Error::new(sp, msg),
            });
        }
    }
    Ok(())
}

/// A float or an array of floats.
fn scalar_or_rows(t: &syn::Type) -> bool {
    match t {
        syn::Type::Path(p) => p.path.is_ident("f64") || p.path.is_ident("f32"),
        syn::Type::Array(a) => {
            matches!(&*a.elem, syn::Type::Path(p) if p.path.is_ident("f64") || p.path.is_ident("f32"))
        }
        syn::Type::Paren(p) => scalar_or_rows(&p.elem),
        _ => false,
    }
}

/// The flat function: `__fluxion_flat_f`, each `DVector` argument `&[T]`, `x.nrows()` read
/// as `x.len()`.
pub fn flatten(item: &syn::ItemFn, plan: &[Option<Dyn>]) -> syn::ItemFn {
    let mut flat = item.clone();
    flat.sig.ident = format_ident!("{FLAT}{}", syn::ext::IdentExt::unraw(&item.sig.ident));
    let mut names = Vec::new();
    let mut matrices = Vec::new();
    for (input, p) in flat.sig.inputs.iter_mut().zip(plan) {
        let (syn::FnArg::Typed(pt), Some(d)) = (input, p) else {
            continue;
        };
        if let syn::Pat::Ident(pi) = &mut *pt.pat {
            // A value taken by value may be `mut`; its slice is not written.
            pi.mutability = None;
            if d.matrix {
                matrices.push(pi.ident.to_string());
            } else {
                names.push(pi.ident.to_string());
            }
        }
        let e = &d.elem;
        *pt.ty = syn::parse_quote!(&[#e]);
    }
    // A matrix's row and column counts: integer arguments after the user's.
    for m in &matrices {
        let (r, c) = (dims_of(m, "nrows"), dims_of(m, "ncols"));
        flat.sig.inputs.push(syn::parse_quote!(#r: usize));
        flat.sig.inputs.push(syn::parse_quote!(#c: usize));
    }
    Rows {
        names: &names,
        matrices: &matrices,
    }
    .visit_block_mut(&mut flat.block);
    // A `DVector` result: the flat function returns a `Vec` built from `vec![0.0; n]`.
    if let syn::ReturnType::Type(_, t) = &mut flat.sig.output {
        if let Some(d) = dvector_result(t) {
            let e = &d.elem;
            **t = syn::parse_quote_spanned!(syn::spanned::Spanned::span(&**t)=> Vec<#e>);
            Zeros.visit_block_mut(&mut flat.block);
        }
    }
    flat.attrs.retain(|a| a.path().is_ident("allow"));
    flat.attrs.push(syn::parse_quote!(#[doc(hidden)]));
    flat.attrs
        .push(syn::parse_quote!(#[allow(non_snake_case, dead_code, clippy::needless_range_loop)]));
    flat
}

/// `m.nrows()`, `m.ncols()`, `m[(i, j)]` and `m.as_slice()` of the slices `matrices` (the
/// flat names of `DMatrix` values) as their count arguments, `m[i + j * m__nrows]` and `m`.
pub(crate) fn matrix_reads(block: &mut syn::Block, matrices: &[String]) {
    Rows { names: &[], matrices }.visit_block_mut(block);
}

/// `let mut y = DVector::zeros(n);` (also `DVector::<T>::zeros`, with a path before
/// `DVector`) as `let mut y = vec![0.0; n];`, the vector a function returning a `DVector`
/// builds.
struct Zeros;

impl VisitMut for Zeros {
    fn visit_local_mut(&mut self, l: &mut syn::Local) {
        syn::visit_mut::visit_local_mut(self, l);
        let mutable = match &l.pat {
            syn::Pat::Ident(pi) => pi.mutability.is_some(),
            syn::Pat::Type(pt) => matches!(&*pt.pat, syn::Pat::Ident(pi) if pi.mutability.is_some()),
            _ => false,
        };
        let Some(init) = &mut l.init else { return };
        let syn::Expr::Call(c) = &*init.expr else { return };
        let syn::Expr::Path(p) = &*c.func else { return };
        let segs: Vec<&syn::PathSegment> = p.path.segments.iter().collect();
        let is_zeros = mutable
            && p.qself.is_none()
            && c.args.len() == 1
            && matches!(segs.as_slice(), [.., v, z] if v.ident == "DVector" && z.ident == "zeros" && z.arguments.is_empty());
        if !is_zeros {
            return;
        }
        let (n, sp) = (c.args[0].clone(), syn::spanned::Spanned::span(c));
        *init.expr = syn::parse_quote_spanned!(sp=> vec![0.0; #n]);
        // The annotation `DVector<T>` of `let mut y: DVector<f64> = ..` as the `Vec`.
        if let syn::Pat::Type(pt) = &mut l.pat {
            if let Some(d) = dvector_result(&pt.ty) {
                let e = &d.elem;
                *pt.ty = syn::parse_quote!(Vec<#e>);
            }
        }
    }
}

/// The flat argument holding a `DMatrix` argument's row or column count: `m__nrows`.
pub(crate) fn dims_of(m: &str, which: &str) -> syn::Ident {
    format_ident!("{}__{which}", m.trim_start_matches("r#"))
}

/// `x.nrows()` of a `DVector` argument as `x.len()`; `m.nrows()`, `m.ncols()` of a
/// `DMatrix` argument as its count arguments, `m[(i, j)]` as `m[i + j * m__nrows]`;
/// `x.as_slice()` of either as `x`.
struct Rows<'a> {
    names: &'a [String],
    matrices: &'a [String],
}

/// The name of a one-segment path expression.
fn ident_of(e: &syn::Expr) -> Option<String> {
    match e {
        syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(ToString::to_string),
        _ => None,
    }
}

impl VisitMut for Rows<'_> {
    fn visit_expr_mut(&mut self, e: &mut syn::Expr) {
        syn::visit_mut::visit_expr_mut(self, e);
        let new: Option<syn::Expr> = match &*e {
            syn::Expr::MethodCall(m) if m.args.is_empty() => match ident_of(&m.receiver) {
                Some(n) if m.method == "nrows" && self.names.contains(&n) => {
                    let r = &m.receiver;
                    Some(syn::parse_quote_spanned!(m.method.span()=> #r.len()))
                }
                // The storage, already the slice.
                Some(n) if m.method == "as_slice" && (self.names.contains(&n) || self.matrices.contains(&n)) => {
                    Some((*m.receiver).clone())
                }
                Some(n) if (m.method == "nrows" || m.method == "ncols") && self.matrices.contains(&n) => {
                    let d = dims_of(&n, &m.method.to_string());
                    Some(syn::parse_quote_spanned!(m.method.span()=> #d))
                }
                _ => None,
            },
            syn::Expr::Index(ix) => match (ident_of(&ix.expr), &*ix.index) {
                (Some(n), syn::Expr::Tuple(t)) if t.elems.len() == 2 && self.matrices.contains(&n) => {
                    let (i, j) = (&t.elems[0], &t.elems[1]);
                    let base = &ix.expr;
                    let r = dims_of(&n, "nrows");
                    Some(syn::parse_quote!(#base[(#i) + (#j) * #r]))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(n) = new {
            *e = n;
        }
    }
}

/// The public functions of `generated` (flat names) as wrappers of the user's names taking
/// the `DVector`s; the flat functions are hidden. `top` is the transform and its flat name.
pub fn wrappers(
    generated: TokenStream,
    plan: &[Option<Dyn>],
    orig: &syn::ItemFn,
    top: (&Options, &str),
) -> syn::Result<TokenStream> {
    let mut file: syn::File = syn::parse2(generated)?;
    let mut out = TokenStream::new();
    let orig_ty = crate::expand::arg_types(orig);
    for it in &mut file.items {
        let syn::Item::Fn(f) = it else { continue };
        let name = f.sig.ident.to_string();
        let Some(pos) = name.find(FLAT) else { continue };
        let hidden = crate::structs::doc_hidden(f);
        // Hidden helpers keep their flat names; the `_into` forms stay hidden (their
        // buffers are the slices' `Vec`s).
        if !hidden && !name.ends_with("_into") {
            let user = format!("{}{}", &name[..pos], &name[pos + FLAT.len()..]);
            out.extend(wrapper(f, &user, plan, (orig, &orig_ty), top)?);
        }
        f.attrs.retain(|a| !a.path().is_ident("doc"));
        f.attrs.push(syn::parse_quote!(#[doc(hidden)]));
    }
    Ok(quote!(#file #out))
}

fn wrapper(
    f: &syn::ItemFn,
    user: &str,
    plan: &[Option<Dyn>],
    (orig, orig_ty): (&syn::ItemFn, &[syn::Type]),
    (o, top_name): (&Options, &str),
) -> syn::Result<TokenStream> {
    let flat_name = &f.sig.ident;
    let mut params = Vec::new();
    let mut call = Vec::new();
    // The `DMatrix` arguments, in order.
    let matrices: Vec<syn::Ident> = f
        .sig
        .inputs
        .iter()
        .zip(plan)
        .filter(|(_, p)| p.as_ref().is_some_and(|d| d.matrix))
        .filter_map(|(a, _)| match a {
            syn::FnArg::Typed(pt) => match &*pt.pat {
                syn::Pat::Ident(pi) => Some(pi.ident.clone()),
                _ => None,
            },
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    for (k, input) in f.sig.inputs.iter().enumerate() {
        let syn::FnArg::Typed(pt) = input else {
            return Err(syn::Error::new(Span::call_site(), "internal: a method"));
        };
        let syn::Pat::Ident(pi) = &*pt.pat else {
            return Err(syn::Error::new(Span::call_site(), "internal: a pattern parameter"));
        };
        let id = &pi.ident;
        if k >= orig_ty.len() {
            // A matrix's counts (two per matrix, in argument order), read from the matrix.
            let e = k - orig_ty.len();
            let m = matrices
                .get(e / 2)
                .ok_or_else(|| syn::Error::new(Span::call_site(), "internal: an extra flat argument"))?;
            call.push(if e % 2 == 1 {
                quote!(#m.ncols())
            } else {
                quote!(#m.nrows())
            });
            continue;
        }
        match (plan.get(k), orig_ty.get(k)) {
            (Some(Some(_)), Some(t)) => {
                params.push(quote!(#id: #t));
                call.push(quote!(#id.as_slice()));
            }
            _ => {
                let t = &pt.ty;
                params.push(quote!(#id: #t));
                call.push(quote!(#id));
            }
        }
    }
    let user_id = syn::Ident::new(user, f.sig.ident.span());
    let vis = &f.vis;
    let generics = &f.sig.generics;
    let wc = &generics.where_clause;
    let docs = crate::structs::user_docs(f);
    let base = flat_name.to_string();
    let base = base.strip_prefix("try_").unwrap_or(&base);
    let flat_ret: Option<syn::Type> = match &f.sig.output {
        syn::ReturnType::Type(_, t) => Some((**t).clone()),
        syn::ReturnType::Default => None,
    };
    // The derivative with respect to the `DVector`s: the outermost transform's function.
    let converts = base == top_name && o.transform != Transform::Vmap;
    let (Some(flat_ret), true) = (flat_ret.clone(), converts) else {
        let ret = &f.sig.output;
        return Ok(quote! {
            #(#docs)*
            #vis fn #user_id #generics (#(#params,)*) #ret #wc {
                #flat_name(#(#call,)*)
            }
        });
    };
    let given = o.argnums.clone().unwrap_or(Argnums::One(0, o.span));
    let one = matches!(given, Argnums::One(..));
    let idx: Vec<usize> = given.indices().into_iter().map(|(k, _)| k).collect();
    let with_value = o.transform == Transform::GradAndValue;
    // The derivative's parts (a tuple for `Many`), and the value beside them.
    let (der_ty, value_ty) = if with_value {
        match &flat_ret {
            syn::Type::Tuple(t) if t.elems.len() == 2 => (t.elems[0].clone(), Some(t.elems[1].clone())),
            _ => return Err(syn::Error::new(o.span, "internal: grad_and_value's result")),
        }
    } else {
        (flat_ret.clone(), None)
    };
    let part_tys: Vec<syn::Type> = if one {
        vec![der_ty.clone()]
    } else {
        match &der_ty {
            syn::Type::Tuple(t) => t.elems.iter().cloned().collect(),
            _ => return Err(syn::Error::new(o.span, "internal: a tuple of parts")),
        }
    };
    let mut tys = Vec::new();
    let mut vals = Vec::new();
    let gids: Vec<syn::Ident> = (0..part_tys.len()).map(|j| format_ident!("__g{j}")).collect();
    // A `DVector` result (the flat function returns a `Vec`), and its element type.
    let out_elem = match &orig.sig.output {
        syn::ReturnType::Type(_, t) => dvector_result(t).map(|d| d.elem),
        syn::ReturnType::Default => None,
    };
    let vec_result = out_elem.is_some();
    for ((t, g), k) in part_tys.iter().zip(&gids).zip(&idx) {
        let arg = plan.get(*k).cloned().flatten();
        let hessian_of = |j: usize| plan.get(j).cloned().flatten().is_some();
        let name = match f.sig.inputs.iter().nth(*k) {
            Some(syn::FnArg::Typed(pt)) => match &*pt.pat {
                syn::Pat::Ident(pi) => Some(pi.ident.clone()),
                _ => None,
            },
            _ => None,
        };
        let (ty, v) = match (arg, name) {
            // The Jacobian of a `DVector` result with respect to a float: a `DVector`.
            (None, Some(_)) if vec_result => match &out_elem {
                Some(e) => (
                    quote!(::nalgebra::DVector<#e>),
                    quote!(::nalgebra::DVector::<#e>::from_vec(#g)),
                ),
                None => (quote!(#t), quote!(#g)),
            },
            (None, _) | (_, None) => (quote!(#t), quote!(#g)),
            // A matrix's gradient: a matrix of its shape; a Jacobian of `[T; M]`, `M` of them.
            (Some(Dyn { elem: e, matrix: true }), Some(m)) if o.transform != Transform::Hessian => {
                if let syn::Type::Array(a) = t {
                    let len = &a.len;
                    (
                        quote!([::nalgebra::DMatrix<#e>; #len]),
                        quote!(#g.map(|__r| ::nalgebra::DMatrix::<#e>::from_vec(#m.nrows(), #m.ncols(), __r))),
                    )
                } else {
                    (
                        quote!(::nalgebra::DMatrix<#e>),
                        quote!(::nalgebra::DMatrix::<#e>::from_vec(#m.nrows(), #m.ncols(), #g)),
                    )
                }
            }
            (Some(Dyn { elem: e, .. }), Some(x)) => match o.transform {
                Transform::Hessian => {
                    if idx.len() != 1 || !hessian_of(*k) {
                        return Err(syn::Error::new(o.span, "internal: a Hessian of several arguments"));
                    }
                    (
                        quote!(::nalgebra::DMatrix<#e>),
                        quote!({
                            let __n = #g.len();
                            ::nalgebra::DMatrix::<#e>::from_fn(__n, __n, |__i, __j| #g[__i][__j])
                        }),
                    )
                }
                // Of a `DVector` result: `Vec<Vec<T>>` rows (output `i`, input `j`) into an
                // `n_out x n_in` matrix.
                Transform::Jacrev | Transform::Jacfwd if vec_result => (
                    quote!(::nalgebra::DMatrix<#e>),
                    quote!(::nalgebra::DMatrix::<#e>::from_fn(#g.len(), #x.len(), |__i, __j| #g[__i][__j])),
                ),
                Transform::Jacrev | Transform::Jacfwd if matches!(t, syn::Type::Array(_)) => (
                    quote!(::nalgebra::DMatrix<#e>),
                    quote!({
                        let __n = #g.first().map_or(0, |__r| __r.len());
                        ::nalgebra::DMatrix::<#e>::from_fn(#g.len(), __n, |__i, __j| #g[__i][__j])
                    }),
                ),
                _ => (
                    quote!(::nalgebra::DVector<#e>),
                    quote!(::nalgebra::DVector::<#e>::from_vec(#g)),
                ),
            },
        };
        tys.push(ty);
        vals.push(v);
    }
    let (der_ty, der_val) = if one {
        (tys[0].clone(), vals[0].clone())
    } else {
        (quote!((#(#tys,)*)), quote!((#(#vals,)*)))
    };
    let pat = if one { quote!(#(#gids)*) } else { quote!((#(#gids,)*)) };
    let (ret_ty, body) = match value_ty {
        Some(v) => (
            quote!((#der_ty, #v)),
            quote! {
                let (#pat, __v) = #flat_name(#(#call,)*);
                (#der_val, __v)
            },
        ),
        None => (
            der_ty,
            quote! {
                let #pat = #flat_name(#(#call,)*);
                #der_val
            },
        ),
    };
    Ok(quote! {
        #(#docs)*
        #vis fn #user_id #generics (#(#params,)*) -> #ret_ty #wc { #body }
    })
}
