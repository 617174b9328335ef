//! The companions of a `vmap`ped function: `f_vmap` is callable and differentiable from
//! other annotated functions, like every generated function.
//!
//! A caller differentiating through `let e = model_vmap(p, xs)` calls `<model_vmap>::jvp`,
//! `vjp_fwd` / `vjp_bwd_acc`, .. (the protocol of `expand::companions`). The companions of
//! the batch are those of its function per sample, `model`'s: a batched argument's
//! tangent and cotangent are per sample (`&[T]` in, `Vec<T>` out, `&mut [T]` to accumulate
//! into), a shared argument's cotangent is the sum over the batch of the samples'
//! cotangents, in a fixed order (so it does not depend on the chunk size or the threads).
//! The value every companion returns is the batched function's own (on lanes, so a
//! caller's value does not depend on whether it is differentiated). The tangents come
//! from the per-sample `jvp`, sample by sample; the reverse half that callers' gradients
//! use (`vjp_bwd_acc`) runs the per-sample split companions on lanes ([`bwd_kernel`]),
//! or sample by sample where they cannot be batched.
//!
//! The second-order companions (`jvp_jvp`, .., a `hessian` of a loss over the batch) run
//! sample by sample: each sample calls the per-sample function's companion of the same
//! modes, a batched result is collected per sample and a shared one summed in sample
//! order ([`second_order_companion`]). They are built where the per-sample function is a
//! user function (order 0) without shared slices or nalgebra matrices; elsewhere they are
//! stubs whose use is a compile error.
//!
//! Built for the layouts whose batches are plain slices (`in_dims` of `0` and `None`,
//! `out_dims = 0`).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

use super::companions::{companion_stub, missing_marker};
use crate::batch::{batch, BatchSpec};
use crate::emit::{holder_ident, holder_item, mode_name, ty_tokens, Emitter, FnHeader, LaneTarget, Scalar, Target};
use crate::ir::*;
use crate::rules::RuleTable;

/// Whether the macro can write every type of `t`.
fn writable(t: &Ty) -> bool {
    match t {
        Ty::Unknown | Ty::Lanes(_) | Ty::Tape(_) => false,
        Ty::Array(e, _) | Ty::Slice(e) => writable(e),
        Ty::Matrix { elem, .. } => writable(elem),
        Ty::Tuple(ts) => ts.iter().all(writable),
        _ => true,
    }
}

/// The hidden holder `name` (`f_vmap`) of the batched form of `cur` (`order` derivatives
/// of a user function) with `batched` arguments, or nothing where its layouts are not
/// plain slices.
#[allow(clippy::too_many_arguments)]
pub(super) fn holder(
    cur: &Func,
    order: usize,
    batched: &[bool],
    plain: bool,
    name: &str,
    vis: &TokenStream,
    generics: &syn::Generics,
    rules: &RuleTable,
    float: FloatTy,
    per_sample_rng: bool,
) -> TokenStream {
    let outs: Vec<Ty> = match &cur.ret_ty {
        Ty::Tuple(ts) => ts.clone(),
        t => vec![t.clone()],
    };
    let tuple = matches!(cur.ret_ty, Ty::Tuple(_));
    if !plain || !cur.params.iter().all(|p| writable(&p.ty)) || !outs.iter().all(writable) {
        return TokenStream::new();
    }
    let inner = holder_ident(&cur.name, Span::call_site());
    let h = holder_ident(name, Span::call_site());
    let f = format_ident!("{}", name);
    let (gen, wc) = crate::emit::generic_parts(generics);
    // `#[inline]`: like every companion, code only in the crates that call it.
    let attrs = |doc: String| {
        quote! {
            #[doc = #doc]
            #[inline]
            #[allow(unused_mut, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
        }
    };

    // Per argument: the primal, tangent and accumulator parameters, and their per-sample
    // forms (`x[i]` for a batched one, `w` for a shared one).
    let k_ids = |p: &str| {
        (0..cur.params.len())
            .map(|k| format_ident!("{p}{k}"))
            .collect::<Vec<_>>()
    };
    let (ps, ts, accs) = (k_ids("p"), k_ids("t"), k_ids("a"));
    let (mut p_decl, mut t_decl, mut a_decl) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_i, mut t_i, mut a_i) = (Vec::new(), Vec::new(), Vec::new());
    // The batched slices (primal, tangent, accumulator) and what a length error calls them.
    let mut slices: Vec<[(syn::Ident, String); 3]> = Vec::new();
    for (k, (prm, &b)) in cur.params.iter().zip(batched).enumerate() {
        let (p, t, a) = (&ps[k], &ts[k], &accs[k]);
        let ty = ty_tokens(&prm.ty);
        let tan = ty_tokens(&prm.ty.tangent());
        if b {
            p_decl.push(quote!(#p: &[#ty]));
            t_decl.push(quote!(#t: &[#tan]));
            a_decl.push(quote!(#a: &mut [#tan]));
            p_i.push(if prm.by_ref { quote!(&#p[__i]) } else { quote!(#p[__i]) });
            t_i.push(quote!(#t[__i]));
            a_i.push(quote!(&mut #a[__i]));
            let what = format!("argument {k} of `{name}`");
            slices.push([
                (p.clone(), what.clone()),
                (t.clone(), format!("the tangent of {what}")),
                (a.clone(), format!("the cotangent accumulator of {what}")),
            ]);
        } else {
            let (pt, tt, at) = match &prm.ty {
                Ty::Slice(e) => {
                    let (e, et) = (ty_tokens(e), ty_tokens(&e.tangent()));
                    (quote!(&[#e]), quote!(&[#et]), quote!(&mut [#et]))
                }
                _ if prm.by_ref => (quote!(&#ty), quote!(#tan), quote!(&mut #tan)),
                _ => (quote!(#ty), quote!(#tan), quote!(&mut #tan)),
            };
            p_decl.push(quote!(#p: #pt));
            t_decl.push(quote!(#t: #tt));
            a_decl.push(quote!(#a: #at));
            // `randomness = "different"`: sample `i` draws from `rng.sample(i)`.
            p_i.push(match (per_sample_rng && prm.ty == Ty::Rng, prm.by_ref) {
                (true, true) => quote!(&::fluxion::__private::Rng::sample(#p, __i)),
                (true, false) => quote!(::fluxion::__private::Rng::sample(&#p, __i)),
                (false, _) => quote!(#p),
            });
            t_i.push(quote!(#t));
            a_i.push(quote!(&mut *#a));
        }
    }
    let Some([(first, first_what), ..]) = slices.first().cloned() else {
        return TokenStream::new();
    };
    // `__n`, the first batched argument's length, and a check that the other batched
    // primals and the slices of `kind` (1 tangents, 2 accumulators) have as many.
    let check = |kind: Option<usize>| {
        let c = slices
            .iter()
            .enumerate()
            .flat_map(|(j, s)| {
                let prim = (j > 0).then(|| s[0].clone());
                prim.into_iter().chain(kind.map(|k| s[k].clone()))
            })
            .map(|(v, w)| quote!(::fluxion::__private::same_batch(#w, #v.len(), #first_what, __n);));
        quote! {
            let __n = #first.len();
            #(#c)*
        }
    };
    let prim_check = check(None);
    let tan_check = check(Some(1));
    let acc_check = check(Some(2));

    // The outputs: one `Vec` each (a tuple of them for a tuple result), and the cotangent's
    // per-sample form.
    let dot_ids: Vec<syn::Ident> = (0..outs.len()).map(|k| format_ident!("__d{k}")).collect();
    let vec_ty = |ts: Vec<TokenStream>| {
        let vs: Vec<TokenStream> = ts.iter().map(|t| quote!(::fluxion::__private::Vec<#t>)).collect();
        if tuple {
            quote!((#(#vs,)*))
        } else {
            quote!(#(#vs)*)
        }
    };
    let y_ty = vec_ty(outs.iter().map(ty_tokens).collect());
    let yt_ty = vec_ty(outs.iter().map(|t| ty_tokens(&t.tangent())).collect());
    let whole = |ids: &[syn::Ident]| {
        if tuple {
            quote!((#(#ids,)*))
        } else {
            quote!(#(#ids)*)
        }
    };
    let d_all = whole(&dot_ids);
    let new_vecs = |ids: &[syn::Ident]| quote!(#(let mut #ids = ::fluxion::__private::Vec::with_capacity(__n);)*);
    let pushes = |ids: &[syn::Ident], v: TokenStream| {
        if tuple {
            let ks = (0..ids.len()).map(syn::Index::from);
            quote!(#(#ids.push(#v.#ks);)*)
        } else {
            quote!(#(#ids.push(#v);)*)
        }
    };
    let ct_i = if tuple {
        let ks = (0..outs.len()).map(syn::Index::from);
        quote!((#(ct.#ks[__i],)*))
    } else {
        quote!(ct[__i])
    };
    let ct_check = if tuple {
        let ks = (0..outs.len()).map(syn::Index::from);
        let ws = (0..outs.len()).map(|k| format!("the cotangent of output {k} of `{name}`"));
        quote!(#(::fluxion::__private::same_batch(#ws, ct.#ks.len(), #first_what, __n);)*)
    } else {
        let w = format!("the cotangent of `{name}`");
        quote!(::fluxion::__private::same_batch(#w, ct.len(), #first_what, __n);)
    };

    // The cotangents of the reverse halves (per sample for a batched argument, a sum over
    // the batch for a shared one), and their zeros.
    let bar_ids: Vec<syn::Ident> = (0..cur.params.len()).map(|k| format_ident!("__b{k}")).collect();
    let mut bar_tys = Vec::new();
    let mut bar_zeros = Vec::new();
    for ((prm, p), &b) in cur.params.iter().zip(&ps).zip(batched) {
        match &prm.ty {
            Ty::Slice(e) => {
                let et = ty_tokens(&e.tangent());
                bar_tys.push(quote!(::fluxion::__private::Vec<#et>));
                bar_zeros.push(quote!(::fluxion::__private::zero_vec(#p)));
            }
            _ if b => {
                let tan = ty_tokens(&prm.ty.tangent());
                bar_tys.push(quote!(::fluxion::__private::Vec<#tan>));
                bar_zeros.push(quote!(::fluxion::__private::zero_vec(#p)));
            }
            // A nalgebra matrix's zero is its own (the runtime does not know nalgebra).
            _ if prm.ty.has_matrix() && prm.ty.is_known() => {
                bar_tys.push(ty_tokens(&prm.ty.tangent()));
                bar_zeros.push(crate::emit::zeros_tokens(&prm.ty.tangent()));
            }
            _ => {
                bar_tys.push(ty_tokens(&prm.ty.tangent()));
                let z = if prm.by_ref { quote!(#p) } else { quote!(&#p) };
                bar_zeros.push(quote!(::fluxion::__private::zero_like(#z)));
            }
        }
    }

    let new_d = new_vecs(&dot_ids);
    let push_d = pushes(&dot_ids, quote!(__d));
    let mut fns = TokenStream::new();
    let doc = |what: &str| {
        attrs(format!(
            "Companion `{what}` of `{name}` (hidden): per sample, `{}`'s.",
            cur.name
        ))
    };
    let a = doc("jvp");
    fns.extend(quote! {
        #a
        pub fn jvp #gen (#(#p_decl,)* #(#t_decl,)*) -> (#y_ty, #yt_ty) #wc {
            #tan_check
            #new_d
            for __i in 0..__n {
                let (_, __d) = <#inner>::jvp(#(#p_i,)* #(#t_i,)*);
                #push_d
            }
            (#f(#(#ps,)*), #d_all)
        }
    });
    let a = attrs(format!(
        "Companion `vjp` of `{name}` (hidden): `vjp_fwd`, then `vjp_bwd`."
    ));
    fns.extend(quote! {
        #a
        pub fn vjp #gen (#(#p_decl,)* ct: #yt_ty) -> (#y_ty, (#(#bar_tys,)*)) #wc {
            // The two halves: one reduction of the shared cotangents, on lanes.
            let (__y, __res) = Self::vjp_fwd(#(#ps,)*);
            (__y, Self::vjp_bwd(#(#ps,)* __res, ct))
        }
    });
    // The reverse half on lanes: the per-sample split companions batched (`bwd_kernel`),
    // or sample by sample where they cannot be.
    // (`cur` is `order` derivatives of a user function: its reverse half is one more.)
    let simd = if order < super::MAX_ORDER {
        bwd_kernel(
            cur,
            batched,
            per_sample_rng,
            name,
            generics,
            rules,
            float,
            (&ps, &p_decl),
            (&accs, &a_decl),
            &yt_ty,
            &outs,
            tuple,
        )
    } else {
        None
    };
    let Reverse {
        items: kernel,
        bwd: bwd_body,
        fwd,
    } = simd.unwrap_or_else(|| Reverse {
        items: TokenStream::new(),
        bwd: quote! {
            for __i in 0..__n {
                let (_, __r) = <#inner>::vjp_fwd(#(#p_i,)*);
                <#inner>::vjp_bwd_acc(#(#p_i,)* __r, #ct_i, #(#a_i,)*);
            }
        },
        fwd: None,
    });
    // `vjp_fwd`: the forward half on lanes keeping its residuals, or the batched function
    // itself (no residuals: the reverse half runs it again).
    let (res_ty, fwd_body) = match fwd {
        Some((r, body)) => (r, quote!(#prim_check #body)),
        None => (quote!(()), quote!((#f(#(#ps,)*), ()))),
    };
    let a = attrs(format!(
        "Companion `vjp_fwd` of `{name}` (hidden): its values, and the residuals of its reverse half."
    ));
    fns.extend(quote! {
        #a
        pub fn vjp_fwd #gen (#(#p_decl,)*) -> (#y_ty, #res_ty) #wc {
            #fwd_body
        }
    });
    let a = doc("vjp_bwd");
    fns.extend(quote! {
        #a
        pub fn vjp_bwd #gen (#(#p_decl,)* residuals: #res_ty, ct: #yt_ty) -> (#(#bar_tys,)*) #wc {
            // The in-place reverse half (on lanes, with the kept residuals) from zeros.
            #(let mut #bar_ids = #bar_zeros;)*
            Self::vjp_bwd_acc(#(#ps,)* residuals, ct, #(&mut #bar_ids,)*);
            (#(#bar_ids,)*)
        }
    });
    let a = doc("vjp_bwd_acc");
    fns.extend(quote! {
        #a
        pub fn vjp_bwd_acc #gen (#(#p_decl,)* mut residuals: #res_ty, ct: #yt_ty, #(#a_decl,)*) #wc {
            #acc_check
            #ct_check
            #bwd_body
        }
    });

    // Second order through a batch: stubs with the protocol's signatures.
    let mut sig = cur.clone();
    for (p, &b) in sig.params.iter_mut().zip(batched) {
        if b {
            p.ty = Ty::Slice(Box::new(p.ty.clone()));
            p.by_ref = false;
        }
    }
    sig.ret_ty = match &cur.ret_ty {
        Ty::Tuple(ts) => Ty::Tuple(ts.iter().map(|t| Ty::Slice(Box::new(t.clone()))).collect()),
        t => Ty::Slice(Box::new(t.clone())),
    };
    let marker = format_ident!("__fluxion_missing_{}__second_order", name);
    let msg = format!(
        "`{name}` is differentiated twice here through a call: the companions of a batched derivative, or of a batch with a shared slice or a nalgebra matrix, go to first order (`grad` of a loss over the batch works); write the loss over per-sample calls of `{}` for second derivatives",
        cur.name
    );
    // Sample by sample through the per-sample function's own second-order companions
    // (a user function's, order 0), where every type is one the loop can index and add:
    // no shared slice, no matrix.
    let second = order == 0
        && cur
            .params
            .iter()
            .all(|p| !matches!(p.ty, Ty::Slice(_)) && !p.ty.has_matrix())
        && !outs.iter().any(Ty::has_matrix);
    for modes in super::COMPANIONS.iter().copied().filter(|m| m.len() == 2) {
        let n = mode_name(modes);
        if second {
            let a = attrs(format!(
                "Companion `{n}` of `{name}` (hidden): per sample, `{}`'s (sample by sample).",
                cur.name
            ));
            fns.extend(second_order_companion(cur, batched, modes, name, generics, a, &p_i));
        } else {
            let a = attrs(format!(
                "Companion `{n}` of `{name}`: not built (second order through a batch)."
            ));
            fns.extend(companion_stub(&sig, modes, generics, &n, a, &marker, None));
        }
    }
    // A batched caller's lanes companions (`vmap` of a function that calls `f_vmap`).
    let lanes_marker = format_ident!("__fluxion_missing_{}__lanes", name);
    let lanes_msg = format!(
        "`vmap` through a call of the batched `{name}` is not supported here: a batch has lanes companions (`lanes`, `jvp_lanes`) where its per-sample function is a user function without generators or nalgebra matrices, not for a batched derivative, nor for a batched caller's reverse pass; call `{}` per sample instead",
        cur.name
    );
    let lanes_markers = missing_marker(vis, &lanes_marker, &lanes_msg);
    let markers = if second {
        lanes_markers
    } else {
        let markers = missing_marker(vis, &marker, &msg);
        quote! {
            #markers
            #lanes_markers
        }
    };
    let float = cur.params.iter().find_map(|p| p.ty.float_ty()).unwrap_or(FloatTy::F64);
    // The batch's lanes and `jvp_lanes` run sample by sample over the per-sample
    // function's lanes companions (a user function's, order 0); the reverse ones stay stubs.
    let lanes_ok = order == 0
        && !per_sample_rng
        && cur.params.iter().all(|p| {
            // (A shared slice passes as it is.)
            p.ty != Ty::Rng
                && !p.ty.has_matrix()
                && (matches!(p.ty, Ty::Slice(_)) || crate::batch::lanes_ty(&p.ty).is_ok())
        })
        && outs
            .iter()
            .all(|t| !t.has_matrix() && crate::batch::lanes_ty(t).is_ok());
    for modes in std::iter::once(&[][..]).chain(super::COMPANIONS.iter().copied().filter(|m| m.len() == 1)) {
        let n = crate::emit::lanes_mode_name(modes);
        let built = (lanes_ok && matches!(modes, [] | [Mode::Jvp])).then(|| {
            let a = attrs(format!(
                "Lanes companion `{n}` of `{name}` (hidden): each lane's batch, sample by sample over `{}`'s `{n}`.",
                cur.name
            ));
            lanes_companion_of_batch(cur, batched, modes, name, generics, a, float, tuple)
        });
        match built.flatten() {
            Some(f) => fns.extend(f),
            None => {
                let a = attrs(format!("Lanes companion `{n}` of `{name}`: not built."));
                fns.extend(companion_stub(&sig, modes, generics, &n, a, &lanes_marker, Some(float)));
            }
        }
    }
    let item = holder_item(vis, &h, &fns, &markers);
    quote! {
        #kernel
        #item
    }
}

/// The reverse half of the batch on lanes: the per-sample split companions of `cur`
/// (`vjp_fwd`, `vjp_bwd_acc`) batched over the batched arguments, the residuals, the
/// cotangent and the accumulators (two kernels, emitted beside the holder; shared
/// arguments stay scalars), and the chunk loop of `vjp_bwd_acc` that runs them. A batched
/// argument's cotangents are added into the caller's accumulator sample by sample; a
/// shared argument's are accumulated in lanes over the full chunks (lane `l` holds the
/// samples `l`, `l + L`, ..), then added lane by lane in order, after the last, partial
/// chunk's samples: a fixed order, whatever the threads. `None` where the companions
/// cannot be batched (a callee's second-order companion, a shared slice, whose
/// cotangent is a `Vec`).
#[allow(clippy::too_many_arguments)]
fn bwd_kernel(
    cur: &Func,
    batched: &[bool],
    per_sample_rng: bool,
    name: &str,
    generics: &syn::Generics,
    rules: &RuleTable,
    float: FloatTy,
    (ps, p_decl): (&[syn::Ident], &[TokenStream]),
    (accs, a_decl): (&[syn::Ident], &[TokenStream]),
    yt_ty: &TokenStream,
    outs: &[Ty],
    tuple: bool,
) -> Option<Reverse> {
    if cur.params.iter().any(|p| matches!(p.ty, Ty::Slice(_))) {
        return None;
    }
    let n = cur.params.len();
    let (fwd, _, acc) = crate::transforms::split_pair(cur, rules).ok()?;
    // Each sample's generator is lanes in the kernels (`RngLanes`), a shared argument of
    // the holder's.
    let rng_lanes = |p: &Param| per_sample_rng && p.ty == Ty::Rng;
    let kernel_batched: Vec<bool> = cur
        .params
        .iter()
        .zip(batched)
        .map(|(p, &b)| b || rng_lanes(p))
        .collect();
    let mut fwd = batch(
        &fwd,
        &BatchSpec {
            batched: kernel_batched.clone(),
        },
    )
    .ok()?;
    // The accumulators are lanes (every sample adds into its lane); so are the residuals,
    // which the batched forward half returns as lanes, and the cotangent.
    let res_lanes = match &fwd.ret_ty {
        Ty::Tuple(ts) if ts.len() == 2 => ts[1].has_lanes(),
        _ => return None,
    };
    let mut flags = kernel_batched;
    flags.extend(acc.params[n..].iter().enumerate().map(|(k, p)| {
        if k == 0 {
            res_lanes
        } else {
            crate::batch::lanes_param(&p.ty)
        }
    }));
    let mut acc = batch(&acc, &BatchSpec { batched: flags }).ok()?;
    // The residuals by reference: a chunk's lanes residuals (kilobytes for an MLP) are
    // read where the forward half kept them, not moved out and into the kernel.
    acc.params[n].by_ref = true;
    let lanes = LaneTarget { float };
    let v = lanes.vector();
    // The residuals `vjp_fwd` keeps, one per chunk (lanes), where the macro can write their
    // type; else the reverse half runs the forward half again.
    let res_ir = match &fwd.ret_ty {
        Ty::Tuple(ts) => ts[1].clone(),
        _ => return None,
    };
    let saved = lanes_writable(&res_ir).then(|| lanes.ty(&res_ir));
    // Kept: the forward kernel writes its residuals into the chunk's slot (its tapes are
    // that slot), not into locals moved there after.
    if saved.is_some() {
        fwd = residuals_into(&fwd)?;
    }
    let mut kernels = TokenStream::new();
    let mut names = Vec::new();
    for (k, half) in [(&mut fwd, "fwd"), (&mut acc, "acc")] {
        let kname = format_ident!("__fluxion_{}_kernel_{}", half, name);
        k.name = kname.to_string();
        kernels.extend(Emitter::with_lanes(k, &Scalar, &lanes).function(&FnHeader {
            vis: quote!(),
            name: kname.clone(),
            generics,
            attrs: quote! {
                #[doc(hidden)]
                #[inline(always)]
                #[allow(unused_mut, unused_variables, unused_parens, unused_braces, non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
            },
        }));
        names.push(kname);
    }
    let (fwd_name, acc_name) = (&names[0], &names[1]);
    let range = quote!(__start + __i..__start + __i + __m);
    // The driver's pieces: the batched accumulators (split by task), the shared ones (a
    // partial per task, `__w.k`, added in task order) and their zeros.
    let (mut split, mut partial, mut part_zeros, mut part_adds, mut chunk_accs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut packs, mut args, mut slots, mut before, mut after, mut inits, mut finals) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (j, (prm, &b)) in cur.params.iter().zip(batched).enumerate() {
        let (p, a) = (&ps[j], &accs[j]);
        let tan = prm.ty.tangent();
        let tt = ty_tokens(&tan);
        let lane_of =
            |l: TokenStream, src: &syn::Ident| quote!(<#tt as ::fluxion::__private::Pack<#v>>::lane_of(&#src, #l));
        if b {
            let t = ty_tokens(&prm.ty);
            let packed = format_ident!("__x{}", j);
            packs.push(quote!(let #packed = ::fluxion::__private::pack::<#v, #t>(&#p[#range]);));
            args.push(if prm.by_ref { quote!(&#packed) } else { quote!(#packed) });
            let c = format_ident!("__c{}", j);
            let zeros = lanes.zeros(&crate::batch::lanes_ty(&tan).ok()?);
            before.push(quote!(let mut #c = #zeros;));
            slots.push(quote!(&mut #c));
            let l = lane_of(quote!(__l), &c);
            after.push(quote! {
                for __l in 0..__m {
                    ::fluxion::__private::acc(&mut #a[__i + __l], #l);
                }
            });
            split.push(a.clone());
            chunk_accs.push(quote!(#a));
        } else {
            if rng_lanes(prm) {
                let l = lanes.lanes();
                let packed = format_ident!("__x{}", j);
                packs.push(quote!(let #packed = ::fluxion::__private::RngLanes::<#l>::new(&#p, __start + __i);));
                args.push(if prm.by_ref { quote!(&#packed) } else { quote!(#packed) });
            } else {
                args.push(quote!(#p));
            }
            if !crate::batch::lanes_param(&tan) {
                // No float cotangent (an integer, a `bool`): a zero of its own for the kernel
                // and for each task (the caller's `&mut` cannot be reborrowed in the
                // tasks' shared closure).
                slots.push(quote!(&mut ::fluxion::__private::zero_like(&#p)));
                chunk_accs.push(quote!(&mut ::fluxion::__private::zero_like(&#p)));
                continue;
            }
            let k = syn::Index::from(partial.len());
            partial.push(a.clone());
            part_zeros.push(if prm.by_ref {
                quote!(::fluxion::__private::zero_like(#p))
            } else {
                quote!(::fluxion::__private::zero_like(&#p))
            });
            part_adds.push(quote!(::fluxion::__private::acc(&mut *#a, __w.#k);));
            chunk_accs.push(quote!(&mut __w.#k));
            // Full chunks add into `__s`, the partial one into `__q`, then its lanes.
            let (sj, qj, tj) = (
                format_ident!("__s{}", j),
                format_ident!("__q{}", j),
                format_ident!("__t{}", j),
            );
            let zeros = lanes.zeros(&crate::batch::lanes_ty(&tan).ok()?);
            inits.push(quote!(let mut #sj = #zeros; let mut #qj = #zeros;));
            before.push(quote! {
                let #tj = if __m == __lanes { &mut #sj } else { #qj = #zeros; &mut #qj };
            });
            slots.push(quote!(#tj));
            // Lane by lane, in order, element by element (`acc_lanes`: no sample-sized
            // temporary per lane).
            after.push(quote! {
                if __m < __lanes {
                    ::fluxion::__private::acc_lanes::<#v, #tt>(&mut *#a, &#qj, __m);
                }
            });
            finals.push(quote! {
                ::fluxion::__private::acc_lanes::<#v, #tt>(&mut *#a, &#sj, __lanes);
            });
        }
    }
    let ct = if tuple {
        let cs = outs.iter().enumerate().map(|(j, t)| {
            let (jj, t) = (syn::Index::from(j), ty_tokens(&t.tangent()));
            quote!(::fluxion::__private::pack::<#v, #t>(&ct.#jj[#range]))
        });
        quote!((#(#cs,)*))
    } else {
        let t = ty_tokens(&outs[0].tangent());
        quote!(::fluxion::__private::pack::<#v, #t>(&ct[#range]))
    };
    let tf = crate::emit::turbofish(generics);
    let first_split = &split[0];
    let (res_param, res_arg, take_res) = match &saved {
        Some(r) => (
            quote!(__res_slots: &mut [::core::option::Option<#r>],),
            Some(quote!(__r.all())),
            quote! {
                let __res = __res_slots[__i / __lanes]
                    .as_ref()
                    .expect("fluxion: the residuals of the batch's forward half");
            },
        ),
        None => (
            quote!(),
            None,
            quote!(let (_, __res) = #fwd_name #tf (#(#args,)*); let __res = &__res;),
        ),
    };
    let run = quote! {
        let __lanes = <#v as ::fluxion::__private::Lanes>::LANES;
        let __n = #first_split.len();
        #(#inits)*
        let mut __i = 0;
        while __i < __n {
            let __m = ::core::cmp::min(__n - __i, __lanes);
            #(#packs)*
            #take_res
            #(#before)*
            #acc_name #tf (#(#args,)* __res, #ct, #(#slots,)*);
            #(#after)*
            __i += __m;
        }
        #(#finals)*
    };
    // The chunk loop, a function of its own.
    let chunks = format_ident!("__fluxion_bwd_chunks_{}", name);

    let (gen, wc) = crate::emit::generic_parts(generics);
    let item = quote! {
        #[doc(hidden)]
        #[inline(always)]
        #[allow(unused_mut, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
        fn #chunks #gen (#(#p_decl,)* ct: &#yt_ty, __start: usize, #res_param #(#a_decl,)*) #wc {
            #run
        }
    };
    let mut call_args: Vec<TokenStream> = ps.iter().map(|p| quote!(#p)).collect();
    call_args.extend([quote!(&ct), quote!(__start)]);
    call_args.extend(res_arg);
    call_args.extend(chunk_accs.iter().cloned());
    let call = if super::vmap::uses_lane_kernels(&fwd) || super::vmap::uses_lane_kernels(&acc) {
        let (items, call) = super::vmap::simd_call(&item, &call_args).ok()?;
        kernels.extend(items);
        quote!(#call;)
    } else {
        quote!(#chunks #tf (#(#call_args,)*);)
    };
    kernels.extend(item);
    // Tasks of `__grain` samples on rayon's threads, each with its own partial sums of the
    // shared cotangents.
    let lanes_n: usize = match float {
        FloatTy::F64 => 4,
        FloatTy::F32 => 8,
    };
    let cost = ((crate::cost::run_weight(&fwd.body) + crate::cost::run_weight(&acc.body)) as usize / lanes_n).max(1);
    // The batched accumulators split together: nested pairs, `(a1, (a2, (a3,)))`, an
    // `OutSlices` for any number of them (the runtime's flat tuples go up to 6).
    let split = split
        .iter()
        .rev()
        .fold(None::<TokenStream>, |rest, a| {
            Some(match rest {
                None => quote!((#a,)),
                Some(r) => quote!((#a, #r)),
            })
        })
        .unwrap_or_else(|| quote!(()));
    let body = quote! {
        // At least 32 chunks a task: each task zeroes, reduces and adds its own shared
        // accumulators (the size of the shared arguments, a model's weights).
        let __grain = ::core::cmp::max(
            ::fluxion::__private::grain(::core::option::Option::None, #cost, <#v as ::fluxion::__private::Lanes>::LANES),
            32 * <#v as ::fluxion::__private::Lanes>::LANES,
        );
        let mut __parts = ::fluxion::__private::Vec::new();
        __parts.resize(__n.div_ceil(__grain), (#(#part_zeros,)*));
        let __slots = ::fluxion::__private::TaskSlots::new(&mut __parts, __n, __grain);
        ::fluxion::__private::drive_tasks(__grain, (#split, __slots, __res_all), &|__start, (#split, mut __slot, mut __r)| {
            let __w = __slot.slot();
            #call
        });
        for __w in &__parts {
            #(#part_adds)*
        }
    };
    let res_slots = match &saved {
        Some(_) => {
            quote!(let __res_all = ::fluxion::__private::TaskSlots::new(&mut residuals, __n, <#v as ::fluxion::__private::Lanes>::LANES);)
        }
        None => quote!(let __res_all = ();),
    };
    let body = quote! {
        #res_slots
        #body
    };
    // `vjp_fwd` on lanes: the forward half's chunks, each sample's value and each chunk's
    // residuals kept.
    let res_zeros = lanes.zeros(&res_ir);
    let fwd_items = saved.map(|r| {
        let fchunks = format_ident!("__fluxion_fwd_chunks_{}", name);
        let out_ids: Vec<syn::Ident> = (0..outs.len()).map(|k| format_ident!("__y{k}")).collect();
        let (out_decl, unpacks): (Vec<TokenStream>, Vec<TokenStream>) = outs
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let (y, tt) = (&out_ids[k], ty_tokens(t));
                let part = if tuple {
                    let kk = syn::Index::from(k);
                    quote!(__y.#kk)
                } else {
                    quote!(__y)
                };
                (
                    quote!(#y: &mut [#tt]),
                    quote!(::fluxion::__private::unpack::<#v, #tt>(&#part, &mut #y[__i..__i + __m]);),
                )
            })
            .unzip();
        let first_out = &out_ids[0];
        let fwd_cost = (crate::cost::run_weight(&fwd.body) as usize / lanes_n).max(1);
        let zeros: Vec<TokenStream> = outs
            .iter()
            .map(|t| {
                let z = Scalar.zeros(t);
                quote!({
                    let mut __v = ::fluxion::__private::Vec::new();
                    __v.resize(__n, #z);
                    __v
                })
            })
            .collect();
        let whole = if tuple {
            quote!((#(#out_ids,)*))
        } else {
            quote!(#(#out_ids)*)
        };
        let items = quote! {
            #[doc(hidden)]
            #[inline(always)]
            #[allow(unused_mut, unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
            fn #fchunks #gen (#(#p_decl,)* __start: usize, __res_slots: &mut [::core::option::Option<#r>], #(#out_decl,)*) #wc {
                let __lanes = <#v as ::fluxion::__private::Lanes>::LANES;
                let __n = #first_out.len();
                let mut __i = 0;
                while __i < __n {
                    let __m = ::core::cmp::min(__n - __i, __lanes);
                    #(#packs)*
                    let __y = #fwd_name #tf (#(#args,)* __res_slots[__i / __lanes].insert(#res_zeros));
                    #(#unpacks)*
                    __i += __m;
                }
            }
        };
        let mut fargs: Vec<TokenStream> = ps.iter().map(|p| quote!(#p)).collect();
        fargs.extend([quote!(__start), quote!(__r.all())]);
        fargs.extend(out_ids.iter().map(|y| quote!(#y)));
        let plain = quote!(#fchunks #tf (#(#fargs,)*););
        let (items, fcall) = match super::vmap::uses_lane_kernels(&fwd) {
            // (The chunk loop is the `fn` item just built: `simd_call` cannot fail on it.)
            true => match super::vmap::simd_call(&items, &fargs) {
                Ok((more, call)) => (quote!(#items #more), quote!(#call;)),
                Err(_) => (items, plain),
            },
            false => (items, plain),
        };
        let body = quote! {
            #(let mut #out_ids = #zeros;)*
            let mut __res: ::fluxion::__private::Vec<::core::option::Option<#r>> =
                (0..__n.div_ceil(<#v as ::fluxion::__private::Lanes>::LANES)).map(|_| ::core::option::Option::None).collect();
            {
                let __grain = ::fluxion::__private::grain(::core::option::Option::None, #fwd_cost, <#v as ::fluxion::__private::Lanes>::LANES);
                let __all = ::fluxion::__private::TaskSlots::new(&mut __res, __n, <#v as ::fluxion::__private::Lanes>::LANES);
                #(let #out_ids: &mut [_] = &mut #out_ids;)*
                ::fluxion::__private::drive(__grain, ((#(#out_ids,)*), __all), &|__start, ((#(#out_ids,)*), mut __r)| {
                    #fcall
                });
            }
            (#whole, __res)
        };
        (items, quote!(::fluxion::__private::Vec<::core::option::Option<#r>>), body)
    });
    let mut items = kernels;
    let fwd = fwd_items.map(|(i, r, b)| {
        items.extend(i);
        (r, b)
    });
    Some(Reverse { items, bwd: body, fwd })
}

/// The batch's reverse half on lanes ([`bwd_kernel`]): its items (kernels, chunk loops),
/// the body of `vjp_bwd_acc`, and, where the residuals are kept, their type and the body
/// of `vjp_fwd`.
struct Reverse {
    items: TokenStream,
    bwd: TokenStream,
    fwd: Option<(TokenStream, TokenStream)>,
}

/// Whether the macro can write the lanes type `t` (a residual of the forward half).
/// The forward half `fwd` (returning `(y, residuals)`) as a function writing its residuals
/// into a last parameter `out: &mut R` and returning `y` ([`crate::into::into_form`] on the
/// residuals): a tape or activation the forward half builds in a `let mut` of the
/// residual's type is that place, so a chunk's residuals are written where the reverse half
/// reads them, not built in locals and moved (kilobytes per chunk for an MLP). `out` must
/// hold zeros on entry (the chunk loop sets the slot to zeros): the places are not zeroed
/// again.
fn residuals_into(fwd: &Func) -> Option<Func> {
    let Operand::Var(out) = fwd.ret else { return None };
    let top = &fwd.body.0;
    let i = top.iter().position(|s| matches!(s, Stmt::Let(w, _) if *w == out))?;
    let Stmt::Let(_, Expr::Tuple(parts)) = &top[i] else {
        return None;
    };
    let [y, Operand::Var(res)] = parts.as_slice() else {
        return None;
    };
    let Ty::Tuple(ts) = &fwd.ret_ty else { return None };
    let (y_ty, res_ty) = (ts.first()?.clone(), ts.get(1)?.clone());
    // Nothing else reads the pair.
    if top[i + 1..].iter().any(|s| crate::into::stmt_mentions(s, out)) {
        return None;
    }
    let mut aux = fwd.clone();
    aux.body.0.remove(i);
    aux.ret = Operand::Var(*res);
    aux.ret_ty = res_ty;
    let mut h = crate::into::into_form_with(&aux, fwd.name.clone(), true);
    // The caller passes a slot of zeros: the places need no zeroing of their own.
    for s in &mut h.body.0 {
        if let Stmt::Mut(v, init @ Some(Expr::Zeros(_))) = s {
            if matches!(h.vars[*v].storage, Storage::Out(_)) {
                *init = None;
            }
        }
    }
    h.ret = y.clone();
    h.ret_ty = y_ty;
    Some(h)
}

fn lanes_writable(t: &Ty) -> bool {
    match t {
        Ty::Unknown => false,
        Ty::Lanes(e) | Ty::Array(e, _) | Ty::Tape(e) => lanes_writable(e),
        Ty::Tuple(ts) => ts.iter().all(lanes_writable),
        Ty::Slice(_) | Ty::Matrix { .. } => false,
        _ => true,
    }
}

/// A parameter or result of a batched companion, per sample: a leaf is batched (a slice
/// or `Vec` of it, one per sample) or shared (the same for every sample as an input, the
/// sum over the samples as an output); a tuple of them (a cotangent of a tuple).
#[derive(Clone)]
enum Slot {
    Leaf(Ty, bool),
    Tuple(Vec<Slot>),
}

impl Slot {
    fn tangent(&self) -> Slot {
        match self {
            Slot::Leaf(t, b) => Slot::Leaf(t.tangent(), *b),
            Slot::Tuple(ss) => Slot::Tuple(ss.iter().map(Slot::tangent).collect()),
        }
    }
    /// The batched function's type: a batched leaf is a slice of it.
    fn batched_ty(&self) -> Ty {
        match self {
            Slot::Leaf(t, true) => Ty::Slice(Box::new(t.clone())),
            Slot::Leaf(t, false) => t.clone(),
            Slot::Tuple(ss) => Ty::Tuple(ss.iter().map(Slot::batched_ty).collect()),
        }
    }
    /// Sample `__i` of the value at `place` (a batched leaf's element, a shared leaf as it is).
    fn sample(&self, place: &TokenStream) -> TokenStream {
        match self {
            Slot::Leaf(_, true) => quote!(#place[__i]),
            Slot::Leaf(_, false) => quote!(#place),
            Slot::Tuple(ss) => {
                let es = ss.iter().enumerate().map(|(k, s)| {
                    let k = syn::Index::from(k);
                    s.sample(&quote!(#place.#k))
                });
                quote!((#(#es,)*))
            }
        }
    }
    /// The leaves at `place`: their places, types and whether they are batched.
    fn leaves(&self, place: TokenStream, out: &mut Vec<(TokenStream, Ty, bool)>) {
        match self {
            Slot::Leaf(t, b) => out.push((place, t.clone(), *b)),
            Slot::Tuple(ss) => {
                for (k, s) in ss.iter().enumerate() {
                    let k = syn::Index::from(k);
                    s.leaves(quote!(#place.#k), out);
                }
            }
        }
    }
    /// The value of this shape built from the leaves' variables, in order.
    fn assemble(&self, ids: &mut std::slice::Iter<'_, syn::Ident>) -> TokenStream {
        match self {
            Slot::Leaf(..) => match ids.next() {
                Some(id) => quote!(#id),
                None => quote!(()),
            },
            Slot::Tuple(ss) => {
                let es: Vec<TokenStream> = ss.iter().map(|s| s.assemble(ids)).collect();
                quote!((#(#es,)*))
            }
        }
    }
}

/// The second-order companion `modes` (two of `Jvp`, `Vjp`) of the batched `cur`
/// (`name`), sample by sample: each sample calls the per-sample function's companion of
/// the same modes, a batched result is collected per sample and a shared one (a shared
/// argument's cotangent, its tangent) summed over the samples in order, from zero. The
/// parameters follow the protocol of the stubs (`companion_stub`) on the batched
/// signature. `p_i` are the per-sample forms of the primal parameters.
#[allow(clippy::too_many_arguments)]
fn second_order_companion(
    cur: &Func,
    batched: &[bool],
    modes: &[Mode],
    name: &str,
    generics: &syn::Generics,
    attrs: TokenStream,
    p_i: &[TokenStream],
) -> TokenStream {
    let inner = holder_ident(&cur.name, Span::call_site());
    let mut params: Vec<(Slot, &str)> = cur
        .params
        .iter()
        .zip(batched)
        .map(|(p, &b)| (Slot::Leaf(p.ty.clone(), b), if p.by_ref { "&" } else { "" }))
        .collect();
    let mut ret = match &cur.ret_ty {
        Ty::Tuple(ts) => Slot::Tuple(ts.iter().map(|t| Slot::Leaf(t.clone(), true)).collect()),
        t => Slot::Leaf(t.clone(), true),
    };
    for m in modes {
        match m {
            Mode::Jvp => {
                let tangents: Vec<(Slot, &str)> = params
                    .iter()
                    .map(|(s, r)| (s.tangent(), if *r == "ct" { "ct" } else { "" }))
                    .collect();
                params.extend(tangents);
                ret = Slot::Tuple(vec![ret.clone(), ret.tangent()]);
            }
            _ => {
                let bars = Slot::Tuple(params.iter().map(|(s, _)| s.tangent()).collect());
                params.push((ret.tangent(), "ct"));
                ret = Slot::Tuple(vec![ret, bars]);
            }
        }
    }
    let ids: Vec<syn::Ident> = (0..params.len()).map(|k| format_ident!("p{}", k)).collect();
    let mut decls = Vec::new();
    let mut args = Vec::new();
    let mut batched_ins = Vec::new();
    for (k, ((s, r), id)) in params.iter().zip(&ids).enumerate() {
        let t = s.batched_ty();
        decls.push(match (&t, *r) {
            (Ty::Slice(e), "ct") => {
                let e = ty_tokens(e);
                quote!(#id: ::fluxion::__private::Vec<#e>)
            }
            (Ty::Slice(e), _) => {
                let e = ty_tokens(e);
                quote!(#id: &[#e])
            }
            (t, "&") => {
                let t = ty_tokens(t);
                quote!(#id: &#t)
            }
            (t, _) => {
                let t = ty_tokens(t);
                quote!(#id: #t)
            }
        });
        args.push(match p_i.get(k) {
            Some(a) => a.clone(),
            None => s.sample(&quote!(#id)),
        });
        let mut ls = Vec::new();
        s.leaves(quote!(#id), &mut ls);
        batched_ins.extend(
            ls.into_iter()
                .filter(|l| l.2)
                .map(|(place, _, _)| (place, format!("argument {k} of `{name}`'s `{}`", mode_name(modes)))),
        );
    }
    let Some((first, first_what)) = batched_ins.first().cloned() else {
        return TokenStream::new();
    };
    let checks = batched_ins
        .iter()
        .skip(1)
        .map(|(v, w)| quote!(::fluxion::__private::same_batch(#w, #v.len(), #first_what, __n);));
    let mut outs = Vec::new();
    ret.leaves(quote!(__r), &mut outs);
    let out_ids: Vec<syn::Ident> = (0..outs.len()).map(|k| format_ident!("__o{}", k)).collect();
    let (inits, adds): (Vec<TokenStream>, Vec<TokenStream>) = outs
        .iter()
        .zip(&out_ids)
        .map(|((place, t, b), id)| {
            if *b {
                (
                    quote!(let mut #id = ::fluxion::__private::Vec::with_capacity(__n);),
                    quote!(#id.push(#place);),
                )
            } else {
                let z = crate::emit::zeros_tokens(t);
                let t = ty_tokens(t);
                (
                    quote!(let mut #id: #t = #z;),
                    quote!(::fluxion::__private::acc(&mut #id, #place);),
                )
            }
        })
        .unzip();
    let value = ret.assemble(&mut out_ids.iter());
    let rt = ty_tokens(&ret.batched_ty());
    let n = format_ident!("{}", mode_name(modes));
    let (gen, wc) = crate::emit::generic_parts(generics);
    quote! {
        #attrs
        pub fn #n #gen (#(#decls),*) -> #rt #wc {
            let __n = #first.len();
            #(#checks)*
            #(#inits)*
            for __i in 0..__n {
                let __r = <#inner>::#n(#(#args,)*);
                #(#adds)*
            }
            #value
        }
    }
}

/// The lanes companion `modes` (none: the function; `[Jvp]`: its `jvp`) of the batched
/// `cur` (`name`), for a batched caller: the batched arguments (slices, shared by the
/// caller's lanes) and the shared ones as lanes (a value per lane of the caller). Sample
/// `j` of every lane at once is the per-sample function's lanes companion with sample `j`
/// spread into every lane; the result is a `Vec` of lanes per output (element `j` holds
/// sample `j` of every lane). `None` where a type has no lanes form the macro can write.
#[allow(clippy::too_many_arguments)]
fn lanes_companion_of_batch(
    cur: &Func,
    batched: &[bool],
    modes: &[Mode],
    name: &str,
    generics: &syn::Generics,
    attrs: TokenStream,
    float: FloatTy,
    tuple: bool,
) -> Option<TokenStream> {
    let lt = LaneTarget { float };
    let v = lt.vector();
    let render = |t: &Ty| -> Option<TokenStream> {
        Some(if crate::batch::lanes_param(t) {
            lt.ty(&crate::batch::lanes_ty(t).ok()?)
        } else {
            ty_tokens(t)
        })
    };
    let inner = holder_ident(&cur.name, Span::call_site());
    let jvp = modes == [Mode::Jvp];
    let mut decls = Vec::new();
    let mut args = Vec::new();
    let mut slices: Vec<(syn::Ident, String)> = Vec::new();
    let mut tan_decls = Vec::new();
    let mut tan_args = Vec::new();
    for (k, (prm, &b)) in cur.params.iter().zip(batched).enumerate() {
        let (p, t) = (format_ident!("p{}", k), format_ident!("t{}", k));
        let tan = prm.ty.tangent();
        let amp = if prm.by_ref { quote!(&) } else { quote!() };
        if b {
            let (e, et) = (ty_tokens(&prm.ty), ty_tokens(&tan));
            decls.push(quote!(#p: &[#e]));
            tan_decls.push(quote!(#t: &[#et]));
            let sample = |src: &syn::Ident, ty: &Ty| {
                if crate::batch::lanes_param(ty) {
                    quote!(::fluxion::__private::spread::<#v, _>(#src[__j]))
                } else {
                    quote!(#src[__j])
                }
            };
            let ps = sample(&p, &prm.ty);
            args.push(quote!(#amp #ps));
            tan_args.push(sample(&t, &tan));
            let what = format!("argument {k} of `{name}`");
            slices.push((p, what.clone()));
            slices.push((t, format!("the tangent of {what}")));
        } else {
            let (pt, tt) = match &prm.ty {
                Ty::Slice(e) => {
                    let (e, et) = (ty_tokens(e), ty_tokens(&e.tangent()));
                    (quote!(&[#e]), quote!(&[#et]))
                }
                ty => (render(ty)?, render(&tan)?),
            };
            let amp = if matches!(prm.ty, Ty::Slice(_)) { quote!() } else { amp };
            decls.push(quote!(#p: #amp #pt));
            tan_decls.push(quote!(#t: #tt));
            args.push(quote!(#p));
            tan_args.push(quote!(#t));
        }
    }
    let slices: Vec<_> = slices
        .into_iter()
        .enumerate()
        .filter(|(k, _)| jvp || k % 2 == 0)
        .map(|(_, s)| s)
        .collect();
    let ((first, first_what), rest) = slices.split_first()?;
    let checks = rest
        .iter()
        .map(|(s, w)| quote!(::fluxion::__private::same_batch(#w, #s.len(), #first_what, __n);));
    let outs: Vec<Ty> = match &cur.ret_ty {
        Ty::Tuple(ts) => ts.clone(),
        t => vec![t.clone()],
    };
    let vecs = |ts: Vec<TokenStream>| {
        let vs: Vec<TokenStream> = ts.iter().map(|t| quote!(::fluxion::__private::Vec<#t>)).collect();
        if tuple {
            quote!((#(#vs,)*))
        } else {
            quote!(#(#vs)*)
        }
    };
    let y_ty = vecs(outs.iter().map(render).collect::<Option<_>>()?);
    let yt_ty = vecs(outs.iter().map(|t| render(&t.tangent())).collect::<Option<_>>()?);
    let ids = |p: &str| (0..outs.len()).map(|k| format_ident!("{p}{k}")).collect::<Vec<_>>();
    let (ys, ds) = (ids("__y"), ids("__d"));
    let whole = |ids: &[syn::Ident]| {
        if tuple {
            quote!((#(#ids,)*))
        } else {
            quote!(#(#ids)*)
        }
    };
    let push = |ids: &[syn::Ident], v: TokenStream| {
        if tuple {
            let ks = (0..ids.len()).map(syn::Index::from);
            quote!(#(#ids.push(#v.#ks);)*)
        } else {
            quote!(#(#ids.push(#v);)*)
        }
    };
    let (ret, call, pushes, value) = if jvp {
        let (py, pd) = (push(&ys, quote!(__r.0)), push(&ds, quote!(__r.1)));
        (
            quote!((#y_ty, #yt_ty)),
            quote!(<#inner>::jvp_lanes(#(#args,)* #(#tan_args,)*)),
            quote!(#py #pd),
            {
                let (y, d) = (whole(&ys), whole(&ds));
                quote!((#y, #d))
            },
        )
    } else {
        (
            y_ty,
            quote!(<#inner>::lanes(#(#args,)*)),
            push(&ys, quote!(__r)),
            whole(&ys),
        )
    };
    let all: Vec<&syn::Ident> = if jvp {
        ys.iter().chain(&ds).collect()
    } else {
        ys.iter().collect()
    };
    let n = format_ident!("{}", crate::emit::lanes_mode_name(modes));
    let (gen, wc) = crate::emit::generic_parts(generics);
    let tan_decls = if jvp { tan_decls } else { Vec::new() };
    Some(quote! {
        #attrs
        pub fn #n #gen (#(#decls,)* #(#tan_decls,)*) -> #ret #wc {
            let __n = #first.len();
            #(#checks)*
            #(let mut #all = ::fluxion::__private::Vec::with_capacity(__n);)*
            for __j in 0..__n {
                let __r = #call;
                #pushes
            }
            #value
        }
    })
}
