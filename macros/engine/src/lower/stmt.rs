//! Statements: `let` (with patterns), assignments and compound assignments, places.

use super::*;

impl Lowerer<'_> {
    pub(super) fn local(&mut self, l: &syn::Local) {
        let Some(init) = &l.init else {
            self.err(
                l,
                "`let` without a value is not supported: give the variable its value where it is declared",
            );
            self.poison_pat(&l.pat);
            return;
        };
        if let Some((else_token, _)) = &init.diverge {
            self.err(
                else_token,
                "`let ... else` is not supported: bind the value with a plain `let` and branch with `if`/`else`",
            );
            self.poison_pat(&l.pat);
            return;
        }
        let vec_init = matches!(&*init.expr, syn::Expr::Macro(m) if m.mac.path.is_ident("vec"));
        let (pat, annot) = match &l.pat {
            // `let mut y: Vec<f64> = vec![0.0; n];`: the type is the zero's (checked below).
            syn::Pat::Type(pt) if vec_init && super::types::slice_elem(&pt.ty).is_some() => (&*pt.pat, None),
            syn::Pat::Type(pt) => (&*pt.pat, self.value_ty(&pt.ty)),
            p => (p, None),
        };
        match pat {
            syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                let name = pi.ident.to_string();
                if let (Some(_), syn::Expr::Macro(m)) = (pi.mutability, &*init.expr) {
                    if m.mac.path.is_ident("vec") {
                        let Some(zero) = self.zero_vec(m) else {
                            self.bind_poisoned(&name);
                            return;
                        };
                        let ty = infer_ty(&self.func, &zero);
                        let v = self.func.new_var(name.clone(), ty, true);
                        self.push(Stmt::Mut(v, Some(zero)));
                        self.bind(&name, v);
                        return;
                    }
                }
                let Some(op) = self.expr(&init.expr) else {
                    self.bind_poisoned(&name);
                    return;
                };
                let annotated = annot.as_ref().is_some_and(Ty::is_known);
                if pi.mutability.is_some() {
                    // `let mut v = <expr>;`: fold a fresh temporary into the declaration.
                    let ty = annot.unwrap_or_else(|| self.func.ty_of(&op));
                    if ty.has_slice() {
                        self.err(
                            &init.expr,
                            format!("a slice cannot be bound with `let mut`: slices are read-only; copy the values that change into a `let mut` array `[f64; N]`, or use `let {name} = ..` to name the slice"),
                        );
                        self.bind_poisoned(&name);
                        return;
                    }
                    let v = self.func.new_var(name.clone(), ty, true);
                    self.func.vars[v].annotated = annotated;
                    if op.var().is_some_and(|w| self.tensors.contains(&w)) {
                        self.tensors.insert(v);
                    }
                    let init_expr = self.take_last_let(&op).unwrap_or(Expr::Use(op));
                    self.push(Stmt::Mut(v, Some(init_expr)));
                    self.bind(&name, v);
                } else {
                    match op {
                        Operand::Var(v) if self.is_fresh_temp(v) => {
                            self.func.vars[v].name = name.clone();
                            if let Some(t) = annot {
                                self.func.vars[v].ty = t;
                            }
                            self.func.vars[v].annotated = annotated;
                            self.bind(&name, v);
                        }
                        op => {
                            let tensor = op.var().is_some_and(|v| self.tensors.contains(&v));
                            let o = self.let_named(Expr::Use(op), &name, annot);
                            if let Some(v) = o.var() {
                                self.func.vars[v].annotated = annotated;
                                self.bind(&name, v);
                                if tensor {
                                    self.tensors.insert(v);
                                }
                            }
                        }
                    }
                }
            }
            syn::Pat::Tuple(pt) => {
                let Some(op) = self.expr(&init.expr) else {
                    self.poison_pat(pat);
                    return;
                };
                let ty = self.func.ty_of(&op);
                match &ty {
                    Ty::Unknown => {
                        if let Some(v) = op.var() {
                            self.func.vars[v].ty = Ty::Tuple(vec![Ty::Unknown; pt.elems.len()]);
                        }
                    }
                    Ty::Tuple(ts) if ts.len() == pt.elems.len() => {}
                    Ty::Array(..) => {
                        self.poison_pat(pat);
                        return self.err(
                            pat,
                            format!(
                                "this value is an array (`{}`), not a tuple: destructure it with `let [a, b, ..] = ..`",
                                ir_ty_text(&ty)
                            ),
                        );
                    }
                    _ => {
                        self.poison_pat(pat);
                        return self.err(
                            pat,
                            format!(
                                "this pattern has {} names but the value is `{}`",
                                pt.elems.len(),
                                ir_ty_text(&ty)
                            ),
                        );
                    }
                }
                for (k, p) in pt.elems.iter().enumerate() {
                    match p {
                        syn::Pat::Ident(pi) if pi.mutability.is_none() && pi.by_ref.is_none() => {
                            let name = pi.ident.to_string();
                            let o = self.let_named(Expr::Field(op.clone(), k), &name, None);
                            if let Some(v) = o.var() {
                                self.bind(&name, v);
                            }
                        }
                        // `let (mut s, mut q) = (0.0, 0.0);`: mutable variables.
                        syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                            let name = pi.ident.to_string();
                            let ty = infer_ty(&self.func, &Expr::Field(op.clone(), k));
                            let m = self.func.new_var(name.clone(), ty, true);
                            self.push(Stmt::Mut(m, Some(Expr::Field(op.clone(), k))));
                            self.bind(&name, m);
                        }
                        syn::Pat::Wild(_) => {}
                        other => {
                            self.err(other, "only names, `mut` names and `_` are supported in tuple patterns");
                            self.poison_pat(other);
                        }
                    }
                }
            }
            // `let [a, b] = x`: one binding per element of a fixed array.
            syn::Pat::Slice(ps) => {
                let Some(op) = self.expr(&init.expr) else {
                    self.poison_pat(pat);
                    return;
                };
                let ty = self.func.ty_of(&op);
                let len = match &ty {
                    Ty::Array(_, n) => n.lit(),
                    _ => None,
                };
                if len != Some(ps.elems.len() as i128) {
                    self.poison_pat(pat);
                    return self.err(
                        pat,
                        format!("this pattern has {} names but the value is `{}`: an array pattern needs an array of that literal length", ps.elems.len(), ir_ty_text(&ty)),
                    );
                }
                let arr = match op.var() {
                    Some(v) => v,
                    None => return,
                };
                for (k, p) in ps.elems.iter().enumerate() {
                    match p {
                        syn::Pat::Ident(pi)
                            if pi.mutability.is_none() && pi.by_ref.is_none() && pi.subpat.is_none() =>
                        {
                            let name = pi.ident.to_string();
                            let o = self.let_named(Expr::Index(arr, vec![Operand::Int(k as i128)]), &name, None);
                            if let Some(v) = o.var() {
                                self.bind(&name, v);
                            }
                        }
                        syn::Pat::Wild(_) => {}
                        other => self.err(other, "only names and `_` are supported in array patterns"),
                    }
                }
            }
            syn::Pat::Wild(_) => {
                self.expr(&init.expr);
            }
            p => self.err(p, "unsupported pattern: bind the value to a name"),
        }
    }

    /// Whether `v` is an unnamed temporary just created by lowering an expression.
    pub(super) fn is_fresh_temp(&self, v: VarId) -> bool {
        let info = &self.func.vars[v];
        !info.mutable
            && info.name == "t"
            && matches!(self.blocks.last().and_then(|b| b.last()), Some(Stmt::Let(w, _)) if *w == v)
    }

    pub(super) fn take_last_let(&mut self, op: &Operand) -> Option<Expr> {
        let v = op.var()?;
        if !self.is_fresh_temp(v) {
            return None;
        }
        if !matches!(
            self.blocks.last().and_then(|b| b.last()),
            Some(Stmt::Let(_, Expr::Repeat(..) | Expr::Array(_)))
        ) {
            return None;
        }
        match self.blocks.last_mut().and_then(|b| b.pop()) {
            Some(Stmt::Let(_, e)) => Some(e),
            Some(other) => {
                self.push(other);
                None
            }
            None => None,
        }
    }

    /// An expression in statement position.
    pub(super) fn stmt_expr(&mut self, e: &syn::Expr) {
        match e {
            syn::Expr::Assign(a) => self.assign(&a.left, AssignOp::Set, &a.right, a.eq_token.span),
            syn::Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::AddAssign(_) => Some((AssignOp::Add, None)),
                    syn::BinOp::SubAssign(_) => Some((AssignOp::Sub, None)),
                    syn::BinOp::MulAssign(_) => Some((AssignOp::Set, Some(Prim::Mul))),
                    syn::BinOp::DivAssign(_) => Some((AssignOp::Set, Some(Prim::Div))),
                    syn::BinOp::RemAssign(_) => Some((AssignOp::Set, Some(Prim::Rem))),
                    _ => None,
                };
                match op {
                    Some((aop, None)) => self.assign(&b.left, aop, &b.right, b.op.span()),
                    Some((_, Some(p))) => self.compound(&b.left, p, &b.right),
                    None => {
                        self.expr(e);
                    }
                }
            }
            syn::Expr::ForLoop(f) => self.for_loop(f),
            syn::Expr::If(i) => {
                self.if_expr(i, false);
            }
            syn::Expr::Block(b) => {
                self.sub_block_inline(&b.block.stmts);
            }
            _ => {
                self.expr(e);
            }
        }
    }

    pub(super) fn sub_block_inline(&mut self, stmts: &[syn::Stmt]) -> Option<Operand> {
        self.scopes.push(HashMap::new());
        let end = self.block_stmts(stmts, false);
        self.scopes.pop();
        match end {
            End::Value(v) => v,
            End::Diverges => None,
        }
    }

    pub(super) fn place(&mut self, e: &syn::Expr) -> Option<Place> {
        let mut idx_exprs = Vec::new();
        let mut cur = e;
        loop {
            match cur {
                syn::Expr::Index(ix) => {
                    idx_exprs.push(&*ix.index);
                    cur = &ix.expr;
                }
                syn::Expr::Paren(p) => cur = &p.expr,
                _ => break,
            }
        }
        let syn::Expr::Path(p) = cur else {
            self.err(e, "only a `let mut` variable or an element of one can be assigned");
            return None;
        };
        let name = path_string(&p.path);
        let Some(v) = self.lookup(&name) else {
            self.err(
                cur,
                format!("cannot assign to `{name}`: only `let mut` variables of this function can be assigned"),
            );
            return None;
        };
        if self.poisoned.contains(&v) {
            return None;
        }
        if let (false, Ty::Slice(_)) = (self.func.vars[v].mutable, &self.func.vars[v].ty) {
            self.err(
                cur,
                format!("cannot write into the slice `{name}`: slice parameters are read-only; keep values that change in a `let mut` array `[f64; N]` or a scalar accumulator"),
            );
            return None;
        }
        if !self.func.vars[v].mutable {
            self.err(
                cur,
                format!("cannot assign to `{name}`: it is not declared with `let mut`"),
            );
            return None;
        }
        idx_exprs.reverse();
        self.vector_index(v, &mut idx_exprs);
        let ty = self.func.vars[v].ty.clone();
        let mut idx = self.index_operands(&ty, &idx_exprs, e)?;
        self.column_order(v, &idx_exprs, &mut idx);
        Some(Place { var: v, idx })
    }

    pub(super) fn assign(&mut self, left: &syn::Expr, op: AssignOp, right: &syn::Expr, _span: Span) {
        let Some(value) = self.expr(right) else { return };
        let Some(place) = self.place(left) else { return };
        self.push(Stmt::Assign(place, op, value));
    }

    /// `a op= b` for `* / %`: read, compute, write back.
    pub(super) fn compound(&mut self, left: &syn::Expr, p: Prim, right: &syn::Expr) {
        let Some(value) = self.expr(right) else { return };
        let Some(place) = self.place(left) else { return };
        let cur = if place.idx.is_empty() {
            self.let_(Expr::Use(Operand::Var(place.var)))
        } else {
            self.let_(Expr::Index(place.var, place.idx.clone()))
        };
        let r = self.prim(p, vec![cur, value]);
        self.push(Stmt::Assign(place, AssignOp::Set, r));
    }

    /// `vec![0.0; n]` bound with `let mut`: a vector of run-time length built in the body,
    /// zero-filled, as long as a slice argument of floats (`n` is `xs.len()` or a name bound
    /// to it), lowered as that slice's zero (`ZeroLike(xs)`, a `Vec`). Every other `vec!`
    /// is an error.
    fn zero_vec(&mut self, m: &syn::ExprMacro) -> Option<Expr> {
        const HINT: &str = "a vector built in the body is `let mut y = vec![0.0; xs.len()];` (zero-filled, as long as a slice argument `xs`), written `y[i] = ..` and returned";
        let parsed = m.mac.parse_body_with(|input: syn::parse::ParseStream| {
            let v: syn::Expr = input.parse()?;
            let _: syn::Token![;] = input.parse()?;
            let n: syn::Expr = input.parse()?;
            Ok((v, n))
        });
        let Ok((value, len)) = parsed else {
            self.err(&m.mac, format!("only `vec![0.0; n]` is supported: {HINT}"));
            return None;
        };
        let zero = matches!(&value, syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Float(f), .. })
            if f.base10_parse::<f64>().is_ok_and(|v| v == 0.0));
        if !zero {
            self.err(
                &value,
                format!("a vector built in the body starts as zeros of a float type (`vec![0.0; n]`): {HINT}"),
            );
            return None;
        }
        let n = self.expr(&len)?;
        // The slice whose length `n` is: `Let(n, Len(xs))` in an enclosing block.
        // (through copies: `let n = xs.len();` and its reads are `Use`s of it).
        let mut of = None;
        let mut cur = n.var();
        while let Some(nv) = cur.take() {
            for s in self.blocks.iter().flatten() {
                match s {
                    Stmt::Let(w, Expr::Len(Operand::Var(xs))) if *w == nv => of = Some(*xs),
                    Stmt::Let(w, Expr::Use(Operand::Var(u))) if *w == nv && !self.func.vars[*u].mutable => {
                        cur = Some(*u);
                    }
                    _ => {}
                }
            }
        }
        match of {
            Some(xs) if matches!(&self.func.vars[xs].ty, Ty::Slice(e) if matches!(**e, Ty::Float(_))) => {
                Some(Expr::ZeroLike(Operand::Var(xs)))
            }
            _ => {
                self.err(
                    &len,
                    format!("the length of a vector built in the body must be the length of a slice argument of floats (`xs.len()`, or a name bound to it): {HINT}"),
                );
                None
            }
        }
    }
}
