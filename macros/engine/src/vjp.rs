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
//! through the callee's VJP companion (which recomputes the callee's forward pass).

use std::collections::{HashMap, HashSet};

use crate::activity;
use crate::builder::Builder;
pub use crate::ir::rename_block;
use crate::ir::*;
use crate::jvp::zero_of_ty;
use crate::rules::{Partial, RuleTable};
use crate::structural::Contribution;

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
    loops: Vec<(VarId, CExpr, SrcSpan)>,
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
    /// The source of the last error, when it is about a loop.
    err_span: Option<proc_macro2::Span>,
    /// Split calls: the result of `g::vjp_fwd(..)` -> the variable holding its residuals.
    residual_of: HashMap<VarId, VarId>,
}

/// Reverse-mode transform.
pub fn vjp(f0: &Func, spec: &VjpSpec, rules: &RuleTable) -> Result<VjpOut, String> {
    vjp_diag(f0, spec, rules).map_err(|d| d.msg)
}

/// [`vjp`], with the span of the offending source in errors where one is known.
pub fn vjp_diag(f0: &Func, spec: &VjpSpec, rules: &RuleTable) -> Result<VjpOut, Diag> {
    vjp_impl(f0, spec, rules, false)
}

/// [`vjp_diag`] for a reverse pass that nothing differentiates again (a generated
/// gradient's body, a `vjp` companion): each active call `y = g(x)` runs `g`'s forward pass
/// once, `(y, r) = g::vjp_fwd(x)`, and the reverse sweep calls `g::vjp_bwd(x, r, ȳ)` with
/// its residuals `r`, where [`vjp_diag`] calls `g(x)` and later `g::vjp(x, ȳ)`, which runs
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
        err_span: None,
        residual_of,
    };
    for p in &f.params {
        rx.def_block.insert(p.var, 0);
    }
    rx.prewalk(&f.body, Vec::new());
    let root_params: Vec<VarId> = f.params.iter().map(|p| p.var).collect();
    let seed = spec.seed.clone().unwrap_or(Operand::Var(ct));
    let rev = match rx.rblock(&f.body, &root_params, Some((&f.ret, seed))) {
        Ok(rev) => rev,
        Err(msg) => return Err(Diag { msg, span: rx.err_span }),
    };
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

fn take(adj: &mut HashMap<VarId, Adj>, b: &mut Builder, v: VarId) -> Option<Operand> {
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

fn reads_direct(s: &Stmt) -> Vec<VarId> {
    let mut out = Vec::new();
    match s {
        Stmt::For(_) => {}
        Stmt::If(c, _, _) => out.extend(c.var()),
        s => stmt_reads(s, &mut out),
    }
    out
}

impl Rx<'_> {
    fn prewalk(&mut self, b: &Block, loops: Vec<(VarId, CExpr, SrcSpan)>) {
        let id = self.blocks.len();
        self.blocks.push(BlockInfo { loops: loops.clone() });
        self.block_ids.insert(b as *const Block, id);
        for s in &b.0 {
            for r in reads_direct(s) {
                if self.def_block.get(&r).is_some_and(|d| *d != id) {
                    self.nested_use.insert(r);
                }
            }
            match s {
                Stmt::Let(v, _) | Stmt::Mut(v, _) => {
                    self.def_block.insert(*v, id);
                }
                Stmt::Assign(..) => {}
                Stmt::For(l) => {
                    let mut inner = loops.clone();
                    // A loop from a negative literal (`for k in -2..3`) tapes at `k - lo`,
                    // `hi - lo` slots.
                    let negative = match &l.lo {
                        CExpr::Lit(v) => *v < 0,
                        CExpr::Bin('-', a, _) => a.lit() == Some(0),
                        _ => false,
                    };
                    let extent = match (l.lo.lit(), l.hi.lit()) {
                        _ if !negative => l.hi.clone(),
                        (Some(lo), Some(hi)) => CExpr::Lit(hi - lo),
                        _ => CExpr::Bin('-', Box::new(l.hi.clone()), Box::new(l.lo.clone())),
                    };
                    if negative {
                        self.offsets.insert(l.var, l.lo.clone());
                    }
                    inner.push((l.var, extent, l.span));
                    let child = self.blocks.len();
                    self.def_block.insert(l.var, child);
                    self.prewalk(&l.body, inner);
                }
                Stmt::If(_, t, e) => {
                    self.prewalk(t, loops.clone());
                    self.prewalk(e, loops.clone());
                }
            }
        }
    }

    fn bid(&self, b: &Block) -> usize {
        self.block_ids.get(&(b as *const Block)).copied().unwrap_or(0)
    }

    /// The reverse of a block. `defs`: variables defined at its top (parameters for the
    /// root); `seed`: the result and its cotangent (root only).
    fn rblock(&mut self, blk: &Block, defs: &[VarId], seed: Option<(&Operand, Operand)>) -> Result<Vec<Stmt>, String> {
        let bid = self.bid(blk);
        let mut header = Builder::new(self.g);
        let mut defined: Vec<VarId> = defs.to_vec();
        for s in &blk.0 {
            if let Stmt::Let(v, _) | Stmt::Mut(v, _) = s {
                defined.push(*v);
            }
        }
        for v in defined {
            if !self.act.contains(&v) {
                continue;
            }
            let info = header.f.vars[v].clone();
            let adj = match &info.ty {
                Ty::Tuple(ts) if !info.mutable && !self.nested_use.contains(&v) => {
                    Adj::Fields(vec![Vec::new(); ts.len()])
                }
                Ty::Float(_) if !info.mutable && !self.nested_use.contains(&v) => Adj::Sym(Vec::new()),
                ty => {
                    let tty = ty.tangent();
                    let init = match &tty {
                        Ty::Float(_) => Expr::Use(Operand::float(0.0)),
                        // A tape's adjoint is a tape too, stored alike.
                        t if info.storage != Storage::Stack => Expr::Zeros(t.clone()),
                        t if t.is_known() => Expr::Zeros(t.clone()),
                        _ if bid != 0 && info.mutable => {
                            // A mutable variable of a type only rustc knows, declared in a
                            // loop or branch: its current value is not visible here, but its
                            // initialiser has its shape.
                            let init = blk.0.iter().find_map(|s| match s {
                                Stmt::Mut(w, Some(e)) if *w == v => Some(e.clone()),
                                _ => None,
                            });
                            match init {
                                Some(Expr::Use(o)) | Some(Expr::ZeroLike(o)) => Expr::ZeroLike(o),
                                Some(Expr::Zeros(t)) => Expr::Zeros(t.tangent()),
                                // Declared without a value (`if` values): a zero whose type
                                // rustc infers from the accumulations into it.
                                _ => Expr::Zeros(Ty::Unknown),
                            }
                        }
                        _ => Expr::ZeroLike(Operand::Var(v)),
                    };
                    let a = header.let_mut(Some(init), &format!("{}_bar", info.name), tty);
                    header.f.vars[a].storage = info.storage;
                    Adj::Acc(a)
                }
            };
            self.adj.insert(v, adj);
        }
        let mut head = header.take();
        let mut b = Builder::new(self.g);
        if let Some((ret, ct)) = seed {
            contribute(&self.act, &mut self.adj, &mut b, ret, ct);
        }
        let mut out = b.take();
        for s in blk.0.iter().rev() {
            self.rstmt(s, &mut out)?;
        }
        head.append(&mut out);
        Ok(head)
    }

    fn rstmt(&mut self, s: &Stmt, out: &mut Vec<Stmt>) -> Result<(), String> {
        match s {
            Stmt::Let(r, Expr::Call(c)) if c.modes == [Mode::VjpFwd] => {
                // `(y, res) = g::vjp_fwd(x)`: `x̄ += g::vjp_bwd(x, res, ȳ)`, ȳ the adjoint of `y`.
                let mut b = Builder::new(self.g);
                let ybar = match self.adj.get_mut(r) {
                    Some(Adj::Fields(fs)) if !fs.is_empty() => {
                        let l = std::mem::take(&mut fs[0]);
                        b.sum_terms(l)
                    }
                    Some(Adj::Acc(a)) => {
                        let a = *a;
                        let ty = b.f.vars[a].ty.clone();
                        let snap = b.let_ty(Expr::Use(Operand::Var(a)), "c", ty);
                        Some(b.let_(Expr::Field(snap, 0), "t"))
                    }
                    _ => None,
                };
                let (Some(ybar), Some(res)) = (ybar, self.residual_of.get(r).copied()) else {
                    out.extend(b.take());
                    return Ok(());
                };
                let n = c.args.len();
                let mut args = c.args.clone();
                args.push(Arg {
                    op: Operand::Var(res),
                    by_ref: false,
                });
                args.push(Arg {
                    op: ybar,
                    by_ref: false,
                });
                let call = Call {
                    modes: vec![Mode::VjpBwd],
                    args,
                    ..c.clone()
                };
                let bars = b.let_ty(
                    Expr::Call(call),
                    &format!("{}_bars", c.name),
                    Ty::Tuple(vec![Ty::Unknown; n]),
                );
                for (k, a) in c.args.iter().enumerate() {
                    if a.op.var().is_some_and(|w| self.act.contains(&w)) {
                        let bk = b.let_ty(Expr::Field(bars.clone(), k), "t", Ty::Unknown);
                        contribute(&self.act, &mut self.adj, &mut b, &a.op, bk);
                    }
                }
                out.extend(b.take());
            }
            Stmt::Let(v, e) => {
                if !self.act.contains(v) {
                    return Ok(());
                }
                let mut b = Builder::new(self.g);
                let Some(tb) = take(&mut self.adj, &mut b, *v) else {
                    out.extend(b.take());
                    return Ok(());
                };
                rexpr(&self.act, &mut self.adj, self.rules, &mut b, e, &Operand::Var(*v), tb)?;
                out.extend(b.take());
            }
            Stmt::Mut(v, init) => {
                if !self.act.contains(v) {
                    return Ok(());
                }
                if let Some(Expr::Use(o)) = init {
                    let Some(Adj::Acc(a)) = self.adj.get(v) else {
                        return Ok(());
                    };
                    let a = *a;
                    let mut b = Builder::new(self.g);
                    let ty = b.f.vars[a].ty.clone();
                    let snap = b.let_ty(Expr::Use(Operand::Var(a)), "c", ty);
                    contribute(&self.act, &mut self.adj, &mut b, o, snap);
                    out.extend(b.take());
                }
            }
            Stmt::Assign(p, op, value) => {
                let Some(Adj::Acc(a)) = self.adj.get(&p.var) else {
                    return Ok(());
                };
                let a = *a;
                let mut b = Builder::new(self.g);
                let val_active = value.var().is_some_and(|w| self.act.contains(&w));
                if *op == AssignOp::Set || val_active {
                    let cur = if p.idx.is_empty() {
                        let ty = b.f.vars[a].ty.clone();
                        b.let_ty(Expr::Use(Operand::Var(a)), "c", ty)
                    } else {
                        b.let_(Expr::Index(a, p.idx.clone()), "c")
                    };
                    if *op == AssignOp::Set {
                        let mut ty = b.f.vars[p.var].ty.clone();
                        for _ in &p.idx {
                            ty = ty.elem();
                        }
                        let z = zero_of_ty(&mut b, &ty.tangent(), value);
                        b.push(Stmt::Assign(
                            Place {
                                var: a,
                                idx: p.idx.clone(),
                            },
                            AssignOp::Set,
                            z,
                        ));
                    }
                    if val_active {
                        let c = if *op == AssignOp::Sub { b.neg(cur) } else { cur };
                        contribute(&self.act, &mut self.adj, &mut b, value, c);
                    }
                }
                out.extend(b.take());
            }
            Stmt::For(l) => {
                let body_rev = self.rblock(&l.body, &[], None)?;
                let new_i = self
                    .g
                    .new_var(self.g.vars[l.var].name.clone(), self.g.vars[l.var].ty.clone(), false);
                let body_rev = self.close_block(&l.body, body_rev, Some((l.var, new_i)))?;
                out.push(Stmt::For(Loop {
                    var: new_i,
                    lo: l.lo.clone(),
                    hi: l.hi.clone(),
                    rev: !l.rev,
                    body: Block(body_rev),
                    span: l.span,
                }));
            }
            Stmt::If(c, t, e) => {
                let rt = self.rblock(t, &[], None)?;
                let rt = self.close_block(t, rt, None)?;
                let re = self.rblock(e, &[], None)?;
                let re = self.close_block(e, re, None)?;
                out.push(Stmt::If(c.clone(), Block(rt), Block(re)));
            }
        }
        Ok(())
    }

    /// Tapes the values of a nested block that its reverse reads, and renames them (and the
    /// loop variable) to fresh variables bound at the top of the reverse block.
    fn close_block(
        &mut self,
        blk: &Block,
        rev: Vec<Stmt>,
        loop_var: Option<(VarId, VarId)>,
    ) -> Result<Vec<Stmt>, String> {
        let bid = self.bid(blk);
        let mut reads = Vec::new();
        for s in &rev {
            stmt_reads(s, &mut reads);
            if let Stmt::Let(_, Expr::ZeroLike(o)) | Stmt::Mut(_, Some(Expr::ZeroLike(o))) = s {
                reads.extend(o.var());
            }
        }
        let mut needed: Vec<VarId> = Vec::new();
        for s in &blk.0 {
            if let Stmt::Let(v, _) = s {
                if reads.contains(v) && !needed.contains(v) {
                    needed.push(*v);
                }
            }
        }
        let loops = self.blocks[bid].loops.clone();
        let mut rename: HashMap<VarId, VarId> = HashMap::new();
        if let Some((old, new)) = loop_var {
            rename.insert(old, new);
        }
        // Values cheap to recompute from what the reverse sweep sees are recomputed, not
        // taped: reads of immutable arrays and integer arithmetic on indices and constants.
        let defined_here: HashSet<VarId> = blk
            .0
            .iter()
            .filter_map(|s| if let Stmt::Let(v, _) = s { Some(*v) } else { None })
            .collect();
        let mut recomputable: HashMap<VarId, Expr> = HashMap::new();
        for s in &blk.0 {
            let Stmt::Let(v, e) = s else { continue };
            let vars = &self.g.vars;
            let ok_op = |o: &Operand| match o {
                Operand::Var(w) => !vars[*w].mutable && (!defined_here.contains(w) || recomputable.contains_key(w)),
                _ => true,
            };
            let ok = match e {
                Expr::Index(a, idx) => ok_op(&Operand::Var(*a)) && idx.iter().all(ok_op),
                Expr::Prim(Prim::Add | Prim::Sub | Prim::Mul | Prim::Div | Prim::Rem, xs) => {
                    vars[*v].ty.is_int() && xs.iter().all(ok_op)
                }
                Expr::Cast(a, _) => self.g.ty_of(a).is_int() && ok_op(a),
                _ => false,
            };
            if ok {
                recomputable.insert(*v, e.clone());
            }
        }
        // Close the needed set over the recomputed values' dependencies.
        let mut want: HashSet<VarId> = needed.iter().copied().collect();
        loop {
            let before = want.len();
            for v in want.clone() {
                if let Some(e) = recomputable.get(&v) {
                    for o in expr_operands(e) {
                        if let Some(w) = o.var() {
                            if defined_here.contains(&w) {
                                want.insert(w);
                            }
                        }
                    }
                }
            }
            if want.len() == before {
                break;
            }
        }
        let needed: Vec<VarId> = blk
            .0
            .iter()
            .filter_map(|s| if let Stmt::Let(v, _) = s { Some(*v) } else { None })
            .filter(|v| want.contains(v))
            .collect();
        // How many enclosing loops each value depends on: a value computed from what an
        // outer scope defined is the same in every iteration of the loops inside it, and is
        // taped once per iteration of the loops it does depend on (a loop-invariant value:
        // one slot), never once per step.
        let full = loops.len();
        let mut depth: HashMap<VarId, usize> = HashMap::new();
        for s in &blk.0 {
            let Stmt::Let(v, e) = s else { continue };
            let d = expr_operands(e)
                .iter()
                .filter_map(Operand::var)
                .map(|w| match depth.get(&w) {
                    Some(d) => *d,
                    None if self.g.vars[w].mutable => full,
                    None => self
                        .def_block
                        .get(&w)
                        .and_then(|b| self.blocks.get(*b))
                        .map_or(full, |b| b.loops.len()),
                })
                .max()
                .unwrap_or(0)
                .min(full);
            depth.insert(*v, d);
        }
        let mut reads_stmts = Vec::new();
        for v in needed {
            let info = self.g.vars[v].clone();
            if let Some(e) = recomputable.get(&v) {
                let nv = self.g.new_var(info.name.clone(), info.ty.clone(), false);
                reads_stmts.push(Stmt::Let(nv, e.clone()));
                rename.insert(v, nv);
                continue;
            }
            // A bound naming a user constant may have any integer type (`const K: i32`):
            // such loops index their tapes with `i as usize`, sized `(K as usize)`.
            let cast = |hi: &CExpr| {
                let mut ps = Vec::new();
                hi.paths(&mut ps);
                !ps.is_empty() && !ps.iter().any(|p| self.const_generics.contains(p))
            };
            let loops = &loops[..depth.get(&v).copied().unwrap_or(full)];
            let mut tty = info.ty.clone();
            for (_, hi, span) in loops.iter().rev() {
                let len = match self.tape_len(hi) {
                    Ok(len) if cast(hi) => CExpr::AsUsize(Box::new(len)),
                    Ok(len) => len,
                    Err(m) => {
                        self.err_span = Some(span.0);
                        return Err(m);
                    }
                };
                tty = Ty::Array(Box::new(tty), len);
            }
            let tape = self.g.new_var(format!("tape_{}", info.name), tty.clone(), true);
            self.g.vars[tape].storage = self.storage(&tty);
            self.tape_decls.push(Stmt::Mut(tape, Some(Expr::Zeros(tty))));
            let usize_ty = Ty::Int(Some("usize".into()));
            let offsets = &self.offsets;
            let index = |g: &mut Func, stmts: &mut Vec<Stmt>| -> Vec<Operand> {
                loops
                    .iter()
                    .map(|(i, hi, _)| {
                        if let Some(lo) = offsets.get(i) {
                            let name = format!("{}_index", g.vars[*i].name);
                            let d = g.new_var(name.clone(), Ty::Int(None), false);
                            let lo = match lo {
                                CExpr::Lit(v) => Operand::Int(*v),
                                c => Operand::Const(c.clone()),
                            };
                            stmts.push(Stmt::Let(d, Expr::Prim(Prim::Sub, vec![Operand::Var(*i), lo])));
                            let iu = g.new_var(name, usize_ty.clone(), false);
                            stmts.push(Stmt::Let(iu, Expr::Cast(Operand::Var(d), usize_ty.clone())));
                            Operand::Var(iu)
                        } else if cast(hi) {
                            let iu = g.new_var(format!("{}_index", g.vars[*i].name), usize_ty.clone(), false);
                            stmts.push(Stmt::Let(iu, Expr::Cast(Operand::Var(*i), usize_ty.clone())));
                            Operand::Var(iu)
                        } else {
                            Operand::Var(*i)
                        }
                    })
                    .collect()
            };
            let mut write = Vec::new();
            let widx = index(self.g, &mut write);
            write.push(Stmt::Assign(
                Place { var: tape, idx: widx },
                AssignOp::Set,
                Operand::Var(v),
            ));
            self.tape_writes.insert(v, write);
            let ridx = index(self.g, &mut reads_stmts);
            let nv = self.g.new_var(info.name.clone(), info.ty.clone(), false);
            reads_stmts.push(if ridx.is_empty() {
                Stmt::Let(nv, Expr::Use(Operand::Var(tape)))
            } else {
                Stmt::Let(nv, Expr::Index(tape, ridx))
            });
            rename.insert(v, nv);
        }
        // Tape reads index with the forward loop variables; the renaming below maps the
        // innermost one, enclosing blocks map theirs when they are closed.
        reads_stmts.extend(rev);
        let mut blk_out = Block(reads_stmts);
        rename_block(&mut blk_out, &rename);
        // The tape reads themselves must keep reading the tapes, not renamed values.
        Ok(blk_out.0)
    }

    /// Where a tape of type `t` lives: on the stack up to [`TAPE_STACK_BYTES`], on the heap
    /// above; where the sizes are named constants, rustc decides from their values.
    fn storage(&self, t: &Ty) -> Storage {
        if !matches!(t, Ty::Array(..)) {
            return Storage::Stack;
        }
        if let Some(n) = t.known_bytes() {
            return if n > TAPE_STACK_BYTES {
                Storage::Heap
            } else {
                Storage::Stack
            };
        }
        let mut dims = Vec::new();
        let mut cur = t;
        while let Ty::Array(e, n) = cur {
            n.paths(&mut dims);
            cur = e;
        }
        if dims.iter().any(|p| self.const_generics.contains(p)) {
            Storage::Stack
        } else if !t.is_named() {
            Storage::Heap
        } else {
            Storage::BySize
        }
    }

    /// The tape length for a loop with upper bound `hi`: const generic expressions cannot
    /// size arrays on stable Rust, so `N - k` is sized `N`.
    fn tape_len(&self, hi: &CExpr) -> Result<CExpr, String> {
        let mut paths = Vec::new();
        hi.paths(&mut paths);
        if !paths.iter().any(|p| self.const_generics.contains(p)) {
            return Ok(hi.clone());
        }
        match hi {
            CExpr::Path(_) => Ok(hi.clone()),
            CExpr::Bin('-', a, b) if matches!(**a, CExpr::Path(_)) && b.lit().is_some() => Ok((**a).clone()),
            _ => Err(format!(
                "the loop bound `{hi}` uses a const generic: reverse mode cannot size its tape on stable Rust; loop to `{}` or `{} - k`",
                paths[0], paths[0]
            )),
        }
    }
}

/// The reverse of `let y = e` given `y`'s cotangent `tb`.
fn rexpr(
    act: &HashSet<VarId>,
    adj: &mut HashMap<VarId, Adj>,
    rules: &RuleTable,
    b: &mut Builder,
    e: &Expr,
    y: &Operand,
    tb: Operand,
) -> Result<(), String> {
    {
        let is_act = |o: &Operand| o.var().is_some_and(|v| act.contains(&v));
        match e {
            Expr::Prim(p, ops) => {
                let Some(rule) = rules.get(*p) else {
                    return Err(format!("no derivative rule for `{p:?}`"));
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
                    };
                    contribute(act, adj, b, o, c);
                }
            }
            Expr::Call(c) => {
                let mut args = c.args.clone();
                args.push(Arg { op: tb, by_ref: false });
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
                        let bk = b.let_ty(Expr::Field(bars.clone(), k), "t", Ty::Unknown);
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

impl Rx<'_> {
    /// The forward sweep: the primal with tape writes after the values the reverse needs.
    fn forward(&self, b: &Block) -> Block {
        let mut out = Vec::new();
        for s in &b.0 {
            match s {
                Stmt::Let(v, _) => {
                    out.push(s.clone());
                    if let Some(w) = self.tape_writes.get(v) {
                        out.extend(w.iter().cloned());
                    }
                }
                Stmt::For(l) => out.push(Stmt::For(Loop {
                    body: self.forward(&l.body),
                    ..l.clone()
                })),
                Stmt::If(c, t, e) => out.push(Stmt::If(c.clone(), self.forward(t), self.forward(e))),
                s => out.push(s.clone()),
            }
        }
        Block(out)
    }
}

fn contribute(act: &HashSet<VarId>, adj: &mut HashMap<VarId, Adj>, b: &mut Builder, o: &Operand, val: Operand) {
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

fn contribute_elem(
    act: &HashSet<VarId>,
    adj: &mut HashMap<VarId, Adj>,
    b: &mut Builder,
    a: VarId,
    idx: &[Operand],
    val: Operand,
) -> Result<(), String> {
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
        Some(_) => Err(format!(
            "internal: indexed value `{}` has no accumulator",
            b.f.vars[a].name
        )),
        None => Ok(()),
    }
}

/// Field `k` of the tuple `a` gets the cotangent `tb`: a per-field sum, or `(0, .., tb, .., 0)`
/// added to the accumulator of a tuple used inside a nested block.
fn contribute_field(
    adj: &mut HashMap<VarId, Adj>,
    b: &mut Builder,
    a: &Operand,
    k: usize,
    tb: Operand,
) -> Result<(), String> {
    match a.var().and_then(|v| adj.get_mut(&v)) {
        Some(Adj::Fields(fs)) if k < fs.len() => fs[k].push(tb),
        Some(Adj::Acc(acc)) => {
            // A tuple used inside a nested block: accumulate `(0, .., tb, .., 0)`.
            let acc = *acc;
            let Ty::Tuple(ts) = b.f.ty_of(a) else {
                return Err(format!(
                    "internal: field of `{}`, which is not a tuple ({:?})",
                    a.var().map(|v| b.f.vars[v].name.clone()).unwrap_or_default(),
                    b.f.ty_of(a)
                ));
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
        Some(_) => return Err("internal: field of a value without field adjoints".into()),
        None => {}
    }
    Ok(())
}

/// Rewrites each active call `let y = g(x)` (of a function, not of a companion) into
/// `let r = g::vjp_fwd(x); let y = r.0; let res = <residuals of r>;`, for [`vjp_final`].
/// Returns the residuals' variable of each `r`.
fn split_calls(f: &Func, act: &HashSet<VarId>) -> (Func, HashMap<VarId, VarId>) {
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
    let internal = |m: &str| Diag {
        msg: format!("internal: split companions of `{}`: {m}", f.name),
        span: None,
    };
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
    let writable = residuals
        .iter()
        .all(|v| g.vars[*v].ty.is_exact() && g.vars[*v].storage == Storage::Stack);
    let mut fwd_f = g.clone();
    let mut bwd_f = g.clone();
    let ct_param = g.params.last().cloned().ok_or_else(|| internal("no cotangent"))?;
    fwd_f.params.pop();
    bwd_f.params.pop();
    let (res_ops, res_tys, fwd_body): (Vec<Operand>, Vec<Ty>, Vec<Stmt>) = if writable {
        (
            residuals.iter().map(|v| Operand::Var(*v)).collect(),
            residuals.iter().map(|v| g.vars[*v].ty.clone()).collect(),
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
