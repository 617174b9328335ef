//! A weighted operation count of IR, to check that generated code does not swell.
//!
//! Weights follow Griewank's cost model in spirit: additions, multiplications and memory
//! moves cost 1, divisions and square roots 4, transcendental functions 8. Copies and
//! structural operations (tuples, fields, zeros) are free. A loop counts its body once,
//! not once per trip, so the count measures code size, not run time; the cheap-gradient
//! principle of reverse mode says a gradient costs at most a small multiple (about 4) of
//! the function.

use crate::ir::*;

/// The weight of a primitive (from its declaration in the rule table).
pub fn prim_weight(p: Prim) -> u64 {
    p.cost()
}

fn expr_weight(e: &Expr) -> u64 {
    crate::structural::cost(e)
}

/// The weighted operation count of a block (loops counted once).
pub fn block_weight(b: &Block) -> u64 {
    b.0.iter()
        .map(|s| match s {
            Stmt::Let(_, e) => expr_weight(e),
            Stmt::Mut(_, Some(e)) => expr_weight(e),
            Stmt::Mut(_, None) => 0,
            Stmt::Assign(_, op, _) => match op {
                AssignOp::Set => 1,
                AssignOp::Add | AssignOp::Sub => 2,
            },
            Stmt::For(l) => 1 + block_weight(&l.body),
            Stmt::If(_, t, e) => 1 + block_weight(t) + block_weight(e),
        })
        .sum()
}

/// The weighted operation count of one run of a block: a loop counts its body once per
/// trip (literal bounds; a bound only rustc knows, or a run-time one, counts as 16 trips).
pub fn run_weight(b: &Block) -> u64 {
    b.0.iter()
        .map(|s| match s {
            Stmt::For(l) => {
                let lit = |o: &Operand| bound_cexpr(o).and_then(|c| c.lit());
                let trips = match (lit(&l.lo), lit(&l.hi)) {
                    (Some(lo), Some(hi)) => u64::try_from((hi - lo).max(0)).unwrap_or(0),
                    _ => 16,
                };
                1 + trips.saturating_mul(run_weight(&l.body))
            }
            Stmt::If(_, t, e) => 1 + run_weight(t).max(run_weight(e)),
            other => block_weight(&Block(vec![other.clone()])),
        })
        .fold(0u64, u64::saturating_add)
}

/// The weighted operation count of a function.
pub fn weighted_ops(f: &Func) -> u64 {
    block_weight(&f.body)
}

/// The number of statements (a proxy for generated lines).
pub fn statements(f: &Func) -> usize {
    let mut n = 0;
    walk_stmts(&f.body, &mut |_| n += 1);
    n
}
