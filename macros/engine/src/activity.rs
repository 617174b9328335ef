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

/// Whether `e` is active given the active set: one of the operands it differentiates
/// through is (the rule table says which: `structural::differentiable_operands`).
pub fn expr_active(f: &Func, act: &HashSet<VarId>, e: &Expr) -> bool {
    crate::structural::differentiable_operands(f, e)
        .iter()
        .any(|o| is_active(act, o))
}

fn block(f: &Func, b: &Block, act: &mut HashSet<VarId>) {
    for s in &b.0 {
        match s {
            Stmt::Let(v, e) => {
                if f.vars[*v].ty.is_differentiable() && expr_active(f, act, e) {
                    act.insert(*v);
                }
                // A call adding into `&mut` accumulators writes them.
                if expr_active(f, act, e) {
                    act.extend(call_writes(s).into_iter().filter(|w| f.vars[*w].ty.is_differentiable()));
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
