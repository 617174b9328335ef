//! The rows of the rule table for the structural operations: everything an `Expr` does
//! besides a primitive (`rules.rs`) or a call (companions). Each is linear in the operands it
//! differentiates through, so its forward rule maps tangents and its reverse rule is the
//! transpose of that map (as JAX's `ad.deflinear` rules are): `Sum` forward is `Sum` of the
//! tangent, its transpose `Broadcast` of the cotangent; `Repeat` and `Sum`, `Array` and
//! `Index`, `Tuple` and `Field` pair up the same way. The others have derivative zero.
//!
//! Activity analysis (`activity.rs`), forward mode (`jvp.rs`) and reverse mode (`vjp.rs`) read
//! these three functions; none restates them.

use crate::builder::{zero_of, zero_of_ty, Builder};
use crate::error::Diag;
use crate::ir::*;
use crate::rules::Kind;

/// What an expression's derivative is: primitives by their row, calls through the
/// callee's companions (linear in the arguments' tangents), structural operations here.
pub fn kind(e: &Expr) -> Kind {
    match e {
        Expr::Prim(p, _) => p.kind(),
        Expr::Zeros(_)
        | Expr::ZeroLike(_)
        | Expr::Cmp(..)
        | Expr::Bool(..)
        | Expr::Not(_)
        | Expr::StopGrad(_)
        | Expr::Residuals(_)
        | Expr::UnitLane(_)
        | Expr::Len(_)
        | Expr::Rng(..)
        | Expr::IntAsFloat(..) => Kind::ZeroDerivative,
        Expr::Call(_) => Kind::Elementwise,
        Expr::Use(_)
        | Expr::Deref(_)
        | Expr::Splat(_)
        | Expr::Lane(..)
        | Expr::Index(..)
        | Expr::Array(_)
        | Expr::Tuple(_)
        | Expr::Repeat(..)
        | Expr::Field(..)
        | Expr::Cast(..)
        | Expr::CastLike(..)
        | Expr::Sum(_)
        | Expr::Broadcast(..)
        | Expr::Select(..) => Kind::Linear,
    }
}

/// The weight of `e` in the cost model (`cost.rs`): a primitive's from its declaration;
/// a call, a comparison, a select, a cast, an element read, a sum or a broadcast 1;
/// copies and building or taking apart arrays and tuples 0.
pub fn cost(e: &Expr) -> u64 {
    match e {
        Expr::Prim(p, _) => p.cost(),
        // A ChaCha8 block: dearer than a transcendental function.
        Expr::Rng(RngOp::Uniform(_) | RngOp::Normal(_), ..) => 16,
        Expr::Rng(RngOp::FoldIn | RngOp::Sample, ..) => 1,
        Expr::Index(..)
        | Expr::Cmp(..)
        | Expr::Bool(..)
        | Expr::Not(_)
        | Expr::Select(..)
        | Expr::Cast(..)
        | Expr::IntAsFloat(..)
        | Expr::CastLike(..)
        | Expr::Call(_)
        | Expr::Sum(_)
        | Expr::Len(_)
        | Expr::Broadcast(..) => 1,
        Expr::Use(_)
        | Expr::Array(_)
        | Expr::Repeat(..)
        | Expr::Zeros(_)
        | Expr::ZeroLike(_)
        | Expr::Tuple(_)
        | Expr::Field(..)
        | Expr::StopGrad(_)
        | Expr::Residuals(_)
        | Expr::Splat(_)
        | Expr::UnitLane(_)
        | Expr::Lane(..)
        | Expr::Deref(_) => 0,
    }
}

/// The operands through which `e`'s value depends differentiably on its inputs: `e` is
/// active when one of them is.
pub fn differentiable_operands(f: &Func, e: &Expr) -> Vec<Operand> {
    match e {
        _ if kind(e) == Kind::ZeroDerivative => vec![],
        Expr::Prim(p, ops) => ops
            .iter()
            .enumerate()
            .filter(|(k, _)| !p.int_operands().contains(k))
            .map(|(_, o)| o.clone())
            .collect(),
        Expr::Call(c) => c.args.iter().map(|a| a.op.clone()).collect(),
        Expr::Use(a)
        | Expr::Deref(a)
        | Expr::Field(a, _)
        | Expr::Sum(a)
        | Expr::Repeat(a, _)
        | Expr::Splat(a)
        | Expr::Lane(a, _)
        | Expr::CastLike(a, _) => vec![a.clone()],
        Expr::Index(v, _) => vec![Operand::Var(*v)],
        Expr::Array(ops) | Expr::Tuple(ops) => ops.clone(),
        // A cast to a float of a float (an integer has no derivative to carry).
        Expr::Cast(a, t) if t.is_float() && f.ty_of(a).is_differentiable() => vec![a.clone()],
        Expr::Cast(..) => vec![],
        Expr::Broadcast(_, v) => vec![v.clone()],
        Expr::Select(_, a, b) => vec![a.clone(), b.clone()],
        _ => vec![],
    }
}

/// The forward rule of a structural operation: the tangent of `e` from its operands'
/// tangents (`t`, `None`: structurally zero), or `None` if it is structurally zero.
///
/// `lit`: tangents that are literal arrays (basis vectors of `jacfwd`), so an element at a
/// literal index is that literal. Primitives and calls are not structural: `Err`.
pub fn tangent(
    b: &mut Builder,
    e: &Expr,
    t: &dyn Fn(&Operand) -> Option<Operand>,
    lit: &std::collections::HashMap<VarId, Vec<Operand>>,
) -> Result<Option<Operand>, Diag> {
    Ok(match e {
        Expr::Use(a) => match t(a) {
            // A mutable variable's tangent changes later: take a copy.
            Some(Operand::Var(w)) if b.f.vars[w].mutable => Some(b.let_(Expr::Use(Operand::Var(w)), "t")),
            other => other,
        },
        // Tangents of reference parameters are owned values already.
        Expr::Deref(a) => t(a),
        Expr::Index(a, idx) => match t(&Operand::Var(*a)).and_then(|o| o.var()) {
            // An element of a literal tangent (a basis vector) at a literal index.
            Some(da) if lit.contains_key(&da) && matches!(idx.as_slice(), [Operand::Int(_)]) => {
                let j = match idx.as_slice() {
                    [Operand::Int(j)] => usize::try_from(*j).ok(),
                    _ => None,
                };
                match j.and_then(|j| lit.get(&da).and_then(|ops| ops.get(j))) {
                    Some(Operand::Float(z)) if z.value == 0.0 => None,
                    Some(o) => Some(o.clone()),
                    None => Some(b.let_(Expr::Index(da, idx.clone()), "t")),
                }
            }
            Some(da) => Some(b.let_(Expr::Index(da, idx.clone()), "t")),
            None => None,
        },
        Expr::Array(ops) | Expr::Tuple(ops) => {
            if ops.iter().all(|o| t(o).is_none()) {
                return Ok(None);
            }
            let mut elems = Vec::new();
            for o in ops {
                elems.push(match t(o) {
                    Some(x) => x,
                    None => zero_of(b, o),
                });
            }
            let e = if matches!(e, Expr::Array(_)) {
                Expr::Array(elems)
            } else {
                Expr::Tuple(elems)
            };
            Some(b.let_(e, "t"))
        }
        Expr::Repeat(a, n) => t(a).map(|x| b.let_(Expr::Repeat(x, n.clone()), "t")),
        Expr::Field(a, k) => t(a).map(|x| b.let_(Expr::Field(x, *k), "t")),
        Expr::Cast(a, ty) => t(a).map(|x| b.let_(Expr::Cast(x, ty.clone()), "t")),
        Expr::CastLike(a, like) => t(a).map(|x| b.let_(Expr::CastLike(x, like.clone()), "t")),
        Expr::Sum(a) => t(a).map(|x| b.let_(Expr::Sum(x), "t")),
        Expr::Splat(a) => t(a).map(|x| b.let_(Expr::Splat(x), "t")),
        Expr::Lane(a, l) => t(a).map(|x| b.let_(Expr::Lane(x, l.clone()), "t")),
        Expr::Broadcast(like, v) => t(v).map(|x| b.let_(Expr::Broadcast(like.clone(), x), "t")),
        Expr::Select(c, x, z) => {
            let (tx, tz) = (t(x), t(z));
            if tx.is_none() && tz.is_none() {
                return Ok(None);
            }
            let tx = match tx {
                Some(v) => v,
                None => zero_of(b, x),
            };
            let tz = match tz {
                Some(v) => v,
                None => zero_of(b, z),
            };
            Some(b.select(c.clone(), tx, tz))
        }
        _ if kind(e) == Kind::ZeroDerivative => None,
        _ => return Err(Diag::new("internal: primitives and calls have no structural rule")),
    })
}

/// A cotangent sent back to an operand by a transpose rule.
#[derive(Clone, Debug)]
pub enum Contribution {
    /// `ō += c`.
    To(Operand, Operand),
    /// `ā[idx] += c`: the transpose of `Index`.
    Element(VarId, Vec<Operand>, Operand),
    /// Field `k` of the tuple `ō` gets `c`: the transpose of `Field`.
    Field(Operand, usize, Operand),
}

/// The reverse rule of a structural operation: what the cotangent `tb` of `e` sends back to
/// each operand (only to operands for which `active` holds). Primitives and calls are not
/// structural: `Err`.
pub fn transpose(
    b: &mut Builder,
    e: &Expr,
    tb: Operand,
    active: &dyn Fn(&Operand) -> bool,
) -> Result<Vec<Contribution>, Diag> {
    use Contribution::*;
    let mut out = Vec::new();
    match e {
        Expr::Use(a) | Expr::Deref(a) => out.push(To(a.clone(), tb)),
        Expr::Index(a, idx) => out.push(Element(*a, idx.clone(), tb)),
        Expr::Array(ops) => {
            let tv = match tb {
                Operand::Var(v) => v,
                other => b.let_var(Expr::Use(other), "t"),
            };
            for (k, o) in ops.iter().enumerate() {
                if active(o) {
                    let c = b.let_(Expr::Index(tv, vec![Operand::Int(k as i128)]), "t");
                    out.push(To(o.clone(), c));
                }
            }
        }
        Expr::Repeat(a, _) => out.push(To(a.clone(), b.let_(Expr::Sum(tb), "t"))),
        Expr::Tuple(ops) => {
            for (k, o) in ops.iter().enumerate() {
                if active(o) {
                    let c = b.let_(Expr::Field(tb.clone(), k), "t");
                    out.push(To(o.clone(), c));
                }
            }
        }
        Expr::Field(a, k) => out.push(Field(a.clone(), *k, tb)),
        Expr::Cast(a, _) => {
            // Back to the source's type; where only rustc knows it, through `cast_like`.
            let c = match b.f.ty_of(a) {
                src @ Ty::Float(Some(_)) => b.let_(Expr::Cast(tb, src), "t"),
                _ => b.let_(Expr::CastLike(tb, a.clone()), "t"),
            };
            out.push(To(a.clone(), c));
        }
        Expr::CastLike(a, _) => out.push(To(a.clone(), b.let_(Expr::CastLike(tb, a.clone()), "t"))),
        Expr::Sum(a) => out.push(To(a.clone(), b.let_(Expr::Broadcast(a.clone(), tb), "t"))),
        Expr::Broadcast(_, v) => out.push(To(v.clone(), b.let_(Expr::Sum(tb), "t"))),
        // The transpose of a splat sums the lanes: batched kernels are not differentiated
        // (a derivative is taken before `vmap`, inside the kernel).
        Expr::Splat(_) | Expr::Lane(..) => return Err(Diag::new("internal: a batched kernel is not differentiated")),
        Expr::Select(c, x, z) => {
            for (o, first) in [(x, true), (z, false)] {
                if !active(o) {
                    continue;
                }
                let zero = zero_of_ty(b, &b.f.ty_of(o).tangent(), &tb);
                let s = if first {
                    b.select(c.clone(), tb.clone(), zero)
                } else {
                    b.select(c.clone(), zero, tb.clone())
                };
                out.push(To(o.clone(), s));
            }
        }
        _ if kind(e) == Kind::ZeroDerivative => {}
        _ => return Err(Diag::new("internal: primitives and calls have no structural rule")),
    }
    Ok(out)
}
