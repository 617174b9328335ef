//! `vmap`: the batched kernel of a function (`batch.rs`) and the functions over slices that
//! run it chunk by chunk; a `vmap` stacked on a `vmap` maps the inner batched function over
//! an outer batch.
//!
//! ```text
//! #[vmap(in_dims = (0, None))] fn f(x: f64, w: &[f64; 3]) -> f64      expands to
//! fn __fluxion_kernel_f_vmap(x: f64x4, w: &[f64; 3]) -> f64x4        the body on lanes
//! fn f_vmap(x: &[f64], w: &[f64; 3]) -> Vec<f64>                     allocates the result
//! fn try_f_vmap(..) -> Result<Vec<f64>, BatchError>                  an error, not a panic
//! fn f_vmap_into(x: &[f64], w: &[f64; 3], out: &mut [f64], chunk_size) {  the caller's buffer:
//!     or_panic(__fluxion_check_f_vmap(x, w));                        sizes agree, or a panic
//!     drive(grain, out, |start, out| for each chunk of LANES samples  naming both arguments
//!         (the last one padded): out[chunk] = unpack(kernel(pack(x[chunk]), w)))
//! }
//! __fluxion_check_f_vmap, __fluxion_len_f_vmap, __fluxion_work_f_vmap,
//! __fluxion_zeros_f_vmap: the lengths checked, the number of samples, the number of
//! innermost samples, the result's zeros (what an outer `vmap` calls per outer sample)
//!
//! #[vmap] #[vmap(in_dims = (0, None))] fn f ..                        nested:
//! fn f_vmap_vmap(x: &[Vec<f64>], w: &[[f64; 3]]) -> Vec<Vec<f64>>    outer batch first
//! fn f_vmap_vmap_into(x, w, out: &mut [Vec<f64>], chunk_size) {
//!     drive(grain, out, |start, out| for each outer sample o:
//!         f_vmap_into(&x[o][..], &w[o], &mut out[o][..], None))      the inner batch on lanes
//! }
//! ```
//!
//! Layouts: an argument batched along axis 0 is a slice of samples (`&[T]`), along axis 1
//! (an array sample `[T; N]`) one slice per component (`[&[T]; N]`); an output along axis 0
//! is a `Vec` of samples (`&mut [R]` in `_into`), along axis 1 one `Vec` per component
//! (`[&mut [T]; N]`). An outer `vmap` takes one sample of the inner function's argument per
//! outer sample, owned (`Vec<T>` for `&[T]`): `&[Vec<T>]`.

use super::*;
use crate::batch::{batch, holds_matrix, BatchSpec};
use crate::emit::{cexpr_tokens, turbofish, ty_tokens, LaneTarget, Scalar, Target};
use crate::spec::{InDims, OutDims, Randomness};

/// How a batched function's argument is borrowed from one owned sample of an outer batch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Borrow {
    /// `Vec<T>` as `&[T]`.
    Slice,
    /// `[Vec<T>; N]` as `[&[T]; N]`.
    Components,
    /// `T` as `&T`.
    Ref,
    /// `T` as itself.
    Value,
}

/// An argument of a generated batched function, as an outer `vmap` sees it.
#[derive(Clone)]
struct Arg {
    name: syn::Ident,
    /// Its type in the generated signatures.
    ty: TokenStream,
    /// One outer sample of it, owned (`Vec<T>` for `&[T]`).
    owned: TokenStream,
    borrow: Borrow,
    /// Batched at this level (a slice of samples or of components here).
    own: bool,
    /// Never batched: the original's type (an outer `in_dims = 1` splits its components).
    shared: Option<Ty>,
}

/// An output of a generated batched function.
#[derive(Clone)]
struct Out {
    /// Its type in the allocating form's result (`Vec<R>`, `[Vec<T>; N]`).
    ret: TokenStream,
    /// Its buffer in the `_into` form (`&mut [R]`, `[&mut [T]; N]`).
    slot: TokenStream,
    /// One buffer per component (`out_dims = 1`).
    components: bool,
}

/// What one `vmap` level generated, as the next one (stacked on it) sees it.
pub(super) struct Level {
    name: String,
    args: Vec<Arg>,
    outs: Vec<Out>,
    tuple: bool,
    /// The name of the `_into` form's buffer parameter.
    out: syn::Ident,
    /// The kernel's weighted operations per innermost sample.
    cost: usize,
}

fn vec_of(t: &TokenStream) -> TokenStream {
    quote!(::std::vec::Vec<#t>)
}

/// The components of a sample batched along axis 1 (`in_dims = 1`, `out_dims = 1`, the
/// structure-of-arrays layout): an array `[T; N]`'s element type and length, or a
/// statically sized nalgebra vector's (`SVector<T, N>`, through its storage `[T; N]`).
fn components(t: &Ty) -> Option<(Ty, crate::ir::CExpr)> {
    match t {
        Ty::Array(e, len) => Some(((**e).clone(), len.clone())),
        Ty::Matrix { cols, .. } if cols.is_one() && storage_access(t).is_some() => match crate::batch::storage_ty(t) {
            Some(Ty::Array(e, len)) => Some((*e, len)),
            _ => None,
        },
        _ => None,
    }
}

/// The number of axes of a sample of `t` (an array adds one; torch's `in_dims` counts the
/// batch axis of the stacked samples, so axes `0..=rank` exist).
fn rank(t: &Ty) -> usize {
    match t {
        Ty::Array(e, _) => 1 + rank(e),
        // An `SVector`'s components; a matrix of several columns is batched whole only.
        Ty::Matrix { .. } => usize::from(components(t).is_some()),
        _ => 0,
    }
}

/// The error of an axis `d >= 1` given to `what` (`in_dims` of an argument, `out_dims` of
/// an output) of type `ty`: one it does not have, or one fluxion does not batch along.
fn axis_error(key: &str, d: usize, what: &str, ty: &Ty, span: Span) -> syn::Error {
    let msg = if d > rank(ty) {
        format!(
            "`{key} = {d}` on {what}: a sample of type `{ty}` has no axis {d} (axis 0 is the batch of samples; an array `[T; N]` or a vector `SVector<T, N>` adds axis 1, its components); write `0`{}",
            if key == "in_dims" { " or `None`" } else { "" }
        )
    } else {
        format!("`{key} = {d}` on {what}: fluxion batches along axis 0 (the samples) or 1 (an array's components) only")
    };
    syn::Error::new(span, msg)
}

/// A generator argument's axis: never batched (`randomness` says how the samples draw
/// from it); a batch axis given to it in a tuple of `in_dims` is an error, a single
/// `in_dims` for all arguments skips it.
fn share_generator(o: &Options, (d, span): &mut (Option<usize>, Span), name: &str) -> Result<(), syn::Error> {
    if d.is_some() && matches!(o.in_dims, Some(InDims::Each(..))) {
        return Err(syn::Error::new(
            *span,
            format!(
                "`{name}` is a generator: `vmap` does not batch it; give it `None` in `in_dims`, and `randomness = \"different\"` for each sample its own draws"
            ),
        ));
    }
    *d = None;
    Ok(())
}

/// Whether `cur` draws random numbers (or passes a generator on): under the default
/// `randomness = "error"` that is an error at the first draw, as in torch.func.
fn check_randomness(cur: &Func, r: Randomness, names: &crate::emit::Names) -> Result<(), syn::Error> {
    if r != Randomness::Error {
        return Ok(());
    }
    let rng = cur.params.iter().find(|p| p.ty == Ty::Rng);
    let at = match (cur.draws.first(), rng) {
        (Some(d), _) => d.0,
        (None, Some(p)) => p.span.0,
        (None, None) => return Ok(()),
    };
    let what = match rng {
        Some(p) => format!("`{}`", names.ident(p.var)),
        None => "a generator".to_string(),
    };
    Err(syn::Error::new(
        at,
        format!(
            "`{}` draws random numbers from {what}: under `vmap` say how the samples draw, `#[vmap(randomness = \"different\")]` (each sample its own numbers, from `rng.sample(k)`) or `randomness = \"same\"` (one draw shared by the batch)",
            cur.name
        ),
    ))
}

/// The axis of each argument: `in_dims`, every argument along axis 0 by default.
fn arg_dims(in_dims: &Option<InDims>, n: usize, span: Span) -> Result<Vec<(Option<usize>, Span)>, syn::Error> {
    match in_dims {
        None => Ok(vec![(Some(0), span); n]),
        Some(d) => d.dims(n).map_err(|(span, msg)| syn::Error::new(span, msg)),
    }
}

/// The axis of each output: `out_dims`, every output along axis 0 by default.
fn out_dims(out_dims: &Option<OutDims>, n: usize, tuple: bool, span: Span) -> Result<Vec<(usize, Span)>, syn::Error> {
    match out_dims {
        None => Ok(vec![(0, span); n]),
        Some(d) => d.dims(n, tuple).map_err(|(span, msg)| syn::Error::new(span, msg)),
    }
}

/// The items of `#[vmap]` on `cur`: the kernel, `name`, `try_name`, `name_into` and the
/// hidden helpers an outer `vmap` calls.
#[allow(clippy::too_many_arguments)]
pub(super) fn vmap_items(
    cur: &Func,
    emitted: Option<&Func>,
    order: usize,
    o: &Options,
    site: &Site,
    name: &str,
    vis: &TokenStream,
    generics: &syn::Generics,
    rules: &RuleTable,
) -> Result<(TokenStream, Level), syn::Error> {
    let names = crate::emit::Names::new(cur);
    let mut dims = arg_dims(&o.in_dims, cur.params.len(), o.span)?;
    // Generators are shared arguments; `randomness` says how the samples draw from them.
    for (p, dim) in cur.params.iter().zip(dims.iter_mut()) {
        if p.ty == Ty::Rng {
            share_generator(o, dim, &names.ident(p.var).to_string())?;
        }
    }
    check_randomness(cur, o.randomness, &names)?;
    let batched: Vec<bool> = dims.iter().map(|(d, _)| d.is_some()).collect();
    // What the samples of each batched argument are: floats and fixed arrays of them.
    let mut float = None;
    for (p, (d, dspan)) in cur.params.iter().zip(&dims) {
        let Some(d) = d else { continue };
        if *d >= 1 {
            let what = format!("`{}`", names.ident(p.var));
            if let (Ty::Matrix { .. }, None) = (&p.ty, components(&p.ty)) {
                return Err(syn::Error::new(
                    *dspan,
                    format!(
                        "`in_dims = {d}` on {what}: fluxion batches a nalgebra matrix `{}` of more than one column one matrix per sample only (`in_dims = 0`: a slice of matrices `&[{}]`), not component by component\nhint: write `0`, or take the columns as vectors `SVector<T, R>` (one argument each) or the components as an array `[T; N]` with `in_dims = 1`",
                        p.ty, p.ty
                    ),
                ));
            }
            if *d > 1 || components(&p.ty).is_none() {
                return Err(axis_error("in_dims", *d, &what, &p.ty, *dspan));
            }
        }
        if let Ty::Slice(_) = p.ty {
            return Err(syn::Error::new(
                p.span.0,
                "`vmap` does not batch slices yet (each sample's slice could have its own length): give this argument `None` in `in_dims` to share it with the whole batch",
            ));
        }
        if !packable(&p.ty) {
            return Err(syn::Error::new(
                p.span.0,
                format!(
                    "`vmap` batches arguments of `f64`, `f32`, fixed arrays of them and statically sized nalgebra matrices (`SVector`, `SMatrix`), not `{}`: give this argument `None` in `in_dims` to share it",
                    p.ty
                ),
            ));
        }
        match (float, p.ty.float_ty()) {
            (Some(a), Some(b)) if a != b => {
                return Err(syn::Error::new(
                    p.span.0,
                    "`vmap` batches one float type per function: these arguments mix `f32` and `f64`",
                ))
            }
            (None, Some(b)) => float = Some(b),
            _ => {}
        }
    }
    if !batched.contains(&true) {
        return Err(syn::Error::new(
            o.span,
            "`vmap` needs at least one batched argument (`in_dims`)",
        ));
    }
    if !packable(&cur.ret_ty) && !matches!(&cur.ret_ty, Ty::Tuple(ts) if ts.iter().all(packable)) {
        return Err(syn::Error::new(
            site.ret,
            format!(
                "`vmap` batches results of `f64`, `f32`, fixed arrays of them, statically sized nalgebra matrices, and tuples of these, not `{}`",
                cur.ret_ty
            ),
        ));
    }
    let outs_ty: Vec<Ty> = match &cur.ret_ty {
        Ty::Tuple(ts) => ts.clone(),
        t => vec![t.clone()],
    };
    let tuple = matches!(cur.ret_ty, Ty::Tuple(_));
    let odims = out_dims(&o.out_dims, outs_ty.len(), tuple, o.span)?;
    for (k, (t, (d, dspan))) in outs_ty.iter().zip(&odims).enumerate() {
        if *d >= 1 && (*d > 1 || components(t).is_none()) {
            let what = if tuple {
                format!("output {k}")
            } else {
                "the output".to_string()
            };
            if let Ty::Matrix { .. } = t {
                return Err(syn::Error::new(
                    *dspan,
                    format!(
                        "`out_dims = {d}` on {what}: fluxion returns a nalgebra matrix `{t}` of more than one column one per sample only (`out_dims = 0`: a `Vec<{t}>`), not component by component\nhint: write `0`, or return the columns as vectors `SVector<T, R>` (in a tuple) with `out_dims = 1`"
                    ),
                ));
            }
            return Err(axis_error("out_dims", *d, &what, t, *dspan));
        }
    }
    let float = float.unwrap_or(FloatTy::F64);
    // Under `randomness = "different"` each lane draws from its sample's generator.
    let different = o.randomness == Randomness::Different;
    let spec = BatchSpec {
        batched: cur
            .params
            .iter()
            .zip(&batched)
            .map(|(p, b)| *b || (different && p.ty == Ty::Rng))
            .collect(),
    };
    // nalgebra samples and results: the kernel holds every matrix as its storage array
    // (arrays pack into lanes), read from and written to each sample's `data.0`.
    let storage = cur.params.iter().zip(&batched).any(|(p, b)| *b && holds_matrix(&p.ty)) || holds_matrix(&cur.ret_ty);
    let as_storage = |f: &Func| -> Result<Func, syn::Error> {
        if storage {
            crate::batch::nalgebra_as_storage(f).map_err(|d| syn::Error::new(d.span.unwrap_or(o.span), d.msg))
        } else {
            Ok(f.clone())
        }
    };
    if storage {
        if let Some(p) = cur
            .params
            .iter()
            .find(|p| holds_matrix(&p.ty) && storage_access(&p.ty).is_none())
        {
            return Err(syn::Error::new(
                p.span.0,
                format!(
                    "`vmap` of a function with nalgebra arguments or results takes each matrix alone, not inside `{}`: pass the matrices as arguments of their own",
                    p.ty
                ),
            ));
        }
    }
    let emitted = match emitted.map(as_storage) {
        Some(Ok(e)) => Some(e),
        _ => None,
    };
    let per_sample = as_storage(cur)?;
    // The emitted form of a reverse pass over calls where it batches (the callees' split
    // halves on lanes: one forward pass of each, the unbatched function's bits), else `cur`.
    let mut kernel = match emitted.as_ref().map(|e| batch(e, &spec)) {
        Some(Ok(k)) => k,
        _ => batch(&per_sample, &spec).map_err(|d| syn::Error::new(d.span.unwrap_or(o.span), d.msg))?,
    };
    let kernel_name = format!("__fluxion_kernel_{name}");
    kernel.name = kernel_name.clone();
    let lanes = LaneTarget { float };
    // The kernel writes its result into a buffer of the chunk loop's (its `_into` form):
    // the accumulators of a batched reverse sweep (64 KiB of weight cotangents for
    // `vmap(grad(loss))` of a small MLP) are filled in place, not returned and copied.
    let mut kernel_out = crate::into::into_form(&kernel, kernel_name.clone());
    // Large array outputs go straight into the chunk's samples, lane by lane (no lanes
    // buffer of their size written, then read back and transposed): per-sample gradients
    // of a model's weights (also in the hidden rows form, into the caller's structs).
    let direct = crate::into::lane_rows(&mut kernel_out, &|field| {
        let k = field.unwrap_or(0);
        let t = outs_ty.get(k)?;
        let whole = field.is_some() == tuple;
        (whole && odims.get(k)?.0 == 0 && writes_lane_by_lane(t)).then(|| t.clone())
    });
    // The kernel's buffer holds the other outputs (`()` in place of those it writes
    // straight into the samples).
    let buffer_ty = match &kernel.ret_ty {
        Ty::Tuple(ts) => Ty::Tuple(
            ts.iter()
                .enumerate()
                .map(|(k, t)| if direct.contains(&Some(k)) { Ty::Unit } else { t.clone() })
                .collect(),
        ),
        _ if direct.contains(&None) => Ty::Unit,
        t => t.clone(),
    };
    if let Some(p) = kernel_out
        .params
        .iter_mut()
        .find(|p| kernel_out.vars[p.var].storage == Storage::OutParam)
    {
        p.ty = buffer_ty.clone();
        kernel_out.vars[p.var].ty = buffer_ty.clone();
    }
    let result_zeros = lanes.zeros(&buffer_ty);
    let kernel_tokens = Emitter::with_lanes(&kernel_out, &Scalar, &lanes).function(&FnHeader {
        vis: quote!(),
        name: format_ident!("{}", kernel_name),
        generics,
        attrs: quote! {
            #[doc(hidden)]
            #[inline(always)]
            #[allow(unused_mut, unused_variables, unused_parens, unused_braces, non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
        },
    });
    let vector = lanes.vector();
    let lanes_n: u64 = match float {
        FloatTy::F64 => 4,
        FloatTy::F32 => 8,
    };
    let cost = (crate::cost::run_weight(&kernel.body) / lanes_n).max(1) as usize;

    let lanes_const = quote!(<#vector as ::fluxion::__private::Lanes>::LANES);
    // The arguments: their layouts, and how the chunk loop packs them.
    let taken: Vec<String> = cur.params.iter().map(|p| names.ident(p.var).to_string()).collect();
    let out = if taken.iter().any(|n| n == "out") {
        format_ident!("out_buffer")
    } else {
        format_ident!("out")
    };
    let mut args = Vec::new();
    let mut packs = Vec::new();
    // The full chunks as iterators over the slices (no index checks in the loop): the
    // chunk iterators of the batched arguments, and the packs from their items.
    let mut zip_ins = Vec::new();
    let mut zip_packs = Vec::new();
    let mut zippable = true;
    let mut kernel_args = Vec::new();
    for (p, (d, _)) in cur.params.iter().zip(&dims) {
        let n = names.ident(p.var);
        let t = ty_tokens(&p.ty);
        let packed = format_ident!("{}_lanes", n);
        let range = quote!(__fluxion_start + __fluxion_i..__fluxion_start + __fluxion_i + __fluxion_m);
        let arg = match (d, components(&p.ty), &p.ty) {
            // The structure-of-arrays layout: an array's or an `SVector`'s components, one
            // slice of samples each.
            (Some(1), Some((e, len)), _) => {
                let (e, len) = (ty_tokens(&e), cexpr_tokens(&len, false));
                zippable = false;
                packs.push(quote!(let #packed = ::fluxion::__private::pack_soa::<#vector, #e, #len>(&#n, __fluxion_start + __fluxion_i, __fluxion_m);));
                Arg {
                    name: n.clone(),
                    ty: quote!([&[#e]; #len]),
                    owned: quote!([::std::vec::Vec<#e>; #len]),
                    borrow: Borrow::Components,
                    own: true,
                    shared: None,
                }
            }
            (Some(_), _, _) => {
                let c = format_ident!("{}_chunk", n);
                // A nalgebra sample: its storage array (`pack_with`).
                let pack = |s: TokenStream| match (storage_access(&p.ty), crate::batch::storage_ty(&p.ty)) {
                    (Some(get), Some(st)) => {
                        let st = ty_tokens(&st);
                        quote!(::fluxion::__private::pack_with::<#vector, _, #st>(#s, |__fluxion_s| &__fluxion_s #get))
                    }
                    _ => quote!(::fluxion::__private::pack::<#vector, #t>(#s)),
                };
                let (whole, item) = (pack(quote!(&#n[#range])), pack(quote!(#c)));
                packs.push(quote!(let #packed = #whole;));
                zip_ins.push((
                    c.clone(),
                    quote!(#n[__fluxion_start..__fluxion_start + __fluxion_full].chunks_exact(#lanes_const)),
                ));
                zip_packs.push(quote!(let #packed = #item;));
                Arg {
                    name: n.clone(),
                    ty: quote!(&[#t]),
                    owned: vec_of(&t),
                    borrow: Borrow::Slice,
                    own: true,
                    shared: None,
                }
            }
            // A shared slice is borrowed as the original takes it.
            (None, _, Ty::Slice(e)) => {
                let e = ty_tokens(e);
                Arg {
                    name: n.clone(),
                    ty: quote!(&[#e]),
                    owned: quote!(::std::vec::Vec<#e>),
                    borrow: Borrow::Ref,
                    own: false,
                    shared: Some(p.ty.clone()),
                }
            }
            (None, _, _) => Arg {
                name: n.clone(),
                ty: if p.by_ref { quote!(&#t) } else { quote!(#t) },
                owned: t.clone(),
                borrow: if p.by_ref { Borrow::Ref } else { Borrow::Value },
                own: false,
                shared: Some(p.ty.clone()),
            },
        };
        kernel_args.push(match (d, p.by_ref) {
            (Some(_), true) => quote!(&#packed),
            (Some(_), false) => quote!(#packed),
            // Each sample's generator, `rng.sample(k)`, in its lane.
            (None, by_ref) if different && p.ty == Ty::Rng => {
                let l = lanes.lanes();
                let r = quote!(::fluxion::__private::RngLanes::<#l>::new(&#n, __fluxion_start + __fluxion_i));
                if by_ref {
                    quote!(&#r)
                } else {
                    r
                }
            }
            // A shared nalgebra value: its storage array, as the kernel takes it.
            (None, by_ref) if storage && holds_matrix(&p.ty) => match (storage_access(&p.ty), by_ref) {
                (Some(get), true) => quote!(&#n #get),
                (Some(get), false) => quote!(#n #get),
                (None, _) => quote!(#n),
            },
            (None, _) => quote!(#n),
        });
        args.push(arg);
    }
    let outs: Vec<Out> = outs_ty
        .iter()
        .zip(&odims)
        .map(|(t, (d, _))| match (d, components(t)) {
            (1, Some((e, len))) => {
                let (e, len) = (ty_tokens(&e), cexpr_tokens(&len, false));
                Out {
                    ret: quote!([::std::vec::Vec<#e>; #len]),
                    slot: quote!([&mut [#e]; #len]),
                    components: true,
                }
            }
            _ => {
                let t = ty_tokens(t);
                Out {
                    ret: vec_of(&t),
                    slot: quote!(&mut [#t]),
                    components: false,
                }
            }
        })
        .collect();
    let level = Level {
        name: name.to_string(),
        args,
        outs,
        tuple,
        out: out.clone(),
        cost,
    };

    // The chunk loop of one thread task: pack, kernel, unpack.
    let place = |k: usize| {
        if tuple {
            let k = syn::Index::from(k);
            quote!(#out.#k)
        } else {
            quote!(#out)
        }
    };
    // The field of output `k` in the kernel's result.
    let field_of = |k: usize| if tuple { Some(k) } else { None };
    let unpacks: Vec<TokenStream> = outs_ty
        .iter()
        .zip(&odims)
        .enumerate()
        .filter(|(k, _)| !direct.contains(&field_of(*k)))
        .map(|(k, (t, (d, _)))| {
            let r = if tuple {
                let k = syn::Index::from(k);
                quote!(__fluxion_r.#k)
            } else {
                quote!(__fluxion_r)
            };
            let place = place(k);
            match (d, components(t)) {
                (1, Some((e, len))) => {
                    let (e, len) = (ty_tokens(&e), cexpr_tokens(&len, false));
                    quote!(::fluxion::__private::unpack_soa::<#vector, #e, #len>(&#r, &mut #place, __fluxion_i, __fluxion_m);)
                }
                _ => {
                    let buf = quote!(&mut #place[__fluxion_i..__fluxion_i + __fluxion_m]);
                    unpack_tokens(t, &vector, &r, buf)
                }
            }
        })
        .collect();
    let kernel_ident = format_ident!("{}", kernel_name);
    let chunks_ident = format_ident!("__fluxion_chunks_{}", name);
    let tf = turbofish(generics);
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    let params = level.params();
    let arg_names = level.arg_names();
    let out_param = level.out_param();
    let mut chunk_args: Vec<TokenStream> = arg_names.iter().map(|a| quote!(#a)).collect();
    chunk_args.extend([quote!(#out), quote!(__fluxion_start)]);
    // The outputs written lane by lane: their samples (`lane_rows`, the padding lanes of
    // a partial chunk into a buffer of the task's), and the kernel's arguments.
    let lanes_lit = proc_macro2::Literal::u64_unsuffixed(lanes_n);
    let rows_of = |k: usize, chunk: TokenStream| {
        let (rows, pad) = (
            format_ident!("__fluxion_rows{}", k),
            format_ident!("__fluxion_pad{}", k),
        );
        let z = Scalar.zeros(&outs_ty[k]);
        quote!(let mut #rows = ::fluxion::__private::lane_rows::<_, #lanes_lit>(#chunk, &mut #pad, || #z);)
    };
    let direct_ks: Vec<usize> = (0..outs_ty.len()).filter(|k| direct.contains(&field_of(*k))).collect();
    let rows_args: Vec<TokenStream> = direct_ks
        .iter()
        .map(|k| {
            let rows = format_ident!("__fluxion_rows{}", k);
            quote!(&mut #rows)
        })
        .collect();
    let step_rows: Vec<TokenStream> = direct_ks
        .iter()
        .map(|&k| {
            let place = place(k);
            rows_of(k, quote!(&mut #place[__fluxion_i..__fluxion_i + __fluxion_m]))
        })
        .collect();
    let pads: Vec<TokenStream> = direct_ks
        .iter()
        .map(|&k| {
            let (pad, t) = (format_ident!("__fluxion_pad{}", k), ty_tokens(&outs_ty[k]));
            quote!(let mut #pad: ::core::option::Option<[#t; #lanes_lit]> = ::core::option::Option::None;)
        })
        .collect();
    // One chunk: pack, kernel, unpack (`__fluxion_m` samples from `__fluxion_i`).
    let step = quote! {
        #(#packs)*
        #(#step_rows)*
        #kernel_ident #tf (#(#kernel_args,)* &mut __fluxion_r #(, #rows_args)*);
        #(#unpacks)*
    };
    // The outputs' full chunks and the unpacks into them, for the loop over iterators.
    let mut zip_outs = Vec::new();
    let mut zip_unpacks = Vec::new();
    let mut zip_rows = Vec::new();
    for (k, (t, (d, _))) in outs_ty.iter().zip(&odims).enumerate() {
        if *d != 0 {
            zippable = false;
            continue;
        }
        let r = if tuple {
            let k = syn::Index::from(k);
            quote!(__fluxion_r.#k)
        } else {
            quote!(__fluxion_r)
        };
        let c = format_ident!("__fluxion_out{}", k);
        let place = place(k);
        zip_outs.push((
            c.clone(),
            quote!(#place[..__fluxion_full].chunks_exact_mut(#lanes_const)),
        ));
        match direct.contains(&field_of(k)) {
            true => zip_rows.push(rows_of(k, quote!(#c))),
            false => zip_unpacks.push(unpack_tokens(t, &vector, &r, quote!(#c))),
        }
    }
    let mut all = zip_ins.iter().chain(&zip_outs);
    let first = all.next().cloned().filter(|_| zippable && !zip_ins.is_empty());
    let full_chunks = if let Some((first, first_it)) = first {
        // `a.zip(b).zip(c)` and its pattern `((a, b), c)`.
        let (mut pat, mut it) = (quote!(#first), first_it);
        for (c, i) in all {
            pat = quote!((#pat, #c));
            it = quote!(#it.zip(#i));
        }
        quote! {
            for #pat in #it {
                #(#zip_packs)*
                #(#zip_rows)*
                #kernel_ident #tf (#(#kernel_args,)* &mut __fluxion_r #(, #rows_args)*);
                #(#zip_unpacks)*
                // The sample index (each sample's generator under `randomness`).
                __fluxion_i += #lanes_const;
            }
        }
    } else {
        quote! {
            while __fluxion_i < __fluxion_full {
                let __fluxion_m = #lanes_const;
                #step
                __fluxion_i += __fluxion_m;
            }
        }
    };
    let chunk_loop = if cost <= SMALL_KERNEL {
        // A small kernel: the full chunks at a constant width (their length checks and
        // partial-chunk branches fold away), then the last, partial one. The kernel's
        // code appears twice, which a small kernel affords.
        quote! {
            let __fluxion_full = __fluxion_n - __fluxion_n % #lanes_const;
            #full_chunks
            if __fluxion_i < __fluxion_n {
                let __fluxion_m = __fluxion_n - __fluxion_i;
                #step
            }
        }
    } else {
        quote! {
            while __fluxion_i < __fluxion_n {
                let __fluxion_m = ::core::cmp::min(__fluxion_n - __fluxion_i, #lanes_const);
                #step
                __fluxion_i += __fluxion_m;
            }
        }
    };
    let mut chunks = quote! {
        #[doc(hidden)]
        #[inline(always)]
        #[allow(unused_mut, clippy::all, clippy::pedantic, clippy::nursery)]
        fn #chunks_ident #gen (#(#params,)* mut #out_param, __fluxion_start: usize) #where_clause {
            let __fluxion_n = ::fluxion::__private::OutSlices::samples(&#out);
            let mut __fluxion_i = 0;
            let mut __fluxion_r = #result_zeros;
            #(#pads)*
            #chunk_loop
        }
    };
    let run_chunks = if uses_lane_kernels(&kernel) {
        let (items, call) = simd_call(&chunks, &chunk_args)?;
        chunks.extend(items);
        call
    } else {
        quote!(#chunks_ident #tf (#(#chunk_args,)*))
    };
    let default_chunk = match o.chunk_size {
        Some((k, _)) => quote!(.or(::core::option::Option::Some(#k))),
        None => quote!(),
    };
    let drive = quote! {
        let __fluxion_grain = ::fluxion::__private::grain(
            chunk_size #default_chunk,
            #cost,
            <#vector as ::fluxion::__private::Lanes>::LANES,
        );
        ::fluxion::__private::drive(__fluxion_grain, #out, &|__fluxion_start: usize, #out| {
            #run_chunks
        });
    };
    let rows = if o.rows && odims.iter().all(|(d, _)| *d == 0) && !outs_ty.iter().any(holds_matrix) {
        let r = RowsForm {
            name,
            vis,
            generics,
            tuple,
            out: &out,
            outs_ty: &outs_ty,
            vector: &vector,
            packs: &packs,
            kernel_call: quote!(#kernel_ident #tf (#(#kernel_args,)* &mut __fluxion_r #(, #rows_args)*);),
            direct: &direct_ks,
            result_zeros: &result_zeros,
            simd: uses_lane_kernels(&kernel),
            cost,
            default_chunk: &default_chunk,
            lanes_n,
        };
        r.items(&level)?
    } else {
        quote!()
    };
    // The result's zeros: one per sample (per component and sample along axis 1).
    let n = quote!(__fluxion_len);
    let zeros: Vec<TokenStream> = outs_ty
        .iter()
        .zip(&odims)
        .map(|(t, (d, _))| match (d, components(t)) {
            (1, Some((e, _))) => {
                let z = Scalar.zeros(&e);
                quote!(::core::array::from_fn(|_| ::std::vec![#z; #n]))
            }
            _ => {
                let z = Scalar.zeros(t);
                quote!(::std::vec![#z; #n])
            }
        })
        .collect();
    let zeros = if tuple {
        quote!((#(#zeros,)*))
    } else {
        quote!(#(#zeros)*)
    };

    let doc = format!(
        "[`{}`] over a batch, torch.func's `vmap` ({}; {}). Each sample's result is what [`{}`] gives for it (within the lane functions' documented error), in sample order; the batch runs on SIMD lanes, {} samples at a time.\n\nPanics if the batched arguments have different numbers of samples.\n\nMirrors {}. Generated by fluxion.",
        cur.name,
        in_dims_text(cur, &dims),
        out_dims_text(&odims, tuple),
        cur.name,
        lanes_n,
        Transform::Vmap.mirrors(),
    );
    let doc = if o.show {
        format!(
            "{doc}\n\nThe kernel (one chunk of samples on lanes):\n\n```text\n{}```",
            pretty(&kernel_tokens)
        )
    } else {
        doc
    };
    let front = level.front(
        &doc,
        vis,
        generics,
        Bodies {
            into: drive,
            len: level.len_body(),
            work: quote!(#n),
            check: level.check_body(quote!()),
            zeros,
        },
    );
    // Callable and differentiable from other annotated functions.
    // Not for nalgebra samples or results yet: its companions pack plain slices.
    let plain = dims.iter().all(|(d, _)| matches!(d, None | Some(0))) && odims.iter().all(|(d, _)| *d == 0) && !storage;
    let holder = super::batched_holder::holder(
        cur, order, &batched, plain, name, vis, generics, rules, float, different,
    );
    Ok((
        quote! {
            #kernel_tokens
            #front
            #chunks
            #rows
            #holder
        },
        level,
    ))
}

/// What the hidden `name_rows` form of a batch is built from: the chunk loop's pieces.
struct RowsForm<'a> {
    name: &'a str,
    vis: &'a TokenStream,
    generics: &'a syn::Generics,
    tuple: bool,
    out: &'a syn::Ident,
    outs_ty: &'a [Ty],
    vector: &'a TokenStream,
    packs: &'a [TokenStream],
    kernel_call: TokenStream,
    /// The outputs the kernel writes straight into the samples (`rows` arguments
    /// `__fluxion_rows{k}` after the buffer), by index.
    direct: &'a [usize],
    result_zeros: &'a TokenStream,
    simd: bool,
    cost: usize,
    default_chunk: &'a TokenStream,
    lanes_n: u64,
}

impl RowsForm<'_> {
    /// `name_rows(args.., out: FieldRows<S, F>, chunk_size)`: `name_into` writing sample
    /// `k`'s outputs into the places `field(&mut rows[k])` (a gradient with respect to a
    /// parameter struct, written into each sample's struct), a full chunk of lanes with
    /// `Pack::unpack_refs` (blocks transposed), the last one lane by lane.
    fn items(&self, level: &Level) -> Result<TokenStream, syn::Error> {
        let RowsForm {
            name,
            vis,
            generics,
            tuple,
            out,
            outs_ty,
            vector,
            packs,
            kernel_call,
            direct,
            result_zeros,
            simd,
            cost,
            default_chunk,
            lanes_n,
        } = self;
        let tys: Vec<TokenStream> = outs_ty.iter().map(ty_tokens).collect();
        let refs = if *tuple {
            quote!((#(&mut #tys,)*))
        } else {
            quote!(#(&mut #tys)*)
        };
        let mut rg = (*generics).clone();
        rg.params.push(syn::parse_quote!(__FluxionS: ::core::marker::Send));
        rg.params.push(syn::parse_quote!(
            __FluxionF: ::core::ops::Fn(&mut __FluxionS) -> #refs
                + ::core::marker::Copy
                + ::core::marker::Send
                + ::core::marker::Sync
        ));
        let (gen, where_clause) = crate::emit::generic_parts(&rg);
        let tf = turbofish(&rg);
        let utf = turbofish(generics);
        let params = level.params();
        let arg_names = level.arg_names();
        let rows_ty = quote!(::fluxion::__private::FieldRows<'_, __FluxionS, __FluxionF>);
        let lanes_n = *lanes_n as usize;
        // The places of lane `l`'s outputs, `__fluxion_p{l}_{k}`.
        let place = |l: usize, k: usize| format_ident!("__fluxion_p{}_{}", l, k);
        let pat = |l: usize| {
            let ps: Vec<syn::Ident> = (0..tys.len()).map(|k| place(l, k)).collect();
            if *tuple {
                quote!((#(#ps,)*))
            } else {
                quote!(#(#ps)*)
            }
        };
        let result = |k: usize| {
            if *tuple {
                let k = syn::Index::from(k);
                quote!(__fluxion_r.#k)
            } else {
                quote!(__fluxion_r)
            }
        };
        let lane_ids: Vec<syn::Ident> = (0..lanes_n).map(|l| format_ident!("__fluxion_s{}", l)).collect();
        let lane_pats: Vec<TokenStream> = (0..lanes_n).map(pat).collect();
        let full: Vec<TokenStream> = tys
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let r = result(k);
                let ps: Vec<syn::Ident> = (0..lanes_n).map(|l| place(l, k)).collect();
                quote!(<#t as ::fluxion::__private::Pack<#vector>>::unpack_refs(&#r, &mut [#(#ps),*]);)
            })
            .collect();
        let one = pat(0);
        let partial: Vec<TokenStream> = tys
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let r = result(k);
                let p = place(0, k);
                quote!(<#t as ::fluxion::__private::Pack<#vector>>::write_lane(&#r, __fluxion_l, #p);)
            })
            .collect();
        let unpack = quote! {
            let __fluxion_f = #out.field();
            match &mut #out.rows_mut()[__fluxion_i..__fluxion_i + __fluxion_m] {
                [#(#lane_ids),*] => {
                    #(let #lane_pats = __fluxion_f(#lane_ids);)*
                    #(#full)*
                }
                __fluxion_rest => {
                    for (__fluxion_l, __fluxion_s) in __fluxion_rest.iter_mut().enumerate() {
                        let #one = __fluxion_f(__fluxion_s);
                        #(#partial)*
                    }
                }
            }
        };
        // With outputs written straight into the samples: each lane's places (`None` past
        // a partial chunk's samples), those outputs' places handed to the kernel (the
        // padding lanes' in a buffer of the task's, `rows_or_pad`), the others unpacked
        // after it.
        let (step, pads) = if direct.is_empty() {
            (quote!(#kernel_call #unpack), quote!())
        } else {
            let opt = |l: usize, k: usize| format_ident!("__fluxion_o{}_{}", l, k);
            let lanes: Vec<TokenStream> = (0..lanes_n)
                .map(|l| {
                    let os: Vec<syn::Ident> = (0..tys.len()).map(|k| opt(l, k)).collect();
                    let somes: Vec<TokenStream> = (0..tys.len())
                        .map(|k| {
                            let p = place(l, k);
                            quote!(::core::option::Option::Some(#p))
                        })
                        .collect();
                    let nones: Vec<TokenStream> = tys
                        .iter()
                        .map(|t| quote!(::core::option::Option::<&mut #t>::None))
                        .collect();
                    let p = pat(l);
                    quote! {
                        let (#(#os,)*) = match __fluxion_it.next().map(|__fluxion_s| __fluxion_f(__fluxion_s)) {
                            ::core::option::Option::Some(#p) => (#(#somes,)*),
                            ::core::option::Option::None => (#(#nones,)*),
                        };
                    }
                })
                .collect();
            let rows: Vec<TokenStream> = direct
                .iter()
                .map(|&k| {
                    let (r, pad) = (
                        format_ident!("__fluxion_rows{}", k),
                        format_ident!("__fluxion_pad{}", k),
                    );
                    let os: Vec<syn::Ident> = (0..lanes_n).map(|l| opt(l, k)).collect();
                    let z = Scalar.zeros(&outs_ty[k]);
                    quote!(let mut #r = ::fluxion::__private::rows_or_pad([#(#os),*], &mut #pad, || #z);)
                })
                .collect();
            let rest: Vec<TokenStream> = tys
                .iter()
                .enumerate()
                .filter(|(k, _)| !direct.contains(k))
                .map(|(k, t)| {
                    let r = result(k);
                    let os: Vec<syn::Ident> = (0..lanes_n).map(|l| opt(l, k)).collect();
                    let ps: Vec<syn::Ident> = (0..lanes_n).map(|l| place(l, k)).collect();
                    let somes = ps.iter().map(|p| quote!(::core::option::Option::Some(#p)));
                    quote! {
                        match [#(#os),*] {
                            [#(#somes),*] => <#t as ::fluxion::__private::Pack<#vector>>::unpack_refs(&#r, &mut [#(#ps),*]),
                            __fluxion_places => {
                                for (__fluxion_l, __fluxion_p) in __fluxion_places.into_iter().enumerate() {
                                    if let ::core::option::Option::Some(__fluxion_p) = __fluxion_p {
                                        <#t as ::fluxion::__private::Pack<#vector>>::write_lane(&#r, __fluxion_l, __fluxion_p);
                                    }
                                }
                            }
                        }
                    }
                })
                .collect();
            let pads: Vec<TokenStream> = direct
                .iter()
                .map(|&k| {
                    let (pad, t) = (format_ident!("__fluxion_pad{}", k), &tys[k]);
                    quote!(let mut #pad: ::core::option::Option<[#t; #lanes_n]> = ::core::option::Option::None;)
                })
                .collect();
            let step = quote! {
                let __fluxion_f = #out.field();
                let mut __fluxion_it = #out.rows_mut()[__fluxion_i..__fluxion_i + __fluxion_m].iter_mut();
                #(#lanes)*
                #(#rows)*
                #kernel_call
                #(#rest)*
            };
            (step, quote!(#(#pads)*))
        };
        let lanes_const = quote!(<#vector as ::fluxion::__private::Lanes>::LANES);
        let chunks_ident = format_ident!("__fluxion_rows_chunks_{}", name);
        let rows_ident = format_ident!("{}_rows", name);
        let check_ident = format_ident!("__fluxion_check_{}", name);
        let len_ident = format_ident!("__fluxion_len_{}", name);
        let fname = level.first().map(|a| a.name.to_string()).unwrap_or_default();
        let what = out.to_string();
        let mut chunk_args: Vec<TokenStream> = arg_names.iter().map(|a| quote!(#a)).collect();
        chunk_args.extend([quote!(#out), quote!(__fluxion_start)]);
        let mut chunks = quote! {
            #[doc(hidden)]
            #[inline(always)]
            #[allow(unused_mut, clippy::all, clippy::pedantic, clippy::nursery)]
            fn #chunks_ident #gen (#(#params,)* mut #out: #rows_ty, __fluxion_start: usize) #where_clause {
                let __fluxion_n = ::fluxion::__private::OutSlices::samples(&#out);
                let mut __fluxion_i = 0;
                let mut __fluxion_r = #result_zeros;
                #pads
                while __fluxion_i < __fluxion_n {
                    let __fluxion_m = ::core::cmp::min(__fluxion_n - __fluxion_i, #lanes_const);
                    #(#packs)*
                    #step
                    __fluxion_i += __fluxion_m;
                }
            }
        };
        let run = if *simd {
            let (items, call) = simd_call(&chunks, &chunk_args)?;
            chunks.extend(items);
            call
        } else {
            quote!(#chunks_ident #tf (#(#chunk_args,)*))
        };
        Ok(quote! {
            #[doc(hidden)]
            #[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)]
            #vis fn #rows_ident #gen (#(#params,)* #out: #rows_ty, chunk_size: ::core::option::Option<usize>) #where_clause {
                ::fluxion::__private::or_panic(#check_ident #utf (#(#arg_names),*));
                let __fluxion_len = #len_ident #utf (#(#arg_names),*);
                ::fluxion::__private::check_batch(#what, ::fluxion::__private::OutSlices::samples(&#out), #fname, __fluxion_len);
                let __fluxion_grain = ::fluxion::__private::grain(
                    chunk_size #default_chunk,
                    #cost,
                    #lanes_const,
                );
                ::fluxion::__private::drive(__fluxion_grain, #out, &|__fluxion_start: usize, #out| {
                    #run
                });
            }
            #chunks
        })
    }
}

/// The items of a `vmap` stacked on the `vmap` that generated `inner`: `name` maps
/// `inner`'s function over an outer batch (each outer sample an inner batch, run on lanes
/// by `inner`'s functions).
pub(super) fn nested_items(
    inner: &Level,
    o: &Options,
    name: &str,
    vis: &TokenStream,
    generics: &syn::Generics,
) -> Result<(TokenStream, Level), syn::Error> {
    let mut dims = arg_dims(&o.in_dims, inner.args.len(), o.span)?;
    // Generators stay shared; `randomness` says what each outer sample draws from.
    for (a, dim) in inner.args.iter().zip(dims.iter_mut()) {
        if a.shared != Some(Ty::Rng) {
            continue;
        }
        share_generator(o, dim, &a.name.to_string())?;
        if o.randomness == Randomness::Error {
            return Err(syn::Error::new(
                o.span,
                format!(
                    "`{}` draws random numbers from `{}`: under `vmap` say how the outer samples draw, `randomness = \"different\"` (each its own numbers, from `rng.sample(k)`) or `randomness = \"same\"` (the same draws for every outer sample)",
                    inner.name, a.name
                ),
            ));
        }
    }
    if !dims.iter().any(|(d, _)| d.is_some()) {
        return Err(syn::Error::new(
            o.span,
            "`vmap` needs at least one batched argument (`in_dims`)",
        ));
    }
    let odims = out_dims(&o.out_dims, inner.outs.len(), inner.tuple, o.span)?;
    if let Some((d, span)) = odims.iter().find(|(d, _)| *d != 0) {
        return Err(syn::Error::new(
            *span,
            format!(
                "`out_dims = {d}` on a `vmap` of a `vmap`: the outer batch comes first (`Vec<Vec<R>>`, one inner batch per outer sample); write `out_dims = 0` (the inner `vmap` takes `out_dims` for its own outputs)"
            ),
        ));
    }
    let idx = quote!(__fluxion_o);
    let mut args = Vec::new();
    // Each argument of the inner function for the outer sample `__fluxion_o`.
    let mut at = Vec::new();
    for (a, (d, dspan)) in inner.args.iter().zip(&dims) {
        let n = &a.name;
        let what = format!("`{n}`");
        match d {
            // Outer sample `o`'s generator, `rng.sample(o)`.
            None if a.shared == Some(Ty::Rng) && o.randomness == Randomness::Different => {
                let r = quote!(::fluxion::__private::Rng::sample(&#n, #idx));
                at.push(if a.borrow == Borrow::Ref { quote!(&#r) } else { r });
                args.push(Arg { own: false, ..a.clone() });
            }
            None => {
                at.push(quote!(#n));
                args.push(Arg { own: false, ..a.clone() });
            }
            Some(0) => {
                let owned = &a.owned;
                at.push(match a.borrow {
                    Borrow::Slice => quote!(&#n[#idx][..]),
                    Borrow::Components => quote!(#n[#idx].each_ref().map(|c| c.as_slice())),
                    Borrow::Ref => quote!(&#n[#idx]),
                    Borrow::Value => quote!(#n[#idx]),
                });
                args.push(Arg {
                    name: n.clone(),
                    ty: quote!(&[#owned]),
                    owned: vec_of(owned),
                    borrow: Borrow::Slice,
                    own: true,
                    shared: None,
                });
            }
            Some(d) => match (&a.shared, a.shared.as_ref().and_then(components)) {
                (Some(t), Some((e, len))) if *d == 1 => {
                    let (e, len) = (ty_tokens(&e), cexpr_tokens(&len, false));
                    let array = quote!(::core::array::from_fn::<_, #len, _>(|j| #n[j][#idx]));
                    // An `SVector` from its components.
                    let sample = if let Ty::Matrix { .. } = t {
                        let t = ty_tokens(t);
                        quote!(<#t as ::core::convert::From<[#e; #len]>>::from(#array))
                    } else {
                        array
                    };
                    at.push(if a.borrow == Borrow::Ref {
                        quote!(&#sample)
                    } else {
                        sample
                    });
                    args.push(Arg {
                        name: n.clone(),
                        ty: quote!([&[#e]; #len]),
                        owned: quote!([::std::vec::Vec<#e>; #len]),
                        borrow: Borrow::Components,
                        own: true,
                        shared: None,
                    });
                }
                (Some(t), _) => return Err(axis_error("in_dims", *d, &what, t, *dspan)),
                (None, _) => {
                    return Err(syn::Error::new(
                        *dspan,
                        format!(
                            "`in_dims = {d}` on {what}, which the inner `vmap` batches: the outer batch of a nested `vmap` comes first, `in_dims = 0` (one inner batch per outer sample) or `None` (the same inner batch for every outer sample)"
                        ),
                    ))
                }
            },
        }
    }
    let outs: Vec<Out> = inner
        .outs
        .iter()
        .map(|x| {
            let r = &x.ret;
            Out {
                ret: vec_of(r),
                slot: quote!(&mut [#r]),
                components: false,
            }
        })
        .collect();
    let level = Level {
        name: name.to_string(),
        args,
        outs,
        tuple: inner.tuple,
        out: inner.out.clone(),
        cost: inner.cost,
    };
    let tf = turbofish(generics);
    let out = &level.out;
    // The inner buffers of outer sample `o`: slices of the owned per-sample results.
    let slots = borrow_outs(&inner.outs, level.tuple, |k| match k {
        Some(k) => quote!(#out.#k[__fluxion_k]),
        None => quote!(#out[__fluxion_k]),
    });
    let inner_into = format_ident!("{}_into", inner.name);
    let inner_work = format_ident!("__fluxion_work_{}", inner.name);
    let inner_check = format_ident!("__fluxion_check_{}", inner.name);
    let inner_zeros = format_ident!("__fluxion_zeros_{}", inner.name);
    let cost = level.cost;
    let default_chunk = match o.chunk_size {
        Some((k, _)) => quote!(.or(::core::option::Option::Some(#k))),
        None => quote!(),
    };
    let n = quote!(__fluxion_len);
    let arg_names = level.arg_names();
    let work = quote!(__fluxion_work);
    let work_ident = format_ident!("__fluxion_work_{}", name);
    let into = quote! {
        // The grain in outer samples: the kernel's cost times the inner samples per outer one.
        let #work = #work_ident #tf (#(#arg_names),*);
        let __fluxion_grain = ::fluxion::__private::grain(
            chunk_size #default_chunk,
            #cost * (#work / #n.max(1)).max(1),
            1,
        );
        ::fluxion::__private::drive(__fluxion_grain, #out, &|__fluxion_start: usize, #out| {
            for __fluxion_k in 0..::fluxion::__private::OutSlices::samples(&#out) {
                // The arguments at the outer sample, the buffers at the task's own index.
                let #idx = __fluxion_start + __fluxion_k;
                #inner_into #tf (#(#at,)* #slots, ::core::option::Option::None);
            }
        });
    };
    let work_body = quote! {
        let mut __fluxion_total = 0usize;
        for #idx in 0..#n {
            __fluxion_total += #inner_work #tf (#(#at),*);
        }
        __fluxion_total
    };
    let check_inner = quote! {
        for #idx in 0..#n {
            ::fluxion::__private::in_sample(#idx, #inner_check #tf (#(#at),*))?;
        }
    };
    let zeros = if level.tuple {
        let vs: Vec<syn::Ident> = (0..inner.outs.len())
            .map(|k| format_ident!("__fluxion_z{}", k))
            .collect();
        let ks: Vec<syn::Index> = (0..inner.outs.len()).map(syn::Index::from).collect();
        quote! {{
            #(let mut #vs = ::std::vec::Vec::with_capacity(#n);)*
            for #idx in 0..#n {
                let __fluxion_r = #inner_zeros #tf (#(#at),*);
                #(#vs.push(__fluxion_r.#ks);)*
            }
            (#(#vs,)*)
        }}
    } else {
        quote! {{
            let mut __fluxion_z = ::std::vec::Vec::with_capacity(#n);
            for #idx in 0..#n {
                __fluxion_z.push(#inner_zeros #tf (#(#at),*));
            }
            __fluxion_z
        }}
    };
    let doc = format!(
        "[`{}`] over an outer batch: torch.func's `vmap` of a `vmap` ({}). Each outer sample runs [`{}`] on its inner batch (on SIMD lanes); results are outer batch first, one inner batch per outer sample.\n\nPanics if the batched arguments have different numbers of samples, at either level.\n\nMirrors {}. Generated by fluxion.",
        inner.name,
        level
            .args
            .iter()
            .zip(&dims)
            .map(|(a, (d, _))| format!(
                "`{}` {}",
                a.name,
                match d {
                    Some(0) => "one per outer sample",
                    Some(_) => "one slice per component",
                    None => "the same for every outer sample",
                }
            ))
            .collect::<Vec<_>>()
            .join(", "),
        inner.name,
        Transform::Vmap.mirrors(),
    );
    let front = level.front(
        &doc,
        vis,
        generics,
        Bodies {
            into,
            len: level.len_body(),
            work: work_body,
            check: level.check_body(check_inner),
            zeros,
        },
    );
    Ok((front, level))
}

/// The bodies of a level's functions.
struct Bodies {
    /// The `_into` form after the checks (`__fluxion_len` in scope).
    into: TokenStream,
    /// The number of samples (no checks).
    len: TokenStream,
    /// The number of innermost samples (`__fluxion_len` in scope).
    work: TokenStream,
    /// The checks, `?` on each (`Ok(())` follows).
    check: TokenStream,
    /// The result of zeros (`__fluxion_len` in scope).
    zeros: TokenStream,
}

impl Level {
    fn params(&self) -> Vec<TokenStream> {
        self.args
            .iter()
            .map(|a| {
                let (n, t) = (&a.name, &a.ty);
                quote!(#n: #t)
            })
            .collect()
    }

    fn arg_names(&self) -> Vec<syn::Ident> {
        self.args.iter().map(|a| a.name.clone()).collect()
    }

    fn ret_ty(&self) -> TokenStream {
        let rs: Vec<&TokenStream> = self.outs.iter().map(|x| &x.ret).collect();
        if self.tuple {
            quote!((#(#rs,)*))
        } else {
            quote!(#(#rs)*)
        }
    }

    fn out_param(&self) -> TokenStream {
        let out = &self.out;
        let ss: Vec<&TokenStream> = self.outs.iter().map(|x| &x.slot).collect();
        if self.tuple {
            quote!(#out: (#(#ss,)*))
        } else {
            quote!(#out: #(#ss)*)
        }
    }

    /// The first argument batched at this level: the one the others are compared with.
    fn first(&self) -> Option<&Arg> {
        self.args.iter().find(|a| a.own)
    }

    /// How many samples the batched argument `a` holds (its components' length along
    /// axis 1), without checks.
    fn count(a: &Arg) -> TokenStream {
        let n = &a.name;
        match a.borrow {
            Borrow::Components => quote!(#n.first().map_or(0, |c| c.len())),
            _ => quote!(#n.len()),
        }
    }

    fn len_body(&self) -> TokenStream {
        match self.first() {
            Some(a) => Self::count(a),
            None => quote!(0),
        }
    }

    /// The checks of this level's batched arguments (their components agree, and each has
    /// as many samples as the first), then `more`.
    fn check_body(&self, more: TokenStream) -> TokenStream {
        let mut out = TokenStream::new();
        let first = self
            .first()
            .map(|a| (a.name.to_string(), format_ident!("__fluxion_{}_n", a.name)));
        for a in self.args.iter().filter(|a| a.own) {
            let n = &a.name;
            let sn = n.to_string();
            let len = format_ident!("__fluxion_{}_n", n);
            let lens = quote!(#n.each_ref().map(|c| c.len()));
            out.extend(match (&first, a.borrow) {
                // The first: its number of samples (its components agreeing).
                (Some((f, _)), Borrow::Components) if *f == sn => {
                    quote!(let #len = ::fluxion::__private::try_components(#sn, #lens)?;)
                }
                (Some((f, _)), _) if *f == sn => quote!(let #len = #n.len();),
                // The others: as many as the first.
                (Some((f, flen)), Borrow::Components) => {
                    quote!(::fluxion::__private::try_check_components(#sn, #lens, #f, #flen)?;)
                }
                (Some((f, flen)), _) => quote!(::fluxion::__private::try_check_batch(#sn, #n.len(), #f, #flen)?;),
                (None, _) => quote!(),
            });
        }
        if more.is_empty() {
            return out;
        }
        let n = match &first {
            Some((_, flen)) => quote!(#flen),
            None => quote!(0usize),
        };
        quote! {
            #out
            let __fluxion_len = #n;
            #more
        }
    }

    /// `name`, `try_name`, `name_into` and the hidden helpers, from their bodies.
    fn front(&self, doc: &str, vis: &TokenStream, generics: &syn::Generics, b: Bodies) -> TokenStream {
        let name = &self.name;
        let tf = turbofish(generics);
        let (gen, where_clause) = crate::emit::generic_parts(generics);
        let params = self.params();
        let arg_names = self.arg_names();
        let out = &self.out;
        let out_param = self.out_param();
        let ret_ty = self.ret_ty();
        let name_ident = format_ident!("{}", name);
        let try_ident = format_ident!("try_{}", name);
        let into_ident = format_ident!("{}_into", name);
        let len_ident = format_ident!("__fluxion_len_{}", name);
        let work_ident = format_ident!("__fluxion_work_{}", name);
        let check_ident = format_ident!("__fluxion_check_{}", name);
        let zeros_ident = format_ident!("__fluxion_zeros_{}", name);
        let n = quote!(__fluxion_len);
        // The buffers of the allocating form: its result, borrowed.
        let z = quote!(__fluxion_out);
        let borrows = borrow_outs(&self.outs, self.tuple, |k| match k {
            Some(k) => quote!(#z.#k),
            None => quote!(#z),
        });
        let fname = self.first().map(|a| a.name.to_string()).unwrap_or_default();
        let out_checks: Vec<TokenStream> = self
            .outs
            .iter()
            .enumerate()
            .map(|(k, x)| {
                let (place, what) = if self.tuple {
                    let k = syn::Index::from(k);
                    (quote!(#out.#k), format!("{out}.{}", k.index))
                } else {
                    (quote!(#out), out.to_string())
                };
                if x.components {
                    quote!(::fluxion::__private::or_panic(::fluxion::__private::try_check_components(
                        #what, #place.each_ref().map(|c| c.len()), #fname, #n
                    ));)
                } else {
                    quote!(::fluxion::__private::check_batch(#what, #place.len(), #fname, #n);)
                }
            })
            .collect();
        let Bodies {
            into,
            len,
            work,
            check,
            zeros,
        } = b;
        let doc_try = format!(
            "[`{name}`], or `Err` naming the batched argument whose number of samples differs from the first one's (where [`{name}`] panics)."
        );
        let doc_into = format!(
            "Writes what [`{name}`] returns into `{out}` (one slot per sample; a tuple result gives a tuple of buffers): no allocation.\n\n`chunk_size`: the samples per thread task (torch.func's `chunk_size`); `None` takes the attribute's, else a size from the kernel's cost. Batches larger than that are split across threads (with fluxion's `parallel` feature); every sample's result is the same bit for bit whatever the split.\n\nPanics if the batched arguments or `{out}` have different numbers of samples, or if `chunk_size` is `Some(0)`."
        );
        quote! {
            #[doc = #doc]
            #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
            #vis fn #name_ident #gen (#(#params),*) -> #ret_ty #where_clause {
                ::fluxion::__private::or_panic(#check_ident #tf (#(#arg_names),*));
                let mut #z = #zeros_ident #tf (#(#arg_names),*);
                #into_ident #tf (#(#arg_names,)* #borrows, ::core::option::Option::None);
                #z
            }
            #[doc = #doc_try]
            #[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)]
            #vis fn #try_ident #gen (#(#params),*) -> ::core::result::Result<#ret_ty, ::fluxion::BatchError> #where_clause {
                #check_ident #tf (#(#arg_names),*)?;
                ::core::result::Result::Ok(#name_ident #tf (#(#arg_names),*))
            }
            #[doc = #doc_into]
            #[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)]
            #vis fn #into_ident #gen (#(#params,)* #out_param, chunk_size: ::core::option::Option<usize>) #where_clause {
                ::fluxion::__private::or_panic(#check_ident #tf (#(#arg_names),*));
                let #n = #len_ident #tf (#(#arg_names),*);
                #(#out_checks)*
                #into
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
            fn #len_ident #gen (#(#params),*) -> usize #where_clause {
                #len
            }
            #[doc(hidden)]
            #[allow(dead_code, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
            fn #work_ident #gen (#(#params),*) -> usize #where_clause {
                let #n = #len_ident #tf (#(#arg_names),*);
                #work
            }
            #[doc(hidden)]
            #[allow(dead_code, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
            fn #check_ident #gen (#(#params),*) -> ::core::result::Result<(), ::fluxion::BatchError> #where_clause {
                #check
                ::core::result::Result::Ok(())
            }
            #[doc(hidden)]
            #[allow(dead_code, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
            fn #zeros_ident #gen (#(#params),*) -> #ret_ty #where_clause {
                let #n = #len_ident #tf (#(#arg_names),*);
                #zeros
            }
        }
    }
}

/// The `_into` buffers borrowed from owned results: each output's place (`place(Some(k))`
/// for output `k` of a tuple, `place(None)` for the one output) as `&mut [R]`, or one
/// slice per component (`out_dims = 1`); a tuple of them for a tuple result.
fn borrow_outs(outs: &[Out], tuple: bool, place: impl Fn(Option<syn::Index>) -> TokenStream) -> TokenStream {
    let each = outs.iter().enumerate().map(|(k, x)| {
        let place = place(tuple.then(|| syn::Index::from(k)));
        if x.components {
            quote!(#place.each_mut().map(|c| c.as_mut_slice()))
        } else {
            quote!(&mut #place[..])
        }
    });
    if tuple {
        quote!((#(#each,)*))
    } else {
        quote!(#(#each)*)
    }
}

/// The largest kernel cost per sample (`cost::run_weight` over the lanes) whose chunk loop
/// runs full chunks at a constant width and the partial one apart (two copies of the
/// kernel): measured on the Lennard-Jones kernel (cost 13), 1.63 -> 1.45 ms per 10^6
/// samples.
const SMALL_KERNEL: usize = 64;

/// Whether a kernel has code that vectorises to the widest features of the function it
/// is compiled in, and so is worth a second copy compiled for AVX2 (`best_simd`): lane
/// functions written as scalar code over the lanes (`exp`, `tanh`, `ln`, ..), and the
/// lanes' arithmetic, which is array code too (any primitive on lanes).
pub(super) fn uses_lane_kernels(k: &Func) -> bool {
    let mut any = false;
    walk_stmts(&k.body, &mut |s| {
        if let Stmt::Let(v, Expr::Prim(..)) = s {
            if matches!(k.vars[*v].ty, Ty::Lanes(_)) {
                any = true;
            }
        }
    });
    any
}

/// The path from a statically sized nalgebra value to its storage array (the kernel's
/// form of it): `.data.0[0]` for a vector (`[T; N]`), `.data.0` for a matrix (`[[T; R];
/// C]`); `None` for any other type.
fn storage_access(t: &Ty) -> Option<TokenStream> {
    match t {
        Ty::Matrix { cols, .. } if t.layout() == Layout::NalgebraStatic && cols.is_one() => Some(quote!(.data.0[0])),
        Ty::Matrix { .. } if t.layout() == Layout::NalgebraStatic => Some(quote!(.data.0)),
        _ => None,
    }
}

/// Writes the lanes `r` of an output of per-sample type `t` to the samples `buf`: a type
/// holding nalgebra matrices lane by lane, each matrix through its storage array.
fn unpack_tokens(t: &Ty, vector: &TokenStream, r: &TokenStream, buf: TokenStream) -> TokenStream {
    if holds_matrix(t) {
        let writes = lane_writes(t, vector, r.clone(), quote!(__fluxion_o), 0);
        quote! {
            for (__fluxion_l, __fluxion_o) in (#buf).iter_mut().enumerate() {
                #writes
            }
        }
    } else {
        let t = ty_tokens(t);
        quote!(::fluxion::__private::unpack::<#vector, #t>(&#r, #buf);)
    }
}

/// Writes lane `__fluxion_l` of the lanes `r` to the sample `o` of type `t`: a nalgebra
/// matrix to its storage array, tuples and arrays holding matrices part by part, anything
/// else with `Pack::write_lane`.
fn lane_writes(t: &Ty, vector: &TokenStream, r: TokenStream, o: TokenStream, depth: usize) -> TokenStream {
    let write = |st: &Ty, place: TokenStream| {
        let st = ty_tokens(st);
        quote!(<#st as ::fluxion::__private::Pack<#vector>>::write_lane(&#r, __fluxion_l, &mut #place);)
    };
    match t {
        Ty::Matrix { .. } => match (storage_access(t), crate::batch::storage_ty(t)) {
            (Some(get), Some(st)) => write(&st, quote!(#o #get)),
            _ => quote!(),
        },
        Ty::Tuple(ts) => ts
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let k = syn::Index::from(k);
                lane_writes(e, vector, quote!(#r.#k), quote!(#o.#k), depth)
            })
            .collect(),
        Ty::Array(e, n) if holds_matrix(e) => {
            let (k, n) = (format_ident!("__fluxion_k{}", depth), cexpr_tokens(n, false));
            let inner = lane_writes(e, vector, quote!(#r[#k]), quote!(#o[#k]), depth + 1);
            quote!(for #k in 0..#n { #inner })
        }
        _ => write(t, o),
    }
}

/// The smallest output (in floats per sample) that a kernel writes straight into the
/// samples, lane by lane ([`crate::into::lane_rows`]), rather than into a lanes buffer
/// transposed afterwards in blocks. The transposition is cheaper while the buffer stays
/// in the L1 cache; the per-sample gradients of `vmap(grad(loss))` of a `32 -> 64 -> 1`
/// MLP (2,048 weights, 64 KiB of lanes per chunk) took 1.74 ms per 1024 samples through the
/// buffer and 1.39 ms lane by lane.
const LANE_ROWS_MIN: i128 = 64;

/// Whether an output of per-sample type `t` is written lane by lane into the samples: an
/// array (any depth) of floats of at least [`LANE_ROWS_MIN`] elements, or of a length the
/// macro cannot see (named constants).
fn writes_lane_by_lane(t: &Ty) -> bool {
    let mut elems = Some(1i128);
    let mut e = t;
    while let Ty::Array(inner, n) = e {
        elems = elems.zip(n.lit()).map(|(a, b)| a.saturating_mul(b));
        e = inner;
    }
    matches!(t, Ty::Array(..)) && matches!(e, Ty::Float(_)) && elems.is_none_or(|n| n >= LANE_ROWS_MIN)
}

/// Whether samples of `t` can be packed into lanes: floats, fixed arrays and tuples of
/// them, and statically sized nalgebra matrices (as their storage arrays).
fn packable(t: &Ty) -> bool {
    match t {
        Ty::Float(_) => true,
        Ty::Matrix { elem, .. } => storage_access(t).is_some() && matches!(**elem, Ty::Float(_)),
        Ty::Array(e, _) => packable(e),
        Ty::Tuple(ts) => !ts.is_empty() && ts.len() <= 8 && ts.iter().all(packable),
        _ => false,
    }
}

fn in_dims_text(f: &Func, dims: &[(Option<usize>, Span)]) -> String {
    let parts: Vec<String> = f
        .params
        .iter()
        .zip(dims)
        .map(|(p, (d, _))| {
            format!(
                "`{}` {}",
                f.vars[p.var].name,
                match d {
                    Some(0) => "a slice of samples",
                    Some(_) => "one slice per component",
                    None => "shared",
                }
            )
        })
        .collect();
    parts.join(", ")
}

fn out_dims_text(dims: &[(usize, Span)], tuple: bool) -> String {
    let one = |d: usize| {
        if d == 0 {
            "a `Vec` of samples"
        } else {
            "one `Vec` per component"
        }
    };
    if tuple {
        let parts: Vec<String> = dims
            .iter()
            .enumerate()
            .map(|(k, (d, _))| format!("output {k} {}", one(*d)))
            .collect();
        parts.join(", ")
    } else {
        format!(
            "the result {}",
            dims.first().map_or("a `Vec` of samples", |(d, _)| one(*d))
        )
    }
}

/// A call of the chunk loop `item` (an `#[inline(always)]` `fn` item) with `args`, through
/// the runtime's `best_simd` (an AVX2 copy chosen at run time): the items to emit beside
/// `item` and the call.
///
/// The arguments travel in a struct whose `SimdRun::run` (always inlined) calls the loop,
/// so the loop is compiled inside the AVX2 copy. Behind a closure it would not be: the
/// closure's body, with the loop inlined into it, is too large for LLVM to inline into the
/// copy, and stays compiled with the baseline features.
pub(super) fn simd_call(item: &TokenStream, args: &[TokenStream]) -> Result<(TokenStream, TokenStream), syn::Error> {
    use syn::visit_mut::VisitMut;
    struct Named;
    impl VisitMut for Named {
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            if r.lifetime.is_none() {
                r.lifetime = Some(syn::parse_quote!('__fluxion_a));
            }
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
        fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
            if l.ident == "_" {
                *l = syn::parse_quote!('__fluxion_a);
            }
        }
    }
    let f: syn::ItemFn = syn::parse2(item.clone()).map_err(|e| {
        syn::Error::new(
            Span::call_site(),
            format!("internal: a chunk loop that is not an `fn` item: {e}"),
        )
    })?;
    let name = &f.sig.ident;
    let run = format_ident!("{}_simd", name);
    let mut tys = Vec::new();
    for a in &f.sig.inputs {
        let syn::FnArg::Typed(p) = a else {
            return Err(syn::Error::new(
                Span::call_site(),
                "internal: a chunk loop with a receiver",
            ));
        };
        let mut t = (*p.ty).clone();
        Named.visit_type_mut(&mut t);
        tys.push(t);
    }
    if tys.len() != args.len() {
        return Err(syn::Error::new(
            Span::call_site(),
            "internal: a chunk loop called with another number of arguments",
        ));
    }
    let fields: Vec<syn::Ident> = (0..tys.len()).map(|k| format_ident!("a{k}")).collect();
    let user = &f.sig.generics.params;
    let wc = &f.sig.generics.where_clause;
    let args_of = |p: &syn::GenericParam| match p {
        syn::GenericParam::Lifetime(l) => {
            let l = &l.lifetime;
            quote!(#l)
        }
        syn::GenericParam::Type(t) => {
            let i = &t.ident;
            quote!(#i)
        }
        syn::GenericParam::Const(c) => {
            let i = &c.ident;
            quote!(#i)
        }
    };
    let uargs: Vec<TokenStream> = user.iter().map(args_of).collect();
    let types: Vec<&syn::Ident> = user
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(&t.ident),
            _ => None,
        })
        .collect();
    let out = match &f.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, t) => quote!(#t),
    };
    let tf = turbofish(&f.sig.generics);
    let items = quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        struct #run <'__fluxion_a, #user> #wc {
            #(#fields: #tys,)*
            __fluxion_p: ::core::marker::PhantomData<(&'__fluxion_a (), #(fn() -> #types,)*)>,
        }
        impl<'__fluxion_a, #user> ::fluxion::__private::SimdRun for #run <'__fluxion_a, #(#uargs,)*> #wc {
            type Output = #out;
            #[inline(always)]
            fn run(self) -> #out {
                #name #tf (#(self.#fields,)*)
            }
        }
    };
    let call = quote! {
        ::fluxion::__private::best_simd(#run {
            #(#fields: #args,)*
            __fluxion_p: ::core::marker::PhantomData,
        })
    };
    Ok((items, call))
}
