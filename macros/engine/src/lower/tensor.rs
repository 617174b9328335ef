//! nalgebra operations inside annotated functions: `W * x`, `a + b`, `s * v`,
//! `transpose()`, `dot`, `norm`, `map(|x| ..)`, .. on statically sized matrices and vectors,
//! lowered to loops over the elements.
//!
//! A nalgebra value computed in the body is an array of the IR: a column vector `R x 1` is
//! `[T; R]` (read `v[i]`), any other matrix `[[T; C]; R]` (read `a[i][j]`); an argument
//! stays a nalgebra matrix (read `m[(i, j)]`). Every operation writes a fresh array once,
//! element by element, in loops over its rows and columns, so every transform (forward,
//! reverse, `vmap` on lanes) treats it as the array code it already handles: the
//! derivative of `W * x` is the loops of `Wᵀ ȳ` and `ȳ xᵀ`. The original function keeps
//! nalgebra's operators, so its values may differ from the generated ones by rounding
//! where nalgebra sums in another order.
//!
//! The shapes are static (`SMatrix<T, R, C>`, `SVector`, the aliases); a mismatch the
//! signature shows (`SMatrix<_, 3, 4> * SVector<_, 3>`) is a compile error at the
//! operator. A float array of the IR is a tensor only in these operations: in Rust the
//! body cannot add or multiply plain arrays, so such code reaches here only from
//! nalgebra values.

use super::*;

/// What an elementwise operation computes from the elements of one or two tensors.
type ElemFn<'a, L> = dyn FnMut(&mut L, Operand, Option<Operand>) -> Option<Operand> + 'a;

/// How a tensor operand's elements are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A nalgebra value (an argument): `m[(i, j)]`.
    Matrix,
    /// `[T; R]`, a column vector: `v[i]`.
    Column,
    /// `[[T; C]; R]`: `a[i][j]`.
    Rows,
    /// A nalgebra matrix passed as its columns, `[[T; R]; C]`: `a[j][i]`.
    Columns,
}

/// A tensor operand's shape and element type.
#[derive(Clone, Debug)]
pub(super) struct Shape {
    rows: CExpr,
    cols: CExpr,
    kind: Kind,
    elem: Ty,
}

impl Shape {
    fn same(&self, o: &Shape) -> bool {
        self.rows == o.rows && self.cols == o.cols
    }
    fn text(&self) -> String {
        format!("{} x {}", cexpr_text(&self.rows), cexpr_text(&self.cols))
    }
}

fn cexpr_text(c: &CExpr) -> String {
    match c {
        CExpr::Lit(v) => v.to_string(),
        CExpr::Path(p) => p.clone(),
        CExpr::Bin(o, a, b) => format!("({} {o} {})", cexpr_text(a), cexpr_text(b)),
        CExpr::AsUsize(a) | CExpr::Lift(a, _) => cexpr_text(a),
    }
}

/// The nalgebra methods supported on matrices and vectors in annotated functions.
pub(super) const TENSOR_METHODS: &str =
    "`transpose`, `dot`, `norm`, `norm_squared`, `component_mul`, `component_div`, `sum`, `add_scalar`, `map(|x| ..)`";

impl Lowerer<'_> {
    /// The shape of a tensor operand: a static nalgebra matrix, or a float array computed
    /// by a tensor operation.
    pub(super) fn tensor_shape(&self, op: &Operand) -> Option<Shape> {
        if let (Some(v), Ty::Array(e, c)) = (op.var(), self.func.ty_of(op)) {
            if self.columns.contains(&v) {
                if let Ty::Array(e2, r) = *e {
                    return Some(Shape {
                        rows: r,
                        cols: c,
                        kind: Kind::Columns,
                        elem: *e2,
                    });
                }
            }
        }
        match self.func.ty_of(op) {
            Ty::Matrix {
                elem,
                rows: Dim::Static(r),
                cols: Dim::Static(c),
            } if elem.is_float() => Some(Shape {
                rows: r,
                cols: c,
                kind: Kind::Matrix,
                elem: *elem,
            }),
            Ty::Array(e, r) if e.is_float() => Some(Shape {
                rows: r,
                cols: CExpr::Lit(1),
                kind: Kind::Column,
                elem: *e,
            }),
            Ty::Array(e, r) => match *e {
                Ty::Array(e2, c) if e2.is_float() => Some(Shape {
                    rows: r,
                    cols: c,
                    kind: Kind::Rows,
                    elem: *e2,
                }),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether `op` is a nalgebra value (a matrix argument) or a tensor computed from one.
    fn is_nalgebra(&self, op: &Operand) -> bool {
        matches!(self.func.ty_of(op), Ty::Matrix { .. }) || op.var().is_some_and(|v| self.tensors.contains(&v))
    }

    /// Element `(i, j)` of a tensor operand.
    fn t_get(&mut self, op: &Operand, s: &Shape, i: &Operand, j: &Operand) -> Option<Operand> {
        let v = op.var()?;
        let idx = match s.kind {
            Kind::Matrix => vec![i.clone(), j.clone()],
            Kind::Column => vec![i.clone()],
            Kind::Rows => vec![i.clone(), j.clone()],
            Kind::Columns => vec![j.clone(), i.clone()],
        };
        Some(self.let_(Expr::Index(v, idx)))
    }

    /// A fresh tensor of `rows x cols` (zeros), written element by element after.
    fn t_new(&mut self, rows: CExpr, cols: CExpr, elem: Ty) -> (VarId, Shape) {
        let column = cols.lit() == Some(1);
        let ty = if column {
            Ty::Array(Box::new(elem.clone()), rows.clone())
        } else {
            Ty::Array(Box::new(Ty::Array(Box::new(elem.clone()), cols.clone())), rows.clone())
        };
        let v = self.func.new_var("m", ty.clone(), true);
        self.push(Stmt::Mut(v, Some(Expr::Zeros(ty))));
        self.tensors.insert(v);
        let kind = if column { Kind::Column } else { Kind::Rows };
        (v, Shape { rows, cols, kind, elem })
    }

    fn t_set(&mut self, v: VarId, s: &Shape, i: &Operand, j: &Operand, val: Operand) {
        let idx = match s.kind {
            Kind::Column => vec![i.clone()],
            _ => vec![i.clone(), j.clone()],
        };
        self.push(Stmt::Assign(Place { var: v, idx }, AssignOp::Set, val));
    }

    /// `for i in 0..n { body(i) }`.
    fn t_loop(
        &mut self,
        n: &CExpr,
        span: proc_macro2::Span,
        body: impl FnOnce(&mut Self, Operand) -> Option<()>,
    ) -> Option<()> {
        self.t_loop_from(0, n, span, body)
    }

    /// `for i in lo..n { body(i) }`.
    fn t_loop_from(
        &mut self,
        lo: i128,
        n: &CExpr,
        span: proc_macro2::Span,
        body: impl FnOnce(&mut Self, Operand) -> Option<()>,
    ) -> Option<()> {
        let iv = self.func.new_var("i", Ty::Int(Some("usize".into())), false);
        let (stmts, end) = self.sub_block(|lw| End::Value(body(lw, Operand::Var(iv)).map(|()| Operand::Unit)));
        let End::Value(Some(_)) = end else { return None };
        self.push(Stmt::For(Loop::constant(
            iv,
            CExpr::Lit(lo),
            n.clone(),
            Block(stmts),
            SrcSpan(span),
        )));
        Some(())
    }

    /// `body(i, j)` for every element of a `rows x cols` shape (one loop for a column).
    fn t_each(
        &mut self,
        s: &Shape,
        span: proc_macro2::Span,
        mut body: impl FnMut(&mut Self, &Operand, &Operand) -> Option<()>,
    ) -> Option<()> {
        let cols = s.cols.clone();
        self.t_loop(&s.rows.clone(), span, |lw, i| {
            if cols.lit() == Some(1) {
                body(lw, &i, &Operand::Int(0))
            } else {
                lw.t_loop(&cols, span, |lw, j| body(lw, &i, &j))
            }
        })
    }

    /// The tensor `f(a[i, j], b[i, j])` (or `f(a[i, j])`) of `a`'s shape.
    fn t_map(
        &mut self,
        a: &Operand,
        sa: &Shape,
        b: Option<(&Operand, &Shape)>,
        span: proc_macro2::Span,
        f: &mut ElemFn<'_, Self>,
    ) -> Option<Operand> {
        let (y, sy) = self.t_new(sa.rows.clone(), sa.cols.clone(), sa.elem.clone());
        self.t_each(sa, span, |lw, i, j| {
            let x = lw.t_get(a, sa, i, j)?;
            let z = match b {
                Some((b, sb)) => Some(lw.t_get(b, sb, i, j)?),
                None => None,
            };
            let v = f(lw, x, z)?;
            lw.t_set(y, &sy, i, j, v);
            Some(())
        })?;
        Some(Operand::Var(y))
    }

    /// `Σ f(a[i, j], b[i, j])` over the elements, as a float.
    fn t_reduce(
        &mut self,
        a: &Operand,
        sa: &Shape,
        b: Option<(&Operand, &Shape)>,
        span: proc_macro2::Span,
        f: &mut ElemFn<'_, Self>,
    ) -> Option<Operand> {
        let acc = self.func.new_var("s", sa.elem.clone(), true);
        self.push(Stmt::Mut(acc, Some(Expr::Zeros(sa.elem.clone()))));
        self.t_each(sa, span, |lw, i, j| {
            let x = lw.t_get(a, sa, i, j)?;
            let z = match b {
                Some((b, sb)) => Some(lw.t_get(b, sb, i, j)?),
                None => None,
            };
            let v = f(lw, x, z)?;
            lw.push(Stmt::Assign(Place { var: acc, idx: vec![] }, AssignOp::Add, v));
            Some(())
        })?;
        Some(self.let_(Expr::Use(Operand::Var(acc))))
    }

    /// `l op r` where an operand is a nalgebra value: `Some(result)` (or `Some(None)` after
    /// an error), `None` when neither operand is one.
    pub(super) fn tensor_binary(
        &mut self,
        p: Prim,
        l: &Operand,
        r: &Operand,
        op: &syn::BinOp,
    ) -> Option<Option<Operand>> {
        if !self.is_nalgebra(l) && !self.is_nalgebra(r) {
            return None;
        }
        let span = op.span();
        let (sl, sr) = (self.tensor_shape(l), self.tensor_shape(r));
        let scalar = |lw: &Self, o: &Operand| lw.func.ty_of(o).is_float() || matches!(o, Operand::Float(_));
        let out = match (p, &sl, &sr) {
            (Prim::Add | Prim::Sub, Some(a), Some(b)) => {
                if !a.same(b) {
                    self.err(
                        op,
                        format!(
                            "the shapes differ: {} and {}\nhint: `+` and `-` take two matrices of one shape",
                            a.text(),
                            b.text()
                        ),
                    );
                    return Some(None);
                }
                self.t_map(l, a, Some((r, b)), span, &mut |lw, x, y| Some(lw.prim(p, vec![x, y?])))
            }
            (Prim::Mul, Some(a), Some(b)) => {
                if a.cols != b.rows {
                    self.err(
                        op,
                        format!(
                            "a {} matrix times a {} matrix: the columns of the left must match the rows of the right\nhint: check the shapes in the signature, or transpose one side with `.transpose()`",
                            a.text(),
                            b.text()
                        ),
                    );
                    return Some(None);
                }
                self.matmul(l, a, r, b, span)
            }
            (Prim::Mul, Some(a), None) if scalar(self, r) => self.t_map(l, a, None, span, &mut |lw, x, _| {
                Some(lw.prim(Prim::Mul, vec![x, r.clone()]))
            }),
            (Prim::Mul, None, Some(b)) if scalar(self, l) => self.t_map(r, b, None, span, &mut |lw, y, _| {
                Some(lw.prim(Prim::Mul, vec![l.clone(), y]))
            }),
            (Prim::Div, Some(a), None) if scalar(self, r) => self.t_map(l, a, None, span, &mut |lw, x, _| {
                Some(lw.prim(Prim::Div, vec![x, r.clone()]))
            }),
            _ => {
                self.err(
                    op,
                    "this operator is not supported on nalgebra values here\nhint: `+` and `-` between equal shapes, `*` of matrices or by a float, `/` by a float",
                );
                return Some(None);
            }
        };
        Some(out)
    }

    /// `a * b`: `y[i, j] = Σ_k a[i, k] b[k, j]`, summed in `k` order from the first product.
    fn matmul(&mut self, a: &Operand, sa: &Shape, b: &Operand, sb: &Shape, span: proc_macro2::Span) -> Option<Operand> {
        if matches!(sa.kind, Kind::Matrix | Kind::Columns) {
            return self.matmul_by_columns(a, sa, b, sb, span);
        }
        let (y, sy) = self.t_new(sa.rows.clone(), sb.cols.clone(), sa.elem.clone());
        let inner = sa.cols.clone();
        self.t_each(&sy.clone(), span, |lw, i, j| {
            let acc = lw.func.new_var("s", sa.elem.clone(), true);
            let first = {
                let x = lw.t_get(a, sa, i, &Operand::Int(0))?;
                let z = lw.t_get(b, sb, &Operand::Int(0), j)?;
                lw.prim(Prim::Mul, vec![x, z])
            };
            lw.push(Stmt::Mut(acc, Some(Expr::Use(first))));
            let iv = lw.func.new_var("k", Ty::Int(Some("usize".into())), false);
            let k = Operand::Var(iv);
            let (stmts, end) = lw.sub_block(|lw| {
                let r = (|| {
                    let x = lw.t_get(a, sa, i, &k)?;
                    let z = lw.t_get(b, sb, &k, j)?;
                    let m = lw.prim(Prim::Mul, vec![x, z]);
                    lw.push(Stmt::Assign(Place { var: acc, idx: vec![] }, AssignOp::Add, m));
                    Some(Operand::Unit)
                })();
                End::Value(r)
            });
            let End::Value(Some(_)) = end else { return None };
            lw.push(Stmt::For(Loop::constant(
                iv,
                CExpr::Lit(1),
                inner.clone(),
                Block(stmts),
                SrcSpan(span),
            )));
            let v = lw.let_(Expr::Use(Operand::Var(acc)));
            lw.t_set(y, &sy, i, j, v);
            Some(())
        })?;
        Some(Operand::Var(y))
    }

    /// `a * b` with `a` a nalgebra matrix (stored by columns): column `j` of the result is
    /// `a[:, 0] b[0, j]`, then `+= a[:, k] b[k, j]` for each `k` in order, so the inner
    /// loops run down `a`'s contiguous columns (nalgebra's own order, the same sums as
    /// row by row).
    fn matmul_by_columns(
        &mut self,
        a: &Operand,
        sa: &Shape,
        b: &Operand,
        sb: &Shape,
        span: proc_macro2::Span,
    ) -> Option<Operand> {
        let (y, sy) = self.t_new(sa.rows.clone(), sb.cols.clone(), sa.elem.clone());
        let column = Shape {
            rows: sa.rows.clone(),
            cols: CExpr::Lit(1),
            kind: sy.kind,
            elem: sa.elem.clone(),
        };
        let one_column = |lw: &mut Self, j: &Operand| -> Option<()> {
            lw.t_each(&column, span, |lw, i, _| {
                let x = lw.t_get(a, sa, i, &Operand::Int(0))?;
                let z = lw.t_get(b, sb, &Operand::Int(0), j)?;
                let p = lw.prim(Prim::Mul, vec![x, z]);
                lw.t_set(y, &sy, i, j, p);
                Some(())
            })?;
            lw.t_loop_from(1, &sa.cols.clone(), span, |lw, k| {
                let z = lw.t_get(b, sb, &k, j)?;
                lw.t_each(&column, span, |lw, i, _| {
                    let x = lw.t_get(a, sa, i, &k)?;
                    let p = lw.prim(Prim::Mul, vec![x, z.clone()]);
                    let idx = match sy.kind {
                        Kind::Column => vec![i.clone()],
                        _ => vec![i.clone(), j.clone()],
                    };
                    lw.push(Stmt::Assign(Place { var: y, idx }, AssignOp::Add, p));
                    Some(())
                })
            })
        };
        if sb.cols.lit() == Some(1) {
            one_column(self, &Operand::Int(0))?;
        } else {
            self.t_loop(&sb.cols.clone(), span, |lw, j| one_column(lw, &j))?;
        }
        Some(Operand::Var(y))
    }

    /// A nalgebra constructor with a static shape: `Some(result)` (or `Some(None)` after an
    /// error), `None` when `c` is no call of one.
    pub(super) fn tensor_constructor(&mut self, c: &syn::ExprCall) -> Option<Option<Operand>> {
        let syn::Expr::Path(p) = &*c.func else { return None };
        let segs: Vec<&syn::PathSegment> = p.path.segments.iter().collect();
        let [.., ty_seg, f] = segs.as_slice() else { return None };
        let ty = ty_seg.ident.to_string();
        let method = f.ident.to_string();
        if !matches!(method.as_str(), "zeros" | "new" | "from_element" | "from_fn") {
            return None;
        }
        let generic: Vec<&syn::GenericArgument> = match &ty_seg.arguments {
            syn::PathArguments::AngleBracketed(a) => a.args.iter().collect(),
            _ => Vec::new(),
        };
        let dim = |lw: &mut Self, g: &syn::GenericArgument| -> Option<CExpr> {
            match g {
                syn::GenericArgument::Const(e) => lw.cexpr(e),
                syn::GenericArgument::Type(syn::Type::Path(tp)) => {
                    tp.path.get_ident().map(|i| CExpr::Path(i.to_string()))
                }
                _ => None,
            }
        };
        // The element type: the first generic argument, else the function's float.
        let float = self
            .func
            .params
            .iter()
            .find_map(|p| p.ty.float_ty())
            .unwrap_or(FloatTy::F64);
        let elem_of = |g: Option<&&syn::GenericArgument>| match g {
            Some(syn::GenericArgument::Type(syn::Type::Path(tp))) if tp.path.is_ident("f32") => {
                Ty::Float(Some(FloatTy::F32))
            }
            Some(syn::GenericArgument::Type(syn::Type::Path(tp))) if tp.path.is_ident("f64") => {
                Ty::Float(Some(FloatTy::F64))
            }
            _ => Ty::Float(Some(float)),
        };
        let (rows, cols, elem) = match ty.as_str() {
            "SVector" if generic.len() == 2 => (dim(self, generic[1]), Some(CExpr::Lit(1)), elem_of(generic.first())),
            "SMatrix" if generic.len() == 3 => (dim(self, generic[1]), dim(self, generic[2]), elem_of(generic.first())),
            "SVector" | "SMatrix" => {
                self.err(&ty_seg.ident, format!("the shape of this `{ty}` is not written here\nhint: give it in the path, `SVector::<f64, 3>::{method}(..)`, `SMatrix::<f64, 2, 3>::{method}(..)`"));
                return Some(None);
            }
            n => match super::nalgebra_alias_shape(n) {
                Some((r, c)) => (
                    Some(CExpr::Lit(i128::from(r))),
                    Some(CExpr::Lit(i128::from(c))),
                    elem_of(generic.first()),
                ),
                None => return None,
            },
        };
        let (Some(rows), Some(cols)) = (rows, cols) else {
            self.err(
                &ty_seg.ident,
                "the shape must be a literal, a `const` or a const generic parameter",
            );
            return Some(None);
        };
        let span = f.ident.span();
        let shape = Shape {
            rows: rows.clone(),
            cols: cols.clone(),
            kind: if cols.lit() == Some(1) {
                Kind::Column
            } else {
                Kind::Rows
            },
            elem: elem.clone(),
        };
        let n_args = c.args.len();
        let want = match method.as_str() {
            "zeros" => Some(0),
            "from_element" | "from_fn" => Some(1),
            _ => match (rows.lit(), cols.lit()) {
                (Some(r), Some(c)) => usize::try_from(r * c).ok(),
                _ => None,
            },
        };
        if want != Some(n_args) {
            let msg = match want {
                Some(k) => format!("`{ty}::{method}` takes {k} argument(s) here\nhint: `new` takes the elements row by row, one per element of the shape in the path"),
                None => format!("`{ty}::{method}` needs a literal shape"),
            };
            self.err(&f.ident, msg);
            return Some(None);
        }
        let (y, sy) = self.t_new(rows, cols.clone(), elem);
        let r = match method.as_str() {
            "zeros" => Some(()),
            "from_element" => {
                let Some(x) = self.expr(&c.args[0]) else {
                    return Some(None);
                };
                self.t_each(&shape, span, |lw, i, j| {
                    lw.t_set(y, &sy, i, j, x.clone());
                    Some(())
                })
            }
            "from_fn" => {
                let syn::Expr::Closure(cl) = &c.args[0] else {
                    self.err(
                        &c.args[0],
                        "`from_fn` takes a closure of the row and column: `|i, j| ..`",
                    );
                    return Some(None);
                };
                let names: Vec<String> = cl
                    .inputs
                    .iter()
                    .map(|p| match p {
                        syn::Pat::Ident(pi) => pi.ident.to_string(),
                        syn::Pat::Type(pt) => match &*pt.pat {
                            syn::Pat::Ident(pi) => pi.ident.to_string(),
                            _ => "_".into(),
                        },
                        _ => "_".into(),
                    })
                    .collect();
                if names.len() != 2 {
                    self.err(
                        &cl.inputs,
                        "`from_fn`'s closure takes the row and the column: `|i, j| ..`",
                    );
                    return Some(None);
                }
                let body = (*cl.body).clone();
                self.t_each(&shape, span, |lw, i, j| {
                    lw.scopes.push(HashMap::new());
                    for (n, o) in names.iter().zip([i, j]) {
                        if n == "_" {
                            continue;
                        }
                        let v = lw.let_named(Expr::Use(o.clone()), n, Some(Ty::Int(Some("usize".into()))));
                        if let Operand::Var(vid) = v {
                            lw.bind(n, vid);
                        }
                    }
                    let x = lw.expr(&body);
                    lw.scopes.pop();
                    lw.t_set(y, &sy, i, j, x?);
                    Some(())
                })
            }
            _ => {
                // `new(..)`: nalgebra's argument order is row by row.
                let (Some(r), Some(cc)) = (shape.rows.lit(), shape.cols.lit()) else {
                    return Some(None);
                };
                let mut ok = Some(());
                'all: for i in 0..r {
                    for j in 0..cc {
                        let k = usize::try_from(i * cc + j).unwrap_or(0);
                        let Some(x) = self.expr(&c.args[k]) else {
                            ok = None;
                            break 'all;
                        };
                        self.t_set(y, &sy, &Operand::Int(i), &Operand::Int(j), x);
                    }
                }
                ok
            }
        };
        Some(r.map(|()| Operand::Var(y)))
    }

    /// `v[(i, 0)]` of a nalgebra vector passed as `[T; N]` reads `v[i]`.
    pub(super) fn vector_index(&self, v: VarId, idx_exprs: &mut [&syn::Expr]) {
        let vector = self.tensors.contains(&v)
            && !self.columns.contains(&v)
            && matches!(&self.func.vars[v].ty, Ty::Array(e, _) if e.is_float());
        if let (true, Some(syn::Expr::Tuple(t))) = (vector, idx_exprs.first().copied()) {
            if t.elems.len() == 2 {
                idx_exprs[0] = &t.elems[0];
            }
        }
    }

    /// `m[(i, j)]` of a matrix passed as its columns reads `m[j][i]`.
    pub(super) fn column_order(&self, v: VarId, idx_exprs: &[&syn::Expr], idx: &mut [Operand]) {
        if self.columns.contains(&v) && matches!(idx_exprs.first(), Some(syn::Expr::Tuple(t)) if t.elems.len() == 2) {
            idx.swap(0, 1);
        }
    }

    /// The function's result `op`, as the nalgebra matrix its signature returns when `op`
    /// is a tensor computed in the body (element by element into a zero matrix).
    pub(super) fn tensor_result(&mut self, op: Operand) -> Operand {
        let ret = self.func.ret_ty.clone();
        let (Some(v), Ty::Matrix { .. }) = (op.var(), &ret) else {
            return op;
        };
        if !self.tensors.contains(&v) {
            return op;
        }
        let Some(s) = self.tensor_shape(&op) else { return op };
        let y = self.func.new_var("out", ret.clone(), true);
        self.push(Stmt::Mut(y, Some(Expr::Zeros(ret))));
        let r = self.t_each(&s, proc_macro2::Span::call_site(), |lw, i, j| {
            let x = lw.t_get(&op, &s, i, j)?;
            lw.push(Stmt::Assign(
                Place {
                    var: y,
                    idx: vec![i.clone(), j.clone()],
                },
                AssignOp::Set,
                x,
            ));
            Some(())
        });
        match r {
            Some(()) => self.let_(Expr::Use(Operand::Var(y))),
            None => op,
        }
    }

    /// `-a` of a nalgebra value.
    pub(super) fn tensor_neg(&mut self, a: &Operand, span: proc_macro2::Span) -> Option<Option<Operand>> {
        if !self.is_nalgebra(a) {
            return None;
        }
        let s = self.tensor_shape(a)?;
        Some(self.t_map(a, &s, None, span, &mut |lw, x, _| Some(lw.prim(Prim::Neg, vec![x]))))
    }

    /// A method of a nalgebra value: `Some(result)` (or `Some(None)` after an error),
    /// `None` when the receiver is none.
    pub(super) fn tensor_method(&mut self, m: &syn::ExprMethodCall, recv: &Operand) -> Option<Option<Operand>> {
        if !self.is_nalgebra(recv) {
            return None;
        }
        let Some(s) = self.tensor_shape(recv) else {
            self.err(&m.receiver, "a nalgebra value of run-time size: its operations are not supported yet (`DVector`, `DMatrix` are read element by element)");
            return Some(None);
        };
        let name = m.method.to_string();
        let span = m.method.span();
        let nargs = |n: usize, lw: &mut Self| {
            if m.args.len() != n {
                lw.err(&m.method, format!("`{name}` takes {n} argument(s)"));
                false
            } else {
                true
            }
        };
        // The other tensor of `dot`, `component_mul`, .. (`&b` or `b`).
        let other = |lw: &mut Self| -> Option<(Operand, Shape)> {
            let e = match &m.args[0] {
                syn::Expr::Reference(r) => &*r.expr,
                e => e,
            };
            let o = lw.expr(e)?;
            match lw.tensor_shape(&o) {
                Some(so) if so.same(&s) => Some((o, so)),
                Some(so) => {
                    lw.err(
                        &m.args[0],
                        format!(
                            "the shapes differ: {} and {}\nhint: `{name}` takes a matrix of the receiver's shape",
                            s.text(),
                            so.text()
                        ),
                    );
                    None
                }
                None => {
                    lw.err(
                        &m.args[0],
                        "a nalgebra vector or matrix of the receiver's shape is expected here",
                    );
                    None
                }
            }
        };
        let out = match name.as_str() {
            "transpose" => {
                if !nargs(0, self) {
                    return Some(None);
                }
                let (y, sy) = self.t_new(s.cols.clone(), s.rows.clone(), s.elem.clone());
                let r = self.t_each(&s, span, |lw, i, j| {
                    let x = lw.t_get(recv, &s, i, j)?;
                    lw.t_set(y, &sy, j, i, x);
                    Some(())
                });
                r.map(|()| Operand::Var(y))
            }
            "dot" | "component_mul" | "component_div" => {
                if !nargs(1, self) {
                    return Some(None);
                }
                let Some((o, so)) = other(self) else { return Some(None) };
                match name.as_str() {
                    "dot" => self.t_reduce(recv, &s, Some((&o, &so)), span, &mut |lw, x, y| {
                        Some(lw.prim(Prim::Mul, vec![x, y?]))
                    }),
                    "component_mul" => self.t_map(recv, &s, Some((&o, &so)), span, &mut |lw, x, y| {
                        Some(lw.prim(Prim::Mul, vec![x, y?]))
                    }),
                    _ => self.t_map(recv, &s, Some((&o, &so)), span, &mut |lw, x, y| {
                        Some(lw.prim(Prim::Div, vec![x, y?]))
                    }),
                }
            }
            "norm_squared" | "norm" | "sum" => {
                if !nargs(0, self) {
                    return Some(None);
                }
                let sq = name != "sum";
                let t = self.t_reduce(recv, &s, None, span, &mut |lw, x, _| {
                    Some(if sq { lw.prim(Prim::Mul, vec![x.clone(), x]) } else { x })
                })?;
                if name == "norm" {
                    // `norm'(0) = 0` (a subgradient; `sqrt'(0) = inf` times the zero
                    // vector would give NaN): the square root only off zero, so the
                    // zero vector's value is the constant 0.
                    let n = self.func.new_var("n", s.elem.clone(), true);
                    self.push(Stmt::Mut(n, Some(Expr::Zeros(s.elem.clone()))));
                    let zero = Operand::Float(FloatLit {
                        text: "0.0".into(),
                        value: 0.0,
                    });
                    let off = self.let_(Expr::Cmp(CmpOp::Ne, t.clone(), zero));
                    let (stmts, _) = self.sub_block(|lw| {
                        let r = lw.prim(Prim::Sqrt, vec![t]);
                        lw.push(Stmt::Assign(Place { var: n, idx: vec![] }, AssignOp::Set, r));
                        End::Value(None)
                    });
                    self.push(Stmt::If(off, Block(stmts), Block(Vec::new())));
                    Some(self.let_(Expr::Use(Operand::Var(n))))
                } else {
                    Some(t)
                }
            }
            "len" | "nrows" | "ncols" => {
                if !nargs(0, self) {
                    return Some(None);
                }
                let n = match name.as_str() {
                    "len" => CExpr::Bin('*', Box::new(s.rows.clone()), Box::new(s.cols.clone())),
                    "nrows" => s.rows.clone(),
                    _ => s.cols.clone(),
                };
                let n = match (n.lit(), &n) {
                    (Some(k), _) => Operand::Int(k),
                    (None, CExpr::Bin('*', a, b)) => match (a.lit(), b.lit()) {
                        (Some(x), Some(y)) => Operand::Int(x * y),
                        _ => Operand::Const(n.clone()),
                    },
                    (None, n) => Operand::Const(n.clone()),
                };
                Some(n)
            }
            "normalize" => {
                if !nargs(0, self) {
                    return Some(None);
                }
                // `v / |v|`, with the norm's convention at zero (nalgebra's value there
                // is NaN, as here).
                let sq = self.t_reduce(recv, &s, None, span, &mut |lw, x, _| {
                    Some(lw.prim(Prim::Mul, vec![x.clone(), x]))
                })?;
                let n = self.prim(Prim::Sqrt, vec![sq]);
                self.t_map(recv, &s, None, span, &mut |lw, x, _| {
                    Some(lw.prim(Prim::Div, vec![x, n.clone()]))
                })
            }
            "cross" => {
                if !nargs(1, self) {
                    return Some(None);
                }
                if s.rows.lit() != Some(3) || s.cols.lit() != Some(1) {
                    self.err(
                        &m.method,
                        format!("`cross` is the product of two 3-vectors, not of {} matrices\nhint: write the components of the product you need with `v[i]`", s.text()),
                    );
                    return Some(None);
                }
                let Some((o, so)) = other(self) else { return Some(None) };
                let (y, sy) = self.t_new(CExpr::Lit(3), CExpr::Lit(1), s.elem.clone());
                for (k, (a, b)) in [(1, 2), (2, 0), (0, 1)].into_iter().enumerate() {
                    let z = Operand::Int(0);
                    let (ia, ib) = (Operand::Int(a), Operand::Int(b));
                    let p1 = {
                        let x = self.t_get(recv, &s, &ia, &z)?;
                        let w = self.t_get(&o, &so, &ib, &z)?;
                        self.prim(Prim::Mul, vec![x, w])
                    };
                    let p2 = {
                        let x = self.t_get(recv, &s, &ib, &z)?;
                        let w = self.t_get(&o, &so, &ia, &z)?;
                        self.prim(Prim::Mul, vec![x, w])
                    };
                    let d = self.prim(Prim::Sub, vec![p1, p2]);
                    self.t_set(y, &sy, &Operand::Int(k as i128), &z, d);
                }
                Some(Operand::Var(y))
            }
            "add_scalar" => {
                if !nargs(1, self) {
                    return Some(None);
                }
                let c = self.expr(&m.args[0])?;
                self.t_map(recv, &s, None, span, &mut |lw, x, _| {
                    Some(lw.prim(Prim::Add, vec![x, c.clone()]))
                })
            }
            "map" => {
                if !nargs(1, self) {
                    return Some(None);
                }
                let syn::Expr::Closure(c) = &m.args[0] else {
                    self.err(
                        &m.args[0],
                        "`map` takes a closure here\nhint: write `v.map(|x| x.tanh())`",
                    );
                    return Some(None);
                };
                let name = match c.inputs.first() {
                    Some(syn::Pat::Ident(pi)) if c.inputs.len() == 1 => pi.ident.to_string(),
                    Some(syn::Pat::Type(pt)) if c.inputs.len() == 1 => match &*pt.pat {
                        syn::Pat::Ident(pi) => pi.ident.to_string(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                if name.is_empty() {
                    self.err(&c.inputs, "`map`'s closure takes one element by name: `|x| ..`");
                    return Some(None);
                }
                let body = (*c.body).clone();
                self.t_map(recv, &s, None, span, &mut |lw, x, _| {
                    let v = lw.let_named(Expr::Use(x), &name, None);
                    let Operand::Var(vid) = v else { return None };
                    lw.scopes.push(HashMap::new());
                    lw.bind(&name, vid);
                    let r = lw.expr(&body);
                    lw.scopes.pop();
                    r
                })
            }
            _ => {
                self.err(
                    &m.method,
                    format!("method `{name}` of a nalgebra value is not supported yet\nhint: the supported ones are {TENSOR_METHODS}, and indexing `v[i]`, `m[(i, j)]`"),
                );
                return Some(None);
            }
        };
        Some(out)
    }
}
