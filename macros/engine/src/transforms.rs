//! The user-facing transforms, built from `jvp` and `vjp` as IR functions (so each can be
//! transformed again: stacking and companions).
//!
//! Conventions (JAX's): the derivative of an output of shape `O` with respect to an input
//! of shape `I` has shape `O ++ I`: the Jacobian of `[f64; N] -> [f64; M]` is
//! `[[f64; N]; M]`, a gradient has its argument's type. `argnums = k` gives one result,
//! `argnums = (j, k)` a tuple of results, even of length one.

use std::collections::{HashMap, HashSet};

use proc_macro2::Span;

use crate::builder::{wrap_loops, Builder};
use crate::error::Diag;
use crate::ir::*;
use crate::jvp::{jvp, jvp_parts, JvpSpec};
use crate::rules::RuleTable;
use crate::simplify::simplify;
use crate::spec::{Argnums, Options};
use crate::symbol::Transform;
use crate::vjp::{acc_companion, split_companions, vjp, vjp_final, VjpOut, VjpSpec};

/// Spans for errors about a function.
#[derive(Clone)]
pub struct Site {
    /// The function's name as written (or the attribute, for generated functions).
    pub name: Span,
    /// The return type.
    pub ret: Span,
}

/// A generated public function.
pub struct GenFn {
    /// Its IR.
    pub func: Func,
    /// Its doc comment.
    pub doc: String,
    /// For `vjp`: also emit the pullback form under this name, splitting the body here.
    pub pullback: Option<PullbackForm>,
    /// The transform that made it.
    pub transform: Transform,
    /// Whether the `show` option asked for the code in the docs.
    pub show: bool,
}

/// The torch-style `vjp` that returns a pullback closure.
pub struct PullbackForm {
    /// The name of the pullback form.
    pub name: String,
    /// The reverse-mode function (with a `ct` parameter) it is emitted from.
    pub vjp: Func,
    /// Where its reverse sweep starts.
    pub split: usize,
    /// The cotangent variable.
    pub ct: VarId,
    /// The cotangents returned by the pullback.
    pub bars: Vec<Operand>,
    /// The primal output.
    pub value: Operand,
    /// The aux output, if any.
    pub aux: Option<Operand>,
}

type TResult<T> = Result<T, syn::Error>;

fn err<T>(span: Span, msg: impl std::fmt::Display) -> TResult<T> {
    Err(syn::Error::new(span, msg))
}

fn internal(span: Span) -> impl Fn(Diag) -> syn::Error {
    move |d| {
        syn::Error::new(
            d.span.unwrap_or(span),
            format!("fluxion could not differentiate this function: {}", d.msg),
        )
    }
}

fn ty_name(t: &Ty) -> String {
    t.to_string()
}

/// The parameters selected by `argnums` (default `0`), checked.
fn argnums(f: &Func, o: &Options, site: &Site) -> TResult<(Vec<usize>, bool)> {
    let (list, many) = match &o.argnums {
        None => (vec![(0, o.span)], false),
        Some(Argnums::One(k, s)) => (vec![(*k, *s)], false),
        Some(Argnums::Many(v)) => (v.clone(), true),
    };
    if f.params.is_empty() {
        return err(
            site.name,
            format!(
                "`{}` has no arguments to differentiate: give it an f64, f32 or array argument",
                f.name
            ),
        );
    }
    let mut out = Vec::new();
    for (k, span) in list {
        if k >= f.params.len() {
            let n = f.params.len();
            return err(
                span,
                format!(
                    "`argnums` index {k} is out of range: `{}` has {n} argument{}, numbered from 0",
                    f.name,
                    if n == 1 { "" } else { "s" }
                ),
            );
        }
        if out.contains(&k) {
            return err(
                span,
                format!("argument {k} is named twice in `argnums`: list each argument once"),
            );
        }
        let p = &f.params[k];
        if !p.ty.is_differentiable() {
            return err(
                span,
                format!(
                    "argument {k} (`{}: {}`) cannot be differentiated: only f64, f32 and arrays of them can; remove it from `argnums`",
                    f.vars[p.var].name,
                    ty_name(&p.ty)
                ),
            );
        }
        out.push(k);
    }
    Ok((out, many))
}

/// Cotangents come out of reverse mode in parameter order; `argnums` lists them in the
/// user's order (`argnums = (1, 0)` gives `(∂f/∂x1, ∂f/∂x0)`, as torch.func does).
fn listed<T: Clone>(idx: &[usize], in_param_order: &[T]) -> Vec<T> {
    let mut sorted = idx.to_vec();
    sorted.sort_unstable();
    idx.iter()
        .filter_map(|k| {
            sorted
                .iter()
                .position(|s| s == k)
                .and_then(|p| in_param_order.get(p).cloned())
        })
        .collect()
}

fn mask(f: &Func, idx: &[usize]) -> Vec<bool> {
    (0..f.params.len()).map(|k| idx.contains(&k)).collect()
}

/// With `has_aux`, `f` returns `(out, aux)`: a copy returning `out`, and `aux`.
fn split_aux(f: &Func, has_aux: bool, site: &Site) -> TResult<(Func, Option<Operand>)> {
    if !has_aux {
        return Ok((f.clone(), None));
    }
    let Ty::Tuple(ts) = &f.ret_ty else {
        return err(site.ret, format!("`has_aux` needs `{}` to return a pair `(output, aux)`, it returns `{}`: return a pair or remove `has_aux`", f.name, ty_name(&f.ret_ty)));
    };
    if ts.len() != 2 {
        return err(site.ret, format!("`has_aux` needs `{}` to return a pair `(output, aux)`, it returns {} value{}: return a pair or remove `has_aux`", f.name, ts.len(), if ts.len() == 1 { "" } else { "s" }));
    }
    let mut g = f.clone();
    let mut b = Builder::new(&mut g);
    b.out = f.body.0.clone();
    let main = b.let_ty(Expr::Field(f.ret.clone(), 0), "out", ts[0].clone());
    let aux = b.let_ty(Expr::Field(f.ret.clone(), 1), "aux", ts[1].clone());
    let body = b.take();
    g.body = Block(body);
    g.ret = main;
    g.ret_ty = ts[0].clone();
    Ok((g, Some(aux)))
}

/// Imports `src`'s variables into `dst` (fresh ids, except `fixed`), renaming `body`.
pub(crate) fn import(dst: &mut Func, src: &Func, fixed: &HashMap<VarId, VarId>) -> HashMap<VarId, VarId> {
    let mut map = HashMap::new();
    for (v, info) in src.vars.iter().enumerate() {
        let nv = match fixed.get(&v) {
            Some(w) => *w,
            None => {
                dst.vars.push(info.clone());
                dst.vars.len() - 1
            }
        };
        map.insert(v, nv);
    }
    map
}

fn map_op(o: &Operand, m: &HashMap<VarId, VarId>) -> Operand {
    match o {
        Operand::Var(v) => Operand::Var(m.get(v).copied().unwrap_or(*v)),
        o => o.clone(),
    }
}

fn param_map(src: &Func, dst: &Func) -> HashMap<VarId, VarId> {
    src.params
        .iter()
        .zip(&dst.params)
        .map(|(a, b)| (a.var, b.var))
        .collect()
}

/// The static logical axes of a float array or matrix down to its float element
/// ([`Ty::shape`]: a column vector has one); `None` for other types or a dynamic axis.
fn dims(t: &Ty) -> Option<Vec<CExpr>> {
    let mut bottom = t;
    while let Ty::Array(e, _) | Ty::Matrix { elem: e, .. } = bottom {
        bottom = e;
    }
    if !bottom.is_float() {
        return None;
    }
    t.shape()?.into_iter().map(|d| d.static_len().cloned()).collect()
}

/// The Jacobian type: output shape `o` followed by input type `i` (JAX's `O ++ I`). The
/// Jacobian of a nalgebra vector `SVector<M>` in a vector `SVector<N>` is the matrix
/// `SMatrix<M, N>`; of a matrix in a scalar, the matrix; of a matrix in anything else,
/// arrays of rows and columns of the input's tangent.
fn jac_ty(o: &Ty, i: &Ty) -> Ty {
    match o {
        Ty::Array(e, n) => Ty::Array(Box::new(jac_ty(e, i)), n.clone()),
        // A gradient in a slice (the inner `jacrev` of a Hessian in a slice): one row per
        // element, `Vec<Vec<T>>`.
        Ty::Slice(e) => Ty::Slice(Box::new(jac_ty(e, i))),
        Ty::Matrix { elem, rows, cols } => match i {
            Ty::Float(_) => o.tangent(),
            Ty::Matrix { rows: n, cols: c, .. } if cols.is_one() && c.is_one() => Ty::Matrix {
                elem: Box::new(elem.tangent()),
                rows: rows.clone(),
                cols: n.clone(),
            },
            // A vector (one axis) in anything else: one input tangent per row.
            _ if cols.is_one() => match rows.static_len() {
                Some(r) => Ty::Array(Box::new(i.tangent()), r.clone()),
                None => Ty::Unknown,
            },
            _ => {
                let (Some(r), Some(c)) = (rows.static_len(), cols.static_len()) else {
                    return Ty::Unknown;
                };
                Ty::Array(Box::new(Ty::Array(Box::new(i.tangent()), c.clone())), r.clone())
            }
        },
        _ => i.tangent(),
    }
}

/// The index operands of the element at logical output index `oops` and input index
/// `iops` in a value of `jac_ty(o, i)`: the output's indices then the input's, a vector's
/// column 0 added ([`Ty::place_index`]); in the matrix of a vector in a vector,
/// `[(output row, input row)]`.
fn jac_idx(o: &Ty, i: &Ty, oops: &[Operand], iops: &[Operand]) -> Vec<Operand> {
    match (o, oops) {
        (Ty::Array(e, _), [first, rest @ ..]) => {
            let mut v = vec![first.clone()];
            v.extend(jac_idx(e, i, rest, iops));
            v
        }
        (Ty::Matrix { cols, .. }, [row, ..]) if vector_in_vector(cols, i) => {
            vec![row.clone(), iops.first().cloned().unwrap_or(Operand::Int(0))]
        }
        _ => {
            let all: Vec<Operand> = oops.iter().chain(iops).cloned().collect();
            jac_ty(o, i).place_index(&all)
        }
    }
}

/// Whether a Jacobian of an output with `cols` columns in `i` is a vector's in a vector.
fn vector_in_vector(cols: &Dim, i: &Ty) -> bool {
    cols.is_one() && matches!(i, Ty::Matrix { cols: c, .. } if c.is_one())
}

/// Whether the Jacobian of `o` in `i` holds whole input tangents at its output indices
/// (false only for the matrix of a vector in a vector, written element by element).
fn whole_rows(o: &Ty, i: &Ty) -> bool {
    match o {
        Ty::Array(e, _) => whole_rows(e, i),
        Ty::Matrix { cols, .. } => !vector_in_vector(cols, i),
        _ => true,
    }
}

fn result_of(b: &mut Builder, items: Vec<(Operand, Ty)>, many: bool) -> (Operand, Ty) {
    if !many && items.len() == 1 {
        return items.into_iter().next().unwrap_or((Operand::Unit, Ty::Unit));
    }
    let ty = Ty::Tuple(items.iter().map(|(_, t)| t.clone()).collect());
    let ops = items.into_iter().map(|(o, _)| o).collect();
    (b.let_ty(Expr::Tuple(ops), "jac", ty.clone()), ty)
}

fn pair(b: &mut Builder, a: (Operand, Ty), c: (Operand, Ty), name: &str) -> (Operand, Ty) {
    let ty = Ty::Tuple(vec![a.1, c.1]);
    (b.let_ty(Expr::Tuple(vec![a.0, c.0]), name, ty.clone()), ty)
}

fn loop_nest(f: &mut Func, dims: &[CExpr], name: &str) -> Vec<VarId> {
    (0..dims.len())
        .map(|k| f.new_var(format!("{name}{k}"), Ty::Int(Some("usize".into())), false))
        .collect()
}

/// `grad` and `grad_and_value`.
/// `grad` (and `grad_and_value` with `with_value`) in the form other transforms start from.
pub fn grad(f: &Func, o: &Options, site: &Site, rules: &RuleTable, with_value: bool) -> TResult<Func> {
    grad_pass(f, o, site, rules, with_value, false)
}

/// [`grad`]; `final_pass`: nothing differentiates the result again, so calls are split (see
/// [`vjp_final`]).
pub fn grad_pass(
    f: &Func,
    o: &Options,
    site: &Site,
    rules: &RuleTable,
    with_value: bool,
    final_pass: bool,
) -> TResult<Func> {
    let (idx, many) = argnums(f, o, site)?;
    let (main, aux) = split_aux(f, o.has_aux, site)?;
    if !main.ret_ty.is_float() {
        return err(
            site.ret,
            format!(
                "`{}` needs a scalar output (f64 or f32), but `{}` returns `{}`: use `jacrev` or `jacfwd` for a Jacobian",
                o.transform.name(),
                f.name,
                ty_name(&main.ret_ty)
            ),
        );
    }
    let spec = VjpSpec {
        active: mask(f, &idx),
        all_params: false,
        seed: Some(Operand::float(1.0)),
    };
    let rev = if final_pass { vjp_final } else { vjp };
    let VjpOut {
        func: mut g,
        value,
        bars,
        ..
    } = rev(&main, &spec, rules).map_err(internal(site.name))?;
    let body = std::mem::take(&mut g.body.0);
    let mut b = Builder::new(&mut g);
    b.out = body;
    let bars = listed(&idx, &bars);
    let items: Vec<(Operand, Ty)> = idx
        .iter()
        .zip(&bars)
        .map(|(k, bar)| (bar.clone(), f.params[*k].ty.tangent()))
        .collect();
    let mut res = result_of(&mut b, items, many);
    let mut outer_aux = aux.as_ref();
    if with_value {
        // torch's `(grad, (value, aux))`.
        let v = (value, main.ret_ty.clone());
        let v = match outer_aux.take() {
            Some(a) => pair(&mut b, v, (a.clone(), aux_ty(f)), "value"),
            None => v,
        };
        res = pair(&mut b, res, v, "out");
    }
    let body = b.take();
    finish(&mut g, body, res, outer_aux, f, o);
    Ok(g)
}

/// Ends a transform's function: `(result, aux)` with `has_aux`, its result, name, and
/// simplification.
fn finish(g: &mut Func, body: Vec<Stmt>, mut res: (Operand, Ty), aux: Option<&Operand>, f: &Func, o: &Options) {
    let mut b = Builder::new(g);
    b.out = body;
    if let Some(a) = aux {
        res = pair(&mut b, res, (a.clone(), aux_ty(f)), "out");
    }
    let body = b.take();
    g.body = Block(body);
    g.ret = res.0;
    g.ret_ty = res.1;
    g.name = format!("{}_{}", f.name, o.transform.suffix());
    simplify(g);
}

fn aux_ty(f: &Func) -> Ty {
    match &f.ret_ty {
        Ty::Tuple(ts) if ts.len() == 2 => ts[1].clone(),
        _ => Ty::Unknown,
    }
}

fn check_output(f: &Func, main: &Func, o: &Options, site: &Site) -> TResult<Vec<CExpr>> {
    match dims(&main.ret_ty) {
        Some(d) => Ok(d),
        None => err(
            site.ret,
            format!(
                "`{}` needs an output of f64, f32, (nested) arrays or tuples of them, but `{}` returns `{}`",
                o.transform.name(),
                f.name,
                ty_name(&main.ret_ty),
            ),
        ),
    }
}

/// `jacrev`: one forward sweep, then one reverse sweep per output element.
/// `jacrev` in the form other transforms start from.
pub fn jacrev(f: &Func, o: &Options, site: &Site, rules: &RuleTable) -> TResult<Func> {
    jacrev_pass(f, o, site, rules, false)
}

/// [`jacrev`]; `final_pass`: as for [`grad_pass`].
pub fn jacrev_pass(f: &Func, o: &Options, site: &Site, rules: &RuleTable, final_pass: bool) -> TResult<Func> {
    if final_pass {
        if let Some(h) = crate::sparse::derivative(f, o, site, rules)? {
            return Ok(h);
        }
    }
    if let Some(h) = per_output(f, o, site, rules, &|f, o, s, r| jacrev_pass(f, o, s, r, final_pass))? {
        return Ok(h);
    }
    let (idx, many) = argnums(f, o, site)?;
    let (main, aux) = split_aux(f, o.has_aux, site)?;
    if matches!(&main.ret_ty, Ty::Slice(e) if dims(e).is_some()) {
        return jacrev_slice_rows(f, &main, aux.as_ref(), (&idx, many), o, site, rules, final_pass);
    }
    let odims = check_output(f, &main, o, site)?;
    if odims.is_empty() {
        let mut o2 = o.clone();
        o2.transform = Transform::Grad;
        let mut g = grad_pass(f, &o2, site, rules, false, final_pass)?;
        g.name = format!("{}_{}", f.name, o.transform.suffix());
        return Ok(g);
    }
    let spec = VjpSpec {
        active: mask(f, &idx),
        all_params: false,
        seed: None,
    };
    let rev = if final_pass { vjp_final } else { vjp };
    let VjpOut {
        func: mut g,
        split,
        ct,
        bars,
        ..
    } = rev(&main, &spec, rules).map_err(internal(site.name))?;
    g.params.pop();
    let body = std::mem::take(&mut g.body.0);
    let (fwd, rev) = body.split_at(split);
    // The emitted Jacobian of a vector output: reverse sweeps batched over chunks of basis
    // cotangents, after one shared forward sweep.
    if final_pass && o.chunk_size.map(|(k, _)| k) != Some(1) {
        if let Some(h) = jacrev_batched(f, &main, &g, fwd, rev, ct, &bars, &idx, &odims, many, aux.as_ref(), o) {
            return Ok(h);
        }
    }
    let ks = loop_nest(&mut g, &odims, "k");
    let mut b = Builder::new(&mut g);
    b.out = fwd.to_vec();
    let jacs = zero_jacobians(&mut b, f, &main, &idx);
    let fwd_part = b.take();
    // Loop body: basis cotangent, reverse sweep, one row per argument.
    let ct_ty = main.ret_ty.tangent();
    let mut inner = Builder::new(&mut g);
    let ctm = inner.let_mut(Some(Expr::Zeros(ct_ty.clone())), "basis", ct_ty.clone());
    let kops: Vec<Operand> = ks.iter().map(|k| Operand::Var(*k)).collect();
    inner.push(Stmt::Assign(
        Place {
            var: ctm,
            idx: ct_ty.place_index(&kops),
        },
        AssignOp::Set,
        Operand::float(1.0),
    ));
    inner.push(Stmt::Let(ct, Expr::Use(Operand::Var(ctm))));
    let rev_row = clone_residuals(inner.f, rev);
    inner.out.extend(rev_row);
    let bars = listed(&idx, &bars);
    for ((jv, _), (bar, k)) in jacs.iter().zip(bars.iter().zip(&idx)) {
        let pty = &f.params[*k].ty;
        if whole_rows(&main.ret_ty, pty) {
            inner.push(Stmt::Assign(
                Place {
                    var: *jv,
                    idx: jac_idx(&main.ret_ty, pty, &kops, &[]),
                },
                AssignOp::Set,
                bar.clone(),
            ));
            continue;
        }
        // One element at a time: `jac[(k, i)] = bar[i]`.
        let (Some(idims), Some(barv)) = (dims(pty), bar.var()) else {
            return Err(internal(site.name)(Diag::new("a Jacobian row of unknown shape")));
        };
        let is = loop_nest(inner.f, &idims, "i");
        let iops: Vec<Operand> = is.iter().map(|v| Operand::Var(*v)).collect();
        let mut el = Builder::new(inner.f);
        let t = el.let_(Expr::Index(barv, pty.tangent().place_index(&iops)), "t");
        let place = jac_idx(&main.ret_ty, pty, &kops, &iops);
        el.push(Stmt::Assign(Place { var: *jv, idx: place }, AssignOp::Set, t));
        let el_body = el.take();
        inner.out.extend(wrap_loops(&is, &idims, el_body));
    }
    let mut inner_body = inner.take();
    let mut body = fwd_part;
    let resets = rewind_tapes(&mut g, &mut body, rev);
    inner_body.splice(0..0, resets);
    body.extend(wrap_loops(&ks, &odims, inner_body));
    end_jacrev(&mut g, body, &jacs, many, aux.as_ref(), f, o);
    Ok(g)
}

/// `jacrev` of a function returning a `Vec` of floats or of (nested) arrays of floats (a
/// gradient in a slice: `jacrev` of `grad`, reverse over reverse): one forward sweep, then
/// one reverse sweep per scalar of the output, `(k, a..)` for `k` in `0..y.len()`, each
/// seeded with a one-hot `Vec` cotangent and writing its row `jac[k][a..] = x̄`. The
/// Jacobian is the output's shape over the argument's tangent (`Vec<Vec<T>>` in a slice;
/// `Vec<[Vec<[T; 3]>; 3]>` for a slice of `[T; 3]` in itself).
#[allow(clippy::too_many_arguments)]
fn jacrev_slice_rows(
    f: &Func,
    main: &Func,
    aux: Option<&Operand>,
    (idx, many): (&[usize], bool),
    o: &Options,
    site: &Site,
    rules: &RuleTable,
    final_pass: bool,
) -> TResult<Func> {
    let spec = VjpSpec {
        active: mask(f, idx),
        all_params: false,
        seed: None,
    };
    let rev = if final_pass { vjp_final } else { vjp };
    let VjpOut {
        func: mut g,
        split,
        ct,
        bars,
        value,
    } = rev(main, &spec, rules).map_err(internal(site.name))?;
    g.params.pop();
    let body = std::mem::take(&mut g.body.0);
    let (fwd, rev) = body.split_at(split);
    let usize_ty = Ty::Int(Some("usize".into()));
    let mut b = Builder::new(&mut g);
    b.out = fwd.to_vec();
    // The shape of an output element (`[3]` for `[f64; 3]`, none for a float).
    let edims = match &main.ret_ty {
        Ty::Slice(e) => dims(e).unwrap_or_default(),
        _ => Vec::new(),
    };
    // One row per output scalar: the parameter's zero cotangent, copied.
    let mut jacs = Vec::new();
    for k in idx {
        let p = &f.params[*k];
        let mut row_ty = p.ty.tangent();
        let row = if p.ty.has_slice() {
            Expr::ZeroLike(Operand::Var(p.var))
        } else {
            Expr::Zeros(row_ty.clone())
        };
        let mut z = b.let_ty(row, "zero", row_ty.clone());
        for d in edims.iter().rev() {
            row_ty = Ty::Array(Box::new(row_ty), d.clone());
            z = b.let_ty(Expr::Repeat(z, d.clone()), "zero", row_ty.clone());
        }
        let ty = Ty::Slice(Box::new(row_ty));
        jacs.push((
            b.let_mut(Some(Expr::Broadcast(value.clone(), z)), "jac", ty.clone()),
            ty,
        ));
    }
    let n = b.let_ty(Expr::Len(value.clone()), "n", usize_ty.clone());
    let mut body = b.take();
    let kv = g.new_var("k", usize_ty, false);
    let es = loop_nest(&mut g, &edims, "a");
    let mut at = vec![Operand::Var(kv)];
    at.extend(es.iter().copied().map(Operand::Var));
    let ct_ty = main.ret_ty.tangent();
    let mut inner = Builder::new(&mut g);
    let basis = inner.let_mut(Some(Expr::ZeroLike(value.clone())), "basis", ct_ty);
    inner.push(Stmt::Assign(
        Place {
            var: basis,
            idx: at.clone(),
        },
        AssignOp::Set,
        Operand::float(1.0),
    ));
    inner.push(Stmt::Let(ct, Expr::Use(Operand::Var(basis))));
    let rev_row = clone_residuals(inner.f, rev);
    inner.out.extend(rev_row);
    for ((jv, _), bar) in jacs.iter().zip(listed(idx, &bars)) {
        inner.push(Stmt::Assign(
            Place {
                var: *jv,
                idx: at.clone(),
            },
            AssignOp::Set,
            bar,
        ));
    }
    let mut inner_body = inner.take();
    let resets = rewind_tapes(&mut g, &mut body, rev);
    inner_body.splice(0..0, resets);
    let inner_body = wrap_loops(&es, &edims, inner_body);
    body.push(Stmt::For(Loop {
        var: kv,
        lo: Operand::Const(CExpr::Lit(0)),
        hi: n,
        rev: false,
        body: Block(inner_body),
        span: SrcSpan(site.name),
    }));
    end_jacrev(&mut g, body, &jacs, many, aux, f, o);
    Ok(g)
}

/// The reverse sweep `rev`, to be repeated (one per row), with every callee's residuals
/// that it takes by value from the forward sweep (`vjp_bwd(x, res, ct)`,
/// `vjp_bwd_acc(..)`) cloned first: a batched callee's residuals are a `Vec`, which the
/// first sweep would move (a callee's other residuals are `Copy`: a clone is their copy).
fn clone_residuals(g: &mut Func, rev: &[Stmt]) -> Vec<Stmt> {
    let blk = Block(rev.to_vec());
    let mut declared = HashSet::new();
    walk_stmts(&blk, &mut |s| {
        if let Stmt::Let(v, _) | Stmt::Mut(v, _) = s {
            declared.insert(*v);
        }
    });
    let mut out = Vec::new();
    let mut cloned: HashMap<VarId, VarId> = HashMap::new();
    for s in rev {
        let mut s = s.clone();
        if let Stmt::Let(_, Expr::Call(c)) = &mut s {
            let res = match c.modes[..] {
                [Mode::VjpBwd] => c.args.len().checked_sub(2),
                [Mode::VjpBwdAcc] => c.args.len().checked_sub(2).map(|k| k / 2),
                _ => None,
            };
            if let Some(Operand::Var(r)) = res.and_then(|k| c.args.get(k)).map(|a| a.op.clone()) {
                if !declared.contains(&r) {
                    let copy = *cloned.entry(r).or_insert_with(|| {
                        let ty = g.vars[r].ty.clone();
                        let name = format!("{}_copy", g.vars[r].name);
                        let v = g.new_var(name, ty, false);
                        out.push(Stmt::Let(v, Expr::Call(Call::clone_of(Operand::Var(r)))));
                        v
                    });
                    if let Some(a) = res.and_then(|k| c.args.get_mut(k)) {
                        a.op = Operand::Var(copy);
                    }
                }
            }
        }
        out.push(s);
    }
    out
}

/// The counters of growing tapes that the reverse sweep `rev` counts down (integers it
/// assigns but does not declare): a sweep repeated per row or chunk of rows must start
/// each from where the forward sweep left it. Saves them at the end of `fwd` and gives
/// the statements that reset them, for the start of each sweep.
fn rewind_tapes(g: &mut Func, fwd: &mut Vec<Stmt>, rev: &[Stmt]) -> Vec<Stmt> {
    let blk = Block(rev.to_vec());
    let mut declared = HashSet::new();
    let mut counters = Vec::new();
    walk_stmts(&blk, &mut |s| match s {
        Stmt::Let(v, _) | Stmt::Mut(v, _) => {
            declared.insert(*v);
        }
        Stmt::Assign(p, _, _)
            if p.idx.is_empty() && matches!(g.vars[p.var].ty, Ty::Int(_)) && !counters.contains(&p.var) =>
        {
            counters.push(p.var);
        }
        _ => {}
    });
    let mut resets = Vec::new();
    for c in counters.into_iter().filter(|c| !declared.contains(c)) {
        let name = format!("{}_end", g.vars[c].name);
        let ty = g.vars[c].ty.clone();
        let saved = g.new_var(name, ty, false);
        fwd.push(Stmt::Let(saved, Expr::Use(Operand::Var(c))));
        resets.push(Stmt::Assign(
            Place { var: c, idx: vec![] },
            AssignOp::Set,
            Operand::Var(saved),
        ));
    }
    resets
}

/// `let mut jac_k = 0;` for each argument `k` of `idx`: the Jacobians of `main`'s output.
fn zero_jacobians(b: &mut Builder, f: &Func, main: &Func, idx: &[usize]) -> Vec<(VarId, Ty)> {
    idx.iter()
        .map(|k| {
            let ty = jac_ty(&main.ret_ty, &f.params[*k].ty);
            let zero = jacobian_zero(b, &main.ret_ty, &f.params[*k], &ty);
            (b.let_mut(Some(zero), "jac", ty.clone()), ty)
        })
        .collect()
}

/// The zero Jacobian of an output of type `o` in the parameter `p`, of type `ty`: a literal
/// zero, or for a slice (whose length only the value knows) one zero cotangent of it per
/// output element, `[zero_vec(xs); M]` (rows of the slice's length).
fn jacobian_zero(b: &mut Builder, o: &Ty, p: &Param, ty: &Ty) -> Expr {
    if !p.ty.has_slice() {
        return Expr::Zeros(ty.clone());
    }
    let mut levels = Vec::new();
    let mut t = o;
    while let Ty::Array(e, n) = t {
        levels.push(n.clone());
        t = e;
    }
    let mut z = Expr::ZeroLike(Operand::Var(p.var));
    let mut zt = p.ty.tangent();
    for n in levels.into_iter().rev() {
        let v = b.let_ty(z, "zero", zt.clone());
        zt = Ty::Array(Box::new(zt), n.clone());
        z = Expr::Repeat(v, n);
    }
    z
}

/// Ends a `jacrev` after `body`: the Jacobians as its result (a tuple for several), with
/// the aux output.
fn end_jacrev(
    g: &mut Func,
    body: Vec<Stmt>,
    jacs: &[(VarId, Ty)],
    many: bool,
    aux: Option<&Operand>,
    f: &Func,
    o: &Options,
) {
    let mut b = Builder::new(g);
    b.out = body;
    let items: Vec<(Operand, Ty)> = jacs
        .iter()
        .map(|(v, t)| (b.let_ty(Expr::Use(Operand::Var(*v)), "jac", t.clone()), t.clone()))
        .collect();
    let res = result_of(&mut b, items, many);
    let body = b.take();
    finish(g, body, res, aux, f, o);
}

/// Lanes per batched reverse sweep: the runtime's lane types hold 4 `f64` or 8 `f32`.
fn lane_count(k: FloatTy) -> i128 {
    match k {
        FloatTy::F64 => 4,
        FloatTy::F32 => 8,
    }
}

/// The chunks of a Jacobian built by batching: `(n + L - 1) / L` chunks of `L` basis
/// vectors on lanes, lane `l` of chunk `c` being index `min(c L + l, n - 1)` (the padding
/// lanes of the last chunk repeat the last index).
struct LaneChunks {
    /// The chunk's loop variable.
    chunk: VarId,
    /// Lanes per chunk.
    lanes: i128,
    /// The number of basis vectors.
    n: CExpr,
}

impl LaneChunks {
    fn new(g: &mut Func, n: &CExpr, lanes: i128) -> LaneChunks {
        let chunk = g.new_var("c", Ty::Int(Some("usize".into())), false);
        LaneChunks {
            chunk,
            lanes,
            n: n.clone(),
        }
    }

    /// Statements computing the index of lane `l` of the current chunk, and that index.
    fn index_of(&self, g: &mut Func, l: VarId) -> (Vec<Stmt>, Operand) {
        let usize_ty = Ty::Int(Some("usize".into()));
        let (last, bound) = match self.n.lit() {
            Some(v) => (Operand::Int(v - 1), Operand::Int(v)),
            None => (
                Operand::Const(CExpr::Bin('-', Box::new(self.n.clone()), Box::new(CExpr::Lit(1)))),
                Operand::Const(self.n.clone()),
            ),
        };
        let mut b = Builder::new(g);
        let base = b.let_ty(
            Expr::Prim(Prim::Mul, vec![Operand::Var(self.chunk), Operand::Int(self.lanes)]),
            "k",
            usize_ty.clone(),
        );
        let k = b.let_ty(
            Expr::Prim(Prim::Add, vec![base, Operand::Var(l)]),
            "k",
            usize_ty.clone(),
        );
        let inside = b.let_ty(Expr::Cmp(CmpOp::Lt, k.clone(), bound), "inside", Ty::Bool);
        let at = b.let_ty(Expr::Select(inside, k, last), "at", usize_ty);
        (b.take(), at)
    }

    /// `let mut basis = 0; for l in 0..L { basis[index(l)] += unit_lane(l) }`, bound to
    /// `seed`: `+=`, as the padding lanes share the last index.
    fn basis(&self, g: &mut Func, ty: &Ty, seed: VarId) -> Vec<Stmt> {
        let mut b = Builder::new(g);
        let basis = b.let_mut(Some(Expr::Zeros(ty.clone())), "basis", ty.clone());
        let mut out = b.take();
        let l = g.new_var("l", Ty::Int(Some("usize".into())), false);
        let (mut set_lane, at) = self.index_of(g, l);
        let mut b = Builder::new(g);
        let unit = b.let_(Expr::UnitLane(Operand::Var(l)), "unit");
        b.push(Stmt::Assign(
            Place {
                var: basis,
                idx: vec![at],
            },
            AssignOp::Add,
            unit,
        ));
        set_lane.extend(b.take());
        out.extend(wrap_loops(&[l], &[CExpr::Lit(self.lanes)], set_lane));
        out.push(Stmt::Let(seed, Expr::Use(Operand::Var(basis))));
        out
    }

    /// `for c in 0..chunks { body }`, after the costly values that are the same in every
    /// chunk (computed once, into tapes: `hoist.rs`).
    fn wrap(&self, g: &mut Func, body: Vec<Stmt>) -> Vec<Stmt> {
        let chunks = self.count();
        let (mut out, body) = crate::hoist::hoist(g, self.chunk, &chunks, body);
        out.extend(wrap_loops(&[self.chunk], &[chunks], body));
        out
    }

    /// The number of chunks.
    fn count(&self) -> CExpr {
        match self.n.lit() {
            Some(v) => CExpr::Lit((v + self.lanes - 1) / self.lanes),
            None => CExpr::Bin(
                '/',
                Box::new(CExpr::Bin(
                    '+',
                    Box::new(self.n.clone()),
                    Box::new(CExpr::Lit(self.lanes - 1)),
                )),
                Box::new(CExpr::Lit(self.lanes)),
            ),
        }
    }
}

/// `jacrev` of a function with a vector output `[F; M]`, batched (torch.func's
/// `vmap(vjp)` over the standard basis):
///
/// ```text
/// forward sweep (once)
/// for c in 0..(M + L - 1) / L {                       chunks of L rows
///     basis[min(c L + l, M - 1)] = unit_lane(l)        lane l: the cotangent e_{c L + l}
///     reverse sweep on lanes (shared values stay scalars)
///     jac[min(c L + l, M - 1)][..] = lane l of x_bar  (the last chunk repeats row M - 1)
/// }
/// ```
///
/// `None` where the reverse sweep cannot be batched (it calls other functions) or the
/// shapes are not a plain vector output and float array inputs: the caller builds one
/// sweep per row.
#[allow(clippy::too_many_arguments)]
fn jacrev_batched(
    f: &Func,
    main: &Func,
    g0: &Func,
    fwd: &[Stmt],
    rev: &[Stmt],
    ct: VarId,
    bars: &[Operand],
    idx: &[usize],
    odims: &[CExpr],
    many: bool,
    aux: Option<&Operand>,
    o: &Options,
) -> Option<Func> {
    let [m] = odims else { return None };
    let Ty::Array(oe, _) = &main.ret_ty else { return None };
    if !oe.is_float() {
        return None;
    }
    let float = f
        .params
        .iter()
        .find_map(|p| p.ty.float_ty())
        .or(oe.float_ty())
        .unwrap_or(FloatTy::F64);
    for k in idx {
        let t = &f.params[*k].ty;
        let mut bottom = t;
        while let Ty::Array(e, _) = bottom {
            bottom = e;
        }
        if !bottom.is_float() || bottom.float_ty().is_some_and(|k| k != float) {
            return None;
        }
    }
    let lanes = lane_count(float);
    let mut g = g0.clone();
    let usize_ty = Ty::Int(Some("usize".into()));
    let mut b = Builder::new(&mut g);
    b.out = fwd.to_vec();
    let jacs = zero_jacobians(&mut b, f, main, idx);
    let fwd_part = b.take();
    let chunks = LaneChunks::new(&mut g, m, lanes);
    // The basis cotangents of the chunk, one per lane, then the reverse sweep.
    let ct_ty = main.ret_ty.tangent();
    let mut body = chunks.basis(&mut g, &ct_ty, ct);
    let mut fwd_part = fwd_part;
    body.extend(rewind_tapes(&mut g, &mut fwd_part, rev));
    body.extend(rev.iter().cloned());
    let batched = crate::batch::batch_block(&mut g, &body, &[]).ok()?;
    let mut chunk_body = batched;
    // Each lane's row of each Jacobian.
    let lw = g.new_var("l", usize_ty.clone(), false);
    let (mut write, row) = chunks.index_of(&mut g, lw);
    let bars = listed(idx, bars);
    for ((jv, _), (bar, k)) in jacs.iter().zip(bars.iter().zip(idx)) {
        let pty = &f.params[*k].ty;
        let idims = dims(pty)?;
        let barv = bar.var()?;
        if !matches!(g.vars[barv].ty, Ty::Lanes(_)) && !g.vars[barv].ty.has_lanes() {
            // A cotangent that does not depend on the output's: zero rows (already zero).
            continue;
        }
        let is = loop_nest(&mut g, &idims, "i");
        let iops: Vec<Operand> = is.iter().map(|v| Operand::Var(*v)).collect();
        let mut el = Builder::new(&mut g);
        let t = if iops.is_empty() {
            Operand::Var(barv)
        } else {
            el.let_(Expr::Index(barv, pty.tangent().place_index(&iops)), "t")
        };
        let x = el.let_(Expr::Lane(t, Operand::Var(lw)), "x");
        let place = jac_idx(&main.ret_ty, pty, std::slice::from_ref(&row), &iops);
        el.push(Stmt::Assign(Place { var: *jv, idx: place }, AssignOp::Set, x));
        let el_body = el.take();
        write.extend(wrap_loops(&is, &idims, el_body));
    }
    chunk_body.extend(wrap_loops(&[lw], &[CExpr::Lit(lanes)], write));
    let mut out = fwd_part;
    if let [(jac, Ty::Array(..))] = jacs[..] {
        if let Some(t) = row_tasks(&chunk_body, chunks.chunk, jac, lanes, o) {
            g.row_tasks.push(t);
        }
    }
    out.extend(chunks.wrap(&mut g, chunk_body));
    end_jacrev(&mut g, out, &jacs, many, aux, f, o);
    Some(g)
}

/// The chunk loop of a batched `jacrev` as tasks of rows ([`RowTasks`]), where its body
/// writes nothing declared outside it but the Jacobian `jac`, and reads `jac` nowhere:
/// then chunks can run on any thread, each with its rows.
fn row_tasks(body: &[Stmt], chunk: VarId, jac: VarId, lanes: i128, o: &Options) -> Option<RowTasks> {
    let blk = Block(body.to_vec());
    let mut inside: HashSet<VarId> = HashSet::new();
    walk_stmts(&blk, &mut |s| match s {
        Stmt::Let(v, _) | Stmt::Mut(v, _) => {
            inside.insert(*v);
        }
        Stmt::For(l) => {
            inside.insert(l.var);
        }
        _ => {}
    });
    let mut ok = true;
    walk_stmts(&blk, &mut |s| {
        let mut reads = Vec::new();
        stmt_reads(s, &mut reads);
        if reads.contains(&jac) {
            ok = false;
        }
        let mut writes = call_writes(s);
        if let Stmt::Assign(p, ..) = s {
            writes.push(p.var);
        }
        if writes.iter().any(|w| *w != jac && !inside.contains(w)) {
            ok = false;
        }
    });
    let weight = crate::cost::run_weight(&blk) / lanes.max(1) as u64;
    ok.then(|| RowTasks {
        chunk,
        out: jac,
        lanes,
        chunk_size: o.chunk_size.map(|(k, _)| k),
        weight: weight.max(1),
        columns: false,
    })
}

/// Input sizes up to this are unrolled in `jacfwd` (one column per basis vector).
const UNROLL_COLUMNS: i128 = 8;

/// `jacfwd`: one forward-mode pass per input element.
pub fn jacfwd(f: &Func, o: &Options, site: &Site, rules: &RuleTable) -> TResult<Func> {
    jacfwd_pass(f, o, site, rules, false)
}

/// `jacfwd`; with `final_pass` (the emitted form, which nothing differentiates) the columns
/// of a vector input are batched over lanes of basis tangents.
pub fn jacfwd_pass(f: &Func, o: &Options, site: &Site, rules: &RuleTable, final_pass: bool) -> TResult<Func> {
    if final_pass {
        if let Some(h) = crate::sparse::derivative(f, o, site, rules)? {
            return Ok(h);
        }
    }
    if let Some(h) = per_output(f, o, site, rules, &|f, o, s, r| jacfwd_pass(f, o, s, r, final_pass))? {
        return Ok(h);
    }
    let (idx, many) = argnums(f, o, site)?;
    let (main, aux) = split_aux(f, o.has_aux, site)?;
    // A gradient in a slice, differentiated in that slice again: a Hessian in a slice.
    let rows_of_slice = matches!(&main.ret_ty, Ty::Slice(e) if floats(e))
        && idx
            .iter()
            .all(|k| matches!(&f.params[*k].ty, Ty::Slice(e) if floats(e)));
    let odims = if rows_of_slice {
        Vec::new()
    } else {
        check_output(f, &main, o, site)?
    };
    // The result function: `f`'s parameters; the primal once (for aux), then the columns.
    let mut h = main.clone();
    h.name = format!("{}_{}", f.name, o.transform.suffix());
    if aux.is_none() {
        h.body = Block::default();
    }
    let mut items = Vec::new();
    for k in &idx {
        let pty = f.params[*k].ty.clone();
        if let Ty::Slice(elem) = &pty {
            let jty = jac_ty(&main.ret_ty, &pty);
            let one = idx.len() == 1;
            let r = jacfwd_slice_columns(&mut h, f, &main, (*k, one), elem, &jty, &odims, rules, site)?;
            items.push((r, jty));
            continue;
        }
        let Some(idims) = dims(&pty) else {
            return err(
                f.params[*k].span.0,
                format!("`jacfwd` cannot differentiate argument {k} of type `{}`", ty_name(&pty)),
            );
        };
        let jty = jac_ty(&main.ret_ty, &pty);
        // Small literal sizes: one column per basis vector, unrolled with literal seeds, so
        // each column carries only what depends on its input element, and CSE shares the
        // primal between columns.
        // (Arrays only: the seeds are array literals.)
        if let ([CExpr::Lit(n)], Ty::Array(..)) = (idims.as_slice(), &pty) {
            if (1..=UNROLL_COLUMNS).contains(n) {
                let mut b = Builder::new(&mut h);
                let jv = b.let_mut(Some(Expr::Zeros(jty.clone())), "jac", jty.clone());
                let s = b.take();
                h.body.0.extend(s);
                for e in 0..*n {
                    let spec = JvpSpec {
                        active: mask(f, &[*k]),
                        all_params: false,
                        seeds: vec![],
                        basis: vec![(*k, e as usize)],
                    };
                    let (body, ydot, _) = jvp_into(&mut h, &main, &spec, rules, site)?;
                    h.body.0.extend(body);
                    let col = Operand::Int(e);
                    if odims.is_empty() {
                        h.body.0.push(Stmt::Assign(
                            Place {
                                var: jv,
                                idx: vec![col],
                            },
                            AssignOp::Set,
                            ydot,
                        ));
                        continue;
                    }
                    let Some(yv) = ydot.var() else {
                        return Err(internal(site.name)(Diag::new("tangent output is not a variable")));
                    };
                    let os = loop_nest(&mut h, &odims, "o");
                    let oops: Vec<Operand> = os.iter().map(|v| Operand::Var(*v)).collect();
                    let mut c = Builder::new(&mut h);
                    let t = c.let_(Expr::Index(yv, main.ret_ty.tangent().place_index(&oops)), "t");
                    let place = jac_idx(&main.ret_ty, &pty, &oops, &[col]);
                    c.push(Stmt::Assign(Place { var: jv, idx: place }, AssignOp::Set, t));
                    let col_body = c.take();
                    h.body.0.extend(wrap_loops(&os, &odims, col_body));
                }
                let mut b = Builder::new(&mut h);
                let r = b.let_ty(Expr::Use(Operand::Var(jv)), "jac", jty.clone());
                let s = b.take();
                h.body.0.extend(s);
                items.push((r, jty));
                continue;
            }
        }
        let seeds = if idims.is_empty() {
            vec![(*k, Operand::float(1.0))]
        } else {
            vec![]
        };
        let spec = JvpSpec {
            active: mask(f, &[*k]),
            all_params: false,
            seeds,
            basis: vec![],
        };
        let (body, ydot, tparam) = jvp_into(&mut h, &main, &spec, rules, site)?;
        if idims.is_empty() {
            h.body.0.extend(body);
            items.push((ydot, jty));
            continue;
        }
        let Some(tparam) = tparam else {
            return Err(internal(site.name)(Diag::new("missing tangent parameter")));
        };
        if final_pass && o.chunk_size.map(|(k, _)| k) != Some(1) {
            let mut hb = h.clone();
            if let Some(r) = jacfwd_columns_batched(&mut hb, &main, &pty, &jty, &idims, &odims, tparam, &body, &ydot, o)
            {
                h = hb;
                items.push((r, jty));
                continue;
            }
        }
        let is = loop_nest(&mut h, &idims, "i");
        let os = loop_nest(&mut h, &odims, "o");
        let mut b = Builder::new(&mut h);
        let jv = b.let_mut(Some(Expr::Zeros(jty.clone())), "jac", jty.clone());
        let outer = b.take();
        let iops: Vec<Operand> = is.iter().map(|v| Operand::Var(*v)).collect();
        let tty = pty.tangent();
        let mut inner = Builder::new(&mut h);
        one_hot_tangent(&mut inner, Expr::Zeros(tty.clone()), &tty, &iops, tparam);
        inner.out.extend(body);
        if odims.is_empty() {
            inner.push(Stmt::Assign(
                Place {
                    var: jv,
                    idx: jac_idx(&main.ret_ty, &pty, &[], &iops),
                },
                AssignOp::Set,
                ydot.clone(),
            ));
        } else {
            let oops: Vec<Operand> = os.iter().map(|v| Operand::Var(*v)).collect();
            let yv = match ydot.var() {
                Some(v) => v,
                None => return Err(internal(site.name)(Diag::new("tangent output is not a variable"))),
            };
            let mut col = Builder::new(inner.f);
            let e = col.let_(Expr::Index(yv, main.ret_ty.tangent().place_index(&oops)), "t");
            let place = jac_idx(&main.ret_ty, &pty, &oops, &iops);
            col.push(Stmt::Assign(Place { var: jv, idx: place }, AssignOp::Set, e));
            let col_body = col.take();
            let nest = wrap_loops(&os, &odims, col_body);
            inner.out.extend(nest);
        }
        let inner_body = inner.take();
        h.body.0.extend(outer);
        h.body.0.extend(wrap_loops(&is, &idims, inner_body));
        let mut b = Builder::new(&mut h);
        let r = b.let_ty(Expr::Use(Operand::Var(jv)), "jac", jty.clone());
        let s = b.take();
        h.body.0.extend(s);
        items.push((r, jty));
    }
    end_jacobians(&mut h, items, many, aux.as_ref(), f);
    Ok(h)
}

/// The forward-mode body `spec` asks of `main`, imported into `h` (whose parameters are
/// `main`'s): its statements, the output tangent, and the tangent parameter of the first
/// differentiated argument (the one after the primal parameters), which the caller binds.
fn jvp_into(
    h: &mut Func,
    main: &Func,
    spec: &JvpSpec,
    rules: &RuleTable,
    site: &Site,
) -> TResult<(Vec<Stmt>, Operand, Option<VarId>)> {
    let (jf, _y, ydot) = jvp_parts(main, spec, rules).map_err(internal(site.name))?;
    let fixed = param_map(&jf, h);
    let m = import(h, &jf, &fixed);
    let mut body = jf.body.clone();
    rename_block(&mut body, &m);
    let tparam = jf.params.get(main.params.len()).map(|p| m[&p.var]);
    Ok((body.0, map_op(&ydot, &m), tparam))
}

/// `let mut basis = zero; basis[at] = 1; let tparam = basis;`: the one-hot tangent of a
/// `jacfwd` column.
fn one_hot_tangent(b: &mut Builder, zero: Expr, tty: &Ty, at: &[Operand], tparam: VarId) {
    let tm = b.let_mut(Some(zero), "basis", tty.clone());
    b.push(Stmt::Assign(
        Place {
            var: tm,
            idx: tty.place_index(at),
        },
        AssignOp::Set,
        Operand::float(1.0),
    ));
    b.push(Stmt::Let(tparam, Expr::Use(Operand::Var(tm))));
}

/// The slice parameter as long as `f`'s `Vec` result: the result a copy (`Use`, a clone)
/// of a mutable variable declared as a parameter's zero (`ZeroLike(xs)`: a gradient, or a
/// `vec![0.0; xs.len()]`) and never assigned whole. `None` when it cannot be traced.
fn length_param(f: &Func) -> Option<VarId> {
    let mut defs: HashMap<VarId, &Expr> = HashMap::new();
    let mut whole = HashSet::new();
    walk_stmts(&f.body, &mut |s| match s {
        Stmt::Let(v, e) | Stmt::Mut(v, Some(e)) => {
            defs.insert(*v, e);
        }
        Stmt::Mut(v, None) => {
            whole.insert(*v);
        }
        Stmt::Assign(p, _, _) if p.idx.is_empty() => {
            whole.insert(p.var);
        }
        s => {
            for w in call_writes(s) {
                whole.insert(w);
            }
        }
    });
    let mut cur = f.ret.var()?;
    for _ in 0..=defs.len() {
        if whole.contains(&cur) {
            return None;
        }
        match defs.get(&cur)? {
            Expr::Use(Operand::Var(u)) => cur = *u,
            Expr::Call(c) if c.is_clone() => cur = c.args.first()?.op.var()?,
            Expr::ZeroLike(Operand::Var(p)) if f.params.iter().any(|q| q.var == *p) => {
                return matches!(f.vars[*p].ty, Ty::Slice(_)).then_some(*p)
            }
            _ => return None,
        }
    }
    None
}

/// The columns of `jacfwd` in the slice parameter `k` (elements `elem`): a loop over its
/// run-time length, each column's tangent a one-hot `Vec` (`zero_vec(xs)` with a `1` at the
/// column), its forward pass, and the output tangent written as column `c` of every output
/// element's row (`jac[o][c]`, rows of the slice's length). Appends to `h`'s body.
#[allow(clippy::too_many_arguments)]
fn jacfwd_slice_columns(
    h: &mut Func,
    f: &Func,
    main: &Func,
    (k, one): (usize, bool),
    elem: &Ty,
    jty: &Ty,
    odims: &[CExpr],
    rules: &RuleTable,
    site: &Site,
) -> TResult<Operand> {
    let Some(edims) = dims(elem) else {
        return err(
            f.params[k].span.0,
            format!("`jacfwd` cannot differentiate a slice of `{}`", ty_name(elem)),
        );
    };
    let spec = JvpSpec {
        active: mask(f, &[k]),
        all_params: false,
        seeds: vec![],
        basis: vec![],
    };
    let (body, ydot, tparam) = jvp_into(h, main, &spec, rules, site)?;
    let Some(tparam) = tparam else {
        return Err(internal(site.name)(Diag::new("missing tangent parameter")));
    };
    let xs = h.params[k].clone();
    let usize_ty = Ty::Int(Some("usize".into()));
    // The output a gradient in a slice (a Hessian in slices): a row per scalar of it. In
    // the only slice differentiated (`one`), the gradient is as long as `xs`; else as long
    // as the gradient computed once here (two slices of one type may differ in length).
    let (rows, oedims) = match &main.ret_ty {
        Ty::Slice(e) => (true, dims(e).unwrap_or_default()),
        _ => (false, Vec::new()),
    };
    // A `Vec` the body builds (`vec![0.0; ys.len()]`) is as long as the slice `ys`, which
    // need not be `xs`; a result whose length cannot be traced to a slice parameter is
    // computed once to read its length.
    let traced = if rows && one { length_param(main) } else { None };
    let xs_len = traced == Some(main.params[k].var);
    let other = traced
        .filter(|_| !xs_len)
        .and_then(|p| main.params.iter().position(|q| q.var == p))
        .and_then(|j| h.params.get(j))
        .map(|q| Operand::Var(q.var));
    let like = if let Some(o) = other {
        o
    } else if rows && !(one && xs_len) {
        let fixed = param_map(main, h);
        let m = import(h, main, &fixed);
        let mut primal = main.body.clone();
        rename_block(&mut primal, &m);
        h.body.0.extend(primal.0);
        map_op(&main.ret, &m)
    } else {
        Operand::Var(xs.var)
    };
    let mut b = Builder::new(h);
    let zero = if rows {
        // One row (the slice's zero) per scalar of the output: `[[z; ..]; ..]` per element.
        let mut z = b.let_ty(Expr::ZeroLike(Operand::Var(xs.var)), "zero", xs.ty.tangent());
        let mut zt = xs.ty.tangent();
        for d in oedims.iter().rev() {
            zt = Ty::Array(Box::new(zt), d.clone());
            z = b.let_ty(Expr::Repeat(z, d.clone()), "zero", zt.clone());
        }
        Expr::Broadcast(like.clone(), z)
    } else {
        jacobian_zero(&mut b, &main.ret_ty, &xs, jty)
    };
    let jv = b.let_mut(Some(zero), "jac", jty.clone());
    let n = b.let_ty(Expr::Len(Operand::Var(xs.var)), "n", usize_ty.clone());
    let rows_n = match &like {
        Operand::Var(v) if *v == xs.var => n.clone(),
        l => b.let_ty(Expr::Len(l.clone()), "n", usize_ty.clone()),
    };
    // One tangent for every column, its one `1` set before the column's pass and reset
    // after: the pass reads it in place of its tangent parameter.
    let tty = xs.ty.tangent();
    let basis = b.let_mut(Some(Expr::ZeroLike(Operand::Var(xs.var))), "basis", tty.clone());
    let outer = b.take();
    let mut body = Block(body);
    rename_block(&mut body, &HashMap::from([(tparam, basis)]));
    let ydot = map_op(&ydot, &HashMap::from([(tparam, basis)]));
    let c = h.new_var("c", usize_ty, false);
    let es = loop_nest(h, &edims, "e");
    let os = loop_nest(h, odims, "o");
    let iops: Vec<Operand> = std::iter::once(c).chain(es.iter().copied()).map(Operand::Var).collect();
    let at = tty.place_index(&iops);
    let set = |v: f64| {
        Stmt::Assign(
            Place {
                var: basis,
                idx: at.clone(),
            },
            AssignOp::Set,
            Operand::float(v),
        )
    };
    let mut inner = Builder::new(h);
    inner.push(set(1.0));
    inner.out.extend(body.0);
    if rows {
        // `jac[o][a..][c][e..] = ydot[o][a..]` for every scalar `(o, a..)` of the output
        // (the gradient, shaped as the slice).
        let Some(yv) = ydot.var() else {
            return Err(internal(site.name)(Diag::new("tangent output is not a variable")));
        };
        let o = inner.f.new_var("o", Ty::Int(Some("usize".into())), false);
        let os = loop_nest(inner.f, &oedims, "a");
        let mut oat = vec![Operand::Var(o)];
        oat.extend(os.iter().copied().map(Operand::Var));
        let mut col = Builder::new(inner.f);
        let t = col.let_(Expr::Index(yv, oat.clone()), "t");
        let mut place = oat;
        place.extend(iops.iter().cloned());
        col.push(Stmt::Assign(Place { var: jv, idx: place }, AssignOp::Set, t));
        let col_body = col.take();
        let col_body = wrap_loops(&os, &oedims, col_body);
        inner.push(Stmt::For(Loop {
            var: o,
            lo: Operand::Const(CExpr::Lit(0)),
            hi: rows_n.clone(),
            rev: false,
            body: Block(col_body),
            span: SrcSpan(site.name),
        }));
    } else if odims.is_empty() {
        inner.push(Stmt::Assign(
            Place {
                var: jv,
                idx: jac_idx(&main.ret_ty, &xs.ty, &[], &iops),
            },
            AssignOp::Set,
            ydot,
        ));
    } else {
        let Some(yv) = ydot.var() else {
            return Err(internal(site.name)(Diag::new("tangent output is not a variable")));
        };
        let oops: Vec<Operand> = os.iter().map(|v| Operand::Var(*v)).collect();
        let mut col = Builder::new(inner.f);
        let t = col.let_(Expr::Index(yv, main.ret_ty.tangent().place_index(&oops)), "t");
        let place = jac_idx(&main.ret_ty, &xs.ty, &oops, &iops);
        col.push(Stmt::Assign(Place { var: jv, idx: place }, AssignOp::Set, t));
        let col_body = col.take();
        inner.out.extend(wrap_loops(&os, odims, col_body));
    }
    inner.push(set(0.0));
    let inner_body = inner.take();
    h.body.0.extend(outer);
    h.body.0.push(Stmt::For(Loop {
        var: c,
        lo: Operand::Const(CExpr::Lit(0)),
        hi: n,
        rev: false,
        body: Block(wrap_loops(&es, &edims, inner_body)),
        span: SrcSpan(site.name),
    }));
    let mut b = Builder::new(h);
    let r = b.let_ty(Expr::Use(Operand::Var(jv)), "jac", jty.clone());
    let s = b.take();
    h.body.0.extend(s);
    Ok(r)
}

/// The columns of `jacfwd` in a vector input `[F; N]`, batched: chunks of `L` basis
/// tangents on lanes (lane `l` is `e_{c L + l}`), the forward-mode body batched (values
/// that do not depend on the tangent stay scalars, computed once per chunk), and lane `l`
/// of the output tangent written as column `c L + l`. The padding lanes of the last chunk
/// repeat column `N - 1`. Appends to `h`'s body and returns the Jacobian; `None` where the
/// body cannot be batched (calls) or the input is not a float vector.
#[allow(clippy::too_many_arguments)]
fn jacfwd_columns_batched(
    h: &mut Func,
    main: &Func,
    pty: &Ty,
    jty: &Ty,
    idims: &[CExpr],
    odims: &[CExpr],
    tparam: VarId,
    body: &[Stmt],
    ydot: &Operand,
    o: &Options,
) -> Option<Operand> {
    let [n] = idims else { return None };
    let Ty::Array(e, _) = pty else { return None };
    let float = e.float_ty().unwrap_or(FloatTy::F64);
    if !e.is_float() || main.ret_ty.float_ty().is_some_and(|k| k != float) {
        return None;
    }
    let lanes = lane_count(float);
    let usize_ty = Ty::Int(Some("usize".into()));
    let mut b = Builder::new(h);
    let jv = b.let_mut(Some(Expr::Zeros(jty.clone())), "jac", jty.clone());
    let outer = b.take();
    let chunks = LaneChunks::new(h, n, lanes);
    let tty = pty.tangent();
    let mut chunk_body = chunks.basis(h, &tty, tparam);
    chunk_body.extend(body.iter().cloned());
    let mut chunk_body = crate::batch::batch_block(h, &chunk_body, &[]).ok()?;
    let yv = ydot.var()?;
    if !h.vars[yv].ty.has_lanes() {
        return None;
    }
    // Each lane's column.
    let lw = h.new_var("l", usize_ty.clone(), false);
    let (mut write, col) = chunks.index_of(h, lw);
    let os = loop_nest(h, odims, "o");
    let oops: Vec<Operand> = os.iter().map(|v| Operand::Var(*v)).collect();
    let mut el = Builder::new(h);
    let t = if oops.is_empty() {
        Operand::Var(yv)
    } else {
        el.let_(Expr::Index(yv, main.ret_ty.tangent().place_index(&oops)), "t")
    };
    let x = el.let_(Expr::Lane(t, Operand::Var(lw)), "x");
    let place = jac_idx(&main.ret_ty, pty, &oops, std::slice::from_ref(&col));
    el.push(Stmt::Assign(Place { var: jv, idx: place }, AssignOp::Set, x));
    let el_body = el.take();
    write.extend(wrap_loops(&os, odims, el_body));
    chunk_body.extend(wrap_loops(&[lw], &[CExpr::Lit(lanes)], write));
    // The chunks of columns as tasks (`jac[o][col]`, one output axis).
    if let ([_], Ty::Array(..)) = (odims, jty) {
        if let Some(mut t) = row_tasks(&chunk_body, chunks.chunk, jv, lanes, o) {
            t.columns = true;
            h.row_tasks.push(t);
        }
    }
    h.body.0.extend(outer);
    let wrapped = chunks.wrap(h, chunk_body);
    h.body.0.extend(wrapped);
    let mut b = Builder::new(h);
    let r = b.let_ty(Expr::Use(Operand::Var(jv)), "jac", jty.clone());
    let s = b.take();
    h.body.0.extend(s);
    Some(r)
}

/// Ends a Jacobian function: its results as one value or a tuple, with the aux output,
/// simplified.
fn end_jacobians(h: &mut Func, items: Vec<(Operand, Ty)>, many: bool, aux: Option<&Operand>, f: &Func) {
    let mut b = Builder::new(h);
    let mut res = result_of(&mut b, items, many);
    if let Some(a) = aux {
        res = pair(&mut b, res, (a.clone(), aux_ty(f)), "out");
    }
    let s = b.take();
    h.body.0.extend(s);
    h.ret = res.0;
    h.ret_ty = res.1;
    simplify(h);
}

/// `hessian`: forward over reverse, `jacfwd(jacrev(f))`, both with the same `argnums`
/// (torch.func's): several `argnums` give the nested tuple of blocks
/// `((H00, H01), (H10, H11))`, `argnums = (k,)` gives `((H,),)`, `has_aux` gives
/// `(hessian, aux)`.
pub fn hessian(f: &Func, o: &Options, site: &Site, rules: &RuleTable) -> TResult<Func> {
    hessian_pass(f, o, site, rules, false)
}

/// The Hessians with respect to a slice not built yet (a spanned error on the parameter):
/// all but those of a scalar function in one slice of floats (`Vec<Vec<T>>`). Jacobians
/// in slices are built (`[Vec<T>; M]`).
/// A float, or a fixed-size array (of arrays) of floats: the elements of a slice a Hessian
/// is built in.
fn floats(t: &Ty) -> bool {
    match t {
        Ty::Array(e, _) => floats(e),
        t => t.is_float(),
    }
}

fn no_slice_jacobian(f: &Func, idx: &[usize], o: &Options) -> TResult<()> {
    for k in idx {
        let p = &f.params[*k];
        if p.ty.has_slice() {
            let name = &f.vars[p.var].name;
            return err(
                p.span.0,
                format!(
                    "`{}` with respect to the slice `{name}` is not supported yet: a Hessian in slices is built for a scalar function of slices of floats or of arrays of floats only (`&[f64]`, giving `Vec<Vec<f64>>`; `&[[f64; 3]]`, giving `Vec<[Vec<[f64; 3]>; 3]>`), not beside other arguments; use `jacrev` or `jacfwd` here, or a fixed-size array `[f64; N]`",
                    o.transform.name()
                ),
            );
        }
    }
    Ok(())
}

/// `hessian`; with `final_pass` (the emitted form) its outer `jacfwd` is batched over lanes
/// of basis tangents.
pub fn hessian_pass(f: &Func, o: &Options, site: &Site, rules: &RuleTable, final_pass: bool) -> TResult<Func> {
    let (idx, _) = argnums(f, o, site)?;
    // In slices of floats (or of arrays of them), of a scalar function: `Vec<Vec<T>>`
    // (`Vec<[Vec<[T; N]>; N]>`) per pair of slices, the gradient in the slices
    // differentiated again column by column; other Hessians in slices not yet.
    let scalar_out = matches!(&f.ret_ty, Ty::Float(_))
        || (o.has_aux && matches!(&f.ret_ty, Ty::Tuple(ts) if ts.first().is_some_and(Ty::is_float)));
    if !(scalar_out
        && idx
            .iter()
            .all(|k| matches!(&f.params[*k].ty, Ty::Slice(e) if floats(e))))
    {
        no_slice_jacobian(f, &idx, o)?;
    }
    if final_pass {
        if let Some(h) = crate::sparse::derivative(f, o, site, rules)? {
            return Ok(h);
        }
    }
    let mut inner = o.clone();
    inner.transform = Transform::Jacrev;
    let g = jacrev(f, &inner, site, rules)?;
    let mut outer = inner.clone();
    outer.transform = Transform::Jacfwd;
    let mut h = jacfwd_pass(&g, &outer, site, rules, final_pass)?;
    h.name = format!("{}_{}", f.name, o.transform.suffix());
    Ok(h)
}

/// Jacobians of a function returning a tuple of outputs: one Jacobian per output (each a
/// tuple per argument when `argnums` is a tuple), as torch.func gives, built output by
/// output with `build` and joined into one function (the primal is shared by CSE).
/// `None` if the output is not a tuple.
fn per_output(
    f: &Func,
    o: &Options,
    site: &Site,
    rules: &RuleTable,
    build: &dyn Fn(&Func, &Options, &Site, &RuleTable) -> TResult<Func>,
) -> TResult<Option<Func>> {
    let (main, aux) = split_aux(f, o.has_aux, site)?;
    let Ty::Tuple(ts) = &main.ret_ty else { return Ok(None) };
    let mut h = main.clone();
    if aux.is_none() {
        h.body = Block::default();
    }
    let mut one = o.clone();
    one.has_aux = false;
    let mut items = Vec::new();
    for (c, t) in ts.iter().enumerate() {
        let mut fc = main.clone();
        let mut b = Builder::new(&mut fc);
        b.out = main.body.0.clone();
        let out = b.let_ty(Expr::Field(main.ret.clone(), c), "out", t.clone());
        let body = b.take();
        fc.body = Block(body);
        fc.ret = out;
        fc.ret_ty = t.clone();
        let gc = build(&fc, &one, site, rules)?;
        let fixed = param_map(&gc, &h);
        let m = import(&mut h, &gc, &fixed);
        let mut body = gc.body.clone();
        rename_block(&mut body, &m);
        h.body.0.extend(body.0);
        items.push((map_op(&gc.ret, &m), gc.ret_ty.clone()));
    }
    h.name = format!("{}_{}", f.name, o.transform.suffix());
    end_jacobians(&mut h, items, true, aux.as_ref(), f);
    Ok(Some(h))
}

/// `jvp`: `(primals.., tangents of the float arguments..) -> (y, ẏ)` (`(y, ẏ, aux)` with `has_aux`).
pub fn jvp_user(f: &Func, o: &Options, site: &Site, rules: &RuleTable) -> TResult<Func> {
    let (main, aux) = split_aux(f, o.has_aux, site)?;
    let active: Vec<bool> = f.params.iter().map(|p| p.ty.is_differentiable()).collect();
    let spec = JvpSpec {
        active,
        all_params: false,
        seeds: vec![],
        basis: vec![],
    };
    let (mut g, y, ydot) = jvp_parts(&main, &spec, rules).map_err(internal(site.name))?;
    let mut b = Builder::new(&mut g);
    let mut items = vec![y, ydot];
    let mut tys = vec![main.ret_ty.clone(), main.ret_ty.tangent()];
    if let Some(a) = aux {
        items.push(a);
        tys.push(aux_ty(f));
    }
    let ty = Ty::Tuple(tys);
    let r = b.let_ty(Expr::Tuple(items), "out", ty.clone());
    let s = b.take();
    g.body.0.extend(s);
    g.ret = r;
    g.ret_ty = ty;
    g.name = format!("{}_jvp", f.name);
    simplify(&mut g);
    Ok(g)
}

/// `vjp`: the cotangent form `(primals.., ct) -> (y, (cotangents of the float
/// arguments..))` (`(y, cts, aux)` with `has_aux`), and the pullback form built from it.
pub fn vjp_user(
    f: &Func,
    o: &Options,
    site: &Site,
    rules: &RuleTable,
    pullback_name: String,
    final_pass: bool,
) -> TResult<(Func, PullbackForm)> {
    let (main, aux) = split_aux(f, o.has_aux, site)?;
    let active: Vec<bool> = f.params.iter().map(|p| p.ty.is_differentiable()).collect();
    if !active.iter().any(|a| *a) {
        return err(
            site.name,
            format!(
                "`{}` has no float arguments to differentiate: give it an f64, f32 or array argument",
                f.name
            ),
        );
    }
    let spec = VjpSpec {
        active,
        all_params: false,
        seed: None,
    };
    let rev = if final_pass { vjp_final } else { vjp };
    let VjpOut {
        func: mut g,
        split,
        ct,
        value,
        bars,
    } = rev(&main, &spec, rules).map_err(internal(site.name))?;
    let pb = PullbackForm {
        name: pullback_name,
        vjp: g.clone(),
        split,
        ct,
        bars: bars.clone(),
        value: value.clone(),
        aux: aux.clone(),
    };
    if let Some(a) = aux {
        let Ty::Tuple(ts) = g.ret_ty.clone() else {
            return Err(internal(site.name)(Diag::new("vjp result")));
        };
        let mut b = Builder::new(&mut g);
        let bars_t = b.let_(Expr::Field(g_ret(&b), 1), "grads");
        let ty = Ty::Tuple(vec![ts[0].clone(), ts[1].clone(), aux_ty(f)]);
        let r = b.let_ty(Expr::Tuple(vec![value, bars_t, a]), "out", ty.clone());
        let s = b.take();
        g.body.0.extend(s);
        g.ret = r;
        g.ret_ty = ty;
    }
    g.name = format!("{}_vjp_ct", f.name);
    simplify(&mut g);
    Ok((g, pb))
}

fn g_ret(b: &Builder) -> Operand {
    b.f.ret.clone()
}

/// The companion of `f` for a list of transforms, under the companion protocol (every
/// parameter differentiated; `()` tangents and cotangents for non-float ones). Errors
/// carry the span of the offending source where one is known.
pub fn companion(f: &Func, modes: &[Mode], rules: &RuleTable) -> Result<Func, Diag> {
    let mut g = f.clone();
    for (k, m) in modes.iter().enumerate() {
        let all = vec![true; g.params.len()];
        // A companion's body is never differentiated: its last reverse pass splits calls.
        let last = k + 1 == modes.len();
        g = match m {
            Mode::Jvp => jvp(
                &g,
                &JvpSpec {
                    active: all,
                    all_params: true,
                    seeds: vec![],
                    basis: vec![],
                },
                rules,
            )?,
            Mode::Vjp => {
                let spec = VjpSpec {
                    active: all,
                    all_params: true,
                    seed: None,
                };
                if last {
                    vjp_final(&g, &spec, rules)?.func
                } else {
                    vjp(&g, &spec, rules)?.func
                }
            }
            Mode::VjpFwd => split_companions(&g, rules)?.0,
            Mode::VjpBwd => split_companions(&g, rules)?.1,
            Mode::VjpBwdAcc => {
                let mut bwd = split_companions(&g, rules)?.1;
                simplify(&mut bwd);
                acc_companion(&bwd, g.params.len())?
            }
        };
        simplify(&mut g);
    }
    Ok(g)
}

/// The companions `vjp_fwd`, `vjp_bwd` and `vjp_bwd_acc` of `f`, simplified (see
/// [`split_companions`] and [`acc_companion`]).
pub fn split_pair(f: &Func, rules: &RuleTable) -> Result<(Func, Func, Func), Diag> {
    let (mut fwd, mut bwd) = split_companions(f, rules)?;
    simplify(&mut fwd);
    simplify(&mut bwd);
    let mut acc = acc_companion(&bwd, f.params.len())?;
    simplify(&mut acc);
    Ok((fwd, bwd, acc))
}
