//! The generated functions: each transform's IR built, documented and emitted (with its
//! `_into` form, and the pullback form of `vjp`).

use super::*;

/// `final_pass`: build the form that is emitted, which nothing differentiates again (calls
/// split into `vjp_fwd` and `vjp_bwd`), not the one the next transform and the companions
/// start from.
pub(super) fn build(
    cur: &Func,
    o: &Options,
    site: &Site,
    rules: &RuleTable,
    name: String,
    final_pass: bool,
) -> Result<GenFn, syn::Error> {
    let mut pullback = None;
    vec_result_chunks(cur, o)?;
    let mut func = match o.transform {
        Transform::Grad => transforms::grad_pass(cur, o, site, rules, false, final_pass)?,
        Transform::GradAndValue => transforms::grad_pass(cur, o, site, rules, true, final_pass)?,
        Transform::Jacrev => transforms::jacrev_pass(cur, o, site, rules, final_pass)?,
        Transform::Jacfwd => transforms::jacfwd_pass(cur, o, site, rules, final_pass)?,
        Transform::Hessian => transforms::hessian_pass(cur, o, site, rules, final_pass)?,
        Transform::Jvp => transforms::jvp_user(cur, o, site, rules)?,
        Transform::Vjp => {
            let (g, pb) = transforms::vjp_user(cur, o, site, rules, name.clone(), final_pass)?;
            pullback = Some(pb);
            g
        }
        Transform::Differentiable => cur.clone(),
        // Emitted by `vmap.rs`, never built as a differentiable function.
        Transform::Vmap => return Err(syn::Error::new(o.span, "internal: `vmap` built as a derivative")),
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

/// `chunk_size = k > 1` on the Jacobian of a function returning a `Vec` (a result of
/// run-time length): its Jacobian takes one sweep per row (`jacrev`) or column (`jacfwd`),
/// with no chunks of basis vectors, so the option is refused rather than ignored.
fn vec_result_chunks(cur: &Func, o: &Options) -> Result<(), syn::Error> {
    if !matches!(o.transform, Transform::Jacrev | Transform::Jacfwd) {
        return Ok(());
    }
    let main = match (&cur.ret_ty, o.has_aux) {
        (Ty::Tuple(ts), true) => ts.first(),
        (t, _) => Some(t),
    };
    match (main, o.chunk_size) {
        (Some(Ty::Slice(_)), Some((k, sp))) if k > 1 => Err(syn::Error::new(
            sp,
            format!(
                "`chunk_size = {k}` is not available for the Jacobian of a result of run-time length (a `Vec` or `DVector`): `{}` takes one {} per {}, with no chunks of basis vectors\nhint: remove `chunk_size` (or write `chunk_size = 1`, which is what is computed)",
                o.transform.name(),
                if o.transform == Transform::Jacrev { "reverse sweep" } else { "forward sweep" },
                if o.transform == Transform::Jacrev { "row (output element)" } else { "column (input element)" },
            ),
        )),
        _ => Ok(()),
    }
}

pub(super) fn doc_for(o: &Options, cur: &Func, g: &Func) -> String {
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
        Transform::Differentiable | Transform::Vmap => String::new(),
    };
    format!("{what}\n\nMirrors {}. Generated by fluxion.", o.transform.mirrors())
}

pub(super) fn fn_attrs(doc: &str, show: Option<&TokenStream>) -> TokenStream {
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

pub(super) fn emit_gen(g: &GenFn, vis: &TokenStream, generics: &syn::Generics) -> TokenStream {
    // A function with batched parts (a Jacobian's reverse sweeps over lanes) spells them
    // through the lanes target.
    let lanes = g
        .func
        .vars
        .iter()
        .find(|v| v.ty.has_lanes())
        .map(|_| crate::emit::LaneTarget {
            float: g
                .func
                .vars
                .iter()
                .find_map(|v| match &v.ty {
                    Ty::Lanes(e) => e.float_ty(),
                    _ => None,
                })
                .or_else(|| g.func.params.iter().find_map(|p| p.ty.float_ty()))
                .unwrap_or(FloatTy::F64),
        });
    let e = match &lanes {
        Some(l) => Emitter::with_lanes(&g.func, &crate::emit::Scalar, l),
        None => Emitter::new(&g.func),
    };
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
pub(super) fn into_gen(g: &GenFn) -> GenFn {
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
pub(super) fn emit_pullback(
    pb: &PullbackForm,
    vis: &TokenStream,
    generics: &syn::Generics,
    doc: &str,
    show: bool,
) -> TokenStream {
    // With slices, the result tuples `(y, (x̄..))` of the cotangent form are not built in
    // the pullback, which returns the cotangents themselves (a `Vec` moves once). Without,
    // the dead tuples stay (the code of static shapes is unchanged; rustc drops them).
    let mut trimmed = pb.vjp.clone();
    if let (Some(r), true) = (trimmed.ret.var(), trimmed.has_dynamic()) {
        let grads = trimmed.body.0.iter().find_map(|s| match s {
            Stmt::Let(v, Expr::Tuple(ops)) if *v == r => ops.get(1).and_then(Operand::var),
            _ => None,
        });
        let at = pb.split.min(trimmed.body.0.len());
        let mut tail = trimmed.body.0.split_off(at);
        tail.retain(|s| !matches!(s, Stmt::Let(v, _) if *v == r || Some(*v) == grads));
        trimmed.body.0.extend(tail);
    }
    let f = &trimmed;
    let e = Emitter::new(f);
    let (fwd, rev) = e.split_body(pb.split);
    // A slice parameter is copied into the closure (which outlives the borrow), and read
    // there through a borrow of the copy.
    let (owned, reborrow): (Vec<TokenStream>, Vec<TokenStream>) = f
        .params
        .iter()
        .filter(|p| p.var != pb.ct && matches!(p.ty, Ty::Slice(_)))
        .map(|p| {
            let n = e.ident(p.var);
            (
                quote!(let #n = ::fluxion::__private::Vec::from(#n);),
                quote!(let #n = &#n[..];),
            )
        })
        .unzip();
    // State of the forward sweep that the reverse sweep changes (the counters of growing
    // tapes) is copied into each call of the pullback: it stays `Fn`, callable again.
    let declared: Vec<VarId> = f.body.0[..pb.split.min(f.body.0.len())]
        .iter()
        .filter_map(|s| match s {
            Stmt::Mut(v, _) => Some(*v),
            _ => None,
        })
        .collect();
    let mut changed: Vec<VarId> = Vec::new();
    for s in &f.body.0[pb.split.min(f.body.0.len())..] {
        walk_stmts(&Block(vec![s.clone()]), &mut |t| {
            if let Stmt::Assign(p, _, _) = t {
                if declared.contains(&p.var) && !changed.contains(&p.var) {
                    changed.push(p.var);
                }
            }
        });
    }
    let copies: Vec<TokenStream> = changed
        .iter()
        .map(|v| {
            let n = e.ident(*v);
            quote!(let mut #n = #n;)
        })
        .collect();
    let params: Vec<TokenStream> = f.params.iter().filter(|p| p.var != pb.ct).map(|p| e.param(p)).collect();
    let ct = e.ident(pb.ct);
    let ct_ty = crate::emit::ty_tokens(&f.ret_ty_ct());
    // A value that is not `Copy` (a gradient in a slice, differentiated again) and that the
    // reverse sweep reads: the pullback keeps it, the caller gets a copy.
    let mut rev_reads = Vec::new();
    for s in &f.body.0[pb.split.min(f.body.0.len())..] {
        stmt_reads(s, &mut rev_reads);
    }
    let (keep_y, y) = match pb.value.var() {
        Some(v) if f.vars[v].ty.has_slice() && rev_reads.contains(&v) => {
            let n = e.ident(v);
            (
                quote!(let __fluxion_y = ::core::clone::Clone::clone(&#n);),
                quote!(__fluxion_y),
            )
        }
        _ => (quote!(), e.operand(&pb.value)),
    };
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
                #(#owned)*
                #keep_y
                let pullback = move |#ct: #ct_ty| {
                    #(#reborrow)*
                    #(#copies)*
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
