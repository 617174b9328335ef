//! Reverse mode: `f(x) -> y` becomes `f_vjp(x, ȳ) -> (y, (x̄,..))`.
//!
//! The output is a forward sweep (the primal, plus tape writes) followed by a reverse
//! sweep (adjoint statements in reverse order, loops run backwards):
//!
//! ```text
//! let mut tape_t = [0.0; N];            // values a loop body's adjoint needs
//! for i in 0..N { let t = ..; tape_t[i] = t; .. }
//! let mut s_bar = 0.0;                  // accumulators for mutable state
//! for i in (0..N).rev() { let t = tape_t[i]; .. x_bar[i] += t * s_bar; }
//! ```
//!
//! Adjoints of immutable scalars used in their own block are summed symbolically (no
//! accumulator, no zero); others are accumulated in `let mut` variables. Calls go
//! through the callee's companions: `g(x)` then `g::vjp(x, ȳ)` in a pass that is
//! differentiated again, `g::vjp_fwd(x)` then `g::vjp_bwd(x, residuals, ȳ)` in a final one.
//!
//! This file holds the entry points, the normalisation and the transform's state;
//! `sweep.rs` the forward and reverse sweeps, `adjoint.rs` how cotangents reach operands,
//! `tape.rs` what is taped or recomputed and where tapes live, `split.rs` split calls and
//! the split companions.

use std::collections::{HashMap, HashSet};

use crate::activity;
use crate::builder::zero_of_ty;
use crate::builder::Builder;
use crate::error::Diag;
pub use crate::ir::rename_block;
use crate::ir::*;
use crate::rules::{Partial, RuleTable};
use crate::structural::Contribution;

mod adjoint;
mod split;
mod sweep;
mod tape;

use adjoint::*;
use split::split_calls;
pub use split::{acc_companion, split_companions};

/// Which parameters get cotangents.
#[derive(Clone, Debug)]
pub struct VjpSpec {
    /// Per parameter: differentiated.
    pub active: Vec<bool>,
    /// Companion protocol: a cotangent for every parameter, `()` for inactive ones.
    pub all_params: bool,
    /// A fixed cotangent (e.g. `1.0` for a gradient) instead of a `ct` parameter.
    pub seed: Option<Operand>,
}

/// The reverse-mode function and where its reverse sweep starts.
pub struct VjpOut {
    /// `(params.., ct) -> (y, (bars..))`
    pub func: Func,
    /// Statements of `func.body` before this index are the forward sweep.
    pub split: usize,
    /// The cotangent variable (a parameter unless a seed was given).
    pub ct: VarId,
    /// The primal result.
    pub value: Operand,
    /// The cotangents, one per parameter the spec asked for.
    pub bars: Vec<Operand>,
}

enum Adj {
    Sym(Vec<Operand>),
    Acc(VarId),
    Fields(Vec<Vec<Operand>>),
}

struct BlockInfo {
    /// The loops around the block, outermost first: index variable, tape extent (`None`
    /// for a run-time trip count: growing tapes) and span.
    loops: Vec<(VarId, Option<CExpr>, SrcSpan)>,
    /// The statement of the function's body the block is in (its position there).
    top: usize,
}

struct Rx<'a> {
    g: &'a mut Func,
    rules: &'a RuleTable,
    act: HashSet<VarId>,
    def_block: HashMap<VarId, usize>,
    block_ids: HashMap<*const Block, usize>,
    blocks: Vec<BlockInfo>,
    nested_use: HashSet<VarId>,
    adj: HashMap<VarId, Adj>,
    tape_decls: Vec<Stmt>,
    tape_writes: HashMap<VarId, Vec<Stmt>>,
    const_generics: Vec<String>,
    /// Loops that start at a negative literal, by variable: their tapes are offset.
    offsets: HashMap<VarId, CExpr>,
    /// Split calls: the result of `g::vjp_fwd(..)` -> the variable holding its residuals.
    residual_of: HashMap<VarId, VarId>,
    /// Mutable variables: the loops around each of their declarations and assignments.
    assigned_in: HashMap<VarId, Vec<Vec<VarId>>>,
    /// Mutable variables: the last statement of the function's body that declares or
    /// writes each (its position there). An array last written before the statement that
    /// reads it is frozen there: the reverse sweep reads it again rather than taping it.
    last_write: HashMap<VarId, usize>,
    /// The statement of the function's body `prewalk` is in.
    cur_top: usize,
}

/// Reverse-mode transform. Errors carry the span of the loop they are about, if any.
pub fn vjp(f0: &Func, spec: &VjpSpec, rules: &RuleTable) -> Result<VjpOut, Diag> {
    vjp_impl(f0, spec, rules, false)
}

/// [`vjp`] for a reverse pass that nothing differentiates again (a generated
/// gradient's body, a `vjp` companion): each active call `y = g(x)` runs `g`'s forward pass
/// once, `(y, r) = g::vjp_fwd(x)`, and the reverse sweep calls `g::vjp_bwd(x, r, ȳ)` with
/// its residuals `r`, where [`vjp`] calls `g(x)` and later `g::vjp(x, ȳ)`, which runs
/// `g`'s forward pass again.
pub fn vjp_final(f0: &Func, spec: &VjpSpec, rules: &RuleTable) -> Result<VjpOut, Diag> {
    vjp_impl(f0, spec, rules, true)
}

fn vjp_impl(f0: &Func, spec: &VjpSpec, rules: &RuleTable, split: bool) -> Result<VjpOut, Diag> {
    let f = normalize(f0, &spec.active);
    let (f, residual_of) = if split {
        split_calls(&f, &activity::analyze(&f, &spec.active))
    } else {
        (f, HashMap::new())
    };
    let act = activity::analyze(&f, &spec.active);
    let mut g = f.clone();
    g.name = format!("{}_vjp", f.name);
    let ct_ty = f.ret_ty.tangent();
    let ct = g.new_var("ct", ct_ty.clone(), false);
    let mut rx = Rx {
        g: &mut g,
        rules,
        act,
        def_block: HashMap::new(),
        block_ids: HashMap::new(),
        blocks: Vec::new(),
        nested_use: HashSet::new(),
        adj: HashMap::new(),
        tape_decls: Vec::new(),
        tape_writes: HashMap::new(),
        const_generics: f.const_generics.clone(),
        offsets: HashMap::new(),
        residual_of,
        assigned_in: HashMap::new(),
        last_write: HashMap::new(),
        cur_top: 0,
    };
    for p in &f.params {
        rx.def_block.insert(p.var, 0);
    }
    rx.prewalk(&f.body, Vec::new());
    let root_params: Vec<VarId> = f.params.iter().map(|p| p.var).collect();
    let seed = spec.seed.clone().unwrap_or(Operand::Var(ct));
    let rev = rx.rblock(&f.body, &root_params, Some((&f.ret, seed)))?;
    // Cotangents of the parameters.
    let mut b = Builder::new(rx.g);
    b.out = rev;
    let mut bars = Vec::new();
    let mut bar_tys = Vec::new();
    for (k, p) in f.params.iter().enumerate() {
        let on = spec.active[k] && p.ty.is_differentiable();
        if on {
            let bar = match take(&mut rx.adj, &mut b, p.var) {
                Some(o) => o,
                None => zero_of_ty(&mut b, &p.ty.tangent(), &Operand::Var(p.var)),
            };
            bars.push(bar);
            bar_tys.push(p.ty.tangent());
        } else if spec.all_params {
            bars.push(Operand::Unit);
            bar_tys.push(Ty::Unit);
        }
    }
    let bars_t = b.let_ty(Expr::Tuple(bars.clone()), "grads", Ty::Tuple(bar_tys.clone()));
    let out = b.let_ty(
        Expr::Tuple(vec![f.ret.clone(), bars_t]),
        "out",
        Ty::Tuple(vec![f.ret_ty.clone(), Ty::Tuple(bar_tys.clone())]),
    );
    let rev = b.take();
    let fwd = rx.forward(&f.body);
    let mut body = std::mem::take(&mut rx.tape_decls);
    body.extend(fwd.0);
    let split = body.len();
    body.extend(rev);
    g.body = Block(body);
    if spec.seed.is_none() {
        g.params.push(Param {
            var: ct,
            ty: ct_ty,
            by_ref: false,
            span: SrcSpan(proc_macro2::Span::call_site()),
        });
    }
    g.ret = out;
    g.ret_ty = Ty::Tuple(vec![f.ret_ty.clone(), Ty::Tuple(bar_tys)]);
    Ok(VjpOut {
        func: g,
        split,
        ct,
        value: f.ret.clone(),
        bars,
    })
}

/// Splits `let mut v = <active op>` into `let t = <op>; let mut v = t;` so every value a
/// rule needs is an immutable binding.
fn normalize(f: &Func, active: &[bool]) -> Func {
    let act = activity::analyze(f, active);
    let mut g = f.clone();
    fn go(g: &mut Func, act: &HashSet<VarId>, b: &Block) -> Block {
        let mut out = Vec::new();
        for s in &b.0 {
            match s {
                Stmt::Mut(v, Some(e)) if !matches!(e, Expr::Use(_)) && activity::expr_active(g, act, e) => {
                    let ty = g.vars[*v].ty.clone();
                    let name = g.vars[*v].name.clone();
                    let t = g.new_var(format!("{name}_init"), ty, false);
                    out.push(Stmt::Let(t, e.clone()));
                    out.push(Stmt::Mut(*v, Some(Expr::Use(Operand::Var(t)))));
                }
                Stmt::For(l) => out.push(Stmt::For(Loop {
                    body: go(g, act, &l.body),
                    ..l.clone()
                })),
                Stmt::If(c, t, e) => {
                    let t2 = go(g, act, t);
                    let e2 = go(g, act, e);
                    out.push(Stmt::If(c.clone(), t2, e2));
                }
                s => out.push(s.clone()),
            }
        }
        Block(out)
    }
    let body = f.body.clone();
    let nb = go(&mut g, &act, &body);
    // The new temporaries get their activity from their expressions when the caller
    // analyses the result.
    g.body = nb;
    g
}
