//! Expressions: literals, paths, operators, method calls (the rule table's primitives),
//! calls of other functions, indexing, casts.

use super::*;

impl Lowerer<'_> {
    /// The index operands of `base[i]..` on a value of type `ty`: one per array level, and
    /// (row, column) per matrix: `m[(i, j)]`, or `v[i]` on a vector (column 0).
    pub(super) fn index_operands(&mut self, ty: &Ty, idx_exprs: &[&syn::Expr], e: &syn::Expr) -> Option<Vec<Operand>> {
        let mut ty = ty.clone();
        let mut idx = Vec::new();
        for &ie in idx_exprs {
            match ty {
                // `m[(i, j)]` of a nalgebra matrix computed in the body (`[[T; C]; R]`).
                Ty::Array(el, _)
                    if matches!(ie, syn::Expr::Tuple(t) if t.elems.len() == 2) && matches!(*el, Ty::Array(..)) =>
                {
                    let (syn::Expr::Tuple(t), Ty::Array(el2, _)) = (ie, *el) else {
                        return None;
                    };
                    for x in &t.elems {
                        idx.push(self.index_operand(x)?);
                    }
                    ty = *el2;
                }
                Ty::Array(el, _) | Ty::Slice(el) => {
                    ty = *el;
                    idx.push(self.index_operand(ie)?);
                }
                // `m[(i, j)]`; `v[i]` on a vector is its row `i`, column 0.
                Ty::Matrix { elem, cols, .. } => {
                    match ie {
                        syn::Expr::Tuple(t) if t.elems.len() == 2 => {
                            for x in &t.elems {
                                idx.push(self.index_operand(x)?);
                            }
                        }
                        _ if cols.is_one() => {
                            idx.push(self.index_operand(ie)?);
                            idx.push(Operand::Int(0));
                        }
                        _ => {
                            self.err(ie, "a matrix is indexed by row and column: write `m[(i, j)]`");
                            return None;
                        }
                    }
                    ty = *elem;
                }
                // What only rustc can type: `a[(i, j)]` may be a matrix's element.
                Ty::Unknown => {
                    ty = Ty::Unknown;
                    match ie {
                        syn::Expr::Tuple(t) if t.elems.len() == 2 => {
                            for x in &t.elems {
                                idx.push(self.index_operand(x)?);
                            }
                        }
                        _ => idx.push(self.index_operand(ie)?),
                    }
                }
                other => {
                    self.err(
                        e,
                        format!(
                            "`{}` cannot be indexed: only arrays, slices and matrices can",
                            ir_ty_text(&other)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(idx)
    }

    pub(super) fn index_operand(&mut self, e: &syn::Expr) -> Option<Operand> {
        let op = self.expr(e)?;
        match self.func.ty_of(&op) {
            Ty::Int(_) | Ty::Unknown => Some(op),
            _ => {
                self.err(e, "an index must be an integer: a constant or a loop variable");
                None
            }
        }
    }

    pub(super) fn expr(&mut self, e: &syn::Expr) -> Option<Operand> {
        match e {
            syn::Expr::Lit(l) => self.lit(&l.lit),
            syn::Expr::Paren(p) => self.expr(&p.expr),
            syn::Expr::Group(g) => self.expr(&g.expr),
            syn::Expr::Path(p) => {
                if p.qself.is_some() {
                    self.err(e, "qualified paths are not supported");
                    return None;
                }
                let s = path_string(&p.path);
                if p.path.segments.len() == 1 {
                    if let Some(v) = self.lookup(&s) {
                        if self.poisoned.contains(&v) {
                            return None;
                        }
                        if self.func.vars[v].mutable {
                            let ty = self.func.vars[v].ty.clone();
                            let t = self.let_named(Expr::Use(Operand::Var(v)), "t", Some(ty));
                            // The read of a `let mut` tensor is one (`z * s` after `z[i] = ..`).
                            if let (true, Some(w)) = (self.tensors.contains(&v), t.var()) {
                                self.tensors.insert(w);
                            }
                            return Some(t);
                        }
                        return Some(Operand::Var(v));
                    }
                }
                Some(Operand::Const(CExpr::Path(s)))
            }
            syn::Expr::Unary(u) => match u.op {
                syn::UnOp::Neg(_) => {
                    let a = self.expr(&u.expr)?;
                    match a {
                        Operand::Float(l) => Some(Operand::Float(FloatLit {
                            text: format!("-{}", l.text),
                            value: -l.value,
                        })),
                        Operand::Int(i) => Some(Operand::Int(-i)),
                        a => {
                            if let Some(t) = self.tensor_neg(&a, u.op.span()) {
                                return t;
                            }
                            Some(self.let_(Expr::Prim(Prim::Neg, vec![a])))
                        }
                    }
                }
                syn::UnOp::Not(_) => {
                    let a = self.expr(&u.expr)?;
                    Some(self.let_(Expr::Not(a)))
                }
                syn::UnOp::Deref(_) => {
                    // `*x` on a reference parameter is a copy of the value it points to.
                    let a = self.expr(&u.expr)?;
                    let by_ref = a
                        .var()
                        .is_some_and(|v| self.func.params.iter().any(|p| p.var == v && p.by_ref));
                    if by_ref {
                        Some(self.let_(Expr::Deref(a)))
                    } else {
                        Some(a)
                    }
                }
                _ => {
                    self.err(e, "unsupported operator");
                    None
                }
            },
            syn::Expr::Binary(b) => self.binary(b),
            syn::Expr::MethodCall(m) => self.method(m),
            syn::Expr::Call(c) => self.call(c),
            syn::Expr::Index(_) => {
                let mut idx_exprs = Vec::new();
                let mut cur = e;
                while let syn::Expr::Index(ix) = cur {
                    idx_exprs.push(&*ix.index);
                    cur = &ix.expr;
                }
                // An element of a `let mut` array is read in place (a snapshot of the whole
                // array per read would make loops over it quadratic).
                let mutable_base = match cur {
                    syn::Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => self
                        .lookup(&path_string(&p.path))
                        .filter(|v| self.func.vars[*v].mutable),
                    _ => None,
                };
                let base_var = match mutable_base {
                    Some(v) => v,
                    None => match self.expr(cur)? {
                        Operand::Var(v) => v,
                        other => self.let_(Expr::Use(other)).var()?,
                    },
                };
                idx_exprs.reverse();
                self.vector_index(base_var, &mut idx_exprs);
                // Indexing what the macro knows is not an array is an error here, on the
                // indexing expression (not an internal error later).
                let ty = self.func.vars[base_var].ty.clone();
                let mut idx = self.index_operands(&ty, &idx_exprs, e)?;
                self.column_order(base_var, &idx_exprs, &mut idx);
                Some(self.let_(Expr::Index(base_var, idx)))
            }
            syn::Expr::Array(a) => {
                let mut ops = Vec::new();
                for x in &a.elems {
                    ops.push(self.expr(x)?);
                }
                Some(self.let_(Expr::Array(ops)))
            }
            syn::Expr::Repeat(r) => {
                let v = self.expr(&r.expr)?;
                let n = self.cexpr(&r.len)?;
                Some(self.let_(Expr::Repeat(v, n)))
            }
            syn::Expr::Tuple(t) => {
                if t.elems.is_empty() {
                    return Some(Operand::Unit);
                }
                let mut ops = Vec::new();
                for x in &t.elems {
                    ops.push(self.expr(x)?);
                }
                Some(self.let_(Expr::Tuple(ops)))
            }
            syn::Expr::Field(f) => {
                let base = self.expr(&f.base)?;
                match &f.member {
                    syn::Member::Unnamed(i) => {
                        if !matches!(self.func.ty_of(&base), Ty::Tuple(_)) {
                            // The tuple's size is not visible (a call result): its adjoint
                            // could not be formed.
                            self.err(
                                &f.base,
                                "fluxion cannot see the type of this value: destructure it with a tuple pattern, `let (a, b) = g(x);`",
                            );
                            return None;
                        }
                        Some(self.let_(Expr::Field(base, i.index as usize)))
                    }
                    syn::Member::Named(n) => {
                        self.err(
                            n,
                            "named fields are not supported yet: pass the values as separate arguments",
                        );
                        None
                    }
                }
            }
            syn::Expr::Cast(c) => {
                let a = self.expr(&c.expr)?;
                let ty = self.value_ty(&c.ty)?;
                if !matches!(ty, Ty::Float(_) | Ty::Int(_)) {
                    self.err(&c.ty, "only casts to a number type are supported");
                    return None;
                }
                Some(self.let_(Expr::Cast(a, ty)))
            }
            syn::Expr::If(i) => self.if_expr(i, true),
            syn::Expr::Block(b) => self.sub_block_inline(&b.block.stmts),
            syn::Expr::Unsafe(u) => {
                self.err(
                    u.unsafe_token,
                    "`unsafe` blocks cannot be differentiated: move the unsafe code into a function with a custom rule",
                );
                None
            }
            syn::Expr::While(w) => {
                self.err(
                    w.while_token,
                    "`while` loops are not supported: use `for i in 0..N` over a constant range",
                );
                None
            }
            syn::Expr::Loop(l) => {
                self.err(
                    l.loop_token,
                    "`loop` is not supported: use `for i in 0..N` over a constant range",
                );
                None
            }
            syn::Expr::Match(m) => {
                self.err(m.match_token, "`match` is not supported: use `if`/`else`");
                None
            }
            syn::Expr::Closure(c) => {
                let (open, close) = (c.or1_token, c.or2_token);
                self.err(
                    quote::quote!(#open #close),
                    "closures are not supported: write a function and mark it #[differentiable]",
                );
                None
            }
            syn::Expr::Macro(m) if m.mac.path.is_ident("vec") => {
                self.err(&m.mac.path, "`vec!` is supported only to declare a vector built in the body: `let mut y = vec![0.0; xs.len()];` (zero-filled, as long as a slice argument `xs`), written `y[i] = ..` and returned");
                None
            }
            syn::Expr::Macro(m) => {
                self.err(&m.mac.path, "macros are not supported inside a differentiated function: compute the value with ordinary expressions");
                None
            }
            syn::Expr::Reference(r) => {
                self.err(r.and_token, "references are only supported as call arguments: `g(&x)`");
                None
            }
            syn::Expr::Break(b) => {
                self.err(
                    b.break_token,
                    "`break` is not supported: loops run over their whole constant range",
                );
                None
            }
            syn::Expr::Continue(c) => {
                self.err(
                    c.continue_token,
                    "`continue` is not supported: use `if` inside the loop body",
                );
                None
            }
            syn::Expr::Return(r) => {
                self.err(r.return_token, self.return_msg());
                None
            }
            syn::Expr::Assign(_) | syn::Expr::ForLoop(_) => {
                self.stmt_expr(e);
                Some(Operand::Unit)
            }
            syn::Expr::Async(a) => {
                self.err(a.async_token, "`async` blocks cannot be differentiated");
                None
            }
            syn::Expr::Struct(s) => {
                self.err(
                    &s.path,
                    "struct literals are not supported yet: pass the fields as separate f64 or array values",
                );
                None
            }
            syn::Expr::Range(r) => {
                self.err(r, "ranges are only supported as `for` loop bounds");
                None
            }
            other => {
                self.err(other, "this expression is not supported in a differentiated function");
                None
            }
        }
    }

    pub(super) fn lit(&mut self, l: &syn::Lit) -> Option<Operand> {
        match l {
            syn::Lit::Float(f) => match f.base10_parse::<f64>() {
                Ok(v) => Some(Operand::Float(FloatLit {
                    text: f.to_string(),
                    value: v,
                })),
                Err(e) => {
                    self.failed = true;
                    self.cx.push(e);
                    None
                }
            },
            syn::Lit::Int(i) => {
                let suffix = i.suffix();
                if suffix == "f64" || suffix == "f32" {
                    let v: f64 = i.base10_digits().parse().ok()?;
                    return Some(Operand::Float(FloatLit {
                        text: i.to_string(),
                        value: v,
                    }));
                }
                match i.base10_parse::<i128>() {
                    Ok(v) if INT_TYPES.contains(&suffix) => {
                        // Keep the literal's type: `let t: u64 = 5000000000;`.
                        let t =
                            self.let_named(Expr::Use(Operand::Int(v)), "t", Some(Ty::Int(Some(suffix.to_string()))));
                        if let Some(w) = t.var() {
                            self.func.vars[w].annotated = true;
                        }
                        Some(t)
                    }
                    Ok(v) => Some(Operand::Int(v)),
                    Err(e) => {
                        self.failed = true;
                        self.cx.push(e);
                        None
                    }
                }
            }
            syn::Lit::Bool(b) => Some(Operand::Bool(b.value)),
            other => {
                self.err(other, "only number and boolean literals are supported");
                None
            }
        }
    }

    pub(super) fn binary(&mut self, b: &syn::ExprBinary) -> Option<Operand> {
        use syn::BinOp as B;
        enum K {
            P(Prim),
            C(CmpOp),
            L(BoolOp),
        }
        let k = match b.op {
            B::Add(_) => K::P(Prim::Add),
            B::Sub(_) => K::P(Prim::Sub),
            B::Mul(_) => K::P(Prim::Mul),
            B::Div(_) => K::P(Prim::Div),
            B::Rem(_) => K::P(Prim::Rem),
            B::Lt(_) => K::C(CmpOp::Lt),
            B::Le(_) => K::C(CmpOp::Le),
            B::Gt(_) => K::C(CmpOp::Gt),
            B::Ge(_) => K::C(CmpOp::Ge),
            B::Eq(_) => K::C(CmpOp::Eq),
            B::Ne(_) => K::C(CmpOp::Ne),
            B::And(_) => K::L(BoolOp::And),
            B::Or(_) => K::L(BoolOp::Or),
            B::AddAssign(_) | B::SubAssign(_) | B::MulAssign(_) | B::DivAssign(_) | B::RemAssign(_) => {
                self.err(b.op, "compound assignment is a statement here: end it with `;`");
                return None;
            }
            _ => {
                self.err(b.op, "bitwise and shift operators are not supported: compute the integer outside the function and pass it in");
                return None;
            }
        };
        let l = self.expr(&b.left)?;
        if let K::L(o) = k {
            // `a && b` evaluates `b` only when `a` holds (it may index out of bounds
            // otherwise): `let mut sel; if a { sel = b } else { sel = false }`.
            let sel = self.func.new_var("sel", Ty::Bool, true);
            self.push(Stmt::Mut(sel, None));
            let set = |v: Operand| Stmt::Assign(Place { var: sel, idx: vec![] }, AssignOp::Set, v);
            let (rhs, r) = self.sub_block(|lw| End::Value(lw.expr(&b.right)));
            let End::Value(Some(r)) = r else { return None };
            let mut rhs = rhs;
            rhs.push(set(r));
            let short = vec![set(Operand::Bool(o == BoolOp::Or))];
            let (t, e) = if o == BoolOp::And { (rhs, short) } else { (short, rhs) };
            self.push(Stmt::If(l, Block(t), Block(e)));
            return Some(self.let_named(Expr::Use(Operand::Var(sel)), "t", Some(Ty::Bool)));
        }
        let r = self.expr(&b.right)?;
        if let K::P(p) = k {
            if let Some(t) = self.tensor_binary(p, &l, &r, &b.op) {
                return t;
            }
        }
        Some(match k {
            K::P(p) => {
                // `x * 2` with `x: f64` is rustc's type error (E0277), one error with its
                // own hint: generate nothing, so that error is the only one.
                let (lt, rt) = (self.func.ty_of(&l), self.func.ty_of(&r));
                if (lt.is_float() && rt.is_int()) || (lt.is_int() && rt.is_float()) {
                    self.failed = true;
                    return None;
                }
                self.prim(p, vec![l, r])
            }
            K::C(c) => self.let_(Expr::Cmp(c, l, r)),
            K::L(o) => self.let_(Expr::Bool(o, l, r)),
        })
    }

    /// `p(ops)`, with each named constant among float operands lifted to the float type
    /// of the others (see [`CExpr::Lift`]): `SCALE * x` with `x: f64`.
    pub(super) fn prim(&mut self, p: Prim, mut ops: Vec<Operand>) -> Operand {
        let float = ops.iter().find_map(|o| match self.func.ty_of(o) {
            Ty::Float(Some(k)) => Some(k),
            _ => None,
        });
        if let Some(k) = float {
            for (i, o) in ops.iter_mut().enumerate() {
                let exponent = p == Prim::Powi && i == 1;
                if let (Operand::Const(c @ CExpr::Path(_)), false) = (&*o, exponent) {
                    *o = Operand::Const(CExpr::Lift(Box::new(c.clone()), k));
                }
            }
        }
        self.let_(Expr::Prim(p, ops))
    }

    pub(super) fn method(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let name = m.method.to_string();
        // `x.iter().sum()` and `x.iter().sum::<f64>()`
        if name == "sum" && m.args.is_empty() {
            if let syn::Expr::MethodCall(inner) = &*m.receiver {
                if (inner.method == "iter" || inner.method == "into_iter") && inner.args.is_empty() {
                    let a = self.expr(&inner.receiver)?;
                    return Some(self.let_(Expr::Sum(a)));
                }
            }
        }
        // The receiver first: if it already failed, that error is the one to fix.
        let recv = self.expr(&m.receiver)?;
        // `w.transpose()`, `a.dot(&b)`, `v.map(|x| ..)` on nalgebra values.
        if let Some(t) = self.tensor_method(m, &recv) {
            return t;
        }
        // `xs.len()`: the run-time length of a slice (or an array's constant one).
        if name == "len" {
            if !m.args.is_empty() {
                self.err(&m.method, "`len` takes no arguments");
                return None;
            }
            return match self.func.ty_of(&recv) {
                Ty::Slice(_) | Ty::Array(..) => {
                    Some(self.let_named(Expr::Len(recv), "n", Some(Ty::Int(Some("usize".into())))))
                }
                t => {
                    self.err(
                        &m.method,
                        format!("`len()` is supported on slices and arrays only, not on `{}`: pass the data as `&[f64]` (or `&[[f64; N]]`)", ir_ty_text(&t)),
                    );
                    None
                }
            };
        }
        // `rng.uniform(k)`, `rng.normal(k)`, `rng.fold_in(k)` on a generator.
        if self.func.ty_of(&recv) == Ty::Rng {
            return self.rng_method(m, recv);
        }
        // `x.sin_cos()`: the pair `(x.sin(), x.cos())`, each with its own rule.
        if name == "sin_cos" && m.args.is_empty() {
            let ty = self.func.ty_of(&recv);
            let s = self.let_(Expr::Prim(Prim::Sin, vec![recv.clone()]));
            let c = self.let_(Expr::Prim(Prim::Cos, vec![recv]));
            let pair = self.let_(Expr::Tuple(vec![s, c]));
            if let Some(v) = pair.var() {
                if ty.is_float() {
                    self.func.vars[v].ty = Ty::Tuple(vec![ty.clone(), ty]);
                }
            }
            return Some(pair);
        }
        let Some(p) = Prim::from_method(&name) else {
            self.err(
                &m.method,
                format!("method `{name}` is not differentiable: {}", supported_methods()),
            );
            return None;
        };
        if m.args.len() + 1 != p.arity() {
            self.err(&m.method, format!("`{name}` takes {} argument(s)", p.arity() - 1));
            return None;
        }
        let mut ops = vec![recv];
        for a in &m.args {
            ops.push(self.expr(a)?);
        }
        if p == Prim::Powi && self.func.ty_of(&ops[1]).is_float() {
            self.err(
                &m.args[0],
                "the exponent of `powi` must be an integer: use `powf` for a float exponent",
            );
            return None;
        }
        Some(self.prim(p, ops))
    }

    /// A method of a generator `recv` (`fluxion::Rng`): a draw at an integer counter, or a
    /// derived generator.
    fn rng_method(&mut self, m: &syn::ExprMethodCall, recv: Operand) -> Option<Operand> {
        let name = m.method.to_string();
        let Some(op) = RngOp::from_method(&name) else {
            self.err(
                &m.method,
                format!("`{name}` is not a draw: a generator (`fluxion::Rng`) offers the draws `uniform(k)`, `normal(k)`, `uniform_f32(k)`, `normal_f32(k)` and the derived generators `fold_in(k)`, `sample(k)`, each at an integer `k`"),
            );
            return None;
        };
        if m.args.len() != 1 {
            self.err(
                &m.method,
                format!("`{name}` takes one integer counter: `rng.{name}(i)` (each draw of a function needs its own counter)"),
            );
            return None;
        }
        let k = self.expr(&m.args[0])?;
        match self.func.ty_of(&k) {
            Ty::Int(_) | Ty::Unknown => {}
            t => {
                self.err(
                    &m.args[0],
                    format!(
                        "the counter of `{name}` is an integer (a loop index, `2 * i + 1`), not `{}`",
                        ir_ty_text(&t)
                    ),
                );
                return None;
            }
        }
        let derived = matches!(op, RngOp::FoldIn | RngOp::Sample);
        if !derived {
            self.func.draws.push(SrcSpan(m.method.span()));
        }
        Some(self.let_named(
            Expr::Rng(op, recv, k),
            if derived { "rng" } else { "draw" },
            Some(op.ty()),
        ))
    }

    pub(super) fn call(&mut self, c: &syn::ExprCall) -> Option<Operand> {
        let syn::Expr::Path(fp) = &*c.func else {
            self.err(&c.func, "only calls of named functions are supported");
            return None;
        };
        let path = &fp.path;
        let last = path.segments.last()?;
        let name = syn::ext::IdentExt::unraw(&last.ident).to_string();
        let segs: Vec<String> = path
            .segments
            .iter()
            .map(|s| syn::ext::IdentExt::unraw(&s.ident).to_string())
            .collect();
        if name == "stop_gradient" {
            if c.args.len() != 1 {
                self.err(&c.func, "`stop_gradient` takes one argument");
                return None;
            }
            let a = self.expr(&c.args[0])?;
            return Some(self.let_(Expr::StopGrad(a)));
        }
        // `SVector::<f64, 3>::zeros()`, `Vector3::new(..)`, `from_element`, `from_fn`.
        if let Some(t) = self.tensor_constructor(c) {
            return t;
        }
        // Other nalgebra constructors.
        if segs.len() >= 2 {
            let ty = &segs[segs.len() - 2];
            if [
                "SVector",
                "SMatrix",
                "RowSVector",
                "DVector",
                "DMatrix",
                "OMatrix",
                "Matrix",
            ]
            .contains(&ty.as_str())
                || super::types::is_nalgebra_alias(ty)
            {
                self.err(
                    c,
                    format!("`{}(..)` is not supported yet\nhint: build statically sized nalgebra values with `zeros()`, `new(..)`, `from_element(x)` or `from_fn(|i, j| ..)`, the shape in the type (`SVector::<f64, 3>::zeros()`, `Vector3::new(a, b, c)`)", segs.join("::")),
                );
                return None;
            }
        }
        // `f64::sin(x)`, `f64::max(a, b)`
        if segs.len() == 2 && (segs[0] == "f64" || segs[0] == "f32") {
            if let Some(p) = Prim::from_method(&name) {
                if c.args.len() != p.arity() {
                    self.err(
                        &last.ident,
                        format!("`{}` takes {} argument(s)", segs.join("::"), p.arity()),
                    );
                    return None;
                }
                let mut ops = Vec::new();
                for a in &c.args {
                    ops.push(self.expr(a)?);
                }
                return Some(self.prim(p, ops));
            }
            self.err(
                &last.ident,
                format!("`{}` is not differentiable: {}", segs.join("::"), supported_methods()),
            );
            return None;
        }
        if let (Some(v), 1) = (self.lookup(&name), segs.len()) {
            if self.poisoned.contains(&v) {
                return None;
            }
            self.err(&last.ident, format!("`{name}` is a variable, not a function"));
            return None;
        }
        let mut prefix: Vec<String> = segs[..segs.len() - 1].to_vec();
        if path.leading_colon.is_some() {
            prefix.insert(0, String::new());
        }
        let turbofish = match &last.arguments {
            syn::PathArguments::None => None,
            syn::PathArguments::AngleBracketed(a) => Some(a.args.to_token_stream().to_string()),
            syn::PathArguments::Parenthesized(p) => {
                self.err(p, "unsupported call syntax");
                return None;
            }
        };
        let mut args = Vec::new();
        for a in &c.args {
            match a {
                syn::Expr::Reference(r) => {
                    if let Some(m) = &r.mutability {
                        self.err(
                            m,
                            "`&mut` arguments are not supported: pass the value and use the returned result",
                        );
                        return None;
                    }
                    let op = self.expr(&r.expr)?;
                    args.push(Arg {
                        op,
                        by_ref: true,
                        by_mut: false,
                    });
                }
                other => {
                    let op = self.expr(other)?;
                    args.push(Arg {
                        op,
                        by_ref: false,
                        by_mut: false,
                    });
                }
            }
        }
        let call = Call {
            prefix,
            name,
            turbofish,
            modes: vec![],
            args,
            span: SrcSpan(last.ident.span()),
            lanes: false,
        };
        Some(self.let_(Expr::Call(call)))
    }
}
