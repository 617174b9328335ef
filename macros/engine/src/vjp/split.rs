//! Split calls: `g::vjp_fwd` / `g::vjp_bwd` in final reverse passes, and the split
//! companions themselves.

use super::*;

/// Rewrites each active call `let y = g(x)` (of a function, not of a companion) into
/// `let r = g::vjp_fwd(x); let y = r.0; let res = <residuals of r>;`, for [`vjp_final`].
/// Returns the residuals' variable of each `r`.
pub(super) fn split_calls(f: &Func, act: &HashSet<VarId>) -> (Func, HashMap<VarId, VarId>) {
    fn go(g: &mut Func, act: &HashSet<VarId>, res_of: &mut HashMap<VarId, VarId>, b: &Block) -> Block {
        let mut out = Vec::new();
        for s in &b.0 {
            match s {
                Stmt::Let(v, Expr::Call(c)) if c.modes.is_empty() && act.contains(v) => {
                    let ty = Ty::Tuple(vec![g.vars[*v].ty.clone(), Ty::Unknown]);
                    let r = g.new_var(format!("{}_fwd", c.name), ty, false);
                    let res = g.new_var(format!("{}_res", c.name), Ty::Unknown, false);
                    let call = Call {
                        modes: vec![Mode::VjpFwd],
                        ..c.clone()
                    };
                    out.push(Stmt::Let(r, Expr::Call(call)));
                    out.push(Stmt::Let(*v, Expr::Field(Operand::Var(r), 0)));
                    out.push(Stmt::Let(res, Expr::Residuals(Operand::Var(r))));
                    res_of.insert(r, res);
                }
                Stmt::For(l) => out.push(Stmt::For(Loop {
                    body: go(g, act, res_of, &l.body),
                    ..l.clone()
                })),
                Stmt::If(c, t, e) => {
                    let t2 = go(g, act, res_of, t);
                    let e2 = go(g, act, res_of, e);
                    out.push(Stmt::If(c.clone(), t2, e2));
                }
                s => out.push(s.clone()),
            }
        }
        Block(out)
    }
    let mut g = f.clone();
    let mut res_of = HashMap::new();
    g.body = go(&mut g, act, &mut res_of, &f.body);
    (g, res_of)
}

/// The split companions of `f`: `vjp_fwd(params..) -> (y, residuals)` runs the forward sweep
/// and returns what the reverse sweep reads (tapes, intermediate values);
/// `vjp_bwd(params.., residuals, ct) -> (cotangents..)` runs the reverse sweep from them.
///
/// The residuals are passed by value, so their types must be written: where one is a type
/// only rustc knows (a call's result) or a heap tape, the residuals are `()` and `vjp_bwd`
/// runs the whole `vjp` (the forward pass again).
pub fn split_companions(f: &Func, rules: &RuleTable) -> Result<(Func, Func), Diag> {
    let spec = VjpSpec {
        active: vec![true; f.params.len()],
        all_params: true,
        seed: None,
    };
    let out = vjp_final(f, &spec, rules)?;
    let g = out.func;
    let internal = |m: &str| Diag::new(format!("internal: split companions of `{}`: {m}", f.name));
    // The reverse part ends with `let out = (y, grads)`: `vjp_bwd` returns `grads`.
    let (fwd, rev) = g.body.0.split_at(out.split);
    let Some((Stmt::Let(o, Expr::Tuple(pair)), rev)) = rev.split_last() else {
        return Err(internal("no result tuple"));
    };
    let (Some(grads), true) = (pair.get(1).cloned(), Operand::Var(*o) == g.ret) else {
        return Err(internal("unexpected result"));
    };
    let Some(Ty::Tuple(grads_ty)) = (match &g.ret_ty {
        Ty::Tuple(ts) => ts.get(1).cloned(),
        _ => None,
    }) else {
        return Err(internal("result type"));
    };
    let mut reads = Vec::new();
    for s in rev {
        stmt_reads(s, &mut reads);
    }
    reads.extend(grads.var());
    let params: Vec<VarId> = g.params.iter().map(|p| p.var).collect();
    let mut residuals: Vec<VarId> = Vec::new();
    for s in fwd {
        if let Stmt::Let(v, _) | Stmt::Mut(v, _) = s {
            if reads.contains(v) && !params.contains(v) && !residuals.contains(v) {
                residuals.push(*v);
            }
        }
    }
    // A tape whose storage rustc picks (`BySize`) is written as that choice (`Ty::Tape`).
    let writable = residuals
        .iter()
        .all(|v| g.vars[*v].ty.is_exact() && matches!(g.vars[*v].storage, Storage::Stack | Storage::BySize));
    let res_ty_of = |v: &VarId| match g.vars[*v].storage {
        Storage::BySize => Ty::Tape(Box::new(g.vars[*v].ty.clone())),
        _ => g.vars[*v].ty.clone(),
    };
    let mut fwd_f = g.clone();
    let mut bwd_f = g.clone();
    let ct_param = g.params.last().cloned().ok_or_else(|| internal("no cotangent"))?;
    fwd_f.params.pop();
    bwd_f.params.pop();
    let (res_ops, res_tys, fwd_body): (Vec<Operand>, Vec<Ty>, Vec<Stmt>) = if writable {
        (
            residuals.iter().map(|v| Operand::Var(*v)).collect(),
            residuals.iter().map(res_ty_of).collect(),
            fwd.to_vec(),
        )
    } else {
        // The primal alone; `vjp_bwd` recomputes.
        residuals.clear();
        // (`f`'s variables are the first of `g`'s: its body reads the same in `g`.)
        (vec![], vec![], f.body.0.clone())
    };
    // vjp_fwd: the forward part, then `(y, (residuals..))`.
    let res_ty = Ty::Tuple(res_tys.clone());
    let mut b = Builder::new(&mut fwd_f);
    b.out = fwd_body;
    let r = b.let_ty(Expr::Tuple(res_ops), "residuals", res_ty.clone());
    let value = if writable { out.value.clone() } else { f.ret.clone() };
    let y_ty = f.ret_ty.clone();
    let pair_ty = Ty::Tuple(vec![y_ty, res_ty.clone()]);
    let ret = b.let_ty(Expr::Tuple(vec![value, r]), "out", pair_ty.clone());
    fwd_f.body = Block(b.take());
    fwd_f.ret = ret;
    fwd_f.ret_ty = pair_ty;
    fwd_f.name = format!("{}_vjp_fwd", f.name);
    // vjp_bwd: bind the residuals, then the reverse part (all of `vjp` without them).
    let res = bwd_f.new_var("residuals", res_ty.clone(), false);
    let mut body = Vec::new();
    for (k, v) in residuals.iter().enumerate() {
        let e = Expr::Field(Operand::Var(res), k);
        body.push(if bwd_f.vars[*v].mutable {
            Stmt::Mut(*v, Some(e))
        } else {
            Stmt::Let(*v, e)
        });
    }
    if writable {
        body.extend(rev.iter().cloned());
    } else {
        body.extend(fwd.iter().cloned());
        body.extend(rev.iter().cloned());
    }
    bwd_f.params.push(Param {
        var: res,
        ty: res_ty,
        by_ref: false,
        span: SrcSpan(proc_macro2::Span::call_site()),
    });
    bwd_f.params.push(ct_param);
    bwd_f.body = Block(body);
    bwd_f.ret = grads;
    bwd_f.ret_ty = Ty::Tuple(grads_ty);
    bwd_f.name = format!("{}_vjp_bwd", f.name);
    Ok((fwd_f, bwd_f))
}
