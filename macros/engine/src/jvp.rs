//! Forward mode: `f(x) -> y` becomes `f_jvp(x, ẋ) -> (y, ẏ)`.
//!
//! Each statement is followed by its tangent statement; loops and branches stay loops and
//! branches. Tangents of inactive values are absent (structural zeros).

use std::collections::{HashMap, HashSet};

use crate::activity;
use crate::builder::Builder;
use crate::error::Diag;
use crate::ir::*;
use crate::rules::{Partial, RuleTable};

/// Which parameters get a tangent parameter.
#[derive(Clone, Debug)]
pub struct JvpSpec {
    /// Per parameter: differentiated (gets a tangent parameter).
    pub active: Vec<bool>,
    /// Companion protocol: every parameter gets a tangent parameter, `()` for inactive ones.
    pub all_params: bool,
    /// Fixed tangents (e.g. `1.0` for a scalar input of `jacfwd`) by parameter index:
    /// these parameters get no tangent parameter.
    pub seeds: Vec<(usize, Operand)>,
    /// Basis tangents `(parameter, k)`: the tangent of a 1-D array parameter of literal
    /// length is the literal `e_k`, so reads `x[j]` with a literal `j` get a literal tangent
    /// (1 or a structural zero): the columns of `jacfwd` carry only what depends on `x[k]`.
    pub basis: Vec<(usize, usize)>,
}

/// Forward-mode transform. The result returns `(y, ẏ)`.
pub fn jvp(f: &Func, spec: &JvpSpec, rules: &RuleTable) -> Result<Func, Diag> {
    jvp_parts(f, spec, rules).map(|(g, _, _)| g)
}

/// Forward mode, also giving the operands of `y` and `ẏ` in the result's body.
pub fn jvp_parts(f: &Func, spec: &JvpSpec, rules: &RuleTable) -> Result<(Func, Operand, Operand), Diag> {
    let act = activity::analyze(f, &spec.active);
    let mut g = f.clone();
    g.name = format!("{}_jvp", f.name);
    let mut t = Tx {
        g: &mut g,
        act,
        tan: HashMap::new(),
        lit: HashMap::new(),
        rules,
    };
    let mut tparams = Vec::new();
    let mut prologue = Vec::new();
    for (k, p) in f.params.iter().enumerate() {
        let name = format!("{}_dot", f.vars[p.var].name);
        let on = spec.active[k] && p.ty.is_differentiable();
        let basis = spec.basis.iter().find(|(j, _)| *j == k).map(|(_, e)| *e);
        let basis_len = match &p.ty {
            Ty::Array(e, CExpr::Lit(n)) if e.is_float() => usize::try_from(*n).ok(),
            _ => None,
        };
        if let Some((_, seed)) = spec.seeds.iter().find(|(j, _)| *j == k) {
            t.tan.insert(p.var, seed.clone());
        } else if let (Some(e), Some(n)) = (basis, basis_len) {
            let ops: Vec<Operand> = (0..n).map(|j| Operand::float(if j == e { 1.0 } else { 0.0 })).collect();
            let v = t.g.new_var(name, p.ty.tangent(), false);
            prologue.push(Stmt::Let(v, Expr::Array(ops.clone())));
            t.tan.insert(p.var, Operand::Var(v));
            t.lit.insert(v, ops);
        } else if on {
            let v = t.g.new_var(name, p.ty.tangent(), false);
            t.tan.insert(p.var, Operand::Var(v));
            tparams.push(Param {
                var: v,
                ty: p.ty.tangent(),
                by_ref: false,
                span: p.span,
            });
        } else if spec.all_params {
            let v = t.g.new_var(format!("_{name}"), p.ty.tangent(), false);
            tparams.push(Param {
                var: v,
                ty: p.ty.tangent(),
                by_ref: false,
                span: p.span,
            });
        }
    }
    let body = t.block(&f.body)?;
    let mut b = Builder::new(t.g);
    b.out = prologue;
    b.out.extend(body.0);
    let ret_t = match t.tan.get(&f.ret.var().unwrap_or(usize::MAX)) {
        Some(o) => o.clone(),
        None => zero_of(&mut b, &f.ret),
    };
    let out = b.let_(Expr::Tuple(vec![f.ret.clone(), ret_t.clone()]), "out");
    let stmts = b.take();
    g.body = Block(stmts);
    g.params.extend(tparams);
    g.ret = out;
    g.ret_ty = Ty::Tuple(vec![f.ret_ty.clone(), f.ret_ty.tangent()]);
    Ok((g, f.ret.clone(), ret_t))
}

pub use crate::builder::{zero_of, zero_of_ty};

struct Tx<'a> {
    g: &'a mut Func,
    act: HashSet<VarId>,
    tan: HashMap<VarId, Operand>,
    /// Tangents that are literal arrays (basis vectors), by variable.
    lit: HashMap<VarId, Vec<Operand>>,
    rules: &'a RuleTable,
}

impl Tx<'_> {
    fn t(&self, o: &Operand) -> Option<Operand> {
        o.var().and_then(|v| self.tan.get(&v)).cloned()
    }

    fn block(&mut self, blk: &Block) -> Result<Block, Diag> {
        let mut out = Vec::new();
        for s in &blk.0 {
            self.stmt(s, &mut out)?;
        }
        Ok(Block(out))
    }

    fn stmt(&mut self, s: &Stmt, out: &mut Vec<Stmt>) -> Result<(), Diag> {
        match s {
            Stmt::Let(v, e) => {
                let active = self.act.contains(v);
                if let (true, Expr::Call(c)) = (active, e) {
                    return self.call(*v, c, out);
                }
                // A tuple or array moves its operands (a batched function's `Vec` results
                // among them): their tangents' statements, which read them
                // (`zero_like(&a)`), come first.
                let moves = matches!(e, Expr::Tuple(_) | Expr::Array(_));
                if !moves {
                    out.push(s.clone());
                }
                if active {
                    let mut b = Builder::new(self.g);
                    if let Some(tv) = tangent_of_expr(&mut b, &self.tan, &self.lit, self.rules, e, &Operand::Var(*v))? {
                        out.extend(b.take());
                        if moves {
                            out.push(s.clone());
                        }
                        let name = format!("{}_dot", self.g.vars[*v].name);
                        // Name fresh tangent temporaries after the primal.
                        if let Some(w) = tv.var() {
                            if self.g.vars[w].name == "t" {
                                self.g.vars[w].name = name;
                            }
                            // The tangent has the primal's tangent type, even where the
                            // expression alone does not tell (fields of call results).
                            if self.g.vars[w].ty == Ty::Unknown {
                                self.g.vars[w].ty = self.g.vars[*v].ty.tangent();
                            }
                        }
                        self.tan.insert(*v, tv);
                    } else {
                        out.extend(b.take());
                        if moves {
                            out.push(s.clone());
                        }
                    }
                } else if moves {
                    out.push(s.clone());
                }
            }
            Stmt::Mut(v, init) => {
                out.push(s.clone());
                if self.act.contains(v) {
                    let name = format!("{}_dot", self.g.vars[*v].name);
                    let ty = self.g.vars[*v].ty.tangent();
                    let storage = self.g.vars[*v].storage;
                    let mut b = Builder::new(self.g);
                    let init_t = match init {
                        None => None,
                        // A tape's tangent is a tape too, declared where it lives.
                        Some(Expr::Zeros(_)) if storage != Storage::Stack => Some(Expr::Zeros(ty.clone())),
                        Some(e) => {
                            let tv = tangent_of_expr(&mut b, &self.tan, &self.lit, self.rules, e, &Operand::Var(*v))?;
                            Some(Expr::Use(match tv {
                                Some(t) => t,
                                None => zero_of_ty(&mut b, &ty, &Operand::Var(*v)),
                            }))
                        }
                    };
                    out.extend(b.take());
                    let dv = self.g.new_var(name, ty, true);
                    self.g.vars[dv].storage = storage;
                    out.push(Stmt::Mut(dv, init_t));
                    self.tan.insert(*v, Operand::Var(dv));
                }
            }
            Stmt::Assign(p, op, value) => {
                out.push(s.clone());
                if let Some(dv) = self.t(&Operand::Var(p.var)).and_then(|o| o.var()) {
                    let place = Place {
                        var: dv,
                        idx: p.idx.clone(),
                    };
                    match (self.t(value), op) {
                        (Some(tv), _) => out.push(Stmt::Assign(place, *op, tv)),
                        (None, AssignOp::Set) => {
                            let ty = self.g.vars[p.var].ty.indexed(p.idx.len());
                            let mut b = Builder::new(self.g);
                            let z = zero_of_ty(&mut b, &ty.tangent(), value);
                            out.extend(b.take());
                            out.push(Stmt::Assign(place, AssignOp::Set, z));
                        }
                        (None, _) => {}
                    }
                }
            }
            Stmt::For(l) => {
                let body = self.block(&l.body)?;
                out.push(Stmt::For(Loop { body, ..l.clone() }));
            }
            Stmt::If(c, t, e) => {
                let t2 = self.block(t)?;
                let e2 = self.block(e)?;
                out.push(Stmt::If(c.clone(), t2, e2));
            }
        }
        Ok(())
    }

    /// `let y = g(a)` becomes `let r = g.jvp(a, ȧ); let y = r.0; let ẏ = r.1;`.
    fn call(&mut self, v: VarId, c: &Call, out: &mut Vec<Stmt>) -> Result<(), Diag> {
        let mut b = Builder::new(self.g);
        let mut args = c.args.clone();
        for a in &c.args {
            let t = match (a.op.var().and_then(|w| self.tan.get(&w)), &a.op) {
                (Some(t), _) => t.clone(),
                // A literal's zero tangent is a literal of the type rustc gives it there
                // (`zero_like(&2.0)` would be an f64 even in an f32 function).
                (None, Operand::Float(_)) => Operand::float(0.0),
                (None, Operand::Int(_) | Operand::Bool(_) | Operand::Unit) => Operand::Unit,
                (None, _) => b.let_(Expr::ZeroLike(a.op.clone()), "zero"),
            };
            args.push(Arg {
                op: t,
                by_ref: false,
                by_mut: false,
            });
        }
        let mut modes = c.modes.clone();
        modes.push(Mode::Jvp);
        let call = Call {
            modes,
            args,
            ..c.clone()
        };
        let name = b.f.vars[v].name.clone();
        let r = b.let_ty(
            Expr::Call(call),
            &format!("{name}_jvp"),
            Ty::Tuple(vec![Ty::Unknown, Ty::Unknown]),
        );
        b.push(Stmt::Let(v, Expr::Field(r.clone(), 0)));
        let ty = b.f.vars[v].ty.tangent();
        let dv = b.let_ty(Expr::Field(r, 1), &format!("{name}_dot"), ty);
        out.extend(b.take());
        self.tan.insert(v, dv);
        Ok(())
    }
}

/// The tangent of `e` (whose value is `y`), or `None` if it is structurally zero.
pub fn tangent_of_expr(
    b: &mut Builder,
    tan: &HashMap<VarId, Operand>,
    lit: &HashMap<VarId, Vec<Operand>>,
    rules: &RuleTable,
    e: &Expr,
    y: &Operand,
) -> Result<Option<Operand>, Diag> {
    let t = |o: &Operand| o.var().and_then(|v| tan.get(&v)).cloned();
    Ok(match e {
        Expr::Prim(p, ops) => {
            let Some(rule) = rules.get(*p) else {
                return Err(Diag::new(format!("no derivative rule for `{p:?}`")));
            };
            if rule.zero_derivative || ops.iter().all(|o| t(o).is_none()) {
                return Ok(None);
            }
            let partials = (rule.partials)(b, ops, y);
            let mut terms = Vec::new();
            for (k, part) in partials.into_iter().enumerate() {
                let (Some(part), Some(dk)) = (part, ops.get(k).and_then(&t)) else {
                    continue;
                };
                terms.push(match part {
                    Partial::Mul(d) => b.mul(d, dk),
                    Partial::Div(d) => b.div(dk, d),
                    Partial::Scaled(k, d) => {
                        let d = b.mul(k, d);
                        b.mul(d, dk)
                    }
                });
            }
            b.sum_terms(terms)
        }
        Expr::Call(_) => return Err(Diag::new("internal: call tangents are built by the caller")),
        e => crate::structural::tangent(b, e, &t, lit)?,
    })
}
