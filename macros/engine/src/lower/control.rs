//! Control flow: blocks and their values, `return`, `if`, `for` loops.

use super::*;

/// An item's keyword and name (`const SCALE`), or the whole item.
pub(super) fn item_head(it: &syn::Item) -> proc_macro2::TokenStream {
    use quote::quote;
    match it {
        syn::Item::Const(i) => {
            let (k, n) = (i.const_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Static(i) => {
            let (k, n) = (i.static_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Fn(i) => {
            let (k, n) = (i.sig.fn_token, &i.sig.ident);
            quote!(#k #n)
        }
        syn::Item::Struct(i) => {
            let (k, n) = (i.struct_token, &i.ident);
            quote!(#k #n)
        }
        syn::Item::Enum(i) => {
            let (k, n) = (i.enum_token, &i.ident);
            quote!(#k #n)
        }
        other => other.to_token_stream(),
    }
}

pub(super) fn has_early_return(b: &syn::Block) -> bool {
    struct V(usize);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
            self.0 += 1;
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(0);
    // A single `return e;` as the last statement is an ordinary tail.
    let (init, last) = match b.stmts.split_last() {
        Some((last, init)) => (init, Some(last)),
        None => (&b.stmts[..], None),
    };
    for s in init {
        v.visit_stmt(s);
    }
    if let Some(last) = last {
        match last {
            syn::Stmt::Expr(syn::Expr::Return(r), _) => {
                if let Some(e) = &r.expr {
                    v.visit_expr(e)
                }
            }
            s => v.visit_stmt(s),
        }
    }
    v.0 > 0
}

/// The first `return` token in `e` (outside closures and items).
/// Whether a block's tail expression gives a value (`if`/`for`/assignments at the end of
/// a block are statements of type `()`).
pub(super) fn has_value(e: &syn::Expr) -> bool {
    fn block_has_value(b: &syn::Block) -> bool {
        matches!(b.stmts.last(), Some(syn::Stmt::Expr(e, None)) if has_value(e))
    }
    match e {
        syn::Expr::If(i) => {
            block_has_value(&i.then_branch)
                || i.else_branch.as_ref().is_some_and(|(_, e)| match &**e {
                    syn::Expr::Block(b) => block_has_value(&b.block),
                    other => has_value(other),
                })
        }
        syn::Expr::Block(b) => block_has_value(&b.block),
        syn::Expr::ForLoop(_) | syn::Expr::While(_) | syn::Expr::Assign(_) => false,
        syn::Expr::Binary(b) => !matches!(
            b.op,
            syn::BinOp::AddAssign(_)
                | syn::BinOp::SubAssign(_)
                | syn::BinOp::MulAssign(_)
                | syn::BinOp::DivAssign(_)
                | syn::BinOp::RemAssign(_)
        ),
        _ => true,
    }
}

pub(super) fn first_return(e: &syn::Expr) -> Option<syn::token::Return> {
    struct V(Option<syn::token::Return>);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
            self.0.get_or_insert(r.return_token);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(None);
    v.visit_expr(e);
    v.0
}

/// Whether statements end every path with `return`.
pub(super) fn stmts_diverge(stmts: &[syn::Stmt]) -> bool {
    match stmts.last() {
        Some(syn::Stmt::Expr(e, _)) => expr_diverges(e),
        _ => false,
    }
}

pub(super) fn expr_diverges(e: &syn::Expr) -> bool {
    match e {
        syn::Expr::Return(_) => true,
        syn::Expr::Block(b) => stmts_diverge(&b.block.stmts),
        syn::Expr::If(i) => {
            stmts_diverge(&i.then_branch.stmts) && i.else_branch.as_ref().is_some_and(|(_, e)| expr_diverges(e))
        }
        _ => false,
    }
}

pub(super) fn first_return_stmt(s: &syn::Stmt) -> Option<syn::token::Return> {
    match s {
        syn::Stmt::Expr(e, _) => first_return(e),
        syn::Stmt::Local(l) => l.init.as_ref().and_then(|i| first_return(&i.expr)),
        _ => None,
    }
}

impl Lowerer<'_> {
    /// Lowers statements into the current IR block. `fctx`: this block's value is the
    /// function's result, so `return` is allowed.
    pub(super) fn block_stmts(&mut self, stmts: &[syn::Stmt], fctx: bool) -> End {
        for (k, st) in stmts.iter().enumerate() {
            let last = k + 1 == stmts.len();
            match st {
                syn::Stmt::Local(l) => self.local(l),
                syn::Stmt::Item(it) => self.err(item_head(it), "items inside a differentiated function are not supported: move them outside"),
                syn::Stmt::Macro(m) => self.err(
                    &m.mac.path,
                    "macros are not supported inside a differentiated function: compute the value with ordinary expressions",
                ),
                syn::Stmt::Expr(e, semi) => {
                    if let syn::Expr::Return(r) = e {
                        return self.ret(r, fctx);
                    }
                    if let syn::Expr::If(i) = e {
                        if let Some(ret) = first_return(e) {
                            if !fctx || self.loop_depth > 0 {
                                self.err(ret, self.return_msg());
                                return End::Diverges;
                            }
                            return self.if_with_return(i, &stmts[k + 1..]);
                        }
                    }
                    if last && semi.is_none() && has_value(e) {
                        let v = self.expr(e);
                        return End::Value(v);
                    }
                    self.stmt_expr(e);
                }
            }
        }
        End::Value(None)
    }

    /// Why a `return` here is not supported.
    pub(super) fn return_msg(&self) -> &'static str {
        if self.loop_depth > 0 {
            "`return` inside a loop is not supported: loops run over their whole range; keep the result in a `let mut` variable and return it after the loop"
        } else {
            "an early `return` is only supported as a statement of the function body or of an `if` branch there: restructure as `if`/`else`"
        }
    }

    pub(super) fn ret(&mut self, r: &syn::ExprReturn, fctx: bool) -> End {
        if !fctx || self.loop_depth > 0 {
            self.err(r.return_token, self.return_msg());
            return End::Diverges;
        }
        let Some(e) = &r.expr else {
            self.err(r.return_token, "`return` needs a value here");
            return End::Diverges;
        };
        let Some(op) = self.expr(e) else { return End::Diverges };
        match self.ret_var {
            Some(rv) => {
                self.push(Stmt::Assign(Place { var: rv, idx: vec![] }, AssignOp::Set, op));
                End::Diverges
            }
            None => End::Value(Some(op)),
        }
    }

    /// `if c { ..; return a; } rest` becomes `if c { ..; ret = a } else { rest }`.
    /// An `if` statement containing `return`, followed by `rest`: a branch that ends every
    /// path with `return` assigns the result; the other branch continues with `rest`
    /// (`if c { ..; return a; } rest` becomes `if c { ..; ret = a } else { rest }`). The
    /// continuing branch's own bindings are scoped to it; its tail value, when `rest`
    /// follows, is discarded like any statement's.
    pub(super) fn if_with_return(&mut self, i: &syn::ExprIf, rest: &[syn::Stmt]) -> End {
        let else_stmts: Vec<syn::Stmt> = match &i.else_branch {
            None => Vec::new(),
            Some((_, e)) => match &**e {
                syn::Expr::Block(b) => b.block.stmts.clone(),
                other => vec![syn::Stmt::Expr(other.clone(), None)],
            },
        };
        let then_div = stmts_diverge(&i.then_branch.stmts);
        let else_div = stmts_diverge(&else_stmts);
        // A branch that returns on some paths only cannot be continued: say so on its `return`.
        for (stmts, div) in [(&i.then_branch.stmts, then_div), (&else_stmts, else_div)] {
            if div {
                continue;
            }
            if let Some(r) = stmts.iter().find_map(first_return_stmt) {
                self.err(
                    r,
                    "a branch that contains `return` must end with `return` on every path: restructure as `if`/`else`",
                );
                return End::Diverges;
            }
        }
        let Some(c) = self.expr(&i.cond) else {
            return End::Diverges;
        };
        let branch = |lw: &mut Self, stmts: &[syn::Stmt], div: bool| -> (Block, bool) {
            let lowered = lw.sub_block(|lw| {
                if div || rest.is_empty() {
                    return lw.block_stmts(stmts, true);
                }
                lw.scopes.push(HashMap::new());
                lw.block_stmts(stmts, false);
                lw.scopes.pop();
                lw.block_stmts(rest, true)
            });
            lw.finish_branch(lowered)
        };
        let (then_b, t_done) = branch(self, &i.then_branch.stmts, then_div);
        let (else_b, e_done) = branch(self, &else_stmts, else_div);
        self.push(Stmt::If(c, then_b, else_b));
        if t_done && e_done {
            End::Diverges
        } else {
            End::Value(None)
        }
    }

    pub(super) fn sub_block(&mut self, f: impl FnOnce(&mut Self) -> End) -> (Vec<Stmt>, End) {
        self.scopes.push(HashMap::new());
        self.blocks.push(Vec::new());
        let end = f(self);
        let b = self.blocks.pop().unwrap_or_default();
        self.scopes.pop();
        (b, end)
    }

    /// Closes a function-context branch: a fallthrough value is assigned to the result.
    pub(super) fn finish_branch(&mut self, (mut b, end): (Vec<Stmt>, End)) -> (Block, bool) {
        match end {
            End::Diverges => (Block(b), true),
            End::Value(Some(op)) => match self.ret_var {
                Some(rv) => {
                    b.push(Stmt::Assign(Place { var: rv, idx: vec![] }, AssignOp::Set, op));
                    (Block(b), true)
                }
                None => (Block(b), false),
            },
            End::Value(None) => (Block(b), false),
        }
    }

    pub(super) fn for_loop(&mut self, f: &syn::ExprForLoop) {
        if let Some(l) = &f.label {
            self.err(
                l,
                "loop labels are not supported: remove the label; loops always run over their whole range",
            );
        }
        let name = match &*f.pat {
            syn::Pat::Ident(pi) if pi.mutability.is_none() => pi.ident.to_string(),
            syn::Pat::Wild(_) => "_i".to_string(),
            p => {
                self.err(p, "the loop variable must be a name: `for i in 0..N`");
                return;
            }
        };
        let (range, rev) = match &*f.expr {
            syn::Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                let mut inner = &*m.receiver;
                while let syn::Expr::Paren(p) = inner {
                    inner = &p.expr;
                }
                (inner, true)
            }
            e => (e, false),
        };
        let syn::Expr::Range(r) = range else {
            self.err(&f.expr, "`for` loops must run over a range: write `for i in 0..N` or `for i in 0..xs.len()` and index with `x[i]` (`(lo..hi).rev()` also works)");
            return;
        };
        let lo = match &r.start {
            Some(s) => self.bound(s),
            None => Some(Operand::Const(CExpr::Lit(0))),
        };
        let hi = match &r.end {
            Some(e) => self.bound(e),
            None => {
                self.err(r, "the range needs an upper bound: `lo..hi`");
                None
            }
        };
        // Errors about the loop's bound (tape sizes) point at the upper bound.
        let bound_span = r.end.as_ref().map_or_else(|| r.span(), |e| e.span());
        let (Some(lo), Some(mut hi)) = (lo, hi) else { return };
        if let syn::RangeLimits::Closed(_) = r.limits {
            hi = match hi {
                Operand::Const(CExpr::Lit(v)) => Operand::Const(CExpr::Lit(v + 1)),
                Operand::Const(h) => Operand::Const(CExpr::Bin('+', Box::new(h), Box::new(CExpr::Lit(1)))),
                h => {
                    let ty = self.func.ty_of(&h);
                    self.let_named(Expr::Prim(Prim::Add, vec![h, Operand::Int(1)]), "hi", Some(ty))
                }
            };
        }
        // From a negative literal the index is a signed integer whose type rustc infers; a
        // run-time bound gives the index its integer type.
        let ity = match (&lo, &hi) {
            (Operand::Const(CExpr::Lit(v)), _) if *v < 0 => Ty::Int(None),
            (Operand::Const(CExpr::Bin('-', a, _)), _) if a.lit() == Some(0) => Ty::Int(None),
            (Operand::Var(_), _) | (_, Operand::Var(_)) => [&hi, &lo]
                .iter()
                .map(|o| self.func.ty_of(o))
                .find(|t| matches!(t, Ty::Int(Some(_))))
                .unwrap_or(Ty::Int(Some("usize".into()))),
            _ => Ty::Int(Some("usize".into())),
        };
        let var = self.func.new_var(name.clone(), ity, false);
        self.loop_vars.push(var);
        self.scopes.push(HashMap::new());
        self.bind(&name, var);
        self.blocks.push(Vec::new());
        self.loop_depth += 1;
        let end = self.block_stmts(&f.body.stmts, false);
        self.loop_depth -= 1;
        if let End::Value(Some(_)) = end {
            // A loop body's value is `()` in Rust; anything else was rejected by rustc.
        }
        let body = self.blocks.pop().unwrap_or_default();
        self.scopes.pop();
        self.push(Stmt::For(Loop {
            var,
            lo,
            hi,
            rev,
            body: Block(body),
            span: SrcSpan(bound_span),
        }));
    }

    /// A loop bound: a constant expression (literals, `const` items, const generics) stays
    /// a [`CExpr`]; anything that reads a variable or calls a method (`n`, `xs.len()`,
    /// `i + 1`) is computed before the loop into an integer variable (a run-time trip count).
    fn bound(&mut self, e: &syn::Expr) -> Option<Operand> {
        if self.is_constant_expr(e) {
            return self.cexpr(e).map(Operand::Const);
        }
        let op = self.expr(e)?;
        match self.func.ty_of(&op) {
            Ty::Int(_) | Ty::Unknown => {}
            t => {
                self.err(
                    e,
                    format!("a loop bound must be an integer (`usize`), not `{}`: count with an integer, such as `xs.len()` or an `n: usize` parameter", ir_ty_text(&t)),
                );
                return None;
            }
        }
        Some(match op {
            Operand::Var(_) => op,
            Operand::Int(v) => Operand::Const(CExpr::Lit(v)),
            Operand::Const(c) => Operand::Const(c),
            other => self.let_named(Expr::Use(other), "n", Some(Ty::Int(Some("usize".into())))),
        })
    }

    /// Whether `e` is a compile-time constant expression (no local variable, no call).
    fn is_constant_expr(&self, e: &syn::Expr) -> bool {
        match e {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(_), ..
            }) => true,
            syn::Expr::Path(p) if p.qself.is_none() => {
                p.path.segments.len() != 1 || self.lookup(&path_string(&p.path)).is_none()
            }
            syn::Expr::Paren(p) => self.is_constant_expr(&p.expr),
            syn::Expr::Group(g) => self.is_constant_expr(&g.expr),
            syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => self.is_constant_expr(&u.expr),
            syn::Expr::Binary(b) => self.is_constant_expr(&b.left) && self.is_constant_expr(&b.right),
            syn::Expr::Block(b) if b.block.stmts.len() == 1 => match &b.block.stmts[0] {
                syn::Stmt::Expr(e, None) => self.is_constant_expr(e),
                _ => true,
            },
            _ => false,
        }
    }

    /// `if c { a } else { b }`; with `want_value`, the value through a mutable temporary.
    pub(super) fn if_expr(&mut self, i: &syn::ExprIf, want_value: bool) -> Option<Operand> {
        let c = self.expr(&i.cond)?;
        if !matches!(self.func.ty_of(&c), Ty::Bool | Ty::Unknown) {
            self.err(&i.cond, "the condition of `if` must be a `bool`");
            return None;
        }
        let result = if want_value {
            if i.else_branch.is_none() {
                self.err(i.if_token, "an `if` used as a value needs an `else` branch");
                return None;
            }
            Some(self.func.new_var("sel", Ty::Unknown, true))
        } else {
            None
        };
        // Whether a branch failed (then its missing value is not a second error).
        let failed_before = std::mem::replace(&mut self.failed, false);
        let (mut tb, tv) = self.sub_block(|lw| lw.block_stmts(&i.then_branch.stmts, false));
        let tv = match tv {
            End::Value(v) => v,
            End::Diverges => None,
        };
        let (mut eb, ev) = match &i.else_branch {
            None => (Vec::new(), None),
            Some((_, e)) => {
                let (b, end) = self.sub_block(|lw| match &**e {
                    syn::Expr::Block(b) => lw.block_stmts(&b.block.stmts, false),
                    syn::Expr::If(ei) => End::Value(lw.if_expr(ei, want_value)),
                    other => End::Value(lw.expr(other)),
                });
                (
                    b,
                    match end {
                        End::Value(v) => v,
                        End::Diverges => None,
                    },
                )
            }
        };
        let branch_failed = self.failed;
        self.failed |= failed_before;
        if let Some(r) = result {
            let (Some(tv), Some(ev)) = (tv, ev) else {
                if !branch_failed {
                    self.err(i.if_token, "both branches of this `if` must give a value");
                }
                return None;
            };
            let ty = merge_ty(&self.func.ty_of(&tv), &self.func.ty_of(&ev));
            if ty.has_slice() {
                self.err(
                    i.if_token,
                    "an `if` cannot choose between slices: index each slice in its branch (`if c { xs[i] } else { ys[i] }`)",
                );
                return None;
            }
            self.func.vars[r].ty = ty;
            tb.push(Stmt::Assign(Place { var: r, idx: vec![] }, AssignOp::Set, tv));
            eb.push(Stmt::Assign(Place { var: r, idx: vec![] }, AssignOp::Set, ev));
            self.push(Stmt::Mut(r, None));
            self.push(Stmt::If(c, Block(tb), Block(eb)));
            let ty = self.func.vars[r].ty.clone();
            Some(self.let_named(Expr::Use(Operand::Var(r)), "t", Some(ty)))
        } else {
            self.push(Stmt::If(c, Block(tb), Block(eb)));
            None
        }
    }
}
