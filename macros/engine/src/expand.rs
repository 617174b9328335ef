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
use crate::transforms::{self, companion_diag, GenFn, PullbackForm, Site};

/// The transforms applied to a function for its hidden companions (maximum order 2).
pub const COMPANIONS: [&[Mode]; 8] = [
    &[Mode::Jvp],
    &[Mode::Vjp],
    &[Mode::VjpFwd],
    &[Mode::VjpBwd],
    &[Mode::Jvp, Mode::Jvp],
    &[Mode::Jvp, Mode::Vjp],
    &[Mode::Vjp, Mode::Jvp],
    &[Mode::Vjp, Mode::Vjp],
];

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
    let names = promised_names(&item, &stack);
    let func = lower_fn(&item, &mut cx);
    let result = match (func, cx.has_errors()) {
        (Some(f), false) => generate(&item, f, &stack, rules, consumed.clone()),
        _ => Err(None),
    };
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
    let args: Vec<TokenStream> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => {
                let i = &t.ident;
                Some(quote!(#i))
            }
            syn::GenericParam::Const(c) => {
                let i = &c.ident;
                Some(quote!(#i))
            }
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    let turbofish = if args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#args),*>)
    };
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
        let split = match o.transform {
            Transform::Grad | Transform::GradAndValue | Transform::Jacrev | Transform::Vjp if calls_functions(&cur) => {
                Some(build(&cur, o, &site, rules, name, true).map_err(|e| Some(list_hint(e)))?)
            }
            _ => None,
        };
        let emitted = split.as_ref().unwrap_or(&g);
        out.extend(emit_gen(emitted, &vis, generics, &cur.name));
        // Generated unasked: unused, it must not warn.
        let into = emit_gen(&into_gen(emitted), &vis, generics, &cur.name);
        out.extend(quote!(#[allow(dead_code)] #into));
        order += match o.transform {
            Transform::Differentiable => 0,
            Transform::Hessian => 2,
            _ => 1,
        };
        out.extend(holder(&g.func, order, &vis, generics, rules, o.span, TokenStream::new()).map_err(Some)?);
        cur = g.func;
        site = Site {
            name: o.span,
            ret: o.span,
        };
    }
    Ok(out)
}

/// `final_pass`: build the form that is emitted, which nothing differentiates again (calls
/// split into `vjp_fwd` and `vjp_bwd`), not the one the next transform and the companions
/// start from.
fn build(
    cur: &Func,
    o: &Options,
    site: &Site,
    rules: &RuleTable,
    name: String,
    final_pass: bool,
) -> Result<GenFn, syn::Error> {
    let mut pullback = None;
    let mut func = match o.transform {
        Transform::Grad => transforms::grad_pass(cur, o, site, rules, false, final_pass)?,
        Transform::GradAndValue => transforms::grad_pass(cur, o, site, rules, true, final_pass)?,
        Transform::Jacrev => transforms::jacrev_pass(cur, o, site, rules, final_pass)?,
        Transform::Jacfwd => transforms::jacfwd(cur, o, site, rules)?,
        Transform::Hessian => transforms::hessian(cur, o, site, rules)?,
        Transform::Jvp => transforms::jvp_user(cur, o, site, rules)?,
        Transform::Vjp => {
            let (g, pb) = transforms::vjp_user(cur, o, site, rules, name.clone(), final_pass)?;
            pullback = Some(pb);
            g
        }
        Transform::Differentiable => cur.clone(),
    };
    func.name = if o.transform == Transform::Vjp {
        format!("{name}_ct")
    } else {
        name
    };
    let doc = doc_for(o, cur, &func);
    Ok(GenFn {
        func,
        doc,
        pullback,
        transform: o.transform,
        show: o.show,
    })
}

fn doc_for(o: &Options, cur: &Func, g: &Func) -> String {
    let wrt = match &o.argnums {
        None => format!(
            "its argument `{}`",
            cur.params
                .first()
                .map(|p| cur.vars[p.var].name.clone())
                .unwrap_or_default()
        ),
        Some(a) => {
            let names: Vec<String> = a
                .indices()
                .iter()
                .filter_map(|(k, _)| cur.params.get(*k))
                .map(|p| format!("`{}`", cur.vars[p.var].name))
                .collect();
            format!("its arguments {}", names.join(", "))
        }
    };
    let what = match o.transform {
        Transform::Grad => format!("The gradient of [`{}`] with respect to {wrt}.", cur.name),
        Transform::GradAndValue => format!("The gradient of [`{}`] with respect to {wrt}, and its value: `(grad, value)`.", cur.name),
        Transform::Jacrev => format!("The Jacobian of [`{}`] with respect to {wrt}, by reverse mode (output shape, then input shape).", cur.name),
        Transform::Jacfwd => format!("The Jacobian of [`{}`] with respect to {wrt}, by forward mode (output shape, then input shape).", cur.name),
        Transform::Hessian => format!("The Hessian of [`{}`] with respect to {wrt} (forward over reverse).", cur.name),
        Transform::Jvp => format!("The Jacobian-vector product of [`{}`]: takes the primals, then one tangent per float argument; returns `(output, tangent_out)`.", cur.name),
        Transform::Vjp => format!("The vector-Jacobian product of [`{}`] in cotangent form: takes the primals and the output cotangent `ct`; returns `(output, (cotangent per float argument,..))`. This is the form other transforms call and differentiate; [`{}`] is the pullback form.", cur.name, g.name.strip_suffix("_ct").unwrap_or(&g.name)),
        Transform::Differentiable => String::new(),
    };
    format!("{what}\n\nMirrors {}. Generated by fluxion.", o.transform.mirrors())
}

fn fn_attrs(doc: &str, show: Option<&TokenStream>) -> TokenStream {
    let shown = show.map(|code| {
        let text = pretty(code);
        let d = format!("\n\nGenerated code:\n\n```text\n{text}```");
        quote!(#[doc = #d])
    });
    quote! {
        #[doc = #doc]
        #shown
        #[inline]
        #[allow(unused_mut, unused_variables, unused_parens, unused_braces, non_snake_case, clippy::all, clippy::pedantic, clippy::nursery)]
    }
}

/// Formats tokens as Rust source (falls back to the raw tokens).
pub fn pretty(ts: &TokenStream) -> String {
    match syn::parse2::<syn::File>(ts.clone()) {
        Ok(f) => prettyplease::unparse(&f),
        Err(_) => ts.to_string(),
    }
}

fn emit_gen(g: &GenFn, vis: &TokenStream, generics: &syn::Generics, _of: &str) -> TokenStream {
    let e = Emitter::new(&g.func);
    let header = |attrs: TokenStream| FnHeader {
        vis: vis.clone(),
        name: format_ident!("{}", g.func.name),
        generics,
        attrs,
    };
    let plain = e.function(&header(fn_attrs(&g.doc, None)));
    let main = if g.show {
        e.function(&header(fn_attrs(&g.doc, Some(&plain))))
    } else {
        plain
    };
    let mut out = main;
    if let Some(pb) = &g.pullback {
        out.extend(emit_pullback(pb, vis, generics, &g.doc, g.show));
    }
    out
}

/// The caller-buffer form `f_X_into(args.., out: &mut R)` of a generated function.
fn into_gen(g: &GenFn) -> GenFn {
    let name = format!("{}_into", g.func.name);
    let doc = format!(
        "Writes what [`{0}`] returns into `out`, with no local of the result's size (for large Jacobians and Hessians, and for threads with small stacks). `out` may hold anything: every element is overwritten.",
        g.func.name
    );
    GenFn {
        func: crate::into::into_form(&g.func, name),
        doc,
        pullback: None,
        transform: g.transform,
        show: false,
    }
}

/// `fn f_vjp(x) -> (y, impl Fn(ct) -> (x_bar,))`: the forward sweep runs once; the closure
/// holds the reverse sweep and captures what it needs by copy.
fn emit_pullback(pb: &PullbackForm, vis: &TokenStream, generics: &syn::Generics, doc: &str, show: bool) -> TokenStream {
    let f = &pb.vjp;
    let e = Emitter::new(f);
    let (fwd, rev) = e.split_body(pb.split);
    let params: Vec<TokenStream> = f.params.iter().filter(|p| p.var != pb.ct).map(|p| e.param(p)).collect();
    let ct = e.ident(pb.ct);
    let ct_ty = crate::emit::ty_tokens(&f.ret_ty_ct());
    let y = e.operand(&pb.value);
    let bars: Vec<TokenStream> = pb.bars.iter().map(|b| e.operand(b)).collect();
    let bar_tys: Vec<TokenStream> = f
        .params
        .iter()
        .filter(|p| p.var != pb.ct && p.ty.is_differentiable())
        .map(|p| crate::emit::ty_tokens(&p.ty.tangent()))
        .collect();
    let y_ty = crate::emit::ty_tokens(&f.ret_ty_primal());
    let name = format_ident!("{}", pb.name);
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    let rest = doc.split_once("\n\n").map_or(doc, |(_, rest)| rest);
    let pb_doc = format!("The vector-Jacobian product in pullback form: takes the primals; returns `(output, pullback)`, where `pullback(ct)` maps the output cotangent `ct` to one cotangent per float argument (a tuple, even of one). [`{}_ct`] is the same product in cotangent form.\n\n{rest}", pb.name);
    let (aux_ret, ret_aux_ty) = match &pb.aux {
        Some(a) => {
            let t = crate::emit::ty_tokens(&f.ty_of(a));
            let a = e.operand(a);
            (quote!(, #a), quote!(, #t))
        }
        None => (quote!(), quote!()),
    };
    let render = |attrs: TokenStream| {
        quote! {
            #attrs
            #vis fn #name #gen (#(#params),*) -> (#y_ty, impl Fn(#ct_ty) -> (#(#bar_tys,)*) #ret_aux_ty) #where_clause {
                #fwd
                let pullback = move |#ct: #ct_ty| {
                    #rev
                    (#(#bars,)*)
                };
                (#y, pullback #aux_ret)
            }
        }
    };
    let code = render(fn_attrs(&pb_doc, None));
    if show {
        render(fn_attrs(&pb_doc, Some(&code)))
    } else {
        code
    }
}

impl Func {
    fn ret_ty_primal(&self) -> Ty {
        match &self.ret_ty {
            Ty::Tuple(ts) => ts.first().cloned().unwrap_or(Ty::Unknown),
            t => t.clone(),
        }
    }
    fn ret_ty_ct(&self) -> Ty {
        self.params.last().map(|p| p.ty.clone()).unwrap_or(Ty::Unknown)
    }
}

/// The highest order of companion every differentiable function provides.
pub const MAX_ORDER: usize = 2;

/// Whether `f` calls a function (not one of its companions).
fn calls_functions(f: &Func) -> bool {
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
fn holder(
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
    for modes in COMPANIONS {
        let name = mode_name(modes);
        let beyond = order + modes.len() > MAX_ORDER;
        let g = if beyond {
            None
        } else {
            let g = companion_diag(f, modes, rules).map_err(|d| {
                syn::Error::new(
                    d.span.unwrap_or(span),
                    format!("fluxion could not differentiate `{}`: {}", f.name, d.msg),
                )
            })?;
            // A companion that would call a callee's companion beyond order 2 is a stub too.
            (max_call_order(&g) <= MAX_ORDER).then_some(g)
        };
        match g {
            Some(g) => {
                let e = Emitter::new(&g);
                fns.extend(e.function(&FnHeader {
                    vis: quote!(pub),
                    name: format_ident!("{}", name),
                    generics,
                    attrs: attrs(format!("Companion `{name}` of `{}` (hidden).", f.name)),
                }));
            }
            None => {
                // Every holder has all six companions, so callers' companions type-check;
                // one beyond order 2 is a compile error only where something uses it.
                let marker = format_ident!("__fluxion_missing_{}__{}", f.name, name);
                let msg = format!(
                    "`{}` is differentiated {} time(s) here through a call: fluxion's companions go up to total order {MAX_ORDER} (`{name}` of `{}` would exceed it); differentiate the original function instead",
                    f.name,
                    modes.len(),
                    f.name
                );
                markers.extend(quote! {
                    #[doc(hidden)]
                    #[allow(non_camel_case_types)]
                    #vis struct #marker;
                    impl ::fluxion::__private::MissingRule for #marker {
                        const MSG: &'static str = #msg;
                    }
                });
                fns.extend(companion_stub(
                    f,
                    modes,
                    generics,
                    &name,
                    attrs(format!("Companion `{name}` of `{}`: beyond order {MAX_ORDER}.", f.name)),
                    &marker,
                ));
            }
        }
    }
    markers.extend(inner);
    Ok(crate::emit::holder_item(vis, &h, &fns, &markers))
}

/// A companion's signature (from the companion protocol) with a `missing_rule` body.
fn companion_stub(
    f: &Func,
    modes: &[Mode],
    generics: &syn::Generics,
    name: &str,
    attrs: TokenStream,
    marker: &proc_macro2::Ident,
) -> TokenStream {
    let mut params: Vec<(Ty, bool)> = f.params.iter().map(|p| (p.ty.clone(), p.by_ref)).collect();
    let mut ret = f.ret_ty.clone();
    for m in modes {
        match m {
            Mode::Jvp => {
                let tangents: Vec<(Ty, bool)> = params.iter().map(|(t, _)| (t.tangent(), false)).collect();
                params.extend(tangents);
                ret = Ty::Tuple(vec![ret.clone(), ret.tangent()]);
            }
            Mode::Vjp => {
                let bars = Ty::Tuple(params.iter().map(|(t, _)| t.tangent()).collect());
                params.push((ret.tangent(), false));
                ret = Ty::Tuple(vec![ret, bars]);
            }
            // The protocol of the split companions without residuals (`()`).
            Mode::VjpFwd => ret = Ty::Tuple(vec![ret, Ty::Unit]),
            Mode::VjpBwd => {
                let bars = Ty::Tuple(params.iter().map(|(t, _)| t.tangent()).collect());
                params.push((Ty::Unit, false));
                params.push((ret.tangent(), false));
                ret = bars;
            }
        }
    }
    let ps = params.iter().enumerate().map(|(k, (t, r))| {
        let n = format_ident!("p{}", k);
        let t = crate::emit::ty_tokens(t);
        if *r {
            quote!(#n: &#t)
        } else {
            quote!(#n: #t)
        }
    });
    let rt = crate::emit::ty_tokens(&ret);
    let n = format_ident!("{}", name);
    let (gen, where_clause) = crate::emit::generic_parts(generics);
    quote! {
        #attrs
        pub fn #n #gen (#(#ps),*) -> #rt #where_clause {
            ::fluxion::__private::missing_rule::<#marker>()
        }
    }
}

/// Stand-ins for the promised functions when expansion failed, so that the only errors
/// the user sees are the real ones (thiserror's fallback).
fn stubs(item: &syn::ItemFn, stack: &[Options], names: &[(Transform, String)]) -> TokenStream {
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
    let originals: Vec<syn::Type> = item
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(pt) => Some((*pt.ty).clone()),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
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
        let (params, ret) = match (&sig, opts.get(k)) {
            (Some((ps, r)), Some(o)) => {
                let mut params = typed("arg", ps);
                if *t == Transform::Jvp {
                    params.extend(typed("tangent", ps));
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
        into_generics.params.push(syn::parse_quote!(__FluxionOut: ?Sized));
        let (gen_into, _) = crate::emit::generic_parts(&into_generics);
        out.extend(quote! {
            #[allow(unused_variables, dead_code, clippy::all)]
            #vis fn #n_into #gen_into (#(#params,)* out: &mut __FluxionOut) #where_clause { unreachable!(#msg) }
        });
        if *t == Transform::Vjp {
            let n2 = format_ident!("{}_ct", name);
            out.extend(quote! {
                #[allow(unused_variables, dead_code, clippy::all)]
                #vis fn #n2 #gen (#(#inputs,)* ct: ()) -> ! #where_clause { unreachable!(#msg) }
            });
        }
        sig = match (sig.take(), ret) {
            (Some((ps, _)), Some(r)) if !matches!(t, Transform::Jvp | Transform::Vjp) => Some((ps, r)),
            _ => None,
        };
    }
    out
}

/// Expands every fluxion-annotated function of a source file (or only `only`) and returns
/// the generated code, formatted. Used by the snapshot tests and the `expand` example.
pub fn expand_item_text(src: &str, only: Option<&str>) -> Result<String, String> {
    expand_item_text_with(src, only, true)
}

/// [`expand_item_text`], optionally leaving out the hidden companions (the holder types).
pub fn expand_item_text_with(src: &str, only: Option<&str>, companions: bool) -> Result<String, String> {
    let file = syn::parse_file(src).map_err(|e| format!("cannot parse: {e}"))?;
    let mut out = String::new();
    let mut items: Vec<syn::ItemFn> = Vec::new();
    fn collect(items: &[syn::Item], out: &mut Vec<syn::ItemFn>) {
        for it in items {
            match it {
                syn::Item::Fn(f) => out.push(f.clone()),
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        collect(inner, out);
                    }
                }
                _ => {}
            }
        }
    }
    collect(&file.items, &mut items);
    for mut f in items {
        if only.is_some_and(|n| f.sig.ident != n) {
            continue;
        }
        let Some(pos) = f.attrs.iter().position(|a| transform_of(a).is_some()) else {
            continue;
        };
        let attr = f.attrs.remove(pos);
        let Some(t) = transform_of(&attr) else { continue };
        let args = match &attr.meta {
            syn::Meta::List(l) => l.tokens.clone(),
            _ => TokenStream::new(),
        };
        let ts = expand(t, args, f.to_token_stream()).map_err(|e| e.to_string())?;
        let ts = if companions {
            ts
        } else {
            let file: syn::File = syn::parse2(ts).map_err(|e| e.to_string())?;
            // Companion holders are braced structs named like their function.
            let fns: std::collections::HashSet<String> = file
                .items
                .iter()
                .filter_map(|it| match it {
                    syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                    _ => None,
                })
                .collect();
            let hidden_name = |n: String| fns.contains(&n) || n.starts_with("__fluxion_missing_");
            let hidden = |it: &syn::Item| match it {
                syn::Item::Struct(s) => hidden_name(s.ident.to_string()),
                syn::Item::Impl(i) => hidden_name(i.self_ty.to_token_stream().to_string()),
                syn::Item::Const(c) => c.ident == "_",
                syn::Item::Fn(f) => f.sig.ident.to_string().starts_with("__fluxion_uses_"),
                _ => false,
            };
            let items = file.items.into_iter().filter(|it| !hidden(it));
            quote!(#(#items)*)
        };
        out.push_str(&pretty(&ts));
    }
    Ok(out)
}

/// Lowers the source text of one function to IR (for tests and tools).
pub fn lower_source(src: &str) -> Result<Func, String> {
    let item: syn::ItemFn = syn::parse_str(src).map_err(|e| format!("cannot parse: {e}"))?;
    let mut cx = Ctxt::new();
    let f = lower_fn(&item, &mut cx);
    if let Err(e) = cx.check() {
        return Err(e.to_string());
    }
    f.ok_or_else(|| "could not lower".to_string())
}

/// Lowers every function of a source file (for tests comparing compiled and interpreted
/// results): `(name, IR)` pairs, in order. Functions that do not lower are skipped.
pub fn lower_file(src: &str) -> Result<Vec<(String, Func)>, String> {
    let file = syn::parse_file(src).map_err(|e| format!("cannot parse: {e}"))?;
    let mut out = Vec::new();
    for it in &file.items {
        if let syn::Item::Fn(f) = it {
            let mut cx = Ctxt::new();
            if let Some(func) = lower_fn(f, &mut cx) {
                if !cx.has_errors() {
                    out.push((f.sig.ident.to_string(), func));
                }
            }
        }
    }
    Ok(out)
}
