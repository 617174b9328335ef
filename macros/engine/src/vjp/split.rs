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

/// The in-place form of a `vjp_bwd` companion `bwd` of a function of `n` parameters:
/// `vjp_bwd_acc(params.., residuals, ct, x̄₀: &mut T₀', ..)` adds the cotangent of each
/// parameter into the caller's accumulator `x̄ₖ` (of the parameter's tangent type) and
/// returns nothing.
///
/// Where `bwd` sums a cotangent in a `let mut` accumulator of its own that starts at zero,
/// is only added into and is returned as it is (`let mut w_bar = [0.0; H]; .. w_bar[i] +=
/// t; .. (.., w_bar, ..)`), that accumulator becomes the parameter: the same additions, in
/// the same order, into the caller's buffer (from a zero accumulator, the same bits as
/// `vjp_bwd`). Any other cotangent is added once at the end (`*x̄ₖ += cotangent`).
pub fn acc_companion(bwd: &Func, n: usize) -> Result<Func, Diag> {
    let internal = |m: &str| Diag::new(format!("internal: in-place companion of `{}`: {m}", bwd.name));
    let mut g = bwd.clone();
    g.name = format!("{}_acc", bwd.name);
    let top = &bwd.body.0;
    let grads: Vec<Operand> = match bwd.ret.var().and_then(|r| {
        top.iter().find_map(|s| match s {
            Stmt::Let(v, Expr::Tuple(ops)) if *v == r => Some(ops.clone()),
            _ => None,
        })
    }) {
        Some(ops) if ops.len() == n => ops,
        _ if n == 0 => vec![],
        _ => return Err(internal("no tuple of cotangents")),
    };
    if g.params.len() < n {
        return Err(internal("fewer parameters than cotangents"));
    }
    let mut uses: HashMap<VarId, usize> = HashMap::new();
    walk_stmts(&bwd.body, &mut |s| {
        let mut r = Vec::new();
        match s {
            Stmt::For(_) => {}
            Stmt::If(c, _, _) => r.extend(c.var()),
            s => stmt_reads(s, &mut r),
        }
        for v in r {
            *uses.entry(v).or_default() += 1;
        }
    });
    let mut renamed: Vec<VarId> = Vec::new();
    let mut dropped_decls: Vec<VarId> = Vec::new();
    let mut tail: Vec<Stmt> = Vec::new();
    for (k, op) in grads.iter().enumerate() {
        let ty = g.vars[g.params[k].var].ty.tangent();
        let name = format!("{}_bar", g.vars[g.params[k].var].name);
        // `op` is the accumulator, or `let op = acc;` at the top level.
        let acc = op.var().and_then(|v| {
            if g.vars[v].mutable {
                return Some((v, None));
            }
            top.iter().find_map(|s| match s {
                Stmt::Let(w, Expr::Use(Operand::Var(a))) if *w == v && g.vars[*a].mutable => Some((*a, Some(v))),
                _ => None,
            })
        });
        let acc = acc.filter(|(a, snap)| {
            let zero_init = top.iter().any(|s| match s {
                Stmt::Mut(w, Some(Expr::Zeros(_) | Expr::ZeroLike(_))) => w == a,
                Stmt::Mut(w, Some(Expr::Use(Operand::Float(z)))) => {
                    w == a && z.value == 0.0 && z.value.is_sign_positive()
                }
                _ => false,
            });
            // Read only by additions into it and once by the result (or its snapshot).
            let added_only = additions(&bwd.body, *a).checked_add(1) == uses.get(a).copied()
                && snap.is_none_or(|s| uses.get(&s) == Some(&1));
            zero_init
                && added_only
                && !renamed.contains(a)
                && g.vars[*a].storage == Storage::Stack
                && g.vars[*a].ty == ty
        });
        let slot = match acc {
            Some((a, _)) => {
                renamed.push(a);
                dropped_decls.push(a);
                a
            }
            None => {
                let s = g.new_var(name, ty, true);
                if !matches!(op, Operand::Unit) {
                    tail.push(Stmt::Assign(Place { var: s, idx: vec![] }, AssignOp::Add, op.clone()));
                }
                s
            }
        };
        g.vars[slot].storage = Storage::MutParam;
        g.params.push(Param {
            var: slot,
            ty: g.vars[slot].ty.clone(),
            by_ref: false,
            span: SrcSpan(proc_macro2::Span::call_site()),
        });
    }
    let mut body: Vec<Stmt> = g
        .body
        .0
        .iter()
        .filter(|s| !matches!(s, Stmt::Mut(v, _) if dropped_decls.contains(v)))
        .cloned()
        .collect();
    // The tuple of cotangents is the last statement: the additions go before it.
    let at = body.len().saturating_sub(usize::from(!grads.is_empty()));
    body.splice(at..at, tail);
    g.body = Block(body);
    g.ret = Operand::Unit;
    g.ret_ty = Ty::Unit;
    Ok(g)
}

/// How many statements read `a` only to add into it (`a += ..`, `a[i] += ..`, a call's
/// `&mut a`); `usize::MAX` if one sets it or subtracts from it.
fn additions(b: &Block, a: VarId) -> usize {
    let mut n = 0;
    let mut other = false;
    walk_stmts(b, &mut |s| match s {
        Stmt::Assign(p, AssignOp::Add, _) if p.var == a => n += 1,
        Stmt::Assign(p, _, _) if p.var == a => other = true,
        s => n += call_writes(s).iter().filter(|w| **w == a).count(),
    });
    if other {
        usize::MAX
    } else {
        n
    }
}
