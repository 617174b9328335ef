//! Work that does not depend on the chunk, moved out of the chunk loop of a Jacobian built
//! by batching (`transforms::jacrev_batched`, `jacfwd_columns_batched`).
//!
//! A batched sweep over basis directions computes, beside the lanes that carry the
//! directions, shared values that are the same in every chunk: the partial derivatives
//! (`cos(x[i])` in a reverse sweep through `sin`), the primal of a forward sweep. Each
//! costly one (a primitive of cost 4 or more: divisions, roots, transcendentals) is
//! computed once, before the chunk loop, into a tape indexed by the loops around it, and
//! the chunk loop reads the tape:
//!
//! ```text
//! for c in 0..chunks {                      let mut tape_t = [0.0; N];
//!     for i in (0..N).rev() {               if chunks > 0 {
//!         let t = x[i].cos();                   for i2 in 0..N { tape_t[i2] = x[i2].cos(); }
//!         .. t .. lanes ..          ->      }
//!     }                                     for c in 0..chunks {
//! }                                             for i in (0..N).rev() { let t = tape_t[i]; .. }
//!                                           }
//! ```
//!
//! The values are the same operations on the same operands, so the results are bit for
//! bit unchanged. A value is hoisted only where that is sound and cheap to store: it is
//! computed from values defined before the loop (or unchanged in it), loop indices and
//! other such values, not under a branch, inside loops with literal, `const` or const
//! generic bounds (not run-time ones), with a tape of at most one axis sized by a const generic or at most
//! [`TAPE_STACK_BYTES`] when its size is known.

use std::collections::{HashMap, HashSet};

use crate::ir::*;

/// The cost from which a shared value is worth a tape slot.
const COSTLY: u64 = 4;

/// Moves the costly chunk-invariant values of `body` (the body of the loop over chunks,
/// whose index is `chunk`, running `chunks` times) into tapes filled before it. Returns
/// the statements to put before the chunk loop and the new body.
pub fn hoist(g: &mut Func, chunk: VarId, chunks: &CExpr, body: Vec<Stmt>) -> (Vec<Stmt>, Vec<Stmt>) {
    // Mutable variables declared in the body are invariant until an assignment of a
    // variant value (or under a branch) shows otherwise; those declared before it and
    // written in it change between chunks. To a fixed point: a variable found variant
    // makes what reads it variant, in earlier statements of a loop too.
    let mut declared = HashSet::new();
    declared_in(&body, &mut declared);
    let mut assigned = HashSet::new();
    assigned_in(&body, &mut assigned);
    let mut variant: HashSet<VarId> = assigned.difference(&declared).copied().collect();
    variant.insert(chunk);
    let a = loop {
        let mut a = Analysis {
            variant: variant.clone(),
            defs: HashMap::new(),
            picked: Vec::new(),
        };
        a.walk(g, &body, &[], false);
        if a.variant.len() == variant.len() {
            break a;
        }
        variant = a.variant;
    };
    if a.picked.is_empty() {
        return (Vec::new(), body);
    }
    // The tapes, and what each hoisted value reads from them.
    let mut pre = Vec::new();
    let mut tapes: HashMap<VarId, VarId> = HashMap::new();
    for (v, path) in &a.picked {
        let mut ty = g.vars[*v].ty.clone();
        for l in path.iter().rev() {
            ty = Ty::Array(Box::new(ty), extent(l));
        }
        let name = format!("tape_{}", g.vars[*v].name);
        let t = g.new_var(name, ty.clone(), true);
        pre.push(Stmt::Mut(t, Some(Expr::Zeros(ty))));
        tapes.insert(*v, t);
    }
    // The values the hoisted ones need, copied with fresh names into the same loops.
    // (A mutable variable of the body is copied with its declaration and every assignment,
    // so the copy reads the values the body would at each point.)
    let mut writes: HashMap<VarId, Vec<VarId>> = HashMap::new();
    mutable_inputs(&body, &mut writes);
    let mut needed: HashSet<VarId> = HashSet::new();
    let mut stack: Vec<VarId> = a.picked.iter().map(|(v, _)| *v).collect();
    while let Some(v) = stack.pop() {
        if !needed.insert(v) {
            continue;
        }
        if let Some(e) = a.defs.get(&v) {
            let inside = |w: &VarId| a.defs.contains_key(w) || writes.contains_key(w);
            stack.extend(expr_operands(e).iter().filter_map(Operand::var).filter(inside));
        }
        if let Some(ws) = writes.get(&v) {
            stack.extend(ws.iter().copied());
        }
    }
    let mut fill = Vec::new();
    let mut map = HashMap::new();
    copy_needed(g, &body, &needed, &tapes, &mut map, &mut Vec::new(), &mut fill);
    let mut b = crate::builder::Builder::new(g);
    let some = b.let_ty(
        Expr::Cmp(CmpOp::Lt, Operand::Int(0), chunks_operand(chunks)),
        "some",
        Ty::Bool,
    );
    pre.extend(b.take());
    pre.push(Stmt::If(some, Block(fill), Block::default()));
    let body = replace(g, body, &tapes, &mut Vec::new());
    (pre, body)
}

struct Analysis {
    /// Values that may differ between chunks (and mutable variables written in the body).
    variant: HashSet<VarId>,
    /// The invariant values of the body and their expressions.
    defs: HashMap<VarId, Expr>,
    /// The values to hoist, with the loops around them (outermost first).
    picked: Vec<(VarId, Vec<Loop>)>,
}

impl Analysis {
    fn walk(&mut self, g: &Func, stmts: &[Stmt], path: &[Loop], under_branch: bool) {
        for s in stmts {
            match s {
                Stmt::Let(v, e) => {
                    let ops = expr_operands(e);
                    let variant = under_branch
                        || !call_writes(s).is_empty()
                        || matches!(e, Expr::Call(_) | Expr::UnitLane(_) | Expr::Lane(..))
                        || g.vars[*v].ty.has_lanes()
                        || ops.iter().any(|o| o.var().is_some_and(|w| self.variant.contains(&w)));
                    if variant {
                        self.variant.insert(*v);
                        continue;
                    }
                    self.defs.insert(*v, e.clone());
                    let costly = matches!(e, Expr::Prim(p, _) if p.cost() >= COSTLY);
                    if costly && g.vars[*v].ty.is_float() && tape_fits(g, &g.vars[*v].ty, path) {
                        self.picked.push((*v, path.to_vec()));
                    }
                }
                Stmt::Mut(v, init) => {
                    let ops = init.as_ref().map(expr_operands).unwrap_or_default();
                    if under_branch || ops.iter().any(|o| o.var().is_some_and(|w| self.variant.contains(&w))) {
                        self.variant.insert(*v);
                    }
                }
                Stmt::Assign(p, _, val) => {
                    let reads_variant = p
                        .idx
                        .iter()
                        .chain([val])
                        .any(|o| o.var().is_some_and(|w| self.variant.contains(&w)));
                    if under_branch || reads_variant {
                        self.variant.insert(p.var);
                    }
                }
                Stmt::For(l) => {
                    let mut inner = path.to_vec();
                    // (The loop's header only: the path needs no copy of its body.)
                    inner.push(Loop {
                        var: l.var,
                        lo: l.lo.clone(),
                        hi: l.hi.clone(),
                        rev: l.rev,
                        body: Block::default(),
                        span: l.span,
                    });
                    // (A run-time trip count has no tape axis here: nothing in it moves.)
                    self.walk(g, &l.body.0, &inner, under_branch || l.is_dynamic());
                }
                Stmt::If(_, t, e) => {
                    self.walk(g, &t.0, path, true);
                    self.walk(g, &e.0, path, true);
                }
            }
        }
    }
}

/// Every variable written in `stmts` (assignments, `let mut`, calls writing through `&mut`).
fn assigned_in(stmts: &[Stmt], out: &mut HashSet<VarId>) {
    for s in stmts {
        out.extend(call_writes(s));
        match s {
            Stmt::Mut(v, _) => {
                out.insert(*v);
            }
            Stmt::Assign(p, _, _) => {
                out.insert(p.var);
            }
            Stmt::For(l) => assigned_in(&l.body.0, out),
            Stmt::If(_, t, e) => {
                assigned_in(&t.0, out);
                assigned_in(&e.0, out);
            }
            Stmt::Let(..) => {}
        }
    }
}

/// Every variable declared in `stmts` (`let mut`, loop indices).
fn declared_in(stmts: &[Stmt], out: &mut HashSet<VarId>) {
    for s in stmts {
        match s {
            Stmt::Mut(v, _) => {
                out.insert(*v);
            }
            Stmt::For(l) => declared_in(&l.body.0, out),
            Stmt::If(_, t, e) => {
                declared_in(&t.0, out);
                declared_in(&e.0, out);
            }
            _ => {}
        }
    }
}

/// For each mutable variable declared in `stmts` (outside branches), the variables its
/// declaration and assignments read.
fn mutable_inputs(stmts: &[Stmt], out: &mut HashMap<VarId, Vec<VarId>>) {
    for s in stmts {
        match s {
            Stmt::Mut(v, init) => {
                let ops = init.as_ref().map(expr_operands).unwrap_or_default();
                out.entry(*v).or_default().extend(ops.iter().filter_map(Operand::var));
            }
            Stmt::Assign(p, _, val) => {
                if let Some(ins) = out.get_mut(&p.var) {
                    ins.extend(p.idx.iter().chain([val]).filter_map(Operand::var));
                }
            }
            Stmt::For(l) => mutable_inputs(&l.body.0, out),
            _ => {}
        }
    }
}

/// The constant bounds of `l` (loops with a run-time bound hoist nothing).
fn bounds(l: &Loop) -> (CExpr, CExpr) {
    let lo = l.static_lo().unwrap_or(CExpr::Lit(0));
    let hi = l.static_hi().unwrap_or(CExpr::Lit(0));
    (lo, hi)
}

/// The number of iterations of `l` (its tape axis).
fn extent(l: &Loop) -> CExpr {
    let (lo, hi) = bounds(l);
    match (lo.lit(), hi.lit()) {
        (Some(0), _) => hi,
        (Some(lo), Some(hi)) => CExpr::Lit((hi - lo).max(0)),
        _ => CExpr::Bin('-', Box::new(hi), Box::new(lo)),
    }
}

/// Whether a tape of `ty` over the loops of `path` is sound to declare on the stack: at
/// most [`TAPE_STACK_BYTES`] when its size is known; one axis when a const generic sizes
/// it (stable Rust sizes arrays by `N`, not by `N - k`, so a shifted range is skipped).
fn tape_fits(g: &Func, ty: &Ty, path: &[Loop]) -> bool {
    let mut t = ty.clone();
    for l in path.iter().rev() {
        let (lo, hi) = bounds(l);
        if l.is_dynamic() || (lo.lit() != Some(0) && (lo.lit().is_none() || hi.lit().is_none())) {
            return false;
        }
        let mut names = Vec::new();
        hi.paths(&mut names);
        if names.iter().any(|p| g.const_generics.contains(p)) && !matches!(hi, CExpr::Path(_)) {
            return false;
        }
        t = Ty::Array(Box::new(t), extent(l));
    }
    match t.known_bytes() {
        Some(n) => n <= TAPE_STACK_BYTES,
        None => path.len() <= 1,
    }
}

fn chunks_operand(c: &CExpr) -> Operand {
    match c.lit() {
        Some(v) => Operand::Int(v),
        None => Operand::Const(c.clone()),
    }
}

/// The index of the current iteration of each loop of `path` in its tape axis.
fn tape_index(g: &mut Func, path: &[(VarId, CExpr)], out: &mut Vec<Stmt>) -> Vec<Operand> {
    path.iter()
        .map(|(v, lo)| match lo.lit() {
            Some(0) => Operand::Var(*v),
            _ => {
                let d = g.new_var(
                    format!("{}_index", g.vars[*v].name),
                    Ty::Int(Some("usize".into())),
                    false,
                );
                out.push(Stmt::Let(
                    d,
                    Expr::Prim(Prim::Sub, vec![Operand::Var(*v), chunks_operand(lo)]),
                ));
                Operand::Var(d)
            }
        })
        .collect()
}

/// The loops of `stmts` that compute `needed` values, with only those values (fresh
/// names) and the writes of the hoisted ones into their tapes.
fn copy_needed(
    g: &mut Func,
    stmts: &[Stmt],
    needed: &HashSet<VarId>,
    tapes: &HashMap<VarId, VarId>,
    map: &mut HashMap<VarId, VarId>,
    path: &mut Vec<(VarId, CExpr)>,
    out: &mut Vec<Stmt>,
) {
    for s in stmts {
        match s {
            Stmt::Let(v, e) if needed.contains(v) => {
                let info = g.vars[*v].clone();
                let nv = g.new_var(info.name, info.ty, false);
                let mut e = e.clone();
                rename_operands(&mut e, map);
                out.push(Stmt::Let(nv, e));
                map.insert(*v, nv);
                if let Some(t) = tapes.get(v) {
                    let idx = tape_index(g, path, out);
                    let place = Place { var: *t, idx };
                    out.push(Stmt::Assign(place, AssignOp::Set, Operand::Var(nv)));
                }
            }
            Stmt::Mut(v, init) if needed.contains(v) => {
                let info = g.vars[*v].clone();
                let nv = g.new_var(info.name, info.ty, true);
                let mut init = init.clone();
                if let Some(e) = &mut init {
                    rename_operands(e, map);
                }
                out.push(Stmt::Mut(nv, init));
                map.insert(*v, nv);
            }
            Stmt::Assign(p, op, val) if needed.contains(&p.var) => {
                let mut p = p.clone();
                let ren = |o: &Operand| match o {
                    Operand::Var(w) => Operand::Var(map.get(w).copied().unwrap_or(*w)),
                    o => o.clone(),
                };
                p.idx = p.idx.iter().map(ren).collect();
                let val = ren(val);
                p.var = map.get(&p.var).copied().unwrap_or(p.var);
                out.push(Stmt::Assign(p, *op, val));
            }
            Stmt::For(l) => {
                let info = g.vars[l.var].clone();
                let nl = g.new_var(info.name, info.ty, false);
                map.insert(l.var, nl);
                path.push((nl, bounds(l).0));
                let mut inner = Vec::new();
                copy_needed(g, &l.body.0, needed, tapes, map, path, &mut inner);
                path.pop();
                if !inner.is_empty() {
                    out.push(Stmt::For(Loop {
                        var: nl,
                        lo: l.lo.clone(),
                        hi: l.hi.clone(),
                        rev: l.rev,
                        body: Block(inner),
                        span: l.span,
                    }));
                }
            }
            _ => {}
        }
    }
}

fn rename_operands(e: &mut Expr, map: &HashMap<VarId, VarId>) {
    expr_operands_mut(e, &mut |o| {
        if let Operand::Var(w) = o {
            if let Some(n) = map.get(w) {
                *w = *n;
            }
        }
    });
}

/// `body` with each hoisted value read from its tape.
fn replace(g: &mut Func, stmts: Vec<Stmt>, tapes: &HashMap<VarId, VarId>, path: &mut Vec<(VarId, CExpr)>) -> Vec<Stmt> {
    let mut out = Vec::new();
    for s in stmts {
        match s {
            Stmt::Let(v, _) if tapes.contains_key(&v) => {
                let t = tapes[&v];
                let idx = tape_index(g, path, &mut out);
                out.push(Stmt::Let(
                    v,
                    if idx.is_empty() {
                        Expr::Use(Operand::Var(t))
                    } else {
                        Expr::Index(t, idx)
                    },
                ));
            }
            Stmt::For(mut l) => {
                path.push((l.var, bounds(&l).0));
                l.body = Block(replace(g, l.body.0, tapes, path));
                path.pop();
                out.push(Stmt::For(l));
            }
            s => out.push(s),
        }
    }
    out
}
