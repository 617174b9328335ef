//! `vmap`: the batched kernel of a function (`batch.rs`) and the functions over slices that
//! run it chunk by chunk.
//!
//! ```text
//! #[vmap(in_dims = (0, None))] fn f(x: f64, w: &[f64; 3]) -> f64      expands to
//! fn __fluxion_kernel_f_vmap(x: f64x4, w: &[f64; 3]) -> f64x4        the body on lanes
//! fn f_vmap(x: &[f64], w: &[f64; 3]) -> Vec<f64>                     allocates the result
//! fn f_vmap_into(x: &[f64], w: &[f64; 3], out: &mut [f64]) {         the caller's buffer:
//!     check_batch(..);                                               sizes agree, or a panic
//!     for each chunk of LANES samples (the last one padded):         naming both arguments
//!         out[chunk] = unpack(kernel(pack(x[chunk]), w))
//! }
//! ```

use super::*;
use crate::batch::{batch, BatchSpec};
use crate::emit::{turbofish, ty_tokens, LaneTarget, Scalar, Target};

/// The items of `#[vmap]` on `cur`: the kernel, `name` and `name_into`.
pub(super) fn vmap_items(
    cur: &Func,
    o: &Options,
    site: &Site,
    name: &str,
    vis: &TokenStream,
    generics: &syn::Generics,
) -> Result<TokenStream, syn::Error> {
    let batched = match &o.in_dims {
        None => vec![true; cur.params.len()],
        Some(d) => d
            .batched(cur.params.len())
            .map_err(|(span, msg)| syn::Error::new(span, msg))?,
    };
    // What the samples of each batched argument are: floats and fixed arrays of them.
    let mut float = None;
    for (p, b) in cur.params.iter().zip(&batched) {
        if !b {
            continue;
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
                    "`vmap` batches arguments of `f64`, `f32` and fixed arrays of them, not `{}`: give this argument `None` in `in_dims` to share it",
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
                "`vmap` batches results of `f64`, `f32`, fixed arrays of them, and tuples of these, not `{}`",
                cur.ret_ty
            ),
        ));
    }
    let float = float.unwrap_or(FloatTy::F64);
    let spec = BatchSpec {
        batched: batched.clone(),
    };
    let mut kernel = batch(&cur.clone(), &spec).map_err(|d| syn::Error::new(d.span.unwrap_or(o.span), d.msg))?;
    let kernel_name = format!("__fluxion_kernel_{name}");
    kernel.name = kernel_name.clone();
    let lanes = LaneTarget { float };
    let kernel_tokens = Emitter::with_lanes(&kernel, &Scalar, &lanes).function(&FnHeader {
        vis: quote!(),
        name: format_ident!("{}", kernel_name),
        generics,
        attrs: quote! {
            #[doc(hidden)]
            #[inline(always)]
            #[allow(unused_mut, unused_variables, unused_parens, unused_braces, non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
        },
    });

    // The functions over slices.
    let names = crate::emit::Names::new(cur);
    let arg_names: Vec<TokenStream> = cur
        .params
        .iter()
        .map(|p| {
            let n = names.ident(p.var);
            quote!(#n)
        })
        .collect();
    let vector = lanes.vector();
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    let mut params = Vec::new();
    let mut args = Vec::new();
    let mut packs = Vec::new();
    let mut checks = Vec::new();
    let mut try_checks = Vec::new();
    let first = cur
        .params
        .iter()
        .zip(&batched)
        .find(|(_, b)| **b)
        .map(|(p, _)| names.ident(p.var));
    let first_name = first.as_ref().map(|i| i.to_string()).unwrap_or_default();
    for (p, b) in cur.params.iter().zip(&batched) {
        let n = names.ident(p.var);
        let t = ty_tokens(&p.ty);
        if *b {
            params.push(quote!(#n: &[#t]));
            let packed = format_ident!("{}_lanes", n);
            packs.push(quote!(let #packed = ::fluxion::__private::pack::<#vector, #t>(&#n[__fluxion_start + __fluxion_i..__fluxion_start + __fluxion_i + __fluxion_m]);));
            args.push(if p.by_ref { quote!(&#packed) } else { quote!(#packed) });
            if n != first_name {
                let (sn, fname) = (n.to_string(), first_name.clone());
                let f = first.clone();
                checks.push(quote!(::fluxion::__private::check_batch(#sn, #n.len(), #fname, #f.len());));
                try_checks.push(quote!(::fluxion::__private::try_check_batch(#sn, #n.len(), #fname, #f.len())?;));
            }
        } else {
            params.push(match (&p.ty, p.by_ref) {
                // A shared slice is borrowed as the original takes it.
                (Ty::Slice(e), _) => {
                    let e = ty_tokens(e);
                    quote!(#n: &[#e])
                }
                (_, true) => quote!(#n: &#t),
                _ => quote!(#n: #t),
            });
            args.push(quote!(#n));
        }
    }
    // The caller's buffer: `out`, unless an argument has that name.
    let taken: Vec<String> = cur.params.iter().map(|p| names.ident(p.var).to_string()).collect();
    let out = if taken.iter().any(|n| n == "out") {
        format_ident!("out_buffer")
    } else {
        format_ident!("out")
    };
    let outs: Vec<Ty> = match &cur.ret_ty {
        Ty::Tuple(ts) => ts.clone(),
        t => vec![t.clone()],
    };
    let tuple = matches!(cur.ret_ty, Ty::Tuple(_));
    let out_tys: Vec<TokenStream> = outs.iter().map(ty_tokens).collect();
    let out_param = if tuple {
        quote!(#out: (#(&mut [#out_tys],)*))
    } else {
        let t = &out_tys[0];
        quote!(#out: &mut [#t])
    };
    let fname = first_name.clone();
    let out_checks: Vec<TokenStream> = (0..outs.len())
        .map(|k| {
            let (place, what) = if tuple {
                let k = syn::Index::from(k);
                (quote!(#out.#k), format!("{out}.{}", k.index))
            } else {
                (quote!(#out), out.to_string())
            };
            let f = first.clone();
            quote!(::fluxion::__private::check_batch(#what, #place.len(), #fname, #f.len());)
        })
        .collect();
    let unpacks: Vec<TokenStream> = (0..outs.len())
        .map(|k| {
            let t = &out_tys[k];
            if tuple {
                let k = syn::Index::from(k);
                quote!(::fluxion::__private::unpack::<#vector, #t>(&__fluxion_r.#k, &mut #out.#k[__fluxion_i..__fluxion_i + __fluxion_m]);)
            } else {
                quote!(::fluxion::__private::unpack::<#vector, #t>(&__fluxion_r, &mut #out[__fluxion_i..__fluxion_i + __fluxion_m]);)
            }
        })
        .collect();
    let kernel_ident = format_ident!("{}", kernel_name);
    let chunks_ident = format_ident!("__fluxion_chunks_{}", name);
    let tf = turbofish(generics);
    let chunk_call = quote!(#chunks_ident #tf (#(#arg_names,)* #out, __fluxion_start));
    let run_chunks = if uses_lane_kernels(&kernel) {
        quote!(::fluxion::__private::best_simd(|| #chunk_call))
    } else {
        chunk_call
    };
    let turbofish = turbofish(generics);
    let name_ident = format_ident!("{}", name);
    let try_ident = format_ident!("try_{}", name);
    let doc_try = format!(
        "[`{name}`], or `Err` naming the batched argument whose number of samples differs from the first one's (where [`{name}`] panics)."
    );
    let into_ident = format_ident!("{}_into", name);
    let zeros: Vec<TokenStream> = outs
        .iter()
        .map(|t| {
            let z = Scalar.zeros(t);
            let f = first.clone();
            quote!(::std::vec![#z; #f.len()])
        })
        .collect();
    let (ret_ty, alloc, pass_out, give) = if tuple {
        let vs: Vec<syn::Ident> = (0..outs.len()).map(|k| format_ident!("__fluxion_out{}", k)).collect();
        (
            quote!((#(::std::vec::Vec<#out_tys>,)*)),
            quote!(#(let mut #vs = #zeros;)*),
            quote!((#(&mut #vs,)*)),
            quote!((#(#vs,)*)),
        )
    } else {
        let t = &out_tys[0];
        let z = &zeros[0];
        (
            quote!(::std::vec::Vec<#t>),
            quote!(let mut #out = #z;),
            quote!(&mut #out),
            quote!(#out),
        )
    };
    let doc = format!(
        "[`{}`] over a batch (`in_dims`: {}): {} Each sample's result is what [`{}`] gives for it (within the lane functions' documented error), in sample order; the batch runs on SIMD lanes, {} samples at a time.\n\nPanics if the batched arguments have different lengths.\n\nMirrors {}. Generated by fluxion.",
        cur.name,
        in_dims_text(cur, &batched),
        "batched arguments are slices of samples, shared ones are as in the original, and each result is a `Vec` of per-sample results.",
        cur.name,
        match float {
            FloatTy::F64 => 4,
            FloatTy::F32 => 8,
        },
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
    let doc_into = format!(
        "Writes what [`{name}`] returns into `out` (one slot per sample; a tuple result gives a tuple of slices): no allocation.\n\n`chunk_size`: the samples per thread task (torch.func's `chunk_size`); `None` takes the attribute's, else a size from the kernel's cost. Batches larger than that are split across threads (with fluxion's `parallel` feature); every sample's result is the same bit for bit whatever the split.\n\nPanics if the batched arguments or `out` have different lengths, or if `chunk_size` is `Some(0)`."
    );
    // The default chunk: the attribute's, else from the kernel's cost per sample.
    let default_chunk = match o.chunk_size {
        Some((k, _)) => quote!(.or(::core::option::Option::Some(#k))),
        None => quote!(),
    };
    let lanes_n: u64 = match float {
        FloatTy::F64 => 4,
        FloatTy::F32 => 8,
    };
    let cost = (crate::cost::run_weight(&kernel.body) / lanes_n).max(1) as usize;
    Ok(quote! {
        #kernel_tokens
        #[doc = #doc]
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        #vis fn #name_ident #gen (#(#params),*) -> #ret_ty #where_clause {
            #alloc
            #into_ident #turbofish (#(#arg_names,)* #pass_out, ::core::option::Option::None);
            #give
        }
        #[doc = #doc_try]
        #[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)]
        #vis fn #try_ident #gen (#(#params),*) -> ::core::result::Result<#ret_ty, ::fluxion::BatchError> #where_clause {
            #(#try_checks)*
            ::core::result::Result::Ok(#name_ident #turbofish (#(#arg_names),*))
        }
        #[doc = #doc_into]
        #[allow(dead_code, clippy::all, clippy::pedantic, clippy::nursery)]
        #vis fn #into_ident #gen (#(#params,)* #out_param, chunk_size: ::core::option::Option<usize>) #where_clause {
            #(#checks)*
            #(#out_checks)*
            let __fluxion_grain = ::fluxion::__private::grain(
                chunk_size #default_chunk,
                #cost,
                <#vector as ::fluxion::__private::Lanes>::LANES,
            );
            ::fluxion::__private::drive(__fluxion_grain, #out, &|__fluxion_start: usize, #out| {
                #run_chunks
            });
        }
        #[doc(hidden)]
        #[inline(always)]
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        fn #chunks_ident #gen (#(#params,)* #out_param, __fluxion_start: usize) #where_clause {
            let __fluxion_n = ::fluxion::__private::OutSlices::samples(&#out);
            let mut __fluxion_i = 0;
            while __fluxion_i < __fluxion_n {
                let __fluxion_m = ::core::cmp::min(__fluxion_n - __fluxion_i, <#vector as ::fluxion::__private::Lanes>::LANES);
                #(#packs)*
                let __fluxion_r = #kernel_ident #turbofish (#(#args),*);
                #(#unpacks)*
                __fluxion_i += __fluxion_m;
            }
        }
    })
}

/// Whether a kernel calls lane functions written as scalar code over the lanes (which
/// vectorise to the widest features of the function they are compiled in): those are worth
/// a second copy compiled for AVX2 (`best_simd`).
fn uses_lane_kernels(k: &Func) -> bool {
    let mut any = false;
    walk_stmts(&k.body, &mut |s| {
        if let Stmt::Let(v, Expr::Prim(p, _)) = s {
            if matches!(k.vars[*v].ty, Ty::Lanes(_))
                && matches!(
                    p,
                    Prim::Exp | Prim::ExpM1 | Prim::Exp2 | Prim::Tanh | Prim::Ln | Prim::Powf
                )
            {
                any = true;
            }
        }
    });
    any
}

/// Whether samples of `t` can be packed into lanes: floats, fixed arrays and tuples of
/// them.
fn packable(t: &Ty) -> bool {
    match t {
        Ty::Float(_) => true,
        Ty::Array(e, _) => packable(e),
        Ty::Tuple(ts) => !ts.is_empty() && ts.len() <= 4 && ts.iter().all(packable),
        _ => false,
    }
}

fn in_dims_text(f: &Func, batched: &[bool]) -> String {
    let parts: Vec<String> = f
        .params
        .iter()
        .zip(batched)
        .map(|(p, b)| format!("`{}` {}", f.vars[p.var].name, if *b { "batched" } else { "shared" }))
        .collect();
    parts.join(", ")
}
