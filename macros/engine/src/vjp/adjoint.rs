//! Adjoints: how a cotangent reaches each operand (the rule table's partials and
//! transposes), and how contributions are kept (symbolic sums, accumulators, per-field sums).

use super::*;

pub(super) fn take(adj: &mut HashMap<VarId, Adj>, b: &mut Builder, v: VarId) -> Option<Operand> {
    match adj.get_mut(&v)? {
        Adj::Sym(list) => {
            let l = std::mem::take(list);
            b.sum_terms(l)
        }
        Adj::Acc(a) => {
            // A snapshot: operands are immutable bindings (A-normal form), so a later
            // transform of this code can tape or recompute them like any other value.
            let a = *a;
            let ty = b.f.vars[a].ty.clone();
            let name = b.f.vars[a].name.clone();
            Some(b.let_ty(Expr::Use(Operand::Var(a)), &name, ty))
        }
        Adj::Fields(fs) => {
            if fs.iter().all(Vec::is_empty) {
                return None;
            }
            let fs = std::mem::take(fs);
            let tys = match b.f.vars[v].ty.clone() {
                Ty::Tuple(ts) => ts,
                _ => vec![Ty::Unknown; fs.len()],
            };
            let mut elems = Vec::new();
            for (k, list) in fs.into_iter().enumerate() {
                // A field without a float (an integer's `()`): its cotangents are `()`, and
                // so is their sum (`() + ()` is no Rust): the first one stands for it (a
                // read of the field, which keeps the tuple's arity visible to a reverse
                // pass over this one).
                if tys.get(k).is_some_and(|t| t.tangent() == Ty::Unit) {
                    elems.push(list.first().cloned().unwrap_or(Operand::Unit));
                    continue;
                }
                let e = match b.sum_terms(list) {
                    Some(o) => o,
                    None => {
                        let ty = tys.get(k).cloned().unwrap_or(Ty::Unknown).tangent();
                        if ty.is_known() {
                            zero_of_ty(b, &ty, &Operand::Unit)
                        } else {
                            let fk = b.let_(Expr::Field(Operand::Var(v), k), "t");
                            b.let_(Expr::ZeroLike(fk), "zero")
                        }
                    }
                };
                elems.push(e);
            }
            Some(b.let_(Expr::Tuple(elems), "t"))
        }
    }
}

/// The reverse of `let y = e` given `y`'s cotangent `tb`.
pub(super) fn rexpr(
    act: &HashSet<VarId>,
    adj: &mut HashMap<VarId, Adj>,
    rules: &RuleTable,
    b: &mut Builder,
    e: &Expr,
    y: &Operand,
    tb: Operand,
) -> Result<(), Diag> {
    {
        let is_act = |o: &Operand| o.var().is_some_and(|v| act.contains(&v));
        match e {
            Expr::Prim(p, ops) => {
                let Some(rule) = rules.get(*p) else {
                    return Err(Diag::new(format!("no derivative rule for `{p:?}`")));
                };
                if rule.zero_derivative {
                    return Ok(());
                }
                let partials = (rule.partials)(b, ops, y);
                for (k, part) in partials.into_iter().enumerate() {
                    let (Some(part), Some(o)) = (part, ops.get(k)) else {
                        continue;
                    };
                    if !is_act(o) {
                        continue;
                    }
                    let c = match part {
                        Partial::Mul(d) => b.mul(tb.clone(), d),
                        Partial::Div(d) => b.div(tb.clone(), d),
                        Partial::Scaled(k, d) => {
                            let s = b.mul(tb.clone(), k);
                            b.mul(s, d)
                        }
                    };
                    contribute(act, adj, b, o, c);
                }
            }
            Expr::Call(c) => {
                let mut args = c.args.clone();
                args.push(Arg {
                    op: tb,
                    by_ref: false,
                    by_mut: false,
                });
                let mut modes = c.modes.clone();
                modes.push(Mode::Vjp);
                let n = c.args.len();
                let call = Call {
                    modes,
                    args,
                    ..c.clone()
                };
                let r = b.let_ty(
                    Expr::Call(call),
                    &format!("{}_vjp", c.name),
                    Ty::Tuple(vec![Ty::Unknown, Ty::Tuple(vec![Ty::Unknown; n])]),
                );
                let bars = b.let_ty(Expr::Field(r, 1), "bars", Ty::Tuple(vec![Ty::Unknown; n]));
                for (k, a) in c.args.iter().enumerate() {
                    if is_act(&a.op) {
                        // A slice's cotangent is a `Vec`: typed, so its adjoint is too; a
                        // tuple's is typed by its shape (its arity, its `()` and `Vec`
                        // fields), so a reverse pass over this one rebuilds all of it, not
                        // only the fields this pass reads.
                        fn shape(t: Ty) -> Ty {
                            match t {
                                t @ (Ty::Slice(_) | Ty::Unit) => t,
                                Ty::Tuple(ts) => Ty::Tuple(ts.into_iter().map(shape).collect()),
                                _ => Ty::Unknown,
                            }
                        }
                        let ty = match shape(b.f.ty_of(&a.op).tangent()) {
                            Ty::Unit => Ty::Unknown,
                            t => t,
                        };
                        let bk = b.let_ty(Expr::Field(bars.clone(), k), "t", ty);
                        contribute(act, adj, b, &a.op, bk);
                    }
                }
            }
            e => {
                for c in crate::structural::transpose(b, e, tb, &is_act)? {
                    match c {
                        Contribution::To(o, c) => contribute(act, adj, b, &o, c),
                        Contribution::Element(a, idx, c) => contribute_elem(act, adj, b, a, &idx, c)?,
                        Contribution::Field(a, k, c) => contribute_field(adj, b, &a, k, c)?,
                    }
                }
            }
        }
        Ok(())
    }
}

pub(super) fn contribute(
    act: &HashSet<VarId>,
    adj: &mut HashMap<VarId, Adj>,
    b: &mut Builder,
    o: &Operand,
    val: Operand,
) {
    let Some(v) = o.var() else { return };
    if !act.contains(&v) {
        return;
    }
    match adj.get_mut(&v) {
        Some(Adj::Sym(list)) => list.push(val),
        Some(Adj::Acc(a)) => {
            let a = *a;
            b.push(Stmt::Assign(Place { var: a, idx: vec![] }, AssignOp::Add, val));
        }
        Some(Adj::Fields(fs)) => {
            let n = fs.len();
            let mut parts = Vec::new();
            for k in 0..n {
                parts.push(b.let_(Expr::Field(val.clone(), k), "t"));
            }
            if let Some(Adj::Fields(fs)) = adj.get_mut(&v) {
                for (k, p) in parts.into_iter().enumerate() {
                    fs[k].push(p);
                }
            }
        }
        None => {}
    }
}

pub(super) fn contribute_elem(
    act: &HashSet<VarId>,
    adj: &mut HashMap<VarId, Adj>,
    b: &mut Builder,
    a: VarId,
    idx: &[Operand],
    val: Operand,
) -> Result<(), Diag> {
    if !act.contains(&a) {
        return Ok(());
    }
    match adj.get(&a) {
        Some(Adj::Acc(acc)) => {
            b.push(Stmt::Assign(
                Place {
                    var: *acc,
                    idx: idx.to_vec(),
                },
                AssignOp::Add,
                val,
            ));
            Ok(())
        }
        Some(_) => Err(Diag::new(format!(
            "internal: indexed value `{}` has no accumulator",
            b.f.vars[a].name
        ))),
        None => Ok(()),
    }
}

/// Field `k` of the tuple `a` gets the cotangent `tb`: a per-field sum, or `(0, .., tb, .., 0)`
/// added to the accumulator of a tuple used inside a nested block.
pub(super) fn contribute_field(
    adj: &mut HashMap<VarId, Adj>,
    b: &mut Builder,
    a: &Operand,
    k: usize,
    tb: Operand,
) -> Result<(), Diag> {
    match a.var().and_then(|v| adj.get_mut(&v)) {
        Some(Adj::Fields(fs)) if k < fs.len() => fs[k].push(tb),
        Some(Adj::Acc(acc)) => {
            // A tuple used inside a nested block: accumulate `(0, .., tb, .., 0)`.
            let acc = *acc;
            let Ty::Tuple(ts) = b.f.ty_of(a) else {
                return Err(Diag::new(format!(
                    "internal: field of `{}`, which is not a tuple ({:?})",
                    a.var().map(|v| b.f.vars[v].name.clone()).unwrap_or_default(),
                    b.f.ty_of(a)
                )));
            };
            let mut elems = Vec::new();
            for (j, t) in ts.iter().enumerate() {
                if j == k {
                    elems.push(tb.clone());
                } else if t.tangent().is_known() {
                    elems.push(zero_of_ty(b, &t.tangent(), &Operand::Unit));
                } else {
                    let fj = b.let_(Expr::Field(a.clone(), j), "t");
                    elems.push(b.let_(Expr::ZeroLike(fj), "zero"));
                }
            }
            let c = b.let_(Expr::Tuple(elems), "t");
            b.push(Stmt::Assign(Place { var: acc, idx: vec![] }, AssignOp::Add, c));
        }
        Some(_) => return Err(Diag::new("internal: field of a value without field adjoints")),
        None => {}
    }
    Ok(())
}
