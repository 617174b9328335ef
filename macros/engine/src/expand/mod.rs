//! The entry point: attribute arguments + annotated function -> generated code.
//!
//! ```text
//! #[jacfwd] #[jacrev] fn f(..)     expands to
//! fn f(..)                         the original, unchanged
//! struct f {}; impl f { fn jvp, vjp, jvp_jvp, .. }               f's companions (type namespace)
//! fn f_jacrev(..)                  jacrev(f), and its companions
//! fn f_jacrev_jacfwd(..)           jacfwd(jacrev(f)), and its companions
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::spanned::Spanned;

use crate::attr::{parse_options, Options};
use crate::emit::{holder_ident, mode_name, Emitter, FnHeader};
use crate::error::Ctxt;
use crate::ir::*;
use crate::lower::lower_fn;
use crate::rules::RuleTable;
use crate::symbol::Transform;
use crate::transforms::{self, companion, GenFn, PullbackForm, Site};

mod batched_holder;
mod companions;
mod generated;
mod stubs;
pub(crate) use stubs::arg_types;
mod tools;
mod vmap;

use companions::{calls_functions, holder};
pub use companions::{max_call_order, COMPANIONS, MAX_ORDER};
use generated::{build, emit_gen, into_gen};
use stubs::stubs;
pub use tools::{expand_item_text, expand_item_text_with, lower_file, lower_source, pretty};

/// The argument of the inert attribute uses that keep stacked attributes' imports used.
const STACKED: &str = "__fluxion_stacked";

/// Whether an attribute is one of fluxion's transforms (`grad`, `fluxion::grad`, ..).
fn transform_of(attr: &syn::Attribute) -> Option<Transform> {
    let p = attr.path();
    let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
    match segs.as_slice() {
        [n] => Transform::from_name(n),
        [c, n] if c == "fluxion" => Transform::from_name(n),
        _ => None,
    }
}

/// Expands one transform attribute (the outermost of a stack) on `item`.
pub fn expand(t: Transform, args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand_with(t, args, item, &RuleTable::standard())
}

/// [`expand`] with a given rule table.
pub fn expand_with(t: Transform, args: TokenStream, item: TokenStream, rules: &RuleTable) -> syn::Result<TokenStream> {
    expand_with_structs(t, args, item, rules, &[])
}

/// `__with_fields!`: an attribute expanded again with the fields of the parameter structs
/// its function takes (see [`crate::structs`]).
pub fn expand_with_fields(input: TokenStream) -> syn::Result<TokenStream> {
    let (infos, t, args, item) = crate::structs::parse_with_fields(input)?;
    expand_with_structs(t, args, item, &RuleTable::standard(), &infos)
}

/// [`expand_with`], knowing the fields of the structs `infos`.
fn expand_with_structs(
    t: Transform,
    args: TokenStream,
    item: TokenStream,
    rules: &RuleTable,
    infos: &[crate::structs::StructInfo],
) -> syn::Result<TokenStream> {
    if args.to_string() == STACKED {
        // The inert use of a consumed stacked attribute (see below): nothing to emit.
        return Ok(TokenStream::new());
    }
    let mut item: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            // Point at the item's keyword (`struct`, `impl`, ..) where there is one.
            let span = match syn::parse2::<syn::Item>(item.clone()) {
                Ok(syn::Item::Struct(s)) => s.struct_token.span,
                Ok(syn::Item::Enum(e)) => e.enum_token.span,
                Ok(syn::Item::Impl(i)) => i.impl_token.span,
                Ok(syn::Item::Const(c)) => c.const_token.span,
                Ok(syn::Item::Static(s)) => s.static_token.span,
                Ok(syn::Item::Mod(m)) => m.mod_token.span,
                Ok(syn::Item::Trait(t)) => t.trait_token.span,
                _ => Span::call_site(),
            };
            return Err(syn::Error::new(
                span,
                format!("#[{}] goes on a function: `fn f(x: f64) -> f64 {{ .. }}`", t.name()),
            ));
        }
    };
    // A parameter struct whose fields are not known yet: its derive's macro lists them and
    // expands this attribute again (`__with_fields!`).
    let plan = match crate::structs::plan(&item, infos) {
        Ok(p) => p,
        Err(missing) => {
            let m = crate::structs::fields_macro(&missing);
            let m = syn::Ident::new(&m.to_string(), missing.span());
            let name = syn::Ident::new(t.name(), Span::call_site());
            let known = infos.iter().map(crate::structs::info_tokens);
            return Ok(quote!(#m! { #(#known)* #name (#args) #item }));
        }
    };
    let mut cx = Ctxt::new();
    let mut stack: Vec<Options> = Vec::new();
    match parse_options(t, Span::call_site(), args) {
        Ok(o) => stack.push(o),
        Err(e) => {
            cx.push(e);
            stack.push(Options::new(t, Span::call_site()));
        }
    }
    let mut kept = Vec::new();
    // The stacked attributes below this one are consumed here, so rustc never resolves
    // their paths: an inert use of each keeps the user's `use fluxion::grad` import used.
    let mut consumed = TokenStream::new();
    for a in std::mem::take(&mut item.attrs) {
        match transform_of(&a) {
            Some(tt) => {
                let path = a.path();
                consumed.extend(quote!(#[#path(__fluxion_stacked)] const _: () = ();));
                let args = match &a.meta {
                    syn::Meta::Path(_) => TokenStream::new(),
                    syn::Meta::List(l) => l.tokens.clone(),
                    syn::Meta::NameValue(nv) => {
                        cx.error_spanned_by(nv, format!("write `#[{}(option = value)]`", tt.name()));
                        TokenStream::new()
                    }
                };
                // The attribute's name (a span cannot cover `#[..]` whole on stable).
                let at = a.path().segments.last().map_or(a.span(), |s| s.ident.span());
                match parse_options(tt, at, args) {
                    Ok(o) => stack.push(o),
                    Err(e) => {
                        cx.push(e);
                        stack.push(Options::new(tt, at));
                    }
                }
            }
            None => kept.push(a),
        }
    }
    item.attrs = kept;
    // The original is kept as written, its warnings the user's own; fluxion's language loops
    // over indices (`for i in 0..N`), which clippy flags. Callers often use only the
    // generated functions: `uses_original` keeps the original from being "never used".
    item.attrs
        .push(syn::parse_quote!(#[allow(clippy::needless_range_loop)]));
    let consumed = {
        let mut c = consumed;
        c.extend(uses_original(&item));
        c
    };
    if let Some(plan) = plan {
        return expand_flat(&item, &stack, &plan, infos, rules, consumed, cx);
    }
    if let Some(dplan) = crate::dvector::plan(&item) {
        return expand_dvector(&item, &stack, &dplan, rules, consumed, cx);
    }
    let names = promised_names(&item, &stack);
    let result = lower_and_generate(&item, &stack, rules, &consumed, &mut cx);
    match result {
        Ok(ts) => {
            cx.check()?;
            Ok(quote!(#item #ts))
        }
        Err(e) => {
            if let Some(e) = e {
                cx.push(e);
            }
            let errors = match cx.check() {
                Err(e) => {
                    // The original keeps its signature, for its callers, but not its body:
                    // rustc would report again what fluxion reported (a statement where a
                    // value is needed, a missing `else`, ..).
                    let msg = format!("fluxion could not expand `{}`: see the compile error", item.sig.ident);
                    *item.block = syn::parse_quote!({ unreachable!(#msg) });
                    item.attrs
                        .push(syn::parse_quote!(#[allow(unused_variables, unused_mut)]));
                    e.to_compile_error()
                }
                Ok(()) => quote!(),
            };
            let stubs = stubs(&item, &stack, &names);
            Ok(quote!(#item #errors #stubs #consumed))
        }
    }
}

/// The expansion of a function taking parameter structs: the original, its flat form
/// with every transform, and the wrappers of the user's names (see [`crate::structs`]).
fn expand_flat(
    item: &syn::ItemFn,
    stack: &[Options],
    plan: &[crate::structs::Arg],
    infos: &[crate::structs::StructInfo],
    rules: &RuleTable,
    consumed: TokenStream,
    mut cx: Ctxt,
) -> syn::Result<TokenStream> {
    use crate::structs;
    let flat_stack = match structs::map_options(stack, plan, &item.sig.output) {
        Ok(s) => s,
        Err(e) => {
            cx.push(e);
            return Ok(failed_flat(item, cx, consumed));
        }
    };
    let flat = match structs::flatten(item, plan) {
        Ok(f) => f,
        Err(e) => {
            cx.push(e);
            return Ok(failed_flat(item, cx, consumed));
        }
    };
    let arrays = structs::nalgebra_arrays(plan);
    let func = crate::lower::lower_fn_with(&flat, &mut cx, &arrays).map(|mut f| {
        crate::simplify::merge(&mut f);
        f
    });
    // The flat function itself, emitted from the IR: its source reads nalgebra fields as
    // arrays (their storage), which Rust's operators do not take.
    let flat_fn = func.as_ref().map(|f| {
        let attrs = &flat.attrs;
        Emitter::new(f).function(&FnHeader {
            vis: flat.vis.to_token_stream(),
            name: flat.sig.ident.clone(),
            generics: &flat.sig.generics,
            attrs: quote! {
                #(#attrs)*
                #[allow(unused_mut, unused_variables, unused_parens, unused_braces, clippy::all, clippy::pedantic, clippy::nursery)]
            },
        })
    });
    let result = match (func, cx.has_errors()) {
        (Some(f), false) => generate(&flat, f, &flat_stack, rules, consumed.clone()),
        _ => Err(None),
    };
    match result {
        Ok(ts) => {
            cx.check()?;
            let flat_tokens = flat_fn.unwrap_or_default();
            // The struct's derivative comes from the outermost transform, or from the
            // `grad` under an outermost `vmap` (then one struct per sample).
            let names: Vec<String> = promised_names(&flat, &flat_stack).into_iter().map(|(_, n)| n).collect();
            let top = match (stack, names.as_slice()) {
                ([v, g, ..], [.., gn, vn])
                    if v.transform == Transform::Vmap
                        && matches!(g.transform, Transform::Grad | Transform::GradAndValue) =>
                {
                    Some((g, gn.as_str(), Some(vn.as_str())))
                }
                ([o, ..], [.., n]) => Some((o, n.as_str(), None)),
                _ => None,
            };
            let orig: Vec<Option<syn::Type>> = item
                .sig
                .inputs
                .iter()
                .map(|a| match a {
                    syn::FnArg::Typed(pt) => Some((*pt.ty).clone()),
                    syn::FnArg::Receiver(_) => None,
                })
                .collect();
            let wrapped = structs::wrappers(ts, infos, plan, top, &orig, &item.sig.output)?;
            Ok(quote!(#item #flat_tokens #wrapped))
        }
        Err(e) => {
            if let Some(e) = e {
                cx.push(e);
            }
            Ok(failed_flat(item, cx, consumed))
        }
    }
}

/// The expansion of a function taking `DVector`s: the original, its flat form over slices
/// with the transform, and the wrappers of the user's names (see [`crate::dvector`]).
fn expand_dvector(
    item: &syn::ItemFn,
    stack: &[Options],
    plan: &[Option<crate::dvector::Dyn>],
    rules: &RuleTable,
    consumed: TokenStream,
    mut cx: Ctxt,
) -> syn::Result<TokenStream> {
    use crate::dvector;
    let flat_stack = match dvector::map_options(stack, item, plan) {
        Ok(s) => s,
        Err(e) => {
            cx.push(e);
            return Ok(failed_flat(item, cx, consumed));
        }
    };
    let flat = dvector::flatten(item, plan);
    let result = lower_and_generate(&flat, &flat_stack, rules, &consumed, &mut cx);
    match result {
        Ok(ts) => {
            cx.check()?;
            let names = promised_names(&flat, &flat_stack);
            let top = match (
                flat_stack.iter().find(|o| o.transform != Transform::Differentiable),
                names.last(),
            ) {
                (Some(o), Some((_, n))) => (o, n.as_str()),
                _ => return Err(syn::Error::new(item.sig.ident.span(), "internal: no transform")),
            };
            let wrapped = dvector::wrappers(ts, plan, item, top)?;
            Ok(quote!(#item #flat #wrapped))
        }
        Err(e) => {
            if let Some(e) = e {
                cx.push(e);
            }
            Ok(failed_flat(item, cx, consumed))
        }
    }
}

/// The original without its body, and the errors.
fn failed_flat(item: &syn::ItemFn, cx: Ctxt, consumed: TokenStream) -> TokenStream {
    let mut item = item.clone();
    let errors = match cx.check() {
        Err(e) => e.to_compile_error(),
        Ok(()) => quote!(),
    };
    let msg = format!("fluxion could not expand `{}`: see the compile error", item.sig.ident);
    *item.block = syn::parse_quote!({ unreachable!(#msg) });
    item.attrs
        .push(syn::parse_quote!(#[allow(unused_variables, unused_mut)]));
    quote!(#item #errors #consumed)
}

/// A hidden item that names the original, so that a function only used through its
/// generated forms is not reported as never used, without `allow(dead_code)` on the
/// original (which would hide the user's own warnings): items allowing `dead_code` are
/// roots of rustc's liveness analysis.
///
/// Expands to: `#[allow(dead_code)] fn __fluxion_uses_f<T, const N: usize>() { let _ = f::<T, N>; }`
pub fn uses_original(item: &syn::ItemFn) -> TokenStream {
    if item.sig.receiver().is_some() {
        // A method (already an error): not reachable as a free function.
        return TokenStream::new();
    }
    let f = &item.sig.ident;
    let name = format_ident!("__fluxion_uses_{}", syn::ext::IdentExt::unraw(f));
    let generics = &item.sig.generics;
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    let turbofish = crate::emit::turbofish(generics);
    quote! {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        fn #name #gen () #where_clause {
            let _ = #f #turbofish;
        }
    }
}

/// The names of the functions a stack promises, innermost first.
fn promised_names(item: &syn::ItemFn, stack: &[Options]) -> Vec<(Transform, String)> {
    let mut cur = syn::ext::IdentExt::unraw(&item.sig.ident).to_string();
    let mut out = Vec::new();
    for o in stack.iter().rev() {
        if o.transform == Transform::Differentiable {
            continue;
        }
        let name = match &o.name {
            Some((n, _)) => n.clone(),
            None => format!("{cur}_{}", o.transform.suffix()),
        };
        out.push((o.transform, name.clone()));
        cur = if o.transform == Transform::Vjp {
            format!("{name}_ct")
        } else {
            name
        };
    }
    out
}

/// `inner`: hidden items placed inside the original's holder.
/// Lowers `item` (its statements merged) and generates `stack`'s functions; `Err(None)`
/// where the lowering reported its errors into `cx`.
fn lower_and_generate(
    item: &syn::ItemFn,
    stack: &[Options],
    rules: &RuleTable,
    consumed: &TokenStream,
    cx: &mut Ctxt,
) -> Result<TokenStream, Option<syn::Error>> {
    let func = lower_fn(item, cx).map(|mut f| {
        crate::simplify::merge(&mut f);
        f
    });
    match (func, cx.has_errors()) {
        (Some(f), false) => generate(item, f, stack, rules, consumed.clone()),
        _ => Err(None),
    }
}

fn generate(
    item: &syn::ItemFn,
    f0: Func,
    stack: &[Options],
    rules: &RuleTable,
    inner: TokenStream,
) -> Result<TokenStream, Option<syn::Error>> {
    let site0 = Site {
        name: item.sig.ident.span(),
        ret: match &item.sig.output {
            syn::ReturnType::Type(_, t) => t.span(),
            syn::ReturnType::Default => item.sig.ident.span(),
        },
    };
    let vis = item.vis.to_token_stream();
    let generics = &item.sig.generics;
    let mut out = TokenStream::new();
    out.extend(holder(&f0, 0, &vis, generics, rules, site0.name, inner).map_err(Some)?);
    let mut order = 0;
    let mut cur = f0;
    // The emitted form of `cur` where it differs and a `vmap` stacked on it batches it
    // instead: a reverse pass over calls, split (one forward pass of each callee, the
    // unbatched function's bits).
    let mut emitted_split: Option<Func> = None;
    let mut site = site0;
    let names = promised_names(item, stack);
    let f0_name = syn::ext::IdentExt::unraw(&item.sig.ident).to_string();
    let mut k = 0;
    for o in stack.iter().rev() {
        if o.transform == Transform::Differentiable {
            continue;
        }
        let name = names[k].1.clone();
        k += 1;
        // A transform stacked on another one transforms its generated function: say how
        // to ask for transforms of the original side by side when that fails.
        let list_hint = |e: syn::Error| {
            if k == 1 {
                return e;
            }
            let inner = names[k - 2].0.name();
            syn::Error::new(
                o.span,
                format!(
                    "{e}\n(stacked attributes compose: this is `{}` of `{}`; for both transforms of `{}` side by side write `#[transforms({}, {inner})]`)",
                    o.transform.name(),
                    names[k - 2].1,
                    f0_name,
                    o.transform.name()
                ),
            )
        };
        if o.transform == Transform::Vmap {
            // Its functions take slices and return `Vec`s: nothing differentiates them. A
            // `vmap` stacked on it maps it over an outer batch (nested vmap); nothing else is
            // stacked on top.
            let above: Vec<&Options> = stack
                .iter()
                .rev()
                .filter(|o| o.transform != Transform::Differentiable)
                .skip(k)
                .collect();
            if let Some(j) = above.iter().position(|n| n.transform != Transform::Vmap) {
                let next = above[j];
                let below = &names[k + j - 1].1;
                return Err(Some(syn::Error::new(
                    next.span,
                    format!(
                        "`{}` cannot be stacked on `vmap`: `{below}` takes slices and returns a `Vec`; put `#[vmap]` outermost (`#[vmap] #[{}] fn ..` is vmap of {})",
                        next.transform.name(),
                        next.transform.name(),
                        next.transform.name()
                    ),
                )));
            }
            let (items, mut level) = vmap::vmap_items(
                &cur,
                emitted_split.as_ref(),
                order,
                o,
                &site,
                &name,
                &vis,
                generics,
                rules,
            )
            .map_err(|e| Some(list_hint(e)))?;
            out.extend(items);
            for (j, outer) in above.iter().enumerate() {
                let (items, next) = vmap::nested_items(&level, outer, &names[k + j].1, &vis, generics).map_err(Some)?;
                out.extend(items);
                level = next;
            }
            break;
        }
        let g = build(&cur, o, &site, rules, name.clone(), false).map_err(|e| Some(list_hint(e)))?;
        if max_call_order(&g.func) > MAX_ORDER {
            let e = syn::Error::new(
                o.span,
                format!(
                    "`{}` differentiates the functions `{}` calls {} times: fluxion's companions go up to order {MAX_ORDER}",
                    g.func.name,
                    f0_name,
                    max_call_order(&g.func)
                ),
            );
            return Err(Some(list_hint(e)));
        }
        // What is emitted is differentiated by nobody: a reverse pass over calls splits them
        // (one forward pass of each callee); the next transform and the companions start
        // from `g`.
        // `jacrev`'s emitted form also batches its reverse sweeps over lanes of basis
        // cotangents, which nothing differentiates.
        let split = match o.transform {
            Transform::Grad | Transform::GradAndValue | Transform::Vjp if calls_functions(&cur) => {
                Some(build(&cur, o, &site, rules, name, true).map_err(|e| Some(list_hint(e)))?)
            }
            Transform::Jacrev | Transform::Jacfwd | Transform::Hessian => {
                Some(build(&cur, o, &site, rules, name, true).map_err(|e| Some(list_hint(e)))?)
            }
            _ => None,
        };
        let emitted = split.as_ref().unwrap_or(&g);
        out.extend(emit_gen(emitted, &vis, generics));
        // Generated unasked: unused, it must not warn.
        let into = emit_gen(&into_gen(emitted), &vis, generics);
        out.extend(quote!(#[allow(dead_code)] #into));
        order += match o.transform {
            Transform::Differentiable => 0,
            Transform::Hessian => 2,
            _ => 1,
        };
        out.extend(holder(&g.func, order, &vis, generics, rules, o.span, TokenStream::new()).map_err(Some)?);
        emitted_split = match (o.transform, &split) {
            (Transform::Grad | Transform::GradAndValue | Transform::Vjp, Some(s)) => Some(s.func.clone()),
            _ => None,
        };
        cur = g.func;
        site = Site {
            name: o.span,
            ret: o.span,
        };
    }
    Ok(out)
}

/// The names of the functions among `items` (to find the forms a transform generated).
pub(crate) fn fn_names(items: &[syn::Item]) -> std::collections::HashSet<String> {
    items
        .iter()
        .filter_map(|it| match it {
            syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .collect()
}
