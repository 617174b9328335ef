//! vmap's batching rule for the whole IR: a function of one sample becomes a kernel over
//! a chunk of samples held in SIMD lanes.
//!
//! ```text
//! fn f(x: f64, w: f64) -> f64 {          fn f_vmap(x: Lanes<f64>, w: f64) -> Lanes<f64> {
//!     let t = x * w;                         let s = splat(w);          // shared, met a lane
//!     if x > 0.0 { t.sqrt() } else { t }     let t = x * s;
//! }                                          let m = x > splat(0.0);    // a lane mask
//!                                            select(m, t.sqrt(), t)     // both sides, chosen
//!                                        }
//! ```
//!
//! - **Batched values.** A parameter with `in_dims = 0` is batched; so is every value
//!   computed from a batched one, and every mutable variable assigned a batched value or
//!   assigned under a batched condition (a fixed point, as activity analysis is). Their
//!   types become lanes ([`Ty::Lanes`]): a float or `bool` per sample, arrays and tuples of
//!   them element by element (structure of arrays).
//! - **Shared values stay scalars**, computed once per chunk: a shared operand of a batched
//!   operation is splatted ([`Expr::Splat`]) where it meets it. Integer values (indices, loop
//!   counters, `powi` exponents) must be shared.
//! - **Loops** have constant bounds: they stay loops.
//! - **`if` on a batched condition** runs both branches on every lane, each under its lane
//!   mask: an assignment in a branch keeps the old value in the lanes where the branch is not
//!   taken (`v = select(mask, new, v)`). The untaken side's values, NaN or infinite as they
//!   may be (`x.sqrt()` at `x < 0`), never reach a result: a select takes the other lane
//!   whole. `if` on a shared condition stays a branch.
//! - **Calls** with a batched argument call the callee's lanes companion (`lanes`,
//!   `jvp_lanes`, `vjp_bwd_lanes`, ..: [`lanes_companion`] of its scalar companion, built
//!   by the callee's macro), shared float arguments spread into every lane; integers and
//!   slices pass as they are. Only first-order companions have lanes forms: a call of a
//!   second-order companion is an error.
//! - **The result** is batched: a shared result (or a shared part of a tuple) is splatted,
//!   as JAX broadcasts an unbatched output of `vmap` along the batch axis.

use std::collections::HashSet;

use crate::builder::{wrap_loops, Builder};
use crate::error::Diag;
use crate::ir::*;

/// Which parameters carry the batch (torch.func's `in_dims`: `Some(0)` batched, `None`
/// shared).
#[derive(Clone, Debug)]
pub struct BatchSpec {
    /// One flag per parameter: batched along its leading axis.
    pub batched: Vec<bool>,
}

/// The lanes form of a per-sample type: floats and booleans become lanes, arrays and tuples
/// hold lanes.
pub fn lanes_ty(t: &Ty) -> Result<Ty, Diag> {
    Ok(match t {
        Ty::Float(_) | Ty::Bool => Ty::Lanes(Box::new(t.clone())),
        Ty::Lanes(_) => t.clone(),
        Ty::Array(e, n) => Ty::Array(Box::new(lanes_ty(e)?), n.clone()),
        // An integer in a tuple of lanes (a residual's index) stays one integer: every
        // integer is shared, and one computed from lanes is an error where it is made.
        Ty::Tuple(ts) => Ty::Tuple(
            ts.iter()
                .map(|t| if int_like(t) { Ok(t.clone()) } else { lanes_ty(t) })
                .collect::<Result<_, _>>()?,
        ),
        Ty::Unit => Ty::Unit,
        // One generator per sample (`randomness = "different"`).
        Ty::Rng => Ty::Lanes(Box::new(Ty::Rng)),
        Ty::Int(_) => {
            return Err(Diag::new(
                "an integer that differs between samples is not supported under `vmap`: integers (indices, counts, `powi` exponents) must be the same for the whole batch",
            ))
        }
        Ty::Matrix { .. } => return Err(Diag::new("nalgebra types are not batched by `vmap` yet")),
        Ty::Slice(_) => {
            return Err(Diag::new(
                "a slice argument cannot be batched by `vmap` yet (its length may differ between samples): share it with `in_dims = None`, or batch a fixed-size array `[f64; N]`",
            ))
        }
        Ty::Tape(t) => Ty::Tape(Box::new(lanes_ty(t)?)),
        // A call's result (or a part of it): rustc types it from the callee's lanes
        // companion.
        Ty::Unknown => Ty::Unknown,
    })
}

/// An integer, or arrays (tapes) of them.
fn int_like(t: &Ty) -> bool {
    match t {
        Ty::Int(_) => true,
        Ty::Array(e, _) | Ty::Tape(e) => int_like(e),
        _ => false,
    }
}

/// Whether a parameter of type `t` is lanes in a lanes companion (and an argument of that
/// type is spread into lanes at a batched call): a value holding floats, or one only rustc
/// types. Integers, booleans, `()` and slices stay as they are.
pub fn lanes_param(t: &Ty) -> bool {
    match t {
        // A generator: each lane's own (`randomness = "different"`), or the shared one in
        // every lane.
        Ty::Unknown | Ty::Float(_) | Ty::Rng => true,
        Ty::Array(e, _) | Ty::Tape(e) => lanes_param(e),
        Ty::Tuple(ts) => ts.iter().any(lanes_param),
        _ => false,
    }
}

/// The lanes companion of `g` (a function or one of its companions): `g` with every
/// parameter that holds floats as lanes, called by batched callers with their lanes
/// (shared values spread into every lane). Also the float type of its lanes.
pub fn lanes_companion(g: &Func) -> Result<(Func, FloatTy), Diag> {
    let Some(float) = g
        .params
        .iter()
        .find_map(|p| p.ty.float_ty())
        .or_else(|| g.ret_ty.float_ty())
    else {
        return Err(Diag::new(
            "its float type is a generic parameter or unknown, and lanes need a concrete `f64` or `f32`",
        ));
    };
    let batched: Vec<bool> = g.params.iter().map(|p| lanes_param(&p.ty)).collect();
    if !batched.iter().any(|b| *b) {
        return Err(Diag::new(
            "it takes no floats, so no argument of it can differ between samples",
        ));
    }
    let mut k = batch(g, &BatchSpec { batched })?;
    k.name = g.name.clone();
    Ok((k, float))
}

/// The batched variables of `f` when the parameters flagged in `spec` are batched.
pub fn analyze(f: &Func, spec: &BatchSpec) -> HashSet<VarId> {
    let mut set: HashSet<VarId> = f
        .params
        .iter()
        .zip(&spec.batched)
        .filter(|(_, b)| **b)
        .map(|(p, _)| p.var)
        .collect();
    loop {
        let before = set.len();
        walk(f, &f.body, false, &mut set);
        if set.len() == before {
            return set;
        }
    }
}

fn is_batched(set: &HashSet<VarId>, o: &Operand) -> bool {
    o.var().is_some_and(|v| set.contains(&v))
}

fn walk(f: &Func, b: &Block, masked: bool, set: &mut HashSet<VarId>) {
    for s in &b.0 {
        match s {
            // A unit lane is lanes; one lane of lanes is one sample's scalar.
            Stmt::Let(v, Expr::UnitLane(_)) => {
                set.insert(*v);
            }
            Stmt::Let(_, Expr::Lane(..)) => {}
            // An integer field of a batched tuple (a residual's loop counter or index) is
            // shared: no integer differs between samples (`lanes_ty`).
            Stmt::Let(v, Expr::Field(..)) if int_like(&f.vars[*v].ty) => {}
            // A call with a batched argument is batched (the callee's lanes companion): its
            // result and the accumulators it writes are lanes; so are accumulators written
            // under a batched condition.
            Stmt::Let(v, Expr::Call(c)) => {
                let batched = c.args.iter().any(|a| is_batched(set, &a.op));
                if batched || (masked && !c.writes().is_empty()) {
                    set.extend(c.writes());
                    set.insert(*v);
                }
            }
            Stmt::Let(v, e) | Stmt::Mut(v, Some(e)) => {
                if expr_operands(e).iter().any(|o| is_batched(set, o)) {
                    set.insert(*v);
                }
            }
            Stmt::Mut(_, None) => {}
            Stmt::Assign(p, _, v) => {
                if masked || is_batched(set, v) || p.idx.iter().any(|i| is_batched(set, i)) {
                    set.insert(p.var);
                }
            }
            Stmt::For(l) => walk(f, &l.body, masked, set),
            Stmt::If(c, t, e) => {
                let m = masked || is_batched(set, c);
                walk(f, t, m, set);
                walk(f, e, m, set);
            }
        }
    }
}

/// Lanes whose type only rustc knows (a call's result, a part of one, or one spread into
/// every lane) are floats where an operation takes them as floats: typed as lanes of floats
/// there, so the emitter spells the operation on lanes (`Lanes::tanh(y)`, not `y.tanh()`).
fn refine_unknown(g: &mut Func, set: &HashSet<VarId>) {
    let mut lanes: HashSet<VarId> = set.iter().copied().filter(|v| g.vars[*v].ty == Ty::Unknown).collect();
    walk_stmts(&g.body, &mut |s| {
        if let Stmt::Let(v, Expr::Splat(Operand::Var(_))) = s {
            lanes.insert(*v);
        }
    });
    let mut floats = Vec::new();
    walk_stmts(&g.body, &mut |s| {
        let e = match s {
            Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => e,
            _ => return,
        };
        let ops: Vec<&Operand> = match e {
            Expr::Prim(p, ops) => ops
                .iter()
                .enumerate()
                .filter(|(k, _)| !p.int_operands().contains(k))
                .map(|(_, o)| o)
                .collect(),
            Expr::Cmp(_, x, y) => vec![x, y],
            _ => return,
        };
        floats.extend(ops.into_iter().filter_map(Operand::var).filter(|v| lanes.contains(v)));
    });
    for v in floats {
        if g.vars[v].ty == Ty::Unknown {
            g.vars[v].ty = Ty::Lanes(Box::new(Ty::Float(None)));
        }
    }
}

/// `f` batched: the kernel `f_vmap` over lanes, with the parameters of `f` (batched ones as
/// lanes) and a batched result.
pub fn batch(f: &Func, spec: &BatchSpec) -> Result<Func, Diag> {
    if spec.batched.len() != f.params.len() {
        return Err(Diag::new(format!(
            "internal: {} batch flags for {} parameters",
            spec.batched.len(),
            f.params.len()
        )));
    }
    let set = analyze(f, spec);
    let mut g = f.clone();
    g.name = format!("{}_vmap", f.name);
    for v in &set {
        g.vars[*v].ty = lanes_ty(&f.vars[*v].ty)?;
        // A literal's annotation (`let m: f64 = 1.0`) would name the scalar type.
        g.vars[*v].annotated = false;
    }
    for p in &mut g.params {
        p.ty = g.vars[p.var].ty.clone();
    }
    let mut bx = Bx {
        set: &set,
        local: HashSet::new(),
    };
    let body = bx.block(&mut g, &f.body, None)?;
    let mut b = Builder::new(&mut g);
    b.out = body;
    let ret_ty = f.ret_ty.clone();
    let ret = bx.batched_result(&mut b, &f.ret, &ret_ty)?;
    let stmts = b.take();
    g.body = Block(stmts);
    g.ret = ret;
    g.ret_ty = lanes_ty(&ret_ty)?;
    refine_unknown(&mut g, &set);
    // Splats of one value share one binding, and so on.
    crate::simplify::simplify(&mut g);
    Ok(g)
}

/// Batches the statements `stmts` of `g` in place of a whole function: the values that
/// depend on lanes introduced in them (`Expr::UnitLane`) or on the variables `seeds` become
/// lanes, the others stay shared (computed once, for every lane). Used where one part of a
/// function is batched and the rest is not: the reverse sweeps of a Jacobian, batched over
/// chunks of basis cotangents after one shared forward sweep.
pub fn batch_block(g: &mut Func, stmts: &[Stmt], seeds: &[VarId]) -> Result<Vec<Stmt>, Diag> {
    let blk = Block(stmts.to_vec());
    let mut set: HashSet<VarId> = seeds.iter().copied().collect();
    loop {
        let before = set.len();
        walk(g, &blk, false, &mut set);
        if set.len() == before {
            break;
        }
    }
    let mut declared = Vec::new();
    walk_stmts(&blk, &mut |s| {
        if let Stmt::Let(v, _) | Stmt::Mut(v, _) = s {
            declared.push(*v);
        }
    });
    for v in &set {
        // A batched variable declared before these statements would need its declaration
        // batched too.
        if !declared.contains(v) && !seeds.contains(v) {
            return Err(Diag::new(format!(
                "internal: `{}` is declared outside the batched statements",
                g.vars[*v].name
            )));
        }
        g.vars[*v].ty = lanes_ty(&g.vars[*v].ty)?;
        g.vars[*v].annotated = false;
    }
    // A Jacobian's batched sweep does not go through calls: a callee that is itself a
    // generated derivative has no lanes companions, and a caller cannot tell. The sweep
    // then runs per column (the caller falls back).
    let mut call = false;
    walk_stmts(&blk, &mut |s| {
        if let Stmt::Let(v, Expr::Call(_)) = s {
            call |= set.contains(v);
        }
    });
    if call {
        return Err(Diag::new("a batched call in a Jacobian's sweep"));
    }
    let mut bx = Bx {
        set: &set,
        local: HashSet::new(),
    };
    bx.block(g, &blk, None)
}

struct Bx<'s> {
    set: &'s HashSet<VarId>,
    /// Mutable variables declared inside the current masked region: assigned without a
    /// mask (they do not outlive the branch).
    local: HashSet<VarId>,
}

impl Bx<'_> {
    fn batched(&self, o: &Operand) -> bool {
        is_batched(self.set, o)
    }

    /// `o` as lanes: itself if batched, else splatted (element by element for arrays and
    /// tuples, whose lanes form is a structure of lanes).
    fn lanes(&self, b: &mut Builder, o: &Operand) -> Result<Operand, Diag> {
        if self.batched(o) {
            return Ok(o.clone());
        }
        let ty = b.f.ty_of(o);
        self.splat(b, o, &ty)
    }

    fn splat(&self, b: &mut Builder, o: &Operand, ty: &Ty) -> Result<Operand, Diag> {
        Ok(match ty {
            // An integer in a tuple of lanes stays itself (`lanes_ty`).
            _ if int_like(ty) => o.clone(),
            Ty::Array(e, n) => {
                let Some(v) = o.var() else {
                    return Err(Diag::new("internal: a shared array that is not a variable"));
                };
                let lty = lanes_ty(ty)?;
                match n.lit().and_then(|n| usize::try_from(n).ok()).filter(|&n| n <= 4) {
                    // `[splat(x[0]), splat(x[1]), ..]` for a short array.
                    Some(len) => {
                        let mut elems = Vec::new();
                        for k in 0..len {
                            let x = b.let_ty(Expr::Index(v, vec![Operand::Int(k as i128)]), "s", (**e).clone());
                            elems.push(self.splat(b, &x, e)?);
                        }
                        b.let_ty(Expr::Array(elems), "s", lty)
                    }
                    // Longer, or a length only rustc knows: element by element in a loop.
                    None => {
                        let acc = b.let_mut(Some(Expr::Zeros(lty.clone())), "s", lty.clone());
                        // A tape whose storage rustc picks from its size (a residual): its
                        // lanes are stored the same way, so the residuals' types agree.
                        if b.f.vars[v].storage == Storage::BySize {
                            b.f.vars[acc].storage = Storage::BySize;
                        }
                        let i = b.f.new_var("i", Ty::Int(Some("usize".into())), false);
                        let mut inner = Builder::new(b.f);
                        let x = inner.let_ty(Expr::Index(v, vec![Operand::Var(i)]), "s", (**e).clone());
                        let l = self.splat(&mut inner, &x, e)?;
                        inner.push(Stmt::Assign(
                            Place {
                                var: acc,
                                idx: vec![Operand::Var(i)],
                            },
                            AssignOp::Set,
                            l,
                        ));
                        let body = inner.take();
                        b.out.extend(wrap_loops(&[i], std::slice::from_ref(n), body));
                        b.let_ty(Expr::Use(Operand::Var(acc)), "s", lty)
                    }
                }
            }
            Ty::Tuple(ts) => {
                let mut elems = Vec::new();
                for (k, t) in ts.iter().enumerate() {
                    let x = b.let_ty(Expr::Field(o.clone(), k), "s", t.clone());
                    elems.push(self.splat(b, &x, t)?);
                }
                b.let_ty(Expr::Tuple(elems), "s", lanes_ty(ty)?)
            }
            Ty::Unit => Operand::Unit,
            // A shared generator in every lane (`randomness = "same"`, where a batched
            // condition selects between generators).
            Ty::Float(_) | Ty::Bool | Ty::Rng => b.let_ty(Expr::Splat(o.clone()), "s", lanes_ty(ty)?),
            // A literal, a named constant or a value computed from one: a float where it
            // meets lanes (rustc checks its type against the lanes').
            Ty::Unknown if matches!(o, Operand::Const(_)) => {
                b.let_ty(Expr::Splat(o.clone()), "s", Ty::Lanes(Box::new(Ty::Float(None))))
            }
            // A call's result: spread by rustc's type of it (`Spread`), maybe an array.
            Ty::Unknown => b.let_ty(Expr::Splat(o.clone()), "s", Ty::Unknown),
            other => return Err(Diag::new(format!("cannot batch a shared value of type `{other}`"))),
        })
    }

    fn block(&mut self, g: &mut Func, blk: &Block, mask: Option<&Operand>) -> Result<Vec<Stmt>, Diag> {
        let mut out = Vec::new();
        for s in &blk.0 {
            self.stmt(g, s, mask, &mut out)?;
        }
        Ok(out)
    }

    fn stmt(&mut self, g: &mut Func, s: &Stmt, mask: Option<&Operand>, out: &mut Vec<Stmt>) -> Result<(), Diag> {
        match s {
            // `x.powi(k)` on lanes, for a literal `k`: the runtime's multiplications by
            // squaring (the same operations, so the same bits), written out so that the
            // powers of one base share their squares (`x^12`, `x^6`, `x^11`, `x^5` of a
            // Lennard-Jones term and its derivative).
            Stmt::Let(v, Expr::Prim(Prim::Powi, ops))
                if self.set.contains(v)
                    && matches!(ops.get(1), Some(Operand::Int(k)) if (1..=64).contains(&k.unsigned_abs())) =>
            {
                let Some(Operand::Int(k)) = ops.get(1) else {
                    return Err(Diag::new("internal: powi without an exponent"));
                };
                let ty = g.vars[*v].ty.clone();
                let mut b = Builder::new(g);
                let x = self.lanes(&mut b, &ops[0])?;
                let (mut bits, mut a, mut r) = (k.unsigned_abs(), x, None::<Operand>);
                loop {
                    if bits & 1 != 0 {
                        r = Some(match r {
                            None => a.clone(),
                            Some(r) => b.let_ty(Expr::Prim(Prim::Mul, vec![r, a.clone()]), "p", ty.clone()),
                        });
                    }
                    bits >>= 1;
                    if bits == 0 {
                        break;
                    }
                    a = b.let_ty(Expr::Prim(Prim::Mul, vec![a.clone(), a]), "p", ty.clone());
                }
                let r = r.unwrap_or(a);
                let e = if *k < 0 {
                    let one = b.let_ty(Expr::Splat(Operand::float(1.0)), "s", ty.clone());
                    Expr::Prim(Prim::Div, vec![one, r])
                } else {
                    Expr::Use(r)
                };
                b.push(Stmt::Let(*v, e));
                out.extend(b.take());
            }
            Stmt::Let(v, e) => {
                let mut b = Builder::new(g);
                let e = if self.set.contains(v) {
                    self.lanes_expr(&mut b, e)?
                } else {
                    e.clone()
                };
                // A call under a batched condition writes its accumulators in every lane:
                // the lanes outside the mask get their old values back.
                let restore: Vec<(VarId, Operand)> = match (&e, mask) {
                    (Expr::Call(c), Some(_)) => c
                        .writes()
                        .into_iter()
                        .filter(|w| !self.local.contains(w))
                        .map(|w| {
                            let ty = b.f.vars[w].ty.clone();
                            (w, b.let_ty(Expr::Use(Operand::Var(w)), "old", ty))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                b.push(Stmt::Let(*v, e));
                if let Some(m) = mask {
                    for (w, old) in restore {
                        let ty = b.f.vars[w].ty.clone();
                        let new = b.let_ty(Expr::Use(Operand::Var(w)), "new", ty);
                        let place = Place { var: w, idx: vec![] };
                        b.push(Stmt::Assign(place.clone(), AssignOp::Set, old));
                        self.masked_assign(&mut b, m, &place, AssignOp::Set, new)?;
                    }
                }
                out.extend(b.take());
            }
            Stmt::Mut(v, init) => {
                if mask.is_some() {
                    self.local.insert(*v);
                }
                let mut b = Builder::new(g);
                let init = match init {
                    Some(e) if self.set.contains(v) => Some(self.lanes_init(&mut b, e)?),
                    // `let mut r;` (the value of an `if`): a masked assignment reads the old
                    // value of the lanes it keeps, so the variable starts at zero.
                    None if self.set.contains(v) => Some(Expr::Zeros(b.f.vars[*v].ty.clone())),
                    other => other.clone(),
                };
                out.extend(b.take());
                out.push(Stmt::Mut(*v, init));
            }
            Stmt::Assign(p, op, val) => {
                if p.idx.iter().any(|i| self.batched(i)) {
                    return Err(Diag::new(
                        "an index that differs between samples is not supported under `vmap` (a scatter): indices must be the same for the whole batch",
                    ));
                }
                let mut b = Builder::new(g);
                let val = if self.set.contains(&p.var) {
                    self.lanes(&mut b, val)?
                } else {
                    val.clone()
                };
                match mask {
                    Some(m) if !self.local.contains(&p.var) => {
                        self.masked_assign(&mut b, m, p, *op, val)?;
                    }
                    _ => b.push(Stmt::Assign(p.clone(), *op, val)),
                }
                out.extend(b.take());
            }
            Stmt::For(l) => {
                let body = self.block(g, &l.body, mask)?;
                out.push(Stmt::For(Loop {
                    body: Block(body),
                    ..l.clone()
                }));
            }
            Stmt::If(c, t, e) if !self.batched(c) => {
                let t = self.block(g, t, mask)?;
                let e = self.block(g, e, mask)?;
                out.push(Stmt::If(c.clone(), Block(t), Block(e)));
            }
            Stmt::If(c, t, e) => {
                // Both branches, each under its mask (and the enclosing one).
                let mut b = Builder::new(g);
                let m_then = match mask {
                    Some(m) => b.let_ty(
                        Expr::Bool(BoolOp::And, m.clone(), c.clone()),
                        "mask",
                        Ty::Lanes(Box::new(Ty::Bool)),
                    ),
                    None => c.clone(),
                };
                let not_c = b.let_ty(Expr::Not(c.clone()), "mask", Ty::Lanes(Box::new(Ty::Bool)));
                let m_else = match mask {
                    Some(m) => b.let_ty(
                        Expr::Bool(BoolOp::And, m.clone(), not_c),
                        "mask",
                        Ty::Lanes(Box::new(Ty::Bool)),
                    ),
                    None => not_c,
                };
                out.extend(b.take());
                // Variables declared in each branch are its own: assigned without a mask
                // there; those of enclosing regions are masked by this branch's mask.
                let saved = std::mem::take(&mut self.local);
                let t = self.block(g, t, Some(&m_then))?;
                self.local.clear();
                let e = self.block(g, e, Some(&m_else))?;
                self.local = saved;
                out.extend(t);
                out.extend(e);
            }
        }
        Ok(())
    }

    /// `place op= val` in the lanes of `mask` only: `place = select(mask, place op val,
    /// place)`, element by element for an array place.
    fn masked_assign(
        &self,
        b: &mut Builder,
        mask: &Operand,
        p: &Place,
        op: AssignOp,
        val: Operand,
    ) -> Result<(), Diag> {
        let ty = b.f.vars[p.var].ty.indexed(p.idx.len());
        match &ty {
            // Lanes, or a call's result only rustc types (selected by `SelectLanes`).
            Ty::Lanes(_) | Ty::Unknown => {
                let old = if p.idx.is_empty() {
                    b.let_ty(Expr::Use(Operand::Var(p.var)), "old", ty.clone())
                } else {
                    b.let_ty(Expr::Index(p.var, p.idx.clone()), "old", ty.clone())
                };
                let new = match op {
                    AssignOp::Set => val,
                    AssignOp::Add => b.let_ty(Expr::Prim(Prim::Add, vec![old.clone(), val]), "new", ty.clone()),
                    AssignOp::Sub => b.let_ty(Expr::Prim(Prim::Sub, vec![old.clone(), val]), "new", ty.clone()),
                };
                let sel = if ty == Ty::Lanes(Box::new(Ty::Bool)) {
                    // Masks chosen by a mask: `(m & new) | (!m & old)`.
                    let mt = ty.clone();
                    let keep_new = b.let_ty(Expr::Bool(BoolOp::And, mask.clone(), new), "mask", mt.clone());
                    let not_m = b.let_ty(Expr::Not(mask.clone()), "mask", mt.clone());
                    let keep_old = b.let_ty(Expr::Bool(BoolOp::And, not_m, old), "mask", mt.clone());
                    b.let_ty(Expr::Bool(BoolOp::Or, keep_new, keep_old), "sel", mt)
                } else {
                    b.let_ty(Expr::Select(mask.clone(), new, old), "sel", ty.clone())
                };
                b.push(Stmt::Assign(p.clone(), AssignOp::Set, sel));
                Ok(())
            }
            Ty::Array(e, n) => {
                // One element at a time, in a loop over the array.
                let Some(vv) = val.var() else {
                    return Err(Diag::new("internal: an array value that is not a variable"));
                };
                let i = b.f.new_var("i", Ty::Int(Some("usize".into())), false);
                let mut inner = Builder::new(b.f);
                let mut idx = p.idx.clone();
                idx.push(Operand::Var(i));
                let x = inner.let_ty(Expr::Index(vv, vec![Operand::Var(i)]), "x", (**e).clone());
                let place = Place { var: p.var, idx };
                self.masked_assign(&mut inner, mask, &place, op, x)?;
                let body = inner.take();
                b.out.extend(wrap_loops(&[i], std::slice::from_ref(n), body));
                Ok(())
            }
            Ty::Unit => Ok(()),
            other => Err(Diag::new(format!(
                "`vmap` cannot assign a value of type `{other}` under a condition that differs between samples"
            ))),
        }
    }

    /// The initial value of a batched mutable variable: a batched expression, or a shared
    /// value splatted.
    fn lanes_init(&self, b: &mut Builder, e: &Expr) -> Result<Expr, Diag> {
        if expr_operands(e).iter().any(|o| self.batched(o)) {
            return self.lanes_expr(b, e);
        }
        // Zeros and repeats of a shared value: built from lanes directly.
        match e {
            Expr::Zeros(t) => return Ok(Expr::Zeros(lanes_ty(t)?)),
            Expr::Repeat(a, n) if !matches!(b.f.ty_of(a), Ty::Array(..) | Ty::Tuple(_)) => {
                let a_ty = b.f.ty_of(a);
                let l = self.splat(b, a, &a_ty)?;
                return Ok(Expr::Repeat(l, n.clone()));
            }
            _ => {}
        }
        // Shared: computed as a scalar, then splatted into the variable.
        let ty = infer_ty(b.f, e);
        let x = b.let_ty(e.clone(), "s", ty.clone());
        let l = self.splat(b, &x, &ty)?;
        Ok(Expr::Use(l))
    }

    /// A batched expression with its shared operands splatted where lanes meet them.
    fn lanes_expr(&self, b: &mut Builder, e: &Expr) -> Result<Expr, Diag> {
        Ok(match e {
            Expr::Prim(p, ops) => {
                let ints = p.int_operands();
                let mut out = Vec::new();
                for (k, o) in ops.iter().enumerate() {
                    if ints.contains(&k) {
                        if self.batched(o) {
                            return Err(Diag::new(format!(
                                "`{}`'s integer operand differs between samples: under `vmap` it must be the same for the whole batch",
                                p.method().unwrap_or("an operation")
                            )));
                        }
                        out.push(o.clone());
                    } else {
                        out.push(self.lanes(b, o)?);
                    }
                }
                Expr::Prim(*p, out)
            }
            Expr::Cmp(c, x, y) => Expr::Cmp(*c, self.lanes(b, x)?, self.lanes(b, y)?),
            Expr::Bool(o, x, y) => Expr::Bool(*o, self.lanes(b, x)?, self.lanes(b, y)?),
            // A shared condition chooses between lanes as a plain `if`; a batched one lane by lane.
            Expr::Select(c, x, y) => Expr::Select(c.clone(), self.lanes(b, x)?, self.lanes(b, y)?),
            Expr::Array(ops) => Expr::Array(ops.iter().map(|o| self.lanes(b, o)).collect::<Result<_, _>>()?),
            Expr::Tuple(ops) => Expr::Tuple(ops.iter().map(|o| self.lanes(b, o)).collect::<Result<_, _>>()?),
            Expr::Repeat(a, n) => Expr::Repeat(self.lanes(b, a)?, n.clone()),
            Expr::Broadcast(like, v) => Expr::Broadcast(like.clone(), self.lanes(b, v)?),
            Expr::Index(v, idx) => {
                if idx.iter().any(|i| self.batched(i)) {
                    return Err(Diag::new(
                        "an index that differs between samples is not supported under `vmap` (a gather): indices must be the same for the whole batch",
                    ));
                }
                Expr::Index(*v, idx.clone())
            }
            // The callee's lanes companion: every float argument as lanes (a shared one
            // spread into every lane), integers and slices as they are.
            Expr::Call(c) => {
                if c.modes.len() > 1 {
                    return Err(Diag::spanned(
                        c.span.0,
                        format!("`vmap` through a call of a second derivative of `{}` is not supported: callees have batched companions to first order only (more would double every function's generated code); write the callee's body inline, or batch a first-order transform", c.name),
                    ));
                }
                let mut args = Vec::new();
                for a in &c.args {
                    let t = b.f.ty_of(&a.op);
                    let keep =
                        self.batched(&a.op) || !lanes_param(&t) || matches!(a.op, Operand::Int(_) | Operand::Unit);
                    let op = if keep { a.op.clone() } else { self.lanes(b, &a.op)? };
                    // A parameter taken by reference, passed on as it is (`noise(rng, x)`
                    // with `rng: &Rng`), is a value once spread into lanes: borrow it.
                    let was_ref =
                        a.op.var()
                            .is_some_and(|v| b.f.params.iter().any(|p| p.var == v && p.by_ref));
                    args.push(Arg {
                        op,
                        by_ref: a.by_ref || (!keep && was_ref),
                        ..a.clone()
                    });
                }
                Expr::Call(Call {
                    args,
                    lanes: true,
                    ..c.clone()
                })
            }
            Expr::Cast(a, t) => match t {
                Ty::Float(_) => Expr::Cast(self.lanes(b, a)?, lanes_ty(t)?),
                _ => {
                    return Err(Diag::new(
                        "a cast of a batched value to an integer is not supported under `vmap`",
                    ))
                }
            },
            // `n as T` for `T` the type of lanes `like` (the derivative of `powi` of a
            // call's result): the same in every lane.
            Expr::IntAsFloat(n, like) if !self.batched(n) => Expr::IntAsFloat(n.clone(), self.lanes(b, like)?),
            Expr::CastLike(..) | Expr::IntAsFloat(..) => {
                return Err(Diag::new("internal: a cast to a type only rustc knows, batched"))
            }
            // A draw from each sample's generator at a counter shared by the batch.
            Expr::Rng(o, r, k) => {
                if self.batched(k) {
                    return Err(Diag::new(format!(
                        "the counter of `{}` differs between samples: under `vmap` a draw's counter must be the same for the whole batch (each sample already draws from its own generator)",
                        o.method()
                    )));
                }
                Expr::Rng(*o, r.clone(), k.clone())
            }
            // The rest map lanes to lanes, or take apart structures of lanes.
            Expr::Use(_)
            | Expr::Deref(_)
            | Expr::StopGrad(_)
            | Expr::Not(_)
            | Expr::Zeros(_)
            | Expr::ZeroLike(_)
            | Expr::Field(..)
            | Expr::Sum(_)
            | Expr::Len(_)
            | Expr::Splat(_)
            | Expr::UnitLane(_)
            | Expr::Residuals(_)
            | Expr::Lane(..) => e.clone(),
        })
    }

    /// The kernel's result, lanes throughout.
    fn batched_result(&self, b: &mut Builder, r: &Operand, ty: &Ty) -> Result<Operand, Diag> {
        if self.batched(r) {
            return Ok(r.clone());
        }
        self.splat(b, r, ty)
    }
}

/// The storage array of a statically sized nalgebra type, everywhere inside `t`: a vector
/// `SVector<T, N>` is `[T; N]`, a matrix `SMatrix<T, R, C>` its columns `[[T; R]; C]`
/// (nalgebra's `data.0`, column-major). `None` for a dynamic axis.
pub fn storage_ty(t: &Ty) -> Option<Ty> {
    Some(match t {
        Ty::Matrix { elem, rows, cols } => {
            let e = storage_ty(elem)?;
            let r = rows.static_len()?.clone();
            if cols.is_one() {
                Ty::Array(Box::new(e), r)
            } else {
                Ty::Array(Box::new(Ty::Array(Box::new(e), r)), cols.static_len()?.clone())
            }
        }
        Ty::Array(e, n) => Ty::Array(Box::new(storage_ty(e)?), n.clone()),
        Ty::Slice(e) => Ty::Slice(Box::new(storage_ty(e)?)),
        Ty::Tape(e) => Ty::Tape(Box::new(storage_ty(e)?)),
        Ty::Lanes(e) => Ty::Lanes(Box::new(storage_ty(e)?)),
        Ty::Tuple(ts) => Ty::Tuple(ts.iter().map(storage_ty).collect::<Option<_>>()?),
        t => t.clone(),
    })
}

/// Whether `t` holds a nalgebra matrix anywhere (tapes included).
pub fn holds_matrix(t: &Ty) -> bool {
    match t {
        Ty::Matrix { .. } => true,
        Ty::Array(e, _) | Ty::Slice(e) | Ty::Tape(e) | Ty::Lanes(e) => holds_matrix(e),
        Ty::Tuple(ts) => ts.iter().any(holds_matrix),
        _ => false,
    }
}

/// The index operands of `idx` on a value of type `t` for its storage array: a vector's
/// `(i, 0)` is `[i]`, a matrix's `(i, j)` is `[j][i]` (column `j`, row `i`).
fn storage_index(t: &Ty, idx: &[Operand]) -> Vec<Operand> {
    let mut out = Vec::new();
    let (mut t, mut rest) = (t, idx);
    loop {
        match (t, rest) {
            (Ty::Matrix { elem, cols, .. }, [i, j, more @ ..]) => {
                if cols.is_one() {
                    out.push(i.clone());
                } else {
                    out.extend([j.clone(), i.clone()]);
                }
                (t, rest) = (elem, more);
            }
            (Ty::Array(e, _) | Ty::Slice(e) | Ty::Tape(e), [i, more @ ..]) => {
                out.push(i.clone());
                (t, rest) = (e, more);
            }
            _ => {
                out.extend(rest.iter().cloned());
                return out;
            }
        }
    }
}

/// `f` with every nalgebra value as its storage array (`storage_ty`), read and written by
/// the storage's indices: what `vmap` batches (arrays pack into lanes element by element),
/// the generated functions over slices reading and writing each sample's `data.0`. An error
/// where the values cannot be arrays: a dynamic axis, or a matrix passed to a call (the
/// callee takes the matrix).
pub fn nalgebra_as_storage(f: &Func) -> Result<Func, Diag> {
    let old = f.clone();
    let mut g = f.clone();
    let arrays = |t: &Ty| {
        storage_ty(t).ok_or_else(|| {
            Diag::new(format!(
                "`vmap` batches statically sized nalgebra matrices only, not `{t}`: give it `None` in `in_dims` to share it"
            ))
        })
    };
    for v in &mut g.vars {
        v.ty = arrays(&v.ty)?;
    }
    for p in &mut g.params {
        p.ty = arrays(&p.ty)?;
    }
    g.ret_ty = arrays(&g.ret_ty)?;
    fn block(b: &mut Block, old: &Func, err: &mut Option<Diag>) {
        for s in &mut b.0 {
            match s {
                Stmt::Let(_, e) | Stmt::Mut(_, Some(e)) => expr(e, old, err),
                Stmt::Mut(_, None) => {}
                Stmt::Assign(p, _, _) => p.idx = storage_index(&old.vars[p.var].ty, &p.idx),
                Stmt::For(l) => block(&mut l.body, old, err),
                Stmt::If(_, t, e) => {
                    block(t, old, err);
                    block(e, old, err);
                }
            }
        }
    }
    fn expr(e: &mut Expr, old: &Func, err: &mut Option<Diag>) {
        match e {
            Expr::Index(v, idx) => *idx = storage_index(&old.vars[*v].ty, idx),
            Expr::Zeros(t) => match storage_ty(t) {
                Some(s) => *t = s,
                None => *err = Some(Diag::new("`vmap` batches statically sized nalgebra matrices only")),
            },
            Expr::Call(c) if c.args.iter().any(|a| holds_matrix(&old.ty_of(&a.op))) => {
                *err = Some(Diag {
                    msg: format!(
                        "`vmap` of a function with nalgebra arguments or results does not batch calls that pass a matrix (`{}`) yet: pass its elements, or call it outside the batched function",
                        c.name
                    ),
                    span: Some(c.span.0),
                });
            }
            _ => {}
        }
    }
    let mut err = None;
    block(&mut g.body, &old, &mut err);
    match err {
        Some(d) => Err(d),
        None => Ok(g),
    }
}
