//! Jacobians and Hessians of loops whose iterations read a few elements of the input.
//!
//! A function whose body is one loop that writes row `i` of its output from a few elements
//! of its input, or adds one term per iteration into a scalar,
//!
//! ```text
//! let mut y = [0.0; M];                            let mut s = 0.0;
//! for i in 0..M {                                  for i in 0..N - 1 {
//!     y[i] = g(x[i], x[(i + 1) % N], ..);              s += h(x[i], x[i + 1], ..);
//! }                                                }
//! y                                                s
//! ```
//!
//! has a Jacobian whose row `i` is the gradient of iteration `i`'s value with respect to the
//! elements it reads, and a Hessian that is the sum of the iterations' small Hessians. The
//! emitted `jacrev`, `jacfwd` and `hessian` of such a function apply the same transform to
//! the loop body as a function of the `k` elements it reads (`u = [x[i], x[(i + 1) % N],
//! ..]`) and add the small result into the dense one at those elements' indices:
//!
//! ```text
//! let mut jac = [[0.0; N]; M];
//! for i in 0..M {
//!     let u = [x[i], x[(i + 1) % N], ..];
//!     let d = <jacrev of the body in u>;           (k values; k x k for the Hessian)
//!     jac[i][i] += d[0]; jac[i][(i + 1) % N] += d[1]; ..
//! }
//! ```
//!
//! That is `O(M k)` work (`O(N k^2)` for the Hessian) beside the dense result's zeros,
//! instead of one sweep over the whole loop per row or column: the structure of a one-hot
//! basis direction, kept at compile time from the loop's index expressions (compressed
//! Jacobians find the same pattern at run time). Reads that coincide at run time
//! (`(i + 1) % N == (i - 1) % N` for `N = 2`) are separate elements of `u` whose
//! derivatives add into the same place, which is the chain rule through `x -> u`.
//!
//! Only the emitted forms use this (nothing differentiates them again), and only where the
//! shape matches exactly: one differentiated argument, a float array `[F; N]`, no `has_aux`,
//! the body exactly `let mut acc = <constant>; for .. { lets; acc[i] = v | acc += v |
//! acc -= v } acc`, the loop's statements plain `let`s (no calls, branches or inner
//! loops), `x` read only by element, and at most [`MAX_READS`] distinct reads. The values
//! are the sweeps' exactly where an iteration's reads are distinct elements and the
//! output is a vector, except a zero's sign (the sweep's `0 * -a` is `-0`, an element no
//! iteration reads stays `+0`); rounding can differ where reads coincide or terms are
//! summed (in the loop's order instead of the reverse sweep's).

use std::collections::HashMap;

use crate::builder::Builder;
use crate::ir::*;
use crate::rules::RuleTable;
use crate::spec::{Argnums, Options};
use crate::symbol::Transform;
use crate::transforms::{hessian_pass, import, jacfwd_pass, jacrev_pass, Site};

/// The most distinct elements of the input one iteration may read.
pub const MAX_READS: usize = 8;

/// What a separable loop adds into.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `acc[i] = v`: row `i` of a vector output.
    Rows,
    /// `acc += v` or `acc -= v` (`negate`): a scalar output.
    Sum { negate: bool },
}

/// A function of the separable shape.
struct Shape<'a> {
    kind: Kind,
    lp: &'a Loop,
    /// The loop body without its final assignment.
    lets: &'a [Stmt],
    /// The value of an iteration.
    value: Operand,
    /// The distinct index operands of the reads of `x`.
    reads: Vec<Operand>,
}

/// `main`'s separable shape with respect to parameter `x`, if it has one.
fn shape(main: &Func, x: VarId) -> Option<Shape<'_>> {
    // `let mut acc = c; for .. {} acc` (simplified: `simplify` returns `let r = acc; r` as
    // `acc` itself).
    let (acc, init, lp) = match &main.body.0[..] {
        [Stmt::Mut(acc, Some(init)), Stmt::For(lp)] if main.ret == Operand::Var(*acc) => (acc, init, lp),
        _ => return None,
    };
    if expr_operands(init).iter().any(|o| o.var().is_some()) {
        return None;
    }
    let (last, lets) = lp.body.0.split_last()?;
    let Stmt::Assign(place, op, value) = last else {
        return None;
    };
    if place.var != *acc {
        return None;
    }
    let kind = match (&main.vars[*acc].ty, &place.idx[..], op) {
        (Ty::Array(e, _), [Operand::Var(i)], AssignOp::Set) if *i == lp.var && e.is_float() => Kind::Rows,
        (Ty::Float(_), [], AssignOp::Add) => Kind::Sum { negate: false },
        (Ty::Float(_), [], AssignOp::Sub) => Kind::Sum { negate: true },
        _ => return None,
    };
    if value.var() == Some(x) || value.var() == Some(*acc) {
        return None;
    }
    let mut reads: Vec<Operand> = Vec::new();
    for s in lets {
        let Stmt::Let(_, e) = s else { return None };
        if matches!(e, Expr::Call(_)) {
            return None;
        }
        match e {
            Expr::Index(a, idx) if *a == x => {
                let [k] = &idx[..] else { return None };
                if k.var() == Some(x) || k.var() == Some(*acc) {
                    return None;
                }
                if !reads.contains(k) {
                    reads.push(k.clone());
                }
            }
            e => {
                if expr_operands(e)
                    .iter()
                    .any(|o| o.var() == Some(x) || o.var() == Some(*acc))
                {
                    return None;
                }
            }
        }
    }
    if reads.is_empty() || reads.len() > MAX_READS {
        return None;
    }
    Some(Shape {
        kind,
        lp,
        lets,
        value: value.clone(),
        reads,
    })
}

/// The emitted `jacrev`, `jacfwd` or `hessian` (by `o.transform`) of `f` built from the
/// derivatives of its loop's iterations, where `f` has the separable shape (module doc);
/// `None` otherwise. Errors are the transform's own on the iteration's function.
pub fn derivative(f: &Func, o: &Options, site: &Site, rules: &RuleTable) -> Result<Option<Func>, syn::Error> {
    if o.has_aux || matches!(o.argnums, Some(Argnums::Many(_))) {
        return Ok(None);
    }
    let k = match &o.argnums {
        Some(Argnums::One(k, _)) => *k,
        _ => 0,
    };
    let Some(xp) = f.params.get(k) else { return Ok(None) };
    let Ty::Array(elem, _) = &xp.ty else { return Ok(None) };
    if !elem.is_float() {
        return Ok(None);
    }
    let x = xp.var;
    // Index expressions written twice (`x[(i + 1) % n] * x[(i + 1) % n]`) are one read.
    let mut f = f.clone();
    crate::simplify::simplify(&mut f);
    let f = &f;
    let Some(sh) = shape(f, x) else { return Ok(None) };
    let want = match (o.transform, sh.kind) {
        (Transform::Jacrev | Transform::Jacfwd, Kind::Rows) | (Transform::Hessian, Kind::Sum { .. }) => o.transform,
        _ => return Ok(None),
    };
    let usize_ty = Ty::Int(Some("usize".into()));
    // The iteration as a function of the elements it reads: `u`, the loop index, and
    // `f`'s other parameters.
    let kk = sh.reads.len();
    let uty = Ty::Array(elem.clone(), CExpr::Lit(kk as i128));
    let mut it = f.clone();
    let u = it.new_var("u", uty.clone(), false);
    it.params = vec![
        Param {
            var: u,
            ty: uty.clone(),
            by_ref: false,
            span: xp.span,
        },
        Param {
            var: sh.lp.var,
            ty: usize_ty,
            by_ref: false,
            span: sh.lp.span,
        },
    ];
    it.params.extend(f.params.iter().filter(|p| p.var != x).cloned());
    let mut lets = sh.lets.to_vec();
    for s in &mut lets {
        if let Stmt::Let(_, e) = s {
            let at = match e {
                Expr::Index(a, idx) if *a == x => sh.reads.iter().position(|r| Some(r) == idx.first()),
                _ => None,
            };
            if let Some(at) = at {
                *e = Expr::Index(u, vec![Operand::Int(at as i128)]);
            }
        }
    }
    it.body = Block(lets);
    it.ret = sh.value.clone();
    it.ret_ty = (**elem).clone();
    it.name = f.name.clone();
    let mut io = o.clone();
    io.argnums = Some(Argnums::One(0, o.span));
    let d = match want {
        Transform::Jacrev => jacrev_pass(&it, &io, site, rules, false)?,
        Transform::Jacfwd => jacfwd_pass(&it, &io, site, rules, false)?,
        _ => hessian_pass(&it, &io, site, rules, false)?,
    };
    // The dense result, and the loop adding each iteration's derivative into it.
    let mut h = f.clone();
    h.name = format!("{}_{}", f.name, o.transform.suffix());
    let rows = match sh.kind {
        Kind::Rows => array_len(&f.ret_ty),
        Kind::Sum { .. } => array_len(&xp.ty),
    };
    let Some(rows) = rows else { return Ok(None) };
    let jty = Ty::Array(Box::new(xp.ty.clone()), rows);
    let mut b = Builder::new(&mut h);
    let jac = b.let_mut(Some(Expr::Zeros(jty.clone())), "jac", jty.clone());
    let head = b.take();
    let mut body = sh.lets.to_vec();
    let mut b = Builder::new(&mut h);
    let elems: Vec<Operand> = sh
        .reads
        .iter()
        .map(|r| b.let_ty(Expr::Index(x, vec![r.clone()]), "u", (**elem).clone()))
        .collect();
    let uv = b.let_ty(Expr::Array(elems), "u", uty);
    body.extend(b.take());
    let fixed: HashMap<VarId, VarId> = d
        .params
        .iter()
        .zip(&it.params)
        .map(|(dp, ip)| (dp.var, if ip.var == u { uv.var().unwrap_or(u) } else { ip.var }))
        .collect();
    let map = import(&mut h, &d, &fixed);
    let mut dbody = d.body.clone();
    rename_block(&mut dbody, &map);
    body.extend(dbody.0);
    let Some(dv) = d.ret.var().map(|v| map[&v]) else {
        return Ok(None);
    };
    let mut b = Builder::new(&mut h);
    let add = if matches!(sh.kind, Kind::Sum { negate: true }) {
        AssignOp::Sub
    } else {
        AssignOp::Add
    };
    for (a, ra) in sh.reads.iter().enumerate() {
        match sh.kind {
            Kind::Rows => {
                let t = b.let_(Expr::Index(dv, vec![Operand::Int(a as i128)]), "d");
                let place = Place {
                    var: jac,
                    idx: vec![Operand::Var(sh.lp.var), ra.clone()],
                };
                b.push(Stmt::Assign(place, add, t));
            }
            Kind::Sum { .. } => {
                for (c, rc) in sh.reads.iter().enumerate() {
                    let t = b.let_(
                        Expr::Index(dv, vec![Operand::Int(a as i128), Operand::Int(c as i128)]),
                        "d",
                    );
                    let place = Place {
                        var: jac,
                        idx: vec![ra.clone(), rc.clone()],
                    };
                    b.push(Stmt::Assign(place, add, t));
                }
            }
        }
    }
    body.extend(b.take());
    h.body = Block(head);
    h.body.0.push(Stmt::For(Loop {
        var: sh.lp.var,
        lo: sh.lp.lo.clone(),
        hi: sh.lp.hi.clone(),
        rev: sh.lp.rev,
        body: Block(body),
        span: sh.lp.span,
    }));
    let mut b = Builder::new(&mut h);
    let r = b.let_ty(Expr::Use(Operand::Var(jac)), "jac", jty.clone());
    let tail = b.take();
    h.body.0.extend(tail);
    h.ret = r;
    h.ret_ty = jty;
    crate::simplify::simplify(&mut h);
    Ok(Some(h))
}

/// The length of a one-axis array type.
fn array_len(t: &Ty) -> Option<CExpr> {
    match t {
        Ty::Array(_, n) => Some(n.clone()),
        _ => None,
    }
}
