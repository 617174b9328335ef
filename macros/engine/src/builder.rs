//! Emitting IR statements with local, IEEE-exact folding.
//!
//! Only rewrites that give the same bits for every input are made here: `x * 1 = x`,
//! `x * -1 = -x`, `x / 1 = x`, `-(lit) = lit'`, `-(-x) = x`, `(-x) * y = -(x * y)`,
//! `a + (-x) = a - x`, and products and sums of small integer literals. `x + 0` and
//! `0 * x` are never folded (signed zeros, NaN); zeros are kept out of the IR instead.
//! Each of these is reached by some user function (`tests/builder_peepholes.rs` of the
//! engine); folds that no function reached (`x - 0`, `a - (-x)`, `(-x) / b`, `(-x) + b`)
//! were removed.

use std::collections::HashMap;

use crate::ir::*;

/// Appends statements to a block of a function.
pub struct Builder<'f> {
    /// The function whose variable arena is extended.
    pub f: &'f mut Func,
    /// The statements built so far.
    pub out: Vec<Stmt>,
    /// `v -> x` for variables bound to `-x` here (peepholes).
    negs: HashMap<VarId, Operand>,
}

/// `a op b` on two literals, folded only when exact in both f32 and f64 (integers below
/// 2^24): the literal's type is rustc's to choose, and must not change the result.
fn fold_lits(a: &Operand, b: &Operand, op: fn(f64, f64) -> f64) -> Option<Operand> {
    let small_int = |v: f64| v.fract() == 0.0 && v.abs() < 16_777_216.0;
    let (x, y) = (a.float_value()?, b.float_value()?);
    let r = op(x, y);
    (small_int(x) && small_int(y) && small_int(r) && r != 0.0).then(|| Operand::float(r))
}

fn is_lit(o: &Operand, v: f64) -> bool {
    matches!(o, Operand::Float(l) if l.value == v && (v != 0.0 || l.value.is_sign_positive() == v.is_sign_positive()))
}

impl<'f> Builder<'f> {
    /// A builder appending to an empty block.
    pub fn new(f: &'f mut Func) -> Builder<'f> {
        Builder {
            f,
            out: Vec::new(),
            negs: HashMap::new(),
        }
    }
    /// Takes the statements built so far.
    pub fn take(&mut self) -> Vec<Stmt> {
        std::mem::take(&mut self.out)
    }
    /// Appends a statement.
    pub fn push(&mut self, s: Stmt) {
        self.out.push(s);
    }
    /// `let name = e;` with the type inferred.
    pub fn let_(&mut self, e: Expr, name: &str) -> Operand {
        let ty = infer_ty(self.f, &e);
        self.let_ty(e, name, ty)
    }
    /// `let name = e;` as a variable (for operations that take a variable: `Index`).
    pub fn let_var(&mut self, e: Expr, name: &str) -> VarId {
        let ty = infer_ty(self.f, &e);
        let v = self.f.new_var(name, ty, false);
        self.out.push(Stmt::Let(v, e));
        v
    }
    /// `let name: ty = e;`
    pub fn let_ty(&mut self, e: Expr, name: &str, ty: Ty) -> Operand {
        let v = self.f.new_var(name, ty, false);
        self.out.push(Stmt::Let(v, e));
        Operand::Var(v)
    }
    /// `let mut name = e;`
    pub fn let_mut(&mut self, e: Option<Expr>, name: &str, ty: Ty) -> VarId {
        let v = self.f.new_var(name, ty, true);
        self.out.push(Stmt::Mut(v, e));
        v
    }
    /// A float literal.
    pub fn lit(&self, v: f64) -> Operand {
        Operand::float(v)
    }
    /// A primitive, folded where that is exact.
    pub fn prim(&mut self, p: Prim, ops: Vec<Operand>) -> Operand {
        match p {
            Prim::Mul => return self.mul(ops[0].clone(), ops[1].clone()),
            Prim::Div => return self.div(ops[0].clone(), ops[1].clone()),
            Prim::Neg => return self.neg(ops[0].clone()),
            Prim::Add => return self.add(ops[0].clone(), ops[1].clone()),
            Prim::Sub => return self.sub(ops[0].clone(), ops[1].clone()),
            _ => {}
        }
        self.let_(Expr::Prim(p, ops), "t")
    }
    /// `a * b`
    pub fn mul(&mut self, a: Operand, b: Operand) -> Operand {
        if let Some(r) = fold_lits(&a, &b, |x, y| x * y) {
            return r;
        }
        if is_lit(&a, 1.0) {
            return b;
        }
        if is_lit(&b, 1.0) {
            return a;
        }
        if is_lit(&a, -1.0) {
            return self.neg(b);
        }
        if is_lit(&b, -1.0) {
            return self.neg(a);
        }
        // (-x) * y = -(x * y) exactly: keep negations outermost so they cancel.
        if let Some(x) = a.var().and_then(|v| self.negs.get(&v)).cloned() {
            let m = self.mul(x, b);
            return self.neg(m);
        }
        if let Some(y) = b.var().and_then(|v| self.negs.get(&v)).cloned() {
            let m = self.mul(a, y);
            return self.neg(m);
        }
        self.let_(Expr::Prim(Prim::Mul, vec![a, b]), "t")
    }
    /// `a / b`
    pub fn div(&mut self, a: Operand, b: Operand) -> Operand {
        // (`(-x) / b = -(x / b)` is not folded: no numerator is ever a negation built in
        // the same statement, whose tangent or adjoint it is.)
        if is_lit(&b, 1.0) {
            return a;
        }
        self.let_(Expr::Prim(Prim::Div, vec![a, b]), "t")
    }
    /// `-a`
    pub fn neg(&mut self, a: Operand) -> Operand {
        match &a {
            Operand::Float(l) => {
                let text = match l.text.strip_prefix('-') {
                    Some(t) => t.to_string(),
                    None => format!("-{}", l.text),
                };
                return Operand::Float(FloatLit { text, value: -l.value });
            }
            Operand::Var(v) => {
                if let Some(x) = self.negs.get(v) {
                    return x.clone();
                }
            }
            _ => {}
        }
        let r = self.let_(Expr::Prim(Prim::Neg, vec![a.clone()]), "t");
        if let Some(v) = r.var() {
            self.negs.insert(v, a);
        }
        r
    }
    /// `a + b` (`a + (-x)` becomes `a - x`, which is exact: the sum of a forward-mode
    /// tangent whose later partial is negative, as in `ẋ - ẏ`; no standard rule's first
    /// partial is a negation, so `(-x) + b` is not folded).
    pub fn add(&mut self, a: Operand, b: Operand) -> Operand {
        if let Some(r) = fold_lits(&a, &b, |x, y| x + y) {
            return r;
        }
        if let Some(x) = b.var().and_then(|v| self.negs.get(&v)).cloned() {
            return self.sub(a, x);
        }
        self.let_(Expr::Prim(Prim::Add, vec![a, b]), "t")
    }
    /// `a - b`, not folded: only rules (`1 - x²`, `1 - ∂min/∂a`, `y - 1`) and `a + (-x)`
    /// subtract, and never a literal from a literal, a zero, or a negation built here.
    pub fn sub(&mut self, a: Operand, b: Operand) -> Operand {
        self.let_(Expr::Prim(Prim::Sub, vec![a, b]), "t")
    }
    /// A comparison.
    pub fn cmp(&mut self, c: CmpOp, a: Operand, b: Operand) -> Operand {
        self.let_ty(Expr::Cmp(c, a, b), "c", Ty::Bool)
    }
    /// `if c { a } else { b }` on values.
    pub fn select(&mut self, c: Operand, a: Operand, b: Operand) -> Operand {
        self.let_(Expr::Select(c, a, b), "t")
    }
    /// Sum of terms (none: `None`, the structural zero).
    pub fn sum_terms(&mut self, terms: Vec<Operand>) -> Option<Operand> {
        let mut it = terms.into_iter();
        let mut acc = it.next()?;
        for t in it {
            acc = self.add(acc, t);
        }
        Some(acc)
    }
}

/// A zero tangent shaped like `o`: a literal when the type is known.
pub fn zero_of(b: &mut Builder, o: &Operand) -> Operand {
    let ty = b.f.ty_of(o).tangent();
    zero_of_ty(b, &ty, o)
}

/// A zero of tangent type `ty`, shaped like `like` when the type is not known.
pub fn zero_of_ty(b: &mut Builder, ty: &Ty, like: &Operand) -> Operand {
    match ty {
        Ty::Float(_) => b.lit(0.0),
        Ty::Unit => Operand::Unit,
        t if t.is_known() => b.let_ty(Expr::Zeros(t.clone()), "zero", t.clone()),
        _ => b.let_(Expr::ZeroLike(like.clone()), "zero"),
    }
}

/// `body` inside `for v in 0..n` loops, one per `(v, n)`, outermost first.
pub fn wrap_loops(vars: &[VarId], dims: &[CExpr], body: Vec<Stmt>) -> Vec<Stmt> {
    let mut inner = body;
    for (v, n) in vars.iter().zip(dims).rev() {
        inner = vec![Stmt::For(Loop::constant(
            *v,
            CExpr::Lit(0),
            n.clone(),
            Block(inner),
            SrcSpan(proc_macro2::Span::call_site()),
        ))];
    }
    inner
}
