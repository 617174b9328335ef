//! Activity analysis: which variables carry a derivative with respect to the
//! differentiated parameters (forward dependence through differentiable operations).
//! Inactive values get no tangent and no cotangent: zeros are structural.

use std::collections::HashSet;

use crate::ir::*;

/// The active variables of `f` when the parameters flagged in `active_params` vary.
pub fn analyze(f: &Func, active_params: &[bool]) -> HashSet<VarId> {
    let mut act = HashSet::new();
    for (p, a) in f.params.iter().zip(active_params) {
        if *a && p.ty.is_differentiable() {
            act.insert(p.var);
        }
    }
    loop {
        let before = act.len();
        block(f, &f.body, &mut act);
        if act.len() == before {
            break;
        }
    }
    act
}

fn is_active(act: &HashSet<VarId>, o: &Operand) -> bool {
    o.var().is_some_and(|v| act.contains(&v))
}

/// Whether `e` is active given the active set.
pub fn expr_active(f: &Func, act: &HashSet<VarId>, e: &Expr) -> bool {
    match e {
        Expr::Use(a) | Expr::Deref(a) | Expr::Field(a, _) | Expr::Sum(a) | Expr::Repeat(a, _) => is_active(act, a),
        Expr::Prim(p, ops) => match p {
            p if p.zero_derivative() => false,
            p => ops
                .iter()
                .enumerate()
                .any(|(k, o)| !p.int_operands().contains(&k) && is_active(act, o)),
        },
        Expr::Index(v, _) => act.contains(v),
        Expr::Array(ops) | Expr::Tuple(ops) => ops.iter().any(|o| is_active(act, o)),
        Expr::Call(c) => c.args.iter().any(|a| is_active(act, &a.op)),
        Expr::Cast(a, t) => t.is_float() && is_active(act, a) && f.ty_of(a).is_differentiable(),
        Expr::CastLike(a, _) => is_active(act, a),
        Expr::Broadcast(_, v) => is_active(act, v),
        Expr::Select(_, a, b) => is_active(act, a) || is_active(act, b),
        Expr::Zeros(_)
        | Expr::ZeroLike(_)
        | Expr::Cmp(..)
        | Expr::Bool(..)
        | Expr::Not(_)
        | Expr::StopGrad(_)
        | Expr::IntAsFloat(..) => false,
    }
}

fn block(f: &Func, b: &Block, act: &mut HashSet<VarId>) {
    for s in &b.0 {
        match s {
            Stmt::Let(v, e) => {
                if f.vars[*v].ty.is_differentiable() && expr_active(f, act, e) {
                    act.insert(*v);
                }
            }
            Stmt::Mut(v, Some(e)) => {
                if f.vars[*v].ty.is_differentiable() && expr_active(f, act, e) {
                    act.insert(*v);
                }
            }
            Stmt::Mut(_, None) => {}
            Stmt::Assign(p, _, v) => {
                if is_active(act, v) && f.vars[p.var].ty.is_differentiable() {
                    act.insert(p.var);
                }
            }
            Stmt::For(l) => block(f, &l.body, act),
            Stmt::If(_, t, e) => {
                block(f, t, act);
                block(f, e, act);
            }
        }
    }
}
