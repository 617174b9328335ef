//! `#[custom_rule(jvp = .., vjp = ..)]`: hand-written derivative rules for a function whose
//! body the engine does not read (another crate's function, an iterative solver), as JAX's
//! `custom_jvp`/`custom_vjp` and torch's `autograd.Function`.
//!
//! ```text
//! #[custom_rule(jvp = solve_jvp, vjp = solve_vjp, second_order)]
//! fn solve(x: f64) -> f64 { .. }
//! // expands to `solve` unchanged and its companions:
//! impl solve {
//!     fn jvp(x, dx) -> (y, dy)        { solve_jvp(x, dx) }
//!     fn vjp(x, ct) -> (y, (x_bar,))  { solve_vjp(x, ct) }
//!     fn jvp_jvp(..)                  { <solve_jvp's companions>::jvp(..) }  // second_order
//!     ..
//! }
//! ```
//! The rules follow the companion protocol: `jvp(primals.., tangents..) -> (y, ẏ)` with one
//! tangent per parameter (`()` for integers), `vjp(primals.., ct) -> (y, (cotangent per
//! parameter,..))`. A missing rule is derived from the other where every parameter and
//! the result are float scalars; otherwise a call needing it fails to compile, naming the
//! missing companion (`no function or associated item named `vjp``).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Token};

use crate::emit::holder_ident;
use crate::ir::Ty;

struct Args {
    jvp: Option<syn::Path>,
    vjp: Option<syn::Path>,
    second_order: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Args> {
        let mut a = Args {
            jvp: None,
            vjp: None,
            second_order: false,
        };
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "jvp" | "vjp" => {
                    if !input.peek(Token![=]) {
                        return Err(syn::Error::new(
                            key.span(),
                            format!("`{key}` names its rule function: write `{key} = f_{key}` (a path)"),
                        ));
                    }
                    input.parse::<Token![=]>()?;
                    let p: syn::Path = input.parse()?;
                    let slot = if key == "jvp" { &mut a.jvp } else { &mut a.vjp };
                    if slot.is_some() {
                        return Err(syn::Error::new(key.span(), format!("`{key}` is given twice")));
                    }
                    *slot = Some(p);
                }
                "second_order" => a.second_order = true,
                other => {
                    let hint = match other {
                        "jvp_rule" | "forward" | "jv" | "jpv" => " did you mean `jvp`?",
                        "vjp_rule" | "backward" | "reverse" | "vj" | "vpj" => " did you mean `vjp`?",
                        "second" | "order2" | "second_order_rules" | "secondorder" => " did you mean `second_order`?",
                        _ => match crate::attr::closest(other, &["jvp", "vjp", "second_order"]) {
                            Some("jvp") => " did you mean `jvp`?",
                            Some("vjp") => " did you mean `vjp`?",
                            Some(_) => " did you mean `second_order`?",
                            None => "",
                        },
                    };
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown option `{other}` for `custom_rule`: it takes `jvp = path`, `vjp = path`, `second_order`.{hint}"),
                    ));
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(a)
    }
}

fn simple_ty(t: &syn::Type) -> Option<Ty> {
    match t {
        syn::Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            match p.path.segments[0].ident.to_string().as_str() {
                "f64" => Some(Ty::Float(Some(crate::ir::FloatTy::F64))),
                "f32" => Some(Ty::Float(Some(crate::ir::FloatTy::F32))),
                n if ["i8", "i16", "i32", "i64", "isize", "u8", "u16", "u32", "u64", "usize"].contains(&n) => {
                    Some(Ty::Int(Some(n.into())))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A parameter of a lanes companion: its name, its per-sample type, and whether it is
/// passed by reference.
type LaneParam = (Ident, TokenStream, bool);

/// The modes of a companion's name (`"jvp_vjp"`: `[Jvp, Vjp]`).
fn mode_list(name: &str) -> Vec<crate::ir::Mode> {
    use crate::ir::Mode;
    match name {
        "" => vec![],
        "jvp" => vec![Mode::Jvp],
        "vjp" => vec![Mode::Vjp],
        "vjp_fwd" => vec![Mode::VjpFwd],
        "vjp_bwd" => vec![Mode::VjpBwd],
        "jvp_jvp" => vec![Mode::Jvp, Mode::Jvp],
        "jvp_vjp" => vec![Mode::Jvp, Mode::Vjp],
        "vjp_jvp" => vec![Mode::Vjp, Mode::Jvp],
        _ => vec![Mode::Vjp, Mode::Vjp],
    }
}

/// The tangent type's tokens of a parameter type as written (`()` for integers).
fn tangent_tokens(t: &syn::Type) -> TokenStream {
    let t = match t {
        syn::Type::Reference(r) => &*r.elem,
        t => t,
    };
    match simple_ty(t) {
        Some(Ty::Int(_)) => quote!(()),
        _ => {
            if let syn::Type::Path(p) = t {
                if p.path.is_ident("bool") {
                    return quote!(());
                }
            }
            quote!(<#t as ::fluxion::__private::Tangent>::T)
        }
    }
}

/// Expands `#[custom_rule(..)]` on `item`. On an error the function is kept as written, so
/// its callers see only that error.
pub fn expand_custom(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: syn::ItemFn = syn::parse2(item).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            "#[custom_rule] goes on a function: `fn f(x: f64) -> f64 { .. }`",
        )
    })?;
    match expand_custom_fn(args, item.clone()) {
        Ok(ts) => Ok(ts),
        Err(e) => {
            let e = e.to_compile_error();
            Ok(quote!(#item #e))
        }
    }
}

fn expand_custom_fn(args: TokenStream, mut item: syn::ItemFn) -> syn::Result<TokenStream> {
    let a: Args = syn::parse2(args)?;
    if a.jvp.is_none() && a.vjp.is_none() {
        return Err(syn::Error::new(
            Span::call_site(),
            "`custom_rule` needs at least one rule: `#[custom_rule(jvp = f_jvp)]`, `#[custom_rule(vjp = f_vjp)]` or both",
        ));
    }
    let sig = &item.sig;
    let syn::ReturnType::Type(_, ret) = &sig.output else {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "a function with a custom rule must return a value",
        ));
    };
    let mut names = Vec::new();
    let mut tys = Vec::new();
    for (k, input) in sig.inputs.iter().enumerate() {
        match input {
            syn::FnArg::Typed(pt) => {
                names.push(format_ident!("p{}", k));
                tys.push((*pt.ty).clone());
            }
            syn::FnArg::Receiver(r) => {
                return Err(syn::Error::new_spanned(
                    r,
                    "methods with `self` cannot have custom rules: write a free function",
                ))
            }
        }
    }
    let vis = &item.vis;
    let generics = &sig.generics;
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    let holder = holder_ident(&syn::ext::IdentExt::unraw(&sig.ident).to_string(), sig.ident.span());
    let dnames: Vec<Ident> = names.iter().map(|n| format_ident!("{}_dot", n)).collect();
    let ttys: Vec<TokenStream> = tys.iter().map(tangent_tokens).collect();
    let rtan = tangent_tokens(ret);
    let params = quote!(#(#names: #tys),*);
    let tparams = quote!(#(#dnames: #ttys),*);
    let bars_ty = quote!((#(#ttys,)*));
    let attrs = quote! {
        #[inline]
        #[allow(unused_variables, clippy::all, clippy::pedantic, clippy::nursery)]
    };
    let fname = sig.ident.to_string();
    let fn_ident = sig.ident.clone();
    // Derivations between the two rules for all-scalar signatures.
    let scalar = tys.iter().all(|t| simple_ty(t).is_some()) && matches!(simple_ty(ret), Some(Ty::Float(_)));
    let float_idx: Vec<usize> = tys
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(simple_ty(t), Some(Ty::Float(_))))
        .map(|(k, _)| k)
        .collect();
    let holder_of = |rule: &syn::Path| {
        let mut hp = rule.clone();
        if let Some(last) = hp.segments.last_mut() {
            last.ident = holder_ident(&syn::ext::IdentExt::unraw(&last.ident).to_string(), last.ident.span());
        }
        hp
    };
    let n2: Vec<Ident> = names.iter().map(|n| format_ident!("{}_d2", n)).collect();
    let anames: Vec<Ident> = names.iter().map(|n| format_ident!("{}_bar", n)).collect();
    let idx: Vec<syn::Index> = (0..names.len()).map(syn::Index::from).collect();
    let d2: Vec<Ident> = names.iter().map(|n| format_ident!("{}_dot_d2", n)).collect();
    let mut markers = TokenStream::new();
    let mut missing = |mode: &str, fix: &str| {
        let m = format_ident!("__fluxion_missing_{}__{}", fname, mode);
        let msg = format!("`{fname}` has a custom rule but no `{mode}` companion: {fix}");
        markers.extend(quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis struct #m;
            impl ::fluxion::__private::MissingRule for #m {
                const MSG: &'static str = #msg;
            }
        });
        quote!(::fluxion::__private::missing_rule::<#m>())
    };
    let second_fix = "mark its rule functions #[differentiable] and add `second_order` to its #[custom_rule]";
    // jvp
    let jvp_body = match (&a.jvp, &a.vjp) {
        (Some(j), _) => quote!(#j(#(#names,)* #(#dnames),*)),
        (None, Some(v)) if scalar => {
            // ẏ = Σ x̄ᵢ ẋᵢ with x̄ = vjp(x, 1).
            let terms = float_idx.iter().map(|k| {
                let b = syn::Index::from(*k);
                let d = &dnames[*k];
                quote!(bars.#b * #d)
            });
            quote! {
                let (y, bars) = #v(#(#names,)* 1.0);
                (y, 0.0 #(+ #terms)*)
            }
        }
        _ => missing(
            "jvp",
            "add `jvp = ..` to its #[custom_rule] (it is only derived for scalar signatures)",
        ),
    };
    // vjp
    let vjp_body = match (&a.vjp, &a.jvp) {
        (Some(v), _) => quote!(#v(#(#names,)* ct)),
        (None, Some(j)) if scalar => {
            // x̄ᵢ = ct · ∂y/∂xᵢ, one forward pass per float argument.
            let mut body = TokenStream::new();
            let mut bars = Vec::new();
            for k in 0..tys.len() {
                if float_idx.contains(&k) {
                    let seeds = tys.iter().enumerate().map(|(j2, t2)| match simple_ty(t2) {
                        Some(Ty::Float(_)) if j2 == k => quote!(1.0),
                        Some(Ty::Float(_)) => quote!(0.0),
                        _ => quote!(()),
                    });
                    let d = format_ident!("d{}", k);
                    body.extend(quote!(let (y, #d) = #j(#(#names,)* #(#seeds),*);));
                    bars.push(quote!(ct * #d));
                } else {
                    bars.push(quote!(()));
                }
            }
            quote! {
                #body
                (y, (#(#bars,)*))
            }
        }
        _ => missing(
            "vjp",
            "add `vjp = ..` to its #[custom_rule] (it is only derived for scalar signatures)",
        ),
    };
    let (jj, jv) = match (&a.jvp, a.second_order) {
        (Some(j), true) => {
            let hj = holder_of(j);
            (
                quote!(#hj::jvp(#(#names,)* #(#dnames,)* #(#n2,)* #(#d2),*)),
                quote!(#hj::vjp(#(#names,)* #(#dnames,)* ct)),
            )
        }
        _ => (missing("jvp_jvp", second_fix), missing("jvp_vjp", second_fix)),
    };
    let (vj, vv) = match (&a.vjp, a.second_order) {
        (Some(v), true) => {
            let hv = holder_of(v);
            (
                quote!(#hv::jvp(#(#names,)* ct, #(#n2,)* ct_dot)),
                quote!(#hv::vjp(#(#names,)* ct, ct2)),
            )
        }
        _ => (missing("vjp_jvp", second_fix), missing("vjp_vjp", second_fix)),
    };
    let fns = quote! {
        #[doc = "Forward companion."]
        #attrs
        pub fn jvp #gen (#params, #tparams) -> (#ret, #rtan) #where_clause { #jvp_body }
        #[doc = "Reverse companion."]
        #attrs
        pub fn vjp #gen (#params, ct: #rtan) -> (#ret, #bars_ty) #where_clause { #vjp_body }
        #[doc = "The forward half of the reverse companion: no residuals, the rule runs in `vjp_bwd`."]
        #attrs
        pub fn vjp_fwd #gen (#params) -> (#ret, ()) #where_clause { (#fn_ident(#(#names),*), ()) }
        #[doc = "The reverse half of the reverse companion."]
        #attrs
        pub fn vjp_bwd #gen (#params, _residuals: (), ct: #rtan) -> #bars_ty #where_clause { Self::vjp(#(#names,)* ct).1 }
        #[doc = "The reverse half, adding each cotangent into the caller's accumulator."]
        #attrs
        pub fn vjp_bwd_acc #gen (#params, _residuals: (), ct: #rtan, #(#anames: &mut #ttys),*) #where_clause {
            let bars = Self::vjp(#(#names,)* ct).1;
            #(::fluxion::__private::acc(#anames, bars.#idx);)*
        }
        #[doc = "Second order: the forward companion of the forward rule."]
        #attrs
        pub fn jvp_jvp #gen (#params, #tparams, #(#n2: #ttys),*, #(#d2: #ttys),*) -> ((#ret, #rtan), (#rtan, #rtan)) #where_clause { #jj }
        #[doc = "Second order: the reverse companion of the forward rule."]
        #attrs
        pub fn jvp_vjp #gen (#params, #tparams, ct: (#rtan, #rtan)) -> ((#ret, #rtan), (#(#ttys,)* #(#ttys,)*)) #where_clause { #jv }
        #[doc = "Second order: the forward companion of the reverse rule."]
        #attrs
        pub fn vjp_jvp #gen (#params, ct: #rtan, #(#n2: #ttys),*, ct_dot: #rtan) -> ((#ret, #bars_ty), (#rtan, #bars_ty)) #where_clause { #vj }
        #[doc = "Second order: the reverse companion of the reverse rule."]
        #attrs
        pub fn vjp_vjp #gen (#params, ct: #rtan, ct2: (#rtan, #bars_ty)) -> ((#ret, #bars_ty), (#(#ttys,)* #rtan,)) #where_clause { #vv }
    };
    // Lanes companions (a batched caller's callees): the scalar companion run lane by lane,
    // one sample at a time (a custom rule is opaque to batching).
    let fns = {
        let text = quote!(#(#tys)* #ret).to_string();
        let vector = if !generics.params.is_empty() {
            None
        } else if text.contains("f64") {
            Some(quote!(::fluxion::__private::f64x4))
        } else if text.contains("f32") {
            Some(quote!(::fluxion::__private::f32x8))
        } else {
            None
        };
        let mut fns = fns;
        if let Some(v) = vector {
            let prim = |t: &syn::Type| match t {
                syn::Type::Reference(r) => ((*r.elem).to_token_stream(), true),
                t => (t.to_token_stream(), false),
            };
            let ps: Vec<LaneParam> = names
                .iter()
                .zip(&tys)
                .map(|(n, t)| {
                    let (t, r) = prim(t);
                    (n.clone(), t, r)
                })
                .collect();
            let tan = |ns: &[Ident]| -> Vec<LaneParam> {
                ns.iter()
                    .zip(&ttys)
                    .map(|(n, t)| (n.clone(), t.clone(), false))
                    .collect()
            };
            let one = |n: &str, t: TokenStream| vec![(format_ident!("{}", n), t, false)];
            let rt = |t: &TokenStream| t.clone();
            let ret_t = ret.to_token_stream();
            let cat = |parts: Vec<Vec<LaneParam>>| parts.concat();
            let specs: Vec<(&str, Vec<LaneParam>, TokenStream)> = vec![
                ("", ps.clone(), rt(&ret_t)),
                ("jvp", cat(vec![ps.clone(), tan(&dnames)]), quote!((#ret, #rtan))),
                (
                    "vjp",
                    cat(vec![ps.clone(), one("ct", rtan.clone())]),
                    quote!((#ret, #bars_ty)),
                ),
                ("vjp_fwd", ps.clone(), quote!((#ret, ()))),
                (
                    "vjp_bwd",
                    cat(vec![ps.clone(), one("_residuals", quote!(())), one("ct", rtan.clone())]),
                    bars_ty.clone(),
                ),
                (
                    "jvp_jvp",
                    cat(vec![ps.clone(), tan(&dnames), tan(&n2), tan(&d2)]),
                    quote!(((#ret, #rtan), (#rtan, #rtan))),
                ),
                (
                    "jvp_vjp",
                    cat(vec![ps.clone(), tan(&dnames), one("ct", quote!((#rtan, #rtan)))]),
                    quote!(((#ret, #rtan), (#(#ttys,)* #(#ttys,)*))),
                ),
                (
                    "vjp_jvp",
                    cat(vec![
                        ps.clone(),
                        one("ct", rtan.clone()),
                        tan(&n2),
                        one("ct_dot", rtan.clone()),
                    ]),
                    quote!(((#ret, #bars_ty), (#rtan, #bars_ty))),
                ),
                (
                    "vjp_vjp",
                    cat(vec![
                        ps.clone(),
                        one("ct", rtan.clone()),
                        one("ct2", quote!((#rtan, #bars_ty))),
                    ]),
                    quote!(((#ret, #bars_ty), (#(#ttys,)* #rtan,))),
                ),
            ];
            let mut lanes = TokenStream::new();
            // First order only, as for every function (`crate::batch` never calls a
            // second-order lanes companion).
            for (mode, params, r) in specs.into_iter().filter(|(m, ..)| mode_list(m).len() < 2) {
                let scalar = if mode.is_empty() {
                    quote!(#fn_ident)
                } else {
                    let m = format_ident!("{}", mode);
                    quote!(Self::#m)
                };
                let name = format_ident!("{}", crate::emit::lanes_mode_name(&mode_list(mode)));
                let decl = params.iter().map(|(n, t, r)| {
                    if *r {
                        quote!(#n: &<#t as ::fluxion::__private::Spread<#v>>::Out)
                    } else {
                        quote!(#n: <#t as ::fluxion::__private::Spread<#v>>::Out)
                    }
                });
                let at = |k: TokenStream| {
                    let a = params.iter().map(|(n, t, r)| {
                        let l = if *r { quote!(#n) } else { quote!(&#n) };
                        let x = quote!(<#t as ::fluxion::__private::Spread<#v>>::lane(#l, #k));
                        if *r {
                            quote!(&#x)
                        } else {
                            x
                        }
                    });
                    quote!(#scalar(#(#a),*))
                };
                let first = at(quote!(0));
                let kth = at(quote!(k));
                lanes.extend(quote! {
                    #[doc = "Lanes companion: the scalar one lane by lane."]
                    #attrs
                    pub fn #name(#(#decl),*) -> <#r as ::fluxion::__private::Spread<#v>>::Out {
                        let mut out = ::fluxion::__private::spread::<#v, #r>(#first);
                        for k in 1..<#v as ::fluxion::__private::Lanes>::LANES {
                            <#r as ::fluxion::__private::Spread<#v>>::set_lane(&mut out, k, #kth);
                        }
                        out
                    }
                });
            }
            let ps_decl = ps.iter().map(|(n, t, r)| {
                if *r {
                    quote!(#n: &<#t as ::fluxion::__private::Spread<#v>>::Out)
                } else {
                    quote!(#n: <#t as ::fluxion::__private::Spread<#v>>::Out)
                }
            });
            let ps_use = names.iter();
            lanes.extend(quote! {
                #[doc = "Lanes companion: the reverse half, into the caller's accumulators."]
                #attrs
                pub fn vjp_bwd_acc_lanes(#(#ps_decl,)* _residuals: (), ct: <#rtan as ::fluxion::__private::Spread<#v>>::Out, #(#anames: &mut <#ttys as ::fluxion::__private::Spread<#v>>::Out),*) {
                    let bars = Self::vjp_lanes(#(#ps_use,)* ct).1;
                    #(::fluxion::__private::acc(#anames, bars.#idx);)*
                }
            });
            fns.extend(lanes);
        }
        fns
    };
    item.attrs
        .push(syn::parse_quote!(#[allow(clippy::needless_range_loop)]));
    let item_ts = item.to_token_stream();
    markers.extend(crate::expand::uses_original(&item));
    let holder_item = crate::emit::holder_item(&vis.to_token_stream(), &holder, &fns, &markers);
    Ok(quote! {
        #item_ts
        #holder_item
    })
}
